/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control API (JSON over HTTP, versioned under /v1). Errors are
 * {"error": {"code", "message"}} with a fitting status. Reading state or
 * records never renews an instance's activity.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <strings.h>

#include "berth/parse.h"
#include "berth/util.h"
#include "berth/version.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/images.h"
#include "daemon/instances.h"
#include "daemon/logs.h"
#include "proxy/proxy.h"
#include "sandbox/sandbox.h"

#define MAX_SEGMENTS 16

struct route_args {
	struct berthd *d;
	struct berth_http_request *req;
	char *seg[MAX_SEGMENTS]; /* the path's segments after /v1 */
	size_t n;
};

static void not_found(struct route_args *a)
{
	berth_http_respond_error(a->req, 404, "not_found", "no such endpoint: %s %s",
	                         a->req->method, a->req->path);
}

static bool method_is(struct route_args *a, const char *method)
{
	if (strcmp(a->req->method, method) == 0 ||
	    (strcmp(method, "GET") == 0 && strcmp(a->req->method, "HEAD") == 0))
		return true;
	berth_http_respond_error(a->req, 405, "method_not_allowed", "%s %s: use %s", a->req->method,
	                         a->req->path, method);
	return false;
}

static void get_health(struct route_args *a)
{
	if (!method_is(a, "GET"))
		return;
	berth_http_respond_json(a->req, 200,
	                        json_pack("{s:s, s:s, s:I, s:I}", "status", "ok", "version",
	                                  BERTH_VERSION, "uptimeMs",
	                                  (json_int_t)(berthd_now_ms() - (int64_t)a->d->started_ms),
	                                  "classes", (json_int_t)a->d->config->n_classes));
}

static void get_classes(struct route_args *a)
{
	json_t *list = json_array();

	if (!method_is(a, "GET")) {
		json_decref(list);
		return;
	}
	for (size_t i = 0; i < a->d->config->n_classes; i++)
		json_array_append_new(list, berthd_class_json(&a->d->config->classes[i]));
	berth_http_respond_json(a->req, 200, json_pack("{s:o}", "classes", list));
}

/* The record as the API shows it; `state` alone is what GET .../state returns. */
static json_t *state_json(const struct berth_registry_instance *r)
{
	json_t *o = json_pack("{s:s, s:I}", "status", berth_state_name(r->state), "lastChange",
	                      (json_int_t)r->last_change_ms);

	if (r->state == BERTH_STATE_STOPPED_WITH_CODE && r->has_exit_code)
		json_object_set_new(o, "exitCode", json_integer(r->exit_code));
	return o;
}

static json_t *record_json(const struct berth_registry_instance *r)
{
	json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "id", r->id, "class", r->class_name, "name",
	                      r->name != NULL ? json_string(r->name) : json_null(), "state",
	                      state_json(r));
	json_t *exit = NULL;

	if (r->has_exit_code) {
		exit = json_pack("{s:i, s:b}", "code", r->exit_code, "oom", r->oom);
		if (r->exit_signal > 0)
			json_object_set_new(exit, "signal", json_integer(r->exit_signal));
		json_object_set_new(o, "lastExit", exit);
	}
	if (r->stop_reason != NULL)
		json_object_set_new(o, "stopReason", json_string(r->stop_reason));
	json_object_set_new(o, "created",
	                    r->created_ms > 0 ? json_integer(r->created_ms) : json_null());
	if (r->labels != NULL) {
		json_t *labels = json_loads(r->labels, 0, NULL);
		if (labels != NULL)
			json_object_set_new(o, "labels", labels);
	}
	/* As last written: up to a few seconds behind the daemon's memory. */
	json_object_set_new(o, "lastActivity",
	                    r->last_activity_ms > 0 ? json_integer(r->last_activity_ms)
	                                            : json_null());
	return o;
}

