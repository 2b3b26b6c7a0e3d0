/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_SLOT_SYSTEM_PRIVATE_H
#define OTTER_LIB_SLOT_SYSTEM_PRIVATE_H

#include <otter/bootslot.h>
#include <otter/system.h>

#include "util/ini.h"


#define OTTER_SYSTEM_MAX_SLOTS     32u
#define OTTER_SYSTEM_MAX_BOOTNAMES 8u
#define OTTER_CLASS_MAX            32u
#define OTTER_SYSTEM_MAX_BOOT_SLOTS 4u

/* [boot-slot.<class>] (bootslot.c, include/otter/bootslot.h). */
struct otter_boot_slot {
	char *class_name;
	unsigned type;          /* otter_boot_slot_type */
	char *device;
	uint64_t partition;     /* 1-based table entry */
	uint64_t region_start;  /* bytes: half 0 */
	uint64_t region_size;   /* bytes per half; half 1 follows half 0 */
};

struct otter_slot {
	char *name;  /* class.index */
	char *class_name;
	unsigned index;
	char *device;
	unsigned type;
	char *bootname;
};

struct otter_system {
	struct {
		char *compatible;
		unsigned bootloader;
		char *data_dir;
		char *cmdline;
	} sys;
	struct {
		char *fw_env_config;
		char *grubenv;
		uint64_t tries;
	} bl;
	otter_slot *slots;
	size_t n_slots;
	const char *bootnames[OTTER_SYSTEM_MAX_BOOTNAMES];
	size_t n_bootnames;
	struct otter_boot_slot *boot_slots;
	size_t n_boot_slots;
};

/* The [boot-slot.*] section family, in bootslot.c. */
struct ini_key;
#define BOOT_SLOT_N_KEYS 5u
extern const struct ini_key boot_slot_keys[BOOT_SLOT_N_KEYS];
int boot_slot_begin(void *userdata, const char *subname, void **target, otter_error *err);
int boot_slot_end(void *userdata, void *target, otter_error *err);
void boot_slot_clear(struct otter_boot_slot *bs);
/* Whole-file checks: no class both a bootloader and an A/B slot, no shared device. */
int boot_slot_validate(const otter_system *sys, const char *name, otter_error *err);

#endif
