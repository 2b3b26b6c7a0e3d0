/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "json-util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/limits.h"
#include "util/alloc.h"
#include "util/args.h"

const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown";
}

static bool depth_ok(const json_t *v, unsigned depth)
{
	const char *key;
	json_t *child;
	size_t i;

	if (depth > OTTER_JSON_MAX_DEPTH)
		return false;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, child)
			if (!depth_ok(child, depth + 1))
				return false;
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
			if (!depth_ok(child, depth + 1))
				return false;
	}
	return true;
}

/*
 * jansson nests up to 2048 levels (compiled in), each a C stack frame. Bound the nesting
 * before jansson sees the bytes, so that hostile input cannot use the parser's stack: count
 * brackets outside strings. Returns false when the limit is exceeded.
 */
static bool prescan_depth(const uint8_t *buf, size_t len)
{
	unsigned depth = 0;
	bool in_string = false;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > OTTER_JSON_MAX_DEPTH + 1)
				return false;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return true;
}

int otter_json_parse(json_t **out, const uint8_t *buf, size_t len, size_t max, otter_error *err)
{
	json_error_t jerr;
	json_t *v;

	ARG_NONNULL(err, "json", out);
	ARG_CHECK(err, "json", buf || len == 0);
	if (len > max)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "JSON document of %zu bytes exceeds the limit of %zu", len, max);
	if (!prescan_depth(buf, len))
		return otter_error_set(err, OTTER_E_INVALID, "JSON nesting deeper than %u levels",
				       OTTER_JSON_MAX_DEPTH);
	v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v)
		return otter_error_set(err, OTTER_E_INVALID, "invalid JSON at line %d column %d: %s",
				       jerr.line, jerr.column, jerr.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return otter_error_set(err, OTTER_E_INVALID, "JSON top level is not an object");
	}
	if (!depth_ok(v, 1)) {
		json_decref(v);
		return otter_error_set(err, OTTER_E_INVALID, "JSON nesting deeper than %u levels",
				       OTTER_JSON_MAX_DEPTH);
	}
	*out = v;
	return 0;
}

int json_canonical_escape(otter_buf *b, const uint8_t *s, size_t len, otter_error *err)
{
	size_t start = 0;
	int r = 0;

	for (size_t i = 0; r == 0 && i < len; i++) {
		if (s[i] != '"' && s[i] != '\\')
			continue;
		r = buf_append(b, s + start, i - start, err);
		if (r == 0)
			r = buf_append(b, s[i] == '"' ? "\\\"" : "\\\\", 2, err);
		start = i + 1;
	}
	if (r == 0)
		r = buf_append(b, s + start, len - start, err);
	return r;
}

static int append_string(otter_buf *b, const char *s, size_t len, otter_error *err)
{
	int r = buf_append(b, "\"", 1, err);

	if (r == 0)
		r = json_canonical_escape(b, (const uint8_t *)s, len, err);
	if (r == 0)
		r = buf_append(b, "\"", 1, err);
	return r;
}

