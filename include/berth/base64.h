/* SPDX-License-Identifier: Apache-2.0 */
/* Base64 (RFC 4648), for binary data in JSON: file contents, a command's output. */
#ifndef BERTH_BASE64_H
#define BERTH_BASE64_H

#include <stddef.h>

/* `len` bytes as base64 with padding: malloc'd, NUL-terminated; its length in *out_len (may be
 * NULL). */
char *berth_base64_encode(const void *data, size_t len, size_t *out_len);

/*
 * Decode base64 (also the URL-safe alphabet; padding optional; whitespace
 * ignored) into a malloc'd buffer. -EINVAL when `in` is not base64.
 */
int berth_base64_decode(const char *in, size_t len, unsigned char **out, size_t *out_len);

#endif
