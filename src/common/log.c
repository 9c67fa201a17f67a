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

#ifdef BERTH_TRACE_ENABLED
#include <time.h>
#include <unistd.h>

#include "berth/trace.h"

void berth_trace(const char *step)
{
	struct timespec t;
	char line[160];
	int n;

	clock_gettime(CLOCK_MONOTONIC, &t);
	n = snprintf(line, sizeof(line), "TRACE %lld.%06ld %d %s\n", (long long)t.tv_sec,
	             t.tv_nsec / 1000, (int)getpid(), step);
	/* One write(2): async-signal-safe, usable between fork and exec. */
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
#endif
