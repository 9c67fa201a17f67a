/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `berth run --publish`: a TCP forwarder from a host address into the
 * container's network namespace. Each accepted connection gets its own
 * connection inside the namespace; bytes are copied both ways with
 * backpressure (reading from one side stops while the other side's write
 * queue is above a bound) and half-closes are passed on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/parse.h"
#include "berth/runtime.h"
#include "berth/util.h"
#include "cli.h"

#define BUF_SIZE       (64 * 1024)
#define HIGH_WATERMARK (256 * 1024)
#define MAX_LISTENERS  16

struct listener {
	uv_tcp_t tcp;
	struct berth_container *c;
	uint16_t port;
};

struct side {
	uv_tcp_t tcp;
	struct link *link;
	struct side *peer;
	bool eof;  /* it said it will send no more */
	bool shut; /* we told it we will send no more */
	bool reading;
	bool closed;
};

struct link {
	struct side a, b;
	int open_handles;
	struct link *prev, *next; /* all open links, to close them when the container ends */
};

struct write_req {
	uv_write_t req;
	struct side *to;
	char *buf;
};

static struct listener *listeners[MAX_LISTENERS];
static size_t nlisteners;
static struct link *links;

int berth_publish_parse(const char *s, struct berth_publish *p, char *msg, size_t msglen)
{
	cleanup_free char *copy = xstrdup(s);
	char *last = strrchr(copy, ':');
	char *host_port, *addr = NULL;
	uint64_t hp, cp;
	struct in_addr a4;
	struct in6_addr a6;

	if (last == NULL)
		goto bad;
	*last = '\0';
	host_port = strrchr(copy, ':');
	if (host_port != NULL) {
		*host_port++ = '\0';
		addr = copy;
		/* [::1]:8080:80 */
		if (addr[0] == '[' && addr[strlen(addr) - 1] == ']') {
			addr[strlen(addr) - 1] = '\0';
			addr++;
		}
	} else {
		host_port = copy;
	}
	if (berth_parse_u64(host_port, 1, 65535, &hp, NULL) < 0 ||
	    berth_parse_u64(last + 1, 1, 65535, &cp, NULL) < 0)
		goto bad;
	if (addr == NULL || *addr == '\0')
		addr = (char *)"127.0.0.1";
	if (inet_pton(AF_INET, addr, &a4) != 1 && inet_pton(AF_INET6, addr, &a6) != 1) {
		snprintf(msg, msglen, "--publish `%s`: `%s` is not an IP address", s, addr);
		return -EINVAL;
	}
	snprintf(p->host_addr, sizeof(p->host_addr), "%s", addr);
	p->host_port = (uint16_t)hp;
	p->container_port = (uint16_t)cp;
	return 0;
bad:
	snprintf(msg, msglen, "--publish `%s`: use [ADDR:]HOST_PORT:CONTAINER_PORT", s);
	return -EINVAL;
}

static void on_side_closed(uv_handle_t *h)
{
	struct side *s = h->data;
	struct link *l = s->link;

	if (--l->open_handles > 0)
		return;
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		links = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	free(l);
}

