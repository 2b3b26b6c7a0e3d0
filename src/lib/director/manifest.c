/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device version manifests: parsing untrusted bytes and verifying signatures (manifest.h). */

#include <stdlib.h>
#include <string.h>

#include <otter/json.h>
#include <otter/tuf.h>

#include "lib/director/auth.h"
#include "lib/director/manifest.h"
#include "lib/json/json-util.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

dir_manifest *dir_manifest_free(dir_manifest *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n_ecus; i++)
		free(m->ecus[i].canon);
	free(m->ecus);
	free(m->items);
	free(m->canon);
	json_decref(m->doc);
	free(m);
	return NULL;
}

DEFINE_CLEANUP_FUNC(dir_manifest, dir_manifest_free);

/* Only these members may appear in an object (so that typos are errors, not ignored). */
static int check_members(const json_t *obj, const char *const *allowed, const char *what,
			 otter_error *err)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		bool ok = false;
		(void)v;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				ok = true;
		if (!ok) {
			char k[40];
			str_sanitize(key, k, sizeof(k));
			return otter_error_set(err, OTTER_E_FORMAT, "%s: unknown member \"%s\"",
					       what, k);
		}
	}
	return 0;
}

static int get_id(const json_t *obj, const char *key, const char *what, const char **out,
		  otter_error *err)
{
	int r = json_get_string(obj, key, true, what, out, err);

	if (r < 0)
		return r;
	if (!dir_id_ok(*out))
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: \"%s\" is not 1..%u characters of [A-Za-z0-9._:-]", what,
				       key, DIR_ID_MAX);
	return 0;
}

static int get_text(const json_t *obj, const char *key, bool required, const char *what,
		    const char **out, otter_error *err)
{
	int r = json_get_string(obj, key, required, what, out, err);

	if (r < 0)
		return r;
	if (!*out) {
		*out = "";
		return 0;
	}
	if (strlen(*out) > DIR_MANIFEST_MAX_TEXT)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"%s\" is longer than %u bytes",
				       what, key, DIR_MANIFEST_MAX_TEXT);
	for (const char *p = *out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: \"%s\" holds a control character", what, key);
	return 0;
}

static int check_signatures(const json_t *sigs, const char *what, otter_error *err)
{
	size_t i;
	json_t *s;

	if (!json_is_array(sigs) || json_array_size(sigs) == 0)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"signatures\" is not a non-empty "
				       "array", what);
	if (json_array_size(sigs) > DIR_MANIFEST_MAX_SIGS)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: more than %u signatures", what,
				       DIR_MANIFEST_MAX_SIGS);
	json_array_foreach(sigs, i, s) {
		static const char *const members[] = { "keyid", "sig", "method", NULL };
		const char *keyid, *sig;
		int r;
		if (!json_is_object(s))
			return otter_error_set(err, OTTER_E_FORMAT, "%s: a signature is not an object",
					       what);
		r = check_members(s, members, what, err);
		if (r == 0)
			r = json_get_string(s, "keyid", true, what, &keyid, err);
		if (r == 0)
			r = json_get_string(s, "sig", true, what, &sig, err);
		if (r < 0)
			return r;
		if (strlen(keyid) != OTTER_KEYID_HEX_LEN || !is_lower_hex(keyid, strlen(keyid)))
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: a signature's keyid is not 64 hex digits", what);
		if (strlen(sig) == 0 || strlen(sig) > 2 * DIR_AUTH_MAX_SIG || strlen(sig) % 2 ||
		    !is_lower_hex(sig, strlen(sig)))
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: a signature's sig is not lower-case hex of at most "
					       "%u bytes",
					       what, DIR_AUTH_MAX_SIG);
	}
	return 0;
}

static int check_hashes(const json_t *hashes, const char *what, otter_error *err)
{
	const char *alg;
	json_t *v;

	if (!json_is_object(hashes) || json_object_size(hashes) == 0 ||
	    json_object_size(hashes) > 4)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: \"hashes\" is not an object of 1..4 digests", what);
	json_object_foreach((json_t *)hashes, alg, v) {
		otter_hash_alg a;
		const char *hex = json_string_value(v);
		if (otter_hash_alg_from_name(alg, &a) < 0 || !hex ||
		    strlen(hex) != 2 * otter_hash_size(a) || !is_lower_hex(hex, strlen(hex)))
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: hashes: only sha256 and sha512 as lower-case "
					       "hex digests are accepted",
					       what);
	}
	return 0;
}

