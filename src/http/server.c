/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP/1.1 server (see http.h). Each connection runs http-parser over
 * what it reads; a complete request pauses the parser until the request is
 * answered, which keeps answers in request order. Reading goes on meanwhile
 * (so a client that leaves is noticed), into a bounded buffer. A connection is freed only in its
 * handles' close callbacks; a request handed to a handler is freed only when answered.
 *
 * A streamed body pauses the parser at the request's head instead, and then
 * after each piece of the body, which its reader gets outside the parser; the
 * reader's pace is the parser's, and the bounded buffer and the socket hold
 * the rest. A connection that ends with unread input shuts its side and
 * drops what comes for a while (a lingering close) before it closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/log.h"
#include "berth/util.h"
#include "http/http.h"

#define READ_CHUNK 65536
#define LINGER_MS  2000

struct listener {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	struct berth_http_server *server;
	struct listener *next;
	char *unix_path; /* removed on close */
};

struct berth_http_server {
	uv_loop_t *loop;
	struct berth_http_options opt;
	berth_http_handler_fn handler;
	void *data;
	struct listener *listeners;
	struct http_conn *conns;
	size_t n_conns;
	uint16_t tcp_port;
	bool closing;
	int open_handles; /* listeners and connections not yet closed */
	void (*done)(void *arg);
	void *done_arg;
};

struct http_conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	struct berth_http_server *server;
	struct http_conn *prev, *next;
	http_parser parser;
	char peer[64];
	char *in; /* read but not yet parsed */
	size_t in_len;
	struct berth_http_request *req;    /* being parsed */
	struct berth_http_request *active; /* waiting for its answer */
	size_t header_bytes;
	bool in_value;   /* the last header callback was a value */
	bool bad_value;  /* a header value has a control character */
	bool in_trailer; /* past the head: header callbacks are a chunked body's trailer */
	bool keep_alive;
	bool in_message; /* bytes of a request have arrived */
	bool dispatch;   /* a request completed during the last parse */
	bool peer_eof;
	bool failed; /* answered by fail_request(); closes once written */
	bool closing;
	bool lingering;    /* answered and shut: what the client still sends is dropped */
	bool parsing;      /* in conn_parse()'s loop: an answer given meanwhile lets it go on */
	bool stop_parsing; /* answered with a close: nothing more is parsed */
	/* A streamed body: the piece the parser paused after, and its end. */
	const char *piece;
	size_t piece_len;
	bool body_ended;
	int body_error; /* why on_body refused: -E2BIG */
	int open_handles;
	struct berth_http_raw *raw; /* upgraded: bytes go to it, not the parser */
};

struct berth_http_raw {
	struct http_conn *conn;
	struct berth_http_raw_ops ops;
	void *arg;
	bool closed; /* by its owner: no more callbacks */
};

static const struct berth_http_options default_options = {
        .max_header_bytes = 64 * 1024,
        .max_body_bytes = 1024 * 1024,
        .header_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .max_connections = 1024,
        .stream_high_water = 1024 * 1024,
};

static void conn_close(struct http_conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf);
static int conn_write(struct http_conn *c, char *buf, size_t len, bool close_after);
static void fail_request(struct http_conn *c, int status, const char *code, const char *message);

/* ---- requests ---- */

