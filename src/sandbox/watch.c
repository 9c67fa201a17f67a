/* SPDX-License-Identifier: Apache-2.0 */
/*
 * /api/watch: file changes under a directory of the container, as
 * server-sent events — `watching` once the watches are in place, then
 * `event` {eventType, path, isDirectory} for each change, `stopped` when
 * the directory goes, `error` when the watch cannot go on. inotify from
 * the host: each directory is opened inside the container's root
 * (RESOLVE_IN_ROOT, as files are) and watched through its descriptor's
 * /proc/self/fd path, so a symlink cannot point a watch outside. New
 * directories are watched as they appear (recursive, the default);
 * `exclude` patterns (default .git, node_modules, .DS_Store) prune,
 * `include` patterns select files by name, `events` selects the kinds.
 * A reader that falls behind stops the reading of inotify (the kernel
 * queues, then says it overflowed: an `error`). The watch holds its
 * call's lease.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/log.h"
#include "berth/runtime.h"
#include "berth/util.h"
#include "sandbox/sandbox-internal.h"

#define WATCHES_MAX 8192
#define MASK                                                                           \
	(IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct wdir {
	int wd;
	char *path; /* absolute, inside the container */
};

struct fwatch {
	struct sbx_call *c;
	int ifd;
	int root;
	uint32_t uid, gid; /* the container's user: what it may read, the watch may */
	uv_poll_t poll;
	/*
	 * The container's end makes no inotify event while the watch holds its
	 * lease (its clean-up waits for the lease): a timer looks every second.
	 */
	uv_timer_t alive;
	int closing; /* handles still to close */
	bool done, behind;
	char *path; /* the watched directory */
	bool recursive;
	json_t *include, *exclude; /* arrays of patterns, or NULL */
	unsigned kinds;            /* the inotify bits asked for */
	struct wdir *dirs;
	size_t n_dirs, cap_dirs;
};

static const struct {
	const char *name;
	unsigned mask;
} kinds[] = {
        {"create", IN_CREATE},        {"modify", IN_MODIFY},    {"delete", IN_DELETE},
        {"move_from", IN_MOVED_FROM}, {"move_to", IN_MOVED_TO}, {"attrib", IN_ATTRIB},
};

static bool matches(json_t *patterns, const char *name)
{
	size_t i;
	json_t *p;

	json_array_foreach (patterns, i, p)
		if (fnmatch(json_string_value(p), name, 0) == 0)
			return true;
	return false;
}

/* Whether any component of `path` (below the watched directory) is excluded. */
static bool excluded(struct fwatch *w, const char *path)
{
	cleanup_free char *copy = xstrdup(path);
	char *save = NULL;

	for (char *p = strtok_r(copy, "/", &save); p != NULL; p = strtok_r(NULL, "/", &save))
		if (matches(w->exclude, p))
			return true;
	return false;
}

static void watch_dir(struct fwatch *w, const char *path, int depth);

/* Watch `path` (a directory in the container) and, recursively, what is below it. */
static void watch_dir(struct fwatch *w, const char *path, int depth)
{
	cleanup_close int fd = berth_open_in_root(w->root, path, O_RDONLY | O_DIRECTORY, 0);
	char proc[BERTH_FD_PATH_MAX];
	DIR *d;
	struct dirent *e;
	int wd;

	if (fd < 0 || w->n_dirs >= WATCHES_MAX || depth > 64)
		return;
	wd = inotify_add_watch(w->ifd, berth_fd_path(fd, proc), MASK);
	if (wd < 0)
		return;
	if (w->n_dirs == w->cap_dirs) {
		w->cap_dirs = w->cap_dirs * 2 + 16;
		w->dirs = xrealloc(w->dirs, w->cap_dirs * sizeof(*w->dirs));
	}
	w->dirs[w->n_dirs].wd = wd;
	w->dirs[w->n_dirs].path = xstrdup(path);
	w->n_dirs++;
	if (!w->recursive)
		return;
	d = fdopendir(dup(fd));
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		cleanup_free char *sub = NULL;
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0 || matches(w->exclude, e->d_name))
			continue;
		sub = xasprintf("%s%s%s", path, strcmp(path, "/") == 0 ? "" : "/", e->d_name);
		watch_dir(w, sub, depth + 1);
	}
	closedir(d);
}

/*
 * The same as the container's user (on the loop's thread, for this call
 * only): directories that user may not read are not watched, as its own
 * inotify could not.
 */
