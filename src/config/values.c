/* SPDX-License-Identifier: Apache-2.0 */
/* Typed values of the configuration, each checked with a message in the user's terms. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "berth/parse.h"
#include "berth/util.h"
#include "config/config-internal.h"

#define SHOW_MAX 60

uint64_t berth_config_round(double x)
{
	return (uint64_t)(x + 0.5);
}

const char *berth_config_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
	default:
		return "null";
	}
}

char *berth_config_show(const struct berth_config_ctx *c, const char *path, const json_t *v)
{
	const struct berth_config_pos *pos = berth_config_index_find(&c->idx, path);
	size_t len;
	char *s;

	if (pos == NULL) {
		s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		return s ? s : xstrdup("?");
	}
	/* As written: "1e3" stays 1e3 and a string keeps its escapes. */
	len = pos->val_end - pos->val_off;
	if (len <= SHOW_MAX)
		return xstrndup(c->text + pos->val_off, len);
	len = SHOW_MAX - 3;
	while (len > 0 && ((unsigned char)c->text[pos->val_off + len] & 0xc0) == 0x80)
		len--;
	s = xmalloc(len + 4);
	memcpy(s, c->text + pos->val_off, len);
	memcpy(s + len, "...", 4);
	return s;
}

bool berth_config_type_error(struct berth_config_ctx *c, const char *path, const json_t *v,
                             const char *expected)
{
	berth_config_error(c, path, "is %s, expected %s", berth_config_type_name(v), expected);
	return false;
}

bool berth_config_get_string(struct berth_config_ctx *c, const char *path, const json_t *v,
                             bool allow_empty, const char **out)
{
	if (!json_is_string(v))
		return berth_config_type_error(c, path, v, "a string");
	if (!allow_empty && json_string_length(v) == 0) {
		berth_config_error(c, path, "is empty");
		return false;
	}
	*out = json_string_value(v);
	return true;
}

bool berth_config_get_bool(struct berth_config_ctx *c, const char *path, const json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return berth_config_type_error(c, path, v, "true or false");
	*out = json_is_true(v);
	return true;
}

bool berth_config_get_uint(struct berth_config_ctx *c, const char *path, const json_t *v,
                           uint64_t min, uint64_t max, const char *expected, uint64_t *out)
{
	cleanup_free char *shown = NULL;
	uint64_t n;

	if (!json_is_number(v))
		return berth_config_type_error(c, path, v, expected);
	shown = berth_config_show(c, path, v);
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d < 0)
			goto negative;
		/* 2^64 as a double; anything at or above it is out of range anyway. */
		n = d >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)d;
		if (n != UINT64_MAX && (double)n != d) {
			berth_config_error(c, path, "%s is not a whole number", shown);
			return false;
		}
	} else {
		json_int_t i = json_integer_value(v);
		if (i < 0)
			goto negative;
		n = (uint64_t)i;
	}
	if (n < min || n > max) {
		if (max == UINT64_MAX)
			berth_config_error(c, path, "%s is out of range (at least %llu)", shown,
			                   (unsigned long long)min);
		else
			berth_config_error(c, path, "%s is out of range (%llu-%llu)", shown,
			                   (unsigned long long)min, (unsigned long long)max);
		return false;
	}
	*out = n;
	return true;
negative:
	berth_config_error(c, path, "%s is negative, expected %s", shown, expected);
	return false;
}

bool berth_config_get_port(struct berth_config_ctx *c, const char *path, const json_t *v,
                           uint16_t *out)
{
	uint64_t n;

	if (!berth_config_get_uint(c, path, v, 1, 65535, "a port number (1-65535)", &n))
		return false;
	*out = (uint16_t)n;
	return true;
}

#define DURATION_HINT "(use 30s, 10m, 2h or seconds)"

bool berth_config_get_duration(struct berth_config_ctx *c, const char *path, const json_t *v,
                               uint64_t min_ms, uint64_t *out)
{
	cleanup_free char *shown = NULL;
	uint64_t ms;

	if (!json_is_string(v) && !json_is_number(v))
		return berth_config_type_error(c, path, v, "a duration " DURATION_HINT);
	shown = berth_config_show(c, path, v);
	if (json_is_string(v)) {
		int r = berth_parse_duration(json_string_value(v), &ms, NULL);
		if (r == -ERANGE)
			goto too_long;
		if (r < 0) {
			berth_config_error(c, path, "%s is not a duration " DURATION_HINT, shown);
			return false;
		}
	} else {
		/* A number is seconds, as the library takes it. */
		double s = json_number_value(v);
		if (s < 0) {
			berth_config_error(c, path,
			                   "%s is negative, expected a duration " DURATION_HINT,
			                   shown);
			return false;
		}
		if (!(s * 1000.0 < 9223372036854775807.0))
			goto too_long;
		ms = berth_config_round(s * 1000.0);
	}
	if (ms < min_ms) {
		berth_config_error(c, path, "%s must be longer than zero", shown);
		return false;
	}
	*out = ms;
	return true;
too_long:
	berth_config_error(c, path, "%s is too long", shown);
	return false;
}

