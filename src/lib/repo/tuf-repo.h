/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_TUF_REPO_H
#define OTTER_LIB_TUF_REPO_H

/*
 * Repository authoring (tuf.md §10): the building blocks otter-repo is made of, kept in the
 * library so that other programs and tests can author metadata the same way.
 *
 *  - signed payloads: skeletons of the four roles, version and expiry updates;
 *  - envelopes: {"signatures": [...], "signed": {...}}; signing the canonical form of
 *    "signed", merging signatures one per keyid, dropping them when the payload changes;
 *  - serialisation: pretty-printed, ASCII-only JSON (strings other than PEM keys hold no
 *    control characters), which is what gets published and hashed;
 *  - METAFILE entries over the exact published bytes, TARGETFILE entries over a file
 *    streamed once (length, sha256, sha512);
 *  - root and delegation edits: keys, keyids, thresholds, delegated roles, succinct bins;
 *  - file names of a consistent-snapshot repository (tuf.md §6).
 *
 * Verification of what is authored goes through tuf-metadata.h (tuf_metadata_parse and
 * tuf_verify_threshold), the code the client runs. Nothing here prints; errors name the role,
 * key or file concerned.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/crypto.h>
#include <otter/error.h>

#include "lib/tuf/tuf-metadata.h"

/* The specification version written into new metadata. */
#define TUF_REPO_SPEC_VERSION "1.0.31"

/* Largest succinct hash-bin delegation otter-repo creates (2^16 bin files). */
#define TUF_REPO_MAX_BIN_BITS 16u

/* ---- names ---- */

/* One of "root", "timestamp", "snapshot", "targets"; -1 for any other name. */
int tuf_repo_top_level_type(const char *name);

/*
 * A role name otter-repo accepts for a delegated role: 1..OTTER_TUF_MAX_ROLE_NAME bytes of
 * [A-Za-z0-9._-], not starting with '.', and not a top-level role name. (Other TUF tools allow
 * more; these names need no escaping in URLs and file names.)
 */
bool tuf_repo_role_name_ok(const char *name);

/*
 * A target path otter-repo accepts: target_path_is_safe() (relative, no empty, "." or ".."
 * components, no control bytes) and only [A-Za-z0-9._~+=,@-] and '/', so that it is the same
 * string in metadata, URLs and file names.
 */
bool tuf_repo_target_path_ok(const char *path);

/*
 * Published metadata file name (tuf.md §6.1): "V.<role>.json" with consistent snapshots,
 * "<role>.json" without; root is always "N.root.json", timestamp never versioned. The role name
 * is percent-encoded. Caller frees.
 */
int tuf_repo_metadata_filename(const char *role, uint64_t version, bool consistent, char **out,
			       otter_error *err);

/*
 * The file names under the targets folder a client may fetch for a target (tuf.md §6.2): one
 * "dir/<hex>.base" per listed hash with consistent snapshots, else the path itself. *out is a
 * NULL-terminated array; free with tuf_repo_strv_free.
 */
int tuf_repo_target_filenames(const char *path, const json_t *hashes, bool consistent,
			      char ***out, otter_error *err);
char **tuf_repo_strv_free(char **v);

/* Bin names of a succinct delegation, "prefix-00" .. (tuf.md §3.5). NULL-terminated. */
int tuf_repo_succinct_bin_names(const char *prefix, unsigned bits, char ***out,
				otter_error *err);

/* ---- signed payloads ---- */

/*
 * A new "signed" object of a role at version 1: root with empty keys and the four roles at
 * threshold 1 and consistent_snapshot as given; targets with no targets; snapshot and timestamp
 * with an empty meta (publish fills it in).
 */
int tuf_repo_signed_new(json_t **out, tuf_role_type type, int64_t expires, bool consistent,
			otter_error *err);

/* Sets "version" and "expires" of a signed object. */
int tuf_repo_signed_set(json_t *signed_obj, uint64_t version, int64_t expires, otter_error *err);

/* Reads "version" (>= 1) and "expires" of a signed object. */
int tuf_repo_signed_get(const json_t *signed_obj, uint64_t *version, int64_t *expires,
			otter_error *err);

/* ---- envelopes and signatures ---- */

/* {"signatures": [], "signed": signed_obj}; takes a new reference to signed_obj. */
int tuf_repo_envelope_new(json_t **out, json_t *signed_obj, otter_error *err);

/*
 * Parses bytes of a metadata file for editing: validated with tuf_metadata_parse (its _type
 * decides the role type, returned in *type_out), then returned as a deep copy of the document.
 */
int tuf_repo_envelope_parse(json_t **out, tuf_role_type *type_out, const uint8_t *buf,
			    size_t len, const char *what, otter_error *err);

/* The "signed" member of an envelope (borrowed), or NULL. */
json_t *tuf_repo_envelope_signed(const json_t *env);

/* The key id (tuf.md §4.2) of a key as otter publishes it; *keyobj_out (optional) gets the
 * TUF KEY object (new reference). */
int tuf_repo_keyid(const otter_key *key, char keyid[OTTER_KEYID_HEX_LEN + 1], json_t **keyobj_out,
		   otter_error *err);

/*
 * Signs the canonical form of env's "signed" with key (which must hold its private part) and
 * puts {"keyid", "sig"} into "signatures", replacing an earlier signature by the same key.
 * keyid_out (optional) gets the key id.
 */
int tuf_repo_sign(json_t *env, const otter_key *key, char keyid_out[OTTER_KEYID_HEX_LEN + 1],
		  otter_error *err);

/*
 * Copies into dst the signatures of src by key ids dst has no signature from. Both must carry
 * the same "signed" payload (compared in canonical form), else OTTER_E_INVALID. *added
 * (optional) counts the signatures copied.
 */
