/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "berth/runtime.h"
#include "berth/util.h"

#define MiB            (1024ull * 1024ull)
#define GiB            (1024ull * MiB)
#define GB             (1000ull * 1000ull * 1000ull)
#define VCPU(num, den) ((uint64_t)(num)*1000000000ull / (den))

/*
 * Cloudflare Containers' instance types. "dev" is the old name of "lite" and
 * "standard" of "standard-1"; wrangler accepts both. Pids are not part of the
 * platform's types; berth gives every type the same generous cap so a fork
 * bomb cannot take the host down.
 */
#define PIDS 1024

static const struct berth_instance_type types[] = {
        {"lite", {256 * MiB, VCPU(1, 16), PIDS, 2 * GB}},
        {"dev", {256 * MiB, VCPU(1, 16), PIDS, 2 * GB}},
        {"basic", {1 * GiB, VCPU(1, 4), PIDS, 4 * GB}},
        {"standard-1", {4 * GiB, VCPU(1, 2), PIDS, 8 * GB}},
        {"standard", {4 * GiB, VCPU(1, 2), PIDS, 8 * GB}},
        {"standard-2", {6 * GiB, VCPU(1, 1), PIDS, 12 * GB}},
        {"standard-3", {8 * GiB, VCPU(2, 1), PIDS, 16 * GB}},
        {"standard-4", {12 * GiB, VCPU(4, 1), PIDS, 20 * GB}},
};

const struct berth_instance_type *berth_instance_type_lookup(const char *name)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(types); i++)
		if (strcmp(types[i].name, name) == 0)
			return &types[i];
	return NULL;
}

const char *berth_instance_type_names(void)
{
	return "lite, dev, basic, standard, standard-1, standard-2, standard-3, standard-4";
}
