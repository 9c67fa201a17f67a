#!/bin/bash
# Sandbox operations through berth's API (the @cloudflare/sandbox protocol
# under .../sandbox/api/..., and berth's own .../exec and .../files), on a
# busybox image with no agent in it: sessions, commands and their streams,
# timeouts and tree kills, background processes, files (text, binary,
# large, streamed), path-escape attempts, git (without git in the image,
# and a real clone in an image with it), activity.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gitroot.sh"
. "$(dirname "$0")/images.sh"

# A root with a real git and a repository in it (gitroot.sh).
GITROOT=$STATE/gitroot
mk_git_root "$GITROOT"

# An image whose config runs it as 1000:1000 (an OCI layout, images.sh), with
# a root-owned directory, a group-writable root:root one and a secret.
UL=$STATE/userlayer
cp -a "$ROOTFS" "$UL"
mkdir -p "$UL/srv/rootonly" "$UL/srv/group0" "$UL/srv/private"
chmod 775 "$UL/srv/group0"
chmod 700 "$UL/srv/private"
echo secret > "$UL/srv/secret" && chmod 600 "$UL/srv/secret"
COMPRESS=none mk_oci_layout "$STATE/layout" user '{"User": "1000:1000"}' "$UL" > /dev/null

SOCK=$STATE/berth.sock
cat > "$STATE/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "Box", "image": "$ROOTFS", "entrypoint": ["sleep", "1000000"]},
    {"class_name": "Git", "image": "$GITROOT", "entrypoint": ["sleep", "1000000"]},
    {"class_name": "User", "image": "$STATE/layout:user", "entrypoint": ["sleep", "1000000"]},
    {"class_name": "Nap", "image": "$ROOTFS", "entrypoint": ["sleep", "1000000"], "sleepAfter": "1s"},
  ],
  "berth": {"state_dir": "$STATE/state", "api": {"socket": "$SOCK"}},
}
JSON
# Under ASan, freed memory waits in a quarantine, which would count as growth.
# berthd is in group 0, as when started from root's login shell: its file
# work for a container's user must not have that group.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0" setpriv --groups 0 \
	"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" > "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 test -S "$SOCK"

I=http://b/v1/classes/Box/instances/s1
S=$I/sandbox/api
api() { curl -s --unix-socket "$SOCK" "$@"; }
status_of() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "$@"; }
post() { api -H 'Content-Type: application/json' -d "$2" "$S/$1"; }
# run COMMAND [SESSION]: the command's stdout, through /api/execute
run() { post execute "$(jq -nc --arg c "$1" --arg s "${2:-}" '{command: $c} + (if $s == "" then {} else {sessionId: $s} end)')" | jq -r .stdout; }
# in_ctr ARGV...: berth exec, no shell involved
in_ctr() { api -d "$(printf '%s\n' "$@" | jq -R . | jq -sc '{argv: .}')" "$I/exec"; }
# Words of the input on one line, single spaces.
flat() { tr -s ' \n' '  ' | sed 's/^ //;s/ $//'; }

echo "-- a sandbox call starts a stopped instance"
check_contains "the instance is stopped" '"status":"stopped"' "$(api "$I/state")"
out=$(api "$S/ping")
check_eq "ping answers pong" pong "$(echo "$out" | jq -r .message)"
check_eq "with success and a timestamp" "true 24" "$(echo "$out" | jq -r '"\(.success) \(.timestamp | length)"')"
check_contains "and the instance runs now" '"status":"healthy"' "$(api "$I/state")"
check_eq "version is berthd's" true "$(api "$S/version" | jq '.version | length > 0')"
out=$(api "$S/commands")
check_eq "commands: the executables on PATH (busybox's links too), sorted" "true true true" \
	"$(echo "$out" | jq '(.availableCommands | index("sh") != null), (.availableCommands | index("echo-server") != null), (.availableCommands == (.availableCommands | sort) and .count == (.availableCommands | length))' | flat)"

echo "-- execute"
out=$(post execute '{"command": "echo out; echo err >&2; exit 3"}')
check_eq "stdout" "out" "$(echo "$out" | jq -r .stdout | tr -d '\n')"
check_eq "stderr" "err" "$(echo "$out" | jq -r .stderr | tr -d '\n')"
check_eq "exit code and success" "3 false default" "$(echo "$out" | jq -r '"\(.exitCode) \(.success) \(.sessionId)"')"
check_eq "the default cwd is /workspace (made on first use)" /workspace "$(run pwd)"
check_eq "as the container's user" "0" "$(run 'id -u')"
check_eq "a missing command: 127" 127 "$(post execute '{"command": "no-such-cmd"}' | jq .exitCode)"
# The entrypoint is `sleep 1000000`, PID 2 under the container's init.
sec='grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/$1/status; cat /proc/$1/cgroup'
check_eq "no more privilege than the entrypoint: capabilities, no_new_privs, seccomp, cgroup" \
	"$(run "f() { $sec; }; f 2")" "$(run "f() { $sec; }; f self")"
check_contains "seccomp filtering, no_new_privs" "NoNewPrivs:	1 Seccomp:	2" "$(run "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status" | tr '\n' ' ')"
check_eq "an empty command: 400 INVALID_COMMAND" "400 INVALID_COMMAND 400" \
	"$(post execute '{"command": ""}' | jq -r '"\(.httpStatus) \(.code) \(.httpStatus)"')"
out=$(post execute '{"nope": 1}')
check_eq "no command: VALIDATION_FAILED, the SDK's error shape" "VALIDATION_FAILED 400 true true" \
	"$(echo "$out" | jq -r '"\(.code) \(.httpStatus) \(.message | length > 0) \(.context != null and .timestamp != null)"')"
check_eq "bad JSON: 400" 400 "$(status_of -d '{' "$S/execute")"
check_eq "an unknown endpoint: 400 INVALID_COMMAND" INVALID_COMMAND "$(post nope '{}' | jq -r .code)"

