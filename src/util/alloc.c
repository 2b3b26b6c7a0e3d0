/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

/* GLOBAL: allocation-failure injection for tests (style.md §4.6); zero in production. */
static unsigned long fail_at;
static unsigned long counter;

void otter_alloc_fail_at(unsigned long n)
{
	fail_at = n;
	counter = 0;
}

unsigned long otter_alloc_count(void)
{
	return counter;
}

static bool should_fail(void)
{
	counter++;
	return fail_at != 0 && counter == fail_at;
}

void *otter_malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *otter_calloc(size_t nmemb, size_t size)
{
	if (should_fail())
		return NULL;
	if (nmemb == 0 || size == 0)
		nmemb = size = 1;
	return calloc(nmemb, size);
}

void *otter_reallocarray(void *p, size_t nmemb, size_t size)
{
	size_t total;

	if (size_mul_overflow(nmemb, size, &total))
		return NULL;
	if (should_fail())
		return NULL;
	return realloc(p, total ? total : 1);
}

void *otter_memdup(const void *p, size_t n)
{
	void *q = otter_malloc(n);

	if (q && n)
		memcpy(q, p, n);
	return q;
}

char *otter_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *q = otter_malloc(len + 1);

	if (!q)
		return NULL;
	memcpy(q, s, len);
	q[len] = '\0';
	return q;
}

char *otter_strdup(const char *s)
{
	return otter_strndup(s, strlen(s));
}
