/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Files in a container, reached from outside it: the container's root is
 * opened as /proc/PID/root (PID its init, checked against the init's pidfd
 * after the open, so that a reused pid cannot lend another root), and every
 * path is then resolved inside that root with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS): "..", absolute symlinks and /proc/self/root
 * tricks stay in, or fail. A path that climbs above "/" is refused before
 * anything is touched. What berthd creates belongs to the container's
 * user. All file work runs on the thread pool; files larger than
 * SBX_READ_MAX are served by /api/read/stream, in chunks, at the reader's
 * pace.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "berth/base64.h"
#include "berth/fs.h"
#include "berth/log.h"
#include "berth/runtime.h"
#include "berth/util.h"
#include "sandbox/sandbox-internal.h"
#include "sandbox/sandbox.h"

#define LIST_MAX     10000
#define LIST_DEPTH   64
#define STREAM_CHUNK (384u * 1024) /* a multiple of 3: base64 chunks need no padding */
#define BINARY_SNIFF 8192

enum fs_op {
	FS_MKDIR_P, /* for a command or git: done() called */
	FS_MKDIR,
	FS_WRITE,
	FS_READ,
	FS_STREAM_OPEN,
	FS_STREAM_CHUNK,
	FS_DELETE,
	FS_RENAME,
	FS_MOVE,
	FS_LIST,
	FS_EXISTS,
	/* berth's PUT .../files: a temporary file, written as the body comes, named at its end */
	FS_PUT_OPEN,
	FS_PUT_WRITE,
	FS_PUT_COMMIT,
	FS_PUT_DISCARD,
	FS_COMMANDS, /* /api/commands: the executables on the container's PATH */
};

struct fs_job {
	uv_work_t work;
	struct sbx_call *c;
	enum fs_op op;
	char *path, *path2;
	pid_t init_pid;
	int init_pidfd;
	uint32_t uid, gid;
	bool workspace; /* make /workspace first (the instance has not had it made yet) */
	/* inputs */
	unsigned char *data;
	size_t len;
	bool recursive, hidden;
	int encoding; /* 0 detect, 1 utf-8, 2 base64 */
	void (*done)(void *arg, int err);
	void *arg;
	/* outputs */
	int err;    /* errno of the failure */
	bool plain; /* `what` says it all: no strerror after it */
	char *what; /* what failed: "open `/x`" */
	json_t *result;
	/* streaming */
	int fd;
	bool binary;
	uint64_t size, sent;
	char carry[4];
	size_t carry_n;
	bool eof, behind;
	bool raw; /* GET .../files: bytes as they are, no events */
	/* an upload (FS_PUT_*): j->fd is the file being written */
	int dirfd;           /* the directory it goes to (O_PATH) */
	char *name;          /* its name there */
	char *tmp_name;      /* without O_TMPFILE: the hidden name it is written under */
	mode_t mode;         /* the permission bits it gets: the old file's, or 0644 */
	int mode_given;      /* PUT ?mode=: these instead (-1: none); GET: the file's */
	size_t data_cap;     /* j->data: a piece being written on the thread pool */
	unsigned char *fill; /* what came since, written next */
	size_t fill_len, fill_cap;
	bool busy;       /* a job of this upload is on the thread pool */
	bool paused;     /* the body waits for the write before */
	bool body_done;  /* the whole body has come */
	int body_status; /* the body broke off: -E2BIG, -EPROTO, -ETIMEDOUT */
};

static void job_free(struct fs_job *j)
{
	berth_close_keep_errno(j->fd);
	berth_close_keep_errno(j->dirfd);
	free(j->name);
	free(j->tmp_name);
	free(j->fill);
	free(j->path);
	free(j->path2);
	free(j->data);
	free(j->what);
	json_decref(j->result);
	free(j);
}

static int fail(struct fs_job *j, int err, const char *fmt, const char *path)
{
	j->err = err;
	free(j->what);
	j->what = xasprintf(fmt, path);
	return -err;
}

/* The container's root, as seen through its init; only if that init still runs. */
static int open_root(struct fs_job *j)
{
	char path[64];
	struct pollfd pfd = {.fd = j->init_pidfd, .events = POLLIN};
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/root", (int)j->init_pid);
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || poll(&pfd, 1, 0) != 0) {
		berth_close_keep_errno(fd);
		return fail(j, ESRCH, "open the root of container %s", "(it has ended)");
	}
	return fd;
}

/* "/a/b/c" -> parent "/a/b" (malloc'd), name "c" (in `path`). */
static char *parent_of(const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');

	*name = slash + 1;
	return slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
}

static int open_parent(struct fs_job *j, int root, const char *path, const char **name)
{
	cleanup_free char *parent = parent_of(path, name);
	int fd = berth_open_in_root(root, parent, O_PATH | O_DIRECTORY, 0);

	if (**name == '\0')
		return fail(j, EBUSY, "`%s` is the root directory", path);
	if (fd < 0)
		return fail(j, -fd, "open `%s`", parent);
	return fd;
}

static void own(struct fs_job *j, int dirfd, const char *name)
{
	/* The container's user may be root: nothing to change then. */
	if ((j->uid != 0 || j->gid != 0) &&
	    fchownat(dirfd, name, j->uid, j->gid, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) < 0)
		berth_warn("sandbox: give `%s` to uid %u: %s", j->path, j->uid, strerror(errno));
}

/*
 * A regular file, and only that: a FIFO would hold a worker thread in
 * open() or read() for ever, a device (/dev/zero, /dev/urandom) would never
 * end. O_NONBLOCK for the open alone; O_TRUNC only once the type is known.
 * Returns the descriptor or a negative errno (after fail()).
 */
