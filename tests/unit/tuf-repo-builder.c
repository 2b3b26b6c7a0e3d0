/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tuf-repo-builder.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <otter/json.h>

#include "util/fileio.h"
#include "util/strutil.h"

#define BASE "mem://repo/"

static void must(int r, const otter_error *err)
{
	if (r != 0)
		print_error("builder: %s\n", err->msg);
	assert_int_equal(r, 0);
}

/* Every key made for a test, freed by trepo_free (test code: one repository at a time). */
static otter_key *all_keys[4096];
static size_t n_all_keys;

otter_key *trepo_new_key(otter_key_type type)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *k = NULL;

	must(otter_key_generate(&k, type, &err), &err);
	assert_true(n_all_keys < sizeof(all_keys) / sizeof(all_keys[0]));
	all_keys[n_all_keys++] = k;
	return k;
}

static json_t *key_obj(const otter_key *k)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *o = NULL;

	must(otter_key_to_tuf(k, &o, &err), &err);
	return o;
}

char *trepo_keyid(const otter_key *k)
{
	otter_error err = OTTER_ERROR_INIT;
	char id[65];
	json_t *o = key_obj(k);

	must(otter_keyid_of_tuf(o, id, &err), &err);
	json_decref(o);
	return strdup(id);
}

static json_t *role_keys(otter_key *const *keys, size_t n, json_t *keytable, uint64_t threshold)
{
	json_t *ids = json_array();

	for (size_t i = 0; i < n; i++) {
		char *id = trepo_keyid(keys[i]);
		json_array_append_new(ids, json_string(id));
		json_object_set_new(keytable, id, key_obj(keys[i]));
		free(id);
	}
	return json_pack("{s:o, s:I}", "keyids", ids, "threshold", (json_int_t)threshold);
}

static trepo_role *role_add(trepo *r, const char *name, json_t *signed_obj)
{
	trepo_role *role = &r->roles[r->n_roles++];

	assert_true(r->n_roles <= TREPO_MAX_ROLES);
	role->name = strdup(name);
	role->signed_obj = signed_obj;
	return role;
}

trepo_role *trepo_role_get(trepo *r, const char *name)
{
	for (size_t i = 0; i < r->n_roles; i++)
		if (strcmp(r->roles[i].name, name) == 0)
			return &r->roles[i];
	return NULL;
}

/* A role that must exist: aborts the test program otherwise. */
static trepo_role *role_must(trepo *r, const char *name)
{
	trepo_role *role = trepo_role_get(r, name);

	if (!role) {
		print_error("no role '%s' in the test repository\n", name);
		abort();
	}
	return role;
}

json_t *trepo_signed(trepo *r, const char *name)
{
	return role_must(r, name)->signed_obj;
}

void trepo_set_signers(trepo *r, const char *name, otter_key **keys, size_t n)
{
	trepo_role *role = role_must(r, name);

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		role->signers[i] = keys[i];
	role->n_signers = n;
}

static char *expires_in(const trepo *r, int64_t seconds)
{
	char buf[32];

	utc_format(r->now + seconds, buf);
	return strdup(buf);
}

static json_t *new_signed(trepo *r, const char *type, int64_t lifetime)
{
	char *exp = expires_in(r, lifetime);
	json_t *o = json_pack("{s:s, s:s, s:i, s:s}", "_type", type, "spec_version", "1.0.31",
			      "version", 1, "expires", exp);
	free(exp);
	return o;
}

uint8_t *trepo_serialise(trepo *r, const char *name, otter_key **keys, size_t n_keys,
			 size_t *len)
{
	otter_error err = OTTER_ERROR_INIT;
	trepo_role *role = role_must(r, name);
	json_t *sigs = json_array(), *env;
	uint8_t *canon = NULL, *out;
	size_t clen;
	char *s;

	if (!keys) {
		keys = role->signers;
		n_keys = role->n_signers;
	}
	must(otter_json_canonical(role->signed_obj, &canon, &clen, &err), &err);
	for (size_t i = 0; i < n_keys; i++) {
		uint8_t *sig = NULL;
		size_t siglen;
		char *hex, *id = trepo_keyid(keys[i]);

		must(otter_key_sign(keys[i], canon, clen, &sig, &siglen, &err), &err);
		hex = malloc(2 * siglen + 1);
		hex_encode(sig, siglen, hex);
		json_array_append_new(sigs, json_pack("{s:s, s:s}", "keyid", id, "sig", hex));
		free(hex);
		free(sig);
		free(id);
	}
	free(canon);
	env = json_pack("{s:o, s:O}", "signatures", sigs, "signed", role->signed_obj);
	s = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(env);
	*len = strlen(s);
	out = (uint8_t *)s;
	return out;
}

