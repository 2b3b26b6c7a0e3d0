/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PostgreSQL engine: a libpq URI ("postgresql://user@host:port/db?host=/socket/dir").
 * Statements are prepared once per connection (named, cached by text and parameter types)
 * and run with text parameters. Transactions are SERIALIZABLE: when two director processes
 * race on the same rows, one of them gets a serialization failure (40001) or a deadlock
 * (40P01), reported as OTTER_E_BUSY so that dir_db_transaction() runs it again, and every
 * decision is made exactly once.
 */

#include "lib/director/db-engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "util/alloc.h"
#include "util/cleanup.h"

/* Parameter type OIDs (pg_type.dat; stable since forever). */
#define OID_INT8 20u
#define OID_TEXT 25u

/* PostgreSQL's own limit on parameters of one statement. */
#define MAX_PARAMS 65535u

/* Key of the advisory lock migrations run under: "otterdir" in ASCII. */
#define MIGRATION_LOCK "7022344802737826162"

struct pg_prep {
	char name[32];
};

struct pg {
	PGconn *c;
	char *display; /* the URL without password, for messages */
	dir_db_cache cache;
	unsigned long next_stmt;
};

static int oom(otter_error *err)
{
	return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

static void prep_free(void *p)
{
	free(p);
}

/* The i-th secret of a URL (the password of its userinfo, then of each "password="). */
static bool url_secret(const char *url, size_t i, const char **p, size_t *n)
{
	const char *auth = strstr(url, "://");
	size_t found = 0;

	if (auth) {
		const char *a = auth + 3;
		size_t alen = strcspn(a, "/?#");
		const char *at = NULL, *colon;

		for (const char *q = a; q < a + alen; q++)
			if (*q == '@')
				at = q;
		colon = at ? memchr(a, ':', (size_t)(at - a)) : NULL;
		if (colon && found++ == i) {
			*p = colon + 1;
			*n = (size_t)(at - colon - 1);
			return true;
		}
	}
	for (const char *q = strchr(url, '?'); q && *q; q++) {
		if ((q[-1] == '?' || q[-1] == '&') && strncmp(q, "password=", 9) == 0 &&
		    found++ == i) {
			*p = q + 9;
			*n = strcspn(q + 9, "&#");
			return true;
		}
	}
	return false;
}

/* libpq's parse errors quote pieces of the URL: cut each of its secrets out of msg. */
static void scrub(char *msg, size_t size, const char *url)
{
	const char *sec;
	size_t n;

	for (size_t i = 0; url_secret(url, i, &sec, &n); i++) {
		size_t from = 0;
		char *hit;

		if (n == 0)
			continue;
		while ((hit = memmem(msg + from, strlen(msg + from), sec, n)) != NULL) {
			size_t at = (size_t)(hit - msg);
			size_t tail = strlen(hit + n);

			/* "***" may be longer than the secret: keep the message within size. */
			if (at + 3 >= size) {
				*hit = '\0';
				break;
			}
			if (at + 3 + tail >= size)
				tail = size - 1 - at - 3;
			memmove(hit + 3, hit + n, tail);
			memcpy(hit, "***", 3);
			hit[3 + tail] = '\0';
			from = at + 3;
		}
	}
}

/*
 * The URL for messages, its secrets replaced by "***" (style.md §3.6: never log
 * credentials). Caller frees.
 */
static char *redact_url(const char *url)
{
	size_t len = strlen(url), o = 0, in = 0, cap;
	const char *sec;
	size_t n;
	char *out;

	/* Each secret of at least one byte becomes three. */
	if (size_mul_overflow(len, 3, &cap) || size_add_overflow(cap, 1, &cap))
		return NULL;
	out = otter_malloc(cap);
	if (!out)
		return NULL;
	for (size_t i = 0; url_secret(url, i, &sec, &n); i++) {
		size_t at = (size_t)(sec - url);

		memcpy(out + o, url + in, at - in);
		o += at - in;
		memcpy(out + o, "***", 3);
		o += 3;
		in = at + n;
	}
	memcpy(out + o, url + in, len - in + 1);
	return out;
}

static bool sqlstate_is(const char *state, const char *want)
{
	return state && strcmp(state, want) == 0;
}

static int pg_code(struct pg *g, const char *state)
{
	if (PQstatus(g->c) == CONNECTION_BAD)
		return OTTER_E_NETWORK;
	if (!state)
		return OTTER_E_IO;
	if (sqlstate_is(state, "40001") || sqlstate_is(state, "40P01"))
		return OTTER_E_BUSY;
	if (sqlstate_is(state, "23505"))
		return OTTER_E_EXISTS;
	if (strncmp(state, "23", 2) == 0)
		return OTTER_E_INVALID;
	if (strncmp(state, "08", 2) == 0 || sqlstate_is(state, "57P01") ||
	    sqlstate_is(state, "57P02") || sqlstate_is(state, "57P03"))
		return OTTER_E_NETWORK;
	if (sqlstate_is(state, "53200"))
		return OTTER_E_NOMEM;
	return OTTER_E_IO;
}

/* A libpq message without its trailing newline, cut to one line. */
static void one_line(const char *in, char *out, size_t size)
{
	size_t n = in ? strcspn(in, "\n") : 0;

	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(out, in, n);
	out[n] = '\0';
}

/* Sets err from a failed result (or from the connection when res is NULL). */
static int pg_error(struct pg *g, const PGresult *res, const char *sql, otter_error *err)
{
	char head[DIR_DB_SQL_HEAD];
	char primary[256], detail[200];
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	int code = pg_code(g, state);

	dir_db_sql_head(sql, head);
	one_line(res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL, primary,
		 sizeof(primary));
	if (!primary[0])
		one_line(res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
							     : PQerrorMessage(g->c),
			 primary, sizeof(primary));
	one_line(res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL, detail,
		 sizeof(detail));
	if (code == OTTER_E_NETWORK)
		return otter_error_set(err, code, "postgresql: %s: connection to '%s' lost: %s", head,
				       g->display, primary);
	return otter_error_set(err, code, "postgresql: %s: %s%s%s%s [SQLSTATE %s]", head, primary,
			       detail[0] ? " (" : "", detail, detail[0] ? ")" : "",
			       state ? state : "none");
}

/* Ignores notices ("relation already exists, skipping"): the library never writes stderr. */
static void notice_ignore(void *arg, const char *message)
{
	(void)arg, (void)message;
}

/*
 * A dropped connection (server restart, network) is reopened before the next statement that
 * is not inside a transaction; the server forgot the prepared statements with it.
 */
static int ensure_connected(dir_db *db, otter_error *err)
{
	struct pg *g = db->impl;

	if (PQstatus(g->c) != CONNECTION_BAD)
		return 0;
	if (db->in_transaction)
		return otter_error_set(err, OTTER_E_NETWORK,
				       "postgresql: connection to '%s' lost inside a transaction",
				       g->display);
	dir_db_cache_clear(&g->cache);
	PQreset(g->c);
	if (PQstatus(g->c) != CONNECTION_OK) {
		char msg[256];

		one_line(PQerrorMessage(g->c), msg, sizeof(msg));
		return otter_error_set(err, OTTER_E_NETWORK,
				       "postgresql: cannot reconnect to '%s': %s", g->display, msg);
	}
	return 0;
}

/* Runs a statement without parameters or results (transaction control). */
static int simple(dir_db *db, const char *sql, const char *want_tag, otter_error *err)
{
	struct pg *g = db->impl;
	PGresult *res;
	int r = 0;

	r = ensure_connected(db, err);
	if (r)
		return r;
	res = PQexec(g->c, sql);
	if (!res)
		return pg_error(g, NULL, sql, err);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		r = pg_error(g, res, sql, err);
	else if (want_tag && strcmp(PQcmdStatus(res), want_tag) != 0)
		/* COMMIT of a transaction that failed answers ROLLBACK. */
		r = otter_error_set(err, OTTER_E_STATE,
				    "postgresql: %s answered '%s': the transaction was rolled back",
				    sql, PQcmdStatus(res));
	PQclear(res);
	return r;
}

static int read_rows(const PGresult *res, dir_db_rows **out, otter_error *err)
{
	size_t ntup = (size_t)PQntuples(res);
	size_t nf = (size_t)PQnfields(res);
	_cleanup_free_ const char **vals = NULL;
	_cleanup_free_ size_t *lens = NULL;
	dir_db_rows *rows = NULL;
	size_t bytes = 0;
	int r;

	r = dir_db_rows_new(&rows, nf, err);
	if (r)
		return r;
	if (nf > 0) {
		vals = otter_calloc(nf, sizeof(*vals));
		lens = otter_calloc(nf, sizeof(*lens));
		if (!vals || !lens) {
			dir_db_rows_free(rows);
			return oom(err);
		}
	}
	/* One pass to size the text, so that the copy allocates once. */
	for (size_t t = 0; t < ntup; t++)
		for (size_t f = 0; f < nf; f++)
			if (!PQgetisnull(res, (int)t, (int)f))
				bytes += (size_t)PQgetlength(res, (int)t, (int)f) + 1;
	r = dir_db_rows_reserve(rows, ntup, bytes, err);
	for (size_t t = 0; t < ntup && r == 0; t++) {
		for (size_t f = 0; f < nf; f++) {
			int ti = (int)t, fi = (int)f;

			if (PQgetisnull(res, ti, fi)) {
				vals[f] = NULL;
				lens[f] = 0;
			} else {
				vals[f] = PQgetvalue(res, ti, fi);
				lens[f] = (size_t)PQgetlength(res, ti, fi);
			}
		}
		r = dir_db_rows_append(rows, vals, lens, err);
	}
	if (r) {
		dir_db_rows_free(rows);
		return r;
	}
	*out = rows;
	return 0;
}

static uint64_t affected(PGresult *res)
{
	const char *tag = PQcmdStatus(res);
	const char *n = PQcmdTuples(res);
	uint64_t v = 0;

	if (strncmp(tag, "SELECT", 6) == 0)
		return 0;
	for (; *n >= '0' && *n <= '9'; n++)
		v = v * 10u + (uint64_t)(*n - '0');
	return v;
}

static int pg_exec(dir_db *db, const char *sql, const dir_db_param *params, size_t n,
		   dir_db_rows **rows_out, uint64_t *changes, otter_error *err)
{
	struct pg *g = db->impl;
	Oid small_types[16];
	const char *small_vals[16];
	char small_nums[16][24];
	_cleanup_free_ Oid *big_types = NULL;
	_cleanup_free_ const char **big_vals = NULL;
	_cleanup_free_ char (*big_nums)[24] = NULL;
	_cleanup_free_ char *key = NULL;
	Oid *types = small_types;
	const char **vals = small_vals;
	char (*nums)[24] = small_nums;
	size_t sql_len = strlen(sql), key_len;
	struct pg_prep *prep;
	PGresult *res;
	int r;

	if (n > MAX_PARAMS)
		return otter_error_set(err, OTTER_E_LIMIT,
				       "postgresql: %zu parameters, at most %u allowed", n,
				       MAX_PARAMS);
	r = ensure_connected(db, err);
	if (r)
		return r;
	if (n > ELEMENTSOF(small_types)) {
		big_types = otter_calloc(n, sizeof(*big_types));
		big_vals = otter_calloc(n, sizeof(*big_vals));
		big_nums = otter_calloc(n, sizeof(*big_nums));
		if (!big_types || !big_vals || !big_nums)
			return oom(err);
		types = big_types;
		vals = big_vals;
		nums = big_nums;
	}
	/* The cache key: the text, a NUL, then one letter per parameter type. */
	if (size_add_overflow(sql_len, n + 1, &key_len))
		return oom(err);
	key = otter_malloc(key_len);
	if (!key)
		return oom(err);
	memcpy(key, sql, sql_len + 1);
	/*
	 * Integers are sent as int8 and text as text, so "SELECT $1" means the same on both
	 * engines and a 64-bit value never meets an int4 guess. A NULL gets its type from the
	 * context (the column it is stored in or compared with).
	 */
	for (size_t i = 0; i < n; i++) {
		const dir_db_param *p = &params[i];

		if (p->type == DIR_DB_INT) {
			snprintf(nums[i], sizeof(nums[i]), "%" PRId64, p->i);
			vals[i] = nums[i];
			types[i] = OID_INT8;
			key[sql_len + 1 + i] = 'i';
		} else if (p->type == DIR_DB_TEXT && p->s) {
			vals[i] = p->s;
			types[i] = OID_TEXT;
			key[sql_len + 1 + i] = 't';
		} else {
			vals[i] = NULL;
			types[i] = 0;
			key[sql_len + 1 + i] = 'n';
		}
	}
	prep = dir_db_cache_get(&g->cache, key, key_len);
	if (!prep && dir_db_cache_has_room(&g->cache)) {
		_cleanup_free_ struct pg_prep *np = otter_calloc(1, sizeof(*np));

		if (!np)
			return oom(err);
		snprintf(np->name, sizeof(np->name), "otter_%lu", g->next_stmt++);
		res = PQprepare(g->c, np->name, sql, (int)n, types);
		if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
			r = pg_error(g, res, sql, err);
			PQclear(res);
			return r;
		}
		PQclear(res);
		r = dir_db_cache_put(&g->cache, key, key_len, np, err);
		if (r)
			return r;
		prep = TAKE_PTR(np);
	}
	if (prep)
		res = PQexecPrepared(g->c, prep->name, (int)n, vals, NULL, NULL, 0);
	else
		res = PQexecParams(g->c, sql, (int)n, types, vals, NULL, NULL, 0);
	if (!res)
		return pg_error(g, NULL, sql, err);
	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		break;
	default:
		r = pg_error(g, res, sql, err);
		PQclear(res);
		return r;
	}
	if (rows_out)
		r = read_rows(res, rows_out, err);
	if (r == 0 && changes)
		*changes = affected(res);
	PQclear(res);
	return r;
}

