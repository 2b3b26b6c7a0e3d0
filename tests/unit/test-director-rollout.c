/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Assignments and rollouts of the director (src/lib/director/rollout.c, admin.c, images.c):
 * every rule runs on SQLite (a fresh file) and on PostgreSQL (OTTER_TEST_PG_URL, a server
 * tests/director/with-pg.py starts; each case gets an empty public schema). The image
 * repository is a real signed TUF repository (tuf-repo-builder) written to a folder and read
 * through file:// by libotter's TUF client, as the director reads it over HTTP.
 *
 * The device side is played by plain SQL, as the server does it: registration inserts
 * devices and ECUs, a report sets assignments.status and calls dir_rollout_on_report in the
 * same transaction.
 */

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-common.h"
#include "test-fixtures.h"
#include "tuf-repo-builder.h"

#include "lib/director/admin.h"
#include "lib/director/db.h"
#include "lib/director/rollout-private.h"
#include "lib/director/rollout.h"
#include "otter-director/commands.h"
#include "util/cleanup.h"
#include "util/strutil.h"

#define NOW 1900000000
#define RELEASE "releases/acme/1.2.0.json"
#define RELEASE_DOC "{\"otter-release\":1,\"compatible\":\"acme\",\"version\":\"1.2.0\"}"

struct engine {
	const char *name;
	bool pg;
	const char *pg_url;
};

static struct engine sqlite_engine = { "sqlite", false, NULL };
static struct engine pg_engine = { "postgresql", true, NULL };

/* One signed image repository for the whole run, served from a folder. */
static struct image_repo {
	trepo *repo;
	char *dir;      /* the served copy */
	char url[4200]; /* file://DIR/metadata/ */
	char sha256[65];
} images;

struct fx {
	const struct engine *eng;
	char *dir;
	char url[4200];
	dir_db *db;
	dir_admin_env env;
};

#define check(r, e)                                                                                \
	do {                                                                                       \
		int _r = (r);                                                                      \
		if (_r != 0)                                                                       \
			print_error("%s: %d (%s): %s\n", #r, _r, otter_error_code_name(_r),        \
				    (e)->msg);                                                     \
		assert_int_equal(_r, 0);                                                           \
	} while (0)

/* ---- the image repository ---- */

static void serve_repo(trepo *r, const char *dir)
{
	for (size_t i = 0; i < r->n_files; i++) {
		_cleanup_free_ char *path = path_join(dir, r->files[i].name);
		char cmd[8400];

		assert_non_null(path);
		snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
		assert_int_equal(system(cmd), 0);
		tfx_write_file(path, r->files[i].data, r->files[i].len);
	}
}

static void add_release(trepo *r, const char *path, const char *doc)
{
	json_t *targets, *custom;
	json_error_t jerr;

	trepo_add_target(r, "targets", path, doc, strlen(doc));
	targets = json_object_get(trepo_signed(r, "targets"), "targets");
	custom = json_loads(doc, 0, &jerr);
	assert_non_null(custom);
	json_object_set_new(json_object_get(targets, path), "custom",
			    json_pack("{s:o}", "otter", custom));
}

static int setup_images(void **state)
{
	images.repo = trepo_new();
	add_release(images.repo, RELEASE, RELEASE_DOC);
	add_release(images.repo, "releases/acme/1.3.0.json",
		    "{\"otter-release\":1,\"compatible\":\"acme\",\"version\":\"1.3.0\"}");
	TREPO_RELEASE(images.repo, "targets");
	images.dir = test_tmpdir();
	serve_repo(images.repo, images.dir);
	snprintf(images.url, sizeof(images.url), "file://%s/metadata/", images.dir);
	otter_hash_buf_hex(OTTER_HASH_SHA256, RELEASE_DOC, strlen(RELEASE_DOC), images.sha256,
			   NULL);
	return 0;
}

static int teardown_images(void **state)
{
	rm_rf(images.dir);
	free(images.dir);
	trepo_free(images.repo);
	return 0;
}

/* ---- database fixtures ---- */

static dir_db *open_db(const char *url)
{
	otter_error e = OTTER_ERROR_INIT;
	dir_db *db = NULL;

	check(dir_db_open(&db, url, &e), &e);
	check(dir_db_migrate(db, NULL, &e), &e);
	return db;
}

static int setup_case(void **state)
{
	const struct engine *eng = *state;
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->eng = eng;
	if (eng->pg) {
		otter_error e = OTTER_ERROR_INIT;
		dir_db *db = NULL;

		if (!eng->pg_url) {
			free(f);
			skip();
		}
		snprintf(f->url, sizeof(f->url), "%s", eng->pg_url);
		check(dir_db_open(&db, f->url, &e), &e);
		check(dir_db_exec_script(db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public", &e),
		      &e);
		dir_db_close(db);
	} else {
		f->dir = test_tmpdir();
		snprintf(f->url, sizeof(f->url), "sqlite:%s/director.db", f->dir);
	}
	f->db = open_db(f->url);
	f->env = (dir_admin_env){ .db = f->db,
				  .image_metadata_url = images.url,
				  .image_metadata_dir = images.repo->dir,
				  .now = NOW };
	*state = f;
	return 0;
}

static int teardown_case(void **state)
{
	struct fx *f = *state;

	dir_db_close(f->db);
	if (f->dir) {
		rm_rf(f->dir);
		free(f->dir);
	}
	*state = (void *)f->eng;
	free(f);
	return 0;
}

static void exec(dir_db *db, const char *sql, const dir_db_param *p, size_t n)
{
	otter_error e = OTTER_ERROR_INIT;

	check(dir_db_exec(db, sql, p, n, NULL, NULL, &e), &e);
}

static int64_t qint(dir_db *db, const char *sql, const dir_db_param *p, size_t n)
{
	otter_error e = OTTER_ERROR_INIT;
	dir_db_rows *rows = NULL;
	int64_t v = -1;

	check(dir_db_exec(db, sql, p, n, &rows, NULL, &e), &e);
	assert_int_equal(dir_db_rows_count(rows), 1);
	check(dir_db_rows_int(rows, 0, 0, &v, &e), &e);
	dir_db_rows_free(rows);
	return v;
}

static int64_t qint1(dir_db *db, const char *sql, const char *arg)
{
	dir_db_param p = DIR_DB_S(arg);

	return qint(db, sql, &p, 1);
}

/*
 * Registers a device as the server does: the device row, a primary ECU "<id>-main" (hardware
 * id "main-board") and, with secondary, an ECU "<id>-modem" ("modem-v2"); tag (may be NULL).
 */
static void add_device(dir_db *db, const char *id, const char *tag, bool secondary)
{
	char serial[128], keyid[160];
	dir_db_param d[] = { DIR_DB_S(id), DIR_DB_I(NOW) };

	exec(db, "INSERT INTO devices (id, created) VALUES ($1, $2)", d, 2);
	for (int i = 0; i < (secondary ? 2 : 1); i++) {
		snprintf(serial, sizeof(serial), "%s-%s", id, i ? "modem" : "main");
		snprintf(keyid, sizeof(keyid), "key-%s", serial);
		dir_db_param e[] = { DIR_DB_S(serial), DIR_DB_S(id),
				     DIR_DB_S(i ? "modem-v2" : "main-board"), DIR_DB_I(i == 0),
				     DIR_DB_S(keyid) };
		exec(db,
		     "INSERT INTO ecus (serial, device_id, hardware_id, is_primary, key_type, "
		     "public_key, keyid) VALUES ($1, $2, $3, $4, 'ed25519', 'PEM', $5)",
		     e, ELEMENTSOF(e));
	}
	if (tag) {
		dir_db_param t[] = { DIR_DB_S(id), DIR_DB_S(tag) };
		exec(db, "INSERT INTO device_tags (device_id, tag) VALUES ($1, $2)", t, 2);
	}
}

static void add_devices(dir_db *db, const char *prefix, int n, const char *tag)
{
	char id[64];

	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s%03d", prefix, i);
		add_device(db, id, tag, false);
	}
}

