/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device side of Uptane (docs/agent.md "Uptane"): registration with otter-director, full
 * verification in the Standard's order (the Director repository, then the image repository,
 * then their agreement on every Director target), and signed version manifests with a report
 * counter that only goes up, also across power cuts.
 *
 *   cycle:  register once -> Director: root chain, timestamp, snapshot, targets (no
 *           delegations, our device id, our ECU and hardware id) -> image repository (TUF)
 *           -> same path there, same length, same hashes -> release from the image
 *           repository's signed custom -> the agent's A/B install
 *   after:  install result of the assignment (correlation id) -> counter+1 persisted ->
 *           manifest signed and sent
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <otter/json.h>

#include "agent-private.h"
#include "lib/json/json-util.h"
#include "lib/limits.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

#define DIRECTOR_PREFIX  "/director/v1/"
#define KEY_MAX          (16 * 1024)
#define TOKEN_MAX        1024
#define ANSWER_MAX       (64 * 1024)
#define MANIFEST_MAX     (256 * 1024)
#define MAX_DIRECTOR_TARGETS 64
/* A download that failed this many cycles in a row is reported as failed. */
#define DOWNLOAD_FAILURES_REPORTED 3

DEFINE_CLEANUP_FUNC(otter_key, otter_key_free)
DEFINE_CLEANUP_FUNC(otter_tuf_target, otter_tuf_target_free)

struct uptane {
	otter_key *key;
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	/* The secondaries' keys (config order); the primary signs their reports with them. */
	otter_key *skey[UPTANE_MAX_SECONDARIES];
	char skeyid[UPTANE_MAX_SECONDARIES][OTTER_KEYID_HEX_LEN + 1];
	uptane_state st;
	otter_net_options net;
	uptane_http http;
	/* This cycle: an attack detected (reported in the next manifest). */
	char attack[UPTANE_TEXT_MAX];
	/* uptane.json could not be read: the Director client stops (why), the agent's boot
	 * checks go on. */
	char broken[512];
};

/* ---- uptane.json ---- */

static int copy_str(const json_t *o, const char *key, char *out, size_t size, otter_error *err)
{
	const char *s;
	int r = json_get_string(o, key, false, UPTANE_STATE_FILE, &s, err);

	out[0] = '\0';
	if (r < 0 || !s)
		return r;
	if (strlen(s) >= size)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"%s\" is longer than %zu bytes",
				       UPTANE_STATE_FILE, key, size - 1);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20)
			return otter_error_set(err, OTTER_E_FORMAT, "%s: \"%s\" has control bytes",
					       UPTANE_STATE_FILE, key);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int image_from_json(const json_t *o, const char *key, uptane_image *img,
			   otter_error *err)
{
	json_t *m = NULL;
	int64_t len = 0;
	int r = json_get_member(o, key, JSON_OBJECT, false, UPTANE_STATE_FILE, &m, err);

	memset(img, 0, sizeof(*img));
	if (r < 0 || !m)
		return r;
	if ((r = copy_str(m, "path", img->path, sizeof(img->path), err)) < 0 ||
	    (r = json_get_int(m, "length", true, UPTANE_STATE_FILE, 0, INT64_MAX, &len, err)) < 0 ||
	    (r = copy_str(m, "sha256", img->sha256, sizeof(img->sha256), err)) < 0 ||
	    (r = copy_str(m, "sha512", img->sha512, sizeof(img->sha512), err)) < 0)
		return r;
	if ((img->sha256[0] && !is_lower_hex(img->sha256, 64)) ||
	    (img->sha512[0] && !is_lower_hex(img->sha512, 128)))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: %s: a hash is not lower-case hex",
				       UPTANE_STATE_FILE, key);
	img->length = (uint64_t)len;
	return 0;
}

static int secondaries_from_json(const json_t *o, uptane_state *st, otter_error *err)
{
	json_t *arr = NULL, *e;
	size_t i;
	int r = json_get_member(o, "secondaries", JSON_ARRAY, false, UPTANE_STATE_FILE, &arr, err);

	if (r < 0 || !arr)
		return r;
	if (json_array_size(arr) > UPTANE_MAX_SECONDARIES)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: more than %d secondaries",
				       UPTANE_STATE_FILE, UPTANE_MAX_SECONDARIES);
	json_array_foreach(arr, i, e) {
		uptane_ecu_state *s = &st->secondaries[i];
		int64_t res = 0;

		if (!json_is_object(e))
			return otter_error_set(err, OTTER_E_FORMAT, "%s: secondaries[%zu]: not an "
								   "object",
					       UPTANE_STATE_FILE, i);
		if ((r = copy_str(e, "serial", s->serial, sizeof(s->serial), err)) < 0 ||
		    (r = copy_str(e, "correlation-id", s->correlation_id,
				  sizeof(s->correlation_id), err)) < 0 ||
		    (r = copy_str(e, "code", s->code, sizeof(s->code), err)) < 0 ||
		    (r = copy_str(e, "description", s->description, sizeof(s->description),
				  err)) < 0 ||
		    (r = json_get_int(e, "result", false, UPTANE_STATE_FILE, 0, 2, &res, err)) < 0 ||
		    (r = image_from_json(e, "installed", &s->installed, err)) < 0 ||
		    (r = image_from_json(e, "target", &s->target, err)) < 0)
			return r;
		if (!s->serial[0])
			return otter_error_set(err, OTTER_E_FORMAT, "%s: secondaries[%zu]: no serial",
					       UPTANE_STATE_FILE, i);
		s->result = (int)res;
		st->n_secondaries = i + 1;
	}
	return 0;
}

int uptane_state_parse(const uint8_t *data, size_t len, uptane_state *st, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *o = NULL;
	int64_t counter = 0, result = 0;
	bool registered = false;
	int r;

	memset(st, 0, sizeof(*st));
	r = otter_json_parse(&o, data, len, UPTANE_STATE_MAX, err);
	if (r < 0)
		return otter_error_prefix(err, r, "%s", UPTANE_STATE_FILE);
	if ((r = json_get_bool(o, "registered", false, UPTANE_STATE_FILE, &registered, err)) < 0 ||
	    (r = json_get_int(o, "report-counter", true, UPTANE_STATE_FILE, 0, INT64_MAX / 2,
			      &counter, err)) < 0 ||
	    (r = json_get_int(o, "result", false, UPTANE_STATE_FILE, 0, 2, &result, err)) < 0 ||
	    (r = copy_str(o, "correlation-id", st->correlation_id, sizeof(st->correlation_id),
			  err)) < 0 ||
	    (r = copy_str(o, "version", st->version, sizeof(st->version), err)) < 0 ||
	    (r = copy_str(o, "code", st->code, sizeof(st->code), err)) < 0 ||
	    (r = copy_str(o, "description", st->description, sizeof(st->description), err)) < 0 ||
	    (r = copy_str(o, "attacks", st->attacks, sizeof(st->attacks), err)) < 0 ||
	    (r = image_from_json(o, "target", &st->target, err)) < 0 ||
	    (r = image_from_json(o, "installed", &st->installed, err)) < 0)
		return r;
	st->registered = registered;
	st->counter = (uint64_t)counter;
	st->result = (int)result;
	return secondaries_from_json(o, st, err);
}

