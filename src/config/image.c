/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whether a class's image is something berth can run: a local path (a root
 * filesystem directory, an OCI image layout or an image archive; which of
 * these is the image module's business, at start), PATH:TAG of a layout or
 * an archive (berth_image_source_split(), as the image module reads it), or a
 * registry reference, checked against Docker's grammar here and pulled by
 * berthd when an instance of the class first starts. Dockerfiles come later.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "berth/image.h"
#include "berth/util.h"
#include "config/config-internal.h"

static bool path_like(const char *s)
{
	return s[0] == '/' || strncmp(s, "./", 2) == 0 || strncmp(s, "../", 3) == 0 ||
	       strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

/*
 * "docker.io/library/nginx:1.25", "registry.cloudflare.com/app@sha256:...":
 * a tag, a digest or a registry host (a first component with a dot or a
 * port) cannot be meant as a path next to the config file.
 */
static bool looks_like_reference(const char *s)
{
	const char *slash = strchr(s, '/');
	size_t first = slash ? (size_t)(slash - s) : strlen(s);
	const char *last = strrchr(s, '/');

	if (strchr(last ? last : s, ':') != NULL || strchr(s, '@') != NULL)
		return true;
	return slash != NULL && (memchr(s, '.', first) != NULL || memchr(s, ':', first) != NULL);
}

static bool is_dockerfile(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t len;

	base = base ? base + 1 : path;
	len = strlen(base);
	return strcasecmp(base, "Dockerfile") == 0 || strcasecmp(base, "Containerfile") == 0 ||
	       strncasecmp(base, "Dockerfile.", 11) == 0 ||
	       (len > 11 && strcasecmp(base + len - 11, ".Dockerfile") == 0);
}

/* Whether `s` alone would name an image of Docker Hub's library. */
static bool hub_name(const char *s)
{
	struct berth_image_ref ref;

	if (berth_image_ref_parse(s, &ref, NULL) < 0)
		return false;
	berth_image_ref_free(&ref);
	return true;
}

void berth_config_check_image(struct berth_config_ctx *c, const char *path,
                              struct berth_config_class *cls)
{
	cleanup_free char *resolved = berth_config_resolve(c->cfg->dir, cls->image);
	cleanup_free char *shown = NULL;
	json_t *str = json_string(cls->image);
	struct stat st;

	shown = berth_config_show(c, path, str);
	json_decref(str);
	if (stat(resolved, &st) == 0) {
		if (S_ISREG(st.st_mode) && is_dockerfile(resolved))
			berth_config_warn(
			        c, path,
			        "%s is a Dockerfile, which berth does not build yet: instances "
			        "of this class cannot start (use " BERTH_CONFIG_IMAGE_KINDS ")",
			        shown);
		else if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
			berth_config_error(c, path, "%s is neither a directory nor a file (%s)",
			                   shown, resolved);
		cls->image_path = steal_pointer(&resolved);
		return;
	}
	if (errno != ENOENT && errno != ENOTDIR) {
		berth_config_error(c, path, "%s cannot be used: stat `%s`: %s", shown, resolved,
		                   strerror(errno));
		return;
	}
	/* PATH:TAG: an image of an OCI image layout or of an archive, picked by its tag. */
	{
		enum berth_image_source_kind kind;
		cleanup_free char *dir = NULL;
		cleanup_free char *tag = NULL;
		berth_error_t err;
		int r = berth_image_source_split(resolved, &kind, &dir, &tag, &err);

		if (r < 0) {
			berth_config_error(c, path, "%s: %s", shown, err.message);
			return;
		}
		if (r > 0) {
			cls->image_path = steal_pointer(&resolved);
			return;
		}
	}
	if (!path_like(cls->image) && looks_like_reference(cls->image)) {
		struct berth_image_ref ref;
		berth_error_t err;

		if (berth_image_ref_parse(cls->image, &ref, &err) < 0) {
			berth_config_error(c, path, "%s: %s", shown, err.message);
			return;
		}
		/* The canonical form: the name the image store records it by. */
		cls->image_path = berth_image_ref_string(&ref);
		berth_image_ref_free(&ref);
		return;
	}
	if (!path_like(cls->image) && strchr(cls->image, '/') == NULL && hub_name(cls->image)) {
		/* "busybox": a path next to the file, or Docker Hub's image? Say how to mean that.
		 */
		berth_config_error(
		        c, path,
		        "%s does not exist (resolved to %s; for Docker Hub's image write "
		        "\"docker.io/library/%s:latest\")",
		        shown, resolved, cls->image);
		return;
	}
	berth_config_error(c, path, "%s does not exist (resolved to %s)", shown, resolved);
}
