#!/bin/bash
# The CLI for a sandbox's files and background processes, driven only
# through bin/berth against a real berthd: `berth cp` both ways (files,
# stdin/stdout, directories as destinations, 100 MiB streamed), its
# refusals (missing files, path escapes, permissions) with nothing left
# behind locally, `berth ls`, and `berth proc` start/ls/logs/kill.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/images.sh"

# An image whose config runs it as 1000:1000, with a secret only root reads.
UL=$STATE/userlayer
cp -a "$ROOTFS" "$UL"
mkdir -p "$UL/srv"
echo secret > "$UL/srv/secret" && chmod 600 "$UL/srv/secret"
COMPRESS=none mk_oci_layout "$STATE/layout" user '{"User": "1000:1000"}' "$UL" > /dev/null

SOCK=$STATE/berth.sock
cat > "$STATE/berth.jsonc" <<JSON
{
  "containers": [
    {"class_name": "Box", "image": "$ROOTFS", "entrypoint": ["sleep", "1000000"]},
    {"class_name": "User", "image": "$STATE/layout:user", "entrypoint": ["sleep", "1000000"]},
  ],
  "berth": {"state_dir": "$STATE/state", "api": {"socket": "$SOCK"}},
}
JSON
"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" > "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 test -S "$SOCK"
export BERTH_SOCKET=$SOCK
berth() { "$BERTH_BIN/berth" "$@"; }
# in_ctr ARGV...: the command's stdout in Box/c1
in_ctr() { berth exec Box/c1 -- "$@"; }
# Files a download may have left in a directory (hidden ones included).
left_in() { ls -A "$1" | tr '\n' ' ' | sed 's/ $//'; }
# berth ARGS...: the first line it printed (stdout and stderr) and its status
first_line() { local out st; out=$(berth "$@" 2>&1); st=$?; echo "$(head -1 <<<"$out") $st"; }

L=$STATE/local
mkdir -p "$L/dl" "$L/empty"

echo "-- cp: round trips"
printf 'hello, sandbox\nsecond line\n' > "$L/hello.txt"
check_eq "upload a text file: nothing printed" "" "$(berth cp "$L/hello.txt" Box/c1:/workspace/hello.txt)"
check_eq "it is in the container" "$(cat "$L/hello.txt")" "$(in_ctr cat /workspace/hello.txt)"
berth cp Box/c1:/workspace/hello.txt "$L/hello.back"
check_eq "download it: exit 0" 0 "$?"
check_true "the same bytes back" cmp -s "$L/hello.txt" "$L/hello.back"
head -c 3000000 /dev/urandom > "$L/random.bin"
berth cp "$L/random.bin" Box/c1:/workspace/bin/random.bin
check_eq "a binary file: its size in the container" 3000000 "$(in_ctr stat -c %s /workspace/bin/random.bin)"
berth cp Box/c1:/workspace/bin/random.bin "$L/random.back"
check_true "a binary file round trip" cmp -s "$L/random.bin" "$L/random.back"
check_eq "a new local file is as cp makes it (umask)" "$(umask -S >/dev/null; touch "$L/ref"; stat -c %a "$L/ref")" "$(stat -c %a "$L/random.back")"
check_eq "uploaded files are the container user's, 0644" "0:0 644" "$(in_ctr stat -c '%u:%g %a' /workspace/bin/random.bin)"

echo "-- cp: stdin and stdout"
printf 'from a pipe\0with a NUL' | berth cp - Box/c1:/workspace/piped
check_eq "stdin up: exit 0" 0 "$?"
check_eq "stdout down: the same bytes" "$(printf 'from a pipe\0with a NUL' | od -An -c)" "$(berth cp Box/c1:/workspace/piped - | od -An -c)"
check_true "a binary file to stdout" cmp -s "$L/random.bin" <(berth cp Box/c1:/workspace/bin/random.bin -)
out=$(printf x | berth cp - Box/c1:/workspace/ 2>&1)
check_eq "stdin into a directory: it needs a name" \
	"berth: \`/workspace/\` is a directory: name the file (Box/c1:/workspace/FILE) 1" "$out $?"
out=$(printf x | berth cp - Box/c1:/workspace 2>&1)
check_eq "stdin onto a directory without the slash: the same" \
	"berth: \`/workspace\` is a directory: name the file (Box/c1:/workspace/FILE) 1" "$out $?"

