/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the daemon half of the proxy shares with itself: the write path, the
 * exchange (one request on its way to an instance and its response on the
 * way back) and the upstream connections with their keep-alive pools.
 */
#ifndef BERTH_PROXY_INTERNAL_H
#define BERTH_PROXY_INTERNAL_H

#include <http_parser.h>
#include <uv.h>

#include "daemon/daemon.h"
#include "daemon/instances.h"
#include "proxy/proxy.h"

/* Bytes read per read call (client and upstream). */
#define PX_READ_SIZE (64 * 1024)
/* A side stops reading while the other side has more than this queued. */
#define PX_HIGH_WATER (256 * 1024)
#define PX_LOW_WATER  (64 * 1024)
#define PX_IOV        64
#define PX_POOLS      256

/*
 * The write path of one stream: slices gathered while a read is processed
 * (heads, body bytes pointing into the read buffer, chunk framing) and
 * written with one writev when it is done. Only what the socket did not
 * take at once is copied, into a write request of its own, and then the
 * other side stops reading until it drains: bytes are copied only under
 * backpressure, and at most a read's worth beyond the high-water mark.
 */
struct px_out {
	uv_stream_t *stream;
	uv_write_cb written;
	uv_buf_t iov[PX_IOV];
	unsigned n;
	char frames[PX_IOV][24];
	unsigned n_frames;
	int error; /* a write failed: the stream is dead */
};

struct px_wreq {
	uv_write_t req;
	size_t len;
	char data[];
};

void px_out_init(struct px_out *o, uv_stream_t *stream, uv_write_cb written);
void px_out_add(struct px_out *o, const void *p, size_t n);
/* A body piece in chunked coding (size line, data, CRLF). */
void px_out_chunk(struct px_out *o, const void *p, size_t n);
int px_out_flush(struct px_out *o);
/* Free a write request in its callback. */
void px_wreq_done(uv_write_t *w);

struct px_exchange;

/*
 * Where an exchange's response goes: a client connection of the data plane,
 * or an API request (containerFetch). Called on the loop, never from inside
 * the client's parser.
 */
struct px_sink_ops {
	/* The final response head (or a 101). */
	void (*head)(struct px_exchange *x, const http_parser *p, const struct berth_proxy_head *h);
	void (*body)(struct px_exchange *x, const char *at, size_t n);
	/* The response is complete (or, tunnelling, the instance closed its side). */
	void (*done)(struct px_exchange *x);
	/* No response will come and none was begun: answer with an error. */
	void (*fail)(struct px_exchange *x, unsigned status, const char *code, const char *msg);
	/* The response broke off after its head: cut the client. */
	void (*cut)(struct px_exchange *x);
	/* The end of a batch of body calls: write them. */
	void (*flush)(struct px_exchange *x);
	/* The sink's write queue is above the high-water mark. */
	bool (*blocked)(struct px_exchange *x);
	/* The upstream's write queue drained: the client may be read again. */
	void (*drained)(struct px_exchange *x);
};

struct px_server;
struct px_up;

struct px_exchange {
	struct px_server *s;
	const struct px_sink_ops *ops;
	void *owner;
	struct berthd_lease *lease;
	char label[BERTH_PROXY_NAME_MAX + 96]; /* "Class/name" for messages */
	uint16_t port;
	struct px_up *up;
	const struct berth_proxy_buf *req_head; /* the head to send (kept by the owner) */
	bool head_method;                       /* HEAD: the response has no body */
	bool websocket;
	bool retryable;      /* nothing but the head to send: may go again on a fresh conn */
	bool request_sent;   /* head and whole body written to the upstream */
	bool response_begun; /* a byte of the response went to the sink */
	bool tunnel;         /* after a 101 */
	bool up_eof;         /* tunnel: the instance closed its side */
};

struct px_pool;

struct px_server {
	struct berthd *d;
	struct berth_config_proxy lim;
	uv_tcp_t listener;
	bool listening;
	bool draining;
	struct px_client *clients;
	size_t n_clients;
	size_t waiting; /* requests waiting for an instance */
	struct px_pool *pools[PX_POOLS];
	struct px_up *ups; /* every upstream connection, for shutdown */
	struct px_client *free_clients;
	size_t n_free_clients;
	unsigned rnd;
};

/* Begin: a lease is held; connect (or reuse) and send the head. */
void px_exchange_begin(struct px_exchange *x);
/* Request body bytes, plain or in chunked coding; then the end of the body. */
void px_exchange_body(struct px_exchange *x, const char *at, size_t n, bool chunked);
void px_exchange_body_end(struct px_exchange *x, bool chunked);
/* Write what the body calls gathered. */
void px_exchange_flush(struct px_exchange *x);
/* The upstream's write queue is above the high-water mark. */
bool px_exchange_blocked(const struct px_exchange *x);
/* The sink drained: the upstream may read again. */
void px_exchange_resume(struct px_exchange *x);
/* Tunnel: the client closed its side. */
void px_exchange_shutdown(struct px_exchange *x);
/*
 * The exchange is over (done, failed or the client left): the upstream
 * connection goes back to its pool when it can be reused, else is closed;
 * the lease is released.
 */
void px_exchange_end(struct px_exchange *x);

void px_pools_close(struct px_server *s);

#endif
