/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client side of the data plane: the listener on berth.listen and its
 * connections. Each connection runs http-parser over what it reads (after a
 * scan of the head's raw lines for what parsers disagree on), one request at
 * a time so that pipelined requests are answered in order:
 *
 *   head ─▶ route ─▶ acquire the instance (it may start; bounded wait)
 *        ─▶ exchange: head, then the body streamed as it is parsed
 *        ─▶ response streamed back ─▶ next request, or close
 *
 * A WebSocket upgrade that the instance answers with 101 turns the
 * connection into a raw tunnel. Connection structs are kept for reuse with
 * their buffers, so a request allocates nothing once they have grown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "berth/log.h"
#include "berth/trace.h"
#include "berth/util.h"
#include "proxy/proxy-internal.h"
#include "registry/registry.h"

#define MAX_FIELDS     256
#define LINGER_MS      2000
#define FREE_CLIENTS   256
#define TARGET_MAX     (64 * 1024)
#define HEAD_OUT_EXTRA 1024 /* what the rewrite adds to a head */

enum client_state {
	C_IDLE,     /* between requests */
	C_HEAD,     /* reading a request head */
	C_WAIT,     /* waiting for the instance */
	C_BODY,     /* the request's body streams to the instance */
	C_RESPONSE, /* the request is sent; its response streams back */
	C_TUNNEL,   /* after a 101 */
	C_LINGER,   /* answered with an error: reading what is left, then close */
};

/* What the connection's one timer is for (T_SEND: a client not reading what is due). */
enum timer_use { T_NONE, T_HEADER, T_IDLE, T_WAIT, T_LINGER, T_SEND };

struct px_client {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	struct px_server *s;
	struct px_client *prev, *next;
	http_parser parser;
	struct berth_proxy_scan scan;
	size_t scan_pos;   /* scanned up to here (an offset in `in`) */
	bool head_scanned; /* the current head's lines are checked */
	char ip[64];
	char *in;
	size_t in_pos, in_len;
	struct berth_proxy_head head;
	struct berth_proxy_buf target, up_head, resp_head;
	struct px_out out;
	struct px_exchange x;
	enum client_state state;
	enum timer_use timer_use;
	uint64_t body_bytes;
	/* error noted inside a parser callback, answered after it */
	unsigned err_status;
	const char *err_code;
	char err_msg[160];
	bool dispatch;    /* a head is complete: route it */
	bool in_dispatch; /* routing it now */
	bool keep_alive, http10, chunked_in, chunked_out, expect_continue;
	bool req_complete;
	bool reading, eof, closing, close_when_drained, shut, acquiring;
	int open_handles;
};

static void client_close(struct px_client *c);
static void client_shut(struct px_client *c, bool reset);
static void client_process(struct px_client *c);
static void client_update_read(struct px_client *c);
static void respond_error(struct px_client *c, unsigned status, const char *code, const char *extra,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static struct px_client *client_of(http_parser *p)
{
	return p->data;
}

static void timer_set(struct px_client *c, enum timer_use use, uint64_t ms);
static void free_client(struct px_client *c);

/* ---- request parsing ---- */

static int refuse(struct px_client *c, unsigned status, const char *code, const char *msg)
{
	c->err_status = status;
	c->err_code = code;
	snprintf(c->err_msg, sizeof(c->err_msg), "%s", msg);
	return -1;
}

static int on_begin(http_parser *p)
{
	struct px_client *c = client_of(p);

	berth_proxy_head_reset(&c->head);
	c->body_bytes = 0;
	c->req_complete = false;
	if (c->state == C_IDLE) {
		c->state = C_HEAD;
		timer_set(c, T_HEADER, c->s->lim.header_timeout_ms);
	}
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct px_client *c = client_of(p);

	if (berth_proxy_head_target(&c->head, at, n) < 0)
		return refuse(c, 431, "headers_too_large", "the request head is too large");
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
	struct px_client *c = client_of(p);

	if (berth_proxy_head_name(&c->head, at, n) < 0)
		return refuse(c, 431, "headers_too_large", "the request head is too large");
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
	struct px_client *c = client_of(p);

	if (berth_proxy_head_value(&c->head, at, n) < 0)
		return refuse(c, 431, "headers_too_large", "the request head is too large");
	return 0;
}

static bool value_is(const char *v, size_t len, const char *want)
{
	return v != NULL && strlen(want) == len && strncasecmp(v, want, len) == 0;
}

static int on_headers(http_parser *p)
{
	struct px_client *c = client_of(p);
	const char *v;
	size_t len;

	uv_timer_stop(&c->timer);
	c->timer_use = T_NONE;
	c->http10 = p->http_major == 1 && p->http_minor == 0;
	c->keep_alive = http_should_keep_alive(p) && !c->s->draining;
	c->chunked_in = (p->flags & F_CHUNKED) != 0;
	if (p->http_major != 1 || p->http_minor > 1)
		return refuse(c, 505, "version_not_supported",
		              "only HTTP/1.0 and HTTP/1.1 are served");
	/* http-parser lets a space before the colon into the name; a token has none. */
	for (size_t i = 0; i < c->head.n_fields; i++)
		if (!berth_http_is_token(berth_proxy_field_name(&c->head, i),
		                         c->head.fields[i].name_len))
			return refuse(c, 400, "bad_request", "a header name is not a token");
	/* Framing that two parsers could read two ways is refused, never guessed. */
	if (berth_proxy_head_count(&c->head, "transfer-encoding") > 0) {
		v = berth_proxy_head_get(&c->head, "transfer-encoding", &len);
		if (berth_proxy_head_count(&c->head, "transfer-encoding") > 1 ||
		    !value_is(v, len, "chunked") || c->http10)
			return refuse(c, 400, "bad_request",
			              "Transfer-Encoding must be exactly `chunked` (HTTP/1.1)");
	}
	if (berth_proxy_head_count(&c->head, "content-length") > 1)
		return refuse(c, 400, "bad_request", "more than one Content-Length");
	if (berth_proxy_head_count(&c->head, "host") > 1 ||
	    (!c->http10 && berth_proxy_head_count(&c->head, "host") == 0))
		return refuse(c, 400, "bad_request", "an HTTP/1.1 request needs one Host header");
	if (p->method == HTTP_CONNECT)
		return refuse(c, 405, "method_not_allowed", "CONNECT is not served");
	if (c->s->lim.max_body_bytes > 0 && (p->flags & F_CONTENTLENGTH) &&
	    p->content_length > c->s->lim.max_body_bytes)
		return refuse(c, 413, "body_too_large", "the request body is too large");
	v = berth_proxy_head_get(&c->head, "expect", &len);
	c->expect_continue = false;
	if (v != NULL) {
		if (!value_is(v, len, "100-continue"))
			return refuse(c, 417, "expectation_failed",
			              "only 100-continue is expected");
		c->expect_continue = !c->http10;
	}
	c->dispatch = true;
	c->state = C_WAIT;
	/* Routing may answer at once; it happens after the parser returns. */
	http_parser_pause(p, 1);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct px_client *c = client_of(p);

	c->body_bytes += n;
	if (c->s->lim.max_body_bytes > 0 && c->body_bytes > c->s->lim.max_body_bytes)
		return refuse(c, 413, "body_too_large", "the request body is too large");
	px_exchange_body(&c->x, at, n, c->chunked_in);
	return 0;
}

static int on_complete(http_parser *p)
{
	struct px_client *c = client_of(p);

	c->req_complete = true;
	c->head_scanned = false;
	c->scan = (struct berth_proxy_scan){0};
	if (c->state == C_BODY) {
		px_exchange_body_end(&c->x, c->chunked_in);
		c->state = C_RESPONSE;
	}
	/* One request at a time: pipelined ones wait for this answer. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
        .on_message_begin = on_begin,
        .on_url = on_url,
        .on_header_field = on_field,
        .on_header_value = on_value,
        .on_headers_complete = on_headers,
        .on_body = on_body,
        .on_message_complete = on_complete,
};

/* ---- answers of the proxy's own ---- */

static void client_flush(struct px_client *c)
{
	if (c->closing)
		return;
	if (px_out_flush(&c->out) < 0)
		client_close(c);
	else if (c->tcp.write_queue_size > 0 && c->timer_use == T_NONE)
		timer_set(c, T_SEND, c->s->lim.idle_timeout_ms);
}

static void close_when_drained(struct px_client *c)
{
	c->close_when_drained = true;
	if (!c->closing && c->tcp.write_queue_size == 0) {
		/*
		 * Lingering close: shut our side and read what the client still
		 * sends (a body we refused), so that closing with unread data
		 * does not reset the connection before it read the answer.
		 */
		if (c->shut)
			return;
		c->shut = true;
		c->state = C_LINGER;
		c->in_pos = c->in_len = 0;
		timer_set(c, T_LINGER, LINGER_MS);
		if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, NULL) < 0)
			client_close(c);
		else
			client_update_read(c);
	}
}

static void respond_error(struct px_client *c, unsigned status, const char *code, const char *extra,
                          const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->closing)
		return;
	px_exchange_end(&c->x);
	if (c->x.response_begun) {
		/* Too late for an answer of our own: the response is cut. */
		client_shut(c, true);
		return;
	}
	c->resp_head.len = 0;
	c->resp_head.max = SIZE_MAX;
	berth_proxy_build_error(status, code, extra, msg, &c->resp_head);
	c->keep_alive = false;
	c->state = C_LINGER;
	px_out_add(&c->out, c->resp_head.data, c->resp_head.len);
	client_flush(c);
	close_when_drained(c);
}

