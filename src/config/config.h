/* SPDX-License-Identifier: Apache-2.0 */
/*
 * berthd's configuration: one JSONC file (JSON with comments and trailing
 * commas), a superset of wrangler.jsonc. berth_config_load() reads it into
 * `struct berth_config` and validates all of it: every problem is collected
 * as a diagnostic that names the file, line:col and JSON path, e.g.
 *     config.jsonc:14:7: containers[0].sleepAfter: "10 minutes" is not a duration (use 30s, ...)
 *     config.jsonc:5:3: warning: unknown field "contianers" (did you mean "containers"?)
 * so that `berthd --check-config` can print them all at once.
 *
 * Relative paths in the file (image, image_build_context, berth.state_dir,
 * berth.api.socket) are resolved against the directory of the file.
 * docs/configuration.md is the user's reference for every field.
 */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "berth/error.h"
#include "berth/log.h"
#include "berth/runtime.h"

/* Defaults, as @cloudflare/containers (src/lib/container.ts) has them where it has them. */
#define BERTH_CONFIG_SLEEP_AFTER_MS          600000u /* DEFAULT_SLEEP_AFTER = '10m' */
#define BERTH_CONFIG_INSTANCE_GET_TIMEOUT_MS 8000u   /* TIMEOUT_TO_GET_CONTAINER_MS */
#define BERTH_CONFIG_PORT_READY_TIMEOUT_MS   20000u  /* TIMEOUT_TO_GET_PORTS_MS */
#define BERTH_CONFIG_PING_ENDPOINT           "ping"  /* pingEndpoint = 'ping' */
#define BERTH_CONFIG_INSTANCE_TYPE           "lite"  /* wrangler's default instance_type */
/* berth's own. */
#define BERTH_CONFIG_STOP_GRACE_MS 10000u
#define BERTH_CONFIG_API_SOCKET    "/run/berth/berth.sock"
#define BERTH_CONFIG_STATE_DIR     "/var/lib/berth"
#define BERTH_CONFIG_LOG_MAX_BYTES (10u * 1024u * 1024u)
#define BERTH_CONFIG_LOG_MAX_FILES 2u
/* The instance names the library's helpers use: getContainer() and getRandom(). */
#define BERTH_CONFIG_SINGLETON_NAME  "cf-singleton-container"
#define BERTH_CONFIG_RANDOM_NAME_FMT "instance-%u"

/* --- diagnostics ----------------------------------------------------------- */

enum berth_config_severity {
	BERTH_CONFIG_ERROR,
	BERTH_CONFIG_WARNING,
};

struct berth_config_diag {
	enum berth_config_severity severity;
	unsigned line, col; /* 1-based; 0 when there is no position (the file cannot be read) */
	char *path;         /* JSON path, e.g. "containers[0].sleepAfter"; "" for the whole file */
	char *text;         /* what is wrong and what would be right */
	char *message;      /* the whole line: "FILE:LINE:COL: [warning: ][PATH: ]TEXT" */
};

/* Diagnostics of one load, in the order of their position in the file. */
struct berth_config_diags {
	struct berth_config_diag *items;
	size_t count;
	size_t errors, warnings;
};

/* A zeroed `struct berth_config_diags` is empty and ready to use. */
void berth_config_diags_free(struct berth_config_diags *d);
/* Print each message on its own line. */
void berth_config_diags_print(const struct berth_config_diags *d, FILE *out);

/* --- the model ------------------------------------------------------------- */

/* A class's resource limits: a named instance type or custom {vcpu, memory_mib, disk_mb}. */
struct berth_config_instance_type {
	char *name;                 /* "lite" … "standard-4" as written; NULL when custom */
	struct berth_limits limits; /* memory, vCPUs, pids, disk (pids: as the named types) */
};

/*
 * One entry of containers[]: a container class. Strings are owned; lists of
 * strings are NULL-terminated. Fields keep their JS or wrangler names in the
 * file; the comment gives the field and its default.
 */
struct berth_config_class {
	/* wrangler's fields */
	char *class_name;          /* class_name: required; a JavaScript identifier; unique */
	char *name;                /* name: the application's name; NULL when absent */
	char *image;               /* image: required, as written */
	char *image_path;          /* image as the image module takes it: an absolute path,
	                              ABS_DIR:TAG of a layout, or a canonical registry
	                              reference ("docker.io/library/nginx:1.27") */
	char *image_build_context; /* image_build_context, resolved; NULL when absent */
	char **image_vars;         /* image_vars as KEY=VALUE; empty when absent */
	uint64_t max_instances;    /* max_instances: at least 1; 0 when absent (no limit) */
	struct berth_config_instance_type instance_type; /* instance_type: "lite" */

