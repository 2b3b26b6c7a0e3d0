/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_UTIL_ARGS_H
#define OTTER_UTIL_ARGS_H

/*
 * Argument checks at the top of library functions. A failed check is a bug in the caller, so
 * the message names the argument as the code calls it, and the function:
 * "boot: invalid argument: out is NULL", "json: invalid argument: expected buf || len == 0".
 * Each returns OTTER_E_INVALID from the calling function.
 */

#include <otter/error.h>

#define ARG_NONNULL(err, what, p)                                                              \
	do {                                                                                   \
		if (!(p))                                                                      \
			return otter_error_set((err), OTTER_E_INVALID,                         \
					       "%s: invalid argument: %s is NULL", (what), #p);  \
	} while (0)

#define ARG_CHECK(err, what, cond)                                                             \
	do {                                                                                   \
		if (!(cond))                                                                   \
			return otter_error_set((err), OTTER_E_INVALID,                         \
					       "%s: invalid argument: expected %s", (what),      \
					       #cond);                                          \
	} while (0)

#endif
