#!/bin/bash
# Exit codes, signals, zombies, stdio, environment and names, as `berth run`
# users see them; nothing left behind afterwards.
. "$(dirname "$0")/lib.sh"

brun --name code -- sh -c 'exit 3'
check_eq "the container's exit code is berth's" 3 "$?"
check_nothing_left code
brun -- probe kill TERM
check_eq "killed by SIGTERM: 128+15" 143 "$?"
out=$(brun -- probe kill KILL 2>&1)
check_eq "killed by SIGKILL: 128+9" 137 "$?"
check_not_contains "a SIGKILL is not an OOM kill" "out of memory" "$out"

out=$(brun -- /bin/nope 2>&1)
check_eq "a command missing from the image: 127" 127 "$?"
check_eq "and says so" "berth: executable not found in image: /bin/nope" "$out"
out=$(brun -- nope 2>&1)
check_eq "a command missing from PATH: 127" 127 "$?"
check_contains "names the PATH searched" "executable not found in image: nope (PATH=" "$out"
out=$(brun -- /etc/passwd 2>&1)
check_eq "a file that is not executable: 126" 126 "$?"
check_contains "and says so" "permission denied executing" "$out"

# SIGTERM to berth reaches the entrypoint through the init.
brun_bg --name sig -- probe signals > "$STATE/sig.out" 2>&1
pid=$!
wait_for "probe ready" 50 grep -q ready "$STATE/sig.out"
kill -USR1 $pid
wait_for "USR1 delivered" 30 grep -q "got SIGUSR1" "$STATE/sig.out"
kill -TERM $pid
wait $pid
status=$?
check_contains "SIGUSR1 reaches the entrypoint" "got SIGUSR1" "$(cat "$STATE/sig.out")"
check_contains "SIGTERM reaches the entrypoint" "got SIGTERM" "$(cat "$STATE/sig.out")"
check_eq "which then exits as it chooses" 0 "$status"
check_nothing_left sig

# Orphans are re-parented to the init, which reaps them.
out=$(brun -- sh -c 'probe zombies 5; sleep 0.5; cat /proc/[0-9]*/stat | awk "\$3 == \"Z\"" | wc -l')
check_contains "the orphans were made" "orphaned: 5" "$out"
check_eq "and reaped: no zombies" 0 "$(tail -n1 <<<"$out")"

# stdio, environment, working directory.
out=$(echo from-stdin | brun -i -- cat)
check_eq "-i passes stdin through" from-stdin "$out"
out=$(echo ignored | brun -- cat)
check_eq "without -i the container's stdin is empty" "" "$out"
out=$(brun -- sh -c 'echo out; echo err >&2' 2>/dev/null)
check_eq "stdout passes through" out "$out"
out=$(brun -- sh -c 'echo out; echo err >&2' 2>&1 >/dev/null)
check_eq "stderr passes through" err "$out"
export BERTH_E2E_VALUE=from-host
out=$(brun --hostname envbox -e FOO=bar -e BERTH_E2E_VALUE -e UNSET_BERTH_VAR -- \
	sh -c 'echo "$FOO $BERTH_E2E_VALUE ${UNSET_BERTH_VAR-unset} $HOSTNAME $HOME $PATH"')
check_eq "environment: given, passed from the host, defaults" \
	"bar from-host unset envbox /root /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$out"
out=$(brun -w /srv/app -- pwd)
check_eq "-w sets (and creates) the working directory" /srv/app "$out"

# Network namespaces made ahead: a run leaves some ready, the next takes one
# (a fresh namespace with only lo, up); --net none makes its own.
export BERTH_NETNS_POOL=$STATE/netns
pool_ready() { [ "$(stat -f -c %T "$BERTH_NETNS_POOL"/slot-* 2>/dev/null | grep -c nsfs)" -ge 2 ]; }
brun -- true
check_true "a run leaves two namespaces ready" wait_for "pool filled" 50 pool_ready
slots=$(stat -L -c %i "$BERTH_NETNS_POOL"/slot-*)
out=$(brun -- sh -c 'readlink /proc/self/ns/net; ls /sys/class/net; cat /sys/class/net/lo/flags')
ns=$(sed -n 1p <<<"$out" | tr -dc 0-9)
[ -n "$ns" ] && grep -qx "$ns" <<<"$slots"
check_eq "the next run takes one of them ($ns in: $(echo $slots))" 0 $?
check_eq "with lo alone, up" "lo 0x9" "$(sed -n '2,3p' <<<"$out" | tr '\n' ' ' | sed 's/ $//')"
stat -L -c %i "$BERTH_NETNS_POOL"/slot-* | grep -qx "$ns"
check_eq "and it leaves the pool" 1 $?
out=$(brun --net none -- sh -c 'readlink /proc/self/ns/net; cat /sys/class/net/lo/flags')
ns=$(sed -n 1p <<<"$out" | tr -dc 0-9)
[ -n "$ns" ] && ! grep -qx "$ns" <<<"$slots"
check_eq "--net none makes its own namespace" 0 $?
check_eq "with lo down" 0x8 "$(sed -n 2p <<<"$out")"
wait_for "pool refilled" 50 pool_ready
unset BERTH_NETNS_POOL

# Names: one container per name at a time; the remains of a killed berth are reclaimed.
brun_bg --name dup -- sleep 60
pid=$!
wait_for "dup running" 50 test -e "$(cg_dir pids dup)"
out=$(brun --name dup -- true 2>&1)
check_eq "a second container of a running name is refused" 125 "$?"
check_eq "and says why" "berth: container \`dup\` is already running" "$out"
kill -KILL $pid
wait $pid 2>/dev/null
# berth died without cleaning up; its container died with it (die-with-parent).
wait_for "dup's init gone" 50 sh -c "! grep -q . $(cg_dir pids dup)/cgroup.procs 2>/dev/null"
out=$(brun --name dup -- echo reclaimed 2>&1)
check_eq "the name is reclaimed after berth was killed" reclaimed "$out"
check_nothing_left dup

# berth killed at any moment of a start: the container does not go on
# without it (the helper and the init watch berth until their own
# death signal is set). Kills at random moments of the first 10 ms.
running=""
for i in $(seq 1 30); do
	brun_bg --name "kr$i" -- sleep 30 > /dev/null 2>&1
	pid=$!
	sleep "0.00$((RANDOM % 10))"
	{ kill -KILL $pid; wait $pid; } 2>/dev/null
	wait_for "kr$i's processes gone" 30 sh -c "! grep -q . $(cg_dir pids "kr$i")/cgroup.procs 2>/dev/null" ||
		running="$running kr$i"
done
check_eq "berth killed during a start leaves no container running" "" "$running"
for i in $(seq 1 30); do brun --name "kr$i" -- true; done

finish
