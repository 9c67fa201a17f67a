/* SPDX-License-Identifier: Apache-2.0 */
/* The client's pure helpers: CRI logs, server-sent events, times, tables, arguments. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "berth/util.h"
#include "client/client.h"

/* ---- CRI ---- */

struct cri_run {
	char *out, *err;
	size_t out_len, err_len;
	FILE *fo, *fe;
	struct berth_cri p;
};

static void cri_start(struct cri_run *r, bool timestamps)
{
	memset(r, 0, sizeof(*r));
	r->fo = open_memstream(&r->out, &r->out_len);
	r->fe = open_memstream(&r->err, &r->err_len);
	assert_non_null(r->fo);
	assert_non_null(r->fe);
	berth_cri_init(&r->p, r->fo, r->fe, timestamps);
}

static void cri_end(struct cri_run *r)
{
	assert_int_equal(berth_cri_finish(&r->p), 0);
	fclose(r->fo);
	fclose(r->fe);
}

static void cri_free(struct cri_run *r)
{
	free(r->out);
	free(r->err);
}

/* Feed `s` in pieces of `step` bytes: the parser must not care where the pieces end. */
static void feed(struct cri_run *r, const char *s, size_t step)
{
	size_t len = strlen(s);

	for (size_t i = 0; i < len; i += step)
		assert_int_equal(berth_cri_feed(&r->p, s + i, len - i < step ? len - i : step), 0);
}

static const char cri_sample[] = "2024-05-01T12:00:00.000000001Z stdout F hello\n"
                                 "2024-05-01T12:00:00.000000002Z stderr F oops: bad\n"
                                 "2024-05-01T12:00:01.000000000Z stdout P a long \n"
                                 "2024-05-01T12:00:01.500000000Z stdout P line in \n"
                                 "2024-05-01T12:00:02.000000000Z stdout F three parts\n"
                                 "2024-05-01T12:00:03.000000000Z stdout F \n"
                                 "2024-05-01T12:00:04.000000000Z stdout F  two  spaces \n";

static void test_cri_streams_and_partials(void **state)
{
	static const size_t steps[] = {1, 2, 3, 7, 64, 4096};
	(void)state;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(steps); i++) {
		struct cri_run r;
		cri_start(&r, false);
		feed(&r, cri_sample, steps[i]);
		cri_end(&r);
		assert_string_equal(r.out, "hello\n"
		                           "a long line in three parts\n"
		                           "\n"
		                           " two  spaces \n");
		assert_string_equal(r.err, "oops: bad\n");
		cri_free(&r);
	}
}

static void test_cri_timestamps(void **state)
{
	struct cri_run r;
	(void)state;

	cri_start(&r, true);
	feed(&r, cri_sample, 5);
	cri_end(&r);
	/* A joined line carries the time of its first part. */
	assert_string_equal(r.out, "2024-05-01T12:00:00.000000001Z hello\n"
	                           "2024-05-01T12:00:01.000000000Z a long line in three parts\n"
	                           "2024-05-01T12:00:03.000000000Z \n"
	                           "2024-05-01T12:00:04.000000000Z  two  spaces \n");
	assert_string_equal(r.err, "2024-05-01T12:00:00.000000002Z oops: bad\n");
	cri_free(&r);
}

static void test_cri_interleaved_streams(void **state)
{
	struct cri_run r;
	(void)state;

	/* A partial stdout line, a whole stderr line, then the rest of the stdout one. */
	cri_start(&r, true);
	feed(&r,
	     "T1 stdout P abc\n"
	     "T2 stderr F err\n"
	     "T3 stdout F def\n",
	     4);
	cri_end(&r);
	assert_string_equal(r.out, "T1 abcdef\n");
	assert_string_equal(r.err, "T2 err\n");
	cri_free(&r);
}

