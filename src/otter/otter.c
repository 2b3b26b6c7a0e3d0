/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * otter: the device-side command. A table of subcommands, one file each (cmd-*.c); global
 * options come before the subcommand name.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <inttypes.h>
#include <unistd.h>

#include <otter/agent.h>
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
	{"update", cmd_update, "check for, download and install the newest release (one cycle)"},
	{"daemon", cmd_daemon, "the update agent: poll, install, confirm or roll back"},
};

static void help(void)
{
	printf("Usage: otter [--config FILE] COMMAND [OPTIONS] [ARGS]\n"
	       "\n"
	       "Secure A/B updates on the device: fetches releases through TUF, installs images\n"
	       "into the inactive slots, switches the bootloader to them, confirms or rolls back.\n"
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
	       "See docs/agent.md and docs/ab-updates.md.\n");
}

int cli_fail(const char *cmd, const otter_error *err)
{
	fprintf(stderr, "otter %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
	return EXIT_FAIL;
}

void cli_progress_init(struct cli_progress *p, const char *label)
{
	memset(p, 0, sizeof(*p));
	p->tty = isatty(STDERR_FILENO) == 1;
	snprintf(p->label, sizeof(p->label), "%s", label ? label : "");
	clock_gettime(CLOCK_MONOTONIC, &p->start);
}

static double seconds_since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

void cli_progress_update(struct cli_progress *p, uint64_t done, uint64_t total)
{
	struct timespec now;
	unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
	double elapsed, rate;

	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = seconds_since(&p->start, &now);
	/* A rate over the first instants means nothing: show it from a quarter second on. */
	rate = elapsed > 0 && (elapsed >= 0.25 || done == total) ? (double)done / 1e6 / elapsed
								 : 0.0;
	if (p->tty) {
		char bar[31];
		unsigned fill = pct * 30 / 100;

		if (done != total && seconds_since(&p->last, &now) < 0.1)
			return;
		p->last = now;
		memset(bar, '#', fill);
		memset(bar + fill, '.', 30 - fill);
		bar[30] = '\0';
		fprintf(stderr, "\r  %-8s [%s] %3u%%  %7.1f MB/s  %.1f of %.1f MB", p->label, bar,
			pct, rate, (double)done / 1e6, (double)total / 1e6);
		if (done == total)
			fprintf(stderr, "\n");
		return;
	}
	if (pct / 10 > p->last_decile || done == total) {
		p->last_decile = pct / 10;
		fprintf(stderr, "%s%sprogress: %u%% (%" PRIu64 " of %" PRIu64 " bytes, %.1f MB/s)\n",
			p->label, p->label[0] ? " " : "", pct, done, total, rate);
	}
}

int cli_load_system(otter_system **out)
{
	otter_error err = OTTER_ERROR_INIT;

	/* With the agent's [update] section, which the slot module alone would refuse. */
	if (otter_agent_system_load(out, arg_config, &err) < 0) {
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
