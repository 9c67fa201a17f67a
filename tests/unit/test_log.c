/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth/log.h"

/* stderr goes to a memfd while a test logs; capture_end() reads it back. */
static int saved_stderr = -1;
static int capture_fd = -1;
static char captured[16384];

static void capture_begin(void)
{
	capture_fd = memfd_create("stderr", MFD_CLOEXEC);
	assert_true(capture_fd >= 0);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(capture_fd, STDERR_FILENO), STDERR_FILENO);
}

static const char *capture_end(void)
{
	ssize_t n;

	fflush(stderr);
	assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(saved_stderr);
	n = pread(capture_fd, captured, sizeof(captured) - 1, 0);
	assert_true(n >= 0);
	captured[n] = '\0';
	close(capture_fd);
	return captured;
}

static int reset(void **state)
{
	(void)state;
	berth_log_init("berthd", BERTH_LOG_INFO);
	berth_log_set_format(BERTH_LOG_TEXT);
	unsetenv("JOURNAL_STREAM");
	return 0;
}

static void test_text_format(void **state)
{
	(void)state;
	capture_begin();
	berth_error_log("control API: %s", "refused");
	berth_warn("careful");
	berth_info("ready");
	berth_debug("not shown at info");
	assert_string_equal(capture_end(), "berthd: control API: refused\n"
	                                   "berthd: warning: careful\n"
	                                   "berthd: ready\n");
}

static void test_journal_format(void **state)
{
	(void)state;
	berth_log_init("berthd", BERTH_LOG_DEBUG);
	berth_log_set_format(BERTH_LOG_JOURNAL);
	capture_begin();
	berth_error_log("boom");
	berth_warn("careful");
	berth_info("ready: %d class", 1);
	berth_debug("details");
	assert_string_equal(capture_end(), "<3>boom\n<4>careful\n<6>ready: 1 class\n<7>details\n");
}

/* journald takes the priority of each line from that line: every line has one. */
static void test_journal_multiline(void **state)
{
	(void)state;
	berth_log_set_format(BERTH_LOG_JOURNAL);
	capture_begin();
	berth_warn("first\nsecond\n\nfourth");
	berth_info("ends with a newline\n");
	berth_error_log("%s", "");
	assert_string_equal(capture_end(), "<4>first\n<4>second\n<4>\n<4>fourth\n"
	                                   "<6>ends with a newline\n"
	                                   "<3>\n");
}

static void test_journal_bounded(void **state)
{
	static char msg[5000];
	const char *out;
	(void)state;
	berth_log_set_format(BERTH_LOG_JOURNAL);

	/* A long line is cut at the message buffer (2 KiB), still one line. */
	memset(msg, 'x', sizeof(msg) - 1);
	capture_begin();
	berth_info("%s", msg);
	out = capture_end();
	assert_int_equal(strlen(out), 3 + 2047 + 1);
	assert_memory_equal(out, "<6>xxx", 6);

	/* Newlines only: every one becomes a prefixed empty line, and nothing overflows. */
	memset(msg, '\n', sizeof(msg) - 1);
	capture_begin();
	berth_info("%s", msg);
	out = capture_end();
	assert_int_equal(strlen(out), 4 * 2047);
	assert_memory_equal(out + strlen(out) - 8, "<6>\n<6>\n", 8);
}

static void test_parse_format(void **state)
{
	enum berth_log_format f = BERTH_LOG_JOURNAL;
	(void)state;
	assert_int_equal(berth_log_parse_format("text", &f), 0);
	assert_int_equal(f, BERTH_LOG_TEXT);
	assert_int_equal(berth_log_parse_format("journal", &f), 0);
	assert_int_equal(f, BERTH_LOG_JOURNAL);
	/* auto without $JOURNAL_STREAM: text. */
	assert_int_equal(berth_log_parse_format("auto", &f), 0);
	assert_int_equal(f, BERTH_LOG_TEXT);
	assert_int_equal(berth_log_parse_format("Journal", &f), -1);
	assert_int_equal(berth_log_parse_format("", &f), -1);
	assert_int_equal(berth_log_parse_format("syslog", &f), -1);
}

static const char *const bad_streams[] = {
        "",
        ":",
        "1:",
        ":2",
        "1:2x",
        "x1:2",
        "1 :2",
        "-1:2",
        "1:-2",
        "1;2",
        "99999999999999999999999:1",
};

/* $JOURNAL_STREAM must name stderr itself: device and inode of its fstat(). */
static void test_stderr_is_journal(void **state)
{
	enum berth_log_format f = BERTH_LOG_TEXT;
	char value[64];
	struct stat st;
	(void)state;

	capture_begin();
	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", value, 1);
	assert_true(berth_log_stderr_is_journal());
	assert_int_equal(berth_log_parse_format("auto", &f), 0);
	assert_int_equal(f, BERTH_LOG_JOURNAL);

	/* The variable inherited by a process whose stderr went elsewhere. */
	snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", value, 1);
	assert_false(berth_log_stderr_is_journal());
	assert_int_equal(berth_log_parse_format("auto", &f), 0);
	assert_int_equal(f, BERTH_LOG_TEXT);

	/* Malformed values are not the journal. */
	for (size_t i = 0; i < sizeof(bad_streams) / sizeof(bad_streams[0]); i++) {
		setenv("JOURNAL_STREAM", bad_streams[i], 1);
		assert_false(berth_log_stderr_is_journal());
	}
	unsetenv("JOURNAL_STREAM");
	assert_false(berth_log_stderr_is_journal());
	capture_end();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_text_format, reset),
	        cmocka_unit_test_setup(test_journal_format, reset),
	        cmocka_unit_test_setup(test_journal_multiline, reset),
	        cmocka_unit_test_setup(test_journal_bounded, reset),
	        cmocka_unit_test_setup(test_parse_format, reset),
	        cmocka_unit_test_setup(test_stderr_is_journal, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
