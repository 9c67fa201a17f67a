/* SPDX-License-Identifier: Apache-2.0 */
/* What the image module's files share only with each other. */
#ifndef BERTH_IMAGE_INTERNAL_H
#define BERTH_IMAGE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "berth/image.h"

struct berth_image_store {
	char *root;   /* STATE/images */
	int root_fd;  /* O_PATH of root */
	int blobs_fd; /* blobs/sha256 */
	int tmp_fd;   /* tmp */
	int gc_fd;    /* gc.lock: shared while the store is open, exclusive to prune */
	char *state_dir;
	struct berth_image_limits limits; /* from the environment, at open */
};

void berth_digest_format(const uint8_t raw[32], char out[BERTH_DIGEST_MAX]);

/* Read a JSON document of at most `max` bytes from `path`. */
int berth_image_read_json(const char *path, size_t max, json_t **out, berth_error_t *err);
/*
 * Move `path` (a file in STATE/images/tmp, so on the same filesystem) into
 * the store as a blob once its content is hashed and checked.
 */
int berth_image_store_adopt_file(struct berth_image_store *s, const char *path, const char *expect,
                                 char out[BERTH_DIGEST_MAX], berth_error_t *err);

/* A fresh private directory under STATE/images/tmp; the caller removes it. */
int berth_image_store_tmpdir(struct berth_image_store *s, char **path, berth_error_t *err);

/*
 * Tags with a stamp: what the source was when it was imported (an
 * archive's size, mtime and inode), so that an unchanged source is not read
 * again. A lookup with a stamp finds only a name recorded with that stamp.
 */
int berth_image_store_tag_stamped(struct berth_image_store *s, const char *name,
                                  const char *manifest_digest, const char *stamp,
                                  berth_error_t *err);
int berth_image_store_lookup_stamped(struct berth_image_store *s, const char *name,
                                     const char *stamp, char digest[BERTH_DIGEST_MAX],
                                     berth_error_t *err);
/* The stamp of an archive, and the name it is recorded by ("archive:ABSPATH[:TAG]"). */
int berth_image_archive_stamp(const char *path, const char *tag, char **name, char **stamp,
                              berth_error_t *err);

/* A resolve's `fetching` callback (berth_pull_options), told at most once. */
struct berth_fetch_notice {
	const struct berth_pull_options *opts; /* may be NULL */
	bool told;
};
void berth_fetch_notice_tell(struct berth_fetch_notice *n);

/* berth_image_import_layout(), telling `notice` (may be NULL) before the first new blob. */
int berth_image_import_layout_notify(struct berth_image_store *s, const char *dir, const char *tag,
                                     struct berth_fetch_notice *notice,
                                     char digest[BERTH_DIGEST_MAX], berth_error_t *err);

/*
 * Record the image `manifest_digest` (whose manifest and config blobs are
 * in the store): its layers are unpacked, then it is tagged `name`.
 */
int berth_image_store_commit_image(struct berth_image_store *s, const char *name,
                                   const char *manifest_digest, const char *stamp,
                                   berth_error_t *err);

#endif