static json_t *image_json(const uptane_image *img)
{
	json_t *o = json_object();

	json_object_set_new(o, "path", json_string(img->path));
	json_object_set_new(o, "length", json_integer((json_int_t)img->length));
	if (img->sha256[0])
		json_object_set_new(o, "sha256", json_string(img->sha256));
	if (img->sha512[0])
		json_object_set_new(o, "sha512", json_string(img->sha512));
	return o;
}

json_t *uptane_state_to_json(const uptane_state *st)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "registered", json_boolean(st->registered));
	json_object_set_new(o, "report-counter", json_integer((json_int_t)st->counter));
	json_object_set_new(o, "result", json_integer(st->result));
	json_object_set_new(o, "correlation-id", json_string(st->correlation_id));
	json_object_set_new(o, "version", json_string(st->version));
	json_object_set_new(o, "code", json_string(st->code));
	json_object_set_new(o, "description", json_string(st->description));
	json_object_set_new(o, "attacks", json_string(st->attacks));
	if (st->target.path[0])
		json_object_set_new(o, "target", image_json(&st->target));
	json_object_set_new(o, "installed", image_json(&st->installed));
	if (st->n_secondaries) {
		json_t *arr = json_array();

		for (size_t i = 0; i < st->n_secondaries; i++) {
			const uptane_ecu_state *e = &st->secondaries[i];
			json_t *x = json_pack("{s:s, s:s, s:s, s:s, s:i, s:o}", "serial", e->serial,
					      "correlation-id", e->correlation_id, "code", e->code,
					      "description", e->description, "result", e->result,
					      "installed", image_json(&e->installed));
			if (x && e->target.path[0])
				json_object_set_new(x, "target", image_json(&e->target));
			json_array_append_new(arr, x);
		}
		json_object_set_new(o, "secondaries", arr);
	}
	return o;
}

int uptane_state_load(const char *data_dir, uptane_state *st, otter_error *err)
{
	_cleanup_free_ char *path = path_join(data_dir, UPTANE_STATE_FILE);
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int r;

	memset(st, 0, sizeof(*st));
	if (!path)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = fileio_read(AT_FDCWD, path, UPTANE_STATE_MAX, &data, &len, err);
	if (r == OTTER_E_NOT_FOUND) {
		otter_error_clear(err);
		return 0;
	}
	if (r < 0)
		return r;
	/* Not set aside when damaged: the report counter must never go back, so a damaged
	 * file stops the Director client until someone looks (the A/B updates go on). */
	r = uptane_state_parse(data, len, st, err);
	return r < 0 ? otter_error_prefix(err, r, "%s (the report counter cannot be recovered "
						  "from it: repair or remove it)",
					  path)
		     : 0;
}

int uptane_state_save(const char *data_dir, const uptane_state *st, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *o = uptane_state_to_json(st);
	_cleanup_free_ char *path = path_join(data_dir, UPTANE_STATE_FILE);
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	int r;

	if (!o || !path)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = otter_json_pretty(o, &buf, &len, err);
	if (r == 0)
		r = fileio_mkdir_p(data_dir, 0755, err);
	if (r == 0)
		r = fileio_write_atomic_path(path, buf, len, 0644, err);
	return r < 0 ? otter_error_prefix(err, r, "saving %s", path) : 0;
}

static int save(otter_agent *a, otter_error *err)
{
	return uptane_state_save(otter_system_data_dir(a->sys), &a->uptane->st, err);
}

/* ---- the ECU key ---- */

static int keyid_of(const otter_key *key, char out[OTTER_KEYID_HEX_LEN + 1], otter_error *err)
{
	_cleanup_(json_decrefp) json_t *obj = NULL;
	int r = otter_key_to_tuf(key, &obj, err);

	return r < 0 ? r : otter_keyid_of_tuf(obj, out, err);
}

static int load_key(const char *path, otter_key **out, otter_error *err)
{
	_cleanup_free_ uint8_t *pem = NULL;
	size_t len;
	int r = fileio_read(AT_FDCWD, path, KEY_MAX, &pem, &len, err);

	if (r < 0)
		return r;
	r = otter_key_load_pem(out, pem, len, NULL, err);
	if (r == 0 && !otter_key_has_private(*out)) {
		*out = otter_key_free(*out);
		r = otter_error_set(err, OTTER_E_FORMAT, "%s: a public key, not the ECU's private key",
				    path);
	}
	return r < 0 ? otter_error_prefix(err, r, "ECU key %s", path) : 0;
}

/* The configured key; generated (ed25519, mode 0600) when the file does not exist. */
static int load_or_generate_key(otter_agent *a, const char *path, otter_key **out,
				otter_error *err)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_free_ uint8_t *pem = NULL;
	size_t len;
	char *slash;
	int r;

	if (access(path, F_OK) == 0)
		return load_key(path, out, err);
	r = otter_key_generate(out, OTTER_KEY_ED25519, err);
	if (r == 0)
		r = otter_key_private_pem(*out, NULL, &pem, &len, err);
	if (r < 0)
		return otter_error_prefix(err, r, "generating the ECU key");
	dir = otter_strdup(path);
	if (!dir)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		r = fileio_mkdir_p(dir, 0700, err);
		if (r < 0)
			return r;
	}
	r = fileio_write_atomic_path(path, pem, len, 0600, err);
	OPENSSL_cleanse(pem, len);
	if (r < 0)
		return otter_error_prefix(err, r, "saving the new ECU key");
	agent_log(a, OTTER_LOG_NOTICE, "generated the ECU key %s (ed25519)", path);
	return 0;
}

int uptane_key_info(const char *key_path, char keyid[OTTER_KEYID_HEX_LEN + 1], char **pub,
		    otter_error *err)
{
	_cleanup_(otter_key_freep) otter_key *key = NULL;
	int r = load_key(key_path, &key, err);

	if (r == 0)
		r = keyid_of(key, keyid, err);
	if (r == 0 && pub)
		r = otter_key_public_text(key, pub, err);
	return r;
}

static char *default_path(const otter_agent *a, const char *name)
{
	return path_join(otter_system_data_dir(a->sys), name);
}

uptane *uptane_free(uptane *u)
{
	if (!u)
		return NULL;
	otter_key_free(u->key);
	for (size_t i = 0; i < UPTANE_MAX_SECONDARIES; i++)
		otter_key_free(u->skey[i]);
	free(u);
	return NULL;
}

DEFINE_CLEANUP_FUNC(uptane, uptane_free)

static int64_t http_now(void *userdata)
{
	return agent_now(userdata);
}

