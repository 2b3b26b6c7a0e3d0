/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-common.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <otter/crypto.h>

#include "util/strutil.h"

static void test_crypto_hash_vectors(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	char hex[129];
	uint8_t d1[64], d2[64];
	otter_hash *h = NULL;
	otter_hash_alg alg;

	assert_ok(otter_hash_buf_hex(OTTER_HASH_SHA256, "abc", 3, hex, &err));
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_ok(otter_hash_buf_hex(OTTER_HASH_SHA512, "abc", 3, hex, &err));
	assert_string_equal(hex, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
				 "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
	/* foo.tgz: sha256 starts 34baf01a (tuf.md §3.5) */
	assert_ok(otter_hash_buf_hex(OTTER_HASH_SHA256, "foo.tgz", 7, hex, &err));
	assert_memory_equal(hex, "34baf01a", 8);
	/* Streaming equals one-shot. */
	for (alg = OTTER_HASH_SHA256; alg < _OTTER_HASH_MAX; alg++) {
		assert_ok(otter_hash_new(&h, alg, &err));
		assert_ok(otter_hash_update(h, "hello ", 6, &err));
		assert_ok(otter_hash_update(h, "", 0, &err));
		assert_ok(otter_hash_update(h, "world", 5, &err));
		assert_ok(otter_hash_final(h, d1, &err));
		assert_err(otter_hash_update(h, "x", 1, &err), OTTER_E_INVALID, &err, NULL);
		otter_error_clear(&err);
		h = otter_hash_free(h);
		assert_ok(otter_hash_buf(alg, "hello world", 11, d2, &err));
		assert_memory_equal(d1, d2, otter_hash_size(alg));
	}
	assert_int_equal(otter_hash_alg_from_name("sha256", &alg), 0);
	assert_int_equal(alg, OTTER_HASH_SHA256);
	assert_int_equal(otter_hash_alg_from_name("md5", &alg), OTTER_E_NOT_SUPPORTED);
	assert_int_equal(otter_hash_alg_from_name("SHA256", &alg), OTTER_E_NOT_SUPPORTED);
}

static void sign_verify_roundtrip(otter_key_type type)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *priv = NULL, *pub = NULL, *other = NULL;
	uint8_t *sig = NULL, *pem = NULL;
	size_t siglen, pemlen;
	const uint8_t msg[] = "{\"_type\":\"root\"}";

	assert_ok(otter_key_generate(&priv, type, &err));
	assert_true(otter_key_has_private(priv));
	/* The public half, as a verifier gets it. */
	assert_ok(otter_key_public_pem(priv, &pem, &pemlen, &err));
	assert_ok(otter_key_load_pem(&pub, pem, pemlen, NULL, &err));
	free(pem);
	assert_false(otter_key_has_private(pub));
	assert_int_equal(otter_key_get_type(pub), type);
	assert_memory_equal(otter_key_fingerprint(pub), otter_key_fingerprint(priv), 32);
	assert_ok(otter_key_sign(priv, msg, sizeof(msg) - 1, &sig, &siglen, &err));
	assert_true(otter_key_verify(pub, msg, sizeof(msg) - 1, sig, siglen));
	/* Signing a public key is refused. */
	assert_err(otter_key_sign(pub, msg, 1, &sig, &siglen, &err), OTTER_E_INVALID, &err,
		   "private");
	/* A changed message, a changed signature, another key, a truncated signature. */
	assert_false(otter_key_verify(pub, msg, sizeof(msg) - 2, sig, siglen));
	sig[siglen / 2] ^= 1;
	assert_false(otter_key_verify(pub, msg, sizeof(msg) - 1, sig, siglen));
	sig[siglen / 2] ^= 1;
	assert_false(otter_key_verify(pub, msg, sizeof(msg) - 1, sig, siglen - 1));
	assert_false(otter_key_verify(pub, msg, sizeof(msg) - 1, sig, 0));
	assert_ok(otter_key_generate(&other, type, &err));
	assert_false(otter_key_verify(other, msg, sizeof(msg) - 1, sig, siglen));
	free(sig);
	otter_key_free(priv);
	otter_key_free(pub);
	otter_key_free(other);
}

static void test_crypto_ed25519(void **state)
{
	sign_verify_roundtrip(OTTER_KEY_ED25519);
}

static void test_crypto_ecdsa_p256(void **state)
{
	sign_verify_roundtrip(OTTER_KEY_ECDSA_P256);
}

static void test_crypto_rsa_pss(void **state)
{
	sign_verify_roundtrip(OTTER_KEY_RSA_PSS);
}

/* securesystemslib signs PSS with salt = digest length, others may use the maximum: verify
 * accepts any salt length (tuf.md §4.1). */