echo "-- sessions: cd and export persist, a command's own env and cwd do not"
run 'cd /tmp && export GREETING="hello world" && X=notexported' > /dev/null
check_eq "cd persists" /tmp "$(run pwd)"
check_eq "export persists" "hello world" "$(run 'echo $GREETING')"
out=$(post execute '{"command": "echo $GREETING $ONLY; pwd", "env": {"GREETING": "hi", "ONLY": "once"}, "cwd": "/etc"}' | jq -r .stdout)
check_eq "a command's env and cwd apply to it" "hi once /etc" "$(echo $out)"
check_eq "and are gone after it" "hello world|unset /tmp" "$(echo $(run 'echo "$GREETING|${ONLY:-unset}"; pwd'))"
out=$(post session/create '{"id": "work", "env": {"LANG_X": "it'"'"'s"}, "cwd": "/etc"}')
check_eq "session/create" "true work" "$(echo "$out" | jq -r '"\(.success) \(.id)"')"
check_eq "starts in its cwd with its env" "/etc it's" "$(run 'echo $PWD $LANG_X' work)"
check_eq "sessions are apart" "/tmp" "$(run pwd)"
post session/create '{"id": "quick", "commandTimeoutMs": 200}' > /dev/null
check_eq "a session's commandTimeoutMs" "137 true" "$(post execute '{"command": "sleep 5", "sessionId": "quick"}' | jq -r '"\(.exitCode) \(.timedOut)"')"
check_eq "a command's own timeoutMs wins" 0 "$(post execute '{"command": "sleep 0.4", "sessionId": "quick", "timeoutMs": 5000}' | jq .exitCode)"
check_eq "the same id again: 409 SESSION_ALREADY_EXISTS" "409 SESSION_ALREADY_EXISTS" \
	"$(post session/create '{"id": "work"}' | jq -r '"\(.httpStatus) \(.code)"')"
check_eq "session/list" "default,quick,work" "$(api "$S/session/list" | jq -r '.sessions | sort | join(",")')"
check_eq "session/delete" true "$(post session/delete '{"sessionId": "work"}' | jq .success)"
check_eq "an unknown one: 404" 404 "$(post session/delete '{"sessionId": "work"}' | jq .httpStatus)"
# Commands of one session run in order, one after the other.
post execute '{"command": "touch /tmp/first; sleep 0.3; echo a >> /tmp/order", "sessionId": "seq"}' > /dev/null &
FIRST=$!
wait_for "the first command" 50 sh -c "curl -s --unix-socket $SOCK -d '{\"path\": \"/tmp/first\"}' $S/exists | grep -q '\"exists\":true'"
post execute '{"command": "echo b >> /tmp/order", "sessionId": "seq"}' > /dev/null
wait $FIRST
check_eq "commands of a session queue in order" "a b" "$(run 'cat /tmp/order' | flat)"

echo "-- execute/stream: events in order, complete only after the exit"
out=$(post execute/stream '{"command": "for i in 1 2 3; do echo $i; sleep 0.05; done; echo e >&2; exit 4"}')
types=$(echo "$out" | sed -n 's/^data: //p' | jq -r .type | tr '\n' ' ')
check_eq "start, stdout x3, stderr, complete" "start stdout stdout stdout stderr complete " "$types"
check_eq "stdout in order" "1 2 3" "$(echo "$out" | sed -n 's/^data: //p' | jq -r 'select(.type=="stdout") | .data' | flat)"
check_eq "complete carries the exit code" 4 "$(echo "$out" | sed -n 's/^data: //p' | jq -r 'select(.type=="complete") | .exitCode')"
check_contains "a server-sent event stream" "text/event-stream" "$(curl -s -D - -o /dev/null --unix-socket "$SOCK" -d '{"command":"true"}' "$S/execute/stream")"
out=$(post execute/stream '{"command": "printf \"\\303\"; sleep 0.1; printf \"\\251\\n\""}')
check_eq "a character split across writes arrives whole" "é" "$(echo "$out" | sed -n 's/^data: //p' | jq -r 'select(.type=="stdout") | .data' | tr -d '\n')"

echo "-- timeouts kill the whole tree"
start=$(date +%s%N)
out=$(post execute '{"command": "sleep 30 & echo $! > /tmp/child; sleep 30", "timeoutMs": 300}')
ms=$((($(date +%s%N) - start) / 1000000))
check_eq "timed out: killed (137), said so" "137 true" "$(echo "$out" | jq -r '"\(.exitCode) \(.timedOut)"')"
check_true "within a second ($ms ms)" test "$ms" -lt 1500
child=$(run 'cat /tmp/child')
check_eq "the background child is gone too" "gone" "$(run "kill -0 $child 2>/dev/null && echo alive || echo gone")"
check_eq "the session still works" /tmp "$(run pwd)"

echo "-- background processes"
out=$(post process/start '{"command": "sleep 60 & sh -c \"sleep 61\" & echo started; echo warn >&2; wait", "processId": "tree"}')
check_eq "process/start" "true tree true" "$(echo "$out" | jq -r '"\(.success) \(.processId) \(.pid > 0)"')"
wait_for "its output" 30 sh -c "curl -s --unix-socket $SOCK $S/process/tree/logs | grep -q started"
out=$(api "$S/process/tree/logs")
check_eq "logs: stdout and stderr" "started warn" "$(echo "$out" | jq -r '"\(.stdout)\(.stderr)"' | flat)"
check_eq "it runs" running "$(api "$S/process/tree" | jq -r .process.status)"
check_eq "it is listed" tree "$(api "$S/process/list" | jq -r '.processes[].id')"
sleeps=$(in_ctr ps -o args | jq -r .stdout | grep -c '^sleep 6[01]')
check_eq "with its children" 2 "$sleeps"
out=$(api -X DELETE "$S/process/tree")
check_eq "DELETE kills it" "true tree" "$(echo "$out" | jq -r '"\(.success) \(.processId)"')"
check_eq "answered once it has exited" "killed 137" "$(api "$S/process/tree" | jq -r '"\(.process.status) \(.process.exitCode)"')"
check_eq "and its children" 0 "$(in_ctr ps -o args | jq -r .stdout | grep -c '^sleep 6[01]')"
check_eq "an unknown process: 404 PROCESS_NOT_FOUND" "404 PROCESS_NOT_FOUND" "$(api "$S/process/nope" | jq -r '"\(.httpStatus) \(.code)"')"
post process/start '{"command": "for i in 1 2 3; do echo line$i; sleep 0.1; done; exit 2", "processId": "counter"}' > /dev/null
out=$(api "$S/process/counter/stream")
check_eq "stream: process_info, the lines, exit" "process_info stdout exit " \
	"$(echo "$out" | sed -n 's/^data: //p' | jq -r .type | uniq | tr '\n' ' ')"
