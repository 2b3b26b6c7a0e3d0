/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_UTIL_BUF_H
#define OTTER_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

/*
 * A growable byte buffer that carries its own maximum (curl dynbuf): appending past `max`
 * fails with OTTER_E_TOO_LARGE instead of growing. The data is always NUL-terminated (the
 * terminator is not counted in len and not in max) so that text can be handed to C APIs.
 */
typedef struct otter_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
} otter_buf;

void buf_init(otter_buf *b, size_t max);
void buf_clear(otter_buf *b); /* frees the data, keeps max */
/* Makes room for `extra` more bytes up front (one allocation when the size is known). */
int buf_reserve(otter_buf *b, size_t extra, otter_error *err);
int buf_append(otter_buf *b, const void *p, size_t n, otter_error *err);
int buf_append_str(otter_buf *b, const char *s, otter_error *err);
int buf_printf(otter_buf *b, otter_error *err, const char *fmt, ...) OTTER_PRINTF(3, 4);
/* Hands the data to the caller (who frees it); the buffer becomes empty. */
uint8_t *buf_steal(otter_buf *b, size_t *len_out);

#endif
