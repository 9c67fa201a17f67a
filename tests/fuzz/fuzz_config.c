/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the configuration loader on any file an operator (or an
 * editor gone wrong) may hand berthd: JSONC cleaning, jansson, the
 * position index, the model and every diagnostic.
 *
 * Invariants: a load either succeeds without errors or fails with at least
 * one; every diagnostic is one line (the journal shows one message per
 * line) and points inside the file; JSONC cleaning keeps the text's length
 * and its line breaks where they were (positions in messages depend on it).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config-internal.h"
#include "config/config.h"
#include "fuzz.h"

static void clean(const char *text, size_t len)
{
	char *out = NULL;
	size_t bad = SIZE_MAX;

	if (berth_config_jsonc_clean(text, len, &out, &bad) < 0) {
		FUZZ_CHECK(bad < len, "an unclosed comment reported outside the text");
		return;
	}
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK((text[i] == '\n') == (out[i] == '\n'),
		           "cleaning moved a line break (offset %zu)", i);
	FUZZ_CHECK(out[len] == '\0', "the cleaned text is not terminated");
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct berth_config_diags diags = {0};
	struct berth_config *cfg = NULL;
	berth_error_t err;
	unsigned lines = 1;
	char path[64];
	int fd, r;

	clean((const char *)data, size);

	fd = memfd_create("berth.jsonc", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size, "write: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';

	r = berth_config_load(path, &cfg, &diags, &err);
	if (r == 0) {
		FUZZ_CHECK(cfg != NULL, "loaded without a configuration");
		FUZZ_CHECK(diags.errors == 0, "loaded with %zu errors", diags.errors);
	} else {
		FUZZ_CHECK(cfg == NULL, "failed but left a configuration");
		FUZZ_CHECK(r == -EINVAL, "failed with %d on a readable file", r);
		FUZZ_CHECK(diags.errors > 0, "failed without an error message");
	}
	FUZZ_CHECK(diags.errors + diags.warnings == diags.count, "diagnostics miscounted");
	for (size_t i = 0; i < diags.count; i++) {
		const struct berth_config_diag *d = &diags.items[i];

		FUZZ_CHECK(d->message != NULL && d->text != NULL && d->path != NULL,
		           "a diagnostic without its text");
		FUZZ_CHECK(strchr(d->message, '\n') == NULL, "a diagnostic of two lines: %s",
		           d->message);
		FUZZ_CHECK(d->line <= lines, "a diagnostic past the last line (%u > %u): %s",
		           d->line, lines, d->message);
		FUZZ_CHECK((d->line == 0) == (d->col == 0), "a line without a column: %s",
		           d->message);
	}
	berth_config_diags_free(&diags);
	berth_config_free(cfg);
	close(fd);
	return 0;
}
