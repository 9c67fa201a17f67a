/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bridge networking: the host's one-time setup, address leases, and the veth
 * pair of each container (see bridge.h for who calls what).
 *
 * Netlink goes through libnl (libnl-route-3 for links, addresses and
 * routes; its message API for the two requests it has no object for: a
 * bridge port's `isolated` flag and the nftables table lookup). libmnl would
 * fit better, but Debian ships no static libmnl.a, and the helper is linked
 * statically; libnl-3 and libnl-route-3 have static archives.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>

#include "berth/fs.h"
#include "berth/trace.h"
#include "berth/util.h"
#include "bridge.h"
#include "runtime-internal.h"

extern char **environ;

#define LEASE_LOCK "lock"
/* /proc/locks lists every lock on the host; a lot, but not without bound. */
#define PROC_LOCKS_MAX (16u << 20)
#define NFT_STDERR_MAX 2048

/* ---- libnl glue ---- */

/* libnl's error codes are its own; berth's errors carry errno values. */
static int nl_errno(int nlerr)
{
	static const struct {
		int nle, err;
	} map[] = {
	        {NLE_EXIST, EEXIST},         {NLE_PERM, EPERM},
	        {NLE_NOACCESS, EACCES},      {NLE_OBJ_NOTFOUND, ENOENT},
	        {NLE_NODEV, ENODEV},         {NLE_NOMEM, ENOMEM},
	        {NLE_BUSY, EBUSY},           {NLE_RANGE, ERANGE},
	        {NLE_AGAIN, EAGAIN},         {NLE_OPNOTSUPP, EOPNOTSUPP},
	        {NLE_NOADDR, EADDRNOTAVAIL}, {NLE_AF_NOSUPPORT, EAFNOSUPPORT},
	};
	int e = nlerr < 0 ? -nlerr : nlerr;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(map); i++)
		if (map[i].nle == e)
			return map[i].err;
	return EINVAL;
}

static int nl_fail(berth_error_t *err, int nlerr, const char *what, const char *name)
{
	int e = nl_errno(nlerr);

	if (e == EPERM || e == EACCES)
		return berth_error_set_plain(err, e,
		                             "%s `%s`: permission denied (bridge networking needs "
		                             "root, or CAP_NET_ADMIN)",
		                             what, name);
	return berth_error_set_plain(err, e, "%s `%s`: %s", what, name, nl_geterror(nlerr));
}

/*
 * A libnl socket on a netlink socket of our own: close-on-exec, and bound
 * with port 0 so that the kernel picks a unique port. (libnl derives ports
 * from the pid, and every init is pid 1 of its namespace: they would
 * collide in the host's namespace and retry.)
 */
