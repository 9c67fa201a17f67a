/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container's init: PID 1 of its pid namespace, a fork of the helper
 * (no exec, so no binary of ours is ever reachable inside the container).
 *
 * It moves itself into the container's cgroup (v1; on v2 it was cloned into
 * it), builds the container (namespaces, filesystem, hostname, loopback, and
 * eth0 for bridge networking), sets the CPU quota, forks the entrypoint, and
 * then only reaps: every orphan of the container is re-parented to it. It
 * forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to
 * the entrypoint, and when the entrypoint ends it tells the caller how (one
 * line on the status pipe) and exits with the shell's convention (code, or
 * 128+signal); the kernel then kills whatever else still runs in the
 * namespace. With a log
 * directory it also keeps the container's log: the entrypoint's stdout and
 * stderr are pipes it reads, writing records (logwriter.c), so the log goes
 * on when whoever started the container is gone.
 *
 * It drops to the same capabilities, no_new_privs and seccomp filter as the
 * entrypoint, and is not dumpable, so container processes cannot ptrace it or
 * open its /proc files.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <sched.h>
#include <unistd.h>

#include "berth/trace.h"
#include "berth/util.h"
#include "runtime-internal.h"
#include "security.h"

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

__attribute__((noreturn)) static void fail(struct berth_init_args *a, berth_error_t *err)
{
	berth_report_error(a->report_fd, err);
	_exit(125);
}

__attribute__((noreturn)) static void run_entrypoint(struct berth_init_args *a,
                                                     const sigset_t *oldmask, const int out[2],
                                                     const int errs[2])
{
	const struct berth_container_spec *spec = &a->req->spec;
	berth_error_t err;

	/* With a log, stdout and stderr are the pipes the init reads. */
	if (out[1] >= 0 && (dup2(out[1], STDOUT_FILENO) < 0 || dup2(errs[1], STDERR_FILENO) < 0)) {
		berth_error_set(&err, errno, "connect stdout and stderr to the log");
		berth_report_error(a->report_fd, &err);
		_exit(125);
	}

	/*
	 * The helper started with every signal at its default (the library's
	 * posix_spawn attributes) and nobody installed a handler since; only
	 * the mask the init uses for sigwaitinfo() must go.
	 */
	BERTH_TRACE("entrypoint: forked");
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	/* Its own session and process group, like a login: job control works inside. */
	setsid();
	if (chdir(spec->workdir != NULL ? spec->workdir : "/") < 0) {
		berth_error_set(&err, errno, "chdir to workdir `%s`",
		                spec->workdir != NULL ? spec->workdir : "/");
		berth_report_error(a->report_fd, &err);
		_exit(125);
	}
	BERTH_TRACE("entrypoint: exec");
	berth_exec_command(spec->argv, spec->env, spec->uid, spec->gid, NULL, &err);
	berth_report_error(a->report_fd, &err);
	_exit(err.kind == BERTH_ERROR_KIND_EXEC ? (err.code == ENOENT ? 127 : 126) : 125);
}

