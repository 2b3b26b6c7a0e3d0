/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The director's storage (src/lib/director/db*.c): every case runs on SQLite (a fresh file)
 * and on PostgreSQL (OTTER_TEST_PG_URL, a server tests/director/with-pg.py starts; each case
 * gets an empty public schema).
 */

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>

#include "test-common.h"

#include "lib/director/db.h"
#include "lib/director/schema.h"
#include "util/alloc.h"
#include "util/cleanup.h"

struct engine {
	const char *name;
	bool pg;
	const char *pg_url; /* PostgreSQL: the server's URL; NULL: not available */
};

struct fx {
	const struct engine *eng;
	char *dir;
	char url[4200];
	dir_db *db;
};

/* Fails the test with the error's message when r != 0. */
#define check(r, e)                                                                                \
	do {                                                                                       \
		int _r = (r);                                                                      \
		if (_r != 0)                                                                       \
			print_error("%s: %d (%s): %s\n", #r, _r, otter_error_code_name(_r),        \
				    (e)->msg);                                                     \
		assert_int_equal(_r, 0);                                                           \
	} while (0)

static void sql(dir_db *db, const char *text)
{
	otter_error e = OTTER_ERROR_INIT;

	check(dir_db_exec(db, text, NULL, 0, NULL, NULL, &e), &e);
}

static dir_db_rows *query(dir_db *db, const char *text, const dir_db_param *p, size_t n)
{
	otter_error e = OTTER_ERROR_INIT;
	dir_db_rows *rows = NULL;

	check(dir_db_exec(db, text, p, n, &rows, NULL, &e), &e);
	assert_non_null(rows);
	return rows;
}

static int64_t query_int(dir_db *db, const char *text)
{
	otter_error e = OTTER_ERROR_INIT;
	dir_db_rows *rows = query(db, text, NULL, 0);
	int64_t v = 0;

	assert_int_equal(dir_db_rows_count(rows), 1);
	check(dir_db_rows_int(rows, 0, 0, &v, &e), &e);
	dir_db_rows_free(rows);
	return v;
}

static dir_db *open_db(const char *url)
{
	otter_error e = OTTER_ERROR_INIT;
	dir_db *db = NULL;

	check(dir_db_open(&db, url, &e), &e);
	return db;
}

