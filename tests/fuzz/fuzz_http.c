/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the control API's HTTP server (src/http/server.c) on what a
 * client sends down one connection, before any authentication.
 *
 * One server on a unix socket serves every input; each input is written on
 * a fresh connection, which is then half-closed, and the loop runs until
 * the server has closed it. The handler answers by path, so that each way a
 * request can be answered is reached: whole (/echo, with the body), streamed
 * (/stream), streamed body read as it comes (/sink, paused after each
 * piece), spooled body (/spool), later from a timer (/later), an upgrade to
 * a raw echo (/upgrade), no body (HEAD), an error for anything else.
 *
 * Invariants: the server closes the connection once the client has gone;
 * what it wrote is a sequence of well-formed responses (after a 101, raw
 * bytes), no more of them than requests could have started; no request is
 * left unanswered or answered twice (ASan and the leak checker see the
 * rest).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <http_parser.h>

#include "fuzz.h"
#include "http/http.h"

#define OUT_MAX (4 << 20)

static uv_loop_t loop;
static struct berth_http_server *server;
static char dir[64], sock_path[96];
static uv_timer_t later;
static struct berth_http_request *later_req;
static struct berth_http_raw *raw;
static unsigned answered, requests;

/* ---- the handler ---- */

static void answer_later(uv_timer_t *t)
{
	(void)t;
	if (later_req != NULL) {
		berth_http_respond(later_req, 200, "text/plain", NULL, "later\n", 6);
		later_req = NULL;
		answered++;
	}
}

static void later_gone(struct berth_http_request *req, void *arg)
{
	(void)arg;
	if (req == later_req) {
		later_req = NULL;
		berth_http_respond(req, 200, NULL, NULL, "", 0);
		answered++;
	}
}

static void sink_data(struct berth_http_request *req, void *arg, const char *at, size_t len)
{
	(void)arg;
	(void)at;
	(void)len;
	berth_http_body_pause(req, true);
	berth_http_body_pause(req, false);
}

static void sink_end(struct berth_http_request *req, void *arg, int status)
{
	(void)arg;
	answered++;
	if (status < 0)
		berth_http_respond_error(req, status == -E2BIG ? 413 : 400, "bad_body", "status %d",
		                         status);
	else
		berth_http_respond(req, 200, "text/plain", NULL, "ok", 2);
}

static void sink_gone(struct berth_http_request *req, void *arg)
{
	(void)arg;
	answered++;
	berth_http_respond(req, 200, NULL, NULL, "", 0);
}

static const struct berth_http_body_ops sink_ops = {sink_data, sink_end};

static void raw_data(void *arg, const char *data, size_t len)
{
	(void)arg;
	if (raw != NULL)
		berth_http_raw_write(raw, data, len);
}

static void raw_closed(void *arg)
{
	(void)arg;
	raw = NULL;
}

static const struct berth_http_raw_ops raw_ops = {raw_data, NULL, raw_closed};

static void policy(const struct berth_http_request *req, void *data,
                   struct berth_http_body_policy *p)
{
	(void)data;
	p->max_bytes = 4096;
	if (strcmp(req->path, "/spool") == 0)
		p->spool = true;
	else if (strcmp(req->path, "/sink") == 0)
		p->stream = true;
}

static void handle(struct berth_http_request *req, void *data)
{
	(void)data;
	requests++;
	FUZZ_CHECK(req->path != NULL && strlen(req->path) > 0, "a request without a path");
	for (size_t i = 0; i < req->n_headers; i++)
		FUZZ_CHECK(berth_http_is_token(req->headers[i].name, strlen(req->headers[i].name)),
		           "a header name that is no token reached the handler");
	if (req->body_stream) {
		FUZZ_CHECK(strcmp(req->path, "/sink") == 0, "a streamed body nobody asked for");
		berth_http_request_on_gone(req, sink_gone, NULL);
		berth_http_body_read(req, &sink_ops, NULL);
		return;
	}
	answered++;
	if (strcmp(req->method, "HEAD") == 0) {
		berth_http_respond_no_body(req, 204, "X-Head: 1\r\n");
	} else if (strcmp(req->path, "/echo") == 0 || strcmp(req->path, "/spool") == 0) {
		char head[64];
		snprintf(head, sizeof(head), "X-Fd: %d\r\n", req->body_fd >= 0);
		berth_http_respond(req, 200, "application/octet-stream", head, req->body,
		                   req->body_fd >= 0 ? 0 : req->body_len);
	} else if (strcmp(req->path, "/stream") == 0) {
		berth_http_stream_begin(req, 200, "text/plain", NULL);
		berth_http_stream_write(req, "a", 1);
		berth_http_stream_write(req, "bc", 2);
		berth_http_stream_end(req);
	} else if (strcmp(req->path, "/later") == 0 && later_req == NULL) {
		answered--;
		later_req = req;
		berth_http_request_on_gone(req, later_gone, NULL);
		uv_timer_start(&later, answer_later, 1, 0);
	} else if (strcmp(req->path, "/upgrade") == 0 && req->upgrade && raw == NULL) {
		raw = berth_http_upgrade(req, "Upgrade: echo\r\nConnection: upgrade\r\n", &raw_ops,
		                         NULL);
	} else {
		berth_http_respond_error(req, 404, "not_found", "no `%s`", req->path);
	}
}

