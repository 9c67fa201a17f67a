#!/bin/sh
# Build the root filesystems for berth's tests and demo, with no network:
#
#   OUTDIR/test   busybox, users root/app/nobody, the static test programs
#                 (probe, echo-server) in /usr/local/bin
#   OUTDIR/demo   busybox and the demo site from examples/demo/, served by
#                 `busybox httpd -f -p 8080 -h /www`
#
# The test programs are compiled into build/progs/ (or $PROGS_DIR) when
# their sources are newer. A root is rebuilt only when one of its inputs is
# newer than it, and always in OUTDIR/.NAME.tmp first, then renamed into
# place, so a half-built root is never used.
#
# Usage: scripts/mkrootfs.sh OUTDIR
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi

umask 022
top=$(cd "$(dirname "$0")/.." && pwd)
script="$top/scripts/mkrootfs.sh"
mkdir -p "$1"
out=$(cd "$1" && pwd)
progs=${PROGS_DIR:-$top/build/progs}
src="$top/tests/progs"
demo_src="$top/examples/demo"
built=0

die() {
	echo "mkrootfs: $*" >&2
	exit 1
}

say() {
	printf '  %-7s %s\n' "$1" "${2#"$top"/}"
	built=1
}

# --- tools ---------------------------------------------------------------

busybox=""
for b in /bin/busybox /usr/bin/busybox; do
	if [ -x "$b" ]; then
		busybox=$b
		break
	fi
done
[ -n "$busybox" ] || die "busybox not found (run scripts/install-deps.sh)"
command -v musl-gcc >/dev/null 2>&1 || die "musl-gcc not found (run scripts/install-deps.sh)"
command -v gcc >/dev/null 2>&1 || die "gcc not found (run scripts/install-deps.sh)"

# A dynamically linked program cannot run in a root without a libc.
is_static() {
	! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'
}
is_static "$busybox" ||
	die "$busybox is dynamically linked; the roots need busybox-static (run scripts/install-deps.sh)"

# True if $1 is missing or any later argument (file or directory tree) has
# something newer than it.
stale() {
	target=$1
	shift
	[ -e "$target" ] || return 0
	[ -n "$(find "$@" -newer "$target" 2>/dev/null | head -n 1)" ]
}

# Two builds at once (parallel make targets) would share the temporary
# files below.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$out/.lock"
	flock 9
fi

# --- static test programs ------------------------------------------------

warn="-std=gnu11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
 -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -Wpointer-arith -Wcast-align
 -Wwrite-strings -Wundef -Wvla -Wnull-dereference -Wimplicit-fallthrough
 -fstack-protector-strong"

mkdir -p "$progs"

# build NAME CC "SOURCES AND HEADERS" "EXTRA FLAGS" LIBS: compile into a
# temporary file and rename, so a failed compile never leaves a
# fresh-looking binary.
build() {
	name=$1 cc=$2 files=$3 extra=$4 libs=$5
	bin="$progs/$name"
	deps="" sources=""
	for f in $files; do
		deps="$deps $src/$f"
		case "$f" in *.c) sources="$sources $f" ;; esac
	done
	# shellcheck disable=SC2086
	if stale "$bin" $deps "$script"; then
		say CC "$bin"
		# shellcheck disable=SC2086
		(cd "$src" && $cc -static $warn $extra -o "$bin.tmp" $sources $libs) ||
			die "building $name failed"
		is_static "$bin.tmp" || die "$name is not statically linked"
		mv -f "$bin.tmp" "$bin"
	fi
}

# probe needs no library: musl keeps it small. echo-server links nettle
# (SHA-1, SHA-256, base64), which Debian ships built for glibc only.
[ -f /usr/include/nettle/sha2.h ] || die "nettle headers not found (run scripts/install-deps.sh)"
build probe musl-gcc "probe.c probe-syscall.c probe.h" "" ""
build echo-server gcc "echo-server.c echo-http.c echo-ws.c echo-server.h" "-D_FORTIFY_SOURCE=2" "-lnettle"

# --- roots ---------------------------------------------------------------

# The common skeleton: directories, accounts and busybox with its applets.
# Applet links are relative, so they resolve inside the root whether it is
# entered with chroot/pivot_root or read from the host.
populate_base() {
	r=$1
	mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/usr/local/bin" \
		"$r/etc" "$r/root" "$r/home/app" "$r/proc" "$r/dev" "$r/sys" "$r/run" \
		"$r/tmp" "$r/var/tmp"
	chmod 1777 "$r/tmp" "$r/var/tmp"
	chmod 0700 "$r/root"
	cp "$busybox" "$r/bin/busybox"
	"$busybox" --list-full | while read -r applet; do
		case "$applet" in
		bin/busybox | linuxrc) continue ;;
		esac
		dir=${applet%/*}
		case "$dir" in
		bin | sbin) up=".." ;;
		usr/bin | usr/sbin) up="../.." ;;
		*) continue ;;
		esac
		ln -sf "$up/bin/busybox" "$r/$applet"
	done
	cat >"$r/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		app:x:1000:1000:app:/home/app:/bin/sh
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	EOF
	cat >"$r/etc/group" <<-'EOF'
		root:x:0:
		app:x:1000:
		nobody:x:65534:
	EOF
	if [ "$(id -u)" -eq 0 ]; then
		chown 1000:1000 "$r/home/app"
	fi
}

populate_test() {
	populate_base "$1"
	cp "$progs/probe" "$progs/echo-server" "$1/usr/local/bin/"
}

populate_demo() {
	populate_base "$1"
	cp -R "$demo_src/www" "$1/www"
	chmod 0755 "$1/www/cgi-bin/"*
}

# root NAME INPUTS...: rebuild OUTDIR/NAME if any input is newer than its
# stamp. The old root is moved aside before the new one is renamed in, so
# OUTDIR/NAME is at every moment either absent or complete.
root() {
	name=$1
	shift
	stamp="$out/.$name.stamp"
	# Packages keep their files' mtimes, so an upgraded busybox can look
	# older than the stamp: compare it by content.
	if [ -d "$out/$name" ] && ! stale "$stamp" "$@" &&
		cmp -s "$busybox" "$out/$name/bin/busybox"; then
		return 0
	fi
	say ROOTFS "$out/$name"
	tmp="$out/.$name.tmp"
	old="$out/.$name.old"
	rm -rf "$tmp" "$old"
	mkdir "$tmp"
	"populate_$name" "$tmp"
	chmod 0755 "$tmp"
	if [ -e "$out/$name" ]; then
		mv "$out/$name" "$old"
	fi
	mv "$tmp" "$out/$name"
	rm -rf "$old"
	touch "$stamp"
}

root test "$progs/probe" "$progs/echo-server" "$script"
root demo "$demo_src" "$script"

if [ "$built" -eq 0 ]; then
	echo "  rootfs  up to date (${out#"$top"/})"
fi
