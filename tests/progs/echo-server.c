/*
 * echo-server: the event loop, listeners, connections, buffers and timers.
 * See echo-server.h for how the pieces fit and README.md for the routes.
 *
 * One thread, level-triggered epoll. Each connection's interest set is
 * recomputed after every step from what it can do next, which is also how
 * backpressure works: a connection with a full output buffer stops reading.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "echo-server.h"

#define KIND_LISTENER 1
#define KIND_CONN     2
#define MAX_LISTENERS 16
/* How long a closing connection waits for the peer's FIN or close frame. */
#define LINGER_MS 2000
/* Steps of one connection per wakeup, so one fast stream cannot starve the
 * others; a connection with work left stays writable-ready (busy). */
#define MAX_STEPS 16

struct listener {
	int kind;
	int fd;
	unsigned port;
};

char echo_hostname[256];

static int epfd = -1;
static uint64_t next_conn_id = 1;
static struct echo_conn *timers;
static struct listener listeners[MAX_LISTENERS];
static size_t n_listeners;
/* After EMFILE, accepting is paused until this time, instead of spinning on
 * a listener that stays readable. */
static uint64_t accept_paused_until;

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "echo-server: out of memory\n");
		abort();
	}
	return p;
}

uint64_t echo_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

char *echo_buf_reserve(struct echo_buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return b->data + b->len;
	/* Compacting first keeps a buffer that is drained as fast as it is
	 * filled from growing. */
	if (b->off > 0) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap - b->len < n)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	return b->data + b->len;
}

void echo_buf_append(struct echo_buf *b, const void *data, size_t n)
{
	memcpy(echo_buf_reserve(b, n), data, n);
	b->len += n;
}

