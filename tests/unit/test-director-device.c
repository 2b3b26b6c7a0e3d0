/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The director's device operations over the database (src/lib/director/device.c and
 * metadata.c): per-device metadata (versions, device id, expiry, regeneration), manifests and
 * their counters, root import. Every case runs on SQLite and on PostgreSQL
 * (OTTER_TEST_PG_URL, started by tests/director/with-pg.py).
 */

#include "test-common.h"

#include <otter/json.h>

#include "lib/director/device.h"
#include "lib/director/manifest.h"
#include "lib/repo/tuf-repo.h"
#include "lib/tuf/tuf-metadata.h"
#include "util/cleanup.h"

#define NOW ((int64_t)1800000000)
#define DAY 86400

struct engine {
	const char *name;
	bool pg;
	const char *pg_url;
};

typedef struct fx {
	const struct engine *eng;
	char *dir;
	char url[4200];
	dir_db *db;
	dir_signer s;
	otter_key *ecu;
	char *ecu_pem;
	dir_who who;
} fx;

static struct engine sqlite_engine = { "sqlite", false, NULL };
static struct engine pg_engine = { "postgresql", true, NULL };

static otter_key *gen(otter_key_type t)
{
	otter_error e = OTTER_ERROR_INIT;
	otter_key *k = NULL;

	assert_ok(otter_key_generate(&k, t, &e));
	return k;
}

static int setup(void **state)
{
	const struct engine *eng = *state;
	otter_error e = OTTER_ERROR_INIT;
	fx *f = calloc(1, sizeof(*f));
	uint8_t *pem;
	size_t len;

	assert_non_null(f);
	f->eng = eng;
	if (eng->pg) {
		dir_db *db = NULL;
		if (!eng->pg_url) {
			free(f);
			skip();
		}
		snprintf(f->url, sizeof(f->url), "%s", eng->pg_url);
		assert_ok(dir_db_open(&db, f->url, &e));
		assert_ok(dir_db_exec_script(db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
					     &e));
		dir_db_close(db);
	} else {
		f->dir = test_tmpdir();
		snprintf(f->url, sizeof(f->url), "sqlite:%s/director.db", f->dir);
	}
	assert_ok(dir_db_open(&f->db, f->url, &e));
	assert_ok(dir_db_migrate(f->db, NULL, &e));
	f->s = (dir_signer){ gen(OTTER_KEY_ED25519), gen(OTTER_KEY_ED25519),
			     gen(OTTER_KEY_ECDSA_P256), 7 * DAY, 7 * DAY, DAY, 1 };
	f->ecu = gen(OTTER_KEY_ED25519);
	assert_ok(otter_key_public_pem(f->ecu, &pem, &len, &e));
	f->ecu_pem = (char *)pem;
	dir_ecu_spec spec = { "ecu-1", "hw-a", "ed25519", f->ecu_pem, true };
	assert_ok(dir_device_add(f->db, "dev-1", &spec, 1, NULL, 0, NOW, &e));
	strcpy(f->who.device_id, "dev-1");
	strcpy(f->who.serial, "ecu-1");
	f->who.primary = true;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	dir_db_close(f->db);
	otter_key_free(f->s.targets);
	otter_key_free(f->s.snapshot);
	otter_key_free(f->s.timestamp);
	otter_key_free(f->ecu);
	free(f->ecu_pem);
	if (f->dir) {
		rm_rf(f->dir);
		free(f->dir);
	}
	*state = (void *)f->eng;
	free(f);
	return 0;
}

static void exec(fx *f, const char *sql)
{
	otter_error e = OTTER_ERROR_INIT;
	assert_ok(dir_db_exec(f->db, sql, NULL, 0, NULL, NULL, &e));
}

/* Fetches a metadata file and parses it as role type t, checking the signature by key. */
static tuf_metadata *get(fx *f, const char *name, tuf_role_type t, const otter_key *key,
			 int64_t now)
{
	otter_error e = OTTER_ERROR_INIT;
	_cleanup_free_ uint8_t *data = NULL;
	tuf_metadata *md = NULL;
	dir_reply rep = { 0 };
	uint64_t version;
	size_t len;
	char keyid[OTTER_KEYID_HEX_LEN + 1];

	if (dir_device_metadata(f->db, &f->s, &f->who, name, now, &data, &len, &version, &rep,
				&e) != 0)
		print_error("%s: %s\n", name, e.msg);
	assert_non_null(data);
	assert_ok(tuf_metadata_parse(&md, t, data, len, name, &e));
	assert_int_equal(md->version, version);
	assert_ok(tuf_repo_keyid(key, keyid, NULL, &e));
	assert_int_equal(md->n_sigs, 1);
	assert_string_equal(md->sigs[0].keyid, keyid);
	assert_true(otter_key_verify(key, md->canon, md->canon_len, md->sigs[0].sig,
				     md->sigs[0].siglen));
	return md;
}

