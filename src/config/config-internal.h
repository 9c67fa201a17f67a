/* SPDX-License-Identifier: Apache-2.0 */
/* What the configuration module's files share with each other and nobody else. */
#ifndef BERTH_CONFIG_INTERNAL_H
#define BERTH_CONFIG_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* Larger files are refused: a configuration is a few kilobytes. */
#define BERTH_CONFIG_MAX_BYTES (4u * 1024u * 1024u)

/* --- JSONC text and positions (jsonc.c) ------------------------------------ */

/*
 * Turn JSONC into JSON of the same length: comments and trailing commas are
 * overwritten with spaces (newlines kept), so every byte offset, and so every
 * line:col, of the clean text is that of the original. Returns 0, or -1 with
 * *bad_off at an unterminated block comment.
 */
int berth_config_jsonc_clean(const char *text, size_t len, char **out, size_t *bad_off);

/* Where a value is in the file: one entry per value, by JSON path. */
struct berth_config_pos {
	char *path;     /* "containers[0].image" */
	char *key;      /* the member's name; NULL for array elements and the root */
	size_t key_off; /* offset of the member's name; SIZE_MAX when there is none */
	size_t val_off; /* offset of the value's first byte */
	size_t val_end; /* offset just past the value */
	size_t object;  /* which object holds the member (an ordinal) */
	size_t dup_of;  /* index of an earlier member of that object with the same name,
	                   SIZE_MAX if none (positions are sorted by path, then offset) */
};

struct berth_config_index {
	struct berth_config_pos *v; /* sorted by path, then offset */
	size_t n;
};

/* Index the values of `json`, which must be valid JSON (jansson accepted it). */
void berth_config_index_build(struct berth_config_index *idx, const char *json, size_t len);
void berth_config_index_free(struct berth_config_index *idx);
/* The value at `path`; of duplicate members, the last (the one jansson keeps). */
const struct berth_config_pos *berth_config_index_find(const struct berth_config_index *idx,
                                                       const char *path);

/* JSON paths as messages show them: a.b, a[0], a["not an identifier"]. */
char *berth_config_path_member(const char *parent, const char *key);
char *berth_config_path_index(const char *parent, size_t i);

/* --- loading context and diagnostics (diag.c) ------------------------------ */

struct berth_config_ctx {
	const char *file; /* as the caller named it, for messages */
	const char *text; /* the original text */
	size_t len;
	size_t *line_starts; /* offsets where each line begins */
	size_t n_lines;
	struct berth_config_index idx;
	struct berth_config_diags *diags;
	struct berth_config *cfg;
	const json_t *root;       /* the whole file */
	size_t *class_json_index; /* cfg->classes[i] is containers[class_json_index[i]] */
	unsigned file_mode;       /* st_mode of the file */
};

/* Set up line positions of ctx->text. */
void berth_config_ctx_lines(struct berth_config_ctx *c);
/* 1-based line and column (in characters) of a byte offset. */
void berth_config_linecol(const struct berth_config_ctx *c, size_t off, unsigned *line,
                          unsigned *col);

/*
 * Add a diagnostic about the value at `path`, placed at its member name (or,
 * for an array element, at the value); a path that is not in the file (a
 * missing field) is placed at its nearest ancestor.
 */
