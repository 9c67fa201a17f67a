/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP server with real sockets: the server's loop runs in the test's
 * main thread, a plain blocking client in a second thread; the client only
 * records what it saw, the main thread asserts afterwards.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "http/http.h"

/* ---- a minimal client ---- */

struct response {
	int status;
	char body[65536];
	size_t body_len;
	size_t body_total; /* also what did not fit in body */
	bool complete;
	bool chunked;
	bool head; /* the answer to a HEAD request: no body follows */
	char connection[32];
	char content_length[32];
	char last_field[64];
};

static int on_status_cb(http_parser *p, const char *at, size_t n)
{
	struct response *r = p->data;
	(void)at;
	(void)n;
	r->status = (int)p->status_code;
	return 0;
}

static int on_hfield(http_parser *p, const char *at, size_t n)
{
	struct response *r = p->data;
	snprintf(r->last_field, sizeof(r->last_field), "%.*s", (int)n, at);
	return 0;
}

static int on_hvalue(http_parser *p, const char *at, size_t n)
{
	struct response *r = p->data;
	if (strcasecmp(r->last_field, "connection") == 0)
		snprintf(r->connection, sizeof(r->connection), "%.*s", (int)n, at);
	if (strcasecmp(r->last_field, "content-length") == 0)
		snprintf(r->content_length, sizeof(r->content_length), "%.*s", (int)n, at);
	if (strcasecmp(r->last_field, "transfer-encoding") == 0)
		r->chunked = true;
	return 0;
}

static int on_rheaders(http_parser *p)
{
	struct response *r = p->data;
	return r->head ? 1 : 0; /* 1: http-parser's way to say "no body" */
}

static int on_rbody(http_parser *p, const char *at, size_t n)
{
	struct response *r = p->data;
	r->body_total += n;
	if (r->body_len + n < sizeof(r->body)) {
		memcpy(r->body + r->body_len, at, n);
		r->body_len += n;
		r->body[r->body_len] = '\0';
	}
	return 0;
}