/* ---- the sink: the response goes to the client ---- */

static struct px_client *client_of_x(struct px_exchange *x)
{
	return x->owner;
}

static void sink_head(struct px_exchange *x, const http_parser *p, const struct berth_proxy_head *h)
{
	struct px_client *c = client_of_x(x);
	struct berth_proxy_response r = {
	        .status = p->status_code,
	        .reason = h->target_len > 0 ? h->buf.data + h->target
	                                    : NULL, /* none: the standard one */
	        .reason_len = h->target_len,
	        .http10 = c->http10,
	};

	if (p->status_code == 101) {
		r.upgrade = true;
		r.framing = BERTH_PROXY_BODY_NONE;
	} else if (x->head_method || p->status_code == 204 || p->status_code == 304) {
		r.framing = BERTH_PROXY_BODY_NONE;
	} else if ((p->flags & F_CONTENTLENGTH) && !(p->flags & F_CHUNKED)) {
		r.framing = BERTH_PROXY_BODY_LENGTH;
		r.length = p->content_length;
	} else if (c->http10) {
		/* No chunked coding for HTTP/1.0: the end of the body is the close. */
		r.framing = BERTH_PROXY_BODY_CLOSE;
		c->keep_alive = false;
	} else {
		r.framing = BERTH_PROXY_BODY_CHUNKED;
	}
	if (x->websocket && p->status_code != 101)
		c->keep_alive = false; /* the parser stopped at the upgrade */
	c->chunked_out = r.framing == BERTH_PROXY_BODY_CHUNKED;
	r.keep_alive = c->keep_alive;
	c->resp_head.len = 0;
	c->resp_head.max = SIZE_MAX;
	berth_proxy_build_response(h, &r, &c->resp_head);
	px_out_add(&c->out, c->resp_head.data, c->resp_head.len);
	if (p->status_code == 101)
		c->state = C_TUNNEL;
}

