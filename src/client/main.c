/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bin/berth-client, run by `berth` as `berth COMMAND ...` (argv[0] "berth").
 * Connection options may come before the command too: berth --host H ps.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "berth/log.h"
#include "client/client.h"

int main(int argc, char **argv)
{
	static const struct option none[] = {{NULL, 0, NULL, 0}};
	struct berth_client_opts o = {0};
	const struct berth_client_command *cmd;
	int r;

	berth_log_init("berth", BERTH_LOG_INFO);
	/* Messages name the program as its users type it, however it was started. */
	argv[0] = (char *)"berth";
	optind = 0;
	/* "+": stop at the command; what follows is the command's. */
	if (berth_client_getopt(argc, argv, "+", none, &o) != -1)
		return BERTH_CLIENT_EXIT_USAGE;
	if (optind >= argc) {
		berth_client_list(o.help ? stdout : stderr);
		return o.help ? 0 : BERTH_CLIENT_EXIT_USAGE;
	}
	argc -= optind;
	argv += optind;
	if (strcmp(argv[0], "help") == 0) {
		if (argc != 2)
			return berth_client_usage_error(NULL, "usage: berth help COMMAND");
		return berth_client_help(argv[1]);
	}
	cmd = berth_client_command_find(argv[0]);
	if (cmd == NULL)
		return berth_client_usage_error(NULL, "unknown command `%s`", argv[0]);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "berth: cannot initialise libcurl\n");
		return BERTH_CLIENT_EXIT_FAILED;
	}
	optind = 0;
	r = cmd->run(argc, argv, &o);
	curl_global_cleanup();
	return r;
}