static int setup_case(void **state)
{
	const struct engine *eng = *state;
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->eng = eng;
	if (eng->pg) {
		dir_db *db;
		otter_error e = OTTER_ERROR_INIT;

		if (!eng->pg_url) {
			free(f);
			skip();
		}
		snprintf(f->url, sizeof(f->url), "%s", eng->pg_url);
		db = open_db(f->url);
		check(dir_db_exec_script(db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public", &e),
		      &e);
		dir_db_close(db);
	} else {
		f->dir = test_tmpdir();
		snprintf(f->url, sizeof(f->url), "sqlite:%s/director.db", f->dir);
	}
	f->db = open_db(f->url);
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

/* ---- statements, parameters, values ---- */

static void test_db_engine_name(void **state)
{
	struct fx *f = *state;

	assert_string_equal(dir_db_engine_name(f->db), f->eng->name);
	assert_int_equal(dir_db_engine_of(f->db), f->eng->pg ? DIR_DB_POSTGRESQL : DIR_DB_SQLITE);
}

static void test_db_params_each_type(void **state)
{
	struct fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	dir_db_rows *rows;
	uint64_t changes = 99;
	int64_t v;

	sql(f->db, "CREATE TABLE t (k BIGINT PRIMARY KEY, i BIGINT, s TEXT, n BIGINT, m TEXT)");
	check(dir_db_exec(f->db, "INSERT INTO t (k, i, s, n, m) VALUES ($1, $2, $3, $4, $5)",
			  (dir_db_param[]){ DIR_DB_I(1), DIR_DB_I(42), DIR_DB_S("text"), DIR_DB_N,
					    DIR_DB_S(NULL) },
			  5, NULL, &changes, &e),
	      &e);
	assert_int_equal(changes, 1);
	/* Parameters are numbered by $k, not by where they appear. */
	rows = query(f->db, "SELECT s, i, n, m FROM t WHERE i = $2 AND k = $1",
		     (dir_db_param[]){ DIR_DB_I(1), DIR_DB_I(42) }, 2);
	assert_int_equal(dir_db_rows_count(rows), 1);
	assert_int_equal(dir_db_rows_columns(rows), 4);
	assert_string_equal(dir_db_rows_text(rows, 0, 0), "text");
	assert_string_equal(dir_db_rows_text(rows, 0, 1), "42");
	assert_null(dir_db_rows_text(rows, 0, 2));
	assert_null(dir_db_rows_text(rows, 0, 3));
	check(dir_db_rows_int(rows, 0, 1, &v, &e), &e);
	assert_int_equal(v, 42);
	assert_err(dir_db_rows_int(rows, 0, 2, &v, &e), OTTER_E_FORMAT, &e, "NULL");
	otter_error_clear(&e);
	assert_err(dir_db_rows_int(rows, 0, 0, &v, &e), OTTER_E_FORMAT, &e, "not a 64-bit");
	/* Out of range reads are NULL, not a crash. */
	assert_null(dir_db_rows_text(rows, 1, 0));
	assert_null(dir_db_rows_text(rows, 0, 4));
	dir_db_rows_free(rows);

	/* A SELECT or DDL changes nothing, whatever the statement before it did. */
	changes = 99;
	otter_error_clear(&e);
	check(dir_db_exec(f->db, "SELECT k FROM t", NULL, 0, NULL, &changes, &e), &e);
	assert_int_equal(changes, 0);
	changes = 99;
	check(dir_db_exec(f->db, "CREATE INDEX t_i ON t (i)", NULL, 0, NULL, &changes, &e), &e);
	assert_int_equal(changes, 0);

	/* A statement that names a parameter the caller did not give fails. */
	otter_error_clear(&e);
	assert_int_not_equal(dir_db_exec(f->db, "SELECT k FROM t WHERE k = $2",
					 (dir_db_param[]){ DIR_DB_I(1) }, 1, NULL, NULL, &e),
			     0);
	assert_non_null(strstr(e.msg, "SELECT k FROM t"));
}

static void test_db_many_params_and_columns(void **state)
{
	struct fx *f = *state;
	dir_db_param p[20];
	dir_db_rows *rows;
	char text[64];

	for (int i = 0; i < 20; i++)
		p[i] = DIR_DB_I(i * 1000);
	rows = query(f->db,
		     "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
		     "$17, $18, $19, $20",
		     p, 20);
	assert_int_equal(dir_db_rows_columns(rows), 20);
	for (size_t i = 0; i < 20; i++) {
		snprintf(text, sizeof(text), "%zu", i * 1000);
		assert_string_equal(dir_db_rows_text(rows, 0, i), text);
	}
	dir_db_rows_free(rows);
}

static void test_db_text_round_trip(void **state)
{
	struct fx *f = *state;
	static const char *const texts[] = {
		"", "plain", "Grüße aus Köln — 日本語 テキスト 🦦", "quote ' double \" backslash \\ %s $1",
		"line\nbreak\ttab",
	};
	char *big = malloc(100001);
	dir_db_rows *rows;

	assert_non_null(big);
	for (size_t i = 0; i < 100000; i++)
		big[i] = (char)('a' + (i % 26));
	big[100000] = '\0';
	sql(f->db, "CREATE TABLE t (k BIGINT PRIMARY KEY, s TEXT)");
	for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
		otter_error e = OTTER_ERROR_INIT;

		check(dir_db_exec(f->db, "INSERT INTO t (k, s) VALUES ($1, $2)",
				  (dir_db_param[]){ DIR_DB_I(i), DIR_DB_S(texts[i]) }, 2, NULL, NULL,
				  &e),
		      &e);
	}
	sql(f->db, "INSERT INTO t (k, s) VALUES (100, NULL)");
	rows = query(f->db, "SELECT s FROM t ORDER BY k", NULL, 0);
	assert_int_equal(dir_db_rows_count(rows), ELEMENTSOF(texts) + 1);
	for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
		/* The empty string stays a string, distinct from NULL. */
		assert_non_null(dir_db_rows_text(rows, i, 0));
		assert_string_equal(dir_db_rows_text(rows, i, 0), texts[i]);
	}
	assert_null(dir_db_rows_text(rows, ELEMENTSOF(texts), 0));
	dir_db_rows_free(rows);
	/* Comparison and length are by UTF-8 characters on both engines. */
	rows = query(f->db, "SELECT k, length(s) FROM t WHERE s = $1",
		     (dir_db_param[]){ DIR_DB_S(texts[2]) }, 1);
	assert_int_equal(dir_db_rows_count(rows), 1);
	assert_string_equal(dir_db_rows_text(rows, 0, 0), "2");
	assert_string_equal(dir_db_rows_text(rows, 0, 1), "27");
	dir_db_rows_free(rows);
	rows = query(f->db, "SELECT $1", (dir_db_param[]){ DIR_DB_S(big) }, 1);
	assert_string_equal(dir_db_rows_text(rows, 0, 0), big);
	dir_db_rows_free(rows);
	free(big);
}

static void test_db_int64_limits(void **state)
{
	struct fx *f = *state;
	static const int64_t values[] = { INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1,
					  INT64_MAX };
	static const char *const texts[] = { "-9223372036854775808", "-9223372036854775807", "-1",
					     "0", "1", "9223372036854775806",
					     "9223372036854775807" };
	otter_error e = OTTER_ERROR_INIT;
	dir_db_rows *rows;
	int64_t v;

	sql(f->db, "CREATE TABLE t (k BIGINT PRIMARY KEY, v BIGINT NOT NULL)");
	for (size_t i = 0; i < ELEMENTSOF(values); i++)
		check(dir_db_exec(f->db, "INSERT INTO t (k, v) VALUES ($1, $2)",
				  (dir_db_param[]){ DIR_DB_I(i), DIR_DB_I(values[i]) }, 2, NULL,
				  NULL, &e),
		      &e);
	rows = query(f->db, "SELECT v FROM t ORDER BY k", NULL, 0);
	assert_int_equal(dir_db_rows_count(rows), ELEMENTSOF(values));
	for (size_t i = 0; i < ELEMENTSOF(values); i++) {
		assert_string_equal(dir_db_rows_text(rows, i, 0), texts[i]);
		check(dir_db_rows_int(rows, i, 0, &v, &e), &e);
		assert_true(v == values[i]);
	}
	dir_db_rows_free(rows);
	/* Integers as parameters stay 64-bit in expressions too. */
	rows = query(f->db, "SELECT $1 - 1", (dir_db_param[]){ DIR_DB_I(INT64_MAX) }, 1);
	assert_string_equal(dir_db_rows_text(rows, 0, 0), "9223372036854775806");
	dir_db_rows_free(rows);

	/* Text that is no int64 is refused by dir_db_rows_int. */
	static const char *const bad[] = { "9223372036854775808", "-9223372036854775809", "-0",
					   "007", " 1", "1 ", "+1", "", "1e3", "0x10" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		rows = query(f->db, "SELECT $1", (dir_db_param[]){ DIR_DB_S(bad[i]) }, 1);
		otter_error_clear(&e);
		assert_err(dir_db_rows_int(rows, 0, 0, &v, &e), OTTER_E_FORMAT, &e, "integer");
		dir_db_rows_free(rows);
	}
}

