#!/bin/bash
# Networking: own namespace with lo up (or down with --net none), and
# --publish reaching a server inside from the host's loopback.
. "$(dirname "$0")/lib.sh"

free_port() { # a free loopback port, from the kernel
	probe_port=$(( (RANDOM % 20000) + 30000 ))
	while (exec 3<>/dev/tcp/127.0.0.1/$probe_port) 2>/dev/null; do
		probe_port=$((probe_port + 1))
	done
	echo $probe_port
}

out=$(brun -- ip -o link show lo)
check_contains "lo is up by default" "UP" "$out"
out=$(brun --net none -- ip -o link show lo)
check_not_contains "--net none: lo is down" ",UP" "$out"

port=$(free_port)
brun --name web -p "127.0.0.1:$port:8080" -- probe listen 8080 "hello from inside" > "$STATE/web.out" 2>&1 &
pid=$!
wait_for "the published port" 50 curl -s "http://127.0.0.1:$port/"
out=$(curl -s "http://127.0.0.1:$port/")
check_contains "a published port reaches the server inside" "hello from inside" "$out"
out=$(for i in 1 2 3 4 5 6 7 8; do curl -s "http://127.0.0.1:$port/" & done; wait)
check_eq "concurrent connections each get through" 8 "$(grep -c 'hello from inside' <<<"$out")"
kill -TERM $pid
wait $pid
check_nothing_left web
check_true "the published port is closed afterwards" sh -c "! curl -s http://127.0.0.1:$port/"

port=$(free_port)
out=$(brun -p "127.0.0.1:$port:80" -p "127.0.0.1:$port:81" -- sleep 5 2>&1)
check_contains "a host port already in use is reported" "publish 127.0.0.1:$port: address already in use" "$out"

# make demo: the demo image served on the host's loopback.
port=$(free_port)
DEMO_PORT=$port DEMO_STATE_DIR=$STATE BERTH_BIN=$BERTH_BIN "$E2E_ROOT/scripts/demo.sh" > "$STATE/demo.out" 2>&1 &
pid=$!
wait_for "the demo page" 50 curl -sf "http://127.0.0.1:$port/"
out=$(curl -s "http://127.0.0.1:$port/")
check_contains "the demo serves its page" "berth demo" "$out"
kill -INT $pid
wait $pid
check_contains "the demo prints its address" "http://127.0.0.1:$port/" "$(cat "$STATE/demo.out")"

finish