static struct nl_sock *open_nl(int protocol, berth_error_t *err)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	struct nl_sock *sk;
	int fd, r;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
	if (fd < 0) {
		berth_error_set(err, errno, "open a netlink socket");
		return NULL;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		berth_error_set(err, errno, "bind a netlink socket");
		close(fd);
		return NULL;
	}
	sk = nl_socket_alloc();
	if (sk == NULL)
		abort();
	r = nl_socket_set_fd(sk, protocol, fd);
	if (r < 0) {
		berth_error_set_plain(err, nl_errno(r), "set up a netlink socket: %s",
		                      nl_geterror(r));
		close(fd);
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

static void nl_sock_freep(struct nl_sock **sk)
{
	if (*sk != NULL)
		nl_socket_free(*sk);
}
#define cleanup_nl_sock __attribute__((cleanup(nl_sock_freep)))

static struct nl_addr *ipv4_addr(uint32_t host_order, unsigned prefix)
{
	uint32_t be = htonl(host_order);
	struct nl_addr *a = nl_addr_build(AF_INET, &be, sizeof(be));

	if (a == NULL)
		abort();
	nl_addr_set_prefixlen(a, (int)prefix);
	return a;
}

/* Delete link `name` in the socket's namespace; a missing one is fine. */
static int delete_link(struct nl_sock *sk, const char *name, berth_error_t *err)
{
	struct rtnl_link *link = rtnl_link_alloc();
	int r;

	if (link == NULL)
		abort();
	rtnl_link_set_name(link, name);
	r = rtnl_link_delete(sk, link);
	rtnl_link_put(link);
	if (r < 0 && nl_errno(r) != ENOENT && nl_errno(r) != ENODEV)
		return nl_fail(err, r, "delete link", name);
	return 0;
}

/* ---- configuration ---- */

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

int berth_bridge_config_load(struct berth_bridge_config *cfg, berth_error_t *err)
{
	const char *bridge = getenv("BERTH_BRIDGE");
	const char *subnet = getenv("BERTH_SUBNET");
	const char *table = getenv("BERTH_NFT_TABLE");
	int r;

	if (bridge == NULL || *bridge == '\0')
		bridge = BERTH_BRIDGE_DEFAULT_NAME;
	if (subnet == NULL || *subnet == '\0')
		subnet = BERTH_BRIDGE_DEFAULT_SUBNET;
	if (table == NULL || *table == '\0')
		table = BERTH_BRIDGE_DEFAULT_TABLE;
	/* Both end up in nft's rules, quoted: a safe alphabet keeps them from saying more. */
	if (strlen(bridge) >= IFNAMSIZ || strspn(bridge, NAME_CHARS ".") != strlen(bridge) ||
	    bridge[0] == '.')
		return berth_error_set_plain(err, EINVAL,
		                             "bridge name `%s` is not valid (at most %d letters, "
		                             "digits, `_`, `-` or `.`)",
		                             bridge, IFNAMSIZ - 1);
	if (strlen(table) >= sizeof(cfg->table) || strspn(table, NAME_CHARS) != strlen(table))
		return berth_error_set_plain(err, EINVAL,
		                             "nftables table name `%s` must be letters, digits, "
		                             "`_` and `-`",
		                             table);
	r = berth_subnet_parse(subnet, &cfg->subnet, err);
	if (r < 0)
		return r;
	snprintf(cfg->bridge, sizeof(cfg->bridge), "%s", bridge);
	snprintf(cfg->table, sizeof(cfg->table), "%s", table);
	return 0;
}

/* ---- the host's setup ---- */

/* The bridge as it is: its index (0 when missing), whether it is up, its first IPv4 address. */
static void inspect_bridge(const char *name, int *index, bool *up, uint32_t *addr)
{
	cleanup_close int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;

	*index = 0;
	*up = false;
	*addr = 0;
	if (fd < 0)
		return;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
		return;
	*index = ifr.ifr_ifindex;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0)
		*up = (ifr.ifr_flags & IFF_UP) != 0;
	if (ioctl(fd, SIOCGIFADDR, &ifr) == 0)
		*addr = ntohl(((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr);
}

static bool forwarding_on(void)
{
	char buf[8] = "";
	cleanup_close int fd = open("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC);

	return fd >= 0 && read(fd, buf, sizeof(buf) - 1) > 0 && buf[0] == '1';
}

/* Whether table `ip TABLE` exists: one netlink request, no nft process. */
static bool nft_table_exists(const char *table)
{
	struct nfgenmsg g = {.nfgen_family = NFPROTO_IPV4, .version = NFNETLINK_V0};
	cleanup_nl_sock struct nl_sock *sk = open_nl(NETLINK_NETFILTER, NULL);
	struct nl_msg *msg;

	if (sk == NULL)
		return false;
	msg = nlmsg_alloc_simple((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, 0);
	if (msg == NULL)
		abort();
	if (nlmsg_append(msg, &g, sizeof(g), NLMSG_ALIGNTO) < 0 ||
	    nla_put_string(msg, NFTA_TABLE_NAME, table) < 0) {
		nlmsg_free(msg);
		return false;
	}
	/* The table comes back, then the acknowledgement; only the latter matters. */
	return nl_send_sync(sk, msg) == 0;
}

/* nft in PATH, or where Debian puts it (sbin is often missing from a user's PATH). */
static bool find_nft(char *path, size_t size)
{
	const char *env = getenv("PATH");
	cleanup_free char *dirs = xasprintf("%s:/usr/sbin:/sbin:/usr/local/sbin", env ? env : "");

	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		if (*d != '/')
			continue;
		if (snprintf(path, size, "%s/nft", d) < (int)size && access(path, X_OK) == 0)
			return true;
	}
	return false;
}

/*
 * The table, replaced whole in one nft transaction (the add-then-delete makes
 * the delete safe when it does not exist yet): masquerade what leaves the
 * subnet through any other interface, refuse new connections from the
 * containers to the host itself, and refuse traffic routed from the bridge
 * back into it (containers reach each other neither switched — the ports
 * are isolated — nor routed). Runs once per boot, not per start, so running
 * nft is cheaper than linking libnftables into every start.
 */
static int setup_nft(const struct berth_bridge_config *cfg, berth_error_t *err)
{
	char net[INET_ADDRSTRLEN], nft[PATH_MAX];
	cleanup_free char *rules = NULL;
	cleanup_close int in = -1, errs = -1;
	char *argv[] = {(char *)"nft", (char *)"-f", (char *)"/dev/stdin", NULL};
	posix_spawn_file_actions_t fa;
	char msg[NFT_STDERR_MAX];
	int status, r;
	pid_t pid;
	ssize_t n;

	if (!find_nft(nft, sizeof(nft)))
		return berth_error_set_plain(
		        err, ENOENT, "enableInternet needs nftables (apt install nftables)");
	berth_ipv4_format(cfg->subnet.network, net, sizeof(net));
	rules = xasprintf("add table ip %1$s\n"
	                  "delete table ip %1$s\n"
	                  "table ip %1$s {\n"
	                  "\tchain postrouting {\n"
	                  "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
	                  "\t\tip saddr %3$s/%4$u oifname != \"%2$s\" masquerade\n"
	                  "\t}\n"
	                  "\tchain input {\n"
	                  "\t\ttype filter hook input priority filter; policy accept;\n"
	                  "\t\tiifname \"%2$s\" ct state established,related accept\n"
	                  "\t\tiifname \"%2$s\" drop\n"
	                  "\t}\n"
	                  "\tchain forward {\n"
	                  "\t\ttype filter hook forward priority filter; policy accept;\n"
	                  "\t\tiifname \"%2$s\" oifname \"%2$s\" drop\n"
	                  "\t}\n"
	                  "}\n",
	                  cfg->table, cfg->bridge, net, cfg->subnet.prefix);
	in = memfd_create("berth-nft", MFD_CLOEXEC);
	errs = memfd_create("berth-nft-stderr", MFD_CLOEXEC);
	if (in < 0 || errs < 0)
		return berth_error_set(err, errno, "memfd_create");
	r = berth_write_all(in, rules, strlen(rules));
	if (r < 0 || lseek(in, 0, SEEK_SET) < 0)
		return berth_error_set(err, r < 0 ? -r : errno, "write the nftables rules");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, errs, 2);
	r = posix_spawn(&pid, nft, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return berth_error_set(err, r, "run `%s`", nft);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return berth_error_set(err, errno, "wait for `%s`", nft);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	n = pread(errs, msg, sizeof(msg) - 1, 0);
	msg[n > 0 ? n : 0] = '\0';
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	return berth_error_set_plain(err, EIO, "set up the nftables table `ip %s`: nft failed%s%s",
	                             cfg->table, n > 0 ? ": " : "", n > 0 ? msg : "");
}

/* Create the bridge (or find it), with the gateway's address, up. */
static int setup_bridge(const struct berth_bridge_config *cfg, berth_error_t *err)
{
	char gw[INET_ADDRSTRLEN], have[INET_ADDRSTRLEN];
	cleanup_nl_sock struct nl_sock *sk = open_nl(NETLINK_ROUTE, err);
	cleanup_free char *v6 = NULL;
	struct rtnl_link *link;
	struct rtnl_addr *addr;
	struct nl_addr *local, *bcast;
	uint32_t found, mask = ~0u << (32 - cfg->subnet.prefix);
	int index, r;
	bool up;

	if (sk == NULL)
		return berth_error_ret(err);
	berth_ipv4_format(cfg->subnet.gateway, gw, sizeof(gw));
	inspect_bridge(cfg->bridge, &index, &up, &found);
	if (index == 0) {
		link = rtnl_link_bridge_alloc();
		if (link == NULL)
			abort();
		rtnl_link_set_name(link, cfg->bridge);
		r = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
		rtnl_link_put(link);
		if (r < 0 && nl_errno(r) != EEXIST)
			return nl_fail(err, r, "create bridge", cfg->bridge);
		inspect_bridge(cfg->bridge, &index, &up, &found);
		if (index == 0)
			return berth_error_set_plain(err, ENODEV,
			                             "bridge `%s` vanished after its creation",
			                             cfg->bridge);
	}
	if (found != 0 && found != cfg->subnet.gateway) {
		berth_ipv4_format(found, have, sizeof(have));
		return berth_error_set_plain(err, EEXIST,
		                             "bridge `%s` exists with address %s, not %s: another "
		                             "subnet uses it (set BERTH_BRIDGE or BERTH_SUBNET)",
		                             cfg->bridge, have, gw);
	}
	/*
	 * No IPv6 on the host's side of the bridge: containers must not reach
	 * the host, and the IPv4 filter would not see IPv6 to a link-local
	 * address. (Missing file: IPv6 is off on this host.)
	 */
	v6 = xasprintf("/proc/sys/net/ipv6/conf/%s/disable_ipv6", cfg->bridge);
	r = berth_write_knob(AT_FDCWD, v6, "1", err);
	if (r < 0 && r != -ENOENT)
		return r;
	if (found == 0) {
		addr = rtnl_addr_alloc();
		if (addr == NULL)
			abort();
		local = ipv4_addr(cfg->subnet.gateway, cfg->subnet.prefix);
		bcast = ipv4_addr(cfg->subnet.network | ~mask, 32);
		rtnl_addr_set_ifindex(addr, index);
		rtnl_addr_set_family(addr, AF_INET);
		rtnl_addr_set_local(addr, local);
		rtnl_addr_set_prefixlen(addr, (int)cfg->subnet.prefix);
		rtnl_addr_set_broadcast(addr, bcast);
		r = rtnl_addr_add(sk, addr, 0);
		nl_addr_put(local);
		nl_addr_put(bcast);
		rtnl_addr_put(addr);
		if (r < 0 && nl_errno(r) != EEXIST)
			return nl_fail(err, r, "give the bridge its address", cfg->bridge);
	}
	if (!up) {
		r = berth_net_link_up(cfg->bridge, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int lock_dir(const char *dir, berth_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/" LEASE_LOCK, dir);
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return berth_error_set(err, errno, "open `%s`", path);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int r = berth_error_set(err, errno, "lock `%s`", path);
			close(fd);
			return r;
		}
	}
	return fd;
}

/*
 * The host's part, done by whichever start needs it first and checked on
 * every start (a few syscalls, no process): a bridge removed by hand, or a
 * flushed ruleset, is put back. The lock keeps concurrent starts from doing
 * it twice at once; each step is idempotent anyway.
 */
static int ensure_host(const struct berth_bridge_config *cfg, const char *dir, int *bridge_index,
                       berth_error_t *err)
{
	cleanup_close int lock = -1;
	uint32_t addr;
	bool up;
	int r;

	inspect_bridge(cfg->bridge, bridge_index, &up, &addr);
	if (*bridge_index != 0 && up && addr == cfg->subnet.gateway && forwarding_on() &&
	    nft_table_exists(cfg->table))
		return 0;
	lock = lock_dir(dir, err);
	if (lock < 0)
		return lock;
	r = setup_bridge(cfg, err);
	if (r < 0)
		return r;
	if (!forwarding_on()) {
		r = berth_write_knob(AT_FDCWD, "/proc/sys/net/ipv4/ip_forward", "1", err);
		if (r < 0)
			return berth_error_wrap(err,
			                        "enable IPv4 forwarding (net.ipv4.ip_forward)");
	}
	if (!nft_table_exists(cfg->table)) {
		r = setup_nft(cfg, err);
		if (r < 0)
			return r;
	}
	inspect_bridge(cfg->bridge, bridge_index, &up, &addr);
	if (*bridge_index == 0)
		return berth_error_set_plain(err, ENODEV, "bridge `%s` is missing", cfg->bridge);
	return 0;
}

/* ---- leases ---- */

/* The target of symlink `name` in `dir_fd` (a lease, or a container's record), or NULL. */
static char *read_link(int dir_fd, const char *name)
{
	char buf[PATH_MAX];
	ssize_t n = readlinkat(dir_fd, name, buf, sizeof(buf));

	if (n <= 0 || (size_t)n >= sizeof(buf))
		return NULL;
	return xstrndup(buf, (size_t)n);
}

/*
 * A destroyed container's lease, until its veth is deleted:
 * "departed:VETH:IFINDEX". Deleting a veth waits for RCU grace periods
 * under the RTNL lock, 10 to 35 ms each here and one deletion at a time
 * host-wide, which a destroy does not wait for: it repoints the lease, and
 * berth_bridge_sweep_departed() — berthd's housekeeping on its thread pool,
 * `berth run`'s child that tidies up after it — deletes the veth and gives
 * the address back. Until then the address stays leased, so that no
 * successor shares the bridge with a veth that still answers for it; were
 * the sweep never to come, the kernel removes the veth with the container's
 * network namespace, and a full subnet's reclaim frees the address.
 */
#define DEPARTED_PREFIX "departed:"

static bool is_departed(const char *owner)
{
	return owner != NULL && strncmp(owner, DEPARTED_PREFIX, strlen(DEPARTED_PREFIX)) == 0;
}

static bool departed_parse(const char *owner, char veth[IFNAMSIZ], unsigned *ifindex)
{
	const char *p, *colon;
	char *end;
	unsigned long v;

	if (!is_departed(owner))
		return false;
	p = owner + strlen(DEPARTED_PREFIX);
	colon = strrchr(p, ':');
	if (colon == NULL || colon == p || (size_t)(colon - p) >= IFNAMSIZ)
		return false;
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || v == 0 || v > UINT_MAX)
		return false;
	memcpy(veth, p, (size_t)(colon - p));
	veth[colon - p] = '\0';
	*ifindex = (unsigned)v;
	return true;
}

/*
 * Delete the veth of departed lease `name` (its owner read under the lease
 * directory's lock, which the caller holds) and give the address back. The
 * veth's name is the leased address's: nobody else makes a veth of that
 * name while the lease is held, so the one of this index is the departed
 * container's.
 */
static int end_departed(int lease_fd, const char *name, const char *owner, struct nl_sock **sk,
                        berth_error_t *err)
{
	char veth[IFNAMSIZ];
	unsigned ifindex;
	int r;

	if (!departed_parse(owner, veth, &ifindex))
		return berth_error_set_plain(err, EINVAL, "lease `%s` is not a departed one", name);
	if (if_nametoindex(veth) == ifindex) {
		if (*sk == NULL && (*sk = open_nl(NETLINK_ROUTE, err)) == NULL)
			return berth_error_ret(err);
		r = delete_link(*sk, veth, err);
		if (r < 0)
			return r;
	}
	unlinkat(lease_fd, name, 0);
	return 0;
}

/* Point lease `name` at `target`, in one step (a new symlink renamed over it). */
static int repoint_lease(int lease_fd, const char *name, const char *target)
{
	char tmp[INET_ADDRSTRLEN + 8];
	int r;

	snprintf(tmp, sizeof(tmp), ".%s.new", name);
	unlinkat(lease_fd, tmp, 0);
	if (symlinkat(target, lease_fd, tmp) < 0)
		return -errno;
	if (renameat(lease_fd, tmp, lease_fd, name) < 0) {
		r = -errno;
		unlinkat(lease_fd, tmp, 0);
		return r;
	}
	return 0;
}

/*
 * The lease `name` (of `veth`) is departing: repointed at the veth while
 * it exists, given back at once when it is already gone. Under the lease
 * directory's lock.
 */
static void depart(int lease_fd, const char *name, const char *veth)
{
	unsigned ifindex = if_nametoindex(veth);
	char target[sizeof(DEPARTED_PREFIX) + IFNAMSIZ + 16];

	snprintf(target, sizeof(target), DEPARTED_PREFIX "%s:%u", veth, ifindex);
	if (ifindex == 0 || repoint_lease(lease_fd, name, target) < 0)
		unlinkat(lease_fd, name, 0);
}

/*
 * Whether the owner a lease names is alive: a container directory still
 * locked by a live container, or a prepared slot still pinned (its file a
 * network namespace: see "prepared slots" below).
 */
static bool lease_alive(const char *owner, const char *locks)
{
	struct statfs sfs;
	struct stat st;

	if (statfs(owner, &sfs) == 0 && sfs.f_type == NSFS_MAGIC)
		return true;
	if (stat(owner, &st) < 0)
		return errno != ENOENT;
	return berth_proc_locks_hold(locks, (unsigned long long)st.st_ino);
}

/*
 * Free the leases of containers that are gone without a destroy (SIGKILLed
 * berth run, a crashed host process). The container directory's flock tells:
 * the init holds it for the container's life. It is read from /proc/locks,
 * not probed with flock(), which would briefly take it and make a
 * concurrent start of that name fail, or a destroy skip its cleanup.
 * Departed ones are ended here and now (the subnet is full). Under the
 * lease directory's lock.
 */
static void reclaim(int dir_fd)
{
	cleanup_nl_sock struct nl_sock *sk = NULL;
	cleanup_free char *locks = NULL;
	cleanup_closedir DIR *d = NULL;
	struct dirent *e;
	int fd;

	if (berth_read_file_at(AT_FDCWD, "/proc/locks", PROC_LOCKS_MAX, &locks, NULL, NULL) < 0)
		return;
	fd = dup(dir_fd);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		cleanup_free char *owner = NULL;
		struct in_addr in;

		if (inet_pton(AF_INET, e->d_name, &in) != 1)
			continue;
		owner = read_link(dir_fd, e->d_name);
		if (owner == NULL)
			continue;
		if (is_departed(owner))
			end_departed(dir_fd, e->d_name, owner, &sk, NULL);
		else if (!lease_alive(owner, locks))
			unlinkat(dir_fd, e->d_name, 0);
	}
}

/* Who a lease is for: a container directory, or a prepared slot in `pool` (named by its address).
 */
struct lease_owner {
	const char *path;
	const char *pool;
	int bridge_index;
};

static void slot_name(int bridge_index, uint32_t addr, char *buf, size_t len);

static void owner_path(const struct lease_owner *o, uint32_t addr, char *buf, size_t len)
{
	char name[128];

	if (o->pool == NULL) {
		snprintf(buf, len, "%s", o->path);
		return;
	}
	slot_name(o->bridge_index, addr, name, sizeof(name));
	snprintf(buf, len, "%s/%s", o->pool, name);
}

/*
 * Lease one address of the subnet for `owner`: a symlink named after the
 * address and pointing to the container directory (or the slot), made in
 * one step that fails if the address is taken (and is never seen
 * half-written). The scan starts at a random address, so a freed address is
 * rarely reused at once and a sparse subnet needs one try; only a full
 * subnet pays for reclaiming.
 */
static int lease(const struct berth_bridge_config *cfg, int dir_fd, const char *dir,
                 const struct lease_owner *owner, uint32_t *out, berth_error_t *err)
{
	uint32_t n = berth_subnet_capacity(&cfg->subnet), start = 0;
	cleanup_close int lock = -1;
	char net[INET_ADDRSTRLEN];

	lock = lock_dir(dir, err);
	if (lock < 0)
		return lock;
	if (getrandom(&start, sizeof(start), GRND_NONBLOCK) != (ssize_t)sizeof(start))
		start = (uint32_t)getpid();
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t k = 0; k < n; k++) {
			uint32_t a = berth_subnet_address(&cfg->subnet, (start + k) % n);
			char name[INET_ADDRSTRLEN], target[PATH_MAX];

			berth_ipv4_format(a, name, sizeof(name));
			owner_path(owner, a, target, sizeof(target));
			if (symlinkat(target, dir_fd, name) == 0) {
				*out = a;
				return 0;
			}
			if (errno != EEXIST)
				return berth_error_set(err, errno, "create the lease `%s/%s`", dir,
				                       name);
		}
		if (pass == 0)
			reclaim(dir_fd);
	}
	berth_ipv4_format(cfg->subnet.network, net, sizeof(net));
	return berth_error_set_plain(err, ENOSPC,
	                             "subnet %s/%u is exhausted: all %u container addresses are in "
	                             "use (set BERTH_SUBNET to a larger one)",
	                             net, cfg->subnet.prefix, n);
}