echo "-- cp: directories as destinations"
berth cp Box/c1:/workspace/hello.txt "$L/dl"
check_true "into a local directory: the source's name" cmp -s "$L/hello.txt" "$L/dl/hello.txt"
berth cp Box/c1:/workspace/piped "$L/dl/"
check_eq "with a trailing slash too" "hello.txt piped" "$(left_in "$L/dl")"
(cd "$L/dl" && berth cp Box/c1:/workspace/bin/random.bin .)
check_true "into ." cmp -s "$L/random.bin" "$L/dl/random.bin"
berth cp "$L/hello.txt" Box/c1:/workspace/bin
check_eq "into a directory in the container: the source's name" "$(cat "$L/hello.txt")" "$(in_ctr cat /workspace/bin/hello.txt)"
berth cp "$L/hello.txt" Box/c1:/workspace/new/dir/
check_eq "into a new directory (trailing slash): made, with the name" "$(cat "$L/hello.txt")" "$(in_ctr cat /workspace/new/dir/hello.txt)"
echo old > "$L/dl/keep"
ln -s keep "$L/dl/link"
printf new | berth cp - Box/c1:/workspace/new.txt
berth cp Box/c1:/workspace/new.txt "$L/dl/link"
check_eq "onto a local symlink: its target is written, the link stays" "new link" \
	"$(cat "$L/dl/keep") $(test -L "$L/dl/link" && echo link)"
check_eq "onto /dev/null: fine" "0" "$(berth cp Box/c1:/workspace/hello.txt /dev/null; echo $?)"

echo "-- cp: permission bits"
mkdir -p "$L/perm"
printf '#!/bin/sh\necho ran\n' > "$L/run.sh"
chmod 0750 "$L/run.sh"
berth cp "$L/run.sh" Box/c1:/workspace/run.sh
check_eq "an upload keeps the file's permission bits" 750 "$(in_ctr stat -c %a /workspace/run.sh)"
check_eq "so an uploaded script runs" ran "$(in_ctr /workspace/run.sh)"
berth cp Box/c1:/bin/busybox "$L/perm/bb"
check_eq "a download of an executable: its bits under the umask, as cp makes it" \
	"$(printf '%o' $((0755 & ~0$(umask))))" "$(stat -c %a "$L/perm/bb")"
out=$(curl -s --unix-socket "$SOCK" -X PUT --data-binary x "http://b/v1/classes/Box/instances/c1/files?path=/workspace/s&mode=4755")
check_contains "the API takes no setuid bit" "?mode=4755 is not a file mode (octal, 0 to 0777)" "$out"
check_eq "and makes no file" no "$(in_ctr sh -c 'test -e /workspace/s && echo yes || echo no')"
curl -s -o /dev/null --unix-socket "$SOCK" -X PUT --data-binary x "http://b/v1/classes/Box/instances/c1/files?path=/workspace/s&mode=600"
check_eq "?mode=600 on the API" 600 "$(in_ctr stat -c %a /workspace/s)"

echo "-- cp: failures say why, and leave nothing behind"
out=$(berth cp Box/c1:/workspace/nope "$L/empty/nope" 2>&1)
check_eq "a missing file: the message and status 1" \
	"berth: open \`/workspace/nope\`: No such file or directory 1" "$out $?"
check_eq "no local file, not even a hidden one" "" "$(left_in "$L/empty")"
echo precious > "$L/empty/precious"
out=$(berth cp Box/c1:/workspace/nope "$L/empty/precious" 2>&1)
check_eq "a failed download keeps the file it would replace" "1 precious" "$? $(cat "$L/empty/precious")"
check_eq "and leaves nothing beside it" "precious" "$(left_in "$L/empty")"
rm "$L/empty/precious"
out=$(berth cp "$L/nope" Box/c1:/workspace/x 2>&1)
check_eq "a missing local file" "berth: open \`$L/nope\`: No such file or directory 1" "$out $?"
check_eq "nothing made in the container" "no" "$(in_ctr sh -c 'test -e /workspace/x && echo yes || echo no')"
out=$(berth cp Box/c1:/workspace "$L/empty/ws" 2>&1)
check_eq "a directory in the container" "berth: \`/workspace\` is a directory 1" "$out $?"
out=$(berth cp "$L/dl" Box/c1:/workspace/dl 2>&1)
check_eq "a local directory" "berth: \`$L/dl\` is a directory: berth cp copies single files 1" "$out $?"
out=$(berth cp Box/c1:/workspace/hello.txt "$L/nodir/x" 2>&1)
check_eq "into a local directory that does not exist" \
	"berth: create a file in \`$L/nodir\`: No such file or directory 1" "$out $?"
