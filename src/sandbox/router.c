/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox protocol's front: a call is parsed, the instance leased
 * (started if need be), its sandbox state found (reset when its container
 * is a new one), and the call handed to commands.c or files.c. Answers and
 * errors have the SDK's shapes, so that its typed errors come out right.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "berth/log.h"
#include "berth/runtime.h"
#include "berth/trace.h"
#include "berth/util.h"
#include "berth/version.h"
#include "sandbox/sandbox-internal.h"
#include "sandbox/sandbox.h"

/* The SDK's error codes and their statuses (its errors/status map). */
static const struct {
	const char *code;
	int status;
} code_status[] = {
        {"FILE_NOT_FOUND", 404},
        {"COMMAND_NOT_FOUND", 404},
        {"PROCESS_NOT_FOUND", 404},
        {"SESSION_NOT_FOUND", 404},
        {"GIT_REPOSITORY_NOT_FOUND", 404},
        {"GIT_BRANCH_NOT_FOUND", 404},
        {"IS_DIRECTORY", 400},
        {"NOT_DIRECTORY", 400},
        {"INVALID_COMMAND", 400},
        {"INVALID_GIT_URL", 400},
        {"INVALID_PORT", 400},
        {"INVALID_PORT_NUMBER", 400},
        {"NAME_TOO_LONG", 400},
        {"VALIDATION_FAILED", 400},
        {"GIT_AUTH_FAILED", 401},
        {"PERMISSION_DENIED", 403},
        {"COMMAND_PERMISSION_DENIED", 403},
        {"PROCESS_PERMISSION_DENIED", 403},
        {"READ_ONLY", 403},
        {"FILE_EXISTS", 409},
        {"RESOURCE_BUSY", 409},
        {"SESSION_ALREADY_EXISTS", 409},
        {"FILE_TOO_LARGE", 413},
        {"GIT_NETWORK_ERROR", 502},
        {"CONTAINER_UNAVAILABLE", 503},
        {"NO_SPACE", 500},
        {"TOO_MANY_FILES", 500},
        {"TOO_MANY_LINKS", 500},
        {"FILESYSTEM_ERROR", 500},
        {"COMMAND_EXECUTION_ERROR", 500},
        {"STREAM_START_ERROR", 500},
        {"PROCESS_ERROR", 500},
        {"GIT_CLONE_FAILED", 500},
        {"GIT_OPERATION_FAILED", 500},
        {"INTERNAL_ERROR", 500},
};

int sbx_code_status(const char *code)
{
	for (size_t i = 0; i < sizeof(code_status) / sizeof(code_status[0]); i++)
		if (strcmp(code_status[i].code, code) == 0)
			return code_status[i].status;
	return 500;
}

const char *sbx_errno_code(int errnum)
{
	switch (errnum) {
	case ENOENT:
		return "FILE_NOT_FOUND";
	case EEXIST:
	case ENOTEMPTY:
		return "FILE_EXISTS";
	case EACCES:
	case EPERM:
	case EXDEV:
	case ELOOP: /* also a /proc magic link, which RESOLVE_NO_MAGICLINKS refuses */
		return "PERMISSION_DENIED";
	case EROFS:
		return "READ_ONLY";
	case EISDIR:
		return "IS_DIRECTORY";
	case ENOTDIR:
		return "NOT_DIRECTORY";
	case ENAMETOOLONG:
		return "NAME_TOO_LONG";
	case ENOSPC:
	case EDQUOT:
		return "NO_SPACE";
	case EMFILE:
	case ENFILE:
		return "TOO_MANY_FILES";
	case EBUSY:
		return "RESOURCE_BUSY";
	case EFBIG:
		return "FILE_TOO_LARGE";
	default:
		return "FILESYSTEM_ERROR";
	}
}

void sbx_timestamp(char buf[32])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void sbx_respond_error(struct berth_http_request *req, const char *code, json_t *context,
                       const char *fmt, ...)
{
	cleanup_free char *message = NULL;
	int status = sbx_code_status(code);
	char ts[32];
	va_list ap;

	va_start(ap, fmt);
	message = xvasprintf(fmt, ap);
	va_end(ap);
	sbx_timestamp(ts);
	berth_http_respond_json(req, status,
	                        json_pack("{s:s, s:s, s:o, s:i, s:s}", "code", code, "message",
	                                  message, "context",
	                                  context != NULL ? context : json_object(), "httpStatus",
	                                  status, "timestamp", ts));
}

