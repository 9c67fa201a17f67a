/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small HTTP/1.1 server on libuv and http-parser, for berthd's control
 * API: unix-socket and TCP listeners, bounded header blocks and bodies,
 * keep-alive, `Expect: 100-continue`, timeouts, a connection cap, request
 * bodies whole, spooled or streamed to the handler, whole or streamed
 * (chunked) responses, upgrades.
 *
 * One request per connection is handled at a time, so pipelined requests
 * are answered in order. A handler may answer later (after a container started, say): the
 * request stays valid until it is answered, even if its client went away
 * meanwhile (berth_http_request_gone() then says so, and the answer is
 * dropped).
 */
#ifndef BERTH_HTTP_H
#define BERTH_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "berth/error.h"

struct berth_http_server;

struct berth_http_header {
	char *name; /* lowercase */
	char *value;
};

struct berth_http_request {
	const char *method; /* "GET", "POST", ... */
	char *target;       /* the request target as sent */
	char *path;         /* its path, percent-decoded; never contains NUL */
	char *query;        /* the raw query string, or NULL */
	struct berth_http_header *headers;
	size_t n_headers;
	char *body; /* NUL-terminated for convenience; body_len bytes */
	size_t body_len;
	int body_fd; /* a spooled body (see berth_http_body_policy): body_len bytes; else -1 */
	/*
	 * A streamed body (see berth_http_body_policy): it follows the request,
	 * read with berth_http_body_read(); body_len counts what has come.
	 * Chunked, or `body_length` bytes (Content-Length).
	 */
	bool body_stream;
	bool body_chunked;
	uint64_t body_length;
	bool upgrade;        /* Upgrade with Connection: upgrade (the handler may take it over) */
	unsigned http_minor; /* HTTP/1.x */
	const char *peer;    /* "unix" or "ADDR:PORT" */
	void *data;          /* the handler's */
	/* private */
	struct http_conn *conn;
	bool responded, streaming, stream_ended;
	bool stream_sized; /* Content-Length given: the body goes unframed */
	void (*on_gone)(struct berth_http_request *req, void *arg);
	void *on_gone_arg;
	void (*on_drain)(struct berth_http_request *req, void *arg);
	void *on_drain_arg;
	size_t drain_low_water;
	size_t body_max;
	const struct berth_http_body_ops *body_ops;
	void *body_arg;
	bool body_paused, body_complete, body_failed;
};

/*
 * What a request's body may be, decided once its head has arrived: at most
 * `max_bytes` (more gets 413), and with `spool` written to an unlinked
 * temporary file in the server's spool_dir as it arrives, instead of memory
 * (req->body_fd; req->body stays ""), for bodies too large to hold. With
 * `stream` a request that has a body (and is no upgrade) goes to the handler
 * as soon as its head has arrived, and the handler reads the body as it
 * comes (berth_http_body_read()), holding none of it.
 */
struct berth_http_body_policy {
	size_t max_bytes;
	bool spool;
	bool stream;
};
typedef void (*berth_http_body_policy_fn)(const struct berth_http_request *req, void *data,
                                          struct berth_http_body_policy *policy);

typedef void (*berth_http_handler_fn)(struct berth_http_request *req, void *data);

struct berth_http_options {
	size_t max_header_bytes;    /* default 64 KiB; more gets 431 */
	size_t max_body_bytes;      /* default 1 MiB; more gets 413 */
	uint64_t header_timeout_ms; /* default 10 s from connect or last answer; then 408 */
	uint64_t idle_timeout_ms;   /* default 60 s: idle keep-alive, body stalled */
	size_t max_connections;     /* default 1024; more are closed at once */
	size_t stream_high_water;   /* default 1 MiB: stream_write() reports backpressure */
	/* Per request (NULL: max_body_bytes, in memory); called with the handler's data. */
	berth_http_body_policy_fn body_policy;
	const char *spool_dir; /* where spooled bodies go (copied); default /tmp */
};

