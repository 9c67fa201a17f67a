/*
 * `probe syscall NAME`: tries one system call with harmless arguments and
 * prints `NAME: ok` or `NAME: <errno name>`.
 *
 * Every call goes through syscall(2) so that libc neither emulates nor
 * refuses it, and each runs in a forked child: calls that succeed may change
 * the caller (a new namespace, a keyring, a root), and a seccomp filter that
 * kills instead of failing kills only the child (reported as
 * `NAME: killed-by-SIGSYS`).
 *
 * Where a successful call could do damage (mount, umount2, pivot_root,
 * reboot, kexec_load, init_module), the arguments are chosen so that the
 * kernel refuses them only *after* its permission checks. Those probes print
 * the argument error (EINVAL, EBUSY, ENOEXEC, ENOENT) when the call is
 * permitted and EPERM when it is not; README.md lists which is which.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probe.h"

/* Constants from kernel headers, which musl-gcc cannot see. */
#define PROBE_MNT_DETACH          0x2
#define PROBE_MNT_EXPIRE          0x4
#define PROBE_KEYCTL_GET_KEYRING  0
#define PROBE_KEY_SPEC_PROCESS    (-2)
#define PROBE_KEY_SPEC_SESSION    (-3)
#define PROBE_BPF_MAP_CREATE      0
#define PROBE_BPF_MAP_TYPE_ARRAY  2
#define PROBE_PERF_TYPE_SOFTWARE  1
#define PROBE_PERF_COUNT_TASK_CLK 1
#define PROBE_PERF_FLAG_CLOEXEC   8
#define PROBE_PTRACE_TRACEME      0
#define PROBE_KEXEC_SEGMENT_MAX   16

struct probe_bpf_map_attr {
	uint32_t map_type;
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t map_flags;
};

/* The first PERF_ATTR_SIZE_VER0 (64) bytes of struct perf_event_attr. */
struct probe_perf_attr {
	uint32_t type;
	uint32_t size;
	uint64_t config;
	uint64_t sample_period;
	uint64_t sample_type;
	uint64_t read_format;
	uint64_t flags; /* bit 0 disabled, 5 exclude_kernel, 6 exclude_hv */
	uint32_t wakeup_events;
	uint32_t bp_type;
	uint64_t config1;
};

struct probe_clone_args {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
};

static int result(long r)
{
	return r < 0 ? errno : 0;
}

/* Closes a descriptor a successful probe returned. */
static int result_fd(long r)
{
	if (r < 0)
		return errno;
	close((int)r);
	return 0;
}

/* A process-creating call returned r; reap the child it made. The child side
 * only ever calls _exit, as its stack is a copy of ours. */
static int result_child(long r)
{
	if (r == 0)
		_exit(0);
	if (r < 0)
		return errno;
	waitpid((pid_t)r, NULL, 0);
	return 0;
}

static int try_mount(void)
{
	/* MS_PRIVATE|MS_SHARED is never a valid propagation change: a permitted
	 * call fails with EINVAL and nothing is ever mounted. */
	return result(syscall(SYS_mount, NULL, "/", NULL, MS_PRIVATE | MS_SHARED, NULL));
}

static int try_umount2(void)
{
	/* MNT_EXPIRE together with MNT_DETACH is always EINVAL once the
	 * permission checks pass, and "/" is the caller's root mount, which
	 * MNT_EXPIRE refuses as well. */
	return result(syscall(SYS_umount2, "/", PROBE_MNT_EXPIRE | PROBE_MNT_DETACH));
}

static int try_unshare(void)
{
	return result(syscall(SYS_unshare, CLONE_NEWNS));
}

static int try_unshare_user(void)
{
	return result(syscall(SYS_unshare, CLONE_NEWUSER));
}

static int try_setns(void)
{
	/* Joining the UTS namespace we are already in changes nothing but still
	 * needs CAP_SYS_ADMIN. Without /proc the fd is -1 and the answer EBADF. */
	int fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	int err = result(syscall(SYS_setns, fd, CLONE_NEWUTS));

	if (fd >= 0)
		close(fd);
	return err;
}

static int try_keyctl(void)
{
	return result(syscall(SYS_keyctl, PROBE_KEYCTL_GET_KEYRING, PROBE_KEY_SPEC_SESSION, 0));
}

