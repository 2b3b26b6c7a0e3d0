/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Parsed metadata for authors (otter/repo.h): the tuf module's metadata model behind opaque
 * handles. The handles are the tuf structures themselves, converted at this boundary only, so
 * that what otter-repo and the director check is what the client checks (same parser, same
 * threshold rule) while the model stays private to the library.
 */
#include <inttypes.h>
#include <string.h>

#include <otter/repo.h>

#include "lib/tuf/tuf-metadata.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

/* The public role enum mirrors tuf's, value for value. */
_Static_assert((int)OTTER_REPO_ROOT == (int)TUF_ROOT &&
		       (int)OTTER_REPO_TIMESTAMP == (int)TUF_TIMESTAMP &&
		       (int)OTTER_REPO_SNAPSHOT == (int)TUF_SNAPSHOT &&
		       (int)OTTER_REPO_TARGETS == (int)TUF_TARGETS &&
		       OTTER_REPO_ROLE_TYPES == _TUF_ROLE_TYPE_MAX,
	       "otter_repo_role_type must mirror tuf_role_type");

static const tuf_metadata *md_of(const otter_repo_metadata *md)
{
	return (const tuf_metadata *)(const void *)md;
}

static const tuf_keyring *ring_of(const otter_repo_keyring *ring)
{
	return (const tuf_keyring *)(const void *)ring;
}

static const tuf_rolekeys *keys_of(const otter_repo_rolekeys *keys)
{
	return (const tuf_rolekeys *)(const void *)keys;
}

static const otter_repo_rolekeys *keys_out(const tuf_rolekeys *keys)
{
	return (const otter_repo_rolekeys *)(const void *)keys;
}

static const tuf_delegation *deleg_of(const otter_repo_delegated_role *d)
{
	return (const tuf_delegation *)(const void *)d;
}

const char *otter_repo_role_type_name(otter_repo_role_type t)
{
	return tuf_role_type_name((tuf_role_type)t);
}

int otter_repo_metadata_parse(otter_repo_metadata **out, otter_repo_role_type expected,
			      const uint8_t *raw, size_t len, const char *what, otter_error *err)
{
	tuf_metadata *md = NULL;
	int r;

	if ((unsigned)expected >= OTTER_REPO_ROLE_TYPES)
		return otter_error_set(
			err, OTTER_E_INVALID,
			"%s: role type %d is not one of the %d top-level types (0..%d)", what,
			(int)expected, OTTER_REPO_ROLE_TYPES, OTTER_REPO_ROLE_TYPES - 1);
	r = tuf_metadata_parse(&md, (tuf_role_type)expected, raw, len, what, err);
	if (r < 0)
		return r;
	*out = (otter_repo_metadata *)(void *)md;
	return 0;
}

otter_repo_metadata *otter_repo_metadata_free(otter_repo_metadata *md)
{
	tuf_metadata_free((tuf_metadata *)(void *)md);
	return NULL;
}

otter_repo_role_type otter_repo_metadata_type(const otter_repo_metadata *md)
{
	return (otter_repo_role_type)md_of(md)->type;
}

uint64_t otter_repo_metadata_version(const otter_repo_metadata *md)
{
	return md_of(md)->version;
}

int64_t otter_repo_metadata_expires(const otter_repo_metadata *md)
{
	return md_of(md)->expires;
}

const uint8_t *otter_repo_metadata_raw(const otter_repo_metadata *md, size_t *len)
{
	*len = md_of(md)->raw_len;
	return md_of(md)->raw;
}

const json_t *otter_repo_metadata_doc(const otter_repo_metadata *md)
{
	return md_of(md)->doc;
}

const json_t *otter_repo_metadata_signed(const otter_repo_metadata *md)
{
	return md_of(md)->signed_obj;
}

bool otter_repo_metadata_consistent_snapshot(const otter_repo_metadata *md)
{
	return md_of(md)->type == TUF_ROOT && md_of(md)->consistent_snapshot;
}

json_t *otter_repo_metadata_targets(const otter_repo_metadata *md)
{
	return md_of(md)->type == TUF_TARGETS ? md_of(md)->targets : NULL;
}

json_t *otter_repo_metadata_meta(const otter_repo_metadata *md)
{
	return md_of(md)->type == TUF_SNAPSHOT ? md_of(md)->meta : NULL;
}

uint64_t otter_repo_metadata_snapshot_version(const otter_repo_metadata *md)
{
	return md_of(md)->type == TUF_TIMESTAMP ? md_of(md)->snapshot_meta.version : 0;
}

const otter_repo_keyring *otter_repo_metadata_keys(const otter_repo_metadata *md)
{
	return (const otter_repo_keyring *)(const void *)&md_of(md)->keys;
}

const otter_repo_rolekeys *otter_repo_metadata_root_role(const otter_repo_metadata *md,
							 otter_repo_role_type type)
{
	if (md_of(md)->type != TUF_ROOT || (unsigned)type >= OTTER_REPO_ROLE_TYPES)
		return NULL;
	return keys_out(&md_of(md)->roles[type]);
}

size_t otter_repo_metadata_n_delegations(const otter_repo_metadata *md)
{
	return md_of(md)->type == TUF_TARGETS ? md_of(md)->n_delegations : 0;
}

const otter_repo_delegated_role *otter_repo_metadata_delegation(const otter_repo_metadata *md,
								size_t i)
{
	if (i >= otter_repo_metadata_n_delegations(md))
		return NULL;
	return (const otter_repo_delegated_role *)(const void *)&md_of(md)->delegations[i];
}

