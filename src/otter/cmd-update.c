/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter update: one update cycle now, or a check; from the repository or a folder. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <otter/agent.h>

#include "otter.h"
#include "util/cleanup.h"

DEFINE_CLEANUP_FUNC(otter_agent, otter_agent_free)

/* GLOBAL: verbosity of this process's log output (syslog levels). */
static int verbosity = OTTER_LOG_INFO;

void cli_agent_log(void *userdata, int level, const char *msg)
{
	if (level <= verbosity)
		fprintf(stderr, "otter: %s\n", msg);
}

void cli_set_verbosity(int level)
{
	verbosity = level;
}

struct progress_state {
	struct cli_progress p;
	char what[32];
};

static void on_progress(void *userdata, const char *what, uint64_t done, uint64_t total)
{
	struct progress_state *s = userdata;

	if (strcmp(s->what, what) != 0) {
		snprintf(s->what, sizeof(s->what), "%s", what);
		cli_progress_init(&s->p, what);
	}
	cli_progress_update(&s->p, done, total);
}

static void help(void)
{
	printf("Usage: otter update [--check] [--from DIR] [-q|-v]\n"
	       "\n"
	       "One update cycle now: refresh the TUF metadata of the repository set in\n"
	       "[update] repository=, pick the newest release for this device that is newer\n"
	       "than the installed one, stream its images into the inactive slots (checked\n"
	       "against their signed length and hashes), activate them and run the reboot\n"
	       "command. After a reboot, the first `otter update` or `otter daemon` runs the\n"
	       "health check and confirms the new software or rolls it back.\n"
	       "\n"
	       "Options:\n"
	       "  --check     only say whether a newer release is available (installs nothing)\n"
	       "  --now       do the cycle now (the default)\n"
	       "  --from DIR  use a copy of the repository in DIR (a USB stick: DIR/metadata/\n"
	       "              and DIR/targets/) instead of the network; same checks\n"
	       "  -q          print errors only;  -v  also debug messages\n"
	       "\n"
	       "Exit status: 0 on success (also when nothing needed doing), 1 on failure.\n"
	       "See docs/agent.md.\n");
}

int cmd_update(int argc, char **argv)
{
	enum { OPT_CHECK = 256, OPT_NOW, OPT_FROM };
	static const struct option options[] = {
		{"check", no_argument, NULL, OPT_CHECK},
		{"now", no_argument, NULL, OPT_NOW},
		{"from", required_argument, NULL, OPT_FROM},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	_cleanup_(otter_agent_freep) otter_agent *a = NULL;
	otter_agent_options o = OTTER_AGENT_OPTIONS_INIT;
	otter_error err = OTTER_ERROR_INIT;
	struct progress_state ps = {0};
	bool check = false, installed = false;
	int c;

	o.config_path = arg_config;
	while ((c = getopt_long(argc, argv, "hqv", options, NULL)) != -1) {
		switch (c) {
		case OPT_CHECK:
			check = true;
			break;
		case OPT_NOW:
			check = false;
			break;
		case OPT_FROM:
			o.offline_dir = optarg;
			break;
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
			fprintf(stderr, "Try 'otter update --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "otter update: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	o.log = cli_agent_log;
	o.progress = on_progress;
	o.userdata = &ps;
	if (otter_agent_new(&a, &o, &err) < 0)
		return cli_fail("update", &err);
	if (check) {
		otter_agent_check chk;

		if (otter_agent_check_update(a, &chk, &err) < 0)
			return cli_fail("update", &err);
		if (chk.available)
			printf("update available: %s (%s); installed: %s\n", chk.version, chk.release,
			       chk.installed[0] ? chk.installed : "unknown");
		else
			printf("up to date (installed: %s)\n",
			       chk.installed[0] ? chk.installed : "unknown");
		return EXIT_OK;
	}
	if (otter_agent_update(a, &installed, &err) < 0)
		return cli_fail("update", &err);
	return EXIT_OK;
}
