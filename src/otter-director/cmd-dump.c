/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-director export and import: moving a director between databases (dump.h). */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/director/dump.h"
#include "otter-director/director.h"
#include "util/fileio.h"

static const char export_help[] =
	"Usage: otter-director export FILE\n"
	"\n"
	"Writes every row of the configured database to FILE (JSON lines, independent of the\n"
	"engine), read in one transaction, so the director may keep serving. FILE is written\n"
	"next to itself and renamed when complete; '-' writes to standard output.\n"
	"See docs/director.md, \"Moving from SQLite to PostgreSQL\".\n";

static const char import_help[] =
	"Usage: otter-director import FILE\n"
	"\n"
	"Loads a dump made by 'otter-director export' into the configured database, which must\n"
	"be new: its schema is migrated first and it must hold no devices, rollouts or other\n"
	"rows. The dump's schema version must equal this otter-director's. Everything is\n"
	"loaded in one transaction: on any error nothing is imported.\n";

static int one_file_argument(int argc, char **argv, const char *help)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(help, stdout);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '\0') {
		fputs(help, stderr);
		return EXIT_USAGE;
	}
	return -1;
}

int cmd_export(int argc, char **argv)
{
	otter_error err = OTTER_ERROR_INIT;
	director_config cfg;
	dir_db *db = NULL;
	char tmp[4096];
	uint64_t rows = 0;
	FILE *f;
	int r = one_file_argument(argc, argv, export_help);

	if (r >= 0)
		return r;
	if (director_cli_open("export", &cfg, &db) != 0)
		return EXIT_FAIL;
	if (strcmp(argv[1], "-") == 0) {
		f = stdout;
	} else {
		r = snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
		if (r < 0 || (size_t)r >= sizeof(tmp)) {
			r = otter_error_set(&err, OTTER_E_INVALID,
					    "export: file name of %zu bytes is too long (at most %zu)",
					    strlen(argv[1]), sizeof(tmp) - 5);
			goto out;
		}
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		f = fd < 0 ? NULL : fdopen(fd, "w");
		if (!f) {
			r = otter_error_set_errno(&err, errno, "export: cannot create %s", tmp);
			if (fd >= 0)
				close(fd);
			goto out;
		}
	}
	r = dir_dump_export(db, f, &rows, &err);
	if (f != stdout) {
		if (r == 0 && fsync(fileno(f)) < 0)
			r = otter_error_set_errno(&err, errno, "export: cannot sync %s", tmp);
		if (fclose(f) == EOF && r == 0)
			r = otter_error_set_errno(&err, errno, "export: cannot write %s", tmp);
		if (r == 0 && rename(tmp, argv[1]) < 0)
			r = otter_error_set_errno(&err, errno, "export: cannot rename %s to %s", tmp,
						  argv[1]);
		if (r < 0)
			unlink(tmp);
	}
	if (r == 0)
		fprintf(stderr, "exported %" PRIu64 " rows from %s\n", rows,
			dir_db_engine_name(db));
out:
	dir_db_close(db);
	director_config_clear(&cfg);
	return r < 0 ? cli_fail("export", &err) : 0;
}

int cmd_import(int argc, char **argv)
{
	otter_error err = OTTER_ERROR_INIT;
	director_config cfg;
	dir_db *db = NULL;
	uint64_t rows = 0;
	FILE *f;
	int r = one_file_argument(argc, argv, import_help);

	if (r >= 0)
		return r;
	f = fopen(argv[1], "re");
	if (!f) {
		otter_error_set_errno(&err, errno, "import: cannot open %s", argv[1]);
		return cli_fail("import", &err);
	}
	if (director_cli_open("import", &cfg, &db) != 0) {
		fclose(f);
		return EXIT_FAIL;
	}
	r = dir_dump_import(db, f, &rows, &err);
	fclose(f);
	if (r == 0)
		fprintf(stderr, "imported %" PRIu64 " rows into %s\n", rows,
			dir_db_engine_name(db));
	dir_db_close(db);
	director_config_clear(&cfg);
	return r < 0 ? cli_fail("import", &err) : 0;
}
