/* SPDX-License-Identifier: Apache-2.0 */
/* The berth command-line tool: subcommands and what they share. */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

#include <stdint.h>
#include <uv.h>

struct berth_container;

/* Exit statuses of berth itself, as Docker's CLI uses them. */
#define BERTH_EXIT_USAGE    2   /* bad command line */
#define BERTH_EXIT_FAILED   125 /* berth could not run the container */
#define BERTH_EXIT_NOEXEC   126 /* the command cannot be executed */
#define BERTH_EXIT_NOTFOUND 127 /* the command is not in the image */

int berth_cli_run(int argc, char **argv);

/* A published port: HOST_ADDR:HOST_PORT on the host → CONTAINER_PORT inside. */
struct berth_publish {
	char host_addr[64];
	uint16_t host_port;
	uint16_t container_port;
};

/* Parse "[ADDR:]HOST_PORT:CONTAINER_PORT"; ADDR defaults to 127.0.0.1. */
int berth_publish_parse(const char *s, struct berth_publish *p, char *msg, size_t msglen);

/*
 * Listen on the host side of `p` and forward every connection to the
 * container's port (a fresh connection inside its network namespace). The
 * listener lives until berth_forward_close_all(). Returns 0 or -errno.
 */
int berth_forward_start(uv_loop_t *loop, struct berth_container *c, const struct berth_publish *p);
void berth_forward_close_all(void);

#endif
