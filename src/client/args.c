/* SPDX-License-Identifier: Apache-2.0 */
/* Command-line helpers of the client: shared options, operands, --host. */
#include <errno.h>
#include <string.h>

#include <curl/curl.h>

#include "berth/util.h"
#include "client/client.h"

enum {
	OPT_SOCKET = 1000,
	OPT_HOST,
	OPT_TOKEN_FILE,
	OPT_JSON,
};

static const struct option common_options[] = {
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"host", required_argument, NULL, OPT_HOST},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
};

#define MAX_OPTIONS 32

static void bad_option(const char *command, const char *arg, const char *shorts)
{
	/* Before the command (berth --bogus ps), the program's own name is argv[0]. */
	if (strcmp(command, "berth") == 0)
		command = NULL;
	if (optopt == 0)
		berth_client_usage_error(command, "unknown option `%s`", arg);
	else if (optopt < 256 && arg[0] == '-' && arg[1] != '-' && strchr(shorts, optopt) == NULL)
		berth_client_usage_error(command, "unknown option `-%c`", optopt);
	else if (optopt < 256 && arg[0] == '-' && arg[1] != '-')
		berth_client_usage_error(command, "option `-%c` needs a value", optopt);
	else if (strchr(arg, '=') != NULL)
		berth_client_usage_error(command, "option `%.*s` takes no value",
		                         (int)(strchr(arg, '=') - arg), arg);
	else
		berth_client_usage_error(command, "option `%s` needs a value", arg);
}

int berth_client_getopt(int argc, char **argv, const char *shortopts, const struct option *own,
                        struct berth_client_opts *o)
{
	/* The table getopt sees: the command's own, then the common ones (and the end). */
	static struct option all[MAX_OPTIONS];
	static const struct option *built_for;
	cleanup_free char *shorts = xasprintf("%sh", shortopts);
	int c;

	if (built_for != own) {
		size_t n = 0;
		for (; own[n].name != NULL; n++) {
			if (n + BERTH_ARRAY_SIZE(common_options) + 1 >= MAX_OPTIONS)
				break;
			all[n] = own[n];
		}
		memcpy(&all[n], common_options, sizeof(common_options));
		memset(&all[n + BERTH_ARRAY_SIZE(common_options)], 0, sizeof(all[0]));
		built_for = own;
	}
	opterr = 0; /* our messages name the command: "berth ps: ..." */
	for (;;) {
		c = getopt_long(argc, argv, shorts, all, NULL);
		switch (c) {
		case '?':
			bad_option(argv[0], argv[optind - 1], shorts);
			return '?';
		case OPT_SOCKET:
			o->socket = optarg;
			break;
		case OPT_HOST:
			o->host = optarg;
			break;
		case OPT_TOKEN_FILE:
			o->token_file = optarg;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case 'h':
			o->help = true;
			break;
		default:
			return c;
		}
	}
}

int berth_client_parse_instance(const char *s, char **class_name, const char **name,
                                berth_error_t *err)
{
	const char *slash = strchr(s, '/');
	char *copy;

	if (slash == NULL || slash == s || slash[1] == '\0')
		return berth_error_set(err, 0, "`%s` is not CLASS/NAME (e.g. Site/alice)", s);
	/*
	 * berthd splits the decoded path at '/', so a name containing one could
	 * not be addressed: say so here rather than let it be a 404.
	 */
	if (strchr(slash + 1, '/') != NULL)
		return berth_error_set(err, 0, "`%s`: an instance name cannot contain `/`", s);
	copy = xstrdup(s);
	copy[slash - s] = '\0';
	*class_name = copy;
	*name = copy + (slash - s) + 1;
	return 0;
}

int berth_client_parse_kv(const char *what, const char *s, json_t *obj, berth_error_t *err)
{
	const char *eq = strchr(s, '=');
	cleanup_free char *key = NULL;

	if (eq == NULL || eq == s)
		return berth_error_set(err, 0, "%s `%s` is not KEY=VALUE", what, s);
	key = xstrndup(s, (size_t)(eq - s));
	json_object_set_new(obj, key, json_string(eq + 1));
	return 0;
}