static void tick(void *userdata)
{
	agent_watchdog_tick(userdata);
}

int uptane_new(otter_agent *a, uptane **out, otter_error *err)
{
	uptane_config *c = &a->cfg.uptane;
	_cleanup_(uptane_freep) uptane *u = otter_calloc(1, sizeof(*u));
	int r;

	if (!u)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (!c->key && !(c->key = default_path(a, "uptane/ecu-key.pem")))
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (!c->metadata_dir && !(c->metadata_dir = default_path(a, "director")))
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = load_or_generate_key(a, c->key, &u->key, err);
	if (r == 0)
		r = keyid_of(u->key, u->keyid, err);
	for (size_t i = 0; r == 0 && i < c->n_secondaries; i++) {
		uptane_secondary_config *sc = &c->secondaries[i];

		if (!sc->key) {
			_cleanup_free_ char *name = str_concat(sc->name, "-key.pem");
			_cleanup_free_ char *dir = default_path(a, "uptane");

			sc->key = name && dir ? path_join(dir, name) : NULL;
			if (!sc->key)
				return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		}
		r = load_or_generate_key(a, sc->key, &u->skey[i], err);
		if (r == 0)
			r = keyid_of(u->skey[i], u->skeyid[i], err);
	}
	if (r < 0)
		return r;
	{
		otter_error e = OTTER_ERROR_INIT;

		if (uptane_state_load(otter_system_data_dir(a->sys), &u->st, &e) < 0) {
			strfmt(u->broken, sizeof(u->broken), "%s", e.msg);
			agent_log(a, OTTER_LOG_ERR, "%s", e.msg);
		}
	}
	/* The state of each configured secondary, in config order (unknown ones dropped). */
	{
		uptane_ecu_state known[UPTANE_MAX_SECONDARIES];

		memcpy(known, u->st.secondaries, sizeof(known));
		memset(u->st.secondaries, 0, sizeof(u->st.secondaries));
		for (size_t i = 0; i < c->n_secondaries; i++) {
			uptane_ecu_state *dst = &u->st.secondaries[i];

			for (size_t j = 0; j < u->st.n_secondaries; j++)
				if (strcmp(known[j].serial, c->secondaries[i].serial) == 0)
					*dst = known[j];
			strfmt(dst->serial, sizeof(dst->serial), "%s", c->secondaries[i].serial);
		}
		u->st.n_secondaries = c->n_secondaries;
	}
	u->net = (otter_net_options)OTTER_NET_OPTIONS_INIT;
	u->net.connect_timeout_s = (long)a->cfg.connect_timeout;
	u->net.low_speed_time_s = (long)a->cfg.slow_timeout;
	u->net.low_speed_limit = (long)a->cfg.min_speed;
	u->net.tick = tick;
	u->net.tick_userdata = a;
	u->http.key = u->key;
	u->http.keyid = u->keyid;
	u->http.net = &u->net;
	u->http.now = http_now;
	u->http.now_userdata = a;
	*out = TAKE_PTR(u);
	return 0;
}

/* ---- requests ---- */

static char *director_url(const otter_agent *a, const char *rest)
{
	_cleanup_free_ char *base = otter_strdup(a->cfg.uptane.director);
	size_t n = base ? strlen(base) : 0;
	char *tail;

	if (!base)
		return NULL;
	while (n > 0 && base[n - 1] == '/')
		base[--n] = '\0';
	tail = str_concat(DIRECTOR_PREFIX, rest);
	if (!tail)
		return NULL;
	{
		char *s = str_concat(base, tail);
		free(tail);
		return s;
	}
}

/* A POST or PUT of a JSON body; *status gets the answer's status, msg its error text. */
static int send_json(otter_agent *a, const char *method, const char *rest, const json_t *doc,
		     long *status, char *msg, size_t msg_size, otter_error *err)
{
	_cleanup_free_ char *url = director_url(a, rest);
	_cleanup_free_ char *body = json_dumps(doc, JSON_COMPACT);
	char raw[512];
	int r;

	if (!url || !body)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = uptane_http_request(&a->uptane->http, method, url, (const uint8_t *)body, strlen(body),
				ANSWER_MAX, NULL, NULL, status, raw, sizeof(raw), err);
	str_sanitize(raw, msg, msg_size);
	return r;
}

static int read_token(otter_agent *a, char *out, size_t size, otter_error *err)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int r;

	out[0] = '\0';
	if (!a->cfg.uptane.token_file)
		return 0;
	r = fileio_read(AT_FDCWD, a->cfg.uptane.token_file, TOKEN_MAX, &data, &len, err);
	if (r == OTTER_E_NOT_FOUND) {
		otter_error_clear(err);
		return 0;
	}
	if (r < 0)
		return otter_error_prefix(err, r, "provisioning token");
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' '))
		data[--len] = '\0';
	if (len == 0 || len >= size)
		return otter_error_set(err, OTTER_E_CONFIG, "provisioning token %s: empty or longer "
							   "than %zu bytes",
				       a->cfg.uptane.token_file, size - 1);
	for (size_t i = 0; i < len; i++)
		if (data[i] < 0x21 || data[i] > 0x7e)
			return otter_error_set(err, OTTER_E_CONFIG,
					       "provisioning token %s: not printable ASCII",
					       a->cfg.uptane.token_file);
	memcpy(out, data, len + 1);
	return 0;
}

/* Registration (director-protocol.md "Registration"), once: 201 and 200 both mean done. */
static int ensure_registered(otter_agent *a, otter_error *err)
{
	uptane *u = a->uptane;
	uptane_config *c = &a->cfg.uptane;
	_cleanup_(json_decrefp) json_t *body = NULL;
	_cleanup_free_ uint8_t *pem = NULL;
	char token[TOKEN_MAX], msg[300];
	size_t len;
	long status;
	int r;

	if (u->st.registered)
		return 0;
	r = read_token(a, token, sizeof(token), err);
	if (r == 0)
		r = otter_key_public_pem(u->key, &pem, &len, err);
	if (r < 0)
		return r;
	body = json_pack("{s:s, s:[{s:s, s:s, s:s, s:s, s:b}]}", "device_id", c->device_id, "ecus",
			 "serial", c->ecu_serial, "hardware_id", c->hardware_id, "key_type",
			 otter_key_type_name(otter_key_get_type(u->key)), "public_key",
			 (const char *)pem, "primary", 1);
	if (!body)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	for (size_t i = 0; i < c->n_secondaries; i++) {
		_cleanup_free_ uint8_t *spem = NULL;
		size_t slen;

		r = otter_key_public_pem(u->skey[i], &spem, &slen, err);
		if (r < 0)
			return r;
		json_array_append_new(json_object_get(body, "ecus"),
				      json_pack("{s:s, s:s, s:s, s:s, s:b}", "serial",
						c->secondaries[i].serial, "hardware_id",
						c->secondaries[i].hardware_id, "key_type",
						otter_key_type_name(otter_key_get_type(u->skey[i])),
						"public_key", (const char *)spem, "primary", 0));
	}
	if (token[0])
		json_object_set_new(body, "token", json_string(token));
	r = send_json(a, "POST", "register", body, &status, msg, sizeof(msg), err);
	if (r < 0)
		return otter_error_prefix(err, r, "registering with the director");
	if (status != 200 && status != 201)
		return otter_error_set(err, status == 401 || status == 403 ? OTTER_E_CONFIG
									   : OTTER_E_NETWORK,
				       "registering device %s with the director %s: HTTP %ld: %s%s",
				       c->device_id, c->director, status, msg,
				       status == 401 ? " (token-file needs a provisioning token from "
						       "'otter-director token create')"
						     : "");
	agent_log(a, OTTER_LOG_NOTICE, "registered device %s (ECU %s, key %s) with the director",
		  c->device_id, c->ecu_serial, u->keyid);
	u->st.registered = true;
	return save(a, err);
}

