/* SPDX-License-Identifier: Apache-2.0 */
/* The instance commands: ps, inspect, state, start, stop, destroy, renew. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "berth/parse.h"
#include "berth/util.h"
#include "client/client.h"

#define PAGE             1000 /* records per GET /v1/instances (berthd's default) */
#define STOP_POLL_MS     100
#define STOP_SLACK_MS    30000 /* past the grace period, before `stop` gives up waiting */
#define DEFAULT_GRACE_MS 10000 /* stopGracePeriod's default, if the class cannot be read */

static const char *status_of(const json_t *record)
{
	const char *s =
	        json_string_value(json_object_get(json_object_get(record, "state"), "status"));

	return s != NULL ? s : "unknown";
}

/* Whether a container exists or is being made or stopped. */
static bool active(const char *status)
{
	return strcmp(status, "running") == 0 || strcmp(status, "healthy") == 0 ||
	       strcmp(status, "stopping") == 0;
}

/* How the last container ended: "0", "143 (SIGTERM)", "137 (OOM)"; NULL when unknown. */
static char *exit_text(const json_t *record)
{
	const json_t *e = json_object_get(record, "lastExit");
	const char *sig;

	if (!json_is_object(e) || !json_is_integer(json_object_get(e, "code")))
		return NULL;
	if (json_is_true(json_object_get(e, "oom")))
		return xasprintf("%lld (OOM)",
		                 (long long)json_integer_value(json_object_get(e, "code")));
	sig = berth_signal_name((int)json_integer_value(json_object_get(e, "signal")));
	if (json_is_integer(json_object_get(e, "signal")) && sig != NULL)
		return xasprintf("%lld (SIG%s)",
		                 (long long)json_integer_value(json_object_get(e, "code")), sig);
	return xasprintf("%lld", (long long)json_integer_value(json_object_get(e, "code")));
}

static int by_class_and_name(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	const char *xc = json_string_value(json_object_get(x, "class"));
	const char *yc = json_string_value(json_object_get(y, "class"));
	const char *xn = json_string_value(json_object_get(x, "name"));
	const char *yn = json_string_value(json_object_get(y, "name"));
	int r = strcmp(xc != NULL ? xc : "", yc != NULL ? yc : "");

	return r != 0 ? r : strcmp(xn != NULL ? xn : "", yn != NULL ? yn : "");
}

static void print_instances(json_t *list)
{
	static const char *const headers[] = {"CLASS", "NAME", "STATE", "LAST CHANGE", "EXIT"};
	size_t n = json_array_size(list);
	cleanup_free json_t **v = xcalloc(n + 1, sizeof(json_t *));
	int64_t now = berth_client_now_ms();
	struct berth_table t;

	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(list, i);
	/* berthd pages in id order, which is a hash: sort for a person. */
	qsort(v, n, sizeof(*v), by_class_and_name);
	berth_table_init(&t, BERTH_ARRAY_SIZE(headers), headers);
	for (size_t i = 0; i < n; i++) {
		const char *status = status_of(v[i]);
		cleanup_free char *exit = active(status) ? NULL : exit_text(v[i]);
		char when[32];
		const char *row[5];

		berth_client_relative_time(now,
		                           json_integer_value(json_object_get(
		                                   json_object_get(v[i], "state"), "lastChange")),
		                           when, sizeof(when));
		row[0] = json_string_value(json_object_get(v[i], "class"));
		row[1] = json_string_value(json_object_get(v[i], "name"));
		row[2] = status;
		row[3] = when;
		row[4] = exit;
		berth_table_add(&t, row);
	}
	berth_table_print(&t, stdout);
	berth_table_free(&t);
}

enum {
	OPT_CLASS = 256,
	OPT_INTERNET,
	OPT_NO_INTERNET,
	OPT_NO_WAIT,
};

