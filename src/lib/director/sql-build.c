/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "lib/director/sql-build.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

/* The longest statement the director assembles: a filter of 10,000 ids is ~70 KB. */
#define SQLB_MAX_TEXT (1024u * 1024u)

void sqlb_init(sqlb *q)
{
	memset(q, 0, sizeof(*q));
	buf_init(&q->sql, SQLB_MAX_TEXT);
}

void sqlb_clear(sqlb *q)
{
	buf_clear(&q->sql);
	free(q->params);
	q->params = NULL;
	q->n = q->cap = 0;
}

void sqlb_add(sqlb *q, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	int n;

	if (q->status < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		q->status = otter_error_set(&q->err, OTTER_E_INVALID,
					    "building a statement: fragment too long");
		return;
	}
	q->status = buf_append(&q->sql, tmp, (size_t)n, &q->err);
}

void sqlb_param(sqlb *q, dir_db_param p)
{
	if (q->status < 0)
		return;
	if (q->n >= SQLB_MAX_PARAMS) {
		q->status = otter_error_set(&q->err, OTTER_E_LIMIT,
					    "building a statement: more than %u parameters",
					    SQLB_MAX_PARAMS);
		return;
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		dir_db_param *np = otter_reallocarray(q->params, cap, sizeof(*np));

		if (!np) {
			q->status = otter_error_set(&q->err, OTTER_E_NOMEM, "out of memory");
			return;
		}
		q->params = np;
		q->cap = cap;
	}
	q->params[q->n++] = p;
	sqlb_add(q, "$%zu", q->n);
}

void sqlb_list(sqlb *q, const char *const *v, size_t n)
{
	sqlb_add(q, "(");
	for (size_t i = 0; i < n; i++) {
		if (i)
			sqlb_add(q, ", ");
		sqlb_param(q, DIR_DB_S(v[i]));
	}
	sqlb_add(q, ")");
}

int sqlb_exec(sqlb *q, dir_db *db, dir_db_rows **rows, uint64_t *changes, otter_error *err)
{
	if (q->status < 0) {
		otter_error_set(err, q->status, "%s", q->err.msg);
		return q->status;
	}
	return dir_db_exec(db, (const char *)q->sql.data, q->params, q->n, rows, changes, err);
}
