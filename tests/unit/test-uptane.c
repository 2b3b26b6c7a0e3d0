/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device side of Uptane (src/lib/agent/uptane*.c): the request signature the device makes
 * is the one otter-director verifies (cross-checked against src/lib/director/auth.c), and the
 * state file with the report counter is parsed strictly and saved atomically.
 */

#include "test-common.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <otter/crypto.h>

#include "lib/agent/agent-private.h"
#include "lib/director/auth.h"
#include "util/cleanup.h"
#include "util/strutil.h"

static void test_signing_string_is_the_directors(void **state)
{
	static const char body[] = "{\"device_id\":\"dev-1\"}";
	const char *methods[] = {"GET", "PUT", "POST"};
	(void)state;

	for (size_t i = 0; i < 3; i++) {
		otter_error e = OTTER_ERROR_INIT;
		_cleanup_free_ char *mine = NULL, *theirs = NULL;
		const uint8_t *b = i ? (const uint8_t *)body : NULL;
		size_t n = i ? strlen(body) : 0;

		mine = uptane_signing_string(methods[i], "/director/v1/manifest", 1700000000, b, n);
		assert_non_null(mine);
		assert_ok(dir_sig_message(methods[i], "/director/v1/manifest", 1700000000, b, n,
					  &theirs, &e));
		assert_string_equal(mine, theirs);
	}
}

static void test_signature_verifies_with_the_directors_code(void **state)
{
	otter_error e = OTTER_ERROR_INIT;
	_cleanup_free_ char *msg = NULL, *b64 = NULL, *hdr = NULL;
	_cleanup_free_ uint8_t *sig = NULL;
	otter_key *key = NULL;
	dir_sig_header h;
	size_t siglen;
	(void)state;

	assert_ok(otter_key_generate(&key, OTTER_KEY_ED25519, &e));
	msg = uptane_signing_string("GET", "/director/v1/metadata/timestamp.json", 1700000000, NULL,
				    0);
	assert_ok(otter_key_sign(key, (const uint8_t *)msg, strlen(msg), &sig, &siglen, &e));
	assert_ok(dir_b64_encode(sig, siglen, &b64, &e));
	assert_true(asprintf(&hdr, "keyid=\"%064d\", time=1700000000, sig=\"%s\"", 0, b64) > 0);
	assert_ok(dir_sig_header_parse(hdr, &h, &e));
	assert_ok(dir_sig_verify(key, &h, "GET", "/director/v1/metadata/timestamp.json", NULL, 0,
				 1700000010, 300, &e));
	/* Another path, or too far from the server's clock: refused. */
	assert_true(dir_sig_verify(key, &h, "GET", "/director/v1/metadata/1.root.json", NULL, 0,
				   1700000010, 300, &e) < 0);
	otter_error_clear(&e);
	assert_true(dir_sig_verify(key, &h, "GET", "/director/v1/metadata/timestamp.json", NULL, 0,
				   1700001000, 300, &e) < 0);
	otter_key_free(key);
}

static void test_state_roundtrip(void **state)
{
	otter_error e = OTTER_ERROR_INIT;
	char dir[] = "/tmp/otter-uptane-XXXXXX";
	uptane_state st = {0}, back;
	(void)state;

	assert_non_null(mkdtemp(dir));
	/* No file: a fresh state (counter 0, not registered). */
	assert_ok(uptane_state_load(dir, &back, &e));
	assert_int_equal(back.counter, 0);
	assert_false(back.registered);
	st.registered = true;
	st.counter = 41;
	st.result = 2;
	strcpy(st.correlation_id, "rollout-7");
	strcpy(st.code, "HEALTH_CHECK");
	strcpy(st.target.path, "releases/gw/1.2.json");
	st.target.length = 1234;
	memset(st.target.sha256, 'a', 64);
	assert_ok(uptane_state_save(dir, &st, &e));
	assert_ok(uptane_state_load(dir, &back, &e));
	assert_true(back.registered);
	assert_int_equal(back.counter, 41);
	assert_int_equal(back.result, 2);
	assert_string_equal(back.correlation_id, "rollout-7");
	assert_string_equal(back.target.path, "releases/gw/1.2.json");
	assert_int_equal(back.target.length, 1234);
	assert_string_equal(back.target.sha256, st.target.sha256);
	{
		_cleanup_free_ char *p = path_join(dir, UPTANE_STATE_FILE);
		unlink(p);
	}
	rmdir(dir);
}

static void test_state_parse_is_strict(void **state)
{
	static const char *const bad[] = {
		"{}",                                             /* no counter */
		"{\"report-counter\": -1}",
		"{\"report-counter\": \"5\"}",
		"{\"report-counter\": 1, \"result\": 3}",
		"{\"report-counter\": 1, \"code\": \"a\\u0001\"}",
		"{\"report-counter\": 1, \"target\": {\"path\": \"x\", \"length\": 1, \"sha256\": \"A\"}}",
		"{\"report-counter\": 1, \"target\": {\"path\": \"x\"}}",
		"[1]",
		"{\"report-counter\": 1",
	};
	uptane_state st;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		otter_error e = OTTER_ERROR_INIT;
		assert_true(uptane_state_parse((const uint8_t *)bad[i], strlen(bad[i]), &st, &e) < 0);
		assert_true(e.msg[0] != '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signing_string_is_the_directors),
		cmocka_unit_test(test_signature_verifies_with_the_directors_code),
		cmocka_unit_test(test_state_roundtrip),
		cmocka_unit_test(test_state_parse_is_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
