/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_UTIL_STRUTIL_H
#define OTTER_UTIL_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

/*
 * Strict number parsing (systemd parse-util): decimal digits only, no sign, no whitespace, the
 * whole string, no leading zeros except "0" itself, range checked. atoi/strtol are banned.
 */
int parse_u64(const char *s, uint64_t *out);
int parse_u64_range(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *p, size_t n, char *out);
/* Decodes hex (either case) of exactly 2*outlen digits; false if malformed. */
bool hex_decode(const char *s, size_t slen, uint8_t *out, size_t outlen);
bool is_lower_hex(const char *s, size_t n);

/*
 * Percent-encodes s like Python's urllib.parse.quote(s, safe=""): every byte outside
 * A-Z a-z 0-9 _ . - ~ becomes %XX with upper-case hex, '/' included. Caller frees.
 */
char *percent_encode(const char *s);
/* The same, but '/' stays: an absolute path becomes the path of a file:// URL. */
char *percent_encode_path(const char *s);

/*
 * Checks that a TUF target path is safe to use as a relative path: not empty, not absolute,
 * no empty, "." or ".." components, no control bytes, at most max_len bytes.
 */
bool target_path_is_safe(const char *path, size_t max_len);

/*
 * UTC times in the one shape TUF allows, "YYYY-MM-DDTHH:MM:SSZ", to and from seconds since
 * the epoch. Parsing rejects every other shape and out-of-range fields.
 */
int utc_parse(const char *s, int64_t *out);
void utc_format(int64_t t, char out[32]);

/* Joins base and name with exactly one '/' in between. Caller frees; NULL on ENOMEM. */
char *path_join(const char *base, const char *name);

/*
 * snprintf for messages and descriptions that may be cut on purpose (gcc's
 * -Wformat-truncation=2 cannot see that a cut is fine there). Returns out.
 */
char *strfmt(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* a + b in a new string; NULL on ENOMEM. */
char *str_concat(const char *a, const char *b);

/* True if s ends with suffix. */
bool str_endswith(const char *s, const char *suffix);

/* Copies a string for a log or error message, replacing control bytes by '?' and cutting it
 * to fit; untrusted names from metadata go through this. */
void str_sanitize(const char *in, char *out, size_t outsize);

#endif
