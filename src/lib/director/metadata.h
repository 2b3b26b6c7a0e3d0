/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_METADATA_H
#define OTTER_LIB_DIRECTOR_METADATA_H

/*
 * The per-device Director repository (docs/director-protocol.md, "Metadata"): targets,
 * snapshot and timestamp of one device, made from its assignments and signed with the
 * server's online keys. Pure functions: the caller (device.c) decides when to regenerate and
 * stores the bytes.
 *
 * targets.signed.custom = {"device_id", "correlationIds": [...], "correlationId"? (when exactly
 * one)}; each entry = the image repository's length and hashes, custom = the image
 * repository's custom plus "ecuIdentifiers": {"<serial>": {"hardwareId"}} and
 * "correlationId". Two ECUs assigned the same image share one entry; one ECU is never named
 * twice (the assignments table holds one row per ECU).
 */

#include <stddef.h>
#include <stdint.h>

#include <otter/crypto.h>
#include <otter/error.h>

/* Largest serialised per-device metadata file the director makes or serves. */
#define DIR_METADATA_MAX_SIZE (256u * 1024u)

typedef struct dir_assignment {
	const char *ecu_serial;
	const char *hardware_id;
	const char *correlation_id;
	const char *target_path;
	int64_t target_length;
	const char *target_hashes; /* JSON object text */
	const char *target_custom; /* JSON object text or NULL */
} dir_assignment;

int dir_meta_targets(const char *device_id, const dir_assignment *a, size_t n, uint64_t version,
		     int64_t expires, const otter_key *key, uint8_t **out, size_t *len,
		     otter_error *err);
int dir_meta_snapshot(uint64_t version, int64_t expires, uint64_t targets_version,
		      const otter_key *key, uint8_t **out, size_t *len, otter_error *err);
/* snapshot: the exact bytes of the snapshot file it names (hashed). */
int dir_meta_timestamp(uint64_t version, int64_t expires, uint64_t snapshot_version,
		       const uint8_t *snapshot, size_t snapshot_len, const otter_key *key,
		       uint8_t **out, size_t *len, otter_error *err);

#endif
