/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Layout detection, the public entry points (which validate, dispatch to the
 * backend's function table and add the cgroup's name to errors), and the
 * helpers both backends share.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "runtime/cgroup-internal.h"

#define NAME_MAX_LEN 128

/* cgroup.procs of a container may list many processes; bound it anyway. */
#define PROCS_MAX (4u << 20)

/* ---- shared helpers ---------------------------------------------------- */

ssize_t berth_cgroup_read_knob(int dirfd, const char *name, char *buf, size_t size,
                               berth_error_t *err)
{
	cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return berth_error_set(err, errno, "open `%s`", name);
	n = berth_read_all(fd, buf, size);
	if (n < 0)
		return berth_error_set(err, (int)-n, "read `%s`", name);
	if ((size_t)n == size)
		return berth_error_set(err, EFBIG, "read `%s`", name);
	buf[n] = '\0';
	return n;
}

/* Parse the decimal number at `s`: the character after it, or NULL when there is none. */
static const char *parse_u64(const char *s, uint64_t *val)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return NULL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return NULL;
	*val = v;
	return end;
}

int berth_cgroup_read_u64(int dirfd, const char *name, uint64_t *val, berth_error_t *err)
{
	char buf[64];
	const char *end;
	ssize_t n = berth_cgroup_read_knob(dirfd, name, buf, sizeof(buf), err);

	if (n < 0)
		return (int)n;
	end = parse_u64(buf, val);
	if (end == NULL || (*end != '\n' && *end != '\0'))
		return berth_error_set_plain(err, EINVAL, "`%s` holds `%.*s`, not a number", name,
		                             (int)strcspn(buf, "\n"), buf);
	return 0;
}

int berth_cgroup_write_u64(int dirfd, const char *name, uint64_t val, berth_error_t *err)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, val);
	return berth_write_knob(dirfd, name, buf, err);
}

int berth_cgroup_keyed_u64(const char *text, const char *key, uint64_t *val)
{
	size_t klen = strlen(key);
	const char *line = text;

	while (*line != '\0') {
		const char *next = strchr(line, '\n');
		const char *end;

		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			end = parse_u64(line + klen + 1, val);
			if (end == NULL || (*end != '\n' && *end != '\0'))
				return -EINVAL;
			return 1;
		}
		if (next == NULL)
			break;
		line = next + 1;
	}
	return 0;
}

int berth_cgroup_read_keyed(int dirfd, const char *name, const char *key, uint64_t *val,
                            berth_error_t *err)
{
	char buf[BERTH_CGROUP_KNOB_BUF];
	ssize_t n = berth_cgroup_read_knob(dirfd, name, buf, sizeof(buf), err);
	int r;

	if (n < 0)
		return (int)n;
	*val = 0;
	r = berth_cgroup_keyed_u64(buf, key, val);
	if (r < 0)
		return berth_error_set_plain(err, EINVAL, "`%s`: value of `%s` is not a number",
		                             name, key);
	return r;
}

static void timespec_add_us(struct timespec *ts, long us)
{
	ts->tv_sec += us / 1000000;
	ts->tv_nsec += (us % 1000000) * 1000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

void berth_cgroup_backoff_start(struct berth_cgroup_backoff *b, long timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, &b->deadline);
	timespec_add_us(&b->deadline, timeout_ms * 1000);
	b->delay_us = 100;
}

bool berth_cgroup_backoff_wait(struct berth_cgroup_backoff *b)
{
	struct timespec now, wake;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec > b->deadline.tv_sec ||
	    (now.tv_sec == b->deadline.tv_sec && now.tv_nsec >= b->deadline.tv_nsec))
		return false;
	wake = now;
	timespec_add_us(&wake, b->delay_us);
	if (wake.tv_sec > b->deadline.tv_sec ||
	    (wake.tv_sec == b->deadline.tv_sec && wake.tv_nsec > b->deadline.tv_nsec))
		wake = b->deadline;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, NULL) == EINTR)
		;
	/* Most waits (a freeze, a task's exit) end within a millisecond; few need 10. */
	if (b->delay_us < 10000)
		b->delay_us *= 2;
	return true;
}

int berth_cgroup_open_leaf(const struct berth_cgroup *cg, const char *hier, int *fd,
                           berth_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/%s/%s", hier, cg->parent, cg->name);

	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return berth_error_set(err, errno, "open `%s`", path);
	return 0;
}

