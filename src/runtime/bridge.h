/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bridge networking (BERTH_NET_BRIDGE): each container gets an `eth0` veth
 * whose host end is an isolated port of a host bridge, an address leased from
 * the bridge's subnet, and a default route through the bridge's address; the
 * host masquerades the subnet (nftables) and forwards for it.
 *
 * Who does what:
 *  - the helper (berth-runtime start), before it clones the init: the host's
 *    one-time setup if it is missing (bridge, IPv4 forwarding, nftables
 *    table), and the address lease (berth_bridge_prepare());
 *  - the init, which opens a netlink socket *before* it unshares its network
 *    namespace (so the socket stays bound to the host's), then creates the
 *    veth pair across both namespaces and configures eth0
 *    (berth_bridge_attach());
 *  - the caller's destroy: removes the host end and frees the lease
 *    (berth_bridge_release()).
 *
 * Leases are symlinks in BERTH_BRIDGE_RUN_DIR/BRIDGE/, one per address,
 * pointing to the container directory they belong to, made under the
 * directory's lock. They are host-wide per bridge (not per state directory),
 * so `berth run` and berthd on one host never hand out one address twice.
 */
#ifndef BERTH_RUNTIME_BRIDGE_H
#define BERTH_RUNTIME_BRIDGE_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth/error.h"

#define BERTH_BRIDGE_DEFAULT_NAME   "berth0"
#define BERTH_BRIDGE_DEFAULT_SUBNET "10.88.0.1/16"
#define BERTH_BRIDGE_DEFAULT_TABLE  "berth"
/*
 * Leases outlive berthd's restarts (live restore keeps containers running), so
 * not under /run/berth, which a systemd unit's RuntimeDirectory= removes when
 * the service stops. /run is the right lifetime otherwise: leases describe
 * namespaces and links, which a reboot ends too.
 */
#define BERTH_BRIDGE_RUN_DIR "/run/berth-network"
/* In the container's directory: a symlink to its lease. */
#define BERTH_CONTAINER_NET_RECORD "network"

/* ---- subnet.c: address arithmetic (pure; host byte order throughout) ---- */

struct berth_subnet {
	uint32_t gateway; /* the bridge's own address */
	uint32_t network; /* gateway with the host bits cleared */
	unsigned prefix;  /* 8 to 30 */
};

/*
 * Parse "A.B.C.D/N": the bridge's address and the prefix length. A network
 * address (host bits all zero) means its first host is the gateway. Prefixes
 * outside 8..30 leave no room, or too much (the lease directory has a file
 * per address in use, and the allocator scans the range).
 */
int berth_subnet_parse(const char *text, struct berth_subnet *s, berth_error_t *err);

/* How many containers fit: every host address but the gateway. */
uint32_t berth_subnet_capacity(const struct berth_subnet *s);

/* The i-th container address (i < capacity), in order, skipping the gateway. */
uint32_t berth_subnet_address(const struct berth_subnet *s, uint32_t i);

/* The index of a container address, or -1 when `addr` is not one of the subnet's. */
int64_t berth_subnet_index(const struct berth_subnet *s, uint32_t addr);

/* "A.B.C.D" (at least INET_ADDRSTRLEN bytes). */
void berth_ipv4_format(uint32_t addr, char *buf, size_t size);

/* The host end's name for a container address: "bv" and the address in hex (10 characters). */
void berth_bridge_veth_name(uint32_t addr, char name[IFNAMSIZ]);

/*
 * Whether /proc/locks text lists a lock held (not waited for) on inode `ino`.
 * Only the inode is compared: the device numbers there are the superblock's,
 * which stat() does not always report (btrfs subvolumes), and a false match
 * only keeps a lease longer.
 */
bool berth_proc_locks_hold(const char *locks, unsigned long long ino);

/* ---- bridge.c ---- */

struct berth_bridge_config {
	char bridge[IFNAMSIZ];
	struct berth_subnet subnet;
	char table[64]; /* the nftables table, family ip */
};

/*
 * The settings for this host: BERTH_BRIDGE, BERTH_SUBNET and BERTH_NFT_TABLE
 * from the environment (tests use their own), else the defaults above.
 */
int berth_bridge_config_load(struct berth_bridge_config *cfg, berth_error_t *err);

/* What the helper hands the init for one container. */
struct berth_bridge_lease {
	uint32_t address;
	struct berth_subnet subnet;
	int bridge_index;
	char veth[IFNAMSIZ];
	/* A prepared slot's: the namespace has its veth and eth0 already (bridge.c). */
	bool prepared;
};

/*
 * In the helper, for container directory `container_dir` (locked, fd
 * `dir_fd`): set the host up if needed, free a lease a previous container
 * of this name left behind, lease an address and record it in the container
 * directory. With `netns_fd`, a prepared slot (berth_bridge_pool_fill()) is
 * taken when there is one: its lease becomes the container's, *netns_fd
 * its network namespace, and lease->prepared says the init has nothing to
 * attach. Undo with berth_bridge_release() (and a close of *netns_fd).
 */
int berth_bridge_prepare(const struct berth_bridge_config *cfg, const char *container_dir,
                         int dir_fd, struct berth_bridge_lease *lease, int *netns_fd,
                         berth_error_t *err);

/* In the init, before it unshares its network namespace: a netlink socket of the host's. */
struct nl_sock *berth_bridge_host_socket(berth_error_t *err);

/*
 * In the init, in its new network namespace: create the veth pair (the host
 * end through `host`, which this closes), make it an isolated port of the
 * bridge, and give eth0 its address and default route.
 */
int berth_bridge_attach(struct nl_sock *host, const struct berth_bridge_lease *lease,
                        berth_error_t *err);

/*
 * Remove the host end of container `container_dir`'s veth and free its
 * lease, if it has one (its record says); the record goes too. Safe to call
 * for containers without bridge networking, and more than once.
 */
int berth_bridge_release(const char *container_dir, berth_error_t *err);

#endif
