/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Commands: /api/execute (whole answer), /api/execute/stream (events start,
 * stdout, stderr, complete — or error when the container dies under it),
 * background processes (/api/process/...), sessions (/api/session/...),
 * /api/git/checkout, and berth's own shell-less exec. A command holds its
 * call's lease until it has exited; a background process takes the lease
 * over, so a running process keeps its instance awake. A client that
 * leaves a command's answer takes the command with it (its tree is
 * killed); background processes run on without anybody watching.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/base64.h"
#include "berth/log.h"
#include "berth/parse.h"
#include "berth/runtime.h"
#include "berth/trace.h"
#include "berth/util.h"
#include "sandbox/sandbox-internal.h"

#define TIMEOUT_MAX_MS (7ull * 24 * 3600 * 1000)
#define STDIN_MAX      (16u << 20)

/* Output kept for an answer: bounded, with what was dropped counted. */
struct outbuf {
	char *data;
	size_t len;
	bool truncated;
};

static void outbuf_add(struct outbuf *b, const char *data, size_t n)
{
	size_t room = SBX_OUTPUT_MAX - b->len;

	if (n > room) {
		n = room;
		b->truncated = true;
	}
	if (n == 0)
		return;
	b->data = xrealloc(b->data, b->len + n + 1);
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/*
 * Text events split output at arbitrary bytes: an incomplete UTF-8
 * sequence at the end of a piece waits for the rest.
 */
struct textsplit {
	char hold[4];
	size_t n;
};

static json_t *textsplit_take(struct textsplit *t, const char *data, size_t len, bool flush)
{
	cleanup_free char *buf = xmalloc(t->n + len + 1);
	size_t total = t->n + len, keep;

	memcpy(buf, t->hold, t->n);
	memcpy(buf + t->n, data, len);
	keep = flush ? 0 : sbx_utf8_tail(buf, total);
	memcpy(t->hold, buf + total - keep, keep);
	t->n = keep;
	if (total - keep == 0)
		return NULL;
	return sbx_json_text(buf, total - keep);
}

static double now_ms(void)
{
	return (double)berthd_now_ms();
}

struct sbx_session *sbx_call_session(struct sbx_call *c)
{
	const char *id = NULL;
	struct sbx_session *s;
	json_t *v = json_object_get(c->body, "sessionId");

	if (json_is_string(v) && json_string_length(v) > 0)
		id = json_string_value(v);
	if (id == NULL)
		id = SBX_DEFAULT_SESSION;
	s = sbx_session_find(c->inst, id);
	if (s == NULL && c->inst->n_sessions < SBX_SESSIONS_MAX)
		s = sbx_session_new(c->inst, id, NULL, NULL);
	return s;
}

/* ---- a command under a call: execute, execute/stream, git, exec ---- */

enum run_kind { RUN_EXECUTE, RUN_STREAM, RUN_GIT, RUN_EXEC, RUN_EXEC_STREAM };

struct run {
	struct sbx_call *c;
	enum run_kind kind;
	struct sbx_session *s; /* execute and stream */
	bool keep_cwd;         /* a cwd of this command's own */
	char *command;
	char *target_dir, *branch, *repo; /* git */
	bool asking_branch;               /* git: the clone is done, its branch is asked */
	bool base64;                      /* exec: output as base64 */
	struct sbx_proc *proc;
	struct outbuf out[2];
	struct textsplit split[2];
	double start_ms;
	uint64_t timeout_ms;
	json_t *env; /* execute: this command's own variables, for when the session is free */
	bool behind; /* the stream's reader is slow: output paused */
};

static void run_free(struct run *r)
{
	json_decref(r->env);
	free(r->command);
	free(r->target_dir);
	free(r->branch);
	free(r->repo);
	free(r->out[0].data);
	free(r->out[1].data);
	free(r);
}

static bool streaming(const struct run *r)
{
	return r->kind == RUN_STREAM || r->kind == RUN_EXEC_STREAM;
}

static void on_gone(struct berth_http_request *req, void *arg)
{
	struct run *r = arg;
	(void)req;

	if (r->proc != NULL)
		sbx_proc_kill(r->proc);
}

static void on_drain(struct berth_http_request *req, void *arg)
{
	struct run *r = arg;
	(void)req;

	r->behind = false;
	if (r->proc != NULL)
		sbx_proc_pause(r->proc, false);
}

static void send_event(struct run *r, json_t *ev)
{
	int w = sbx_sse_send(r->c->req, ev);

	if (w < 0 && r->proc != NULL)
		sbx_proc_kill(r->proc);
	else if (w == 1 && !r->behind && r->proc != NULL) {
		r->behind = true;
		sbx_proc_pause(r->proc, true);
		berth_http_stream_on_drain(r->c->req, 256 * 1024, on_drain, r);
	}
}

static void send_output(struct run *r, int stream, const char *data, size_t len, bool flush)
{
	const char *type = stream == 1 ? "stdout" : "stderr";
	json_t *text;

	if (r->base64) {
		cleanup_free char *b = NULL;
		if (len == 0)
			return;
		b = berth_base64_encode((const unsigned char *)data, len, NULL);
		send_event(r, json_pack("{s:s, s:s}", "type", type, "data", b));
		return;
	}
	text = textsplit_take(&r->split[stream - 1], data, len, flush);
	if (text != NULL)
		send_event(r, json_pack("{s:s, s:o}", "type", type, "data", text));
}

static void run_output(struct sbx_proc *p, int stream, const char *data, size_t len)
{
	struct run *r = p->data;

	if (streaming(r))
		send_output(r, stream, data, len, false);
	else
		outbuf_add(&r->out[stream - 1], data, len);
}

static json_t *out_json(struct run *r, int i)
{
	if (r->base64) {
		cleanup_free char *b = berth_base64_encode((const unsigned char *)r->out[i].data,
		                                           r->out[i].len, NULL);
		return json_string(b);
	}
	return sbx_json_text(r->out[i].data != NULL ? r->out[i].data : "", r->out[i].len);
}

/* How a failed git clone reads, as the SDK's codes. */
static const char *git_code(const char *err)
{
	if (strstr(err, "Remote branch") != NULL || strstr(err, "not found in upstream") != NULL)
		return "GIT_BRANCH_NOT_FOUND";
	if (strstr(err, "Authentication failed") != NULL ||
	    strstr(err, "could not read Username") != NULL)
		return "GIT_AUTH_FAILED";
	if (strstr(err, "not found") != NULL || strstr(err, "does not exist") != NULL ||
	    strstr(err, "does not appear to be a git repository") != NULL)
		return "GIT_REPOSITORY_NOT_FOUND";
	if (strstr(err, "Could not resolve host") != NULL ||
	    strstr(err, "unable to access") != NULL || strstr(err, "Connection refused") != NULL)
		return "GIT_NETWORK_ERROR";
	return "GIT_CLONE_FAILED";
}

static void run_done(struct run *r)
{
	struct sbx_call *c = r->c;

	if (r->proc != NULL)
		sbx_proc_release(steal_pointer(&r->proc));
	if (r->s != NULL)
		sbx_session_leave(r->s);
	run_free(r);
	sbx_call_end(c);
}

static void run_start(struct run *r, char **argv, char **env, const char *cwd,
                      const void *stdin_data, size_t stdin_len);

/*
 * A clone without a branch checked out the remote's HEAD, whatever that
 * is: git is asked which branch that was, as the SDK's server does, and
 * the answer names it.
 */
static void git_ask_branch(struct run *r)
{
	char *argv[] = {(char *)"git",     (char *)"-C", r->target_dir,  (char *)"symbolic-ref",
	                (char *)"--short", (char *)"-q", (char *)"HEAD", NULL};

	sbx_proc_release(steal_pointer(&r->proc));
	for (int i = 0; i < 2; i++) {
		free(r->out[i].data);
		r->out[i] = (struct outbuf){0};
	}
	r->asking_branch = true;
	run_start(r, argv, NULL, "/", NULL, 0);
}

/* What git said the branch is: its first line, or "unknown" (a detached HEAD). */
static void git_take_branch(struct run *r, const struct sbx_proc *p)
{
	const char *out = r->out[0].data;
	size_t n = out != NULL ? strcspn(out, "\r\n") : 0;

	free(r->branch);
	r->branch = p->exit_code == 0 && n > 0 ? xstrndup(out, n) : xstrdup("unknown");
}

static void run_exited(struct sbx_proc *p)
{
	struct run *r = p->data;
	struct sbx_call *c = r->c;
	double duration = now_ms() - r->start_ms;
	/* Cut short: the container ended under it, or berthd killed it to stop. */
	const char *cut = c->d->sandbox->stopping ? "berthd is stopping: the command was killed"
	                  : p->container_died     ? "the container stopped while the command ran"
	                                          : NULL;

	if (r->s != NULL && cut == NULL)
		sbx_session_update(r->s, p->state != NULL ? p->state : "", p->state_len,
		                   r->keep_cwd);
	if (streaming(r)) {
		send_output(r, 1, "", 0, true);
		send_output(r, 2, "", 0, true);
		if (cut != NULL)
			send_event(r, json_pack("{s:s, s:s}", "type", "error", "error", cut));
		else if (r->kind == RUN_STREAM)
			send_event(r, json_pack("{s:s, s:i, s:b}", "type", "complete", "exitCode",
			                        p->exit_code, "timedOut", p->timed_out));
		else
			send_event(r, json_pack("{s:s, s:i, s:i, s:b}", "type", "exit", "exitCode",
			                        p->exit_code, "signal", p->signal, "timedOut",
			                        p->timed_out));
		berth_http_stream_end(c->req);
		c->req = NULL;
		run_done(r);
		return;
	}
	if (cut != NULL) {
		sbx_call_fail(c, "COMMAND_EXECUTION_ERROR", "%s", cut);
		r->c = NULL;
		if (r->proc != NULL)
			sbx_proc_release(steal_pointer(&r->proc));
		if (r->s != NULL)
			sbx_session_leave(r->s);
		run_free(r);
		return;
	}
	if (r->kind == RUN_GIT && r->asking_branch)
		git_take_branch(r, p);
	else if (r->kind == RUN_GIT && p->exit_code == 0 && r->branch == NULL)
		return git_ask_branch(r);
	if (r->kind == RUN_GIT) {
		if (p->exit_code != 0 && !r->asking_branch) {
			const char *err = r->out[1].data != NULL ? r->out[1].data : "";
			sbx_respond_error(c->req, git_code(err),
			                  json_pack("{s:s, s:s*, s:s, s:i, s:o}", "repository",
			                            r->repo, "branch", r->branch, "targetDir",
			                            r->target_dir, "exitCode", p->exit_code,
			                            "stderr", sbx_json_text(err, strlen(err))),
			                  "git clone of %s failed (exit code %d)%s%s%s", r->repo,
			                  p->exit_code, p->timed_out ? ": timed out" : "",
			                  *err != '\0' ? ": " : "", err);
		} else {
			sbx_respond_ok(c->req,
			               json_pack("{s:s, s:s, s:s}", "repoUrl", r->repo, "branch",
			                         r->branch, "targetDir", r->target_dir));
		}
	} else if (r->kind == RUN_EXEC) {
		BERTH_TRACE("sandbox: exec answered");
		json_t *o = json_pack("{s:i, s:o, s:o, s:b, s:f}", "exitCode", p->exit_code,
		                      "stdout", out_json(r, 0), "stderr", out_json(r, 1),
		                      "timedOut", p->timed_out, "durationMs", duration);
		if (p->signal != 0)
			json_object_set_new(o, "signal", json_integer(p->signal));
		if (r->base64)
			json_object_set_new(o, "encoding", json_string("base64"));
		if (r->out[0].truncated || r->out[1].truncated)
			json_object_set_new(o, "truncated", json_true());
		berth_http_respond_json(c->req, 200, o);
	} else {
		json_t *o = json_pack("{s:b, s:i, s:o, s:o, s:s, s:f, s:s}", "success",
		                      p->exit_code == 0, "exitCode", p->exit_code, "stdout",
		                      out_json(r, 0), "stderr", out_json(r, 1), "command",
		                      r->command, "duration", duration, "sessionId", r->s->id);
		if (p->timed_out)
			json_object_set_new(o, "timedOut", json_true());
		sbx_respond_ok(c->req, o);
	}
	c->req = NULL;
	run_done(r);
}

static void run_started(struct sbx_proc *p, const berth_error_t *err)
{
	struct run *r = p->data;

	if (err != NULL) {
		bool missing = err->kind == BERTH_ERROR_KIND_EXEC && err->code == ENOENT;
		struct sbx_call *c = r->c;

		if (r->kind == RUN_GIT && missing)
			sbx_respond_error(c->req, "GIT_OPERATION_FAILED", NULL,
			                  "git is not installed in this container's image (%s)",
			                  err->message);
		else if (r->kind == RUN_GIT)
			sbx_respond_error(c->req, "GIT_OPERATION_FAILED", NULL, "run git: %s",
			                  err->message);
		else if (r->kind == RUN_STREAM || r->kind == RUN_EXECUTE)
			sbx_respond_error(c->req,
			                  missing ? "COMMAND_NOT_FOUND" : "COMMAND_EXECUTION_ERROR",
			                  NULL, "%s%s", err->message,
			                  missing ? " (sessions need /bin/sh in the image)" : "");
		else if (missing)
			berth_http_respond_error(c->req, 404, "command_not_found", "%s",
			                         err->message);
		else
			berth_http_respond_error(c->req, 500, "exec_failed", "%s", err->message);
		c->req = NULL;
		run_done(r);
		return;
	}
	/* A client that left while the helper worked: the command goes with it. */
	if (berth_http_request_gone(r->c->req))
		sbx_proc_kill(p);
	if (streaming(r)) {
		sbx_sse_begin(r->c->req);
		send_event(r, json_pack("{s:s, s:s, s:i}", "type", "start", "command", r->command,
		                        "pid", (int)p->pid));
	}
}

static const struct sbx_proc_ops run_ops = {run_started, run_output, run_exited};

static void run_start(struct run *r, char **argv, char **env, const char *cwd,
                      const void *stdin_data, size_t stdin_len)
{
	struct sbx_proc_spec spec = {.argv = argv,
	                             .env = env,
	                             .cwd = cwd,
	                             .stdin_data = stdin_data,
	                             .stdin_len = stdin_len,
	                             .timeout_ms = r->timeout_ms,
	                             .tty = -1};

	r->start_ms = now_ms();
	berth_http_request_on_gone(r->c->req, on_gone, r);
	r->proc = sbx_proc_start(r->c->d, r->c->lease, &spec, &run_ops, r);
}

/* execute and execute/stream: once the session is ours. */
static void run_in_session(void *arg)
{
	struct run *r = arg;
	json_t *env = r->env;
	const char *cwd = json_string_value(json_object_get(r->c->body, "cwd"));
	char **argv = sbx_session_argv(r->s, r->command, env, cwd, true);

	if (r->c->req == NULL || berth_http_request_gone(r->c->req)) {
		if (r->c->req != NULL)
			berth_http_respond(r->c->req, 499, "text/plain", NULL, "", 0);
		r->c->req = NULL;
		berth_strv_free(argv);
		run_done(r);
		return;
	}
	run_start(r, argv, NULL, "/", NULL, 0);
	berth_strv_free(argv);
}

static void on_workspace(void *arg, int err)
{
	struct run *r = arg;
	(void)err;

	/* A missing /workspace leaves the shell in /, as a missing cwd would. */
	sbx_session_enter(r->s, run_in_session, r);
}

static bool parse_timeout(struct sbx_call *c, struct run *r)
{
	uint64_t t = 0;
	bool given;

	if (!sbx_get_uint(c, "timeoutMs", TIMEOUT_MAX_MS, &t, &given))
		return false;
	r->timeout_ms = t;
	return true;
}

static void execute(struct sbx_call *c, bool stream)
{
	struct run *r;
	const char *command, *cwd;
	json_t *env;

	if (!sbx_get_string(c, "command", true, &command) || !sbx_get_string(c, "cwd", false, &cwd))
		return;
	if (*command == '\0')
		return sbx_call_fail(c, "INVALID_COMMAND", "`command` is empty");
	if (cwd != NULL && cwd[0] != '/')
		return sbx_call_fail(c, "VALIDATION_FAILED", "`cwd` must be an absolute path");
	if (!sbx_get_env(c, "env", &env))
		return;
	r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->env = env;
	r->kind = stream ? RUN_STREAM : RUN_EXECUTE;
	r->command = xstrdup(command);
	r->keep_cwd = cwd != NULL;
	if (!parse_timeout(c, r)) {
		run_free(r);
		return;
	}
	r->s = sbx_call_session(c);
	if (r->s == NULL) {
		run_free(r);
		return sbx_call_fail(c, "VALIDATION_FAILED", "too many sessions (at most %d)",
		                     SBX_SESSIONS_MAX);
	}
	if (json_object_get(c->body, "timeoutMs") == NULL)
		r->timeout_ms = r->s->command_timeout_ms;
	if (!c->inst->workspace_made && strcmp(r->s->cwd, SBX_DEFAULT_CWD) == 0)
		sbx_files_mkdir_p(c, SBX_DEFAULT_CWD, on_workspace, r);
	else
		sbx_session_enter(r->s, run_in_session, r);
}

/* ---- berth's exec ---- */

void sbx_exec_call(struct sbx_call *c);

static void exec_fail(struct sbx_call *c, const char *code, const char *message)
{
	berth_http_respond_error(c->req, code[0] == 'n' ? 404 : 400, code, "%s", message);
	c->req = NULL;
	sbx_call_end(c);
}

void sbx_exec_call(struct sbx_call *c)
{
	json_t *argv_j = json_object_get(c->body, "argv"), *e, *env = NULL, *v;
	cleanup_free unsigned char *stdin_data = NULL;
	struct berth_container *ctr = berthd_lease_container(c->lease);
	const char *cwd = NULL, *enc = NULL;
	size_t stdin_len = 0, i;
	bool stream = false;
	char **argv, **envv;
	struct run *r;
	uint64_t t = 0;

	if (!json_is_array(argv_j) || json_array_size(argv_j) == 0)
		return exec_fail(c, "bad_request", "argv: must be a non-empty array of strings");
	json_array_foreach (argv_j, i, e)
		if (!json_is_string(e) || (i == 0 && json_string_length(e) == 0) ||
		    strlen(json_string_value(e)) != json_string_length(e))
			return exec_fail(c, "bad_request",
			                 "argv: must be a non-empty array of strings");
	v = json_object_get(c->body, "cwd");
	if (v != NULL && !json_is_null(v)) {
		cwd = json_string_value(v);
		if (cwd == NULL || cwd[0] != '/')
			return exec_fail(c, "bad_request", "cwd: must be an absolute path");
	}
	v = json_object_get(c->body, "env");
	if (v != NULL && !json_is_null(v)) {
		const char *k;
		if (!json_is_object(v))
			return exec_fail(c, "bad_request", "env: must be an object of strings");
		json_object_foreach (v, k, e)
			if (!json_is_string(e) || *k == '\0' || strchr(k, '=') != NULL ||
			    strlen(json_string_value(e)) != json_string_length(e))
				return exec_fail(c, "bad_request",
				                 "env: must be an object of strings");
		env = v;
	}
	v = json_object_get(c->body, "timeoutMs");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    (uint64_t)json_integer_value(v) > TIMEOUT_MAX_MS)
			return exec_fail(c, "bad_request",
			                 "timeoutMs: must be a number of milliseconds");
		t = (uint64_t)json_integer_value(v);
	}
	v = json_object_get(c->body, "stream");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_boolean(v))
			return exec_fail(c, "bad_request", "stream: must be true or false");
		stream = json_is_true(v);
	}
	v = json_object_get(c->body, "encoding");
	if (v != NULL && !json_is_null(v)) {
		enc = json_string_value(v);
		if (enc == NULL || (strcmp(enc, "utf-8") != 0 && strcmp(enc, "base64") != 0))
			return exec_fail(c, "bad_request",
			                 "encoding: must be \"utf-8\" or \"base64\"");
	}
	if ((v = json_object_get(c->body, "stdin")) != NULL && !json_is_null(v)) {
		if (!json_is_string(v))
			return exec_fail(c, "bad_request", "stdin: must be a string");
		stdin_len = json_string_length(v);
		stdin_data = xmalloc(stdin_len + 1);
		memcpy(stdin_data, json_string_value(v), stdin_len);
	} else if ((v = json_object_get(c->body, "stdinBase64")) != NULL && !json_is_null(v)) {
		if (!json_is_string(v) ||
		    berth_base64_decode(json_string_value(v), json_string_length(v), &stdin_data,
		                        &stdin_len) < 0)
			return exec_fail(c, "bad_request", "stdinBase64: must be base64");
	}
	if (stdin_len > STDIN_MAX)
		return exec_fail(c, "bad_request", "stdin: at most 16 MiB");

	r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->kind = stream ? RUN_EXEC_STREAM : RUN_EXEC;
	r->base64 = enc != NULL && strcmp(enc, "base64") == 0;
	r->timeout_ms = t;
	r->command = xstrdup(json_string_value(json_array_get(argv_j, 0)));
	argv = xcalloc(json_array_size(argv_j) + 1, sizeof(char *));
	json_array_foreach (argv_j, i, e)
		argv[i] = xstrdup(json_string_value(e));
	envv = env != NULL ? sbx_env_merge(berth_container_env(ctr), env) : NULL;
	run_start(r, argv, envv, cwd, stdin_data, stdin_len);
	berth_strv_free(argv);
	berth_strv_free(envv);
}