static void request_free(struct berth_http_request *req)
{
	if (req == NULL)
		return;
	for (size_t i = 0; i < req->n_headers; i++) {
		free(req->headers[i].name);
		free(req->headers[i].value);
	}
	free(req->headers);
	free(req->target);
	free(req->path);
	free(req->query);
	free(req->body);
	berth_close_keep_errno(req->body_fd);
	free(req);
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
	*buf = xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode; refuses %00 and malformed escapes (returns NULL). */
static char *percent_decode(const char *s, size_t n, bool plus_is_space)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi, lo;
			if (i + 2 >= n)
				goto bad;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else if (plus_is_space && s[i] == '+') {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

const char *berth_http_header(const struct berth_http_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

char *berth_http_query_param(const struct berth_http_request *req, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *p = req->query; p != NULL && *p != '\0';) {
		const char *end = strchr(p, '&');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (len >= nlen && strncmp(p, name, nlen) == 0 && (len == nlen || p[nlen] == '=')) {
			if (len == nlen)
				return xstrdup("");
			return percent_decode(p + nlen + 1, len - nlen - 1, true);
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return NULL;
}

bool berth_http_request_gone(const struct berth_http_request *req)
{
	return req->conn == NULL;
}

void berth_http_request_on_gone(struct berth_http_request *req,
                                void (*fn)(struct berth_http_request *req, void *arg), void *arg)
{
	req->on_gone = fn;
	req->on_gone_arg = arg;
}

/* The connection dies under a request the handler still holds. */
static void request_orphan(struct berth_http_request *req)
{
	req->conn = NULL;
	if (req->on_gone != NULL) {
		void (*fn)(struct berth_http_request *, void *) = req->on_gone;
		req->on_gone = NULL;
		fn(req, req->on_gone_arg);
	}
}

/* ---- parser callbacks ---- */

static struct http_conn *conn_of(http_parser *p)
{
	return p->data;
}

static int count_header_bytes(struct http_conn *c, size_t n)
{
	c->header_bytes += n;
	if (c->header_bytes > c->server->opt.max_header_bytes) {
		fail_request(c, 431, "headers_too_large",
		             "the request's header block is too large");
		return -1;
	}
	return 0;
}

static void on_timeout(uv_timer_t *t);

static int on_message_begin(http_parser *p)
{
	struct http_conn *c = conn_of(p);

	request_free(c->req);
	c->req = xcalloc(1, sizeof(*c->req));
	c->req->peer = c->peer;
	c->req->body_fd = -1;
	c->header_bytes = 0;
	c->in_value = false;
	c->bad_value = false;
	c->in_trailer = false;
	if (!c->in_message) {
		/* From now on the client has header_timeout_ms for the head. */
		c->in_message = true;
		uv_timer_start(&c->timer, on_timeout, c->server->opt.header_timeout_ms, 0);
	}
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);
	size_t len = c->req->target != NULL ? strlen(c->req->target) : 0;

	if (count_header_bytes(c, n) < 0)
		return -1;
	append(&c->req->target, &len, at, n);
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);
	struct berth_http_request *r = c->req;
	size_t len;

	if (count_header_bytes(c, n) < 0)
		return -1;
	/*
	 * A chunked body's trailer fields are dropped, as a recipient may: they
	 * come after the head was checked and handed on (a streamed body's
	 * request is not even ours any more).
	 */
	if (c->in_trailer)
		return 0;
	if (r->n_headers == 0 || c->in_value) {
		r->headers = xrealloc(r->headers, (r->n_headers + 1) * sizeof(*r->headers));
		r->headers[r->n_headers].name = xstrdup("");
		r->headers[r->n_headers].value = xstrdup("");
		r->n_headers++;
		c->in_value = false;
	}
	len = strlen(r->headers[r->n_headers - 1].name);
	append(&r->headers[r->n_headers - 1].name, &len, at, n);
	for (char *q = r->headers[r->n_headers - 1].name; *q != '\0'; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);
	struct berth_http_request *r = c->req;
	size_t len;

	if (count_header_bytes(c, n) < 0)
		return -1;
	if (c->in_trailer)
		return 0;
	/* http-parser lets any byte, NUL included, start a value: refused below. */
	for (size_t i = 0; i < n; i++)
		c->bad_value |= berth_http_is_ctl(at[i]);
	c->in_value = true;
	len = strlen(r->headers[r->n_headers - 1].value);
	append(&r->headers[r->n_headers - 1].value, &len, at, n);
	return 0;
}

/* The body's limit and place, as the server's policy says for this request. */
static int open_body(struct http_conn *c, struct berth_http_request *r, http_parser *p)
{
	const struct berth_http_options *o = &c->server->opt;
	struct berth_http_body_policy pol = {.max_bytes = o->max_body_bytes, .spool = false};

	if (o->body_policy != NULL)
		o->body_policy(r, c->server->data, &pol);
	r->body_max = pol.max_bytes;
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > r->body_max) {
		fail_request(c, 413, "body_too_large", "the request body is too large");
		return -1;
	}
	/* An upgrade's body (if any) is read whole: the connection changes hands after it. */
	if (pol.stream && !p->upgrade &&
	    ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length > 0))) {
		r->body_stream = true;
		r->body_chunked = (p->flags & F_CHUNKED) != 0;
		r->body_length = r->body_chunked ? 0 : p->content_length;
		return 0;
	}
	if (pol.spool && (p->flags & (F_CONTENTLENGTH | F_CHUNKED)) &&
	    !((p->flags & F_CONTENTLENGTH) && p->content_length == 0)) {
		const char *dir = o->spool_dir;
		r->body_fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (r->body_fd < 0) {
			berth_warn("http: spool a request body in %s: %s", dir, strerror(errno));
			fail_request(c, 507, "spool_failed",
			             "the request body could not be stored");
			return -1;
		}
	}
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);
	struct berth_http_request *r = c->req;
	struct http_parser_url u;
	const char *expect;

	c->in_trailer = true;
	/*
	 * What containerFetch passes on to an instance must be what any other
	 * parser reads the same way: no name with whitespace before its colon
	 * (http-parser keeps it in the name but frames by it), no control
	 * characters in values.
	 */
	for (size_t i = 0; i < r->n_headers; i++) {
		if (!berth_http_is_token(r->headers[i].name, strlen(r->headers[i].name))) {
			fail_request(c, 400, "bad_request", "a header name is not a token");
			return -1;
		}
	}
	if (c->bad_value) {
		fail_request(c, 400, "bad_request", "a header value has a control character");
		return -1;
	}
	r->method = http_method_str((enum http_method)p->method);
	r->http_minor = p->http_minor;
	r->upgrade = p->upgrade != 0;
	c->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	http_parser_url_init(&u);
	if (r->target == NULL || http_parser_parse_url(r->target, strlen(r->target), 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_PATH))) {
		fail_request(c, 400, "bad_request", "the request target is not a path");
		return -1;
	}
	r->path = percent_decode(r->target + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len,
	                         false);
	if (r->path == NULL) {
		fail_request(c, 400, "bad_request", "the request path has a bad %-escape");
		return -1;
	}
	if (u.field_set & (1 << UF_QUERY))
		r->query = xstrndup(r->target + u.field_data[UF_QUERY].off,
		                    u.field_data[UF_QUERY].len);
	if (open_body(c, r, p) < 0)
		return -1;
	expect = berth_http_header(r, "expect");
	if (expect != NULL) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		if (strcasecmp(expect, "100-continue") != 0) {
			fail_request(c, 417, "expectation_failed", "only 100-continue is expected");
			return -1;
		}
		conn_write(c, xstrdup(cont), sizeof(cont) - 1, false);
	}
	if (r->body_stream) {
		/*
		 * To the handler now, outside the parser; the body is parsed
		 * only as the handler reads it. Its pace is the handler's from
		 * here, so the header timeout no longer runs.
		 */
		r->body = xstrdup("");
		r->conn = c;
		c->active = steal_pointer(&c->req);
		c->dispatch = true;
		uv_timer_stop(&c->timer);
		http_parser_pause(p, 1);
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct http_conn *c = conn_of(p);
	struct berth_http_request *r = c->req;

	if (r == NULL) {
		/* The streamed body of the active request: handed over after the parser returns. */
		r = c->active;
		if (r->body_len + n > r->body_max) {
			c->body_error = -E2BIG;
			return -1;
		}
		r->body_len += n;
		c->piece = at;
		c->piece_len = n;
		http_parser_pause(p, 1);
		return 0;
	}
	if (r->body_len + n > r->body_max) {
		fail_request(c, 413, "body_too_large", "the request body is too large");
		return -1;
	}
	/*
	 * A body may take as long as it needs while it keeps coming (a large
	 * upload over a slow link): idle_timeout_ms between two of its pieces,
	 * as nginx's client_body_timeout, not header_timeout_ms for all of it.
	 */
	uv_timer_start(&c->timer, on_timeout, c->server->opt.idle_timeout_ms, 0);
	if (r->body_fd >= 0) {
		/* Page-cache writes of a body too large for memory: the price of not holding it. */
		int w = berth_write_all(r->body_fd, at, n);
		if (w < 0) {
			fail_request(c, 507, "spool_failed",
			             "the request body could not be stored");
			return -1;
		}
		r->body_len += n;
		return 0;
	}
	append(&r->body, &r->body_len, at, n);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);

	if (c->req == NULL) {
		/* The end of a streamed body: the request was dispatched at its head. */
		c->active->body_complete = true;
		c->body_ended = true;
		c->in_message = false;
		http_parser_pause(p, 1);
		return 0;
	}
	if (c->req->body == NULL)
		c->req->body = xstrdup("");
	c->req->conn = c;
	c->active = steal_pointer(&c->req);
	c->dispatch = true;
	c->in_message = false;
	uv_timer_stop(&c->timer);
	/* One request at a time: the rest of the input waits for the answer. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
};

/* ---- connections ---- */