static int parse_ecu(const char *serial, const json_t *env, dir_ecu_report *e, otter_error *err)
{
	static const char *const env_members[] = { "signatures", "signed", NULL };
	static const char *const signed_members[] = { "ecu_serial", "installed_image",
						      "attacks_detected", "report_counter",
						      "timeserver_time", "previous_timeserver_time",
						      "custom", NULL };
	static const char *const image_members[] = { "filepath", "fileinfo", NULL };
	static const char *const info_members[] = { "length", "hashes", "custom", NULL };
	char what[96];
	json_t *sig, *img, *info, *hashes;
	const char *ecu_serial;
	int r;

	strfmt(what, sizeof(what), "manifest: ecu_version_manifests.%s", serial);
	if (!dir_id_ok(serial))
		return otter_error_set(err, OTTER_E_FORMAT,
				       "manifest: an ECU serial is not 1..%u characters of "
				       "[A-Za-z0-9._:-]",
				       DIR_ID_MAX);
	if (!json_is_object(env))
		return otter_error_set(err, OTTER_E_FORMAT, "%s is not an object", what);
	r = check_members(env, env_members, what, err);
	if (r == 0)
		r = json_get_member(env, "signed", JSON_OBJECT, true, what, &sig, err);
	if (r == 0)
		r = check_signatures(json_object_get(env, "signatures"), what, err);
	if (r == 0)
		r = check_members(sig, signed_members, what, err);
	if (r == 0)
		r = get_id(sig, "ecu_serial", what, &ecu_serial, err);
	if (r < 0)
		return r;
	if (strcmp(ecu_serial, serial) != 0)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: ecu_serial \"%s\" differs from the serial it is listed "
				       "under",
				       what, ecu_serial);
	r = json_get_int(sig, "report_counter", true, what, 0, INT64_MAX, &e->report_counter, err);
	if (r == 0)
		r = get_text(sig, "attacks_detected", false, what, &e->attacks_detected, err);
	if (r == 0)
		r = json_get_member(sig, "installed_image", JSON_OBJECT, true, what, &img, err);
	if (r == 0)
		r = check_members(img, image_members, what, err);
	if (r == 0)
		r = get_text(img, "filepath", true, what, &e->filepath, err);
	if (r == 0)
		r = json_get_member(img, "fileinfo", JSON_OBJECT, true, what, &info, err);
	if (r == 0)
		r = check_members(info, info_members, what, err);
	if (r == 0)
		r = json_get_int(info, "length", true, what, 0, INT64_MAX, &e->length, err);
	if (r == 0)
		r = json_get_member(info, "hashes", JSON_OBJECT, true, what, &hashes, err);
	if (r == 0)
		r = check_hashes(hashes, what, err);
	if (r < 0)
		return r;
	/* The path of an installed image: what the image repository names (or "" for the factory
	 * image); never a path with control bytes or traversal. */
	if (e->filepath[0] && !target_path_is_safe(e->filepath, DIR_MANIFEST_MAX_TEXT))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: filepath is not a safe target path",
				       what);
	e->serial = serial;
	e->signatures = json_object_get(env, "signatures");
	e->hashes = hashes;
	return otter_json_canonical(sig, &e->canon, &e->canon_len, err);
}

static int parse_result(const json_t *obj, const char *what, bool *success, const char **code,
			const char **description, otter_error *err)
{
	static const char *const members[] = { "success", "code", "description", NULL };
	json_t *res;
	int r;

	r = json_get_member(obj, "result", JSON_OBJECT, true, what, &res, err);
	if (r == 0)
		r = check_members(res, members, what, err);
	if (r == 0)
		r = json_get_bool(res, "success", true, what, success, err);
	if (r == 0)
		r = get_id(res, "code", what, code, err);
	if (r == 0)
		r = get_text(res, "description", false, what, description, err);
	return r;
}

