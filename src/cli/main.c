/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "berth: not yet\n");
	return 1;
}
