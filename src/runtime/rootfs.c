/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The container's filesystem, built by its init in its own mount namespace:
 *
 *   overlay  lower = the image root (never written), upper/work in the
 *            container's state directory; nodev, so device nodes an image
 *            ships or a process creates with CAP_MKNOD cannot be opened
 *   /proc    fresh procfs of the container's pid namespace
 *   /dev     tmpfs (nodev) with null zero full tty random urandom bind-mounted
 *            from the host (a bind mount keeps its own, dev-allowing flags),
 *            devpts (newinstance), shm, mqueue and the usual symlinks
 *   /sys     sysfs, read-only
 *   /etc/hostname, /etc/hosts, /etc/resolv.conf  bind mounts of files in a
 *            scratch tmpfs of the init's own (see runtime-internal.h)
 * then pivot_root, then masked paths (tmpfs or /dev/null over them) and
 * read-only paths, as Docker does.
 *
 * Nothing here touches the host: all mounts happen in the init's private
 * mount namespace, and the only host directories written are the
 * container's upper and work directories (by overlayfs).
 *
 * Every mount point that comes from the image is resolved inside the new root
 * (openat2 RESOLVE_IN_ROOT) and mounted through /proc/self/fd/N: an image
 * whose /proc is a symlink to "/" gets proc mounted on its own root, never on
 * the host's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "berth/trace.h"
#include "berth/fs.h"
#include "berth/util.h"
#include "runtime-internal.h"

static const char *const dev_nodes[] = {"null", "zero", "full", "tty", "random", "urandom"};