static void sink_body(struct px_exchange *x, const char *at, size_t n)
{
	struct px_client *c = client_of_x(x);

	if (c->chunked_out)
		px_out_chunk(&c->out, at, n);
	else
		px_out_add(&c->out, at, n);
}

static void sink_flush(struct px_exchange *x)
{
	struct px_client *c = client_of_x(x);

	client_flush(c);
	/* Bytes the client sent after its upgrade request are the tunnel's. */
	if (!c->closing && c->state == C_TUNNEL && c->in_pos < c->in_len)
		client_process(c);
}

static bool sink_blocked(struct px_exchange *x)
{
	return client_of_x(x)->tcp.write_queue_size > PX_HIGH_WATER;
}

static void sink_drained(struct px_exchange *x)
{
	client_update_read(client_of_x(x));
}

static void sink_cut(struct px_exchange *x)
{
	client_shut(client_of_x(x), true);
}

static void sink_fail(struct px_exchange *x, unsigned status, const char *code, const char *msg)
{
	respond_error(client_of_x(x), status, code, NULL, "%s", msg);
}

/* The response is complete: the next request, or close. */
static void sink_done(struct px_exchange *x)
{
	struct px_client *c = client_of_x(x);

	if (c->state == C_TUNNEL) {
		/* The instance closed its side: so do we, once its bytes are out. */
		client_flush(c);
		if (c->eof) {
			client_close(c);
		} else if (!c->closing && !c->shut) {
			c->shut = true;
			if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, NULL) < 0)
				client_close(c);
		}
		return;
	}
	if (c->chunked_out)
		px_out_add(&c->out, "0\r\n\r\n", 5);
	client_flush(c);
	px_exchange_end(x);
	if (c->closing)
		return;
	if (!c->req_complete || c->s->draining)
		c->keep_alive = false; /* the rest of its body was not read */
	if (!c->keep_alive) {
		c->state = C_LINGER;
		close_when_drained(c);
		return;
	}
	c->state = C_IDLE;
	c->x.response_begun = false;
	/* Idle from when the answer is out; until then the client must read on. */
	if (c->timer_use != T_SEND)
		timer_set(c, T_IDLE, c->s->lim.idle_timeout_ms);
	client_process(c);
	client_update_read(c);
}

