#!/bin/bash
# Live restore: containers outlive berthd (kill -9, or SIGTERM with
# --live-restore); the next berthd adopts them, keeps their state, and still
# records how they end. Their logs, kept by each container's init, go on.
. "$(dirname "$0")/lib.sh"

SOCK=$STATE/berth.sock
cat > "$STATE/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "Echo", "image": "$ROOTFS", "defaultPort": 8080,
     "entrypoint": ["echo-server", "--port", "8080"]},
    // Says hello every 0.1 s until /tmp/go appears, then exits with 7.
    {"class_name": "Waiter", "image": "$ROOTFS",
     "entrypoint": ["sh", "-c", "echo started; while [ ! -e /tmp/go ]; do echo tick; echo tock >&2; sleep 0.1; done; printf 'no newline'; exit 7"]},
  ],
  "berth": {"state_dir": "$STATE/state", "api": {"socket": "$SOCK"},
            "log": {"max_size": "4K", "max_files": 2}},
}
JSON
api() { curl -s --unix-socket "$SOCK" "$@"; }
start_berthd() {
	"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" "$@" >> "$STATE/berthd.log" 2>&1 &
	BERTHD=$!
	# A killed berthd leaves its socket file behind: wait for an answer.
	wait_for "the API" 50 curl -sf --unix-socket "$SOCK" http://b/v1/health
}
status_of() { api "http://b/v1/classes/$1/instances/$2/state" | sed -n 's/.*"status":"\([a-z_]*\)".*/\1/p'; }
id_of() { api "http://b/v1/classes/$1/instances/$2" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p'; }
# A process that has ended may stay a zombie for a while: its new parent, once
# berthd is gone, is whatever reaper the host has.
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
init_pid() { sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$STATE/state/containers/$1/init.json"; }
ppid_of() { awk '{print $4}' "/proc/$1/stat"; }
# The runtime's zygote, `berth-runtime serve`, a child of berthd $1.
zygote_of() { pgrep -P "$1" -f '^berth-runtime serve$' | head -1; }

start_berthd
api -X POST http://b/v1/classes/Echo/instances/alice/start > /dev/null
api -X POST http://b/v1/classes/Waiter/instances/w/start > /dev/null
api -X POST http://b/v1/classes/Waiter/instances/gone/start > /dev/null
ALICE=$(id_of Echo alice)
W=$(id_of Waiter w)
GONE=$(id_of Waiter gone)
check_eq "alice is healthy" healthy "$(status_of Echo alice)"
ALICE_PID=$(init_pid "$ALICE")
W_PID=$(init_pid "$W")
GONE_PID=$(init_pid "$GONE")
check_true "the init left its pid" test -n "$ALICE_PID"
ZYGOTE=$(zygote_of $BERTHD)
check_true "berthd runs the runtime's zygote" test -n "$ZYGOTE"
check_eq "alice's init is berthd's child, not the zygote's" "$BERTHD" "$(ppid_of "$ALICE_PID")"

# --- the container's log, written by its init ---
LOG=$STATE/state/logs/$W/container.log
wait_for "w's log" 30 grep -q tick "$LOG"
check_true "records are CRI: time, stream, F, the line" \
	grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z stdout F started$' "$LOG"
check_true "stderr is tagged as such" grep -q ' stderr F tock$' "$LOG"
wait_for "a rotation (4K files)" 100 test -e "$LOG.2"
check_true "rotated files stay within the bound" \
	test "$(stat -c %s "$LOG.1")" -le 4096 -a "$(stat -c %s "$LOG.2")" -le 4096
check_eq "at most max_files rotated files" "" "$(ls "$STATE/state/logs/$W" | grep -v -x -e container.log -e container.log.1 -e container.log.2)"

# --- kill -9: the containers live on ---
kill -9 $BERTHD
wait $BERTHD 2>/dev/null
check_true "alice's init survives berthd's kill -9" alive "$ALICE_PID"
wait_for "the zygote to end with berthd" 50 eval "! alive $ZYGOTE"
# Meanwhile: one container ends on its own (its word is left in a file) ...
touch "/proc/$W_PID/root/tmp/go"
wait_for "w to end" 50 eval "! alive $W_PID"
# ... and one is killed outright, leaving no word.
kill -9 "$GONE_PID"
before=$(wc -l < "$LOG")

start_berthd
check_eq "alice is still healthy after the restart" healthy "$(status_of Echo alice)"
check_contains "berthd says it adopted alice" "adopted its running container (pid $ALICE_PID)" "$(cat "$STATE/berthd.log")"
check_eq "w's exit while berthd was away is recorded" stopped_with_code "$(status_of Waiter w)"
check_contains "with its code" '"exitCode":7' "$(api http://b/v1/classes/Waiter/instances/w/state)"
check_contains "the unterminated last line is in the log as a part" " stdout P no newline" "$(tail -n 3 "$LOG")"
check_contains "GET .../logs serves the records the init wrote" "stdout P no newline" \
	"$(api "http://b/v1/classes/Waiter/instances/w/logs?tail=1")"
check_eq "from every file, across rotations, in order" "$(cat "$LOG.2" "$LOG.1" "$LOG" | wc -l)" \
	"$(api http://b/v1/classes/Waiter/instances/w/logs | wc -l)"
check_contains "berth logs prints the content" "no newline" "$(BERTH_SOCKET=$SOCK "$BERTH_BIN/berth" logs Waiter/w --tail 1)"
check_eq "a container that ended without a word: stopped_with_code" stopped_with_code "$(status_of Waiter gone)"
check_not_contains "... with no made-up exit code" exitCode "$(api http://b/v1/classes/Waiter/instances/gone/state)"
check_contains "... and an event that says so" '"exitUnknown":true' \
	"$(curl -s --max-time 1 --unix-socket "$SOCK" "http://b/v1/events?since=0&class=Waiter&name=gone")"
wait_for "w's remains to be removed" 30 sh -c "! test -e $STATE/state/containers/$W"
check_true "the ended containers are cleaned up" sh -c "! test -e $STATE/state/containers/$GONE"

# The adopted container works as before: stop it, and its exit is recorded.
api -X POST http://b/v1/classes/Echo/instances/alice/stop > /dev/null
wait_for "alice to stop" 50 sh -c "[ \"\$(curl -s --unix-socket $SOCK http://b/v1/classes/Echo/instances/alice/state | grep -o stopped)\" ]"
check_contains "alice's later exit is recorded (SIGTERM)" '"type":"exited","data":{"name":"alice","state":"stopped","exitCode":143' \
	"$(curl -s --max-time 1 --unix-socket "$SOCK" "http://b/v1/events?since=0&class=Echo&name=alice")"
check_true "alice's init is gone" eval "! alive $ALICE_PID"
wait_for "alice's remains to be removed" 30 sh -c "! test -e $STATE/state/containers/$ALICE"
check_true "nothing left of alice" sh -c "! test -e $STATE/state/containers/$ALICE"

# --- SIGTERM with --live-restore leaves them running ---
api -X POST http://b/v1/classes/Echo/instances/bob/start > /dev/null
BOB=$(id_of Echo bob)
BOB_PID=$(init_pid "$BOB")
kill -TERM $BERTHD
wait $BERTHD
check_true "without --live-restore, SIGTERM stops bob" eval "! alive $BOB_PID"
start_berthd --live-restore
api -X POST http://b/v1/classes/Echo/instances/bob/start > /dev/null
BOB_PID=$(init_pid "$BOB")
ZYGOTE=$(zygote_of $BERTHD)
kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd --live-restore exits 0 on SIGTERM" 0 "$?"
check_true "and leaves bob running" alive "$BOB_PID"
wait_for "the zygote to end with berthd, leaving bob" 50 eval "! alive $ZYGOTE"
check_true "bob still runs" alive "$BOB_PID"
start_berthd
check_eq "bob is healthy under the next berthd" healthy "$(status_of Echo bob)"
check_eq "and answers on its port" 200 "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST http://b/v1/classes/Echo/instances/bob/start)"
api -X POST http://b/v1/classes/Echo/instances/bob/destroy > /dev/null
wait_for "bob to be destroyed" 50 eval "! alive $BOB_PID"
kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly" 0 "$?"
for id in "$ALICE" "$W" "$GONE" "$BOB"; do
	[ -e "$STATE/state/containers/$id" ] && fail "container dir of $id left" && continue
done
pass "no container directories left"
finish
