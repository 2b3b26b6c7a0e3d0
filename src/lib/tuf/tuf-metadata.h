/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_TUF_METADATA_H
#define OTTER_LIB_TUF_METADATA_H

/*
 * The TUF metadata model (tuf.md §2-§4): parsing and validation of the four roles from
 * untrusted bytes, and threshold signature verification. A parsed file keeps its whole JSON
 * document, so unknown fields survive and take part in the canonical form, and a copy of the
 * exact bytes it was parsed from, which is what gets persisted and hashed.
 *
 * tuf's internal interface (docs/architecture.md, "Headers"): besides tuf itself, only the
 * repository authoring library (src/lib/repo/) uses it, and hands it on to programs behind
 * the opaque types of otter/repo.h. Not installed, no ABI.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/crypto.h>
#include <otter/tuf.h>
#include <otter/error.h>

#include "lib/json/jcompact.h"

typedef enum tuf_role_type {
	TUF_ROOT,
	TUF_TIMESTAMP,
	TUF_SNAPSHOT,
	TUF_TARGETS,
	_TUF_ROLE_TYPE_MAX,
} tuf_role_type;

const char *tuf_role_type_name(tuf_role_type t);

/* A key table: root "keys" or delegations "keys", sorted by keyid for lookups. */
typedef struct tuf_keyentry {
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	otter_key *key; /* NULL: unsupported type, bad material or wrong keyid: never counts */
	const char *name; /* keyid as written in the file (may be any string); borrowed */
} tuf_keyentry;

typedef struct tuf_keyring {
	tuf_keyentry *items;
	size_t n;
} tuf_keyring;

/* Which keys may sign a role, and how many must. keyids are unique (checked at parse). */
typedef struct tuf_rolekeys {
	const char **keyids; /* borrowed from the document */
	size_t n;
	uint64_t threshold;
} tuf_rolekeys;

typedef struct tuf_signature {
	const char *keyid; /* borrowed */
	uint8_t *sig;      /* NULL when "sig" is not valid hex: then it never verifies */
	size_t siglen;
} tuf_signature;

/* METAFILE (timestamp and snapshot "meta" entries). */
typedef struct tuf_metafile {
	uint64_t version;
	bool has_length;
	uint64_t length;
	const json_t *hashes; /* borrowed; NULL when absent */
} tuf_metafile;

typedef struct tuf_delegation {
	const char *name; /* borrowed */
	tuf_rolekeys keys;
	bool terminating;
	const char **paths; /* borrowed; NULL when path_hash_prefixes are used */
	size_t n_paths;
	const char **prefixes;
	size_t n_prefixes;
} tuf_delegation;

typedef struct tuf_succinct {
	tuf_rolekeys keys;
	unsigned bit_length;
	const char *name_prefix; /* borrowed */
} tuf_succinct;

typedef struct tuf_metadata {
	tuf_role_type type;
	json_t *doc;
	json_t *signed_obj; /* borrowed from doc */
	uint64_t version;
	int64_t expires;
	uint8_t *raw; /* the exact bytes parsed */
	size_t raw_len;
	uint8_t *canon; /* canonical JSON of "signed": the signed message */
	size_t canon_len;
	tuf_signature *sigs;
	size_t n_sigs;

	/* root */
	bool consistent_snapshot;
	tuf_rolekeys roles[_TUF_ROLE_TYPE_MAX];
	/* root keys, or the keys of a targets role's delegations */
	tuf_keyring keys;
	/* timestamp */
	tuf_metafile snapshot_meta;
	/* snapshot: METAPATH -> METAFILE, every entry validated */
	json_t *meta;
	/* targets: TARGETPATH -> TARGETFILE, every entry validated; NULL when lean */
	json_t *targets;
	/*
	 * Lean targets (tuf_metadata_parse_lean): the TARGETPATH -> TARGETFILE map stays in raw
	 * (validated, read by scanning: tuf_metadata_target, tuf_metadata_target_paths), doc
	 * holds everything else with an empty "targets", the canonical form comes from raw.
	 */
	bool lean;
	jc_span signed_span;
	jc_span targets_map;
	bool has_delegations;
	bool succinct;
	tuf_delegation *delegations;
	size_t n_delegations;
	tuf_succinct succinct_roles;
} tuf_metadata;

