/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device version manifests: parsing untrusted bytes, verifying signatures
 * (src/lib/director/manifest.c). */

#include "test-common.h"

#include <otter/crypto.h>
#include <otter/json.h>
#include <otter/tuf.h>

#include "lib/director/manifest.h"
#include "util/cleanup.h"

#define H64 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct fx {
	otter_key *primary, *secondary, *stranger;
	char kp[OTTER_KEYID_HEX_LEN + 1], ks[OTTER_KEYID_HEX_LEN + 1];
	dir_registered_ecu ecus[2];
} fx;

static void keyid_of(const otter_key *k, char out[OTTER_KEYID_HEX_LEN + 1])
{
	_cleanup_(json_decrefp) json_t *obj = NULL;
	otter_error e = OTTER_ERROR_INIT;

	assert_ok(otter_key_to_tuf(k, &obj, &e));
	assert_ok(otter_keyid_of_tuf(obj, out, &e));
}

static int setup(void **state)
{
	otter_error e = OTTER_ERROR_INIT;
	fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_ok(otter_key_generate(&f->primary, OTTER_KEY_ED25519, &e));
	assert_ok(otter_key_generate(&f->secondary, OTTER_KEY_ECDSA_P256, &e));
	assert_ok(otter_key_generate(&f->stranger, OTTER_KEY_ED25519, &e));
	keyid_of(f->primary, f->kp);
	keyid_of(f->secondary, f->ks);
	f->ecus[0] = (dir_registered_ecu){ "ecu-p", f->kp, f->primary, true };
	f->ecus[1] = (dir_registered_ecu){ "ecu-s", f->ks, f->secondary, false };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	otter_key_free(f->primary);
	otter_key_free(f->secondary);
	otter_key_free(f->stranger);
	free(f);
	return 0;
}

static json_t *report(const char *serial, int64_t counter, const otter_key *key)
{
	otter_error e = OTTER_ERROR_INIT;
	_cleanup_(json_decrefp) json_t *s = json_pack(
		"{s:s,s:{s:s,s:{s:I,s:{s:s}}},s:s,s:I}", "ecu_serial", serial, "installed_image",
		"filepath", "fw/app-1.0.bin", "fileinfo", "length", (json_int_t)42, "hashes",
		"sha256", H64, "attacks_detected", "", "report_counter", (json_int_t)counter);
	json_t *env = NULL;

	assert_non_null(s);
	assert_ok(dir_manifest_sign(s, key, &env, &e));
	return env;
}

/* A manifest of device dev with the given reports (stolen), signed by key, serialised. */
static char *manifest(const char *dev, json_t *reports, json_t *install, const otter_key *key)
{
	otter_error e = OTTER_ERROR_INIT;
	_cleanup_(json_decrefp) json_t *s = json_pack("{s:s,s:s,s:o}", "device_id", dev,
						      "primary_ecu_serial", "ecu-p",
						      "ecu_version_manifests", reports);
	_cleanup_(json_decrefp) json_t *env = NULL;

	if (install)
		json_object_set_new(s, "installation_report", install);
	assert_ok(dir_manifest_sign(s, key, &env, &e));
	return json_dumps(env, JSON_COMPACT);
}

static json_t *both(fx *f, int64_t c)
{
	return json_pack("{s:o,s:o}", "ecu-p", report("ecu-p", c, f->primary), "ecu-s",
			 report("ecu-s", c, f->secondary));
}

/* Parses text, expecting success. */
static dir_manifest *parse_ok(const char *text)
{
	otter_error e = OTTER_ERROR_INIT;
	dir_manifest *m = NULL;

	if (dir_manifest_parse(&m, (const uint8_t *)text, strlen(text), &e) != 0)
		print_error("parse failed: %s\n", e.msg);
	assert_non_null(m);
	return m;
}

static void test_manifest_valid(void **state)
{
	fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	json_t *inst = json_pack("{s:s,s:{s:b,s:s,s:s},s:[{s:s,s:{s:b,s:s,s:s}}]}",
				 "correlation_id", "corr-1", "result", "success", 0, "code",
				 "HEALTH", "description", "did not come up", "items", "ecu",
				 "ecu-s", "result", "success", 0, "code", "HEALTH",
				 "description", "x");
	_cleanup_free_ char *text = manifest("dev-1", both(f, 7), inst, f->primary);
	dir_manifest *m = parse_ok(text);

	assert_string_equal(m->device_id, "dev-1");
	assert_int_equal(m->n_ecus, 2);
	assert_string_equal(m->ecus[0].serial, "ecu-p");
	assert_int_equal(m->ecus[1].report_counter, 7);
	assert_int_equal(m->ecus[1].length, 42);
	assert_string_equal(m->ecus[1].filepath, "fw/app-1.0.bin");
	assert_true(m->has_report);
	assert_false(m->success);
	assert_string_equal(m->correlation_id, "corr-1");
	assert_string_equal(m->description, "did not come up");
	assert_int_equal(m->n_items, 1);
	assert_string_equal(m->items[0].ecu, "ecu-s");
	assert_ok(dir_manifest_verify(m, "dev-1", f->ecus, 2, &e));
	dir_manifest_free(m);
}

