/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox's pure parts: shell quoting, environments, UTF-8 for JSON,
 * and sessions' scripts run for real by the host's /bin/sh the way berthd
 * runs them in a container (stdin a socket pair whose other end gets the
 * session's state back), so that cd and export persist, a command's own env
 * and cwd do not, and hostile values survive the round trip.
 */
#include <errno.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "berth/util.h"
#include "sandbox/sandbox-internal.h"

extern char **environ;

/* The shell the scripts run in: each POSIX shell there is, as `sh` (argv[0] is /bin/sh). */
static const char *shell = "/bin/sh";

static void test_shell_quote(void **state)
{
	char *q;
	(void)state;

	q = sbx_shell_quote("plain");
	assert_string_equal(q, "'plain'");
	free(q);
	q = sbx_shell_quote("it's");
	assert_string_equal(q, "'it'\\''s'");
	free(q);
	q = sbx_shell_quote("");
	assert_string_equal(q, "''");
	free(q);
}

static void test_env_merge(void **state)
{
	char *base[] = {(char *)"PATH=/bin", (char *)"A=1", (char *)"AB=x", NULL};
	json_t *over = json_pack("{s:s, s:s}", "A", "2", "B", "3");
	char **out = sbx_env_merge(base, over);
	(void)state;

	assert_int_equal(berth_strv_len(out), 4);
	assert_string_equal(out[0], "PATH=/bin");
	assert_string_equal(out[1], "AB=x"); /* a longer name with the same start stays */
	assert_string_equal(out[2], "A=2");
	assert_string_equal(out[3], "B=3");
	berth_strv_free(out);
	json_decref(over);
}

static void test_utf8(void **state)
{
	json_t *j;
	(void)state;

	assert_int_equal(sbx_utf8_tail("ab", 2), 0);
	assert_int_equal(sbx_utf8_tail("a\xc3", 2), 1);
	assert_int_equal(sbx_utf8_tail("a\xc3\xa9", 3), 0);
	assert_int_equal(sbx_utf8_tail("\xe2\x82", 2), 2);
	assert_int_equal(sbx_utf8_tail("\xe2\x82\xac", 3), 0);
	assert_int_equal(sbx_utf8_tail("\xf0\x9f\x98", 3), 3);
	j = sbx_json_text("h\xc3\xa9", 3);
	assert_string_equal(json_string_value(j), "h\xc3\xa9");
	json_decref(j);
	/* Not UTF-8: each bad byte becomes U+FFFD; a surrogate is bad too. */
	j = sbx_json_text("a\xff"
	                  "b\xed\xa0\x80",
	                  6);
	assert_string_equal(json_string_value(j), "a\xef\xbf\xbd"
	                                          "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(j);
}

/* One command of session `s` through /bin/sh, as berthd runs it; returns its exit status. */
static int run(struct sbx_session *s, const char *command, json_t *env, const char *cwd, char *out,
               size_t out_size)
{
	char **argv = sbx_session_argv(s, command, env, cwd, true);
	posix_spawn_file_actions_t fa;
	char state[65536];
	size_t n = 0, st = 0;
	int sv[2], pipefd[2], status;
	ssize_t r;
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	assert_int_equal(posix_spawn(&pid, shell, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	berth_strv_free(argv);
	close(sv[1]);
	close(pipefd[1]);
	shutdown(sv[0], SHUT_WR); /* no input: the command's stdin ends at once */
	while ((r = read(pipefd[0], out + n, out_size - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	while ((r = read(sv[0], state + st, sizeof(state) - 1 - st)) > 0)
		st += (size_t)r;
	state[st] = '\0';
	close(pipefd[0]);
	close(sv[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	sbx_session_update(s, state, st, cwd != NULL);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void session_round_trips(void)
{
	static const char hostile[] = "it's a \"test\" $HOME `id` \\n\nsecond line 'é'";
	struct sbx_inst si;
	struct sbx_session *s;
	json_t *env = json_pack("{s:s}", "GREETING", hostile);
	json_t *once;
	char out[4096], want[512];

	memset(&si, 0, sizeof(si));
	s = sbx_session_new(&si, "t", env, "/tmp");
	json_decref(env);
	assert_ptr_equal(sbx_session_find(&si, "t"), s);
	assert_null(sbx_session_find(&si, "u"));

	assert_int_equal(run(s, "printf '%s|' \"$GREETING\"; pwd", NULL, NULL, out, sizeof(out)),
	                 0);
	snprintf(want, sizeof(want), "%s|/tmp\n", hostile);
	assert_string_equal(out, want);

	/* cd and export persist, also values the shell must quote. */
	assert_int_equal(run(s, "cd / && export X='a '\"'\"'b' && Y=notexported", NULL, NULL, out,
	                     sizeof(out)),
	                 0);
	assert_int_equal(run(s, "pwd; echo \"$X|${Y-unset}\"", NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "/\na 'b|unset\n");
	assert_string_equal(s->cwd, "/");
	run(s, "printf '%s' \"$GREETING\"", NULL, NULL, out, sizeof(out));
	assert_string_equal(out, hostile);

	/* A command's own env and cwd are its own. */
	once = json_pack("{s:s, s:s}", "X", "tmp", "NEW", "n");
	assert_int_equal(run(s, "echo \"$X $NEW\"; pwd", once, "/usr", out, sizeof(out)), 0);
	json_decref(once);
	assert_string_equal(out, "tmp n\n/usr\n");
	assert_int_equal(run(s, "echo \"$X|${NEW-unset}\"; pwd", NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "a 'b|unset\n/\n");

	/* Its status is the command's; one that exits keeps the session as it was. */
	assert_int_equal(run(s, "cd /usr; exit 3", NULL, NULL, out, sizeof(out)), 3);
	assert_int_equal(run(s, "pwd", NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "/\n");
	assert_int_equal(run(s, "false", NULL, NULL, out, sizeof(out)), 1);
	/* stdin is empty; the state channel is not the command's to read. */
	assert_int_equal(run(s, "cat; echo done", NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "done\n");
	/* A cwd that went away: the next command starts in /. */
	assert_int_equal(run(s, "mkdir -p /tmp/berth-sbx-$$ && cd /tmp/berth-sbx-$$ && rmdir $PWD",
	                     NULL, NULL, out, sizeof(out)),
	                 0);
	assert_int_equal(run(s, "pwd", NULL, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "/\n");
	/* A cwd of the command's own that does not exist fails it. */
	assert_int_not_equal(run(s, "pwd", NULL, "/nonexistent-berth", out, sizeof(out)), 0);

	si.sessions = s->next;
	sbx_session_free(s);
}

/* dash (Debian's /bin/sh), bash in POSIX mode, busybox ash (the test image's). */
static void test_session_round_trips(void **state)
{
	static const char *const shells[] = {"/bin/sh", "/bin/bash", "/bin/busybox"};
	(void)state;

	for (size_t i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		if (access(shells[i], X_OK) != 0)
			continue;
		shell = shells[i];
		print_message("  with %s\n", shell);
		session_round_trips();
	}
}

static int entered;

static void enter_fn(void *arg)
{
	entered = entered * 10 + (int)(intptr_t)arg;
}

static void test_session_queue(void **state)
{
	struct sbx_inst si;
	struct sbx_session *s;
	(void)state;

	memset(&si, 0, sizeof(si));
	s = sbx_session_new(&si, "q", NULL, NULL);
	assert_string_equal(s->cwd, SBX_DEFAULT_CWD);
	entered = 0;
	sbx_session_enter(s, enter_fn, (void *)1);
	sbx_session_enter(s, enter_fn, (void *)2);
	sbx_session_enter(s, enter_fn, (void *)3);
	assert_int_equal(entered, 1); /* the others wait, in order */
	sbx_session_leave(s);
	assert_int_equal(entered, 12);
	sbx_session_leave(s);
	assert_int_equal(entered, 123);
	assert_true(s->busy);
	sbx_session_leave(s);
	assert_false(s->busy);
	sbx_session_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_shell_quote),   cmocka_unit_test(test_env_merge),
	        cmocka_unit_test(test_utf8),          cmocka_unit_test(test_session_round_trips),
	        cmocka_unit_test(test_session_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
