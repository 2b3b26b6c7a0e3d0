/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_BOOT_GRUBENV_H
#define OTTER_LIB_BOOT_GRUBENV_H

/*
 * The GRUB environment block, as grub-editenv and GRUB's load_env/save_env read and write it:
 * exactly 1024 bytes, the line "# GRUB Environment Block", then "name=value" lines, then '#'
 * padding. In values, '\' and newline are escaped by a preceding '\'. The file is untrusted:
 * the size is fixed, names are checked, and the number of variables is capped.
 */

#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

#define GRUBENV_SIZE     1024u
#define GRUBENV_HEADER   "# GRUB Environment Block\n"
#define GRUBENV_MAX_VARS 64u

struct grubenv_var {
	char *name;
	char *value;
};

typedef struct grubenv {
	struct grubenv_var vars[GRUBENV_MAX_VARS];
	size_t n;
	/*
	 * Set by grubenv_parse for a block torn by a power cut during GRUB's in-place save_env,
	 * which GRUB reads but cannot save into again: NULL, or why. No signature (the first
	 * sector lost): read as empty, as GRUB's load_env fails and the script uses its
	 * defaults. '#' padding that is not all '#' (the second sector lost): the variables
	 * before it are kept, as GRUB keeps them, but save_env fails ("environment block too
	 * small"), so no try is counted until the block is rewritten whole.
	 */
	const char *damage;
} grubenv;

/* Parses exactly GRUBENV_SIZE bytes into env (initialised, its old contents are freed);
 * what names the file in messages. A torn block is no error: see damage. */
int grubenv_parse(grubenv *env, const uint8_t *data, size_t len, const char *what,
		  otter_error *err);
/* Borrowed value or NULL. */
const char *grubenv_get(const grubenv *env, const char *name);
/* Sets (or adds at the end) name=value. */
int grubenv_set(grubenv *env, const char *name, const char *value, otter_error *err);
/* Serialises into exactly GRUBENV_SIZE bytes; OTTER_E_TOO_LARGE if the variables don't fit. */
int grubenv_serialize(const grubenv *env, uint8_t out[GRUBENV_SIZE], otter_error *err);
void grubenv_clear(grubenv *env);

#endif