static void test_manifest_forged_by_other_key(void **state)
{
	fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	_cleanup_free_ char *text = manifest("dev-1", both(f, 1), NULL, f->stranger);
	dir_manifest *m = parse_ok(text);

	assert_err(dir_manifest_verify(m, "dev-1", f->ecus, 2, &e), OTTER_E_SIGNATURE, &e,
		   "primary ECU key");
	dir_manifest_free(m);
}

static void test_manifest_ecu_report_wrong_key(void **state)
{
	fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	json_t *r = json_pack("{s:o,s:o}", "ecu-p", report("ecu-p", 1, f->primary), "ecu-s",
			      report("ecu-s", 1, f->primary));
	_cleanup_free_ char *text = manifest("dev-1", r, NULL, f->primary);
	dir_manifest *m = parse_ok(text);

	assert_err(dir_manifest_verify(m, "dev-1", f->ecus, 2, &e), OTTER_E_SIGNATURE, &e,
		   "ecu-s");
	dir_manifest_free(m);
}

static void test_manifest_tampered_after_signing(void **state)
{
	fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	_cleanup_free_ char *text = manifest("dev-1", both(f, 3), NULL, f->primary);
	char *p = strstr(text, "\"report_counter\":3");
	dir_manifest *m;

	assert_non_null(p);
	p[strlen("\"report_counter\":")] = '4'; /* a replay with a bumped counter */
	m = parse_ok(text);
	assert_err(dir_manifest_verify(m, "dev-1", f->ecus, 2, &e), OTTER_E_SIGNATURE, &e, NULL);
	dir_manifest_free(m);
}

static void test_manifest_missing_ecu(void **state)
{
	fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	json_t *r = json_pack("{s:o}", "ecu-p", report("ecu-p", 1, f->primary));
	_cleanup_free_ char *text = manifest("dev-1", r, NULL, f->primary);
	dir_manifest *m = parse_ok(text);

	assert_err(dir_manifest_verify(m, "dev-1", f->ecus, 2, &e), OTTER_E_INVALID, &e,
		   "lacks the report of ECU ecu-s");
	dir_manifest_free(m);
}

static void test_manifest_foreign_ecu_and_device(void **state)
{
	fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	json_t *r = both(f, 1);
	_cleanup_free_ char *text = NULL, *other = NULL;
	dir_manifest *m;

	json_object_set_new(r, "ecu-x", report("ecu-x", 1, f->stranger));
	text = manifest("dev-1", r, NULL, f->primary);
	m = parse_ok(text);
	assert_err(dir_manifest_verify(m, "dev-1", f->ecus, 2, &e), OTTER_E_STATE, &e, "ecu-x");
	dir_manifest_free(m);
	/* A manifest naming another device than the authenticated one. */
	other = manifest("dev-2", both(f, 1), NULL, f->primary);
	m = parse_ok(other);
	otter_error_clear(&e);
	assert_err(dir_manifest_verify(m, "dev-1", f->ecus, 2, &e), OTTER_E_STATE, &e, "dev-2");
	dir_manifest_free(m);
}

static void test_manifest_report_on_foreign_ecu(void **state)
{
	fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	json_t *inst = json_pack("{s:s,s:{s:b,s:s},s:[{s:s,s:{s:b,s:s}}]}", "correlation_id",
				 "c", "result", "success", 1, "code", "OK", "items", "ecu",
				 "ecu-other", "result", "success", 1, "code", "OK");
	_cleanup_free_ char *text = manifest("dev-1", both(f, 1), inst, f->primary);
	dir_manifest *m = parse_ok(text);

	assert_err(dir_manifest_verify(m, "dev-1", f->ecus, 2, &e), OTTER_E_STATE, &e,
		   "ecu-other");
	dir_manifest_free(m);
}

static void expect_format(const char *text, const char *needle)
{
	otter_error e = OTTER_ERROR_INIT;
	dir_manifest *m = NULL;
	int r = dir_manifest_parse(&m, (const uint8_t *)text, strlen(text), &e);

	if (r != OTTER_E_FORMAT && r != OTTER_E_INVALID)
		print_error("%s: got %d: %s\n", text, r, e.msg);
	assert_true(r == OTTER_E_FORMAT || r == OTTER_E_INVALID);
	assert_null(m);
	test_check_msg(e.msg, needle);
}

