/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "berth/error.h"
#include "berth/util.h"

int berth_error_set(berth_error_t *err, int errnum, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL)
		return errnum > 0 ? -errnum : -EINVAL;
	va_start(ap, fmt);
	n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (errnum > 0 && (size_t)n < sizeof(err->message))
		if (snprintf(err->message + n, sizeof(err->message) - (size_t)n, ": %s",
		             strerror(errnum)) < 0)
			err->message[n] = '\0';
	berth_one_line(err->message); /* see berth/error.h */
	err->code = errnum > 0 ? errnum : 0;
	err->kind = BERTH_ERROR_KIND_NONE;
	return berth_error_ret(err);
}

int berth_error_set_plain(berth_error_t *err, int errnum, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return errnum > 0 ? -errnum : -EINVAL;
	va_start(ap, fmt);
	if (vsnprintf(err->message, sizeof(err->message), fmt, ap) < 0)
		err->message[0] = '\0';
	va_end(ap);
	berth_one_line(err->message); /* see berth/error.h */
	err->code = errnum > 0 ? errnum : 0;
	err->kind = BERTH_ERROR_KIND_NONE;
	return berth_error_ret(err);
}

int berth_error_wrap(berth_error_t *err, const char *fmt, ...)
{
	char prefix[BERTH_ERROR_MSG_MAX];
	char old[BERTH_ERROR_MSG_MAX];
	va_list ap;

	if (err == NULL)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->message, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	/* A message too long for the buffer is cut; the beginning says the most. */
	if (snprintf(err->message, sizeof(err->message), "%s: %s", prefix, old) < 0)
		err->message[0] = '\0';
	berth_one_line(err->message); /* see berth/error.h */
	return berth_error_ret(err);
}

void berth_error_clear(berth_error_t *err)
{
	if (err == NULL)
		return;
	err->code = 0;
	err->kind = BERTH_ERROR_KIND_NONE;
	err->message[0] = '\0';
}

int berth_error_ret(const berth_error_t *err)
{
	return err->code > 0 ? -err->code : -EINVAL;
}