/* ---- one container ---- */

static int take_slot(const struct berth_bridge_config *cfg, int index, int lease_fd,
                     const char *lease_dir, const char *owner, uint32_t *addr);

int berth_bridge_prepare(const struct berth_bridge_config *cfg, const char *container_dir,
                         int dir_fd, struct berth_bridge_lease *lease_out, int *netns_fd,
                         berth_error_t *err)
{
	cleanup_free char *dir = xasprintf(BERTH_BRIDGE_RUN_DIR "/%s", cfg->bridge);
	cleanup_free char *path = NULL;
	cleanup_close int lease_dir = -1;
	char owner[PATH_MAX], name[INET_ADDRSTRLEN];
	struct lease_owner lo = {.path = owner};
	uint32_t addr = 0;
	int index = 0, slot = -1, r;

	if (realpath(container_dir, owner) == NULL)
		return berth_error_set(err, errno, "container directory `%s`", container_dir);
	lease_dir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lease_dir < 0) {
		r = berth_mkdir_p(dir, 0700, err);
		if (r < 0)
			return berth_error_wrap(err, "lease directory");
		lease_dir = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (lease_dir < 0)
			return berth_error_set(err, errno, "open `%s`", dir);
	}
	r = ensure_host(cfg, dir, &index, err);
	if (r < 0)
		return r;
	BERTH_TRACE("helper: bridge ready");
	/* A container of this name that died without a destroy left its lease here. */
	berth_bridge_release(container_dir, NULL);
	if (netns_fd != NULL)
		slot = take_slot(cfg, index, lease_dir, dir, owner, &addr);
	if (slot < 0) {
		r = lease(cfg, lease_dir, dir, &lo, &addr, err);
		if (r < 0)
			return r;
	}
	berth_ipv4_format(addr, name, sizeof(name));
	path = xasprintf("%s/%s", dir, name);
	/* The container's record: a symlink to its lease (one step, like the lease). */
	if (symlinkat(path, dir_fd, BERTH_CONTAINER_NET_RECORD) < 0) {
		r = berth_error_set(err, errno, "record the lease in `%s`", container_dir);
		if (slot >= 0) {
			/* The slot's veth is ours now: it goes with it, before the address. */
			cleanup_nl_sock struct nl_sock *sk = open_nl(NETLINK_ROUTE, NULL);
			char veth[IFNAMSIZ];

			berth_bridge_veth_name(addr, veth);
			if (sk != NULL)
				delete_link(sk, veth, NULL);
			close(slot);
		}
		unlinkat(lease_dir, name, 0);
		return r;
	}
	memset(lease_out, 0, sizeof(*lease_out));
	lease_out->address = addr;
	lease_out->subnet = cfg->subnet;
	lease_out->bridge_index = index;
	lease_out->prepared = slot >= 0;
	berth_bridge_veth_name(addr, lease_out->veth);
	if (slot >= 0)
		*netns_fd = slot;
	BERTH_TRACE(slot >= 0 ? "helper: prepared slot taken" : "helper: address leased");
	return 0;
}

