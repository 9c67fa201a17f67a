#!/bin/bash
# The data plane under abuse: request smuggling (each ambiguity refused with
# 400 and a close, nothing reaching the container), oversized heads and
# bodies, slowloris, a client that reads slowly or not at all (berthd's
# memory stays bounded), and the connection cap.
. "$(dirname "$0")/lib.sh"

SOCK=$STATE/berth.sock
CONFIG=$STATE/berth.jsonc
PORT=$((20000 + RANDOM % 20000))
URL=http://127.0.0.1:$PORT
cat > "$CONFIG" <<JSON
{
  "containers": [
    {"class_name": "Echo", "image": "$ROOTFS", "defaultPort": 8080, "instance_type": "basic",
     "entrypoint": ["echo-server", "--port", "8080"]},
    {"class_name": "Deaf", "image": "$ROOTFS", "defaultPort": 8080, "portReadyTimeoutMS": 3000,
     "entrypoint": ["sleep", "60"], "stopGracePeriod": "1s"},
    {"class_name": "Hostile", "image": "$ROOTFS", "defaultPort": 8080,
     "entrypoint": ["probe", "listen", "8080",
                    "HTTP/1.1 200 OK\\r\\nTransfer-Encoding : chunked\\r\\nConnection : x-secret\\r\\nX-Secret: 1\\r\\nX-Bad Name: 1\\r\\nX-Ok: 1\\r\\nX-Ctl: \\u0001ok\\r\\n\\r\\n5\\r\\nhello\\r\\n0\\r\\n\\r\\n"]},
  ],
  "berth": {
    "state_dir": "$STATE/state", "api": {"socket": "$SOCK"}, "listen": "127.0.0.1:$PORT",
    "proxy": {"header_timeout": "1s", "idle_timeout": "1s", "max_body_size": "1M",
              "max_connections": 50, "max_waiting": 2,
              "upstream_keepalive": 2, "upstream_idle_timeout": "3s"},
    "routes": [
      {"match": {"path_prefix": "/deaf/"}, "class": "Deaf", "instance": {"name": "d"}},
      {"match": {"path_prefix": "/hostile/"}, "class": "Hostile", "instance": {"name": "h"}},
      {"class": "Echo", "instance": {"name": "e"}},
    ],
  },
}
JSON

"$BERTH_BIN/berthd" --config "$CONFIG" >> "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the data plane" 50 curl -s -o /dev/null "$URL/"

# Send raw bytes; print what comes back until the proxy closes (or 5 s).
raw() {
	timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; printf '%b' \"\$1\" >&3; cat <&3; echo '<closed>'" _ "$1" 2>/dev/null
}
# The connection id and request number the instance reports (upstream reuse).
upstream() { curl -s -D - -o /dev/null "$URL/" | tr -d '\r' | sed -n 's/X-Echo-\(Connection-Id\|Requests-On-Connection\): //p' | tr '\n' ' '; }

before=$(upstream)
corpus=(
	"Content-Length and Transfer-Encoding|POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	"two different Content-Lengths|POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"
	"two equal Content-Lengths|POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd"
	"a Content-Length list|POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd"
	"a signed Content-Length|POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd"
	"Transfer-Encoding other than chunked|POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
	"Transfer-Encoding twice|POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	"Transfer-Encoding in HTTP/1.0|POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	"a space before the colon|POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"
	"obs-fold|GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n"
	"obs-fold with a tab|GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n\tContent-Length: 5\r\n\r\n"
	"bare LF line ends|GET / HTTP/1.1\nHost: a\n\n"
	"a bare CR in a header|GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n"
	"a NUL in a header|GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n"
	"a NUL starting a header value|GET / HTTP/1.1\r\nHost: a\r\nX-A: \0b\r\n\r\n"
	"a control character starting a header value|GET / HTTP/1.1\r\nHost: a\r\nX-A:\x01b\r\n\r\n"
	"two Host headers|GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
	"HTTP/1.1 without Host|GET / HTTP/1.1\r\n\r\n"
	"a space in the target|GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"
	)
for entry in "${corpus[@]}"; do
	name=${entry%%|*}
	out=$(raw "${entry#*|}")
	check_contains "$name: 400" "HTTP/1.1 400 Bad Request" "$out"
	check_contains "$name: closed" "<closed>" "$out"
	check_not_contains "$name: nothing from the container" "X-Echo" "$out"
done
out=$(raw "GET / HTTP/1.7\r\nHost: a\r\n\r\n")
check_contains "an unknown HTTP version: 505" "HTTP/1.1 505 HTTP Version Not Supported" "$out"
check_not_contains "not forwarded" "X-Echo" "$out"
after=$(upstream)
read -r cid n <<<"$before"
check_eq "none of it reached the container (same upstream connection, next request)" "$cid $((n + 1)) " "$after"
check_not_contains "no smuggled request logged by berthd either" "smuggled" "$(cat "$STATE/berthd.log")"

