/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_BOOT_H
#define OTTER_BOOT_H

/*
 * Boot state of A/B slots, kept in the bootloader's environment with the variables RAUC
 * integrators already use, so that existing boot scripts keep working:
 *
 *   U-Boot (libubootenv, fw_env.config):  BOOT_ORDER="B A", BOOT_<name>_LEFT=<tries left>
 *   GRUB (grubenv, 1024 bytes):           ORDER="B A", <name>_OK=0|1, <name>_TRY=<attempts>
 *
 * Slots are named by bootname ("A", "B"); a bootname stands for every slot class booted
 * together. Variables missing from the environment take the defaults of the shipped boot
 * scripts (contrib/): the order of the configured bootnames, and full tries.
 *
 * Every change is one environment write: with U-Boot, libubootenv writes the inactive copy
 * of a redundant environment and flips its flag; with GRUB the 1024-byte file is replaced
 * atomically (temp file, fsync, rename, directory fsync). A power cut leaves the old or the
 * new state, never a mix. Writing a U-Boot environment that has no valid copy is refused,
 * because it would replace U-Boot's built-in defaults with our few variables.
 *
 * The booted slot is read from the kernel command line file: "otter.slot=<bootname>".
 *
 * Not thread-safe: one otter_boot per thread. Each call reads the environment afresh.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OTTER_BOOT_MAX_BOOTNAMES 8
#define OTTER_BOOT_TRIES_MAX     9  /* the shipped scripts count in one decimal digit */
#define OTTER_BOOTNAME_MAX       16 /* bytes of a bootname */

typedef enum otter_bootloader {
	OTTER_BOOTLOADER_UBOOT = 0,
	OTTER_BOOTLOADER_GRUB = 1,
} otter_bootloader;

/* True for names usable in U-Boot and GRUB variable names: 1..16 bytes of [A-Za-z0-9_]. */
OTTER_PUBLIC bool otter_bootname_is_valid(const char *s);

typedef struct otter_boot_options {
	unsigned version;            /* OTTER_BOOT_OPTIONS_VERSION */
	otter_bootloader bootloader;
	const char *env_path;        /* U-Boot: fw_env.config; GRUB: the grubenv file */
	const char *cmdline_path;    /* NULL = /proc/cmdline */
	unsigned tries;              /* tries granted on mark-good / mark-active (1..9) */
	const char *const *bootnames; /* the configured bootnames, 2..OTTER_BOOT_MAX_BOOTNAMES */
	size_t n_bootnames;
} otter_boot_options;

#define OTTER_BOOT_OPTIONS_VERSION 1

typedef struct otter_boot otter_boot;

/* Checks the options; touches no file. */
OTTER_PUBLIC int otter_boot_new(otter_boot **out, const otter_boot_options *opts,
				otter_error *err) OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC otter_boot *otter_boot_free(otter_boot *boot);

/* The state of one bootname as the environment has it. */
typedef struct otter_boot_slot_state {
	bool in_order;       /* listed in the boot order */
	unsigned position;   /* 0 = first in the order (when in_order) */
	unsigned tries_left; /* boot attempts the bootloader will still make */
	bool bootable;       /* in_order && tries_left > 0 */
} otter_boot_slot_state;

/*
 * The bootname the running system was booted from (otter.slot= on the command line file),
 * borrowed from the configured names. OTTER_E_NOT_FOUND if the command line has none,
 * OTTER_E_BOOT if it names an unknown slot.
 */
OTTER_PUBLIC int otter_boot_get_booted(otter_boot *boot, const char **out, otter_error *err);

/* The first bootname in the boot order (borrowed); OTTER_E_BOOT if the order is empty. */
OTTER_PUBLIC int otter_boot_get_primary(otter_boot *boot, const char **out, otter_error *err);

OTTER_PUBLIC int otter_boot_get_state(otter_boot *boot, const char *bootname,
				      otter_boot_slot_state *out, otter_error *err);
OTTER_PUBLIC int otter_boot_get_tries_left(otter_boot *boot, const char *bootname,
					   unsigned *out, otter_error *err);

/* The boot order as borrowed names; *n <= max. */
OTTER_PUBLIC int otter_boot_get_order(otter_boot *boot, const char **names, size_t max,
				      size_t *n, otter_error *err);

/* Tries reset to the configured number; the order is kept. */
OTTER_PUBLIC int otter_boot_mark_good(otter_boot *boot, const char *bootname, otter_error *err);
/* Tries 0 and out of the order: the bootloader will not boot it any more. */
OTTER_PUBLIC int otter_boot_mark_bad(otter_boot *boot, const char *bootname, otter_error *err);
/* First in the order with full tries: the next boot tries it. */
OTTER_PUBLIC int otter_boot_mark_active(otter_boot *boot, const char *bootname,
					otter_error *err);

/*
 * A warning about the boot environment's robustness, or "" when there is none: a U-Boot
 * environment that fw_env.config describes with a single copy (no redundant copy) is lost
 * to U-Boot's built-in defaults by a power cut during a write (returns 0); a grubenv torn by
 * a power cut during GRUB's in-place save_env, which GRUB can no longer save into, so that it
 * counts no tries (returns 1: the environment needs to be written again, which any mark
 * does, whole). Reads fw_env.config or the grubenv only.
 */
OTTER_PUBLIC int otter_boot_env_warning(otter_boot *boot, char *out, size_t size,
					otter_error *err);

OTTER_PUBLIC const char *otter_bootloader_name(otter_bootloader b);

#ifdef __cplusplus
}
#endif

#endif
