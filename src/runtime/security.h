/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a container process gives up before it runs image code: capabilities
 * beyond Docker's default set, its user, new privileges, and system calls
 * (a seccomp filter).
 */
#ifndef BERTH_RUNTIME_SECURITY_H
#define BERTH_RUNTIME_SECURITY_H

#include <stdint.h>
#include <linux/filter.h>

#include "berth/error.h"

/*
 * Docker's default capabilities: CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD,
 * NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT,
 * KILL, AUDIT_WRITE, as a bit mask (bit N = capability N), which is what
 * /proc/PID/status prints as CapEff for root in a container.
 */
uint64_t berth_caps_default_mask(void);

/*
 * Drop to the container's privileges, in the calling (single-threaded)
 * process, using libcap: bounding set reduced to the default set, ambient
 * cleared, supplementary groups cleared, then gid and uid set; uid 0 keeps the
 * default set as effective and permitted, any other uid keeps none, and the
 * inheritable set is left empty for both (CVE-2022-24769). The result is read
 * back and checked. Does not set no_new_privs. The message in `err` names the
 * failed step, e.g. "drop capability `cap_sys_admin` from the bounding set:
 * Operation not permitted".
 */
int berth_caps_drop(uint32_t uid, uint32_t gid, berth_error_t *err);

/*
 * Compile berth's seccomp profile for the running architecture: an allow-list
 * modelled on Docker's default profile. Denied system calls fail with EPERM
 * (mount, umount2, unshare, setns, pivot_root, keyctl, add_key, request_key,
 * kexec_*, userfaultfd, io_uring_*, bpf, perf_event_open, *_module, reboot,
 * swapon/swapoff, open_by_handle_at, …), clone with namespace flags fails with
 * EPERM, clone3 fails with ENOSYS (so libc falls back to clone, whose flags
 * the filter can see), and system calls unknown to the profile fail with
 * ENOSYS. A system call made through another ABI of the CPU (i386 `int $0x80`
 * or x32 on x86_64) kills the process. The program is heap-allocated; free it
 * with berth_seccomp_free(). It depends only on the running kernel and
 * libseccomp, so one build can serve many containers.
 */
int berth_seccomp_build(struct sock_fprog *prog, berth_error_t *err);
void berth_seccomp_free(struct sock_fprog *prog);

/*
 * The same program, compiled when berth was built and embedded in it: what
 * containers get, at no cost per start.
 */
const struct sock_fprog *berth_seccomp_default(void);

/*
 * Install a program built by berth_seccomp_build() in the calling thread.
 * Only system calls: safe between fork and exec. no_new_privs must be set
 * (or CAP_SYS_ADMIN held). Returns 0 or -errno.
 */
int berth_seccomp_install(const struct sock_fprog *prog);

#endif