struct nl_sock *berth_bridge_host_socket(berth_error_t *err)
{
	return open_nl(NETLINK_ROUTE, err);
}

/*
 * One request: the host end (named after the address, a port of the bridge,
 * up) in the host's namespace, where the socket is bound, and its peer
 * `eth0` in ours — named by our pid (1, resolved in the init's pid
 * namespace), or by `ns_fd` (a slot made by a thread). The peer cannot be
 * brought up in the same request: the kernel opens it before the pair is
 * joined, and veth refuses (ENOTCONN).
 */
static int create_veth(struct nl_sock *host, const struct berth_bridge_lease *l, int ns_fd,
                       bool *exists, berth_error_t *err)
{
	struct rtnl_link *link = rtnl_link_veth_alloc();
	struct rtnl_link *peer;
	int r;

	if (link == NULL)
		abort();
	rtnl_link_set_name(link, l->veth);
	rtnl_link_set_master(link, l->bridge_index);
	rtnl_link_set_flags(link, IFF_UP);
	peer = rtnl_link_veth_get_peer(link);
	rtnl_link_set_name(peer, "eth0");
	if (ns_fd >= 0)
		rtnl_link_set_ns_fd(peer, ns_fd);
	else
		rtnl_link_set_ns_pid(peer, getpid());
	rtnl_link_put(peer);
	r = rtnl_link_add(host, link, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(link);
	*exists = r < 0 && nl_errno(r) == EEXIST;
	if (r < 0)
		return nl_fail(err, r, "create veth", l->veth);
	return 0;
}

/* Ports of the bridge with IFLA_BRPORT_ISOLATED exchange no frames with each other. */
static int isolate_port(struct nl_sock *host, const char *name, berth_error_t *err)
{
	struct rtnl_link *link = NULL;
	struct ifinfomsg ifi = {.ifi_family = AF_BRIDGE};
	struct nlattr *nest;
	struct nl_msg *msg;
	int r;

	r = rtnl_link_get_kernel(host, 0, name, &link);
	if (r < 0)
		return nl_fail(err, r, "find veth", name);
	ifi.ifi_index = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	msg = nlmsg_alloc_simple(RTM_SETLINK, 0);
	if (msg == NULL)
		abort();
	if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    (nest = nla_nest_start(msg, IFLA_PROTINFO | NLA_F_NESTED)) == NULL ||
	    nla_put_u8(msg, IFLA_BRPORT_ISOLATED, 1) < 0) {
		nlmsg_free(msg);
		return berth_error_set_plain(err, EMSGSIZE, "isolate bridge port `%s`", name);
	}
	nla_nest_end(msg, nest);
	r = nl_send_sync(host, msg);
	if (r < 0)
		return nl_fail(err, r, "isolate bridge port", name);
	return 0;
}

