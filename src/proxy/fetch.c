/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerFetch over the control API (`ANY .../fetch/{path}`): the same
 * exchange as the data plane (leases, pools, the response parser), with the
 * API's request as its source and the API's streamed answer as its sink.
 *
 * Both ways stream. The request's body goes to the instance as the API
 * server parses it (a streamed body, see berth_http_body_policy), read only
 * as fast as the instance takes it: while the upstream's write queue is
 * above its high-water mark the body pauses, and the API server's bounded
 * buffer and the socket hold the rest. berth.proxy.max_body_size bounds it
 * (413), as on the data plane. The response streams back with the API
 * server's backpressure, with the instance's Content-Length when it gave
 * one and in chunked coding otherwise; one the instance cuts short is
 * aborted (no last chunk, or too few bytes, then the close), so the client
 * sees it broken off. A WebSocket upgrade the instance answers with 101 takes the API
 * connection over (berth_http_upgrade()) and becomes a raw tunnel to the
 * instance, holding its lease (so the instance stays awake) and touching it
 * on traffic; the end of either side ends both.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "berth/util.h"
#include "proxy/proxy-internal.h"

#define CONGESTION_POLL_MS 10

struct px_fetch {
	struct px_exchange x;
	struct berthd *d;
	struct berth_http_request *req; /* until answered (or upgraded) */
	struct berth_http_raw *raw;     /* after a 101: the client's side of the tunnel */
	struct berth_proxy_head head;
	struct berth_proxy_buf up_head;
	struct berth_proxy_buf extra; /* the response's headers for the API server */
	uv_timer_t poll;              /* while the API client reads slower than we get */
	bool acquiring, answered, streaming, blocked, in_start, gone, closed;
	bool body_paused; /* the request's body waits for the instance to take what it has */
	bool raw_paused;  /* the tunnel's client waits for the same */
	bool upgrading;   /* inside berth_http_upgrade(), which may report the client gone */
};

static void fetch_free_cb(uv_handle_t *h)
{
	struct px_fetch *f = h->data;

	berth_proxy_head_free(&f->head);
	berth_proxy_buf_free(&f->up_head);
	berth_proxy_buf_free(&f->extra);
	free(f);
}

/* The request is answered (or dropped), or the tunnel is over: let go of everything. */
static void fetch_finish(struct px_fetch *f)
{
	f->answered = true;
	px_exchange_end(&f->x);
	if (f->raw != NULL)
		berth_http_raw_close(steal_pointer(&f->raw));
	if (f->in_start || f->acquiring || f->closed)
		return; /* fetch_start() or on_acquired() comes back here */
	f->closed = true;
	uv_close((uv_handle_t *)&f->poll, fetch_free_cb);
}

static struct px_fetch *fetch_of(struct px_exchange *x)
{
	return x->owner;
}

/*
 * The instance's response headers as the API server's extra header lines,
 * without the hop-by-hop ones, what its Connection names included (Upgrade
 * kept for a 101), and without Content-Length unless `keep_length` (an
 * answer without a body passes on what its origin said).
 */
static void copy_headers(struct px_fetch *f, const struct berth_proxy_head *h, bool upgrade,
                         bool keep_length)
{
	f->extra.len = 0;
	f->extra.max = SIZE_MAX;
	berth_proxy_end_to_end_fields(h, keep_length, upgrade, &f->extra);
	berth_proxy_buf_add(&f->extra, "", 1);
}

static const struct berth_http_raw_ops tunnel_ops;

static void f_head(struct px_exchange *x, const http_parser *p, const struct berth_proxy_head *h)
{
	struct px_fetch *f = fetch_of(x);
	bool body = !x->head_method && p->status_code != 204 && p->status_code != 304;

	/* A 204 has no length to pass on; HEAD and 304 answers keep the instance's. */
	copy_headers(f, h, p->status_code == 101, !body && p->status_code != 204);
	if (p->status_code == 101) {
		/* The API connection is the tunnel's now; the request is gone with the 101. */
		f->upgrading = true;
		f->raw = berth_http_upgrade(steal_pointer(&f->req), f->extra.data, &tunnel_ops, f);
		f->upgrading = false;
		if (f->raw == NULL)
			f->gone = true; /* f_flush ends it, outside the upstream's parser */
		return;
	}
	if (!body) {
		/* No body to stream; the exchange completes right after. */
		berth_http_respond_no_body(f->req, (int)p->status_code, f->extra.data);
		f->req = NULL;
		return;
	}
	f->streaming = true;
	/* The length goes on as the instance gave it (clients show progress); else chunked. */
	if ((p->flags & F_CONTENTLENGTH) && !(p->flags & F_CHUNKED))
		berth_http_stream_begin_sized(f->req, (int)p->status_code, NULL, f->extra.data,
		                              p->content_length);
	else
		berth_http_stream_begin(f->req, (int)p->status_code, NULL, f->extra.data);
}

