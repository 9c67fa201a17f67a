/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berthd: load the configuration, lock the state directory, open the
 * registry, register the classes, serve the control API; SIGHUP reloads the
 * configuration, SIGTERM and SIGINT stop.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/log.h"
#include "berth/parse.h"
#include "berth/runtime.h"
#include "berth/util.h"
#include "berth/version.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/hooks.h"
#include "daemon/images.h"
#include "daemon/instances.h"
#include "daemon/persist.h"
#include "daemon/notify.h"
#include "daemon/logs.h"
#include "proxy/proxy.h"
#include "sandbox/sandbox.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: berthd --config FILE [--state-dir DIR] [--api-socket PATH]\n"
	           "              [--api-listen HOST:PORT] [--listen HOST:PORT] [--live-restore]\n"
	           "              [--log-format auto|journal|text]\n"
	           "       berthd --check-config FILE\n"
	           "\n"
	           "The berth daemon: named container instances behind a control API.\n"
	           "Flags override the configuration file's `berth` section.\n"
	           "\n"
	           "  -c, --config FILE        the configuration (JSONC; a superset of "
	           "wrangler.jsonc)\n"
	           "      --check-config FILE  validate FILE, print every problem, and exit\n"
	           "      --state-dir DIR      registry and writable layers (default "
	           "/var/lib/berth)\n"
	           "      --api-socket PATH    the control API's unix socket (default "
	           "/run/berth/berth.sock)\n"
	           "      --api-listen H:P     also serve the control API on TCP (needs "
	           "berth.api.token)\n"
	           "      --listen H:P         the data plane (the proxy, berth.routes)\n"
	           "      --live-restore       on SIGTERM leave the containers running; the "
	           "next berthd\n"
	           "                           adopts them (it always does after a crash)\n"
	           "      --log-format FORMAT  journal: sd-daemon priority prefixes for "
	           "systemd's journal;\n"
	           "                           text: `berthd: ` prefixes; auto (default): "
	           "journal when\n"
	           "                           stderr is the journal ($JOURNAL_STREAM)\n"
	           "  -h, --help               this help\n"
	           "      --version            the version\n");
}

enum {
	OPT_CHECK = 256,
	OPT_STATE_DIR,
	OPT_API_SOCKET,
	OPT_API_LISTEN,
	OPT_LISTEN,
	OPT_LIVE_RESTORE,
	OPT_LOG_FORMAT,
	OPT_VERSION,
};

static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", required_argument, NULL, OPT_CHECK},
        {"state-dir", required_argument, NULL, OPT_STATE_DIR},
        {"api-socket", required_argument, NULL, OPT_API_SOCKET},
        {"api-listen", required_argument, NULL, OPT_API_LISTEN},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"live-restore", no_argument, NULL, OPT_LIVE_RESTORE},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
};

/* Load and print what is wrong; NULL on errors (warnings alone are fine). */
static struct berth_config *load_config(const char *path)
{
	struct berth_config_diags diags = {0};
	struct berth_config *cfg = NULL;
	berth_error_t err;
	int r;

	r = berth_config_load(path, &cfg, &diags, &err);
	if (berth_log_get_format() == BERTH_LOG_JOURNAL) {
		/* Each with its priority, or journald files errors as info. */
		for (size_t i = 0; i < diags.count; i++)
			berth_log(diags.items[i].severity == BERTH_CONFIG_ERROR ? BERTH_LOG_ERROR
			                                                        : BERTH_LOG_WARN,
			          "%s", diags.items[i].message);
	} else {
		berth_config_diags_print(&diags, stderr);
	}
	if (r < 0 && diags.errors == 0)
		berth_error_log("%s", err.message);
	berth_config_diags_free(&diags);
	return r < 0 ? NULL : cfg;
}

static int check_config(const char *path)
{
	struct berth_config *cfg = load_config(path);

	if (cfg == NULL)
		return 1;
	printf("%s: ok (%zu container class%s)\n", path, cfg->n_classes,
	       cfg->n_classes == 1 ? "" : "es");
	berth_config_free(cfg);
	return 0;
}

/* A HOST:PORT flag into an address of the configuration's kind. */
static int parse_addr(const char *flag, const char *s, struct berth_config_addr *a)
{
	cleanup_free char *shown = xasprintf("`%s`", s);
	berth_error_t err;

	if (berth_config_parse_addr(s, shown, a, &err) < 0) {
		fprintf(stderr, "berthd: %s: %s\n", flag, err.message);
		return -1;
	}
	return 0;
}

