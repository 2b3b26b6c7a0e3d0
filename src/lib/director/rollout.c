/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Placeholder until rollouts land: no rollout ever selects a device. */

#include "lib/director/rollout.h"

int dir_rollout_on_register(dir_db *db, const char *device_id, int64_t now, otter_error *err)
{
	(void)db, (void)device_id, (void)now, (void)err;
	return 0;
}

int dir_rollout_on_report(dir_db *db, const char *rollout_id, int64_t now, otter_error *err)
{
	(void)db, (void)rollout_id, (void)now, (void)err;
	return 0;
}
