/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A process in a container, watched from the loop. It is started with
 * berth_container_exec() on the thread pool (spawning the helper takes a
 * few milliseconds) and is then berthd's child, in a session of its own.
 * Its stdout and stderr are pipes; its stdin is one end of a socket pair,
 * so that the same descriptor carries the input given to it one way and a
 * session's state back the other (session.c). Its end is seen on a pidfd;
 * what is still in the pipes then is read at once, so `exited` comes after
 * every byte the process wrote, and without waiting for children of it
 * that still hold the pipes. A kill takes its whole tree: the process
 * group and every descendant, found through /proc; the zombie is reaped
 * only after that, so its pid cannot be reused meanwhile.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth/log.h"
#include "berth/runtime.h"
#include "berth/trace.h"
#include "berth/util.h"
#include "sandbox/sandbox-internal.h"

#define STATE_MAX  (1u << 20)
#define READ_CHUNK (64u * 1024)

enum { OUT, ERR, SOCK, N_PIPES };

struct proc {
	struct sbx_proc pub;
	struct berthd *d;
	struct berthd_lease *lease;
	struct berth_container *ctr;
	const struct sbx_proc_ops *ops;
	/* the exec job */
	uv_work_t work;
	char **argv, **env;
	char *cwd;
	int child_fd[3];
	int result;
	berth_error_t err;
	int pidfd;
	/* on the loop */
	uv_pipe_t pipe[N_PIPES];
	bool pipe_open[N_PIPES], reading[N_PIPES], eof[N_PIPES];
	uv_poll_t exit_poll;
	bool poll_open;
	uv_timer_t timer;
	bool timer_open;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	char *stdin_data;
	size_t stdin_len;
	uint64_t timeout_ms;
	bool tty;
	bool paused, exited, released;
	bool exit_seen;      /* the pidfd said so, the reap waits for a kill in flight */
	bool kill_requested; /* before it ran */
	int kills;           /* kill jobs in flight */
	int pending;         /* close callbacks and jobs still to come */
};

static void maybe_free(struct proc *p)
{
	if (!p->released || p->pending > 0 || p->poll_open || p->timer_open)
		return;
	for (int i = 0; i < N_PIPES; i++)
		if (p->pipe_open[i])
			return;
	if (p->pub.prev != NULL)
		p->pub.prev->next = p->pub.next;
	else
		p->d->sandbox->procs = p->pub.next;
	if (p->pub.next != NULL)
		p->pub.next->prev = p->pub.prev;
	p->d->sandbox->n_procs--;
	berth_close_keep_errno(p->pidfd);
	berth_strv_free(p->argv);
	berth_strv_free(p->env);
	free(p->cwd);
	free(p->stdin_data);
	free(p->pub.state);
	free(p);
}

static void on_closed(uv_handle_t *h)
{
	struct proc *p = h->data;

	p->pending--;
	maybe_free(p);
}

static void close_handle(struct proc *p, uv_handle_t *h, bool *open)
{
	if (!*open)
		return;
	*open = false;
	p->pending++;
	uv_close(h, on_closed);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = xmalloc(READ_CHUNK);
	buf->len = READ_CHUNK;
}

static void got(struct proc *p, int which, const char *data, size_t n)
{
	if (which == SOCK) {
		size_t room = STATE_MAX - p->pub.state_len;
		if (n > room)
			n = room;
		p->pub.state = xrealloc(p->pub.state, p->pub.state_len + n + 1);
		memcpy(p->pub.state + p->pub.state_len, data, n);
		p->pub.state_len += n;
		p->pub.state[p->pub.state_len] = '\0';
		return;
	}
	p->ops->output(&p->pub, which == OUT ? 1 : 2, data, n);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct proc *p = s->data;
	int which = (int)((uv_pipe_t *)s - p->pipe);

	if (n > 0)
		got(p, which, buf->base, (size_t)n);
	else if (n < 0) {
		uv_read_stop(s);
		p->reading[which] = false;
		p->eof[which] = true;
	}
	free(buf->base);
}

