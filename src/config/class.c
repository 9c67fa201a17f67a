/* SPDX-License-Identifier: Apache-2.0 */
/* containers[]: wrangler's container fields and the Container class's properties. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "config/config-internal.h"

#define CLASS_NAME_MAX 128
#define TIMEOUT_MAX_MS 86400000u /* a day: longer is a mistake, not a wait */

/* The fields berth reads, and the library's that it does not implement (warned about). */
static const char *const class_fields[] = {
        "class_name", "image", "name", "max_instances", "instance_type", "image_build_context",
        "image_vars", "defaultPort", "requiredPorts", "sleepAfter", "envVars", "entrypoint",
        "enableInternet", "pingEndpoint", "labels", "stopGracePeriod", "instanceGetTimeoutMS",
        "portReadyTimeoutMS", "readyOn", "onStart", "onStop", "onError", "onActivityExpired",
        "allowedHosts", "deniedHosts", "interceptHttps",
        /* wrangler's, for Cloudflare's deployment only: accepted and not used */
        "scheduling_policy", "ssh", "wrangler_ssh", "authorized_keys", "trusted_user_ca_keys",
        "configuration", "constraints", "affinities", "rollout_step_percentage", "rollout_kind",
        "rollout_active_grace_period", "durable_objects", "instances", "unsafe", NULL};

/* Properties of @cloudflare/containers that berth does not implement yet. */
static const char *const unsupported_fields[] = {"allowedHosts", "deniedHosts", "interceptHttps",
                                                 NULL};

static const char *const instance_type_names[] = {"lite",       "basic",      "standard-1",
                                                  "standard-2", "standard-3", "standard-4",
                                                  "dev",        "standard",   NULL};

#define INSTANCE_TYPE_HINT                                                     \
	"(use lite, basic, standard-1, standard-2, standard-3, standard-4 or " \
	"{\"vcpu\": 1, \"memory_mib\": 4096, \"disk_mb\": 8000})"

static void load_class_name(struct berth_config_ctx *c, const char *path, const json_t *obj,
                            struct berth_config_class *cls)
{
	const json_t *v = json_object_get(obj, "class_name");
	cleanup_free char *p = berth_config_path_member(path, "class_name");
	cleanup_free char *shown = NULL;
	const char *s;

	if (v == NULL) {
		berth_config_error(
		        c, path,
		        "\"class_name\" is required (the name of the container's Durable "
		        "Object class, e.g. \"MyContainer\")");
		return;
	}
	if (!berth_config_get_string(c, p, v, true, &s))
		return;
	shown = berth_config_show(c, p, v);
	if (*s == '\0') {
		berth_config_error(c, p,
		                   "is empty (use the class's JavaScript name, e.g. "
		                   "\"MyContainer\")");
		return;
	}
	if (!berth_config_is_identifier(s) || strlen(s) > CLASS_NAME_MAX) {
		berth_config_error(
		        c, p,
		        "%s is not a JavaScript class name (letters, digits, _ and $, not "
		        "starting with a digit, at most %d)",
		        shown, CLASS_NAME_MAX);
		return;
	}
	for (size_t i = 0; i < c->cfg->n_classes; i++) {
		const struct berth_config_class *other = &c->cfg->classes[i];
		if (other != cls && other->class_name != NULL &&
		    strcmp(other->class_name, s) == 0) {
			berth_config_error(c, p, "%s is already used by containers[%zu]", shown,
			                   c->class_json_index[i]);
			return;
		}
	}
	cls->class_name = xstrdup(s);
}

static void load_image(struct berth_config_ctx *c, const char *path, const json_t *obj,
                       struct berth_config_class *cls)
{
	const json_t *v = json_object_get(obj, "image");
	cleanup_free char *p = berth_config_path_member(path, "image");
	const char *s;

	if (v == NULL) {
		berth_config_error(c, path, "\"image\" is required (" BERTH_CONFIG_IMAGE_KINDS ")");
		return;
	}
	if (!berth_config_get_string(c, p, v, true, &s))
		return;
	if (*s == '\0') {
		berth_config_error(c, p, "is empty (use " BERTH_CONFIG_IMAGE_KINDS ")");
		return;
	}
	cls->image = xstrdup(s);
	berth_config_check_image(c, p, cls);
}

static void load_max_instances(struct berth_config_ctx *c, const char *p, const json_t *v,
                               struct berth_config_class *cls)
{
	if (json_is_number(v) && json_number_value(v) == 0) {
		berth_config_error(c, p,
		                   "0 is not allowed (at least 1; leave max_instances out for "
		                   "no limit)");
		return;
	}
	berth_config_get_uint(c, p, v, 1, UINT64_MAX, "a whole number of at least 1",
	                      &cls->max_instances);
}

