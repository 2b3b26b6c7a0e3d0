/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter daemon: the update agent (contrib/systemd/otter.service). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <otter/agent.h>

#include "otter.h"
#include "util/cleanup.h"

DEFINE_CLEANUP_FUNC(otter_agent, otter_agent_free)

/* GLOBAL: set from signal handlers. */
static volatile int stop_requested;
static volatile int check_requested;

static void on_stop(int sig)
{
	stop_requested = 1;
}

static void on_check(int sig)
{
	check_requested = 1;
}

static void help(void)
{
	printf("Usage: otter daemon [-q|-v]\n"
	       "\n"
	       "The update agent. At start it finishes what a crash interrupted and, when the\n"
	       "new software has just booted, runs the health check and confirms it or rolls it\n"
	       "back. Then it polls the repository every [update] poll-interval seconds (plus a\n"
	       "random jitter; exponential backoff after failures) and installs new releases.\n"
	       "\n"
	       "It speaks the systemd notify protocol (READY, STATUS, WATCHDOG) and feeds\n"
	       "[update] watchdog-device while healthy. SIGUSR1 or SIGHUP: check now.\n"
	       "SIGTERM or SIGINT: stop.\n"
	       "\n"
	       "Options:\n"
	       "  -q   print errors only;  -v  also debug messages\n"
	       "\n"
	       "See docs/agent.md.\n");
}

int cmd_daemon(int argc, char **argv)
{
	static const struct option options[] = {
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	_cleanup_(otter_agent_freep) otter_agent *a = NULL;
	otter_agent_options o = OTTER_AGENT_OPTIONS_INIT;
	otter_error err = OTTER_ERROR_INIT;
	struct sigaction sa;
	int c;

	while ((c = getopt_long(argc, argv, "hqv", options, NULL)) != -1) {
		switch (c) {
		case 'q':
			cli_set_verbosity(OTTER_LOG_ERR);
			break;
		case 'v':
			cli_set_verbosity(OTTER_LOG_DEBUG);
			break;
		case 'h':
			help();
			return EXIT_OK;
		default:
			fprintf(stderr, "Try 'otter daemon --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "otter daemon: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_check;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	o.config_path = arg_config;
	o.log = cli_agent_log;
	if (otter_agent_new(&a, &o, &err) < 0)
		return cli_fail("daemon", &err);
	cli_agent_log(NULL, 6, "otter " OTTER_VERSION " agent started");
	if (otter_agent_run(a, &stop_requested, &check_requested, &err) < 0)
		return cli_fail("daemon", &err);
	cli_agent_log(NULL, 6, "agent stopped");
	return EXIT_OK;
}