struct report {
	const char *device;
	const char *status;
	const char *reason;
	int64_t now;
};

/* What the server does when a device reports on its assignment: one transaction. */
static int report_tx(dir_db *db, void *ud, otter_error *err)
{
	const struct report *rp = ud;
	dir_db_rows *rows = NULL;
	dir_db_param p[] = { DIR_DB_S(rp->status), DIR_DB_S(rp->reason), DIR_DB_I(rp->now),
			     DIR_DB_S(rp->device) };
	int r = dir_db_exec(db,
			    "UPDATE assignments SET status = $1, reason = $2, updated = $3 WHERE "
			    "device_id = $4 RETURNING rollout_id",
			    p, ELEMENTSOF(p), &rows, NULL, err);

	if (r == 0 && dir_db_rows_count(rows))
		r = dir_rollout_on_report(db, dir_db_rows_text(rows, 0, 0), rp->now, err);
	dir_db_rows_free(rows);
	return r;
}

static void report(dir_db *db, const char *device, const char *status, const char *reason)
{
	otter_error e = OTTER_ERROR_INIT;
	struct report rp = { device, status, reason, NOW + 10 };

	check(dir_db_transaction(db, report_tx, &rp, &e), &e);
}

static void report_n(dir_db *db, const char *prefix, int from, int to, const char *status,
		     const char *reason)
{
	char id[64];

	for (int i = from; i < to; i++) {
		snprintf(id, sizeof(id), "%s%03d", prefix, i);
		report(db, id, status, reason);
	}
}

/* Calls op with the JSON text req; returns the status, *resp the answer (or NULL). */
static int admin(struct fx *f, const char *op, const char *req, json_t **resp, otter_error *e)
{
	json_error_t jerr;
	json_t *j = json_loads(req, JSON_REJECT_DUPLICATES, &jerr);
	int status = -1;

	if (!j)
		print_error("bad test JSON %s: %s\n", req, jerr.text);
	assert_non_null(j);
	otter_error_clear(e);
	dir_admin_call(&f->env, op, j, resp, &status, e);
	json_decref(j);
	return status;
}

static json_t *admin_ok(struct fx *f, const char *op, const char *req)
{
	otter_error e = OTTER_ERROR_INIT;
	json_t *resp = NULL;
	int status = admin(f, op, req, &resp, &e);

	if (status != 200)
		print_error("%s %s: HTTP %d: %s\n", op, req, status, e.msg);
	assert_int_equal(status, 200);
	assert_non_null(resp);
	return resp;
}

static void admin_fails(struct fx *f, const char *op, const char *req, int status,
			const char *needle)
{
	otter_error e = OTTER_ERROR_INIT;
	json_t *resp = NULL;
	int got = admin(f, op, req, &resp, &e);

	if (got != status)
		print_error("%s %s: HTTP %d, expected %d: %s\n", op, req, got, status, e.msg);
	assert_int_equal(got, status);
	assert_null(resp);
	assert_true(e.code < 0);
	test_check_msg(e.msg, needle);
}

static int64_t jint(const json_t *o, const char *path)
{
	char buf[256], *save = NULL;
	const json_t *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *t = strtok_r(buf, ".", &save); t; t = strtok_r(NULL, ".", &save)) {
		if (json_is_array(v))
			v = json_array_get(v, (size_t)strtoul(t, NULL, 10));
		else
			v = json_object_get(v, t);
	}
	if (!json_is_integer(v))
		print_error("%s is not an integer in %s\n", path, json_dumps(o, JSON_COMPACT));
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	assert_non_null(s);
	return s;
}

static json_t *status_of(struct fx *f, const char *id)
{
	char req[128];

	snprintf(req, sizeof(req), "{\"id\": \"%s\"}", id);
	return admin_ok(f, "rollout.status", req);
}

static const char *state_of(struct fx *f, const char *id, int64_t *phase)
{
	static char state[32];
	json_t *s = status_of(f, id);

	snprintf(state, sizeof(state), "%s", jstr(s, "state"));
	if (phase)
		*phase = jint(s, "phase");
	json_decref(s);
	return state;
}

static int64_t gen_of(dir_db *db, const char *device)
{
	return qint1(db, "SELECT assign_gen FROM devices WHERE id = $1", device);
}

/* ---- direct assignments ---- */

static void test_rollout_assign_by_tag_primary_ecu(void **state)
{
	struct fx *f = *state;
	json_t *r;
	dir_db_rows *rows = NULL;
	otter_error e = OTTER_ERROR_INIT;

	add_device(f->db, "car-1", "beta", true);
	add_device(f->db, "car-2", "beta", false);
	add_device(f->db, "car-3", "stable", true);

	r = admin_ok(f, "assign", "{\"target\": \"" RELEASE "\", \"tags\": [\"beta\"]}");
	assert_int_equal(jint(r, "devices"), 2);
	assert_int_equal(jint(r, "ecus"), 2);
	assert_int_equal(jint(r, "length"), (int64_t)strlen(RELEASE_DOC));
	const char *corr = jstr(r, "correlation_id");
	assert_true(strncmp(corr, "assign-", 7) == 0 && strlen(corr) == 39);

	/* Only the primary ECUs, with what the image repository signed. */
	check(dir_db_exec(f->db,
			  "SELECT ecu_serial, target_path, target_length, target_hashes, "
			  "target_custom, status, correlation_id, rollout_id FROM assignments "
			  "ORDER BY ecu_serial",
			  NULL, 0, &rows, NULL, &e),
	      &e);
	assert_int_equal(dir_db_rows_count(rows), 2);
	assert_string_equal(dir_db_rows_text(rows, 0, 0), "car-1-main");
	assert_string_equal(dir_db_rows_text(rows, 1, 0), "car-2-main");
	assert_string_equal(dir_db_rows_text(rows, 0, 1), RELEASE);
	char len[32];
	snprintf(len, sizeof(len), "%zu", strlen(RELEASE_DOC));
	assert_string_equal(dir_db_rows_text(rows, 0, 2), len);
	assert_non_null(strstr(dir_db_rows_text(rows, 0, 3), images.sha256));
	assert_non_null(strstr(dir_db_rows_text(rows, 0, 4), "\"version\":\"1.2.0\""));
	assert_string_equal(dir_db_rows_text(rows, 0, 5), "assigned");
	assert_string_equal(dir_db_rows_text(rows, 0, 6), corr);
	assert_null(dir_db_rows_text(rows, 0, 7));
	dir_db_rows_free(rows);

	assert_int_equal(gen_of(f->db, "car-1"), 1);
	assert_int_equal(gen_of(f->db, "car-2"), 1);
	assert_int_equal(gen_of(f->db, "car-3"), 0);
	json_decref(r);

	/* By hardware id: that ECU of each device that has one; a new assignment replaces. */
	r = admin_ok(f, "assign",
		     "{\"target\": \"releases/acme/1.3.0.json\", \"hardware_ids\": [\"modem-v2\"]}");
	assert_int_equal(jint(r, "devices"), 2);
	assert_int_equal(jint(r, "ecus"), 2);
	json_decref(r);
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM assignments WHERE target_path = "
				     "'releases/acme/1.3.0.json' AND ecu_serial LIKE '%-modem'",
			      NULL, 0),
			 2);
	assert_int_equal(gen_of(f->db, "car-1"), 2);
	assert_int_equal(gen_of(f->db, "car-2"), 1);
	assert_int_equal(gen_of(f->db, "car-3"), 1);

	r = admin_ok(f, "assign",
		     "{\"target\": \"releases/acme/1.3.0.json\", \"devices\": [\"car-1\"]}");
	json_decref(r);
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM assignments", NULL, 0), 4);
	assert_int_equal(qint1(f->db, "SELECT COUNT(*) FROM assignments WHERE ecu_serial = $1 AND "
				      "target_path = 'releases/acme/1.3.0.json'",
			       "car-1-main"),
			 1);
}

