/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An HTTP/1.1 load generator for berth's benchmarks that speaks over a unix
 * socket as well as TCP (wrk speaks TCP only, and curl in a loop measures
 * curl's start-up, not the server).
 *
 *   loadgen (-u SOCKET | -t HOST:PORT) [-c CONNS] [-d SECONDS] [-m METHOD] [-b JSON]
 *           [-n N] [-o] PATH
 *
 * Timed mode (default): CONNS keep-alive connections, one request in flight
 * on each (no pipelining), for SECONDS; requests still in flight at the end
 * are not counted. A `%u` in PATH becomes a random number in [0, N) for
 * every request, so lookups spread over N names.
 *
 * Once mode (-o): N requests, the i-th with `%u` = i, each on a connection
 * of its own, all sent at once; the run ends when every one is answered (or
 * after SECONDS). The wall time is from the first connect to the last answer.
 *
 * Output, one line of key=value pairs for scripts:
 *   requests= errors= seconds= rps= p50_ms= p99_ms= max_ms= status=200:N,...
 * `errors` counts broken connections and unparsable answers; every status
 * answered is listed, so a 5xx is never mistaken for throughput.
 * Latency is from the request's first byte sent to its answer's last byte read.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

#include "berth/error.h"
#include "berth/parse.h"
#include "berth/util.h"

#define MAX_CONNS    10000
#define MAX_SAMPLES  (32u << 20) /* latencies kept (256 MiB); more are counted, not kept */
#define REQ_MAX      1024
#define READ_BUF     65536
#define STATUS_CODES 600

struct conn {
	int fd;
	http_parser parser;
	char req[REQ_MAX];
	size_t req_len, sent;
	uint64_t started_ns;
	bool done; /* the answer's last byte arrived */
	bool keep; /* the answer allows another request on this connection */
};

static struct {
	const char *unix_path;
	struct sockaddr_in tcp;
	const char *method, *path;
	const char *body; /* -b: a JSON body for every request */
	uint64_t conns, seconds, n;
	bool once;
	/* results */
	uint64_t *lat_ns;
	size_t n_lat, cap_lat;
	uint64_t requests, errors;
	uint64_t status[STATUS_CODES];
	int epfd;
} g = {.method = "GET", .conns = 16, .seconds = 5, .n = 1};

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "loadgen: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(2);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: loadgen (-u SOCKET | -t HOST:PORT) [-c CONNS] [-d SECONDS] [-m METHOD]\n"
	           "               [-n N] [-o] PATH\n"
	           "  -c CONNS    keep-alive connections, one request in flight each (16)\n"
	           "  -d SECONDS  duration of a timed run; the time limit of a once run (5)\n"
	           "  -m METHOD   GET (default), POST (with an empty body), ...\n"
	           "  -b JSON     send JSON as every request's body (with -m POST)\n"
	           "  -n N        %%u in PATH ranges over [0, N) (1)\n"
	           "  -o          once: N requests on N connections at once, until all answered\n");
}

/* Random numbers for names: xorshift64*, seeded from getrandom(). */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static void build_request(struct conn *c, uint64_t number)
{
	char path[512];
	const char *mark = strstr(g.path, "%u");
	int n;

	if (mark != NULL)
		n = snprintf(path, sizeof(path), "%.*s%llu%s", (int)(mark - g.path), g.path,
		             (unsigned long long)number, mark + 2);
	else
		n = snprintf(path, sizeof(path), "%s", g.path);
	if (n < 0 || (size_t)n >= sizeof(path))
		die("path too long: %s", g.path);
	if (g.body != NULL)
		n = snprintf(c->req, sizeof(c->req),
		             "%s %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
		             "Content-Length: %zu\r\n\r\n%s",
		             g.method, path, strlen(g.body), g.body);
	else
		n = snprintf(c->req, sizeof(c->req), "%s %s HTTP/1.1\r\nHost: bench\r\n%s\r\n",
		             g.method, path,
		             strcmp(g.method, "GET") == 0 ? "" : "Content-Length: 0\r\n");
	if (n < 0 || (size_t)n >= sizeof(c->req))
		die("request too long: %s", g.path);
	c->req_len = (size_t)n;
	c->sent = 0;
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->done = true;
	c->keep = http_should_keep_alive(p) != 0;
	/* One answer per request: stop here, whatever else the buffer holds. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {.on_message_complete = on_message_complete};

static int open_conn(struct conn *c)
{
	int fd;

	if (g.unix_path != NULL) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", g.unix_path);
		/* Blocking connect: a full backlog waits instead of failing with EAGAIN. */
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			goto fail;
	} else {
		int one = 1;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&g.tcp, sizeof(g.tcp)) < 0)
			goto fail;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		goto fail;
	c->fd = fd;
	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
	if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	return 0;
