/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_CLI_OTTER_H
#define OTTER_CLI_OTTER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

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

/*
 * Progress on stderr: a bar redrawn in place on a terminal, a line every 10 % otherwise.
 */
struct cli_progress {
	bool tty;
	struct timespec start, last;
	unsigned last_decile;
	char label[32];
};
void cli_progress_init(struct cli_progress *p, const char *label);
void cli_progress_update(struct cli_progress *p, uint64_t done, uint64_t total);

/* Agent log messages on stderr, filtered by verbosity (syslog levels; default 6, info). */
void cli_agent_log(void *userdata, int level, const char *msg);
void cli_set_verbosity(int level);

/* Bootloader slots (cli-bootslot.c): install = write, verify, switch; status. */
int cli_install_boot_slot(const otter_system *sys, const char *class_name, const char *image,
			  uint64_t len, const uint8_t digest[32]);
struct json_t;
struct json_t *cli_boot_slots_json(const otter_system *sys);
void cli_boot_slots_text(const otter_system *sys);
int cmd_status(int argc, char **argv);
int cmd_install(int argc, char **argv);
int cmd_mark_good(int argc, char **argv);
int cmd_mark_bad(int argc, char **argv);
int cmd_mark_active(int argc, char **argv);
int cmd_update(int argc, char **argv);
int cmd_daemon(int argc, char **argv);

#endif
