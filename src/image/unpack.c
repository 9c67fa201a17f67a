/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unpacking a layer into a directory that overlayfs then uses as a lower
 * layer as it is, so the OCI whiteouts become overlayfs's own: `.wh.NAME` a
 * character device 0:0 named NAME, `.wh..wh..opq` the directory's
 * trusted.overlay.opaque=y attribute.
 *
 * Two libarchive readers are chained: the outer one undoes the compression
 * (any filter libarchive has: gzip, zstd, xz, ...; the "raw" format hands out
 * the decompressed bytes), the inner one reads the tar from what the outer
 * one hands out. The bytes pass through our callback on their way, which
 * hashes them: the layer's diff id, checked against the image config, with
 * no second pass over the data.
 *
 * We write every entry ourselves (not archive_write_disk) so that each path
 * is resolved with openat() one component at a time, O_NOFOLLOW, from the
 * layer's root: an entry with `..`, an absolute path, or a parent that is a
 * symlink is refused, never followed.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "image-internal.h"

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"
#define OPAQUE_XATTR    "trusted.overlay.opaque"
#define BLOCK_SIZE      (128 * 1024)

struct source {
	struct archive *outer;
	struct sha256_ctx hash;
	uint64_t bytes, max_bytes; /* the tar's, decompressed; its bound */
	bool too_big;
	char buf[BLOCK_SIZE];
};

struct dir_time {
	char *path;
	struct timespec ts[2];
};

struct unpack {
	int rootfd;
	berth_error_t *err;
	const struct berth_image_limits *limits;
	uint64_t entries, file_bytes; /* so far: entries, regular files' sizes summed */
	/* The last parent directory opened, which the next entry most likely shares. */
	char parent_path[PATH_MAX];
	int parent_fd;
	bool parent_setgid; /* new entries there take the directory's group */
	mode_t umask;       /* the process's, read once: it shapes what open() creates */
	/* Directory times are set at the end: writing entries into them changes them. */
	struct dir_time *dirs;
	size_t ndirs, dirs_cap;
};

static la_ssize_t read_decompressed(struct archive *a, void *data, const void **buf)
{
	struct source *src = data;
	la_ssize_t n = archive_read_data(src->outer, src->buf, sizeof(src->buf));

	if (n < 0) {
		archive_set_error(a, EIO, "%s", archive_error_string(src->outer));
		return -1;
	}
	/* Counted as it comes: a bomb is stopped within a block of the bound, not after. */
	src->bytes += (uint64_t)n;
	if (src->bytes > src->max_bytes) {
		src->too_big = true;
		archive_set_error(a, EFBIG, "the layer is too large");
		return -1;
	}
	sha256_update(&src->hash, (size_t)n, (const uint8_t *)src->buf);
	*buf = src->buf;
	return n;
}

/*
 * "./usr//bin/" → "usr/bin"; refuse absolute paths and "..". An empty result
 * is the layer's root.
 */
static int clean_path(const char *in, char out[PATH_MAX], berth_error_t *err)
{
	size_t used = 0;
	const char *p = in;

	if (in[0] == '/')
		return berth_error_set_plain(err, EPERM, "entry `%s`: absolute paths are refused",
		                             in);
	while (*p != '\0') {
		const char *end = strchr(p, '/');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return berth_error_set_plain(err, EPERM,
			                             "entry `%s`: `..` in a path is refused", in);
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (used + n + 2 > PATH_MAX)
				return berth_error_set_plain(err, ENAMETOOLONG,
				                             "entry `%.64s...`: path too long", in);
			if (used > 0)
				out[used++] = '/';
			memcpy(out + used, p, n);
			used += n;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	out[used] = '\0';
	return 0;
}

/*
 * Open directory `path` (clean, relative) under the root, one component at
 * a time without following symlinks, creating missing ones (0755, root) when
 * `create`. Returns an fd or a negative errno with `err` filled.
 */
static int open_dir_beneath(int rootfd, const char *path, bool create, berth_error_t *err)
{
	struct open_how how = {
	        .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
	        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	char buf[PATH_MAX];
	char *p, *slash;
	int cur, fd;

	if (path[0] == '\0')
		return fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
	fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	if (fd >= 0)
		return fd;
	if (errno != ENOENT || !create) {
		if (errno == ELOOP || errno == EXDEV)
			return berth_error_set_plain(err, EPERM,
			                             "`%s` has a symlink among its parents, which "
			                             "is refused",
			                             path);
		return berth_error_set(err, errno, "open `%s` in the layer", path);
	}
	snprintf(buf, sizeof(buf), "%s", path);
	cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
	for (p = buf; cur >= 0 && p != NULL; p = slash != NULL ? slash + 1 : NULL) {
		int next;

		slash = strchr(p, '/');
		if (slash != NULL)
			*slash = '\0';
		next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT) {
			if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST) {
				berth_close_keep_errno(cur);
				return berth_error_set(err, errno, "mkdir `%s` in the layer", buf);
			}
			next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			int e = errno;
			close(cur);
			if (e == ELOOP || e == ENOTDIR)
				return berth_error_set_plain(err, EPERM,
				                             "`%s` has a symlink or file among its "
				                             "parents, which is refused",
				                             path);
			return berth_error_set(err, e, "open `%s` in the layer", buf);
		}
		close(cur);
		cur = next;
	}
	return cur;
}

