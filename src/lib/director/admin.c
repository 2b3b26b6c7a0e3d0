/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Placeholder until assignments and rollouts land. */

#include "lib/director/admin.h"

int dir_admin_call(const dir_admin_env *env, const char *op, const json_t *req, json_t **resp,
		   int *http_status, otter_error *err)
{
	(void)env, (void)req;
	*resp = NULL;
	if (http_status)
		*http_status = 501;
	return otter_error_set(err, OTTER_E_NOT_SUPPORTED, "admin operation '%s' not implemented",
			       op);
}
