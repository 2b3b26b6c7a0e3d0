/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Keys as TUF metadata writes them (tuf.md §4): the KEY object {"keytype", "scheme",
 * "keyval": {"public"}} and its key id. The key material itself is crypto's business
 * (otter_key_from_public, otter_key_public_text); the JSON is TUF's.
 */
#include <string.h>

#include <otter/crypto.h>
#include <otter/json.h>
#include <otter/tuf.h>

#include "lib/json/json-util.h"
#include "util/cleanup.h"
#include "util/strutil.h"

int otter_key_from_tuf(otter_key **out, const json_t *keyobj, otter_error *err)
{
	const char *keytype, *scheme, *pub;
	json_t *keyval;
	otter_key_type type;
	int r;

	if (!out || !json_is_object(keyobj))
		return otter_error_set(err, OTTER_E_FORMAT, "key is not an object");
	if ((r = json_get_string(keyobj, "keytype", true, "key", &keytype, err)) < 0 ||
	    (r = json_get_string(keyobj, "scheme", true, "key", &scheme, err)) < 0 ||
	    (r = json_get_member(keyobj, "keyval", JSON_OBJECT, true, "key", &keyval, err)) < 0 ||
	    (r = json_get_string(keyval, "public", true, "key: keyval", &pub, err)) < 0)
		return r;

	if (strcmp(keytype, "ed25519") == 0 && strcmp(scheme, "ed25519") == 0)
		type = OTTER_KEY_ED25519;
	else if ((strcmp(keytype, "ecdsa") == 0 || strcmp(keytype, "ecdsa-sha2-nistp256") == 0) &&
		 strcmp(scheme, "ecdsa-sha2-nistp256") == 0)
		type = OTTER_KEY_ECDSA_P256;
	else if (strcmp(keytype, "rsa") == 0 && strcmp(scheme, "rsassa-pss-sha256") == 0)
		type = OTTER_KEY_RSA_PSS;
	else {
		char t[64], s[64];
		str_sanitize(keytype, t, sizeof(t));
		str_sanitize(scheme, s, sizeof(s));
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
				       "key type '%s' with scheme '%s' is not supported", t, s);
	}
	return otter_key_from_public(out, type, pub, err);
}

int otter_key_to_tuf(const otter_key *key, json_t **out, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *obj = NULL;
	_cleanup_free_ char *pub = NULL;
	otter_key_type type = otter_key_get_type(key);
	int r;

	r = otter_key_public_text(key, &pub, err);
	if (r < 0)
		return r;
	obj = json_pack("{s:s, s:s, s:{s:s}}", "keytype", otter_key_type_name(type), "scheme",
			otter_key_scheme_name(type), "keyval", "public", pub);
	if (!obj)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	*out = TAKE_PTR(obj);
	return 0;
}

int otter_keyid_of_tuf(const json_t *keyobj, char out[OTTER_KEYID_HEX_LEN + 1], otter_error *err)
{
	_cleanup_free_ uint8_t *canon = NULL;
	size_t len;
	int r;

	r = otter_json_canonical(keyobj, &canon, &len, err);
	if (r < 0)
		return otter_error_prefix(err, r, "computing key id");
	return otter_hash_buf_hex(OTTER_HASH_SHA256, canon, len, out, err);
}
