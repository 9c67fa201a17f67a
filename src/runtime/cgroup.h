/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Control groups for containers, on all three layouts real hosts have:
 *   v2      the unified hierarchy at ROOT (most current distributions);
 *   hybrid  v1 controllers at ROOT/<controller> plus a cgroup2 mount at
 *           ROOT/unified that holds no controller berth needs (this
 *           project's build machines; crun 1.8 refuses it, berth must not);
 *   v1      v1 controllers only.
 * berth uses memory (limit, swap off, OOM kills), cpu (CFS quota), cpuacct
 * (usage), pids (limit), freezer and, on v1, devices (an allow-list).
 *
 * The backends sit behind one function table (cgroup-v1.c, cgroup-v2.c); the
 * root directory is a parameter so unit tests can drive them over a fake tree.
 */
#ifndef BERTH_RUNTIME_CGROUP_H
#define BERTH_RUNTIME_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "berth/error.h"

enum berth_cgroup_mode {
	BERTH_CGROUP_V1,
	BERTH_CGROUP_HYBRID,
	BERTH_CGROUP_V2,
};

struct berth_cgroup_limits {
	uint64_t memory_bytes;  /* 0: unlimited; swap is always disabled */
	uint64_t cpu_quota_us;  /* 0: unlimited */
	uint64_t cpu_period_us; /* 0: 100000 */
	uint64_t pids;          /* 0: unlimited */
};

struct berth_cgroup_stats {
	uint64_t memory_current;
	uint64_t memory_peak; /* 0 when the kernel does not provide it */
	uint64_t cpu_usage_ns;
	uint64_t pids_current;
	uint64_t oom_kills;
};

struct berth_cgroup_config {
	const char *root; /* "/sys/fs/cgroup", or a fake tree in tests */
	enum berth_cgroup_mode mode;
	const char *parent; /* directory under each hierarchy root, e.g. "berth" */
};

struct berth_cgroup;

/* Tell the layout mounted at `root` (statfs magic of ROOT and ROOT/unified). */
int berth_cgroup_detect(const char *root, enum berth_cgroup_mode *mode, berth_error_t *err);
const char *berth_cgroup_mode_name(enum berth_cgroup_mode mode);

/*
 * Create the cgroup PARENT/NAME (creating PARENT as needed and, on v2,
 * enabling the controllers in the subtree_control files on the way) and apply
 * the limits. Fails with EEXIST when it already exists, and with a message
 * naming the controller when one berth needs is not available. On failure,
 * nothing it created is left.
 */
int berth_cgroup_create(const struct berth_cgroup_config *cfg, const char *name,
                        const struct berth_cgroup_limits *limits, struct berth_cgroup **out,
                        berth_error_t *err);

/* Open an existing cgroup PARENT/NAME (ENOENT when absent). */
int berth_cgroup_open(const struct berth_cgroup_config *cfg, const char *name,
                      struct berth_cgroup **out, berth_error_t *err);

/*
 * Set the CPU quota (0: leave as is; period 0: 100000 µs). The runtime
 * creates a container's cgroup without it and sets it once the container is
 * built, so that setting up is not charged to a small instance's share.
 */
int berth_cgroup_set_cpu(struct berth_cgroup *cg, uint64_t quota_us, uint64_t period_us,
                         berth_error_t *err);

/* Move process `pid` into the cgroup (every v1 hierarchy, or the v2 one). */
int berth_cgroup_attach(struct berth_cgroup *cg, pid_t pid, berth_error_t *err);

/*
 * Move the calling process, which must be single-threaded, into the cgroup.
 * On v1 this avoids the global lock of berth_cgroup_attach() and with it an
 * RCU grace period (see cgroup-v1.c); on v2 it is berth_cgroup_attach() of
 * ourselves (prefer clone3(CLONE_INTO_CGROUP) there).
 */
int berth_cgroup_enter(struct berth_cgroup *cg, berth_error_t *err);

/*
 * v2: an O_DIRECTORY descriptor of the cgroup, for clone3(CLONE_INTO_CGROUP)
 * which places a child without a migration. v1: -1.
 */
int berth_cgroup_dirfd(const struct berth_cgroup *cg);

/* Freeze (true) or thaw (false), waiting until the kernel reports the state. */
int berth_cgroup_freeze(struct berth_cgroup *cg, bool frozen, berth_error_t *err);

int berth_cgroup_stats(struct berth_cgroup *cg, struct berth_cgroup_stats *st, berth_error_t *err);

/* Number of OOM kills so far (cheap; used when the container exits). */
int berth_cgroup_oom_kills(struct berth_cgroup *cg, uint64_t *kills, berth_error_t *err);

/* SIGKILL every process in the cgroup (v2 cgroup.kill when present). */
int berth_cgroup_kill(struct berth_cgroup *cg, berth_error_t *err);

/*
 * Remove the cgroup directories. Retries briefly while the kernel still
 * reports it busy (exiting tasks). A cgroup already gone is not an error.
 */
int berth_cgroup_destroy(struct berth_cgroup *cg, berth_error_t *err);

/*
 * Rename the cgroup out of its name's way, to PARENT/~NAME.RANDOM in every
 * hierarchy, for berth_cgroup_sweep_retired() to remove later: a caller
 * that must answer soon (`berth run`) leaves the rmdirs and the check for
 * processes to housekeeping, and a successor of the same name can start at
 * once. v1 and hybrid only: cgroup2 cannot rename (EOPNOTSUPP). On
 * failure some hierarchies may keep the old name, which
 * berth_cgroup_destroy() then removes.
 */
int berth_cgroup_retire(struct berth_cgroup *cg, berth_error_t *err);

/* Remove every retired cgroup under PARENT, killing what is left in one. */
int berth_cgroup_sweep_retired(const struct berth_cgroup_config *cfg, berth_error_t *err);

/* Human-readable location for messages, e.g. "berth/web" or "memory:berth/web". */
const char *berth_cgroup_path(const struct berth_cgroup *cg);

void berth_cgroup_free(struct berth_cgroup *cg);

#endif