void trepo_put(trepo *r, const char *name, const void *data, size_t len)
{
	trepo_file *f = NULL;

	for (size_t i = 0; i < r->n_files; i++)
		if (strcmp(r->files[i].name, name) == 0)
			f = &r->files[i];
	if (!f) {
		assert_true(r->n_files < TREPO_MAX_FILES);
		f = &r->files[r->n_files++];
		f->name = strdup(name);
	} else {
		free(f->data);
	}
	f->data = malloc(len ? len : 1);
	memcpy(f->data, data, len);
	f->len = len;
}

const trepo_file *trepo_get_file(trepo *r, const char *name)
{
	for (size_t i = 0; i < r->n_files; i++)
		if (strcmp(r->files[i].name, name) == 0)
			return &r->files[i];
	return NULL;
}

static uint64_t version_of(trepo *r, const char *name)
{
	return (uint64_t)json_integer_value(json_object_get(trepo_signed(r, name), "version"));
}

const trepo_file *trepo_publish_role(trepo *r, const char *name)
{
	char fname[2048];
	char *enc = percent_encode(name);
	uint8_t *data;
	size_t len;

	if (strcmp(name, "timestamp") == 0)
		snprintf(fname, sizeof(fname), "metadata/timestamp.json");
	else
		snprintf(fname, sizeof(fname), "metadata/%llu.%s.json",
			 (unsigned long long)version_of(r, name), enc);
	free(enc);
	data = trepo_serialise(r, name, NULL, 0, &len);
	trepo_put(r, fname, data, len);
	free(data);
	return trepo_get_file(r, fname);
}

static json_t *meta_entry(trepo *r, const trepo_file *f, uint64_t version, bool hashes)
{
	json_t *e = json_pack("{s:I}", "version", (json_int_t)version);

	if (hashes) {
		char hex[65];
		otter_hash_buf_hex(OTTER_HASH_SHA256, f->data, f->len, hex, NULL);
		json_object_set_new(e, "length", json_integer((json_int_t)f->len));
		json_object_set_new(e, "hashes", json_pack("{s:s}", "sha256", hex));
	}
	return e;
}

static void point_snapshot_at(trepo *r, const char *name, const trepo_file *f)
{
	char key[2048];

	snprintf(key, sizeof(key), "%s.json", name);
	json_object_set_new(json_object_get(trepo_signed(r, "snapshot"), "meta"), key,
			    meta_entry(r, f, version_of(r, name), r->snapshot_hashes));
}

static void point_timestamp_at(trepo *r, const trepo_file *f)
{
	json_object_set_new(json_object_get(trepo_signed(r, "timestamp"), "meta"), "snapshot.json",
			    meta_entry(r, f, version_of(r, "snapshot"), r->timestamp_hashes));
}

static void bump(trepo *r, const char *name)
{
	json_t *s = trepo_signed(r, name);

	json_object_set_new(s, "version", json_integer(json_integer_value(json_object_get(s, "version")) + 1));
}

void trepo_release(trepo *r, const char *const *roles, size_t n)
{
	const trepo_file *f;

	for (size_t i = 0; i < n; i++) {
		bump(r, roles[i]);
		f = trepo_publish_role(r, roles[i]);
		point_snapshot_at(r, roles[i], f);
	}
	bump(r, "snapshot");
	f = trepo_publish_role(r, "snapshot");
	point_timestamp_at(r, f);
	bump(r, "timestamp");
	trepo_publish_role(r, "timestamp");
}

void trepo_add_target(trepo *r, const char *role, const char *path, const void *data,
		      size_t len)
{
	char hex[65], fname[8192];
	const char *slash = strrchr(path, '/');

	otter_hash_buf_hex(OTTER_HASH_SHA256, data, len, hex, NULL);
	json_object_set_new(json_object_get(trepo_signed(r, role), "targets"), path,
			    json_pack("{s:I, s:{s:s}}", "length", (json_int_t)len, "hashes",
				      "sha256", hex));
	if (slash)
		strfmt(fname, sizeof(fname), "targets/%.*s/%s.%s", (int)(slash - path), path, hex,
		       slash + 1);
	else
		snprintf(fname, sizeof(fname), "targets/%s.%s", hex, path);
	trepo_put(r, fname, data, len);
}