/* ---- git ---- */

static bool git_url_ok(const char *u)
{
	static const char *const schemes[] = {"https://", "http://", "git://", "ssh://", "file://"};

	if (*u == '\0' || *u == '-')
		return false;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strncmp(u, schemes[i], strlen(schemes[i])) == 0)
			return u[strlen(schemes[i])] != '\0';
	/* scp-like user@host:path, or a path inside the container */
	return u[0] == '/' || (strchr(u, '@') != NULL && strchr(u, ':') != NULL);
}

/* "https://host/org/repo.git" -> "repo" */
static char *repo_name(const char *url)
{
	size_t len = strlen(url);
	const char *end, *start;

	while (len > 0 && url[len - 1] == '/')
		len--;
	end = url + len;
	start = end;
	while (start > url && start[-1] != '/' && start[-1] != ':')
		start--;
	if (end - start > 4 && strncmp(end - 4, ".git", 4) == 0)
		end -= 4;
	return end > start ? xstrndup(start, (size_t)(end - start)) : xstrdup("repo");
}

static void git_go(void *arg, int err)
{
	struct run *r = arg;
	char *argv[10];
	size_t n = 0;
	cleanup_free char *depth = NULL;
	uint64_t d = 0;
	bool given = false;
	(void)err;

	/* Validated before: cannot fail now. */
	sbx_get_uint(r->c, "depth", 1000000, &d, &given);
	argv[n++] = (char *)"git";
	argv[n++] = (char *)"clone";
	if (given && d > 0) {
		depth = xasprintf("--depth=%llu", (unsigned long long)d);
		argv[n++] = depth;
	}
	if (r->branch != NULL) {
		argv[n++] = (char *)"--branch";
		argv[n++] = r->branch;
	}
	argv[n++] = (char *)"--";
	argv[n++] = r->repo;
	argv[n++] = r->target_dir;
	argv[n] = NULL;
	run_start(r, argv, NULL, SBX_DEFAULT_CWD, NULL, 0);
}

