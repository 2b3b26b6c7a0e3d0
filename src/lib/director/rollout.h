/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_ROLLOUT_H
#define OTTER_LIB_DIRECTOR_ROLLOUT_H

/*
 * Rollouts: phased assignment of one image-repository target to the devices a filter selects
 * (ids, tags, hardware ids), advancing phase by phase on success, pausing by itself when the
 * failure rate crosses the rollout's threshold. Everything is decided in database
 * transactions so that several director processes on one PostgreSQL database advance a
 * rollout once and never assign a device twice.
 *
 * The device side (registration, manifests) calls the two hooks below inside its own
 * transaction; they only touch the database.
 */

#include <otter/error.h>

#include "lib/director/db.h"

/*
 * A device was registered (or its tags changed): if a running rollout's filter selects it
 * and the rollout's current phases and device cap leave room, the device joins the rollout
 * (an assignment is written and devices.assign_gen bumped).
 */
int dir_rollout_on_register(dir_db *db, const char *device_id, int64_t now, otter_error *err);

/*
 * The status of assignments of rollout_id changed (a device reported installed or failed):
 * re-evaluate the rollout: advance to the next phase when the success threshold is reached,
 * pause it when the failure threshold is crossed, mark it completed after the last phase.
 */
int dir_rollout_on_report(dir_db *db, const char *rollout_id, int64_t now, otter_error *err);

#endif
