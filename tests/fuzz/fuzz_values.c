/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the small parsers every request, flag and file goes through.
 * The first byte picks one; the rest is its input.
 *
 *   sizes, CPUs, durations, users, signals   (flags, config, API bodies)
 *   image references                         (config, API, CLI)
 *   base64                                   (the Sandbox SDK's files)
 *   CRI log timestamps, records and tails    (log files hold what
 *                                             containers print)
 *
 * Invariants: a refusal comes with a one-line message; what is accepted
 * reads back the same (a reference's canonical string parses to the same
 * reference, base64 decodes to what was encoded, a timestamp formats and
 * parses to the same instant); a log tail stays inside its window and counts
 * exactly the records in what it returns.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/base64.h"
#include "berth/crilog.h"
#include "berth/error.h"
#include "berth/image.h"
#include "berth/parse.h"
#include "fuzz.h"

static void refused(int r, const berth_error_t *err, const char *what)
{
	FUZZ_CHECK(r < 0, "%s: returned %d", what, r);
	FUZZ_CHECK(err->message[0] != '\0', "%s refused without a message", what);
	FUZZ_CHECK(strchr(err->message, '\n') == NULL, "%s: a message of two lines: %s", what,
	           err->message);
}

static bool same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void image_ref(const char *s)
{
	struct berth_image_ref a = {0}, b = {0};
	berth_error_t err = {0};
	char *canon;
	int r = berth_image_ref_parse(s, &a, &err);

	if (r != 0) {
		refused(r, &err, "image reference");
		return;
	}
	FUZZ_CHECK(a.registry != NULL && a.repository != NULL, "a reference without a name");
	FUZZ_CHECK(a.tag != NULL || a.digest != NULL, "a reference without tag or digest");
	canon = berth_image_ref_string(&a);
	r = berth_image_ref_parse(canon, &b, &err);
	FUZZ_CHECK(r == 0, "`%s` became `%s`, which does not parse: %s", s, canon, err.message);
	FUZZ_CHECK(same(a.registry, b.registry) && same(a.repository, b.repository) &&
	                   same(a.tag, b.tag) && same(a.digest, b.digest),
	           "`%s` and its canonical `%s` differ", s, canon);
	free(canon);
	berth_image_ref_free(&a);
	berth_image_ref_free(&b);
}

static void base64(const char *s, size_t len)
{
	unsigned char *raw = NULL, *again = NULL;
	size_t raw_len = 0, enc_len = 0, again_len = 0;
	char *enc;

	/* Any bytes encode, and decode back. */
	enc = berth_base64_encode(s, len, &enc_len);
	FUZZ_CHECK(enc_len == strlen(enc) && enc_len == (len + 2) / 3 * 4, "encoded length");
	FUZZ_CHECK(berth_base64_decode(enc, enc_len, &raw, &raw_len) == 0, "own output refused");
	FUZZ_CHECK(raw_len == len && memcmp(raw, s, len) == 0, "base64 round trip changed bytes");
	free(raw);
	free(enc);
	raw = NULL;
	/* Whatever decodes encodes to something that decodes the same. */
	if (berth_base64_decode(s, len, &raw, &raw_len) < 0)
		return;
	enc = berth_base64_encode(raw, raw_len, &enc_len);
	FUZZ_CHECK(berth_base64_decode(enc, enc_len, &again, &again_len) == 0 &&
	                   again_len == raw_len && memcmp(again, raw, raw_len) == 0,
	           "decoded bytes do not survive a second round");
	free(again);
	free(enc);
	free(raw);
}

static void crilog(const char *s, size_t len, uint8_t knob)
{
	char text[BERTH_CRILOG_TIME_LEN];
	int64_t ns, again;
	size_t found = 0, want = knob % 8, end, from, counted = 0;
	bool at_start = knob & 8;

	if (berth_crilog_parse_time(s, len, &ns) == 0) {
		berth_crilog_format_time(ns, text);
		FUZZ_CHECK(berth_crilog_parse_time(text, strlen(text), &again) == 0 && again == ns,
		           "timestamp %.*s formats to %s, which reads differently", (int)len, s,
		           text);
	}
	berth_crilog_valid(s, len, NULL);

	from = berth_crilog_tail(s, len, at_start, want, &found);
	FUZZ_CHECK(from <= len && found <= want, "a tail outside its window");
	/* Count the records from `from` to the end of the complete lines. */
	for (end = len; end > 0 && s[end - 1] != '\n'; end--)
		;
	if (want == 0) {
		FUZZ_CHECK(from == end, "want 0: returned %zu, lines end at %zu", from, end);
		return;
	}
	for (size_t i = from; i < end;) {
		const char *nl = memchr(s + i, '\n', end - i);
		size_t line = (size_t)(nl - (s + i));
		bool first = i == 0 && !at_start; /* maybe the end of a longer line */

		if (!first && berth_crilog_valid(s + i, line, NULL))
			counted++;
		i += line + 1;
	}
	FUZZ_CHECK(counted == found, "the tail counts %zu records, its lines hold %zu", found,
	           counted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	berth_error_t err = {0};
	uint64_t u, v;
	uint32_t uid, gid;
	char *s;
	int r, sig;

	if (size < 1)
		return 0;
	/* The parsers take C strings: the input up to its first NUL. */
	s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';

	switch (data[0] % 9) {
	case 0:
		r = berth_parse_size(s, &u, &err);
		if (r < 0)
			refused(r, &err, "size");
		break;
	case 1:
		r = berth_parse_cpus(s, &u, &err);
		if (r < 0)
			refused(r, &err, "cpus");
		else
			FUZZ_CHECK(u > 0, "zero CPUs accepted from `%s`", s);
		break;
	case 2:
		r = berth_parse_duration(s, &u, &err);
		if (r < 0)
			refused(r, &err, "duration");
		break;
	case 3:
		v = data[0] >> 4;
		r = berth_parse_u64(s, v, 1000000, &u, &err);
		if (r < 0)
			refused(r, &err, "number");
		else
			FUZZ_CHECK(u >= v && u <= 1000000, "%llu outside [%llu, 1000000]",
			           (unsigned long long)u, (unsigned long long)v);
		break;
	case 4:
		r = berth_parse_user(s, &uid, &gid, &err);
		if (r < 0)
			refused(r, &err, "user");
		break;
	case 5:
		r = berth_parse_signal(s, &sig, &err);
		if (r < 0)
			refused(r, &err, "signal");
		else
			FUZZ_CHECK(sig > 0 && sig < 65, "signal %d from `%s`", sig, s);
		break;
	case 6:
		image_ref(s);
		break;
	case 7:
		base64((const char *)data + 1, size - 1);
		break;
	case 8:
		crilog((const char *)data + 1, size - 1, data[0] / 9);
		break;
	}
	free(s);
	return 0;
}
