/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime library, caller's side: validate a spec, hand it to the
 * berth-runtime helper, collect its report, and manage the running container
 * through its pidfd, cgroup and network namespace.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth/trace.h"
#include "berth/fs.h"
#include "berth/runtime.h"
#include "berth/util.h"
#include "net.h"
#include "runtime-internal.h"

extern char **environ;

struct berth_container {
	char *id;
	char *dir;
	pid_t pid;
	int pidfd;
	int netns_fd;
	struct berth_cgroup *cg;
	char **env;
	uint32_t uid, gid;
	bool adopted;   /* started by another process: not our child (berth_container_adopt) */
	bool sent_kill; /* we sent SIGKILL, which leaves the init no time for a last word */
	bool exited;
	struct berth_exit exit;
};

static char helper_path[PATH_MAX];
static pthread_once_t helper_once = PTHREAD_ONCE_INIT;

static void find_helper(void)
{
	const char *env = getenv("BERTH_RUNTIME_HELPER");
	char self[PATH_MAX];
	ssize_t n;

	if (env != NULL && *env != '\0') {
		snprintf(helper_path, sizeof(helper_path), "%s", env);
		return;
	}
	/* Next to the running binary (bin/ in the build tree), else the install location. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			if (snprintf(helper_path, sizeof(helper_path), "%s/berth-runtime", self) <
			            (int)sizeof(helper_path) &&
			    access(helper_path, X_OK) == 0)
				return;
		}
	}
	snprintf(helper_path, sizeof(helper_path), "%s/berth-runtime", BERTH_LIBEXECDIR);
}

const char *berth_runtime_helper_path(void)
{
	pthread_once(&helper_once, find_helper);
	return helper_path;
}

/* berth_runtime_fork_helper(): the helper runs in a fork of ours, with our argv area. */
static bool fork_helper;
static char *fork_area;
static size_t fork_area_len;

void berth_runtime_fork_helper(char *arg_area, size_t arg_area_len)
{
	fork_helper = true;
	fork_area = arg_area;
	fork_area_len = arg_area_len;
}

/* Keep our descriptors clear of 0..4, which the helper's file actions assign. */
static int high_fd(int fd)
{
	int r;

	if (fd < 0 || fd > BERTH_HELPER_REPORT_FD)
		return fd;
	r = fcntl(fd, F_DUPFD_CLOEXEC, BERTH_HELPER_REPORT_FD + 1);
	berth_close_keep_errno(fd);
	return r;
}

/* The request in a memfd and the report pipe, all clear of 0..4. */
static int open_channel(json_t *request, int *memfd, int *rd, int *wr, berth_error_t *err)
{
	int fds[2];

	*memfd = high_fd(berth_request_memfd(request, err));
	if (*memfd < 0)
		return *memfd == -1 ? berth_error_set(err, errno, "request descriptor") : *memfd;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return berth_error_set(err, errno, "pipe");
	*rd = high_fd(fds[0]);
	*wr = high_fd(fds[1]);
	if (*rd < 0 || *wr < 0)
		return berth_error_set(err, errno, "pipe");
	return 0;
}

/* What the helper's side said on the report pipe, until EOF. */
struct report {
	pid_t pid;    /* the process it made: the first PID record */
	pid_t helper; /* the helper itself, when the zygote cloned it: the first HELPER record */
	bool got_error;
	berth_error_t error; /* the first ERROR record */
	int r;               /* 0 at EOF, or -errno when the pipe could not be read */
};

static void read_report(int rd, struct report *rep)
{
	struct berth_report rec;

	memset(rep, 0, sizeof(*rep));
	while ((rep->r = berth_report_read(rd, &rec)) > 0) {
		if (rec.type == BERTH_REPORT_PID && rep->pid == 0)
			rep->pid = rec.pid;
		else if (rec.type == BERTH_REPORT_HELPER && rep->helper == 0)
			rep->helper = rec.pid;
		else if (rec.type == BERTH_REPORT_ERROR && !rep->got_error) {
			rep->error = rec.error;
			rep->got_error = true;
		}
	}
	BERTH_TRACE("lib: report EOF");
}

/* Reap the helper; the outcome from what it reported and how it ended. */
static int finish_helper(pid_t helper, const struct report *rep, pid_t *pid, berth_error_t *err)
{
	int status;

	*pid = rep->pid;
	while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
		;
	if (rep->got_error) {
		*err = rep->error;
		return berth_error_ret(err);
	}
	if (rep->r < 0)
		return berth_error_set(err, -rep->r, "read the runtime helper's report");
	if (WIFSIGNALED(status))
		return berth_error_set_plain(err, EIO, "the runtime helper was killed by signal %d",
		                             WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		return berth_error_set_plain(err, EIO,
		                             "the runtime helper `%s` failed with status %d",
		                             berth_runtime_helper_path(), WEXITSTATUS(status));
	if (*pid <= 0)
		return berth_error_set_plain(err, EIO, "the runtime helper reported no process");
	return 0;
}

/*
 * Have the zygote clone the helper (see zygote.c). Returns 1 when there is
 * no zygote, or it went away before it took the request: nothing was done,
 * and the exec'd helper takes over.
 */
static int zygote_helper(const char *verb, json_t *request, const int stdio[3], pid_t *pid,
                         berth_error_t *err)
{
	cleanup_close int memfd = -1;
	cleanup_close int rd = -1;
	cleanup_close int wr = -1;
	struct report rep;
	unsigned gen;
	int r;

	if (!berth_zygote_enabled())
		return 1;
	r = open_channel(request, &memfd, &rd, &wr, err);
	if (r < 0)
		return r;
	BERTH_TRACE("lib: request ready");
	if (berth_zygote_submit(verb, memfd, wr, stdio, &gen) < 0)
		return 1;
	/* The zygote holds its copies now; EOF comes when the helper's side is done. */
	close(steal_fd(&memfd));
	close(steal_fd(&wr));
	read_report(rd, &rep);
	if (rep.helper > 0) {
		berth_zygote_served(gen);
		return finish_helper(rep.helper, &rep, pid, err);
	}
	if (rep.got_error) {
		/* The zygote refused the request itself (it could not clone). */
		*err = rep.error;
		return berth_error_ret(err);
	}
	berth_zygote_lost(gen);
	if (rep.pid > 0) {
		/* Cannot be: a helper announces itself before it does anything. */
		*pid = rep.pid;
		return berth_error_set_plain(err, EIO,
		                             "the runtime helper did not report its own pid");
	}
	return 1;
}

void berth_spawnattr_clean(posix_spawnattr_t *attr)
{
	sigset_t none, all;

	posix_spawnattr_init(attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setsigdefault(attr, &all);
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

/*
 * Run `berth-runtime VERB` with the request and the given stdio — through
 * the zygote when there is one and `zygote` allows, else exec'd (or forked:
 * berth_runtime_fork_helper()) — and read its report until EOF. *pid is the
 * process it created (even when a later step failed, so the caller can
 * clean up), or 0.
 */
static int spawn_helper(const char *verb, json_t *request, const int stdio[3], bool zygote,
                        pid_t *pid, berth_error_t *err)
{
	const char *path = berth_runtime_helper_path();
	char *argv[] = {(char *)"berth-runtime", (char *)verb, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	cleanup_close int memfd = -1;
	cleanup_close int rd = -1;
	cleanup_close int wr = -1;
	struct report rep;
	pid_t helper;
	int r;

	*pid = 0;
	if (zygote && !fork_helper) {
		r = zygote_helper(verb, request, stdio, pid, err);
		if (r <= 0)
			return r;
	}
	r = open_channel(request, &memfd, &rd, &wr, err);
	if (r < 0)
		return r;
	if (fork_helper) {
		helper = fork();
		if (helper < 0)
			return berth_error_set(err, errno, "fork the runtime helper");
		if (helper == 0)
			berth_helper_run_child(verb, stdio, memfd, wr, fork_area, fork_area_len);
		goto spawned;
	}
	posix_spawn_file_actions_init(&fa);
	for (int i = 0; i < 3; i++) {
		if (stdio[i] >= 0)
			posix_spawn_file_actions_adddup2(&fa, stdio[i], i);
		else
			posix_spawn_file_actions_addopen(&fa, i, "/dev/null", O_RDWR, 0);
	}
	posix_spawn_file_actions_adddup2(&fa, memfd, BERTH_HELPER_SPEC_FD);
	posix_spawn_file_actions_adddup2(&fa, wr, BERTH_HELPER_REPORT_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, BERTH_HELPER_REPORT_FD + 1);
	/* The container starts from a clean slate, whatever our signal state. */
	berth_spawnattr_clean(&attr);
	r = posix_spawn(&helper, path, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r != 0)
		return berth_error_set(err, r, "run the runtime helper `%s`", path);
spawned:
	close(steal_fd(&wr));
	read_report(rd, &rep);
	return finish_helper(helper, &rep, pid, err);
}

static int pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int berth_proc_start_time(pid_t pid, unsigned long long *out)
{
	char path[64], buf[1024];
	cleanup_close int fd = -1;
	const char *p;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	/* After the command, which may hold anything, ")": field 3 onwards. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -EIO;
	for (int field = 2; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (p == NULL)
			return -EIO;
	}
	if (sscanf(p + 1, "%llu", out) != 1)
		return -EIO;
	return 0;
}

/* PATH, HOSTNAME and HOME as Docker sets them, unless the spec gives them. */
static char **complete_env(const struct berth_container_spec *spec, const char *hostname)
{
	size_t n = berth_strv_len(spec->env), used = 0;
	char **env = xcalloc(n + 4, sizeof(char *));
	bool path = false, host = false, home = false;

	for (size_t i = 0; i < n; i++) {
		path |= strncmp(spec->env[i], "PATH=", 5) == 0;
		host |= strncmp(spec->env[i], "HOSTNAME=", 9) == 0;
		home |= strncmp(spec->env[i], "HOME=", 5) == 0;
		env[used++] = xstrdup(spec->env[i]);
	}
	if (!path)
		env[used++] = xstrdup(
		        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!host)
		env[used++] = xasprintf("HOSTNAME=%.63s", hostname);
	if (!home)
		env[used++] = xstrdup(spec->uid == 0 ? "HOME=/root" : "HOME=/");
	return env;
}

static int check_overlay_path(const char *what, const char *path, berth_error_t *err)
{
	/* overlayfs takes its directories in one option string. */
	if (strpbrk(path, ",:\\") != NULL)
		return berth_error_set_plain(
		        err, EINVAL,
		        "%s `%s` contains `,`, `:` or `\\`, which overlayfs cannot "
		        "take",
		        what, path);
	return 0;
}

/* An existing directory, by its real path, that overlayfs can take. */
static int lower_dir(const char *what, const char *path, char **out, berth_error_t *err)
{
	char buf[PATH_MAX];
	struct stat st;

	if (stat(path, &st) < 0)
		return berth_error_set(err, errno, "%s `%s`", what, path);
	if (!S_ISDIR(st.st_mode))
		return berth_error_set_plain(err, ENOTDIR, "%s `%s` is not a directory", what,
		                             path);
	if (realpath(path, buf) == NULL)
		return berth_error_set(err, errno, "%s `%s`", what, path);
	*out = xstrdup(buf);
	return check_overlay_path(what, *out, err);
}

static int validate(const struct berth_container_spec *spec, char **rootfs, char ***layers,
                    char **state_dir, berth_error_t *err)
{
	char buf[PATH_MAX];
	int r;

	if (!berth_container_id_valid(spec->id))
		return berth_error_set_plain(
		        err, EINVAL,
		        "`%s` is not a valid container name (use letters, digits, "
		        "`_`, `.`, `-`; at most 128)",
		        spec->id != NULL ? spec->id : "");
	if (spec->argv == NULL || spec->argv[0] == NULL || spec->argv[0][0] == '\0')
		return berth_error_set_plain(err, EINVAL, "no command given");
	if (spec->layers != NULL) {
		size_t n = berth_strv_len(spec->layers);
		if (n == 0)
			return berth_error_set_plain(err, EINVAL, "an image without layers");
		*layers = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++) {
			r = lower_dir("image layer", spec->layers[i], &(*layers)[i], err);
			if (r < 0)
				return r;
		}
	} else {
		if (spec->rootfs == NULL)
			return berth_error_set_plain(err, EINVAL, "no rootfs given");
		r = lower_dir("rootfs", spec->rootfs, rootfs, err);
		if (r < 0)
			return r;
	}
	r = berth_mkdir_p(spec->state_dir, 0711, err);
	if (r < 0)
		return berth_error_wrap(err, "state directory");
	if (realpath(spec->state_dir, buf) == NULL)
		return berth_error_set(err, errno, "state directory `%s`", spec->state_dir);
	*state_dir = xstrdup(buf);
	r = check_overlay_path("state directory", *state_dir, err);
	if (r < 0)
		return r;
	if (spec->workdir != NULL && spec->workdir[0] != '/')
		return berth_error_set_plain(err, EINVAL, "workdir `%s` is not an absolute path",
		                             spec->workdir);
	if (spec->hostname != NULL && (spec->hostname[0] == '\0' || strlen(spec->hostname) > 63))
		return berth_error_set_plain(err, EINVAL, "hostname must have 1 to 63 characters");
	if (spec->limits.memory_bytes != 0 && spec->limits.memory_bytes < 6ull * 1024 * 1024)
		return berth_error_set_plain(err, EINVAL, "memory limit must be at least 6M");
	if (spec->limits.nanocpus != 0 && spec->limits.nanocpus < 10000000ull)
		return berth_error_set_plain(err, EINVAL, "cpus must be at least 0.01");
	return 0;
}

/* The runtime's cgroup configuration, with the layout this host has. */
static int detected_cgroup_config(struct berth_cgroup_config *cfg, berth_error_t *err)
{
	berth_runtime_cgroup_config(cfg, err);
	return berth_cgroup_detect(cfg->root, &cfg->mode, err);
}

static int open_cgroup(const char *id, struct berth_cgroup **cg, berth_error_t *err)
{
	struct berth_cgroup_config cfg;
	int r = detected_cgroup_config(&cfg, err);

	return r < 0 ? r : berth_cgroup_open(&cfg, id, cg, err);
}

/*
 * Remove a dead container's directory and give back its network address,
 * unless a new container of the same name has taken it (and its lock) since.
 */
/*
 * Move container directory `dir` (STATE/containers/ID) to STATE/trash/ID.RANDOM.
 * Returns false when it could not be moved (the caller removes it in place).
 */
static bool move_to_trash(const char *dir)
{
	cleanup_free char *state = xstrdup(dir);
	cleanup_free char *trash = NULL;
	cleanup_free char *to = NULL;
	const char *id = strrchr(dir, '/');
	char *slash;
	unsigned int rnd;

	slash = strrchr(state, '/');
	if (id == NULL || slash == NULL)
		return false;
	*slash = '\0';
	slash = strrchr(state, '/'); /* STATE/containers */
	if (slash == NULL)
		return false;
	*slash = '\0';
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return false;
	trash = xasprintf("%s/" BERTH_STATE_TRASH, state);
	to = xasprintf("%s%s.%08x", trash, id, rnd);
	if (rename(dir, to) == 0)
		return true;
	if (errno != ENOENT || mkdir(trash, 0700) < 0)
		return false;
	return rename(dir, to) == 0;
}

static int remove_layers(const char *dir, bool defer, berth_error_t *err)
{
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	berth_error_t nerr;
	int r = 0, rn;

	if (fd < 0)
		return errno == ENOENT ? 0 : berth_error_set(err, errno, "open `%s`", dir);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? 0 : berth_error_set(err, errno, "lock `%s`", dir);
	/* Under the lock: the record is this container's, not a successor's. */
	rn = berth_bridge_release(dir, &nerr);
	if (!defer || !move_to_trash(dir)) {
		r = berth_rmtree_at(fd, BERTH_CONTAINER_UPPER, err);
		if (r == 0)
			r = berth_rmtree_at(fd, BERTH_CONTAINER_WORK, err);
		unlinkat(fd, BERTH_CONTAINER_EXIT_RECORD, 0);
		unlinkat(fd, BERTH_CONTAINER_INIT_RECORD, 0);
		unlinkat(fd, BERTH_CONTAINER_INIT_RECORD ".tmp", 0);
		unlinkat(fd, BERTH_CONTAINER_NET_RECORD, 0);
		if (r == 0 && rmdir(dir) < 0 && errno != ENOENT)
			r = berth_error_set(err, errno, "remove `%s`", dir);
	}
	if (r == 0 && rn < 0) {
		if (err != NULL)
			*err = nerr;
		r = rn;
	}
	return r;
}

int berth_runtime_sweep_cgroups(berth_error_t *err)
{
	struct berth_cgroup_config cfg;
	int r = detected_cgroup_config(&cfg, err);

	return r < 0 ? r : berth_cgroup_sweep_retired(&cfg, err);
}

int berth_runtime_sweep(const char *state_dir, berth_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/" BERTH_STATE_TRASH, state_dir);
	struct dirent *de;
	DIR *dir;
	int r = 0;

	dir = opendir(path);
	if (dir == NULL)
		return errno == ENOENT ? 0 : berth_error_set(err, errno, "open `%s`", path);
	while ((de = readdir(dir)) != NULL) {
		cleanup_close int fd = -1;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		/* Another sweeper has this one. */
		fd = openat(dirfd(dir), de->d_name,
		            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
			continue;
		if (berth_rmtree_at(dirfd(dir), de->d_name, r < 0 ? NULL : err) < 0 && r == 0)
			r = berth_error_wrap(err, "clean up `%s`", path);
	}
	closedir(dir);
	return r;
}

/* After a start failed past the clone: the init is ours to kill and reap. */
static void undo_start(pid_t pid, const char *id, const char *dir)
{
	struct berth_cgroup *cg = NULL;

	if (pid > 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (open_cgroup(id, &cg, NULL) == 0) {
		berth_cgroup_kill(cg, NULL);
		berth_cgroup_destroy(cg, NULL);
		berth_cgroup_free(cg);
	}
	remove_layers(dir, false, NULL);
}

int berth_container_start(const struct berth_container_spec *spec, struct berth_container **out,
                          berth_error_t *err)
{
	cleanup_free char *rootfs = NULL;
	cleanup_free char *state_dir = NULL;
	cleanup_strv char **layers = NULL;
	cleanup_strv char **env = NULL;
	struct berth_container_spec s;
	struct berth_container *c;
	json_t *request;
	pid_t pid;
	int r;

	*out = NULL;
	r = validate(spec, &rootfs, &layers, &state_dir, err);
	if (r < 0)
		return r;
	s = *spec;
	s.rootfs = rootfs;
	s.layers = layers;
	s.state_dir = state_dir;
	env = complete_env(spec, spec->hostname != NULL ? spec->hostname : spec->id);
	s.env = env;

	request = berth_start_request_encode(&s);
	/*
	 * Through the zygote the init's parent would be the thread that started
	 * the zygote, not ours, and die_with_parent's PR_SET_PDEATHSIG fires
	 * when the parent *thread* ends: the exec'd helper keeps it ours.
	 */
	r = spawn_helper("start", request, spec->stdio, !spec->die_with_parent, &pid, err);
	json_decref(request);
	if (r < 0) {
		if (pid > 0) {
			cleanup_free char *dir = xasprintf("%s/containers/%s", state_dir, spec->id);
			undo_start(pid, spec->id, dir);
		}
		return r;
	}

	BERTH_TRACE("lib: helper done");
	c = xcalloc(1, sizeof(*c));
	c->pidfd = c->netns_fd = -1;
	c->id = xstrdup(spec->id);
	c->dir = xasprintf("%s/containers/%s", state_dir, spec->id);
	c->pid = pid;
	c->env = steal_pointer(&env);
	c->uid = spec->uid;
	c->gid = spec->gid;
	/* The init is our child and not yet reaped: its pid cannot have been reused. */
	c->pidfd = pidfd_open(pid);
	if (c->pidfd < 0) {
		r = berth_error_set(err, errno, "pidfd_open");
		undo_start(pid, spec->id, c->dir);
		berth_container_destroy(c, NULL);
		return r;
	}
	{
		char ns[64];
		snprintf(ns, sizeof(ns), "/proc/%d/ns/net", pid);
		/* Fails only when the command has already exited; connect() then says so. */
		c->netns_fd = open(ns, O_RDONLY | O_CLOEXEC);
	}
	r = open_cgroup(c->id, &c->cg, err);
	if (r < 0) {
		berth_error_wrap(err, "container `%s`", c->id);
		berth_container_destroy(c, NULL);
		return r;
	}
	BERTH_TRACE("lib: started");
	*out = c;
	return 0;
}

pid_t berth_container_pid(const struct berth_container *c)
{
	return c->pid;
}

int berth_container_pidfd(const struct berth_container *c)
{
	return c->pidfd;
}

const char *berth_container_id(const struct berth_container *c)
{
	return c->id;
}

char *const *berth_container_env(const struct berth_container *c)
{
	return c->env;
}

void berth_container_user(const struct berth_container *c, uint32_t *uid, uint32_t *gid)
{
	*uid = c->uid;
	*gid = c->gid;
}

int berth_container_signal(struct berth_container *c, int sig, berth_error_t *err)
{
	if (c->exited)
		return berth_error_set_plain(err, ESRCH, "container `%s` is not running", c->id);
	if (sig == SIGKILL)
		c->sent_kill = true;
	if (syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0) < 0)
		return berth_error_set(err, errno, "signal container `%s`", c->id);
	return 0;
}

int berth_container_freeze(struct berth_container *c, bool frozen, berth_error_t *err)
{
	int r = berth_cgroup_freeze(c->cg, frozen, err);
	if (r < 0)
		return berth_error_wrap(err, "%s container `%s`", frozen ? "freeze" : "thaw",
		                        c->id);
	return 0;
}

int berth_container_stats(struct berth_container *c, struct berth_stats *st, berth_error_t *err)
{
	struct berth_cgroup_stats cs;
	int r = berth_cgroup_stats(c->cg, &cs, err);

	if (r < 0)
		return berth_error_wrap(err, "stats of container `%s`", c->id);
	st->memory_current = cs.memory_current;
	st->memory_peak = cs.memory_peak;
	st->cpu_usage_ns = cs.cpu_usage_ns;
	st->pids_current = cs.pids_current;
	st->oom_kills = cs.oom_kills;
	return 0;
}

/* What the init said about the entrypoint's end; false when it said nothing. */
static bool read_status(const struct berth_container *c, struct berth_exit *ex)
{
	cleanup_free char *path = xasprintf("%s/" BERTH_CONTAINER_EXIT_RECORD, c->dir);
	cleanup_free char *text = NULL;
	int n;

	/* The init wrote before it exited, so the word is complete. */
	if (berth_read_file_at(AT_FDCWD, path, 64, &text, NULL, NULL) < 0)
		return false;
	if (sscanf(text, "exit %d", &n) == 1 && n >= 0 && n <= 255) {
		ex->exit_code = n;
		ex->signal = 0;
		return true;
	}
	if (sscanf(text, "signal %d", &n) == 1 && n > 0 && n < 128) {
		ex->exit_code = 128 + n;
		ex->signal = n;
		return true;
	}
	return false;
}

/* The init of an adopted container ended: what its file says, or what we know. */
static void ended_unseen(struct berth_container *c)
{
	uint64_t kills = 0;

	c->exited = true;
	if (!read_status(c, &c->exit)) {
		if (c->sent_kill) {
			c->exit.signal = SIGKILL;
			c->exit.exit_code = 128 + SIGKILL;
		} else {
			c->exit.unknown = true;
			c->exit.exit_code = 255;
		}
	}
	if (c->cg != NULL && berth_cgroup_oom_kills(c->cg, &kills, NULL) == 0)
		c->exit.oom = kills > 0;
}

int berth_container_wait(struct berth_container *c, bool nohang, struct berth_exit *ex,
                         berth_error_t *err)
{
	siginfo_t si;
	uint64_t kills = 0;

	if (!c->exited && c->adopted) {
		/* Not our child: its pidfd says when it ended, its file how. */
		struct pollfd p = {.fd = c->pidfd, .events = POLLIN};
		int n;

		do
			n = poll(&p, 1, nohang ? 0 : -1);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return berth_error_set(err, errno, "wait for container `%s`", c->id);
		if (n == 0)
			return -EAGAIN;
		ended_unseen(c);
	} else if (!c->exited) {
		int r;
		memset(&si, 0, sizeof(si));
		do
			r = waitid((idtype_t)P_PIDFD, (id_t)c->pidfd, &si,
			           WEXITED | (nohang ? WNOHANG : 0));
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return berth_error_set(err, errno, "wait for container `%s`", c->id);
		if (si.si_pid == 0)
			return -EAGAIN;
		c->exited = true;
		if (!read_status(c, &c->exit)) {
			/* The init itself ended without a word: killed, or failed before. */
			if (si.si_code == CLD_EXITED) {
				c->exit.exit_code = si.si_status;
				c->exit.signal = 0;
			} else {
				c->exit.signal = si.si_status;
				c->exit.exit_code = 128 + si.si_status;
			}
		}
		if (c->cg != NULL && berth_cgroup_oom_kills(c->cg, &kills, NULL) == 0)
			c->exit.oom = kills > 0;
	}
	if (ex != NULL)
		*ex = c->exit;
	return 0;
}

const struct berth_exit *berth_container_exit(const struct berth_container *c)
{
	return c->exited ? &c->exit : NULL;
}

int berth_container_exec(struct berth_container *c, const struct berth_exec_spec *spec, pid_t *pid,
                         int *pidfd, berth_error_t *err)
{
	json_t *request;
	pid_t child;
	int r;

	if (c->exited)
		return berth_error_set_plain(err, ESRCH, "container `%s` is not running", c->id);
	if (spec->argv == NULL || spec->argv[0] == NULL || spec->argv[0][0] == '\0')
		return berth_error_set_plain(err, EINVAL, "no command given");
	if (spec->workdir != NULL && spec->workdir[0] != '/')
		return berth_error_set_plain(err, EINVAL, "workdir `%s` is not an absolute path",
		                             spec->workdir);
	request = berth_exec_request_encode(c->pid, c->id, spec, c->env, c->uid, c->gid);
	r = spawn_helper("exec", request, spec->stdio, true, &child, err);
	json_decref(request);
	if (r < 0) {
		if (child > 0)
			while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
				;
		return r;
	}
	*pid = child;
	if (pidfd != NULL) {
		*pidfd = pidfd_open(child);
		if (*pidfd < 0)
			return berth_error_set(err, errno, "pidfd_open");
	}
	return 0;
}

int berth_container_connect(struct berth_container *c, uint16_t port, berth_error_t *err)
{
	if (c->exited || c->netns_fd < 0)
		return berth_error_set_plain(err, ESRCH, "container `%s` is not running", c->id);
	return berth_net_connect_in(c->netns_fd, port, err);
}

struct cgroup_removal {
	struct berth_cgroup *cg;
	berth_error_t err;
	int r;
};

static void *remove_cgroup(void *arg)
{
	struct cgroup_removal *cr = arg;

	/* Processes exec'd into the container die with its pid namespace; be sure. */
	berth_cgroup_kill(cr->cg, NULL);
	cr->r = berth_cgroup_destroy(cr->cg, &cr->err);
	berth_cgroup_free(cr->cg);
	return NULL;
}

static int destroy(struct berth_container *c, bool defer, bool retire, berth_error_t *err)
{
	struct cgroup_removal cr = {.cg = NULL};
	bool threaded = false;
	pthread_t thread;
	int r;

	if (c == NULL)
		return 0;
	if (!c->exited && c->pidfd >= 0) {
		syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0);
		c->sent_kill = true;
		berth_container_wait(c, false, NULL, NULL);
	}
	BERTH_TRACE("lib: destroy: reaped");
	/*
	 * Retired: the cgroup is renamed out of the way, for
	 * berth_runtime_sweep_cgroups() to remove (its rmdirs and the check for
	 * processes left are a good part of a destroy).
	 */
	if (retire && c->cg != NULL && berth_cgroup_retire(c->cg, NULL) == 0) {
		berth_cgroup_free(c->cg);
		c->cg = NULL;
	}
	/*
	 * The cgroup and the writable layer go away independently, and each
	 * takes about a millisecond of filesystem work: remove them at once.
	 */
	if (c->cg != NULL) {
		cr.cg = steal_pointer(&c->cg);
		threaded = pthread_create(&thread, NULL, remove_cgroup, &cr) == 0;
		if (!threaded)
			remove_cgroup(&cr);
	}
	r = remove_layers(c->dir, defer, err);
	if (threaded)
		pthread_join(thread, NULL);
	BERTH_TRACE("lib: destroy: removed");
	if (cr.r < 0 && r == 0) {
		if (err != NULL)
			*err = cr.err;
		r = cr.r;
	}
	berth_container_release(c);
	return r;
}

int berth_container_destroy(struct berth_container *c, berth_error_t *err)
{
	return destroy(c, false, false, err);
}

int berth_container_destroy_deferred(struct berth_container *c, berth_error_t *err)
{
	return destroy(c, true, false, err);
}

int berth_container_destroy_detached(struct berth_container *c, berth_error_t *err)
{
	return destroy(c, true, true, err);
}

void berth_container_release(struct berth_container *c)
{
	if (c == NULL)
		return;
	berth_close_keep_errno(c->pidfd);
	berth_close_keep_errno(c->netns_fd);
	if (c->cg != NULL)
		berth_cgroup_free(c->cg);
	berth_strv_free(c->env);
	free(c->id);
	free(c->dir);
	free(c);
}

/* init.json (see runtime-internal.h) into the handle; -ENOENT when there is none. */
static int read_init_record(struct berth_container *c, pid_t *pid, unsigned long long *start,
                            berth_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/" BERTH_CONTAINER_INIT_RECORD, c->dir);
	cleanup_free char *text = NULL;
	json_t *rec, *env;
	json_int_t p = 0, st = 0, uid = 0, gid = 0;
	size_t i;
	json_t *v;
	int r;

	r = berth_read_file_at(AT_FDCWD, path, 4u * 1024 * 1024, &text, NULL, err);
	if (r < 0)
		return r;
	rec = json_loads(text, 0, NULL);
	if (rec == NULL ||
	    json_unpack(rec, "{s:I, s:I, s:I, s:I, s:o}", "pid", &p, "start_time", &st, "uid", &uid,
	                "gid", &gid, "env", &env) < 0 ||
	    p <= 0 || !json_is_array(env)) {
		json_decref(rec);
		return berth_error_set_plain(err, EIO, "`%s` is damaged", path);
	}
	*pid = (pid_t)p;
	*start = (unsigned long long)st;
	c->uid = (uint32_t)uid;
	c->gid = (uint32_t)gid;
	c->env = xcalloc(json_array_size(env) + 1, sizeof(char *));
	json_array_foreach (env, i, v)
		c->env[i] = xstrdup(json_is_string(v) ? json_string_value(v) : "");
	json_decref(rec);
	return 0;
}

int berth_container_adopt(const char *state_dir, const char *id, struct berth_container **out,
                          berth_error_t *err)
{
	struct berth_container *c;
	unsigned long long start = 0, now = 0;
	struct stat st;
	pid_t pid = 0;
	int r;

	*out = NULL;
	if (!berth_container_id_valid(id))
		return berth_error_set_plain(err, EINVAL, "`%s` is not a valid container name",
		                             id != NULL ? id : "");
	c = xcalloc(1, sizeof(*c));
	c->pidfd = c->netns_fd = -1;
	c->id = xstrdup(id);
	c->dir = xasprintf("%s/containers/%s", state_dir, id);
	c->adopted = true;
	if (stat(c->dir, &st) < 0) {
		r = berth_error_set(err, errno, "container `%s`", id);
		berth_container_release(c);
		return r;
	}
	/* Its cgroup, if still there: the OOM count, and what remains to kill and remove. */
	if (open_cgroup(id, &c->cg, NULL) < 0)
		c->cg = NULL;
	r = read_init_record(c, &pid, &start, NULL);
	if (r == 0) {
		/* The pidfd first: then the pid cannot change hands under the check. */
		c->pidfd = pidfd_open(pid);
		if (c->pidfd >= 0 && (berth_proc_start_time(pid, &now) < 0 || now != start)) {
			close(c->pidfd);
			c->pidfd = -1;
		}
	}
	if (c->pidfd < 0) {
		/* It ended while nobody watched (or never got going). */
		ended_unseen(c);
		*out = c;
		return 0;
	}
	c->pid = pid;
	{
		char ns[64];
		snprintf(ns, sizeof(ns), "/proc/%d/ns/net", pid);
		c->netns_fd = open(ns, O_RDONLY | O_CLOEXEC);
	}
	*out = c;
	return 0;
}
