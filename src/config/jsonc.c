/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JSONC on top of jansson. jansson parses JSON and knows nothing of comments,
 * trailing commas or where a value was: the text is cleaned into JSON of the
 * same length first, and, once jansson accepted it, a small scanner records
 * the offset of every value by its JSON path for the messages.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "config/config-internal.h"

static void blank_byte(char *p)
{
	if (*p != '\n')
		*p = ' ';
}

int berth_config_jsonc_clean(const char *text, size_t len, char **out, size_t *bad_off)
{
	cleanup_free char *s = xmalloc(len + 1);
	bool in_string = false;
	size_t i = 0;

	memcpy(s, text, len);
	s[len] = '\0';
	/* A UTF-8 byte order mark, as some editors write, is not JSON. */
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		memset(s, ' ', 3);

	while (i < len) {
		char ch = s[i];
		if (in_string) {
			if (ch == '\\' && i + 1 < len)
				i++;
			/* A string cannot span lines: jansson will say so; the rest is not a
			 * string. */
			else if (ch == '"' || ch == '\n')
				in_string = false;
			i++;
		} else if (ch == '"') {
			in_string = true;
			i++;
		} else if (ch == '/' && i + 1 < len && s[i + 1] == '/') {
			while (i < len && s[i] != '\n')
				blank_byte(&s[i++]);
		} else if (ch == '/' && i + 1 < len && s[i + 1] == '*') {
			size_t start = i;
			i += 2;
			while (i + 1 < len && !(s[i] == '*' && s[i + 1] == '/'))
				i++;
			if (i + 1 >= len) {
				*bad_off = start;
				return -1;
			}
			for (size_t j = start; j < i + 2; j++)
				blank_byte(&s[j]);
			i += 2;
		} else {
			i++;
		}
	}

	/* Trailing commas: a comma whose next token closes the array or object. */
	in_string = false;
	for (i = 0; i < len; i++) {
		if (in_string) {
			if (s[i] == '\\' && i + 1 < len)
				i++;
			else if (s[i] == '"' || s[i] == '\n')
				in_string = false;
		} else if (s[i] == '"') {
			in_string = true;
		} else if (s[i] == ',') {
			size_t j = i + 1;
			while (j < len && isspace((unsigned char)s[j]))
				j++;
			if (j < len && (s[j] == ']' || s[j] == '}'))
				s[i] = ' ';
		}
	}
	*out = steal_pointer(&s);
	return 0;
}

/* --- paths ----------------------------------------------------------------- */

bool berth_config_is_identifier(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_' && *s != '$')
		return false;
	for (s++; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '$')
			return false;
	return true;
}

char *berth_config_path_member(const char *parent, const char *key)
{
	cleanup_free char *quoted = NULL;
	json_t *str;

	if (berth_config_is_identifier(key))
		return xasprintf("%s%s%s", parent, *parent ? "." : "", key);
	str = json_string(key);
	quoted = json_dumps(str, JSON_ENCODE_ANY);
	json_decref(str);
	if (quoted == NULL) /* not UTF-8: jansson refused the file before we get here */
		return xasprintf("%s[?]", parent);
	return xasprintf("%s[%s]", parent, quoted);
}

char *berth_config_path_index(const char *parent, size_t i)
{
	return xasprintf("%s[%zu]", parent, i);
}

/* --- the position index ---------------------------------------------------- */

struct scan {
	const char *s;
	size_t len, i;
	size_t objects;
	struct berth_config_pos *v;
	size_t n, cap;
};

static void skip_ws(struct scan *sc)
{
	while (sc->i < sc->len && isspace((unsigned char)sc->s[sc->i]))
		sc->i++;
}

static void skip_string(struct scan *sc)
{
	for (sc->i++; sc->i < sc->len && sc->s[sc->i] != '"'; sc->i++)
		if (sc->s[sc->i] == '\\')
			sc->i++;
	sc->i++;
}

/* The member name at [start, end): decoded by jansson, so it equals the key it stores. */
static char *decode_key(const char *s, size_t start, size_t end)
{
	json_t *str = json_loadb(s + start, end - start, JSON_DECODE_ANY, NULL);
	char *key = xstrdup(json_is_string(str) ? json_string_value(str) : "");
	json_decref(str);
	return key;
}

static void add_pos(struct scan *sc, char *path, char *key, size_t key_off, size_t val_off,
                    size_t object)
{
	if (sc->n == sc->cap) {
		sc->cap = sc->cap ? sc->cap * 2 : 64;
		sc->v = xrealloc(sc->v, sc->cap * sizeof(*sc->v));
	}
	sc->v[sc->n++] = (struct berth_config_pos){
	        .path = path,
	        .key = key,
	        .key_off = key_off,
	        .val_off = val_off,
	        .val_end = sc->i,
	        .object = object,
	        .dup_of = SIZE_MAX,
	};
}

