/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cgroup module over fake trees in a temporary directory (every layout,
 * exact knob contents), then over the machine's real cgroups (as root).
 *
 * A plain mkdir does not create knob files the way cgroupfs does, so the fake
 * tests that need a populated leaf make its files themselves and drive
 * berth_cgroup_open() + berth_cgroup_apply_limits(); create() is tested for
 * what it does before and after the knobs (mkdir, controllers, EEXIST,
 * clean-up after a failure).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "runtime/cgroup-internal.h"
#include "runtime/cgroup.h"

#define MIB (1024ull * 1024)

/* ---- fake trees -------------------------------------------------------- */

struct fake {
	char root[64];
};

static int fake_setup(void **state)
{
	struct fake *f = xcalloc(1, sizeof(*f));

	snprintf(f->root, sizeof(f->root), "/tmp/berth-cgroup-test.XXXXXX");
	if (mkdtemp(f->root) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;
	berth_error_t err;
	int r = berth_rmtree(f->root, &err);

	free(f);
	return r;
}

static char *at(const struct fake *f, const char *rel)
{
	return xasprintf("%s/%s", f->root, rel);
}

/* Create ROOT/REL (and the directories above it) holding `content`. */
static void put(const struct fake *f, const char *rel, const char *content)
{
	cleanup_free char *path = at(f, rel);
	char *slash = strrchr(path, '/');
	berth_error_t err;

	*slash = '\0';
	assert_int_equal(berth_mkdir_p(path, 0755, &err), 0);
	*slash = '/';
	assert_int_equal(berth_write_file(path, content, strlen(content), 0644, &err), 0);
}

static void mkdirs(const struct fake *f, const char *rel)
{
	cleanup_free char *path = at(f, rel);
	berth_error_t err;

	assert_int_equal(berth_mkdir_p(path, 0755, &err), 0);
}

/* The contents of ROOT/REL; the test fails when it cannot be read. */
static char *slurp(const struct fake *f, const char *rel)
{
	cleanup_free char *path = at(f, rel);
	berth_error_t err;
	char *buf = NULL;

	if (berth_read_file_at(AT_FDCWD, path, 1 << 20, &buf, NULL, &err) < 0)
		fail_msg("%s", err.message);
	return buf;
}

static void assert_file(const struct fake *f, const char *rel, const char *want)
{
	cleanup_free char *got = slurp(f, rel);

	assert_string_equal(got, want);
}

static bool exists(const struct fake *f, const char *rel)
{
	cleanup_free char *path = at(f, rel);

	return access(path, F_OK) == 0;
}

static void assert_message(const berth_error_t *err, const struct fake *f, const char *fmt)
{
	/* `fmt` has one %s, for the fake root. */
	cleanup_free char *want = xasprintf(fmt, f->root);

	assert_string_equal(err->message, want);
}

static struct berth_cgroup_config fake_cfg(const struct fake *f, enum berth_cgroup_mode mode)
{
	struct berth_cgroup_config cfg = {.root = f->root, .mode = mode, .parent = "berth"};
	return cfg;
}

static const struct berth_cgroup_limits std_limits = {
        .memory_bytes = 64 * MIB,
        .cpu_quota_us = 50000,
        .cpu_period_us = 100000,
        .pids = 32,
};

/* What a v2 kernel shows at ROOT and in PARENT before berth touches anything. */
static void fake_v2(const struct fake *f)
{
	put(f, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
	put(f, "cgroup.subtree_control", "");
	put(f, "berth/cgroup.subtree_control", "");
}

static const char *const v2_leaf_knobs[] = {
        "memory.max",   "memory.swap.max", "cpu.max",       "pids.max",
        "cgroup.procs", "cgroup.freeze",   "cgroup.events", "cgroup.kill",
};

static void fake_v2_leaf(const struct fake *f)
{
	size_t i;

	for (i = 0; i < BERTH_ARRAY_SIZE(v2_leaf_knobs); i++) {
		cleanup_free char *rel = xasprintf("berth/web/%s", v2_leaf_knobs[i]);
		put(f, rel, "");
	}
}

static const char *const v1_ctrls[] = {"memory", "cpu", "cpuacct", "pids", "freezer", "devices"};

/* v1 hierarchies, each its own mount, or cpu and cpuacct co-mounted behind symlinks. */
static void fake_v1(const struct fake *f, bool comount, const char *skip)
{
	size_t i;

	for (i = 0; i < BERTH_ARRAY_SIZE(v1_ctrls); i++) {
		const char *c = v1_ctrls[i];
		if (skip != NULL && strcmp(c, skip) == 0)
			continue;
		if (comount && (strcmp(c, "cpu") == 0 || strcmp(c, "cpuacct") == 0)) {
			cleanup_free char *link = at(f, c);
			put(f, "cpu,cpuacct/cgroup.procs", "");
			assert_int_equal(symlink("cpu,cpuacct", link), 0);
			continue;
		}
		cleanup_free char *rel = xasprintf("%s/cgroup.procs", c);
		put(f, rel, "");
	}
}

static void fake_v1_leaf(const struct fake *f, bool memsw)
{
	static const char *const knobs[] = {
	        "memory/berth/web/memory.limit_in_bytes",
	        "memory/berth/web/memory.swappiness",
	        "memory/berth/web/cgroup.procs",
	        "cpu/berth/web/cpu.cfs_period_us",
	        "cpu/berth/web/cpu.cfs_quota_us",
	        "cpu/berth/web/cgroup.procs",
	        "cpuacct/berth/web/cgroup.procs",
	        "pids/berth/web/pids.max",
	        "pids/berth/web/cgroup.procs",
	        "freezer/berth/web/freezer.state",
	        "freezer/berth/web/cgroup.procs",
	        "devices/berth/web/devices.deny",
	        "devices/berth/web/devices.allow",
	        "devices/berth/web/cgroup.procs",
	};
	size_t i;

	/* Co-mounted, cpu/... and cpuacct/... reach the same files through the symlinks. */
	for (i = 0; i < BERTH_ARRAY_SIZE(knobs); i++)
		put(f, knobs[i], "");
	if (memsw)
		put(f, "memory/berth/web/memory.memsw.limit_in_bytes", "");
}

/* ---- detection, names -------------------------------------------------- */

static void test_detect_plain_dir(void **state)
{
	struct fake *f = *state;
	enum berth_cgroup_mode mode;
	berth_error_t err;
	cleanup_free char *missing = at(f, "nope");

	fake_v1(f, false, NULL);
	assert_int_equal(berth_cgroup_detect(f->root, &mode, &err), -ENODEV);
	assert_message(&err, f, "no cgroup filesystem mounted at `%s`");
	assert_int_equal(berth_cgroup_detect(missing, &mode, &err), -ENOENT);
	assert_message(&err, f, "statfs `%s/nope`: No such file or directory");
	assert_string_equal(berth_cgroup_mode_name(BERTH_CGROUP_HYBRID), "hybrid");
	assert_string_equal(berth_cgroup_mode_name(BERTH_CGROUP_V2), "v2");
	assert_string_equal(berth_cgroup_mode_name(BERTH_CGROUP_V1), "v1");
}

static void test_names(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V2);
	struct berth_cgroup *cg = NULL;
	char name[130];
	berth_error_t err;

	fake_v2(f);
	assert_int_equal(berth_cgroup_create(&cfg, "", NULL, &cg, &err), -EINVAL);
	assert_string_equal(err.message, "cgroup name must not be empty");
	assert_int_equal(berth_cgroup_create(&cfg, ".", NULL, &cg, &err), -EINVAL);
	assert_string_equal(err.message, "invalid cgroup name `.`");
	assert_int_equal(berth_cgroup_open(&cfg, "..", &cg, &err), -EINVAL);
	assert_string_equal(err.message, "invalid cgroup name `..`");
	assert_int_equal(berth_cgroup_create(&cfg, "a/b", NULL, &cg, &err), -EINVAL);
	assert_string_equal(err.message, "invalid cgroup name `a/b`: contains `/`");
	memset(name, 'x', 129);
	name[129] = '\0';
	assert_int_equal(berth_cgroup_create(&cfg, name, NULL, &cg, &err), -EINVAL);
	assert_string_equal(err.message, "invalid cgroup name "
	                                 "`xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...`: longer than 128 "
	                                 "characters");
	assert_null(cg);
	assert_false(exists(f, "berth/x"));

	/* 128 characters are fine. */
	name[128] = '\0';
	assert_int_equal(berth_cgroup_create(&cfg, name, NULL, &cg, &err), 0);
	berth_cgroup_free(cg);
}

/* ---- v2 ---------------------------------------------------------------- */

static void test_v2_create(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V2);
	struct berth_cgroup *cg = NULL, *again = NULL;
	berth_error_t err;
	struct stat st;

	fake_v2(f);
	/* No limits: only memory.swap.max is written, and it is absent here (no swap accounting).
	 */
	assert_int_equal(berth_cgroup_create(&cfg, "web", NULL, &cg, &err), 0);
	assert_file(f, "cgroup.subtree_control", "+memory +pids +cpu");
	assert_file(f, "berth/cgroup.subtree_control", "+memory +pids +cpu");
	assert_true(exists(f, "berth/web"));
	assert_string_equal(berth_cgroup_path(cg), "berth/web");
	assert_true(berth_cgroup_dirfd(cg) >= 0);
	assert_int_equal(fstat(berth_cgroup_dirfd(cg), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_true(fcntl(berth_cgroup_dirfd(cg), F_GETFD) & FD_CLOEXEC);

	assert_int_equal(berth_cgroup_create(&cfg, "web", NULL, &again, &err), -EEXIST);
	assert_string_equal(err.message, "cgroup `berth/web` already exists");
	assert_null(again);
	/* The failed create must not take the existing cgroup with it. */
	assert_true(exists(f, "berth/web"));

	assert_int_equal(berth_cgroup_destroy(cg, &err), 0);
	assert_false(exists(f, "berth/web"));
	assert_true(exists(f, "berth"));
	/* Gone already is fine. */
	assert_int_equal(berth_cgroup_destroy(cg, &err), 0);
	berth_cgroup_free(cg);

	assert_int_equal(berth_cgroup_open(&cfg, "web", &again, &err), -ENOENT);
	assert_string_equal(err.message, "cgroup `berth/web` does not exist");
}

static void test_v2_create_nested_parent(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V2);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v2(f);
	put(f, "berth/pods/cgroup.subtree_control", "");
	cfg.parent = "berth/pods";
	assert_int_equal(berth_cgroup_create(&cfg, "web", NULL, &cg, &err), 0);
	assert_file(f, "cgroup.subtree_control", "+memory +pids +cpu");
	assert_file(f, "berth/cgroup.subtree_control", "+memory +pids +cpu");
	assert_file(f, "berth/pods/cgroup.subtree_control", "+memory +pids +cpu");
	assert_true(exists(f, "berth/pods/web"));
	assert_string_equal(berth_cgroup_path(cg), "berth/pods/web");
	berth_cgroup_free(cg);
}

static void test_v2_create_controllers_already_delegated(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V2);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v2(f);
	/* As the kernel shows it once berth has created one container. */
	put(f, "berth/cgroup.subtree_control", "cpu memory pids\n");
	assert_int_equal(berth_cgroup_create(&cfg, "web", NULL, &cg, &err), 0);
	assert_file(f, "cgroup.subtree_control", "");
	assert_file(f, "berth/cgroup.subtree_control", "cpu memory pids\n");
	berth_cgroup_free(cg);
}