static const struct px_sink_ops client_sink = {
        .head = sink_head,
        .body = sink_body,
        .done = sink_done,
        .fail = sink_fail,
        .cut = sink_cut,
        .flush = sink_flush,
        .blocked = sink_blocked,
        .drained = sink_drained,
};

/* ---- routing and the wait for the instance ---- */

static void on_acquired(const struct berthd_start_result *res, struct berthd_lease *lease,
                        void *arg)
{
	struct px_client *c = arg;

	c->acquiring = false;
	c->s->waiting--;
	if (c->closing || c->state != C_WAIT) {
		/* The client left, or waited too long and was answered. */
		if (lease != NULL)
			berthd_lease_release(lease);
		if (c->closing && c->open_handles == 0)
			free_client(c); /* its handles closed while the start went on */
		return;
	}
	uv_timer_stop(&c->timer);
	c->timer_use = T_NONE;
	if (res->status != 0) {
		respond_error(
		        c, (unsigned)res->status, res->code != NULL ? res->code : "start_failed",
		        res->status == 503 ? "Retry-After: 1\r\n" : NULL, "%s: %s", c->x.label,
		        res->message != NULL ? res->message : "the instance did not start");
		return;
	}
	BERTH_TRACE("proxy: acquired");
	c->x.lease = lease;
	c->state = C_BODY;
	if (c->expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		px_out_add(&c->out, cont, sizeof(cont) - 1);
		client_flush(c);
	}
	px_exchange_begin(&c->x);
	/* Answered at once (from dispatch()): its caller parses on. */
	if (c->closing || c->state != C_BODY || c->in_dispatch)
		return;
	client_process(c);
	client_update_read(c);
}

/* The least busy of getRandom()'s N names, a running one before a sleeping one. */
static void pick_least_loaded(struct px_server *s, const struct berth_config_route *r, char *name)
{
	uint64_t best = UINT64_MAX;

	for (unsigned i = 0; i < r->pick_n; i++) {
		char n[32], id[BERTH_ID_LEN + 1];
		enum berth_state st;
		int64_t changed;
		uint64_t key;

		berth_proxy_random_name(i, n, sizeof(n));
		berth_id_from_name(s->d->config->classes[r->class_index].class_name, n, id);
		key = (uint64_t)berthd_instance_inflight(s->d, id) * 2 +
		      (berthd_instance_active_state(s->d, id, &st, &changed) ? 0 : 1);
		if (key < best) {
			best = key;
			snprintf(name, BERTH_PROXY_NAME_MAX + 1, "%s", n);
		}
	}
}

/* Whether CLASS/NAME is ready to serve (so a request for it does not wait). */
static bool healthy(struct px_server *s, const struct berth_config_class *cls, const char *name)
{
	char id[BERTH_ID_LEN + 1];
	enum berth_state st;
	int64_t changed;

	berth_id_from_name(cls->class_name, name, id);
	return berthd_instance_active_state(s->d, id, &st, &changed) && st == BERTH_STATE_HEALTHY;
}

/* A cheap pseudo-random number for `random` routes (as Math.random(), not for secrets). */
static unsigned next_random(struct px_server *s)
{
	/* xorshift32: its low bits are as good as its high ones, unlike an LCG's. */
	s->rnd ^= s->rnd << 13;
	s->rnd ^= s->rnd >> 17;
	s->rnd ^= s->rnd << 5;
	return s->rnd;
}

