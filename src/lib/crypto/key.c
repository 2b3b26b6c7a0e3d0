/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto-private.h"
#include "lib/limits.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

#define RSA_MIN_BITS   2048
#define RSA_GEN_BITS   3072
#define PSS_SALT_LEN   32 /* = digest length, as securesystemslib signs */
#define ED25519_KEYLEN 32

struct otter_key {
	otter_key_type type;
	EVP_PKEY *pkey;
	bool has_private;
	uint8_t fingerprint[32];
};

DEFINE_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
DEFINE_CLEANUP_FUNC(EVP_MD_CTX, EVP_MD_CTX_free)
DEFINE_CLEANUP_FUNC(BIO, BIO_free)

static const char *const type_names[] = {"ed25519", "ecdsa", "rsa"};
static const char *const scheme_names[] = {"ed25519", "ecdsa-sha2-nistp256", "rsassa-pss-sha256"};

int otter_key_type_from_name(const char *name, otter_key_type *out)
{
	if (strcmp(name, "ed25519") == 0)
		*out = OTTER_KEY_ED25519;
	else if (strcmp(name, "ecdsa") == 0 || strcmp(name, "ecdsa-p256") == 0 ||
		 strcmp(name, "ecdsa-sha2-nistp256") == 0)
		*out = OTTER_KEY_ECDSA_P256;
	else if (strcmp(name, "rsa") == 0 || strcmp(name, "rsa-pss") == 0)
		*out = OTTER_KEY_RSA_PSS;
	else
		return OTTER_E_NOT_SUPPORTED;
	return 0;
}

const char *otter_key_type_name(otter_key_type type)
{
	return type < _OTTER_KEY_TYPE_MAX ? type_names[type] : "unknown";
}

const char *otter_key_scheme_name(otter_key_type type)
{
	return type < _OTTER_KEY_TYPE_MAX ? scheme_names[type] : "unknown";
}

otter_key *otter_key_free(otter_key *key)
{
	if (key) {
		EVP_PKEY_free(key->pkey);
		free(key);
	}
	return NULL;
}

otter_key_type otter_key_get_type(const otter_key *key)
{
	return key->type;
}

bool otter_key_has_private(const otter_key *key)
{
	return key->has_private;
}

const uint8_t *otter_key_fingerprint(const otter_key *key)
{
	return key->fingerprint;
}

/* Checks that pkey is one of our three kinds and returns which. */
static int classify(EVP_PKEY *pkey, otter_key_type *out, otter_error *err)
{
	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_ED25519:
		*out = OTTER_KEY_ED25519;
		return 0;
	case EVP_PKEY_EC: {
		char group[64] = "";
		size_t glen = 0;

		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), &glen) != 1 ||
		    strcmp(group, "prime256v1") != 0) {
			ERR_clear_error();
			return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
					       "ECDSA key on curve '%s': only P-256 is supported",
					       group);
		}
		*out = OTTER_KEY_ECDSA_P256;
		return 0;
	}
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		if (EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS)
			return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
					       "RSA key of %d bits: at least %d are required",
					       EVP_PKEY_get_bits(pkey), RSA_MIN_BITS);
		*out = OTTER_KEY_RSA_PSS;
		return 0;
	default:
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
				       "key algorithm %d is not supported",
				       EVP_PKEY_get_base_id(pkey));
	}
}

/* Wraps pkey (taking ownership) into a new otter_key. */
static int key_wrap(otter_key **out, EVP_PKEY *pkey_in, bool has_private, otter_error *err)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = pkey_in;
	_cleanup_free_ unsigned char *der = NULL;
	otter_key_type type;
	otter_key *k;
	int derlen, r;

	r = classify(pkey, &type, err);
	if (r < 0)
		return r;
	derlen = i2d_PUBKEY(pkey, &der);
	if (derlen <= 0)
		return crypto_error(err, OTTER_E_CRYPTO, "encoding public key");
	k = otter_calloc(1, sizeof(*k));
	if (!k) {
		OPENSSL_free(der);
		der = NULL;
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	r = otter_hash_buf(OTTER_HASH_SHA256, der, (size_t)derlen, k->fingerprint, err);
	OPENSSL_free(der);
	der = NULL;
	if (r < 0) {
		free(k);
		return r;
	}
	k->type = type;
	k->pkey = TAKE_PTR(pkey);
	k->has_private = has_private;
	*out = k;
	return 0;
}

