/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container runtime: turns a root filesystem and a start spec into a
 * running, isolated process tree, and reports its exit.
 *
 * Container setup never happens in the calling process (which may be the
 * multithreaded daemon): berth_container_start() spawns the single-threaded
 * helper `berth-runtime`, which creates the cgroup and clones the container's
 * init with CLONE_PARENT, so that the init is the caller's child and the
 * caller can wait for it. The helper is exec'd, or cloned by the caller's
 * zygote (berth_runtime_zygote_start(): berthd), or forked by a small
 * caller (berth_runtime_fork_helper(): `berth run`); the init and exec'd
 * processes are the caller's children either way. All calls here are
 * blocking but short; the daemon runs start/exec/destroy on its worker
 * threads and polls pidfds on its loop.
 */
#ifndef BERTH_RUNTIME_H
#define BERTH_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "berth/error.h"

enum berth_net_mode {
	BERTH_NET_LOOPBACK = 0, /* own network namespace with lo up (the default) */
	BERTH_NET_NONE,         /* own network namespace, lo left down */
	/*
	 * Own network namespace with lo up and `eth0`, a veth whose host end is
	 * an isolated port of a host bridge (default `berth0`, 10.88.0.1/16;
	 * BERTH_BRIDGE, BERTH_SUBNET and BERTH_NFT_TABLE override), with an
	 * address of the bridge's subnet and a default route through it; the
	 * host masquerades the subnet. The host's setup (bridge, forwarding,
	 * nftables table `ip berth`) is made by the first start that needs it.
	 */
	BERTH_NET_BRIDGE,
};

struct berth_limits {
	uint64_t memory_bytes; /* 0: unlimited; swap is always off */
	uint64_t nanocpus;     /* vCPUs * 1e9; 0: unlimited */
	uint64_t pids;         /* 0: unlimited */
	uint64_t disk_bytes;   /* recorded; not enforced yet (see docs/architecture.md) */
};

/* Named instance types, as Cloudflare Containers define them. */
struct berth_instance_type {
	const char *name;
	struct berth_limits limits;
};

/* Look up "lite", "dev", "basic", "standard", "standard-1" … "standard-4". NULL if unknown. */
const struct berth_instance_type *berth_instance_type_lookup(const char *name);
/* The names, comma-separated, for error messages and help. */
const char *berth_instance_type_names(void);

struct berth_container_spec {
	const char *id;     /* [A-Za-z0-9][A-Za-z0-9_.-]{0,127}; names the cgroup and state */
	const char *rootfs; /* image root directory; used read-only as overlay lower */
	/*
	 * Or an image's unpacked layers, top first, NULL-terminated: the overlay's
	 * lower directories, shared by every container of the image (rootfs is
	 * then NULL).
	 */
	char *const *layers;
	const char *state_dir; /* writable layers live in STATE_DIR/containers/ID */
	char *const *argv;     /* command; argv[0] is looked up in PATH inside the image */
	char *const *env;      /* KEY=VALUE; PATH is defaulted when absent */
	const char *workdir;   /* default "/" */
	const char *hostname;  /* default: the id, truncated to 63 characters */
	uint32_t uid, gid;
	bool read_only;
	enum berth_net_mode net;
	struct berth_limits limits;
	/* Descriptors that become the container's stdin, stdout, stderr; -1: /dev/null. */
	int stdio[3];
	/*
	 * With a log directory the container's stdout and stderr (stdio[1] and
	 * [2] are then unused) go into LOG_DIR/container.log, written by its
	 * init as CRI log records ("TIME STREAM F|P CONTENT"), rotated to
	 * container.log.1 … .LOG_MAX_FILES when a file would pass
	 * LOG_MAX_BYTES. The init outlives its caller, so the log does too.
	 */
	const char *log_dir;
	uint64_t log_max_bytes; /* 0: 10 MiB */
	unsigned log_max_files;
	/* Kill the container when the calling process dies (`berth run`). */
	bool die_with_parent;
};

struct berth_container; /* opaque handle */

/*
 * Start a container. On success *out holds a handle; the container's init
 * (its PID 1, host PID berth_container_pid()) is a child of the caller and
 * its entrypoint has been executed. On failure nothing is left behind
 * (state directory, cgroup) and `err` says why; a command missing from the
 * image fails with ENOENT: "executable not found in image: /bin/nope".
 */
int berth_container_start(const struct berth_container_spec *spec, struct berth_container **out,
                          berth_error_t *err);