static void test_rollout_assign_unsigned_target_refused(void **state)
{
	struct fx *f = *state;

	add_device(f->db, "car-1", NULL, false);
	admin_fails(f, "assign",
		    "{\"target\": \"releases/acme/6.6.6.json\", \"devices\": [\"car-1\"]}", 404,
		    "not signed by the image repository");
	admin_fails(f, "rollout.create",
		    "{\"id\": \"r1\", \"target\": \"releases/acme/6.6.6.json\", \"devices\": "
		    "[\"car-1\"]}",
		    404, "not signed by the image repository");
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM assignments", NULL, 0), 0);
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM rollouts", NULL, 0), 0);
	assert_int_equal(gen_of(f->db, "car-1"), 0);
}

/* An attacker who controls the image repository's server but not its keys lists a target:
 * the targets metadata does not verify, nothing is assigned. */
static void test_rollout_assign_forged_image_metadata_refused(void **state)
{
	struct fx *f = *state;
	trepo *evil = trepo_new();
	otter_key *k = trepo_new_key(OTTER_KEY_ED25519);
	_cleanup_free_ char *dir = test_tmpdir();
	char url[4200];

	add_device(f->db, "car-1", NULL, false);
	add_release(evil, "releases/acme/9.9.9.json", "{\"evil\":1}");
	trepo_set_signers(evil, "targets", &k, 1);
	TREPO_RELEASE(evil, "targets");
	serve_repo(evil, dir);
	snprintf(url, sizeof(url), "file://%s/metadata/", dir);
	f->env.image_metadata_url = url;
	f->env.image_metadata_dir = evil->dir;
	admin_fails(f, "assign",
		    "{\"target\": \"releases/acme/9.9.9.json\", \"devices\": [\"car-1\"]}", 502,
		    "targets");
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM assignments", NULL, 0), 0);

	/* Unreachable: 502 as well, naming the repository. */
	f->env.image_metadata_url = "file:///nonexistent/otter-images/metadata/";
	admin_fails(f, "assign", "{\"target\": \"" RELEASE "\", \"devices\": [\"car-1\"]}", 502,
		    "image repository");
	assert_int_equal(gen_of(f->db, "car-1"), 0);
	rm_rf(dir);
	trepo_free(evil); /* frees k too */
}

static void test_rollout_assign_unknown_device_refused(void **state)
{
	struct fx *f = *state;

	add_device(f->db, "car-1", NULL, false);
	admin_fails(f, "assign",
		    "{\"target\": \"" RELEASE "\", \"devices\": [\"car-1\", \"car-9\"]}", 404,
		    "'car-9' is not registered");
	admin_fails(f, "assign", "{\"target\": \"" RELEASE "\", \"tags\": [\"nobody\"]}", 404,
		    "no registered device");
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM assignments", NULL, 0), 0);
}

/* ---- rollouts ---- */

static void test_rollout_phases_advance_on_success_threshold(void **state)
{
	struct fx *f = *state;
	json_t *s;
	int64_t phase;

	add_devices(f->db, "d", 20, "fleet");
	s = admin_ok(f, "rollout.create",
		     "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"], "
		     "\"phases\": [2, \"50%\", \"100%\"], \"success_threshold\": 100}");
	assert_string_equal(jstr(s, "state"), "running");
	assert_int_equal(jint(s, "phase"), 1);
	assert_int_equal(jint(s, "phases.0.devices"), 2);
	assert_int_equal(jint(s, "phases.0.assigned"), 2);
	assert_int_equal(jint(s, "phases.1.devices"), 0);
	json_decref(s);
	/* The first phase takes the first devices in id order. */
	assert_int_equal(gen_of(f->db, "d000"), 1);
	assert_int_equal(gen_of(f->db, "d001"), 1);
	assert_int_equal(gen_of(f->db, "d002"), 0);
	assert_int_equal(qint1(f->db, "SELECT COUNT(*) FROM assignments WHERE rollout_id = $1 AND "
				      "correlation_id = (SELECT correlation_id FROM rollouts WHERE "
				      "id = $1)",
			       "r1"),
			 2);

	/* Downloading and one installed out of two: not yet (threshold 100%). */
	report(f->db, "d000", "downloading", NULL);
	report(f->db, "d001", "installed", NULL);
	s = status_of(f, "r1");
	assert_int_equal(jint(s, "phase"), 1);
	assert_int_equal(jint(s, "phases.0.downloading"), 1);
	assert_int_equal(jint(s, "phases.0.installed"), 1);
	json_decref(s);
	assert_int_equal(gen_of(f->db, "d002"), 0);

	report(f->db, "d000", "installed", NULL);
	s = status_of(f, "r1");
	assert_int_equal(jint(s, "phase"), 2);
	/* 50% of 20 is 10 devices in all: 8 more. */
	assert_int_equal(jint(s, "phases.1.devices"), 8);
	assert_int_equal(jint(s, "phases.1.assigned"), 8);
	assert_non_null(json_object_get(json_array_get(json_object_get(s, "phases"), 0),
					"completed"));
	json_decref(s);
	assert_int_equal(gen_of(f->db, "d009"), 1);
	assert_int_equal(gen_of(f->db, "d010"), 0);

	/* A repeated report of the same outcome does not advance again. */
	report(f->db, "d000", "installed", NULL);
	assert_string_equal(state_of(f, "r1", &phase), "running");
	assert_int_equal(phase, 2);

	report_n(f->db, "d", 2, 9, "installed", NULL);
	assert_string_equal(state_of(f, "r1", &phase), "running");
	assert_int_equal(phase, 2);
	report(f->db, "d009", "installed", NULL);
	assert_string_equal(state_of(f, "r1", &phase), "running");
	assert_int_equal(phase, 3);
	assert_int_equal(gen_of(f->db, "d019"), 1);
	report_n(f->db, "d", 10, 20, "installed", NULL);
	s = status_of(f, "r1");
	assert_string_equal(jstr(s, "state"), "completed");
	assert_int_equal(jint(s, "totals.installed"), 20);
	assert_int_equal(jint(s, "totals.devices"), 20);
	json_decref(s);
	/* Every device was assigned exactly once. */
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM devices WHERE assign_gen <> 1", NULL, 0),
			 0);
}