check_eq "the lines in order" "line1 line2 line3" "$(echo "$out" | sed -n 's/^data: //p' | jq -r 'select(.type=="stdout") | .data' | tr -s '\n' ' ' | sed 's/ $//')"
check_eq "exit with its code" 2 "$(echo "$out" | sed -n 's/^data: //p' | jq -r 'select(.type=="exit") | .exitCode')"
check_eq "then it is failed" "failed 2" "$(api "$S/process/counter" | jq -r '"\(.process.status) \(.process.exitCode)"')"
post process/start '{"command": "sleep 50", "processId": "k1"}' > /dev/null
post process/start '{"command": "sleep 50", "processId": "k2"}' > /dev/null
check_eq "a duplicate id is refused" PROCESS_ERROR "$(post process/start '{"command": "true", "processId": "k1"}' | jq -r .code)"
check_eq "kill-all kills the running ones" 2 "$(api -X DELETE "$S/process/kill-all" | jq .cleanedCount)"
check_eq "both killed" "killed killed" "$(api "$S/process/list" | jq -r '[.processes[] | select(.id | startswith("k")) | .status] | join(" ")')"

echo "-- watch: file changes as events"
run 'mkdir -p /workspace/wt/sub /workspace/wt/node_modules' > /dev/null
api -N -d '{"path": "/workspace/wt"}' "$S/watch" > "$STATE/watch.sse" &
WATCH=$!
wait_for "watching" 50 grep -q watching "$STATE/watch.sse"
run 'cd /workspace/wt && echo a > f.txt && mkdir newdir && sleep 0.1 && touch newdir/inner node_modules/x sub/y && mv f.txt g.txt && rm g.txt' > /dev/null
wait_for "the last event" 50 grep -q '"delete","path":"/workspace/wt/g.txt"' "$STATE/watch.sse"
run 'rm -rf /workspace/wt' > /dev/null
wait $WATCH
events=$(sed -n 's/^data: //p' "$STATE/watch.sse" | jq -r 'select(.type=="event") | "\(.eventType):\(.path | ltrimstr("/workspace/wt/"))"' | flat)
check_contains "create, modify, a new directory watched too" "create:f.txt modify:f.txt create:newdir create:newdir/inner create:sub/y move_from:f.txt move_to:g.txt delete:g.txt" "$events"
check_not_contains "node_modules is left out" "node_modules" "$events"
check_eq "stopped when the directory goes" "watching stopped" "$(sed -n 's/^data: //p' "$STATE/watch.sse" | jq -r 'select(.type!="event") | .type' | flat)"
check_eq "a missing directory: 404" "404 FILE_NOT_FOUND" "$(post watch '{"path": "/workspace/nope"}' | jq -r '"\(.httpStatus) \(.code)"')"
N2=http://b/v1/classes/Box/instances/watched
api -d '{"command": "mkdir -p /workspace/w2"}' "$N2/sandbox/api/execute" > /dev/null
api -N -d '{"path": "/workspace/w2"}' "$N2/sandbox/api/watch" > "$STATE/watch2.sse" &
WATCH=$!
wait_for "watching" 50 grep -q watching "$STATE/watch2.sse"
api -X POST -d '{"graceMs": 100}' "$N2/stop" > /dev/null
wait $WATCH
check_contains "a watch ends when its container does" '"reason":"the container stopped"' "$(cat "$STATE/watch2.sse")"
wait_for "the stop" 50 sh -c "curl -s --unix-socket $SOCK $N2/state | grep -q '\"status\":\"stopped'"
check_contains "and does not hold the instance" '"status":"stopped' "$(api "$N2/state")"

echo "-- port-watch: until a port in the container answers"
post process/start '{"command": "sleep 0.3; echo-server --port 9090", "processId": "srv"}' > /dev/null
out=$(post port-watch '{"port": 9090, "mode": "http", "path": "/", "processId": "srv", "interval": 100}' | sed -n 's/^data: //p')
check_eq "watching, then ready with the HTTP status" "watching ready 200" "$(echo "$out" | jq -r .type | flat) $(echo "$out" | jq -r 'select(.type=="ready") | .statusCode')"
check_eq "mode tcp" "watching ready" "$(post port-watch '{"port": 9090, "mode": "tcp"}' | sed -n 's/^data: //p' | jq -r .type | flat)"
post process/start '{"command": "sleep 0.2; exit 3", "processId": "dies"}' > /dev/null
out=$(post port-watch '{"port": 9999, "mode": "tcp", "processId": "dies", "interval": 100}' | sed -n 's/^data: //p')
check_eq "the process exits first: process_exited with its code" "watching process_exited 3" "$(echo "$out" | jq -r .type | flat) $(echo "$out" | jq -r 'select(.type=="process_exited") | .exitCode')"
check_eq "no port: 400 INVALID_PORT" "400 INVALID_PORT" "$(post port-watch '{"mode": "tcp"}' | jq -r '"\(.httpStatus) \(.code)"')"
api -X DELETE "$S/process/srv" > /dev/null

echo "-- files"
check_eq "write (utf-8), parents made" true "$(post write '{"path": "/workspace/a/b/hello.txt", "content": "héllo\n"}' | jq .success)"
out=$(post read '{"path": "/workspace/a/b/hello.txt"}')
check_eq "read it back" "héllo utf-8 false 7" "$(echo "$out" | jq -r '"\(.content | rtrimstr("\n")) \(.encoding) \(.isBinary) \(.size)"')"
check_eq "relative paths: from the session's cwd" "héllo" "$(post read '{"path": "a/b/hello.txt", "sessionId": "fresh"}' | jq -r .content | tr -d '\n')"
all=$(for i in $(seq 0 255); do printf "\\$(printf %03o "$i")"; done | base64 -w0)
check_eq "write base64 (all 256 byte values)" true "$(post write "{\"path\": \"/workspace/bytes.bin\", \"content\": \"$all\", \"encoding\": \"base64\"}" | jq .success)"
check_eq "byte for byte inside the container" "256 $(printf '%s' "$all" | base64 -d | md5sum | cut -d' ' -f1)" \
	"$(run 'wc -c < /workspace/bytes.bin; md5sum /workspace/bytes.bin' | awk '{print $1}' | flat)"
