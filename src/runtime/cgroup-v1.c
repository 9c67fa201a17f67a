/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup v1 (and the hybrid layout, whose cgroup2 mount holds nothing berth
 * uses): each controller has its own hierarchy at ROOT/<controller>, so a
 * cgroup is one directory ROOT/<controller>/PARENT/NAME per hierarchy.
 * Controllers can be co-mounted (ROOT/cpu,cpuacct with symlinks cpu and
 * cpuacct pointing at it); such a hierarchy gets one directory, not two.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "runtime/cgroup-internal.h"

static const char *const ctrl_names[BERTH_CGROUP_V1_N] = {
        [BERTH_CGROUP_V1_MEMORY] = "memory",   [BERTH_CGROUP_V1_CPU] = "cpu",
        [BERTH_CGROUP_V1_CPUACCT] = "cpuacct", [BERTH_CGROUP_V1_PIDS] = "pids",
        [BERTH_CGROUP_V1_FREEZER] = "freezer", [BERTH_CGROUP_V1_DEVICES] = "devices",
};

/*
 * Docker's and runc's default device allow-list, after "a" in devices.deny.
 * Creating any node is allowed (images unpack them, tools mknod them);
 * opening one is allowed only for the nodes listed. Each rule is written on
 * its own, since the kernel parses one rule per write.
 */
static const char *const device_rules[] = {
        "c *:* m\n",      /* mknod any character device */
        "b *:* m\n",      /* mknod any block device */
        "c 1:3 rwm\n",    /* /dev/null */
        "c 1:5 rwm\n",    /* /dev/zero */
        "c 1:7 rwm\n",    /* /dev/full */
        "c 1:8 rwm\n",    /* /dev/random */
        "c 1:9 rwm\n",    /* /dev/urandom */
        "c 5:0 rwm\n",    /* /dev/tty */
        "c 5:1 rwm\n",    /* /dev/console */
        "c 5:2 rwm\n",    /* /dev/ptmx */
        "c 136:* rwm\n",  /* /dev/pts/N */
        "c 10:200 rwm\n", /* /dev/net/tun */
};

static inline bool owns_dir(const struct berth_cgroup *cg, int c)
{
	return cg->v1_hier[c] == c;
}

static inline int ctrl_fd(const struct berth_cgroup *cg, int c)
{
	return cg->v1_fd[cg->v1_hier[c]];
}

/*
 * Check that each controller is mounted and find out which share a
 * hierarchy: co-mounted controllers reach the same cgroup.procs file. One
 * stat per controller; the mount point alone would not do, since an empty
 * directory where nothing is mounted is common on tmpfs /sys/fs/cgroup.
 */
static int find_hierarchies(struct berth_cgroup *cg, berth_error_t *err)
{
	struct stat seen[BERTH_CGROUP_V1_N];
	int c, d;

	for (c = 0; c < BERTH_CGROUP_V1_N; c++) {
		cleanup_free char *procs = xasprintf("%s/%s/cgroup.procs", cg->root, ctrl_names[c]);

		if (stat(procs, &seen[c]) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				return berth_error_set_plain(
				        err, ENODEV,
				        "cgroup controller `%s` is not mounted at "
				        "`%s/%s`",
				        ctrl_names[c], cg->root, ctrl_names[c]);
			return berth_error_set(err, errno, "stat `%s`", procs);
		}
		cg->v1_hier[c] = c;
		for (d = 0; d < c; d++) {
			if (seen[d].st_dev == seen[c].st_dev && seen[d].st_ino == seen[c].st_ino) {
				cg->v1_hier[c] = cg->v1_hier[d];
				break;
			}
		}
	}
	return 0;
}

static char *hier_path(const struct berth_cgroup *cg, int c)
{
	return xasprintf("%s/%s", cg->root, ctrl_names[c]);
}

/* Remove the leaves of the hierarchies before `upto` (a create that failed half-way). */
static void undo_create(struct berth_cgroup *cg, int upto)
{
	struct berth_cgroup_backoff b;
	berth_error_t ignored;
	int c;

	/* Nothing has joined them: there is nothing to wait for. */
	berth_cgroup_backoff_start(&b, 0);
	for (c = 0; c < upto; c++) {
		if (!owns_dir(cg, c))
			continue;
		cleanup_free char *hier = hier_path(cg, c);
		berth_cgroup_rmdir_leaf(cg, hier, &b, &ignored);
		close(cg->v1_fd[c]);
		cg->v1_fd[c] = -1;
	}
}

static int v1_create(struct berth_cgroup *cg, berth_error_t *err)
{
	int c, r;

	r = find_hierarchies(cg, err);
	if (r < 0)
		return r;
	for (c = 0; c < BERTH_CGROUP_V1_N; c++) {
		if (!owns_dir(cg, c))
			continue;
		cleanup_free char *hier = hier_path(cg, c);
		r = berth_cgroup_mkdir_leaf(cg, hier, &cg->v1_fd[c], err);
		if (r < 0) {
			undo_create(cg, c);
			return r;
		}
	}
	return 0;
}

