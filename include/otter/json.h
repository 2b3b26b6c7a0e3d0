/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_JSON_H
#define OTTER_JSON_H

/*
 * Strict JSON intake and canonical JSON output.
 *
 * Intake (otter_json_parse) is for untrusted bytes: the size cap is checked before parsing;
 * the top level must be an object; duplicate member names, NUL characters, invalid UTF-8, lone
 * surrogates, trailing garbage, integers outside int64 and nesting deeper than
 * OTTER_JSON_MAX_DEPTH (64) are all rejected.
 *
 * Canonical output follows the OLPC dialect as securesystemslib implements it (tuf.md §5):
 * no whitespace, members sorted by the bytes of their UTF-8 names, strings escaping only '"'
 * and '\', integers in plain decimal; floating-point numbers cannot be encoded.
 */

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Parses buf (len bytes, at most max) into *out (new reference, caller json_decref()s). */
OTTER_PUBLIC int otter_json_parse(json_t **out, const uint8_t *buf, size_t len, size_t max,
				  otter_error *err) OTTER_WARN_UNUSED_RESULT;

/* Canonical JSON of v into a new malloc()ed buffer (NUL-terminated, not counted in *len). */
OTTER_PUBLIC int otter_json_canonical(const json_t *v, uint8_t **out, size_t *len,
				      otter_error *err) OTTER_WARN_UNUSED_RESULT;

/*
 * Human-friendly output for files people read and diff (repository metadata): members sorted,
 * one per line, indent 1, newline at the end. Caller frees.
 */
OTTER_PUBLIC int otter_json_pretty(const json_t *v, uint8_t **out, size_t *len,
				   otter_error *err) OTTER_WARN_UNUSED_RESULT;

#ifdef __cplusplus
}
#endif

#endif
