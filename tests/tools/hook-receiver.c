/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hook-receiver: the webhook receiver of the end-to-end tests. Listens on
 * 127.0.0.1 on a free port (written to --port-file once it listens), reads
 * one HTTP/1.1 request per connection, logs it as one JSON line
 * {"n", "ms", "status", "method", "target", "headers": {lowercase: value},
 * "body"} (ms: when it arrived, milliseconds since the epoch)
 * to --log (before answering, so a sender that saw the answer finds the
 * line), and answers with `Connection: close`:
 *
 *   --fail K            the first K requests get --fail-status (default 500)
 *   --retry-after S     failures carry `Retry-After: S`
 *   --hang              never answer (connections are held open)
 *
 * One connection at a time; a request must arrive within 5 s and fit in
 * 64 KiB. Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX 65536
#define HELD_MAX    256

static void die(const char *what)
{
	fprintf(stderr, "hook-receiver: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: hook-receiver --port-file FILE --log FILE [--fail K] "
	                "[--fail-status CODE] [--retry-after S] [--hang]\n");
	exit(2);
}

static unsigned long number(const char *flag, const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max) {
		fprintf(stderr, "hook-receiver: %s: `%s` is not a number up to %lu\n", flag, s,
		        max);
		exit(2);
	}
	return v;
}

/* Read one request into buf; its length, or 0 when it did not come whole. */
static size_t read_request(int fd, char *buf, size_t cap, size_t *head_len)
{
	size_t len = 0, want = 0;

	for (;;) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		char *end;

		if (n <= 0)
			return 0;
		len += (size_t)n;
		buf[len] = '\0';
		if (want == 0 && (end = strstr(buf, "\r\n\r\n")) != NULL) {
			const char *cl = NULL;

			*head_len = (size_t)(end - buf) + 4;
			for (char *line = strstr(buf, "\r\n"); line != NULL && line < end;
			     line = strstr(line + 2, "\r\n"))
				if (strncasecmp(line + 2, "content-length:", 15) == 0)
					cl = line + 17;
			want = *head_len + (cl != NULL ? strtoul(cl, NULL, 10) : 0);
			if (want >= cap)
				return 0;
		}
		if (want != 0 && len >= want)
			return want;
		if (len == cap - 1)
			return 0;
	}
}

/* The request as a JSON object (new reference). */
static json_t *parse(char *buf, size_t head_len, size_t len)
{
	json_t *headers = json_object();
	char *line = buf, *next;
	char method[16] = "", target[1024] = "";

	buf[head_len - 2] = '\0'; /* the head ends with its last CRLF */
	next = strstr(line, "\r\n");
	if (next != NULL)
		*next = '\0';
	sscanf(line, "%15s %1023s", method, target);
	while (next != NULL) {
		char *colon;

		line = next + 2;
		next = strstr(line, "\r\n");
		if (next != NULL)
			*next = '\0';
		colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		for (char *c = line; *c != '\0'; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
		for (colon++; *colon == ' ' || *colon == '\t'; colon++)
			;
		json_object_set_new(headers, line, json_string(colon));
	}
	return json_pack("{s:s, s:s, s:o, s:s#}", "method", method, "target", target, "headers",
	                 headers, "body", buf + head_len, (size_t)(len - head_len));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"port-file", required_argument, NULL, 'p'},
	        {"log", required_argument, NULL, 'l'},
	        {"fail", required_argument, NULL, 'f'},
	        {"fail-status", required_argument, NULL, 's'},
	        {"retry-after", required_argument, NULL, 'r'},
	        {"hang", no_argument, NULL, 'H'},
	        {NULL, 0, NULL, 0},
	};
	const char *port_file = NULL, *log_path = NULL, *retry_after = NULL;
	unsigned long fail = 0, fail_status = 500, n = 0;
	bool hang = false;
	int held[HELD_MAX], n_held = 0;
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);
	int opt, lfd, log_fd;
	FILE *f;
	char tmp[4096];

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			port_file = optarg;
			break;
		case 'l':
			log_path = optarg;
			break;
		case 'f':
			fail = number("--fail", optarg, 1000000);
			break;
		case 's':
			fail_status = number("--fail-status", optarg, 599);
			if (fail_status < 100)
				usage();
			break;
		case 'r':
			number("--retry-after", optarg, 1000000);
			retry_after = optarg;
			break;
		case 'H':
			hang = true;
			break;
		default:
			usage();
		}
	}
	if (port_file == NULL || log_path == NULL || optind != argc)
		usage();

	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd < 0)
		die(log_path);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0)
		die("listen on 127.0.0.1");
	/* The port appears whole or not at all. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%u\n", ntohs(addr.sin_port)) < 0 || fclose(f) != 0 ||
	    rename(tmp, port_file) < 0)
		die(port_file);

	for (;;) {
		static char buf[REQUEST_MAX];
		struct timeval tv = {.tv_sec = 5};
		struct timespec now;
		size_t head_len = 0, len;
		unsigned long status;
		json_t *req;
		char *line;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		len = read_request(fd, buf, sizeof(buf), &head_len);
		if (len == 0) {
			close(fd);
			continue;
		}
		clock_gettime(CLOCK_REALTIME, &now);
		n++;
		status = hang ? 0 : n <= fail ? fail_status : 200;
		req = parse(buf, head_len, len);
		json_object_set_new(req, "n", json_integer((json_int_t)n));
		json_object_set_new(
		        req, "ms",
		        json_integer((json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000));
		json_object_set_new(req, "status", json_integer((json_int_t)status));
		line = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(req);
		if (line == NULL || dprintf(log_fd, "%s\n", line) < 0)
			die(log_path);
		free(line);
		if (hang) {
			if (n_held == HELD_MAX) {
				close(held[0]);
				memmove(held, held + 1, (HELD_MAX - 1) * sizeof(int));
				n_held--;
			}
			held[n_held++] = fd;
			continue;
		}
		snprintf(
		        tmp, sizeof(tmp),
		        "HTTP/1.1 %lu Hook\r\nContent-Length: 0\r\nConnection: close\r\n%s%s%s\r\n",
		        status, status != 200 && retry_after != NULL ? "Retry-After: " : "",
		        status != 200 && retry_after != NULL ? retry_after : "",
		        status != 200 && retry_after != NULL ? "\r\n" : "");
		if (write(fd, tmp, strlen(tmp)) < 0)
			fprintf(stderr, "hook-receiver: answer request %lu: %s\n", n,
			        strerror(errno));
		close(fd);
	}
}