static int parent_of(struct unpack *u, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	char parent[PATH_MAX];
	int fd;

	if (slash == NULL) {
		parent[0] = '\0';
		*name = path;
	} else {
		memcpy(parent, path, (size_t)(slash - path));
		parent[slash - path] = '\0';
		*name = slash + 1;
	}
	if (u->parent_fd >= 0 && strcmp(parent, u->parent_path) == 0)
		return u->parent_fd;
	fd = open_dir_beneath(u->rootfd, parent, true, u->err);
	if (fd < 0)
		return fd;
	berth_closep(&u->parent_fd);
	u->parent_fd = fd;
	{
		struct stat st;
		u->parent_setgid = fstat(fd, &st) < 0 || (st.st_mode & S_ISGID) != 0;
	}
	snprintf(u->parent_path, sizeof(u->parent_path), "%s", parent);
	return fd;
}

/* Removing a directory may remove the cached parent's path: forget it. */
static void forget_parent(struct unpack *u)
{
	berth_closep(&u->parent_fd);
	u->parent_path[0] = '\0';
}

/* What a later entry replaces (tar allows duplicates; the last one wins). */
static int remove_existing(struct unpack *u, int dirfd, const char *name, bool keep_dir)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : berth_error_set(u->err, errno, "stat `%s`", name);
	if (S_ISDIR(st.st_mode)) {
		if (keep_dir)
			return 0;
		forget_parent(u);
		return berth_rmtree_at(dirfd, name, u->err);
	}
	if (unlinkat(dirfd, name, 0) < 0)
		return berth_error_set(u->err, errno, "remove `%s`", name);
	return 0;
}

/* Extended attributes from the tar, except overlayfs's own, which only we may set. */
static int set_xattrs(struct unpack *u, struct archive_entry *e, int fd, const char *path)
{
	const char *name;
	const void *value;
	size_t size;

	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (strncmp(name, "trusted.", 8) == 0)
			continue;
		if (fsetxattr(fd, name, value, size, 0) < 0 && errno != ENOTSUP)
			return berth_error_set(u->err, errno, "set attribute %s of `%s`", name,
			                       path);
	}
	return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
	ts[1].tv_sec = archive_entry_mtime(e);
	ts[1].tv_nsec = archive_entry_mtime_nsec(e);
	if (archive_entry_atime_is_set(e)) {
		ts[0].tv_sec = archive_entry_atime(e);
		ts[0].tv_nsec = archive_entry_atime_nsec(e);
	} else {
		ts[0] = ts[1];
	}
}

/*
 * Owner, then mode (a chown clears setuid and setgid bits), attributes and
 * times. `fresh`: the entry was just created by us with `perm & 0777` as its
 * mode, so it is root's with that mode less the umask, and the calls that
 * would change nothing are skipped (a layer has thousands of files).
 */
static int set_meta_fd(struct unpack *u, struct archive_entry *e, int fd, const char *path,
                       bool times, bool fresh)
{
	uid_t uid = (uid_t)archive_entry_uid(e);
	gid_t gid = (gid_t)archive_entry_gid(e);
	mode_t perm = archive_entry_perm(e) & 07777;
	struct timespec ts[2];
	bool owned = fresh && uid == 0 && gid == 0 && !u->parent_setgid;

	if (!owned && fchown(fd, uid, gid) < 0)
		return berth_error_set(u->err, errno, "chown `%s`", path);
	if ((!owned || perm != (perm & 0777 & ~u->umask)) && fchmod(fd, perm) < 0)
		return berth_error_set(u->err, errno, "chmod `%s`", path);
	if (set_xattrs(u, e, fd, path) < 0)
		return -1;
	if (times) {
		entry_times(e, ts);
		if (futimens(fd, ts) < 0)
			return berth_error_set(u->err, errno, "set times of `%s`", path);
	}
	return 0;
}

