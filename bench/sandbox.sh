#!/bin/bash
# Sandbox operations: the round trip of `true` run through berthd's API
# (POST .../exec: the helper spawned, namespaces, cgroup, user, capabilities
# and seccomp filter, the process reaped, the answer written) against
# entering the same container by hand with `nsenter -t PID -a true`, in the
# same run; and file throughput through berth's files API (PUT, written
# into the container as it comes; GET, streamed out) on the unix socket.
#
# The exec runs in the container's cgroup, so its CPU time counts against
# the container's CPU quota: it is measured on a 1-vCPU instance
# (standard-2), where the quota does not bite, and once more on a lite one
# (1/16 vCPU, the default type), where it does; with the CPU time one exec
# costs the container.
#
# exec: bench/loadgen.c, one keep-alive connection, one request at a time,
# for BENCH_SANDBOX_SECONDS; nsenter: hyperfine, BENCH_SANDBOX_RUNS runs.
# Files: BENCH_SANDBOX_MIB MiB, each way BENCH_SANDBOX_ROUNDS times; medians.
# Each PUT and each cp makes a new file (the last one is removed first): an
# upload replaces a file only once it is whole, so it would otherwise need
# fresh pages while the old file still holds its own, where cp's O_TRUNC
# frees them first; on a VM, memory the guest has not touched lately costs
# a fault in the host, which makes that difference the larger one.
# BENCH_SANDBOX_BASE=DIR (the bin directory of another build): a second
# berthd from it is measured in the same run, its rounds alternating with
# ours — on a shared, noisy machine the way to compare a change.
. "$(dirname "$0")/lib.sh"
bench_require curl hyperfine jq nsenter
seconds=${BENCH_SANDBOX_SECONDS:-5}
runs=${BENCH_SANDBOX_RUNS:-300}
mib_size=${BENCH_SANDBOX_MIB:-256}
rounds=${BENCH_SANDBOX_ROUNDS:-3}

sock=$WORK/berth.sock
write_config "$WORK/base.jsonc" "$WORK/state" "$sock"
jq --arg root "$ROOTFS" '.containers += [{class_name: "Big", image: $root,
	entrypoint: ["sleep", "3601"], instance_type: "standard-2"}]' "$WORK/base.jsonc" > "$WORK/berth.jsonc"
start_berthd "$WORK/berth.jsonc" "$sock"

# container_pid ENTRYPOINT_ARG: the pid of our container running `sleep ARG`.
container_pid() {
	pgrep -f "^sleep $1\$" | while read -r p; do
		grep -q "$BERTH_CGROUP_PARENT" "/proc/$p/cgroup" 2>/dev/null && echo "$p"; done | head -1
}
# cpu_ns PID: CPU time used so far by the cgroup of PID (v1 cpuacct, or v2), ns.
cpu_ns() {
	local path
	if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
		path=$(awk -F: '$1 == 0 {print $3}' "/proc/$1/cgroup")
		awk '$1 == "usage_usec" {print $2 * 1000}' "/sys/fs/cgroup$path/cpu.stat"
	else
		path=$(awk -F: '$2 ~ /(^|,)cpuacct(,|$)/ {print $3}' "/proc/$1/cgroup")
		cat /sys/fs/cgroup/cpuacct"$path"/cpuacct.usage
	fi
}

printf '%-40s %9s %9s %9s %9s\n' "" "median" "p99" "runs" "CPU/run"
# exec_row CLASS SLEEP LABEL: the exec round trip on an instance of CLASS.
exec_row() {
	local inst=/v1/classes/$1/instances/bench out pid line before after
	out=$(curl -sf --unix-socket "$sock" -d '{"argv": ["true"]}' "http://b$inst/exec")
	[ "$(jq .exitCode <<<"$out")" = 0 ] || { echo "bench: exec of true: $out" >&2; exit 1; }
	pid=$(container_pid "$2")
	[ -n "$pid" ] || { echo "bench: the container's process is not found" >&2; exit 1; }
	before=$(cpu_ns "$pid")
	line=$(run_loadgen -u "$sock" -c 1 -d "$seconds" -m POST -b '{"argv": ["true"]}' "$inst/exec")
	after=$(cpu_ns "$pid")
	printf '%-40s %7.2fms %7.2fms %9s %7.2fms\n' "$3" "$(kv "$line" p50_ms)" "$(kv "$line" p99_ms)" \
		"$(kv "$line" requests)" "$(awk -v d=$((after - before)) -v n="$(kv "$line" requests)" 'BEGIN {print d / n / 1e6}')"
}
exec_row Big 3601 "berthd POST .../exec true (1 vCPU)"
exec_row Sleeper 3600 "the same, lite (1/16 vCPU)"
pid=$(container_pid 3601)
hyperfine -N -w 10 -r "$runs" --export-json "$WORK/nsenter.json" "nsenter -t $pid -a true" > /dev/null 2>&1
read -r ns_p50 ns_p99 < <(jq -r '.results[0].times | sort | [.[(length / 2 | floor)], .[(length * 0.99 | floor)]] | map(. * 1000) | @tsv' "$WORK/nsenter.json")
printf '%-40s %7.2fms %7.2fms %9s\n' "nsenter -t PID -a true (by hand)" "$ns_p50" "$ns_p99" "$runs"
inst=/v1/classes/Big/instances/bench

