/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the sandbox module's files share: the calls (one API request under a
 * lease), the per-instance state (sessions, processes), the SDK's answer and
 * error shapes (router.c), UTF-8 for JSON (text.c), processes in a container
 * (proc.c), sessions' shell scripts (session.c), file work (files.c) and
 * commands (commands.c).
 */
#ifndef BERTH_SANDBOX_INTERNAL_H
#define BERTH_SANDBOX_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "berth/error.h"
#include "daemon/daemon.h"
#include "daemon/instances.h"
#include "http/http.h"

/* Output kept per stream for a whole answer or a process's logs; beyond it is dropped. */
#define SBX_OUTPUT_MAX (16u << 20)
/* Files larger than this are not read whole: /api/read/stream serves them. */
#define SBX_READ_MAX (32u << 20)
/* Process records kept per instance (finished ones go first). */
#define SBX_PROCS_MAX 256
/* Sessions per instance. */
#define SBX_SESSIONS_MAX 256
/* Commands and processes running at once, all instances together. */
#define SBX_RUNNING_MAX     512
#define SBX_DEFAULT_SESSION "default"
#define SBX_DEFAULT_CWD     "/workspace"

struct sbx_proc;
struct sbx_stream;
struct sbx_waiter;

struct sbx_session {
	char *id;
	char *cwd;     /* absolute */
	char *exports; /* shell text restoring its exported variables (the shell's `export -p`) */
	bool busy;     /* a command runs in it; others queue, in order */
	uint64_t command_timeout_ms; /* for a command without its own timeoutMs; 0: none */
	struct sbx_waiter *queue, **queue_tail;
	struct sbx_session *next;
};

/* A background process (/api/process/start), kept after its exit for its logs. */
struct sbx_process {
	char *id;
	char *command;
	char *session_id;
	struct sbx_proc *proc; /* NULL once its handles are gone */
	pid_t pid;
	const char *status; /* running, completed, failed, killed, error */
	int exit_code;
	bool has_exit;
	int64_t start_ms, end_ms;
	char *out[2]; /* stdout, stderr as kept (bounded by SBX_OUTPUT_MAX) */
	size_t out_len[2];
	struct sbx_stream *streams;      /* .../stream readers */
	struct sbx_waiter *exit_waiters; /* DELETE answers waiting for the exit */
	struct sbx_inst *inst;
	struct berthd_lease *lease;  /* held while it runs */
	struct sbx_call *start_call; /* the start, until it is answered */
	struct sbx_process *next;
};

/* The sandbox state of one instance, for the container it has now. */
struct sbx_inst {
	struct berthd *d;
	char id[BERTH_ID_LEN + 1];
	pid_t init_pid;      /* the container the state belongs to */
	bool workspace_made; /* /workspace was made, or tried (files.c) */
	struct sbx_session *sessions;
	size_t n_sessions;
	struct sbx_process *procs; /* newest first */
	size_t n_procs;
	uint64_t next_proc;
	struct sbx_inst *next;
};

struct berthd_sandbox {
	struct sbx_inst *insts;
	struct sbx_proc *procs; /* every process in a container, for berthd's stop */
	size_t n_procs;
	bool stopping;
};

/* One API call: a request, its parsed body and, once acquired, the instance's lease. */
struct sbx_call {
	struct berthd *d;
	struct berth_http_request *req; /* NULL once answered */
	json_t *body;                   /* the JSON object sent, {} without one */
	char *path;                     /* "/api/..." */
	char *class_name, *name;
	struct berthd_lease *lease; /* released by sbx_call_end() unless taken */
	struct sbx_inst *inst;
	void (*handler)(struct sbx_call *c);
	bool berth_api; /* berth's own endpoint: its error shape, {"error": {code, message}} */
};

/* Something waiting for a session or an exit: a function and its argument. */
struct sbx_waiter {
	void (*fn)(void *arg);
	void *arg;
	struct sbx_waiter *next;
};

/* ---- router.c (and text.c) ---- */

