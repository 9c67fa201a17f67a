/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Images: a content-addressed store of blobs and unpacked layers under
 * STATE/images, filled from OCI image layouts, image archives (`docker save`
 * or an OCI layout in a tar) and registries (pull.c, which needs libcurl and
 * is linked only into berthd and the `berth-image` helper: `berth` and
 * `berth-runtime` are static and stay free of it).
 *
 *   STATE/images/blobs/sha256/HEX     blobs, verified before they get this name
 *   STATE/images/layers/sha256/HEX    a layer unpacked (HEX: its diff id), used
 *                                     directly as an overlayfs lower directory
 *   STATE/images/images.json          the image records: tags and layers
 *   STATE/images/tmp/                 what is being written (never read as a blob)
 *
 * Every write is to a temporary name in tmp/ and a rename, so an interrupted
 * write never leaves a visible half blob or half layer; concurrent writers of
 * the same content both succeed (the second rename finds the first's result).
 * All calls block on disk or network: the daemon runs them on worker threads.
 */
#ifndef BERTH_IMAGE_H
#define BERTH_IMAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth/error.h"

/* "sha256:" + 64 hex digits + NUL */
#define BERTH_DIGEST_MAX 72

/* Whether `s` is "sha256:" followed by exactly 64 lowercase hex digits. */
bool berth_digest_valid(const char *s);
/* The digest of a buffer. */
void berth_digest_of(const void *data, size_t len, char out[BERTH_DIGEST_MAX]);

/* ---- ref.c: registry references ---- */

struct berth_image_ref {
	char *registry;   /* "docker.io", "localhost:5000" */
	char *repository; /* "library/busybox", "team/app" */
	char *tag;    /* "latest" when neither tag nor digest is given; NULL with a digest only */
	char *digest; /* "sha256:..." or NULL */
};

/*
 * Parse a reference as Docker does: [HOST[:PORT]/]PATH[:TAG][@DIGEST]. The
 * first component is a host when it has a `.` or a `:` or is `localhost`;
 * without one the registry is docker.io, where a one-component path gets
 * `library/`. Path components are lowercase [a-z0-9] separated by `.`, `_`,
 * `__` or dashes; a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
 */
int berth_image_ref_parse(const char *s, struct berth_image_ref *ref, berth_error_t *err);
void berth_image_ref_free(struct berth_image_ref *ref);
/* "REGISTRY/REPOSITORY:TAG", "REGISTRY/REPOSITORY@DIGEST" or both; the caller frees it. */
char *berth_image_ref_string(const struct berth_image_ref *ref);
/* The host:port to talk to: docker.io is served by registry-1.docker.io. */
const char *berth_image_ref_endpoint(const struct berth_image_ref *ref);

/* ---- store.c ---- */

struct berth_image_store;

/* Open (creating as needed) STATE_DIR/images. */
int berth_image_store_open(const char *state_dir, struct berth_image_store **out,
                           berth_error_t *err);
void berth_image_store_free(struct berth_image_store *s);
const char *berth_image_store_root(const struct berth_image_store *s);

/* The path of blob `digest` (which may not exist); the caller frees it. */
char *berth_image_store_blob_path(const struct berth_image_store *s, const char *digest);
bool berth_image_store_has_blob(const struct berth_image_store *s, const char *digest);
/* Read blob `digest`, at most `max` bytes (EFBIG beyond), NUL-terminated. */
int berth_image_store_read_blob(const struct berth_image_store *s, const char *digest, size_t max,
                                char **out, size_t *len, berth_error_t *err);
/* Parse blob `digest` (at most BERTH_MANIFEST_MAX bytes) as JSON. */
int berth_image_store_read_json(const struct berth_image_store *s, const char *digest, json_t **out,
                                berth_error_t *err);

/*
 * A blob being written: hashed as it is written, then fsync'd, checked and
 * renamed into place by commit. Opened with `resume_digest`, the writer
 * continues the partial file kept for that digest by an earlier, interrupted
 * writer (its bytes are hashed again first); `offset` then says how much is
 * there; -EEXIST (err untouched) when the blob is in the store already. A
 * resumable writer holds a lock on its partial file, so concurrent pulls of
 * one blob take turns. abort keeps a resumable partial file, discard
 * removes it.
 */
struct berth_blob_writer {
	struct berth_image_store *store;
	int fd;
	char *tmp_path;
	bool resumable;
	uint64_t offset;
	void *hash; /* struct sha256_ctx */
};
int berth_blob_writer_open(struct berth_image_store *s, const char *resume_digest,
                           struct berth_blob_writer *w, berth_error_t *err);
int berth_blob_writer_write(struct berth_blob_writer *w, const void *data, size_t len,
                            berth_error_t *err);
/* Start over (a server that ignored a Range request). */
int berth_blob_writer_reset(struct berth_blob_writer *w, berth_error_t *err);
/*
 * Finish: the content must hash to `expect` (when not NULL); `out` gets the
 * digest. A mismatch removes what was written and fails with EBADMSG.
 */
int berth_blob_writer_commit(struct berth_blob_writer *w, const char *expect,
                             char out[BERTH_DIGEST_MAX], berth_error_t *err);
void berth_blob_writer_abort(struct berth_blob_writer *w);
void berth_blob_writer_discard(struct berth_blob_writer *w);

/* Store a buffer, or a file's content (copied), as a blob. */
int berth_image_store_put(struct berth_image_store *s, const void *data, size_t len,
                          const char *expect, char out[BERTH_DIGEST_MAX], berth_error_t *err);
int berth_image_store_put_file(struct berth_image_store *s, const char *path, const char *expect,
                               char out[BERTH_DIGEST_MAX], berth_error_t *err);

/*
 * The unpacked layer of blob `blob_digest`, whose uncompressed tar must hash
 * to `diff_id`: unpacked now unless it already is. *dir gets its directory.
 */
int berth_image_store_layer(struct berth_image_store *s, const char *blob_digest,
                            const char *diff_id, char **dir, berth_error_t *err);

/* ---- limits.c: against decompression bombs ---- */

struct berth_image_limits {
	uint64_t layer_bytes;   /* a layer's tar once decompressed, and its files' sizes summed */
	uint64_t layer_entries; /* a layer's entries (an archive's too) */
	uint64_t archive_bytes; /* what an image archive holds once decompressed */
};
#define BERTH_IMAGE_MAX_LAYER_BYTES_DEFAULT   (16ull << 30)
#define BERTH_IMAGE_MAX_LAYER_ENTRIES_DEFAULT (1ull << 20)
#define BERTH_IMAGE_MAX_ARCHIVE_BYTES_DEFAULT (64ull << 30)

void berth_image_limits_default(struct berth_image_limits *l);
/*
 * The defaults, then what the environment says: BERTH_IMAGE_MAX_LAYER_BYTES
 * and BERTH_IMAGE_MAX_ARCHIVE_BYTES (sizes: "16G", "512M"),
 * BERTH_IMAGE_MAX_LAYER_ENTRIES (a count). A bad value is an error naming
 * the variable. berth_image_store_open() reads them.
 */
int berth_image_limits_from_env(struct berth_image_limits *l, berth_error_t *err);
/* "16 GiB", "1000 bytes": a size for a message. */
void berth_image_size_text(uint64_t n, char buf[32]);

/* ---- unpack.c ---- */

/*
 * Unpack the (gzip, zstd or uncompressed) tar layer read from `fd` into the
 * empty directory `dirfd`, as an overlayfs lower layer: `.wh.NAME` becomes a
 * whiteout (a 0:0 character device NAME), `.wh..wh..opq` the
 * trusted.overlay.opaque=y attribute of its directory. Owners, modes
 * (setuid too), times, device nodes, hard links within the layer and extended
 * attributes are kept. Entries with `..`, absolute paths or a symlink among
 * their parents are refused. `diff_id` gets the digest of the uncompressed tar.
 * A layer beyond `limits` (NULL: the defaults) is refused (EFBIG) as soon as
 * it is seen to be; what was written by then stays in `dirfd` for the caller
 * to remove.
 */
int berth_image_unpack(int fd, int dirfd, const struct berth_image_limits *limits,
                       char diff_id[BERTH_DIGEST_MAX], berth_error_t *err);

/* ---- oci.c: manifests, indexes, configs ---- */

#define BERTH_MEDIA_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define BERTH_MEDIA_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define BERTH_MEDIA_OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define BERTH_MEDIA_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define BERTH_MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define BERTH_MEDIA_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"
/* Manifests and configs larger than this are refused (as registries do). */
#define BERTH_MANIFEST_MAX (4u * 1024u * 1024u)

struct berth_image_layer {
	char digest[BERTH_DIGEST_MAX];  /* the blob */
	char diff_id[BERTH_DIGEST_MAX]; /* the uncompressed tar (from the config) */
	uint64_t size;
};

struct berth_image_manifest {
	char config_digest[BERTH_DIGEST_MAX];
	uint64_t config_size;
	size_t nlayers;
	struct berth_image_layer *layers; /* bottom first */
};

/* Whether a manifest body is an index/list (true) or an image manifest (false). */
bool berth_image_is_index(json_t *doc, const char *media_type);
/*
 * Pick linux/amd64 from an index or manifest list (`ref_name`, when not NULL,
 * must also match the entry's org.opencontainers.image.ref.name). `digest`
 * and `media_type` (may be empty) get the entry's.
 */
int berth_image_index_select(json_t *index, const char *ref_name, char digest[BERTH_DIGEST_MAX],
                             char *media_type, size_t media_type_len, berth_error_t *err);
int berth_image_manifest_parse(json_t *doc, struct berth_image_manifest *m, berth_error_t *err);
/* Take the diff ids from an image config (one per layer, in order). */
int berth_image_config_diff_ids(json_t *config, struct berth_image_manifest *m, berth_error_t *err);
void berth_image_manifest_free(struct berth_image_manifest *m);

/* ---- image.c: images as the runtime uses them ---- */

struct berth_image {
	char manifest_digest[BERTH_DIGEST_MAX];
	char config_digest[BERTH_DIGEST_MAX];
	char **layer_dirs; /* top first, as overlayfs takes them; NULL-terminated */
	size_t nlayers;
	json_t *config; /* the config's "config" object (Entrypoint, Cmd, Env, ...); never NULL */
};
void berth_image_free(struct berth_image *img);

/* Load image `manifest_digest` from the store, unpacking layers not yet unpacked. */
int berth_image_load(struct berth_image_store *s, const char *manifest_digest,
                     struct berth_image **out, berth_error_t *err);

/* Record `name` (a reference or source string) as naming `manifest_digest`. */
int berth_image_store_tag(struct berth_image_store *s, const char *name,
                          const char *manifest_digest, berth_error_t *err);
/* The manifest digest `name` names; -ENOENT when it names none. */
int berth_image_store_lookup(struct berth_image_store *s, const char *name,
                             char digest[BERTH_DIGEST_MAX], berth_error_t *err);

/* The records: {DIGEST: {"config": DIGEST, "tags": [NAME...], "created": SECONDS}}. */
int berth_image_store_records(struct berth_image_store *s, json_t **out, berth_error_t *err);
/*
 * Remove name `name` (or, given a manifest digest, every name of that image).
 * An image left without names is forgotten; its blobs and layers stay, as
 * other images or running containers may share them.
 */
int berth_image_store_untag(struct berth_image_store *s, const char *name, berth_error_t *err);

/* NAME as the records have it: a reference in canonical form; anything else as it is. */
char *berth_image_record_name(const char *name);
/*
 * Every image: [{"digest", "tags", "config" (its digest), "created",
 * "layers": [{"digest", "size"}], "size"}].
 */
int berth_image_store_list(struct berth_image_store *s, json_t **out, berth_error_t *err);
/* One image by name or manifest digest, as in the list, with "config" the whole config. */
int berth_image_store_inspect(struct berth_image_store *s, const char *name, json_t **out,
                              berth_error_t *err);

/* ---- gc.c ---- */

struct berth_prune_report {
	uint64_t blobs, layers; /* removed */
	uint64_t bytes;         /* of the blobs removed */
	bool layers_kept_all;   /* a living container's layers were unknown: none removed */
};

/*
 * Remove the blobs and unpacked layers that no recorded image and no living
 * container (of STATE/containers) uses. Waits until no one else has the
 * store open (an import or pull may hold blobs it has not recorded yet).
 */
int berth_image_store_prune(struct berth_image_store *s, struct berth_prune_report *rep,
                            berth_error_t *err);

/* ---- import.c: local sources ---- */

/*
 * Import from an OCI image layout directory: `tag` (may be NULL: the layout
 * must then hold exactly one image) is matched against the index entries'
 * org.opencontainers.image.ref.name.
 */
int berth_image_import_layout(struct berth_image_store *s, const char *dir, const char *tag,
                              char digest[BERTH_DIGEST_MAX], berth_error_t *err);
/*
 * Import an image archive: `docker save` output or an OCI layout in a tar
 * (compressed or not). `tag` (may be NULL: the archive must then hold
 * exactly one image) picks one: an entry of a `docker save` manifest's
 * RepoTags (compared as references, so `busybox` is
 * `docker.io/library/busybox:latest`), or a layout's ref.name.
 */
int berth_image_import_archive(struct berth_image_store *s, const char *path, const char *tag,
                               char digest[BERTH_DIGEST_MAX], berth_error_t *err);

/* ---- pull.c (berthd and berth-image only: libcurl) ---- */

/* Where a blob's download is, for progress displays. */
struct berth_pull_progress {
	const char *digest;
	uint64_t done, total; /* bytes; total 0 when unknown */
	bool finished;        /* stored (or found stored) */
};

struct berth_pull_options {
	char *const *insecure; /* registries (host[:port]) reached over plain HTTP */
	const char *auth_file; /* Docker-style config.json with "auths"; NULL: none */
	unsigned concurrency;  /* layers fetched at once; 0: 3 */
	uint64_t max_rate;     /* bytes per second per transfer; 0: unlimited */
	/*
	 * When not NULL and set (from another thread) to non-zero, transfers
	 * stop within a second and the pull fails with ECANCELED; what was
	 * downloaded stays, to be resumed.
	 */
	const int *cancel;
	bool quiet; /* no progress lines on stderr */
	/*
	 * Progress: called on the pulling thread for each blob when it starts,
	 * about four times a second while it downloads, and when it is stored.
	 * With a callback the per-blob log lines are left out.
	 */
	void (*progress)(const struct berth_pull_progress *p, void *arg);
	void *progress_arg;
	/*
	 * berth_image_resolve() only: called at most once, on the resolving
	 * thread, when it finds the store without the image and begins to pull
	 * or import it (a layout: when the first blob the store lacks is copied
	 * in). Never when the store has the image, so that a caller can tell
	 * real work from a lookup.
	 */
	void (*fetching)(void *arg);
	void *fetching_arg;
};

int berth_image_pull(struct berth_image_store *s, const struct berth_image_ref *ref,
                     const struct berth_pull_options *opts, char digest[BERTH_DIGEST_MAX],
                     berth_error_t *err);

/* ---- source.c, resolve.c: any source ---- */

enum berth_image_source_kind {
	BERTH_IMAGE_SOURCE_ROOTFS,   /* a plain root directory, used as it is */
	BERTH_IMAGE_SOURCE_LAYOUT,   /* an OCI image layout directory (DIR or DIR:TAG) */
	BERTH_IMAGE_SOURCE_ARCHIVE,  /* an image archive file (FILE or FILE:TAG) */
	BERTH_IMAGE_SOURCE_REGISTRY, /* a registry reference */
};

/*
 * PATH:TAG: an existing OCI layout directory or image archive file, then a
 * tag that picks one of its images (a layout's
 * org.opencontainers.image.ref.name, an archive's RepoTags entry such as
 * `team/app:1.2`). Paths and tags may both hold colons, so every colon is
 * tried: 1 and *kind, *path, *tag when exactly one has a layout or file on
 * its left; 0 when none has; -EINVAL when several have (ambiguous, both
 * named in the message) or the tag is empty.
 */
int berth_image_source_split(const char *source, enum berth_image_source_kind *kind, char **path,
                             char **tag, berth_error_t *err);

/*
 * What `source` names: an existing path is that path, whatever colons it has
 * (a directory with an `oci-layout` file a layout, another directory a root
 * filesystem, a file an archive); then PATH:TAG (above); anything else
 * must parse as a registry reference. *path gets the path (without :TAG)
 * and *tag the tag, when they apply.
 */
int berth_image_source_classify(const char *source, enum berth_image_source_kind *kind, char **path,
                                char **tag, berth_error_t *err);

/*
 * Make the image `source` names available (import or pull it unless the
 * store has it; `pull` forces a pull of a registry reference) and load it.
 * A root directory source gives -EISDIR: the caller uses it as it is.
 */
int berth_image_resolve(struct berth_image_store *s, const char *source,
                        const struct berth_pull_options *opts, bool pull, struct berth_image **out,
                        berth_error_t *err);

#endif
