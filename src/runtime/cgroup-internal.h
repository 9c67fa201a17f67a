/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What cgroup.c, cgroup-v1.c and cgroup-v2.c share among themselves: the
 * backend function table, the cgroup object, and the file and retry helpers
 * both backends use. Nothing outside the cgroup module includes this, except
 * its unit tests.
 */
#ifndef BERTH_RUNTIME_CGROUP_INTERNAL_H
#define BERTH_RUNTIME_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "berth/error.h"
#include "runtime/cgroup.h"

/* How long a freeze may stay in progress before it counts as failed. */
#define BERTH_CGROUP_FREEZE_TIMEOUT_MS 2000
/* How long destroy waits for exiting tasks to leave, and kill for them to die. */
#define BERTH_CGROUP_BUSY_TIMEOUT_MS 1000
/* Large enough for any knob berth reads but cgroup.procs (cpu.stat is ~300 bytes). */
#define BERTH_CGROUP_KNOB_BUF 4096
/* A fresh cgroup's CFS period, which the kernel sets by itself. */
#define BERTH_CGROUP_DEFAULT_PERIOD_US 100000

/* The v1 controllers berth needs, each in its own hierarchy or co-mounted. */
enum berth_cgroup_v1_ctrl {
	BERTH_CGROUP_V1_MEMORY,
	BERTH_CGROUP_V1_CPU,
	BERTH_CGROUP_V1_CPUACCT,
	BERTH_CGROUP_V1_PIDS,
	BERTH_CGROUP_V1_FREEZER,
	BERTH_CGROUP_V1_DEVICES,
	BERTH_CGROUP_V1_N,
};

struct berth_cgroup;

/*
 * One table per backend. create() makes the leaf directories (and whatever
 * the layout needs above them) and opens them; when it fails it leaves
 * nothing it made behind, and returns -EEXIST only when the leaf already
 * exists. open() returns -ENOENT only when the leaf is absent.
 */
struct berth_cgroup_ops {
	int (*create)(struct berth_cgroup *cg, berth_error_t *err);
	int (*open)(struct berth_cgroup *cg, berth_error_t *err);
	int (*apply_limits)(struct berth_cgroup *cg, const struct berth_cgroup_limits *limits,
	                    berth_error_t *err);
	int (*set_cpu)(struct berth_cgroup *cg, uint64_t quota_us, uint64_t period_us,
	               berth_error_t *err);
	int (*attach)(struct berth_cgroup *cg, pid_t pid, berth_error_t *err);
	int (*enter)(struct berth_cgroup *cg, berth_error_t *err);
	int (*freeze)(struct berth_cgroup *cg, bool frozen, berth_error_t *err);
	int (*stats)(struct berth_cgroup *cg, struct berth_cgroup_stats *st, berth_error_t *err);
	int (*oom_kills)(struct berth_cgroup *cg, uint64_t *kills, berth_error_t *err);
	int (*kill)(struct berth_cgroup *cg, berth_error_t *err);
	int (*destroy)(struct berth_cgroup *cg, berth_error_t *err);
	/*
	 * Call `fn` with the directory of each hierarchy the cgroup has a
	 * directory in (v1: one per mount, co-mounted controllers once; v2:
	 * the root); stop at the first failure.
	 */
	int (*each_hierarchy)(struct berth_cgroup *cg,
	                      int (*fn)(struct berth_cgroup *cg, const char *hier, void *arg,
	                                berth_error_t *err),
	                      void *arg, berth_error_t *err);
};

struct berth_cgroup {
	const struct berth_cgroup_ops *ops;
	enum berth_cgroup_mode mode;
	char *root;   /* e.g. "/sys/fs/cgroup" */
	char *parent; /* e.g. "berth" */
	char *name;   /* e.g. "web" */
	char *path;   /* "PARENT/NAME", for messages */
	int dirfd;    /* v2: the cgroup directory; -1 on v1 */
	/*
	 * v1: the cgroup directory in each hierarchy. Co-mounted controllers
	 * (cpu,cpuacct) share one directory: v1_hier[c] is the controller whose
	 * slot holds it, and only slots with v1_hier[c] == c own a descriptor.
	 */
	int v1_fd[BERTH_CGROUP_V1_N];
	int v1_hier[BERTH_CGROUP_V1_N];
};