static void git_checkout(struct sbx_call *c)
{
	const char *url, *branch, *target;
	cleanup_free char *abs = NULL;
	struct run *r;
	uint64_t d = 0;

	if (!sbx_get_string(c, "repoUrl", true, &url) ||
	    !sbx_get_string(c, "branch", false, &branch) ||
	    !sbx_get_string(c, "targetDir", false, &target) ||
	    !sbx_get_uint(c, "depth", 1000000, &d, NULL))
		return;
	if (!git_url_ok(url))
		return sbx_call_fail(c, "INVALID_GIT_URL",
		                     "`%s` is not a git URL (https://, http://, git://, ssh://, "
		                     "file://, user@host:path)",
		                     url);
	if (branch != NULL && (*branch == '\0' || *branch == '-'))
		return sbx_call_fail(c, "VALIDATION_FAILED", "`branch` `%s` is not a branch name",
		                     branch);
	if (target != NULL) {
		abs = sbx_abs_path(c, target);
		if (abs == NULL)
			return;
	} else {
		cleanup_free char *name = repo_name(url);
		abs = xasprintf("%s/%s", SBX_DEFAULT_CWD, name);
	}
	r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->kind = RUN_GIT;
	r->repo = xstrdup(url);
	r->branch = branch != NULL ? xstrdup(branch) : NULL;
	r->target_dir = steal_pointer(&abs);
	r->command = xstrdup("git clone");
	if (!parse_timeout(c, r)) {
		run_free(r);
		return;
	}
	sbx_files_mkdir_p(c, SBX_DEFAULT_CWD, git_go, r);
}

