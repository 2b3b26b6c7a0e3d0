/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_BOOT_PRIVATE_H
#define OTTER_LIB_BOOT_PRIVATE_H

#include <otter/boot.h>

/* Longest value of an order variable: 8 names of 16 bytes and separators. */
#define BOOT_ORDER_MAX 256u

/*
 * The bootloader-neutral view of an environment. Each backend translates its variables to and
 * from it; the operations in boot.c only ever see this.
 */
struct boot_env {
	unsigned order[OTTER_BOOT_MAX_BOOTNAMES]; /* indexes into otter_boot.names */
	size_t n_order;
	unsigned left[OTTER_BOOT_MAX_BOOTNAMES];  /* tries left, per configured bootname */
	bool order_dirty;
	bool dirty[OTTER_BOOT_MAX_BOOTNAMES];     /* store writes the variables of these */
};

struct boot_backend {
	const char *name;
	/* Reads the environment into env (defaults for missing variables). */
	int (*load)(otter_boot *boot, struct boot_env *env, otter_error *err);
	/* Writes the dirty parts of env in one atomic environment write. */
	int (*store)(otter_boot *boot, const struct boot_env *env, otter_error *err);
};

struct otter_boot {
	const struct boot_backend *backend;
	otter_bootloader bootloader;
	char *env_path;
	char *cmdline_path;
	unsigned tries;
	char *names[OTTER_BOOT_MAX_BOOTNAMES];
	size_t n_names;
};

/* GRUB: why the grubenv needs to be rewritten whole (torn), or "" (grubenv.h). */
int grub_env_damage(otter_boot *boot, char *out, size_t size, otter_error *err);

extern const struct boot_backend boot_backend_uboot;
extern const struct boot_backend boot_backend_grub;

/* Index of name among the configured bootnames, or -1. */
int boot_name_index(const otter_boot *boot, const char *name, size_t len);
/* Parses an order variable ("B A") into env; unknown or repeated names are errors. */
int boot_parse_order(const otter_boot *boot, const char *var, const char *value,
		     struct boot_env *env, otter_error *err);
/* Formats env's order as "B A". */
void boot_format_order(const otter_boot *boot, const struct boot_env *env, char *out,
		       size_t size);
/* Default order: the configured bootnames in order, all with full tries. */
void boot_env_defaults(const otter_boot *boot, struct boot_env *env);

#endif
