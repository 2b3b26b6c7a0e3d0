/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_TEST_COMMON_H
#define OTTER_TEST_COMMON_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <otter/error.h>

/* Asserts that an otter call succeeded, printing its error message if not. */
#define assert_ok(expr)                                                                            \
	do {                                                                                       \
		otter_error _e = OTTER_ERROR_INIT;                                                 \
		(void)_e;                                                                          \
		int _r = (expr);                                                                   \
		if (_r != 0)                                                                       \
			print_error("%s failed: %d (%s)\n", #expr, _r,                             \
				    otter_error_code_name(_r));                                    \
		assert_int_equal(_r, 0);                                                           \
	} while (0)

/* Asserts a specific error code, and that the message mentions `needle` (may be NULL). */
#define assert_err(expr, code, errp, needle)                                                       \
	do {                                                                                       \
		int _r = (expr);                                                                   \
		if (_r != (code))                                                                  \
			print_error("%s returned %d (%s), expected %d (%s): %s\n", #expr, _r,      \
				    otter_error_code_name(_r), (int)(code),                        \
				    otter_error_code_name(code), (errp)->msg);                     \
		assert_int_equal(_r, (code));                                                      \
		test_check_msg((errp)->msg, (needle));                                             \
	} while (0)

static inline void test_check_msg(const char *msg, const char *needle)
{
	if (needle && !strstr(msg, needle)) {
		print_error("message '%s' lacks '%s'\n", msg, needle);
		fail();
	}
}

/* A fresh temporary directory (caller frees the string; removed by rm_rf). */
static inline char *test_tmpdir(void)
{
	char tmpl[] = "/tmp/otter-test-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static inline void rm_rf(const char *path)
{
	char cmd[4096];

	if (!path || strncmp(path, "/tmp/otter-test-", 16) != 0)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		print_error("could not remove %s\n", path);
}

#endif