static void test_v2_missing_controller(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V2);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v2(f);
	put(f, "cgroup.controllers", "cpuset cpu io memory hugetlb rdma misc\n");
	assert_int_equal(berth_cgroup_create(&cfg, "web", NULL, &cg, &err), -ENODEV);
	assert_message(&err, f,
	               "cgroup `berth/web`: cgroup controller `pids` is not available (not listed "
	               "in `%s/cgroup.controllers`)");
	assert_false(exists(f, "berth/web"));
	assert_file(f, "cgroup.subtree_control", "");
}

static void test_v2_create_failure_removes_leaf(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V2);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v2(f);
	/* mkdir in a plain directory makes no memory.max: the first write fails. */
	assert_int_equal(berth_cgroup_create(&cfg, "web", &std_limits, &cg, &err), -ENOENT);
	assert_string_equal(err.message,
	                    "cgroup `berth/web`: open `memory.max`: No such file or directory");
	assert_null(cg);
	assert_false(exists(f, "berth/web"));
	assert_true(exists(f, "berth"));
}

static void test_v2_limits(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V2);
	struct berth_cgroup_limits limits = std_limits;
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v2(f);
	fake_v2_leaf(f);
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	assert_int_equal(berth_cgroup_apply_limits(cg, &limits, &err), 0);
	assert_file(f, "berth/web/memory.max", "67108864");
	assert_file(f, "berth/web/memory.swap.max", "0");
	assert_file(f, "berth/web/cpu.max", "50000 100000");
	assert_file(f, "berth/web/pids.max", "32");
	berth_cgroup_free(cg);

	/* Unlimited values are the kernel's defaults and stay unwritten; swap is off regardless. */
	fake_v2_leaf(f);
	memset(&limits, 0, sizeof(limits));
	limits.cpu_quota_us = 150000;
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	assert_int_equal(berth_cgroup_apply_limits(cg, &limits, &err), 0);
	assert_file(f, "berth/web/memory.max", "");
	assert_file(f, "berth/web/memory.swap.max", "0");
	assert_file(f, "berth/web/cpu.max", "150000 100000");
	assert_file(f, "berth/web/pids.max", "");
	berth_cgroup_free(cg);
}

