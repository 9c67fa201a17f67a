/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The data plane: an HTTP/1.1 and WebSocket reverse proxy from `berth.listen`
 * to the instances' ports, routed by `berth.routes[]`, starting instances on
 * demand (docs/architecture.md, "The data plane").
 *
 * Two halves. The pure one — request heads kept as slices of one buffer,
 * header rewriting, chunk framing, route matching and instance picking —
 * has no daemon dependencies and is in libberth (unit-tested by
 * test_proxy). The daemon half (berthd_proxy_*) runs on berthd's loop.
 */
#ifndef BERTH_PROXY_H
#define BERTH_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth/error.h"
#include "config/config.h"

/* ---- a bounded byte buffer ------------------------------------------------- */

struct berth_proxy_buf {
	char *data;
	size_t len, cap;
	size_t max; /* appends beyond it fail */
};

/* Append; -E2BIG (nothing appended) when it would pass `max`. */
int berth_proxy_buf_add(struct berth_proxy_buf *b, const void *p, size_t n);
int berth_proxy_buf_str(struct berth_proxy_buf *b, const char *s);
void berth_proxy_buf_free(struct berth_proxy_buf *b);

/* ---- a message head as http-parser hands it over --------------------------- */

/* A header: offsets into the head's buffer. */
struct berth_proxy_field {
	uint32_t name, name_len;
	uint32_t value, value_len;
};

/*
 * The request target (or a response's reason phrase) and the header fields
 * of one message, copied into one buffer as the parser's callbacks deliver
 * them (a field may arrive in pieces). Reused from message to message.
 */
struct berth_proxy_head {
	struct berth_proxy_buf buf;
	struct berth_proxy_field *fields;
	size_t n_fields, cap_fields, max_fields;
	uint32_t target, target_len; /* request target / reason phrase */
	bool in_value;
};

void berth_proxy_head_init(struct berth_proxy_head *h, size_t max_bytes, size_t max_fields);
void berth_proxy_head_reset(struct berth_proxy_head *h);
void berth_proxy_head_free(struct berth_proxy_head *h);
/* Parser callbacks' data; -E2BIG past the byte or field bound. */
int berth_proxy_head_target(struct berth_proxy_head *h, const char *at, size_t n);
int berth_proxy_head_name(struct berth_proxy_head *h, const char *at, size_t n);
int berth_proxy_head_value(struct berth_proxy_head *h, const char *at, size_t n);
/* The first value of header `name` (case-insensitive) and its length, or NULL. */
const char *berth_proxy_head_get(const struct berth_proxy_head *h, const char *name, size_t *len);
/* How many fields are named `name`. */
size_t berth_proxy_head_count(const struct berth_proxy_head *h, const char *name);

static inline const char *berth_proxy_field_name(const struct berth_proxy_head *h, size_t i)
{
	return h->buf.data + h->fields[i].name;
}
static inline const char *berth_proxy_field_value(const struct berth_proxy_head *h, size_t i)
{
	return h->buf.data + h->fields[i].value;
}

/*
 * A response head from an instance, made fit to pass on (instances are not
 * trusted): whitespace between a field name and its colon, which
 * http-parser lets into the name, is removed (RFC 9112 5.1 asks that of a
 * proxy), a field whose name is still no token is dropped, and a control
 * character in a value (http-parser lets any byte, NUL included, start
 * one) becomes a space, as RFC 9110 5.5 allows. Without
 * this, "Transfer-Encoding : chunked" would pass the hop-by-hop filter
 * (it is not named "transfer-encoding") and reach the client beside the
 * proxy's own framing. Returns how many fields were dropped.
 */
size_t berth_proxy_head_clean(struct berth_proxy_head *h);

/*
 * Whether the raw bytes of a message head are free of what parsers
 * disagree on: obs-fold (a line starting with SP or HTAB), a bare CR or a
 * bare LF, and of other control characters but HTAB. `state` carries over
 * between calls (start at 0); scanning stops at the blank line that ends
 * the head, and *end is set to the offset after it (or `n` when the head
 * goes on). Returns 1 when the head ended, 0 when it goes on, or -EPROTO
 * with a reason.
 */
struct berth_proxy_scan {
	unsigned state;
	size_t line_len; /* bytes on the current line */
	bool started;    /* past leading empty lines */
};
int berth_proxy_scan_head(struct berth_proxy_scan *s, const char *p, size_t n, size_t *end,
                          const char **why);

/* ---- rewriting ------------------------------------------------------------- */

enum berth_proxy_framing {
	BERTH_PROXY_BODY_NONE,    /* no body */
	BERTH_PROXY_BODY_LENGTH,  /* Content-Length */
	BERTH_PROXY_BODY_CHUNKED, /* chunked coding (re-framed by the proxy) */
	BERTH_PROXY_BODY_CLOSE,   /* until the connection closes (responses only) */
};

/* What the request to the instance says beyond the client's headers. */
struct berth_proxy_request {
	const char *method;
	const char *target; /* origin-form, as sent on */
	size_t target_len;
	enum berth_proxy_framing framing;
	uint64_t length;       /* LENGTH */
	bool websocket;        /* keep Upgrade: websocket and Connection: upgrade */
	const char *client_ip; /* appended to X-Forwarded-For */
	const char *proto;     /* X-Forwarded-Proto */
};

