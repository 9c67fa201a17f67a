/* SPDX-License-Identifier: Apache-2.0 */
/* Container classes as the control API shows them, and as the registry keeps them. */
#include <string.h>
#include <time.h>

#include "berth/util.h"

#include "daemon/daemon.h"

int64_t berthd_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static json_t *strv_object(char *const *v)
{
	json_t *o = json_object();

	for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
		const char *eq = strchr(v[i], '=');
		cleanup_free char *key = eq != NULL ? xstrndup(v[i], (size_t)(eq - v[i])) : NULL;

		if (key != NULL)
			json_object_set_new(o, key, json_string(eq + 1));
	}
	return o;
}

static json_t *strv_array(char *const *v)
{
	json_t *a = json_array();

	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *berthd_class_json(const struct berth_config_class *c)
{
	const struct berth_limits *l = &c->instance_type.limits;
	json_t *ports = json_array();
	json_t *o;

	for (size_t i = 0; i < c->n_required_ports; i++)
		json_array_append_new(ports, json_integer(c->required_ports[i]));
	o = json_pack(
	        "{s:s, s:s, s:{s:o, s:f, s:I, s:I}, s:o, s:o, s:o, s:I, s:o, s:o, s:b, "
	        "s:s, s:o, s:I}",
	        "name", c->class_name, "image", c->image, "instanceType", "name",
	        c->instance_type.name != NULL ? json_string(c->instance_type.name) : json_null(),
	        "vcpu", (double)l->nanocpus / 1e9, "memoryMiB", (json_int_t)(l->memory_bytes >> 20),
	        "diskMB", (json_int_t)(l->disk_bytes / 1000000), "maxInstances",
	        c->max_instances > 0 ? json_integer((json_int_t)c->max_instances) : json_null(),
	        "defaultPort", c->default_port > 0 ? json_integer(c->default_port) : json_null(),
	        "requiredPorts", ports, "sleepAfterMs", (json_int_t)c->sleep_after_ms, "envVars",
	        strv_object(c->env), "entrypoint",
	        c->entrypoint != NULL ? strv_array(c->entrypoint) : json_null(), "enableInternet",
	        c->enable_internet, "pingEndpoint", c->ping_endpoint, "labels",
	        strv_object(c->labels), "stopGracePeriodMs", (json_int_t)c->stop_grace_ms);
	return o;
}
