#!/bin/bash
# containerFetch over the control API (`ANY .../fetch/{path}`) as its clients
# see it: request bodies of any size streamed to the instance (Content-Length
# and chunked) with berthd's memory bounded, berth.proxy.max_body_size, a
# response the instance cuts short seen as cut, and WebSocket upgrades
# tunnelled to the instance (started on demand, kept awake, closed both ways).
. "$(dirname "$0")/lib.sh"

SOCK=$STATE/berth.sock
CONFIG=$STATE/berth.jsonc
PORT=$((20000 + RANDOM % 20000))
APIPORT=$((PORT + 1))
TOKEN=fetch-test-token-0123456789
WS=${BERTH_TOOLS:-$E2E_ROOT/build/tests}/ws-client
cat > "$CONFIG" <<JSON
{
  "containers": [
    {"class_name": "Echo", "image": "$ROOTFS", "defaultPort": 8080, "max_instances": 10,
     "entrypoint": ["echo-server", "--port", "8080"]},
    {"class_name": "Sleepy", "image": "$ROOTFS", "defaultPort": 8080, "sleepAfter": "1s",
     "entrypoint": ["echo-server", "--port", "8080"]},
  ],
  "berth": {
    "state_dir": "$STATE/state", "listen": "127.0.0.1:$PORT",
    "api": {"socket": "$SOCK", "listen": "127.0.0.1:$APIPORT", "token": "$TOKEN"},
    "proxy": {"max_body_size": "110M"},
  },
}
JSON

