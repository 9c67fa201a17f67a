/* SPDX-License-Identifier: Apache-2.0 */
/* Ordered, durable registry writes off the loop (see persist.c). */
#ifndef BERTH_DAEMON_PERSIST_H
#define BERTH_DAEMON_PERSIST_H

#include <stdbool.h>
#include <stdint.h>

#include "instance/state.h"
#include "registry/registry.h"

struct berthd;

/* Called on the loop once the write is durable (result 0), or failed (why). */
typedef void (*berthd_write_done)(int result, const char *why, void *arg);

struct berthd_state_write {
	const char *id;
	const char *class_name;
	const char *name; /* set: create the record first when there is none */
	enum berth_state state;
	bool has_exit_code;
	int exit_code;
	int exit_signal;
	bool oom;
	const char *stop_reason;
	int64_t time_ms;
	const char *event_type; /* an event to append with it, or NULL */
	const char *event_data; /* its JSON data, or NULL */
	const char *overrides;  /* the start's options (JSON), or NULL */
	const char *labels;     /* the container's labels (JSON object), or NULL */
};

/* Start the writer thread (after the loop and the registry exist). */
int berthd_persist_init(struct berthd *d, berth_error_t *err);
/* Write what is queued, end the writer thread, close its handle (after the loop ran out). */
void berthd_persist_shutdown(struct berthd *d);

void berthd_persist_state(struct berthd *d, const struct berthd_state_write *w,
                          berthd_write_done done, void *arg);

/* Reset the record of `id` (its container is gone) and log a "destroyed" event. */
void berthd_persist_destroy(struct berthd *d, const char *class_name, const char *id,
                            berthd_write_done done, void *arg);

/*
 * Append an event that goes with no state change (`instance_id` and
 * `class_name` may be NULL; `data` JSON or NULL), published to the event
 * streams once durable, in order with the other writes. On the loop only.
 */
void berthd_persist_event(struct berthd *d, const char *class_name, const char *instance_id,
                          const char *type, const char *data);

/* The last activity of `n` instances, in one transaction; takes `items` (malloc'd). */
void berthd_persist_activity(struct berthd *d, struct berth_registry_activity *items, size_t n);

/* Nothing queued or being written. */
bool berthd_persist_idle(const struct berthd *d);

#endif
