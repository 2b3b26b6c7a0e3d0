/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_UTIL_INI_H
#define OTTER_UTIL_INI_H

/*
 * A small table-driven INI parser (style.md §3.10) for configuration files, which are
 * untrusted input: the file, line and value lengths are capped, NUL and control bytes are
 * refused, numbers go through the strict parser. Unknown sections and keys are errors, and
 * every error reads "file:line: key: reason".
 *
 * Syntax: "[section]" headers, "key=value" lines, blank lines, and comments that start with
 * '#' or ';' at the beginning of a line, or with '#' after whitespace at the end of a value
 * ("tries=3   # attempts"). Whitespace around keys and values is ignored. Values are not
 * quoted, so a value cannot contain " #".
 *
 * Callers describe each section with a table of keys. A section is either one fixed name
 * ("system") or a family sharing a prefix ("slot." for [slot.rootfs.0]). A file shared by
 * modules is read by each with its own table (see ini_options.foreign_sections).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

#define INI_MAX_FILE_SIZE (64u * 1024u)
#define INI_MAX_LINE      1024u
#define INI_MAX_KEYS      64u /* per section table */

typedef enum ini_type {
	INI_STRING, /* printable text, stored as char * (malloc()ed; a previous value is freed) */
	INI_PATH,   /* an absolute path, stored as char * */
	INI_U64,    /* a decimal in [min, max], stored as uint64_t */
	INI_ENUM,   /* one of choices, stored as unsigned (its index) */
} ini_type;

typedef struct ini_key {
	const char *name;
	ini_type type;
	size_t offset;               /* of the field inside the section's target struct */
	uint64_t min, max;           /* INI_U64: range; INI_STRING/INI_PATH: max length (0 = 255) */
	const char *const *choices;  /* INI_ENUM: NULL-terminated list */
	const char *def;             /* default applied before the section's lines, or NULL */
	bool required;
} ini_key;

/* A key=value line that no ini_key of its section describes (see ini_section.other). */
typedef struct ini_entry {
	const char *filename;
	unsigned line;
	const char *section; /* the header as written, trimmed ("expiry", "slot.rootfs.0") */
	const char *key;
	const char *value;   /* trimmed; may be empty */
} ini_entry;

typedef struct ini_section {
	const char *name;   /* fixed section name, or a prefix ending in '.' for a family */
	bool required;      /* fixed sections only: the file must contain it */
	const ini_key *keys;
	size_t n_keys;
	/*
	 * Returns in *target the struct that receives the values of one section. For a family,
	 * subname is the part of the header after the prefix; the callback may refuse it. For
	 * fixed sections target may simply be a field of userdata.
	 */
	int (*begin)(void *userdata, const char *subname, void **target, otter_error *err);
	/* Optional: validates a complete section. */
	int (*end)(void *userdata, void *target, otter_error *err);
	/* If not NULL, passed to begin/end instead of ini_parse's userdata (appended tables). */
	void *userdata;
	/*
	 * Optional: receives the lines whose key is not in keys (free-form keys such as role
	 * names, or values of a type the table does not know); it reports its own errors,
	 * normally as "file:line: section.key: reason". Without it such a key is an error.
	 */
	int (*other)(void *userdata, void *target, const ini_entry *e, otter_error *err);
	bool repeatable;    /* fixed sections only: may appear more than once */
} ini_section;

/*
 * Per-file variations of the syntax; ini_parse uses {0}.
 *
 * A file read by two modules (system.conf: slot reads [system], [bootloader] and [slot.*],
 * the agent [update]) is parsed once by each, with one table each: the first names the
 * other's sections in foreign_sections, so that any other unknown section stays an error;
 * the second sets skip_unknown_sections. Both check the syntax of every line.
 */
typedef struct ini_options {
	size_t max_line;         /* longest line; 0 = INI_MAX_LINE, at most INI_MAX_LINE_LIMIT */
	bool ascii_only;         /* refuse bytes >= 0x80 as well as control bytes */
	bool no_inline_comments; /* "#" after a value is part of the value */
	/* NULL-terminated names (a prefix ending in '.' for a family) of sections another
	 * reader of the file checks: their key=value lines are skipped here. */
	const char *const *foreign_sections;
	bool skip_unknown_sections; /* every section no table describes is skipped */
} ini_options;

#define INI_MAX_LINE_LIMIT 4096u

/*
 * Parses data (len bytes) named filename in messages. Fixed sections that do not appear get
 * their defaults (and fail if required). On failure the targets may hold partial values;
 * the caller frees them as usual.
 */
int ini_parse(const char *filename, const uint8_t *data, size_t len, const ini_section *sections,
	      size_t n_sections, void *userdata, otter_error *err);
int ini_parse_opts(const ini_options *opts, const char *filename, const uint8_t *data, size_t len,
		   const ini_section *sections, size_t n_sections, void *userdata,
		   otter_error *err);

#endif