int berth_client_cmd_ps(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {
	        {"class", required_argument, NULL, OPT_CLASS},
	        {"all", no_argument, NULL, 'a'},
	        {NULL, 0, NULL, 0},
	};
	cleanup_client struct berth_client *c = NULL;
	cleanup_json json_t *shown = json_array();
	cleanup_free char *class_q = NULL;
	cleanup_free char *after = NULL;
	const char *class_name = NULL, *last_id;
	bool all = false;
	berth_error_t err;
	int opt, r;

	while ((opt = berth_client_getopt(argc, argv, "a", own, o)) != -1) {
		if (opt == OPT_CLASS)
			class_name = optarg;
		else if (opt == 'a')
			all = true;
		else
			return BERTH_CLIENT_EXIT_USAGE;
	}
	if (o->help)
		return berth_client_help("ps");
	if (optind < argc)
		return berth_client_usage_error("ps", "unexpected argument `%s`", argv[optind]);
	if ((r = berth_client_connect("ps", o, &c)) != 0)
		return r;
	if (class_name != NULL) {
		cleanup_free char *e = berth_client_escape(class_name);
		class_q = xasprintf("&class=%s", e);
	}
	/* Page through every record: berthd answers at most PAGE at a time, in id order. */
	for (;;) {
		cleanup_free char *after_q = after != NULL ? berth_client_escape(after) : NULL;
		cleanup_free char *path = xasprintf(
		        "/v1/instances?limit=%d%s%s%s", PAGE, class_q != NULL ? class_q : "",
		        after_q != NULL ? "&after=" : "", after_q != NULL ? after_q : "");
		cleanup_json json_t *page = berth_client_call(c, "GET", path, NULL, NULL, &err);
		json_t *list = json_object_get(page, "instances"), *rec;
		size_t i;

		if (page == NULL)
			return berth_client_fail(&err);
		if (!json_is_array(list)) {
			berth_error_set(&err, 0,
			                "berthd's answer to GET /v1/instances has no list");
			return berth_client_fail(&err);
		}
		json_array_foreach (list, i, rec)
			if (all || active(status_of(rec)))
				json_array_append(shown, rec);
		if (json_array_size(list) < PAGE)
			break;
		last_id = json_string_value(
		        json_object_get(json_array_get(list, json_array_size(list) - 1), "id"));
		if (last_id == NULL) {
			berth_error_set(&err, 0,
			                "berthd's answer to GET /v1/instances has a "
			                "record without an id");
			return berth_client_fail(&err);
		}
		free(after);
		after = xstrdup(last_id);
	}
	if (o->json) {
		cleanup_json json_t *answer = json_pack("{s:O}", "instances", shown);
		return berth_client_print_json(answer, true) ? 0 : BERTH_CLIENT_EXIT_FAILED;
	}
	print_instances(shown);
	return 0;
}

/*
 * A command without options of its own on one instance: METHOD its SUFFIX
 * ("": the record, "/state", "/destroy", ...) with no body; the answer and
 * "CLASS/NAME" for the report.
 */
static int call_one(const char *command, const char *method, const char *suffix, int argc,
                    char **argv, struct berth_client_opts *o, json_t **answer, char **label)
{
	static const struct option own[] = {{NULL, 0, NULL, 0}};
	cleanup_client struct berth_client *c = NULL;
	cleanup_free char *class_name = NULL;
	cleanup_free char *path = NULL;
	const char *name;
	berth_error_t err;
	int r;

	if (berth_client_getopt(argc, argv, "", own, o) != -1)
		return BERTH_CLIENT_EXIT_USAGE;
	if (o->help)
		return berth_client_help(command);
	if ((r = berth_client_instance_operand(command, argc, argv, &class_name, &name)) != 0 ||
	    (r = berth_client_connect(command, o, &c)) != 0)
		return r;
	path = berth_client_instance_path(class_name, name, suffix);
	*answer = berth_client_call(c, method, path, NULL, NULL, &err);
	if (*answer == NULL)
		return berth_client_fail(&err);
	*label = xasprintf("%s/%s", class_name, name);
	return 0;
}

int berth_client_cmd_inspect(int argc, char **argv, struct berth_client_opts *o)
{
	cleanup_json json_t *record = NULL;
	cleanup_free char *label = NULL;
	int r = call_one("inspect", "GET", "", argc, argv, o, &record, &label);

	if (r != 0 || o->help)
		return r;
	return berth_client_print_json(record, true) ? 0 : BERTH_CLIENT_EXIT_FAILED;
}

int berth_client_cmd_state(int argc, char **argv, struct berth_client_opts *o)
{
	cleanup_json json_t *state = NULL;
	cleanup_free char *label = NULL;
	const char *status;
	json_t *code;
	char when[32];
	int r = call_one("state", "GET", "/state", argc, argv, o, &state, &label);

	if (r != 0 || o->help)
		return r;
	if (o->json)
		return berth_client_print_json(state, true) ? 0 : BERTH_CLIENT_EXIT_FAILED;
	status = json_string_value(json_object_get(state, "status"));
	code = json_object_get(state, "exitCode");
	berth_client_relative_time(berth_client_now_ms(),
	                           json_integer_value(json_object_get(state, "lastChange")), when,
	                           sizeof(when));
	printf("%s", status != NULL ? status : "unknown");
	if (json_is_integer(code))
		printf(" (exit code %lld)", (long long)json_integer_value(code));
	/* A name that never ran has no change to tell of. */
	if (strcmp(when, "-") != 0)
		printf(", since %s", when);
	putchar('\n');
	return 0;
}