static void test_cri_not_cri(void **state)
{
	char longline[400];
	cleanup_free char *input = NULL;
	cleanup_free char *want = NULL;
	struct cri_run r;
	(void)state;

	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	input = xasprintf("just text\n"
	                  "T stdin F nope\n"
	                  "T stdout X nope\n"
	                  "\n"
	                  "%s\n"
	                  "T stdout F ok\n"
	                  "T stdout F",
	                  longline);
	/* Lines that are not records pass through whole; a record without content is empty. */
	want = xasprintf("just text\n"
	                 "T stdin F nope\n"
	                 "T stdout X nope\n"
	                 "\n"
	                 "%s\n"
	                 "ok\n"
	                 "\n",
	                 longline);
	cri_start(&r, false);
	feed(&r, input, 13);
	cri_end(&r);
	assert_string_equal(r.out, want);
	assert_string_equal(r.err, "");
	cri_free(&r);
}

static void test_cri_unfinished(void **state)
{
	struct cri_run r;
	(void)state;

	/* The stream ends inside a partial line and inside a record: both are ended. */
	cri_start(&r, false);
	feed(&r, "T1 stderr P half\nT2 stdout F cut sho", 100);
	cri_end(&r);
	assert_string_equal(r.out, "cut sho\n");
	assert_string_equal(r.err, "half\n");
	cri_free(&r);
}

/* ---- server-sent events ---- */

struct sse_seen {
	char log[4096];
	int n;
	int fail_at;
};

static int on_sse(const char *id, const char *type, const char *data, void *arg, berth_error_t *err)
{
	struct sse_seen *s = arg;
	size_t used = strlen(s->log);

	if (++s->n == s->fail_at)
		return berth_error_set(err, 0, "stop here");
	snprintf(s->log + used, sizeof(s->log) - used, "[%s|%s|%s]", id, type, data);
	return 0;
}

static void test_sse(void **state)
{
	static const char stream[] = ": keepalive\n\n"
	                             "id: 1\nevent: start\ndata: {\"a\":1}\n\n"
	                             "id: 2\r\nevent: stop\r\ndata: one\r\ndata: two\r\n\r\n"
	                             "id:3\revent:x\rdata:tight\r\r"
	                             "event: lonely\n\n"
	                             "data\n\n"
	                             "retry: 10\nid: 4\ndata: last\n\n"
	                             "data: unfinished";
	static const size_t steps[] = {1, 2, 5, 1000};
	(void)state;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(steps); i++) {
		struct sse_seen seen = {0};
		struct berth_sse p;
		berth_error_t err;
		size_t len = strlen(stream);

		berth_sse_init(&p, on_sse, &seen);
		for (size_t off = 0; off < len; off += steps[i])
			assert_int_equal(berth_sse_feed(&p, stream + off,
			                                len - off < steps[i] ? len - off : steps[i],
			                                &err),
			                 0);
		berth_sse_free(&p);
		/* An event without data is none; a data field without a colon is empty data. */
		assert_string_equal(seen.log, "[1|start|{\"a\":1}][2|stop|one\ntwo][3|x|tight]"
		                              "[3|message|][4|message|last]");
	}
}

static void test_sse_errors(void **state)
{
	struct sse_seen seen = {.fail_at = 2};
	cleanup_free char *huge = xmalloc(BERTH_SSE_LINE_MAX + 10);
	struct berth_sse p;
	berth_error_t err;
	(void)state;

	/* The callback's failure stops the feed with its message. */
	berth_sse_init(&p, on_sse, &seen);
	assert_true(berth_sse_feed(&p, "data: a\n\ndata: b\n\ndata: c\n\n", 27, &err) < 0);
	assert_string_equal(err.message, "stop here");
	assert_int_equal(seen.n, 2);
	berth_sse_free(&p);

	/* A line beyond the bound is refused, not buffered. */
	memset(huge, 'x', BERTH_SSE_LINE_MAX + 10);
	berth_sse_init(&p, on_sse, &seen);
	assert_true(berth_sse_feed(&p, huge, BERTH_SSE_LINE_MAX + 10, &err) < 0);
	assert_non_null(strstr(err.message, "longer than"));
	berth_sse_free(&p);
}

/* ---- times and tables ---- */

