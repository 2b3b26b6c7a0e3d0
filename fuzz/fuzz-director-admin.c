/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the admin API's requests (docs/director.md, "Admin API"): the input is an
 * operation name, a newline, and the JSON body, handed to dir_admin_call as the HTTP server
 * does. The database is an in-memory SQLite with the schema applied and no devices, and no
 * image repository is configured, so no input can change anything: every answer is either a
 * clean refusal with an HTTP status of 400 or more, or a read-only 200 with an answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <otter/json.h>

#include "lib/director/admin.h"
#include "lib/director/db.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Admin bodies are capped at 64 KiB by the server. */
#define ADMIN_MAX 65536u

static dir_db *db;

static int64_t count(const char *sql)
{
	dir_db_rows *rows = NULL;
	int64_t v = -1;

	if (dir_db_exec(db, sql, NULL, 0, &rows, NULL, NULL) < 0 ||
	    dir_db_rows_int(rows, 0, 0, &v, NULL) < 0)
		abort();
	dir_db_rows_free(rows);
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	otter_error err = OTTER_ERROR_INIT;
	json_t *req = NULL, *resp = NULL;
	char op[64];
	size_t oplen;
	int status = 0, r;

	if (!db && (dir_db_open(&db, "sqlite::memory:", NULL) < 0 ||
		    dir_db_migrate(db, NULL, NULL) < 0))
		abort();
	if (!nl)
		return 0;
	oplen = (size_t)(nl - data);
	if (oplen >= sizeof(op) || memchr(data, '\0', oplen))
		return 0;
	memcpy(op, data, oplen);
	op[oplen] = '\0';
	if (otter_json_parse(&req, nl + 1, size - oplen - 1, ADMIN_MAX, NULL) < 0)
		return 0;

	dir_admin_env env = { db, NULL, NULL, 1900000000 };
	r = dir_admin_call(&env, op, req, &resp, &status, &err);
	if (r < 0 && (resp || status < 400 || !err.msg[0]))
		abort();
	if (r == 0 && (!resp || status != 200))
		abort();
	json_decref(resp);
	json_decref(req);
	if (count("SELECT COUNT(*) FROM rollouts") != 0 ||
	    count("SELECT COUNT(*) FROM assignments") != 0)
		abort();
	return 0;
}