static void dispatch(struct px_client *c)
{
	struct px_server *s = c->s;
	const struct berth_config *cfg = s->d->config;
	const struct berth_config_route *r;
	const struct berth_config_class *cls;
	struct http_parser_url u;
	struct berth_proxy_request req = {0};
	const char *host, *path, *target = c->head.buf.data + c->head.target, *why = NULL, *v;
	size_t host_len, path_len, len;
	char name[BERTH_PROXY_NAME_MAX + 1];
	uint16_t port;
	int ret;

	http_parser_url_init(&u);
	if (http_parser_parse_url(target, c->head.target_len, 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_PATH)))
		return respond_error(c, 400, "bad_request", NULL,
		                     "the request target is not a path");
	path = target + u.field_data[UF_PATH].off;
	path_len = u.field_data[UF_PATH].len;
	host = berth_proxy_head_get(&c->head, "host", &host_len);
	r = berth_proxy_route_find(cfg->berth.routes, cfg->berth.n_routes, host, host_len, path,
	                           path_len);
	if (r == NULL)
		return respond_error(c, 404, "no_route", NULL, "no route for %.*s%.*s",
		                     host != NULL ? (int)host_len : 0, host != NULL ? host : "",
		                     (int)(path_len > 200 ? 200 : path_len), path);
	cls = &cfg->classes[r->class_index];
	ret = berth_proxy_pick(r, &c->head, host, host_len, path, path_len, next_random(s), name,
	                       &why);
	if (ret == -EAGAIN)
		pick_least_loaded(s, r, name);
	else if (ret < 0)
		return respond_error(c, ret == -ENOENT ? 404 : 400, "no_instance", NULL,
		                     "cannot tell the instance of %s: %s", cls->class_name, why);
	port = r->port != 0 ? r->port : cls->default_port;
	v = berth_proxy_head_get(&c->head, "cf-container-target-port", &len);
	if (v != NULL) {
		unsigned long n = 0;
		size_t i;
		for (i = 0; i < len && i < 6 && v[i] >= '0' && v[i] <= '9'; i++)
			n = n * 10 + (unsigned long)(v[i] - '0');
		if (i != len || len == 0 || n == 0 || n > 65535)
			return respond_error(c, 400, "bad_port", NULL,
			                     "cf-container-target-port must be a port (1-65535)");
		port = (uint16_t)n;
	}
	if (port == 0)
		return respond_error(c, 500, "no_port", NULL,
		                     "neither the route nor class %s names a port",
		                     cls->class_name);

	/* The target on the instance: strip_prefix keeps a leading "/". */
	c->target.len = 0;
	c->target.max = TARGET_MAX;
	if (r->strip_prefix && r->path_prefix != NULL) {
		size_t pl = strlen(r->path_prefix);
		const char *rest = path + pl;
		size_t rest_len = (size_t)(target + c->head.target_len - rest);
		if (rest_len == 0 || rest[0] != '/')
			berth_proxy_buf_add(&c->target, "/", 1);
		berth_proxy_buf_add(&c->target, rest, rest_len);
	} else {
		berth_proxy_buf_add(&c->target, path, (size_t)(target + c->head.target_len - path));
	}
	req.method = http_method_str((enum http_method)c->parser.method);
	req.target = c->target.data;
	req.target_len = c->target.len;
	if (c->chunked_in) {
		req.framing = BERTH_PROXY_BODY_CHUNKED;
	} else if (c->parser.flags & F_CONTENTLENGTH) {
		req.framing = BERTH_PROXY_BODY_LENGTH;
		req.length = c->parser.content_length;
	}
	v = berth_proxy_head_get(&c->head, "upgrade", &len);
	req.websocket =
	        c->parser.upgrade && v != NULL && len >= 9 && strncasecmp(v, "websocket", 9) == 0;
	if (c->parser.upgrade && !req.websocket)
		c->keep_alive = false; /* other upgrades are not offered on */
	req.client_ip = c->ip;
	req.proto = "http";
	c->up_head.len = 0;
	c->up_head.max = c->s->lim.max_header_bytes * 2 + HEAD_OUT_EXTRA;
	if (berth_proxy_build_request(&c->head, &req, &c->up_head) < 0)
		return respond_error(c, 431, "headers_too_large", NULL,
		                     "the request head is too large");

	memset(&c->x, 0, sizeof(c->x));
	c->x.s = s;
	c->x.ops = &client_sink;
	c->x.owner = c;
	c->x.port = port;
	c->x.req_head = &c->up_head;
	c->x.head_method = c->parser.method == HTTP_HEAD;
	c->x.websocket = req.websocket;
	c->x.retryable =
	        !req.websocket && (req.framing == BERTH_PROXY_BODY_NONE ||
	                           (req.framing == BERTH_PROXY_BODY_LENGTH && req.length == 0));
	snprintf(c->x.label, sizeof(c->x.label), "%s/%s", cls->class_name, name);
	if (s->waiting >= s->lim.max_waiting && !healthy(s, cls, name))
		return respond_error(c, 503, "too_many_waiting", "Retry-After: 1\r\n",
		                     "%s: too many requests are waiting for instances to start",
		                     c->x.label);
	s->waiting++;
	c->acquiring = true;
	timer_set(c, T_WAIT, s->lim.wait_timeout_ms);
	c->in_dispatch = true;
	BERTH_TRACE("proxy: acquiring");
	berthd_instance_acquire(s->d, cls, name, on_acquired, c);
	c->in_dispatch = false;
}

