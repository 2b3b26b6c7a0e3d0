/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_DEVICE_H
#define OTTER_LIB_DIRECTOR_DEVICE_H

/*
 * The device side of the director over the database (docs/director-protocol.md): request
 * authentication by ECU key, registration, the per-device metadata (regenerated only when the
 * device's assignments or the root changed or a role nears expiry), manifests. The HTTP
 * server (server.c) and the otter-director commands call these; each runs its writes in one
 * dir_db_transaction.
 *
 * Failures set err and, when rep is given, the HTTP answer the server gives (status and a
 * short error code, docs/director-protocol.md "Errors").
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/crypto.h>
#include <otter/error.h>

#include "lib/director/auth.h"
#include "lib/director/db.h"

#define DIR_REGISTER_MAX_SIZE (16u * 1024u)
#define DIR_MANIFEST_HISTORY 100
#define DIR_MAX_ECUS 64u

typedef struct dir_reply {
	int status;        /* HTTP status */
	const char *error; /* "bad_request", "unauthorized", ... (static) */
} dir_reply;

/* The online keys and lifetimes of the per-device metadata (seconds). */
typedef struct dir_signer {
	otter_key *targets, *snapshot, *timestamp;
	int64_t targets_lifetime, snapshot_lifetime, timestamp_lifetime;
	int64_t root_version; /* the newest director root when the server started */
} dir_signer;

/* Who a request is from (found by the key that signed it). */
typedef struct dir_who {
	char device_id[DIR_ID_MAX + 1];
	char serial[DIR_ID_MAX + 1];
	bool primary;
} dir_who;

/*
 * Authenticates a device request by its Otter-Signature header (header NULL: absent).
 * Unknown key, bad signature or time → 401 (OTTER_E_SIGNATURE, OTTER_E_EXPIRED,
 * OTTER_E_NOT_FOUND); nothing is written.
 */
int dir_device_authenticate(dir_db *db, const char *header, const char *method,
			    const char *path, const uint8_t *body, size_t len, int64_t now,
			    int64_t skew, dir_who *out, dir_reply *rep, otter_error *err);

/*
 * Proxy mode (docs/director.md, "Behind nginx"): the device named by a TLS proxy the
 * director trusts; its primary ECU becomes the requester. Unknown device → 401.
 */
int dir_device_identify(dir_db *db, const char *device_id, dir_who *out, dir_reply *rep,
			otter_error *err);

/* POST /register. On success *resp gets the answer object and rep->status 200 or 201. */
int dir_device_register(dir_db *db, const char *header, const char *path, const uint8_t *body,
			size_t len, int64_t now, int64_t skew, json_t **resp, dir_reply *rep,
			otter_error *err);

/*
 * GET /metadata/<name> for an authenticated device: "N.root.json", "timestamp.json",
 * "V.snapshot.json", "V.targets.json". *out gets the bytes (malloc()ed); *version the
 * version of the file (ETag of the timestamp). 404 for anything else or an old version.
 */
int dir_device_metadata(dir_db *db, const dir_signer *s, const dir_who *who, const char *name,
			int64_t now, uint8_t **out, size_t *len, uint64_t *version, dir_reply *rep,
			otter_error *err);

/* PUT /manifest for an authenticated device. */
int dir_device_manifest(dir_db *db, const dir_who *who, const uint8_t *body, size_t len,
			int64_t now, dir_reply *rep, otter_error *err);

/* ---- operator side (otter-director commands) ---- */

typedef struct dir_ecu_spec {
	const char *serial;
	const char *hardware_id;
	const char *key_type; /* "ed25519" / "ecdsa" */
	const char *public_key; /* PEM */
	bool primary;
} dir_ecu_spec;

/* Pre-registers a device with its ECUs (exactly one primary) and tags. */
int dir_device_add(dir_db *db, const char *device_id, const dir_ecu_spec *ecus, size_t n,
		   const char *const *tags, size_t n_tags, int64_t now, otter_error *err);
int dir_device_remove(dir_db *db, const char *device_id, otter_error *err);
/* {"devices": [{"id", "created", "last_seen", "tags", "ecus": [...]}]} (device_id NULL: all). */
int dir_device_list(dir_db *db, const char *device_id, json_t **out, otter_error *err);
/* {"device_id", "manifests": [{"seq", "received", "correlation_id", "success", "manifest"}]} */
int dir_device_history(dir_db *db, const char *device_id, int64_t limit, json_t **out,
		       otter_error *err);

/* Creates a token; *token_out gets the secret text (shown once), id_out its public id. */
int dir_token_create(dir_db *db, int64_t uses, int64_t expires, const char *device_id,
		     const char *const *tags, size_t n_tags, int64_t now, char **token_out,
		     char id_out[DIR_ID_MAX + 1], otter_error *err);
int dir_token_list(dir_db *db, json_t **out, otter_error *err);
int dir_token_revoke(dir_db *db, const char *id, otter_error *err);

/*
 * Imports root metadata files in order (root import): each must chain to the stored newest
 * (or be self-signed when none is stored), use consistent snapshots; files already stored
 * must be identical. Then the newest root must list keys (the server's online public keys,
 * any NULL skipped) for targets, snapshot and timestamp at threshold 1.
 */
int dir_root_import(dir_db *db, const uint8_t *const *files, const size_t *lens, size_t n,
		    const otter_key *targets, const otter_key *snapshot,
		    const otter_key *timestamp, int64_t now, int64_t *version_out,
		    otter_error *err);
/* The newest root's version and bytes (version 0 and NULL when none). */
int dir_root_latest(dir_db *db, int64_t *version, char **body, otter_error *err);
/* Checks that the newest stored root lists the online keys (serve refuses to start else). */
int dir_root_check_keys(dir_db *db, const otter_key *targets, const otter_key *snapshot,
			const otter_key *timestamp, int64_t *version_out, otter_error *err);

#endif
