/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prune: remove the blobs and unpacked layers that no recorded image and no
 * living container uses.
 *
 * In use is: every blob of a recorded image (manifest, config, layers), the
 * unpacked layer of each of its diff ids, and every lower directory a
 * living container was started with (its STATE/containers/ID/init.json;
 * a container lives while its directory's flock is held, which /proc/locks
 * shows). A container whose
 * record cannot be read (being started this very moment, or made by an older
 * berth) keeps every layer: then only blobs are pruned.
 *
 * Writers (imports, pulls) hold gc.lock shared for as long as they have the
 * store open; prune takes it exclusively, so it never removes a blob a pull
 * has stored but not yet recorded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "berth/fs.h"
#include "berth/util.h"
#include "image-internal.h"

/* The records' blobs and layers into `keep` (a set: name → true). */
static void keep_images(struct berth_image_store *s, json_t *records, json_t *blobs, json_t *layers)
{
	const char *digest;
	json_t *rec;

	json_object_foreach (records, digest, rec) {
		struct berth_image_manifest m;
		json_t *manifest = NULL, *config = NULL;

		json_object_set_new(blobs, digest, json_true());
		if (berth_image_store_read_json(s, digest, &manifest, NULL) < 0)
			continue;
		if (berth_image_manifest_parse(manifest, &m, NULL) == 0) {
			json_object_set_new(blobs, m.config_digest, json_true());
			for (size_t i = 0; i < m.nlayers; i++)
				json_object_set_new(blobs, m.layers[i].digest, json_true());
			if (berth_image_store_read_json(s, m.config_digest, &config, NULL) == 0 &&
			    berth_image_config_diff_ids(config, &m, NULL) == 0)
				for (size_t i = 0; i < m.nlayers; i++)
					json_object_set_new(layers, m.layers[i].diff_id + 7,
					                    json_true());
			json_decref(config);
			berth_image_manifest_free(&m);
		}
		json_decref(manifest);
	}
}

/*
 * The flock()s held on this host, as "MAJOR:MINOR:INODE" (hex, hex,
 * decimal, as /proc/locks writes them). Read rather than tried: taking a
 * container's lock, even for a moment, would make its start fail.
 */
static json_t *held_flocks(void)
{
	cleanup_free char *text = NULL;
	json_t *set = json_object();
	size_t len;

	if (berth_read_file_at(AT_FDCWD, "/proc/locks", 16u << 20, &text, &len, NULL) < 0)
		return set;
	for (char *line = text; line != NULL && *line != '\0';) {
		char *next = strchr(line, '\n');
		char kind[16], dev[64];

		if (next != NULL)
			*next++ = '\0';
		/* "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; blocked waiters have "->". */
		if (strstr(line, "->") == NULL &&
		    sscanf(line, "%*s %15s %*s %*s %*s %63s", kind, dev) == 2 &&
		    strcmp(kind, "FLOCK") == 0)
			json_object_set_new(set, dev, json_true());
		line = next;
	}
	return set;
}

/*
 * The lower directories of living containers into `layers` (by the hex
 * name under layers/sha256). Returns false when a living container's lowers
 * cannot be known.
 */
static bool keep_containers(struct berth_image_store *s, json_t *layers)
{
	cleanup_free char *dir = xasprintf("%s/containers", s->state_dir);
	cleanup_free char *prefix = xasprintf("%s/layers/sha256/", s->root);
	cleanup_closedir DIR *d = opendir(dir);
	json_t *held = NULL;
	struct dirent *e;
	bool known = true;

	if (d == NULL)
		return true; /* no containers at all */
	held = held_flocks();
	while ((e = readdir(d)) != NULL) {
		cleanup_close int fd = -1;
		cleanup_free char *text = NULL;
		json_t *rec, *v;
		size_t len, i;

		if (e->d_name[0] == '.')
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			continue; /* nobody holds it: the container is gone (our lock goes with fd)
			           */
		if (berth_read_file_at(fd, "init.json", 1u << 20, &text, &len, NULL) < 0 ||
		    (rec = json_loadb(text, len, 0, NULL)) == NULL) {
			known = false;
			continue;
		}
		if (!json_is_array(json_object_get(rec, "lowers")))
			known = false;
		json_array_foreach (json_object_get(rec, "lowers"), i, v) {
			const char *p = json_string_value(v);
			if (p != NULL && strncmp(p, prefix, strlen(prefix)) == 0)
				json_object_set_new(layers, p + strlen(prefix), json_true());
		}
		json_decref(rec);
	}
	json_decref(held);
	return known;
}

/* Remove every entry of `dirfd` not in `keep`; count them and their size. */
static void sweep(int dirfd, json_t *keep, bool dirs, uint64_t *count, uint64_t *bytes)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cleanup_closedir DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (d == NULL) {
		berth_close_keep_errno(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (e->d_name[0] == '.' || json_object_get(keep, e->d_name) != NULL)
			continue;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (dirs ? berth_rmtree_at(dirfd, e->d_name, NULL) < 0
		         : unlinkat(dirfd, e->d_name, 0) < 0)
			continue;
		(*count)++;
		if (!dirs)
			*bytes += (uint64_t)st.st_size;
	}
}

int berth_image_store_prune(struct berth_image_store *s, struct berth_prune_report *rep,
                            berth_error_t *err)
{
	json_t *records = NULL;
	json_t *blobs = json_object(), *layers = json_object();
	json_t *blob_keep = json_object();
	cleanup_close int layers_fd = -1;
	const char *k;
	json_t *v;
	int r;

	memset(rep, 0, sizeof(*rep));
	/* Wait for every other user of the store: their blobs may not be recorded yet. */
	if (flock(s->gc_fd, LOCK_EX) < 0) {
		r = berth_error_set(err, errno, "lock `%s/gc.lock`", s->root);
		goto out;
	}
	r = berth_image_store_records(s, &records, err);
	if (r < 0)
		goto out;
	keep_images(s, records, blobs, layers);
	rep->layers_kept_all = !keep_containers(s, layers);
	/* Blobs by hex name, as they are on disk. */
	json_object_foreach (blobs, k, v)
		json_object_set_new(blob_keep, k + 7, json_true());
	sweep(s->blobs_fd, blob_keep, false, &rep->blobs, &rep->bytes);
	if (!rep->layers_kept_all) {
		layers_fd = openat(s->root_fd, "layers/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (layers_fd >= 0)
			sweep(layers_fd, layers, true, &rep->layers, &rep->bytes);
	}
	r = 0;
out:
	flock(s->gc_fd, LOCK_SH);
	json_decref(records);
	json_decref(blobs);
	json_decref(blob_keep);
	json_decref(layers);
	return r;
}
