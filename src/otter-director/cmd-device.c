/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-director device, token, history and root. */

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otter-director/director.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

#define MAX_TAGS 32
#define MAX_ROOTS 64

static int usage(const char *text, bool ok)
{
	fprintf(ok ? stdout : stderr, "%s", text);
	return ok ? 0 : EXIT_USAGE;
}

static int finish(const char *cmd, director_config *cfg, dir_db *db, int r,
		  const otter_error *err)
{
	dir_db_close(db);
	director_config_clear(cfg);
	return r < 0 ? cli_fail(cmd, err) : 0;
}

/* ---- device ---- */

static const char device_help[] =
	"Usage: otter-director device add --id ID --ecu SPEC [--ecu SPEC]... [--tag TAG]...\n"
	"       otter-director device list\n"
	"       otter-director device show ID\n"
	"       otter-director device remove ID\n"
	"\n"
	"add pre-registers a device, so that it needs no provisioning token: SPEC is\n"
	"serial=S,hardware-id=H,key=PUBLIC.pem[,primary] (exactly one ECU is primary; the key\n"
	"is an ed25519 or ecdsa-p256 public key in PEM). list and show print JSON: tags, ECUs,\n"
	"their keys, the image each last reported and their assignment. remove deletes the\n"
	"device with its ECUs, assignments and history.\n";

typedef struct ecu_arg {
	dir_ecu_spec spec;
	char *text;       /* the copy of the option the fields point into */
	uint8_t *pem;
} ecu_arg;

static int parse_ecu(const char *arg, ecu_arg *e, otter_error *err)
{
	char *tok, *next;
	const char *keyfile = NULL;
	otter_key *key = NULL;
	size_t len;
	int r;

	e->text = otter_strdup(arg);
	if (!e->text)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	for (tok = e->text; tok; tok = next) {
		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		if (strncmp(tok, "serial=", 7) == 0)
			e->spec.serial = tok + 7;
		else if (strncmp(tok, "hardware-id=", 12) == 0)
			e->spec.hardware_id = tok + 12;
		else if (strncmp(tok, "key=", 4) == 0)
			keyfile = tok + 4;
		else if (strcmp(tok, "primary") == 0)
			e->spec.primary = true;
		else
			return otter_error_set(err, OTTER_E_INVALID, "--ecu: unknown field \"%s\"",
					       tok);
	}
	if (!e->spec.serial || !e->spec.hardware_id || !keyfile)
		return otter_error_set(err, OTTER_E_INVALID,
				       "--ecu needs serial=, hardware-id= and key=");
	r = director_read_file(keyfile, 16 * 1024, &e->pem, &len, err);
	if (r == 0)
		r = otter_key_load_pem(&key, e->pem, len, NULL, err);
	if (r < 0)
		return otter_error_prefix(err, r, "--ecu key %s: ", keyfile);
	e->spec.key_type = otter_key_get_type(key) == OTTER_KEY_ED25519 ? "ed25519" : "ecdsa";
	e->spec.public_key = (const char *)e->pem;
	otter_key_free(key);
	return 0;
}

static int device_add(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "ecu", required_argument, NULL, 'e' },
		{ "tag", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	otter_error err = OTTER_ERROR_INIT;
	ecu_arg ecus[DIR_MAX_ECUS] = { 0 };
	dir_ecu_spec specs[DIR_MAX_ECUS];
	const char *tags[MAX_TAGS], *id = NULL;
	size_t n = 0, n_tags = 0;
	director_config cfg;
	dir_db *db = NULL;
	int o, r = 0;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'i':
			id = optarg;
			break;
		case 'e':
			if (n == DIR_MAX_ECUS) {
				fprintf(stderr, "otter-director device add: at most %u ECUs\n",
					DIR_MAX_ECUS);
				r = EXIT_USAGE;
				goto out;
			}
			if (parse_ecu(optarg, &ecus[n], &err) < 0) {
				r = cli_fail("device add", &err);
				n++;
				goto out;
			}
			specs[n] = ecus[n].spec;
			n++;
			break;
		case 't':
			if (n_tags == MAX_TAGS) {
				fprintf(stderr, "otter-director device add: at most %d tags\n",
					MAX_TAGS);
				r = EXIT_USAGE;
				goto out;
			}
			tags[n_tags++] = optarg;
			break;
		case 'h':
			r = usage(device_help, true);
			goto out;
		default:
			r = usage(device_help, false);
			goto out;
		}
	}
	if (!id || n == 0 || optind != argc) {
		r = usage(device_help, false);
		goto out;
	}
	r = director_cli_open("device add", &cfg, &db);
	if (r != 0)
		goto out;
	r = dir_device_add(db, id, specs, n, tags, n_tags, (int64_t)time(NULL), &err);
	if (r == 0)
		printf("device %s added with %zu ECU%s\n", id, n, n == 1 ? "" : "s");
	r = finish("device add", &cfg, db, r, &err);
