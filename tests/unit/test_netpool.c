/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pool of prepared network namespaces (src/runtime/netpool.c) on real
 * namespaces and bind mounts, in a pool directory of the test's own. Needs
 * root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth/fs.h"
#include "berth/runtime.h"
#include "runtime/runtime-internal.h"

static char pool[] = "/tmp/berth-test-netpool.XXXXXX";

static unsigned count_files(void)
{
	DIR *d = opendir(pool);
	struct dirent *de;
	unsigned n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "slot-", 5) == 0)
			n++;
	closedir(d);
	return n;
}

static void drain(void)
{
	int fd;

	while ((fd = berth_netns_pool_take()) >= 0)
		close(fd);
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_netpool: skipped: needs root (namespaces, mounts)\n");
		return -1;
	}
	if (mkdtemp(pool) == NULL)
		return -1;
	setenv("BERTH_NETNS_POOL", pool, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	drain();
	berth_rmtree(pool, NULL);
	return 0;
}

static ino_t inode_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return st.st_ino;
}

/* lo's flags inside the namespace `fd` (this thread goes there and back). */
static short lo_flags_in(int fd)
{
	int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	struct ifreq ifr = {0};
	int s;

	assert_true(home >= 0);
	assert_int_equal(setns(fd, CLONE_NEWNET), 0);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		ifr.ifr_flags = -1;
	if (s >= 0)
		close(s);
	assert_int_equal(setns(home, CLONE_NEWNET), 0);
	close(home);
	return ifr.ifr_flags;
}

static void fill_then_take_each_once(void **state)
{
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int fds[3];

	(void)state;
	assert_int_equal(berth_netns_pool_fill(3, NULL), 0);
	assert_int_equal(count_files(), 3);
	/* Filling to what is there already makes nothing. */
	assert_int_equal(berth_netns_pool_fill(2, NULL), 0);
	assert_int_equal(count_files(), 3);

	for (int i = 0; i < 3; i++) {
		fds[i] = berth_netns_pool_take();
		assert_true(fds[i] >= 0);
		/* A namespace of its own, not ours, not one handed out before; lo up. */
		assert_int_not_equal(inode_of(fds[i]), inode_of(home));
		for (int j = 0; j < i; j++)
			assert_int_not_equal(inode_of(fds[i]), inode_of(fds[j]));
		assert_true(lo_flags_in(fds[i]) & IFF_UP);
		assert_int_equal(count_files(), 2 - i);
	}
	assert_int_equal(berth_netns_pool_take(), -1);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(home);
}

/* Two processes after one slot: exactly one gets it, every time. */
static void racing_takers_get_it_once(void **state)
{
	(void)state;
	for (int round = 0; round < 20; round++) {
		int got = 0;
		pid_t pids[2];

		assert_int_equal(berth_netns_pool_fill(1, NULL), 0);
		for (int i = 0; i < 2; i++) {
			pids[i] = fork();
			assert_true(pids[i] >= 0);
			if (pids[i] == 0)
				_exit(berth_netns_pool_take() >= 0 ? 1 : 0);
		}
		for (int i = 0; i < 2; i++) {
			int status;
			assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
			assert_true(WIFEXITED(status));
			got += WEXITSTATUS(status);
		}
		assert_int_equal(got, 1);
		assert_int_equal(count_files(), 0);
	}
}

static void make_plain(const char *name, int age_s)
{
	char path[256];
	struct timeval tv[2];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pool, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	assert_true(fd >= 0);
	close(fd);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= age_s;
	tv[1] = tv[0];
	assert_int_equal(utimes(path, tv), 0);
}

static void remove_plain(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", pool, name);
	assert_int_equal(unlink(path), 0);
}

static bool exists(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", pool, name);
	return access(path, F_OK) == 0;
}

/*
 * Slot files that are not mounts: ours are stale after a few seconds (a
 * maker died), another mount namespace's only after an hour (they may be
 * live there); none is ever handed out.
 */
static void plain_files_are_never_taken(void **state)
{
	char ours_young[128], ours_old[128];
	struct stat st;

	(void)state;
	assert_int_equal(stat("/proc/self/ns/mnt", &st), 0);
	snprintf(ours_young, sizeof(ours_young), "slot-%llx-young", (unsigned long long)st.st_ino);
	snprintf(ours_old, sizeof(ours_old), "slot-%llx-old", (unsigned long long)st.st_ino);
	make_plain(ours_young, 1);
	make_plain(ours_old, 60);
	make_plain("slot-1-foreign", 60);
	make_plain("slot-2-foreign-gone", 7200);

	assert_int_equal(berth_netns_pool_take(), -1);
	assert_true(exists(ours_young));
	assert_false(exists(ours_old));
	/* A take does not even open another namespace's files: a fill tidies them up. */
	assert_true(exists("slot-1-foreign"));
	assert_true(exists("slot-2-foreign-gone"));

	/* Filling counts only real slots. */
	assert_int_equal(berth_netns_pool_fill(1, NULL), 0);
	assert_true(exists("slot-1-foreign"));
	assert_false(exists("slot-2-foreign-gone"));
	assert_int_equal(count_files(), 3);
	drain();
	assert_int_equal(count_files(), 2);
	remove_plain(ours_young);
	remove_plain("slot-1-foreign");
}

static void off_means_no_pool(void **state)
{
	(void)state;
	setenv("BERTH_NETNS_POOL", "off", 1);
	assert_null(berth_netns_pool_dir());
	assert_int_equal(berth_netns_pool_fill(2, NULL), 0);
	assert_int_equal(berth_netns_pool_take(), -1);
	setenv("BERTH_NETNS_POOL", pool, 1);
	assert_int_equal(count_files(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(fill_then_take_each_once),
	        cmocka_unit_test(racing_takers_get_it_once),
	        cmocka_unit_test(plain_files_are_never_taken),
	        cmocka_unit_test(off_means_no_pool),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
