#!/bin/bash
# Lifecycle webhooks: onStart, onStop, onError and onActivityExpired POSTed
# to receivers of the test's own on 127.0.0.1 (tests/tools/hook-receiver.c),
# with retries (same event id), Retry-After, no retry of a 4xx, and neither
# a dead nor a hanging receiver holding up the API or berthd's shutdown.
. "$(dirname "$0")/lib.sh"

RECEIVER=$BERTH_BIN/../tests/hook-receiver
[ -x "$RECEIVER" ] || RECEIVER=$E2E_ROOT/build/tests/hook-receiver
if [ ! -x "$RECEIVER" ]; then
	echo "  FAIL no $RECEIVER (run make)"
	exit 1
fi

RECEIVERS=()
cleanup_hooks() {
	for p in "${RECEIVERS[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "${BERTHD:-}" ] && kill -KILL "$BERTHD" 2>/dev/null
	cleanup_e2e
}
trap cleanup_hooks EXIT

# receiver NAME [OPTIONS]: start one; its log is $STATE/NAME.log, its port in $PORT.
receiver() {
	local name=$1
	shift
	"$RECEIVER" --port-file "$STATE/$name.port" --log "$STATE/$name.log" "$@" \
		> /dev/null 2>> "$STATE/receivers.err" &
	RECEIVERS+=($!)
	wait_for "receiver $name" 50 test -s "$STATE/$name.port" || exit 1
	PORT=$(cat "$STATE/$name.port")
}
# What receiver $1 got for hook $2 of instance name $3: bodies, one a line.
bodies() { jq -c --arg h "$2" --arg n "$3" '.body | fromjson | select(.hook == $h and .name == $n)' "$STATE/$1.log"; }
requests() { jq -c --arg h "$2" --arg n "$3" 'select((.body | fromjson) as $b | $b.hook == $h and $b.name == $n)' "$STATE/$1.log"; }
jqok() { jq -e "$@" > /dev/null; }
count() { bodies "$@" | wc -l; }
got() { [ "$(count "$@")" -ge "${4:-1}" ]; }

receiver main && MAIN=$PORT
receiver flaky --fail 2 && FLAKY=$PORT
receiver busy --fail 1 --fail-status 503 --retry-after 3 && BUSY=$PORT
receiver gone --fail 1000 --fail-status 404 && GONE=$PORT
receiver hang --hang && HANG=$PORT
# A port nobody listens on: a receiver's, after it has gone.
receiver dead && DEAD=$PORT
kill "${RECEIVERS[-1]}"
wait "${RECEIVERS[-1]}" 2>/dev/null

hooks() { # hooks BASE_URL: all four hooks to one receiver
	echo "\"onStart\": \"$1/start\", \"onStop\": \"$1/stop\", \"onError\": \"$1/error\",
	 \"onActivityExpired\": \"$1/expired\""
}
SOCK=$STATE/berth.sock
SECRET=$(openssl rand -hex 32)
cat > "$STATE/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "Echo", "image": "$ROOTFS", "defaultPort": 8080, "sleepAfter": "2s",
     "entrypoint": ["echo-server", "--port", "8080"], $(hooks "http://127.0.0.1:$MAIN/echo")},
    {"class_name": "Long", "image": "$ROOTFS", "defaultPort": 8080,
     "entrypoint": ["echo-server", "--port", "8080"], $(hooks "http://127.0.0.1:$MAIN/long")},
    {"class_name": "Exit", "image": "$ROOTFS", "defaultPort": 8080,
     "entrypoint": ["sh", "-c", "sleep 0.2; exit 3"],
     $(hooks "http://127.0.0.1:$MAIN/exit")},
    {"class_name": "Flaky", "image": "$ROOTFS", "entrypoint": ["sleep", "60"],
     "onStart": "http://127.0.0.1:$FLAKY/", "onStop": "http://127.0.0.1:$MAIN/flaky/stop"},
    {"class_name": "Busy", "image": "$ROOTFS", "entrypoint": ["sleep", "60"],
     "onStart": "http://127.0.0.1:$BUSY/"},
    {"class_name": "Gone", "image": "$ROOTFS", "entrypoint": ["sleep", "60"],
     "onStart": "http://127.0.0.1:$GONE/"},
    {"class_name": "Dead", "image": "$ROOTFS", "entrypoint": ["sleep", "60"],
     $(hooks "http://127.0.0.1:$DEAD")},
    {"class_name": "Hang", "image": "$ROOTFS", "entrypoint": ["sleep", "60"],
     $(hooks "http://127.0.0.1:$HANG")},
  ],
  "berth": {"state_dir": "$STATE/state", "api": {"socket": "$SOCK"},
            "hooks": {"secret": "$SECRET"}},
}
JSON
api() { curl -s --unix-socket "$SOCK" "$@"; }
start() { api -X POST "http://b/v1/classes/$1/instances/$2/start"; }
"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" > "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 test -S "$SOCK"
# libcurl (and libarchive) are loaded when first needed (src/daemon/ondemand.c).
loaded() { grep -cE "/lib$1\.so" "/proc/$BERTHD/maps"; }
check_eq "an idle berthd has not loaded libcurl" 0 "$(loaded curl)"
check_eq "nor libarchive" 0 "$(loaded archive)"