static void test_v2_attach_freeze_kill(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V2);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v2(f);
	fake_v2_leaf(f);
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	assert_int_equal(berth_cgroup_attach(cg, 4242, &err), 0);
	assert_file(f, "berth/web/cgroup.procs", "4242");

	/* The kernel reports the finished freeze in cgroup.events; here it is there already. */
	put(f, "berth/web/cgroup.events", "populated 1\nfrozen 1\n");
	assert_int_equal(berth_cgroup_freeze(cg, true, &err), 0);
	assert_file(f, "berth/web/cgroup.freeze", "1");
	put(f, "berth/web/cgroup.events", "populated 1\nfrozen 0\n");
	assert_int_equal(berth_cgroup_freeze(cg, false, &err), 0);
	assert_file(f, "berth/web/cgroup.freeze", "0");

	assert_int_equal(berth_cgroup_kill(cg, &err), 0);
	assert_file(f, "berth/web/cgroup.kill", "1");
	berth_cgroup_free(cg);
}

static void test_v2_stats(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V2);
	struct berth_cgroup *cg = NULL;
	struct berth_cgroup_stats st;
	berth_error_t err;
	uint64_t kills = 99;

	fake_v2(f);
	mkdirs(f, "berth/web");
	put(f, "berth/web/memory.current", "1048576\n");
	put(f, "berth/web/cpu.stat",
	    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"
	    "nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n");
	put(f, "berth/web/pids.current", "3\n");
	put(f, "berth/web/memory.events",
	    "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n");
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);

	/* No memory.peak before Linux 5.19. */
	assert_int_equal(berth_cgroup_stats(cg, &st, &err), 0);
	assert_int_equal(st.memory_current, 1048576);
	assert_int_equal(st.memory_peak, 0);
	assert_int_equal(st.cpu_usage_ns, 1500000);
	assert_int_equal(st.pids_current, 3);
	assert_int_equal(st.oom_kills, 2);
	assert_int_equal(berth_cgroup_oom_kills(cg, &kills, &err), 0);
	assert_int_equal(kills, 2);

	put(f, "berth/web/memory.peak", "2097152\n");
	assert_int_equal(berth_cgroup_stats(cg, &st, &err), 0);
	assert_int_equal(st.memory_peak, 2097152);

	put(f, "berth/web/pids.current", "lots\n");
	assert_int_equal(berth_cgroup_stats(cg, &st, &err), -EINVAL);
	assert_string_equal(err.message,
	                    "cgroup `berth/web`: stats: `pids.current` holds `lots`, not a number");
	berth_cgroup_free(cg);
}

/* ---- v1 ---------------------------------------------------------------- */

static void test_v1_missing_controller(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_HYBRID);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v1(f, false, "pids");
	assert_int_equal(berth_cgroup_create(&cfg, "web", NULL, &cg, &err), -ENODEV);
	assert_message(&err, f,
	               "cgroup `berth/web`: cgroup controller `pids` is not mounted at `%s/pids`");
	assert_false(exists(f, "memory/berth/web"));

	/* An empty mount point with nothing mounted on it is not a controller. */
	mkdirs(f, "pids");
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), -ENODEV);
	assert_message(&err, f,
	               "cgroup `berth/web`: cgroup controller `pids` is not mounted at `%s/pids`");
}

static void create_v1_fails_and_cleans_up(const struct fake *f)
{
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V1);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;
	size_t i;

	/*
	 * Every leaf is made (co-mounted cpu and cpuacct get one, not an
	 * EEXIST), then the first knob is missing, and every leaf goes again.
	 */
	assert_int_equal(berth_cgroup_create(&cfg, "web", &std_limits, &cg, &err), -ENOENT);
	assert_string_equal(
	        err.message,
	        "cgroup `berth/web`: open `memory.limit_in_bytes`: No such file or directory");
	assert_null(cg);
	for (i = 0; i < BERTH_ARRAY_SIZE(v1_ctrls); i++) {
		cleanup_free char *parent = xasprintf("%s/berth", v1_ctrls[i]);
		cleanup_free char *leaf = xasprintf("%s/berth/web", v1_ctrls[i]);
		assert_true(exists(f, parent));
		assert_false(exists(f, leaf));
	}
}

static void test_v1_create_cleans_up(void **state)
{
	struct fake *f = *state;

	fake_v1(f, false, NULL);
	create_v1_fails_and_cleans_up(f);
}

static void test_v1_create_comounted(void **state)
{
	struct fake *f = *state;

	fake_v1(f, true, NULL);
	create_v1_fails_and_cleans_up(f);
}

