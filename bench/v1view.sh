#!/bin/bash
# Run a command in a private mount namespace whose /sys/fs/cgroup shows only
# the cgroup v1 hierarchies. crun 1.8 refuses hybrid hosts (v1 controllers
# plus a cgroup2 mount at /sys/fs/cgroup/unified); berth does not, but for a
# fair comparison both run in the same view. On a pure v1 or v2 host the
# command runs unchanged. The host's mounts are never touched.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
if [ "$(stat -f -c %T /sys/fs/cgroup)" != tmpfs ] ||
   [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" != cgroup2fs ]; then
	exec "$@"
fi
exec unshare --mount --propagation private bash -euo pipefail -c '
	mount -t tmpfs -o mode=755 berth-bench-v1 /sys/fs/cgroup
	# Re-mount every v1 hierarchy this process is in (field 2 of /proc/self/cgroup).
	while IFS=: read -r id ctrls _; do
		[ "$id" != 0 ] || continue
		dir=${ctrls#name=}
		mkdir -p "/sys/fs/cgroup/$dir"
		case $ctrls in
		name=*) mount -t cgroup -o "none,$ctrls" cgroup "/sys/fs/cgroup/$dir" ;;
		*) mount -t cgroup -o "$ctrls" cgroup "/sys/fs/cgroup/$dir" ;;
		esac
	done < /proc/self/cgroup
	exec "$@"
' v1view "$@"
