/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Instance ids. A named instance's id is derived from its class and name
 * alone, so that it is the same on every host, after every restart and in
 * every version of berth; the encoding below is therefore frozen:
 *
 *   id = hex(SHA-256("berth/instance-id/v1" NUL
 *                    u64be(len(class)) class
 *                    u64be(len(name)) name))
 *
 * The tag keeps these hashes apart from any other SHA-256 berth computes;
 * the length prefixes make the encoding injective, so ("a", "bc") and
 * ("ab", "c") cannot meet. There is no secret in it: like idFromName(), an
 * id says nothing a client does not already know, and knowing one grants
 * nothing. Unique ids are 256 random bits; a collision with a derived id is
 * as likely as a SHA-256 collision.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <nettle/sha2.h>

#include "registry/registry-internal.h"

static const char ID_TAG[] = "berth/instance-id/v1"; /* hashed with its NUL */

static void hex(const uint8_t *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static void update_field(struct sha256_ctx *ctx, const char *s)
{
	uint64_t len = strlen(s);
	uint8_t be[8];

	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(len >> (56 - 8 * i));
	sha256_update(ctx, sizeof(be), be);
	sha256_update(ctx, len, (const uint8_t *)s);
}

void berth_id_from_name(const char *class_name, const char *name, char out[BERTH_ID_LEN + 1])
{
	uint8_t digest[SHA256_DIGEST_SIZE];
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, sizeof(ID_TAG), (const uint8_t *)ID_TAG);
	update_field(&ctx, class_name);
	update_field(&ctx, name);
	sha256_digest(&ctx, sizeof(digest), digest);
	hex(digest, sizeof(digest), out);
}

int berth_id_unique(char out[BERTH_ID_LEN + 1], berth_error_t *err)
{
	uint8_t bytes[BERTH_ID_LEN / 2];
	size_t got = 0;

	/* getrandom() blocks only until the kernel's pool is first seeded, at boot. */
	while (got < sizeof(bytes)) {
		ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return berth_error_set(err, errno, "make a unique instance id: getrandom");
		}
		got += (size_t)n;
	}
	hex(bytes, sizeof(bytes), out);
	return 0;
}

bool berth_id_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < BERTH_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[i] == '\0';
}

void berth_registry_sha256_hex(const char *data, size_t len, char out[BERTH_ID_LEN + 1])
{
	uint8_t digest[SHA256_DIGEST_SIZE];
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, len, (const uint8_t *)data);
	sha256_digest(&ctx, sizeof(digest), digest);
	hex(digest, sizeof(digest), out);
}