static void test_v1_create_exists(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V1);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v1(f, false, NULL);
	/* Someone else's leaf in one hierarchy only: berth's half-made ones go, theirs stays. */
	mkdirs(f, "pids/berth/web");
	assert_int_equal(berth_cgroup_create(&cfg, "web", &std_limits, &cg, &err), -EEXIST);
	assert_string_equal(err.message, "cgroup `berth/web` already exists");
	assert_false(exists(f, "memory/berth/web"));
	assert_false(exists(f, "cpu/berth/web"));
	assert_false(exists(f, "cpuacct/berth/web"));
	assert_true(exists(f, "pids/berth/web"));
	assert_false(exists(f, "freezer/berth/web"));
}

static const char devices_allowed[] = "c *:* m\n"
                                      "b *:* m\n"
                                      "c 1:3 rwm\n"
                                      "c 1:5 rwm\n"
                                      "c 1:7 rwm\n"
                                      "c 1:8 rwm\n"
                                      "c 1:9 rwm\n"
                                      "c 5:0 rwm\n"
                                      "c 5:1 rwm\n"
                                      "c 5:2 rwm\n"
                                      "c 136:* rwm\n"
                                      "c 10:200 rwm\n";

static void test_v1_limits(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_HYBRID);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v1(f, false, NULL);
	fake_v1_leaf(f, true);
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	assert_int_equal(berth_cgroup_dirfd(cg), -1);
	assert_int_equal(berth_cgroup_apply_limits(cg, &std_limits, &err), 0);
	assert_file(f, "memory/berth/web/memory.limit_in_bytes", "67108864");
	assert_file(f, "memory/berth/web/memory.memsw.limit_in_bytes", "67108864");
	assert_file(f, "memory/berth/web/memory.swappiness", "");
	/* 100000 is what a fresh cgroup has. */
	assert_file(f, "cpu/berth/web/cpu.cfs_period_us", "");
	assert_file(f, "cpu/berth/web/cpu.cfs_quota_us", "50000");
	assert_file(f, "pids/berth/web/pids.max", "32");
	assert_file(f, "devices/berth/web/devices.deny", "a");
	assert_file(f, "devices/berth/web/devices.allow", devices_allowed);
	berth_cgroup_free(cg);
}

static void test_v1_limits_without_memsw(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V1);
	struct berth_cgroup_limits limits = {.cpu_quota_us = 20000, .cpu_period_us = 10000};
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v1(f, false, NULL);
	fake_v1_leaf(f, false);
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	assert_int_equal(berth_cgroup_apply_limits(cg, &std_limits, &err), 0);
	assert_file(f, "memory/berth/web/memory.limit_in_bytes", "67108864");
	assert_false(exists(f, "memory/berth/web/memory.memsw.limit_in_bytes"));
	assert_file(f, "memory/berth/web/memory.swappiness", "0");
	berth_cgroup_free(cg);

	/* No memory limit: memsw cannot express "no swap", swappiness can. */
	fake_v1_leaf(f, true);
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	assert_int_equal(berth_cgroup_apply_limits(cg, &limits, &err), 0);
	assert_file(f, "memory/berth/web/memory.limit_in_bytes", "");
	assert_file(f, "memory/berth/web/memory.memsw.limit_in_bytes", "");
	assert_file(f, "memory/berth/web/memory.swappiness", "0");
	assert_file(f, "cpu/berth/web/cpu.cfs_period_us", "10000");
	assert_file(f, "cpu/berth/web/cpu.cfs_quota_us", "20000");
	assert_file(f, "pids/berth/web/pids.max", "");
	berth_cgroup_free(cg);
}

static void test_v1_comounted_attach(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V1);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v1(f, true, NULL);
	fake_v1_leaf(f, true);
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	assert_int_equal(berth_cgroup_attach(cg, 4242, &err), 0);
	/* One write per hierarchy: co-mounted cpu,cpuacct gets the pid once. */
	assert_file(f, "cpu,cpuacct/berth/web/cgroup.procs", "4242");
	assert_file(f, "memory/berth/web/cgroup.procs", "4242");
	assert_file(f, "pids/berth/web/cgroup.procs", "4242");
	assert_file(f, "freezer/berth/web/cgroup.procs", "4242");
	assert_file(f, "devices/berth/web/cgroup.procs", "4242");
	berth_cgroup_free(cg);
}

static void test_v1_attach_error(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V1);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;
	cleanup_free char *procs = NULL;

	fake_v1(f, false, NULL);
	fake_v1_leaf(f, true);
	procs = at(f, "pids/berth/web/cgroup.procs");
	assert_int_equal(unlink(procs), 0);
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	assert_int_equal(berth_cgroup_attach(cg, 4242, &err), -ENOENT);
	assert_string_equal(err.message, "cgroup `berth/web`: attach process 4242: pids: open "
	                                 "`cgroup.procs`: No such file or directory");
	berth_cgroup_free(cg);
}