static void load_custom_type(struct berth_config_ctx *c, const char *p, const json_t *obj,
                             struct berth_config_instance_type *type)
{
	static const char *const fields[] = {"vcpu", "memory_mib", "disk_mb", NULL};
	/* wrangler's defaults for the fields left out: those of "lite". */
	uint64_t nanocpus = 62500000, memory_mib = 256, disk_mb = 2000;
	const json_t *v;
	bool ok = true;

	berth_config_unknown_fields(c, p, obj, fields, NULL);
	if ((v = json_object_get(obj, "vcpu")) != NULL) {
		cleanup_free char *vp = berth_config_path_member(p, "vcpu");
		if (!json_is_number(v)) {
			ok = berth_config_type_error(c, vp, v, "a number of vCPUs (e.g. 0.5)");
		} else if (!(json_number_value(v) > 0 && json_number_value(v) <= 1024) ||
		           berth_config_round(json_number_value(v) * 1e9) == 0) {
			cleanup_free char *shown = berth_config_show(c, vp, v);
			berth_config_error(c, vp, "%s is out of range (more than 0, at most 1024)",
			                   shown);
			ok = false;
		} else {
			nanocpus = berth_config_round(json_number_value(v) * 1e9);
		}
	}
	if ((v = json_object_get(obj, "memory_mib")) != NULL) {
		cleanup_free char *vp = berth_config_path_member(p, "memory_mib");
		ok &= berth_config_get_uint(c, vp, v, 16, 1048576,
		                            "a whole number of MiB (e.g. 512)", &memory_mib);
	}
	if ((v = json_object_get(obj, "disk_mb")) != NULL) {
		cleanup_free char *vp = berth_config_path_member(p, "disk_mb");
		ok &= berth_config_get_uint(c, vp, v, 1, 16000000,
		                            "a whole number of MB (e.g. 4000)", &disk_mb);
	}
	if (!ok)
		return;
	free(type->name);
	type->name = NULL;
	type->limits.nanocpus = nanocpus;
	type->limits.memory_bytes = memory_mib * 1024 * 1024;
	type->limits.disk_bytes = disk_mb * 1000 * 1000; /* MB, as wrangler counts disk */
	type->limits.pids = berth_instance_type_lookup(BERTH_CONFIG_INSTANCE_TYPE)->limits.pids;
}

static void load_instance_type(struct berth_config_ctx *c, const char *p, const json_t *v,
                               struct berth_config_instance_type *type)
{
	const struct berth_instance_type *t;
	cleanup_free char *shown = NULL;
	const char *name, *hint;

	if (json_is_object(v)) {
		load_custom_type(c, p, v, type);
		return;
	}
	if (!json_is_string(v)) {
		berth_config_type_error(c, p, v,
		                        "an instance type name or {\"vcpu\", \"memory_mib\", "
		                        "\"disk_mb\"}");
		return;
	}
	name = json_string_value(v);
	shown = berth_config_show(c, p, v);
	t = berth_instance_type_lookup(name);
	if (t == NULL) {
		hint = berth_config_suggest(name, instance_type_names);
		if (hint != NULL)
			berth_config_error(c, p,
			                   "%s is not an instance type (did you mean \"%s\"?)",
			                   shown, hint);
		else
			berth_config_error(c, p, "%s is not an instance type " INSTANCE_TYPE_HINT,
			                   shown);
		return;
	}
	/* wrangler warns about these, and so do we: it will drop them. */
	if (strcmp(name, "dev") == 0 || strcmp(name, "standard") == 0)
		berth_config_warn(c, p,
		                  "%s is the old name of \"%s\"; wrangler will stop accepting it",
		                  shown, strcmp(name, "dev") == 0 ? "lite" : "standard-1");
	free(type->name);
	type->name = xstrdup(name);
	type->limits = t->limits;
}

static void load_required_ports(struct berth_config_ctx *c, const char *p, const json_t *v,
                                struct berth_config_class *cls)
{
	cleanup_free uint16_t *ports = NULL;
	size_t n = 0, i;
	bool ok = true;
	json_t *el;

	if (!json_is_array(v)) {
		berth_config_type_error(c, p, v, "an array of port numbers (e.g. [8080, 9090])");
		return;
	}
	ports = xcalloc(json_array_size(v) + 1, sizeof(*ports));
	json_array_foreach (v, i, el) {
		cleanup_free char *ep = berth_config_path_index(p, i);
		uint16_t port;
		bool seen = false;
		if (!berth_config_get_port(c, ep, el, &port)) {
			ok = false;
			continue;
		}
		for (size_t j = 0; j < n; j++)
			seen |= ports[j] == port;
		if (seen)
			berth_config_warn(c, ep, "port %u is listed twice", port);
		else
			ports[n++] = port;
	}
	if (!ok)
		return;
	free(cls->required_ports);
	cls->required_ports = steal_pointer(&ports);
	cls->n_required_ports = n;
}