static void test_rollout_failure_threshold_pauses_and_resume_continues(void **state)
{
	struct fx *f = *state;
	json_t *s;
	int64_t phase;

	add_devices(f->db, "d", 20, "fleet");
	s = admin_ok(f, "rollout.create",
		     "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"], "
		     "\"phases\": [10, \"100%\"], \"success_threshold\": 90, "
		     "\"failure_threshold\": 20, \"min_reports\": 3}");
	json_decref(s);

	/* 2 failures of 2 reports: above 20%, but fewer reports than min_reports. */
	report(f->db, "d000", "failed", "E_HASH: image hash mismatch");
	report(f->db, "d001", "failed", "E_HASH: image hash mismatch");
	assert_string_equal(state_of(f, "r1", NULL), "running");
	/* 2 of 3 (67%) > 20%: pauses by itself. */
	report(f->db, "d002", "failed", "E_SPACE: no space left on /data");
	s = status_of(f, "r1");
	assert_string_equal(jstr(s, "state"), "paused");
	assert_non_null(strstr(jstr(s, "state_reason"), "failure rate 3/3"));
	assert_int_equal(jint(s, "phases.0.failed"), 3);
	/* Reasons grouped with counts, most frequent first. */
	json_t *reasons = json_object_get(json_array_get(json_object_get(s, "phases"), 0),
					  "failure_reasons");
	assert_int_equal(json_array_size(reasons), 2);
	assert_string_equal(jstr(json_array_get(reasons, 0), "reason"),
			    "E_HASH: image hash mismatch");
	assert_int_equal(jint(json_array_get(reasons, 0), "count"), 2);
	assert_int_equal(jint(json_array_get(reasons, 1), "count"), 1);
	json_decref(s);

	/* While paused, success does not advance the rollout. */
	report_n(f->db, "d", 3, 10, "installed", NULL);
	assert_string_equal(state_of(f, "r1", &phase), "paused");
	assert_int_equal(phase, 1);
	assert_int_equal(gen_of(f->db, "d010"), 0);
	admin_fails(f, "rollout.pause", "{\"id\": \"r1\"}", 409, "it is paused");

	/* Resume: the failure rule looks at new reports only; 7 of 10 installed < 90%. */
	s = admin_ok(f, "rollout.resume", "{\"id\": \"r1\"}");
	assert_string_equal(jstr(s, "state"), "running");
	assert_int_equal(jint(s, "failure_window.failed"), 0);
	json_decref(s);
	assert_string_equal(state_of(f, "r1", &phase), "running");
	assert_int_equal(phase, 1);

	/* Retry the failed ones: two install, 9 of 10 >= 90%: next phase. */
	s = admin_ok(f, "rollout.retry-failed", "{\"id\": \"r1\"}");
	assert_int_equal(jint(s, "retried_now"), 3);
	json_decref(s);
	report(f->db, "d000", "installed", NULL);
	assert_int_equal(gen_of(f->db, "d010"), 0);
	report(f->db, "d001", "installed", NULL);
	assert_string_equal(state_of(f, "r1", &phase), "running");
	assert_int_equal(phase, 2);
	assert_int_equal(gen_of(f->db, "d010"), 1);
}

static void test_rollout_manual_pause_stops_advance(void **state)
{
	struct fx *f = *state;
	int64_t phase;

	add_devices(f->db, "d", 4, "fleet");
	json_decref(admin_ok(f, "rollout.create",
			     "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"], "
			     "\"phases\": [1, \"100%\"]}"));
	json_decref(admin_ok(f, "rollout.pause", "{\"id\": \"r1\"}"));
	report(f->db, "d000", "installed", NULL);
	assert_string_equal(state_of(f, "r1", &phase), "paused");
	assert_int_equal(phase, 1);
	/* Resume re-evaluates at once: the phase is done. */
	json_decref(admin_ok(f, "rollout.resume", "{\"id\": \"r1\"}"));
	assert_string_equal(state_of(f, "r1", &phase), "running");
	assert_int_equal(phase, 2);
	assert_int_equal(gen_of(f->db, "d003"), 1);
	admin_fails(f, "rollout.resume", "{\"id\": \"r1\"}", 409, "it is running");
	admin_fails(f, "rollout.pause", "{\"id\": \"nope\"}", 404, "no rollout 'nope'");
}

static void test_rollout_cancel_withdraws_undelivered(void **state)
{
	struct fx *f = *state;
	json_t *s;

	add_devices(f->db, "d", 5, "fleet");
	json_decref(admin_ok(f, "rollout.create",
			     "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"]}"));
	report(f->db, "d000", "downloading", NULL);
	report(f->db, "d001", "installed", NULL);
	s = admin_ok(f, "rollout.cancel", "{\"id\": \"r1\"}");
	assert_string_equal(jstr(s, "state"), "cancelled");
	assert_int_equal(jint(s, "withdrawn_now"), 3);
	assert_int_equal(jint(s, "totals.withdrawn"), 3);
	assert_int_equal(jint(s, "totals.downloading"), 1);
	assert_int_equal(jint(s, "totals.installed"), 1);
	json_decref(s);
	/* The undelivered rows are gone and those devices' metadata must be re-signed. */
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM assignments", NULL, 0), 2);
	assert_int_equal(gen_of(f->db, "d002"), 2);
	assert_int_equal(gen_of(f->db, "d000"), 1);
	assert_int_equal(gen_of(f->db, "d001"), 1);
	/* A late report of the one in flight is recorded; nothing restarts. */
	report(f->db, "d000", "installed", NULL);
	assert_string_equal(state_of(f, "r1", NULL), "cancelled");
	admin_fails(f, "rollout.resume", "{\"id\": \"r1\"}", 409, "it is cancelled");
	admin_fails(f, "rollout.cancel", "{\"id\": \"r1\"}", 409, "it is cancelled");
	admin_fails(f, "rollout.retry-failed", "{\"id\": \"r1\"}", 409, "it is cancelled");
	/* Its devices are free for a new rollout. */
	json_decref(admin_ok(f, "rollout.create",
			     "{\"id\": \"r2\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"]}"));
}

