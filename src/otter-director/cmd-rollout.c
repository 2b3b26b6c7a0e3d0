/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Placeholder until assignments and rollouts land. */

#include <stdio.h>

#include "otter-director/commands.h"

static int not_yet(const char *what)
{
	fprintf(stderr, "otter-director: %s: not implemented yet\n", what);
	return 1;
}

int dir_cmd_assign(const dir_admin_env *env, int argc, char **argv)
{
	(void)env, (void)argc, (void)argv;
	return not_yet("assign");
}

int dir_cmd_rollout(const dir_admin_env *env, int argc, char **argv)
{
	(void)env, (void)argc, (void)argv;
	return not_yet("rollout");
}

int dir_cmd_fleet(const dir_admin_env *env, int argc, char **argv)
{
	(void)env, (void)argc, (void)argv;
	return not_yet("fleet");
}
