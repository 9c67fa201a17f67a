/* SPDX-License-Identifier: Apache-2.0 */
/* Content digests: sha256 only, as OCI registries use in practice. */
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>

#include "image-internal.h"

bool berth_digest_valid(const char *s)
{
	if (s == NULL || strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64)
		return false;
	for (const char *p = s + 7; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

void berth_digest_format(const uint8_t raw[32], char out[BERTH_DIGEST_MAX])
{
	static const char hex[] = "0123456789abcdef";

	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[raw[i] >> 4];
		out[8 + 2 * i] = hex[raw[i] & 15];
	}
	out[7 + 64] = '\0';
}

void berth_digest_of(const void *data, size_t len, char out[BERTH_DIGEST_MAX])
{
	struct sha256_ctx ctx;
	uint8_t raw[SHA256_DIGEST_SIZE];

	sha256_init(&ctx);
	sha256_update(&ctx, len, data);
	sha256_digest(&ctx, sizeof(raw), raw);
	berth_digest_format(raw, out);
}
