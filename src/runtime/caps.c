/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Capabilities of a container process: Docker's default set, nothing more.
 *
 * capset(2) and the bounding-set prctl act on the calling thread only. This
 * runs in a single-threaded child just before exec, where that thread is the
 * whole process, so libcap's psx machinery for threaded callers is not needed.
 */
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/capability.h>
#include <unistd.h>

#include "berth/util.h"
#include "runtime/security.h"

/* Docker's default capabilities (moby's oci/caps/defaults.go). */
static const cap_value_t default_caps[] = {
        CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
        CAP_MKNOD,   CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
        CAP_SETFCAP, CAP_SETPCAP,      CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
        CAP_KILL,    CAP_AUDIT_WRITE,
};

uint64_t berth_caps_default_mask(void)
{
	uint64_t mask = 0;
	size_t i;

	for (i = 0; i < BERTH_ARRAY_SIZE(default_caps); i++)
		mask |= UINT64_C(1) << default_caps[i];
	return mask;
}

/* "cap_sys_admin" for messages; libcap prints a number for a capability it does not know. */
static void cap_name(cap_value_t cap, char *buf, size_t size)
{
	char *name = cap_to_name(cap);

	snprintf(buf, size, "%s", name != NULL ? name : "?");
	cap_free(name);
}

static int drop_bounding_set(berth_error_t *err)
{
	/* The running kernel's count, which may be larger than the one libcap was built with. */
	cap_value_t n = cap_max_bits();
	uint64_t keep = berth_caps_default_mask();
	cap_value_t cap;
	char name[64];

	for (cap = 0; cap < n; cap++) {
		if (cap < 64 && (keep >> cap & 1) != 0)
			continue;
		/*
		 * Skipping what is already gone keeps this working for a caller
		 * that has lost CAP_SETPCAP, such as a second call.
		 */
		if (cap_get_bound(cap) == 0)
			continue;
		if (cap_drop_bound(cap) < 0) {
			int e = errno;
			cap_name(cap, name, sizeof(name));
			return berth_error_set(err, e, "drop capability `%s` from the bounding set",
			                       name);
		}
	}
	return 0;
}

/*
 * Set effective and permitted to the default set (root) or to nothing, and
 * inheritable to nothing, then read them back: the kernel must report exactly
 * that.
 */
static int set_process_caps(uint32_t uid, berth_error_t *err)
{
	bool keep = uid == 0;
	cap_t want = cap_init();
	cap_t got = NULL;
	int r = 0;

	if (want == NULL)
		return berth_error_set(err, errno, "allocate a capability set");
	if (keep && (cap_set_flag(want, CAP_EFFECTIVE, (int)BERTH_ARRAY_SIZE(default_caps),
	                          default_caps, CAP_SET) < 0 ||
	             cap_set_flag(want, CAP_PERMITTED, (int)BERTH_ARRAY_SIZE(default_caps),
	                          default_caps, CAP_SET) < 0)) {
		r = berth_error_set(err, errno, "build the default capability set");
		goto out;
	}
	if (cap_set_proc(want) < 0) {
		r = berth_error_set(err, errno, "set the process capabilities");
		goto out;
	}
	got = cap_get_proc();
	if (got == NULL) {
		r = berth_error_set(err, errno, "read the process capabilities back");
		goto out;
	}
	if (cap_compare(want, got) != 0)
		r = berth_error_set_plain(
		        err, EPERM, "capabilities beyond the container's remain for uid %u", uid);
out:
	cap_free(got);
	cap_free(want);
	return r;
}

int berth_caps_drop(uint32_t uid, uint32_t gid, berth_error_t *err)
{
	int r;

	/*
	 * The bounding set first: it needs CAP_SETPCAP, which a non-root uid
	 * loses below, and it caps what any later execve (of a set-user-ID or
	 * file-capability binary) can give back.
	 */
	r = drop_bounding_set(err);
	if (r < 0)
		return r;
	if (cap_reset_ambient() < 0)
		return berth_error_set(err, errno, "clear the ambient capabilities");
	/* Supplementary groups are inherited from the daemon; none belong in the container. */
	if (setgroups(0, NULL) < 0)
		return berth_error_set(err, errno, "clear the supplementary groups");
	/* The gid while CAP_SETGID is still there: setresuid() to a non-root uid takes it away. */
	if (setresgid(gid, gid, gid) < 0)
		return berth_error_set(err, errno, "set gid %u", gid);
	/*
	 * For a non-root uid the kernel now clears permitted and effective (all
	 * three uids leave 0 and SECBIT_KEEP_CAPS is not set); it leaves the
	 * inheritable set alone, so set_process_caps() clears that and checks
	 * that nothing survived, whatever the securebits said.
	 */
	if (setresuid(uid, uid, uid) < 0)
		return berth_error_set(err, errno, "set uid %u", uid);
	/*
	 * The inheritable set stays empty even for root (CVE-2022-24769): with
	 * it, a process that switches to another user keeps a way back to
	 * these capabilities through binaries with inheritable file capabilities.
	 */
	return set_process_caps(uid, err);
}
