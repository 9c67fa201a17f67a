/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Capabilities and seccomp, checked in forked children so that this process
 * keeps its privileges. A child reports a failed check as a message on a pipe
 * and a non-zero exit status; cmocka's own assertions are for the parent only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/wait.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "runtime/security.h"

/* Docker's default set as /proc/PID/status prints it for root in a container. */
#define DOCKER_DEFAULT_CAPS 0x00000000a80425fbull

/* keyctl(2) constants, without pulling in libkeyutils. */
#define KEYCTL_GET_KEYRING_ID    0
#define KEY_SPEC_SESSION_KEYRING -3

/* The pipe a child writes its complaint to. */
static int report_fd = -1;

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			dprintf(report_fd, "%s:%d: %s (errno: %s)", __FILE__, __LINE__, #cond, \
			        strerror(errno));                                              \
			_exit(1);                                                              \
		}                                                                              \
	} while (0)

/*
 * Run `fn` in a child; return its wait status and copy what it wrote to the
 * report pipe into `msg`.
 */
static int run_child(int (*fn)(void), char *msg, size_t size)
{
	int fds[2];
	pid_t pid;
	int status = -1;
	ssize_t n;

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		report_fd = fds[1];
		_exit(fn());
	}
	close(fds[1]);
	/* Until every writer is gone: the child and whatever it forked. */
	n = berth_read_all(fds[0], msg, size - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/* Run `fn` in a child and fail the test, with the child's complaint, unless it exits 0. */
static void expect_child_ok(int (*fn)(void))
{
	char msg[1024];
	int status = run_child(fn, msg, sizeof(msg));

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child failed (status 0x%x): %s", status, msg);
}

static bool skip_unless_root(const char *why)
{
	if (geteuid() == 0)
		return false;
	print_message("skipped: needs root to %s\n", why);
	return true;
}

/* A "Name:\t<hex>" line of /proc/self/status. */
static uint64_t status_hex(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	size_t len = strlen(key);
	uint64_t v = UINT64_MAX;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, len) == 0 && line[len] == ':') {
			v = strtoull(line + len + 1, NULL, 16);
			break;
		}
	fclose(f);
	CHECK(v != UINT64_MAX);
	return v;
}

/*
 * Give the process something to lose: supplementary groups, inheritable and
 * ambient capabilities (one of them outside the default set).
 */
static void pile_up_privileges(void)
{
	static const cap_value_t extra[] = {CAP_NET_RAW, CAP_SYS_ADMIN};
	gid_t groups[] = {1, 2};
	cap_t caps = cap_get_proc();

	CHECK(setgroups(2, groups) == 0);
	CHECK(caps != NULL);
	CHECK(cap_set_flag(caps, CAP_INHERITABLE, 2, extra, CAP_SET) == 0);
	CHECK(cap_set_proc(caps) == 0);
	cap_free(caps);
	CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) == 0);
	CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0) == 0);
	CHECK(status_hex("CapAmb") != 0);
	CHECK(getgroups(0, NULL) == 2);
}

static void test_default_mask(void **state)
{
	(void)state;
	assert_int_equal(berth_caps_default_mask(), DOCKER_DEFAULT_CAPS);
}

