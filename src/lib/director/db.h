/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_DB_H
#define OTTER_LIB_DIRECTOR_DB_H

/*
 * The director's storage: one small SQL interface, two engines.
 *
 *   sqlite:PATH                       SQLite (libsqlite3), one file, the embedded default
 *   postgresql://... / postgres://... PostgreSQL (libpq), a libpq connection URI
 *
 * The director's SQL is written once and runs on both engines: placeholders are $1..$N (SQLite
 * reads "$1" as a named parameter; it is bound by its number, as on PostgreSQL), integers are
 * BIGINT (0/1 for booleans), text is TEXT, and only syntax both engines share is used (INSERT
 * ... ON CONFLICT, RETURNING, CTEs). Where an engine needs its own text (identity columns,
 * locks), the migration or the caller says so by engine name. Integer parameters are sent to
 * PostgreSQL as bigint and text ones as text, so "SELECT $1" means the same on both engines
 * (a function that wants an int4 needs CAST($1 AS INTEGER)); a NULL parameter takes its type
 * from its context (the column it is stored into or compared with).
 *
 * A handle is one connection, used by one thread at a time; a server keeps one per worker
 * thread. Every result value comes back as text (NULL for SQL NULL), read with the helpers
 * below, so that both engines return the same strings for the same data.
 *
 * Transactions: dir_db_transaction() runs a callback in a transaction (SQLite: BEGIN
 * IMMEDIATE; PostgreSQL: SERIALIZABLE) and runs it again when the engine reports a conflict
 * (SQLITE_BUSY, serialization failure 40001, deadlock 40P01), up to a bounded number of tries
 * with a short randomized backoff. Callbacks must therefore only change the database, not the
 * world, until they return 0, and must return an OTTER_E_BUSY they get unchanged. A failed
 * statement ends the transaction on both engines alike (PostgreSQL aborts it): later
 * statements fail with OTTER_E_STATE, so the callback must return the error (a duplicate that
 * is expected is written INSERT ... ON CONFLICT instead). dir_db_transaction() called inside a
 * callback joins the running transaction. Several otter-director processes may share one
 * PostgreSQL database: every decision that must happen once (an assignment, a rollout phase
 * advancing) is made inside one transaction.
 *
 * Errors: OTTER_E_BUSY for a conflict that outlived the retries, OTTER_E_EXISTS for a
 * unique-constraint violation, OTTER_E_INVALID for another constraint (foreign key, NOT NULL,
 * CHECK), OTTER_E_NETWORK when the PostgreSQL server cannot be reached or the connection was
 * lost (the message names the URL without its password; an idle handle reconnects at its next
 * statement), OTTER_E_CONFIG for a URL that is not one of the two forms above, OTTER_E_IO for
 * other engine failures; the message names the engine and the statement's first words.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

typedef struct dir_db dir_db;
typedef struct dir_db_rows dir_db_rows;

typedef enum dir_db_engine {
	DIR_DB_SQLITE,
	DIR_DB_POSTGRESQL,
} dir_db_engine;

typedef enum dir_db_type {
	DIR_DB_NULL,
	DIR_DB_INT,
	DIR_DB_TEXT,
} dir_db_type;

/* One bound parameter. DIR_DB_TEXT with s == NULL binds NULL. */
typedef struct dir_db_param {
	dir_db_type type;
	int64_t i;
	const char *s;
} dir_db_param;

#define DIR_DB_I(v) ((dir_db_param){ .type = DIR_DB_INT, .i = (int64_t)(v) })
#define DIR_DB_S(v) ((dir_db_param){ .type = DIR_DB_TEXT, .s = (v) })
#define DIR_DB_N ((dir_db_param){ .type = DIR_DB_NULL })

/* Opens a connection ("sqlite:PATH" creates the file; WAL mode and a busy timeout are set). */
int dir_db_open(dir_db **out, const char *url, otter_error *err);
dir_db *dir_db_close(dir_db *db);
dir_db_engine dir_db_engine_of(const dir_db *db);
const char *dir_db_engine_name(const dir_db *db); /* "sqlite" or "postgresql" */

/*
 * Runs one statement with n parameters ($1..$n). rows (optional) gets the result rows of a
 * query or of RETURNING (free with dir_db_rows_free); changes (optional) the number of rows
 * inserted, updated or deleted.
 */
int dir_db_exec(dir_db *db, const char *sql, const dir_db_param *params, size_t n,
		dir_db_rows **rows, uint64_t *changes, otter_error *err);

/* Runs several statements without parameters or results (schema text). */
int dir_db_exec_script(dir_db *db, const char *sql, otter_error *err);

size_t dir_db_rows_count(const dir_db_rows *r);
size_t dir_db_rows_columns(const dir_db_rows *r);
/* The value at (row, col) as text; NULL for SQL NULL or out of range. */
const char *dir_db_rows_text(const dir_db_rows *r, size_t row, size_t col);
/* The value as a 64-bit integer; OTTER_E_FORMAT if it is NULL or not an integer. */
int dir_db_rows_int(const dir_db_rows *r, size_t row, size_t col, int64_t *out,
		    otter_error *err);
dir_db_rows *dir_db_rows_free(dir_db_rows *r);

/* Runs fn(db, ud) in a transaction, retrying on conflicts; commits when fn returns 0. */
int dir_db_transaction(dir_db *db, int (*fn)(dir_db *db, void *ud, otter_error *err), void *ud,
		       otter_error *err);

/*
 * Applies the schema migrations this build knows (schema.c) that the database has not seen,
 * each in its own transaction, under a lock (PostgreSQL advisory lock, SQLite's write lock) so
 * that several processes starting at once apply each once. A database newer than this build
 * is refused (OTTER_E_VERSION). *version (optional) gets the schema version afterwards.
 */
int dir_db_migrate(dir_db *db, int64_t *version, otter_error *err);

#endif
