/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/log.h"

static const char *log_program = "berth";
static enum berth_log_level log_max = BERTH_LOG_INFO;
static enum berth_log_format log_format = BERTH_LOG_TEXT;

void berth_log_init(const char *program, enum berth_log_level max)
{
	log_program = program;
	log_max = max;
}

void berth_log_set_format(enum berth_log_format format)
{
	log_format = format;
}

enum berth_log_format berth_log_get_format(void)
{
	return log_format;
}

/* One decimal number of $JOURNAL_STREAM, ending at `end`. */
static bool parse_number(const char *s, char end, const char **rest, unsigned long long *v)
{
	char *e;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &e, 10);
	if (errno != 0 || *e != end)
		return false;
	*rest = e;
	return true;
}

bool berth_log_stderr_is_journal(void)
{
	const char *s = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (s == NULL || !parse_number(s, ':', &s, &dev) || !parse_number(s + 1, '\0', &s, &ino))
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

int berth_log_parse_format(const char *s, enum berth_log_format *format)
{
	if (strcmp(s, "text") == 0)
		*format = BERTH_LOG_TEXT;
	else if (strcmp(s, "journal") == 0)
		*format = BERTH_LOG_JOURNAL;
	else if (strcmp(s, "auto") == 0)
		*format = berth_log_stderr_is_journal() ? BERTH_LOG_JOURNAL : BERTH_LOG_TEXT;
	else
		return -1;
	return 0;
}

/*
 * journald reads the stream line by line and takes each line's priority from
 * that line's own prefix (a line without one gets the unit's SyslogLevel=),
 * so every line of a message gets it. The program name and the time are left
 * out: the journal records both.
 */
static void write_journal(enum berth_log_level level, const char *msg)
{
	/* sd-daemon(3)'s SD_ERR, SD_WARNING, SD_INFO and SD_DEBUG. */
	static const char *const prio[] = {
	        [BERTH_LOG_ERROR] = "<3>",
	        [BERTH_LOG_WARN] = "<4>",
	        [BERTH_LOG_INFO] = "<6>",
	        [BERTH_LOG_DEBUG] = "<7>",
	};
	/* Room for a 2 KiB message made of newlines only, each then 4 bytes. */
	char out[4 * 2048 + 1];
	const char *p = msg;
	size_t n = 0;

	for (;;) {
		size_t len = strcspn(p, "\n");
		int w = snprintf(out + n, sizeof(out) - n, "%s%.*s\n", prio[level], (int)len, p);

		if (w < 0 || (size_t)w >= sizeof(out) - n) {
			out[n] = '\0';
			break;
		}
		n += (size_t)w;
		p += len;
		/* A message's final newline does not start an empty line. */
		if (p[0] == '\0' || p[1] == '\0')
			break;
		p++;
	}
	/* One call per message keeps concurrent writers from interleaving mid-line. */
	fwrite(out, 1, n, stderr);
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
	if (log_format == BERTH_LOG_JOURNAL) {
		write_journal(level, line);
		return;
	}
	/* One fprintf per line keeps concurrent writers from interleaving mid-line. */
	fprintf(stderr, "%s: %s%s\n", log_program, prefix[level], line);
}

#ifdef BERTH_TRACE_ENABLED
#include <time.h>

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