static int drop_as_root(void)
{
	berth_error_t err;
	int fd;

	/* Before the drop, so that a failure below cannot rename the host. */
	CHECK(unshare(CLONE_NEWUTS) == 0);
	pile_up_privileges();
	if (berth_caps_drop(0, 0, &err) < 0) {
		dprintf(report_fd, "berth_caps_drop: %s", err.message);
		return 1;
	}
	CHECK(status_hex("CapEff") == berth_caps_default_mask());
	CHECK(status_hex("CapPrm") == berth_caps_default_mask());
	CHECK(status_hex("CapBnd") == berth_caps_default_mask());
	CHECK(status_hex("CapInh") == 0);
	CHECK(status_hex("CapAmb") == 0);
	CHECK(getuid() == 0 && geteuid() == 0 && getgid() == 0);
	CHECK(getgroups(0, NULL) == 0);
	/* Outside the set: CAP_SYS_ADMIN. */
	CHECK(sethostname("berth-test", 10) == -1 && errno == EPERM);
	/* Inside it: CAP_CHOWN. */
	fd = memfd_create("berth-test", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(fchown(fd, 1234, 1234) == 0);
	close(fd);
	return 0;
}

static void test_drop_root(void **state)
{
	(void)state;
	if (skip_unless_root("unshare the UTS namespace and hold capabilities to drop"))
		skip();
	expect_child_ok(drop_as_root);
}

static int drop_to_user(void)
{
	berth_error_t err;
	uid_t r, e, s;
	gid_t rg, eg, sg;

	pile_up_privileges();
	if (berth_caps_drop(1000, 1000, &err) < 0) {
		dprintf(report_fd, "berth_caps_drop: %s", err.message);
		return 1;
	}
	CHECK(getresuid(&r, &e, &s) == 0 && r == 1000 && e == 1000 && s == 1000);
	CHECK(getresgid(&rg, &eg, &sg) == 0 && rg == 1000 && eg == 1000 && sg == 1000);
	CHECK(getgroups(0, NULL) == 0);
	CHECK(status_hex("CapEff") == 0);
	CHECK(status_hex("CapPrm") == 0);
	CHECK(status_hex("CapInh") == 0);
	CHECK(status_hex("CapAmb") == 0);
	/* What a set-user-ID binary could still get back, at most. */
	CHECK(status_hex("CapBnd") == berth_caps_default_mask());
	CHECK(setuid(0) == -1 && errno == EPERM);
	return 0;
}

static void test_drop_user(void **state)
{
	(void)state;
	if (skip_unless_root("switch to uid 1000"))
		skip();
	expect_child_ok(drop_to_user);
}

/* Without CAP_SETPCAP the bounding set cannot shrink; the message must say which step failed. */
static int drop_without_setpcap(void)
{
	cap_value_t setpcap = CAP_SETPCAP;
	berth_error_t err;
	cap_t caps = cap_get_proc();
	int r;

	CHECK(caps != NULL);
	CHECK(cap_set_flag(caps, CAP_EFFECTIVE, 1, &setpcap, CAP_CLEAR) == 0);
	CHECK(cap_set_proc(caps) == 0);
	cap_free(caps);
	r = berth_caps_drop(0, 0, &err);
	CHECK(r == -EPERM && err.code == EPERM);
	dprintf(report_fd, "%s", err.message);
	return 0;
}

static void test_drop_error_names_step(void **state)
{
	char msg[1024], want[256];
	char *name = NULL;
	cap_value_t cap;
	int status;

	(void)state;
	if (skip_unless_root("hold capabilities to drop"))
		skip();
	/* The first capability the drop has to remove from this process's bounding set. */
	for (cap = 0; cap < cap_max_bits(); cap++)
		if ((berth_caps_default_mask() >> cap & 1) == 0 && cap_get_bound(cap) == 1)
			break;
	assert_true(cap < cap_max_bits());
	name = cap_to_name(cap);
	snprintf(want, sizeof(want),
	         "drop capability `%s` from the bounding set: Operation not permitted", name);
	cap_free(name);

	status = run_child(drop_without_setpcap, msg, sizeof(msg));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child failed (status 0x%x): %s", status, msg);
	assert_string_equal(msg, want);
}

static void install_filter(void)
{
	struct sock_fprog prog;
	berth_error_t err;
	int r;

	if (berth_seccomp_build(&prog, &err) < 0) {
		dprintf(report_fd, "berth_seccomp_build: %s", err.message);
		_exit(1);
	}
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	r = berth_seccomp_install(&prog);
	if (r < 0) {
		dprintf(report_fd, "berth_seccomp_install: %s", strerror(-r));
		_exit(1);
	}
	berth_seccomp_free(&prog);
}

static void *thread_main(void *arg)
{
	return arg;
}

static int filtered_syscalls(void)
{
	static const unsigned long ns_flags[] = {
	        CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
	        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP,
	};
	struct timespec ts = {0, 1000};
	struct timex tx = {.modes = 0};
	pthread_t thread;
	void *ret = NULL;
	size_t i;
	pid_t pid;
	int status, fd;

	/*
	 * Private namespaces first: should the filter let a mount or a
	 * hostname change through, it stays in this child.
	 */
	CHECK(unshare(CLONE_NEWNS | CLONE_NEWUTS) == 0);
	CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	install_filter();

	CHECK(status_hex("Seccomp") == 2);
	/* Refused: EPERM. */
	CHECK(mount("none", "/mnt", "tmpfs", 0, NULL) == -1 && errno == EPERM);
	CHECK(umount2("/proc", MNT_DETACH) == -1 && errno == EPERM);
	CHECK(unshare(CLONE_NEWNS) == -1 && errno == EPERM);
	CHECK(setns(0, 0) == -1 && errno == EPERM);
	CHECK(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) == -1 &&
	      errno == EPERM);
	CHECK(syscall(SYS_io_uring_setup, 1, NULL) == -1 && errno == EPERM);
	CHECK(syscall(SYS_bpf, 0, NULL, 0) == -1 && errno == EPERM);
	CHECK(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0) == -1 && errno == EPERM);
	/* NULL, NULL changes nothing even when allowed. */
	CHECK(syscall(SYS_settimeofday, NULL, NULL) == -1 && errno == EPERM);
	/* Namespace flags on clone: EPERM, each of them. */
	for (i = 0; i < BERTH_ARRAY_SIZE(ns_flags); i++) {
		long r = syscall(SYS_clone, ns_flags[i] | SIGCHLD, 0, NULL, NULL, 0);
		if (r == 0)
			_exit(0);
		if (r > 0)
			waitpid((pid_t)r, NULL, 0);
		CHECK(r == -1 && errno == EPERM);
	}
	/* clone3 and what the profile does not know: ENOSYS. */
	CHECK(syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS);
	CHECK(syscall(1000) == -1 && errno == ENOSYS);
	CHECK(personality(PER_LINUX | ADDR_NO_RANDOMIZE) == -1 && errno == ENOSYS);

	/* Allowed. */
	CHECK(getpid() > 1);
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(write(fd, "x", 1) == 1);
	close(fd);
	CHECK(nanosleep(&ts, NULL) == 0);
	CHECK(personality(0xffffffff) != -1);
	CHECK(adjtimex(&tx) >= 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(0);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* glibc tries clone3 first; this checks that its fallback to clone gets through. */
	CHECK(pthread_create(&thread, NULL, thread_main, &status) == 0);
	CHECK(pthread_join(thread, &ret) == 0 && ret == &status);
	return 0;
}

