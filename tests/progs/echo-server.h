/*
 * echo-server: HTTP/1.1 and WebSocket test peer for the reverse-proxy tests.
 *
 * echo-server.c owns the event loop, sockets, buffers and timers;
 * echo-http.c parses requests and produces responses; echo-ws.c speaks
 * WebSocket after the upgrade. A connection is only ever closed by the loop,
 * after the protocol code has returned (a handler returns -1 to ask for it).
 */
#ifndef BERTH_TESTS_ECHO_SERVER_H
#define BERTH_TESTS_ECHO_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nettle/sha2.h>

/* The whole request head (request line, headers, blank line) must fit. */
#define ECHO_HEAD_MAX 65536
/* Output above this stops reading and generating until the peer catches up. */
#define ECHO_OUT_HIGH    (256 * 1024)
#define ECHO_MAX_HEADERS 256

/* Live bytes are data[off, len); writers append at len. */
struct echo_buf {
	char *data;
	size_t off;
	size_t len;
	size_t cap;
};

enum echo_state {
	ECHO_READ_HEAD, /* waiting for (the rest of) a request head */
	ECHO_READ_BODY, /* consuming a request body */
	ECHO_RESPOND,   /* generating a response, or waiting on its timer */
	ECHO_WS,        /* WebSocket frames after a 101 */
	ECHO_DRAIN,     /* flush the output, then close */
	ECHO_LINGER,    /* write side shut: discard input until EOF or timeout */
};

enum echo_route {
	ECHO_ROUTE_ECHO,
	ECHO_ROUTE_ECHO_BODY,
	ECHO_ROUTE_CHUNKED,
	ECHO_ROUTE_BYTES,
	ECHO_ROUTE_SLOW,
	ECHO_ROUTE_STATUS,
	ECHO_ROUTE_CLOSE,
	ECHO_ROUTE_HALF,
	ECHO_ROUTE_WS,
	ECHO_ROUTE_HEALTH,
};

enum echo_framing {
	ECHO_BODY_NONE,
	ECHO_BODY_LENGTH,
	ECHO_BODY_CHUNKED,
};

/* The request in progress and the response it asked for. */
struct echo_request {
	enum echo_route route;
	enum echo_framing framing;
	bool keep_alive;
	bool head_only; /* HEAD: headers as for GET, no body */
	bool http10;
	bool unframed;      /* HTTP/1.0 /chunked: plain data, end by closing */
	uint64_t remaining; /* body bytes left (length) or in this chunk */
	int chunk_phase;    /* chunked decoder state, see echo-http.c */
	size_t trailer_bytes;
	uint64_t body_length;
	struct sha256_ctx sha;
	struct echo_buf json; /* the echo document up to its "headers" object */

	/* Route parameters from the query string. */
	uint64_t n;
	uint64_t size;
	uint64_t delay_ms;
	unsigned status;
	uint64_t close_after;
	bool has_close_after;

	/* Response generator: bytes left of the body or of the current chunk,
	 * chunks left, and where the byte pattern stands. */
	uint64_t gen_left;
	uint64_t gen_chunks;
	uint64_t gen_offset;
	bool gen_in_chunk;
};

struct echo_ws {
	bool in_payload;
	bool fin;
	uint8_t opcode;
	uint8_t mask[4];
	uint64_t remaining;
	uint64_t pos;
	bool in_message; /* a fragmented data message has started */
	bool close_sent;
	uint8_t ctrl[125];
	size_t ctrl_len;
	uint64_t messages;
	uint64_t close_after;
	bool has_close_after;
};

struct echo_conn {
	int kind; /* ECHO_KIND_CONN; first, to tell connections from listeners */
	int fd;
	uint64_t id;
	uint64_t requests;
	unsigned port;
	char remote[64];
	enum echo_state state;
	struct echo_buf in;
	struct echo_buf out;
	struct echo_request req;
	struct echo_ws ws;
	bool eof;   /* the peer finished sending */
	bool reset; /* close with a TCP reset */
	bool busy;  /* more work is ready without any I/O */
	uint32_t events;
	uint64_t deadline_ms; /* 0: no timer */
	struct echo_conn *timer_prev, *timer_next;
};

/* The host name reported in echo documents. */
extern char echo_hostname[256];

/* Monotonic milliseconds. */
uint64_t echo_now_ms(void);

/* Arms (ms > 0 from now) or disarms (ms == 0) the connection's timer. */
void echo_conn_set_timer(struct echo_conn *c, uint64_t ms);

/* Bytes waiting in a buffer. */
static inline size_t echo_buf_pending(const struct echo_buf *b)
{
	return b->len - b->off;
}

/* Makes room for n more bytes and returns where to write them; the caller
 * then adds n to len. Aborts when out of memory. */
char *echo_buf_reserve(struct echo_buf *b, size_t n);
void echo_buf_append(struct echo_buf *b, const void *data, size_t n);
void echo_buf_printf(struct echo_buf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void echo_buf_consume(struct echo_buf *b, size_t n);
void echo_buf_reset(struct echo_buf *b);
void echo_buf_free(struct echo_buf *b);

/* Advances the HTTP side of a connection with what is buffered. Returns 1
 * if it made progress, 0 if it waits for I/O or a timer, -1 to close. */
int echo_http_advance(struct echo_conn *c);

/* A timer armed by the HTTP side fired. */
void echo_http_timer(struct echo_conn *c);

/* Computes Sec-WebSocket-Accept for key (29 bytes with the NUL). */
void echo_ws_accept(const char *key, size_t key_len, char accept[29]);

/* Starts the WebSocket phase after the 101 has been queued. */
void echo_ws_start(struct echo_conn *c, bool has_close_after, uint64_t close_after);

/* Like echo_http_advance, for the WebSocket phase. */
int echo_ws_advance(struct echo_conn *c);

#endif
