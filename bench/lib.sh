# shellcheck shell=bash
# Shared helpers of berthd's benchmarks (sourced by bench/api.sh,
# bench/records.sh, bench/burst.sh). Each script works in a fresh directory
# under build/bench/ with its own cgroup parent, and removes everything it
# started on any exit, Ctrl-C included: daemons, nginx, containers, cgroups,
# the directory.
set -euo pipefail

BENCH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BERTH_BIN:-$BENCH_ROOT/bin}
PROGS=${BERTH_BENCH_PROGS:-$BENCH_ROOT/build/bench}
ROOTFS=$BENCH_ROOT/build/rootfs/test
LOADGEN=$PROGS/loadgen
FILL=$PROGS/fill-registry
export BERTH_CGROUP_PARENT="berth-bench-$$"

bench_require() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null ||
			{ echo "bench: $tool is missing (run scripts/install-deps.sh)" >&2; exit 1; }
	done
	[ "$(id -u)" = 0 ] || { echo "bench: needs root (containers)" >&2; exit 1; }
	[ -x "$ROOTFS/usr/local/bin/echo-server" ] || { echo "bench: no test root at $ROOTFS (make rootfs)" >&2; exit 1; }
	[ -x "$BIN/berthd" ] || { echo "bench: no $BIN/berthd (make)" >&2; exit 1; }
	if [ ! -x "$LOADGEN" ] || [ ! -x "$FILL" ]; then
		echo "bench: no $LOADGEN or $FILL (make bench-progs)" >&2
		exit 1
	fi
}

mkdir -p "$BENCH_ROOT/build/bench"
WORK=$(mktemp -d "$BENCH_ROOT/build/bench/$(basename "$0" .sh).XXXXXX")
BG_PIDS=()

# Stop a process we started: its own signal first (berthd stops its
# containers on SIGTERM), SIGKILL after $2 seconds.
stop_pid() {
	local pid=$1 grace=${2:-30} i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < grace * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# A background process that has been waited for: cleanup leaves it alone.
forget_pid() {
	local keep=() p
	for p in "${BG_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	BG_PIDS=("${keep[@]}")
}

# The cgroup directories of our parent (and of a second daemon's, -base), in
# every hierarchy (v1) or the one (v2).
bench_cgroup_dirs() {
	local d
	for d in /sys/fs/cgroup/*/"$BERTH_CGROUP_PARENT"{,-base} /sys/fs/cgroup/"$BERTH_CGROUP_PARENT"{,-base}; do
		[ -d "$d" ] && echo "$d"
	done
	return 0
}

bench_cleanup() {
	local pid d i
	trap - EXIT INT TERM
	for pid in "${BG_PIDS[@]}"; do
		stop_pid "$pid"
	done
	# A daemon that was killed leaves its containers behind: end them by
	# cgroup, then remove the cgroups, deepest first.
	for d in $(bench_cgroup_dirs); do
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
	done
	for ((i = 0; i < 50; i++)); do
		for d in $(bench_cgroup_dirs); do
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
		done
		[ -z "$(bench_cgroup_dirs)" ] && break
		sleep 0.1
	done
	grep -o " $WORK/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$WORK"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free TCP port on 127.0.0.1.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		[ -z "$(ss -Hltn "sport = :$p")" ] && { echo "$p"; return; }
	done
}

# write_config FILE STATE_DIR SOCKET [API_PORT] — classes Echo (echo-server
# on 8080, as the e2e tests), Sleeper and Batch: "a config of a few classes".
write_config() {
	local file=$1 state=$2 sock=$3 port=${4:-}
	local listen=""
	[ -n "$port" ] && listen=", \"listen\": \"127.0.0.1:$port\", \"insecure_no_token\": true"
	cat > "$file" <<JSON
{
  "containers": [
    {"class_name": "Echo", "image": "$ROOTFS", "defaultPort": 8080,
     "entrypoint": ["echo-server", "--port", "8080"]},
    {"class_name": "Sleeper", "image": "$ROOTFS", "entrypoint": ["sleep", "3600"]},
    {"class_name": "Batch", "image": "$ROOTFS", "entrypoint": ["sh", "-c", "exit 0"]}
  ],
  "berth": {"state_dir": "$state", "api": {"socket": "$sock"$listen}, "log": {"level": "warn"}}
}
JSON
}

# start_berthd CONFIG SOCKET: runs berthd in the background, waits for its
# API, sets BERTHD_PID.
start_berthd() {
	local config=$1 sock=$2 i
	# A session of its own: Ctrl-C reaches only the scripts, whose clean-up
	# then stops berthd with one SIGTERM (a second would find its handler
	# gone and kill it before its containers are stopped).
	setsid "$BIN/berthd" --config "$config" >> "$WORK/berthd.log" 2>&1 &
	BERTHD_PID=$!
	BG_PIDS+=("$BERTHD_PID")
	for ((i = 0; i < 100; i++)); do
		curl -sf --unix-socket "$sock" http://b/v1/health >/dev/null 2>&1 && return 0
		kill -0 "$BERTHD_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "bench: berthd did not come up; its log:" >&2
	cat "$WORK/berthd.log" >&2
	exit 1
}

# stop_berthd: SIGTERM, and its exit status must be 0.
stop_berthd() {
	local rc=0
	kill -TERM "$BERTHD_PID"
	wait "$BERTHD_PID" || rc=$?
	forget_pid "$BERTHD_PID"
	[ "$rc" = 0 ] || { echo "bench: berthd exited with $rc; its log:" >&2; cat "$WORK/berthd.log" >&2; exit 1; }
}

# proc_kib PID FIELD: a field of /proc/PID/status in KiB (VmRSS, VmHWM, RssAnon, RssFile).
proc_kib() {
	awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"
}

# kv LINE KEY: the value of KEY=... in loadgen's output line.
kv() {
	tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"
}

# loadgen ARGS...: run it, fail loudly on errors or on any answer but 200.
run_loadgen() {
	local out
	out=$("$LOADGEN" "$@") || { echo "bench: loadgen $* failed" >&2; exit 1; }
	if [ "$(kv "$out" errors)" != 0 ] || [[ "$(kv "$out" status)" != 200:* ]] ||
	   [[ "$(kv "$out" status)" == *,* ]]; then
		echo "bench: loadgen $*: $out" >&2
		exit 1
	fi
	echo "$out"
}

# median of the numbers on stdin
median() {
	sort -g | awk '{a[NR] = $1} END {if (NR == 0) print 0; else print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'
}

mib() {
	awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'
}
