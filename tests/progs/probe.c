/*
 * probe: reports from inside a container what berth's end-to-end tests need
 * to check (capabilities, seccomp, limits, signals, reaping, ports). Every
 * report is a single machine-checkable line on stdout; see README.md.
 *
 * Exit status: 0 when the probe itself ran (whatever it found), 1 when the
 * thing it tried did not fully happen (hog could not allocate, write
 * failed), PROBE_EXIT_USAGE for bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

#define MIB (1024UL * 1024UL)

struct name_entry {
	int value;
	const char *name;
};

/* EAGAIN/EWOULDBLOCK and EOPNOTSUPP/ENOTSUP share values on Linux, so each
 * appears once. */
static const struct name_entry errno_names[] = {
        {EPERM, "EPERM"},
        {ENOENT, "ENOENT"},
        {ESRCH, "ESRCH"},
        {EINTR, "EINTR"},
        {EIO, "EIO"},
        {ENXIO, "ENXIO"},
        {E2BIG, "E2BIG"},
        {ENOEXEC, "ENOEXEC"},
        {EBADF, "EBADF"},
        {ECHILD, "ECHILD"},
        {EAGAIN, "EAGAIN"},
        {ENOMEM, "ENOMEM"},
        {EACCES, "EACCES"},
        {EFAULT, "EFAULT"},
        {EBUSY, "EBUSY"},
        {EEXIST, "EEXIST"},
        {EXDEV, "EXDEV"},
        {ENODEV, "ENODEV"},
        {ENOTDIR, "ENOTDIR"},
        {EISDIR, "EISDIR"},
        {EINVAL, "EINVAL"},
        {ENFILE, "ENFILE"},
        {EMFILE, "EMFILE"},
        {ENOTTY, "ENOTTY"},
        {ETXTBSY, "ETXTBSY"},
        {EFBIG, "EFBIG"},
        {ENOSPC, "ENOSPC"},
        {ESPIPE, "ESPIPE"},
        {EROFS, "EROFS"},
        {EMLINK, "EMLINK"},
        {EPIPE, "EPIPE"},
        {ERANGE, "ERANGE"},
        {ENAMETOOLONG, "ENAMETOOLONG"},
        {ENOSYS, "ENOSYS"},
        {ENOTEMPTY, "ENOTEMPTY"},
        {ELOOP, "ELOOP"},
        {ENOKEY, "ENOKEY"},
        {EKEYEXPIRED, "EKEYEXPIRED"},
        {EKEYREVOKED, "EKEYREVOKED"},
        {EKEYREJECTED, "EKEYREJECTED"},
        {EOPNOTSUPP, "EOPNOTSUPP"},
        {EAFNOSUPPORT, "EAFNOSUPPORT"},
        {EPROTONOSUPPORT, "EPROTONOSUPPORT"},
        {EADDRINUSE, "EADDRINUSE"},
        {EADDRNOTAVAIL, "EADDRNOTAVAIL"},
        {ENETUNREACH, "ENETUNREACH"},
        {ECONNREFUSED, "ECONNREFUSED"},
        {ECONNRESET, "ECONNRESET"},
        {ETIMEDOUT, "ETIMEDOUT"},
        {EDQUOT, "EDQUOT"},
        {ENOTSOCK, "ENOTSOCK"},
        {ENOTCONN, "ENOTCONN"},
        {ESTALE, "ESTALE"},
};

static const struct name_entry signal_names[] = {
        {SIGHUP, "HUP"},       {SIGINT, "INT"},   {SIGQUIT, "QUIT"},   {SIGILL, "ILL"},
        {SIGTRAP, "TRAP"},     {SIGABRT, "ABRT"}, {SIGBUS, "BUS"},     {SIGFPE, "FPE"},
        {SIGKILL, "KILL"},     {SIGUSR1, "USR1"}, {SIGSEGV, "SEGV"},   {SIGUSR2, "USR2"},
        {SIGPIPE, "PIPE"},     {SIGALRM, "ALRM"}, {SIGTERM, "TERM"},   {SIGCHLD, "CHLD"},
        {SIGCONT, "CONT"},     {SIGSTOP, "STOP"}, {SIGTSTP, "TSTP"},   {SIGTTIN, "TTIN"},
        {SIGTTOU, "TTOU"},     {SIGURG, "URG"},   {SIGXCPU, "XCPU"},   {SIGXFSZ, "XFSZ"},
        {SIGVTALRM, "VTALRM"}, {SIGPROF, "PROF"}, {SIGWINCH, "WINCH"}, {SIGIO, "IO"},
        {SIGPWR, "PWR"},       {SIGSYS, "SYS"},
};