trepo_role *trepo_delegate(trepo *r, const char *parent, const char *name,
			   const char *const *paths, bool terminating)
{
	json_t *ps = trepo_signed(r, parent), *dele, *entry, *patterns = json_array();
	otter_key *k = trepo_new_key(OTTER_KEY_ED25519);
	trepo_role *role;
	const trepo_file *f;

	dele = json_object_get(ps, "delegations");
	if (!dele) {
		dele = json_pack("{s:{}, s:[]}", "keys", "roles");
		json_object_set_new(ps, "delegations", dele);
	}
	for (size_t i = 0; paths && paths[i]; i++)
		json_array_append_new(patterns, json_string(paths[i]));
	entry = role_keys(&k, 1, json_object_get(dele, "keys"), 1);
	json_object_set_new(entry, "name", json_string(name));
	json_object_set_new(entry, "terminating", json_boolean(terminating));
	json_object_set_new(entry, "paths", patterns);
	json_array_append_new(json_object_get(dele, "roles"), entry);
	role = trepo_role_get(r, name);
	if (!role) {
		json_t *s = new_signed(r, "targets", 90 * 86400);
		json_object_set_new(s, "targets", json_object());
		role = role_add(r, name, s);
		role->signers[0] = k;
		role->n_signers = 1;
		f = trepo_publish_role(r, name);
		point_snapshot_at(r, name, f);
	} else {
		/* A second delegator: the role keeps its signer; k is listed but unused. */
	}
	return role;
}

void trepo_rotate(trepo *r, const char *rolename, otter_key *add, uint64_t threshold)
{
	trepo_role *root = role_must(r, "root");
	json_t *s = root->signed_obj, *keys = json_object_get(s, "keys");
	json_t *role = json_object_get(json_object_get(s, "roles"), rolename);
	otter_key *old[8], *all[16];
	size_t n_old = root->n_signers, n_all = 0;
	const trepo_file *f;

	memcpy(old, root->signers, sizeof(old));
	if (add) {
		json_t *entry = role_keys(&add, 1, keys, threshold);
		json_object_set(role, "keyids", json_object_get(entry, "keyids"));
		json_decref(entry);
		if (strcmp(rolename, "root") == 0) {
			root->signers[0] = add;
			root->n_signers = 1;
		} else {
			trepo_set_signers(r, rolename, &add, 1);
		}
	}
	json_object_set_new(role, "threshold", json_integer((json_int_t)threshold));
	bump(r, "root");
	for (size_t i = 0; i < n_old; i++)
		all[n_all++] = old[i];
	if (add && strcmp(rolename, "root") == 0)
		all[n_all++] = add;
	{
		uint8_t *data;
		size_t len;
		char fname[64];

		data = trepo_serialise(r, "root", all, n_all, &len);
		snprintf(fname, sizeof(fname), "metadata/%llu.root.json",
			 (unsigned long long)version_of(r, "root"));
		trepo_put(r, fname, data, len);
		free(data);
		f = trepo_get_file(r, fname);
		(void)f;
	}
}

static int mem_fetch(void *userdata, const char *url, uint64_t max_len, otter_net_sink sink,
		     void *sink_userdata, otter_error *err)
{
	trepo *r = userdata;
	const trepo_file *f;

	assert_true(r->n_requests < TREPO_MAX_REQUESTS);
	assert_int_equal(strncmp(url, BASE, strlen(BASE)), 0);
	r->requests[r->n_requests++] = strdup(url + strlen(BASE));
	if (r->fail_with && (!r->fail_only || strstr(url, r->fail_only)))
		return otter_error_set(err, r->fail_with, "%s: injected failure", url);
	/* Decode %XX as an HTTP server does. */
	char path[4096];
	size_t o = 0;
	for (const char *p = url + strlen(BASE); *p && o < sizeof(path) - 1; p++) {
		unsigned v;
		if (p[0] == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &v) == 1) {
			path[o++] = (char)v;
			p += 2;
		} else {
			path[o++] = *p;
		}
	}
	path[o] = '\0';
	f = trepo_get_file(r, path);
	if (!f)
		return otter_error_set(err, OTTER_E_NOT_FOUND, "%s: HTTP 404", url);
	/* Deliver in chunks, stopping at the cap exactly as the real fetcher does. */
	for (size_t off = 0; off < f->len;) {
		size_t n = f->len - off < 4096 ? f->len - off : 4096;
		int rr;
		if (off + n > max_len)
			return otter_error_set(err, OTTER_E_TOO_LARGE, "%s: exceeds %llu bytes", url,
					       (unsigned long long)max_len);
		rr = sink(sink_userdata, f->data + off, n, err);
		if (rr < 0)
			return rr;
		off += n;
	}
	return 0;
}

static int64_t mem_clock(void *userdata)
{
	return ((trepo *)userdata)->now;
}

otter_tuf_updater *trepo_updater(trepo *r, otter_error *err)
{
	return trepo_updater_mirrors(r, NULL, 0, err);
}

