/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_REPO_H
#define OTTER_REPO_H

/*
 * Repository authoring (tuf.md §10, repository.md): the building blocks of otter-repo and
 * otter-director, in the authoring library (libotter_repo, src/lib/repo/). It stands beside the
 * device library: a device links libotter and never carries this signing code.
 *
 *  - role names, target paths and the file names of a consistent-snapshot repository;
 *  - signed payloads: skeletons of the four roles, version and expiry updates;
 *  - envelopes: {"signatures": [...], "signed": {...}}; signing the canonical form of
 *    "signed", merging signatures one per keyid, dropping them when the payload changes;
 *  - serialisation: pretty-printed, ASCII-only JSON (strings other than PEM keys hold no
 *    control characters), which is what gets published and hashed;
 *  - METAFILE entries over the exact published bytes, TARGETFILE entries over a file
 *    streamed once (length, sha256, sha512);
 *  - root and delegation edits: keys, keyids, thresholds, delegated roles, succinct bins;
 *  - parsed metadata (otter_repo_metadata, opaque): what was published or staged, read back
 *    with the client's own parser and threshold check, and signature status;
 *  - the repository configuration (otter-repo.conf).
 *
 * Nothing here prints; errors name the role, key or file concerned. Functions return 0 (or a
 * count) on success and a negative OTTER_E_* code on failure, with err filled in. Returned
 * json_t pointers documented as borrowed stay valid until their owner changes or is freed.
 * Not thread-safe on one object; separate objects may be used from separate threads.
 *
 * This header is the library's whole interface: programs include no header of src/lib/repo/
 * or src/lib/tuf/. The library is static and not installed (docs/architecture.md says why),
 * so nothing here is ABI and nothing is marked OTTER_PUBLIC.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/crypto.h>
#include <otter/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The specification version written into new metadata. */
#define OTTER_REPO_SPEC_VERSION "1.0.31"

/* Largest succinct hash-bin delegation otter-repo creates (2^16 bin files). */
#define OTTER_REPO_MAX_BIN_BITS 16u

/* The four top-level roles. Delegated roles are of type OTTER_REPO_TARGETS. */
typedef enum otter_repo_role_type {
	OTTER_REPO_ROOT,
	OTTER_REPO_TIMESTAMP,
	OTTER_REPO_SNAPSHOT,
	OTTER_REPO_TARGETS,
} otter_repo_role_type;
#define OTTER_REPO_ROLE_TYPES 4

/* "root", "timestamp", "snapshot", "targets"; "unknown" for a value out of range. */
const char *otter_repo_role_type_name(otter_repo_role_type t);


/* ---- names ---- */

/* One of "root", "timestamp", "snapshot", "targets"; -1 for any other name. */
int otter_repo_top_level_type(const char *name);

/*
 * A role name otter-repo accepts for a delegated role: 1..OTTER_TUF_MAX_ROLE_NAME bytes of
 * [A-Za-z0-9._-], not starting with '.', and not a top-level role name. (Other TUF tools allow
 * more; these names need no escaping in URLs and file names.)
 */
bool otter_repo_role_name_ok(const char *name);

/*
 * A target path otter-repo accepts: target_path_is_safe() (relative, no empty, "." or ".."
 * components, no control bytes) and only [A-Za-z0-9._~+=,@-] and '/', so that it is the same
 * string in metadata, URLs and file names.
 */
bool otter_repo_target_path_ok(const char *path);

/*
 * Published metadata file name (tuf.md §6.1): "V.<role>.json" with consistent snapshots,
 * "<role>.json" without; root is always "N.root.json", timestamp never versioned. The role name
 * is percent-encoded. Caller frees.
 */
int otter_repo_metadata_filename(const char *role, uint64_t version, bool consistent, char **out,
				 otter_error *err);

/*
 * The file names under the targets folder a client may fetch for a target (tuf.md §6.2): one
 * "dir/<hex>.base" per listed hash with consistent snapshots, else the path itself. *out is a
 * NULL-terminated array; free with otter_repo_strv_free.
 */
int otter_repo_target_filenames(const char *path, const json_t *hashes, bool consistent,
				char ***out, otter_error *err);
char **otter_repo_strv_free(char **v);

/* Bin names of a succinct delegation, "prefix-00" .. (tuf.md §3.5). NULL-terminated. */
int otter_repo_succinct_bin_names(const char *prefix, unsigned bits, char ***out,
				  otter_error *err);

/* ---- signed payloads ---- */