/*
 * The request head for the instance, appended to `out`: the client's headers
 * without hop-by-hop ones (Connection and those it names, Keep-Alive, TE,
 * Trailer, Transfer-Encoding, Upgrade, Proxy-*), without Content-Length and
 * Expect (the proxy frames the body and answers 100-continue itself), with
 * X-Forwarded-For appended to and X-Forwarded-Proto/-Host set. HTTP/1.1,
 * keep-alive. -E2BIG when `out` is full.
 */
int berth_proxy_build_request(const struct berth_proxy_head *h, const struct berth_proxy_request *r,
                              struct berth_proxy_buf *out);

struct berth_proxy_response {
	unsigned status;
	const char *reason; /* NULL: the standard one */
	size_t reason_len;
	enum berth_proxy_framing framing; /* towards the client */
	uint64_t length;                  /* LENGTH */
	bool keep_alive;                  /* the client connection stays open */
	bool http10;                      /* the client speaks HTTP/1.0 */
	bool upgrade;                     /* a 101 for a WebSocket */
};

/*
 * The fields of an instance's response head that go on to a client, as
 * "Name: value\r\n" lines appended to `out`: without hop-by-hop ones
 * (Connection and what it names, Keep-Alive, TE, Trailer,
 * Transfer-Encoding, Upgrade unless `keep_upgrade`, Proxy-*) and without
 * Content-Length unless `keep_length`. -E2BIG when `out` is full.
 */
int berth_proxy_end_to_end_fields(const struct berth_proxy_head *h, bool keep_length,
                                  bool keep_upgrade, struct berth_proxy_buf *out);

/* The response head for the client, from the instance's head (hop-by-hop removed). */
int berth_proxy_build_response(const struct berth_proxy_head *h,
                               const struct berth_proxy_response *r, struct berth_proxy_buf *out);

/* "HEX\r\n" for a chunk of `n` bytes into `out` (at least 20 bytes); its length. */
size_t berth_proxy_chunk_line(char *out, size_t n);

/*
 * A response the proxy makes itself (errors): status line, text body,
 * `extra` header lines ("Name: value\r\n") or NULL, Connection: close.
 */
int berth_proxy_build_error(unsigned status, const char *code, const char *extra,
                            const char *message, struct berth_proxy_buf *out);

/* ---- routes ---------------------------------------------------------------- */

/* Whether `host` (lowercase, without port) matches a route's `host` ("*.x" included). */
bool berth_proxy_host_match(const char *pattern, const char *host, size_t host_len);

/*
 * The first route matching `host` (as the Host header has it: any case, port
 * allowed; NULL if absent) and `path` (raw, without the query), or NULL.
 */
const struct berth_config_route *berth_proxy_route_find(const struct berth_config_route *routes,
                                                        size_t n, const char *host, size_t host_len,
                                                        const char *path, size_t path_len);

/* The longest instance name taken from a request. */
#define BERTH_PROXY_NAME_MAX 255

/*
 * The instance name a route picks for a request, into `name` (at least
 * BERTH_PROXY_NAME_MAX + 1 bytes). RANDOM picks with `rnd` (any value; the
 * caller's random number), LEAST_LOADED returns -EAGAIN (the daemon picks
 * among the names berth_proxy_random_name() gives). Returns 0, or -ENOENT
 * with `why` saying what the request lacks (the path segment, the header,
 * the host label) or -EINVAL when the value is no name (too long, not UTF-8, control
 * characters).
 */
int berth_proxy_pick(const struct berth_config_route *r, const struct berth_proxy_head *h,
                     const char *host, size_t host_len, const char *path, size_t path_len,
                     unsigned rnd, char *name, const char **why);

/* "instance-I", as getRandom() names its instances. */
void berth_proxy_random_name(unsigned i, char *name, size_t size);

/* ---- the daemon half (berthd only) ------------------------------------------ */

struct berthd;
struct berth_http_request;
struct berth_http_body_policy;

/* Listen on berth.listen (nothing to do when unset). */
int berthd_proxy_start(struct berthd *d, berth_error_t *err);
/* Stop accepting; idle connections close, in-flight requests finish. */
void berthd_proxy_drain(struct berthd *d);
/* Close everything that is left (at the end of shutdown). */
void berthd_proxy_close(struct berthd *d);

/*
 * containerFetch over the control API: `req` to `path_and_query` (origin
 * form) of CLASS/NAME, at the port of `cf-container-target-port` or the
 * class's defaultPort. Answers `req`, or takes its connection over for a
 * WebSocket the instance accepts.
 */
void berthd_proxy_fetch(struct berthd *d, struct berth_http_request *req,
                        const struct berth_config_class *cls, const char *name,
                        const char *path_and_query);
/*
 * The body policy of a containerFetch request (from a client that may
 * call it): streamed to the instance, at most berth.proxy.max_body_size.
 */
void berthd_proxy_fetch_body_policy(struct berthd *d, struct berth_http_body_policy *policy);

#endif