static void cleanup(void)
{
	unlink(sock_path);
	rmdir(dir);
}

static void setup(void)
{
	struct berth_http_options o = {
	        .max_header_bytes = 2048,
	        .max_body_bytes = 4096,
	        .header_timeout_ms = 2000,
	        .idle_timeout_ms = 2000,
	        .body_policy = policy,
	        .spool_dir = "/tmp",
	};
	berth_error_t err;

	snprintf(dir, sizeof(dir), "/tmp/berth-fuzz-http.%d", (int)getpid());
	snprintf(sock_path, sizeof(sock_path), "%s/api.sock", dir);
	FUZZ_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init");
	uv_timer_init(&loop, &later);
	server = berth_http_server_new(&loop, &o, handle, NULL);
	FUZZ_CHECK(berth_http_server_listen_unix(server, sock_path, 0600, &err) == 0, "listen: %s",
	           err.message);
	atexit(cleanup);
}

/* ---- what came back ---- */

struct seen {
	unsigned responses;
	bool upgraded;
};

static int on_complete(http_parser *p)
{
	struct seen *s = p->data;
	s->responses++;
	return 0;
}

static int on_headers(http_parser *p)
{
	struct seen *s = p->data;
	if (p->status_code == 101) {
		s->upgraded = true;
		s->responses++;
		return 2; /* no body, and what follows is not HTTP */
	}
	return 0;
}

static const http_parser_settings settings = {
        .on_headers_complete = on_headers,
        .on_message_complete = on_complete,
};

static void check_output(const char *out, size_t len, const uint8_t *in, size_t in_len)
{
	struct seen s = {0};
	http_parser p;
	size_t done, starts = 0;

	if (len == 0)
		return;
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = &s;
	done = http_parser_execute(&p, &settings, out, len);
	if (!s.upgraded) {
		/* A response the server cut (the client left) may end early; never a malformed one.
		 */
		FUZZ_CHECK(HTTP_PARSER_ERRNO(&p) == HPE_OK || HTTP_PARSER_ERRNO(&p) == HPE_PAUSED,
		           "the server wrote no HTTP (%s at %zu): %.*s",
		           http_errno_name(HTTP_PARSER_ERRNO(&p)), done,
		           (int)(len > 200 ? 200 : len), out);
		http_parser_execute(&p, &settings, NULL, 0);
	}
	/* Every answer needs a request that began: its first line at least. */
	for (size_t i = 0; i < in_len; i++)
		starts += in[i] == '\n';
	FUZZ_CHECK(s.responses <= starts + 1, "%u answers to at most %zu requests", s.responses,
	           starts + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *out = malloc(OUT_MAX);
	size_t out_len = 0, sent = 0;
	bool eof = false;
	int fd;

	if (server == NULL)
		setup();
	answered = requests = 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	FUZZ_CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
	           strerror(errno));

	/* Feed the input, read what comes back, until the server closes the connection. */
	for (int turns = 0; !eof; turns++) {
		ssize_t n;

		FUZZ_CHECK(turns < 100000, "the server never closed the connection");
		if (sent < size) {
			n = write(fd, data + sent, size - sent);
			if (n > 0)
				sent += (size_t)n;
			if (sent == size)
				shutdown(fd, SHUT_WR);
		} else if (size == 0 && turns == 0) {
			shutdown(fd, SHUT_WR);
		}
		uv_run(&loop, UV_RUN_NOWAIT);
		while ((n = read(fd, out + out_len, OUT_MAX - out_len)) > 0)
			out_len += (size_t)n;
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			eof = true;
		FUZZ_CHECK(out_len < OUT_MAX, "more than %d bytes of answers", OUT_MAX);
		if (!eof && turns > 1000)
			usleep(100); /* a timer (/later, a timeout) is due */
	}
	close(fd);
	/* Let the server finish with the connection (close callbacks). */
	for (int i = 0; i < 10; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	FUZZ_CHECK(later_req == NULL, "a request left waiting after its client left");
	FUZZ_CHECK(answered == requests, "%u requests, %u answered", requests, answered);
	check_output(out, out_len, data, size);
	free(out);
	return 0;
}
