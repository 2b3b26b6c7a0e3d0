/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tuf-metadata.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lib/json/json-util.h"
#include "lib/limits.h"
#include "util/alloc.h"
#include "util/args.h"
#include "util/bpipe.h"
#include "util/cleanup.h"
#include "util/strutil.h"

static const char *const role_type_names[] = {"root", "timestamp", "snapshot", "targets"};

DEFINE_CLEANUP_FUNC(tuf_metadata, tuf_metadata_free)

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *tuf_role_type_name(tuf_role_type t)
{
	return t < _TUF_ROLE_TYPE_MAX ? role_type_names[t] : "unknown";
}

static void keyring_clear(tuf_keyring *ring)
{
	for (size_t i = 0; i < ring->n; i++)
		otter_key_free(ring->items[i].key);
	free(ring->items);
	ring->items = NULL;
	ring->n = 0;
}

static void rolekeys_clear(tuf_rolekeys *rk)
{
	free(rk->keyids);
	rk->keyids = NULL;
	rk->n = 0;
}

tuf_metadata *tuf_metadata_free(tuf_metadata *md)
{
	if (!md)
		return NULL;
	for (size_t i = 0; i < md->n_sigs; i++)
		free(md->sigs[i].sig);
	free(md->sigs);
	for (size_t i = 0; i < _TUF_ROLE_TYPE_MAX; i++)
		rolekeys_clear(&md->roles[i]);
	keyring_clear(&md->keys);
	for (size_t i = 0; i < md->n_delegations; i++) {
		rolekeys_clear(&md->delegations[i].keys);
		free(md->delegations[i].paths);
		free(md->delegations[i].prefixes);
	}
	free(md->delegations);
	rolekeys_clear(&md->succinct_roles.keys);
	free(md->raw);
	free(md->canon);
	json_decref(md->doc);
	free(md);
	return NULL;
}

/* ---- small field validators ---- */

/* spec_version: "X.Y" or "X.Y.Z", digits only, major 1 (python-tuf's rule). */
static int check_spec_version(const char *v, const char *what, otter_error *err)
{
	unsigned parts = 0;
	const char *p = v;
	char s[64];

	for (;;) {
		const char *start = p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == start)
			goto bad;
		parts++;
		if (parts == 1 && !(p - start == 1 && *start == '1'))
			goto unsupported;
		if (*p == '\0')
			break;
		if (*p != '.')
			goto bad;
		p++;
	}
	if (parts == 2 || parts == 3)
		return 0;
bad:
	str_sanitize(v, s, sizeof(s));
	return otter_error_set(err, OTTER_E_FORMAT, "%s: invalid spec_version '%s'", what, s);
unsupported:
	str_sanitize(v, s, sizeof(s));
	return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
			       "%s: spec_version '%s' is not supported (major version must be 1)",
			       what, s);
}

static int parse_hashes(const json_t *hashes, const char *what, otter_error *err)
{
	const char *alg;
	json_t *v;

	if (json_object_size(hashes) == 0)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"hashes\" is empty", what);
	if (json_object_size(hashes) > OTTER_TUF_MAX_HASHES)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: %zu hashes, more than %u",
				       what, json_object_size(hashes), OTTER_TUF_MAX_HASHES);
	json_object_foreach((json_t *)hashes, alg, v) {
		if (!json_is_string(v))
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: hash values must be strings", what);
		if (json_string_length(v) > OTTER_TUF_MAX_HASH_HEX)
			return otter_error_set(err, OTTER_E_FORMAT, "%s: hash value too long",
					       what);
	}
	return 0;
}

int tuf_metafile_parse(const json_t *obj, const char *what, tuf_metafile *out, otter_error *err)
{
	int64_t version, length = 0;
	json_t *hashes, *len;
	int r;

	if (!json_is_object(obj))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: not an object", what);
	r = json_get_int(obj, "version", true, what, 1, INT64_MAX, &version, err);
	if (r < 0)
		return r;
	r = json_get_member(obj, "length", JSON_INTEGER, false, what, &len, err);
	if (r < 0)
		return r;
	if (len) {
		r = json_get_int(obj, "length", true, what, 0, INT64_MAX, &length, err);
		if (r < 0)
			return r;
	}
	r = json_get_member(obj, "hashes", JSON_OBJECT, false, what, &hashes, err);
	if (r < 0)
		return r;
	if (hashes && (r = parse_hashes(hashes, what, err)) < 0)
		return r;
	out->version = (uint64_t)version;
	out->has_length = len != NULL;
	out->length = (uint64_t)length;
	out->hashes = hashes;
	return 0;
}

static int parse_targetfile(const char *path, const json_t *obj, const char *what,
			    otter_error *err)
{
	char p[128], w[256];
	json_t *hashes;
	int64_t length;
	int r;

	str_sanitize(path, p, sizeof(p));
	strfmt(w, sizeof(w), "%s: target '%s'", what, p);
	if (!json_is_object(obj))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: not an object", w);
	if (strlen(path) > OTTER_TUF_MAX_TARGET_PATH)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: path of %zu bytes, more than %u",
				       w, strlen(path), OTTER_TUF_MAX_TARGET_PATH);
	r = json_get_int(obj, "length", true, w, 0, (int64_t)OTTER_TUF_TARGET_MAX_LENGTH, &length,
			 err);
	if (r < 0)
		return r;
	r = json_get_member(obj, "hashes", JSON_OBJECT, true, w, &hashes, err);
	if (r < 0)
		return r;
	return parse_hashes(hashes, w, err);
}