static void load_entrypoint(struct berth_config_ctx *c, const char *p, const json_t *v,
                            struct berth_config_class *cls)
{
	cleanup_strv char **argv = NULL;

	if (!berth_config_get_string_array(
	            c, p, v, "an array of strings (e.g. [\"/bin/server\", \"--port\", \"8080\"])",
	            &argv))
		return;
	if (argv[0] == NULL) {
		berth_config_error(c, p, "is empty (leave it out to run the image's own command)");
		return;
	}
	if (argv[0][0] == '\0') {
		cleanup_free char *ep = berth_config_path_index(p, 0);
		berth_config_error(c, ep, "is empty, expected the program to run");
		return;
	}
	berth_strv_free(cls->entrypoint);
	cls->entrypoint = steal_pointer(&argv);
}

static void load_ping_endpoint(struct berth_config_ctx *c, const char *p, const json_t *v,
                               struct berth_config_class *cls)
{
	cleanup_free char *shown = NULL;
	const char *s, *scheme;

	if (!berth_config_get_string(c, p, v, true, &s))
		return;
	shown = berth_config_show(c, p, v);
	if (*s == '\0') {
		berth_config_error(c, p, "is empty (leave it out for \"%s\")",
		                   BERTH_CONFIG_PING_ENDPOINT);
		return;
	}
	/* The library fetches `http://${pingEndpoint}`: a scheme here would be doubled. */
	scheme = strstr(s, "://");
	if (scheme != NULL) {
		berth_config_error(c, p,
		                   "%s must not have a scheme: readiness checks fetch "
		                   "http://<pingEndpoint> (write \"%s\")",
		                   shown, scheme + 3);
		return;
	}
	for (const char *q = s; *q != '\0'; q++) {
		if ((unsigned char)*q <= ' ' || *q == 0x7f) {
			berth_config_error(c, p, "%s has spaces or control characters", shown);
			return;
		}
	}
	free(cls->ping_endpoint);
	cls->ping_endpoint = xstrdup(s);
}

/* "200": a status code of three digits from 100 to 599. */
static bool parse_status(const char *s, size_t len, uint16_t *out)
{
	unsigned v = 0;

	if (len != 3)
		return false;
	for (size_t i = 0; i < 3; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 100 || v > 599)
		return false;
	*out = (uint16_t)v;
	return true;
}

static void load_ready_on(struct berth_config_ctx *c, const char *p, const json_t *v,
                          struct berth_config_class *cls)
{
	cleanup_free char *shown = NULL;
	uint16_t lo, hi;

	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);
		if (n < 100 || n > 599)
			goto bad;
		lo = hi = (uint16_t)n;
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		const char *dash = strchr(s, '-');
		if (dash == NULL) {
			if (!parse_status(s, strlen(s), &lo))
				goto bad;
			hi = lo;
		} else if (!parse_status(s, (size_t)(dash - s), &lo) ||
		           !parse_status(dash + 1, strlen(dash + 1), &hi) || lo > hi) {
			goto bad;
		}
	} else {
		berth_config_type_error(c, p, v, "an HTTP status range (e.g. \"200-399\" or 200)");
		return;
	}
	cls->ready_status_min = lo;
	cls->ready_status_max = hi;
	return;
bad:
	shown = berth_config_show(c, p, v);
	berth_config_error(
	        c, p,
	        "%s is not an HTTP status range (use e.g. \"200-399\" or 200: codes from "
	        "100 to 599, the lower first)",
	        shown);
}

static void class_defaults(struct berth_config_class *cls)
{
	const struct berth_instance_type *lite =
	        berth_instance_type_lookup(BERTH_CONFIG_INSTANCE_TYPE);

	cls->instance_type.name = xstrdup(lite->name);
	cls->instance_type.limits = lite->limits;
	cls->image_vars = xcalloc(1, sizeof(char *));
	cls->sleep_after_ms = BERTH_CONFIG_SLEEP_AFTER_MS;
	cls->env = xcalloc(1, sizeof(char *));
	cls->enable_internet = true;
	cls->ping_endpoint = xstrdup(BERTH_CONFIG_PING_ENDPOINT);
	cls->labels = xcalloc(1, sizeof(char *));
	cls->stop_grace_ms = BERTH_CONFIG_STOP_GRACE_MS;
	cls->instance_get_timeout_ms = BERTH_CONFIG_INSTANCE_GET_TIMEOUT_MS;
	cls->port_ready_timeout_ms = BERTH_CONFIG_PORT_READY_TIMEOUT_MS;
}

