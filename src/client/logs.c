/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `berth logs`: GET .../logs (text/plain, CRI records) streamed through the
 * CRI parser, stdout records to stdout and stderr records to stderr, each
 * piece flushed as it arrives so that `-f` is live.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "berth/parse.h"
#include "berth/util.h"
#include "client/client.h"

static int on_logs(const char *data, size_t len, void *arg, berth_error_t *err)
{
	struct berth_cri *p = arg;
	int r = berth_cri_feed(p, data, len);

	if (r == 0 && (fflush(stdout) == EOF || fflush(stderr) == EOF))
		r = errno != 0 ? -errno : -EIO;
	if (r < 0)
		return berth_error_set(err, -r, "write the logs");
	return 0;
}

int berth_client_cmd_logs(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {
	        {"follow", no_argument, NULL, 'f'},
	        {"tail", required_argument, NULL, 'n'},
	        {"timestamps", no_argument, NULL, 't'},
	        {NULL, 0, NULL, 0},
	};
	cleanup_client struct berth_client *c = NULL;
	cleanup_free char *class_name = NULL;
	cleanup_free char *path = NULL;
	cleanup_free char *query = NULL;
	bool follow = false, timestamps = false;
	const char *tail = NULL, *name;
	struct berth_cri parser;
	berth_error_t err;
	uint64_t n;
	int opt, r;

	while ((opt = berth_client_getopt(argc, argv, "fn:t", own, o)) != -1) {
		switch (opt) {
		case 'f':
			follow = true;
			break;
		case 'n':
			if (berth_parse_u64(optarg, 0, INT32_MAX, &n, &err) < 0)
				return berth_client_usage_error("logs", "--tail: %s", err.message);
			tail = optarg;
			break;
		case 't':
			timestamps = true;
			break;
		default:
			return BERTH_CLIENT_EXIT_USAGE;
		}
	}
	if (o->help)
		return berth_client_help("logs");
	if (o->json)
		return berth_client_usage_error("logs", "logs are text: there is no --json "
		                                        "(use --timestamps for each line's time)");
	if ((r = berth_client_instance_operand("logs", argc, argv, &class_name, &name)) != 0 ||
	    (r = berth_client_connect("logs", o, &c)) != 0)
		return r;
	if (tail != NULL)
		query = xasprintf("/logs?tail=%s%s", tail, follow ? "&follow=1" : "");
	else
		query = xstrdup(follow ? "/logs?follow=1" : "/logs");
	path = berth_client_instance_path(class_name, name, query);
	berth_cri_init(&parser, stdout, stderr, timestamps);
	r = berth_client_stream(c, path, on_logs, &parser, &err);
	/* Whatever arrived is shown, even when the stream broke off. */
	if (berth_cri_finish(&parser) == 0)
		fflush(stdout);
	if (r < 0)
		return berth_client_fail(&err);
	return 0;
}
