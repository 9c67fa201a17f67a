#!/bin/sh
# Run each cmocka unit test binary given as an argument; fail if any fails.
set -u
failed=""
for t in "$@"; do
	echo "== $(basename "$t")"
	if ! "$t"; then
		failed="$failed $(basename "$t")"
	fi
done
if [ -n "$failed" ]; then
	echo "unit tests failed:$failed" >&2
	exit 1
fi
echo "unit tests passed ($# programs)"