static void test_seccomp_filter(void **state)
{
	(void)state;
	if (skip_unless_root("unshare mount and UTS namespaces that contain a faulty filter"))
		skip();
	expect_child_ok(filtered_syscalls);
}

/* A dynamically linked program and a shell start and run under the filter. */
static int filtered_exec(void)
{
	install_filter();
	execl("/bin/sh", "sh", "-c", "cat /proc/self/status >/dev/null && (exit 7)", (char *)NULL);
	dprintf(report_fd, "execl /bin/sh: %s", strerror(errno));
	return 1;
}

static void test_seccomp_exec(void **state)
{
	char msg[1024];
	int status;

	(void)state;
	if (access("/bin/sh", X_OK) < 0) {
		print_message("skipped: no /bin/sh to run under the filter\n");
		skip();
	}
	status = run_child(filtered_exec, msg, sizeof(msg));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 7)
		fail_msg("sh under the filter: status 0x%x: %s", status, msg);
}

/* The kernel refuses a filter from a process that could gain privileges by exec. */
static int install_without_nnp(void)
{
	struct sock_fprog prog;
	berth_error_t err;

	CHECK(berth_seccomp_build(&prog, &err) == 0);
	CHECK(berth_caps_drop(1000, 1000, &err) == 0);
	CHECK(berth_seccomp_install(&prog) == -EACCES);
	berth_seccomp_free(&prog);
	CHECK(prog.filter == NULL && prog.len == 0);
	return 0;
}

