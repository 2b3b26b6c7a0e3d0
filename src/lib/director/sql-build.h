/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_SQL_BUILD_H
#define OTTER_LIB_DIRECTOR_SQL_BUILD_H

/*
 * A statement assembled from fragments, with its parameters numbered as they are added: a
 * fragment writes "$" followed by the number sqlb_param() returns. Used where the shape of a
 * statement depends on a request (a filter with lists of ids), so that values always travel
 * as bound parameters and never inside the SQL text.
 */

#include <stddef.h>

#include <otter/error.h>

#include "lib/director/db.h"
#include "util/buf.h"

/* Parameters per statement: SQLite 3.40 allows 32766, PostgreSQL 65535. */
#define SQLB_MAX_PARAMS 32000u

typedef struct sqlb {
	otter_buf sql;
	dir_db_param *params;
	size_t n, cap;
	int status; /* the first error; later calls do nothing */
	otter_error err;
} sqlb;

void sqlb_init(sqlb *q);
void sqlb_clear(sqlb *q);
/* Appends text. */
void sqlb_add(sqlb *q, const char *fmt, ...) OTTER_PRINTF(2, 3);
/* Appends "$N" for a new parameter p. */
void sqlb_param(sqlb *q, dir_db_param p);
/* Appends "($a, $b, ...)" for the n strings. */
void sqlb_list(sqlb *q, const char *const *v, size_t n);
/* Runs the statement (dir_db_exec); returns the first error of the building if any. */
int sqlb_exec(sqlb *q, dir_db *db, dir_db_rows **rows, uint64_t *changes, otter_error *err);

#endif
