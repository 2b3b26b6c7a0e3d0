/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <otter/repo.h>

#include "lib/json/json-util.h"
#include "lib/limits.h"
#include "lib/tuf/tuf-metadata.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(tuf_metadata, tuf_metadata_free)
DEFINE_CLEANUP_FUNC(otter_hash, otter_hash_free)

/* Role names become parts of file names ("V.<name>.json"): keep them well below NAME_MAX. */
#define ROLE_NAME_MAX 200u

static const char *const top_level_names[] = {"root", "timestamp", "snapshot", "targets"};

static int oom(otter_error *err)
{
	return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

/* ---- names ---- */

int otter_repo_top_level_type(const char *name)
{
	for (int i = 0; i < (int)ELEMENTSOF(top_level_names); i++)
		if (strcmp(name, top_level_names[i]) == 0)
			return i;
	return -1;
}

static bool name_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

bool otter_repo_role_name_ok(const char *name)
{
	size_t n = strnlen(name, ROLE_NAME_MAX + 1);

	if (n == 0 || n > ROLE_NAME_MAX || name[0] == '.' || otter_repo_top_level_type(name) >= 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char_ok(name[i]))
			return false;
	return true;
}

static bool target_char_ok(char c)
{
	return name_char_ok(c) || c == '~' || c == '+' || c == '=' || c == ',' || c == '@' ||
	       c == '/';
}

bool otter_repo_target_path_ok(const char *path)
{
	if (!target_path_is_safe(path, OTTER_TUF_MAX_TARGET_PATH))
		return false;
	for (const char *p = path; *p; p++)
		if (!target_char_ok(*p))
			return false;
	return true;
}

int otter_repo_metadata_filename(const char *role, uint64_t version, bool consistent, char **out,
				 otter_error *err)
{
	_cleanup_free_ char *enc = percent_encode(role);
	char *s;
	size_t n;

	if (!enc)
		return oom(err);
	n = strlen(enc) + 32;
	s = otter_malloc(n);
	if (!s)
		return oom(err);
	if (strcmp(role, "timestamp") == 0)
		strfmt(s, n, "timestamp.json");
	else if (strcmp(role, "root") == 0 || consistent)
		strfmt(s, n, "%" PRIu64 ".%s.json", version, enc);
	else
		strfmt(s, n, "%s.json", enc);
	*out = s;
	return 0;
}

char **otter_repo_strv_free(char **v)
{
	if (v) {
		for (char **p = v; *p; p++)
			free(*p);
		free(v);
	}
	return NULL;
}

DEFINE_CLEANUP_FUNC(char *, otter_repo_strv_free)

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int otter_repo_target_filenames(const char *path, const json_t *hashes, bool consistent,
				char ***out, otter_error *err)
{
	_cleanup_(otter_repo_strv_freep) char **v = NULL;
	_cleanup_free_ const char **algs = NULL;
	const char *slash = strrchr(path, '/'), *alg;
	size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0, n = 0, i = 0;
	json_t *val;

	if (!consistent) {
		v = otter_calloc(2, sizeof(*v));
		if (!v || !(v[0] = otter_strdup(path)))
			return oom(err);
		*out = TAKE_PTR(v);
		return 0;
	}
	n = json_object_size(hashes);
	if (n == 0 || n > OTTER_TUF_MAX_HASHES)
		return otter_error_set(err, OTTER_E_FORMAT, "target '%s': no usable hashes", path);
	algs = otter_reallocarray(NULL, n, sizeof(*algs));
	v = otter_calloc(n + 1, sizeof(*v));
	if (!algs || !v)
		return oom(err);
	json_object_foreach((json_t *)hashes, alg, val)
		algs[i++] = alg;
	qsort(algs, n, sizeof(*algs), cmp_strp);
	for (i = 0; i < n; i++) {
		const char *hex = json_string_value(json_object_get(hashes, algs[i]));
		size_t len;

		if (!hex || !is_lower_hex(hex, strlen(hex)) || hex[0] == '\0')
			return otter_error_set(err, OTTER_E_FORMAT,
					       "target '%s': %s is not lower-case hex", path,
					       algs[i]);
		len = dirlen + strlen(hex) + 1 + strlen(path + dirlen) + 1;
		v[i] = otter_malloc(len);
		if (!v[i])
			return oom(err);
		strfmt(v[i], len, "%.*s%s.%s", (int)dirlen, path, hex, path + dirlen);
	}
	*out = TAKE_PTR(v);
	return 0;
}

int otter_repo_succinct_bin_names(const char *prefix, unsigned bits, char ***out, otter_error *err)
{
	_cleanup_(otter_repo_strv_freep) char **v = NULL;
	unsigned width = (bits + 3) / 4;
	size_t count, len;

	if (bits < 1 || bits > OTTER_REPO_MAX_BIN_BITS)
		return otter_error_set(err, OTTER_E_INVALID,
				       "succinct delegation: bit length %u is outside 1..%u", bits,
				       OTTER_REPO_MAX_BIN_BITS);
	count = (size_t)1 << bits;
	v = otter_calloc(count + 1, sizeof(*v));
	if (!v)
		return oom(err);
	len = strlen(prefix) + 1 + width + 1;
	for (size_t i = 0; i < count; i++) {
		v[i] = otter_malloc(len);
		if (!v[i])
			return oom(err);
		strfmt(v[i], len, "%s-%0*zx", prefix, (int)width, i);
	}
	*out = TAKE_PTR(v);
	return 0;
}

/* ---- signed payloads ---- */

static int set_new(json_t *obj, const char *key, json_t *v, otter_error *err)
{
	if (!v || json_object_set_new(obj, key, v) < 0)
		return oom(err);
	return 0;
}

int otter_repo_signed_set(json_t *signed_obj, uint64_t version, int64_t expires, otter_error *err)
{
	char t[32];
	int r;

	if (version < 1 || version > INT64_MAX)
		return otter_error_set(err, OTTER_E_INVALID, "version %" PRIu64 " is out of range",
				       version);
	utc_format(expires, t);
	if ((r = set_new(signed_obj, "version", json_integer((json_int_t)version), err)) < 0 ||
	    (r = set_new(signed_obj, "expires", json_string(t), err)) < 0)
		return r;
	return 0;
}

int otter_repo_signed_get(const json_t *signed_obj, uint64_t *version, int64_t *expires,
			  otter_error *err)
{
	const char *s;
	int64_t v;
	int r;

	r = json_get_int(signed_obj, "version", true, "signed", 1, INT64_MAX, &v, err);
	if (r < 0)
		return r;
	r = json_get_string(signed_obj, "expires", true, "signed", &s, err);
	if (r < 0)
		return r;
	if (expires && utc_parse(s, expires) < 0)
		return otter_error_set(err, OTTER_E_FORMAT, "expires '%.40s' is not a UTC time", s);
	if (version)
		*version = (uint64_t)v;
	return 0;
}

int otter_repo_signed_new(json_t **out, otter_repo_role_type type, int64_t expires, bool consistent,
			  otter_error *err)
{
	_cleanup_(json_decrefp) json_t *s = json_object();
	int r;

	if (!s)
		return oom(err);
	if (type >= OTTER_REPO_ROLE_TYPES)
		return otter_error_set(err, OTTER_E_INVALID, "unknown role type");
	if ((r = set_new(s, "_type", json_string(top_level_names[type]), err)) < 0 ||
	    (r = set_new(s, "spec_version", json_string(OTTER_REPO_SPEC_VERSION), err)) < 0 ||
	    (r = otter_repo_signed_set(s, 1, expires, err)) < 0)
		return r;
	switch (type) {
	case OTTER_REPO_ROOT: {
		json_t *roles = json_object();

		if ((r = set_new(s, "consistent_snapshot", json_boolean(consistent), err)) < 0 ||
		    (r = set_new(s, "keys", json_object(), err)) < 0 ||
		    (r = set_new(s, "roles", roles, err)) < 0)
			return r;
		for (size_t i = 0; i < ELEMENTSOF(top_level_names); i++) {
			json_t *role = json_pack("{s:[], s:i}", "keyids", "threshold", 1);
			if ((r = set_new(roles, top_level_names[i], role, err)) < 0)
				return r;
		}
		break;
	}
	case OTTER_REPO_TARGETS:
		r = set_new(s, "targets", json_object(), err);
		break;
	default:
		r = set_new(s, "meta", json_object(), err);
		break;
	}
	if (r < 0)
		return r;
	*out = TAKE_PTR(s);
	return 0;
}

/* ---- envelopes ---- */

int otter_repo_envelope_new(json_t **out, json_t *signed_obj, otter_error *err)
{
	json_t *env;

	if (!json_is_object(signed_obj))
		return otter_error_set(err, OTTER_E_INVALID, "signed payload is not an object");
	env = json_pack("{s:[], s:O}", "signatures", "signed", signed_obj);
	if (!env)
		return oom(err);
	*out = env;
	return 0;
}

json_t *otter_repo_envelope_signed(const json_t *env)
{
	json_t *s = json_object_get(env, "signed");

	return json_is_object(s) ? s : NULL;
}

int otter_repo_envelope_parse(json_t **out, otter_repo_role_type *type_out, const uint8_t *buf,
			      size_t len, const char *what, otter_error *err)
{
	_cleanup_(tuf_metadata_freep) tuf_metadata *md = NULL;
	_cleanup_(json_decrefp) json_t *doc = NULL;
	const char *type;
	int t, r;

	r = otter_json_parse(&doc, buf, len, OTTER_TUF_METADATA_HARD_MAX, err);
	if (r < 0)
		return otter_error_prefix(err, r, "%s", what);
	type = json_string_value(json_object_get(json_object_get(doc, "signed"), "_type"));
	t = type ? otter_repo_top_level_type(type) : -1;
	if (t < 0)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: not TUF metadata (no known signed._type)", what);
	r = tuf_metadata_parse(&md, (tuf_role_type)t, buf, len, what, err);
	if (r < 0)
		return r;
	if (type_out)
		*type_out = (otter_repo_role_type)t;
	*out = TAKE_PTR(doc);
	return 0;
}

int otter_repo_keyid(const otter_key *key, char keyid[OTTER_KEYID_HEX_LEN + 1], json_t **keyobj_out,
		     otter_error *err)
{
	_cleanup_(json_decrefp) json_t *obj = NULL;
	int r;

	r = otter_key_to_tuf(key, &obj, err);
	if (r < 0)
		return r;
	r = otter_keyid_of_tuf(obj, keyid, err);
	if (r < 0)
		return r;
	if (keyobj_out)
		*keyobj_out = TAKE_PTR(obj);
	return 0;
}

static json_t *signatures_of(json_t *env, otter_error *err)
{
	json_t *sigs = json_object_get(env, "signatures");

	if (!json_is_array(sigs)) {
		otter_error_set(err, OTTER_E_FORMAT, "envelope has no \"signatures\" array");
		return NULL;
	}
	return sigs;
}

static ssize_t find_signature(const json_t *sigs, const char *keyid)
{
	size_t i;
	json_t *s;

	json_array_foreach(sigs, i, s) {
		const char *k = json_string_value(json_object_get(s, "keyid"));
		if (k && strcmp(k, keyid) == 0)
			return (ssize_t)i;
	}
	return -1;
}

int otter_repo_sign(json_t *env, const otter_key *key, char keyid_out[OTTER_KEYID_HEX_LEN + 1],
		    otter_error *err)
{
	_cleanup_free_ uint8_t *canon = NULL, *sig = NULL;
	_cleanup_free_ char *hex = NULL;
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	json_t *sigs, *signed_obj = otter_repo_envelope_signed(env), *entry;
	size_t canon_len, siglen;
	ssize_t idx;
	int r;

	if (!signed_obj)
		return otter_error_set(err, OTTER_E_FORMAT, "envelope has no \"signed\" object");
	sigs = signatures_of(env, err);
	if (!sigs)
		return OTTER_E_FORMAT;
	if (!otter_key_has_private(key))
		return otter_error_set(err, OTTER_E_INVALID,
				       "signing needs a private key, not a public one");
	r = otter_repo_keyid(key, keyid, NULL, err);
	if (r < 0)
		return r;
	r = otter_json_canonical(signed_obj, &canon, &canon_len, err);
	if (r < 0)
		return r;
	r = otter_key_sign(key, canon, canon_len, &sig, &siglen, err);
	if (r < 0)
		return otter_error_prefix(err, r, "signing with key %.16s", keyid);
	hex = otter_malloc(2 * siglen + 1);
	if (!hex)
		return oom(err);
	hex_encode(sig, siglen, hex);
	entry = json_pack("{s:s, s:s}", "keyid", keyid, "sig", hex);
	if (!entry)
		return oom(err);
	idx = find_signature(sigs, keyid);
	if (idx >= 0)
		r = json_array_set_new(sigs, (size_t)idx, entry);
	else
		r = json_array_append_new(sigs, entry);
	if (r < 0)
		return oom(err);
	if (keyid_out)
		memcpy(keyid_out, keyid, sizeof(keyid));
	return 0;
}

bool otter_repo_same_signed(const json_t *a, const json_t *b)
{
	_cleanup_free_ uint8_t *ca = NULL, *cb = NULL;
	json_t *sa = otter_repo_envelope_signed(a), *sb = otter_repo_envelope_signed(b);
	size_t la, lb;

	if (!sa || !sb || otter_json_canonical(sa, &ca, &la, NULL) < 0 ||
	    otter_json_canonical(sb, &cb, &lb, NULL) < 0)
		return false;
	return la == lb && memcmp(ca, cb, la) == 0;
}

int otter_repo_merge_signatures(json_t *dst, const json_t *src, size_t *added, otter_error *err)
{
	json_t *dsigs = signatures_of(dst, err), *ssigs, *s;
	size_t i, n = 0;

	if (!dsigs)
		return OTTER_E_FORMAT;
	ssigs = signatures_of((json_t *)src, err);
	if (!ssigs)
		return OTTER_E_FORMAT;
	if (!otter_repo_same_signed(dst, src))
		return otter_error_set(err, OTTER_E_INVALID,
				       "the signed payloads differ: these signatures are over other "
				       "content");
	json_array_foreach(ssigs, i, s) {
		const char *keyid = json_string_value(json_object_get(s, "keyid"));
		const char *sig = json_string_value(json_object_get(s, "sig"));

		if (!keyid || !sig)
			return otter_error_set(err, OTTER_E_FORMAT, "signature %zu is malformed", i);
		if (find_signature(dsigs, keyid) >= 0)
			continue;
		if (json_array_append_new(dsigs, json_pack("{s:s, s:s}", "keyid", keyid, "sig",
							   sig)) < 0)
			return oom(err);
		n++;
	}
	if (added)
		*added = n;
	return 0;
}

size_t otter_repo_clear_signatures(json_t *env)
{
	json_t *sigs = json_object_get(env, "signatures");
	size_t n = json_array_size(sigs);

	if (sigs)
		json_array_clear(sigs);
	return n;
}

static int check_string(const char *s, size_t len, bool is_key, const char *what,
			otter_error *err)
{
	/* PEM public keys carry newlines, as every TUF tool writes them; nothing else may. */
	bool pem = !is_key && strncmp(s, "-----BEGIN ", 11) == 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 0x20 && c < 0x7f) || (pem && c == '\n'))
			continue;
		char q[64];
		str_sanitize(s, q, sizeof(q));
		return otter_error_set(err, OTTER_E_INVALID,
				       "%s: %s '%s' holds a non-ASCII or control character; "
				       "metadata is kept to printable ASCII",
				       what, is_key ? "name" : "string", q);
	}
	return 0;
}