/*
 * Parses raw (len bytes, cap enforced by the caller) as metadata of the expected type.
 * "what" names the file in errors ("2.root.json"). Checks format only, not signatures.
 */
int tuf_metadata_parse(tuf_metadata **out, tuf_role_type expected, const uint8_t *raw,
		       size_t len, const char *what, otter_error *err);
/* Same, taking ownership of *raw (a malloc()ed buffer) on success: no copy is made. */
int tuf_metadata_parse_owned(tuf_metadata **out, tuf_role_type expected, uint8_t **raw,
			     size_t len, const char *what, otter_error *err);
/*
 * Targets metadata for a client (TUF_TARGETS only; takes *raw on success like
 * tuf_metadata_parse_owned): accepts and rejects exactly the same files, but builds no
 * jansson tree for the targets map, which for a repository of 50,000 targets is most of the
 * file. md->targets is NULL: read entries with tuf_metadata_target.
 */
int tuf_metadata_parse_lean(tuf_metadata **out, uint8_t **raw, size_t len, const char *what,
			    otter_error *err);
/* The TARGETFILE of path in targets metadata (*out: a new reference, NULL if not listed). */
int tuf_metadata_target(const tuf_metadata *md, const char *path, json_t **out,
			otter_error *err);
/* The targets whose path starts with prefix, in file order (free with tuf_target_list_free). */
typedef struct tuf_target_entry {
	char *path;
	json_t *info; /* TARGETFILE */
} tuf_target_entry;
int tuf_metadata_target_list(const tuf_metadata *md, const char *prefix,
			     tuf_target_entry **out, size_t *n, otter_error *err);
void tuf_target_list_free(tuf_target_entry *list, size_t n);

/*
 * Frees the canonical form of "signed" (as large as the file) once the metadata is trusted;
 * a later signature check computes it again.
 */
void tuf_metadata_drop_canonical(tuf_metadata *md);
tuf_metadata *tuf_metadata_free(tuf_metadata *md);

/*
 * Counts valid signatures of md by the keys of role (looked up in ring), each distinct key
 * material once. Fails with OTTER_E_SIGNATURE when fewer than role->threshold verify.
 */
int tuf_verify_threshold(const tuf_metadata *md, const tuf_keyring *ring,
			 const tuf_rolekeys *role, const char *what, otter_error *err);
size_t tuf_count_valid_signatures(const tuf_metadata *md, const tuf_keyring *ring,
				  const tuf_rolekeys *role);

const tuf_keyentry *tuf_keyring_find(const tuf_keyring *ring, const char *keyid);

/* Parses a METAFILE (used for "meta" lookups in snapshot). */
int tuf_metafile_parse(const json_t *obj, const char *what, tuf_metafile *out, otter_error *err);

/* Checks length (when given) and every listed hash of data. An unknown algorithm fails. */
int tuf_check_length_hashes(const uint8_t *data, size_t len, bool has_length, uint64_t length,
			    const json_t *hashes, const char *what, otter_error *err);

/* True when both roles name the same set of keyids (fast-forward recovery, spec 5.3.11). */
bool tuf_rolekeys_equal(const tuf_rolekeys *a, const tuf_rolekeys *b);

/* Delegation matching (tuf.md §7.7). */
bool tuf_delegation_matches(const tuf_delegation *d, const char *target_path);
bool tuf_path_matches_pattern(const char *path, const char *pattern);
/* Name of the succinct hash bin for target_path into out (size >= prefix + 10). */
int tuf_succinct_bin_name(const tuf_succinct *s, const char *target_path, char **out,
			  otter_error *err);

/* A streaming verifier for length and hashes of a large file (targets). */
typedef struct tuf_hash_verifier tuf_hash_verifier;
int tuf_hash_verifier_new(tuf_hash_verifier **out, const json_t *hashes, const char *what,
			  otter_error *err);
int tuf_hash_verifier_update(tuf_hash_verifier *v, const uint8_t *data, size_t len,
			     otter_error *err);
int tuf_hash_verifier_finish(tuf_hash_verifier *v, uint64_t length_seen, uint64_t length,
			     const char *what, otter_error *err);
tuf_hash_verifier *tuf_hash_verifier_free(tuf_hash_verifier *v);

#endif
