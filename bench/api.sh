#!/bin/bash
# berthd's control API: GET /v1/classes/C/instances/N/state per second, over
# the unix socket and TCP, against nginx answering the same bytes with
# `return 200` on the same machine in the same run.
#
# Clients: wrk (TCP only) and bench/loadgen.c (TCP and unix sockets), each
# with one thread and BENCH_API_CONNS keep-alive connections, no pipelining.
# Servers: berthd (one event loop) and nginx with one worker process, each
# on 127.0.0.1 and on a unix socket. Rounds alternate between the servers so
# that drifting load from others on the machine hits both; the figures are
# medians over the rounds.
. "$(dirname "$0")/lib.sh"
bench_require wrk nginx curl ss
rounds=${BENCH_API_ROUNDS:-3}
seconds=${BENCH_API_SECONDS:-3}
conns=${BENCH_API_CONNS:-16}

# berthd with one sleeping record to read (a name without a record is
# answered from the class alone, which would flatter the lookup).
sock=$WORK/berth.sock
port=$(free_port)
write_config "$WORK/berth.jsonc" "$WORK/state" "$sock" "$port"
"$FILL" "$WORK/state" Echo bench 1 >/dev/null
start_berthd "$WORK/berth.jsonc" "$sock"
path=/v1/classes/Echo/instances/bench0/state
body=$(curl -sf --unix-socket "$sock" "http://b$path")
case $body in
*'"status":"stopped"'*) ;;
*) echo "bench: unexpected state answer: $body" >&2; exit 1 ;;
esac

# nginx: its own prefix and configuration, foreground, one worker; the same
# body and content type as berthd's answer.
ngx=$WORK/nginx
ngx_port=$(free_port)
while [ "$ngx_port" = "$port" ]; do ngx_port=$(free_port); done
mkdir -p "$ngx/tmp"
cat > "$ngx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $ngx/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
	access_log off;
	keepalive_requests 100000000;
	client_body_temp_path $ngx/tmp/body;
	proxy_temp_path $ngx/tmp/proxy;
	fastcgi_temp_path $ngx/tmp/fastcgi;
	uwsgi_temp_path $ngx/tmp/uwsgi;
	scgi_temp_path $ngx/tmp/scgi;
	server {
		listen 127.0.0.1:$ngx_port;
		listen unix:$ngx/nginx.sock;
		location / {
			default_type application/json;
			return 200 '$body';
		}
	}
}
CONF
nginx -p "$ngx" -c "$ngx/nginx.conf" -e stderr > "$WORK/nginx.log" 2>&1 &
NGINX_PID=$!
BG_PIDS+=("$NGINX_PID")
for ((i = 0; i < 50; i++)); do
	[ "$(curl -s "http://127.0.0.1:$ngx_port$path" 2>/dev/null)" = "$body" ] && break
	kill -0 "$NGINX_PID" 2>/dev/null || { cat "$WORK/nginx.log" >&2; exit 1; }
	sleep 0.1
done
[ "$(curl -s "http://127.0.0.1:$ngx_port$path")" = "$body" ] ||
	{ echo "bench: nginx does not answer; its log:" >&2; cat "$WORK/nginx.log" >&2; exit 1; }

# wrk's --latency figures to milliseconds.
wrk_line() {
	awk '
		function ms(v) {
			if (v ~ /us$/) return v * 1e-3
			if (v ~ /ms$/) return v + 0
			if (v ~ /s$/) return v * 1e3
			return v
		}
		$1 == "50%" {p50 = ms($2)}
		$1 == "99%" {p99 = ms($2)}
		/^Requests\/sec:/ {rps = $2}
		/Non-2xx or 3xx responses:/ {bad = $NF}
		/Socket errors:/ {bad = 1}
		END {printf "rps=%.0f p50_ms=%.3f p99_ms=%.3f bad=%d\n", rps, p50, p99, bad}'
}

# measure KEY CLIENT TARGET: one run, appended to $WORK/KEY
measure() {
	local key=$1 client=$2 target=$3 out
	if [ "$client" = wrk ]; then
		out=$(wrk -t1 -c"$conns" -d"${seconds}s" --latency "http://$target$path" | wrk_line)
		[ "$(kv "$out" bad)" = 0 ] || { echo "bench: wrk against $target: errors ($out)" >&2; exit 1; }
	else
		out=$(run_loadgen "$client" "$target" -c "$conns" -d "$seconds" "$path")
	fi
	echo "$(kv "$out" rps) $(kv "$out" p50_ms) $(kv "$out" p99_ms)" >> "$WORK/$key"
}

# Warm-up: the first second of each server's life is not its steady state.
"$LOADGEN" -u "$sock" -c "$conns" -d 1 "$path" >/dev/null
"$LOADGEN" -u "$ngx/nginx.sock" -c "$conns" -d 1 "$path" >/dev/null
for ((r = 0; r < rounds; r++)); do
	measure wrk-tcp-nginx wrk "127.0.0.1:$ngx_port"
	measure wrk-tcp-berthd wrk "127.0.0.1:$port"
	measure lg-tcp-nginx -t "127.0.0.1:$ngx_port"
	measure lg-tcp-berthd -t "127.0.0.1:$port"
	measure lg-unix-nginx -u "$ngx/nginx.sock"
	measure lg-unix-berthd -u "$sock"
done

col() { awk -v c="$2" '{print $c}' "$WORK/$1" | median; }
row() {
	local client=$1 transport=$2 key=$3
	local n b
	n=$(col "$key-nginx" 1)
	b=$(col "$key-berthd" 1)
	printf '| %-7s | %-4s | %9.0f | %9.0f | %5.2f | %6.3f / %6.3f ms | %6.3f / %6.3f ms |\n' \
		"$client" "$transport" "$b" "$n" "$(awk -v b="$b" -v n="$n" 'BEGIN {print b / n}')" \
		"$(col "$key-berthd" 2)" "$(col "$key-berthd" 3)" "$(col "$key-nginx" 2)" "$(col "$key-nginx" 3)"
}

echo "control API, GET $path: $rounds rounds x ${seconds} s, $conns connections, 1 client thread, medians:"
echo
echo "| client  | over | berthd/s  | nginx/s   | ratio | berthd p50 / p99   | nginx p50 / p99    |"
echo "|---------|------|-----------|-----------|-------|--------------------|--------------------|"
row wrk tcp wrk-tcp
row loadgen tcp lg-tcp
row loadgen unix lg-unix
stop_berthd