const char *otter_repo_delegated_role_name(const otter_repo_delegated_role *d)
{
	return deleg_of(d)->name;
}

const otter_repo_rolekeys *otter_repo_delegated_role_keys(const otter_repo_delegated_role *d)
{
	return keys_out(&deleg_of(d)->keys);
}

bool otter_repo_delegated_role_matches(const otter_repo_delegated_role *d, const char *target_path)
{
	return tuf_delegation_matches(deleg_of(d), target_path);
}

bool otter_repo_metadata_succinct(const otter_repo_metadata *md, unsigned *bits,
				  const char **prefix)
{
	const tuf_metadata *m = md_of(md);

	if (m->type != TUF_TARGETS || !m->succinct)
		return false;
	if (bits)
		*bits = m->succinct_roles.bit_length;
	if (prefix)
		*prefix = m->succinct_roles.name_prefix;
	return true;
}

const otter_repo_rolekeys *otter_repo_metadata_succinct_keys(const otter_repo_metadata *md)
{
	if (!otter_repo_metadata_succinct(md, NULL, NULL))
		return NULL;
	return keys_out(&md_of(md)->succinct_roles.keys);
}

bool otter_repo_metadata_is_bin(const otter_repo_metadata *md, const char *name)
{
	const char *prefix;
	unsigned bits, width;
	uint64_t idx = 0;
	size_t pl;

	if (!otter_repo_metadata_succinct(md, &bits, &prefix))
		return false;
	pl = strlen(prefix);
	width = (bits + 3) / 4;
	if (strncmp(name, prefix, pl) != 0 || name[pl] != '-' ||
	    strlen(name + pl + 1) != width || !is_lower_hex(name + pl + 1, width))
		return false;
	for (unsigned i = 0; i < width; i++) {
		char c = name[pl + 1 + i];

		idx = idx * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	return idx < (1ull << bits);
}

int otter_repo_metadata_bin_for(const otter_repo_metadata *md, const char *target_path, char **out,
				otter_error *err)
{
	if (!otter_repo_metadata_succinct(md, NULL, NULL))
		return otter_error_set(err, OTTER_E_STATE,
				       "no bin for '%s': this targets metadata (version %" PRIu64
				       ") delegates to no succinct hash bins",
				       target_path, md_of(md)->version);
	return tuf_succinct_bin_name(&md_of(md)->succinct_roles, target_path, out, err);
}

uint64_t otter_repo_rolekeys_threshold(const otter_repo_rolekeys *k)
{
	return keys_of(k)->threshold;
}

size_t otter_repo_rolekeys_count(const otter_repo_rolekeys *k)
{
	return keys_of(k)->n;
}

const char *otter_repo_rolekeys_keyid(const otter_repo_rolekeys *k, size_t i)
{
	return i < keys_of(k)->n ? keys_of(k)->keyids[i] : NULL;
}

bool otter_repo_rolekeys_has(const otter_repo_rolekeys *k, const char *keyid)
{
	for (size_t i = 0; k && i < keys_of(k)->n; i++)
		if (strcmp(keys_of(k)->keyids[i], keyid) == 0)
			return true;
	return false;
}

const otter_key *otter_repo_keyring_find(const otter_repo_keyring *ring, const char *keyid)
{
	const tuf_keyentry *ke = tuf_keyring_find(ring_of(ring), keyid);

	return ke ? ke->key : NULL;
}

int otter_repo_verify_threshold(const otter_repo_metadata *md, const otter_repo_keyring *ring,
				const otter_repo_rolekeys *role, const char *what, otter_error *err)
{
	return tuf_verify_threshold(md_of(md), ring_of(ring), keys_of(role), what, err);
}

size_t otter_repo_count_valid_signatures(const otter_repo_metadata *md,
					 const otter_repo_keyring *ring,
					 const otter_repo_rolekeys *role)
{
	return tuf_count_valid_signatures(md_of(md), ring_of(ring), keys_of(role));
}

DEFINE_CLEANUP_FUNC(char *, otter_repo_strv_free)

int otter_repo_signature_status(const otter_repo_metadata *md, const otter_repo_keyring *ring,
				const otter_repo_rolekeys *role_keys, char ***signed_out,
				char ***missing_out, otter_error *err)
{
	const tuf_rolekeys *role = keys_of(role_keys);
	_cleanup_(otter_repo_strv_freep) char **yes = NULL;
	_cleanup_(otter_repo_strv_freep) char **no = NULL;
	size_t ny = 0, nn = 0;

	yes = otter_calloc(role->n + 1, sizeof(*yes));
	no = otter_calloc(role->n + 1, sizeof(*no));
	if (!yes || !no)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	for (size_t i = 0; i < role->n; i++) {
		tuf_rolekeys one = {.keyids = &role->keyids[i], .n = 1, .threshold = 1};
		bool ok = tuf_count_valid_signatures(md_of(md), ring_of(ring), &one) == 1;
		char *s = otter_strdup(role->keyids[i]);

		if (!s)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		if (ok)
			yes[ny++] = s;
		else
			no[nn++] = s;
	}
	if (signed_out)
		*signed_out = TAKE_PTR(yes);
	if (missing_out)
		*missing_out = TAKE_PTR(no);
	return (int)tuf_count_valid_signatures(md_of(md), ring_of(ring), role);
}

int otter_repo_metafile_version(const json_t *entry, const char *what, uint64_t *version,
				otter_error *err)
{
	tuf_metafile mf;
	int r = tuf_metafile_parse(entry, what, &mf, err);

	if (r < 0)
		return r;
	*version = mf.version;
	return 0;
}
