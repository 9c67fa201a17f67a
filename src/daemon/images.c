/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "images.h"

#define INSECURE_MAX 32

int berthd_image_prepare(const char *state_dir, const char *source, char *const *entrypoint,
                         char *const *env, struct berth_container_spec *spec,
                         struct berthd_image_prep *prep, berth_error_t *err)
{
	struct berth_pull_options opts = {.auth_file = getenv("BERTH_AUTH_FILE")};
	struct berth_image_store *store = NULL;
	cleanup_free char *list = NULL;
	char *insecure[INSECURE_MAX + 1] = {0};
	size_t n = 0;
	int r;

	memset(prep, 0, sizeof(*prep));
	if (getenv("BERTH_INSECURE_REGISTRIES") != NULL) {
		char *save = NULL;
		list = xstrdup(getenv("BERTH_INSECURE_REGISTRIES"));
		for (char *h = strtok_r(list, ",", &save); h != NULL && n < INSECURE_MAX;
		     h = strtok_r(NULL, ",", &save))
			insecure[n++] = h;
	}
	opts.insecure = insecure;
	r = berth_image_store_open(state_dir, &store, err);
	if (r < 0)
		return r;
	r = berth_image_resolve(store, source, &opts, false, &prep->img, err);
	berth_image_store_free(store);
	if (r == -EISDIR) {
		/* A plain root directory: no config, so the class must say what to run. */
		if (entrypoint == NULL)
			return berth_error_set_plain(err, EINVAL,
			                             "its class has no entrypoint, and a root "
			                             "directory image has no command of its own");
		prep->rootfs = xstrdup(source);
		spec->rootfs = prep->rootfs;
		spec->argv = entrypoint;
		spec->env = env;
		return 0;
	}
	if (r < 0)
		return r;
	r = berth_image_run_config(prep->img->config, entrypoint, NULL, env, &prep->run, err);
	if (r < 0)
		return berth_error_wrap(err, "image `%s`", source);
	spec->rootfs = NULL;
	spec->layers = prep->img->layer_dirs;
	spec->argv = prep->run.argv;
	spec->env = prep->run.env;
	spec->workdir = prep->run.workdir;
	prep->port = prep->run.port;
	if (prep->run.user != NULL) {
		r = berth_image_user(prep->img->layer_dirs, prep->run.user, &spec->uid, &spec->gid,
		                     err);
		if (r < 0)
			return berth_error_wrap(err, "image `%s`", source);
	}
	return 0;
}

void berthd_image_prep_free(struct berthd_image_prep *prep)
{
	berth_image_free(prep->img);
	berth_image_run_free(&prep->run);
	free(prep->rootfs);
	memset(prep, 0, sizeof(*prep));
}
