/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `berth exec CLASS/NAME [--] COMMAND [ARG...]`: POST .../exec with
 * stream=true and base64 output, so that the command's bytes reach stdout
 * and stderr exactly and as they come; berth then exits with the command's
 * exit status (127 when it is not in the image, 126 when it cannot run).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "berth/base64.h"
#include "berth/parse.h"
#include "berth/util.h"
#include "client/client.h"

#define STDIN_MAX (16u << 20) /* berthd's bound for stdin given to exec */

struct exec_out {
	struct berth_sse sse;
	int exit_code; /* -1 until the exit event */
	char *error;   /* an error event's message */
};

static int write_decoded(FILE *f, const char *b64, berth_error_t *err)
{
	unsigned char *bytes = NULL;
	size_t n = 0;

	if (berth_base64_decode(b64, strlen(b64), &bytes, &n) < 0)
		return berth_error_set_plain(err, EPROTO, "berthd sent output that is not base64");
	if ((n > 0 && fwrite(bytes, 1, n, f) != n) || fflush(f) == EOF) {
		free(bytes);
		return berth_error_set(err, errno != 0 ? errno : EIO, "write the command's output");
	}
	free(bytes);
	return 0;
}

static int on_event(const char *id, const char *type, const char *data, void *arg,
                    berth_error_t *err)
{
	struct exec_out *o = arg;
	cleanup_json json_t *ev = json_loads(data, 0, NULL);
	const char *kind = json_string_value(json_object_get(ev, "type"));
	const char *text = json_string_value(json_object_get(ev, "data"));
	(void)id;
	(void)type;

	if (kind == NULL)
		return berth_error_set_plain(err, EPROTO,
		                             "berthd sent an event berth does not know");
	if (strcmp(kind, "stdout") == 0 && text != NULL)
		return write_decoded(stdout, text, err);
	if (strcmp(kind, "stderr") == 0 && text != NULL)
		return write_decoded(stderr, text, err);
	if (strcmp(kind, "exit") == 0)
		o->exit_code = (int)json_integer_value(json_object_get(ev, "exitCode"));
	if (strcmp(kind, "error") == 0) {
		const char *msg = json_string_value(json_object_get(ev, "error"));
		free(o->error);
		o->error = xstrdup(msg != NULL ? msg : "the command failed");
	}
	return 0;
}

static int on_data(const char *data, size_t len, void *arg, berth_error_t *err)
{
	struct exec_out *o = arg;
	return berth_sse_feed(&o->sse, data, len, err);
}

/* All of stdin, for a command that reads it. */
static int read_stdin(json_t *body, berth_error_t *err)
{
	size_t len = 0, cap = 64 * 1024;
	unsigned char *buf = xmalloc(cap);
	char *b64;

	for (;;) {
		ssize_t n;
		if (len == cap) {
			if (cap >= STDIN_MAX) {
				free(buf);
				return berth_error_set_plain(err, EFBIG,
				                             "stdin: more than 16 MiB to send");
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(STDIN_FILENO, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return berth_error_set(err, errno, "read stdin");
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	b64 = berth_base64_encode(buf, len, NULL);
	json_object_set_new(body, "stdinBase64", json_string(b64));
	free(b64);
	free(buf);
	return 0;
}

int berth_client_cmd_exec(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {
	        {"env", required_argument, NULL, 'e'},
	        {"workdir", required_argument, NULL, 'w'},
	        {"timeout", required_argument, NULL, 'T'},
	        {"stdin", no_argument, NULL, 'i'},
	        {"interactive", no_argument, NULL, 'i'},
	        {"tty", no_argument, NULL, 't'},
	        {NULL, 0, NULL, 0},
	};
	cleanup_client struct berth_client *c = NULL;
	cleanup_free char *class_name = NULL;
	cleanup_free char *path = NULL;
	cleanup_json json_t *body = json_pack("{s:b, s:s}", "stream", 1, "encoding", "base64");
	cleanup_json json_t *env = json_object();
	struct exec_out out = {.exit_code = -1};
	const char *name;
	berth_error_t err;
	json_t *args;
	uint64_t ms;
	long status = 0;
	bool with_stdin = false, tty = false;
	int opt, r;

	/* "+": options end at CLASS/NAME; what follows is the command's own. */
	while ((opt = berth_client_getopt(argc, argv, "+e:w:it", own, o)) != -1) {
		switch (opt) {
		case 'e':
			if (berth_client_parse_kv("--env", optarg, env, &err) < 0)
				return berth_client_usage_error("exec", "%s", err.message);
			break;
		case 'w':
			if (optarg[0] != '/')
				return berth_client_usage_error(
				        "exec", "--workdir: `%s` is not an absolute path", optarg);
			json_object_set_new(body, "cwd", json_string(optarg));
			break;
		case 't':
			tty = true;
			break;
		case 'T':
			if (berth_parse_duration(optarg, &ms, &err) < 0 || ms == 0)
				return berth_client_usage_error("exec", "--timeout: %s",
				                                ms == 0 ? "must be more than 0"
				                                        : err.message);
			json_object_set_new(body, "timeoutMs", json_integer((json_int_t)ms));
			break;
		case 'i':
			with_stdin = true;
			break;
		default:
			return BERTH_CLIENT_EXIT_USAGE;
		}
	}
	if (o->help)
		return berth_client_help("exec");
	if (o->json)
		return berth_client_usage_error("exec", "the command's output is its own: there is "
		                                        "no --json");
	if (optind >= argc)
		return berth_client_usage_error("exec", "which instance? Give CLASS/NAME");
	if (berth_client_parse_instance(argv[optind], &class_name, &name, &err) < 0)
		return berth_client_usage_error("exec", "%s", err.message);
	optind++;
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc)
		return berth_client_usage_error("exec",
		                                "which command? berth exec %s -- COMMAND "
		                                "[ARG...]",
		                                argv[optind - 1]);
	args = json_array();
	for (int i = optind; i < argc; i++)
		json_array_append_new(args, json_string(argv[i]));
	json_object_set_new(body, "argv", args);
	if (json_object_size(env) > 0)
		json_object_set(body, "env", env);
	if (tty && json_object_get(body, "timeoutMs") != NULL)
		return berth_client_usage_error("exec", "--timeout is for commands without --tty");
	if (tty) {
		if ((r = berth_client_connect("exec", o, &c)) != 0)
			return r;
		path = berth_client_instance_path(class_name, name, "/exec");
		json_object_del(body, "stream");
		json_object_del(body, "encoding");
		return berth_client_exec_tty(c, path, body, with_stdin);
	}
	if (with_stdin && read_stdin(body, &err) < 0)
		return berth_client_fail(&err);
	if ((r = berth_client_connect("exec", o, &c)) != 0)
		return r;
	path = berth_client_instance_path(class_name, name, "/exec");
	berth_sse_init(&out.sse, on_event, &out);
	r = berth_client_stream_post(c, path, body, on_data, &out, &status, &err);
	berth_sse_free(&out.sse);
	fflush(stdout);
	if (r < 0) {
		free(out.error);
		berth_client_fail(&err);
		/* As a shell says: not found, or found but not runnable. */
		return status == 404 && strstr(err.message, "not found") != NULL ? 127
		       : status == 500                                           ? 126
		                       : BERTH_CLIENT_EXIT_FAILED;
	}
	if (out.error != NULL || out.exit_code < 0) {
		fprintf(stderr, "berth: %s\n",
		        out.error != NULL ? out.error : "the answer ended before the command did");
		free(out.error);
		return BERTH_CLIENT_EXIT_FAILED;
	}
	return out.exit_code;
}
