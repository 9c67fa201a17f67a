/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The instance side of the proxy: connections to an instance's port (made
 * inside its network namespace through the lease), kept alive in a pool per
 * (instance, port), each with a response parser that hands the response to
 * the exchange's sink as it arrives. Also the write path both sides share.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/log.h"
#include "berth/trace.h"
#include "berth/util.h"
#include "proxy/proxy-internal.h"

#define UP_MAX_HEAD   (64 * 1024)
#define UP_MAX_FIELDS 256

struct px_pool {
	char id[BERTH_ID_LEN + 1];
	uint16_t port;
	struct px_up *idle; /* most recently used first */
	size_t n_idle;
	struct px_pool *next;
};

struct px_up {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	struct px_server *s;
	struct px_pool *pool; /* while idle in it */
	struct px_up *prev_idle, *next_idle;
	struct px_up *prev, *next; /* every connection */
	struct px_exchange *x;
	http_parser parser;
	struct berth_proxy_head head;
	struct px_out out;
	char *in;
	uint16_t port;
	char id[BERTH_ID_LEN + 1];
	bool reading;
	bool closing;
	bool reused;   /* it served a request before this one */
	bool interim;  /* the message being parsed is a 1xx */
	bool complete; /* the response is complete */
	bool reusable; /* ... and the connection can serve another */
	bool failed;   /* the parser refused the response */
	bool shut;     /* our side of the tunnel is shut down */
	int open_handles;
};

static void up_close(struct px_up *u);
static void up_update_read(struct px_up *u);
static void up_failed(struct px_up *u, int err);
static void on_up_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

/* ---- the write path ---- */

void px_out_init(struct px_out *o, uv_stream_t *stream, uv_write_cb written)
{
	memset(o, 0, sizeof(*o));
	o->stream = stream;
	o->written = written;
}

void px_out_add(struct px_out *o, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (o->n == PX_IOV)
		px_out_flush(o);
	o->iov[o->n++] = uv_buf_init((char *)p, (unsigned)n);
}

void px_out_chunk(struct px_out *o, const void *p, size_t n)
{
	char *line;

	if (n == 0)
		return;
	/* Room for the size line, the data and the CRLF in this batch. */
	if (o->n + 3 > PX_IOV || o->n_frames == PX_IOV)
		px_out_flush(o);
	line = o->frames[o->n_frames++];
	px_out_add(o, line, berth_proxy_chunk_line(line, n));
	px_out_add(o, p, n);
	px_out_add(o, "\r\n", 2);
}

void px_wreq_done(uv_write_t *w)
{
	free(w);
}

int px_out_flush(struct px_out *o)
{
	size_t total = 0, done = 0, off;
	struct px_wreq *w;
	uv_buf_t b;
	int r;

	if (o->n == 0 || o->error != 0) {
		o->n = o->n_frames = 0;
		return o->error;
	}
	for (unsigned i = 0; i < o->n; i++)
		total += o->iov[i].len;
	/* Straight from the read buffers when the socket takes it (it usually does). */
	if (o->stream->write_queue_size == 0) {
		r = uv_try_write(o->stream, o->iov, o->n);
		if (r < 0 && r != UV_EAGAIN) {
			o->error = r;
			o->n = o->n_frames = 0;
			return r;
		}
		done = r > 0 ? (size_t)r : 0;
	}
	if (done < total) {
		w = xmalloc(sizeof(*w) + total - done);
		w->len = total - done;
		off = 0;
		for (unsigned i = 0; i < o->n; i++) {
			size_t len = o->iov[i].len;
			const char *p = o->iov[i].base;
			if (done >= len) {
				done -= len;
				continue;
			}
			memcpy(w->data + off, p + done, len - done);
			off += len - done;
			done = 0;
		}
		b = uv_buf_init(w->data, (unsigned)w->len);
		r = uv_write(&w->req, o->stream, &b, 1, o->written);
		if (r < 0) {
			free(w);
			o->error = r;
		}
	}
	o->n = o->n_frames = 0;
	return o->error;
}