static void test_db_returning(void **state)
{
	struct fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	dir_db_rows *rows = NULL;
	uint64_t changes = 0;

	sql(f->db, "CREATE TABLE t (k BIGINT PRIMARY KEY, name TEXT NOT NULL, n BIGINT NOT NULL)");
	check(dir_db_exec(f->db,
			  "INSERT INTO t (k, name, n) VALUES ($1, $2, 0), ($3, $4, 0) "
			  "RETURNING k, name",
			  (dir_db_param[]){ DIR_DB_I(1), DIR_DB_S("one"), DIR_DB_I(2),
					    DIR_DB_S("two") },
			  4, &rows, &changes, &e),
	      &e);
	assert_int_equal(changes, 2);
	assert_int_equal(dir_db_rows_count(rows), 2);
	assert_int_equal(dir_db_rows_columns(rows), 2);
	rows = dir_db_rows_free(rows);
	check(dir_db_exec(f->db, "UPDATE t SET n = n + 5 WHERE k >= $1 RETURNING n",
			  (dir_db_param[]){ DIR_DB_I(1) }, 1, &rows, &changes, &e),
	      &e);
	assert_int_equal(changes, 2);
	assert_int_equal(dir_db_rows_count(rows), 2);
	assert_string_equal(dir_db_rows_text(rows, 0, 0), "5");
	rows = dir_db_rows_free(rows);
	/* Without RETURNING: no rows, the change count. */
	check(dir_db_exec(f->db, "DELETE FROM t WHERE k = $1", (dir_db_param[]){ DIR_DB_I(2) }, 1,
			  &rows, &changes, &e),
	      &e);
	assert_int_equal(changes, 1);
	assert_int_equal(dir_db_rows_count(rows), 0);
	dir_db_rows_free(rows);
}

static void test_db_on_conflict(void **state)
{
	struct fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	const char *upsert = "INSERT INTO t (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE "
			     "SET v = t.v + excluded.v RETURNING v";
	dir_db_rows *rows;
	uint64_t changes = 9;

	sql(f->db, "CREATE TABLE t (k TEXT PRIMARY KEY NOT NULL, v BIGINT NOT NULL)");
	rows = query(f->db, upsert, (dir_db_param[]){ DIR_DB_S("a"), DIR_DB_I(3) }, 2);
	assert_string_equal(dir_db_rows_text(rows, 0, 0), "3");
	dir_db_rows_free(rows);
	rows = query(f->db, upsert, (dir_db_param[]){ DIR_DB_S("a"), DIR_DB_I(4) }, 2);
	assert_string_equal(dir_db_rows_text(rows, 0, 0), "7");
	dir_db_rows_free(rows);
	check(dir_db_exec(f->db, "INSERT INTO t (k, v) VALUES ($1, $2) ON CONFLICT DO NOTHING",
			  (dir_db_param[]){ DIR_DB_S("a"), DIR_DB_I(100) }, 2, NULL, &changes,
			  &e),
	      &e);
	assert_int_equal(changes, 0);
	assert_int_equal(query_int(f->db, "SELECT v FROM t WHERE k = 'a'"), 7);
}

static void test_db_unique_violation(void **state)
{
	struct fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	const char *ins = "INSERT INTO t (k, u) VALUES ($1, $2)";

	sql(f->db, "CREATE TABLE t (k BIGINT PRIMARY KEY, u TEXT UNIQUE)");
	check(dir_db_exec(f->db, ins, (dir_db_param[]){ DIR_DB_I(1), DIR_DB_S("x") }, 2, NULL, NULL,
			  &e),
	      &e);
	/* On the primary key and on a UNIQUE column. */
	assert_err(dir_db_exec(f->db, ins, (dir_db_param[]){ DIR_DB_I(1), DIR_DB_S("y") }, 2, NULL,
			       NULL, &e),
		   OTTER_E_EXISTS, &e, f->eng->name);
	assert_non_null(strstr(e.msg, "INSERT INTO t"));
	otter_error_clear(&e);
	assert_err(dir_db_exec(f->db, ins, (dir_db_param[]){ DIR_DB_I(2), DIR_DB_S("x") }, 2, NULL,
			       NULL, &e),
		   OTTER_E_EXISTS, &e, NULL);
	/* Other constraints are the caller's mistake, not a duplicate. */
	otter_error_clear(&e);
	sql(f->db, "CREATE TABLE c (k BIGINT PRIMARY KEY, t BIGINT NOT NULL REFERENCES t(k))");
	assert_err(dir_db_exec(f->db, "INSERT INTO c (k, t) VALUES (1, 999)", NULL, 0, NULL, NULL,
			       &e),
		   OTTER_E_INVALID, &e, NULL);
	otter_error_clear(&e);
	assert_err(dir_db_exec(f->db, "INSERT INTO c (k, t) VALUES (1, NULL)", NULL, 0, NULL, NULL,
			       &e),
		   OTTER_E_INVALID, &e, NULL);
}

