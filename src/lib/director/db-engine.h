/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_DB_ENGINE_H
#define OTTER_LIB_DIRECTOR_DB_ENGINE_H

/*
 * What a storage engine implements (db-sqlite.c, db-pg.c); db.c holds what both share
 * (dispatch by URL, result rows, the transaction retry loop, migrations). An engine's exec
 * returns OTTER_E_BUSY for a conflict worth retrying the whole transaction for.
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
	int (*begin)(dir_db *db, otter_error *err);
	int (*commit)(dir_db *db, otter_error *err);
	void (*rollback)(dir_db *db);
	/* Inside a transaction: serialises migrations between processes. */
	int (*lock_migrations)(dir_db *db, otter_error *err);
};

struct dir_db {
	const struct dir_db_ops *ops;
	void *impl;
	bool in_transaction;
};

extern const struct dir_db_ops dir_db_sqlite_ops;
extern const struct dir_db_ops dir_db_pg_ops;

/* Result rows, built by the engines. */
int dir_db_rows_new(dir_db_rows **out, size_t columns, otter_error *err);
/* Appends a row of `columns` values (NULL entries are SQL NULL); the strings are copied. */
int dir_db_rows_append(dir_db_rows *r, const char *const *values, const size_t *lengths,
		       otter_error *err);

#endif
