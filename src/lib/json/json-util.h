/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_JSON_UTIL_H
#define OTTER_LIB_JSON_UTIL_H

/*
 * The json module's internal interface (docs/architecture.md, "Headers"): what every module
 * that reads JSON inside the libraries shares (tuf, slot, agent, and beside the device path
 * repository authoring and the director). Not installed and no ABI: the typed getters' error
 * wording and borrowed returns are a convenience for in-tree parsers; a program using the
 * installed libotter has jansson and otter/json.h (strict intake, canonical output).
 */

#include <stdbool.h>
#include <stdint.h>

#include <otter/json.h>

#include "util/buf.h"
#include "util/cleanup.h"

/* jansson.h provides json_decrefp() for _cleanup_(json_decrefp). */

/* Appends the canonical form of v to b (which carries the size cap). */
int json_canonical_append(const json_t *v, otter_buf *b, otter_error *err);
/* Appends the bytes of a string with only '"' and '\\' escaped (canonical JSON, tuf.md §5),
 * without the quotes. */
int json_canonical_escape(otter_buf *b, const uint8_t *s, size_t len, otter_error *err);

/*
 * Typed member access with errors that name the member: "what" is the object's description,
 * e.g. "root.json: signed.roles.timestamp". Returned values are borrowed.
 */
int json_get_member(const json_t *obj, const char *key, json_type type, bool required,
		    const char *what, json_t **out, otter_error *err);
int json_get_string(const json_t *obj, const char *key, bool required, const char *what,
		    const char **out, otter_error *err);
/* An integer in [min, max]. */
int json_get_int(const json_t *obj, const char *key, bool required, const char *what,
		 int64_t min, int64_t max, int64_t *out, otter_error *err);
int json_get_bool(const json_t *obj, const char *key, bool required, const char *what,
		  bool *out, otter_error *err);

const char *json_type_name(const json_t *v);

#endif