/* ---- transactions ---- */

struct tx_case {
	int mode;
	int calls;
};

static int tx_body(dir_db *db, void *ud, otter_error *err)
{
	struct tx_case *c = ud;
	int r;

	c->calls++;
	r = dir_db_exec(db, "INSERT INTO t (k) VALUES ($1)", (dir_db_param[]){ DIR_DB_I(c->calls) },
			1, NULL, NULL, err);
	if (r)
		return r;
	switch (c->mode) {
	case 0: /* success */
		return 0;
	case 1: /* the callback's own error, after a statement used nowhere before */
		r = dir_db_exec(db, "SELECT COUNT(*) FROM t WHERE k <> $1",
				(dir_db_param[]){ DIR_DB_I(-7) }, 1, NULL, NULL, err);
		if (r)
			return r;
		return otter_error_set(err, OTTER_E_NOT_FOUND, "callback: device 'x' not found");
	case 2: /* a failed statement the callback ignores */
		r = dir_db_exec(db, "INSERT INTO t (k) VALUES (1)", NULL, 0, NULL, NULL, NULL);
		assert_int_equal(r, OTTER_E_EXISTS);
		/* Later statements are refused on both engines alike. */
		r = dir_db_exec(db, "SELECT k FROM t", NULL, 0, NULL, NULL, NULL);
		assert_int_equal(r, OTTER_E_STATE);
		return 0;
	default:
		return -1;
	}
}

static int tx_nested(dir_db *db, void *ud, otter_error *err)
{
	struct tx_case *c = ud;
	struct tx_case inner = { .mode = 0, .calls = 10 };
	int r = dir_db_transaction(db, tx_body, &inner, err);

	if (r)
		return r;
	c->calls++;
	return otter_error_set(err, OTTER_E_STATE, "outer fails after the inner succeeded");
}

static void test_db_transaction_rollback(void **state)
{
	struct fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	struct tx_case c = { 0 };

	sql(f->db, "CREATE TABLE t (k BIGINT PRIMARY KEY)");
	c.mode = 0;
	check(dir_db_transaction(f->db, tx_body, &c, &e), &e);
	assert_int_equal(c.calls, 1);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM t"), 1);

	c = (struct tx_case){ .mode = 1, .calls = 1 };
	assert_err(dir_db_transaction(f->db, tx_body, &c, &e), OTTER_E_NOT_FOUND, &e,
		   "device 'x' not found");
	assert_int_equal(c.calls, 2); /* not retried */
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM t"), 1);

	otter_error_clear(&e);
	c = (struct tx_case){ .mode = 2, .calls = 1 };
	assert_err(dir_db_transaction(f->db, tx_body, &c, &e), OTTER_E_STATE, &e, "rolled back");
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM t"), 1);

	/* A nested transaction joins the outer one and goes with it. */
	otter_error_clear(&e);
	c = (struct tx_case){ .mode = 0, .calls = 0 };
	assert_err(dir_db_transaction(f->db, tx_nested, &c, &e), OTTER_E_STATE, &e, "outer");
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM t"), 1);

	/* The connection is usable afterwards, also the statements first prepared in the
	 * transactions that were rolled back. */
	sql(f->db, "INSERT INTO t (k) VALUES (50)");
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM t"), 2);
	{
		dir_db_rows *rows = query(f->db, "SELECT COUNT(*) FROM t WHERE k <> $1",
					  (dir_db_param[]){ DIR_DB_I(-7) }, 1);

		assert_string_equal(dir_db_rows_text(rows, 0, 0), "2");
		dir_db_rows_free(rows);
	}
	otter_error_clear(&e);
	c = (struct tx_case){ .mode = 0, .calls = 20 };
	check(dir_db_transaction(f->db, tx_body, &c, &e), &e);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM t"), 3);
}

struct racer {
	const char *url;
	int rounds;
	int attempts;
	int rc;
	char msg[512];
	pthread_barrier_t *meet; /* both read, then both write (first attempt only) */
};

static int incr(dir_db *db, void *ud, otter_error *err)
{
	struct racer *rc = ud;
	dir_db_rows *rows = NULL;
	int64_t v = 0;
	int r;

	rc->attempts++;
	r = dir_db_exec(db, "SELECT n FROM counter WHERE id = 1", NULL, 0, &rows, NULL, err);
	if (r == 0)
		r = dir_db_rows_int(rows, 0, 0, &v, err);
	dir_db_rows_free(rows);
	if (r)
		return r;
	if (rc->meet && rc->attempts == 1)
		pthread_barrier_wait(rc->meet);
	return dir_db_exec(db, "UPDATE counter SET n = $1 WHERE id = 1",
			   (dir_db_param[]){ DIR_DB_I(v + 1) }, 1, NULL, NULL, err);
}