out=$(post read '{"path": "/workspace/bytes.bin"}')
check_eq "read: detected binary, base64" "true base64 application/octet-stream" "$(echo "$out" | jq -r '"\(.isBinary) \(.encoding) \(.mimeType)"')"
check_eq "the same bytes" "$all" "$(echo "$out" | jq -r .content)"
check_eq "a text file asked as base64" "$(printf 'héllo\n' | base64)" "$(post read '{"path": "/workspace/a/b/hello.txt", "encoding": "base64"}' | jq -r .content)"
check_eq "a missing file: 404 FILE_NOT_FOUND" "404 FILE_NOT_FOUND" "$(post read '{"path": "/workspace/nope"}' | jq -r '"\(.httpStatus) \(.code)"')"
check_eq "a directory: 400 IS_DIRECTORY" "400 IS_DIRECTORY" "$(post read '{"path": "/workspace/a"}' | jq -r '"\(.httpStatus) \(.code)"')"
check_eq "mkdir without its parent: 404" 404 "$(post mkdir '{"path": "/workspace/x/y"}' | jq .httpStatus)"
check_eq "mkdir recursive" "true true" "$(post mkdir '{"path": "/workspace/x/y/z", "recursive": true}' | jq -r '"\(.success) \(.recursive)"')"
check_eq "mkdir again: 409 FILE_EXISTS" "409 FILE_EXISTS" "$(post mkdir '{"path": "/workspace/x"}' | jq -r '"\(.httpStatus) \(.code)"')"
check_eq "exists" "true false" "$(post exists '{"path": "/workspace/x/y"}' | jq .exists) $(post exists '{"path": "/workspace/x/q"}' | jq .exists)"
run 'touch /workspace/x/.hidden /workspace/x/y/file' > /dev/null
check_eq "list-files" "y" "$(post list-files '{"path": "/workspace/x"}' | jq -r '[.files[].name] | sort | join(" ")')"
out=$(post list-files '{"path": "/workspace/x", "options": {"recursive": true, "includeHidden": true}}')
check_eq "recursive, hidden too" ".hidden y y/file y/z" "$(echo "$out" | jq -r '[.files[].relativePath] | sort | join(" ")')"
check_eq "with types, sizes, modes" "file directory rw-r--r-- /workspace/x/y/file" \
	"$(echo "$out" | jq -r '[(.files[] | select(.name=="file") | .type), (.files[] | select(.name=="y") | .type), (.files[] | select(.name=="file") | .mode), (.files[] | select(.name=="file") | .absolutePath)] | join(" ")')"
check_eq "rename" "/workspace/x/y/file2" "$(post rename '{"oldPath": "/workspace/x/y/file", "newPath": "/workspace/x/y/file2"}' | jq -r .newPath)"
check_eq "rename onto an existing name: 409" 409 "$(post rename '{"oldPath": "/workspace/x/y/file2", "newPath": "/workspace/bytes.bin"}' | jq .httpStatus)"
check_eq "move into a directory" "/workspace/x/file2" "$(post move '{"sourcePath": "/workspace/x/y/file2", "destinationPath": "/workspace/x"}' | jq -r .newPath)"
check_eq "delete" "true false" "$(post delete '{"path": "/workspace/x/file2"}' | jq .success) $(post exists '{"path": "/workspace/x/file2"}' | jq .exists)"
check_eq "delete a directory: 400 IS_DIRECTORY" IS_DIRECTORY "$(post delete '{"path": "/workspace/x"}' | jq -r .code)"
out=$(post read/stream '{"path": "/workspace/bytes.bin"}' | sed -n 's/^data: //p')
check_eq "read/stream: metadata, chunk, complete" "metadata chunk complete" "$(echo "$out" | jq -r .type | tr '\n' ' ' | sed 's/ $//')"
check_eq "the bytes, base64" "$all" "$(echo "$out" | jq -r 'select(.type=="chunk") | .data')"
big=$(head -c 3000000 /dev/urandom | base64 -w0)
check_eq "a 3 MB write through the SDK's JSON (over 1 MiB)" true "$(printf '{"path": "/workspace/big3", "content": "%s", "encoding": "base64"}' "$big" | api -H 'Content-Type: application/json' --data-binary @- "$S/write" | jq .success)"
check_eq "read back the same" "$(printf '%s' "$big" | md5sum)" "$(post read '{"path": "/workspace/big3"}' | jq -r .content | tr -d '\n' | md5sum)"

run 'mkfifo /workspace/fifo' > /dev/null
check_eq "reading a FIFO is refused, at once" "500 not a regular file" "$(timeout 5 curl -s --unix-socket "$SOCK" -d '{"path": "/workspace/fifo"}' "$S/read" | jq -r '"\(.httpStatus) \(.message | sub(".*` is "; ""))"')"
check_eq "so is writing one" 500 "$(timeout 5 curl -s --unix-socket "$SOCK" -d '{"path": "/workspace/fifo", "content": "x"}' "$S/write" | jq .httpStatus)"
check_eq "and streaming /dev/urandom" 500 "$(timeout 5 curl -s --unix-socket "$SOCK" -d '{"path": "/dev/urandom"}' "$S/read/stream" | jq .httpStatus)"
check_eq "berth's files API too" 500 "$(timeout 5 curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "$I/files?path=/dev/zero")"
check_eq "the files still work (no worker thread is stuck)" true "$(post exists '{"path": "/workspace/fifo"}' | jq .exists)"

echo "-- path escapes: refused, nothing outside touched"
MARK=berth-escape-$$
check_eq "'..' above the root: 403" "403 PERMISSION_DENIED" "$(post write "{\"path\": \"/workspace/../../../tmp/$MARK\", \"content\": \"x\"}" | jq -r '"\(.httpStatus) \(.code)"')"
check_eq "relative '..' above the root: 403" 403 "$(post read '{"path": "../../../../etc/passwd"}' | jq .httpStatus)"
check_eq "/proc/self/root: refused" true "$(post write "{\"path\": \"/proc/self/root/tmp/$MARK\", \"content\": \"x\"}" | jq '.success != true')"
check_eq "/proc/1/root (a magic link): 403" 403 "$(post read '{"path": "/proc/1/root/etc/hostname"}' | jq .httpStatus)"
run "ln -sfn / /workspace/toroot; ln -sfn ../../../../../../.. /workspace/up; ln -sfn /tmp /workspace/tmplink" > /dev/null
check_eq "an absolute symlink resolves inside" true "$(post write "{\"path\": \"/workspace/toroot/tmp/$MARK\", \"content\": \"inside\"}" | jq .success)"
check_eq "a relative one climbing too" true "$(post write "{\"path\": \"/workspace/up/tmp/$MARK.2\", \"content\": \"inside\"}" | jq .success)"
check_eq "through a dangling link to a directory" true "$(post write "{\"path\": \"/workspace/tmplink/$MARK.3\", \"content\": \"inside\"}" | jq .success)"
check_eq "the files are the container's" "insideinsideinside" "$(run "cat /tmp/$MARK /tmp/$MARK.2 /tmp/$MARK.3")"
check_eq "the host's /tmp has none of them" "" "$(ls /tmp | grep "$MARK")"
check_eq "a container's /etc/hostname is its own" true "$(post read '{"path": "/workspace/up/etc/hostname"}' | jq --arg h "$(cat /etc/hostname)" '.content != $h + "\n"')"
check_eq "berth's files API refuses '..' too" 403 "$(status_of "$I/files?path=/../../etc/passwd")"

