/* SPDX-License-Identifier: Apache-2.0 */
/* Base64: RFC 4648's test vectors, every byte value, and what is not base64. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "berth/base64.h"

static void test_vectors(void **state)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
	                                    "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	(void)state;

	for (size_t i = 0; i < 7; i++) {
		unsigned char *out = NULL;
		size_t n = 0, len = 0;
		char *enc = berth_base64_encode(plain[i], strlen(plain[i]), &len);

		assert_string_equal(enc, coded[i]);
		assert_int_equal(len, strlen(coded[i]));
		assert_int_equal(berth_base64_decode(coded[i], strlen(coded[i]), &out, &n), 0);
		assert_int_equal(n, strlen(plain[i]));
		assert_memory_equal(out, plain[i], n);
		free(enc);
		free(out);
	}
}

static void test_all_bytes(void **state)
{
	unsigned char bytes[256], *out = NULL;
	size_t n = 0;
	char *enc;
	(void)state;

	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	enc = berth_base64_encode(bytes, sizeof(bytes), NULL);
	assert_int_equal(berth_base64_decode(enc, strlen(enc), &out, &n), 0);
	assert_int_equal(n, 256);
	assert_memory_equal(out, bytes, 256);
	free(enc);
	free(out);
}

static void test_lenient_and_bad(void **state)
{
	unsigned char *out = NULL;
	size_t n = 0;
	(void)state;

	/* Line breaks, no padding and the URL-safe alphabet are fine. */
	assert_int_equal(berth_base64_decode("Zm9v\nYmE", 8, &out, &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "fooba", 5);
	free(out);
	assert_int_equal(berth_base64_decode("-_8", 3, &out, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
	free(out);
	assert_int_equal(berth_base64_decode("Zm9v!", 5, &out, &n), -EINVAL);
	assert_int_equal(berth_base64_decode("Zg==Zg", 6, &out, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_vectors),
	        cmocka_unit_test(test_all_bytes),
	        cmocka_unit_test(test_lenient_and_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