/* ---- full verification ---- */

static void note_attack(otter_agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_attack(otter_agent *a, const char *fmt, ...)
{
	char *s = a->uptane->attack;
	size_t n = strlen(s);
	va_list ap;

	if (n + 3 >= UPTANE_TEXT_MAX)
		return;
	if (n) {
		strcpy(s + n, "; ");
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(s + n, UPTANE_TEXT_MAX - n, fmt, ap);
	va_end(ap);
	/* Free text in the manifest: no control bytes. */
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

static void tuf_log(void *userdata, int level, const char *msg)
{
	agent_log(userdata, (otter_log_level)level, "director: %s", msg);
}

/* Root chain, timestamp, snapshot and targets of this device's Director repository. */
static int director_refresh(otter_agent *a, otter_tuf_updater **out, otter_error *err)
{
	uptane_config *c = &a->cfg.uptane;
	_cleanup_free_ char *root = path_join(c->metadata_dir, "root.json");
	_cleanup_free_ char *murl = director_url(a, "metadata/");
	otter_tuf_options o;
	otter_tuf_updater *u = NULL;
	int r;

	if (!root || !murl)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (access(root, F_OK) != 0) {
		_cleanup_free_ uint8_t *data = NULL;
		size_t len;

		r = fileio_read(AT_FDCWD, c->director_root, OTTER_TUF_ROOT_MAX_LENGTH, &data, &len,
				err);
		if (r == 0)
			r = otter_tuf_install_root(c->metadata_dir, data, len, err);
		if (r < 0)
			return otter_error_prefix(err, r, "[uptane] director-root (provision the "
							  "device with the director's root)");
	}
	otter_tuf_options_init(&o);
	o.metadata_dir = c->metadata_dir;
	o.metadata_url = murl;
	o.fetch = uptane_http_fetch;
	o.fetch_userdata = &a->uptane->http;
	o.clock = http_now;
	o.clock_userdata = a;
	o.log = tuf_log;
	o.log_userdata = a;
	/* The Director's files are small (director-protocol.md caps). */
	o.timestamp_max_length = 16384;
	o.snapshot_max_length = 64 * 1024;
	o.targets_max_length = 1024 * 1024;
	r = otter_tuf_updater_new(&u, &o, err);
	if (r == 0)
		r = otter_tuf_refresh(u, err);
	if (r < 0) {
		otter_tuf_updater_free(u);
		return otter_error_prefix(err, r, "director %s", c->director);
	}
	*out = u;
	return 0;
}

/* The Director's target of each of this device's ECUs: [0] the primary, [1 + i] secondary i. */
#define N_ECUS (1 + UPTANE_MAX_SECONDARIES)
struct collect {
	otter_agent *a;
	char path[N_ECUS][UPTANE_PATH_MAX];           /* "" none */
	char correlation_id[N_ECUS][UPTANE_ID_MAX];
};

/* The index of an ECU of this device (see struct collect), or -1. */
static int ecu_index(const otter_agent *a, const char *serial, const char **hw)
{
	const uptane_config *c = &a->cfg.uptane;

	if (strcmp(serial, c->ecu_serial) == 0) {
		*hw = c->hardware_id;
		return 0;
	}
	for (size_t i = 0; i < c->n_secondaries; i++)
		if (strcmp(serial, c->secondaries[i].serial) == 0) {
			*hw = c->secondaries[i].hardware_id;
			return (int)i + 1;
		}
	return -1;
}

static int collect_target(void *userdata, const otter_tuf_target *t, otter_error *err)
{
	struct collect *c = userdata;
	otter_agent *a = c->a;
	const json_t *custom = otter_tuf_target_custom(t);
	json_t *ecus = custom ? json_object_get(custom, "ecuIdentifiers") : NULL;
	json_t *corr = custom ? json_object_get(custom, "correlationId") : NULL;
	const char *serial, *our_hw;
	json_t *v;
	char safe[80], path[120];

	str_sanitize(otter_tuf_target_path(t), path, sizeof(path));
	if (!json_is_object(ecus) || json_object_size(ecus) == 0)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "director target %s names no ECU (custom.ecuIdentifiers)",
				       path);
	if (strlen(otter_tuf_target_path(t)) >= UPTANE_PATH_MAX)
		return otter_error_set(err, OTTER_E_FORMAT, "director target path %s... is longer "
							   "than %d bytes",
				       path, UPTANE_PATH_MAX - 1);
	json_object_foreach(ecus, serial, v) {
		json_t *hw = json_is_object(v) ? json_object_get(v, "hardwareId") : NULL;
		int k = ecu_index(a, serial, &our_hw);

		str_sanitize(serial, safe, sizeof(safe));
		if (k < 0) {
			note_attack(a, "director target %s for unknown ECU %s", path, safe);
			return otter_error_set(err, OTTER_E_FORMAT,
					       "director target %s is for ECU '%s', which is not one "
					       "of this device's ECUs (%s): refusing the director's "
					       "targets",
					       path, safe, a->cfg.uptane.ecu_serial);
		}
		if (!json_is_string(hw) || strcmp(json_string_value(hw), our_hw) != 0) {
			note_attack(a, "director target %s for other hardware", path);
			return otter_error_set(err, OTTER_E_FORMAT,
					       "director target %s is for hardware id other than "
					       "ECU %s's (%s): refusing it",
					       path, safe, our_hw);
		}
		if (c->path[k][0])
			return otter_error_set(err, OTTER_E_FORMAT,
					       "director targets list ECU %s in two targets (%s and "
					       "%s)",
					       safe, c->path[k], path);
		strfmt(c->path[k], UPTANE_PATH_MAX, "%s", otter_tuf_target_path(t));
		if (json_is_string(corr) && strlen(json_string_value(corr)) < UPTANE_ID_MAX)
			str_sanitize(json_string_value(corr), c->correlation_id[k], UPTANE_ID_MAX);
	}
	return 0;
}

/* The trusted Director targets (verified by the refresh): this device's, no delegations. */
static int check_director_targets(otter_agent *a, otter_error *err)
{
	_cleanup_free_ char *path = path_join(a->cfg.uptane.metadata_dir, "targets.json");
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_(json_decrefp) json_t *doc = NULL;
	json_t *signed_, *custom, *id;
	char safe[80];
	size_t len;
	int r;

	if (!path)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = fileio_read(AT_FDCWD, path, 1024 * 1024, &data, &len, err);
	if (r == 0)
		r = otter_json_parse(&doc, data, len, 1024 * 1024, err);
	if (r < 0)
		return otter_error_prefix(err, r, "trusted director targets");
	signed_ = json_object_get(doc, "signed");
	custom = json_is_object(signed_) ? json_object_get(signed_, "custom") : NULL;
	id = json_is_object(custom) ? json_object_get(custom, "device_id") : NULL;
	if (json_is_object(signed_) && json_object_get(signed_, "delegations")) {
		note_attack(a, "director targets with delegations");
		return otter_error_set(err, OTTER_E_FORMAT,
				       "director targets delegate: the Director repository has no "
				       "delegations (refusing them)");
	}
	if (!json_is_string(id) || strcmp(json_string_value(id), a->cfg.uptane.device_id) != 0) {
		str_sanitize(json_is_string(id) ? json_string_value(id) : "(none)", safe,
			     sizeof(safe));
		note_attack(a, "director targets of another device (%s)", safe);
		return otter_error_set(err, OTTER_E_FORMAT,
				       "director targets are for device '%s', not this device (%s): "
				       "refusing them (another device's metadata?)",
				       safe, a->cfg.uptane.device_id);
	}
	return 0;
}

static void image_from_target(const otter_tuf_target *t, uptane_image *img)
{
	const char *h;

	memset(img, 0, sizeof(*img));
	strfmt(img->path, sizeof(img->path), "%s", otter_tuf_target_path(t));
	img->length = otter_tuf_target_length(t);
	h = otter_tuf_target_hash(t, "sha256");
	if (h && strlen(h) == 64 && is_lower_hex(h, 64))
		strfmt(img->sha256, sizeof(img->sha256), "%s", h);
	h = otter_tuf_target_hash(t, "sha512");
	if (h && strlen(h) == 128 && is_lower_hex(h, 128))
		strfmt(img->sha512, sizeof(img->sha512), "%s", h);
}

/* The current assignment failed for a reason the device found (reported, not retried). */
static void assignment_failed(otter_agent *a, const char *code, const char *why)
{
	uptane_state *st = &a->uptane->st;

	st->result = 2;
	strfmt(st->code, sizeof(st->code), "%s", code);
	str_sanitize(why, st->description, sizeof(st->description));
}

/* Errors that mean tampered, stale or replayed metadata, not an unreachable server. */
static bool is_attack(int code)
{
	return code == OTTER_E_SIGNATURE || code == OTTER_E_EXPIRED || code == OTTER_E_ROLLBACK ||
	       code == OTTER_E_HASH || code == OTTER_E_VERSION || code == OTTER_E_TOO_LARGE;
}

/* Director and image repository agree on a target: same path, length and hashes. */
static int check_agreement(otter_agent *a, const otter_tuf_target *d, const otter_tuf_target *i,
			   otter_error *err)
{
	char path[120];

	str_sanitize(otter_tuf_target_path(d), path, sizeof(path));
	if (otter_tuf_target_length(d) != otter_tuf_target_length(i) ||
	    !json_equal((json_t *)otter_tuf_target_hashes(d), (json_t *)otter_tuf_target_hashes(i))) {
		note_attack(a, "director and image repository disagree on %s", path);
		return otter_error_set(err, OTTER_E_HASH,
				       "%s: the director's length or hashes differ from the image "
				       "repository's (%" PRIu64 " and %" PRIu64 " bytes): refusing it",
				       path, otter_tuf_target_length(d), otter_tuf_target_length(i));
	}
	return 0;
}

static int select_assigned(otter_agent *a, otter_tuf_updater *d, otter_tuf_updater *img,
			   const struct collect *c, const char *installed, char *version,
			   size_t version_size, char *path, size_t path_size, otter_release **rel,
			   otter_error *err)
{
	uptane_state *st = &a->uptane->st;
	_cleanup_(otter_tuf_target_freep) otter_tuf_target *dt = NULL;
	_cleanup_(otter_tuf_target_freep) otter_tuf_target *it = NULL;
	otter_release *r_ = NULL;
	const json_t *custom;
	json_t *doc;
	char safe[120];
	const char *hw = a->cfg.hardware_id ? a->cfg.hardware_id : a->cfg.uptane.hardware_id;
	int r;

	str_sanitize(c->path[0], safe, sizeof(safe));
	r = otter_tuf_find_target(d, c->path[0], &dt, err);
	if (r < 0)
		return r;
	if (strcmp(st->target.path, c->path[0]) != 0 ||
	    strcmp(st->correlation_id, c->correlation_id[0]) != 0) {
		/* A new assignment: its result is not known yet. */
		image_from_target(dt, &st->target);
		strfmt(st->correlation_id, sizeof(st->correlation_id), "%s", c->correlation_id[0]);
		st->version[0] = st->code[0] = st->description[0] = '\0';
		st->result = 0;
		agent_log(a, OTTER_LOG_NOTICE, "the director assigns %s (correlation id %s)", safe,
			  c->correlation_id[0][0] ? c->correlation_id[0] : "none");
	}
	r = otter_tuf_find_target(img, c->path[0], &it, err);
	if (r == OTTER_E_NOT_FOUND) {
		note_attack(a, "director target %s is not signed by the image repository", safe);
		otter_error_clear(err);
		return otter_error_set(err, OTTER_E_NOT_FOUND,
				       "director target %s: the image repository does not sign it: "
				       "refusing it",
				       safe);
	}
	if (r == 0)
		r = check_agreement(a, dt, it, err);
	if (r < 0)
		return r;
	custom = otter_tuf_target_custom(it);
	doc = custom ? json_object_get(custom, "otter") : NULL;
	if (!doc)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: not a release (no custom.otter in the image repository)",
				       safe);
	r = otter_release_from_json(&r_, doc, c->path[0], err);
	if (r < 0)
		return r;
	if (!otter_release_matches(r_, otter_system_compatible(a->sys), hw)) {
		note_attack(a, "director assigns %s, a release for other devices", safe);
		r = otter_error_set(err, OTTER_E_FORMAT,
				    "director target %s: the image repository signs it for other "
				    "devices (compatible %s, hardware id %s): refusing it",
				    safe, otter_system_compatible(a->sys), hw ? hw : "(none)");
		goto out;
	}
	strfmt(st->version, sizeof(st->version), "%s", r_->version);
	if (installed[0] && otter_version_compare(r_->version, installed) == 0) {
		/* Installed already (by an earlier assignment, or at the factory). */
		if (st->result == 0) {
			st->result = 1;
			st->installed = st->target;
		}
		goto out;
	}
	if (installed[0] && otter_version_compare(r_->version, installed) < 0) {
		note_attack(a, "director assigns %s, older than the installed %s", r_->version,
			    installed);
		r = otter_error_set(err, OTTER_E_ROLLBACK,
				    "director target %s is release %s, older than the installed "
				    "%s: refusing the downgrade",
				    safe, r_->version, installed);
		goto out;
	}
	if (agent_state_failed(&a->st, r_->version))
		goto out; /* failed before, reported; never retried */
	strfmt(version, version_size, "%s", r_->version);
	strfmt(path, path_size, "%s", c->path[0]);
	*rel = TAKE_PTR(r_);
out:
	otter_release_free(r_);
	return r;
}

/* Secondary k (config index): the Director's target, checked against the image repository.
 * *out gets the image repository's target, NULL when nothing is to be installed. */
static int verify_secondary(otter_agent *a, otter_tuf_updater *d, otter_tuf_updater *img,
			    const struct collect *c, size_t k, otter_tuf_target **out,
			    otter_error *err)
{
	uptane_ecu_state *es = &a->uptane->st.secondaries[k];
	_cleanup_(otter_tuf_target_freep) otter_tuf_target *dt = NULL;
	_cleanup_(otter_tuf_target_freep) otter_tuf_target *it = NULL;
	const char *path = c->path[k + 1], *corr = c->correlation_id[k + 1];
	char safe[120];
	int r;

	*out = NULL;
	str_sanitize(path, safe, sizeof(safe));
	r = otter_tuf_find_target(d, path, &dt, err);
	if (r < 0)
		return r;
	if (strcmp(es->target.path, path) != 0 || strcmp(es->correlation_id, corr) != 0) {
		image_from_target(dt, &es->target);
		strfmt(es->correlation_id, sizeof(es->correlation_id), "%s", corr);
		es->result = 0;
		es->code[0] = es->description[0] = '\0';
		agent_log(a, OTTER_LOG_NOTICE, "the director assigns %s to secondary %s (correlation "
					  "id %s)",
			  safe, es->serial, corr[0] ? corr : "none");
	}
	r = otter_tuf_find_target(img, path, &it, err);
	if (r == OTTER_E_NOT_FOUND) {
		note_attack(a, "director target %s is not signed by the image repository", safe);
		otter_error_clear(err);
		r = otter_error_set(err, OTTER_E_NOT_FOUND,
				    "director target %s for secondary %s: the image repository does "
				    "not sign it: refusing it",
				    safe, es->serial);
	}
	if (r == 0)
		r = check_agreement(a, dt, it, err);
	if (r < 0) {
		es->result = 2;
		strfmt(es->code, sizeof(es->code), "VERIFICATION");
		str_sanitize(err ? err->msg : "", es->description, sizeof(es->description));
		return r;
	}
	if (strcmp(es->installed.path, path) == 0 && es->installed.length == es->target.length &&
	    strcmp(es->installed.sha256, es->target.sha256) == 0) {
		if (es->result == 0)
			es->result = 1;
		return 0; /* installed already */
	}
	if (es->result == 2)
		return 0; /* failed before: reported, not retried */
	*out = TAKE_PTR(it);
	return 0;
}

/* Installs t on secondary k: the verified image on the install handler's stdin. */
static int install_secondary(otter_agent *a, otter_tuf_updater *img, size_t k,
			     const otter_tuf_target *t, otter_error *err)
{
	const uptane_secondary_config *sc = &a->cfg.uptane.secondaries[k];
	uptane_ecu_state *es = &a->uptane->st.secondaries[k];
	_cleanup_free_ char *dir = path_join(otter_system_data_dir(a->sys), "uptane/downloads");
	_cleanup_free_ char *local = NULL;
	int fd, status = 0, r;

	if (!dir)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = fileio_mkdir_p(dir, 0700, err);
	/* Length and every hash checked before the file is there. */
	if (r == 0)
		r = otter_tuf_download_target(img, t, dir, &local, err);
	if (r < 0)
		return otter_error_prefix(err, r, "secondary %s", sc->serial);
	fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = otter_error_set_errno(err, errno, "secondary %s: opening %s", sc->serial, local);
		unlink(local);
		return r;
	}
	r = agent_run_command_stdin(a, "secondary install", sc->install,
				    a->cfg.confirm_deadline, fd, &status, err);
	close(fd);
	unlink(local);
	if (r < 0)
		return r;
	if (status != 0) {
		es->result = 2;
		strfmt(es->code, sizeof(es->code), "INSTALL");
		strfmt(es->description, sizeof(es->description),
		       "install handler of secondary %s failed (exit status %d)", sc->serial, status);
		agent_log(a, OTTER_LOG_ERR, "%s", es->description);
		return 0;
	}
	es->installed = es->target;
	es->result = 1;
	es->code[0] = es->description[0] = '\0';
	agent_log(a, OTTER_LOG_NOTICE, "secondary %s: %s installed", sc->serial, es->target.path);
	return 0;
}