/* ---- pools ---- */

static size_t pool_slot(const char *id, uint16_t port)
{
	size_t h = port;
	for (int i = 0; i < 8; i++)
		h = h * 31 + (unsigned char)id[i];
	return h % PX_POOLS;
}

static struct px_pool *pool_get(struct px_server *s, const char *id, uint16_t port, bool create)
{
	size_t slot = pool_slot(id, port);
	struct px_pool *p;

	for (p = s->pools[slot]; p != NULL; p = p->next)
		if (p->port == port && strcmp(p->id, id) == 0)
			return p;
	if (!create)
		return NULL;
	p = xcalloc(1, sizeof(*p));
	memcpy(p->id, id, sizeof(p->id));
	p->port = port;
	p->next = s->pools[slot];
	s->pools[slot] = p;
	return p;
}

static void pool_remove(struct px_up *u)
{
	struct px_pool *p = u->pool;

	if (p == NULL)
		return;
	if (u->prev_idle != NULL)
		u->prev_idle->next_idle = u->next_idle;
	else
		p->idle = u->next_idle;
	if (u->next_idle != NULL)
		u->next_idle->prev_idle = u->prev_idle;
	u->prev_idle = u->next_idle = NULL;
	u->pool = NULL;
	p->n_idle--;
}

static void on_idle_timeout(uv_timer_t *t)
{
	up_close(t->data);
}

static void pool_put(struct px_up *u)
{
	struct px_server *s = u->s;
	struct px_pool *p;

	if (s->draining || s->lim.upstream_keepalive == 0) {
		up_close(u);
		return;
	}
	p = pool_get(s, u->id, u->port, true);
	if (p->n_idle >= s->lim.upstream_keepalive) {
		up_close(u);
		return;
	}
	u->pool = p;
	u->prev_idle = NULL;
	u->next_idle = p->idle;
	if (p->idle != NULL)
		p->idle->prev_idle = u;
	p->idle = u;
	p->n_idle++;
	uv_timer_start(&u->timer, on_idle_timeout, s->lim.upstream_idle_timeout_ms, 0);
	/* Reading on: a close by the instance is seen at once. */
	up_update_read(u);
}

static struct px_up *pool_take(struct px_server *s, const char *id, uint16_t port)
{
	struct px_pool *p = pool_get(s, id, port, false);
	struct px_up *u;

	if (p == NULL || p->idle == NULL)
		return NULL;
	u = p->idle;
	pool_remove(u);
	uv_timer_stop(&u->timer);
	return u;
}

void px_pools_close(struct px_server *s)
{
	struct px_up *u = s->ups;

	while (u != NULL) {
		struct px_up *next = u->next;
		up_close(u);
		u = next;
	}
	for (size_t i = 0; i < PX_POOLS; i++) {
		struct px_pool *p = s->pools[i];
		while (p != NULL) {
			struct px_pool *next = p->next;
			free(p);
			p = next;
		}
		s->pools[i] = NULL;
	}
}

/* ---- connections ---- */

static void on_up_closed(uv_handle_t *h)
{
	struct px_up *u = h->data;

	if (--u->open_handles > 0)
		return;
	berth_proxy_head_free(&u->head);
	free(u->in);
	free(u);
}

static void up_close(struct px_up *u)
{
	struct px_server *s = u->s;

	if (u->closing)
		return;
	u->closing = true;
	pool_remove(u);
	if (u->x != NULL)
		u->x->up = NULL;
	u->x = NULL;
	if (u->prev != NULL)
		u->prev->next = u->next;
	else
		s->ups = u->next;
	if (u->next != NULL)
		u->next->prev = u->prev;
	uv_close((uv_handle_t *)&u->tcp, on_up_closed);
	uv_close((uv_handle_t *)&u->timer, on_up_closed);
}

static void on_up_written(uv_write_t *w, int status)
{
	struct px_up *u = w->handle->data;

	px_wreq_done(w);
	if (u->closing)
		return;
	if (status < 0) {
		up_failed(u, status);
		return;
	}
	if (u->x != NULL && u->tcp.write_queue_size < PX_LOW_WATER && u->x->ops->drained != NULL)
		u->x->ops->drained(u->x);
}