/* ---- connections ---- */

static void on_timer(uv_timer_t *t)
{
	struct px_client *c = t->data;
	enum timer_use use = c->timer_use;

	c->timer_use = T_NONE;
	switch (use) {
	case T_HEADER:
		respond_error(c, 408, "request_timeout", NULL,
		              "the request head took longer than %llu ms",
		              (unsigned long long)c->s->lim.header_timeout_ms);
		break;
	case T_WAIT:
		/* on_acquired comes later and lets the lease go. */
		respond_error(c, 503, "start_timeout", "Retry-After: 5\r\n",
		              "%s: not ready within %llu ms", c->x.label,
		              (unsigned long long)c->s->lim.wait_timeout_ms);
		break;
	case T_SEND:
		client_shut(c, true);
		break;
	case T_IDLE:
	case T_LINGER:
	case T_NONE:
		client_close(c);
		break;
	}
}

static void timer_set(struct px_client *c, enum timer_use use, uint64_t ms)
{
	c->timer_use = use;
	uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void free_client(struct px_client *c)
{
	struct px_server *s = c->s;

	if (s->n_free_clients < FREE_CLIENTS && !s->draining) {
		/* Kept with its buffers for the next connection. */
		c->next = s->free_clients;
		s->free_clients = c;
		s->n_free_clients++;
		return;
	}
	berth_proxy_head_free(&c->head);
	berth_proxy_buf_free(&c->target);
	berth_proxy_buf_free(&c->up_head);
	berth_proxy_buf_free(&c->resp_head);
	free(c->in);
	free(c);
}

static void on_client_closed(uv_handle_t *h)
{
	struct px_client *c = h->data;

	if (--c->open_handles > 0)
		return;
	/* An acquire still under way holds it; on_acquired frees it. */
	if (!c->acquiring)
		free_client(c);
}

/*
 * Close the connection; `reset` sends an RST instead of a FIN: for a
 * response cut short (a FIN would end an HTTP/1.0 body as if it were
 * whole) and for a client that stopped reading (a FIN would wait behind
 * the unsent bytes for ever).
 */
static void client_shut(struct px_client *c, bool reset)
{
	struct px_server *s = c->s;

	if (c->closing)
		return;
	c->closing = true;
	px_exchange_end(&c->x);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n_clients--;
	if (!reset || c->shut || uv_tcp_close_reset(&c->tcp, on_client_closed) < 0)
		uv_close((uv_handle_t *)&c->tcp, on_client_closed);
	uv_close((uv_handle_t *)&c->timer, on_client_closed);
}

static void client_close(struct px_client *c)
{
	client_shut(c, false);
}

static void on_client_written(uv_write_t *w, int status)
{
	struct px_client *c = w->handle->data;

	px_wreq_done(w);
	if (c->closing)
		return;
	if (status < 0) {
		client_close(c);
		return;
	}
	/* Progress: a client that reads gets idle_timeout again; one that drained, none. */
	if (c->timer_use == T_SEND) {
		if (c->tcp.write_queue_size > 0)
			timer_set(c, T_SEND, c->s->lim.idle_timeout_ms);
		else if (c->state == C_IDLE)
			timer_set(c, T_IDLE, c->s->lim.idle_timeout_ms);
		else {
			uv_timer_stop(&c->timer);
			c->timer_use = T_NONE;
		}
	}
	if (c->tcp.write_queue_size < PX_LOW_WATER)
		px_exchange_resume(&c->x);
	if (c->close_when_drained && c->tcp.write_queue_size == 0)
		close_when_drained(c);
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct px_client *c = h->data;
	(void)suggested;

	if (c->in == NULL)
		c->in = xmalloc(PX_READ_SIZE);
	*buf = uv_buf_init(c->in + c->in_len, (unsigned)(PX_READ_SIZE - c->in_len));
}

static void on_client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void client_update_read(struct px_client *c)
{
	bool want;

	if (c->closing)
		return;
	switch (c->state) {
	case C_LINGER:
		want = true;
		break;
	case C_TUNNEL:
	case C_BODY:
		want = !c->eof && !px_exchange_blocked(&c->x) && c->in_len < PX_READ_SIZE;
		break;
	default:
		want = !c->eof && c->in_len < PX_READ_SIZE;
		break;
	}
	if (want == c->reading)
		return;
	c->reading = want;
	if (want)
		uv_read_start((uv_stream_t *)&c->tcp, client_alloc, on_client_read);
	else
		uv_read_stop((uv_stream_t *)&c->tcp);
}

/* Parse what is buffered as far as the current state allows. */
static void client_process(struct px_client *c)
{
	while (!c->closing && c->in_pos < c->in_len) {
		size_t n, end;
		const char *why;
		enum http_errno e;

		if (c->state == C_TUNNEL) {
			px_exchange_body(&c->x, c->in + c->in_pos, c->in_len - c->in_pos, false);
			c->in_pos = c->in_len;
			px_exchange_flush(&c->x);
			break;
		}
		if (c->state != C_IDLE && c->state != C_HEAD && c->state != C_BODY)
			break;
		if (c->state != C_BODY && !c->head_scanned) {
			if (c->scan_pos < c->in_pos)
				c->scan_pos = c->in_pos;
			int r = berth_proxy_scan_head(&c->scan, c->in + c->scan_pos,
			                              c->in_len - c->scan_pos, &end, &why);
			if (r < 0) {
				respond_error(c, 400, "bad_request", NULL, "malformed request: %s",
				              why);
				return;
			}
			c->scan_pos += end;
			c->head_scanned = r == 1;
		}
		n = http_parser_execute(&c->parser, &settings, c->in + c->in_pos,
		                        c->in_len - c->in_pos);
		c->in_pos += n;
		e = HTTP_PARSER_ERRNO(&c->parser);
		if (c->err_status != 0) {
			respond_error(c, c->err_status, c->err_code, NULL, "%s", c->err_msg);
			return;
		}
		if (e != HPE_OK && e != HPE_PAUSED) {
			respond_error(c, 400, "bad_request", NULL, "malformed request: %s",
			              http_errno_description(e));
			return;
		}
		if (e == HPE_PAUSED)
			http_parser_pause(&c->parser, 0);
		if (c->dispatch) {
			c->dispatch = false;
			dispatch(c);
			continue;
		}
		if (n == 0)
			break;
	}
	if (!c->closing && (c->state == C_BODY || c->state == C_RESPONSE))
		px_exchange_flush(&c->x);
	if (c->closing)
		return;
	/* Keep unparsed bytes at the front, so the buffer has room to read into. */
	if (c->in_pos == c->in_len) {
		c->scan_pos = c->scan_pos > c->in_pos ? c->scan_pos - c->in_pos : 0;
		c->in_pos = c->in_len = 0;
	} else if (c->in_pos > 0 && c->state != C_TUNNEL) {
		memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
		c->in_len -= c->in_pos;
		c->scan_pos = c->scan_pos > c->in_pos ? c->scan_pos - c->in_pos : 0;
		c->in_pos = 0;
	}
}

static void on_client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct px_client *c = st->data;
	(void)buf;

	c->s->d->proxy_reads++;
	if (n == 0 || c->closing)
		return;
	if (n < 0) {
		c->eof = true;
		c->reading = false;
		uv_read_stop(st);
		if (n == UV_EOF && c->state == C_TUNNEL && !c->x.up_eof && c->x.up != NULL) {
			/* Half-closed: the instance may still answer. */
			px_exchange_shutdown(&c->x);
			return;
		}
		/* A client that leaves mid-request leaves (as nginx's 499). */
		client_close(c);
		return;
	}
	if (c->state == C_LINGER) {
		c->in_pos = c->in_len = 0;
		return;
	}
	c->in_len += (size_t)n;
	if (c->state == C_TUNNEL)
		berthd_lease_touch(c->x.lease);
	client_process(c);
	client_update_read(c);
}

