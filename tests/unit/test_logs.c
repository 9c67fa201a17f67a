/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading CRI log records (berth/crilog.h): timestamps, record validation,
 * and finding the last N records by reading backwards in bounded windows,
 * checked against a plain forward count over the whole file.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth/crilog.h"
#include "berth/util.h"

static int64_t parse(const char *s)
{
	int64_t ns = -1;
	assert_int_equal(berth_crilog_parse_time(s, strlen(s), &ns), 0);
	return ns;
}

static void test_parse_time(void **state)
{
	static const char *const bad[] = {
	        "",
	        "2026-11-27",
	        "2026-11-27T10:54:39",             /* no zone */
	        "2026-11-27 10:54:39Z",            /* a space for T */
	        "2026-13-01T00:00:00Z",            /* month 13 */
	        "2026-02-29T00:00:00Z",            /* not a leap year */
	        "2026-04-31T00:00:00Z",            /* April has 30 days */
	        "2026-11-27T24:00:00Z",            /* hour 24 */
	        "2026-11-27T10:60:00Z",            /* minute 60 */
	        "2026-11-27T10:54:39.Z",           /* a dot without digits */
	        "2026-11-27T10:54:39.1234567890Z", /* 10 digits */
	        "2026-11-27T10:54:39Zx",           /* trailing bytes */
	        "2026-11-27T10:54:39+0200",        /* offset without colon */
	        "2026-11-27T10:54:39+24:00",       /* offset hour 24 */
	        "20x6-11-27T10:54:39Z",
	        "-026-11-27T10:54:39Z",
	};
	int64_t ns;
	(void)state;

	assert_int_equal(parse("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(parse("1970-01-01T00:00:01.000000001Z"), 1000000001);
	/* date -u -d 2026-11-27T10:54:39Z +%s = 1795776879 */
	assert_int_equal(parse("2026-11-27T10:54:39.123456789Z"), 1795776879123456789LL);
	assert_int_equal(parse("2026-11-27T10:54:39.5Z"), 1795776879500000000LL);
	assert_int_equal(parse("2026-11-27t10:54:39z"), 1795776879000000000LL);
	/* An offset is the local time's distance from UTC. */
	assert_int_equal(parse("2026-11-27T12:54:39+02:00"), 1795776879000000000LL);
	assert_int_equal(parse("2026-11-27T10:24:39-00:30"), 1795776879000000000LL);
	assert_int_equal(parse("2024-02-29T00:00:00Z"), 1709164800000000000LL);
	assert_int_equal(parse("1969-12-31T23:59:59Z"), -1000000000LL);
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(bad); i++) {
		if (berth_crilog_parse_time(bad[i], strlen(bad[i]), &ns) != -EINVAL)
			fail_msg("accepted `%s`", bad[i]);
	}
	/* int64 nanoseconds end in 1677 and 2262: beyond, no number (it would overflow). */
	assert_int_equal(parse("1677-09-22T00:00:00Z"), -9223286400000000000LL);
	assert_int_equal(parse("2262-04-11T00:00:00Z"), 9223286400000000000LL);
	assert_int_equal(berth_crilog_parse_time("1013-11-27T10:54:39Z", 20, &ns), -ERANGE);
	assert_int_equal(berth_crilog_parse_time("9999-12-31T23:59:59.999999999Z", 30, &ns),
	                 -ERANGE);
	assert_int_equal(berth_crilog_parse_time("2262-04-12T00:00:00Z", 20, &ns), -ERANGE);
}

static void test_format_time(void **state)
{
	char out[BERTH_CRILOG_TIME_LEN];
	(void)state;

	berth_crilog_format_time(1795776879123456789LL, out);
	assert_string_equal(out, "2026-11-27T10:54:39.123456789Z");
	berth_crilog_format_time(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000000000Z");
	berth_crilog_format_time(-1, out);
	assert_string_equal(out, "1969-12-31T23:59:59.999999999Z");
	berth_crilog_format_time(1709164800000000007LL, out);
	assert_string_equal(out, "2024-02-29T00:00:00.000000007Z");
	/* Round trips, a day and a bit apart, across leap years and centuries. */
	for (int64_t t = -2208988800LL * 1000000000; t < 4102444800LL * 1000000000;
	     t += 90061000000007LL) {
		berth_crilog_format_time(t, out);
		assert_int_equal(parse(out), t);
	}
}

static bool valid(const char *s)
{
	return berth_crilog_valid(s, strlen(s), NULL);
}

static void test_valid(void **state)
{
	char *big;
	int64_t ns = 0;
	size_t hdr;
	(void)state;

	assert_true(valid("2026-11-27T10:54:39.123456789Z stdout F hello world"));
	assert_true(valid("2026-11-27T10:54:39.123456789Z stderr P part of a line "));
	assert_true(valid("2026-11-27T10:54:39.123456789Z stdout F ")); /* an empty line */
	assert_true(berth_crilog_valid("2026-11-27T10:54:39.000000001Z stdout F x", 41, &ns));
	assert_int_equal(ns, 1795776879000000001LL);

	assert_false(valid(""));
	assert_false(valid("hello world"));
	assert_false(valid("2026-11-27T10:54:39.123456789Z stdout F"));   /* no space after tag */
	assert_false(valid("2026-11-27T10:54:39.123456789Z stdin F x"));  /* stream */
	assert_false(valid("2026-11-27T10:54:39.123456789Z stdout X x")); /* tag */
	assert_false(valid("2026-11-27T10:54:39.123456789Z stdout FP x"));
	assert_false(valid("2026-11-27T10:54:39.123456789Z  stdout F x"));
	assert_false(valid("2026-11-27T10:54:39.123456789 stdout F x")); /* no zone */
	assert_false(valid("2026-11-27T10:54:39.123456789Z stdout F a\nb"));

	/* The longest record is the writer's 16 KiB split plus a header. */
	hdr = strlen("2026-11-27T10:54:39.123456789Z stdout P ");
	big = xmalloc(BERTH_CRILOG_RECORD_MAX + 2);
	memcpy(big, "2026-11-27T10:54:39.123456789Z stdout P ", hdr);
	memset(big + hdr, 'x', BERTH_CRILOG_RECORD_MAX + 1 - hdr);
	assert_true(berth_crilog_valid(big, hdr + BERTH_CRILOG_CONTENT_MAX, NULL));
	assert_true(berth_crilog_valid(big, BERTH_CRILOG_RECORD_MAX, NULL));
	assert_false(berth_crilog_valid(big, BERTH_CRILOG_RECORD_MAX + 1, NULL));
	free(big);
}

#define R(n) "2026-11-27T10:54:39.00000000" #n "Z stdout F line " #n "\n"

static void test_tail_window(void **state)
{
	const char *buf = R(1) R(2) "garbage\n" R(3) "2026-11-27T10:54:39.000000004Z std";
	size_t len = strlen(buf), found, at;
	size_t r1 = 0, r2 = strlen(R(1)), g = r2 + strlen(R(2)), r3 = g + 8;
	(void)state;

	/* Two from the end: record 3, the garbage line passed over, record 2. */
	at = berth_crilog_tail(buf, len, true, 2, &found);
	assert_int_equal(found, 2);
	assert_int_equal(at, r2);
	at = berth_crilog_tail(buf, len, true, 1, &found);
	assert_int_equal(found, 1);
	assert_int_equal(at, r3);
	/* More than there are: all three, from the start. */
	at = berth_crilog_tail(buf, len, true, 10, &found);
	assert_int_equal(found, 3);
	assert_int_equal(at, r1);
	/* None: the end of the complete records (the unfinished one ignored). */
	at = berth_crilog_tail(buf, len, true, 0, &found);
	assert_int_equal(found, 0);
	assert_int_equal(at, r3 + strlen(R(3)));
	/* A window that may start mid-line leaves its first line for the next window. */
	at = berth_crilog_tail(buf + 5, len - 5, false, 10, &found);
	assert_int_equal(found, 2);
	assert_int_equal(at + 5, r2);
	/* A window inside one long line: 0, nothing found. */
	at = berth_crilog_tail("xxxxxxxx\n", 9, false, 1, &found);
	assert_int_equal(found, 0);
	assert_int_equal(at, 0);
	at = berth_crilog_tail("xxxxxxxx", 8, false, 1, &found);
	assert_int_equal(found, 0);
	assert_int_equal(at, 0);
	at = berth_crilog_tail("", 0, true, 1, &found);
	assert_int_equal(found, 0);
	assert_int_equal(at, 0);
}

/* A log file of `n` lines: mostly records of random lengths, some garbage, some overlong. */
static char *make_log(unsigned seed, size_t n, size_t *len)
{
	size_t cap = n * (BERTH_CRILOG_RECORD_MAX + 4096) + 64, l = 0;
	char *buf = xmalloc(cap);

	srand(seed);
	for (size_t i = 0; i < n; i++) {
		int kind = rand() % 20;
		size_t content;

		if (kind == 0) {
			l += (size_t)sprintf(buf + l, "not a record %zu\n", i);
			continue;
		}
		if (kind == 1) {
			/* Longer than any record (and than the test's windows). */
			content = BERTH_CRILOG_RECORD_MAX + (size_t)(rand() % 4096);
		} else if (kind == 2) {
			content = BERTH_CRILOG_CONTENT_MAX;
		} else {
			content = (size_t)(rand() % 300);
		}
		l += (size_t)sprintf(buf + l, "2026-11-27T10:54:39.%09zuZ %s %c ", i,
		                     rand() % 2 ? "stdout" : "stderr", rand() % 2 ? 'F' : 'P');
		memset(buf + l, 'a' + (int)(i % 26), content);
		l += content;
		buf[l++] = '\n';
	}
	/* A record still being written. */
	l += (size_t)sprintf(buf + l, "2026-11-27T10:54:40.000000000Z stdout F unfinis");
	*len = l;
	return buf;
}

/* The starts of the valid records, by a plain forward pass. */
static size_t forward_starts(const char *buf, size_t len, size_t *starts)
{
	size_t n = 0;

	for (size_t at = 0; at < len;) {
		const char *nl = memchr(buf + at, '\n', len - at);
		if (nl == NULL)
			break;
		if (berth_crilog_valid(buf + at, (size_t)(nl - buf) - at, NULL))
			starts[n++] = at;
		at = (size_t)(nl - buf) + 1;
	}
	return n;
}

static void test_tail_fd(void **state)
{
	static const size_t windows[] = {BERTH_CRILOG_RECORD_MAX + 1, 20000, 65536};
	static const size_t wants[] = {0, 1, 2, 3, 10, 77, 150, 1000};
	size_t len, total, *starts;
	char *log = make_log(42, 200, &len);
	int fd = memfd_create("log", MFD_CLOEXEC);
	(void)state;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, log, len), (ssize_t)len);
	starts = xcalloc(200, sizeof(*starts));
	total = forward_starts(log, len, starts);
	assert_true(total > 150 && total < 200);
	for (size_t w = 0; w < BERTH_ARRAY_SIZE(windows); w++) {
		char *buf = xmalloc(windows[w]);
		for (size_t i = 0; i < BERTH_ARRAY_SIZE(wants); i++) {
			size_t want = wants[i], found = 99;
			uint64_t start = 1;

			assert_int_equal(berth_crilog_tail_fd(fd, len, want, buf, windows[w],
			                                      &start, &found),
			                 0);
			if (want == 0) {
				assert_int_equal(found, 0);
				assert_int_equal(start, strrchr(log, '\n') - log + 1);
			} else if (want <= total) {
				assert_int_equal(found, want);
				assert_int_equal(start, starts[total - want]);
			} else {
				assert_int_equal(found, total);
				assert_int_equal(start, 0);
			}
		}
		free(buf);
	}
	free(starts);
	free(log);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_time), cmocka_unit_test(test_format_time),
	        cmocka_unit_test(test_valid),      cmocka_unit_test(test_tail_window),
	        cmocka_unit_test(test_tail_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
