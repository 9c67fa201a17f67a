/* SPDX-License-Identifier: Apache-2.0 */
/* `berth run`: one container in the foreground, its exit status ours. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include "berth/trace.h"
#include "berth/log.h"
#include "berth/parse.h"
#include "berth/runtime.h"
#include "berth/util.h"
#include "cli.h"

#define DEFAULT_STATE_DIR     "/var/lib/berth"
#define DEFAULT_INSTANCE_TYPE "lite"
#define MAX_PUBLISH           16
#define MAX_ENV               4096
/* Network namespaces kept ready for the next start (see berth_netns_pool_fill()). */
#define NETNS_POOL_SIZE 2

static void run_usage(FILE *f)
{
	fprintf(f,
	        "usage: berth run [OPTIONS] [--] COMMAND [ARG...]\n"
	        "       berth run --image IMAGE [OPTIONS] [[--] COMMAND [ARG...]]\n"
	        "\n"
	        "Run COMMAND in a new container in the foreground. Its output is passed\n"
	        "through and its exit status becomes berth's (128+N when killed by signal N).\n"
	        "\n"
	        "Options:\n"
	        "      --rootfs DIR            the image root directory\n"
	        "      --image IMAGE           an OCI image layout (DIR or DIR:TAG), an image\n"
	        "                              archive (FILE or FILE:TAG), or a registry\n"
	        "                              reference; without COMMAND the image's own\n"
	        "                              command runs\n"
	        "      --name NAME             container name (default: run-<random>)\n"
	        "      --instance-type TYPE    %s\n"
	        "                              (default: " DEFAULT_INSTANCE_TYPE ")\n"
	        "      --memory SIZE           memory limit, e.g. 256M, 1.5G (swap is off)\n"
	        "      --cpus N                CPU limit in vCPUs, e.g. 0.25, 2, 1/16\n"
	        "      --pids N                maximum number of processes\n"
	        "  -e, --env KEY=VALUE         set an environment variable (repeatable);\n"
	        "                              KEY alone passes berth's own value\n"
	        "  -w, --workdir DIR           working directory inside the container\n"
	        "      --hostname NAME         hostname (default: the container name)\n"
	        "  -u, --user UID[:GID]        run as this numeric user and group\n"
	        "      --read-only             mount the container's root read-only\n"
	        "      --net none|loopback|bridge\n"
	        "                              network: loopback (default: own namespace\n"
	        "                              with lo up), none (lo down), or bridge\n"
	        "                              (lo, and eth0 on bridge berth0 with NAT to\n"
	        "                              the outside; needs root and nftables)\n"
	        "  -p, --publish [ADDR:]HOST_PORT:PORT\n"
	        "                              forward ADDR:HOST_PORT (default address\n"
	        "                              127.0.0.1) to PORT inside the container\n"
	        "  -i, --interactive           connect berth's stdin to the container\n"
	        "      --state-dir DIR         where writable layers live\n"
	        "                              (default: " DEFAULT_STATE_DIR ")\n"
	        "  -h, --help                  show this help\n"
	        "\n"
	        "Exit status: the container's, or 125 when berth could not run it, 126 when\n"
	        "COMMAND cannot be executed, 127 when it is not found in the image.\n"
	        "\n"
	        "berth returns as soon as the container has ended and its name is free; a\n"
	        "process it leaves then removes the container's writable layer and makes\n"
	        "network namespaces ready for the next run, in /run/berth-netns\n"
	        "($BERTH_NETNS_POOL; \"off\" for none).\n",
	        berth_instance_type_names());
}

enum {
	OPT_ROOTFS = 256,
	OPT_IMAGE,
	OPT_NAME,
	OPT_INSTANCE_TYPE,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_PIDS,
	OPT_HOSTNAME,
	OPT_READ_ONLY,
	OPT_NET,
	OPT_STATE_DIR,
};

