/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The director's storage, engine-independent part: dispatch by URL, result rows, the
 * statement cache the engines share, transactions with bounded retries, and migrations.
 */

#include "lib/director/db-engine.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/director/schema.h"
#include "util/alloc.h"

/*
 * Conflicts are retried this often. Two writers on one row conflict at most once per commit
 * of the other, so with a randomized backoff a transaction gives up only under sustained
 * contention from many processes; the caller then gets OTTER_E_BUSY and may answer 503.
 */
#define TX_MAX_TRIES   40u
#define BACKOFF_MAX_US 50000u

/* A result holds at most this much text (the director's queries are paged far below). */
#define ROWS_MAX_BYTES ((size_t)1 << 30)

static int oom(otter_error *err)
{
	return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

/* ---- result rows ---- */

/* Values are kept in one text arena (each NUL-terminated) and found by offset. */
#define NULL_OFF SIZE_MAX

struct dir_db_rows {
	size_t columns;
	size_t count;
	size_t cap;   /* rows the offset table has room for */
	size_t *off;  /* count * columns offsets into text, NULL_OFF for SQL NULL */
	char *text;
	size_t text_len;
	size_t text_cap;
};

int dir_db_rows_new(dir_db_rows **out, size_t columns, otter_error *err)
{
	dir_db_rows *r = otter_calloc(1, sizeof(*r));

	if (!r)
		return oom(err);
	r->columns = columns;
	*out = r;
	return 0;
}

dir_db_rows *dir_db_rows_free(dir_db_rows *r)
{
	if (r) {
		free(r->off);
		free(r->text);
		free(r);
	}
	return NULL;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem, otter_error *err)
{
	size_t n = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need) {
		if (size_mul_overflow(n, 2, &n))
			return otter_error_set(err, OTTER_E_TOO_LARGE, "database result too large");
	}
	q = otter_reallocarray(*p, n, elem);
	if (!q)
		return oom(err);
	*p = q;
	*cap = n;
	return 0;
}

int dir_db_rows_reserve(dir_db_rows *r, size_t rows, size_t bytes, otter_error *err)
{
	size_t need_rows, need_cells, need_text, cells_cap;
	int res;

	if (size_add_overflow(r->count, rows, &need_rows) ||
	    size_mul_overflow(need_rows, r->columns, &need_cells) ||
	    size_add_overflow(r->text_len, bytes, &need_text) || need_text > ROWS_MAX_BYTES)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "database result too large (more than %zu bytes)",
				       ROWS_MAX_BYTES);
	cells_cap = r->cap * r->columns;
	if (r->columns > 0 && need_cells > cells_cap) {
		res = grow((void **)&r->off, &cells_cap, need_cells, sizeof(size_t), err);
		if (res)
			return res;
		r->cap = cells_cap / r->columns;
	} else if (r->columns == 0) {
		r->cap = need_rows;
	}
	return grow((void **)&r->text, &r->text_cap, need_text, 1, err);
}

int dir_db_rows_append(dir_db_rows *r, const char *const *values, const size_t *lengths,
		       otter_error *err)
{
	size_t bytes = 0;
	size_t base;
	int res;

	for (size_t c = 0; c < r->columns; c++) {
		size_t len;

		if (!values[c])
			continue;
		len = lengths ? lengths[c] : strlen(values[c]);
		if (size_add_overflow(bytes, len, &bytes) || size_add_overflow(bytes, 1, &bytes))
			return otter_error_set(err, OTTER_E_TOO_LARGE, "database value too large");
	}
	res = dir_db_rows_reserve(r, 1, bytes, err);
	if (res)
		return res;
	base = r->count * r->columns;
	for (size_t c = 0; c < r->columns; c++) {
		size_t len;

		if (!values[c]) {
			r->off[base + c] = NULL_OFF;
			continue;
		}
		len = lengths ? lengths[c] : strlen(values[c]);
		r->off[base + c] = r->text_len;
		memcpy(r->text + r->text_len, values[c], len);
		r->text[r->text_len + len] = '\0';
		r->text_len += len + 1;
	}
	r->count++;
	return 0;
}

size_t dir_db_rows_count(const dir_db_rows *r)
{
	return r ? r->count : 0;
}

size_t dir_db_rows_columns(const dir_db_rows *r)
{
	return r ? r->columns : 0;
}

const char *dir_db_rows_text(const dir_db_rows *r, size_t row, size_t col)
{
	size_t off;

	if (!r || row >= r->count || col >= r->columns)
		return NULL;
	off = r->off[row * r->columns + col];
	return off == NULL_OFF ? NULL : r->text + off;
}

