/* SPDX-License-Identifier: Apache-2.0 */
/* The `berth` section: the daemon's listeners, state, limits and logs. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "berth/parse.h"
#include "berth/util.h"
#include "config/config-internal.h"

#define TOKEN_MIN     16
#define LOG_FILES_MAX 100

static const char *const berth_fields[] = {"listen", "api",   "state_dir", "limits", "log",
                                           "routes", "proxy", "hooks",     NULL};
static const char *const api_fields[] = {"socket", "listen", "token", "insecure_no_token", NULL};
static const char *const limits_fields[] = {"memory", "vcpu", NULL};
static const char *const hooks_fields[] = {"secret", NULL};
static const char *const log_fields[] = {"max_size", "max_files", "level", NULL};
static const char *const proxy_fields[] = {
        "max_connections", "max_header_size",  "max_body_size",      "header_timeout",
        "idle_timeout",    "upstream_timeout", "upstream_keepalive", "upstream_idle_timeout",
        "max_waiting",     "wait_timeout",     "busy_poll_us",       NULL};

static const struct {
	const char *name;
	enum berth_log_level level;
} log_levels[] = {
        {"error", BERTH_LOG_ERROR},
        {"warn", BERTH_LOG_WARN},
        {"info", BERTH_LOG_INFO},
        {"debug", BERTH_LOG_DEBUG},
};
static const char *const log_level_names[] = {"error", "warn", "info", "debug", NULL};

/* `name` of `obj` when `obj` is an object; NULL otherwise (its type was reported). */
static const json_t *member(const json_t *obj, const char *name)
{
	return json_is_object(obj) ? json_object_get(obj, name) : NULL;
}

static void load_socket(struct berth_config_ctx *c, const json_t *v)
{
	const char *p = "berth.api.socket";
	struct sockaddr_un sun;
	cleanup_free char *path = NULL;

	if (!berth_config_get_path(c, p, v, &path))
		return;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		cleanup_free char *shown = berth_config_show(c, p, v);
		berth_config_error(c, p,
		                   "%s is too long for a unix socket (at most %zu bytes, "
		                   "resolved)",
		                   shown, sizeof(sun.sun_path) - 1);
		return;
	}
	free(c->cfg->berth.api_socket);
	c->cfg->berth.api_socket = steal_pointer(&path);
}

/* A secret of `len` characters at `p` (`what`: "token"): short, or readable by others. */
static void warn_weak_secret(struct berth_config_ctx *c, const char *p, const char *what,
                             size_t len)
{
	if (len < TOKEN_MIN)
		berth_config_warn(
		        c, p,
		        "is short (%zu characters); use at least %d random ones, e.g. from "
		        "`openssl rand -hex 32`",
		        len, TOKEN_MIN);
	if (c->file_mode & S_IROTH)
		berth_config_warn(
		        c, p, "every user of this host can read %s, and so the %s (chmod o-r %s)",
		        c->file, what, c->file);
}

static void load_token(struct berth_config_ctx *c, const json_t *v)
{
	const char *p = "berth.api.token";
	const char *s;
	size_t len;

	if (!berth_config_get_string(c, p, v, false, &s))
		return;
	len = strlen(s);
	for (size_t i = 0; i < len; i++) {
		/* It travels as "Authorization: Bearer TOKEN": one header line, no spaces. */
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) {
			berth_config_error(c, p,
			                   "has spaces or control characters, which an "
			                   "Authorization header cannot carry");
			return;
		}
	}
	warn_weak_secret(c, p, "token", len);
	c->cfg->berth.api_token = xstrdup(s);
}

/*
 * berth.hooks.secret: the key of the webhooks' HMAC-SHA256 signatures
 * (X-Berth-Signature), which a receiver checks to know a request is
 * berthd's. Any bytes; short ones are guessable.
 */
