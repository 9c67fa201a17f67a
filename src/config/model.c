/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration model: freeing, lookup and comparison. */
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "config/config-internal.h"

void berth_config_class_free(struct berth_config_class *cls)
{
	free(cls->class_name);
	free(cls->name);
	free(cls->image);
	free(cls->image_path);
	free(cls->image_build_context);
	berth_strv_free(cls->image_vars);
	free(cls->instance_type.name);
	free(cls->required_ports);
	berth_strv_free(cls->env);
	berth_strv_free(cls->entrypoint);
	free(cls->ping_endpoint);
	berth_strv_free(cls->labels);
	free(cls->on_start);
	free(cls->on_stop);
	free(cls->on_error);
	free(cls->on_activity_expired);
}

void berth_config_route_free(struct berth_config_route *r)
{
	free(r->path_prefix);
	free(r->host);
	free(r->class_name);
	free(r->pick_name);
}

void berth_config_free(struct berth_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->n_classes; i++)
		berth_config_class_free(&cfg->classes[i]);
	free(cfg->classes);
	for (size_t i = 0; i < cfg->n_bindings; i++) {
		free(cfg->bindings[i].name);
		free(cfg->bindings[i].class_name);
		free(cfg->bindings[i].script_name);
	}
	free(cfg->bindings);
	free(cfg->berth.listen.host);
	free(cfg->berth.api_socket);
	free(cfg->berth.api_listen.host);
	free(cfg->berth.api_token);
	free(cfg->berth.hooks_secret);
	free(cfg->berth.state_dir);
	for (size_t i = 0; i < cfg->berth.n_routes; i++)
		berth_config_route_free(&cfg->berth.routes[i]);
	free(cfg->berth.routes);
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
}

const struct berth_config_class *berth_config_find_class(const struct berth_config *cfg,
                                                         const char *class_name)
{
	for (size_t i = 0; i < cfg->n_classes; i++)
		if (cfg->classes[i].class_name != NULL &&
		    strcmp(cfg->classes[i].class_name, class_name) == 0)
			return &cfg->classes[i];
	return NULL;
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool strv_eq(char *const *a, char *const *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	for (; *a != NULL && *b != NULL; a++, b++)
		if (strcmp(*a, *b) != 0)
			return false;
	return *a == NULL && *b == NULL;
}

/*
 * A field added to struct berth_config_class must be compared below, or a
 * reload would not notice that it changed: this fails to compile until the
 * comparison and the size here are updated together.
 */
_Static_assert(sizeof(struct berth_config_class) == 232,
               "compare the new field in berth_config_class_equal(), then update this size");

bool berth_config_class_equal(const struct berth_config_class *a,
                              const struct berth_config_class *b)
{
	const struct berth_limits *la = &a->instance_type.limits, *lb = &b->instance_type.limits;

	return str_eq(a->class_name, b->class_name) && str_eq(a->name, b->name) &&
	       str_eq(a->image, b->image) && str_eq(a->image_path, b->image_path) &&
	       str_eq(a->image_build_context, b->image_build_context) &&
	       strv_eq(a->image_vars, b->image_vars) && a->max_instances == b->max_instances &&
	       str_eq(a->instance_type.name, b->instance_type.name) &&
	       la->memory_bytes == lb->memory_bytes && la->nanocpus == lb->nanocpus &&
	       la->pids == lb->pids && la->disk_bytes == lb->disk_bytes &&
	       a->default_port == b->default_port && a->n_required_ports == b->n_required_ports &&
	       (a->n_required_ports == 0 ||
	        memcmp(a->required_ports, b->required_ports,
	               a->n_required_ports * sizeof(*a->required_ports)) == 0) &&
	       a->sleep_after_ms == b->sleep_after_ms && strv_eq(a->env, b->env) &&
	       strv_eq(a->entrypoint, b->entrypoint) && a->enable_internet == b->enable_internet &&
	       str_eq(a->ping_endpoint, b->ping_endpoint) && strv_eq(a->labels, b->labels) &&
	       a->stop_grace_ms == b->stop_grace_ms &&
	       a->instance_get_timeout_ms == b->instance_get_timeout_ms &&
	       a->port_ready_timeout_ms == b->port_ready_timeout_ms &&
	       a->ready_status_min == b->ready_status_min &&
	       a->ready_status_max == b->ready_status_max && str_eq(a->on_start, b->on_start) &&
	       str_eq(a->on_stop, b->on_stop) && str_eq(a->on_error, b->on_error) &&
	       str_eq(a->on_activity_expired, b->on_activity_expired);
}
