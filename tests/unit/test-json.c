/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-common.h"

#include <otter/json.h>

#include "lib/json/jcompact.h"
#include "lib/limits.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/cleanup.h"

static int parse(const char *s, json_t **out, otter_error *err)
{
	return otter_json_parse(out, (const uint8_t *)s, strlen(s), 1 << 20, err);
}

static char *canon_of(const char *s)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *v = NULL;
	uint8_t *out = NULL;
	size_t len;

	assert_ok(parse(s, &v, &err));
	assert_ok(otter_json_canonical(v, &out, &len, &err));
	assert_int_equal(strlen((char *)out), len);
	json_decref(v);
	return (char *)out;
}

/* The worked example of tuf.md §5, byte for byte. */
static void test_json_canonical_worked_example(void **state)
{
	static const char input[] =
		"{\"b\":1, \"a\":\"x\\\"y\\\\z\\n\\u00e9\\u0001\", \"\\u00e9\":true, "
		"\"Z\":[null,false,-3,{}], \"aa\":[]}";
	static const uint8_t expected[] = {
		0x7b, 0x22, 0x5a, 0x22, 0x3a, 0x5b, 0x6e, 0x75, 0x6c, 0x6c, 0x2c, 0x66, 0x61, 0x6c,
		0x73, 0x65, 0x2c, 0x2d, 0x33, 0x2c, 0x7b, 0x7d, 0x5d, 0x2c, 0x22, 0x61, 0x22, 0x3a,
		0x22, 0x78, 0x5c, 0x22, 0x79, 0x5c, 0x5c, 0x7a, 0x0a, 0xc3, 0xa9, 0x01, 0x22, 0x2c,
		0x22, 0x61, 0x61, 0x22, 0x3a, 0x5b, 0x5d, 0x2c, 0x22, 0x62, 0x22, 0x3a, 0x31, 0x2c,
		0x22, 0xc3, 0xa9, 0x22, 0x3a, 0x74, 0x72, 0x75, 0x65, 0x7d};
	otter_error err = OTTER_ERROR_INIT;
	json_t *v = NULL;
	uint8_t *out = NULL;
	size_t len;

	assert_int_equal(sizeof(expected), 66);
	assert_ok(parse(input, &v, &err));
	assert_ok(otter_json_canonical(v, &out, &len, &err));
	assert_int_equal(len, sizeof(expected));
	assert_memory_equal(out, expected, sizeof(expected));
	free(out);
	json_decref(v);
}

static void test_json_canonical_rules(void **state)
{
	char *c;

	/* No whitespace; sorted by UTF-8 bytes (code points), not UTF-16 units. */
	c = canon_of("{ \"b\" : [ 1 , 2 ] ,\n \"a\" : { \"y\":1,\"x\":2 } }");
	assert_string_equal(c, "{\"a\":{\"x\":2,\"y\":1},\"b\":[1,2]}");
	free(c);
	c = canon_of("{\"\\ud83d\\ude00\":1, \"\\uffff\":2}");
	assert_string_equal(c, "{\"\xef\xbf\xbf\":2,\"\xf0\x9f\x98\x80\":1}");
	free(c);
	/* '/' and control characters are not escaped; integers are plain. */
	c = canon_of("{\"a\":\"\\/\\t\", \"n\":-0, \"m\":9223372036854775807}");
	assert_string_equal(c, "{\"a\":\"/\t\",\"m\":9223372036854775807,\"n\":0}");
	free(c);
}

static void test_json_canonical_rejects_floats(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *v = NULL;
	uint8_t *out = NULL;
	size_t len;

	/* Floats parse (they may sit outside "signed") but cannot be canonicalised. */
	assert_ok(parse("{\"a\":[1.5]}", &v, &err));
	assert_err(otter_json_canonical(v, &out, &len, &err), OTTER_E_FORMAT, &err,
		   "floating-point");
	json_decref(v);
	otter_error_clear(&err);
	assert_ok(parse("{\"a\":1e3}", &v, &err));
	assert_err(otter_json_canonical(v, &out, &len, &err), OTTER_E_FORMAT, &err, NULL);
	json_decref(v);
}