out=$(berth cp Nope/c1:/x "$L/empty/x" 2>&1)
check_eq "an unknown class: berthd's message, status 1" "berth: no container class \`Nope\` 1" "$out $?"
check_eq "nothing left after any of them" "" "$(left_in "$L/empty")"

echo "-- cp: path escapes"
MARK=berth-cli-escape-$$
out=$(berth cp Box/c1:/../../etc/passwd "$L/empty/pw" 2>&1)
check_eq "'..' above the root, down: refused" \
	"berth: \`/../../etc/passwd\` leads outside the container's root: refused 1" "$out $?"
out=$(printf x | berth cp - "Box/c1:/workspace/../../../tmp/$MARK" 2>&1)
check_eq "'..' above the root, up: refused" 1 "$?"
check_contains "(said so)" "leads outside the container's root: refused" "$out"
check_eq "the host's /tmp has nothing of it" "" "$(ls /tmp | grep "$MARK")"
printf 'the container'"'"'s own' | berth cp - Box/c1:/etc/shadow
in_ctr ln -sfn /etc/shadow /workspace/shadow
check_eq "an absolute symlink to /etc/shadow: the container's file, not the host's" \
	"the container's own" "$(berth cp Box/c1:/workspace/shadow -)"
out=$(berth cp Box/c1:/proc/1/root/etc/passwd "$L/empty/p1" 2>&1)
check_eq "/proc/1/root (a magic link): refused" 1 "$?"
check_contains "(said so)" "berth: open \`/proc/1/root/etc/passwd\`:" "$out"
out=$(berth cp User/u:/srv/secret "$L/empty/secret" 2>&1)
check_eq "what the container's user may not read" "berth: open \`/srv/secret\`: Permission denied 1" "$out $?"
out=$(printf x | berth cp - User/u:/srv/secret 2>&1)
check_eq "nor write" 1 "$?"
check_contains "(permission denied)" "Permission denied" "$out"
check_eq "nothing left locally" "" "$(left_in "$L/empty")"

echo "-- cp: usage"
check_eq "two local paths" "berth: one side must be in a container (CLASS/NAME:/PATH) 2" "$(first_line cp "$L/a" "$L/b")"
out=$(berth cp Box/a:/x Box/b:/y 2>&1)
check_eq "two containers" 2 "$?"
check_eq "a relative path in the container" \
	"berth: \`Box/c1:workspace/x\`: the path in the container must be absolute (CLASS/NAME:/PATH) 2" \
	"$(first_line cp Box/c1:workspace/x .)"
check_eq "one operand" "berth: cp needs SRC and DST 2" "$(first_line cp "$L/hello.txt")"
(cd "$L" && cp hello.txt 'a:b' && berth cp ./a:b Box/c1:/workspace/colon)
check_eq "./a:b is a local path" "$(cat "$L/hello.txt")" "$(in_ctr cat /workspace/colon)"
check_contains "help" "usage: berth cp SRC DST" "$(berth help cp)"
check_contains "berth --help lists cp and ls" "ls        list files in an instance's container" "$(berth --help)"

echo "-- cp: 100 MiB both ways, streamed"
head -c $((100 << 20)) /dev/urandom > "$L/big.bin"
rss=$( { /usr/bin/time -f %M "$BERTH_BIN/berth" cp "$L/big.bin" Box/c1:/workspace/big.bin; } 2>&1 )
check_eq "up: its size in the container" $((100 << 20)) "$(in_ctr stat -c %s /workspace/big.bin)"
check_true "up: berth's memory stays small (${rss} KiB)" test "$rss" -lt 40000
rss=$( { /usr/bin/time -f %M "$BERTH_BIN/berth" cp Box/c1:/workspace/big.bin "$L/big.back"; } 2>&1 )
check_true "down: the same bytes" cmp -s "$L/big.bin" "$L/big.back"
check_true "down: berth's memory stays small (${rss} KiB)" test "$rss" -lt 40000
check_eq "through a pipe too" "$(md5sum < "$L/big.bin")" "$(cat "$L/big.bin" | berth cp - Box/c1:/workspace/big2.bin && berth cp Box/c1:/workspace/big2.bin - | md5sum)"
rm -f "$L/big.bin" "$L/big.back"
in_ctr rm -f /workspace/big.bin /workspace/big2.bin

