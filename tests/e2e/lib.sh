# Shared helpers for the end-to-end tests (sourced by tests/e2e/test_*.sh).
# Each test file runs in its own shell with a fresh state directory and its
# own cgroup parent, so leftovers are attributable and cleaned up.
set -u

: "${BERTH_BIN:?run through tests/e2e/run.sh}"
E2E_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROOTFS=$E2E_ROOT/build/rootfs/test
TEST_NAME=$(basename "$0" .sh)
STATE=$(mktemp -d "/tmp/berth-e2e-$TEST_NAME.XXXXXX")
export BERTH_CGROUP_PARENT="berth-e2e-$TEST_NAME"
# Bridge networking (`--net bridge`, berthd's enableInternet) gets a bridge,
# subnet and nftables table of this test's own, removed at the end, so that
# no test touches the host's berth0 or another test's containers.
export BERTH_BRIDGE="bte$$"
export BERTH_SUBNET="10.213.$(($$ % 250 + 1)).1/24"
export BERTH_NFT_TABLE="berth_e2e_$$"
FAILURES=0
CHECKS=0

# The cgroup layout: v2 (one hierarchy) or v1/hybrid (one per controller).
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then CGROUP_V2=1; else CGROUP_V2=0; fi

# The directory of container `$2`'s cgroup in controller `$1`'s hierarchy.
cg_dir() {
	if [ "$CGROUP_V2" = 1 ]; then
		echo "/sys/fs/cgroup/$BERTH_CGROUP_PARENT/$2"
	else
		echo "/sys/fs/cgroup/$1/$BERTH_CGROUP_PARENT/$2"
	fi
}

cleanup_e2e() {
	# Background jobs a failed check left behind would hold run.sh's pipe open.
	local jobs_left
	jobs_left=$(jobs -p)
	[ -n "$jobs_left" ] && kill $jobs_left 2>/dev/null
	# Daemons log into the state directory: show any sanitizer report before
	# it goes, so that run.sh fails the test on it.
	grep -h -A30 -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$STATE"/*.log 2>/dev/null
	# Mounts a test made in its state directory (a network namespace pool).
	awk -v s="$STATE/" 'index($5, s) == 1 {print $5}' /proc/self/mountinfo |
		while read -r m; do umount -l "$m"; done
	rm -rf "$STATE"
	# Prepared bridged slots a berthd left behind (one that stops removes its own).
	for m in /run/berth-netns/bridge-"$BERTH_BRIDGE"/slot-*; do
		[ -e "$m" ] && umount -l "$m" 2>/dev/null
	done
	rm -rf "/run/berth-netns/bridge-$BERTH_BRIDGE"
	ip link del "$BERTH_BRIDGE" 2>/dev/null
	nft delete table ip "$BERTH_NFT_TABLE" 2>/dev/null
	rm -rf "/run/berth-network/$BERTH_BRIDGE"
	for d in /sys/fs/cgroup/*/"$BERTH_CGROUP_PARENT" /sys/fs/cgroup/"$BERTH_CGROUP_PARENT"; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	return 0
}
trap cleanup_e2e EXIT

# berth run with the test root and state directory; extra options first.
brun() {
	"$BERTH_BIN/berth" run --state-dir "$STATE" --rootfs "$ROOTFS" "$@"
}

# The same in the background; $! is then berth itself (not a subshell), so
# signals sent to it reach berth.
brun_bg() {
	(exec "$BERTH_BIN/berth" run --state-dir "$STATE" --rootfs "$ROOTFS" "$@") &
}

pass() { CHECKS=$((CHECKS + 1)); echo "  ok   $1"; }
fail() {
	CHECKS=$((CHECKS + 1)); FAILURES=$((FAILURES + 1))
	echo "  FAIL $1"
	shift
	for line in "$@"; do printf '       %s\n' "$line"; done
}

# check NAME EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected: $2" "actual:   $3"; fi
}
# check_contains NAME NEEDLE HAYSTACK
check_contains() {
	case "$3" in
	*"$2"*) pass "$1" ;;
	*) fail "$1" "expected to contain: $2" "actual: $3" ;;
	esac
}
check_not_contains() {
	case "$3" in
	*"$2"*) fail "$1" "expected not to contain: $2" "actual: $3" ;;
	*) pass "$1" ;;
	esac
}
# check_true NAME COMMAND...: the command succeeds
check_true() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name" "command failed: $*"; fi
}

# Nothing of the container `$1` left: cgroups, state directory, mounts.
# Cgroups that `berth run` renamed out of the way for its tidying child to remove.
retired_cgroups() {
	ls -d /sys/fs/cgroup/*/"$BERTH_CGROUP_PARENT"/~* /sys/fs/cgroup/"$BERTH_CGROUP_PARENT"/~* 2>/dev/null
}
no_retired_cgroups() { [ -z "$(retired_cgroups)" ]; }

check_nothing_left() {
	local id=$1 left=""
	for d in /sys/fs/cgroup/*/"$BERTH_CGROUP_PARENT/$id" /sys/fs/cgroup/"$BERTH_CGROUP_PARENT/$id"; do
		[ -e "$d" ] && left="$left cgroup:$d"
	done
	[ -e "$STATE/containers/$id" ] && left="$left dir:$STATE/containers/$id"
	# `berth run` leaves its writable layer and its cgroup (renamed `~ID.RANDOM`)
	# to a process of its own to remove.
	wait_for "the trash swept" 30 sh -c "! ls -A '$STATE/trash' 2>/dev/null | grep -q ." ||
		left="$left trash:$(ls "$STATE/trash")"
	wait_for "the retired cgroups swept" 30 no_retired_cgroups ||
		left="$left retired:$(retired_cgroups)"
	grep "$STATE" /proc/self/mountinfo | grep -qv "$STATE/netns/" && left="$left mount"
	check_eq "nothing left of $id" "" "$left"
}

# Wait up to $2 tenths of a second for command $3... to succeed.
wait_for() {
	local what=$1 tries=$2
	shift 2
	while [ "$tries" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		tries=$((tries - 1))
	done
	echo "  (timed out waiting for $what)"
	return 1
}

finish() {
	echo "  $TEST_NAME: $((CHECKS - FAILURES))/$CHECKS checks passed"
	[ "$FAILURES" -eq 0 ]
}