/* ---- sessions ---- */

static void session_create(struct sbx_call *c)
{
	const char *id, *cwd;
	cleanup_free char *gen = NULL;
	struct sbx_session *s;
	uint64_t timeout = 0;
	json_t *env;

	if (!sbx_get_string(c, "id", false, &id) || !sbx_get_string(c, "cwd", false, &cwd) ||
	    !sbx_get_uint(c, "commandTimeoutMs", TIMEOUT_MAX_MS, &timeout, NULL))
		return;
	if (cwd != NULL && cwd[0] != '/')
		return sbx_call_fail(c, "VALIDATION_FAILED", "`cwd` must be an absolute path");
	if (id == NULL || *id == '\0') {
		gen = xasprintf("session-%llx", (unsigned long long)berthd_now_ms());
		id = gen;
	}
	if (strlen(id) > 256)
		return sbx_call_fail(c, "VALIDATION_FAILED", "`id` is longer than 256 characters");
	if (sbx_session_find(c->inst, id) != NULL) {
		sbx_respond_error(c->req, "SESSION_ALREADY_EXISTS",
		                  json_pack("{s:s}", "sessionId", id),
		                  "session `%s` already exists", id);
		c->req = NULL;
		sbx_call_end(c);
		return;
	}
	if (c->inst->n_sessions >= SBX_SESSIONS_MAX)
		return sbx_call_fail(c, "VALIDATION_FAILED", "too many sessions (at most %d)",
		                     SBX_SESSIONS_MAX);
	if (!sbx_get_env(c, "env", &env))
		return;
	s = sbx_session_new(c->inst, id, env, cwd);
	s->command_timeout_ms = timeout;
	json_decref(env);
	sbx_respond_ok(c->req, json_pack("{s:s, s:s, s:n}", "id", id, "message", "session created",
	                                 "containerPlacementId"));
	c->req = NULL;
	sbx_call_end(c);
}

