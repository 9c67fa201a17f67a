#!/bin/bash
# Containers are hostile: system calls, devices, kernel files, the host's
# files and the init process must be out of their reach.
. "$(dirname "$0")/lib.sh"

probe_syscalls() {
	brun -- sh -c 'for s in "$@"; do probe syscall "$s"; done' sh "$@"
}

out=$(probe_syscalls mount umount2 unshare setns keyctl add_key request_key pivot_root bpf \
	perf_event_open userfaultfd io_uring_setup kexec_load init_module reboot swapon \
	open_by_handle_at clone-newns sethostname clone3 chroot 2>&1)
for s in mount umount2 unshare setns keyctl add_key request_key pivot_root bpf perf_event_open \
	userfaultfd io_uring_setup kexec_load init_module reboot swapon open_by_handle_at clone-newns \
	sethostname; do
	check_contains "$s is refused with EPERM" "$s: EPERM" "$out"
done
check_contains "clone3 answers ENOSYS (libc falls back to clone)" "clone3: ENOSYS" "$out"
check_contains "chroot stays allowed (CAP_SYS_CHROOT is in the default set)" "chroot: ok" "$out"

out=$(brun -- sh -c 'probe syscall mknod' 2>&1)
check_contains "mknod is allowed (CAP_MKNOD)" "mknod: ok" "$out"
check_contains "but a made device node cannot be opened (nodev)" "open-mknod: EACCES" "$out"

out=$(brun -- sh -c '
	echo "kcore=$(wc -c < /proc/kcore 2>/dev/null || echo absent)"
	echo "keys=$(wc -c < /proc/keys)"
	echo "timer_list=$(wc -c < /proc/timer_list)"
	echo "firmware=$(ls /sys/firmware | wc -l)"
	echo x > /proc/sys/kernel/domainname 2>/dev/null && echo "sysctl=written" || echo "sysctl=refused"
	echo b > /proc/sysrq-trigger 2>/dev/null && echo "sysrq=written" || echo "sysrq=refused"
	touch /sys/berth 2>/dev/null && echo "sys=written" || echo "sys=refused"
	cat /proc/1/environ >/dev/null 2>&1 && echo "init_environ=readable" || echo "init_environ=refused"
	readlink /proc/1/exe >/dev/null 2>&1 && echo "init_exe=readable" || echo "init_exe=refused"
	readlink /proc/1/fd/0 >/dev/null 2>&1 && echo "init_fd=readable" || echo "init_fd=refused"
	cat /proc/1/maps >/dev/null 2>&1 && echo "init_maps=readable" || echo "init_maps=refused"
	grep -E " /proc/sys | /sys " /proc/self/mountinfo')
check_true "/proc/kcore is masked" grep -qE "kcore=(0|absent)" <<<"$out"
check_contains "/proc/keys is masked" "keys=0" "$out"
check_contains "/proc/timer_list is masked" "timer_list=0" "$out"
check_contains "/sys/firmware is masked" "firmware=0" "$out"
check_contains "/proc/sys is read-only" "sysctl=refused" "$out"
check_contains "/proc/sysrq-trigger is read-only" "sysrq=refused" "$out"
check_contains "/sys is read-only" "sys=refused" "$out"
check_contains "the init's environment is out of reach" "init_environ=refused" "$out"
check_contains "the init's executable is out of reach" "init_exe=refused" "$out"
check_contains "the init's descriptors cannot be followed" "init_fd=refused" "$out"
check_contains "the init's memory map is out of reach" "init_maps=refused" "$out"
check_true "/proc/sys is mounted read-only" grep -qE " /proc/sys ro," <<<"$out"

# Writes land in the container's own layer, never in the image or the host.
marker=/tmp/berth-e2e-marker-$$
out=$(brun --name writer -- sh -c "echo data > $marker && echo changed >> /etc/passwd && echo wrote")
check_contains "the container can write its own files" "wrote" "$out"
check_true "the image is unchanged (/etc/passwd)" sh -c "! grep -q changed '$ROOTFS/etc/passwd'"
check_true "the image is unchanged (no $marker)" test ! -e "$ROOTFS$marker"
check_true "the host is unchanged (no $marker)" test ! -e "$marker"
out=$(brun -- sh -c "cat $marker 2>&1; grep -c changed /etc/passwd")
check_contains "a second container starts from the clean image" "0" "$out"
check_nothing_left writer

out=$(brun --read-only -- sh -c 'probe write /newfile; probe write /tmp/f; probe write /dev/shm/f')
check_contains "--read-only: the root is not writable" "write /newfile: EROFS" "$out"
check_contains "--read-only: nor /tmp" "write /tmp/f: EROFS" "$out"
check_contains "--read-only: /dev/shm still is" "write /dev/shm/f: ok" "$out"

# Images that plant symlinks where berth mounts things. An /etc that points
# at an absolute path resolves inside the container's root: the host's
# directory of that name (made here, empty) must stay empty.
target=/tmp/berth-e2e-escape-$$
mkdir -p "$target"
evil=$STATE/evil-etc
mkdir -p "$evil"
cp -a "$ROOTFS/." "$evil/"
mkdir -p "$evil$target"
cp -a "$evil/etc/." "$evil$target/"
rm -rf "$evil/etc"
ln -s "/../../..$target" "$evil/etc"
out=$("$BERTH_BIN/berth" run --state-dir "$STATE" --rootfs "$evil" --hostname evil -- cat /etc/hostname 2>&1)
check_eq "an /etc symlinked to an absolute path gets its files inside the container" "evil" "$out"
check_eq "and nothing in the host's directory of that name" "" "$(ls -A "$target")"
rmdir "$target"

rm -rf "$evil/etc" "$evil$target"
ln -s "$target" "$evil/etc"
out=$("$BERTH_BIN/berth" run --state-dir "$STATE" --rootfs "$evil" -- true 2>&1)
check_contains "an /etc that is a dangling symlink is refused clearly" \
	"\`/etc\` in the image is a symlink to \`$target\`, which does not exist" "$out"
check_true "and creates nothing on the host" test ! -e "$target"

evil=$STATE/evil-proc
mkdir -p "$evil"
cp -a "$ROOTFS/." "$evil/"
rm -rf "$evil/proc"
ln -s / "$evil/proc"
# The host's mounts, but for the prepared network namespaces (nsfs) that
# runs leave and take at any time.
host_mounts() { grep -v ' - nsfs ' /proc/self/mountinfo | cut -d' ' -f5 | sort; }
mounts_before=$(host_mounts)
"$BERTH_BIN/berth" run --state-dir "$STATE" --rootfs "$evil" -- true >/dev/null 2>&1
check_eq "a /proc symlinked to / mounts nothing on the host" "$mounts_before" "$(host_mounts)"
check_true "the host's root is not covered by a proc mount" \
	sh -c "! grep -qE '^[0-9]+ [0-9]+ [^ ]+ / / .* - proc ' /proc/self/mountinfo"

finish
