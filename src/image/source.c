/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a string names as an image source: a path, PATH:TAG, or a registry
 * reference. Pure (stat only), so that the config's check and the image
 * module read a source the same way.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "berth/image.h"
#include "berth/util.h"

static bool is_layout(const char *dir)
{
	cleanup_free char *marker = xasprintf("%s/oci-layout", dir);
	struct stat st;

	return stat(marker, &st) == 0 && S_ISREG(st.st_mode);
}

static bool path_like(const char *s)
{
	return s[0] == '/' || strncmp(s, "./", 2) == 0 || strncmp(s, "../", 3) == 0 ||
	       strcmp(s, ".") == 0 || strcmp(s, "..") == 0;
}

int berth_image_source_split(const char *source, enum berth_image_source_kind *kind, char **path,
                             char **tag, berth_error_t *err)
{
	*path = *tag = NULL;
	/*
	 * Both sides may hold colons (`/srv/a:b/app.tar`, `team/app:1.2`), so
	 * every colon is tried; the source is that split only when exactly one
	 * of them has a layout or a file on its left.
	 */
	for (const char *c = strchr(source, ':'); c != NULL; c = strchr(c + 1, ':')) {
		cleanup_free char *left = xstrndup(source, (size_t)(c - source));
		enum berth_image_source_kind k;
		struct stat st;

		if (c == source || stat(left, &st) < 0)
			continue;
		if (S_ISREG(st.st_mode))
			k = BERTH_IMAGE_SOURCE_ARCHIVE;
		else if (S_ISDIR(st.st_mode) && is_layout(left))
			k = BERTH_IMAGE_SOURCE_LAYOUT;
		else
			continue;
		if (c[1] == '\0') {
			free(*path);
			free(*tag);
			*path = *tag = NULL;
			return berth_error_set_plain(err, EINVAL, "image `%s`: empty tag", source);
		}
		if (*path != NULL) {
			int r = berth_error_set_plain(err, EINVAL,
			                              "image `%s` is ambiguous: `%s` with tag "
			                              "`%s`, or `%s` with tag `%s` "
			                              "(rename one of them)",
			                              source, *path, *tag, left, c + 1);
			free(*path);
			free(*tag);
			*path = *tag = NULL;
			return r;
		}
		*kind = k;
		*path = steal_pointer(&left);
		*tag = xstrdup(c + 1);
	}
	return *path != NULL ? 1 : 0;
}

int berth_image_source_classify(const char *source, enum berth_image_source_kind *kind, char **path,
                                char **tag, berth_error_t *err)
{
	struct berth_image_ref ref;
	struct stat st;
	int r;

	*path = *tag = NULL;
	if (source == NULL || *source == '\0')
		return berth_error_set_plain(err, EINVAL, "no image given");
	/* A path that exists is that path, colons and all. */
	if (stat(source, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			*kind = is_layout(source) ? BERTH_IMAGE_SOURCE_LAYOUT
			                          : BERTH_IMAGE_SOURCE_ROOTFS;
		else if (S_ISREG(st.st_mode))
			*kind = BERTH_IMAGE_SOURCE_ARCHIVE;
		else
			return berth_error_set_plain(err, EINVAL,
			                             "image `%s` is neither a directory nor a file",
			                             source);
		*path = xstrdup(source);
		return 0;
	}
	r = berth_image_source_split(source, kind, path, tag, err);
	if (r != 0)
		return r < 0 ? r : 0;
	if (path_like(source))
		return berth_error_set(err, ENOENT, "image `%s`", source);
	if (berth_image_ref_parse(source, &ref, err) < 0)
		return berth_error_ret(err);
	berth_image_ref_free(&ref);
	*kind = BERTH_IMAGE_SOURCE_REGISTRY;
	return 0;
}
