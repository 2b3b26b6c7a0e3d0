/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The [update] section of system.conf. The file is read once and parsed twice, each module
 * with its own table (util/ini.h): slot's otter_system_parse_shared leaves [update] to the
 * agent, and the agent skips the sections slot checked.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "agent-private.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/ini.h"

#define F(field) offsetof(agent_config, field)
#define DAY      86400u

static const ini_key update_keys[] = {
	{"repository", INI_STRING, F(repository), 0, 1000, NULL, NULL, false},
	{"trusted-root", INI_PATH, F(trusted_root), 0, 0, NULL, "/etc/otter/root.json", false},
	{"metadata-directory", INI_PATH, F(metadata_dir), 0, 0, NULL, NULL, false},
	{"download-directory", INI_PATH, F(download_dir), 0, 0, NULL, NULL, false},
	{"release-prefix", INI_STRING, F(release_prefix), 0, 0, NULL, "releases/", false},
	{"hardware-id", INI_STRING, F(hardware_id), 0, 128, NULL, NULL, false},
	{"reboot-command", INI_STRING, F(reboot_command), 0, 1000, NULL, "/sbin/reboot", false},
	{"health-check", INI_STRING, F(health_check), 0, 1000, NULL, NULL, false},
	{"watchdog-device", INI_PATH, F(watchdog_device), 0, 0, NULL, NULL, false},
	{"version-file", INI_PATH, F(version_file), 0, 0, NULL, "/etc/os-release", false},
	{"poll-interval", INI_U64, F(poll_interval), 10, 30 * DAY, NULL, "3600", false},
	{"poll-jitter", INI_U64, F(poll_jitter), 0, DAY, NULL, "300", false},
	{"confirm-deadline", INI_U64, F(confirm_deadline), 10, DAY, NULL, "300", false},
	{"retry-min", INI_U64, F(retry_min), 1, DAY, NULL, "60", false},
	{"retry-max", INI_U64, F(retry_max), 1, 7 * DAY, NULL, "3600", false},
	{"download-attempts", INI_U64, F(download_attempts), 1, 1000, NULL, "5", false},
	{"connect-timeout", INI_U64, F(connect_timeout), 1, 600, NULL, "30", false},
	{"slow-timeout", INI_U64, F(slow_timeout), 1, 3600, NULL, "60", false},
	{"min-speed", INI_U64, F(min_speed), 1, 1u << 30, NULL, "1024", false},
	{"watchdog-interval", INI_U64, F(watchdog_interval), 1, 3600, NULL, "10", false},
};

static int begin_update(void *userdata, const char *subname, void **target, otter_error *err)
{
	agent_config *cfg = userdata;

	*target = cfg;
	return 0;
}

static int end_update(void *userdata, void *target, otter_error *err)
{
	agent_config *cfg = target;

	if (cfg->retry_min > cfg->retry_max)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "retry-min: larger than retry-max (%llu > %llu)",
				       (unsigned long long)cfg->retry_min,
				       (unsigned long long)cfg->retry_max);
	if (cfg->release_prefix && strstr(cfg->release_prefix, ".."))
		return otter_error_set(err, OTTER_E_CONFIG, "release-prefix: must not contain '..'");
	return 0;
}

#define U(field) offsetof(uptane_config, field)

/* [uptane]: the Director (docs/agent.md "Uptane"). */
static const ini_key uptane_keys[] = {
	{"director", INI_STRING, U(director), 0, 1000, NULL, NULL, false},
	{"director-root", INI_PATH, U(director_root), 0, 0, NULL, NULL, false},
	{"device-id", INI_STRING, U(device_id), 0, 64, NULL, NULL, false},
	{"ecu-serial", INI_STRING, U(ecu_serial), 0, 64, NULL, NULL, false},
	{"hardware-id", INI_STRING, U(hardware_id), 0, 64, NULL, NULL, false},
	{"key", INI_PATH, U(key), 0, 0, NULL, NULL, false},
	{"token-file", INI_PATH, U(token_file), 0, 0, NULL, NULL, false},
	{"metadata-directory", INI_PATH, U(metadata_dir), 0, 0, NULL, NULL, false},
};

