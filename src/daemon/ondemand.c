/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl and libarchive, loaded by berthd when first used.
 *
 * berthd uses libcurl for webhooks and registry pulls and libarchive for
 * unpacking images; an idle daemon needs neither. Linked at start-up, with
 * their own dependencies (OpenSSL, GnuTLS through libldap, p11-kit, ICU
 * through libxml2, ...), they cost ~9.5 MiB of resident memory for their
 * constructors and relocations alone, more than everything else berthd
 * holds. So berthd is not linked against them: every function of theirs
 * it calls is defined here as a small trampoline that loads the library
 * (dlopen, once) and calls the real function, found with dlsym and kept.
 * The code that uses them is unchanged (the image library is shared with
 * `berth-image`, which links them as usual).
 *
 * When a library cannot be loaded, the functions that make its objects
 * (curl_global_init, curl_easy_init, archive_read_new, ...) fail as they
 * document failure, with the reason logged once; the others cannot be
 * reached without such an object. Variadic functions pass their one
 * argument on with the type its option says, as libcurl reads it.
 */
#define CURL_DISABLE_TYPECHECK /* curl.h would make curl_easy_setopt a macro */
#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/log.h"

struct lib {
	const char *soname;
	pthread_once_t once;
	void *handle;
};

static struct lib curl_lib = {"libcurl.so.4", PTHREAD_ONCE_INIT, NULL};
static struct lib archive_lib = {"libarchive.so.13", PTHREAD_ONCE_INIT, NULL};

static void load(struct lib *l)
{
	void *h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);

	if (h == NULL)
		berth_error_log("load %s: %s", l->soname, dlerror());
	__atomic_store_n(&l->handle, h, __ATOMIC_RELEASE);
}

static void load_curl(void)
{
	load(&curl_lib);
}

static void load_archive(void)
{
	load(&archive_lib);
}

static void *lib_sym(struct lib *l, void (*loader)(void), const char *name)
{
	void *p;

	pthread_once(&l->once, loader);
	if (__atomic_load_n(&l->handle, __ATOMIC_ACQUIRE) == NULL)
		return NULL;
	p = dlsym(l->handle, name);
	if (p == NULL)
		berth_error_log("%s has no `%s`: %s", l->soname, name, dlerror());
	return p;
}

static void *curl_sym(const char *name)
{
	return lib_sym(&curl_lib, load_curl, name);
}

static void *archive_sym(const char *name)
{
	return lib_sym(&archive_lib, load_archive, name);
}

/*
 * FN: a pointer to the real `name` of library LIB, found once (threads may
 * race to find it: they find the same). On failure, `return FAIL`.
 */
