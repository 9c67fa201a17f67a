/* SPDX-License-Identifier: Apache-2.0 */
/* The instance lifecycle as a table of transitions: every (state, event) pair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "instance/state.h"

#define INVALID (-1)

/* Written from the lifecycle's description (state.h), not from state.c. */
static const struct {
	const char *from;
	const char *event;
	const char *to; /* NULL: not valid in this state */
} table[] = {
        {"stopped", "start", "running"},
        {"stopped", "ready", NULL},
        {"stopped", "stop", NULL},
        {"stopped", "exit_clean", NULL},
        {"stopped", "exit_error", NULL},
        {"stopped", "start_failed", NULL},
        {"stopped", "destroy", "stopped"},

        {"running", "start", NULL},
        {"running", "ready", "healthy"},
        {"running", "stop", "stopping"},
        {"running", "exit_clean", "stopped"},
        {"running", "exit_error", "stopped_with_code"},
        {"running", "start_failed", "stopped"},
        {"running", "destroy", "stopped"},

        {"healthy", "start", NULL},
        {"healthy", "ready", NULL},
        {"healthy", "stop", "stopping"},
        {"healthy", "exit_clean", "stopped"},
        {"healthy", "exit_error", "stopped_with_code"},
        {"healthy", "start_failed", NULL},
        {"healthy", "destroy", "stopped"},

        {"stopping", "start", NULL},
        {"stopping", "ready", NULL},
        {"stopping", "stop", NULL},
        {"stopping", "exit_clean", "stopped"},
        {"stopping", "exit_error", "stopped"},
        {"stopping", "start_failed", NULL},
        {"stopping", "destroy", "stopped"},

        {"stopped_with_code", "start", "running"},
        {"stopped_with_code", "ready", NULL},
        {"stopped_with_code", "stop", NULL},
        {"stopped_with_code", "exit_clean", NULL},
        {"stopped_with_code", "exit_error", NULL},
        {"stopped_with_code", "start_failed", NULL},
        {"stopped_with_code", "destroy", "stopped"},
};

static enum berth_state_event event_named(const char *name)
{
	for (int e = 0; e < BERTH_EVENT_COUNT; e++)
		if (strcmp(berth_state_event_name((enum berth_state_event)e), name) == 0)
			return (enum berth_state_event)e;
	fail_msg("no event named %s", name);
	return BERTH_EVENT_COUNT;
}

static void test_every_transition(void **state)
{
	(void)state;
	assert_int_equal(sizeof(table) / sizeof(table[0]), BERTH_STATE_COUNT * BERTH_EVENT_COUNT);
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		enum berth_state from, to, expected;
		enum berth_state_event ev = event_named(table[i].event);
		bool valid;

		assert_true(berth_state_parse(table[i].from, &from));
		valid = berth_state_next(from, ev, &to);
		if (table[i].to == NULL) {
			if (valid)
				fail_msg("%s --%s--> %s, expected invalid", table[i].from,
				         table[i].event, berth_state_name(to));
			continue;
		}
		assert_true(berth_state_parse(table[i].to, &expected));
		if (!valid || to != expected)
			fail_msg("%s --%s--> %s, expected %s", table[i].from, table[i].event,
			         valid ? berth_state_name(to) : "invalid", table[i].to);
	}
}

static void test_names(void **state)
{
	enum berth_state s;
	(void)state;
	assert_string_equal(berth_state_name(BERTH_STATE_STOPPED_WITH_CODE), "stopped_with_code");
	assert_false(berth_state_parse("sleeping", &s));
	assert_string_equal(berth_state_name((enum berth_state)99), "unknown");
	assert_false(berth_state_next((enum berth_state)99, BERTH_EVENT_START, &s));
	assert_true(berth_state_is_active(BERTH_STATE_STOPPING));
	assert_false(berth_state_is_active(BERTH_STATE_STOPPED_WITH_CODE));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_every_transition),
	        cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