fail:
	berth_close_keep_errno(fd);
	return -errno;
}

static void close_conn(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
}

/* Write what is left of the request; 0, or -1 when the connection broke. */
static int flush_request(struct conn *c)
{
	while (c->sent < c->req_len) {
		ssize_t w = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->sent += (size_t)w;
	}
	return 0;
}

static int send_request(struct conn *c, uint64_t number)
{
	build_request(c, number);
	c->done = false;
	c->started_ns = now_ns();
	return flush_request(c);
}

static void record(struct conn *c, uint64_t end_ns)
{
	unsigned status = c->parser.status_code;

	g.requests++;
	g.status[status < STATUS_CODES ? status : 0]++;
	if (g.n_lat == g.cap_lat && g.cap_lat < MAX_SAMPLES) {
		g.cap_lat = g.cap_lat ? g.cap_lat * 2 : 65536;
		g.lat_ns = xrealloc(g.lat_ns, g.cap_lat * sizeof(*g.lat_ns));
	}
	if (g.n_lat < g.cap_lat)
		g.lat_ns[g.n_lat++] = end_ns - c->started_ns;
}

/*
 * Read and parse what arrived. Returns 1 when an answer is complete, 0 when
 * more is to come, -1 when the connection broke (EOF or a parse error).
 */