/* ---- the response ---- */

static struct px_up *up_of(http_parser *p)
{
	return p->data;
}

static int on_begin(http_parser *p)
{
	struct px_up *u = up_of(p);

	berth_proxy_head_reset(&u->head);
	u->interim = false;
	return 0;
}

static int on_status(http_parser *p, const char *at, size_t n)
{
	return berth_proxy_head_target(&up_of(p)->head, at, n) < 0 ? -1 : 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
	return berth_proxy_head_name(&up_of(p)->head, at, n) < 0 ? -1 : 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
	return berth_proxy_head_value(&up_of(p)->head, at, n) < 0 ? -1 : 0;
}

static int on_headers(http_parser *p)
{
	struct px_up *u = up_of(p);
	struct px_exchange *x = u->x;

	if (x == NULL)
		return -1;
	if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101) {
		/* 100 Continue and the like: the proxy answered Expect itself. */
		u->interim = true;
		return 0;
	}
	if (p->status_code == 101 && !x->websocket) {
		u->failed = true;
		return -1;
	}
	if (p->status_code == 101)
		x->tunnel = true;
	berth_proxy_head_clean(&u->head);
	BERTH_TRACE("proxy: response head");
	x->response_begun = true;
	x->ops->head(x, p, &u->head);
	/* A HEAD's response has the headers of a GET and no body. */
	return x->head_method ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct px_up *u = up_of(p);

	/* A sink may end the exchange as it takes a piece (its client left). */
	if (u->x == NULL)
		return -1;
	u->x->ops->body(u->x, at, n);
	return 0;
}

static int on_complete(http_parser *p)
{
	struct px_up *u = up_of(p);

	if (u->x == NULL)
		return -1;
	if (u->interim) {
		u->interim = false;
		return 0;
	}
	u->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
        .on_message_begin = on_begin,
        .on_status = on_status,
        .on_header_field = on_field,
        .on_header_value = on_value,
        .on_headers_complete = on_headers,
        .on_body = on_body,
        .on_message_complete = on_complete,
};

static void on_up_timeout(uv_timer_t *t)
{
	struct px_up *u = t->data;

	up_failed(u, UV_ETIMEDOUT);
}

static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct px_up *u = h->data;
	(void)suggested;

	if (u->in == NULL)
		u->in = xmalloc(PX_READ_SIZE);
	*buf = uv_buf_init(u->in, PX_READ_SIZE);
}

static void up_update_read(struct px_up *u)
{
	bool want = !u->closing && (u->x == NULL || !u->x->ops->blocked(u->x));

	if (want == u->reading)
		return;
	u->reading = want;
	if (want)
		uv_read_start((uv_stream_t *)&u->tcp, up_alloc, on_up_read);
	else
		uv_read_stop((uv_stream_t *)&u->tcp);
}

/* The response is complete: the sink finishes the exchange. */
static void up_complete(struct px_up *u, bool leftover)
{
	struct px_exchange *x = u->x;

	u->reusable =
	        !leftover && http_should_keep_alive(&u->parser) && x->request_sent && !x->tunnel;
	uv_timer_stop(&u->timer);
	x->ops->flush(x);
	if (u->x != NULL)
		x->ops->done(x);
}

