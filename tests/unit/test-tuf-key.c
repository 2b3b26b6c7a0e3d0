/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* TUF key objects (src/lib/tuf/tuf-key.c): keytype/scheme/keyval JSON and key ids. */
#include "test-common.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <otter/crypto.h>
#include <otter/json.h>
#include <otter/tuf.h>

/* The four ed25519 keys of the specification's example root and their key ids (tuf.md §4.2). */
static void test_tuf_key_ids_of_spec_example(void **state)
{
	static const char *const vectors[][2] = {
		{"72378e5bc588793e58f81c8533da64a2e8f1565c1fcc7f253496394ffc52542c",
		 "1bf1c6e3cdd3d3a8420b19199e27511999850f4b376c4547b2f32fba7e80fca3"},
		{"68ead6e54a43f8f36f9717b10669d1ef0ebb38cee6b05317669341309f1069cb",
		 "135c2f50e57ff11e744d234a62cebad8c38daf399604a7655661cc9199c69164"},
		{"66dd78c5c2a78abc6fc6b267ff1a8017ba0e8bfc853dd97af351949bba021275",
		 "cb3fbd83df4ba2471a736b065650878280964a98843ec13b457a99b2a21cc3b4"},
		{"01c61f8dc7d77fcef973f4267927541e355e8ceda757e2c402818dad850f856e",
		 "66676daa73bdfb4804b56070c8927ae491e2a6c2314f05b854dea94de8ff6bfc"},
	};
	otter_error err = OTTER_ERROR_INIT;

	for (size_t i = 0; i < 4; i++) {
		char keyid[65];
		otter_key *k = NULL;
		json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ed25519", "scheme",
					"ed25519", "keyval", "public", vectors[i][0]);
		assert_ok(otter_keyid_of_tuf(obj, keyid, &err));
		assert_string_equal(keyid, vectors[i][1]);
		assert_ok(otter_key_from_tuf(&k, obj, &err));
		assert_int_equal(otter_key_get_type(k), OTTER_KEY_ED25519);
		assert_false(otter_key_has_private(k));
		otter_key_free(k);
		json_decref(obj);
	}
}

/* Every key type goes to a key object and back: names, the same key, its signatures. */
static void test_tuf_key_roundtrip(void **state)
{
	const uint8_t msg[] = "{\"_type\":\"root\"}";

	for (otter_key_type type = 0; type < _OTTER_KEY_TYPE_MAX; type++) {
		otter_error err = OTTER_ERROR_INIT;
		otter_key *priv = NULL, *pub = NULL;
		json_t *obj = NULL;
		uint8_t *sig = NULL;
		size_t siglen;

		assert_ok(otter_key_generate(&priv, type, &err));
		assert_ok(otter_key_to_tuf(priv, &obj, &err));
		assert_string_equal(json_string_value(json_object_get(obj, "keytype")),
				    otter_key_type_name(type));
		assert_string_equal(json_string_value(json_object_get(obj, "scheme")),
				    otter_key_scheme_name(type));
		/* Only the public half goes into metadata. */
		assert_ok(otter_key_from_tuf(&pub, obj, &err));
		assert_false(otter_key_has_private(pub));
		assert_memory_equal(otter_key_fingerprint(pub), otter_key_fingerprint(priv), 32);
		assert_ok(otter_key_sign(priv, msg, sizeof(msg) - 1, &sig, &siglen, &err));
		assert_true(otter_key_verify(pub, msg, sizeof(msg) - 1, sig, siglen));
		free(sig);
		json_decref(obj);
		otter_key_free(priv);
		otter_key_free(pub);
	}
}

static void test_tuf_key_object_errors(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *k = NULL, *ed = NULL;
	json_t *obj, *edobj = NULL;
	uint8_t *pem = NULL;
	size_t len;
	EVP_PKEY *weak;
	BIO *bio;
	char *weakpem;
	long n;

	/* Unknown type/scheme pairs are "not supported", not malformed. */
	obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ed25519", "scheme", "ed448", "keyval",
			"public", "00");
	assert_err(otter_key_from_tuf(&k, obj, &err), OTTER_E_NOT_SUPPORTED, &err, "ed448");
	json_decref(obj);
	otter_error_clear(&err);
	obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "rsa", "scheme", "rsa-pkcs1v15-sha256",
			"keyval", "public", "x");
	assert_err(otter_key_from_tuf(&k, obj, &err), OTTER_E_NOT_SUPPORTED, &err, NULL);
	json_decref(obj);
	otter_error_clear(&err);
	/* Malformed: short ed25519 key, non-hex, missing keyval, PEM of the wrong type. */
	obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519", "keyval",
			"public", "abcd");
	assert_err(otter_key_from_tuf(&k, obj, &err), OTTER_E_FORMAT, &err, "64 hex");
	json_decref(obj);
	otter_error_clear(&err);
	obj = json_pack("{s:s, s:s}", "keytype", "ed25519", "scheme", "ed25519");
	assert_err(otter_key_from_tuf(&k, obj, &err), OTTER_E_FORMAT, &err, "keyval");
	json_decref(obj);
	otter_error_clear(&err);
	assert_ok(otter_key_generate(&ed, OTTER_KEY_ED25519, &err));
	assert_ok(otter_key_public_pem(ed, &pem, &len, &err));
	obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ecdsa", "scheme", "ecdsa-sha2-nistp256",
			"keyval", "public", (char *)pem);
	assert_err(otter_key_from_tuf(&k, obj, &err), OTTER_E_FORMAT, &err, "does not match");
	json_decref(obj);
	otter_error_clear(&err);
	free(pem);
	/* The legacy keytype alias for ECDSA is accepted. */
	otter_key *ec = NULL;
	assert_ok(otter_key_generate(&ec, OTTER_KEY_ECDSA_P256, &err));
	assert_ok(otter_key_public_pem(ec, &pem, &len, &err));
	obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", "ecdsa-sha2-nistp256", "scheme",
			"ecdsa-sha2-nistp256", "keyval", "public", (char *)pem);
	assert_ok(otter_key_from_tuf(&k, obj, &err));
	k = otter_key_free(k);
	json_decref(obj);
	free(pem);
	otter_key_free(ec);
	/* An RSA key under 2048 bits is refused. */
	weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(bio, weak);
	n = BIO_get_mem_data(bio, &weakpem);
	obj = json_pack("{s:s, s:s, s:{s:s%}}", "keytype", "rsa", "scheme", "rsassa-pss-sha256",
			"keyval", "public", weakpem, (size_t)n);
	assert_err(otter_key_from_tuf(&k, obj, &err), OTTER_E_FORMAT, &err, NULL);
	json_decref(obj);
	BIO_free(bio);
	EVP_PKEY_free(weak);
	/* Extra members enter the keyid (full-object rule). */
	assert_ok(otter_key_to_tuf(ed, &edobj, &err));
	char id1[65], id2[65];
	assert_ok(otter_keyid_of_tuf(edobj, id1, &err));
	json_object_set_new(edobj, "x-extra", json_string("v"));
	assert_ok(otter_keyid_of_tuf(edobj, id2, &err));
	assert_string_not_equal(id1, id2);
	json_decref(edobj);
	otter_key_free(ed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tuf_key_ids_of_spec_example),
		cmocka_unit_test(test_tuf_key_roundtrip),
		cmocka_unit_test(test_tuf_key_object_errors),
	};
	return cmocka_run_group_tests_name("tuf-key", tests, NULL, NULL);
}