api() { curl -s --unix-socket "$SOCK" "$@"; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
started() { grep -c "instance $1: started" "$STATE/berthd.log"; }
state_is() { api "http://b/v1/classes/$1/instances/$2/state" | grep -q "\"$3\""; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$BERTHD/status"; }
peak() { awk '/VmHWM/ {print $2}' "/proc/$BERTHD/status"; }

# Under ASan, freed memory waits in a quarantine, which would count as growth.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0" "$BERTH_BIN/berthd" --config "$CONFIG" >> "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 api -o /dev/null http://b/v1/health

F=http://b/v1/classes/Echo/instances/up/fetch
head -c 100M /dev/urandom > "$STATE/big"
sum=$(sha256sum "$STATE/big" | cut -d' ' -f1)
check_eq "fetch: the instance answers (started on demand)" up "$(api "$F/" | field hostname)"
# Peak RSS from here (writing 5 to clear_refs resets VmHWM to the current RSS).
echo 5 > "/proc/$BERTHD/clear_refs"
rss0=$(rss)

# Large bodies stream through, whole, both framings.
out=$(api -X POST -T "$STATE/big" "$F/count")
check_eq "a 100 MiB Content-Length upload arrives whole: its size" 104857600 "$(field body_length <<<"$out")"
check_eq "and its checksum" "$sum" "$(field body_sha256 <<<"$out")"
check_eq "sent on as Content-Length" 104857600 "$(field content-length <<<"$out")"
out=$(api -X POST -T - "$F/count" < "$STATE/big")
check_eq "a 100 MiB chunked upload arrives whole: its size" 104857600 "$(field body_length <<<"$out")"
check_eq "and its checksum" "$sum" "$(field body_sha256 <<<"$out")"
check_eq "sent on chunked" chunked "$(field transfer-encoding <<<"$out")"
peak1=$(peak)
check_true "berthd's peak RSS stayed within 8 MiB of idle (${rss0}→${peak1} KiB)" \
	test $((peak1 - rss0)) -lt 8192
head -c 20M "$STATE/big" > "$STATE/mid"
check_true "a 20 MiB body echoed while it uploads (both ways at once)" \
	sh -c "curl -s --unix-socket $SOCK -X POST -T $STATE/mid $F/echo-body | cmp -s - $STATE/mid"
out=$(curl -s -H "Authorization: Bearer $TOKEN" -X POST -T "$STATE/mid" \
	"http://127.0.0.1:$APIPORT/v1/classes/Echo/instances/up/fetch/count")
check_eq "over the TCP API with the token too" 20971520 "$(field body_length <<<"$out")"
check_not_contains "whose token does not reach the container" "$TOKEN" "$out"
check_eq "without the token: 401" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' --data-binary x \
		"http://127.0.0.1:$APIPORT/v1/classes/Echo/instances/up/fetch/count")"

# berth.proxy.max_body_size bounds it.
truncate -s 120M "$STATE/huge"
out=$(api -i -X POST -T "$STATE/huge" "$F/count")
check_contains "a Content-Length past max_body_size: 413" "HTTP/1.1 413" "$out"
out=$(api -i -X POST -T - "$F/count" < "$STATE/huge")
check_contains "a chunked body that passes it: 413 too" "HTTP/1.1 413" "$out"
check_contains "saying which limit" "berth.proxy.max_body_size (115343360 bytes)" "$out"
check_eq "and the instance serves on" up "$(api "$F/" | field hostname)"

# A response the instance breaks off is seen broken off, not whole.
api -o "$STATE/half" "$F/half?n=100000"
rc=$?
check_eq "a response cut short by the instance: curl sees the transfer cut (18)" 18 "$rc"
check_eq "after what did come" 50000 "$(wc -c < "$STATE/half")"
check_eq "a whole response is whole" 100000 "$(api "$F/bytes?n=100000" | wc -c)"

# The response's framing as the instance gave it: a length stays a length.
out=$(api -D - -o /dev/null "$F/bytes?n=100000" | tr -d '\r')
check_contains "a Content-Length response keeps its length" "Content-Length: 100000" "$out"
check_not_contains "and is not re-chunked" "Transfer-Encoding" "$out"
check_contains "a chunked response stays chunked" "Transfer-Encoding: chunked" \
	"$(api -D - -o /dev/null "$F/chunked?n=3&size=5" | tr -d '\r')"
check_contains "HEAD: the length a GET would have" "Content-Length: 4321" \
	"$(api -I "$F/bytes?n=4321" | tr -d '\r')"
out=$(api -D - -o /dev/null "$F/status?code=204" | tr -d '\r')
check_contains "204 passes as 204" "HTTP/1.1 204" "$out"
check_not_contains "without a length" "Content-Length" "$out"

# WebSocket through .../fetch/: the instance started on demand, echoes, closes both ways.
W=/v1/classes/Echo/instances/wsnew/fetch
out=$("$WS" "$SOCK" 80 "$W/ws" 3)
check_eq "WebSocket via fetch: 101, three echoes, clean close" \
	"$(printf 'status 101\necho: message-0\necho: message-1\necho: message-2\nclosed 1000')" "$out"
check_eq "its instance started on demand, once" 1 "$(started Echo/wsnew)"
out=$("$WS" "$SOCK" 80 "$W/ws?close_after=1" 1)
check_contains "the instance's close reaches the client" "closed 1000" "$out"
check_contains "a non-101 answer is an ordinary response" "status 403" \
	"$("$WS" "$SOCK" 80 "$W/status?code=403" 1)"
out=$(WS_CLIENT_HEADER="Authorization: Bearer $TOKEN" "$WS" 127.0.0.1 "$APIPORT" "$W/ws" 2)
check_eq "WebSocket via fetch over the TCP API, with the token" \
	"$(printf 'status 101\necho: message-0\necho: message-1\nclosed 1000')" "$out"
check_contains "without it: 401, no tunnel" "status 401" "$("$WS" 127.0.0.1 "$APIPORT" "$W/ws" 1)"

# The tunnel holds the instance awake; when the client goes, so does the tunnel.
S=/v1/classes/Sleepy/instances/z/fetch
out=$("$WS" "$SOCK" 80 "$S/ws" 8 400)
check_contains "a WebSocket open 2.8 s (sleepAfter 1s) keeps working" "echo: message-7" "$out"
check_eq "without the instance sleeping meanwhile" 1 "$(started Sleepy/z)"
wait_for "z asleep" 60 state_is Sleepy z stopped
"$WS" "$SOCK" 80 "$S/ws" 100 400 > "$STATE/ws-killed" &
wsp=$!
wait_for "the tunnel up" 50 grep -q "echo: message-2" "$STATE/ws-killed"
check_eq "a second tunnel woke it" 2 "$(started Sleepy/z)"
kill -KILL $wsp
wait $wsp 2>/dev/null
wait_for "z asleep again" 60 state_is Sleepy z stopped
check_true "a client that vanishes ends its tunnel: the instance sleeps after sleepAfter" \
	state_is Sleepy z stopped

kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly" 0 "$?"
check_not_contains "no errors logged" "ERROR" "$(cat "$STATE/berthd.log")"
finish