static void *racer_main(void *arg)
{
	struct racer *rc = arg;
	otter_error e = OTTER_ERROR_INIT;
	dir_db *db = NULL;

	rc->rc = dir_db_open(&db, rc->url, &e);
	for (int i = 0; i < rc->rounds && rc->rc == 0; i++)
		rc->rc = dir_db_transaction(db, incr, rc, &e);
	snprintf(rc->msg, sizeof(rc->msg), "%s", e.msg);
	dir_db_close(db);
	return NULL;
}

static void race(struct fx *f, struct racer *rc, size_t n)
{
	pthread_t th[8];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_create(&th[i], NULL, racer_main, &rc[i]), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (size_t i = 0; i < n; i++) {
		if (rc[i].rc != 0)
			print_error("racer %zu: %d: %s\n", i, rc[i].rc, rc[i].msg);
		assert_int_equal(rc[i].rc, 0);
	}
	(void)f;
}

/* Two connections read-modify-write one counter: every increment counts, none twice. */
static void test_db_transaction_concurrent_counter(void **state)
{
	struct fx *f = *state;
	struct racer rc[3];

	sql(f->db, "CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)");
	sql(f->db, "INSERT INTO counter (id, n) VALUES (1, 0)");
	for (size_t i = 0; i < ELEMENTSOF(rc); i++)
		rc[i] = (struct racer){ .url = f->url, .rounds = 60 };
	race(f, rc, ELEMENTSOF(rc));
	assert_int_equal(query_int(f->db, "SELECT n FROM counter WHERE id = 1"), 180);
	assert_true(rc[0].attempts + rc[1].attempts + rc[2].attempts >= 180);
}

/*
 * A real conflict, forced: both transactions read the counter before either writes. On
 * PostgreSQL the second writer fails with a serialization failure and is run again; on
 * SQLite BEGIN IMMEDIATE makes the second wait for the first instead (so it cannot meet
 * the first inside the transaction: this case runs on PostgreSQL only, the counter case
 * above covers SQLite's waiting).
 */
static void test_db_transaction_conflict_retried(void **state)
{
	struct fx *f = *state;
	pthread_barrier_t meet;
	struct racer rc[2];

	sql(f->db, "CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)");
	sql(f->db, "INSERT INTO counter (id, n) VALUES (1, 0)");
	assert_int_equal(pthread_barrier_init(&meet, NULL, 2), 0);
	for (size_t i = 0; i < ELEMENTSOF(rc); i++)
		rc[i] = (struct racer){ .url = f->url, .rounds = 1, .meet = &meet };
	race(f, rc, ELEMENTSOF(rc));
	pthread_barrier_destroy(&meet);
	assert_int_equal(query_int(f->db, "SELECT n FROM counter WHERE id = 1"), 2);
	/* One of them ran twice: it saw the other's commit and did not lose it. */
	assert_int_equal(rc[0].attempts + rc[1].attempts, 3);
}

/* ---- migrations ---- */

static int64_t latest_version(void)
{
	return dir_migrations[dir_n_migrations - 1].version;
}

static void test_db_migrate_once(void **state)
{
	struct fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	int64_t v = -1;

	check(dir_db_migrate(f->db, &v, &e), &e);
	assert_true(v == latest_version());
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM schema_migrations"),
			 dir_n_migrations);
	/* Again, and from a new connection: nothing to do. */
	v = -1;
	check(dir_db_migrate(f->db, &v, &e), &e);
	assert_true(v == latest_version());
	dir_db_close(f->db);
	f->db = open_db(f->url);
	check(dir_db_migrate(f->db, &v, &e), &e);
	assert_true(v == latest_version());
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM schema_migrations"),
			 dir_n_migrations);
}

/* The schema of schema.c works on the engine: keys, references, cascades, indexes. */
static void test_db_schema_usable(void **state)
{
	struct fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	const char *ecu = "INSERT INTO ecus (serial, device_id, hardware_id, is_primary, key_type, "
			  "public_key, keyid) VALUES ($1, $2, 'hw-a', $3, 'ed25519', 'PEM', $4)";

	check(dir_db_migrate(f->db, NULL, &e), &e);
	check(dir_db_exec(f->db, "INSERT INTO devices (id, created) VALUES ($1, $2)",
			  (dir_db_param[]){ DIR_DB_S("vin-1"), DIR_DB_I(1700000000) }, 2, NULL,
			  NULL, &e),
	      &e);
	check(dir_db_exec(f->db, ecu,
			  (dir_db_param[]){ DIR_DB_S("ecu-1"), DIR_DB_S("vin-1"), DIR_DB_I(1),
					    DIR_DB_S("k1") },
			  4, NULL, NULL, &e),
	      &e);
	/* A key id is unique in the fleet; an ECU needs its device. */
	assert_err(dir_db_exec(f->db, ecu,
			       (dir_db_param[]){ DIR_DB_S("ecu-2"), DIR_DB_S("vin-1"), DIR_DB_I(0),
						 DIR_DB_S("k1") },
			       4, NULL, NULL, &e),
		   OTTER_E_EXISTS, &e, NULL);
	otter_error_clear(&e);
	assert_err(dir_db_exec(f->db, ecu,
			       (dir_db_param[]){ DIR_DB_S("ecu-3"), DIR_DB_S("vin-none"),
						 DIR_DB_I(0), DIR_DB_S("k3") },
			       4, NULL, NULL, &e),
		   OTTER_E_INVALID, &e, NULL);
	otter_error_clear(&e);
	check(dir_db_exec(f->db,
			  "INSERT INTO assignments (ecu_serial, device_id, correlation_id, "
			  "target_path, target_length, target_hashes, status, created, updated) "
			  "VALUES ($1, $2, $3, $4, $5, $6, 'assigned', $7, $7)",
			  (dir_db_param[]){ DIR_DB_S("ecu-1"), DIR_DB_S("vin-1"), DIR_DB_S("c-1"),
					    DIR_DB_S("fw-1.0.bin"), DIR_DB_I(1024),
					    DIR_DB_S("{\"sha256\":\"00\"}"), DIR_DB_I(1700000001) },
			  7, NULL, NULL, &e),
	      &e);
	/* Primary keys are never NULL, on SQLite too. */
	assert_err(dir_db_exec(f->db, "INSERT INTO devices (id, created) VALUES ($1, 1)",
			       (dir_db_param[]){ DIR_DB_S(NULL) }, 1, NULL, NULL, &e),
		   OTTER_E_INVALID, &e, NULL);
	otter_error_clear(&e);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM device_tags"), 0);
	assert_int_equal(query_int(f->db, "SELECT report_counter FROM ecus"), -1);
	/* Deleting the device removes its ECUs and assignments. */
	sql(f->db, "DELETE FROM devices WHERE id = 'vin-1'");
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM ecus"), 0);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM assignments"), 0);
}

