/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Schema of otter-director (see docs/director.md, "Storage"). Conventions, shared by both
 * engines: times are BIGINT seconds since the epoch (UTC); booleans are BIGINT 0/1; JSON
 * documents are TEXT holding compact JSON; ids chosen by people (device ids, ECU serials,
 * rollout ids) are TEXT of [A-Za-z0-9._:-], 1..64 bytes. Primary keys say NOT NULL: SQLite
 * would otherwise accept NULL in a TEXT PRIMARY KEY, PostgreSQL never does.
 */

#include "lib/director/schema.h"

/* 1: devices, their ECUs and the current assignment of each ECU (the device side). */
static const char m1[] =
	/* A device (a vehicle in Uptane's words): what the director decides for. assign_gen
	 * counts changes to the device's assignments; the signed per-device metadata records
	 * the generation it was made for and is regenerated, at the next poll, when it differs. */
	"CREATE TABLE devices ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  created BIGINT NOT NULL,"
	"  last_seen BIGINT,"
	"  assign_gen BIGINT NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE device_tags ("
	"  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
	"  tag TEXT NOT NULL,"
	"  PRIMARY KEY (device_id, tag)"
	");"
	"CREATE INDEX device_tags_tag ON device_tags(tag);"
	/* An ECU: serial unique in the fleet, its hardware id, its key (PEM public key and TUF
	 * key id), whether it is the device's primary, the last accepted report counter (-1:
	 * none yet) and the image it last reported as installed. */
	"CREATE TABLE ecus ("
	"  serial TEXT PRIMARY KEY NOT NULL,"
	"  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
	"  hardware_id TEXT NOT NULL,"
	"  is_primary BIGINT NOT NULL DEFAULT 0,"
	"  key_type TEXT NOT NULL,"
	"  public_key TEXT NOT NULL,"
	"  keyid TEXT NOT NULL UNIQUE,"
	"  report_counter BIGINT NOT NULL DEFAULT -1,"
	"  installed_path TEXT,"
	"  installed_length BIGINT,"
	"  installed_hashes TEXT,"
	"  installed_at BIGINT"
	");"
	"CREATE INDEX ecus_device ON ecus(device_id);"
	"CREATE INDEX ecus_hardware ON ecus(hardware_id);"
	/* What each ECU must install now: at most one row per ECU. The target's length, hashes
	 * and custom are copied from the image repository's signed metadata when the assignment
	 * is made (only targets that repository signs are ever assigned). rollout_id is NULL for
	 * a direct assignment. status: assigned (not yet fetched), downloading (the device fetched
	 * targets metadata naming it), installed, failed (reason holds the device's code and
	 * description), cancelled. */
	"CREATE TABLE assignments ("
	"  ecu_serial TEXT PRIMARY KEY NOT NULL REFERENCES ecus(serial) ON DELETE CASCADE,"
	"  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
	"  rollout_id TEXT,"
	"  phase BIGINT,"
	"  correlation_id TEXT NOT NULL,"
	"  target_path TEXT NOT NULL,"
	"  target_length BIGINT NOT NULL,"
	"  target_hashes TEXT NOT NULL,"
	"  target_custom TEXT,"
	"  status TEXT NOT NULL,"
	"  reason TEXT,"
	"  created BIGINT NOT NULL,"
	"  updated BIGINT NOT NULL"
	");"
	"CREATE INDEX assignments_device ON assignments(device_id);"
	"CREATE INDEX assignments_rollout ON assignments(rollout_id, phase, status);"
	/* Provisioning tokens (otter-director token create): only the SHA-256 of the whole token
	 * is stored; id is its public part (listing, revoking). uses_left counts down at each
	 * registration; device_id (optional) binds the token to one device id; tags (JSON array
	 * text or NULL) are given to the devices it registers. */
	"CREATE TABLE provisioning_tokens ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  hash TEXT NOT NULL,"
	"  created BIGINT NOT NULL,"
	"  expires BIGINT NOT NULL,"
	"  uses_left BIGINT NOT NULL,"
	"  device_id TEXT,"
	"  tags TEXT,"
	"  revoked BIGINT NOT NULL DEFAULT 0"
	");"
	/* The director's root metadata chain (otter-director root import), exact bytes. */
	"CREATE TABLE director_roots ("
	"  version BIGINT PRIMARY KEY NOT NULL,"
	"  body TEXT NOT NULL,"
	"  imported BIGINT NOT NULL"
	");"
	/* The signed per-device metadata, as served: made for assignment generation assign_gen
	 * under root root_version; each role regenerated when that changes or it nears expiry,
	 * with a version one higher. targets_named lists the (ECU serial, correlation id) pairs
	 * the targets file names, one "serial correlation" per line. */
	"CREATE TABLE device_metadata ("
	"  device_id TEXT PRIMARY KEY NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
	"  assign_gen BIGINT NOT NULL,"
	"  root_version BIGINT NOT NULL,"
	"  targets_version BIGINT NOT NULL,"
	"  targets_expires BIGINT NOT NULL,"
	"  targets TEXT NOT NULL,"
	"  targets_named TEXT NOT NULL,"
	"  snapshot_version BIGINT NOT NULL,"
	"  snapshot_expires BIGINT NOT NULL,"
	"  snapshot TEXT NOT NULL,"
	"  timestamp_version BIGINT NOT NULL,"
	"  timestamp_expires BIGINT NOT NULL,"
	"  timestamp TEXT NOT NULL"
	");"
	/* The manifests each device sent (accepted ones only), newest last; seq counts per
	 * device; the director keeps the last 100 per device. */
	"CREATE TABLE manifests ("
	"  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
	"  seq BIGINT NOT NULL,"
	"  received BIGINT NOT NULL,"
	"  correlation_id TEXT,"
	"  success BIGINT,"
	"  body TEXT NOT NULL,"
	"  PRIMARY KEY (device_id, seq)"
	");";

