/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The last steps of every process berth starts in a container (an entrypoint
 * or an exec): give up privileges, look the command up, install the seccomp
 * filter, execve.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "berth/util.h"
#include "runtime-internal.h"
#include "security.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *env_path(char *const *env)
{
	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		if (strncmp(env[i], "PATH=", 5) == 0)
			return env[i] + 5;
	return DEFAULT_PATH;
}

/*
 * `file` is the file execve() was given (NULL when PATH was searched and
 * nothing found), `searched` the PATH that was searched, if any.
 */
static void exec_failed(const char *cmd, const char *file, const char *searched, int errnum,
                        berth_error_t *err)
{
	if (errnum == ENOENT && file != NULL && access(file, F_OK) == 0)
		/* The file is there: execve's ENOENT is about its interpreter. */
		berth_error_set_plain(
		        err, ENOENT,
		        "execute `%s`: its interpreter or dynamic loader is missing in the "
		        "image",
		        file);
	else if (errnum == ENOENT && searched != NULL)
		berth_error_set_plain(err, ENOENT, "executable not found in image: %s (PATH=%s)",
		                      cmd, searched);
	else if (errnum == ENOENT)
		berth_error_set_plain(err, ENOENT, "executable not found in image: %s", cmd);
	else if (errnum == EACCES)
		berth_error_set_plain(err, EACCES, "permission denied executing `%s`",
		                      file != NULL ? file : cmd);
	else
		berth_error_set(err, errnum, "execute `%s`", file != NULL ? file : cmd);
	err->kind = BERTH_ERROR_KIND_EXEC;
}

void berth_exec_command(char *const *argv, char *const *env, uint32_t uid, uint32_t gid,
                        const struct sock_fprog *seccomp, berth_error_t *err)
{
	const char *cmd = argv[0];
	const char *search;
	char candidate[PATH_MAX];
	bool saw_eacces = false;
	int r;

	r = berth_caps_drop(uid, gid, err);
	if (r < 0)
		return;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		berth_error_set(err, errno, "set no_new_privs");
		return;
	}
	/* The filter goes on last: from here on, only what the image may do. */
	r = seccomp != NULL ? berth_seccomp_install(seccomp) : 0;
	if (r < 0) {
		berth_error_set(err, -r, "install the seccomp filter");
		return;
	}

	if (strchr(cmd, '/') != NULL) {
		execve(cmd, argv, env);
		exec_failed(cmd, cmd, NULL, errno, err);
		return;
	}
	/* Like execvp(), but with the container's PATH, not ours. */
	search = env_path(env);
	for (const char *p = search;;) {
		const char *colon = strchr(p, ':');
		size_t len = colon != NULL ? (size_t)(colon - p) : strlen(p);
		int n = snprintf(candidate, sizeof(candidate), "%.*s%s%s", (int)len, p,
		                 len > 0 ? "/" : "", cmd);

		if (n > 0 && (size_t)n < sizeof(candidate)) {
			execve(candidate, argv, env);
			if (errno == EACCES)
				saw_eacces = true;
			else if ((errno != ENOENT && errno != ENOTDIR) ||
			         (errno == ENOENT && access(candidate, F_OK) == 0)) {
				exec_failed(cmd, candidate, NULL, errno, err);
				return;
			}
		}
		if (colon == NULL)
			break;
		p = colon + 1;
	}
	exec_failed(cmd, NULL, search, saw_eacces ? EACCES : ENOENT, err);
}
