/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berthd: one libuv loop serving the control API over the registry and the
 * configuration. Container work never runs on the loop (see the runtime).
 */
#ifndef BERTH_DAEMON_H
#define BERTH_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "http/http.h"
#include "registry/registry.h"

/* The command line, which overrides the configuration's `berth` section. */
struct berthd_options {
	const char *config_path;
	const char *state_dir;
	const char *api_socket;
	const char *api_listen; /* HOST:PORT */
	const char *listen;     /* HOST:PORT, the data plane */
	bool live_restore;      /* SIGTERM leaves the containers running */
};

struct berthd {
	uv_loop_t *loop;
	struct berthd_options options;
	struct berth_config *config;
	struct berth_registry *registry; /* writes: persist.c's thread (and start-up) */
	/*
	 * Reads on the loop: a second connection, so that in WAL mode a read
	 * never waits for the writer's transaction and its sync.
	 */
	struct berth_registry *reader;
	int state_lock_fd;
	struct berth_http_server *api_unix; /* no token needed: the socket's mode guards it */
	struct berth_http_server *api_tcp;  /* bearer token unless api.insecure_no_token */
	uv_signal_t sigterm, sigint, sighup;
	uint64_t started_ms;
	bool stopping;
	/* persist.c: registry writes, in order, by a writer thread */
	struct berthd_persist *persist;
	/* instances.c: the active instances */
	struct berthd_instances *instances;
	/* events.c: SSE subscribers */
	struct berthd_events *events;
	/* notify.c: systemd's notify socket and watchdog; NULL without one */
	struct berthd_notify *notify;
	/* logs.c: log readers */
	struct berthd_logs *logs;
	/* hooks.c: webhook deliveries; NULL once shut down */
	struct berthd_hooks *hooks;
	/* sandbox/: sessions and processes of instances; made on first use */
	struct berthd_sandbox *sandbox;
	/* images.c: set at shutdown, read by pulls on worker threads (atomically) */
	int images_cancel;
	/* proxy/: the data plane; NULL without berth.listen */
	struct px_server *proxy;
	/* Reads on the data plane's sockets: the loop polls on a while after one (run_loop()). */
	uint64_t proxy_reads;
};

/* The classes as the API shows them (a JSON object; new reference). */
json_t *berthd_class_json(const struct berth_config_class *c);

/* The API's request handler; `data` is the struct berthd, `tcp` tells the listener. */
void berthd_api_handle_unix(struct berth_http_request *req, void *data);
void berthd_api_handle_tcp(struct berth_http_request *req, void *data);
/*
 * How large a request's body may be: 1 MiB, but for sandbox file writes
 * (JSON, in memory: SBX_WRITE_MAX), PUT .../files (streamed into the
 * file, 64 GiB) and containerFetch (streamed to the instance) from a client that
 * may call them.
 */
void berthd_api_body_policy(const struct berth_http_request *req, void *data,
                            struct berth_http_body_policy *policy);

/* Milliseconds since the epoch. */
int64_t berthd_now_ms(void);

#endif
