/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_DIRECTOR_COMMANDS_H
#define OTTER_DIRECTOR_COMMANDS_H

/*
 * The operator's commands of otter-director that go through dir_admin_call (cmd-rollout.c):
 * each parses its own options (getopt), builds the request, calls dir_admin_call with env and
 * prints the answer (a table, or the JSON with --json). argv[0] is the command name. Returns
 * the process exit status (0 ok, 1 failure, 2 usage).
 */

#include "lib/director/admin.h"

int dir_cmd_assign(const dir_admin_env *env, int argc, char **argv);
int dir_cmd_rollout(const dir_admin_env *env, int argc, char **argv);
int dir_cmd_fleet(const dir_admin_env *env, int argc, char **argv);

/* Their help texts (otter-director help assign|rollout|fleet; also printed by --help). */
extern const char dir_cmd_assign_help[];
extern const char dir_cmd_rollout_help[];
extern const char dir_cmd_fleet_help[];

#endif
