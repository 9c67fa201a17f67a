#!/bin/bash
# GET .../logs: an instance's CRI log records, oldest first across rotated
# files; tail=N, since, follow (across rotations, nothing lost or doubled),
# partial records held back, bounded memory. The test writes the log files
# itself, as the container's init does: one write per record, rotation by
# renames.
. "$(dirname "$0")/lib.sh"

SOCK=$STATE/berth.sock
# Rotated files kept: enough that a burst of rotations below drops none.
K=25
cat > "$STATE/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "App", "image": "$ROOTFS", "entrypoint": ["sh", "-c", "exit 0"]},
  ],
  "berth": {"state_dir": "$STATE/state", "api": {"socket": "$SOCK"}, "log": {"max_files": $K}},
}
JSON
api() { curl -s --unix-socket "$SOCK" "$@"; }
status_of() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "$@"; }
# Under ASan, freed memory waits in a quarantine, which would count as growth.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0" "$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" > "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 test -S "$SOCK"

# An instance with a record: started once; its container has ended.
api -X POST -d '{"waitForPorts": false}' http://b/v1/classes/App/instances/alice/start > /dev/null
wait_for "alice to stop" 100 sh -c "curl -s --unix-socket $SOCK http://b/v1/classes/App/instances/alice/state | grep -q '\"status\":\"stopped\"'"
ID=$(api http://b/v1/classes/App/instances/alice | sed -n 's/.*"id":"\([0-9a-f]\{64\}\)".*/\1/p')
check_eq "the record has a 64-hex id" 64 "${#ID}"
DIR=$STATE/state/logs/$ID
URL=http://b/v1/classes/App/instances/alice/logs

# Record N: a fixed time N seconds into 2026, content "line N".
rec() { printf '2026-01-01T00:%02d:%02d.000000000Z %s F line %s\n' $(($1 / 60)) $(($1 % 60)) "${2:-stdout}" "$1"; }
recs() { for i in $(seq "$1" "$2"); do rec "$i"; done; }
# Rotation as the writer does it: .k -> .k+1 from the oldest down, the current
# file -> .1, a new current file.
rotate() {
	local k
	for k in $(seq $((K - 1)) -1 1); do
		if [ -e "$DIR/container.log.$k" ]; then mv "$DIR/container.log.$k" "$DIR/container.log.$((k + 1))"; fi
	done
	mv "$DIR/container.log" "$DIR/container.log.1"
	: > "$DIR/container.log"
}
# berthd's descriptors of log files and directories, and its sockets.
log_fds() { ls -l /proc/$BERTHD/fd | grep -c "$STATE/state/logs"; }
sockets() { ls -l /proc/$BERTHD/fd | grep -c "socket:"; }

echo "-- errors and an empty log"
check_eq "an unknown instance: 404" 404 "$(status_of http://b/v1/classes/App/instances/nobody/logs)"
check_contains "saying so" '"code":"instance_not_found"' "$(api http://b/v1/classes/App/instances/nobody/logs)"
check_eq "an unknown class: 404" 404 "$(status_of http://b/v1/classes/Nope/instances/alice/logs)"
check_eq "tail=x: 400" 400 "$(status_of "$URL?tail=x")"
check_contains "with the API's error shape" '{"error":{"code":"bad_request","message":"tail: ' "$(api "$URL?tail=x")"
check_eq "tail=-1: 400" 400 "$(status_of "$URL?tail=-1")"
check_eq "follow=maybe: 400" 400 "$(status_of "$URL?follow=maybe")"
check_eq "since=yesterday: 400" 400 "$(status_of "$URL?since=yesterday")"
check_eq "POST: 405" 405 "$(status_of -X POST "$URL")"
rm -rf "$DIR"
check_eq "no log directory: 200" 200 "$(status_of "$URL")"
check_eq "and an empty log" "" "$(api "$URL")"

echo "-- rotated files and the current one"
mkdir -p "$DIR"
recs 1 3 > "$DIR/container.log.2"
recs 4 7 > "$DIR/container.log.1"
{ recs 8 8; echo "not a record"; recs 9 9; printf '%s' "$(rec 10 | head -c 40)"; } > "$DIR/container.log"
ct=$(curl -s -o /dev/null -w '%{content_type}' --unix-socket "$SOCK" "$URL")
check_eq "text/plain" "text/plain; charset=utf-8" "$ct"
check_eq "everything, oldest first, without the non-record and the unfinished record" \
	"$(recs 1 9)" "$(api "$URL")"
check_eq "tail=3 spans the rotated file's end" "$(recs 7 9)" "$(api "$URL?tail=3")"
check_eq "tail=5 spans two rotated files" "$(recs 5 9)" "$(api "$URL?tail=5")"
check_eq "tail=0: nothing" "" "$(api "$URL?tail=0")"
check_eq "tail=100: everything" "$(recs 1 9)" "$(api "$URL?tail=100")"
check_eq "since (RFC 3339)" "$(recs 6 9)" "$(api "$URL?since=2026-01-01T00:00:06Z")"
# 2026-01-01T00:00:06Z in milliseconds since the epoch.
check_eq "since (milliseconds)" "$(recs 6 9)" "$(api "$URL?since=$(( $(date -u -d 2026-01-01T00:00:06Z +%s) * 1000 ))")"
check_eq "since with tail: the last 5, then the time" "$(recs 6 9)" "$(api "$URL?tail=5&since=2026-01-01T00:00:06Z")"
check_eq "HEAD: 200" 200 "$(status_of -I "$URL")"
sockets_before=$(sockets)

echo "-- follow"
curl -sN --unix-socket "$SOCK" -D "$STATE/follow.head" "$URL?follow=1&tail=2" > "$STATE/follow.out" &
FOLLOW=$!
wait_for "the follower's headers" 50 grep -q "200 OK" "$STATE/follow.head"
wait_for "the last two records" 50 grep -q "line 9" "$STATE/follow.out"
check_eq "follow begins with tail=2" "$(recs 8 9)" "$(cat "$STATE/follow.out")"
# Complete the unfinished record 10.
printf '%s' "$(rec 10 | tail -c +41)" >> "$DIR/container.log"
printf '\n' >> "$DIR/container.log"
wait_for "the completed record" 50 grep -q "line 10" "$STATE/follow.out"
check_eq "a partial record is sent once its newline is there, whole" "$(recs 8 10)" "$(cat "$STATE/follow.out")"
printf '%s' "$(rec 11 | head -c 20)" >> "$DIR/container.log"
# Nothing arrives to wait for here: give berthd time to (wrongly) send it.
sleep 0.5
check_eq "an unfinished record is held back" "$(recs 8 10)" "$(cat "$STATE/follow.out")"
printf '%s' "$(rec 11 | tail -c +21)" >> "$DIR/container.log"
printf '\n' >> "$DIR/container.log"
wait_for "record 11" 50 grep -q "line 11" "$STATE/follow.out"

# Rotation as the writer does it, right after a write to the old file.
rec 12 stderr >> "$DIR/container.log"
rotate
rec 13 >> "$DIR/container.log"
rec 14 >> "$DIR/container.log"
wait_for "record 14" 50 grep -q "line 14" "$STATE/follow.out"
check_eq "across a rotation: nothing lost, nothing doubled" "$(recs 8 11; rec 12 stderr; recs 13 14)" \
	"$(cat "$STATE/follow.out")"

# Many rotations in a burst, faster than the follower may look.
n=15
for round in $(seq 1 20); do
	for i in $(seq 1 25); do rec $n >> "$DIR/container.log"; n=$((n + 1)); done
	rotate
done
rec $n >> "$DIR/container.log"
wait_for "record $n" 100 grep -q "line $n\$" "$STATE/follow.out"
check_eq "20 rotations in a burst: every record once, in order" \
	"$(recs 8 11; rec 12 stderr; recs 13 $n)" "$(cat "$STATE/follow.out")"
kill $FOLLOW 2>/dev/null
wait $FOLLOW 2>/dev/null

# A follower held back by its client is still in its file while the writer
# rotates it five times: it goes on with the files after it, in order. (curl
# writes into a FIFO nobody reads yet, so it stops reading the socket.)
mkfifo "$STATE/slow.fifo"
curl -sN --unix-socket "$SOCK" -D "$STATE/slow.head" -o "$STATE/slow.fifo" "$URL?follow=1&tail=0" &
SLOWF=$!
wait_for "the follower's headers" 50 grep -q "200 OK" "$STATE/slow.head"
kb=$(head -c 1000 /dev/zero | tr '\0' 'k')
# 2 MB: more than the client, the sockets and berthd's queue hold.
big() { for i in $(seq 1 2000); do printf '2026-01-01T00:00:00.000000000Z stdout F big %d %s\n' "$i" "$kb"; done; }
big >> "$DIR/container.log"
for i in 1 2 3 4 5; do
	rotate
	rec $((1000 + i)) >> "$DIR/container.log"
done
cat "$STATE/slow.fifo" > "$STATE/slow.out" &
SLOWCAT=$!
wait_for "the last record" 100 grep -q "line 1005" "$STATE/slow.out"
kill $SLOWF $SLOWCAT 2>/dev/null
wait $SLOWF $SLOWCAT 2>/dev/null
check_eq "behind by five rotations: every record once, in order" "$(big; recs 1001 1005)" "$(cat "$STATE/slow.out")"

echo "-- follow of an empty log, and bounded memory"
rm -rf "$DIR"
curl -sN --max-time 20 --unix-socket "$SOCK" -D "$STATE/empty.head" "$URL?follow=1" > "$STATE/empty.out" &
EMPTY=$!
wait_for "the follower's headers" 50 grep -q "200 OK" "$STATE/empty.head"
check_true "follow creates the log directory" test -d "$DIR"
check_eq "mode 0750" 750 "$(stat -c %a "$DIR")"
rec 1 > "$DIR/container.log"
wait_for "the first record" 50 grep -q "line 1" "$STATE/empty.out"
check_eq "a new log is followed from its start" "$(recs 1 1)" "$(cat "$STATE/empty.out")"
rm -rf "$DIR"
wait $EMPTY
check_eq "removing the log directory ends the stream (curl's status)" 0 "$?"
mkdir "$DIR"

# 10 MiB in 16 KiB records: tail=1 reads a few windows from the end only.
pad=$(head -c 16000 /dev/zero | tr '\0' 'x')
for i in $(seq 1 655); do printf '2026-01-01T00:00:00.000000000Z stdout P %s\n' "$pad"; done > "$DIR/container.log"
rec 2 >> "$DIR/container.log"
check_true "a 10 MiB log" test "$(stat -c %s "$DIR/container.log")" -gt $((10 * 1000 * 1000))
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$BERTHD/status; }
rss_before=$(rss)
check_eq "tail=1 of 10 MiB" "$(recs 2 2)" "$(api "$URL?tail=1")"
for i in 1 2 3 4 5; do api "$URL?tail=1" > /dev/null; done
rss_after=$(rss)
check_true "berthd's RSS grew by less than 1 MiB ($rss_before kB -> $rss_after kB)" \
	test $((rss_after - rss_before)) -lt 1024