int tuf_repo_merge_signatures(json_t *dst, const json_t *src, size_t *added, otter_error *err);

/* Removes every signature; returns how many there were. */
size_t tuf_repo_clear_signatures(json_t *env);

/* True when both envelopes' "signed" payloads have the same canonical form. */
bool tuf_repo_same_signed(const json_t *a, const json_t *b);

/*
 * Serialises an envelope as published: otter_json_pretty of the whole envelope after checking
 * that the canonical form exists (no floats) and that every string and member name is printable
 * ASCII (newlines allowed only in PEM public keys).
 */
int tuf_repo_serialize(const json_t *env, uint8_t **out, size_t *len, otter_error *err);

/* The string check above on any JSON value; "what" names it in errors. */
int tuf_repo_check_ascii(const json_t *v, const char *what, otter_error *err);

/* ---- entries ---- */

/* METAFILE {"version", "length", "hashes": {"sha256", "sha512"}} over data (the exact bytes
 * published). */
int tuf_repo_metafile(json_t **out, uint64_t version, const uint8_t *data, size_t len,
		      otter_error *err);

/* Length and digests of a target, computed in one pass. */
typedef struct tuf_repo_digest {
	uint64_t length;
	char sha256[2 * 32 + 1];
	char sha512[2 * 64 + 1];
} tuf_repo_digest;

/*
 * Streams in_fd to its end (at most max bytes, else OTTER_E_TOO_LARGE), hashing it and, when
 * out_fd >= 0, copying it there. A read error names "what".
 */
int tuf_repo_digest_fd(int in_fd, int out_fd, uint64_t max, tuf_repo_digest *out,
		       const char *what, otter_error *err);

/* TARGETFILE {"length", "hashes": {"sha256", "sha512"}, "custom"?}; custom (optional) must be
 * an object and is copied. */
int tuf_repo_targetfile(json_t **out, const tuf_repo_digest *d, const json_t *custom,
			otter_error *err);

/* ---- keys and roles ---- */

/*
 * Adds key to a keys object (root "keys" or delegations "keys") under its key id; an identical
 * entry already there is fine. keyid_out (optional) gets the id.
 */
int tuf_repo_keys_add(json_t *keys, const otter_key *key, char keyid_out[OTTER_KEYID_HEX_LEN + 1],
		      otter_error *err);

/* The role object root.roles.<type> (borrowed) of a root "signed" object, or NULL. */
json_t *tuf_repo_root_role(const json_t *root_signed, tuf_role_type type);

/* Adds keyid to a role's "keyids" (no-op when present). */
int tuf_repo_role_add_keyid(json_t *role, const char *keyid, otter_error *err);
/* Removes keyid from a role's "keyids"; OTTER_E_NOT_FOUND when absent. */
int tuf_repo_role_remove_keyid(json_t *role, const char *keyid, const char *what,
			       otter_error *err);
/* True if the role lists keyid. */
bool tuf_repo_role_has_keyid(const json_t *role, const char *keyid);
/*
 * Sets a role's threshold (0 keeps it) and checks 1 <= threshold <= number of keyids, so that
 * the role can be satisfied. "what" names the role in errors.
 */
int tuf_repo_role_set_threshold(json_t *role, uint64_t threshold, const char *what,
				otter_error *err);

/* Drops from root "keys" every key no role lists. */
void tuf_repo_root_prune_keys(json_t *root_signed);

/* ---- delegations ---- */

typedef struct tuf_repo_delegation {
	const char *name;
	const char *const *paths; /* exactly one of paths / prefixes */
	size_t n_paths;
	const char *const *prefixes;
	size_t n_prefixes;
	otter_key *const *keys;
	size_t n_keys;
	uint64_t threshold;
	bool terminating;
} tuf_repo_delegation;

/*
 * Appends a delegated role to a targets "signed" object (creating "delegations"), after
 * checking the name, the patterns (paths as target paths with glob characters, prefixes as
 * lower-case hex of 1..64 digits), keys and threshold. OTTER_E_EXISTS if the name is already
 * delegated; OTTER_E_STATE if the object uses succinct hash bins.
 */
int tuf_repo_delegate(json_t *targets_signed, const tuf_repo_delegation *d, otter_error *err);

/*
 * Delegates every target to 2^bits succinct hash bins named "<prefix>-<hex>" (tuf.md §3.5),
 * signed by keys at threshold. OTTER_E_STATE if other delegations exist.
 */
int tuf_repo_delegate_succinct(json_t *targets_signed, const char *prefix, unsigned bits,
			       otter_key *const *keys, size_t n_keys, uint64_t threshold,
			       otter_error *err);

/* Removes a delegated role (or, given the bins' name prefix, a succinct delegation) and the
 * keys only it used. OTTER_E_NOT_FOUND if absent. */
int tuf_repo_undelegate(json_t *targets_signed, const char *name, otter_error *err);

/* The delegated role object named name (borrowed), or NULL. */
json_t *tuf_repo_delegation_find(const json_t *targets_signed, const char *name);

/* Drops from delegations "keys" every key no delegated role (or the succinct roles) lists. */
void tuf_repo_delegations_prune_keys(json_t *targets_signed);

/* ---- signature status ---- */

/*
 * Which keys of role (looked up in ring) have a valid signature on md, the same check as
 * tuf_verify_threshold. signed_out and missing_out (optional, NULL-terminated, free with
 * tuf_repo_strv_free) get the key ids with and without one. Returns the number valid, or a
 * negative error.
 */
int tuf_repo_signature_status(const tuf_metadata *md, const tuf_keyring *ring,
			      const tuf_rolekeys *role, char ***signed_out, char ***missing_out,
			      otter_error *err);

#endif
