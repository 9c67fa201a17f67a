/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Local image sources: an OCI image layout directory, and image archives —
 * `docker save` output (manifest.json, a config and layer tars) or an OCI
 * layout in a tar. Every blob is checked against its digest on the way into
 * the store; an archive is unpacked into the store's tmp/ first, so its
 * blobs are moved, not copied, into place.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "image-internal.h"

/* index.json and manifest.json are small. */
#define INDEX_MAX (4u * 1024u * 1024u)
/* Indexes inside indexes: deeper than this is a loop or a mistake. */
#define INDEX_DEPTH_MAX 4

static int layout_blob_path(const char *dir, const char *digest, char **out, berth_error_t *err)
{
	if (!berth_digest_valid(digest))
		return berth_error_set_plain(err, EINVAL, "`%s` is not a sha256 digest", digest);
	*out = xasprintf("%s/blobs/sha256/%s", dir, digest + 7);
	return 0;
}

/* Put a blob of the layout into the store: copied, or moved when the layout is ours. */
static int take_blob(struct berth_image_store *s, const char *dir, const char *digest, bool move,
                     struct berth_fetch_notice *notice, berth_error_t *err)
{
	cleanup_free char *path = NULL;
	int r = layout_blob_path(dir, digest, &path, err);

	if (r < 0)
		return r;
	if (notice != NULL && !notice->told && !berth_image_store_has_blob(s, digest))
		berth_fetch_notice_tell(notice);
	if (move)
		return berth_image_store_adopt_file(s, path, digest, NULL, err);
	return berth_image_store_put_file(s, path, digest, NULL, err);
}

static int import_layout(struct berth_image_store *s, const char *dir, const char *tag, bool move,
                         struct berth_fetch_notice *notice, char digest[BERTH_DIGEST_MAX],
                         berth_error_t *err)
{
	cleanup_free char *marker = xasprintf("%s/oci-layout", dir);
	cleanup_free char *index_path = xasprintf("%s/index.json", dir);
	struct berth_image_manifest m = {0};
	json_t *doc = NULL, *layout = NULL;
	char media_type[128];
	int r;

	r = berth_image_read_json(marker, 4096, &layout, err);
	if (r < 0)
		return berth_error_wrap(err, "`%s` is not an OCI image layout", dir);
	if (!json_is_string(json_object_get(layout, "imageLayoutVersion"))) {
		json_decref(layout);
		return berth_error_set_plain(err, EINVAL,
		                             "`%s` has no imageLayoutVersion: not an OCI image "
		                             "layout",
		                             marker);
	}
	json_decref(layout);
	r = berth_image_read_json(index_path, INDEX_MAX, &doc, err);
	if (r < 0)
		return r;
	/* index.json, then nested indexes down to an image manifest. */
	for (int depth = 0;; depth++) {
		r = berth_image_index_select(doc, depth == 0 ? tag : NULL, digest, media_type,
		                             sizeof(media_type), err);
		json_decref(doc);
		doc = NULL;
		if (r < 0)
			goto out;
		r = take_blob(s, dir, digest, move, notice, err);
		if (r < 0)
			goto out;
		r = berth_image_store_read_json(s, digest, &doc, err);
		if (r < 0)
			goto out;
		if (!berth_image_is_index(doc, media_type))
			break;
		if (depth == INDEX_DEPTH_MAX) {
			r = berth_error_set_plain(err, ELOOP, "indexes nested too deep");
			goto out;
		}
	}
	r = berth_image_manifest_parse(doc, &m, err);
	if (r < 0)
		goto out;
	r = take_blob(s, dir, m.config_digest, move, notice, err);
	for (size_t i = 0; r == 0 && i < m.nlayers; i++)
		r = take_blob(s, dir, m.layers[i].digest, move, notice, err);
out:
	berth_image_manifest_free(&m);
	json_decref(doc);
	return r;
}

void berth_fetch_notice_tell(struct berth_fetch_notice *n)
{
	if (n->told)
		return;
	n->told = true;
	if (n->opts != NULL && n->opts->fetching != NULL)
		n->opts->fetching(n->opts->fetching_arg);
}