/* eth0's address and the default route through the bridge, in our namespace. */
static int configure_eth0(const struct berth_bridge_lease *l, berth_error_t *err)
{
	cleanup_nl_sock struct nl_sock *sk = open_nl(NETLINK_ROUTE, err);
	uint32_t mask = ~0u << (32 - l->subnet.prefix);
	struct rtnl_addr *addr;
	struct rtnl_route *route;
	struct rtnl_nexthop *nh;
	struct nl_addr *local, *bcast, *dst, *gw;
	unsigned index;
	int r;

	if (sk == NULL)
		return berth_error_ret(err);
	index = if_nametoindex("eth0");
	if (index == 0)
		return berth_error_set(err, errno, "find `eth0` in the container");
	r = berth_net_link_up("eth0", err);
	if (r < 0)
		return r;
	addr = rtnl_addr_alloc();
	if (addr == NULL)
		abort();
	local = ipv4_addr(l->address, l->subnet.prefix);
	bcast = ipv4_addr(l->subnet.network | ~mask, 32);
	rtnl_addr_set_ifindex(addr, (int)index);
	rtnl_addr_set_family(addr, AF_INET);
	rtnl_addr_set_local(addr, local);
	rtnl_addr_set_prefixlen(addr, (int)l->subnet.prefix);
	rtnl_addr_set_broadcast(addr, bcast);
	r = rtnl_addr_add(sk, addr, 0);
	nl_addr_put(local);
	nl_addr_put(bcast);
	rtnl_addr_put(addr);
	if (r < 0)
		return nl_fail(err, r, "give eth0 its address in", "the container");

	route = rtnl_route_alloc();
	nh = rtnl_route_nh_alloc();
	if (route == NULL || nh == NULL)
		abort();
	dst = ipv4_addr(0, 0);
	gw = ipv4_addr(l->subnet.gateway, 32);
	rtnl_route_set_family(route, AF_INET);
	rtnl_route_set_table(route, RT_TABLE_MAIN);
	rtnl_route_set_scope(route, RT_SCOPE_UNIVERSE);
	rtnl_route_set_protocol(route, RTPROT_BOOT);
	rtnl_route_set_dst(route, dst);
	rtnl_route_nh_set_ifindex(nh, (int)index);
	rtnl_route_nh_set_gateway(nh, gw);
	rtnl_route_add_nexthop(route, nh); /* the route owns it now */
	r = rtnl_route_add(sk, route, NLM_F_EXCL);
	nl_addr_put(dst);
	nl_addr_put(gw);
	rtnl_route_put(route);
	if (r < 0)
		return nl_fail(err, r, "add the default route in", "the container");
	return 0;
}

