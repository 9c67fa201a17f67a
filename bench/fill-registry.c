/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fill a state directory's registry with sleeping instance records, through
 * the registry's own API (so the rows are exactly what berthd writes), in one
 * transaction: one sync for all of them instead of one per record.
 *
 *   fill-registry STATE_DIR CLASS PREFIX COUNT
 *
 * Creates records PREFIX0 .. PREFIX<COUNT-1> of class CLASS (registered with
 * a placeholder configuration when missing; berthd replaces it with its own
 * at start). Prints how many were created and how long it took.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "berth/error.h"
#include "berth/parse.h"
#include "registry/registry.h"

struct fill {
	const char *class_name;
	const char *prefix;
	uint64_t count;
	uint64_t created;
};

static int fill_all(struct berth_registry *reg, void *data, berth_error_t *err)
{
	struct fill *f = data;
	char name[256];

	for (uint64_t i = 0; i < f->count; i++) {
		struct berth_registry_instance r;
		bool created = false;
		int ret;

		snprintf(name, sizeof(name), "%s%llu", f->prefix, (unsigned long long)i);
		ret = berth_registry_get_or_create(reg, f->class_name, name, &r, &created, err);
		berth_registry_instance_clear(&r);
		if (ret < 0)
			return ret;
		f->created += created;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct fill f = {0};
	struct berth_registry *reg = NULL;
	struct timespec t0, t1;
	berth_error_t err;
	int ret;

	if (argc != 5) {
		fprintf(stderr, "usage: fill-registry STATE_DIR CLASS PREFIX COUNT\n");
		return 2;
	}
	f.class_name = argv[2];
	f.prefix = argv[3];
	if (strlen(f.prefix) > 200) {
		fprintf(stderr, "fill-registry: PREFIX: at most 200 characters\n");
		return 2;
	}
	if (berth_parse_u64(argv[4], 1, 100000000, &f.count, &err) < 0) {
		fprintf(stderr, "fill-registry: COUNT: %s\n", err.message);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (berth_registry_open(argv[1], NULL, &reg, &err) < 0 ||
	    berth_registry_upsert_class(reg, f.class_name, "{}", NULL, &err) < 0 ||
	    berth_registry_transact(reg, fill_all, &f, &err) < 0) {
		fprintf(stderr, "fill-registry: %s\n", err.message);
		berth_registry_close(reg);
		return 1;
	}
	berth_registry_close(reg);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ret = printf("created=%llu seconds=%.2f\n", (unsigned long long)f.created,
	             (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return ret < 0;
}