static int parse_report(dir_manifest *m, const json_t *rep, otter_error *err)
{
	static const char *const members[] = { "correlation_id", "result", "items", "raw_report",
					       NULL };
	static const char *const item_members[] = { "ecu", "result", NULL };
	const char *what = "manifest: installation_report";
	json_t *items = NULL, *it;
	size_t i;
	int r;

	r = check_members(rep, members, what, err);
	if (r == 0)
		r = get_id(rep, "correlation_id", what, &m->correlation_id, err);
	if (r == 0)
		r = parse_result(rep, what, &m->success, &m->code, &m->description, err);
	if (r == 0)
		r = json_get_member(rep, "items", JSON_ARRAY, false, what, &items, err);
	if (r == 0 && json_object_get(rep, "raw_report")) {
		const char *raw;
		r = get_text(rep, "raw_report", false, what, &raw, err);
	}
	if (r < 0)
		return r;
	m->has_report = true;
	if (!items)
		return 0;
	if (json_array_size(items) > DIR_MANIFEST_MAX_ECUS)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: more than %u items", what,
				       DIR_MANIFEST_MAX_ECUS);
	m->items = otter_calloc(json_array_size(items) ? json_array_size(items) : 1,
				sizeof(*m->items));
	if (!m->items)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	json_array_foreach(items, i, it) {
		dir_install_item *x = &m->items[i];
		if (!json_is_object(it))
			return otter_error_set(err, OTTER_E_FORMAT, "%s: an item is not an object",
					       what);
		r = check_members(it, item_members, what, err);
		if (r == 0)
			r = get_id(it, "ecu", what, &x->ecu, err);
		if (r == 0)
			r = parse_result(it, what, &x->success, &x->code, &x->description, err);
		if (r < 0)
			return r;
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->items[j].ecu, x->ecu) == 0)
				return otter_error_set(err, OTTER_E_FORMAT,
						       "%s: ECU %s has two items", what, x->ecu);
		m->n_items++;
	}
	return 0;
}

static int cmp_report(const void *a, const void *b)
{
	return strcmp(((const dir_ecu_report *)a)->serial, ((const dir_ecu_report *)b)->serial);
}

int dir_manifest_parse(dir_manifest **out, const uint8_t *buf, size_t len, otter_error *err)
{
	static const char *const env_members[] = { "signatures", "signed", NULL };
	static const char *const signed_members[] = { "device_id", "primary_ecu_serial",
						      "ecu_version_manifests",
						      "installation_report", "custom", NULL };
	_cleanup_(dir_manifest_freep) dir_manifest *m = NULL;
	const char *what = "manifest";
	json_t *sig, *ecus, *rep = NULL, *v;
	const char *serial;
	int r;

	m = otter_calloc(1, sizeof(*m));
	if (!m)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = otter_json_parse(&m->doc, buf, len, DIR_MANIFEST_MAX_SIZE, err);
	if (r < 0)
		return otter_error_prefix(err, r, "manifest: ");
	r = check_members(m->doc, env_members, what, err);
	if (r == 0)
		r = json_get_member(m->doc, "signed", JSON_OBJECT, true, what, &sig, err);
	if (r == 0)
		r = check_signatures(json_object_get(m->doc, "signatures"), what, err);
	if (r == 0)
		r = check_members(sig, signed_members, what, err);
	if (r == 0)
		r = get_id(sig, "device_id", what, &m->device_id, err);
	if (r == 0)
		r = get_id(sig, "primary_ecu_serial", what, &m->primary_serial, err);
	if (r == 0)
		r = json_get_member(sig, "ecu_version_manifests", JSON_OBJECT, true, what, &ecus,
				    err);
	if (r == 0)
		r = json_get_member(sig, "installation_report", JSON_OBJECT, false, what, &rep, err);
	if (r < 0)
		return r;
	if (json_object_size(ecus) == 0 || json_object_size(ecus) > DIR_MANIFEST_MAX_ECUS)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "manifest: ecu_version_manifests must hold 1..%u reports",
				       DIR_MANIFEST_MAX_ECUS);
	m->ecus = otter_calloc(json_object_size(ecus), sizeof(*m->ecus));
	if (!m->ecus)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	json_object_foreach(ecus, serial, v) {
		r = parse_ecu(serial, v, &m->ecus[m->n_ecus], err);
		if (r < 0)
			return r;
		m->n_ecus++;
	}
	qsort(m->ecus, m->n_ecus, sizeof(*m->ecus), cmp_report);
	if (rep) {
		r = parse_report(m, rep, err);
		if (r < 0)
			return r;
	}
	m->signatures = json_object_get(m->doc, "signatures");
	r = otter_json_canonical(sig, &m->canon, &m->canon_len, err);
	if (r < 0)
		return r;
	*out = TAKE_PTR(m);
	return 0;
}

