/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container's log, written by its init (see runtime-internal.h): the
 * entrypoint's stdout and stderr arrive on two pipes and leave as CRI log
 * records, one writev(2) each on an O_APPEND file, so a reader sees whole
 * records or (briefly) a record still without its newline, never a mix:
 *
 *   2026-11-27T10:54:39.123456789Z stdout F hello, world
 *
 * `F` marks a whole line; `P` a part of a longer one (split every 16 KiB),
 * or a last line the process never ended. A file that would pass the size
 * bound is rotated first: .K-1 → .K, …, container.log → .1, then a fresh one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "berth/crilog.h"
#include "berth/util.h"
#include "runtime-internal.h"

#define LOG_FILE          "container.log"
#define DEFAULT_MAX_BYTES (10ull * 1024 * 1024)

static int open_current(struct berth_log_writer *w, bool truncate, berth_error_t *err)
{
	struct stat st;
	int fd = openat(w->dir_fd, LOG_FILE,
	                O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
	                        (truncate ? O_TRUNC : 0),
	                0640);

	if (fd < 0)
		return berth_error_set(err, errno, "open the container's log");
	if (fstat(fd, &st) < 0) {
		int r = berth_error_set(err, errno, "stat the container's log");
		close(fd);
		return r;
	}
	w->file_fd = fd;
	w->size = (uint64_t)st.st_size;
	return 0;
}

int berth_log_writer_open(struct berth_log_writer *w, int dir_fd, uint64_t max_bytes,
                          unsigned max_files, berth_error_t *err)
{
	memset(w, 0, sizeof(*w));
	w->dir_fd = dir_fd;
	w->file_fd = -1;
	w->max_bytes = max_bytes > 0 ? max_bytes : DEFAULT_MAX_BYTES;
	w->max_files = max_files;
	return open_current(w, false, err);
}

void berth_log_writer_close(struct berth_log_writer *w)
{
	berth_close_keep_errno(w->file_fd);
	w->file_fd = -1;
}

/* Make room: shift the rotated files up by one and start a new current file. */
static void rotate(struct berth_log_writer *w)
{
	char from[32], to[32];

	for (unsigned k = w->max_files; k >= 2; k--) {
		snprintf(from, sizeof(from), LOG_FILE ".%u", k - 1);
		snprintf(to, sizeof(to), LOG_FILE ".%u", k);
		renameat(w->dir_fd, from, w->dir_fd, to);
	}
	if (w->max_files > 0)
		renameat(w->dir_fd, LOG_FILE, w->dir_fd, LOG_FILE ".1");
	/* Without rotated files the old records simply go (O_TRUNC below). */
	close(w->file_fd);
	w->file_fd = -1;
	if (open_current(w, w->max_files == 0, NULL) < 0)
		w->size = 0; /* records are dropped until the next rotation retries */
}

/* "2026-11-27T10:54:39.123456789Z " into `out` (at least BERTH_CRILOG_TIME_LEN + 1 bytes). */
static size_t timestamp(char *out)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	berth_crilog_format_time((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, out);
	out[BERTH_CRILOG_TIME_LEN - 1] = ' ';
	return BERTH_CRILOG_TIME_LEN;
}

static void write_record(struct berth_log_writer *w, const char *stream, bool partial,
                         const char *data, size_t len)
{
	char head[64];
	size_t n = timestamp(head);
	struct iovec iov[3];
	uint64_t total;
	ssize_t done;

	n += (size_t)snprintf(head + n, sizeof(head) - n, "%s %c ", stream, partial ? 'P' : 'F');
	iov[0] = (struct iovec){head, n};
	iov[1] = (struct iovec){(void *)data, len};
	iov[2] = (struct iovec){(void *)"\n", 1};
	total = n + len + 1;
	if (w->size > 0 && w->size + total > w->max_bytes)
		rotate(w);
	if (w->file_fd < 0) {
		if (open_current(w, false, NULL) < 0)
			return;
	}
	/* A full disk loses records, never the container's progress. */
	do
		done = writev(w->file_fd, iov, 3);
	while (done < 0 && errno == EINTR);
	if (done > 0)
		w->size += (uint64_t)done;
}

/* Whole lines out of the stream's buffer; a full buffer without one goes as a part. */
static void emit_lines(struct berth_log_writer *w, struct berth_log_stream *s, bool final)
{
	size_t start = 0;

	for (;;) {
		char *nl = memchr(s->buf + start, '\n', s->len - start);
		if (nl == NULL)
			break;
		write_record(w, s->name, false, s->buf + start, (size_t)(nl - (s->buf + start)));
		start = (size_t)(nl - s->buf) + 1;
	}
	if (start < s->len && (final || (start == 0 && s->len == sizeof(s->buf)))) {
		write_record(w, s->name, true, s->buf + start, s->len - start);
		start = s->len;
	}
	memmove(s->buf, s->buf + start, s->len - start);
	s->len -= start;
}

int berth_log_pump(struct berth_log_writer *w, struct berth_log_stream *s)
{
	/* Bounded work per call, so one chatty stream does not starve the other. */
	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : 1;
		if (n == 0) {
			emit_lines(w, s, true);
			return 1;
		}
		s->len += (size_t)n;
		emit_lines(w, s, false);
	}
	return 0;
}

void berth_log_finish(struct berth_log_writer *w, struct berth_log_stream *s)
{
	/* What the pipe still holds (it is non-blocking), then any unended line. */
	if (s->fd >= 0)
		berth_log_pump(w, s);
	emit_lines(w, s, true);
}
