/* SPDX-License-Identifier: Apache-2.0 */
/* berth.routes[]: which class and instance serve a request on the data plane. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "config/config-internal.h"

#define PATH_SEGMENT_MAX 255
#define HOST_LABEL_MAX   126
#define PICK_N_MAX       1024

static const char *const route_fields[] = {"match", "class",        "instance",
                                           "port",  "strip_prefix", NULL};
static const char *const match_fields[] = {"path_prefix", "host", NULL};

/* The ways to pick an instance, as the members of "instance": {"NAME": VALUE}. */
static const struct {
	const char *name;
	enum berth_config_pick pick;
} picks[] = {
        {"name", BERTH_CONFIG_PICK_NAME},     {"path_segment", BERTH_CONFIG_PICK_PATH_SEGMENT},
        {"header", BERTH_CONFIG_PICK_HEADER}, {"host_label", BERTH_CONFIG_PICK_HOST_LABEL},
        {"random", BERTH_CONFIG_PICK_RANDOM}, {"least_loaded", BERTH_CONFIG_PICK_LEAST_LOADED},
};
static const char *const pick_names[] = {"name",   "path_segment", "header", "host_label",
                                         "random", "least_loaded", NULL};

#define PICK_HINT                                                                                \
	"{\"name\": \"...\"}, {\"path_segment\": N}, {\"header\": \"X-...\"}, {\"host_label\": " \
	"N}, "                                                                                   \
	"{\"random\": N}, {\"least_loaded\": N} or \"singleton\""

/* An HTTP header name: RFC 9110 token characters. */
static bool is_header_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return false;
	return true;
}

/* "app.example.com" or "*.example.com". */
static bool is_route_host(const char *s)
{
	if (strncmp(s, "*.", 2) == 0)
		s += 2;
	if (*s == '\0' || strlen(s) > 253)
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return false;
	return s[0] != '.' && s[strlen(s) - 1] != '.' && strstr(s, "..") == NULL;
}

static void load_match(struct berth_config_ctx *c, const char *path, const json_t *v,
                       struct berth_config_route *r)
{
	cleanup_free char *p = berth_config_path_member(path, "match");
	const json_t *f;

	if (!json_is_object(v)) {
		berth_config_type_error(c, p, v,
		                        "an object ({\"path_prefix\": \"/api/\", \"host\": "
		                        "\"app.example.com\"})");
		return;
	}
	berth_config_unknown_fields(c, p, v, match_fields, NULL);
	if ((f = json_object_get(v, "path_prefix")) != NULL) {
		cleanup_free char *fp = berth_config_path_member(p, "path_prefix");
		const char *s;
		if (berth_config_get_string(c, fp, f, true, &s)) {
			cleanup_free char *shown = berth_config_show(c, fp, f);
			if (s[0] != '/')
				berth_config_error(
				        c, fp, "%s must start with \"/\" (e.g. \"/api/\")", shown);
			else
				r->path_prefix = xstrdup(s);
		}
	}
	if ((f = json_object_get(v, "host")) != NULL) {
		cleanup_free char *fp = berth_config_path_member(p, "host");
		const char *s;
		if (berth_config_get_string(c, fp, f, true, &s)) {
			cleanup_free char *shown = berth_config_show(c, fp, f);
			if (!is_route_host(s)) {
				berth_config_error(
				        c, fp,
				        "%s is not a host name (e.g. \"app.example.com\" or "
				        "\"*.example.com\", without a port)",
				        shown);
			} else {
				r->host = xstrdup(s);
				for (char *q = r->host; *q != '\0'; q++)
					*q = (char)tolower((unsigned char)*q);
			}
		}
	}
}

static void load_class_ref(struct berth_config_ctx *c, const char *path, const json_t *route,
                           struct berth_config_route *r)
{
	const struct berth_config *cfg = c->cfg;
	const json_t *v = json_object_get(route, "class");
	cleanup_free char *p = berth_config_path_member(path, "class");
	cleanup_free const char **names = NULL;
	cleanup_free char *shown = NULL;
	const json_t *containers = json_object_get(c->root, "containers");
	const char *s, *hint;
	size_t n = 0, i;
	json_t *obj;