static void test_rollout_device_cap(void **state)
{
	struct fx *f = *state;
	json_t *s;

	add_devices(f->db, "d", 10, "fleet");
	s = admin_ok(f, "rollout.create",
		     "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"], "
		     "\"phases\": [\"50%\", \"100%\"], \"device_cap\": 3}");
	assert_int_equal(jint(s, "phases.0.devices"), 3);
	assert_int_equal(jint(s, "device_cap"), 3);
	json_decref(s);
	report_n(f->db, "d", 0, 3, "installed", NULL);
	s = status_of(f, "r1");
	/* Phase 2 is also capped at 3: nothing more to take, done. */
	assert_string_equal(jstr(s, "state"), "completed");
	assert_int_equal(jint(s, "totals.devices"), 3);
	json_decref(s);
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM assignments", NULL, 0), 3);
	assert_int_equal(gen_of(f->db, "d003"), 0);
}

/* A device the filter selects but that has no ECU the rollout would assign never joins
 * (it could never install, and would hold a phase back). */
static void test_rollout_skips_devices_without_target_ecu(void **state)
{
	struct fx *f = *state;
	json_t *s;

	add_devices(f->db, "d", 2, "fleet");
	dir_db_param d[] = { DIR_DB_S("odd"), DIR_DB_I(NOW) };
	exec(f->db, "INSERT INTO devices (id, created) VALUES ($1, $2)", d, 2);
	exec(f->db,
	     "INSERT INTO ecus (serial, device_id, hardware_id, is_primary, key_type, public_key, "
	     "keyid) VALUES ('odd-aux', 'odd', 'aux', 0, 'ed25519', 'PEM', 'key-odd-aux')",
	     NULL, 0);
	exec(f->db, "INSERT INTO device_tags (device_id, tag) VALUES ('odd', 'fleet')", NULL, 0);
	s = admin_ok(f, "rollout.create",
		     "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"], "
		     "\"success_threshold\": 100}");
	assert_int_equal(jint(s, "phases.0.devices"), 2);
	json_decref(s);
	assert_int_equal(gen_of(f->db, "odd"), 0);
	report_n(f->db, "d", 0, 2, "installed", NULL);
	assert_string_equal(state_of(f, "r1", NULL), "completed");
}

static int register_tx(dir_db *db, void *ud, otter_error *err)
{
	return dir_rollout_on_register(db, ud, NOW + 20, err);
}

static void register_late(struct fx *f, const char *id, const char *tag)
{
	otter_error e = OTTER_ERROR_INIT;

	add_device(f->db, id, tag, false);
	check(dir_db_transaction(f->db, register_tx, (void *)id, &e), &e);
}

static void test_rollout_late_joiners(void **state)
{
	struct fx *f = *state;
	json_t *s;

	add_devices(f->db, "d", 4, "fleet");
	json_decref(admin_ok(f, "rollout.create",
			     "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"], "
			     "\"phases\": [3, \"100%\"], \"success_threshold\": 100}"));
	/* Phase 1 holds its 3 devices: a new one waits for the next phase. */
	register_late(f, "late-1", "fleet");
	assert_int_equal(gen_of(f->db, "late-1"), 0);
	/* A device the filter does not select never joins. */
	register_late(f, "other-1", "lab");
	assert_int_equal(gen_of(f->db, "other-1"), 0);

	report_n(f->db, "d", 0, 3, "installed", NULL);
	s = status_of(f, "r1");
	assert_int_equal(jint(s, "phase"), 2);
	/* 100% now: d003 and the late device that waited. */
	assert_int_equal(jint(s, "phases.1.devices"), 2);
	json_decref(s);
	assert_int_equal(gen_of(f->db, "late-1"), 1);

	/* During the last (100%) phase a new device joins it at once. */
	register_late(f, "late-2", "fleet");
	assert_int_equal(gen_of(f->db, "late-2"), 1);
	s = status_of(f, "r1");
	assert_int_equal(jint(s, "phases.1.devices"), 3);
	json_decref(s);
	assert_int_equal(qint1(f->db, "SELECT phase FROM assignments WHERE device_id = $1",
			       "late-2"),
			 2);
	/* Registering again (tags changed) does not assign twice. */
	otter_error e = OTTER_ERROR_INIT;
	check(dir_db_transaction(f->db, register_tx, (void *)"late-2", &e), &e);
	assert_int_equal(gen_of(f->db, "late-2"), 1);
}

static void test_rollout_late_joiner_fills_current_phase(void **state)
{
	struct fx *f = *state;

	add_devices(f->db, "d", 2, "fleet");
	json_decref(admin_ok(f, "rollout.create",
			     "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"], "
			     "\"phases\": [5, \"100%\"]}"));
	register_late(f, "late-1", "fleet");
	assert_int_equal(gen_of(f->db, "late-1"), 1);
	assert_int_equal(qint1(f->db, "SELECT phase FROM rollout_devices WHERE device_id = $1",
			       "late-1"),
			 1);
	/* A paused rollout takes nobody. */
	json_decref(admin_ok(f, "rollout.pause", "{\"id\": \"r1\"}"));
	register_late(f, "late-2", "fleet");
	assert_int_equal(gen_of(f->db, "late-2"), 0);
}

static void test_rollout_second_active_rollout_refused(void **state)
{
	struct fx *f = *state;

	add_devices(f->db, "d", 3, "fleet");
	json_decref(admin_ok(f, "rollout.create",
			     "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"]}"));
	admin_fails(f, "rollout.create",
		    "{\"id\": \"r2\", \"target\": \"releases/acme/1.3.0.json\", \"devices\": "
		    "[\"d001\"]}",
		    409, "'d001' is in rollout 'r1'");
	admin_fails(f, "rollout.create",
		    "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"]}", 409,
		    "exists already");
	/* A direct assignment takes the device out of the rollout (superseded). */
	json_decref(admin_ok(f, "assign",
			     "{\"target\": \"releases/acme/1.3.0.json\", \"devices\": [\"d001\"]}"));
	json_t *s = status_of(f, "r1");
	assert_int_equal(jint(s, "totals.superseded"), 1);
	assert_int_equal(jint(s, "totals.assigned"), 2);
	json_decref(s);
	/* The other two installing completes the rollout (the superseded one does not count). */
	report(f->db, "d000", "installed", NULL);
	report(f->db, "d002", "installed", NULL);
	assert_string_equal(state_of(f, "r1", NULL), "completed");
}

/* ---- concurrency ---- */

struct racer {
	const char *url;
	pthread_barrier_t *start;
	int dir; /* 0: ascending serials, 1: descending */
	bool reported; /* set by the transaction that committed last */
	int reports;
	int failures;
	char msg[512];
};

static int race_tx(dir_db *db, void *ud, otter_error *err)
{
	struct racer *rc = ud;
	dir_db_rows *rows = NULL;
	int r = dir_db_exec(db,
			    rc->dir ? "SELECT device_id FROM assignments WHERE status = 'assigned' "
				      "ORDER BY ecu_serial DESC LIMIT 1"
				    : "SELECT device_id FROM assignments WHERE status = 'assigned' "
				      "ORDER BY ecu_serial LIMIT 1",
			    NULL, 0, &rows, NULL, err);
	struct report rp = { NULL, "installed", NULL, NOW + 30 };

	/* A retried run starts over: count only what the committed run did. */
	rc->reported = false;
	if (r == 0 && dir_db_rows_count(rows)) {
		rp.device = dir_db_rows_text(rows, 0, 0);
		r = report_tx(db, &rp, err);
		rc->reported = r == 0;
	}
	dir_db_rows_free(rows);
	return r;
}

