/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_AUTH_H
#define OTTER_LIB_DIRECTOR_AUTH_H

/*
 * Device request authentication (docs/director-protocol.md, "Authentication"): every device
 * request carries
 *
 *     Otter-Signature: keyid="<64 hex>", time=<unix seconds>, sig="<base64>"
 *
 * where sig is the signature by the ECU key named by keyid (ed25519, or ecdsa-p256 with
 * SHA-256, DER) over
 *
 *     "otter-director-v1\n" METHOD "\n" PATH "\n" TIME "\n" hex(sha256(BODY))
 *
 * PATH is the request path as sent (no query string). The server looks the key up among the
 * registered ECU keys and accepts the request when the signature verifies and |time - now| is
 * at most the allowed skew. Everything here is pure: no database, no network.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/crypto.h>
#include <otter/error.h>

#define DIR_AUTH_HEADER "Otter-Signature"
#define DIR_AUTH_PREFIX "otter-director-v1"
#define DIR_AUTH_MAX_HEADER 1024u
#define DIR_AUTH_MAX_SIG 256u /* bytes of a decoded signature (ed25519 64, ECDSA DER <= 72) */
#define DIR_AUTH_DEFAULT_SKEW 300

/* Longest id a person chooses (device id, ECU serial, hardware id, token id). */
#define DIR_ID_MAX 64u

typedef struct dir_sig_header {
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	int64_t time;
	uint8_t sig[DIR_AUTH_MAX_SIG];
	size_t siglen;
} dir_sig_header;

/* True for 1..DIR_ID_MAX bytes of [A-Za-z0-9._:-]. */
bool dir_id_ok(const char *s);

/* Strict base64 (RFC 4648, with padding, no whitespace). decode: OTTER_E_FORMAT on bad input
 * or when the result would exceed max bytes. Outputs are malloc()ed (encode NUL-terminated). */
int dir_b64_encode(const uint8_t *in, size_t len, char **out, otter_error *err);
int dir_b64_decode(const char *in, size_t max, uint8_t **out, size_t *len, otter_error *err);

/* Parses an Otter-Signature value: the three parameters, each exactly once, any order,
 * separated by ',' and optional spaces. OTTER_E_FORMAT says which part is wrong. */
int dir_sig_header_parse(const char *value, dir_sig_header *out, otter_error *err);

/* The string a request signature covers (NUL-terminated, malloc()ed). */
int dir_sig_message(const char *method, const char *path, int64_t time, const uint8_t *body,
		    size_t body_len, char **out, otter_error *err);

/*
 * Checks a parsed header against key for this request: OTTER_E_EXPIRED when |time - now| >
 * max_skew, OTTER_E_SIGNATURE when the signature does not verify.
 */
int dir_sig_verify(const otter_key *key, const dir_sig_header *h, const char *method,
		   const char *path, const uint8_t *body, size_t body_len, int64_t now,
		   int64_t max_skew, otter_error *err);

/* Signs a request (clients and tests): the header value into *out (malloc()ed). */
int dir_sig_sign(const otter_key *key, const char *method, const char *path, int64_t time,
		 const uint8_t *body, size_t body_len, char **out, otter_error *err);

/*
 * An ECU public key as registered: a PEM SubjectPublicKeyInfo of key type key_type
 * ("ed25519" or "ecdsa", also "ecdsa-p256"); other types (RSA) are refused. keyid_out
 * (optional) gets its TUF key id. OTTER_E_FORMAT / OTTER_E_NOT_SUPPORTED say what is wrong.
 */
int dir_ecu_key_load(const char *key_type, const char *pem, otter_key **out,
		     char keyid_out[OTTER_KEYID_HEX_LEN + 1], otter_error *err);

/*
 * A bounded cache of parsed ECU keys, for one thread (not thread-safe): parsing a PEM key
 * costs far more than verifying a request's signature with it (OpenSSL's decoders). A fixed
 * number of slots, two-way set associative by the key id (a SHA-256, so spread evenly); a
 * full set replaces its least recently used entry. An entry is used only when the key id,
 * the key type and the whole PEM text are the ones the caller read from the database for
 * this request, so it is a memo of dir_ecu_key_load and can never answer with a key the
 * database no longer holds for that id: a removed or re-registered ECU needs no
 * invalidation.
 */
#define DIR_KEY_CACHE_SLOTS 4096u
typedef struct dir_key_cache dir_key_cache;

int dir_key_cache_new(dir_key_cache **out, otter_error *err);
void dir_key_cache_free(dir_key_cache *c);
/*
 * The parsed key of (keyid, key_type, pem) as dir_ecu_key_load makes it, from the cache or
 * parsed and remembered; c NULL: parsed into *owned. *key is borrowed from the cache until
 * the next call on c; *owned (when set) is the caller's to free.
 */
int dir_key_cache_get(dir_key_cache *c, const char *keyid, const char *key_type,
		      const char *pem, const otter_key **key, otter_key **owned, otter_error *err);
/* Hits and misses so far (tests, diagnostics). */
void dir_key_cache_stats(const dir_key_cache *c, uint64_t *hits, uint64_t *misses);

/* Constant-time comparison of two buffers of the same length. */
bool dir_ct_equal(const void *a, const void *b, size_t n);

#endif