static void server_handle_closed(struct berth_http_server *s)
{
	if (--s->open_handles > 0 || !s->closing)
		return;
	if (s->done != NULL)
		s->done(s->done_arg);
	free((char *)s->opt.spool_dir);
	free(s);
}

static void conn_handle_closed(uv_handle_t *h)
{
	struct http_conn *c = h->data;
	struct berth_http_server *s = c->server;

	if (--c->open_handles > 0)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->n_conns--;
	free(c->raw);
	request_free(c->req);
	free(c->in);
	free(c);
	server_handle_closed(s);
}

static void conn_close(struct http_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	/* The handler still holds it; its answer (or stream end) frees it. */
	if (c->active != NULL)
		request_orphan(steal_pointer(&c->active));
	if (c->raw != NULL && !c->raw->closed && c->raw->ops.close != NULL) {
		c->raw->closed = true;
		c->raw->ops.close(c->raw->arg);
	}
	uv_close(&c->h.handle, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)req;
	(void)status;
}

static void on_linger_end(uv_timer_t *t)
{
	conn_close(t->data);
}

/*
 * Close after the last answer is out: shut our side and read what the
 * client still sends (a body that was not read) for up to LINGER_MS, so
 * that closing with unread data does not reset the connection before the
 * client has read its answer.
 */
static void conn_linger(struct http_conn *c)
{
	if (c->closing || c->lingering)
		return;
	if (c->peer_eof || uv_shutdown(&c->shutdown, &c->h.stream, on_shutdown) < 0) {
		conn_close(c);
		return;
	}
	c->lingering = true;
	c->in_len = 0;
	uv_timer_start(&c->timer, on_linger_end, LINGER_MS, 0);
	uv_read_start(&c->h.stream, on_alloc, on_read);
}

struct write_req {
	uv_write_t req;
	struct http_conn *conn;
	char *buf;
	bool close_after; /* close the connection once written */
};

static void on_written(uv_write_t *wr, int status)
{
	struct write_req *w = (struct write_req *)wr;
	struct http_conn *c = w->conn;
	struct berth_http_request *req;

	free(w->buf);
	if (!c->closing && status < 0)
		conn_close(c);
	else if (w->close_after)
		conn_linger(c);
	free(w);
	if (!c->closing && c->raw != NULL && !c->raw->closed && c->raw->ops.drain != NULL &&
	    c->h.stream.write_queue_size == 0)
		c->raw->ops.drain(c->raw->arg);
	/* After a close the request is gone, and on_gone has been called instead. */
	req = c->closing ? NULL : c->active;
	if (req != NULL && req->on_drain != NULL &&
	    c->h.stream.write_queue_size <= req->drain_low_water) {
		void (*fn)(struct berth_http_request *, void *) = req->on_drain;
		req->on_drain = NULL;
		fn(req, req->on_drain_arg);
	}
}

