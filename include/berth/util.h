/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation and ownership helpers shared by every module.
 *
 * Out of memory is not a recoverable condition in berth: the x-allocators
 * abort. Ownership on every exit path is expressed with the cleanup_*
 * attributes; ownership handed elsewhere is made explicit with
 * steal_pointer() / steal_fd().
 */
#ifndef BERTH_UTIL_H
#define BERTH_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <dirent.h>

#define BERTH_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BERTH_UNUSED        __attribute__((unused))

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

void berth_freep(void *p);
void berth_closep(int *fd);
void berth_fclosep(FILE **f);
void berth_closedirp(DIR **d);
/* Free a NULL-terminated array of strings and the array itself. */
void berth_strv_free(char **v);
void berth_strv_freep(char ***v);
size_t berth_strv_len(char *const *v);
char **berth_strv_dup(char *const *v);

#define cleanup_free     __attribute__((cleanup(berth_freep)))
#define cleanup_close    __attribute__((cleanup(berth_closep)))
#define cleanup_fclose   __attribute__((cleanup(berth_fclosep)))
#define cleanup_closedir __attribute__((cleanup(berth_closedirp)))
#define cleanup_strv     __attribute__((cleanup(berth_strv_freep)))

static inline void *berth_steal_pointer(void *pp)
{
	void **p = (void **)pp;
	void *ret = *p;
	*p = NULL;
	return ret;
}
#define steal_pointer(pp) berth_steal_pointer(pp)

static inline int steal_fd(int *fd)
{
	int ret = *fd;
	*fd = -1;
	return ret;
}

/* close() that keeps errno, for cleanup paths. */
void berth_close_keep_errno(int fd);

/*
 * The length of the valid UTF-8 sequence at `s` (at most `n` bytes), or 0
 * when none starts there (a stray continuation byte, an overlong form, a
 * surrogate, past U+10FFFF, or a sequence cut by `n`).
 */
size_t berth_utf8_seq(const unsigned char *s, size_t n);
/* Whether `len` bytes at `s` are UTF-8 text: valid sequences, no control character. */
bool berth_utf8_text(const char *s, size_t len);
/* Make `s` valid UTF-8 in place: each byte that starts no valid sequence becomes '?'. */
void berth_utf8_sanitize(char *s);
/*
 * Make `s` one line in place, for a message that quotes what came from
 * outside: each control character becomes '?'. Returns `s`.
 */
char *berth_one_line(char *s);

#endif