	/* the Container class's properties */
	uint16_t default_port;    /* defaultPort: 1-65535; 0 when absent (no default port) */
	uint16_t *required_ports; /* requiredPorts, in order; NULL when absent */
	size_t n_required_ports;  /* 0: readiness checks defaultPort (if any) */
	uint64_t sleep_after_ms;  /* sleepAfter: "10m"; a duration or seconds; > 0 */
	char **env;               /* envVars as KEY=VALUE in file order; empty when absent */
	char **entrypoint;        /* entrypoint; NULL: the image's own command */
	bool enable_internet;     /* enableInternet: true */
	char *ping_endpoint;      /* pingEndpoint: "ping"; readiness fetches http://PINGENDPOINT */
	char **labels;            /* labels as KEY=VALUE in file order; empty when absent */

	/* berth's own */
	uint64_t stop_grace_ms;           /* stopGracePeriod: "10s"; SIGTERM, then SIGKILL */
	uint64_t instance_get_timeout_ms; /* instanceGetTimeoutMS: 8000 */
	uint64_t port_ready_timeout_ms;   /* portReadyTimeoutMS: 20000 */
	/* readyOn: "200-399" or 200; 0-0 when absent: any HTTP response means ready. */
	uint16_t ready_status_min, ready_status_max;
	/* Webhooks (http:// or https:// URLs) the daemon calls on lifecycle events; NULL: none. */
	char *on_start;            /* onStart */
	char *on_stop;             /* onStop */
	char *on_error;            /* onError */
	char *on_activity_expired; /* onActivityExpired */
};

/* durable_objects.bindings[]: kept as wrangler has them; berth does not need them. */
struct berth_config_binding {
	char *name;        /* the binding's name in the Worker's env, e.g. "MY_CONTAINER" */
	char *class_name;  /* the Durable Object class */
	char *script_name; /* NULL when the class is defined in this Worker */
};

/* How a route picks the instance of its class that serves a request. */
enum berth_config_pick {
	BERTH_CONFIG_PICK_NAME,         /* {"name": s}: always the instance named s */
	BERTH_CONFIG_PICK_PATH_SEGMENT, /* {"path_segment": N}: the Nth segment of the path,
	                                   0-based, counted from the start of the path */
	BERTH_CONFIG_PICK_HEADER,       /* {"header": "X-Tenant"}: that request header's value */
	BERTH_CONFIG_PICK_HOST_LABEL,   /* {"host_label": N}: the Nth label of Host, 0-based from
	                                   the left ("alice" in alice.example.com is 0) */
	BERTH_CONFIG_PICK_RANDOM,       /* {"random": N}: one of N, as getRandom() names them */
	BERTH_CONFIG_PICK_LEAST_LOADED, /* {"least_loaded": N}: the least busy of those N */
	BERTH_CONFIG_PICK_SINGLETON,    /* "singleton": the instance getContainer() picks */
};

/* berth.routes[]: the data plane's routes; the first that matches wins. */
struct berth_config_route {
	char *path_prefix;  /* match.path_prefix: starts with "/"; NULL: any path */
	char *host;         /* match.host, lowercase; "*.example.com" matches its subdomains;
	                       NULL: any host */
	char *class_name;   /* class: a class of containers[] */
	size_t class_index; /* its index in berth_config.classes */
	enum berth_config_pick pick; /* instance */
	char *pick_name;             /* NAME: the name; HEADER: the header; SINGLETON:
	                                BERTH_CONFIG_SINGLETON_NAME; else NULL */
	unsigned pick_n;   /* PATH_SEGMENT, HOST_LABEL: the index; RANDOM, LEAST_LOADED: N */
	uint16_t port;     /* port, else the class's defaultPort (one of them is required) */
	bool strip_prefix; /* strip_prefix: false; remove path_prefix before proxying */
};

/* "HOST:PORT" */
struct berth_config_addr {
	char *host;    /* without the brackets of an IPv6 address; NULL when not set */
	uint16_t port; /* 1-65535 */
};

/*
 * berth.proxy: the data plane's limits. Zero fields of a hand-made struct
 * mean the default (BERTH_CONFIG_PROXY_*).
 */
struct berth_config_proxy {
	uint64_t max_connections;          /* max_connections: 10000 client connections */
	uint64_t max_header_bytes;         /* max_header_size: "32K"; more gets 431 */
	uint64_t max_body_bytes;           /* max_body_size: 0 (none); more gets 413 */
	uint64_t header_timeout_ms;        /* header_timeout: "10s" to send a request head; 408 */
	uint64_t idle_timeout_ms;          /* idle_timeout: "60s" of an idle client connection */
	uint64_t upstream_timeout_ms;      /* upstream_timeout: "60s" without a byte from the
	                                      container while a response is due; 504 */
	uint64_t upstream_keepalive;       /* upstream_keepalive: 64 idle connections kept per
	                                      instance and port */
	uint64_t upstream_idle_timeout_ms; /* upstream_idle_timeout: "30s" in that pool */
	uint64_t max_waiting;              /* max_waiting: 1024 requests waiting for starts */
	uint64_t wait_timeout_ms;          /* wait_timeout: "30s" waiting for a start; then 503
	                                      with Retry-After */
	uint64_t busy_poll_us;             /* busy_poll_us: 50 µs of polling without sleeping
	                                      after the data plane reads; 0: off */
};