/* Queue `len` bytes of `buf` (taken over) on the connection. */
static int conn_write(struct http_conn *c, char *buf, size_t len, bool close_after)
{
	struct write_req *w;
	size_t off = 0;
	uv_buf_t b;
	int r;

	if (c->closing) {
		free(buf);
		return UV_ECONNRESET;
	}
	/*
	 * Nothing queued: write now. An answer usually fits the socket buffer,
	 * and then costs one write(2) instead of a queued request, an epoll
	 * registration and a callback.
	 */
	if (c->h.stream.write_queue_size == 0) {
		b = uv_buf_init(buf, (unsigned)len);
		r = uv_try_write(&c->h.stream, &b, 1);
		if (r == (int)len) {
			free(buf);
			if (close_after)
				conn_linger(c);
			return 0;
		}
		if (r > 0)
			off = (size_t)r;
	}
	w = xcalloc(1, sizeof(*w));
	w->conn = c;
	w->buf = buf;
	w->close_after = close_after;
	b = uv_buf_init(buf + off, (unsigned)(len - off));
	r = uv_write(&w->req, &c->h.stream, &b, 1, on_written);
	if (r < 0) {
		free(buf);
		free(w);
		conn_close(c);
	}
	return r;
}

/* A request that cannot be served: answer it (no handler involved) and close. */
static void fail_request(struct http_conn *c, int status, const char *code, const char *message)
{
	json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
	char *body = json_dumps(j, JSON_COMPACT);
	char *out = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	                      "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
	                      status, berth_http_reason(status), strlen(body) + 1, body);

	json_decref(j);
	free(body);
	c->failed = true;
	c->keep_alive = false;
	uv_timer_stop(&c->timer);
	uv_read_stop(&c->h.stream);
	conn_write(c, out, strlen(out), true);
}

static void on_timeout(uv_timer_t *t)
{
	struct http_conn *c = t->data;

	if (c->in_message)
		fail_request(c, 408, "request_timeout", "the request took too long to arrive");
	else
		conn_close(c); /* an idle keep-alive connection */
}

/* Whether the active request's streamed body is to be parsed now. */
static bool body_flowing(const struct berth_http_request *r)
{
	return r->body_stream && r->body_ops != NULL && !r->body_paused && !r->body_complete &&
	       !r->body_failed;
}

/* Whether the parser may run: for the next request, or for the active one's body. */
static bool parse_ready(const struct http_conn *c)
{
	if (c->closing || c->failed || c->stop_parsing || c->lingering || c->raw != NULL ||
	    c->in_len == 0)
		return false;
	return c->active == NULL || body_flowing(c->active);
}

/* A streamed body cannot be read on: its reader hears why, and the connection closes. */
static void body_fail(struct http_conn *c, int status)
{
	struct berth_http_request *r = c->active;

	r->body_failed = true;
	c->stop_parsing = true;
	c->keep_alive = false;
	uv_read_stop(&c->h.stream);
	r->body_ops->end(r, r->body_arg, status);
}

static void on_body_idle(uv_timer_t *t)
{
	struct http_conn *c = t->data;

	if (c->closing || c->active == NULL || !body_flowing(c->active))
		return;
	body_fail(c, -ETIMEDOUT);
}

/*
 * Run the parser over what is buffered; hand a complete request (or the
 * head of one whose body streams) to the handler, and a streamed body's
 * pieces to its reader. Both happen outside the parser's callbacks (which
 * pause it), so an answer given in them never frees a request under the
 * parser; an answer given in this loop lets the loop go on with the next
 * request.
 */
static void conn_parse(struct http_conn *c)
{
	struct berth_http_server *s = c->server;

	if (c->parsing)
		return;
	c->parsing = true;
	while (parse_ready(c)) {
		struct berth_http_request *r = c->active;
		bool progress;
		size_t done;

		c->piece_len = 0;
		http_parser_pause(&c->parser, 0);
		done = http_parser_execute(&c->parser, &settings, c->in, c->in_len);
		if (c->closing || c->failed)
			break; /* a callback refused the request and answered */
		if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK &&
		    HTTP_PARSER_ERRNO(&c->parser) != HPE_PAUSED) {
			char msg[160];
			if (r != NULL) {
				/* In a streamed body: too large, or bad chunk framing. */
				body_fail(c, c->body_error != 0 ? c->body_error : -EPROTO);
				break;
			}
			/* Ambiguous framing (Content-Length and Transfer-Encoding), bad
			 * chunk sizes, garbage: refuse and close, never guess. */
			snprintf(msg, sizeof(msg), "malformed request: %s",
			         http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
			fail_request(c, 400, "bad_request", msg);
			break;
		}
		progress = done > 0 || c->piece_len > 0 || c->body_ended || c->dispatch;
		/* The piece points into c->in: handed over before the buffer moves. */
		if (c->piece_len > 0 && r != NULL && c->active == r)
			r->body_ops->data(r, r->body_arg, c->piece, c->piece_len);
		if (c->body_ended && r != NULL && c->active == r && !c->closing) {
			c->body_ended = false;
			r->body_ops->end(r, r->body_arg, 0);
		}
		/* Answered with a close meanwhile: the buffer is no longer the parser's. */
		if (c->closing || c->lingering)
			break;
		memmove(c->in, c->in + done, c->in_len - done);
		c->in_len -= done;
		if (c->dispatch) {
			c->dispatch = false;
			s->handler(c->active, s->data);
		}
		if (!progress)
			break;
	}
	c->parsing = false;
	/*
	 * A streamed body that waits for the client's bytes (not for its
	 * reader): idle_timeout_ms until the next piece, as for a body read
	 * whole.
	 */
	if (!c->closing && !c->failed && c->active != NULL && body_flowing(c->active))
		uv_timer_start(&c->timer, on_body_idle, s->opt.idle_timeout_ms, 0);
}