int berth_image_import_layout(struct berth_image_store *s, const char *dir, const char *tag,
                              char digest[BERTH_DIGEST_MAX], berth_error_t *err)
{
	return berth_image_import_layout_notify(s, dir, tag, NULL, digest, err);
}

int berth_image_import_layout_notify(struct berth_image_store *s, const char *dir, const char *tag,
                                     struct berth_fetch_notice *notice,
                                     char digest[BERTH_DIGEST_MAX], berth_error_t *err)
{
	cleanup_free char *name = NULL;
	char abs[PATH_MAX];
	int r;

	if (realpath(dir, abs) == NULL)
		return berth_error_set(err, errno, "image layout `%s`", dir);
	r = import_layout(s, abs, tag, false, notice, digest, err);
	if (r < 0)
		return berth_error_wrap(err, "import `%s%s%s`", dir, tag ? ":" : "",
		                        tag ? tag : "");
	name = xasprintf("oci:%s%s%s", abs, tag ? ":" : "", tag ? tag : "");
	r = berth_image_store_commit_image(s, name, digest, NULL, err);
	if (r < 0)
		return berth_error_wrap(err, "import `%s`", dir);
	return 0;
}

/* A name from the archive: relative, no "..", no empty components. */
static bool safe_name(const char *p)
{
	if (p[0] == '\0' || p[0] == '/')
		return false;
	for (const char *c = p; *c != '\0';) {
		const char *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return false;
		c += n;
		while (*c == '/')
			c++;
	}
	return true;
}

static int archive_too_large(const char *path, uint64_t limit, berth_error_t *err)
{
	char text[32];

	berth_image_size_text(limit, text);
	return berth_error_set_plain(err, EFBIG,
	                             "`%s` holds more than %s once decompressed, the bound of an "
	                             "archive (BERTH_IMAGE_MAX_ARCHIVE_BYTES): refused",
	                             path, text);
}

/*
 * Unpack the archive's directories and regular files into `dir` (nothing
 * else is needed to read an image out of it; links and devices are skipped,
 * so no entry can lead outside), within `limits`.
 */
static int extract_archive(const char *path, const char *dir,
                           const struct berth_image_limits *limits, berth_error_t *err)
{
	struct archive *in = archive_read_new();
	struct archive *out = archive_write_disk_new();
	struct archive_entry *e;
	uint64_t bytes = 0, entries = 0;
	int r = 0, ar;

	archive_read_support_filter_all(in);
	archive_read_support_format_tar(in);
	archive_read_support_format_gnutar(in);
	/* The names are checked below and made absolute (under `dir`) by us. */
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
	                                            ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	if (archive_read_open_filename(in, path, 1 << 17) != ARCHIVE_OK) {
		r = berth_error_set_plain(err, EINVAL, "open `%s`: %s", path,
		                          archive_error_string(in));
		goto done;
	}
	while ((ar = archive_read_next_header(in, &e)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		const char *orig = archive_entry_pathname(e);
		mode_t type = archive_entry_filetype(e);
		cleanup_free char *target = NULL;
		cleanup_free char *name = NULL;

		if (++entries > limits->layer_entries) {
			r = berth_error_set_plain(
			        err, EFBIG,
			        "`%s` has more than %" PRIu64
			        " entries (BERTH_IMAGE_MAX_LAYER_ENTRIES): refused",
			        path, limits->layer_entries);
			goto done;
		}
		while (orig != NULL && strncmp(orig, "./", 2) == 0)
			orig += 2;
		name = orig != NULL ? xstrdup(orig) : NULL;
		if (name == NULL || name[0] == '\0' || (!S_ISREG(type) && !S_ISDIR(type)) ||
		    archive_entry_hardlink(e) != NULL)
			continue;
		if (!safe_name(name)) {
			r = berth_error_set_plain(err, EPERM, "`%s`: entry `%s` is refused", path,
			                          name);
			goto done;
		}
		target = xasprintf("%s/%s", dir, name);
		archive_entry_set_pathname(e, target);
		archive_entry_set_perm(e, S_ISDIR(type) ? 0700 : 0600);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			r = berth_error_set_plain(err, EIO, "extract `%s` from `%s`: %s", name,
			                          path, archive_error_string(out));
			goto done;
		}
		if (S_ISREG(type)) {
			const void *buf;
			size_t size;
			la_int64_t off;

			/* The header's size, before any byte: tar has no more data than that. */
			if (archive_entry_size(e) > 0 &&
			    (bytes += (uint64_t)archive_entry_size(e)) > limits->archive_bytes) {
				r = archive_too_large(path, limits->archive_bytes, err);
				goto done;
			}
			while ((ar = archive_read_data_block(in, &buf, &size, &off)) == ARCHIVE_OK)
				if (archive_write_data_block(out, buf, size, off) != ARCHIVE_OK) {
					ar = ARCHIVE_FATAL;
					break;
				}
			if (ar != ARCHIVE_EOF) {
				r = berth_error_set_plain(err, EIO, "extract `%s` from `%s`: %s",
				                          name, path, archive_error_string(in));
				goto done;
			}
		}
		if (archive_write_finish_entry(out) != ARCHIVE_OK) {
			r = berth_error_set_plain(err, EIO, "extract `%s` from `%s`: %s", name,
			                          path, archive_error_string(out));
			goto done;
		}
	}
	if (ar != ARCHIVE_EOF)
		r = berth_error_set_plain(err, EINVAL, "read `%s`: %s", path,
		                          archive_error_string(in));
done:
	archive_read_free(in);
	archive_write_free(out);
	return r;
}