static void test_empty_targets_name_the_device(void **state)
{
	fx *f = *state;
	tuf_metadata *ts = get(f, "timestamp.json", TUF_TIMESTAMP, f->s.timestamp, NOW);
	tuf_metadata *sn = get(f, "1.snapshot.json", TUF_SNAPSHOT, f->s.snapshot, NOW);
	tuf_metadata *tg = get(f, "1.targets.json", TUF_TARGETS, f->s.targets, NOW);
	json_t *custom = json_object_get(tg->signed_obj, "custom");

	assert_int_equal(ts->snapshot_meta.version, 1);
	assert_non_null(ts->snapshot_meta.hashes);
	assert_int_equal(json_object_size(tg->targets), 0);
	assert_string_equal(json_string_value(json_object_get(custom, "device_id")), "dev-1");
	/* Short expiry: a day for the timestamp, a week for the others. */
	assert_int_equal(ts->expires, NOW + DAY);
	assert_int_equal(sn->expires, NOW + 7 * DAY);
	assert_int_equal(tg->expires, NOW + 7 * DAY);
	tuf_metadata_free(ts);
	tuf_metadata_free(sn);
	tuf_metadata_free(tg);
}

static uint64_t ts_version(fx *f, int64_t now)
{
	tuf_metadata *ts = get(f, "timestamp.json", TUF_TIMESTAMP, f->s.timestamp, now);
	uint64_t v = ts->version;

	tuf_metadata_free(ts);
	return v;
}

static int64_t stored(fx *f, const char *col)
{
	otter_error e = OTTER_ERROR_INIT;
	char sql[128];
	dir_db_rows *rows = NULL;
	int64_t v;

	snprintf(sql, sizeof(sql), "SELECT %s FROM device_metadata WHERE device_id = 'dev-1'", col);
	assert_ok(dir_db_exec(f->db, sql, NULL, 0, &rows, NULL, &e));
	assert_ok(dir_db_rows_int(rows, 0, 0, &v, &e));
	dir_db_rows_free(rows);
	return v;
}

static void test_versions_increase_only_on_change(void **state)
{
	fx *f = *state;

	assert_int_equal(ts_version(f, NOW), 1);
	/* Nothing changed: the stored bytes, no new version. */
	assert_int_equal(ts_version(f, NOW + 60), 1);
	assert_int_equal(ts_version(f, NOW + 3600), 1);
	/* An assignment: new targets, snapshot and timestamp. */
	exec(f, "INSERT INTO assignments (ecu_serial, device_id, correlation_id, target_path, "
		"target_length, target_hashes, status, created, updated) VALUES ('ecu-1', 'dev-1', "
		"'c1', 'fw/a.bin', 3, '{\"sha256\":"
		"\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}', "
		"'assigned', 0, 0)");
	exec(f, "UPDATE devices SET assign_gen = assign_gen + 1");
	assert_int_equal(ts_version(f, NOW + 3600), 2);
	assert_int_equal(stored(f, "targets_version"), 2);
	assert_int_equal(stored(f, "snapshot_version"), 2);
	{
		tuf_metadata *tg = get(f, "2.targets.json", TUF_TARGETS, f->s.targets, NOW);
		json_t *ent = json_object_get(tg->targets, "fw/a.bin");
		assert_non_null(ent);
		assert_string_equal(json_string_value(json_object_get(
					    json_object_get(json_object_get(json_object_get(
								    ent, "custom"),
								    "ecuIdentifiers"),
							    "ecu-1"),
					    "hardwareId")),
				    "hw-a");
		tuf_metadata_free(tg);
	}
	/* The old versions are gone; the assignment is being downloaded now. */
	{
		otter_error e = OTTER_ERROR_INIT;
		uint8_t *data = NULL;
		size_t len;
		uint64_t v;
		dir_reply rep = { 0 };
		assert_int_equal(dir_device_metadata(f->db, &f->s, &f->who, "1.targets.json", NOW,
						     &data, &len, &v, &rep, &e),
				 OTTER_E_NOT_FOUND);
		assert_int_equal(rep.status, 404);
		dir_db_rows *rows = NULL;
		assert_ok(dir_db_exec(f->db, "SELECT status FROM assignments", NULL, 0, &rows,
				      NULL, &e));
		assert_string_equal(dir_db_rows_text(rows, 0, 0), "downloading");
		dir_db_rows_free(rows);
	}
	/* Past half of the timestamp's life: only the timestamp is re-signed. */
	assert_int_equal(ts_version(f, NOW + DAY / 2 + 3700), 3);
	assert_int_equal(stored(f, "targets_version"), 2);
	assert_int_equal(stored(f, "snapshot_version"), 2);
	/* Past half of the targets' life: everything. */
	assert_int_equal(ts_version(f, NOW + 4 * DAY), 4);
	assert_int_equal(stored(f, "targets_version"), 3);
	assert_int_equal(stored(f, "targets_expires"), NOW + 4 * DAY + 7 * DAY);
	/* A new root (other online keys): everything re-signed once. */
	f->s.root_version = 2;
	assert_int_equal(ts_version(f, NOW + 4 * DAY), 5);
	assert_int_equal(ts_version(f, NOW + 4 * DAY), 5);
	assert_int_equal(stored(f, "targets_version"), 4);
}