static int pubkey_from_pem(EVP_PKEY **out, const char *pem, otter_error *err)
{
	_cleanup_(BIO_freep) BIO *bio = NULL;
	EVP_PKEY *pkey;

	if (strlen(pem) > OTTER_TUF_MAX_PUBKEY_LEN)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "public key PEM of %zu bytes, more than %u", strlen(pem),
				       OTTER_TUF_MAX_PUBKEY_LEN);
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		return crypto_error(err, OTTER_E_NOMEM, "BIO");
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!pkey)
		return crypto_error(err, OTTER_E_FORMAT, "not a PEM public key");
	*out = pkey;
	return 0;
}

int otter_key_from_public(otter_key **out, otter_key_type type, const char *pub,
			  otter_error *err)
{
	EVP_PKEY *pkey = NULL;
	otter_key_type got;
	int r;

	if (!out || !pub || (unsigned)type >= _OTTER_KEY_TYPE_MAX)
		return otter_error_set(err, OTTER_E_INVALID,
				       "otter_key_from_public: %s %d", !out ? "out is NULL" :
				       !pub ? "public key is NULL" : "unknown key type",
				       (int)type);
	if (type == OTTER_KEY_ED25519) {
		uint8_t raw[ED25519_KEYLEN];

		if (!hex_decode(pub, strlen(pub), raw, sizeof(raw)))
			return otter_error_set(err, OTTER_E_FORMAT,
					       "ed25519 public key is not 64 hex characters");
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, sizeof(raw));
		if (!pkey)
			return crypto_error(err, OTTER_E_FORMAT, "invalid ed25519 public key");
	} else {
		r = pubkey_from_pem(&pkey, pub, err);
		if (r < 0)
			return r;
	}
	if (classify(pkey, &got, NULL) < 0 || got != type) {
		EVP_PKEY_free(pkey);
		return otter_error_set(err, OTTER_E_FORMAT,
				       "public key material does not match keytype '%s'",
				       type_names[type]);
	}
	return key_wrap(out, pkey, false, err);
}

int otter_key_public_pem(const otter_key *key, uint8_t **out, size_t *len, otter_error *err)
{
	_cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;

	if (!bio || PEM_write_bio_PUBKEY(bio, key->pkey) != 1)
		return crypto_error(err, OTTER_E_CRYPTO, "writing public key PEM");
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0)
		return crypto_error(err, OTTER_E_CRYPTO, "writing public key PEM");
	*out = otter_malloc((size_t)n + 1);
	if (!*out)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	memcpy(*out, data, (size_t)n);
	(*out)[n] = '\0';
	if (len)
		*len = (size_t)n;
	return 0;
}

int otter_key_public_text(const otter_key *key, char **out, otter_error *err)
{
	uint8_t *pem = NULL;
	int r;

	if (key->type == OTTER_KEY_ED25519) {
		uint8_t raw[ED25519_KEYLEN];
		size_t rawlen = sizeof(raw);
		char *hex;

		if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &rawlen) != 1 ||
		    rawlen != sizeof(raw))
			return crypto_error(err, OTTER_E_CRYPTO, "reading ed25519 public key");
		hex = otter_malloc(2 * ED25519_KEYLEN + 1);
		if (!hex)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		hex_encode(raw, sizeof(raw), hex);
		*out = hex;
		return 0;
	}
	r = otter_key_public_pem(key, &pem, NULL, err);
	if (r < 0)
		return r;
	*out = (char *)pem;
	return 0;
}

int otter_key_generate(otter_key **out, otter_key_type type, otter_error *err)
{
	EVP_PKEY *pkey = NULL;

	switch (type) {
	case OTTER_KEY_ED25519:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case OTTER_KEY_ECDSA_P256:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case OTTER_KEY_RSA_PSS:
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)RSA_GEN_BITS);
		break;
	default:
		return otter_error_set(err, OTTER_E_INVALID, "unknown key type %d (known: 0 to %d)",
				       (int)type, (int)_OTTER_KEY_TYPE_MAX - 1);
	}
	if (!pkey)
		return crypto_error(err, OTTER_E_CRYPTO, "key generation");
	return key_wrap(out, pkey, true, err);
}

int otter_key_load_pem(otter_key **out, const uint8_t *pem, size_t len, const char *passphrase,
		       otter_error *err)
{
	_cleanup_(BIO_freep) BIO *bio = NULL;
	EVP_PKEY *pkey;

	if (len > INT32_MAX)
		return otter_error_set(err, OTTER_E_TOO_LARGE, "PEM data of %zu bytes, more than %d",
				       len, INT32_MAX);
	if (memmem(pem, len, "PRIVATE KEY-----", 16)) {
		bio = BIO_new_mem_buf(pem, (int)len);
		if (!bio)
			return crypto_error(err, OTTER_E_NOMEM, "BIO");
		/* A NULL callback with a NULL passphrase would prompt on the terminal: pass "". */
		pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL,
					       (void *)(passphrase ? passphrase : ""));
		if (!pkey) {
			if (memmem(pem, len, "ENCRYPTED PRIVATE KEY", 21))
				return crypto_error(err, OTTER_E_CRYPTO,
						    passphrase ? "cannot decrypt private key (wrong passphrase?)"
							       : "private key is encrypted: a passphrase is needed");
			return crypto_error(err, OTTER_E_FORMAT, "cannot read private key PEM");
		}
		return key_wrap(out, pkey, true, err);
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return crypto_error(err, OTTER_E_NOMEM, "BIO");
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (!pkey)
		return crypto_error(err, OTTER_E_FORMAT, "not a PEM public or private key");
	return key_wrap(out, pkey, false, err);
}