/* "0", "0.0M": a size that would parse if it were not zero (which berth_parse_size refuses). */
static bool size_is_zero(const char *s)
{
	size_t n = strspn(s, "0123456789.");
	cleanup_free char *one = NULL;
	uint64_t bytes;

	if (n == 0 || strspn(s, "0.") != n || memchr(s, '0', n) == NULL)
		return false;
	one = xasprintf("1%s", s + n);
	return berth_parse_size(one, &bytes, NULL) == 0;
}

bool berth_config_get_size(struct berth_config_ctx *c, const char *path, const json_t *v,
                           uint64_t *out)
{
	cleanup_free char *shown = NULL;
	uint64_t bytes = 0;

	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		int r = berth_parse_size(s, &bytes, NULL);
		if (r == 0)
			goto ok;
		shown = berth_config_show(c, path, v);
		if (r == -ERANGE)
			berth_config_error(c, path, "%s is too large", shown);
		else if (size_is_zero(s))
			berth_config_error(c, path, "%s must be greater than zero", shown);
		else
			berth_config_error(
			        c, path,
			        "%s is not a size (use e.g. 256M, 1.5G or a number of bytes)",
			        shown);
		return false;
	}
	if (!json_is_number(v))
		return berth_config_type_error(c, path, v,
		                               "a size (use e.g. 256M, 1.5G or a number of bytes)");
	if (!berth_config_get_uint(c, path, v, 1, UINT64_MAX, "a number of bytes", &bytes))
		return false;
ok:
	*out = bytes;
	return true;
}

static char *quote(const char *s)
{
	json_t *str = json_string(s);
	char *q = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
	json_decref(str);
	return q ? q : xstrdup("\"?\"");
}

bool berth_config_get_string_map(struct berth_config_ctx *c, const char *path, const json_t *v,
                                 const char *what, char ***out)
{
	cleanup_strv char **list = NULL;
	size_t n = 0;
	bool ok = true;
	const char *key;
	json_t *val;

	if (!json_is_object(v))
		return berth_config_type_error(c, path, v,
		                               "an object of strings ({\"NAME\": \"value\"})");
	list = xcalloc(json_object_size(v) + 1, sizeof(*list));
	json_object_foreach ((json_t *)v, key, val) {
		cleanup_free char *p = berth_config_path_member(path, key);
		cleanup_free char *q = quote(key);
		if (*key == '\0') {
			berth_config_error(c, p, "an empty %s is not allowed", what);
			ok = false;
		} else if (strchr(key, '=') != NULL) {
			berth_config_error(c, p, "%s has \"=\" in it, which a %s cannot have", q,
			                   what);
			ok = false;
		}
		if (json_is_number(val) || json_is_boolean(val)) {
			cleanup_free char *shown = berth_config_show(c, p, val);
			berth_config_error(c, p, "is %s, expected a string (write \"%s\")",
			                   berth_config_type_name(val), shown);
			ok = false;
		} else if (!json_is_string(val)) {
			ok = berth_config_type_error(c, p, val, "a string");
		} else if (ok) {
			list[n++] = xasprintf("%s=%s", key, json_string_value(val));
		}
	}
	if (!ok)
		return false;
	berth_strv_free(*out);
	*out = steal_pointer(&list);
	return true;
}

bool berth_config_get_string_array(struct berth_config_ctx *c, const char *path, const json_t *v,
                                   const char *expected, char ***out)
{
	cleanup_strv char **list = NULL;
	bool ok = true;
	size_t i;
	json_t *el;

	if (!json_is_array(v))
		return berth_config_type_error(c, path, v, expected);
	list = xcalloc(json_array_size(v) + 1, sizeof(*list));
	json_array_foreach (v, i, el) {
		cleanup_free char *p = berth_config_path_index(path, i);
		if (!json_is_string(el))
			ok = berth_config_type_error(c, p, el, "a string");
		else if (ok)
			list[i] = xstrdup(json_string_value(el));
	}
	if (!ok)
		return false;
	berth_strv_free(*out);
	*out = steal_pointer(&list);
	return true;
}

/* A DNS name or an IPv4 address: letters, digits, "-" and "." in labels of 1-63. */
static bool is_hostname(const char *s)
{
	size_t label = 0, total = 0;

	for (; *s != '\0'; s++, total++) {
		if (*s == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*s) || *s == '-') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && total <= 253;
}

#define ADDR_HINT "(e.g. \"127.0.0.1:8080\", \"0.0.0.0:8080\" or \"[::1]:8080\")"

