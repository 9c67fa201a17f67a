/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "berth/runtime.h"
#include "berth/trace.h"
#include "berth/util.h"
#include "daemon/probe.h"

struct berthd_probe {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t write;
	http_parser parser;
	char *request;
	uint16_t status_min, status_max;
	berthd_probe_cb cb;
	void *arg;
	int open_handles;
	bool tcp_open;
	bool done;
};

static void on_closed(uv_handle_t *h)
{
	struct berthd_probe *p = h->data;

	if (--p->open_handles > 0)
		return;
	free(p->request);
	free(p);
}

/* Report once (unless cancelled), then release everything. */
static void finish(struct berthd_probe *p, int result)
{
	if (p->done)
		return;
	p->done = true;
	if (p->cb != NULL)
		p->cb(result, p->arg);
	uv_close((uv_handle_t *)&p->timer, on_closed);
	uv_close((uv_handle_t *)&p->tcp, on_closed);
}

static int on_headers_complete(http_parser *hp)
{
	struct berthd_probe *p = hp->data;
	unsigned status = hp->status_code;

	/* Any answer means something listens and speaks HTTP. */
	if (p->status_min == 0 || (status >= p->status_min && status <= p->status_max))
		finish(p, 0);
	else
		finish(p, -EAGAIN);
	return 1;
}

static const http_parser_settings settings = {.on_headers_complete = on_headers_complete};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char scratch[4096]; /* loop thread only; the bytes are parsed at once */
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(scratch, sizeof(scratch));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct berthd_probe *p = s->data;

	if (p->done)
		return;
	if (n < 0) {
		finish(p, n == UV_EOF ? -ECONNRESET : (int)n);
		return;
	}
	BERTH_TRACE("probe: read");
	http_parser_execute(&p->parser, &settings, buf->base, (size_t)n);
	if (!p->done && HTTP_PARSER_ERRNO(&p->parser) != HPE_OK)
		finish(p, -EPROTO);
}

static void on_written(uv_write_t *w, int status)
{
	struct berthd_probe *p = w->data;

	BERTH_TRACE("probe: written");
	if (status < 0)
		finish(p, status);
}

static void on_timeout(uv_timer_t *t)
{
	finish(t->data, -ETIMEDOUT);
}

int berthd_probe_start(uv_loop_t *loop, struct berth_container *c, uint16_t port,
                       const char *ping_endpoint, uint16_t status_min, uint16_t status_max,
                       uint64_t timeout_ms, berthd_probe_cb cb, void *arg,
                       struct berthd_probe **out)
{
	struct berthd_probe *p = xcalloc(1, sizeof(*p));
	const char *slash = strchr(ping_endpoint, '/');
	cleanup_free char *host =
	        xstrndup(ping_endpoint,
	                 slash != NULL ? (size_t)(slash - ping_endpoint) : strlen(ping_endpoint));
	berth_error_t err;
	uv_buf_t b;
	int fd;

	p->cb = cb;
	p->arg = arg;
	p->status_min = status_min;
	p->status_max = status_max;
	p->request = xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: berth-readiness\r\n"
	                       "Connection: close\r\n\r\n",
	                       slash != NULL ? slash : "/", host);
	uv_timer_init(loop, &p->timer);
	uv_tcp_init(loop, &p->tcp);
	p->timer.data = p->tcp.data = p->write.data = p;
	p->open_handles = 2;
	http_parser_init(&p->parser, HTTP_RESPONSE);
	p->parser.data = p;
	uv_timer_start(&p->timer, on_timeout, timeout_ms, 0);

	*out = NULL;
	fd = berth_container_connect(c, port, &err);
	if (fd < 0 || uv_tcp_open(&p->tcp, fd) < 0) {
		int r = fd < 0 ? fd : -EBADF;
		if (fd >= 0)
			close(fd);
		p->cb = NULL;
		finish(p, r);
		return r;
	}
	/*
	 * The connection may still be in progress: libuv queues the request
	 * until the socket is writable, and a refused connection comes back as
	 * a write or read error.
	 */
	b = uv_buf_init(p->request, (unsigned)strlen(p->request));
	if (uv_write(&p->write, (uv_stream_t *)&p->tcp, &b, 1, on_written) < 0 ||
	    uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read) < 0) {
		p->cb = NULL;
		finish(p, -ECONNREFUSED);
		return -ECONNREFUSED;
	}
	*out = p;
	return 0;
}

void berthd_probe_cancel(struct berthd_probe *p)
{
	if (p == NULL)
		return;
	p->cb = NULL;
	finish(p, -ECANCELED);
}