void berth_config_diag(struct berth_config_ctx *c, enum berth_config_severity sev, const char *path,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The same, placed at `pos_path` but showing `path` (unknown fields show their parent). */
void berth_config_diag_pos(struct berth_config_ctx *c, enum berth_config_severity sev,
                           const char *pos_path, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
/* The same, at a byte offset (SIZE_MAX: no position) and with no path. */
void berth_config_diag_off(struct berth_config_ctx *c, enum berth_config_severity sev, size_t off,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Order the diagnostics by position, keeping the order of those at the same place. */
void berth_config_diags_sort(struct berth_config_diags *d);

#define berth_config_error(c, path, ...) berth_config_diag(c, BERTH_CONFIG_ERROR, path, __VA_ARGS__)
#define berth_config_warn(c, path, ...) \
	berth_config_diag(c, BERTH_CONFIG_WARNING, path, __VA_ARGS__)

/*
 * The candidate closest to `word` (case, "_" and "-" aside, and up to a
 * couple of typos), or NULL: for "did you mean" hints.
 */
const char *berth_config_suggest(const char *word, const char *const *candidates);

/* --- typed values (values.c) ----------------------------------------------- */

/*
 * The getters check the type and range of a value and say what is wrong in
 * the value's terms ("is a string, expected true or false"). They return
 * true and fill *out when the value is good; otherwise they add an error
 * and leave *out alone, so that it keeps its default.
 */

/* A non-negative number below 2^63, rounded to the nearest whole one (no libm). */
uint64_t berth_config_round(double x);
/* "a string", "a number", "an object", ... for "is a string, expected ...". */
const char *berth_config_type_name(const json_t *v);
/* The value as written in the file (cut when long), e.g. "\"10 minutes\"" or "1.5e3". */
char *berth_config_show(const struct berth_config_ctx *c, const char *path, const json_t *v);
/* "is a string, expected EXPECTED" at path. Always false. */
bool berth_config_type_error(struct berth_config_ctx *c, const char *path, const json_t *v,
                             const char *expected);

bool berth_config_get_string(struct berth_config_ctx *c, const char *path, const json_t *v,
                             bool allow_empty, const char **out);
bool berth_config_get_bool(struct berth_config_ctx *c, const char *path, const json_t *v,
                           bool *out);
/* A whole number in [min, max]; `expected` completes "is a string, expected ...". */
bool berth_config_get_uint(struct berth_config_ctx *c, const char *path, const json_t *v,
                           uint64_t min, uint64_t max, const char *expected, uint64_t *out);
bool berth_config_get_port(struct berth_config_ctx *c, const char *path, const json_t *v,
                           uint16_t *out);
/* A duration string or a number of seconds; `min_ms` is 0 or 1. */
bool berth_config_get_duration(struct berth_config_ctx *c, const char *path, const json_t *v,
                               uint64_t min_ms, uint64_t *out);
/* A size string ("256M") or a number of bytes. */
bool berth_config_get_size(struct berth_config_ctx *c, const char *path, const json_t *v,
                           uint64_t *out);
/* An object of strings, as KEY=VALUE; names must be non-empty and have no "=". */
bool berth_config_get_string_map(struct berth_config_ctx *c, const char *path, const json_t *v,
                                 const char *what, char ***out);
/* An array of strings. */
bool berth_config_get_string_array(struct berth_config_ctx *c, const char *path, const json_t *v,
                                   const char *expected, char ***out);
/* "HOST:PORT". */
bool berth_config_get_addr(struct berth_config_ctx *c, const char *path, const json_t *v,
                           struct berth_config_addr *out);
/* A path; relative ones are resolved against the config file's directory. */
bool berth_config_get_path(struct berth_config_ctx *c, const char *path, const json_t *v,
                           char **out);
/* An http:// or https:// URL. */
bool berth_config_get_url(struct berth_config_ctx *c, const char *path, const json_t *v,
                          char **out);

/*
 * Warn about the members of `obj` that are neither in `known` nor in
 * `ignored` (NULL-terminated lists; `ignored` may be NULL), with a
 * "did you mean" from `known`.
 */
void berth_config_unknown_fields(struct berth_config_ctx *c, const char *path, const json_t *obj,
                                 const char *const *known, const char *const *ignored);
bool berth_config_in_list(const char *word, const char *const *list);

/* Lexically resolve `p` against `dir` ("a/../b" → "b"; no symlinks followed). */
char *berth_config_resolve(const char *dir, const char *p);

/* --- sections -------------------------------------------------------------- */

/* containers[] (class.c) */
void berth_config_load_classes(struct berth_config_ctx *c, const json_t *containers);
/* An image's path or reference, checked to be runnable (image.c). */
void berth_config_check_image(struct berth_config_ctx *c, const char *path,
                              struct berth_config_class *cls);
/* berth (daemon.c); after the classes, which routes refer to. */
void berth_config_load_daemon(struct berth_config_ctx *c, const json_t *berth);
/* berth.routes[] (routes.c) */
void berth_config_load_routes(struct berth_config_ctx *c, const json_t *routes, bool have_listen);
/* durable_objects and migrations (wrangler.c) */
void berth_config_load_durable_objects(struct berth_config_ctx *c, const json_t *root);

/* Freeing parts of the model (model.c). */
void berth_config_class_free(struct berth_config_class *cls);
void berth_config_route_free(struct berth_config_route *r);

/* A JavaScript identifier (ASCII): a class name, or a key a path may show bare. */
bool berth_config_is_identifier(const char *s);

/* What a class's "image" may be, for messages. */
#define BERTH_CONFIG_IMAGE_KINDS                                                               \
	"a root filesystem directory, an OCI image layout (DIR or DIR:TAG), an image archive " \
	"(FILE or FILE:TAG) or a registry reference"

#endif
