/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"

int berth_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t berth_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int berth_write_file(const char *path, const void *data, size_t len, mode_t mode,
                     berth_error_t *err)
{
	cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	int r;

	if (fd < 0)
		return berth_error_set(err, errno, "open `%s`", path);
	r = berth_write_all(fd, data, len);
	if (r < 0)
		return berth_error_set(err, -r, "write `%s`", path);
	return 0;
}

int berth_write_knob(int dirfd, const char *name, const char *value, berth_error_t *err)
{
	cleanup_close int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(value);
	ssize_t n;

	if (fd < 0)
		return berth_error_set(err, errno, "open `%s`", name);
	/* Kernel knobs take the value in one write; a short write is an error. */
	n = write(fd, value, len);
	if (n < 0)
		return berth_error_set(err, errno, "write `%s` to `%s`", value, name);
	if ((size_t)n != len)
		return berth_error_set(err, EIO, "write `%s` to `%s`", value, name);
	return 0;
}

int berth_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
                       berth_error_t *err)
{
	cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	cleanup_free char *buf = NULL;
	size_t cap = 4096, used = 0;

	if (fd < 0)
		return berth_error_set(err, errno, "open `%s`", path);
	buf = xmalloc(cap + 1);
	for (;;) {
		ssize_t n;
		if (used == cap) {
			if (cap >= max)
				return berth_error_set(err, EFBIG, "read `%s`", path);
			cap = cap * 2 > max ? max : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return berth_error_set(err, errno, "read `%s`", path);
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	if (len != NULL)
		*len = used;
	*out = steal_pointer(&buf);
	return 0;
}

int berth_mkdir_p(const char *path, mode_t mode, berth_error_t *err)
{
	cleanup_free char *copy = xstrdup(path);
	char *p = copy;

	while (*p == '/')
		p++;
	for (;;) {
		char *slash = strchr(p, '/');
		if (slash != NULL)
			*slash = '\0';
		if (*copy != '\0' && mkdir(copy, mode) < 0 && errno != EEXIST)
			return berth_error_set(err, errno, "mkdir `%s`", copy);
		if (slash == NULL)
			break;
		*slash = '/';
		p = slash + 1;
	}
	return 0;
}

static int rmtree_dirfd(int dfd, const char *display, berth_error_t *err)
{
	cleanup_closedir DIR *dir = fdopendir(dfd);
	struct dirent *de;

	if (dir == NULL) {
		berth_close_keep_errno(dfd);
		return berth_error_set(err, errno, "open directory `%s`", display);
	}
	while ((errno = 0, de = readdir(dir)) != NULL) {
		int r;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = berth_rmtree_at(dirfd(dir), de->d_name, err);
		if (r < 0)
			return r;
	}
	if (errno != 0)
		return berth_error_set(err, errno, "read directory `%s`", display);
	return 0;
}

int berth_rmtree_at(int dirfd, const char *name, berth_error_t *err)
{
	int fd, r;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return berth_error_set(err, errno, "remove `%s`", name);
	/*
	 * O_NOFOLLOW|O_DIRECTORY: a symlink planted in a container's writable
	 * layer must be removed, never followed.
	 */
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return berth_error_set(err, errno, "open `%s`", name);
	}
	r = rmtree_dirfd(fd, name, err);
	if (r < 0)
		return r;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return berth_error_set(err, errno, "remove directory `%s`", name);
	return 0;
}

int berth_rmtree(const char *path, berth_error_t *err)
{
	return berth_rmtree_at(AT_FDCWD, path, err);
}

int berth_open_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
	        .flags = (unsigned long long)(flags | O_CLOEXEC),
	        .mode = (flags & O_CREAT) ? mode : 0,
	        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	do
		fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd < 0 ? -errno : (int)fd;
}

int berth_ensure_in_root(int rootfd, const char *path, int dir, mode_t mode, berth_error_t *err)
{
	cleanup_close int cur = -1;
	const char *p = path, *base;
	int fd;

	/* Fast path: it is already there. */
	fd = berth_open_in_root(rootfd, path, O_PATH, 0);
	if (fd >= 0)
		return fd;
	if (fd != -ENOENT)
		return berth_error_set(err, -fd, "resolve `%s` in container root", path);

	/*
	 * Walk the parents, creating what is missing. Every step re-resolves the
	 * prefix from the root, so a component that is a symlink planted by the
	 * image stays confined to the root.
	 */
	cur = berth_open_in_root(rootfd, "/", O_PATH | O_DIRECTORY, 0);
	if (cur < 0)
		return berth_error_set(err, -cur, "open container root");
	base = strrchr(path, '/');
	base = base != NULL ? base + 1 : path;
	for (;;) {
		const char *end;
		cleanup_free char *name = NULL;
		cleanup_free char *sofar = NULL;
		int next;

		while (*p == '/')
			p++;
		end = strchr(p, '/');
		if (end == NULL || p >= base)
			break;
		name = xstrndup(p, (size_t)(end - p));
		if (mkdirat(cur, name, 0755) < 0 && errno != EEXIST)
			return berth_error_set(err, errno, "mkdir `%s` in container root", path);
		sofar = xstrndup(path, (size_t)(end - path));
		next = berth_open_in_root(rootfd, sofar, O_PATH | O_DIRECTORY, 0);
		if (next == -ENOENT) {
			char target[256];
			ssize_t n = readlinkat(cur, name, target, sizeof(target) - 1);
			if (n >= 0) {
				target[n] = '\0';
				return berth_error_set_plain(
				        err, ENOENT,
				        "`%s` in the image is a symlink to `%s`, "
				        "which does not exist",
				        sofar, target);
			}
		}
		if (next < 0)
			return berth_error_set(err, -next, "resolve `%s` in container root", sofar);
		close(cur);
		cur = next;
		p = end;
	}
	if (*base == '\0')
		return berth_error_set_plain(err, EINVAL, "`%s` names no file", path);
	if (dir) {
		if (mkdirat(cur, base, mode) < 0 && errno != EEXIST)
			return berth_error_set(err, errno, "mkdir `%s` in container root", path);
	} else {
		int f = openat(cur, base, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
		if (f < 0 && errno != EEXIST && errno != ELOOP)
			return berth_error_set(err, errno, "create `%s` in container root", path);
		if (f >= 0)
			close(f);
	}
	fd = berth_open_in_root(rootfd, path, O_PATH, 0);
	if (fd < 0)
		return berth_error_set(err, -fd, "resolve `%s` in container root", path);
	return fd;
}

const char *berth_fd_path(int fd, char buf[BERTH_FD_PATH_MAX])
{
	snprintf(buf, BERTH_FD_PATH_MAX, "/proc/self/fd/%d", fd);
	return buf;
}
