/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lifecycle webhooks: a class's onStart, onStop, onError and
 * onActivityExpired URLs get a JSON POST when its instances reach those
 * points (docs/configuration.md, "Webhooks"). Deliveries run on the loop
 * through libcurl's multi interface, are retried with backoff, and are
 * bounded in number and in time, so neither a slow receiver nor a dead one
 * can hold up the daemon or its shutdown.
 */
#ifndef BERTH_DAEMON_HOOKS_H
#define BERTH_DAEMON_HOOKS_H

#include <stdbool.h>

#include "registry/registry.h"

struct berthd;

/* Set up the deliveries' machinery on d->loop (after the loop exists). */
void berthd_hooks_init(struct berthd *d);

/*
 * An event, durable in the registry: queue a delivery for every hook of its
 * class that the event fires. Does nothing once the hooks are shut down.
 */
void berthd_hooks_event(struct berthd *d, const struct berth_registry_event *ev);

/*
 * Shutdown: what is pending gets one last attempt (no retries), bounded by
 * a short grace period; the rest is abandoned with a log line. Every handle
 * is closed afterwards, so the loop can end; the module frees itself then.
 */
void berthd_hooks_shutdown(struct berthd *d);

/*
 * Which hooks an event fires, as a bit set of BERTHD_HOOK_*: `type` is the
 * event's type, `data` its data (a JSON object, or NULL). Pure, for tests.
 */
enum {
	BERTHD_HOOK_ON_START = 1 << 0,
	BERTHD_HOOK_ON_STOP = 1 << 1,
	BERTHD_HOOK_ON_ERROR = 1 << 2,
	BERTHD_HOOK_ON_ACTIVITY_EXPIRED = 1 << 3,
};
unsigned berthd_hooks_for_event(const char *type, const char *data);

/*
 * "sha256=" and the hex HMAC-SHA256 of `body` keyed with `secret`: the
 * X-Berth-Signature header of every delivery when berth.hooks.secret is
 * set (the form of GitHub's X-Hub-Signature-256). Pure, for tests.
 */
#define BERTHD_HOOKS_SIGNATURE_SIZE (sizeof("sha256=") + 64)
void berthd_hooks_signature(const char *secret, const char *body,
                            char out[BERTHD_HOOKS_SIGNATURE_SIZE]);

#endif
