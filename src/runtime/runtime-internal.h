/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the runtime library (the caller's side, container.c) shares with the
 * `berth-runtime` helper and the container init it clones.
 *
 * Protocol: the caller spawns `berth-runtime start|exec` (or has the zygote
 * clone a helper, zygote.c) with
 *   fd 0,1,2  the stdio the container (or exec'd process) gets,
 *   fd 3      a memfd holding the request as JSON (spec.c),
 *   fd 4      the write end of the report pipe.
 * Everyone on the helper's side writes records (report.c) to fd 4: the
 * helper a PID record as soon as the container's init (or the exec'd
 * process) exists, and any process an ERROR record when a step fails. The
 * descriptor is close-on-exec in the final process, so the caller reads
 * records until EOF: EOF after a PID and no ERROR means the command runs.
 * The container's init writes one line into STATE/containers/ID/exit when
 * the entrypoint has ended ("exit CODE" or "signal N"), just before it
 * exits: a file, not a pipe, so that a caller that was restarted meanwhile
 * (berthd's live restore) still learns it.
 */
#ifndef BERTH_RUNTIME_INTERNAL_H
#define BERTH_RUNTIME_INTERNAL_H

#include <jansson.h>
#include <linux/filter.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/types.h>

#include "berth/error.h"
#include "berth/runtime.h"
#include "bridge.h"
#include "cgroup.h"

#define BERTH_HELPER_SPEC_FD   3
#define BERTH_HELPER_REPORT_FD 4

/* Default location of berth's cgroups under each hierarchy root. */
#define BERTH_CGROUP_ROOT   "/sys/fs/cgroup"
#define BERTH_CGROUP_PARENT "berth"

/*
 * The state directory. Per container only the overlay's writable layer is on
 * disk: STATE/containers/ID/{upper,work}. The directory is also the
 * container's lock: the helper and then the init hold an flock() on it while
 * the container lives, so a second start of the same name is refused and the
 * remains of a crashed one are recognised as such.
 */
/* STATE/trash: container directories moved aside by deferred destroys. */
#define BERTH_STATE_TRASH     "trash"
#define BERTH_CONTAINER_UPPER "upper"
#define BERTH_CONTAINER_WORK  "work"
/* The init's last word: "exit CODE" or "signal N" (see init.c). */
#define BERTH_CONTAINER_EXIT_RECORD "exit"
/* Who the init is, for a caller that takes the container over (helper-main.c). */
#define BERTH_CONTAINER_INIT_RECORD "init.json"
/*
 * STATE/mnt: one empty directory on which every init mounts its private
 * scratch tmpfs (in its own mount namespace, so they never meet). The tmpfs
 * holds the overlay mount point and the container's /etc/hostname, /etc/hosts
 * and /etc/resolv.conf, and disappears with the namespace.
 */
#define BERTH_STATE_MNT "mnt"
/*
 * STATE/layers/init-v1: a shared read-only layer put on top of every image
 * that has plain directories (or nothing) at /proc, /dev, /sys and /etc. It
 * holds the mount points berth needs, so that starting a container never
 * copies /etc up into its writable layer just to mount /etc/hostname.
 */
#define BERTH_STATE_INIT_LAYER "layers/init-v1"

/* Cgroup settings of this host, from the environment (BERTH_CGROUP_ROOT, BERTH_CGROUP_PARENT). */
void berth_runtime_cgroup_config(struct berth_cgroup_config *cfg, berth_error_t *err);

/* ---- spec.c: requests to the helper ---- */

/* A start request as the helper sees it; strings point into `json`. */
struct berth_start_request {
	json_t *json;
	struct berth_container_spec spec;
	char **argv; /* arrays owned by the request, strings by json */
	char **env;
	char **layers;
	pid_t caller;              /* the process that asked (die_with_parent watches it) */
	const char *container_dir; /* STATE_DIR/containers/ID */
	const char *init_layer;    /* STATE_DIR/layers/init-v1, or NULL when not used */
	/* Contents of the container's /etc files, prepared by the helper. */
	char *etc_hostname, *etc_hosts, *etc_resolv;
};

struct berth_exec_request {
	json_t *json;
	pid_t init_pid;
	const char *id;
	struct berth_exec_spec spec;
	char **argv;
	char **env;
};

json_t *berth_start_request_encode(const struct berth_container_spec *spec);
int berth_start_request_decode(json_t *json, struct berth_start_request *req, berth_error_t *err);
void berth_start_request_free(struct berth_start_request *req);

json_t *berth_exec_request_encode(pid_t init_pid, const char *id,
                                  const struct berth_exec_spec *spec, char *const *container_env,
                                  uint32_t uid, uint32_t gid);
int berth_exec_request_decode(json_t *json, struct berth_exec_request *req, berth_error_t *err);
void berth_exec_request_free(struct berth_exec_request *req);

/* Write a request into a fresh memfd, positioned at 0. Returns the fd or -errno. */
int berth_request_memfd(json_t *json, berth_error_t *err);
/* Read and parse the request from `fd`. */
int berth_request_read(int fd, json_t **out, berth_error_t *err);

/* The start time of process `pid` (field 22 of /proc/PID/stat, in clock ticks). */
int berth_proc_start_time(pid_t pid, unsigned long long *out);

/* Validate a container id: [A-Za-z0-9][A-Za-z0-9_.-]{0,127}. */
bool berth_container_id_valid(const char *id);

/* ---- report.c: records on the report pipe ---- */

enum berth_report_type {
	BERTH_REPORT_PID = 1,
	BERTH_REPORT_ERROR = 2,
	/* A helper cloned by the zygote, first thing: its pid, for the caller to reap. */
	BERTH_REPORT_HELPER = 3,
};

struct berth_report {
	enum berth_report_type type;
	pid_t pid;           /* PID */
	berth_error_t error; /* ERROR */
};

/* One write(2) each (records are smaller than PIPE_BUF, so they never interleave). */
void berth_report_pid(int fd, pid_t pid);
void berth_report_helper(int fd, pid_t pid);
void berth_report_error(int fd, const berth_error_t *err);

/* Read one record. Returns 1 with a record, 0 at EOF, or -errno. */
int berth_report_read(int fd, struct berth_report *rec);

/* ---- the helper's pieces (run in berth-runtime and the init it clones) ---- */

/* container.c: posix_spawn attributes for a clean slate: every signal default, none blocked. */
void berth_spawnattr_clean(posix_spawnattr_t *attr);

/*
 * helper.c: do `verb` ("start" or "exec") with the request on fd 3 and the
 * report pipe on fd 4; `area` is the process's argv strings, which the
 * init overwrites with its name. Returns the helper's exit status.
 */
int berth_helper_run(const char *verb, char *area, size_t area_len);

/*
 * In a fresh child of a process that is not an exec'd berth-runtime (a
 * fork of `berth run`, a clone of the zygote): what the library's
 * posix_spawn file actions and attributes do for berth-runtime (every
 * signal at its default and unblocked; `stdio` on 0-2, /dev/null for -1;
 * `memfd` on 3, `wr` on 4; nothing else open), then the helper. Every
 * descriptor given must be above 4, or a stdio one already in its place.
 * Never returns.
 */
__attribute__((noreturn)) void berth_helper_run_child(const char *verb, const int stdio[3],
                                                      int memfd, int wr, char *area,
                                                      size_t area_len);

/*
 * clone3() with CLONE_PARENT (the child is our parent's, and gets our exit
 * signal), into the cgroup `cgroup_fd` unless it is -1. Returns as fork().
 */
pid_t berth_clone_parent(uint64_t flags, int cgroup_fd);

/* ---- zygote.c: berth_runtime_zygote_start() ---- */

/*
 * Hand a request to the zygote: `memfd` and the report pipe's `wr` (both
 * stay ours to close), and the stdio. Returns 0 when it was sent, with
 * `*gen` naming the zygote it went to, or -ENOTCONN when there is no
 * zygote to take it (never started, given up on): use the exec'd helper.
 */
int berth_zygote_submit(const char *verb, int memfd, int wr, const int stdio[3], unsigned *gen);
/* Whether berth_zygote_submit() may take requests (a hint, for skipping the work). */
bool berth_zygote_enabled(void);
/* The zygote `gen` answered a request (a helper reported its pid). */
void berth_zygote_served(unsigned gen);
/*
 * A request sent to zygote `gen` came back without a helper: the zygote
 * is gone. It is reaped, and restarted by the next request.
 */
void berth_zygote_lost(unsigned gen);
/*
 * `berth-runtime serve`: the zygote's loop on the socket `sock` (fd 3).
 * Returns the exit status when the library's end is closed.
 */
int berth_zygote_serve(int sock, char *area, size_t area_len);

struct berth_init_args {
	const struct berth_start_request *req;
	struct berth_cgroup *cgroup; /* the container's, made by the helper */
	bool enter_cgroup;           /* v1: move ourselves in (v2: cloned into it) */
	int dir_fd;                  /* STATE/containers/ID, locked; close-on-exec */
	int report_fd;               /* inherited; close-on-exec */
	int status_fd;               /* STATE/containers/ID/exit: how the entrypoint ended */
	int log_dir_fd;              /* the log directory, or -1: stdout and stderr as given */
	const struct sock_fprog *seccomp;
	/* die_with_parent: a pidfd of the caller, checked once PR_SET_PDEATHSIG is set; else -1. */
	int caller_fd;
	/* A prepared network namespace to enter (netpool.c), or -1: make one. */
	int netns_fd;
	/* BERTH_NET_BRIDGE: the container's address and veth (bridge.c), else NULL. */
	const struct berth_bridge_lease *lease;
	/* The helper's argv strings, overwritten so /proc/1/cmdline says "berth-init". */
	char *arg_area;
	size_t arg_area_len;
};

/*
 * rootfs.c: make fresh upper and work directories in the container's
 * directory `dir_fd` (removing any left by a container that died), then build
 * the container's filesystem and pivot into it.
 */
int berth_rootfs_setup(const struct berth_start_request *req, int dir_fd, berth_error_t *err);

/*
 * netpool.c: take a prepared network namespace (lo up) out of the pool.
 * Returns its descriptor (close-on-exec), or -1 when the pool has none.
 */
int berth_netns_pool_take(void);

/* Whether open file `fd` is a network namespace (a live slot), not the plain file under it. */
bool berth_netns_is_netns(int fd);

/* "slot-MNTNS-": the prefix of the slots our mount namespace makes (see netpool.c). */
void berth_netns_slot_prefix(char *buf, size_t len);

/* Remove slot file `name` (open as `fd`) if it is a plain file old enough to be stale. */
void berth_netns_remove_if_stale(int dir_fd, const char *name, int fd);

/* net.c: bring up lo, or link `name`, in the current network namespace. */
int berth_net_loopback_up(berth_error_t *err);
int berth_net_link_up(const char *name, berth_error_t *err);

/* logwriter.c: the container's log (see berth_container_spec.log_dir), kept by its init. */
#define BERTH_LOG_LINE_MAX (16 * 1024)

struct berth_log_writer {
	int dir_fd;  /* the log directory (not owned) */
	int file_fd; /* container.log, O_APPEND */
	uint64_t size, max_bytes;
	unsigned max_files;
};

struct berth_log_stream {
	int fd;           /* the read end of the stream's pipe, non-blocking; -1 once at EOF */
	const char *name; /* "stdout" or "stderr" */
	size_t len;
	char buf[BERTH_LOG_LINE_MAX];
};

int berth_log_writer_open(struct berth_log_writer *w, int dir_fd, uint64_t max_bytes,
                          unsigned max_files, berth_error_t *err);
void berth_log_writer_close(struct berth_log_writer *w);
/* Read what `s` has and write its whole lines. Returns 1 at EOF (or error), else 0. */
int berth_log_pump(struct berth_log_writer *w, struct berth_log_stream *s);
/* At the end: what is left in the pipe, and an unended last line as a part. */
void berth_log_finish(struct berth_log_writer *w, struct berth_log_stream *s);

/* init.c: the container's PID 1. Never returns. */
__attribute__((noreturn)) void berth_init_main(struct berth_init_args *args);

/*
 * exec.c (shared by the init's entrypoint and `berth-runtime exec`): drop to
 * the process's privileges and execute `argv` with `env`, looking argv[0] up
 * in the PATH of `env`. `seccomp` is installed last, unless NULL (the process
 * inherited the filter). Only returns on failure, with `err` filled (kind
 * EXEC when the command itself could not be executed).
 */
void berth_exec_command(char *const *argv, char *const *env, uint32_t uid, uint32_t gid,
                        const struct sock_fprog *seccomp, berth_error_t *err);

#endif