static void test_manifest_malformed(void **state)
{
	(void)state;
	const char *sig = "\"signatures\":[{\"keyid\":\"" H64 "\",\"sig\":\"00\"}]";
	char buf[1024];

	expect_format("{", NULL);
	expect_format("[]", NULL);
	expect_format("{\"signed\":{}}", "signatures");
	snprintf(buf, sizeof(buf), "{%s,\"signed\":{\"device_id\":\"d\"}}", sig);
	expect_format(buf, "primary_ecu_serial");
	snprintf(buf, sizeof(buf),
		 "{%s,\"signed\":{\"device_id\":\"d\",\"primary_ecu_serial\":\"p\","
		 "\"ecu_version_manifests\":{}}}",
		 sig);
	expect_format(buf, "1..64 reports");
	/* report_counter as a string (aktualizr's dialect) is not accepted. */
	snprintf(buf, sizeof(buf),
		 "{%s,\"signed\":{\"device_id\":\"d\",\"primary_ecu_serial\":\"p\","
		 "\"ecu_version_manifests\":{\"p\":{%s,\"signed\":{\"ecu_serial\":\"p\","
		 "\"report_counter\":\"1\",\"installed_image\":{\"filepath\":\"a\",\"fileinfo\":"
		 "{\"length\":1,\"hashes\":{\"sha256\":\"" H64 "\"}}}}}}}}",
		 sig, sig);
	expect_format(buf, "report_counter");
	/* A serial listed under another name. */
	snprintf(buf, sizeof(buf),
		 "{%s,\"signed\":{\"device_id\":\"d\",\"primary_ecu_serial\":\"p\","
		 "\"ecu_version_manifests\":{\"p\":{%s,\"signed\":{\"ecu_serial\":\"q\","
		 "\"report_counter\":1,\"installed_image\":{\"filepath\":\"a\",\"fileinfo\":"
		 "{\"length\":1,\"hashes\":{\"sha256\":\"" H64 "\"}}}}}}}}",
		 sig, sig);
	expect_format(buf, "differs");
	/* Path traversal in the installed image, unknown hash algorithm, unknown member. */
	snprintf(buf, sizeof(buf),
		 "{%s,\"signed\":{\"device_id\":\"d\",\"primary_ecu_serial\":\"p\","
		 "\"ecu_version_manifests\":{\"p\":{%s,\"signed\":{\"ecu_serial\":\"p\","
		 "\"report_counter\":1,\"installed_image\":{\"filepath\":\"../x\",\"fileinfo\":"
		 "{\"length\":1,\"hashes\":{\"sha256\":\"" H64 "\"}}}}}}}}",
		 sig, sig);
	expect_format(buf, "safe target path");
	snprintf(buf, sizeof(buf),
		 "{%s,\"signed\":{\"device_id\":\"d\",\"primary_ecu_serial\":\"p\","
		 "\"ecu_version_manifests\":{\"p\":{%s,\"signed\":{\"ecu_serial\":\"p\","
		 "\"report_counter\":1,\"installed_image\":{\"filepath\":\"a\",\"fileinfo\":"
		 "{\"length\":1,\"hashes\":{\"md5\":\"00\"}}}}}}}}",
		 sig, sig);
	expect_format(buf, "sha256 and sha512");
	snprintf(buf, sizeof(buf),
		 "{%s,\"signed\":{\"device_id\":\"d\",\"primary_ecu_serial\":\"p\",\"vin\":1,"
		 "\"ecu_version_manifests\":{}}}",
		 sig);
	expect_format(buf, "unknown member");
	/* Bad signature entries. */
	expect_format("{\"signatures\":[{\"keyid\":\"x\",\"sig\":\"00\"}],\"signed\":{}}", "keyid");
	expect_format("{\"signatures\":[],\"signed\":{}}", "non-empty");
}

static void test_manifest_oversized(void **state)
{
	otter_error e = OTTER_ERROR_INIT;
	size_t n = DIR_MANIFEST_MAX_SIZE + 10;
	char *big = malloc(n + 1);
	dir_manifest *m = NULL;
	(void)state;

	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	assert_err(dir_manifest_parse(&m, (const uint8_t *)big, n, &e), OTTER_E_TOO_LARGE, &e,
		   NULL);
	assert_null(m);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_manifest_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_forged_by_other_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_ecu_report_wrong_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_manifest_tampered_after_signing, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_manifest_missing_ecu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_foreign_ecu_and_device, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_manifest_report_on_foreign_ecu, setup,
						teardown),
		cmocka_unit_test(test_manifest_malformed),
		cmocka_unit_test(test_manifest_oversized),
	};
	return cmocka_run_group_tests_name("director-manifest", tests, NULL, NULL);
}