int berth_client_base_url(const char *host, char **url, berth_error_t *err)
{
	cleanup_free char *given = NULL;
	char *scheme = NULL, *port = NULL, *path = NULL, *h = NULL, *full = NULL;
	CURLU *u = curl_url();
	size_t len;
	int ret = 0;

	if (host == NULL || *host == '\0') {
		ret = berth_error_set(err, 0, "the host is empty (use HOST:PORT or a URL)");
		goto out;
	}
	given = strstr(host, "://") != NULL ? xstrdup(host) : xasprintf("http://%s", host);
	/* curl's own parser, so that what is accepted is what curl will connect to. */
	if (curl_url_set(u, CURLUPART_URL, given, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK) {
		ret = berth_error_set(err, 0, "`%s` is not HOST:PORT or an http:// URL", host);
		goto out;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		ret = berth_error_set(err, 0, "`%s`: berthd speaks http or https, not %s", host,
		                      scheme);
		goto out;
	}
	/* A bare HOST would silently mean port 80; berthd has no usual port. */
	if (strstr(host, "://") == NULL && curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK) {
		ret = berth_error_set(
		        err, 0, "`%s` has no port (use HOST:PORT, e.g. 127.0.0.1:7070)", host);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &path, 0) == CURLUE_OK) {
		ret = berth_error_set(err, 0, "`%s`: a query has no place in the API's address",
		                      host);
		goto out;
	}
	/* Keep the path as a prefix (berthd behind a reverse proxy), minus trailing '/'. */
	curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
		ret = berth_error_set(err, 0, "`%s` is not HOST:PORT or an http:// URL", host);
		goto out;
	}
	*url = xstrdup(full);
	len = strlen(*url);
	while (len > 0 && (*url)[len - 1] == '/')
		(*url)[--len] = '\0';
out:
	curl_free(scheme);
	curl_free(port);
	curl_free(path);
	curl_free(h);
	curl_free(full);
	curl_url_cleanup(u);
	return ret;
}

int berth_client_parse_location(const char *s, char **class_name, const char **name,
                                const char **path, berth_error_t *err)
{
	const char *colon = strchr(s, ':');
	const char *slash = colon != NULL ? memchr(s, '/', (size_t)(colon - s)) : NULL;
	char *copy;

	*class_name = NULL;
	*name = NULL;
	*path = s;
	/*
	 * CLASS/NAME:PATH has exactly one '/' before its first ':', neither
	 * first nor last; ./x and /x are always local, as in docker cp.
	 */
	if (colon == NULL || slash == NULL || slash == s || slash + 1 == colon || s[0] == '.' ||
	    memchr(slash + 1, '/', (size_t)(colon - slash - 1)) != NULL)
		return 0;
	if (colon[1] != '/')
		return berth_error_set(err, 0,
		                       "`%s`: the path in the container must be absolute "
		                       "(CLASS/NAME:/PATH)",
		                       s);
	copy = xstrdup(s);
	copy[slash - s] = '\0';
	copy[colon - s] = '\0';
	*class_name = copy;
	*name = copy + (slash - s) + 1;
	*path = copy + (colon - s) + 1;
	return 0;
}

const char *berth_client_base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* What sh takes as part of a word, with no meaning of its own anywhere in one. */
static bool shell_safe(const char *w)
{
	if (*w == '\0')
		return false;
	for (; *w != '\0'; w++)
		if (!((*w >= 'a' && *w <= 'z') || (*w >= 'A' && *w <= 'Z') ||
		      (*w >= '0' && *w <= '9') || strchr("_@%+=:,./-", *w) != NULL))
			return false;
	return true;
}

char *berth_client_shell_join(char *const *argv, size_t n)
{
	size_t len = 1;
	char *out, *o;

	/* At worst each byte is '\'' (4 bytes), plus the quotes and a space. */
	for (size_t i = 0; i < n; i++)
		len += strlen(argv[i]) * 4 + 3;
	out = o = xmalloc(len);
	for (size_t i = 0; i < n; i++) {
		const char *w = argv[i];

		if (i > 0)
			*o++ = ' ';
		if (shell_safe(w)) {
			o = stpcpy(o, w);
			continue;
		}
		/* Inside single quotes nothing is special but the quote itself: '\'' */
		*o++ = '\'';
		for (; *w != '\0'; w++) {
			if (*w == '\'')
				o = stpcpy(o, "'\\''");
			else
				*o++ = *w;
		}
		*o++ = '\'';
	}
	*o = '\0';
	return out;
}
