/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Why berth's init moves itself into its cgroup: the cost of placing a fresh
 * process in a fresh v1 cgroup after a quiet spell, by the two ways the
 * kernel offers. Writing the pid to cgroup.procs takes the global
 * cgroup_threadgroup_rwsem (its first writer waits for an RCU grace period);
 * a thread writing 0 to `tasks` moves itself without it.
 *
 *   cgroup-move [ROUNDS]   (root; v1 or hybrid hosts; creates and removes
 *                           /sys/fs/cgroup/<ctrl>/berth-bench-move)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const hierarchies[] = {"memory", "pids", "cpu", "cpuacct", "freezer", "devices"};
#define N_HIER (sizeof(hierarchies) / sizeof(hierarchies[0]))

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int write_str(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int ok = fd >= 0 && write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* One fresh cgroup, one fresh child moved into it; returns the move's ms. */
static double one_move(int self)
{
	char path[256], value[32];
	int fds[2];
	double ms = -1;
	pid_t child;

	for (size_t i = 0; i < N_HIER; i++) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/berth-bench-move", hierarchies[i]);
		mkdir(path, 0755);
	}
	if (pipe(fds) < 0)
		exit(1);
	child = fork();
	if (child == 0) {
		double t0 = now_ms(), d;
		for (size_t i = 0; i < N_HIER; i++) {
			snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/berth-bench-move/%s",
			         hierarchies[i], self ? "tasks" : "cgroup.procs");
			snprintf(value, sizeof(value), "%d", self ? 0 : (int)getpid());
			if (write_str(path, value) < 0)
				_exit(1);
		}
		d = now_ms() - t0;
		if (write(fds[1], &d, sizeof(d)) != sizeof(d))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &ms, sizeof(ms)) != sizeof(ms))
		ms = -1;
	close(fds[0]);
	waitpid(child, NULL, 0);
	for (size_t i = 0; i < N_HIER; i++) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/berth-bench-move", hierarchies[i]);
		rmdir(path);
	}
	return ms;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 10;
	double procs[100], self[100];

	if (rounds < 1 || rounds > 100)
		rounds = 10;
	for (int i = 0; i < rounds; i++) {
		usleep(100000); /* a quiet spell, as before a start on an idle host */
		procs[i] = one_move(0);
		usleep(100000);
		self[i] = one_move(1);
		if (procs[i] < 0 || self[i] < 0) {
			fprintf(stderr, "cgroup-move: needs root and cgroup v1 hierarchies\n");
			return 1;
		}
	}
	qsort(procs, (size_t)rounds, sizeof(double), cmp);
	qsort(self, (size_t)rounds, sizeof(double), cmp);
	printf("| cgroup.procs (pid)     | %6.2f ms |\n", procs[rounds / 2]);
	printf("| tasks (0, self)        | %6.2f ms |\n", self[rounds / 2]);
	return 0;
}
