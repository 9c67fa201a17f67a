/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Latency tracing for development: built with `make TRACE=1`, every
 * BERTH_TRACE("step") writes "TRACE <monotonic µs> <pid> step" to stderr,
 * across the CLI, berthd, the helper and the container's init, so one run
 * shows where the time of a container start, or of a sandbox exec, goes (an
 * exec's helper writes its steps to the command's stderr, which is where its
 * stderr goes; berthd's starts hand the helper and the init berthd's own
 * stderr, so a cold request's steps, from the proxy to the container's init
 * and back, are in berthd's log in order). Compiled out otherwise.
 */
#ifndef BERTH_TRACE_H
#define BERTH_TRACE_H

#ifdef BERTH_TRACE_ENABLED
void berth_trace(const char *step);
#define BERTH_TRACE(step) berth_trace(step)
#else
#define BERTH_TRACE(step) ((void)0)
#endif

#endif