/* An array of unique strings, at most max, each at most maxlen bytes. */
static int parse_string_array(const json_t *arr, size_t max, size_t maxlen, bool unique,
			      const char *what, const char *field, const char ***out,
			      size_t *n_out, otter_error *err)
{
	size_t n = json_array_size(arr), i;
	_cleanup_free_ const char **items = NULL;
	json_t *v;

	if (n > max)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: too many entries in \"%s\" (%zu)",
				       what, field, n);
	items = otter_reallocarray(NULL, n ? n : 1, sizeof(*items));
	if (!items)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: \"%s\" must hold only strings", what, field);
		if (json_string_length(v) > maxlen) {
			char safe[40];

			str_sanitize(json_string_value(v), safe, sizeof(safe));
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: entry of \"%s\" is %zu bytes long ('%s...'), "
					       "more than %zu",
					       what, field, json_string_length(v), safe,
					       (size_t)maxlen);
		}
		items[i] = json_string_value(v);
		if (!unique)
			continue;
		for (size_t j = 0; j < i; j++)
			if (strcmp(items[j], items[i]) == 0) {
				char s[80];
				str_sanitize(items[i], s, sizeof(s));
				return otter_error_set(err, OTTER_E_FORMAT,
						       "%s: duplicate '%s' in \"%s\"", what, s,
						       field);
			}
	}
	*out = TAKE_PTR(items);
	*n_out = n;
	return 0;
}

static int parse_rolekeys(const json_t *obj, const char *what, tuf_rolekeys *out,
			  otter_error *err)
{
	json_t *keyids;
	int64_t threshold;
	int r;

	if (!json_is_object(obj))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: not an object", what);
	r = json_get_member(obj, "keyids", JSON_ARRAY, true, what, &keyids, err);
	if (r < 0)
		return r;
	r = json_get_int(obj, "threshold", true, what, 1, INT64_MAX, &threshold, err);
	if (r < 0)
		return r;
	/* python-tuf rejects duplicate keyids in a role; a duplicate could never count twice
	 * here anyway, but a file that lists one is malformed. */
	r = parse_string_array(keyids, OTTER_TUF_MAX_ROLE_KEYIDS, 256, true, what, "keyids",
			       &out->keyids, &out->n, err);
	if (r < 0)
		return r;
	out->threshold = (uint64_t)threshold;
	return 0;
}

static int cmp_keyentry(const void *a, const void *b)
{
	return strcmp(((const tuf_keyentry *)a)->name, ((const tuf_keyentry *)b)->name);
}

/*
 * Builds a key table. Structural errors reject the file; a key otter cannot use (unsupported
 * type, bad material, keyid that is not the hash of the key) is kept as unusable, so that an
 * exotic key nobody needs cannot block a root rotation chain (tuf.md §8).
 */
static int parse_keys(const json_t *keys, const char *what, tuf_keyring *ring, otter_error *err)
{
	size_t n = json_object_size(keys), i = 0;
	const char *keyid;
	json_t *kobj;

	if (n > OTTER_TUF_MAX_KEYS)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: too many keys (%zu)", what, n);
	ring->items = otter_calloc(n ? n : 1, sizeof(*ring->items));
	if (!ring->items)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	json_object_foreach((json_t *)keys, keyid, kobj) {
		tuf_keyentry *e = &ring->items[i++];
		char computed[OTTER_KEYID_HEX_LEN + 1];
		const char *s;
		json_t *keyval;
		char w[160], k[80];
		int r;

		ring->n = i;
		e->name = keyid;
		str_sanitize(keyid, k, sizeof(k));
		strfmt(w, sizeof(w), "%s: key '%s'", what, k);
		if (!json_is_object(kobj))
			return otter_error_set(err, OTTER_E_FORMAT, "%s: not an object", w);
		if ((r = json_get_string(kobj, "keytype", true, w, &s, err)) < 0 ||
		    (r = json_get_string(kobj, "scheme", true, w, &s, err)) < 0 ||
		    (r = json_get_member(kobj, "keyval", JSON_OBJECT, true, w, &keyval, err)) < 0)
			return r;
		if (strlen(keyid) != OTTER_KEYID_HEX_LEN)
			continue;
		memcpy(e->keyid, keyid, OTTER_KEYID_HEX_LEN + 1);
		if (otter_key_from_tuf(&e->key, kobj, NULL) < 0) {
			e->key = NULL;
			continue;
		}
		if (otter_keyid_of_tuf(kobj, computed, NULL) < 0 || strcmp(computed, keyid) != 0)
			e->key = otter_key_free(e->key);
	}
	ring->n = n;
	qsort(ring->items, ring->n, sizeof(*ring->items), cmp_keyentry);
	return 0;
}

const tuf_keyentry *tuf_keyring_find(const tuf_keyring *ring, const char *keyid)
{
	tuf_keyentry probe = {.name = keyid};

	if (!ring->items)
		return NULL;
	return bsearch(&probe, ring->items, ring->n, sizeof(*ring->items), cmp_keyentry);
}

static int parse_signatures(tuf_metadata *md, const json_t *sigs, const char *what,
			    otter_error *err)
{
	size_t n = json_array_size(sigs), i;
	json_t *s;

	if (n > OTTER_TUF_MAX_SIGNATURES)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: too many signatures (%zu)", what,
				       n);
	md->sigs = otter_calloc(n ? n : 1, sizeof(*md->sigs));
	if (!md->sigs)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	json_array_foreach(sigs, i, s) {
		tuf_signature *sig = &md->sigs[i];
		const char *keyid, *hex;
		size_t hexlen;
		int r;

		md->n_sigs = i + 1;
		if (!json_is_object(s))
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: signature %zu is not an object", what, i);
		if ((r = json_get_string(s, "keyid", true, what, &keyid, err)) < 0 ||
		    (r = json_get_string(s, "sig", true, what, &hex, err)) < 0)
			return r;
		/* Spec 4.2: a keyid appears at most once; python-tuf rejects the file. */
		for (size_t j = 0; j < i; j++)
			if (strcmp(md->sigs[j].keyid, keyid) == 0) {
				char k[80];
				str_sanitize(keyid, k, sizeof(k));
				return otter_error_set(err, OTTER_E_FORMAT,
						       "%s: two signatures by key '%s'", what, k);
			}
		sig->keyid = keyid;
		hexlen = json_string_length(json_object_get(s, "sig"));
		/* A malformed signature never verifies, but does not invalidate the file. */
		if (hexlen == 0 || hexlen % 2 != 0 || hexlen > OTTER_TUF_MAX_SIG_HEX)
			continue;
		sig->sig = otter_malloc(hexlen / 2);
		if (!sig->sig)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		if (!hex_decode(hex, hexlen, sig->sig, hexlen / 2)) {
			free(sig->sig);
			sig->sig = NULL;
			continue;
		}
		sig->siglen = hexlen / 2;
	}
	return 0;
}

