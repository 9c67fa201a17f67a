#!/bin/bash
# berthd's memory and lookups with many sleeping instance records.
#
#   idle     berthd with a config of three classes, an empty state directory,
#            nothing running: RSS once it answers and has been quiet 1 s.
#   1k/100k  registries of 1,000 and 100,000 sleeping records, filled through
#            the registry's API (bench/fill-registry.c), berthd started on
#            each: RSS at start; GET .../state of random names, one connection
#            (latency) and BENCH_API_CONNS connections (throughput); RSS and
#            peak RSS after. The 1k daemon is the peer the 100k one is held
#            against.
#
# Targets: idle RSS <= 8 MiB; sleeping records are not held in memory, i.e.
# RSS with 100k records minus idle RSS <= 200 MiB (2 KiB a record).
. "$(dirname "$0")/lib.sh"
bench_require curl
seconds=${BENCH_API_SECONDS:-3}
conns=${BENCH_API_CONNS:-16}
records=${BENCH_RECORDS:-100000}

# idle: a fresh state directory, no request but the health check.
mkdir -p "$WORK/idle"
write_config "$WORK/idle/berth.jsonc" "$WORK/idle/state" "$WORK/idle/berth.sock"
start_berthd "$WORK/idle/berth.jsonc" "$WORK/idle/berth.sock"
sleep 1
idle_rss=$(proc_kib "$BERTHD_PID" VmRSS)
idle_anon=$(proc_kib "$BERTHD_PID" RssAnon)
idle_file=$(proc_kib "$BERTHD_PID" RssFile)
stop_berthd

# run_set N: fill N records, start berthd on them, measure; sets the row's figures.
run_set() {
	local n=$1 dir=$WORK/r$1 out
	mkdir -p "$dir"
	write_config "$dir/berth.jsonc" "$dir/state" "$dir/berth.sock"
	out=$("$FILL" "$dir/state" Echo r "$n")
	fill_s=$(kv "$out" seconds)
	db_kib=$(du -k "$dir/state/registry.db" | cut -f1)
	start_berthd "$dir/berth.jsonc" "$dir/berth.sock"
	start_rss=$(proc_kib "$BERTHD_PID" VmRSS)
	# Random existing names: r0 .. r(N-1).
	out=$(run_loadgen -u "$dir/berth.sock" -c 1 -d "$seconds" -n "$n" \
		"/v1/classes/Echo/instances/r%u/state")
	p50=$(kv "$out" p50_ms)
	p99=$(kv "$out" p99_ms)
	out=$(run_loadgen -u "$dir/berth.sock" -c "$conns" -d "$seconds" -n "$n" \
		"/v1/classes/Echo/instances/r%u/state")
	rps=$(kv "$out" rps)
	rss=$(proc_kib "$BERTHD_PID" VmRSS)
	anon=$(proc_kib "$BERTHD_PID" RssAnon)
	hwm=$(proc_kib "$BERTHD_PID" VmHWM)
	stop_berthd
	rm -rf "$dir"
}

print_row() {
	printf '| %7s | %6.2f s | %6.1f MiB | %8.1f MiB | %6.3f / %6.3f ms | %7.0f | %6.1f MiB | %6.1f MiB | %6.1f MiB |\n' \
		"$1" "$fill_s" "$(mib "$db_kib")" "$(mib "$start_rss")" "$p50" "$p99" "$rps" \
		"$(mib "$rss")" "$(mib "$anon")" "$(mib "$hwm")"
}

echo "berthd with sleeping records: GET .../state of random names over the unix socket, ${seconds} s each;"
echo "latency with 1 connection, req/s with $conns:"
echo
echo "| records |   fill   | registry   | RSS at start | lookup p50 / p99   |  req/s  | RSS after  | of it anon | peak RSS   |"
echo "|---------|----------|------------|--------------|--------------------|---------|------------|------------|------------|"
run_set 1000
print_row 1000
small_rss=$rss small_p50=$p50
run_set "$records"
print_row "$records"
echo
diff=$((rss - idle_rss))
verdict() { if [ "$1" = 1 ]; then echo met; else echo "NOT met"; fi; }
printf 'idle RSS (3 classes, nothing running): %s MiB (anon %s, file-backed %s) — target <= 8 MiB: %s\n' \
	"$(mib "$idle_rss")" "$(mib "$idle_anon")" "$(mib "$idle_file")" "$(verdict $((idle_rss <= 8192)))"
printf 'RSS with %d records after lookups minus idle RSS: %s MiB = %d bytes a record — target <= 2 KiB a record: %s\n' \
	"$records" "$(mib "$diff")" $((diff * 1024 / records)) "$(verdict $((diff * 1024 <= records * 2048)))"
printf 'the same against the 1,000-record daemon: %s MiB; lookup p50 %s×\n' \
	"$(mib $((rss - small_rss)))" "$(awk -v a="$p50" -v b="$small_p50" 'BEGIN {printf "%.2f", a / b}')"