static void start_reading(struct proc *p, int which)
{
	if (p->pipe_open[which] && !p->reading[which] && !p->eof[which] &&
	    uv_read_start((uv_stream_t *)&p->pipe[which], alloc_cb, on_read) == 0)
		p->reading[which] = true;
}

static void stop_reading(struct proc *p, int which)
{
	if (p->reading[which])
		uv_read_stop((uv_stream_t *)&p->pipe[which]);
	p->reading[which] = false;
}

/* What is left in a pipe once the process has gone: read now, without waiting for EOF. */
static void drain(struct proc *p, int which)
{
	char buf[READ_CHUNK];
	uv_os_fd_t fd;

	if (!p->pipe_open[which] || p->eof[which] ||
	    uv_fileno((uv_handle_t *)&p->pipe[which], &fd) < 0)
		return;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got(p, which, buf, (size_t)n);
	}
}

/* Whether the container's init has ended (its pidfd is readable). */
static bool container_ended(struct proc *p)
{
	struct pollfd pfd = {.fd = p->ctr != NULL ? berth_container_pidfd(p->ctr) : -1,
	                     .events = POLLIN};

	if (!berthd_lease_alive(p->lease))
		return true;
	return pfd.fd >= 0 && poll(&pfd, 1, 0) == 1;
}

static void reap(struct proc *p)
{
	siginfo_t info;

	memset(&info, 0, sizeof(info));
	if (waitid(P_PID, (id_t)p->pub.pid, &info, WEXITED | WNOHANG) < 0 || info.si_pid == 0) {
		/* Not ours to reap after all (should not happen): say it ended badly. */
		p->pub.exit_code = 255;
	} else if (info.si_code == CLD_EXITED) {
		p->pub.exit_code = info.si_status;
	} else {
		p->pub.signal = info.si_status;
		p->pub.exit_code = 128 + info.si_status;
	}
	p->pub.container_died = container_ended(p);
	for (int i = 0; i < N_PIPES; i++) {
		drain(p, i);
		stop_reading(p, i);
		close_handle(p, (uv_handle_t *)&p->pipe[i], &p->pipe_open[i]);
	}
	if (p->timer_open)
		uv_timer_stop(&p->timer);
	close_handle(p, (uv_handle_t *)&p->timer, &p->timer_open);
	p->exited = true;
	p->ops->exited(&p->pub);
}

static void on_exit_poll(uv_poll_t *h, int status, int events)
{
	struct proc *p = h->data;
	siginfo_t info;
	(void)status;
	(void)events;

	/* WNOWAIT: look, leave the zombie (and its pid) until any kill is done. */
	memset(&info, 0, sizeof(info));
	if (waitid(P_PID, (id_t)p->pub.pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    info.si_pid == 0)
		return;
	BERTH_TRACE("sandbox: exit seen");
	uv_poll_stop(h);
	close_handle(p, (uv_handle_t *)h, &p->poll_open);
	p->exit_seen = true;
	if (p->kills == 0)
		reap(p);
}

/* ---- kill ---- */

struct kill_job {
	uv_work_t work;
	struct proc *p;
	pid_t root;
	int pidfd;
};

/* Every process whose parent (transitively) or process group is `root`, into *out. */
static size_t tree_of(pid_t root, pid_t **out)
{
	cleanup_closedir DIR *dir = opendir("/proc");
	pid_t *set = xmalloc(sizeof(pid_t) * 16);
	pid_t *ppid = NULL, *pgrp = NULL, *pids = NULL;
	size_t n = 0, cap = 16, np = 0, capp = 0;
	struct dirent *e;
	bool grew = true;

	set[n++] = root;
	while (dir != NULL && (e = readdir(dir)) != NULL) {
		char path[300], buf[512], *rp;
		cleanup_close int fd = -1;
		long pp, pg;
		ssize_t len;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || (len = read(fd, buf, sizeof(buf) - 1)) <= 0)
			continue;
		buf[len] = '\0';
		/* "PID (COMM) S PPID PGRP ...": COMM may hold anything, up to the last ')'. */
		rp = strrchr(buf, ')');
		if (rp == NULL || sscanf(rp + 1, " %*c %ld %ld", &pp, &pg) != 2)
			continue;
		if (np == capp) {
			capp = capp * 2 + 64;
			pids = xrealloc(pids, capp * sizeof(pid_t));
			ppid = xrealloc(ppid, capp * sizeof(pid_t));
			pgrp = xrealloc(pgrp, capp * sizeof(pid_t));
		}
		pids[np] = (pid_t)atol(e->d_name);
		ppid[np] = (pid_t)pp;
		pgrp[np] = (pid_t)pg;
		np++;
	}
	while (grew) {
		grew = false;
		for (size_t i = 0; i < np; i++) {
			bool in = false, parent_in = pgrp[i] == root;
			for (size_t k = 0; k < n; k++) {
				in |= set[k] == pids[i];
				parent_in |= set[k] == ppid[i];
			}
			if (in || !parent_in)
				continue;
			if (n == cap)
				set = xrealloc(set, (cap *= 2) * sizeof(pid_t));
			set[n++] = pids[i];
			grew = true;
		}
	}
	free(pids);
	free(ppid);
	free(pgrp);
	*out = set;
	return n;
}