static void session_list(struct sbx_call *c)
{
	json_t *list = json_array();

	for (struct sbx_session *s = c->inst->sessions; s != NULL; s = s->next)
		json_array_append_new(list, json_string(s->id));
	sbx_respond_ok(c->req, json_pack("{s:o}", "sessions", list));
	c->req = NULL;
	sbx_call_end(c);
}

static void session_delete(struct sbx_call *c)
{
	struct sbx_session **pp;
	const char *id;

	if (!sbx_get_string(c, "sessionId", true, &id))
		return;
	for (pp = &c->inst->sessions; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->id, id) == 0)
			break;
	if (*pp == NULL) {
		sbx_respond_error(c->req, "SESSION_NOT_FOUND", json_pack("{s:s}", "sessionId", id),
		                  "no session `%s`", id);
	} else if ((*pp)->busy) {
		sbx_respond_error(c->req, "RESOURCE_BUSY", json_pack("{s:s}", "sessionId", id),
		                  "session `%s` is running a command", id);
	} else {
		struct sbx_session *s = *pp;
		*pp = s->next;
		c->inst->n_sessions--;
		sbx_respond_ok(c->req, json_pack("{s:s}", "sessionId", id));
		sbx_session_free(s);
	}
	c->req = NULL;
	sbx_call_end(c);
}

/* ---- background processes ---- */

struct sbx_stream {
	struct berth_http_request *req;
	struct sbx_process *pr;
	bool behind;
	struct sbx_stream *next;
};

static char *iso_time(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[40];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	return xasprintf("%s.%03dZ", buf, (int)(ms % 1000));
}