void sbx_respond_ok(struct berth_http_request *req, json_t *body)
{
	char ts[32];

	sbx_timestamp(ts);
	if (json_object_get(body, "success") == NULL)
		json_object_set_new(body, "success", json_true());
	json_object_set_new(body, "timestamp", json_string(ts));
	berth_http_respond_json(req, 200, body);
}

void sbx_sse_begin(struct berth_http_request *req)
{
	berth_http_stream_begin(req, 200, "text/event-stream",
	                        "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
}

int sbx_sse_send(struct berth_http_request *req, json_t *ev)
{
	cleanup_free char *text = NULL;
	cleanup_free char *frame = NULL;
	char ts[32];

	sbx_timestamp(ts);
	if (json_object_get(ev, "timestamp") == NULL)
		json_object_set_new(ev, "timestamp", json_string(ts));
	text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	frame = xasprintf("data: %s\n\n", text);
	return berth_http_stream_write(req, frame, strlen(frame));
}

/* ---- body members ---- */

static bool wrong_type(struct sbx_call *c, const char *key, const char *want)
{
	sbx_call_fail(c, "VALIDATION_FAILED", "`%s` must be %s", key, want);
	return false;
}

bool sbx_get_string(struct sbx_call *c, const char *key, bool required, const char **out)
{
	json_t *v = json_object_get(c->body, key);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required) {
			sbx_call_fail(c, "VALIDATION_FAILED", "`%s` is required", key);
			return false;
		}
		return true;
	}
	if (!json_is_string(v))
		return wrong_type(c, key, "a string");
	/* A NUL would cut a path or a command short where C sees it. */
	if (strlen(json_string_value(v)) != json_string_length(v))
		return wrong_type(c, key, "a string without NUL characters");
	*out = json_string_value(v);
	return true;
}

bool sbx_get_uint(struct sbx_call *c, const char *key, uint64_t max, uint64_t *out, bool *given)
{
	json_t *v = json_object_get(c->body, key);

	if (given != NULL)
		*given = false;
	if (v == NULL || json_is_null(v))
		return true;
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    (uint64_t)json_integer_value(v) <= max) {
		*out = (uint64_t)json_integer_value(v);
	} else if (json_is_real(v) && json_real_value(v) >= 0 &&
	           json_real_value(v) <= (double)max) {
		*out = (uint64_t)json_real_value(v);
	} else {
		sbx_call_fail(c, "VALIDATION_FAILED", "`%s` must be a number from 0 to %llu", key,
		              (unsigned long long)max);
		return false;
	}
	if (given != NULL)
		*given = true;
	return true;
}

bool sbx_get_bool(struct sbx_call *c, const char *key, bool *out)
{
	json_t *v = json_object_get(c->body, key);

	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_boolean(v))
		return wrong_type(c, key, "true or false");
	*out = json_is_true(v);
	return true;
}

/* A shell variable name: only those can be exported. */
static bool env_name_ok(const char *k)
{
	if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_'))
		return false;
	for (k++; *k != '\0'; k++)
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
		      (*k >= '0' && *k <= '9') || *k == '_'))
			return false;
	return true;
}

bool sbx_get_env(struct sbx_call *c, const char *key, json_t **out)
{
	json_t *v = json_object_get(c->body, key), *e, *o;
	const char *k;

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_object(v))
		return wrong_type(c, key, "an object of strings");
	o = json_object();
	json_object_foreach (v, k, e) {
		if (json_is_null(e))
			continue; /* undefined in the SDK: not configured */
		if (!json_is_string(e) || !env_name_ok(k) ||
		    strlen(json_string_value(e)) != json_string_length(e)) {
			json_decref(o);
			sbx_call_fail(c, "VALIDATION_FAILED",
			              "`%s`: `%s` must be a variable name with a string value", key,
			              k);
			return false;
		}
		json_object_set(o, k, e);
	}
	*out = o;
	return true;
}

/* ---- per-instance state ---- */

static struct berthd_sandbox *sandbox_of(struct berthd *d)
{
	if (d->sandbox == NULL)
		d->sandbox = xcalloc(1, sizeof(*d->sandbox));
	return d->sandbox;
}

