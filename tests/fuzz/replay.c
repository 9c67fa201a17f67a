/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runs a fuzz target over files without libFuzzer: every file named, and
 * every file in each directory named (not recursive). With no arguments,
 * the target's committed corpus (FUZZ_CORPUS, set by the Makefile). This is
 * how `make test` keeps what the fuzzers found fixed, built with the same
 * compiler and sanitizers as the rest of the suite.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

static int run_file(int dirfd, const char *name, size_t *count)
{
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	size_t got = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return 0;
	}
	/* An exact-size copy: ASan sees a read past the input. */
	buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (buf == NULL)
		abort();
	while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	LLVMFuzzerTestOneInput(buf, got);
	free(buf);
	(*count)++;
	return 0;
}

static int run_path(const char *path, size_t *count)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int r = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(AT_FDCWD, path, count);
	d = opendir(path);
	if (d == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && run_file(dirfd(d), e->d_name, count) < 0)
			r = -1;
	closedir(d);
	return r;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int r = 0;

	if (argc < 2) {
		r = run_path(FUZZ_CORPUS, &count);
	} else {
		for (int i = 1; i < argc; i++)
			if (run_path(argv[i], &count) < 0)
				r = -1;
	}
	if (r == 0 && count == 0) {
		fprintf(stderr, "replay: no inputs\n");
		return 1;
	}
	printf("%s: %zu inputs, no invariant broken\n", argv[0], count);
	return r < 0 ? 1 : 0;
}
