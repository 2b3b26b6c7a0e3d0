/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Engine-independent export and import of a director database (dump.h). */

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

#include "lib/director/dump.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/strutil.h"

#define DUMP_FORMAT 1
#define DUMP_MAX_LINE (64u * 1024 * 1024) /* a row's JSON; manifests and metadata are far less */
#define DUMP_MAX_COLUMNS 64
#define DUMP_PAGE 5000
#define DUMP_MAX_SQL 8192

static void rows_freep(dir_db_rows **r)
{
	dir_db_rows_free(*r);
}

static void sql_freep(otter_buf *b)
{
	buf_clear(b);
}

const char *const dir_dump_tables[] = {
	"devices",	  "device_tags",     "ecus",	  "provisioning_tokens",
	"director_roots", "device_metadata", "manifests", "rollouts",
	"rollout_phases", "rollout_devices", "assignments", NULL,
};

/* The columns of one table as the database has them. */
typedef struct columns {
	size_t n;
	char *name[DUMP_MAX_COLUMNS];
	bool is_int[DUMP_MAX_COLUMNS];
} columns;

static void columns_clear(columns *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->name[i]);
	c->n = 0;
}

/* Identifiers go into SQL text: only what our schema uses. */
static bool ident_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static int table_index(const char *name)
{
	for (int i = 0; dir_dump_tables[i]; i++)
		if (strcmp(dir_dump_tables[i], name) == 0)
			return i;
	return -1;
}

static int table_columns(dir_db *db, const char *table, columns *c, otter_error *err)
{
	static const char q_sqlite[] = "SELECT name, type FROM pragma_table_info($1) ORDER BY cid";
	static const char q_pg[] =
		"SELECT column_name, data_type FROM information_schema.columns "
		"WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position";
	dir_db_param p = DIR_DB_S(table);
	_cleanup_(rows_freep) dir_db_rows *rows = NULL;
	int r;

	c->n = 0;
	r = dir_db_exec(db, dir_db_engine_of(db) == DIR_DB_SQLITE ? q_sqlite : q_pg, &p, 1, &rows,
			NULL, err);
	if (r < 0)
		return r;
	if (dir_db_rows_count(rows) == 0)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "table '%s' does not exist in this database", table);
	if (dir_db_rows_count(rows) > DUMP_MAX_COLUMNS)
		return otter_error_set(err, OTTER_E_LIMIT, "table '%s' has %zu columns, at most %u",
				       table, dir_db_rows_count(rows), DUMP_MAX_COLUMNS);
	for (size_t i = 0; i < dir_db_rows_count(rows); i++) {
		const char *name = dir_db_rows_text(rows, i, 0);
		const char *type = dir_db_rows_text(rows, i, 1);
		if (!name || !type || !ident_ok(name)) {
			columns_clear(c);
			return otter_error_set(err, OTTER_E_FORMAT, "table '%s': unexpected column '%s'",
					       table, name ? name : "(null)");
		}
		c->name[c->n] = otter_strdup(name);
		if (!c->name[c->n]) {
			columns_clear(c);
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		}
		c->is_int[c->n++] = strcasestr(type, "int") != NULL;
	}
	return 0;
}

/* Every table of the database is one the dump knows (or the migrations' own table). */
static int check_tables_known(dir_db *db, otter_error *err)
{
	static const char q_sqlite[] = "SELECT name FROM sqlite_master WHERE type = 'table' "
				       "AND name NOT LIKE 'sqlite!_%' ESCAPE '!'";
	static const char q_pg[] = "SELECT table_name FROM information_schema.tables "
				   "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'";
	_cleanup_(rows_freep) dir_db_rows *rows = NULL;
	int r = dir_db_exec(db, dir_db_engine_of(db) == DIR_DB_SQLITE ? q_sqlite : q_pg, NULL, 0,
			    &rows, NULL, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < dir_db_rows_count(rows); i++) {
		const char *t = dir_db_rows_text(rows, i, 0);
		if (t && strcmp(t, "schema_migrations") != 0 && table_index(t) < 0)
			return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
					       "table '%s' is not known to export/import; this "
					       "otter-director is older than the schema", t);
	}
	return 0;
}

static int schema_version(dir_db *db, int64_t *version, otter_error *err)
{
	_cleanup_(rows_freep) dir_db_rows *rows = NULL;
	int r = dir_db_exec(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0,
			    &rows, NULL, err);

	if (r < 0)
		return r;
	return dir_db_rows_int(rows, 0, 0, version, err);
}

