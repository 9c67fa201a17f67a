/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Readiness of a port, as @cloudflare/containers checks it: a TCP connection
 * inside the instance's network namespace, then an HTTP request to
 * http://PINGENDPOINT (host "ping", path "/" by default) that gets any
 * response — or, beyond the library, one whose status is in `readyOn`.
 */
#ifndef BERTH_DAEMON_PROBE_H
#define BERTH_DAEMON_PROBE_H

#include <stdint.h>
#include <uv.h>

struct berth_container;
struct berthd_probe;

/* result 0: ready; otherwise a negative errno saying why not (yet). */
typedef void (*berthd_probe_cb)(int result, void *arg);

/*
 * One attempt on `port`. Returns 0 with *out set, and the answer comes once
 * through `cb` (later, on the loop) within `timeout_ms` unless cancelled; or
 * a negative errno when the attempt could not even begin (no callback then).
 */
int berthd_probe_start(uv_loop_t *loop, struct berth_container *c, uint16_t port,
                       const char *ping_endpoint, uint16_t status_min, uint16_t status_max,
                       uint64_t timeout_ms, berthd_probe_cb cb, void *arg,
                       struct berthd_probe **out);

/* Abandon an attempt; its callback is not called. */
void berthd_probe_cancel(struct berthd_probe *p);

#endif
