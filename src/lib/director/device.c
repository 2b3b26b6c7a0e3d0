/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The device side of the director over the database (device.h). */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include <otter/json.h>
#include <otter/tuf.h>

#include "lib/director/device.h"
#include "lib/director/manifest.h"
#include "lib/director/metadata.h"
#include "lib/director/rollout.h"
#include "lib/json/json-util.h"
#include "lib/repo/tuf-repo.h"
#include "lib/tuf/tuf-metadata.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(dir_db_rows, dir_db_rows_free);
DEFINE_CLEANUP_FUNC(otter_key, otter_key_free);
DEFINE_CLEANUP_FUNC(dir_manifest, dir_manifest_free);
DEFINE_CLEANUP_FUNC(tuf_metadata, tuf_metadata_free);

static int fail(dir_reply *rep, int status, const char *code, int r)
{
	if (rep) {
		rep->status = status;
		rep->error = code;
	}
	return r;
}

static int oom(otter_error *err)
{
	return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

/* The reply for a storage failure: 503 when the database is busy or away, else 500. */
static int db_fail(dir_reply *rep, int r)
{
	if (r == OTTER_E_BUSY || r == OTTER_E_NETWORK)
		return fail(rep, 503, "unavailable", r);
	return fail(rep, 500, "internal", r);
}

static bool copy_id(char *dst, const char *src)
{
	if (!src || strlen(src) > DIR_ID_MAX)
		return false;
	memcpy(dst, src, strlen(src) + 1);
	return true;
}

/* ---- authentication ---- */

int dir_device_authenticate(dir_db *db, const char *header, const char *method,
			    const char *path, const uint8_t *body, size_t len, int64_t now,
			    int64_t skew, dir_who *out, dir_reply *rep, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	_cleanup_(otter_key_freep) otter_key *key = NULL;
	dir_sig_header h;
	int r;

	if (!header)
		return fail(rep, 401, "unauthorized",
			    otter_error_set(err, OTTER_E_SIGNATURE,
					    "the request has no " DIR_AUTH_HEADER " header"));
	r = dir_sig_header_parse(header, &h, err);
	if (r < 0)
		return fail(rep, 401, "unauthorized", r);
	r = dir_db_exec(db,
			"SELECT serial, device_id, key_type, public_key, is_primary FROM ecus "
			"WHERE keyid = $1",
			(dir_db_param[]){ DIR_DB_S(h.keyid) }, 1, &rows, NULL, err);
	if (r < 0)
		return db_fail(rep, r);
	if (dir_db_rows_count(rows) != 1)
		return fail(rep, 401, "unauthorized",
			    otter_error_set(err, OTTER_E_NOT_FOUND,
					    "key %.16s... is not the key of a registered ECU",
					    h.keyid));
	r = dir_ecu_key_load(dir_db_rows_text(rows, 0, 2), dir_db_rows_text(rows, 0, 3), &key,
			     NULL, err);
	if (r < 0)
		return fail(rep, 500, "internal", otter_error_prefix(err, r, "stored ECU key: "));
	r = dir_sig_verify(key, &h, method, path, body, len, now, skew, err);
	if (r < 0)
		return fail(rep, 401, "unauthorized", r);
	if (!copy_id(out->serial, dir_db_rows_text(rows, 0, 0)) ||
	    !copy_id(out->device_id, dir_db_rows_text(rows, 0, 1)))
		return fail(rep, 500, "internal",
			    otter_error_set(err, OTTER_E_FORMAT, "stored ECU row is malformed"));
	out->primary = strcmp(dir_db_rows_text(rows, 0, 4), "1") == 0;
	return 0;
}

/* ---- registration ---- */

typedef struct reg_ecu {
	const char *serial, *hardware_id, *key_type, *public_key;
	bool primary;
	char keyid[OTTER_KEYID_HEX_LEN + 1];
} reg_ecu;

typedef struct reg_req {
	const char *token;
	const char *device_id; /* from the body, may be NULL */
	reg_ecu ecus[DIR_MAX_ECUS];
	size_t n;
	size_t primary;
	int64_t now;
	/* results */
	char assigned_id[DIR_ID_MAX + 1];
	bool created;
	dir_reply *rep;
} reg_req;

static int parse_ecu_specs(const json_t *arr, reg_ecu *ecus, size_t *n_out, size_t *primary,
			   otter_error *err)
{
	size_t i, n = json_array_size(arr), n_primary = 0;
	json_t *e;

	if (!json_is_array(arr) || n == 0 || n > DIR_MAX_ECUS)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "registration: \"ecus\" must be an array of 1..%u ECUs",
				       DIR_MAX_ECUS);
	json_array_foreach(arr, i, e) {
		reg_ecu *x = &ecus[i];
		_cleanup_(otter_key_freep) otter_key *key = NULL;
		int r;
		if (!json_is_object(e))
			return otter_error_set(err, OTTER_E_FORMAT,
					       "registration: an ECU is not an object");
		r = json_get_string(e, "serial", true, "registration: ecu", &x->serial, err);
		if (r == 0)
			r = json_get_string(e, "hardware_id", true, "registration: ecu",
					    &x->hardware_id, err);
		if (r == 0)
			r = json_get_string(e, "key_type", true, "registration: ecu", &x->key_type,
					    err);
		if (r == 0)
			r = json_get_string(e, "public_key", true, "registration: ecu",
					    &x->public_key, err);
		x->primary = false;
		if (r == 0)
			r = json_get_bool(e, "primary", false, "registration: ecu", &x->primary, err);
		if (r < 0)
			return r;
		if (!dir_id_ok(x->serial) || !dir_id_ok(x->hardware_id))
			return otter_error_set(err, OTTER_E_FORMAT,
					       "registration: ECU serial and hardware_id must be "
					       "1..%u characters of [A-Za-z0-9._:-]",
					       DIR_ID_MAX);
		if (strlen(x->public_key) > 4096)
			return otter_error_set(err, OTTER_E_FORMAT,
					       "registration: ECU %s: public_key too long", x->serial);
		r = dir_ecu_key_load(x->key_type, x->public_key, &key, x->keyid, err);
		if (r < 0)
			return otter_error_prefix(err, r, "registration: ECU %s: ", x->serial);
		for (size_t j = 0; j < i; j++)
			if (strcmp(ecus[j].serial, x->serial) == 0 ||
			    strcmp(ecus[j].keyid, x->keyid) == 0)
				return otter_error_set(err, OTTER_E_FORMAT,
						       "registration: ECU %s: serial or key used "
						       "twice",
						       x->serial);
		if (x->primary) {
			n_primary++;
			*primary = i;
		}
	}
	if (n_primary != 1)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "registration: exactly one ECU must be primary (%zu are)",
				       n_primary);
	*n_out = n;
	return 0;
}

/* Stored ECUs of the device that owns keyid equal the request's? */
static int same_registration(dir_db *db, const reg_req *q, const char *device_id, bool *same,
			     otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	int r;

	r = dir_db_exec(db,
			"SELECT serial, hardware_id, keyid, is_primary FROM ecus WHERE device_id = $1",
			(dir_db_param[]){ DIR_DB_S(device_id) }, 1, &rows, NULL, err);
	if (r < 0)
		return r;
	*same = dir_db_rows_count(rows) == q->n &&
		(!q->device_id || strcmp(q->device_id, device_id) == 0);
	for (size_t i = 0; *same && i < q->n; i++) {
		bool found = false;
		for (size_t j = 0; j < dir_db_rows_count(rows); j++)
			if (strcmp(dir_db_rows_text(rows, j, 0), q->ecus[i].serial) == 0 &&
			    strcmp(dir_db_rows_text(rows, j, 1), q->ecus[i].hardware_id) == 0 &&
			    strcmp(dir_db_rows_text(rows, j, 2), q->ecus[i].keyid) == 0 &&
			    (strcmp(dir_db_rows_text(rows, j, 3), "1") == 0) == q->ecus[i].primary)
				found = true;
		*same = found;
	}
	return 0;
}

