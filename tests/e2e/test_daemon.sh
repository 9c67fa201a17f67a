#!/bin/bash
# berthd as an operator and an API client see it: configuration checks,
# the control API on its unix socket and on TCP with a token, records of
# named instances, one daemon per state directory, reload, clean shutdown.
. "$(dirname "$0")/lib.sh"

SOCK=$STATE/run/berth.sock
TOKEN=e2e-token-0123456789abcdef
CONFIG=$STATE/berth.jsonc
cat > "$CONFIG" <<JSON
// berthd under test
{
  "containers": [
    {"class_name": "Web", "image": "$ROOTFS", "defaultPort": 8080, "max_instances": 3,
     "instance_type": "basic", "sleepAfter": "2s", "envVars": {"MODE": "test"},},
  ],
  "berth": {"state_dir": "$STATE/state", "api": {"socket": "$SOCK", "token": "$TOKEN"}},
}
JSON

api() { curl -s --unix-socket "$SOCK" "$@"; }
api_status() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "$@"; }

# --check-config
out=$("$BERTH_BIN/berthd" --check-config "$CONFIG" 2>&1)
check_eq "--check-config of a good file: status" 0 "$?"
check_contains "--check-config of a good file: says ok" "ok (1 container class)" "$out"
cat > "$STATE/bad.jsonc" <<'JSON'
{
  "containers": [
    {"class_name": "Web", "image": "/nonexistent", "sleepAfter": "10 minutes"},
  ],
}
JSON
out=$("$BERTH_BIN/berthd" --check-config "$STATE/bad.jsonc" 2>&1)
check_eq "--check-config of a bad file: status" 1 "$?"
check_contains "names file, line, column and field" \
	"bad.jsonc:3:52: containers[0].sleepAfter: \"10 minutes\" is not a duration (use 30s, 10m, 2h or seconds)" "$out"
check_contains "and reports every problem, not just the first" "/nonexistent" "$out"
out=$("$BERTH_BIN/berthd" --config "$STATE/bad.jsonc" --state-dir "$STATE/s2" 2>&1)
check_eq "berthd refuses to start on a bad file" 1 "$?"
out=$("$BERTH_BIN/berthd" 2>&1)
check_eq "no --config: usage error" 2 "$?"
check_contains "and says what is missing" "--config FILE is required" "$out"

# TCP without a token is refused at start.
cat > "$STATE/notoken.jsonc" <<JSON
{"containers": [{"class_name": "Web", "image": "$ROOTFS"}],
 "berth": {"state_dir": "$STATE/s3", "api": {"socket": "$STATE/s3.sock", "listen": "127.0.0.1:19999"}}}
JSON
out=$("$BERTH_BIN/berthd" --check-config "$STATE/notoken.jsonc" 2>&1)
check_eq "the API on TCP without a token is a configuration error" 1 "$?"
check_contains "which explains both ways out" "insecure_no_token" "$out"

# The daemon itself.
port=$(( (RANDOM % 20000) + 30000 ))
"$BERTH_BIN/berthd" --config "$CONFIG" --api-listen "127.0.0.1:$port" > "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API socket" 50 test -S "$SOCK"
check_eq "the socket is 0660" 660 "$(stat -c %a "$SOCK")"

out=$(api http://berth/v1/health)
check_contains "GET /v1/health" '"status":"ok"' "$out"
out=$(api http://berth/v1/classes)
check_contains "GET /v1/classes lists the class" '"name":"Web"' "$out"
check_contains "with its settings" '"sleepAfterMs":2000' "$out"
check_contains "and its instance type" '"memoryMiB":1024' "$out"

id=$(api http://berth/v1/classes/Web/instances/alice | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
check_eq "an instance id is 64 hex characters" 64 "${#id}"
id2=$(api http://berth/v1/classes/Web/instances/alice | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
check_eq "the same name gives the same id" "$id" "$id2"
id3=$(api http://berth/v1/classes/Web/instances/bob | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
check_true "another name another id" test "$id" != "$id3"
out=$(api http://berth/v1/classes/Web/instances/alice/state)
check_contains "a name that never ran is stopped" '"status":"stopped"' "$out"

check_eq "an unknown class: 404" 404 "$(api_status http://berth/v1/classes/Nope/instances/a)"
check_contains "with a clear error" '"code":"class_not_found"' "$(api http://berth/v1/classes/Nope/instances/a)"
check_eq "an unknown endpoint: 404" 404 "$(api_status http://berth/v1/nothing)"
# Error messages quote the request; bytes that are not UTF-8 cannot go into
# JSON as they are (jansson refused the message, and berthd crashed on it),
# and would make instance names no listing can show.
out=$(api "http://berth/v1/nothing%96%ff")
check_contains "a name that is not UTF-8: 400, quoted as far as it can be" \
	'"message":"`nothing??` is not UTF-8 text (no control characters)"' "$out"
check_true "berthd lives on" kill -0 "$BERTHD"
out=$(api -X POST "http://berth/v1/classes/Web/instances/a%96b/start")
check_contains "an instance name that is not UTF-8: refused" '"code":"bad_name"' "$out"
check_contains "with a reason" "is not UTF-8 text" "$out"
check_eq "nor a tab in a name" 400 "$(api_status -X POST "http://berth/v1/classes/Web/instances/a%09b/start")"
check_contains "and the instances are listed as before" '"instances":[' \
	"$(api http://berth/v1/instances)"
check_eq "a wrong method: 405" 405 "$(api_status -X DELETE http://berth/v1/health)"
check_contains "fetch of an instance that cannot start: why" '"code":"start_failed"' \
	"$(api http://berth/v1/classes/Web/instances/alice/fetch/)"
check_eq "a malformed request: 400" 400 "$(api_status -H 'Content-Length: 1' -H 'Transfer-Encoding: chunked' -X POST --data x http://berth/v1/health)"

# TCP: the token is required.
check_eq "TCP without a token: 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/health")"
check_eq "TCP with a wrong token: 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "http://127.0.0.1:$port/v1/health")"
check_eq "TCP with the token: 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/v1/health")"

# One daemon per state directory.
out=$("$BERTH_BIN/berthd" --config "$CONFIG" --api-socket "$STATE/other.sock" 2>&1)
check_eq "a second berthd on the same state directory is refused" 1 "$?"
check_contains "and says by whom" "is in use by another berthd (pid $BERTHD)" "$out"

# Reload: a new class appears; a broken file changes nothing.
sed -i 's/^  \],/    {"class_name": "Api", "image": "'"${ROOTFS//\//\\/}"'"},\n  ],/' "$CONFIG"
kill -HUP $BERTHD
wait_for "the reloaded class" 30 sh -c "curl -s --unix-socket '$SOCK' http://berth/v1/classes | grep -q '\"name\":\"Api\"'"
check_contains "SIGHUP: a new class appears" '"name":"Api"' "$(api http://berth/v1/classes)"
echo "{ broken" > "$CONFIG"
kill -HUP $BERTHD
sleep 0.3
check_contains "SIGHUP with a broken file keeps the running configuration" '"name":"Api"' "$(api http://berth/v1/classes)"
check_contains "and logs why" "keeping the running one" "$(cat "$STATE/berthd.log")"

# Shutdown: exit 0, the socket is gone; the registry keeps its classes.
kill -TERM $BERTHD
wait $BERTHD
check_eq "SIGTERM: berthd exits 0" 0 "$?"
check_true "and removes its socket" test ! -e "$SOCK"
check_true "the registry is in the state directory" test -s "$STATE/state/registry.db"

finish