static json_t *process_json(const struct sbx_process *pr)
{
	cleanup_free char *start = iso_time(pr->start_ms);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "id", pr->id, "command", pr->command,
	                      "status", pr->status, "startTime", start);

	if (pr->pid > 0)
		json_object_set_new(o, "pid", json_integer(pr->pid));
	if (pr->session_id != NULL)
		json_object_set_new(o, "sessionId", json_string(pr->session_id));
	if (pr->has_exit) {
		cleanup_free char *end = iso_time(pr->end_ms);
		json_object_set_new(o, "exitCode", json_integer(pr->exit_code));
		json_object_set_new(o, "endTime", json_string(end));
	}
	return o;
}

static struct sbx_process *process_find(struct sbx_inst *si, const char *id)
{
	for (struct sbx_process *pr = si->procs; pr != NULL; pr = pr->next)
		if (strcmp(pr->id, id) == 0)
			return pr;
	return NULL;
}

void sbx_process_free(struct sbx_process *pr)
{
	free(pr->id);
	free(pr->command);
	free(pr->session_id);
	free(pr->out[0]);
	free(pr->out[1]);
	free(pr);
}

/* Room for one more record: the oldest finished one nobody watches goes. */
static bool process_room(struct sbx_inst *si)
{
	struct sbx_process **pp, **oldest = NULL;

	if (si->n_procs < SBX_PROCS_MAX)
		return true;
	for (pp = &si->procs; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->proc == NULL && (*pp)->streams == NULL && (*pp)->exit_waiters == NULL)
			oldest = pp;
	if (oldest == NULL)
		return false;
	{
		struct sbx_process *pr = *oldest;
		*oldest = pr->next;
		sbx_process_free(pr);
		si->n_procs--;
	}
	return true;
}

static void stream_end(struct sbx_stream *st)
{
	struct sbx_stream **pp;

	for (pp = &st->pr->streams; *pp != NULL; pp = &(*pp)->next)
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	berth_http_stream_end(st->req);
	free(st);
}

static void process_flow(struct sbx_process *pr)
{
	bool behind = false;

	for (struct sbx_stream *st = pr->streams; st != NULL; st = st->next)
		behind |= st->behind;
	if (pr->proc != NULL)
		sbx_proc_pause(pr->proc, behind);
}

static void on_stream_drain(struct berth_http_request *req, void *arg)
{
	struct sbx_stream *st = arg;
	(void)req;

	st->behind = false;
	process_flow(st->pr);
}

static void on_stream_gone(struct berth_http_request *req, void *arg)
{
	struct sbx_stream *st = arg;
	struct sbx_process *pr = st->pr;
	(void)req;

	stream_end(st);
	process_flow(pr);
}

static void stream_send(struct sbx_stream *st, json_t *ev)
{
	int w = sbx_sse_send(st->req, ev);

	if (w == 1 && !st->behind) {
		st->behind = true;
		berth_http_stream_on_drain(st->req, 256 * 1024, on_stream_drain, st);
		process_flow(st->pr);
	}
}

static void process_output(struct sbx_proc *p, int stream, const char *data, size_t len)
{
	struct sbx_process *pr = p->data;
	size_t room = SBX_OUTPUT_MAX - pr->out_len[stream - 1];
	size_t n = len < room ? len : room;
	size_t from = pr->out_len[stream - 1];

	/* Kept as bytes; events carry whole UTF-8 characters. */
	pr->out[stream - 1] = xrealloc(pr->out[stream - 1], from + n + 1);
	memcpy(pr->out[stream - 1] + from, data, n);
	pr->out_len[stream - 1] += n;
	pr->out[stream - 1][pr->out_len[stream - 1]] = '\0';
	if (pr->streams != NULL && n > 0) {
		/* Whole characters only: what ends mid-character goes with the next piece. */
		size_t sent = pr->out_len[stream - 1] - n;
		const char *all = pr->out[stream - 1];
		size_t start = sent - sbx_utf8_tail(all, sent);
		size_t end = pr->out_len[stream - 1] - sbx_utf8_tail(all, pr->out_len[stream - 1]);

		if (end > start)
			for (struct sbx_stream *st = pr->streams, *next; st != NULL; st = next) {
				next = st->next;
				stream_send(st, json_pack("{s:s, s:o, s:s}", "type",
				                          stream == 1 ? "stdout" : "stderr", "data",
				                          sbx_json_text(all + start, end - start),
				                          "processId", pr->id));
			}
	}
}

static void process_exited(struct sbx_proc *p)
{
	struct sbx_process *pr = p->data;
	struct berthd_lease *lease = pr->lease;

	pr->has_exit = true;
	pr->exit_code = p->exit_code;
	pr->end_ms = berthd_now_ms();
	pr->status = p->container_died   ? "error"
	             : p->killed         ? "killed"
	             : p->exit_code == 0 ? "completed"
	                                 : "failed";
	while (pr->streams != NULL) {
		struct sbx_stream *st = pr->streams;
		cleanup_free char *msg =
		        xasprintf("Process %s with exit code %d", pr->status, pr->exit_code);
		sbx_sse_send(st->req, json_pack("{s:s, s:s, s:i, s:s}", "type", "exit", "processId",
		                                pr->id, "exitCode", pr->exit_code, "data", msg));
		stream_end(st);
	}
	while (pr->exit_waiters != NULL) {
		struct sbx_waiter *w = pr->exit_waiters;
		pr->exit_waiters = w->next;
		w->fn(w->arg);
		free(w);
	}
	sbx_proc_release(steal_pointer(&pr->proc));
	pr->lease = NULL;
	berthd_lease_release(lease);
}