static void add_dir(struct fwatch *w, const char *path)
{
	struct sbx_identity saved;
	int r = sbx_identity_assume(&saved, w->uid, w->gid);

	if (r < 0) {
		berth_warn("sandbox: watch `%s`: leave berthd's groups: %s", path, strerror(-r));
		return;
	}
	watch_dir(w, path, 0);
	sbx_identity_restore(&saved);
}

/* Everything goes; the inotify descriptor only after its handle is closed. */
static void fwatch_free(struct fwatch *w)
{
	berth_close_keep_errno(w->ifd);
	berth_close_keep_errno(w->root);
	for (size_t i = 0; i < w->n_dirs; i++)
		free(w->dirs[i].path);
	free(w->dirs);
	free(w->path);
	json_decref(w->include);
	json_decref(w->exclude);
	free(w);
}

static void on_closed(uv_handle_t *h)
{
	struct fwatch *w = h->data;

	if (--w->closing == 0)
		fwatch_free(w);
}

static void watch_end(struct fwatch *w, json_t *ev)
{
	struct sbx_call *c = w->c;

	if (w->done) {
		json_decref(ev);
		return;
	}
	w->done = true;
	if (ev != NULL)
		sbx_sse_send(c->req, ev);
	berth_http_stream_end(c->req);
	c->req = NULL;
	sbx_call_end(c);
	uv_poll_stop(&w->poll);
	w->closing = 2;
	uv_close((uv_handle_t *)&w->poll, on_closed);
	uv_close((uv_handle_t *)&w->alive, on_closed);
}

static void on_alive(uv_timer_t *t)
{
	struct fwatch *w = t->data;

	if (!berthd_lease_alive(w->c->lease))
		watch_end(w, json_pack("{s:s, s:s}", "type", "stopped", "reason",
		                       "the container stopped"));
}

static const char *dir_of(struct fwatch *w, int wd)
{
	for (size_t i = 0; i < w->n_dirs; i++)
		if (w->dirs[i].wd == wd)
			return w->dirs[i].path;
	return NULL;
}

static void on_drain(struct berth_http_request *req, void *arg);

static void send_event(struct fwatch *w, json_t *ev)
{
	if (sbx_sse_send(w->c->req, ev) == 1 && !w->behind) {
		w->behind = true;
		uv_poll_stop(&w->poll);
		berth_http_stream_on_drain(w->c->req, 256 * 1024, on_drain, w);
	}
}

static void on_events(uv_poll_t *h, int status, int events);

static void on_drain(struct berth_http_request *req, void *arg)
{
	struct fwatch *w = arg;
	(void)req;

	w->behind = false;
	if (!w->done)
		uv_poll_start(&w->poll, UV_READABLE, on_events);
}

static void one_event(struct fwatch *w, const struct inotify_event *ev)
{
	const char *dir = dir_of(w, ev->wd);
	cleanup_free char *full = NULL;
	bool is_dir = (ev->mask & IN_ISDIR) != 0;
	const char *kind = NULL;

	if (ev->mask & IN_Q_OVERFLOW)
		return watch_end(w, json_pack("{s:s, s:s}", "type", "error", "error",
		                              "too many changes at once: events were lost"));
	if (dir == NULL)
		return;
	if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) && strcmp(dir, w->path) == 0)
		return watch_end(w, json_pack("{s:s, s:s}", "type", "stopped", "reason",
		                              "the directory was removed or moved"));
	if (ev->len == 0 || ev->name[0] == '\0')
		return;
	full = xasprintf("%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", ev->name);
	if (excluded(w, full + strlen(w->path)))
		return;
	/* A new directory is watched too, and what was made in it before the watch told. */
	if (w->recursive && is_dir && (ev->mask & (IN_CREATE | IN_MOVED_TO)))
		add_dir(w, full);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (ev->mask & kinds[i].mask)
			kind = kinds[i].name;
	if (kind == NULL || !(ev->mask & w->kinds))
		return;
	if (w->include != NULL && !is_dir && !matches(w->include, ev->name))
		return;
	send_event(w, json_pack("{s:s, s:s, s:s, s:b}", "type", "event", "eventType", kind, "path",
	                        full, "isDirectory", is_dir));
}