static void load_hooks(struct berth_config_ctx *c, const json_t *hooks)
{
	const char *p = "berth.hooks.secret";
	const json_t *v;
	const char *s;
	size_t len;

	if (!json_is_object(hooks)) {
		berth_config_type_error(c, "berth.hooks", hooks, "an object ({\"secret\": ...})");
		return;
	}
	berth_config_unknown_fields(c, "berth.hooks", hooks, hooks_fields, NULL);
	v = json_object_get(hooks, "secret");
	if (v == NULL || !berth_config_get_string(c, p, v, false, &s))
		return;
	len = strlen(s);
	warn_weak_secret(c, p, "secret", len);
	free(c->cfg->berth.hooks_secret);
	c->cfg->berth.hooks_secret = xstrdup(s);
}

static void load_api(struct berth_config_ctx *c, const json_t *api)
{
	struct berth_config_daemon *d = &c->cfg->berth;
	const json_t *v, *listen = member(api, "listen");

	if (!json_is_object(api)) {
		berth_config_type_error(
		        c, "berth.api", api,
		        "an object ({\"socket\": ..., \"listen\": ..., \"token\": ...})");
		return;
	}
	berth_config_unknown_fields(c, "berth.api", api, api_fields, NULL);
	if ((v = json_object_get(api, "socket")) != NULL)
		load_socket(c, v);
	if ((v = json_object_get(api, "token")) != NULL)
		load_token(c, v);
	if ((v = json_object_get(api, "insecure_no_token")) != NULL &&
	    berth_config_get_bool(c, "berth.api.insecure_no_token", v, &d->api_insecure_no_token) &&
	    d->api_insecure_no_token && json_object_get(api, "token") != NULL)
		berth_config_warn(c, "berth.api.insecure_no_token",
		                  "is ignored: berth.api.token is set, and is required");
	if (listen == NULL || !berth_config_get_addr(c, "berth.api.listen", listen, &d->api_listen))
		return;
	/* Anyone who can reach a TCP port could start containers: say how to guard it. */
	if (json_object_get(api, "token") == NULL && !d->api_insecure_no_token) {
		cleanup_free char *shown = berth_config_show(c, "berth.api.listen", listen);
		berth_config_error(
		        c, "berth.api.listen",
		        "%s needs a token: set berth.api.token (clients then send "
		        "\"Authorization: Bearer <token>\"), or set "
		        "berth.api.insecure_no_token to true to let anyone who can reach "
		        "it in (local development only)",
		        shown);
	}
}

static void load_vcpu(struct berth_config_ctx *c, const char *p, const json_t *v, uint64_t *out)
{
	cleanup_free char *shown = NULL;

	if (json_is_string(v)) {
		if (berth_parse_cpus(json_string_value(v), out, NULL) == 0)
			return;
	} else if (json_is_number(v)) {
		double n = json_number_value(v);
		if (n > 0 && n <= 1024 && berth_config_round(n * 1e9) > 0) {
			*out = berth_config_round(n * 1e9);
			return;
		}
	} else {
		berth_config_type_error(c, p, v, "a number of vCPUs (e.g. 2, 0.5 or \"1/16\")");
		return;
	}
	shown = berth_config_show(c, p, v);
	berth_config_error(c, p,
	                   "%s is not a number of vCPUs (more than 0, at most 1024; e.g. 2, 0.5 or "
	                   "\"1/16\")",
	                   shown);
}

static void load_limits(struct berth_config_ctx *c, const json_t *limits)
{
	struct berth_config_daemon *d = &c->cfg->berth;
	const json_t *v;

	if (!json_is_object(limits)) {
		berth_config_type_error(c, "berth.limits", limits,
		                        "an object ({\"memory\": \"8G\", \"vcpu\": 4})");
		return;
	}
	berth_config_unknown_fields(c, "berth.limits", limits, limits_fields, NULL);
	if ((v = json_object_get(limits, "memory")) != NULL)
		berth_config_get_size(c, "berth.limits.memory", v, &d->limits_memory_bytes);
	if ((v = json_object_get(limits, "vcpu")) != NULL)
		load_vcpu(c, "berth.limits.vcpu", v, &d->limits_nanocpus);
}