static void process_started(struct sbx_proc *p, const berth_error_t *err)
{
	struct sbx_process *pr = p->data;
	struct sbx_call *c = pr->start_call;

	pr->start_call = NULL;
	if (err != NULL) {
		bool missing = err->kind == BERTH_ERROR_KIND_EXEC && err->code == ENOENT;
		pr->status = "error";
		pr->has_exit = true;
		pr->exit_code = missing ? 127 : 126;
		pr->end_ms = berthd_now_ms();
		sbx_proc_release(steal_pointer(&pr->proc));
		berthd_lease_release(steal_pointer(&pr->lease));
		sbx_call_fail(c, missing ? "COMMAND_NOT_FOUND" : "PROCESS_ERROR", "%s",
		              err->message);
		return;
	}
	pr->pid = p->pid;
	pr->status = "running";
	if (c->req != NULL)
		sbx_respond_ok(c->req, json_pack("{s:s, s:i, s:s}", "processId", pr->id, "pid",
		                                 (int)pr->pid, "command", pr->command));
	c->req = NULL;
	sbx_call_end(c);
}

static const struct sbx_proc_ops process_ops = {process_started, process_output, process_exited};

static void process_start(struct sbx_call *c)
{
	const char *command, *id, *cwd;
	struct sbx_session *s;
	struct sbx_process *pr;
	struct sbx_proc_spec spec = {.tty = -1};
	uint64_t t = 0;
	char **argv;
	json_t *env;

	if (!sbx_get_string(c, "command", true, &command) ||
	    !sbx_get_string(c, "processId", false, &id) || !sbx_get_string(c, "cwd", false, &cwd) ||
	    !sbx_get_uint(c, "timeoutMs", TIMEOUT_MAX_MS, &t, NULL))
		return;
	if (*command == '\0')
		return sbx_call_fail(c, "INVALID_COMMAND", "`command` is empty");
	if (cwd != NULL && cwd[0] != '/')
		return sbx_call_fail(c, "VALIDATION_FAILED", "`cwd` must be an absolute path");
	if (id != NULL && (*id == '\0' || strlen(id) > 128 || strchr(id, '/') != NULL))
		return sbx_call_fail(c, "VALIDATION_FAILED",
		                     "`processId` must be 1 to 128 characters without '/'");
	if (id != NULL && process_find(c->inst, id) != NULL)
		return sbx_call_fail(c, "PROCESS_ERROR", "a process `%s` exists already", id);
	if (!process_room(c->inst))
		return sbx_call_fail(c, "PROCESS_ERROR", "too many processes (at most %d)",
		                     SBX_PROCS_MAX);
	s = sbx_call_session(c);
	if (s == NULL)
		return sbx_call_fail(c, "VALIDATION_FAILED", "too many sessions (at most %d)",
		                     SBX_SESSIONS_MAX);
	if (!sbx_get_env(c, "env", &env))
		return;
	pr = xcalloc(1, sizeof(*pr));
	pr->inst = c->inst;
	pr->id = id != NULL ? xstrdup(id)
	                    : xasprintf("proc-%llu", (unsigned long long)++c->inst->next_proc);
	pr->command = xstrdup(command);
	pr->session_id = xstrdup(s->id);
	pr->status = "starting";
	pr->start_ms = berthd_now_ms();
	pr->next = c->inst->procs;
	c->inst->procs = pr;
	c->inst->n_procs++;
	/* The process keeps the instance awake for as long as it runs. */
	pr->lease = sbx_call_take_lease(c);
	pr->start_call = c;
	/* A process does not change its session: it runs beside the commands. */
	argv = sbx_session_argv(s, command, env, cwd, false);
	spec.argv = argv;
	spec.cwd = "/";
	spec.timeout_ms = t;
	pr->proc = sbx_proc_start(c->d, pr->lease, &spec, &process_ops, pr);
	berth_strv_free(argv);
	json_decref(env);
}

static void process_list(struct sbx_call *c)
{
	json_t *list = json_array();

	for (struct sbx_process *pr = c->inst->procs; pr != NULL; pr = pr->next)
		json_array_insert_new(list, 0, process_json(pr));
	sbx_respond_ok(c->req, json_pack("{s:o}", "processes", list));
	c->req = NULL;
	sbx_call_end(c);
}

struct kill_wait {
	struct sbx_call *c;
	char *id;
	int left;
	int count;
};

static void kill_answered(void *arg)
{
	struct kill_wait *k = arg;

	if (--k->left > 0)
		return;
	if (k->id != NULL)
		sbx_respond_ok(k->c->req,
		               json_pack("{s:s, s:s}", "processId", k->id, "signal", "SIGKILL"));
	else
		sbx_respond_ok(k->c->req, json_pack("{s:i, s:i}", "cleanedCount", k->count,
		                                    "killedCount", k->count));
	k->c->req = NULL;
	sbx_call_end(k->c);
	free(k->id);
	free(k);
}

static void wait_exit(struct sbx_process *pr, struct kill_wait *k)
{
	struct sbx_waiter *w = xcalloc(1, sizeof(*w));

	w->fn = kill_answered;
	w->arg = k;
	w->next = pr->exit_waiters;
	pr->exit_waiters = w;
	k->left++;
	sbx_proc_kill(pr->proc);
}

/*
 * DELETE .../api/process/ID?signal=TERM (berth's, beyond the SDK, which
 * sends none): a signal other than KILL goes to the process and its group
 * and the answer comes at once; the process may handle it, or not end.
 */
static bool process_signal(struct sbx_call *c, struct sbx_process *pr)
{
	cleanup_free char *given = berth_http_query_param(c->req, "signal");
	berth_error_t err;
	int sig, r;

	if (given == NULL)
		return false;
	if (berth_parse_signal(given, &sig, &err) < 0) {
		sbx_call_fail(c, "VALIDATION_FAILED", "`signal`: %s", err.message);
		return true;
	}
	if (sig == SIGKILL)
		return false;
	r = pr->proc != NULL && !pr->has_exit ? sbx_proc_signal(pr->proc, sig) : -ESRCH;
	if (r == -ESRCH) {
		sbx_call_fail(c, "PROCESS_NOT_FOUND", "process `%s` has ended", pr->id);
		return true;
	}
	if (r < 0) {
		sbx_call_fail(c, "PROCESS_ERROR", "signal process `%s`: %s", pr->id, strerror(-r));
		return true;
	}
	sbx_respond_ok(c->req,
	               json_pack("{s:s, s:s}", "processId", pr->id, "signal",
	                         berth_signal_name(sig) != NULL ? berth_signal_name(sig) : given));
	c->req = NULL;
	sbx_call_end(c);
	return true;
}

