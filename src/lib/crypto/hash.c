/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto-private.h"
#include "util/alloc.h"
#include "util/args.h"
#include "util/strutil.h"

struct otter_hash {
	EVP_MD_CTX *ctx;
	otter_hash_alg alg;
	bool finished;
};

int crypto_error(otter_error *err, int code, const char *what)
{
	unsigned long e = ERR_get_error();
	char detail[256] = "";

	if (e)
		ERR_error_string_n(e, detail, sizeof(detail));
	ERR_clear_error();
	if (detail[0])
		return otter_error_set(err, code, "%s: %s", what, detail);
	return otter_error_set(err, code, "%s", what);
}

int otter_hash_alg_from_name(const char *name, otter_hash_alg *out)
{
	if (strcmp(name, "sha256") == 0)
		*out = OTTER_HASH_SHA256;
	else if (strcmp(name, "sha512") == 0)
		*out = OTTER_HASH_SHA512;
	else
		return OTTER_E_NOT_SUPPORTED;
	return 0;
}

const char *otter_hash_alg_name(otter_hash_alg alg)
{
	return alg == OTTER_HASH_SHA512 ? "sha512" : "sha256";
}

size_t otter_hash_size(otter_hash_alg alg)
{
	return alg == OTTER_HASH_SHA512 ? 64 : 32;
}

static const EVP_MD *md_of(otter_hash_alg alg)
{
	return alg == OTTER_HASH_SHA512 ? EVP_sha512() : EVP_sha256();
}

int otter_hash_new(otter_hash **out, otter_hash_alg alg, otter_error *err)
{
	otter_hash *h;

	ARG_NONNULL(err, "hash", out);
	if (alg >= _OTTER_HASH_MAX)
		return otter_error_set(err, OTTER_E_INVALID,
				       "hash: invalid argument: algorithm %d (known: 0 to %d)",
				       (int)alg, (int)_OTTER_HASH_MAX - 1);
	h = otter_calloc(1, sizeof(*h));
	if (!h)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	h->alg = alg;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, md_of(alg), NULL) != 1) {
		otter_hash_free(h);
		return crypto_error(err, OTTER_E_CRYPTO, "hash init");
	}
	*out = h;
	return 0;
}

int otter_hash_update(otter_hash *h, const void *data, size_t len, otter_error *err)
{
	if (!h || h->finished)
		return otter_error_set(err, OTTER_E_INVALID, "hash: update after final");
	if (len && EVP_DigestUpdate(h->ctx, data, len) != 1)
		return crypto_error(err, OTTER_E_CRYPTO, "hash update");
	return 0;
}

int otter_hash_final(otter_hash *h, uint8_t *digest, otter_error *err)
{
	unsigned int n = 0;

	if (!h || h->finished)
		return otter_error_set(err, OTTER_E_INVALID, "hash: final called twice");
	h->finished = true;
	if (EVP_DigestFinal_ex(h->ctx, digest, &n) != 1 || n != otter_hash_size(h->alg))
		return crypto_error(err, OTTER_E_CRYPTO, "hash final");
	return 0;
}

otter_hash *otter_hash_free(otter_hash *h)
{
	if (h) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
	}
	return NULL;
}

int otter_hash_buf(otter_hash_alg alg, const void *data, size_t len, uint8_t *digest,
		   otter_error *err)
{
	unsigned int n = 0;

	if (alg >= _OTTER_HASH_MAX)
		return otter_error_set(err, OTTER_E_INVALID,
				       "hash: unknown algorithm %d (known: 0 to %d)", (int)alg,
				       (int)_OTTER_HASH_MAX - 1);
	if (EVP_Digest(data, len, digest, &n, md_of(alg), NULL) != 1)
		return crypto_error(err, OTTER_E_CRYPTO, "hash");
	return 0;
}

int otter_hash_buf_hex(otter_hash_alg alg, const void *data, size_t len, char *hex,
		       otter_error *err)
{
	uint8_t d[OTTER_HASH_MAX_SIZE];
	int r = otter_hash_buf(alg, data, len, d, err);

	if (r == 0)
		hex_encode(d, otter_hash_size(alg), hex);
	return r;
}