echo "-- a 100 MB file round trip (berth's files API), bounded daemon memory"
head -c 100000000 /dev/urandom > "$STATE/big.bin"
hwm() { awk '/VmHWM/ {print $2}' "/proc/$BERTHD/status"; }
before=$(hwm)
out=$(api -T "$STATE/big.bin" "$I/files?path=/workspace/big.bin")
check_eq "PUT: stored" "100000000" "$(echo "$out" | jq .size)"
api "$I/files?path=/workspace/big.bin" -o "$STATE/big.out"
check_true "GET: the same bytes" cmp -s "$STATE/big.bin" "$STATE/big.out"
out=$(post read/stream '{"path": "/workspace/big.bin"}' | sed -n 's/^data: //p' | jq -r 'select(.type=="chunk") | .data' | base64 -d | md5sum)
check_eq "and through read/stream" "$(md5sum < "$STATE/big.bin")" "$out"
check_eq "read whole: 413 FILE_TOO_LARGE (over 32 MiB)" "413 FILE_TOO_LARGE" "$(post read '{"path": "/workspace/big.bin"}' | jq -r '"\(.httpStatus) \(.code)"')"
grew=$((($(hwm) - before) / 1024))
check_true "berthd's peak memory grew by $grew MiB (< 48)" test "$grew" -lt 48
rm -f "$STATE/big.bin" "$STATE/big.out"

echo "-- uploads: written as they come, named only when whole"
head -c 5000000 /dev/urandom > "$STATE/up.bin"
check_eq "a chunked upload (from a pipe), 5 MB" 5000000 "$(cat "$STATE/up.bin" | api -T - "$I/files?path=/workspace/uploads/chunked.bin" | jq .size)"
check_true "the same bytes back" cmp -s "$STATE/up.bin" <(api "$I/files?path=/workspace/uploads/chunked.bin")
check_eq "an empty upload: an empty file" "0 0" "$(api -T /dev/null "$I/files?path=/workspace/uploads/empty" | jq .size) $(in_ctr stat -c %s /workspace/uploads/empty | jq -r .stdout | flat)"
run 'printf old > /workspace/uploads/tool.sh; chmod 750 /workspace/uploads/tool.sh; ln -s tool.sh /workspace/uploads/link; ln -s /workspace/uploads/nowhere /workspace/uploads/dangling' > /dev/null
check_eq "over a file: replaced, its mode kept" "new 750" \
	"$(printf new | api -T - "$I/files?path=/workspace/uploads/tool.sh" > /dev/null; run 'cat /workspace/uploads/tool.sh; echo " $(stat -c %a /workspace/uploads/tool.sh)"')"
check_eq "through a symlink: the file it names is written, the link stays" "linked link" \
	"$(printf linked | api -T - "$I/files?path=/workspace/uploads/link" > /dev/null; run 'cat /workspace/uploads/tool.sh; [ -L /workspace/uploads/link ] && echo " link"')"
check_eq "through a dangling symlink: its target is made" "made" \
	"$(printf made | api -T - "$I/files?path=/workspace/uploads/dangling" > /dev/null; run 'cat /workspace/uploads/nowhere')"
check_eq "onto a directory: 400 is_directory" "400 is_directory" \
	"$(printf x | status_of -T - "$I/files?path=/workspace/uploads") $(printf x | api -T - "$I/files?path=/workspace/uploads" | jq -r .error.code)"
check_eq "onto a FIFO: refused" 500 "$(run 'mkfifo /workspace/uploads/fifo' > /dev/null; printf x | timeout 5 curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -T - "$I/files?path=/workspace/uploads/fifo")"
check_eq "more than 64 GiB announced: 413 at once" 413 "$(status_of -X PUT -H 'Content-Length: 68719476737' --data-binary @/dev/null "$I/files?path=/workspace/uploads/huge")"
# upload_fd: berthd holds the file of an upload into /workspace/uploads: unnamed
# (O_TMPFILE), or hidden where the file system has no O_TMPFILE.
upload_fd() { ls -l "/proc/$BERTHD/fd" | grep -qE '/workspace/uploads/(#[0-9]+ \(deleted\)|\.tool\.sh\.upload-)'; }
for framing in length chunked; do
	# Slowly: from a file (Content-Length), or from stdin (chunked); curl itself
	# in the background (not a function's subshell), so that the kill is its.
	if [ "$framing" = length ]; then
		curl -s --unix-socket "$SOCK" --limit-rate 1M -T "$STATE/up.bin" "$I/files?path=/workspace/uploads/tool.sh" > /dev/null &
	else
		curl -s --unix-socket "$SOCK" --limit-rate 1M -T - "$I/files?path=/workspace/uploads/tool.sh" < "$STATE/up.bin" > /dev/null &
	fi
	CUT=$!
	wait_for "the upload ($framing) to be written" 100 upload_fd
	check_true "cut short ($framing): while it comes, berthd writes it aside" upload_fd
	kill "$CUT"
	wait "$CUT" 2> /dev/null
	wait_for "the upload to be dropped" 50 eval '! upload_fd'
	check_eq "cut short ($framing): the old file is whole, nothing else is left" "linked | chunked.bin dangling empty fifo link nowhere tool.sh" \
		"$(run 'head -c 64 /workspace/uploads/tool.sh | tr -c a-z ?; echo " |"; ls -A /workspace/uploads' | flat)"
done
rm -f "$STATE/up.bin"