static void kill_work(uv_work_t *req)
{
	struct kill_job *j = req->data;

	syscall(SYS_pidfd_send_signal, j->pidfd, SIGKILL, NULL, 0);
	/* Rounds: a process may fork while we look; SIGKILL'd ones cannot. */
	for (int round = 0; round < 8; round++) {
		pid_t *set = NULL;
		size_t n = tree_of(j->root, &set);

		kill(-j->root, SIGKILL);
		for (size_t i = 1; i < n; i++)
			kill(set[i], SIGKILL);
		free(set);
		if (n <= 1)
			break;
	}
}

static void after_kill(uv_work_t *req, int status)
{
	struct kill_job *j = req->data;
	struct proc *p = j->p;

	(void)status;
	free(j);
	p->kills--;
	p->pending--;
	if (p->kills == 0 && p->exit_seen && !p->exited)
		reap(p);
	maybe_free(p);
}

void sbx_proc_kill(struct sbx_proc *pub)
{
	struct proc *p = (struct proc *)pub;
	struct kill_job *j;

	if (p->exited)
		return;
	if (p->pidfd < 0 || pub->pid <= 0) {
		/* Still being started: killed as soon as it runs. */
		p->kill_requested = true;
		return;
	}
	pub->killed = true;
	j = xcalloc(1, sizeof(*j));
	j->work.data = j;
	j->p = p;
	j->root = pub->pid;
	j->pidfd = p->pidfd;
	p->kills++;
	p->pending++;
	uv_queue_work(p->d->loop, &j->work, kill_work, after_kill);
}

int sbx_proc_signal(struct sbx_proc *pub, int sig)
{
	struct proc *p = (struct proc *)pub;

	if (p->exited || p->pidfd < 0 || pub->pid <= 0)
		return -ESRCH;
	/* Through the pidfd first: if that worked, the pid (and so its group) is still ours. */
	if (syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) < 0)
		return -errno;
	kill(-pub->pid, sig);
	return 0;
}

static void on_timeout(uv_timer_t *t)
{
	struct proc *p = t->data;

	p->pub.timed_out = true;
	sbx_proc_kill(&p->pub);
}

/* ---- start ---- */

static void exec_work(uv_work_t *req)
{
	struct proc *p = req->data;
	struct berth_exec_spec spec = {
	        .argv = p->argv,
	        .env = p->env,
	        .workdir = p->cwd,
	        .stdio = {p->child_fd[0], p->child_fd[1], p->child_fd[2]},
	        .tty = p->tty,
	};

	BERTH_TRACE("sandbox: exec job runs");
	p->result = berth_container_exec(p->ctr, &spec, &p->pub.pid, &p->pidfd, &p->err);
	BERTH_TRACE("sandbox: exec job done");
}

static void no_work(uv_work_t *req)
{
	(void)req;
}

static void on_stdin_done(uv_shutdown_t *req, int status)
{
	struct proc *p = req->data;
	(void)status;
	p->pending--;
	maybe_free(p);
}

