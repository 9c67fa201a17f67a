/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Filesystem helpers. The *_in_root() functions resolve a path as if `rootfd`
 * were "/" (openat2 RESOLVE_IN_ROOT): "..", absolute symlinks and magic links
 * cannot leave the root. Everything a container controls is reached through
 * them.
 */
#ifndef BERTH_FS_H
#define BERTH_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "berth/error.h"

/* Write `len` bytes to `path` (created with `mode`, truncated). */
int berth_write_file(const char *path, const void *data, size_t len, mode_t mode,
                     berth_error_t *err);
/* Write a string to an existing file, e.g. a cgroup or proc knob (no O_CREAT). */
int berth_write_knob(int dirfd, const char *name, const char *value, berth_error_t *err);
/*
 * Read at most `max` bytes of `path` (relative to `dirfd`, or AT_FDCWD) into a
 * NUL-terminated buffer. Fails with EFBIG when the file is larger.
 */
int berth_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
                       berth_error_t *err);
/* mkdir -p; existing directories are fine. */
int berth_mkdir_p(const char *path, mode_t mode, berth_error_t *err);
/*
 * Remove `name` (relative to `dirfd`) and everything below it without ever
 * following a symlink. A missing `name` is not an error.
 */
int berth_rmtree_at(int dirfd, const char *name, berth_error_t *err);
int berth_rmtree(const char *path, berth_error_t *err);

/* openat2(rootfd, path, flags | O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS). Returns
 * fd or -errno. */
int berth_open_in_root(int rootfd, const char *path, int flags, mode_t mode);
/*
 * Make sure `path` exists inside the root, creating missing parent directories
 * (0755) and, when absent, the final component as a directory (`dir`) or an
 * empty file. Returns an O_PATH descriptor of it, or a negative errno.
 */
int berth_ensure_in_root(int rootfd, const char *path, int dir, mode_t mode, berth_error_t *err);

/* "/proc/self/fd/N" for a descriptor, to mount onto or from an fd. */
#define BERTH_FD_PATH_MAX 32
const char *berth_fd_path(int fd, char buf[BERTH_FD_PATH_MAX]);

/* Read/write the whole buffer, retrying on EINTR and short counts. Return 0 or -errno. */
int berth_write_all(int fd, const void *buf, size_t len);
/* Returns the number of bytes read (< len only at EOF) or -errno. */
ssize_t berth_read_all(int fd, void *buf, size_t len);

#endif