static void f_body(struct px_exchange *x, const char *at, size_t n)
{
	struct px_fetch *f = fetch_of(x);

	if (x->tunnel) {
		if (f->raw != NULL && berth_http_raw_write(f->raw, at, n) == 1)
			f->blocked = true; /* until the tunnel's drain */
		return;
	}
	if (f->req != NULL && f->streaming && berth_http_stream_write(f->req, at, n) == 1)
		f->blocked = true;
}

/* Answer what is left to answer: the stream's end (or its abort), or a 502. */
static void end_answer(struct px_fetch *f, bool whole)
{
	if (f->req == NULL)
		return;
	if (f->streaming && whole)
		berth_http_stream_end(f->req);
	else if (f->streaming)
		berth_http_stream_abort(f->req);
	else
		berth_http_respond_error(f->req, 502, "bad_gateway", "%s: no response", f->x.label);
	f->req = NULL;
}

static void f_done(struct px_exchange *x)
{
	struct px_fetch *f = fetch_of(x);

	/* Tunnelling, the instance closed its side: the client's closes after what is queued. */
	end_answer(f, true);
	fetch_finish(f);
}

static void f_fail(struct px_exchange *x, unsigned status, const char *code, const char *msg)
{
	struct px_fetch *f = fetch_of(x);

	if (f->req != NULL && !f->streaming) {
		berth_http_respond_error(f->req, (int)status, code, "%s", msg);
		f->req = NULL;
	}
	end_answer(f, false);
	fetch_finish(f);
}

/* The response broke off after its head (or the tunnel failed): the client sees it cut. */
static void f_cut(struct px_exchange *x)
{
	struct px_fetch *f = fetch_of(x);

	end_answer(f, false);
	fetch_finish(f);
}

static void f_flush(struct px_exchange *x)
{
	struct px_fetch *f = fetch_of(x);

	if (f->gone && x->tunnel)
		fetch_finish(f);
}

static void on_poll(uv_timer_t *t)
{
	struct px_fetch *f = t->data;

	if (f->req != NULL && berth_http_stream_congested(f->req))
		return;
	uv_timer_stop(t);
	f->blocked = false;
	px_exchange_resume(&f->x);
}

static bool f_blocked(struct px_exchange *x)
{
	struct px_fetch *f = fetch_of(x);

	/* A tunnel hears of its drain; a streamed answer polls for it. */
	if (f->blocked && !x->tunnel && !uv_is_active((uv_handle_t *)&f->poll))
		uv_timer_start(&f->poll, on_poll, CONGESTION_POLL_MS, CONGESTION_POLL_MS);
	return f->blocked;
}

/* The instance took what was queued for it: what the client sends may go on. */
static void f_drained(struct px_exchange *x)
{
	struct px_fetch *f = fetch_of(x);

	if (f->body_paused && f->req != NULL) {
		f->body_paused = false;
		berth_http_body_pause(f->req, false);
	}
	if (f->raw_paused && f->raw != NULL) {
		f->raw_paused = false;
		berth_http_raw_pause(f->raw, false);
	}
}

static const struct px_sink_ops fetch_sink = {
        .head = f_head,
        .body = f_body,
        .done = f_done,
        .fail = f_fail,
        .cut = f_cut,
        .flush = f_flush,
        .blocked = f_blocked,
        .drained = f_drained,
};

/* ---- the request's body, streamed as it arrives ---- */

static void on_req_body(struct berth_http_request *req, void *arg, const char *at, size_t n)
{
	struct px_fetch *f = arg;

	if (f->answered || f->x.up == NULL)
		return;
	px_exchange_body(&f->x, at, n, req->body_chunked);
	/* The piece is the API server's until we return: written now, or copied. */
	px_exchange_flush(&f->x);
	if (f->req != NULL && !f->answered && px_exchange_blocked(&f->x)) {
		f->body_paused = true;
		berth_http_body_pause(f->req, true);
	}
}