pid_t berth_container_pid(const struct berth_container *c);
/* A pidfd of the init (readable once it has exited); owned by the handle. */
int berth_container_pidfd(const struct berth_container *c);
const char *berth_container_id(const struct berth_container *c);
/* The environment its entrypoint got (KEY=VALUE; NULL when unknown: an adopted one). */
char *const *berth_container_env(const struct berth_container *c);
/* The user its processes run as (files made for it get this ownership). */
void berth_container_user(const struct berth_container *c, uint32_t *uid, uint32_t *gid);

/* Send a signal to the container (its init forwards it to the entrypoint). */
int berth_container_signal(struct berth_container *c, int sig, berth_error_t *err);

/* Freeze or thaw every process of the container. */
int berth_container_freeze(struct berth_container *c, bool frozen, berth_error_t *err);

struct berth_stats {
	uint64_t memory_current; /* bytes */
	uint64_t memory_peak;    /* bytes, 0 when the kernel does not say */
	uint64_t cpu_usage_ns;
	uint64_t pids_current;
	uint64_t oom_kills;
};
int berth_container_stats(struct berth_container *c, struct berth_stats *st, berth_error_t *err);

struct berth_exit {
	int exit_code; /* as a shell reports it: the code, or 128+signal */
	int signal;    /* the entrypoint was killed by this signal; 0 if it exited */
	bool oom;      /* the out-of-memory killer acted in the container */
	bool unknown;  /* it ended unwatched and left no word (adopted containers only):
	                  exit_code is then 255 and means nothing */
};

/*
 * Wait for the container's init to exit. With `nohang` it returns -EAGAIN
 * when the init still runs (use with the pidfd in a poll loop). After it
 * returned 0, the exit is also available with berth_container_exit().
 */
int berth_container_wait(struct berth_container *c, bool nohang, struct berth_exit *ex,
                         berth_error_t *err);
/* The exit, once berth_container_wait() has seen it; NULL before. */
const struct berth_exit *berth_container_exit(const struct berth_container *c);

struct berth_exec_spec {
	char *const *argv;
	char *const *env; /* NULL: the container's environment */
	const char *workdir;
	bool has_user; /* false: the container's uid/gid */
	uint32_t uid, gid;
	int stdio[3];
	/* stdin is a terminal (a pty's slave): it becomes the process's controlling terminal */
	bool tty;
};

/*
 * Run a process inside a running container: its namespaces, cgroup, user,
 * capabilities and seccomp filter. The process is a child of the caller;
 * `*pid` and `*pidfd` (pidfd may be NULL) identify it; reap it with waitid().
 */
int berth_container_exec(struct berth_container *c, const struct berth_exec_spec *spec, pid_t *pid,
                         int *pidfd, berth_error_t *err);

/*
 * Start a non-blocking TCP connection to 127.0.0.1:port inside the
 * container's network namespace. Returns the socket (SOCK_CLOEXEC |
 * SOCK_NONBLOCK; the connect may be in progress) or a negative errno. Safe to
 * call from any thread; it touches only the calling thread's namespace.
 */
int berth_container_connect(struct berth_container *c, uint16_t port, berth_error_t *err);

/*
 * Kill whatever still runs, reap the init, remove the cgroup and the
 * writable layer, and free the handle. Nothing of the container is left.
 */
int berth_container_destroy(struct berth_container *c, berth_error_t *err);

/*
 * As berth_container_destroy(), except that the writable layer is only
 * moved aside, into STATE_DIR/trash (one rename), for berth_runtime_sweep()
 * to remove: for a caller that answers first and tidies up after (berthd's
 * housekeeping). The container's id is free again on return.
 */
int berth_container_destroy_deferred(struct berth_container *c, berth_error_t *err);

/*
 * As berth_container_destroy_deferred(), and the cgroup is renamed out of
 * the way too (retired, on v1 and hybrid; removed as usual on v2), for
 * berth_runtime_sweep_cgroups(): for a caller that returns first and leaves
 * the rest to a process of its own (`berth run`).
 */
int berth_container_destroy_detached(struct berth_container *c, berth_error_t *err);

/* Remove what deferred destroys left in STATE_DIR/trash. */
int berth_runtime_sweep(const char *state_dir, berth_error_t *err);

/* Remove the cgroups deferred destroys retired (under BERTH_CGROUP_PARENT). */
int berth_runtime_sweep_cgroups(berth_error_t *err);

