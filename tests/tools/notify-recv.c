/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify-recv SOCKET FILE: a stand-in for systemd's notify socket. Binds a
 * unix datagram socket at SOCKET and appends each datagram to FILE as one
 * line: the receive time (CLOCK_MONOTONIC, milliseconds), the sender's pid
 * (pid=N, from SCM_CREDENTIALS, as systemd's NotifyAccess=main checks it),
 * then the datagram's assignments, tab-separated. Runs until killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "notify-recv: %s `%s`: %s\n", what, arg, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd, out, one = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: notify-recv SOCKET FILE\n");
		return 2;
	}
	if (strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "notify-recv: socket path `%s` is too long\n", argv[1]);
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	out = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (out < 0)
		die("open", argv[2]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket for", argv[1]);
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		die("SO_PASSCRED on", argv[1]);
	unlink(argv[1]);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("bind", argv[1]);

	for (;;) {
		char data[4096], line[sizeof(data) + 64];
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(struct ucred))];
		} control;
		struct iovec iov = {.iov_base = data, .iov_len = sizeof(data) - 1};
		struct msghdr msg = {.msg_iov = &iov,
		                     .msg_iovlen = 1,
		                     .msg_control = &control,
		                     .msg_controllen = sizeof(control)};
		struct cmsghdr *c;
		struct timespec now;
		long pid = 0;
		ssize_t n;
		int len;

		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("recvmsg on", argv[1]);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred cred;

				memcpy(&cred, CMSG_DATA(c), sizeof(cred));
				pid = cred.pid;
			}
		}
		/* One assignment per line in the datagram; a final newline is optional. */
		while (n > 0 && data[n - 1] == '\n')
			n--;
		data[n] = '\0';
		for (char *p = data; *p != '\0'; p++) {
			if (*p == '\n')
				*p = '\t';
		}
		len = snprintf(line, sizeof(line), "%lld\tpid=%ld\t%s%s\n",
		               (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000, pid, data,
		               (msg.msg_flags & MSG_TRUNC) ? "\t(truncated)" : "");
		if (len > 0 && write(out, line, (size_t)len) < 0)
			die("write", argv[2]);
	}
}
