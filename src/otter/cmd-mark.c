/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <otter/slot.h>

#include "otter.h"
#include "util/cleanup.h"

DEFINE_CLEANUP_FUNC(otter_system, otter_system_free)

enum mark { MARK_GOOD, MARK_BAD, MARK_ACTIVE };

static const char *const names[] = {"mark-good", "mark-bad", "mark-active"};

static void help(enum mark m)
{
	switch (m) {
	case MARK_GOOD:
		printf("Usage: otter mark-good [SLOT]\n"
		       "\n"
		       "Confirms a slot (default: the booted one) as healthy: its tries are reset\n"
		       "so the bootloader keeps booting it. Run it on every boot once the system\n"
		       "is known to work.\n");
		break;
	case MARK_BAD:
		printf("Usage: otter mark-bad [SLOT]\n"
		       "\n"
		       "Takes a slot (default: the booted one) out of the boot order with no tries\n"
		       "left; the bootloader will not boot it again until it is activated.\n"
		       "The booted slot is only taken out when another could boot instead (in\n"
		       "the boot order, and installed by otter or confirmed with mark-good).\n");
		break;
	case MARK_ACTIVE:
		printf("Usage: otter mark-active SLOT\n"
		       "\n"
		       "Puts a slot first in the boot order with full tries, in one environment\n"
		       "write: the next boot tries it. Refused while any slot of that bootname\n"
		       "holds an incomplete install.\n");
		break;
	}
	printf("\nSLOT is a bootname (A, B) or a slot name (rootfs.1); a slot name stands for its\n"
	       "bootname, which covers every class.\n"
	       "\n"
	       "  -h, --help show this help\n");
}

static int run(enum mark m, int argc, char **argv)
{
	static const struct option options[] = {
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	_cleanup_(otter_system_freep) otter_system *sys = NULL;
	otter_error err = OTTER_ERROR_INIT;
	const char *bootname = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (c == 'h') {
			help(m);
			return EXIT_OK;
		}
		return EXIT_USAGE;
	}
	if (argc - optind > 1 || (m == MARK_ACTIVE && argc - optind != 1)) {
		fprintf(stderr, "otter %s: %s\n", names[m],
			m == MARK_ACTIVE ? "expected one SLOT" : "expected at most one SLOT");
		return EXIT_USAGE;
	}
	if (cli_load_system(&sys))
		return EXIT_FAIL;
	if (optind < argc) {
		bootname = cli_bootname_arg(sys, argv[optind]);
		if (!bootname) {
			fprintf(stderr,
				"otter %s: '%s' is neither a bootname nor a slot name of %s\n",
				names[m], argv[optind], arg_config);
			return EXIT_FAIL;
		}
	}
	switch (m) {
	case MARK_GOOD:
		r = otter_slot_mark_good(sys, bootname, &err);
		break;
	case MARK_BAD:
		r = otter_slot_mark_bad_checked(sys, bootname, &err);
		break;
	default:
		r = otter_slot_activate(sys, bootname, &err);
		break;
	}
	if (r < 0)
		return cli_fail(names[m], &err);
	return EXIT_OK;
}

int cmd_mark_good(int argc, char **argv)
{
	return run(MARK_GOOD, argc, argv);
}

int cmd_mark_bad(int argc, char **argv)
{
	return run(MARK_BAD, argc, argv);
}

int cmd_mark_active(int argc, char **argv)
{
	return run(MARK_ACTIVE, argc, argv);
}
