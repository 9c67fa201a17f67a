/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: unpacking an image layer, whose tar comes from a registry or
 * an archive anyone may have made. Needs root (owners, device nodes,
 * trusted.* attributes), as berthd has.
 *
 * Each input is a layer (tar, gzip'd or zstd'd tar, or garbage) unpacked
 * into a fresh directory `root` beside a file `canary`, both in a private
 * scratch directory. Whatever the layer says, and whether or not it is
 * refused: nothing appears in the scratch directory but those two, the
 * canary keeps its one link and its bytes, and every file under `root` is
 * on the same file system (no mount, nothing linked in from outside).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/image.h"
#include "fuzz.h"

static char scratch[64];
static int scratch_fd = -1;
static dev_t scratch_dev;
static const char canary_text[] = "outside the layer\n";

static void cleanup(void)
{
	if (scratch_fd >= 0) {
		berth_rmtree_at(AT_FDCWD, scratch, NULL);
		close(scratch_fd);
	}
}

static void setup(void)
{
	struct stat st;
	int fd;

	snprintf(scratch, sizeof(scratch), "/tmp/berth-fuzz-unpack.%d", (int)getpid());
	berth_rmtree_at(AT_FDCWD, scratch, NULL);
	FUZZ_CHECK(mkdir(scratch, 0700) == 0, "mkdir %s: %s", scratch, strerror(errno));
	scratch_fd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FUZZ_CHECK(scratch_fd >= 0 && fstat(scratch_fd, &st) == 0, "open %s", scratch);
	scratch_dev = st.st_dev;
	fd = openat(scratch_fd, "canary", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	FUZZ_CHECK(fd >= 0 && write(fd, canary_text, sizeof(canary_text) - 1) ==
	                              (ssize_t)sizeof(canary_text) - 1,
	           "write the canary");
	close(fd);
	atexit(cleanup);
}

static int same_fs(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)type;
	(void)ftw;
	FUZZ_CHECK(st->st_dev == scratch_dev, "%s is on another file system", path);
	return 0;
}

static void check_outside(void)
{
	char buf[sizeof(canary_text)];
	struct stat st;
	struct dirent *e;
	DIR *d;
	int fd;
	ssize_t n;

	fd = openat(scratch_fd, "canary", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0 && fstat(fd, &st) == 0, "the canary is gone");
	FUZZ_CHECK(S_ISREG(st.st_mode) && st.st_nlink == 1, "the canary was linked (%lu links)",
	           (unsigned long)st.st_nlink);
	n = read(fd, buf, sizeof(buf));
	FUZZ_CHECK(n == (ssize_t)sizeof(canary_text) - 1 &&
	                   memcmp(buf, canary_text, (size_t)n) == 0,
	           "the canary changed");
	close(fd);

	d = opendir(scratch);
	FUZZ_CHECK(d != NULL, "opendir %s", scratch);
	while ((e = readdir(d)) != NULL)
		FUZZ_CHECK(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
		                   strcmp(e->d_name, "root") == 0 ||
		                   strcmp(e->d_name, "canary") == 0,
		           "the layer wrote `%s` beside its root", e->d_name);
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct berth_image_limits limits = {
	        .layer_bytes = 1 << 20, .layer_entries = 512, .archive_bytes = 1 << 20};
	char diff_id[BERTH_DIGEST_MAX], root[sizeof(scratch) + 8];
	berth_error_t err = {0};
	int fd, rootfd, r;

	if (scratch_fd < 0)
		setup();
	fd = memfd_create("layer", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0 && write(fd, data, size) == (ssize_t)size, "memfd");
	lseek(fd, 0, SEEK_SET);
	FUZZ_CHECK(mkdirat(scratch_fd, "root", 0700) == 0, "mkdir root: %s", strerror(errno));
	rootfd = openat(scratch_fd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FUZZ_CHECK(rootfd >= 0, "open root");

	r = berth_image_unpack(fd, rootfd, &limits, diff_id, &err);
	if (r < 0)
		FUZZ_CHECK(err.message[0] != '\0', "a layer refused without a message");
	else
		FUZZ_CHECK(strncmp(diff_id, "sha256:", 7) == 0 && strlen(diff_id) == 71,
		           "a layer without its diff id");

	check_outside();
	snprintf(root, sizeof(root), "%s/root", scratch);
	nftw(root, same_fs, 16, FTW_PHYS);
	close(rootfd);
	close(fd);
	FUZZ_CHECK(berth_rmtree_at(scratch_fd, "root", &err) == 0, "remove root: %s", err.message);
	return 0;
}