static void test_v1_freeze(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V1);
	struct berth_cgroup *cg = NULL;
	cleanup_free char *knob = NULL;
	struct timespec t0, t1;
	berth_error_t err;

	fake_v1(f, false, NULL);
	fake_v1_leaf(f, true);
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	assert_int_equal(berth_cgroup_freeze(cg, true, &err), 0);
	assert_file(f, "freezer/berth/web/freezer.state", "FROZEN");
	assert_int_equal(berth_cgroup_freeze(cg, false, &err), 0);
	assert_file(f, "freezer/berth/web/freezer.state", "THAWED");

	/* A state that never reads back FROZEN: the wait is bounded and says what it saw. */
	knob = at(f, "freezer/berth/web/freezer.state");
	assert_int_equal(unlink(knob), 0);
	assert_int_equal(symlink("/dev/null", knob), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(berth_cgroup_freeze(cg, true, &err), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_string_equal(
	        err.message,
	        "cgroup `berth/web`: freeze: `freezer.state` still read `` after 2000 ms");
	assert_true(t1.tv_sec - t0.tv_sec >= 1 && t1.tv_sec - t0.tv_sec <= 5);
	berth_cgroup_free(cg);
}

static void test_v1_stats(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V1);
	struct berth_cgroup *cg = NULL;
	struct berth_cgroup_stats st;
	berth_error_t err;
	uint64_t kills = 99;

	fake_v1(f, false, NULL);
	fake_v1_leaf(f, true);
	put(f, "memory/berth/web/memory.usage_in_bytes", "4096\n");
	put(f, "memory/berth/web/memory.max_usage_in_bytes", "8192\n");
	put(f, "memory/berth/web/memory.oom_control",
	    "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
	put(f, "cpuacct/berth/web/cpuacct.usage", "123456789\n");
	put(f, "pids/berth/web/pids.current", "1\n");
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	assert_int_equal(berth_cgroup_stats(cg, &st, &err), 0);
	assert_int_equal(st.memory_current, 4096);
	assert_int_equal(st.memory_peak, 8192);
	assert_int_equal(st.cpu_usage_ns, 123456789);
	assert_int_equal(st.pids_current, 1);
	assert_int_equal(st.oom_kills, 3);
	assert_int_equal(berth_cgroup_oom_kills(cg, &kills, &err), 0);
	assert_int_equal(kills, 3);

	/* Before Linux 4.13 the line does not exist: no kills known. */
	put(f, "memory/berth/web/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
	assert_int_equal(berth_cgroup_oom_kills(cg, &kills, &err), 0);
	assert_int_equal(kills, 0);
	assert_int_equal(berth_cgroup_stats(cg, &st, &err), 0);
	assert_int_equal(st.oom_kills, 0);

	put(f, "memory/berth/web/memory.oom_control", "oom_kill x\n");
	assert_int_equal(berth_cgroup_oom_kills(cg, &kills, &err), -EINVAL);
	assert_string_equal(
	        err.message,
	        "cgroup `berth/web`: `memory.oom_control`: value of `oom_kill` is not a "
	        "number");
	berth_cgroup_free(cg);
}

static void test_v1_destroy(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V1);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;
	size_t i;

	fake_v1(f, true, NULL);
	for (i = 0; i < BERTH_ARRAY_SIZE(v1_ctrls); i++) {
		cleanup_free char *rel = xasprintf("%s/berth/web", v1_ctrls[i]);
		mkdirs(f, rel);
	}
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	/* cgroupfs would remove a leaf that still holds files; a plain directory says ENOTEMPTY. */
	put(f, "pids/berth/web/pids.max", "");
	assert_int_equal(berth_cgroup_destroy(cg, &err), -ENOTEMPTY);
	assert_message(&err, f,
	               "cgroup `berth/web`: rmdir `%s/pids/berth/web`: Directory not empty");
	/* The others went anyway. */
	assert_false(exists(f, "memory/berth/web"));
	assert_false(exists(f, "cpu,cpuacct/berth/web"));
	assert_false(exists(f, "devices/berth/web"));
	berth_cgroup_free(cg);
}

/* How many entries of directory `dir` have names that start with `prefix`. */
static int count_prefixed(const char *dir, const char *prefix)
{
	cleanup_closedir DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	return n;
}

static int fake_retired(const struct fake *f, const char *rel, const char *name)
{
	cleanup_free char *dir = at(f, rel);
	cleanup_free char *prefix = xasprintf("~%s.", name);

	return count_prefixed(dir, prefix);
}

/* ---- retired cgroups --------------------------------------------------- */

static void test_v2_retire_sweep(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V2);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;

	fake_v2(f);
	assert_int_equal(berth_cgroup_create(&cfg, "web", NULL, &cg, &err), 0);
	/* cgroup2 renames nothing: the caller removes the cgroup as usual. */
	assert_int_equal(berth_cgroup_retire(cg, &err), -EOPNOTSUPP);
	assert_string_equal(err.message, "cgroup `berth/web`: retire: cgroup v2 cannot rename");
	assert_true(exists(f, "berth/web"));
	berth_cgroup_free(cg);

	/* The sweep takes retired ones only, and reports one that cannot go. */
	mkdirs(f, "berth/~gone.00000001");
	put(f, "berth/~old.00000002/cgroup.procs", "");
	assert_int_equal(berth_cgroup_sweep_retired(&cfg, &err), -ENOTEMPTY);
	assert_message(&err, f,
	               "1 retired cgroup(s) left: rmdir `%s/berth/~old.00000002`: Directory not "
	               "empty");
	assert_false(exists(f, "berth/~gone.00000001"));
	assert_true(exists(f, "berth/~old.00000002"));
	assert_true(exists(f, "berth/web"));
}

static void test_v1_retire_sweep(void **state)
{
	struct fake *f = *state;
	struct berth_cgroup_config cfg = fake_cfg(f, BERTH_CGROUP_V1);
	struct berth_cgroup *cg = NULL;
	berth_error_t err;
	size_t i;

	fake_v1(f, true, NULL);
	for (i = 0; i < BERTH_ARRAY_SIZE(v1_ctrls); i++) {
		cleanup_free char *rel = xasprintf("%s/berth/web", v1_ctrls[i]);
		mkdirs(f, rel);
	}
	mkdirs(f, "memory/berth/api");
	assert_int_equal(berth_cgroup_open(&cfg, "web", &cg, &err), 0);
	assert_int_equal(berth_cgroup_retire(cg, &err), 0);
	berth_cgroup_free(cg);
	/* Out of the name's way: a successor of that name can start at once. */
	assert_false(exists(f, "memory/berth/web"));
	/* Every hierarchy, co-mounted cpu,cpuacct once. */
	assert_int_equal(fake_retired(f, "memory/berth", "web"), 1);
	assert_int_equal(fake_retired(f, "cpu,cpuacct/berth", "web"), 1);
	assert_int_equal(fake_retired(f, "pids/berth", "web"), 1);
	assert_int_equal(fake_retired(f, "devices/berth", "web"), 1);
	assert_false(exists(f, "freezer/berth/web"));

	assert_int_equal(berth_cgroup_sweep_retired(&cfg, &err), 0);
	for (i = 0; i < BERTH_ARRAY_SIZE(v1_ctrls); i++) {
		cleanup_free char *rel = xasprintf("%s/berth", v1_ctrls[i]);
		assert_int_equal(fake_retired(f, rel, "web"), 0);
	}
	/* Live cgroups stay. */
	assert_true(exists(f, "memory/berth/api"));
	/* Nothing to sweep, and no parent at all, are fine. */
	assert_int_equal(berth_cgroup_sweep_retired(&cfg, &err), 0);
	cfg.parent = "none";
	assert_int_equal(berth_cgroup_sweep_retired(&cfg, &err), 0);
}