out:
	for (size_t i = 0; i < n; i++) {
		free(ecus[i].text);
		free(ecus[i].pem);
	}
	return r;
}

int cmd_device(int argc, char **argv)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(json_decrefp) json_t *out = NULL;
	director_config cfg;
	dir_db *db = NULL;
	const char *sub;
	int r;

	if (argc < 2)
		return usage(device_help, false);
	sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)
		return usage(device_help, true);
	if (strcmp(sub, "add") == 0)
		return device_add(argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0 ? argc != 2
	    : (strcmp(sub, "show") == 0 || strcmp(sub, "remove") == 0) ? argc != 3
									: true)
		return usage(device_help, false);
	r = director_cli_open("device", &cfg, &db);
	if (r != 0)
		return r;
	if (strcmp(sub, "remove") == 0) {
		r = dir_device_remove(db, argv[2], &err);
		if (r == 0)
			printf("device %s removed\n", argv[2]);
	} else {
		r = dir_device_list(db, strcmp(sub, "show") == 0 ? argv[2] : NULL, &out, &err);
		if (r == 0)
			print_json(strcmp(sub, "show") == 0
					   ? json_array_get(json_object_get(out, "devices"), 0)
					   : out);
	}
	return finish("device", &cfg, db, r, &err);
}

/* ---- token ---- */

static const char token_help[] =
	"Usage: otter-director token create [--uses N] [--expires DURATION] [--device ID]\n"
	"                                   [--tag TAG]...\n"
	"       otter-director token list\n"
	"       otter-director token revoke ID\n"
	"\n"
	"create prints a new provisioning token (only once: the director stores its SHA-256)\n"
	"that registers up to N devices (default 1) until it expires (DURATION: seconds, or\n"
	"with a suffix m, h or d; default 24h); --device binds it to one device id, --tag\n"
	"gives the devices it registers tags. list prints JSON; revoke makes one unusable.\n";

static int parse_duration(const char *s, int64_t *out)
{
	size_t n = strlen(s);
	uint64_t v, mul = 1;
	char digits[24];

	if (n == 0 || n >= sizeof(digits))
		return -1;
	memcpy(digits, s, n + 1);
	switch (digits[n - 1]) {
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	case 's':
		break;
	default:
		n++;
	}
	digits[n - 1] = '\0';
	if (parse_u64_range(digits, 1, 3650ull * 86400, &v) < 0 || v * mul > 3650ull * 86400)
		return -1;
	*out = (int64_t)(v * mul);
	return 0;
}

static int token_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "uses", required_argument, NULL, 'u' },
		{ "expires", required_argument, NULL, 'e' },
		{ "device", required_argument, NULL, 'd' },
		{ "tag", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_free_ char *token = NULL;
	const char *tags[MAX_TAGS], *device = NULL;
	char id[DIR_ID_MAX + 1];
	int64_t lifetime = 86400, now = (int64_t)time(NULL);
	uint64_t uses = 1;
	size_t n_tags = 0;
	director_config cfg;
	dir_db *db = NULL;
	int o, r;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'u':
			if (parse_u64_range(optarg, 1, 100000000, &uses) < 0)
				return usage(token_help, false);
			break;
		case 'e':
			if (parse_duration(optarg, &lifetime) < 0)
				return usage(token_help, false);
			break;
		case 'd':
			device = optarg;
			break;
		case 't':
			if (n_tags == MAX_TAGS)
				return usage(token_help, false);
			tags[n_tags++] = optarg;
			break;
		case 'h':
			return usage(token_help, true);
		default:
			return usage(token_help, false);
		}
	}
	if (optind != argc)
		return usage(token_help, false);
	r = director_cli_open("token create", &cfg, &db);
	if (r != 0)
		return r;
	r = dir_token_create(db, (int64_t)uses, now + lifetime, device, tags, n_tags, now, &token,
			     id, &err);
	if (r == 0) {
		printf("%s\n", token);
		fprintf(stderr,
			"token %s: %" PRIu64 " use%s, expires in %" PRId64
			" s; shown only now, keep it secret\n",
			id, uses, uses == 1 ? "" : "s", lifetime);
		memset(token, 0, strlen(token));
	}
	return finish("token create", &cfg, db, r, &err);
}

