/* SPDX-License-Identifier: Apache-2.0 */
/* Parsers for the human-facing quantities of berth's flags and config. */
#ifndef BERTH_PARSE_H
#define BERTH_PARSE_H

#include <stdint.h>

#include "berth/error.h"

/*
 * A byte size: a whole or decimal number with an optional binary unit
 * (k, m, g, t; "K", "KB", "Ki", "KiB" are all 1024-based, as Docker's
 * --memory), e.g. "256M", "1.5g", "4096". Zero is refused (-EINVAL), and so is
 * a size above 2^64-1 bytes (-ERANGE).
 */
int berth_parse_size(const char *s, uint64_t *bytes, berth_error_t *err);

/*
 * A CPU amount in vCPUs as a decimal ("0.25", "2") or a fraction ("1/16"),
 * returned in nano-vCPUs (1 vCPU = 1e9). Must be > 0 and at most 1024.
 */
int berth_parse_cpus(const char *s, uint64_t *nanocpus, berth_error_t *err);

/*
 * A duration in milliseconds: a number with a unit ("500ms", "30s", "10m",
 * "2h"), several in decreasing order ("1h30m", "1m30s500ms"), or a plain
 * number of seconds ("30"). Numbers may be decimal ("1.5h") down to a whole
 * millisecond. Zero is allowed; signs, spaces, other units and results above
 * INT64_MAX ms are refused (-EINVAL, or -ERANGE when too large).
 */
int berth_parse_duration(const char *s, uint64_t *ms, berth_error_t *err);

/* A decimal unsigned integer in [min, max], with no sign, space or suffix. */
int berth_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, berth_error_t *err);

/* "UID" or "UID:GID" (numeric). A missing GID is the UID. */
int berth_parse_user(const char *s, uint32_t *uid, uint32_t *gid, berth_error_t *err);

/* A signal by name ("TERM", "SIGTERM", case-insensitive) or number. */
int berth_parse_signal(const char *s, int *sig, berth_error_t *err);

/* The name of a signal without "SIG" ("TERM"), or NULL when unknown. */
const char *berth_signal_name(int sig);

#endif