/* Strict: optional '-', digits without leading zeros, in range; no spaces, no "-0". */
static bool parse_i64(const char *s, int64_t *out)
{
	bool neg = false;
	uint64_t v = 0;
	/* The magnitude of INT64_MIN, one more than INT64_MAX. */
	const uint64_t lim_neg = (uint64_t)INT64_MAX + 1u;

	if (*s == '-') {
		neg = true;
		s++;
	}
	if (*s < '0' || *s > '9' || (s[0] == '0' && (s[1] != '\0' || neg)))
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (UINT64_MAX - 9u) / 10u)
			return false;
		v = v * 10u + (uint64_t)(*s - '0');
		if (v > lim_neg)
			return false;
	}
	if (!neg && v > (uint64_t)INT64_MAX)
		return false;
	if (neg)
		*out = v == lim_neg ? INT64_MIN : -(int64_t)v;
	else
		*out = (int64_t)v;
	return true;
}

int dir_db_rows_int(const dir_db_rows *r, size_t row, size_t col, int64_t *out,
		    otter_error *err)
{
	const char *s = dir_db_rows_text(r, row, col);

	if (!s)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "database value at row %zu, column %zu is NULL or missing, "
				       "expected an integer",
				       row, col);
	if (!parse_i64(s, out))
		return otter_error_set(err, OTTER_E_FORMAT,
				       "database value at row %zu, column %zu is not a 64-bit "
				       "integer",
				       row, col);
	return 0;
}

/* ---- messages ---- */

void dir_db_sql_head(const char *sql, char out[DIR_DB_SQL_HEAD])
{
	const size_t keep = DIR_DB_SQL_HEAD - 8;
	size_t o = 0;
	bool space = false;

	while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')
		sql++;
	for (; *sql && o < keep; sql++) {
		char c = *sql;

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			space = true;
			continue;
		}
		if (space && o > 0)
			out[o++] = ' ';
		space = false;
		if (o < keep)
			out[o++] = (unsigned char)c < 0x20 ? '?' : c;
	}
	if (*sql) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* ---- statement cache ---- */

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3u;
	}
	return h;
}

int dir_db_cache_init(dir_db_cache *c, void (*drop)(void *value), otter_error *err)
{
	c->slots = otter_calloc(DIR_DB_CACHE_CAP, sizeof(*c->slots));
	if (!c->slots)
		return oom(err);
	c->cap = DIR_DB_CACHE_CAP;
	c->n = 0;
	c->drop = drop;
	return 0;
}

static size_t cache_find(const dir_db_cache *c, const char *key, size_t key_len, uint64_t h)
{
	size_t mask = c->cap - 1;

	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		const dir_db_cache_entry *e = &c->slots[i];

		if (!e->key || (e->hash == h && e->key_len == key_len &&
				memcmp(e->key, key, key_len) == 0))
			return i;
	}
}

void *dir_db_cache_get(const dir_db_cache *c, const char *key, size_t key_len)
{
	size_t i;

	if (!c->slots)
		return NULL;
	i = cache_find(c, key, key_len, fnv1a(key, key_len));
	return c->slots[i].key ? c->slots[i].value : NULL;
}

bool dir_db_cache_has_room(const dir_db_cache *c)
{
	/* At most 3/4 full, so that probing always ends at an empty slot. */
	return c->slots && c->n < c->cap / 4 * 3;
}

int dir_db_cache_put(dir_db_cache *c, const char *key, size_t key_len, void *value,
		     otter_error *err)
{
	uint64_t h = fnv1a(key, key_len);
	size_t i;
	char *k;

	if (!dir_db_cache_has_room(c))
		return otter_error_set(err, OTTER_E_LIMIT, "statement cache full");
	i = cache_find(c, key, key_len, h);
	if (c->slots[i].key)
		return otter_error_set(err, OTTER_E_EXISTS, "statement already cached");
	k = otter_memdup(key, key_len);
	if (!k)
		return oom(err);
	c->slots[i] = (dir_db_cache_entry){ .key = k, .key_len = key_len, .hash = h, .value = value };
	c->n++;
	return 0;
}

void dir_db_cache_clear(dir_db_cache *c)
{
	for (size_t i = 0; c->slots && i < c->cap; i++) {
		dir_db_cache_entry *e = &c->slots[i];

		if (!e->key)
			continue;
		if (c->drop)
			c->drop(e->value);
		free(e->key);
		*e = (dir_db_cache_entry){ 0 };
	}
	c->n = 0;
}

