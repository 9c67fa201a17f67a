/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an image's config means for a container, with Docker's rules. Only
 * libc and jansson here (it is part of libberth, which the static `berth`
 * links).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/image-run.h"
#include "berth/parse.h"
#include "berth/util.h"

/* /etc/passwd and /etc/group of an image: read at most this much. */
#define ACCOUNTS_MAX (4u * 1024u * 1024u)

static int strv_from(json_t *a, const char *what, char ***out, berth_error_t *err)
{
	size_t i;
	json_t *v;

	*out = NULL;
	if (a == NULL || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return berth_error_set_plain(err, EINVAL, "image config: %s is not an array", what);
	*out = xcalloc(json_array_size(a) + 1, sizeof(char *));
	json_array_foreach (a, i, v) {
		if (!json_is_string(v)) {
			berth_strv_free(*out);
			*out = NULL;
			return berth_error_set_plain(
			        err, EINVAL, "image config: %s[%zu] is not a string", what, i);
		}
		(*out)[i] = xstrdup(json_string_value(v));
	}
	return 0;
}

static char **concat(char *const *a, char *const *b)
{
	size_t na = berth_strv_len(a), nb = berth_strv_len(b);
	char **r = xcalloc(na + nb + 1, sizeof(char *));

	for (size_t i = 0; i < na; i++)
		r[i] = xstrdup(a[i]);
	for (size_t i = 0; i < nb; i++)
		r[na + i] = xstrdup(b[i]);
	return r;
}

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq != NULL ? (size_t)(eq - kv) : strlen(kv);
}

char **berth_image_env_merge(char *const *base, char *const *over)
{
	size_t nb = berth_strv_len(base), no = berth_strv_len(over), n = 0;
	char **r = xcalloc(nb + no + 1, sizeof(char *));

	for (size_t i = 0; i < nb; i++)
		r[n++] = xstrdup(base[i]);
	for (size_t i = 0; i < no; i++) {
		size_t k = key_len(over[i]);
		size_t j;
		for (j = 0; j < n; j++)
			if (key_len(r[j]) == k && strncmp(r[j], over[i], k) == 0)
				break;
		if (j < n)
			free(r[j]);
		else
			n++;
		r[j] = xstrdup(over[i]);
	}
	return r;
}

int berth_image_run_config(json_t *config, char *const *entrypoint, char *const *cmd,
                           char *const *env, struct berth_image_run *out, berth_error_t *err)
{
	cleanup_strv char **img_entry = NULL;
	cleanup_strv char **img_cmd = NULL;
	cleanup_strv char **img_env = NULL;
	const char *wd = json_string_value(json_object_get(config, "WorkingDir"));
	const char *user = json_string_value(json_object_get(config, "User"));
	int r;

	memset(out, 0, sizeof(*out));
	r = strv_from(json_object_get(config, "Entrypoint"), "Entrypoint", &img_entry, err);
	if (r == 0)
		r = strv_from(json_object_get(config, "Cmd"), "Cmd", &img_cmd, err);
	if (r == 0)
		r = strv_from(json_object_get(config, "Env"), "Env", &img_env, err);
	if (r < 0)
		return r;
	/*
	 * Docker's rules: an entrypoint given replaces the image's ENTRYPOINT
	 * and drops its CMD (as @cloudflare/containers' `entrypoint` does); a
	 * command given replaces CMD only.
	 */
	if (entrypoint != NULL)
		out->argv = concat(entrypoint, cmd);
	else
		out->argv = concat(img_entry, cmd != NULL ? cmd : img_cmd);
	if (out->argv[0] == NULL) {
		berth_image_run_free(out);
		return berth_error_set_plain(err, EINVAL,
		                             "the image has no command (no Entrypoint or Cmd) and "
		                             "none was given");
	}
	out->env = berth_image_env_merge(img_env, env);
	out->workdir = wd != NULL && wd[0] != '\0' ? xstrdup(wd) : NULL;
	out->user = user != NULL && user[0] != '\0' ? xstrdup(user) : NULL;
	out->port = berth_image_exposed_port(config);
	return 0;
}

void berth_image_run_free(struct berth_image_run *r)
{
	berth_strv_free(r->argv);
	berth_strv_free(r->env);
	free(r->workdir);
	free(r->user);
	memset(r, 0, sizeof(*r));
}