static int parse_root(tuf_metadata *md, const char *what, otter_error *err)
{
	json_t *keys, *roles, *role;
	const char *name;
	char w[160];
	int r;

	r = json_get_bool(md->signed_obj, "consistent_snapshot", false, what,
			  &md->consistent_snapshot, err);
	if (r < 0)
		return r;
	if ((r = json_get_member(md->signed_obj, "keys", JSON_OBJECT, true, what, &keys, err)) <
		    0 ||
	    (r = json_get_member(md->signed_obj, "roles", JSON_OBJECT, true, what, &roles, err)) <
		    0)
		return r;
	r = parse_keys(keys, what, &md->keys, err);
	if (r < 0)
		return r;
	json_object_foreach(roles, name, role) {
		tuf_role_type t;
		for (t = 0; t < _TUF_ROLE_TYPE_MAX; t++)
			if (strcmp(name, role_type_names[t]) == 0)
				break;
		if (t == _TUF_ROLE_TYPE_MAX) {
			char s[64];
			str_sanitize(name, s, sizeof(s));
			return otter_error_set(err, OTTER_E_FORMAT, "%s: unknown role '%s' in roles",
					       what, s);
		}
	}
	for (tuf_role_type t = 0; t < _TUF_ROLE_TYPE_MAX; t++) {
		role = json_object_get(roles, role_type_names[t]);
		if (!role)
			return otter_error_set(err, OTTER_E_FORMAT, "%s: roles lacks \"%s\"", what,
					       role_type_names[t]);
		strfmt(w, sizeof(w), "%s: roles.%s", what, role_type_names[t]);
		r = parse_rolekeys(role, w, &md->roles[t], err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_timestamp(tuf_metadata *md, const char *what, otter_error *err)
{
	json_t *meta, *snap;
	char w[160];
	int r;

	r = json_get_member(md->signed_obj, "meta", JSON_OBJECT, true, what, &meta, err);
	if (r < 0)
		return r;
	snap = json_object_get(meta, "snapshot.json");
	if (!snap || json_object_size(meta) != 1)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: meta must hold exactly one entry, \"snapshot.json\"", what);
	strfmt(w, sizeof(w), "%s: meta.snapshot.json", what);
	return tuf_metafile_parse(snap, w, &md->snapshot_meta, err);
}

static int parse_snapshot(tuf_metadata *md, const char *what, otter_error *err)
{
	const char *name;
	json_t *entry;
	int r;

	r = json_get_member(md->signed_obj, "meta", JSON_OBJECT, true, what, &md->meta, err);
	if (r < 0)
		return r;
	if (json_object_size(md->meta) > OTTER_TUF_MAX_DELEGATED_ROLES + 2)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: %zu meta entries, more than %u",
				       what, json_object_size(md->meta),
				       OTTER_TUF_MAX_DELEGATED_ROLES + 2);
	json_object_foreach(md->meta, name, entry) {
		tuf_metafile mf;
		char w[160], s[80];

		str_sanitize(name, s, sizeof(s));
		strfmt(w, sizeof(w), "%s: meta.%s", what, s);
		r = tuf_metafile_parse(entry, w, &mf, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool is_top_level_name(const char *name)
{
	for (size_t i = 0; i < _TUF_ROLE_TYPE_MAX; i++)
		if (strcmp(name, role_type_names[i]) == 0)
			return true;
	return false;
}

static int parse_delegated_role(const json_t *obj, const char *what, tuf_delegation *d,
				otter_error *err)
{
	json_t *paths, *prefixes;
	char w[200], s[80];
	int r;

	if (!json_is_object(obj))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: delegated role is not an object",
				       what);
	r = json_get_string(obj, "name", true, what, &d->name, err);
	if (r < 0)
		return r;
	str_sanitize(d->name, s, sizeof(s));
	strfmt(w, sizeof(w), "%s: delegation '%s'", what, s);
	if (d->name[0] == '\0' || strlen(d->name) > OTTER_TUF_MAX_ROLE_NAME)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: invalid role name", w);
	if (is_top_level_name(d->name))
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: a top-level role name cannot be delegated", w);
	r = parse_rolekeys(obj, w, &d->keys, err);
	if (r < 0)
		return r;
	r = json_get_bool(obj, "terminating", true, w, &d->terminating, err);
	if (r < 0)
		return r;
	if ((r = json_get_member(obj, "paths", JSON_ARRAY, false, w, &paths, err)) < 0 ||
	    (r = json_get_member(obj, "path_hash_prefixes", JSON_ARRAY, false, w, &prefixes,
				 err)) < 0)
		return r;
	if ((paths != NULL) == (prefixes != NULL))
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: exactly one of \"paths\" and \"path_hash_prefixes\" "
				       "must be set",
				       w);
	if (paths)
		return parse_string_array(paths, OTTER_TUF_MAX_PATTERNS, OTTER_TUF_MAX_TARGET_PATH,
					  false, w, "paths", &d->paths, &d->n_paths, err);
	return parse_string_array(prefixes, OTTER_TUF_MAX_PATTERNS, 64, false, w,
				  "path_hash_prefixes", &d->prefixes, &d->n_prefixes, err);
}

static int parse_delegations(tuf_metadata *md, const json_t *dele, const char *what,
			     otter_error *err)
{
	json_t *keys, *roles, *succinct;
	char w[160];
	int r;

	strfmt(w, sizeof(w), "%s: delegations", what);
	if ((r = json_get_member(dele, "keys", JSON_OBJECT, true, w, &keys, err)) < 0 ||
	    (r = json_get_member(dele, "roles", JSON_ARRAY, false, w, &roles, err)) < 0 ||
	    (r = json_get_member(dele, "succinct_roles", JSON_OBJECT, false, w, &succinct, err)) <
		    0)
		return r;
	if ((roles != NULL) == (succinct != NULL))
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: exactly one of \"roles\" and \"succinct_roles\" must be set",
				       w);
	r = parse_keys(keys, w, &md->keys, err);
	if (r < 0)
		return r;
	md->has_delegations = true;
	if (succinct) {
		int64_t bits;
		char sw[200];

		strfmt(sw, sizeof(sw), "%s.succinct_roles", w);
		md->succinct = true;
		r = parse_rolekeys(succinct, sw, &md->succinct_roles.keys, err);
		if (r < 0)
			return r;
		r = json_get_int(succinct, "bit_length", true, sw, 1, OTTER_TUF_SUCCINCT_MAX_BITS,
				 &bits, err);
		if (r < 0)
			return r;
		md->succinct_roles.bit_length = (unsigned)bits;
		r = json_get_string(succinct, "name_prefix", true, sw,
				    &md->succinct_roles.name_prefix, err);
		if (r < 0)
			return r;
		if (strlen(md->succinct_roles.name_prefix) > OTTER_TUF_MAX_ROLE_NAME) {
			char safe[40];

			str_sanitize(md->succinct_roles.name_prefix, safe, sizeof(safe));
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: name_prefix is %zu bytes long ('%s...'), more "
					       "than %u",
					       sw, strlen(md->succinct_roles.name_prefix), safe,
					       OTTER_TUF_MAX_ROLE_NAME);
		}
		return 0;
	}
	size_t n = json_array_size(roles), i;
	json_t *role;

	if (n > OTTER_TUF_MAX_DELEGATED_ROLES)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: too many roles (%zu)", w, n);
	md->delegations = otter_calloc(n ? n : 1, sizeof(*md->delegations));
	if (!md->delegations)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	json_array_foreach(roles, i, role) {
		md->n_delegations = i + 1;
		r = parse_delegated_role(role, w, &md->delegations[i], err);
		if (r < 0)
			return r;
	}
	/* Names are unique (python-tuf); checking by sorting a copy keeps this O(n log n). */
	if (n > 1) {
		_cleanup_free_ const char **names = otter_reallocarray(NULL, n, sizeof(*names));
		if (!names)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		for (i = 0; i < n; i++)
			names[i] = md->delegations[i].name;
		qsort(names, n, sizeof(*names), cmp_strp);
		for (i = 1; i < n; i++)
			if (strcmp(names[i - 1], names[i]) == 0) {
				char s[80];
				str_sanitize(names[i], s, sizeof(s));
				return otter_error_set(err, OTTER_E_FORMAT,
						       "%s: role '%s' delegated twice", w, s);
			}
	}
	return 0;
}