static void close_link(struct link *l)
{
	struct side *sides[2] = {&l->a, &l->b};
	for (int i = 0; i < 2; i++) {
		if (!sides[i]->closed) {
			sides[i]->closed = true;
			uv_close((uv_handle_t *)&sides[i]->tcp, on_side_closed);
		}
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = xmalloc(BUF_SIZE);
	buf->len = BUF_SIZE;
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf);

static void maybe_done(struct link *l)
{
	/* Both directions finished: nothing more will flow. */
	if (l->a.eof && l->b.eof && l->a.shut && l->b.shut)
		close_link(l);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct side *s = req->data;
	(void)status;
	free(req);
	if (!s->closed)
		maybe_done(s->link);
}

static void shut(struct side *s)
{
	uv_shutdown_t *req;

	if (s->shut || s->closed)
		return;
	s->shut = true;
	req = xmalloc(sizeof(*req));
	req->data = s;
	if (uv_shutdown(req, (uv_stream_t *)&s->tcp, on_shutdown) < 0) {
		free(req);
		close_link(s->link);
	}
}

static void on_write(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct side *to = w->to;

	free(w->buf);
	free(w);
	if (to->closed)
		return;
	if (status < 0) {
		close_link(to->link);
		return;
	}
	/* Drained below the mark: the other side may send again. */
	if (!to->peer->reading && !to->peer->eof && to->tcp.write_queue_size < HIGH_WATERMARK / 2) {
		to->peer->reading = true;
		uv_read_start((uv_stream_t *)&to->peer->tcp, on_alloc, on_read);
	}
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct side *from = stream->data;
	struct side *to = from->peer;

	if (n == 0) {
		free(buf->base);
		return;
	}
	if (n < 0) {
		free(buf->base);
		if (n != UV_EOF) {
			close_link(from->link);
			return;
		}
		from->eof = true;
		from->reading = false;
		uv_read_stop(stream);
		shut(to);
		maybe_done(from->link);
		return;
	}
	{
		struct write_req *w = xmalloc(sizeof(*w));
		uv_buf_t out = uv_buf_init(buf->base, (unsigned)n);

		w->to = to;
		w->buf = buf->base;
		if (uv_write(&w->req, (uv_stream_t *)&to->tcp, &out, 1, on_write) < 0) {
			free(w->buf);
			free(w);
			close_link(from->link);
			return;
		}
	}
	if (to->tcp.write_queue_size > HIGH_WATERMARK) {
		from->reading = false;
		uv_read_stop(stream);
	}
}

static void side_init(struct link *l, struct side *s, struct side *peer)
{
	s->link = l;
	s->peer = peer;
	s->tcp.data = s;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *ls = server->data;
	struct link *l;
	berth_error_t err;
	int fd;

	if (status < 0)
		return;
	l = xcalloc(1, sizeof(*l));
	l->next = links;
	if (links != NULL)
		links->prev = l;
	links = l;
	side_init(l, &l->a, &l->b);
	side_init(l, &l->b, &l->a);
	uv_tcp_init(server->loop, &l->a.tcp);
	l->open_handles = 1;
	if (uv_accept(server, (uv_stream_t *)&l->a.tcp) < 0) {
		l->b.closed = true;
		close_link(l);
		return;
	}
	uv_tcp_init(server->loop, &l->b.tcp);
	l->open_handles = 2;
	fd = berth_container_connect(ls->c, ls->port, &err);
	if (fd < 0 || uv_tcp_open(&l->b.tcp, fd) < 0) {
		if (fd >= 0)
			close(fd);
		close_link(l);
		return;
	}
	/*
	 * The connection inside the namespace may still be in progress; libuv
	 * queues writes until the socket is writable and reports a refused
	 * connection as a read error, which closes both sides.
	 */
	l->a.reading = l->b.reading = true;
	uv_read_start((uv_stream_t *)&l->a.tcp, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&l->b.tcp, on_alloc, on_read);
}

int berth_forward_start(uv_loop_t *loop, struct berth_container *c, const struct berth_publish *p)
{
	struct sockaddr_storage sa;
	struct listener *ls;
	int r;

	if (nlisteners == MAX_LISTENERS)
		return UV_ENOSPC;
	if (uv_ip4_addr(p->host_addr, p->host_port, (struct sockaddr_in *)&sa) < 0 &&
	    uv_ip6_addr(p->host_addr, p->host_port, (struct sockaddr_in6 *)&sa) < 0)
		return UV_EINVAL;
	ls = xcalloc(1, sizeof(*ls));
	ls->c = c;
	ls->port = p->container_port;
	uv_tcp_init(loop, &ls->tcp);
	ls->tcp.data = ls;
	r = uv_tcp_bind(&ls->tcp, (struct sockaddr *)&sa, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&ls->tcp, 128, on_connection);
	listeners[nlisteners++] = ls;
	return r;
}

static void on_listener_closed(uv_handle_t *h)
{
	free(h->data);
}

void berth_forward_close_all(void)
{
	for (size_t i = 0; i < nlisteners; i++)
		if (!uv_is_closing((uv_handle_t *)&listeners[i]->tcp))
			uv_close((uv_handle_t *)&listeners[i]->tcp, on_listener_closed);
	nlisteners = 0;
	for (struct link *l = links; l != NULL; l = l->next)
		close_link(l);
}