static void inst_reset(struct sbx_inst *si)
{
	struct sbx_process **pp = &si->procs;

	while (si->sessions != NULL) {
		struct sbx_session *s = si->sessions;
		if (s->busy)
			break; /* a command of the old container still ends; unlikely and harmless
			        */
		si->sessions = s->next;
		sbx_session_free(s);
		si->n_sessions--;
	}
	/* Finished processes were the old container's; running ones end with it. */
	while (*pp != NULL) {
		struct sbx_process *pr = *pp;
		if (pr->proc == NULL && pr->streams == NULL && pr->exit_waiters == NULL) {
			*pp = pr->next;
			sbx_process_free(pr);
			si->n_procs--;
		} else {
			pp = &pr->next;
		}
	}
	si->workspace_made = false;
}

static struct sbx_inst *inst_for(struct berthd *d, struct berthd_lease *l)
{
	struct berthd_sandbox *sb = sandbox_of(d);
	struct berth_container *ctr = berthd_lease_container(l);
	pid_t pid = ctr != NULL ? berth_container_pid(ctr) : 0;
	const char *id = berthd_lease_id(l);
	struct sbx_inst *si;

	for (si = sb->insts; si != NULL; si = si->next)
		if (strcmp(si->id, id) == 0)
			break;
	if (si == NULL) {
		si = xcalloc(1, sizeof(*si));
		si->d = d;
		snprintf(si->id, sizeof(si->id), "%s", id);
		si->next = sb->insts;
		sb->insts = si;
	}
	if (si->init_pid != pid) {
		inst_reset(si);
		si->init_pid = pid;
	}
	return si;
}

/* ---- calls ---- */

void sbx_call_end(struct sbx_call *c)
{
	if (c->lease != NULL)
		berthd_lease_release(c->lease);
	json_decref(c->body);
	free(c->path);
	free(c->class_name);
	free(c->name);
	free(c);
}

static void call_verror(struct sbx_call *c, const char *code, json_t *context, const char *fmt,
                        va_list ap)
{
	cleanup_free char *message = xvasprintf(fmt, ap);
	char lower[64];
	size_t i;

	if (c->req == NULL) {
		json_decref(context);
		return;
	}
	if (!c->berth_api) {
		sbx_respond_error(c->req, code, context, "%s", message);
		c->req = NULL;
		return;
	}
	/* berth's own codes are the SDK's, in lower case: file_not_found. */
	for (i = 0; code[i] != '\0' && i < sizeof(lower) - 1; i++)
		lower[i] = (char)tolower((unsigned char)code[i]);
	lower[i] = '\0';
	json_decref(context);
	berth_http_respond_error(c->req, sbx_code_status(code), lower, "%s", message);
	c->req = NULL;
}

void sbx_call_error(struct sbx_call *c, const char *code, json_t *context, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	call_verror(c, code, context, fmt, ap);
	va_end(ap);
}

void sbx_call_fail(struct sbx_call *c, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	call_verror(c, code, NULL, fmt, ap);
	va_end(ap);
	sbx_call_end(c);
}

struct berthd_lease *sbx_call_take_lease(struct sbx_call *c)
{
	return steal_pointer(&c->lease);
}

static void ping(struct sbx_call *c)
{
	sbx_respond_ok(c->req, json_pack("{s:s}", "message", "pong"));
	c->req = NULL;
	sbx_call_end(c);
}

static void version(struct sbx_call *c)
{
	sbx_respond_ok(c->req,
	               json_pack("{s:s, s:s}", "version", BERTH_VERSION, "server", "berthd"));
	c->req = NULL;
	sbx_call_end(c);
}

static void dispatch(struct sbx_call *c)
{
	const char *p = c->path;

	if (strcmp(p, "/api/ping") == 0 || strcmp(p, "/api/health") == 0)
		return ping(c);
	if (strcmp(p, "/api/version") == 0)
		return version(c);
	if (strncmp(p, "/api/", 5) == 0 && sbx_files_serve(c, p + 5))
		return;
	if (sbx_commands_serve(c))
		return;
	sbx_call_fail(c, "INVALID_COMMAND", "no such sandbox endpoint: %s %s", c->req->method, p);
}

static void on_leased(const struct berthd_start_result *res, struct berthd_lease *lease, void *arg)
{
	struct sbx_call *c = arg;

	if (res->status != 0) {
		/* 503 (all max_instances busy) keeps its meaning: the SDK retries it. */
		sbx_call_fail(c, res->status == 503 ? "CONTAINER_UNAVAILABLE" : "INTERNAL_ERROR",
		              "%s/%s: %s", c->class_name, c->name, res->message);
		return;
	}
	c->lease = lease;
	if (c->req == NULL || berth_http_request_gone(c->req)) {
		if (c->req != NULL)
			berth_http_respond(c->req, 499, "text/plain", NULL, "", 0);
		c->req = NULL;
		sbx_call_end(c);
		return;
	}
	if (berthd_lease_container(lease) == NULL) {
		sbx_call_fail(c, "INTERNAL_ERROR", "%s/%s: its container has just ended",
		              c->class_name, c->name);
		return;
	}
	c->inst = inst_for(c->d, lease);
	BERTH_TRACE("sandbox: instance leased");
	c->handler(c);
}