#define BERTH_CONFIG_PROXY_MAX_CONNECTIONS     10000u
#define BERTH_CONFIG_PROXY_MAX_HEADER_BYTES    (32u * 1024u)
#define BERTH_CONFIG_PROXY_HEADER_TIMEOUT_MS   10000u
#define BERTH_CONFIG_PROXY_IDLE_TIMEOUT_MS     60000u
#define BERTH_CONFIG_PROXY_UPSTREAM_TIMEOUT_MS 60000u
#define BERTH_CONFIG_PROXY_UPSTREAM_KEEPALIVE  64u
#define BERTH_CONFIG_PROXY_UPSTREAM_IDLE_MS    30000u
#define BERTH_CONFIG_PROXY_MAX_WAITING         1024u
#define BERTH_CONFIG_PROXY_WAIT_TIMEOUT_MS     30000u
#define BERTH_CONFIG_PROXY_BUSY_POLL_US        50u
#define BERTH_CONFIG_PROXY_BUSY_POLL_MAX_US    1000u

/* The `berth` section: the daemon's own settings. */
struct berth_config_daemon {
	struct berth_config_addr listen;     /* listen: the data plane; not set: none */
	char *api_socket;                    /* api.socket: "/run/berth/berth.sock" */
	struct berth_config_addr api_listen; /* api.listen: the control API on TCP; not set */
	char *api_token;                     /* api.token: required with api.listen unless
	                                        api.insecure_no_token; NULL when absent */
	bool api_insecure_no_token;          /* api.insecure_no_token: false */
	char *state_dir;                     /* state_dir: "/var/lib/berth" */
	uint64_t limits_memory_bytes;        /* limits.memory: all instances together; 0: none */
	uint64_t limits_nanocpus;            /* limits.vcpu, in nano-vCPUs; 0: none */
	uint64_t log_max_bytes;              /* log.max_size: "10M" per instance log file */
	unsigned log_max_files;              /* log.max_files: 2 rotated files kept */
	enum berth_log_level log_level;      /* log.level: "info" */
	struct berth_config_route *routes;   /* routes[] */
	size_t n_routes;
	struct berth_config_proxy proxy; /* proxy: the data plane's limits */
	char *hooks_secret; /* hooks.secret: webhooks' HMAC-SHA256 key; NULL: unsigned */
};

struct berth_config {
	char *path; /* the file, absolute */
	char *dir;  /* its directory, absolute: relative paths in it are resolved against it */
	struct berth_config_class *classes; /* containers[], in the file's order */
	size_t n_classes;
	struct berth_config_binding *bindings; /* durable_objects.bindings[] */
	size_t n_bindings;
	struct berth_config_daemon berth;
};

/* --- API ------------------------------------------------------------------- */

/*
 * Read, parse and validate the configuration file at `path`. Every error and
 * warning is appended to `diags` (printed as "PATH:LINE:COL: ...", PATH as
 * given here). Returns 0 when there is no error (there may be warnings) and
 * sets *out; otherwise *out is NULL, `err` summarises ("`config.jsonc`: 3
 * errors") and the return value is -EINVAL, or the -errno that prevented
 * reading the file.
 */
int berth_config_load(const char *path, struct berth_config **out, struct berth_config_diags *diags,
                      berth_error_t *err);

/* Free a configuration (NULL is fine). */
void berth_config_free(struct berth_config *cfg);

/* The class named `class_name`, or NULL. */
const struct berth_config_class *berth_config_find_class(const struct berth_config *cfg,
                                                         const char *class_name);

/*
 * Whether two classes are configured alike in every field, for a reload
 * (SIGHUP): instances of a class whose configuration changed are restarted
 * with the new one; the others keep running.
 */
bool berth_config_class_equal(const struct berth_config_class *a,
                              const struct berth_config_class *b);

/*
 * Parse "HOST:PORT" or "[IPV6]:PORT" into `out`, as the file's address
 * fields are (for command-line flags that override them). `shown` is how
 * messages name the value, e.g. "`127.0.0.1`". -EINVAL with a message when
 * it is not an address.
 */
int berth_config_parse_addr(const char *s, const char *shown, struct berth_config_addr *out,
                            berth_error_t *err);

#endif
