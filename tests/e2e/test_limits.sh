#!/bin/bash
# Limits hold: memory (OOM kill reported), processes (a fork bomb stops, the
# host stays responsive), CPU (a busy loop gets its share), and the cgroup
# files say what the instance type or flags asked for.
. "$(dirname "$0")/lib.sh"
cg_file() { cat "$(cg_dir "$1" "$2")/$3" 2>/dev/null; }

# The limits the kernel holds, for an instance type and for explicit flags,
# in the files of whichever cgroup layout this host has.
check_limits() { # ID MEMORY_BYTES QUOTA_US PIDS
	local id=$1
	if [ "$CGROUP_V2" = 1 ]; then
		check_eq "$id: memory limit" "$2" "$(cg_file memory "$id" memory.max)"
		check_eq "$id: swap off" 0 "$(cg_file memory "$id" memory.swap.max)"
		check_eq "$id: CPU quota per 100 ms" "$3 100000" "$(cg_file cpu "$id" cpu.max)"
	else
		check_eq "$id: memory limit" "$2" "$(cg_file memory "$id" memory.limit_in_bytes)"
		check_eq "$id: swap off (memsw = memory)" "$2" \
			"$(cg_file memory "$id" memory.memsw.limit_in_bytes)"
		check_eq "$id: CPU quota" "$3" "$(cg_file cpu "$id" cpu.cfs_quota_us)"
		check_eq "$id: CFS period 100 ms" 100000 "$(cg_file cpu "$id" cpu.cfs_period_us)"
		check_contains "$id: devices: deny by default, allow /dev/null" "c 1:3 rwm" \
			"$(cg_file devices "$id" devices.list)"
	fi
	check_eq "$id: pids limit" "$4" "$(cg_file pids "$id" pids.max)"
}

brun_bg --name typed --instance-type basic -- sleep 3
pid=$!
wait_for "cgroup of typed" 50 test -e "$(cg_dir memory typed)"
sleep 0.3
check_limits typed 1073741824 25000 1024
wait $pid

brun_bg --name flags --instance-type basic --memory 96M --cpus 0.5 --pids 77 -- sleep 3
pid=$!
wait_for "cgroup of flags" 50 test -e "$(cg_dir memory flags)"
sleep 0.3
check_limits flags $((96 << 20)) 50000 77
wait $pid

# A memory hog is killed and reported as such.
out=$(brun --name hog --memory 64M -- probe hog 512 2>&1)
status=$?
check_eq "the memory hog is killed (SIGKILL)" 137 "$status"
check_contains "berth says it ran out of memory" "ran out of memory" "$out"
check_contains "and names the limit" "memory limit 64M" "$out"
check_nothing_left hog

# A fork bomb hits the pids limit; the host keeps answering meanwhile.
brun_bg --name bomb --pids 64 -- probe forkbomb 3 > "$STATE/bomb.out" 2>&1
pid=$!
sleep 1
start=$(date +%s%N)
for i in 1 2 3 4 5; do sh -c true; done
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
wait $pid
out=$(cat "$STATE/bomb.out")
check_true "the host stays responsive during a fork bomb (${elapsed_ms} ms for 5 shells)" test "$elapsed_ms" -lt 2000
check_true "the fork bomb's forks fail" grep -qE "failed: [1-9][0-9]*" <<<"$out"
check_contains "with EAGAIN (the pids limit)" "first-errno: EAGAIN" "$out"
check_nothing_left bomb

# CPU: a busy loop for 2 s under 0.25 vCPU gets about 500 ms of CPU. More
# would mean no limit; a loaded machine may give less, never more.
out=$(brun --cpus 0.25 -- probe spin 2)
cpu=$(sed -n 's/.*cpu_ms: \([0-9]*\).*/\1/p' <<<"$out")
check_true "0.25 vCPU for 2 s: at most ~500 ms of CPU (got $cpu)" test "${cpu:-99999}" -le 650
check_true "0.25 vCPU for 2 s: not starved (got $cpu)" test "${cpu:-0}" -ge 200
out=$(brun --cpus 1 -- probe spin 1)
cpu=$(sed -n 's/.*cpu_ms: \([0-9]*\).*/\1/p' <<<"$out")
check_true "1 vCPU for 1 s: a full CPU, no throttling (got $cpu)" test "${cpu:-0}" -ge 700

finish
