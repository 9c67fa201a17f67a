/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The instance manager: named instances' containers, their lifecycle
 * (instance/state.h) and everything that drives it — starts (coalesced:
 * every caller waits for the same container), readiness, stops with a grace
 * period, exits, destroys, sleepAfter, max_instances and the host's limits.
 *
 * Only active instances (a container exists or is being made) are held in
 * memory; a sleeping instance is a registry row. Runtime calls and registry
 * writes run on libuv's thread pool; the loop keeps the state and timers.
 */
#ifndef BERTH_DAEMON_INSTANCES_H
#define BERTH_DAEMON_INSTANCES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "instance/state.h"

struct berthd;
struct instance;
struct berth_container;

/* What a start may change for this container (the API's start body). */
struct berthd_start_options {
	json_t *env_vars;    /* object of strings merged over the class's envVars, or NULL */
	json_t *entrypoint;  /* array of strings replacing the class's, or NULL */
	int enable_internet; /* -1: the class's */
	json_t *labels;      /* object of strings merged over the class's, or NULL */
	uint16_t *ports;     /* ports to wait for, or NULL: requiredPorts, else defaultPort */
	size_t n_ports;
	bool wait_for_ports; /* false: answer as soon as the container runs */
};

/*
 * How a start ended. status 0: the instance is ready (or running, without
 * waitForPorts); otherwise an HTTP status with the API's error code and a
 * message that says why (503 max_instances, 500 start_failed, ...).
 */
struct berthd_start_result {
	int status;
	const char *code;
	const char *message;
	const char *id;
};

typedef void (*berthd_start_cb)(const struct berthd_start_result *res, void *arg);

void berthd_instances_init(struct berthd *d);

/*
 * Start CLASS/NAME unless it runs; `cb` is called once, on the loop. With
 * `opts` NULL the class's settings apply and the start waits for its ports.
 */
void berthd_instance_start(struct berthd *d, const struct berth_config_class *cls, const char *name,
                           const struct berthd_start_options *opts, berthd_start_cb cb, void *arg);

/*
 * Begin stopping CLASS/NAME: `signal`, then SIGKILL after `grace_ms`.
 * Returns false when it has no container (nothing to stop).
 */
bool berthd_instance_stop(struct berthd *d, const char *id, int signal, uint64_t grace_ms,
                          const char *reason);

/*
 * Remove the container of `id` (killing it first) and reset its record;
 * `cb` runs when done (status 0, or 500 with why).
 */
void berthd_instance_destroy(struct berthd *d, const char *class_name, const char *id,
                             berthd_start_cb cb, void *arg);

/* Renew the activity of `id` (renewActivityTimeout); false when it has no container. */
bool berthd_instance_renew(struct berthd *d, const char *id);

/* The state of `id` if it is active, into *state and *last_change; false otherwise. */
bool berthd_instance_active_state(struct berthd *d, const char *id, enum berth_state *state,
                                  int64_t *last_change_ms);

/*
 * A record read from the registry, brought up to date with what the
 * instance manager holds of it while its writes are on their way (state,
 * last change, how its last container ended, why it stopped); unchanged
 * if inactive.
 */
void berthd_instance_overlay(struct berthd *d, struct berth_registry_instance *r);

/*
 * A lease on a running instance, for work done on its behalf (a proxied
 * request or WebSocket, an exec): while any lease is held the instance's
 * sleepAfter does not run out, and it starts counting again when the last
 * one is released. Leases renew the activity when taken and released.
 */
struct berthd_lease;

/*
 * How an acquire ended: `lease` is set when res->status is 0; otherwise res
 * says why (as for a start: 503 max_instances, 500 start_failed, ...).
 */
typedef void (*berthd_lease_cb)(const struct berthd_start_result *res, struct berthd_lease *lease,
                                void *arg);

/*
 * Start CLASS/NAME unless it runs (coalesced with every other start), wait
 * until it is ready, then lease it — as soon as it is ready, without
 * waiting for that state to be durable, as a start's answer does. `cb` is
 * called once, on the loop, possibly before this returns (an instance that
 * is already healthy).
 */
void berthd_instance_acquire(struct berthd *d, const struct berth_config_class *cls,
                             const char *name, berthd_lease_cb cb, void *arg);

/* Start a TCP connection to `port` inside the leased instance (non-blocking; see runtime.h). */
int berthd_lease_connect(struct berthd_lease *l, uint16_t port, berth_error_t *err);
/*
 * The leased instance's container handle, for work on it from the thread
 * pool (an exec, file access through its root). The handle stays valid until
 * the lease is released, even if the container ends meanwhile (its clean-up
 * waits): check berthd_lease_alive() for whether it still runs. NULL when
 * the container had already ended.
 */
struct berth_container *berthd_lease_container(struct berthd_lease *l);
/* Activity under the lease (a WebSocket message): renews sleepAfter. Cheap. */
void berthd_lease_touch(struct berthd_lease *l);
const char *berthd_lease_id(const struct berthd_lease *l);
/* Whether the leased instance's container still runs. */
bool berthd_lease_alive(const struct berthd_lease *l);
void berthd_lease_release(struct berthd_lease *l);

/* Leases held on instance `id` now (0 when it is not active): for least-loaded picks. */
unsigned berthd_instance_inflight(struct berthd *d, const char *id);

/* Number of active instances (all classes). */
size_t berthd_instances_active(struct berthd *d);

/*
 * Stop every container (SIGTERM, the class's grace period, SIGKILL) and call
 * `done` when all have exited and been removed. With `live_restore` running
 * containers are left running instead, for the next berthd to adopt.
 */
void berthd_instances_shutdown(struct berthd *d, bool live_restore, void (*done)(struct berthd *d));

/*
 * At start: adopt the containers that the registry says run (left by a
 * berthd that was killed, crashed or stopped with --live-restore). Those
 * still running are watched again (state kept, sleepAfter from now); those
 * that ended meanwhile are recorded with what is known and cleaned up.
 */
int berthd_instances_restore(struct berthd *d, berth_error_t *err);

#endif
