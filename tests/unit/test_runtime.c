/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime library's API on real containers: start, exec, connect,
 * signal, freeze, stats, wait, destroy; with the exec'd helper and through
 * the zygote. Needs root and a test root
 * filesystem (BERTH_TEST_ROOTFS, default build/rootfs/test, made by
 * `make rootfs`); the helper is taken from BERTH_RUNTIME_HELPER or bin/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth/fs.h"
#include "berth/runtime.h"
#include "berth/util.h"

static const char *rootfs;
static char state_dir[] = "/tmp/berth-test-runtime.XXXXXX";

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_runtime: skipped: needs root (containers need namespaces, "
		                "cgroups and mounts)\n");
		return -1;
	}
	rootfs = getenv("BERTH_TEST_ROOTFS");
	if (rootfs == NULL)
		rootfs = "build/rootfs/test";
	if (access(rootfs, F_OK) < 0) {
		fprintf(stderr, "test_runtime: no test rootfs at `%s` (run `make rootfs`)\n",
		        rootfs);
		return -1;
	}
	if (getenv("BERTH_RUNTIME_HELPER") == NULL)
		setenv("BERTH_RUNTIME_HELPER", "bin/berth-runtime", 1);
	setenv("BERTH_CGROUP_PARENT", "berth-test-runtime", 1);
	if (mkdtemp(state_dir) == NULL)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	static const char *const hierarchies[] = {"cpu",     "cpuacct", "memory", "pids",
	                                          "freezer", "devices", ""};
	(void)state;
	berth_rmtree(state_dir, NULL);
	/* The parent cgroup the containers were made in; the containers' own are gone. */
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(hierarchies); i++) {
		char path[128];
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/berth-test-runtime",
		         hierarchies[i]);
		rmdir(path);
	}
	return 0;
}

/* A NULL-terminated argv from string literals (-Wwrite-strings makes them const). */
#define ARGV(...) ((char *const[]){__VA_ARGS__, NULL})

static struct berth_container_spec spec_for(const char *id, char *const *argv, int out_fd)
{
	struct berth_container_spec spec = {
	        .id = id,
	        .rootfs = rootfs,
	        .state_dir = state_dir,
	        .argv = argv,
	        .stdio = {-1, out_fd, 2},
	        .limits = {.memory_bytes = 64 << 20, .nanocpus = 500000000, .pids = 64},
	};
	return spec;
}

/* Everything a pipe gives until EOF. */
static char *slurp(int fd)
{
	size_t cap = 4096, len = 0;
	char *buf = xmalloc(cap);
	ssize_t n;

	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2)
			buf = xrealloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	return buf;
}

/* Whether container `id` still has a cgroup, in either layout (v1 pids hierarchy or v2). */
static bool cgroup_exists(const char *id)
{
	static const char *const fmts[] = {"/sys/fs/cgroup/pids/berth-test-runtime/%s",
	                                   "/sys/fs/cgroup/berth-test-runtime/%s"};
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(fmts); i++) {
		char path[512];
		struct stat st;
		snprintf(path, sizeof(path), fmts[i], id);
		if (stat(path, &st) == 0)
			return true;
	}
	return false;
}

static void test_exit_code_and_cleanup(void **state)
{
	char *const *argv = ARGV((char *)"sh", (char *)"-c", (char *)"exit 7");
	struct berth_container_spec spec = spec_for("rt-exit", argv, -1);
	struct berth_container *c = NULL;
	struct berth_exit ex;
	berth_error_t err;
	(void)state;

	assert_int_equal(berth_container_start(&spec, &c, &err), 0);
	assert_true(berth_container_pid(c) > 0);
	assert_int_equal(berth_container_wait(c, false, &ex, &err), 0);
	assert_int_equal(ex.exit_code, 7);
	assert_int_equal(ex.signal, 0);
	assert_false(ex.oom);
	assert_non_null(berth_container_exit(c));
	assert_int_equal(berth_container_destroy(c, &err), 0);
	assert_false(cgroup_exists("rt-exit"));
	{
		char path[512];
		snprintf(path, sizeof(path), "%s/containers/rt-exit", state_dir);
		assert_int_equal(access(path, F_OK), -1);
	}
}