echo "-- berth's exec: argv, stdin, env, cwd, timeout"
out=$(api -d '{"argv": ["cat"], "stdin": "given on stdin"}' "$I/exec")
check_eq "stdin" "given on stdin 0" "$(echo "$out" | jq -r '"\(.stdout) \(.exitCode)"')"
out=$(api -d '{"argv": ["sh", "-c", "echo $A; pwd; exit 5"], "env": {"A": "a b"}, "cwd": "/etc"}' "$I/exec")
check_eq "env, cwd, exit code" "a b /etc 5" "$(echo "$out" | jq -r '"\(.stdout | split("\n") | join(" "))\(.exitCode)"')"
check_eq "the container's own env stays (PATH)" true "$(api -d '{"argv": ["sh", "-c", "echo $PATH"], "env": {"A": "1"}}' "$I/exec" | jq '.stdout | contains("/bin")')"
out=$(api -d '{"argv": ["head", "-c", "4", "/workspace/bytes.bin"], "encoding": "base64"}' "$I/exec")
check_eq "binary output as base64" "AAECAw== base64" "$(echo "$out" | jq -r '"\(.stdout) \(.encoding)"')"
out=$(api -d '{"argv": ["sleep", "10"], "timeoutMs": 200}' "$I/exec")
check_eq "timeout" "137 true 9" "$(echo "$out" | jq -r '"\(.exitCode) \(.timedOut) \(.signal)"')"
check_eq "a missing command: 404" 404 "$(status_of -d '{"argv": ["nope"]}' "$I/exec")"
check_contains "saying so" '"code":"command_not_found","message":"executable not found in image: nope' "$(api -d '{"argv": ["nope"]}' "$I/exec")"
check_eq "no argv: 400" 400 "$(status_of -d '{}' "$I/exec")"
out=$(api -d '{"argv": ["sh", "-c", "echo 1; echo 2 >&2; exit 6"], "stream": true}' "$I/exec" | sed -n 's/^data: //p')
check_eq "streamed: start, stdout, stderr, exit" "start stdout stderr exit 6" "$(echo "$out" | jq -r .type | tr '\n' ' ')$(echo "$out" | jq -r 'select(.type=="exit") | .exitCode')"

echo "-- git, in an image without git"
out=$(post git/checkout '{"repoUrl": "https://example.com/org/repo.git"}')
check_eq "a clear error" "500 GIT_OPERATION_FAILED" "$(echo "$out" | jq -r '"\(.httpStatus) \(.code)"')"
check_contains "that says why" "git is not installed" "$(echo "$out" | jq -r .message)"
check_eq "a bad URL: 400 INVALID_GIT_URL" "400 INVALID_GIT_URL" "$(post git/checkout '{"repoUrl": "--upload-pack=x"}' | jq -r '"\(.httpStatus) \(.code)"')"

echo "-- git, in an image with git"
G=http://b/v1/classes/Git/instances/g1/sandbox/api
gpost() { api -H 'Content-Type: application/json' -d "$2" "$G/$1"; }
out=$(gpost git/checkout '{"repoUrl": "file:///srv/repo.git", "branch": "feature", "targetDir": "/workspace/co", "depth": 1}')
check_eq "a clone of branch feature, depth 1" "true file:///srv/repo.git feature /workspace/co 24" \
	"$(echo "$out" | jq -r '"\(.success) \(.repoUrl) \(.branch) \(.targetDir) \(.timestamp | length)"')"
check_eq "the branch's file, through /api/read" "on feature" "$(gpost read '{"path": "/workspace/co/README"}' | jq -r .content | tr -d '\n')"
check_eq "checked out on that branch" "ref: refs/heads/feature" "$(gpost read '{"path": "/workspace/co/.git/HEAD"}' | jq -r .content | tr -d '\n')"
out=$(gpost execute '{"command": "git -C /workspace/co rev-list --count HEAD; git -C /workspace/co log -1 --format=%s"}' | jq -r .stdout)
check_eq "shallow: one commit, the branch's" "1 second" "$(echo $out)"
out=$(gpost git/checkout '{"repoUrl": "file:///srv/repo.git"}')
check_eq "no branch, no targetDir: the remote's HEAD, into /workspace/REPO" "true main /workspace/repo" \
	"$(echo "$out" | jq -r '"\(.success) \(.branch) \(.targetDir)"')"
check_eq "its file" "on main" "$(gpost read '{"path": "/workspace/repo/README"}' | jq -r .content | tr -d '\n')"
check_eq "a relative targetDir: from the session's cwd" "true /tmp/rel on main" \
	"$(gpost execute '{"command": "cd /tmp"}' > /dev/null; gpost git/checkout '{"repoUrl": "file:///srv/repo.git", "targetDir": "rel"}' | jq -r '"\(.success) \(.targetDir)"') $(gpost read '{"path": "/tmp/rel/README"}' | jq -r .content | tr -d '\n')"
out=$(gpost git/checkout '{"repoUrl": "file:///srv/repo.git", "branch": "nope", "targetDir": "/workspace/nb"}')
check_eq "a branch the repository has not: 404 GIT_BRANCH_NOT_FOUND" "404 GIT_BRANCH_NOT_FOUND" "$(echo "$out" | jq -r '"\(.httpStatus) \(.code)"')"
out=$(gpost git/checkout '{"repoUrl": "file:///srv/none.git", "targetDir": "/workspace/nr"}')
check_eq "a repository that is not there: 404 GIT_REPOSITORY_NOT_FOUND" "404 GIT_REPOSITORY_NOT_FOUND" "$(echo "$out" | jq -r '"\(.httpStatus) \(.code)"')"
out=$(gpost git/checkout '{"repoUrl": "file:///srv/repo.git", "targetDir": "/workspace/co"}')
check_eq "into a directory that is not empty: a clone failure that says so" "500 GIT_CLONE_FAILED true" \
	"$(echo "$out" | jq -r '"\(.httpStatus) \(.code) \(.message | contains("already exists and is not an empty directory"))"')"

echo "-- a container that runs as a user (the image's User, 1000:1000)"
U=http://b/v1/classes/User/instances/u1
US=$U/sandbox/api
upost() { api -H 'Content-Type: application/json' -d "$2" "$US/$1"; }
urun() { upost execute "$(jq -nc --arg c "$1" '{command: $c}')" | jq -r .stdout; }
owners() { api -d "$(jq -nc --args '{argv: (["stat", "-c", "%u:%g"] + $ARGS.positional)}' "$@")" "$U/exec" | jq -r .stdout | flat; }
check_eq "commands run as 1000:1000: execute, berth's exec, a process" "1000:1000 1000 1000" \
	"$(urun 'echo $(id -u):$(id -g)') $(api -d '{"argv": ["id", "-u"]}' "$U/exec" | jq -r .stdout) $(upost process/start '{"command": "id -u", "processId": "idu"}' > /dev/null; wait_for "its output" 30 sh -c "curl -s --unix-socket $SOCK $US/process/idu/logs | grep -q 1000"; api "$US/process/idu/logs" | jq -r .stdout)"
