#!/bin/bash
# 100 instances started at once through berthd's API, each a container of the
# test root running `echo-server --port 8080` that is ready when the port
# answers: wall time from the first request to the last answer (a start is
# answered once its instance is healthy), berthd's peak RSS; then all of them
# destroyed at once, and nothing may be left (cgroups, container directories,
# mounts, processes). BENCH_BURST_ROUNDS rounds; medians.
#
# The peer in the same run is one instance started alone, the floor a burst
# cannot beat; and one start without a readiness probe (Sleeper), alone, in
# ms: what the runtime and berthd take. Target: 100 healthy within 2 s on 2
# cores.
. "$(dirname "$0")/lib.sh"
bench_require curl jq
n=${BENCH_BURST:-100}
rounds=${BENCH_BURST_ROUNDS:-3}
sock=$WORK/berth.sock
state=$WORK/state
write_config "$WORK/berth.jsonc" "$state" "$sock"
start_berthd "$WORK/berth.jsonc" "$sock"
api() { curl -sf --unix-socket "$sock" "$@"; }

# once ACTION PREFIX COUNT: POST .../PREFIX{0..COUNT-1}/ACTION, all at once.
once() {
	run_loadgen -u "$sock" -o -m POST -n "$3" -d 120 "/v1/classes/Echo/instances/$2%u/$1"
}

# How many of our containers exist: cgroups, container directories, processes.
count_cgroups() {
	local d total=0 c
	for d in $(bench_cgroup_dirs); do
		c=$(find "$d" -mindepth 1 -maxdepth 1 -type d | wc -l)
		[ "$c" -gt "$total" ] && total=$c
	done
	echo "$total"
}
count_dirs() {
	find "$state/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}
# containers with a process in their cgroup (one hierarchy is enough)
count_live() {
	local d c live=0
	d=$(bench_cgroup_dirs | head -1)
	[ -n "$d" ] || { echo 0; return; }
	for c in "$d"/*/; do
		[ -n "$(head -c1 "$c/cgroup.procs")" ] && live=$((live + 1))
	done
	echo "$live"
}
count_procs() {
	local d
	for d in $(bench_cgroup_dirs); do
		find "$d" -mindepth 2 -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -u | wc -l
}
# count_state STATUS: how many of the burst's instances (b0, b1, ...) are in it.
count_state() {
	api "http://b/v1/instances?class=Echo&limit=10000" |
		jq --arg s "$1" '[.instances[] | select((.name | test("^b[0-9]+$")) and .state.status == $s)] | length'
}
check() {
	[ "$2" = "$3" ] || { echo "bench: burst: $1: expected $2, found $3" >&2; exit 1; }
}

# The peer: one instance alone, five times (after one unmeasured start, so
# that the first start's one-time work is not in it).
once start warm 1 >/dev/null
once destroy warm 1 >/dev/null
for ((i = 0; i < 5; i++)); do
	out=$(once start solo 1)
	kv "$out" seconds >> "$WORK/solo"
	once destroy solo 1 >/dev/null
done

# A start that waits for no readiness probe (Sleeper: answered once the
# entrypoint runs), new names, one at a time: the runtime's share of a
# cold start, in ms (curl's time_total: the request, not curl's own start).
for ((i = 0; i < 20; i++)); do
	curl -sf -o /dev/null -w '%{time_total}\n' --unix-socket "$sock" -X POST \
		"http://b/v1/classes/Sleeper/instances/s$i/start" >> "$WORK/sleeper"
	api -X POST "http://b/v1/classes/Sleeper/instances/s$i/destroy" > /dev/null
done

idle_rss=$(proc_kib "$BERTHD_PID" VmRSS)
echo 5 > "/proc/$BERTHD_PID/clear_refs" # VmHWM from here on
for ((r = 0; r < rounds; r++)); do
	out=$(once start b "$n")
	echo "$(kv "$out" seconds) $(kv "$out" p50_ms) $(kv "$out" p99_ms) $(kv "$out" max_ms)" >> "$WORK/start"
	check "healthy instances after the starts" "$n" "$(count_state healthy)"
	check "their cgroups" "$n" "$(count_cgroups)"
	check "their running containers" "$n" "$(count_live)"
	out=$(once destroy b "$n")
	echo "$(kv "$out" seconds) $(kv "$out" p50_ms) $(kv "$out" p99_ms) $(kv "$out" max_ms)" >> "$WORK/destroy"
	check "stopped instances after destroy" "$n" "$(count_state stopped)"
	check "cgroups left after destroy" 0 "$(count_cgroups)"
	check "container directories left" 0 "$(count_dirs)"
	check "processes left" 0 "$(count_procs)"
	check "mounts left" 0 "$(grep -c " $WORK/" /proc/self/mountinfo || true)"
done
hwm=$(proc_kib "$BERTHD_PID" VmHWM)
rss=$(proc_kib "$BERTHD_PID" VmRSS)
stop_berthd

col() { awk -v c="$2" '{print $c}' "$WORK/$1" | median; }
worst() { awk -v c="$2" '$c > m {m = $c} END {print m + 0}' "$WORK/$1"; }
line() {
	printf '| %-27s | %7.3f s | %7.3f s | %6.0f / %6.0f / %6.0f ms |\n' "$1" "$(col "$2" 1)" \
		"$(worst "$2" 1)" "$(col "$2" 2)" "$(col "$2" 3)" "$(col "$2" 4)"
}
wall=$(col start 1)
echo "$n instances of echo-server started at once over the unix socket, $rounds rounds, medians:"
echo
echo "| what                        |   wall    | worst     | per request p50 / p99 / max  |"
echo "|-----------------------------|-----------|-----------|------------------------------|"
printf '| %-27s | %7.3f s | %7.3f s |                              |\n' "one alone (peer, 5 runs)" \
	"$(median < "$WORK/solo")" "$(sort -g "$WORK/solo" | tail -1)"
printf '| %-27s | %6.2f ms | %6.2f ms |                              |\n' "alone, no probe (20 runs)" \
	"$(awk '{print $1 * 1000}' "$WORK/sleeper" | median)" "$(awk '{print $1 * 1000}' "$WORK/sleeper" | sort -g | tail -1)"
line "$n at once, until healthy" start
line "$n destroyed at once" destroy
echo
echo "every round: $n of $n healthy with $n cgroups and processes; after destroy $n records stopped,"
echo "no cgroup, container directory, process or mount left."
echo "berthd RSS: $(mib "$idle_rss") MiB before, peak $(mib "$hwm") MiB during the rounds, $(mib "$rss") MiB after"
printf 'target: %d healthy within 2 s (median round): %s\n' "$n" \
	"$(awk -v w="$wall" 'BEGIN {print w <= 2 ? "met" : "NOT met"}')"