static void *racer_main(void *arg)
{
	struct racer *rc = arg;
	otter_error e = OTTER_ERROR_INIT;
	dir_db *db = NULL;

	if (dir_db_open(&db, rc->url, &e) < 0) {
		snprintf(rc->msg, sizeof(rc->msg), "%s", e.msg);
		rc->failures++;
		pthread_barrier_wait(rc->start);
		return NULL;
	}
	pthread_barrier_wait(rc->start);
	for (int i = 0; i < 400; i++) {
		otter_error_clear(&e);
		if (dir_db_transaction(db, race_tx, rc, &e) < 0) {
			snprintf(rc->msg, sizeof(rc->msg), "%s", e.msg);
			rc->failures++;
		} else if (rc->reported) {
			rc->reports++;
		}
		/* Outside the transaction: lets the other connection in (SQLite's busy
		 * handler sleeps, so a tight loop would starve it). */
		usleep(200);
	}
	dir_db_close(db);
	return NULL;
}

#define RACERS 4

/* Four connections report at once: every phase starts once, every device is assigned once. */
static void test_rollout_racing_reports_advance_once(void **state)
{
	struct fx *f = *state;
	pthread_barrier_t start;
	struct racer rc[RACERS];
	pthread_t t[RACERS];
	int reports = 0;
	json_t *s;

	for (int i = 0; i < RACERS; i++)
		rc[i] = (struct racer){ .url = f->url, .start = &start, .dir = i & 1 };
	assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
	add_devices(f->db, "d", 100, "fleet");
	json_decref(admin_ok(f, "rollout.create",
			     "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"fleet\"], "
			     "\"phases\": [25, 50, 75, 100], \"success_threshold\": 50}"));
	for (int i = 0; i < RACERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, racer_main, &rc[i]), 0);
	for (int i = 0; i < RACERS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < RACERS; i++) {
		reports += rc[i].reports;
		print_message("# racer %d: %d reports\n", i, rc[i].reports);
		if (rc[i].failures)
			print_error("racer %d: %d failures, last: %s\n", i, rc[i].failures,
				    rc[i].msg);
		assert_int_equal(rc[i].failures, 0);
	}
	/* Each committed report moved one assigned row to installed: 100 in all, however the
	 * connections shared them (one may be starved; usually all take part). */
	assert_int_equal(reports, 100);
	s = status_of(f, "r1");
	assert_string_equal(jstr(s, "state"), "completed");
	for (size_t p = 0; p < 4; p++) {
		json_t *ph = json_array_get(json_object_get(s, "phases"), p);

		assert_int_equal(jint(ph, "devices"), 25);
		assert_true(json_is_integer(json_object_get(ph, "started")));
	}
	json_decref(s);
	/* Each device joined once and its metadata was marked for re-signing once. */
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM rollout_devices", NULL, 0), 100);
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM devices WHERE assign_gen = 1", NULL, 0),
			 100);
	assert_int_equal(qint(f->db, "SELECT batch FROM rollouts", NULL, 0), 4);
}

/* ---- scale ---- */

static void test_rollout_many_devices_set_based(void **state)
{
	struct fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	json_t *s;

	/* 10,000 devices in three statements (the generate_series/recursive CTE both know). */
	check(dir_db_exec_script(
		      f->db,
		      "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)"
		      " INSERT INTO devices (id, created) SELECT 'bulk-' || CAST(i AS TEXT), 1 FROM n;"
		      "INSERT INTO ecus (serial, device_id, hardware_id, is_primary, key_type,"
		      " public_key, keyid) SELECT id || '-main', id, 'main-board', 1, 'ed25519',"
		      " 'PEM', 'key-' || id FROM devices;"
		      "INSERT INTO device_tags (device_id, tag) SELECT id, 'bulk' FROM devices",
		      &e),
	      &e);
	s = admin_ok(f, "rollout.create",
		     "{\"id\": \"big\", \"target\": \"" RELEASE "\", \"tags\": [\"bulk\"], "
		     "\"phases\": [\"1%\", \"100%\"]}");
	assert_int_equal(jint(s, "phases.0.devices"), 100);
	json_decref(s);
	/* Install the first phase in one statement, as 100 reports would, then evaluate. */
	exec(f->db, "UPDATE assignments SET status = 'installed' WHERE rollout_id = 'big'", NULL, 0);
	report(f->db, "bulk-0", "installed", NULL);
	s = status_of(f, "big");
	assert_int_equal(jint(s, "phase"), 2);
	assert_int_equal(jint(s, "totals.devices"), 10000);
	assert_int_equal(jint(s, "phases.1.assigned"), 9900);
	json_decref(s);
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM assignments", NULL, 0), 10000);
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM devices WHERE assign_gen = 1", NULL, 0),
			 10000);

	/* A direct assignment to all of them: one set as well. */
	s = admin_ok(f, "assign", "{\"target\": \"releases/acme/1.3.0.json\", \"tags\": [\"bulk\"]}");
	assert_int_equal(jint(s, "devices"), 10000);
	assert_int_equal(jint(s, "ecus"), 10000);
	json_decref(s);
	s = status_of(f, "big");
	assert_int_equal(jint(s, "totals.superseded"), 9900);
	assert_int_equal(jint(s, "totals.installed"), 100);
	json_decref(s);
}

/* ---- views ---- */

