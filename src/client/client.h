/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bin/berth-client: the `berth` commands that talk to berthd's control API
 * (ps, inspect, start, logs, events, ...). `berth` execs it for every command
 * but `run`, so that `berth run` stays a static binary with no dynamic-loader
 * cost while these link libcurl. Users only ever type `berth`.
 *
 * The layers: args.c (command-line helpers), api.c (one request to berthd,
 * its JSON, its error message), format.c (tables, times), sse.c and cri.c
 * (parsers of the two streamed formats), and one file per group of commands.
 */
#ifndef BERTH_CLIENT_H
#define BERTH_CLIENT_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "berth/error.h"

/* Exit statuses: 0 success, 1 a failure (berthd's or reaching it), 2 a bad command line. */
#define BERTH_CLIENT_EXIT_FAILED 1
#define BERTH_CLIENT_EXIT_USAGE  2

#define BERTH_CLIENT_DEFAULT_SOCKET "/run/berth/berth.sock"

/* ---- args.c: command lines ---- */

/* How to reach berthd, as given by flags (environment and defaults apply later). */
struct berth_client_opts {
	const char *socket;     /* --socket */
	const char *host;       /* --host */
	const char *token_file; /* --token-file */
	bool json;              /* --json */
	bool help;              /* -h, --help */
};

/*
 * getopt_long over the command's own options plus the connection options
 * every command takes (--socket, --host, --token-file, --json, --help),
 * which it records in `o` and does not return. Returns the next option of
 * the command's own, -1 at the end of the options, '?' after a bad one
 * (getopt has said what is wrong). `own` ends with a zero entry. GNU
 * permutation applies: options may follow the operands.
 */
int berth_client_getopt(int argc, char **argv, const char *shortopts, const struct option *own,
                        struct berth_client_opts *o);

/* A CLASS/NAME operand: pointers into a copy the caller frees (*class_name). */
int berth_client_parse_instance(const char *s, char **class_name, const char **name,
                                berth_error_t *err);

/* "KEY=VALUE" (VALUE may be empty, KEY may not) into `obj` as a string member. */
int berth_client_parse_kv(const char *what, const char *s, json_t *obj, berth_error_t *err);

/*
 * The base URL of berthd's API on TCP from --host/$BERTH_HOST: "HOST:PORT",
 * "[IPV6]:PORT" or an http(s) URL (whose path, if any, is kept as a prefix).
 * malloc'd, without a trailing '/'.
 */
int berth_client_base_url(const char *host, char **url, berth_error_t *err);

/*
 * A `berth cp` operand: CLASS/NAME:PATH is a path in an instance's
 * container (*class_name set, the caller's to free, *name and *path
 * pointing into it); anything else is a local path or "-" (*class_name
 * NULL). A local path with a colon in its first component is written
 * ./a:b. The path in a container must be absolute.
 */
int berth_client_parse_location(const char *s, char **class_name, const char **name,
                                const char **path, berth_error_t *err);

/* The last component of `path` ("" when it ends with '/'). */
const char *berth_client_base_name(const char *path);

/*
 * argv as one line of sh: words that need it in single quotes, so that
 * the shell that runs it gives the command exactly these words.
 */
char *berth_client_shell_join(char *const *argv, size_t n);

/* RFC 3339 in UTC ("2024-05-01T12:00:00.123Z") as ms since the epoch; -1 if it is not. */
int64_t berth_client_parse_time(const char *s);

/* ---- api.c: requests to berthd ---- */

struct berth_client;

/*
 * Resolve the connection: --host, else --socket, else $BERTH_HOST, else
 * $BERTH_SOCKET, else /run/berth/berth.sock; the token from --token-file,
 * else $BERTH_TOKEN. -EINVAL for a bad command line (a bad --host, both
 * --host and --socket), -EIO for anything else (an unreadable token file).
 */
int berth_client_open(const struct berth_client_opts *o, struct berth_client **out,
                      berth_error_t *err);
void berth_client_close(struct berth_client *c);

static inline void berth_client_closep(struct berth_client **c)
{
	berth_client_close(*c);
}

static inline void berth_json_decrefp(json_t **j)
{
	json_decref(*j);
}

#define cleanup_client __attribute__((cleanup(berth_client_closep)))
#define cleanup_json   __attribute__((cleanup(berth_json_decrefp)))