uint16_t berth_image_exposed_port(json_t *config)
{
	json_t *ports = json_object_get(config, "ExposedPorts");
	const char *key;
	json_t *v;
	uint16_t found = 0;

	if (!json_is_object(ports) || json_object_size(ports) != 1)
		return 0;
	json_object_foreach (ports, key, v) {
		char *end;
		unsigned long p = strtoul(key, &end, 10);
		if (p > 0 && p <= 65535 && (*end == '\0' || strcmp(end, "/tcp") == 0))
			found = (uint16_t)p;
	}
	return found;
}

/*
 * The image's view of a file: the topmost layer that has it, unless a
 * whiteout (or an opaque directory, which we do not chase) hides it.
 */
static int read_image_file(char *const *layers, const char *path, char **out, berth_error_t *err)
{
	for (size_t i = 0; layers[i] != NULL; i++) {
		cleanup_close int root = open(layers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		cleanup_close int fd = -1;
		struct stat st;
		size_t len;

		if (root < 0)
			return berth_error_set(err, errno, "open layer `%s`", layers[i]);
		fd = berth_open_in_root(root, path, O_PATH, 0);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) < 0 || S_ISCHR(st.st_mode))
			return -ENOENT;
		return berth_read_file_at(root, path + 1, ACCOUNTS_MAX, out, &len, err);
	}
	return -ENOENT;
}

/* Field 3 (and 4) of the line of /etc/passwd or /etc/group whose field 1 is `name`. */
static bool find_account(const char *text, const char *name, uint32_t *id, uint32_t *gid)
{
	size_t n = strlen(name);

	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *next = strchr(line, '\n');
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			const char *f = strchr(line + n + 1, ':'); /* after the password */
			char *end;
			unsigned long v;
			if (f == NULL)
				return false;
			v = strtoul(f + 1, &end, 10);
			if (end == f + 1 || *end != ':' || v > UINT32_MAX)
				return false;
			*id = (uint32_t)v;
			if (gid != NULL) {
				v = strtoul(end + 1, &end, 10);
				if (*end != ':' || v > UINT32_MAX)
					return false;
				*gid = (uint32_t)v;
			}
			return true;
		}
		line = next != NULL ? next + 1 : NULL;
	}
	return false;
}

static bool numeric(const char *s, uint32_t *v)
{
	char *end;
	unsigned long n;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (*end != '\0' || errno != 0 || n > UINT32_MAX)
		return false;
	*v = (uint32_t)n;
	return true;
}

int berth_image_user(char *const *layers, const char *user, uint32_t *uid, uint32_t *gid,
                     berth_error_t *err)
{
	cleanup_free char *name = xstrdup(user);
	cleanup_free char *passwd = NULL;
	char *group = strchr(name, ':');
	bool have_gid = false;

	if (group != NULL)
		*group++ = '\0';
	*gid = 0;
	if (numeric(name, uid)) {
		/* A numeric user takes its group from passwd when it has an entry, else 0. */
		if (read_image_file(layers, "/etc/passwd", &passwd, NULL) == 0) {
			for (const char *line = passwd; line != NULL && *line != '\0';) {
				const char *next = strchr(line, '\n');
				unsigned u, g;
				if (sscanf(line, "%*[^:]:%*[^:]:%u:%u:", &u, &g) == 2 &&
				    u == *uid) {
					*gid = g;
					break;
				}
				line = next != NULL ? next + 1 : NULL;
			}
		}
	} else {
		if (read_image_file(layers, "/etc/passwd", &passwd, err) < 0 ||
		    !find_account(passwd, name, uid, gid))
			return berth_error_set_plain(
			        err, ENOENT, "user `%s` of the image is not in its /etc/passwd",
			        name);
		have_gid = true;
	}
	(void)have_gid;
	if (group != NULL) {
		cleanup_free char *groups = NULL;
		if (numeric(group, gid))
			return 0;
		if (read_image_file(layers, "/etc/group", &groups, err) < 0 ||
		    !find_account(groups, group, gid, NULL))
			return berth_error_set_plain(
			        err, ENOENT, "group `%s` of the image is not in its /etc/group",
			        group);
	}
	return 0;
}
