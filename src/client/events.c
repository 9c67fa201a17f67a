/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `berth events`: GET /v1/events (server-sent events). Without --follow it
 * asks for the history only (follow=0), which berthd ends; with it, the
 * stream goes on until Ctrl-C.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "berth/parse.h"
#include "berth/util.h"
#include "client/client.h"

#define SHORT_ID 12 /* an instance id is 64 hex digits; this many tell them apart */

struct events_out {
	bool json;
};

/* A value of an event's details: strings as they are, the rest as JSON. */
static char *value_text(const json_t *v)
{
	char *s = json_is_string(v) ? xstrdup(json_string_value(v))
	                            : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s == NULL)
		abort();
	berth_client_sanitize(s);
	return s;
}

/* "TIME  TYPE  CLASS/NAME  key=value ..." */
static int print_event(const json_t *ev)
{
	const json_t *data = json_object_get(ev, "data");
	const char *class_name = json_string_value(json_object_get(ev, "class"));
	const char *type = json_string_value(json_object_get(ev, "type"));
	const char *name = json_string_value(json_object_get(data, "name"));
	const char *id = json_string_value(json_object_get(ev, "instance"));
	cleanup_free char *who = NULL;
	cleanup_free char *kind = xstrdup(type != NULL ? type : "?");
	const char *key;
	json_t *v;
	char when[40];

	berth_client_time(json_integer_value(json_object_get(ev, "time")), when, sizeof(when));
	if (name != NULL)
		who = xasprintf("%s/%s", class_name != NULL ? class_name : "-", name);
	else if (id != NULL)
		who = xasprintf("%s/%.*s", class_name != NULL ? class_name : "-", SHORT_ID, id);
	else
		who = xstrdup(class_name != NULL ? class_name : "-");
	berth_client_sanitize(who);
	berth_client_sanitize(kind);
	printf("%s  %-12s  %s", when, kind, who);
	json_object_foreach ((json_t *)data, key, v) {
		cleanup_free char *k = xstrdup(key);
		cleanup_free char *text = NULL;

		if (strcmp(key, "name") == 0)
			continue; /* shown in CLASS/NAME */
		text = value_text(v);
		berth_client_sanitize(k);
		printf(" %s=%s", k, text);
	}
	putchar('\n');
	return 0;
}

static int on_event(const char *id, const char *type, const char *data, void *arg,
                    berth_error_t *err)
{
	struct events_out *out = arg;
	json_error_t jerr;
	json_t *ev;
	(void)type;

	if (out->json) {
		/* The API's object as it sent it, one a line. */
		printf("%s\n", data);
	} else {
		ev = json_loads(data, 0, &jerr);
		if (ev == NULL)
			return berth_error_set(err, 0, "event %s from berthd is not JSON: %s", id,
			                       jerr.text);
		print_event(ev);
		json_decref(ev);
	}
	if (fflush(stdout) == EOF)
		return berth_error_set(err, errno, "write the events");
	return 0;
}

static int on_stream(const char *data, size_t len, void *arg, berth_error_t *err)
{
	return berth_sse_feed(arg, data, len, err);
}

enum {
	OPT_CLASS = 256,
	OPT_NAME,
	OPT_SINCE,
};

int berth_client_cmd_events(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {
	        {"class", required_argument, NULL, OPT_CLASS},
	        {"name", required_argument, NULL, OPT_NAME},
	        {"since", required_argument, NULL, OPT_SINCE},
	        {"follow", no_argument, NULL, 'f'},
	        {NULL, 0, NULL, 0},
	};
	cleanup_client struct berth_client *c = NULL;
	cleanup_free char *class_e = NULL;
	cleanup_free char *name_e = NULL;
	cleanup_free char *path = NULL;
	const char *class_name = NULL, *name = NULL, *since = NULL;
	struct events_out out = {0};
	struct berth_sse sse;
	bool follow = false;
	berth_error_t err;
	uint64_t seq;
	int opt, r;

	while ((opt = berth_client_getopt(argc, argv, "f", own, o)) != -1) {
		switch (opt) {
		case OPT_CLASS:
			class_name = optarg;
			break;
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_SINCE:
			if (berth_parse_u64(optarg, 0, INT64_MAX, &seq, &err) < 0)
				return berth_client_usage_error("events", "--since: %s",
				                                err.message);
			since = optarg;
			break;
		case 'f':
			follow = true;
			break;
		default:
			return BERTH_CLIENT_EXIT_USAGE;
		}
	}
	if (o->help)
		return berth_client_help("events");
	if (optind < argc)
		return berth_client_usage_error("events", "unexpected argument `%s`", argv[optind]);
	if (name != NULL && class_name == NULL)
		return berth_client_usage_error("events", "--name needs --class");
	if ((r = berth_client_connect("events", o, &c)) != 0)
		return r;
	/*
	 * A listing starts at the first recorded event; following without
	 * --since starts now, as berthd does without `since`.
	 */
	if (since == NULL && !follow)
		since = "0";
	class_e = class_name != NULL ? berth_client_escape(class_name) : NULL;
	name_e = name != NULL ? berth_client_escape(name) : NULL;
	path = xasprintf("/v1/events?follow=%d%s%s%s%s%s%s", follow, since != NULL ? "&since=" : "",
	                 since != NULL ? since : "", class_e != NULL ? "&class=" : "",
	                 class_e != NULL ? class_e : "", name_e != NULL ? "&name=" : "",
	                 name_e != NULL ? name_e : "");
	out.json = o->json;
	berth_sse_init(&sse, on_event, &out);
	r = berth_client_stream(c, path, on_stream, &sse, &err);
	berth_sse_free(&sse);
	if (r < 0)
		return berth_client_fail(&err);
	return 0;
}