int otter_repo_check_ascii(const json_t *v, const char *what, otter_error *err)
{
	const char *key;
	json_t *child;
	size_t i;
	int r;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, key, child) {
			if ((r = check_string(key, strlen(key), true, what, err)) < 0 ||
			    (r = otter_repo_check_ascii(child, what, err)) < 0)
				return r;
		}
		return 0;
	case JSON_ARRAY:
		json_array_foreach(v, i, child)
			if ((r = otter_repo_check_ascii(child, what, err)) < 0)
				return r;
		return 0;
	case JSON_STRING:
		return check_string(json_string_value(v), json_string_length(v), false, what, err);
	case JSON_REAL:
		return otter_error_set(err, OTTER_E_INVALID,
				       "%s: floating-point numbers cannot be signed", what);
	default:
		return 0;
	}
}

int otter_repo_serialize(const json_t *env, uint8_t **out, size_t *len, otter_error *err)
{
	_cleanup_free_ uint8_t *canon = NULL;
	json_t *s = otter_repo_envelope_signed(env);
	size_t clen;
	int r;

	if (!s || !json_is_array(json_object_get(env, "signatures")))
		return otter_error_set(err, OTTER_E_FORMAT, "not a metadata envelope");
	r = otter_repo_check_ascii(env, "metadata", err);
	if (r < 0)
		return r;
	r = otter_json_canonical(s, &canon, &clen, err);
	if (r < 0)
		return r;
	return otter_json_pretty(env, out, len, err);
}