/* A streamed body may go on: parse what waits, read on. On the loop, not in the caller's stack. */
static void on_body_resume(uv_timer_t *t)
{
	struct http_conn *c = t->data;

	if (c->closing || c->active == NULL || !body_flowing(c->active))
		return;
	uv_read_start(&c->h.stream, on_alloc, on_read);
	conn_parse(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct http_conn *c = h->data;
	(void)suggested;
	/* At most one read chunk is ever buffered beyond what the parser took. */
	c->in = xrealloc(c->in, c->in_len + READ_CHUNK);
	*buf = uv_buf_init(c->in + c->in_len, READ_CHUNK);
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct http_conn *c = stream->data;
	(void)buf;

	if (n == UV_EOF) {
		/*
		 * As nginx does (its 499), EOF means the client left, also while
		 * its request waits for an answer: a handler waiting on a cold
		 * start learns it at once (on_gone). HTTP clients do not
		 * half-close to wait for an answer.
		 */
		c->peer_eof = true;
		conn_close(c);
		return;
	}
	if (n < 0) {
		conn_close(c);
		return;
	}
	if (c->lingering) {
		c->in_len = 0;
		return;
	}
	if (c->raw != NULL) {
		/*
		 * Upgraded: the bytes are the new protocol's, passed on — after
		 * those that came with the request, if raw_leftover has not run yet.
		 */
		size_t total = c->in_len + (size_t)n;
		c->in_len = 0;
		if (!c->raw->closed)
			c->raw->ops.data(c->raw->arg, c->in, total);
		return;
	}
	c->in_len += (size_t)n;
	if (c->active != NULL && body_flowing(c->active)) {
		conn_parse(c);
		if (!c->closing && c->in_len > c->server->opt.max_header_bytes + READ_CHUNK)
			uv_read_stop(stream);
		return;
	}
	if (c->active != NULL) {
		/*
		 * We keep reading while a request waits for its answer, to see
		 * the client leave; what it pipelines meanwhile waits here, up to
		 * one more header block's worth.
		 */
		if (c->in_len > c->server->opt.max_header_bytes + READ_CHUNK)
			uv_read_stop(stream);
		return;
	}
	conn_parse(c);
}

/* After an answer: next request (pipelined bytes first), or close. */
static void conn_resume(struct http_conn *c)
{
	if (c->closing)
		return;
	if (!c->keep_alive || c->peer_eof) {
		/* on_written closes once the answer is out (close_after). */
		return;
	}
	uv_timer_start(&c->timer, on_timeout, c->server->opt.idle_timeout_ms, 0);
	conn_parse(c);
	/* Reading may have stopped on a full buffer; starting twice is harmless. */
	if (!c->closing && !c->failed)
		uv_read_start(&c->h.stream, on_alloc, on_read);
}

static void on_connection(uv_stream_t *ls, int status)
{
	struct listener *l = ls->data;
	struct berth_http_server *s = l->server;
	struct http_conn *c;
	int r;

	if (status < 0 || s->closing)
		return;
	c = xcalloc(1, sizeof(*c));
	c->server = s;
	if (l->unix_path != NULL) {
		r = uv_pipe_init(s->loop, &c->h.pipe, 0);
		snprintf(c->peer, sizeof(c->peer), "unix");
	} else {
		r = uv_tcp_init(s->loop, &c->h.tcp);
	}
	if (r < 0) {
		free(c);
		return;
	}
	c->h.handle.data = c;
	uv_timer_init(s->loop, &c->timer);
	c->timer.data = c;
	c->open_handles = 2;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	s->open_handles++;
	if (uv_accept(ls, &c->h.stream) < 0 || s->n_conns > s->opt.max_connections) {
		conn_close(c);
		return;
	}
	if (l->unix_path == NULL) {
		struct sockaddr_storage sa;
		int len = sizeof(sa);
		char addr[INET6_ADDRSTRLEN] = "?";

		if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&sa, &len) == 0) {
			if (sa.ss_family == AF_INET6)
				uv_ip6_name((struct sockaddr_in6 *)&sa, addr, sizeof(addr));
			else
				uv_ip4_name((struct sockaddr_in *)&sa, addr, sizeof(addr));
		}
		snprintf(c->peer, sizeof(c->peer), "%s:%u", addr,
		         ntohs(((struct sockaddr_in *)&sa)->sin_port));
		uv_tcp_nodelay(&c->h.tcp, 1);
	}
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	uv_timer_start(&c->timer, on_timeout, s->opt.header_timeout_ms, 0);
	uv_read_start(&c->h.stream, on_alloc, on_read);
}

/* ---- answers ---- */

static void request_done(struct berth_http_request *req)
{
	struct http_conn *c = req->conn;

	if (c == NULL) {
		/* The client is gone: nothing to write, and nobody else holds it. */
		request_free(req);
		return;
	}
	c->active = NULL;
	c->body_ended = false;
	if (!c->keep_alive || c->peer_eof)
		c->stop_parsing = true;
	request_free(req);
	conn_resume(c);
}

/*
 * An answer ends while the request's streamed body is still coming: the
 * rest of it is not read, so the connection cannot carry another request.
 */
static void body_unfinished(struct berth_http_request *req)
{
	if (req->conn != NULL && req->body_stream && !req->body_complete) {
		req->conn->keep_alive = false;
		req->conn->stop_parsing = true;
	}
}