static void test_rollout_fleet_and_list(void **state)
{
	struct fx *f = *state;
	json_t *r, *d;

	add_device(f->db, "car-1", "beta", true);
	add_device(f->db, "car-2", "beta", false);
	add_device(f->db, "car-3", "stable", false);
	dir_db_param ip[] = { DIR_DB_S("car-3-main") };
	exec(f->db,
	     "UPDATE ecus SET installed_path = 'images/acme/1.1.0/rootfs', installed_length = 42, "
	     "installed_hashes = '{\"sha256\":\"ab\"}', installed_at = 5 WHERE serial = $1",
	     ip, 1);
	json_decref(admin_ok(f, "rollout.create",
			     "{\"id\": \"r1\", \"target\": \"" RELEASE "\", \"tags\": [\"beta\"]}"));

	r = admin_ok(f, "fleet", "{\"limit\": 2}");
	assert_int_equal(jint(r, "total"), 3);
	assert_int_equal(json_array_size(json_object_get(r, "devices")), 2);
	d = json_array_get(json_object_get(r, "devices"), 0);
	assert_string_equal(jstr(d, "id"), "car-1");
	assert_int_equal(json_array_size(json_object_get(d, "ecus")), 2);
	json_t *ecu = json_array_get(json_object_get(d, "ecus"), 0);
	assert_string_equal(jstr(ecu, "serial"), "car-1-main");
	json_t *asg = json_object_get(ecu, "assignment");
	assert_string_equal(jstr(asg, "target"), RELEASE);
	assert_string_equal(jstr(asg, "rollout"), "r1");
	assert_string_equal(jstr(asg, "status"), "assigned");
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(d, "ecus"), 1),
						 "assignment")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(d, "tags"), 0)),
			    "beta");
	json_decref(r);

	r = admin_ok(f, "fleet", "{\"limit\": 2, \"offset\": 2}");
	d = json_array_get(json_object_get(r, "devices"), 0);
	assert_string_equal(jstr(d, "id"), "car-3");
	json_t *inst = json_object_get(json_array_get(json_object_get(d, "ecus"), 0), "installed");
	assert_string_equal(jstr(inst, "path"), "images/acme/1.1.0/rootfs");
	assert_int_equal(jint(inst, "length"), 42);
	assert_string_equal(jstr(json_object_get(inst, "hashes"), "sha256"), "ab");
	json_decref(r);

	r = admin_ok(f, "fleet", "{\"tag\": \"stable\"}");
	assert_int_equal(jint(r, "total"), 1);
	json_decref(r);
	r = admin_ok(f, "fleet", "{\"hardware_id\": \"modem-v2\"}");
	assert_int_equal(jint(r, "total"), 1);
	assert_string_equal(jstr(json_array_get(json_object_get(r, "devices"), 0), "id"), "car-1");
	json_decref(r);

	r = admin_ok(f, "rollout.list", "{}");
	assert_int_equal(jint(r, "total"), 1);
	assert_string_equal(jstr(json_array_get(json_object_get(r, "rollouts"), 0), "id"), "r1");
	assert_int_equal(jint(r, "rollouts.0.devices"), 2);
	json_decref(r);
	r = admin_ok(f, "rollout.list", "{\"state\": \"paused\"}");
	assert_int_equal(jint(r, "total"), 0);
	json_decref(r);
}

/* ---- request validation (engine independent) ---- */

static void test_rollout_admin_rejects_bad_requests(void **state)
{
	struct fx *f = *state;
	char big[200000];
	size_t n = 0;

	add_device(f->db, "car-1", NULL, false);
	admin_fails(f, "assign", "{\"target\": \"" RELEASE "\", \"devices\": [\"car-1\"], "
		    "\"device\": \"x\"}", 400, "unknown member \"device\"");
	admin_fails(f, "assign", "{\"devices\": [\"car-1\"]}", 400, "lacks \"target\"");
	admin_fails(f, "assign", "{\"target\": \"" RELEASE "\"}", 400, "select devices");
	admin_fails(f, "assign", "{\"target\": \"../etc/passwd\", \"devices\": [\"car-1\"]}", 400,
		    "relative target path");
	admin_fails(f, "assign", "{\"target\": \"" RELEASE "\", \"devices\": [\"car 1\"]}", 400,
		    "not valid");
	admin_fails(f, "assign", "{\"target\": \"" RELEASE "\", \"devices\": [\"c\\u0001\"]}", 400,
		    "not valid");
	admin_fails(f, "assign", "{\"target\": \"" RELEASE "\", \"devices\": \"car-1\"}", 400,
		    "array of strings");
	admin_fails(f, "assign", "{\"target\": \"" RELEASE "\", \"devices\": []}", 400, "empty");
	admin_fails(f, "assign", "{\"target\": \"" RELEASE "\", \"devices\": [1]}", 400,
		    "not valid");
	admin_fails(f, "assign",
		    "{\"target\": \"" RELEASE "\", \"devices\": [\"car-1\", \"car-1\"]}", 400,
		    "twice");
	admin_fails(f, "assign", "{\"target\": 7, \"devices\": [\"car-1\"]}", 400,
		    "must be a string");
	admin_fails(f, "assign", "[1]", 400, "JSON object");
	admin_fails(f, "rollout.create",
		    "{\"id\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
		    " \"target\": \"" RELEASE "\", \"devices\": [\"car-1\"]}",
		    400, "not valid");
	admin_fails(f, "rollout.create",
		    "{\"id\": \"r\", \"target\": \"" RELEASE "\", \"devices\": [\"car-1\"], "
		    "\"phases\": [\"50%\", \"10%\"]}",
		    400, "cumulative");
	admin_fails(f, "rollout.create",
		    "{\"id\": \"r\", \"target\": \"" RELEASE "\", \"devices\": [\"car-1\"], "
		    "\"phases\": [\"101%\"]}",
		    400, "phase 1");
	admin_fails(f, "rollout.create",
		    "{\"id\": \"r\", \"target\": \"" RELEASE "\", \"devices\": [\"car-1\"], "
		    "\"phases\": [\"-5\"]}",
		    400, "phase 1");
	admin_fails(f, "rollout.create",
		    "{\"id\": \"r\", \"target\": \"" RELEASE "\", \"devices\": [\"car-1\"], "
		    "\"phases\": []}",
		    400, "1 to 32 phases");
	admin_fails(f, "rollout.create",
		    "{\"id\": \"r\", \"target\": \"" RELEASE "\", \"devices\": [\"car-1\"], "
		    "\"success_threshold\": 0}",
		    400, "from 1 to 100");
	admin_fails(f, "rollout.create",
		    "{\"id\": \"r\", \"target\": \"" RELEASE "\", \"devices\": [\"car-1\"], "
		    "\"failure_threshold\": 101}",
		    400, "from 0 to 100");
	admin_fails(f, "rollout.create",
		    "{\"id\": \"r\", \"target\": \"" RELEASE "\", \"devices\": [\"car-1\"], "
		    "\"device_cap\": \"3\"}",
		    400, "integer");
	admin_fails(f, "rollout.status", "{}", 400, "lacks \"id\"");
	admin_fails(f, "rollout.status", "{\"id\": \"r\", \"x\": 1}", 400, "unknown member");
	admin_fails(f, "rollout.status", "{\"id\": \"nope\"}", 404, "no rollout 'nope'");
	admin_fails(f, "rollout.list", "{\"state\": \"weird\"}", 400, "\"state\" must be");
	admin_fails(f, "fleet", "{\"limit\": 1001}", 400, "from 1 to 1000");
	admin_fails(f, "fleet", "{\"offset\": -1}", 400, "\"offset\"");
	admin_fails(f, "rollout.explode", "{}", 404, "unknown admin operation");

	/* More device ids than a request may carry. */
	n += (size_t)snprintf(big + n, sizeof(big) - n, "{\"target\": \"%s\", \"devices\": [",
			      RELEASE);
	for (unsigned i = 0; i <= DIR_FILTER_MAX_IDS; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"d%u\"", i ? "," : "", i);
	snprintf(big + n, sizeof(big) - n, "]}");
	admin_fails(f, "assign", big, 400, "at most 10000");
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM assignments", NULL, 0), 0);
	assert_int_equal(qint(f->db, "SELECT COUNT(*) FROM rollouts", NULL, 0), 0);
}


/* ---- the commands (cmd-rollout.c) ---- */

