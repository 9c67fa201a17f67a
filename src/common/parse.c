/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "berth/parse.h"
#include "berth/util.h"

/*
 * A non-negative decimal with up to 9 fractional digits, as an exact
 * (whole, nano) pair; no floating point so "0.1" means exactly 0.1.
 */
static int parse_decimal(const char *s, const char **end, uint64_t *whole, uint64_t *nano)
{
	uint64_t w = 0, f = 0, scale = 100000000;
	const char *p = s;
	int digits = 0;

	while (isdigit((unsigned char)*p)) {
		if (w > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		w = w * 10 + (uint64_t)(*p - '0');
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			if (scale == 0)
				return -EINVAL; /* more precision than we keep */
			f += (uint64_t)(*p - '0') * scale;
			scale /= 10;
			p++;
			digits++;
		}
	}
	if (digits == 0)
		return -EINVAL;
	*whole = w;
	*nano = f;
	*end = p;
	return 0;
}

int berth_parse_size(const char *s, uint64_t *bytes, berth_error_t *err)
{
	static const struct {
		const char *suffix[4];
		unsigned shift;
	} units[] = {
	        {{"", "b", NULL, NULL}, 0},     {{"k", "kb", "ki", "kib"}, 10},
	        {{"m", "mb", "mi", "mib"}, 20}, {{"g", "gb", "gi", "gib"}, 30},
	        {{"t", "tb", "ti", "tib"}, 40},
	};
	uint64_t whole, nano, value;
	const char *end;
	int r;

	if (s == NULL)
		goto bad;
	r = parse_decimal(s, &end, &whole, &nano);
	if (r == -ERANGE)
		goto range;
	if (r < 0)
		goto bad;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(units); i++) {
		for (size_t j = 0; j < 4 && units[i].suffix[j] != NULL; j++) {
			unsigned shift = units[i].shift;
			if (strcasecmp(end, units[i].suffix[j]) != 0)
				continue;
			if (shift > 0 && whole > (UINT64_MAX >> shift))
				goto range;
			value = whole << shift;
			/* nano / 1e9 of a unit; split to avoid overflow. */
			value += (uint64_t)(((unsigned __int128)nano << shift) / 1000000000u);
			if (value == 0)
				return berth_error_set(err, 0,
				                       "size `%s` must be greater than zero", s);
			*bytes = value;
			return 0;
		}
	}
bad:
	return berth_error_set(err, 0, "`%s` is not a size (use e.g. 256M, 1.5G or bytes)",
	                       s ? s : "");
range:
	return berth_error_set_plain(err, ERANGE, "size `%s` is too large", s);
}

int berth_parse_cpus(const char *s, uint64_t *nanocpus, berth_error_t *err)
{
	const uint64_t max = 1024ull * 1000000000ull;
	uint64_t whole, nano, value;
	const char *end;

	if (s == NULL || parse_decimal(s, &end, &whole, &nano) < 0)
		goto bad;
	if (whole > 1024)
		goto range;
	value = whole * 1000000000ull + nano;
	if (*end == '/') {
		uint64_t den;
		if (nano != 0 || berth_parse_u64(end + 1, 1, 1000000, &den, NULL) < 0)
			goto bad;
		value = whole * 1000000000ull / den;
	} else if (*end != '\0') {
		goto bad;
	}
	if (value == 0)
		return berth_error_set(err, 0, "cpus `%s` must be greater than zero", s);
	if (value > max)
		goto range;
	*nanocpus = value;
	return 0;
bad:
	return berth_error_set(err, 0, "`%s` is not a CPU amount (use e.g. 0.5, 2 or 1/16)",
	                       s ? s : "");
range:
	return berth_error_set(err, 0, "cpus `%s` is more than 1024", s);
}

/* Units of a duration, largest first: a duration names them in this order. */
static const struct {
	const char *name;
	uint64_t ms;
} duration_units[] = {
        {"h", 3600000},
        {"m", 60000},
        {"s", 1000},
        {"ms", 1},
};

/* The unit at `p`: "ms" must win over "m". Returns its index or -1. */
static int duration_unit(const char *p, const char **end)
{
	int best = -1;
	size_t best_len = 0;

	for (size_t i = 0; i < BERTH_ARRAY_SIZE(duration_units); i++) {
		size_t n = strlen(duration_units[i].name);
		if (strncmp(p, duration_units[i].name, n) == 0 && n > best_len) {
			best = (int)i;
			best_len = n;
		}
	}
	*end = p + best_len;
	return best;
}

