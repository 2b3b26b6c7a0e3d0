/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_SCHEMA_H
#define OTTER_LIB_DIRECTOR_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

/*
 * The director's schema, as numbered migrations applied in order by dir_db_migrate(). A
 * migration is never edited once released; a change is a new migration. sqlite and
 * postgresql hold the text for each engine (postgresql NULL: the same as sqlite).
 */
typedef struct dir_migration {
	int64_t version;
	const char *what;
	const char *sqlite;
	const char *postgresql;
} dir_migration;

extern const dir_migration dir_migrations[];
extern const size_t dir_n_migrations;

#endif
