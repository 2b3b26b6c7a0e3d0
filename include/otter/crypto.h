/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_CRYPTO_H
#define OTTER_CRYPTO_H

/*
 * Hashes, keys and signatures (OpenSSL 3 EVP underneath).
 *
 * Key types are the three TUF recommends (tuf.md §4.1):
 *   ed25519 / ed25519                 keyval.public = 64 hex chars (raw key)
 *   ecdsa / ecdsa-sha2-nistp256       keyval.public = PEM SubjectPublicKeyInfo, signature DER
 *   rsa / rsassa-pss-sha256           keyval.public = PEM SubjectPublicKeyInfo, >= 2048 bits;
 *                                     signed with salt length 32, verified with any salt length
 * The legacy keytype "ecdsa-sha2-nistp256" is accepted as an alias of "ecdsa".
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- hashes ---- */

typedef enum otter_hash_alg {
	OTTER_HASH_SHA256,
	OTTER_HASH_SHA512,
	_OTTER_HASH_MAX,
} otter_hash_alg;

#define OTTER_HASH_MAX_SIZE 64

/* "sha256" / "sha512" -> alg; OTTER_E_NOT_SUPPORTED for anything else. */
OTTER_PUBLIC int otter_hash_alg_from_name(const char *name, otter_hash_alg *out);
OTTER_PUBLIC const char *otter_hash_alg_name(otter_hash_alg alg);
OTTER_PUBLIC size_t otter_hash_size(otter_hash_alg alg);

/* A streaming hash. */
typedef struct otter_hash otter_hash;
OTTER_PUBLIC int otter_hash_new(otter_hash **out, otter_hash_alg alg, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC int otter_hash_update(otter_hash *h, const void *data, size_t len, otter_error *err);
/* Writes otter_hash_size() bytes to digest. The hash cannot be updated afterwards. */
OTTER_PUBLIC int otter_hash_final(otter_hash *h, uint8_t *digest, otter_error *err);
OTTER_PUBLIC otter_hash *otter_hash_free(otter_hash *h);

/* One-shot: digest of a buffer; hex variant writes 2*size+1 chars. */
OTTER_PUBLIC int otter_hash_buf(otter_hash_alg alg, const void *data, size_t len,
				uint8_t *digest, otter_error *err);
OTTER_PUBLIC int otter_hash_buf_hex(otter_hash_alg alg, const void *data, size_t len,
				    char *hex, otter_error *err);

/* ---- keys ---- */

typedef enum otter_key_type {
	OTTER_KEY_ED25519,
	OTTER_KEY_ECDSA_P256,
	OTTER_KEY_RSA_PSS,
	_OTTER_KEY_TYPE_MAX,
} otter_key_type;

/* "ed25519", "ecdsa" (also "ecdsa-p256", "ecdsa-sha2-nistp256"), "rsa" (also "rsa-pss"). */
OTTER_PUBLIC int otter_key_type_from_name(const char *name, otter_key_type *out);
OTTER_PUBLIC const char *otter_key_type_name(otter_key_type type); /* TUF keytype */
OTTER_PUBLIC const char *otter_key_scheme_name(otter_key_type type); /* TUF scheme */

typedef struct otter_key otter_key;

#define OTTER_KEYID_HEX_LEN 64

/*
 * A public key from its text form as TUF's keyval.public holds it (tuf.md §4.1): 64 hex
 * characters (the raw key) for ed25519, a PEM SubjectPublicKeyInfo otherwise.
 * OTTER_E_FORMAT when the material is not a key of that type. The TUF KEY object itself
 * (JSON) is read and written by the tuf module (otter_key_from_tuf in tuf.h).
 */
OTTER_PUBLIC int otter_key_from_public(otter_key **out, otter_key_type type, const char *pub,
				       otter_error *err) OTTER_WARN_UNUSED_RESULT;
/* The text form of a public key (hex for ed25519, PEM otherwise), NUL-terminated; caller frees. */
OTTER_PUBLIC int otter_key_public_text(const otter_key *key, char **out, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

OTTER_PUBLIC int otter_key_generate(otter_key **out, otter_key_type type, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

/*
 * PEM files: private keys are PKCS#8, encrypted with AES-256-CBC when passphrase is not NULL;
 * public keys are SubjectPublicKeyInfo. Loading detects the type; a key of another type than
 * ed25519, P-256 or RSA >= 2048 bits is refused. Returned buffers are NUL-terminated.
 */
OTTER_PUBLIC int otter_key_load_pem(otter_key **out, const uint8_t *pem, size_t len,
				    const char *passphrase, otter_error *err) OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC int otter_key_private_pem(const otter_key *key, const char *passphrase,
				       uint8_t **out, size_t *len, otter_error *err);
OTTER_PUBLIC int otter_key_public_pem(const otter_key *key, uint8_t **out, size_t *len,
				      otter_error *err);

OTTER_PUBLIC otter_key_type otter_key_get_type(const otter_key *key);
OTTER_PUBLIC bool otter_key_has_private(const otter_key *key);
/* SHA-256 of the DER public key: equal for the same key material whatever its encoding. */
OTTER_PUBLIC const uint8_t *otter_key_fingerprint(const otter_key *key);

/* True only if sig is a valid signature of msg by key. Never fails otherwise. */
OTTER_PUBLIC bool otter_key_verify(const otter_key *key, const uint8_t *msg, size_t len,
				   const uint8_t *sig, size_t siglen);
/* Signs msg with the private key. *sig is malloc()ed. */
OTTER_PUBLIC int otter_key_sign(const otter_key *key, const uint8_t *msg, size_t len,
				uint8_t **sig, size_t *siglen, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

OTTER_PUBLIC otter_key *otter_key_free(otter_key *key);

#ifdef __cplusplus
}
#endif

#endif