/*
 * One request; `body` (may be NULL) is sent as JSON. On a 2xx answer,
 * returns its JSON (a JSON null for an empty body) and sets *status (may be
 * NULL). Otherwise NULL with `err` holding berthd's message, or why berthd
 * could not be reached ("cannot reach berthd at PATH: ... (is berthd
 * running?)").
 */
json_t *berth_client_call(struct berth_client *c, const char *method, const char *path,
                          json_t *body, long *status, berth_error_t *err);

/*
 * A streamed GET: each piece of a 2xx answer's body goes to `fn` as it
 * arrives; `fn` returns 0, or -1 to stop (after filling `err`). An error
 * answer is read whole and reported as by berth_client_call().
 */
typedef int (*berth_client_stream_fn)(const char *data, size_t len, void *arg, berth_error_t *err);
int berth_client_stream(struct berth_client *c, const char *path, berth_client_stream_fn fn,
                        void *arg, berth_error_t *err);
/* A header of the last answer (its last value), or NULL: valid until the next request. */
const char *berth_client_header(struct berth_client *c, const char *name);

/*
 * The same as a POST of `body` (JSON; NULL: a GET); *status (may be NULL)
 * gets the answer's HTTP status, also of an error answer.
 */
int berth_client_stream_post(struct berth_client *c, const char *path, json_t *body,
                             berth_client_stream_fn fn, void *arg, long *status,
                             berth_error_t *err);

/*
 * PUT `path` with the bytes read from `fd` (named `what` in messages) as
 * the body, streamed as they are read: `size` bytes, or -1 for as many as
 * come until its end (chunked). The answer as by berth_client_call(). An
 * error answer's code is in err->code where a command tells it apart
 * (ENOENT, EISDIR, EACCES, ...), for every request.
 */
json_t *berth_client_upload(struct berth_client *c, const char *path, int fd, int64_t size,
                            const char *what, long *status, berth_error_t *err);

/*
 * GET `path` upgraded (101) to a protocol of its own: `headers` are the
 * request's extra lines (Upgrade, Sec-WebSocket-Key, ...). Then the
 * connection carries raw bytes: berth_client_raw_send/recv (-EAGAIN when
 * they would block; poll berth_client_socket()). Bytes that came with the
 * answer's head are in *leftover (malloc'd). An error answer: its message
 * in `err`, its status in *status.
 */
int berth_client_upgrade(struct berth_client *c, const char *path, const char *headers,
                         char **leftover, size_t *leftover_len, long *status, berth_error_t *err);
ssize_t berth_client_raw_send(struct berth_client *c, const void *buf, size_t len);
ssize_t berth_client_raw_recv(struct berth_client *c, void *buf, size_t len);
int berth_client_socket(struct berth_client *c);

/* "/v1/classes/CLASS/instances/NAME" with both escaped, plus `suffix` (may be ""). */
char *berth_client_instance_path(const char *class_name, const char *name, const char *suffix);

/* `s` percent-encoded for a path segment or query value (malloc'd). */
char *berth_client_escape(const char *s);

/* ---- format.c: what a person reads ---- */

/* "just now", "42s ago", "3m ago", "5h ago", "2d ago"; "-" when `then_ms` is 0 (never). */
void berth_client_relative_time(int64_t now_ms, int64_t then_ms, char *buf, size_t len);

/* A duration as configured: "10m", "1h30m", "1s500ms"; 0 is "never". */
void berth_client_duration(uint64_t ms, char *buf, size_t len);

/* Milliseconds since the epoch as RFC 3339 in UTC with milliseconds. */
void berth_client_time(int64_t ms, char *buf, size_t len);

/* The current time in ms since the epoch. */
int64_t berth_client_now_ms(void);

/*
 * A table: the cells of each row are copied, control characters replaced,
 * and printed left-aligned in columns three spaces apart (widths in
 * characters, not bytes).
 */
struct berth_table {
	size_t ncols, nrows, cap;
	char **cells; /* row-major; row 0 is the header */
};

void berth_table_init(struct berth_table *t, size_t ncols, const char *const *headers);
/* `cells` has ncols entries; NULL prints as "-". */
void berth_table_add(struct berth_table *t, const char *const *cells);
void berth_table_print(const struct berth_table *t, FILE *f);
void berth_table_free(struct berth_table *t);

/* Replace control characters, which could drive the terminal, with '?' (in place). */
void berth_client_sanitize(char *s);