/* A server on `loop`, calling `handler` for each complete request. NULL options: defaults. */
struct berth_http_server *berth_http_server_new(uv_loop_t *loop,
                                                const struct berth_http_options *options,
                                                berth_http_handler_fn handler, void *data);

/*
 * Listen on a unix socket at `path` with file mode `mode`, creating its
 * directory. A stale socket (nobody accepts on it) is replaced; a live one
 * is an error ("another server is listening on `path`").
 */
int berth_http_server_listen_unix(struct berth_http_server *s, const char *path, int mode,
                                  berth_error_t *err);

/* Listen on HOST:PORT (numeric IPv4 or IPv6, or "localhost"; PORT 0: any). */
int berth_http_server_listen_tcp(struct berth_http_server *s, const char *host, uint16_t port,
                                 berth_error_t *err);

/* The port of the first TCP listener (useful with port 0), or 0. */
uint16_t berth_http_server_tcp_port(const struct berth_http_server *s);

/*
 * Stop listening and close every connection; requests still waiting for an
 * answer become "gone". `done` runs once every handle is closed; the server
 * is freed then.
 */
void berth_http_server_close(struct berth_http_server *s, void (*done)(void *arg), void *arg);

/* The value of header `name` (case-insensitive), or NULL. Repeated headers: the first. */
const char *berth_http_header(const struct berth_http_request *req, const char *name);

/* The value of query parameter `name` (not decoded beyond '+'/%XX), malloc'd, or NULL. */
char *berth_http_query_param(const struct berth_http_request *req, const char *name);

/* The client went away before the request was answered. */
bool berth_http_request_gone(const struct berth_http_request *req);

/* Called (once) if the client goes away while the request awaits its answer or streams. */
void berth_http_request_on_gone(struct berth_http_request *req,
                                void (*fn)(struct berth_http_request *req, void *arg), void *arg);

/*
 * Answer a request, exactly once; the request is freed afterwards (do not use
 * it again). `extra_headers` are complete "Name: value\r\n" lines, or NULL.
 */
void berth_http_respond(struct berth_http_request *req, int status, const char *content_type,
                        const char *extra_headers, const void *body, size_t len);
/* The same with a JSON body (stolen). */
void berth_http_respond_json(struct berth_http_request *req, int status, json_t *body);
/*
 * An answer that has no body (to HEAD, or 204, 304), with the headers given
 * and no Content-Length of its own: a proxy passes on the length its
 * origin stated for a HEAD (what a GET would have had). Frees the request.
 */
void berth_http_respond_no_body(struct berth_http_request *req, int status,
                                const char *extra_headers);
