/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * jcompact.h. Two kinds of functions:
 *  - the checker (check_*) reads untrusted bytes with a cursor against an end pointer and
 *    enforces everything jansson's reader enforces (and otter_json_parse's depth limit);
 *  - everything else runs on a checked document only, and so only skips and copies: a
 *    string ends at the first unescaped quote, a value at the first delimiter outside
 *    strings at its own depth.
 */
#include "jcompact.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "lib/limits.h"
#include "util/alloc.h"
#include "util/args.h"

/* ---- checker ---- */

struct checker {
	const uint8_t *start, *p, *end;
	otter_error *err;
};

static int bad(struct checker *c, const char *what)
{
	return otter_error_set(c->err, OTTER_E_INVALID, "invalid JSON at byte %zu: %s",
			       (size_t)(c->p - c->start), what);
}

static bool is_ws(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static void skip_ws(const uint8_t **p, const uint8_t *end)
{
	while (*p < end && is_ws(**p))
		(*p)++;
}

static int hexval(uint8_t ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Four hex digits at p (end checked by the caller); -1 if not. */
static int32_t hex4(const uint8_t *p)
{
	int32_t v = 0;

	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* Length of the valid UTF-8 sequence at p (before end), 0 if invalid (jansson's rules:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const uint8_t *p, const uint8_t *end)
{
	uint8_t u = p[0];
	size_t n;
	uint32_t v;

	if (u < 0x80)
		return 1;
	if (u >= 0xC2 && u <= 0xDF) {
		n = 2;
		v = u & 0x1Fu;
	} else if (u >= 0xE0 && u <= 0xEF) {
		n = 3;
		v = u & 0x0Fu;
	} else if (u >= 0xF0 && u <= 0xF4) {
		n = 4;
		v = u & 0x07u;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0u) != 0x80u)
			return 0;
		v = (v << 6) | (p[i] & 0x3Fu);
	}
	if (v > 0x10FFFFu || (v >= 0xD800u && v <= 0xDFFFu) || (n == 3 && v < 0x800u) ||
	    (n == 4 && v < 0x10000u))
		return 0;
	return n;
}

/* A string; c->p at the opening quote, left after the closing one. */
static int check_string(struct checker *c)
{
	c->p++;
	for (;;) {
		uint8_t ch;

		if (c->p >= c->end)
			return bad(c, "unterminated string");
		ch = *c->p;
		if (ch == '"') {
			c->p++;
			return 0;
		}
		if (ch < 0x20)
			return bad(c, "control character in a string");
		if (ch == '\\') {
			if (c->end - c->p < 2)
				return bad(c, "unterminated string");
			ch = c->p[1];
			if (ch == 'u') {
				int32_t v;

				if (c->end - c->p < 6 || (v = hex4(c->p + 2)) < 0)
					return bad(c, "invalid \\u escape");
				if (v == 0)
					return bad(c, "\\u0000 in a string");
				if (v >= 0xDC00 && v <= 0xDFFF)
					return bad(c, "lone low surrogate escape");
				if (v >= 0xD800 && v <= 0xDBFF) {
					int32_t lo;

					if (c->end - c->p < 12 || c->p[6] != '\\' || c->p[7] != 'u' ||
					    (lo = hex4(c->p + 8)) < 0xDC00 || lo > 0xDFFF)
						return bad(c, "high surrogate escape without a low one");
					c->p += 6;
				}
				c->p += 6;
				continue;
			}
			if (!strchr("\"\\/bfnrt", ch) || ch == '\0')
				return bad(c, "invalid escape");
			c->p += 2;
			continue;
		}
		if (ch < 0x80) {
			c->p++;
			continue;
		}
		{
			size_t n = utf8_len(c->p, c->end);

			if (n == 0)
				return bad(c, "invalid UTF-8");
			c->p += n;
		}
	}
}

static bool is_digit(uint8_t ch)
{
	return ch >= '0' && ch <= '9';
}

/*
 * jansson reads one character past a number or a literal and puts it back; a NUL byte put
 * back is lost (its one-character buffer reads as empty), so one NUL right after such a
 * token is skipped. The same documents must pass here: skip it too (it changes no value).
 */
static void jansson_nul(struct checker *c)
{
	if (c->p < c->end && *c->p == '\0')
		c->p++;
}

/* A number: an integer must fit int64 (jansson's json_int_t), a real is left for the
 * canonical form to refuse (jansson reads it, otter_json_canonical refuses it). */
static int check_number(struct checker *c)
{
	const uint8_t *s = c->p;
	bool neg = false, integer = true;

	if (*c->p == '-') {
		neg = true;
		c->p++;
	}
	if (c->p >= c->end || !is_digit(*c->p))
		return bad(c, "invalid number");
	if (*c->p == '0') {
		c->p++;
		if (c->p < c->end && is_digit(*c->p))
			return bad(c, "number with a leading zero");
	} else {
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
	}
	if (c->p < c->end && *c->p == '.') {
		integer = false;
		c->p++;
		if (c->p >= c->end || !is_digit(*c->p))
			return bad(c, "invalid number");
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		integer = false;
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (c->p >= c->end || !is_digit(*c->p))
			return bad(c, "invalid number");
		while (c->p < c->end && is_digit(*c->p))
			c->p++;
	}
	if (integer) {
		/* int64: at most 19 digits, and then not above 9223372036854775807 (808 when
		 * negative). */
		static const char max_digits[] = "9223372036854775807";
		size_t nd = (size_t)(c->p - s) - (neg ? 1 : 0);
		const uint8_t *d = s + (neg ? 1 : 0);

		if (nd > 19)
			return bad(c, "integer out of range");
		if (nd == 19) {
			int cmp = memcmp(d, max_digits, 18);

			if (cmp > 0 || (cmp == 0 && d[18] > (uint8_t)(neg ? '8' : '7')))
				return bad(c, "integer out of range");
		}
	}
	jansson_nul(c);
	return 0;
}

static int check_value(struct checker *c, unsigned depth);

static int check_literal(struct checker *c, const char *lit, size_t n)
{
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return bad(c, "invalid token");
	c->p += n;
	/* jansson reads a literal as the longest run of letters. */
	if (c->p < c->end && ((*c->p >= 'a' && *c->p <= 'z') || (*c->p >= 'A' && *c->p <= 'Z')))
		return bad(c, "invalid token");
	jansson_nul(c);
	return 0;
}

/* An object or array at depth (its members are at depth + 1). */
static int check_container(struct checker *c, unsigned depth)
{
	bool object = *c->p == '{';
	uint8_t close = object ? '}' : ']';
	int r;

	c->p++;
	skip_ws(&c->p, c->end);
	if (c->p < c->end && *c->p == close) {
		c->p++;
		return 0;
	}
	for (;;) {
		if (object) {
			if (c->p >= c->end || *c->p != '"')
				return bad(c, "expected a string key");
			r = check_string(c);
			if (r < 0)
				return r;
			skip_ws(&c->p, c->end);
			if (c->p >= c->end || *c->p != ':')
				return bad(c, "expected ':'");
			c->p++;
			skip_ws(&c->p, c->end);
		}
		r = check_value(c, depth + 1);
		if (r < 0)
			return r;
		skip_ws(&c->p, c->end);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			skip_ws(&c->p, c->end);
			continue;
		}
		if (c->p < c->end && *c->p == close) {
			c->p++;
			return 0;
		}
		return bad(c, object ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int check_value(struct checker *c, unsigned depth)
{
	if (depth > OTTER_JSON_MAX_DEPTH)
		return otter_error_set(c->err, OTTER_E_INVALID, "JSON nesting deeper than %u levels",
				       OTTER_JSON_MAX_DEPTH);
	if (c->p >= c->end)
		return bad(c, "unexpected end of input");
	switch (*c->p) {
	case '{':
	case '[':
		return check_container(c, depth);
	case '"':
		return check_string(c);
	case 't':
		return check_literal(c, "true", 4);
	case 'f':
		return check_literal(c, "false", 5);
	case 'n':
		return check_literal(c, "null", 4);
	default:
		if (*c->p == '-' || is_digit(*c->p))
			return check_number(c);
		return bad(c, "invalid token");
	}
}

int jc_check(const uint8_t *buf, size_t len, size_t max, jc_span *root, otter_error *err)
{
	struct checker c = {buf, buf, buf + len, err};
	const uint8_t *start;
	int r;

	ARG_CHECK(err, "json", buf || len == 0);
	ARG_NONNULL(err, "json", root);
	if (len > max)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "JSON document of %zu bytes exceeds the limit of %zu", len, max);
	if (!buf)
		return otter_error_set(err, OTTER_E_INVALID, "invalid JSON: the document is empty");
	skip_ws(&c.p, c.end);
	start = c.p;
	r = check_value(&c, 1);
	if (r < 0)
		return r;
	if (*start != '{')
		return otter_error_set(err, OTTER_E_INVALID, "JSON top level is not an object");
	root->p = start;
	root->len = (size_t)(c.p - start);
	skip_ws(&c.p, c.end);
	if (c.p != c.end)
		return bad(&c, "data after the top-level value");
	return 0;
}

/* ---- on checked documents ---- */

/* After the string whose opening quote is at p: the first quote after it that an even number
 * of backslashes precedes (the document is checked, so there is one). */
static const uint8_t *skip_string(const uint8_t *p)
{
	const uint8_t *start = p + 1;

	for (;;) {
		const uint8_t *q = rawmemchr(start, '"');
		size_t bs = 0;

		while (q - bs > p + 1 && q[-1 - (ptrdiff_t)bs] == '\\')
			bs++;
		if (bs % 2 == 0)
			return q + 1;
		start = q + 1;
	}
}

/* After the value starting at p (p < end, p on the value's first byte). */
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end)
{
	unsigned depth = 0;

	if (*p == '"')
		return skip_string(p);
	if (*p != '{' && *p != '[') {
		while (p < end && !is_ws(*p) && *p != ',' && *p != '}' && *p != ']' && *p != '\0')
			p++;
		return p;
	}
	for (;; p++) {
		if (*p == '"') {
			p = skip_string(p) - 1;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (--depth == 0)
				return p + 1;
		}
	}
}

jc_type jc_typeof(jc_span v)
{
	if (v.len == 0)
		return JC_NONE;
	switch (v.p[0]) {
	case '{':
		return JC_OBJECT;
	case '[':
		return JC_ARRAY;
	case '"':
		return JC_STRING;
	case 't':
		return JC_TRUE;
	case 'f':
		return JC_FALSE;
	case 'n':
		return JC_NULL;
	default:
		return JC_NUMBER;
	}
}

/* Elements of a container: *it is the offset of the next member's start (0: before '{'). */
static bool container_next(jc_span con, size_t *it, bool object, jc_span *key, jc_span *val)
{
	const uint8_t *end = con.p + con.len, *p = con.p + (*it ? *it : 1);

	skip_ws(&p, end);
	if (*p == ',') {
		p++;
		skip_ws(&p, end);
	}
	if (p >= end - 1) /* at the closing bracket */
		return false;
	if (object) {
		const uint8_t *k = p;

		p = skip_string(p);
		if (key) {
			key->p = k + 1;
			key->len = (size_t)(p - k) - 2;
		}
		skip_ws(&p, end);
		p++; /* ':' */
		skip_ws(&p, end);
	}
	{
		const uint8_t *v = p;

		p = skip_value(p, end - 1);
		if (val) {
			val->p = v;
			val->len = (size_t)(p - v);
		}
		if (*p == '\0') /* see jansson_nul */
			p++;
	}
	*it = (size_t)(p - con.p);
	return true;
}

bool jc_object_next(jc_span obj, size_t *it, jc_span *key, jc_span *val)
{
	if (jc_typeof(obj) != JC_OBJECT)
		return false;
	return container_next(obj, it, true, key, val);
}

size_t jc_object_size(jc_span obj)
{
	size_t it = 0, n = 0;

	while (jc_object_next(obj, &it, NULL, NULL))
		n++;
	return n;
}

/*
 * Decodes the raw content of a checked string byte by byte: comparisons and lengths need no
 * buffer, whatever the string's length.
 */
struct dec {
	const uint8_t *s, *end;
	uint8_t pend[4];
	unsigned npend, ipend;
};

static void dec_init(struct dec *d, const uint8_t *s, size_t len)
{
	d->s = s;
	d->end = s + len;
	d->npend = d->ipend = 0;
}

/* The next decoded byte, or -1 at the end. */
static int dec_next(struct dec *d)
{
	uint32_t v;

	if (d->ipend < d->npend)
		return d->pend[d->ipend++];
	if (d->s >= d->end)
		return -1;
	if (*d->s != '\\')
		return *d->s++;
	d->s += 2;
	switch (d->s[-1]) {
	case 'b': return '\b';
	case 'f': return '\f';
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case 'u': break;
	default: return d->s[-1];
	}
	v = (uint32_t)hex4(d->s);
	d->s += 4;
	if (v >= 0xD800 && v <= 0xDBFF) {
		v = 0x10000u + ((v - 0xD800u) << 10) + ((uint32_t)hex4(d->s + 2) - 0xDC00u);
		d->s += 6;
	}
	d->ipend = d->npend = 1; /* pend[0] is the byte returned now */
	if (v < 0x80)
		return (int)v;
	if (v < 0x800) {
		d->pend[1] = (uint8_t)(0x80 | (v & 0x3F));
		d->npend = 2;
		return 0xC0 | (int)(v >> 6);
	}
	if (v < 0x10000) {
		d->pend[1] = (uint8_t)(0x80 | ((v >> 6) & 0x3F));
		d->pend[2] = (uint8_t)(0x80 | (v & 0x3F));
		d->npend = 3;
		return 0xE0 | (int)(v >> 12);
	}
	d->pend[1] = (uint8_t)(0x80 | ((v >> 12) & 0x3F));
	d->pend[2] = (uint8_t)(0x80 | ((v >> 6) & 0x3F));
	d->pend[3] = (uint8_t)(0x80 | (v & 0x3F));
	d->npend = 4;
	return 0xF0 | (int)(v >> 18);
}

static bool has_escape(const uint8_t *s, size_t len)
{
	return memchr(s, '\\', len) != NULL;
}

/* Two raw (checked) string contents compared decoded, as strcmp compares: -1, 0, 1. */
static int raw_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, bool b_plain)
{
	struct dec da, db;

	if (b_plain && !has_escape(a, alen)) {
		int r = memcmp(a, b, alen < blen ? alen : blen);

		if (r)
			return r < 0 ? -1 : 1;
		return (alen > blen) - (alen < blen);
	}
	dec_init(&da, a, alen);
	dec_init(&db, b, blen);
	for (;;) {
		int x = dec_next(&da);
		int y = b_plain ? (db.s < db.end ? *db.s++ : -1) : dec_next(&db);

		if (x != y)
			return x < y ? -1 : 1;
		if (x < 0)
			return 0;
	}
}

bool jc_string_eq(jc_span str, const char *s, size_t len)
{
	if (jc_typeof(str) != JC_STRING)
		return false;
	return raw_cmp(str.p + 1, str.len - 2, (const uint8_t *)s, len, true) == 0;
}

jc_span jc_object_get(jc_span obj, const char *key)
{
	jc_span k, v, none = {NULL, 0};
	size_t it = 0, klen = strlen(key);

	while (jc_object_next(obj, &it, &k, &v))
		if (raw_cmp(k.p, k.len, (const uint8_t *)key, klen, true) == 0)
			return v;
	return none;
}

size_t jc_string_length(jc_span str)
{
	struct dec d;
	size_t n = 0;

	if (jc_typeof(str) != JC_STRING)
		return 0;
	if (!has_escape(str.p + 1, str.len - 2))
		return str.len - 2;
	dec_init(&d, str.p + 1, str.len - 2);
	while (dec_next(&d) >= 0)
		n++;
	return n;
}

bool jc_string_copy(jc_span str, char *out, size_t cap)
{
	struct dec d;
	size_t n = 0;
	int ch;

	if (jc_typeof(str) != JC_STRING || cap == 0)
		return false;
	dec_init(&d, str.p + 1, str.len - 2);
	while ((ch = dec_next(&d)) >= 0) {
		if (n + 1 >= cap)
			return false;
		out[n++] = (char)ch;
	}
	out[n] = '\0';
	return true;
}

bool jc_integer(jc_span num, int64_t *out)
{
	bool neg;
	uint64_t v = 0;

	if (jc_typeof(num) != JC_NUMBER)
		return false;
	neg = num.p[0] == '-';
	for (size_t i = neg ? 1 : 0; i < num.len; i++) {
		if (!is_digit(num.p[i]))
			return false; /* a real */
		v = v * 10 + (uint64_t)(num.p[i] - '0'); /* in range: checked by jc_check */
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* ---- canonical form ---- */

struct member {
	const uint8_t *k; /* raw key content */
	size_t klen;
	const uint8_t *v;
	size_t vlen;
};

struct canon {
	otter_buf *b;
	struct member *stack; /* the members of the objects being written, innermost last */
	size_t n, cap;
};

static int append_string_raw(otter_buf *b, const uint8_t *s, size_t len, otter_error *err)
{
	int r = buf_append(b, "\"", 1, err);

	if (r == 0 && !has_escape(s, len)) {
		r = json_canonical_escape(b, s, len, err);
	} else if (r == 0) {
		uint8_t chunk[256];
		struct dec d;
		size_t n = 0;
		int ch;

		dec_init(&d, s, len);
		while (r == 0 && (ch = dec_next(&d)) >= 0) {
			chunk[n++] = (uint8_t)ch;
			if (n == sizeof(chunk)) {
				r = json_canonical_escape(b, chunk, n, err);
				n = 0;
			}
		}
		if (r == 0)
			r = json_canonical_escape(b, chunk, n, err);
	}
	if (r == 0)
		r = buf_append(b, "\"", 1, err);
	return r;
}

static int cmp_member_keys(const struct member *a, const struct member *b)
{
	return raw_cmp(a->k, a->klen, b->k, b->klen, !has_escape(b->k, b->klen));
}

static int cmp_members(const void *a, const void *b)
{
	return cmp_member_keys(a, b);
}

static int canon_value(struct canon *c, jc_span v, otter_error *err);

static int canon_object(struct canon *c, jc_span obj, otter_error *err)
{
	size_t base = c->n, it = 0, count;
	jc_span k, v;
	int r;

	while (jc_object_next(obj, &it, &k, &v)) {
		if (c->n == c->cap) {
			size_t cap = c->cap ? 2 * c->cap : 64;
			struct member *s = otter_reallocarray(c->stack, cap, sizeof(*s));

			if (!s)
				return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			c->stack = s;
			c->cap = cap;
		}
		c->stack[c->n++] = (struct member){k.p, k.len, v.p, v.len};
	}
	count = c->n - base;
	if (count > 1)
		qsort(c->stack + base, count, sizeof(*c->stack), cmp_members);
	for (size_t i = 1; i < count; i++)
		if (cmp_member_keys(&c->stack[base + i - 1], &c->stack[base + i]) == 0) {
			c->n = base;
			return otter_error_set(err, OTTER_E_INVALID,
					       "invalid JSON: duplicate object key");
		}
	r = buf_append(c->b, "{", 1, err);
	for (size_t i = 0; r == 0 && i < count; i++) {
		/* c->stack may move while a member is written: index, never hold pointers. */
		struct member m = c->stack[base + i];

		if (i > 0)
			r = buf_append(c->b, ",", 1, err);
		if (r == 0)
			r = append_string_raw(c->b, m.k, m.klen, err);
		if (r == 0)
			r = buf_append(c->b, ":", 1, err);
		if (r == 0)
			r = canon_value(c, (jc_span){m.v, m.vlen}, err);
	}
	if (r == 0)
		r = buf_append(c->b, "}", 1, err);
	c->n = base;
	return r;
}

static int canon_value(struct canon *c, jc_span v, otter_error *err)
{
	switch (jc_typeof(v)) {
	case JC_OBJECT:
		return canon_object(c, v, err);
	case JC_ARRAY: {
		size_t it = 0;
		jc_span e;
		bool first = true;
		int r = buf_append(c->b, "[", 1, err);

		while (r == 0 && container_next(v, &it, false, NULL, &e)) {
			if (!first)
				r = buf_append(c->b, ",", 1, err);
			first = false;
			if (r == 0)
				r = canon_value(c, e, err);
		}
		return r == 0 ? buf_append(c->b, "]", 1, err) : r;
	}
	case JC_STRING:
		return append_string_raw(c->b, v.p + 1, v.len - 2, err);
	case JC_NUMBER: {
		int64_t i;

		if (!jc_integer(v, &i)) {
			char s[40];
			size_t n = v.len < sizeof(s) - 1 ? v.len : sizeof(s) - 1;

			memcpy(s, v.p, n);
			s[n] = '\0';
			return otter_error_set(err, OTTER_E_FORMAT,
					       "floating-point number %s cannot be canonicalized", s);
		}
		/* A checked integer is written as it is (no leading zeros, no '+'), but "-0" is 0. */
		if (i == 0)
			return buf_append(c->b, "0", 1, err);
		return buf_append(c->b, v.p, v.len, err);
	}
	case JC_TRUE:
	case JC_FALSE:
	case JC_NULL:
		return buf_append(c->b, v.p, v.len, err);
	case JC_NONE:
		break;
	}
	return otter_error_set(err, OTTER_E_INVALID, "json: no value to canonicalize");
}

int jc_canonical_append(jc_span v, otter_buf *b, otter_error *err)
{
	struct canon c = {b, NULL, 0, 0};
	int r = canon_value(&c, v, err);

	free(c.stack);
	return r;
}

int jc_canonical(jc_span v, uint8_t **out, size_t *len, otter_error *err)
{
	otter_buf b;
	int r;

	ARG_NONNULL(err, "json", out);
	buf_init(&b, SIZE_MAX / 2);
	/* The canonical form is at most as long as the value: reserve it once. */
	r = buf_reserve(&b, v.len + 1, err);
	if (r == 0)
		r = jc_canonical_append(v, &b, err);
	if (r < 0) {
		buf_clear(&b);
		return r;
	}
	*out = buf_steal(&b, len);
	if (!*out)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	return 0;
}

int jc_to_json(jc_span v, json_t **out, otter_error *err)
{
	json_error_t jerr;

	ARG_NONNULL(err, "json", out);
	*out = json_loadb((const char *)v.p, v.len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
			  &jerr);
	if (!*out)
		return otter_error_set(err, OTTER_E_INVALID, "invalid JSON at line %d column %d: %s",
				       jerr.line, jerr.column, jerr.text);
	return 0;
}