static int try_add_key(void)
{
	/* The process keyring dies with the (child) process. */
	return result(syscall(SYS_add_key, "user", "berth-probe", "x", (size_t)1,
	                      PROBE_KEY_SPEC_PROCESS));
}

static int try_request_key(void)
{
	/* No callout info: the kernel only searches, and finds nothing (ENOKEY). */
	return result(syscall(SYS_request_key, "user", "berth-probe-absent", NULL, 0));
}

static int try_clone3(void)
{
	struct probe_clone_args args = {.exit_signal = SIGCHLD};

	return result_child(syscall(SYS_clone3, &args, sizeof(args)));
}

static int try_clone_newns(void)
{
	return result_child(syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0));
}

static int try_pivot_root(void)
{
	/* The new root may not be the current root: EBUSY (or EINVAL on shared
	 * mounts) once permitted, never a pivot. */
	return result(syscall(SYS_pivot_root, "/", "/"));
}

static int try_bpf(void)
{
	struct probe_bpf_map_attr attr = {
	        .map_type = PROBE_BPF_MAP_TYPE_ARRAY,
	        .key_size = 4,
	        .value_size = 4,
	        .max_entries = 1,
	};

	return result_fd(syscall(SYS_bpf, PROBE_BPF_MAP_CREATE, &attr, sizeof(attr)));
}

static int try_perf_event_open(void)
{
	struct probe_perf_attr attr = {
	        .type = PROBE_PERF_TYPE_SOFTWARE,
	        .size = sizeof(attr),
	        .config = PROBE_PERF_COUNT_TASK_CLK,
	        .flags = 1u | 1u << 5 | 1u << 6,
	};

	return result_fd(syscall(SYS_perf_event_open, &attr, 0, -1, -1, PROBE_PERF_FLAG_CLOEXEC));
}

