/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/port-watch: server-sent events until a port inside the container
 * answers — `watching` at once, then `ready` when a TCP connection succeeds
 * (mode tcp) or an HTTP GET of `path` gets a status in [statusMin,
 * statusMax] (mode http, the default), `process_exited` when the process
 * named by `processId` ends first, `error` for a watch that cannot be. The
 * SDK's Process.waitForPort() reads it. Attempts every `interval` ms; each
 * connects inside the container's network namespace (berthd_lease_connect),
 * as the readiness probes do. The watch holds the call's lease, so the
 * instance stays awake while something waits for it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "berth/util.h"
#include "sandbox/sandbox-internal.h"

#define ATTEMPT_TIMEOUT_MS 5000
#define ANSWER_HEAD_MAX    512

struct watch {
	struct sbx_call *c;
	uint16_t port;
	bool http;
	char *path;
	int status_min, status_max;
	char *process_id;
	uint64_t interval_ms;
	uv_timer_t timer;  /* the next attempt, or an attempt's timeout */
	struct attempt *a; /* the attempt under way, or NULL */
	int fd;
	bool sent; /* the GET is out; now its answer */
	char answer[ANSWER_HEAD_MAX + 1];
	size_t answer_len;
	bool done;
	int closing; /* handles still to close */
};

/* One connection attempt's poll handle: each its own, closed before it is freed. */
struct attempt {
	uv_poll_t poll;
	struct watch *w;
	int fd; /* closed once the handle is */
};

static void watch_maybe_free(struct watch *w)
{
	if (!w->done || w->closing > 0)
		return;
	free(w->path);
	free(w->process_id);
	free(w);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct watch *w = h->data;

	w->closing--;
	watch_maybe_free(w);
}

static void on_attempt_closed(uv_handle_t *h)
{
	struct attempt *a = (struct attempt *)h;
	struct watch *w = a->w;

	berth_close_keep_errno(a->fd);
	free(a);
	w->closing--;
	watch_maybe_free(w);
}

static void attempt_end(struct watch *w)
{
	struct attempt *a = steal_pointer(&w->a);

	if (a != NULL) {
		uv_poll_stop(&a->poll);
		a->fd = w->fd;
		w->closing++;
		uv_close((uv_handle_t *)&a->poll, on_attempt_closed);
	} else {
		berth_close_keep_errno(w->fd);
	}
	w->fd = -1;
	w->sent = false;
	w->answer_len = 0;
}

/* The last event, if any; the stream ends and everything goes. */
static void watch_end(struct watch *w, json_t *ev)
{
	struct sbx_call *c = w->c;

	if (w->done)
		return;
	w->done = true;
	attempt_end(w);
	uv_timer_stop(&w->timer);
	if (ev != NULL)
		sbx_sse_send(c->req, ev);
	berth_http_stream_end(c->req);
	c->req = NULL;
	sbx_call_end(c);
	w->closing++;
	uv_close((uv_handle_t *)&w->timer, on_timer_closed);
}

static void attempt(struct watch *w);

static void on_timer(uv_timer_t *t)
{
	struct watch *w = t->data;

	if (w->fd >= 0)
		attempt_end(w); /* this attempt took too long: the next one */
	attempt(w);
}

static void retry(struct watch *w)
{
	attempt_end(w);
	uv_timer_start(&w->timer, on_timer, w->interval_ms, 0);
}