static int open_regular(struct fs_job *j, int root, const char *path, int flags, mode_t mode)
{
	int fd = berth_open_in_root(root, path, (flags & ~O_TRUNC) | O_NONBLOCK, mode);
	struct stat st;

	if (fd < 0)
		return fail(j, -fd, "open `%s`", path);
	if (fstat(fd, &st) < 0) {
		berth_close_keep_errno(fd);
		return fail(j, errno, "stat `%s`", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		j->plain = true;
		if (S_ISDIR(st.st_mode))
			return fail(j, EISDIR, "`%s` is a directory", path);
		return fail(j, EINVAL, "`%s` is not a regular file", path);
	}
	if (((flags & O_TRUNC) && ftruncate(fd, 0) < 0) ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		berth_close_keep_errno(fd);
		return fail(j, errno, "open `%s`", path);
	}
	return fd;
}

/* mkdir -p inside the root; what is created gets the container's ownership. */
static int mkdir_p(struct fs_job *j, int root, const char *path)
{
	cleanup_free char *sofar = xmalloc(strlen(path) + 2);
	const char *p = path;
	size_t n = 0;

	sofar[0] = '\0';
	for (;;) {
		cleanup_close int parent = -1;
		const char *end;
		cleanup_free char *comp = NULL;

		while (*p == '/')
			p++;
		if (*p == '\0')
			return 0;
		end = strchr(p, '/');
		if (end == NULL)
			end = p + strlen(p);
		comp = xstrndup(p, (size_t)(end - p));
		parent = berth_open_in_root(root, n == 0 ? "/" : sofar, O_PATH | O_DIRECTORY, 0);
		if (parent < 0)
			return fail(j, -parent, "open `%s`", n == 0 ? "/" : sofar);
		sofar[n++] = '/';
		memcpy(sofar + n, comp, strlen(comp) + 1);
		n += strlen(comp);
		if (mkdirat(parent, comp, 0755) == 0)
			own(j, parent, comp);
		else if (errno != EEXIST)
			return fail(j, errno, "create directory `%s`", sofar);
		p = end;
	}
}

/*
 * The file at j->path opened for writing, truncated: made (with its parent
 * directories) and given the container user's ownership when new, else a
 * regular file that exists. Returns the descriptor or -errno (with j's error set).
 */
static int open_for_write(struct fs_job *j, int root)
{
	cleanup_free char *parent = NULL;
	const char *name;
	int fd, r;

	parent = parent_of(j->path, &name);
	if (*name == '\0')
		return fail(j, EISDIR, "write `%s`", j->path);
	r = mkdir_p(j, root, parent);
	if (r < 0)
		return r;
	fd = berth_open_in_root(root, j->path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd == -EEXIST)
		return open_regular(j, root, j->path, O_WRONLY | O_TRUNC, 0);
	if (fd < 0)
		return fail(j, -fd, "open `%s`", j->path);
	own(j, fd, "");
	return fd;
}

static int do_write(struct fs_job *j, int root)
{
	cleanup_close int fd = open_for_write(j, root);
	int r;

	if (fd < 0)
		return fd;
	r = berth_write_all(fd, j->data, j->len);
	if (r < 0)
		return fail(j, -r, "write `%s`", j->path);
	return 0;
}

/*
 * Where an upload goes: j->dirfd and j->name, the directory of j->path
 * (its parents made as needed) and the name in it. A symlink there is
 * followed, inside the root, as open() would follow it (a magic link is
 * refused: the open through the root says so), so that the upload replaces
 * the file a write would have written. What is there must be a regular file
 * (a FIFO or a device is refused, as for a write); its permission bits are
 * the new file's (j->mode).
 */
static int put_target(struct fs_job *j, int root)
{
	cleanup_free char *path = xstrdup(j->path);

	for (int hops = 0;; hops++) {
		cleanup_free char *parent = NULL;
		cleanup_free char *link = NULL;
		cleanup_close int dirfd = -1;
		const char *name;
		struct stat st;
		ssize_t n;
		int fd, r;

		parent = parent_of(path, &name);
		if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
			j->plain = true;
			return fail(j, EISDIR, "`%s` is a directory", path);
		}
		/* The parents of the path asked for, not of where a symlink leads. */
		if (hops == 0) {
			r = mkdir_p(j, root, parent);
			if (r < 0)
				return r;
		}
		dirfd = berth_open_in_root(root, parent, O_PATH | O_DIRECTORY, 0);
		if (dirfd < 0)
			return fail(j, -dirfd, "open `%s`", parent);
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT)
				return fail(j, errno, "open `%s`", path);
			j->mode = 0644;
		} else if (S_ISLNK(st.st_mode)) {
			fd = berth_open_in_root(root, path, O_PATH, 0);
			berth_close_keep_errno(fd);
			if (fd < 0 && fd != -ENOENT)
				return fail(j, -fd, "open `%s`", path);
			if (hops == 40)
				return fail(j, ELOOP, "open `%s`", j->path);
			link = xmalloc(PATH_MAX);
			n = readlinkat(dirfd, name, link, PATH_MAX - 1);
			if (n < 0)
				return fail(j, errno, "open `%s`", path);
			link[n] = '\0';
			free(path);
			path = link[0] == '/' ? xstrdup(link) : xasprintf("%s/%s", parent, link);
			if (strlen(path) > PATH_MAX)
				return fail(j, ENAMETOOLONG, "open `%s`", j->path);
			continue;
		} else if (S_ISDIR(st.st_mode)) {
			j->plain = true;
			return fail(j, EISDIR, "`%s` is a directory", path);
		} else if (!S_ISREG(st.st_mode)) {
			j->plain = true;
			return fail(j, EINVAL, "`%s` is not a regular file", path);
		} else {
			j->mode = st.st_mode & 0777;
		}
		j->dirfd = steal_fd(&dirfd);
		j->name = xstrdup(name);
		free(j->path2);
		j->path2 = steal_pointer(&path);
		return 0;
	}
}

/* A hidden name beside the target: ".NAME.upload-RANDOM", within NAME_MAX. */
static char *hidden_name(const char *name)
{
	uint32_t rnd = 0;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (uint32_t)random();
	return xasprintf(".%.200s.upload-%08x", name, rnd);
}

/*
 * The file an upload is written to, in the target's directory so that it
 * can be named there at the end: unnamed (O_TMPFILE), so that nothing is
 * left behind whatever happens to the upload or to berthd; on a file system
 * without O_TMPFILE, a hidden name that a failed upload removes.
 */
