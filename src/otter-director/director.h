/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_DIRECTOR_DIRECTOR_H
#define OTTER_DIRECTOR_DIRECTOR_H

/* otter-director's program-wide pieces: the configuration file and the command table. */

#include <stdbool.h>
#include <stdint.h>

#include <otter/error.h>

#include "lib/director/db.h"
#include "lib/director/device.h"
#include "lib/director/server.h"

#define DIRECTOR_CONF_DEFAULT "/etc/otter/director.conf"
#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* The configuration file (docs/director.md, "Configuration"). */
typedef struct director_config {
	/* [database] */
	char *db_url;
	/* [server] */
	char *listen;
	uint64_t threads;
	char *admin_listen; /* "off", "same" or ADDRESS:PORT */
	unsigned auth_mode; /* dir_auth_mode */
	char *proxy_header;
	uint64_t max_skew;
	unsigned access_log; /* 0 no, 1 yes */
	/* [keys] */
	char *targets_key, *snapshot_key, *timestamp_key;
	/* [metadata] */
	uint64_t targets_expiry, snapshot_expiry, timestamp_expiry;
	/* [image-repository] */
	char *image_metadata_url;
	char *image_metadata_dir;
	/* [admin] */
	char *admin_token_file;
} director_config;

/* Global options (before the command). */
extern const char *arg_config;   /* NULL: the default file, if it exists */
extern const char *arg_database; /* overrides [database] url */

/* Loads the configuration (defaults when no file), applying --database. */
int director_config_load(director_config *cfg, otter_error *err);
void director_config_clear(director_config *cfg);

/* For a command: loads the configuration and opens its database (director_open_db); on
 * failure prints the error (cli_fail) and returns EXIT_FAIL with nothing to clean up. */
int director_cli_open(const char *cmd, director_config *cfg, dir_db **db);

/* Opens the database of the configuration and applies the migrations. */
int director_open_db(const director_config *cfg, dir_db **out, otter_error *err);

/* Loads the online keys named by [keys] (those configured) into the signer, with the
 * lifetimes of [metadata]. */
int director_load_signer(const director_config *cfg, dir_signer *s, otter_error *err);
void director_signer_clear(dir_signer *s);

/* Reads a whole file (at most max bytes). */
int director_read_file(const char *path, size_t max, uint8_t **out, size_t *len,
		       otter_error *err);

int cli_fail(const char *cmd, const otter_error *err);
/* Prints a JSON value (pretty) on stdout. */
void print_json(const json_t *v);

int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_root(int argc, char **argv);
int cmd_device(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);

#endif