/* parse_targetfile and parse_hashes on a lean map: the same checks, the same messages. */
static int parse_targetfile_lean(jc_span key, jc_span obj, const char *what, otter_error *err)
{
	jc_span path_str = {key.p - 1, key.len + 2}, len_v, hashes, alg, v;
	char path[OTTER_TUF_MAX_TARGET_PATH + 1], p[128], w[256];
	size_t it = 0, n = 0;
	int64_t length;

	if (!jc_string_copy(path_str, path, sizeof(path))) {
		size_t plen = jc_string_length(path_str);

		str_sanitize((const char *)key.p, p, sizeof(p) < key.len + 1 ? sizeof(p) : key.len + 1);
		strfmt(w, sizeof(w), "%s: target '%s'", what, p);
		return otter_error_set(err, OTTER_E_FORMAT, "%s: path of %zu bytes, more than %u",
				       w, plen, OTTER_TUF_MAX_TARGET_PATH);
	}
	str_sanitize(path, p, sizeof(p));
	strfmt(w, sizeof(w), "%s: target '%s'", what, p);
	if (jc_typeof(obj) != JC_OBJECT)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: not an object", w);
	len_v = jc_object_get(obj, "length");
	if (jc_typeof(len_v) == JC_NONE)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: missing \"length\"", w);
	if (!jc_integer(len_v, &length))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"length\" must be an integer", w);
	if (length < 0 || length > (int64_t)OTTER_TUF_TARGET_MAX_LENGTH)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: \"length\" is %" PRId64 ", outside [0, %" PRId64 "]", w,
				       length, (int64_t)OTTER_TUF_TARGET_MAX_LENGTH);
	hashes = jc_object_get(obj, "hashes");
	if (jc_typeof(hashes) == JC_NONE)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: missing \"hashes\"", w);
	if (jc_typeof(hashes) != JC_OBJECT)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"hashes\" must be an object", w);
	while (jc_object_next(hashes, &it, &alg, &v)) {
		if (++n > OTTER_TUF_MAX_HASHES)
			return otter_error_set(err, OTTER_E_FORMAT, "%s: %zu hashes, more than %u", w,
					       jc_object_size(hashes), OTTER_TUF_MAX_HASHES);
		if (jc_typeof(v) != JC_STRING)
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: hash values must be strings", w);
		if (jc_string_length(v) > OTTER_TUF_MAX_HASH_HEX)
			return otter_error_set(err, OTTER_E_FORMAT, "%s: hash value too long", w);
	}
	if (n == 0)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"hashes\" is empty", w);
	return 0;
}