/* The command line over the file's `berth` section. */
static int apply_options(struct berthd *d, struct berth_config *cfg)
{
	struct berth_config_daemon *b = &cfg->berth;

	if (d->options.state_dir != NULL) {
		free(b->state_dir);
		b->state_dir = xstrdup(d->options.state_dir);
	}
	if (d->options.api_socket != NULL) {
		free(b->api_socket);
		b->api_socket = xstrdup(d->options.api_socket);
	}
	if (d->options.api_listen != NULL &&
	    parse_addr("--api-listen", d->options.api_listen, &b->api_listen) < 0)
		return -1;
	if (d->options.listen != NULL && parse_addr("--listen", d->options.listen, &b->listen) < 0)
		return -1;
	if (b->api_listen.host != NULL && b->api_token == NULL && !b->api_insecure_no_token) {
		fprintf(stderr,
		        "berthd: the control API on TCP (%s:%u) needs a token: set berth.api.token "
		        "(clients send `Authorization: Bearer TOKEN`), or, for local development "
		        "only, berth.api.insecure_no_token: true\n",
		        b->api_listen.host, b->api_listen.port);
		return -1;
	}
	return 0;
}

/* Record the classes in the registry (as the API shows them). */
static int register_classes(struct berthd *d, const struct berth_config *cfg)
{
	berth_error_t err;

	for (size_t i = 0; i < cfg->n_classes; i++) {
		json_t *j = berthd_class_json(&cfg->classes[i]);
		cleanup_free char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		int r;

		json_decref(j);
		r = berth_registry_upsert_class(d->registry, cfg->classes[i].class_name, text, NULL,
		                                &err);
		if (r < 0) {
			berth_error_log("register class `%s`: %s", cfg->classes[i].class_name,
			                err.message);
			return r;
		}
	}
	return 0;
}

static void on_containers_stopped(struct berthd *d)
{
	berthd_proxy_close(d);
	berthd_events_close(d);
	berthd_notify_close(d);
	berthd_logs_close(d);
	berthd_hooks_shutdown(d);
	/* The loop ends once the last registry write and handle are done. */
	if (d->api_unix != NULL)
		berth_http_server_close(d->api_unix, NULL, NULL);
	if (d->api_tcp != NULL)
		berth_http_server_close(d->api_tcp, NULL, NULL);
	d->api_unix = d->api_tcp = NULL;
}

/*
 * SIGTERM: no new work (the API answers 503), every container stopped
 * gracefully (SIGTERM, its class's grace period, SIGKILL) — or, with
 * --live-restore, left running for the next berthd — records flushed, then
 * exit.
 */
static void stop(struct berthd *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	__atomic_store_n(&d->images_cancel, 1, __ATOMIC_RELAXED);
	berthd_notify_stopping(d);
	if (d->options.live_restore)
		berth_info("stopping; leaving %zu instance%s running (live restore)",
		           berthd_instances_active(d), berthd_instances_active(d) == 1 ? "" : "s");
	else
		berth_info("stopping %zu instance%s", berthd_instances_active(d),
		           berthd_instances_active(d) == 1 ? "" : "s");
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sighup, NULL);
	/* Commands and processes end first: their leases hold their instances. */
	berthd_sandbox_shutdown(d);
	/* No new requests; those in flight finish while the containers stop. */
	berthd_proxy_drain(d);
	berthd_instances_shutdown(d, d->options.live_restore, on_containers_stopped);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	stop(h->data);
}

/*
 * SIGHUP: read the file again. A file with errors changes nothing; new
 * classes appear, changed ones apply to the next start. Listener settings
 * need a restart (said so).
 */
static bool reload(struct berthd *d)
{
	struct berth_config *cfg;

	berth_info("reloading %s", d->options.config_path);
	cfg = load_config(d->options.config_path);
	if (cfg == NULL) {
		berth_error_log("reload: the configuration has errors; keeping the running one");
		return false;
	}
	if (apply_options(d, cfg) < 0 || register_classes(d, cfg) < 0) {
		berth_config_free(cfg);
		berth_error_log("reload failed; keeping the running configuration");
		return false;
	}
	if (strcmp(cfg->berth.state_dir, d->config->berth.state_dir) != 0 ||
	    strcmp(cfg->berth.api_socket, d->config->berth.api_socket) != 0)
		berth_warn("reload: state_dir and api settings take effect after a restart");
	/* Keep what the running listeners and the registry were made from. */
	free(cfg->berth.state_dir);
	cfg->berth.state_dir = xstrdup(d->config->berth.state_dir);
	berth_config_free(d->config);
	d->config = cfg;
	berth_info("reloaded: %zu container class%s", cfg->n_classes,
	           cfg->n_classes == 1 ? "" : "es");
	berthd_images_prefetch(d);
	return true;
}

static void on_sighup(uv_signal_t *h, int signum)
{
	struct berthd *d = h->data;
	(void)signum;

	berthd_notify_reloading(d);
	berthd_notify_reloaded(d, reload(d));
}