static char *manifest_text(fx *f, int64_t counter, const char *device)
{
	otter_error e = OTTER_ERROR_INIT;
	_cleanup_(json_decrefp) json_t *rs = json_pack(
		"{s:s,s:{s:s,s:{s:i,s:{s:s}}},s:I}", "ecu_serial", "ecu-1", "installed_image",
		"filepath", "fw/a.bin", "fileinfo", "length", 3, "hashes", "sha256",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"report_counter", (json_int_t)counter);
	_cleanup_(json_decrefp) json_t *renv = NULL, *s = NULL, *env = NULL;

	assert_ok(dir_manifest_sign(rs, f->ecu, &renv, &e));
	s = json_pack("{s:s,s:s,s:{s:O}}", "device_id", device, "primary_ecu_serial", "ecu-1",
		      "ecu_version_manifests", "ecu-1", renv);
	assert_ok(dir_manifest_sign(s, f->ecu, &env, &e));
	return json_dumps(env, JSON_COMPACT);
}

static int64_t stored_counter(fx *f)
{
	otter_error e = OTTER_ERROR_INIT;
	dir_db_rows *rows = NULL;
	int64_t v;

	assert_ok(dir_db_exec(f->db, "SELECT report_counter FROM ecus WHERE serial = 'ecu-1'",
			      NULL, 0, &rows, NULL, &e));
	assert_ok(dir_db_rows_int(rows, 0, 0, &v, &e));
	dir_db_rows_free(rows);
	return v;
}

static int put(fx *f, const char *text, dir_reply *rep, otter_error *e)
{
	return dir_device_manifest(f->db, &f->who, (const uint8_t *)text, strlen(text), NOW, rep,
				   e);
}

static void test_manifest_counter_must_increase(void **state)
{
	fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	_cleanup_free_ char *m5 = manifest_text(f, 5, "dev-1"), *m4 = manifest_text(f, 4, "dev-1");
	_cleanup_free_ char *m6 = manifest_text(f, 6, "dev-1"), *other = manifest_text(f, 7, "dev-2");
	dir_reply rep = { 0 };

	assert_ok(put(f, m5, &rep, &e));
	assert_int_equal(rep.status, 204);
	assert_err(put(f, m5, &rep, &e), OTTER_E_ROLLBACK, &e, "replayed");
	assert_int_equal(rep.status, 409);
	otter_error_clear(&e);
	assert_err(put(f, m4, &rep, &e), OTTER_E_ROLLBACK, &e, NULL);
	otter_error_clear(&e);
	assert_err(put(f, other, &rep, &e), OTTER_E_STATE, &e, "dev-2");
	assert_int_equal(rep.status, 403);
	otter_error_clear(&e);
	assert_ok(put(f, m6, &rep, &e));
	{
		json_t *h = NULL;
		assert_ok(dir_device_history(f->db, "dev-1", 10, &h, &e));
		assert_int_equal(json_array_size(json_object_get(h, "manifests")), 2);
		json_decref(h);
	}
	assert_int_equal(stored_counter(f), 6);
}

/* ---- root import ---- */

