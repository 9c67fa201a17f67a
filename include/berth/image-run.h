/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an image's config (its "config" object: Entrypoint, Cmd, Env,
 * WorkingDir, User, ExposedPorts) means for a container, with Docker's
 * override rules. Pure: libc and jansson only, so the static `berth` can use
 * it without the rest of the image module.
 */
#ifndef BERTH_IMAGE_RUN_H
#define BERTH_IMAGE_RUN_H

#include <jansson.h>
#include <stdint.h>

#include "berth/error.h"

struct berth_image_run {
	char **argv;   /* never empty */
	char **env;    /* the image's Env, then the given variables over it */
	char *workdir; /* the image's WorkingDir, or NULL */
	char *user;    /* the image's User ("name", "uid", "uid:gid", "name:group"), or NULL */
	uint16_t port; /* the one TCP port of ExposedPorts, or 0 */
};

/*
 * Combine the image's config with what the caller gives: an `entrypoint`
 * replaces both ENTRYPOINT and CMD (Docker's --entrypoint, and
 * @cloudflare/containers' entrypoint); `cmd` alone replaces CMD and runs
 * after the ENTRYPOINT. `env` overrides the image's variables by name.
 */
int berth_image_run_config(json_t *config, char *const *entrypoint, char *const *cmd,
                           char *const *env, struct berth_image_run *out, berth_error_t *err);
void berth_image_run_free(struct berth_image_run *r);

/* KEY=VALUE lists: `over` replaces or adds to `base`; a new vector. */
char **berth_image_env_merge(char *const *base, char *const *over);

/* The single TCP port the config exposes, or 0 (none, or several). */
uint16_t berth_image_exposed_port(json_t *config);

/*
 * The numeric uid and gid of `user` ("name", "uid", "name:group", "uid:gid")
 * in the image whose layers (top first, NULL-terminated) are given: names are
 * looked up in the image's /etc/passwd and /etc/group.
 */
int berth_image_user(char *const *layers, const char *user, uint32_t *uid, uint32_t *gid,
                     berth_error_t *err);

#endif
