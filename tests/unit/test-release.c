/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-common.h"

#include <otter/release.h>

static int parse(const char *s, otter_release **out, otter_error *err)
{
	return otter_release_parse(out, (const uint8_t *)s, strlen(s), "release.json", err);
}

static void test_release_version_compare(void **state)
{
	assert_true(otter_version_valid("1"));
	assert_true(otter_version_valid("2024.11.3"));
	assert_true(otter_version_valid("0.0.1"));
	assert_false(otter_version_valid(""));
	assert_false(otter_version_valid("1."));
	assert_false(otter_version_valid(".1"));
	assert_false(otter_version_valid("1..2"));
	assert_false(otter_version_valid("1.2-rc1"));
	assert_false(otter_version_valid("v1"));
	assert_false(otter_version_valid("1234567890123456789")); /* 19 digits */
	assert_true(otter_version_valid("123456789012345678"));
	assert_true(otter_version_compare("1.2", "1.10") < 0);
	assert_true(otter_version_compare("1.10", "1.9") > 0);
	assert_int_equal(otter_version_compare("1.2", "1.2.0"), 0);
	assert_true(otter_version_compare("2", "1.99.99") > 0);
	assert_true(otter_version_compare("1.1", "1.1.1") < 0);
	assert_true(otter_version_compare("junk", "0.1") < 0);
	assert_true(otter_version_compare("0.1", "junk") > 0);
	assert_int_equal(otter_version_compare("junk", "other"), 0);
}

static void test_release_parse_valid(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_release *r = NULL;

	assert_ok(parse("{\"otter-release\":1,\"compatible\":\"acme-gateway\",\"version\":\"1.2\","
			"\"hardware\":[\"rev-a\",\"rev-b\"],\"images\":{\"rootfs\":{\"target\":"
			"\"images/rootfs-1.2.ext4\"},\"kernel\":{\"target\":\"images/k-1.2\"}},"
			"\"notes\":\"kept\"}",
			&r, &err));
	assert_string_equal(r->compatible, "acme-gateway");
	assert_string_equal(r->version, "1.2");
	assert_int_equal(r->n_images, 2);
	assert_string_equal(otter_release_image_for(r, "kernel")->target, "images/k-1.2");
	assert_null(otter_release_image_for(r, "bootloader"));
	assert_true(otter_release_matches(r, "acme-gateway", "rev-b"));
	assert_false(otter_release_matches(r, "acme-gateway", "rev-c"));
	assert_false(otter_release_matches(r, "acme-gateway", NULL));
	assert_false(otter_release_matches(r, "acme-router", "rev-a"));
	otter_release_free(r);
	assert_ok(parse("{\"otter-release\":1,\"compatible\":\"x\",\"version\":\"3\","
			"\"images\":{\"rootfs\":{\"target\":\"r\"}}}",
			&r, &err));
	assert_true(otter_release_matches(r, "x", NULL));
	assert_true(otter_release_matches(r, "x", "anything"));
	otter_release_free(r);
}

static void test_release_parse_invalid(void **state)
{
	static const struct {
		const char *doc;
		int code;
		const char *needle;
	} cases[] = {
		{"{\"compatible\":\"x\",\"version\":\"1\",\"images\":{}}", OTTER_E_FORMAT,
		 "otter-release"},
		{"{\"otter-release\":2,\"compatible\":\"x\",\"version\":\"1\",\"images\":{\"a\":{"
		 "\"target\":\"t\"}}}",
		 OTTER_E_NOT_SUPPORTED, "format 2"},
		{"{\"otter-release\":1,\"compatible\":\"x\",\"version\":\"1.x\",\"images\":{\"a\":{"
		 "\"target\":\"t\"}}}",
		 OTTER_E_FORMAT, "version '1.x'"},
		{"{\"otter-release\":1,\"compatible\":\"\",\"version\":\"1\",\"images\":{\"a\":{"
		 "\"target\":\"t\"}}}",
		 OTTER_E_FORMAT, "compatible"},
		{"{\"otter-release\":1,\"compatible\":\"x\",\"version\":\"1\",\"images\":{}}",
		 OTTER_E_FORMAT, "images"},
		{"{\"otter-release\":1,\"compatible\":\"x\",\"version\":\"1\",\"images\":{\"Root\":{"
		 "\"target\":\"t\"}}}",
		 OTTER_E_FORMAT, "slot class"},
		{"{\"otter-release\":1,\"compatible\":\"x\",\"version\":\"1\",\"images\":{\"a\":{"
		 "\"target\":\"../etc/shadow\"}}}",
		 OTTER_E_FORMAT, "unsafe target"},
		{"{\"otter-release\":1,\"compatible\":\"x\",\"version\":\"1\",\"images\":{\"a\":{"
		 "\"target\":\"/abs\"}}}",
		 OTTER_E_FORMAT, "unsafe target"},
		{"{\"otter-release\":1,\"compatible\":\"x\",\"version\":\"1\",\"hardware\":[],"
		 "\"images\":{\"a\":{\"target\":\"t\"}}}",
		 OTTER_E_FORMAT, "hardware"},
		{"{\"otter-release\":1,\"compatible\":\"x\",\"version\":\"1\",\"hardware\":[1],"
		 "\"images\":{\"a\":{\"target\":\"t\"}}}",
		 OTTER_E_FORMAT, "hardware id"},
		{"{\"otter-release\":1,\"compatible\":\"x\",\"version\":1,\"images\":{}}",
		 OTTER_E_FORMAT, "version"},
		{"[1]", OTTER_E_INVALID, "release.json"},
	};
	otter_error err = OTTER_ERROR_INIT;
	otter_release *r = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		otter_error_clear(&err);
		assert_err(parse(cases[i].doc, &r, &err), cases[i].code, &err, cases[i].needle);
		assert_null(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release_version_compare),
		cmocka_unit_test(test_release_parse_valid),
		cmocka_unit_test(test_release_parse_invalid),
	};
	return cmocka_run_group_tests_name("release", tests, NULL, NULL);
}
