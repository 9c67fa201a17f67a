/* SPDX-License-Identifier: Apache-2.0 */
/* berth-runtime: the runtime's helper as a program of its own (see helper.c), and its zygote. */
#include <stdio.h>
#include <string.h>

#include "runtime-internal.h"

int main(int argc, char **argv)
{
	size_t area_len;

	if (argc != 2 || (strcmp(argv[1], "start") != 0 && strcmp(argv[1], "exec") != 0 &&
	                  strcmp(argv[1], "serve") != 0)) {
		fprintf(stderr, "usage: berth-runtime start|exec|serve\n\n"
		                "The helper of the berth runtime library; it is not meant to be "
		                "run by hand.\n");
		return 2;
	}
	/* argv[0] and argv[1] are adjacent: the area /proc/PID/cmdline shows. */
	area_len = (size_t)(argv[1] + strlen(argv[1]) + 1 - argv[0]);
	/* The zygote (zygote.c): the library's socket on fd 3; its helpers get this area. */
	if (strcmp(argv[1], "serve") == 0)
		return berth_zygote_serve(BERTH_HELPER_SPEC_FD, argv[0], area_len);
	return berth_helper_run(argv[1], argv[0], area_len);
}
