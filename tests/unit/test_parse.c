/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <cmocka.h>

#include "berth/parse.h"

static void test_size_units(void **state)
{
	uint64_t v;
	(void)state;
	assert_int_equal(berth_parse_size("4096", &v, NULL), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(berth_parse_size("256M", &v, NULL), 0);
	assert_int_equal(v, 256ull << 20);
	assert_int_equal(berth_parse_size("256mib", &v, NULL), 0);
	assert_int_equal(v, 256ull << 20);
	assert_int_equal(berth_parse_size("1.5G", &v, NULL), 0);
	assert_int_equal(v, 3ull << 29);
	assert_int_equal(berth_parse_size("2k", &v, NULL), 0);
	assert_int_equal(v, 2048);
	assert_int_equal(berth_parse_size("1T", &v, NULL), 0);
	assert_int_equal(v, 1ull << 40);
}

static void test_size_rejects(void **state)
{
	berth_error_t err;
	uint64_t v = 7;
	(void)state;
	assert_true(berth_parse_size("", &v, &err) < 0);
	assert_true(berth_parse_size("abc", &v, &err) < 0);
	assert_string_equal(err.message, "`abc` is not a size (use e.g. 256M, 1.5G or bytes)");
	assert_true(berth_parse_size("12Q", &v, &err) < 0);
	assert_true(berth_parse_size("-1M", &v, &err) < 0);
	assert_true(berth_parse_size("0", &v, &err) < 0);
	assert_string_equal(err.message, "size `0` must be greater than zero");
	assert_true(berth_parse_size("99999999999999999999", &v, &err) < 0);
	assert_true(berth_parse_size("20000000000T", &v, &err) < 0);
	assert_string_equal(err.message, "size `20000000000T` is too large");
	assert_int_equal(v, 7);
}

static void test_cpus(void **state)
{
	uint64_t v;
	berth_error_t err;
	(void)state;
	assert_int_equal(berth_parse_cpus("0.25", &v, NULL), 0);
	assert_int_equal(v, 250000000ull);
	assert_int_equal(berth_parse_cpus("2", &v, NULL), 0);
	assert_int_equal(v, 2000000000ull);
	assert_int_equal(berth_parse_cpus("1/16", &v, NULL), 0);
	assert_int_equal(v, 62500000ull);
	assert_int_equal(berth_parse_cpus(".5", &v, NULL), 0);
	assert_int_equal(v, 500000000ull);
	assert_true(berth_parse_cpus("0", &v, &err) < 0);
	assert_true(berth_parse_cpus("1/0", &v, &err) < 0);
	assert_true(berth_parse_cpus("two", &v, &err) < 0);
	assert_string_equal(err.message, "`two` is not a CPU amount (use e.g. 0.5, 2 or 1/16)");
	assert_true(berth_parse_cpus("2000", &v, &err) < 0);
	assert_true(berth_parse_cpus("1.5x", &v, &err) < 0);
}

static void test_user_and_signal(void **state)
{
	uint32_t uid, gid;
	int sig;
	berth_error_t err;
	(void)state;
	assert_int_equal(berth_parse_user("1000", &uid, &gid, NULL), 0);
	assert_int_equal(uid, 1000);
	assert_int_equal(gid, 1000);
	assert_int_equal(berth_parse_user("1000:50", &uid, &gid, NULL), 0);
	assert_int_equal(gid, 50);
	assert_true(berth_parse_user("nobody", &uid, &gid, &err) < 0);
	assert_true(berth_parse_user("1:", &uid, &gid, &err) < 0);
	assert_true(berth_parse_user("4294967295", &uid, &gid, &err) < 0);

	assert_int_equal(berth_parse_signal("TERM", &sig, NULL), 0);
	assert_int_equal(sig, SIGTERM);
	assert_int_equal(berth_parse_signal("sigkill", &sig, NULL), 0);
	assert_int_equal(sig, SIGKILL);
	assert_int_equal(berth_parse_signal("10", &sig, NULL), 0);
	assert_int_equal(sig, 10);
	assert_true(berth_parse_signal("SIGNOPE", &sig, &err) < 0);
	assert_true(berth_parse_signal("0", &sig, &err) < 0);
	assert_string_equal(berth_signal_name(SIGUSR1), "USR1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_size_units),
	        cmocka_unit_test(test_size_rejects),
	        cmocka_unit_test(test_cpus),
	        cmocka_unit_test(test_user_and_signal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
