#!/bin/bash
# Named instances through berthd's API: start (coalesced, with readiness),
# state, stop, destroy, renew, sleepAfter, max_instances, exits and OOM kills
# recorded, records kept across a daemon restart, nothing left on shutdown.
. "$(dirname "$0")/lib.sh"

SOCK=$STATE/berth.sock
CONFIG=$STATE/berth.jsonc
cat > "$CONFIG" <<JSON
{
  "containers": [
    {"class_name": "Echo", "image": "$ROOTFS", "defaultPort": 8080, "max_instances": 2,
     "entrypoint": ["sh", "-c", "env; exec echo-server --port 8080"],
     "sleepAfter": "2s", "envVars": {"FROM_CLASS": "class", "BOTH": "class"}},
    {"class_name": "Exit", "image": "$ROOTFS", "defaultPort": 8080,
     "entrypoint": ["sh", "-c", "sleep 0.2; exit 3"]},
    {"class_name": "Hog", "image": "$ROOTFS", "entrypoint": ["probe", "hog", "512"],
     "instance_type": {"vcpu": 0.5, "memory_mib": 32, "disk_mb": 100}},
    {"class_name": "Slow", "image": "$ROOTFS", "defaultPort": 8080, "portReadyTimeoutMS": 1000,
     "entrypoint": ["sleep", "30"], "stopGracePeriod": "1s"},
    {"class_name": "Trap", "image": "$ROOTFS",
     "entrypoint": ["sh", "-c", "trap 'echo got INT; exit 7' INT; trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done"]},
  ],
  "berth": {"state_dir": "$STATE/state", "api": {"socket": "$SOCK"}},
}
JSON

api() { curl -s --unix-socket "$SOCK" "$@"; }
code() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "$@"; }
state_of() { api "http://b/v1/classes/$1/instances/$2/state"; }
start_berthd() {
	"$BERTH_BIN/berthd" --config "$CONFIG" >> "$STATE/berthd.log" 2>&1 &
	BERTHD=$!
	wait_for "the API" 50 test -S "$SOCK"
}
started_count() { grep -c "instance $1: started" "$STATE/berthd.log"; }

# Network namespaces made ahead, in a pool of this test's own.
export BERTH_NETNS_POOL=$STATE/netns
pool_ready() { [ "$(stat -f -c %T "$BERTH_NETNS_POOL"/slot-* 2>/dev/null | grep -c nsfs)" -ge 4 ]; }
start_berthd
check_true "berthd makes network namespaces ahead" wait_for "pool filled" 50 pool_ready
slots=$(stat -L -c %i "$BERTH_NETNS_POOL"/slot-*)