int berth_config_parse_addr(const char *s, const char *shown, struct berth_config_addr *out,
                            berth_error_t *err)
{
	cleanup_free char *host = NULL;
	const char *colon;
	unsigned char buf[16];
	uint64_t port;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			goto bad;
		host = xstrndup(s + 1, (size_t)(close - s - 1));
		colon = close + 1;
		if (inet_pton(AF_INET6, host, buf) != 1)
			goto bad;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			goto bad;
		if (memchr(s, ':', (size_t)(colon - s)) != NULL)
			return berth_error_set_plain(
			        err, EINVAL,
			        "%s is not HOST:PORT (write an IPv6 address in brackets, as in "
			        "\"[::1]:8080\")",
			        shown);
		if (colon == s)
			return berth_error_set_plain(
			        err, EINVAL,
			        "%s has no host (use \"0.0.0.0%s\" for every interface or "
			        "\"127.0.0.1%s\" for this host only)",
			        shown, colon, colon);
		host = xstrndup(s, (size_t)(colon - s));
		if (!is_hostname(host))
			goto bad;
	}
	if (berth_parse_u64(colon + 1, 0, UINT64_MAX, &port, NULL) < 0)
		goto bad;
	if (port < 1 || port > 65535)
		return berth_error_set_plain(err, EINVAL, "%s has port %s, expected 1-65535", shown,
		                             colon + 1);
	free(out->host);
	out->host = steal_pointer(&host);
	out->port = (uint16_t)port;
	return 0;
bad:
	return berth_error_set_plain(err, EINVAL, "%s is not HOST:PORT " ADDR_HINT, shown);
}

bool berth_config_get_addr(struct berth_config_ctx *c, const char *path, const json_t *v,
                           struct berth_config_addr *out)
{
	cleanup_free char *shown = NULL;
	berth_error_t err;

	if (!json_is_string(v))
		return berth_config_type_error(c, path, v, "a string \"HOST:PORT\" " ADDR_HINT);
	shown = berth_config_show(c, path, v);
	if (berth_config_parse_addr(json_string_value(v), shown, out, &err) < 0) {
		berth_config_error(c, path, "%s", err.message);
		return false;
	}
	return true;
}

bool berth_config_get_path(struct berth_config_ctx *c, const char *path, const json_t *v,
                           char **out)
{
	const char *s;

	if (!berth_config_get_string(c, path, v, true, &s))
		return false;
	if (*s == '\0') {
		berth_config_error(c, path, "is empty, expected a path");
		return false;
	}
	free(*out);
	*out = berth_config_resolve(c->cfg->dir, s);
	return true;
}

bool berth_config_get_url(struct berth_config_ctx *c, const char *path, const json_t *v, char **out)
{
	cleanup_free char *shown = NULL;
	const char *s, *host;
	size_t host_len;

	if (!json_is_string(v))
		return berth_config_type_error(c, path, v, "an http:// or https:// URL");
	s = json_string_value(v);
	if (strncasecmp(s, "http://", 7) == 0)
		host = s + 7;
	else if (strncasecmp(s, "https://", 8) == 0)
		host = s + 8;
	else
		goto bad;
	host_len = strcspn(host, "/?#");
	if (host_len == 0)
		goto bad;
	for (const char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			goto bad;
	free(*out);
	*out = xstrdup(s);
	return true;
bad:
	shown = berth_config_show(c, path, v);
	berth_config_error(c, path, "%s is not an http:// or https:// URL", shown);
	return false;
}

bool berth_config_in_list(const char *word, const char *const *list)
{
	for (size_t i = 0; list != NULL && list[i] != NULL; i++)
		if (strcmp(word, list[i]) == 0)
			return true;
	return false;
}

void berth_config_unknown_fields(struct berth_config_ctx *c, const char *path, const json_t *obj,
                                 const char *const *known, const char *const *ignored)
{
	const char *key;
	json_t *val;

	json_object_foreach ((json_t *)obj, key, val) {
		cleanup_free char *p = NULL;
		cleanup_free char *q = NULL;
		const char *hint;
		if (berth_config_in_list(key, known) || berth_config_in_list(key, ignored))
			continue;
		p = berth_config_path_member(path, key);
		q = quote(key);
		hint = berth_config_suggest(key, known);
		if (hint != NULL)
			berth_config_diag_pos(c, BERTH_CONFIG_WARNING, p, path,
			                      "unknown field %s (did you mean \"%s\"?)", q, hint);
		else
			berth_config_diag_pos(c, BERTH_CONFIG_WARNING, p, path, "unknown field %s",
			                      q);
	}
}

char *berth_config_resolve(const char *dir, const char *p)
{
	cleanup_free char *joined = NULL;
	cleanup_free char **parts = NULL;
	size_t n = 0, len = 0;
	char *save = NULL, *tok, *out;

	joined = p[0] == '/' ? xstrdup(p) : xasprintf("%s/%s", dir, p);
	parts = xcalloc(strlen(joined) / 2 + 2, sizeof(*parts));
	for (tok = strtok_r(joined, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
		if (strcmp(tok, ".") == 0)
			continue;
		if (strcmp(tok, "..") == 0) {
			if (n > 0)
				n--;
			continue;
		}
		parts[n++] = tok;
	}
	for (size_t i = 0; i < n; i++)
		len += strlen(parts[i]) + 1;
	out = xmalloc(len + 2);
	out[0] = '\0';
	len = 0;
	for (size_t i = 0; i < n; i++) {
		out[len++] = '/';
		strcpy(out + len, parts[i]);
		len += strlen(parts[i]);
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return out;
}