#define N_ERRNO_NAMES  (sizeof(errno_names) / sizeof(errno_names[0]))
#define N_SIGNAL_NAMES (sizeof(signal_names) / sizeof(signal_names[0]))

const char *probe_errno_name(int err)
{
	static char unknown[32];
	size_t i;

	for (i = 0; i < N_ERRNO_NAMES; i++) {
		if (errno_names[i].value == err)
			return errno_names[i].name;
	}
	snprintf(unknown, sizeof(unknown), "errno-%d", err);
	return unknown;
}

const char *probe_signal_name(int sig)
{
	size_t i;

	for (i = 0; i < N_SIGNAL_NAMES; i++) {
		if (signal_names[i].value == sig)
			return signal_names[i].name;
	}
	return NULL;
}

/* Accepts "TERM", "SIGTERM" or a number. Returns -1 if unknown. */
static int parse_signal(const char *s)
{
	char *end;
	long n;
	size_t i;

	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (i = 0; i < N_SIGNAL_NAMES; i++) {
		if (strcmp(signal_names[i].name, s) == 0)
			return signal_names[i].value;
	}
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n <= 0 || n >= NSIG)
		return -1;
	return (int)n;
}

/* Parses a whole decimal number within [0, max], or returns false. */
static bool parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long n;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || n > max)
		return false;
	*out = n;
	return true;
}

static uint64_t now_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int cmd_hog(int argc, char **argv)
{
	unsigned long mb, hold = 0, i;
	long page = sysconf(_SC_PAGESIZE);

	if (argc < 1 || argc > 2 || !parse_ulong(argv[0], 1UL << 24, &mb) ||
	    (argc == 2 && !parse_ulong(argv[1], 86400, &hold))) {
		fprintf(stderr, "usage: probe hog MB [HOLD_SECONDS]\n");
		return PROBE_EXIT_USAGE;
	}
	for (i = 1; i <= mb; i++) {
		char *p =
		        mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		size_t off;

		if (p == MAP_FAILED) {
			printf("hog: allocation failed after %lu MiB: %s\n", i - 1,
			       probe_errno_name(errno));
			return 1;
		}
		/* Writing each page is what makes the memory count against the
		 * cgroup; an untouched mapping costs nothing. */
		for (off = 0; off < MIB; off += (size_t)page)
			p[off] = (char)(i | 1);
		if (i % 64 == 0 && i != mb)
			printf("hog: %lu MiB\n", i);
	}
	printf("hog: %lu MiB done\n", mb);
	if (hold > 0)
		sleep((unsigned)hold);
	return 0;
}

static int cmd_forkbomb(int argc, char **argv)
{
	unsigned long seconds, max = 10000, forks = 0, failed = 0, i;
	int first_errno = 0;
	pid_t self = getpid(), *pids;
	uint64_t deadline;

	if (argc < 1 || argc > 2 || !parse_ulong(argv[0], 3600, &seconds) ||
	    (argc == 2 && !parse_ulong(argv[1], 1000000, &max))) {
		fprintf(stderr, "usage: probe forkbomb SECONDS [MAX_CHILDREN]\n");
		return PROBE_EXIT_USAGE;
	}
	pids = calloc(max + 1, sizeof(*pids));
	if (!pids)
		abort();
	fflush(stdout);
	deadline = now_ms(CLOCK_MONOTONIC) + seconds * 1000;
	while (now_ms(CLOCK_MONOTONIC) < deadline) {
		pid_t pid;

		if (forks >= max) {
			usleep(10000);
			continue;
		}
		pid = fork();
		if (pid == 0) {
			/* Die with the parent even if it is killed before it can
			 * clean up; the getppid check closes the race where the
			 * parent died before prctl. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != self)
				_exit(0);
			for (;;)
				pause();
		}
		if (pid < 0) {
			if (failed++ == 0)
				first_errno = errno;
			/* Retrying at once would only spin: fork fails until a
			 * limit changes, which it will not while we hold the
			 * children. */
			usleep(1000);
			continue;
		}
		pids[forks++] = pid;
	}
	for (i = 0; i < forks; i++)
		kill(pids[i], SIGKILL);
	for (i = 0; i < forks; i++)
		waitpid(pids[i], NULL, 0);
	free(pids);
	printf("forks: %lu failed: %lu first-errno: %s\n", forks, failed,
	       first_errno ? probe_errno_name(first_errno) : "none");
	return 0;
}

