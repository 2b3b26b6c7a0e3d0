/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_UTIL_ALLOC_H
#define OTTER_UTIL_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every allocation in libotter goes through these, so that tests can fail the Nth one
 * (style.md §4.6). They behave like their libc namesakes; reallocarray and the _add/_mul
 * helpers check for overflow.
 */
void *otter_malloc(size_t n);
void *otter_calloc(size_t nmemb, size_t size);
void *otter_reallocarray(void *p, size_t nmemb, size_t size);
char *otter_strdup(const char *s);
char *otter_strndup(const char *s, size_t n);
void *otter_memdup(const void *p, size_t n);

/*
 * Test hook: makes allocation number n (counting from 1 after the call) fail, 0 disables.
 * GLOBAL: only ever set by single-threaded test programs.
 */
void otter_alloc_fail_at(unsigned long n);
unsigned long otter_alloc_count(void);

static inline bool size_add_overflow(size_t a, size_t b, size_t *out)
{
	return __builtin_add_overflow(a, b, out);
}

static inline bool size_mul_overflow(size_t a, size_t b, size_t *out)
{
	return __builtin_mul_overflow(a, b, out);
}

static inline bool u64_add_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_add_overflow(a, b, out);
}

#endif
