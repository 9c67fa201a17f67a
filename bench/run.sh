#!/bin/bash
# berth's benchmarks (make bench). Each figure is held against a peer
# measured in the same run, because these machines are noisy.
#
#   bench/run.sh [GROUP...]     (default: all; `make bench BENCH=daemon`)
#
#   start    `berth run` against `crun run` (bench/start.sh)
#   api      berthd's control API, GET .../state per second over the unix
#            socket and TCP, against nginx (bench/api.sh)
#   records  berthd's RSS idle and with 100,000 sleeping records, lookup
#            latency (bench/records.sh)
#   burst    100 instances started at once until healthy, peak RSS, all
#            destroyed and nothing left (bench/burst.sh)
#   images   pull + unpack of a 100 MiB image from a loopback registry against
#            skopeo copy + umoci unpack; a cold start from it (bench/images.sh)
#   proxy    the data plane against nginx (1 worker, upstream keepalive) and
#            the origin direct; WebSocket round trip; cold request to first
#            byte (bench/proxy.sh)
#   sandbox  exec of `true` through the API against nsenter by hand; file
#            throughput of the files API (bench/sandbox.sh)
#   zygote   start and exec through the library: the helper exec'd against
#            cloned by berthd's zygote (bench/zygote.sh)
#   daemon   api, records and burst
#   all      every group
#
# Results and how to read them: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
	sed -n '4,24s/^# \{0,1\}//p' "$0"
}

groups=()
[ $# -gt 0 ] || set -- all
for arg in "$@"; do
	case $arg in
	start | api | records | burst | images | proxy | sandbox | zygote) groups+=("$arg") ;;
	daemon) groups+=(api records burst) ;;
	all) groups+=(start api records burst images proxy sandbox zygote) ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench: unknown group \`$arg\`" >&2; usage >&2; exit 2 ;;
	esac
done

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
first=1
for g in "${groups[@]}"; do
	[ "$first" = 1 ] || echo
	first=0
	echo "== $g"
	echo
	"bench/$g.sh"
done