static void test_db_migrate_newer_refused(void **state)
{
	struct fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;

	check(dir_db_migrate(f->db, NULL, &e), &e);
	check(dir_db_exec(f->db,
			  "INSERT INTO schema_migrations (version, what, applied) VALUES ($1, "
			  "'from the future', 0)",
			  (dir_db_param[]){ DIR_DB_I(latest_version() + 1) }, 1, NULL, NULL, &e),
	      &e);
	dir_db_close(f->db);
	f->db = open_db(f->url);
	assert_err(dir_db_migrate(f->db, NULL, &e), OTTER_E_VERSION, &e, "newer than this build");
	/* Refused without touching it. */
	assert_int_equal(query_int(f->db, "SELECT MAX(version) FROM schema_migrations"),
			 latest_version() + 1);
}

struct migrator {
	const char *url;
	pthread_barrier_t *go;
	int rc;
	int64_t version;
	char msg[512];
};

static void *migrator_main(void *arg)
{
	struct migrator *m = arg;
	otter_error e = OTTER_ERROR_INIT;
	dir_db *db = NULL;

	m->rc = dir_db_open(&db, m->url, &e);
	pthread_barrier_wait(m->go);
	if (m->rc == 0)
		m->rc = dir_db_migrate(db, &m->version, &e);
	snprintf(m->msg, sizeof(m->msg), "%s", e.msg);
	dir_db_close(db);
	return NULL;
}

/* Several processes starting at once on a fresh database apply each migration once. */
static void test_db_migrate_concurrent(void **state)
{
	struct fx *f = *state;
	struct migrator m[4];
	pthread_t th[4];
	pthread_barrier_t go;

	assert_int_equal(pthread_barrier_init(&go, NULL, ELEMENTSOF(m)), 0);
	for (size_t i = 0; i < ELEMENTSOF(m); i++) {
		m[i] = (struct migrator){ .url = f->url, .go = &go };
		assert_int_equal(pthread_create(&th[i], NULL, migrator_main, &m[i]), 0);
	}
	for (size_t i = 0; i < ELEMENTSOF(m); i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&go);
	for (size_t i = 0; i < ELEMENTSOF(m); i++) {
		if (m[i].rc)
			print_error("migrator %zu: %d: %s\n", i, m[i].rc, m[i].msg);
		assert_int_equal(m[i].rc, 0);
		assert_true(m[i].version == latest_version());
	}
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM schema_migrations"),
			 dir_n_migrations);
}

/* ---- the statement cache ---- */

static void test_db_statement_cache(void **state)
{
	struct fx *f = *state;
	char text[64];

	sql(f->db, "CREATE TABLE t (k BIGINT PRIMARY KEY)");
	/* The same statement many times (cached), with changing values. */
	for (int i = 0; i < 500; i++) {
		otter_error e = OTTER_ERROR_INIT;

		check(dir_db_exec(f->db, "INSERT INTO t (k) VALUES ($1)",
				  (dir_db_param[]){ DIR_DB_I(i) }, 1, NULL, NULL, &e),
		      &e);
	}
	assert_int_equal(query_int(f->db, "SELECT SUM(k) FROM t"), 499 * 500 / 2);
	/* More distinct statements than the cache holds: the rest run uncached. */
	for (int i = 0; i < 900; i++) {
		snprintf(text, sizeof(text), "SELECT %d + k FROM t WHERE k = 1", i);
		assert_int_equal(query_int(f->db, text), i + 1);
	}
	for (int i = 0; i < 900; i += 97) {
		snprintf(text, sizeof(text), "SELECT %d + k FROM t WHERE k = 1", i);
		assert_int_equal(query_int(f->db, text), i + 1);
	}
	/* The same text with another parameter type is another PostgreSQL statement. */
	{
		dir_db_rows *r1 = query(f->db, "SELECT $1", (dir_db_param[]){ DIR_DB_I(5) }, 1);
		dir_db_rows *r2 = query(f->db, "SELECT $1", (dir_db_param[]){ DIR_DB_S("five") }, 1);

		assert_string_equal(dir_db_rows_text(r1, 0, 0), "5");
		assert_string_equal(dir_db_rows_text(r2, 0, 0), "five");
		dir_db_rows_free(r1);
		dir_db_rows_free(r2);
	}
}

