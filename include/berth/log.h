/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Diagnostics on stderr: prefixed with the program name (text, the default),
 * or, when stderr goes to systemd's journal, with the sd-daemon priority
 * prefix instead (journald adds the program name and the time itself).
 */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

#include <stdbool.h>

enum berth_log_level {
	BERTH_LOG_ERROR,
	BERTH_LOG_WARN,
	BERTH_LOG_INFO,
	BERTH_LOG_DEBUG,
};

enum berth_log_format {
	BERTH_LOG_TEXT,    /* "berthd: warning: message" */
	BERTH_LOG_JOURNAL, /* "<4>message" on every line (sd-daemon(3)) */
};

/* Set the prefix ("berth", "berthd") and the most verbose level printed. */
void berth_log_init(const char *program, enum berth_log_level max);
/* Choose the line format; BERTH_LOG_TEXT until this is called. */
void berth_log_set_format(enum berth_log_format format);
enum berth_log_format berth_log_get_format(void);
/*
 * Whether stderr is a stream to the journal: systemd sets $JOURNAL_STREAM to
 * "DEVICE:INODE" of that stream, which must match fstat() of stderr (a child
 * whose stderr was redirected inherits the variable, not the stream).
 */
bool berth_log_stderr_is_journal(void);
/*
 * A --log-format value: "text", "journal", or "auto" (journal when
 * berth_log_stderr_is_journal()). Returns -1 on anything else.
 */
int berth_log_parse_format(const char *s, enum berth_log_format *format);
void berth_log(enum berth_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#define berth_error_log(...) berth_log(BERTH_LOG_ERROR, __VA_ARGS__)
#define berth_warn(...)      berth_log(BERTH_LOG_WARN, __VA_ARGS__)
#define berth_info(...)      berth_log(BERTH_LOG_INFO, __VA_ARGS__)
#define berth_debug(...)     berth_log(BERTH_LOG_DEBUG, __VA_ARGS__)

#endif