static int cmp_keys(const void *a, const void *b)
{
	/* UTF-8 byte order equals code point order (tuf.md §5 rule 2). */
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int json_canonical_append(const json_t *v, otter_buf *b, otter_error *err)
{
	char num[32];
	int r = 0;

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		_cleanup_free_ const char **keys = NULL;
		const char *key;
		json_t *child;

		keys = otter_reallocarray(NULL, n ? n : 1, sizeof(*keys));
		if (!keys)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		json_object_foreach((json_t *)v, key, child)
			keys[i++] = key;
		qsort(keys, n, sizeof(*keys), cmp_keys);
		r = buf_append(b, "{", 1, err);
		for (i = 0; r == 0 && i < n; i++) {
			if (i > 0)
				r = buf_append(b, ",", 1, err);
			if (r == 0)
				r = append_string(b, keys[i], strlen(keys[i]), err);
			if (r == 0)
				r = buf_append(b, ":", 1, err);
			if (r == 0)
				r = json_canonical_append(json_object_get(v, keys[i]), b, err);
		}
		if (r == 0)
			r = buf_append(b, "}", 1, err);
		return r;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *child;

		r = buf_append(b, "[", 1, err);
		json_array_foreach(v, i, child) {
			if (r == 0 && i > 0)
				r = buf_append(b, ",", 1, err);
			if (r == 0)
				r = json_canonical_append(child, b, err);
		}
		if (r == 0)
			r = buf_append(b, "]", 1, err);
		return r;
	}
	case JSON_STRING:
		return append_string(b, json_string_value(v), json_string_length(v), err);
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf_append_str(b, num, err);
	case JSON_REAL:
		return otter_error_set(err, OTTER_E_FORMAT,
				       "floating-point number %g cannot be canonicalized",
				       json_real_value(v));
	case JSON_TRUE:
		return buf_append_str(b, "true", err);
	case JSON_FALSE:
		return buf_append_str(b, "false", err);
	case JSON_NULL:
		return buf_append_str(b, "null", err);
	}
	return otter_error_set(err, OTTER_E_INVALID, "unknown JSON type %d",
			       (int)json_typeof(v));
}

int otter_json_canonical(const json_t *v, uint8_t **out, size_t *len, otter_error *err)
{
	otter_buf b;
	int r;

	ARG_NONNULL(err, "json", v);
	ARG_NONNULL(err, "json", out);
	buf_init(&b, SIZE_MAX / 2);
	r = json_canonical_append(v, &b, err);
	if (r < 0) {
		buf_clear(&b);
		return r;
	}
	*out = buf_steal(&b, len);
	if (!*out)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	return 0;
}

int otter_json_pretty(const json_t *v, uint8_t **out, size_t *len, otter_error *err)
{
	char *s;
	size_t n;
	uint8_t *p;

	ARG_NONNULL(err, "json", v);
	ARG_NONNULL(err, "json", out);
	s = json_dumps(v, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (!s)
		return otter_error_set(err, OTTER_E_NOMEM, "could not serialise JSON");
	n = strlen(s);
	p = otter_malloc(n + 2);
	if (!p) {
		free(s);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	memcpy(p, s, n);
	p[n] = '\n';
	p[n + 1] = '\0';
	free(s);
	*out = p;
	if (len)
		*len = n + 1;
	return 0;
}

int json_get_member(const json_t *obj, const char *key, json_type type, bool required,
		    const char *what, json_t **out, otter_error *err)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v) {
		if (required)
			return otter_error_set(err, OTTER_E_FORMAT, "%s: missing \"%s\"", what, key);
		return 0;
	}
	if (json_typeof(v) != type && !(type == JSON_TRUE && json_is_boolean(v))) {
		static const char *const names[] = {"an object", "an array", "a string",
						    "an integer", "a real", "a boolean",
						    "a boolean", "null"};
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"%s\" must be %s, not %s", what,
				       key, names[type], json_type_name(v));
	}
	*out = v;
	return 0;
}

int json_get_string(const json_t *obj, const char *key, bool required, const char *what,
		    const char **out, otter_error *err)
{
	json_t *v;
	int r = json_get_member(obj, key, JSON_STRING, required, what, &v, err);

	*out = v ? json_string_value(v) : NULL;
	return r;
}

int json_get_int(const json_t *obj, const char *key, bool required, const char *what,
		 int64_t min, int64_t max, int64_t *out, otter_error *err)
{
	json_t *v;
	int r = json_get_member(obj, key, JSON_INTEGER, required, what, &v, err);

	if (r < 0 || !v)
		return r;
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: \"%s\" is %" JSON_INTEGER_FORMAT
				       ", outside [%" PRId64 ", %" PRId64 "]",
				       what, key, json_integer_value(v), min, max);
	*out = json_integer_value(v);
	return 0;
}

int json_get_bool(const json_t *obj, const char *key, bool required, const char *what,
		  bool *out, otter_error *err)
{
	json_t *v;
	int r = json_get_member(obj, key, JSON_TRUE, required, what, &v, err);

	if (r == 0 && v)
		*out = json_is_true(v);
	return r;
}
