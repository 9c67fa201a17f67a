#!/bin/sh
# make demo: serve the demo page from a berth container, on the host's
# loopback, until Ctrl-C. The image is build/rootfs/demo (scripts/mkrootfs.sh:
# busybox and examples/demo/), the container a default "lite" instance
# (1/16 vCPU, 256 MiB) in its own network namespace; berth forwards
# 127.0.0.1:$DEMO_PORT into it.
set -eu
cd "$(dirname "$0")/.."
bin=${BERTH_BIN:-bin}
port=${DEMO_PORT:-8080}
state=${DEMO_STATE_DIR:-build/demo-state}

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (containers need namespaces, cgroups and mounts)" >&2
	exit 1
fi
echo "berth demo: http://127.0.0.1:$port/ (Ctrl-C stops the container)"
exec "$bin/berth" run --name berth-demo --state-dir "$state" \
	--publish "127.0.0.1:$port:8080" --rootfs build/rootfs/demo \
	-- httpd -f -p 8080 -h /www