int uptane_select(otter_agent *a, otter_tuf_updater **image, const char *installed,
		  char *version, size_t version_size, char *path, size_t path_size,
		  otter_release **rel, otter_error *err)
{
	uptane *u = a->uptane;
	size_t n_sec = a->cfg.uptane.n_secondaries;
	otter_tuf_updater *d = NULL;
	otter_tuf_target *sec[UPTANE_MAX_SECONDARIES] = {NULL};
	struct collect c = {.a = a};
	otter_error e = OTTER_ERROR_INIT;
	int r;

	*rel = NULL;
	*image = NULL;
	version[0] = path[0] = '\0';
	u->attack[0] = '\0';
	if (u->broken[0])
		return otter_error_set(err, OTTER_E_FORMAT, "%s", u->broken);
	r = ensure_registered(a, &e);
	/* 1. The Director repository, in full: root chain, timestamp, snapshot, targets. */
	if (r == 0)
		r = director_refresh(a, &d, &e);
	if (r == 0)
		r = check_director_targets(a, &e);
	if (r == 0)
		r = otter_tuf_foreach_target(d, "", collect_target, &c, &e);
	/* 2. The image repository (TUF, the agent's mirrors). */
	if (r == 0)
		r = agent_updater(a, image, &e);
	/* 3. Agreement for every ECU's target before anything is installed: all or none. */
	for (size_t k = 0; r == 0 && k < n_sec; k++)
		if (c.path[k + 1][0])
			r = verify_secondary(a, d, *image, &c, k, &sec[k], &e);
	if (r == 0 && c.path[0][0])
		r = select_assigned(a, d, *image, &c, installed, version, version_size, path,
				    path_size, rel, &e);
	if (r < 0 && c.path[0][0] && r != OTTER_E_NETWORK && r != OTTER_E_TIMEOUT &&
	    r != OTTER_E_NOMEM && r != OTTER_E_IO)
		assignment_failed(a, "VERIFICATION", e.msg);
	/* 4. The secondaries, through their install handlers; the primary's A/B install
	 * follows in the agent. */
	for (size_t k = 0; r == 0 && k < n_sec; k++)
		if (sec[k])
			r = install_secondary(a, *image, k, sec[k], &e);
	for (size_t k = 0; k < n_sec; k++)
		otter_tuf_target_free(sec[k]);
	/* One assignment is installed on all its ECUs or on none: a secondary that failed
	 * stops the primary's part. */
	for (size_t k = 0; r == 0 && *rel && k < n_sec; k++) {
		const uptane_ecu_state *es = &u->st.secondaries[k];

		if (es->result == 2 && strcmp(es->correlation_id, u->st.correlation_id) == 0) {
			char why[UPTANE_TEXT_MAX];

			strfmt(why, sizeof(why), "secondary %s failed (%s): the primary's part of "
						 "the assignment is not installed",
			       es->serial, es->code);
			assignment_failed(a, es->code, why);
			agent_log(a, OTTER_LOG_ERR, "%s", why);
			*rel = otter_release_free(*rel);
			version[0] = path[0] = '\0';
		}
	}
	if (r < 0 && is_attack(r) && !u->attack[0])
		note_attack(a, "%s", e.msg);
	otter_tuf_updater_free(d);
	if (r < 0) {
		otter_error se = OTTER_ERROR_INIT;

		*image = otter_tuf_updater_free(*image);
		*rel = otter_release_free(*rel);
		version[0] = path[0] = '\0';
		if (save(a, &se) < 0)
			agent_log(a, OTTER_LOG_ERR, "%s", se.msg);
		if (err)
			*err = e;
		return r;
	}
	if (!c.path[0][0])
		agent_log(a, OTTER_LOG_INFO, "the director assigns nothing to ECU %s",
			  a->cfg.uptane.ecu_serial);
	return save(a, err);
}

