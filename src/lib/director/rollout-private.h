/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_ROLLOUT_PRIVATE_H
#define OTTER_LIB_DIRECTOR_ROLLOUT_PRIVATE_H

/*
 * The rules behind the admin operations (rollout.c), called by admin.c after it validated the
 * request. Every function here only changes the database and must run inside a
 * dir_db_transaction (the callers' retry loop may run it again). Errors: OTTER_E_NOT_FOUND
 * (no such rollout, no such device), OTTER_E_STATE (the rollout's state forbids it),
 * OTTER_E_EXISTS (a rollout with that id exists; a device is held by another rollout).
 */

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/error.h>

#include "lib/director/auth.h" /* dir_id_ok, DIR_ID_MAX: ids people choose */
#include "lib/director/db.h"
#include "lib/director/images.h"

/* Request caps (docs/director.md, "Admin API"). */
#define DIR_FILTER_MAX_IDS   10000u /* device ids in one filter */
#define DIR_FILTER_MAX_NAMES 64u    /* tags, hardware ids */
#define DIR_MAX_PHASES       32u
#define DIR_LIST_MAX         1000u  /* rows per page of rollout.list and fleet */

/*
 * Which devices: a device is selected when it matches every group given (id in devices; at
 * least one of tags; an ECU with one of hardware_ids). Which ECUs of a selected device: those
 * whose hardware id is in hardware_ids, else its primary ECU.
 */
typedef struct dir_filter {
	const char **devices;
	size_t n_devices;
	const char **tags;
	size_t n_tags;
	const char **hardware_ids;
	size_t n_hardware_ids;
} dir_filter;

/* A new correlation id (32 random hex digits after prefix), caller frees. */
int dir_correlation_new(const char *prefix, char **out, otter_error *err);

/*
 * Assigns t to the ECUs the filter selects, now: one row per ECU replaces what it had, and
 * assign_gen of each device is bumped. A device that was live in a rollout leaves it (its
 * outcome there is kept). *n_devices and *n_ecus get the counts. OTTER_E_NOT_FOUND when a
 * listed device does not exist or the filter selects no device.
 */
int dir_assign(dir_db *db, const dir_filter *f, const dir_image_target *t,
	       const char *correlation_id, int64_t now, uint64_t *n_devices, uint64_t *n_ecus,
	       otter_error *err);

typedef struct dir_phase_spec {
	int64_t value;
	bool percent;
} dir_phase_spec;

typedef struct dir_rollout_spec {
	const char *id;
	dir_filter filter;
	const dir_image_target *target;
	const dir_phase_spec *phases;
	size_t n_phases;
	int64_t success_threshold; /* percent, 0..100 */
	int64_t failure_threshold; /* percent, 0..100 */
	int64_t min_reports;
	int64_t device_cap; /* 0: none */
} dir_rollout_spec;

/* Creates and starts a rollout (its first phase is assigned at once). */
int dir_rollout_create(dir_db *db, const dir_rollout_spec *s, const char *correlation_id,
		       int64_t now, otter_error *err);

typedef enum dir_rollout_op {
	DIR_ROLLOUT_PAUSE,
	DIR_ROLLOUT_RESUME,
	DIR_ROLLOUT_CANCEL,
	DIR_ROLLOUT_RETRY_FAILED,
} dir_rollout_op;

/* *n (optional) gets the devices withdrawn (cancel) or re-assigned (retry-failed). */
int dir_rollout_change(dir_db *db, const char *id, dir_rollout_op op, int64_t now, uint64_t *n,
		       otter_error *err);

/* The status object of docs/director.md ("rollout.status"). */
int dir_rollout_status(dir_db *db, const char *id, json_t **out, otter_error *err);
/* {"rollouts": [...], "total": N}; state NULL for all. */
int dir_rollout_list(dir_db *db, const char *state, int64_t limit, int64_t offset, json_t **out,
		     otter_error *err);
/* {"devices": [...], "total": N}; tag and hardware_id NULL for all. */
int dir_fleet(dir_db *db, const char *tag, const char *hardware_id, int64_t limit,
	      int64_t offset, json_t **out, otter_error *err);

#endif
