/* SPDX-License-Identifier: Apache-2.0 */
/* From whatever names an image (a path, DIR:TAG, a reference) to an image in the store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "image-internal.h"

static int resolve_reference(struct berth_image_store *s, const char *source,
                             const struct berth_pull_options *opts, bool pull,
                             struct berth_fetch_notice *notice, char digest[BERTH_DIGEST_MAX],
                             berth_error_t *err)
{
	struct berth_image_ref ref;
	cleanup_free char *name = NULL;
	int r;

	r = berth_image_ref_parse(source, &ref, err);
	if (r < 0)
		return r;
	name = berth_image_ref_string(&ref);
	if (!pull) {
		/* By digest: the store has it or not; by tag: as last pulled. */
		if (ref.digest != NULL && ref.tag == NULL &&
		    berth_image_store_has_blob(s, ref.digest)) {
			snprintf(digest, BERTH_DIGEST_MAX, "%s", ref.digest);
			berth_image_ref_free(&ref);
			return 0;
		}
		if (berth_image_store_lookup(s, name, digest, NULL) == 0) {
			berth_image_ref_free(&ref);
			return 0;
		}
	}
	berth_fetch_notice_tell(notice);
	r = berth_image_pull(s, &ref, opts, digest, err);
	berth_image_ref_free(&ref);
	return r;
}

int berth_image_resolve(struct berth_image_store *s, const char *source,
                        const struct berth_pull_options *opts, bool pull, struct berth_image **out,
                        berth_error_t *err)
{
	struct berth_fetch_notice notice = {.opts = opts};
	enum berth_image_source_kind kind;
	cleanup_free char *path = NULL;
	cleanup_free char *tag = NULL;
	char digest[BERTH_DIGEST_MAX];
	int r;

	*out = NULL;
	r = berth_image_source_classify(source, &kind, &path, &tag, err);
	if (r < 0)
		return r;
	switch (kind) {
	case BERTH_IMAGE_SOURCE_ROOTFS:
		return -EISDIR;
	case BERTH_IMAGE_SOURCE_LAYOUT:
		r = berth_image_import_layout_notify(s, path, tag, &notice, digest, err);
		break;
	case BERTH_IMAGE_SOURCE_ARCHIVE: {
		/* An archive unchanged since it was imported is not read again. */
		cleanup_free char *name = NULL;
		cleanup_free char *stamp = NULL;
		r = berth_image_archive_stamp(path, tag, &name, &stamp, err);
		if (r == 0 && berth_image_store_lookup_stamped(s, name, stamp, digest, NULL) < 0) {
			berth_fetch_notice_tell(&notice);
			r = berth_image_import_archive(s, path, tag, digest, err);
		}
		break;
	}
	case BERTH_IMAGE_SOURCE_REGISTRY:
		r = resolve_reference(s, source, opts, pull, &notice, digest, err);
		break;
	}
	if (r < 0)
		return r;
	return berth_image_load(s, digest, out, err);
}