	if (v == NULL) {
		berth_config_error(
		        c, path,
		        "\"class\" is required (the container class that serves the route)");
		return;
	}
	if (!berth_config_get_string(c, p, v, false, &s))
		return;
	names = xcalloc(cfg->n_classes + 1, sizeof(*names));
	for (i = 0; i < cfg->n_classes; i++) {
		const char *name = cfg->classes[i].class_name;
		if (name == NULL)
			continue;
		if (strcmp(name, s) == 0) {
			r->class_name = xstrdup(s);
			r->class_index = i;
			return;
		}
		names[n++] = name;
	}
	/* A class whose own definition is in error was reported there already. */
	json_array_foreach (containers, i, obj) {
		const char *name = json_string_value(json_object_get(obj, "class_name"));
		if (name != NULL && strcmp(name, s) == 0)
			return;
	}
	shown = berth_config_show(c, p, v);
	hint = berth_config_suggest(s, names);
	if (hint != NULL) {
		berth_config_error(
		        c, p, "%s is not a container class of this file (did you mean \"%s\"?)",
		        shown, hint);
	} else if (n == 0) {
		berth_config_error(c, p,
		                   "%s is not a container class of this file (containers[] "
		                   "defines none)",
		                   shown);
	} else {
		cleanup_free char *list = xstrdup(names[0]);
		for (i = 1; i < n; i++) {
			char *longer = xasprintf("%s, %s", list, names[i]);
			free(list);
			list = longer;
		}
		berth_config_error(c, p, "%s is not a container class of this file (classes: %s)",
		                   shown, list);
	}
}

static void load_pick(struct berth_config_ctx *c, const char *path, const json_t *route,
                      struct berth_config_route *r)
{
	const json_t *v = json_object_get(route, "instance");
	cleanup_free char *p = berth_config_path_member(path, "instance");
	cleanup_free char *shown = NULL;
	const char *key, *first = NULL;
	size_t found = SIZE_MAX;
	json_t *val;

	if (v == NULL) {
		berth_config_error(c, path, "\"instance\" is required (" PICK_HINT ")");
		return;
	}
	if (json_is_string(v)) {
		shown = berth_config_show(c, p, v);
		if (strcmp(json_string_value(v), "singleton") != 0) {
			berth_config_error(c, p, "%s is not an instance choice (use " PICK_HINT ")",
			                   shown);
			return;
		}
		r->pick = BERTH_CONFIG_PICK_SINGLETON;
		r->pick_name = xstrdup(BERTH_CONFIG_SINGLETON_NAME);
		return;
	}
	if (!json_is_object(v)) {
		berth_config_type_error(c, p, v, PICK_HINT);
		return;
	}
	json_object_foreach ((json_t *)v, key, val) {
		cleanup_free char *kp = berth_config_path_member(p, key);
		size_t which = SIZE_MAX;
		for (size_t i = 0; i < BERTH_ARRAY_SIZE(picks); i++)
			if (strcmp(key, picks[i].name) == 0)
				which = i;
		if (which == SIZE_MAX) {
			const char *hint = berth_config_suggest(key, pick_names);
			if (hint != NULL)
				berth_config_error(
				        c, kp, "is not an instance choice (did you mean \"%s\"?)",
				        hint);
			else
				berth_config_error(c, kp,
				                   "is not an instance choice (use " PICK_HINT ")");
			return;
		}
		if (first != NULL) {
			berth_config_error(c, p, "has both \"%s\" and \"%s\"; use one", first, key);
			return;
		}
		first = key;
		found = which;
	}
	if (found == SIZE_MAX) {
		berth_config_error(c, p, "is empty (use " PICK_HINT ")");
		return;
	}
	{
		cleanup_free char *kp = berth_config_path_member(p, first);
		const json_t *arg = json_object_get(v, first);
		uint64_t n = 0;
		const char *s;
		r->pick = picks[found].pick;
		switch (r->pick) {
		case BERTH_CONFIG_PICK_NAME:
			if (berth_config_get_string(c, kp, arg, false, &s))
				r->pick_name = xstrdup(s);
			break;
		case BERTH_CONFIG_PICK_HEADER:
			if (!berth_config_get_string(c, kp, arg, false, &s))
				break;
			if (!is_header_name(s)) {
				cleanup_free char *hs = berth_config_show(c, kp, arg);
				berth_config_error(
				        c, kp, "%s is not a header name (e.g. \"X-Tenant\")", hs);
				break;
			}
			r->pick_name = xstrdup(s);
			break;
		case BERTH_CONFIG_PICK_PATH_SEGMENT:
			if (berth_config_get_uint(c, kp, arg, 0, PATH_SEGMENT_MAX,
			                          "a segment number (0 is the first)", &n))
				r->pick_n = (unsigned)n;
			break;
		case BERTH_CONFIG_PICK_HOST_LABEL:
			if (berth_config_get_uint(c, kp, arg, 0, HOST_LABEL_MAX,
			                          "a label number (0 is the leftmost)", &n))
				r->pick_n = (unsigned)n;
			break;
		case BERTH_CONFIG_PICK_RANDOM:
		case BERTH_CONFIG_PICK_LEAST_LOADED:
			if (berth_config_get_uint(c, kp, arg, 1, PICK_N_MAX,
			                          "a number of instances (at least 1)", &n))
				r->pick_n = (unsigned)n;
			break;
		case BERTH_CONFIG_PICK_SINGLETON:
			break;
		}
	}
}