static char *response_head(const struct berth_http_request *req, int status,
                           const char *content_type, const char *extra_headers, const char *framing)
{
	bool close = !req->conn->keep_alive || req->conn->peer_eof;

	return xasprintf("HTTP/1.1 %d %s\r\n%s%s%s%s%sConnection: %s\r\n\r\n", status,
	                 berth_http_reason(status), content_type != NULL ? "Content-Type: " : "",
	                 content_type != NULL ? content_type : "",
	                 content_type != NULL ? "\r\n" : "",
	                 extra_headers != NULL ? extra_headers : "", framing,
	                 close ? "close" : "keep-alive");
}

void berth_http_respond(struct berth_http_request *req, int status, const char *content_type,
                        const char *extra_headers, const void *body, size_t len)
{
	struct http_conn *c = req->conn;
	cleanup_free char *framing = NULL;
	char *head, *out;
	size_t head_len;

	req->responded = true;
	if (c == NULL) {
		request_free(req);
		return;
	}
	body_unfinished(req);
	framing = xasprintf("Content-Length: %zu\r\n", len);
	head = response_head(req, status, content_type, extra_headers, framing);
	head_len = strlen(head);
	/* HEAD answers carry the headers of the GET, without its body. */
	if (strcmp(req->method, "HEAD") == 0)
		len = 0;
	out = xrealloc(head, head_len + len);
	if (len > 0)
		memcpy(out + head_len, body, len);
	conn_write(c, out, head_len + len, !c->keep_alive || c->peer_eof);
	request_done(req);
}

/* The bytes that came with the upgrade request, after its head. */
static void raw_leftover(uv_timer_t *t)
{
	struct http_conn *c = t->data;
	size_t n = c->in_len;

	c->in_len = 0;
	if (n > 0 && !c->closing && c->raw != NULL && !c->raw->closed)
		c->raw->ops.data(c->raw->arg, c->in, n);
}

struct berth_http_raw *berth_http_upgrade(struct berth_http_request *req, const char *extra_headers,
                                          const struct berth_http_raw_ops *ops, void *arg)
{
	struct http_conn *c = req->conn;
	struct berth_http_raw *r;
	char *head;

	req->responded = true;
	if (c == NULL) {
		request_free(req);
		return NULL;
	}
	head = xasprintf("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n%s\r\n",
	                 extra_headers != NULL ? extra_headers : "");
	r = xcalloc(1, sizeof(*r));
	r->conn = c;
	r->ops = *ops;
	r->arg = arg;
	c->raw = r;
	c->keep_alive = false;
	c->active = NULL;
	request_free(req);
	conn_write(c, head, strlen(head), false);
	/* No more timeouts: the new protocol has its own. */
	uv_timer_stop(&c->timer);
	if (!c->closing) {
		uv_timer_start(&c->timer, raw_leftover, 0, 0);
		uv_read_start(&c->h.stream, on_alloc, on_read);
	}
	return c->closing ? NULL : r;
}

int berth_http_raw_write(struct berth_http_raw *r, const void *data, size_t len)
{
	struct http_conn *c = r->conn;
	char *copy;

	if (c->closing)
		return -ECONNRESET;
	copy = xmalloc(len > 0 ? len : 1);
	memcpy(copy, data, len);
	if (conn_write(c, copy, len, false) < 0)
		return -ECONNRESET;
	return c->h.stream.write_queue_size > c->server->opt.stream_high_water ? 1 : 0;
}

size_t berth_http_raw_queued(const struct berth_http_raw *r)
{
	return r->conn->closing ? 0 : r->conn->h.stream.write_queue_size;
}

void berth_http_raw_pause(struct berth_http_raw *r, bool paused)
{
	struct http_conn *c = r->conn;

	if (c->closing)
		return;
	if (paused)
		uv_read_stop(&c->h.stream);
	else
		uv_read_start(&c->h.stream, on_alloc, on_read);
}

void berth_http_raw_close(struct berth_http_raw *r)
{
	struct http_conn *c = r->conn;

	r->closed = true;
	if (!c->closing)
		conn_write(c, xstrdup(""), 0, true);
}

void berth_http_respond_json(struct berth_http_request *req, int status, json_t *body)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	size_t len;

	if (text == NULL) {
		/* A body jansson could not build or write: a bug of ours, not a reason to crash. */
		static const char broken[] = "{\"error\":{\"code\":\"internal\",\"message\":"
		                             "\"the answer could not be encoded\"}}\n";
		json_decref(body);
		berth_http_respond(req, 500, "application/json", NULL, broken, sizeof(broken) - 1);
		return;
	}
	len = strlen(text);

	text = xrealloc(text, len + 2);
	text[len++] = '\n';
	text[len] = '\0';
	berth_http_respond(req, status, "application/json", NULL, text, len);
	free(text);
	json_decref(body);
}