static void test_json_strict_intake(void **state)
{
	static const char *const bad[] = {
		"{\"a\":1,\"a\":2}",          /* duplicate member */
		"{\"a\":{\"b\":1,\"b\":1}}",  /* nested duplicate */
		"{\"a\":\"\\u0000\"}",        /* NUL character */
		"{\"a\":\"\xff\"}",           /* invalid UTF-8 */
		"{\"a\":\"\xc0\xaf\"}",       /* overlong UTF-8 */
		"{\"a\":\"\\ud800\"}",        /* lone surrogate */
		"{\"a\":\"\\udc00x\"}",       /* lone low surrogate */
		"{\"a\":9223372036854775808}", /* beyond int64 */
		"{\"a\":-9223372036854775809}",
		"{\"a\":NaN}",
		"{\"a\":Infinity}",
		"{\"a\":1} x", /* trailing garbage */
		"[1,2]",       /* not an object */
		"\"s\"",
		"",
		"{\"a\":01}",
		"{'a':1}",
	};
	otter_error err = OTTER_ERROR_INIT;
	json_t *v = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = NULL;
		otter_error_clear(&err);
		int r = otter_json_parse(&v, (const uint8_t *)bad[i], strlen(bad[i]), 1000, &err);
		if (r != OTTER_E_INVALID)
			print_error("case %zu accepted: %s\n", i, bad[i]);
		assert_int_equal(r, OTTER_E_INVALID);
		assert_null(v);
	}
	/* int64 bounds are fine. */
	assert_ok(parse("{\"a\":-9223372036854775808}", &v, &err));
	json_decref(v);
}

static void test_json_size_cap(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	const char *doc = "{\"a\":1}"; /* 7 bytes */
	json_t *v = NULL;

	assert_ok(otter_json_parse(&v, (const uint8_t *)doc, 7, 8, &err)); /* limit + 1 */
	json_decref(v);
	assert_ok(otter_json_parse(&v, (const uint8_t *)doc, 7, 7, &err)); /* limit */
	json_decref(v);
	v = NULL;
	assert_err(otter_json_parse(&v, (const uint8_t *)doc, 7, 6, &err), OTTER_E_TOO_LARGE,
		   &err, "limit of 6"); /* limit - 1: refused before parsing */
	assert_null(v);
}

static char *nested(unsigned depth)
{
	char *s = malloc(2 * depth + 16);
	size_t n = 0;

	/* depth containers: one object, then arrays inside */
	s[n++] = '{';
	memcpy(s + n, "\"a\":", 4);
	n += 4;
	for (unsigned i = 1; i < depth; i++)
		s[n++] = '[';
	for (unsigned i = 1; i < depth; i++)
		s[n++] = ']';
	if (depth == 1) {
		memcpy(s + n, "1", 1);
		n++;
	}
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

static void test_json_depth_limit(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *v = NULL;
	char *s;

	s = nested(OTTER_JSON_MAX_DEPTH - 1);
	assert_ok(parse(s, &v, &err));
	json_decref(v);
	free(s);
	s = nested(OTTER_JSON_MAX_DEPTH);
	assert_ok(parse(s, &v, &err));
	json_decref(v);
	free(s);
	s = nested(OTTER_JSON_MAX_DEPTH + 1);
	assert_err(parse(s, &v, &err), OTTER_E_INVALID, &err, "nesting");
	free(s);
	/* Far deeper input is refused before the parser recurses. */
	s = nested(100000);
	otter_error_clear(&err);
	assert_err(parse(s, &v, &err), OTTER_E_INVALID, &err, "nesting");
	free(s);
	/* Brackets inside strings do not count. */
	assert_ok(parse("{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}",
			&v, &err));
	json_decref(v);
}

static void test_json_pretty(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *v = NULL, *back = NULL;
	uint8_t *out = NULL;
	size_t len;

	assert_ok(parse("{\"b\":1,\"a\":[true,null]}", &v, &err));
	assert_ok(otter_json_pretty(v, &out, &len, &err));
	assert_int_equal(out[len - 1], '\n');
	assert_true(strstr((char *)out, "\"a\"") < strstr((char *)out, "\"b\""));
	assert_ok(otter_json_parse(&back, out, len, len, &err));
	assert_true(json_equal(v, back));
	free(out);
	json_decref(v);
	json_decref(back);
}

/* ---- the compact reader (jcompact.h) against jansson + otter_json_canonical ---- */

static uint32_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return (rng_state >> 8) % n;
}

