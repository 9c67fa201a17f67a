#!/bin/bash
# berthd as a systemd service, with a stand-in for systemd's notify socket
# (build/tests/notify-recv): READY=1 once the control API answers, STATUS=
# with the instance count, watchdog pings from the event loop, the reload
# and stop protocol, journal-style logs, and the example unit file.
. "$(dirname "$0")/lib.sh"

TOOLS=${BERTH_TOOLS:-$E2E_ROOT/build/tests}
if [ ! -x "$TOOLS/notify-recv" ]; then
	echo "  FAIL no $TOOLS/notify-recv (run: make)"
	exit 1
fi

SOCK=$STATE/berth.sock
CONFIG=$STATE/berth.jsonc
NSOCK=$STATE/notify.sock
NLOG=$STATE/notify.log
cat > "$CONFIG" <<JSON
{
  "containers": [
    {"class_name": "Echo", "image": "$ROOTFS", "defaultPort": 8080,
     "entrypoint": ["echo-server", "--port", "8080"], "stopGracePeriod": "2s"},
  ],
  "berth": {"state_dir": "$STATE/state", "api": {"socket": "$SOCK"}},
}
JSON

api() { curl -s --unix-socket "$SOCK" "$@"; }

"$TOOLS/notify-recv" "$NSOCK" "$NLOG" &
RECV=$!
stop_recv() { kill "$RECV" 2>/dev/null; wait "$RECV" 2>/dev/null; cleanup_e2e; }
trap stop_recv EXIT
wait_for "the notify socket" 30 test -S "$NSOCK"

# Lines of the notify log sent by pid $1 (the receiver records each sender's pid).
from() { grep -P "^\d+\tpid=$1\t" "$NLOG"; }
# The number of datagrams from pid $1 with assignment $2 (READY=1, ...).
count() { from "$1" | grep -cP "\t\Q$2\E(\t|$)"; }

# The watchdog belongs to the process named by WATCHDOG_PID: the subshell's
# pid, which exec makes berthd's.
(
	export NOTIFY_SOCKET=$NSOCK WATCHDOG_USEC=400000 WATCHDOG_PID=$BASHPID
	exec "$BERTH_BIN/berthd" --config "$CONFIG" --log-format=journal
) > "$STATE/berthd.out" 2> "$STATE/berthd.err" &
BERTHD=$!

