#!/bin/bash
# The data plane as its clients see it: every route kind, cold starts (50 at
# once → one container), sleep and wake, keep-alive to the instances, bodies
# streamed both ways, 100-continue, WebSocket tunnels that keep an instance
# awake, and the errors a client gets when an instance cannot serve.
. "$(dirname "$0")/lib.sh"

SOCK=$STATE/berth.sock
CONFIG=$STATE/berth.jsonc
PORT=$((20000 + RANDOM % 20000))
URL=http://127.0.0.1:$PORT
WS=${BERTH_TOOLS:-$E2E_ROOT/build/tests}/ws-client
cat > "$CONFIG" <<JSON
{
  "containers": [
    {"class_name": "Echo", "image": "$ROOTFS", "defaultPort": 8080, "max_instances": 20,
     "instance_type": "basic", "entrypoint": ["echo-server", "--port", "8080", "--port", "9090"]},
    {"class_name": "Sleepy", "image": "$ROOTFS", "defaultPort": 8080, "sleepAfter": "1s",
     "entrypoint": ["echo-server", "--port", "8080"]},
    {"class_name": "Capped", "image": "$ROOTFS", "defaultPort": 8080, "max_instances": 1,
     "entrypoint": ["echo-server", "--port", "8080"]},
    {"class_name": "Broken", "image": "$ROOTFS", "defaultPort": 8080,
     "entrypoint": ["sh", "-c", "exit 3"]},
    {"class_name": "Deaf", "image": "$ROOTFS", "defaultPort": 8080, "portReadyTimeoutMS": 10000,
     "entrypoint": ["sleep", "60"], "stopGracePeriod": "1s"},
    {"class_name": "Mute", "image": "$ROOTFS", "defaultPort": 8080, "portReadyTimeoutMS": 300,
     "entrypoint": ["sleep", "60"], "stopGracePeriod": "1s"},
  ],
  "berth": {
    "state_dir": "$STATE/state", "api": {"socket": "$SOCK"}, "listen": "127.0.0.1:$PORT",
    "proxy": {"wait_timeout": "2s", "upstream_timeout": "1s"},
    "routes": [
      {"match": {"path_prefix": "/name/"}, "class": "Echo", "instance": {"name": "fixed"},
       "strip_prefix": true},
      {"match": {"path_prefix": "/seg/"}, "class": "Echo", "instance": {"path_segment": 1},
       "strip_prefix": true},
      {"match": {"path_prefix": "/hdr/"}, "class": "Echo", "instance": {"header": "X-Tenant"}},
      {"match": {"host": "*.tenants.test"}, "class": "Echo", "instance": {"host_label": 0}},
      {"match": {"path_prefix": "/rnd/"}, "class": "Echo", "instance": {"random": 3}},
      {"match": {"path_prefix": "/ll/"}, "class": "Echo", "instance": {"least_loaded": 2},
       "strip_prefix": true},
      {"match": {"path_prefix": "/single/"}, "class": "Echo", "instance": "singleton"},
      {"match": {"path_prefix": "/alt/"}, "class": "Echo", "instance": {"name": "fixed"},
       "port": 9090, "strip_prefix": true},
      {"match": {"path_prefix": "/sleepy/"}, "class": "Sleepy", "instance": {"name": "z"},
       "strip_prefix": true},
      {"match": {"path_prefix": "/capped/"}, "class": "Capped", "instance": {"path_segment": 1}},
      {"match": {"path_prefix": "/broken/"}, "class": "Broken", "instance": {"name": "b"}},
      {"match": {"path_prefix": "/deaf/"}, "class": "Deaf", "instance": {"name": "d"}},
      {"match": {"path_prefix": "/mute/"}, "class": "Mute", "instance": {"name": "m"}},
    ],
  },
}
JSON

