#!/bin/sh
# Run fuzz targets under libFuzzer: scripts/fuzz.sh BUILD_DIR NAME...
# Each starts from its committed corpus (tests/fuzz/corpus/NAME/, read only)
# and writes what it learns to BUILD_DIR/corpus/NAME/; a crash leaves its
# input in BUILD_DIR/ (crash-*, leak-*, timeout-*) and fails the run. Add a
# crash's input to the committed corpus once it is fixed: `make test`
# replays that corpus.
set -u
dir=$1
shift
secs=${FUZZ_SECONDS:-60}
failed=""
for name in "$@"; do
	corpus=$dir/corpus/$name
	seeds=tests/fuzz/corpus/$name
	mkdir -p "$corpus"
	echo "== $name ($secs s)"
	if ! "$dir/fuzz/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
		-artifact_prefix="$dir/" -print_final_stats=1 "$corpus" "$seeds" \
		2> "$dir/$name.log"; then
		failed="$failed $name"
		grep -E "ERROR|invariant|SUMMARY|Test unit written" "$dir/$name.log" | head -20 >&2
	fi
	grep -E "stat::number_of_executed_units|cov:" "$dir/$name.log" | tail -2
done
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed (logs in $dir/)" >&2
	exit 1
fi
echo "fuzz: no crash in $*"