/*
 * A new "signed" object of a role at version 1: root with empty keys and the four roles at
 * threshold 1 and consistent_snapshot as given; targets with no targets; snapshot and timestamp
 * with an empty meta (publish fills it in).
 */
int otter_repo_signed_new(json_t **out, otter_repo_role_type type, int64_t expires, bool consistent,
			  otter_error *err);

/* Sets "version" and "expires" of a signed object. */
int otter_repo_signed_set(json_t *signed_obj, uint64_t version, int64_t expires, otter_error *err);

/* Reads "version" (>= 1) and "expires" of a signed object. */
int otter_repo_signed_get(const json_t *signed_obj, uint64_t *version, int64_t *expires,
			  otter_error *err);

/* ---- envelopes and signatures ---- */

/* {"signatures": [], "signed": signed_obj}; takes a new reference to signed_obj. */
int otter_repo_envelope_new(json_t **out, json_t *signed_obj, otter_error *err);

/*
 * Parses bytes of a metadata file for editing: validated with otter_repo_metadata_parse (its _type
 * decides the role type, returned in *type_out), then returned as a deep copy of the document.
 */
int otter_repo_envelope_parse(json_t **out, otter_repo_role_type *type_out, const uint8_t *buf,
			      size_t len, const char *what, otter_error *err);

/* The "signed" member of an envelope (borrowed), or NULL. */
json_t *otter_repo_envelope_signed(const json_t *env);

/* The key id (tuf.md §4.2) of a key as otter publishes it; *keyobj_out (optional) gets the
 * TUF KEY object (new reference). */
int otter_repo_keyid(const otter_key *key, char keyid[OTTER_KEYID_HEX_LEN + 1], json_t **keyobj_out,
		     otter_error *err);

/*
 * Signs the canonical form of env's "signed" with key (which must hold its private part) and
 * puts {"keyid", "sig"} into "signatures", replacing an earlier signature by the same key.
 * keyid_out (optional) gets the key id.
 */
int otter_repo_sign(json_t *env, const otter_key *key, char keyid_out[OTTER_KEYID_HEX_LEN + 1],
		    otter_error *err);

/*
 * Copies into dst the signatures of src by key ids dst has no signature from. Both must carry
 * the same "signed" payload (compared in canonical form), else OTTER_E_INVALID. *added
 * (optional) counts the signatures copied.
 */
int otter_repo_merge_signatures(json_t *dst, const json_t *src, size_t *added, otter_error *err);

/* Removes every signature; returns how many there were. */
size_t otter_repo_clear_signatures(json_t *env);

/* True when both envelopes' "signed" payloads have the same canonical form. */
bool otter_repo_same_signed(const json_t *a, const json_t *b);

/*
 * Serialises an envelope as published: otter_json_pretty of the whole envelope after checking
 * that the canonical form exists (no floats) and that every string and member name is printable
 * ASCII (newlines allowed only in PEM public keys).
 */
int otter_repo_serialize(const json_t *env, uint8_t **out, size_t *len, otter_error *err);

/* The string check above on any JSON value; "what" names it in errors. */
int otter_repo_check_ascii(const json_t *v, const char *what, otter_error *err);

/* ---- entries ---- */

/* METAFILE {"version", "length", "hashes": {"sha256", "sha512"}} over data (the exact bytes
 * published). */
int otter_repo_metafile(json_t **out, uint64_t version, const uint8_t *data, size_t len,
			otter_error *err);

/* Length and digests of a target, computed in one pass. */
typedef struct otter_repo_digest {
	uint64_t length;
	char sha256[2 * 32 + 1];
	char sha512[2 * 64 + 1];
} otter_repo_digest;

/*
 * Streams in_fd to its end (at most max bytes, else OTTER_E_TOO_LARGE), hashing it and, when
 * out_fd >= 0, copying it there. A read error names "what".
 */
int otter_repo_digest_fd(int in_fd, int out_fd, uint64_t max, otter_repo_digest *out,
			 const char *what, otter_error *err);

/* TARGETFILE {"length", "hashes": {"sha256", "sha512"}, "custom"?}; custom (optional) must be
 * an object and is copied. */
int otter_repo_targetfile(json_t **out, const otter_repo_digest *d, const json_t *custom,
			  otter_error *err);

/* ---- keys and roles ---- */

/*
 * Adds key to a keys object (root "keys" or delegations "keys") under its key id; an identical
 * entry already there is fine. keyid_out (optional) gets the id.
 */
int otter_repo_keys_add(json_t *keys, const otter_key *key, char keyid_out[OTTER_KEYID_HEX_LEN + 1],
			otter_error *err);

