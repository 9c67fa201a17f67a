/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prepared network namespaces. Making a network namespace is the dearest
 * single step of a start (about a millisecond here: the kernel registers a
 * set of sysctl tables for it, and tearing it down later costs as much), so
 * whoever has time to spare — `berth run` after its container ended, berthd
 * after a start — makes a few ahead, and a start takes one instead of
 * making its own.
 *
 * The pool is a directory of files `slot-MNTNS-RANDOM`, each a bind mount of a
 * fresh namespace's nsfs file (what `ip netns add` does), lo already up.
 * Taking one is: open it, then unmount it. Only one unmount of a mount can
 * succeed, so of two starts racing for the same slot exactly one wins and
 * the other moves on; no lock is needed. A slot file that is not (or no
 * longer) a mount — its maker died half-way, or made it in a mount
 * namespace that is gone — is removed once it is a few seconds old.
 *
 * Mount namespaces: a slot is a mount, seen in the mount namespace it was
 * made in (and those that receive its propagation: berthd in systemd's
 * private namespace sees the host's slots, not the other way round). A
 * slot's name says which mount namespace made it, so that a plain file
 * that is a live slot elsewhere is not taken for a stale one here; only
 * after an hour is it stale whoever made it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/runtime.h"
#include "berth/util.h"
#include "runtime-internal.h"

#define SLOT_PREFIX           "slot-"
#define STALE_AFTER_S         10
#define FOREIGN_STALE_AFTER_S 3600
#define FILL_MAX              16
#define POOL_DIR              "/run/berth-netns"

const char *berth_netns_pool_dir(void)
{
	const char *env = getenv("BERTH_NETNS_POOL");

	if (env == NULL)
		return POOL_DIR;
	return env[0] == '\0' || strcmp(env, "off") == 0 ? NULL : env;
}

static bool is_slot_name(const char *name)
{
	return strncmp(name, SLOT_PREFIX, sizeof(SLOT_PREFIX) - 1) == 0;
}

bool berth_netns_is_netns(int fd)
{
	struct statfs sfs;

	return fstatfs(fd, &sfs) == 0 && sfs.f_type == NSFS_MAGIC &&
	       ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

void berth_netns_slot_prefix(char *buf, size_t len)
{
	struct stat st;

	if (stat("/proc/self/ns/mnt", &st) < 0)
		st.st_ino = 0;
	snprintf(buf, len, SLOT_PREFIX "%llx-", (unsigned long long)st.st_ino);
}

void berth_netns_remove_if_stale(int dir_fd, const char *name, int fd)
{
	char own[64];
	struct stat st;
	time_t age;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	berth_netns_slot_prefix(own, sizeof(own));
	age = time(NULL) - st.st_mtime;
	if (age > FOREIGN_STALE_AFTER_S ||
	    (age > STALE_AFTER_S && strncmp(name, own, strlen(own)) == 0))
		unlinkat(dir_fd, name, 0);
}

/*
 * Go over the slots of the pool `dir` (at `path`), removing stale files on
 * the way: with `take`, take the first ready one and return its descriptor
 * (-1: none is); without, return how many are ready.
 */
static int scan(DIR *dir, const char *path, bool take)
{
	struct dirent *de;
	char own[64];
	int ready = 0;

	berth_netns_slot_prefix(own, sizeof(own));
	while ((de = readdir(dir)) != NULL) {
		char slot[PATH_MAX];
		int fd;

		if (!is_slot_name(de->d_name))
			continue;
		/*
		 * A start takes only what its own mount namespace pinned (the
		 * others' are plain files here); a fill tidies the rest up.
		 */
		if (take && strncmp(de->d_name, own, strlen(own)) != 0)
			continue;
		fd = openat(dirfd(dir), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!berth_netns_is_netns(fd)) {
			berth_netns_remove_if_stale(dirfd(dir), de->d_name, fd);
			close(fd);
			continue;
		}
		if (!take) {
			ready++;
			close(fd);
			continue;
		}
		/* The unmount decides who has it: a racing start finds it unmounted. */
		if (snprintf(slot, sizeof(slot), "%s/%s", path, de->d_name) >= (int)sizeof(slot) ||
		    umount2(slot, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
			close(fd);
			continue;
		}
		unlinkat(dirfd(dir), de->d_name, 0);
		return fd;
	}
	return take ? -1 : ready;
}

int berth_netns_pool_take(void)
{
	const char *path = berth_netns_pool_dir();
	DIR *dir;
	int fd;

	if (path == NULL || (dir = opendir(path)) == NULL)
		return -1;
	fd = scan(dir, path, true);
	closedir(dir);
	return fd;
}

/* One new namespace, made by the calling thread and pinned at DIR/slot-RANDOM. */
static int make_slot(const char *path, int dir_fd, int home, berth_error_t *err)
{
	char name[128], slot[PATH_MAX];
	unsigned long long rnd;
	int fd, r = 0;

	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return berth_error_set(err, errno, "getrandom");
	berth_netns_slot_prefix(name, sizeof(name));
	snprintf(name + strlen(name), sizeof(name) - strlen(name), "%016llx", rnd);
	if (snprintf(slot, sizeof(slot), "%s/%s", path, name) >= (int)sizeof(slot))
		return berth_error_set_plain(err, ENAMETOOLONG, "`%s` is too long", path);
	fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
	if (fd < 0)
		return berth_error_set(err, errno, "create `%s`", slot);
	close(fd);
	if (unshare(CLONE_NEWNET) < 0) {
		r = berth_error_set(err, errno, "create a network namespace");
	} else {
		if (berth_net_loopback_up(err) < 0)
			r = berth_error_ret(err);
		else if (mount("/proc/thread-self/ns/net", slot, NULL, MS_BIND, NULL) < 0)
			r = berth_error_set(err, errno, "pin the network namespace at `%s`", slot);
		/* Back home; failing that, this thread would go on in the new namespace. */
		if (setns(home, CLONE_NEWNET) < 0)
			abort();
	}
	if (r < 0)
		unlinkat(dir_fd, name, 0);
	return r;
}

int berth_netns_pool_fill(unsigned want, berth_error_t *err)
{
	const char *path = berth_netns_pool_dir();
	cleanup_close int home = -1;
	unsigned have;
	DIR *dir;
	int r;

	if (path == NULL || want == 0)
		return 0;
	if (want > FILL_MAX)
		want = FILL_MAX;
	r = berth_mkdir_p(path, 0700, err);
	if (r < 0)
		return berth_error_wrap(err, "network namespace pool");
	dir = opendir(path);
	if (dir == NULL)
		return berth_error_set(err, errno, "open `%s`", path);
	have = (unsigned)scan(dir, path, false);
	if (have < want) {
		home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (home < 0)
			r = berth_error_set(err, errno, "open `/proc/thread-self/ns/net`");
	}
	for (; r == 0 && have < want; have++)
		r = make_slot(path, dirfd(dir), home, err);
	closedir(dir);
	return r < 0 ? berth_error_wrap(err, "network namespace pool") : 0;
}
