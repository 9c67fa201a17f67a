/* SPDX-License-Identifier: Apache-2.0 */
/* An image as the runtime uses it: its layers unpacked, top first, and its config. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/util.h"
#include "image-internal.h"

void berth_image_free(struct berth_image *img)
{
	if (img == NULL)
		return;
	berth_strv_free(img->layer_dirs);
	json_decref(img->config);
	free(img);
}

int berth_image_load(struct berth_image_store *s, const char *manifest_digest,
                     struct berth_image **out, berth_error_t *err)
{
	struct berth_image_manifest m = {0};
	struct berth_image *img = NULL;
	json_t *manifest = NULL, *config = NULL, *inner;
	int r;

	*out = NULL;
	r = berth_image_store_read_json(s, manifest_digest, &manifest, err);
	if (r < 0)
		goto out;
	if (berth_image_is_index(manifest, NULL)) {
		r = berth_error_set_plain(err, EINVAL, "%s is an index, not an image manifest",
		                          manifest_digest);
		goto out;
	}
	r = berth_image_manifest_parse(manifest, &m, err);
	if (r < 0)
		goto out;
	if (m.nlayers == 0) {
		r = berth_error_set_plain(err, EINVAL, "the image has no layers");
		goto out;
	}
	r = berth_image_store_read_json(s, m.config_digest, &config, err);
	if (r < 0)
		goto out;
	r = berth_image_config_diff_ids(config, &m, err);
	if (r < 0)
		goto out;
	img = xcalloc(1, sizeof(*img));
	snprintf(img->manifest_digest, sizeof(img->manifest_digest), "%s", manifest_digest);
	snprintf(img->config_digest, sizeof(img->config_digest), "%s", m.config_digest);
	img->nlayers = m.nlayers;
	img->layer_dirs = xcalloc(m.nlayers + 1, sizeof(char *));
	for (size_t i = 0; i < m.nlayers; i++) {
		/* overlayfs takes the top layer first; the manifest lists the base first. */
		r = berth_image_store_layer(s, m.layers[i].digest, m.layers[i].diff_id,
		                            &img->layer_dirs[m.nlayers - 1 - i], err);
		if (r < 0)
			goto out;
	}
	inner = json_object_get(config, "config");
	img->config = json_is_object(inner) ? json_incref(inner) : json_object();
	*out = steal_pointer(&img);
	r = 0;
out:
	if (img != NULL) {
		/* A partly filled vector: free what is there. */
		for (size_t i = 0; i < img->nlayers; i++)
			free(img->layer_dirs[i]);
		free(img->layer_dirs);
		img->layer_dirs = NULL;
		berth_image_free(img);
	}
	berth_image_manifest_free(&m);
	json_decref(manifest);
	json_decref(config);
	if (r < 0)
		berth_error_wrap(err, "image %s", manifest_digest);
	return r;
}

int berth_image_store_commit_image(struct berth_image_store *s, const char *name,
                                   const char *manifest_digest, berth_error_t *err)
{
	struct berth_image *img = NULL;
	int r = berth_image_load(s, manifest_digest, &img, err);

	berth_image_free(img);
	if (r < 0)
		return r;
	return name != NULL ? berth_image_store_tag(s, name, manifest_digest, err) : 0;
}