static int write_data(struct unpack *u, struct archive *a, int fd, const char *path,
                      la_int64_t entry_size)
{
	const void *buf;
	size_t size;
	la_int64_t offset, end = 0;
	int r;

	while ((r = archive_read_data_block(a, &buf, &size, &offset)) == ARCHIVE_OK) {
		/* Sparse files come in pieces with holes between them. */
		if (offset != end && lseek(fd, offset, SEEK_SET) < 0)
			return berth_error_set(u->err, errno, "seek in `%s`", path);
		if (berth_write_all(fd, buf, size) < 0)
			return berth_error_set(u->err, errno, "write `%s`", path);
		end = offset + (la_int64_t)size;
	}
	if (r != ARCHIVE_EOF)
		return berth_error_set_plain(u->err, EIO, "read `%s`: %s", path,
		                             archive_error_string(a));
	/* A hole at the end: the file still has its full size. */
	if (end < entry_size && ftruncate(fd, entry_size) < 0)
		return berth_error_set(u->err, errno, "truncate `%s`", path);
	return 0;
}

static int whiteout(struct unpack *u, const char *path, int dirfd, const char *name)
{
	const char *target = name + strlen(WHITEOUT_PREFIX);

	if (strcmp(name, WHITEOUT_OPAQUE) == 0) {
		if (fsetxattr(dirfd, OPAQUE_XATTR, "y", 1, 0) < 0)
			return berth_error_set(u->err, errno, "mark `%s` opaque (" OPAQUE_XATTR ")",
			                       path);
		return 0;
	}
	/* Other .wh..wh. names are aufs's bookkeeping, meaningless here. */
	if (strncmp(target, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0)
		return 0;
	if (target[0] == '\0' || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
		return berth_error_set_plain(u->err, EINVAL, "entry `%s`: bad whiteout", path);
	if (remove_existing(u, dirfd, target, false) < 0)
		return -1;
	if (mknodat(dirfd, target, S_IFCHR | 0000, makedev(0, 0)) < 0)
		return berth_error_set(u->err, errno, "create whiteout for `%s`", path);
	return 0;
}

static int hardlink(struct unpack *u, struct archive_entry *e, const char *path, int dirfd,
                    const char *name)
{
	char target[PATH_MAX];
	const char *tname;
	cleanup_close int tdir = -1;
	const char *slash;
	char tparent[PATH_MAX];

	if (clean_path(archive_entry_hardlink(e), target, u->err) < 0)
		return berth_error_wrap(u->err, "hard link `%s`", path);
	slash = strrchr(target, '/');
	if (slash == NULL) {
		tparent[0] = '\0';
		tname = target;
	} else {
		memcpy(tparent, target, (size_t)(slash - target));
		tparent[slash - target] = '\0';
		tname = slash + 1;
	}
	if (tname[0] == '\0')
		return berth_error_set_plain(u->err, EINVAL, "hard link `%s` to the layer root",
		                             path);
	tdir = open_dir_beneath(u->rootfd, tparent, false, u->err);
	if (tdir < 0)
		return berth_error_wrap(u->err, "hard link `%s`", path);
	if (remove_existing(u, dirfd, name, false) < 0)
		return -1;
	/* flags 0: a link to a symlink links the symlink, never what it points to. */
	if (linkat(tdir, tname, dirfd, name, 0) < 0)
		return berth_error_set(u->err, errno, "hard link `%s` to `%s`", path, target);
	return 0;
}

static int defer_dir_time(struct unpack *u, const char *path, struct archive_entry *e)
{
	if (u->ndirs == u->dirs_cap) {
		u->dirs_cap = u->dirs_cap ? 2 * u->dirs_cap : 64;
		u->dirs = xrealloc(u->dirs, u->dirs_cap * sizeof(*u->dirs));
	}
	u->dirs[u->ndirs].path = xstrdup(path);
	entry_times(e, u->dirs[u->ndirs].ts);
	u->ndirs++;
	return 0;
}

static int too_large(struct unpack *u, const char *what, uint64_t limit)
{
	char text[32];

	berth_image_size_text(limit, text);
	return berth_error_set_plain(u->err, EFBIG,
	                             "%s more than %s, the bound of a layer "
	                             "(BERTH_IMAGE_MAX_LAYER_BYTES): refused",
	                             what, text);
}

static int entry(struct unpack *u, struct archive *a, struct archive_entry *e)
{
	char path[PATH_MAX];
	const char *name;
	mode_t type = archive_entry_filetype(e);
	int dirfd;

	/* Before anything is written: sizes are in the header (a sparse file's too). */
	if (++u->entries > u->limits->layer_entries)
		return berth_error_set_plain(u->err, EFBIG,
		                             "the layer has more than %" PRIu64
		                             " entries, the bound of a layer "
		                             "(BERTH_IMAGE_MAX_LAYER_ENTRIES): refused",
		                             u->limits->layer_entries);
	if (S_ISREG(type) && archive_entry_size(e) > 0) {
		u->file_bytes += (uint64_t)archive_entry_size(e);
		if (u->file_bytes > u->limits->layer_bytes)
			return too_large(u, "the layer's files add up to", u->limits->layer_bytes);
	}
	if (clean_path(archive_entry_pathname(e), path, u->err) < 0)
		return -1;
	if (path[0] == '\0') {
		/* The layer's root: only its metadata. */
		if (!S_ISDIR(type) || archive_entry_hardlink(e) != NULL)
			return berth_error_set_plain(u->err, EINVAL,
			                             "the layer's root entry is not a directory");
		if (set_meta_fd(u, e, u->rootfd, "/", false, false) < 0)
			return -1;
		return defer_dir_time(u, path, e);
	}
	dirfd = parent_of(u, path, &name);
	if (dirfd < 0)
		return dirfd;
	if (strncmp(name, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0)
		return whiteout(u, path, dirfd, name);
	if (archive_entry_hardlink(e) != NULL)
		return hardlink(u, e, path, dirfd, name);

	if (S_ISDIR(type)) {
		cleanup_close int fd = -1;
		bool fresh = true;

		/* Usually new; else a directory stays (merged), anything else goes. */
		if (mkdirat(dirfd, name, archive_entry_perm(e) & 0777) < 0) {
			if (errno != EEXIST)
				return berth_error_set(u->err, errno, "mkdir `%s`", path);
			fresh = false;
			if (remove_existing(u, dirfd, name, true) < 0)
				return -1;
			if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
				return berth_error_set(u->err, errno, "mkdir `%s`", path);
		}
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return berth_error_set(u->err, errno, "open `%s`", path);
		if (set_meta_fd(u, e, fd, path, false, fresh) < 0)
			return -1;
		return defer_dir_time(u, path, e);
	}
	if (S_ISREG(type)) {
		int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
		mode_t mode = archive_entry_perm(e) & 0777;
		cleanup_close int fd = openat(dirfd, name, flags, mode);

		/* A name seen before in this tar: the later entry replaces it. */
		if (fd < 0 && errno == EEXIST) {
			if (remove_existing(u, dirfd, name, false) < 0)
				return -1;
			fd = openat(dirfd, name, flags, mode);
		}
		if (fd < 0)
			return berth_error_set(u->err, errno, "create `%s`", path);
		if (write_data(u, a, fd, path, archive_entry_size(e)) < 0)
			return -1;
		return set_meta_fd(u, e, fd, path, true, true);
	}
	if (remove_existing(u, dirfd, name, false) < 0)
		return -1;
	if (S_ISLNK(type)) {
		const char *target = archive_entry_symlink(e);
		struct timespec ts[2];

		if (target == NULL)
			return berth_error_set_plain(u->err, EINVAL, "symlink `%s` has no target",
			                             path);
		/* A symlink may point anywhere: it is resolved inside the container. */
		if (symlinkat(target, dirfd, name) < 0)
			return berth_error_set(u->err, errno, "symlink `%s`", path);
		if (fchownat(dirfd, name, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
		             AT_SYMLINK_NOFOLLOW) < 0)
			return berth_error_set(u->err, errno, "chown `%s`", path);
		entry_times(e, ts);
		utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
		return 0;
	}
	if (S_ISCHR(type) || S_ISBLK(type) || S_ISFIFO(type)) {
		struct timespec ts[2];

		if (mknodat(dirfd, name, type | (archive_entry_perm(e) & 07777),
		            makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e))) < 0)
			return berth_error_set(u->err, errno, "mknod `%s`", path);
		if (fchownat(dirfd, name, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
		             AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(dirfd, name, archive_entry_perm(e) & 07777, 0) < 0)
			return berth_error_set(u->err, errno, "chown `%s`", path);
		entry_times(e, ts);
		utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
		return 0;
	}
	/* Sockets: nothing to create (tar cannot restore one either). */
	return 0;
}

static void apply_dir_times(struct unpack *u)
{
	/* Deepest first does not matter: setting a directory's times changes no parent's. */
	for (size_t i = 0; i < u->ndirs; i++) {
		int fd = open_dir_beneath(u->rootfd, u->dirs[i].path, false, NULL);
		if (fd >= 0) {
			futimens(fd, u->dirs[i].ts);
			close(fd);
		}
	}
}

/* The umask without changing it (umask(2) would, for every thread): /proc says. */
static mode_t process_umask(void)
{
	cleanup_free char *status = NULL;
	const char *line;
	size_t len;

	if (berth_read_file_at(AT_FDCWD, "/proc/self/status", 65536, &status, &len, NULL) == 0 &&
	    (line = strstr(status, "\nUmask:")) != NULL)
		return (mode_t)strtoul(line + 7, NULL, 8) & 0777;
	/* Unknown: assume the strictest, so that every mode is set explicitly. */
	return 0777;
}

int berth_image_unpack(int fd, int dirfd, const struct berth_image_limits *limits,
                       char diff_id[BERTH_DIGEST_MAX], berth_error_t *err)
{
	struct source *src = xcalloc(1, sizeof(*src));
	struct unpack u = {.rootfd = dirfd, .err = err, .parent_fd = -1, .umask = process_umask()};
	struct berth_image_limits defaults;
	struct archive *inner = NULL;
	struct archive_entry *e;
	uint8_t raw[SHA256_DIGEST_SIZE];
	int r = -1, ar;

	if (limits == NULL) {
		berth_image_limits_default(&defaults);
		limits = &defaults;
	}
	u.limits = limits;
	src->max_bytes = limits->layer_bytes;
	sha256_init(&src->hash);
	/* Without a root entry in the layer, its root is an ordinary 0755 directory. */
	if (fchmod(dirfd, 0755) < 0) {
		r = berth_error_set(err, errno, "chmod layer root");
		goto out;
	}
	src->outer = archive_read_new();
	archive_read_support_filter_all(src->outer);
	archive_read_support_format_raw(src->outer);
	if (archive_read_open_fd(src->outer, fd, BLOCK_SIZE) != ARCHIVE_OK ||
	    archive_read_next_header(src->outer, &e) != ARCHIVE_OK) {
		r = berth_error_set_plain(err, EINVAL, "not a layer: %s",
		                          archive_error_string(src->outer));
		goto out;
	}
	inner = archive_read_new();
	archive_read_support_format_tar(inner);
	archive_read_support_format_gnutar(inner);
	if (archive_read_open(inner, src, NULL, read_decompressed, NULL) != ARCHIVE_OK) {
		/* The first read (a whole block) may already pass the bound. */
		if (src->too_big)
			goto too_big;
		r = berth_error_set_plain(err, EINVAL, "not a tar layer: %s",
		                          archive_error_string(inner));
		goto out;
	}
	while ((ar = archive_read_next_header(inner, &e)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		if (entry(&u, inner, e) < 0) {
			/* A read that hit the bound mid-entry shows as the entry's read error. */
			if (src->too_big)
				goto too_big;
			r = berth_error_ret(err);
			goto out;
		}
	}
	if (src->too_big)
		goto too_big;
	if (ar != ARCHIVE_EOF) {
		r = berth_error_set_plain(err, EINVAL, "read layer: %s",
		                          archive_error_string(inner));
		goto out;
	}
	/* The diff id covers the whole tar, padding after the end marker included. */
	for (;;) {
		la_ssize_t n = archive_read_data(src->outer, src->buf, sizeof(src->buf));
		if (n < 0) {
			r = berth_error_set_plain(err, EIO, "read layer: %s",
			                          archive_error_string(src->outer));
			goto out;
		}
		if (n == 0)
			break;
		/* Padding after the end marker is bounded too: it could be endless zeros. */
		src->bytes += (uint64_t)n;
		if (src->bytes > src->max_bytes)
			goto too_big;
		sha256_update(&src->hash, (size_t)n, (const uint8_t *)src->buf);
	}
	apply_dir_times(&u);
	sha256_digest(&src->hash, sizeof(raw), raw);
	berth_digest_format(raw, diff_id);
	r = 0;
	goto out;
too_big:
	r = too_large(&u, "the layer is, once decompressed,", limits->layer_bytes);
out:
	berth_closep(&u.parent_fd);
	for (size_t i = 0; i < u.ndirs; i++)
		free(u.dirs[i].path);
	free(u.dirs);
	if (inner != NULL)
		archive_read_free(inner);
	if (src->outer != NULL)
		archive_read_free(src->outer);
	free(src);
	return r;
}
