/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `berth run --image`: the image comes from the `berth-image` helper (a
 * dynamic program with libarchive and libcurl, which this static one does
 * not link), found as the runtime helper is: $BERTH_IMAGE_HELPER, next to
 * this executable, or the install location. It prints the image's layers
 * and config as JSON; the Docker rules for combining the config with the
 * command line are applied here (berth/image-run.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "cli.h"

/* The helper's answer: a config and a list of layer paths. */
#define ANSWER_MAX (4u * 1024u * 1024u)

extern char **environ;

static void image_helper_path(char *out, size_t len)
{
	const char *env = getenv("BERTH_IMAGE_HELPER");
	char self[PATH_MAX];
	ssize_t n;

	if (env != NULL && *env != '\0') {
		snprintf(out, len, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			if (snprintf(out, len, "%s/berth-image", self) < (int)len &&
			    access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "%s/berth-image", BERTH_LIBEXECDIR);
}

/* Run `berth-image resolve` and parse what it prints; its stderr is ours (progress, errors). */
static int resolve(const char *state_dir, const char *source, json_t **out, berth_error_t *err)
{
	char path[PATH_MAX];
	char *argv[] = {(char *)"berth-image",
	                (char *)"resolve",
	                (char *)"--state-dir",
	                (char *)state_dir,
	                (char *)"--",
	                (char *)source,
	                NULL};
	posix_spawn_file_actions_t fa;
	cleanup_close int rd = -1;
	cleanup_free char *buf = xmalloc(ANSWER_MAX + 1);
	json_error_t jerr;
	ssize_t n;
	int fds[2], status, r;
	pid_t pid;

	image_helper_path(path, sizeof(path));
	if (pipe2(fds, O_CLOEXEC) < 0)
		return berth_error_set(err, errno, "pipe");
	rd = fds[0];
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	r = posix_spawn(&pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (r != 0)
		return berth_error_set(err, r, "run the image helper `%s`", path);
	n = berth_read_all(rd, buf, ANSWER_MAX + 1);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return berth_error_set(err, errno, "wait for `%s`", path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		/* The helper has said why on stderr. */
		return berth_error_set_plain(err, EINVAL, "image `%s` cannot be used", source);
	if (n < 0 || n > (ssize_t)ANSWER_MAX)
		return berth_error_set_plain(err, EIO, "the image helper's answer is unreadable");
	*out = json_loadb(buf, (size_t)n, 0, &jerr);
	if (*out == NULL)
		return berth_error_set_plain(err, EIO, "the image helper's answer: %s", jerr.text);
	return 0;
}

int berth_cli_image(int argc, char **argv)
{
	char path[PATH_MAX];
	char **args = xcalloc((size_t)argc + 1, sizeof(char *));

	/* The helper has the store's code: `berth image VERB ...` is `berth-image VERB ...`. */
	image_helper_path(path, sizeof(path));
	args[0] = (char *)"berth-image";
	for (int i = 1; i < argc; i++)
		args[i] = argv[i];
	execv(path, args);
	fprintf(stderr, "berth: run the image helper `%s`: %s\n", path, strerror(errno));
	free(args);
	return BERTH_EXIT_FAILED;
}

void berth_cli_image_free(struct berth_cli_image *img)
{
	json_decref(img->doc);
	free(img->layers);
	berth_image_run_free(&img->run);
	memset(img, 0, sizeof(*img));
}

int berth_cli_image_prepare(const char *state_dir, const char *source, char *const *cmd,
                            char *const *env, bool have_user, struct berth_container_spec *spec,
                            struct berth_cli_image *img, berth_error_t *err)
{
	json_t *layers, *v;
	const char *kind;
	size_t i;
	int r;

	memset(img, 0, sizeof(*img));
	r = resolve(state_dir, source, &img->doc, err);
	if (r < 0)
		return r;
	kind = json_string_value(json_object_get(img->doc, "kind"));
	if (kind != NULL && strcmp(kind, "rootfs") == 0) {
		spec->rootfs = json_string_value(json_object_get(img->doc, "rootfs"));
		if (cmd == NULL)
			return berth_error_set_plain(
			        err, EINVAL,
			        "`%s` is a root directory, which has no command "
			        "of its own: give one",
			        source);
		spec->argv = cmd;
		spec->env = env;
		return 0;
	}
	layers = json_object_get(img->doc, "layers");
	if (!json_is_array(layers) || json_array_size(layers) == 0)
		return berth_error_set_plain(err, EIO, "the image helper gave no layers");
	img->layers = xcalloc(json_array_size(layers) + 1, sizeof(char *));
	json_array_foreach (layers, i, v)
		img->layers[i] = (char *)json_string_value(v);
	r = berth_image_run_config(json_object_get(img->doc, "config"), NULL, cmd, env, &img->run,
	                           err);
	if (r < 0)
		return berth_error_wrap(err, "image `%s`", source);
	spec->rootfs = NULL;
	spec->layers = img->layers;
	spec->argv = img->run.argv;
	spec->env = img->run.env;
	if (spec->workdir == NULL)
		spec->workdir = img->run.workdir;
	if (!have_user && img->run.user != NULL) {
		r = berth_image_user(img->layers, img->run.user, &spec->uid, &spec->gid, err);
		if (r < 0)
			return berth_error_wrap(err, "image `%s`", source);
	}
	return 0;
}