otter_tuf_updater *trepo_updater_mirrors(trepo *r, const char *const *target_mirrors, size_t n,
					 otter_error *err)
{
	otter_tuf_options o;
	otter_tuf_updater *u = NULL;

	otter_tuf_options_init(&o);
	o.metadata_dir = r->dir;
	o.metadata_url = BASE "metadata/";
	o.target_base_url = BASE "targets/";
	o.target_mirrors = target_mirrors;
	o.n_target_mirrors = n;
	o.fetch = mem_fetch;
	o.fetch_userdata = r;
	o.clock = mem_clock;
	o.clock_userdata = r;
	if (otter_tuf_updater_new(&u, &o, err) < 0)
		return NULL;
	return u;
}

int trepo_refresh(trepo *r, otter_error *err)
{
	otter_tuf_updater *u = trepo_updater(r, err);
	int rc;

	if (!u)
		return err->code ? err->code : OTTER_E_FAILED;
	rc = otter_tuf_refresh(u, err);
	otter_tuf_updater_free(u);
	return rc;
}

uint64_t trepo_client_version(trepo *r, const char *role)
{
	char path[4096];
	char *enc = percent_encode(role);
	json_t *doc;
	json_error_t jerr;
	uint64_t v = 0;

	snprintf(path, sizeof(path), "%s/%s.json", r->dir, enc);
	free(enc);
	doc = json_load_file(path, 0, &jerr);
	if (doc)
		v = (uint64_t)json_integer_value(
			json_object_get(json_object_get(doc, "signed"), "version"));
	json_decref(doc);
	return v;
}

void trepo_clear_requests(trepo *r)
{
	for (size_t i = 0; i < r->n_requests; i++)
		free(r->requests[i]);
	r->n_requests = 0;
}

const char *trepo_requests(trepo *r)
{
	static char buf[65536];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->n_requests && off < sizeof(buf) - 1; i++)
	{
		strfmt(buf + off, sizeof(buf) - off, "%s%s", i ? " " : "", r->requests[i]);
		off += strlen(buf + off);
	}
	return buf;
}

trepo *trepo_new(void)
{
	otter_error err = OTTER_ERROR_INIT;
	static const char *const top[] = {"root", "timestamp", "snapshot", "targets"};
	trepo *r = calloc(1, sizeof(*r));
	json_t *root, *keys, *roles;
	const trepo_file *f;
	char tmpl[] = "/tmp/otter-test-XXXXXX";

	r->now = 1893456000; /* 2030-01-01 */
	r->dir = strdup(mkdtemp(tmpl));
	r->target_dir = malloc(strlen(r->dir) + 16);
	sprintf(r->target_dir, "%s/targets", r->dir);
	keys = json_object();
	roles = json_object();
	for (size_t i = 0; i < 4; i++) {
		otter_key *k = trepo_new_key(OTTER_KEY_ED25519);
		json_object_set_new(roles, top[i], role_keys(&k, 1, keys, 1));
		role_add(r, top[i], NULL)->signers[0] = k;
		r->roles[i].n_signers = 1;
	}
	root = new_signed(r, "root", 365 * 86400);
	json_object_set_new(root, "consistent_snapshot", json_true());
	json_object_set_new(root, "keys", keys);
	json_object_set_new(root, "roles", roles);
	r->roles[0].signed_obj = root;
	r->roles[1].signed_obj = new_signed(r, "timestamp", 86400);
	json_object_set_new(r->roles[1].signed_obj, "meta", json_object());
	r->roles[2].signed_obj = new_signed(r, "snapshot", 7 * 86400);
	json_object_set_new(r->roles[2].signed_obj, "meta", json_object());
	r->roles[3].signed_obj = new_signed(r, "targets", 90 * 86400);
	json_object_set_new(r->roles[3].signed_obj, "targets", json_object());

	f = trepo_publish_role(r, "root");
	must(otter_tuf_install_root(r->dir, f->data, f->len, &err), &err);
	f = trepo_publish_role(r, "targets");
	point_snapshot_at(r, "targets", f);
	f = trepo_publish_role(r, "snapshot");
	point_timestamp_at(r, f);
	trepo_publish_role(r, "timestamp");
	return r;
}

void trepo_free(trepo *r)
{
	char cmd[4200];

	if (!r)
		return;
	for (size_t i = 0; i < r->n_roles; i++) {
		free(r->roles[i].name);
		json_decref(r->roles[i].signed_obj);
	}
	for (size_t k = 0; k < n_all_keys; k++)
		otter_key_free(all_keys[k]);
	n_all_keys = 0;
	for (size_t i = 0; i < r->n_files; i++) {
		free(r->files[i].name);
		free(r->files[i].data);
	}
	trepo_clear_requests(r);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
	if (system(cmd) != 0)
		print_error("cannot remove %s\n", r->dir);
	free(r->dir);
	free(r->target_dir);
	free(r);
}