static void load_route(struct berth_config_ctx *c, const char *path, const json_t *obj,
                       struct berth_config_route *r)
{
	const struct berth_config_class *cls = NULL;
	bool has_port = false;
	const json_t *v;

	berth_config_unknown_fields(c, path, obj, route_fields, NULL);
	if ((v = json_object_get(obj, "match")) != NULL)
		load_match(c, path, v, r);
	load_class_ref(c, path, obj, r);
	if (r->class_name != NULL)
		cls = &c->cfg->classes[r->class_index];
	load_pick(c, path, obj, r);
	if ((v = json_object_get(obj, "port")) != NULL) {
		cleanup_free char *p = berth_config_path_member(path, "port");
		has_port = berth_config_get_port(c, p, v, &r->port);
		if (!has_port)
			return;
	}
	if ((v = json_object_get(obj, "strip_prefix")) != NULL) {
		cleanup_free char *p = berth_config_path_member(path, "strip_prefix");
		if (berth_config_get_bool(c, p, v, &r->strip_prefix) && r->strip_prefix &&
		    r->path_prefix == NULL &&
		    json_object_get(json_object_get(obj, "match"), "path_prefix") == NULL)
			berth_config_warn(c, p, "has no effect without match.path_prefix");
	}
	if (cls == NULL)
		return;
	if (!has_port) {
		const json_t *def =
		        json_object_get(json_array_get(json_object_get(c->root, "containers"),
		                                       c->class_json_index[r->class_index]),
		                        "defaultPort");
		/* An invalid defaultPort was reported where it is. */
		if (cls->default_port == 0 && def == NULL)
			berth_config_error(
			        c, path,
			        "has no port: class \"%s\" has no defaultPort (set \"port\" "
			        "here or \"defaultPort\" in containers[%zu])",
			        cls->class_name, c->class_json_index[r->class_index]);
		r->port = cls->default_port;
	}
	if ((r->pick == BERTH_CONFIG_PICK_RANDOM || r->pick == BERTH_CONFIG_PICK_LEAST_LOADED) &&
	    cls->max_instances != 0 && r->pick_n > cls->max_instances) {
		cleanup_free char *p = berth_config_path_member(path, "instance");
		berth_config_warn(
		        c, p,
		        "spreads requests over %u instances, but containers[%zu].max_instances "
		        "is %llu: some requests will find none free",
		        r->pick_n, c->class_json_index[r->class_index],
		        (unsigned long long)cls->max_instances);
	}
}

/* Whether every request that `later` matches is matched by `earlier` first. */
static bool shadows(const struct berth_config_route *earlier,
                    const struct berth_config_route *later)
{
	if (earlier->host != NULL &&
	    (later->host == NULL || strcmp(earlier->host, later->host) != 0))
		return false;
	if (earlier->path_prefix == NULL)
		return true;
	return later->path_prefix != NULL &&
	       strncmp(later->path_prefix, earlier->path_prefix, strlen(earlier->path_prefix)) == 0;
}

void berth_config_load_routes(struct berth_config_ctx *c, const json_t *routes, bool have_listen)
{
	struct berth_config_daemon *d = &c->cfg->berth;
	cleanup_free size_t *json_index = NULL;
	cleanup_free bool *clean = NULL;
	size_t i;
	json_t *obj;

	if (!json_is_array(routes)) {
		berth_config_type_error(c, "berth.routes", routes, "an array of routes");
		return;
	}
	d->routes = xcalloc(json_array_size(routes) + 1, sizeof(*d->routes));
	json_index = xcalloc(json_array_size(routes) + 1, sizeof(*json_index));
	clean = xcalloc(json_array_size(routes) + 1, sizeof(*clean));
	json_array_foreach (routes, i, obj) {
		cleanup_free char *p = berth_config_path_index("berth.routes", i);
		struct berth_config_route *r;
		if (!json_is_object(obj)) {
			berth_config_type_error(c, p, obj,
			                        "an object ({\"match\": {...}, \"class\": \"...\", "
			                        "\"instance\": ...})");
			continue;
		}
		size_t errors = c->diags->errors;
		r = &d->routes[d->n_routes];
		json_index[d->n_routes] = i;
		load_route(c, p, obj, r);
		/* A route in error would look broader than it is: leave it out of the comparison.
		 */
		clean[d->n_routes++] = c->diags->errors == errors;
		for (size_t e = 0; clean[d->n_routes - 1] && e + 1 < d->n_routes; e++) {
			if (clean[e] && shadows(&d->routes[e], r)) {
				berth_config_warn(c, p,
				                  "is never used: berth.routes[%zu] matches its "
				                  "requests first",
				                  json_index[e]);
				break;
			}
		}
	}
	if (d->n_routes > 0 && !have_listen)
		berth_config_warn(c, "berth.routes",
		                  "nothing serves these routes: berth.listen is not set");
}