static void on_stdin_written(uv_write_t *req, int status)
{
	struct proc *p = req->data;

	free(steal_pointer(&p->stdin_data));
	if (status == 0 && p->pipe_open[SOCK]) {
		p->sreq.data = p;
		if (uv_shutdown(&p->sreq, (uv_stream_t *)&p->pipe[SOCK], on_stdin_done) == 0)
			p->pending++;
	}
	p->pending--;
	maybe_free(p);
}

static void after_exec(uv_work_t *req, int status)
{
	struct proc *p = req->data;
	(void)status;

	BERTH_TRACE("sandbox: exec done, on the loop");
	p->pending--;
	for (int i = 0; i < 3; i++) {
		berth_close_keep_errno(p->child_fd[i]);
		p->child_fd[i] = -1;
	}
	if (p->result < 0) {
		for (int i = 0; i < N_PIPES; i++)
			close_handle(p, (uv_handle_t *)&p->pipe[i], &p->pipe_open[i]);
		p->exited = true;
		p->ops->started(&p->pub, &p->err);
		return;
	}
	for (int i = 0; i < N_PIPES; i++)
		start_reading(p, i);
	if (!p->pipe_open[SOCK]) {
		/* A terminal's input comes through its master. */
	} else if (p->stdin_len > 0) {
		uv_buf_t b = uv_buf_init(p->stdin_data, (unsigned)p->stdin_len);
		p->wreq.data = p;
		if (uv_write(&p->wreq, (uv_stream_t *)&p->pipe[SOCK], &b, 1, on_stdin_written) == 0)
			p->pending++;
	} else {
		p->sreq.data = p;
		if (uv_shutdown(&p->sreq, (uv_stream_t *)&p->pipe[SOCK], on_stdin_done) == 0)
			p->pending++;
	}
	if (p->timeout_ms > 0) {
		uv_timer_init(p->d->loop, &p->timer);
		p->timer.data = p;
		p->timer_open = true;
		uv_timer_start(&p->timer, on_timeout, p->timeout_ms, 0);
	}
	uv_poll_init(p->d->loop, &p->exit_poll, p->pidfd);
	p->exit_poll.data = p;
	p->poll_open = true;
	uv_poll_start(&p->exit_poll, UV_READABLE, on_exit_poll);
	p->ops->started(&p->pub, NULL);
	if (p->kill_requested)
		sbx_proc_kill(&p->pub);
}

