/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
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
	/* What a message quotes cannot split it (or forge a log line). */
	assert_true(berth_parse_size("1\nberthd: forged", &v, &err) < 0);
	assert_string_equal(err.message,
	                    "`1?berthd: forged` is not a size (use e.g. 256M, 1.5G or bytes)");
	berth_error_wrap(&err, "field `a\tb\r`");
	assert_string_equal(err.message, "field `a?b?`: `1?berthd: forged` is not a size (use e.g. "
	                                 "256M, 1.5G or bytes)");
	berth_error_set(&err, EIO, "read `%s`", "x\033[31m");
	assert_string_equal(err.message, "read `x?[31m`: Input/output error");
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

static void test_durations(void **state)
{
	static const struct {
		const char *in;
		uint64_t ms;
	} good[] = {
	        {"0", 0},         {"30", 30000},
	        {"1.5", 1500},    {"500ms", 500},
	        {"30s", 30000},   {"10m", 600000},
	        {"2h", 7200000},  {"1h30m", 5400000},
	        {"1m30s", 90000}, {"1h1m1s1ms", 3661001},
	        {"0.5s", 500},    {"1.5h", 5400000},
	        {".25s", 250},    {"0.001s", 1},
	        {"0s", 0},        {"9223372036854775807ms", 9223372036854775807ull},
	};
	static const struct {
		const char *in;
		int ret;
	} bad[] = {
	        {"", -EINVAL},
	        {"10 minutes", -EINVAL},
	        {"10min", -EINVAL},
	        {"-1s", -EINVAL},
	        {"+1s", -EINVAL},
	        {" 1s", -EINVAL},
	        {"1s ", -EINVAL},
	        {"1d", -EINVAL},
	        {"s", -EINVAL},
	        {"1h30", -EINVAL},
	        {"30s1m", -EINVAL},
	        {"1m1m", -EINVAL},
	        {"1.5ms", -EINVAL},
	        {"0.0001s", -EINVAL},
	        {"1e3", -EINVAL},
	        {"1,5s", -EINVAL},
	        {"9223372036854775808ms", -ERANGE},
	        {"99999999999999999999", -ERANGE},
	        {"5124095576030432h", -ERANGE},
	        {"2562047788015215h30m", -ERANGE},
	};
	berth_error_t err;
	uint64_t v;
	(void)state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		if (berth_parse_duration(good[i].in, &v, &err) != 0)
			fail_msg("\"%s\": %s", good[i].in, err.message);
		if (v != good[i].ms)
			fail_msg("\"%s\": %llu ms, expected %llu", good[i].in,
			         (unsigned long long)v, (unsigned long long)good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		if (berth_parse_duration(bad[i].in, &v, &err) != bad[i].ret)
			fail_msg("\"%s\" was not refused with %d", bad[i].in, bad[i].ret);
		assert_int_equal(v, 12345);
	}
	assert_true(berth_parse_duration("10 minutes", &v, &err) < 0);
	assert_string_equal(err.message,
	                    "`10 minutes` is not a duration (use e.g. 30s, 10m, 2h or seconds)");
	assert_int_equal(berth_parse_duration("9999999999999h", &v, &err), -ERANGE);
	assert_string_equal(err.message, "duration `9999999999999h` is too large");
	assert_true(berth_parse_duration(NULL, &v, NULL) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_size_units), cmocka_unit_test(test_size_rejects),
	        cmocka_unit_test(test_cpus),       cmocka_unit_test(test_user_and_signal),
	        cmocka_unit_test(test_durations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