echo "-- ls"
printf h | berth cp - Box/c1:/workspace/.hidden
out=$(berth ls Box/c1:/workspace)
check_eq "the header" "TYPE MODE SIZE MODIFIED NAME" "$(head -1 <<<"$out" | tr -s ' ')"
check_true "a file: type, mode, size, time, name" \
	grep -qE '^file +rw-r--r-- +27 +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +hello.txt$' <<<"$out"
check_true "a directory" grep -qE '^directory +rwxr-xr-x +[0-9]+ +.* +bin$' <<<"$out"
check_true "a symlink" grep -qE '^symlink +.* +shadow$' <<<"$out"
check_eq "no hidden names without -a" "" "$(grep hidden <<<"$out")"
check_true "-a: hidden names too" grep -qE ' \.hidden$' <<<"$(berth ls -a Box/c1:/workspace)"
check_true "-R: the tree, by path" grep -qE ' new/dir/hello.txt$' <<<"$(berth ls -R Box/c1:/workspace)"
check_eq "without a path: the working directory" "$out" "$(berth ls Box/c1)"
check_eq "--json: the API's answer" "hello.txt" "$(berth ls --json Box/c1:/workspace | jq -r '.files[] | select(.type == "file" and .name == "hello.txt") | .name')"
out=$(berth ls Box/c1:/workspace/nope 2>&1)
check_eq "a missing directory" "berth: list \`/workspace/nope\`: No such file or directory 1" "$out $?"

echo "-- proc: start, logs -f with the exit status"
id=$(berth proc start Box/c1 -- sh -c 'echo out; echo err >&2; sleep 0.5; echo done; exit 3')
check_eq "start prints the process's id" "proc-1" "$id"
berth proc logs -f Box/c1 "$id" > "$L/out" 2> "$L/err"
check_eq "logs -f: until it exits, with its status" 3 "$?"
check_eq "logs -f: its stdout" "out done" "$(cat "$L/out" | tr '\n' ' ' | sed 's/ $//')"
check_eq "logs -f: its stderr" "err" "$(cat "$L/err")"
berth proc logs Box/c1 "$id" > "$L/out2" 2> "$L/err2"
check_eq "logs: what it wrote, afterwards, stdout and stderr apart" "0 out done|err" \
	"$? $(cat "$L/out2" | tr '\n' ' ' | sed 's/ $//')|$(cat "$L/err2")"
id=$(berth proc start Box/c1 -- printf '%s|' "a b" "it's" '$HOME' '*')
check_eq "the words run exactly as given" "a b|it's|\$HOME|*|" "$(berth proc logs -f Box/c1 "$id")"
id=$(berth proc start --id envtest -e GREETING=hi -w /tmp Box/c1 -- sh -c 'echo $GREETING $PWD')
check_eq "--id, --env, --workdir" "envtest: hi /tmp" "$id: $(berth proc logs -f Box/c1 envtest)"
id=$(berth proc start Box/c1 -- no-such-command)
berth proc logs -f Box/c1 "$id" > /dev/null 2>&1
check_eq "a command that is not there: 127 from the sandbox's shell" 127 "$?"
out=$(berth proc start --id envtest Box/c1 -- true 2>&1)
check_eq "an id in use" "berth: a process \`envtest\` exists already 1" "$out $?"

echo "-- proc: ls and kill (the process and its children)"
berth proc start --id web Box/c1 -- sh -c 'sleep 73519 & sleep 73519 & echo up; wait' > /dev/null
wait_for "web's output" 50 sh -c "'$BERTH_BIN/berth' proc logs Box/c1 web | grep -q up"
wait_for "web's children" 50 sh -c "test \"\$(pgrep -fc '^sleep 73519$')\" = 2"
check_eq "its children run" 2 "$(pgrep -fc '^sleep 73519$')"
out=$(berth proc ls Box/c1)
check_eq "ls: the header" "ID PID STATUS EXIT COMMAND STARTED" "$(head -1 <<<"$out" | tr -s ' ')"
check_true "ls: a running one, with its pid and no exit code" \
	grep -qE "^web +[0-9]+ +running +- +sh -c 'sleep 73519 & sleep 73519 & echo up; wait' +(just now|[0-9]+s ago)$" <<<"$out"