/* The SDK's ISO-8601 time of now, "2026-01-02T03:04:05.678Z". */
void sbx_timestamp(char buf[32]);
/* The HTTP status the SDK gives error code `code`. */
int sbx_code_status(const char *code);
/* The SDK's error code for a failed file operation's errno. */
const char *sbx_errno_code(int errnum);
/* An error of the call's API (the SDK's, or berth's own); ends nothing. */
void sbx_call_error(struct sbx_call *c, const char *code, json_t *context, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Answer with an SDK error (status from the code); ends nothing else. */
void sbx_respond_error(struct berth_http_request *req, const char *code, json_t *context,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Answer 200 with `body` (stolen) plus success: true and timestamp. */
void sbx_respond_ok(struct berth_http_request *req, json_t *body);
/* Begin a server-sent event stream. */
void sbx_sse_begin(struct berth_http_request *req);
/* One event `ev` (stolen) with a timestamp added; stream_write()'s result. */
int sbx_sse_send(struct berth_http_request *req, json_t *ev);

/* The call is over: answered (or handed on); release its lease and free it. */
void sbx_call_end(struct sbx_call *c);
/* Error answer and end of the call. */
void sbx_call_fail(struct sbx_call *c, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* The lease, taken from the call (the caller releases it). */
struct berthd_lease *sbx_call_take_lease(struct sbx_call *c);

/* Body members: NULL when absent or null; false (after answering 400) when of the wrong type. */
bool sbx_get_string(struct sbx_call *c, const char *key, bool required, const char **out);
bool sbx_get_uint(struct sbx_call *c, const char *key, uint64_t max, uint64_t *out, bool *given);
bool sbx_get_bool(struct sbx_call *c, const char *key, bool *out);
/* An object of strings (null values skipped), or NULL when absent. */
bool sbx_get_env(struct sbx_call *c, const char *key, json_t **out);

/* Valid UTF-8 of `data` (bad bytes become U+FFFD), as a JSON string. */
json_t *sbx_json_text(const char *data, size_t len);
/* Bytes at the end of `data` that start an incomplete UTF-8 sequence (0..3). */
size_t sbx_utf8_tail(const char *data, size_t len);
/* ---- session.c ---- */

struct sbx_session *sbx_session_find(struct sbx_inst *si, const char *id);
/* Create `id` with `env` (object of strings, or NULL) and `cwd` (NULL: /workspace). */
struct sbx_session *sbx_session_new(struct sbx_inst *si, const char *id, json_t *env,
                                    const char *cwd);
void sbx_session_free(struct sbx_session *s);
/* Run `fn(arg)` once the session is free (now, or after the commands before it). */
void sbx_session_enter(struct sbx_session *s, void (*fn)(void *arg), void *arg);
/* The command that held it is done: the next one goes. */
void sbx_session_leave(struct sbx_session *s);
/*
 * The argv (sh -c SCRIPT sh COMMAND ...) that runs `command` in session `s`:
 * its exported variables and cwd restored, `env` (object of strings, or
 * NULL) for this command only, in `cwd` (NULL: the session's). With
 * `report`, the shell writes its new cwd and `export -p` to its stdin socket
 * afterwards (see proc.c), for sbx_session_update().
 */
char **sbx_session_argv(const struct sbx_session *s, const char *command, json_t *env,
                        const char *cwd, bool report);
/* Take the state a command reported (cwd line, then export -p). */
void sbx_session_update(struct sbx_session *s, const char *state, size_t len, bool keep_cwd);
/* Shell single-quoting of `s` ('...' with ' as '\''). */
char *sbx_shell_quote(const char *s);
/* KEY=VALUE of `base` with the members of `over` (an object of strings) replacing theirs. */
char **sbx_env_merge(char *const *base, json_t *over);

/* ---- proc.c ---- */

struct sbx_proc_ops {
	/* The process runs (err NULL; p->pid is set) or could not be started. */
	void (*started)(struct sbx_proc *p, const berth_error_t *err);
	/* Output on stdout (1) or stderr (2). */
	void (*output)(struct sbx_proc *p, int stream, const char *data, size_t len);
	/* It has exited (and been reaped): exit_code and the flags are final. */
	void (*exited)(struct sbx_proc *p);
};

struct sbx_proc_spec {
	char **argv;
	char **env; /* NULL: the container's */
	const char *cwd;
	const void *stdin_data;
	size_t stdin_len;
	uint64_t timeout_ms; /* 0: none */
	/*
	 * A pty's slave, or -1: with one, it is the process's stdin, stdout and
	 * stderr and its controlling terminal, and there are no pipes (the
	 * owner reads the master); output and the stdin socket are unused.
	 */
	int tty;
};

struct sbx_proc {
	void *data;                   /* the owner's */
	struct sbx_proc *prev, *next; /* berthd_sandbox.procs */
	pid_t pid;
	int exit_code;       /* as a shell says: the code, or 128 + signal */
	int signal;          /* killed by this signal, or 0 */
	bool timed_out;      /* killed at its timeout */
	bool killed;         /* killed by sbx_proc_kill() */
	bool container_died; /* the container ended under it */
	char *state;         /* what the shell wrote back on its stdin socket */
	size_t state_len;
};

/*
 * Run `spec` in the leased container. ops->started follows (on the loop),
 * then output, then exited, unless it failed to start. The lease must
 * outlive the process.
 */
struct sbx_proc *sbx_proc_start(struct berthd *d, struct berthd_lease *lease,
                                const struct sbx_proc_spec *spec, const struct sbx_proc_ops *ops,
                                void *data);
/* SIGKILL to its process group and every descendant (on the thread pool). */
void sbx_proc_kill(struct sbx_proc *p);
/*
 * Send `sig` to the process and its process group (it leads one: what a
 * shell started in it is there too), without waiting; -ESRCH once it has
 * ended.
 */
int sbx_proc_signal(struct sbx_proc *p, int sig);
/* Stop or resume reading its output (a reader that is behind). */
void sbx_proc_pause(struct sbx_proc *p, bool paused);
/* The owner is done with it (after exited or started with an error); freed when closed. */
void sbx_proc_release(struct sbx_proc *p);
/* Kill every process that still runs (berthd stops). */
void sbx_proc_kill_all(struct berthd *d);

/* ---- files.c ---- */

/* /api/commands: the executables on the container's PATH. */
void sbx_files_commands(struct sbx_call *c);
/* berth's GET/PUT .../files?path=P: a file's raw bytes, streamed both ways. */
void sbx_files_raw(struct sbx_call *c);
/* The /api/ file operations; `op` is the path after "/api/". */
bool sbx_files_serve(struct sbx_call *c, const char *op);
/* Resolve `path` against the session cwd: malloc'd absolute path, or NULL (answered 400/403). */
char *sbx_abs_path(struct sbx_call *c, const char *path);
/*
 * Make directory `path` (and its parents) inside the leased container's
 * root with its user's ownership, on the thread pool; `done(arg, errno)`.
 */
void sbx_files_mkdir_p(struct sbx_call *c, const char *path, void (*done)(void *arg, int err),
                       void *arg);

/* berthd's file system identity, kept while a thread works as a container's user. */
struct sbx_identity {
	bool assumed;
	int uid, gid; /* what setfsuid/setfsgid said it was */
	gid_t *groups;
	int n_groups;
};
/*
 * This thread works on files as uid:gid (fsuid, fsgid, no supplementary
 * groups), as the container's user would, until sbx_identity_restore();
 * nothing changes for root (0:0). 0 or a negative errno.
 */
int sbx_identity_assume(struct sbx_identity *saved, uint32_t uid, uint32_t gid);
void sbx_identity_restore(struct sbx_identity *saved);

/* ---- ports.c ---- */

/* /api/port-watch: events until a port in the container answers (Process.waitForPort). */
void sbx_port_watch(struct sbx_call *c);

/* ---- watch.c ---- */

/* /api/watch: file changes under a directory, as events (sandbox.watch()). */
void sbx_watch(struct sbx_call *c);

/* ---- commands.c ---- */

bool sbx_commands_serve(struct sbx_call *c);
/* The session of the call's sessionId (default one when absent), created on first use. */
struct sbx_session *sbx_call_session(struct sbx_call *c);
void sbx_process_free(struct sbx_process *pr);

#endif