int cmd_token(int argc, char **argv)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(json_decrefp) json_t *out = NULL;
	director_config cfg;
	dir_db *db = NULL;
	int r;

	if (argc < 2)
		return usage(token_help, false);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(token_help, true);
	if (strcmp(argv[1], "create") == 0)
		return token_create(argc - 1, argv + 1);
	if (!((strcmp(argv[1], "list") == 0 && argc == 2) ||
	      (strcmp(argv[1], "revoke") == 0 && argc == 3)))
		return usage(token_help, false);
	r = director_cli_open("token", &cfg, &db);
	if (r != 0)
		return r;
	if (strcmp(argv[1], "list") == 0) {
		r = dir_token_list(db, &out, &err);
		if (r == 0)
			print_json(out);
	} else {
		r = dir_token_revoke(db, argv[2], &err);
		if (r == 0)
			printf("token %s revoked\n", argv[2]);
	}
	return finish("token", &cfg, db, r, &err);
}

/* ---- history ---- */

static const char history_help[] =
	"Usage: otter-director history DEVICE [--limit N]\n"
	"\n"
	"Prints (JSON) the last manifests DEVICE sent, newest first (default 10, the director\n"
	"keeps 100): when, the installation result it carried, and the manifest itself.\n";

int cmd_history(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "limit", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(json_decrefp) json_t *out = NULL;
	director_config cfg;
	dir_db *db = NULL;
	uint64_t limit = 10;
	int o, r;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'l':
			if (parse_u64_range(optarg, 1, DIR_MANIFEST_HISTORY, &limit) < 0)
				return usage(history_help, false);
			break;
		case 'h':
			return usage(history_help, true);
		default:
			return usage(history_help, false);
		}
	}
	if (optind != argc - 1)
		return usage(history_help, false);
	r = director_cli_open("history", &cfg, &db);
	if (r != 0)
		return r;
	r = dir_device_history(db, argv[optind], (int64_t)limit, &out, &err);
	if (r == 0)
		print_json(out);
	return finish("history", &cfg, db, r, &err);
}

/* ---- root ---- */

static const char root_help[] =
	"Usage: otter-director root import N.root.json [N+1.root.json]...\n"
	"       otter-director root show\n"
	"\n"
	"import stores root metadata made offline (docs/director.md, \"Keys and the root\n"
	"ceremony\"), in order: the first ever must be signed by a threshold of its own root\n"
	"keys, each next one by a threshold of the previous root's keys and of its own. The\n"
	"newest must list the configured online keys ([keys]) for targets, snapshot and\n"
	"timestamp at threshold 1. Restart the server after importing. show prints the newest\n"
	"root.\n";

int cmd_root(int argc, char **argv)
{
	otter_error err = OTTER_ERROR_INIT;
	director_config cfg;
	dir_db *db = NULL;
	int r;

	if (argc < 2)
		return usage(root_help, false);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(root_help, true);
	if (strcmp(argv[1], "import") == 0) {
		uint8_t *files[MAX_ROOTS] = { 0 };
		size_t lens[MAX_ROOTS], n = (size_t)argc - 2;
		dir_signer signer;
		int64_t version = 0;
		if (argc < 3 || n > MAX_ROOTS)
			return usage(root_help, false);
		r = director_cli_open("root import", &cfg, &db);
		if (r != 0)
			return r;
		r = director_load_signer(&cfg, &signer, &err);
		for (size_t i = 0; r == 0 && i < n; i++) {
			r = director_read_file(argv[2 + i], 512 * 1024, &files[i], &lens[i], &err);
			if (r < 0)
				otter_error_prefix(&err, r, "%s: ", argv[2 + i]);
		}
		if (r == 0 && (!signer.targets || !signer.snapshot || !signer.timestamp))
			fprintf(stderr, "otter-director root import: warning: [keys] does not name "
					"all three online keys; only those named are checked\n");
		if (r == 0)
			r = dir_root_import(db, (const uint8_t *const *)files, lens, n,
					    signer.targets, signer.snapshot, signer.timestamp,
					    (int64_t)time(NULL), &version, &err);
		if (r == 0)
			printf("director root version %" PRId64 " is the newest\n", version);
		for (size_t i = 0; i < n; i++)
			free(files[i]);
		director_signer_clear(&signer);
		return finish("root import", &cfg, db, r, &err);
	}
	if (strcmp(argv[1], "show") == 0) {
		_cleanup_free_ char *body = NULL;
		int64_t version = 0;
		if (argc != 2)
			return usage(root_help, false);
		r = director_cli_open("root show", &cfg, &db);
		if (r != 0)
			return r;
		r = dir_root_latest(db, &version, &body, &err);
		if (r == 0 && !body)
			r = otter_error_set(&err, OTTER_E_NOT_FOUND, "no root imported yet");
		if (r == 0)
			fputs(body, stdout);
		return finish("root show", &cfg, db, r, &err);
	}
	return usage(root_help, false);
}
