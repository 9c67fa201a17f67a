/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "berth/log.h"
#include "berth/util.h"
#include "daemon/daemon.h"
#include "images.h"

#define INSECURE_MAX 32

/* Import or pull `source` (unless the store has it) and load it. */
static int resolve(const char *state_dir, const char *source, const int *cancel,
                   struct berth_image **img, berth_error_t *err)
{
	struct berth_pull_options opts = {.auth_file = getenv("BERTH_AUTH_FILE"), .cancel = cancel};
	struct berth_image_store *store = NULL;
	cleanup_free char *list = NULL;
	char *insecure[INSECURE_MAX + 1] = {0};
	size_t n = 0;
	int r;

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
	r = berth_image_resolve(store, source, &opts, false, img, err);
	berth_image_store_free(store);
	return r;
}

int berthd_image_prepare(const char *state_dir, const char *source, char *const *entrypoint,
                         char *const *env, const int *cancel, struct berth_container_spec *spec,
                         struct berthd_image_prep *prep, berth_error_t *err)
{
	int r;

	memset(prep, 0, sizeof(*prep));
	r = resolve(state_dir, source, cancel, &prep->img, err);
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

struct prefetch {
	uv_work_t work;
	char *class_name, *source, *state_dir;
	const int *cancel;
	berth_error_t err;
	int result;
};

static void prefetch_work(uv_work_t *w)
{
	struct prefetch *p = w->data;
	struct berth_image *img = NULL;

	p->result = resolve(p->state_dir, p->source, p->cancel, &img, &p->err);
	berth_image_free(img);
}

static void prefetch_done(uv_work_t *w, int status)
{
	struct prefetch *p = w->data;

	if (status == UV_ECANCELED || p->result == -ECANCELED)
		berth_info("class `%s`: pull of `%s` stopped", p->class_name, p->source);
	else if (p->result < 0)
		berth_warn("class `%s`: image `%s`: %s (its first start tries again)",
		           p->class_name, p->source, p->err.message);
	else
		berth_info("class `%s`: image `%s` ready", p->class_name, p->source);
	free(p->class_name);
	free(p->source);
	free(p->state_dir);
	free(p);
}

void berthd_images_prefetch(struct berthd *d)
{
	for (size_t i = 0; i < d->config->n_classes; i++) {
		const struct berth_config_class *cls = &d->config->classes[i];
		struct prefetch *p;

		/* Paths are absolute; anything else is a registry reference (config/image.c). */
		if (cls->image_path == NULL || cls->image_path[0] == '/')
			continue;
		p = xcalloc(1, sizeof(*p));
		p->work.data = p;
		p->class_name = xstrdup(cls->class_name);
		p->source = xstrdup(cls->image_path);
		p->state_dir = xstrdup(d->config->berth.state_dir);
		p->cancel = &d->images_cancel;
		uv_queue_work(d->loop, &p->work, prefetch_work, prefetch_done);
	}
}
