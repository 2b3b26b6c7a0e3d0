/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

void buf_init(otter_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_clear(otter_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

int buf_reserve(otter_buf *b, size_t extra, otter_error *err)
{
	size_t need, ncap;
	uint8_t *p;

	if (extra > b->max || b->len > b->max - extra)
		return otter_error_set(err, OTTER_E_TOO_LARGE, "data exceeds the limit of %zu bytes",
				       b->max);
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need;
			break;
		}
		ncap *= 2;
	}
	p = otter_reallocarray(b->data, ncap, 1);
	if (!p)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory (%zu bytes)", ncap);
	b->data = p;
	b->cap = ncap;
	return 0;
}

int buf_append(otter_buf *b, const void *p, size_t n, otter_error *err)
{
	int r = buf_reserve(b, n, err);

	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(otter_buf *b, const char *s, otter_error *err)
{
	return buf_append(b, s, strlen(s), err);
}

int buf_printf(otter_buf *b, otter_error *err, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return otter_error_set(err, OTTER_E_INVALID, "bad format string '%.40s'", fmt);
	r = buf_reserve(b, (size_t)n, err);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

uint8_t *buf_steal(otter_buf *b, size_t *len_out)
{
	uint8_t *p = b->data;

	if (len_out)
		*len_out = b->len;
	if (!p)
		p = otter_calloc(1, 1);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