/* Print `j` indented (inspect) or compact on one line (events --json); false on a write error. */
bool berth_client_print_json(const json_t *j, bool pretty);

/* ---- sse.c: text/event-stream ---- */

#define BERTH_SSE_LINE_MAX (256 * 1024)

/* One event: its id, type and data (lines joined with '\n'), NUL-terminated. */
typedef int (*berth_sse_event_fn)(const char *id, const char *type, const char *data, void *arg,
                                  berth_error_t *err);

struct berth_sse {
	berth_sse_event_fn fn;
	void *arg;
	char *line; /* the line being read, at most BERTH_SSE_LINE_MAX bytes */
	size_t line_len, line_cap;
	bool skip_lf; /* the last line ended with '\r': a '\n' next belongs to it */
	char *id, *type, *data;
	size_t data_len;
};

void berth_sse_init(struct berth_sse *p, berth_sse_event_fn fn, void *arg);
/* Feed bytes as they arrive; events are dispatched at each blank line. 0, or -1 with `err`. */
int berth_sse_feed(struct berth_sse *p, const char *data, size_t len, berth_error_t *err);
void berth_sse_free(struct berth_sse *p);

/* ---- cri.c: container logs in the CRI format ---- */

/*
 * Records `<RFC3339Nano time> <stdout|stderr> <F|P> <content>\n`: P marks a
 * partial line that the next record continues. The parser writes each
 * record's content to `out` or `err_out` as it arrives (never buffering a
 * whole line), ending a line only at an F record, and, with timestamps,
 * prefixes each line with the time of its first record. A record that is
 * not in this format is passed to `out` as it is.
 */
#define BERTH_CRI_HEADER_MAX 128

struct berth_cri {
	FILE *out, *err_out;
	bool timestamps;
	char header[BERTH_CRI_HEADER_MAX]; /* the record's fields before the content */
	size_t header_len;
	int spaces;        /* field separators seen in the header */
	bool in_content;   /* the header is done: bytes up to '\n' are content */
	bool raw;          /* this record is not CRI: pass it through */
	bool partial;      /* this record is P */
	int stream;        /* this record's: 0 stdout, 1 stderr */
	bool line_open[2]; /* per stream: P records began a line that is not yet ended */
};

void berth_cri_init(struct berth_cri *p, FILE *out, FILE *err_out, bool timestamps);
/* Feed bytes as they arrive. 0, or -errno of a failed write. */
int berth_cri_feed(struct berth_cri *p, const char *data, size_t len);
/* At the end of the stream: end a line that P records left open. */
int berth_cri_finish(struct berth_cri *p);

/* ---- the commands (instances.c, logs.c, events.c, classes.c, exec.c, files.c, proc.c) ---- */

struct berth_client_command {
	const char *name;
	const char *summary;
	const char *usage; /* the full help */
	int (*run)(int argc, char **argv, struct berth_client_opts *o);
};

int berth_client_cmd_ps(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_inspect(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_state(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_start(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_stop(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_destroy(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_renew(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_logs(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_events(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_classes(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_exec(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_cp(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_ls(int argc, char **argv, struct berth_client_opts *o);
int berth_client_cmd_proc(int argc, char **argv, struct berth_client_opts *o);
/* exec-tty.c: `command` ({argv, env, cwd}) on a terminal over a WebSocket; the exit status. */
int berth_client_exec_tty(struct berth_client *c, const char *path, json_t *command,
                          bool interactive);

/* The commands and what each does (the client run without a command). */
void berth_client_list(FILE *f);

/* The command named `name`, or NULL. */
const struct berth_client_command *berth_client_command_find(const char *name);

/* A usage error: "berth: MESSAGE" and where to find the command's help; returns 2. */
int berth_client_usage_error(const char *command, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Print the command's help to stdout; returns 0. */
int berth_client_help(const char *command);

/* Open the connection; 0, or the exit status after saying what is wrong. */
int berth_client_connect(const char *command, const struct berth_client_opts *o,
                         struct berth_client **c);

/*
 * The one CLASS/NAME operand at argv[optind] after the options; 0, or the
 * exit status (2) after saying what is wrong. *class_name is the caller's.
 */
int berth_client_instance_operand(const char *command, int argc, char **argv, char **class_name,
                                  const char **name);

/* "berth: MESSAGE" for a failure; returns 1. */
int berth_client_fail(const berth_error_t *err);

#endif