/* The role object root.roles.<type> (borrowed) of a root "signed" object, or NULL. */
json_t *otter_repo_root_role(const json_t *root_signed, otter_repo_role_type type);

/* Adds keyid to a role's "keyids" (no-op when present). */
int otter_repo_role_add_keyid(json_t *role, const char *keyid, otter_error *err);
/* Removes keyid from a role's "keyids"; OTTER_E_NOT_FOUND when absent. */
int otter_repo_role_remove_keyid(json_t *role, const char *keyid, const char *what,
				 otter_error *err);
/* True if the role lists keyid. */
bool otter_repo_role_has_keyid(const json_t *role, const char *keyid);
/*
 * Sets a role's threshold (0 keeps it) and checks 1 <= threshold <= number of keyids, so that
 * the role can be satisfied. "what" names the role in errors.
 */
int otter_repo_role_set_threshold(json_t *role, uint64_t threshold, const char *what,
				  otter_error *err);

/* Drops from root "keys" every key no role lists. */
void otter_repo_root_prune_keys(json_t *root_signed);

/* ---- delegations ---- */

typedef struct otter_repo_delegation {
	const char *name;
	const char *const *paths; /* exactly one of paths / prefixes */
	size_t n_paths;
	const char *const *prefixes;
	size_t n_prefixes;
	otter_key *const *keys;
	size_t n_keys;
	uint64_t threshold;
	bool terminating;
} otter_repo_delegation;

/*
 * Appends a delegated role to a targets "signed" object (creating "delegations"), after
 * checking the name, the patterns (paths as target paths with glob characters, prefixes as
 * lower-case hex of 1..64 digits), keys and threshold. OTTER_E_EXISTS if the name is already
 * delegated; OTTER_E_STATE if the object uses succinct hash bins.
 */
int otter_repo_delegate(json_t *targets_signed, const otter_repo_delegation *d, otter_error *err);

/*
 * Delegates every target to 2^bits succinct hash bins named "<prefix>-<hex>" (tuf.md §3.5),
 * signed by keys at threshold. OTTER_E_STATE if other delegations exist.
 */
int otter_repo_delegate_succinct(json_t *targets_signed, const char *prefix, unsigned bits,
				 otter_key *const *keys, size_t n_keys, uint64_t threshold,
				 otter_error *err);

/* Removes a delegated role (or, given the bins' name prefix, a succinct delegation) and the
 * keys only it used. OTTER_E_NOT_FOUND if absent. */
int otter_repo_undelegate(json_t *targets_signed, const char *name, otter_error *err);

/* The delegated role object named name (borrowed), or NULL. */
json_t *otter_repo_delegation_find(const json_t *targets_signed, const char *name);

/* Drops from delegations "keys" every key no delegated role (or the succinct roles) lists. */
void otter_repo_delegations_prune_keys(json_t *targets_signed);

/* ---- parsed metadata ---- */

/*
 * A metadata file parsed and validated by the client's own code (format only, not
 * signatures): what otter-repo reads back from metadata/ and staged/, and what the director
 * checks an uploaded root with. Opaque; so are the key tables and role key lists it holds,
 * which are borrowed from it and live as long as it does.
 */
typedef struct otter_repo_metadata otter_repo_metadata;
/* A key table: root "keys", or the "keys" of a targets role's delegations. */
typedef struct otter_repo_keyring otter_repo_keyring;
/* Which keys sign a role and how many must (root "roles" entry or a delegated role). */
typedef struct otter_repo_rolekeys otter_repo_rolekeys;
/* One delegated role of a targets role's "delegations" (not a succinct one). */
typedef struct otter_repo_delegated_role otter_repo_delegated_role;

/*
 * Parses raw (len bytes; the caller enforces its size cap) as metadata of the expected type.
 * "what" names the file in errors ("2.root.json"). OTTER_E_INVALID (or the parser's code)
 * when malformed or of another type.
 */
int otter_repo_metadata_parse(otter_repo_metadata **out, otter_repo_role_type expected,
			      const uint8_t *raw, size_t len, const char *what, otter_error *err);
/* Accepts NULL; returns NULL. */
otter_repo_metadata *otter_repo_metadata_free(otter_repo_metadata *md);

