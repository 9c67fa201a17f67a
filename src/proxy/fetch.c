/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerFetch over the control API (`ANY .../fetch/{path}`): the same
 * exchange as the data plane (leases, pools, the response parser), with the
 * API's request as its source and the API's streamed answer as its sink.
 *
 * The API server reads whole requests, so a request body is bounded by the
 * API's body limit (1 MiB); the response streams back in chunked coding with
 * the API server's backpressure. A response cut short by the instance ends
 * the stream early (the API server cannot reset a stream), and WebSocket
 * upgrades are not offered through it: the data plane serves both fully.
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
	struct berth_http_request *req;
	struct berth_proxy_head head;
	struct berth_proxy_buf up_head;
	struct berth_proxy_buf extra; /* the response's headers for the API server */
	uv_timer_t poll;              /* while the API client reads slower than we get */
	bool acquiring, answered, streaming, blocked, in_start, gone;
	int open_handles;
};

static void fetch_free_cb(uv_handle_t *h)
{
	struct px_fetch *f = h->data;

	berth_proxy_head_free(&f->head);
	berth_proxy_buf_free(&f->up_head);
	berth_proxy_buf_free(&f->extra);
	free(f);
}

/* The request is answered (or dropped): let go of everything. */
static void fetch_finish(struct px_fetch *f)
{
	f->answered = true;
	px_exchange_end(&f->x);
	if (f->in_start || f->acquiring)
		return; /* fetch_start() or on_acquired() comes back here */
	uv_close((uv_handle_t *)&f->poll, fetch_free_cb);
}

static struct px_fetch *fetch_of(struct px_exchange *x)
{
	return x->owner;
}

static void f_head(struct px_exchange *x, const http_parser *p, const struct berth_proxy_head *h)
{
	struct px_fetch *f = fetch_of(x);
	bool body = !x->head_method && p->status_code != 204 && p->status_code != 304;

	f->extra.len = 0;
	f->extra.max = SIZE_MAX;
	for (size_t i = 0; i < h->n_fields; i++) {
		const char *name = berth_proxy_field_name(h, i);
		size_t len = h->fields[i].name_len;
		static const char *const drop[] = {
		        "connection", "keep-alive", "transfer-encoding", "content-length",
		        "te",         "trailer",    "upgrade",           NULL};
		bool skip = false;

		for (size_t k = 0; drop[k] != NULL; k++)
			skip |= strlen(drop[k]) == len && strncasecmp(drop[k], name, len) == 0;
		if (skip)
			continue;
		berth_proxy_buf_add(&f->extra, name, len);
		berth_proxy_buf_add(&f->extra, ": ", 2);
		berth_proxy_buf_add(&f->extra, berth_proxy_field_value(h, i),
		                    h->fields[i].value_len);
		berth_proxy_buf_add(&f->extra, "\r\n", 2);
	}
	berth_proxy_buf_add(&f->extra, "", 1);
	if (!body) {
		/* No body to stream; the exchange completes right after. */
		berth_http_respond(f->req, (int)p->status_code, NULL, f->extra.data, "", 0);
		f->req = NULL;
		return;
	}
	f->streaming = true;
	berth_http_stream_begin(f->req, (int)p->status_code, NULL, f->extra.data);
}

static void f_body(struct px_exchange *x, const char *at, size_t n)
{
	struct px_fetch *f = fetch_of(x);

	if (f->req != NULL && f->streaming && berth_http_stream_write(f->req, at, n) == 1)
		f->blocked = true;
}

static void end_answer(struct px_fetch *f)
{
	if (f->req == NULL)
		return;
	if (f->streaming)
		berth_http_stream_end(f->req);
	else
		berth_http_respond_error(f->req, 502, "bad_gateway", "%s: no response", f->x.label);
	f->req = NULL;
}

static void f_done(struct px_exchange *x)
{
	struct px_fetch *f = fetch_of(x);

	end_answer(f);
	fetch_finish(f);
}

static void f_fail(struct px_exchange *x, unsigned status, const char *code, const char *msg)
{
	struct px_fetch *f = fetch_of(x);

	if (f->req != NULL && !f->streaming) {
		berth_http_respond_error(f->req, (int)status, code, "%s", msg);
		f->req = NULL;
	}
	end_answer(f);
	fetch_finish(f);
}

static void f_cut(struct px_exchange *x)
{
	f_done(x);
}

static void f_flush(struct px_exchange *x)
{
	(void)x;
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

	if (f->blocked && !uv_is_active((uv_handle_t *)&f->poll))
		uv_timer_start(&f->poll, on_poll, CONGESTION_POLL_MS, CONGESTION_POLL_MS);
	return f->blocked;
}

static const struct px_sink_ops fetch_sink = {
        .head = f_head,
        .body = f_body,
        .done = f_done,
        .fail = f_fail,
        .cut = f_cut,
        .flush = f_flush,
        .blocked = f_blocked,
};

static void on_gone(struct berth_http_request *req, void *arg)
{
	struct px_fetch *f = arg;
	(void)req;

	f->gone = true;
	if (f->acquiring)
		return;
	end_answer(f);
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
		end_answer(f);
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
	if (!f->answered) {
		px_exchange_body(&f->x, f->req->body, f->req->body_len, false);
		px_exchange_body_end(&f->x, false);
		px_exchange_flush(&f->x);
	}
	f->in_start = false;
	if (f->answered)
		fetch_finish(f);
}

void berthd_proxy_fetch(struct berthd *d, struct berth_http_request *req,
                        const struct berth_config_class *cls, const char *name,
                        const char *path_and_query)
{
	struct px_server *s = d->proxy;
	const char *token = d->config->berth.api_token, *v;
	cleanup_free char *bearer = token != NULL ? xasprintf("Bearer %s", token) : NULL;
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
	r.framing = req->body_len > 0 || strcmp(req->method, "POST") == 0 ||
	                            strcmp(req->method, "PUT") == 0 ||
	                            strcmp(req->method, "PATCH") == 0
	                    ? BERTH_PROXY_BODY_LENGTH
	                    : BERTH_PROXY_BODY_NONE;
	r.length = req->body_len;
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
	f->x.retryable = r.framing == BERTH_PROXY_BODY_NONE;
	snprintf(f->x.label, sizeof(f->x.label), "%s/%s", cls->class_name, name);
	berth_http_request_on_gone(req, on_gone, f);
	f->acquiring = true;
	berthd_instance_acquire(d, cls, name, on_acquired, f);
}
