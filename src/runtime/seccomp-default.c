/* SPDX-License-Identifier: Apache-2.0 */
/* berth's seccomp profile as compiled at build time (see src/tools/gen-seccomp.c). */
#include "berth/util.h"
#include "security.h"

#include "seccomp-bpf.h"

const struct sock_fprog *berth_seccomp_default(void)
{
	static const struct sock_fprog prog = {
	        .len = BERTH_ARRAY_SIZE(berth_seccomp_default_filter),
	        .filter = (struct sock_filter *)berth_seccomp_default_filter,
	};
	return &prog;
}