/* ---- entries ---- */

int otter_repo_metafile(json_t **out, uint64_t version, const uint8_t *data, size_t len,
			otter_error *err)
{
	char h256[65], h512[129];
	json_t *m;
	int r;

	if (version < 1 || version > INT64_MAX)
		return otter_error_set(err, OTTER_E_INVALID, "version out of range");
	if ((r = otter_hash_buf_hex(OTTER_HASH_SHA256, data, len, h256, err)) < 0 ||
	    (r = otter_hash_buf_hex(OTTER_HASH_SHA512, data, len, h512, err)) < 0)
		return r;
	m = json_pack("{s:I, s:I, s:{s:s, s:s}}", "version", (json_int_t)version, "length",
		      (json_int_t)len, "hashes", "sha256", h256, "sha512", h512);
	if (!m)
		return oom(err);
	*out = m;
	return 0;
}

int otter_repo_digest_fd(int in_fd, int out_fd, uint64_t max, otter_repo_digest *out,
			 const char *what, otter_error *err)
{
	_cleanup_(otter_hash_freep) otter_hash *h256 = NULL;
	_cleanup_(otter_hash_freep) otter_hash *h512 = NULL;
	_cleanup_free_ uint8_t *chunk = otter_malloc(64 * 1024);
	uint8_t d[64];
	uint64_t total = 0;
	int r;

	if (!chunk)
		return oom(err);
	if ((r = otter_hash_new(&h256, OTTER_HASH_SHA256, err)) < 0 ||
	    (r = otter_hash_new(&h512, OTTER_HASH_SHA512, err)) < 0)
		return r;
	for (;;) {
		ssize_t n = read(in_fd, chunk, 64 * 1024);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return otter_error_set_errno(err, errno, "reading '%s'", what);
		}
		if (n == 0)
			break;
		if ((uint64_t)n > max - total)
			return otter_error_set(err, OTTER_E_TOO_LARGE,
					       "'%s' is larger than the limit of %" PRIu64 " bytes",
					       what, max);
		total += (uint64_t)n;
		if ((r = otter_hash_update(h256, chunk, (size_t)n, err)) < 0 ||
		    (r = otter_hash_update(h512, chunk, (size_t)n, err)) < 0)
			return r;
		if (out_fd >= 0 && (r = fileio_write_all(out_fd, chunk, (size_t)n, err)) < 0)
			return otter_error_prefix(err, r, "copying '%s'", what);
	}
	if ((r = otter_hash_final(h256, d, err)) < 0)
		return r;
	hex_encode(d, 32, out->sha256);
	if ((r = otter_hash_final(h512, d, err)) < 0)
		return r;
	hex_encode(d, 64, out->sha512);
	out->length = total;
	return 0;
}

