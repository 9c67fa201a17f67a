/* SPDX-License-Identifier: Apache-2.0 */
/* The berth command-line tool: subcommands and what they share. */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "berth/error.h"
#include "berth/image-run.h"
#include "berth/runtime.h"

struct berth_container;

/* Exit statuses of berth itself, as Docker's CLI uses them. */
#define BERTH_EXIT_USAGE    2   /* bad command line */
#define BERTH_EXIT_FAILED   125 /* berth could not run the container */
#define BERTH_EXIT_NOEXEC   126 /* the command cannot be executed */
#define BERTH_EXIT_NOTFOUND 127 /* the command is not in the image */

int berth_cli_run(int argc, char **argv);

/* An image for `berth run --image` (image.c): what the spec points into. */
struct berth_cli_image {
	json_t *doc;
	char **layers;
	struct berth_image_run run;
};

/*
 * Resolve `source` (import or pull it) with the `berth-image` helper and
 * fill the spec: its layers (or rootfs), and the command, environment,
 * working directory and user from the image's config with `cmd` (NULL: the
 * image's own) and `env` over them. `have_user`: the caller set uid/gid.
 */
int berth_cli_image_prepare(const char *state_dir, const char *source, char *const *cmd,
                            char *const *env, bool have_user, struct berth_container_spec *spec,
                            struct berth_cli_image *img, berth_error_t *err);
void berth_cli_image_free(struct berth_cli_image *img);

/* `berth image pull|import|ls|inspect|rm ...`: runs the `berth-image` helper. */
int berth_cli_image(int argc, char **argv);

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
