/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the proxy's pure half on what clients and instances send.
 *
 * The first byte picks the direction and the knobs the daemon half would
 * set; the rest is the message as it arrives on the socket.
 *
 *   requests   the raw-line scan, http-parser into a head, the checks that
 *              live in head.c, a route and an instance name over a table of
 *              every route kind, then the head for the instance;
 *   responses  http-parser into a head, berth_proxy_head_clean(), then the
 *              head for the client, framed as the daemon half frames it.
 *
 * Whatever comes in, what goes out must be one well-formed head that
 * http-parser reads back whole: token names only, the framing headers berth
 * chose and no other, no hop-by-hop header but its own, and an instance
 * name that is bounded and free of control characters. A broken invariant
 * aborts (the fuzzer's crash). Built with libFuzzer by `make fuzz`, and
 * replayed over tests/fuzz/corpus/fuzz_proxy/ by `make test`.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "fuzz.h"
#include "http/http.h"
#include "proxy/proxy.h"

#define MAX_HEAD   (16 * 1024)
#define MAX_FIELDS 64

/* ---- the message in: http-parser into a head, as server.c and upstream.c do ---- */

struct in {
	struct berth_proxy_head head;
	bool headers_done;
	bool too_big;
};

static int in_target(http_parser *p, const char *at, size_t n)
{
	struct in *in = p->data;
	in->too_big |= berth_proxy_head_target(&in->head, at, n) < 0;
	return in->too_big ? -1 : 0;
}

static int in_name(http_parser *p, const char *at, size_t n)
{
	struct in *in = p->data;
	in->too_big |= berth_proxy_head_name(&in->head, at, n) < 0;
	return in->too_big ? -1 : 0;
}

static int in_value(http_parser *p, const char *at, size_t n)
{
	struct in *in = p->data;
	in->too_big |= berth_proxy_head_value(&in->head, at, n) < 0;
	return in->too_big ? -1 : 0;
}

static int in_headers(http_parser *p)
{
	struct in *in = p->data;
	in->headers_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings in_request = {
        .on_url = in_target,
        .on_header_field = in_name,
        .on_header_value = in_value,
        .on_headers_complete = in_headers,
};

static const http_parser_settings in_response = {
        .on_status = in_target,
        .on_header_field = in_name,
        .on_header_value = in_value,
        .on_headers_complete = in_headers,
};

/* ---- the head out: read back with http-parser and checked ---- */

struct out {
	char name[64];
	size_t name_len;
	bool in_value;
	size_t n_fields;
	unsigned te, cl, connection, forwarded_for, upgrade, hop;
	uint64_t content_length;
	bool headers_done;
};

static void field_done(struct out *o)
{
	if (o->name_len == 0)
		return;
	o->n_fields++;
}

static int out_name(http_parser *p, const char *at, size_t n)
{
	struct out *o = p->data;

	if (o->in_value) {
		field_done(o);
		o->name_len = 0;
		o->in_value = false;
	}
	FUZZ_CHECK(berth_http_is_token(at, n), "a field name that is no token went out");
	if (o->name_len + n < sizeof(o->name)) {
		memcpy(o->name + o->name_len, at, n);
		o->name_len += n;
	} else {
		o->name_len = sizeof(o->name) - 1;
	}
	return 0;
}

static bool named(const struct out *o, const char *want)
{
	return strlen(want) == o->name_len && strncasecmp(o->name, want, o->name_len) == 0;
}

static int out_value(http_parser *p, const char *at, size_t n)
{
	struct out *o = p->data;
	(void)at;
	(void)n;

	if (o->in_value)
		return 0; /* the rest of a value already counted */
	o->in_value = true;
	o->te += named(o, "transfer-encoding");
	o->cl += named(o, "content-length");
	o->connection += named(o, "connection");
	o->forwarded_for += named(o, "x-forwarded-for");
	o->upgrade += named(o, "upgrade");
	o->hop += named(o, "keep-alive") || named(o, "te") || named(o, "trailer") ||
	          (o->name_len >= 6 && strncasecmp(o->name, "proxy-", 6) == 0);
	return 0;
}

static int out_headers(http_parser *p)
{
	struct out *o = p->data;

	field_done(o);
	o->headers_done = true;
	o->content_length = p->content_length;
	return 1; /* no body follows in the buffer */
}

static const http_parser_settings out_settings = {
        .on_header_field = out_name,
        .on_header_value = out_value,
        .on_headers_complete = out_headers,
};

/* Read `b` back: exactly one head, all of it; returns what it said. */
static struct out read_back(const struct berth_proxy_buf *b, enum http_parser_type type,
                            http_parser *p)
{
	struct out o = {0};
	size_t done;

	http_parser_init(p, type);
	p->data = &o;
	done = http_parser_execute(p, &out_settings, b->data, b->len);
	FUZZ_CHECK(o.headers_done, "the head that went out does not parse back (%s: %.*s)",
	           http_errno_name(HTTP_PARSER_ERRNO(p)), (int)(b->len > 300 ? 300 : b->len),
	           b->data);
	FUZZ_CHECK(done == b->len && HTTP_PARSER_ERRNO(p) == HPE_OK,
	           "the head that went out has bytes after its end");
	return o;
}

/* ---- routes: one of every kind ---- */

static struct berth_config_route routes[] = {
        {.path_prefix = (char *)"/seg/",
         .pick = BERTH_CONFIG_PICK_PATH_SEGMENT,
         .pick_n = 1,
         .strip_prefix = true},
        {.host = (char *)"*.example.com", .pick = BERTH_CONFIG_PICK_HOST_LABEL, .pick_n = 0},
        {.path_prefix = (char *)"/h", .pick = BERTH_CONFIG_PICK_HEADER, .pick_name = (char *)"x-i"},
        {.path_prefix = (char *)"/r", .pick = BERTH_CONFIG_PICK_RANDOM, .pick_n = 5},
        {.path_prefix = (char *)"/l", .pick = BERTH_CONFIG_PICK_LEAST_LOADED, .pick_n = 3},
        {.host = (char *)"one.test",
         .pick = BERTH_CONFIG_PICK_SINGLETON,
         .pick_name = (char *)"singleton"},
        {.pick = BERTH_CONFIG_PICK_NAME, .pick_name = (char *)"fixed"},
};

static void route(const struct berth_proxy_head *h, const char *target, size_t target_len,
                  unsigned rnd)
{
	const struct berth_config_route *r;
	const char *host, *q, *why = NULL;
	size_t host_len = 0, path_len;
	char name[BERTH_PROXY_NAME_MAX + 1];
	int ret;

	host = berth_proxy_head_get(h, "host", &host_len);
	q = memchr(target, '?', target_len);
	path_len = q != NULL ? (size_t)(q - target) : target_len;
	r = berth_proxy_route_find(routes, BERTH_ARRAY_SIZE(routes), host, host_len, target,
	                           path_len);
	FUZZ_CHECK(r != NULL, "the catch-all route did not match");
	memset(name, 0x55, sizeof(name));
	ret = berth_proxy_pick(r, h, host, host_len, target, path_len, rnd, name, &why);
	if (ret == -EAGAIN) {
		FUZZ_CHECK(r->pick == BERTH_CONFIG_PICK_LEAST_LOADED, "EAGAIN from a fixed pick");
		return;
	}
	if (ret < 0) {
		FUZZ_CHECK(ret == -ENOENT || ret == -EINVAL, "pick: unexpected error %d", ret);
		FUZZ_CHECK(why != NULL && why[0] != '\0', "pick refused without a reason");
		return;
	}
	FUZZ_CHECK(memchr(name, '\0', sizeof(name)) != NULL, "an instance name without its end");
	FUZZ_CHECK(name[0] != '\0', "an empty instance name");
	for (size_t i = 0, n, len = strlen(name); i < len; i += n) {
		n = berth_utf8_seq((const unsigned char *)name + i, len - i);
		FUZZ_CHECK(n > 0, "an instance name that is not UTF-8");
		FUZZ_CHECK((unsigned char)name[i] >= 0x20 && name[i] != 0x7f,
		           "a control character in an instance name");
	}
}

/* ---- the two directions ---- */

static void request(const char *data, size_t size, uint8_t knobs)
{
	struct berth_proxy_scan scan = {0};
	struct berth_proxy_buf up = {.max = 2 * MAX_HEAD + 1024};
	struct berth_proxy_request rq = {.client_ip = "127.0.0.1", .proto = "http"};
	const char *why = NULL, *target;
	struct in in = {0};
	struct out o;
	http_parser p;
	size_t end = 0, v_len;

	/* server.c scans the raw lines first, then parses only a clean head. */
	int r = berth_proxy_scan_head(&scan, data, size, &end, &why);
	if (r < 0) {
		FUZZ_CHECK(why != NULL, "the scan refused without a reason");
		return;
	}
	if (r == 0)
		return; /* the head goes on beyond the input */
	FUZZ_CHECK(end <= size, "the scan ended past the input");

	berth_proxy_head_init(&in.head, MAX_HEAD, MAX_FIELDS);
	http_parser_init(&p, HTTP_REQUEST);
	p.data = &in;
	http_parser_execute(&p, &in_request, data, end);
	if (!in.headers_done || in.too_big || p.method == HTTP_CONNECT)
		goto out;
	/* server.c's refusals that rest on head.c. */
	for (size_t i = 0; i < in.head.n_fields; i++)
		if (!berth_http_is_token(berth_proxy_field_name(&in.head, i),
		                         in.head.fields[i].name_len))
			goto out;
	if (berth_proxy_head_count(&in.head, "host") > 1 ||
	    berth_proxy_head_count(&in.head, "transfer-encoding") > 1 ||
	    berth_proxy_head_count(&in.head, "content-length") > 1)
		goto out;

	target = in.head.buf.data + in.head.target;
	route(&in.head, target, in.head.target_len, knobs);

	rq.method = http_method_str((enum http_method)p.method);
	rq.target = target;
	rq.target_len = in.head.target_len;
	if (p.flags & F_CHUNKED) {
		rq.framing = BERTH_PROXY_BODY_CHUNKED;
	} else if (p.flags & F_CONTENTLENGTH) {
		rq.framing = BERTH_PROXY_BODY_LENGTH;
		rq.length = p.content_length;
	}
	rq.websocket = p.upgrade && berth_proxy_head_get(&in.head, "upgrade", &v_len) != NULL;
	FUZZ_CHECK(berth_proxy_build_request(&in.head, &rq, &up) == 0,
	           "a head within the bounds did not fit the output bound");

	o = read_back(&up, HTTP_REQUEST, &p);
	FUZZ_CHECK(strcmp(http_method_str((enum http_method)p.method), rq.method) == 0,
	           "the method changed on the way");
	FUZZ_CHECK(o.forwarded_for == 1, "X-Forwarded-For %u times", o.forwarded_for);
	FUZZ_CHECK(o.hop == 0, "a hop-by-hop header went to the instance");
	FUZZ_CHECK(o.te == (rq.framing == BERTH_PROXY_BODY_CHUNKED), "Transfer-Encoding %u times",
	           o.te);
	FUZZ_CHECK(o.cl == (rq.framing == BERTH_PROXY_BODY_LENGTH), "Content-Length %u times",
	           o.cl);
	FUZZ_CHECK(rq.framing != BERTH_PROXY_BODY_LENGTH || o.content_length == rq.length,
	           "the body length changed on the way");
	FUZZ_CHECK(o.connection == rq.websocket && o.upgrade == rq.websocket,
	           "Connection/Upgrade went on for no WebSocket");
out:
	berth_proxy_buf_free(&up);
	berth_proxy_head_free(&in.head);
}

static void response(const char *data, size_t size, uint8_t knobs)
{
	struct berth_proxy_buf down = {.max = 2 * MAX_HEAD + 1024};
	struct berth_proxy_response rs = {0};
	bool head_method = knobs & 2, websocket = knobs & 4;
	struct in in = {0};
	struct out o;
	http_parser p;

	berth_proxy_head_init(&in.head, MAX_HEAD, MAX_FIELDS);
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = &in;
	http_parser_execute(&p, &in_response, data, size);
	if (!in.headers_done || in.too_big)
		goto out;
	if (p.status_code < 200 && p.status_code != 101)
		goto out; /* interim answers are not passed on */
	if (p.status_code == 101 && !websocket)
		goto out; /* upstream.c fails the exchange */
	berth_proxy_head_clean(&in.head);

	/* Framing as server.c's sink_head decides it. */
	rs.status = p.status_code;
	rs.reason = in.head.target_len > 0 ? in.head.buf.data + in.head.target : NULL;
	rs.reason_len = in.head.target_len;
	rs.http10 = knobs & 8;
	rs.keep_alive = knobs & 16;
	if (p.status_code == 101) {
		rs.upgrade = true;
	} else if (head_method || p.status_code == 204 || p.status_code == 304) {
		rs.framing = BERTH_PROXY_BODY_NONE;
	} else if ((p.flags & F_CONTENTLENGTH) && !(p.flags & F_CHUNKED)) {
		rs.framing = BERTH_PROXY_BODY_LENGTH;
		rs.length = p.content_length;
	} else if (rs.http10) {
		rs.framing = BERTH_PROXY_BODY_CLOSE;
		rs.keep_alive = false;
	} else {
		rs.framing = BERTH_PROXY_BODY_CHUNKED;
	}
	FUZZ_CHECK(berth_proxy_build_response(&in.head, &rs, &down) == 0,
	           "a head within the bounds did not fit the output bound");

	o = read_back(&down, HTTP_RESPONSE, &p);
	FUZZ_CHECK(p.status_code == rs.status, "the status changed on the way (%u to %u)",
	           rs.status, p.status_code);
	FUZZ_CHECK(o.hop == 0, "a hop-by-hop header went to the client");
	FUZZ_CHECK(o.te == (rs.framing == BERTH_PROXY_BODY_CHUNKED), "Transfer-Encoding %u times",
	           o.te);
	if (rs.framing == BERTH_PROXY_BODY_NONE)
		FUZZ_CHECK(o.cl <= 1, "Content-Length %u times", o.cl);
	else
		FUZZ_CHECK(o.cl == (rs.framing == BERTH_PROXY_BODY_LENGTH),
		           "Content-Length %u times", o.cl);
	FUZZ_CHECK(rs.framing != BERTH_PROXY_BODY_LENGTH || o.content_length == rs.length,
	           "the body length changed on the way");
	FUZZ_CHECK(o.connection <= 1, "Connection %u times", o.connection);
	FUZZ_CHECK(o.upgrade == rs.upgrade, "Upgrade went on for no WebSocket");
out:
	berth_proxy_buf_free(&down);
	berth_proxy_head_free(&in.head);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		response((const char *)data + 1, size - 1, data[0]);
	else
		request((const char *)data + 1, size - 1, data[0]);
	return 0;
}