int otter_repo_targetfile(json_t **out, const otter_repo_digest *d, const json_t *custom,
			  otter_error *err)
{
	_cleanup_(json_decrefp) json_t *t = NULL;

	if (d->length > OTTER_TUF_TARGET_MAX_LENGTH)
		return otter_error_set(err, OTTER_E_TOO_LARGE, "target too large");
	t = json_pack("{s:I, s:{s:s, s:s}}", "length", (json_int_t)d->length, "hashes", "sha256",
		      d->sha256, "sha512", d->sha512);
	if (!t)
		return oom(err);
	if (custom) {
		if (!json_is_object(custom))
			return otter_error_set(err, OTTER_E_INVALID,
					       "custom target data must be a JSON object");
		int r = otter_repo_check_ascii(custom, "custom", err);
		if (r < 0)
			return r;
		if (json_object_set_new(t, "custom", json_deep_copy(custom)) < 0)
			return oom(err);
	}
	*out = TAKE_PTR(t);
	return 0;
}

/* ---- keys and roles ---- */

int otter_repo_keys_add(json_t *keys, const otter_key *key, char keyid_out[OTTER_KEYID_HEX_LEN + 1],
			otter_error *err)
{
	_cleanup_(json_decrefp) json_t *obj = NULL;
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	json_t *old;
	int r;

	if (!json_is_object(keys))
		return otter_error_set(err, OTTER_E_FORMAT, "\"keys\" is not an object");
	r = otter_repo_keyid(key, keyid, &obj, err);
	if (r < 0)
		return r;
	old = json_object_get(keys, keyid);
	if (old && !json_equal(old, obj))
		return otter_error_set(err, OTTER_E_EXISTS,
				       "key %s is already listed with other content", keyid);
	if (!old && json_object_set(keys, keyid, obj) < 0)
		return oom(err);
	if (keyid_out)
		memcpy(keyid_out, keyid, sizeof(keyid));
	return 0;
}

