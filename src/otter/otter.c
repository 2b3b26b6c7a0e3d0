/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * otter: the device-side command. A table of subcommands, one file each (cmd-*.c); global
 * options come before the subcommand name.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <otter/net.h>

#include "otter.h"

const char *arg_config = OTTER_SYSTEM_CONF_DEFAULT;

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"status", cmd_status, "show the booted and primary slot and the state of every slot"},
	{"install", cmd_install, "write an image into the inactive slot of a class and activate it"},
	{"mark-good", cmd_mark_good, "confirm the booted slot (resets its tries)"},
	{"mark-bad", cmd_mark_bad, "take a slot (default: the booted one) out of the boot order"},
	{"mark-active", cmd_mark_active, "make a slot the one the next boot tries"},
};

static void help(void)
{
	printf("Usage: otter [--config FILE] COMMAND [OPTIONS] [ARGS]\n"
	       "\n"
	       "A/B updates on the device: installs images into the inactive slot, switches the\n"
	       "bootloader to it, confirms or rolls back.\n"
	       "\n"
	       "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		printf("  %-12s %s\n", commands[i].name, commands[i].summary);
	printf("\n"
	       "Options:\n"
	       "  -c, --config FILE  system configuration (default " OTTER_SYSTEM_CONF_DEFAULT ")\n"
	       "  -h, --help         show this help; COMMAND --help shows a command's\n"
	       "  --version          show the version\n"
	       "\n"
	       "Exit status: 0 on success, 1 on failure, 2 on a usage error.\n"
	       "See docs/ab-updates.md.\n");
}

int cli_fail(const char *cmd, const otter_error *err)
{
	fprintf(stderr, "otter %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
	return EXIT_FAIL;
}

int cli_load_system(otter_system **out)
{
	otter_error err = OTTER_ERROR_INIT;

	if (otter_system_load(out, arg_config, &err) < 0) {
		fprintf(stderr, "otter: %s\n", err.msg);
		return EXIT_FAIL;
	}
	return 0;
}

const char *cli_bootname_arg(const otter_system *sys, const char *arg)
{
	const otter_slot *slot;

	if (otter_system_has_bootname(sys, arg))
		return arg;
	slot = otter_system_find_slot(sys, arg);
	return slot ? otter_slot_bootname(slot) : NULL;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	otter_error err = OTTER_ERROR_INIT;
	int c;

	/* '+': stop at the subcommand; its options are its own. */
	while ((c = getopt_long(argc, argv, "+c:h", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			arg_config = optarg;
			break;
		case 'h':
			help();
			return EXIT_OK;
		case 'V':
			printf("otter " OTTER_VERSION "\n");
			return EXIT_OK;
		default:
			fprintf(stderr, "Try 'otter --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		help();
		return EXIT_USAGE;
	}
	if (otter_global_init(&err) < 0)
		return cli_fail("init", &err);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		argv += optind;
		argc -= optind;
		optind = 0; /* getopt re-initialises for the subcommand */
		return commands[i].run(argc, argv);
	}
	fprintf(stderr, "otter: unknown command '%s'. Try 'otter --help'.\n", argv[optind]);
	return EXIT_USAGE;
}
