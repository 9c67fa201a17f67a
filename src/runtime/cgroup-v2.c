/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The unified hierarchy: one directory ROOT/PARENT/NAME holds every
 * controller. berth needs memory, pids and cpu enabled in the
 * cgroup.subtree_control of each directory above the leaf.
 *
 * There is no devices controller in v2 (the kernel's equivalent is a BPF
 * program). berth does not install one: device access is handled where the
 * container's filesystems are mounted, nodev, so a device node a container
 * manages to create cannot be opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "runtime/cgroup-internal.h"

static const char *const controllers[] = {"memory", "pids", "cpu"};
#define ENABLE_ALL "+memory +pids +cpu"

static bool has_word(const char *text, const char *word)
{
	size_t len = strlen(word);
	const char *p = text;

	while ((p = strstr(p, word)) != NULL) {
		if ((p == text || p[-1] == ' ' || p[-1] == '\n') &&
		    (p[len] == ' ' || p[len] == '\n' || p[len] == '\0'))
			return true;
		p += len;
	}
	return false;
}

/* The first controller berth needs that `list` lacks, or NULL. */
static const char *missing_controller(const char *list)
{
	size_t i;

	for (i = 0; i < BERTH_ARRAY_SIZE(controllers); i++)
		if (!has_word(list, controllers[i]))
			return controllers[i];
	return NULL;
}

static int enable_in(const char *dir, berth_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/cgroup.subtree_control", dir);

	return berth_write_knob(AT_FDCWD, path, ENABLE_ALL, err);
}

/*
 * Make sure memory, pids and cpu are enabled for the children of ROOT and of
 * each directory down to PARENT, creating those directories on the way.
 */
static int enable_controllers(struct berth_cgroup *cg, berth_error_t *err)
{
	char buf[BERTH_CGROUP_KNOB_BUF];
	const char *missing;
	char *slash;
	ssize_t n;
	int r;

	/*
	 * After the first container PARENT delegates them already, and a
	 * controller enabled there is enabled in every ancestor (the kernel
	 * refuses it otherwise): one read instead of a walk of writes.
	 */
	cleanup_free char *parent = xasprintf("%s/%s", cg->root, cg->parent);
	cleanup_free char *parent_ctl = xasprintf("%s/cgroup.subtree_control", parent);
	n = berth_cgroup_read_knob(AT_FDCWD, parent_ctl, buf, sizeof(buf), NULL);
	if (n >= 0 && missing_controller(buf) == NULL)
		return 0;

	cleanup_free char *root_ctl = xasprintf("%s/cgroup.controllers", cg->root);
	n = berth_cgroup_read_knob(AT_FDCWD, root_ctl, buf, sizeof(buf), err);
	if (n < 0)
		return (int)n;
	missing = missing_controller(buf);
	if (missing != NULL)
		return berth_error_set_plain(
		        err, ENODEV, "cgroup controller `%s` is not available (not listed in `%s`)",
		        missing, root_ctl);

	r = enable_in(cg->root, err);
	if (r < 0)
		return r;
	/* Each level of PARENT ("berth" or "berth/pods") delegates to the next. */
	slash = parent + strlen(cg->root);
	do {
		slash = strchr(slash + 1, '/');
		if (slash != NULL)
			*slash = '\0';
		if (mkdir(parent, 0755) < 0 && errno != EEXIST)
			return berth_error_set(err, errno, "mkdir `%s`", parent);
		r = enable_in(parent, err);
		if (r < 0)
			return r;
		if (slash != NULL)
			*slash = '/';
	} while (slash != NULL);
	return 0;
}

static int v2_create(struct berth_cgroup *cg, berth_error_t *err)
{
	int r = enable_controllers(cg, err);

	if (r < 0)
		return r;
	return berth_cgroup_mkdir_leaf(cg, cg->root, &cg->dirfd, err);
}

static int v2_open(struct berth_cgroup *cg, berth_error_t *err)
{
	return berth_cgroup_open_leaf(cg, cg->root, &cg->dirfd, err);
}

static int v2_set_cpu(struct berth_cgroup *cg, uint64_t quota, uint64_t period, berth_error_t *err)
{
	char buf[48];

	if (quota == 0)
		return 0;
	if (period == 0)
		period = BERTH_CGROUP_DEFAULT_PERIOD_US;
	snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64, quota, period);
	return berth_write_knob(cg->dirfd, "cpu.max", buf, err);
}

