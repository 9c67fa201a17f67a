/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry references, with Docker's grammar (distribution/reference):
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] component ( "/" component )*
 *   component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "berth/image.h"
#include "berth/util.h"

#define NAME_MAX_LEN 255
#define TAG_MAX_LEN  128

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool component_valid(const char *s, size_t n)
{
	size_t i = 0;

	if (n == 0 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
		return false;
	while (i < n) {
		if (lower_alnum(s[i])) {
			i++;
			continue;
		}
		/* A separator: ".", "_", "__" or dashes, between alphanumerics. */
		if (s[i] == '.' || s[i] == '_') {
			size_t run = 1;
			if (s[i] == '_' && i + 1 < n && s[i + 1] == '_')
				run = 2;
			i += run;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return false;
		}
		if (i >= n || !lower_alnum(s[i]))
			return false;
	}
	return true;
}

static bool tag_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > TAG_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool w = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		         (c >= '0' && c <= '9') || c == '_';
		if (!w && (i == 0 || (c != '.' && c != '-')))
			return false;
	}
	return true;
}

/* host[:port]: letters, digits, dots, dashes, or a bracketed IPv6 address. */
static bool domain_valid(const char *s, size_t n)
{
	size_t host_end = n;
	const char *colon;

	if (n == 0)
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (close == NULL)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!(lower_alnum(*p) || (*p >= 'A' && *p <= 'F') || *p == ':' ||
			      *p == '.'))
				return false;
		host_end = (size_t)(close - s) + 1;
		if (host_end == n)
			return true;
		if (s[host_end] != ':')
			return false;
		colon = s + host_end;
	} else {
		colon = memchr(s, ':', n);
		if (colon != NULL)
			host_end = (size_t)(colon - s);
		if (host_end == 0)
			return false;
		for (size_t i = 0; i < host_end; i++) {
			char c = s[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '.' || c == '-'))
				return false;
		}
		if (colon == NULL)
			return true;
	}
	/* The port: 1 to 5 digits. */
	{
		size_t plen = n - (size_t)(colon - s) - 1;
		if (plen == 0 || plen > 5)
			return false;
		for (size_t i = 0; i < plen; i++)
			if (colon[1 + i] < '0' || colon[1 + i] > '9')
				return false;
	}
	return true;
}

void berth_image_ref_free(struct berth_image_ref *ref)
{
	free(ref->registry);
	free(ref->repository);
	free(ref->tag);
	free(ref->digest);
	memset(ref, 0, sizeof(*ref));
}

int berth_image_ref_parse(const char *s, struct berth_image_ref *ref, berth_error_t *err)
{
	cleanup_free char *name = NULL;
	const char *at, *slash, *last_slash, *colon;
	const char *path;
	size_t first_len;

	memset(ref, 0, sizeof(*ref));
	if (s == NULL || *s == '\0')
		return berth_error_set_plain(err, EINVAL, "empty image reference");
	at = strchr(s, '@');
	if (at != NULL) {
		if (!berth_digest_valid(at + 1))
			return berth_error_set_plain(
			        err, EINVAL,
			        "image reference `%s`: `%s` is not a digest (sha256: and 64 "
			        "lowercase hex digits)",
			        s, at + 1);
		ref->digest = xstrdup(at + 1);
		name = xstrndup(s, (size_t)(at - s));
	} else {
		name = xstrdup(s);
	}
	/* A tag is after the last colon that follows the last slash. */
	last_slash = strrchr(name, '/');
	colon = strrchr(last_slash != NULL ? last_slash : name, ':');
	if (colon != NULL) {
		if (!tag_valid(colon + 1)) {
			berth_image_ref_free(ref);
			return berth_error_set_plain(
			        err, EINVAL,
			        "image reference `%s`: `%s` is not a valid tag (letters, digits, "
			        "`_`, `.`, `-`; at most 128, not starting with `.` or `-`)",
			        s, colon + 1);
		}
		ref->tag = xstrdup(colon + 1);
		name[colon - name] = '\0';
	}
	slash = strchr(name, '/');
	first_len = slash != NULL ? (size_t)(slash - name) : 0;
	if (slash != NULL &&
	    (memchr(name, '.', first_len) != NULL || memchr(name, ':', first_len) != NULL ||
	     (first_len == 9 && strncmp(name, "localhost", 9) == 0) || name[0] == '[')) {
		if (!domain_valid(name, first_len)) {
			berth_image_ref_free(ref);
			return berth_error_set_plain(err, EINVAL,
			                             "image reference `%s`: `%.*s` is not a valid "
			                             "registry host",
			                             s, (int)first_len, name);
		}
		ref->registry = xstrndup(name, first_len);
		path = slash + 1;
	} else {
		ref->registry = xstrdup("docker.io");
		path = name;
	}
	for (const char *p = path;;) {
		const char *end = strchr(p, '/');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (!component_valid(p, n)) {
			berth_image_ref_free(ref);
			return berth_error_set_plain(
			        err, EINVAL,
			        "image reference `%s`: `%.*s` is not a valid name component "
			        "(lowercase letters and digits, separated by `.`, `_`, `__` or "
			        "`-`)",
			        s, (int)n, p);
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	if (strcmp(ref->registry, "docker.io") == 0 && strchr(path, '/') == NULL)
		ref->repository = xasprintf("library/%s", path);
	else
		ref->repository = xstrdup(path);
	/* As Docker counts: the whole name once normalized (`docker.io/library/` too). */
	if (strlen(ref->registry) + 1 + strlen(ref->repository) > NAME_MAX_LEN) {
		berth_image_ref_free(ref);
		return berth_error_set_plain(err, EINVAL,
		                             "image reference `%s`: the name is longer than %d "
		                             "characters (with its registry)",
		                             s, NAME_MAX_LEN);
	}
	if (ref->tag == NULL && ref->digest == NULL)
		ref->tag = xstrdup("latest");
	return 0;
}

char *berth_image_ref_string(const struct berth_image_ref *ref)
{
	return xasprintf("%s/%s%s%s%s%s", ref->registry, ref->repository, ref->tag ? ":" : "",
	                 ref->tag ? ref->tag : "", ref->digest ? "@" : "",
	                 ref->digest ? ref->digest : "");
}

const char *berth_image_ref_endpoint(const struct berth_image_ref *ref)
{
	if (strcmp(ref->registry, "docker.io") == 0 ||
	    strcmp(ref->registry, "index.docker.io") == 0)
		return "registry-1.docker.io";
	return ref->registry;
}