static void load_log(struct berth_config_ctx *c, const json_t *log)
{
	struct berth_config_daemon *d = &c->cfg->berth;
	const json_t *v;
	uint64_t n;

	if (!json_is_object(log)) {
		berth_config_type_error(c, "berth.log", log,
		                        "an object ({\"max_size\": \"10M\", \"max_files\": 2})");
		return;
	}
	berth_config_unknown_fields(c, "berth.log", log, log_fields, NULL);
	if ((v = json_object_get(log, "max_size")) != NULL)
		berth_config_get_size(c, "berth.log.max_size", v, &d->log_max_bytes);
	if ((v = json_object_get(log, "max_files")) != NULL &&
	    berth_config_get_uint(c, "berth.log.max_files", v, 1, LOG_FILES_MAX,
	                          "a number of files (1-100)", &n))
		d->log_max_files = (unsigned)n;
	if ((v = json_object_get(log, "level")) != NULL) {
		const char *s;
		if (!berth_config_get_string(c, "berth.log.level", v, true, &s))
			return;
		for (size_t i = 0; i < BERTH_ARRAY_SIZE(log_levels); i++) {
			if (strcmp(s, log_levels[i].name) == 0) {
				d->log_level = log_levels[i].level;
				return;
			}
		}
		{
			cleanup_free char *shown = berth_config_show(c, "berth.log.level", v);
			const char *hint = berth_config_suggest(s, log_level_names);
			if (hint != NULL)
				berth_config_error(c, "berth.log.level",
				                   "%s is not a log level (did you mean \"%s\"?)",
				                   shown, hint);
			else
				berth_config_error(
				        c, "berth.log.level",
				        "%s is not a log level (use error, warn, info or debug)",
				        shown);
		}
	}
}

static void load_proxy(struct berth_config_ctx *c, const json_t *proxy)
{
	struct berth_config_proxy *p = &c->cfg->berth.proxy;
	const json_t *v;

	if (!json_is_object(proxy)) {
		berth_config_type_error(c, "berth.proxy", proxy,
		                        "an object ({\"max_header_size\": \"32K\", ...})");
		return;
	}
	berth_config_unknown_fields(c, "berth.proxy", proxy, proxy_fields, NULL);
	if ((v = json_object_get(proxy, "max_connections")) != NULL)
		berth_config_get_uint(c, "berth.proxy.max_connections", v, 1, 1000000,
		                      "a number of connections", &p->max_connections);
	if ((v = json_object_get(proxy, "max_header_size")) != NULL &&
	    berth_config_get_size(c, "berth.proxy.max_header_size", v, &p->max_header_bytes) &&
	    (p->max_header_bytes < 1024 || p->max_header_bytes > 1024 * 1024)) {
		berth_config_error(c, "berth.proxy.max_header_size", "must be between 1K and 1M");
		p->max_header_bytes = BERTH_CONFIG_PROXY_MAX_HEADER_BYTES;
	}
	if ((v = json_object_get(proxy, "max_body_size")) != NULL)
		berth_config_get_size(c, "berth.proxy.max_body_size", v, &p->max_body_bytes);
	if ((v = json_object_get(proxy, "header_timeout")) != NULL)
		berth_config_get_duration(c, "berth.proxy.header_timeout", v, 1,
		                          &p->header_timeout_ms);
	if ((v = json_object_get(proxy, "idle_timeout")) != NULL)
		berth_config_get_duration(c, "berth.proxy.idle_timeout", v, 1, &p->idle_timeout_ms);
	if ((v = json_object_get(proxy, "upstream_timeout")) != NULL)
		berth_config_get_duration(c, "berth.proxy.upstream_timeout", v, 1,
		                          &p->upstream_timeout_ms);
	if ((v = json_object_get(proxy, "upstream_keepalive")) != NULL)
		berth_config_get_uint(c, "berth.proxy.upstream_keepalive", v, 0, 100000,
		                      "a number of connections", &p->upstream_keepalive);
	if ((v = json_object_get(proxy, "upstream_idle_timeout")) != NULL)
		berth_config_get_duration(c, "berth.proxy.upstream_idle_timeout", v, 1,
		                          &p->upstream_idle_timeout_ms);
	if ((v = json_object_get(proxy, "max_waiting")) != NULL)
		berth_config_get_uint(c, "berth.proxy.max_waiting", v, 0, 1000000,
		                      "a number of requests", &p->max_waiting);
	if ((v = json_object_get(proxy, "wait_timeout")) != NULL)
		berth_config_get_duration(c, "berth.proxy.wait_timeout", v, 1, &p->wait_timeout_ms);
	if ((v = json_object_get(proxy, "busy_poll_us")) != NULL)
		berth_config_get_uint(c, "berth.proxy.busy_poll_us", v, 0,
		                      BERTH_CONFIG_PROXY_BUSY_POLL_MAX_US,
		                      "microseconds of polling (0 turns it off)", &p->busy_poll_us);
}

