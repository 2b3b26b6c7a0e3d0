/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-director's configuration file (docs/director.md, "Configuration"). */

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "otter-director/director.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/ini.h"

#define F(field) offsetof(director_config, field)
#define DAY 86400u

static const char *const auth_modes[] = { "signature", "proxy", NULL };
static const char *const yes_no[] = { "no", "yes", NULL };

static const ini_key database_keys[] = {
	{ "url", INI_STRING, F(db_url), 0, 1000, NULL, "sqlite:/var/lib/otter-director/director.db",
	  false },
};
static const ini_key server_keys[] = {
	{ "listen", INI_STRING, F(listen), 0, 100, NULL, "127.0.0.1:8080", false },
	{ "threads", INI_U64, F(threads), 1, 256, NULL, "4", false },
	{ "admin-listen", INI_STRING, F(admin_listen), 0, 100, NULL, "same", false },
	{ "auth", INI_ENUM, F(auth_mode), 0, 0, auth_modes, "signature", false },
	{ "proxy-header", INI_STRING, F(proxy_header), 0, 100, NULL, "Otter-Device-Id", false },
	{ "max-clock-skew", INI_U64, F(max_skew), 1, DAY, NULL, "300", false },
	{ "access-log", INI_ENUM, F(access_log), 0, 0, yes_no, "no", false },
};
static const ini_key keys_keys[] = {
	{ "targets", INI_PATH, F(targets_key), 0, 0, NULL, NULL, false },
	{ "snapshot", INI_PATH, F(snapshot_key), 0, 0, NULL, NULL, false },
	{ "timestamp", INI_PATH, F(timestamp_key), 0, 0, NULL, NULL, false },
};
static const ini_key metadata_keys[] = {
	{ "targets-expiry", INI_U64, F(targets_expiry), 60, 365 * DAY, NULL, "604800", false },
	{ "snapshot-expiry", INI_U64, F(snapshot_expiry), 60, 365 * DAY, NULL, "604800", false },
	{ "timestamp-expiry", INI_U64, F(timestamp_expiry), 60, 365 * DAY, NULL, "86400", false },
};
static const ini_key image_keys[] = {
	{ "metadata-url", INI_STRING, F(image_metadata_url), 0, 1000, NULL, NULL, false },
	{ "metadata-dir", INI_PATH, F(image_metadata_dir), 0, 0, NULL, NULL, false },
};
static const ini_key admin_keys[] = {
	{ "token-file", INI_PATH, F(admin_token_file), 0, 0, NULL, NULL, false },
};

static int begin_any(void *userdata, const char *subname, void **target, otter_error *err)
{
	(void)subname, (void)err;
	*target = userdata;
	return 0;
}

static const ini_section sections[] = {
	{ "database", false, database_keys, ELEMENTSOF(database_keys), begin_any, NULL, NULL },
	{ "server", false, server_keys, ELEMENTSOF(server_keys), begin_any, NULL, NULL },
	{ "keys", false, keys_keys, ELEMENTSOF(keys_keys), begin_any, NULL, NULL },
	{ "metadata", false, metadata_keys, ELEMENTSOF(metadata_keys), begin_any, NULL, NULL },
	{ "image-repository", false, image_keys, ELEMENTSOF(image_keys), begin_any, NULL, NULL },
	{ "admin", false, admin_keys, ELEMENTSOF(admin_keys), begin_any, NULL, NULL },
};

void director_config_clear(director_config *cfg)
{
	free(cfg->db_url);
	free(cfg->listen);
	free(cfg->admin_listen);
	free(cfg->proxy_header);
	free(cfg->targets_key);
	free(cfg->snapshot_key);
	free(cfg->timestamp_key);
	free(cfg->image_metadata_url);
	free(cfg->image_metadata_dir);
	free(cfg->admin_token_file);
	memset(cfg, 0, sizeof(*cfg));
}

int director_read_file(const char *path, size_t max, uint8_t **out, size_t *len,
		       otter_error *err)
{
	return fileio_read(AT_FDCWD, path, max, out, len, err);
}

int director_config_load(director_config *cfg, otter_error *err)
{
	_cleanup_free_ uint8_t *data = NULL;
	const char *path = arg_config ? arg_config : DIRECTOR_CONF_DEFAULT;
	size_t len = 0;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	if (arg_config || access(path, F_OK) == 0) {
		r = director_read_file(path, INI_MAX_FILE_SIZE, &data, &len, err);
		if (r < 0)
			return otter_error_prefix(err, r, "configuration: ");
	}
	r = ini_parse(path, data ? data : (const uint8_t *)"", len, sections,
		      ELEMENTSOF(sections), cfg, err);
	if (r < 0)
		return r;
	if (arg_database) {
		free(cfg->db_url);
		cfg->db_url = otter_strdup(arg_database);
		if (!cfg->db_url)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	if (cfg->timestamp_expiry > cfg->snapshot_expiry)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "%s: [metadata] timestamp-expiry is longer than "
				       "snapshot-expiry",
				       path);
	return 0;
}

int director_open_db(const director_config *cfg, dir_db **out, otter_error *err)
{
	dir_db *db = NULL;
	int r = dir_db_open(&db, cfg->db_url, err);

	if (r == 0)
		r = dir_db_migrate(db, NULL, err);
	if (r < 0) {
		dir_db_close(db);
		return r;
	}
	*out = db;
	return 0;
}

static int load_key(const char *path, const char *role, otter_key **out, otter_error *err)
{
	_cleanup_free_ uint8_t *pem = NULL;
	size_t len;
	int r;

	if (!path)
		return 0;
	r = director_read_file(path, 64 * 1024, &pem, &len, err);
	if (r == 0)
		r = otter_key_load_pem(out, pem, len, NULL, err);
	if (r == 0 && !otter_key_has_private(*out)) {
		*out = otter_key_free(*out);
		r = otter_error_set(err, OTTER_E_CONFIG, "not a private key");
	}
	if (pem)
		memset(pem, 0, len);
	if (r < 0)
		return otter_error_prefix(err, r, "[keys] %s = %s: ", role, path);
	return 0;
}

int director_load_signer(const director_config *cfg, dir_signer *s, otter_error *err)
{
	int r;

	memset(s, 0, sizeof(*s));
	r = load_key(cfg->targets_key, "targets", &s->targets, err);
	if (r == 0)
		r = load_key(cfg->snapshot_key, "snapshot", &s->snapshot, err);
	if (r == 0)
		r = load_key(cfg->timestamp_key, "timestamp", &s->timestamp, err);
	if (r < 0) {
		director_signer_clear(s);
		return r;
	}
	s->targets_lifetime = (int64_t)cfg->targets_expiry;
	s->snapshot_lifetime = (int64_t)cfg->snapshot_expiry;
	s->timestamp_lifetime = (int64_t)cfg->timestamp_expiry;
	return 0;
}

void director_signer_clear(dir_signer *s)
{
	otter_key_free(s->targets);
	otter_key_free(s->snapshot);
	otter_key_free(s->timestamp);
	memset(s, 0, sizeof(*s));
}

int director_cli_open(const char *cmd, director_config *cfg, dir_db **db)
{
	otter_error err = OTTER_ERROR_INIT;
	int r = director_config_load(cfg, &err);

	if (r == 0)
		r = director_open_db(cfg, db, &err);
	if (r < 0) {
		director_config_clear(cfg);
		return cli_fail(cmd, &err);
	}
	return 0;
}