/* ---- the real machine -------------------------------------------------- */

#define REAL_ROOT   "/sys/fs/cgroup"
#define REAL_PARENT "berth-unit-test"

static bool need_root(void)
{
	if (geteuid() == 0)
		return true;
	print_message("skipped: creating cgroups under " REAL_ROOT " needs root\n");
	return false;
}

/* What /proc/self/mounts says is at `dir`: "cgroup2", "cgroup", "tmpfs", or NULL. */
static char *mount_type(const char *dir)
{
	cleanup_fclose FILE *mounts = fopen("/proc/self/mounts", "re");
	char line[1024], mnt[512], type[64];
	char *found = NULL;

	assert_non_null(mounts);
	while (fgets(line, sizeof(line), mounts) != NULL) {
		if (sscanf(line, "%*s %511s %63s", mnt, type) == 2 && strcmp(mnt, dir) == 0) {
			free(found);
			found = xstrdup(type);
		}
	}
	return found;
}

static enum berth_cgroup_mode expected_mode(void)
{
	cleanup_free char *top = mount_type(REAL_ROOT);
	cleanup_free char *unified = mount_type(REAL_ROOT "/unified");

	if (top != NULL && strcmp(top, "cgroup2") == 0)
		return BERTH_CGROUP_V2;
	if (unified != NULL && strcmp(unified, "cgroup2") == 0)
		return BERTH_CGROUP_HYBRID;
	return BERTH_CGROUP_V1;
}
static struct berth_cgroup_config real_cfg(void)
{
	struct berth_cgroup_config cfg = {.root = REAL_ROOT, .parent = REAL_PARENT};
	berth_error_t err;

	if (berth_cgroup_detect(REAL_ROOT, &cfg.mode, &err) < 0)
		fail_msg("%s", err.message);
	return cfg;
}

/* Where controller `ctrl`'s knobs of cgroup NAME are (the same directory for all on v2). */
static char *real_dir(const struct berth_cgroup_config *cfg, const char *ctrl, const char *name)
{
	if (cfg->mode == BERTH_CGROUP_V2)
		return xasprintf(REAL_ROOT "/" REAL_PARENT "/%s", name);
	return xasprintf(REAL_ROOT "/%s/" REAL_PARENT "/%s", ctrl, name);
}

static char *real_read(const struct berth_cgroup_config *cfg, const char *ctrl, const char *name,
                       const char *knob)
{
	cleanup_free char *dir = real_dir(cfg, ctrl, name);
	cleanup_free char *path = xasprintf("%s/%s", dir, knob);
	berth_error_t err;
	char *buf = NULL;

	if (berth_read_file_at(AT_FDCWD, path, 1 << 20, &buf, NULL, &err) < 0)
		fail_msg("%s", err.message);
	if (*buf != '\0' && buf[strlen(buf) - 1] == '\n')
		buf[strlen(buf) - 1] = '\0';
	return buf;
}

static void assert_knob(const struct berth_cgroup_config *cfg, const char *ctrl, const char *name,
                        const char *knob, const char *want)
{
	cleanup_free char *got = real_read(cfg, ctrl, name, knob);

	assert_string_equal(got, want);
}

static void remove_real_parent(const struct berth_cgroup_config *cfg)
{
	size_t i;

	/* Busy when another run is using it: then that run removes it. */
	if (cfg->mode == BERTH_CGROUP_V2) {
		rmdir(REAL_ROOT "/" REAL_PARENT);
		return;
	}
	for (i = 0; i < BERTH_ARRAY_SIZE(v1_ctrls); i++) {
		cleanup_free char *dir = xasprintf(REAL_ROOT "/%s/" REAL_PARENT, v1_ctrls[i]);
		rmdir(dir);
	}
}

/* A child that waits for a byte on `fds[0]`, then runs `then` (or exits). */
static pid_t spawn_waiting(int fds[2], void (*then)(void))
{
	pid_t pid;

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;
		close(fds[1]);
		if (read(fds[0], &c, 1) == 1 && then != NULL)
			then();
		_exit(0);
	}
	close(fds[0]);
	return pid;
}

static void test_real_detect(void **state)
{
	enum berth_cgroup_mode mode;
	berth_error_t err;

	(void)state;
	assert_int_equal(berth_cgroup_detect(REAL_ROOT, &mode, &err), 0);
	assert_int_equal(mode, expected_mode());
	print_message("cgroup layout here: %s\n", berth_cgroup_mode_name(mode));
}

