/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_SYSTEM_H
#define OTTER_SYSTEM_H

/*
 * The device's system configuration, /etc/otter/system.conf (docs/ab-updates.md):
 *
 *   [system]      compatible, bootloader (uboot | grub), data-directory, cmdline
 *   [bootloader]  fw-env-config (uboot), grubenv (grub), tries (1..9, default 3)
 *   [slot.<class>.<index>]  device, type (raw | ext4), bootname
 *
 * Slots are grouped by bootname across classes (RAUC semantics): [slot.kernel.0] and
 * [slot.rootfs.0] with bootname A are booted, and switched, together. Every class has one
 * slot per bootname. Unknown sections or keys, and every other mistake, are errors reading
 * "file:line: key: reason" (OTTER_E_CONFIG).
 *
 * An otter_system is immutable once loaded; it may be shared by readers in one thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/boot.h>
#include <otter/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OTTER_SYSTEM_CONF_DEFAULT "/etc/otter/system.conf"

typedef enum otter_slot_type {
	OTTER_SLOT_RAW = 0,
	OTTER_SLOT_EXT4 = 1,
} otter_slot_type;

typedef struct otter_system otter_system;
typedef struct otter_slot otter_slot;

/* Reads and parses the file at path (at most 64 KiB). */
OTTER_PUBLIC int otter_system_load(otter_system **out, const char *path, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;
/* Parses len bytes of configuration text; name is used in messages. */
OTTER_PUBLIC int otter_system_parse(otter_system **out, const char *name, const uint8_t *data,
				    size_t len, otter_error *err) OTTER_WARN_UNUSED_RESULT;
/*
 * otter_system_parse for a file that other modules read too (system.conf and the agent's
 * [update]): the sections named in foreign_sections (NULL-terminated; a name ending in '.'
 * names a family, "x." for [x.*]) are left to their reader, which checks their keys; any
 * other unknown section is still an error.
 */
OTTER_PUBLIC int otter_system_parse_shared(otter_system **out, const char *name,
					   const uint8_t *data, size_t len,
					   const char *const *foreign_sections, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC otter_system *otter_system_free(otter_system *sys);

/* A boot state handle (include/otter/boot.h) set up from this configuration. */
OTTER_PUBLIC int otter_system_new_boot(const otter_system *sys, otter_boot **out,
				       otter_error *err) OTTER_WARN_UNUSED_RESULT;

/* Borrowed strings, valid as long as sys. */
OTTER_PUBLIC const char *otter_system_compatible(const otter_system *sys);
OTTER_PUBLIC otter_bootloader otter_system_bootloader(const otter_system *sys);
OTTER_PUBLIC const char *otter_system_data_dir(const otter_system *sys);
OTTER_PUBLIC const char *otter_system_cmdline(const otter_system *sys);
OTTER_PUBLIC const char *otter_system_fw_env_config(const otter_system *sys);
OTTER_PUBLIC const char *otter_system_grubenv(const otter_system *sys);
OTTER_PUBLIC unsigned otter_system_tries(const otter_system *sys);

/* Slots in file order. */
OTTER_PUBLIC size_t otter_system_n_slots(const otter_system *sys);
OTTER_PUBLIC const otter_slot *otter_system_slot(const otter_system *sys, size_t i);
/* By name "class.index" ("rootfs.1"); NULL if none. */
OTTER_PUBLIC const otter_slot *otter_system_find_slot(const otter_system *sys, const char *name);
/* The slot of class with this bootname; NULL if none. */
OTTER_PUBLIC const otter_slot *otter_system_find_slot_by_bootname(const otter_system *sys,
								   const char *class_name,
								   const char *bootname);
/* Distinct bootnames in order of first appearance ("A", "B"). */
OTTER_PUBLIC size_t otter_system_n_bootnames(const otter_system *sys);
OTTER_PUBLIC const char *otter_system_bootname(const otter_system *sys, size_t i);
OTTER_PUBLIC bool otter_system_has_bootname(const otter_system *sys, const char *bootname);

OTTER_PUBLIC const char *otter_slot_name(const otter_slot *slot);  /* "rootfs.1" */
OTTER_PUBLIC const char *otter_slot_class(const otter_slot *slot); /* "rootfs" */
OTTER_PUBLIC unsigned otter_slot_index(const otter_slot *slot);
OTTER_PUBLIC const char *otter_slot_device(const otter_slot *slot);
OTTER_PUBLIC otter_slot_type otter_slot_get_type(const otter_slot *slot);
OTTER_PUBLIC const char *otter_slot_bootname(const otter_slot *slot);

#ifdef __cplusplus
}
#endif

#endif