struct sbx_proc *sbx_proc_start(struct berthd *d, struct berthd_lease *lease,
                                const struct sbx_proc_spec *spec, const struct sbx_proc_ops *ops,
                                void *data)
{
	struct proc *p = xcalloc(1, sizeof(*p));
	int sv[2], out[2], err[2];
	bool too_many;

	p->pub.data = data;
	p->d = d;
	/* router.c made d->sandbox before any call could start a process. */
	p->pub.next = d->sandbox->procs;
	if (p->pub.next != NULL)
		p->pub.next->prev = &p->pub;
	d->sandbox->procs = &p->pub;
	d->sandbox->n_procs++;
	p->lease = lease;
	p->ctr = berthd_lease_container(lease);
	p->ops = ops;
	p->argv = berth_strv_dup(spec->argv);
	p->env = spec->env != NULL ? berth_strv_dup(spec->env) : NULL;
	p->cwd = spec->cwd != NULL ? xstrdup(spec->cwd) : NULL;
	p->pidfd = -1;
	p->work.data = p;
	p->child_fd[0] = p->child_fd[1] = p->child_fd[2] = -1;
	if (spec->stdin_len > 0) {
		p->stdin_data = xmalloc(spec->stdin_len);
		memcpy(p->stdin_data, spec->stdin_data, spec->stdin_len);
		p->stdin_len = spec->stdin_len;
	}
	if (spec->tty >= 0) {
		/* A terminal: its slave three times over, no pipes. */
		p->tty = true;
		for (int i = 0; i < 3; i++)
			p->child_fd[i] = fcntl(spec->tty, F_DUPFD_CLOEXEC, 3);
		for (int i = 0; i < N_PIPES; i++)
			p->eof[i] = true;
		if (p->child_fd[0] < 0 || p->child_fd[1] < 0 || p->child_fd[2] < 0 ||
		    p->ctr == NULL || d->sandbox->n_procs > SBX_RUNNING_MAX) {
			berth_error_set_plain(&p->err, p->ctr == NULL ? ESRCH : EAGAIN,
			                      p->ctr == NULL ? "the container has ended"
			                                     : "too many commands and processes");
			p->result = -1;
			p->pending++;
			uv_queue_work(d->loop, &p->work, no_work, after_exec);
			return &p->pub;
		}
	} else {
		/* Each costs berthd five descriptors: a bound keeps them for everything else. */
		too_many = d->sandbox->n_procs > SBX_RUNNING_MAX;
		if (too_many || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			sv[0] = sv[1] = -1;
		if (too_many || pipe2(out, O_CLOEXEC) < 0)
			out[0] = out[1] = -1;
		if (too_many || pipe2(err, O_CLOEXEC) < 0)
			err[0] = err[1] = -1;
		p->child_fd[0] = sv[1];
		p->child_fd[1] = out[1];
		p->child_fd[2] = err[1];
		{
			int ours[N_PIPES] = {out[0], err[0], sv[0]};
			for (int i = 0; i < N_PIPES; i++) {
				uv_pipe_init(d->loop, &p->pipe[i], 0);
				p->pipe[i].data = p;
				p->pipe_open[i] = true;
				if (ours[i] >= 0 && uv_pipe_open(&p->pipe[i], ours[i]) < 0) {
					close(ours[i]);
					ours[i] = -1;
				}
				if (ours[i] < 0)
					p->eof[i] = true;
			}
			if (ours[OUT] < 0 || ours[ERR] < 0 || ours[SOCK] < 0 || p->ctr == NULL) {
				if (p->ctr == NULL)
					berth_error_set_plain(&p->err, ESRCH,
					                      "the container has ended");
				else if (too_many)
					berth_error_set_plain(
					        &p->err, EAGAIN,
					        "too many commands and processes run at once "
					        "(at most %d)",
					        SBX_RUNNING_MAX);
				else
					berth_error_set(&p->err, EMFILE,
					                "make the process's pipes");
				p->result = -1;
				p->pending++;
				/* Answered on the loop's next turn, as after an exec. */
				uv_queue_work(d->loop, &p->work, no_work, after_exec);
				return &p->pub;
			}
		}
	}
	p->timeout_ms = spec->timeout_ms;
	p->pending++;
	BERTH_TRACE("sandbox: exec queued");
	uv_queue_work(d->loop, &p->work, exec_work, after_exec);
	return &p->pub;
}

void sbx_proc_pause(struct sbx_proc *pub, bool paused)
{
	struct proc *p = (struct proc *)pub;

	if (p->paused == paused || p->exited)
		return;
	p->paused = paused;
	for (int i = OUT; i <= ERR; i++) {
		if (paused)
			stop_reading(p, i);
		else
			start_reading(p, i);
	}
}

static void quiet_started(struct sbx_proc *p, const berth_error_t *err)
{
	(void)p;
	(void)err;
}

static void quiet_output(struct sbx_proc *p, int stream, const char *data, size_t len)
{
	(void)p;
	(void)stream;
	(void)data;
	(void)len;
}

static void quiet_exited(struct sbx_proc *p)
{
	(void)p;
}

/* What a released process still calls: its owner has gone. */
static const struct sbx_proc_ops quiet = {quiet_started, quiet_output, quiet_exited};

void sbx_proc_release(struct sbx_proc *pub)
{
	struct proc *p = (struct proc *)pub;

	p->released = true;
	p->ops = &quiet;
	if (!p->exited)
		sbx_proc_kill(pub);
	maybe_free(p);
}

void sbx_proc_kill_all(struct berthd *d)
{
	for (struct sbx_proc *p = d->sandbox != NULL ? d->sandbox->procs : NULL; p != NULL;
	     p = p->next)
		sbx_proc_kill(p);
}
