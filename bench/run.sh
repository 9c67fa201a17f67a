#!/bin/bash
# berth's benchmarks (make bench). Each figure is a ratio against a peer
# measured in the same run, because these machines are noisy.
#
#   start   `berth run --rootfs R -- /bin/true` against `crun run` of an OCI
#           bundle of the same root, back-to-back and after 100 ms idle.
#
# Rounds alternate between the two programs so that drifting machine load
# hits both; the figures are medians over all rounds. Results: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${BERTH_BIN:-$root/bin}
rootfs=$root/build/rootfs/test
work=$root/build/bench
rounds=${BENCH_ROUNDS:-5}
runs=${BENCH_RUNS:-20}

for tool in hyperfine crun jq; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing (run scripts/install-deps.sh)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench: needs root (containers)" >&2; exit 1; }
[ -x "$rootfs/bin/sh" ] || { echo "bench: no test root at $rootfs (make rootfs)" >&2; exit 1; }

mkdir -p "$work/state"
bundle=$work/crun-bundle
mkdir -p "$bundle"
# The OCI bundle: the same root, read-only, the namespaces and mounts berth
# gives its containers (crun's defaults otherwise; no seccomp, no limits, which
# only favours crun).
cat > "$bundle/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false, "user": {"uid": 0, "gid": 0},
    "args": ["/bin/true"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "noNewPrivileges": true
  },
  "root": {"path": "$rootfs", "readonly": true},
  "hostname": "crun",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
    "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON

crun_cmd="crun run --bundle $bundle berth-bench-crun"
berth_cmd="$bin/berth run --rootfs $rootfs --state-dir $work/state --name berth-bench -- /bin/true"

# One mode: alternate rounds of both, collect every time, print medians.
measure() {
	local mode=$1 prepare=$2
	local out=$work/times-${mode// /-}
	: > "$out.crun"; : > "$out.berth"
	for ((i = 0; i < rounds; i++)); do
		for which in crun berth; do
			local cmd=$crun_cmd
			[ $which = berth ] && cmd=$berth_cmd
			bench/v1view.sh hyperfine -N -w 2 -r "$runs" ${prepare:+--prepare "$prepare"} \
				--export-json "$work/round.json" "$cmd" >/dev/null 2>&1 ||
				{ echo "bench: $which failed; try: $cmd" >&2; exit 1; }
			jq -r '.results[0].times[]' "$work/round.json" >> "$out.$which"
		done
	done
	local c b
	c=$(sort -g "$out.crun" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2) * 1000}')
	b=$(sort -g "$out.berth" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2) * 1000}')
	printf '| %-13s | %8.2f ms | %8.2f ms | %5.2f |\n' "$mode" "$c" "$b" "$(echo "$b $c" | awk '{print $1/$2}')"
}

echo "start latency, $((rounds * runs)) runs each, medians ($(nproc) CPUs, $(uname -r)):"
echo
echo "| mode          | crun run    | berth run   | berth/crun |"
echo "|---------------|-------------|-------------|------------|"
measure back-to-back ""
measure "after 100 ms" "sleep 0.1"

# The design choice behind the start path: how a fresh process gets into a
# fresh v1 cgroup after 100 ms of quiet (medians).
if [ -d /sys/fs/cgroup/pids ] && [ -d /sys/fs/cgroup/memory ]; then
	cc -O2 -Wall -Wextra -o "$work/cgroup-move" bench/cgroup-move.c
	echo
	echo "moving a new process into a new v1 cgroup (6 hierarchies) after 100 ms idle:"
	echo
	echo "| how                    | median    |"
	echo "|------------------------|-----------|"
	"$work/cgroup-move" 10
fi

# The data plane against nginx on the same origin (bench/proxy.sh).
bench/proxy.sh