/*
 * Prepared network namespaces (netpool.c). A start (BERTH_NET_LOOPBACK or
 * BERTH_NET_BRIDGE) takes a ready namespace from the pool when it has one
 * instead of making its own. berth_netns_pool_fill() makes namespaces until
 * `want` are ready (at most 16); it switches the calling thread's network
 * namespace and back, so any thread may call it. The pool is the directory
 * $BERTH_NETNS_POOL (default /run/berth-netns; empty or "off": no pool) of
 * bind-mounted namespaces. NULL when there is no pool.
 */
const char *berth_netns_pool_dir(void);
int berth_netns_pool_fill(unsigned want, berth_error_t *err);

/*
 * Prepared slots for bridge networking (bridge.c), in POOL/bridge-BRIDGE:
 * namespaces with eth0 addressed and routed, its veth peer an isolated port
 * of the bridge, the address leased, taken by bridged starts. Fill makes
 * them until `want` are ready (at most 16), once the host's bridge is set
 * up (by the first bridged start), from any thread; drain removes those of
 * our mount namespace and is for a caller that stops: their veths are
 * deleted (which waits for RCU grace periods, tens of ms each) and their
 * addresses given back.
 */
int berth_bridge_pool_fill(unsigned want, berth_error_t *err);
int berth_bridge_pool_drain(berth_error_t *err);

/*
 * A bridged container's destroy does not wait for its veth to be deleted
 * (RCU grace periods under the RTNL lock, 10-35 ms each, one at a time):
 * its address stays leased, marked departed, until this deletes the veth
 * and gives the address back. For housekeeping off the path of answers;
 * from any thread. Without a lease directory (no bridged container ever
 * ran): nothing to do.
 */
int berth_bridge_sweep_departed(berth_error_t *err);

/* Free the handle and leave the container running (to be adopted later). */
void berth_container_release(struct berth_container *c);

/*
 * Take over container `id` of `state_dir`, started by another process (a
 * berthd that was restarted: live restore). The handle works as one from
 * berth_container_start(), except that the init is not our child: its end
 * is seen through its pidfd, and how it ended through the word it left. A
 * container that ended meanwhile gives a handle that has exited (wait says
 * how, with `unknown` when it left no word); destroy it to clean up. A
 * container that does not exist: -ENOENT.
 */
int berth_container_adopt(const char *state_dir, const char *id, struct berth_container **out,
                          berth_error_t *err);

/*
 * For a caller that is small and single-threaded itself (`berth run`):
 * run the helper in a fork of the caller instead of exec'ing berth-runtime
 * (an exec of a static program costs 0.7 ms here, a fork of a small one a
 * tenth of that). `arg_area` is the caller's argv strings, contiguous, which
 * each container's init overwrites in its copy with its own name, so that
 * the container's /proc/1/cmdline does not show the caller's arguments.
 * Call it before any thread exists.
 */
void berth_runtime_fork_helper(char *arg_area, size_t arg_area_len);

/*
 * For a multithreaded caller (berthd), which cannot fork itself: start the
 * zygote, a single-threaded `berth-runtime serve` child that from then on
 * clones the helper of every start and exec (which saves each about
 * 0.6 ms here: no exec of the static helper). The helpers, and
 * the inits and exec'd processes they make, are still the caller's
 * children, reaped as before; nothing else changes for the caller.
 *
 * The zygote holds no descriptor of any container and never has a child;
 * it exits when the caller's process does (its socket's EOF), or when the
 * thread that started it ends (PR_SET_PDEATHSIG): call this from the main
 * thread, early, before other threads exist and after the environment
 * (BERTH_* settings the helper reads) is final, since the zygote keeps the
 * environment, rlimits and credentials of that moment. A zygote that went
 * away is noticed by the next request, which then runs the exec'd helper
 * (the request is not lost), and restarted by the request after, from the
 * thread that makes it; one that dies before it served a request is not
 * restarted. Each is said once on stderr (berth_warn). Starts with
 * die_with_parent always run the exec'd helper. Returns 0, or an error
 * (the exec'd helper is then used).
 */
int berth_runtime_zygote_start(berth_error_t *err);
/* Stop the zygote (it finishes what it received) and go back to the exec'd helper. */
void berth_runtime_zygote_stop(void);
/* The running zygote's pid, or 0. */
pid_t berth_runtime_zygote_pid(void);
/* How many helpers zygotes have cloned so far (every one since the first start). */
uint64_t berth_runtime_zygote_helpers(void);

/*
 * The path of the `berth-runtime` helper: $BERTH_RUNTIME_HELPER, else next to
 * the running executable, else the install location.
 */
const char *berth_runtime_helper_path(void);

#endif