void echo_buf_printf(struct echo_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	va_start(ap, fmt);
	vsnprintf(echo_buf_reserve(b, (size_t)n + 1), (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void echo_buf_consume(struct echo_buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

void echo_buf_reset(struct echo_buf *b)
{
	b->off = b->len = 0;
}

void echo_buf_free(struct echo_buf *b)
{
	free(b->data);
	*b = (struct echo_buf){0};
}

void echo_conn_set_timer(struct echo_conn *c, uint64_t ms)
{
	bool armed = c->deadline_ms != 0;

	c->deadline_ms = ms ? echo_now_ms() + ms : 0;
	if (ms && !armed) {
		c->timer_prev = NULL;
		c->timer_next = timers;
		if (timers)
			timers->timer_prev = c;
		timers = c;
	} else if (!ms && armed) {
		if (c->timer_prev)
			c->timer_prev->timer_next = c->timer_next;
		else
			timers = c->timer_next;
		if (c->timer_next)
			c->timer_next->timer_prev = c->timer_prev;
		c->timer_prev = c->timer_next = NULL;
	}
}

static void conn_close(struct echo_conn *c)
{
	echo_conn_set_timer(c, 0);
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->reset) {
		/* A zero linger time makes close() send RST instead of FIN. */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	echo_buf_free(&c->in);
	echo_buf_free(&c->out);
	echo_buf_free(&c->req.json);
	free(c);
}

/* Writes what the socket takes. Returns 1 if it wrote anything, 0 if not,
 * -1 on error. */
static int conn_flush(struct echo_conn *c)
{
	int wrote = 0;

	while (echo_buf_pending(&c->out) > 0) {
		ssize_t n = send(c->fd, c->out.data + c->out.off, echo_buf_pending(&c->out),
		                 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return -1;
		echo_buf_consume(&c->out, (size_t)n);
		wrote = 1;
	}
	return wrote;
}

static int conn_read(struct echo_conn *c)
{
	ssize_t n;

	if (c->state == ECHO_LINGER) {
		char discard[16384];

		n = recv(c->fd, discard, sizeof(discard), 0);
	} else {
		char *p;
		size_t room;

		/* The input buffer never holds more than the head limit: the
		 * protocol code consumes bodies and frames as they arrive, and a
		 * head that fills it is refused. Compact before the tail runs
		 * out so that a head can always use the whole limit. */
		if (c->in.off > 0 && ECHO_HEAD_MAX - c->in.len < 16384) {
			memmove(c->in.data, c->in.data + c->in.off, echo_buf_pending(&c->in));
			c->in.len -= c->in.off;
			c->in.off = 0;
		}
		room = ECHO_HEAD_MAX - c->in.len;
		if (room == 0)
			return 0;
		p = echo_buf_reserve(&c->in, room);
		n = recv(c->fd, p, room, 0);
		if (n > 0)
			c->in.len += (size_t)n;
	}
	if (n == 0)
		c->eof = true;
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -1;
	return 0;
}

static bool conn_wants_read(const struct echo_conn *c)
{
	if (c->eof)
		return false;
	switch (c->state) {
	case ECHO_READ_HEAD:
	case ECHO_READ_BODY:
	case ECHO_WS:
		return echo_buf_pending(&c->out) < ECHO_OUT_HIGH &&
		       c->in.len - c->in.off < ECHO_HEAD_MAX;
	case ECHO_LINGER:
		return true;
	case ECHO_RESPOND:
	case ECHO_DRAIN:
		return false;
	}
	return false;
}

/* Runs the protocol until it waits, flushing as it goes, then decides what
 * to wait for. Returns -1 when the connection should be closed. */
static int conn_step(struct echo_conn *c)
{
	uint32_t events = 0;
	int i, r = 0, w = 0;

	c->busy = false;
	for (i = 0; i < MAX_STEPS; i++) {
		switch (c->state) {
		case ECHO_WS:
			r = echo_ws_advance(c);
			break;
		case ECHO_DRAIN:
		case ECHO_LINGER:
			r = 0;
			break;
		default:
			r = echo_http_advance(c);
			break;
		}
		if (r < 0 || (w = conn_flush(c)) < 0)
			return -1;
		/* Writing may have made room for the protocol to go on. */
		if (r == 0 && w == 0)
			break;
	}
	if (r > 0 || w > 0)
		c->busy = true;
	if (c->state == ECHO_DRAIN && echo_buf_pending(&c->out) == 0) {
		if (c->eof || c->reset)
			return -1;
		/* Half-close and wait for the peer's FIN: closing at once with
		 * its unread bytes queued would reset the connection and could
		 * destroy the response in flight. */
		shutdown(c->fd, SHUT_WR);
		c->state = ECHO_LINGER;
		echo_conn_set_timer(c, LINGER_MS);
	}
	if (c->state == ECHO_LINGER && c->eof)
		return -1;

	if (conn_wants_read(c))
		events |= EPOLLIN;
	if (echo_buf_pending(&c->out) > 0 || c->busy)
		events |= EPOLLOUT;
	if (events != c->events) {
		struct epoll_event ev = {.events = events, .data.ptr = c};

		if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
			return -1;
		c->events = events;
	}
	return 0;
}

static void conn_event(struct echo_conn *c, uint32_t events)
{
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP)) && conn_read(c) < 0) {
		conn_close(c);
		return;
	}
	if (conn_step(c) < 0)
		conn_close(c);
}

static void conn_timer(struct echo_conn *c)
{
	echo_conn_set_timer(c, 0);
	switch (c->state) {
	case ECHO_RESPOND:
		echo_http_timer(c);
		break;
	case ECHO_WS:
	case ECHO_LINGER:
		/* The peer did not finish a close handshake in time. */
		conn_close(c);
		return;
	default:
		break;
	}
	if (conn_step(c) < 0)
		conn_close(c);
}

static void set_listeners_enabled(bool enabled)
{
	size_t i;

	for (i = 0; i < n_listeners; i++) {
		struct epoll_event ev = {.events = enabled ? EPOLLIN : 0,
		                         .data.ptr = &listeners[i]};

		epoll_ctl(epfd, EPOLL_CTL_MOD, listeners[i].fd, &ev);
	}
}

static void accept_conns(struct listener *l)
{
	int i;

	for (i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct epoll_event ev;
		struct echo_conn *c;
		int one = 1;
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				fprintf(stderr, "echo-server: accept: %s; pausing\n",
				        strerror(errno));
				set_listeners_enabled(false);
				accept_paused_until = echo_now_ms() + 100;
			}
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = xrealloc(NULL, sizeof(*c));
		*c = (struct echo_conn){.kind = KIND_CONN, .fd = fd, .port = l->port};
		c->id = next_conn_id++;
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->remote,
			          sizeof(c->remote));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->remote,
			          sizeof(c->remote));
		c->events = EPOLLIN;
		ev = (struct epoll_event){.events = c->events, .data.ptr = c};
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
		}
	}
}