/* Identifiers of the protocol: 1 to 64 of [A-Za-z0-9._:-]. */
static bool protocol_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 1 && n <= 64 &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == n;
}

static int begin_uptane(void *userdata, const char *subname, void **target, otter_error *err)
{
	agent_config *cfg = userdata;

	*target = &cfg->uptane;
	return 0;
}

static int end_uptane(void *userdata, void *target, otter_error *err)
{
	uptane_config *u = target;
	static const char *const names[] = {"device-id", "ecu-serial", "hardware-id"};
	const char *values[] = {u->device_id, u->ecu_serial, u->hardware_id};

	static const char *const required[] = {"director", "director-root", "device-id",
					       "ecu-serial"};
	const char *given[] = {u->director, u->director_root, u->device_id, u->ecu_serial};

	/* The parser also ends sections a file leaves out: an [uptane] section without keys is
	 * no Director at all; any key makes the required ones required. */
	u->enabled = u->director || u->director_root || u->device_id || u->ecu_serial ||
		     u->hardware_id || u->key || u->token_file || u->metadata_dir;
	if (!u->enabled)
		return 0;
	for (size_t i = 0; i < ELEMENTSOF(required); i++)
		if (!given[i])
			return otter_error_set(err, OTTER_E_CONFIG, "[uptane] %s: missing (required "
								    "with a Director)",
					       required[i]);
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (values[i] && !protocol_id_ok(values[i]))
			return otter_error_set(err, OTTER_E_CONFIG,
					       "[uptane] %s: '%s' is not 1 to 64 characters of "
					       "A-Z a-z 0-9 . _ : -",
					       names[i], values[i]);
	if (strncmp(u->director, "https://", 8) != 0 && strncmp(u->director, "http://", 7) != 0)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "[uptane] director: '%s' is not an http(s):// URL", u->director);
	return 0;
}

#define S(field) offsetof(uptane_secondary_config, field)

/* [secondary.NAME]: a secondary ECU (docs/agent.md "Secondary ECUs"). */
static const ini_key secondary_keys[] = {
	{"serial", INI_STRING, S(serial), 0, 64, NULL, NULL, true},
	{"hardware-id", INI_STRING, S(hardware_id), 0, 64, NULL, NULL, true},
	{"install", INI_STRING, S(install), 0, 1000, NULL, NULL, true},
	{"key", INI_PATH, S(key), 0, 0, NULL, NULL, false},
};

static int begin_secondary(void *userdata, const char *subname, void **target,
			   otter_error *err)
{
	agent_config *cfg = userdata;
	uptane_secondary_config *s;

	if (!protocol_id_ok(subname) || strchr(subname, '/'))
		return otter_error_set(err, OTTER_E_CONFIG, "[secondary.%s]: the name must be 1 to "
							   "64 of A-Z a-z 0-9 . _ : -",
				       subname);
	for (size_t i = 0; i < cfg->uptane.n_secondaries; i++)
		if (strcmp(cfg->uptane.secondaries[i].name, subname) == 0)
			return otter_error_set(err, OTTER_E_CONFIG, "[secondary.%s]: twice",
					       subname);
	if (cfg->uptane.n_secondaries == UPTANE_MAX_SECONDARIES)
		return otter_error_set(err, OTTER_E_CONFIG, "[secondary.%s]: more than %d "
							   "secondaries",
				       subname, UPTANE_MAX_SECONDARIES);
	s = &cfg->uptane.secondaries[cfg->uptane.n_secondaries++];
	s->name = otter_strdup(subname);
	if (!s->name)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	*target = s;
	return 0;
}

static int end_secondary(void *userdata, void *target, otter_error *err)
{
	uptane_secondary_config *s = target;

	if (!protocol_id_ok(s->serial) || !protocol_id_ok(s->hardware_id))
		return otter_error_set(err, OTTER_E_CONFIG,
				       "[secondary.%s] serial, hardware-id: 1 to 64 characters of "
				       "A-Z a-z 0-9 . _ : -",
				       s->name);
	return 0;
}