json_t *otter_repo_root_role(const json_t *root_signed, otter_repo_role_type type)
{
	if (type >= OTTER_REPO_ROLE_TYPES)
		return NULL;
	return json_object_get(json_object_get(root_signed, "roles"), top_level_names[type]);
}

static ssize_t keyid_index(const json_t *role, const char *keyid)
{
	json_t *ids = json_object_get(role, "keyids"), *v;
	size_t i;

	json_array_foreach(ids, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), keyid) == 0)
			return (ssize_t)i;
	return -1;
}

bool otter_repo_role_has_keyid(const json_t *role, const char *keyid)
{
	return keyid_index(role, keyid) >= 0;
}

int otter_repo_role_add_keyid(json_t *role, const char *keyid, otter_error *err)
{
	json_t *ids = json_object_get(role, "keyids");

	if (!json_is_array(ids))
		return otter_error_set(err, OTTER_E_FORMAT, "role has no \"keyids\" array");
	if (keyid_index(role, keyid) >= 0)
		return 0;
	if (json_array_size(ids) >= OTTER_TUF_MAX_ROLE_KEYIDS)
		return otter_error_set(err, OTTER_E_LIMIT, "role has too many keys");
	if (json_array_append_new(ids, json_string(keyid)) < 0)
		return oom(err);
	return 0;
}

