/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device request authentication of the director (src/lib/director/auth.c). */

#include "test-common.h"

#include <otter/crypto.h>

#include "lib/director/auth.h"
#include "util/cleanup.h"

static void test_id_ok(void **state)
{
	(void)state;
	assert_true(dir_id_ok("dev-1.a_b:c"));
	assert_false(dir_id_ok(""));
	assert_false(dir_id_ok("a/b"));
	assert_false(dir_id_ok("a b"));
	assert_false(dir_id_ok("caf\xc3\xa9"));
	assert_true(dir_id_ok("0123456789012345678901234567890123456789012345678901234567890123"));
	assert_false(dir_id_ok("01234567890123456789012345678901234567890123456789012345678901234"));
}

static void test_base64_roundtrip_and_strictness(void **state)
{
	otter_error e = OTTER_ERROR_INIT;
	const uint8_t data[] = { 0, 1, 2, 0xfe, 0xff, 'x', 'y' };
	(void)state;

	for (size_t n = 0; n <= sizeof(data); n++) {
		_cleanup_free_ char *s = NULL;
		_cleanup_free_ uint8_t *back = NULL;
		size_t len;
		assert_ok(dir_b64_encode(data, n, &s, &e));
		if (n == 0) {
			assert_string_equal(s, "");
			continue;
		}
		assert_ok(dir_b64_decode(s, 64, &back, &len, &e));
		assert_int_equal(len, n);
		assert_memory_equal(back, data, n);
	}
	{
		_cleanup_free_ char *s = NULL;
		assert_ok(dir_b64_encode((const uint8_t *)"foobar", 6, &s, &e));
		assert_string_equal(s, "Zm9vYmFy");
	}
	const char *bad[] = { "", "Zm9", "Zm9v!mFy", "Zg=a", "Zh==", "Zm9=Zm9v", "Zm 9v",
			      "Zm9vYg==Zm9v" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *out = NULL;
		size_t len;
		otter_error_clear(&e);
		assert_err(dir_b64_decode(bad[i], 64, &out, &len, &e), OTTER_E_FORMAT, &e, "base64");
		assert_null(out);
	}
	{
		uint8_t *out = NULL;
		size_t len;
		otter_error_clear(&e);
		assert_err(dir_b64_decode("Zm9vYmFy", 5, &out, &len, &e), OTTER_E_FORMAT, &e,
			   "more than");
	}
}

static otter_key *gen(otter_key_type t)
{
	otter_key *k = NULL;
	otter_error e = OTTER_ERROR_INIT;

	assert_ok(otter_key_generate(&k, t, &e));
	return k;
}

static void sign_verify(otter_key_type t)
{
	otter_error e = OTTER_ERROR_INIT;
	otter_key *k = gen(t), *other = gen(t);
	_cleanup_free_ char *hdr = NULL;
	const uint8_t body[] = "{\"a\": 1}";
	dir_sig_header h;

	assert_ok(dir_sig_sign(k, "PUT", "/director/v1/manifest", 1000, body, sizeof(body) - 1,
			       &hdr, &e));
	assert_ok(dir_sig_header_parse(hdr, &h, &e));
	assert_int_equal(h.time, 1000);
	assert_ok(dir_sig_verify(k, &h, "PUT", "/director/v1/manifest", body, sizeof(body) - 1,
				 1100, 300, &e));
	/* Anything else the signature covers changed: refused. */
	assert_err(dir_sig_verify(k, &h, "POST", "/director/v1/manifest", body, sizeof(body) - 1,
				  1000, 300, &e),
		   OTTER_E_SIGNATURE, &e, "does not verify");
	otter_error_clear(&e);
	assert_err(dir_sig_verify(k, &h, "PUT", "/director/v1/register", body, sizeof(body) - 1,
				  1000, 300, &e),
		   OTTER_E_SIGNATURE, &e, NULL);
	otter_error_clear(&e);
	assert_err(dir_sig_verify(k, &h, "PUT", "/director/v1/manifest", body, sizeof(body) - 2,
				  1000, 300, &e),
		   OTTER_E_SIGNATURE, &e, NULL);
	otter_error_clear(&e);
	/* Another key (a device trying to pass as another). */
	assert_err(dir_sig_verify(other, &h, "PUT", "/director/v1/manifest", body,
				  sizeof(body) - 1, 1000, 300, &e),
		   OTTER_E_SIGNATURE, &e, NULL);
	otter_error_clear(&e);
	/* Replayed long after, or from a clock far ahead. */
	assert_err(dir_sig_verify(k, &h, "PUT", "/director/v1/manifest", body, sizeof(body) - 1,
				  1301, 300, &e),
		   OTTER_E_EXPIRED, &e, "clock");
	otter_error_clear(&e);
	assert_err(dir_sig_verify(k, &h, "PUT", "/director/v1/manifest", body, sizeof(body) - 1,
				  699, 300, &e),
		   OTTER_E_EXPIRED, &e, NULL);
	otter_key_free(k);
	otter_key_free(other);
}