/* True when sigs holds a signature by keyid that verifies over msg with key. */
static bool signed_by(const json_t *sigs, const char *keyid, const otter_key *key,
		      const uint8_t *msg, size_t len)
{
	size_t i;
	json_t *s;

	json_array_foreach(sigs, i, s) {
		const char *id = json_string_value(json_object_get(s, "keyid"));
		const char *hex = json_string_value(json_object_get(s, "sig"));
		uint8_t sig[DIR_AUTH_MAX_SIG];
		size_t n;
		if (!id || !hex || strcmp(id, keyid) != 0)
			continue;
		n = strlen(hex) / 2;
		if (n == 0 || n > sizeof(sig) || !hex_decode(hex, strlen(hex), sig, n))
			continue;
		if (otter_key_verify(key, msg, len, sig, n))
			return true;
	}
	return false;
}

int dir_manifest_verify(const dir_manifest *m, const char *device_id,
			const dir_registered_ecu *ecus, size_t n, otter_error *err)
{
	const dir_registered_ecu *primary = NULL;

	if (strcmp(m->device_id, device_id) != 0)
		return otter_error_set(err, OTTER_E_STATE,
				       "manifest names device \"%s\" but the request is signed by "
				       "device \"%s\"'s key",
				       m->device_id, device_id);
	for (size_t i = 0; i < n; i++)
		if (ecus[i].primary)
			primary = &ecus[i];
	if (!primary || strcmp(primary->serial, m->primary_serial) != 0)
		return otter_error_set(err, OTTER_E_INVALID,
				       "manifest: primary_ecu_serial \"%s\" is not the device's "
				       "primary ECU",
				       m->primary_serial);
	if (!signed_by(m->signatures, primary->keyid, primary->key, m->canon, m->canon_len))
		return otter_error_set(err, OTTER_E_SIGNATURE,
				       "manifest is not signed by the primary ECU key of %s (forged?)",
				       primary->serial);
	for (size_t i = 0; i < m->n_ecus; i++) {
		const dir_ecu_report *e = &m->ecus[i];
		const dir_registered_ecu *reg = NULL;
		for (size_t j = 0; j < n; j++)
			if (strcmp(ecus[j].serial, e->serial) == 0)
				reg = &ecus[j];
		if (!reg)
			return otter_error_set(err, OTTER_E_STATE,
					       "manifest reports ECU \"%s\", which is not an ECU of "
					       "device \"%s\"",
					       e->serial, device_id);
		if (!signed_by(e->signatures, reg->keyid, reg->key, e->canon, e->canon_len))
			return otter_error_set(err, OTTER_E_SIGNATURE,
					       "manifest: the report of ECU %s is not signed by that "
					       "ECU's key (forged?)",
					       e->serial);
	}
	for (size_t j = 0; j < n; j++) {
		bool found = false;
		for (size_t i = 0; i < m->n_ecus; i++)
			if (strcmp(ecus[j].serial, m->ecus[i].serial) == 0)
				found = true;
		if (!found)
			return otter_error_set(err, OTTER_E_INVALID,
					       "manifest lacks the report of ECU %s of device %s",
					       ecus[j].serial, device_id);
	}
	for (size_t i = 0; i < m->n_items; i++) {
		bool found = false;
		for (size_t j = 0; j < n; j++)
			if (strcmp(ecus[j].serial, m->items[i].ecu) == 0)
				found = true;
		if (!found)
			return otter_error_set(err, OTTER_E_STATE,
					       "installation report names ECU \"%s\", which is not an "
					       "ECU of device \"%s\"",
					       m->items[i].ecu, device_id);
	}
	return 0;
}

int dir_manifest_sign(json_t *signed_obj, const otter_key *key, json_t **env_out,
		      otter_error *err)
{
	_cleanup_(json_decrefp) json_t *env = NULL, *keyobj = NULL;
	_cleanup_free_ uint8_t *canon = NULL, *sig = NULL;
	_cleanup_free_ char *hex = NULL;
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	size_t len, siglen;
	int r;

	r = otter_key_to_tuf(key, &keyobj, err);
	if (r == 0)
		r = otter_keyid_of_tuf(keyobj, keyid, err);
	if (r == 0)
		r = otter_json_canonical(signed_obj, &canon, &len, err);
	if (r == 0)
		r = otter_key_sign(key, canon, len, &sig, &siglen, err);
	if (r < 0)
		return r;
	hex = otter_malloc(2 * siglen + 1);
	if (!hex)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	hex_encode(sig, siglen, hex);
	env = json_pack("{s:[{s:s,s:s}],s:O}", "signatures", "keyid", keyid, "sig", hex, "signed",
			signed_obj);
	if (!env)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	*env_out = TAKE_PTR(env);
	return 0;
}