static int v1_open(struct berth_cgroup *cg, berth_error_t *err)
{
	int c, r;

	r = find_hierarchies(cg, err);
	if (r < 0)
		return r;
	for (c = 0; c < BERTH_CGROUP_V1_N; c++) {
		if (!owns_dir(cg, c))
			continue;
		cleanup_free char *hier = hier_path(cg, c);
		r = berth_cgroup_open_leaf(cg, hier, &cg->v1_fd[c], err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int apply_memory(struct berth_cgroup *cg, uint64_t bytes, berth_error_t *err)
{
	int fd = ctrl_fd(cg, BERTH_CGROUP_V1_MEMORY);
	int r;

	if (bytes != 0) {
		r = berth_cgroup_write_u64(fd, "memory.limit_in_bytes", bytes, err);
		if (r < 0)
			return r;
		/*
		 * Swap off: memory+swap limited to the memory limit leaves no
		 * room for swap. The kernel keeps memsw.limit >= limit at every
		 * step, so on a fresh cgroup (both unlimited) the memory limit
		 * must be lowered first. The file is absent without swap
		 * accounting (swapaccount=0); swappiness is what is left then.
		 */
		r = berth_cgroup_write_u64(fd, "memory.memsw.limit_in_bytes", bytes, err);
		if (r != -ENOENT)
			return r;
	}
	/* Without a memory limit memsw cannot say "no swap" either. */
	return berth_write_knob(fd, "memory.swappiness", "0", err);
}

static int apply_cpu(struct berth_cgroup *cg, uint64_t quota, uint64_t period, berth_error_t *err)
{
	int fd = ctrl_fd(cg, BERTH_CGROUP_V1_CPU);
	int r;

	if (quota == 0)
		return 0;
	if (period != 0 && period != BERTH_CGROUP_DEFAULT_PERIOD_US) {
		r = berth_cgroup_write_u64(fd, "cpu.cfs_period_us", period, err);
		if (r < 0)
			return r;
	}
	return berth_cgroup_write_u64(fd, "cpu.cfs_quota_us", quota, err);
}

static int apply_devices(struct berth_cgroup *cg, berth_error_t *err)
{
	int dfd = ctrl_fd(cg, BERTH_CGROUP_V1_DEVICES);
	cleanup_close int fd = -1;
	size_t i;
	int r;

	r = berth_write_knob(dfd, "devices.deny", "a", err);
	if (r < 0)
		return r;
	/* One open for all the rules: each write() is parsed on its own. */
	fd = openat(dfd, "devices.allow", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return berth_error_set(err, errno, "open `devices.allow`");
	for (i = 0; i < BERTH_ARRAY_SIZE(device_rules); i++) {
		size_t len = strlen(device_rules[i]);
		ssize_t n = write(fd, device_rules[i], len);

		if (n < 0 || (size_t)n != len)
			return berth_error_set(err, n < 0 ? errno : EIO,
			                       "write `%.*s` to `devices.allow`", (int)len - 1,
			                       device_rules[i]);
	}
	return 0;
}

static int v1_apply_limits(struct berth_cgroup *cg, const struct berth_cgroup_limits *limits,
                           berth_error_t *err)
{
	int r;

	r = apply_memory(cg, limits->memory_bytes, err);
	if (r < 0)
		return r;
	r = apply_cpu(cg, limits->cpu_quota_us, limits->cpu_period_us, err);
	if (r < 0)
		return r;
	if (limits->pids != 0) {
		r = berth_cgroup_write_u64(ctrl_fd(cg, BERTH_CGROUP_V1_PIDS), "pids.max",
		                           limits->pids, err);
		if (r < 0)
			return r;
	}
	return apply_devices(cg, err);
}

static int v1_attach(struct berth_cgroup *cg, pid_t pid, berth_error_t *err)
{
	int c, r;

	for (c = 0; c < BERTH_CGROUP_V1_N; c++) {
		if (!owns_dir(cg, c))
			continue;
		r = berth_cgroup_write_u64(cg->v1_fd[c], "cgroup.procs", (uint64_t)pid, err);
		if (r < 0) {
			berth_error_wrap(err, "%s", ctrl_names[c]);
			return r;
		}
	}
	return 0;
}

/*
 * The calling thread moves itself through the `tasks` files. For pid 0 (the
 * caller) on `tasks`, the kernel skips cgroup_threadgroup_rwsem, the global
 * lock that cgroup.procs writes take and whose first writer after a quiet
 * spell waits for an RCU grace period (5-12 ms): this move takes a fraction
 * of a millisecond. It moves one thread, so the caller must have no others.
 */
static int v1_enter(struct berth_cgroup *cg, berth_error_t *err)
{
	int c, r;

	for (c = 0; c < BERTH_CGROUP_V1_N; c++) {
		if (!owns_dir(cg, c))
			continue;
		r = berth_write_knob(cg->v1_fd[c], "tasks", "0", err);
		if (r < 0) {
			berth_error_wrap(err, "%s", ctrl_names[c]);
			return r;
		}
	}
	return 0;
}

static int v1_freeze(struct berth_cgroup *cg, bool frozen, berth_error_t *err)
{
	const char *want = frozen ? "FROZEN" : "THAWED";
	int fd = ctrl_fd(cg, BERTH_CGROUP_V1_FREEZER);
	struct berth_cgroup_backoff b;
	berth_error_t ignored;
	char state[64];
	ssize_t n;
	int r;

	berth_cgroup_backoff_start(&b, BERTH_CGROUP_FREEZE_TIMEOUT_MS);
	do {
		/*
		 * The state reads FREEZING until every task has stopped. Writing
		 * FROZEN again, as runc does, retries the tasks that have not
		 * (they were busy in the kernel or forked meanwhile).
		 */
		r = berth_write_knob(fd, "freezer.state", want, err);
		if (r < 0)
			return r;
		n = berth_cgroup_read_knob(fd, "freezer.state", state, sizeof(state), err);
		if (n < 0)
			return (int)n;
		state[strcspn(state, "\n")] = '\0';
		if (strcmp(state, want) == 0)
			return 0;
	} while (berth_cgroup_backoff_wait(&b));
	/* A half-frozen cgroup helps nobody: leave it running as it was. */
	if (frozen)
		berth_write_knob(fd, "freezer.state", "THAWED", &ignored);
	return berth_error_set_plain(err, ETIMEDOUT, "`freezer.state` still read `%s` after %d ms",
	                             state, BERTH_CGROUP_FREEZE_TIMEOUT_MS);
}

static int v1_stats(struct berth_cgroup *cg, struct berth_cgroup_stats *st, berth_error_t *err)
{
	int mem = ctrl_fd(cg, BERTH_CGROUP_V1_MEMORY);
	int r;

	r = berth_cgroup_read_u64(mem, "memory.usage_in_bytes", &st->memory_current, err);
	if (r < 0)
		return r;
	r = berth_cgroup_read_u64(mem, "memory.max_usage_in_bytes", &st->memory_peak, err);
	if (r < 0)
		return r;
	r = berth_cgroup_read_u64(ctrl_fd(cg, BERTH_CGROUP_V1_CPUACCT), "cpuacct.usage",
	                          &st->cpu_usage_ns, err);
	if (r < 0)
		return r;
	r = berth_cgroup_read_u64(ctrl_fd(cg, BERTH_CGROUP_V1_PIDS), "pids.current",
	                          &st->pids_current, err);
	if (r < 0)
		return r;
	/* The oom_kill line is Linux 4.13+; older kernels count nothing. */
	r = berth_cgroup_read_keyed(mem, "memory.oom_control", "oom_kill", &st->oom_kills, err);
	return r < 0 ? r : 0;
}

static int v1_oom_kills(struct berth_cgroup *cg, uint64_t *kills, berth_error_t *err)
{
	int r = berth_cgroup_read_keyed(ctrl_fd(cg, BERTH_CGROUP_V1_MEMORY), "memory.oom_control",
	                                "oom_kill", kills, err);
	return r < 0 ? r : 0;
}

static int v1_kill(struct berth_cgroup *cg, berth_error_t *err)
{
	/* The freezer hierarchy is the one the kill loop freezes, so it lists the same tasks. */
	return berth_cgroup_kill_all(cg, ctrl_fd(cg, BERTH_CGROUP_V1_FREEZER), err);
}

static int v1_destroy(struct berth_cgroup *cg, berth_error_t *err)
{
	struct berth_cgroup_backoff b;
	berth_error_t *first = err;
	berth_error_t later;
	int c, r, ret = 0;

	berth_cgroup_backoff_start(&b, BERTH_CGROUP_BUSY_TIMEOUT_MS);
	/* Remove every leaf that can go even when one cannot; report the first failure. */
	for (c = 0; c < BERTH_CGROUP_V1_N; c++) {
		if (!owns_dir(cg, c))
			continue;
		cleanup_free char *hier = hier_path(cg, c);
		r = berth_cgroup_rmdir_leaf(cg, hier, &b, ret < 0 ? &later : first);
		if (r < 0 && ret == 0)
			ret = r;
	}
	return ret;
}

static int v1_each_hierarchy(struct berth_cgroup *cg,
                             int (*fn)(struct berth_cgroup *cg, const char *hier, void *arg,
                                       berth_error_t *err),
                             void *arg, berth_error_t *err)
{
	int c, r;

	r = find_hierarchies(cg, err);
	if (r < 0)
		return r;
	for (c = 0; c < BERTH_CGROUP_V1_N; c++) {
		if (!owns_dir(cg, c))
			continue;
		cleanup_free char *hier = hier_path(cg, c);
		r = fn(cg, hier, arg, err);
		if (r < 0)
			return r;
	}
	return 0;
}

const struct berth_cgroup_ops berth_cgroup_v1_ops = {
        .create = v1_create,
        .open = v1_open,
        .apply_limits = v1_apply_limits,
        .set_cpu = apply_cpu,
        .attach = v1_attach,
        .enter = v1_enter,
        .freeze = v1_freeze,
        .stats = v1_stats,
        .oom_kills = v1_oom_kills,
        .kill = v1_kill,
        .destroy = v1_destroy,
        .each_hierarchy = v1_each_hierarchy,
};