/* A root of version v signed by signers, naming root key rk and the fixture's online keys. */
static uint8_t *make_root(fx *f, uint64_t v, const otter_key *rk, otter_key *const *signers,
			  size_t n, size_t *len)
{
	otter_error e = OTTER_ERROR_INIT;
	_cleanup_(json_decrefp) json_t *s = NULL, *env = NULL;
	const otter_key *role_keys[4] = { rk, f->s.timestamp, f->s.snapshot, f->s.targets };
	uint8_t *out = NULL;

	assert_ok(tuf_repo_signed_new(&s, TUF_ROOT, NOW + 365 * DAY, true, &e));
	assert_ok(tuf_repo_signed_set(s, v, NOW + 365 * DAY, &e));
	for (int t = 0; t < 4; t++) {
		char keyid[OTTER_KEYID_HEX_LEN + 1];
		assert_ok(tuf_repo_keys_add(json_object_get(s, "keys"), role_keys[t], keyid, &e));
		assert_ok(tuf_repo_role_add_keyid(tuf_repo_root_role(s, (tuf_role_type)t), keyid,
						  &e));
	}
	assert_ok(tuf_repo_envelope_new(&env, s, &e));
	for (size_t i = 0; i < n; i++)
		assert_ok(tuf_repo_sign(env, signers[i], NULL, &e));
	assert_ok(tuf_repo_serialize(env, &out, len, &e));
	return out;
}

static int import(fx *f, uint8_t *data, size_t len, otter_error *e)
{
	const uint8_t *files[1] = { data };
	int64_t v;

	return dir_root_import(f->db, files, &len, 1, f->s.targets, f->s.snapshot, f->s.timestamp,
			       NOW, &v, e);
}

static void test_root_import_chains(void **state)
{
	fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	otter_key *r1 = gen(OTTER_KEY_ED25519), *r2 = gen(OTTER_KEY_ED25519);
	size_t l1, l2, lbad, lgap;
	uint8_t *v1 = make_root(f, 1, r1, &r1, 1, &l1);
	uint8_t *bad2 = make_root(f, 2, r2, &r2, 1, &lbad); /* not signed by root 1's key */
	otter_key *both[2] = { r1, r2 };
	uint8_t *v2 = make_root(f, 2, r2, both, 2, &l2);
	uint8_t *gap = make_root(f, 4, r2, both, 2, &lgap);
	int64_t version = 0;

	assert_err(dir_root_check_keys(f->db, f->s.targets, f->s.snapshot, f->s.timestamp,
				       &version, &e),
		   OTTER_E_CONFIG, &e, "no director root");
	otter_error_clear(&e);
	assert_ok(import(f, v1, l1, &e));
	assert_ok(import(f, v1, l1, &e)); /* the same file again is fine */
	assert_err(import(f, bad2, lbad, &e), OTTER_E_SIGNATURE, &e, "previous root");
	otter_error_clear(&e);
	assert_err(import(f, gap, lgap, &e), OTTER_E_VERSION, &e, "expected version 2");
	otter_error_clear(&e);
	assert_ok(import(f, v2, l2, &e));
	assert_ok(dir_root_check_keys(f->db, f->s.targets, f->s.snapshot, f->s.timestamp,
				      &version, &e));
	assert_int_equal(version, 2);
	/* Another timestamp key than the root names: the server would sign unusable files. */
	{
		otter_key *other = gen(OTTER_KEY_ED25519);
		assert_err(dir_root_check_keys(f->db, f->s.targets, f->s.snapshot, other, &version,
					       &e),
			   OTTER_E_CONFIG, &e, "does not list");
		otter_key_free(other);
	}
	/* The root a device fetches is the stored file. */
	{
		_cleanup_free_ uint8_t *data = NULL;
		dir_reply rep = { 0 };
		uint64_t v;
		size_t len;
		assert_ok(dir_device_metadata(f->db, &f->s, &f->who, "2.root.json", NOW, &data,
					      &len, &v, &rep, &e));
		assert_int_equal(len, l2);
		assert_memory_equal(data, v2, l2);
	}
	free(v1);
	free(v2);
	free(bad2);
	free(gap);
	otter_key_free(r1);
	otter_key_free(r2);
}

#define ON(eng, fn)                                                                                \
	cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &eng##_engine)
#define CASES(eng)                                                                                 \
	ON(eng, test_empty_targets_name_the_device),                                               \
		ON(eng, test_versions_increase_only_on_change),                                    \
		ON(eng, test_manifest_counter_must_increase), ON(eng, test_root_import_chains)

int main(void)
{
	const char *url = getenv("OTTER_TEST_PG_URL");
	const struct CMUnitTest tests[] = { CASES(sqlite), CASES(pg) };

	pg_engine.pg_url = url && *url ? url : NULL;
	if (!pg_engine.pg_url)
		print_message("# OTTER_TEST_PG_URL not set: the PostgreSQL cases are skipped (meson "
			      "runs them through tests/director/with-pg.py)\n");
	return cmocka_run_group_tests_name("director-device", tests, NULL, NULL);
}
