#!/bin/bash
# The daemon's commands of the CLI, driven only through bin/berth against a
# real berthd (on its unix socket and on TCP with a token): what a person
# reads, what --json gives, exit statuses, and the messages of failures.
. "$(dirname "$0")/lib.sh"

SOCK=$STATE/berth.sock
TOKEN=cli-test-token-0123456789
berth() { "$BERTH_BIN/berth" "$@"; }

# A free TCP port on the loopback for the API (and one for the fake below).
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return 0; }
	done
	return 1
}
PORT=$(free_port)

cat > "$STATE/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "Echo", "image": "$ROOTFS", "defaultPort": 8080, "max_instances": 3,
     "entrypoint": ["echo-server", "--port", "8080"], "stopGracePeriod": "3s"},
    {"class_name": "Other", "image": "$ROOTFS", "instance_type": {"vcpu": 0.25, "memory_mib": 128},
     "sleepAfter": "90s", "entrypoint": ["sh", "-c", "exit 3"]},
  ],
  "berth": {"state_dir": "$STATE/state",
            "api": {"socket": "$SOCK", "listen": "127.0.0.1:$PORT", "token": "$TOKEN"}},
}
JSON
"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" > "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 test -S "$SOCK"
export BERTH_SOCKET=$SOCK

echo "-- classes"
out=$(berth classes)
check_eq "classes: the header" "CLASS   IMAGE" "$(head -1 <<<"$out" | cut -c1-13)"
check_true "classes: Echo with its type, port, sleepAfter and max" \
	grep -qE "^Echo +$ROOTFS +lite +8080 +10m +3$" <<<"$out"
check_true "classes: Other with its own limits, no port, no max" \
	grep -qE "^Other +$ROOTFS +0.25 vCPU, 128 MiB +- +1m30s +-$" <<<"$out"
check_eq "classes --json: the API's objects" "Echo Other" \
	"$(berth classes --json | jq -r '[.classes[].name] | join(" ")')"

echo "-- start, ps, state, inspect"
check_eq "ps with nothing running: the header only" "CLASS   NAME   STATE   LAST CHANGE   EXIT" "$(berth ps)"
out=$(berth start Echo/alice -e GREETING=hi -l team=a)
check_eq "start waits until ready" "Echo/alice: healthy" "$out"
out=$(berth ps)
check_true "ps lists the running instance" grep -qE "^Echo +alice +healthy +(just now|[0-9]+s ago) +-$" <<<"$out"
check_eq "ps --json: the records" "alice healthy" \
	"$(berth ps --json | jq -r '.instances[] | "\(.name) \(.state.status)"')"
check_true "state: the status and when" grep -qE "^healthy, since (just now|[0-9]+s ago)$" <<<"$(berth state Echo/alice)"
check_eq "state --json: the API's answer" "healthy" "$(berth state --json Echo/alice | jq -r .status)"
out=$(berth inspect Echo/alice)
check_eq "inspect: the record as indented JSON" "alice Echo healthy" \
	"$(jq -r '"\(.name) \(.class) \(.state.status)"' <<<"$out")"
check_true "inspect: indented" test "$(wc -l <<<"$out")" -gt 5
check_eq "a name that never ran is stopped" "stopped" "$(berth state Echo/nobody)"
check_eq "renew of a running instance" "Echo/alice: renewed" "$(berth renew Echo/alice)"
check_eq "start --json: the record" "healthy" "$(berth start --json Echo/alice | jq -r .state.status)"

# The entrypoint after `--` replaces the class's: its exit code shows.
out=$(berth start Other/seven -- sh -c 'exit 7')
check_eq "start with an entrypoint" 0 "$?"
seven_exited() { berth state Other/seven | grep -q "exit code 7"; }
wait_for "seven's exit" 50 seven_exited
check_true "state: stopped_with_code and the code" \
	grep -qE "^stopped_with_code \(exit code 7\), since" <<<"$(berth state Other/seven)"
check_eq "ps hides what is not active" "alice" "$(berth ps | awk 'NR>1 {print $2}' | tr '\n' ' ' | sed 's/ $//')"
check_true "ps --all shows it with its exit code" grep -qE "^Other +seven +stopped_with_code .* 7$" <<<"$(berth ps --all)"
check_eq "ps --class filters" "" "$(berth ps --all --class Echo | grep seven)"
check_eq "ps --class of a class that does not exist: an error" "berth: no container class \`Ech0\`" \
	"$(berth ps --class Ech0 2>&1)"