/* After the action: the record as JSON, or "CLASS/NAME: WORDS" (WORDS NULL: the state). */
static int report(const struct berth_client_opts *o, const json_t *record, const char *label,
                  const char *words)
{
	cleanup_free char *shown = xstrdup(label);

	if (o->json)
		return berth_client_print_json(record, true) ? 0 : BERTH_CLIENT_EXIT_FAILED;
	berth_client_sanitize(shown);
	printf("%s: %s\n", shown, words != NULL ? words : status_of(record));
	return 0;
}

int berth_client_cmd_start(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {
	        {"env", required_argument, NULL, 'e'},
	        {"label", required_argument, NULL, 'l'},
	        {"internet", no_argument, NULL, OPT_INTERNET},
	        {"no-internet", no_argument, NULL, OPT_NO_INTERNET},
	        {"port", required_argument, NULL, 'p'},
	        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
	        {NULL, 0, NULL, 0},
	};
	cleanup_client struct berth_client *c = NULL;
	cleanup_json json_t *env = json_object();
	cleanup_json json_t *labels = json_object();
	cleanup_json json_t *ports = json_array();
	cleanup_json json_t *body = json_object();
	cleanup_json json_t *record = NULL;
	cleanup_free char *class_name = NULL;
	cleanup_free char *path = NULL;
	cleanup_free char *label = NULL;
	int internet = -1, nargs = argc, opt, r;
	bool wait = true;
	const char *name;
	berth_error_t err;
	uint64_t port;

	/*
	 * What follows `--` is the entrypoint. getopt would drop the `--` and
	 * leave no trace of where the operands end, so cut it off first.
	 */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			nargs = i;
			break;
		}
	}
	while ((opt = berth_client_getopt(nargs, argv, "e:l:p:", own, o)) != -1) {
		switch (opt) {
		case 'e':
			if (berth_client_parse_kv("--env", optarg, env, &err) < 0)
				return berth_client_usage_error("start", "%s", err.message);
			break;
		case 'l':
			if (berth_client_parse_kv("--label", optarg, labels, &err) < 0)
				return berth_client_usage_error("start", "%s", err.message);
			break;
		case OPT_INTERNET:
			internet = 1;
			break;
		case OPT_NO_INTERNET:
			internet = 0;
			break;
		case 'p':
			if (berth_parse_u64(optarg, 1, 65535, &port, &err) < 0)
				return berth_client_usage_error("start", "--port: %s", err.message);
			json_array_append_new(ports, json_integer((json_int_t)port));
			break;
		case OPT_NO_WAIT:
			wait = false;
			break;
		default:
			return BERTH_CLIENT_EXIT_USAGE;
		}
	}
	if (o->help)
		return berth_client_help("start");
	if (!wait && json_array_size(ports) > 0)
		return berth_client_usage_error("start", "--port and --no-wait exclude each other");
	if (nargs < argc && nargs + 1 == argc)
		return berth_client_usage_error("start", "no COMMAND after `--`");
	if ((r = berth_client_instance_operand("start", nargs, argv, &class_name, &name)) != 0)
		return r;
	if (json_object_size(env) > 0)
		json_object_set(body, "envVars", env);
	if (json_object_size(labels) > 0)
		json_object_set(body, "labels", labels);
	if (internet >= 0)
		json_object_set_new(body, "enableInternet", json_boolean(internet));
	if (json_array_size(ports) > 0)
		json_object_set(body, "waitForPorts", ports);
	else if (!wait)
		json_object_set_new(body, "waitForPorts", json_false());
	if (nargs < argc) {
		json_t *ep = json_array();
		for (int i = nargs + 1; i < argc; i++)
			json_array_append_new(ep, json_string(argv[i]));
		json_object_set_new(body, "entrypoint", ep);
	}
	if ((r = berth_client_connect("start", o, &c)) != 0)
		return r;
	path = berth_client_instance_path(class_name, name, "/start");
	record = berth_client_call(c, "POST", path, body, NULL, &err);
	if (record == NULL)
		return berth_client_fail(&err);
	label = xasprintf("%s/%s", class_name, name);
	return report(o, record, label, NULL);
}

