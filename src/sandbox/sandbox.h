/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sandbox operations on any instance, done by berthd from outside the
 * container: the HTTP protocol that @cloudflare/sandbox's SandboxClient
 * speaks to its in-container server (`.../sandbox/api/...`), and berth's own
 * `.../exec`. Commands run with berth_container_exec() (the container's
 * namespaces, cgroup, user, capabilities and seccomp filter); files are
 * reached through /proc/PID/root with openat2(RESOLVE_IN_ROOT). Every call
 * leases the instance (starting it if needed); a running command or
 * process holds its lease, which keeps the instance awake.
 */
#ifndef BERTH_SANDBOX_H
#define BERTH_SANDBOX_H

#include "config/config.h"
#include "daemon/daemon.h"
#include "http/http.h"

/*
 * Serve `path` ("/api/execute", "/api/process/ID/logs", ...) of the sandbox
 * protocol for CLASS/NAME. Answers are the SDK's: success bodies with
 * `success` and `timestamp`, errors {code, message, context, httpStatus,
 * timestamp}, streams as server-sent events.
 */
void berthd_sandbox_serve(struct berthd *d, struct berth_http_request *req,
                          const struct berth_config_class *cls, const char *name, const char *path);

/*
 * POST .../exec {argv, cwd, env, timeoutMs, stdin | stdinBase64, stream,
 * encoding}: a command without a shell. Whole answer {exitCode, stdout,
 * stderr, timedOut}, or with `stream` server-sent events start, stdout,
 * stderr, exit (or error).
 */
void berthd_sandbox_exec(struct berthd *d, struct berth_http_request *req,
                         const struct berth_config_class *cls, const char *name);

/*
 * GET .../exec upgraded to a WebSocket: an interactive command on a pty of
 * the container's (see tty.c for the messages).
 */
void berthd_sandbox_exec_tty(struct berthd *d, struct berth_http_request *req,
                             const struct berth_config_class *cls, const char *name);

/*
 * GET .../files?path=P: the file's bytes (streamed, application/octet-stream);
 * PUT .../files?path=P: the body (streamed from the server) becomes the
 * file, its parents made as needed; the file appears (or replaces the old
 * one) only once the body is whole. Answers {path, size}. The body policy
 * lets it be BERTHD_SANDBOX_PUT_MAX bytes.
 */
#define BERTHD_SANDBOX_PUT_MAX ((size_t)64 << 30)
void berthd_sandbox_files(struct berthd *d, struct berth_http_request *req,
                          const struct berth_config_class *cls, const char *name);

/* berthd is stopping: kill every command and process (their leases end with them). */
void berthd_sandbox_shutdown(struct berthd *d);

/* Free what is left (sessions, finished processes), once the loop has ended. */
void berthd_sandbox_free(struct berthd *d);

#endif