int berth_parse_duration(const char *s, uint64_t *ms, berth_error_t *err)
{
	const uint64_t max = (uint64_t)INT64_MAX;
	uint64_t total = 0;
	const char *p = s;
	int last = -1;

	if (s == NULL || *s == '\0')
		goto bad;
	while (*p != '\0') {
		uint64_t whole, nano, part, frac;
		const char *end;
		int unit, r;

		r = parse_decimal(p, &end, &whole, &nano);
		if (r == -ERANGE)
			goto range;
		if (r < 0)
			goto bad;
		if (*end == '\0' && p == s) {
			unit = 2; /* a plain number is seconds */
		} else {
			unit = duration_unit(end, &end);
			/* "1s30m" or "1m1m" is more likely a typo than a sum. */
			if (unit < 0 || unit <= last)
				goto bad;
		}
		last = unit;
		/* nano is in billionths of the unit; refuse what is finer than 1 ms. */
		frac = nano * duration_units[unit].ms;
		if (frac % 1000000000u != 0)
			goto bad;
		if (__builtin_mul_overflow(whole, duration_units[unit].ms, &part) ||
		    __builtin_add_overflow(part, frac / 1000000000u, &part) ||
		    __builtin_add_overflow(total, part, &total) || total > max)
			goto range;
		p = end;
	}
	*ms = total;
	return 0;
bad:
	return berth_error_set(err, 0, "`%s` is not a duration (use e.g. 30s, 10m, 2h or seconds)",
	                       s ? s : "");
range:
	return berth_error_set_plain(err, ERANGE, "duration `%s` is too large", s);
}

int berth_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, berth_error_t *err)
{
	uint64_t v = 0;
	const char *p = s;

	if (s == NULL || *s == '\0')
		goto bad;
	for (; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			goto bad;
		if (v > (UINT64_MAX - 9) / 10)
			goto range;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v < min || v > max)
		goto range;
	*out = v;
	return 0;
bad:
	return berth_error_set(err, 0, "`%s` is not a number", s ? s : "");
range:
	return berth_error_set(err, 0, "`%s` is out of range (%llu to %llu)", s,
	                       (unsigned long long)min, (unsigned long long)max);
}

int berth_parse_user(const char *s, uint32_t *uid, uint32_t *gid, berth_error_t *err)
{
	cleanup_free char *copy = NULL;
	char *colon;
	uint64_t u, g;

	if (s == NULL)
		return berth_error_set(err, 0, "missing user");
	copy = xstrdup(s);
	colon = strchr(copy, ':');
	if (colon != NULL)
		*colon = '\0';
	/* 2^32-1 is (uid_t)-1, which means "unchanged" to the kernel. */
	if (berth_parse_u64(copy, 0, UINT32_MAX - 1, &u, NULL) < 0)
		goto bad;
	g = u;
	if (colon != NULL && berth_parse_u64(colon + 1, 0, UINT32_MAX - 1, &g, NULL) < 0)
		goto bad;
	*uid = (uint32_t)u;
	*gid = (uint32_t)g;
	return 0;
bad:
	return berth_error_set(err, 0, "`%s` is not a user (use UID or UID:GID, numeric)", s);
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},
        {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},
        {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
        {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT},
        {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
        {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},
        {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
        {"IO", SIGIO},     {"PWR", SIGPWR},       {"SYS", SIGSYS},
};

int berth_parse_signal(const char *s, int *sig, berth_error_t *err)
{
	const char *name = s;
	uint64_t n;

	if (s == NULL || *s == '\0')
		goto bad;
	if (berth_parse_u64(s, 1, (uint64_t)SIGRTMAX, &n, NULL) == 0) {
		*sig = (int)n;
		return 0;
	}
	if (strncasecmp(name, "SIG", 3) == 0)
		name += 3;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(signals); i++) {
		if (strcasecmp(name, signals[i].name) == 0) {
			*sig = signals[i].sig;
			return 0;
		}
	}
bad:
	return berth_error_set(err, 0, "`%s` is not a signal (use e.g. TERM, SIGKILL or 9)",
	                       s ? s : "");
}

const char *berth_signal_name(int sig)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(signals); i++)
		if (signals[i].sig == sig)
			return signals[i].name;
	return NULL;
}
