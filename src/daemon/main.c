/* SPDX-License-Identifier: Apache-2.0 */
/* berthd: the daemon. Named instances and the control API come with the daemon issue. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: berthd [--config FILE]\n\nThe berth daemon (not yet implemented: "
		       "use "
		       "`berth run` for now).\n");
		return 0;
	}
	fprintf(stderr, "berthd: not yet: the daemon is not implemented; use `berth run`\n");
	return 1;
}