check_true "ls: a failed one with its exit code" grep -qE "^proc-1 +[0-9]+ +failed +3 +sh -c " <<<"$out"
check_true "ls: a completed one" grep -qE "^envtest +[0-9]+ +completed +0 " <<<"$out"
check_eq "ls: oldest first" "proc-1 proc-2 envtest proc-3 web" "$(awk 'NR>1 {print $1}' <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
check_eq "ls --json: the API's records" "running" "$(berth proc ls --json Box/c1 | jq -r '.processes[] | select(.id == "web") | .status')"
berth proc logs -f Box/c1 web > /dev/null &
FOLLOW=$!
check_eq "kill: it, and its status after" "web: killed (exit code 137)" "$(berth proc kill Box/c1 web)"
wait_for "the children's end" 20 sh -c "! pgrep -f '^sleep 73519$'"
check_eq "its children are gone" 0 "$(pgrep -fc '^sleep 73519$')"
wait "$FOLLOW"
check_eq "a logs -f that followed it exits 137" 137 "$?"
check_true "ls says killed" grep -qE "^web +[0-9]+ +killed +137 " <<<"$(berth proc ls Box/c1)"
check_eq "kill of one that has ended: says how it ended" "envtest: completed (exit code 0)" "$(berth proc kill -s KILL Box/c1 envtest)"
out=$(berth proc kill Box/c1 nope 2>&1)
check_eq "kill of an unknown id" "berth: no process \`nope\` 1" "$out $?"
out=$(berth proc logs Box/c1 nope 2>&1)
check_eq "logs of an unknown id" "berth: no process \`nope\` 1" "$out $?"
berth proc start --id trap Box/c1 -- sh -c 'trap "echo got TERM; exit 5" TERM; echo ready; while :; do sleep 0.1; done' > /dev/null
wait_for "the trap set" 50 sh -c "'$BERTH_BIN/berth' proc logs Box/c1 trap | grep -q ready"
check_eq "-s TERM: sent, and berth returns at once" "trap: sent SIGTERM" "$(berth proc kill -s TERM Box/c1 trap)"
out=$(berth proc logs -f Box/c1 trap)
check_eq "the process handled it: logs -f exits with its status" 5 "$?"
check_contains "after its handler ran" "got TERM" "$out"
check_eq "-s TERM to one that has ended" "berth: process \`trap\` has ended 1" "$(first_line proc kill -s TERM Box/c1 trap)"
check_eq "-s an unknown signal" "berth: --signal: \`BOGUS\` is not a signal (use e.g. TERM, SIGKILL or 9) 2" "$(first_line proc kill -s BOGUS Box/c1 trap)"
check_eq "--all with another signal: refused" \
	"berth: --all kills (SIGKILL); send other signals to one process at a time 2" \
	"$(first_line proc kill --all -s TERM Box/c1)"

echo "-- proc: kill --all"
berth proc start Box/c1 -- sleep 73520 > /dev/null
berth proc start Box/c1 -- sh -c 'sleep 73520; true' > /dev/null
wait_for "both running" 50 sh -c "test \"\$(pgrep -fc '^sleep 73520$')\" = 2"
check_eq "kill --all: how many" "Box/c1: 2 killed" "$(berth proc kill --all Box/c1)"
wait_for "their end" 20 sh -c "! pgrep -f '^sleep 73520$'"
check_eq "none of them is left" 0 "$(pgrep -fc '^sleep 73520$')"
check_eq "ls: both killed" "killed killed" "$(berth proc ls Box/c1 | awk '$2 ~ /^[0-9]+$/ && /73520/ {print $3}' | tr '\n' ' ' | sed 's/ $//')"
check_eq "kill --all with nothing running" "Box/c1: 0 killed" "$(berth proc kill --all Box/c1)"

echo "-- proc: usage"
check_eq "no subcommand" "berth: which subcommand? start, ls, logs or kill 2" "$(first_line proc)"
check_eq "an unknown subcommand" "berth: unknown subcommand \`stat\` (start, ls, logs or kill) 2" "$(first_line proc stat Box/c1)"
out=$(berth proc start Box/c1 2>&1)
check_eq "start without a command" 2 "$?"
check_eq "logs without an id" "berth: which process? Give CLASS/NAME ID 2" "$(first_line proc logs Box/c1)"
check_contains "help" "berth proc kill --all CLASS/NAME" "$(berth proc --help)"
check_contains "berth --help lists them" "proc      start, list, follow and kill" "$(berth --help)"

kill "$BERTHD"
wait "$BERTHD"
finish