static int cmd_spin(int argc, char **argv)
{
	unsigned long seconds;
	uint64_t start, deadline, now;
	volatile unsigned long counter = 0;

	if (argc != 1 || !parse_ulong(argv[0], 3600, &seconds)) {
		fprintf(stderr, "usage: probe spin SECONDS\n");
		return PROBE_EXIT_USAGE;
	}
	start = now_ms(CLOCK_MONOTONIC);
	deadline = start + seconds * 1000;
	do {
		for (int i = 0; i < 10000; i++)
			counter++;
		now = now_ms(CLOCK_MONOTONIC);
	} while (now < deadline);
	printf("cpu_ms: %llu wall_ms: %llu\n", (unsigned long long)now_ms(CLOCK_PROCESS_CPUTIME_ID),
	       (unsigned long long)(now - start));
	return 0;
}

static int cmd_zombies(int argc, char **argv)
{
	unsigned long n, made = 0, i;
	pid_t *pids;

	if (argc != 1 || !parse_ulong(argv[0], 100000, &n)) {
		fprintf(stderr, "usage: probe zombies N\n");
		return PROBE_EXIT_USAGE;
	}
	pids = calloc(n + 1, sizeof(*pids));
	if (!pids)
		abort();
	fflush(stdout);
	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		if (pid < 0) {
			printf("zombies: fork failed: %s\n", probe_errno_name(errno));
			break;
		}
		pids[made++] = pid;
	}
	/* Wait until every child has exited without reaping it (WNOWAIT), so
	 * that all of them are zombies when we exit and leave them to init. */
	for (i = 0; i < made; i++) {
		siginfo_t info;

		while (waitid(P_PID, (id_t)pids[i], &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
			;
	}
	free(pids);
	printf("orphaned: %lu\n", made);
	return made == n ? 0 : 1;
}

static int cmd_signals(int argc, char **argv)
{
	static const int wanted[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
	sigset_t set;
	size_t i;

	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "usage: probe signals\n");
		return PROBE_EXIT_USAGE;
	}
	/* Blocked and collected with sigwaitinfo: no handler, so printing is
	 * safe and no signal is lost between two waits. */
	sigemptyset(&set);
	for (i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
		sigaddset(&set, wanted[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&set, &info);

		if (sig < 0)
			continue;
		printf("got SIG%s\n", probe_signal_name(sig));
		fflush(stdout);
		if (sig == SIGTERM)
			return 0;
	}
}

static int cmd_exit(int argc, char **argv)
{
	unsigned long code;

	if (argc != 1 || !parse_ulong(argv[0], 255, &code)) {
		fprintf(stderr, "usage: probe exit N (0-255)\n");
		return PROBE_EXIT_USAGE;
	}
	return (int)code;
}

static int cmd_kill(int argc, char **argv)
{
	sigset_t set;
	int sig;

	if (argc != 1 || (sig = parse_signal(argv[0])) < 0) {
		fprintf(stderr, "usage: probe kill SIGNAL (TERM, SIGKILL, 9, ...)\n");
		return PROBE_EXIT_USAGE;
	}
	/* Whatever we inherited, the default action is what the test wants. */
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	fflush(stdout);
	kill(getpid(), sig);
	printf("kill: still alive after SIG%s\n",
	       probe_signal_name(sig) ? probe_signal_name(sig) : argv[0]);
	return 1;
}

/* Turns \n, \r, \t and \\ into the bytes they name, in place, so that a
 * test can pass a whole HTTP response as one argument. */
static size_t unescape(char *s)
{
	char *in = s, *out = s;

	while (*in) {
		if (*in == '\\' && in[1]) {
			in++;
			switch (*in) {
			case 'n':
				*out++ = '\n';
				break;
			case 'r':
				*out++ = '\r';
				break;
			case 't':
				*out++ = '\t';
				break;
			default:
				*out++ = *in;
				break;
			}
			in++;
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
	return (size_t)(out - s);
}

static int listen_on(int family, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sin6->sin6_addr = in6addr_loopback;
		len = sizeof(*sin6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

static void serve_one(int lfd, const char *reply, size_t reply_len)
{
	char drain[4096];
	size_t done = 0;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	while (done < reply_len) {
		ssize_t n = send(fd, reply + done, reply_len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	/* Send our FIN, then drop what the client sent: closing with unread
	 * data would turn the FIN into a reset and could lose the reply. */
	shutdown(fd, SHUT_WR);
	while (recv(fd, drain, sizeof(drain), MSG_DONTWAIT) > 0)
		;
	close(fd);
}

static int cmd_listen(int argc, char **argv)
{
	static char default_reply[] = "hello from probe\n";
	struct pollfd pfd[2];
	unsigned long port;
	char *reply = default_reply;
	size_t reply_len;
	int nfd = 0, fd;

	if (argc < 1 || argc > 2 || !parse_ulong(argv[0], 65535, &port) || port == 0) {
		fprintf(stderr, "usage: probe listen PORT [REPLY]\n");
		return PROBE_EXIT_USAGE;
	}
	if (argc == 2)
		reply = argv[1];
	reply_len = unescape(reply);
	signal(SIGPIPE, SIG_IGN);

	fd = listen_on(AF_INET, (unsigned)port);
	if (fd < 0) {
		printf("listen 127.0.0.1:%lu: %s\n", port, probe_errno_name(-fd));
		return 1;
	}
	pfd[nfd++] = (struct pollfd){.fd = fd, .events = POLLIN};
	/* ::1 is optional: IPv6 may be disabled in the namespace. */
	fd = listen_on(AF_INET6, (unsigned)port);
	if (fd >= 0)
		pfd[nfd++] = (struct pollfd){.fd = fd, .events = POLLIN};
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int i;

		if (poll(pfd, (nfds_t)nfd, -1) < 0)
			continue;
		for (i = 0; i < nfd; i++) {
			if (pfd[i].revents & POLLIN)
				serve_one(pfd[i].fd, reply, reply_len);
		}
	}
}

static int cmd_write(int argc, char **argv)
{
	static const char data[] = "written by probe\n";
	ssize_t n;
	int fd;

	if (argc != 1) {
		fprintf(stderr, "usage: probe write PATH\n");
		return PROBE_EXIT_USAGE;
	}
	fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		printf("write %s: %s\n", argv[0], probe_errno_name(errno));
		return 1;
	}
	n = write(fd, data, sizeof(data) - 1);
	if (n != (ssize_t)sizeof(data) - 1 || close(fd) < 0) {
		printf("write %s: %s\n", argv[0], n < 0 ? probe_errno_name(errno) : "short-write");
		return 1;
	}
	printf("write %s: ok\n", argv[0]);
	return 0;
}

static int cmd_status(int argc, char **argv)
{
	static const char *const keys[] = {
	        "Uid:",    "Gid:",    "Groups:", "CapInh:",     "CapPrm:",
	        "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:"};
	char line[512];
	FILE *f;

	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "usage: probe status\n");
		return PROBE_EXIT_USAGE;
	}
	f = fopen("/proc/self/status", "re");
	if (!f) {
		printf("status: /proc/self/status: %s\n", probe_errno_name(errno));
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t i;

		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (strncmp(line, keys[i], strlen(keys[i])) == 0) {
				fputs(line, stdout);
				break;
			}
		}
	}
	fclose(f);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: probe COMMAND [ARGS]\n"
	                "  syscall NAME|all        try a syscall, print NAME: ok|ERRNO\n"
	                "  hog MB [HOLD_SECONDS]   allocate and touch MB MiB\n"
	                "  forkbomb SECONDS [MAX]  fork for SECONDS, report failures\n"
	                "  spin SECONDS            busy loop, print cpu_ms and wall_ms\n"
	                "  zombies N               leave N unreaped children to init\n"
	                "  signals                 print each signal received, exit on TERM\n"
	                "  exit N                  exit with code N\n"
	                "  kill SIGNAL             kill itself with SIGNAL\n"
	                "  listen PORT [REPLY]     answer REPLY on 127.0.0.1/::1 PORT\n"
	                "  write PATH              try to create and write PATH\n"
	                "  status                  print Uid/Gid/Cap*/NoNewPrivs/Seccomp\n");
}

struct probe_command {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct probe_command commands[] = {
        {"syscall", probe_syscall_main},
        {"hog", cmd_hog},
        {"forkbomb", cmd_forkbomb},
        {"spin", cmd_spin},
        {"zombies", cmd_zombies},
        {"signals", cmd_signals},
        {"exit", cmd_exit},
        {"kill", cmd_kill},
        {"listen", cmd_listen},
        {"write", cmd_write},
        {"status", cmd_status},
};

int main(int argc, char **argv)
{
	size_t i;

	/* Tests read our output through pipes: one line must arrive as soon as
	 * it is printed, not when a block buffer fills. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; argc >= 2 && i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 2, argv + 2);
	}
	usage();
	return PROBE_EXIT_USAGE;
}
