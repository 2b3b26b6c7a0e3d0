/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_DUMP_H
#define OTTER_LIB_DIRECTOR_DUMP_H

/*
 * An engine-independent copy of a director database (docs/director.md, "Moving from SQLite to
 * PostgreSQL"): `otter-director export` writes every table of the schema as JSON lines,
 * `otter-director import` loads them into an empty database at the same schema version, in one
 * transaction, so that the move is all or nothing.
 *
 * Format (one JSON value per line, UTF-8):
 *   {"otter-director-dump": 1, "schema_version": N, "engine": "sqlite"}
 *   {"table": "devices", "columns": ["id", "created", ...]}
 *   ["dev-1", "1733600000", ...]             one array per row: strings, or null for NULL
 *   ...                                      (integers as decimal strings, as both engines
 *                                             read them back)
 *   {"end": true, "rows": TOTAL}
 * Tables come in the order of their references (dir_dump_tables), each exactly once.
 */

#include <stdint.h>
#include <stdio.h>

#include <otter/error.h>

#include "lib/director/db.h"

/* The tables of the schema, in the order an import must fill them. NULL-terminated. */
extern const char *const dir_dump_tables[];

/* Writes the whole database to f in one read transaction. *rows (optional) gets the count. */
int dir_dump_export(dir_db *db, FILE *f, uint64_t *rows, otter_error *err);

/*
 * Loads a dump from f (a regular file: a retried transaction reads it again) into db, which
 * must be migrated to the dump's schema version and hold no rows in any dumped table.
 * Refuses (OTTER_E_FORMAT) a truncated or malformed dump, a table or column the schema does
 * not have, a schema version that differs (OTTER_E_VERSION), a database that is not empty
 * (OTTER_E_STATE). Nothing is written unless the whole dump loads.
 */
int dir_dump_import(dir_db *db, FILE *f, uint64_t *rows, otter_error *err);

#endif