/* A call of `handler`, with its body parsed; NULL when answered already (a bad body). */
static struct sbx_call *call_new(struct berthd *d, struct berth_http_request *req,
                                 const struct berth_config_class *cls, const char *name,
                                 const char *path, bool json_body)
{
	struct sbx_call *c;
	json_error_t jerr;
	json_t *body;

	BERTH_TRACE("sandbox: call received");
	if (d->sandbox != NULL && d->sandbox->stopping) {
		sbx_respond_error(req, "CONTAINER_UNAVAILABLE", NULL, "berthd is shutting down");
		return NULL;
	}
	if (req->body_len == 0 || !json_body) {
		body = json_object();
	} else {
		body = json_loadb(req->body, req->body_len, JSON_ALLOW_NUL, &jerr);
		if (body == NULL || !json_is_object(body)) {
			json_decref(body);
			sbx_respond_error(req, "VALIDATION_FAILED", NULL,
			                  "the request body must be a JSON object%s%s",
			                  body == NULL ? ": " : "", body == NULL ? jerr.text : "");
			return NULL;
		}
	}
	c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->req = req;
	c->body = body;
	c->path = xstrdup(path);
	c->class_name = xstrdup(cls->class_name);
	c->name = xstrdup(name);
	return c;
}

void berthd_sandbox_serve(struct berthd *d, struct berth_http_request *req,
                          const struct berth_config_class *cls, const char *name, const char *path)
{
	struct sbx_call *c = call_new(d, req, cls, name, path, true);

	if (c == NULL)
		return;
	c->handler = dispatch;
	berthd_instance_acquire(d, cls, name, on_leased, c);
}

/* commands.c's handler of berth's own exec. */
void sbx_exec_call(struct sbx_call *c);

void berthd_sandbox_exec(struct berthd *d, struct berth_http_request *req,
                         const struct berth_config_class *cls, const char *name)
{
	struct sbx_call *c = call_new(d, req, cls, name, "exec", true);

	if (c == NULL)
		return;
	c->berth_api = true;
	c->handler = sbx_exec_call;
	berthd_instance_acquire(d, cls, name, on_leased, c);
}

/* tty.c's handler of an interactive exec. */
void sbx_tty_call(struct sbx_call *c);

void berthd_sandbox_exec_tty(struct berthd *d, struct berth_http_request *req,
                             const struct berth_config_class *cls, const char *name)
{
	struct sbx_call *c = call_new(d, req, cls, name, "exec", false);

	if (c == NULL)
		return;
	c->berth_api = true;
	c->handler = sbx_tty_call;
	berthd_instance_acquire(d, cls, name, on_leased, c);
}

void berthd_sandbox_files(struct berthd *d, struct berth_http_request *req,
                          const struct berth_config_class *cls, const char *name)
{
	struct sbx_call *c = call_new(d, req, cls, name, "files", false);

	if (c == NULL)
		return;
	c->berth_api = true;
	c->handler = sbx_files_raw;
	berthd_instance_acquire(d, cls, name, on_leased, c);
}

void berthd_sandbox_shutdown(struct berthd *d)
{
	struct berthd_sandbox *sb = d->sandbox;

	if (sb == NULL)
		return;
	sb->stopping = true;
	/* Commands and background processes alike: their leases hold their instances. */
	sbx_proc_kill_all(d);
}

void berthd_sandbox_free(struct berthd *d)
{
	struct berthd_sandbox *sb = d->sandbox;

	if (sb == NULL)
		return;
	while (sb->insts != NULL) {
		struct sbx_inst *si = sb->insts;
		sb->insts = si->next;
		while (si->sessions != NULL) {
			struct sbx_session *s = si->sessions;
			si->sessions = s->next;
			sbx_session_free(s);
		}
		while (si->procs != NULL) {
			struct sbx_process *pr = si->procs;
			si->procs = pr->next;
			sbx_process_free(pr);
		}
		free(si);
	}
	free(sb);
	d->sandbox = NULL;
}
