/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Text for JSON: a command's output and a file's content are bytes, JSON
 * strings are UTF-8. Valid text is taken as it is; what is not becomes
 * U+FFFD, byte by byte; a character cut at the end of a piece waits for the
 * rest (sbx_utf8_tail).
 */
#include <stdint.h>
#include <string.h>

#include "berth/util.h"
#include "sandbox/sandbox-internal.h"

json_t *sbx_json_text(const char *data, size_t len)
{
	const unsigned char *s = (const unsigned char *)data;
	cleanup_free char *out = NULL;
	size_t i = 0, o = 0;
	json_t *j;

	/* Valid text (the usual case) is taken as it is; jansson checks. */
	j = json_stringn(data, len);
	if (j != NULL)
		return j;
	out = xmalloc(len * 3 + 1);
	while (i < len) {
		size_t n = berth_utf8_seq(s + i, len - i);
		if (n == 0) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		}
	}
	return json_stringn(out, o);
}

size_t sbx_utf8_tail(const char *data, size_t len)
{
	const unsigned char *s = (const unsigned char *)data;

	for (size_t back = 1; back <= 3 && back <= len; back++) {
		unsigned char b = s[len - back];
		size_t need;
		if ((b & 0xc0) == 0x80)
			continue;
		need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
		return need > back ? back : 0;
	}
	return 0;
}