/* A layer's media type from its first bytes. */
static const char *layer_media_type(const char *path)
{
	unsigned char magic[4] = {0};
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0 && read(fd, magic, sizeof(magic)) == (ssize_t)sizeof(magic)) {
		if (magic[0] == 0x1f && magic[1] == 0x8b)
			return "application/vnd.oci.image.layer.v1.tar+gzip";
		if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
			return "application/vnd.oci.image.layer.v1.tar+zstd";
	}
	return "application/vnd.oci.image.layer.v1.tar";
}

static int adopt_member(struct berth_image_store *s, const char *dir, json_t *name_json,
                        const char *what, char digest[BERTH_DIGEST_MAX], uint64_t *size,
                        const char **media_type, berth_error_t *err)
{
	const char *name = json_string_value(name_json);
	cleanup_free char *path = NULL;
	struct stat st;

	if (name == NULL || !safe_name(name))
		return berth_error_set_plain(err, EINVAL, "manifest.json: %s is not a file name",
		                             what);
	path = xasprintf("%s/%s", dir, name);
	if (stat(path, &st) < 0)
		return berth_error_set(err, errno, "manifest.json: %s `%s`", what, name);
	*size = (uint64_t)st.st_size;
	if (media_type != NULL)
		*media_type = layer_media_type(path);
	return berth_image_store_adopt_file(s, path, NULL, digest, err);
}

/* Whether RepoTags entry `have` is `want`: the same string, or the same reference. */
static bool tag_matches(const char *have, const char *want)
{
	struct berth_image_ref a, b;
	bool same;

	if (strcmp(have, want) == 0)
		return true;
	if (berth_image_ref_parse(have, &a, NULL) < 0)
		return false;
	if (berth_image_ref_parse(want, &b, NULL) < 0) {
		berth_image_ref_free(&a);
		return false;
	}
	{
		cleanup_free char *sa = berth_image_ref_string(&a);
		cleanup_free char *sb = berth_image_ref_string(&b);
		same = strcmp(sa, sb) == 0;
	}
	berth_image_ref_free(&a);
	berth_image_ref_free(&b);
	return same;
}

