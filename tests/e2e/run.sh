#!/bin/bash
# Run the end-to-end tests: real containers from the built binaries, checked
# from the outside and from inside. Needs root (as CI is); without it every
# test is reported as skipped with the reason, and the run fails, so a
# non-root run is never mistaken for a passing one.
#   tests/e2e/run.sh [NAME...]   (NAME: test_isolation, or isolation)
set -u
cd "$(dirname "$0")"
export BERTH_BIN=${BERTH_BIN:-$(cd ../.. && pwd)/bin}

if [ "$(id -u)" -ne 0 ]; then
	echo "e2e: SKIPPED: the end-to-end tests start containers and need root" >&2
	exit 1
fi
if [ ! -x ../../build/rootfs/test/usr/local/bin/probe ]; then
	echo "e2e: no test root with the probe program (run: make rootfs)" >&2
	exit 1
fi

tests=()
if [ $# -gt 0 ]; then
	for t in "$@"; do tests+=("test_${t#test_}.sh"); done
else
	for t in test_*.sh; do tests+=("$t"); done
fi

failed=()
for t in "${tests[@]}"; do
	echo "== ${t%.sh}"
	out=$(mktemp)
	bash "$t" 2>&1 | tee "$out"
	status=${PIPESTATUS[0]}
	# Under `make asan` a sanitizer report fails the test even when every
	# check passed.
	if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$out"; then
		echo "  FAIL sanitizer report (above)"
		status=1
	fi
	rm -f "$out"
	[ "$status" -eq 0 ] || failed+=("${t%.sh}")
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "e2e: FAILED: ${failed[*]}"
	exit 1
fi
echo "e2e: all ${#tests[@]} test files passed"