static int read_answer(struct conn *c)
{
	static char buf[READ_BUF];

	for (;;) {
		ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
		if (r < 0)
			return errno == EAGAIN ? 0 : -1;
		if (r == 0) {
			/* EOF ends an answer without a length; otherwise it broke. */
			http_parser_execute(&c->parser, &parser_settings, buf, 0);
			return c->done ? 1 : -1;
		}
		size_t used = http_parser_execute(&c->parser, &parser_settings, buf, (size_t)r);
		if (c->done) {
			/* Bytes past the answer: the server sent what was never asked for. */
			if (used < (size_t)r)
				return -1;
			http_parser_pause(&c->parser, 0);
			return 1;
		}
		if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
			return -1;
	}
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double percentile_ms(double p)
{
	if (g.n_lat == 0)
		return 0;
	size_t i = (size_t)(p * (double)(g.n_lat - 1) + 0.5);
	return (double)g.lat_ns[i] / 1e6;
}

static void report(double seconds)
{
	qsort(g.lat_ns, g.n_lat, sizeof(*g.lat_ns), compare_u64);
	printf("requests=%llu errors=%llu seconds=%.3f rps=%.0f p50_ms=%.3f p99_ms=%.3f "
	       "max_ms=%.3f status=",
	       (unsigned long long)g.requests, (unsigned long long)g.errors, seconds,
	       seconds > 0 ? (double)g.requests / seconds : 0, percentile_ms(0.50),
	       percentile_ms(0.99), percentile_ms(1.0));
	const char *sep = "";
	for (unsigned s = 0; s < STATUS_CODES; s++)
		if (g.status[s] > 0) {
			printf("%s%u:%llu", sep, s, (unsigned long long)g.status[s]);
			sep = ",";
		}
	printf("%s\n", *sep ? "" : "none");
}

static void parse_args(int argc, char **argv)
{
	const char *tcp = NULL;
	berth_error_t err;
	int opt;

	while ((opt = getopt(argc, argv, "u:t:c:d:m:b:n:oh")) != -1) {
		switch (opt) {
		case 'u':
			g.unix_path = optarg;
			if (strlen(optarg) >= sizeof(((struct sockaddr_un *)0)->sun_path))
				die("-u: socket path too long: %s", optarg);
			break;
		case 't':
			tcp = optarg;
			break;
		case 'c':
			if (berth_parse_u64(optarg, 1, MAX_CONNS, &g.conns, &err) < 0)
				die("-c: %s", err.message);
			break;
		case 'd':
			if (berth_parse_u64(optarg, 1, 3600, &g.seconds, &err) < 0)
				die("-d: %s", err.message);
			break;
		case 'm':
			g.method = optarg;
			break;
		case 'b':
			g.body = optarg;
			break;
		case 'n':
			if (berth_parse_u64(optarg, 1, UINT32_MAX, &g.n, &err) < 0)
				die("-n: %s", err.message);
			break;
		case 'o':
			g.once = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc - 1 || (g.unix_path == NULL) == (tcp == NULL)) {
		usage(stderr);
		exit(2);
	}
	g.path = argv[optind];
	if (g.path[0] != '/')
		die("PATH must start with /: %s", g.path);
	if (tcp != NULL) {
		const char *colon = strrchr(tcp, ':');
		uint64_t port;
		char host[64];
		if (colon == NULL || (size_t)(colon - tcp) >= sizeof(host))
			die("-t: expected HOST:PORT, got `%s`", tcp);
		snprintf(host, sizeof(host), "%.*s", (int)(colon - tcp), tcp);
		if (berth_parse_u64(colon + 1, 1, 65535, &port, &err) < 0)
			die("-t: %s", err.message);
		g.tcp.sin_family = AF_INET;
		g.tcp.sin_port = htons((uint16_t)port);
		/* Loopback only: these benchmarks never send traffic off the machine. */
		if (inet_pton(AF_INET, host, &g.tcp.sin_addr) != 1 ||
		    (ntohl(g.tcp.sin_addr.s_addr) >> 24) != 127)
			die("-t: not a loopback IPv4 address: %s", host);
	}
	if (g.once && g.n > MAX_CONNS)
		die("-o: at most 10000 requests at once (%s)", "-n");
}

int main(int argc, char **argv)
{
	struct epoll_event events[256];
	struct conn *conns;
	uint64_t start, deadline, end, answered = 0;
	size_t n_conns;

	parse_args(argc, argv);
	if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state) || rng_state == 0)
		rng_state = 0x9E3779B97F4A7C15ull;
	g.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (g.epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	n_conns = g.once ? g.n : g.conns;
	conns = xcalloc(n_conns, sizeof(*conns));

	start = now_ns();
	deadline = start + g.seconds * 1000000000u;
	for (size_t i = 0; i < n_conns; i++) {
		struct conn *c = &conns[i];
		int r = open_conn(c);
		if (r < 0)
			die("connect: %s", strerror(-r));
		if (send_request(c, g.once ? i : rng_next() % g.n) < 0) {
			g.errors++;
			close_conn(c);
		}
	}

	for (;;) {
		uint64_t now = now_ns();
		if (now >= deadline || (g.once && answered + g.errors >= n_conns))
			break;
		int timeout = (int)((deadline - now) / 1000000u) + 1;
		int n = epoll_wait(g.epfd, events, (int)BERTH_ARRAY_SIZE(events), timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int e = 0; e < n; e++) {
			struct conn *c = events[e].data.ptr;
			int r = 0;

			if (c->fd < 0)
				continue;
			if (events[e].events & EPOLLOUT)
				r = flush_request(c);
			if (r == 0 && (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				r = read_answer(c);
			if (r == 1) {
				uint64_t t = now_ns();
				record(c, t);
				answered++;
				if (g.once || t >= deadline) {
					close_conn(c);
					continue;
				}
				if (!c->keep) {
					close_conn(c);
					if (open_conn(c) < 0) {
						g.errors++;
						continue;
					}
				}
				r = send_request(c, rng_next() % g.n);
			}
			if (r < 0) {
				g.errors++;
				close_conn(c);
				if (g.once)
					continue;
				/* A timed run goes on with a fresh connection. */
				if (open_conn(c) == 0 && send_request(c, rng_next() % g.n) == 0)
					continue;
				close_conn(c);
			}
		}
	}
	end = now_ns();
	if (g.once)
		/* Requests never answered in time count as errors. */
		g.errors = n_conns - answered;
	report((double)(end - start) / 1e9);
	for (size_t i = 0; i < n_conns; i++)
		close_conn(&conns[i]);
	free(conns);
	free(g.lat_ns);
	return 0;
}