static void get_instances(struct route_args *a)
{
	struct berth_registry_filter f = {.limit = 1000};
	struct berth_registry_instance *v = NULL;
	cleanup_free char *class_name = NULL;
	cleanup_free char *after = NULL;
	cleanup_free char *limit = NULL;
	berth_error_t err;
	json_t *list;
	size_t n = 0;

	if (!method_is(a, "GET"))
		return;
	class_name = berth_http_query_param(a->req, "class");
	after = berth_http_query_param(a->req, "after");
	limit = berth_http_query_param(a->req, "limit");
	if (limit != NULL) {
		uint64_t l;
		if (berth_parse_u64(limit, 1, 10000, &l, &err) < 0) {
			berth_http_respond_error(a->req, 400, "bad_request", "limit: %s",
			                         err.message);
			return;
		}
		f.limit = (size_t)l;
	}
	f.class_name = class_name;
	f.after_id = after;
	if (berth_registry_list(a->d->reader, &f, &v, &n, &err) < 0) {
		berth_http_respond_error(a->req, 500, "registry", "%s", err.message);
		return;
	}
	/* A typo in the filter says so; a class no longer configured still lists its records. */
	if (n == 0 && class_name != NULL && after == NULL &&
	    berth_config_find_class(a->d->config, class_name) == NULL) {
		berth_http_respond_error(a->req, 404, "class_not_found", "no container class `%s`",
		                         class_name);
		return;
	}
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		berthd_instance_overlay(a->d, &v[i]);
		json_array_append_new(list, record_json(&v[i]));
	}
	berth_registry_instances_free(v, n);
	berth_http_respond_json(a->req, 200, json_pack("{s:o}", "instances", list));
}

/*
 * The record of CLASS/NAME. Like a Durable Object, every name exists: one
 * that never ran has no row yet, and is shown stopped.
 */
static int lookup(struct route_args *a, const char *class_name, const char *name,
                  struct berth_registry_instance *r)
{
	berth_error_t err;
	int ret;

	if (berth_config_find_class(a->d->config, class_name) == NULL) {
		berth_http_respond_error(a->req, 404, "class_not_found", "no container class `%s`",
		                         class_name);
		return -1;
	}
	memset(r, 0, sizeof(*r));
	ret = berth_registry_get_by_name(a->d->reader, class_name, name, r, &err);
	if (ret == -ENOENT) {
		berth_id_from_name(class_name, name, r->id);
		r->class_name = xstrdup(class_name);
		r->name = xstrdup(name);
		r->state = BERTH_STATE_STOPPED;
		return 0;
	}
	if (ret < 0) {
		berth_http_respond_error(a->req, 500, "registry", "%s", err.message);
		return -1;
	}
	return 0;
}

/* The state: the manager's for an active instance (it leads the registry by a write). */
static void answer_record(struct berthd *d, struct berth_http_request *req, const char *class_name,
                          const char *name, int status)
{
	struct berth_registry_instance r;
	berth_error_t err;

	memset(&r, 0, sizeof(r));
	if (berth_registry_get_by_name(d->reader, class_name, name, &r, &err) < 0) {
		berth_id_from_name(class_name, name, r.id);
		r.class_name = xstrdup(class_name);
		r.name = xstrdup(name);
		r.state = BERTH_STATE_STOPPED;
	}
	berthd_instance_overlay(d, &r);
	berth_http_respond_json(req, status, record_json(&r));
	berth_registry_instance_clear(&r);
}

struct lifecycle_call {
	struct berthd *d;
	struct berth_http_request *req;
	char *class_name;
	char *name;
};

static void on_lifecycle_done(const struct berthd_start_result *res, void *arg)
{
	struct lifecycle_call *c = arg;

	if (res->status != 0)
		berth_http_respond_error(c->req, res->status, res->code, "%s", res->message);
	else
		answer_record(c->d, c->req, c->class_name, c->name, 200);
	free(c->class_name);
	free(c->name);
	free(c);
}

static struct lifecycle_call *call_new(struct route_args *a, const char *class_name,
                                       const char *name)
{
	struct lifecycle_call *c = xcalloc(1, sizeof(*c));

	c->d = a->d;
	c->req = a->req;
	c->class_name = xstrdup(class_name);
	c->name = xstrdup(name);
	return c;
}

