/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Per-device Director metadata: targets, snapshot, timestamp (metadata.h). */

#include <string.h>

#include <otter/json.h>

#include "lib/director/metadata.h"
#include "lib/repo/tuf-repo.h"
#include "util/cleanup.h"

static int oom(otter_error *err)
{
	return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

/* Signs signed_obj with key and serialises the envelope. */
static int sign_and_serialize(json_t *signed_obj, const otter_key *key, const char *what,
			      uint8_t **out, size_t *len, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *env = NULL;
	int r;

	r = tuf_repo_envelope_new(&env, signed_obj, err);
	if (r == 0)
		r = tuf_repo_sign(env, key, NULL, err);
	if (r == 0)
		r = tuf_repo_serialize(env, out, len, err);
	if (r < 0)
		return otter_error_prefix(err, r, "signing %s: ", what);
	if (*len > DIR_METADATA_MAX_SIZE) {
		free(*out);
		*out = NULL;
		return otter_error_set(err, OTTER_E_TOO_LARGE, "%s: %zu bytes, more than %u", what,
				       *len, DIR_METADATA_MAX_SIZE);
	}
	return 0;
}

static int parse_object(const char *text, const char *what, json_t **out, otter_error *err)
{
	int r = otter_json_parse(out, (const uint8_t *)text, strlen(text), DIR_METADATA_MAX_SIZE,
				 err);
	return r < 0 ? otter_error_prefix(err, r, "stored %s: ", what) : 0;
}

/* Adds assignment a to the targets object (one entry per image, ECUs merged). */
static int add_entry(json_t *targets, const dir_assignment *a, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *hashes = NULL, *custom = NULL, *entry = NULL;
	json_t *old = json_object_get(targets, a->target_path), *ids;
	int r;

	r = parse_object(a->target_hashes, "target hashes", &hashes, err);
	if (r == 0 && a->target_custom)
		r = parse_object(a->target_custom, "target custom", &custom, err);
	if (r < 0)
		return r;
	if (!custom && !(custom = json_object()))
		return oom(err);
	if (old) {
		/* Another ECU gets the same image: same length and hashes, one entry naming both.
		 * Their correlation ids may differ; the entry keeps the first, signed.custom
		 * lists all. */
		if (json_integer_value(json_object_get(old, "length")) != a->target_length ||
		    !json_equal(json_object_get(old, "hashes"), hashes))
			return otter_error_set(err, OTTER_E_STATE,
					       "assignments name %s with different lengths or hashes",
					       a->target_path);
		ids = json_object_get(json_object_get(old, "custom"), "ecuIdentifiers");
		if (json_object_set_new(ids, a->ecu_serial,
					json_pack("{s:s}", "hardwareId", a->hardware_id)) < 0)
			return oom(err);
		return 0;
	}
	ids = json_pack("{s:{s:s}}", a->ecu_serial, "hardwareId", a->hardware_id);
	if (!ids || json_object_set_new(custom, "ecuIdentifiers", ids) < 0 ||
	    json_object_set_new(custom, "correlationId", json_string(a->correlation_id)) < 0)
		return oom(err);
	entry = json_pack("{s:I,s:O,s:O}", "length", (json_int_t)a->target_length, "hashes",
			  hashes, "custom", custom);
	if (!entry || json_object_set(targets, a->target_path, entry) < 0)
		return oom(err);
	return 0;
}

int dir_meta_targets(const char *device_id, const dir_assignment *a, size_t n, uint64_t version,
		     int64_t expires, const otter_key *key, uint8_t **out, size_t *len,
		     otter_error *err)
{
	_cleanup_(json_decrefp) json_t *s = NULL, *ids = NULL, *custom = NULL;
	json_t *targets;
	int r;

	r = tuf_repo_signed_new(&s, TUF_TARGETS, expires, false, err);
	if (r == 0)
		r = tuf_repo_signed_set(s, version, expires, err);
	if (r < 0)
		return r;
	targets = json_object_get(s, "targets");
	ids = json_array();
	if (!ids)
		return oom(err);
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t j = 0; j < i; j++)
			if (strcmp(a[j].ecu_serial, a[i].ecu_serial) == 0)
				return otter_error_set(err, OTTER_E_STATE,
						       "two assignments for ECU %s",
						       a[i].ecu_serial);
		r = add_entry(targets, &a[i], err);
		if (r < 0)
			return r;
		for (size_t j = 0; j < json_array_size(ids); j++)
			if (strcmp(json_string_value(json_array_get(ids, j)), a[i].correlation_id) ==
			    0)
				seen = true;
		if (!seen && json_array_append_new(ids, json_string(a[i].correlation_id)) < 0)
			return oom(err);
	}
	/* The device id is always there, so that an empty targets role (nothing to install)
	 * cannot be replayed to another device to freeze it (Uptane 5.2, empty targets). */
	custom = json_pack("{s:s,s:O}", "device_id", device_id, "correlationIds", ids);
	if (!custom)
		return oom(err);
	if (json_array_size(ids) == 1 &&
	    json_object_set(custom, "correlationId", json_array_get(ids, 0)) < 0)
		return oom(err);
	if (json_object_set(s, "custom", custom) < 0)
		return oom(err);
	return sign_and_serialize(s, key, "targets", out, len, err);
}

int dir_meta_snapshot(uint64_t version, int64_t expires, uint64_t targets_version,
		      const otter_key *key, uint8_t **out, size_t *len, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *s = NULL;
	json_t *e;
	int r;

	r = tuf_repo_signed_new(&s, TUF_SNAPSHOT, expires, false, err);
	if (r == 0)
		r = tuf_repo_signed_set(s, version, expires, err);
	if (r < 0)
		return r;
	e = json_pack("{s:I}", "version", (json_int_t)targets_version);
	if (!e || json_object_set_new(json_object_get(s, "meta"), "targets.json", e) < 0)
		return oom(err);
	return sign_and_serialize(s, key, "snapshot", out, len, err);
}

int dir_meta_timestamp(uint64_t version, int64_t expires, uint64_t snapshot_version,
		       const uint8_t *snapshot, size_t snapshot_len, const otter_key *key,
		       uint8_t **out, size_t *len, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *s = NULL;
	json_t *e = NULL;
	int r;

	r = tuf_repo_signed_new(&s, TUF_TIMESTAMP, expires, false, err);
	if (r == 0)
		r = tuf_repo_signed_set(s, version, expires, err);
	/* Uptane requires hashes of the snapshot in the timestamp (5.2). */
	if (r == 0)
		r = tuf_repo_metafile(&e, snapshot_version, snapshot, snapshot_len, err);
	if (r < 0)
		return r;
	if (json_object_set_new(json_object_get(s, "meta"), "snapshot.json", e) < 0)
		return oom(err);
	return sign_and_serialize(s, key, "timestamp", out, len, err);
}