static int v2_apply_limits(struct berth_cgroup *cg, const struct berth_cgroup_limits *limits,
                           berth_error_t *err)
{
	int fd = cg->dirfd;
	int r;

	if (limits->memory_bytes != 0) {
		r = berth_cgroup_write_u64(fd, "memory.max", limits->memory_bytes, err);
		if (r < 0)
			return r;
	}
	/*
	 * Swap is always off. The file is absent when the kernel does not
	 * account swap (swapaccount=0, CONFIG_SWAP off); there is then no
	 * per-cgroup switch for it.
	 */
	r = berth_write_knob(fd, "memory.swap.max", "0", err);
	if (r < 0 && r != -ENOENT)
		return r;
	r = v2_set_cpu(cg, limits->cpu_quota_us, limits->cpu_period_us, err);
	if (r < 0)
		return r;
	if (limits->pids != 0) {
		r = berth_cgroup_write_u64(fd, "pids.max", limits->pids, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int v2_attach(struct berth_cgroup *cg, pid_t pid, berth_error_t *err)
{
	return berth_cgroup_write_u64(cg->dirfd, "cgroup.procs", (uint64_t)pid, err);
}

/*
 * v2 moves single threads only within threaded subtrees, so the caller moves
 * as a process (the global lock applies); berth places processes with
 * clone3(CLONE_INTO_CGROUP) on v2 instead.
 */
static int v2_enter(struct berth_cgroup *cg, berth_error_t *err)
{
	return v2_attach(cg, getpid(), err);
}

static int v2_freeze(struct berth_cgroup *cg, bool frozen, berth_error_t *err)
{
	struct berth_cgroup_backoff b;
	berth_error_t ignored;
	uint64_t state;
	int r;

	r = berth_write_knob(cg->dirfd, "cgroup.freeze", frozen ? "1" : "0", err);
	if (r < 0)
		return r;
	/* The write starts the change; cgroup.events says when every task has made it. */
	berth_cgroup_backoff_start(&b, BERTH_CGROUP_FREEZE_TIMEOUT_MS);
	do {
		r = berth_cgroup_read_keyed(cg->dirfd, "cgroup.events", "frozen", &state, err);
		if (r < 0)
			return r;
		if (r > 0 && state == (frozen ? 1 : 0))
			return 0;
	} while (berth_cgroup_backoff_wait(&b));
	/* A half-frozen cgroup helps nobody: leave it running as it was. */
	if (frozen)
		berth_write_knob(cg->dirfd, "cgroup.freeze", "0", &ignored);
	return berth_error_set_plain(err, ETIMEDOUT,
	                             "`cgroup.events` did not report `frozen %d` within %d ms",
	                             frozen ? 1 : 0, BERTH_CGROUP_FREEZE_TIMEOUT_MS);
}

static int v2_stats(struct berth_cgroup *cg, struct berth_cgroup_stats *st, berth_error_t *err)
{
	int fd = cg->dirfd;
	int r;

	r = berth_cgroup_read_u64(fd, "memory.current", &st->memory_current, err);
	if (r < 0)
		return r;
	/* memory.peak is Linux 5.19+. */
	r = berth_cgroup_read_u64(fd, "memory.peak", &st->memory_peak, err);
	if (r == -ENOENT)
		st->memory_peak = 0;
	else if (r < 0)
		return r;
	r = berth_cgroup_read_keyed(fd, "cpu.stat", "usage_usec", &st->cpu_usage_ns, err);
	if (r < 0)
		return r;
	st->cpu_usage_ns *= 1000;
	r = berth_cgroup_read_u64(fd, "pids.current", &st->pids_current, err);
	if (r < 0)
		return r;
	r = berth_cgroup_read_keyed(fd, "memory.events", "oom_kill", &st->oom_kills, err);
	return r < 0 ? r : 0;
}

static int v2_oom_kills(struct berth_cgroup *cg, uint64_t *kills, berth_error_t *err)
{
	int r = berth_cgroup_read_keyed(cg->dirfd, "memory.events", "oom_kill", kills, err);
	return r < 0 ? r : 0;
}

static int v2_kill(struct berth_cgroup *cg, berth_error_t *err)
{
	/* cgroup.kill (Linux 5.14+) kills the whole tree at once, forks included. */
	int r = berth_write_knob(cg->dirfd, "cgroup.kill", "1", err);

	if (r != -ENOENT)
		return r;
	return berth_cgroup_kill_all(cg, cg->dirfd, err);
}

static int v2_destroy(struct berth_cgroup *cg, berth_error_t *err)
{
	struct berth_cgroup_backoff b;

	berth_cgroup_backoff_start(&b, BERTH_CGROUP_BUSY_TIMEOUT_MS);
	return berth_cgroup_rmdir_leaf(cg, cg->root, &b, err);
}

static int v2_each_hierarchy(struct berth_cgroup *cg,
                             int (*fn)(struct berth_cgroup *cg, const char *hier, void *arg,
                                       berth_error_t *err),
                             void *arg, berth_error_t *err)
{
	return fn(cg, cg->root, arg, err);
}

const struct berth_cgroup_ops berth_cgroup_v2_ops = {
        .create = v2_create,
        .open = v2_open,
        .apply_limits = v2_apply_limits,
        .set_cpu = v2_set_cpu,
        .attach = v2_attach,
        .enter = v2_enter,
        .freeze = v2_freeze,
        .stats = v2_stats,
        .oom_kills = v2_oom_kills,
        .kill = v2_kill,
        .destroy = v2_destroy,
        .each_hierarchy = v2_each_hierarchy,
};