static void gen_ws(otter_buf *b)
{
	static const char *const ws[] = {"", "", "", " ", "\n", "\t", "\r\n  "};

	assert_ok(buf_append_str(b, ws[rnd(7)], NULL));
}

/* A string with plain bytes, UTF-8, and every kind of escape (keys collide often). */
static void gen_string(otter_buf *b, bool key)
{
	static const char *const parts[] = {
		"a", "b", "Z", "/", "\\\"", "\\\\", "\\/", "\\n", "\\t", "\\b", "\\f", "\\r",
		"\\u0041", "\\u00e9", "\xc3\xa9", "\\u20ac", "\xe2\x82\xac", "\\ud83d\\ude00",
		"\xf0\x9f\x98\x80", "\\u0001", "\\u007f", "\x7f", "\\uffff", "\xef\xbf\xbf", " ",
	};
	size_t n = key ? 1 + rnd(4) : rnd(6);

	assert_ok(buf_append_str(b, "\"", NULL));
	for (size_t i = 0; i < n; i++)
		assert_ok(buf_append_str(b, parts[rnd(ELEMENTSOF(parts))], NULL));
	assert_ok(buf_append_str(b, "\"", NULL));
}

static void gen_value(otter_buf *b, unsigned depth)
{
	static const char *const scalars[] = {
		"0", "-0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808",
		"true", "false", "null", "123456789012",
	};
	uint32_t kind = depth >= 5 ? 2 + rnd(2) : rnd(4);

	if (kind == 0 || kind == 1) {
		bool obj = kind == 0;
		size_t n = rnd(5);

		assert_ok(buf_append_str(b, obj ? "{" : "[", NULL));
		for (size_t i = 0; i < n; i++) {
			if (i)
				assert_ok(buf_append_str(b, ",", NULL));
			gen_ws(b);
			if (obj) {
				gen_string(b, true);
				gen_ws(b);
				assert_ok(buf_append_str(b, ":", NULL));
				gen_ws(b);
			}
			gen_value(b, depth + 1);
			gen_ws(b);
		}
		assert_ok(buf_append_str(b, obj ? "}" : "]", NULL));
	} else if (kind == 2) {
		gen_string(b, false);
	} else {
		assert_ok(buf_append_str(b, scalars[rnd(ELEMENTSOF(scalars))], NULL));
	}
}

/* Both readers accept exactly the same documents, with the same canonical bytes. */
static void assert_same_canonical(const uint8_t *doc, size_t len, size_t *accepted)
{
	json_t *v = NULL;
	uint8_t *ca = NULL, *cb = NULL;
	size_t la = 0, lb = 0;
	jc_span root;
	bool a_ok, b_ok;

	a_ok = otter_json_parse(&v, doc, len, 1 << 20, NULL) == 0 &&
	       otter_json_canonical(v, &ca, &la, NULL) == 0;
	b_ok = jc_check(doc, len, 1 << 20, &root, NULL) == 0 &&
	       jc_canonical(root, &cb, &lb, NULL) == 0;
	if (a_ok != b_ok)
		fail_msg("jansson %s, jcompact %s: %.*s", a_ok ? "accepts" : "rejects",
			 b_ok ? "accepts" : "rejects", (int)len, (const char *)doc);
	if (a_ok) {
		assert_int_equal(la, lb);
		assert_memory_equal(ca, cb, la);
		(*accepted)++;
	}
	free(ca);
	free(cb);
	json_decref(v);
}

