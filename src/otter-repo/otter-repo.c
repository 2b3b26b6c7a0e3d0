/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * otter-repo: creates and maintains a TUF repository as static files (docs/repository.md).
 * Git-style subcommands; each lives in cmd-<name>.c and is listed in the table below.
 */
#include <stdio.h>
#include <string.h>

#include <otter/net.h>

#include "otter-repo.h"

/* The command table: add new subcommands here (and their cmd-*.c to meson.build). */
static const command *const commands[] = {
	&cmd_init,      &cmd_key,     &cmd_add_target, &cmd_remove_target, &cmd_delegate,
	&cmd_undelegate, &cmd_stage,  &cmd_sign,       &cmd_import,        &cmd_publish,
	&cmd_rotate,    &cmd_refresh, &cmd_status,     &cmd_verify,     &cmd_add_release,
};

static const char common_help[] =
	"\nOptions every command takes:\n"
	"  --repo DIR              the repository folder (default: the current folder)\n"
	"  --passphrase-fd N       read the passphrase of encrypted private keys from file\n"
	"                          descriptor N (up to a newline)\n"
	"  --passphrase-env VAR    take it from environment variable VAR\n"
	"  -q, --quiet             print only warnings and errors\n"
	"  -h, --help              show the command's help\n";

static void usage(FILE *f)
{
	fprintf(f, "Usage: otter-repo COMMAND [ARGS] [OPTIONS]\n"
		   "\n"
		   "Creates and maintains a TUF repository (metadata/ and targets/ as static files)\n"
		   "with offline keys, thresholds, key rotation, delegations and online re-signing.\n"
		   "\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-14s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "  %-14s %s\n", "help", "show the help of a command: otter-repo help COMMAND");
	fprintf(f, "%s", common_help);
	fprintf(f, "\nPassphrases are never taken from the command line. Exit status: 0 on "
		   "success,\n1 on any failure (the reason is printed on stderr); the published "
		   "repository\nis left exactly as it was when a command fails.\n"
		   "See docs/repository.md for a walk-through.\n");
}

static const command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

static int command_help(const command *c)
{
	printf("%s", c->help);
	printf("%s", common_help);
	return 0;
}

int main(int argc, char **argv)
{
	otter_error err = OTTER_ERROR_INIT;
	const command *c;
	args a;
	int r;

	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("otter-repo %s\n", OTTER_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0) {
		if (argc < 3) {
			usage(stdout);
			return 0;
		}
		c = find_command(argv[2]);
		if (!c) {
			fprintf(stderr, "otter-repo: no command '%s'. Try 'otter-repo help'.\n",
				argv[2]);
			return 1;
		}
		return command_help(c);
	}
	c = find_command(argv[1]);
	if (!c) {
		fprintf(stderr, "otter-repo: no command '%s'. Try 'otter-repo help'.\n", argv[1]);
		return 1;
	}
	cli_command = c->name;
	r = args_parse(&a, c->opts, argc - 2, argv + 2, &err);
	if (r < 0) {
		args_clear(&a);
		cli_fail(&err);
		fprintf(stderr, "Try 'otter-repo help %s'.\n", c->name);
		return 1;
	}
	if (args_flag(&a, "help")) {
		args_clear(&a);
		return command_help(c);
	}
	cli_quiet = args_flag(&a, "quiet");
	if (otter_global_init(&err) < 0) {
		args_clear(&a);
		return cli_fail(&err);
	}
	r = c->run(&a);
	args_clear(&a);
	return r;
}