/* The request body as a JSON object; an empty body is {}. NULL: answered with 400. */
static json_t *body_object(struct berth_http_request *req)
{
	json_error_t jerr;
	json_t *j;

	if (req->body_len == 0)
		return json_object();
	j = json_loadb(req->body, req->body_len, 0, &jerr);
	if (j == NULL) {
		berth_http_respond_error(req, 400, "bad_request",
		                         "the body is not JSON: %s (line %d)", jerr.text,
		                         jerr.line);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		berth_http_respond_error(req, 400, "bad_request", "the body must be a JSON object");
		return NULL;
	}
	return j;
}

static bool string_object(json_t *o)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return false;
	json_object_foreach (o, k, v)
		if (!json_is_string(v))
			return false;
	return true;
}

/* The start body of @cloudflare/containers: envVars, entrypoint, enableInternet, labels,
 * waitForPorts. */
static int parse_start(struct berth_http_request *req, json_t *body, struct berthd_start_options *o)
{
	json_t *v;
	size_t i;

	memset(o, 0, sizeof(*o));
	o->enable_internet = -1;
	o->wait_for_ports = true;
	if ((v = json_object_get(body, "envVars")) != NULL && !json_is_null(v)) {
		if (!string_object(v))
			goto bad_env;
		o->env_vars = v;
	}
	if ((v = json_object_get(body, "entrypoint")) != NULL && !json_is_null(v)) {
		json_t *e;
		if (!json_is_array(v) || json_array_size(v) == 0)
			goto bad_entrypoint;
		json_array_foreach (v, i, e)
			if (!json_is_string(e))
				goto bad_entrypoint;
		o->entrypoint = v;
	}
	if ((v = json_object_get(body, "enableInternet")) != NULL && !json_is_null(v)) {
		if (!json_is_boolean(v))
			goto bad_internet;
		o->enable_internet = json_is_true(v);
	}
	if ((v = json_object_get(body, "labels")) != NULL && !json_is_null(v)) {
		if (!string_object(v))
			goto bad_labels;
		o->labels = v;
	}
	if ((v = json_object_get(body, "waitForPorts")) != NULL && !json_is_null(v)) {
		json_t *e;
		if (json_is_boolean(v)) {
			o->wait_for_ports = json_is_true(v);
		} else if (json_is_integer(v) && json_integer_value(v) > 0 &&
		           json_integer_value(v) <= 65535) {
			o->ports = xmalloc(sizeof(uint16_t));
			o->ports[0] = (uint16_t)json_integer_value(v);
			o->n_ports = 1;
		} else if (json_is_array(v) && json_array_size(v) > 0) {
			o->ports = xcalloc(json_array_size(v), sizeof(uint16_t));
			json_array_foreach (v, i, e) {
				if (!json_is_integer(e) || json_integer_value(e) <= 0 ||
				    json_integer_value(e) > 65535)
					goto bad_ports;
				o->ports[o->n_ports++] = (uint16_t)json_integer_value(e);
			}
		} else {
			goto bad_ports;
		}
	}
	return 0;
bad_env:
	berth_http_respond_error(req, 400, "bad_request", "envVars: must be an object of strings");
	return -1;
bad_entrypoint:
	berth_http_respond_error(req, 400, "bad_request",
	                         "entrypoint: must be a non-empty array of strings");
	return -1;
bad_internet:
	berth_http_respond_error(req, 400, "bad_request", "enableInternet: must be true or false");
	return -1;
bad_labels:
	berth_http_respond_error(req, 400, "bad_request", "labels: must be an object of strings");
	return -1;
bad_ports:
	free(o->ports);
	o->ports = NULL;
	berth_http_respond_error(req, 400, "bad_request",
	                         "waitForPorts: must be true, false, a port or an array of ports");
	return -1;
}

