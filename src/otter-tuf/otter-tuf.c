/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * otter-tuf: a plain TUF client with the command-line protocol of the TUF conformance suite
 * (theupdateframework/tuf-conformance, CLIENT-CLI.md). Exit 0 on success, 1 on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <otter/net.h>
#include <otter/tuf.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

#define MAX_TARGETS 1024

static const char *arg_metadata_dir;
static const char *arg_metadata_url;
static const char *arg_target_base_url;
static const char *arg_target_dir;
static const char *arg_targets[MAX_TARGETS];
static size_t arg_n_targets;
static int arg_verbosity = OTTER_LOG_INFO;
static long arg_connect_timeout;
static long arg_slow_timeout;
static long arg_min_speed;

static void help(void)
{
	printf("Usage: otter-tuf [OPTIONS] COMMAND [ARG]\n"
	       "\n"
	       "A TUF client: keeps trusted metadata in a folder and updates it from a repository\n"
	       "following the TUF specification's client workflow, then downloads verified targets.\n"
	       "\n"
	       "Commands:\n"
	       "  init TRUSTED_ROOT   install TRUSTED_ROOT (a root.json obtained out of band) as\n"
	       "                      the trusted root in the metadata folder; no network access\n"
	       "  refresh             update root, timestamp, snapshot and targets metadata\n"
	       "  download            refresh, then look up each --target-name (walking\n"
	       "                      delegations), download it, verify its length and hashes and\n"
	       "                      store it in the target folder; stops at the first failure\n"
	       "\n"
	       "Options (in any order, before or after the command):\n"
	       "  --metadata-dir DIR      trusted metadata folder (required)\n"
	       "  --metadata-url URL      repository metadata base URL (refresh, download)\n"
	       "  --target-name PATH      target path to download; repeatable, done in order\n"
	       "  --target-base-url URL   repository targets base URL (download)\n"
	       "  --target-dir DIR        where downloaded targets are stored (download)\n"
	       "  --connect-timeout S     give up connecting after S seconds (default 30)\n"
	       "  --slow-timeout S        abort a transfer slower than the minimum speed for S\n"
	       "                          seconds in a row (default 30; slow-retrieval attack)\n"
	       "  --min-speed BYTES       the minimum speed in bytes/s (default 1024)\n"
	       "  -q, --quiet             only print errors\n"
	       "  -v, --verbose           also print debug messages\n"
	       "  -h, --help              show this help\n"
	       "  --version               show the version\n"
	       "\n"
	       "URLs may be http://, https:// or file://. Targets are stored under their\n"
	       "percent-encoded target path (\"a/b.txt\" -> \"a%%2Fb.txt\"); a file already there\n"
	       "with the signed length and hashes is not downloaded again.\n"
	       "\n"
	       "Exit status: 0 on success, 1 on any failure (the reason is printed on stderr).\n"
	       "See docs/tuf-client.md for the checks made and the limits applied.\n");
}

static void log_stderr(void *userdata, int level, const char *msg)
{
	(void)userdata;
	if (level <= arg_verbosity)
		fprintf(stderr, "otter-tuf: %s\n", msg);
}

static int fail(const char *what, const otter_error *err)
{
	fprintf(stderr, "otter-tuf: %s: %s\n", what, err->msg[0] ? err->msg : "failed");
	return 1;
}

static int cmd_init(const char *root_path)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int r;

	r = fileio_read(AT_FDCWD, root_path, 512000, &data, &len, &err);
	if (r < 0)
		return fail("init", &err);
	r = otter_tuf_install_root(arg_metadata_dir, data, len, &err);
	if (r < 0)
		return fail("init", &err);
	return 0;
}

static int new_updater(otter_tuf_updater **u, otter_error *err)
{
	static otter_net_options net = OTTER_NET_OPTIONS_INIT;
	otter_tuf_options opts;

	net.connect_timeout_s = arg_connect_timeout;
	net.low_speed_time_s = arg_slow_timeout;
	net.low_speed_limit = arg_min_speed;
	otter_tuf_options_init(&opts);
	opts.net_options = &net;
	opts.metadata_dir = arg_metadata_dir;
	opts.metadata_url = arg_metadata_url;
	opts.target_base_url = arg_target_base_url;
	opts.log = log_stderr;
	return otter_tuf_updater_new(u, &opts, err);
}

static int cmd_refresh(void)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_tuf_updater *u = NULL;
	int r;

	if (!arg_metadata_url) {
		fprintf(stderr, "otter-tuf: refresh needs --metadata-url\n");
		return 1;
	}
	r = new_updater(&u, &err);
	if (r == 0)
		r = otter_tuf_refresh(u, &err);
	otter_tuf_updater_free(u);
	return r < 0 ? fail("refresh", &err) : 0;
}

