/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The logs endpoint (see logs.h). A reader goes through three steps, each
 * owned by one side at a time: opening the files and finding where to begin
 * (a job on the thread pool), reading (jobs of at most 64 KiB, one at a
 * time), and with follow, waiting for inotify (a uv_fs_event_t on the
 * instance's log directory) to say that something was written, created or
 * renamed. While a job runs, only it touches the files and the buffer; the
 * loop touches the request.
 *
 * Rotation, as the writer does it: container.log.k → .k+1 from the oldest
 * down, container.log → .1, then a new container.log. A follower that reads
 * to the end of its file then checks whether container.log is still that
 * file; if not, every write to the old one came before the rename, so one
 * more read to its end finishes it, and the new file is read from 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/crilog.h"
#include "berth/fs.h"
#include "berth/log.h"
#include "berth/parse.h"
#include "berth/util.h"
#include "daemon/daemon.h"
#include "daemon/logs.h"

#define READ_CHUNK  65536        /* one read, and the most a reader holds */
#define QUEUE_HIGH  (256 * 1024) /* no more reads while the client has this much queued */
#define QUEUE_LOW   (64 * 1024)  /* ... until it is down to this */
#define READERS_MAX 256
#define CURRENT     "container.log"
#define RECHECK_MS  250 /* while container.log is missing (see reader.recheck) */

enum step {
	STEP_DATA,   /* bytes were added to the buffer */
	STEP_WAIT,   /* at the end of the current file: wait for inotify */
	STEP_DONE,   /* everything there was (no follow) */
	STEP_FAILED, /* errno in `error` */
};

struct reader {
	struct berthd *d;
	struct berth_http_request *req; /* NULL once ended */
	struct reader *prev, *next;
	char id[BERTH_ID_LEN + 1];
	char *dir; /* STATE_DIR/logs/ID */
	bool follow;
	bool has_tail;
	size_t tail;
	bool has_since;
	int64_t since_ns;
	unsigned max_files;

	/* The job's while one runs. */
	int dirfd;
	int *fds;          /* the files, oldest first; fds[cur] is being read */
	struct stat *seen; /* what open_all() found */
	size_t n_fds, cur;
	uint64_t offset;
	uint64_t last_end; /* without follow: where the newest file ended when opened */
	bool rotated;      /* fds[cur] is no longer container.log */
	char *buf;         /* READ_CHUNK bytes; the first `have` are read, not yet sent */
	size_t have;
	bool skipping; /* inside a line too long to be a record: drop up to its '\n' */
	size_t dropped;
	enum step step;
	int error;
	const char *failed_op;

	/* The loop's. */
	uv_work_t work;
	uv_fs_event_t watch;
	/*
	 * A look again while container.log is missing: inotify says nothing
	 * when the directory itself goes while we hold it open (its self-events
	 * come only with the last reference), so a removal is checked by time.
	 */
	uv_timer_t recheck;
	bool busy;     /* a job runs */
	bool watching; /* `watch` and `recheck` are open */
	int closing;   /* of them, how many are still closing */
	bool dirty;    /* something changed while a job ran */
	bool draining; /* waiting for the client's queue to go down */
	bool streaming;
	bool ended;
};

struct berthd_logs {
	struct reader *readers;
	size_t n_readers;
};

static void pump(struct reader *r);

void berthd_logs_init(struct berthd *d)
{
	d->logs = xcalloc(1, sizeof(struct berthd_logs));
}

/* ---- the thread pool's side ---- */

static enum step fail(struct reader *r, const char *op, int error)
{
	r->failed_op = op;
	r->error = error;
	return STEP_FAILED;
}

/*
 * Open container.log and the rotated files into fds[], oldest first, their
 * stat in seen[]. They are opened newest first: a rotation between two opens
 * then shows a file again under an older name (skipped, by its inode) rather
 * than hiding one. Returns how many, or -errno.
 */
static void close_fds(struct reader *r, size_t from, size_t to);

/* One log file, if it is there (-ENOENT otherwise): a regular file, never a symlink. */
static int open_log(struct reader *r, const char *name, struct stat *st)
{
	int fd = openat(r->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		berth_close_keep_errno(fd);
		return -errno;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

static int open_all(struct reader *r)
{
	size_t n = 0;

	for (unsigned k = 0; k <= r->max_files; k++) {
		char name[sizeof(CURRENT) + 12];
		struct stat st;
		bool dup = false;
		int fd;

		snprintf(name, sizeof(name), "%s.%u", CURRENT, k);
		fd = open_log(r, k == 0 ? CURRENT : name, &st);
		if (fd == -ENOENT)
			continue; /* never written, or mid-rotation */
		if (fd < 0) {
			close_fds(r, 0, n);
			r->failed_op = "open";
			return fd;
		}
		for (size_t i = 0; i < n; i++)
			dup |= r->seen[i].st_dev == st.st_dev && r->seen[i].st_ino == st.st_ino;
		if (dup) {
			close(fd);
			continue;
		}
		r->seen[n] = st;
		r->fds[n++] = fd;
	}
	for (size_t i = 0; i < n / 2; i++) {
		int fd = r->fds[i];
		struct stat st = r->seen[i];
		r->fds[i] = r->fds[n - 1 - i];
		r->fds[n - 1 - i] = fd;
		r->seen[i] = r->seen[n - 1 - i];
		r->seen[n - 1 - i] = st;
	}
	return (int)n;
}

/* Close fds[from, to). */
static void close_fds(struct reader *r, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		if (r->fds[i] >= 0)
			close(r->fds[i]);
		r->fds[i] = -1;
	}
}

/* The files, and where to begin: the oldest record, or the last `tail` ones. */
static enum step open_files(struct reader *r)
{
	berth_error_t err;
	size_t n;
	int ret;

	if (r->follow && berth_mkdir_p(r->dir, 0750, &err) < 0)
		return fail(r, "mkdir", -berth_error_ret(&err));
	r->dirfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dirfd < 0)
		return errno == ENOENT ? STEP_DONE : fail(r, "open", errno);
	ret = open_all(r);
	if (ret < 0)
		return fail(r, r->failed_op, -ret);
	n = (size_t)ret;
	r->n_fds = n;
	r->cur = 0;
	r->offset = 0;
	if (n > 0)
		r->last_end = (uint64_t)r->seen[n - 1].st_size;
	if (!r->has_tail || n == 0)
		return STEP_DATA;
	/* The last N records: backwards from the newest file, as far back as needed. */
	for (size_t want = r->tail, i = n; i-- > 0;) {
		uint64_t start;
		size_t found;

		ret = berth_crilog_tail_fd(r->fds[i], (uint64_t)r->seen[i].st_size, want, r->buf,
		                           READ_CHUNK, &start, &found);
		if (ret < 0)
			return fail(r, "read", -ret);
		want -= found;
		if (want == 0 || i == 0) {
			r->cur = i;
			r->offset = want == 0 ? start : 0;
			break;
		}
	}
	close_fds(r, 0, r->cur);
	return STEP_DATA;
}

/* On to the next file: what is left of this one never ended its line. */
static void next_file(struct reader *r)
{
	close_fds(r, r->cur, r->cur + 1);
	r->cur++;
	r->offset = 0;
	r->rotated = false;
	r->dropped += r->have;
	r->have = 0;
	r->skipping = false;
}

/* The log directory was removed (the instance's logs were deleted): nothing more will come. */
static bool dir_removed(struct reader *r)
{
	struct stat st;

	return fstat(r->dirfd, &st) == 0 && st.st_nlink == 0;
}

/*
 * Whether container.log is now another file than fds[cur] (1), or not (0;
 * also while it is missing, mid-rotation), or the directory itself was
 * removed (-ENOENT: nothing more will be written there).
 */
static int check_rotated(struct reader *r)
{
	struct stat cur, named;

	if (fstat(r->fds[r->cur], &cur) < 0)
		return -errno;
	if (fstatat(r->dirfd, CURRENT, &named, AT_SYMLINK_NOFOLLOW) == 0)
		return named.st_dev != cur.st_dev || named.st_ino != cur.st_ino;
	if (errno != ENOENT)
		return -errno;
	return dir_removed(r) ? -ENOENT : 0;
}

/*
 * fds[cur], read to its end, was rotated: go on with the files newer than it.
 * Usually that is the new container.log alone; a reader that fell behind
 * finds more (its file at .2, say: then .1 and container.log). If its file
 * was rotated out of existence (more than max_files rotations behind), every
 * file there is newer.
 */
static enum step switch_files(struct reader *r)
{
	int old = r->fds[r->cur];
	size_t n, first = 0;
	struct stat st;
	int ret;

	if (fstat(old, &st) < 0)
		return fail(r, "stat", errno);
	r->fds[r->cur] = -1;
	ret = open_all(r);
	if (ret < 0) {
		r->fds[r->cur] = old;
		return fail(r, r->failed_op, -ret);
	}
	n = (size_t)ret;
	for (size_t i = 0; i < n; i++)
		if (r->seen[i].st_dev == st.st_dev && r->seen[i].st_ino == st.st_ino)
			first = i + 1;
	if (first == n) {
		/* Nothing newer after all (container.log went away): keep waiting. */
		close_fds(r, 0, n);
		r->fds[0] = old;
		r->cur = 0;
		r->n_fds = 1;
		return STEP_WAIT;
	}
	close(old);
	close_fds(r, 0, first);
	r->n_fds = n;
	r->cur = first - 1;
	next_file(r);
	return STEP_DATA;
}

static enum step read_step(struct reader *r)
{
	for (;;) {
		size_t room = READ_CHUNK - r->have;
		enum step step;
		ssize_t n;
		int ret;

		if (r->cur == r->n_fds) {
			/* Following an empty directory: has something been written? */
			if (!r->follow)
				return STEP_DONE;
			ret = open_all(r);
			if (ret < 0)
				return fail(r, r->failed_op, -ret);
			if (ret == 0)
				return dir_removed(r) ? STEP_DONE : STEP_WAIT;
			r->n_fds = (size_t)ret;
			r->cur = 0;
			r->offset = 0;
		}
		if (!r->follow && r->cur == r->n_fds - 1 && r->last_end - r->offset < room)
			room = (size_t)(r->last_end - r->offset);
		n = room > 0 ? pread(r->fds[r->cur], r->buf + r->have, room, (off_t)r->offset) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(r, "read", errno);
		if (n > 0) {
			r->offset += (uint64_t)n;
			r->have += (size_t)n;
			return STEP_DATA;
		}
		/* The end of this file, for now. */
		if (r->cur + 1 < r->n_fds) {
			next_file(r);
			continue;
		}
		if (!r->follow)
			return STEP_DONE;
		if (!r->rotated) {
			ret = check_rotated(r);
			if (ret == -ENOENT)
				return STEP_DONE;
			if (ret < 0)
				return fail(r, "stat", -ret);
			if (ret == 0)
				return STEP_WAIT;
			/* Writes to it came before the rename: one more read finishes it. */
			r->rotated = true;
			continue;
		}
		step = switch_files(r);
		if (step != STEP_DATA)
			return step;
	}
}

static void open_work(uv_work_t *w)
{
	struct reader *r = w->data;

	r->step = open_files(r);
}

static void read_work(uv_work_t *w)
{
	struct reader *r = w->data;

	r->step = read_step(r);
}

/* ---- the loop's side ---- */

static void reader_free(struct reader *r)
{
	if (r->fds != NULL)
		close_fds(r, 0, r->max_files + 1);
	if (r->dirfd >= 0)
		close(r->dirfd);
	free(r->fds);
	free(r->seen);
	free(r->buf);
	free(r->dir);
	free(r);
}

/* Freed once no job runs and the watch is closed. */
static void maybe_free(struct reader *r)
{
	if (r->ended && !r->busy && !r->watching)
		reader_free(r);
}

static void on_watch_closed(uv_handle_t *h)
{
	struct reader *r = h->data;

	/* Both must be closed (libuv calls back in no promised order). */
	if (--r->closing == 0) {
		r->watching = false;
		maybe_free(r);
	}
}

/*
 * End the answer (the stream; or, if none began, the error, or 503 at
 * shutdown) and let go of everything once no job runs and the watch is closed.
 */
static void reader_end(struct reader *r, const char *error)
{
	struct berth_http_request *req;
	struct berthd_logs *logs;

	if (r->ended)
		return;
	r->ended = true;
	req = steal_pointer(&r->req);
	logs = r->d->logs;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		logs->readers = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	logs->n_readers--;
	if (error != NULL)
		berth_warn("logs of %s: %s", r->id, error);
	if (r->dropped > 0)
		berth_warn("logs of %s: %zu bytes that were no records left out", r->id,
		           r->dropped);
	if (r->streaming)
		berth_http_stream_end(req);
	else if (error != NULL)
		berth_http_respond_error(req, 500, "logs", "%s", error);
	else
		berth_http_respond_error(req, 503, "shutting_down", "berthd is shutting down");
	if (r->watching) {
		r->closing = 2;
		uv_close((uv_handle_t *)&r->watch, on_watch_closed);
		uv_close((uv_handle_t *)&r->recheck, on_watch_closed);
	}
	maybe_free(r);
}

static void on_gone(struct berth_http_request *req, void *arg)
{
	(void)req;
	reader_end(arg, NULL);
}

static void on_drain(struct berth_http_request *req, void *arg)
{
	struct reader *r = arg;
	(void)req;

	r->draining = false;
	pump(r);
}

/*
 * Send the complete records in the buffer, keep an unfinished one. Lines
 * that are not records (and records before `since`) are left out.
 */
static void emit(struct reader *r)
{
	size_t at = 0, run = 0;

	if (r->skipping) {
		const char *nl = memchr(r->buf, '\n', r->have);
		if (nl == NULL) {
			r->dropped += r->have;
			r->have = 0;
			return;
		}
		at = run = (size_t)(nl - r->buf) + 1;
		r->dropped += at;
		r->skipping = false;
	}
	for (;;) {
		const char *nl = memchr(r->buf + at, '\n', r->have - at);
		size_t len;
		int64_t ns;
		bool keep;

		if (nl == NULL)
			break;
		len = (size_t)(nl - r->buf) - at;
		keep = berth_crilog_valid(r->buf + at, len, &ns);
		if (!keep)
			r->dropped += len + 1;
		keep = keep && (!r->has_since || ns >= r->since_ns);
		if (!keep) {
			/* Send the records before this line in one chunk. */
			if (at > run && berth_http_stream_write(r->req, r->buf + run, at - run) < 0)
				return;
			run = at + len + 1;
		}
		at += len + 1;
	}
	if (at > run && berth_http_stream_write(r->req, r->buf + run, at - run) < 0)
		return;
	memmove(r->buf, r->buf + at, r->have - at);
	r->have -= at;
	if (r->have > BERTH_CRILOG_RECORD_MAX) {
		/* Already longer than any record: not one. */
		r->dropped += r->have;
		r->have = 0;
		r->skipping = true;
	}
}

static void on_recheck(uv_timer_t *t)
{
	pump(t->data);
}

static void after_read(uv_work_t *w, int status)
{
	struct reader *r = w->data;
	char msg[256];
	(void)status;

	/* Still busy while we write: a client that leaves meanwhile must not free us. */
	if (r->step == STEP_DATA && !r->ended)
		emit(r);
	r->busy = false;
	if (r->ended) {
		maybe_free(r);
		return;
	}
	switch (r->step) {
	case STEP_DATA:
		if (berth_http_stream_queued(r->req) > QUEUE_HIGH) {
			r->draining = true;
			berth_http_stream_on_drain(r->req, QUEUE_LOW, on_drain, r);
			return;
		}
		pump(r);
		return;
	case STEP_WAIT:
		if (r->dirty) {
			pump(r);
			return;
		}
		{
			struct stat st;
			if (fstatat(r->dirfd, CURRENT, &st, AT_SYMLINK_NOFOLLOW) < 0)
				uv_timer_start(&r->recheck, on_recheck, RECHECK_MS, 0);
		}
		return;
	case STEP_DONE:
		reader_end(r, NULL);
		return;
	case STEP_FAILED:
		snprintf(msg, sizeof(msg), "%s `%s`: %s", r->failed_op, r->dir, strerror(r->error));
		reader_end(r, msg);
		return;
	}
}

static void pump(struct reader *r)
{
	if (r->ended || r->draining)
		return;
	if (r->busy) {
		r->dirty = true;
		return;
	}
	r->busy = true;
	r->dirty = false;
	r->work.data = r;
	uv_queue_work(r->d->loop, &r->work, read_work, after_read);
}

static void on_change(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct reader *r = h->data;
	char msg[256];
	(void)filename;
	(void)events;

	if (status < 0) {
		snprintf(msg, sizeof(msg), "watch `%s`: %s", r->dir, uv_strerror(status));
		reader_end(r, msg);
		return;
	}
	pump(r);
}

static void after_open(uv_work_t *w, int status)
{
	struct reader *r = w->data;
	char msg[256];
	int ret;
	(void)status;

	if (r->ended) {
		r->busy = false;
		maybe_free(r);
		return;
	}
	if (r->step == STEP_FAILED) {
		r->busy = false;
		/* Nothing sent yet: the client gets the error. */
		snprintf(msg, sizeof(msg), "%s `%s`: %s", r->failed_op, r->dir, strerror(r->error));
		reader_end(r, msg);
		return;
	}
	/* Still busy while we write: a client that leaves meanwhile must not free us. */
	r->streaming = true;
	berth_http_stream_begin(r->req, 200, "text/plain; charset=utf-8",
	                        "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
	                        "X-Content-Type-Options: nosniff\r\n");
	r->busy = false;
	if (r->ended) {
		maybe_free(r);
		return;
	}
	if (r->step == STEP_DONE) {
		/* No directory: an instance whose container never wrote anything. */
		reader_end(r, NULL);
		return;
	}
	if (r->follow) {
		/*
		 * Watching starts before the first read: whatever is written
		 * after this is either read by it or reported by inotify.
		 */
		uv_fs_event_init(r->d->loop, &r->watch);
		r->watch.data = r;
		uv_timer_init(r->d->loop, &r->recheck);
		r->recheck.data = r;
		r->watching = true;
		ret = uv_fs_event_start(&r->watch, on_change, r->dir, 0);
		if (ret < 0) {
			snprintf(msg, sizeof(msg), "watch `%s`: %s", r->dir, uv_strerror(ret));
			reader_end(r, msg);
			return;
		}
	}
	pump(r);
}

/* The query's options; false when the request was answered with a 400. */
static bool parse_options(struct reader *r, struct berth_http_request *req)
{
	cleanup_free char *tail = berth_http_query_param(req, "tail");
	cleanup_free char *follow = berth_http_query_param(req, "follow");
	cleanup_free char *since = berth_http_query_param(req, "since");
	berth_error_t err;
	uint64_t v;

	if (tail != NULL) {
		if (berth_parse_u64(tail, 0, UINT32_MAX, &v, &err) < 0) {
			berth_http_respond_error(req, 400, "bad_request",
			                         "tail: %s (the number of records to show)",
			                         err.message);
			return false;
		}
		r->has_tail = true;
		r->tail = (size_t)v;
	}
	if (follow != NULL) {
		if (strcmp(follow, "1") == 0 || strcmp(follow, "true") == 0 || *follow == '\0') {
			r->follow = true;
		} else if (strcmp(follow, "0") != 0 && strcmp(follow, "false") != 0) {
			berth_http_respond_error(req, 400, "bad_request",
			                         "follow: `%s` is not 1, true, 0 or false", follow);
			return false;
		}
	}
	if (since != NULL) {
		r->has_since = true;
		if (berth_parse_u64(since, 0, INT64_MAX / 1000000, &v, NULL) == 0) {
			r->since_ns = (int64_t)v * 1000000;
		} else if (berth_crilog_parse_time(since, strlen(since), &r->since_ns) < 0) {
			berth_http_respond_error(req, 400, "bad_request",
			                         "since: `%s` is neither an RFC 3339 time "
			                         "(2026-11-27T10:54:39Z) nor milliseconds since "
			                         "the epoch",
			                         since);
			return false;
		}
	}
	return true;
}

void berthd_logs_serve(struct berthd *d, struct berth_http_request *req, const char *id)
{
	struct berthd_logs *logs = d->logs;
	struct reader *r;

	if (logs->n_readers >= READERS_MAX) {
		berth_http_respond_error(req, 503, "too_many_log_streams",
		                         "%d log streams are open; try again later", READERS_MAX);
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->dirfd = -1;
	if (!parse_options(r, req)) {
		free(r);
		return;
	}
	if (strcmp(req->method, "HEAD") == 0) {
		free(r);
		berth_http_respond(req, 200, "text/plain; charset=utf-8", NULL, NULL, 0);
		return;
	}
	r->d = d;
	r->req = req;
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->dir = xasprintf("%s/logs/%s", d->config->berth.state_dir, id);
	r->max_files = d->config->berth.log_max_files;
	r->buf = xmalloc(READ_CHUNK);
	r->fds = xmalloc((r->max_files + 1) * sizeof(*r->fds));
	for (unsigned i = 0; i <= r->max_files; i++)
		r->fds[i] = -1;
	r->seen = xcalloc(r->max_files + 1, sizeof(*r->seen));
	r->next = logs->readers;
	if (logs->readers != NULL)
		logs->readers->prev = r;
	logs->readers = r;
	logs->n_readers++;
	berth_http_request_on_gone(req, on_gone, r);
	r->busy = true;
	r->work.data = r;
	uv_queue_work(d->loop, &r->work, open_work, after_open);
}

void berthd_logs_close(struct berthd *d)
{
	if (d->logs == NULL)
		return;
	while (d->logs->readers != NULL)
		reader_end(d->logs->readers, NULL);
	free(d->logs);
	d->logs = NULL;
}