# onStart once the instance answers; sleepAfter (2s) then brings
# onActivityExpired and onStop.
out=$(start Echo alice)
check_contains "Echo/alice starts" '"status":"healthy"' "$out"
alice=$(sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' <<<"$out")
wait_for "onStart of alice" 50 got main onStart alice
b=$(bodies main onStart alice)
check_eq "onStart: hook, class, name, id, event" "onStart Echo alice $alice ready" \
	"$(jq -r '"\(.hook) \(.class) \(.name) \(.id) \(.event)"' <<<"$b")"
check_true "onStart: seq and time are numbers" jqok '(.seq | type) == "number" and .time > 1600000000000' <<<"$b"
r=$(requests main onStart alice)
check_eq "sent as a POST to the onStart URL" "POST /echo/start" "$(jq -r '"\(.method) \(.target)"' <<<"$r")"
check_true "the first delivery loaded libcurl" test "$(loaded curl)" -gt 0
check_eq "Content-Type: application/json" "application/json" "$(jq -r '.headers["content-type"]' <<<"$r")"
check_eq "User-Agent: berth/VERSION" "berth/$("$BERTH_BIN/berthd" --version | cut -d' ' -f2)" \
	"$(jq -r '.headers["user-agent"]' <<<"$r")"
check_eq "X-Berth-Event-Id is the event's seq" "$(jq -r .seq <<<"$b")" "$(jq -r '.headers["x-berth-event-id"]' <<<"$r")"
# What a receiver does to know the request is berthd's: HMAC-SHA256 of the body.
hmac=$(jq -j .body <<<"$r" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.*= //')
check_eq "X-Berth-Signature: the body's HMAC-SHA256 with berth.hooks.secret" "sha256=$hmac" \
	"$(jq -r '.headers["x-berth-signature"]' <<<"$r")"
events=$(curl -s --max-time 1 --unix-socket "$SOCK" "http://b/v1/events?since=0&class=Echo&name=alice")
check_contains "the same seq as the ready event in /v1/events" "id: $(jq -r .seq <<<"$b")
event: ready" "$events"

wait_for "onActivityExpired of alice" 80 got main onActivityExpired alice
b=$(bodies main onActivityExpired alice)
check_eq "onActivityExpired: the stop event, reason activity_expired" "stop activity_expired $alice" \
	"$(jq -r '"\(.event) \(.reason) \(.id)"' <<<"$b")"
wait_for "onStop of alice" 80 got main onStop alice
b=$(bodies main onStop alice)
check_eq "onStop: the exit, with how it ended" "exited 143 15 false activity_expired" \
	"$(jq -r '"\(.event) \(.exitCode) \(.signal) \(.oom) \(.reason)"' <<<"$b")"

# An unrequested non-zero exit: onError and onStop, no onStart.
check_contains "Exit/x fails to start" '"start_failed"' "$(start Exit x)"
wait_for "onError of x" 50 got main onError x
wait_for "onStop of x" 50 got main onStop x
b=$(bodies main onError x)
check_eq "onError: the exit with code 3 and no reason" "exited 3 false null stopped_with_code" \
	"$(jq -r '"\(.event) \(.exitCode) \(.oom) \(.reason) \(.state)"' <<<"$b")"
check_eq "onStop for it too, same event" "$(jq -r .seq <<<"$b")" "$(bodies main onStop x | jq -r .seq)"

# A receiver that answers 500 twice: three attempts, one event id, then done.
start Flaky f > /dev/null
wait_for "three attempts of onStart" 100 got flaky onStart f 3
check_eq "3 attempts: 500, 500, 200" "500 500 200" "$(jq -r .status "$STATE/flaky.log" | tr '\n' ' ' | sed 's/ $//')"
check_eq "each with the same X-Berth-Event-Id" 1 "$(jq -r '.headers["x-berth-event-id"]' "$STATE/flaky.log" | sort -u | wc -l)"
check_eq "and the same body" 1 "$(jq -r .body "$STATE/flaky.log" | sort -u | wc -l)"
gaps=$(jq -s -r '[.[1].ms - .[0].ms, .[2].ms - .[1].ms] | map(tostring) | join(" ")' "$STATE/flaky.log")
check_true "backoff: about 1 s, then about 2 s (got $gaps ms)" \
	jqok -s '(.[1].ms - .[0].ms) >= 900 and (.[2].ms - .[1].ms) >= 1900 and (.[2].ms - .[1].ms) < 4000' "$STATE/flaky.log"

# 503 with Retry-After: 3 waits 3 s, not 1; a 404 is not retried.
start Busy b > /dev/null
start Gone g > /dev/null
wait_for "a second attempt after Retry-After" 80 got busy onStart b 2
check_true "Retry-After: 3 is honoured (got $(jq -s -r '.[1].ms - .[0].ms' "$STATE/busy.log") ms)" \
	jqok -s '(.[1].ms - .[0].ms) >= 2900' "$STATE/busy.log"
wait_for "berthd gives up on the 404" 50 grep -q "onStart of Gone/g (event [0-9]*) failed after 1 attempt: the receiver answered 404" "$STATE/berthd.log"
check_eq "the 404 was not retried" 1 "$(count gone onStart g)"

# A receiver that never answers, and one where nothing listens: the API does
# not wait for them.
start Dead d > /dev/null
start Hang h > /dev/null
wait_for "the hanging receiver has the request" 50 got hang onStart h
slowest=0
for i in $(seq 1 10); do
	t=$(curl -s -o /dev/null -w '%{time_total}' --unix-socket "$SOCK" http://b/v1/classes/Hang/instances/h/state)
	slowest=$(echo "$t $slowest" | awk '{print ($1 > $2) ? $1 : $2}')
done
check_true "state answers within 1 s while a delivery hangs 10 s (slowest: ${slowest}s)" \
	awk "BEGIN { exit !($slowest < 1) }"
check_contains "a new start still works meanwhile" '"status":"healthy"' "$(start Long l)"
wait_for "a retry to the dead URL" 50 grep -q "onStart of Dead/d (event [0-9]*): .*attempt 2 of 5" "$STATE/berthd.log"

# Nothing more came than was due: exactly once after the retries, no onError
# for a requested stop, no onStart for a container that never became ready.
check_eq "flaky: no attempt after the 200" 3 "$(wc -l < "$STATE/flaky.log")"
check_eq "no onError for alice (asked to stop)" 0 "$(count main onError alice)"
check_eq "no onStart for x (never ready)" 0 "$(count main onStart x)"

# SIGTERM: the containers stop, their onStop deliveries get their chance, the
# hanging and the dead one are abandoned within the grace period.
t0=$(date +%s%N)
kill -TERM "$BERTHD"
wait "$BERTHD"
status=$?
elapsed=$((($(date +%s%N) - t0) / 1000000))
BERTHD=
check_eq "berthd exits 0" 0 "$status"
check_true "and within 6 s although deliveries hang (${elapsed} ms)" test "$elapsed" -lt 6000
check_eq "onStop of Long/l was delivered during shutdown" daemon_shutdown "$(bodies main onStop l | jq -r .reason)"
check_contains "the hanging deliveries were abandoned" "webhooks: abandoning" "$(cat "$STATE/berthd.log")"
check_contains "the dead URL's delivery failed for good" "onStart of Dead/d" \
	"$(grep "failed after" "$STATE/berthd.log")"
finish
