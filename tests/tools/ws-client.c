/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small WebSocket client for the proxy's end-to-end tests (there is no
 * websocat or python here). Blocking sockets, one connection:
 *
 *   ws-client HOST PORT PATH [MESSAGES [INTERVAL_MS]]
 *
 * HOST is an IPv4 address, or the path of a unix socket (starting with
 * `/`; PORT is then only what the Host header says).
 *
 * Sends the upgrade request; prints `status N` (the answer's status); on
 * 101 sends MESSAGES (default 3) text messages `message-I`, INTERVAL_MS
 * apart (default 0), prints `echo: TEXT` for each echo, then sends a close
 * frame and prints `closed CODE` when the server's close arrives, or
 * `eof` when the connection ends without one. Exit 0 when every message
 * came back and the close handshake completed. $WS_CLIENT_HEADER, if set,
 * is one more header line for the upgrade request (e.g. Authorization).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	char *c = p;
	while (n > 0) {
		ssize_t r = read(fd, c, n);
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/* A masked frame from the client (RFC 6455 5.3); the mask need not be random here. */
static int send_frame(int fd, int opcode, const void *data, size_t len)
{
	unsigned char h[14], mask[4] = {0x12, 0x34, 0x56, 0x78};
	size_t hl = 0;
	unsigned char *buf;
	int r;

	h[hl++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		h[hl++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		h[hl++] = 0x80 | 126;
		h[hl++] = (unsigned char)(len >> 8);
		h[hl++] = (unsigned char)len;
	} else {
		h[hl++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			h[hl++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	memcpy(h + hl, mask, 4);
	hl += 4;
	buf = malloc(hl + len);
	if (buf == NULL)
		return -1;
	memcpy(buf, h, hl);
	for (size_t i = 0; i < len; i++)
		buf[hl + i] = ((const unsigned char *)data)[i] ^ mask[i % 4];
	r = write_all(fd, buf, hl + len);
	free(buf);
	return r;
}

/* One frame from the server (unmasked); its payload into a malloc'd buffer. */
static int recv_frame(int fd, int *opcode, unsigned char **data, size_t *len)
{
	unsigned char h[2], ext[8];
	uint64_t n;

	if (read_all(fd, h, 2) < 0)
		return -1;
	*opcode = h[0] & 0x0f;
	n = h[1] & 0x7f;
	if (n == 126) {
		if (read_all(fd, ext, 2) < 0)
			return -1;
		n = (uint64_t)ext[0] << 8 | ext[1];
	} else if (n == 127) {
		if (read_all(fd, ext, 8) < 0)
			return -1;
		n = 0;
		for (int i = 0; i < 8; i++)
			n = n << 8 | ext[i];
	}
	if (n > 16 * 1024 * 1024)
		return -1;
	*data = malloc(n + 1);
	if (*data == NULL || read_all(fd, *data, n) < 0)
		return -1;
	(*data)[n] = '\0';
	*len = n;
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	char req[2048], head[8192];
	const char *extra;
	size_t hl = 0;
	int fd, messages, interval_ms, status = 0, ok = 0;

	if (argc < 4) {
		fprintf(stderr, "usage: ws-client HOST PORT PATH [MESSAGES [INTERVAL_MS]]\n");
		return 2;
	}
	messages = argc > 4 ? atoi(argv[4]) : 3;
	interval_ms = argc > 5 ? atoi(argv[5]) : 0;
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	if (argv[1][0] == '/') {
		if (strlen(argv[1]) >= sizeof(su.sun_path)) {
			fprintf(stderr, "ws-client: %s: socket path too long\n", argv[1]);
			return 2;
		}
		strcpy(su.sun_path, argv[1]);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&su, sizeof(su)) < 0) {
			perror("ws-client: connect");
			return 1;
		}
	} else {
		if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
			fprintf(stderr, "ws-client: %s is not an IPv4 address\n", argv[1]);
			return 2;
		}
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("ws-client: connect");
			return 1;
		}
	}
	extra = getenv("WS_CLIENT_HEADER");
	if (snprintf(req, sizeof(req),
	             "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: "
	             "Upgrade\r\n"
	             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	             "%s%s\r\n",
	             argv[3], argv[1][0] == '/' ? "berth" : argv[1], argv[2],
	             extra != NULL ? extra : "", extra != NULL ? "\r\n" : "") >= (int)sizeof(req)) {
		fprintf(stderr, "ws-client: the request is too long\n");
		return 2;
	}
	if (write_all(fd, req, strlen(req)) < 0)
		return 1;
	/* The answer's head, byte by byte so no frame byte is read with it. */
	while (hl < sizeof(head) - 1) {
		if (read(fd, head + hl, 1) != 1)
			break;
		hl++;
		if (hl >= 4 && memcmp(head + hl - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	head[hl] = '\0';
	sscanf(head, "HTTP/1.%*d %d", &status);
	printf("status %d\n", status);
	fflush(stdout);
	if (status != 101)
		return 1;
	for (int i = 0; i < messages; i++) {
		char msg[64];
		unsigned char *data;
		size_t len;
		int op;

		if (i > 0 && interval_ms > 0) {
			struct timespec ts = {interval_ms / 1000,
			                      (long)(interval_ms % 1000) * 1000000};
			nanosleep(&ts, NULL);
		}
		snprintf(msg, sizeof(msg), "message-%d", i);
		if (send_frame(fd, 1, msg, strlen(msg)) < 0 ||
		    recv_frame(fd, &op, &data, &len) < 0) {
			printf("eof\n");
			return 1;
		}
		printf("echo: %s\n", data);
		fflush(stdout);
		ok += op == 1 && strcmp((char *)data, msg) == 0;
		free(data);
	}
	{
		unsigned char code[2] = {0x03, 0xe8}, *data;
		size_t len;
		int op;

		send_frame(fd, 8, code, 2);
		if (recv_frame(fd, &op, &data, &len) < 0 || op != 8) {
			printf("eof\n");
			return 1;
		}
		printf("closed %d\n", len >= 2 ? data[0] << 8 | data[1] : 0);
		free(data);
	}
	/* After the close handshake the server closes the connection: EOF. */
	{
		char b;
		if (read(fd, &b, 1) != 0)
			return 1;
	}
	close(fd);
	return ok == messages ? 0 : 1;
}