static void test_sign_verify_ed25519(void **state)
{
	(void)state;
	sign_verify(OTTER_KEY_ED25519);
}

static void test_sign_verify_ecdsa(void **state)
{
	(void)state;
	sign_verify(OTTER_KEY_ECDSA_P256);
}

static void test_header_parse_errors(void **state)
{
	otter_error e = OTTER_ERROR_INIT;
	const char *kid = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char good[256], buf[2048];
	dir_sig_header h;
	(void)state;

	snprintf(good, sizeof(good), "keyid=\"%s\", time=5, sig=\"AAAA\"", kid);
	assert_ok(dir_sig_header_parse(good, &h, &e));
	assert_int_equal(h.siglen, 3);
	/* Any order, no spaces. */
	snprintf(buf, sizeof(buf), "sig=\"AAAA\",time=5,keyid=\"%s\"", kid);
	assert_ok(dir_sig_header_parse(buf, &h, &e));
	const char *bad[] = {
		"",
		"keyid=\"abc\", time=5, sig=\"AAAA\"",
		"time=5, sig=\"AAAA\"",
		"keyid=\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\", time=5, "
		"sig=\"AAAA\"",
		NULL, /* filled below: repeated time */
		NULL, /* negative time */
		NULL, /* bad base64 */
		NULL, /* unknown parameter */
		NULL, /* unterminated quote */
	};
	char rep[256], neg[256], b64[256], unk[256], quote[256];
	snprintf(rep, sizeof(rep), "keyid=\"%s\", time=5, time=6, sig=\"AAAA\"", kid);
	snprintf(neg, sizeof(neg), "keyid=\"%s\", time=-5, sig=\"AAAA\"", kid);
	snprintf(b64, sizeof(b64), "keyid=\"%s\", time=5, sig=\"AA*A\"", kid);
	snprintf(unk, sizeof(unk), "keyid=\"%s\", time=5, sig=\"AAAA\", alg=x", kid);
	snprintf(quote, sizeof(quote), "keyid=\"%s\", time=5, sig=\"AAAA", kid);
	bad[4] = rep;
	bad[5] = neg;
	bad[6] = b64;
	bad[7] = unk;
	bad[8] = quote;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		otter_error_clear(&e);
		assert_err(dir_sig_header_parse(bad[i], &h, &e), OTTER_E_FORMAT, &e,
			   DIR_AUTH_HEADER);
	}
	/* Oversized header. */
	memset(buf, 'a', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	otter_error_clear(&e);
	assert_err(dir_sig_header_parse(buf, &h, &e), OTTER_E_FORMAT, &e, "longer");
}

