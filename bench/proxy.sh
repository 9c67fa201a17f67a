#!/bin/bash
# The data plane against nginx, on one origin measured in the same run.
#
# The origin is echo-server in a berth container (2 vCPUs, so no quota
# throttles it), answering /bytes?n=100 (a 100-byte body). Three paths to it:
#   direct   wrk inside the container's network namespace → the origin
#   nginx    wrk → nginx (1 worker, proxy_pass with an upstream keepalive
#            pool of 64), both inside that namespace → the origin
#   berth    wrk → berthd's data plane on the host's loopback → the origin
#            (its socket made in the namespace, pooled)
# Loopback is the same in both namespaces. wrk -t2 -c64 and -t1 -c1, 5 s
# each (BENCH_PROXY_SECONDS), in 3 alternating rounds (BENCH_PROXY_ROUNDS); then a WebSocket echo round trip (2000
# messages, one at a time) direct and through berth, and a stopped
# instance's request-to-first-byte (30 cold starts, median and p99).
# Results: docs/benchmarks.md ("Proxy").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${BERTH_BIN:-$root/bin}
tools=${BERTH_TOOLS:-$root/build/tests}
rootfs=$root/build/rootfs/test
work=$root/build/bench/proxy
secs=${BENCH_PROXY_SECONDS:-5}
rounds=${BENCH_PROXY_ROUNDS:-3}
port=${BENCH_PROXY_PORT:-18480}

for tool in wrk nginx nsenter curl; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing (run scripts/install-deps.sh)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench: needs root (containers)" >&2; exit 1; }
[ -x "$rootfs/usr/local/bin/echo-server" ] || { echo "bench: no test root (make rootfs)" >&2; exit 1; }
[ -x "$tools/ws-client" ] || { echo "bench: no $tools/ws-client (make)" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work/nginx"
cat > "$work/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "Origin", "image": "$rootfs", "defaultPort": 8080, "sleepAfter": "1h",
     "instance_type": {"vcpu": 2, "memory_mib": 512, "disk_mb": 100},
     "entrypoint": ["echo-server", "--port", "8080"]},
  ],
  "berth": {
    "state_dir": "$work/state", "api": {"socket": "$work/berth.sock"},
    "listen": "127.0.0.1:$port",
    "routes": [
      {"match": {"path_prefix": "/cold/"}, "class": "Origin", "instance": {"path_segment": 1},
       "strip_prefix": true},
      {"class": "Origin", "instance": {"name": "origin"}},
    ],
  },
}
JSON
"$bin/berthd" --config "$work/berth.jsonc" > "$work/berthd.log" 2>&1 &
berthd=$!
nginx_pid=
cleanup() {
	[ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
	kill -TERM "$berthd" 2>/dev/null
	wait "$berthd" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$port/health" || { echo "bench: berthd did not serve" >&2; exit 1; }

# The origin container's init (its network namespace is the container's).
origin=$(sed -n 's/.*instance Origin\/origin: started (pid \([0-9]*\)).*/\1/p' "$work/berthd.log")
[ -n "$origin" ] || { echo "bench: origin not found" >&2; exit 1; }
inns() { nsenter -t "$origin" -n "$@"; }

cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream origin { server 127.0.0.1:8080; keepalive 64; }
  server {
    listen 127.0.0.1:8888;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
nsenter -t "$origin" -n nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" > "$work/nginx/out" 2>&1 &
nginx_pid=$!
for _ in $(seq 50); do inns curl -s -o /dev/null http://127.0.0.1:8888/health && break; sleep 0.1; done

path=/bytes?n=100
# wrk CONNS URL [in-namespace]: "req/s p50_us p99_us"
run_wrk() {
	local conns=$1 url=$2 ns=${3:-} threads=2 out
	[ "$conns" = 1 ] && threads=1
	if [ -n "$ns" ]; then
		out=$(inns wrk -t$threads -c"$conns" -d"${secs}s" --latency "$url")
	else
		out=$(wrk -t$threads -c"$conns" -d"${secs}s" --latency "$url")
	fi
	awk '
		function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1000000; return v }
		/Requests\/sec/ { rps = $2 }
		$1 == "50%" { p50 = us($2) }
		$1 == "99%" { p99 = us($2) }
		/Non-2xx|Socket errors/ { errs = errs " " $0 }
		END { printf "%d %.0f %.0f%s\n", rps, p50, p99, errs }' <<<"$out"
}

# Warm every path once.
inns curl -s -o /dev/null "http://127.0.0.1:8080$path"
inns curl -s -o /dev/null "http://127.0.0.1:8888$path"
curl -s -o /dev/null "http://127.0.0.1:$port$path"

echo "proxy: $rounds rounds of $secs s per run, medians; origin echo-server $path in a container ($(nproc) CPUs, $(uname -r))"
echo
# Rounds alternate the three paths, so that drifting load (other work on the
# machine) hits all of them; each figure is the median over the rounds.
declare -A all
for ((round = 0; round < rounds; round++)); do
	for which in direct nginx berth; do
		case $which in
		direct) url=http://127.0.0.1:8080$path ns=ns ;;
		nginx) url=http://127.0.0.1:8888$path ns=ns ;;
		berth) url=http://127.0.0.1:$port$path ns= ;;
		esac
		all[$which,64]+="$(run_wrk 64 "$url" $ns)"$'\n'
		all[$which,1]+="$(run_wrk 1 "$url" $ns)"$'\n'
	done