static void test_json_compact_differential(void **state)
{
	size_t accepted = 0, mutated_accepted = 0;

	(void)state;
	rng_state = 20261207;
	for (int i = 0; i < 3000; i++) {
		otter_buf b;
		uint8_t *m;

		buf_init(&b, 1 << 20);
		gen_ws(&b);
		assert_ok(buf_append_str(&b, "{", NULL));
		for (size_t k = 0, n = rnd(6); k < n; k++) {
			if (k)
				assert_ok(buf_append_str(&b, ",", NULL));
			gen_string(&b, true);
			assert_ok(buf_append_str(&b, ":", NULL));
			gen_value(&b, 1);
		}
		assert_ok(buf_append_str(&b, "}", NULL));
		gen_ws(&b);
		assert_same_canonical(b.data, b.len, &accepted);
		/* The same document with one byte changed, inserted or removed. */
		m = otter_memdup(b.data, b.len + 1);
		assert_non_null(m);
		{
			size_t pos = rnd((uint32_t)b.len), len = b.len;
			static const uint8_t bytes[] = {'"', '\\', '{', '}', '[', ']', ',', ':',
							'0', '-', 'e', '.', 'u', 0, 0x80, 0xc3, 0xff,
							'a', ' ', 't'};

			switch (rnd(3)) {
			case 0:
				m[pos] = bytes[rnd(sizeof(bytes))];
				break;
			case 1:
				memmove(m + pos + 1, m + pos, len - pos);
				m[pos] = bytes[rnd(sizeof(bytes))];
				len++;
				break;
			default:
				memmove(m + pos, m + pos + 1, len - pos - 1);
				len--;
			}
			assert_same_canonical(m, len, &mutated_accepted);
		}
		free(m);
		buf_clear(&b);
	}
	/* Most generated documents are valid (keys repeat now and then: duplicates). */
	assert_true(accepted > 2000);
	assert_true(mutated_accepted > 100);
}

/* Reading values in place: lookups by decoded key, strings, integers, sizes. */
static void test_json_compact_access(void **state)
{
	static const char doc[] = " {\"a\\u00e9\": {\"n\": -42, \"r\": 1.5, \"s\": \"x\\ny\"},"
				  " \"l\": [1, 2], \"big\": 9223372036854775807} ";
	otter_error err = OTTER_ERROR_INIT;
	jc_span root, inner, v;
	int64_t i;
	char s[16];

	(void)state;
	assert_ok(jc_check((const uint8_t *)doc, strlen(doc), 1 << 20, &root, &err));
	assert_int_equal(root.p[0], '{');
	assert_int_equal(root.p[root.len - 1], '}');
	assert_int_equal(jc_object_size(root), 3);
	inner = jc_object_get(root, "a\xc3\xa9");
	assert_int_equal(jc_typeof(inner), JC_OBJECT);
	assert_true(jc_integer(jc_object_get(inner, "n"), &i));
	assert_int_equal(i, -42);
	assert_false(jc_integer(jc_object_get(inner, "r"), &i)); /* a real */
	v = jc_object_get(inner, "s");
	assert_int_equal(jc_string_length(v), 3);
	assert_true(jc_string_eq(v, "x\ny", 3));
	assert_true(jc_string_copy(v, s, sizeof(s)));
	assert_string_equal(s, "x\ny");
	assert_false(jc_string_copy(v, s, 3)); /* no room for the NUL */
	assert_true(jc_integer(jc_object_get(root, "big"), &i));
	assert_int_equal(i, INT64_MAX);
	assert_int_equal(jc_typeof(jc_object_get(root, "missing")), JC_NONE);
	assert_int_equal(jc_typeof(jc_object_get(root, "l")), JC_ARRAY);
	/* What the reader refuses, it names. */
	assert_err(jc_check((const uint8_t *)"{\"a\":01}", 8, 100, &root, &err), OTTER_E_INVALID,
		   &err, "leading zero");
	otter_error_clear(&err);
	assert_err(jc_check((const uint8_t *)"{\"a\":\"\\ud800\"}", 14, 100, &root, &err),
		   OTTER_E_INVALID, &err, "surrogate");
	otter_error_clear(&err);
	assert_err(jc_check((const uint8_t *)"[]", 2, 100, &root, &err), OTTER_E_INVALID, &err,
		   "not an object");
	otter_error_clear(&err);
	assert_err(jc_check((const uint8_t *)"{}", 2, 1, &root, &err), OTTER_E_TOO_LARGE, &err,
		   "exceeds");
	otter_error_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_canonical_worked_example),
		cmocka_unit_test(test_json_canonical_rules),
		cmocka_unit_test(test_json_canonical_rejects_floats),
		cmocka_unit_test(test_json_strict_intake),
		cmocka_unit_test(test_json_size_cap),
		cmocka_unit_test(test_json_depth_limit),
		cmocka_unit_test(test_json_pretty),
		cmocka_unit_test(test_json_compact_differential),
		cmocka_unit_test(test_json_compact_access),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