static void on_connection(uv_stream_t *ls, int status)
{
	struct px_server *s = ls->data;
	struct px_client *c;
	struct sockaddr_storage sa;
	int len = sizeof(sa);

	if (status < 0 || s->draining)
		return;
	if (s->free_clients != NULL) {
		struct px_client keep;
		c = s->free_clients;
		s->free_clients = c->next;
		s->n_free_clients--;
		keep = *c;
		memset(c, 0, sizeof(*c));
		c->in = keep.in;
		c->head = keep.head;
		c->target = keep.target;
		c->up_head = keep.up_head;
		c->resp_head = keep.resp_head;
	} else {
		c = xcalloc(1, sizeof(*c));
		berth_proxy_head_init(&c->head, s->lim.max_header_bytes, MAX_FIELDS);
	}
	c->s = s;
	uv_tcp_init(s->d->loop, &c->tcp);
	uv_timer_init(s->d->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open_handles = 2;
	c->next = s->clients;
	if (s->clients != NULL)
		s->clients->prev = c;
	s->clients = c;
	s->n_clients++;
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0 || s->n_clients > s->lim.max_connections) {
		client_close(c);
		return;
	}
	c->ip[0] = '\0';
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) == 0) {
		if (sa.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&sa, c->ip, sizeof(c->ip));
		else
			uv_ip4_name((struct sockaddr_in *)&sa, c->ip, sizeof(c->ip));
	}
	uv_tcp_nodelay(&c->tcp, 1);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	px_out_init(&c->out, (uv_stream_t *)&c->tcp, on_client_written);
	c->state = C_IDLE;
	timer_set(c, T_HEADER, s->lim.header_timeout_ms);
	client_update_read(c);
}

