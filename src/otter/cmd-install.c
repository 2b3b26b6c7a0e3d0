/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <otter/bootslot.h>
#include <otter/net.h>
#include <otter/slot.h>

#include "otter.h"
#include "util/cleanup.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(otter_system, otter_system_free)

static void help(void)
{
	printf("Usage: otter install IMAGE --class CLASS --sha256 HEX --length N [OPTIONS]\n"
	       "\n"
	       "Writes IMAGE into the inactive slot of CLASS, verifies it, and activates it: the\n"
	       "next boot tries the new slot, which must then confirm itself with mark-good.\n"
	       "IMAGE is a path, '-' for standard input, or an http://, https:// or file:// URL.\n"
	       "The length and SHA-256 are those of IMAGE as given (compressed if it is zstd).\n"
	       "\n"
	       "  --class CLASS        slot class, e.g. rootfs (required)\n"
	       "  --sha256 HEX         expected SHA-256 of IMAGE, 64 hex digits (required)\n"
	       "  --length N           expected length of IMAGE in bytes (required)\n"
	       "  --version V          version recorded for the slot\n"
	       "  --compression C      auto (default: zstd if IMAGE starts like zstd), none, zstd\n"
	       "  --no-activate        write and verify only; activate later with mark-active\n"
	       "  -h, --help           show this help\n"
	       "\n"
	       "Progress goes to standard error: a percentage and MB/s on a terminal, a plain line\n"
	       "every 10%% otherwise.\n");
}

static void on_progress(void *userdata, uint64_t done, uint64_t total)
{
	cli_progress_update(userdata, done, total);
}

static int net_write(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	const otter_sink *sink = userdata;

	return sink->write(sink->userdata, data, len, err);
}

/* A path or "-" goes through the writer; a URL is fetched here, into the writer's sink. */
static int stream(otter_slot_writer *w, const char *image, uint64_t len, otter_error *err)
{
	otter_net *net = NULL;
	otter_sink sink;
	int r;

	if (!strstr(image, "://"))
		return otter_slot_writer_stream(w, image, err);
	otter_slot_writer_sink(w, &sink);
	r = otter_net_new(&net, NULL, err);
	if (r == 0)
		r = otter_net_fetch(net, image, 0, len, net_write, &sink, NULL, err);
	otter_net_free(net);
	return r;
}

int cmd_install(int argc, char **argv)
{
	enum { OPT_CLASS = 256, OPT_SHA, OPT_LEN, OPT_VERSION, OPT_COMP, OPT_NOACT };
	static const struct option options[] = {
		{"class", required_argument, NULL, OPT_CLASS},
		{"sha256", required_argument, NULL, OPT_SHA},
		{"length", required_argument, NULL, OPT_LEN},
		{"version", required_argument, NULL, OPT_VERSION},
		{"compression", required_argument, NULL, OPT_COMP},
		{"no-activate", no_argument, NULL, OPT_NOACT},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	_cleanup_(otter_system_freep) otter_system *sys = NULL;
	otter_slot_writer_options opts = OTTER_SLOT_WRITER_OPTIONS_INIT;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_writer *w = NULL;
	const char *class_name = NULL, *sha = NULL, *len_arg = NULL, *image;
	uint8_t digest[OTTER_SHA256_SIZE];
	struct cli_progress prog;
	bool activate = true;
	uint64_t len;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case OPT_CLASS:
			class_name = optarg;
			break;
		case OPT_SHA:
			sha = optarg;
			break;
		case OPT_LEN:
			len_arg = optarg;
			break;
		case OPT_VERSION:
			opts.image_version = optarg;
			break;
		case OPT_COMP:
			if (strcmp(optarg, "auto") == 0)
				opts.compression = OTTER_COMPRESSION_AUTO;
			else if (strcmp(optarg, "none") == 0)
				opts.compression = OTTER_COMPRESSION_NONE;
			else if (strcmp(optarg, "zstd") == 0)
				opts.compression = OTTER_COMPRESSION_ZSTD;
			else {
				fprintf(stderr, "otter install: --compression is auto, none or "
						"zstd\n");
				return EXIT_USAGE;
			}
			break;
		case OPT_NOACT:
			activate = false;
			break;
		case 'h':
			help();
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || !class_name || !sha || !len_arg) {
		fprintf(stderr, "otter install: need IMAGE, --class, --sha256 and --length. Try "
				"'otter install --help'.\n");
		return EXIT_USAGE;
	}
	image = argv[optind];
	if (!hex_decode(sha, strlen(sha), digest, sizeof(digest))) {
		fprintf(stderr, "otter install: --sha256 must be 64 hex digits\n");
		return EXIT_USAGE;
	}
	if (parse_u64_range(len_arg, 1, INT64_MAX, &len) < 0) {
		fprintf(stderr, "otter install: --length must be a positive whole number\n");
		return EXIT_USAGE;
	}
	if (cli_load_system(&sys))
		return EXIT_FAIL;
	if (otter_system_find_boot_slot(sys, class_name)) {
		/* Raw images only, and the install is the switch: nothing to activate later. */
		if (opts.compression == OTTER_COMPRESSION_ZSTD || !activate) {
			fprintf(stderr, "otter install: class %s is a bootloader slot: it takes raw "
					"images and is switched by the install (no --compression zstd, "
					"no --no-activate)\n",
				class_name);
			return EXIT_USAGE;
		}
		return cli_install_boot_slot(sys, class_name, image, len, digest);
	}
	cli_progress_init(&prog, class_name);
	opts.progress = on_progress;
	opts.progress_userdata = &prog;
	r = otter_slot_writer_open(&w, sys, class_name, len, digest, &opts, &err);
	if (r == 0)
		r = stream(w, image, len, &err);
	if (r == 0)
		r = otter_slot_writer_finish(w, &err);
	if (r == 0 && activate)
		r = otter_slot_writer_activate(w, &err);
	if (r == 0 && activate)
		printf("installed %s into class %s and activated it; reboot to try it\n", image,
		       class_name);
	else if (r == 0)
		printf("installed %s into slot %s (not activated)\n", image,
		       otter_slot_name(otter_slot_writer_target(w)));
	otter_slot_writer_free(w);
	return r < 0 ? cli_fail("install", &err) : EXIT_OK;
}