/* The pipes a logged entrypoint writes to; the init keeps the read ends, non-blocking. */
static int make_log_pipes(int out[2], int errs[2], berth_error_t *err)
{
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errs, O_CLOEXEC) < 0)
		return berth_error_set(err, errno, "create the log pipes");
	if (fcntl(out[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(errs[0], F_SETFL, O_NONBLOCK) < 0)
		return berth_error_set(err, errno, "set up the log pipes");
	return 0;
}

static void record_exit(int fd, int status)
{
	char buf[32];
	int n;

	if (WIFSIGNALED(status))
		n = snprintf(buf, sizeof(buf), "signal %d\n", WTERMSIG(status));
	else
		n = snprintf(buf, sizeof(buf), "exit %d\n", WEXITSTATUS(status));
	/*
	 * A file in the container's directory (outside the container), so that
	 * whoever watches the container later — a caller that was restarted
	 * meanwhile — still learns how it ended. Without it: our exit code.
	 */
	if (write(fd, buf, (size_t)n) < 0)
		return;
}

/* The entrypoint is gone: flush the log, leave word and exit as it did. */
__attribute__((noreturn)) static void finish(struct berth_init_args *a,
                                             struct berth_log_writer *log,
                                             struct berth_log_stream *streams, int status)
{
	BERTH_TRACE("init: reaped");
	if (a->log_dir_fd >= 0) {
		berth_log_finish(log, &streams[0]);
		berth_log_finish(log, &streams[1]);
		berth_log_writer_close(log);
	}
	record_exit(a->status_fd, status);
	_exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
}

void berth_init_main(struct berth_init_args *a)
{
	const struct berth_container_spec *spec = &a->req->spec;
	struct berth_log_writer log = {.dir_fd = -1, .file_fd = -1};
	struct berth_log_stream streams[2] = {{.fd = -1, .name = "stdout"},
	                                      {.fd = -1, .name = "stderr"}};
	int out[2] = {-1, -1}, errs[2] = {-1, -1};
	sigset_t all, old;
	berth_error_t err;
	struct nl_sock *host_nl = NULL;
	const char *hostname;
	uint64_t quota;
	pid_t child;
	int sfd, r;

	/*
	 * Block everything first: signals an init leaves at SIG_DFL are dropped,
	 * blocked ones wait in the queue until sigwaitinfo() below collects them.
	 */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	BERTH_TRACE("init: start");
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_NAME, "berth-init", 0, 0, 0);
	if (a->arg_area != NULL && a->arg_area_len > sizeof("berth-init")) {
		memset(a->arg_area, 0, a->arg_area_len);
		memcpy(a->arg_area, "berth-init", sizeof("berth-init"));
	}
	if (spec->die_with_parent) {
		struct pollfd caller = {.fd = a->caller_fd, .events = POLLIN};

		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		/* Gone before that (see watch_caller()): nobody to run for. */
		if (a->caller_fd >= 0 && poll(&caller, 1, 0) != 0) {
			berth_error_set_plain(&err, ESRCH, "the caller is gone");
			fail(a, &err);
		}
		close(a->caller_fd);
	} else {
		/*
		 * A container that outlives its caller (berthd's) leaves the
		 * caller's session and process group: a Ctrl-C at the terminal
		 * berthd runs in goes to berthd, which stops its containers as
		 * their classes say, not straight to every container's init
		 * (which would pass it on to the entrypoint).
		 */
		setsid();
	}

	if (a->enter_cgroup && berth_cgroup_enter(a->cgroup, &err) < 0)
		fail(a, &err);
	/*
	 * A bridged container's veth has one end on each side: a netlink
	 * socket opened now stays bound to the host's namespace after the
	 * unshare below, and reaches the bridge from inside ours.
	 */
	if (a->lease != NULL && !a->lease->prepared &&
	    (host_nl = berth_bridge_host_socket(&err)) == NULL)
		fail(a, &err);
	/*
	 * Inside our cgroup now, so it becomes the root of the container's
	 * cgroup view. The network namespace is made here rather than by the
	 * clone so that its cost is charged to the container.
	 */
	if (a->netns_fd >= 0) {
		/* A prepared one, lo already up (netpool.c). */
		if (unshare(CLONE_NEWCGROUP) < 0) {
			berth_error_set(&err, errno, "create a cgroup namespace");
			fail(a, &err);
		}
		if (setns(a->netns_fd, CLONE_NEWNET) < 0) {
			berth_error_set(&err, errno, "enter a prepared network namespace");
			fail(a, &err);
		}
		close(a->netns_fd);
	} else {
		if (unshare(CLONE_NEWCGROUP | CLONE_NEWNET) < 0) {
			berth_error_set(&err, errno, "create cgroup and network namespaces");
			fail(a, &err);
		}
		if (spec->net != BERTH_NET_NONE && berth_net_loopback_up(&err) < 0)
			fail(a, &err);
	}
	if (a->lease != NULL && !a->lease->prepared &&
	    berth_bridge_attach(host_nl, a->lease, &err) < 0) {
		berth_error_wrap(&err, "bridge networking");
		fail(a, &err);
	}
	hostname = spec->hostname != NULL ? spec->hostname : spec->id;
	if (sethostname(hostname, strnlen(hostname, 63)) < 0) {
		berth_error_set(&err, errno, "set hostname `%s`", hostname);
		fail(a, &err);
	}
	BERTH_TRACE("init: lo and hostname");
	r = berth_rootfs_setup(a->req, a->dir_fd, &err);
	if (r < 0)
		fail(a, &err);

	/*
	 * The CPU quota goes on only now: with 1/16 vCPU (6.25 ms per 100 ms
	 * period) building the container would otherwise throttle itself for
	 * up to a whole period. quota = vCPUs * period; the kernel's minimum is
	 * 1 ms. The cgroup's descriptors must not reach the entrypoint.
	 */
	quota = spec->limits.nanocpus / 10000;
	if (spec->limits.nanocpus > 0 && quota < 1000)
		quota = 1000;
	r = berth_cgroup_set_cpu(a->cgroup, quota, 0, &err);
	if (r < 0)
		fail(a, &err);
	berth_cgroup_free(a->cgroup);
	a->cgroup = NULL;
	BERTH_TRACE("init: cpu set");

	/*
	 * PID 1 keeps no more privilege than the processes it serves, and the
	 * entrypoint inherits the seccomp filter from it: one filter install
	 * (a BPF JIT compile, half a millisecond) instead of two.
	 */
	r = berth_caps_drop(0, 0, &err);
	BERTH_TRACE("init: caps");
	if (r == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		r = berth_error_set(&err, errno, "set no_new_privs on the init");
	if (r == 0 && (r = berth_seccomp_install(a->seccomp)) < 0)
		berth_error_set(&err, -r, "install the seccomp filter on the init");
	if (r < 0)
		fail(a, &err);
	BERTH_TRACE("init: seccomp");

	if (a->log_dir_fd >= 0) {
		if (berth_log_writer_open(&log, a->log_dir_fd, spec->log_max_bytes,
		                          spec->log_max_files, &err) < 0 ||
		    make_log_pipes(out, errs, &err) < 0)
			fail(a, &err);
		streams[0].fd = out[0];
		streams[1].fd = errs[0];
	}
	/* Signals arrive as reads, beside the log pipes. */
	sfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		berth_error_set(&err, errno, "signalfd");
		fail(a, &err);
	}

	child = fork();
	if (child < 0) {
		berth_error_set(&err, errno, "fork the entrypoint");
		fail(a, &err);
	}
	if (child == 0)
		run_entrypoint(a, &old, out, errs);
	close(a->report_fd);
	if (out[1] >= 0) {
		close(out[1]);
		close(errs[1]);
	}

	for (;;) {
		struct pollfd pfd[3] = {
		        {.fd = sfd, .events = POLLIN},
		        {.fd = streams[0].fd, .events = POLLIN},
		        {.fd = streams[1].fd, .events = POLLIN},
		};
		struct signalfd_siginfo si;

		if (poll(pfd, 3, -1) < 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (pfd[i + 1].revents != 0 && berth_log_pump(&log, &streams[i]) != 0) {
				close(streams[i].fd);
				streams[i].fd = -1;
			}
		}
		while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			int sig = (int)si.ssi_signo;

			if (sig == SIGCHLD) {
				int status;
				pid_t pid;

				while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
					if (pid == child)
						finish(a, &log, streams, status);
				continue;
			}
			for (size_t i = 0; i < BERTH_ARRAY_SIZE(forwarded); i++)
				if (forwarded[i] == sig)
					kill(child, sig);
		}
	}
}