otter_repo_role_type otter_repo_metadata_type(const otter_repo_metadata *md);
uint64_t otter_repo_metadata_version(const otter_repo_metadata *md);
/* Seconds since the epoch. */
int64_t otter_repo_metadata_expires(const otter_repo_metadata *md);
/* The exact bytes parsed (borrowed); *len gets their length. */
const uint8_t *otter_repo_metadata_raw(const otter_repo_metadata *md, size_t *len);
/* The whole document, {"signatures", "signed"} (borrowed; do not modify). */
const json_t *otter_repo_metadata_doc(const otter_repo_metadata *md);
/* Its "signed" object (borrowed; do not modify). */
const json_t *otter_repo_metadata_signed(const otter_repo_metadata *md);
/* root: consistent_snapshot; false for other roles. */
bool otter_repo_metadata_consistent_snapshot(const otter_repo_metadata *md);
/*
 * targets: TARGETPATH -> TARGETFILE, every entry validated (borrowed, do not modify; not const
 * so that json_object_foreach takes it); NULL for other roles.
 */
json_t *otter_repo_metadata_targets(const otter_repo_metadata *md);
/* timestamp: the version of snapshot it lists; 0 for other roles. */
uint64_t otter_repo_metadata_snapshot_version(const otter_repo_metadata *md);
/* snapshot: METAPATH -> METAFILE, every entry validated (borrowed, do not modify, as above);
 * NULL for other roles. */
json_t *otter_repo_metadata_meta(const otter_repo_metadata *md);

/* root: the root keys; targets: the keys of its delegations (empty without any). */
const otter_repo_keyring *otter_repo_metadata_keys(const otter_repo_metadata *md);
/* root: the keys of top-level role type; NULL for other metadata or a type out of range. */
const otter_repo_rolekeys *otter_repo_metadata_root_role(const otter_repo_metadata *md,
							 otter_repo_role_type type);

/* targets: the delegated roles listed by name (0 when it uses succinct hash bins). */
size_t otter_repo_metadata_n_delegations(const otter_repo_metadata *md);
/* The i-th of them (borrowed), NULL when i is out of range. */
const otter_repo_delegated_role *otter_repo_metadata_delegation(const otter_repo_metadata *md,
								size_t i);
const char *otter_repo_delegated_role_name(const otter_repo_delegated_role *d);
const otter_repo_rolekeys *otter_repo_delegated_role_keys(const otter_repo_delegated_role *d);
/* Whether target_path is in what the role is delegated (paths or hash prefixes; tuf.md §7.7). */
bool otter_repo_delegated_role_matches(const otter_repo_delegated_role *d,
				       const char *target_path);

/*
 * targets: true when it delegates to succinct hash bins; *bits and *prefix (optional,
 * borrowed) get the bit length and the bins' name prefix.
 */
bool otter_repo_metadata_succinct(const otter_repo_metadata *md, unsigned *bits,
				  const char **prefix);
/* The keys of every bin of a succinct delegation, NULL without one. */
const otter_repo_rolekeys *otter_repo_metadata_succinct_keys(const otter_repo_metadata *md);
/* True when name is one of the bins of md's succinct delegation ("<prefix>-<hex>"). */
bool otter_repo_metadata_is_bin(const otter_repo_metadata *md, const char *name);
/*
 * The bin target_path falls in (caller frees), as a client computes it. OTTER_E_STATE when md
 * has no succinct delegation.
 */
int otter_repo_metadata_bin_for(const otter_repo_metadata *md, const char *target_path,
				char **out, otter_error *err);

/* How many signatures a role needs. */
uint64_t otter_repo_rolekeys_threshold(const otter_repo_rolekeys *k);
/* The number of key ids the role lists. */
size_t otter_repo_rolekeys_count(const otter_repo_rolekeys *k);
/* The i-th key id it lists (borrowed), NULL when i is out of range. */
const char *otter_repo_rolekeys_keyid(const otter_repo_rolekeys *k, size_t i);
/* True if the role lists keyid. NULL k lists nothing. */
bool otter_repo_rolekeys_has(const otter_repo_rolekeys *k, const char *keyid);
/* The key with that keyid in ring (borrowed), NULL when absent or its material is unusable. */
const otter_key *otter_repo_keyring_find(const otter_repo_keyring *ring, const char *keyid);

/*
 * Threshold check, the client's (tuf.md §4.3): valid signatures of md by the keys of role
 * (looked up in ring), each distinct key material once. OTTER_E_SIGNATURE when fewer than its
 * threshold verify; "what" names the file.
 */
int otter_repo_verify_threshold(const otter_repo_metadata *md, const otter_repo_keyring *ring,
				const otter_repo_rolekeys *role, const char *what,
				otter_error *err);