/* BERTH_ZYGOTE=off: every start and exec execs the runtime's helper (for comparisons). */
static bool zygote_wanted(void)
{
	const char *v = getenv("BERTH_ZYGOTE");

	return v == NULL || strcmp(v, "off") != 0;
}

/*
 * The loop, with an adaptive busy poll. A loop that sleeps in epoll_wait
 * between a request and its answer pays a wakeup for each: on a virtual
 * machine an idle vCPU halts, and waking it costs a VM exit and an
 * interrupt, tens of microseconds (HAProxy's `busy-polling` exists for
 * the same reason). So after the data plane reads something the loop
 * polls without sleeping for a while (`window`, at most
 * berth.proxy.busy_poll_us), and an answer that comes within it is picked
 * up at once; then it sleeps as usual. As the kernel's haltpoll governor
 * does, the window adapts: a poll that ends without a read halves it (down
 * to none), and a read that comes, after a sleep, within four times the
 * maximum of the one before (the sleep's own wakeup included) sets it to
 * the maximum again. So traffic whose gaps are short gets the whole
 * window, and a slow backend or a slow client stops costing polls after a
 * few misses. An idle berthd never spins. The maximum is read on every
 * turn, so a reload changes it.
 */
static void run_loop(struct berthd *d)
{
	uint64_t seen = d->proxy_reads, last_read = 0, spin_until = 0, window = 0;
	bool spun = false;

	for (;;) {
		uint64_t max = d->config->berth.proxy.busy_poll_us * 1000u;
		bool spin = uv_hrtime() < spin_until;
		uint64_t now;

		if (spun && !spin) {
			/* A poll that found nothing: the next one is shorter. */
			window = window / 2 < max / 8 ? 0 : window / 2;
			spun = false;
		}
		if (uv_run(d->loop, spin ? UV_RUN_NOWAIT : UV_RUN_ONCE) == 0)
			return;
		if (d->proxy_reads == seen)
			continue;
		seen = d->proxy_reads;
		now = uv_hrtime();
		/* Slept, and the read came soon after the last: polling would have caught it. */
		if (!spin && now - last_read <= 4 * max)
			window = max;
		window = window < max ? window : max;
		last_read = now;
		spin_until = now + window;
		spun = window > 0;
	}
}

static int start_api(struct berthd *d)
{
	const struct berth_config_daemon *b = &d->config->berth;
	berth_error_t err;

	/* Large uploads (PUT .../files) go to unlinked files beside the state, not into memory. */
	struct berth_http_options opt = {.body_policy = berthd_api_body_policy,
	                                 .spool_dir = b->state_dir};

	d->api_unix = berth_http_server_new(d->loop, &opt, berthd_api_handle_unix, d);
	if (berth_http_server_listen_unix(d->api_unix, b->api_socket, 0660, &err) < 0) {
		berth_error_log("control API: %s", err.message);
		return -1;
	}
	berth_info("control API on %s", b->api_socket);
	if (b->api_listen.host != NULL) {
		d->api_tcp = berth_http_server_new(d->loop, &opt, berthd_api_handle_tcp, d);
		if (berth_http_server_listen_tcp(d->api_tcp, b->api_listen.host, b->api_listen.port,
		                                 &err) < 0) {
			berth_error_log("control API: %s", err.message);
			return -1;
		}
		berth_info("control API on %s:%u%s", b->api_listen.host, b->api_listen.port,
		           b->api_insecure_no_token ? " (WITHOUT a token: local development only)"
		                                    : " (bearer token required)");
	}
	if (berthd_proxy_start(d, &err) < 0) {
		berth_error_log("data plane: %s", err.message);
		return -1;
	}
	if (b->listen.host != NULL)
		berth_info("data plane on %s:%u (%zu route%s)", b->listen.host, b->listen.port,
		           b->n_routes, b->n_routes == 1 ? "" : "s");
	return 0;
}