# A bad chunk size is found only as the body streams, after the head went on:
# the container's connection is then closed mid-request, so it never has a
# whole request to act on, and the next request gets a fresh connection.
body_corpus=(
	"a bad chunk size|POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
	"a chunk size overflowing 64 bits|POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\na\r\n0\r\n\r\n"
	"a chunk without its CRLF|POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n"
)
for entry in "${body_corpus[@]}"; do
	name=${entry%%|*}
	out=$(raw "${entry#*|}")
	check_contains "$name: 400" "HTTP/1.1 400 Bad Request" "$out"
	check_contains "$name: closed" "<closed>" "$out"
	check_not_contains "$name: no answer from the container" "X-Echo" "$out"
	check_eq "$name: the container's connection was not reused" 1 "$(upstream | awk '{print $2}')"
done

# A container is not trusted either. http-parser frames a response by
# "Transfer-Encoding : chunked" (whitespace before the colon) but keeps the
# whitespace in the name; the head reaches the client with it removed (RFC
# 9112 5.1), so that header is dropped as hop-by-hop rather than passed on
# beside berth's own framing (where a client that trims the name would read
# berth's body two ways), what its Connection names goes too, a name that is
# still no token is dropped, and a control character that starts a value
# (http-parser takes any byte there) becomes a space.
for via in "data plane|$URL/hostile/x" \
	"containerFetch|--unix-socket $SOCK http://b/v1/classes/Hostile/instances/h/fetch/x"; do
	name=${via%%|*}
	# shellcheck disable=SC2086
	head=$(curl -s -D - -o "$STATE/hostile.body" ${via#*|} | tr -d '\r')
	check_contains "$name: a hostile container's answer is passed on" "200 OK" "$head"
	check_eq "$name: its body, framed by berth" hello "$(cat "$STATE/hostile.body")"
	check_contains "$name: a header after a malformed one kept" "X-Ok: 1" "$head"
	check_eq "$name: one framing header, berth's" "Transfer-Encoding: chunked" \
		"$(grep -i '^\(transfer-encoding\|content-length\)' <<<"$head")"
	check_not_contains "$name: no name with whitespace before the colon" " :" "$head"
	check_not_contains "$name: no name that is no token" "X-Bad" "$head"
	check_contains "$name: a control character in a value made a space" "X-Ctl:  ok" "$head"
	check_not_contains "$name: what Connection named is hop-by-hop" "X-Secret" "$head"
done

# The pool of connections to an instance: bounded, and closed when idle.
pid=$(sed -n 's/.*instance Echo\/e: started (pid \([0-9]*\)).*/\1/p' "$STATE/berthd.log" | tail -n1)
upstreams() { nsenter -t "$pid" -n ss -Htn state established '( sport = :8080 )' | wc -l; }
for i in 1 2 3 4 5; do curl -s -o /dev/null "$URL/slow?ms=300" & done
wait_for "five upstream connections" 20 sh -c "[ \$(nsenter -t $pid -n ss -Htn state established '( sport = :8080 )' | wc -l) -ge 5 ]"
check_true "five requests at once: five connections to the instance" test "$(upstreams)" -ge 5
wait_for "the slow ones answered" 30 sh -c "[ \$(nsenter -t $pid -n ss -Htn state established '( sport = :8080 )' | wc -l) -le 2 ]"
check_eq "afterwards the pool keeps upstream_keepalive (2) of them" 2 "$(upstreams)"
wait_for "the pool empty" 50 sh -c "[ \$(nsenter -t $pid -n ss -Htn state established '( sport = :8080 )' | wc -l) -eq 0 ]"
check_eq "and closes them after upstream_idle_timeout (3s)" 0 "$(upstreams)"

# Waiting for a start is bounded (max_waiting 2): the rest are told to retry.
for i in 1 2 3 4 5; do
	curl -s -D - -o /dev/null "$URL/deaf/" | tr -d '\r' | grep -E '^(HTTP|X-Berth-Error|Retry-After)' | tr '\n' ' ' &
	sleep 0.1
done > "$STATE/waiting"
wait_for "the waiters answered" 80 sh -c "[ \$(grep -o 'HTTP/1.1' $STATE/waiting | wc -l) -eq 5 ]"
out=$(cat "$STATE/waiting")
check_eq "past max_waiting: 503 at once, three times" 3 "$(grep -o 'X-Berth-Error: too_many_waiting' <<<"$out" | wc -l)"
check_contains "with Retry-After" "Retry-After: 1" "$out"
check_eq "the two that waited: 504 when the port never answered" 2 "$(grep -o 'X-Berth-Error: port_not_ready' <<<"$out" | wc -l)"
check_eq "a ready instance never counts as waiting" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")"

# Oversized head (32 KiB by default) and body (max_body_size 1M).
big=$(head -c 40000 /dev/zero | tr '\0' a)
check_eq "a 40 KB header: 431" 431 "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$URL/")"
check_eq "many headers: 431" 431 "$(curl -s -o /dev/null -w '%{http_code}' $(for i in $(seq 1 300); do printf -- "-H X-H$i:1 "; done) "$URL/")"
head -c 2000000 /dev/zero > "$STATE/2m"
check_eq "a 2 MB body with Content-Length: 413" 413 \
	"$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$STATE/2m" "$URL/echo-body")"