static void on_socket(uv_poll_t *h, int status, int events)
{
	struct watch *w = ((struct attempt *)h)->w;
	int err = 0, code = 0;
	socklen_t len = sizeof(err);
	(void)events;

	if (status < 0)
		return retry(w);
	if (!w->sent) {
		/* Writable: the connection is made, or has failed. */
		if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
			return retry(w);
		if (!w->http)
			return watch_end(w,
			                 json_pack("{s:s, s:i}", "type", "ready", "port", w->port));
		{
			cleanup_free char *get =
			        xasprintf("GET %s HTTP/1.1\r\nHost: localhost:%u\r\nConnection: "
			                  "close\r\n\r\n",
			                  w->path, w->port);
			if (send(w->fd, get, strlen(get), MSG_NOSIGNAL) != (ssize_t)strlen(get))
				return retry(w);
		}
		w->sent = true;
		uv_poll_start(h, UV_READABLE, on_socket);
		return;
	}
	for (;;) {
		ssize_t n =
		        recv(w->fd, w->answer + w->answer_len, ANSWER_HEAD_MAX - w->answer_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return retry(w);
		w->answer_len += (size_t)n;
		w->answer[w->answer_len] = '\0';
		if (strchr(w->answer, '\n') != NULL || w->answer_len == ANSWER_HEAD_MAX)
			break;
	}
	if (strchr(w->answer, '\n') == NULL && w->answer_len < ANSWER_HEAD_MAX)
		return; /* more of the status line to come */
	if (sscanf(w->answer, "HTTP/1.%*d %d", &code) == 1 && code >= w->status_min &&
	    code <= w->status_max)
		return watch_end(w, json_pack("{s:s, s:i, s:i}", "type", "ready", "port", w->port,
		                              "statusCode", code));
	retry(w);
}

static void attempt(struct watch *w)
{
	berth_error_t err;

	if (w->process_id != NULL) {
		struct sbx_process *pr = NULL;
		for (pr = w->c->inst->procs; pr != NULL; pr = pr->next)
			if (strcmp(pr->id, w->process_id) == 0)
				break;
		if (pr == NULL)
			return watch_end(w, json_pack("{s:s, s:s}", "type", "error", "error",
			                              "the process is gone"));
		if (pr->has_exit)
			return watch_end(w, json_pack("{s:s, s:i}", "type", "process_exited",
			                              "exitCode", pr->exit_code));
	}
	if (!berthd_lease_alive(w->c->lease))
		return watch_end(w, json_pack("{s:s, s:s}", "type", "error", "error",
		                              "the container stopped"));
	w->fd = berthd_lease_connect(w->c->lease, w->port, &err);
	if (w->fd < 0) {
		w->fd = -1;
		uv_timer_start(&w->timer, on_timer, w->interval_ms, 0);
		return;
	}
	w->a = xcalloc(1, sizeof(*w->a));
	w->a->w = w;
	uv_poll_init(w->c->d->loop, &w->a->poll, w->fd);
	uv_poll_start(&w->a->poll, UV_WRITABLE, on_socket);
	/* A server that accepts and never answers: the attempt ends, the next begins. */
	uv_timer_start(&w->timer, on_timer, ATTEMPT_TIMEOUT_MS, 0);
}

static void on_gone(struct berth_http_request *req, void *arg)
{
	struct watch *w = arg;
	(void)req;

	watch_end(w, NULL);
}

void sbx_port_watch(struct sbx_call *c)
{
	const char *mode, *path, *pid;
	uint64_t port = 0, min = 200, max = 399, interval = 500;
	bool given;
	struct watch *w;

	if (!sbx_get_uint(c, "port", 65535, &port, &given) ||
	    !sbx_get_string(c, "mode", false, &mode) || !sbx_get_string(c, "path", false, &path) ||
	    !sbx_get_string(c, "processId", false, &pid) ||
	    !sbx_get_uint(c, "statusMin", 999, &min, NULL) ||
	    !sbx_get_uint(c, "statusMax", 999, &max, NULL) ||
	    !sbx_get_uint(c, "interval", 60000, &interval, NULL))
		return;
	if (!given || port == 0)
		return sbx_call_fail(c, "INVALID_PORT", "`port` must be from 1 to 65535");
	if (mode != NULL && strcmp(mode, "http") != 0 && strcmp(mode, "tcp") != 0)
		return sbx_call_fail(c, "VALIDATION_FAILED", "`mode` must be http or tcp");
	if (path != NULL && (path[0] != '/' || strpbrk(path, " \r\n") != NULL))
		return sbx_call_fail(c, "VALIDATION_FAILED",
		                     "`path` must start with / and hold no spaces or line breaks");
	w = xcalloc(1, sizeof(*w));
	w->c = c;
	w->fd = -1;
	w->port = (uint16_t)port;
	w->http = mode == NULL || strcmp(mode, "http") == 0;
	w->path = xstrdup(path != NULL ? path : "/");
	w->status_min = (int)min;
	w->status_max = (int)max;
	w->process_id = pid != NULL ? xstrdup(pid) : NULL;
	w->interval_ms = interval < 50 ? 50 : interval;
	uv_timer_init(c->d->loop, &w->timer);
	w->timer.data = w;
	sbx_sse_begin(c->req);
	sbx_sse_send(c->req, json_pack("{s:s, s:i}", "type", "watching", "port", w->port));
	berth_http_request_on_gone(c->req, on_gone, w);
	attempt(w);
}