/* Every image's RepoTags, for a message: "`a:1`, `b:2`, 1 untagged" (bounded). */
static char *list_tags(json_t *doc)
{
	char buf[1024];
	size_t used = 0, untagged = 0, i, k;
	bool cut = false;
	json_t *entry, *t;

	buf[0] = '\0';
	json_array_foreach (doc, i, entry) {
		json_t *tags = json_object_get(entry, "RepoTags");

		if (json_array_size(tags) == 0)
			untagged++;
		json_array_foreach (tags, k, t) {
			const char *name = json_string_value(t);
			size_t need;

			if (name == NULL)
				continue;
			need = strlen(name) + 4;
			if (used + need + 8 >= sizeof(buf)) {
				cut = true;
				continue;
			}
			used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s`%s`",
			                         used ? ", " : "", name);
		}
	}
	if (cut)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, ", ...");
	if (untagged > 0)
		snprintf(buf + used, sizeof(buf) - used, "%s%zu untagged", used ? ", " : "",
		         untagged);
	return xstrdup(buf);
}

/* The entry of manifest.json that `tag` names (NULL: the only one) in archive `archive`. */
static json_t *pick_entry(json_t *doc, const char *archive, const char *tag, berth_error_t *err)
{
	json_t *entry, *t;
	size_t i, k;

	if (!json_is_array(doc) || json_array_size(doc) == 0) {
		berth_error_set_plain(err, EINVAL, "manifest.json lists no image");
		return NULL;
	}
	if (tag == NULL) {
		cleanup_free char *tags = NULL;

		if (json_array_size(doc) == 1)
			return json_array_get(doc, 0);
		tags = list_tags(doc);
		berth_error_set_plain(err, EINVAL,
		                      "it holds %zu images; pick one with `%s:TAG` (there are: %s)",
		                      json_array_size(doc), archive, tags);
		return NULL;
	}
	json_array_foreach (doc, i, entry) {
		json_array_foreach (json_object_get(entry, "RepoTags"), k, t) {
			if (json_is_string(t) && tag_matches(json_string_value(t), tag))
				return entry;
		}
	}
	{
		cleanup_free char *tags = list_tags(doc);
		berth_error_set_plain(err, ENOENT, "no image tagged `%s` (there are: %s)", tag,
		                      tags);
	}
	return NULL;
}

/* `docker save`: manifest.json names the config and the layers of each image. */
static int import_docker_save(struct berth_image_store *s, const char *dir, const char *archive,
                              const char *tag, char digest[BERTH_DIGEST_MAX], json_t **repo_tags,
                              berth_error_t *err)
{
	cleanup_free char *path = xasprintf("%s/manifest.json", dir);
	cleanup_free char *text = NULL;
	json_t *doc = NULL, *entry, *layers, *l, *manifest = NULL;
	json_t *seen = json_object(); /* layer file → its descriptor */
	char d[BERTH_DIGEST_MAX];
	uint64_t size;
	size_t i;
	int r;

	r = berth_image_read_json(path, INDEX_MAX, &doc, err);
	if (r < 0)
		return r;
	entry = pick_entry(doc, archive, tag, err);
	if (entry == NULL) {
		r = berth_error_ret(err);
		goto out;
	}
	if (json_is_array(json_object_get(entry, "RepoTags")))
		*repo_tags = json_incref(json_object_get(entry, "RepoTags"));
	layers = json_object_get(entry, "Layers");
	if (!json_is_array(layers)) {
		r = berth_error_set_plain(err, EINVAL, "manifest.json: no \"Layers\" array");
		goto out;
	}
	r = adopt_member(s, dir, json_object_get(entry, "Config"), "Config", d, &size, NULL, err);
	if (r < 0)
		goto out;
	manifest =
	        json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
	                  BERTH_MEDIA_OCI_MANIFEST, "config", "mediaType", BERTH_MEDIA_OCI_CONFIG,
	                  "digest", d, "size", (json_int_t)size, "layers");
	json_array_foreach (layers, i, l) {
		const char *mt;
		char what[32];

		snprintf(what, sizeof(what), "Layers[%zu]", i);
		/* The same layer twice in one image is legal: the second is already a blob. */
		if (json_is_string(l)) {
			cleanup_free char *lp = xasprintf("%s/%s", dir, json_string_value(l));
			struct stat st;
			if (safe_name(json_string_value(l)) && lstat(lp, &st) < 0 &&
			    errno == ENOENT) {
				json_t *prev = json_object_get(seen, json_string_value(l));
				if (prev != NULL) {
					json_array_append(json_object_get(manifest, "layers"),
					                  prev);
					continue;
				}
			}
		}
		r = adopt_member(s, dir, l, what, d, &size, &mt, err);
		if (r < 0)
			goto out;
		{
			json_t *desc = json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", d,
			                         "size", (json_int_t)size);
			json_object_set(seen, json_string_value(l), desc);
			json_array_append_new(json_object_get(manifest, "layers"), desc);
		}
	}
	text = json_dumps(manifest, JSON_COMPACT);
	r = berth_image_store_put(s, text, strlen(text), NULL, digest, err);