/*
 * 2: rollouts (docs/director.md, "Assignments and rollouts"). A rollout assigns one target
 * to the devices its filter selects, phase by phase. filter is the JSON the operator gave
 * ({"devices": [...], "tags": [...], "hardware_ids": [...]}); phase is the current phase,
 * numbered from 1; batch counts the sets of devices the rollout assigned (each phase start
 * and each late joiner is one batch, so that one set-based statement can address exactly the
 * devices of that batch); base_failed and base_reported are the failed and reported counts
 * when the rollout was last resumed or retried: the failure rule looks at what came after.
 * state: running, paused, completed, cancelled; state_reason says why (auto-pause).
 */
static const char m2[] =
	"CREATE TABLE rollouts ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  target_path TEXT NOT NULL,"
	"  target_length BIGINT NOT NULL,"
	"  target_hashes TEXT NOT NULL,"
	"  target_custom TEXT,"
	"  filter TEXT NOT NULL,"
	"  correlation_id TEXT NOT NULL UNIQUE,"
	"  state TEXT NOT NULL,"
	"  state_reason TEXT,"
	"  phase BIGINT NOT NULL,"
	"  n_phases BIGINT NOT NULL,"
	"  success_threshold BIGINT NOT NULL,"
	"  failure_threshold BIGINT NOT NULL,"
	"  min_reports BIGINT NOT NULL,"
	"  device_cap BIGINT,"
	"  batch BIGINT NOT NULL DEFAULT 0,"
	"  base_failed BIGINT NOT NULL DEFAULT 0,"
	"  base_reported BIGINT NOT NULL DEFAULT 0,"
	"  created BIGINT NOT NULL,"
	"  updated BIGINT NOT NULL"
	");"
	"CREATE INDEX rollouts_state ON rollouts(state, created);"
	/* The phases as given: spec is "N" (cumulative device count) or "N%" (cumulative share
	 * of the devices the filter selects); started/completed are set once each. */
	"CREATE TABLE rollout_phases ("
	"  rollout_id TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,"
	"  phase BIGINT NOT NULL,"
	"  spec TEXT NOT NULL,"
	"  started BIGINT,"
	"  completed BIGINT,"
	"  PRIMARY KEY (rollout_id, phase)"
	");"
	/* Membership: a device joins a rollout once (primary key), in one phase and batch.
	 * status NULL: the device is live in the rollout and its progress is read from its
	 * assignments rows; otherwise the device left and status is frozen: installed or failed
	 * (its outcome when a later assignment replaced the rollout's), superseded (replaced
	 * before an outcome) or withdrawn (the rollout was cancelled before delivery). */
	"CREATE TABLE rollout_devices ("
	"  rollout_id TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,"
	"  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
	"  phase BIGINT NOT NULL,"
	"  batch BIGINT NOT NULL,"
	"  status TEXT,"
	"  reason TEXT,"
	"  joined BIGINT NOT NULL,"
	"  updated BIGINT NOT NULL,"
	"  PRIMARY KEY (rollout_id, device_id)"
	");"
	"CREATE INDEX rollout_devices_device ON rollout_devices(device_id, status);"
	"CREATE INDEX rollout_devices_batch ON rollout_devices(rollout_id, batch);"
	"CREATE INDEX rollout_devices_phase ON rollout_devices(rollout_id, phase, status);";

const dir_migration dir_migrations[] = {
	{ 1, "devices, ECUs, assignments, tokens, roots, per-device metadata, manifests", m1, NULL },
	{ 2, "rollouts, their phases and devices", m2, NULL },
};

const size_t dir_n_migrations = sizeof(dir_migrations) / sizeof(dir_migrations[0]);
