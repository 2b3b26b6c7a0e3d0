/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_JSON_JCOMPACT_H
#define OTTER_LIB_JSON_JCOMPACT_H

/*
 * JSON straight from the bytes, for large untrusted documents (TUF targets metadata with tens
 * of thousands of entries): no tree is built. jc_check validates a whole document once; after
 * that, values are spans of the caller's buffer (strings referenced in place), found by
 * scanning, and the canonical form (tuf.md §5) is produced from the bytes. Memory besides the
 * document: the output, and while an object is canonicalised the positions of its members
 * (one growing array for the whole document, not one allocation per value).
 *
 * The rules are those of otter_json_parse (jansson with JSON_REJECT_DUPLICATES) plus
 * otter_json_canonical: every document one accepts, the other accepts too and both produce
 * the same canonical bytes; every document one rejects, the other rejects (fuzz target
 * json-compact and test-json check this). Duplicate keys are found when an object is
 * canonicalised or converted (jc_to_json), which is where otter_json_parse would have
 * rejected the document.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/error.h>

#include "util/buf.h"

/* A value inside a checked document: p[0..len) are its bytes (no surrounding whitespace). */
typedef struct jc_span {
	const uint8_t *p;
	size_t len;
} jc_span;

typedef enum jc_type {
	JC_NONE = 0, /* an empty span: absent */
	JC_OBJECT,
	JC_ARRAY,
	JC_STRING,
	JC_NUMBER,
	JC_TRUE,
	JC_FALSE,
	JC_NULL,
} jc_type;

/*
 * Checks buf[0..len) (len <= max): one JSON object with optional whitespace around, valid
 * UTF-8, escapes and integers within int64 as jansson reads them, nesting at most
 * OTTER_JSON_MAX_DEPTH. *root is the object. Errors say where (byte offset) and what.
 */
int jc_check(const uint8_t *buf, size_t len, size_t max, jc_span *root, otter_error *err);

jc_type jc_typeof(jc_span v);
/* Members of object obj: *key (raw, without quotes, escapes not decoded) and *val. Start with
 * *it = 0; returns false after the last. */
bool jc_object_next(jc_span obj, size_t *it, jc_span *key, jc_span *val);
/* The value of key in obj (decoded comparison); an empty span when absent or not an object. */
jc_span jc_object_get(jc_span obj, const char *key);
size_t jc_object_size(jc_span obj);
/* A string's decoded length, and whether it equals s (decoded comparison). */
size_t jc_string_length(jc_span str);
bool jc_string_eq(jc_span str, const char *s, size_t len);
/* A string, decoded into out (NUL-terminated, at most cap - 1 bytes); false if it is longer. */
bool jc_string_copy(jc_span str, char *out, size_t cap);
/* An integer value (checked to fit by jc_check); false for a real number or another type. */
bool jc_integer(jc_span num, int64_t *out);

/* Appends the canonical form of v to b. Fails on a real number or a duplicate key. */
int jc_canonical_append(jc_span v, otter_buf *b, otter_error *err);
/* The canonical form of v as a new buffer (*out, *len; free() it). */
int jc_canonical(jc_span v, uint8_t **out, size_t *len, otter_error *err);
/* A jansson value of v (duplicate keys rejected), for the small parts of a large document. */
int jc_to_json(jc_span v, json_t **out, otter_error *err);

#endif