echo "-- stop, destroy"
out=$(berth stop Echo/alice --grace 1s)
check_eq "stop waits until stopped" "Echo/alice: stopped" "$out"
check_eq "the state agrees at once" "stopped" "$(berth state Echo/alice | cut -d, -f1)"
check_true "ps --all: the exit by SIGTERM" grep -qE "^Echo +alice +stopped .* 143 \(SIGTERM\)$" <<<"$(berth ps -a)"
berth start Echo/bob > /dev/null
check_eq "stop --signal KILL" "Echo/bob: stopped" "$(berth stop -s KILL Echo/bob)"
check_true "ps --all: killed" grep -qE "^Echo +bob +stopped .* 137 \(SIGKILL\)$" <<<"$(berth ps -a)"
berth start Echo/carol > /dev/null
check_eq "destroy" "Echo/carol: destroyed" "$(berth destroy Echo/carol)"
check_eq "destroyed: stopped" "stopped" "$(berth state Echo/carol | cut -d, -f1)"
check_eq "stop of a stopped instance" "Echo/alice: stopped" "$(berth stop Echo/alice)"

echo "-- failures"
err=$(berth renew Echo/alice 2>&1 >/dev/null)
check_eq "renew of a stopped instance fails" 1 "$(berth renew Echo/alice >/dev/null 2>&1; echo $?)"
check_eq "with berthd's message" "berth: Echo/alice has no running container to keep awake" "$err"
err=$(berth start Nope/x 2>&1)
check_eq "unknown class: exit 1" 1 "$?"
check_eq "unknown class: berthd's message" 'berth: no container class `Nope`' "$err"
check_eq "state of an unknown class: exit 1" 1 "$(berth state Nope/x >/dev/null 2>&1; echo $?)"
for bad in "stop" "stop Echo" "ps --bogus" "ps extra" "start Echo/x --env NOEQUALS" \
	"stop Echo/x --grace soon" "stop Echo/x --signal NOPE" "logs Echo/x --tail -1" \
	"events --name n" "inspect a/b/c" "nonsense" "ps --host 127.0.0.1" "logs --json Echo/x"; do
	# shellcheck disable=SC2086
	check_eq "usage error, exit 2: berth $bad" 2 "$(berth $bad >/dev/null 2>&1; echo $?)"
done
err=$(berth stop Echo 2>&1)
check_eq "a usage error says what and where to look" \
	'berth: `Echo` is not CLASS/NAME (e.g. Site/alice)
Run `berth stop --help` for its usage.' "$err"
err=$(berth --socket "$STATE/nothing.sock" ps 2>&1)
check_eq "daemon not there: exit 1" 1 "$?"
check_eq "daemon not there: the message" \
	"berth: cannot reach berthd at $STATE/nothing.sock: No such file or directory (is berthd running?)" "$err"
err=$(BERTH_SOCKET=$STATE/nothing.sock berth ps 2>&1)
check_contains "BERTH_SOCKET is where berth looks" "cannot reach berthd at $STATE/nothing.sock" "$err"

echo "-- help"
check_contains "berth help lists the daemon's commands" "events    print lifecycle events" "$(berth help)"
check_contains "berth help COMMAND" "usage: berth stop [OPTIONS] CLASS/NAME" "$(berth help stop)"
check_eq "berth COMMAND --help: exit 0" 0 "$(berth logs --help >/dev/null; echo $?)"
check_contains "berth COMMAND --help: the options" "--timestamps" "$(berth logs --help)"
check_contains "berth help run is run's" "usage: berth run" "$(berth help run)"

echo "-- events"
out=$(timeout 10 "$BERTH_BIN/berth" events)
check_eq "events without -f ends after the history" 0 "$?"
check_true "events: one line per event" \
	grep -qE '^[0-9-]{10}T[0-9:.]{12}Z  ready         Echo/alice state=healthy$' <<<"$out"
check_true "events: details as key=value" \
	grep -qE "  exited        Echo/alice state=stopped exitCode=143 signal=15 oom=false reason=stop_requested$" <<<"$out"
json=$(timeout 10 "$BERTH_BIN/berth" events --json --class Other --name seven)
check_eq "events --json --class --name: the API's objects" "start ready exited" \
	"$(jq -r .type <<<"$json" | tr '\n' ' ' | sed 's/ $//')"
