/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_DB_ENGINE_H
#define OTTER_LIB_DIRECTOR_DB_ENGINE_H

/*
 * What a storage engine implements (db-sqlite.c, db-pg.c); db.c holds what both share
 * (dispatch by URL, result rows, the statement cache, the transaction retry loop,
 * migrations). An engine's exec returns OTTER_E_BUSY for a conflict worth retrying the whole
 * transaction for.
 */

#include "lib/director/db.h"

struct dir_db_ops {
	const char *name;
	dir_db_engine engine;
	int (*open)(dir_db *db, const char *url, otter_error *err); /* sets db->impl */
	void (*close)(dir_db *db);
	int (*exec)(dir_db *db, const char *sql, const dir_db_param *params, size_t n,
		    dir_db_rows **rows, uint64_t *changes, otter_error *err);
	int (*exec_script)(dir_db *db, const char *sql, otter_error *err);
	/* begin and begin_locked leave no transaction open when they fail. */
	int (*begin)(dir_db *db, otter_error *err);
	int (*commit)(dir_db *db, otter_error *err);
	void (*rollback)(dir_db *db);
	/*
	 * Begins a transaction that serialises migrations between processes (SQLite: BEGIN
	 * IMMEDIATE; PostgreSQL: READ COMMITTED, so that statements after the lock see what the
	 * previous holder committed, plus pg_advisory_xact_lock).
	 */
	int (*begin_locked)(dir_db *db, otter_error *err);
};

struct dir_db {
	const struct dir_db_ops *ops;
	void *impl;
	bool in_transaction;
	bool tx_failed; /* a statement failed inside the current transaction */
	uint64_t rng;   /* xorshift state for the retry backoff */
};

extern const struct dir_db_ops dir_db_sqlite_ops;
extern const struct dir_db_ops dir_db_pg_ops;

/* Result rows, built by the engines. */
int dir_db_rows_new(dir_db_rows **out, size_t columns, otter_error *err);
/* Makes room for `rows` more rows holding `bytes` more bytes of text (one allocation each). */
int dir_db_rows_reserve(dir_db_rows *r, size_t rows, size_t bytes, otter_error *err);
/*
 * Appends a row of `columns` values (NULL entries are SQL NULL); the strings are copied.
 * lengths may be NULL (then the values are NUL-terminated).
 */
int dir_db_rows_append(dir_db_rows *r, const char *const *values, const size_t *lengths,
		       otter_error *err);

/*
 * A statement's first words for messages: whitespace runs become one space, cut after about
 * 40 bytes with "...".
 */
#define DIR_DB_SQL_HEAD 48
void dir_db_sql_head(const char *sql, char out[DIR_DB_SQL_HEAD]);

/*
 * A per-connection cache of prepared statements keyed by their text (plus, for PostgreSQL,
 * the parameter types). Open addressing with a fixed capacity: the director runs a bounded
 * set of statements, so a full cache just stops caching (callers then prepare per call)
 * instead of evicting.
 */
typedef struct dir_db_cache_entry {
	char *key; /* NULL: empty slot */
	size_t key_len;
	uint64_t hash;
	void *value;
} dir_db_cache_entry;

typedef struct dir_db_cache {
	dir_db_cache_entry *slots;
	size_t cap; /* a power of two */
	size_t n;
	void (*drop)(void *value); /* frees a value (clear, free) */
} dir_db_cache;

#define DIR_DB_CACHE_CAP 1024u

int dir_db_cache_init(dir_db_cache *c, void (*drop)(void *value), otter_error *err);
void *dir_db_cache_get(const dir_db_cache *c, const char *key, size_t key_len);
/* False when the cache is full (the value stays the caller's). */
bool dir_db_cache_has_room(const dir_db_cache *c);
int dir_db_cache_put(dir_db_cache *c, const char *key, size_t key_len, void *value,
		     otter_error *err);
/* Drops every value, keeps the table. */
void dir_db_cache_clear(dir_db_cache *c);
void dir_db_cache_free(dir_db_cache *c);

#endif