int otter_key_private_pem(const otter_key *key, const char *passphrase, uint8_t **out,
			  size_t *len, otter_error *err)
{
	_cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int ok;

	if (!key->has_private)
		return otter_error_set(err, OTTER_E_INVALID, "key has no private part");
	if (!bio)
		return crypto_error(err, OTTER_E_NOMEM, "BIO");
	if (passphrase)
		ok = PEM_write_bio_PKCS8PrivateKey(bio, key->pkey, EVP_aes_256_cbc(), NULL, 0, NULL,
						   (void *)passphrase);
	else
		ok = PEM_write_bio_PKCS8PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL);
	if (ok != 1)
		return crypto_error(err, OTTER_E_CRYPTO, "writing private key PEM");
	n = BIO_get_mem_data(bio, &data);
	if (n <= 0)
		return crypto_error(err, OTTER_E_CRYPTO, "writing private key PEM");
	*out = otter_malloc((size_t)n + 1);
	if (!*out)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	memcpy(*out, data, (size_t)n);
	(*out)[n] = '\0';
	OPENSSL_cleanse(data, (size_t)n);
	if (len)
		*len = (size_t)n;
	return 0;
}

/* Sets up ctx for signing or verifying with key's scheme. */
static int init_ctx(EVP_MD_CTX *ctx, const otter_key *key, bool sign)
{
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = key->type == OTTER_KEY_ED25519 ? NULL : EVP_sha256();
	int ok;

	if (sign)
		ok = EVP_DigestSignInit(ctx, &pctx, md, NULL, key->pkey);
	else
		ok = EVP_DigestVerifyInit(ctx, &pctx, md, NULL, key->pkey);
	if (ok != 1)
		return -1;
	if (key->type == OTTER_KEY_RSA_PSS) {
		if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, sign ? PSS_SALT_LEN
								: RSA_PSS_SALTLEN_AUTO) != 1)
			return -1;
	}
	return 0;
}

bool otter_key_verify(const otter_key *key, const uint8_t *msg, size_t len, const uint8_t *sig,
		      size_t siglen)
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
	int ok;

	if (!key || !sig || siglen == 0)
		return false;
	/* ed25519 signatures are exactly 64 bytes; anything else cannot be one. */
	if (key->type == OTTER_KEY_ED25519 && siglen != 64)
		return false;
	ctx = EVP_MD_CTX_new();
	if (!ctx || init_ctx(ctx, key, false) < 0) {
		ERR_clear_error();
		return false;
	}
	ok = EVP_DigestVerify(ctx, sig, siglen, msg, len);
	ERR_clear_error();
	return ok == 1;
}

int otter_key_sign(const otter_key *key, const uint8_t *msg, size_t len, uint8_t **sig,
		   size_t *siglen, otter_error *err)
{
	_cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
	_cleanup_free_ uint8_t *out = NULL;
	size_t n = 0;

	if (!key->has_private)
		return otter_error_set(err, OTTER_E_INVALID, "signing needs a private key");
	ctx = EVP_MD_CTX_new();
	if (!ctx || init_ctx(ctx, key, true) < 0)
		return crypto_error(err, OTTER_E_CRYPTO, "signature init");
	if (EVP_DigestSign(ctx, NULL, &n, msg, len) != 1)
		return crypto_error(err, OTTER_E_CRYPTO, "signature size");
	out = otter_malloc(n);
	if (!out)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	/* ed25519 is one-shot: the context cannot be reused after the size query. */
	if (key->type == OTTER_KEY_ED25519) {
		EVP_MD_CTX_free(ctx);
		ctx = EVP_MD_CTX_new();
		if (!ctx || init_ctx(ctx, key, true) < 0)
			return crypto_error(err, OTTER_E_CRYPTO, "signature init");
	}
	if (EVP_DigestSign(ctx, out, &n, msg, len) != 1)
		return crypto_error(err, OTTER_E_CRYPTO, "signing");
	*sig = TAKE_PTR(out);
	*siglen = n;
	return 0;
}