static void process_kill(struct sbx_call *c, struct sbx_process *pr)
{
	struct kill_wait *k;

	if (process_signal(c, pr))
		return;
	k = xcalloc(1, sizeof(*k));

	k->c = c;
	k->id = xstrdup(pr->id);
	/* One for ourselves, so that an answer comes even with nothing to wait for. */
	k->left = 1;
	if (pr->proc != NULL && !pr->has_exit)
		wait_exit(pr, k);
	kill_answered(k);
}

static void process_kill_all(struct sbx_call *c)
{
	struct kill_wait *k = xcalloc(1, sizeof(*k));

	k->c = c;
	k->left = 1;
	for (struct sbx_process *pr = c->inst->procs; pr != NULL; pr = pr->next)
		if (pr->proc != NULL && !pr->has_exit && pr->start_call == NULL) {
			k->count++;
			wait_exit(pr, k);
		}
	kill_answered(k);
}

static void process_logs(struct sbx_call *c, struct sbx_process *pr)
{
	sbx_respond_ok(c->req,
	               json_pack("{s:s, s:o, s:o}", "processId", pr->id, "stdout",
	                         sbx_json_text(pr->out[0] ? pr->out[0] : "", pr->out_len[0]),
	                         "stderr",
	                         sbx_json_text(pr->out[1] ? pr->out[1] : "", pr->out_len[1])));
	c->req = NULL;
	sbx_call_end(c);
}

static void process_stream(struct sbx_call *c, struct sbx_process *pr)
{
	struct sbx_stream *st;

	sbx_sse_begin(c->req);
	sbx_sse_send(c->req, json_pack("{s:s, s:s, s:s, s:s}", "type", "process_info", "processId",
	                               pr->id, "command", pr->command, "status", pr->status));
	for (int i = 0; i < 2; i++) {
		size_t whole = pr->out_len[i] - sbx_utf8_tail(pr->out[i], pr->out_len[i]);
		if (pr->out_len[i] > 0 && whole > 0)
			sbx_sse_send(c->req, json_pack("{s:s, s:o, s:s}", "type",
			                               i == 0 ? "stdout" : "stderr", "data",
			                               sbx_json_text(pr->out[i], whole),
			                               "processId", pr->id));
	}
	if (pr->has_exit) {
		cleanup_free char *msg =
		        xasprintf("Process %s with exit code %d", pr->status, pr->exit_code);
		sbx_sse_send(c->req, json_pack("{s:s, s:s, s:i, s:s}", "type", "exit", "processId",
		                               pr->id, "exitCode", pr->exit_code, "data", msg));
		berth_http_stream_end(c->req);
	} else {
		st = xcalloc(1, sizeof(*st));
		st->req = c->req;
		st->pr = pr;
		st->next = pr->streams;
		pr->streams = st;
		berth_http_request_on_gone(c->req, on_stream_gone, st);
	}
	c->req = NULL;
	sbx_call_end(c);
}

static void process_endpoint(struct sbx_call *c, const char *rest)
{
	const char *method = c->req->method;
	const char *slash = strchr(rest, '/');
	cleanup_free char *id =
	        slash != NULL ? xstrndup(rest, (size_t)(slash - rest)) : xstrdup(rest);
	const char *action = slash != NULL ? slash + 1 : NULL;
	struct sbx_process *pr;

	if (strcmp(rest, "start") == 0)
		return process_start(c);
	if (strcmp(rest, "list") == 0)
		return process_list(c);
	if (strcmp(rest, "kill-all") == 0)
		return process_kill_all(c);
	pr = process_find(c->inst, id);
	if (pr == NULL) {
		sbx_respond_error(c->req, "PROCESS_NOT_FOUND", json_pack("{s:s}", "processId", id),
		                  "no process `%s`", id);
		c->req = NULL;
		sbx_call_end(c);
		return;
	}
	if (action == NULL && strcmp(method, "DELETE") == 0)
		return process_kill(c, pr);
	if (action == NULL) {
		sbx_respond_ok(c->req, json_pack("{s:o}", "process", process_json(pr)));
		c->req = NULL;
		sbx_call_end(c);
		return;
	}
	if (strcmp(action, "logs") == 0)
		return process_logs(c, pr);
	if (strcmp(action, "stream") == 0)
		return process_stream(c, pr);
	sbx_call_fail(c, "INVALID_COMMAND", "no such process endpoint: %s", action);
}

bool sbx_commands_serve(struct sbx_call *c)
{
	const char *p = c->path;

	if (strcmp(p, "/api/execute") == 0 && json_is_true(json_object_get(c->body, "background")))
		process_start(c); /* the SDK's ExecuteRequest.background: a process */
	else if (strcmp(p, "/api/execute") == 0)
		execute(c, false);
	else if (strcmp(p, "/api/execute/stream") == 0)
		execute(c, true);
	else if (strncmp(p, "/api/process/", 13) == 0 && p[13] != '\0')
		process_endpoint(c, p + 13);
	else if (strcmp(p, "/api/session/create") == 0)
		session_create(c);
	else if (strcmp(p, "/api/session/list") == 0)
		session_list(c);
	else if (strcmp(p, "/api/session/delete") == 0)
		session_delete(c);
	else if (strcmp(p, "/api/git/checkout") == 0)
		git_checkout(c);
	else if (strcmp(p, "/api/port-watch") == 0)
		sbx_port_watch(c);
	else if (strcmp(p, "/api/commands") == 0)
		sbx_files_commands(c);
	else if (strcmp(p, "/api/watch") == 0)
		sbx_watch(c);
	else
		return false;
	return true;
}
