/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-director serve and migrate. */

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "otter-director/director.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/sdnotify.h"
#include "util/strutil.h"

static const char serve_help[] =
	"Usage: otter-director serve [--listen ADDRESS:PORT] [--port-file FILE] [--threads N]\n"
	"\n"
	"Runs the HTTP server: the device API under /director/v1/ and, unless [server]\n"
	"admin-listen says otherwise, the admin API under /director/v1/admin/. Applies the\n"
	"schema migrations first and refuses to start unless the newest imported root lists\n"
	"the configured online keys. Stops cleanly on SIGTERM or SIGINT.\n"
	"\n"
	"  --listen ADDRESS:PORT  overrides [server] listen (port 0: any free port)\n"
	"  --port-file FILE       write the bound port there once serving\n"
	"  --threads N            overrides [server] threads\n";

/* Reads the admin token (first line of the file, at least 16 characters). */
static int read_admin_token(const char *path, char **out, otter_error *err)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len, n;
	int r;

	r = director_read_file(path, 4096, &data, &len, err);
	if (r < 0)
		return otter_error_prefix(err, r, "[admin] token-file: ");
	n = strcspn((const char *)data, "\r\n");
	if (n < 16)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "[admin] token-file %s: the token must be at least 16 "
				       "characters on the first line",
				       path);
	*out = strndup((const char *)data, n);
	memset(data, 0, len);
	return *out ? 0 : otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	otter_error err = OTTER_ERROR_INIT;
	const char *listen_at = NULL, *port_file = NULL;
	_cleanup_free_ char *admin_token = NULL;
	director_config cfg;
	dir_signer signer;
	dir_server *server = NULL, *admin = NULL;
	dir_db *db = NULL;
	uint64_t threads = 0;
	sigset_t mask;
	int o, sig = 0, r;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			listen_at = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 't':
			if (parse_u64_range(optarg, 1, 256, &threads) < 0) {
				fprintf(stderr, "otter-director serve: --threads: 1..256\n");
				return EXIT_USAGE;
			}
			break;
		case 'h':
			printf("%s", serve_help);
			return 0;
		default:
			fprintf(stderr, "%s", serve_help);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s", serve_help);
		return EXIT_USAGE;
	}
	r = director_config_load(&cfg, &err);
	if (r < 0)
		return cli_fail("serve", &err);
	r = director_load_signer(&cfg, &signer, &err);
	if (r == 0 && (!signer.targets || !signer.snapshot || !signer.timestamp))
		r = otter_error_set(&err, OTTER_E_CONFIG,
				    "[keys] targets, snapshot and timestamp must name the online "
				    "private keys");
	if (r == 0)
		r = director_open_db(&cfg, &db, &err);
	if (r == 0)
		r = dir_root_check_keys(db, signer.targets, signer.snapshot, signer.timestamp,
					&signer.root_version, &err);
	if (r == 0 && cfg.admin_token_file && strcmp(cfg.admin_listen, "off") != 0)
		r = read_admin_token(cfg.admin_token_file, &admin_token, &err);
	dir_db_close(db);
	if (r < 0)
		goto out;

	dir_server_config dev = {
		.db_url = cfg.db_url,
		.listen = listen_at ? listen_at : cfg.listen,
		.threads = (unsigned)(threads ? threads : cfg.threads),
		.skew = (int64_t)cfg.max_skew,
		.signer = &signer,
		.device_routes = true,
		.admin_routes = admin_token && strcmp(cfg.admin_listen, "same") == 0,
		.admin_token = admin_token,
		.image_metadata_url = cfg.image_metadata_url,
		.image_metadata_dir = cfg.image_metadata_dir,
		.access_log = cfg.access_log == 1,
		.auth_mode = cfg.auth_mode == 1 ? DIR_AUTH_PROXY : DIR_AUTH_SIGNATURE,
		.proxy_header = cfg.proxy_header,
	};
	dir_server_config adm = dev;
	adm.listen = cfg.admin_listen;
	adm.threads = 1;
	adm.device_routes = false;
	adm.admin_routes = true;

	/* The workers inherit this mask; the main thread waits for the signals. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	r = dir_server_start(&server, &dev, &err);
	if (r == 0 && admin_token && strcmp(cfg.admin_listen, "same") != 0)
		r = dir_server_start(&admin, &adm, &err);
	if (r == 0 && port_file) {
		char text[16];
		strfmt(text, sizeof(text), "%u\n", (unsigned)dir_server_port(server));
		r = fileio_write_atomic_path(port_file, text, strlen(text), 0644, &err);
	}
	if (r < 0)
		goto out;
	fprintf(stderr,
		"otter-director: serving on %s (port %u, %u threads, %s, root version %" PRId64
		")%s\n",
		dev.listen, (unsigned)dir_server_port(server), dev.threads,
		dev.auth_mode == DIR_AUTH_PROXY ? "proxy authentication" : "signed requests",
		signer.root_version,
		admin ? ", admin API on its own listener"
		: dev.admin_routes ? ", admin API enabled"
				   : ", admin API off");
	sdnotify_send("READY=1\nSTATUS=serving");
	for (;;) {
		if (sigwait(&mask, &sig) == 0 && (sig == SIGTERM || sig == SIGINT))
			break;
	}
	sdnotify_send("STOPPING=1");
	fprintf(stderr, "otter-director: stopping (signal %d)\n", sig);
out:
	dir_server_stop(admin);
	dir_server_stop(server);
	director_signer_clear(&signer);
	director_config_clear(&cfg);
	if (r < 0)
		return cli_fail("serve", &err);
	return 0;
}

int cmd_migrate(int argc, char **argv)
{
	otter_error err = OTTER_ERROR_INIT;
	director_config cfg;
	dir_db *db = NULL;
	int64_t version = 0;
	int r;

	if (argc > 1) {
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			printf("Usage: otter-director migrate\n\nApplies the schema migrations this "
			       "build knows to the configured database.\n");
			return 0;
		}
		fprintf(stderr, "Usage: otter-director migrate\n");
		return EXIT_USAGE;
	}
	r = director_config_load(&cfg, &err);
	if (r == 0)
		r = dir_db_open(&db, cfg.db_url, &err);
	if (r == 0)
		r = dir_db_migrate(db, &version, &err);
	dir_db_close(db);
	director_config_clear(&cfg);
	if (r < 0)
		return cli_fail("migrate", &err);
	printf("schema version %" PRId64 "\n", version);
	return 0;
}
