/* SPDX-License-Identifier: Apache-2.0 */
/* Bridge networking's pure parts: subnets, container addresses, names, lock lists, settings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/bridge.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static void test_parse(void **state)
{
	struct berth_subnet s;
	berth_error_t err;
	(void)state;

	assert_int_equal(berth_subnet_parse("10.88.0.1/16", &s, &err), 0);
	assert_int_equal(s.gateway, IP(10, 88, 0, 1));
	assert_int_equal(s.network, IP(10, 88, 0, 0));
	assert_int_equal(s.prefix, 16);

	/* A network address: its first host is the bridge's. */
	assert_int_equal(berth_subnet_parse("192.168.7.0/24", &s, &err), 0);
	assert_int_equal(s.gateway, IP(192, 168, 7, 1));
	assert_int_equal(s.network, IP(192, 168, 7, 0));

	/* Any host may be the gateway. */
	assert_int_equal(berth_subnet_parse("172.20.5.77/20", &s, &err), 0);
	assert_int_equal(s.gateway, IP(172, 20, 5, 77));
	assert_int_equal(s.network, IP(172, 20, 0, 0));
	assert_int_equal(s.prefix, 20);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *text, *message;
	} bad[] = {
	        {"10.88.0.1", "subnet `10.88.0.1` is not an IPv4 address with a prefix length "
	                      "(like 10.88.0.1/16)"},
	        {"", "subnet `` is not an IPv4 address with a prefix length (like 10.88.0.1/16)"},
	        {"10.88.0/16", "subnet `10.88.0/16`: `10.88.0` is not an IPv4 address"},
	        {"fd00::1/64", "subnet `fd00::1/64`: `fd00::1` is not an IPv4 address"},
	        {"10.88.0.1/31", "subnet `10.88.0.1/31`: the prefix length must be 8 to 30"},
	        {"10.0.0.1/7", "subnet `10.0.0.1/7`: the prefix length must be 8 to 30"},
	        {"10.0.0.1/", "subnet `10.0.0.1/`: the prefix length must be 8 to 30"},
	        {"10.0.0.1/16x", "subnet `10.0.0.1/16x`: the prefix length must be 8 to 30"},
	        {"10.0.0.1/-16", "subnet `10.0.0.1/-16`: the prefix length must be 8 to 30"},
	        {"10.0.0.1/99999999999999999999",
	         "subnet `10.0.0.1/99999999999999999999`: the prefix length must be 8 to 30"},
	        {"10.0.255.255/16",
	         "subnet `10.0.255.255/16`: `10.0.255.255` is the broadcast address, not a host's"},
	        {"1.2.3.4.5.6.7.8.9.10/16", "subnet `1.2.3.4.5.6.7.8.9.10/16` is not an IPv4 "
	                                    "address with a prefix length (like 10.88.0.1/16)"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct berth_subnet s;
		berth_error_t err = {0};

		assert_int_equal(berth_subnet_parse(bad[i].text, &s, &err), -EINVAL);
		assert_string_equal(err.message, bad[i].message);
	}
}

static void test_addresses(void **state)
{
	struct berth_subnet s;
	berth_error_t err;
	(void)state;

	/* /24 with the gateway at .1: .2 to .254. */
	assert_int_equal(berth_subnet_parse("10.1.2.1/24", &s, &err), 0);
	assert_int_equal(berth_subnet_capacity(&s), 253);
	assert_int_equal(berth_subnet_address(&s, 0), IP(10, 1, 2, 2));
	assert_int_equal(berth_subnet_address(&s, 252), IP(10, 1, 2, 254));

	/* The gateway in the middle is skipped. */
	assert_int_equal(berth_subnet_parse("10.1.2.100/24", &s, &err), 0);
	assert_int_equal(berth_subnet_address(&s, 0), IP(10, 1, 2, 1));
	assert_int_equal(berth_subnet_address(&s, 98), IP(10, 1, 2, 99));
	assert_int_equal(berth_subnet_address(&s, 99), IP(10, 1, 2, 101));
	assert_int_equal(berth_subnet_address(&s, 252), IP(10, 1, 2, 254));

	/* Every index maps to a distinct address of the subnet, and back. */
	for (uint32_t i = 0; i < berth_subnet_capacity(&s); i++) {
		uint32_t a = berth_subnet_address(&s, i);
		assert_int_not_equal(a, s.gateway);
		assert_int_equal(berth_subnet_index(&s, a), (int64_t)i);
	}
	assert_int_equal(berth_subnet_index(&s, IP(10, 1, 2, 0)), -1);   /* network */
	assert_int_equal(berth_subnet_index(&s, IP(10, 1, 2, 255)), -1); /* broadcast */
	assert_int_equal(berth_subnet_index(&s, IP(10, 1, 2, 100)), -1); /* gateway */
	assert_int_equal(berth_subnet_index(&s, IP(10, 1, 3, 5)), -1);   /* elsewhere */

	/* /30: one container. /16: 65533. /8: the arithmetic does not overflow. */
	assert_int_equal(berth_subnet_parse("10.9.9.1/30", &s, &err), 0);
	assert_int_equal(berth_subnet_capacity(&s), 1);
	assert_int_equal(berth_subnet_address(&s, 0), IP(10, 9, 9, 2));
	assert_int_equal(berth_subnet_parse("10.88.0.1/16", &s, &err), 0);
	assert_int_equal(berth_subnet_capacity(&s), 65533);
	assert_int_equal(berth_subnet_address(&s, 65532), IP(10, 88, 255, 254));
	assert_int_equal(berth_subnet_parse("10.0.0.1/8", &s, &err), 0);
	assert_int_equal(berth_subnet_capacity(&s), (1u << 24) - 3);
	assert_int_equal(berth_subnet_address(&s, (1u << 24) - 4), IP(10, 255, 255, 254));
}