static void test_relative_time(void **state)
{
	const int64_t now = 1700000000000;
	char b[32];
	(void)state;

	berth_client_relative_time(now, 0, b, sizeof(b));
	assert_string_equal(b, "-");
	berth_client_relative_time(now, now - 400, b, sizeof(b));
	assert_string_equal(b, "just now");
	berth_client_relative_time(now, now + 5000, b, sizeof(b));
	assert_string_equal(b, "just now");
	berth_client_relative_time(now, now - 42000, b, sizeof(b));
	assert_string_equal(b, "42s ago");
	berth_client_relative_time(now, now - 59999, b, sizeof(b));
	assert_string_equal(b, "59s ago");
	berth_client_relative_time(now, now - 60000, b, sizeof(b));
	assert_string_equal(b, "1m ago");
	berth_client_relative_time(now, now - 3 * 60000 - 59000, b, sizeof(b));
	assert_string_equal(b, "3m ago");
	berth_client_relative_time(now, now - 5 * 3600000, b, sizeof(b));
	assert_string_equal(b, "5h ago");
	berth_client_relative_time(now, now - 47 * 3600000, b, sizeof(b));
	assert_string_equal(b, "47h ago");
	berth_client_relative_time(now, now - 3 * 86400000LL, b, sizeof(b));
	assert_string_equal(b, "3d ago");
}

static void test_durations_and_times(void **state)
{
	char b[48];
	(void)state;

	berth_client_duration(0, b, sizeof(b));
	assert_string_equal(b, "never");
	berth_client_duration(600000, b, sizeof(b));
	assert_string_equal(b, "10m");
	berth_client_duration(5400000, b, sizeof(b));
	assert_string_equal(b, "1h30m");
	berth_client_duration(1500, b, sizeof(b));
	assert_string_equal(b, "1s500ms");
	berth_client_duration(3600000 + 1, b, sizeof(b));
	assert_string_equal(b, "1h1ms");
	berth_client_time(1714564800123, b, sizeof(b));
	assert_string_equal(b, "2024-05-01T12:00:00.123Z");
	berth_client_time(-1, b, sizeof(b));
	assert_string_equal(b, "-");
}

static void test_table(void **state)
{
	static const char *const headers[] = {"CLASS", "NAME", "STATE"};
	const char *row1[] = {"Echo", "alice", "healthy"};
	const char *row2[] = {"Site", "b\033[2Jé", NULL};
	cleanup_free char *text = NULL;
	struct berth_table t;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	(void)state;

	berth_table_init(&t, 3, headers);
	berth_table_add(&t, row1);
	berth_table_add(&t, row2);
	berth_table_print(&t, f);
	berth_table_free(&t);
	fclose(f);
	/* Columns by characters (é is one); an escape cannot reach the terminal; NULL is "-". */
	assert_string_equal(text, "CLASS   NAME     STATE\n"
	                          "Echo    alice    healthy\n"
	                          "Site    b?[2Jé   -\n");
}

/* ---- arguments ---- */

static void test_parse_instance(void **state)
{
	char *cls = NULL;
	const char *name = NULL;
	berth_error_t err;
	(void)state;

	assert_int_equal(berth_client_parse_instance("Site/alice", &cls, &name, &err), 0);
	assert_string_equal(cls, "Site");
	assert_string_equal(name, "alice");
	free(cls);
	assert_int_equal(berth_client_parse_instance("Site/a b?c", &cls, &name, &err), 0);
	assert_string_equal(name, "a b?c");
	free(cls);
	assert_true(berth_client_parse_instance("Site", &cls, &name, &err) < 0);
	assert_string_equal(err.message, "`Site` is not CLASS/NAME (e.g. Site/alice)");
	assert_true(berth_client_parse_instance("/alice", &cls, &name, &err) < 0);
	assert_true(berth_client_parse_instance("Site/", &cls, &name, &err) < 0);
	assert_true(berth_client_parse_instance("Site/a/b", &cls, &name, &err) < 0);
	assert_string_equal(err.message, "`Site/a/b`: an instance name cannot contain `/`");
}