check_eq "the default cwd /workspace is there, and the user's" "/workspace 1000:1000" "$(urun pwd) $(owners /workspace)"
check_eq "write, parents made" true "$(upost write '{"path": "/workspace/u/a/f.txt", "content": "x"}' | jq .success)"
check_eq "mkdir" true "$(upost mkdir '{"path": "/workspace/u/d"}' | jq .success)"
check_eq "mkdir recursive" true "$(upost mkdir '{"path": "/workspace/u/r/s", "recursive": true}' | jq .success)"
check_eq "PUT .../files" 3 "$(printf abc | api -T - "$U/files?path=/workspace/u/up.bin" | jq .size)"
check_eq "rename" true "$(upost rename '{"oldPath": "/workspace/u/a/f.txt", "newPath": "/workspace/u/g.txt"}' | jq .success)"
check_eq "all of it the container user's" "1000:1000 1000:1000 1000:1000 1000:1000 1000:1000 1000:1000 1000:1000" \
	"$(owners /workspace/u /workspace/u/a /workspace/u/g.txt /workspace/u/d /workspace/u/r /workspace/u/r/s /workspace/u/up.bin)"
check_eq "in the sticky /tmp too" "1000:1000 1000:1000" "$(upost write '{"path": "/tmp/t/x", "content": "x"}' > /dev/null; owners /tmp/t /tmp/t/x)"
check_eq "the user cannot write in a root-owned 0755 directory" "denied" "$(urun 'touch /srv/rootonly/x 2>/dev/null || echo denied')"
while IFS='|' read -r what op body; do
	check_eq "nor can berth: $what, 403 PERMISSION_DENIED" "403 PERMISSION_DENIED" "$(upost "$op" "$body" | jq -r '"\(.httpStatus) \(.code)"')"
done <<'CASES'
write a file there|write|{"path": "/srv/rootonly/f", "content": "x"}
make a directory there|mkdir|{"path": "/srv/rootonly/d"}
make directories there|mkdir|{"path": "/srv/rootonly/p/q", "recursive": true}
rename a file into it|rename|{"oldPath": "/workspace/u/g.txt", "newPath": "/srv/rootonly/g.txt"}
move a file into it|move|{"sourcePath": "/workspace/u/g.txt", "destinationPath": "/srv/rootonly"}
delete a root file from /srv|delete|{"path": "/srv/secret"}
CASES
check_eq "nor PUT .../files: 403" 403 "$(printf abc | status_of -T - "$U/files?path=/srv/rootonly/up")"
check_eq "nothing was made there" "" "$(api -d '{"argv": ["ls", "-A", "/srv/rootonly"]}' "$U/exec" | jq -r .stdout)"
check_eq "a root:root 0775 directory: berthd is in group 0, the user is not" "denied 403" \
	"$(urun 'touch /srv/group0/x 2>/dev/null || echo denied') $(upost write '{"path": "/srv/group0/f", "content": "x"}' | jq .httpStatus)"
check_eq "a 0600 file of root's: the user cannot read it, nor can berth" "denied 403 403" \
	"$(urun 'cat /srv/secret 2>/dev/null || echo denied') $(upost read '{"path": "/srv/secret"}' | jq .httpStatus) $(status_of "$U/files?path=/srv/secret")"
check_eq "and the secret, not deleted, is still there" "true" "$(upost exists '{"path": "/srv/secret"}' | jq .exists)"
check_eq "watching a directory the user may not read: 403" "403 PERMISSION_DENIED" "$(api --max-time 5 -d '{"path": "/srv/private"}' "$US/watch" | jq -r '"\(.httpStatus) \(.code)"')"
urun 'mkdir -p /workspace/w/closed && chmod 300 /workspace/w/closed' > /dev/null
api -N -d '{"path": "/workspace/w"}' "$US/watch" > "$STATE/uwatch.sse" &
UWATCH=$!
wait_for "watching" 50 grep -q watching "$STATE/uwatch.sse"
urun 'touch /workspace/w/closed/x /workspace/w/seen' > /dev/null
wait_for "the event" 50 grep -q '"path":"/workspace/w/seen"' "$STATE/uwatch.sse"
kill $UWATCH
wait $UWATCH 2>/dev/null
check_eq "below it, one the user can write but not read is not watched" "create:seen" \
	"$(sed -n 's/^data: //p' "$STATE/uwatch.sse" | jq -r 'select(.type=="event") | "\(.eventType):\(.path | ltrimstr("/workspace/w/"))"' | sort -u | flat)"

echo "-- a stream says error when the container dies under it"
api -N -d '{"command": "echo begun; sleep 30"}' "$S/execute/stream" > "$STATE/dying.sse" &
STREAM=$!
wait_for "the command's output" 50 grep -q '"type":"stdout"' "$STATE/dying.sse"
api -X POST -d '{"graceMs": 100}' "$I/stop" > /dev/null
wait $STREAM
check_eq "start, stdout, error" "start stdout error" "$(sed -n 's/^data: //p' "$STATE/dying.sse" | jq -r .type | flat)"
wait_for "the stop" 50 sh -c "curl -s --unix-socket $SOCK $I/state | grep -q '\"status\":\"stopped'"
check_eq "the next call starts it again, state fresh" /workspace "$(run pwd)"

echo "-- activity: a running command keeps the instance awake"
N=http://b/v1/classes/Nap/instances/n1
api -d '{"command": "sleep 2.5; echo done"}' "$N/sandbox/api/execute" > "$STATE/nap.json" &
NAP=$!
sleep 2
check_contains "past sleepAfter (1s), it runs" '"status":"healthy"' "$(api "$N/state")"
wait $NAP
check_eq "the command finished" done "$(jq -r .stdout "$STATE/nap.json" | tr -d '\n')"
wait_for "sleep after the command" 40 sh -c "curl -s --unix-socket $SOCK $N/state | grep -q '\"status\":\"stopped'"
check_contains "then it sleeps" '"status":"stopped' "$(api "$N/state")"

echo "-- a client that leaves takes its command along"
curl -s --max-time 0.5 --unix-socket "$SOCK" -d '{"command": "sleep 40 & sleep 41"}' "$S/execute" > /dev/null
wait_for "the command's end" 30 sh -c "! curl -s --unix-socket $SOCK -d '{\"argv\":[\"ps\"]}' $I/exec | grep -q 'sleep 4[01]'"
check_eq "no sleep left" 0 "$(in_ctr ps -o args | jq -r .stdout | grep -c 'sleep 4[01]')"