void berth_http_respond_error(struct berth_http_request *req, int status, const char *code,
                              const char *fmt, ...)
{
	char message[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	/* Messages quote requests (a path with %96 in it) and may be cut mid-character. */
	berth_utf8_sanitize(message);
	berth_http_respond_json(
	        req, status,
	        json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
}

void berth_http_stream_begin(struct berth_http_request *req, int status, const char *content_type,
                             const char *extra_headers)
{
	char *head;

	req->streaming = true;
	if (req->conn == NULL)
		return;
	head = response_head(req, status, content_type, extra_headers,
	                     "Transfer-Encoding: chunked\r\n");
	conn_write(req->conn, head, strlen(head), false);
}

void berth_http_stream_begin_sized(struct berth_http_request *req, int status,
                                   const char *content_type, const char *extra_headers,
                                   uint64_t length)
{
	cleanup_free char *framing = NULL;
	char *head;

	req->streaming = true;
	req->stream_sized = true;
	if (req->conn == NULL)
		return;
	framing = xasprintf("Content-Length: %" PRIu64 "\r\n", length);
	head = response_head(req, status, content_type, extra_headers, framing);
	conn_write(req->conn, head, strlen(head), false);
}

void berth_http_respond_no_body(struct berth_http_request *req, int status,
                                const char *extra_headers)
{
	struct http_conn *c = req->conn;
	char *head;

	req->responded = true;
	if (c == NULL) {
		request_free(req);
		return;
	}
	body_unfinished(req);
	head = response_head(req, status, NULL, extra_headers, "");
	conn_write(c, head, strlen(head), !c->keep_alive || c->peer_eof);
	request_done(req);
}

int berth_http_stream_write(struct berth_http_request *req, const void *data, size_t len)
{
	struct http_conn *c = req->conn;
	char *chunk;
	int n;

	if (c == NULL || c->closing)
		return -ECONNRESET;
	if (len == 0)
		return 0;
	if (req->stream_sized) {
		char *copy = xmalloc(len);
		memcpy(copy, data, len);
		if (conn_write(c, copy, len, false) < 0)
			return -ECONNRESET;
		return c->h.stream.write_queue_size > c->server->opt.stream_high_water ? 1 : 0;
	}
	chunk = xmalloc(len + 32);
	n = snprintf(chunk, 32, "%zx\r\n", len);
	memcpy(chunk + n, data, len);
	memcpy(chunk + n + len, "\r\n", 2);
	if (conn_write(c, chunk, (size_t)n + len + 2, false) < 0)
		return -ECONNRESET;
	return c->h.stream.write_queue_size > c->server->opt.stream_high_water ? 1 : 0;
}

bool berth_http_stream_congested(const struct berth_http_request *req)
{
	const struct http_conn *c = req->conn;

	return c != NULL && !c->closing &&
	       c->h.stream.write_queue_size > c->server->opt.stream_high_water / 2;
}

void berth_http_stream_end(struct berth_http_request *req)
{
	struct http_conn *c = req->conn;

	req->stream_ended = true;
	body_unfinished(req);
	if (c != NULL && req->stream_sized) {
		/* Nothing to add; but a connection that ends with the answer still does. */
		if (!c->keep_alive || c->peer_eof)
			conn_write(c, xstrdup(""), 0, true);
	} else if (c != NULL) {
		static const char last[] = "0\r\n\r\n";
		conn_write(c, xstrdup(last), sizeof(last) - 1, !c->keep_alive || c->peer_eof);
	}
	request_done(req);
}

void berth_http_stream_abort(struct berth_http_request *req)
{
	struct http_conn *c = req->conn;

	req->stream_ended = true;
	if (c != NULL) {
		c->keep_alive = false;
		c->stop_parsing = true;
		/* Nothing more: the close comes after what is queued, without the last chunk. */
		conn_write(c, xstrdup(""), 0, true);
	}
	request_done(req);
}

void berth_http_body_read(struct berth_http_request *req, const struct berth_http_body_ops *ops,
                          void *arg)
{
	struct http_conn *c = req->conn;

	req->body_ops = ops;
	req->body_arg = arg;
	if (c != NULL && !c->closing && body_flowing(req))
		uv_timer_start(&c->timer, on_body_resume, 0, 0);
}

void berth_http_body_pause(struct berth_http_request *req, bool paused)
{
	struct http_conn *c = req->conn;

	req->body_paused = paused;
	if (c == NULL || c->closing || !req->body_stream || req->body_complete || req->body_failed)
		return;
	/* The reader's pace is no timeout of the client's. */
	if (paused)
		uv_timer_stop(&c->timer);
	else if (body_flowing(req))
		uv_timer_start(&c->timer, on_body_resume, 0, 0);
}

size_t berth_http_stream_queued(const struct berth_http_request *req)
{
	return req->conn != NULL ? req->conn->h.stream.write_queue_size : 0;
}

void berth_http_stream_on_drain(struct berth_http_request *req, size_t low_water,
                                void (*fn)(struct berth_http_request *req, void *arg), void *arg)
{
	req->on_drain = fn;
	req->on_drain_arg = arg;
	req->drain_low_water = low_water;
}

/* ---- listeners ---- */

struct berth_http_server *berth_http_server_new(uv_loop_t *loop,
                                                const struct berth_http_options *options,
                                                berth_http_handler_fn handler, void *data)
{
	struct berth_http_server *s = xcalloc(1, sizeof(*s));

	s->loop = loop;
	s->opt = options != NULL ? *options : default_options;
	s->opt.spool_dir = xstrdup(s->opt.spool_dir != NULL ? s->opt.spool_dir : "/tmp");
	/* Zero fields take the defaults. */
	if (s->opt.max_header_bytes == 0)
		s->opt.max_header_bytes = default_options.max_header_bytes;
	if (s->opt.max_body_bytes == 0)
		s->opt.max_body_bytes = default_options.max_body_bytes;
	if (s->opt.header_timeout_ms == 0)
		s->opt.header_timeout_ms = default_options.header_timeout_ms;
	if (s->opt.idle_timeout_ms == 0)
		s->opt.idle_timeout_ms = default_options.idle_timeout_ms;
	if (s->opt.max_connections == 0)
		s->opt.max_connections = default_options.max_connections;
	if (s->opt.stream_high_water == 0)
		s->opt.stream_high_water = default_options.stream_high_water;
	s->handler = handler;
	s->data = data;
	return s;
}

static struct listener *add_listener(struct berth_http_server *s)
{
	struct listener *l = xcalloc(1, sizeof(*l));

	l->server = s;
	l->next = s->listeners;
	s->listeners = l;
	return l;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	struct berth_http_server *s = l->server;

	free(l->unix_path);
	free(l);
	server_handle_closed(s);
}

/* Remove a listener whose setup failed (its handle was initialised). */
static void drop_listener(struct berth_http_server *s, struct listener *l)
{
	s->listeners = l->next;
	s->open_handles++;
	uv_close(&l->h.handle, on_listener_closed);
}

/* Whether something accepts connections on the unix socket `path`. */
static bool unix_socket_alive(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		return false;
	strcpy(sa.sun_path, path);
	return connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
}

int berth_http_server_listen_unix(struct berth_http_server *s, const char *path, int mode,
                                  berth_error_t *err)
{
	cleanup_free char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	struct listener *l;
	struct stat st;
	int r;

	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return berth_error_set_plain(err, ENAMETOOLONG, "socket path `%s` is too long",
		                             path);
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		r = berth_mkdir_p(dir, 0755, err);
		if (r < 0)
			return r;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return berth_error_set_plain(err, EEXIST, "`%s` exists and is not a socket",
			                             path);
		if (unix_socket_alive(path))
			return berth_error_set_plain(err, EADDRINUSE,
			                             "another server is listening on `%s`", path);
		/* Left by a server that is gone. */
		if (unlink(path) < 0)
			return berth_error_set(err, errno, "remove stale socket `%s`", path);
	}
	l = add_listener(s);
	l->unix_path = xstrdup(path);
	uv_pipe_init(s->loop, &l->h.pipe, 0);
	l->h.handle.data = l;
	r = uv_pipe_bind(&l->h.pipe, path);
	if (r == 0 && chmod(path, (mode_t)mode) < 0)
		r = -errno;
	if (r == 0)
		r = uv_listen(&l->h.stream, 128, on_connection);
	if (r < 0) {
		drop_listener(s, l);
		return berth_error_set(err, -r, "listen on `%s`", path);
	}
	s->open_handles++;
	return 0;
}

int berth_http_server_listen_tcp(struct berth_http_server *s, const char *host, uint16_t port,
                                 berth_error_t *err)
{
	struct sockaddr_storage sa;
	struct listener *l;
	int r;

	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)
		return berth_error_set_plain(err, EINVAL, "`%s` is not an IP address", host);
	l = add_listener(s);
	uv_tcp_init(s->loop, &l->h.tcp);
	l->h.handle.data = l;
	r = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&sa, 0);
	if (r == 0)
		r = uv_listen(&l->h.stream, 511, on_connection);
	if (r < 0) {
		drop_listener(s, l);
		return berth_error_set(err, -r, "listen on %s:%u", host, port);
	}
	if (s->tcp_port == 0) {
		struct sockaddr_storage bound;
		int len = sizeof(bound);
		if (uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&bound, &len) == 0)
			s->tcp_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
	}
	s->open_handles++;
	return 0;
}