api() { curl -s --unix-socket "$SOCK" "$@"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
started() { grep -c "instance $1: started" "$STATE/berthd.log"; }
state_is() { api "http://b/v1/classes/$1/instances/$2/state" | grep -q "\"$3\""; }

"$BERTH_BIN/berthd" --config "$CONFIG" >> "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the data plane" 50 curl -s -o /dev/null "$URL/"

# Routing: every way to pick an instance (echo-server reports its hostname,
# which is the instance's name, and the path and port it was asked on).
out=$(curl -s "$URL/name/x?q=1")
check_eq "name: the named instance" fixed "$(field hostname <<<"$out")"
check_eq "strip_prefix: the rest of the path reaches it" "/x" "$(field path <<<"$out")"
check_eq "the query too" "q=1" "$(field query <<<"$out")"
out=$(curl -s "$URL/seg/alice/inbox")
check_eq "path_segment: the segment names the instance" alice "$(field hostname <<<"$out")"
check_eq "strip_prefix removes the prefix" "/alice/inbox" "$(field path <<<"$out")"
check_eq "header: X-Tenant names it" bob "$(curl -s -H 'X-Tenant: bob' "$URL/hdr/" | field hostname)"
check_eq "header missing: 404" 404 "$(code "$URL/hdr/")"
check_eq "host_label: the first label" carol \
	"$(curl -s -H 'Host: Carol.tenants.test:8000' "$URL/" | field hostname)"
check_eq "singleton: getContainer()'s name" cf-singleton-container "$(curl -s "$URL/single/" | field hostname)"
names=$(for i in $(seq 1 30); do curl -s "$URL/rnd/" | field hostname; done | sort -u | tr '\n' ' ')
check_contains "random: instance-N names" "instance-" "$names"
check_not_contains "random 3: never instance-3" "instance-3" "$names"
check_eq "least_loaded: the idle running one first" instance-0 "$(curl -s "$URL/ll/" | field hostname)"
curl -s -o /dev/null "$URL/ll/slow?ms=1500" &
busy=$!
sleep 0.3
check_eq "least_loaded: while instance-0 is busy, the other" instance-1 "$(curl -s "$URL/ll/" | field hostname)"
wait $busy
check_eq "route port: 9090" 9090 "$(curl -s "$URL/alt/" | field port)"
check_eq "cf-container-target-port beats the route's port" 8080 \
	"$(curl -s -H 'cf-container-target-port: 8080' "$URL/alt/" | field port)"
out=$(curl -s -i "$URL/nowhere" -H 'Host: other.example')
check_contains "unmatched: 404" "HTTP/1.1 404" "$out"
check_contains "with a short body" "berth: no route for other.example/nowhere" "$out"

# Headers on the way in.
out=$(curl -s -H 'X-Forwarded-For: 10.0.0.1' -H 'Connection: keep-alive, X-Hop' -H 'X-Hop: 1' \
	-H 'Keep-Alive: 5' -H 'Proxy-Authorization: x' "$URL/name/h")
check_contains "X-Forwarded-For appended" '"x-forwarded-for":"10.0.0.1, 127.0.0.1"' "$out"
check_contains "X-Forwarded-Proto set" '"x-forwarded-proto":"http"' "$out"
check_contains "X-Forwarded-Host set" "\"x-forwarded-host\":\"127.0.0.1:$PORT\"" "$out"
check_contains "Host kept" "\"host\":\"127.0.0.1:$PORT\"" "$out"
check_not_contains "headers named by Connection stripped" '"x-hop"' "$out"
check_not_contains "Keep-Alive stripped" '"keep-alive"' "$out"
check_not_contains "Proxy-* stripped" '"proxy-authorization"' "$out"

# Cold start: 50 simultaneous first requests, one container, 50 answers.
for i in $(seq 1 50); do curl -s -o /dev/null -w '%{http_code}\n' "$URL/seg/burst" & done > "$STATE/burst" 2>&1
wait_for "the burst answered" 100 sh -c "[ \$(wc -l < $STATE/burst) -eq 50 ]"
check_eq "50 concurrent first requests: 50 answers of 200" 50 "$(grep -c '^200$' "$STATE/burst")"
check_eq "and one container start" 1 "$(started Echo/burst)"
starts=$(api "http://b/v1/events?since=0" --max-time 1 | grep -c '"type":"start".*burst\|burst.*"type":"start"')
check_eq "one start event" 1 "$starts"

# Keep-alive: separate client connections reuse one connection to the instance.
a=$(curl -s -D - -o /dev/null "$URL/name/k" | tr -d '\r' | sed -n 's/X-Echo-Connection-Id: //p')
b=$(curl -s -D - -o /dev/null "$URL/name/k" | tr -d '\r' | sed -n 's/X-Echo-Connection-Id: //p')
check_eq "two client connections, one upstream connection" "$a" "$b"
out=$(curl -s "$URL/name/1" "$URL/name/2" "$URL/name/3" | field request_number | tr '\n' ' ')
n1=$(awk '{print $1}' <<<"$out"); n3=$(awk '{print $3}' <<<"$out")
check_eq "requests on a client keep-alive connection go through one upstream connection" $((n1 + 2)) "$n3"
out=$(printf 'GET /name/p1 HTTP/1.1\r\nHost: a\r\n\r\nGET /name/p2 HTTP/1.1\r\nHost: a\r\n\r\nGET /name/p3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' |
	timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; cat >&3; cat <&3" | grep -o '"path":"[^"]*"' | tr '\n' ' ')
check_eq "pipelined requests answered in order" '"path":"/p1" "path":"/p2" "path":"/p3" ' "$out"
out=$(printf 'GET /name/old HTTP/1.0\r\n\r\n' | timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; cat >&3; cat <&3")
check_contains "HTTP/1.0 client: answered" '"path":"/old"' "$out"
check_contains "and closed" "Connection: close" "$out"
out=$(curl -s -0 -i "$URL/name/chunked?n=3&size=5")
check_not_contains "HTTP/1.0 client: no chunked coding" "chunked" "$out"
check_eq "the body ends with the connection, complete" 15 "$(curl -s -0 "$URL/name/chunked?n=3&size=5" | wc -c)"

# Bodies, both ways, both framings.
head -c 3000000 /dev/urandom > "$STATE/body"
check_true "a Content-Length body streams there and back" \
	sh -c "curl -s --data-binary @$STATE/body $URL/name/echo-body | cmp -s - $STATE/body"
check_true "a chunked body too" \
	sh -c "curl -s -H 'Transfer-Encoding: chunked' --data-binary @$STATE/body $URL/name/echo-body | cmp -s - $STATE/body"
out=$(curl -s -i "$URL/name/chunked?n=4&size=8")
check_contains "a chunked response stays chunked" "Transfer-Encoding: chunked" "$(tr -d '\r' <<<"$out")"
check_eq "with all its bytes" 32 "$(curl -s "$URL/name/chunked?n=4&size=8" | wc -c)"
out=$(curl -s -H 'Expect: 100-continue' --data-binary @"$STATE/body" -w '%{http_code}' "$URL/name/x")
check_contains "Expect: 100-continue: the body follows the 100 and arrives" '"body_length":3000000' "$out"
check_eq "HEAD: the GET's headers, no body" "Content-Length: 1000" \
	"$(curl -s -I "$URL/name/bytes?n=1000" | tr -d '\r' | grep Content-Length)"

# WebSocket: echoed through a tunnel; an open one keeps its instance awake.
out=$("$WS" 127.0.0.1 "$PORT" /name/ws 3)
check_eq "WebSocket: 101, three echoes, clean close" \
	"$(printf 'status 101\necho: message-0\necho: message-1\necho: message-2\nclosed 1000')" "$out"
out=$("$WS" 127.0.0.1 "$PORT" "/name/ws?close_after=1" 1)
check_contains "the instance's close reaches the client" "closed 1000" "$out"
check_contains "a non-101 answer is an ordinary response" "status 403" "$("$WS" 127.0.0.1 "$PORT" "/name/status?code=403" 1)"
curl -s -o /dev/null "$URL/sleepy/"
check_eq "sleepy started once" 1 "$(started Sleepy/z)"
out=$("$WS" 127.0.0.1 "$PORT" /sleepy/ws 8 400)
check_contains "a WebSocket open 2.8 s (sleepAfter 1s) keeps working" "echo: message-7" "$out"
check_eq "without the instance sleeping meanwhile" 1 "$(started Sleepy/z)"
wait_for "z asleep" 60 state_is Sleepy z stopped
check_true "after the last request it sleeps after sleepAfter" state_is Sleepy z stopped
check_eq "the next request wakes it" 200 "$(code "$URL/sleepy/")"
check_eq "a second start" 2 "$(started Sleepy/z)"
curl -s -o /dev/null "$URL/sleepy/slow?ms=1500" &
slow=$!
sleep 1.3
check_true "an open request keeps it awake past sleepAfter" state_is Sleepy z healthy
wait $slow

# Errors, each saying which instance and why.
out=$(curl -s -i "$URL/capped/one/"; curl -s -i "$URL/capped/two/")
check_contains "max_instances: 503" "HTTP/1.1 503" "$out"
check_contains "saying so" "X-Berth-Error: max_instances" "$out"
check_contains "naming the instance" "Capped/two" "$out"
out=$(curl -s -i "$URL/broken/")
check_contains "a start that fails: 500" "HTTP/1.1 500" "$out"
check_contains "failed to start container: why" "Broken/b: failed to start container: it exited with code 3" "$out"
out=$(curl -s -i -H 'cf-container-target-port: 9999' "$URL/name/")
check_contains "a port nobody listens on: 502" "HTTP/1.1 502" "$out"
check_contains "refused, and where" "Echo/fixed refused the connection on port 9999" "$out"
out=$(curl -s -i "$URL/name/slow?ms=3000")
check_contains "no answer within upstream_timeout: 504" "HTTP/1.1 504" "$out"
check_contains "saying so" "did not answer on port 8080 within 1000 ms" "$out"
out=$(curl -s -i "$URL/deaf/")
check_contains "an instance not ready within wait_timeout: 503" "HTTP/1.1 503" "$out"
check_contains "with Retry-After" "Retry-After:" "$out"
out=$(curl -s -i "$URL/mute/")
check_contains "a port that never answers within portReadyTimeoutMS: 504" "HTTP/1.1 504" "$out"
check_contains "saying which port" "X-Berth-Error: port_not_ready" "$out"
out=$(curl -s -i "$URL/name/close")
check_contains "the container resets the connection: 502" "HTTP/1.1 502" "$out"

# The container dies mid-response: the client sees a clean, prompt error.
id=$(api http://b/v1/classes/Echo/instances/fixed | field id)
curl -s --limit-rate 2M -o /dev/null "$URL/name/bytes?n=1000000000" 2> /dev/null &
cpid=$!
sleep 1
api -X POST http://b/v1/classes/Echo/instances/fixed/destroy > /dev/null
wait_for "curl ended" 50 sh -c "! kill -0 $cpid 2>/dev/null"
wait $cpid
rc=$?
check_true "killed mid-response: curl sees the transfer broken off (reset, 56; or short, 18), at once" \
	test "$rc" = 56 -o "$rc" = 18
check_eq "and the next request starts it again" fixed "$(curl -s "$URL/name/" | field hostname)"

# containerFetch over the control API: the same proxy, the instance from the URL.
F=http://b/v1/classes/Echo/instances/viafetch/fetch
out=$(api -i "$F/a%20b?x=1")
check_contains "fetch: the instance answers (started on demand)" "HTTP/1.1 200" "$out"
check_contains "the raw path and query reach it" '"path":"/a%20b","query":"x=1"' "$out"
check_contains "the instance the URL names" '"hostname":"viafetch"' "$out"
head -c 500000 /dev/urandom > "$STATE/small"
check_true "fetch: a body there and back" \
	sh -c "curl -s --unix-socket $SOCK --data-binary @$STATE/small $F/echo-body | cmp -s - $STATE/small"
check_eq "fetch: cf-container-target-port picks the port" 9090 "$(api -H 'cf-container-target-port: 9090' "$F/" | field port)"
check_contains "fetch to a closed port: 502 saying so" '"code":"connection_refused"' \
	"$(api -H 'cf-container-target-port: 9999' "$F/")"
check_eq "a large response streams through" 50000000 "$(api -o /dev/null -w '%{size_download}' "$F/bytes?n=50000000")"
check_contains "fetch on a failing class: 500" '"code":"start_failed"' "$(api http://b/v1/classes/Broken/instances/b/fetch/)"

# Busy polling (berth.proxy.busy_poll_us, 50 µs by default) follows the
# traffic: once the requests stop, berthd's loop sleeps again.
for _ in $(seq 300); do echo "url = \"$URL/name/\""; echo "output = /dev/null"; done > "$STATE/many.curl"
curl -s -K "$STATE/many.curl"
sleep 0.5
loop_cpu_ns() { awk '{print $1}' "/proc/$BERTHD/schedstat"; }
a=$(loop_cpu_ns)
sleep 2
b=$(loop_cpu_ns)
check_true "after 300 requests, idle: berthd's loop spent $(((b - a) / 1000)) µs on a CPU in 2 s (< 20 ms)" \
	test $((b - a)) -lt 20000000

kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly with the proxy running" 0 "$?"
check_not_contains "no errors logged" "ERROR" "$(cat "$STATE/berthd.log")"
finish
