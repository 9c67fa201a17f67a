/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The content-addressed store (see berth/image.h for the layout). Blobs are
 * hashed while they are written, fsync'd, checked against the digest they
 * should have and only then renamed to it, so a name under blobs/ always
 * holds exactly its content. Layers are unpacked into a temporary directory
 * and renamed the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "image-internal.h"

#define IMAGES_FILE "images.json"
#define IMAGES_LOCK "images.lock"
/* The records are small; a file beyond this is not ours. */
#define IMAGES_MAX (64u * 1024u * 1024u)

static int open_dir(int at, const char *root, const char *name, berth_error_t *err)
{
	int fd;

	if (mkdirat(at, name, 0700) < 0 && errno != EEXIST)
		return berth_error_set(err, errno, "mkdir `%s/%s`", root, name);
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return berth_error_set(err, errno, "open `%s/%s`", root, name);
	return fd;
}

/*
 * What killed processes left in tmp/: a blob or layer being written is
 * abandoned after a day (nothing takes that long), a partial download after
 * a week (a pull may resume it until then).
 */
static void remove_leftovers(struct berth_image_store *s)
{
	int fd = openat(s->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cleanup_closedir DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	time_t now = time(NULL);
	struct dirent *e;

	if (d == NULL) {
		berth_close_keep_errno(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		time_t max_age;

		if (strncmp(e->d_name, "blob-", 5) == 0 || strncmp(e->d_name, "dir-", 4) == 0)
			max_age = 24 * 3600;
		else if (strncmp(e->d_name, "partial-", 8) == 0)
			max_age = 7 * 24 * 3600;
		else
			continue;
		if (fstatat(s->tmp_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_mtime + max_age < now)
			berth_rmtree_at(s->tmp_fd, e->d_name, NULL);
	}
}

int berth_image_store_open(const char *state_dir, struct berth_image_store **out,
                           berth_error_t *err)
{
	static const char *const dirs[] = {"blobs", "blobs/sha256", "layers", "layers/sha256",
	                                   "tmp"};
	struct berth_image_store *s = xcalloc(1, sizeof(*s));
	int r;

	*out = NULL;
	s->root_fd = s->blobs_fd = s->tmp_fd = s->gc_fd = -1;
	s->root = xasprintf("%s/images", state_dir);
	s->state_dir = xstrdup(state_dir);
	r = berth_image_limits_from_env(&s->limits, err);
	if (r < 0)
		goto fail;
	r = berth_mkdir_p(s->root, 0700, err);
	if (r < 0)
		goto fail;
	s->root_fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0) {
		r = berth_error_set(err, errno, "open `%s`", s->root);
		goto fail;
	}
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(dirs); i++) {
		if (mkdirat(s->root_fd, dirs[i], 0700) < 0 && errno != EEXIST) {
			r = berth_error_set(err, errno, "mkdir `%s/%s`", s->root, dirs[i]);
			goto fail;
		}
	}
	s->blobs_fd = open_dir(s->root_fd, s->root, "blobs/sha256", err);
	if (s->blobs_fd < 0) {
		r = s->blobs_fd;
		goto fail;
	}
	s->tmp_fd = open_dir(s->root_fd, s->root, "tmp", err);
	if (s->tmp_fd < 0) {
		r = s->tmp_fd;
		goto fail;
	}
	/* Whoever has the store open may be writing blobs not yet recorded: prune waits. */
	s->gc_fd = openat(s->root_fd, "gc.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->gc_fd < 0 || flock(s->gc_fd, LOCK_SH) < 0) {
		r = berth_error_set(err, errno, "lock `%s/gc.lock`", s->root);
		goto fail;
	}
	remove_leftovers(s);
	*out = s;
	return 0;
fail:
	berth_image_store_free(s);
	return berth_error_wrap(err, "image store");
}

void berth_image_store_free(struct berth_image_store *s)
{
	if (s == NULL)
		return;
	berth_close_keep_errno(s->root_fd);
	berth_close_keep_errno(s->blobs_fd);
	berth_close_keep_errno(s->tmp_fd);
	berth_close_keep_errno(s->gc_fd);
	free(s->root);
	free(s->state_dir);
	free(s);
}

const char *berth_image_store_root(const struct berth_image_store *s)
{
	return s->root;
}

char *berth_image_store_blob_path(const struct berth_image_store *s, const char *digest)
{
	return xasprintf("%s/blobs/sha256/%s", s->root, digest + 7);
}

bool berth_image_store_has_blob(const struct berth_image_store *s, const char *digest)
{
	struct stat st;

	return berth_digest_valid(digest) &&
	       fstatat(s->blobs_fd, digest + 7, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

int berth_image_store_read_blob(const struct berth_image_store *s, const char *digest, size_t max,
                                char **out, size_t *len, berth_error_t *err)
{
	if (!berth_digest_valid(digest))
		return berth_error_set_plain(err, EINVAL, "`%s` is not a sha256 digest", digest);
	return berth_read_file_at(s->blobs_fd, digest + 7, max, out, len, err);
}

int berth_image_read_json(const char *path, size_t max, json_t **out, berth_error_t *err)
{
	cleanup_free char *text = NULL;
	json_error_t jerr;
	size_t len;
	int r;

	r = berth_read_file_at(AT_FDCWD, path, max, &text, &len, err);
	if (r < 0)
		return r;
	*out = json_loadb(text, len, 0, &jerr);
	if (*out == NULL)
		return berth_error_set_plain(err, EINVAL, "parse `%s`: %s (line %d)", path,
		                             jerr.text, jerr.line);
	return 0;
}

int berth_image_store_read_json(const struct berth_image_store *s, const char *digest, json_t **out,
                                berth_error_t *err)
{
	cleanup_free char *text = NULL;
	json_error_t jerr;
	size_t len;
	int r;

	r = berth_image_store_read_blob(s, digest, BERTH_MANIFEST_MAX, &text, &len, err);
	if (r < 0)
		return r;
	*out = json_loadb(text, len, 0, &jerr);
	if (*out == NULL)
		return berth_error_set_plain(err, EINVAL, "blob %s is not JSON: %s", digest,
		                             jerr.text);
	return 0;
}

int berth_image_store_tmpdir(struct berth_image_store *s, char **path, berth_error_t *err)
{
	char *p = xasprintf("%s/tmp/dir-XXXXXX", s->root);

	if (mkdtemp(p) == NULL) {
		int r = berth_error_set(err, errno, "create `%s`", p);
		free(p);
		return r;
	}
	*path = p;
	return 0;
}

/* ---- blob writers ---- */

int berth_blob_writer_open(struct berth_image_store *s, const char *resume_digest,
                           struct berth_blob_writer *w, berth_error_t *err)
{
	struct sha256_ctx *ctx = xmalloc(sizeof(*ctx));

	memset(w, 0, sizeof(*w));
	w->store = s;
	w->hash = ctx;
	sha256_init(ctx);
	if (resume_digest != NULL) {
		/*
		 * One partial file per digest: what an interrupted download left.
		 * Two pulls of the same blob take turns with a lock on it; the one
		 * that waited finds the file renamed into place (or removed) and
		 * starts again, or finds the blob there.
		 */
		char buf[65536];
		ssize_t n;

		w->resumable = true;
		w->tmp_path = xasprintf("%s/tmp/partial-%s", s->root, resume_digest + 7);
		for (;;) {
			struct stat a, b;

			if (berth_image_store_has_blob(s, resume_digest)) {
				free(w->tmp_path);
				free(w->hash);
				memset(w, 0, sizeof(*w));
				w->fd = -1;
				return -EEXIST;
			}
			w->fd = open(w->tmp_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (w->fd < 0 || flock(w->fd, LOCK_EX) < 0 || fstat(w->fd, &a) < 0)
				goto fail;
			if (stat(w->tmp_path, &b) == 0 && a.st_ino == b.st_ino &&
			    a.st_dev == b.st_dev)
				break;
			close(w->fd);
		}
		while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
			sha256_update(ctx, (size_t)n, (const uint8_t *)buf);
			w->offset += (uint64_t)n;
		}
		if (n < 0)
			goto fail;
		return 0;
	}
	w->tmp_path = xasprintf("%s/tmp/blob-XXXXXX", s->root);
	w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
	if (w->fd < 0)
		goto fail;
	return 0;
fail : {
	int r = berth_error_set(err, errno, "open `%s`", w->tmp_path);
	berth_close_keep_errno(w->fd);
	w->fd = -1;
	free(w->tmp_path);
	free(w->hash);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	return r;
}
}

int berth_blob_writer_write(struct berth_blob_writer *w, const void *data, size_t len,
                            berth_error_t *err)
{
	int r = berth_write_all(w->fd, data, len);

	if (r < 0)
		return berth_error_set(err, -r, "write `%s`", w->tmp_path);
	sha256_update(w->hash, len, data);
	w->offset += len;
	return 0;
}

int berth_blob_writer_reset(struct berth_blob_writer *w, berth_error_t *err)
{
	if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
		return berth_error_set(err, errno, "truncate `%s`", w->tmp_path);
	sha256_init(w->hash);
	w->offset = 0;
	return 0;
}

static void writer_close(struct berth_blob_writer *w)
{
	berth_close_keep_errno(w->fd);
	free(w->tmp_path);
	free(w->hash);
	memset(w, 0, sizeof(*w));
	w->fd = -1;
}

int berth_blob_writer_commit(struct berth_blob_writer *w, const char *expect,
                             char out[BERTH_DIGEST_MAX], berth_error_t *err)
{
	uint8_t raw[SHA256_DIGEST_SIZE];
	char got[BERTH_DIGEST_MAX];
	cleanup_free char *final = NULL;
	int r;

	sha256_digest(w->hash, sizeof(raw), raw);
	berth_digest_format(raw, got);
	if (expect != NULL && strcmp(got, expect) != 0) {
		r = berth_error_set_plain(err, EBADMSG,
		                          "content does not match its digest: expected %s, got %s "
		                          "(%llu bytes)",
		                          expect, got, (unsigned long long)w->offset);
		berth_blob_writer_discard(w);
		return r;
	}
	/* The bytes reach the disk before the name does. */
	if (fsync(w->fd) < 0) {
		r = berth_error_set(err, errno, "fsync `%s`", w->tmp_path);
		berth_blob_writer_discard(w);
		return r;
	}
	final = berth_image_store_blob_path(w->store, got);
	if (fchmod(w->fd, 0644) < 0 || rename(w->tmp_path, final) < 0) {
		r = berth_error_set(err, errno, "store blob `%s`", final);
		berth_blob_writer_discard(w);
		return r;
	}
	fsync(w->store->blobs_fd);
	if (out != NULL)
		memcpy(out, got, BERTH_DIGEST_MAX);
	writer_close(w);
	return 0;
}

void berth_blob_writer_abort(struct berth_blob_writer *w)
{
	if (w->hash == NULL)
		return;
	if (!w->resumable)
		unlink(w->tmp_path);
	writer_close(w);
}

void berth_blob_writer_discard(struct berth_blob_writer *w)
{
	if (w->hash == NULL)
		return;
	unlink(w->tmp_path);
	writer_close(w);
}

int berth_image_store_put(struct berth_image_store *s, const void *data, size_t len,
                          const char *expect, char out[BERTH_DIGEST_MAX], berth_error_t *err)
{
	struct berth_blob_writer w;
	int r;

	if (expect != NULL && berth_image_store_has_blob(s, expect)) {
		char got[BERTH_DIGEST_MAX];
		berth_digest_of(data, len, got);
		if (strcmp(got, expect) != 0)
			return berth_error_set_plain(err, EBADMSG,
			                             "content does not match its digest: expected "
			                             "%s, got %s",
			                             expect, got);
		if (out != NULL)
			memcpy(out, got, BERTH_DIGEST_MAX);
		return 0;
	}
	r = berth_blob_writer_open(s, NULL, &w, err);
	if (r < 0)
		return r;
	r = berth_blob_writer_write(&w, data, len, err);
	if (r < 0) {
		berth_blob_writer_discard(&w);
		return r;
	}
	return berth_blob_writer_commit(&w, expect, out, err);
}

int berth_image_store_put_file(struct berth_image_store *s, const char *path, const char *expect,
                               char out[BERTH_DIGEST_MAX], berth_error_t *err)
{
	cleanup_close int fd = -1;
	struct berth_blob_writer w;
	char buf[1 << 16];
	ssize_t n;
	int r;

	/* Already there: its name is its content's digest, checked when it was written. */
	if (expect != NULL && berth_image_store_has_blob(s, expect)) {
		if (out != NULL)
			memcpy(out, expect, BERTH_DIGEST_MAX);
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return berth_error_set(err, errno, "open `%s`", path);
	r = berth_blob_writer_open(s, NULL, &w, err);
	if (r < 0)
		return r;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = berth_error_set(err, errno, "read `%s`", path);
			berth_blob_writer_discard(&w);
			return r;
		}
		r = berth_blob_writer_write(&w, buf, (size_t)n, err);
		if (r < 0) {
			berth_blob_writer_discard(&w);
			return r;
		}
	}
	r = berth_blob_writer_commit(&w, expect, out, err);
	if (r < 0)
		return berth_error_wrap(err, "`%s`", path);
	return 0;
}

/* ---- layers ---- */

int berth_image_store_layer(struct berth_image_store *s, const char *blob_digest,
                            const char *diff_id, char **dir, berth_error_t *err)
{
	cleanup_free char *final = NULL;
	cleanup_free char *tmp = NULL;
	cleanup_close int blob = -1;
	cleanup_close int tfd = -1;
	char got[BERTH_DIGEST_MAX];
	struct stat st;
	int r;

	if (!berth_digest_valid(diff_id) || !berth_digest_valid(blob_digest))
		return berth_error_set_plain(err, EINVAL, "layer %s: bad digest", blob_digest);
	final = xasprintf("%s/layers/sha256/%s", s->root, diff_id + 7);
	if (stat(final, &st) == 0) {
		*dir = steal_pointer(&final);
		return 0;
	}
	blob = openat(s->blobs_fd, blob_digest + 7, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (blob < 0)
		return berth_error_set(err, errno, "layer %s", blob_digest);
	r = berth_image_store_tmpdir(s, &tmp, err);
	if (r < 0)
		return r;
	tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd < 0) {
		r = berth_error_set(err, errno, "open `%s`", tmp);
		goto fail;
	}
	r = berth_image_unpack(blob, tfd, &s->limits, got, err);
	if (r < 0) {
		berth_error_wrap(err, "unpack layer %s", blob_digest);
		goto fail;
	}
	if (strcmp(got, diff_id) != 0) {
		r = berth_error_set_plain(err, EBADMSG,
		                          "layer %s: its content is %s, but the image config says "
		                          "%s",
		                          blob_digest, got, diff_id);
		goto fail;
	}
	/* The layer's own root entry may have set another mode; the root is what overlay sees. */
	if (syncfs(tfd) < 0 || rename(tmp, final) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY) {
			/* Another process unpacked it meanwhile: theirs is as good. */
			berth_rmtree(tmp, NULL);
			*dir = steal_pointer(&final);
			return 0;
		}
		r = berth_error_set(err, errno, "rename `%s` to `%s`", tmp, final);
		goto fail;
	}
	*dir = steal_pointer(&final);
	return 0;
fail:
	berth_rmtree(tmp, NULL);
	return r;
}

/* ---- records ---- */

static int lock_records(struct berth_image_store *s, berth_error_t *err)
{
	int fd = openat(s->root_fd, IMAGES_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return berth_error_set(err, errno, "open `%s/" IMAGES_LOCK "`", s->root);
	if (flock(fd, LOCK_EX) < 0) {
		int r = berth_error_set(err, errno, "lock `%s/" IMAGES_LOCK "`", s->root);
		close(fd);
		return r;
	}
	return fd;
}

static int read_records(struct berth_image_store *s, json_t **out, berth_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/" IMAGES_FILE, s->root);
	int r = berth_image_read_json(path, IMAGES_MAX, out, err);

	if (r == -ENOENT) {
		*out = json_pack("{s:i, s:{}}", "version", 1, "images");
		return 0;
	}
	if (r < 0)
		return r;
	if (!json_is_object(json_object_get(*out, "images"))) {
		json_decref(*out);
		*out = NULL;
		return berth_error_set_plain(err, EINVAL, "`%s` has no \"images\" object", path);
	}
	return 0;
}

static int write_records(struct berth_image_store *s, json_t *doc, berth_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/" IMAGES_FILE, s->root);
	cleanup_free char *tmp = xasprintf("%s/" IMAGES_FILE ".tmp", s->root);
	cleanup_free char *text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	cleanup_close int fd = -1;
	int r;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_error_set(err, errno, "open `%s`", tmp);
	r = berth_write_all(fd, text, strlen(text));
	if (r < 0 || fsync(fd) < 0)
		return berth_error_set(err, r < 0 ? -r : errno, "write `%s`", tmp);
	if (rename(tmp, path) < 0)
		return berth_error_set(err, errno, "rename `%s`", tmp);
	fsync(s->root_fd);
	return 0;
}

int berth_image_store_tag(struct berth_image_store *s, const char *name,
                          const char *manifest_digest, berth_error_t *err)
{
	return berth_image_store_tag_stamped(s, name, manifest_digest, NULL, err);
}

int berth_image_store_tag_stamped(struct berth_image_store *s, const char *name,
                                  const char *manifest_digest, const char *stamp,
                                  berth_error_t *err)
{
	cleanup_close int lock = lock_records(s, err);
	json_t *doc = NULL, *images, *rec, *v;
	const char *key;
	size_t i;
	int r;

	if (lock < 0)
		return lock;
	r = read_records(s, &doc, err);
	if (r < 0)
		return r;
	images = json_object_get(doc, "images");
	/* A name names one image: take it from any other. */
	json_object_foreach (images, key, rec) {
		json_t *tags = json_object_get(rec, "tags");
		json_array_foreach (tags, i, v) {
			if (json_is_string(v) && strcmp(json_string_value(v), name) == 0) {
				json_array_remove(tags, i);
				break;
			}
		}
	}
	rec = json_object_get(images, manifest_digest);
	if (rec == NULL) {
		json_t *manifest = NULL;
		r = berth_image_store_read_json(s, manifest_digest, &manifest, err);
		if (r < 0) {
			json_decref(doc);
			return r;
		}
		rec = json_pack("{s:O?, s:[], s:I}", "config",
		                json_object_get(json_object_get(manifest, "config"), "digest"),
		                "tags", "created", (json_int_t)time(NULL));
		json_decref(manifest);
		json_object_set_new(images, manifest_digest, rec);
	}
	json_array_append_new(json_object_get(rec, "tags"), json_string(name));
	if (stamp != NULL) {
		if (!json_is_object(json_object_get(rec, "stamps")))
			json_object_set_new(rec, "stamps", json_object());
		json_object_set_new(json_object_get(rec, "stamps"), name, json_string(stamp));
	}
	r = write_records(s, doc, err);
	json_decref(doc);
	return r;
}

int berth_image_store_lookup(struct berth_image_store *s, const char *name,
                             char digest[BERTH_DIGEST_MAX], berth_error_t *err)
{
	return berth_image_store_lookup_stamped(s, name, NULL, digest, err);
}

int berth_image_store_lookup_stamped(struct berth_image_store *s, const char *name,
                                     const char *stamp, char digest[BERTH_DIGEST_MAX],
                                     berth_error_t *err)
{
	json_t *doc = NULL, *rec, *v;
	const char *key;
	size_t i;
	int r;

	r = read_records(s, &doc, err);
	if (r < 0)
		return r;
	json_object_foreach (json_object_get(doc, "images"), key, rec) {
		json_array_foreach (json_object_get(rec, "tags"), i, v) {
			const char *st = json_string_value(
			        json_object_get(json_object_get(rec, "stamps"), name));
			if (json_is_string(v) && strcmp(json_string_value(v), name) == 0 &&
			    (stamp == NULL || (st != NULL && strcmp(st, stamp) == 0)) &&
			    berth_digest_valid(key) && berth_image_store_has_blob(s, key)) {
				snprintf(digest, BERTH_DIGEST_MAX, "%s", key);
				json_decref(doc);
				return 0;
			}
		}
	}
	json_decref(doc);
	return -ENOENT;
}

int berth_image_store_adopt_file(struct berth_image_store *s, const char *path, const char *expect,
                                 char out[BERTH_DIGEST_MAX], berth_error_t *err)
{
	cleanup_free char *final = NULL;
	cleanup_close int fd = -1;
	struct sha256_ctx ctx;
	uint8_t raw[SHA256_DIGEST_SIZE];
	char got[BERTH_DIGEST_MAX];
	char *buf;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return berth_error_set(err, errno, "open `%s`", path);
	buf = xmalloc(1 << 17);
	sha256_init(&ctx);
	while ((n = read(fd, buf, 1 << 17)) > 0)
		sha256_update(&ctx, (size_t)n, (const uint8_t *)buf);
	free(buf);
	if (n < 0)
		return berth_error_set(err, errno, "read `%s`", path);
	sha256_digest(&ctx, sizeof(raw), raw);
	berth_digest_format(raw, got);
	if (expect != NULL && strcmp(got, expect) != 0)
		return berth_error_set_plain(err, EBADMSG,
		                             "`%s` does not match its digest: expected %s, got %s",
		                             path, expect, got);
	if (out != NULL)
		memcpy(out, got, BERTH_DIGEST_MAX);
	if (berth_image_store_has_blob(s, got))
		return 0;
	final = berth_image_store_blob_path(s, got);
	if (fsync(fd) < 0 || fchmod(fd, 0644) < 0 || rename(path, final) < 0)
		return berth_error_set(err, errno, "store `%s` as `%s`", path, final);
	fsync(s->blobs_fd);
	return 0;
}

int berth_image_store_records(struct berth_image_store *s, json_t **out, berth_error_t *err)
{
	json_t *doc = NULL;
	int r = read_records(s, &doc, err);

	if (r < 0)
		return r;
	*out = json_incref(json_object_get(doc, "images"));
	json_decref(doc);
	return 0;
}

int berth_image_store_untag(struct berth_image_store *s, const char *name, berth_error_t *err)
{
	cleanup_close int lock = lock_records(s, err);
	json_t *doc = NULL, *images, *rec, *v;
	const char *key;
	void *tmp;
	bool found = false;
	size_t i;
	int r;

	if (lock < 0)
		return lock;
	r = read_records(s, &doc, err);
	if (r < 0)
		return r;
	images = json_object_get(doc, "images");
	json_object_foreach_safe(images, tmp, key, rec)
	{
		json_t *tags = json_object_get(rec, "tags");
		/* A digest names the image itself: all its tags go. */
		if (strcmp(key, name) == 0) {
			json_array_clear(tags);
			found = true;
		}
		json_array_foreach (tags, i, v) {
			if (json_is_string(v) && strcmp(json_string_value(v), name) == 0) {
				json_array_remove(tags, i);
				found = true;
				break;
			}
		}
		/* An image with no name left is forgotten; its blobs stay (shared, maybe in use).
		 */
		if (json_array_size(tags) == 0)
			json_object_del(images, key);
	}
	if (!found) {
		json_decref(doc);
		return berth_error_set_plain(err, ENOENT, "no image named `%s`", name);
	}
	r = write_records(s, doc, err);
	json_decref(doc);
	return r;
}
