/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>

#include "berth/log.h"

static const char *log_program = "berth";
static enum berth_log_level log_max = BERTH_LOG_INFO;

void berth_log_init(const char *program, enum berth_log_level max)
{
	log_program = program;
	log_max = max;
}

void berth_log(enum berth_log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = {
		[BERTH_LOG_ERROR] = "",
		[BERTH_LOG_WARN] = "warning: ",
		[BERTH_LOG_INFO] = "",
		[BERTH_LOG_DEBUG] = "debug: ",
	};
	char line[2048];
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line keeps concurrent writers from interleaving mid-line. */
	fprintf(stderr, "%s: %s%s\n", log_program, prefix[level], line);
}
