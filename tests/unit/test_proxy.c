/* SPDX-License-Identifier: Apache-2.0 */
/* The proxy's pure half: heads, the raw-line scan, rewriting, chunk framing, routes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/http.h"
#include "proxy/proxy.h"

/* A head as http-parser would deliver it, each string in two pieces. */
static void head_of(struct berth_proxy_head *h, const char *target, const char *const *kv)
{
	berth_proxy_head_init(h, 64 * 1024, 64);
	assert_int_equal(berth_proxy_head_target(h, target, 1), 0);
	assert_int_equal(berth_proxy_head_target(h, target + 1, strlen(target) - 1), 0);
	for (size_t i = 0; kv[i] != NULL; i += 2) {
		size_t nl = strlen(kv[i]), vl = strlen(kv[i + 1]);
		assert_int_equal(berth_proxy_head_name(h, kv[i], nl / 2), 0);
		assert_int_equal(berth_proxy_head_name(h, kv[i] + nl / 2, nl - nl / 2), 0);
		assert_int_equal(berth_proxy_head_value(h, kv[i + 1], vl / 2), 0);
		assert_int_equal(berth_proxy_head_value(h, kv[i + 1] + vl / 2, vl - vl / 2), 0);
	}
}

static size_t slen(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

static char *text(struct berth_proxy_buf *b)
{
	char *s = malloc(b->len + 1);
	memcpy(s, b->data, b->len);
	s[b->len] = '\0';
	return s;
}

static void test_head(void **state)
{
	static const char *const kv[] = {"Host", "example.com", "X-A", "1", "x-a", "2", NULL};
	struct berth_proxy_head h;
	size_t len;
	const char *v;
	(void)state;

	head_of(&h, "/path?q", kv);
	assert_int_equal(h.n_fields, 3);
	assert_int_equal(h.target_len, 7);
	assert_memory_equal(h.buf.data + h.target, "/path?q", 7);
	v = berth_proxy_head_get(&h, "HOST", &len);
	assert_non_null(v);
	assert_int_equal(len, 11);
	assert_memory_equal(v, "example.com", 11);
	assert_int_equal(berth_proxy_head_count(&h, "x-A"), 2);
	assert_null(berth_proxy_head_get(&h, "missing", &len));
	/* Reused: nothing of the last message stays. */
	berth_proxy_head_reset(&h);
	assert_int_equal(h.n_fields, 0);
	assert_int_equal(berth_proxy_head_count(&h, "host"), 0);
	berth_proxy_head_free(&h);

	/* Bounded in bytes and fields. */
	berth_proxy_head_init(&h, 8, 1);
	assert_int_equal(berth_proxy_head_name(&h, "abcd", 4), 0);
	assert_int_equal(berth_proxy_head_value(&h, "efgh", 4), 0);
	assert_int_equal(berth_proxy_head_value(&h, "i", 1), -E2BIG);
	assert_int_equal(berth_proxy_head_name(&h, "j", 1), -E2BIG);
	berth_proxy_head_free(&h);
}

static int scan_all(const char *s, size_t step, size_t *end, const char **why)
{
	struct berth_proxy_scan sc = {0};
	size_t n = strlen(s), off = 0;

	while (off < n) {
		size_t len = n - off < step ? n - off : step, e;
		int r = berth_proxy_scan_head(&sc, s + off, len, &e, why);
		if (r != 0) {
			*end = off + e;
			return r;
		}
		off += len;
	}
	return 0;
}

static void test_scan(void **state)
{
	static const char ok[] = "GET / HTTP/1.1\r\nHost: a\r\nX: b c\r\n\r\nBODY\n";
	const char *why = NULL;
	size_t end;
	(void)state;

	/* In one piece and byte by byte: the head ends after the blank line. */
	assert_int_equal(scan_all(ok, 1000, &end, &why), 1);
	assert_int_equal(end, strlen(ok) - 5);
	assert_int_equal(scan_all(ok, 1, &end, &why), 1);
	assert_int_equal(end, strlen(ok) - 5);
	/* Empty lines before a request are allowed (RFC 9112 2.2). */
	assert_int_equal(scan_all("\r\nGET / HTTP/1.1\r\n\r\n", 3, &end, &why), 1);
	assert_int_equal(scan_all("GET / HTTP/1.1\r\nHost: a\r\n", 5, &end, &why), 0);

	assert_int_equal(scan_all("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 4, &end, &why), -EPROTO);
	assert_non_null(strstr(why, "obs-fold"));
	assert_int_equal(scan_all("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 100, &end, &why),
	                 -EPROTO);
	assert_int_equal(scan_all("GET / HTTP/1.1\nHost: a\n\n", 100, &end, &why), -EPROTO);
	assert_non_null(strstr(why, "bare LF"));
	assert_int_equal(scan_all("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 2, &end, &why), -EPROTO);
	assert_non_null(strstr(why, "bare CR"));
	/* Controls but HTAB: http-parser lets one start a value. */
	assert_int_equal(scan_all("GET / HTTP/1.1\r\nX: \001b\r\n\r\n", 3, &end, &why), -EPROTO);
	assert_non_null(strstr(why, "control character"));
	assert_int_equal(scan_all("GET / HTTP/1.1\r\nX: \177\r\n\r\n", 100, &end, &why), -EPROTO);
	assert_int_equal(scan_all("GET / HTTP/1.1\r\nX:\tb\t\xff\r\n\r\n", 100, &end, &why), 1);
}

static void test_request(void **state)
{
	static const char *const kv[] = {"Host",
	                                 "app.test",
	                                 "Connection",
	                                 "keep-alive, X-Hop",
	                                 "X-Hop",
	                                 "1",
	                                 "Keep-Alive",
	                                 "5",
	                                 "TE",
	                                 "trailers",
	                                 "Proxy-Authorization",
	                                 "x",
	                                 "Content-Length",
	                                 "3",
	                                 "Expect",
	                                 "100-continue",
	                                 "X-Forwarded-For",
	                                 "10.0.0.1",
	                                 "X-Forwarded-Proto",
	                                 "https",
	                                 "Upgrade",
	                                 "websocket",
	                                 "Accept",
	                                 "*/*",
	                                 NULL};
	struct berth_proxy_head h;
	struct berth_proxy_buf out = {.max = 4096};
	struct berth_proxy_request r = {
	        .method = "POST",
	        .target = "/x?y",
	        .target_len = 4,
	        .framing = BERTH_PROXY_BODY_CHUNKED,
	        .client_ip = "192.0.2.1",
	        .proto = "http",
	};
	char *s;
	(void)state;

	head_of(&h, "/api/x?y", kv);
	assert_int_equal(berth_proxy_build_request(&h, &r, &out), 0);
	s = text(&out);
	assert_string_equal(s, "POST /x?y HTTP/1.1\r\n"
	                       "Host: app.test\r\n"
	                       "Accept: */*\r\n"
	                       "X-Forwarded-For: 10.0.0.1, 192.0.2.1\r\n"
	                       "X-Forwarded-Proto: http\r\n"
	                       "X-Forwarded-Host: app.test\r\n"
	                       "Transfer-Encoding: chunked\r\n"
	                       "\r\n");
	free(s);

	/* A WebSocket keeps its upgrade; a length is the proxy's own; no Host: one. */
	static const char *const kv2[] = {"Upgrade",           "websocket", "Connection", "Upgrade",
	                                  "Sec-WebSocket-Key", "k",         NULL};
	berth_proxy_head_free(&h);
	head_of(&h, "/ws", kv2);
	out.len = 0;
	r.framing = BERTH_PROXY_BODY_LENGTH;
	r.length = 0;
	r.websocket = true;
	assert_int_equal(berth_proxy_build_request(&h, &r, &out), 0);
	s = text(&out);
	assert_string_equal(s, "POST /x?y HTTP/1.1\r\n"
	                       "Sec-WebSocket-Key: k\r\n"
	                       "Host: localhost\r\n"
	                       "X-Forwarded-For: 192.0.2.1\r\n"
	                       "X-Forwarded-Proto: http\r\n"
	                       "Content-Length: 0\r\n"
	                       "Connection: upgrade\r\nUpgrade: websocket\r\n"
	                       "\r\n");
	free(s);

	/* Bounded: a head that does not fit is refused whole. */
	out.len = 0;
	out.max = 40;
	assert_int_equal(berth_proxy_build_request(&h, &r, &out), -E2BIG);
	berth_proxy_buf_free(&out);
	berth_proxy_head_free(&h);
}

static void test_response(void **state)
{
	static const char *const kv[] = {"Content-Type",
	                                 "text/plain",
	                                 "Content-Length",
	                                 "5",
	                                 "Transfer-Encoding",
	                                 "chunked",
	                                 "Connection",
	                                 "close",
	                                 "Keep-Alive",
	                                 "timeout=5",
	                                 NULL};
	struct berth_proxy_head h;
	struct berth_proxy_buf out = {.max = 4096};
	struct berth_proxy_response r = {
	        .status = 200, .framing = BERTH_PROXY_BODY_CHUNKED, .keep_alive = true};
	char *s;
	(void)state;

	head_of(&h, "Fine", kv);
	r.reason = h.buf.data + h.target;
	r.reason_len = h.target_len;
	assert_int_equal(berth_proxy_build_response(&h, &r, &out), 0);
	s = text(&out);
	assert_string_equal(s, "HTTP/1.1 200 Fine\r\nContent-Type: text/plain\r\n"
	                       "Transfer-Encoding: chunked\r\n\r\n");
	free(s);

	/* HTTP/1.0 client, a length: said explicitly; keep-alive said for 1.0. */
	out.len = 0;
	r.reason = NULL;
	r.framing = BERTH_PROXY_BODY_LENGTH;
	r.length = 5;
	r.http10 = true;
	assert_int_equal(berth_proxy_build_response(&h, &r, &out), 0);
	s = text(&out);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	                       "Content-Length: 5\r\nConnection: keep-alive\r\n\r\n");
	free(s);

	/* A body up to the close; a HEAD keeps the GET's length. */
	out.len = 0;
	r.framing = BERTH_PROXY_BODY_CLOSE;
	r.keep_alive = false;
	assert_int_equal(berth_proxy_build_response(&h, &r, &out), 0);
	s = text(&out);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	                       "Connection: close\r\n\r\n");
	free(s);
	out.len = 0;
	r.framing = BERTH_PROXY_BODY_NONE;
	r.keep_alive = true;
	r.http10 = false;
	assert_int_equal(berth_proxy_build_response(&h, &r, &out), 0);
	s = text(&out);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	                       "Content-Length: 5\r\n\r\n");
	free(s);

	/* 101: the upgrade goes on. */
	static const char *const kv2[] = {
	        "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept",
	        "abc",     NULL};
	berth_proxy_head_free(&h);
	head_of(&h, "Switching Protocols", kv2);
	out.len = 0;
	r = (struct berth_proxy_response){.status = 101, .upgrade = true};
	assert_int_equal(berth_proxy_build_response(&h, &r, &out), 0);
	s = text(&out);
	assert_string_equal(s, "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: abc\r\n"
	                       "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n");
	free(s);
	berth_proxy_buf_free(&out);
	berth_proxy_head_free(&h);
}

/* An instance's head with names http-parser let through: cleaned before it goes on. */
static void test_clean(void **state)
{
	static const char *const kv[] = {"Transfer-Encoding \t",
	                                 "chunked",
	                                 "Connection ",
	                                 "x-s",
	                                 "X-S",
	                                 "1",
	                                 "X Bad",
	                                 "1",
	                                 "X-Ok",
	                                 "2",
	                                 "X-Ctl",
	                                 "\001a\tb\177",
	                                 NULL};
	struct berth_proxy_head h;
	struct berth_proxy_buf out = {.max = 4096};
	struct berth_proxy_response r = {
	        .status = 200, .framing = BERTH_PROXY_BODY_LENGTH, .length = 5, .keep_alive = true};
	size_t len;
	char *s;
	(void)state;

	head_of(&h, "OK", kv);
	assert_true(berth_http_is_token("X-Ok", 4));
	assert_false(berth_http_is_token("X Bad", 5));
	assert_false(berth_http_is_token("", 0));
	assert_false(berth_http_is_token("X:", 2));
	assert_int_equal(berth_proxy_head_clean(&h), 1);
	assert_int_equal(h.n_fields, 5);
	assert_int_equal(berth_proxy_head_count(&h, "transfer-encoding"), 1);
	assert_non_null(berth_proxy_head_get(&h, "connection", &len));
	assert_int_equal(berth_proxy_build_response(&h, &r, &out), 0);
	s = text(&out);
	assert_string_equal(s, "HTTP/1.1 200 OK\r\nX-Ok: 2\r\nX-Ctl:  a\tb \r\n"
	                       "Content-Length: 5\r\n\r\n");
	free(s);
	/* Clean heads are left as they are. */
	assert_int_equal(berth_proxy_head_clean(&h), 0);
	assert_int_equal(h.n_fields, 5);
	berth_proxy_buf_free(&out);
	berth_proxy_head_free(&h);
}

static void test_framing(void **state)
{
	struct berth_proxy_buf out = {.max = 4096};
	char line[24], *s;
	(void)state;

	assert_int_equal(berth_proxy_chunk_line(line, 0), 3);
	assert_memory_equal(line, "0\r\n", 3);
	assert_int_equal(berth_proxy_chunk_line(line, 65536), 7);
	assert_memory_equal(line, "10000\r\n", 7);
	assert_int_equal(berth_proxy_chunk_line(line, SIZE_MAX), 18);
	assert_memory_equal(line, "ffffffffffffffff\r\n", 18);

	assert_int_equal(berth_proxy_build_error(503, "max_instances", "Retry-After: 1\r\n",
	                                         "Echo/a: busy", &out),
	                 0);
	s = text(&out);
	assert_string_equal(s, "HTTP/1.1 503 Service Unavailable\r\n"
	                       "Content-Type: text/plain; charset=utf-8\r\n"
	                       "X-Berth-Error: max_instances\r\nContent-Length: 20\r\n"
	                       "Connection: close\r\nRetry-After: 1\r\n\r\nberth: Echo/a: busy\n");
	free(s);
	berth_proxy_buf_free(&out);
}

static void test_routes(void **state)
{
	static char wild[] = "*.tenants.test", api[] = "api.test", v2p[] = "/v2/", v2[] = "v2",
	            up[] = "/u/", hp[] = "/h/", xt[] = "X-Tenant", rp[] = "/r/", lp[] = "/l/",
	            single[] = BERTH_CONFIG_SINGLETON_NAME;
	struct berth_config_route routes[] = {
	        {.host = wild, .pick = BERTH_CONFIG_PICK_HOST_LABEL, .pick_n = 0},
	        {.host = api, .path_prefix = v2p, .pick = BERTH_CONFIG_PICK_NAME, .pick_name = v2},
	        {.path_prefix = up, .pick = BERTH_CONFIG_PICK_PATH_SEGMENT, .pick_n = 1},
	        {.path_prefix = hp, .pick = BERTH_CONFIG_PICK_HEADER, .pick_name = xt},
	        {.path_prefix = rp, .pick = BERTH_CONFIG_PICK_RANDOM, .pick_n = 3},
	        {.path_prefix = lp, .pick = BERTH_CONFIG_PICK_LEAST_LOADED, .pick_n = 2},
	        {.pick = BERTH_CONFIG_PICK_SINGLETON, .pick_name = single},
	};
	static const char *const kv[] = {"x-tenant", "acme", NULL};
	struct berth_proxy_head h;
	char name[BERTH_PROXY_NAME_MAX + 1];
	const char *why = NULL;
	(void)state;

#define FIND(host, path) berth_proxy_route_find(routes, 7, host, slen(host), path, strlen(path))
	assert_ptr_equal(FIND("Alice.Tenants.Test:8080", "/x"), &routes[0]);
	assert_ptr_equal(FIND("a.b.tenants.test.", "/x"), &routes[0]);
	assert_ptr_equal(FIND("tenants.test", "/x"), &routes[6]);  /* not the bare domain */
	assert_ptr_equal(FIND("xtenants.test", "/x"), &routes[6]); /* nor a look-alike */
	assert_ptr_equal(FIND("api.test", "/v2/users"), &routes[1]);
	assert_ptr_equal(FIND("api.test", "/v2"), &routes[6]);      /* prefix is the bytes */
	assert_ptr_equal(FIND(NULL, "/v2/users"), &routes[6]);      /* host required */
	assert_ptr_equal(FIND("api.test", "/u/bob/x"), &routes[2]); /* first match wins */
	assert_true(berth_proxy_host_match("*.x.test", "a.x.test", 8));
	assert_false(berth_proxy_host_match("app.test", "app.test.evil", 13));

	head_of(&h, "/", kv);
#define PICK(i, host, path) \
	berth_proxy_pick(&routes[i], &h, host, slen(host), path, strlen(path), 7, name, &why)
	assert_int_equal(PICK(0, "Alice.tenants.test:80", "/"), 0);
	assert_string_equal(name, "alice");
	assert_int_equal(PICK(1, "api.test", "/v2/"), 0);
	assert_string_equal(name, "v2");
	assert_int_equal(PICK(2, NULL, "/u//bob/inbox"), 0);
	assert_string_equal(name, "bob");
	assert_int_equal(PICK(2, NULL, "/u/"), -ENOENT);
	assert_non_null(strstr(why, "segment"));
	assert_int_equal(PICK(3, NULL, "/h/"), 0);
	assert_string_equal(name, "acme");
	assert_int_equal(PICK(4, NULL, "/r/"), 0);
	assert_string_equal(name, "instance-1"); /* 7 % 3 */
	assert_int_equal(PICK(5, NULL, "/l/"), -EAGAIN);
	assert_int_equal(PICK(6, NULL, "/"), 0);
	assert_string_equal(name, "cf-singleton-container");
	berth_proxy_head_free(&h);

	/* A header without a value, one with control characters, one too long. */
	static const char *const bad[] = {"x-tenant", "a\x01", NULL};
	head_of(&h, "/", bad);
	assert_int_equal(PICK(3, NULL, "/h/"), -EINVAL);
	berth_proxy_head_free(&h);
	/* Bytes that are not UTF-8 (a header may carry any): no name; UTF-8 is one. */
	static const char *const latin1[] = {"x-tenant", "caf\xe9", NULL};
	head_of(&h, "/", latin1);
	assert_int_equal(PICK(3, NULL, "/h/"), -EINVAL);
	assert_non_null(strstr(why, "UTF-8"));
	berth_proxy_head_free(&h);
	static const char *const utf8[] = {"x-tenant", "caf\xc3\xa9", NULL};
	head_of(&h, "/", utf8);
	assert_int_equal(PICK(3, NULL, "/h/"), 0);
	assert_string_equal(name, "caf\xc3\xa9");
	berth_proxy_head_free(&h);
	{
		char longname[300];
		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		const char *const big[] = {"x-tenant", longname, NULL};
		head_of(&h, "/", big);
		assert_int_equal(PICK(3, NULL, "/h/"), -EINVAL);
		berth_proxy_head_free(&h);
	}
	berth_proxy_head_init(&h, 1024, 8);
	assert_int_equal(PICK(3, NULL, "/h/"), -ENOENT);
	berth_proxy_head_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_head),    cmocka_unit_test(test_scan),
	        cmocka_unit_test(test_request), cmocka_unit_test(test_response),
	        cmocka_unit_test(test_clean),   cmocka_unit_test(test_framing),
	        cmocka_unit_test(test_routes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
