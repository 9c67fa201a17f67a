/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the fuzz targets share: the entry point libFuzzer calls (replay.c
 * calls it too, over a corpus, for `make test`) and a check that aborts, so
 * that a broken invariant is a crash the fuzzer keeps an input for.
 */
#ifndef BERTH_FUZZ_H
#define BERTH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "berth/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                             \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: invariant broken: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                                     \
			fputc('\n', stderr);                                              \
			abort();                                                          \
		}                                                                         \
	} while (0)

#endif