static int write_json_line(FILE *f, json_t *v, otter_error *err)
{
	int r = 0;

	if (!v)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (json_dumpf(v, f, JSON_COMPACT | JSON_ENSURE_ASCII) < 0 || fputc('\n', f) == EOF)
		r = otter_error_set_errno(err, errno, "export: cannot write the dump");
	json_decref(v);
	return r;
}

/* ---- export ---- */

typedef struct export_ctx {
	FILE *f;
	off_t start; /* -1: not seekable */
	unsigned attempt;
	uint64_t rows;
} export_ctx;

static int export_table(dir_db *db, export_ctx *x, const char *table, otter_error *err)
{
	columns c = { 0 };
	_cleanup_(sql_freep) otter_buf sql = { .max = DUMP_MAX_SQL };
	json_t *names;
	int r;

	r = table_columns(db, table, &c, err);
	if (r < 0)
		return r;
	names = json_array();
	for (size_t i = 0; names && i < c.n; i++)
		if (json_array_append_new(names, json_string(c.name[i])) < 0)
			json_decref(names), names = NULL;
	r = write_json_line(x->f, json_pack("{s:s, s:o}", "table", table, "columns", names), err);
	/* ORDER BY every column: a total order (each table has a key), so pages neither skip
	 * nor repeat rows inside the transaction's snapshot. */
	if (r == 0)
		r = buf_append_str(&sql, "SELECT ", err);
	for (size_t i = 0; r == 0 && i < c.n; i++)
		r = buf_printf(&sql, err, "%s%s", i ? ", " : "", c.name[i]);
	if (r == 0)
		r = buf_printf(&sql, err, " FROM %s ORDER BY ", table);
	for (size_t i = 0; r == 0 && i < c.n; i++)
		r = buf_printf(&sql, err, "%s%zu", i ? ", " : "", i + 1);
	if (r == 0)
		r = buf_append_str(&sql, " LIMIT $1 OFFSET $2", err);
	for (int64_t offset = 0; r == 0;) {
		dir_db_param p[2] = { DIR_DB_I(DUMP_PAGE), DIR_DB_I(offset) };
		_cleanup_(rows_freep) dir_db_rows *rows = NULL;
		size_t n;

		r = dir_db_exec(db, (const char *)sql.data, p, 2, &rows, NULL, err);
		if (r < 0)
			break;
		n = dir_db_rows_count(rows);
		for (size_t i = 0; r == 0 && i < n; i++) {
			json_t *row = json_array();
			for (size_t j = 0; row && j < c.n; j++) {
				const char *v = dir_db_rows_text(rows, i, j);
				if (json_array_append_new(row, v ? json_string(v) : json_null()) < 0)
					json_decref(row), row = NULL;
			}
			r = write_json_line(x->f, row, err);
			x->rows++;
		}
		if (n < DUMP_PAGE)
			break;
		offset += DUMP_PAGE;
	}
	columns_clear(&c);
	return r;
}

static int export_cb(dir_db *db, void *ud, otter_error *err)
{
	export_ctx *x = ud;
	int64_t version;
	int r;

	if (x->attempt++ > 0) {
		/* A retried transaction writes the dump again from its start. */
		if (x->start < 0 || fseeko(x->f, x->start, SEEK_SET) < 0)
			return otter_error_set(err, OTTER_E_BUSY,
					       "export: the database was busy and the output cannot "
					       "be rewound; export to a file and try again");
		x->rows = 0;
	}
	r = check_tables_known(db, err);
	if (r == 0)
		r = schema_version(db, &version, err);
	if (r == 0)
		r = write_json_line(x->f,
				    json_pack("{s:i, s:I, s:s}", "otter-director-dump", DUMP_FORMAT,
					      "schema_version", (json_int_t)version, "engine",
					      dir_db_engine_name(db)),
				    err);
	for (size_t i = 0; r == 0 && dir_dump_tables[i]; i++)
		r = export_table(db, x, dir_dump_tables[i], err);
	if (r == 0)
		r = write_json_line(x->f, json_pack("{s:b, s:I}", "end", 1, "rows",
						    (json_int_t)x->rows),
				    err);
	return r;
}

int dir_dump_export(dir_db *db, FILE *f, uint64_t *rows, otter_error *err)
{
	export_ctx x = { .f = f, .start = ftello(f) };
	int r = dir_db_transaction(db, export_cb, &x, err);

	if (r == 0 && fflush(f) == EOF)
		r = otter_error_set_errno(err, errno, "export: cannot write the dump");
	if (r == 0 && x.start >= 0 && ftruncate(fileno(f), ftello(f)) < 0 && errno != EINVAL)
		r = otter_error_set_errno(err, errno, "export: cannot truncate the dump file");
	if (r == 0 && rows)
		*rows = x.rows;
	return r;
}

