/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_SLOT_SYSTEM_PRIVATE_H
#define OTTER_LIB_SLOT_SYSTEM_PRIVATE_H

#include <otter/system.h>


#define OTTER_SYSTEM_MAX_SLOTS     32u
#define OTTER_SYSTEM_MAX_BOOTNAMES 8u
#define OTTER_CLASS_MAX            32u

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
};

#endif
