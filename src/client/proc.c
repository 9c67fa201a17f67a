/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `berth proc`: background processes in an instance's container, through
 * the sandbox protocol's /api/process/... (start, list, ID, ID/logs,
 * ID/stream, kill-all). A process is a line of sh there: the words given
 * are quoted so that it runs exactly them, as `berth exec` would. `logs
 * -f` follows the process's event stream until it exits, and exits with
 * its exit status.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/parse.h"
#include "berth/util.h"
#include "client/client.h"

/* ".../sandbox/api/process/SUFFIX" of the instance; `id` (may be NULL) escaped before it. */
static char *process_path(const char *class_name, const char *name, const char *id,
                          const char *suffix)
{
	cleanup_free char *escaped = id != NULL ? berth_client_escape(id) : NULL;
	cleanup_free char *rest =
	        xasprintf("/sandbox/api/process/%s%s%s", id != NULL ? escaped : "",
	                  id != NULL && *suffix != '\0' ? "/" : "", suffix);

	return berth_client_instance_path(class_name, name, rest);
}

/* The CLASS/NAME at argv[optind] and, with `id`, the process ID after it; 0 or the exit status. */
static int operands(int argc, char **argv, char **class_name, const char **name, const char **id)
{
	berth_error_t err;
	int want = id != NULL ? 2 : 1;

	if (optind >= argc)
		return berth_client_usage_error("proc", "which instance? Give CLASS/NAME");
	if (id != NULL && optind + 1 >= argc)
		return berth_client_usage_error("proc", "which process? Give CLASS/NAME ID");
	if (optind + want < argc)
		return berth_client_usage_error("proc", "unexpected argument `%s`",
		                                argv[optind + want]);
	if (berth_client_parse_instance(argv[optind], class_name, name, &err) < 0)
		return berth_client_usage_error("proc", "%s", err.message);
	if (id != NULL)
		*id = argv[optind + 1];
	return 0;
}

/* ---- start ---- */

static int proc_start(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {
	        {"env", required_argument, NULL, 'e'},
	        {"workdir", required_argument, NULL, 'w'},
	        {"id", required_argument, NULL, 'I'},
	        {"timeout", required_argument, NULL, 'T'},
	        {NULL, 0, NULL, 0},
	};
	cleanup_client struct berth_client *c = NULL;
	cleanup_free char *class_name = NULL;
	cleanup_free char *path = NULL;
	cleanup_free char *command = NULL;
	cleanup_json json_t *body = json_object();
	cleanup_json json_t *env = json_object();
	cleanup_json json_t *answer = NULL;
	const char *name, *id;
	berth_error_t err;
	uint64_t ms = 0;
	int opt, r;

	/* "+": options end at CLASS/NAME; what follows is the command's own. */
	while ((opt = berth_client_getopt(argc, argv, "+e:w:", own, o)) != -1) {
		switch (opt) {
		case 'e':
			if (berth_client_parse_kv("--env", optarg, env, &err) < 0)
				return berth_client_usage_error("proc", "%s", err.message);
			break;
		case 'w':
			if (optarg[0] != '/')
				return berth_client_usage_error(
				        "proc", "--workdir: `%s` is not an absolute path", optarg);
			json_object_set_new(body, "cwd", json_string(optarg));
			break;
		case 'I':
			if (*optarg == '\0' || strlen(optarg) > 128 || strchr(optarg, '/') != NULL)
				return berth_client_usage_error(
				        "proc", "--id: `%s` is not 1 to 128 characters without `/`",
				        optarg);
			json_object_set_new(body, "processId", json_string(optarg));
			break;
		case 'T':
			if (berth_parse_duration(optarg, &ms, &err) < 0 || ms == 0)
				return berth_client_usage_error("proc", "--timeout: %s",
				                                ms == 0 ? "must be more than 0"
				                                        : err.message);
			json_object_set_new(body, "timeoutMs", json_integer((json_int_t)ms));
			break;
		default:
			return BERTH_CLIENT_EXIT_USAGE;
		}
	}
	if (o->help)
		return berth_client_help("proc");
	if (optind >= argc)
		return berth_client_usage_error("proc", "which instance? Give CLASS/NAME");
	if (berth_client_parse_instance(argv[optind], &class_name, &name, &err) < 0)
		return berth_client_usage_error("proc", "%s", err.message);
	optind++;
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc)
		return berth_client_usage_error("proc",
		                                "which command? berth proc start %s -- COMMAND "
		                                "[ARG...]",
		                                argv[optind - 1]);
	command = berth_client_shell_join(argv + optind, (size_t)(argc - optind));
	json_object_set_new(body, "command", json_string(command));
	if (json_object_size(env) > 0)
		json_object_set(body, "env", env);
	if ((r = berth_client_connect("proc", o, &c)) != 0)
		return r;
	path = process_path(class_name, name, NULL, "start");
	answer = berth_client_call(c, "POST", path, body, NULL, &err);
	if (answer == NULL)
		return berth_client_fail(&err);
	if (o->json)
		return berth_client_print_json(answer, true) ? 0 : BERTH_CLIENT_EXIT_FAILED;
	id = json_string_value(json_object_get(answer, "processId"));
	if (id == NULL) {
		berth_error_set_plain(&err, EPROTO, "berthd's answer has no processId");
		return berth_client_fail(&err);
	}
	printf("%s\n", id);
	return 0;
}