static void post_start(struct route_args *a, const struct berth_config_class *cls, const char *name)
{
	struct berthd_start_options o;
	json_t *body = body_object(a->req);

	if (body == NULL)
		return;
	if (parse_start(a->req, body, &o) == 0) {
		berthd_instance_start(a->d, cls, name, &o, on_lifecycle_done,
		                      call_new(a, cls->class_name, name));
		free(o.ports);
	}
	json_decref(body);
}

static void post_stop(struct route_args *a, const struct berth_config_class *cls, const char *name,
                      const char *id)
{
	json_t *body = body_object(a->req);
	uint64_t grace = cls->stop_grace_ms;
	int signal = SIGTERM;
	berth_error_t err;
	json_t *v;

	if (body == NULL)
		return;
	if ((v = json_object_get(body, "signal")) != NULL && !json_is_null(v)) {
		if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 65) {
			signal = (int)json_integer_value(v);
		} else if (!json_is_string(v) ||
		           berth_parse_signal(json_string_value(v), &signal, &err) < 0) {
			berth_http_respond_error(a->req, 400, "bad_request",
			                         "signal: use a name (SIGTERM, KILL) or a number");
			json_decref(body);
			return;
		}
	}
	if ((v = json_object_get(body, "graceMs")) != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			berth_http_respond_error(a->req, 400, "bad_request",
			                         "graceMs: must be a number of milliseconds");
			json_decref(body);
			return;
		}
		grace = (uint64_t)json_integer_value(v);
	}
	json_decref(body);
	/* 202: the stop is under way; GET .../state follows it. */
	answer_record(a->d, a->req, cls->class_name, name,
	              berthd_instance_stop(a->d, id, signal, grace, "stop_requested") ? 202 : 200);
}

/* Only an instance with a record has logs to ask for: one that was started at some time. */
static void get_logs(struct route_args *a, const char *class_name, const char *name, const char *id)
{
	struct berth_registry_instance r;
	berth_error_t err;
	int ret = berth_registry_get(a->d->reader, id, &r, &err);

	berth_registry_instance_clear(&r);
	if (ret == -ENOENT)
		berth_http_respond_error(a->req, 404, "instance_not_found",
		                         "%s/%s has never been started: it has no logs", class_name,
		                         name);
	else if (ret < 0)
		berth_http_respond_error(a->req, 500, "registry", "%s", err.message);
	else
		berthd_logs_serve(a->d, a->req, id);
}

/*
 * containerFetch: what follows `.../fetch` in the raw target (so that
 * %-escapes reach the container as sent) goes to the instance.
 */
static void fetch(struct route_args *a, const struct berth_config_class *cls, const char *name)
{
	const char *t = a->req->target, *q = strchr(t, '?');
	size_t end = q != NULL ? (size_t)(q - t) : strlen(t), i = 0;
	cleanup_free char *target = NULL;

	/* /v1/classes/C/instances/N/fetch: the rest starts at the seventh slash. */
	for (int slashes = 0; i < end; i++)
		if (t[i] == '/' && ++slashes == 7)
			break;
	target = xasprintf("%s%s", i < end ? "" : "/", t + i);
	berthd_proxy_fetch(a->d, a->req, cls, name, target);
}

/* .../sandbox/REST: the path after it, as the SDK's client sends it ("/api/execute"). */
static void sandbox_endpoint(struct route_args *a, const struct berth_config_class *cls,
                             const char *name)
{
	cleanup_free char *rest = NULL;
	size_t len = 0;

	for (size_t i = 5; i < a->n; i++)
		len += strlen(a->seg[i]) + 1;
	rest = xmalloc(len + 1);
	rest[0] = '\0';
	for (size_t i = 5; i < a->n; i++) {
		strcat(rest, "/");
		strcat(rest, a->seg[i]);
	}
	berthd_sandbox_serve(a->d, a->req, cls, name, rest);
}