int berth_cgroup_mkdir_leaf(const struct berth_cgroup *cg, const char *hier, int *fd,
                            berth_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/%s/%s", hier, cg->parent, cg->name);
	int r;

	/* PARENT nearly always exists: try the leaf first and save a mkdir. */
	if (mkdir(path, 0755) < 0) {
		if (errno != ENOENT)
			return berth_error_set(err, errno, "mkdir `%s`", path);
		cleanup_free char *parent = xasprintf("%s/%s", hier, cg->parent);
		/* HIER itself exists (a mount point); only a nested PARENT needs more. */
		if (mkdir(parent, 0755) < 0 && errno != EEXIST) {
			r = berth_mkdir_p(parent, 0755, err);
			if (r < 0)
				return r;
		}
		if (mkdir(path, 0755) < 0)
			return berth_error_set(err, errno, "mkdir `%s`", path);
	}
	*fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		r = berth_error_set(err, errno, "open `%s`", path);
		rmdir(path);
		return r;
	}
	return 0;
}

int berth_cgroup_rmdir_leaf(const struct berth_cgroup *cg, const char *hier,
                            struct berth_cgroup_backoff *b, berth_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/%s/%s", hier, cg->parent, cg->name);

	while (rmdir(path) < 0) {
		if (errno == ENOENT)
			return 0;
		/*
		 * A cgroup stays busy until its last task has finished exiting,
		 * which can trail the parent's waitpid() by a little.
		 */
		if (errno == EBUSY && berth_cgroup_backoff_wait(b))
			continue;
		return berth_error_set(err, errno, "rmdir `%s`", path);
	}
	return 0;
}

/*
 * Send SIGKILL to each process listed in cgroup.procs. Returns how many were
 * listed (those that vanished meanwhile included), or a negative errno.
 */
static int kill_listed(int dirfd, berth_error_t *err)
{
	cleanup_free char *buf = NULL;
	const char *p;
	int count = 0, r;

	r = berth_read_file_at(dirfd, "cgroup.procs", PROCS_MAX, &buf, NULL, err);
	if (r < 0)
		return r;
	for (p = buf; *p != '\0';) {
		uint64_t pid = 0;
		const char *end = parse_u64(p, &pid);

		if (end == NULL || pid == 0 || pid > INT32_MAX || (*end != '\n' && *end != '\0'))
			return berth_error_set_plain(err, EINVAL, "`cgroup.procs` holds `%.*s`",
			                             (int)strcspn(p, "\n"), p);
		if (kill((pid_t)pid, SIGKILL) < 0 && errno != ESRCH)
			return berth_error_set(err, errno, "kill process %" PRIu64, pid);
		count++;
		p = *end == '\n' ? end + 1 : end;
	}
	return count;
}

int berth_cgroup_kill_all(struct berth_cgroup *cg, int procs_dirfd, berth_error_t *err)
{
	cleanup_free char *listed = NULL;
	struct berth_cgroup_backoff b;
	berth_error_t ignored;
	bool frozen;
	int n, r;

	/*
	 * Nothing there (the usual case: the init has exited, and its pid
	 * namespace's end took every process with it): no freeze needed, as
	 * nothing can join an empty cgroup but by a migration from outside.
	 */
	r = berth_read_file_at(procs_dirfd, "cgroup.procs", PROCS_MAX, &listed, NULL, err);
	if (r < 0)
		return r;
	if (listed[0] == '\0')
		return 0;
	/*
	 * Frozen, nothing can fork between the read of cgroup.procs and the
	 * signals, so one round catches every process. The freeze is best
	 * effort: when it fails (a task stuck in the kernel), the rounds below
	 * still catch what forks.
	 */
	frozen = cg->ops->freeze(cg, true, &ignored) == 0;
	n = kill_listed(procs_dirfd, err);
	if (frozen) {
		/* A task frozen by the v1 freezer acts on SIGKILL only once thawed. */
		r = cg->ops->freeze(cg, false, n < 0 ? &ignored : err);
		if (n >= 0 && r < 0)
			return r;
	}
	if (n <= 0)
		return n;
	berth_cgroup_backoff_start(&b, BERTH_CGROUP_BUSY_TIMEOUT_MS);
	for (;;) {
		/* Killed tasks leave cgroup.procs once they have exited. */
		if (!berth_cgroup_backoff_wait(&b))
			return berth_error_set_plain(
			        err, EBUSY, "%d process(es) still in `cgroup.procs` after %d ms", n,
			        BERTH_CGROUP_BUSY_TIMEOUT_MS);
		n = kill_listed(procs_dirfd, err);
		if (n <= 0)
			return n;
	}
}