/* Runs a command with argv (NULL-terminated) and returns its status; out gets its stdout. */
static int run_cli(struct fx *f, int (*cmd)(const dir_admin_env *, int, char **), char *out,
		   size_t outsize, const char *const *args)
{
	char path[4200], *argv[64];
	int argc = 0, saved, fd, rc;
	size_t len;
	uint8_t *data;

	/* getopt permutes the pointers, never the strings. */
	for (; args[argc]; argc++) {
		assert_true(argc < 63);
		argv[argc] = (char *)args[argc];
	}
	argv[argc] = NULL;
	snprintf(path, sizeof(path), "%s/stdout", f->dir);
	fflush(stdout);
	saved = dup(1);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 1);
	close(fd);
	rc = cmd(&f->env, argc, argv);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	data = tfx_read_all(path, &len);
	assert_true(len < outsize);
	memcpy(out, data, len);
	out[len] = 0;
	free(data);
	return rc;
}

#define ARGV(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_rollout_cli_commands(void **state)
{
	struct fx *f = *state;
	static char out[65536];
	json_error_t jerr;
	json_t *j;

	add_devices(f->db, "d", 4, "fleet");
	assert_int_equal(run_cli(f, dir_cmd_rollout, out, sizeof(out),
				 ARGV("rollout", "create", "r1", "--target", RELEASE, "--tag",
				      "fleet", "--phases", "1,50%,100%", "--success-threshold",
				      "100", "--failure-threshold", "0", "--min-reports", "1")),
			 0);
	assert_non_null(strstr(out, "rollout r1: running, phase 1 of 3"));
	assert_non_null(strstr(out, "50%"));

	report(f->db, "d000", "failed", "E_BOOT: new slot did not boot");
	assert_int_equal(run_cli(f, dir_cmd_rollout, out, sizeof(out),
				 ARGV("rollout", "status", "--json", "r1")),
			 0);
	j = json_loads(out, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(jstr(j, "state"), "paused");
	json_decref(j);
	assert_int_equal(run_cli(f, dir_cmd_rollout, out, sizeof(out),
				 ARGV("rollout", "status", "r1")),
			 0);
	assert_non_null(strstr(out, "1 x E_BOOT: new slot did not boot"));
	assert_non_null(strstr(out, "why: failure rate 1/1"));

	assert_int_equal(run_cli(f, dir_cmd_rollout, out, sizeof(out),
				 ARGV("rollout", "retry-failed", "r1")),
			 0);
	assert_non_null(strstr(out, "assigned again to 1 devices"));
	assert_int_equal(run_cli(f, dir_cmd_rollout, out, sizeof(out),
				 ARGV("rollout", "resume", "r1")),
			 0);
	assert_int_equal(run_cli(f, dir_cmd_rollout, out, sizeof(out),
				 ARGV("rollout", "list", "--state", "running")),
			 0);
	assert_non_null(strstr(out, "r1"));
	assert_non_null(strstr(out, "(1 of 1)"));

	assert_int_equal(run_cli(f, dir_cmd_assign, out, sizeof(out),
				 ARGV("assign", "--target", "releases/acme/1.3.0.json", "--device",
				      "d003", "--json")),
			 0);
	j = json_loads(out, 0, &jerr);
	assert_non_null(j);
	assert_int_equal(jint(j, "devices"), 1);
	json_decref(j);

	assert_int_equal(run_cli(f, dir_cmd_fleet, out, sizeof(out),
				 ARGV("fleet", "--tag", "fleet", "--limit", "2", "--offset", "2")),
			 0);
	assert_non_null(strstr(out, "d002"));
	assert_non_null(strstr(out, "d003-main"));
	assert_non_null(strstr(out, "releases/acme/1.3.0.json"));
	assert_null(strstr(out, "d001"));
	assert_non_null(strstr(out, "(2 of 4 devices, offset 2)"));

	/* Usage errors: 2; failures of the operation: 1, nothing on stdout. */
	assert_int_equal(run_cli(f, dir_cmd_rollout, out, sizeof(out),
				 ARGV("rollout", "status")),
			 2);
	assert_int_equal(run_cli(f, dir_cmd_rollout, out, sizeof(out),
				 ARGV("rollout", "explode", "r1")),
			 2);
	assert_int_equal(run_cli(f, dir_cmd_rollout, out, sizeof(out),
				 ARGV("rollout", "create", "r2", "--phases", "1,,2")),
			 2);
	assert_int_equal(run_cli(f, dir_cmd_fleet, out, sizeof(out),
				 ARGV("fleet", "--limit", "-3")),
			 2);
	assert_int_equal(run_cli(f, dir_cmd_assign, out, sizeof(out),
				 ARGV("assign", "--bogus")),
			 2);
	assert_int_equal(run_cli(f, dir_cmd_rollout, out, sizeof(out),
				 ARGV("rollout", "pause", "nope")),
			 1);
	assert_string_equal(out, "");
	assert_int_equal(run_cli(f, dir_cmd_rollout, out, sizeof(out),
				 ARGV("rollout", "--help")),
			 0);
	assert_non_null(strstr(out, "--failure-threshold PCT"));
}

#define ON(eng, fn) cmocka_unit_test_prestate_setup_teardown(fn, setup_case, teardown_case, &eng)
#define ENGINE_CASES(eng)                                                                          \
	ON(eng, test_rollout_assign_by_tag_primary_ecu),                                           \
		ON(eng, test_rollout_assign_unsigned_target_refused),                              \
		ON(eng, test_rollout_assign_forged_image_metadata_refused),                        \
		ON(eng, test_rollout_assign_unknown_device_refused),                               \
		ON(eng, test_rollout_phases_advance_on_success_threshold),                         \
		ON(eng, test_rollout_failure_threshold_pauses_and_resume_continues),               \
		ON(eng, test_rollout_manual_pause_stops_advance),                                  \
		ON(eng, test_rollout_cancel_withdraws_undelivered),                                \
		ON(eng, test_rollout_device_cap), ON(eng, test_rollout_late_joiners),              \
		ON(eng, test_rollout_skips_devices_without_target_ecu),                            \
		ON(eng, test_rollout_late_joiner_fills_current_phase),                             \
		ON(eng, test_rollout_second_active_rollout_refused),                               \
		ON(eng, test_rollout_racing_reports_advance_once),                                 \
		ON(eng, test_rollout_many_devices_set_based), ON(eng, test_rollout_fleet_and_list)

int main(void)
{
	const char *url = getenv("OTTER_TEST_PG_URL");
	const struct CMUnitTest tests[] = {
		ENGINE_CASES(sqlite_engine),
		ENGINE_CASES(pg_engine),
		ON(sqlite_engine, test_rollout_admin_rejects_bad_requests),
		ON(sqlite_engine, test_rollout_cli_commands),
	};

	pg_engine.pg_url = url && *url ? url : NULL;
	if (!pg_engine.pg_url)
		print_message("# OTTER_TEST_PG_URL not set: the PostgreSQL cases are skipped (meson "
			      "runs them through tests/director/with-pg.py)\n");
	return cmocka_run_group_tests_name("director-rollout", tests, setup_images,
					   teardown_images);
}