/* {"error": {"code": CODE, "message": MESSAGE}} */
void berth_http_respond_error(struct berth_http_request *req, int status, const char *code,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * A streamed answer: status and headers now, then the body in chunks
 * (chunked transfer coding), ended by berth_http_stream_end(), which frees
 * the request. stream_write() returns 0, 1 when the client reads slower than
 * we write (the queue is above the high-water mark: wait before writing
 * more), or -ECONNRESET when the client is gone (end the stream then).
 */
void berth_http_stream_begin(struct berth_http_request *req, int status, const char *content_type,
                             const char *extra_headers);
/*
 * The same for a body whose length is known (a proxy passing on a response
 * that had a Content-Length): the head says `Content-Length: length` and the
 * body goes out as written, unframed. Exactly `length` bytes must be written
 * before stream_end(); a body that falls short ends with stream_abort(),
 * whose close tells the client it is incomplete.
 */
void berth_http_stream_begin_sized(struct berth_http_request *req, int status,
                                   const char *content_type, const char *extra_headers,
                                   uint64_t length);
int berth_http_stream_write(struct berth_http_request *req, const void *data, size_t len);
void berth_http_stream_end(struct berth_http_request *req);
/*
 * End a streamed answer that broke off: no last chunk, and the connection
 * closes once what is queued is written, so that the client sees the answer
 * cut short rather than whole. Frees the request.
 */
void berth_http_stream_abort(struct berth_http_request *req);
/*
 * Whether a stream's queue is still above half the high-water mark (after
 * stream_write() said 1): a producer polls this to know when to go on.
 */
bool berth_http_stream_congested(const struct berth_http_request *req);

/* Bytes of the answer queued for the client, not yet taken by the kernel (0 when gone). */
size_t berth_http_stream_queued(const struct berth_http_request *req);

/*
 * Call `fn` once, when a write completes and leaves `low_water` bytes or
 * fewer queued: for a writer that paused because the queue was long. Only
 * while the queue is above `low_water` (otherwise no write may complete to
 * call it). If the client leaves first, on_gone is called instead.
 */
void berth_http_stream_on_drain(struct berth_http_request *req, size_t low_water,
                                void (*fn)(struct berth_http_request *req, void *arg), void *arg);

/*
 * The reader of a streamed body. `data` gets each piece as it is parsed
 * (valid during the call only; chunked coding removed). `end` is called
 * once: 0 when the body is whole, -E2BIG when it passed the policy's
 * max_bytes, -EPROTO when it is malformed (bad chunk framing), -ETIMEDOUT
 * when the client sent nothing for idle_timeout_ms while the body was read
 * (not while paused); on an error the request should be answered (413, 400,
 * 408) or its stream aborted. If the client leaves first, on_gone is called
 * instead.
 */
struct berth_http_body_ops {
	void (*data)(struct berth_http_request *req, void *arg, const char *at, size_t len);
	void (*end)(struct berth_http_request *req, void *arg, int status);
};

/*
 * Start reading a streamed body (req->body_stream) into `ops`, from the
 * loop's next turn. Until then, and while paused, the client's bytes wait
 * in a bounded buffer and then in the socket: that is the backpressure. A
 * request answered (or its stream ended) before its body is whole leaves
 * the rest unread, and its connection closes after the answer.
 */
void berth_http_body_read(struct berth_http_request *req, const struct berth_http_body_ops *ops,
                          void *arg);
/* Stop or go on passing the body (a reader whose consumer is behind). */
void berth_http_body_pause(struct berth_http_request *req, bool paused);

/*
 * An upgraded connection (101 Switching Protocols): raw bytes both ways,
 * for a protocol of the handler's own (a WebSocket). Owned by the server:
 * valid until on_close has been called, or berth_http_raw_close().
 */
struct berth_http_raw;

struct berth_http_raw_ops {
	void (*data)(void *arg, const char *data, size_t len); /* what the client sent */
	void (*drain)(void *arg); /* the write queue has emptied; may be NULL */
	void (*close)(void *arg); /* the connection ended (not after raw_close) */
};

/*
 * Answer `req` (a request with `Upgrade:`) with 101 and `extra_headers`
 * (complete lines, e.g. "Upgrade: websocket\r\nSec-WebSocket-Accept:
 * ...\r\n"), and take its connection over; the request is freed. Bytes the
 * client sent after its head come first, on the loop's next turn. NULL when
 * the client has already gone (the request is freed then too).
 */
struct berth_http_raw *berth_http_upgrade(struct berth_http_request *req, const char *extra_headers,
                                          const struct berth_http_raw_ops *ops, void *arg);
/* Queue bytes; as berth_http_stream_write(): 0, 1 above the high-water mark, or -ECONNRESET. */
int berth_http_raw_write(struct berth_http_raw *r, const void *data, size_t len);
size_t berth_http_raw_queued(const struct berth_http_raw *r);
/* Stop or resume reading (a consumer that is behind). */
void berth_http_raw_pause(struct berth_http_raw *r, bool paused);
/* Close once what is queued is written; no callback follows. */
void berth_http_raw_close(struct berth_http_raw *r);

/* The standard reason phrase of `status` ("Not Found"), or "Unknown". */
const char *berth_http_reason(int status);

/* Whether a field name is a token (RFC 9110 5.6.2). */
bool berth_http_is_token(const char *s, size_t len);
/* Whether a byte may not be in a field value: a control character but HTAB (RFC 9110 5.5). */
static inline bool berth_http_is_ctl(char c)
{
	return ((unsigned char)c < 0x20 && c != '\t') || c == 0x7f;
}

#endif
