/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "berth/util.h"
#include "instance/state.h"

#define NONE (-1)
#define S(x) BERTH_STATE_##x

/*
 * next[from][event], events in the order START, READY, STOP, EXIT_CLEAN,
 * EXIT_ERROR, START_FAILED, DESTROY. An exit after a stop was asked for is
 * "clean" whatever its status (a server killed by the SIGTERM we sent did
 * what we asked), so from `stopping` both exits lead to `stopped`; the exit
 * code is recorded either way.
 */
static const int next[BERTH_STATE_COUNT][BERTH_EVENT_COUNT] = {
        [S(STOPPED)] = {S(RUNNING), NONE, NONE, NONE, NONE, NONE, S(STOPPED)},
        [S(RUNNING)] = {NONE, S(HEALTHY), S(STOPPING), S(STOPPED), S(STOPPED_WITH_CODE), S(STOPPED),
                        S(STOPPED)},
        [S(HEALTHY)] = {NONE, NONE, S(STOPPING), S(STOPPED), S(STOPPED_WITH_CODE), NONE,
                        S(STOPPED)},
        [S(STOPPING)] = {NONE, NONE, NONE, S(STOPPED), S(STOPPED), NONE, S(STOPPED)},
        [S(STOPPED_WITH_CODE)] = {S(RUNNING), NONE, NONE, NONE, NONE, NONE, S(STOPPED)},
};

static const char *const state_names[BERTH_STATE_COUNT] = {
        [S(STOPPED)] = "stopped",
        [S(RUNNING)] = "running",
        [S(HEALTHY)] = "healthy",
        [S(STOPPING)] = "stopping",
        [S(STOPPED_WITH_CODE)] = "stopped_with_code",
};

static const char *const event_names[BERTH_EVENT_COUNT] = {
        [BERTH_EVENT_START] = "start",
        [BERTH_EVENT_READY] = "ready",
        [BERTH_EVENT_STOP] = "stop",
        [BERTH_EVENT_EXIT_CLEAN] = "exit_clean",
        [BERTH_EVENT_EXIT_ERROR] = "exit_error",
        [BERTH_EVENT_START_FAILED] = "start_failed",
        [BERTH_EVENT_DESTROY] = "destroy",
};

bool berth_state_next(enum berth_state from, enum berth_state_event event, enum berth_state *to)
{
	int n;

	if ((unsigned)from >= BERTH_STATE_COUNT || (unsigned)event >= BERTH_EVENT_COUNT)
		return false;
	n = next[from][event];
	if (n == NONE)
		return false;
	*to = (enum berth_state)n;
	return true;
}

const char *berth_state_name(enum berth_state state)
{
	return (unsigned)state < BERTH_STATE_COUNT ? state_names[state] : "unknown";
}

bool berth_state_parse(const char *name, enum berth_state *state)
{
	for (int i = 0; i < BERTH_STATE_COUNT; i++) {
		if (strcmp(state_names[i], name) == 0) {
			*state = (enum berth_state)i;
			return true;
		}
	}
	return false;
}

const char *berth_state_event_name(enum berth_state_event event)
{
	return (unsigned)event < BERTH_EVENT_COUNT ? event_names[event] : "unknown";
}

bool berth_state_is_active(enum berth_state state)
{
	return state == S(RUNNING) || state == S(HEALTHY) || state == S(STOPPING);
}