done
# median of column N of the rounds' lines
med() { awk -v n="$2" 'NF {print $n}' <<<"$1" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
errors=$(printf '%s' "${all[@]}" | grep -o 'Non-2xx.*\|Socket errors.*' | sort -u || true)
echo "| path    | -c64 req/s | p50      | p99      | -c1 req/s | p50     | p99     |"
echo "|---------|------------|----------|----------|-----------|---------|---------|"
declare -A m
for which in direct nginx berth; do
	for k in 64 1; do
		for col in 1 2 3; do m[$which,$k,$col]=$(med "${all[$which,$k]}" $col); done
	done
	printf '| %-7s | %10s | %5s µs | %5s µs | %9s | %4s µs | %4s µs |\n' "$which" \
		"${m[$which,64,1]}" "${m[$which,64,2]}" "${m[$which,64,3]}" "${m[$which,1,1]}" "${m[$which,1,2]}" "${m[$which,1,3]}"
done
[ -z "$errors" ] || echo "errors: $errors"
echo
awk -v dr="${m[direct,64,1]}" -v nr="${m[nginx,64,1]}" -v br="${m[berth,64,1]}" -v np="${m[nginx,64,3]}" \
	-v bp="${m[berth,64,3]}" -v d1="${m[direct,1,2]}" -v n1="${m[nginx,1,2]}" -v b1="${m[berth,1,2]}" 'BEGIN {
	printf "-c64: nginx %.2f× direct, berth %.2f× direct, berth/nginx %.2f× (target ≥ 1.2); p99 berth %d µs vs nginx %d µs\n", nr / dr, br / dr, br / nr, bp, np
	printf "-c1:  added p50 latency: nginx %d µs, berth %d µs (target ≤ 25)\n", n1 - d1, b1 - d1
}'

# WebSocket: 2000 echoes, one message in flight; alternated, medians.
ws_time() { local s e; s=$(date +%s%N); "$@" > /dev/null; e=$(date +%s%N); echo $(((e - s) / 2000)); }
wsd= wsb=
for ((round = 0; round < rounds; round++)); do
	wsd+="$(ws_time inns "$tools/ws-client" 127.0.0.1 8080 /ws 2000)"$'\n'
	wsb+="$(ws_time "$tools/ws-client" 127.0.0.1 "$port" /ws 2000)"$'\n'
done
wd=$(med "$wsd" 1)
wb=$(med "$wsb" 1)
echo "WebSocket echo round trip: direct $((wd / 1000)) µs, through berth $((wb / 1000)) µs (+$(((wb - wd) / 1000)) µs)"

# A stopped instance: request to first byte, 30 times (each a new instance).
: > "$work/cold"
for i in $(seq 1 30); do
	curl -s -o /dev/null -w '%{time_starttransfer}\n' "http://127.0.0.1:$port/cold/c$i/health" >> "$work/cold"
	curl -s -o /dev/null --unix-socket "$work/berth.sock" -X POST \
		"http://b/v1/classes/Origin/instances/c$i/destroy"
done
sort -g "$work/cold" | awk '{a[NR] = $1 * 1000} END {
	printf "stopped instance → first byte (%d starts): median %.1f ms, p99 %.1f ms, min %.1f ms (target ≤ 10 ms median)\n",
		NR, a[int((NR + 1) / 2)], a[int(NR * 0.99 + 0.999)], a[1] }'