static int do_put_open(struct fs_job *j, int root)
{
	int r = put_target(j, root);

	if (r < 0)
		return r;
	if (j->mode_given >= 0)
		j->mode = (mode_t)j->mode_given;
	j->fd = openat(j->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (j->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		for (int i = 0; i < 8 && j->fd < 0; i++) {
			free(j->tmp_name);
			j->tmp_name = hidden_name(j->name);
			j->fd = openat(j->dirfd, j->tmp_name,
			               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (j->fd < 0 && errno != EEXIST)
				break;
		}
		if (j->fd < 0)
			free(steal_pointer(&j->tmp_name));
	}
	if (j->fd < 0)
		return fail(j, errno, "create `%s`", j->path2);
	own(j, j->fd, "");
	return 0;
}

/*
 * Name the upload: at once where nothing is (linkat through /proc/self/fd,
 * which needs no CAP_DAC_READ_SEARCH, which the container's user has not),
 * else under a hidden name and renamed over what is there, so that readers
 * see the old file or the new one, never a part.
 */
static int do_put_commit(struct fs_job *j)
{
	cleanup_free char *hidden = NULL;
	char self[64];

	/* 0600 until now, so that nobody could read a hidden one half-written. */
	if (fchmod(j->fd, j->mode) < 0)
		return fail(j, errno, "write `%s`", j->path2);
	if (j->tmp_name != NULL) {
		if (renameat(j->dirfd, j->tmp_name, j->dirfd, j->name) < 0)
			return fail(j, errno, "write `%s`", j->path2);
		free(steal_pointer(&j->tmp_name));
		return 0;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", j->fd);
	if (linkat(AT_FDCWD, self, j->dirfd, j->name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != EEXIST)
		return fail(j, errno, "write `%s`", j->path2);
	for (int i = 0; i < 8; i++) {
		free(hidden);
		hidden = hidden_name(j->name);
		if (linkat(AT_FDCWD, self, j->dirfd, hidden, AT_SYMLINK_FOLLOW) == 0)
			break;
		if (errno != EEXIST)
			return fail(j, errno, "write `%s`", j->path2);
		free(steal_pointer(&hidden));
	}
	if (hidden == NULL)
		return fail(j, EEXIST, "write `%s`", j->path2);
	if (renameat(j->dirfd, hidden, j->dirfd, j->name) < 0) {
		fail(j, errno, "write `%s`", j->path2);
		unlinkat(j->dirfd, hidden, 0);
		return -j->err;
	}
	return 0;
}

/* A failed upload: its file goes (an unnamed one with its descriptor). */
static void do_put_discard(struct fs_job *j)
{
	berth_close_keep_errno(j->fd);
	j->fd = -1;
	if (j->tmp_name != NULL && unlinkat(j->dirfd, j->tmp_name, 0) < 0 && errno != ENOENT)
		berth_warn("sandbox: remove the upload `%s` of `%s`: %s", j->tmp_name, j->path2,
		           strerror(errno));
}

static const struct {
	const char *ext, *mime;
} mimes[] = {
        {"txt", "text/plain"},
        {"md", "text/markdown"},
        {"html", "text/html"},
        {"htm", "text/html"},
        {"css", "text/css"},
        {"csv", "text/csv"},
        {"js", "text/javascript"},
        {"mjs", "text/javascript"},
        {"ts", "text/typescript"},
        {"json", "application/json"},
        {"xml", "application/xml"},
        {"yaml", "application/yaml"},
        {"yml", "application/yaml"},
        {"py", "text/x-python"},
        {"sh", "text/x-shellscript"},
        {"c", "text/x-c"},
        {"h", "text/x-c"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"svg", "image/svg+xml"},
        {"webp", "image/webp"},
        {"pdf", "application/pdf"},
        {"zip", "application/zip"},
        {"gz", "application/gzip"},
        {"tar", "application/x-tar"},
        {"wasm", "application/wasm"},
};

static const char *mime_of(const char *path, bool binary)
{
	const char *dot = strrchr(path, '.');

	if (dot != NULL && strchr(dot, '/') == NULL)
		for (size_t i = 0; i < sizeof(mimes) / sizeof(mimes[0]); i++)
			if (strcasecmp(dot + 1, mimes[i].ext) == 0)
				return mimes[i].mime;
	return binary ? "application/octet-stream" : "text/plain";
}

/* Binary: a NUL, or what is not UTF-8 (but for a character cut off at the end). */
static bool looks_binary(const unsigned char *data, size_t len, bool cut)
{
	json_t *j;
	size_t n = len;

	if (memchr(data, 0, len) != NULL)
		return true;
	if (cut)
		n -= sbx_utf8_tail((const char *)data, len);
	j = json_stringn((const char *)data, n);
	json_decref(j);
	return j == NULL;
}

static int do_read(struct fs_job *j, int root)
{
	cleanup_close int fd = open_regular(j, root, j->path, O_RDONLY, 0);
	cleanup_free unsigned char *buf = NULL;
	struct stat st;
	ssize_t n;
	bool binary;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return fail(j, errno, "stat `%s`", j->path);
	if (S_ISDIR(st.st_mode))
		return fail(j, EISDIR, "read `%s`: it is a directory", j->path);
	if (st.st_size > (off_t)SBX_READ_MAX) {
		j->err = EFBIG;
		j->what =
		        xasprintf("read `%s`: %lld bytes is more than %u MiB (use readFileStream, "
		                  "/api/read/stream)",
		                  j->path, (long long)st.st_size, SBX_READ_MAX >> 20);
		return -EFBIG;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = berth_read_all(fd, buf, (size_t)st.st_size);
	if (n < 0)
		return fail(j, (int)-n, "read `%s`", j->path);
	binary = looks_binary(buf, (size_t)n, false);
	if (j->encoding == 2 || (j->encoding == 0 && binary)) {
		cleanup_free char *b = berth_base64_encode(buf, (size_t)n, NULL);
		j->result = json_pack("{s:s, s:s, s:b, s:s, s:I}", "content", b, "encoding",
		                      "base64", "isBinary", binary, "mimeType",
		                      mime_of(j->path, binary), "size", (json_int_t)n);
	} else {
		j->result = json_pack("{s:o, s:s, s:b, s:s, s:I}", "content",
		                      sbx_json_text((char *)buf, (size_t)n), "encoding", "utf-8",
		                      "isBinary", binary, "mimeType", mime_of(j->path, binary),
		                      "size", (json_int_t)n);
	}
	return 0;
}

static int do_stream_open(struct fs_job *j, int root)
{
	unsigned char sniff[BINARY_SNIFF];
	struct stat st;
	ssize_t n;

	j->fd = open_regular(j, root, j->path, O_RDONLY, 0);
	if (j->fd < 0)
		return j->fd;
	if (fstat(j->fd, &st) < 0)
		return fail(j, errno, "stat `%s`", j->path);
	if (S_ISDIR(st.st_mode))
		return fail(j, EISDIR, "read `%s`: it is a directory", j->path);
	j->size = (uint64_t)st.st_size;
	j->mode_given = (int)(st.st_mode & 0777);
	n = pread(j->fd, sniff, sizeof(sniff), 0);
	if (n < 0)
		return fail(j, errno, "read `%s`", j->path);
	j->binary = looks_binary(sniff, (size_t)n, (size_t)n == sizeof(sniff));
	return 0;
}

static int do_stream_chunk(struct fs_job *j)
{
	size_t cap = STREAM_CHUNK + sizeof(j->carry);
	ssize_t n;

	/* One buffer for the whole stream: each chunk is copied out before the next is read. */
	if (j->data == NULL)
		j->data = xmalloc(cap + 1);
	memcpy(j->data, j->carry, j->carry_n);
	n = berth_read_all(j->fd, j->data + j->carry_n, STREAM_CHUNK);
	if (n < 0)
		return fail(j, (int)-n, "read `%s`", j->path);
	j->eof = (size_t)n < STREAM_CHUNK;
	j->sent += (uint64_t)n;
	j->len = j->carry_n + (size_t)n;
	j->carry_n = 0;
	if (!j->binary && !j->raw && !j->eof) {
		/* Text chunks end on a character boundary. */
		size_t keep = sbx_utf8_tail((char *)j->data, j->len);
		memcpy(j->carry, j->data + j->len - keep, keep);
		j->carry_n = keep;
		j->len -= keep;
	}
	return 0;
}

static int do_delete(struct fs_job *j, int root)
{
	const char *name;
	cleanup_close int parent = open_parent(j, root, j->path, &name);
	struct stat st;

	if (parent < 0)
		return parent;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(j, errno, "delete `%s`", j->path);
	if (S_ISDIR(st.st_mode)) {
		if (!j->recursive)
			return fail(j, EISDIR,
			            "delete `%s`: it is a directory (remove it with "
			            "a command, e.g. rm -r)",
			            j->path);
		if (berth_rmtree_at(parent, name, NULL) < 0)
			return fail(j, errno, "delete `%s`", j->path);
		return 0;
	}
	if (unlinkat(parent, name, 0) < 0)
		return fail(j, errno, "delete `%s`", j->path);
	return 0;
}

static int do_rename(struct fs_job *j, int root, bool move)
{
	const char *from_name, *to_name;
	cleanup_close int from = open_parent(j, root, j->path, &from_name);
	cleanup_close int to = -1;
	cleanup_close int target = -1;
	struct stat st;

	if (from < 0)
		return from;
	if (fstatat(from, from_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return fail(j, errno, "rename `%s`", j->path);
	/* mv into an existing directory: the source keeps its name there. */
	target = move ? berth_open_in_root(root, j->path2, O_PATH | O_DIRECTORY, 0) : -1;
	if (target >= 0) {
		char *dest;
		if (renameat(from, from_name, target, from_name) < 0)
			return fail(j, errno, "move `%s`", j->path);
		dest = xasprintf("%s%s%s", j->path2, strcmp(j->path2, "/") == 0 ? "" : "/",
		                 from_name);
		free(j->path2);
		j->path2 = dest;
		return 0;
	}
	to = open_parent(j, root, j->path2, &to_name);
	if (to < 0)
		return to;
	if (!move && faccessat(to, to_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return fail(j, EEXIST, "rename to `%s`", j->path2);
	if (renameat(from, from_name, to, to_name) < 0)
		return fail(j, errno == EXDEV ? EXDEV : errno,
		            errno == EXDEV ? "move `%s`: across file systems (use a command)"
		                           : "rename `%s`",
		            j->path);
	return 0;
}

static char *iso_of(const struct timespec *ts)
{
	struct tm tm;
	char buf[40];

	gmtime_r(&ts->tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	return xasprintf("%s.%03ldZ", buf, ts->tv_nsec / 1000000);
}

static json_t *file_info(struct fs_job *j, const char *name, const char *abs, const char *rel,
                         const struct stat *st)
{
	char mode[10];
	cleanup_free char *mtime = iso_of(&st->st_mtim);
	const char *type = S_ISREG(st->st_mode)   ? "file"
	                   : S_ISDIR(st->st_mode) ? "directory"
	                   : S_ISLNK(st->st_mode) ? "symlink"
	                                          : "other";
	int shift = j->uid == 0 ? 6 : st->st_uid == j->uid ? 6 : st->st_gid == j->gid ? 3 : 0;
	unsigned bits = (st->st_mode >> shift) & 7;

	for (int i = 0; i < 9; i++)
		mode[i] = (st->st_mode & (1u << (8 - i))) ? "rwx"[i % 3] : '-';
	mode[9] = '\0';
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:{s:b, s:b, s:b}}", "name", name,
	                 "absolutePath", abs, "relativePath", rel, "type", type, "size",
	                 (json_int_t)st->st_size, "modifiedAt", mtime, "mode", mode, "permissions",
	                 "readable", j->uid == 0 || (bits & 4), "writable",
	                 j->uid == 0 || (bits & 2), "executable",
	                 (bits & 1) || (j->uid == 0 && (st->st_mode & 0111)));
}

/* List `dirfd` (the directory `abs`, `rel` below the listed one) into `out`. */
static int list_dir(struct fs_job *j, int dirfd, const char *abs, const char *rel, json_t *out,
                    int depth)
{
	cleanup_closedir DIR *dir = NULL;
	struct dirent *e;
	int dup_fd = dup(dirfd);

	if (dup_fd < 0)
		return fail(j, errno, "list `%s`", abs);
	dir = fdopendir(dup_fd);
	if (dir == NULL) {
		close(dup_fd);
		return fail(j, errno, "list `%s`", abs);
	}
	while ((e = readdir(dir)) != NULL) {
		cleanup_free char *child_abs = NULL;
		cleanup_free char *child_rel = NULL;
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (!j->hidden && e->d_name[0] == '.')
			continue;
		if (json_array_size(out) >= LIST_MAX)
			return fail(j, E2BIG, "list `%s`: more than 10000 entries", abs);
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		child_abs = xasprintf("%s%s%s", abs, strcmp(abs, "/") == 0 ? "" : "/", e->d_name);
		child_rel = *rel != '\0' ? xasprintf("%s/%s", rel, e->d_name) : xstrdup(e->d_name);
		json_array_append_new(out, file_info(j, e->d_name, child_abs, child_rel, &st));
		if (j->recursive && S_ISDIR(st.st_mode) && depth < LIST_DEPTH) {
			/* A real directory (no symlink followed: O_NOFOLLOW on the name just seen).
			 */
			cleanup_close int sub = openat(
			        dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int r;
			if (sub < 0)
				continue;
			r = list_dir(j, sub, child_abs, child_rel, out, depth + 1);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
	              json_string_value(*(json_t *const *)b));
}

/* The names of the executable files in the PATH's directories (j->path), each once, sorted. */
static int do_commands(struct fs_job *j, int root)
{
	json_t *seen = json_object(), *list = json_array(), *v;
	const char *k;
	char *dirs = xstrdup(j->path), *save = NULL;
	size_t n = 0;
	json_t **v_sorted;

	for (char *dir = strtok_r(dirs, ":", &save); dir != NULL;
	     dir = strtok_r(NULL, ":", &save)) {
		int fd = dir[0] == '/' ? berth_open_in_root(root, dir, O_RDONLY | O_DIRECTORY, 0)
		                       : -1;
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *e;

		if (d == NULL) {
			berth_close_keep_errno(fd);
			continue;
		}
		while ((e = readdir(d)) != NULL && json_object_size(seen) < LIST_MAX) {
			struct stat st;
			/* Through symlinks (busybox's applets are), but inside the root only. */
			int f = e->d_name[0] == '.'
			                ? -1
			                : openat(fd, e->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			bool exe = false;
			if (f >= 0 && fstat(f, &st) == 0 && S_ISLNK(st.st_mode)) {
				cleanup_free char *full = xasprintf("%s/%s", dir, e->d_name);
				close(f);
				f = berth_open_in_root(root, full, O_PATH, 0);
				exe = f >= 0 && fstat(f, &st) == 0;
			} else {
				exe = f >= 0;
			}
			if (exe && S_ISREG(st.st_mode) && (st.st_mode & 0111))
				json_object_set_new(seen, e->d_name, json_true());
			berth_close_keep_errno(f);
		}
		closedir(d);
	}
	free(dirs);
	v_sorted = xcalloc(json_object_size(seen) + 1, sizeof(json_t *));
	json_object_foreach (seen, k, v)
		v_sorted[n++] = json_string(k);
	qsort(v_sorted, n, sizeof(json_t *), by_name);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, v_sorted[i]);
	free(v_sorted);
	json_decref(seen);
	j->result = json_pack("{s:o, s:I}", "availableCommands", list, "count", (json_int_t)n);
	return 0;
}

static int do_list(struct fs_job *j, int root)
{
	cleanup_close int fd = berth_open_in_root(root, j->path, O_RDONLY | O_DIRECTORY, 0);
	json_t *files = json_array();
	int r;

	if (fd < 0) {
		json_decref(files);
		return fail(j, -fd, "list `%s`", j->path);
	}
	r = list_dir(j, fd, j->path, "", files, 0);
	if (r < 0) {
		json_decref(files);
		return r;
	}
	j->result = json_pack("{s:o, s:I}", "files", files, "count",
	                      (json_int_t)json_array_size(files));
	return 0;
}

static void do_op(struct fs_job *j, int root);

/*
 * The default cwd, /workspace, is the sandbox's own: the SDK's images have
 * it, and berthd makes it in any other — the container user's, even when
 * that user may not write in "/", as an image would ship it. So it is made
 * as berthd, before the switch to the user's identity, and that one name
 * only; whatever is there already (a directory, a file, a symlink) stays.
 */
static void make_workspace(struct fs_job *j, int root)
{
	const char *name = SBX_DEFAULT_CWD + 1;

	if (mkdirat(root, name, 0755) < 0) {
		if (errno != EEXIST)
			berth_debug("sandbox: create %s: %s", SBX_DEFAULT_CWD, strerror(errno));
		return;
	}
	if ((j->uid != 0 || j->gid != 0) &&
	    fchownat(root, name, j->uid, j->gid, AT_SYMLINK_NOFOLLOW) < 0)
		berth_warn("sandbox: give %s to uid %u: %s", SBX_DEFAULT_CWD, j->uid,
		           strerror(errno));
}

/*
 * The container's user has no supplementary groups (the runtime drops
 * them), but berthd may have some (0, started from root's shell), and the
 * kernel would let a thread in those groups open what the user may not:
 * the thread leaves them too. setgroups(2) called directly changes the
 * calling thread only (glibc's wrapper would change every thread of
 * berthd), as setfsuid(2) does.
 */
int sbx_identity_assume(struct sbx_identity *saved, uint32_t uid, uint32_t gid)
{
	int n;

	memset(saved, 0, sizeof(*saved));
	/* The container's user may be root: berthd's own identity is that. */
	if (uid == 0 && gid == 0)
		return 0;
	n = getgroups(0, NULL);
	if (n < 0)
		return -errno;
	if (n > 0) {
		saved->groups = xcalloc((size_t)n, sizeof(gid_t));
		n = getgroups(n, saved->groups);
		if (n < 0 || syscall(SYS_setgroups, 0, NULL) < 0) {
			int e = errno;
			free(steal_pointer(&saved->groups));
			return -e;
		}
	}
	saved->n_groups = n;
	saved->assumed = true;
	saved->gid = setfsgid(gid);
	saved->uid = setfsuid(uid);
	return 0;
}

void sbx_identity_restore(struct sbx_identity *saved)
{
	if (!saved->assumed)
		return;
	setfsuid((uid_t)saved->uid);
	setfsgid((gid_t)saved->gid);
	if (saved->n_groups > 0 &&
	    syscall(SYS_setgroups, (size_t)saved->n_groups, saved->groups) < 0)
		berth_warn("sandbox: restore a thread's groups: %s", strerror(errno));
	free(steal_pointer(&saved->groups));
	saved->assumed = false;
}

/*
 * The work happens with the container user's file system identity and
 * without berthd's supplementary groups (sbx_identity_assume()): a
 * container that runs as a user cannot have berthd write (or read) where
 * that user may not, and what is created is that user's. The root is
 * opened before, as berthd.
 */
static void fs_work(uv_work_t *req)
{
	struct fs_job *j = req->data;
	cleanup_close int root = -1;
	struct sbx_identity saved;
	int r;

	if (j->op == FS_STREAM_CHUNK) {
		do_stream_chunk(j);
		return;
	}
	/* The descriptor was opened as the container's user: what it may write. */
	if (j->op == FS_PUT_WRITE) {
		r = berth_write_all(j->fd, j->data, j->len);
		if (r < 0)
			fail(j, -r, "write `%s`", j->path2);
		return;
	}
	/* These work in the directory an upload's open found. */
	if (j->op != FS_PUT_COMMIT && j->op != FS_PUT_DISCARD) {
		root = open_root(j);
		if (root < 0)
			return;
		if (j->workspace)
			make_workspace(j, root);
	}
	r = sbx_identity_assume(&saved, j->uid, j->gid);
	if (r < 0) {
		fail(j, -r, "leave berthd's groups to work on `%s`", j->path);
		return;
	}
	do_op(j, root);
	/* Back to berthd's own before the thread runs anything else. */
	sbx_identity_restore(&saved);
}

static void do_op(struct fs_job *j, int root)
{
	int fd;

	switch (j->op) {
	case FS_MKDIR_P:
		mkdir_p(j, root, j->path);
		break;
	case FS_MKDIR:
		if (j->recursive) {
			mkdir_p(j, root, j->path);
		} else {
			const char *name;
			cleanup_close int parent = open_parent(j, root, j->path, &name);
			if (parent >= 0 && mkdirat(parent, name, 0755) < 0)
				fail(j, errno, "create directory `%s`", j->path);
			else if (parent >= 0)
				own(j, parent, name);
		}
		break;
	case FS_WRITE:
		do_write(j, root);
		break;
	case FS_PUT_OPEN:
		do_put_open(j, root);
		break;
	case FS_PUT_COMMIT:
		do_put_commit(j);
		break;
	case FS_PUT_DISCARD:
		do_put_discard(j);
		break;
	case FS_READ:
		do_read(j, root);
		break;
	case FS_STREAM_OPEN:
		do_stream_open(j, root);
		break;
	case FS_DELETE:
		do_delete(j, root);
		break;
	case FS_RENAME:
	case FS_MOVE:
		do_rename(j, root, j->op == FS_MOVE);
		break;
	case FS_LIST:
		do_list(j, root);
		break;
	case FS_COMMANDS:
		do_commands(j, root);
		break;
	case FS_EXISTS:
		fd = berth_open_in_root(root, j->path, O_PATH, 0);
		if (fd >= 0 || fd == -ENOENT || fd == -ENOTDIR)
			j->result = json_pack("{s:b}", "exists", fd >= 0);
		else
			fail(j, -fd, "look up `%s`", j->path);
		berth_close_keep_errno(fd);
		break;
	case FS_STREAM_CHUNK:
	case FS_PUT_WRITE:
		break;
	}
}

static void stream_next(struct fs_job *j);

static void on_stream_drain(struct berth_http_request *req, void *arg)
{
	struct fs_job *j = arg;
	(void)req;

	j->behind = false;
	stream_next(j);
}

static void on_stream_gone(struct berth_http_request *req, void *arg)
{
	struct fs_job *j = arg;
	(void)req;

	/* A chunk read in flight ends the stream when it comes back. */
	if (j->behind) {
		j->behind = false;
		stream_next(j);
	}
}

static void after_fs(uv_work_t *req, int status);

static void stream_next(struct fs_job *j)
{
	struct sbx_call *c = j->c;

	if (berth_http_request_gone(c->req) || j->eof) {
		if (!berth_http_request_gone(c->req) && !j->raw)
			sbx_sse_send(c->req, json_pack("{s:s, s:I}", "type", "complete",
			                               "bytesRead", (json_int_t)j->sent));
		berth_http_stream_end(c->req);
		c->req = NULL;
		job_free(j);
		sbx_call_end(c);
		return;
	}
	j->op = FS_STREAM_CHUNK;
	uv_queue_work(c->d->loop, &j->work, fs_work, after_fs);
}

static void stream_chunk_done(struct fs_job *j)
{
	struct sbx_call *c = j->c;
	int w = 0;

	if (j->err != 0) {
		/* A raw stream can only be cut short: its client sees the chunked body end badly.
		 */
		if (!j->raw)
			sbx_sse_send(c->req,
			             json_pack("{s:s, s:s}", "type", "error", "error", j->what));
		j->eof = true;
		j->sent = 0;
		berth_http_stream_end(c->req);
		c->req = NULL;
		job_free(j);
		sbx_call_end(c);
		return;
	}
	if (j->len > 0 && j->raw) {
		w = berth_http_stream_write(c->req, j->data, j->len);
	} else if (j->len > 0) {
		json_t *data;
		if (j->binary) {
			cleanup_free char *b = berth_base64_encode(j->data, j->len, NULL);
			data = json_string(b);
		} else {
			data = sbx_json_text((char *)j->data, j->len);
		}
		w = sbx_sse_send(c->req, json_pack("{s:s, s:o}", "type", "chunk", "data", data));
	}
	if (w == 1 && !j->eof) {
		j->behind = true;
		berth_http_stream_on_drain(c->req, 512 * 1024, on_stream_drain, j);
		return;
	}
	stream_next(j);
}

/* The failure of j, as the call's answer. */
static void job_answer_error(struct fs_job *j)
{
	struct sbx_call *c = j->c;
	const char *code = sbx_errno_code(j->err);

	if (j->err == ESRCH)
		code = "INTERNAL_ERROR";
	if (j->err == E2BIG)
		code = "FILESYSTEM_ERROR";
	if (j->err == EFBIG || j->err == E2BIG || j->plain)
		sbx_call_error(c, code, json_pack("{s:s}", "path", j->path), "%s", j->what);
	else
		sbx_call_error(c, code, json_pack("{s:s}", "path", j->path), "%s: %s", j->what,
		               strerror(j->err));
}

static void put_done(struct fs_job *j);

static void after_fs(uv_work_t *req, int status)
{
	struct fs_job *j = req->data;
	struct sbx_call *c = j->c;
	(void)status;

	if (j->op == FS_STREAM_CHUNK)
		return stream_chunk_done(j);
	/* Tried once per container: an image that cannot have it (read-only) runs without. */
	if (j->workspace && c->inst->init_pid == j->init_pid)
		c->inst->workspace_made = true;
	j->workspace = false;
	if (j->op == FS_PUT_OPEN || j->op == FS_PUT_WRITE || j->op == FS_PUT_COMMIT ||
	    j->op == FS_PUT_DISCARD)
		return put_done(j);
	if (j->op == FS_MKDIR_P) {
		void (*done)(void *, int) = j->done;
		void *arg = j->arg;
		int err = j->err;
		job_free(j);
		done(arg, err);
		return;
	}
	if (j->err != 0) {
		job_answer_error(j);
		job_free(j);
		sbx_call_end(c);
		return;
	}
	switch (j->op) {
	case FS_STREAM_OPEN:
		if (j->raw) {
			cleanup_free char *h =
			        xasprintf("X-File-Size: %llu\r\nX-File-Mode: %04o\r\n",
			                  (unsigned long long)j->size, (unsigned)j->mode_given);
			berth_http_stream_begin(c->req, 200, "application/octet-stream", h);
			berth_http_request_on_gone(c->req, on_stream_gone, j);
			stream_next(j);
			return;
		}
		sbx_sse_begin(c->req);
		sbx_sse_send(c->req, json_pack("{s:s, s:s, s:I, s:b, s:s}", "type", "metadata",
		                               "mimeType", mime_of(j->path, j->binary), "size",
		                               (json_int_t)j->size, "isBinary", j->binary,
		                               "encoding", j->binary ? "base64" : "utf-8"));
		berth_http_request_on_gone(c->req, on_stream_gone, j);
		stream_next(j);
		return;
	case FS_MKDIR:
		sbx_respond_ok(c->req,
		               json_pack("{s:s, s:b}", "path", j->path, "recursive", j->recursive));
		break;
	case FS_RENAME:
	case FS_MOVE:
		sbx_respond_ok(c->req,
		               json_pack("{s:s, s:s}", "path", j->path, "newPath", j->path2));
		break;
	case FS_WRITE:
		if (c->berth_api)
			berth_http_respond_json(c->req, 200,
			                        json_pack("{s:s, s:I}", "path", j->path, "size",
			                                  (json_int_t)j->len));
		else
			sbx_respond_ok(c->req, json_pack("{s:s}", "path", j->path));
		break;
	case FS_COMMANDS:
		sbx_respond_ok(c->req, steal_pointer(&j->result));
		break;
	case FS_READ:
	case FS_LIST:
	case FS_EXISTS:
		json_object_set_new(j->result, "path", json_string(j->path));
		sbx_respond_ok(c->req, steal_pointer(&j->result));
		break;
	default:
		sbx_respond_ok(c->req, json_pack("{s:s}", "path", j->path));
		break;
	}
	c->req = NULL;
	job_free(j);
	sbx_call_end(c);
}

static struct fs_job *job_new(struct sbx_call *c, enum fs_op op)
{
	struct fs_job *j = xcalloc(1, sizeof(*j));
	struct berth_container *ctr = berthd_lease_container(c->lease);

	j->work.data = j;
	j->c = c;
	j->op = op;
	j->fd = -1;
	j->dirfd = -1;
	j->mode_given = -1;
	j->init_pid = berth_container_pid(ctr);
	j->init_pidfd = berth_container_pidfd(ctr);
	berth_container_user(ctr, &j->uid, &j->gid);
	j->workspace = !c->inst->workspace_made;
	return j;
}

static void job_queue(struct fs_job *j)
{
	uv_queue_work(j->c->d->loop, &j->work, fs_work, after_fs);
}

/* ---- uploads: the body into the file as it comes ---- */

/*
 * The body is gathered into PUT_CHUNK pieces on the loop and written on the
 * thread pool, one piece at a time: the next piece fills while the last is
 * written, and once it is full too the body pauses (the server's bounded
 * buffer and the socket hold the rest), so an upload holds two pieces at
 * most however fast its client sends.
 */
#define PUT_CHUNK (256u * 1024)

static void put_queue(struct fs_job *j, enum fs_op op)
{
	j->op = op;
	j->busy = true;
	job_queue(j);
}

/* The gathered piece to the thread pool; the one written before takes its place. */
static void put_write(struct fs_job *j)
{
	unsigned char *data = j->data;
	size_t cap = j->data_cap;

	j->data = steal_pointer(&j->fill);
	j->len = j->fill_len;
	j->data_cap = j->fill_cap;
	j->fill = data;
	j->fill_len = 0;
	j->fill_cap = cap;
	put_queue(j, FS_PUT_WRITE);
}

/* The body broke off: the server's answer for it (the request is berth's API's). */
static void put_answer_body_error(struct fs_job *j)
{
	struct sbx_call *c = j->c;

	if (j->body_status == -E2BIG)
		berth_http_respond_error(c->req, 413, "body_too_large",
		                         "the upload is larger than %llu bytes",
		                         (unsigned long long)BERTHD_SANDBOX_PUT_MAX);
	else if (j->body_status == -ETIMEDOUT)
		berth_http_respond_error(c->req, 408, "request_timeout",
		                         "the upload stopped coming");
	else
		berth_http_respond_error(c->req, 400, "bad_request",
		                         "the upload's chunked coding is malformed");
	c->req = NULL;
}

/* The next step of an upload, once no job of its is on the thread pool. */
static void put_next(struct fs_job *j)
{
	struct sbx_call *c = j->c;

	if (j->busy)
		return;
	if (c->req == NULL || berth_http_request_gone(c->req) || j->err != 0 ||
	    j->body_status != 0) {
		/* Answered (once), then the file goes. */
		if (c->req != NULL && berth_http_request_gone(c->req)) {
			berth_http_respond(c->req, 499, "text/plain", NULL, "", 0);
			c->req = NULL;
		} else if (c->req != NULL && j->err != 0) {
			job_answer_error(j);
		} else if (c->req != NULL) {
			put_answer_body_error(j);
		}
		if (j->fd >= 0) {
			put_queue(j, FS_PUT_DISCARD);
			return;
		}
		job_free(j);
		sbx_call_end(c);
		return;
	}
	if (j->fill_len >= PUT_CHUNK || (j->body_done && j->fill_len > 0)) {
		put_write(j);
	} else if (j->body_done) {
		put_queue(j, FS_PUT_COMMIT);
		return;
	}
	if (j->paused) {
		j->paused = false;
		berth_http_body_pause(c->req, false);
	}
}

static void put_data(struct berth_http_request *req, void *arg, const char *at, size_t len)
{
	struct fs_job *j = arg;

	if (j->fill_len + len > j->fill_cap) {
		/* A piece is one read of the server's (64 KiB), or what waited in its buffer. */
		j->fill_cap = j->fill_len + len > PUT_CHUNK ? j->fill_len + len : PUT_CHUNK;
		j->fill = xrealloc(j->fill, j->fill_cap);
	}
	memcpy(j->fill + j->fill_len, at, len);
	j->fill_len += len;
	j->size += len;
	if (j->fill_len < PUT_CHUNK)
		return;
	if (!j->busy) {
		put_write(j);
	} else if (!j->paused) {
		j->paused = true;
		berth_http_body_pause(req, true);
	}
}

static void put_end(struct berth_http_request *req, void *arg, int status)
{
	struct fs_job *j = arg;
	(void)req;

	j->body_done = status == 0;
	j->body_status = status;
	put_next(j);
}

static const struct berth_http_body_ops put_body_ops = {put_data, put_end};

static void on_put_gone(struct berth_http_request *req, void *arg)
{
	(void)req;
	put_next(arg);
}

static void put_done(struct fs_job *j)
{
	struct sbx_call *c = j->c;

	j->busy = false;
	if (j->op == FS_PUT_DISCARD) {
		job_free(j);
		sbx_call_end(c);
		return;
	}
	if (j->op == FS_PUT_COMMIT && j->err == 0) {
		berth_http_respond_json(
		        c->req, 200,
		        json_pack("{s:s, s:I}", "path", j->path, "size", (json_int_t)j->size));
		c->req = NULL;
		/* Named: closing it now is cheap. */
		job_free(j);
		sbx_call_end(c);
		return;
	}
	if (j->op == FS_PUT_OPEN && j->err == 0 && !berth_http_request_gone(c->req)) {
		berth_http_request_on_gone(c->req, on_put_gone, j);
		if (c->req->body_stream)
			berth_http_body_read(c->req, &put_body_ops, j);
		else
			j->body_done = true; /* no body: an empty file */
	}
	put_next(j);
}

void sbx_files_mkdir_p(struct sbx_call *c, const char *path, void (*done)(void *arg, int err),
                       void *arg)
{
	struct fs_job *j = job_new(c, FS_MKDIR_P);

	j->path = xstrdup(path);
	j->done = done;
	j->arg = arg;
	job_queue(j);
}

char *sbx_abs_path(struct sbx_call *c, const char *path)
{
	struct sbx_session *s;
	cleanup_free char *joined = NULL;
	char *out, *o;
	const char *p;

	if (*path == '\0') {
		sbx_call_fail(c, "VALIDATION_FAILED", "`path` is empty");
		return NULL;
	}
	if (strlen(path) > 4096) {
		sbx_call_fail(c, "NAME_TOO_LONG", "the path is longer than 4096 bytes");
		return NULL;
	}
	if (path[0] != '/') {
		s = sbx_call_session(c);
		joined = xasprintf("%s/%s", s != NULL ? s->cwd : SBX_DEFAULT_CWD, path);
		path = joined;
	}
	/* Lexically: "." goes, ".." takes the last component, and may not climb above "/". */
	out = o = xmalloc(strlen(path) + 2);
	for (p = path; *p != '\0';) {
		const char *end;
		size_t n;

		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		end = strchr(p, '/');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n == 1 && p[0] == '.') {
			;
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (o == out) {
				free(out);
				sbx_call_error(
				        c, "PERMISSION_DENIED", json_pack("{s:s}", "path", path),
				        "`%s` leads outside the container's root: refused", path);
				sbx_call_end(c);
				return NULL;
			}
			while (o > out && *--o != '/')
				;
		} else {
			*o++ = '/';
			memcpy(o, p, n);
			o += n;
		}
		p += n;
	}
	if (o == out)
		*o++ = '/';
	*o = '\0';
	return out;
}

/* The body's `key` as an absolute path inside the container; NULL: answered. */
static char *path_arg(struct sbx_call *c, const char *key)
{
	const char *p;

	if (!sbx_get_string(c, key, true, &p))
		return NULL;
	return sbx_abs_path(c, p);
}

bool sbx_files_serve(struct sbx_call *c, const char *op)
{
	static const struct {
		const char *name;
		enum fs_op op;
	} ops[] = {
	        {"mkdir", FS_MKDIR},   {"write", FS_WRITE},
	        {"read", FS_READ},     {"read/stream", FS_STREAM_OPEN},
	        {"delete", FS_DELETE}, {"rename", FS_RENAME},
	        {"move", FS_MOVE},     {"list-files", FS_LIST},
	        {"exists", FS_EXISTS},
	};
	const char *enc = NULL, *content = NULL;
	struct fs_job *j;
	char *path, *path2 = NULL;
	enum fs_op which;
	size_t i;
	json_t *opts;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(op, ops[i].name) == 0)
			break;
	if (i == sizeof(ops) / sizeof(ops[0]))
		return false;
	which = ops[i].op;
	if (which == FS_RENAME)
		path = path_arg(c, "oldPath");
	else if (which == FS_MOVE)
		path = path_arg(c, "sourcePath");
	else
		path = path_arg(c, "path");
	if (path == NULL)
		return true;
	if (which == FS_RENAME || which == FS_MOVE) {
		path2 = path_arg(c, which == FS_RENAME ? "newPath" : "destinationPath");
		if (path2 == NULL) {
			free(path);
			return true;
		}
	}
	j = job_new(c, which);
	j->path = path;
	j->path2 = path2;
	if (!sbx_get_string(c, "encoding", false, &enc)) {
		job_free(j);
		return true;
	}
	if (enc != NULL && strcmp(enc, "base64") == 0)
		j->encoding = 2;
	else if (enc != NULL && (strcmp(enc, "utf-8") == 0 || strcmp(enc, "utf8") == 0))
		j->encoding = 1;
	else if (enc != NULL) {
		job_free(j);
		sbx_call_fail(c, "VALIDATION_FAILED", "`encoding` must be utf-8 or base64");
		return true;
	}
	if (which == FS_MKDIR || which == FS_DELETE) {
		if (!sbx_get_bool(c, "recursive", &j->recursive)) {
			job_free(j);
			return true;
		}
	}
	if (which == FS_LIST) {
		opts = json_object_get(c->body, "options");
		if (json_is_object(opts)) {
			j->recursive = json_is_true(json_object_get(opts, "recursive"));
			j->hidden = json_is_true(json_object_get(opts, "includeHidden"));
		}
	}
	if (which == FS_WRITE) {
		json_t *v = json_object_get(c->body, "content");
		if (!json_is_string(v)) {
			job_free(j);
			sbx_call_fail(c, "VALIDATION_FAILED", "`content` must be a string");
			return true;
		}
		content = json_string_value(v);
		if (j->encoding == 2) {
			if (berth_base64_decode(content, json_string_length(v), &j->data, &j->len) <
			    0) {
				job_free(j);
				sbx_call_fail(c, "VALIDATION_FAILED", "`content` is not base64");
				return true;
			}
		} else {
			j->len = json_string_length(v);
			j->data = xmalloc(j->len + 1);
			memcpy(j->data, content, j->len);
		}
		/* The body's copy is no longer needed: a large write holds one copy. */
		json_object_del(c->body, "content");
	}
	job_queue(j);
	return true;
}

void sbx_files_raw(struct sbx_call *c)
{
	cleanup_free char *given = berth_http_query_param(c->req, "path");
	cleanup_free char *mode = berth_http_query_param(c->req, "mode");
	bool put = strcmp(c->req->method, "PUT") == 0;
	unsigned long bits = 0;
	struct fs_job *j;
	char *end = NULL;
	char *path;

	if (given == NULL || given[0] != '/')
		return sbx_call_fail(c, "VALIDATION_FAILED",
		                     "?path= must give an absolute path inside the container");
	/* A body the server did not stream came with an upgrade: no upload. */
	if (put && !c->req->body_stream && c->req->body_len > 0)
		return sbx_call_fail(c, "VALIDATION_FAILED", "an upload cannot ask for an upgrade");
	/* The permission bits, in octal as chmod takes them; no setuid, setgid or sticky. */
	if (mode != NULL && put) {
		errno = 0;
		bits = strtoul(mode, &end, 8);
		if (mode[0] < '0' || mode[0] > '7' || *end != '\0' || errno != 0 || bits > 0777)
			return sbx_call_fail(c, "VALIDATION_FAILED",
			                     "?mode=%.32s is not a file mode (octal, 0 to 0777)",
			                     mode);
	}
	path = sbx_abs_path(c, given);
	if (path == NULL)
		return;
	j = job_new(c, put ? FS_PUT_OPEN : FS_STREAM_OPEN);
	j->path = path;
	j->raw = !put;
	j->mode_given = put && mode != NULL ? (int)bits : -1;
	if (put)
		put_queue(j, FS_PUT_OPEN);
	else
		job_queue(j);
}

void sbx_files_commands(struct sbx_call *c)
{
	struct berth_container *ctr = berthd_lease_container(c->lease);
	char *const *env = berth_container_env(ctr);
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	struct fs_job *j;

	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		if (strncmp(env[i], "PATH=", 5) == 0)
			path = env[i] + 5;
	j = job_new(c, FS_COMMANDS);
	j->path = xstrdup(path);
	job_queue(j);
}
