/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_ADMIN_H
#define OTTER_LIB_DIRECTOR_ADMIN_H

/*
 * The operator's side of the director, one function per operation with a JSON request and a
 * JSON response: the HTTP admin API (POST /director/v1/admin/<op>, docs/director.md "Admin API")
 * and the otter-director admin commands both call dir_admin_call(), so they behave the same.
 *
 * Operations (the request and response members are documented in docs/director.md):
 *   assign                 assign an image-repository target to devices now (no phases)
 *   rollout.create         start a phased rollout
 *   rollout.pause / rollout.resume / rollout.cancel / rollout.retry-failed
 *   rollout.status         per phase: assigned, downloading, installed, failed (+ reasons)
 *   rollout.list
 *   fleet                  each device, the image each ECU runs and its assignment
 *
 * Targets are only assigned when the image repository signs them: the target is looked up
 * with libotter's TUF client (otter_tuf_refresh + otter_tuf_find_target) against the image
 * repository, and its length, hashes and custom are copied from that signed entry.
 */

#include <stdint.h>

#include <jansson.h>

#include <otter/error.h>

#include "lib/director/db.h"

typedef struct dir_admin_env {
	dir_db *db;
	const char *image_metadata_url; /* image repository metadata base URL */
	const char *image_metadata_dir; /* trusted metadata of the image repository (root.json) */
	int64_t now;                    /* seconds since the epoch */
} dir_admin_env;

/*
 * Runs op with request req (an object). On success *resp gets the response object and 0 is
 * returned. On failure a negative OTTER_E_* code is returned, err says what failed, and
 * *http_status (optional) gets the HTTP status the admin API answers with (400 bad request,
 * 404 unknown device/rollout/target, 409 conflicting state, 502 image repository unreachable).
 */
int dir_admin_call(const dir_admin_env *env, const char *op, const json_t *req, json_t **resp,
		   int *http_status, otter_error *err);

#endif
