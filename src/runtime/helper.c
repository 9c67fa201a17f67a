/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime's helper: a single-threaded process that does what must not happen
 * in the (possibly multithreaded) caller: create the container's cgroup and
 * state, clone its init into new namespaces, or join a running container to
 * exec a process in it. See runtime-internal.h for the protocol.
 *
 *   berth-runtime start    fd 3: start request, fd 4: report pipe
 *   berth-runtime exec     fd 3: exec request,  fd 4: report pipe
 *
 * It is `berth-runtime` (helper-main.c), exec'd by the library, a clone of
 * the zygote `berth-runtime serve` (zygote.c, for berthd), or a fork of a
 * caller that is small and single-threaded itself (`berth run`; see
 * berth_runtime_fork_helper()).
 *
 * Both clone with CLONE_PARENT, so the new process is the caller's child,
 * and exit as soon as they have reported its PID.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "berth/trace.h"
#include "berth/fs.h"
#include "berth/util.h"
#include "runtime-internal.h"
#include "security.h"

#define REPORT_FD BERTH_HELPER_REPORT_FD

/* Our argument area, which the init inherits and renames (see berth_init_args). */
static char *arg_area;
static size_t arg_area_len;

pid_t berth_clone_parent(uint64_t flags, int cgroup_fd)
{
	struct clone_args args = {
	        .flags = flags | CLONE_PARENT,
	        /* With CLONE_PARENT the child inherits our exit signal (SIGCHLD). */
	        .exit_signal = 0,
	};

	if (cgroup_fd >= 0) {
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cgroup_fd;
	}
	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

/* The container's /etc/hostname, /etc/hosts and /etc/resolv.conf, in memory. */
static void make_etc_files(struct berth_start_request *req)
{
	const char *hostname = req->spec.hostname != NULL ? req->spec.hostname : req->spec.id;
	cleanup_free char *host_resolv = NULL;
	size_t used = 0;

	req->etc_hostname = xasprintf("%.63s\n", hostname);
	req->etc_hosts =
	        xasprintf("127.0.0.1\tlocalhost %.63s\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	                  hostname);
	/*
	 * The host's resolvers, minus those on loopback: a container's loopback
	 * is its own, and a resolver there would not answer.
	 */
	if (berth_read_file_at(AT_FDCWD, "/etc/resolv.conf", 64 * 1024, &host_resolv, NULL, NULL) <
	    0)
		host_resolv = xstrdup("");
	req->etc_resolv = xcalloc(strlen(host_resolv) + 64, 1);
	for (char *line = strtok(host_resolv, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		const char *ns = "nameserver";
		if (strncmp(line, ns, strlen(ns)) == 0) {
			const char *addr = line + strlen(ns);
			addr += strspn(addr, " \t");
			if (strncmp(addr, "127.", 4) == 0 || strncmp(addr, "::1", 3) == 0)
				continue;
		}
		used += (size_t)sprintf(req->etc_resolv + used, "%s\n", line);
	}
	if (strstr(req->etc_resolv, "nameserver") == NULL)
		sprintf(req->etc_resolv + used, "nameserver 8.8.8.8\n");
}

/*
 * STATE/layers/init-v1 (see runtime-internal.h), made once: built under a
 * temporary name and renamed into place, so a half-made layer is never used.
 */
static int ensure_init_layer(const char *state_dir, const char *path, berth_error_t *err)
{
	static const struct {
		const char *name;
		bool dir;
		mode_t mode;
	} entries[] = {
	        {"proc", true, 0555},
	        {"sys", true, 0555},
	        {"dev", true, 0755},
	        {"etc", true, 0755},
	        {"etc/hostname", false, 0644},
	        {"etc/hosts", false, 0644},
	        {"etc/resolv.conf", false, 0644},
	};
	cleanup_free char *layers = xasprintf("%s/layers", state_dir);
	cleanup_free char *tmp = NULL;
	struct stat st;
	int r;

	if (stat(path, &st) == 0)
		return 0;
	r = berth_mkdir_p(layers, 0700, err);
	if (r < 0)
		return r;
	tmp = xasprintf("%s/.init-XXXXXX", layers);
	if (mkdtemp(tmp) == NULL)
		return berth_error_set(err, errno, "create `%s`", tmp);
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(entries); i++) {
		cleanup_free char *p = xasprintf("%s/%s", tmp, entries[i].name);
		int fd = -1;

		if (entries[i].dir ? mkdir(p, entries[i].mode) < 0
		                   : (fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		                                entries[i].mode)) < 0) {
			r = berth_error_set(err, errno, "create `%s`", p);
			berth_rmtree(tmp, NULL);
			return r;
		}
		berth_close_keep_errno(fd);
	}
	if (chmod(tmp, 0755) < 0 || rename(tmp, path) < 0) {
		/* Another start made it first: use theirs. */
		int saved = errno;
		berth_rmtree(tmp, NULL);
		if (stat(path, &st) == 0)
			return 0;
		return berth_error_set(err, saved, "create `%s`", path);
	}
	return 0;
}

/*
 * The init layer only suits images whose /proc, /dev, /sys and /etc are
 * directories or absent. With layers, the topmost layer that has the name
 * decides (a whiteout is not a directory: no init layer then).
 */
static bool image_takes_init_layer(const struct berth_container_spec *spec)
{
	static const char *const names[] = {"proc", "dev", "sys", "etc"};
	const char *single[] = {spec->rootfs, NULL};
	char *const *lowers = spec->layers != NULL ? spec->layers : (char *const *)single;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(names); i++) {
		for (size_t l = 0; lowers[l] != NULL; l++) {
			cleanup_close int fd = open(lowers[l], O_PATH | O_DIRECTORY | O_CLOEXEC);
			struct stat st;

			if (fd < 0)
				return false;
			if (fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			if (!S_ISDIR(st.st_mode))
				return false;
			break;
		}
	}
	return true;
}

/*
 * Create and lock STATE/containers/ID (the lock is inherited by the init and
 * held for the container's life), the shared mount point and, when the image
 * suits it, the init layer. The writable layer is the init's to make, in
 * parallel with our cgroup work.
 */
static int prepare_state(struct berth_start_request *req, int *dir_fd, bool *created,
                         berth_error_t *err)
{
	const char *dir = req->container_dir;
	const char *state = req->spec.state_dir;
	cleanup_free char *containers = xasprintf("%s/containers", state);
	cleanup_free char *mnt = xasprintf("%s/" BERTH_STATE_MNT, state);
	cleanup_free char *init_layer = xasprintf("%s/" BERTH_STATE_INIT_LAYER, state);
	int r;

	if (mkdir(dir, 0700) < 0) {
		if (errno == ENOENT) {
			r = berth_mkdir_p(containers, 0700, err);
			if (r < 0)
				return r;
			if (mkdir(dir, 0700) < 0 && errno != EEXIST)
				return berth_error_set(err, errno, "mkdir `%s`", dir);
		} else if (errno != EEXIST) {
			return berth_error_set(err, errno, "mkdir `%s`", dir);
		}
	}
	*dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*dir_fd < 0)
		return berth_error_set(err, errno, "open `%s`", dir);
	if (flock(*dir_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return berth_error_set_plain(
			        err, EBUSY, "container `%s` is already running", req->spec.id);
		return berth_error_set(err, errno, "lock `%s`", dir);
	}
	*created = true;
	if (mkdir(mnt, 0700) < 0 && errno != EEXIST)
		return berth_error_set(err, errno, "mkdir `%s`", mnt);
	if (image_takes_init_layer(&req->spec)) {
		r = ensure_init_layer(state, init_layer, err);
		if (r < 0)
			return r;
		req->init_layer = steal_pointer(&init_layer);
	}
	make_etc_files(req);
	return 0;
}

/* Remove a cgroup of this name: we hold the container's lock, so it is a leftover. */
static void remove_stale_cgroup(const struct berth_cgroup_config *cfg, const char *id)
{
	struct berth_cgroup *stale = NULL;

	if (berth_cgroup_open(cfg, id, &stale, NULL) == 0) {
		berth_cgroup_kill(stale, NULL);
		berth_cgroup_destroy(stale, NULL);
		berth_cgroup_free(stale);
	}
}

/* The container's cgroup with every limit but the CPU quota, which waits until it is built. */
static int create_cgroup(const struct berth_cgroup_config *cfg,
                         const struct berth_start_request *req, struct berth_cgroup **cg,
                         berth_error_t *err)
{
	struct berth_cgroup_limits limits = {
	        .memory_bytes = req->spec.limits.memory_bytes,
	        .pids = req->spec.limits.pids,
	};
	int r = berth_cgroup_create(cfg, req->spec.id, &limits, cg, err);

	if (r == -EEXIST) {
		remove_stale_cgroup(cfg, req->spec.id);
		r = berth_cgroup_create(cfg, req->spec.id, &limits, cg, err);
	}
	return r;
}

/*
 * STATE/containers/ID/init.json: what a later caller needs to take the
 * running container over (berth_container_adopt()): the init's pid and
 * start time (which tell it from a process that got its pid later), and the
 * user and environment an exec into it gets; and the overlay's lower
 * directories, which an image prune must keep while the container lives.
 * Written under a temporary name and renamed, so it is whole or absent.
 */
static void write_init_record(int dir_fd, const struct berth_start_request *req, pid_t pid)
{
	unsigned long long start = 0;
	json_t *rec, *lowers = json_array();
	char *text;
	int fd;

	if (berth_proc_start_time(pid, &start) < 0) {
		json_decref(lowers);
		return;
	}
	for (size_t i = 0; req->spec.layers != NULL && req->spec.layers[i] != NULL; i++)
		json_array_append_new(lowers, json_string(req->spec.layers[i]));
	if (req->spec.layers == NULL)
		json_array_append_new(lowers, json_string(req->spec.rootfs));
	rec = json_pack("{s:i, s:I, s:I, s:I, s:O, s:o}", "pid", (int)pid, "start_time",
	                (json_int_t)start, "uid", (json_int_t)req->spec.uid, "gid",
	                (json_int_t)req->spec.gid, "env", json_object_get(req->json, "env"),
	                "lowers", lowers);
	text = json_dumps(rec, JSON_COMPACT);
	json_decref(rec);
	fd = openat(dir_fd, BERTH_CONTAINER_INIT_RECORD ".tmp",
	            O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (text != NULL && fd >= 0 && berth_write_all(fd, text, strlen(text)) == 0)
		renameat(dir_fd, BERTH_CONTAINER_INIT_RECORD ".tmp", dir_fd,
		         BERTH_CONTAINER_INIT_RECORD);
	berth_close_keep_errno(fd);
	free(text);
}

/* The log directory (made if missing), for the init to write in. */
static int open_log_dir(const char *dir, int *fd, berth_error_t *err)
{
	int r = berth_mkdir_p(dir, 0750, err);

	if (r < 0)
		return berth_error_wrap(err, "log directory");
	*fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return berth_error_set(err, errno, "open the log directory `%s`", dir);
	return 0;
}

/*
 * die_with_parent: a caller that dies while we start its container (a
 * SIGKILLed `berth run`) takes us with it, and the init too, which checks
 * *fd, a pidfd of the caller, once its own death signal is set: nothing
 * starts for nobody.
 */
static int watch_caller(pid_t caller, int *fd, berth_error_t *err)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return berth_error_set(err, errno, "PR_SET_PDEATHSIG");
	/* Set only now: a caller gone before that has left us to another parent. */
	if (caller <= 0 || getppid() != caller)
		return berth_error_set_plain(err, ESRCH, "the caller (pid %d) is gone",
		                             (int)caller);
	*fd = (int)syscall(SYS_pidfd_open, caller, 0);
	if (*fd < 0)
		return berth_error_set(err, errno, "open a pidfd of the caller");
	return 0;
}

static int helper_start(berth_error_t *err)
{
	struct berth_start_request req = {0};
	struct berth_cgroup_config cgcfg;
	struct berth_cgroup *cg = NULL;
	cleanup_close int dir_fd = -1;
	cleanup_close int status_fd = -1;
	cleanup_close int log_dir_fd = -1;
	cleanup_close int netns_fd = -1;
	cleanup_close int caller_fd = -1;
	struct berth_bridge_config netcfg;
	struct berth_bridge_lease lease;
	bool created = false, leased = false;
	json_t *json = NULL;
	pid_t pid;
	int r;

	r = berth_request_read(BERTH_HELPER_SPEC_FD, &json, err);
	if (r < 0)
		return r;
	r = berth_start_request_decode(json, &req, err);
	if (r < 0)
		goto out;
	BERTH_TRACE("helper: request read");
	if (req.spec.die_with_parent) {
		r = watch_caller(req.caller, &caller_fd, err);
		if (r < 0)
			goto out;
	}
	berth_runtime_cgroup_config(&cgcfg, err);
	r = berth_cgroup_detect(cgcfg.root, &cgcfg.mode, err);
	if (r < 0)
		goto out;
	r = prepare_state(&req, &dir_fd, &created, err);
	if (r < 0)
		goto out;
	/* Where the init leaves word of the entrypoint's end (see record_exit()). */
	status_fd = openat(dir_fd, BERTH_CONTAINER_EXIT_RECORD,
	                   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (status_fd < 0) {
		r = berth_error_set(err, errno, "create `%s/" BERTH_CONTAINER_EXIT_RECORD "`",
		                    req.container_dir);
		goto out;
	}
	unlinkat(dir_fd, BERTH_CONTAINER_INIT_RECORD, 0);
	if (req.spec.log_dir != NULL) {
		r = open_log_dir(req.spec.log_dir, &log_dir_fd, err);
		if (r < 0)
			goto out;
	}
	if (req.spec.net == BERTH_NET_BRIDGE) {
		r = berth_bridge_config_load(&netcfg, err);
		if (r == 0)
			r = berth_bridge_prepare(&netcfg, req.container_dir, dir_fd, &lease,
			                         &netns_fd, err);
		if (r < 0) {
			berth_error_wrap(err, "bridge networking");
			goto out;
		}
		leased = true;
	}
	BERTH_TRACE("helper: state prepared");
	r = create_cgroup(&cgcfg, &req, &cg, err);
	if (r < 0)
		goto out;
	BERTH_TRACE("helper: cgroup created");
	/* A namespace made ahead saves the init a millisecond (netpool.c). */
	if (req.spec.net != BERTH_NET_NONE && netns_fd < 0)
		netns_fd = berth_netns_pool_take();

	/*
	 * The init is placed in its cgroup without a migration by another
	 * process (which would take the kernel's global cgroup lock and, after
	 * a quiet spell, wait for an RCU grace period): on v2 it is cloned into
	 * it, on v1 it moves itself in first thing (berth_cgroup_enter()).
	 */
	pid = berth_clone_parent(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC,
	                         cgcfg.mode == BERTH_CGROUP_V2 ? berth_cgroup_dirfd(cg) : -1);
	if (pid < 0) {
		r = berth_error_set(err, errno, "clone the container's init");
		goto out;
	}
	if (pid == 0) {
		struct berth_init_args args = {
		        .req = &req,
		        .cgroup = cg,
		        .enter_cgroup = cgcfg.mode != BERTH_CGROUP_V2,
		        .dir_fd = dir_fd,
		        .report_fd = REPORT_FD,
		        .status_fd = status_fd,
		        .log_dir_fd = log_dir_fd,
		        .seccomp = berth_seccomp_default(),
		        .caller_fd = caller_fd,
		        .netns_fd = netns_fd,
		        .lease = leased ? &lease : NULL,
		        .arg_area = arg_area,
		        .arg_area_len = arg_area_len,
		};
		berth_init_main(&args);
	}
	/* From here on the caller owns the container and cleans up after failures. */
	berth_report_pid(REPORT_FD, pid);
	created = false;
	r = 0;
	/* While the init builds the container. */
	write_init_record(dir_fd, &req, pid);
out:
	if (r < 0 && created) {
		if (leased)
			berth_bridge_release(req.container_dir, NULL);
		if (cg != NULL)
			berth_cgroup_destroy(cg, NULL);
		berth_rmtree(req.container_dir, NULL);
	}
	if (cg != NULL)
		berth_cgroup_free(cg);
	if (req.json != NULL)
		berth_start_request_free(&req);
	else
		json_decref(json);
	return r;
}

static int helper_exec(berth_error_t *err)
{
	struct berth_exec_request req = {0};
	struct berth_cgroup_config cgcfg;
	struct berth_cgroup *cg = NULL;
	cleanup_close int pidfd = -1;
	json_t *json = NULL;
	int cgroup_fd = -1;
	pid_t pid;
	int r;

	r = berth_request_read(BERTH_HELPER_SPEC_FD, &json, err);
	if (r < 0)
		return r;
	r = berth_exec_request_decode(json, &req, err);
	if (r < 0)
		goto out;
	BERTH_TRACE("helper: exec request read");
	pidfd = (int)syscall(SYS_pidfd_open, req.init_pid, 0);
	if (pidfd < 0) {
		r = berth_error_set(err, errno == ESRCH ? ESRCH : errno,
		                    "container `%s` is not running", req.id);
		goto out;
	}
	berth_runtime_cgroup_config(&cgcfg, err);
	r = berth_cgroup_detect(cgcfg.root, &cgcfg.mode, err);
	if (r == 0)
		r = berth_cgroup_open(&cgcfg, req.id, &cg, err);
	if (r < 0)
		goto out;
	/* v2 places the child directly; v1 moves us (cheaply), and the child inherits. */
	cgroup_fd = berth_cgroup_dirfd(cg);
	if (cgroup_fd < 0) {
		r = berth_cgroup_enter(cg, err);
		if (r < 0)
			goto out;
	}
	BERTH_TRACE("helper: in the cgroup");
	if (setns(pidfd, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
	                         CLONE_NEWCGROUP) < 0) {
		r = berth_error_set(err, errno, "enter the namespaces of container `%s`", req.id);
		goto out;
	}
	BERTH_TRACE("helper: namespaces entered");
	pid = berth_clone_parent(0, cgroup_fd);
	if (pid < 0) {
		r = berth_error_set(err, errno, "clone into container `%s`", req.id);
		goto out;
	}
	if (pid == 0) {
		const char *wd = req.spec.workdir != NULL ? req.spec.workdir : "/";

		setsid();
		/* A terminal: the new session's controlling one, so that ^C and job control work.
		 */
		if (req.spec.tty && ioctl(0, TIOCSCTTY, 0) < 0) {
			berth_error_set(err, errno,
			                "make the terminal controlling in container `%s`", req.id);
			berth_report_error(REPORT_FD, err);
			_exit(125);
		}
		if (chdir(wd) < 0) {
			berth_error_set(err, errno, "chdir to `%s` in container `%s`", wd, req.id);
			berth_report_error(REPORT_FD, err);
			_exit(125);
		}
		berth_exec_command(req.spec.argv, req.spec.env, req.spec.uid, req.spec.gid,
		                   berth_seccomp_default(), err);
		berth_report_error(REPORT_FD, err);
		_exit(err->kind == BERTH_ERROR_KIND_EXEC ? (err->code == ENOENT ? 127 : 126) : 125);
	}
	berth_report_pid(REPORT_FD, pid);
	BERTH_TRACE("helper: exec child cloned");
	/*
	 * Done. We now live in the container's mount namespace but not in its
	 * pid namespace, where /proc/self names nobody: leave without running
	 * exit handlers (a sanitizer's leak check would walk /proc/self).
	 */
	_exit(0);
out:
	if (cg != NULL)
		berth_cgroup_free(cg);
	if (req.json != NULL)
		berth_exec_request_free(&req);
	else
		json_decref(json);
	return r;
}

int berth_helper_run(const char *verb, char *area, size_t area_len)
{
	berth_error_t err = {0};
	int r;

	/*
	 * Without the report pipe there is nobody to talk to. Both descriptors
	 * arrived through dup2() and must not reach the container's command:
	 * the report pipe's EOF is what tells the caller the command runs.
	 */
	if (fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(BERTH_HELPER_SPEC_FD, F_SETFD, FD_CLOEXEC) < 0) {
		fprintf(stderr, "berth-runtime: descriptors 3 and 4 must be open\n");
		return 2;
	}
	if (strcmp(verb, "start") == 0) {
		arg_area = area;
		arg_area_len = area_len;
		r = helper_start(&err);
		if (r < 0)
			berth_report_error(REPORT_FD, &err);
		return r < 0 ? 1 : 0;
	}
	r = helper_exec(&err);
	if (r < 0)
		berth_report_error(REPORT_FD, &err);
	/* Possibly inside the container's mount namespace: see helper_exec(). */
	_exit(r < 0 ? 1 : 0);
}

void berth_helper_run_child(const char *verb, const int stdio[3], int memfd, int wr, char *area,
                            size_t area_len)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;
	int fd;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Sources are above 4 (or already in place), so no dup2() overwrites one still to move. */
	for (int i = 0; i < 3; i++) {
		fd = stdio[i] >= 0 ? stdio[i] : open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0 || (fd == i ? fcntl(i, F_SETFD, 0) : dup2(fd, i)) < 0)
			_exit(127);
	}
	if (dup2(memfd, BERTH_HELPER_SPEC_FD) < 0 || dup2(wr, BERTH_HELPER_REPORT_FD) < 0)
		_exit(127);
	close_range(BERTH_HELPER_REPORT_FD + 1, ~0U, 0);
	/* Never exit(): our parent's stdio buffers and exit handlers are not ours. */
	_exit(berth_helper_run(verb, area, area_len));
}