/* ---- ls ---- */

static int proc_ls(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {{NULL, 0, NULL, 0}};
	static const char *const headers[] = {"ID", "PID", "STATUS", "EXIT", "COMMAND", "STARTED"};
	cleanup_client struct berth_client *c = NULL;
	cleanup_free char *class_name = NULL;
	cleanup_free char *path = NULL;
	cleanup_json json_t *answer = NULL;
	struct berth_table t;
	int64_t now = berth_client_now_ms();
	const char *name;
	berth_error_t err;
	json_t *p;
	size_t i;
	int r;

	if (berth_client_getopt(argc, argv, "", own, o) != -1)
		return BERTH_CLIENT_EXIT_USAGE;
	if (o->help)
		return berth_client_help("proc");
	if ((r = operands(argc, argv, &class_name, &name, NULL)) != 0 ||
	    (r = berth_client_connect("proc", o, &c)) != 0)
		return r;
	path = process_path(class_name, name, NULL, "list");
	answer = berth_client_call(c, "GET", path, NULL, NULL, &err);
	if (answer == NULL)
		return berth_client_fail(&err);
	if (o->json)
		return berth_client_print_json(answer, true) ? 0 : BERTH_CLIENT_EXIT_FAILED;
	berth_table_init(&t, BERTH_ARRAY_SIZE(headers), headers);
	json_array_foreach (json_object_get(answer, "processes"), i, p) {
		const json_t *pid = json_object_get(p, "pid");
		const json_t *code = json_object_get(p, "exitCode");
		cleanup_free char *pid_text = NULL;
		cleanup_free char *code_text = NULL;
		char started[32];
		const char *row[6];

		if (json_is_integer(pid))
			pid_text = xasprintf("%lld", (long long)json_integer_value(pid));
		if (json_is_integer(code))
			code_text = xasprintf("%lld", (long long)json_integer_value(code));
		berth_client_relative_time(
		        now,
		        berth_client_parse_time(json_string_value(json_object_get(p, "startTime"))),
		        started, sizeof(started));
		row[0] = json_string_value(json_object_get(p, "id"));
		row[1] = pid_text;
		row[2] = json_string_value(json_object_get(p, "status"));
		row[3] = code_text;
		row[4] = json_string_value(json_object_get(p, "command"));
		row[5] = started;
		berth_table_add(&t, row);
	}
	berth_table_print(&t, stdout);
	berth_table_free(&t);
	return 0;
}

/* ---- logs ---- */

static int write_text(FILE *f, const json_t *text, berth_error_t *err)
{
	size_t n = json_string_length(text);

	if ((n > 0 && fwrite(json_string_value(text), 1, n, f) != n) || fflush(f) == EOF)
		return berth_error_set(err, errno != 0 ? errno : EIO, "write the process's output");
	return 0;
}