static const struct {
	const char *name, *target;
} dev_links[] = {
        {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
        {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
};

/* Hidden from the container: kernel memory, keys, timers, hardware details. */
static const char *const masked_paths[] = {
        "/proc/acpi",       "/proc/asound",      "/proc/interrupts",
        "/proc/kcore",      "/proc/keys",        "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/proc/scsi",       "/sys/firmware",     "/sys/devices/virtual/powercap",
};

/* Visible but read-only: writing these would change the host kernel. */
static const char *const readonly_paths[] = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static const char *const etc_files[] = {"hostname", "hosts", "resolv.conf"};

static int mount_at(int fd, const char *source, const char *fstype, unsigned long flags,
                    const char *data, const char *what, berth_error_t *err)
{
	char path[BERTH_FD_PATH_MAX];

	if (mount(source, berth_fd_path(fd, path), fstype, flags, data) < 0)
		return berth_error_set(err, errno, "mount %s", what);
	return 0;
}

/* Mount on `target` inside the root, creating it (a directory, or a file when !dir). */
static int mount_in_root(int rootfd, const char *target, bool dir, const char *source,
                         const char *fstype, unsigned long flags, const char *data,
                         berth_error_t *err)
{
	cleanup_close int fd = berth_ensure_in_root(rootfd, target, dir, dir ? 0755 : 0644, err);
	char what[256];

	if (fd < 0)
		return fd;
	snprintf(what, sizeof(what), "%s on `%s`", fstype != NULL ? fstype : source, target);
	return mount_at(fd, source, fstype, flags, data, what, err);
}

/*
 * More lower layers than fit in one page of mount options (the kernel's
 * limit): the new mount API adds them one by one ("lowerdir+", Linux 6.8).
 */
static int mount_overlay_fsconfig(const struct berth_start_request *req, const char *target,
                                  char *const *lowers, berth_error_t *err)
{
	const char *dir = req->container_dir;
	cleanup_free char *upper = xasprintf("%s/" BERTH_CONTAINER_UPPER, dir);
	cleanup_free char *work = xasprintf("%s/" BERTH_CONTAINER_WORK, dir);
	cleanup_close int fsfd = -1;
	cleanup_close int mfd = -1;

	fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return berth_error_set(err, errno, "fsopen overlay");
	for (size_t i = 0; lowers[i] != NULL; i++)
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", lowers[i], 0) < 0)
			return berth_error_set(err, errno,
			                       "overlay: add lower layer `%s` (%zu layers need "
			                       "Linux 6.8's lowerdir+)",
			                       lowers[i], berth_strv_len(lowers));
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0)
		return berth_error_set(err, errno, "overlay: upper and work directories");
	/* As below: volatile where the kernel has it. */
	fsconfig(fsfd, FSCONFIG_SET_FLAG, "volatile", NULL, 0);
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return berth_error_set(err, errno, "create overlay of %zu layers",
		                       berth_strv_len(lowers));
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
	if (mfd < 0)
		return berth_error_set(err, errno, "fsmount overlay");
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return berth_error_set(err, errno, "move overlay to `%s`", target);
	return 0;
}

static int mount_overlay(const struct berth_start_request *req, const char *target,
                         berth_error_t *err)
{
	const char *dir = req->container_dir;
	cleanup_free char *opts = NULL;
	cleanup_free char *volatile_opts = NULL;
	cleanup_free char *lower = NULL;
	cleanup_free char **lowers = NULL;
	size_t n = 0, len = 0;

	/* Leftmost lower is the top: the init layer's mount points over the image. */
	lowers = xcalloc(berth_strv_len(req->spec.layers) + 3, sizeof(char *));
	if (req->init_layer != NULL)
		lowers[n++] = (char *)req->init_layer;
	if (req->spec.layers != NULL)
		for (size_t i = 0; req->spec.layers[i] != NULL; i++)
			lowers[n++] = req->spec.layers[i];
	else
		lowers[n++] = (char *)req->spec.rootfs;
	for (size_t i = 0; i < n; i++)
		len += strlen(lowers[i]) + 1;
	lower = xmalloc(len + 1);
	lower[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strcat(lower, ":");
		strcat(lower, lowers[i]);
	}
	opts = xasprintf("lowerdir=%s,upperdir=%s/" BERTH_CONTAINER_UPPER
	                 ",workdir=%s/" BERTH_CONTAINER_WORK,
	                 lower, dir, dir);
	/* The kernel copies at most one page of options. */
	if (strlen(opts) + sizeof(",volatile") > (size_t)getpagesize())
		return mount_overlay_fsconfig(req, target, lowers, err);
	volatile_opts = xasprintf("%s,volatile", opts);
	/*
	 * A container's writable layer does not outlive the container, so
	 * overlayfs need not sync it ("volatile", Linux 5.10+); older kernels
	 * refuse the option, and then we mount without it.
	 */
	if (mount("overlay", target, "overlay", MS_NODEV, volatile_opts) == 0)
		return 0;
	if (errno == EINVAL && mount("overlay", target, "overlay", MS_NODEV, opts) == 0)
		return 0;
	return berth_error_set(err, errno, "mount overlay of `%s` on `%s`", lowers[n - 1], target);
}

/*
 * The scratch tmpfs on STATE/mnt: the overlay mount point "root" and the
 * /etc files. It is left behind (detached) at pivot_root; the bind mounts
 * keep the files alive.
 */
static int setup_scratch(const struct berth_start_request *req, const char *scratch,
                         berth_error_t *err)
{
	cleanup_close int dfd = -1;
	static const char *const names[] = {"hostname", "hosts", "resolv.conf"};
	const char *contents[] = {req->etc_hostname, req->etc_hosts, req->etc_resolv};

	if (mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	          "size=64k,mode=755") < 0)
		return berth_error_set(err, errno, "mount scratch tmpfs on `%s`", scratch);
	dfd = open(scratch, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_set(err, errno, "open `%s`", scratch);
	if (mkdirat(dfd, "root", 0755) < 0)
		return berth_error_set(err, errno, "mkdir `%s/root`", scratch);
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(names); i++) {
		cleanup_close int fd =
		        openat(dfd, names[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 || berth_write_all(fd, contents[i], strlen(contents[i])) < 0)
			return berth_error_set(err, errno, "write `%s/%s`", scratch, names[i]);
	}
	return 0;
}

static int setup_dev(int rootfd, berth_error_t *err)
{
	cleanup_close int devfd = -1;
	int r;

	/* nodev: only the bind-mounted nodes below can be opened as devices. */
	r = mount_in_root(rootfd, "/dev", true, "tmpfs", "tmpfs",
	                  MS_NOSUID | MS_NODEV | MS_STRICTATIME, "mode=755,size=65536k", err);
	if (r < 0)
		return r;
	/* Resolve again: the descriptor must name the new tmpfs, not what it covers. */
	devfd = berth_open_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY, 0);
	if (devfd < 0)
		return berth_error_set(err, -devfd, "open `/dev` in container");

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(dev_nodes); i++) {
		cleanup_free char *host = xasprintf("/dev/%s", dev_nodes[i]);
		cleanup_close int fd = -1;
		char what[64];

		fd = openat(devfd, dev_nodes[i], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
		if (fd < 0)
			return berth_error_set(err, errno, "create `/dev/%s`", dev_nodes[i]);
		snprintf(what, sizeof(what), "`%s`", host);
		r = mount_at(fd, host, NULL, MS_BIND, NULL, what, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(dev_links); i++)
		if (symlinkat(dev_links[i].target, devfd, dev_links[i].name) < 0)
			return berth_error_set(err, errno, "symlink `/dev/%s`", dev_links[i].name);

	{
		static const struct {
			const char *name, *fstype, *data;
			unsigned long flags;
		} subs[] = {
		        {"pts", "devpts", "newinstance,ptmxmode=0666,mode=0620,gid=5",
		         MS_NOSUID | MS_NOEXEC},
		        {"shm", "tmpfs", "mode=1777,size=65536k", MS_NOSUID | MS_NODEV | MS_NOEXEC},
		        {"mqueue", "mqueue", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC},
		};
		for (size_t i = 0; i < BERTH_ARRAY_SIZE(subs); i++) {
			cleanup_close int fd = -1;
			char what[64];

			if (mkdirat(devfd, subs[i].name, 0755) < 0)
				return berth_error_set(err, errno, "mkdir `/dev/%s`", subs[i].name);
			fd = openat(devfd, subs[i].name,
			            O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return berth_error_set(err, errno, "open `/dev/%s`", subs[i].name);
			snprintf(what, sizeof(what), "%s on `/dev/%s`", subs[i].fstype,
			         subs[i].name);
			r = mount_at(fd, subs[i].fstype, subs[i].fstype, subs[i].flags,
			             subs[i].data, what, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int pivot(int rootfd, berth_error_t *err)
{
	/*
	 * pivot_root(".", ".") stacks the old root on top of the new one; the
	 * lazy unmount then drops it (and every host mount with it) without a
	 * directory to park it in.
	 */
	if (fchdir(rootfd) < 0)
		return berth_error_set(err, errno, "enter the container root");
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return berth_error_set(err, errno, "pivot_root");
	if (umount2(".", MNT_DETACH) < 0)
		return berth_error_set(err, errno, "detach the host root");
	if (chdir("/") < 0)
		return berth_error_set(err, errno, "chdir `/`");
	return 0;
}

static int mask_paths(berth_error_t *err)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(masked_paths); i++) {
		const char *p = masked_paths[i];
		struct stat st;
		int r;

		if (lstat(p, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return berth_error_set(err, errno, "stat `%s`", p);
		}
		if (S_ISDIR(st.st_mode))
			r = mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			          "size=0");
		else
			r = mount("/dev/null", p, NULL, MS_BIND, NULL);
		if (r < 0)
			return berth_error_set(err, errno, "mask `%s`", p);
	}
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(readonly_paths); i++) {
		const char *p = readonly_paths[i];

		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			return berth_error_set(err, errno, "bind `%s`", p);
		}
		if (mount(NULL, p, NULL,
		          MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		          NULL) < 0)
			return berth_error_set(err, errno, "make `%s` read-only", p);
	}
	return 0;
}

static int make_layers(const struct berth_start_request *req, int dir_fd, berth_error_t *err)
{
	const char *dir = req->container_dir;
	const char *top;
	struct stat st;
	int r;

	/* Whatever is here belongs to a container that is gone: we hold the lock. */
	r = berth_rmtree_at(dir_fd, BERTH_CONTAINER_UPPER, err);
	if (r == 0)
		r = berth_rmtree_at(dir_fd, BERTH_CONTAINER_WORK, err);
	if (r < 0)
		return berth_error_wrap(err, "remove the remains of container `%s`", req->spec.id);
	/* The merged root takes its owner and mode from the upper directory. */
	top = req->spec.layers != NULL ? req->spec.layers[0] : req->spec.rootfs;
	if (stat(top, &st) < 0)
		return berth_error_set(err, errno, "rootfs `%s`", top);
	if (mkdirat(dir_fd, BERTH_CONTAINER_UPPER, st.st_mode & 07777) < 0 ||
	    fchownat(dir_fd, BERTH_CONTAINER_UPPER, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return berth_error_set(err, errno, "create `%s/" BERTH_CONTAINER_UPPER "`", dir);
	if (mkdirat(dir_fd, BERTH_CONTAINER_WORK, 0700) < 0)
		return berth_error_set(err, errno, "create `%s/" BERTH_CONTAINER_WORK "`", dir);
	return 0;
}

int berth_rootfs_setup(const struct berth_start_request *req, int dir_fd, berth_error_t *err)
{
	cleanup_free char *scratch = xasprintf("%s/" BERTH_STATE_MNT, req->spec.state_dir);
	cleanup_free char *target = xasprintf("%s/root", scratch);
	cleanup_close int rootfd = -1;
	int r;

	r = make_layers(req, dir_fd, err);
	if (r < 0)
		return r;
	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return berth_error_set(err, errno, "make mounts private");
	r = setup_scratch(req, scratch, err);
	if (r < 0)
		return r;
	BERTH_TRACE("rootfs: scratch");
	r = mount_overlay(req, target, err);
	if (r < 0)
		return r;
	BERTH_TRACE("rootfs: overlay");
	rootfd = open(target, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return berth_error_set(err, errno, "open `%s`", target);

	r = mount_in_root(rootfd, "/proc", true, "proc", "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV,
	                  NULL, err);
	if (r < 0)
		return r;
	BERTH_TRACE("rootfs: proc");
	r = setup_dev(rootfd, err);
	if (r < 0)
		return r;
	BERTH_TRACE("rootfs: dev");
	r = mount_in_root(rootfd, "/sys", true, "sysfs", "sysfs",
	                  MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(etc_files); i++) {
		cleanup_free char *src = xasprintf("%s/%s", scratch, etc_files[i]);
		cleanup_free char *dst = xasprintf("/etc/%s", etc_files[i]);

		r = mount_in_root(rootfd, dst, false, src, NULL, MS_BIND, NULL, err);
		if (r < 0)
			return r;
	}
	if (req->spec.workdir != NULL) {
		int fd = berth_ensure_in_root(rootfd, req->spec.workdir, true, 0755, err);
		if (fd < 0)
			return berth_error_wrap(err, "workdir");
		close(fd);
	}

	BERTH_TRACE("rootfs: sys, etc");
	r = pivot(rootfd, err);
	if (r < 0)
		return r;
	BERTH_TRACE("rootfs: pivot");
	r = mask_paths(err);
	if (r < 0)
		return r;
	if (req->spec.read_only &&
	    mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NODEV, NULL) < 0)
		return berth_error_set(err, errno, "make the root read-only");
	return 0;
}
