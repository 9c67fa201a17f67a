/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Container log records in the CRI log format, as Kubernetes' container
 * runtimes write them, one per line:
 *
 *     2026-11-27T10:54:39.123456789Z stdout F hello world\n
 *
 * timestamp (RFC 3339, UTC, nanoseconds), stream (stdout or stderr), tag (F:
 * the content is a whole line; P: partial, the line goes on in the next
 * record), then the content. This is the reading of them apart from any
 * event loop, so the unit tests can pin it down.
 */
#ifndef BERTH_CRILOG_H
#define BERTH_CRILOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The longest record a reader has to hold: the writer splits lines at 16 KiB
 * of content, plus the header. A "line" longer than this is not a record.
 */
#define BERTH_CRILOG_CONTENT_MAX (16 * 1024)
#define BERTH_CRILOG_RECORD_MAX  (BERTH_CRILOG_CONTENT_MAX + 64)

/* "2026-11-27T10:54:39.123456789Z" and its NUL. */
#define BERTH_CRILOG_TIME_LEN 31

/*
 * An RFC 3339 date-time (`2026-11-27T10:54:39.123456789Z`, `...39Z`,
 * `...39.5+02:00`) as nanoseconds since the epoch. At most 9 fractional
 * digits; only instants an int64 of nanoseconds holds (1677 to 2262).
 * Returns 0, -EINVAL, or -ERANGE for an instant outside those years.
 */
int berth_crilog_parse_time(const char *s, size_t len, int64_t *ns);

/* The record timestamp of `ns` nanoseconds since the epoch (UTC, 9 digits). */
void berth_crilog_format_time(int64_t ns, char out[BERTH_CRILOG_TIME_LEN]);

/*
 * Whether `rec` (`len` bytes, without its '\n') is a record: a timestamp,
 * `stdout` or `stderr`, `F` or `P`, each followed by one space, then content
 * without a newline, at most BERTH_CRILOG_RECORD_MAX bytes in all. When it is
 * and `ns` is not NULL, the timestamp goes there.
 */
bool berth_crilog_valid(const char *rec, size_t len, int64_t *ns);

/*
 * Count records backwards from the end of `buf`, a window of a log file:
 * `len` bytes whose lines end at its last '\n' (bytes after it, a record
 * still being written, are ignored). Lines that are not records are passed
 * over and not counted. The window's first line counts only when
 * `at_line_start` (the window starts a line, as at the file's start):
 * otherwise it may be the end of a longer line.
 *
 * Stops after `want` records (*found then equals `want`). Returns where the
 * next window, further back, should end: the start of the earliest line
 * passed (so with *found == want, where the last `want` records begin), or
 * the end of the complete lines when `want` is 0. A window that is all one
 * unfinished line gives 0 and nothing found: the line is longer than the
 * window, so not a record; the next window ignores what of it remains, as
 * an unfinished line at its end.
 */
size_t berth_crilog_tail(const char *buf, size_t len, bool at_line_start, size_t want,
                         size_t *found);

/*
 * Where the last `want` records of the log file `fd` begin, reading it
 * backwards from offset `end` in windows of `buf` (`size` bytes, more than
 * BERTH_CRILOG_RECORD_MAX), never more at once. On success *found records
 * are there from *start to `end`; fewer than `want` when the file has fewer,
 * and then *start is 0. With `want` 0, *start is the end of the complete
 * records. Returns 0 or -errno.
 */
int berth_crilog_tail_fd(int fd, uint64_t end, size_t want, char *buf, size_t size, uint64_t *start,
                         size_t *found);

#endif