static int pg_exec_script(dir_db *db, const char *sql, otter_error *err)
{
	return simple(db, sql, NULL, err);
}

static int pg_begin(dir_db *db, otter_error *err)
{
	return simple(db, "BEGIN ISOLATION LEVEL SERIALIZABLE", NULL, err);
}

static int pg_commit(dir_db *db, otter_error *err)
{
	struct pg *g = db->impl;
	int r = simple(db, "COMMIT", "COMMIT", err);

	if (r && PQtransactionStatus(g->c) != PQTRANS_IDLE && PQstatus(g->c) == CONNECTION_OK) {
		PGresult *res = PQexec(g->c, "ROLLBACK");

		PQclear(res);
	}
	return r;
}

static void pg_rollback(dir_db *db)
{
	struct pg *g = db->impl;

	if (PQstatus(g->c) == CONNECTION_OK && PQtransactionStatus(g->c) != PQTRANS_IDLE) {
		PGresult *res = PQexec(g->c, "ROLLBACK");

		PQclear(res);
	}
}

static int pg_begin_locked(dir_db *db, otter_error *err)
{
	/*
	 * READ COMMITTED: each statement sees what was committed before it started, so after
	 * waiting for the lock the version read is the one the previous holder left. Under
	 * SERIALIZABLE the snapshot would date from before the wait.
	 */
	int r = simple(db,
		       "BEGIN ISOLATION LEVEL READ COMMITTED; "
		       "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")",
		       NULL, err);

	if (r)
		pg_rollback(db);
	return r;
}