void berth_config_load_daemon(struct berth_config_ctx *c, const json_t *berth)
{
	struct berth_config_daemon *d = &c->cfg->berth;
	const json_t *v;

	d->api_socket = xstrdup(BERTH_CONFIG_API_SOCKET);
	d->state_dir = xstrdup(BERTH_CONFIG_STATE_DIR);
	d->log_max_bytes = BERTH_CONFIG_LOG_MAX_BYTES;
	d->log_max_files = BERTH_CONFIG_LOG_MAX_FILES;
	d->log_level = BERTH_LOG_INFO;
	d->proxy = (struct berth_config_proxy){
	        .max_connections = BERTH_CONFIG_PROXY_MAX_CONNECTIONS,
	        .max_header_bytes = BERTH_CONFIG_PROXY_MAX_HEADER_BYTES,
	        .header_timeout_ms = BERTH_CONFIG_PROXY_HEADER_TIMEOUT_MS,
	        .idle_timeout_ms = BERTH_CONFIG_PROXY_IDLE_TIMEOUT_MS,
	        .upstream_timeout_ms = BERTH_CONFIG_PROXY_UPSTREAM_TIMEOUT_MS,
	        .upstream_keepalive = BERTH_CONFIG_PROXY_UPSTREAM_KEEPALIVE,
	        .upstream_idle_timeout_ms = BERTH_CONFIG_PROXY_UPSTREAM_IDLE_MS,
	        .max_waiting = BERTH_CONFIG_PROXY_MAX_WAITING,
	        .wait_timeout_ms = BERTH_CONFIG_PROXY_WAIT_TIMEOUT_MS,
	        .busy_poll_us = BERTH_CONFIG_PROXY_BUSY_POLL_US,
	};
	if (berth == NULL)
		return;
	if (!json_is_object(berth)) {
		berth_config_type_error(
		        c, "berth", berth,
		        "an object of berth's settings ({\"listen\": ..., \"routes\": "
		        "[...]})");
		return;
	}
	berth_config_unknown_fields(c, "berth", berth, berth_fields, NULL);
	if ((v = json_object_get(berth, "listen")) != NULL)
		berth_config_get_addr(c, "berth.listen", v, &d->listen);
	if ((v = json_object_get(berth, "api")) != NULL)
		load_api(c, v);
	if ((v = json_object_get(berth, "state_dir")) != NULL)
		berth_config_get_path(c, "berth.state_dir", v, &d->state_dir);
	if ((v = json_object_get(berth, "limits")) != NULL)
		load_limits(c, v);
	if ((v = json_object_get(berth, "log")) != NULL)
		load_log(c, v);
	if ((v = json_object_get(berth, "routes")) != NULL)
		berth_config_load_routes(c, v, json_object_get(berth, "listen") != NULL);
	if ((v = json_object_get(berth, "proxy")) != NULL)
		load_proxy(c, v);
	if ((v = json_object_get(berth, "hooks")) != NULL)
		load_hooks(c, v);
}