/* ---- detection --------------------------------------------------------- */

static const char *const v1_probe[] = {"memory", "cpu", "cpuacct", "pids", "freezer", "devices"};

int berth_cgroup_detect(const char *root, enum berth_cgroup_mode *mode, berth_error_t *err)
{
	struct statfs sfs;
	size_t i;

	if (statfs(root, &sfs) < 0)
		return berth_error_set(err, errno, "statfs `%s`", root);
	if (sfs.f_type == CGROUP2_SUPER_MAGIC) {
		*mode = BERTH_CGROUP_V2;
		return 0;
	}
	cleanup_free char *unified = xasprintf("%s/unified", root);
	if (statfs(unified, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) {
		*mode = BERTH_CGROUP_HYBRID;
		return 0;
	}
	/* Whichever controllers are missing are named when a cgroup is created. */
	for (i = 0; i < BERTH_ARRAY_SIZE(v1_probe); i++) {
		cleanup_free char *path = xasprintf("%s/%s", root, v1_probe[i]);
		if (statfs(path, &sfs) == 0 && sfs.f_type == CGROUP_SUPER_MAGIC) {
			*mode = BERTH_CGROUP_V1;
			return 0;
		}
	}
	return berth_error_set_plain(err, ENODEV, "no cgroup filesystem mounted at `%s`", root);
}

const char *berth_cgroup_mode_name(enum berth_cgroup_mode mode)
{
	switch (mode) {
	case BERTH_CGROUP_V1:
		return "v1";
	case BERTH_CGROUP_HYBRID:
		return "hybrid";
	case BERTH_CGROUP_V2:
		return "v2";
	}
	return "unknown";
}

/* ---- the cgroup object ------------------------------------------------- */

static int validate_name(const char *name, berth_error_t *err)
{
	if (name == NULL || *name == '\0')
		return berth_error_set_plain(err, EINVAL, "cgroup name must not be empty");
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return berth_error_set_plain(err, EINVAL, "invalid cgroup name `%s`", name);
	if (strchr(name, '/') != NULL)
		return berth_error_set_plain(err, EINVAL, "invalid cgroup name `%s`: contains `/`",
		                             name);
	if (strlen(name) > NAME_MAX_LEN)
		return berth_error_set_plain(
		        err, EINVAL, "invalid cgroup name `%.32s...`: longer than %d characters",
		        name, NAME_MAX_LEN);
	return 0;
}

static int cgroup_new(const struct berth_cgroup_config *cfg, const char *name,
                      struct berth_cgroup **out, berth_error_t *err)
{
	struct berth_cgroup *cg;
	size_t i;
	int r;

	r = validate_name(name, err);
	if (r < 0)
		return r;
	if (cfg->root == NULL || *cfg->root == '\0' || cfg->parent == NULL || *cfg->parent == '\0')
		return berth_error_set_plain(err, EINVAL, "cgroup root and parent must be set");
	cg = xcalloc(1, sizeof(*cg));
	switch (cfg->mode) {
	case BERTH_CGROUP_V1:
	case BERTH_CGROUP_HYBRID:
		cg->ops = &berth_cgroup_v1_ops;
		break;
	case BERTH_CGROUP_V2:
		cg->ops = &berth_cgroup_v2_ops;
		break;
	default:
		free(cg);
		return berth_error_set_plain(err, EINVAL, "unknown cgroup mode %d", (int)cfg->mode);
	}
	cg->mode = cfg->mode;
	cg->root = xstrdup(cfg->root);
	cg->parent = xstrdup(cfg->parent);
	cg->name = xstrdup(name);
	cg->path = xasprintf("%s/%s", cfg->parent, name);
	cg->dirfd = -1;
	for (i = 0; i < BERTH_CGROUP_V1_N; i++) {
		cg->v1_fd[i] = -1;
		cg->v1_hier[i] = (int)i;
	}
	*out = cg;
	return 0;
}

static void cgroup_freep(struct berth_cgroup **cg)
{
	berth_cgroup_free(*cg);
}
#define cleanup_cgroup __attribute__((cleanup(cgroup_freep)))

int berth_cgroup_apply_limits(struct berth_cgroup *cg, const struct berth_cgroup_limits *limits,
                              berth_error_t *err)
{
	return cg->ops->apply_limits(cg, limits, err);
}

int berth_cgroup_enter(struct berth_cgroup *cg, berth_error_t *err)
{
	int r = cg->ops->enter(cg, err);
	if (r < 0)
		berth_error_wrap(err, "cgroup `%s`: enter", cg->path);
	return r;
}

int berth_cgroup_set_cpu(struct berth_cgroup *cg, uint64_t quota_us, uint64_t period_us,
                         berth_error_t *err)
{
	int r = cg->ops->set_cpu(cg, quota_us, period_us, err);
	if (r < 0)
		berth_error_wrap(err, "cgroup `%s`", berth_cgroup_path(cg));
	return r;
}

int berth_cgroup_create(const struct berth_cgroup_config *cfg, const char *name,
                        const struct berth_cgroup_limits *limits, struct berth_cgroup **out,
                        berth_error_t *err)
{
	static const struct berth_cgroup_limits no_limits;
	cleanup_cgroup struct berth_cgroup *cg = NULL;
	berth_error_t ignored;
	int r;

	r = cgroup_new(cfg, name, &cg, err);
	if (r < 0)
		return r;
	r = cg->ops->create(cg, err);
	if (r == -EEXIST)
		return berth_error_set_plain(err, EEXIST, "cgroup `%s` already exists", cg->path);
	if (r < 0) {
		berth_error_wrap(err, "cgroup `%s`", cg->path);
		return r;
	}
	r = cg->ops->apply_limits(cg, limits != NULL ? limits : &no_limits, err);
	if (r < 0) {
		/*
		 * Nothing has joined the cgroup yet, so the rmdir is neither busy
		 * nor worth reporting over the error that led here.
		 */
		cg->ops->destroy(cg, &ignored);
		berth_error_wrap(err, "cgroup `%s`", cg->path);
		return r;
	}
	*out = steal_pointer(&cg);
	return 0;
}

int berth_cgroup_open(const struct berth_cgroup_config *cfg, const char *name,
                      struct berth_cgroup **out, berth_error_t *err)
{
	cleanup_cgroup struct berth_cgroup *cg = NULL;
	int r;

	r = cgroup_new(cfg, name, &cg, err);
	if (r < 0)
		return r;
	r = cg->ops->open(cg, err);
	if (r == -ENOENT)
		return berth_error_set_plain(err, ENOENT, "cgroup `%s` does not exist", cg->path);
	if (r < 0) {
		berth_error_wrap(err, "cgroup `%s`", cg->path);
		return r;
	}
	*out = steal_pointer(&cg);
	return 0;
}

int berth_cgroup_attach(struct berth_cgroup *cg, pid_t pid, berth_error_t *err)
{
	int r = cg->ops->attach(cg, pid, err);

	if (r < 0)
		berth_error_wrap(err, "cgroup `%s`: attach process %d", cg->path, (int)pid);
	return r;
}

int berth_cgroup_dirfd(const struct berth_cgroup *cg)
{
	return cg->dirfd;
}

int berth_cgroup_freeze(struct berth_cgroup *cg, bool frozen, berth_error_t *err)
{
	int r = cg->ops->freeze(cg, frozen, err);

	if (r < 0)
		berth_error_wrap(err, "cgroup `%s`: %s", cg->path, frozen ? "freeze" : "thaw");
	return r;
}

int berth_cgroup_stats(struct berth_cgroup *cg, struct berth_cgroup_stats *st, berth_error_t *err)
{
	int r;

	memset(st, 0, sizeof(*st));
	r = cg->ops->stats(cg, st, err);
	if (r < 0)
		berth_error_wrap(err, "cgroup `%s`: stats", cg->path);
	return r;
}

int berth_cgroup_oom_kills(struct berth_cgroup *cg, uint64_t *kills, berth_error_t *err)
{
	int r;

	*kills = 0;
	r = cg->ops->oom_kills(cg, kills, err);
	if (r < 0)
		berth_error_wrap(err, "cgroup `%s`", cg->path);
	return r;
}

int berth_cgroup_kill(struct berth_cgroup *cg, berth_error_t *err)
{
	int r = cg->ops->kill(cg, err);

	if (r < 0)
		berth_error_wrap(err, "cgroup `%s`: kill", cg->path);
	return r;
}

int berth_cgroup_destroy(struct berth_cgroup *cg, berth_error_t *err)
{
	int r = cg->ops->destroy(cg, err);

	if (r < 0)
		berth_error_wrap(err, "cgroup `%s`", cg->path);
	return r;
}

/* ---- retired cgroups -------------------------------------------------- */

/*
 * A retired cgroup is named RETIRED_PREFIX NAME "." RANDOM: `~` is not a
 * character of container names, so no live container's cgroup is swept.
 */
#define RETIRED_PREFIX '~'

static int retire_in(struct berth_cgroup *cg, const char *hier, void *arg, berth_error_t *err)
{
	cleanup_free char *from = xasprintf("%s/%s/%s", hier, cg->parent, cg->name);
	cleanup_free char *to = xasprintf("%s/%s/%s", hier, cg->parent, (const char *)arg);

	if (rename(from, to) < 0 && errno != ENOENT)
		return berth_error_set(err, errno, "rename `%s`", from);
	return 0;
}

int berth_cgroup_retire(struct berth_cgroup *cg, berth_error_t *err)
{
	cleanup_free char *to = NULL;
	uint32_t rnd;
	int r;

	/* cgroup2 has no rename (its kernfs operations offer mkdir and rmdir only). */
	if (cg->mode == BERTH_CGROUP_V2)
		return berth_error_set_plain(
		        err, EOPNOTSUPP, "cgroup `%s`: retire: cgroup v2 cannot rename", cg->path);
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		return berth_error_set(err, errno, "cgroup `%s`: retire: getrandom", cg->path);
	to = xasprintf("%c%s.%08x", RETIRED_PREFIX, cg->name, (unsigned)rnd);
	r = cg->ops->each_hierarchy(cg, retire_in, to, err);
	if (r < 0)
		berth_error_wrap(err, "cgroup `%s`: retire", cg->path);
	return r;
}

/* Remove retired cgroup `path`, killing what is left in it first. */
static int remove_retired(const char *path, berth_error_t *err)
{
	struct berth_cgroup_backoff b;
	cleanup_close int fd = -1;
	int r;

	if (rmdir(path) == 0 || errno == ENOENT)
		return 0;
	if (errno != EBUSY)
		return berth_error_set(err, errno, "rmdir `%s`", path);
	/* Nothing should be left (the container's pid namespace took it all); be sure. */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : berth_error_set(err, errno, "open `%s`", path);
	r = kill_listed(fd, err);
	if (r < 0)
		return r;
	berth_cgroup_backoff_start(&b, BERTH_CGROUP_BUSY_TIMEOUT_MS);
	while (rmdir(path) < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == EBUSY && berth_cgroup_backoff_wait(&b))
			continue;
		return berth_error_set(err, errno, "rmdir `%s`", path);
	}
	return 0;
}