static void pg_close(dir_db *db)
{
	struct pg *g = db->impl;

	if (!g)
		return;
	dir_db_cache_free(&g->cache);
	PQfinish(g->c);
	free(g->display);
	free(g);
	db->impl = NULL;
}

static int pg_open(dir_db *db, const char *url, otter_error *err)
{
	/*
	 * Defaults first; the URL comes last so that whatever it sets wins (expand_dbname).
	 * GSSAPI encryption is off unless asked for: probing for Kerberos credentials costs a
	 * round trip per connection on every machine without them.
	 */
	const char *const keys[] = { "connect_timeout", "client_encoding", "application_name",
				     "gssencmode", "dbname", NULL };
	const char *const values[] = { "10", "UTF8", "otter-director", "disable", url, NULL };
	PQconninfoOption *opts;
	char *perr = NULL;
	struct pg *g;
	int r;

	g = otter_calloc(1, sizeof(*g));
	if (!g)
		return oom(err);
	db->impl = g;
	g->display = redact_url(url);
	if (!g->display) {
		r = oom(err);
		goto fail;
	}
	opts = PQconninfoParse(url, &perr);
	if (!opts) {
		char msg[256];

		one_line(perr ? perr : "out of memory", msg, sizeof(msg));
		scrub(msg, sizeof(msg), url);
		r = otter_error_set(err, perr ? OTTER_E_CONFIG : OTTER_E_NOMEM,
				    "database URL '%s': %s", g->display, msg);
		PQfreemem(perr);
		goto fail;
	}
	PQconninfoFree(opts);
	r = dir_db_cache_init(&g->cache, prep_free, err);
	if (r)
		goto fail;
	g->c = PQconnectdbParams(keys, values, 1);
	if (!g->c) {
		r = oom(err);
		goto fail;
	}
	if (PQstatus(g->c) != CONNECTION_OK) {
		char msg[256];

		one_line(PQerrorMessage(g->c), msg, sizeof(msg));
		scrub(msg, sizeof(msg), url);
		r = otter_error_set(err, OTTER_E_NETWORK,
				    "postgresql: cannot connect to '%s': %s (is the server running "
				    "and the URL right?)",
				    g->display, msg);
		goto fail;
	}
	PQsetNoticeProcessor(g->c, notice_ignore, NULL);
	return 0;
fail:
	pg_close(db);
	return r;
}

const struct dir_db_ops dir_db_pg_ops = {
	.name = "postgresql",
	.engine = DIR_DB_POSTGRESQL,
	.open = pg_open,
	.close = pg_close,
	.exec = pg_exec,
	.exec_script = pg_exec_script,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.begin_locked = pg_begin_locked,
};
