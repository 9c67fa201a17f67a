/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which webhooks a lifecycle event fires (berthd's hooks.c), for every kind
 * of event and end, as @cloudflare/containers' onStart, onStop, onError and
 * onActivityExpired mean them. Deliveries themselves are tested end to end
 * (tests/e2e/test_hooks.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/hooks.h"

#define START   BERTHD_HOOK_ON_START
#define STOP    BERTHD_HOOK_ON_STOP
#define ERROR   BERTHD_HOOK_ON_ERROR
#define EXPIRED BERTHD_HOOK_ON_ACTIVITY_EXPIRED

/* Event data as instances.c writes it. */
static const struct {
	const char *type;
	const char *data;
	unsigned hooks;
} table[] = {
        {"start", "{\"name\":\"a\",\"state\":\"running\"}", 0},
        {"ready", "{\"name\":\"a\",\"state\":\"healthy\"}", START},
        {"stop", "{\"name\":\"a\",\"state\":\"stopping\",\"reason\":\"activity_expired\"}",
         EXPIRED},
        {"stop", "{\"name\":\"a\",\"state\":\"stopping\",\"reason\":\"stop_requested\"}", 0},
        {"stop", "{\"name\":\"a\",\"state\":\"stopping\",\"reason\":\"daemon_shutdown\"}", 0},
        /* an exit of its own accord with 0 */
        {"exited", "{\"name\":\"a\",\"state\":\"stopped\",\"exitCode\":0,\"oom\":false}", STOP},
        /* with 3, unasked: the state machine's stopped_with_code */
        {"exited", "{\"name\":\"a\",\"state\":\"stopped_with_code\",\"exitCode\":3,\"oom\":false}",
         STOP | ERROR},
        /* a command missing from the image */
        {"exited",
         "{\"name\":\"a\",\"state\":\"stopped_with_code\",\"exitCode\":127,\"oom\":false}",
         STOP | ERROR},
        /* killed by a signal nobody sent through berth */
        {"exited",
         "{\"name\":\"a\",\"state\":\"stopped_with_code\",\"exitCode\":137,\"signal\":9,"
         "\"oom\":false}",
         STOP | ERROR},
        /* the SIGTERM of a stop, whichever asked for it */
        {"exited",
         "{\"name\":\"a\",\"state\":\"stopped\",\"exitCode\":143,\"signal\":15,\"oom\":false,"
         "\"reason\":\"stop_requested\"}",
         STOP},
        {"exited",
         "{\"name\":\"a\",\"state\":\"stopped\",\"exitCode\":143,\"signal\":15,\"oom\":false,"
         "\"reason\":\"activity_expired\"}",
         STOP},
        {"exited",
         "{\"name\":\"a\",\"state\":\"stopped\",\"exitCode\":137,\"signal\":9,\"oom\":false,"
         "\"reason\":\"daemon_shutdown\"}",
         STOP},
        {"exited",
         "{\"name\":\"a\",\"state\":\"stopped\",\"exitCode\":137,\"signal\":9,\"oom\":false,"
         "\"reason\":\"destroyed\"}",
         STOP},
        /* out of memory is an error, even during a stop */
        {"exited",
         "{\"name\":\"a\",\"state\":\"stopped_with_code\",\"exitCode\":137,\"signal\":9,"
         "\"oom\":true,\"reason\":\"oom\"}",
         STOP | ERROR},
        {"exited",
         "{\"name\":\"a\",\"state\":\"stopped\",\"exitCode\":137,\"signal\":9,\"oom\":true,"
         "\"reason\":\"stop_requested\"}",
         STOP | ERROR},
        {"start_failed", "{\"name\":\"a\",\"state\":\"stopped\"}", ERROR},
        {"destroyed", NULL, 0},
        /* data that is missing or not JSON: the type alone decides */
        {"exited", NULL, STOP},
        {"exited", "not json", STOP},
        {"ready", "[1]", START},
        {"something_new", "{}", 0},
};

static void test_events(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		unsigned got = berthd_hooks_for_event(table[i].type, table[i].data);
		if (got != table[i].hooks)
			fail_msg("%s %s: hooks %#x, expected %#x", table[i].type,
			         table[i].data != NULL ? table[i].data : "(no data)", got,
			         table[i].hooks);
	}
}

/* RFC 4231's HMAC-SHA256 test cases 1 and 2, and an empty body. */
static void test_signature(void **state)
{
	char sig[BERTHD_HOOKS_SIGNATURE_SIZE];
	char key[21];

	(void)state;
	memset(key, 0x0b, 20);
	key[20] = '\0';
	berthd_hooks_signature(key, "Hi There", sig);
	assert_string_equal(
	        sig, "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	berthd_hooks_signature("Jefe", "what do ya want for nothing?", sig);
	assert_string_equal(
	        sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	berthd_hooks_signature("key", "", sig);
	assert_string_equal(
	        sig, "sha256=5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_events),
	        cmocka_unit_test(test_signature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
