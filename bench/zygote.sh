#!/bin/bash
# The runtime's helper as berthd gets it: exec'd (`posix_spawn` of the static
# berth-runtime, as before the zygote, and as with BERTH_ZYGOTE=off) against
# cloned by the zygote (berth_runtime_zygote_start()). bench/spawn.c calls the
# library in-process, as berthd's worker threads do: a start of `sleep`, an
# exec of `true` until it is reaped, a destroy; rounds alternate between the
# two ways. BENCH_ZYGOTE_ROUNDS rounds of BENCH_ZYGOTE_RUNS runs each.
. "$(dirname "$0")/lib.sh"
bench_require
[ -x "$PROGS/spawn" ] || { echo "bench: no $PROGS/spawn (make bench-progs)" >&2; exit 1; }
BERTH_RUNTIME_HELPER=$BIN/berth-runtime "$PROGS/spawn" "$ROOTFS" "$WORK/state" \
	"${BENCH_ZYGOTE_ROUNDS:-5}" "${BENCH_ZYGOTE_RUNS:-40}"