#define REAL(lib, name, fail)                                                   \
	static __typeof__(&name) real_##name;                                   \
	__typeof__(&name) fn = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE); \
	if (fn == NULL) {                                                       \
		void *sym_ = lib##_sym(#name);                                  \
		if (sym_ == NULL)                                               \
			return fail;                                            \
		memcpy(&fn, &sym_, sizeof(fn));                                 \
		__atomic_store_n(&real_##name, fn, __ATOMIC_RELEASE);           \
	}

/* The same for a function without a result: nothing to report failure with. */
#define REAL_VOID(lib, name) REAL(lib, name, )

/* ---- libcurl ---- */

CURLcode curl_global_init(long flags)
{
	REAL(curl, curl_global_init, CURLE_FAILED_INIT);
	return fn(flags);
}

void curl_global_cleanup(void)
{
	/* Nothing to clean up in a library never loaded. */
	if (__atomic_load_n(&curl_lib.handle, __ATOMIC_ACQUIRE) == NULL)
		return;
	REAL_VOID(curl, curl_global_cleanup);
	fn();
}

CURL *curl_easy_init(void)
{
	REAL(curl, curl_easy_init, NULL);
	return fn();
}

void curl_easy_cleanup(CURL *h)
{
	REAL_VOID(curl, curl_easy_cleanup);
	fn(h);
}

CURLcode curl_easy_perform(CURL *h)
{
	REAL(curl, curl_easy_perform, CURLE_FAILED_INIT);
	return fn(h);
}

/* The option's argument has the type its number's range says (curl.h, CURLOPTTYPE_*). */
CURLcode curl_easy_setopt(CURL *h, CURLoption option, ...)
{
	va_list ap;
	CURLcode r;

	REAL(curl, curl_easy_setopt, CURLE_FAILED_INIT);
	va_start(ap, option);
	if (option < CURLOPTTYPE_OBJECTPOINT)
		r = fn(h, option, va_arg(ap, long));
	else if (option < CURLOPTTYPE_FUNCTIONPOINT)
		r = fn(h, option, va_arg(ap, void *));
	else if (option < CURLOPTTYPE_OFF_T)
		r = fn(h, option, va_arg(ap, void (*)(void)));
	else if (option < CURLOPTTYPE_BLOB)
		r = fn(h, option, va_arg(ap, curl_off_t));
	else
		r = fn(h, option, va_arg(ap, void *));
	va_end(ap);
	return r;
}

/* Every CURLINFO_* takes a pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	va_list ap;
	CURLcode r;

	REAL(curl, curl_easy_getinfo, CURLE_FAILED_INIT);
	va_start(ap, info);
	r = fn(h, info, va_arg(ap, void *));
	va_end(ap);
	return r;
}

const char *curl_easy_strerror(CURLcode code)
{
	REAL(curl, curl_easy_strerror, "libcurl could not be loaded");
	return fn(code);
}

char *curl_easy_escape(CURL *h, const char *s, int length)
{
	REAL(curl, curl_easy_escape, NULL);
	return fn(h, s, length);
}

void curl_free(void *p)
{
	REAL_VOID(curl, curl_free);
	fn(p);
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
	REAL(curl, curl_slist_append, NULL);
	return fn(list, s);
}

void curl_slist_free_all(struct curl_slist *list)
{
	if (list == NULL)
		return;
	REAL_VOID(curl, curl_slist_free_all);
	fn(list);
}

CURLM *curl_multi_init(void)
{
	REAL(curl, curl_multi_init, NULL);
	return fn();
}

CURLMcode curl_multi_cleanup(CURLM *m)
{
	REAL(curl, curl_multi_cleanup, CURLM_INTERNAL_ERROR);
	return fn(m);
}

CURLMcode curl_multi_add_handle(CURLM *m, CURL *h)
{
	REAL(curl, curl_multi_add_handle, CURLM_INTERNAL_ERROR);
	return fn(m, h);
}

CURLMcode curl_multi_remove_handle(CURLM *m, CURL *h)
{
	REAL(curl, curl_multi_remove_handle, CURLM_INTERNAL_ERROR);
	return fn(m, h);
}

CURLMcode curl_multi_assign(CURLM *m, curl_socket_t s, void *p)
{
	REAL(curl, curl_multi_assign, CURLM_INTERNAL_ERROR);
	return fn(m, s, p);
}

CURLMsg *curl_multi_info_read(CURLM *m, int *left)
{
	REAL(curl, curl_multi_info_read, NULL);
	return fn(m, left);
}

CURLMcode curl_multi_perform(CURLM *m, int *running)
{
	REAL(curl, curl_multi_perform, CURLM_INTERNAL_ERROR);
	return fn(m, running);
}

CURLMcode curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned int n, int timeout_ms,
                          int *numfds)
{
	REAL(curl, curl_multi_poll, CURLM_INTERNAL_ERROR);
	return fn(m, extra, n, timeout_ms, numfds);
}

CURLMcode curl_multi_socket_action(CURLM *m, curl_socket_t s, int events, int *running)
{
	REAL(curl, curl_multi_socket_action, CURLM_INTERNAL_ERROR);
	return fn(m, s, events, running);
}

/* CURLMOPT_* numbers say their argument's type as CURLOPT_* ones do. */
CURLMcode curl_multi_setopt(CURLM *m, CURLMoption option, ...)
{
	va_list ap;
	CURLMcode r;

	REAL(curl, curl_multi_setopt, CURLM_INTERNAL_ERROR);
	va_start(ap, option);
	if (option < CURLOPTTYPE_OBJECTPOINT)
		r = fn(m, option, va_arg(ap, long));
	else if (option < CURLOPTTYPE_FUNCTIONPOINT)
		r = fn(m, option, va_arg(ap, void *));
	else if (option < CURLOPTTYPE_OFF_T)
		r = fn(m, option, va_arg(ap, void (*)(void)));
	else
		r = fn(m, option, va_arg(ap, curl_off_t));
	va_end(ap);
	return r;
}

const char *curl_multi_strerror(CURLMcode code)
{
	REAL(curl, curl_multi_strerror, "libcurl could not be loaded");
	return fn(code);
}

/* ---- libarchive ---- */

struct archive *archive_read_new(void)
{
	REAL(archive, archive_read_new, NULL);
	return fn();
}

struct archive *archive_write_disk_new(void)
{
	REAL(archive, archive_write_disk_new, NULL);
	return fn();
}

/* Functions of an archive object: the library is loaded, as the object exists. */
#define ARCHIVE_FN(ret, name, params, args)         \
	ret name params                             \
	{                                           \
		REAL(archive, name, ARCHIVE_FATAL); \
		return fn args;                     \
	}
#define ENTRY_FN(ret, name)               \
	ret name(struct archive_entry *e) \
	{                                 \
		REAL(archive, name, 0);   \
		return fn(e);             \
	}

ARCHIVE_FN(int, archive_read_free, (struct archive * a), (a))
ARCHIVE_FN(int, archive_write_free, (struct archive * a), (a))
ARCHIVE_FN(int, archive_read_support_filter_all, (struct archive * a), (a))
ARCHIVE_FN(int, archive_read_support_format_tar, (struct archive * a), (a))
ARCHIVE_FN(int, archive_read_support_format_gnutar, (struct archive * a), (a))
ARCHIVE_FN(int, archive_read_support_format_raw, (struct archive * a), (a))
ARCHIVE_FN(int, archive_read_open,
           (struct archive * a, void *data, archive_open_callback *open,
            archive_read_callback *read, archive_close_callback *close),
           (a, data, open, read, close))
ARCHIVE_FN(int, archive_read_open_fd, (struct archive * a, int fd, size_t block), (a, fd, block))
ARCHIVE_FN(int, archive_read_open_filename, (struct archive * a, const char *path, size_t block),
           (a, path, block))
ARCHIVE_FN(int, archive_read_next_header, (struct archive * a, struct archive_entry **e), (a, e))
ARCHIVE_FN(la_ssize_t, archive_read_data, (struct archive * a, void *buf, size_t n), (a, buf, n))
ARCHIVE_FN(int, archive_read_data_block,
           (struct archive * a, const void **buf, size_t *n, la_int64_t *offset),
           (a, buf, n, offset))
ARCHIVE_FN(int, archive_write_disk_set_options, (struct archive * a, int flags), (a, flags))
ARCHIVE_FN(int, archive_write_header, (struct archive * a, struct archive_entry *e), (a, e))
ARCHIVE_FN(la_ssize_t, archive_write_data_block,
           (struct archive * a, const void *buf, size_t n, la_int64_t offset), (a, buf, n, offset))
ARCHIVE_FN(int, archive_write_finish_entry, (struct archive * a), (a))

const char *archive_error_string(struct archive *a)
{
	REAL(archive, archive_error_string, "libarchive could not be loaded");
	return fn(a);
}

/* The message is formatted here (bounded) and passed on as "%s". */
void archive_set_error(struct archive *a, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	REAL_VOID(archive, archive_set_error);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(a, code, "%s", msg);
}

ENTRY_FN(time_t, archive_entry_atime)
ENTRY_FN(int, archive_entry_atime_is_set)
ENTRY_FN(long, archive_entry_atime_nsec)
ENTRY_FN(time_t, archive_entry_mtime)
ENTRY_FN(long, archive_entry_mtime_nsec)
ENTRY_FN(__LA_MODE_T, archive_entry_filetype)
ENTRY_FN(__LA_MODE_T, archive_entry_perm)
ENTRY_FN(la_int64_t, archive_entry_uid)
ENTRY_FN(la_int64_t, archive_entry_gid)
ENTRY_FN(la_int64_t, archive_entry_size)
ENTRY_FN(dev_t, archive_entry_rdevmajor)
ENTRY_FN(dev_t, archive_entry_rdevminor)
ENTRY_FN(const char *, archive_entry_pathname)
ENTRY_FN(const char *, archive_entry_hardlink)
ENTRY_FN(const char *, archive_entry_symlink)
ENTRY_FN(int, archive_entry_xattr_reset)

int archive_entry_xattr_next(struct archive_entry *e, const char **name, const void **value,
                             size_t *size)
{
	REAL(archive, archive_entry_xattr_next, ARCHIVE_FATAL);
	return fn(e, name, value, size);
}

void archive_entry_set_uid(struct archive_entry *e, la_int64_t uid)
{
	REAL_VOID(archive, archive_entry_set_uid);
	fn(e, uid);
}

void archive_entry_set_gid(struct archive_entry *e, la_int64_t gid)
{
	REAL_VOID(archive, archive_entry_set_gid);
	fn(e, gid);
}

void archive_entry_set_perm(struct archive_entry *e, __LA_MODE_T mode)
{
	REAL_VOID(archive, archive_entry_set_perm);
	fn(e, mode);
}

void archive_entry_set_pathname(struct archive_entry *e, const char *path)
{
	REAL_VOID(archive, archive_entry_set_pathname);
	fn(e, path);
}