/* The veth pair, the port flag, eth0's address and route (see berth_bridge_attach()). */
static int attach(struct nl_sock *host, const struct berth_bridge_lease *l, int ns_fd,
                  berth_error_t *err)
{
	bool exists = false;
	int r;

	r = create_veth(host, l, ns_fd, &exists, err);
	if (r < 0 && exists) {
		/*
		 * Our lease is exclusive, so a link of this name is a leftover of a
		 * container that had this address and whose namespace is still held
		 * somewhere: it is not used by anyone.
		 */
		r = delete_link(host, l->veth, err);
		if (r == 0)
			r = create_veth(host, l, ns_fd, &exists, err);
	}
	if (r < 0)
		return r;
	BERTH_TRACE("init: veth created");
	r = isolate_port(host, l->veth, err);
	if (r < 0)
		return r;
	r = configure_eth0(l, err);
	if (r < 0)
		return r;
	BERTH_TRACE("init: eth0 configured");
	return 0;
}

int berth_bridge_attach(struct nl_sock *host, const struct berth_bridge_lease *l,
                        berth_error_t *err)
{
	cleanup_nl_sock struct nl_sock *owned = host; /* ours now: freed on return */

	return attach(owned, l, -1, err);
}

int berth_bridge_release(const char *container_dir, berth_error_t *err)
{
	cleanup_close int cdir = open(container_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cleanup_free char *record = NULL;
	cleanup_free char *owner = NULL;
	cleanup_free char *dir = NULL;
	cleanup_close int lock = -1;
	char self[PATH_MAX], veth[IFNAMSIZ];
	struct in_addr in;
	const char *name;

	if (cdir < 0)
		return errno == ENOENT ? 0
		                       : berth_error_set(err, errno, "open `%s`", container_dir);
	record = read_link(cdir, BERTH_CONTAINER_NET_RECORD);
	if (record == NULL)
		return 0;
	name = strrchr(record, '/');
	if (name == NULL || inet_pton(AF_INET, name + 1, &in) != 1 ||
	    realpath(container_dir, self) == NULL) {
		unlinkat(cdir, BERTH_CONTAINER_NET_RECORD, 0);
		return berth_error_set_plain(err, EINVAL,
		                             "`%s/" BERTH_CONTAINER_NET_RECORD "` is damaged",
		                             container_dir);
	}
	dir = xstrndup(record, (size_t)(name - record));
	berth_bridge_veth_name(ntohl(in.s_addr), veth);
	lock = lock_dir(dir, err);
	if (lock < 0)
		return lock;
	/*
	 * Only while the lease is still ours: after the container died it may
	 * have been reclaimed and handed, with the veth name, to another. The
	 * lease departs: the veth is deleted, and the address given back, by
	 * a sweep off the destroy's path (see "departed" above).
	 */
	owner = read_link(AT_FDCWD, record);
	if (owner != NULL && strcmp(owner, self) == 0) {
		cleanup_close int lease_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (lease_fd < 0)
			return berth_error_set(err, errno, "open `%s`", dir);
		depart(lease_fd, name + 1, veth);
	}
	unlinkat(cdir, BERTH_CONTAINER_NET_RECORD, 0);
	return 0;
}

int berth_bridge_sweep_departed(berth_error_t *err)
{
	struct berth_bridge_config cfg;
	cleanup_free char *dir = NULL;
	cleanup_close int lease_fd = -1;
	cleanup_closedir DIR *d = NULL;
	cleanup_nl_sock struct nl_sock *sk = NULL;
	struct dirent *e;
	int fd, r, left = 0;

	r = berth_bridge_config_load(&cfg, err);
	if (r < 0)
		return r;
	dir = xasprintf(BERTH_BRIDGE_RUN_DIR "/%s", cfg.bridge);
	lease_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lease_fd < 0)
		return errno == ENOENT ? 0 : berth_error_set(err, errno, "open `%s`", dir);
	fd = dup(lease_fd);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		r = berth_error_set(err, errno, "read `%s`", dir);
		if (fd >= 0)
			close(fd);
		return r;
	}
	while ((e = readdir(d)) != NULL) {
		cleanup_free char *owner = NULL;
		cleanup_free char *now = NULL;
		char veth[IFNAMSIZ];
		struct in_addr in;
		unsigned ifindex;
		int lock;

		if (inet_pton(AF_INET, e->d_name, &in) != 1)
			continue;
		owner = read_link(lease_fd, e->d_name);
		if (!departed_parse(owner, veth, &ifindex))
			continue;
		/*
		 * Without the lease directory's lock, which starts take: the
		 * deletion waits for RCU grace periods, tens of milliseconds.
		 * While the lease is departed nobody else can have an address
		 * of that name, so the veth of this name and index is the
		 * departed container's. (A full subnet's reclaim may end it at
		 * the same time; one of the deletions then finds it gone.)
		 */
		if (if_nametoindex(veth) == ifindex) {
			if (sk == NULL &&
			    (sk = open_nl(NETLINK_ROUTE, left == 0 ? err : NULL)) == NULL) {
				left++;
				continue;
			}
			/* The first failure is the one reported; the sweep goes on. */
			if (delete_link(sk, veth, left == 0 ? err : NULL) < 0) {
				left++;
				continue;
			}
		}
		/* The address is free, unless the lease changed hands meanwhile. */
		lock = lock_dir(dir, left == 0 ? err : NULL);
		if (lock < 0) {
			left++;
			continue;
		}
		now = read_link(lease_fd, e->d_name);
		if (now != NULL && strcmp(now, owner) == 0)
			unlinkat(lease_fd, e->d_name, 0);
		close(lock);
	}
	return left == 0 ? 0 : berth_error_wrap(err, "give back departed addresses");
}

