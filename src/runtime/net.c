/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container networking without bridges: every container has its own network
 * namespace with loopback, and the host reaches a container's port by
 * creating the socket inside that namespace (setns on the calling thread,
 * socket(), setns back). A socket stays in the namespace it was created in.
 * (Bridge networking, for containers that reach out: bridge.c.)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "berth/util.h"
#include "net.h"
#include "runtime-internal.h"

int berth_net_link_up(const char *name, berth_error_t *err)
{
	cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;

	if (fd < 0)
		return berth_error_set(err, errno, "bring up `%s`: socket", name);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return berth_error_set(err, errno, "bring up `%s`: get flags", name);
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return berth_error_set(err, errno, "bring up `%s`: set flags", name);
	return 0;
}

int berth_net_loopback_up(berth_error_t *err)
{
	return berth_net_link_up("lo", err);
}

int berth_net_socket_in(int netns_fd, int domain, int type, berth_error_t *err)
{
	cleanup_close int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd, saved;

	if (self < 0)
		return berth_error_set(err, errno, "open `/proc/thread-self/ns/net`");
	if (setns(netns_fd, CLONE_NEWNET) < 0)
		return berth_error_set(err, errno, "enter the container's network namespace");
	fd = socket(domain, type | SOCK_CLOEXEC, 0);
	saved = errno;
	/*
	 * Going back cannot fail for a namespace we were just in; if it did,
	 * this thread would go on in the container's namespace, which must
	 * never happen quietly.
	 */
	if (setns(self, CLONE_NEWNET) < 0)
		abort();
	if (fd < 0)
		return berth_error_set(err, saved, "socket in the container's network namespace");
	return fd;
}

int berth_net_connect_in(int netns_fd, uint16_t port, berth_error_t *err)
{
	struct sockaddr_in sa = {
	        .sin_family = AF_INET,
	        .sin_port = htons(port),
	        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	cleanup_close int fd =
	        berth_net_socket_in(netns_fd, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, err);

	if (fd < 0)
		return fd;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
		return berth_error_set(err, errno, "connect to port %u in the container", port);
	return steal_fd(&fd);
}