static const struct option options[] = {
        {"rootfs", required_argument, NULL, OPT_ROOTFS},
        {"image", required_argument, NULL, OPT_IMAGE},
        {"name", required_argument, NULL, OPT_NAME},
        {"instance-type", required_argument, NULL, OPT_INSTANCE_TYPE},
        {"memory", required_argument, NULL, OPT_MEMORY},
        {"cpus", required_argument, NULL, OPT_CPUS},
        {"pids", required_argument, NULL, OPT_PIDS},
        {"env", required_argument, NULL, 'e'},
        {"workdir", required_argument, NULL, 'w'},
        {"hostname", required_argument, NULL, OPT_HOSTNAME},
        {"user", required_argument, NULL, 'u'},
        {"read-only", no_argument, NULL, OPT_READ_ONLY},
        {"net", required_argument, NULL, OPT_NET},
        {"publish", required_argument, NULL, 'p'},
        {"interactive", no_argument, NULL, 'i'},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

struct run_state {
	struct berth_container *c;
	uv_poll_t exit_poll;
	uv_signal_t signals[7];
	int nsignals;
	int interrupts;
	bool done;
};

static const int forwarded_signals[] = {SIGINT,  SIGTERM, SIGHUP,  SIGQUIT,
                                        SIGUSR1, SIGUSR2, SIGWINCH};

static void close_handle(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void on_exit_readable(uv_poll_t *h, int status, int events)
{
	struct run_state *st = h->data;
	(void)status;
	(void)events;

	if (berth_container_wait(st->c, true, NULL, NULL) == -EAGAIN)
		return;
	st->done = true;
	/* Everything else on the loop exists for the container; end it all. */
	berth_forward_close_all();
	uv_walk(h->loop, close_handle, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct run_state *st = h->data;
	berth_error_t err;

	/* Ctrl-C is forwarded; the third one in a row kills the container outright. */
	if (signum == SIGINT && ++st->interrupts >= 3)
		signum = SIGKILL;
	if (berth_container_signal(st->c, signum, &err) < 0 && err.code != ESRCH)
		berth_warn("%s", err.message);
}

/*
 * What is left to do once the container's status is known — end its mount
 * namespace (the unmounts of the overlay, /proc, /dev and the rest, which
 * would otherwise be the init's exit: `mnt_ns` holds it past that), remove
 * its retired cgroup and its writable layer from the trash, delete a
 * bridged container's veth and give its address back, make network
 * namespaces for the next start — is done by a child that outlives us:
 * `berth run` returns when the container has ended, not when the kernel
 * and the disk have caught up. The child holds none of our other
 * descriptors, so a pipe from us ends with us.
 */
static void tidy_up_after(const char *state_dir, bool bridged, int mnt_ns)
{
	pid_t pid = fork();
	int null;

	if (pid > 0)
		return;
	if (pid == 0) {
		setsid();
		null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			_exit(1);
		/* Above 2 (opened while stdio was open): it keeps its number until here. */
		if (mnt_ns >= 0)
			mnt_ns = dup2(mnt_ns, 3);
		close_range(mnt_ns >= 0 ? 4 : 3, ~0U, 0);
	}
	/* The container's mount namespace ends here, not in the init's exit. */
	if (mnt_ns >= 0)
		close(mnt_ns);
	if (bridged)
		berth_bridge_sweep_departed(NULL);
	berth_runtime_sweep_cgroups(NULL);
	berth_runtime_sweep(state_dir, NULL);
	berth_netns_pool_fill(NETNS_POOL_SIZE, NULL);
	if (pid == 0)
		_exit(0);
}

static char *random_name(void)
{
	unsigned char b[6];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		abort(); /* the kernel's CSPRNG does not fail for 6 bytes */
	return xasprintf("run-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
}

static const char *option_name(int opt)
{
	for (const struct option *o = options; o->name != NULL; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "berth: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nRun `berth run --help` for usage.\n");
	return BERTH_EXIT_USAGE;
}

static void format_size(uint64_t bytes, char *buf, size_t len)
{
	if (bytes % (1ull << 30) == 0)
		snprintf(buf, len, "%lluG", (unsigned long long)(bytes >> 30));
	else if (bytes % (1ull << 20) == 0)
		snprintf(buf, len, "%lluM", (unsigned long long)(bytes >> 20));
	else
		snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
}

int berth_cli_run(int argc, char **argv)
{
	struct berth_container_spec spec = {.stdio = {-1, 1, 2}, .net = BERTH_NET_LOOPBACK};
	struct berth_publish publish[MAX_PUBLISH];
	const struct berth_instance_type *itype = NULL;
	cleanup_free char *name = NULL;
	cleanup_free char **env = xcalloc(MAX_ENV + 1, sizeof(char *));
	char **env_owned = xcalloc(MAX_ENV + 1, sizeof(char *));
	const char *state_dir = DEFAULT_STATE_DIR;
	const char *image = NULL;
	struct berth_cli_image img = {0};
	bool have_memory = false, have_cpus = false, have_pids = false, have_user = false;
	struct berth_limits explicit_limits = {0};
	struct run_state st = {0};
	struct berth_exit ex;
	berth_error_t err;
	size_t nenv = 0, npublish = 0;
	int opt, r, status = BERTH_EXIT_FAILED, mnt_ns = -1;
	uv_loop_t *loop;

	/* "+": options end at the command, so `berth run --rootfs R sh -c ...` needs no `--`. */
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+e:w:u:p:ih", options, NULL)) != -1) {
		switch (opt) {
		case OPT_ROOTFS:
			spec.rootfs = optarg;
			break;
		case OPT_IMAGE:
			image = optarg;
			break;
		case OPT_NAME:
			free(name);
			name = xstrdup(optarg);
			break;
		case OPT_INSTANCE_TYPE:
			itype = berth_instance_type_lookup(optarg);
			if (itype == NULL) {
				fprintf(stderr,
				        "berth: unknown instance type `%s` (use one of: %s)\n",
				        optarg, berth_instance_type_names());
				status = BERTH_EXIT_USAGE;
				goto out;
			}
			break;
		case OPT_MEMORY:
			if (berth_parse_size(optarg, &explicit_limits.memory_bytes, &err) < 0)
				goto bad_value;
			have_memory = true;
			break;
		case OPT_CPUS:
			if (berth_parse_cpus(optarg, &explicit_limits.nanocpus, &err) < 0)
				goto bad_value;
			have_cpus = true;
			break;
		case OPT_PIDS:
			if (berth_parse_u64(optarg, 1, 4194304, &explicit_limits.pids, &err) < 0)
				goto bad_value;
			have_pids = true;
			break;
		case 'e': {
			char *eq = strchr(optarg, '=');
			if (nenv == MAX_ENV) {
				status = usage_error("too many --env options (at most %s)", "4096");
				goto out;
			}
			if (optarg[0] == '\0' || eq == optarg) {
				status = usage_error("`%s` is not KEY=VALUE", optarg);
				goto out;
			}
			if (eq != NULL) {
				env[nenv++] = optarg;
			} else {
				const char *v = getenv(optarg);
				if (v == NULL)
					break; /* as Docker: an unset variable is not passed */
				env_owned[nenv] = xasprintf("%s=%s", optarg, v);
				env[nenv] = env_owned[nenv];
				nenv++;
			}
			break;
		}
		case 'w':
			spec.workdir = optarg;
			break;
		case OPT_HOSTNAME:
			spec.hostname = optarg;
			break;
		case 'u':
			if (berth_parse_user(optarg, &spec.uid, &spec.gid, &err) < 0)
				goto bad_value;
			have_user = true;
			break;
		case OPT_READ_ONLY:
			spec.read_only = true;
			break;
		case OPT_NET:
			if (strcmp(optarg, "none") == 0)
				spec.net = BERTH_NET_NONE;
			else if (strcmp(optarg, "loopback") == 0)
				spec.net = BERTH_NET_LOOPBACK;
			else if (strcmp(optarg, "bridge") == 0)
				spec.net = BERTH_NET_BRIDGE;
			else {
				status = usage_error(
				        "unknown network `%s` (use none, loopback or bridge)",
				        optarg);
				goto out;
			}
			break;
		case 'p': {
			char msg[256];
			if (npublish == MAX_PUBLISH) {
				status = usage_error("too many --publish options (at most %s)",
				                     "16");
				goto out;
			}
			if (berth_publish_parse(optarg, &publish[npublish], msg, sizeof(msg)) < 0) {
				status = usage_error("%s", msg);
				goto out;
			}
			npublish++;
			break;
		}
		case 'i':
			spec.stdio[0] = 0;
			break;
		case OPT_STATE_DIR:
			state_dir = optarg;
			break;
		case 'h':
			run_usage(stdout);
			status = 0;
			goto out;
		default:
			fprintf(stderr, "Run `berth run --help` for usage.\n");
			status = BERTH_EXIT_USAGE;
			goto out;
		}
	}
	if (optind >= argc && image == NULL) {
		status = usage_error("%s", "no command given (berth run [OPTIONS] -- COMMAND)");
		goto out;
	}
	if ((spec.rootfs == NULL) == (image == NULL)) {
		status = usage_error("%s", "give one of --rootfs and --image");
		goto out;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "berth: `berth run` needs root (it creates namespaces, cgroups "
		                "and mounts)\n");
		goto out;
	}

	if (itype == NULL)
		itype = berth_instance_type_lookup(DEFAULT_INSTANCE_TYPE);
	spec.limits = itype->limits;
	if (have_memory)
		spec.limits.memory_bytes = explicit_limits.memory_bytes;
	if (have_cpus)
		spec.limits.nanocpus = explicit_limits.nanocpus;
	if (have_pids)
		spec.limits.pids = explicit_limits.pids;
	if (name == NULL)
		name = random_name();
	spec.id = name;
	spec.state_dir = state_dir;
	spec.argv = argv + optind;
	spec.env = env;
	spec.die_with_parent = true;
	if (image != NULL &&
	    berth_cli_image_prepare(state_dir, image, optind < argc ? argv + optind : NULL, env,
	                            have_user, &spec, &img, &err) < 0) {
		fprintf(stderr, "berth: %s\n", err.message);
		goto out;
	}

	BERTH_TRACE("cli: start");
	r = berth_container_start(&spec, &st.c, &err);
	if (r < 0) {
		fprintf(stderr, "berth: %s\n", err.message);
		if (err.kind == BERTH_ERROR_KIND_EXEC)
			status = err.code == ENOENT ? BERTH_EXIT_NOTFOUND : BERTH_EXIT_NOEXEC;
		goto out;
	}

	BERTH_TRACE("cli: started");
	{
		/*
		 * The init is our child, not yet reaped: its pid names it. Fails
		 * only when it has exited already (its namespaces are gone).
		 */
		char ns[64];
		snprintf(ns, sizeof(ns), "/proc/%d/ns/mnt", (int)berth_container_pid(st.c));
		mnt_ns = open(ns, O_RDONLY | O_CLOEXEC);
	}
	loop = uv_default_loop();
	st.exit_poll.data = &st;
	uv_poll_init(loop, &st.exit_poll, berth_container_pidfd(st.c));
	uv_poll_start(&st.exit_poll, UV_READABLE, on_exit_readable);
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(forwarded_signals); i++) {
		uv_signal_t *s = &st.signals[st.nsignals++];
		uv_signal_init(loop, s);
		s->data = &st;
		uv_signal_start(s, on_signal, forwarded_signals[i]);
	}
	for (size_t i = 0; i < npublish; i++) {
		r = berth_forward_start(loop, st.c, &publish[i]);
		if (r < 0) {
			fprintf(stderr, "berth: publish %s:%u: %s\n", publish[i].host_addr,
			        publish[i].host_port, uv_strerror(r));
			berth_container_signal(st.c, SIGKILL, NULL);
		}
	}
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);

	BERTH_TRACE("cli: exited");
	if (berth_container_wait(st.c, false, &ex, &err) < 0) {
		fprintf(stderr, "berth: %s\n", err.message);
	} else {
		status = ex.exit_code;
		if (ex.oom) {
			char size[32];
			format_size(spec.limits.memory_bytes, size, sizeof(size));
			fprintf(stderr,
			        "berth: container `%s` ran out of memory: the kernel's OOM killer "
			        "ended a process (memory limit %s)\n",
			        spec.id, size);
		}
	}
	if (berth_container_destroy_detached(st.c, &err) < 0)
		berth_warn("clean up container `%s`: %s", spec.id, err.message);
	BERTH_TRACE("cli: destroyed");
	tidy_up_after(state_dir, spec.net == BERTH_NET_BRIDGE, mnt_ns);
	goto out;

bad_value:
	berth_error_wrap(&err, "--%s", option_name(opt));
	status = usage_error("%s", err.message);
out:
	/* Sparse: only the --env KEY entries taken from our environment are owned. */
	for (size_t i = 0; i < nenv; i++)
		free(env_owned[i]);
	free(env_owned);
	berth_cli_image_free(&img);
	return status;
}