# A start answers once the instance is healthy (its defaultPort answers HTTP).
out=$(api -X POST http://b/v1/classes/Echo/instances/alice/start)
check_contains "start: healthy when answered" '"status":"healthy"' "$out"
id=$(sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' <<<"$out")
ns=$(stat -L -c %i "/proc/$(head -n1 "$(cg_dir pids "$id")/cgroup.procs")/ns/net")
[ -n "$ns" ] && grep -qx "$ns" <<<"$slots"
check_eq "the start took one of them" 0 $?
check_true "and berthd made another" wait_for "pool refilled" 50 pool_ready
check_contains "state says healthy" '"status":"healthy"' "$(state_of Echo alice)"
log=$STATE/state/logs/$id/container.log
check_contains "the container got the class's envVars" "FROM_CLASS=class" "$(cat "$log")"
check_contains "and Cloudflare's variables" "CLOUDFLARE_DURABLE_OBJECT_ID=$id" "$(cat "$log")"
check_contains "CLOUDFLARE_COUNTRY_A2 too" "CLOUDFLARE_COUNTRY_A2=" "$(cat "$log")"

# Stop: stopping at once, stopped when the container is gone.
out=$(api -X POST -d '{"signal": "SIGTERM", "graceMs": 2000}' http://b/v1/classes/Echo/instances/alice/stop)
check_contains "stop: stopping while it stops" '"status":"stopping"' "$out"
wait_for "alice stopped" 50 sh -c "curl -s --unix-socket '$SOCK' http://b/v1/classes/Echo/instances/alice/state | grep -q '\"stopped\"'"
check_contains "then stopped" '"status":"stopped"' "$(state_of Echo alice)"
check_contains "stopping it again is fine (200, stopped)" 200 "$(code -X POST http://b/v1/classes/Echo/instances/alice/stop)"

# Per-start options override the class's.
out=$(api -X POST -d '{"envVars": {"BOTH": "start", "ONLY_START": "yes"}, "waitForPorts": 8080}' \
	http://b/v1/classes/Echo/instances/alice/start)
check_contains "start with options: healthy" '"status":"healthy"' "$out"
check_contains "start envVars are merged over the class's" "BOTH=start" "$(tail -n 40 "$log")"
check_contains "and added" "ONLY_START=yes" "$(tail -n 40 "$log")"

# 20 simultaneous starts of one name: one container, 20 answers.
before=$(started_count Echo/bob)
out=$(for i in $(seq 1 20); do code -X POST http://b/v1/classes/Echo/instances/bob/start & done; wait)
check_eq "20 concurrent starts all succeed" 20 "$(grep -o 200 <<<"$out" | wc -l)"
check_eq "and start exactly one container" $((before + 1)) "$(started_count Echo/bob)"

# max_instances 2: alice and bob run; a third is refused with 503.
check_eq "a third instance beyond max_instances: 503" 503 "$(code -X POST http://b/v1/classes/Echo/instances/carol/start)"
check_contains "saying why" '"code":"max_instances"' "$(api -X POST http://b/v1/classes/Echo/instances/carol/start)"

# Renewals keep an instance awake past sleepAfter (2s); then it sleeps.
for i in 1 2 3 4; do
	sleep 0.8
	check_eq "renew keeps bob up ($i)" 200 "$(code -X POST http://b/v1/classes/Echo/instances/bob/renew)"
done
check_contains "bob is still healthy after 3.2s of renewals" '"status":"healthy"' "$(state_of Echo bob)"
wait_for "bob asleep" 60 sh -c "curl -s --unix-socket '$SOCK' http://b/v1/classes/Echo/instances/bob/state | grep -q '\"stopped\"'"
check_contains "without renewals it sleeps after sleepAfter" '"status":"stopped"' "$(state_of Echo bob)"
check_contains "and says why" '"stopReason":"activity_expired"' "$(api http://b/v1/classes/Echo/instances/bob)"
check_eq "reading state did not keep it up: renew now finds nothing" 409 "$(code -X POST http://b/v1/classes/Echo/instances/bob/renew)"

# Exits and OOM kills are recorded.
out=$(api -X POST http://b/v1/classes/Exit/instances/e/start)
check_contains "a container that dies before its port answers: start fails" '"code":"start_failed"' "$out"
check_contains "saying so, not timing out" "exited with code 3 before it was ready" "$out"
wait_for "e recorded" 30 sh -c "curl -s --unix-socket '$SOCK' http://b/v1/classes/Exit/instances/e/state | grep -q stopped_with_code"
check_eq "exit 3: stopped_with_code 3" '{"status":"stopped_with_code","lastChange":X,"exitCode":3}' \
	"$(state_of Exit e | sed 's/"lastChange":[0-9]*/"lastChange":X/')"
api -X POST http://b/v1/classes/Exit/instances/e2/start >/dev/null
out=$(curl -s --max-time 5 --unix-socket "$SOCK" -X POST http://b/v1/classes/Exit/instances/e2/destroy)
check_contains "destroy right after the container died: answered, stopped" '"status":"stopped"' "$out"
api -X POST http://b/v1/classes/Hog/instances/h/start >/dev/null
wait_for "h recorded" 50 sh -c "curl -s --unix-socket '$SOCK' http://b/v1/classes/Hog/instances/h | grep -q '\"oom\":true'"
out=$(api http://b/v1/classes/Hog/instances/h)
check_contains "an OOM kill is recorded" '"oom":true' "$out"
check_contains "as stopped_with_code" '"status":"stopped_with_code"' "$out"

# Readiness times out (portReadyTimeoutMS 1s): 504, the container keeps running.
out=$(api -X POST http://b/v1/classes/Slow/instances/s/start)
check_contains "ports that never answer: port_not_ready" '"code":"port_not_ready"' "$out"
check_contains "the container still runs" '"status":"running"' "$(state_of Slow s)"
out=$(api -X POST http://b/v1/classes/Slow/instances/s/destroy)
check_contains "destroy: stopped" '"status":"stopped"' "$out"
check_contains "the record stays" '"name":"s"' "$(api http://b/v1/classes/Slow/instances/s)"
check_true "the writable layer is gone" test ! -e "$STATE/state/containers/$(sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' <<<"$out")"

# Bad requests change nothing.
check_eq "bad JSON: 400" 400 "$(code -X POST -d '{nope' http://b/v1/classes/Echo/instances/zed/start)"
check_contains "bad envVars: a clear error" "envVars: must be an object of strings" \
	"$(api -X POST -d '{"envVars": {"A": 1}}' http://b/v1/classes/Echo/instances/zed/start)"
check_contains "bad waitForPorts" "waitForPorts: must be" \
	"$(api -X POST -d '{"waitForPorts": "soon"}' http://b/v1/classes/Echo/instances/zed/start)"
check_contains "bad signal" "signal: use a name" \
	"$(api -X POST -d '{"signal": "SIGNOPE"}' http://b/v1/classes/Echo/instances/alice/stop)"
check_contains "none of which started anything" '"status":"stopped"' "$(state_of Echo zed)"
check_eq "a GET on start: 405" 405 "$(code http://b/v1/classes/Echo/instances/alice/start)"

# A restart of berthd keeps the records.
check_contains "alice runs again before the shutdown" '"status":"healthy"' \
	"$(api -X POST http://b/v1/classes/Echo/instances/alice/start)"
t0=$(date +%s%3N)
api -X POST http://b/v1/classes/Echo/instances/alice/renew > /dev/null
kill -TERM $BERTHD
wait $BERTHD
check_eq "SIGTERM with running containers: exit 0" 0 "$?"
check_contains "it stopped them" "instance Echo/alice: exited" "$(cat "$STATE/berthd.log")"
check_eq "nothing of them left" "" "$(ls "$STATE/state/containers")"
check_eq "not even in the trash (swept before berthd exits)" "" "$(ls -A "$STATE/state/trash" 2>/dev/null)"
start_berthd
check_contains "after a restart: the exit record is kept" '"exitCode":3' "$(state_of Exit e)"
check_contains "and the OOM record" '"oom":true' "$(api http://b/v1/classes/Hog/instances/h)"
check_contains "and alice, stopped by the shutdown" '"stopReason":"daemon_shutdown"' "$(api http://b/v1/classes/Echo/instances/alice)"
last=$(api http://b/v1/classes/Echo/instances/alice | sed -n 's/.*"lastActivity":\([0-9]*\).*/\1/p')
check_true "alice's last renew was flushed at the shutdown (lastActivity >= the renew)" test "${last:-0}" -ge "$t0"
out=$(api http://b/v1/instances)
check_contains "GET /v1/instances lists the records" '"name":"bob"' "$(api http://b/v1/instances)"
kill -TERM $BERTHD
wait $BERTHD

# berthd in a terminal: Ctrl-C sends SIGINT to its whole process group. Its
# containers are not in it: berthd stops them as their class says (SIGTERM).
setsid "$BERTH_BIN/berthd" --config "$CONFIG" >> "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 test -S "$SOCK"
api -X POST http://b/v1/classes/Trap/instances/t/start > /dev/null
wait_for "the trap set" 50 sh -c "curl -s --unix-socket '$SOCK' http://b/v1/classes/Trap/instances/t/logs | grep -q ready"
kill -INT -- -$BERTHD
wait $BERTHD
check_eq "Ctrl-C (SIGINT to berthd's process group): berthd exits 0" 0 "$?"
start_berthd
out=$(api http://b/v1/classes/Trap/instances/t/logs)
check_contains "the container got berthd's SIGTERM" "got TERM" "$out"
check_not_contains "not the terminal's SIGINT" "got INT" "$out"
kill -TERM $BERTHD
wait $BERTHD
# Every container of this file has ended: no cgroup of theirs is left, retired
# (renamed `~ID.RANDOM` by the reap for housekeeping to remove) or not.
check_eq "no container's cgroup left, retired or not" "" \
	"$(ls -d /sys/fs/cgroup/*/"$BERTH_CGROUP_PARENT"/*/ /sys/fs/cgroup/"$BERTH_CGROUP_PARENT"/*/ 2>/dev/null)"

finish