/* The number of valid signatures as above, without failing. */
size_t otter_repo_count_valid_signatures(const otter_repo_metadata *md,
					 const otter_repo_keyring *ring,
					 const otter_repo_rolekeys *role);

/*
 * Which keys of role have a valid signature on md (the same check). signed_out and
 * missing_out (optional, NULL-terminated, free with otter_repo_strv_free) get the key ids
 * with and without one. Returns the number valid, or a negative error.
 */
int otter_repo_signature_status(const otter_repo_metadata *md, const otter_repo_keyring *ring,
				const otter_repo_rolekeys *role, char ***signed_out,
				char ***missing_out, otter_error *err);

/* The "version" of a METAFILE entry (snapshot "meta", timestamp "meta"), checked as a client
 * checks it; "what" names the entry. */
int otter_repo_metafile_version(const json_t *entry, const char *what, uint64_t *version,
				otter_error *err);

/* ---- repository configuration ---- */

/*
 * The repository configuration otter-repo keeps next to metadata/ and targets/
 * (otter-repo.conf). INI style, read by util/ini.c like every configuration file; unknown
 * sections and keys are errors, reported as "file:line: section.key: reason".
 *
 *   [expiry]      root, targets, snapshot, timestamp, delegated = DURATION
 *                 how far ahead a new version of each role expires
 *   [margin]      the same names = DURATION
 *                 status warns when a role expires within its margin; refresh re-signs
 *                 snapshot and timestamp when they do
 *   [online]      ROLE = /absolute/path/key.pem   (repeatable; any role except root)
 *                 private keys publish and refresh sign with, without asking anyone
 *   [passphrase]  env = VARIABLE | file = /absolute/path
 *                 where the passphrase of encrypted online keys comes from
 *
 * DURATION is a whole number with a unit: 90d, 12h, 30m, 45s, 2w.
 */

#define OTTER_REPO_CONFIG_NAME      "otter-repo.conf"
#define OTTER_REPO_CONFIG_MAX_SIZE  65536u
#define OTTER_REPO_CONFIG_MAX_LINE  4096u
#define OTTER_REPO_CONFIG_MAX_ONLINE 64u
/* Durations stay below 100 years, so that now + duration never overflows a time. */
#define OTTER_REPO_MAX_DURATION     (100ll * 366 * 86400)

/* Index of the delegated-role entry in the expiry and margin arrays. */
#define OTTER_REPO_DELEGATED OTTER_REPO_ROLE_TYPES

typedef struct otter_repo_online_key {
	char *role;
	char *path;
} otter_repo_online_key;

typedef struct otter_repo_config {
	/* seconds, by otter_repo_role_type, then OTTER_REPO_DELEGATED */
	int64_t expiry[OTTER_REPO_ROLE_TYPES + 1];
	int64_t margin[OTTER_REPO_ROLE_TYPES + 1];
	otter_repo_online_key *online;
	size_t n_online;
	char *passphrase_env;
	char *passphrase_file;
} otter_repo_config;

/* Defaults: expiry root 365 d, targets 90 d, snapshot 7 d, timestamp 1 d, delegated 90 d;
 * margins 30 d, 14 d, 2 d, 6 h, 14 d; no online keys. */
void otter_repo_config_init(otter_repo_config *c);
void otter_repo_config_clear(otter_repo_config *c);

/*
 * Parses buf (len bytes, at most OTTER_REPO_CONFIG_MAX_SIZE) on top of the values already in c
 * (normally the defaults). "what" names the file in errors. On failure c is left as it was.
 */
int otter_repo_config_parse(otter_repo_config *c, const uint8_t *buf, size_t len, const char *what,
			    otter_error *err);

/* Writes c back as a configuration file (with comments); caller frees. */
int otter_repo_config_format(const otter_repo_config *c, char **out, otter_error *err);

/* Adds an online key; the path must be absolute. */
int otter_repo_config_add_online(otter_repo_config *c, const char *role, const char *path,
				 otter_error *err);

/* Expiry period and margin for a role by name (top-level, else the delegated value). */
int64_t otter_repo_config_expiry(const otter_repo_config *c, const char *role);
int64_t otter_repo_config_margin(const otter_repo_config *c, const char *role);

/* "90d" -> seconds; 0 on success, -1 if malformed, zero or above OTTER_REPO_MAX_DURATION. */
int otter_repo_parse_duration(const char *s, int64_t *out);
/* Seconds -> the largest exact unit ("90d", "36h", "45s"). */
void otter_repo_format_duration(int64_t secs, char out[32]);

#ifdef __cplusplus
}
#endif

#endif