static int cmd_download(void)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_tuf_updater *u = NULL;
	int r;

	if (!arg_metadata_url || !arg_target_base_url || !arg_target_dir || arg_n_targets == 0) {
		fprintf(stderr, "otter-tuf: download needs --metadata-url, --target-base-url, "
				"--target-dir and at least one --target-name\n");
		return 1;
	}
	r = new_updater(&u, &err);
	if (r == 0)
		r = otter_tuf_refresh(u, &err);
	/* One updater for every target, in the order given; stop at the first failure. */
	for (size_t i = 0; r == 0 && i < arg_n_targets; i++) {
		otter_tuf_target *t = NULL;
		char *path = NULL;

		r = otter_tuf_find_target(u, arg_targets[i], &t, &err);
		if (r == 0)
			r = otter_tuf_download_target(u, t, arg_target_dir, &path, &err);
		if (r == 0)
			log_stderr(NULL, 5, path);
		free(path);
		otter_tuf_target_free(t);
	}
	otter_tuf_updater_free(u);
	return r < 0 ? fail("download", &err) : 0;
}

int main(int argc, char **argv)
{
	enum { OPT_METADATA_DIR = 256, OPT_METADATA_URL, OPT_TARGET_NAME, OPT_TARGET_BASE_URL,
	       OPT_TARGET_DIR, OPT_VERSION, OPT_CONNECT_TIMEOUT, OPT_SLOW_TIMEOUT, OPT_MIN_SPEED };
	static const struct option options[] = {
		{"metadata-dir", required_argument, NULL, OPT_METADATA_DIR},
		{"metadata-url", required_argument, NULL, OPT_METADATA_URL},
		{"target-name", required_argument, NULL, OPT_TARGET_NAME},
		{"target-base-url", required_argument, NULL, OPT_TARGET_BASE_URL},
		{"target-dir", required_argument, NULL, OPT_TARGET_DIR},
		{"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
		{"slow-timeout", required_argument, NULL, OPT_SLOW_TIMEOUT},
		{"min-speed", required_argument, NULL, OPT_MIN_SPEED},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{},
	};
	otter_error err = OTTER_ERROR_INIT;
	const char *cmd;
	int c;

	/* getopt_long permutes argv, so options may come before or after the command. */
	while ((c = getopt_long(argc, argv, "qvh", options, NULL)) >= 0) {
		switch (c) {
		case OPT_METADATA_DIR:
			arg_metadata_dir = optarg;
			break;
		case OPT_METADATA_URL:
			arg_metadata_url = optarg;
			break;
		case OPT_TARGET_NAME:
			if (arg_n_targets == MAX_TARGETS) {
				fprintf(stderr, "otter-tuf: at most %d --target-name\n", MAX_TARGETS);
				return 1;
			}
			arg_targets[arg_n_targets++] = optarg;
			break;
		case OPT_TARGET_BASE_URL:
			arg_target_base_url = optarg;
			break;
		case OPT_TARGET_DIR:
			arg_target_dir = optarg;
			break;
		case OPT_CONNECT_TIMEOUT:
		case OPT_SLOW_TIMEOUT:
		case OPT_MIN_SPEED: {
			uint64_t v;
			if (parse_u64_range(optarg, 1, 86400 * 365, &v) < 0) {
				fprintf(stderr, "otter-tuf: invalid number '%s'\n", optarg);
				return 1;
			}
			if (c == OPT_CONNECT_TIMEOUT)
				arg_connect_timeout = (long)v;
			else if (c == OPT_SLOW_TIMEOUT)
				arg_slow_timeout = (long)v;
			else
				arg_min_speed = (long)v;
			break;
		}
		case 'q':
			arg_verbosity = OTTER_LOG_ERR;
			break;
		case 'v':
			arg_verbosity = OTTER_LOG_DEBUG;
			break;
		case 'h':
			help();
			return 0;
		case OPT_VERSION:
			printf("otter-tuf %s\n", OTTER_VERSION);
			return 0;
		default:
			fprintf(stderr, "Try 'otter-tuf --help'.\n");
			return 1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "otter-tuf: no command given. Try 'otter-tuf --help'.\n");
		return 1;
	}
	cmd = argv[optind];
	if (!arg_metadata_dir) {
		fprintf(stderr, "otter-tuf: --metadata-dir is required\n");
		return 1;
	}
	if (otter_global_init(&err) < 0)
		return fail("init", &err);
	if (strcmp(cmd, "init") == 0) {
		if (optind + 2 != argc) {
			fprintf(stderr, "otter-tuf: usage: init TRUSTED_ROOT\n");
			return 1;
		}
		return cmd_init(argv[optind + 1]);
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "otter-tuf: unexpected argument '%s'\n", argv[optind + 1]);
		return 1;
	}
	if (strcmp(cmd, "refresh") == 0)
		return cmd_refresh();
	if (strcmp(cmd, "download") == 0)
		return cmd_download();
	fprintf(stderr, "otter-tuf: unknown command '%s'. Try 'otter-tuf --help'.\n", cmd);
	return 1;
}
