/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "berth/log.h"
#include "berth/version.h"
#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: berth COMMAND [OPTIONS]\n"
	           "\n"
	           "Commands:\n"
	           "  run       run a command in a new container, in the foreground\n"
	           "  image     pull, import, ls, inspect, rm images (berth image --help)\n"
	           "  version   print the version\n"
	           "  help      show this help\n"
	           "\n"
	           "Run `berth COMMAND --help` for the options of a command.\n");
}

int main(int argc, char **argv)
{
	berth_log_init("berth", BERTH_LOG_INFO);
	if (argc < 2) {
		usage(stderr);
		return BERTH_EXIT_USAGE;
	}
	if (strcmp(argv[1], "run") == 0)
		return berth_cli_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "image") == 0)
		return berth_cli_image(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("berth %s\n", BERTH_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "berth: unknown command `%s`\n", argv[1]);
	usage(stderr);
	return BERTH_EXIT_USAGE;
}