static void test_db_exec_script(void **state)
{
	struct fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;

	check(dir_db_exec_script(f->db,
				 "CREATE TABLE a (k BIGINT PRIMARY KEY); "
				 "INSERT INTO a (k) VALUES (1); INSERT INTO a (k) VALUES (2);",
				 &e),
	      &e);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM a"), 2);
	assert_int_not_equal(dir_db_exec_script(f->db, "INSERT INTO nosuchtable VALUES (1)", &e),
			     0);
	assert_non_null(strstr(e.msg, "nosuchtable"));
	/* dir_db_exec takes one statement only. */
	otter_error_clear(&e);
	assert_int_not_equal(dir_db_exec(f->db, "INSERT INTO a (k) VALUES (3); "
				 "INSERT INTO a (k) VALUES (4)",
				 NULL, 0, NULL, NULL, &e),
			     0);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM a"), 2);
}

/* ---- allocation failures (style.md §4.6) ---- */

static int alloc_run(const char *url)
{
	otter_error e = OTTER_ERROR_INIT;
	struct tx_case c = { .mode = 0, .calls = 0 };
	dir_db *db = NULL;
	dir_db_rows *rows = NULL;
	int r;

	r = dir_db_open(&db, url, &e);
	if (r == 0)
		r = dir_db_migrate(db, NULL, &e);
	if (r == 0)
		r = dir_db_exec(db, "CREATE TABLE IF NOT EXISTS t (k BIGINT PRIMARY KEY)", NULL, 0,
				NULL, NULL, &e);
	if (r == 0)
		r = dir_db_exec(db, "DELETE FROM t", NULL, 0, NULL, NULL, &e);
	if (r == 0)
		r = dir_db_transaction(db, tx_body, &c, &e);
	if (r == 0)
		r = dir_db_exec(db, "SELECT k, $1, NULL FROM t", (dir_db_param[]){ DIR_DB_S("x") },
				1, &rows, NULL, &e);
	if (r == 0 && (dir_db_rows_count(rows) != 1 ||
		       strcmp(dir_db_rows_text(rows, 0, 1), "x") != 0))
		r = OTTER_E_FAILED;
	if (r != 0 && r != OTTER_E_NOMEM)
		print_error("unexpected %d: %s\n", r, e.msg);
	dir_db_rows_free(rows);
	dir_db_close(db);
	return r;
}

/* Failing each allocation in turn gives a clean OTTER_E_NOMEM (and no leak under ASan). */
static void test_db_alloc_failures(void **state)
{
	struct fx *f = *state;
	unsigned long needed;
	int r;

	dir_db_close(f->db);
	f->db = NULL;
	otter_alloc_fail_at(0);
	assert_int_equal(alloc_run(f->url), 0);
	needed = otter_alloc_count();
	assert_true(needed > 5);
	for (unsigned long k = 1; k <= needed; k++) {
		otter_alloc_fail_at(k);
		r = alloc_run(f->url);
		otter_alloc_fail_at(0);
		assert_true(r == 0 || r == OTTER_E_NOMEM);
	}
}

/* ---- engine specifics ---- */