static void test_crypto_rsa_pss_any_salt(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *priv = NULL, *pub = NULL;
	uint8_t *pem = NULL, sig[512];
	size_t pemlen, siglen = sizeof(sig);
	EVP_PKEY *pkey;
	BIO *bio;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const uint8_t msg[] = "message";

	assert_ok(otter_key_generate(&priv, OTTER_KEY_RSA_PSS, &err));
	assert_ok(otter_key_private_pem(priv, NULL, &pem, &pemlen, &err));
	bio = BIO_new_mem_buf(pem, (int)pemlen);
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	assert_non_null(pkey);
	assert_int_equal(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, pkey), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_MAX), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg) - 1), 1);
	assert_ok(otter_key_load_pem(&pub, pem, pemlen, NULL, &err));
	assert_true(otter_key_verify(pub, msg, sizeof(msg) - 1, sig, siglen));
	/* PKCS#1 v1.5 is another scheme: it must not verify as PSS. */
	EVP_MD_CTX_free(ctx);
	ctx = EVP_MD_CTX_new();
	siglen = sizeof(sig);
	assert_int_equal(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, pkey), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg) - 1), 1);
	assert_false(otter_key_verify(pub, msg, sizeof(msg) - 1, sig, siglen));
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	free(pem);
	otter_key_free(priv);
	otter_key_free(pub);
}

static void test_crypto_pem_passphrase(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *k = NULL, *back = NULL, *pubk = NULL;
	uint8_t *pem = NULL, *pubpem = NULL;
	size_t len, publen;

	for (otter_key_type t = 0; t < _OTTER_KEY_TYPE_MAX; t++) {
		assert_ok(otter_key_generate(&k, t, &err));
		assert_ok(otter_key_private_pem(k, "s3cret", &pem, &len, &err));
		assert_non_null(strstr((char *)pem, "ENCRYPTED PRIVATE KEY"));
		assert_ok(otter_key_load_pem(&back, pem, len, "s3cret", &err));
		assert_true(otter_key_has_private(back));
		assert_memory_equal(otter_key_fingerprint(k), otter_key_fingerprint(back), 32);
		back = otter_key_free(back);
		assert_err(otter_key_load_pem(&back, pem, len, "wrong", &err), OTTER_E_CRYPTO, &err,
			   "passphrase");
		otter_error_clear(&err);
		assert_true(otter_key_load_pem(&back, pem, len, NULL, &err) < 0);
		otter_error_clear(&err);
		free(pem);
		/* Unencrypted and public PEM. */
		assert_ok(otter_key_private_pem(k, NULL, &pem, &len, &err));
		assert_non_null(strstr((char *)pem, "BEGIN PRIVATE KEY"));
		assert_ok(otter_key_public_pem(k, &pubpem, &publen, &err));
		assert_ok(otter_key_load_pem(&pubk, pubpem, publen, NULL, &err));
		assert_false(otter_key_has_private(pubk));
		assert_int_equal(otter_key_get_type(pubk), t);
		free(pem);
		free(pubpem);
		pubk = otter_key_free(pubk);
		k = otter_key_free(k);
	}
	assert_true(otter_key_load_pem(&k, (const uint8_t *)"junk", 4, NULL, &err) < 0);
}

/* Keys crypto refuses whatever format they come in (TUF key objects: test-tuf-key.c). */
static void test_crypto_key_refusals(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *k = NULL;
	EVP_PKEY *weak;
	BIO *bio;
	char *weakpem;
	long n;

	/* An RSA key under 2048 bits. */
	weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(bio, weak);
	n = BIO_get_mem_data(bio, &weakpem);
	assert_err(otter_key_load_pem(&k, (uint8_t *)weakpem, (size_t)n, NULL, &err),
		   OTTER_E_NOT_SUPPORTED, &err, "RSA key of 1024 bits: at least 2048 are required");
	assert_null(k);
	BIO_free(bio);
	EVP_PKEY_free(weak);
	/* ECDSA on another curve than P-256. */
	otter_error_clear(&err);
	weak = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(bio, weak);
	n = BIO_get_mem_data(bio, &weakpem);
	assert_err(otter_key_load_pem(&k, (uint8_t *)weakpem, (size_t)n, NULL, &err),
		   OTTER_E_NOT_SUPPORTED, &err, "only P-256 is supported");
	BIO_free(bio);
	EVP_PKEY_free(weak);
	assert_int_equal(otter_key_type_from_name("rsa-pss", &(otter_key_type){0}), 0);
	assert_int_equal(otter_key_type_from_name("dsa", &(otter_key_type){0}),
			 OTTER_E_NOT_SUPPORTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crypto_hash_vectors),
		cmocka_unit_test(test_crypto_ed25519),
		cmocka_unit_test(test_crypto_ecdsa_p256),
		cmocka_unit_test(test_crypto_rsa_pss),
		cmocka_unit_test(test_crypto_rsa_pss_any_salt),
		cmocka_unit_test(test_crypto_pem_passphrase),
		cmocka_unit_test(test_crypto_key_refusals),
	};
	return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