void dir_db_cache_free(dir_db_cache *c)
{
	dir_db_cache_clear(c);
	free(c->slots);
	c->slots = NULL;
	c->cap = 0;
}

/* ---- connections ---- */

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static uint64_t rng_next(dir_db *db)
{
	uint64_t x = db->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	db->rng = x;
	return x;
}

int dir_db_open(dir_db **out, const char *url, otter_error *err)
{
	const struct dir_db_ops *ops;
	struct timespec ts;
	dir_db *db;
	int r;

	if (!out || !url)
		return otter_error_set(err, OTTER_E_INVALID, "dir_db_open: no database URL");
	if (has_prefix(url, "sqlite:"))
		ops = &dir_db_sqlite_ops;
	else if (has_prefix(url, "postgresql://") || has_prefix(url, "postgres://"))
		ops = &dir_db_pg_ops;
	else
		return otter_error_set(err, OTTER_E_CONFIG,
				       "database URL must start with 'sqlite:' (sqlite:/path/to/"
				       "director.db) or 'postgresql://' (a libpq URI)");
	db = otter_calloc(1, sizeof(*db));
	if (!db)
		return oom(err);
	db->ops = ops;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	db->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)db ^
		  ((uint64_t)getpid() << 40);
	if (db->rng == 0)
		db->rng = 0x9e3779b97f4a7c15u;
	r = ops->open(db, url, err);
	if (r) {
		free(db);
		return r;
	}
	*out = db;
	return 0;
}

dir_db *dir_db_close(dir_db *db)
{
	if (db) {
		if (db->in_transaction)
			db->ops->rollback(db);
		db->ops->close(db);
		free(db);
	}
	return NULL;
}

dir_db_engine dir_db_engine_of(const dir_db *db)
{
	return db->ops->engine;
}

const char *dir_db_engine_name(const dir_db *db)
{
	return db->ops->name;
}

static int tx_aborted(otter_error *err, const char *sql)
{
	char head[DIR_DB_SQL_HEAD];

	dir_db_sql_head(sql, head);
	return otter_error_set(err, OTTER_E_STATE,
			       "%s: an earlier statement of this transaction failed; the "
			       "transaction callback must return that error",
			       head);
}

int dir_db_exec(dir_db *db, const char *sql, const dir_db_param *params, size_t n,
		dir_db_rows **rows, uint64_t *changes, otter_error *err)
{
	int r;

	if (!db || !sql || (n > 0 && !params))
		return otter_error_set(err, OTTER_E_INVALID, "dir_db_exec: invalid arguments");
	if (db->in_transaction && db->tx_failed)
		return tx_aborted(err, sql);
	r = db->ops->exec(db, sql, params, n, rows, changes, err);
	if (r && db->in_transaction)
		db->tx_failed = true;
	return r;
}

int dir_db_exec_script(dir_db *db, const char *sql, otter_error *err)
{
	int r;

	if (!db || !sql)
		return otter_error_set(err, OTTER_E_INVALID, "dir_db_exec_script: invalid arguments");
	if (db->in_transaction && db->tx_failed)
		return tx_aborted(err, sql);
	r = db->ops->exec_script(db, sql, err);
	if (r && db->in_transaction)
		db->tx_failed = true;
	return r;
}

/* ---- transactions ---- */

