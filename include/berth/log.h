/* SPDX-License-Identifier: Apache-2.0 */
/* Diagnostics on stderr, prefixed with the program name. */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

enum berth_log_level {
	BERTH_LOG_ERROR,
	BERTH_LOG_WARN,
	BERTH_LOG_INFO,
	BERTH_LOG_DEBUG,
};

/* Set the prefix ("berth", "berthd") and the most verbose level printed. */
void berth_log_init(const char *program, enum berth_log_level max);
void berth_log(enum berth_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#define berth_error_log(...) berth_log(BERTH_LOG_ERROR, __VA_ARGS__)
#define berth_warn(...)      berth_log(BERTH_LOG_WARN, __VA_ARGS__)
#define berth_info(...)      berth_log(BERTH_LOG_INFO, __VA_ARGS__)
#define berth_debug(...)     berth_log(BERTH_LOG_DEBUG, __VA_ARGS__)

#endif
