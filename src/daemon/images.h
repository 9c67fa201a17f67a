/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A class's image for a start: imported or pulled into the store
 * (STATE/images) the first time an instance of the class starts, then the
 * layers and the config's command, environment, working directory and user
 * put into the container's spec. Runs on a worker thread (it blocks on disk
 * and network), never on the loop.
 */
#ifndef BERTH_DAEMON_IMAGES_H
#define BERTH_DAEMON_IMAGES_H

#include <stdint.h>

#include "berth/error.h"
#include "berth/image-run.h"
#include "berth/image.h"
#include "berth/runtime.h"

/* What the spec points into, freed after the start. */
struct berthd_image_prep {
	struct berth_image *img;
	struct berth_image_run run;
	char *rootfs;
	uint16_t port; /* the image's one exposed TCP port, or 0 */
};

struct berthd;

/*
 * The image's events in the registry's event log (GET /v1/events), for one
 * resolve: type "image_pull" (a registry reference) or "image_import" (a
 * layout or archive), data {"image": SOURCE, "phase": "started" | "done" |
 * "failed", "name"?: the instance's name, "digest"?: the manifest's (done),
 * "error"?: why (failed)}. "started" comes only when the store lacks the
 * image and the worker begins to fetch or import it, so an image already
 * stored makes no event; "failed" comes also without "started" when the
 * source could not even be read. Made on the loop before the work is
 * queued (`class_name`, `instance_id` and `name` may be NULL), handed to
 * the worker, and ended on the loop when the work is done.
 */
struct berthd_image_events;
struct berthd_image_events *berthd_image_events_new(struct berthd *d, const char *class_name,
                                                    const char *instance_id, const char *name,
                                                    const char *image);
/* "done" or "failed" as the worker found, then free (`ev` may be NULL). */
void berthd_image_events_end(struct berthd_image_events *ev);

/*
 * Resolve `source` (a class's image_path) and fill `spec`: layers (or the
 * rootfs of a plain directory), argv (`entrypoint` when given, which
 * replaces the image's ENTRYPOINT and CMD, else the image's), env (the
 * image's, then `env` over it), workdir and uid/gid from the config.
 * Registries given in $BERTH_INSECURE_REGISTRIES (comma-separated) are
 * reached over plain HTTP, and $BERTH_AUTH_FILE has credentials. `ev`
 * (may be NULL) gets the outcome of the resolve.
 */
int berthd_image_prepare(const char *state_dir, const char *source, char *const *entrypoint,
                         char *const *env, const int *cancel, struct berthd_image_events *ev,
                         struct berth_container_spec *spec, struct berthd_image_prep *prep,
                         berth_error_t *err);
void berthd_image_prep_free(struct berthd_image_prep *prep);

/*
 * At start and after a reload: pull, on worker threads, every class's
 * registry image the store does not have yet, so that first starts find it
 * there (each class's outcome is logged, and its events are the class's,
 * of no instance). A pull that fails here is tried
 * again by the class's first start. Pulls stop when d->images_cancel is set
 * (shutdown), keeping what they downloaded.
 */
void berthd_images_prefetch(struct berthd *d);

struct berth_http_request;

/*
 * /v1/images (each on a worker thread):
 *   GET    /v1/images         every image (digest, tags, layers, size)
 *   GET    /v1/images/NAME    one, with its config; NAME a reference or digest
 *   POST   /v1/images/pull    {"image": "REF"}: pull (again; "image_pull" events
 *                              of no class); answers when done,
 *                              or with ?stream=1 (or Accept: text/event-stream)
 *                              streams "progress" events, then "done" or "error"
 *   DELETE /v1/images/NAME    forget the name (blobs and layers stay)
 *   POST   /v1/images/prune   remove what no image and no living container uses
 */
void berthd_images_api(struct berthd *d, struct berth_http_request *req);

#endif
