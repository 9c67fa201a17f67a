#!/bin/sh
# Show where the time of one `berth run` goes: build with `make TRACE=1 BUILD=build/trace
# BINDIR=build/trace/bin`, then run this with the same arguments as `berth run`.
# Prints each traced step with the time since the first and since the previous.
set -eu
bin=${BERTH_BIN:-build/trace/bin}
"$bin/berth" run "$@" 2>&1 >/dev/null | awk '$1 == "TRACE" {
	split($2, a, "."); t = a[1] * 1000000 + a[2]
	if (!s) { s = t; p = t }
	step = $4; for (i = 5; i <= NF; i++) step = step " " $i
	printf "%8.2f ms  +%6.2f  %-7s %s\n", (t - s) / 1000, (t - p) / 1000, $3, step
	p = t
}'
