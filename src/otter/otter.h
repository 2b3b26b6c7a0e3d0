/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_CLI_OTTER_H
#define OTTER_CLI_OTTER_H

#include <stdbool.h>

#include <otter/error.h>
#include <otter/system.h>

/* Exit statuses of every subcommand. */
#define EXIT_OK    0
#define EXIT_FAIL  1
#define EXIT_USAGE 2

/* GLOBAL: options parsed by main before the subcommand (systemd's arg_* convention). */
extern const char *arg_config;

/* Loads the system configuration named by --config (or the default); prints on failure. */
int cli_load_system(otter_system **out);
/* Prints "otter CMD: message" on stderr; returns EXIT_FAIL. */
int cli_fail(const char *cmd, const otter_error *err);
/* Resolves a SLOT argument, a bootname ("B") or a slot name ("rootfs.1"), to a bootname. */
const char *cli_bootname_arg(const otter_system *sys, const char *arg);

int cmd_status(int argc, char **argv);
int cmd_install(int argc, char **argv);
int cmd_mark_good(int argc, char **argv);
int cmd_mark_bad(int argc, char **argv);
int cmd_mark_active(int argc, char **argv);

#endif