static void test_ecu_key_load(void **state)
{
	otter_error e = OTTER_ERROR_INIT;
	otter_key *k = gen(OTTER_KEY_ECDSA_P256), *rsa = gen(OTTER_KEY_RSA_PSS), *loaded = NULL;
	_cleanup_free_ uint8_t *pem = NULL, *rsapem = NULL, *priv = NULL;
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	size_t len;
	(void)state;

	assert_ok(otter_key_public_pem(k, &pem, &len, &e));
	assert_ok(dir_ecu_key_load("ecdsa-p256", (const char *)pem, &loaded, keyid, &e));
	assert_int_equal(strlen(keyid), 64);
	otter_key_free(loaded);
	loaded = NULL;
	/* The stated type must be the key's. */
	assert_err(dir_ecu_key_load("ed25519", (const char *)pem, &loaded, keyid, &e),
		   OTTER_E_FORMAT, &e, "ed25519");
	otter_error_clear(&e);
	assert_ok(otter_key_public_pem(rsa, &rsapem, &len, &e));
	assert_err(dir_ecu_key_load("rsa", (const char *)rsapem, &loaded, keyid, &e),
		   OTTER_E_NOT_SUPPORTED, &e, "ed25519 or ecdsa-p256");
	otter_error_clear(&e);
	/* A private key is not what a device registers. */
	assert_ok(otter_key_private_pem(k, NULL, &priv, &len, &e));
	assert_err(dir_ecu_key_load("ecdsa", (const char *)priv, &loaded, keyid, &e),
		   OTTER_E_FORMAT, &e, "PEM public key");
	otter_error_clear(&e);
	assert_err(dir_ecu_key_load("ecdsa", "-----BEGIN PUBLIC KEY-----\ngarbage\n", &loaded,
				    keyid, &e),
		   OTTER_E_FORMAT, &e, NULL);
	assert_null(loaded);
	otter_key_free(k);
	otter_key_free(rsa);
}

/* The key id of a PEM key as the director computes it. */
static void keyid_of(const char *pem, char keyid[OTTER_KEYID_HEX_LEN + 1], const char *type)
{
	otter_error e = OTTER_ERROR_INIT;
	otter_key *k = NULL;

	assert_ok(dir_ecu_key_load(type, pem, &k, keyid, &e));
	otter_key_free(k);
}

/* A PEM of a fresh key of this type (malloc()ed). */
static char *fresh_pem(otter_key_type t)
{
	otter_error e = OTTER_ERROR_INIT;
	otter_key *k = gen(t);
	uint8_t *pem = NULL;
	size_t len;

	assert_ok(otter_key_public_pem(k, &pem, &len, &e));
	otter_key_free(k);
	return (char *)pem;
}

static void test_key_cache(void **state)
{
	otter_error e = OTTER_ERROR_INIT;
	dir_key_cache *c = NULL;
	_cleanup_free_ char *a = fresh_pem(OTTER_KEY_ED25519), *b = fresh_pem(OTTER_KEY_ECDSA_P256);
	char ida[OTTER_KEYID_HEX_LEN + 1], idb[OTTER_KEYID_HEX_LEN + 1];
	const otter_key *k1, *k2, *k3;
	otter_key *owned = NULL;
	uint64_t hits, misses;
	(void)state;

	keyid_of(a, ida, "ed25519");
	keyid_of(b, idb, "ecdsa");
	assert_ok(dir_key_cache_new(&c, &e));
	/* First use parses, the second is the same parsed key. */
	assert_ok(dir_key_cache_get(c, ida, "ed25519", a, &k1, &owned, &e));
	assert_null(owned);
	assert_ok(dir_key_cache_get(c, ida, "ed25519", a, &k2, &owned, &e));
	assert_ptr_equal(k1, k2);
	dir_key_cache_stats(c, &hits, &misses);
	assert_int_equal(hits, 1);
	assert_int_equal(misses, 1);
	assert_int_equal(otter_key_get_type(k1), OTTER_KEY_ED25519);
	/* The same key id with other key material (the row changed): never the cached key. */
	assert_ok(dir_key_cache_get(c, ida, "ecdsa", b, &k3, &owned, &e));
	assert_int_equal(otter_key_get_type(k3), OTTER_KEY_ECDSA_P256);
	/* ... nor with another stated type: parsing refuses it as dir_ecu_key_load does. */
	assert_err(dir_key_cache_get(c, idb, "ed25519", b, &k3, &owned, &e), OTTER_E_FORMAT, &e,
		   "ed25519");
	otter_error_clear(&e);
	assert_null(owned);
	/* A bad stored key is an error, and is not remembered. */
	assert_err(dir_key_cache_get(c, ida, "ed25519", "-----BEGIN PUBLIC KEY-----\nx\n", &k3,
				     &owned, &e),
		   OTTER_E_FORMAT, &e, NULL);
	otter_error_clear(&e);
	/* Without a cache: the caller owns the key. */
	assert_ok(dir_key_cache_get(NULL, ida, "ed25519", a, &k3, &owned, &e));
	assert_non_null(owned);
	assert_ptr_equal(k3, owned);
	otter_key_free(owned);
	owned = NULL;
	dir_key_cache_free(c);
}

