#!/bin/sh
# Install every build, test and benchmark dependency of berth from Debian's
# packages. Idempotent: when everything is present it does nothing, and it
# runs `apt-get update` only when a package cannot be found in the lists.
#   --fuzz   also clang and its libFuzzer runtime, for `make fuzz`
set -eu

PACKAGES="
  build-essential pkg-config clang-format
  libuv1-dev libjansson-dev libsqlite3-dev libseccomp-dev libcap-dev
  libcurl4-openssl-dev libcmocka-dev libhttp-parser-dev libarchive-dev
  libwslay-dev libsystemd-dev
  libnl-route-3-dev nftables
  busybox-static musl-tools nettle-dev
  iproute2 util-linux procps curl git
  crun hyperfine jq wrk nginx openssl
  zstd attr skopeo umoci docker-registry
  nodejs
"

case "${1:-}" in
"") ;;
--fuzz) PACKAGES="$PACKAGES clang libclang-rt-dev" ;;
*)
	echo "usage: install-deps.sh [--fuzz]" >&2
	exit 2
	;;
esac

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*"ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done

# The Sandbox SDK's conformance test installs the SDK with npm. Debian's npm
# is a package of its own; NodeSource's nodejs (Node 20) carries one and
# conflicts with it: ask for it only when there is no npm at all.
if ! command -v npm > /dev/null 2>&1; then
	missing="$missing npm"
fi

if [ -z "$missing" ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: missing:$missing; run as root to install them" >&2
	exit 1
fi
echo "install-deps.sh: installing$missing"

export DEBIAN_FRONTEND=noninteractive
# Only refresh the package lists when one of the missing packages is unknown
# to them (a fresh image often ships without lists).
for p in $missing; do
	if ! apt-cache show "$p" >/dev/null 2>&1; then
		apt-get update -q
		break
	fi
done
# nginx is only a peer for the benchmarks, run with their own configuration:
# its package must not start a system service on port 80. Images built for
# containers already forbid that with a policy-rc.d; elsewhere we do, for
# the install only.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy"
	chmod 755 "$policy"
	own_policy=1
fi
rc=0
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing || rc=$?
[ -z "$own_policy" ] || rm -f "$policy"
exit "$rc"
