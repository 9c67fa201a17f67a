/* SPDX-License-Identifier: Apache-2.0 */
/* What a person reads: relative times, durations, tables, JSON. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "berth/util.h"
#include "client/client.h"

#define COLUMN_GAP 3

int64_t berth_client_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void berth_client_relative_time(int64_t now_ms, int64_t then_ms, char *buf, size_t len)
{
	int64_t s;

	if (then_ms <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	/* A little clock skew between berthd and us reads as "just now", not "in 1s". */
	s = (now_ms - then_ms) / 1000;
	if (s < 1)
		snprintf(buf, len, "just now");
	else if (s < 60)
		snprintf(buf, len, "%llds ago", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm ago", (long long)(s / 60));
	else if (s < 48 * 3600)
		snprintf(buf, len, "%lldh ago", (long long)(s / 3600));
	else
		snprintf(buf, len, "%lldd ago", (long long)(s / 86400));
}

void berth_client_duration(uint64_t ms, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
	size_t off = 0;

	if (ms == 0) {
		snprintf(buf, len, "never");
		return;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(units) && off < len; i++) {
		uint64_t n = ms / units[i].ms;
		int w;

		if (n == 0)
			continue;
		ms -= n * units[i].ms;
		w = snprintf(buf + off, len - off, "%llu%s", (unsigned long long)n, units[i].unit);
		if (w < 0)
			return;
		off += (size_t)w;
	}
}

void berth_client_time(int64_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char date[32];

	if (ms < 0 || gmtime_r(&secs, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, len, "-");
		return;
	}
	snprintf(buf, len, "%s.%03dZ", date, (int)(ms % 1000));
}

/*
 * A copy of a cell that cannot move the cursor or change the terminal:
 * names come from whoever called the API, and an escape sequence in one
 * must not reach the screen as one.
 */
void berth_client_sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			*s = '?';
}

static char *clean_cell(const char *s)
{
	char *c = xstrdup(s != NULL ? s : "-");

	berth_client_sanitize(c);
	return c;
}

/* Characters, not bytes: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void berth_table_init(struct berth_table *t, size_t ncols, const char *const *headers)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	berth_table_add(t, headers);
}

void berth_table_add(struct berth_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap == 0 ? 16 : t->cap * 2;
		t->cells = xrealloc(t->cells, t->cap * t->ncols * sizeof(char *));
	}
	for (size_t i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = clean_cell(cells[i]);
	t->nrows++;
}

void berth_table_print(const struct berth_table *t, FILE *f)
{
	cleanup_free size_t *w = xcalloc(t->ncols, sizeof(size_t));

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			size_t cw = width(t->cells[r * t->ncols + i]);
			if (cw > w[i])
				w[i] = cw;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *cell = t->cells[r * t->ncols + i];

			fputs(cell, f);
			/* No padding after the last column: lines end where their text does. */
			if (i + 1 < t->ncols)
				fprintf(f, "%*s", (int)(w[i] - width(cell) + COLUMN_GAP), "");
		}
		fputc('\n', f);
	}
}

void berth_table_free(struct berth_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

bool berth_client_print_json(const json_t *j, bool pretty)
{
	size_t flags = pretty ? JSON_INDENT(2) : JSON_COMPACT;

	/* JSON_ENCODE_ANY: a JSON null or string is an answer too. */
	if (json_dumpf(j, stdout, flags | JSON_ENCODE_ANY) < 0)
		return false;
	return fputc('\n', stdout) != EOF;
}

int64_t berth_client_parse_time(const char *s)
{
	struct tm tm;
	const char *rest;
	int64_t ms = 0;
	time_t secs;

	memset(&tm, 0, sizeof(tm));
	rest = s != NULL ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (rest == NULL)
		return -1;
	if (*rest == '.') {
		/* Milliseconds: the first three digits of the fraction. */
		int digits = 0;
		for (rest++; *rest >= '0' && *rest <= '9'; rest++)
			if (digits++ < 3)
				ms = ms * 10 + (*rest - '0');
		if (digits == 0)
			return -1;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (strcmp(rest, "Z") != 0)
		return -1;
	secs = timegm(&tm);
	if (secs == (time_t)-1)
		return -1;
	return (int64_t)secs * 1000 + ms;
}