/* Many keys in one set: the cache stays bounded and answers right for each of them. */
static void test_key_cache_bounded(void **state)
{
	otter_error e = OTTER_ERROR_INIT;
	dir_key_cache *c = NULL;
	char *pems[5] = { 0 };
	char ids[5][OTTER_KEYID_HEX_LEN + 1];
	uint64_t hits, misses;
	(void)state;

	assert_ok(dir_key_cache_new(&c, &e));
	for (size_t i = 0; i < 5; i++) {
		pems[i] = fresh_pem(OTTER_KEY_ED25519);
		keyid_of(pems[i], ids[i], "ed25519");
		/* The same set for all: the set is chosen by the first 8 hex digits. */
		memcpy(ids[i], "00000000", 8);
	}
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < 5; i++) {
			const otter_key *k;
			otter_key *owned = NULL;
			_cleanup_free_ uint8_t *back = NULL;
			size_t len;
			assert_ok(dir_key_cache_get(c, ids[i], "ed25519", pems[i], &k, &owned, &e));
			assert_null(owned);
			assert_ok(otter_key_public_pem(k, &back, &len, &e));
			assert_string_equal((const char *)back, pems[i]);
		}
	/* Two ways: five keys cycling through one set always miss (LRU), never answer wrong. */
	dir_key_cache_stats(c, &hits, &misses);
	assert_int_equal(hits, 0);
	assert_int_equal(misses, 15);
	/* Two keys that share a set both stay. */
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < 2; i++) {
			const otter_key *k;
			otter_key *owned = NULL;
			assert_ok(dir_key_cache_get(c, ids[i], "ed25519", pems[i], &k, &owned, &e));
		}
	dir_key_cache_stats(c, &hits, &misses);
	assert_int_equal(misses, 15 + 2);
	assert_int_equal(hits, 4);
	dir_key_cache_free(c);
	for (size_t i = 0; i < 5; i++)
		free(pems[i]);
}

static void test_ct_equal(void **state)
{
	(void)state;
	assert_true(dir_ct_equal("abcd", "abcd", 4));
	assert_false(dir_ct_equal("abcd", "abce", 4));
	assert_true(dir_ct_equal("", "x", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_ok),
		cmocka_unit_test(test_base64_roundtrip_and_strictness),
		cmocka_unit_test(test_sign_verify_ed25519),
		cmocka_unit_test(test_sign_verify_ecdsa),
		cmocka_unit_test(test_header_parse_errors),
		cmocka_unit_test(test_ecu_key_load),
		cmocka_unit_test(test_key_cache),
		cmocka_unit_test(test_key_cache_bounded),
		cmocka_unit_test(test_ct_equal),
	};
	return cmocka_run_group_tests_name("director-auth", tests, NULL, NULL);
}