int otter_repo_role_remove_keyid(json_t *role, const char *keyid, const char *what,
				 otter_error *err)
{
	ssize_t i = keyid_index(role, keyid);

	if (i < 0)
		return otter_error_set(err, OTTER_E_NOT_FOUND, "%s: key %.64s is not one of its keys",
				       what, keyid);
	json_array_remove(json_object_get(role, "keyids"), (size_t)i);
	return 0;
}

int otter_repo_role_set_threshold(json_t *role, uint64_t threshold, const char *what,
				  otter_error *err)
{
	size_t n = json_array_size(json_object_get(role, "keyids"));
	json_int_t cur = json_integer_value(json_object_get(role, "threshold"));

	if (threshold == 0)
		threshold = cur > 0 ? (uint64_t)cur : 1;
	if (threshold < 1 || threshold > n)
		return otter_error_set(err, OTTER_E_INVALID,
				       "%s: a threshold of %" PRIu64 " with %zu key%s could never be "
				       "met",
				       what, threshold, n, n == 1 ? "" : "s");
	if (json_object_set_new(role, "threshold", json_integer((json_int_t)threshold)) < 0)
		return oom(err);
	return 0;
}

/* Removes from keys every member not in the keyids arrays of the given role objects. */
static void prune_keys(json_t *keys, json_t *const *roles, size_t n_roles)
{
	const char *keyid;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(keys, tmp, keyid, v) {
		bool used = false;
		for (size_t i = 0; i < n_roles && !used; i++)
			used = keyid_index(roles[i], keyid) >= 0;
		if (!used)
			json_object_del(keys, keyid);
	}
}

void otter_repo_root_prune_keys(json_t *root_signed)
{
	json_t *roles[OTTER_REPO_ROLE_TYPES];

	for (size_t i = 0; i < OTTER_REPO_ROLE_TYPES; i++)
		roles[i] = otter_repo_root_role(root_signed, (otter_repo_role_type)i);
	prune_keys(json_object_get(root_signed, "keys"), roles, OTTER_REPO_ROLE_TYPES);
}

/* ---- delegations ---- */

json_t *otter_repo_delegation_find(const json_t *targets_signed, const char *name)
{
	json_t *roles = json_object_get(json_object_get(targets_signed, "delegations"), "roles");
	json_t *r;
	size_t i;

	json_array_foreach(roles, i, r) {
		const char *n = json_string_value(json_object_get(r, "name"));
		if (n && strcmp(n, name) == 0)
			return r;
	}
	return NULL;
}

