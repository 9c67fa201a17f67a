/* SPDX-License-Identifier: Apache-2.0 */
/* Diagnostics: where in the file, how they read, and "did you mean". */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "config/config-internal.h"

void berth_config_ctx_lines(struct berth_config_ctx *c)
{
	size_t cap = 64;

	c->line_starts = xmalloc(cap * sizeof(*c->line_starts));
	c->line_starts[0] = 0;
	c->n_lines = 1;
	for (size_t i = 0; i < c->len; i++) {
		if (c->text[i] != '\n')
			continue;
		if (c->n_lines == cap) {
			cap *= 2;
			c->line_starts = xrealloc(c->line_starts, cap * sizeof(*c->line_starts));
		}
		c->line_starts[c->n_lines++] = i + 1;
	}
}

void berth_config_linecol(const struct berth_config_ctx *c, size_t off, unsigned *line,
                          unsigned *col)
{
	size_t lo = 0, hi = c->n_lines, i;
	unsigned n = 1;

	if (off > c->len)
		off = c->len;
	/* The last line that starts at or before `off`. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->line_starts[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	/* Columns count characters, as editors do, not UTF-8 bytes; a byte order mark none. */
	i = c->line_starts[lo];
	if (i == 0 && off >= 3 && memcmp(c->text, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	for (; i < off; i++)
		if (((unsigned char)c->text[i] & 0xc0) != 0x80)
			n++;
	*line = (unsigned)lo + 1;
	*col = n;
}

static void add(struct berth_config_ctx *c, enum berth_config_severity sev, size_t off,
                const char *path, const char *fmt, va_list ap)
{
	struct berth_config_diags *d = c->diags;
	struct berth_config_diag *item;
	cleanup_free char *where = NULL;

	d->items = xrealloc(d->items, (d->count + 1) * sizeof(*d->items));
	item = &d->items[d->count++];
	*item = (struct berth_config_diag){.severity = sev};
	/*
	 * One message, one line (the journal makes a line an entry), whatever
	 * the file holds: a key with an escaped newline, the text jansson
	 * quotes near a syntax error.
	 */
	item->path = berth_one_line(xstrdup(path ? path : ""));
	item->text = berth_one_line(xvasprintf(fmt, ap));
	if (off != SIZE_MAX) {
		berth_config_linecol(c, off, &item->line, &item->col);
		where = xasprintf("%s:%u:%u", c->file, item->line, item->col);
	} else {
		where = xstrdup(c->file);
	}
	item->message =
	        xasprintf("%s: %s%s%s%s", where, sev == BERTH_CONFIG_WARNING ? "warning: " : "",
	                  item->path, *item->path ? ": " : "", item->text);
	if (sev == BERTH_CONFIG_ERROR)
		d->errors++;
	else
		d->warnings++;
}

/* Where a path is: its member name, else its value; a missing one at its nearest ancestor. */
static size_t path_offset(const struct berth_config_ctx *c, const char *path)
{
	cleanup_free char *p = xstrdup(path);

	for (;;) {
		const struct berth_config_pos *pos = berth_config_index_find(&c->idx, p);
		char *cut;
		if (pos != NULL)
			return pos->key_off != SIZE_MAX ? pos->key_off : pos->val_off;
		if (*p == '\0')
			return c->idx.n ? 0 : SIZE_MAX;
		/* Drop the last component: ".name", "[0]" or "[\"name\"]". */
		cut = p + strlen(p) - 1;
		if (*cut == ']') {
			while (cut > p && *cut != '[')
				cut--;
		} else {
			while (cut > p && *cut != '.' && *cut != ']')
				cut--;
			if (*cut == ']')
				cut++;
		}
		*cut = '\0';
	}
}

void berth_config_diag(struct berth_config_ctx *c, enum berth_config_severity sev, const char *path,
                       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add(c, sev, path_offset(c, path), path, fmt, ap);
	va_end(ap);
}

void berth_config_diag_pos(struct berth_config_ctx *c, enum berth_config_severity sev,
                           const char *pos_path, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add(c, sev, path_offset(c, pos_path), path, fmt, ap);
	va_end(ap);
}

void berth_config_diag_off(struct berth_config_ctx *c, enum berth_config_severity sev, size_t off,
                           const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add(c, sev, off, NULL, fmt, ap);
	va_end(ap);
}

static bool before(const struct berth_config_diag *a, const struct berth_config_diag *b)
{
	return a->line < b->line || (a->line == b->line && a->col < b->col);
}

/* A merge sort: stable, so problems found at one place keep the order they were found in. */
static void merge_sort(struct berth_config_diag *v, struct berth_config_diag *tmp, size_t n)
{
	size_t mid = n / 2, i = 0, j = mid, k = 0;

	if (n < 2)
		return;
	merge_sort(v, tmp, mid);
	merge_sort(v + mid, tmp, n - mid);
	while (i < mid && j < n)
		tmp[k++] = before(&v[j], &v[i]) ? v[j++] : v[i++];
	while (i < mid)
		tmp[k++] = v[i++];
	while (j < n)
		tmp[k++] = v[j++];
	memcpy(v, tmp, n * sizeof(*v));
}

void berth_config_diags_sort(struct berth_config_diags *d)
{
	cleanup_free struct berth_config_diag *tmp = NULL;

	if (d->count < 2)
		return;
	tmp = xmalloc(d->count * sizeof(*tmp));
	merge_sort(d->items, tmp, d->count);
}

void berth_config_diags_free(struct berth_config_diags *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->count; i++) {
		free(d->items[i].path);
		free(d->items[i].text);
		free(d->items[i].message);
	}
	free(d->items);
	*d = (struct berth_config_diags){0};
}

void berth_config_diags_print(const struct berth_config_diags *d, FILE *out)
{
	for (size_t i = 0; i < d->count; i++)
		fprintf(out, "%s\n", d->items[i].message);
}

/* --- did you mean ---------------------------------------------------------- */

#define WORD_MAX 64

/* Lowercase, without "_" and "-": sleep_after, sleepafter and sleepAfter are one word. */
static size_t normalize(const char *s, char out[WORD_MAX + 1])
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		if (*s == '_' || *s == '-')
			continue;
		if (n == WORD_MAX)
			return SIZE_MAX;
		out[n++] = (char)tolower((unsigned char)*s);
	}
	out[n] = '\0';
	return n;
}

/* Edit distance counting a swap of neighbours as one edit (optimal string alignment). */
static size_t distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t d[WORD_MAX + 1][WORD_MAX + 1];

	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *berth_config_suggest(const char *word, const char *const *candidates)
{
	char w[WORD_MAX + 1], c[WORD_MAX + 1];
	size_t lw = normalize(word, w), best_d = SIZE_MAX, max_d;
	const char *best = NULL;

	if (lw == SIZE_MAX || lw == 0)
		return NULL;
	/* Few typos for a short word, or every short word would be "close". */
	max_d = lw < 3 ? 0 : lw < 6 ? 1 : lw < 10 ? 2 : 3;
	for (size_t i = 0; candidates[i] != NULL; i++) {
		size_t lc = normalize(candidates[i], c), d;
		if (lc == SIZE_MAX)
			continue;
		d = distance(w, lw, c, lc);
		/* "memory" for "memory_mib", "warning" for "warn": one word starts the other. */
		if (d > max_d && lw >= 4 && lc >= 4 && strncmp(w, c, lw < lc ? lw : lc) == 0)
			d = max_d;
		if (d <= max_d && d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best;
}
