/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One berthd per state directory. Two daemons on one registry would each
 * believe it owns the instances and their containers; SQLite's own locking
 * keeps the file consistent but not that belief, so the daemon takes this
 * lock before it opens the registry, and keeps it for its lifetime. flock()
 * is released by the kernel when the holder dies, so a crashed daemon never
 * leaves a stale lock behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "registry/registry-internal.h"

/* The holder's pid as it wrote it into the lock file, or 0 when it cannot be read. */
static long holder_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	char *end;
	long pid;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	return pid > 0 && (*end == '\n' || *end == '\0') ? pid : 0;
}

int berth_registry_lock_state_dir(const char *state_dir, int *lock_fd, berth_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/%s", state_dir, BERTH_REGISTRY_LOCK_FILE);
	cleanup_close int fd = -1;
	char pid[32];
	int ret, len;

	ret = berth_mkdir_p(state_dir, 0700, err);
	if (ret < 0)
		return berth_error_wrap(err, "lock state directory");
	/*
	 * O_CLOEXEC matters: a container (or any child) that inherited the
	 * descriptor would hold the lock after the daemon exits, and refuse
	 * its restart.
	 */
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_error_set(err, errno, "lock state directory: open `%s`", path);
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		long holder;

		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return berth_error_set(err, errno, "lock state directory: flock `%s`",
			                       path);
		holder = holder_pid(fd);
		if (holder > 0)
			return berth_error_set_plain(
			        err, EBUSY,
			        "state directory `%s` is in use by another berthd "
			        "(pid %ld)",
			        state_dir, holder);
		return berth_error_set_plain(err, EBUSY,
		                             "state directory `%s` is in use by another berthd "
		                             "(`%s` is locked)",
		                             state_dir, path);
	}
	/* Only for the message a second daemon prints; the lock itself is the flock. */
	len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0)
		return berth_error_set(err, errno, "lock state directory: truncate `%s`", path);
	ret = berth_write_all(fd, pid, (size_t)len);
	if (ret < 0)
		return berth_error_set(err, -ret, "lock state directory: write `%s`", path);
	*lock_fd = steal_fd(&fd);
	return 0;
}