static int on_rdone(http_parser *p)
{
	struct response *r = p->data;
	r->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings response_settings = {
        .on_status = on_status_cb,
        .on_header_field = on_hfield,
        .on_header_value = on_hvalue,
        .on_headers_complete = on_rheaders,
        .on_body = on_rbody,
        .on_message_complete = on_rdone,
};

/* Bytes read but not yet parsed, per connection (one client thread at a time). */
static char pending[131072];
static size_t pending_len;

/*
 * Read one response (a 100 Continue counts as one) from `fd`. Returns 0, or
 * -1 when the connection ended before a whole response.
 */
static int read_response(int fd, struct response *r, bool head)
{
	http_parser p;

	memset(r, 0, sizeof(*r));
	r->head = head;
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = r;
	for (;;) {
		size_t done;
		ssize_t n;

		if (pending_len > 0) {
			done = http_parser_execute(&p, &response_settings, pending, pending_len);
			memmove(pending, pending + done, pending_len - done);
			pending_len -= done;
			if (r->complete)
				return 0;
			if (HTTP_PARSER_ERRNO(&p) != HPE_OK)
				return -1;
		}
		n = read(fd, pending + pending_len, sizeof(pending) - pending_len);
		if (n <= 0) {
			/* EOF ends a body without framing. */
			if (n == 0)
				http_parser_execute(&p, &response_settings, NULL, 0);
			return r->complete ? 0 : -1;
		}
		pending_len += (size_t)n;
	}
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

static bool closed_by_server(int fd)
{
	char b;
	struct timeval tv = {.tv_sec = 3};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return read(fd, &b, 1) == 0 && pending_len == 0;
}

/* ---- the server side ---- */

struct fixture {
	uv_loop_t loop;
	uv_async_t stop;
	struct berth_http_server *server;
	uint16_t port;
	char sock_path[128];
	pthread_t client;
	void (*client_fn)(struct fixture *f);
	/* what the client saw, for the main thread to assert */
	struct response res[8];
	int rc[8];
	bool closed;
	char note[256];
	/* what the server saw */
	int gone_calls;
	int handled;
	struct berth_http_request *held;
	uv_timer_t later;
	struct berth_http_request *later_req;
	size_t queued_before_drain; /* /drain: the queue when the writer paused */
	size_t queued_at_drain;     /* and when on_drain was called */
	size_t drain_written;
	/* /sink: a streamed body, read with a pause after every piece */
	struct berth_http_request *sink;
	uv_timer_t resume;
	size_t sink_bytes, sink_pieces;
	uint32_t sink_sum;
};

static void answer_later(uv_timer_t *t)
{
	struct fixture *f = t->data;
	berth_http_respond(f->later_req, 200, "text/plain", NULL, "later\n", 6);
	f->later_req = NULL;
}

static void on_gone(struct berth_http_request *req, void *arg)
{
	struct fixture *f = arg;
	f->gone_calls++;
	if (f->held == req) {
		f->held = NULL;
		if (req->streaming)
			berth_http_stream_end(req);
		else
			berth_http_respond(req, 200, NULL, NULL, "", 0);
	}
}

#define DRAIN_CHUNK     65536
#define DRAIN_LOW_WATER 65536

static void on_drained(struct berth_http_request *req, void *arg)
{
	struct fixture *f = arg;

	f->queued_at_drain = berth_http_stream_queued(req);
	berth_http_stream_write(req, "end", 3);
	f->drain_written += 3;
	berth_http_stream_end(req);
	f->held = NULL;
}

/* Write until the client's queue is long (it does not read yet), then wait for it to drain. */
static void drain_stream(struct fixture *f, struct berth_http_request *req)
{
	static char block[DRAIN_CHUNK];

	memset(block, 'x', sizeof(block));
	f->held = req;
	berth_http_request_on_gone(req, on_gone, f);
	berth_http_stream_begin(req, 200, "text/plain", NULL);
	for (int i = 0; i < 256 && berth_http_stream_queued(req) <= 4 * DRAIN_LOW_WATER; i++) {
		berth_http_stream_write(req, block, sizeof(block));
		f->drain_written += sizeof(block);
	}
	f->queued_before_drain = berth_http_stream_queued(req);
	berth_http_stream_on_drain(req, DRAIN_LOW_WATER, on_drained, f);
}

/* /upgrade: an echo protocol after the 101; "quit" ends it from our side. */
static struct berth_http_raw *echo_raw;

static void echo_data(void *arg, const char *data, size_t len)
{
	struct fixture *f = arg;
	(void)f;
	if (len >= 4 && memcmp(data + len - 4, "quit", 4) == 0) {
		berth_http_raw_write(echo_raw, "bye", 3);
		berth_http_raw_close(echo_raw);
		return;
	}
	berth_http_raw_write(echo_raw, data, len);
}

static void echo_close(void *arg)
{
	struct fixture *f = arg;
	f->gone_calls++;
}

static const struct berth_http_raw_ops echo_ops = {echo_data, NULL, echo_close};

/* /sink: a streamed body, paused after each piece and resumed from a timer. */
static void sink_resume(uv_timer_t *t)
{
	struct fixture *f = t->data;

	if (f->sink != NULL)
		berth_http_body_pause(f->sink, false);
}

static void sink_data(struct berth_http_request *req, void *arg, const char *at, size_t len)
{
	struct fixture *f = arg;

	for (size_t i = 0; i < len; i++)
		f->sink_sum = f->sink_sum * 31 + (unsigned char)at[i];
	f->sink_bytes += len;
	f->sink_pieces++;
	berth_http_body_pause(req, true);
	uv_timer_start(&f->resume, sink_resume, 1, 0);
}

static void sink_end(struct berth_http_request *req, void *arg, int status)
{
	struct fixture *f = arg;
	char *out;

	f->sink = NULL;
	if (status == -E2BIG) {
		berth_http_respond_error(req, 413, "body_too_large", "too large");
		return;
	}
	if (status == -ETIMEDOUT) {
		berth_http_respond_error(req, 408, "request_timeout", "stalled");
		return;
	}
	if (status < 0) {
		berth_http_respond_error(req, 400, "bad_request", "malformed");
		return;
	}
	out = xasprintf("%zu %s %u", f->sink_bytes, req->body_chunked ? "chunked" : "length",
	                f->sink_sum);
	berth_http_respond(req, 200, "text/plain", NULL, out, strlen(out));
	free(out);
}

static void sink_gone(struct berth_http_request *req, void *arg)
{
	struct fixture *f = arg;

	f->gone_calls++;
	f->sink = NULL;
	berth_http_respond(req, 200, NULL, NULL, "", 0);
}

static const struct berth_http_body_ops sink_ops = {sink_data, sink_end};

static void handler(struct berth_http_request *req, void *data)
{
	struct fixture *f = data;

	f->handled++;
	if (strcmp(req->path, "/hello") == 0) {
		berth_http_respond(req, 200, "text/plain", NULL, "hello\n", 6);
	} else if (strcmp(req->path, "/echo") == 0) {
		berth_http_respond(req, 200, "application/octet-stream", NULL, req->body,
		                   req->body_len);
	} else if (strcmp(req->path, "/later") == 0) {
		f->later_req = req;
		uv_timer_start(&f->later, answer_later, 50, 0);
	} else if (strcmp(req->path, "/query") == 0) {
		char *x = berth_http_query_param(req, "x");
		char *out = xasprintf("x=%s", x != NULL ? x : "(none)");
		berth_http_respond(req, 200, "text/plain", NULL, out, strlen(out));
		free(out);
		free(x);
	} else if (strcmp(req->path, "/a b") == 0) {
		berth_http_respond(req, 200, "text/plain", NULL, "decoded", 7);
	} else if (strcmp(req->path, "/stream") == 0) {
		berth_http_stream_begin(req, 200, "text/event-stream",
		                        "Cache-Control: no-cache\r\n");
		berth_http_stream_write(req, "data: 1\n\n", 9);
		berth_http_stream_write(req, "data: 2\n\n", 9);
		berth_http_stream_write(req, "data: 3\n\n", 9);
		berth_http_stream_end(req);
	} else if (strcmp(req->path, "/sized") == 0) {
		berth_http_stream_begin_sized(req, 200, "text/plain", NULL, 10);
		berth_http_stream_write(req, "01234", 5);
		berth_http_stream_write(req, "56789", 5);
		berth_http_stream_end(req);
	} else if (strcmp(req->path, "/sized-cut") == 0) {
		berth_http_stream_begin_sized(req, 200, "text/plain", NULL, 10);
		berth_http_stream_write(req, "01234", 5);
		berth_http_stream_abort(req);
	} else if (strcmp(req->path, "/no-body") == 0) {
		berth_http_respond_no_body(req, 200, "Content-Length: 1234\r\nETag: \"v1\"\r\n");
	} else if (strcmp(req->path, "/hold") == 0 || strcmp(req->path, "/hold-stream") == 0) {
		f->held = req;
		berth_http_request_on_gone(req, on_gone, f);
		if (strcmp(req->path, "/hold-stream") == 0) {
			berth_http_stream_begin(req, 200, "text/event-stream", NULL);
			berth_http_stream_write(req, "data: first\n\n", 13);
		}
	} else if (strcmp(req->path, "/drain") == 0) {
		drain_stream(f, req);
	} else if (strcmp(req->path, "/upgrade") == 0) {
		echo_raw = berth_http_upgrade(req, "Upgrade: echo\r\n", &echo_ops, f);
	} else if (strcmp(req->path, "/big") == 0) {
		/* What was spooled: its size, whether in a file, and its last bytes. */
		char tail[4] = "";
		char *out;
		if (req->body_fd >= 0 && req->body_len >= 3 &&
		    pread(req->body_fd, tail, 3, (off_t)req->body_len - 3) != 3)
			tail[0] = '\0';
		out = xasprintf("%zu %s %s", req->body_len, req->body_fd >= 0 ? "file" : "memory",
		                tail);
		berth_http_respond(req, 200, "text/plain", NULL, out, strlen(out));
		free(out);
	} else if (strcmp(req->path, "/sink") == 0) {
		assert_true(req->body_stream);
		f->sink = req;
		f->sink_bytes = f->sink_pieces = 0;
		f->sink_sum = 0;
		berth_http_request_on_gone(req, sink_gone, f);
		berth_http_body_read(req, &sink_ops, f);
	} else if (strcmp(req->path, "/sink-early") == 0) {
		/* Answered without reading the body: the connection cannot go on. */
		berth_http_respond(req, 403, "text/plain", NULL, "no\n", 3);
	} else if (strcmp(req->path, "/sink-cut") == 0) {
		berth_http_stream_begin(req, 200, "text/plain", NULL);
		berth_http_stream_write(req, "partial", 7);
		berth_http_stream_abort(req);
	} else if (strcmp(req->path, "/json") == 0) {
		berth_http_respond_error(req, 404, "not_found", "no instance `%s`", "web");
	} else {
		berth_http_respond(req, 404, NULL, NULL, "", 0);
	}
}

static void on_closed(void *arg)
{
	struct fixture *f = arg;
	uv_close((uv_handle_t *)&f->stop, NULL);
	uv_close((uv_handle_t *)&f->later, NULL);
	uv_close((uv_handle_t *)&f->resume, NULL);
}

static void on_stop(uv_async_t *a)
{
	struct fixture *f = a->data;
	if (f->held != NULL) {
		struct berth_http_request *r = f->held;
		f->held = NULL;
		if (r->streaming)
			berth_http_stream_end(r);
		else
			berth_http_respond(r, 200, NULL, NULL, "", 0);
	}
	berth_http_server_close(f->server, on_closed, f);
}

static void *client_main(void *arg)
{
	struct fixture *f = arg;
	pending_len = 0;
	f->client_fn(f);
	uv_async_send(&f->stop);
	return NULL;
}

static int connect_tcp(struct fixture *f)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(f->port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	pending_len = 0;
	return fd;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		close(fd);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	pending_len = 0;
	return fd;
}

/* Run `fn` as the client against a fresh server with `opt`; returns the fixture. */
static struct fixture *run(void (*fn)(struct fixture *f), const struct berth_http_options *opt)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	berth_error_t err;

	uv_loop_init(&f->loop);
	uv_async_init(&f->loop, &f->stop, on_stop);
	f->stop.data = f;
	uv_timer_init(&f->loop, &f->later);
	f->later.data = f;
	uv_timer_init(&f->loop, &f->resume);
	f->resume.data = f;
	f->server = berth_http_server_new(&f->loop, opt, handler, f);
	assert_int_equal(berth_http_server_listen_tcp(f->server, "127.0.0.1", 0, &err), 0);
	f->port = berth_http_server_tcp_port(f->server);
	assert_true(f->port > 0);
	snprintf(f->sock_path, sizeof(f->sock_path), "/tmp/berth-test-http-%d/api.sock",
	         (int)getpid());
	assert_int_equal(berth_http_server_listen_unix(f->server, f->sock_path, 0660, &err), 0);
	f->client_fn = fn;
	pthread_create(&f->client, NULL, client_main, f);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	pthread_join(f->client, NULL);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	return f;
}

/* ---- tests ---- */

static void c_keep_alive(struct fixture *f)
{
	int fd = connect_tcp(f);
	send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[0] = read_response(fd, &f->res[0], false);
	send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	f->rc[1] = read_response(fd, &f->res[1], false);
	f->closed = closed_by_server(fd);
	close(fd);
}

static void test_keep_alive(void **state)
{
	struct fixture *f = run(c_keep_alive, NULL);
	(void)state;
	assert_int_equal(f->rc[0], 0);
	assert_int_equal(f->res[0].status, 200);
	assert_string_equal(f->res[0].body, "hello\n");
	assert_string_equal(f->res[0].connection, "keep-alive");
	assert_int_equal(f->rc[1], 0);
	assert_string_equal(f->res[1].connection, "close");
	assert_true(f->closed);
	assert_int_equal(f->handled, 2);
	free(f);
}

static void c_unix_and_bodies(struct fixture *f)
{
	int fd = connect_unix(f->sock_path);
	struct stat st;

	stat(f->sock_path, &st);
	snprintf(f->note, sizeof(f->note), "%o", st.st_mode & 0777);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
	f->rc[0] = read_response(fd, &f->res[0], false);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	             "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
	f->rc[1] = read_response(fd, &f->res[1], false);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	             "Expect: 100-continue\r\n\r\n");
	f->rc[2] = read_response(fd, &f->res[2], false); /* the 100 */
	send_str(fd, "xyz");
	f->rc[3] = read_response(fd, &f->res[3], false);
	send_str(fd, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[4] = read_response(fd, &f->res[4], true);
	close(fd);
}

static void test_unix_socket_and_bodies(void **state)
{
	struct fixture *f = run(c_unix_and_bodies, NULL);
	(void)state;
	assert_string_equal(f->note, "660");
	assert_int_equal(f->rc[0], 0);
	assert_string_equal(f->res[0].body, "hello");
	assert_int_equal(f->rc[1], 0);
	assert_string_equal(f->res[1].body, "abcdefg");
	assert_int_equal(f->rc[2], 0);
	assert_int_equal(f->res[2].status, 100);
	assert_int_equal(f->rc[3], 0);
	assert_string_equal(f->res[3].body, "xyz");
	assert_int_equal(f->rc[4], 0);
	assert_int_equal(f->res[4].status, 200);
	assert_string_equal(f->res[4].content_length, "6");
	assert_int_equal(f->res[4].body_len, 0);
	free(f);
}

static void c_pipelined(struct fixture *f)
{
	int fd = connect_tcp(f);
	/* Two requests in one write: the slow one is answered first. */
	send_str(fd,
	         "GET /later HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[0] = read_response(fd, &f->res[0], false);
	f->rc[1] = read_response(fd, &f->res[1], false);
	close(fd);
}

static void test_pipelined_in_order(void **state)
{
	struct fixture *f = run(c_pipelined, NULL);
	(void)state;
	assert_int_equal(f->rc[0], 0);
	assert_string_equal(f->res[0].body, "later\n");
	assert_int_equal(f->rc[1], 0);
	assert_string_equal(f->res[1].body, "hello\n");
	free(f);
}

static void c_bad_requests(struct fixture *f)
{
	int fd;
	char big[70000];

	fd = connect_tcp(f);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	send_str(fd, "GET /hello HTTP/1.1\r\nX-Big: ");
	send_str(fd, big);
	send_str(fd, "\r\n\r\n");
	f->rc[0] = read_response(fd, &f->res[0], false);
	close(fd);

	fd = connect_tcp(f);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
	f->rc[1] = read_response(fd, &f->res[1], false);
	close(fd);

	fd = connect_tcp(f);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	             "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
	f->rc[2] = read_response(fd, &f->res[2], false);
	f->closed = closed_by_server(fd);
	close(fd);

	fd = connect_tcp(f);
	send_str(fd, "\x16\x03\x01 this is not http\r\n\r\n");
	f->rc[3] = read_response(fd, &f->res[3], false);
	close(fd);

	fd = connect_tcp(f);
	send_str(fd, "GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[4] = read_response(fd, &f->res[4], false);
	close(fd);

	fd = connect_tcp(f);
	send_str(fd, "GET /json HTTP/1.0\r\n\r\n");
	f->rc[5] = read_response(fd, &f->res[5], false);
	close(fd);

	/* What http-parser lets through and containerFetch would pass on. */
	fd = connect_tcp(f);
	send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n");
	f->rc[6] = read_response(fd, &f->res[6], false);
	close(fd);
	fd = connect_tcp(f);
	send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: \001b\r\n\r\n");
	f->rc[7] = read_response(fd, &f->res[7], false);
	close(fd);
}

/* Read until `want` has been seen (or EOF); what came, NUL-terminated, in buf. */
static size_t read_until(int fd, char *buf, size_t size, const char *want)
{
	size_t n = 0;
	ssize_t r;

	while (n < size - 1 && (r = read(fd, buf + n, size - 1 - n)) > 0) {
		n += (size_t)r;
		buf[n] = '\0';
		if (want != NULL && strstr(buf, want) != NULL)
			break;
	}
	buf[n] = '\0';
	return n;
}

static void c_upgrade(struct fixture *f)
{
	int fd = connect_tcp(f);
	char buf[1024];

	/* Bytes of the new protocol in the same packet as the head come first. */
	send_str(fd, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
	             "Upgrade: echo\r\n\r\nearly ");
	read_until(fd, buf, sizeof(buf), "early ");
	snprintf(f->note, sizeof(f->note), "%.200s", buf);
	send_str(fd, "later");
	read_until(fd, buf, sizeof(buf), "later");
	f->rc[0] = strcmp(buf, "later") == 0 ? 0 : -1;
	send_str(fd, "quit");
	read_until(fd, buf, sizeof(buf), NULL); /* until the server closes */
	f->rc[1] = strcmp(buf, "bye") == 0 ? 0 : -1;
	close(fd);
	/* A client that leaves: the owner hears of it. */
	fd = connect_tcp(f);
	send_str(fd, "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
	             "Upgrade: echo\r\n\r\n");
	read_until(fd, buf, sizeof(buf), "\r\n\r\n");
	close(fd);
	usleep(100 * 1000);
}

static void test_upgrade(void **state)
{
	struct fixture *f = run(c_upgrade, NULL);
	(void)state;
	assert_non_null(strstr(f->note, "HTTP/1.1 101 Switching Protocols\r\n"));
	assert_non_null(strstr(f->note, "Upgrade: echo\r\n"));
	assert_non_null(strstr(f->note, "\r\n\r\nearly "));
	assert_int_equal(f->rc[0], 0);
	assert_int_equal(f->rc[1], 0);
	/* Only the second connection's end is told: the first was closed by its owner. */
	assert_int_equal(f->gone_calls, 1);
	free(f);
}

/* /big may have 4 MiB, spooled; everything else the default 1 MiB in memory. */
static void big_policy(const struct berth_http_request *req, void *data,
                       struct berth_http_body_policy *policy)
{
	(void)data;
	if (strcmp(req->path, "/big") == 0) {
		policy->max_bytes = 4 << 20;
		policy->spool = true;
	}
}

static void send_body(int fd, const char *path, size_t len)
{
	char head[128], chunk[65536];

	snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
	         path, len);
	send_str(fd, head);
	memset(chunk, 'b', sizeof(chunk));
	while (len > 0) {
		size_t n = len < sizeof(chunk) ? len : sizeof(chunk);
		if (len == n && n >= 3)
			memcpy(chunk + n - 3, "end", 3);
		if (berth_write_all(fd, chunk, n) < 0)
			return;
		len -= n;
	}
}

static void c_spooled_bodies(struct fixture *f)
{
	int fd = connect_tcp(f);

	send_body(fd, "/big", 3 << 20);
	f->rc[0] = read_response(fd, &f->res[0], false);
	send_body(fd, "/big", 10);
	f->rc[1] = read_response(fd, &f->res[1], false);
	close(fd);
	fd = connect_tcp(f);
	send_str(fd, "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n");
	f->rc[2] = read_response(fd, &f->res[2], false);
	close(fd);
	fd = connect_tcp(f);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
	f->rc[3] = read_response(fd, &f->res[3], false);
	close(fd);
}

static void test_spooled_bodies(void **state)
{
	struct berth_http_options opt = {.body_policy = big_policy};
	struct fixture *f = run(c_spooled_bodies, &opt);
	(void)state;
	assert_int_equal(f->rc[0], 0);
	assert_int_equal(f->res[0].status, 200);
	assert_string_equal(f->res[0].body, "3145728 file end");
	assert_int_equal(f->rc[1], 0);
	assert_string_equal(f->res[1].body, "10 file end");
	/* Over the route's own limit, and over the default elsewhere. */
	assert_int_equal(f->rc[2], 0);
	assert_int_equal(f->res[2].status, 413);
	assert_int_equal(f->rc[3], 0);
	assert_int_equal(f->res[3].status, 413);
	free(f);
}

/* /sink* stream their bodies, of up to 4 MiB; the rest as usual. */
static void stream_policy(const struct berth_http_request *req, void *data,
                          struct berth_http_body_policy *policy)
{
	(void)data;
	if (strncmp(req->path, "/sink", 5) == 0) {
		policy->max_bytes = 4 << 20;
		policy->stream = true;
	}
}

static uint32_t sum_of(const char *p, size_t n)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = sum * 31 + (unsigned char)p[i];
	return sum;
}

static void c_streamed_bodies(struct fixture *f)
{
	static char body[3 << 20];
	char head[128];
	int fd = connect_unix(f->sock_path);

	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)(i * 7 + i / 1000);
	snprintf(f->note, sizeof(f->note), "%zu length %u", sizeof(body),
	         sum_of(body, sizeof(body)));
	snprintf(head, sizeof(head),
	         "POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", sizeof(body));
	send_str(fd, head);
	send_all(fd, body, sizeof(body));
	f->rc[0] = read_response(fd, &f->res[0], false);
	/*
	 * Chunked, with a trailer (dropped: the request was handed on at its
	 * head), in the same write as the next request: it waits its turn.
	 */
	send_str(fd, "POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	             "3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Checksum: 1\r\n\r\n"
	             "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[1] = read_response(fd, &f->res[1], false);
	f->rc[2] = read_response(fd, &f->res[2], false);
	close(fd);

	/* Past the limit in chunks: the reader hears it and answers 413. */
	fd = connect_tcp(f);
	send_str(fd, "POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 5 * 16; i++) {
		send_str(fd, "10000\r\n");
		send_all(fd, body, 0x10000);
		send_str(fd, "\r\n");
	}
	f->rc[3] = read_response(fd, &f->res[3], false);
	close(fd);

	/* Bad chunk framing mid-body: 400. */
	fd = connect_tcp(f);
	send_str(fd, "POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	             "3\r\nabc\r\nzz\r\n");
	f->rc[4] = read_response(fd, &f->res[4], false);
	close(fd);

	/* Answered before the body was read: the answer arrives, then the close. */
	fd = connect_tcp(f);
	send_str(fd, "POST /sink-early HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
	send_all(fd, body, 100000);
	f->rc[5] = read_response(fd, &f->res[5], false);
	f->closed = closed_by_server(fd);
	close(fd);

	/* A stream cut short: the client sees it incomplete. */
	fd = connect_tcp(f);
	send_str(fd, "POST /sink-cut HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
	f->rc[6] = read_response(fd, &f->res[6], false);
	close(fd);

	/* A client that leaves mid-body: the handler hears it. */
	fd = connect_tcp(f);
	send_str(fd, "POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc");
	usleep(100000);
	close(fd);
	usleep(100000);
}

static void test_streamed_bodies(void **state)
{
	struct berth_http_options opt = {.body_policy = stream_policy};
	struct fixture *f;
	char want[64];
	(void)state;

	signal(SIGPIPE, SIG_IGN);
	f = run(c_streamed_bodies, &opt);
	assert_int_equal(f->rc[0], 0);
	assert_int_equal(f->res[0].status, 200);
	assert_string_equal(f->res[0].body, f->note);
	assert_string_equal(f->res[0].connection, "keep-alive");
	assert_int_equal(f->rc[1], 0);
	snprintf(want, sizeof(want), "7 chunked %u", sum_of("abcdefg", 7));
	assert_string_equal(f->res[1].body, want);
	assert_int_equal(f->rc[2], 0);
	assert_string_equal(f->res[2].body, "hello\n");
	assert_int_equal(f->rc[3], 0);
	assert_int_equal(f->res[3].status, 413);
	assert_string_equal(f->res[3].connection, "close");
	assert_int_equal(f->rc[4], 0);
	assert_int_equal(f->res[4].status, 400);
	assert_int_equal(f->rc[5], 0);
	assert_int_equal(f->res[5].status, 403);
	assert_string_equal(f->res[5].connection, "close");
	assert_true(f->closed);
	assert_int_equal(f->rc[6], -1);
	assert_string_equal(f->res[6].body, "partial");
	assert_int_equal(f->gone_calls, 1);
	assert_null(f->sink);
	free(f);
}

static void test_bad_requests(void **state)
{
	struct fixture *f = run(c_bad_requests, NULL);
	(void)state;
	assert_int_equal(f->rc[0], 0);
	assert_int_equal(f->res[0].status, 431);
	assert_int_equal(f->rc[1], 0);
	assert_int_equal(f->res[1].status, 413);
	/* Both Content-Length and Transfer-Encoding: refused, never forwarded. */
	assert_int_equal(f->rc[2], 0);
	assert_int_equal(f->res[2].status, 400);
	assert_true(f->closed);
	assert_int_equal(f->rc[3], 0);
	assert_int_equal(f->res[3].status, 400);
	assert_int_equal(f->rc[4], 0);
	assert_int_equal(f->res[4].status, 400);
	/* Errors are JSON; HTTP/1.0 gets Connection: close. */
	assert_int_equal(f->rc[5], 0);
	assert_int_equal(f->res[5].status, 404);
	assert_string_equal(
	        f->res[5].body,
	        "{\"error\":{\"code\":\"not_found\",\"message\":\"no instance `web`\"}}\n");
	assert_string_equal(f->res[5].connection, "close");
	assert_int_equal(f->rc[6], 0);
	assert_int_equal(f->res[6].status, 400);
	assert_non_null(strstr(f->res[6].body, "a header name is not a token"));
	assert_int_equal(f->rc[7], 0);
	assert_int_equal(f->res[7].status, 400);
	assert_non_null(strstr(f->res[7].body, "a header value has a control character"));
	assert_int_equal(f->handled, 1);
	free(f);
}

static void c_query_and_stream(struct fixture *f)
{
	int fd = connect_tcp(f);
	send_str(fd, "GET /query?y=1&x=a%20b+c HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[0] = read_response(fd, &f->res[0], false);
	send_str(fd, "GET /a%20b HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[1] = read_response(fd, &f->res[1], false);
	send_str(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[2] = read_response(fd, &f->res[2], false);
	send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[3] = read_response(fd, &f->res[3], false);
	send_str(fd, "GET /sized HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[4] = read_response(fd, &f->res[4], false);
	send_str(fd, "HEAD /no-body HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[5] = read_response(fd, &f->res[5], true);
	send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[6] = read_response(fd, &f->res[6], false);
	send_str(fd, "GET /sized-cut HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[7] = read_response(fd, &f->res[7], false);
	close(fd);
}

static void test_query_path_and_stream(void **state)
{
	struct fixture *f = run(c_query_and_stream, NULL);
	(void)state;
	assert_string_equal(f->res[0].body, "x=a b c");
	assert_string_equal(f->res[1].body, "decoded");
	assert_int_equal(f->rc[2], 0);
	assert_true(f->res[2].chunked);
	assert_string_equal(f->res[2].body, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
	/* The connection goes on after a stream. */
	assert_int_equal(f->rc[3], 0);
	assert_string_equal(f->res[3].body, "hello\n");
	/* A body of a known length goes out with it, unframed. */
	assert_int_equal(f->rc[4], 0);
	assert_false(f->res[4].chunked);
	assert_string_equal(f->res[4].content_length, "10");
	assert_string_equal(f->res[4].body, "0123456789");
	/* An answer without a body keeps the length it was given, and only that. */
	assert_int_equal(f->rc[5], 0);
	assert_int_equal(f->res[5].status, 200);
	assert_string_equal(f->res[5].content_length, "1234");
	assert_int_equal(f->res[5].body_total, 0);
	/* ... and the connection goes on after both. */
	assert_int_equal(f->rc[6], 0);
	assert_string_equal(f->res[6].body, "hello\n");
	/* One cut short: too few bytes, then the close; the client sees it incomplete. */
	assert_int_equal(f->rc[7], -1);
	assert_string_equal(f->res[7].body, "01234");
	free(f);
}

static void c_gone(struct fixture *f)
{
	int fd = connect_tcp(f);
	send_str(fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
	usleep(100000);
	close(fd);
	fd = connect_tcp(f);
	send_str(fd, "GET /hold-stream HTTP/1.1\r\nHost: x\r\n\r\n");
	usleep(100000);
	close(fd);
	usleep(100000);
}

static void test_client_gone(void **state)
{
	struct fixture *f = run(c_gone, NULL);
	(void)state;
	/* Both held requests (one plain, one streaming) heard that their client left. */
	assert_int_equal(f->gone_calls, 2);
	assert_null(f->held);
	free(f);
}

static void c_drain(struct fixture *f)
{
	int fd = connect_unix(f->sock_path);

	send_str(fd, "GET /drain HTTP/1.1\r\nHost: x\r\n\r\n");
	usleep(200000); /* the server fills the queue meanwhile */
	f->rc[0] = read_response(fd, &f->res[0], false);
	send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[1] = read_response(fd, &f->res[1], false);
	close(fd);
}

static void test_stream_drain(void **state)
{
	struct fixture *f = run(c_drain, NULL);
	(void)state;
	/* The writer paused with a long queue and resumed once it had drained. */
	assert_true(f->queued_before_drain > 4 * DRAIN_LOW_WATER);
	assert_true(f->queued_at_drain <= DRAIN_LOW_WATER);
	assert_int_equal(f->rc[0], 0);
	assert_true(f->res[0].chunked);
	assert_int_equal(f->res[0].body_total, f->drain_written);
	assert_null(f->held);
	assert_int_equal(f->rc[1], 0);
	assert_string_equal(f->res[1].body, "hello\n");
	free(f);
}

static void c_timeouts(struct fixture *f)
{
	int fd = connect_tcp(f);
	send_str(fd, "GET /hello HTTP/1.1\r\nHost:"); /* and then nothing */
	f->rc[0] = read_response(fd, &f->res[0], false);
	close(fd);
	fd = connect_tcp(f);
	send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[1] = read_response(fd, &f->res[1], false);
	f->closed = closed_by_server(fd); /* idle keep-alive connection ends */
	close(fd);
	/* A body that keeps coming may take longer than the head's timeout. */
	fd = connect_tcp(f);
	send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
	for (int i = 0; i < 5; i++) {
		usleep(100000);
		send_str(fd, "x");
	}
	f->rc[2] = read_response(fd, &f->res[2], false);
	/* The next request on the connection has the head's timeout again. */
	send_str(fd, "GET /hello HTTP/1.1\r\nHost:");
	f->rc[3] = read_response(fd, &f->res[3], false);
	close(fd);
	/* A streamed body read slowly (paused by its reader) takes as long as it needs... */
	fd = connect_tcp(f);
	send_str(fd, "POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
	for (int i = 0; i < 5; i++) {
		usleep(100000);
		send_str(fd, "x");
	}
	f->rc[4] = read_response(fd, &f->res[4], false);
	close(fd);
	/* ...but one that stops coming gets 408 after idle_timeout_ms. */
	fd = connect_tcp(f);
	send_str(fd, "POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab");
	f->rc[5] = read_response(fd, &f->res[5], false);
	close(fd);
}

static void test_timeouts(void **state)
{
	struct berth_http_options opt = {
	        .header_timeout_ms = 200, .idle_timeout_ms = 300, .body_policy = stream_policy};
	struct fixture *f = run(c_timeouts, &opt);
	char want[64];
	(void)state;
	assert_int_equal(f->rc[0], 0);
	assert_int_equal(f->res[0].status, 408);
	assert_int_equal(f->rc[1], 0);
	assert_true(f->closed);
	assert_int_equal(f->rc[2], 0);
	assert_int_equal(f->res[2].status, 200);
	assert_string_equal(f->res[2].body, "xxxxx");
	assert_int_equal(f->rc[3], 0);
	assert_int_equal(f->res[3].status, 408);
	assert_int_equal(f->rc[4], 0);
	snprintf(want, sizeof(want), "5 length %u", sum_of("xxxxx", 5));
	assert_string_equal(f->res[4].body, want);
	assert_int_equal(f->rc[5], 0);
	assert_int_equal(f->res[5].status, 408);
	free(f);
}

static void c_max_connections(struct fixture *f)
{
	int a = connect_tcp(f), b = connect_tcp(f), c = connect_tcp(f);
	usleep(100000);
	f->closed = closed_by_server(c);
	send_str(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	f->rc[0] = read_response(a, &f->res[0], false);
	close(a);
	close(b);
	close(c);
}

static void test_max_connections(void **state)
{
	struct berth_http_options opt = {.max_connections = 2};
	struct fixture *f = run(c_max_connections, &opt);
	(void)state;
	assert_true(f->closed);
	assert_int_equal(f->rc[0], 0);
	assert_int_equal(f->res[0].status, 200);
	free(f);
}

static void on_unused(struct berth_http_request *req, void *data)
{
	(void)data;
	berth_http_respond(req, 200, NULL, NULL, "", 0);
}

static void test_unix_socket_in_use(void **state)
{
	char dir[] = "/tmp/berth-test-http-sock.XXXXXX";
	char path[128];
	uv_loop_t loop;
	struct berth_http_server *a, *b;
	berth_error_t err;
	int fd;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	uv_loop_init(&loop);
	/* A stale socket (nobody listening) is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		strcpy(sa.sun_path, path);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	close(fd);
	a = berth_http_server_new(&loop, NULL, on_unused, NULL);
	assert_int_equal(berth_http_server_listen_unix(a, path, 0600, &err), 0);
	/* A live one is not. */
	b = berth_http_server_new(&loop, NULL, on_unused, NULL);
	assert_int_equal(berth_http_server_listen_unix(b, path, 0600, &err), -EADDRINUSE);
	assert_non_null(strstr(err.message, "another server is listening on `"));
	assert_int_equal(berth_http_server_listen_tcp(b, "not-an-ip", 1, &err), -EINVAL);
	assert_string_equal(err.message, "`not-an-ip` is not an IP address");
	berth_http_server_close(a, NULL, NULL);
	berth_http_server_close(b, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	/* Closing removes the socket file. */
	assert_int_equal(access(path, F_OK), -1);
	berth_rmtree(dir, NULL);
}

static int teardown(void **state)
{
	char dir[128];
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/berth-test-http-%d", (int)getpid());
	berth_rmtree(dir, NULL);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_keep_alive),
	        cmocka_unit_test(test_unix_socket_and_bodies),
	        cmocka_unit_test(test_pipelined_in_order),
	        cmocka_unit_test(test_bad_requests),
	        cmocka_unit_test(test_query_path_and_stream),
	        cmocka_unit_test(test_client_gone),
	        cmocka_unit_test(test_spooled_bodies),
	        cmocka_unit_test(test_streamed_bodies),
	        cmocka_unit_test(test_upgrade),
	        cmocka_unit_test(test_stream_drain),
	        cmocka_unit_test(test_timeouts),
	        cmocka_unit_test(test_max_connections),
	        cmocka_unit_test(test_unix_socket_in_use),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