/*
 * Record the value at sc->i and everything in it. The text is valid JSON, so
 * this only needs to find where things are; the depth is bounded by
 * jansson's own limit, which it already enforced.
 */
static void scan_value(struct scan *sc, char *path, char *key, size_t key_off, size_t object)
{
	size_t start;

	skip_ws(sc);
	start = sc->i;
	if (sc->i >= sc->len)
		goto done;
	if (sc->s[sc->i] == '{') {
		size_t self = sc->objects++;
		sc->i++;
		skip_ws(sc);
		while (sc->i < sc->len && sc->s[sc->i] != '}') {
			size_t kstart = sc->i;
			char *name;
			skip_string(sc);
			name = decode_key(sc->s, kstart, sc->i);
			skip_ws(sc);
			sc->i++; /* ':' */
			scan_value(sc, berth_config_path_member(path, name), name, kstart, self);
			skip_ws(sc);
			if (sc->i < sc->len && sc->s[sc->i] == ',')
				sc->i++;
			skip_ws(sc);
		}
		sc->i++;
	} else if (sc->s[sc->i] == '[') {
		size_t n = 0;
		sc->i++;
		skip_ws(sc);
		while (sc->i < sc->len && sc->s[sc->i] != ']') {
			scan_value(sc, berth_config_path_index(path, n++), NULL, SIZE_MAX,
			           SIZE_MAX);
			skip_ws(sc);
			if (sc->i < sc->len && sc->s[sc->i] == ',')
				sc->i++;
			skip_ws(sc);
		}
		sc->i++;
	} else if (sc->s[sc->i] == '"') {
		skip_string(sc);
	} else {
		/* A scalar: up to what ends it (a NUL is no end: strchr would find one). */
		while (sc->i < sc->len &&
		       (sc->s[sc->i] == '\0' || strchr(",]} \t\r\n", sc->s[sc->i]) == NULL))
			sc->i++;
		if (sc->i == start)
			sc->i++; /* always move on, whatever the text */
	}
done:
	add_pos(sc, path, key, key_off, start, object);
}

static int cmp_path(const void *a, const void *b)
{
	const struct berth_config_pos *x = a, *y = b;
	int r = strcmp(x->path, y->path);
	if (r != 0)
		return r;
	return x->val_off < y->val_off ? -1 : x->val_off > y->val_off;
}

/* Members of one object by name, then offset: duplicates end up side by side. */
static int cmp_member(const void *a, const void *b)
{
	const struct berth_config_pos *x = *(struct berth_config_pos *const *)a;
	const struct berth_config_pos *y = *(struct berth_config_pos *const *)b;
	int r;
	if (x->object != y->object)
		return x->object < y->object ? -1 : 1;
	r = strcmp(x->key, y->key);
	if (r != 0)
		return r;
	return x->key_off < y->key_off ? -1 : x->key_off > y->key_off;
}

void berth_config_index_build(struct berth_config_index *idx, const char *json, size_t len)
{
	struct scan sc = {.s = json, .len = len};
	cleanup_free struct berth_config_pos **members = NULL;
	size_t n_members = 0;

	scan_value(&sc, xstrdup(""), NULL, SIZE_MAX, SIZE_MAX);
	qsort(sc.v, sc.n, sizeof(*sc.v), cmp_path);

	members = xcalloc(sc.n, sizeof(*members));
	for (size_t i = 0; i < sc.n; i++)
		if (sc.v[i].key != NULL)
			members[n_members++] = &sc.v[i];
	qsort(members, n_members, sizeof(*members), cmp_member);
	for (size_t i = 1; i < n_members; i++) {
		struct berth_config_pos *prev = members[i - 1], *cur = members[i];
		if (prev->object == cur->object && strcmp(prev->key, cur->key) == 0)
			cur->dup_of =
			        prev->dup_of != SIZE_MAX ? prev->dup_of : (size_t)(prev - sc.v);
	}
	idx->v = sc.v;
	idx->n = sc.n;
}

void berth_config_index_free(struct berth_config_index *idx)
{
	for (size_t i = 0; i < idx->n; i++) {
		free(idx->v[i].path);
		free(idx->v[i].key);
	}
	free(idx->v);
	idx->v = NULL;
	idx->n = 0;
}

const struct berth_config_pos *berth_config_index_find(const struct berth_config_index *idx,
                                                       const char *path)
{
	size_t lo = 0, hi = idx->n;

	/* The first entry past `path`; the one before it is the last equal one. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(idx->v[mid].path, path) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && strcmp(idx->v[lo - 1].path, path) == 0)
		return &idx->v[lo - 1];
	return NULL;
}
