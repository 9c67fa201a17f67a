/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The zygote: for a multithreaded caller (berthd), which cannot fork
 * itself, one small single-threaded `berth-runtime serve` process, spawned
 * once, that clones each start's and exec's helper, so that the caller no
 * longer execs a fresh berth-runtime every time: from the call to a helper
 * that has read its request, 0.3–0.4 ms here against 0.9 ms
 * (docs/benchmarks.md).
 *
 * A request is one message on a SOCK_SEQPACKET socketpair: a small header,
 * and by SCM_RIGHTS the request's memfd, the report pipe's write end and
 * the stdio given. The zygote clones the helper with CLONE_PARENT, so the
 * helper — and the init or exec'd process that it clones, again with
 * CLONE_PARENT — is the caller's child, exactly as an exec'd helper's
 * would be; the zygote itself never has a child. The helper's first act is
 * a HELPER record with its pid on the request's own report pipe: the
 * answer reaches the thread that asked, which reaps the helper as it reaps
 * an exec'd one. The zygote closes its copies of the descriptors right
 * after the clone, so it holds nothing of any container.
 *
 * A request that comes back with no record at all reached no helper: the
 * zygote is gone, and its queued messages with their descriptors went
 * with it. The caller then runs the exec'd helper; the zygote is reaped
 * and restarted by the next request (unless it died before it ever
 * served one: then the library gives up on it, and says so once).
 *
 * The zygote ends when the caller's end of the socket closes (the caller
 * exited, also leaving its containers for a live restore), or the thread
 * that started it ended (PR_SET_PDEATHSIG); containers never depend on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth/log.h"
#include "berth/runtime.h"
#include "berth/trace.h"
#include "berth/util.h"
#include "runtime-internal.h"

extern char **environ;

/* "bzy1": the header of this version of the protocol. */
#define ZYGOTE_MAGIC 0x31797a62u
/* The memfd, the report pipe, stdin, stdout, stderr. */
#define ZYGOTE_MAX_FDS 5

enum zygote_verb {
	ZYGOTE_START = 1,
	ZYGOTE_EXEC = 2,
};

struct zygote_msg {
	uint32_t magic;
	uint32_t verb;
	uint32_t stdio; /* bit i: stdio[i] follows the memfd and the pipe (else /dev/null) */
};

union zygote_cmsg {
	char buf[CMSG_SPACE(sizeof(int) * ZYGOTE_MAX_FDS)];
	struct cmsghdr align;
};

/* ---- the caller's side ---- */

static struct {
	pthread_mutex_t lock;
	bool enabled; /* berth_runtime_zygote_start() was called, and not given up on; atomic */
	int sock;     /* our end of the socketpair; -1: no zygote runs */
	pid_t pid;
	int pidfd;
	unsigned gen; /* which zygote: bumped by every (re)start */
	bool served;  /* the running one has answered a request */
	uint64_t helpers;
} zy = {.lock = PTHREAD_MUTEX_INITIALIZER, .sock = -1, .pidfd = -1};

/* Under zy.lock. */
static int spawn_zygote(berth_error_t *err)
{
	const char *path = berth_runtime_helper_path();
	char *argv[] = {(char *)"berth-runtime", (char *)"serve", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	cleanup_close int ours = -1;
	cleanup_close int theirs = -1;
	int sv[2], r;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return berth_error_set(err, errno, "create the runtime zygote's socket");
	ours = sv[0];
	/* Above 3, so that the dup2() onto 3 below is never one onto itself. */
	theirs = fcntl(sv[1], F_DUPFD_CLOEXEC, 4);
	close(sv[1]);
	if (theirs < 0)
		return berth_error_set(err, errno, "create the runtime zygote's socket");

	posix_spawn_file_actions_init(&fa);
	/* Its stderr is ours, for what it cannot say on a report pipe. */
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, theirs, 3);
	posix_spawn_file_actions_addclosefrom_np(&fa, 4);
	berth_spawnattr_clean(&attr);
	r = posix_spawn(&pid, path, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r != 0)
		return berth_error_set(err, r, "run the runtime zygote `%s serve`", path);
	/*
	 * Our child, not yet reaped: the pid is its own. Signals and waits
	 * go through the pidfd, which a recycled pid cannot fool.
	 */
	zy.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (zy.pidfd < 0) {
		r = berth_error_set(err, errno, "pidfd_open of the runtime zygote");
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return r;
	}
	zy.sock = steal_fd(&ours);
	zy.pid = pid;
	zy.gen++;
	zy.served = false;
	return 0;
}