# READY=1: sent once the control API listens, so it answers at once.
wait_for "READY=1" 50 sh -c "grep -qP '\tpid=$BERTHD\tREADY=1' '$NLOG'"
health=$(api http://b/v1/health)
check_contains "READY=1 arrives, and the API answers by then" '"status":"ok"' "$health"
check_eq "READY=1 came from berthd itself (NotifyAccess=main)" 1 "$(count "$BERTHD" READY=1)"
check_contains "with a STATUS=" "STATUS=0 instances active, 1 container class" \
	"$(from "$BERTHD" | grep -P '\tREADY=1')"
check_eq "the first message is READY=1 (the pings start with the loop)" \
	"READY=1" "$(from "$BERTHD" | head -n 1 | cut -f3)"

# The watchdog: 400 ms, so a ping every 200 ms from a timer on the loop.
before=$(count "$BERTHD" WATCHDOG=1)
sleep 1.5
after=$(count "$BERTHD" WATCHDOG=1)
n=$((after - before))
if [ "$n" -ge 3 ]; then pass "WATCHDOG=1 repeatedly ($n in 1.5 s)"; else
	fail "WATCHDOG=1 repeatedly" "expected at least 3 in 1.5 s, got $n"; fi

# STATUS= follows the number of instances.
out=$(api -X POST http://b/v1/classes/Echo/instances/alice/start)
check_contains "an instance starts" '"status":"healthy"' "$out"
wait_for "STATUS= with one instance" 30 sh -c "grep -qP '\tpid=$BERTHD\t.*STATUS=1 instance active' '$NLOG'"
check_contains "STATUS= follows the instance count" "STATUS=1 instance active, 1 container class" \
	"$(from "$BERTHD" | tail -n 5)"
check_eq "and is sent only when it changes" 1 \
	"$(from "$BERTHD" | grep -c 'STATUS=1 instance active')"

# Reload: RELOADING=1 with the time of the reload, then READY=1.
mark=$(wc -l < "$NLOG")
kill -HUP "$BERTHD"
wait_for "READY=1 after SIGHUP" 30 sh -c "tail -n +$((mark + 1)) '$NLOG' | grep -qP '\tpid=$BERTHD\tREADY=1'"
seq=$(tail -n +$((mark + 1)) "$NLOG" | grep -P "\tpid=$BERTHD\t" | cut -f3 | grep -v WATCHDOG | head -n 2 | tr '\n' ' ')
check_eq "SIGHUP: RELOADING=1, then READY=1" "RELOADING=1 READY=1 " "$seq"
line=$(tail -n +$((mark + 1)) "$NLOG" | grep -P "\tpid=$BERTHD\tRELOADING=1" | head -n 1)
recv_ms=$(cut -f1 <<<"$line")
usec=$(grep -oP 'MONOTONIC_USEC=\K\d+' <<<"$line")
if [ -n "$usec" ] && [ $((recv_ms - usec / 1000)) -ge 0 ] && [ $((recv_ms - usec / 1000)) -lt 1000 ]; then
	pass "RELOADING=1 carries MONOTONIC_USEC= (CLOCK_MONOTONIC, now)"
else
	fail "RELOADING=1 carries MONOTONIC_USEC= (CLOCK_MONOTONIC, now)" "line: $line"
fi

# A reload of a broken file: READY=1 all the same (the old configuration
# runs), and STATUS= says so.
cp "$CONFIG" "$STATE/good.jsonc"
echo "{ broken" > "$CONFIG"
mark=$(wc -l < "$NLOG")
kill -HUP "$BERTHD"
wait_for "READY=1 after a failed reload" 30 sh -c "tail -n +$((mark + 1)) '$NLOG' | grep -qP '\tpid=$BERTHD\tREADY=1'"
check_contains "a failed reload ends with READY=1 and says so in STATUS=" \
	"STATUS=1 instance active, 1 container class; the last reload failed" \
	"$(tail -n +$((mark + 1)) "$NLOG" | grep -P "\tpid=$BERTHD\tREADY=1")"
cp "$STATE/good.jsonc" "$CONFIG"

# The loop never missed its watchdog interval, through starts and reloads.
gap=$(from "$BERTHD" | grep -P '\tWATCHDOG=1' | awk -F'\t' 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { print m + 0 }')
if [ "$gap" -lt 400 ]; then pass "no gap of a whole watchdog interval between pings (longest $gap ms)"; else
	fail "no gap of a whole watchdog interval between pings" "longest gap: $gap ms"; fi

# SIGTERM: STOPPING=1 first, while the instance still runs; then exit.
mark=$(wc -l < "$NLOG")
kill -TERM "$BERTHD"
wait "$BERTHD"
check_eq "SIGTERM: berthd exits 0" 0 "$?"
stopping=$(tail -n +$((mark + 1)) "$NLOG" | grep -P "\tpid=$BERTHD\tSTOPPING=1")
check_contains "STOPPING=1 is sent when shutdown begins" "STATUS=stopping: 1 instance left" "$stopping"
check_eq "and nothing claims READY=1 after it" "" \
	"$(tail -n +$((mark + 1)) "$NLOG" | grep -P "\tpid=$BERTHD\tREADY=1")"

# The logs of that run: --log-format=journal prefixes every line with its
# priority and leaves the program name and time to the journal.
err=$(cat "$STATE/berthd.err")
check_contains "journal format: info lines start with <6>" "<6>ready: 1 container class" "$err"
check_contains "an error line starts with <3>" "<3>reload: the configuration has errors" "$err"
check_contains "so do the configuration's problems" "<3>$CONFIG:1:" "$err"
check_eq "every line has a priority prefix" "" "$(grep -vP '^<[0-7]>' "$STATE/berthd.err")"
check_not_contains "no program-name prefix" "berthd: " "$(grep -P '^<[0-7]>' "$STATE/berthd.err")"

# auto: the journal format exactly when $JOURNAL_STREAM names stderr; a
# WATCHDOG_PID of another process turns the watchdog off.
: > "$STATE/auto.err"
stream=$(stat -c '%d:%i' "$STATE/auto.err")
(
	export NOTIFY_SOCKET=$NSOCK WATCHDOG_USEC=100000 WATCHDOG_PID=1 JOURNAL_STREAM=$stream
	exec "$BERTH_BIN/berthd" --config "$CONFIG"
) 2>> "$STATE/auto.err" &
B2=$!
wait_for "READY=1 of the second berthd" 50 sh -c "grep -qP '\tpid=$B2\tREADY=1' '$NLOG'"
sleep 0.5
check_eq "WATCHDOG_PID of another process: no pings" 0 "$(count "$B2" WATCHDOG=1)"
kill -TERM "$B2"
wait "$B2"
check_contains "auto with \$JOURNAL_STREAM naming stderr: journal format" "<6>ready:" \
	"$(cat "$STATE/auto.err")"
check_eq "STOPPING=1 without a watchdog too" 1 "$(count "$B2" STOPPING=1)"

(
	export JOURNAL_STREAM=$stream
	exec "$BERTH_BIN/berthd" --config "$CONFIG"
) 2> "$STATE/text.err" &
B3=$!
wait_for "the API of the third berthd" 50 test -S "$SOCK"
wait_for "its ready line" 30 grep -q "ready:" "$STATE/text.err"
kill -TERM "$B3"
wait "$B3"
check_contains "auto when \$JOURNAL_STREAM names another file: text" "berthd: ready:" \
	"$(cat "$STATE/text.err")"
check_eq "no NOTIFY_SOCKET: nothing sent" 0 "$(from "$B3" | wc -l)"

out=$("$BERTH_BIN/berthd" --config "$CONFIG" --log-format=syslog 2>&1)
check_eq "a bad --log-format: usage error" 2 "$?"
check_contains "which names the choices" "\`syslog\` is not a log format (use auto, journal or text)" "$out"

# The example unit file, checked by systemd itself where it is installed
# (the binary path pointed at the one under test).
UNIT=$E2E_ROOT/examples/systemd/berthd.service
if command -v systemd-analyze > /dev/null; then
	mkdir -p "$STATE/unit"
	sed "s|/usr/local/bin/berthd|$BERTH_BIN/berthd|" "$UNIT" > "$STATE/unit/berthd.service"
	out=$(systemd-analyze verify --man=no "$STATE/unit/berthd.service" 2>&1)
	check_eq "systemd-analyze verify berthd.service: no complaints" "" "$out"
else
	echo "  (systemd-analyze is not installed: the unit file is checked only for its settings)"
fi
check_contains "the unit is Type=notify" "Type=notify" "$(cat "$UNIT")"
check_contains "with the watchdog" "WatchdogSec=30s" "$(cat "$UNIT")"
check_contains "and KillMode=process" "KillMode=process" "$(cat "$UNIT")"

finish