/* The class's stop grace period, for how long `stop` waits; the default if it cannot be read. */
static uint64_t class_grace_ms(struct berth_client *c, const char *class_name)
{
	cleanup_json json_t *answer = berth_client_call(c, "GET", "/v1/classes", NULL, NULL, NULL);
	json_t *cls;
	size_t i;

	json_array_foreach (json_object_get(answer, "classes"), i, cls) {
		const char *n = json_string_value(json_object_get(cls, "name"));
		json_t *g = json_object_get(cls, "stopGracePeriodMs");
		if (n != NULL && strcmp(n, class_name) == 0 && json_is_integer(g) &&
		    json_integer_value(g) >= 0)
			return (uint64_t)json_integer_value(g);
	}
	return DEFAULT_GRACE_MS;
}

int berth_client_cmd_stop(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {
	        {"signal", required_argument, NULL, 's'},
	        {"grace", required_argument, NULL, 'g'},
	        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
	        {NULL, 0, NULL, 0},
	};
	cleanup_client struct berth_client *c = NULL;
	cleanup_json json_t *body = json_object();
	cleanup_json json_t *record = NULL;
	cleanup_free char *class_name = NULL;
	cleanup_free char *path = NULL;
	cleanup_free char *record_path = NULL;
	cleanup_free char *label = NULL;
	bool wait = true, grace_given = false;
	uint64_t grace = 0;
	int64_t deadline;
	const char *name;
	berth_error_t err;
	long status = 0;
	int opt, r, sig;

	while ((opt = berth_client_getopt(argc, argv, "s:g:", own, o)) != -1) {
		switch (opt) {
		case 's':
			if (berth_parse_signal(optarg, &sig, &err) < 0)
				return berth_client_usage_error("stop", "--signal: %s",
				                                err.message);
			json_object_set_new(body, "signal", json_integer(sig));
			break;
		case 'g':
			if (berth_parse_duration(optarg, &grace, &err) < 0)
				return berth_client_usage_error("stop", "--grace: %s", err.message);
			json_object_set_new(body, "graceMs", json_integer((json_int_t)grace));
			grace_given = true;
			break;
		case OPT_NO_WAIT:
			wait = false;
			break;
		default:
			return BERTH_CLIENT_EXIT_USAGE;
		}
	}
	if (o->help)
		return berth_client_help("stop");
	if ((r = berth_client_instance_operand("stop", argc, argv, &class_name, &name)) != 0 ||
	    (r = berth_client_connect("stop", o, &c)) != 0)
		return r;
	label = xasprintf("%s/%s", class_name, name);
	path = berth_client_instance_path(class_name, name, "/stop");
	record = berth_client_call(c, "POST", path, body, &status, &err);
	if (record == NULL)
		return berth_client_fail(&err);
	/* 202: the stop is under way. Follow it, as a person typing `stop` expects. */
	if (status != 202 || !wait)
		return report(o, record, label, NULL);
	if (!grace_given)
		grace = class_grace_ms(c, class_name);
	deadline = berth_client_now_ms() + (int64_t)grace + STOP_SLACK_MS;
	record_path = berth_client_instance_path(class_name, name, "");
	while (active(status_of(record))) {
		struct timespec pause = {0, STOP_POLL_MS * 1000000L};

		if (berth_client_now_ms() > deadline) {
			berth_error_set(&err, 0,
			                "%s is still %s %llus after the stop was asked for", label,
			                status_of(record),
			                (unsigned long long)(grace + STOP_SLACK_MS) / 1000);
			return berth_client_fail(&err);
		}
		nanosleep(&pause, NULL);
		json_decref(record);
		record = berth_client_call(c, "GET", record_path, NULL, NULL, &err);
		if (record == NULL)
			return berth_client_fail(&err);
	}
	return report(o, record, label, NULL);
}

/* POST an action without a body and report it. */
static int simple_action(const char *command, const char *words, int argc, char **argv,
                         struct berth_client_opts *o)
{
	cleanup_json json_t *record = NULL;
	cleanup_free char *suffix = xasprintf("/%s", command);
	cleanup_free char *label = NULL;
	int r = call_one(command, "POST", suffix, argc, argv, o, &record, &label);

	if (r != 0 || o->help)
		return r;
	return report(o, record, label, words);
}

int berth_client_cmd_destroy(int argc, char **argv, struct berth_client_opts *o)
{
	return simple_action("destroy", "destroyed", argc, argv, o);
}

int berth_client_cmd_renew(int argc, char **argv, struct berth_client_opts *o)
{
	return simple_action("renew", "renewed", argc, argv, o);
}