/* Under zy.lock: end and reap the running zygote; `how` says what it did. */
static void reap_zygote(bool kill_it, char *how, size_t how_len)
{
	siginfo_t si;
	int r;

	berth_close_keep_errno(steal_fd(&zy.sock));
	if (kill_it)
		syscall(SYS_pidfd_send_signal, zy.pidfd, SIGKILL, NULL, 0);
	memset(&si, 0, sizeof(si));
	do
		r = waitid((idtype_t)P_PIDFD, (id_t)zy.pidfd, &si, WEXITED);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		snprintf(how, how_len, "not waited for: %s", strerror(errno));
	else if (si.si_code == CLD_EXITED)
		snprintf(how, how_len, "exited with status %d", si.si_status);
	else
		snprintf(how, how_len, "killed by signal %d", si.si_status);
	berth_close_keep_errno(steal_fd(&zy.pidfd));
}

int berth_runtime_zygote_start(berth_error_t *err)
{
	int r = 0;

	pthread_mutex_lock(&zy.lock);
	if (zy.sock < 0)
		r = spawn_zygote(err);
	__atomic_store_n(&zy.enabled, r == 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&zy.lock);
	return r;
}

void berth_runtime_zygote_stop(void)
{
	char how[64];

	pthread_mutex_lock(&zy.lock);
	__atomic_store_n(&zy.enabled, false, __ATOMIC_RELAXED);
	/* At EOF it exits, after it has cloned the helpers of what it had received. */
	if (zy.sock >= 0)
		reap_zygote(false, how, sizeof(how));
	pthread_mutex_unlock(&zy.lock);
}

pid_t berth_runtime_zygote_pid(void)
{
	pid_t pid;

	pthread_mutex_lock(&zy.lock);
	pid = zy.sock >= 0 ? zy.pid : 0;
	pthread_mutex_unlock(&zy.lock);
	return pid;
}

uint64_t berth_runtime_zygote_helpers(void)
{
	uint64_t n;

	pthread_mutex_lock(&zy.lock);
	n = zy.helpers;
	pthread_mutex_unlock(&zy.lock);
	return n;
}

/* Under zy.lock: the running zygote is gone (or useless): reap it, say so. */
static void lose_zygote(void)
{
	pid_t pid = zy.pid;
	char how[64];

	reap_zygote(true, how, sizeof(how));
	if (!zy.served) {
		/* One that dies before its first helper would die again: no restarts. */
		__atomic_store_n(&zy.enabled, false, __ATOMIC_RELAXED);
		berth_warn("the runtime zygote (pid %d) %s before it served a request; "
		           "starts and execs spawn the runtime helper from now on",
		           (int)pid, how);
		return;
	}
	berth_warn("the runtime zygote (pid %d) %s; the next start or exec restarts it", (int)pid,
	           how);
}

int berth_zygote_submit(const char *verb, int memfd, int wr, const int stdio[3], unsigned *gen)
{
	struct zygote_msg m = {
	        .magic = ZYGOTE_MAGIC,
	        .verb = strcmp(verb, "start") == 0 ? ZYGOTE_START : ZYGOTE_EXEC,
	};
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	union zygote_cmsg ctl;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf};
	struct cmsghdr *cmsg;
	int fds[ZYGOTE_MAX_FDS];
	size_t n = 0;
	berth_error_t err;
	ssize_t sent;

	fds[n++] = memfd;
	fds[n++] = wr;
	for (int i = 0; i < 3; i++) {
		if (stdio[i] >= 0) {
			fds[n++] = stdio[i];
			m.stdio |= 1u << i;
		}
	}
	memset(&ctl, 0, sizeof(ctl));
	mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
	cmsg = &ctl.align; /* CMSG_FIRSTHDR(&mh), which the compiler cannot see is not NULL */
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cmsg), fds, n * sizeof(int));

	pthread_mutex_lock(&zy.lock);
	if (!zy.enabled)
		goto unavailable;
	if (zy.sock < 0 && spawn_zygote(&err) < 0) {
		__atomic_store_n(&zy.enabled, false, __ATOMIC_RELAXED);
		berth_warn("%s; starts and execs spawn the runtime helper from now on",
		           err.message);
		goto unavailable;
	}
	/*
	 * One message is atomic, so the threads' requests never mix; holding
	 * the lock keeps the socket from being closed (and its number reused)
	 * under a sender, for the few microseconds a send takes.
	 */
	do
		sent = sendmsg(zy.sock, &mh, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	if (sent < 0) {
		/* EPIPE, ECONNRESET: the zygote is gone. Anything else: this request's trouble. */
		if (errno == EPIPE || errno == ECONNRESET || errno == ECONNREFUSED ||
		    errno == ENOTCONN)
			lose_zygote();
		goto unavailable;
	}
	*gen = zy.gen;
	pthread_mutex_unlock(&zy.lock);
	BERTH_TRACE("lib: request sent to the zygote");
	return 0;
unavailable:
	pthread_mutex_unlock(&zy.lock);
	return -ENOTCONN;
}