static void on_events(uv_poll_t *h, int status, int events)
{
	struct fwatch *w = h->data;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	(void)status;
	(void)events;

	while (!w->done && !w->behind) {
		ssize_t n = read(w->ifd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n && !w->done;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			one_event(w, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
}

static void on_gone(struct berth_http_request *req, void *arg)
{
	struct fwatch *w = arg;
	(void)req;

	watch_end(w, NULL);
}

/* An array of strings, or NULL: answered 400 (false) when it is something else. */
static bool patterns(struct sbx_call *c, const char *key, json_t **out)
{
	json_t *v = json_object_get(c->body, key), *e;
	size_t i;

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_array(v) || json_array_size(v) > 256)
		goto bad;
	json_array_foreach (v, i, e)
		if (!json_is_string(e))
			goto bad;
	*out = json_incref(v);
	return true;
bad:
	sbx_call_fail(c, "VALIDATION_FAILED", "`%s` must be an array of patterns", key);
	return false;
}

void sbx_watch(struct sbx_call *c)
{
	struct berth_container *ctr = berthd_lease_container(c->lease);
	json_t *include = NULL, *exclude = NULL, *ev_list, *e;
	cleanup_free char *path = NULL;
	char proc[64];
	struct pollfd pfd;
	struct fwatch *w;
	bool recursive = true;
	unsigned mask = 0;
	size_t i;

	if (!sbx_get_bool(c, "recursive", &recursive) || !patterns(c, "include", &include))
		return;
	if (!patterns(c, "exclude", &exclude)) {
		json_decref(include);
		return;
	}
	if (include != NULL && exclude != NULL) {
		json_decref(include);
		json_decref(exclude);
		return sbx_call_fail(c, "VALIDATION_FAILED",
		                     "`include` and `exclude` do not go together");
	}
	if (exclude == NULL)
		exclude = json_pack("[s, s, s]", ".git", "node_modules", ".DS_Store");
	ev_list = json_object_get(c->body, "events");
	json_array_foreach (ev_list, i, e)
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			if (json_is_string(e) && strcmp(json_string_value(e), kinds[k].name) == 0)
				mask |= kinds[k].mask;
	{
		const char *given;
		if (!sbx_get_string(c, "path", true, &given)) {
			json_decref(include);
			json_decref(exclude);
			return;
		}
		path = sbx_abs_path(c, given);
		if (path == NULL) {
			json_decref(include);
			json_decref(exclude);
			return;
		}
	}
	w = xcalloc(1, sizeof(*w));
	w->c = c;
	w->path = steal_pointer(&path);
	w->recursive = recursive;
	w->include = include;
	w->exclude = exclude;
	/* The SDK's default: every kind but attrib. */
	w->kinds = mask != 0 ? mask
	                     : (unsigned)(IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM |
	                                  IN_MOVED_TO);
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	snprintf(proc, sizeof(proc), "/proc/%d/root", (int)berth_container_pid(ctr));
	w->root = open(proc, O_PATH | O_DIRECTORY | O_CLOEXEC);
	pfd.fd = berth_container_pidfd(ctr);
	pfd.events = POLLIN;
	if (w->ifd < 0 || w->root < 0 || poll(&pfd, 1, 0) != 0) {
		sbx_call_error(c, "INTERNAL_ERROR", NULL, "watch `%s`: %s", w->path,
		               w->ifd < 0 ? strerror(errno) : "the container has ended");
		sbx_call_end(c);
		fwatch_free(w);
		return;
	}
	berth_container_user(ctr, &w->uid, &w->gid);
	/*
	 * The directory itself first: a missing one, or one its user may not
	 * read, is the caller's error, not an event.
	 */
	{
		struct sbx_identity saved;
		int fd = sbx_identity_assume(&saved, w->uid, w->gid);
		if (fd == 0) {
			fd = berth_open_in_root(w->root, w->path, O_RDONLY | O_DIRECTORY, 0);
			sbx_identity_restore(&saved);
		}
		if (fd < 0) {
			sbx_call_error(c, sbx_errno_code(-fd), json_pack("{s:s}", "path", w->path),
			               "watch `%s`: %s", w->path, strerror(-fd));
			sbx_call_end(c);
			fwatch_free(w);
			return;
		}
		close(fd);
	}
	add_dir(w, w->path);
	uv_poll_init(c->d->loop, &w->poll, w->ifd);
	w->poll.data = w;
	uv_poll_start(&w->poll, UV_READABLE, on_events);
	uv_timer_init(c->d->loop, &w->alive);
	w->alive.data = w;
	uv_timer_start(&w->alive, on_alive, 1000, 1000);
	sbx_sse_begin(c->req);
	berth_http_request_on_gone(c->req, on_gone, w);
	{
		char id[32];
		snprintf(id, sizeof(id), "watch-%d", w->ifd);
		sbx_sse_send(c->req, json_pack("{s:s, s:s, s:s}", "type", "watching", "path",
		                               w->path, "watchId", id));
	}
}
