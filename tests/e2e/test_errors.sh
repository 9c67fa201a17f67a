#!/bin/bash
# Bad input gets one clear line and a fitting status, and leaves nothing.
. "$(dirname "$0")/lib.sh"

expect_error() { # NAME STATUS MESSAGE ARGS...
	local name=$1 want_status=$2 want=$3 out status
	shift 3
	out=$("$BERTH_BIN/berth" "$@" 2>&1)
	status=$?
	check_eq "$name: status" "$want_status" "$status"
	check_contains "$name: message" "$want" "$out"
}

expect_error "missing rootfs" 125 "berth: rootfs \`/nonexistent\`: No such file or directory" \
	run --state-dir "$STATE" --rootfs /nonexistent -- true
expect_error "rootfs is a file" 125 "rootfs \`/etc/hostname\` is not a directory" \
	run --state-dir "$STATE" --rootfs /etc/hostname -- true
expect_error "bad memory size" 2 "--memory: \`12Q\` is not a size" \
	run --rootfs "$ROOTFS" --memory 12Q -- true
expect_error "bad cpus" 2 "--cpus: \`lots\` is not a CPU amount" \
	run --rootfs "$ROOTFS" --cpus lots -- true
expect_error "bad pids" 2 "--pids: \`0\` is out of range" \
	run --rootfs "$ROOTFS" --pids 0 -- true
expect_error "unknown instance type" 2 "unknown instance type \`huge\` (use one of: lite, dev, basic" \
	run --rootfs "$ROOTFS" --instance-type huge -- true
expect_error "bad user" 2 "--user: \`root\` is not a user (use UID or UID:GID, numeric)" \
	run --rootfs "$ROOTFS" -u root -- true
expect_error "bad network" 2 "unknown network \`host\` (use none, loopback or bridge)" \
	run --rootfs "$ROOTFS" --net host -- true
expect_error "bad publish" 2 "--publish \`80\`: use [ADDR:]HOST_PORT:CONTAINER_PORT" \
	run --rootfs "$ROOTFS" -p 80 -- true
expect_error "no command" 2 "no command given" run --rootfs "$ROOTFS"
expect_error "no rootfs" 2 "--rootfs is required" run -- true
expect_error "bad name" 125 "\`a/b\` is not a valid container name" \
	run --state-dir "$STATE" --rootfs "$ROOTFS" --name a/b -- true
expect_error "relative workdir" 125 "workdir \`srv\` is not an absolute path" \
	run --state-dir "$STATE" --rootfs "$ROOTFS" -w srv -- true
expect_error "memory below the minimum" 125 "memory limit must be at least 6M" \
	run --state-dir "$STATE" --rootfs "$ROOTFS" --memory 1M -- true
expect_error "unknown option" 2 "Run \`berth run --help\` for usage." \
	run --bogus
expect_error "unknown command" 2 "berth: unknown command \`frobnicate\`" frobnicate
[ "$(id -u)" -eq 0 ] && {
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$BERTH_BIN/berth" run --rootfs "$ROOTFS" -- true 2>&1)
	check_eq "as nobody: status 125" 125 "$?"
	check_contains "as nobody: says root is needed" "needs root" "$out"
}

# A cgroup controller that is not there: a fake cgroup root, in a private
# mount namespace, with only the memory hierarchy mounted (on a v2 host, where
# controllers cannot be mounted apart, no cgroup filesystem at all).
if [ "$CGROUP_V2" = 1 ]; then
	want="no cgroup filesystem mounted at"
	fake='mount -t tmpfs berth-e2e-fake /mnt'
else
	want="is not mounted at"
	fake='mount -t tmpfs berth-e2e-fake /mnt && mkdir /mnt/memory &&
		mount -t cgroup -o memory cgroup /mnt/memory'
fi
out=$(unshare --mount --propagation private sh -c "$fake"' &&
	BERTH_CGROUP_ROOT=/mnt "$0" run --state-dir "$1" --rootfs "$2" -- true' \
	"$BERTH_BIN/berth" "$STATE" "$ROOTFS" 2>&1)
check_eq "a missing cgroup controller: status 125" 125 "$?"
check_contains "a missing cgroup controller: named" "$want" "$out"

out=$("$BERTH_BIN/berth" run --help)
check_contains "run --help lists the options" "--instance-type TYPE" "$out"
out=$("$BERTH_BIN/berth" --help)
check_contains "berth --help lists the commands" "run " "$out"
out=$("$BERTH_BIN/berth" version)
check_contains "berth version" "berth " "$out"

check_eq "no container directories left" "" "$(ls "$STATE/containers" 2>/dev/null)"
finish
