/* SPDX-License-Identifier: Apache-2.0 */
/* `berth classes`: the container classes berthd serves. */
#include <string.h>

#include "berth/util.h"
#include "client/client.h"

/* The instance type's name, or its limits when the class sets them itself. */
static char *instance_type(const json_t *cls)
{
	const json_t *t = json_object_get(cls, "instanceType");
	const char *name = json_string_value(json_object_get(t, "name"));

	if (name != NULL)
		return xstrdup(name);
	return xasprintf("%g vCPU, %lld MiB", json_number_value(json_object_get(t, "vcpu")),
	                 (long long)json_integer_value(json_object_get(t, "memoryMiB")));
}

/* defaultPort, else the required ports; NULL ("-") when there are none. */
static char *ports(const json_t *cls)
{
	const json_t *p = json_object_get(cls, "defaultPort");
	const json_t *req = json_object_get(cls, "requiredPorts");
	char *s = NULL;
	json_t *v;
	size_t i;

	if (json_is_integer(p))
		return xasprintf("%lld", (long long)json_integer_value(p));
	json_array_foreach (req, i, v) {
		char *next = xasprintf("%s%s%lld", s != NULL ? s : "", s != NULL ? "," : "",
		                       (long long)json_integer_value(v));
		free(s);
		s = next;
	}
	return s;
}

int berth_client_cmd_classes(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {{NULL, 0, NULL, 0}};
	static const char *const headers[] = {"CLASS", "IMAGE",       "INSTANCE TYPE",
	                                      "PORT",  "SLEEP AFTER", "MAX"};
	cleanup_client struct berth_client *c = NULL;
	cleanup_json json_t *answer = NULL;
	struct berth_table t;
	berth_error_t err;
	json_t *cls;
	size_t i;
	int r;

	if (berth_client_getopt(argc, argv, "", own, o) != -1)
		return BERTH_CLIENT_EXIT_USAGE;
	if (o->help)
		return berth_client_help("classes");
	if (optind < argc)
		return berth_client_usage_error("classes", "unexpected argument `%s`",
		                                argv[optind]);
	if ((r = berth_client_connect("classes", o, &c)) != 0)
		return r;
	answer = berth_client_call(c, "GET", "/v1/classes", NULL, NULL, &err);
	if (answer == NULL)
		return berth_client_fail(&err);
	if (o->json)
		return berth_client_print_json(answer, true) ? 0 : BERTH_CLIENT_EXIT_FAILED;
	berth_table_init(&t, BERTH_ARRAY_SIZE(headers), headers);
	json_array_foreach (json_object_get(answer, "classes"), i, cls) {
		cleanup_free char *type = instance_type(cls);
		cleanup_free char *port = ports(cls);
		cleanup_free char *max = NULL;
		const json_t *m = json_object_get(cls, "maxInstances");
		const json_t *sleep = json_object_get(cls, "sleepAfterMs");
		char sleep_text[48];
		const char *row[6];

		if (json_is_integer(m))
			max = xasprintf("%lld", (long long)json_integer_value(m));
		berth_client_duration(json_is_integer(sleep) ? (uint64_t)json_integer_value(sleep)
		                                             : 0,
		                      sleep_text, sizeof(sleep_text));
		row[0] = json_string_value(json_object_get(cls, "name"));
		row[1] = json_string_value(json_object_get(cls, "image"));
		row[2] = type;
		row[3] = port;
		row[4] = sleep_text;
		row[5] = max;
		berth_table_add(&t, row);
	}
	berth_table_print(&t, stdout);
	berth_table_free(&t);
	return 0;
}