static int try_userfaultfd(void)
{
	return result_fd(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
}

static int try_io_uring_setup(void)
{
	/* struct io_uring_params is 120 bytes, all inputs zero. */
	uint64_t params[15] = {0};

	return result_fd(syscall(SYS_io_uring_setup, 1, params));
}

static int try_kexec_load(void)
{
	/* Unknown flag bit 8 and one segment more than the kernel allows: EINVAL
	 * after the CAP_SYS_BOOT check. (Zero segments and flags 0 would unload
	 * a loaded kexec image, so never use those.) */
	return result(syscall(SYS_kexec_load, 0, PROBE_KEXEC_SEGMENT_MAX + 1, NULL, 0x100));
}

static int try_init_module(void)
{
	/* An empty image is too short to be an ELF module: ENOEXEC. */
	static const char image[1];

	return result(syscall(SYS_init_module, image, 0, ""));
}

static int try_reboot(void)
{
	/* Wrong magic numbers: EINVAL after the CAP_SYS_BOOT check, so this can
	 * never reboot anything, whatever the caller may do. */
	return result(syscall(SYS_reboot, 0, 0, 0, NULL));
}

static int try_swapon(void)
{
	return result(syscall(SYS_swapon, "/berth-probe-no-such-file", 0));
}

static int try_open_by_handle_at(void)
{
	/* A well-formed handle (type FILEID_INO32_GEN, inode 0) that names no
	 * file: ESTALE once CAP_DAC_READ_SEARCH is granted. Newer kernels check
	 * the handle's shape before the capability, so an empty handle would be
	 * EINVAL either way. Read-only, so even a file it found is unharmed. */
	struct {
		uint32_t handle_bytes;
		int32_t handle_type;
		unsigned char f_handle[8];
	} handle = {.handle_bytes = 8, .handle_type = 1};

	return result_fd(syscall(SYS_open_by_handle_at, AT_FDCWD, &handle, O_RDONLY | O_CLOEXEC));
}

static int try_ptrace(void)
{
	return result(syscall(SYS_ptrace, PROBE_PTRACE_TRACEME, 0, NULL, NULL));
}

static int try_chroot(void)
{
	return result(syscall(SYS_chroot, "/"));
}

static char mknod_path[64];

static int try_mknod(void)
{
	snprintf(mknod_path, sizeof(mknod_path), "/tmp/berth-probe-null.%ld", (long)getpid());
	unlink(mknod_path);
	return result(syscall(SYS_mknodat, AT_FDCWD, mknod_path, S_IFCHR | 0666, makedev(1, 3)));
}

/* Creating a device node and using it are separate permissions (CAP_MKNOD
 * versus the device cgroup and nodev mounts), so report both. */
static void after_mknod(int err)
{
	int fd;

	if (err != 0) {
		printf("open-mknod: skipped\n");
		return;
	}
	fd = (int)syscall(SYS_openat, AT_FDCWD, mknod_path, O_RDWR | O_CLOEXEC);
	printf("open-mknod: %s\n", fd < 0 ? probe_errno_name(errno) : "ok");
	if (fd >= 0)
		close(fd);
	unlink(mknod_path);
}

static int try_sethostname(void)
{
	/* Setting the name it already has: a no-op even when permitted. */
	char name[256] = "";

	gethostname(name, sizeof(name) - 1);
	return result(syscall(SYS_sethostname, name, strlen(name)));
}

struct probe_call {
	const char *name;
	int (*run)(void);
	void (*after)(int err);
};

static const struct probe_call calls[] = {
        {"mount", try_mount, NULL},
        {"umount2", try_umount2, NULL},
        {"unshare", try_unshare, NULL},
        {"unshare-user", try_unshare_user, NULL},
        {"setns", try_setns, NULL},
        {"keyctl", try_keyctl, NULL},
        {"add_key", try_add_key, NULL},
        {"request_key", try_request_key, NULL},
        {"clone3", try_clone3, NULL},
        {"clone-newns", try_clone_newns, NULL},
        {"pivot_root", try_pivot_root, NULL},
        {"bpf", try_bpf, NULL},
        {"perf_event_open", try_perf_event_open, NULL},
        {"userfaultfd", try_userfaultfd, NULL},
        {"io_uring_setup", try_io_uring_setup, NULL},
        {"kexec_load", try_kexec_load, NULL},
        {"init_module", try_init_module, NULL},
        {"reboot", try_reboot, NULL},
        {"swapon", try_swapon, NULL},
        {"open_by_handle_at", try_open_by_handle_at, NULL},
        {"ptrace", try_ptrace, NULL},
        {"chroot", try_chroot, NULL},
        {"mknod", try_mknod, after_mknod},
        {"sethostname", try_sethostname, NULL},
};

#define N_CALLS (sizeof(calls) / sizeof(calls[0]))

static int run_call(const struct probe_call *call)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("%s: fork failed: %s\n", call->name, probe_errno_name(errno));
		return -1;
	}
	if (pid == 0) {
		int err = call->run();

		printf("%s: %s\n", call->name, err == 0 ? "ok" : probe_errno_name(err));
		if (call->after)
			call->after(err);
		fflush(stdout);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			printf("%s: waitpid failed: %s\n", call->name, probe_errno_name(errno));
			return -1;
		}
	}
	if (WIFSIGNALED(status)) {
		const char *sig = probe_signal_name(WTERMSIG(status));

		if (sig)
			printf("%s: killed-by-SIG%s\n", call->name, sig);
		else
			printf("%s: killed-by-signal-%d\n", call->name, WTERMSIG(status));
	}
	return 0;
}

static void usage(void)
{
	size_t i;

	fprintf(stderr, "usage: probe syscall NAME|all\nnames:");
	for (i = 0; i < N_CALLS; i++)
		fprintf(stderr, " %s", calls[i].name);
	fprintf(stderr, "\n");
}

int probe_syscall_main(int argc, char **argv)
{
	int rc = 0;
	size_t i;

	if (argc != 1) {
		usage();
		return PROBE_EXIT_USAGE;
	}
	for (i = 0; i < N_CALLS; i++) {
		if (strcmp(argv[0], "all") != 0 && strcmp(argv[0], calls[i].name) != 0)
			continue;
		if (run_call(&calls[i]) < 0)
			rc = 1;
		if (strcmp(argv[0], "all") != 0)
			return rc;
	}
	if (strcmp(argv[0], "all") != 0) {
		fprintf(stderr, "probe: unknown syscall `%s`\n", argv[0]);
		usage();
		return PROBE_EXIT_USAGE;
	}
	return rc;
}