/* ---- manifests ---- */

static json_t *fileinfo_json(const uptane_image *img)
{
	json_t *hashes = json_object();

	if (img->sha256[0])
		json_object_set_new(hashes, "sha256", json_string(img->sha256));
	if (img->sha512[0])
		json_object_set_new(hashes, "sha512", json_string(img->sha512));
	if (!img->sha256[0] && !img->sha512[0])
		/* The factory image: nothing otter installed; the hash of nothing. */
		json_object_set_new(hashes, "sha256",
				    json_string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca"
						"495991b7852b855"));
	return json_pack("{s:s, s:{s:I, s:o}}", "filepath", img->path, "fileinfo", "length",
			 (json_int_t)img->length, "hashes", hashes);
}

/* {"signatures": [{keyid, sig}], "signed": signed} with key; steals signed. */
static int envelope(otter_agent *a, json_t *signed_, const otter_key *key, const char *keyid,
		    json_t **out, otter_error *err)
{
	_cleanup_free_ uint8_t *canon = NULL, *sig = NULL;
	_cleanup_free_ char *hex = NULL;
	size_t len, siglen;
	int r = otter_json_canonical(signed_, &canon, &len, err);

	if (r == 0)
		r = otter_key_sign(key, canon, len, &sig, &siglen, err);
	if (r < 0) {
		json_decref(signed_);
		return r;
	}
	hex = malloc(2 * siglen + 1);
	if (!hex) {
		json_decref(signed_);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	hex_encode(sig, siglen, hex);
	*out = json_pack("{s:[{s:s, s:s}], s:o}", "signatures", "keyid", keyid, "sig",
			 hex, "signed", signed_);
	return *out ? 0 : otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

/* One ECU's signed version report. */
static int ecu_report(otter_agent *a, const char *serial, const uptane_image *installed,
		      const otter_key *key, const char *keyid, json_t **out, otter_error *err)
{
	json_t *signed_ = json_pack("{s:s, s:o, s:s, s:I}", "ecu_serial", serial,
				    "installed_image", fileinfo_json(installed), "attacks_detected",
				    a->uptane->st.attacks, "report_counter",
				    (json_int_t)a->uptane->st.counter);

	if (!signed_)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	return envelope(a, signed_, key, keyid, out, err);
}

static json_t *result_json(int result, const char *code, const char *description)
{
	return result == 1 ? json_pack("{s:b, s:s, s:s}", "success", 1, "code", "OK",
				       "description", "installed")
			   : json_pack("{s:b, s:s, s:s}", "success", 0, "code", code,
				       "description", description);
}

/* The installation report: the primary's assignment, else a secondary's; with several
 * ECUs, one item per ECU of that correlation id whose result is known. */
static json_t *installation_report(otter_agent *a)
{
	const uptane_state *st = &a->uptane->st;
	const char *corr = st->result && st->correlation_id[0] ? st->correlation_id : NULL;
	json_t *items, *report;
	bool ok = true;

	for (size_t k = 0; !corr && k < st->n_secondaries; k++)
		if (st->secondaries[k].result && st->secondaries[k].correlation_id[0])
			corr = st->secondaries[k].correlation_id;
	if (!corr)
		return NULL;
	items = json_array();
	if (st->result && strcmp(st->correlation_id, corr) == 0) {
		json_array_append_new(items, json_pack("{s:s, s:o}", "ecu", a->cfg.uptane.ecu_serial,
						       "result", result_json(st->result, st->code,
									     st->description)));
		ok = st->result == 1;
	}
	for (size_t k = 0; k < st->n_secondaries; k++) {
		const uptane_ecu_state *es = &st->secondaries[k];

		if (!es->result || strcmp(es->correlation_id, corr) != 0)
			continue;
		json_array_append_new(items, json_pack("{s:s, s:o}", "ecu", es->serial, "result",
						       result_json(es->result, es->code,
								   es->description)));
		ok = ok && es->result == 1;
	}
	report = json_pack("{s:s, s:o}", "correlation_id", corr, "result",
			   ok ? result_json(1, "", "")
			      : result_json(2, "FAILED", "an ECU failed: see items"));
	if (st->n_secondaries == 0 && st->result)
		/* One ECU: its own result, no items. */
		json_object_set_new(report, "result",
				    result_json(st->result, st->code, st->description));
	else
		json_object_set_new(report, "items", items), items = NULL;
	json_decref(items);
	return report;
}

static int build_manifest(otter_agent *a, const uptane_image *installed, json_t **out,
			  otter_error *err)
{
	uptane *u = a->uptane;
	uptane_config *c = &a->cfg.uptane;
	json_t *report = NULL, *reports, *manifest_signed, *inst;
	int r;

	r = ecu_report(a, c->ecu_serial, installed, u->key, u->keyid, &report, err);
	if (r < 0)
		return r;
	reports = json_object();
	json_object_set_new(reports, c->ecu_serial, report);
	for (size_t k = 0; k < c->n_secondaries; k++) {
		r = ecu_report(a, c->secondaries[k].serial, &u->st.secondaries[k].installed,
			       u->skey[k], u->skeyid[k], &report, err);
		if (r < 0) {
			json_decref(reports);
			return r;
		}
		json_object_set_new(reports, c->secondaries[k].serial, report);
	}
	manifest_signed = json_pack("{s:s, s:s, s:o}", "device_id", c->device_id,
				    "primary_ecu_serial", c->ecu_serial, "ecu_version_manifests",
				    reports);
	if (!manifest_signed)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	inst = installation_report(a);
	if (inst)
		json_object_set_new(manifest_signed, "installation_report", inst);
	return envelope(a, manifest_signed, u->key, u->keyid, out, err);
}

static bool pending_state(otter_agent_state s)
{
	return s == OTTER_AGENT_DOWNLOADING || s == OTTER_AGENT_INSTALLING ||
	       s == OTTER_AGENT_PENDING_REBOOT || s == OTTER_AGENT_PENDING_CONFIRM;
}

/* What the cycle means for the current assignment. */
static void record_outcome(otter_agent *a, int r, const otter_error *e)
{
	uptane_state *st = &a->uptane->st;

	if (!st->target.path[0] || st->result != 0 || pending_state(a->st.state))
		return;
	if (strcmp(a->st.current_release, st->target.path) == 0) {
		st->result = 1;
		st->code[0] = st->description[0] = '\0';
		st->installed = st->target;
		agent_log(a, OTTER_LOG_NOTICE, "assignment %s installed: reporting it",
			  st->correlation_id);
	} else if (st->version[0] && agent_state_failed(&a->st, st->version)) {
		const char *why = a->st.last_error;

		if (strstr(why, "bootloader fell back"))
			assignment_failed(a, "BOOTLOADER_FALLBACK", why);
		else if (a->st.state == OTTER_AGENT_ROLLED_BACK || strstr(why, "rolled back"))
			assignment_failed(a, "HEALTH_CHECK", why);
		else
			assignment_failed(a, "VERIFICATION", why);
	} else if (r < 0 && st->version[0] && a->st.failures >= DOWNLOAD_FAILURES_REPORTED) {
		bool net = e->code == OTTER_E_NETWORK || e->code == OTTER_E_TIMEOUT ||
			   e->code == OTTER_E_NOT_FOUND;
		assignment_failed(a, net ? "DOWNLOAD" : "VERIFICATION", e->msg);
	}
}

void uptane_report(otter_agent *a, int r, const otter_error *e)
{
	uptane *u = a->uptane;
	uptane_state *st = &u->st;
	_cleanup_(json_decrefp) json_t *manifest = NULL;
	otter_error err = OTTER_ERROR_INIT;
	uptane_image installed;
	char msg[300];
	long status = 0;
	int rr;

	if (!st->registered || u->broken[0])
		return; /* registration failed, or no trusted counter: logged by the cycle */
	if (r < 0 && is_attack(e->code) && !u->attack[0])
		note_attack(a, "%s", e->msg);
	record_outcome(a, r, e);
	strfmt(st->attacks, sizeof(st->attacks), "%s", u->attack);
	installed = st->installed;
	if (!a->st.current_release[0])
		memset(&installed, 0, sizeof(installed)); /* the factory image */
	else if (strcmp(a->st.current_release, installed.path) != 0 &&
		 strcmp(a->st.current_release, st->target.path) == 0)
		installed = st->target;
	/* The counter goes up on disk before it is signed: a power cut can skip one, never
	 * reuse one. */
	st->counter++;
	rr = save(a, &err);
	if (rr == 0) {
		crashpoint("uptane-counter");
		rr = build_manifest(a, &installed, &manifest, &err);
	}
	if (rr == 0)
		rr = send_json(a, "PUT", "manifest", manifest, &status, msg, sizeof(msg), &err);
	if (rr < 0) {
		agent_log(a, OTTER_LOG_WARNING, "manifest not sent: %s", err.msg);
		return;
	}
	if (status != 204 && status != 200) {
		agent_log(a, OTTER_LOG_WARNING, "manifest (report %" PRIu64 ") refused by the "
					  "director: HTTP %ld: %s",
			  st->counter, status, msg);
		return;
	}
	agent_log(a, OTTER_LOG_INFO, "manifest sent (report %" PRIu64 "%s%s)", st->counter,
		  st->result ? ", install result of " : "", st->result ? st->correlation_id : "");
}

json_t *uptane_status_json(const uptane_config *cfg, const char *data_dir)
{
	_cleanup_free_ char *key = cfg->key ? otter_strdup(cfg->key)
					    : path_join(data_dir, "uptane/ecu-key.pem");
	_cleanup_free_ char *pub = NULL;
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	otter_error e = OTTER_ERROR_INIT;
	uptane_state st;
	json_t *o;

	if (!cfg->enabled)
		return NULL;
	o = json_pack("{s:s, s:s, s:s, s:s}", "director", cfg->director, "device-id",
		      cfg->device_id, "ecu-serial", cfg->ecu_serial, "hardware-id",
		      cfg->hardware_id ? cfg->hardware_id : "");
	if (!o || !key)
		return o;
	if (uptane_key_info(key, keyid, &pub, &e) == 0) {
		json_object_set_new(o, "key-id", json_string(keyid));
		json_object_set_new(o, "public-key", json_string(pub));
	} else {
		json_object_set_new(o, "key-error", json_string(e.msg));
	}
	if (uptane_state_load(data_dir, &st, &e) == 0) {
		json_object_set_new(o, "registered", json_boolean(st.registered));
		json_object_set_new(o, "report-counter", json_integer((json_int_t)st.counter));
		if (st.correlation_id[0])
			json_object_set_new(o, "correlation-id", json_string(st.correlation_id));
		if (st.target.path[0])
			json_object_set_new(o, "assigned", json_string(st.target.path));
		if (st.result)
			json_object_set_new(o, "install-result",
					    json_string(st.result == 1 ? "success" : st.code));
		if (st.attacks[0])
			json_object_set_new(o, "attacks-detected", json_string(st.attacks));
		if (st.n_secondaries) {
			json_t *arr = json_array();

			for (size_t i = 0; i < st.n_secondaries; i++) {
				const uptane_ecu_state *es = &st.secondaries[i];
				json_t *x = json_pack("{s:s, s:s}", "serial", es->serial,
						      "installed", es->installed.path);
				if (x && es->result)
					json_object_set_new(x, "install-result",
							    json_string(es->result == 1 ? "success"
										: es->code));
				json_array_append_new(arr, x);
			}
			json_object_set_new(o, "secondaries", arr);
		}
	}
	return o;
}