static int sweep_in(struct berth_cgroup *cg, const char *hier, void *arg, berth_error_t *err)
{
	cleanup_free char *dir = xasprintf("%s/%s", hier, cg->parent);
	cleanup_closedir DIR *d = opendir(dir);
	int *failed = arg;
	struct dirent *e;

	if (d == NULL)
		return errno == ENOENT ? 0 : berth_error_set(err, errno, "open `%s`", dir);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != RETIRED_PREFIX)
			continue;
		cleanup_free char *path = xasprintf("%s/%s", dir, e->d_name);
		/* The first failure is the one reported; the sweep goes on. */
		if (remove_retired(path, *failed == 0 ? err : NULL) < 0)
			(*failed)++;
	}
	return 0;
}

int berth_cgroup_sweep_retired(const struct berth_cgroup_config *cfg, berth_error_t *err)
{
	cleanup_cgroup struct berth_cgroup *cg = NULL;
	int failed = 0, r;

	/* The name is not used: the object only says where the hierarchies are. */
	r = cgroup_new(cfg, "retired", &cg, err);
	if (r < 0)
		return r;
	r = cg->ops->each_hierarchy(cg, sweep_in, &failed, err);
	if (r == 0 && failed > 0)
		r = berth_error_wrap(err, "%d retired cgroup(s) left", failed);
	return r;
}

const char *berth_cgroup_path(const struct berth_cgroup *cg)
{
	return cg->path;
}

void berth_cgroup_free(struct berth_cgroup *cg)
{
	size_t i;

	if (cg == NULL)
		return;
	if (cg->dirfd >= 0)
		close(cg->dirfd);
	for (i = 0; i < BERTH_CGROUP_V1_N; i++)
		if (cg->v1_fd[i] >= 0)
			close(cg->v1_fd[i]);
	free(cg->root);
	free(cg->parent);
	free(cg->name);
	free(cg->path);
	free(cg);
}