static void instance_endpoint(struct route_args *a)
{
	const char *class_name = a->seg[1], *name = a->seg[3];
	const char *action = a->n > 4 ? a->seg[4] : NULL;
	const struct berth_config_class *cls = berth_config_find_class(a->d->config, class_name);
	struct berth_registry_instance r;
	char id[BERTH_ID_LEN + 1];

	if (cls == NULL) {
		berth_http_respond_error(a->req, 404, "class_not_found", "no container class `%s`",
		                         class_name);
		return;
	}
	berth_id_from_name(class_name, name, id);
	if (action != NULL && strcmp(action, "fetch") == 0)
		return fetch(a, cls, name);
	if (action == NULL || strcmp(action, "state") == 0) {
		if (a->n > 5)
			return not_found(a);
		if (!method_is(a, "GET") || lookup(a, class_name, name, &r) < 0)
			return;
		berthd_instance_overlay(a->d, &r);
		berth_http_respond_json(a->req, 200,
		                        action == NULL ? record_json(&r) : state_json(&r));
		berth_registry_instance_clear(&r);
		return;
	}
	if (strcmp(action, "sandbox") == 0)
		return sandbox_endpoint(a, cls, name);
	if (a->n > 5)
		return not_found(a);
	if (strcmp(action, "exec") == 0) {
		const char *up = berth_http_header(a->req, "upgrade");
		if (up != NULL && strcasecmp(up, "websocket") == 0 && method_is(a, "GET"))
			berthd_sandbox_exec_tty(a->d, a->req, cls, name);
		else if (up == NULL && method_is(a, "POST"))
			berthd_sandbox_exec(a->d, a->req, cls, name);
		else if (up != NULL)
			berth_http_respond_error(a->req, 400, "bad_request",
			                         "only a WebSocket upgrade is served here");
		return;
	}
	if (strcmp(action, "files") == 0) {
		if (strcmp(a->req->method, "PUT") == 0 || method_is(a, "GET"))
			berthd_sandbox_files(a->d, a->req, cls, name);
		return;
	}
	if (strcmp(action, "start") == 0) {
		if (method_is(a, "POST"))
			post_start(a, cls, name);
		return;
	}
	if (strcmp(action, "stop") == 0) {
		if (method_is(a, "POST"))
			post_stop(a, cls, name, id);
		return;
	}
	if (strcmp(action, "destroy") == 0) {
		if (method_is(a, "POST"))
			berthd_instance_destroy(a->d, class_name, id, on_lifecycle_done,
			                        call_new(a, class_name, name));
		return;
	}
	if (strcmp(action, "renew") == 0) {
		if (!method_is(a, "POST"))
			return;
		if (berthd_instance_renew(a->d, id))
			answer_record(a->d, a->req, class_name, name, 200);
		else
			berth_http_respond_error(a->req, 409, "not_running",
			                         "%s/%s has no running container to keep awake",
			                         class_name, name);
		return;
	}
	if (strcmp(action, "logs") == 0) {
		if (method_is(a, "GET"))
			get_logs(a, class_name, name, id);
		return;
	}
	not_found(a);
}

static void route(struct route_args *a)
{
	if (a->n == 0)
		return not_found(a);
	if (a->n == 1 && strcmp(a->seg[0], "health") == 0)
		return get_health(a);
	if (a->n == 1 && strcmp(a->seg[0], "classes") == 0)
		return get_classes(a);
	if (a->n == 1 && strcmp(a->seg[0], "instances") == 0)
		return get_instances(a);
	if (a->n == 1 && strcmp(a->seg[0], "events") == 0) {
		if (method_is(a, "GET"))
			berthd_events_subscribe(a->d, a->req);
		return;
	}
	if (a->n >= 4 && strcmp(a->seg[0], "classes") == 0 && strcmp(a->seg[2], "instances") == 0)
		return instance_endpoint(a);
	if (strcmp(a->seg[0], "images") == 0)
		return berthd_images_api(a->d, a->req);
	not_found(a);
}