static void on_req_body_end(struct berth_http_request *req, void *arg, int status)
{
	struct px_fetch *f = arg;

	if (f->answered)
		return;
	if (status == 0) {
		px_exchange_body_end(&f->x, req->body_chunked);
		px_exchange_flush(&f->x);
		return;
	}
	/*
	 * Too large, bad chunk framing, or stalled: the instance got part of
	 * it, and its connection goes.
	 */
	if (f->req != NULL && !f->streaming) {
		if (status == -E2BIG)
			berth_http_respond_error(f->req, 413, "body_too_large",
			                         "%s: the request body is larger than "
			                         "berth.proxy.max_body_size (%llu bytes)",
			                         f->x.label,
			                         (unsigned long long)f->x.s->lim.max_body_bytes);
		else if (status == -ETIMEDOUT)
			berth_http_respond_error(f->req, 408, "request_timeout",
			                         "%s: the request body stopped coming", f->x.label);
		else
			berth_http_respond_error(
			        f->req, 400, "bad_request",
			        "%s: the request body's chunked coding is malformed", f->x.label);
		f->req = NULL;
	}
	end_answer(f, false);
	fetch_finish(f);
}

static const struct berth_http_body_ops body_ops = {on_req_body, on_req_body_end};

/* ---- the tunnel's client side ---- */

static void t_data(void *arg, const char *data, size_t len)
{
	struct px_fetch *f = arg;

	if (f->x.up == NULL)
		return;
	berthd_lease_touch(f->x.lease);
	px_exchange_body(&f->x, data, len, false);
	px_exchange_flush(&f->x);
	if (f->raw != NULL && px_exchange_blocked(&f->x)) {
		f->raw_paused = true;
		berth_http_raw_pause(f->raw, true);
	}
}

static void t_drain(void *arg)
{
	struct px_fetch *f = arg;

	if (f->blocked) {
		f->blocked = false;
		px_exchange_resume(&f->x);
	}
}

/* The client left: the instance's connection closes too. */
static void t_close(void *arg)
{
	struct px_fetch *f = arg;

	f->raw = NULL;
	f->gone = true;
	if (!f->upgrading)
		fetch_finish(f);
}

static const struct berth_http_raw_ops tunnel_ops = {t_data, t_drain, t_close};

/* ---- the start ---- */

static void on_gone(struct berth_http_request *req, void *arg)
{
	struct px_fetch *f = arg;
	(void)req;

	f->gone = true;
	if (f->acquiring)
		return;
	end_answer(f, false);
	fetch_finish(f);
}

static void on_acquired(const struct berthd_start_result *res, struct berthd_lease *lease,
                        void *arg)
{
	struct px_fetch *f = arg;

	f->acquiring = false;
	if (f->gone || f->answered) {
		if (lease != NULL)
			berthd_lease_release(lease);
		end_answer(f, false);
		fetch_finish(f);
		return;
	}
	if (res->status != 0) {
		berth_http_respond_error(
		        f->req, res->status, res->code != NULL ? res->code : "start_failed",
		        "%s: %s", f->x.label, res->message != NULL ? res->message : "no start");
		f->req = NULL;
		fetch_finish(f);
		return;
	}
	f->x.lease = lease;
	f->in_start = true;
	px_exchange_begin(&f->x);
	if (!f->answered && f->req->body_stream) {
		px_exchange_flush(&f->x);
		berth_http_body_read(f->req, &body_ops, f);
	} else if (!f->answered) {
		px_exchange_body(&f->x, f->req->body, f->req->body_len, false);
		px_exchange_body_end(&f->x, false);
		px_exchange_flush(&f->x);
	}
	f->in_start = false;
	if (f->answered)
		fetch_finish(f);
}

void berthd_proxy_fetch_body_policy(struct berthd *d, struct berth_http_body_policy *policy)
{
	uint64_t max = d->proxy != NULL ? d->proxy->lim.max_body_bytes : 0;

	policy->stream = true;
	policy->max_bytes = max > 0 && max < SIZE_MAX ? (size_t)max : SIZE_MAX;
}

