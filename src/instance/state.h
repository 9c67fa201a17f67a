/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The lifecycle of an instance, as @cloudflare/containers defines it, with
 * `stopping` really used (the library never sets it: its issue #124):
 *
 *   stopped ──start──▶ running ──ports ready──▶ healthy
 *      ▲                  │  ╲                    │
 *      │                  │   ╲──stop──▶ stopping ◀┘ stop
 *      │                  ▼              │
 *      └──── exit 0, or any exit after a stop ◀┘
 *   stopped_with_code ◀── exit ≠ 0 (or a signal, or OOM) that nobody asked for
 *
 * `running` is entered when a start begins (as the library does) and left
 * for `healthy` when every port to wait for answers. A start that fails
 * leaves `stopped_with_code` when the command ran and exited (127 for a
 * command missing from the image), else `stopped`. Destroying the container
 * always ends in `stopped`: the record outlives its container.
 *
 * The table is the whole truth: berth_state_next() says where an event leads
 * from a state, or that the event is not valid there.
 */
#ifndef BERTH_INSTANCE_STATE_H
#define BERTH_INSTANCE_STATE_H

#include <stdbool.h>

enum berth_state {
	BERTH_STATE_STOPPED,
	BERTH_STATE_RUNNING,
	BERTH_STATE_HEALTHY,
	BERTH_STATE_STOPPING,
	BERTH_STATE_STOPPED_WITH_CODE,
	BERTH_STATE_COUNT,
};

enum berth_state_event {
	BERTH_EVENT_START,        /* a start begins */
	BERTH_EVENT_READY,        /* every port to wait for answers */
	BERTH_EVENT_STOP,         /* a stop (API, sleepAfter, shutdown) begins */
	BERTH_EVENT_EXIT_CLEAN,   /* the container ended with status 0 */
	BERTH_EVENT_EXIT_ERROR,   /* it ended otherwise: code ≠ 0, signal, OOM */
	BERTH_EVENT_START_FAILED, /* berth could not start it (nothing ran) */
	BERTH_EVENT_DESTROY,      /* the container and its writable layer are removed */
	BERTH_EVENT_COUNT,
};

/* The state `event` leads to from `from`; false when the event is not valid there. */
bool berth_state_next(enum berth_state from, enum berth_state_event event, enum berth_state *to);

/* "stopped", "running", ... as the API and the library spell them. */
const char *berth_state_name(enum berth_state state);
/* The state named `name`; false when there is none. */
bool berth_state_parse(const char *name, enum berth_state *state);
const char *berth_state_event_name(enum berth_state_event event);

/* A container process exists (running, healthy, stopping). */
bool berth_state_is_active(enum berth_state state);

#endif
