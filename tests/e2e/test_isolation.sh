#!/bin/bash
# What a process inside a container sees: its own namespaces, PID 1 = berth's
# init, its own hostname, only lo, Docker's capabilities, no_new_privs and
# seccomp.
. "$(dirname "$0")/lib.sh"

out=$(brun --name iso --hostname isobox -- sh -c '
	echo "pid=$$"
	echo "comm1=$(cat /proc/1/comm)"
	echo "hostname=$(hostname)"
	echo "nets=$(ls /sys/class/net | tr "\n" " ")"
	echo "procs=$(ls -d /proc/[0-9]* | wc -l)"
	for ns in pid mnt uts ipc net cgroup; do echo "ns_$ns=$(readlink /proc/self/ns/$ns)"; done
	echo "cgroup=$(grep -m1 memory /proc/self/cgroup)"
	grep -E "^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status')
status=$?
check_eq "exit status" 0 "$status"
check_contains "the shell is PID 2, not a host PID" "pid=2" "$out"
check_contains "PID 1 is berth's init" "comm1=berth-init" "$out"
check_contains "hostname is the container's" "hostname=isobox" "$out"
check_eq "hostname of the host unchanged" "$(hostname)" "$(cat /proc/sys/kernel/hostname)"
check_contains "only lo in the network namespace" "nets=lo " "$out"
procs=$(echo "$out" | sed -n 's/^procs=//p')
# init, sh, and the pipeline's own few; the host has far more.
check_true "only the container's processes are visible ($procs)" test "$procs" -le 8
for ns in pid mnt uts ipc net cgroup; do
	inside=$(echo "$out" | sed -n "s/^ns_$ns=//p")
	host=$(readlink /proc/self/ns/$ns)
	if [ -n "$inside" ] && [ "$inside" != "$host" ]; then
		pass "own $ns namespace"
	else
		fail "own $ns namespace" "inside: $inside host: $host"
	fi
done
check_contains "the cgroup namespace is rooted at the container's cgroup" "memory:/" "$out"
check_contains "CapEff is Docker's default set" "CapEff:	00000000a80425fb" "$out"
check_contains "CapBnd is Docker's default set" "CapBnd:	00000000a80425fb" "$out"
check_contains "no inheritable capabilities" "CapInh:	0000000000000000" "$out"
check_contains "no ambient capabilities" "CapAmb:	0000000000000000" "$out"
check_contains "no_new_privs is set" "NoNewPrivs:	1" "$out"
check_contains "a seccomp filter is installed" "Seccomp:	2" "$out"

out=$(brun -u 1000:1000 -- sh -c 'id; grep -E "^(CapEff|CapPrm):" /proc/self/status')
check_contains "--user switches uid and gid" "uid=1000(app) gid=1000(app)" "$out"
check_contains "a non-root user has no effective capabilities" "CapEff:	0000000000000000" "$out"
check_contains "a non-root user has no permitted capabilities" "CapPrm:	0000000000000000" "$out"

out=$(brun -- ps -o pid,comm)
check_contains "ps inside shows the init as PID 1" "1 berth-init" "$out"
# berth run's own command line (a secret in -e) is not readable as the init's.
out=$(brun -e TOKEN=s3cr3t-value -- sh -c 'tr "\0" " " < /proc/1/cmdline')
check_not_contains "the init's cmdline does not show berth's arguments" "s3cr3t" "$out"
check_eq "it says berth-init" berth-init "$(tr -s ' ' <<<"$out" | sed 's/ *$//')"

check_nothing_left iso
finish
