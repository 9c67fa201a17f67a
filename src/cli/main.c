/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "berth/log.h"
#include "berth/runtime.h"
#include "berth/version.h"
#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: berth COMMAND [OPTIONS]\n"
	           "\n"
	           "Containers in the foreground:\n"
	           "  run       run a command in a new container\n"
	           "\n"
	           "Images (OCI layouts, archives, registries) in STATE/images:\n"
	           "  image     pull, import, ls, inspect, rm, prune (berth image --help)\n"
	           "\n"
	           "Instances of berthd (the daemon):\n"
	           "  ps        list instances\n"
	           "  inspect   show an instance's record\n"
	           "  state     show an instance's state\n"
	           "  start     start an instance and wait until it is ready\n"
	           "  stop      stop an instance\n"
	           "  destroy   stop an instance and remove its container\n"
	           "  renew     keep an instance awake\n"
	           "  logs      print an instance's output\n"
	           "  exec      run a command in an instance's container\n"
	           "  cp        copy a file into or out of an instance's container\n"
	           "  ls        list files in an instance's container\n"
	           "  proc      start, list, follow and kill background processes\n"
	           "  events    print lifecycle events\n"
	           "  classes   list container classes\n"
	           "\n"
	           "  version   print the version\n"
	           "  help      show this help, or `berth help COMMAND` a command's\n"
	           "\n"
	           "The daemon's commands reach berthd at --socket PATH ($BERTH_SOCKET, default\n"
	           "/run/berth/berth.sock) or --host HOST:PORT ($BERTH_HOST, with $BERTH_TOKEN\n"
	           "or --token-file). Run `berth COMMAND --help` for the options of a command.\n");
}

/*
 * The daemon's commands live in berth-client, which links libcurl: berth
 * itself stays static, so that `berth run` starts without the dynamic
 * loader. Found as berth-runtime is: $BERTH_CLIENT, else next to this
 * binary (bin/ in the build tree), else the install location.
 */
static int exec_client(char **argv)
{
	const char *env = getenv("BERTH_CLIENT");
	char path[PATH_MAX], self[PATH_MAX];
	char *slash;
	ssize_t n;

	if (env != NULL && *env != '\0') {
		snprintf(path, sizeof(path), "%s", env);
	} else {
		path[0] = '\0';
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n > 0) {
			self[n] = '\0';
			slash = strrchr(self, '/');
			if (slash != NULL) {
				*slash = '\0';
				if (snprintf(path, sizeof(path), "%s/berth-client", self) >=
				            (int)sizeof(path) ||
				    access(path, X_OK) != 0)
					path[0] = '\0';
			}
		}
		if (path[0] == '\0')
			snprintf(path, sizeof(path), "%s/berth-client", BERTH_LIBEXECDIR);
	}
	/* Messages say "berth", whatever path the user typed. */
	argv[0] = (char *)"berth";
	execv(path, argv);
	berth_error_log("cannot run `%s`: %s (berth's daemon commands need it)", path,
	                strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	berth_log_init("berth", BERTH_LOG_INFO);
	if (argc < 2) {
		usage(stderr);
		return BERTH_EXIT_USAGE;
	}
	if (strcmp(argv[1], "run") == 0) {
		/* Our argv strings are contiguous; the containers' inits rename their copy. */
		berth_runtime_fork_helper(
		        argv[0], (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]));
		return berth_cli_run(argc - 1, argv + 1);
	}
	if (strcmp(argv[1], "image") == 0)
		return berth_cli_image(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("berth %s\n", BERTH_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		if (argc == 2 || strcmp(argv[1], "help") != 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[2], "run") == 0) {
			char *run_help[] = {argv[2], (char *)"--help", NULL};
			return berth_cli_run(2, run_help);
		}
		if (strcmp(argv[2], "image") == 0) {
			char *image_help[] = {argv[2], (char *)"--help", NULL};
			return berth_cli_image(2, image_help);
		}
		if (strcmp(argv[2], "help") == 0 || strcmp(argv[2], "version") == 0) {
			usage(stdout);
			return 0;
		}
	}
	/* Every other command, and an unknown one, is the client's to answer. */
	return exec_client(argv);
}