static const ini_section update_sections[] = {
	{"update", false, update_keys, ELEMENTSOF(update_keys), begin_update, end_update, NULL},
	{"uptane", false, uptane_keys, ELEMENTSOF(uptane_keys), begin_uptane, end_uptane, NULL},
	{"secondary.", false, secondary_keys, ELEMENTSOF(secondary_keys), begin_secondary,
	 end_secondary, NULL},
};

void uptane_config_clear(uptane_config *c)
{
	for (size_t i = 0; i < c->n_secondaries; i++) {
		free(c->secondaries[i].name);
		free(c->secondaries[i].serial);
		free(c->secondaries[i].hardware_id);
		free(c->secondaries[i].install);
		free(c->secondaries[i].key);
	}
	free(c->director);
	free(c->director_root);
	free(c->device_id);
	free(c->ecu_serial);
	free(c->hardware_id);
	free(c->key);
	free(c->token_file);
	free(c->metadata_dir);
	memset(c, 0, sizeof(*c));
}

void agent_config_clear(agent_config *cfg)
{
	free(cfg->repository);
	free(cfg->trusted_root);
	free(cfg->metadata_dir);
	free(cfg->download_dir);
	free(cfg->release_prefix);
	free(cfg->hardware_id);
	free(cfg->reboot_command);
	free(cfg->health_check);
	free(cfg->watchdog_device);
	free(cfg->version_file);
	uptane_config_clear(&cfg->uptane);
	memset(cfg, 0, sizeof(*cfg));
}

int agent_config_load(otter_system **sys, agent_config *cfg, const char *path, otter_error *err)
{
	static const char *const agent_sections[] = {"update", "uptane", "secondary.", NULL};
	static const ini_options opts = {.skip_unknown_sections = true};
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	*sys = NULL;
	r = fileio_read(AT_FDCWD, path, INI_MAX_FILE_SIZE, &data, &len, err);
	if (r < 0)
		return otter_error_prefix(err, r == OTTER_E_NOT_FOUND ? r : OTTER_E_CONFIG,
					  "system configuration");
	r = otter_system_parse_shared(sys, path, data, len, agent_sections, err);
	if (r == 0)
		r = ini_parse_opts(&opts, path, data, len, update_sections, ELEMENTSOF(update_sections), cfg,
				  err);
	if (r == 0 && cfg->uptane.n_secondaries > 0 && !cfg->uptane.enabled)
		r = otter_error_set(err, OTTER_E_CONFIG,
				    "%s: [secondary.%s] without [uptane]: secondaries are updated "
				    "through a Director",
				    path, cfg->uptane.secondaries[0].name);
	for (size_t i = 0; r == 0 && i < cfg->uptane.n_secondaries; i++)
		for (size_t j = 0; r == 0 && j <= i; j++) {
			const char *other = j < i ? cfg->uptane.secondaries[j].serial
						  : cfg->uptane.ecu_serial;
			if (other && strcmp(cfg->uptane.secondaries[i].serial, other) == 0)
				r = otter_error_set(err, OTTER_E_CONFIG,
						    "%s: [secondary.%s] serial %s: used by another "
						    "ECU of this device",
						    path, cfg->uptane.secondaries[i].name, other);
		}
	if (r == 0 && cfg->uptane.enabled && !cfg->uptane.hardware_id) {
		if (!cfg->hardware_id)
			r = otter_error_set(err, OTTER_E_CONFIG,
					    "%s: [uptane] hardware-id: not set (nor [update] "
					    "hardware-id): the Director matches it against its "
					    "assignments",
					    path);
		else if (!(cfg->uptane.hardware_id = otter_strdup(cfg->hardware_id)))
			r = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	if (r < 0) {
		*sys = otter_system_free(*sys);
		agent_config_clear(cfg);
	}
	return r;
}