struct follow {
	struct berth_sse sse;
	int exit_code; /* -1 until the exit event */
};

static int on_event(const char *id, const char *type, const char *data, void *arg,
                    berth_error_t *err)
{
	struct follow *f = arg;
	cleanup_json json_t *ev = json_loads(data, 0, NULL);
	const char *kind = json_string_value(json_object_get(ev, "type"));
	const json_t *text = json_object_get(ev, "data");
	(void)id;
	(void)type;

	if (kind == NULL)
		return berth_error_set_plain(err, EPROTO,
		                             "berthd sent an event berth does not know");
	if (strcmp(kind, "stdout") == 0 && json_is_string(text))
		return write_text(stdout, text, err);
	if (strcmp(kind, "stderr") == 0 && json_is_string(text))
		return write_text(stderr, text, err);
	if (strcmp(kind, "exit") == 0)
		f->exit_code = (int)json_integer_value(json_object_get(ev, "exitCode"));
	if (strcmp(kind, "error") == 0) {
		const char *msg = json_string_value(json_object_get(ev, "error"));
		return berth_error_set_plain(err, EIO, "%s",
		                             msg != NULL ? msg : "the process's stream failed");
	}
	return 0;
}

static int on_data(const char *data, size_t len, void *arg, berth_error_t *err)
{
	struct follow *f = arg;
	return berth_sse_feed(&f->sse, data, len, err);
}

static int proc_logs(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {
	        {"follow", no_argument, NULL, 'f'},
	        {NULL, 0, NULL, 0},
	};
	cleanup_client struct berth_client *c = NULL;
	cleanup_free char *class_name = NULL;
	cleanup_free char *path = NULL;
	cleanup_json json_t *answer = NULL;
	struct follow f = {.exit_code = -1};
	const char *name, *id;
	bool follow = false;
	berth_error_t err;
	int opt, r;

	while ((opt = berth_client_getopt(argc, argv, "f", own, o)) != -1) {
		if (opt != 'f')
			return BERTH_CLIENT_EXIT_USAGE;
		follow = true;
	}
	if (o->help)
		return berth_client_help("proc");
	if (o->json)
		return berth_client_usage_error("proc", "logs are the process's output: there is "
		                                        "no --json");
	if ((r = operands(argc, argv, &class_name, &name, &id)) != 0 ||
	    (r = berth_client_connect("proc", o, &c)) != 0)
		return r;
	if (!follow) {
		path = process_path(class_name, name, id, "logs");
		answer = berth_client_call(c, "GET", path, NULL, NULL, &err);
		if (answer == NULL)
			return berth_client_fail(&err);
		if (write_text(stdout, json_object_get(answer, "stdout"), &err) < 0 ||
		    write_text(stderr, json_object_get(answer, "stderr"), &err) < 0)
			return berth_client_fail(&err);
		return 0;
	}
	path = process_path(class_name, name, id, "stream");
	berth_sse_init(&f.sse, on_event, &f);
	r = berth_client_stream(c, path, on_data, &f, &err);
	berth_sse_free(&f.sse);
	fflush(stdout);
	if (r < 0)
		return berth_client_fail(&err);
	if (f.exit_code < 0) {
		fprintf(stderr, "berth: the stream ended before the process did\n");
		return BERTH_CLIENT_EXIT_FAILED;
	}
	return f.exit_code;
}

/* ---- kill ---- */