/* ---- the server ---- */

int berthd_proxy_start(struct berthd *d, berth_error_t *err)
{
	const struct berth_config_addr *a = &d->config->berth.listen;
	struct sockaddr_storage sa;
	struct px_server *s;
	const char *host;
	int r;

	/* Made without a listener too: containerFetch uses its pools. */
	s = xcalloc(1, sizeof(*s));
	s->d = d;
	s->lim = d->config->berth.proxy;
	s->rnd = ((unsigned)berthd_now_ms() ^ (unsigned)getpid()) | 1; /* xorshift needs non-zero */
	d->proxy = s;                                                  /* freed with berthd */
	if (a->host == NULL)
		return 0;
	host = strcmp(a->host, "localhost") == 0 ? "127.0.0.1" : a->host;
	if (uv_ip4_addr(host, a->port, (struct sockaddr_in *)&sa) != 0 &&
	    uv_ip6_addr(host, a->port, (struct sockaddr_in6 *)&sa) != 0)
		return berth_error_set_plain(err, EINVAL, "berth.listen: `%s` is not an IP address",
		                             a->host);
	uv_tcp_init(d->loop, &s->listener);
	s->listener.data = s;
	r = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
	if (r < 0) {
		uv_close((uv_handle_t *)&s->listener, NULL);
		return berth_error_set(err, -r, "listen on %s:%u", a->host, a->port);
	}
	s->listening = true;
	return 0;
}

void berthd_proxy_drain(struct berthd *d)
{
	struct px_server *s = d->proxy;
	struct px_client *c;

	if (s == NULL || s->draining)
		return;
	s->draining = true;
	if (s->listening)
		uv_close((uv_handle_t *)&s->listener, NULL);
	s->listening = false;
	/* Idle connections go now; busy ones once their answer is out. */
	c = s->clients;
	while (c != NULL) {
		struct px_client *next = c->next;
		if (c->state == C_IDLE && c->in_len == 0)
			client_close(c);
		c = next;
	}
}

void berthd_proxy_close(struct berthd *d)
{
	struct px_server *s = d->proxy;

	if (s == NULL)
		return;
	berthd_proxy_drain(d);
	while (s->clients != NULL)
		client_close(s->clients);
	px_pools_close(s);
	while (s->free_clients != NULL) {
		struct px_client *c = s->free_clients;
		s->free_clients = c->next;
		berth_proxy_head_free(&c->head);
		berth_proxy_buf_free(&c->target);
		berth_proxy_buf_free(&c->up_head);
		berth_proxy_buf_free(&c->resp_head);
		free(c->in);
		free(c);
	}
	s->n_free_clients = 0;
}