static int parse_targets_lean(tuf_metadata *md, const char *what, otter_error *err)
{
	size_t it = 0;
	jc_span k, v;

	while (jc_object_next(md->targets_map, &it, &k, &v)) {
		int r = parse_targetfile_lean(k, v, what, err);

		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_targets(tuf_metadata *md, const char *what, otter_error *err)
{
	json_t *dele, *tf;
	const char *path;
	int r;

	r = json_get_member(md->signed_obj, "targets", JSON_OBJECT, true, what, &md->targets, err);
	if (r < 0)
		return r;
	if (md->lean) {
		md->targets = NULL; /* the placeholder: the map is md->targets_map */
		r = parse_targets_lean(md, what, err);
		if (r < 0)
			return r;
	}
	json_object_foreach(md->targets, path, tf) {
		r = parse_targetfile(path, tf, what, err);
		if (r < 0)
			return r;
	}
	r = json_get_member(md->signed_obj, "delegations", JSON_OBJECT, false, what, &dele, err);
	if (r < 0 || !dele)
		return r;
	return parse_delegations(md, dele, what, err);
}

void tuf_metadata_drop_canonical(tuf_metadata *md)
{
	free(md->canon);
	md->canon = NULL;
	md->canon_len = 0;
}

/*
 * The canonical form is a cache of a pure function of "signed": computing it does not change
 * what the metadata is, so checks on const metadata may fill it in.
 */
static int ensure_canonical(const tuf_metadata *cmd, otter_error *err)
{
	tuf_metadata *md = (tuf_metadata *)(uintptr_t)cmd;

	if (md->canon)
		return 0;
	if (md->lean)
		return jc_canonical(md->signed_span, &md->canon, &md->canon_len, err);
	return otter_json_canonical(md->signed_obj, &md->canon, &md->canon_len, err);
}

int tuf_metadata_parse(tuf_metadata **out, tuf_role_type expected, const uint8_t *raw,
		       size_t len, const char *what, otter_error *err)
{
	_cleanup_free_ uint8_t *copy = NULL;
	int r;

	ARG_NONNULL(err, "tuf", raw);
	copy = otter_memdup(raw, len);
	if (!copy)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = tuf_metadata_parse_owned(out, expected, &copy, len, what, err);
	return r;
}

static int parse_envelope(tuf_metadata *md, tuf_role_type expected, const char *what,
			  otter_error *err);

int tuf_metadata_parse_owned(tuf_metadata **out, tuf_role_type expected, uint8_t **rawp,
			     size_t len, const char *what, otter_error *err)
{
	const uint8_t *raw = rawp ? *rawp : NULL;
	_cleanup_(tuf_metadata_freep) tuf_metadata *md = NULL;
	int r;

	ARG_NONNULL(err, "tuf", out);
	ARG_NONNULL(err, "tuf", raw);
	if (expected >= _TUF_ROLE_TYPE_MAX)
		return otter_error_set(err, OTTER_E_INVALID,
				       "tuf: invalid argument: role type %d (known: 0 to %d)",
				       (int)expected, (int)_TUF_ROLE_TYPE_MAX - 1);
	md = otter_calloc(1, sizeof(*md));
	if (!md)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	md->type = expected;
	r = otter_json_parse(&md->doc, raw, len, OTTER_TUF_METADATA_HARD_MAX, err);
	if (r < 0)
		return otter_error_prefix(err, r, "%s", what);
	r = parse_envelope(md, expected, what, err);
	if (r < 0)
		return r;
	md->raw = TAKE_PTR(*rawp);
	md->raw_len = len;
	*out = TAKE_PTR(md);
	return 0;
}

/* Everything after the JSON is read: the envelope, the common fields, the role's own. */
static int parse_envelope(tuf_metadata *md, tuf_role_type expected, const char *what,
			  otter_error *err)
{
	json_t *sigs;
	const char *type, *spec, *expires;
	int64_t version;
	int r;

	if ((r = json_get_member(md->doc, "signed", JSON_OBJECT, true, what, &md->signed_obj,
				 err)) < 0 ||
	    (r = json_get_member(md->doc, "signatures", JSON_ARRAY, true, what, &sigs, err)) < 0)
		return r;
	r = json_get_string(md->signed_obj, "_type", true, what, &type, err);
	if (r < 0)
		return r;
	if (strcmp(type, role_type_names[expected]) != 0) {
		char s[64];
		str_sanitize(type, s, sizeof(s));
		return otter_error_set(err, OTTER_E_FORMAT, "%s: _type is '%s', expected '%s'",
				       what, s, role_type_names[expected]);
	}
	if ((r = json_get_string(md->signed_obj, "spec_version", true, what, &spec, err)) < 0 ||
	    (r = check_spec_version(spec, what, err)) < 0)
		return r;
	r = json_get_int(md->signed_obj, "version", true, what, 1, INT64_MAX, &version, err);
	if (r < 0)
		return r;
	md->version = (uint64_t)version;
	r = json_get_string(md->signed_obj, "expires", true, what, &expires, err);
	if (r < 0)
		return r;
	if (utc_parse(expires, &md->expires) < 0) {
		char s[64];
		str_sanitize(expires, s, sizeof(s));
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: expires '%s' is not of the form YYYY-MM-DDTHH:MM:SSZ",
				       what, s);
	}
	r = parse_signatures(md, sigs, what, err);
	if (r < 0)
		return r;
	/* The signed message; it also proves the payload has no floats (tuf.md §8). */
	r = ensure_canonical(md, err);
	if (r < 0)
		return otter_error_prefix(err, r, "%s", what);

	switch (expected) {
	case TUF_ROOT:
		r = parse_root(md, what, err);
		break;
	case TUF_TIMESTAMP:
		r = parse_timestamp(md, what, err);
		break;
	case TUF_SNAPSHOT:
		r = parse_snapshot(md, what, err);
		break;
	case TUF_TARGETS:
		r = parse_targets(md, what, err);
		break;
	default:
		r = otter_error_set(err, OTTER_E_INVALID, "%s: unknown role type %d", what,
				    (int)expected);
	}
	return r;
}

/* A jansson string of the raw key content k (checked), for the lean envelope. */
static int key_json(jc_span k, json_t **out, otter_error *err)
{
	return jc_to_json((jc_span){k.p - 1, k.len + 2}, out, err);
}

/* Adds value v under the raw key k to obj, refusing a duplicate like JSON_REJECT_DUPLICATES. */
static int lean_set(json_t *obj, jc_span k, json_t *v, otter_error *err)
{
	json_t *ks = NULL;
	int r = key_json(k, &ks, err);

	if (r == 0 && json_object_get(obj, json_string_value(ks)))
		r = otter_error_set(err, OTTER_E_INVALID, "invalid JSON: duplicate object key");
	if (r == 0 && json_object_set_new(obj, json_string_value(ks), v) < 0)
		r = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	else
		v = NULL;
	json_decref(v);
	json_decref(ks);
	return r;
}

/*
 * The envelope without the targets map: every member read by jansson, except signed.targets
 * (when it is an object), which becomes {} and is remembered as a span.
 */
static int lean_doc(tuf_metadata *md, jc_span root, otter_error *err)
{
	size_t it = 0;
	jc_span k, v;
	int r;

	md->doc = json_object();
	if (!md->doc)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	while (jc_object_next(root, &it, &k, &v)) {
		json_t *val = NULL;

		if (jc_typeof(v) == JC_OBJECT && k.len == 6 && memcmp(k.p, "signed", 6) == 0) {
			size_t it2 = 0;
			jc_span k2, v2;

			md->signed_span = v;
			val = json_object();
			if (!val)
				return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			r = 0;
			while (r == 0 && jc_object_next(v, &it2, &k2, &v2)) {
				json_t *member = NULL;

				if (jc_typeof(v2) == JC_OBJECT && k2.len == 7 &&
				    memcmp(k2.p, "targets", 7) == 0) {
					md->targets_map = v2;
					member = json_object();
					if (!member)
						r = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
				} else {
					r = jc_to_json(v2, &member, err);
				}
				if (r == 0)
					r = lean_set(val, k2, member, err);
			}
			if (r < 0) {
				json_decref(val);
				return r;
			}
		} else {
			r = jc_to_json(v, &val, err);
			if (r < 0)
				return r;
		}
		r = lean_set(md->doc, k, val, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int tuf_metadata_parse_lean(tuf_metadata **out, uint8_t **rawp, size_t len, const char *what,
			    otter_error *err)
{
	_cleanup_(tuf_metadata_freep) tuf_metadata *md = NULL;
	jc_span root;
	int r;

	ARG_NONNULL(err, "tuf", out);
	ARG_NONNULL(err, "tuf", rawp);
	ARG_NONNULL(err, "tuf", *rawp);
	md = otter_calloc(1, sizeof(*md));
	if (!md)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	md->type = TUF_TARGETS;
	md->lean = true;
	r = jc_check(*rawp, len, OTTER_TUF_METADATA_HARD_MAX, &root, err);
	if (r == 0)
		r = lean_doc(md, root, err);
	if (r < 0)
		return otter_error_prefix(err, r, "%s", what);
	/* Without "signed" (or not an object) parse_envelope says so; no span is needed then. */
	r = parse_envelope(md, TUF_TARGETS, what, err);
	if (r < 0)
		return r;
	md->raw = TAKE_PTR(*rawp); /* the spans point into it */
	md->raw_len = len;
	*out = TAKE_PTR(md);
	return 0;
}

int tuf_metadata_target(const tuf_metadata *md, const char *path, json_t **out,
			otter_error *err)
{
	jc_span v;

	*out = NULL;
	if (!md->lean) {
		*out = json_incref(json_object_get(md->targets, path));
		return 0;
	}
	v = jc_object_get(md->targets_map, path);
	if (jc_typeof(v) == JC_NONE)
		return 0;
	return jc_to_json(v, out, err);
}

void tuf_target_list_free(tuf_target_entry *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++) {
		free(list[i].path);
		json_decref(list[i].info);
	}
	free(list);
}

int tuf_metadata_target_list(const tuf_metadata *md, const char *prefix,
			     tuf_target_entry **out, size_t *n_out, otter_error *err)
{
	size_t n = 0, plen = strlen(prefix), it = 0;
	tuf_target_entry *list;
	jc_span k, v;
	int r = 0;

	list = otter_calloc((md->lean ? jc_object_size(md->targets_map)
				      : json_object_size(md->targets)) + 1,
			    sizeof(*list));
	if (!list)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (!md->lean) {
		const char *path;
		json_t *info;

		json_object_foreach(md->targets, path, info) {
			if (strncmp(path, prefix, plen) != 0)
				continue;
			if (!(list[n].path = otter_strdup(path))) {
				r = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
				break;
			}
			list[n++].info = json_incref(info);
		}
	}
	while (md->lean && r == 0 && jc_object_next(md->targets_map, &it, &k, &v)) {
		jc_span str = {k.p - 1, k.len + 2};
		char *s = otter_malloc(k.len + 1); /* decoding never grows */

		if (!s || !jc_string_copy(str, s, k.len + 1)) {
			free(s);
			r = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			break;
		}
		if (strncmp(s, prefix, plen) != 0) {
			free(s);
			continue;
		}
		list[n].path = s;
		r = jc_to_json(v, &list[n++].info, err);
	}
	if (r < 0) {
		tuf_target_list_free(list, n);
		return r;
	}
	*out = list;
	*n_out = n;
	return 0;
}

/* ---- signatures ---- */

size_t tuf_count_valid_signatures(const tuf_metadata *md, const tuf_keyring *ring,
				  const tuf_rolekeys *role)
{
	_cleanup_free_ const uint8_t **counted = NULL;
	size_t count = 0;

	if (ensure_canonical(md, NULL) < 0)
		return 0;
	counted = otter_reallocarray(NULL, role->n ? role->n : 1, sizeof(*counted));
	if (!counted)
		return 0;
	/* Iterate the role's keys, not the signatures (tuf.md §4.3). */
	for (size_t i = 0; i < role->n; i++) {
		const tuf_keyentry *ke = tuf_keyring_find(ring, role->keyids[i]);
		const tuf_signature *sig = NULL;
		const uint8_t *fp;
		bool dup = false;

		if (!ke || !ke->key)
			continue;
		for (size_t j = 0; j < md->n_sigs; j++)
			if (strcmp(md->sigs[j].keyid, role->keyids[i]) == 0) {
				sig = &md->sigs[j];
				break;
			}
		if (!sig || !sig->sig)
			continue;
		/* The same key material under two keyids counts once. */
		fp = otter_key_fingerprint(ke->key);
		for (size_t j = 0; j < count; j++)
			if (CRYPTO_memcmp(counted[j], fp, 32) == 0)
				dup = true;
		if (dup)
			continue;
		if (!otter_key_verify(ke->key, md->canon, md->canon_len, sig->sig, sig->siglen))
			continue;
		counted[count++] = fp;
	}
	return count;
}

int tuf_verify_threshold(const tuf_metadata *md, const tuf_keyring *ring,
			 const tuf_rolekeys *role, const char *what, otter_error *err)
{
	size_t valid;
	int r = ensure_canonical(md, err);

	if (r < 0)
		return otter_error_prefix(err, r, "%s", what);
	valid = tuf_count_valid_signatures(md, ring, role);

	if (valid >= role->threshold)
		return 0;
	return otter_error_set(err, OTTER_E_SIGNATURE,
			       "%s: %zu valid signature%s, the threshold is %" PRIu64
			       " (%zu authorised key%s)",
			       what, valid, valid == 1 ? "" : "s", role->threshold, role->n,
			       role->n == 1 ? "" : "s");
}

bool tuf_rolekeys_equal(const tuf_rolekeys *a, const tuf_rolekeys *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		bool found = false;
		for (size_t j = 0; j < b->n && !found; j++)
			found = strcmp(a->keyids[i], b->keyids[j]) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* ---- hashes ---- */

/*
 * With two or more hashes listed, a streaming verifier computes them in parallel: the first
 * on the caller's thread, the others on a thread fed through a bounded pipe (a copy of the
 * bytes, TUF_HASH_PIPE_BUFS x TUF_HASH_PIPE_BUF_SIZE at most). Every listed hash is still
 * computed over every byte and compared at finish.
 */
#define TUF_HASH_PIPE_BUFS     4u
#define TUF_HASH_PIPE_BUF_SIZE (256u * 1024u)

struct tuf_hash_verifier {
	size_t n;
	struct {
		otter_hash *h;
		otter_hash_alg alg;
		const char *expected;
		char name[16];
	} items[OTTER_TUF_MAX_HASHES];
	bool serial;  /* all hashes on the caller's thread (in-memory metadata) */
	bpipe *pipe;  /* items[1..n-1], from the first update on */
	uint64_t pos;
};

tuf_hash_verifier *tuf_hash_verifier_free(tuf_hash_verifier *v)
{
	if (v) {
		bpipe_free(v->pipe); /* the thread stops before the hashes it updates go */
		for (size_t i = 0; i < v->n; i++)
			otter_hash_free(v->items[i].h);
		free(v);
	}
	return NULL;
}

DEFINE_CLEANUP_FUNC(tuf_hash_verifier, tuf_hash_verifier_free)

int tuf_hash_verifier_new(tuf_hash_verifier **out, const json_t *hashes, const char *what,
			  otter_error *err)
{
	_cleanup_(tuf_hash_verifier_freep) tuf_hash_verifier *v = NULL;
	const char *alg;
	json_t *val;
	int r;

	if (!json_is_object(hashes) || json_object_size(hashes) == 0 ||
	    json_object_size(hashes) > OTTER_TUF_MAX_HASHES)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: no usable hashes", what);
	v = otter_calloc(1, sizeof(*v));
	if (!v)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	json_object_foreach((json_t *)hashes, alg, val) {
		otter_hash_alg a;

		if (otter_hash_alg_from_name(alg, &a) < 0) {
			char s[64];
			str_sanitize(alg, s, sizeof(s));
			return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
					       "%s: hash algorithm '%s' is not supported", what, s);
		}
		r = otter_hash_new(&v->items[v->n].h, a, err);
		if (r < 0)
			return r;
		v->items[v->n].alg = a;
		v->items[v->n].expected = json_string_value(val);
		strfmt(v->items[v->n].name, sizeof(v->items[v->n].name), "%s", alg);
		v->n++;
	}
	*out = TAKE_PTR(v);
	return 0;
}

/* The pipe's thread: every hash but the first. */
static int hash_others(void *userdata, const uint8_t *p, size_t n, uint64_t pos, bool flag,
		       otter_error *err)
{
	tuf_hash_verifier *v = userdata;

	for (size_t i = 1; i < v->n; i++) {
		int r = otter_hash_update(v->items[i].h, p, n, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int tuf_hash_verifier_update(tuf_hash_verifier *v, const uint8_t *data, size_t len,
			     otter_error *err)
{
	int r;

	if (v->serial || v->n < 2) {
		for (size_t i = 0; i < v->n; i++) {
			r = otter_hash_update(v->items[i].h, data, len, err);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (!v->pipe) {
		r = bpipe_new(&v->pipe, TUF_HASH_PIPE_BUFS, TUF_HASH_PIPE_BUF_SIZE, hash_others, v,
			      "hash thread", err);
		if (r < 0)
			return r;
	}
	r = bpipe_push(v->pipe, data, len, v->pos, false, err);
	if (r < 0)
		return r;
	v->pos += len;
	return otter_hash_update(v->items[0].h, data, len, err);
}

int tuf_hash_verifier_finish(tuf_hash_verifier *v, uint64_t length_seen, uint64_t length,
			     const char *what, otter_error *err)
{
	if (length_seen != length)
		return otter_error_set(err, OTTER_E_HASH,
				       "%s: length is %" PRIu64 " bytes, expected %" PRIu64, what,
				       length_seen, length);
	if (v->pipe) {
		int r = bpipe_drain(v->pipe, err);

		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < v->n; i++) {
		uint8_t d[OTTER_HASH_MAX_SIZE];
		char hex[2 * OTTER_HASH_MAX_SIZE + 1];
		int r = otter_hash_final(v->items[i].h, d, err);

		if (r < 0)
			return r;
		hex_encode(d, otter_hash_size(v->items[i].alg), hex);
		if (strcmp(hex, v->items[i].expected) != 0)
			return otter_error_set(err, OTTER_E_HASH,
					       "%s: %s is %s, expected %.128s", what,
					       v->items[i].name, hex, v->items[i].expected);
	}
	return 0;
}

int tuf_check_length_hashes(const uint8_t *data, size_t len, bool has_length, uint64_t length,
			    const json_t *hashes, const char *what, otter_error *err)
{
	_cleanup_(tuf_hash_verifier_freep) tuf_hash_verifier *v = NULL;
	int r;

	if (has_length && (uint64_t)len != length)
		return otter_error_set(err, OTTER_E_HASH,
				       "%s: length is %zu bytes, expected %" PRIu64, what, len,
				       length);
	if (!hashes)
		return 0;
	r = tuf_hash_verifier_new(&v, hashes, what, err);
	if (r < 0)
		return r == OTTER_E_NOT_SUPPORTED ? otter_error_prefix(err, OTTER_E_HASH, "verify")
						  : r;
	v->serial = true; /* in memory and small: a thread would cost more than it saves */
	r = tuf_hash_verifier_update(v, data, len, err);
	if (r < 0)
		return r;
	return tuf_hash_verifier_finish(v, len, len, what, err);
}

/* ---- delegation matching (tuf.md §7.7) ---- */

bool tuf_path_matches_pattern(const char *path, const char *pattern)
{
	/* Same number of '/'-separated segments, each matching as a shell glob where nothing
	 * matches '/', and a backslash is an ordinary character (Python fnmatch). */
	const char *p = path, *q = pattern;

	for (;;) {
		const char *pe = strchr(p, '/'), *qe = strchr(q, '/');
		size_t pl = pe ? (size_t)(pe - p) : strlen(p);
		size_t ql = qe ? (size_t)(qe - q) : strlen(q);
		char pseg[OTTER_TUF_MAX_TARGET_PATH + 1], qseg[OTTER_TUF_MAX_TARGET_PATH + 1];

		if ((pe == NULL) != (qe == NULL))
			return false;
		if (pl > OTTER_TUF_MAX_TARGET_PATH || ql > OTTER_TUF_MAX_TARGET_PATH)
			return false;
		memcpy(pseg, p, pl);
		pseg[pl] = '\0';
		memcpy(qseg, q, ql);
		qseg[ql] = '\0';
		if (fnmatch(qseg, pseg, FNM_NOESCAPE) != 0)
			return false;
		if (!pe)
			return true;
		p = pe + 1;
		q = qe + 1;
	}
}

bool tuf_delegation_matches(const tuf_delegation *d, const char *target_path)
{
	if (d->paths) {
		for (size_t i = 0; i < d->n_paths; i++)
			if (tuf_path_matches_pattern(target_path, d->paths[i]))
				return true;
		return false;
	}
	char hex[2 * 32 + 1];

	if (otter_hash_buf_hex(OTTER_HASH_SHA256, target_path, strlen(target_path), hex, NULL) < 0)
		return false;
	for (size_t i = 0; i < d->n_prefixes; i++) {
		size_t pl = strlen(d->prefixes[i]);
		if (pl <= 64 && strncmp(hex, d->prefixes[i], pl) == 0)
			return true;
	}
	return false;
}

int tuf_succinct_bin_name(const tuf_succinct *s, const char *target_path, char **out,
			  otter_error *err)
{
	uint8_t d[32];
	uint32_t word, bin;
	unsigned width;
	size_t n;
	char *name;
	int r;

	r = otter_hash_buf(OTTER_HASH_SHA256, target_path, strlen(target_path), d, err);
	if (r < 0)
		return r;
	word = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
	bin = s->bit_length >= 32 ? word : word >> (32 - s->bit_length);
	/* Hex digits of the largest bin number, 2^B - 1. */
	width = (s->bit_length + 3) / 4;
	n = strlen(s->name_prefix) + 1 + width + 1;
	name = otter_malloc(n);
	if (!name)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	strfmt(name, n, "%s-%0*" PRIx32, s->name_prefix, (int)width, bin);
	*out = name;
	return 0;
}
