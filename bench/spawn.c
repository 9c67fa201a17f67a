/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime's helper exec'd against cloned by the zygote, through the
 * library as berthd calls it: berth_container_start() of `sleep` and
 * berth_container_exec() of `true` (until it has been reaped), then a
 * destroy, RUNS times per round; rounds alternate between the two ways, so
 * that drifting machine load hits both. Prints the medians and p99s.
 *
 *   spawn ROOTFS STATE_DIR ROUNDS RUNS
 *
 * The helper is $BERTH_RUNTIME_HELPER; cgroups go under $BERTH_CGROUP_PARENT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#include "berth/runtime.h"
#include "berth/util.h"

struct samples {
	double *ms;
	size_t n;
};

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double quantile(struct samples *s, double q)
{
	qsort(s->ms, s->n, sizeof(double), compare);
	return s->ms[(size_t)(q * (double)(s->n - 1))];
}

static int one(const char *rootfs, const char *state_dir, struct samples *start,
               struct samples *exec)
{
	char *const argv[] = {(char *)"sleep", (char *)"3600", NULL};
	char *const true_argv[] = {(char *)"true", NULL};
	struct berth_container_spec spec = {
	        .id = "bench-spawn",
	        .rootfs = rootfs,
	        .state_dir = state_dir,
	        .argv = argv,
	        .stdio = {-1, -1, -1},
	        .limits = {.nanocpus = 1000000000},
	};
	struct berth_exec_spec es = {.argv = true_argv, .stdio = {-1, -1, -1}};
	struct berth_container *c;
	berth_error_t err;
	double t0;
	int status;
	pid_t pid;

	t0 = now_ms();
	if (berth_container_start(&spec, &c, &err) < 0) {
		fprintf(stderr, "spawn: start: %s\n", err.message);
		return -1;
	}
	start->ms[start->n++] = now_ms() - t0;
	t0 = now_ms();
	if (berth_container_exec(c, &es, &pid, NULL, &err) < 0) {
		fprintf(stderr, "spawn: exec: %s\n", err.message);
		berth_container_destroy(c, NULL);
		return -1;
	}
	waitpid(pid, &status, 0);
	exec->ms[exec->n++] = now_ms() - t0;
	berth_container_destroy(c, NULL);
	/* As berthd does after each start: the next one takes a prepared namespace. */
	berth_netns_pool_fill(2, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct samples start[2], exec[2];
	static const char *const names[] = {"exec'd helper", "zygote"};
	berth_error_t err;
	int rounds, runs;

	if (argc != 5 || (rounds = atoi(argv[3])) <= 0 || (runs = atoi(argv[4])) <= 0) {
		fprintf(stderr, "usage: spawn ROOTFS STATE_DIR ROUNDS RUNS\n");
		return 2;
	}
	for (int m = 0; m < 2; m++) {
		start[m] = (struct samples){.ms = xcalloc((size_t)(rounds * runs), sizeof(double))};
		exec[m] = (struct samples){.ms = xcalloc((size_t)(rounds * runs), sizeof(double))};
	}
	for (int r = 0; r < rounds; r++) {
		for (int m = 0; m < 2; m++) {
			if (m == 1 && berth_runtime_zygote_start(&err) < 0) {
				fprintf(stderr, "spawn: %s\n", err.message);
				return 1;
			}
			for (int i = 0; i < runs; i++)
				if (one(argv[1], argv[2], &start[m], &exec[m]) < 0)
					return 1;
			berth_runtime_zygote_stop();
		}
	}
	printf("%-28s %14s %14s\n", "", "start p50/p99", "exec p50/p99");
	for (int m = 0; m < 2; m++)
		printf("%-28s %6.2f/%6.2fms %6.2f/%6.2fms\n", names[m], quantile(&start[m], 0.5),
		       quantile(&start[m], 0.99), quantile(&exec[m], 0.5),
		       quantile(&exec[m], 0.99));
	printf("(%d rounds of %d runs each, alternating)\n", rounds, runs);
	for (int m = 0; m < 2; m++) {
		free(start[m].ms);
		free(exec[m].ms);
	}
	return 0;
}
