/* SPDX-License-Identifier: Apache-2.0 */
/* berth.routes[] on a request: which route, and which instance of its class. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "berth/util.h"
#include "proxy/proxy.h"

/* Host without its port ("example.com:8080", "[::1]:80"). */
static size_t host_only(const char *host, size_t len)
{
	if (len > 0 && host[0] == '[') {
		const char *close = memchr(host, ']', len);
		return close != NULL ? (size_t)(close - host) + 1 : len;
	}
	for (size_t i = 0; i < len; i++)
		if (host[i] == ':')
			return i;
	return len;
}

bool berth_proxy_host_match(const char *pattern, const char *host, size_t host_len)
{
	size_t plen;

	/* A fully qualified name may end in a dot. */
	if (host_len > 0 && host[host_len - 1] == '.')
		host_len--;
	if (strncmp(pattern, "*.", 2) == 0) {
		/* Any subdomain, at any depth; not the bare domain. */
		const char *suffix = pattern + 1; /* ".example.com" */
		plen = strlen(suffix);
		return host_len > plen && strncasecmp(host + host_len - plen, suffix, plen) == 0;
	}
	plen = strlen(pattern);
	return plen == host_len && strncasecmp(pattern, host, plen) == 0;
}

const struct berth_config_route *berth_proxy_route_find(const struct berth_config_route *routes,
                                                        size_t n, const char *host, size_t host_len,
                                                        const char *path, size_t path_len)
{
	if (host != NULL)
		host_len = host_only(host, host_len);
	for (size_t i = 0; i < n; i++) {
		const struct berth_config_route *r = &routes[i];

		if (r->host != NULL &&
		    (host == NULL || !berth_proxy_host_match(r->host, host, host_len)))
			continue;
		if (r->path_prefix != NULL) {
			size_t pl = strlen(r->path_prefix);
			if (path_len < pl || memcmp(path, r->path_prefix, pl) != 0)
				continue;
		}
		return r;
	}
	return NULL;
}

void berth_proxy_random_name(unsigned i, char *name, size_t size)
{
	snprintf(name, size, BERTH_CONFIG_RANDOM_NAME_FMT, i);
}

/* A name from the request: bounded, UTF-8, printable, no NUL. */
static int take_name(const char *p, size_t len, char *name, const char **why)
{
	if (len == 0) {
		*why = "it is empty";
		return -ENOENT;
	}
	if (len > BERTH_PROXY_NAME_MAX) {
		*why = "the instance name is longer than 255 bytes";
		return -EINVAL;
	}
	if (!berth_utf8_text(p, len)) {
		*why = "the instance name is not UTF-8 text (no control characters)";
		return -EINVAL;
	}
	memcpy(name, p, len);
	name[len] = '\0';
	return 0;
}

/* The Nth '/'-separated segment of `path` (empty ones count as none). */
static bool nth_segment(const char *path, size_t len, unsigned n, const char **seg, size_t *seg_len)
{
	size_t i = 0;

	for (unsigned k = 0;; k++) {
		size_t start;
		while (i < len && path[i] == '/')
			i++;
		if (i == len)
			return false;
		start = i;
		while (i < len && path[i] != '/')
			i++;
		if (k == n) {
			*seg = path + start;
			*seg_len = i - start;
			return true;
		}
	}
}

/* The Nth dot-separated label of `host` (its port removed). */
static bool nth_label(const char *host, size_t len, unsigned n, const char **label,
                      size_t *label_len)
{
	size_t i = 0;

	len = host_only(host, len);
	for (unsigned k = 0; i <= len; k++) {
		size_t start = i;
		while (i < len && host[i] != '.')
			i++;
		if (k == n) {
			*label = host + start;
			*label_len = i - start;
			return i > start;
		}
		if (i == len)
			return false;
		i++;
	}
	return false;
}

int berth_proxy_pick(const struct berth_config_route *r, const struct berth_proxy_head *h,
                     const char *host, size_t host_len, const char *path, size_t path_len,
                     unsigned rnd, char *name, const char **why)
{
	const char *p;
	size_t len;
	int ret;

	switch (r->pick) {
	case BERTH_CONFIG_PICK_NAME:
	case BERTH_CONFIG_PICK_SINGLETON:
		snprintf(name, BERTH_PROXY_NAME_MAX + 1, "%s", r->pick_name);
		return 0;
	case BERTH_CONFIG_PICK_PATH_SEGMENT:
		if (!nth_segment(path, path_len, r->pick_n, &p, &len)) {
			*why = "the path has no segment to name the instance";
			return -ENOENT;
		}
		return take_name(p, len, name, why);
	case BERTH_CONFIG_PICK_HEADER:
		p = berth_proxy_head_get(h, r->pick_name, &len);
		if (p == NULL || len == 0) {
			*why = "the header that names the instance is missing";
			return -ENOENT;
		}
		return take_name(p, len, name, why);
	case BERTH_CONFIG_PICK_HOST_LABEL:
		if (host == NULL || !nth_label(host, host_len, r->pick_n, &p, &len)) {
			*why = "the host has no label to name the instance";
			return -ENOENT;
		}
		ret = take_name(p, len, name, why);
		/* Host names are case-insensitive; the instance is the same. */
		for (char *q = name; ret == 0 && *q != '\0'; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q - 'A' + 'a');
		return ret;
	case BERTH_CONFIG_PICK_RANDOM:
		berth_proxy_random_name(rnd % r->pick_n, name, BERTH_PROXY_NAME_MAX + 1);
		return 0;
	case BERTH_CONFIG_PICK_LEAST_LOADED:
		return -EAGAIN;
	}
	*why = "the route has no way to pick an instance";
	return -EINVAL;
}
