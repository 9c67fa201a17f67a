/* SPDX-License-Identifier: Apache-2.0 */
/* The bridge's subnet: parsing, the container addresses in it, names derived from them. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

static uint32_t mask_of(unsigned prefix)
{
	return prefix == 0 ? 0 : ~0u << (32 - prefix);
}

int berth_subnet_parse(const char *text, struct berth_subnet *s, berth_error_t *err)
{
	char addr[INET_ADDRSTRLEN];
	const char *slash = text != NULL ? strchr(text, '/') : NULL;
	struct in_addr in;
	unsigned long prefix;
	uint32_t a, mask;
	char *end;

	if (slash == NULL || (size_t)(slash - text) >= sizeof(addr))
		return berth_error_set_plain(
		        err, EINVAL,
		        "subnet `%s` is not an IPv4 address with a prefix length (like %s)",
		        text != NULL ? text : "", BERTH_BRIDGE_DEFAULT_SUBNET);
	memcpy(addr, text, (size_t)(slash - text));
	addr[slash - text] = '\0';
	if (inet_pton(AF_INET, addr, &in) != 1)
		return berth_error_set_plain(
		        err, EINVAL, "subnet `%s`: `%s` is not an IPv4 address", text, addr);
	errno = 0;
	prefix = strtoul(slash + 1, &end, 10);
	if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || errno != 0 || prefix < 8 ||
	    prefix > 30)
		return berth_error_set_plain(
		        err, EINVAL, "subnet `%s`: the prefix length must be 8 to 30", text);
	a = ntohl(in.s_addr);
	mask = mask_of((unsigned)prefix);
	s->prefix = (unsigned)prefix;
	s->network = a & mask;
	/* A network address names the subnet; its first host is then the bridge's. */
	s->gateway = a == s->network ? a + 1 : a;
	if ((s->gateway & ~mask) == ~mask)
		return berth_error_set_plain(
		        err, EINVAL, "subnet `%s`: `%s` is the broadcast address, not a host's",
		        text, addr);
	return 0;
}

uint32_t berth_subnet_capacity(const struct berth_subnet *s)
{
	/* Every address but the network's, the broadcast and the gateway. */
	return (~mask_of(s->prefix) + 1u) - 3u;
}

uint32_t berth_subnet_address(const struct berth_subnet *s, uint32_t i)
{
	uint32_t a = s->network + 1 + i;

	return a >= s->gateway ? a + 1 : a;
}

int64_t berth_subnet_index(const struct berth_subnet *s, uint32_t addr)
{
	uint32_t mask = mask_of(s->prefix);
	uint32_t i;

	if ((addr & mask) != s->network || addr == s->network || addr == (s->network | ~mask) ||
	    addr == s->gateway)
		return -1;
	i = addr - s->network - 1;
	return addr > s->gateway ? (int64_t)i - 1 : (int64_t)i;
}

void berth_ipv4_format(uint32_t addr, char *buf, size_t size)
{
	snprintf(buf, size, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
	         addr & 0xff);
}

void berth_bridge_veth_name(uint32_t addr, char name[IFNAMSIZ])
{
	snprintf(name, IFNAMSIZ, "bv%08x", addr);
}

bool berth_proc_locks_hold(const char *locks, unsigned long long ino)
{
	/*
	 * Lines look like "3: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF";
	 * a process waiting for the lock has "->" after the number instead.
	 */
	for (const char *line = locks; line != NULL && *line != '\0';) {
		const char *nl = strchr(line, '\n');
		size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		unsigned long long found;
		char buf[256];

		if (len < sizeof(buf)) {
			memcpy(buf, line, len);
			buf[len] = '\0';
			if (strstr(buf, "->") == NULL &&
			    sscanf(buf, "%*d: %*s %*s %*s %*d %*x:%*x:%llu", &found) == 1 &&
			    found == ino)
				return true;
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	return false;
}
