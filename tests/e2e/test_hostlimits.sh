#!/bin/bash
# berth.limits: host-wide memory and vCPU bounds over every running instance;
# a start that would pass them is refused with 503 and starts nothing.
. "$(dirname "$0")/lib.sh"

SOCK=$STATE/berth.sock
cat > "$STATE/berth.jsonc" <<JSON
{
  "containers": [
    // lite: 1/16 vCPU, 256 MiB; basic: 1/4 vCPU, 1 GiB
    {"class_name": "Small", "image": "$ROOTFS", "instance_type": "lite",
     "entrypoint": ["sleep", "600"]},
    {"class_name": "Big", "image": "$ROOTFS", "instance_type": "basic",
     "entrypoint": ["sleep", "600"]},
    {"class_name": "Cpu", "image": "$ROOTFS", "instance_type": {"vcpu": 0.25, "memory_mib": 128},
     "entrypoint": ["sleep", "600"]},
  ],
  "berth": {"state_dir": "$STATE/state", "api": {"socket": "$SOCK"},
            "limits": {"memory": "1200M", "vcpu": 0.3}},
}
JSON
api() { curl -s --unix-socket "$SOCK" "$@"; }
code() { curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" "$@"; }
"$BERTH_BIN/berthd" --config "$STATE/berth.jsonc" > "$STATE/berthd.log" 2>&1 &
BERTHD=$!
wait_for "the API" 50 test -S "$SOCK"

check_eq "a basic instance fits (1 GiB of 1200M)" 200 "$(code -X POST http://b/v1/classes/Big/instances/b1/start)"
out=$(api -X POST http://b/v1/classes/Small/instances/s1/start)
check_contains "a lite one more would pass the memory bound: refused" '"code":"host_limits"' "$out"
check_contains "saying which bound" "memory limit (1200 MiB)" "$out"
check_contains "and started nothing" '"status":"stopped"' "$(api http://b/v1/classes/Small/instances/s1/state)"
api -X POST -d '{"graceMs": 100}' http://b/v1/classes/Big/instances/b1/stop > /dev/null
wait_for "b1 to stop" 50 sh -c "curl -s --unix-socket $SOCK http://b/v1/classes/Big/instances/b1/state | grep -q '\"stopped'"
check_eq "once b1 is gone, a lite instance fits" 200 "$(code -X POST http://b/v1/classes/Small/instances/s1/start)"
out=$(api -X POST http://b/v1/classes/Cpu/instances/c1/start)
check_contains "0.0625 + 0.25 vCPU would pass the vCPU bound (0.3): refused" '"code":"host_limits"' "$out"
check_contains "saying which bound" "vCPU limit (0.30)" "$out"
check_eq "a second lite one fits (0.125 vCPU, 512 MiB)" 200 "$(code -X POST http://b/v1/classes/Small/instances/s2/start)"
kill -TERM $BERTHD
wait $BERTHD
check_eq "berthd stops cleanly" 0 "$?"
finish