static void test_parse_kv(void **state)
{
	json_t *o = json_object();
	berth_error_t err;
	(void)state;

	assert_int_equal(berth_client_parse_kv("--env", "A=1", o, &err), 0);
	assert_int_equal(berth_client_parse_kv("--env", "B=", o, &err), 0);
	assert_int_equal(berth_client_parse_kv("--env", "C=x=y", o, &err), 0);
	assert_string_equal(json_string_value(json_object_get(o, "A")), "1");
	assert_string_equal(json_string_value(json_object_get(o, "B")), "");
	assert_string_equal(json_string_value(json_object_get(o, "C")), "x=y");
	assert_true(berth_client_parse_kv("--env", "NOVALUE", o, &err) < 0);
	assert_string_equal(err.message, "--env `NOVALUE` is not KEY=VALUE");
	assert_true(berth_client_parse_kv("--label", "=v", o, &err) < 0);
	assert_int_equal(json_object_size(o), 3);
	json_decref(o);
}

static void check_url(const char *host, const char *want)
{
	char *url = NULL;
	berth_error_t err;

	assert_int_equal(berth_client_base_url(host, &url, &err), 0);
	assert_string_equal(url, want);
	free(url);
}

static void test_base_url(void **state)
{
	char *url = NULL;
	berth_error_t err;
	(void)state;

	check_url("127.0.0.1:7070", "http://127.0.0.1:7070");
	check_url("localhost:7070", "http://localhost:7070");
	check_url("[::1]:7070", "http://[::1]:7070");
	check_url("http://127.0.0.1:7070/", "http://127.0.0.1:7070");
	check_url("https://berth.example:8443/api/", "https://berth.example:8443/api");
	check_url("http://berth.internal", "http://berth.internal");
	assert_true(berth_client_base_url("127.0.0.1", &url, &err) < 0);
	assert_string_equal(err.message,
	                    "`127.0.0.1` has no port (use HOST:PORT, e.g. 127.0.0.1:7070)");
	assert_true(berth_client_base_url("ftp://h:21", &url, &err) < 0);
	assert_string_equal(err.message, "`ftp://h:21`: berthd speaks http or https, not ftp");
	assert_true(berth_client_base_url("http://h:1/?x=1", &url, &err) < 0);
	assert_true(berth_client_base_url("", &url, &err) < 0);
	assert_true(berth_client_base_url("h:notaport", &url, &err) < 0);
	assert_null(url);
}

static void test_instance_path(void **state)
{
	cleanup_free char *p = berth_client_instance_path("Site", "a b/é?&", "/state");
	(void)state;

	assert_string_equal(p, "/v1/classes/Site/instances/a%20b%2F%C3%A9%3F%26/state");
}

static void test_getopt(void **state)
{
	static const struct option own[] = {
	        {"signal", required_argument, NULL, 's'},
	        {"all", no_argument, NULL, 'a'},
	        {NULL, 0, NULL, 0},
	};
	char *argv[] = {(char *)"stop",   (char *)"Site/a",
	                (char *)"--json", (char *)"-s",
	                (char *)"KILL",   (char *)"--socket=/x.sock",
	                (char *)"--all",  (char *)"--token-file",
	                (char *)"/t",     NULL};
	struct berth_client_opts o = {0};
	int seen[3] = {0}, c;
	(void)state;

	optind = 0;
	while ((c = berth_client_getopt(9, argv, "s:a", own, &o)) != -1) {
		if (c == 's') {
			assert_string_equal(optarg, "KILL");
			seen[0]++;
		} else if (c == 'a') {
			seen[1]++;
		} else {
			seen[2]++;
		}
	}
	/* The command's own options come back; the connection options are recorded. */
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[1], 1);
	assert_int_equal(seen[2], 0);
	assert_true(o.json);
	assert_false(o.help);
	assert_string_equal(o.socket, "/x.sock");
	assert_string_equal(o.token_file, "/t");
	/* Operands after options (GNU permutation). */
	assert_int_equal(optind, 8);
	assert_string_equal(argv[optind], "Site/a");
}