void berthd_proxy_fetch(struct berthd *d, struct berth_http_request *req,
                        const struct berth_config_class *cls, const char *name,
                        const char *path_and_query)
{
	struct px_server *s = d->proxy;
	const char *token = d->config->berth.api_token, *v;
	cleanup_free char *bearer = token != NULL ? xasprintf("Bearer %s", token) : NULL;
	const char *upgrade = berth_http_header(req, "upgrade");
	struct berth_proxy_request r = {0};
	struct px_fetch *f;
	uint16_t port = cls->default_port;
	char ip[64];
	size_t len;

	if (s == NULL) {
		berth_http_respond_error(req, 503, "no_data_plane",
		                         "containerFetch needs the proxy (set berth.listen)");
		return;
	}
	f = xcalloc(1, sizeof(*f));
	f->d = d;
	f->req = req;
	uv_timer_init(d->loop, &f->poll);
	f->poll.data = f;
	berth_proxy_head_init(&f->head, 1024 * 1024, 1024);
	for (size_t i = 0; i < req->n_headers; i++) {
		/* berth's own token is no business of the container's. */
		if (bearer != NULL && strcmp(req->headers[i].name, "authorization") == 0 &&
		    strcmp(req->headers[i].value, bearer) == 0)
			continue;
		berth_proxy_head_name(&f->head, req->headers[i].name, strlen(req->headers[i].name));
		berth_proxy_head_value(&f->head, req->headers[i].value,
		                       strlen(req->headers[i].value));
	}
	v = berth_proxy_head_get(&f->head, "cf-container-target-port", &len);
	if (v != NULL) {
		unsigned long n = 0;
		size_t i;
		for (i = 0; i < len && i < 6 && v[i] >= '0' && v[i] <= '9'; i++)
			n = n * 10 + (unsigned long)(v[i] - '0');
		if (i != len || len == 0 || n == 0 || n > 65535) {
			berth_http_respond_error(
			        req, 400, "bad_port",
			        "cf-container-target-port must be a port (1-65535)");
			f->req = NULL;
			fetch_finish(f);
			return;
		}
		port = (uint16_t)n;
	}
	if (port == 0) {
		berth_http_respond_error(
		        req, 400, "no_port",
		        "class %s has no defaultPort: send cf-container-target-port",
		        cls->class_name);
		f->req = NULL;
		fetch_finish(f);
		return;
	}
	r.method = req->method;
	r.target = path_and_query;
	r.target_len = strlen(path_and_query);
	if (req->body_stream && req->body_chunked) {
		r.framing = BERTH_PROXY_BODY_CHUNKED;
	} else if (req->body_stream) {
		r.framing = BERTH_PROXY_BODY_LENGTH;
		r.length = req->body_length;
	} else {
		r.framing = req->body_len > 0 || strcmp(req->method, "POST") == 0 ||
		                            strcmp(req->method, "PUT") == 0 ||
		                            strcmp(req->method, "PATCH") == 0
		                    ? BERTH_PROXY_BODY_LENGTH
		                    : BERTH_PROXY_BODY_NONE;
		r.length = req->body_len;
	}
	/* Other upgrades go on as plain requests, without their Upgrade (as the data plane's). */
	r.websocket = req->upgrade && upgrade != NULL && strncasecmp(upgrade, "websocket", 9) == 0;
	snprintf(ip, sizeof(ip), "%s", strcmp(req->peer, "unix") == 0 ? "127.0.0.1" : req->peer);
	if (strrchr(ip, ':') != NULL)
		*strrchr(ip, ':') = '\0'; /* ADDR:PORT */
	r.client_ip = ip;
	r.proto = "http";
	f->up_head.max = 2 * 1024 * 1024;
	berth_proxy_build_request(&f->head, &r, &f->up_head);

	f->x.s = s;
	f->x.ops = &fetch_sink;
	f->x.owner = f;
	f->x.port = port;
	f->x.req_head = &f->up_head;
	f->x.head_method = strcmp(req->method, "HEAD") == 0;
	f->x.websocket = r.websocket;
	f->x.retryable = r.framing == BERTH_PROXY_BODY_NONE && !r.websocket;
	snprintf(f->x.label, sizeof(f->x.label), "%s/%s", cls->class_name, name);
	berth_http_request_on_gone(req, on_gone, f);
	f->acquiring = true;
	berthd_instance_acquire(d, cls, name, on_acquired, f);
}