echo
head -c $((mib_size << 20)) /dev/urandom > "$WORK/blob"
daemons=(ours)
if [ -n "${BENCH_SANDBOX_BASE:-}" ]; then
	ours_pid=$BERTHD_PID
	mkdir -p "$WORK/base"
	write_config "$WORK/base/base.jsonc" "$WORK/base/state" "$WORK/base/berth.sock"
	jq --arg root "$ROOTFS" '.containers += [{class_name: "Big", image: $root,
		entrypoint: ["sleep", "3602"], instance_type: "standard-2"}]' "$WORK/base/base.jsonc" > "$WORK/base/berth.jsonc"
	BIN=$BENCH_SANDBOX_BASE BERTH_CGROUP_PARENT=$BERTH_CGROUP_PARENT-base start_berthd "$WORK/base/berth.jsonc" "$WORK/base/berth.sock"
	base_pid=$BERTHD_PID
	BERTHD_PID=$ours_pid
	curl -sf --unix-socket "$WORK/base/berth.sock" -d '{"argv": ["true"]}' "http://b$inst/exec" > /dev/null
	daemons+=(base)
fi
# files_round NAME SOCKET: one PUT, one GET into a file, one GET discarded.
files_round() {
	local url="http://b$inst/files?path=/tmp/blob"
	curl -sf --unix-socket "$2" -d '{"path": "/tmp/blob"}' "http://b$inst/sandbox/api/delete" > /dev/null || true
	echo "$1 up $(curl -sf --unix-socket "$2" -T "$WORK/blob" -o /dev/null -w '%{speed_upload}' "$url")"
	echo "$1 down $(curl -sf --unix-socket "$2" -o "$WORK/back" -w '%{speed_download}' "$url")"
	cmp -s "$WORK/blob" "$WORK/back" || { echo "bench: the file came back different" >&2; exit 1; }
	echo "$1 null $(curl -sf --unix-socket "$2" -o /dev/null -w '%{speed_download}' "$url")"
}
for ((r = 0; r < rounds; r++)); do
	files_round ours "$sock"
	[ -n "${BENCH_SANDBOX_BASE:-}" ] && files_round base "$WORK/base/berth.sock"
	# The peer: the same bytes copied straight into the container's root.
	rm -f "/proc/$pid/root/tmp/blob-peer"
	t0=$(date +%s%N)
	cp "$WORK/blob" "/proc/$pid/root/tmp/blob-peer"
	t1=$(date +%s%N)
	echo "peer cp $(awk -v b=$((mib_size << 20)) -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f", b / (ns / 1e9)}')"
done > "$WORK/files"
# mbs NAME WAY: the median of those rounds, MB/s.
mbs() { awk -v n="$1" -v w="$2" '$1 == n && $2 == w {print $3}' "$WORK/files" | median | awk '{printf "%.0f MB/s", $1 / 1e6}'; }
for name in "${daemons[@]}"; do
	label=$([ "$name" = base ] && echo " (base)" || true)
	printf '%-40s %s\n' "PUT .../files, $mib_size MiB$label" "$(mbs "$name" up)"
	printf '%-40s %s\n' "GET .../files, into a file$label" "$(mbs "$name" down)"
	printf '%-40s %s\n' "GET .../files, discarded$label" "$(mbs "$name" null)"
done
printf '%-40s %s\n' "cp into /proc/PID/root (peer)" "$(mbs peer cp)"
printf '%-40s %s MiB\n' "berthd peak RSS" "$(mib "$(proc_kib "$BERTHD_PID" VmHWM)")"
if [ -n "${BENCH_SANDBOX_BASE:-}" ]; then
	stop_pid "$base_pid"
	forget_pid "$base_pid"
fi
stop_berthd