/* ---- import ---- */

typedef struct import_ctx {
	FILE *f;
	off_t start;
	char *line;
	size_t cap;
	uint64_t lineno;
	uint64_t rows;
} import_ctx;

/* The next line as JSON; *out NULL at the end of the file. */
static int next_json(import_ctx *m, json_t **out, otter_error *err)
{
	json_error_t jerr;
	ssize_t n;

	*out = NULL;
	errno = 0;
	n = getline(&m->line, &m->cap, m->f);
	if (n < 0) {
		if (errno != 0 && !feof(m->f))
			return otter_error_set_errno(err, errno, "import: cannot read the dump");
		return 0;
	}
	m->lineno++;
	if ((size_t)n > DUMP_MAX_LINE)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "import: line %" PRIu64 " has %zd bytes, at most %u", m->lineno,
				       n, DUMP_MAX_LINE);
	*out = json_loadb(m->line, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out)
		return otter_error_set(err, OTTER_E_FORMAT, "import: line %" PRIu64 ": %s",
				       m->lineno, jerr.text);
	return 0;
}

static int table_empty(dir_db *db, const char *table, otter_error *err)
{
	char sql[128];
	_cleanup_(rows_freep) dir_db_rows *rows = NULL;
	int r;

	snprintf(sql, sizeof(sql), "SELECT 1 FROM %s LIMIT 1", table);
	r = dir_db_exec(db, sql, NULL, 0, &rows, NULL, err);
	if (r == 0 && dir_db_rows_count(rows) > 0)
		r = otter_error_set(err, OTTER_E_STATE,
				    "import: table '%s' of the target database is not empty; import "
				    "into a new database",
				    table);
	return r;
}

/* The INSERT for one table, with the dump's columns (which must be the database's). */
static int prepare_insert(dir_db *db, const char *table, const json_t *names, otter_buf *sql,
			  size_t *ncols, otter_error *err)
{
	columns c = { 0 };
	size_t n = json_array_size(names);
	int r = table_columns(db, table, &c, err);

	if (r < 0)
		return r;
	if (n != c.n) {
		r = otter_error_set(err, OTTER_E_FORMAT,
				    "import: table '%s' has %zu columns in the dump and %zu in the "
				    "database; export and import with the same otter-director version",
				    table, n, c.n);
		goto out;
	}
	sql->len = 0;
	r = buf_printf(sql, err, "INSERT INTO %s (", table);
	for (size_t i = 0; r == 0 && i < n; i++) {
		const char *name = json_string_value(json_array_get(names, i));
		if (!name || !ident_ok(name))
			r = otter_error_set(err, OTTER_E_FORMAT,
					    "import: table '%s': column %zu is not a column name", table,
					    i + 1);
		else
			r = buf_printf(sql, err, "%s%s", i ? ", " : "", name);
	}
	if (r == 0)
		r = buf_append_str(sql, ") VALUES (", err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		const char *name = json_string_value(json_array_get(names, i));
		size_t k;
		for (k = 0; k < c.n && strcmp(c.name[k], name) != 0; k++)
			;
		if (k == c.n)
			r = otter_error_set(err, OTTER_E_FORMAT,
					    "import: table '%s' has no column '%s' in this database",
					    table, name);
		else
			r = buf_printf(sql, err, c.is_int[k] ? "%sCAST($%zu AS BIGINT)" : "%s$%zu",
				       i ? ", " : "", i + 1);
	}
	if (r == 0)
		r = buf_append_str(sql, ")", err);
	if (r == 0)
		*ncols = n;
out:
	columns_clear(&c);
	return r;
}

static int import_row(dir_db *db, import_ctx *m, const char *table, const char *sql,
		      size_t ncols, const json_t *row, otter_error *err)
{
	dir_db_param p[DUMP_MAX_COLUMNS];

	if (!json_is_array(row) || json_array_size(row) != ncols)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "import: line %" PRIu64 ": a row of '%s' must be an array of "
				       "%zu values",
				       m->lineno, table, ncols);
	for (size_t i = 0; i < ncols; i++) {
		const json_t *v = json_array_get(row, i);
		if (json_is_null(v))
			p[i] = DIR_DB_N;
		else if (json_is_string(v))
			p[i] = DIR_DB_S(json_string_value(v));
		else
			return otter_error_set(err, OTTER_E_FORMAT,
					       "import: line %" PRIu64 ": value %zu of a '%s' row is "
					       "neither a string nor null",
					       m->lineno, i + 1, table);
	}
	return dir_db_exec(db, sql, p, ncols, NULL, NULL, err);
}

