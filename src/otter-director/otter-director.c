/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * otter-director: the Uptane Director of an otter fleet (docs/director.md). A table of
 * subcommands; global options come before the command name.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <otter/net.h>

#include "otter-director/commands.h"
#include "otter-director/director.h"

const char *arg_config;
const char *arg_database;

typedef struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} command;

static int cmd_assign(int argc, char **argv);
static int cmd_rollout(int argc, char **argv);
static int cmd_fleet(int argc, char **argv);

static const command commands[] = {
	{ "serve", cmd_serve, "run the HTTP server (device API and admin API)" },
	{ "migrate", cmd_migrate, "apply the database schema migrations and exit" },
	{ "root", cmd_root, "import or show the director's root metadata (made offline)" },
	{ "device", cmd_device, "pre-register, list, show or remove devices" },
	{ "token", cmd_token, "create, list or revoke provisioning tokens" },
	{ "history", cmd_history, "show the manifests a device sent" },
	{ "export", cmd_export, "write the whole database to a file (to move engines)" },
	{ "import", cmd_import, "load an exported database into a new one" },
	{ "assign", cmd_assign, "assign an image-repository target to devices now" },
	{ "rollout", cmd_rollout, "create and steer phased rollouts" },
	{ "fleet", cmd_fleet, "show what each device runs and its assignment" },
};

static void help(FILE *f)
{
	fprintf(f, "Usage: otter-director [--config FILE] [--database URL] COMMAND [ARGS]\n"
		   "\n"
		   "The Uptane Director of an otter fleet: registers devices, serves each its own\n"
		   "signed TUF metadata naming what to install, records their version manifests and\n"
		   "drives assignments and phased rollouts.\n"
		   "\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "  %-10s %s\n", "help", "show this help, or a command's: help COMMAND");
	fprintf(f, "\n"
		   "Options:\n"
		   "  -c, --config FILE    configuration (default " DIRECTOR_CONF_DEFAULT
		   ", if present)\n"
		   "  -d, --database URL   database URL, overriding [database] url\n"
		   "                       (sqlite:PATH or postgresql://...)\n"
		   "  -h, --help           show this help\n"
		   "  --version            show the version\n"
		   "\n"
		   "Exit status: 0 on success, 1 on failure, 2 on a usage error.\n"
		   "See docs/director.md and docs/director-protocol.md.\n");
}

int cli_fail(const char *cmd, const otter_error *err)
{
	fprintf(stderr, "otter-director %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
	return EXIT_FAIL;
}

void print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);

	if (s)
		printf("%s\n", s);
	free(s);
}

/* The admin commands of commands.h, with an environment from the configuration. */
static int run_admin(int (*fn)(const dir_admin_env *, int, char **), int argc, char **argv)
{
	otter_error err = OTTER_ERROR_INIT;
	director_config cfg;
	dir_db *db = NULL;
	int r;

	/* Help needs no configuration or database. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			dir_admin_env none = { 0 };
			return fn(&none, argc, argv);
		}
	r = director_config_load(&cfg, &err);
	if (r == 0)
		r = director_open_db(&cfg, &db, &err);
	if (r < 0) {
		director_config_clear(&cfg);
		return cli_fail(argv[0], &err);
	}
	dir_admin_env env = { db, cfg.image_metadata_url, cfg.image_metadata_dir,
			      (int64_t)time(NULL) };
	r = fn(&env, argc, argv);
	dir_db_close(db);
	director_config_clear(&cfg);
	return r;
}

static int cmd_assign(int argc, char **argv)
{
	return run_admin(dir_cmd_assign, argc, argv);
}

static int cmd_rollout(int argc, char **argv)
{
	return run_admin(dir_cmd_rollout, argc, argv);
}

static int cmd_fleet(int argc, char **argv)
{
	return run_admin(dir_cmd_fleet, argc, argv);
}

static const command *find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "database", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	otter_error err = OTTER_ERROR_INIT;
	const command *c;
	int o;

	/* '+': stop at the command name; its options are its own. */
	while ((o = getopt_long(argc, argv, "+c:d:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			arg_config = optarg;
			break;
		case 'd':
			arg_database = optarg;
			break;
		case 'h':
			help(stdout);
			return 0;
		case 'V':
			printf("otter-director %s\n", OTTER_VERSION);
			return 0;
		default:
			help(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		help(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		if (optind + 1 >= argc) {
			help(stdout);
			return 0;
		}
		c = find(argv[optind + 1]);
		if (!c) {
			fprintf(stderr, "otter-director: no command '%s'\n", argv[optind + 1]);
			return EXIT_USAGE;
		}
		char *hargv[] = { argv[optind + 1], (char *)"--help", NULL };
		optind = 0;
		return c->run(2, hargv);
	}
	c = find(argv[optind]);
	if (!c) {
		fprintf(stderr, "otter-director: no command '%s'. Try 'otter-director help'.\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (otter_global_init(&err) < 0)
		return cli_fail(c->name, &err);
	argc -= optind;
	argv += optind;
	optind = 0; /* commands parse their options with getopt from argv[0] */
	return c->run(argc, argv);
}