echo "-- berth exec (the CLI)"
berth() { BERTH_SOCKET=$SOCK "$BERTH_BIN/berth" "$@"; }
out=$(berth exec Box/s1 -- sh -c 'echo out; echo err >&2; exit 3' 2> "$STATE/err")
check_eq "stdout, stderr, exit status" "out err 3" "$out $(cat "$STATE/err") $(berth exec Box/s1 -- sh -c 'exit 3' > /dev/null 2>&1; echo $?)"
check_eq "options end at CLASS/NAME" "-l" "$(berth exec Box/s1 echo -l)"
check_eq "--env, --workdir" "1 /tmp" "$(berth exec -e A=1 -w /tmp Box/s1 sh -c 'echo $A $PWD')"
check_eq "--stdin" "piped in" "$(echo 'piped in' | berth exec -i Box/s1 cat)"
printf '%s' "$all" | base64 -d > "$STATE/bytes.bin"
check_eq "PUT .../files of a small file" 256 "$(api -T "$STATE/bytes.bin" "$I/files?path=/workspace/bytes.bin" | jq .size)"
check_eq "binary output, byte for byte" "$(md5sum < /dev/null | cut -c1-8) $(printf '%s' "$all" | base64 -d | md5sum | cut -c1-8)" \
	"$(berth exec Box/s1 true | md5sum | cut -c1-8) $(berth exec Box/s1 cat /workspace/bytes.bin | md5sum | cut -c1-8)"
berth exec --timeout 300ms Box/s1 sleep 10
check_eq "--timeout: killed (137)" 137 $?
berth exec Box/s1 no-such-command 2> "$STATE/err"
check_eq "a missing command: 127" 127 $?
check_contains "saying so" "executable not found in image: no-such-command" "$(cat "$STATE/err")"
berth exec Box/s1 > /dev/null 2>&1
check_eq "no command: usage error (2)" 2 $?
berth exec Nope/x true 2> "$STATE/err"
check_eq "an unknown class: 1" 1 $?
check_contains "saying so" "no container class \`Nope\`" "$(cat "$STATE/err")"

echo "-- berth exec -t: a terminal of the container's, over a WebSocket"
out=$(printf 'echo hi-$((1+2)); tty; exit 7\n' | berth exec -it Box/s1 sh 2>&1)
check_eq "piped input, the command's exit status" 7 $?
check_contains "its output" "hi-3" "$out"
check_contains "on the container's own pty" "/dev/pts/0" "$out"
out=$(berth exec -t Box/s1 sh -c 'test -t 0 && test -t 1 && echo on-a-tty; exit 4')
check_eq "without -i" 4 $?
check_contains "stdin and stdout are a terminal" "on-a-tty" "$out"
berth exec -t Box/s1 no-such-command 2> "$STATE/err"
check_eq "a missing command: 127" 127 $?
check_contains "saying so" "executable not found in image: no-such-command" "$(cat "$STATE/err")"
out=$(script -qec "stty cols 101 rows 31; BERTH_SOCKET=$SOCK $BERTH_BIN/berth exec -t Box/s1 stty size" /dev/null)
check_contains "the window's size follows berth's terminal" "31 101" "$out"
start=$(date +%s)
out=$( (printf 'sleep 30\r'; sleep 1; printf '\003'; sleep 0.5; printf 'echo after-int\rexit 5\r') |
	script -qec "BERTH_SOCKET=$SOCK $BERTH_BIN/berth exec -it Box/s1 sh" /dev/null)
check_eq "through a real terminal: ^C interrupts, exit 5" 5 $?
check_contains "the shell went on after ^C" "after-int" "$out"
check_true "at once, not after sleep 30 ($(($(date +%s) - start)) s)" test $(($(date +%s) - start)) -lt 15
(exec "$BERTH_BIN/berth" --socket "$SOCK" exec -t Box/s1 sleep 77 > /dev/null 2>&1) &
TTYCMD=$!
wait_for "the command" 50 sh -c "curl -s --unix-socket $SOCK -d '{\"argv\":[\"ps\",\"-o\",\"args\"]}' $I/exec | grep -q 'sleep 77'"
kill -KILL $TTYCMD
wait $TTYCMD 2>/dev/null
wait_for "the command's end" 50 sh -c "! curl -s --unix-socket $SOCK -d '{\"argv\":[\"ps\",\"-o\",\"args\"]}' $I/exec | grep -q 'sleep 77'"
check_eq "a client that leaves takes the command along" 0 "$(in_ctr ps -o args | jq -r .stdout | grep -cx 'sleep 77')"

echo "-- details"
check_eq "a NUL in a path: 400" 400 "$(post read '{"path": "/etc/passwd\u0000.txt"}' | jq .httpStatus)"
out=$(post execute '{"command": "echo in the background", "background": true}')
id=$(echo "$out" | jq -r .processId)
check_eq "execute with background: true starts a process" true "$(echo "$out" | jq '.success and .pid > 0')"
wait_for "its output" 30 sh -c "curl -s --unix-socket $SOCK $S/process/$id/logs | grep -q background"

kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly" 0 $?

echo "-- berthd stops (leaving containers running) while a command runs"
"$BERTH_BIN/berthd" --live-restore --config "$STATE/berth.jsonc" >> "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 sh -c "curl -s --unix-socket $SOCK http://b/v1/health | grep -q ok"
api -N -d '{"command": "echo begun; sleep 100"}' "$S/execute/stream" > "$STATE/longcmd.sse" &
CMD=$!
wait_for "the command's output" 50 grep -q '"type":"stdout"' "$STATE/longcmd.sse"
start=$(date +%s)
kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly" 0 $?
check_true "at once, without waiting for the command ($(($(date +%s) - start)) s)" test $(($(date +%s) - start)) -lt 5
wait $CMD
check_eq "the command was killed, and the stream said so" "start stdout error" \
	"$(sed -n 's/^data: //p' "$STATE/longcmd.sse" | jq -r '.type' | flat)"
check_contains "why" "berthd is stopping: the command was killed" "$(cat "$STATE/longcmd.sse")"
# The container was left running: the next berthd adopts it, and stops it.
"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" >> "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 sh -c "curl -s --unix-socket $SOCK http://b/v1/health | grep -q ok"
check_contains "the container still runs" '"status":"healthy"' "$(api "$I/state")"
check_eq "the killed command is gone from it" 0 "$(in_ctr ps -o args | jq -r .stdout | grep -cx 'sleep 100')"
check_eq "and the sandbox works in it" "/workspace" "$(run pwd)"
kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly" 0 $?
finish
