/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_MANIFEST_H
#define OTTER_LIB_DIRECTOR_MANIFEST_H

/*
 * Device version manifests (docs/director-protocol.md, "Manifest"): a TUF-style envelope
 * signed by the primary ECU key, holding one signed version report per ECU and optionally the
 * result of the last installation. Parsing is for untrusted bytes (size-capped, every member
 * checked, fuzz/fuzz-director-manifest.c); verification checks every signature against the
 * keys the director registered for the device. The report counters are checked by the caller
 * against the stored ones (device.c), in the transaction that stores the manifest.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/crypto.h>
#include <otter/error.h>

#define DIR_MANIFEST_MAX_SIZE (256u * 1024u)
#define DIR_MANIFEST_MAX_ECUS 64u
#define DIR_MANIFEST_MAX_SIGS 8u
#define DIR_MANIFEST_MAX_TEXT 1024u /* attacks_detected, description, file paths */

typedef struct dir_ecu_report {
	const char *serial;       /* borrowed from the document, as everything below */
	const json_t *signatures; /* array of {"keyid", "sig" (hex)} */
	uint8_t *canon;           /* canonical form of the report's "signed" (owned) */
	size_t canon_len;
	const char *filepath;
	int64_t length;
	const json_t *hashes; /* object: algorithm -> lower-case hex */
	const char *attacks_detected;
	int64_t report_counter;
} dir_ecu_report;

typedef struct dir_install_item {
	const char *ecu;
	bool success;
	const char *code;
	const char *description;
} dir_install_item;

typedef struct dir_manifest {
	json_t *doc;
	uint8_t *canon; /* canonical form of "signed" (owned) */
	size_t canon_len;
	const json_t *signatures;
	const char *device_id;
	const char *primary_serial;
	dir_ecu_report *ecus; /* sorted by serial */
	size_t n_ecus;
	bool has_report;
	const char *correlation_id;
	bool success;
	const char *code;
	const char *description;
	dir_install_item *items;
	size_t n_items;
} dir_manifest;

/* Parses and checks the structure of a manifest (len bytes, at most DIR_MANIFEST_MAX_SIZE). */
int dir_manifest_parse(dir_manifest **out, const uint8_t *buf, size_t len, otter_error *err);
dir_manifest *dir_manifest_free(dir_manifest *m);

/* An ECU as registered. */
typedef struct dir_registered_ecu {
	const char *serial;
	const char *keyid;
	const otter_key *key;
	bool primary;
} dir_registered_ecu;

/*
 * Checks m against the device the request was authenticated as and its registered ECUs:
 *   OTTER_E_STATE      the manifest names another device, or an ECU that is not this
 *                      device's (cross-device: the server answers 403);
 *   OTTER_E_INVALID    an ECU of the device is missing, or the primary serial is not the
 *                      device's primary;
 *   OTTER_E_SIGNATURE  the envelope is not signed by the primary key, or an ECU report not by
 *                      that ECU's key.
 */
int dir_manifest_verify(const dir_manifest *m, const char *device_id,
			const dir_registered_ecu *ecus, size_t n, otter_error *err);

/* Signs a "signed" object into an envelope with key (tests and clients): signatures holds one
 * {"keyid", "sig": hex}. */
int dir_manifest_sign(json_t *signed_obj, const otter_key *key, json_t **env_out,
		      otter_error *err);

#endif