static int proc_kill(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {
	        {"signal", required_argument, NULL, 's'},
	        {"all", no_argument, NULL, 'a'},
	        {NULL, 0, NULL, 0},
	};
	cleanup_client struct berth_client *c = NULL;
	cleanup_free char *class_name = NULL;
	cleanup_free char *path = NULL;
	cleanup_json json_t *answer = NULL;
	cleanup_json json_t *after = NULL;
	const char *name, *id = NULL, *status;
	const json_t *code;
	bool all = false;
	berth_error_t err;
	int opt, r, sig = SIGKILL;

	while ((opt = berth_client_getopt(argc, argv, "s:", own, o)) != -1) {
		switch (opt) {
		case 's':
			if (berth_parse_signal(optarg, &sig, &err) < 0)
				return berth_client_usage_error("proc", "--signal: %s",
				                                err.message);
			break;
		case 'a':
			all = true;
			break;
		default:
			return BERTH_CLIENT_EXIT_USAGE;
		}
	}
	if (o->help)
		return berth_client_help("proc");
	if ((r = operands(argc, argv, &class_name, &name, all ? NULL : &id)) != 0 ||
	    (r = berth_client_connect("proc", o, &c)) != 0)
		return r;
	if (all && sig != SIGKILL)
		return berth_client_usage_error("proc", "--all kills (SIGKILL); send other signals "
		                                        "to one process at a time");
	if (all) {
		path = process_path(class_name, name, NULL, "kill-all");
		answer = berth_client_call(c, "POST", path, NULL, NULL, &err);
		if (answer == NULL)
			return berth_client_fail(&err);
		if (o->json)
			return berth_client_print_json(answer, true) ? 0 : BERTH_CLIENT_EXIT_FAILED;
		printf("%s/%s: %lld killed\n", class_name, name,
		       (long long)json_integer_value(json_object_get(answer, "killedCount")));
		return 0;
	}
	if (sig != SIGKILL) {
		/* Sent to it and its process group; berthd answers at once. */
		cleanup_free char *base = process_path(class_name, name, id, "");
		cleanup_free char *shown = xstrdup(id);

		path = xasprintf("%s?signal=%d", base, sig);
		answer = berth_client_call(c, "DELETE", path, NULL, NULL, &err);
		if (answer == NULL)
			return berth_client_fail(&err);
		if (o->json)
			return berth_client_print_json(answer, true) ? 0 : BERTH_CLIENT_EXIT_FAILED;
		berth_client_sanitize(shown);
		printf("%s: sent SIG%s\n", shown,
		       berth_signal_name(sig) != NULL ? berth_signal_name(sig) : "?");
		return 0;
	}
	/* berthd answers once the process has exited: its record then says how. */
	path = process_path(class_name, name, id, "");
	answer = berth_client_call(c, "DELETE", path, NULL, NULL, &err);
	if (answer == NULL)
		return berth_client_fail(&err);
	after = berth_client_call(c, "GET", path, NULL, NULL, &err);
	if (after == NULL)
		return berth_client_fail(&err);
	if (o->json)
		return berth_client_print_json(after, true) ? 0 : BERTH_CLIENT_EXIT_FAILED;
	status = json_string_value(json_object_get(json_object_get(after, "process"), "status"));
	code = json_object_get(json_object_get(after, "process"), "exitCode");
	{
		cleanup_free char *shown = xstrdup(id);
		berth_client_sanitize(shown);
		if (json_is_integer(code))
			printf("%s: %s (exit code %lld)\n", shown,
			       status != NULL ? status : "ended",
			       (long long)json_integer_value(code));
		else
			printf("%s: %s\n", shown, status != NULL ? status : "ended");
	}
	return 0;
}

/* ---- the subcommands ---- */

int berth_client_cmd_proc(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option none[] = {{NULL, 0, NULL, 0}};
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv, struct berth_client_opts *o);
	} subs[] = {
	        {"start", proc_start},
	        {"ls", proc_ls},
	        {"logs", proc_logs},
	        {"kill", proc_kill},
	};
	const char *sub;
	int at;

	/* "+": the connection options before the subcommand (berth proc --host H ls ...). */
	if (berth_client_getopt(argc, argv, "+", none, o) != -1)
		return BERTH_CLIENT_EXIT_USAGE;
	if (optind >= argc) {
		if (o->help)
			return berth_client_help("proc");
		return berth_client_usage_error("proc",
		                                "which subcommand? start, ls, logs or kill");
	}
	sub = argv[optind];
	at = optind;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(subs); i++) {
		if (strcmp(sub, subs[i].name) != 0)
			continue;
		/* The subcommand's own argv, named "proc" so that messages point at its help. */
		argv[at] = argv[0];
		optind = 0;
		return subs[i].run(argc - at, argv + at, o);
	}
	return berth_client_usage_error("proc", "unknown subcommand `%s` (start, ls, logs or kill)",
	                                sub);
}
