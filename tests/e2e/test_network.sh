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
brun_bg --name web -p "127.0.0.1:$port:8080" -- probe listen 8080 "hello from inside" > "$STATE/web.out" 2>&1
pid=$!
wait_for "the published port" 50 curl -s --http0.9 "http://127.0.0.1:$port/"
out=$(curl -s --http0.9 "http://127.0.0.1:$port/")
check_contains "a published port reaches the server inside" "hello from inside" "$out"
kill -TERM $pid
wait $pid
check_nothing_left web
check_true "the published port is closed afterwards" sh -c "! curl -s --http0.9 http://127.0.0.1:$port/"

# Many connections at once, through to an HTTP server inside, with bodies both ways.
port=$(free_port)
brun_bg --name echo -p "127.0.0.1:$port:8080" -- echo-server --port 8080 > "$STATE/echo.out" 2>&1
pid=$!
wait_for "the echo server" 50 curl -sf "http://127.0.0.1:$port/health"
out=$(for i in $(seq 1 20); do curl -s "http://127.0.0.1:$port/health" & done; wait)
check_eq "20 concurrent connections each get through" 20 "$(grep -o ok <<<"$out" | wc -l)"
head -c 3000000 /dev/urandom > "$STATE/body"
got=$(curl -s --data-binary @"$STATE/body" "http://127.0.0.1:$port/echo-body" | sha256sum)
check_eq "a 3 MB body goes through and back intact" "$(sha256sum < "$STATE/body")" "$got"
kill -TERM $pid
wait $pid

port=$(free_port)
out=$(brun -p "127.0.0.1:$port:80" -p "127.0.0.1:$port:81" -- sleep 5 2>&1)
check_contains "a host port already in use is reported" "publish 127.0.0.1:$port: address already in use" "$out"

# make demo: berthd serves the demo site on the host's loopback, starting its
# container on the first request.
port=$(free_port)
DEMO_PORT=$port DEMO_STATE_DIR=$STATE/demo BERTH_BIN=$BERTH_BIN "$E2E_ROOT/scripts/demo.sh" > "$STATE/demo.out" 2>&1 &
pid=$!
wait_for "the demo's berthd" 50 test -S "$STATE/demo/berth.sock"
check_not_contains "no container before the first request" "Site" \
	"$(BERTH_SOCKET=$STATE/demo/berth.sock "$BERTH_BIN/berth" ps 2>&1)"
out=$(curl -s "http://127.0.0.1:$port/")
check_contains "the demo serves its page (a cold start)" "berth demo" "$out"
check_contains "its instance runs now" "healthy" \
	"$(BERTH_SOCKET=$STATE/demo/berth.sock "$BERTH_BIN/berth" ps 2>&1)"
kill -INT $pid
wait $pid
check_eq "Ctrl-C stops berthd cleanly" 0 "$?"
check_eq "and the container with it" "" "$(ls "$STATE/demo/containers" 2>/dev/null)"
check_contains "the demo prints its address" "http://127.0.0.1:$port/" "$(cat "$STATE/demo.out")"

finish