static int open_listener(const char *addr, unsigned port, struct listener *l)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int one = 1, fd;

	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		len = sizeof(*sin6);
	} else {
		fprintf(stderr, "echo-server: --bind `%s`: not an IPv4 or IPv6 address\n", addr);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		fprintf(stderr, "echo-server: listen on %s port %u: %s\n", addr, port,
		        strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Port 0 asks the kernel for one; report the port it chose. */
	l->port = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
	l->fd = fd;
	l->kind = KIND_LISTENER;
	return 0;
}

static int next_timeout(void)
{
	uint64_t now = echo_now_ms(), first = UINT64_MAX;
	struct echo_conn *c;

	if (accept_paused_until)
		first = accept_paused_until;
	for (c = timers; c; c = c->timer_next) {
		if (c->deadline_ms < first)
			first = c->deadline_ms;
	}
	if (first == UINT64_MAX)
		return -1;
	return first <= now ? 0 : (int)(first - now > 60000 ? 60000 : first - now);
}

static void run_timers(void)
{
	uint64_t now = echo_now_ms();
	struct echo_conn *c, *next;

	if (accept_paused_until && accept_paused_until <= now) {
		accept_paused_until = 0;
		set_listeners_enabled(true);
	}
	/* A fired timer may close its connection or re-arm it (moving it to
	 * the head of the list), so fetch the successor first. */
	for (c = timers; c; c = next) {
		next = c->timer_next;
		if (c->deadline_ms <= now)
			conn_timer(c);
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: echo-server [--bind ADDR] [--port N]...\n"
	           "  --bind ADDR   IPv4 or IPv6 address to listen on (default 127.0.0.1)\n"
	           "  --port N      port to listen on; repeatable; 0 picks a free one "
	           "(default 8080)\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
	        {"port", required_argument, NULL, 'p'},
	        {"bind", required_argument, NULL, 'b'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	unsigned ports[MAX_LISTENERS];
	size_t n_ports = 0, i;
	const char *bind_addr = "127.0.0.1";
	struct rlimit rl;
	int opt;

	while ((opt = getopt_long(argc, argv, "p:b:h", options, NULL)) != -1) {
		char *end;
		unsigned long port;

		switch (opt) {
		case 'p':
			errno = 0;
			port = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || port > 65535) {
				fprintf(stderr, "echo-server: --port `%s`: not a port number\n",
				        optarg);
				return 2;
			}
			if (n_ports == MAX_LISTENERS) {
				fprintf(stderr, "echo-server: at most %d ports\n", MAX_LISTENERS);
				return 2;
			}
			ports[n_ports++] = (unsigned)port;
			break;
		case 'b':
			bind_addr = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (n_ports == 0)
		ports[n_ports++] = 8080;

	signal(SIGPIPE, SIG_IGN);
	/* Connection-count tests need more than the default 1024 descriptors. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (gethostname(echo_hostname, sizeof(echo_hostname) - 1) < 0)
		strcpy(echo_hostname, "unknown");

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		fprintf(stderr, "echo-server: epoll_create1: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < n_ports; i++) {
		struct listener *l = &listeners[n_listeners];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};

		if (open_listener(bind_addr, ports[i], l) < 0)
			return 1;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
			fprintf(stderr, "echo-server: epoll_ctl: %s\n", strerror(errno));
			return 1;
		}
		n_listeners++;
	}
	for (i = 0; i < n_listeners; i++)
		printf("listening on %u\n", listeners[i].port);
	fflush(stdout);

	for (;;) {
		struct epoll_event events[256];
		int n = epoll_wait(epfd, events, 256, next_timeout()), k;

		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "echo-server: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (k = 0; k < n; k++) {
			int *kind = events[k].data.ptr;

			if (*kind == KIND_LISTENER)
				accept_conns(events[k].data.ptr);
			else
				conn_event(events[k].data.ptr, events[k].events);
		}
		run_timers();
	}
}