out:
	json_decref(manifest);
	json_decref(seen);
	json_decref(doc);
	return r;
}

int berth_image_archive_stamp(const char *path, const char *tag, char **name, char **stamp,
                              berth_error_t *err)
{
	char abs[PATH_MAX];
	struct stat st;

	if (realpath(path, abs) == NULL || stat(abs, &st) < 0)
		return berth_error_set(err, errno, "image archive `%s`", path);
	*name = xasprintf("archive:%s%s%s", abs, tag != NULL ? ":" : "", tag != NULL ? tag : "");
	*stamp = xasprintf("%llu:%lld.%09ld:%llu:%llu", (unsigned long long)st.st_size,
	                   (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
	                   (unsigned long long)st.st_ino, (unsigned long long)st.st_dev);
	return 0;
}

int berth_image_import_archive(struct berth_image_store *s, const char *path, const char *tag,
                               char digest[BERTH_DIGEST_MAX], berth_error_t *err)
{
	cleanup_free char *tmp = NULL;
	cleanup_free char *marker = NULL;
	cleanup_free char *name = NULL;
	cleanup_free char *stamp = NULL;
	json_t *repo_tags = NULL, *v;
	char abs[PATH_MAX];
	struct stat st;
	size_t i;
	int r;

	/* Stamped before reading: a change during the import makes the next resolve read it again.
	 */
	r = berth_image_archive_stamp(path, tag, &name, &stamp, err);
	if (r < 0)
		return r;
	if (realpath(path, abs) == NULL)
		return berth_error_set(err, errno, "image archive `%s`", path);
	r = berth_image_store_tmpdir(s, &tmp, err);
	if (r < 0)
		return r;
	r = extract_archive(abs, tmp, &s->limits, err);
	if (r < 0)
		goto out;
	marker = xasprintf("%s/oci-layout", tmp);
	if (stat(marker, &st) == 0) {
		r = import_layout(s, tmp, tag, true, NULL, digest, err);
	} else {
		free(marker);
		marker = xasprintf("%s/manifest.json", tmp);
		if (stat(marker, &st) < 0) {
			r = berth_error_set_plain(
			        err, EINVAL,
			        "`%s` is neither a `docker save` archive (no "
			        "manifest.json) nor an OCI layout (no oci-layout)",
			        path);
			goto out;
		}
		r = import_docker_save(s, tmp, path, tag, digest, &repo_tags, err);
	}
	if (r < 0)
		goto out;
	r = berth_image_store_commit_image(s, name, digest, stamp, err);
	/*
	 * As `docker load`: the archive's RepoTags name the image too, so that
	 * `berth run --image app:1` finds it without a registry.
	 */
	json_array_foreach (repo_tags, i, v) {
		struct berth_image_ref ref;
		cleanup_free char *canonical = NULL;

		if (r < 0 || !json_is_string(v) ||
		    berth_image_ref_parse(json_string_value(v), &ref, NULL) < 0)
			continue;
		canonical = berth_image_ref_string(&ref);
		berth_image_ref_free(&ref);
		r = berth_image_store_tag(s, canonical, digest, err);
	}
out:
	json_decref(repo_tags);
	berth_rmtree(tmp, NULL);
	if (r < 0)
		berth_error_wrap(err, "import `%s%s%s`", path, tag != NULL ? ":" : "",
		                 tag != NULL ? tag : "");
	return r;
}