static void test_db_sqlite_settings(void **state)
{
	struct fx *f = *state;
	dir_db_rows *rows;

	rows = query(f->db, "PRAGMA journal_mode", NULL, 0);
	assert_string_equal(dir_db_rows_text(rows, 0, 0), "wal");
	dir_db_rows_free(rows);
	assert_int_equal(query_int(f->db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(query_int(f->db, "PRAGMA synchronous"), 2); /* FULL */
	assert_true(query_int(f->db, "PRAGMA busy_timeout") >= 1000);
}

static int read_isolation(dir_db *db, void *ud, otter_error *err)
{
	dir_db_rows *rows = NULL;
	int r = dir_db_exec(db, "SHOW transaction_isolation", NULL, 0, &rows, NULL, err);

	if (r == 0)
		snprintf(ud, 64, "%s", dir_db_rows_text(rows, 0, 0));
	dir_db_rows_free(rows);
	return r;
}

/* Transactions are SERIALIZABLE; a killed connection is reopened before the next statement. */
static void test_db_pg_isolation_and_reconnect(void **state)
{
	struct fx *f = *state;
	otter_error e = OTTER_ERROR_INIT;
	char iso[64] = "";
	dir_db *other;
	int64_t pid;

	check(dir_db_transaction(f->db, read_isolation, iso, &e), &e);
	assert_string_equal(iso, "serializable");

	pid = query_int(f->db, "SELECT pg_backend_pid()");
	other = open_db(f->url);
	{
		dir_db_rows *rows = query(other, "SELECT pg_terminate_backend(CAST($1 AS INTEGER))",
					  (dir_db_param[]){ DIR_DB_I(pid) }, 1);

		assert_string_equal(dir_db_rows_text(rows, 0, 0), "t");
		dir_db_rows_free(rows);
	}
	dir_db_close(other);
	assert_err(dir_db_exec(f->db, "SELECT 1", NULL, 0, NULL, NULL, &e), OTTER_E_NETWORK, &e,
		   "127.0.0.1");
	/* The next statement reconnects (prepared statements are prepared again). */
	assert_int_equal(query_int(f->db, "SELECT 41 + 1"), 42);
	assert_true(query_int(f->db, "SELECT pg_backend_pid()") != pid);
}

/* ---- URLs (no server needed) ---- */

static void assert_no_secret(const otter_error *e)
{
	if (strstr(e->msg, "s3cret")) {
		print_error("password in message: %s\n", e->msg);
		fail();
	}
}

static void test_db_bad_url(void **state)
{
	static const char *const bad[] = {
		"", "mysql://localhost/db", "sqlite:", "sqlite://relative", "director.db",
		"postgresql://[::1/db", "postgresql://localhost/db?nosuchoption=1",
	};
	(void)state;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		otter_error e = OTTER_ERROR_INIT;
		dir_db *db = NULL;

		assert_err(dir_db_open(&db, bad[i], &e), OTTER_E_CONFIG, &e, NULL);
		assert_null(db);
		assert_true(e.msg[0] != '\0');
	}
}

/* libpq quotes the bad part of a URL; a password never reaches the message. */
static void test_db_bad_url_secret_hidden(void **state)
{
	static const char *const bad[] = {
		"postgresql://otter:s3cret%zz@localhost/db",
		"postgresql://otter@localhost/db?password=s3cret%zz",
		"postgresql://otter:s3cret@localhost:notaport/db?password=s3cret",
	};
	(void)state;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		otter_error e = OTTER_ERROR_INIT;
		dir_db *db = NULL;
		int r = dir_db_open(&db, bad[i], &e);

		assert_true(r == OTTER_E_CONFIG || r == OTTER_E_NETWORK);
		assert_null(db);
		assert_no_secret(&e);
	}
}

static void test_db_pg_unreachable(void **state)
{
	/* Port 1 on loopback: nothing listens there, the connection is refused at once. */
	static const char *const urls[] = {
		"postgresql://otter:s3cret-pw@127.0.0.1:1/director",
		"postgres://otter@127.0.0.1:1/director?password=s3cret-pw&connect_timeout=5",
	};
	(void)state;

	for (size_t i = 0; i < ELEMENTSOF(urls); i++) {
		otter_error e = OTTER_ERROR_INIT;
		dir_db *db = NULL;

		assert_err(dir_db_open(&db, urls[i], &e), OTTER_E_NETWORK, &e, "127.0.0.1:1");
		assert_null(db);
		assert_non_null(strstr(e.msg, "otter"));
		assert_no_secret(&e);
	}
}

static void test_db_sqlite_unopenable(void **state)
{
	otter_error e = OTTER_ERROR_INIT;
	dir_db *db = NULL;
	(void)state;

	assert_err(dir_db_open(&db, "sqlite:/nonexistent-dir-otter/x/director.db", &e), OTTER_E_IO,
		   &e, "/nonexistent-dir-otter/x/director.db");
	assert_null(db);
}

static struct engine sqlite_engine = { .name = "sqlite" };
static struct engine pg_engine = { .name = "postgresql", .pg = true };

/* Every case once per engine, named "<case>/<engine>". */
#define ON(eng, fn) { #fn "/" #eng, fn, setup_case, teardown_case, &eng##_engine }
#define ENGINE_CASES(eng)                                                                          \
	ON(eng, test_db_engine_name), ON(eng, test_db_params_each_type),                           \
		ON(eng, test_db_many_params_and_columns), ON(eng, test_db_text_round_trip),        \
		ON(eng, test_db_int64_limits), ON(eng, test_db_returning),                         \
		ON(eng, test_db_on_conflict), ON(eng, test_db_unique_violation),                   \
		ON(eng, test_db_transaction_rollback),                                             \
		ON(eng, test_db_transaction_concurrent_counter),                                   \
		ON(eng, test_db_migrate_once), ON(eng, test_db_schema_usable),                     \
		ON(eng, test_db_migrate_newer_refused), ON(eng, test_db_migrate_concurrent),       \
		ON(eng, test_db_statement_cache), ON(eng, test_db_exec_script),                    \
		ON(eng, test_db_alloc_failures)

int main(void)
{
	const char *url = getenv("OTTER_TEST_PG_URL");
	const struct CMUnitTest tests[] = {
		ENGINE_CASES(sqlite),
		ON(sqlite, test_db_sqlite_settings),
		ENGINE_CASES(pg),
		ON(pg, test_db_transaction_conflict_retried),
		ON(pg, test_db_pg_isolation_and_reconnect),
		cmocka_unit_test(test_db_bad_url),
		cmocka_unit_test(test_db_bad_url_secret_hidden),
		cmocka_unit_test(test_db_pg_unreachable),
		cmocka_unit_test(test_db_sqlite_unopenable),
	};

	pg_engine.pg_url = url && *url ? url : NULL;
	if (!pg_engine.pg_url)
		print_message("# OTTER_TEST_PG_URL not set: the PostgreSQL cases are skipped (meson "
			      "runs them through tests/director/with-pg.py)\n");
	return cmocka_run_group_tests_name("director-db", tests, NULL, NULL);
}