extern const struct berth_cgroup_ops berth_cgroup_v1_ops;
extern const struct berth_cgroup_ops berth_cgroup_v2_ops;

/*
 * Write the limits into a cgroup that still has the kernel's defaults (what
 * create() does after the mkdir). Values the kernel already has by default
 * (unlimited, the default CFS period) are not written: container start is on
 * this path and every knob costs an open, a write and a close. Exposed for
 * the unit tests, which apply limits to a fake leaf whose knob files they made
 * (a plain mkdir, unlike cgroupfs, does not create them).
 */
int berth_cgroup_apply_limits(struct berth_cgroup *cg, const struct berth_cgroup_limits *limits,
                              berth_error_t *err);

/*
 * Read the knob `name` under `dirfd` into `buf` (NUL-terminated). Returns the
 * length, or a negative errno (EFBIG when it does not fit) with `err` filled.
 */
ssize_t berth_cgroup_read_knob(int dirfd, const char *name, char *buf, size_t size,
                               berth_error_t *err);
/* Read a knob that holds one decimal number. */
int berth_cgroup_read_u64(int dirfd, const char *name, uint64_t *val, berth_error_t *err);
/* Write a decimal number to a knob. */
int berth_cgroup_write_u64(int dirfd, const char *name, uint64_t val, berth_error_t *err);
/*
 * Find "KEY VALUE" in a flat-keyed file such as cpu.stat or memory.events.
 * Returns 1 and sets `*val` when found, 0 when the key is absent, -EINVAL
 * when its value is not a number.
 */
int berth_cgroup_keyed_u64(const char *text, const char *key, uint64_t *val);
/*
 * Read `key` from the flat-keyed knob `name`. Returns 1 when found, 0 when
 * absent (`*val` = 0), or a negative errno with `err` filled.
 */
int berth_cgroup_read_keyed(int dirfd, const char *name, const char *key, uint64_t *val,
                            berth_error_t *err);

/* Bounded retries with short, growing sleeps. */
struct berth_cgroup_backoff {
	struct timespec deadline;
	long delay_us;
};
void berth_cgroup_backoff_start(struct berth_cgroup_backoff *b, long timeout_ms);
/* Sleep before the next attempt; false (without sleeping) once the time is up. */
bool berth_cgroup_backoff_wait(struct berth_cgroup_backoff *b);

/*
 * mkdir HIER/PARENT/NAME (and HIER/PARENT when missing) and open it as
 * O_DIRECTORY into `*fd`. Returns -EEXIST, with `err` filled, when the leaf
 * exists.
 */
int berth_cgroup_mkdir_leaf(const struct berth_cgroup *cg, const char *hier, int *fd,
                            berth_error_t *err);
/* Open HIER/PARENT/NAME as O_DIRECTORY; -ENOENT when absent. */
int berth_cgroup_open_leaf(const struct berth_cgroup *cg, const char *hier, int *fd,
                           berth_error_t *err);
/*
 * rmdir HIER/PARENT/NAME, retrying while the kernel says EBUSY (tasks still
 * exiting) until `b` runs out. An absent directory is fine.
 */
int berth_cgroup_rmdir_leaf(const struct berth_cgroup *cg, const char *hier,
                            struct berth_cgroup_backoff *b, berth_error_t *err);

/*
 * SIGKILL everything listed in `procs_dirfd`/cgroup.procs until it is empty:
 * the first round runs with the cgroup frozen so that nothing forks between
 * reading the list and signalling it.
 */
int berth_cgroup_kill_all(struct berth_cgroup *cg, int procs_dirfd, berth_error_t *err);

#endif
