/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "berth/crilog.h"

/* `n` decimal digits at `s`, or -1. */
static int digits(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (the
 * well-known days-from-civil computation, with March as the year's first
 * month so that the leap day comes last). No struct tm, no time zone.
 */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int berth_crilog_parse_time(const char *s, size_t len, int64_t *ns)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, off = 0;
	int64_t frac = 0, scale = 100000000, secs;
	size_t i = 19;

	/* 2026-11-27T10:54:39 */
	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -EINVAL;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    sec < 0 || sec > 59)
		return -EINVAL;
	if (d > mdays[mo - 1] + (mo == 2 && leap(y)))
		return -EINVAL;
	if (s[i] == '.') {
		size_t start = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (i - start == 9)
				return -EINVAL;
			frac += (s[i] - '0') * scale;
			scale /= 10;
			i++;
		}
		if (i == start)
			return -EINVAL;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return -EINVAL;
		off = (oh * 60 + om) * 60 * (s[i] == '-' ? -1 : 1);
		i += 6;
	} else {
		return -EINVAL;
	}
	if (i != len)
		return -EINVAL;
	/* Seconds fit (years 0-9999); nanoseconds in an int64 only for 1677-2262. */
	secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	if (secs >= INT64_MAX / 1000000000 || secs <= INT64_MIN / 1000000000)
		return -ERANGE;
	*ns = secs * 1000000000 + frac;
	return 0;
}

void berth_crilog_format_time(int64_t ns, char out[BERTH_CRILOG_TIME_LEN])
{
	int64_t secs = ns / 1000000000, nano = ns % 1000000000, days, sod;
	int64_t z, era, doe, yoe, doy, mp, y, m, d;
	char tmp[128];

	if (nano < 0) {
		nano += 1000000000;
		secs--;
	}
	days = secs / 86400;
	sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		days--;
	}
	/* The inverse of days_from_civil(). */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2);
	/* int64 nanoseconds span the years 1677-2262: the text always has its 30 characters. */
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", (int)y, (int)m, (int)d,
	         (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)nano);
	memcpy(out, tmp, BERTH_CRILOG_TIME_LEN - 1);
	out[BERTH_CRILOG_TIME_LEN - 1] = '\0';
}

bool berth_crilog_valid(const char *rec, size_t len, int64_t *ns)
{
	const char *sp = memchr(rec, ' ', len), *p;
	size_t rest;
	int64_t t;

	if (len > BERTH_CRILOG_RECORD_MAX || sp == NULL ||
	    berth_crilog_parse_time(rec, (size_t)(sp - rec), &t) < 0)
		return false;
	p = sp + 1;
	rest = len - (size_t)(p - rec);
	/* "stdout F " or "stderr P ", then the content (possibly empty). */
	if (rest < 9 || (memcmp(p, "stdout ", 7) != 0 && memcmp(p, "stderr ", 7) != 0) ||
	    (p[7] != 'F' && p[7] != 'P') || p[8] != ' ')
		return false;
	if (memchr(p, '\n', rest) != NULL)
		return false;
	if (ns != NULL)
		*ns = t;
	return true;
}

size_t berth_crilog_tail(const char *buf, size_t len, bool at_line_start, size_t want,
                         size_t *found)
{
	const char *nl = len > 0 ? memrchr(buf, '\n', len) : NULL;
	size_t end = nl != NULL ? (size_t)(nl - buf) + 1 : 0;
	bool passed = false;

	*found = 0;
	while (end > 0 && *found < want) {
		/* The line ending at end - 1: it starts after the '\n' before it. */
		const char *prev = end > 1 ? memrchr(buf, '\n', end - 1) : NULL;
		size_t start;

		if (prev != NULL)
			start = (size_t)(prev - buf) + 1;
		else if (at_line_start)
			start = 0;
		else
			break;
		if (berth_crilog_valid(buf + start, end - 1 - start, NULL))
			(*found)++;
		passed = true;
		end = start;
	}
	if (!passed && end == len && *found < want)
		return 0;
	return end;
}

int berth_crilog_tail_fd(int fd, uint64_t end, size_t want, char *buf, size_t size, uint64_t *start,
                         size_t *found)
{
	*found = 0;
	for (;;) {
		uint64_t from = end > size ? end - size : 0;
		size_t len = (size_t)(end - from), n = 0, got, stop;

		while (n < len) {
			ssize_t r = pread(fd, buf + n, len - n, (off_t)(from + n));
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				return -ENODATA; /* the file shrank: not a log file as written */
			n += (size_t)r;
		}
		stop = berth_crilog_tail(buf, len, from == 0, want - *found, &got);
		*found += got;
		end = from + stop;
		if (*found == want || from == 0) {
			*start = *found == want ? end : 0;
			return 0;
		}
	}
}