first=$(jq -r .seq <<<"$json" | head -1)
check_eq "events --since SEQ: after that one" "ready exited" \
	"$(timeout 10 "$BERTH_BIN/berth" events --json --class Other --since "$first" | jq -r .type | tr '\n' ' ' | sed 's/ $//')"
# Following from the newest event on, so that nothing depends on when the stream connects.
last=$(timeout 10 "$BERTH_BIN/berth" events --json | tail -1 | jq .seq)
(exec "$BERTH_BIN/berth" events -f --since "$last" --class Echo > "$STATE/follow.txt" 2>&1) &
FOLLOW=$!
berth start Echo/dave > /dev/null
wait_for "dave's ready event" 50 grep -q "ready  *Echo/dave" "$STATE/follow.txt"
check_true "events -f: new events as they happen" grep -q "ready  *Echo/dave" "$STATE/follow.txt"
check_eq "events -f --since: nothing from before" "" "$(grep alice "$STATE/follow.txt")"
check_true "events -f: still running (following)" kill -0 $FOLLOW
kill $FOLLOW
wait $FOLLOW 2>/dev/null

echo "-- TCP with a token"
err=$(berth --host "127.0.0.1:$PORT" ps 2>&1)
check_eq "TCP without a token: exit 1" 1 "$?"
check_eq "TCP without a token: berthd's message" \
	'berth: a valid `Authorization: Bearer TOKEN` header is required' "$err"
err=$(BERTH_TOKEN=wrong berth --host "127.0.0.1:$PORT" ps 2>&1)
check_eq "TCP with a wrong token: berthd's message" \
	'berth: a valid `Authorization: Bearer TOKEN` header is required' "$err"
out=$(BERTH_TOKEN=$TOKEN berth --host "127.0.0.1:$PORT" ps)
check_true "TCP with the token (BERTH_TOKEN)" grep -qE "^Echo +dave +healthy" <<<"$out"
echo "$TOKEN" > "$STATE/token"
out=$(BERTH_HOST=http://127.0.0.1:$PORT/ berth state Echo/dave --token-file "$STATE/token")
check_contains "BERTH_HOST as a URL, --token-file" "healthy" "$out"
out=$(BERTH_HOST=127.0.0.1:$PORT BERTH_TOKEN=$TOKEN berth stop Echo/dave)
check_eq "a lifecycle command over TCP" "Echo/dave: stopped" "$out"

kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly" 0 "$?"
err=$(berth ps 2>&1)
check_contains "berthd gone: cannot reach" "berth: cannot reach berthd at $SOCK: " "$err"

echo "-- logs (against a fake of the endpoint: busybox httpd serving CRI records)"
FAKE=$STATE/fake
mkdir -p "$FAKE/v1/classes/Echo/instances/alice"
printf '%s\n' \
	"2024-05-01T12:00:00.000000001Z stdout F hello" \
	"2024-05-01T12:00:00.100000000Z stderr F oops" \
	"2024-05-01T12:00:01.000000000Z stdout P a long " \
	"2024-05-01T12:00:01.500000000Z stdout F line" > "$FAKE/v1/classes/Echo/instances/alice/logs"
FPORT=$(free_port)
"$ROOTFS/bin/busybox" httpd -f -p "127.0.0.1:$FPORT" -h "$FAKE" &
FAKED=$!
wait_for "the fake" 50 bash -c "exec 3<>/dev/tcp/127.0.0.1/$FPORT"
berth --host "127.0.0.1:$FPORT" logs Echo/alice > "$STATE/out.txt" 2> "$STATE/err.txt"
check_eq "logs: exit 0" 0 "$?"
check_eq "logs: stdout's lines, partial ones joined" "hello
a long line" "$(cat "$STATE/out.txt")"
check_eq "logs: stderr's lines to stderr" "oops" "$(cat "$STATE/err.txt")"
check_eq "logs -t: each line with its first record's time" \
	"2024-05-01T12:00:00.000000001Z hello
2024-05-01T12:00:01.000000000Z a long line" \
	"$(berth --host "127.0.0.1:$FPORT" logs -t --tail 10 Echo/alice 2>/dev/null)"
err=$(berth --host "127.0.0.1:$FPORT" logs Echo/nobody 2>&1)
check_eq "logs: an error answer without berthd's JSON" "berth: berthd answered HTTP 404 without an error message" "$err"
kill $FAKED
wait $FAKED 2>/dev/null
finish