bool berth_zygote_enabled(void)
{
	/* A hint without the lock: berth_zygote_submit() decides under it. */
	return __atomic_load_n(&zy.enabled, __ATOMIC_RELAXED);
}

void berth_zygote_served(unsigned gen)
{
	pthread_mutex_lock(&zy.lock);
	if (gen == zy.gen)
		zy.served = true;
	zy.helpers++;
	pthread_mutex_unlock(&zy.lock);
}

void berth_zygote_lost(unsigned gen)
{
	pthread_mutex_lock(&zy.lock);
	/* Another thread may have found it gone (and restarted one) first. */
	if (gen == zy.gen && zy.sock >= 0)
		lose_zygote();
	pthread_mutex_unlock(&zy.lock);
}

/* ---- the zygote ---- */

/* Receive one request, clone its helper. Returns 1 at EOF, 0 to go on, -errno. */
static int serve_one(int sock, char *area, size_t area_len)
{
	struct zygote_msg m;
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	union zygote_cmsg ctl;
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl.buf)};
	int fds[ZYGOTE_MAX_FDS], stdio[3] = {-1, -1, -1};
	size_t nfds = 0, want = 2;
	berth_error_t err;
	ssize_t n;
	pid_t pid;

	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (n == 0)
		return 1;
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	BERTH_TRACE("zygote: request received");
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		size_t count;
		int *data;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		data = (int *)(void *)CMSG_DATA(c);
		for (size_t i = 0; i < count; i++) {
			if (nfds < ZYGOTE_MAX_FDS)
				fds[nfds++] = data[i];
			else
				close(data[i]);
		}
	}
	for (int i = 0; i < 3; i++)
		want += (m.stdio >> i) & 1u;
	if ((size_t)n != sizeof(m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
	    m.magic != ZYGOTE_MAGIC || (m.verb != ZYGOTE_START && m.verb != ZYGOTE_EXEC) ||
	    (m.stdio & ~7u) != 0 || nfds != want) {
		if (nfds >= 2) {
			berth_error_set_plain(&err, EPROTO,
			                      "the runtime zygote got a malformed request");
			berth_report_error(fds[1], &err);
		}
		goto out;
	}
	for (int i = 0, k = 2; i < 3; i++)
		if (m.stdio & (1u << i))
			stdio[i] = fds[k++];
	pid = berth_clone_parent(0, -1);
	if (pid < 0) {
		berth_error_set(&err, errno, "clone the runtime helper");
		berth_report_error(fds[1], &err);
	} else if (pid == 0) {
		/* Before anything else: the caller reaps us by this pid, whatever happens next. */
		berth_report_helper(fds[1], getpid());
		BERTH_TRACE("zygote: helper cloned");
		berth_helper_run_child(m.verb == ZYGOTE_START ? "start" : "exec", stdio, fds[0],
		                       fds[1], area, area_len);
	}
out:
	/*
	 * Nothing of a container stays with us. The report pipe last: once the
	 * caller sees its EOF, we hold none of the request's descriptors.
	 */
	for (size_t i = 0; i < nfds; i++)
		if (i != 1)
			close(fds[i]);
	if (nfds > 1)
		close(fds[1]);
	return 0;
}

int berth_zygote_serve(int sock, char *area, size_t area_len)
{
	/*
	 * Terminal signals (Ctrl-C on a berthd in the foreground reaches its
	 * whole process group) are berthd's to act on: its shutdown may still
	 * start or exec. We end with berthd, below.
	 */
	static const int ignored[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGTSTP};
	int type = 0, r;
	socklen_t len = sizeof(type);

	if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
		fprintf(stderr,
		        "berth-runtime serve: descriptor %d must be the runtime library's "
		        "socket\n",
		        sock);
		return 2;
	}
	/* The socket's EOF says the caller is gone too; this says it at once. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(ignored); i++)
		signal(ignored[i], SIG_IGN);
	/*
	 * Hold 0..4, so every descriptor received is above 4, as
	 * berth_helper_run_child() needs; the lowest free number is the one
	 * each open() takes.
	 */
	for (int fd = 0; fd <= BERTH_HELPER_REPORT_FD; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR | O_CLOEXEC) != fd)
			return 1;
	while ((r = serve_one(sock, area, area_len)) == 0)
		;
	if (r < 0) {
		fprintf(stderr, "berth-runtime serve: receive a request: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}