static void test_seccomp_needs_nnp(void **state)
{
	(void)state;
	if (skip_unless_root("switch to uid 1000 and so lose CAP_SYS_ADMIN"))
		skip();
	expect_child_ok(install_without_nnp);
}

#if defined(__x86_64__)
/* getpid through the i386 entry point; returns what the kernel returned. */
static long i386_getpid(void)
{
	long ret = 20; /* __NR_getpid on i386 */

	__asm__ volatile("int $0x80" : "+a"(ret) : : "r8", "r9", "r10", "r11", "memory");
	return ret;
}

static int foreign_abi_unfiltered(void)
{
	return i386_getpid() == getpid() ? 0 : 1;
}

static int foreign_abi_i386(void)
{
	struct rlimit no_core = {0, 0};

	CHECK(setrlimit(RLIMIT_CORE, &no_core) == 0);
	install_filter();
	i386_getpid();
	return 0;
}

static int foreign_abi_x32(void)
{
	struct rlimit no_core = {0, 0};

	CHECK(setrlimit(RLIMIT_CORE, &no_core) == 0);
	install_filter();
	syscall(0x40000000 | SYS_getpid);
	return 0;
}

static void test_seccomp_foreign_abi(void **state)
{
	char msg[1024];
	int status;

	(void)state;
	/* x32 system calls share the x86_64 audit arch; the filter tells them apart. */
	status = run_child(foreign_abi_x32, msg, sizeof(msg));
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
		fail_msg("x32 getpid under the filter: status 0x%x: %s", status, msg);

	status = run_child(foreign_abi_unfiltered, msg, sizeof(msg));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		print_message("skipped the i386 half: this kernel runs no i386 system calls\n");
		return;
	}
	status = run_child(foreign_abi_i386, msg, sizeof(msg));
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
		fail_msg("i386 getpid under the filter: status 0x%x: %s", status, msg);
}
#endif

static double elapsed_us(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e6 + (double)(b->tv_nsec - a->tv_nsec) / 1e3;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Container start latency includes this; print it, do not assert it. */
/*
 * The program containers get is the one compiled at build time
 * (src/tools/gen-seccomp.c): it must be exactly what the profile compiles to
 * now, or the build embedded a stale one.
 */
static void test_seccomp_embedded_is_current(void **state)
{
	const struct sock_fprog *embedded = berth_seccomp_default();
	struct sock_fprog fresh;
	berth_error_t err;
	(void)state;

	assert_int_equal(berth_seccomp_build(&fresh, &err), 0);
	assert_int_equal(embedded->len, fresh.len);
	assert_memory_equal(embedded->filter, fresh.filter, fresh.len * sizeof(struct sock_filter));
	berth_seccomp_free(&fresh);
}

static void test_seccomp_build_time(void **state)
{
	enum { RUNS = 25 };
	double us[RUNS], first;
	struct sock_fprog prog;
	berth_error_t err;
	unsigned short len = 0;
	int i;

	(void)state;
	for (i = 0; i < RUNS; i++) {
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		assert_int_equal(berth_seccomp_build(&prog, &err), 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		us[i] = elapsed_us(&a, &b);
		len = prog.len;
		assert_non_null(prog.filter);
		berth_seccomp_free(&prog);
	}
	first = us[0];
	qsort(us, RUNS, sizeof(us[0]), compare_doubles);
	print_message("berth_seccomp_build: first %.0f us, median %.0f us, best %.0f us "
	              "(%u instructions)\n",
	              first, us[RUNS / 2], us[0], len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_mask),
		cmocka_unit_test(test_drop_root),
		cmocka_unit_test(test_drop_user),
		cmocka_unit_test(test_drop_error_names_step),
		cmocka_unit_test(test_seccomp_filter),
		cmocka_unit_test(test_seccomp_exec),
		cmocka_unit_test(test_seccomp_needs_nnp),
#if defined(__x86_64__)
		cmocka_unit_test(test_seccomp_foreign_abi),
#endif
		cmocka_unit_test(test_seccomp_embedded_is_current),
		cmocka_unit_test(test_seccomp_build_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