/* The value of `name` in `obj` and its path, or NULL when absent. */
static const json_t *field(const json_t *obj, const char *path, const char *name, char **p)
{
	const json_t *v = json_object_get(obj, name);

	free(*p);
	*p = v ? berth_config_path_member(path, name) : NULL;
	return v;
}

static void load_class(struct berth_config_ctx *c, const char *path, const json_t *obj,
                       struct berth_config_class *cls)
{
	static const char *const hooks[] = {"onStart", "onStop", "onError", "onActivityExpired"};
	char **const hook_urls[] = {&cls->on_start, &cls->on_stop, &cls->on_error,
	                            &cls->on_activity_expired};
	cleanup_free char *p = NULL;
	const json_t *v;
	const char *s;

	class_defaults(cls);
	berth_config_unknown_fields(c, path, obj, class_fields, NULL);
	load_class_name(c, path, obj, cls);
	load_image(c, path, obj, cls);

	if ((v = field(obj, path, "name", &p)) && berth_config_get_string(c, p, v, true, &s))
		cls->name = xstrdup(s);
	if ((v = field(obj, path, "image_build_context", &p)))
		berth_config_get_path(c, p, v, &cls->image_build_context);
	if ((v = field(obj, path, "image_vars", &p)))
		berth_config_get_string_map(c, p, v, "variable name", &cls->image_vars);
	if ((v = field(obj, path, "max_instances", &p)))
		load_max_instances(c, p, v, cls);
	if ((v = field(obj, path, "instance_type", &p)))
		load_instance_type(c, p, v, &cls->instance_type);

	if ((v = field(obj, path, "defaultPort", &p)))
		berth_config_get_port(c, p, v, &cls->default_port);
	if ((v = field(obj, path, "requiredPorts", &p)))
		load_required_ports(c, p, v, cls);
	if ((v = field(obj, path, "sleepAfter", &p)))
		berth_config_get_duration(c, p, v, 1, &cls->sleep_after_ms);
	if ((v = field(obj, path, "envVars", &p)))
		berth_config_get_string_map(c, p, v, "variable name", &cls->env);
	if ((v = field(obj, path, "entrypoint", &p)))
		load_entrypoint(c, p, v, cls);
	if ((v = field(obj, path, "enableInternet", &p)))
		berth_config_get_bool(c, p, v, &cls->enable_internet);
	if ((v = field(obj, path, "pingEndpoint", &p)))
		load_ping_endpoint(c, p, v, cls);
	if ((v = field(obj, path, "labels", &p)))
		berth_config_get_string_map(c, p, v, "label name", &cls->labels);

	if ((v = field(obj, path, "stopGracePeriod", &p)))
		berth_config_get_duration(c, p, v, 0, &cls->stop_grace_ms);
	if ((v = field(obj, path, "instanceGetTimeoutMS", &p)))
		berth_config_get_uint(c, p, v, 1, TIMEOUT_MAX_MS,
		                      "a number of milliseconds (e.g. 8000)",
		                      &cls->instance_get_timeout_ms);
	if ((v = field(obj, path, "portReadyTimeoutMS", &p)))
		berth_config_get_uint(c, p, v, 1, TIMEOUT_MAX_MS,
		                      "a number of milliseconds (e.g. 20000)",
		                      &cls->port_ready_timeout_ms);
	if ((v = field(obj, path, "readyOn", &p)))
		load_ready_on(c, p, v, cls);
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(hooks); i++)
		if ((v = field(obj, path, hooks[i], &p)))
			berth_config_get_url(c, p, v, hook_urls[i]);

	for (size_t i = 0; unsupported_fields[i] != NULL; i++)
		if ((v = field(obj, path, unsupported_fields[i], &p)))
			berth_config_warn(c, p, "is not supported by berth yet and is ignored");
}

void berth_config_load_classes(struct berth_config_ctx *c, const json_t *containers)
{
	struct berth_config *cfg = c->cfg;
	size_t i;
	json_t *obj;

	if (!json_is_array(containers)) {
		berth_config_type_error(c, "containers", containers, "an array of containers");
		return;
	}
	/* Allocated up front: load_class_name() looks at the classes before this one. */
	cfg->classes = xcalloc(json_array_size(containers) + 1, sizeof(*cfg->classes));
	c->class_json_index = xcalloc(json_array_size(containers) + 1, sizeof(size_t));
	json_array_foreach (containers, i, obj) {
		cleanup_free char *path = berth_config_path_index("containers", i);
		if (!json_is_object(obj)) {
			berth_config_type_error(c, path, obj, "an object");
			continue;
		}
		c->class_json_index[cfg->n_classes] = i;
		load_class(c, path, obj, &cfg->classes[cfg->n_classes++]);
	}
}