static void test_parse_location(void **state)
{
	char *cls = NULL;
	const char *name = NULL, *path = NULL;
	berth_error_t err;
	(void)state;

	assert_int_equal(
	        berth_client_parse_location("App/alice:/w/x.txt", &cls, &name, &path, &err), 0);
	assert_string_equal(cls, "App");
	assert_string_equal(name, "alice");
	assert_string_equal(path, "/w/x.txt");
	free(cls);
	/* A colon in the container's path is the path's. */
	assert_int_equal(berth_client_parse_location("App/a:/x:y", &cls, &name, &path, &err), 0);
	assert_string_equal(path, "/x:y");
	free(cls);
	/* Local: no colon, "-", ./ or / first, no or several slashes before the colon. */
	static const char *const local[] = {"file.txt", "-",        "./a:b", "/tmp/a:b",
	                                    "a:b",      "d/e/f:/g", "/x",    "dir/"};
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(local); i++) {
		assert_int_equal(berth_client_parse_location(local[i], &cls, &name, &path, &err),
		                 0);
		assert_null(cls);
		assert_string_equal(path, local[i]);
	}
	assert_true(berth_client_parse_location("App/a:rel", &cls, &name, &path, &err) < 0);
	assert_string_equal(err.message, "`App/a:rel`: the path in the container must be "
	                                 "absolute (CLASS/NAME:/PATH)");
	assert_true(berth_client_parse_location("App/a:", &cls, &name, &path, &err) < 0);
	assert_string_equal(berth_client_base_name("/w/x.txt"), "x.txt");
	assert_string_equal(berth_client_base_name("x"), "x");
	assert_string_equal(berth_client_base_name("/w/"), "");
}

static void test_shell_join(void **state)
{
	const char *argv[] = {"printf", "%s|", "a b", "it's", "$HOME", "", "--x=1,2:3/4.5@6+7"};
	char *s;
	(void)state;

	/* Only the test's literals are const: the command's words are argv's. */
	s = berth_client_shell_join((char *const *)argv, BERTH_ARRAY_SIZE(argv));
	assert_string_equal(s, "printf '%s|' 'a b' 'it'\\''s' '$HOME' '' --x=1,2:3/4.5@6+7");
	free(s);
	s = berth_client_shell_join((char *const *)argv, 1);
	assert_string_equal(s, "printf");
	free(s);
}

static void test_parse_time(void **state)
{
	(void)state;

	assert_int_equal(berth_client_parse_time("1970-01-01T00:00:01.5Z"), 1500);
	assert_int_equal(berth_client_parse_time("2024-05-01T12:00:00.123Z"), 1714564800123);
	assert_int_equal(berth_client_parse_time("2024-05-01T12:00:00Z"), 1714564800000);
	assert_int_equal(berth_client_parse_time("2024-05-01T12:00:00.123456Z"), 1714564800123);
	assert_int_equal(berth_client_parse_time("2024-05-01T12:00:00+02:00"), -1);
	assert_int_equal(berth_client_parse_time("2024-05-01T12:00:00.Z"), -1);
	assert_int_equal(berth_client_parse_time("yesterday"), -1);
	assert_int_equal(berth_client_parse_time(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cri_streams_and_partials),
	        cmocka_unit_test(test_cri_timestamps),
	        cmocka_unit_test(test_cri_interleaved_streams),
	        cmocka_unit_test(test_cri_not_cri),
	        cmocka_unit_test(test_cri_unfinished),
	        cmocka_unit_test(test_sse),
	        cmocka_unit_test(test_sse_errors),
	        cmocka_unit_test(test_relative_time),
	        cmocka_unit_test(test_durations_and_times),
	        cmocka_unit_test(test_table),
	        cmocka_unit_test(test_parse_instance),
	        cmocka_unit_test(test_parse_kv),
	        cmocka_unit_test(test_base_url),
	        cmocka_unit_test(test_instance_path),
	        cmocka_unit_test(test_getopt),
	        cmocka_unit_test(test_parse_location),
	        cmocka_unit_test(test_shell_join),
	        cmocka_unit_test(test_parse_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
