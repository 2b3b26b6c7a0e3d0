/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_AGENT_UPTANE_H
#define OTTER_LIB_AGENT_UPTANE_H

/*
 * The device side of Uptane (docs/agent.md "Uptane", docs/director-protocol.md): with an
 * [uptane] section the Director decides what this device installs, the image repository
 * vouches for it, and the device installs only what both agree on, then reports.
 */

#include <stdbool.h>
#include <stdint.h>

#include <otter/crypto.h>
#include <otter/error.h>
#include <otter/net.h>
#include <otter/release.h>
#include <otter/tuf.h>

#define UPTANE_STATE_FILE "uptane.json"
#define UPTANE_STATE_MAX  (16 * 1024)
#define UPTANE_ID_MAX     65  /* identifiers: 1 to 64 of [A-Za-z0-9._:-], NUL included */
#define UPTANE_PATH_MAX   512
#define UPTANE_TEXT_MAX   512

#define UPTANE_MAX_SECONDARIES 8

/* [secondary.NAME]: an ECU the primary updates through an install handler. */
typedef struct uptane_secondary_config {
	char *name;
	char *serial;
	char *hardware_id;
	char *install;         /* command (/bin/sh -c) that gets the verified image on stdin */
	char *key;             /* its ECU key; default <data-directory>/uptane/<name>-key.pem */
} uptane_secondary_config;

/* [uptane] in system.conf. */
typedef struct uptane_config {
	bool enabled;          /* the section is present */
	char *director;        /* base URL: <director>/director/v1/... */
	char *director_root;   /* the Director's root.json the device was provisioned with */
	char *device_id;
	char *ecu_serial;      /* the primary ECU's serial */
	char *hardware_id;     /* the primary ECU's hardware id; default [update] hardware-id */
	char *key;             /* the ECU's private key (PEM); default <data-directory>/uptane/ecu-key.pem */
	char *token_file;      /* the provisioning token (first registration only) */
	char *metadata_dir;    /* trusted Director metadata; default <data-directory>/director */
	uptane_secondary_config secondaries[UPTANE_MAX_SECONDARIES];
	size_t n_secondaries;
} uptane_config;

void uptane_config_clear(uptane_config *c);

/* An image as a manifest reports it. */
typedef struct uptane_image {
	char path[UPTANE_PATH_MAX]; /* "" for the factory image */
	uint64_t length;
	char sha256[65];
	char sha512[129];
} uptane_image;

/* What the primary knows of a secondary. */
typedef struct uptane_ecu_state {
	char serial[UPTANE_ID_MAX];
	uptane_image installed;              /* "" path: its factory image */
	uptane_image target;                 /* its current assignment */
	char correlation_id[UPTANE_ID_MAX];
	int result;                          /* 0 not known yet, 1 success, 2 failure */
	char code[UPTANE_ID_MAX];
	char description[UPTANE_TEXT_MAX];
} uptane_ecu_state;

/* <data-directory>/uptane.json, replaced atomically. */
typedef struct uptane_state {
	bool registered;
	uint64_t counter;                       /* the last report counter signed */
	char correlation_id[UPTANE_ID_MAX];     /* of the current assignment ("" none) */
	uptane_image target;                    /* the assigned release document */
	char version[65];                       /* its release version */
	int result;                             /* 0 not known yet, 1 success, 2 failure */
	char code[UPTANE_ID_MAX];
	char description[UPTANE_TEXT_MAX];
	uptane_image installed;                 /* the image confirmed last */
	char attacks[UPTANE_TEXT_MAX];          /* attacks detected in the last cycle */
	uptane_ecu_state secondaries[UPTANE_MAX_SECONDARIES];
	size_t n_secondaries;
} uptane_state;

struct json_t;
struct json_t *uptane_state_to_json(const uptane_state *st);
int uptane_state_parse(const uint8_t *data, size_t len, uptane_state *st, otter_error *err);
int uptane_state_load(const char *data_dir, uptane_state *st, otter_error *err);
int uptane_state_save(const char *data_dir, const uptane_state *st, otter_error *err);

typedef struct uptane uptane;
struct otter_agent;

/* Loads the ECU key (generating it on first start, mode 0600) and the state. */
int uptane_new(struct otter_agent *a, uptane **out, otter_error *err);
uptane *uptane_free(uptane *u);

/* The key id and public key (hex) of the ECU key in cfg->key, if it exists yet. */
int uptane_key_info(const char *key_path, char keyid[OTTER_KEYID_HEX_LEN + 1], char **pub,
		    otter_error *err);

/*
 * Full verification (Uptane Standard 5.4.4.2): registers if needed, refreshes the Director
 * repository, then the image repository (*image gets the updater), and checks the Director's
 * targets against it. *rel gets the release to install (NULL: nothing assigned, or the
 * assignment is installed already or failed before); path and version name it.
 */
int uptane_select(struct otter_agent *a, otter_tuf_updater **image, const char *installed,
		  char *version, size_t version_size, char *path, size_t path_size,
		  otter_release **rel, otter_error *err);

/* After every cycle (r: its result, e: its error): records the install result of the current
 * assignment and sends a signed manifest. Failures are logged, never fatal. */
void uptane_report(struct otter_agent *a, int r, const otter_error *e);

/* The [uptane] part of `otter status --json` (caller json_decref()s), or NULL. */
struct json_t *uptane_status_json(const uptane_config *cfg, const char *data_dir);

/* ---- signed HTTP (uptane-http.c) ---- */

typedef struct uptane_http {
	const otter_key *key;
	const char *keyid;
	const otter_net_options *net;
	int64_t (*now)(void *userdata);
	void *now_userdata;
} uptane_http;

/*
 * One request to the Director, signed with the ECU key (Otter-Signature). The answer's body
 * (at most max_len bytes) goes to sink when the status is 2xx, else into *errbody (a short
 * message, NUL-terminated, may be NULL). *status gets the HTTP status.
 */
int uptane_http_request(const uptane_http *h, const char *method, const char *url,
			const uint8_t *body, size_t body_len, uint64_t max_len, otter_net_sink sink,
			void *sink_userdata, long *status, char *errbody, size_t errbody_size,
			otter_error *err);

/* An otter_tuf_fetch_fn: signed GETs (userdata: a uptane_http). */
int uptane_http_fetch(void *userdata, const char *url, uint64_t max_len, otter_net_sink sink,
		      void *sink_userdata, otter_error *err);

/* The signed string of a request (exposed for the unit tests). Caller frees. */
char *uptane_signing_string(const char *method, const char *path, int64_t t,
			    const uint8_t *body, size_t body_len);

#endif