static int insert_device(dir_db *db, const char *device_id, const reg_ecu *ecus, size_t n,
			 const json_t *tags, int64_t now, otter_error *err)
{
	size_t i;
	json_t *t;
	int r;

	r = dir_db_exec(db, "INSERT INTO devices (id, created) VALUES ($1, $2)",
			(dir_db_param[]){ DIR_DB_S(device_id), DIR_DB_I(now) }, 2, NULL, NULL, err);
	if (r < 0)
		return r == OTTER_E_EXISTS ? otter_error_prefix(err, r, "device %s: ", device_id)
					   : r;
	for (i = 0; i < n; i++) {
		r = dir_db_exec(db,
				"INSERT INTO ecus (serial, device_id, hardware_id, is_primary, "
				"key_type, public_key, keyid) VALUES ($1, $2, $3, $4, $5, $6, $7)",
				(dir_db_param[]){ DIR_DB_S(ecus[i].serial), DIR_DB_S(device_id),
						  DIR_DB_S(ecus[i].hardware_id),
						  DIR_DB_I(ecus[i].primary ? 1 : 0),
						  DIR_DB_S(ecus[i].key_type),
						  DIR_DB_S(ecus[i].public_key),
						  DIR_DB_S(ecus[i].keyid) },
				7, NULL, NULL, err);
		if (r < 0)
			return r == OTTER_E_EXISTS
				       ? otter_error_prefix(err, r,
							    "ECU %s (or its key) is already "
							    "registered: ",
							    ecus[i].serial)
				       : r;
	}
	json_array_foreach(tags, i, t) {
		r = dir_db_exec(db, "INSERT INTO device_tags (device_id, tag) VALUES ($1, $2)",
				(dir_db_param[]){ DIR_DB_S(device_id), DIR_DB_S(json_string_value(t)) },
				2, NULL, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Splits "otk1.<id>.<secret>" and returns the id part in id. */
static bool token_id_of(const char *token, char id[DIR_ID_MAX + 1])
{
	const char *p, *q;

	if (strncmp(token, "otk1.", 5) != 0 || strlen(token) > 256)
		return false;
	p = token + 5;
	q = strchr(p, '.');
	if (!q || q == p || (size_t)(q - p) > DIR_ID_MAX)
		return false;
	memcpy(id, p, (size_t)(q - p));
	id[q - p] = '\0';
	return dir_id_ok(id);
}

static int register_tx(dir_db *db, void *ud, otter_error *err)
{
	reg_req *q = ud;
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL, *tok = NULL;
	_cleanup_(json_decrefp) json_t *tags = NULL;
	const char *device_id = q->device_id;
	char id[DIR_ID_MAX + 1], hash[2 * 32 + 1];
	int64_t expires, uses;
	int r;

	q->created = false;
	r = dir_db_exec(db, "SELECT device_id FROM ecus WHERE keyid = $1",
			(dir_db_param[]){ DIR_DB_S(q->ecus[q->primary].keyid) }, 1, &rows, NULL,
			err);
	if (r < 0)
		return r;
	if (dir_db_rows_count(rows) == 1) {
		/* Known key: a pre-registered device, or a registration sent again. */
		bool same;
		const char *known = dir_db_rows_text(rows, 0, 0);
		r = same_registration(db, q, known, &same, err);
		if (r < 0)
			return r;
		if (!same)
			return fail(q->rep, 409, "conflict",
				    otter_error_set(err, OTTER_E_EXISTS,
						    "the primary key is registered to device %s "
						    "with other ECUs",
						    known));
		copy_id(q->assigned_id, known);
		return 0;
	}
	if (!q->token)
		return fail(q->rep, 401, "token_required",
			    otter_error_set(err, OTTER_E_NOT_FOUND,
					    "the device is not registered: a provisioning token is "
					    "needed"));
	if (!token_id_of(q->token, id))
		return fail(q->rep, 403, "token_rejected",
			    otter_error_set(err, OTTER_E_STATE, "the provisioning token is malformed"));
	r = otter_hash_buf_hex(OTTER_HASH_SHA256, q->token, strlen(q->token), hash, err);
	if (r == 0)
		r = dir_db_exec(db,
				"SELECT hash, expires, uses_left, device_id, tags, revoked FROM "
				"provisioning_tokens WHERE id = $1",
				(dir_db_param[]){ DIR_DB_S(id) }, 1, &tok, NULL, err);
	if (r < 0)
		return r;
	if (dir_db_rows_count(tok) != 1 ||
	    !dir_ct_equal(dir_db_rows_text(tok, 0, 0), hash, sizeof(hash) - 1))
		return fail(q->rep, 403, "token_rejected",
			    otter_error_set(err, OTTER_E_STATE, "unknown provisioning token %s", id));
	r = dir_db_rows_int(tok, 0, 1, &expires, err);
	if (r == 0)
		r = dir_db_rows_int(tok, 0, 2, &uses, err);
	if (r < 0)
		return r;
	if (strcmp(dir_db_rows_text(tok, 0, 5), "0") != 0)
		return fail(q->rep, 403, "token_rejected",
			    otter_error_set(err, OTTER_E_STATE, "provisioning token %s was revoked",
					    id));
	if (expires <= q->now)
		return fail(q->rep, 403, "token_rejected",
			    otter_error_set(err, OTTER_E_EXPIRED, "provisioning token %s expired",
					    id));
	if (uses <= 0)
		return fail(q->rep, 403, "token_rejected",
			    otter_error_set(err, OTTER_E_STATE, "provisioning token %s is used up",
					    id));
	if (dir_db_rows_text(tok, 0, 3)) {
		if (device_id && strcmp(device_id, dir_db_rows_text(tok, 0, 3)) != 0)
			return fail(q->rep, 403, "token_rejected",
				    otter_error_set(err, OTTER_E_STATE,
						    "provisioning token %s is for another device",
						    id));
		device_id = dir_db_rows_text(tok, 0, 3);
	}
	if (!device_id)
		return fail(q->rep, 400, "bad_request",
			    otter_error_set(err, OTTER_E_FORMAT,
					    "registration: no device_id (and the token names none)"));
	if (dir_db_rows_text(tok, 0, 4)) {
		const char *t = dir_db_rows_text(tok, 0, 4);
		tags = json_loads(t, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_array(tags))
			return otter_error_set(err, OTTER_E_FORMAT, "token %s: stored tags malformed",
					       id);
	}
	r = dir_db_exec(db,
			"UPDATE provisioning_tokens SET uses_left = uses_left - 1 WHERE id = $1 AND "
			"uses_left > 0",
			(dir_db_param[]){ DIR_DB_S(id) }, 1, NULL, NULL, err);
	if (r < 0)
		return r;
	r = insert_device(db, device_id, q->ecus, q->n, tags, q->now, err);
	if (r == OTTER_E_EXISTS)
		return fail(q->rep, 409, "conflict", r);
	if (r < 0)
		return r;
	r = dir_rollout_on_register(db, device_id, q->now, err);
	if (r < 0)
		return r;
	copy_id(q->assigned_id, device_id);
	q->created = true;
	return 0;
}

int dir_device_register(dir_db *db, const char *header, const char *path, const uint8_t *body,
			size_t len, int64_t now, int64_t skew, json_t **resp, dir_reply *rep,
			otter_error *err)
{
	_cleanup_(json_decrefp) json_t *doc = NULL;
	_cleanup_(otter_key_freep) otter_key *key = NULL;
	_cleanup_free_ reg_req *q = NULL;
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	dir_sig_header h;
	json_t *ecus;
	int r;

	q = otter_calloc(1, sizeof(*q));
	if (!q)
		return fail(rep, 500, "internal", oom(err));
	q->now = now;
	q->rep = rep;
	if (len > DIR_REGISTER_MAX_SIZE)
		return fail(rep, 413, "too_large",
			    otter_error_set(err, OTTER_E_TOO_LARGE,
					    "registration: %zu bytes, more than %u", len,
					    DIR_REGISTER_MAX_SIZE));
	r = otter_json_parse(&doc, body, len, DIR_REGISTER_MAX_SIZE, err);
	if (r == 0)
		r = json_get_string(doc, "token", false, "registration", &q->token, err);
	if (r == 0)
		r = json_get_string(doc, "device_id", false, "registration", &q->device_id, err);
	if (r == 0)
		r = json_get_member(doc, "ecus", JSON_ARRAY, true, "registration", &ecus, err);
	if (r == 0)
		r = parse_ecu_specs(ecus, q->ecus, &q->n, &q->primary, err);
	if (r == 0 && q->device_id && !dir_id_ok(q->device_id))
		r = otter_error_set(err, OTTER_E_FORMAT,
				    "registration: device_id is not 1..%u characters of "
				    "[A-Za-z0-9._:-]",
				    DIR_ID_MAX);
	if (r < 0)
		return fail(rep, 400, "bad_request", r);
	/* Proof of possession: the request is signed by the primary key it registers. */
	if (!header)
		return fail(rep, 401, "unauthorized",
			    otter_error_set(err, OTTER_E_SIGNATURE,
					    "registration must be signed by the primary ECU key"));
	r = dir_sig_header_parse(header, &h, err);
	if (r < 0)
		return fail(rep, 401, "unauthorized", r);
	if (strcmp(h.keyid, q->ecus[q->primary].keyid) != 0)
		return fail(rep, 401, "unauthorized",
			    otter_error_set(err, OTTER_E_SIGNATURE,
					    "registration is not signed by the primary key it "
					    "registers"));
	r = dir_ecu_key_load(q->ecus[q->primary].key_type, q->ecus[q->primary].public_key, &key,
			     keyid, err);
	if (r == 0)
		r = dir_sig_verify(key, &h, "POST", path, body, len, now, skew, err);
	if (r < 0)
		return fail(rep, 401, "unauthorized", r);
	rep->status = 0;
	r = dir_db_transaction(db, register_tx, q, err);
	if (r < 0)
		return rep->status ? r : db_fail(rep, r);
	*resp = json_pack("{s:s,s:s}", "device_id", q->assigned_id, "status",
			  q->created ? "registered" : "already registered");
	if (!*resp)
		return fail(rep, 500, "internal", oom(err));
	rep->status = q->created ? 201 : 200;
	return 0;
}

/* ---- per-device metadata ---- */

typedef struct meta_req {
	const dir_signer *s;
	const char *device_id;
	int64_t now;
	uint8_t *timestamp; /* result */
	size_t timestamp_len;
	uint64_t timestamp_version;
} meta_req;

typedef struct meta_row {
	bool exists;
	int64_t dev_gen, gen, root_version;
	int64_t tv, te, sv, se, tsv, tse;
} meta_row;

#define META_SELECT                                                                               \
	"SELECT d.assign_gen, m.assign_gen, m.root_version, m.targets_version, m.targets_expires, " \
	"m.snapshot_version, m.snapshot_expires, m.timestamp_version, m.timestamp_expires, "      \
	"m.timestamp"

static int read_meta_row(const dir_db_rows *rows, meta_row *m, otter_error *err)
{
	int64_t *fields[] = { &m->gen, &m->root_version, &m->tv, &m->te, &m->sv, &m->se,
			      &m->tsv, &m->tse };
	int r;

	memset(m, 0, sizeof(*m));
	r = dir_db_rows_int(rows, 0, 0, &m->dev_gen, err);
	if (r < 0)
		return r;
	m->exists = dir_db_rows_text(rows, 0, 1) != NULL;
	for (size_t i = 0; m->exists && i < ELEMENTSOF(fields); i++) {
		r = dir_db_rows_int(rows, 0, i + 1, fields[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A role is re-signed once less than half of its lifetime is left. */
static bool near_expiry(int64_t expires, int64_t lifetime, int64_t now)
{
	return expires - now < lifetime / 2;
}

static bool meta_fresh(const meta_row *m, const dir_signer *s, int64_t now)
{
	return m->exists && m->gen == m->dev_gen && m->root_version == s->root_version &&
	       !near_expiry(m->te, s->targets_lifetime, now) &&
	       !near_expiry(m->se, s->snapshot_lifetime, now) &&
	       !near_expiry(m->tse, s->timestamp_lifetime, now);
}

static int make_targets(dir_db *db, const meta_req *q, uint64_t version, int64_t expires,
			uint8_t **out, size_t *len, char **named, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	_cleanup_free_ dir_assignment *a = NULL;
	otter_buf names;
	size_t n;
	int r;

	r = dir_db_exec(db,
			"SELECT a.ecu_serial, e.hardware_id, a.correlation_id, a.target_path, "
			"a.target_length, a.target_hashes, a.target_custom FROM assignments a JOIN "
			"ecus e ON e.serial = a.ecu_serial WHERE a.device_id = $1 AND a.status <> "
			"'cancelled' ORDER BY a.ecu_serial",
			(dir_db_param[]){ DIR_DB_S(q->device_id) }, 1, &rows, NULL, err);
	if (r < 0)
		return r;
	n = dir_db_rows_count(rows);
	a = otter_calloc(n ? n : 1, sizeof(*a));
	if (!a)
		return oom(err);
	buf_init(&names, DIR_METADATA_MAX_SIZE);
	for (size_t i = 0; i < n; i++) {
		a[i].ecu_serial = dir_db_rows_text(rows, i, 0);
		a[i].hardware_id = dir_db_rows_text(rows, i, 1);
		a[i].correlation_id = dir_db_rows_text(rows, i, 2);
		a[i].target_path = dir_db_rows_text(rows, i, 3);
		a[i].target_hashes = dir_db_rows_text(rows, i, 5);
		a[i].target_custom = dir_db_rows_text(rows, i, 6);
		r = dir_db_rows_int(rows, i, 4, &a[i].target_length, err);
		if (r == 0)
			r = buf_printf(&names, err, "%s %s\n", a[i].ecu_serial,
				       a[i].correlation_id);
		if (r < 0) {
			buf_clear(&names);
			return r;
		}
	}
	r = dir_meta_targets(q->device_id, a, n, version, expires, q->s->targets, out, len, err);
	if (r < 0) {
		buf_clear(&names);
		return r;
	}
	if (!names.data && buf_append(&names, "", 0, err) < 0) {
		buf_clear(&names);
		return oom(err);
	}
	*named = (char *)buf_steal(&names, NULL);
	return 0;
}

static int regen_tx(dir_db *db, void *ud, otter_error *err)
{
	meta_req *q = ud;
	const dir_signer *s = q->s;
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	_cleanup_free_ uint8_t *targets = NULL, *snapshot = NULL, *timestamp = NULL;
	_cleanup_free_ char *named = NULL;
	size_t tlen = 0, slen = 0, tslen = 0;
	bool need_t, need_s;
	meta_row m;
	int r;

	free(q->timestamp);
	q->timestamp = NULL;
	r = dir_db_exec(db,
			META_SELECT ", m.targets, m.targets_named, m.snapshot FROM devices d LEFT "
			"JOIN device_metadata m ON m.device_id = d.id WHERE d.id = $1",
			(dir_db_param[]){ DIR_DB_S(q->device_id) }, 1, &rows, NULL, err);
	if (r < 0)
		return r;
	if (dir_db_rows_count(rows) != 1)
		return otter_error_set(err, OTTER_E_NOT_FOUND, "device %s was removed",
				       q->device_id);
	r = read_meta_row(rows, &m, err);
	if (r < 0)
		return r;
	if (meta_fresh(&m, s, q->now)) {
		/* Another server made it meanwhile. */
		const char *ts = dir_db_rows_text(rows, 0, 9);
		q->timestamp = (uint8_t *)otter_strdup(ts);
		q->timestamp_len = strlen(ts);
		q->timestamp_version = (uint64_t)m.tsv;
		return q->timestamp ? 0 : oom(err);
	}
	need_t = !m.exists || m.gen != m.dev_gen || m.root_version != s->root_version ||
		 near_expiry(m.te, s->targets_lifetime, q->now);
	need_s = need_t || near_expiry(m.se, s->snapshot_lifetime, q->now);
	if (need_t) {
		m.tv++;
		m.te = q->now + s->targets_lifetime;
		r = make_targets(db, q, (uint64_t)m.tv, m.te, &targets, &tlen, &named, err);
		if (r < 0)
			return r;
		m.gen = m.dev_gen;
	} else {
		targets = (uint8_t *)otter_strdup(dir_db_rows_text(rows, 0, 10));
		named = otter_strdup(dir_db_rows_text(rows, 0, 11));
		if (!targets || !named)
			return oom(err);
	}
	if (need_s) {
		m.sv++;
		m.se = q->now + s->snapshot_lifetime;
		r = dir_meta_snapshot((uint64_t)m.sv, m.se, (uint64_t)m.tv, s->snapshot, &snapshot,
				      &slen, err);
		if (r < 0)
			return r;
	} else {
		snapshot = (uint8_t *)otter_strdup(dir_db_rows_text(rows, 0, 12));
		if (!snapshot)
			return oom(err);
		slen = strlen((const char *)snapshot);
	}
	m.tsv++;
	m.tse = q->now + s->timestamp_lifetime;
	r = dir_meta_timestamp((uint64_t)m.tsv, m.tse, (uint64_t)m.sv, snapshot, slen,
			       s->timestamp, &timestamp, &tslen, err);
	if (r < 0)
		return r;
	r = dir_db_exec(db,
			"INSERT INTO device_metadata (device_id, assign_gen, root_version, "
			"targets_version, targets_expires, targets, targets_named, snapshot_version, "
			"snapshot_expires, snapshot, timestamp_version, timestamp_expires, timestamp) "
			"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT "
			"(device_id) DO UPDATE SET assign_gen = excluded.assign_gen, root_version = "
			"excluded.root_version, targets_version = excluded.targets_version, "
			"targets_expires = excluded.targets_expires, targets = excluded.targets, "
			"targets_named = excluded.targets_named, snapshot_version = "
			"excluded.snapshot_version, snapshot_expires = excluded.snapshot_expires, "
			"snapshot = excluded.snapshot, timestamp_version = excluded.timestamp_version, "
			"timestamp_expires = excluded.timestamp_expires, timestamp = "
			"excluded.timestamp",
			(dir_db_param[]){ DIR_DB_S(q->device_id), DIR_DB_I(m.gen),
					  DIR_DB_I(s->root_version), DIR_DB_I(m.tv), DIR_DB_I(m.te),
					  DIR_DB_S((const char *)targets), DIR_DB_S(named),
					  DIR_DB_I(m.sv), DIR_DB_I(m.se),
					  DIR_DB_S((const char *)snapshot), DIR_DB_I(m.tsv),
					  DIR_DB_I(m.tse), DIR_DB_S((const char *)timestamp) },
			13, NULL, NULL, err);
	if (r < 0)
		return r;
	q->timestamp = TAKE_PTR(timestamp);
	q->timestamp_len = tslen;
	q->timestamp_version = (uint64_t)m.tsv;
	return 0;
}

static int serve_timestamp(dir_db *db, const dir_signer *s, const dir_who *who, int64_t now,
			   uint8_t **out, size_t *len, uint64_t *version, dir_reply *rep,
			   otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	meta_req q = { .s = s, .device_id = who->device_id, .now = now };
	meta_row m;
	int r;

	/* The poll where nothing changed: one indexed read of the stored bytes, no signing. */
	r = dir_db_exec(db,
			META_SELECT " FROM devices d LEFT JOIN device_metadata m ON m.device_id = "
			"d.id WHERE d.id = $1",
			(dir_db_param[]){ DIR_DB_S(who->device_id) }, 1, &rows, NULL, err);
	if (r < 0)
		return db_fail(rep, r);
	if (dir_db_rows_count(rows) != 1)
		return fail(rep, 401, "unauthorized",
			    otter_error_set(err, OTTER_E_NOT_FOUND, "device %s was removed",
					    who->device_id));
	r = read_meta_row(rows, &m, err);
	if (r < 0)
		return fail(rep, 500, "internal", r);
	if (meta_fresh(&m, s, now)) {
		const char *ts = dir_db_rows_text(rows, 0, 9);
		*len = strlen(ts);
		*out = otter_memdup(ts, *len + 1);
		*version = (uint64_t)m.tsv;
		return *out ? 0 : fail(rep, 500, "internal", oom(err));
	}
	r = dir_db_transaction(db, regen_tx, &q, err);
	if (r < 0) {
		free(q.timestamp);
		return r == OTTER_E_NOT_FOUND ? fail(rep, 401, "unauthorized", r)
					      : db_fail(rep, r);
	}
	*out = q.timestamp;
	*len = q.timestamp_len;
	*version = q.timestamp_version;
	return 0;
}

typedef struct named_req {
	const char *device_id;
	const char *named;
	int64_t now;
} named_req;

/* The device fetched targets naming these assignments: assigned -> downloading. */
static int downloading_tx(dir_db *db, void *ud, otter_error *err)
{
	named_req *q = ud;
	const char *p = q->named;

	while (*p) {
		const char *sp = strchr(p, ' '), *nl = sp ? strchr(sp, '\n') : NULL;
		char serial[DIR_ID_MAX + 1], corr[DIR_ID_MAX + 1];
		int r;
		if (!sp || !nl || (size_t)(sp - p) > DIR_ID_MAX || (size_t)(nl - sp - 1) > DIR_ID_MAX)
			return otter_error_set(err, OTTER_E_FORMAT, "stored targets_named malformed");
		memcpy(serial, p, (size_t)(sp - p));
		serial[sp - p] = '\0';
		memcpy(corr, sp + 1, (size_t)(nl - sp - 1));
		corr[nl - sp - 1] = '\0';
		r = dir_db_exec(db,
				"UPDATE assignments SET status = 'downloading', updated = $4 WHERE "
				"device_id = $1 AND ecu_serial = $2 AND correlation_id = $3 AND status "
				"= 'assigned'",
				(dir_db_param[]){ DIR_DB_S(q->device_id), DIR_DB_S(serial),
						  DIR_DB_S(corr), DIR_DB_I(q->now) },
				4, NULL, NULL, err);
		if (r < 0)
			return r;
		p = nl + 1;
	}
	return 0;
}

/* "<digits>.<suffix>" → the number. */
static bool versioned_name(const char *name, const char *suffix, uint64_t *v)
{
	const char *dot = strchr(name, '.');
	char digits[21];

	if (!dot || dot == name || (size_t)(dot - name) >= sizeof(digits) ||
	    strcmp(dot + 1, suffix) != 0)
		return false;
	memcpy(digits, name, (size_t)(dot - name));
	digits[dot - name] = '\0';
	return parse_u64_range(digits, 1, INT64_MAX, v) == 0;
}

int dir_device_metadata(dir_db *db, const dir_signer *s, const dir_who *who, const char *name,
			int64_t now, uint8_t **out, size_t *len, uint64_t *version, dir_reply *rep,
			otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	uint64_t v;
	int64_t have;
	int r;

	if (strcmp(name, "timestamp.json") == 0)
		return serve_timestamp(db, s, who, now, out, len, version, rep, err);
	if (versioned_name(name, "root.json", &v)) {
		r = dir_db_exec(db, "SELECT body FROM director_roots WHERE version = $1",
				(dir_db_param[]){ DIR_DB_I(v) }, 1, &rows, NULL, err);
	} else if (versioned_name(name, "snapshot.json", &v)) {
		r = dir_db_exec(db,
				"SELECT snapshot, snapshot_version FROM device_metadata WHERE "
				"device_id = $1 AND snapshot_version = $2",
				(dir_db_param[]){ DIR_DB_S(who->device_id), DIR_DB_I(v) }, 2, &rows,
				NULL, err);
	} else if (versioned_name(name, "targets.json", &v)) {
		r = dir_db_exec(db,
				"SELECT targets, targets_version, targets_named FROM device_metadata "
				"WHERE device_id = $1 AND targets_version = $2",
				(dir_db_param[]){ DIR_DB_S(who->device_id), DIR_DB_I(v) }, 2, &rows,
				NULL, err);
	} else {
		char n[64];
		str_sanitize(name, n, sizeof(n));
		return fail(rep, 404, "not_found",
			    otter_error_set(err, OTTER_E_NOT_FOUND, "no metadata file %s", n));
	}
	if (r < 0)
		return db_fail(rep, r);
	if (dir_db_rows_count(rows) != 1) {
		char n[64];
		str_sanitize(name, n, sizeof(n));
		return fail(rep, 404, "not_found",
			    otter_error_set(err, OTTER_E_NOT_FOUND, "%s: no such version", n));
	}
	have = (int64_t)v;
	*len = strlen(dir_db_rows_text(rows, 0, 0));
	*out = otter_memdup(dir_db_rows_text(rows, 0, 0), *len + 1);
	*version = (uint64_t)have;
	if (!*out)
		return fail(rep, 500, "internal", oom(err));
	if (dir_db_rows_columns(rows) == 3 && dir_db_rows_text(rows, 0, 2)[0]) {
		named_req nq = { who->device_id, dir_db_rows_text(rows, 0, 2), now };
		r = dir_db_transaction(db, downloading_tx, &nq, err);
		if (r < 0) {
			free(*out);
			*out = NULL;
			return db_fail(rep, r);
		}
	}
	return 0;
}

/* ---- manifests ---- */

typedef struct manifest_req {
	const dir_who *who;
	const dir_manifest *m;
	const uint8_t *body;
	size_t len;
	int64_t now;
	dir_reply *rep;
} manifest_req;

static int add_rollouts(json_t *ids, const dir_db_rows *rows, otter_error *err)
{
	for (size_t i = 0; i < dir_db_rows_count(rows); i++) {
		const char *id = dir_db_rows_text(rows, i, 0);
		if (id && json_object_set_new(ids, id, json_true()) < 0)
			return oom(err);
	}
	return 0;
}

/* Marks the assignments the installation report names installed or failed. */
static int apply_result(dir_db *db, const manifest_req *q, const char *serial, bool success,
			const char *code, const char *description, json_t *rollouts,
			otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	_cleanup_free_ char *reason = NULL;
	const char *status = success ? "installed" : "failed";
	int r;

	if (!success) {
		reason = str_concat(code, description[0] ? ": " : "");
		char *full = reason ? str_concat(reason, description) : NULL;
		free(reason);
		reason = full;
		if (!reason)
			return oom(err);
	}
	if (serial)
		r = dir_db_exec(db,
				"UPDATE assignments SET status = $1, reason = $2, updated = $3 WHERE "
				"device_id = $4 AND correlation_id = $5 AND ecu_serial = $6 AND status "
				"IN ('assigned', 'downloading') RETURNING rollout_id",
				(dir_db_param[]){ DIR_DB_S(status), DIR_DB_S(reason),
						  DIR_DB_I(q->now), DIR_DB_S(q->who->device_id),
						  DIR_DB_S(q->m->correlation_id), DIR_DB_S(serial) },
				6, &rows, NULL, err);
	else
		r = dir_db_exec(db,
				"UPDATE assignments SET status = $1, reason = $2, updated = $3 WHERE "
				"device_id = $4 AND correlation_id = $5 AND status IN ('assigned', "
				"'downloading') RETURNING rollout_id",
				(dir_db_param[]){ DIR_DB_S(status), DIR_DB_S(reason),
						  DIR_DB_I(q->now), DIR_DB_S(q->who->device_id),
						  DIR_DB_S(q->m->correlation_id) },
				5, &rows, NULL, err);
	if (r < 0)
		return r;
	return add_rollouts(rollouts, rows, err);
}

static int manifest_tx(dir_db *db, void *ud, otter_error *err)
{
	manifest_req *q = ud;
	const dir_manifest *m = q->m;
	_cleanup_(json_decrefp) json_t *rollouts = json_object();
	const char *rid;
	json_t *v;
	int r;

	if (!rollouts)
		return oom(err);
	for (size_t i = 0; i < m->n_ecus; i++) {
		const dir_ecu_report *e = &m->ecus[i];
		_cleanup_free_ char *hashes = json_dumps(e->hashes, JSON_COMPACT | JSON_SORT_KEYS);
		uint64_t changes = 0;
		if (!hashes)
			return oom(err);
		/* Replay protection: the counter must grow, decided in this transaction so that
		 * two servers cannot both accept the same counter. */
		r = dir_db_exec(db,
				"UPDATE ecus SET report_counter = $1, installed_path = $2, "
				"installed_length = $3, installed_hashes = $4, installed_at = $5 WHERE "
				"serial = $6 AND device_id = $7 AND report_counter < $1",
				(dir_db_param[]){ DIR_DB_I(e->report_counter), DIR_DB_S(e->filepath),
						  DIR_DB_I(e->length), DIR_DB_S(hashes),
						  DIR_DB_I(q->now), DIR_DB_S(e->serial),
						  DIR_DB_S(q->who->device_id) },
				7, NULL, &changes, err);
		if (r < 0)
			return r;
		if (changes != 1)
			return fail(q->rep, 409, "replayed",
				    otter_error_set(err, OTTER_E_ROLLBACK,
						    "manifest: report_counter %" PRId64
						    " of ECU %s is not higher than the last accepted "
						    "one (replayed or old manifest)",
						    e->report_counter, e->serial));
	}
	r = dir_db_exec(db,
			"INSERT INTO manifests (device_id, seq, received, correlation_id, success, "
			"body) SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM manifests "
			"WHERE device_id = $1",
			(dir_db_param[]){ DIR_DB_S(q->who->device_id), DIR_DB_I(q->now),
					  DIR_DB_S(m->has_report ? m->correlation_id : NULL),
					  m->has_report ? DIR_DB_I(m->success ? 1 : 0) : DIR_DB_N,
					  DIR_DB_S((const char *)q->body) },
			5, NULL, NULL, err);
	if (r == 0)
		r = dir_db_exec(db,
				"DELETE FROM manifests WHERE device_id = $1 AND seq <= (SELECT "
				"MAX(seq) FROM manifests WHERE device_id = $1) - $2",
				(dir_db_param[]){ DIR_DB_S(q->who->device_id),
						  DIR_DB_I(DIR_MANIFEST_HISTORY) },
				2, NULL, NULL, err);
	if (r == 0)
		r = dir_db_exec(db, "UPDATE devices SET last_seen = $2 WHERE id = $1",
				(dir_db_param[]){ DIR_DB_S(q->who->device_id), DIR_DB_I(q->now) }, 2,
				NULL, NULL, err);
	if (r < 0 || !m->has_report)
		return r;
	if (m->n_items == 0)
		r = apply_result(db, q, NULL, m->success, m->code, m->description, rollouts, err);
	for (size_t i = 0; r == 0 && i < m->n_items; i++)
		r = apply_result(db, q, m->items[i].ecu, m->items[i].success, m->items[i].code,
				 m->items[i].description, rollouts, err);
	if (r < 0)
		return r;
	json_object_foreach(rollouts, rid, v) {
		(void)v;
		r = dir_rollout_on_report(db, rid, q->now, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int dir_device_manifest(dir_db *db, const dir_who *who, const uint8_t *body, size_t len,
			int64_t now, dir_reply *rep, otter_error *err)
{
	_cleanup_(dir_manifest_freep) dir_manifest *m = NULL;
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	otter_key *keys[DIR_MAX_ECUS] = { 0 };
	dir_registered_ecu ecus[DIR_MAX_ECUS];
	char keyids[DIR_MAX_ECUS][OTTER_KEYID_HEX_LEN + 1];
	manifest_req q = { who, NULL, body, len, now, rep };
	size_t n;
	int r;

	if (len > DIR_MANIFEST_MAX_SIZE)
		return fail(rep, 413, "too_large",
			    otter_error_set(err, OTTER_E_TOO_LARGE, "manifest: %zu bytes, more than %u",
					    len, DIR_MANIFEST_MAX_SIZE));
	r = dir_manifest_parse(&m, body, len, err);
	if (r < 0)
		return fail(rep, r == OTTER_E_TOO_LARGE ? 413 : 400,
			    r == OTTER_E_TOO_LARGE ? "too_large" : "bad_request", r);
	r = dir_db_exec(db,
			"SELECT serial, key_type, public_key, is_primary FROM ecus WHERE device_id = "
			"$1 ORDER BY serial",
			(dir_db_param[]){ DIR_DB_S(who->device_id) }, 1, &rows, NULL, err);
	if (r < 0)
		return db_fail(rep, r);
	n = dir_db_rows_count(rows);
	if (n == 0 || n > DIR_MAX_ECUS)
		return fail(rep, 401, "unauthorized",
			    otter_error_set(err, OTTER_E_NOT_FOUND, "device %s has no ECUs",
					    who->device_id));
	for (size_t i = 0; i < n && r == 0; i++) {
		r = dir_ecu_key_load(dir_db_rows_text(rows, i, 1), dir_db_rows_text(rows, i, 2),
				     &keys[i], keyids[i], err);
		ecus[i] = (dir_registered_ecu){ dir_db_rows_text(rows, i, 0), keyids[i], keys[i],
						strcmp(dir_db_rows_text(rows, i, 3), "1") == 0 };
	}
	if (r == 0) {
		r = dir_manifest_verify(m, who->device_id, ecus, n, err);
		if (r == OTTER_E_STATE)
			fail(rep, 403, "forbidden", r);
		else if (r == OTTER_E_SIGNATURE)
			fail(rep, 400, "bad_signature", r);
		else if (r < 0)
			fail(rep, 400, "bad_request", r);
	} else {
		fail(rep, 500, "internal", r);
	}
	for (size_t i = 0; i < n; i++)
		otter_key_free(keys[i]);
	if (r < 0)
		return r;
	q.m = m;
	rep->status = 0;
	r = dir_db_transaction(db, manifest_tx, &q, err);
	if (r < 0)
		return rep->status ? r : db_fail(rep, r);
	rep->status = 204;
	return 0;
}

/* ---- operator side ---- */

typedef struct add_req {
	const char *device_id;
	reg_ecu ecus[DIR_MAX_ECUS];
	size_t n;
	json_t *tags;
	int64_t now;
} add_req;

static int add_tx(dir_db *db, void *ud, otter_error *err)
{
	add_req *q = ud;
	int r = insert_device(db, q->device_id, q->ecus, q->n, q->tags, q->now, err);

	if (r < 0)
		return r;
	return dir_rollout_on_register(db, q->device_id, q->now, err);
}

static int tags_array(const char *const *tags, size_t n, json_t **out, otter_error *err)
{
	json_t *a = json_array();

	if (!a)
		return oom(err);
	for (size_t i = 0; i < n; i++) {
		if (!dir_id_ok(tags[i])) {
			json_decref(a);
			return otter_error_set(err, OTTER_E_INVALID,
					       "tag \"%s\" is not 1..%u characters of "
					       "[A-Za-z0-9._:-]",
					       tags[i], DIR_ID_MAX);
		}
		if (json_array_append_new(a, json_string(tags[i])) < 0) {
			json_decref(a);
			return oom(err);
		}
	}
	*out = a;
	return 0;
}

int dir_device_add(dir_db *db, const char *device_id, const dir_ecu_spec *ecus, size_t n,
		   const char *const *tags, size_t n_tags, int64_t now, otter_error *err)
{
	_cleanup_free_ add_req *q = otter_calloc(1, sizeof(*q));
	size_t primaries = 0;
	int r;

	if (!q)
		return oom(err);
	if (!dir_id_ok(device_id))
		return otter_error_set(err, OTTER_E_INVALID,
				       "device id \"%s\" is not 1..%u characters of [A-Za-z0-9._:-]",
				       device_id, DIR_ID_MAX);
	if (n == 0 || n > DIR_MAX_ECUS)
		return otter_error_set(err, OTTER_E_INVALID, "a device needs 1..%u ECUs",
				       DIR_MAX_ECUS);
	for (size_t i = 0; i < n; i++) {
		_cleanup_(otter_key_freep) otter_key *key = NULL;
		reg_ecu *x = &q->ecus[i];
		*x = (reg_ecu){ ecus[i].serial, ecus[i].hardware_id, ecus[i].key_type,
				ecus[i].public_key, ecus[i].primary, { 0 } };
		if (!dir_id_ok(x->serial) || !dir_id_ok(x->hardware_id))
			return otter_error_set(err, OTTER_E_INVALID,
					       "ECU serial and hardware id must be 1..%u characters of "
					       "[A-Za-z0-9._:-]",
					       DIR_ID_MAX);
		r = dir_ecu_key_load(x->key_type, x->public_key, &key, x->keyid, err);
		if (r < 0)
			return otter_error_prefix(err, r, "ECU %s: ", x->serial);
		primaries += x->primary;
	}
	if (primaries != 1)
		return otter_error_set(err, OTTER_E_INVALID,
				       "exactly one ECU must be primary (%zu are): add ',primary' to "
				       "one --ecu",
				       primaries);
	r = tags_array(tags, n_tags, &q->tags, err);
	if (r < 0)
		return r;
	q->device_id = device_id;
	q->n = n;
	q->now = now;
	r = dir_db_transaction(db, add_tx, q, err);
	json_decref(q->tags);
	return r;
}

/* Runs sql with $1 = id; OTTER_E_NOT_FOUND ("no <what> <id>") when it changes no row. */
static int change_one(dir_db *db, const char *sql, const char *id, const char *what,
		      otter_error *err)
{
	uint64_t changes = 0;
	int r = dir_db_exec(db, sql, (dir_db_param[]){ DIR_DB_S(id) }, 1, NULL, &changes, err);

	if (r < 0)
		return r;
	return changes ? 0 : otter_error_set(err, OTTER_E_NOT_FOUND, "no %s %s", what, id);
}

int dir_device_remove(dir_db *db, const char *device_id, otter_error *err)
{
	return change_one(db, "DELETE FROM devices WHERE id = $1", device_id, "device", err);
}

static json_t *int_or_null(const dir_db_rows *rows, size_t row, size_t col)
{
	int64_t v;

	if (!dir_db_rows_text(rows, row, col) || dir_db_rows_int(rows, row, col, &v, NULL) < 0)
		return json_null();
	return json_integer(v);
}

static json_t *text_or_null(const dir_db_rows *rows, size_t row, size_t col)
{
	const char *s = dir_db_rows_text(rows, row, col);
	return s ? json_string(s) : json_null();
}

int dir_device_list(dir_db *db, const char *device_id, json_t **out, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *devs = NULL, *ecus = NULL, *tags = NULL;
	_cleanup_(json_decrefp) json_t *list = json_array(), *byid = json_object();
	int r;

	if (!list || !byid)
		return oom(err);
	r = dir_db_exec(db,
			"SELECT id, created, last_seen, assign_gen FROM devices WHERE $1 IS NULL OR "
			"id = $1 ORDER BY id",
			(dir_db_param[]){ DIR_DB_S(device_id) }, 1, &devs, NULL, err);
	if (r == 0)
		r = dir_db_exec(db,
				"SELECT e.device_id, e.serial, e.hardware_id, e.is_primary, e.key_type, "
				"e.keyid, e.report_counter, e.installed_path, e.installed_at, "
				"a.target_path, a.status, a.correlation_id, a.reason FROM ecus e LEFT "
				"JOIN assignments a ON a.ecu_serial = e.serial WHERE $1 IS NULL OR "
				"e.device_id = $1 ORDER BY e.device_id, e.serial",
				(dir_db_param[]){ DIR_DB_S(device_id) }, 1, &ecus, NULL, err);
	if (r == 0)
		r = dir_db_exec(db,
				"SELECT device_id, tag FROM device_tags WHERE $1 IS NULL OR device_id "
				"= $1 ORDER BY device_id, tag",
				(dir_db_param[]){ DIR_DB_S(device_id) }, 1, &tags, NULL, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < dir_db_rows_count(devs); i++) {
		json_t *d = json_pack("{s:s,s:o,s:o,s:o,s:[],s:[]}", "id",
				      dir_db_rows_text(devs, i, 0), "created",
				      int_or_null(devs, i, 1), "last_seen", int_or_null(devs, i, 2),
				      "assign_gen", int_or_null(devs, i, 3), "tags", "ecus");
		if (!d || json_array_append_new(list, d) < 0 ||
		    json_object_set(byid, dir_db_rows_text(devs, i, 0), d) < 0)
			return oom(err);
	}
	for (size_t i = 0; i < dir_db_rows_count(ecus); i++) {
		json_t *d = json_object_get(byid, dir_db_rows_text(ecus, i, 0)), *e, *a = json_null();
		if (!d)
			continue;
		if (dir_db_rows_text(ecus, i, 9))
			a = json_pack("{s:s,s:s,s:s,s:o}", "target", dir_db_rows_text(ecus, i, 9),
				      "status", dir_db_rows_text(ecus, i, 10), "correlation_id",
				      dir_db_rows_text(ecus, i, 11), "reason",
				      text_or_null(ecus, i, 12));
		e = json_pack("{s:s,s:s,s:b,s:s,s:s,s:o,s:o,s:o,s:o}", "serial",
			      dir_db_rows_text(ecus, i, 1), "hardware_id",
			      dir_db_rows_text(ecus, i, 2), "primary",
			      strcmp(dir_db_rows_text(ecus, i, 3), "1") == 0, "key_type",
			      dir_db_rows_text(ecus, i, 4), "keyid", dir_db_rows_text(ecus, i, 5),
			      "report_counter", int_or_null(ecus, i, 6), "installed",
			      text_or_null(ecus, i, 7), "installed_at", int_or_null(ecus, i, 8),
			      "assignment", a);
		if (!e || json_array_append_new(json_object_get(d, "ecus"), e) < 0)
			return oom(err);
	}
	for (size_t i = 0; i < dir_db_rows_count(tags); i++) {
		json_t *d = json_object_get(byid, dir_db_rows_text(tags, i, 0));
		if (d && json_array_append_new(json_object_get(d, "tags"),
					       json_string(dir_db_rows_text(tags, i, 1))) < 0)
			return oom(err);
	}
	if (device_id && json_array_size(list) == 0)
		return otter_error_set(err, OTTER_E_NOT_FOUND, "no device %s", device_id);
	*out = json_pack("{s:O}", "devices", list);
	return *out ? 0 : oom(err);
}

int dir_device_history(dir_db *db, const char *device_id, int64_t limit, json_t **out,
		       otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL, *dev = NULL;
	_cleanup_(json_decrefp) json_t *list = json_array();
	int r;

	if (!list)
		return oom(err);
	r = dir_db_exec(db, "SELECT id FROM devices WHERE id = $1",
			(dir_db_param[]){ DIR_DB_S(device_id) }, 1, &dev, NULL, err);
	if (r < 0)
		return r;
	if (dir_db_rows_count(dev) == 0)
		return otter_error_set(err, OTTER_E_NOT_FOUND, "no device %s", device_id);
	r = dir_db_exec(db,
			"SELECT seq, received, correlation_id, success, body FROM manifests WHERE "
			"device_id = $1 ORDER BY seq DESC LIMIT $2",
			(dir_db_param[]){ DIR_DB_S(device_id), DIR_DB_I(limit) }, 2, &rows, NULL, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < dir_db_rows_count(rows); i++) {
		json_t *body = json_loads(dir_db_rows_text(rows, i, 4), 0, NULL);
		json_t *succ = dir_db_rows_text(rows, i, 3)
				       ? json_boolean(strcmp(dir_db_rows_text(rows, i, 3), "1") == 0)
				       : json_null();
		json_t *e = json_pack("{s:o,s:o,s:o,s:o,s:o}", "seq", int_or_null(rows, i, 0),
				      "received", int_or_null(rows, i, 1), "correlation_id",
				      text_or_null(rows, i, 2), "success", succ, "manifest",
				      body ? body : json_null());
		if (!e || json_array_append_new(list, e) < 0)
			return oom(err);
	}
	*out = json_pack("{s:s,s:O}", "device_id", device_id, "manifests", list);
	return *out ? 0 : oom(err);
}

/* ---- provisioning tokens ---- */

int dir_token_create(dir_db *db, int64_t uses, int64_t expires, const char *device_id,
		     const char *const *tags, size_t n_tags, int64_t now, char **token_out,
		     char id_out[DIR_ID_MAX + 1], otter_error *err)
{
	_cleanup_(json_decrefp) json_t *t = NULL;
	_cleanup_free_ char *tags_text = NULL;
	uint8_t rnd[8 + 32];
	char id[2 * 8 + 1], secret[2 * 32 + 1], hash[2 * 32 + 1];
	otter_buf b;
	int r;

	if (uses < 1)
		return otter_error_set(err, OTTER_E_INVALID, "a token needs at least one use");
	if (device_id && !dir_id_ok(device_id))
		return otter_error_set(err, OTTER_E_INVALID, "device id \"%s\" is not valid",
				       device_id);
	r = tags_array(tags, n_tags, &t, err);
	if (r < 0)
		return r;
	if (n_tags && !(tags_text = json_dumps(t, JSON_COMPACT)))
		return oom(err);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return otter_error_set(err, OTTER_E_CRYPTO, "no random bytes for the token");
	hex_encode(rnd, 8, id);
	hex_encode(rnd + 8, 32, secret);
	buf_init(&b, 256);
	r = buf_printf(&b, err, "otk1.%s.%s", id, secret);
	if (r == 0)
		r = otter_hash_buf_hex(OTTER_HASH_SHA256, b.data, b.len, hash, err);
	if (r == 0)
		r = dir_db_exec(db,
				"INSERT INTO provisioning_tokens (id, hash, created, expires, "
				"uses_left, device_id, tags) VALUES ($1, $2, $3, $4, $5, $6, $7)",
				(dir_db_param[]){ DIR_DB_S(id), DIR_DB_S(hash), DIR_DB_I(now),
						  DIR_DB_I(expires), DIR_DB_I(uses),
						  DIR_DB_S(device_id), DIR_DB_S(tags_text) },
				7, NULL, NULL, err);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	OPENSSL_cleanse(secret, sizeof(secret));
	if (r < 0) {
		buf_clear(&b);
		return r;
	}
	memcpy(id_out, id, sizeof(id));
	*token_out = (char *)buf_steal(&b, NULL);
	return 0;
}

int dir_token_list(dir_db *db, json_t **out, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	_cleanup_(json_decrefp) json_t *list = json_array();
	int r;

	if (!list)
		return oom(err);
	r = dir_db_exec(db,
			"SELECT id, created, expires, uses_left, device_id, tags, revoked FROM "
			"provisioning_tokens ORDER BY created, id",
			NULL, 0, &rows, NULL, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < dir_db_rows_count(rows); i++) {
		const char *tags = dir_db_rows_text(rows, i, 5);
		json_t *t = tags ? json_loads(tags, 0, NULL) : json_array();
		json_t *e = json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:b}", "id",
				      dir_db_rows_text(rows, i, 0), "created",
				      int_or_null(rows, i, 1), "expires", int_or_null(rows, i, 2),
				      "uses_left", int_or_null(rows, i, 3), "device_id",
				      text_or_null(rows, i, 4), "tags", t ? t : json_array(),
				      "revoked", strcmp(dir_db_rows_text(rows, i, 6), "0") != 0);
		if (!e || json_array_append_new(list, e) < 0)
			return oom(err);
	}
	*out = json_pack("{s:O}", "tokens", list);
	return *out ? 0 : oom(err);
}

int dir_token_revoke(dir_db *db, const char *id, otter_error *err)
{
	return change_one(db, "UPDATE provisioning_tokens SET revoked = 1 WHERE id = $1", id,
			  "token", err);
}

/* ---- the director root ---- */

int dir_root_latest(dir_db *db, int64_t *version, char **body, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	int r = dir_db_exec(db, "SELECT version, body FROM director_roots ORDER BY version DESC "
				"LIMIT 1",
			    NULL, 0, &rows, NULL, err);

	if (r < 0)
		return r;
	*version = 0;
	if (body)
		*body = NULL;
	if (dir_db_rows_count(rows) == 0)
		return 0;
	r = dir_db_rows_int(rows, 0, 0, version, err);
	if (r < 0)
		return r;
	if (body && !(*body = otter_strdup(dir_db_rows_text(rows, 0, 1))))
		return oom(err);
	return 0;
}

/* The root lists key for role at threshold 1? */
static int check_online_key(const tuf_metadata *root, tuf_role_type role, const otter_key *key,
			    otter_error *err)
{
	const tuf_rolekeys *rk = &root->roles[role];
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	int r;

	if (!key)
		return 0;
	r = tuf_repo_keyid(key, keyid, NULL, err);
	if (r < 0)
		return r;
	if (rk->threshold != 1)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "root version %" PRIu64 ": the %s role has threshold %" PRIu64
				       "; the director signs it online with one key, so it must be 1",
				       root->version, tuf_role_type_name(role), rk->threshold);
	for (size_t i = 0; i < rk->n; i++)
		if (strcmp(rk->keyids[i], keyid) == 0)
			return 0;
	return otter_error_set(err, OTTER_E_CONFIG,
			       "root version %" PRIu64 " does not list the configured %s key %.16s... "
			       "for the %s role: configure the key the root names ([keys] in the "
			       "configuration) or import a root that lists it",
			       root->version, tuf_role_type_name(role), keyid,
			       tuf_role_type_name(role));
}

static int check_keys(const tuf_metadata *root, const otter_key *targets,
		      const otter_key *snapshot, const otter_key *timestamp, otter_error *err)
{
	int r = check_online_key(root, TUF_TARGETS, targets, err);

	if (r == 0)
		r = check_online_key(root, TUF_SNAPSHOT, snapshot, err);
	if (r == 0)
		r = check_online_key(root, TUF_TIMESTAMP, timestamp, err);
	return r;
}

/* The newest stored root, parsed (*out NULL when none is stored). */
static int latest_root(dir_db *db, tuf_metadata **out, otter_error *err)
{
	_cleanup_free_ char *body = NULL;
	int64_t v;
	int r = dir_root_latest(db, &v, &body, err);

	*out = NULL;
	if (r < 0 || !body)
		return r;
	return tuf_metadata_parse(out, TUF_ROOT, (const uint8_t *)body, strlen(body),
				  "stored root", err);
}

int dir_root_check_keys(dir_db *db, const otter_key *targets, const otter_key *snapshot,
			const otter_key *timestamp, int64_t *version_out, otter_error *err)
{
	_cleanup_(tuf_metadata_freep) tuf_metadata *md = NULL;
	int r = latest_root(db, &md, err);

	if (r < 0)
		return r;
	if (!md)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "no director root imported: make one offline and run "
				       "'otter-director root import N.root.json' (docs/director.md)");
	r = check_keys(md, targets, snapshot, timestamp, err);
	if (r < 0)
		return r;
	*version_out = (int64_t)md->version;
	return 0;
}

typedef struct root_import_req {
	const uint8_t *const *files;
	const size_t *lens;
	size_t n;
	const otter_key *keys[3];
	int64_t now;
	int64_t version;
} root_import_req;

static int root_import_tx(dir_db *db, void *ud, otter_error *err)
{
	root_import_req *q = ud;
	_cleanup_(tuf_metadata_freep) tuf_metadata *trusted = NULL;
	int r = latest_root(db, &trusted, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < q->n; i++) {
		_cleanup_(tuf_metadata_freep) tuf_metadata *md = NULL;
		_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
		_cleanup_free_ char *text = NULL;
		char what[48];
		strfmt(what, sizeof(what), "root file %zu", i + 1);
		r = tuf_metadata_parse(&md, TUF_ROOT, q->files[i], q->lens[i], what, err);
		if (r < 0)
			return r;
		strfmt(what, sizeof(what), "%" PRIu64 ".root.json", md->version);
		if (trusted && md->version <= trusted->version) {
			/* Already there: must be the very same file. */
			r = dir_db_exec(db, "SELECT body FROM director_roots WHERE version = $1",
					(dir_db_param[]){ DIR_DB_I((int64_t)md->version) }, 1, &rows,
					NULL, err);
			if (r < 0)
				return r;
			if (dir_db_rows_count(rows) != 1 ||
			    strlen(dir_db_rows_text(rows, 0, 0)) != q->lens[i] ||
			    memcmp(dir_db_rows_text(rows, 0, 0), q->files[i], q->lens[i]) != 0)
				return otter_error_set(err, OTTER_E_ROLLBACK,
						       "%s: a different root of this version is "
						       "already imported",
						       what);
			continue;
		}
		if (trusted && md->version != trusted->version + 1)
			return otter_error_set(err, OTTER_E_VERSION,
					       "%s: expected version %" PRIu64
					       " next (import the roots in order)",
					       what, trusted->version + 1);
		if (!md->consistent_snapshot)
			return otter_error_set(err, OTTER_E_CONFIG,
					       "%s: consistent_snapshot must be true (the director "
					       "serves V.snapshot.json and V.targets.json)",
					       what);
		if (trusted) {
			r = tuf_verify_threshold(md, &trusted->keys, &trusted->roles[TUF_ROOT], what,
						 err);
			if (r < 0)
				return otter_error_prefix(err, r, "signed by the previous root: ");
		}
		r = tuf_verify_threshold(md, &md->keys, &md->roles[TUF_ROOT], what, err);
		if (r < 0)
			return otter_error_prefix(err, r, "signed by its own root keys: ");
		for (size_t j = 0; j < q->lens[i]; j++)
			if (q->files[i][j] == 0)
				return otter_error_set(err, OTTER_E_FORMAT, "%s: NUL byte", what);
		text = otter_strndup((const char *)q->files[i], q->lens[i]);
		if (!text)
			return oom(err);
		r = dir_db_exec(db,
				"INSERT INTO director_roots (version, body, imported) VALUES ($1, $2, "
				"$3)",
				(dir_db_param[]){ DIR_DB_I((int64_t)md->version), DIR_DB_S(text),
						  DIR_DB_I(q->now) },
				3, NULL, NULL, err);
		if (r < 0)
			return r;
		tuf_metadata_free(trusted);
		trusted = TAKE_PTR(md);
	}
	if (!trusted)
		return otter_error_set(err, OTTER_E_INVALID, "no root file given");
	r = check_keys(trusted, q->keys[0], q->keys[1], q->keys[2], err);
	if (r < 0)
		return r;
	q->version = (int64_t)trusted->version;
	return 0;
}

int dir_root_import(dir_db *db, const uint8_t *const *files, const size_t *lens, size_t n,
		    const otter_key *targets, const otter_key *snapshot,
		    const otter_key *timestamp, int64_t now, int64_t *version_out,
		    otter_error *err)
{
	root_import_req q = { files, lens, n, { targets, snapshot, timestamp }, now, 0 };
	int r = dir_db_transaction(db, root_import_tx, &q, err);

	if (r < 0)
		return r;
	*version_out = q.version;
	return 0;
}

int dir_device_identify(dir_db *db, const char *device_id, dir_who *out, dir_reply *rep,
			otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	int r;

	if (!dir_id_ok(device_id))
		return fail(rep, 401, "unauthorized",
			    otter_error_set(err, OTTER_E_NOT_FOUND, "the proxy named no valid device"));
	r = dir_db_exec(db, "SELECT serial FROM ecus WHERE device_id = $1 AND is_primary = 1",
			(dir_db_param[]){ DIR_DB_S(device_id) }, 1, &rows, NULL, err);
	if (r < 0)
		return db_fail(rep, r);
	if (dir_db_rows_count(rows) != 1)
		return fail(rep, 401, "unauthorized",
			    otter_error_set(err, OTTER_E_NOT_FOUND, "device %s is not registered",
					    device_id));
	copy_id(out->device_id, device_id);
	copy_id(out->serial, dir_db_rows_text(rows, 0, 0));
	out->primary = true;
	return 0;
}