uint16_t berth_http_server_tcp_port(const struct berth_http_server *s)
{
	return s->tcp_port;
}

void berth_http_server_close(struct berth_http_server *s, void (*done)(void *arg), void *arg)
{
	s->closing = true;
	s->done = done;
	s->done_arg = arg;
	/* Held while we close everything, so the server outlives the loop below. */
	s->open_handles++;
	for (struct listener *l = s->listeners; l != NULL; l = l->next) {
		if (l->unix_path != NULL)
			unlink(l->unix_path);
		uv_close(&l->h.handle, on_listener_closed);
	}
	s->listeners = NULL;
	for (struct http_conn *c = s->conns; c != NULL; c = c->next)
		conn_close(c);
	server_handle_closed(s);
}

bool berth_http_is_token(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') ||
		      (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL)))
			return false;
	}
	return true;
}

const char *berth_http_reason(int status)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
	        {100, "Continue"},
	        {101, "Switching Protocols"},
	        {200, "OK"},
	        {201, "Created"},
	        {202, "Accepted"},
	        {204, "No Content"},
	        {301, "Moved Permanently"},
	        {302, "Found"},
	        {304, "Not Modified"},
	        {400, "Bad Request"},
	        {401, "Unauthorized"},
	        {403, "Forbidden"},
	        {404, "Not Found"},
	        {405, "Method Not Allowed"},
	        {408, "Request Timeout"},
	        {409, "Conflict"},
	        {411, "Length Required"},
	        {413, "Content Too Large"},
	        {415, "Unsupported Media Type"},
	        {417, "Expectation Failed"},
	        {422, "Unprocessable Content"},
	        {429, "Too Many Requests"},
	        {431, "Request Header Fields Too Large"},
	        {500, "Internal Server Error"},
	        {501, "Not Implemented"},
	        {502, "Bad Gateway"},
	        {503, "Service Unavailable"},
	        {504, "Gateway Timeout"},
	        {505, "HTTP Version Not Supported"},
	};
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}