int main(int argc, char **argv)
{
	struct berthd d = {.state_lock_fd = -1};
	enum berth_log_format log_format;
	berth_error_t err;
	int opt, status = 1;

	berth_log_init("berthd", BERTH_LOG_INFO);
	berth_log_parse_format("auto", &log_format);
	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			d.options.config_path = optarg;
			break;
		case OPT_CHECK:
			return check_config(optarg);
		case OPT_STATE_DIR:
			d.options.state_dir = optarg;
			break;
		case OPT_API_SOCKET:
			d.options.api_socket = optarg;
			break;
		case OPT_API_LISTEN:
			d.options.api_listen = optarg;
			break;
		case OPT_LISTEN:
			d.options.listen = optarg;
			break;
		case OPT_LIVE_RESTORE:
			d.options.live_restore = true;
			break;
		case OPT_LOG_FORMAT:
			if (berth_log_parse_format(optarg, &log_format) < 0) {
				fprintf(stderr,
				        "berthd: --log-format: `%s` is not a log format (use auto, "
				        "journal or text)\n",
				        optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("berthd %s\n", BERTH_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "berthd: unexpected argument `%s`\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (d.options.config_path == NULL) {
		fprintf(stderr, "berthd: --config FILE is required\n");
		usage(stderr);
		return 2;
	}
	berth_log_set_format(log_format);
	/*
	 * A write to a connection its peer reset must be an EPIPE for the
	 * loop to handle, not a signal that kills berthd (libuv leaves
	 * SIGPIPE alone). The helper is spawned with every signal back at its
	 * default (container.c), so containers never inherit this.
	 */
	signal(SIGPIPE, SIG_IGN);

	d.config = load_config(d.options.config_path);
	if (d.config == NULL || apply_options(&d, d.config) < 0)
		goto out;
	berth_log_init("berthd", d.config->berth.log_level);
	/* Read again by every image operation; a bad value is said once, here, at start. */
	if (berth_image_limits_from_env(&(struct berth_image_limits){0}, &err) < 0) {
		berth_error_log("%s", err.message);
		goto out;
	}
	if (berth_mkdir_p(d.config->berth.state_dir, 0711, &err) < 0 ||
	    berth_registry_lock_state_dir(d.config->berth.state_dir, &d.state_lock_fd, &err) < 0 ||
	    berth_registry_open(d.config->berth.state_dir, NULL, &d.registry, &err) < 0 ||
	    berth_registry_open(d.config->berth.state_dir, NULL, &d.reader, &err) < 0) {
		berth_error_log("%s", err.message);
		goto out;
	}
	if (register_classes(&d, d.config) < 0)
		goto out;
	{
		cleanup_free char *logs = xasprintf("%s/logs", d.config->berth.state_dir);
		if (berth_mkdir_p(logs, 0750, &err) < 0) {
			berth_error_log("%s", err.message);
			goto out;
		}
	}

	/*
	 * Before the first thread (persist's writer, libuv's pool): the zygote
	 * clones the runtime's helper for every start and exec, which saves
	 * each an exec of berth-runtime; it ends with us (also for a live
	 * restore), and without it the helper is exec'd as before.
	 */
	if (zygote_wanted() && berth_runtime_zygote_start(&err) < 0)
		berth_warn("%s; starts and execs spawn the runtime helper", err.message);

	d.loop = uv_default_loop();
	if (berthd_persist_init(&d, &err) < 0) {
		berth_error_log("%s", err.message);
		goto out;
	}
	berthd_instances_init(&d);
	berthd_events_init(&d);
	berthd_notify_init(&d);
	berthd_logs_init(&d);
	berthd_hooks_init(&d);
	d.started_ms = (uint64_t)berthd_now_ms();
	/* Before the API opens: callers see the adopted instances as they are. */
	if (berthd_instances_restore(&d, &err) < 0) {
		berth_error_log("restore the running instances: %s", err.message);
		goto out_loop;
	}
	if (start_api(&d) < 0)
		goto out_loop;
	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	uv_signal_init(d.loop, &d.sighup);
	d.sigterm.data = d.sigint.data = d.sighup.data = &d;
	uv_signal_start(&d.sigterm, on_stop_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_stop_signal, SIGINT);
	uv_signal_start(&d.sighup, on_sighup, SIGHUP);
	berth_info("ready: %zu container class%s, state in %s", d.config->n_classes,
	           d.config->n_classes == 1 ? "" : "es", d.config->berth.state_dir);
	berthd_notify_ready(&d);
	berthd_images_prefetch(&d);
	run_loop(&d);
	status = 0;
	berth_info("stopped");
out_loop:
	if (status != 0) {
		/* Close what start_api opened, so the loop can end. */
		berthd_proxy_close(&d);
		berthd_events_close(&d);
		berthd_notify_close(&d);
		berthd_logs_close(&d);
		berthd_hooks_shutdown(&d);
		if (d.api_unix != NULL)
			berth_http_server_close(d.api_unix, NULL, NULL);
		if (d.api_tcp != NULL)
			berth_http_server_close(d.api_tcp, NULL, NULL);
		uv_run(d.loop, UV_RUN_DEFAULT);
	}
	berthd_persist_shutdown(&d);
	uv_run(d.loop, UV_RUN_DEFAULT);
	uv_loop_close(d.loop);
out:
	berthd_sandbox_free(&d);
	free(d.instances);
	free(d.events);
	berth_registry_close(d.reader);
	free(d.proxy);
	berth_registry_close(d.registry);
	berth_close_keep_errno(d.state_lock_fd);
	berth_config_free(d.config);
	return status;
}
