/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `berth cp` and `berth ls`: files in an instance's container. cp goes
 * through berth's raw files API (GET and PUT .../files?path=), streamed
 * both ways: what is in memory at a time is one of libcurl's buffers, so
 * any size works. A download is written to a hidden file beside its
 * destination and named only once it is whole, so a failure (or Ctrl-C)
 * leaves no part of it behind. ls is the sandbox protocol's
 * /api/list-files.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "client/client.h"

/* ---- cp: a download ---- */

/* The hidden file of a download in progress, for a signal that ends berth to remove. */
static char partial_path[PATH_MAX + 64];
static volatile sig_atomic_t partial_set;

static void on_fatal_signal(int sig)
{
	if (partial_set)
		unlink(partial_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void watch_partial(const char *path)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct sigaction sa;

	snprintf(partial_path, sizeof(partial_path), "%s", path);
	partial_set = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

struct download {
	int fd;
	const char *what; /* where it goes, for messages */
};

static int on_download(const char *data, size_t len, void *arg, berth_error_t *err)
{
	struct download *d = arg;
	int r = berth_write_all(d->fd, data, len);

	if (r < 0)
		return berth_error_set(err, -r, "write `%s`", d->what);
	return 0;
}

/* The file a download goes to: `dst`, or the source's name in it when it is a directory. */
static int download_target(const char *src, const char *dst, char **target, berth_error_t *err)
{
	const char *base = berth_client_base_name(src);
	size_t len = strlen(dst);
	struct stat st;

	if (stat(dst, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (*base == '\0')
			return berth_error_set(
			        err, 0, "`%s` is a directory: berth cp copies single files", src);
		*target = xasprintf("%s%s%s", dst, dst[len - 1] == '/' ? "" : "/", base);
		return 0;
	}
	if (dst[len - 1] == '/')
		return berth_error_set(err, ENOTDIR, "`%s`", dst);
	*target = xstrdup(dst);
	return 0;
}

static int download(struct berth_client *c, const char *class_name, const char *name,
                    const char *src, const char *dst, berth_error_t *err)
{
	cleanup_free char *escaped = berth_client_escape(src);
	cleanup_free char *query = xasprintf("/files?path=%s", escaped);
	cleanup_free char *path = berth_client_instance_path(class_name, name, query);
	cleanup_free char *target = NULL;
	cleanup_free char *real = NULL;
	cleanup_free char *dir = NULL;
	cleanup_free char *partial = NULL;
	cleanup_close int fd = -1;
	struct download d = {.fd = STDOUT_FILENO, .what = "stdout"};
	struct stat st;
	bool exists = false;
	mode_t mask;
	char *slash;
	int r;

	if (strcmp(dst, "-") == 0)
		return berth_client_stream(c, path, on_download, &d, err);
	if (download_target(src, dst, &target, err) < 0)
		return -EINVAL;
	if (stat(target, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return berth_error_set(err, 0, "`%s` is a directory", target);
		/* A FIFO or a device (/dev/null) takes the bytes as they come: no name to give. */
		if (!S_ISREG(st.st_mode)) {
			fd = open(target, O_WRONLY | O_CLOEXEC | O_NOCTTY);
			if (fd < 0)
				return berth_error_set(err, errno, "open `%s`", target);
			d.fd = fd;
			d.what = target;
			return berth_client_stream(c, path, on_download, &d, err);
		}
		/* A symlink's target is replaced, not the link, as cp writes through it. */
		real = realpath(target, NULL);
		if (real == NULL)
			return berth_error_set(err, errno, "resolve `%s`", target);
		exists = true;
	} else if (errno != ENOENT) {
		return berth_error_set(err, errno, "stat `%s`", target);
	}
	dir = xstrdup(real != NULL ? real : target);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	partial = xasprintf("%s/.%.200s.berth-XXXXXX", slash != NULL ? dir : ".",
	                    berth_client_base_name(real != NULL ? real : target));
	fd = mkostemp(partial, O_CLOEXEC);
	if (fd < 0)
		return berth_error_set(err, errno, "create a file in `%s`",
		                       slash != NULL ? dir : ".");
	watch_partial(partial);
	d.fd = fd;
	d.what = target;
	r = berth_client_stream(c, path, on_download, &d, err);
	if (r == 0) {
		/*
		 * The file it replaces keeps its mode and owner; a new one gets
		 * the container file's mode under the umask, as cp makes it.
		 */
		const char *given = berth_client_header(c, "X-File-Mode");
		mode_t mode = given != NULL ? (mode_t)strtoul(given, NULL, 8) & 0777 : 0666;

		mask = umask(0);
		umask(mask);
		if (exists && fchown(fd, st.st_uid, st.st_gid) < 0 && errno != EPERM)
			r = berth_error_set(err, errno, "write `%s`", target);
		else if (fchmod(fd, exists ? st.st_mode & 07777 : mode & ~mask) < 0)
			r = berth_error_set(err, errno, "write `%s`", target);
		else if (close(steal_fd(&fd)) < 0)
			r = berth_error_set(err, errno, "write `%s`", target);
		else if (rename(partial, real != NULL ? real : target) < 0)
			r = berth_error_set(err, errno, "rename `%s` to `%s`", partial, target);
	}
	if (r < 0)
		unlink(partial);
	partial_set = 0;
	return r;
}

/* ---- cp: an upload ---- */

static int upload(struct berth_client *c, const char *src, const char *class_name, const char *name,
                  const char *dst, berth_error_t *err)
{
	bool from_stdin = strcmp(src, "-") == 0;
	const char *what = from_stdin ? "stdin" : src;
	const char *base = berth_client_base_name(src);
	cleanup_close int fd = -1;
	cleanup_free char *target = NULL;
	cleanup_json json_t *answer = NULL;
	int64_t size = -1;
	struct stat st;

	if (!from_stdin) {
		fd = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return berth_error_set(err, errno, "open `%s`", src);
		if (fstat(fd, &st) < 0)
			return berth_error_set(err, errno, "stat `%s`", src);
		if (S_ISDIR(st.st_mode))
			return berth_error_set(
			        err, 0, "`%s` is a directory: berth cp copies single files", src);
		/* A FIFO or a device has no size to announce: chunked, to its end. */
		if (S_ISREG(st.st_mode))
			size = (int64_t)st.st_size;
	}
	if (dst[strlen(dst) - 1] == '/') {
		if (from_stdin || *base == '\0')
			return berth_error_set(err, 0,
			                       "`%s` is a directory: name the file "
			                       "(%s/%s:%sFILE)",
			                       dst, class_name, name, dst);
		target = xasprintf("%s%s", dst, base);
	} else {
		target = xstrdup(dst);
	}
	for (int attempt = 0;; attempt++) {
		cleanup_free char *escaped = berth_client_escape(target);
		/* A file's permission bits go with it (as docker cp's do); stdin's are none. */
		cleanup_free char *query = size >= 0 ? xasprintf("/files?path=%s&mode=%o", escaped,
		                                                 (unsigned)(st.st_mode & 0777))
		                                     : xasprintf("/files?path=%s", escaped);
		cleanup_free char *path = berth_client_instance_path(class_name, name, query);

		answer = berth_client_upload(c, path, from_stdin ? STDIN_FILENO : fd, size, what,
		                             NULL, err);
		if (answer != NULL)
			return 0;
		/*
		 * A directory there: the file goes into it, under its own name,
		 * as cp does. Only a file can be read again from its start.
		 */
		if (err->code != EISDIR || attempt > 0)
			break;
		if (from_stdin || size < 0)
			return berth_error_set(
			        err, 0, "`%s` is a directory: name the file (%s/%s:%s/FILE)", dst,
			        class_name, name, strcmp(dst, "/") == 0 ? "" : dst);
		if (lseek(fd, 0, SEEK_SET) < 0)
			return berth_error_set(err, errno, "read `%s` again", src);
		free(target);
		target = xasprintf("%s%s%s", dst, strcmp(dst, "/") == 0 ? "" : "/", base);
	}
	return berth_error_ret(err);
}

int berth_client_cmd_cp(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {{NULL, 0, NULL, 0}};
	cleanup_client struct berth_client *c = NULL;
	cleanup_free char *src_class = NULL;
	cleanup_free char *dst_class = NULL;
	const char *src_name, *dst_name, *src, *dst;
	berth_error_t err;
	int r;

	if (berth_client_getopt(argc, argv, "", own, o) != -1)
		return BERTH_CLIENT_EXIT_USAGE;
	if (o->help)
		return berth_client_help("cp");
	if (o->json)
		return berth_client_usage_error("cp", "cp prints nothing: there is no --json");
	if (argc - optind < 2)
		return berth_client_usage_error("cp", "cp needs SRC and DST");
	if (argc - optind > 2)
		return berth_client_usage_error("cp", "unexpected argument `%s`", argv[optind + 2]);
	if (berth_client_parse_location(argv[optind], &src_class, &src_name, &src, &err) < 0 ||
	    berth_client_parse_location(argv[optind + 1], &dst_class, &dst_name, &dst, &err) < 0)
		return berth_client_usage_error("cp", "%s", err.message);
	if ((src_class == NULL) == (dst_class == NULL))
		return berth_client_usage_error(
		        "cp", src_class == NULL
		                      ? "one side must be in a container (CLASS/NAME:/PATH)"
		                      : "one side must be local: berth cp does not copy "
		                        "between containers");
	if (*src == '\0' || *dst == '\0')
		return berth_client_usage_error("cp", "a path is empty");
	if ((r = berth_client_connect("cp", o, &c)) != 0)
		return r;
	if (src_class != NULL)
		r = download(c, src_class, src_name, src, dst, &err);
	else
		r = upload(c, src, dst_class, dst_name, dst, &err);
	if (r < 0)
		return berth_client_fail(&err);
	return 0;
}

/* ---- ls ---- */

static int by_path(const void *a, const void *b)
{
	const char *x = json_string_value(json_object_get(*(json_t *const *)a, "relativePath"));
	const char *y = json_string_value(json_object_get(*(json_t *const *)b, "relativePath"));

	return strcmp(x != NULL ? x : "", y != NULL ? y : "");
}

static void print_files(const json_t *files)
{
	static const char *const headers[] = {"TYPE", "MODE", "SIZE", "MODIFIED", "NAME"};
	size_t n = json_array_size(files);
	cleanup_free json_t **sorted = xcalloc(n + 1, sizeof(json_t *));
	struct berth_table t;

	for (size_t i = 0; i < n; i++)
		sorted[i] = json_array_get(files, i);
	qsort(sorted, n, sizeof(json_t *), by_path);
	berth_table_init(&t, BERTH_ARRAY_SIZE(headers), headers);
	for (size_t i = 0; i < n; i++) {
		const json_t *f = sorted[i];
		const json_t *size = json_object_get(f, "size");
		int64_t ms = berth_client_parse_time(
		        json_string_value(json_object_get(f, "modifiedAt")));
		cleanup_free char *size_text = NULL;
		char when[32] = "-";
		const char *row[5];

		if (json_is_integer(size))
			size_text = xasprintf("%lld", (long long)json_integer_value(size));
		if (ms >= 0) {
			/* To the second: the milliseconds are noise in a listing. */
			berth_client_time(ms, when, sizeof(when));
			snprintf(when + 19, sizeof(when) - 19, "Z");
		}
		row[0] = json_string_value(json_object_get(f, "type"));
		row[1] = json_string_value(json_object_get(f, "mode"));
		row[2] = size_text;
		row[3] = when;
		row[4] = json_string_value(json_object_get(f, "relativePath"));
		berth_table_add(&t, row);
	}
	berth_table_print(&t, stdout);
	berth_table_free(&t);
}

int berth_client_cmd_ls(int argc, char **argv, struct berth_client_opts *o)
{
	static const struct option own[] = {
	        {"all", no_argument, NULL, 'a'},
	        {"recursive", no_argument, NULL, 'R'},
	        {NULL, 0, NULL, 0},
	};
	cleanup_client struct berth_client *c = NULL;
	cleanup_free char *class_name = NULL;
	cleanup_free char *path = NULL;
	cleanup_json json_t *answer = NULL;
	cleanup_json json_t *body = NULL;
	const char *name, *dir = ".";
	bool all = false, recursive = false;
	berth_error_t err;
	int opt, r;

	while ((opt = berth_client_getopt(argc, argv, "aR", own, o)) != -1) {
		switch (opt) {
		case 'a':
			all = true;
			break;
		case 'R':
			recursive = true;
			break;
		default:
			return BERTH_CLIENT_EXIT_USAGE;
		}
	}
	if (o->help)
		return berth_client_help("ls");
	if (optind >= argc)
		return berth_client_usage_error("ls", "which instance? Give CLASS/NAME[:/PATH]");
	if (optind + 1 < argc)
		return berth_client_usage_error("ls", "unexpected argument `%s`", argv[optind + 1]);
	/* Without :PATH, the sandbox's working directory (/workspace). */
	if (strchr(argv[optind], ':') != NULL) {
		if (berth_client_parse_location(argv[optind], &class_name, &name, &dir, &err) < 0)
			return berth_client_usage_error("ls", "%s", err.message);
		if (class_name == NULL)
			return berth_client_usage_error("ls", "`%s` is not CLASS/NAME:/PATH",
			                                argv[optind]);
	} else if (berth_client_parse_instance(argv[optind], &class_name, &name, &err) < 0) {
		return berth_client_usage_error("ls", "%s", err.message);
	}
	if ((r = berth_client_connect("ls", o, &c)) != 0)
		return r;
	body = json_pack("{s:s, s:{s:b, s:b}}", "path", dir, "options", "recursive", recursive,
	                 "includeHidden", all);
	path = berth_client_instance_path(class_name, name, "/sandbox/api/list-files");
	answer = berth_client_call(c, "POST", path, body, NULL, &err);
	if (answer == NULL)
		return berth_client_fail(&err);
	if (o->json)
		return berth_client_print_json(answer, true) ? 0 : BERTH_CLIENT_EXIT_FAILED;
	print_files(json_object_get(answer, "files"));
	return 0;
}