/*
 * ---- prepared slots ----
 *
 * Most of what bridge networking adds to a start is the kernel's: the veth
 * pair (two devices registered), the port flag, eth0's address and route —
 * about a millisecond and a half in the init. berthd makes a few bridged
 * network namespaces ahead (berth_bridge_pool_fill(), on its thread pool):
 * lo up, eth0 addressed and routed, its peer an isolated port of the bridge,
 * the address leased. They are slots as netpool.c's (a bind-mounted
 * namespace), in a directory of their own per bridge,
 * POOL/bridge-BRIDGE/slot-MNTNS-IFINDEX-ADDRESS, named after the bridge's
 * interface index (a bridge deleted and made again has another, and its
 * ports are gone: such slots are never taken) and the leased address.
 *
 * A slot's lease points to the slot's file, and lease_alive() counts a file
 * that is still a network namespace as alive: a full subnet's reclaim
 * leaves pooled leases alone. A start takes a slot under the lease
 * directory's lock: the lease must still be the slot's, then the unmount
 * makes the slot the start's, and the lease is pointed at the container's
 * directory (a new symlink renamed over it). From there on it is a
 * container's lease like any other: berth_bridge_release() removes the veth
 * and the lease at destroy. berthd removes its slots when it stops
 * (berth_bridge_pool_drain()), so nothing of them is left behind.
 */

#define SLOT_PREFIX      "slot-"
#define BRIDGE_POOL_NAME "bridge-"

static void slot_name(int bridge_index, uint32_t addr, char *buf, size_t len)
{
	size_t n;

	berth_netns_slot_prefix(buf, len);
	n = strlen(buf);
	snprintf(buf + n, len - n, "%d-%08x", bridge_index, addr);
}

/* A slot file's name: its bridge's index and its address; false for anything else. */
static bool slot_parse(const char *name, int *bridge_index, uint32_t *addr)
{
	unsigned long long mntns;
	unsigned a;
	int index, end = 0;

	if (sscanf(name, SLOT_PREFIX "%llx-%d-%8x%n", &mntns, &index, &a, &end) != 3 ||
	    name[end] != '\0')
		return false;
	*bridge_index = index;
	*addr = a;
	return true;
}

/* This bridge's pool directory, or NULL when there is no pool. */
static char *pool_path(const struct berth_bridge_config *cfg)
{
	const char *pool = berth_netns_pool_dir();

	return pool != NULL ? xasprintf("%s/" BRIDGE_POOL_NAME "%s", pool, cfg->bridge) : NULL;
}

/* Whether the lease of `addr` still belongs to `owner`. */
static bool lease_is(int lease_fd, uint32_t addr, const char *owner)
{
	char name[INET_ADDRSTRLEN];
	cleanup_free char *target = NULL;

	berth_ipv4_format(addr, name, sizeof(name));
	target = read_link(lease_fd, name);
	return target != NULL && strcmp(target, owner) == 0;
}

/*
 * In the helper: take a slot of this bridge (`index`) and move its lease to
 * `owner`. Returns the namespace's descriptor, or -1 when there is none to
 * take (the start then makes its own veth).
 */