static void test_real_lifecycle(void **state)
{
	struct berth_cgroup_config cfg = real_cfg();
	struct berth_cgroup *cg = NULL, *dup = NULL;
	struct berth_cgroup_stats st;
	cleanup_free char *name = xasprintf("t%d", (int)getpid());
	int fds[2], status;
	berth_error_t err;
	pid_t child;
	size_t i;

	(void)state;
	if (!need_root())
		skip();
	if (berth_cgroup_create(&cfg, name, &std_limits, &cg, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(berth_cgroup_create(&cfg, name, &std_limits, &dup, &err), -EEXIST);
	assert_null(dup);

	child = spawn_waiting(fds, NULL);
	if (berth_cgroup_attach(cg, child, &err) < 0)
		fail_msg("%s", err.message);

	/* What the kernel holds now. */
	if (cfg.mode == BERTH_CGROUP_V2) {
		assert_knob(&cfg, NULL, name, "memory.max", "67108864");
		assert_knob(&cfg, NULL, name, "cpu.max", "50000 100000");
		assert_knob(&cfg, NULL, name, "pids.max", "32");
	} else {
		cleanup_free char *memdir = real_dir(&cfg, "memory", name);
		cleanup_free char *memsw = xasprintf("%s/memory.memsw.limit_in_bytes", memdir);
		cleanup_free char *devices = real_read(&cfg, "devices", name, "devices.list");
		cleanup_free char *want_devices =
		        xstrndup(devices_allowed, strlen(devices_allowed) - 1);

		assert_knob(&cfg, "memory", name, "memory.limit_in_bytes", "67108864");
		if (access(memsw, F_OK) == 0)
			assert_knob(&cfg, "memory", name, "memory.memsw.limit_in_bytes",
			            "67108864");
		else
			assert_knob(&cfg, "memory", name, "memory.swappiness", "0");
		assert_knob(&cfg, "cpu", name, "cpu.cfs_quota_us", "50000");
		assert_knob(&cfg, "cpu", name, "cpu.cfs_period_us", "100000");
		assert_knob(&cfg, "pids", name, "pids.max", "32");
		assert_string_equal(devices, want_devices);
		/* Every hierarchy berth uses has the child. */
		for (i = 0; i < BERTH_ARRAY_SIZE(v1_ctrls); i++) {
			cleanup_free char *procs =
			        real_read(&cfg, v1_ctrls[i], name, "cgroup.procs");
			cleanup_free char *want = xasprintf("%d", (int)child);
			assert_string_equal(procs, want);
		}
	}

	if (berth_cgroup_stats(cg, &st, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(st.pids_current, 1);
	assert_int_equal(st.oom_kills, 0);

	if (berth_cgroup_freeze(cg, true, &err) < 0)
		fail_msg("%s", err.message);
	if (cfg.mode == BERTH_CGROUP_V2) {
		cleanup_free char *events = real_read(&cfg, NULL, name, "cgroup.events");
		assert_non_null(strstr(events, "frozen 1"));
	} else {
		assert_knob(&cfg, "freezer", name, "freezer.state", "FROZEN");
	}
	/* Frozen, the child cannot act on the byte it is sent. */
	assert_int_equal(write(fds[1], "x", 1), 1);
	usleep(50 * 1000);
	assert_int_equal(waitpid(child, &status, WNOHANG), 0);
	if (berth_cgroup_freeze(cg, false, &err) < 0)
		fail_msg("%s", err.message);
	if (cfg.mode != BERTH_CGROUP_V2)
		assert_knob(&cfg, "freezer", name, "freezer.state", "THAWED");
	/* Thawed, it reads the byte and exits. */
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	close(fds[1]);

	/* A second child, killed through the cgroup. */
	child = spawn_waiting(fds, NULL);
	if (berth_cgroup_attach(cg, child, &err) < 0)
		fail_msg("%s", err.message);
	if (berth_cgroup_kill(cg, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	close(fds[1]);

	if (berth_cgroup_destroy(cg, &err) < 0)
		fail_msg("%s", err.message);
	for (i = 0; i < BERTH_ARRAY_SIZE(v1_ctrls); i++) {
		cleanup_free char *dir = real_dir(&cfg, v1_ctrls[i], name);
		assert_int_equal(access(dir, F_OK), -1);
		assert_int_equal(errno, ENOENT);
	}
	berth_cgroup_free(cg);
	remove_real_parent(&cfg);
}

/* Touch far more memory than the limit allows. */
static void hog(void)
{
	size_t len = 256 * MIB, off;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		_exit(3);
	for (off = 0; off < len; off += 4096)
		p[off] = 1;
	_exit(4);
}

static void test_real_retire(void **state)
{
	struct berth_cgroup_config cfg = real_cfg();
	struct berth_cgroup *cg = NULL;
	cleanup_free char *name = xasprintf("r%d", (int)getpid());
	cleanup_free char *prefix = xasprintf("~%s.", name);
	cleanup_free char *dir = NULL;
	cleanup_free char *parent = NULL;
	berth_error_t err;

	(void)state;
	if (!need_root())
		skip();
	if (cfg.mode == BERTH_CGROUP_V2)
		skip(); /* cgroup2 cannot rename; the fake tree covers the refusal */
	if (berth_cgroup_create(&cfg, name, &std_limits, &cg, &err) < 0)
		fail_msg("%s", err.message);
	if (berth_cgroup_retire(cg, &err) < 0)
		fail_msg("%s", err.message);
	berth_cgroup_free(cg);
	/* cgroupfs renames a cgroup in place: the name is free, the cgroup retired. */
	dir = real_dir(&cfg, "memory", name);
	assert_int_equal(access(dir, F_OK), -1);
	parent = xasprintf("%.*s", (int)(strrchr(dir, '/') - dir), dir);
	assert_int_equal(count_prefixed(parent, prefix), 1);
	if (berth_cgroup_sweep_retired(&cfg, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(count_prefixed(parent, prefix), 0);
	remove_real_parent(&cfg);
}

static void test_real_oom(void **state)
{
	struct berth_cgroup_config cfg = real_cfg();
	struct berth_cgroup_limits limits = {.memory_bytes = 16 * MIB};
	struct berth_cgroup *cg = NULL;
	cleanup_free char *name = xasprintf("t%d-oom", (int)getpid());
	uint64_t kills = 0;
	int fds[2], status;
	berth_error_t err;
	pid_t child;

	(void)state;
	if (!need_root())
		skip();
	if (berth_cgroup_create(&cfg, name, &limits, &cg, &err) < 0)
		fail_msg("%s", err.message);
	child = spawn_waiting(fds, hog);
	if (berth_cgroup_attach(cg, child, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(write(fds[1], "x", 1), 1);
	close(fds[1]);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	if (berth_cgroup_oom_kills(cg, &kills, &err) < 0)
		fail_msg("%s", err.message);
	assert_true(kills >= 1);
	if (berth_cgroup_destroy(cg, &err) < 0)
		fail_msg("%s", err.message);
	berth_cgroup_free(cg);
	remove_real_parent(&cfg);
}

/*
 * On a hybrid host the cgroup2 mount at ROOT/unified has no controller berth
 * needs, but the v2 core (cgroup.procs, cgroup.freeze/cgroup.events,
 * cgroup.kill, rmdir) is all there: the v2 backend runs against the real
 * kernel for everything but limits and stats.
 */
static void test_real_v2_core(void **state)
{
	struct berth_cgroup_config cfg = {
	        .root = REAL_ROOT "/unified", .mode = BERTH_CGROUP_V2, .parent = REAL_PARENT};
	struct berth_cgroup *cg = NULL;
	cleanup_free char *name = xasprintf("t%d-v2", (int)getpid());
	cleanup_free char *leaf = xasprintf("%s/%s/%s", cfg.root, cfg.parent, name);
	cleanup_free char *parent = xasprintf("%s/%s", cfg.root, cfg.parent);
	cleanup_free char *want_err = NULL;
	int fds[2], status;
	berth_error_t err;
	pid_t child;
	char buf[256];

	(void)state;
	if (!need_root())
		skip();
	if (expected_mode() != BERTH_CGROUP_HYBRID) {
		print_message("skipped: no cgroup2 mount at " REAL_ROOT "/unified on this host\n");
		skip();
	}
	/* The kernel's own cgroup.controllers lacks memory here. */
	assert_int_equal(berth_cgroup_create(&cfg, name, NULL, &cg, &err), -ENODEV);
	want_err = xasprintf("cgroup `%s/%s`: cgroup controller `memory` is not available (not "
	                     "listed in `%s/cgroup.controllers`)",
	                     REAL_PARENT, name, cfg.root);
	assert_string_equal(err.message, want_err);
	assert_int_equal(access(leaf, F_OK), -1);

	assert_true(mkdir(parent, 0755) == 0 || errno == EEXIST);
	assert_int_equal(mkdir(leaf, 0755), 0);
	if (berth_cgroup_open(&cfg, name, &cg, &err) < 0)
		fail_msg("%s", err.message);
	assert_true(berth_cgroup_dirfd(cg) >= 0);

	child = spawn_waiting(fds, NULL);
	if (berth_cgroup_attach(cg, child, &err) < 0)
		fail_msg("%s", err.message);
	assert_true(berth_cgroup_read_knob(berth_cgroup_dirfd(cg), "cgroup.procs", buf, sizeof(buf),
	                                   &err) > 0);
	assert_int_equal(atoi(buf), child);

	if (berth_cgroup_freeze(cg, true, &err) < 0)
		fail_msg("%s", err.message);
	assert_true(berth_cgroup_read_knob(berth_cgroup_dirfd(cg), "cgroup.events", buf,
	                                   sizeof(buf), &err) > 0);
	assert_non_null(strstr(buf, "frozen 1"));
	assert_int_equal(write(fds[1], "x", 1), 1);
	usleep(50 * 1000);
	assert_int_equal(waitpid(child, &status, WNOHANG), 0);
	if (berth_cgroup_freeze(cg, false, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	close(fds[1]);

	child = spawn_waiting(fds, NULL);
	if (berth_cgroup_attach(cg, child, &err) < 0)
		fail_msg("%s", err.message);
	if (berth_cgroup_kill(cg, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	close(fds[1]);

	if (berth_cgroup_destroy(cg, &err) < 0)
		fail_msg("%s", err.message);
	assert_int_equal(access(leaf, F_OK), -1);
	berth_cgroup_free(cg);
	rmdir(parent);
}

/*
 * A failed assertion leaves its cgroups behind: remove whatever this run
 * made (thawed first, so that a frozen child can exit), then the parents.
 */
static int real_leftovers_teardown(void **state)
{
	static const char *const hiers[] = {"memory",  "cpu",     "cpuacct", "pids",
	                                    "freezer", "devices", "unified", "."};
	static const char *const suffixes[] = {"", "-oom", "-v2"};
	size_t h, s;

	(void)state;
	if (geteuid() != 0)
		return 0;
	for (h = 0; h < BERTH_ARRAY_SIZE(hiers); h++) {
		for (s = 0; s < BERTH_ARRAY_SIZE(suffixes); s++) {
			cleanup_free char *leaf = xasprintf(REAL_ROOT "/%s/" REAL_PARENT "/t%d%s",
			                                    hiers[h], (int)getpid(), suffixes[s]);
			cleanup_free char *state_knob = xasprintf("%s/freezer.state", leaf);
			cleanup_free char *freeze_knob = xasprintf("%s/cgroup.freeze", leaf);
			berth_error_t err;

			if (access(leaf, F_OK) < 0)
				continue;
			berth_write_knob(AT_FDCWD, state_knob, "THAWED", &err);
			berth_write_knob(AT_FDCWD, freeze_knob, "0", &err);
			rmdir(leaf);
		}
		cleanup_free char *parent = xasprintf(REAL_ROOT "/%s/" REAL_PARENT, hiers[h]);
		rmdir(parent);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_detect_plain_dir, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_names, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v2_create, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v2_create_nested_parent, fake_setup,
	                                        fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v2_create_controllers_already_delegated,
	                                        fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v2_missing_controller, fake_setup,
	                                        fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v2_create_failure_removes_leaf, fake_setup,
	                                        fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v2_limits, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v2_attach_freeze_kill, fake_setup,
	                                        fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v2_stats, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_missing_controller, fake_setup,
	                                        fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_create_cleans_up, fake_setup,
	                                        fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_create_comounted, fake_setup,
	                                        fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_create_exists, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_limits, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_limits_without_memsw, fake_setup,
	                                        fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_comounted_attach, fake_setup,
	                                        fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_attach_error, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_freeze, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_stats, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_destroy, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v2_retire_sweep, fake_setup, fake_teardown),
	        cmocka_unit_test_setup_teardown(test_v1_retire_sweep, fake_setup, fake_teardown),
	        cmocka_unit_test(test_real_detect),
	        cmocka_unit_test(test_real_lifecycle),
	        cmocka_unit_test(test_real_retire),
	        cmocka_unit_test(test_real_oom),
	        cmocka_unit_test(test_real_v2_core),
	};
	return cmocka_run_group_tests(tests, NULL, real_leftovers_teardown);
}