void otter_repo_delegations_prune_keys(json_t *targets_signed)
{
	json_t *dele = json_object_get(targets_signed, "delegations");
	json_t *roles = json_object_get(dele, "roles"), *succinct;
	_cleanup_free_ json_t **list = NULL;
	size_t n = json_array_size(roles);

	succinct = json_object_get(dele, "succinct_roles");
	list = otter_reallocarray(NULL, n + 1, sizeof(*list));
	if (!list)
		return;
	for (size_t i = 0; i < n; i++)
		list[i] = json_array_get(roles, i);
	if (succinct)
		list[n++] = succinct;
	prune_keys(json_object_get(dele, "keys"), list, n);
}

static bool pattern_ok(const char *p)
{
	size_t n = strnlen(p, OTTER_TUF_MAX_TARGET_PATH + 1);

	if (n == 0 || n > OTTER_TUF_MAX_TARGET_PATH || p[0] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		/* Glob characters on top of the target path alphabet; '^' is left out because
		 * glibc and Python disagree on it (tuf.md §7.7). */
		if (!target_char_ok(c) && c != '*' && c != '?' && c != '[' && c != ']' &&
		    c != '!')
			return false;
	}
	return true;
}

static bool prefix_ok(const char *p)
{
	size_t n = strnlen(p, 65);

	return n >= 1 && n <= 64 && is_lower_hex(p, n);
}

/* A keyids array and "keys" entries for keys; checks threshold against them. */
static int add_role_keys(json_t *keys_obj, json_t *role, otter_key *const *keys, size_t n_keys,
			 uint64_t threshold, const char *what, otter_error *err)
{
	int r;

	if (n_keys == 0)
		return otter_error_set(err, OTTER_E_INVALID, "%s: at least one key is needed",
				       what);
	for (size_t i = 0; i < n_keys; i++) {
		char keyid[OTTER_KEYID_HEX_LEN + 1];

		if ((r = otter_repo_keys_add(keys_obj, keys[i], keyid, err)) < 0 ||
		    (r = otter_repo_role_add_keyid(role, keyid, err)) < 0)
			return r;
	}
	return otter_repo_role_set_threshold(role, threshold, what, err);
}

static json_t *ensure_delegations(json_t *targets_signed)
{
	json_t *dele = json_object_get(targets_signed, "delegations");

	if (json_is_object(dele))
		return dele;
	dele = json_pack("{s:{}}", "keys");
	if (!dele || json_object_set_new(targets_signed, "delegations", dele) < 0)
		return NULL;
	return dele;
}

int otter_repo_delegate(json_t *targets_signed, const otter_repo_delegation *d, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *role = NULL;
	_cleanup_(json_decrefp) json_t *backup = NULL;
	json_t *dele, *roles, *patterns;
	char what[256];
	int r;

	if (!otter_repo_role_name_ok(d->name))
		return otter_error_set(err, OTTER_E_INVALID,
				       "'%.64s' is not a usable role name: use 1..200 of "
				       "[A-Za-z0-9._-], not a top-level role name",
				       d->name);
	strfmt(what, sizeof(what), "delegation '%s'", d->name);
	if ((d->n_paths > 0) == (d->n_prefixes > 0))
		return otter_error_set(err, OTTER_E_INVALID,
				       "%s: give either path patterns or hash prefixes", what);
	if (d->n_paths > OTTER_TUF_MAX_PATTERNS || d->n_prefixes > OTTER_TUF_MAX_PATTERNS)
		return otter_error_set(err, OTTER_E_LIMIT, "%s: too many patterns", what);
	for (size_t i = 0; i < d->n_paths; i++)
		if (!pattern_ok(d->paths[i]))
			return otter_error_set(err, OTTER_E_INVALID,
					       "%s: path pattern '%.64s' is not usable (relative, "
					       "[A-Za-z0-9._~+=,@/-] and glob characters *?[]!)",
					       what, d->paths[i]);
	for (size_t i = 0; i < d->n_prefixes; i++)
		if (!prefix_ok(d->prefixes[i]))
			return otter_error_set(err, OTTER_E_INVALID,
					       "%s: hash prefix '%.70s' is not 1..64 lower-case hex "
					       "digits",
					       what, d->prefixes[i]);
	dele = json_object_get(targets_signed, "delegations");
	if (json_object_get(dele, "succinct_roles"))
		return otter_error_set(err, OTTER_E_STATE,
				       "%s: this role delegates to succinct hash bins, which cannot "
				       "be mixed with other delegations",
				       what);
	if (otter_repo_delegation_find(targets_signed, d->name))
		return otter_error_set(err, OTTER_E_EXISTS, "%s: the role is already delegated",
				       what);
	/* Work on a copy so that a failure leaves targets_signed as it was. */
	backup = json_deep_copy(targets_signed);
	if (!backup)
		return oom(err);
	dele = ensure_delegations(backup);
	if (!dele)
		return oom(err);
	roles = json_object_get(dele, "roles");
	if (!roles) {
		roles = json_array();
		if (!roles || json_object_set_new(dele, "roles", roles) < 0)
			return oom(err);
	}
	role = json_pack("{s:s, s:[], s:i, s:b}", "name", d->name, "keyids", "threshold", 1,
			 "terminating", d->terminating);
	patterns = json_array();
	if (!role || !patterns)
		return oom(err);
	for (size_t i = 0; i < d->n_paths; i++)
		json_array_append_new(patterns, json_string(d->paths[i]));
	for (size_t i = 0; i < d->n_prefixes; i++)
		json_array_append_new(patterns, json_string(d->prefixes[i]));
	if (json_object_set_new(role, d->n_paths ? "paths" : "path_hash_prefixes", patterns) < 0)
		return oom(err);
	r = add_role_keys(json_object_get(dele, "keys"), role, d->keys, d->n_keys, d->threshold,
			  what, err);
	if (r < 0)
		return r;
	if (json_array_append(roles, role) < 0 ||
	    json_object_update(targets_signed, backup) < 0)
		return oom(err);
	return 0;
}