static void test_exec_connect_signal(void **state)
{
	char *const *argv = ARGV((char *)"httpd", (char *)"-f", (char *)"-p", (char *)"8080",
	                         (char *)"-h", (char *)"/");
	struct berth_container_spec spec = spec_for("rt-exec", argv, -1);
	struct berth_container *c = NULL;
	struct berth_stats st;
	struct berth_exit ex;
	berth_error_t err;
	int fds[2], pidfd = -1, status, fd = -1;
	char *out;
	pid_t pid;
	(void)state;

	spec.hostname = "rt-host";
	assert_int_equal(berth_container_start(&spec, &c, &err), 0);
	assert_true(cgroup_exists("rt-exec"));

	/* exec sees the container's pid namespace and hostname */
	{
		char *const *eargv = ARGV((char *)"sh", (char *)"-c",
		                          (char *)"echo $$ $(hostname) $(cat /proc/1/comm)");
		struct berth_exec_spec es = {.argv = eargv};
		assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
		es.stdio[0] = -1;
		es.stdio[1] = fds[1];
		es.stdio[2] = 2;
		assert_int_equal(berth_container_exec(c, &es, &pid, &pidfd, &err), 0);
		close(fds[1]);
		out = slurp(fds[0]);
		close(fds[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		close(pidfd);
		/* PID 1 is the init (a fork of the helper), the exec'd shell is not PID 1 */
		assert_non_null(strstr(out, " rt-host berth-init"));
		assert_true(atoi(out) > 1);
		free(out);
	}
	/* exec of something missing: a clear error, kind EXEC */
	{
		char *const *eargv = ARGV((char *)"/bin/nope");
		struct berth_exec_spec es = {.argv = eargv, .stdio = {-1, -1, -1}};
		assert_int_equal(berth_container_exec(c, &es, &pid, NULL, &err), -ENOENT);
		assert_int_equal(err.kind, BERTH_ERROR_KIND_EXEC);
		assert_string_equal(err.message, "executable not found in image: /bin/nope");
	}

	/* connect to the port inside the container's network namespace */
	for (int i = 0; i < 200; i++) {
		struct pollfd p;
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		fd = berth_container_connect(c, 8080, &err);
		assert_true(fd >= 0);
		p.fd = fd;
		p.events = POLLOUT;
		assert_int_equal(poll(&p, 1, 1000), 1);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
		if (soerr == 0)
			break;
		close(fd);
		fd = -1;
		usleep(10000);
	}
	assert_true(fd >= 0);
	{
		const char req[] = "GET /etc/hostname HTTP/1.0\r\n\r\n";
		int flags = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
		assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
		out = slurp(fd);
		close(fd);
		assert_non_null(strstr(out, "200 OK"));
		assert_non_null(strstr(out, "rt-host"));
		free(out);
	}

	assert_int_equal(berth_container_stats(c, &st, &err), 0);
	assert_true(st.pids_current >= 2); /* init + httpd */
	assert_true(st.memory_current > 0);
	assert_int_equal(st.oom_kills, 0);

	assert_int_equal(berth_container_freeze(c, true, &err), 0);
	assert_int_equal(berth_container_freeze(c, false, &err), 0);

	/* httpd dies of SIGTERM: the init forwards it and reports the signal */
	assert_int_equal(berth_container_signal(c, SIGTERM, &err), 0);
	assert_int_equal(berth_container_wait(c, false, &ex, &err), 0);
	assert_int_equal(ex.signal, SIGTERM);
	assert_int_equal(ex.exit_code, 128 + SIGTERM);
	assert_int_equal(berth_container_connect(c, 8080, &err), -ESRCH);
	assert_int_equal(berth_container_destroy(c, &err), 0);
}

static void test_start_errors(void **state)
{
	char *const *argv = ARGV((char *)"/bin/nope");
	struct berth_container_spec spec = spec_for("rt-err", argv, -1);
	struct berth_container *c = NULL;
	berth_error_t err;
	char path[512];
	(void)state;

	assert_int_equal(berth_container_start(&spec, &c, &err), -ENOENT);
	assert_null(c);
	assert_int_equal(err.kind, BERTH_ERROR_KIND_EXEC);
	assert_string_equal(err.message, "executable not found in image: /bin/nope");
	/* nothing left behind */
	snprintf(path, sizeof(path), "%s/containers/rt-err", state_dir);
	assert_int_equal(access(path, F_OK), -1);
	assert_false(cgroup_exists("rt-err"));

	spec.rootfs = "/nonexistent/rootfs";
	assert_int_equal(berth_container_start(&spec, &c, &err), -ENOENT);
	assert_string_equal(err.message, "rootfs `/nonexistent/rootfs`: No such file or directory");

	spec.rootfs = rootfs;
	spec.id = "bad/name";
	assert_int_equal(berth_container_start(&spec, &c, &err), -EINVAL);
	assert_non_null(strstr(err.message, "is not a valid container name"));
}

static void test_same_name_twice(void **state)
{
	char *const *argv = ARGV((char *)"sleep", (char *)"30");
	struct berth_container_spec spec = spec_for("rt-twice", argv, -1);
	struct berth_container *a = NULL, *b = NULL;
	berth_error_t err;
	(void)state;

	assert_int_equal(berth_container_start(&spec, &a, &err), 0);
	assert_int_equal(berth_container_start(&spec, &b, &err), -EBUSY);
	assert_string_equal(err.message, "container `rt-twice` is already running");
	assert_int_equal(berth_container_destroy(a, &err), 0);
	/* once it is gone, the name is free again */
	assert_int_equal(berth_container_start(&spec, &b, &err), 0);
	assert_int_equal(berth_container_destroy(b, &err), 0);
}

/* Entries of STATE/trash (where deferred destroys move writable layers). */
static int trash_entries(void)
{
	char path[512];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/trash", state_dir);
	d = opendir(path);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/*
 * A deferred destroy frees the name and the cgroup at once and leaves the
 * writable layer, with what the container wrote, for the sweep.
 */
static void test_deferred_destroy_and_sweep(void **state)
{
	char *const *argv = ARGV((char *)"sh", (char *)"-c", (char *)"echo data > /written");
	struct berth_container_spec spec = spec_for("rt-defer", argv, -1);
	struct berth_container *c = NULL;
	struct berth_exit ex;
	berth_error_t err;
	char path[512];
	(void)state;

	assert_int_equal(berth_runtime_sweep(state_dir, &err), 0);
	assert_int_equal(trash_entries(), 0);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(berth_container_start(&spec, &c, &err), 0);
		assert_int_equal(berth_container_wait(c, false, &ex, &err), 0);
		assert_int_equal(ex.exit_code, 0);
		assert_int_equal(berth_container_destroy_deferred(c, &err), 0);
		assert_false(cgroup_exists("rt-defer"));
		snprintf(path, sizeof(path), "%s/containers/rt-defer", state_dir);
		assert_int_equal(access(path, F_OK), -1);
		/* Both rounds' layers wait in the trash under names of their own. */
		assert_int_equal(trash_entries(), round + 1);
	}
	assert_int_equal(berth_runtime_sweep(state_dir, &err), 0);
	assert_int_equal(trash_entries(), 0);
}

/* Field 4 of /proc/PID/stat: the parent's pid. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512];
	const char *p;
	int fd, ppid = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p, ") %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

/* What a process's descriptors are, one "N -> TARGET" line each. */
static char *fd_targets(pid_t pid)
{
	char path[64], target[256];
	size_t cap = 4096, len = 0;
	char *out = xmalloc(cap);
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	out[0] = '\0';
	if (d == NULL)
		return out;
	while ((de = readdir(d)) != NULL) {
		ssize_t n;
		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		if (cap - len < sizeof(target) + 16)
			out = xrealloc(out, cap *= 2);
		len += (size_t)snprintf(out + len, cap - len, "%s -> %s\n", de->d_name, target);
	}
	closedir(d);
	return out;
}

/* exec `sh -c SCRIPT` in c; its output, and its exit code in *code. */
static char *exec_sh(struct berth_container *c, const char *script, int *code)
{
	char *const *eargv = ARGV((char *)"sh", (char *)"-c", (char *)script);
	struct berth_exec_spec es = {.argv = eargv};
	berth_error_t err;
	int fds[2], status, pidfd = -1;
	char *out;
	pid_t pid;

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	es.stdio[0] = -1;
	es.stdio[1] = fds[1];
	es.stdio[2] = 2;
	assert_int_equal(berth_container_exec(c, &es, &pid, &pidfd, &err), 0);
	close(fds[1]);
	/* Our child, whichever way the helper came to be: waitpid says how it ended. */
	assert_int_equal(parent_of(pid), getpid());
	out = slurp(fds[0]);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	*code = WEXITSTATUS(status);
	close(pidfd);
	return out;
}

/*
 * Through the zygote: start, exec, destroy as ever, every process still
 * ours; the zygote holds nothing of them; stopped, the helper is exec'd.
 */
static void test_zygote(void **state)
{
	char *const *argv = ARGV((char *)"sleep", (char *)"30");
	struct berth_container_spec spec = spec_for("rt-zygote", argv, -1);
	struct berth_container *c = NULL;
	uint64_t helpers;
	berth_error_t err;
	char *out, *fdlist;
	pid_t zygote;
	int code;
	(void)state;

	assert_int_equal(berth_runtime_zygote_start(&err), 0);
	zygote = berth_runtime_zygote_pid();
	assert_true(zygote > 0);
	assert_int_equal(parent_of(zygote), getpid());
	helpers = berth_runtime_zygote_helpers();

	assert_int_equal(berth_container_start(&spec, &c, &err), 0);
	assert_int_equal(parent_of(berth_container_pid(c)), getpid());
	out = exec_sh(c, "echo hello from $(hostname); exit 3", &code);
	assert_string_equal(out, "hello from rt-zygote\n");
	assert_int_equal(code, 3);
	free(out);
	/* A command missing from the image: the same error as with the exec'd helper. */
	{
		char *const *eargv = ARGV((char *)"/bin/nope");
		struct berth_exec_spec es = {.argv = eargv, .stdio = {-1, -1, -1}};
		pid_t pid;
		assert_int_equal(berth_container_exec(c, &es, &pid, NULL, &err), -ENOENT);
		assert_string_equal(err.message, "executable not found in image: /bin/nope");
	}
	/* The start and both execs were the zygote's clones; it is the same one. */
	assert_int_equal(berth_runtime_zygote_helpers(), helpers + 3);
	assert_int_equal(berth_runtime_zygote_pid(), zygote);
	/* It holds its socket, /dev/null and our stderr: nothing of a container. */
	fdlist = fd_targets(zygote);
	assert_non_null(strstr(fdlist, "0 -> /dev/null\n"));
	assert_non_null(strstr(fdlist, "1 -> /dev/null\n"));
	assert_non_null(strstr(fdlist, "3 -> socket:"));
	assert_non_null(strstr(fdlist, "4 -> /dev/null\n"));
	{
		size_t lines = 0;
		for (const char *p = fdlist; *p != '\0'; p++)
			lines += *p == '\n';
		assert_int_equal(lines, 5);
	}
	free(fdlist);
	assert_int_equal(berth_container_destroy(c, &err), 0);
	assert_false(cgroup_exists("rt-zygote"));

	/* Stopped, it exits (reaped by the library), and starts exec the helper again. */
	berth_runtime_zygote_stop();
	assert_int_equal(berth_runtime_zygote_pid(), 0);
	assert_int_equal(kill(zygote, 0), -1);
	assert_int_equal(berth_container_start(&spec, &c, &err), 0);
	assert_int_equal(berth_runtime_zygote_helpers(), helpers + 3);
	assert_int_equal(berth_container_destroy(c, &err), 0);
}

/*
 * A zygote killed after it served: the next call runs the exec'd helper,
 * the one after restarts it. One killed before it served anything is not
 * restarted (it would die again).
 */
static void test_zygote_killed(void **state)
{
	char *const *argv = ARGV((char *)"sleep", (char *)"30");
	struct berth_container_spec spec = spec_for("rt-zygote-k", argv, -1);
	struct berth_container *c = NULL, *c2 = NULL;
	uint64_t helpers;
	berth_error_t err;
	pid_t zygote, again;
	char *out;
	int code;
	(void)state;

	assert_int_equal(berth_runtime_zygote_start(&err), 0);
	zygote = berth_runtime_zygote_pid();
	assert_int_equal(berth_container_start(&spec, &c, &err), 0);
	helpers = berth_runtime_zygote_helpers();

	assert_int_equal(kill(zygote, SIGKILL), 0);
	/* This one finds it gone and runs the exec'd helper: nothing lost. */
	out = exec_sh(c, "echo after the kill", &code);
	assert_string_equal(out, "after the kill\n");
	assert_int_equal(code, 0);
	free(out);
	assert_int_equal(berth_runtime_zygote_helpers(), helpers);
	/* The library reaped it. */
	assert_int_equal(waitpid(zygote, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	/* The next one restarts it and goes through the new one. */
	out = exec_sh(c, "echo restarted", &code);
	assert_string_equal(out, "restarted\n");
	free(out);
	again = berth_runtime_zygote_pid();
	assert_true(again > 0 && again != zygote);
	assert_int_equal(berth_runtime_zygote_helpers(), helpers + 1);
	/* The container started through the first zygote never depended on it. */
	assert_int_equal(kill(berth_container_pid(c), 0), 0);
	assert_int_equal(berth_container_destroy(c, &err), 0);

	/* Killed before it served anything: no restart, the exec'd helper from then on. */
	assert_int_equal(kill(again, SIGKILL), 0);
	berth_runtime_zygote_stop();
	assert_int_equal(berth_runtime_zygote_start(&err), 0);
	zygote = berth_runtime_zygote_pid();
	assert_int_equal(kill(zygote, SIGKILL), 0);
	helpers = berth_runtime_zygote_helpers();
	assert_int_equal(berth_container_start(&spec, &c, &err), 0);
	spec.id = "rt-zygote-k2";
	assert_int_equal(berth_container_start(&spec, &c2, &err), 0);
	assert_int_equal(berth_runtime_zygote_pid(), 0);
	assert_int_equal(berth_runtime_zygote_helpers(), helpers);
	assert_int_equal(parent_of(berth_container_pid(c2)), getpid());
	assert_int_equal(berth_container_destroy(c, &err), 0);
	assert_int_equal(berth_container_destroy(c2, &err), 0);
	berth_runtime_zygote_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_exit_code_and_cleanup),
	        cmocka_unit_test(test_exec_connect_signal),
	        cmocka_unit_test(test_start_errors),
	        cmocka_unit_test(test_same_name_twice),
	        cmocka_unit_test(test_deferred_destroy_and_sweep),
	        cmocka_unit_test(test_zygote),
	        cmocka_unit_test(test_zygote_killed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
