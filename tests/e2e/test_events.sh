#!/bin/bash
# GET /v1/events: every transition as a server-sent event, live and from
# history, filtered by class or instance, resumable with Last-Event-ID.
. "$(dirname "$0")/lib.sh"

SOCK=$STATE/berth.sock
cat > "$STATE/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "Echo", "image": "$ROOTFS", "defaultPort": 8080,
     "entrypoint": ["echo-server", "--port", "8080"]},
    {"class_name": "Other", "image": "$ROOTFS", "entrypoint": ["sh", "-c", "exit 3"]},
  ],
  "berth": {"state_dir": "$STATE/state", "api": {"socket": "$SOCK"}},
}
JSON
api() { curl -s --unix-socket "$SOCK" "$@"; }
"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" > "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 test -S "$SOCK"

# A live subscriber to class Echo, from now on.
curl -sN --unix-socket "$SOCK" "http://b/v1/events?class=Echo" > "$STATE/live.txt" &
LIVE=$!
sleep 0.3
api -X POST http://b/v1/classes/Echo/instances/alice/start > /dev/null
api -X POST http://b/v1/classes/Other/instances/o/start > /dev/null
api -X POST http://b/v1/classes/Echo/instances/alice/stop > /dev/null
wait_for "alice's exit event" 50 grep -q "event: exited" "$STATE/live.txt"
kill $LIVE 2>/dev/null
wait $LIVE 2>/dev/null
types=$(sed -n 's/^event: //p' "$STATE/live.txt" | tr '\n' ' ')
check_eq "live: Echo's transitions, in order" "start ready stop exited " "$types"
check_not_contains "live: the class filter keeps Other out" '"class":"Other"' "$(cat "$STATE/live.txt")"
check_contains "an exit event says how it ended" '"exitCode":143,"signal":15,"oom":false,"reason":"stop_requested"' \
	"$(grep '"type":"exited"' "$STATE/live.txt")"

# History: everything since the start, or after a given event.
all=$(curl -s --max-time 1 --unix-socket "$SOCK" "http://b/v1/events?since=0")
check_contains "history includes Other's exit" '"class":"Other","instance"' "$all"
check_contains "with its code" '"exitCode":3' "$all"
ids=$(sed -n 's/^id: //p' <<<"$all" | tr '\n' ' ')
check_eq "history ids are 1, 2, 3, ... in order" "$(seq -s ' ' 1 "$(wc -w <<<"$ids")") " "$ids"
second=$(sed -n 's/^id: //p' <<<"$all" | sed -n 2p)
rest=$(curl -s --max-time 1 -H "Last-Event-ID: $second" --unix-socket "$SOCK" "http://b/v1/events")
check_eq "Last-Event-ID resumes after that event" "$(sed -n 's/^id: //p' <<<"$all" | sed 1,2d | tr '\n' ' ')" \
	"$(sed -n 's/^id: //p' <<<"$rest" | tr '\n' ' ')"
one=$(curl -s --max-time 1 --unix-socket "$SOCK" "http://b/v1/events?since=0&class=Other&name=o")
check_eq "an instance filter (class and name)" "start ready exited " "$(sed -n 's/^event: //p' <<<"$one" | tr '\n' ' ')"
hist=$(curl -s --max-time 5 --unix-socket "$SOCK" "http://b/v1/events?since=0&follow=0")
check_eq "follow=0: the answer ends (curl exits 0, no timeout)" 0 "$?"
check_eq "follow=0: the history, then the stream ends" "$(sed -n 's/^id: //p' <<<"$all" | tr '\n' ' ')" \
	"$(sed -n 's/^id: //p' <<<"$hist" | tr '\n' ' ')"
check_eq "a bad follow: 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://b/v1/events?follow=2")"
check_eq "a bad since: 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "http://b/v1/events?since=x")"

# The time of an event is the time of its state change.
last_change=$(api http://b/v1/classes/Echo/instances/alice/state | sed -n 's/.*"lastChange":\([0-9]*\).*/\1/p')
check_contains "the last event's time is the state's lastChange" "\"time\":$last_change," \
	"$(grep '"type":"exited"' "$STATE/live.txt")"

kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly with a subscriber gone" 0 "$?"
finish