static void on_up_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct px_up *u = st->data;
	struct px_exchange *x = u->x;
	size_t done;
	(void)buf;

	u->s->d->proxy_reads++;
	if (n == 0)
		return;
	if (x == NULL) {
		/* Idle in the pool: the instance closed it (or spoke out of turn). */
		up_close(u);
		return;
	}
	if (n < 0) {
		if (n == UV_EOF && x->tunnel) {
			x->up_eof = true;
			uv_read_stop(st);
			u->reading = false;
			x->ops->done(x);
			return;
		}
		if (n == UV_EOF && x->response_begun) {
			/* A body that ends with the connection ends here. */
			http_parser_execute(&u->parser, &settings, NULL, 0);
			if (u->complete) {
				up_complete(u, true);
				return;
			}
		}
		up_failed(u, (int)n);
		return;
	}
	if (x->tunnel) {
		berthd_lease_touch(x->lease);
		x->ops->body(x, u->in, (size_t)n);
		x->ops->flush(x);
		if (u->x != NULL)
			up_update_read(u);
		return;
	}
	uv_timer_again(&u->timer);
	done = http_parser_execute(&u->parser, &settings, u->in, (size_t)n);
	if (u->complete) {
		if (x->tunnel) {
			/* After the 101: what followed it is the tunnel's. */
			uv_timer_stop(&u->timer);
			if (done < (size_t)n)
				x->ops->body(x, u->in + done, (size_t)n - done);
			x->ops->flush(x);
			if (u->x != NULL)
				up_update_read(u);
			return;
		}
		up_complete(u, done < (size_t)n);
		return;
	}
	if (HTTP_PARSER_ERRNO(&u->parser) != HPE_OK) {
		u->failed = true;
		up_failed(u, UV_EPROTO);
		return;
	}
	x->ops->flush(x);
	if (u->x != NULL)
		up_update_read(u);
}

static struct px_up *up_new(struct px_server *s, int fd, const char *id, uint16_t port)
{
	struct px_up *u = xcalloc(1, sizeof(*u));

	if (uv_tcp_init(s->d->loop, &u->tcp) < 0) {
		free(u);
		close(fd);
		return NULL;
	}
	u->s = s;
	u->tcp.data = u;
	uv_timer_init(s->d->loop, &u->timer);
	u->timer.data = u;
	u->open_handles = 2;
	u->next = s->ups;
	if (s->ups != NULL)
		s->ups->prev = u;
	s->ups = u;
	memcpy(u->id, id, sizeof(u->id));
	u->port = port;
	berth_proxy_head_init(&u->head, UP_MAX_HEAD, UP_MAX_FIELDS);
	px_out_init(&u->out, (uv_stream_t *)&u->tcp, on_up_written);
	if (uv_tcp_open(&u->tcp, fd) < 0) {
		close(fd);
		up_close(u);
		return NULL;
	}
	uv_tcp_nodelay(&u->tcp, 1);
	return u;
}

/* Connect afresh (no idle connection, or a retry); false: reported. */
static bool exchange_connect(struct px_exchange *x)
{
	const char *id = berthd_lease_id(x->lease);
	struct px_up *u;
	berth_error_t err;
	char msg[1600];
	int fd;

	fd = berthd_lease_connect(x->lease, x->port, &err);
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "cannot connect to %s on port %u: %s", x->label, x->port,
		         err.message);
		x->ops->fail(x, 502, "connect_failed", msg);
		return false;
	}
	u = up_new(x->s, fd, id, x->port);
	if (u == NULL) {
		snprintf(msg, sizeof(msg), "cannot connect to %s on port %u", x->label, x->port);
		x->ops->fail(x, 502, "connect_failed", msg);
		return false;
	}
	x->up = u;
	u->x = x;
	BERTH_TRACE("proxy: connected");
	return true;
}

/* Send the head on x->up (fresh or from the pool). */
static void exchange_send_head(struct px_exchange *x)
{
	struct px_up *u = x->up;

	http_parser_init(&u->parser, HTTP_RESPONSE);
	u->parser.data = u;
	u->complete = u->reusable = u->interim = u->failed = false;
	u->out.error = 0;
	px_out_add(&u->out, x->req_head->data, x->req_head->len);
	uv_timer_start(&u->timer, on_up_timeout, x->s->lim.upstream_timeout_ms,
	               x->s->lim.upstream_timeout_ms);
	up_update_read(u);
}

void px_exchange_begin(struct px_exchange *x)
{
	struct px_up *u = pool_take(x->s, berthd_lease_id(x->lease), x->port);

	if (u != NULL) {
		u->reused = true;
		u->x = x;
		x->up = u;
	} else if (!exchange_connect(x)) {
		return;
	}
	exchange_send_head(x);
}