static int import_cb(dir_db *db, void *ud, otter_error *err)
{
	import_ctx *m = ud;
	_cleanup_(sql_freep) otter_buf sql = { .max = DUMP_MAX_SQL };
	const char *table = NULL;
	int next_table = 0;
	size_t ncols = 0;
	bool ended = false;
	int r;

	if (fseeko(m->f, m->start, SEEK_SET) < 0)
		return otter_error_set_errno(err, errno, "import: cannot rewind the dump");
	m->lineno = 1; /* the header, read by dir_dump_import */
	m->rows = 0;
	r = check_tables_known(db, err);
	for (size_t i = 0; r == 0 && dir_dump_tables[i]; i++)
		r = table_empty(db, dir_dump_tables[i], err);
	while (r == 0) {
		json_t *v;
		r = next_json(m, &v, err);
		if (r < 0 || !v)
			break;
		if (ended) {
			r = otter_error_set(err, OTTER_E_FORMAT,
					    "import: line %" PRIu64 ": data after the end line",
					    m->lineno);
		} else if (json_is_array(v)) {
			if (!table)
				r = otter_error_set(err, OTTER_E_FORMAT,
						    "import: line %" PRIu64 ": a row before any table",
						    m->lineno);
			else if ((r = import_row(db, m, table, (const char *)sql.data, ncols, v, err)) == 0)
				m->rows++;
		} else if (json_object_get(v, "table")) {
			const char *t = json_string_value(json_object_get(v, "table"));
			int idx = t ? table_index(t) : -1;
			if (idx < 0 || idx < next_table)
				r = otter_error_set(err, OTTER_E_FORMAT,
						    "import: line %" PRIu64 ": table '%s' is unknown, "
						    "repeated or out of order",
						    m->lineno, t ? t : "(not a string)");
			else {
				table = dir_dump_tables[idx];
				next_table = idx + 1;
				r = prepare_insert(db, table, json_object_get(v, "columns"), &sql,
						   &ncols, err);
			}
		} else if (json_is_true(json_object_get(v, "end"))) {
			json_int_t total = json_integer_value(json_object_get(v, "rows"));
			ended = true;
			if (total < 0 || (uint64_t)total != m->rows)
				r = otter_error_set(err, OTTER_E_FORMAT,
						    "import: the dump says %" JSON_INTEGER_FORMAT
						    " rows, it holds %" PRIu64,
						    total, m->rows);
		} else {
			r = otter_error_set(err, OTTER_E_FORMAT,
					    "import: line %" PRIu64 " is neither a table, a row nor "
					    "the end",
					    m->lineno);
		}
		json_decref(v);
	}
	if (r == 0 && !ended)
		r = otter_error_set(err, OTTER_E_FORMAT,
				    "import: the dump ends without its end line (truncated?); "
				    "nothing was imported");
	return r;
}

int dir_dump_import(dir_db *db, FILE *f, uint64_t *rows, otter_error *err)
{
	import_ctx m = { .f = f };
	json_t *head = NULL;
	int64_t version = 0;
	int r;

	r = next_json(&m, &head, err);
	if (r == 0 && (!head || json_integer_value(json_object_get(head, "otter-director-dump")) !=
					DUMP_FORMAT))
		r = otter_error_set(err, OTTER_E_FORMAT,
				    "import: not an otter-director dump (format %d)", DUMP_FORMAT);
	if (r == 0)
		r = schema_version(db, &version, err);
	if (r == 0 && json_integer_value(json_object_get(head, "schema_version")) != version)
		r = otter_error_set(err, OTTER_E_VERSION,
				    "import: the dump is of schema version %" JSON_INTEGER_FORMAT
				    ", this database is at %" PRId64
				    "; export and import with the same otter-director version",
				    json_integer_value(json_object_get(head, "schema_version")),
				    version);
	json_decref(head);
	if (r == 0) {
		m.start = ftello(f);
		if (m.start < 0)
			r = otter_error_set_errno(err, errno,
						  "import: the dump must be a regular file");
	}
	if (r == 0)
		r = dir_db_transaction(db, import_cb, &m, err);
	free(m.line);
	if (r == 0 && rows)
		*rows = m.rows;
	return r;
}
