#!/bin/sh
# make demo: berthd serving the demo site on the host's loopback, until
# Ctrl-C. The configuration is examples/demo/berth.jsonc: one class, Site
# (build/rootfs/demo: busybox httpd and examples/demo/www), and one route
# sending every request to its instance. The container starts on the first
# request, sleeps after a minute without one, and starts again on the next.
set -eu
cd "$(dirname "$0")/.."
bin=${BERTH_BIN:-bin}
port=${DEMO_PORT:-8080}
state=${DEMO_STATE_DIR:-build/demo-state}

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (containers need namespaces, cgroups and mounts)" >&2
	exit 1
fi
mkdir -p "$state"
state=$(cd "$state" && pwd)
cat <<EOF
berth demo: http://127.0.0.1:$port/ (Ctrl-C stops berthd and the container)

  the container starts on the first request and sleeps after a minute idle:
    BERTH_SOCKET=$state/berth.sock $bin/berth ps --all
    BERTH_SOCKET=$state/berth.sock $bin/berth logs Site/cf-singleton-container -f
    BERTH_SOCKET=$state/berth.sock $bin/berth events -f

EOF
exec "$bin/berthd" --config examples/demo/berth.jsonc --state-dir "$state" \
	--api-socket "$state/berth.sock" --listen "127.0.0.1:$port"
