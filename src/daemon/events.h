/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /v1/events: server-sent events. A subscriber first gets the recorded
 * events after `since` (or Last-Event-ID), then every new one as soon as it
 * is durable, filtered by class and instance. Each event's SSE id is its
 * seq, so a client that reconnects with Last-Event-ID misses nothing.
 * With `follow=0` the stream ends after the recorded events (a listing).
 */
#ifndef BERTH_DAEMON_EVENTS_H
#define BERTH_DAEMON_EVENTS_H

#include "http/http.h"
#include "registry/registry.h"

struct berthd;

void berthd_events_init(struct berthd *d);

/* Take over `req` as a stream (or answer it with an error). */
void berthd_events_subscribe(struct berthd *d, struct berth_http_request *req);

/* A new event, durable in the registry: to every matching subscriber. */
void berthd_events_publish(struct berthd *d, const struct berth_registry_event *ev);

/* End every stream (shutdown). */
void berthd_events_close(struct berthd *d);

#endif
