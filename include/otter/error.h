/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_ERROR_H
#define OTTER_ERROR_H

/*
 * Errors: every fallible libotter function returns 0 or a negative OTTER_E_* code and takes a
 * caller-owned `otter_error *err` as its last argument (which may be NULL). The message names
 * the file, role, key or version concerned, e.g.
 *
 *     "snapshot.json: version 7 is lower than trusted version 9 (rollback attack?)"
 *
 * The codes are ABI: they are only ever appended, never renumbered.
 */

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define OTTER_PUBLIC            __attribute__((visibility("default")))
#define OTTER_WARN_UNUSED_RESULT __attribute__((warn_unused_result))
#define OTTER_PRINTF(a, b)      __attribute__((format(printf, a, b)))
#else
#define OTTER_PUBLIC
#define OTTER_WARN_UNUSED_RESULT
#define OTTER_PRINTF(a, b)
#endif

typedef enum otter_error_code {
	OTTER_E_OK = 0,
	OTTER_E_FAILED = -1,        /* unspecified failure */
	OTTER_E_INVALID = -2,       /* invalid argument or malformed input */
	OTTER_E_NOMEM = -3,         /* out of memory */
	OTTER_E_IO = -4,            /* read, write, fsync, rename ... failed (sys_errno set) */
	OTTER_E_TOO_LARGE = -5,     /* input or download exceeds its size cap */
	OTTER_E_FORMAT = -6,        /* well-formed JSON, but not the expected metadata format */
	OTTER_E_SIGNATURE = -7,     /* signature threshold not met */
	OTTER_E_EXPIRED = -8,       /* metadata expired (freeze attack?) */
	OTTER_E_ROLLBACK = -9,      /* version lower than trusted (rollback attack?) */
	OTTER_E_HASH = -10,         /* hash or length differs from the trusted value */
	OTTER_E_NOT_FOUND = -11,    /* file, URL (HTTP 403/404), target or key not found */
	OTTER_E_NETWORK = -12,      /* connection or protocol failure */
	OTTER_E_TIMEOUT = -13,      /* timeout or too slow (slow retrieval attack?) */
	OTTER_E_NOT_SUPPORTED = -14, /* feature, key type or algorithm not supported */
	OTTER_E_CRYPTO = -15,       /* cryptographic library failure */
	OTTER_E_LIMIT = -16,        /* a count limit was reached (rotations, delegations ...) */
	OTTER_E_VERSION = -17,      /* version differs from the one the referrer names */
	OTTER_E_EXISTS = -18,       /* object already exists */
	OTTER_E_CONFIG = -19,       /* configuration error */
	OTTER_E_STATE = -20,        /* operation not allowed in the current state */
	OTTER_E_BUSY = -21,         /* resource held by another process */
	OTTER_E_BOOT = -22,         /* boot environment error */
	OTTER_E_ABORTED = -23,      /* cancelled by the caller or a signal */
	_OTTER_E_MIN = -24,         /* sentinel: every code is greater than this */
} otter_error_code;

typedef struct otter_error {
	int code;      /* OTTER_E_* (negative); 0 = no error */
	int sys_errno; /* errno of the failing system call, else 0 */
	char msg[512]; /* human readable, names what failed */
} otter_error;

#define OTTER_ERROR_INIT {0, 0, {0}}

/* Sets err (if not NULL and not already set) and returns code. */
OTTER_PUBLIC int otter_error_set(otter_error *err, int code, const char *fmt, ...)
	OTTER_PRINTF(3, 4);

/* Like otter_error_set with code OTTER_E_IO (or NOMEM for ENOMEM), appending strerror(errnum). */
OTTER_PUBLIC int otter_error_set_errno(otter_error *err, int errnum, const char *fmt, ...)
	OTTER_PRINTF(3, 4);

/*
 * Adds context in front of an existing message: "refresh: " + "snapshot.json: ...".
 * Returns code unchanged so that callers can write `return otter_error_prefix(err, r, ...)`.
 */
OTTER_PUBLIC int otter_error_prefix(otter_error *err, int code, const char *fmt, ...)
	OTTER_PRINTF(3, 4);

/* Forgets an error so that the struct can be reused. */
OTTER_PUBLIC void otter_error_clear(otter_error *err);

/* A short constant name for a code: "signature", "expired", ... */
OTTER_PUBLIC const char *otter_error_code_name(int code);

#ifdef __cplusplus
}
#endif

#endif