static void backoff(dir_db *db, unsigned attempt)
{
	uint64_t cap = 1000u << (attempt < 6 ? attempt : 6); /* 2 ms .. 64 ms */
	uint64_t us;
	struct timespec ts;

	if (cap > BACKOFF_MAX_US)
		cap = BACKOFF_MAX_US;
	us = cap / 4 + rng_next(db) % (cap - cap / 4 + 1);
	ts.tv_sec = (time_t)(us / 1000000u);
	ts.tv_nsec = (long)(us % 1000000u) * 1000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void pass_error(otter_error *err, const otter_error *e)
{
	if (err && err->code == 0)
		*err = *e;
}

typedef int (*tx_fn)(dir_db *db, void *ud, otter_error *err);

static int tx_run(dir_db *db, int (*begin)(dir_db *db, otter_error *err), tx_fn fn, void *ud,
		  otter_error *err)
{
	for (unsigned attempt = 1;; attempt++) {
		otter_error e = OTTER_ERROR_INIT;
		int r = begin(db, &e);

		if (r == 0) {
			db->in_transaction = true;
			db->tx_failed = false;
			r = fn(db, ud, &e);
			if (r == 0 && db->tx_failed)
				r = otter_error_set(&e, OTTER_E_STATE,
						    "a statement of the transaction failed but "
						    "the callback returned success; rolled back");
			if (r == 0)
				r = db->ops->commit(db, &e);
			else
				db->ops->rollback(db);
			db->in_transaction = false;
			db->tx_failed = false;
		}
		if (r == 0)
			return 0;
		if (r != OTTER_E_BUSY || attempt >= TX_MAX_TRIES) {
			if (r == OTTER_E_BUSY)
				otter_error_prefix(&e, r,
						   "%s: transaction still conflicting after %u "
						   "tries (try again later)",
						   db->ops->name, attempt);
			pass_error(err, &e);
			return r;
		}
		backoff(db, attempt);
	}
}

int dir_db_transaction(dir_db *db, int (*fn)(dir_db *db, void *ud, otter_error *err), void *ud,
		       otter_error *err)
{
	if (!db || !fn)
		return otter_error_set(err, OTTER_E_INVALID, "dir_db_transaction: invalid arguments");
	/* Nested: the inner work joins the outer transaction, which retries as a whole. */
	if (db->in_transaction)
		return fn(db, ud, err);
	return tx_run(db, db->ops->begin, fn, ud, err);
}

/* ---- migrations ---- */

static const char migrations_table[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	"  version BIGINT PRIMARY KEY NOT NULL,"
	"  what TEXT NOT NULL,"
	"  applied BIGINT NOT NULL"
	")";

struct migrate_step {
	int64_t latest;  /* newest version this build knows */
	int64_t current; /* the database's version when the step looked */
	bool applied;    /* the step applied a migration */
};

static int migrate_step(dir_db *db, void *ud, otter_error *err)
{
	struct migrate_step *s = ud;
	dir_db_rows *rows = NULL;
	const dir_migration *m = NULL;
	const char *text;
	int r;

	s->applied = false;
	r = dir_db_exec(db, migrations_table, NULL, 0, NULL, NULL, err);
	if (r)
		return r;
	r = dir_db_exec(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0,
			&rows, NULL, err);
	if (r == 0)
		r = dir_db_rows_int(rows, 0, 0, &s->current, err);
	rows = dir_db_rows_free(rows);
	if (r)
		return r;
	if (s->current > s->latest)
		return otter_error_set(err, OTTER_E_VERSION,
				       "%s: the database's schema version %" PRId64
				       " is newer than this build's %" PRId64
				       ": it was written by a newer otter-director; run that "
				       "version or a newer one",
				       db->ops->name, s->current, s->latest);
	for (size_t i = 0; i < dir_n_migrations && !m; i++)
		if (dir_migrations[i].version > s->current)
			m = &dir_migrations[i];
	if (!m)
		return 0;
	text = m->sqlite;
	if (db->ops->engine == DIR_DB_POSTGRESQL && m->postgresql)
		text = m->postgresql;
	r = dir_db_exec_script(db, text, err);
	if (r)
		return otter_error_prefix(err, r, "schema migration %" PRId64 " (%s)", m->version,
					  m->what);
	r = dir_db_exec(db,
			"INSERT INTO schema_migrations (version, what, applied) VALUES ($1, $2, $3)",
			(const dir_db_param[]){ DIR_DB_I(m->version), DIR_DB_S(m->what),
						DIR_DB_I(time(NULL)) },
			3, NULL, NULL, err);
	if (r)
		return r;
	s->current = m->version;
	s->applied = true;
	return 0;
}

int dir_db_migrate(dir_db *db, int64_t *version, otter_error *err)
{
	struct migrate_step s = { .latest = 0 };
	int r;

	if (!db)
		return otter_error_set(err, OTTER_E_INVALID, "dir_db_migrate: no database");
	if (db->in_transaction)
		return otter_error_set(err, OTTER_E_STATE,
				       "dir_db_migrate: called inside a transaction");
	for (size_t i = 0; i < dir_n_migrations; i++) {
		/* The table is sorted by version, strictly: a gap is fine, a repeat is not. */
		if (dir_migrations[i].version <= s.latest)
			return otter_error_set(err, OTTER_E_INVALID,
					       "schema migration %" PRId64 " out of order",
					       dir_migrations[i].version);
		s.latest = dir_migrations[i].version;
	}
	/* One migration per transaction, each re-reading the version under the lock. */
	do {
		r = tx_run(db, db->ops->begin_locked, migrate_step, &s, err);
		if (r)
			return r;
	} while (s.applied);
	if (version)
		*version = s.current;
	return 0;
}
