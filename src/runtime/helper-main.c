/* SPDX-License-Identifier: Apache-2.0 */
/* berth-runtime: the runtime's helper as a program of its own (see helper.c). */
#include <stdio.h>
#include <string.h>

#include "runtime-internal.h"

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "start") != 0 && strcmp(argv[1], "exec") != 0)) {
		fprintf(stderr, "usage: berth-runtime start|exec\n\n"
		                "The helper of the berth runtime library; it is not meant to be "
		                "run by hand.\n");
		return 2;
	}
	/* argv[0] and argv[1] are adjacent: the area /proc/PID/cmdline shows. */
	return berth_helper_run(argv[1], argv[0],
	                        (size_t)(argv[1] + strlen(argv[1]) + 1 - argv[0]));
}