# All of it, to a client that reads slowly: berthd reads no faster than it sends.
curl -sN --unix-socket "$SOCK" --limit-rate 4M "$URL" > "$STATE/all.out" &
SLOW=$!
sleep 1
rss_slow=$(rss)
wait $SLOW
check_eq "all 656 records to a slow client" 656 "$(wc -l < "$STATE/all.out")"
check_true "while it read, berthd's RSS grew by less than 2 MiB ($rss_before kB -> $rss_slow kB)" \
	test $((rss_slow - rss_before)) -lt 2048
# The followers that left, and every reader, let go of their files.
wait_for "berthd to close the connections" 50 sh -c "test \$(ls -l /proc/$BERTHD/fd | grep -c socket:) -eq $sockets_before"
check_eq "no connection left of the readers" "$sockets_before" "$(sockets)"
check_eq "no log file or directory left open" 0 "$(log_fds)"

echo "-- shutdown ends a follower"
curl -sN --max-time 30 --unix-socket "$SOCK" -D "$STATE/last.head" "$URL?follow=1&tail=0" > /dev/null &
LAST=$!
wait_for "the follower's headers" 50 grep -q "200 OK" "$STATE/last.head"
kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly with a follower" 0 "$?"
wait $LAST
check_eq "whose stream ended properly (curl's status)" 0 "$?"
check_contains "berthd says when lines were no records" "13 bytes that were no records left out" \
	"$(cat "$STATE/berthd.log")"
check_eq "and warned of nothing else" "" "$(grep warn "$STATE/berthd.log" | grep -v "no records left out")"
finish