check_eq "a 2 MB chunked body: 413 (or cut) and nothing echoed whole" "" \
	"$(curl -s -H 'Transfer-Encoding: chunked' --data-binary @"$STATE/2m" "$URL/echo-body" | head -c 2000000 | cmp -s - "$STATE/2m" && echo echoed)"

# Slowloris: a head trickling in is cut at header_timeout (1 s) with 408.
start=$(date +%s%N)
out=$(timeout 6 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT
	printf 'GET / HTTP/1.1\r\nHost: a\r\n' >&3
	( for i in \$(seq 1 20); do printf 'X-Slow-\$i: 1\r\n' >&3 || exit; sleep 0.2; done ) >/dev/null 2>&1 &
	cat <&3; echo '<closed>'")
elapsed=$((($(date +%s%N) - start) / 1000000))
check_contains "slowloris: 408" "HTTP/1.1 408" "$out"
check_contains "and closed" "<closed>" "$out"
check_true "after about header_timeout (${elapsed} ms)" test "$elapsed" -ge 900 -a "$elapsed" -lt 3000
out=$(timeout 6 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; sleep 2; printf 'GET / HTTP/1.1\r\nHost: a\r\n\r\n' >&3 2>/dev/null; cat <&3; echo '<closed>'" 2>/dev/null)
check_contains "a connection that sends nothing is closed" "<closed>" "$out"
start=$(date +%s%N)
out=$(timeout 6 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; printf 'GET / HTTP/1.1\r\nHost: a\r\n\r\n' >&3; cat <&3; echo '<closed>'" 2>/dev/null)
elapsed=$((($(date +%s%N) - start) / 1000000))
check_contains "a kept-alive connection is answered" "HTTP/1.1 200" "$out"
check_contains "then closed after idle_timeout" "<closed>" "$out"
check_true "after about idle_timeout (${elapsed} ms)" test "$elapsed" -ge 900 -a "$elapsed" -lt 3000

# Backpressure: clients that read slowly or not at all cost berthd little memory.
rss() { awk '/VmRSS/ {print $2}' "/proc/$BERTHD/status"; }
rss0=$(rss)
timeout 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; printf 'GET /bytes?n=1073741824 HTTP/1.1\r\nHost: a\r\n\r\n' >&3; sleep 4" &
stalled=$!
curl -s --limit-rate 1M --max-time 4 -o /dev/null "$URL/bytes?n=1073741824" &
slow=$!
sleep 3.5
rss1=$(rss)
wait $stalled $slow 2>/dev/null
check_true "a stalled and a slow 1 GiB download: berthd grew ${rss0}→${rss1} KiB (< 8 MiB)" \
	test $((rss1 - rss0)) -lt 8192
check_eq "and it still serves" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")"
# Clients that vanish mid-response (a reset while berthd writes: EPIPE, not SIGPIPE).
for i in $(seq 1 10); do curl -s -m 0.05 -o /dev/null "$URL/bytes?n=100000000"; done
check_true "clients resetting mid-response do not take berthd down" kill -0 $BERTHD
check_eq "which still serves" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")"
conns() { ss -Htn state established "( dport = :$PORT )" | wc -l; }
timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; printf 'GET /bytes?n=1073741824 HTTP/1.1\r\nHost: a\r\n\r\n' >&3; sleep 6" &
stalled=$!
sleep 0.3
check_eq "a client that stops reading keeps its connection a while" 1 "$(conns)"
wait_for "the stalled client cut" 40 sh -c "[ \$(ss -Htn state established '( dport = :$PORT )' | wc -l) -eq 0 ]"
check_eq "and is cut after idle_timeout without progress" 0 "$(conns)"
kill $stalled 2>/dev/null
wait $stalled 2>/dev/null

# The connection cap (50): more are closed at once, the rest still served.
for i in $(seq 1 60); do
	timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; sleep 2" 2>/dev/null &
done
sleep 0.5
out=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/")
check_eq "past max_connections a new connection is refused" 000 "$out"
wait_for "the idle ones gone" 50 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $URL/)\" = 200 ]"
check_eq "and served again once they leave" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")"

kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly" 0 "$?"
finish