static void handle(struct berth_http_request *req, struct berthd *d)
{
	struct route_args a = {.d = d, .req = req};
	cleanup_free char *copy = NULL;
	char *p, *save = NULL;

	if (d->stopping) {
		berth_http_respond_error(req, 503, "shutting_down", "berthd is shutting down");
		return;
	}
	if (strncmp(req->path, "/v1/", 4) != 0 && strcmp(req->path, "/v1") != 0) {
		berth_http_respond_error(req, 404, "not_found",
		                         "no such endpoint: %s (the API is under /v1/)", req->path);
		return;
	}
	copy = xstrdup(req->path + 3);
	for (p = strtok_r(copy, "/", &save); p != NULL; p = strtok_r(NULL, "/", &save)) {
		if (a.n == MAX_SEGMENTS)
			return not_found(&a);
		a.seg[a.n++] = p;
	}
	/*
	 * Class and instance names become log lines and JSON strings: text
	 * only (a name jansson cannot write would make every listing that
	 * holds it fail). What follows them (a containerFetch path) is the
	 * instance's business.
	 */
	for (size_t i = 0; i < a.n && i < 4; i++) {
		if (!berth_utf8_text(a.seg[i], strlen(a.seg[i]))) {
			berth_http_respond_error(req, 400, "bad_name",
			                         "`%s` is not UTF-8 text (no control characters)",
			                         a.seg[i]);
			return;
		}
	}
	route(&a);
}

void berthd_api_handle_unix(struct berth_http_request *req, void *data)
{
	handle(req, data);
}

/* Constant time in the token's length: the comparison leaks no prefix. */
static bool token_equal(const char *given, const char *want)
{
	size_t gl = strlen(given), wl = strlen(want);
	unsigned char diff = (unsigned char)(gl != wl);

	for (size_t i = 0; i < wl; i++)
		diff |= (unsigned char)(want[i] ^ (i < gl ? given[i] : 0));
	return diff == 0;
}

static bool authorized(struct berthd *d, const struct berth_http_request *req)
{
	const char *token = d->config->berth.api_token;
	const char *auth;

	/* The unix socket's mode guards it; TCP needs the token. */
	if (req->peer == NULL || strcmp(req->peer, "unix") == 0 ||
	    d->config->berth.api_insecure_no_token)
		return true;
	auth = berth_http_header(req, "authorization");
	return auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 && token != NULL &&
	       token_equal(auth + 7, token);
}

/* "/v1/classes/C/instances/N/ACTION..." -> ACTION and what follows, or NULL. */
static const char *instance_action(const char *path)
{
	const char *p = path;

	if (strncmp(p, "/v1/classes/", 12) != 0)
		return NULL;
	p += 12;
	for (int i = 0; i < 3; i++) {
		p = strchr(p, '/');
		if (p == NULL)
			return NULL;
		p++;
	}
	return p;
}

void berthd_api_body_policy(const struct berth_http_request *req, void *data,
                            struct berth_http_body_policy *policy)
{
	const char *action = instance_action(req->path);

	if (action == NULL || !authorized(data, req))
		return;
	if (strcmp(action, "sandbox/api/write") == 0) {
		/* Base64 in JSON: 4/3 of the file, and then some. */
		policy->max_bytes = 200u << 20;
	} else if (strcmp(action, "files") == 0 && strcmp(req->method, "PUT") == 0) {
		/*
		 * Streamed into the file as it comes; an upgrade's body (read
		 * whole, and refused) is spooled, not held.
		 */
		policy->max_bytes = BERTHD_SANDBOX_PUT_MAX;
		policy->stream = true;
		policy->spool = true;
	} else if (strcmp(action, "fetch") == 0 || strncmp(action, "fetch/", 6) == 0) {
		berthd_proxy_fetch_body_policy(data, policy);
	}
}

void berthd_api_handle_tcp(struct berth_http_request *req, void *data)
{
	struct berthd *d = data;

	if (!d->config->berth.api_insecure_no_token) {
		if (!authorized(d, req)) {
			static const char body[] =
			        "{\"error\":{\"code\":\"unauthorized\",\"message\":\"a valid "
			        "`Authorization: Bearer TOKEN` header is required\"}}\n";
			berth_http_respond(req, 401, "application/json",
			                   "WWW-Authenticate: Bearer realm=\"berth\"\r\n", body,
			                   sizeof(body) - 1);
			return;
		}
	}
	handle(req, d);
}