int otter_repo_delegate_succinct(json_t *targets_signed, const char *prefix, unsigned bits,
				 otter_key *const *keys, size_t n_keys, uint64_t threshold,
				 otter_error *err)
{
	_cleanup_(json_decrefp) json_t *dele = NULL;
	json_t *old = json_object_get(targets_signed, "delegations"), *succinct;
	int r;

	if (!otter_repo_role_name_ok(prefix))
		return otter_error_set(err, OTTER_E_INVALID,
				       "'%.64s' is not a usable bin name prefix", prefix);
	if (bits < 1 || bits > OTTER_REPO_MAX_BIN_BITS)
		return otter_error_set(err, OTTER_E_INVALID,
				       "succinct delegation: bit length %u is outside 1..%u", bits,
				       OTTER_REPO_MAX_BIN_BITS);
	if (json_object_get(old, "succinct_roles") ||
	    json_array_size(json_object_get(old, "roles")) > 0)
		return otter_error_set(err, OTTER_E_STATE,
				       "succinct delegation '%s': the role already delegates; "
				       "undelegate first",
				       prefix);
	dele = json_pack("{s:{}, s:{s:[], s:i, s:i, s:s}}", "keys", "succinct_roles", "keyids",
			 "threshold", 1, "bit_length", (int)bits, "name_prefix", prefix);
	if (!dele)
		return oom(err);
	succinct = json_object_get(dele, "succinct_roles");
	r = add_role_keys(json_object_get(dele, "keys"), succinct, keys, n_keys, threshold,
			  "succinct delegation", err);
	if (r < 0)
		return r;
	if (json_object_set(targets_signed, "delegations", dele) < 0)
		return oom(err);
	return 0;
}

int otter_repo_undelegate(json_t *targets_signed, const char *name, otter_error *err)
{
	json_t *dele = json_object_get(targets_signed, "delegations");
	json_t *roles = json_object_get(dele, "roles"), *succinct, *r;
	size_t i;

	succinct = json_object_get(dele, "succinct_roles");
	if (succinct) {
		const char *prefix = json_string_value(json_object_get(succinct, "name_prefix"));
		if (prefix && strcmp(prefix, name) == 0) {
			json_object_del(targets_signed, "delegations");
			return 0;
		}
	}
	json_array_foreach(roles, i, r) {
		const char *n = json_string_value(json_object_get(r, "name"));
		if (!n || strcmp(n, name) != 0)
			continue;
		json_array_remove(roles, i);
		if (json_array_size(roles) == 0)
			json_object_del(targets_signed, "delegations");
		else
			otter_repo_delegations_prune_keys(targets_signed);
		return 0;
	}
	return otter_error_set(err, OTTER_E_NOT_FOUND, "role '%.64s' is not delegated here", name);
}
