/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bounds on what unpacking may write, against decompression bombs: a few
 * KiB of gzip or zstd can expand to terabytes of zeros, or to millions of
 * empty files. The defaults are far above any real image's layer (the
 * largest public images have layers of a few GiB and ~100k files).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "berth/parse.h"
#include "image-internal.h"

void berth_image_limits_default(struct berth_image_limits *l)
{
	l->layer_bytes = BERTH_IMAGE_MAX_LAYER_BYTES_DEFAULT;
	l->layer_entries = BERTH_IMAGE_MAX_LAYER_ENTRIES_DEFAULT;
	l->archive_bytes = BERTH_IMAGE_MAX_ARCHIVE_BYTES_DEFAULT;
}

static int size_from_env(const char *name, uint64_t *out, berth_error_t *err)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0')
		return 0;
	if (berth_parse_size(v, out, err) < 0)
		return berth_error_wrap(err, "%s", name);
	return 0;
}

int berth_image_limits_from_env(struct berth_image_limits *l, berth_error_t *err)
{
	const char *entries = getenv("BERTH_IMAGE_MAX_LAYER_ENTRIES");
	int r;

	berth_image_limits_default(l);
	r = size_from_env("BERTH_IMAGE_MAX_LAYER_BYTES", &l->layer_bytes, err);
	if (r == 0)
		r = size_from_env("BERTH_IMAGE_MAX_ARCHIVE_BYTES", &l->archive_bytes, err);
	if (r == 0 && entries != NULL && *entries != '\0' &&
	    berth_parse_u64(entries, 1, UINT64_MAX, &l->layer_entries, err) < 0)
		r = berth_error_wrap(err, "BERTH_IMAGE_MAX_LAYER_ENTRIES");
	return r;
}

void berth_image_size_text(uint64_t n, char buf[32])
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	const char *unit = NULL;
	uint64_t v = n;

	/* Exact multiples only: a limit is shown as it was most likely given. */
	for (size_t i = 0; i < 4 && v >= 1024 && v % 1024 == 0; i++) {
		v /= 1024;
		unit = units[i];
	}
	if (unit != NULL)
		snprintf(buf, 32, "%" PRIu64 " %s", v, unit);
	else
		snprintf(buf, 32, "%" PRIu64 " bytes", n);
}
