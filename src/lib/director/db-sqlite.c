/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SQLite engine: "sqlite:PATH". One connection per handle, WAL mode (readers do not block the
 * writer), a busy timeout (a writer waits for another's commit rather than failing at once),
 * foreign keys on, synchronous=FULL (a commit the director acknowledged survives power loss:
 * a device's report counter must never go back). Transactions are BEGIN IMMEDIATE, so the
 * write lock is taken up front and a transaction never fails half way on lock upgrade.
 */

#include "lib/director/db-engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "util/alloc.h"
#include "util/cleanup.h"

/* How long a statement waits for another connection's write lock before OTTER_E_BUSY. */
#define BUSY_TIMEOUT_MS 10000

/* A prepared statement and, per SQL parameter slot, the $k it names. */
struct sq_prep {
	sqlite3_stmt *st;
	int nslots;
	unsigned *slot_param; /* slot i (from 0) binds params[slot_param[i] - 1] */
};

struct sq {
	sqlite3 *h;
	char *path;
	dir_db_cache cache;
};

static int oom(otter_error *err)
{
	return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

static void prep_free(void *p)
{
	struct sq_prep *sp = p;

	if (sp) {
		sqlite3_finalize(sp->st);
		free(sp->slot_param);
		free(sp);
	}
}

static int sq_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return OTTER_E_BUSY;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return OTTER_E_EXISTS;
		return OTTER_E_INVALID;
	case SQLITE_NOMEM:
		return OTTER_E_NOMEM;
	case SQLITE_TOOBIG:
		return OTTER_E_TOO_LARGE;
	default:
		return OTTER_E_IO;
	}
}

static int sq_error(struct sq *s, int rc, const char *sql, otter_error *err)
{
	char head[DIR_DB_SQL_HEAD];
	int code = sq_code(rc);

	dir_db_sql_head(sql, head);
	if (code == OTTER_E_BUSY)
		return otter_error_set(err, code,
				       "sqlite: %s: %s ('%s' is locked by another connection)",
				       head, sqlite3_errmsg(s->h), s->path);
	return otter_error_set(err, code, "sqlite: %s: %s", head, sqlite3_errmsg(s->h));
}

/* "$12" -> 12; 0 for any other name (":x", "?", "$x", "$0", "$01"). */
static unsigned dollar_index(const char *name)
{
	unsigned v = 0;

	if (!name || name[0] != '$' || name[1] < '1' || name[1] > '9')
		return 0;
	for (const char *p = name + 1; *p; p++) {
		if (*p < '0' || *p > '9' || v > 100000u)
			return 0;
		v = v * 10u + (unsigned)(*p - '0');
	}
	return v;
}

static int prepare(struct sq *s, const char *sql, struct sq_prep **out, otter_error *err)
{
	struct sq_prep *sp;
	const char *tail = NULL;
	int rc;

	sp = otter_calloc(1, sizeof(*sp));
	if (!sp)
		return oom(err);
	rc = sqlite3_prepare_v3(s->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &sp->st, &tail);
	if (rc != SQLITE_OK) {
		prep_free(sp);
		return sq_error(s, rc, sql, err);
	}
	if (!sp->st || (tail && tail[strspn(tail, " \t\r\n;")] != '\0')) {
		char head[DIR_DB_SQL_HEAD];

		prep_free(sp);
		dir_db_sql_head(sql, head);
		return otter_error_set(err, OTTER_E_INVALID,
				       "sqlite: %s: not exactly one statement (scripts go through "
				       "dir_db_exec_script)",
				       head);
	}
	sp->nslots = sqlite3_bind_parameter_count(sp->st);
	if (sp->nslots > 0) {
		sp->slot_param = otter_calloc((size_t)sp->nslots, sizeof(unsigned));
		if (!sp->slot_param) {
			prep_free(sp);
			return oom(err);
		}
	}
	/*
	 * SQLite numbers "$k" parameters by first appearance, not by k: map each slot to the
	 * k in its name, so that "$2 ... $1" binds like on PostgreSQL.
	 */
	for (int i = 0; i < sp->nslots; i++) {
		const char *name = sqlite3_bind_parameter_name(sp->st, i + 1);

		sp->slot_param[i] = dollar_index(name);
		if (sp->slot_param[i] == 0) {
			char head[DIR_DB_SQL_HEAD];

			prep_free(sp);
			dir_db_sql_head(sql, head);
			return otter_error_set(err, OTTER_E_INVALID,
					       "sqlite: %s: parameter '%s' is not $1..$N", head,
					       name ? name : "?");
		}
	}
	*out = sp;
	return 0;
}

static int bind(struct sq *s, struct sq_prep *sp, const char *sql, const dir_db_param *params,
		size_t n, otter_error *err)
{
	for (int i = 0; i < sp->nslots; i++) {
		unsigned k = sp->slot_param[i];
		const dir_db_param *p;
		int rc;

		if (k > n) {
			char head[DIR_DB_SQL_HEAD];

			dir_db_sql_head(sql, head);
			return otter_error_set(err, OTTER_E_INVALID,
					       "sqlite: %s: uses $%u but %zu parameters given", head,
					       k, n);
		}
		p = &params[k - 1];
		if (p->type == DIR_DB_INT)
			rc = sqlite3_bind_int64(sp->st, i + 1, p->i);
		else if (p->type == DIR_DB_TEXT && p->s)
			rc = sqlite3_bind_text(sp->st, i + 1, p->s, -1, SQLITE_STATIC);
		else
			rc = sqlite3_bind_null(sp->st, i + 1);
		if (rc != SQLITE_OK)
			return sq_error(s, rc, sql, err);
	}
	return 0;
}

static int read_row(sqlite3_stmt *st, dir_db_rows *rows, const char **vals, size_t *lens,
		    otter_error *err)
{
	size_t cols = dir_db_rows_columns(rows);

	for (size_t c = 0; c < cols; c++) {
		int ci = (int)c;

		if (sqlite3_column_type(st, ci) == SQLITE_NULL) {
			vals[c] = NULL;
			lens[c] = 0;
			continue;
		}
		vals[c] = (const char *)sqlite3_column_text(st, ci);
		if (!vals[c])
			return oom(err);
		lens[c] = (size_t)sqlite3_column_bytes(st, ci);
	}
	return dir_db_rows_append(rows, vals, lens, err);
}

static int sq_exec(dir_db *db, const char *sql, const dir_db_param *params, size_t n,
		   dir_db_rows **rows_out, uint64_t *changes, otter_error *err)
{
	struct sq *s = db->impl;
	struct sq_prep *sp = dir_db_cache_get(&s->cache, sql, strlen(sql));
	struct sq_prep *own = NULL;
	dir_db_rows *rows = NULL;
	const char *small_vals[16];
	size_t small_lens[16];
	const char **vals = small_vals;
	size_t *lens = small_lens;
	sqlite3_int64 total;
	size_t cols;
	int r, rc;

	if (!sp) {
		r = prepare(s, sql, &own, err);
		if (r)
			return r;
		if (dir_db_cache_has_room(&s->cache) &&
		    dir_db_cache_put(&s->cache, sql, strlen(sql), own, NULL) == 0)
			sp = TAKE_PTR(own);
		else
			sp = own;
	}
	r = bind(s, sp, sql, params, n, err);
	if (r)
		goto out;
	cols = (size_t)sqlite3_column_count(sp->st);
	if (rows_out) {
		r = dir_db_rows_new(&rows, cols, err);
		if (r)
			goto out;
		if (cols > ELEMENTSOF(small_vals)) {
			vals = otter_calloc(cols, sizeof(*vals));
			lens = otter_calloc(cols, sizeof(*lens));
			if (!vals || !lens) {
				r = oom(err);
				goto out;
			}
		}
	}
	total = sqlite3_total_changes64(s->h);
	while ((rc = sqlite3_step(sp->st)) == SQLITE_ROW) {
		if (rows) {
			r = read_row(sp->st, rows, vals, lens, err);
			if (r)
				goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		r = sq_error(s, rc, sql, err);
		goto out;
	}
	if (changes)
		/* sqlite3_changes64() still counts the last INSERT, UPDATE or DELETE after a
		 * statement that is none of them (a query, DDL): only trust it when the total moved. */
		*changes = sqlite3_total_changes64(s->h) == total
				   ? 0
				   : (uint64_t)sqlite3_changes64(s->h);
	if (rows_out)
		*rows_out = TAKE_PTR(rows);
out:
	/* Reset also drops the statement's hold on the caller's (SQLITE_STATIC) strings. */
	sqlite3_reset(sp->st);
	sqlite3_clear_bindings(sp->st);
	if (vals != small_vals)
		free(vals);
	if (lens != small_lens)
		free(lens);
	dir_db_rows_free(rows);
	prep_free(own);
	return r;
}

static int sq_exec_script(dir_db *db, const char *sql, otter_error *err)
{
	struct sq *s = db->impl;
	int rc = sqlite3_exec(s->h, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_error(s, rc, sql, err);
}

static int sq_begin(dir_db *db, otter_error *err)
{
	return sq_exec(db, "BEGIN IMMEDIATE", NULL, 0, NULL, NULL, err);
}

static int sq_commit(dir_db *db, otter_error *err)
{
	struct sq *s = db->impl;
	int r = sq_exec(db, "COMMIT", NULL, 0, NULL, NULL, err);

	/* A failed COMMIT can leave the transaction open: never leave it so. */
	if (r && !sqlite3_get_autocommit(s->h))
		sqlite3_exec(s->h, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static void sq_rollback(dir_db *db)
{
	struct sq *s = db->impl;

	if (!sqlite3_get_autocommit(s->h))
		sqlite3_exec(s->h, "ROLLBACK", NULL, NULL, NULL);
}

static int journal_cb(void *ud, int ncols, char **vals, char **names)
{
	char *mode = ud;

	(void)names;
	if (ncols >= 1 && vals[0])
		snprintf(mode, 16, "%s", vals[0]);
	return 0;
}

static void sq_close(dir_db *db)
{
	struct sq *s = db->impl;

	if (!s)
		return;
	dir_db_cache_free(&s->cache);
	sqlite3_close_v2(s->h);
	free(s->path);
	free(s);
	db->impl = NULL;
}

static int sq_open(dir_db *db, const char *url, otter_error *err)
{
	const char *path = url + strlen("sqlite:");
	char mode[16] = "";
	struct sq *s;
	int rc, r;

	if (*path == '\0')
		return otter_error_set(err, OTTER_E_CONFIG,
				       "database URL '%s': no file name (sqlite:/path/to/"
				       "director.db)",
				       url);
	if (strncmp(path, "//", 2) == 0)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "database URL '%s': write sqlite:PATH (sqlite:/var/lib/"
				       "otter-director/director.db), not sqlite://",
				       url);
	s = otter_calloc(1, sizeof(*s));
	if (!s)
		return oom(err);
	db->impl = s;
	s->path = otter_strdup(path);
	if (!s->path) {
		r = oom(err);
		goto fail;
	}
	r = dir_db_cache_init(&s->cache, prep_free, err);
	if (r)
		goto fail;
	rc = sqlite3_open_v2(path, &s->h,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		r = otter_error_set(err, rc == SQLITE_NOMEM ? OTTER_E_NOMEM : OTTER_E_IO,
				    "sqlite: cannot open '%s': %s (does its folder exist and is it "
				    "writable?)",
				    path, s->h ? sqlite3_errmsg(s->h) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(s->h, 1);
	sqlite3_busy_timeout(s->h, BUSY_TIMEOUT_MS);
	rc = sqlite3_exec(s->h, "PRAGMA journal_mode=WAL", journal_cb, mode, NULL);
	if (rc != SQLITE_OK) {
		r = otter_error_set(err, sq_code(rc), "sqlite: '%s': PRAGMA journal_mode=WAL: %s",
				    path, sqlite3_errmsg(s->h));
		goto fail;
	}
	if (strcmp(mode, "wal") != 0 && strcmp(path, ":memory:") != 0) {
		r = otter_error_set(err, OTTER_E_IO,
				    "sqlite: '%s': cannot use WAL mode (journal mode is '%s'); "
				    "the database must be on a local file system",
				    path, mode);
		goto fail;
	}
	rc = sqlite3_exec(s->h, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL", NULL, NULL,
			  NULL);
	if (rc != SQLITE_OK) {
		r = otter_error_set(err, sq_code(rc), "sqlite: '%s': setting PRAGMAs: %s", path,
				    sqlite3_errmsg(s->h));
		goto fail;
	}
	return 0;
fail:
	sq_close(db);
	return r;
}

const struct dir_db_ops dir_db_sqlite_ops = {
	.name = "sqlite",
	.engine = DIR_DB_SQLITE,
	.open = sq_open,
	.close = sq_close,
	.exec = sq_exec,
	.exec_script = sq_exec_script,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.begin_locked = sq_begin,
};
