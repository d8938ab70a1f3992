/*
 * error.c - filling cs_error. Formatting goes into the caller's fixed buffer so that reporting
 * an out-of-memory condition never needs memory.
 */
#include "convstore/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cs_error_set(cs_error *err, int code, const char *fmt, ...)
{
	if (!err)
		return code;
	va_list ap;
	va_start(ap, fmt);
	err->code = code;
	err->index = CS_NO_INDEX;
	err->current_version = 0;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int cs_error_wrap(cs_error *err, int code, const char *what)
{
	if (!err)
		return code;
	/* Big enough for both parts; the result is cut to msg's size on the way back. */
	char tmp[2 * sizeof(err->msg)];
	snprintf(tmp, sizeof(tmp), "%.200s: %s", what, err->msg);
	memcpy(err->msg, tmp, sizeof(err->msg) - 1);
	err->msg[sizeof(err->msg) - 1] = '\0';
	return err->code;
}

const char *cs_strerror(int code)
{
	switch (code) {
	case CS_OK: return "ok";
	case CS_EINVAL: return "invalid argument";
	case CS_ENOTFOUND: return "not found";
	case CS_ECONFLICT: return "conflict";
	case CS_ETOOBIG: return "too big";
	case CS_EFULL: return "storage full";
	case CS_ECORRUPT: return "corrupt";
	case CS_ENOMEM: return "out of memory";
	case CS_EAUTH: return "not authorised";
	case CS_EIO: return "i/o error";
	case CS_EGONE: return "gone";
	case CS_ECLOSED: return "closed";
	}
	return "unknown error";
}