/*
 * The upstream connection failed: retried once on a fresh connection when
 * a pooled one turns out closed before any of the response came (the
 * instance may close an idle connection just as it is reused) and nothing
 * but the head had to go; else a 502 or 504 to the client, or a cut
 * response when it had begun.
 */
static void up_failed(struct px_up *u, int err)
{
	struct px_exchange *x = u->x;
	char msg[512];
	unsigned status = 502;
	const char *code = "bad_gateway";

	if (x == NULL) {
		up_close(u);
		return;
	}
	if (x->response_begun) {
		up_close(u);
		x->ops->cut(x);
		return;
	}
	if (u->reused && x->retryable && err != UV_ETIMEDOUT && !u->failed) {
		up_close(u);
		if (exchange_connect(x)) {
			exchange_send_head(x);
			x->request_sent = true;
			px_exchange_flush(x);
		}
		return;
	}
	if (err == UV_ETIMEDOUT) {
		status = 504;
		code = "upstream_timeout";
		snprintf(msg, sizeof(msg), "%s did not answer on port %u within %llu ms", x->label,
		         x->port, (unsigned long long)x->s->lim.upstream_timeout_ms);
	} else if (u->failed) {
		snprintf(msg, sizeof(msg), "%s sent a malformed response on port %u: %s", x->label,
		         x->port, http_errno_description(HTTP_PARSER_ERRNO(&u->parser)));
	} else if (err == UV_ECONNREFUSED) {
		code = "connection_refused";
		snprintf(msg, sizeof(msg), "%s refused the connection on port %u", x->label,
		         x->port);
	} else {
		code = "connection_closed";
		snprintf(msg, sizeof(msg),
		         "%s closed the connection on port %u before answering (%s)", x->label,
		         x->port, err == UV_EOF ? "end of stream" : uv_strerror(err));
	}
	up_close(u);
	x->ops->fail(x, status, code, msg);
}

void px_exchange_body(struct px_exchange *x, const char *at, size_t n, bool chunked)
{
	if (x->up == NULL)
		return;
	if (chunked)
		px_out_chunk(&x->up->out, at, n);
	else
		px_out_add(&x->up->out, at, n);
}

void px_exchange_body_end(struct px_exchange *x, bool chunked)
{
	if (x->up != NULL && chunked)
		px_out_add(&x->up->out, "0\r\n\r\n", 5);
	x->request_sent = true;
}

void px_exchange_flush(struct px_exchange *x)
{
	struct px_up *u = x->up;

	if (u == NULL)
		return;
	/* A request body still arriving is progress: the answer is not late yet. */
	if (u->out.n > 0 && !x->response_begun && !x->tunnel)
		uv_timer_again(&u->timer);
	if (px_out_flush(&u->out) < 0)
		up_failed(u, u->out.error);
}

bool px_exchange_blocked(const struct px_exchange *x)
{
	return x->up != NULL && x->up->tcp.write_queue_size > PX_HIGH_WATER;
}

void px_exchange_resume(struct px_exchange *x)
{
	if (x->up != NULL)
		up_update_read(x->up);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)req;
	(void)status;
}

void px_exchange_shutdown(struct px_exchange *x)
{
	struct px_up *u = x->up;

	if (u == NULL || u->closing)
		return;
	px_exchange_flush(x);
	if (x->up != NULL && !u->shut) {
		u->shut = true;
		uv_shutdown(&u->shutdown, (uv_stream_t *)&u->tcp, on_shutdown);
	}
}

void px_exchange_end(struct px_exchange *x)
{
	struct px_up *u = x->up;

	x->up = NULL;
	if (u != NULL) {
		u->x = NULL;
		if (u->complete && u->reusable && !u->closing)
			pool_put(u);
		else
			up_close(u);
	}
	if (x->lease != NULL) {
		berthd_lease_release(x->lease);
		x->lease = NULL;
	}
}
