/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sessions: `cd` and `export` persist across the commands of a session.
 * Each command is its own `sh -c` (any image with a POSIX shell will do,
 * busybox included): a preamble restores the session's exported variables
 * (as the shell's own `export -p` printed them) and its cwd; an epilogue
 * prints the new cwd and `export -p` to the shell's stdin, a socket whose
 * other end berthd reads (proc.c). A command's own environment and cwd
 * apply to it alone. Commands of one session run one after another, in
 * the order they came, as in a terminal.
 */
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "sandbox/sandbox-internal.h"

/*
 * $1: the session's exports, $2: the cwd, $3: the command. fd 9 keeps the
 * state socket for the epilogue, closed for the command itself so that
 * nothing it starts holds it. The command runs through eval in this
 * shell, so its `cd` and `export` stay; its syntax errors too are its own.
 * A signal sent to the command's process group (`proc kill -s TERM`) ends
 * this shell only once what runs in the foreground has ended, with that
 * one's status: a program that handles it decides, as in a terminal, and a
 * shell loop of the command's own still stops. (A trap is reset in what
 * the shell execs.)
 */
static const char preamble[] = "exec 9<&0\n"
                               "trap 'exit $?' HUP INT QUIT TERM USR1 USR2\n"
                               "eval \"$1\"\n";
static const char cd_session[] = "cd -- \"$2\" 2>/dev/null || cd /\n";
static const char cd_command[] = "cd -- \"$2\" || exit 1\n";
static const char run[] = "__berth_cmd=$3\n"
                          "shift 3\n";
static const char report[] = "{ printf '%s\\n' \"$PWD\"; export -p; } >&9 2>/dev/null\n";

struct sbx_session *sbx_session_find(struct sbx_inst *si, const char *id)
{
	for (struct sbx_session *s = si->sessions; s != NULL; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

char *sbx_shell_quote(const char *s)
{
	size_t n = 2;
	char *out, *o;

	for (const char *p = s; *p != '\0'; p++)
		n += *p == '\'' ? 4 : 1;
	out = o = xmalloc(n + 1);
	*o++ = '\'';
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return out;
}

/* Append `s` to the growing text (*buf, *len). */
static void put(char **buf, size_t *len, const char *s)
{
	size_t n = strlen(s);

	*buf = xrealloc(*buf, *len + n + 1);
	memcpy(*buf + *len, s, n + 1);
	*len += n;
}

static void put_free(char **buf, size_t *len, char *s)
{
	put(buf, len, s);
	free(s);
}

struct sbx_session *sbx_session_new(struct sbx_inst *si, const char *id, json_t *env,
                                    const char *cwd)
{
	struct sbx_session *s = xcalloc(1, sizeof(*s));
	const char *k;
	json_t *v;
	size_t len = 0;

	s->id = xstrdup(id);
	s->cwd = xstrdup(cwd != NULL ? cwd : SBX_DEFAULT_CWD);
	s->exports = xstrdup("");
	json_object_foreach (env, k, v) {
		char *q = sbx_shell_quote(json_string_value(v));
		put_free(&s->exports, &len, xasprintf("export %s=%s\n", k, q));
		free(q);
	}
	s->queue_tail = &s->queue;
	s->next = si->sessions;
	si->sessions = s;
	si->n_sessions++;
	return s;
}

void sbx_session_free(struct sbx_session *s)
{
	while (s->queue != NULL) {
		struct sbx_waiter *w = s->queue;
		s->queue = w->next;
		free(w);
	}
	free(s->id);
	free(s->cwd);
	free(s->exports);
	free(s);
}

void sbx_session_enter(struct sbx_session *s, void (*fn)(void *arg), void *arg)
{
	struct sbx_waiter *w;

	if (!s->busy) {
		s->busy = true;
		fn(arg);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->fn = fn;
	w->arg = arg;
	*s->queue_tail = w;
	s->queue_tail = &w->next;
}

void sbx_session_leave(struct sbx_session *s)
{
	struct sbx_waiter *w = s->queue;

	if (w == NULL) {
		s->busy = false;
		return;
	}
	s->queue = w->next;
	if (s->queue == NULL)
		s->queue_tail = &s->queue;
	/* Still busy: handed on to the next command. */
	w->fn(w->arg);
	free(w);
}

char **sbx_session_argv(const struct sbx_session *s, const char *command, json_t *env,
                        const char *cwd, bool want_report)
{
	char **argv = xcalloc(8, sizeof(char *));
	char *script = NULL;
	size_t len = 0, i = 0;
	const char *k;
	json_t *v;

	put(&script, &len, preamble);
	put(&script, &len, cwd != NULL ? cd_command : cd_session);
	put(&script, &len, run);
	/* This command's variables, and what they were before, put back after it. */
	json_object_foreach (env, k, v) {
		char *q = sbx_shell_quote(json_string_value(v));
		put_free(&script, &len,
		         xasprintf("__berth_s_%s=${%s+x}; __berth_v_%s=${%s-}; export %s=%s\n", k,
		                   k, k, k, k, q));
		free(q);
	}
	put(&script, &len, "eval \"$__berth_cmd\" 9<&-\n__berth_rc=$?\n");
	json_object_foreach (env, k, v)
		put_free(&script, &len,
		         xasprintf("if [ -n \"$__berth_s_%s\" ]; then %s=$__berth_v_%s; else unset "
		                   "%s; fi; unset __berth_s_%s __berth_v_%s\n",
		                   k, k, k, k, k, k));
	if (want_report)
		put(&script, &len, report);
	put(&script, &len, "exit $__berth_rc\n");
	argv[i++] = xstrdup("/bin/sh");
	argv[i++] = xstrdup("-c");
	argv[i++] = script;
	argv[i++] = xstrdup("sh");
	argv[i++] = xstrdup(s->exports);
	argv[i++] = xstrdup(cwd != NULL ? cwd : s->cwd);
	argv[i++] = xstrdup(command);
	argv[i] = NULL;
	return argv;
}

void sbx_session_update(struct sbx_session *s, const char *state, size_t len, bool keep_cwd)
{
	const char *nl = memchr(state, '\n', len);

	if (nl == NULL || memchr(state, '\0', len) != NULL)
		return; /* the command ended the shell before the epilogue */
	if (!keep_cwd && state[0] == '/') {
		free(s->cwd);
		s->cwd = xstrndup(state, (size_t)(nl - state));
	}
	free(s->exports);
	s->exports = xstrndup(nl + 1, len - (size_t)(nl + 1 - state));
}

char **sbx_env_merge(char *const *base, json_t *over)
{
	size_t n = berth_strv_len(base), cap = n + json_object_size(over) + 1, used = 0;
	char **out = xcalloc(cap, sizeof(char *));
	const char *k;
	json_t *v;

	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(base[i], '=');
		size_t kl = eq != NULL ? (size_t)(eq - base[i]) : strlen(base[i]);
		bool replaced = false;
		json_object_foreach (over, k, v)
			if (strlen(k) == kl && strncmp(k, base[i], kl) == 0)
				replaced = true;
		if (!replaced)
			out[used++] = xstrdup(base[i]);
	}
	json_object_foreach (over, k, v)
		out[used++] = xasprintf("%s=%s", k, json_string_value(v));
	out[used] = NULL;
	return out;
}
