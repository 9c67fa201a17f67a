/* SPDX-License-Identifier: Apache-2.0 */
/* The container's log as its init writes it: CRI records, parts, rotation. */
#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "runtime/runtime-internal.h"

struct fixture {
	char dir[64];
	int dir_fd;
	int pipe[2];
	struct berth_log_writer w;
	struct berth_log_stream s;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-logwriter.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->dir_fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->dir_fd >= 0);
	assert_int_equal(pipe2(f->pipe, O_CLOEXEC | O_NONBLOCK), 0);
	f->s.fd = f->pipe[0];
	f->s.name = "stdout";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	berth_log_writer_close(&f->w);
	close(f->pipe[0]);
	if (f->pipe[1] >= 0)
		close(f->pipe[1]);
	close(f->dir_fd);
	berth_rmtree(f->dir, NULL);
	free(f);
	return 0;
}

static char *slurp(struct fixture *f, const char *name)
{
	char *text = NULL;
	cleanup_free char *path = xasprintf("%s/%s", f->dir, name);

	if (berth_read_file_at(AT_FDCWD, path, 1 << 20, &text, NULL, NULL) < 0)
		return NULL;
	return text;
}

static void put(struct fixture *f, const char *s)
{
	assert_int_equal(write(f->pipe[1], s, strlen(s)), (ssize_t)strlen(s));
	assert_int_equal(berth_log_pump(&f->w, &f->s), 0);
}

/* Each line of `text` against "TIME STREAM TAG CONTENT"; returns the lines' tag+content. */
static char *records(const char *text)
{
	regex_t re;
	char *out = xcalloc(strlen(text) + 1, 1);
	const char *p = text;

	assert_int_equal(
	        regcomp(&re,
	                "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z "
	                "(stdout|stderr) [FP] ",
	                REG_EXTENDED),
	        0);
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		cleanup_free char *line = NULL;
		regmatch_t m[2];

		assert_non_null(nl);
		line = xstrndup(p, (size_t)(nl - p));
		assert_int_equal(regexec(&re, line, 2, m, 0), 0);
		/* "F content" or "P content", one per line */
		strcat(out, line + m[1].rm_eo + 1);
		strcat(out, "\n");
		p = nl + 1;
	}
	regfree(&re);
	return out;
}

static void test_lines_and_parts(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *text = NULL;
	cleanup_free char *recs = NULL;

	assert_int_equal(berth_log_writer_open(&f->w, f->dir_fd, 0, 2, NULL), 0);
	put(f, "hello\nwor");
	put(f, "ld\n\n");
	put(f, "unended");
	close(f->pipe[1]);
	f->pipe[1] = -1;
	/* EOF: the unended line goes as a part */
	assert_int_equal(berth_log_pump(&f->w, &f->s), 1);
	text = slurp(f, "container.log");
	assert_non_null(text);
	recs = records(text);
	assert_string_equal(recs, "F hello\nF world\nF \nP unended\n");
}

static void test_long_line_is_split(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *text = NULL;
	cleanup_free char *recs = NULL;
	cleanup_free char *line = xcalloc(BERTH_LOG_LINE_MAX + 11, 1);
	size_t off = 0;

	assert_int_equal(berth_log_writer_open(&f->w, f->dir_fd, 0, 2, NULL), 0);
	memset(line, 'x', BERTH_LOG_LINE_MAX + 9);
	line[BERTH_LOG_LINE_MAX + 9] = '\n';
	/* in pieces the pipe takes */
	while (off < strlen(line)) {
		size_t n = strlen(line) - off < 4096 ? strlen(line) - off : 4096;
		assert_int_equal(write(f->pipe[1], line + off, n), (ssize_t)n);
		off += n;
		berth_log_pump(&f->w, &f->s);
	}
	text = slurp(f, "container.log");
	recs = records(text);
	assert_int_equal(strncmp(recs, "P xxxx", 6), 0);
	assert_int_equal(strlen(recs), 2 + BERTH_LOG_LINE_MAX + 1 + 2 + 9 + 1);
	assert_string_equal(recs + 2 + BERTH_LOG_LINE_MAX + 1, "F xxxxxxxxx\n");
}

static void test_rotation(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	/* ~50 bytes a record: three records a file */
	assert_int_equal(berth_log_writer_open(&f->w, f->dir_fd, 160, 2, NULL), 0);
	for (int i = 0; i < 20; i++) {
		char msg[32];
		snprintf(msg, sizeof(msg), "line %02d\n", i);
		put(f, msg);
	}
	{
		cleanup_free char *cur = slurp(f, "container.log");
		cleanup_free char *one = slurp(f, "container.log.1");
		cleanup_free char *two = slurp(f, "container.log.2");
		assert_non_null(cur);
		assert_non_null(one);
		assert_non_null(two);
		assert_non_null(strstr(cur, "line 19\n"));
		/* oldest first: .2, .1, current; nothing doubled between them */
		assert_null(strstr(one, "line 19"));
		assert_true(strstr(two, "line") != NULL);
		assert_true(strlen(cur) <= 160 && strlen(one) <= 160 && strlen(two) <= 160);
	}
	assert_int_equal(fstatat(f->dir_fd, "container.log.3", &st, 0), -1);
}

static void test_appends_to_existing(void **state)
{
	struct fixture *f = *state;
	cleanup_free char *text = NULL;

	assert_int_equal(berth_log_writer_open(&f->w, f->dir_fd, 0, 2, NULL), 0);
	put(f, "first run\n");
	berth_log_writer_close(&f->w);
	/* the next container of the instance goes on in the same file */
	assert_int_equal(berth_log_writer_open(&f->w, f->dir_fd, 0, 2, NULL), 0);
	put(f, "second run\n");
	text = slurp(f, "container.log");
	assert_non_null(strstr(text, "F first run\n"));
	assert_non_null(strstr(text, "F second run\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_lines_and_parts, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_long_line_is_split, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_appends_to_existing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
