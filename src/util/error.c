/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <otter/error.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf, size, fmt, ap);

	/* A truncated message is still useful; mark it so nobody mistakes it for whole. */
	if (n >= 0 && (size_t)n >= size && size > 4)
		memcpy(buf + size - 4, "...", 4);
}

/* out = a + b + c, cut to size (with "..." when cut). */
static void join3(char *out, size_t size, const char *a, const char *b, const char *c)
{
	const char *parts[3] = {a, b, c};
	size_t off = 0;

	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(parts[i]);
		if (n > size - 1 - off)
			n = size - 1 - off;
		memcpy(out + off, parts[i], n);
		off += n;
	}
	out[off] = '\0';
	if (off == size - 1 && size > 4 && strlen(a) + strlen(b) + strlen(c) > off)
		memcpy(out + size - 4, "...", 4);
}

int otter_error_set(otter_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err || err->code != 0)
		return code;
	err->code = code;
	err->sys_errno = 0;
	va_start(ap, fmt);
	vformat(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int otter_error_set_errno(otter_error *err, int errnum, const char *fmt, ...)
{
	int code = errnum == ENOMEM ? OTTER_E_NOMEM : OTTER_E_IO;
	char head[sizeof(err->msg)];
	va_list ap;

	if (!err || err->code != 0)
		return code;
	va_start(ap, fmt);
	vformat(head, sizeof(head), fmt, ap);
	va_end(ap);
	err->code = code;
	err->sys_errno = errnum;
	join3(err->msg, sizeof(err->msg), head, ": ", strerror(errnum));
	return code;
}

int otter_error_prefix(otter_error *err, int code, const char *fmt, ...)
{
	char head[sizeof(err->msg)];
	char tail[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return code;
	if (err->code == 0) {
		/* Nobody set a message: the prefix is all we know. */
		err->code = code;
		err->msg[0] = '\0';
	}
	va_start(ap, fmt);
	vformat(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(tail, err->msg, sizeof(tail));
	join3(err->msg, sizeof(err->msg), head, tail[0] ? ": " : "", tail);
	return code;
}

void otter_error_clear(otter_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->sys_errno = 0;
	err->msg[0] = '\0';
}

const char *otter_error_code_name(int code)
{
	static const char *const names[] = {
		"ok",        "failed",   "invalid",  "no memory", "i/o",       "too large",
		"format",    "signature", "expired", "rollback",  "hash",      "not found",
		"network",   "timeout",  "not supported", "crypto", "limit",   "version",
		"exists",    "config",   "state",    "busy",      "boot",      "aborted",
	};
	unsigned idx;

	if (code > 0 || code <= _OTTER_E_MIN)
		return "unknown";
	idx = (unsigned)-code;
	return idx < sizeof(names) / sizeof(names[0]) ? names[idx] : "unknown";
}
