#!/bin/bash
# Sandbox operations: the round trip of `true` run through berthd's API
# (POST .../exec: the helper spawned, namespaces, cgroup, user, capabilities
# and seccomp filter, the process reaped, the answer written) against
# entering the same container by hand with `nsenter -t PID -a true`, in the
# same run; and file throughput through berth's files API (PUT, spooled and
# sendfile'd into the container; GET, streamed out) on the unix socket.
#
# exec: bench/loadgen.c, one keep-alive connection, one request at a time,
# for BENCH_SANDBOX_SECONDS; nsenter: hyperfine, BENCH_SANDBOX_RUNS runs.
# Files: BENCH_SANDBOX_MIB MiB, each way BENCH_SANDBOX_ROUNDS times; medians.
. "$(dirname "$0")/lib.sh"
bench_require curl hyperfine jq nsenter
seconds=${BENCH_SANDBOX_SECONDS:-5}
runs=${BENCH_SANDBOX_RUNS:-300}
mib_size=${BENCH_SANDBOX_MIB:-256}
rounds=${BENCH_SANDBOX_ROUNDS:-3}

sock=$WORK/berth.sock
write_config "$WORK/berth.jsonc" "$WORK/state" "$sock"
start_berthd "$WORK/berth.jsonc" "$sock"
inst=/v1/classes/Sleeper/instances/bench
out=$(curl -sf --unix-socket "$sock" -d '{"argv": ["true"]}' "http://b$inst/exec")
[ "$(jq .exitCode <<<"$out")" = 0 ] || { echo "bench: exec of true: $out" >&2; exit 1; }
pid=$(pgrep -f '^sleep 3600$' | while read -r p; do
	grep -q "$BERTH_CGROUP_PARENT" "/proc/$p/cgroup" 2>/dev/null && echo "$p"; done | head -1)
[ -n "$pid" ] || { echo "bench: the container's process is not found" >&2; exit 1; }

line=$(run_loadgen -u "$sock" -c 1 -d "$seconds" -m POST -b '{"argv": ["true"]}' "$inst/exec")
hyperfine -N -w 10 -r "$runs" --export-json "$WORK/nsenter.json" "nsenter -t $pid -a true" > /dev/null 2>&1
read -r ns_p50 ns_p99 < <(jq -r '.results[0].times | sort | [.[(length / 2 | floor)], .[(length * 0.99 | floor)]] | map(. * 1000) | @tsv' "$WORK/nsenter.json")
printf '%-34s %9s %9s %9s\n' "" "median" "p99" "runs"
printf '%-34s %7.2fms %7.2fms %9s\n' "berthd POST .../exec true" "$(kv "$line" p50_ms)" "$(kv "$line" p99_ms)" "$(kv "$line" requests)"
printf '%-34s %7.2fms %7.2fms %9s\n' "nsenter -t PID -a true (by hand)" "$ns_p50" "$ns_p99" "$runs"

echo
head -c $((mib_size << 20)) /dev/urandom > "$WORK/blob"
up=() down=()
for ((r = 0; r < rounds; r++)); do
	up+=("$(curl -sf --unix-socket "$sock" -T "$WORK/blob" -o /dev/null -w '%{speed_upload}' "http://b$inst/files?path=/tmp/blob")")
	down+=("$(curl -sf --unix-socket "$sock" -o "$WORK/back" -w '%{speed_download}' "http://b$inst/files?path=/tmp/blob")")
done
cmp -s "$WORK/blob" "$WORK/back" || { echo "bench: the file came back different" >&2; exit 1; }
# The peer: the same bytes copied straight into the container's root.
peer=()
for ((r = 0; r < rounds; r++)); do
	t0=$(date +%s%N)
	cp "$WORK/blob" "/proc/$pid/root/tmp/blob-peer"
	t1=$(date +%s%N)
	peer+=("$(awk -v b=$((mib_size << 20)) -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f", b / (ns / 1e9)}')")
done
mbs() { printf '%s\n' "$@" | median | awk '{printf "%.0f MB/s", $1 / 1e6}'; }
printf '%-34s %s\n' "PUT .../files ($mib_size MiB)" "$(mbs "${up[@]}")"
printf '%-34s %s\n' "GET .../files ($mib_size MiB)" "$(mbs "${down[@]}")"
printf '%-34s %s\n' "cp into /proc/PID/root (peer)" "$(mbs "${peer[@]}")"
printf '%-34s %s MiB\n' "berthd peak RSS" "$(mib "$(proc_kib "$BERTHD_PID" VmHWM)")"
stop_berthd