static int take_slot(const struct berth_bridge_config *cfg, int index, int lease_fd,
                     const char *lease_dir, const char *owner, uint32_t *addr)
{
	cleanup_free char *pool = pool_path(cfg);
	cleanup_closedir DIR *dir = NULL;
	cleanup_close int lock = -1;
	struct dirent *de;

	if (pool == NULL || (dir = opendir(pool)) == NULL)
		return -1;
	lock = lock_dir(lease_dir, NULL);
	if (lock < 0)
		return -1;
	while ((de = readdir(dir)) != NULL) {
		char slot[PATH_MAX], name[INET_ADDRSTRLEN];
		uint32_t a;
		int i, fd;

		if (!slot_parse(de->d_name, &i, &a) || i != index)
			continue;
		if (snprintf(slot, sizeof(slot), "%s/%s", pool, de->d_name) >= (int)sizeof(slot))
			continue;
		fd = openat(dirfd(dir), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* Only a pinned slot whose lease is still its own (berthd drops the others). */
		if (!berth_netns_is_netns(fd) || !lease_is(lease_fd, a, slot) ||
		    umount2(slot, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
			close(fd);
			continue;
		}
		unlinkat(dirfd(dir), de->d_name, 0);
		berth_ipv4_format(a, name, sizeof(name));
		if (repoint_lease(lease_fd, name, owner) < 0) {
			/*
			 * Unpinned, the namespace and its veth end with this
			 * descriptor; the lease, naming a file that is gone, is
			 * reclaimed when the subnet is full.
			 */
			close(fd);
			continue;
		}
		*addr = a;
		return fd;
	}
	return -1;
}

/*
 * Remove slot `name` of `pool`: unpinned, its veth going with the
 * namespace and — when its lease is still its own — its address departing
 * with the veth. Under the lease directory's lock.
 */
static void drop_slot(int pool_fd, const char *pool, const char *name, int lease_fd)
{
	char slot[PATH_MAX], addr_name[INET_ADDRSTRLEN], veth[IFNAMSIZ];
	uint32_t a;
	int index;

	if (!slot_parse(name, &index, &a) ||
	    snprintf(slot, sizeof(slot), "%s/%s", pool, name) >= (int)sizeof(slot))
		return;
	umount2(slot, MNT_DETACH | UMOUNT_NOFOLLOW);
	if (lease_is(lease_fd, a, slot)) {
		berth_bridge_veth_name(a, veth);
		berth_ipv4_format(a, addr_name, sizeof(addr_name));
		depart(lease_fd, addr_name, veth);
	}
	unlinkat(pool_fd, name, 0);
}

/* One new slot, made by the calling thread (its network namespace switched and back). */
static int make_slot(const struct berth_bridge_config *cfg, int index, const char *pool,
                     int pool_fd, const char *lease_dir, int lease_fd, int home, berth_error_t *err)
{
	cleanup_nl_sock struct nl_sock *host = open_nl(NETLINK_ROUTE, err);
	struct lease_owner lo = {.pool = pool, .bridge_index = index};
	struct berth_bridge_lease l = {.subnet = cfg->subnet, .bridge_index = index};
	char name[128], slot[PATH_MAX], addr_name[INET_ADDRSTRLEN];
	cleanup_close int ns = -1;
	int fd, r;

	if (host == NULL)
		return berth_error_ret(err);
	r = lease(cfg, lease_fd, lease_dir, &lo, &l.address, err);
	if (r < 0)
		return r;
	berth_ipv4_format(l.address, addr_name, sizeof(addr_name));
	berth_bridge_veth_name(l.address, l.veth);
	slot_name(index, l.address, name, sizeof(name));
	snprintf(slot, sizeof(slot), "%s/%s", pool, name);
	fd = openat(pool_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	if (fd < 0) {
		r = berth_error_set(err, errno, "create `%s`", slot);
		unlinkat(lease_fd, addr_name, 0);
		return r;
	}
	close(fd);
	if (unshare(CLONE_NEWNET) < 0) {
		r = berth_error_set(err, errno, "create a network namespace");
	} else {
		ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (ns < 0)
			r = berth_error_set(err, errno, "open `/proc/thread-self/ns/net`");
		else if (berth_net_loopback_up(err) < 0 || attach(host, &l, ns, err) < 0)
			r = berth_error_ret(err);
		else if (mount("/proc/thread-self/ns/net", slot, NULL, MS_BIND, NULL) < 0)
			r = berth_error_set(err, errno, "pin the network namespace at `%s`", slot);
		/* Back home; failing that, this thread would go on in the new namespace. */
		if (setns(home, CLONE_NEWNET) < 0)
			abort();
	}
	if (r == 0)
		return 0;
	/* The veth first, then the address: nothing of the slot may outlive its lease. */
	delete_link(host, l.veth, NULL);
	unlinkat(pool_fd, name, 0);
	unlinkat(lease_fd, addr_name, 0);
	return r;
}

/*
 * Open this bridge's pool and lease directories; 0 with both open, or 1
 * when there is nothing to do (no pool, no bridge set up yet, or no slots).
 */
static int open_pool(const struct berth_bridge_config *cfg, bool create, char **pool, DIR **dir,
                     char **lease_dir, int *lease_fd, berth_error_t *err)
{
	int r;

	*pool = pool_path(cfg);
	*lease_dir = xasprintf(BERTH_BRIDGE_RUN_DIR "/%s", cfg->bridge);
	if (*pool == NULL)
		return 1;
	*lease_fd = open(*lease_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*lease_fd < 0)
		return 1;
	if (create) {
		r = berth_mkdir_p(*pool, 0700, err);
		if (r < 0)
			return berth_error_wrap(err, "bridged network namespace pool");
	}
	*dir = opendir(*pool);
	if (*dir == NULL)
		return errno == ENOENT && !create ? 1
		                                  : berth_error_set(err, errno, "open `%s`", *pool);
	return 0;
}

int berth_bridge_pool_fill(unsigned want, berth_error_t *err)
{
	struct berth_bridge_config cfg;
	cleanup_free char *pool = NULL;
	cleanup_free char *lease_dir = NULL;
	cleanup_closedir DIR *dir = NULL;
	cleanup_close int lease_fd = -1;
	cleanup_close int home = -1;
	char own[64];
	struct dirent *de;
	unsigned have = 0;
	uint32_t gw;
	int index, r;
	bool up;

	if (want == 0)
		return 0;
	if (want > 16)
		want = 16;
	r = berth_bridge_config_load(&cfg, err);
	if (r < 0)
		return r;
	/* The host's setup is the first bridged start's (it says what is missing). */
	inspect_bridge(cfg.bridge, &index, &up, &gw);
	if (index == 0 || !up || gw != cfg.subnet.gateway)
		return 0;
	r = open_pool(&cfg, true, &pool, &dir, &lease_dir, &lease_fd, err);
	if (r != 0)
		return r < 0 ? r : 0;
	berth_netns_slot_prefix(own, sizeof(own));
	while ((de = readdir(dir)) != NULL) {
		char slot[PATH_MAX];
		uint32_t a;
		int i, fd;

		if (!slot_parse(de->d_name, &i, &a) ||
		    snprintf(slot, sizeof(slot), "%s/%s", pool, de->d_name) >= (int)sizeof(slot))
			continue;
		fd = openat(dirfd(dir), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!berth_netns_is_netns(fd)) {
			berth_netns_remove_if_stale(dirfd(dir), de->d_name, fd);
		} else if (i == index && lease_is(lease_fd, a, slot)) {
			have++;
		} else if (strncmp(de->d_name, own, strlen(own)) == 0) {
			/* Of a bridge made again, or its lease reclaimed: of no use. */
			cleanup_close int lock = lock_dir(lease_dir, NULL);

			if (lock >= 0)
				drop_slot(dirfd(dir), pool, de->d_name, lease_fd);
		}
		close(fd);
	}
	if (have < want) {
		home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (home < 0)
			return berth_error_set(err, errno, "open `/proc/thread-self/ns/net`");
	}
	for (; have < want; have++) {
		r = make_slot(&cfg, index, pool, dirfd(dir), lease_dir, lease_fd, home, err);
		if (r < 0)
			return berth_error_wrap(err, "bridged network namespace pool");
	}
	return 0;
}

int berth_bridge_pool_drain(berth_error_t *err)
{
	struct berth_bridge_config cfg;
	cleanup_free char *pool = NULL;
	cleanup_free char *lease_dir = NULL;
	cleanup_closedir DIR *dir = NULL;
	cleanup_close int lease_fd = -1;
	cleanup_close int lock = -1;
	char own[64];
	struct dirent *de;
	int r;

	r = berth_bridge_config_load(&cfg, err);
	if (r < 0)
		return r;
	r = open_pool(&cfg, false, &pool, &dir, &lease_dir, &lease_fd, err);
	if (r != 0)
		return r < 0 ? r : 0;
	lock = lock_dir(lease_dir, err);
	if (lock < 0)
		return lock;
	/* Ours only: another mount namespace's slots are plain files here, not ours to end. */
	berth_netns_slot_prefix(own, sizeof(own));
	while ((de = readdir(dir)) != NULL)
		if (strncmp(de->d_name, own, strlen(own)) == 0)
			drop_slot(dirfd(dir), pool, de->d_name, lease_fd);
	rmdir(pool);
	close(steal_fd(&lock));
	return berth_bridge_sweep_departed(err);
}