static void test_names(void **state)
{
	char name[IFNAMSIZ], addr[16];
	(void)state;

	berth_bridge_veth_name(IP(10, 88, 0, 2), name);
	assert_string_equal(name, "bv0a580002");
	berth_bridge_veth_name(IP(255, 255, 255, 254), name);
	assert_string_equal(name, "bvfffffffe");
	assert_true(strlen(name) < IFNAMSIZ);
	berth_ipv4_format(IP(10, 88, 1, 254), addr, sizeof(addr));
	assert_string_equal(addr, "10.88.1.254");
}

static void test_proc_locks(void **state)
{
	const char *locks = "1: POSIX  ADVISORY  WRITE 812 00:19:1234 0 EOF\n"
	                    "2: FLOCK  ADVISORY  WRITE 900 fd:01:4242 0 EOF\n"
	                    "2: -> FLOCK  ADVISORY  WRITE 901 fd:01:777 0 EOF\n"
	                    "3: OFDLCK ADVISORY  READ  -1 08:02:99 0 EOF\n"
	                    "4: FLOCK  ADVISORY  WRITE 902 103:05:55";
	(void)state;

	assert_true(berth_proc_locks_hold(locks, 4242));
	assert_true(berth_proc_locks_hold(locks, 1234));
	assert_true(berth_proc_locks_hold(locks, 99));
	assert_true(berth_proc_locks_hold(locks, 55)); /* the last line has no newline */
	/* Waiting for a lock is not holding it. */
	assert_false(berth_proc_locks_hold(locks, 777));
	assert_false(berth_proc_locks_hold(locks, 42));
	assert_false(berth_proc_locks_hold(locks, 424));
	assert_false(berth_proc_locks_hold("", 4242));
	assert_false(berth_proc_locks_hold("garbage\n\n:::\n", 0));
}

static void test_config(void **state)
{
	struct berth_bridge_config cfg;
	berth_error_t err = {0};
	(void)state;

	unsetenv("BERTH_BRIDGE");
	unsetenv("BERTH_SUBNET");
	unsetenv("BERTH_NFT_TABLE");
	assert_int_equal(berth_bridge_config_load(&cfg, &err), 0);
	assert_string_equal(cfg.bridge, "berth0");
	assert_string_equal(cfg.table, "berth");
	assert_int_equal(cfg.subnet.gateway, IP(10, 88, 0, 1));
	assert_int_equal(cfg.subnet.prefix, 16);

	setenv("BERTH_BRIDGE", "br-test", 1);
	setenv("BERTH_SUBNET", "10.213.4.1/24", 1);
	setenv("BERTH_NFT_TABLE", "berth_test", 1);
	assert_int_equal(berth_bridge_config_load(&cfg, &err), 0);
	assert_string_equal(cfg.bridge, "br-test");
	assert_string_equal(cfg.table, "berth_test");
	assert_int_equal(cfg.subnet.network, IP(10, 213, 4, 0));

	setenv("BERTH_BRIDGE", "a-name-too-long-x", 1);
	assert_int_equal(berth_bridge_config_load(&cfg, &err), -EINVAL);
	assert_string_equal(err.message, "bridge name `a-name-too-long-x` is not valid (at most 15 "
	                                 "letters, digits, `_`, `-` or `.`)");
	setenv("BERTH_BRIDGE", "br\"0", 1);
	assert_int_equal(berth_bridge_config_load(&cfg, &err), -EINVAL);
	setenv("BERTH_BRIDGE", "br0", 1);
	setenv("BERTH_NFT_TABLE", "berth; flush ruleset", 1);
	assert_int_equal(berth_bridge_config_load(&cfg, &err), -EINVAL);
	assert_string_equal(err.message,
	                    "nftables table name `berth; flush ruleset` must be letters, digits, "
	                    "`_` and `-`");
	setenv("BERTH_NFT_TABLE", "berth", 1);
	setenv("BERTH_SUBNET", "10.213.4.1", 1);
	assert_int_equal(berth_bridge_config_load(&cfg, &err), -EINVAL);
	unsetenv("BERTH_BRIDGE");
	unsetenv("BERTH_SUBNET");
	unsetenv("BERTH_NFT_TABLE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse),      cmocka_unit_test(test_parse_errors),
	        cmocka_unit_test(test_addresses),  cmocka_unit_test(test_names),
	        cmocka_unit_test(test_proc_locks), cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
