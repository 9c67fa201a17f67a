/* SPDX-License-Identifier: Apache-2.0 */
/* Reaching into a container's network namespace from the host. */
#ifndef BERTH_RUNTIME_NET_H
#define BERTH_RUNTIME_NET_H

#include <stdint.h>

#include "berth/error.h"

/*
 * Create a socket (SOCK_CLOEXEC added) inside the network namespace
 * `netns_fd`. Only the calling thread switches namespaces, and only for the
 * duration of the socket() call.
 * The way back is the namespace the process was in at the first call,
 * opened once: a thread that moved to another namespace for good must not
 * call this.
 */
int berth_net_socket_in(int netns_fd, int domain, int type, berth_error_t *err);

/* A non-blocking TCP connection to 127.0.0.1:port in `netns_fd` (maybe in progress). */
int berth_net_connect_in(int netns_fd, uint16_t port, berth_error_t *err);

#endif
