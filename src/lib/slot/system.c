/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "system-private.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/args.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/ini.h"
#include "util/strutil.h"

#define PATH_MAX_LEN 4095u

static const char *const bootloader_names[] = {"uboot", "grub", NULL};
static const char *const slot_type_names[] = {"raw", "ext4", NULL};

#define SYS_FIELD(f) offsetof(struct otter_system, sys.f)
#define BL_FIELD(f)  offsetof(struct otter_system, bl.f)
#define SLOT_FIELD(f) offsetof(struct otter_slot, f)

static const ini_key system_keys[] = {
	{"compatible", INI_STRING, SYS_FIELD(compatible), 0, 255, NULL, NULL, true},
	{"bootloader", INI_ENUM, SYS_FIELD(bootloader), 0, 0, bootloader_names, NULL, true},
	{"data-directory", INI_PATH, SYS_FIELD(data_dir), 0, PATH_MAX_LEN, NULL,
	 "/var/lib/otter", false},
	{"cmdline", INI_PATH, SYS_FIELD(cmdline), 0, PATH_MAX_LEN, NULL, "/proc/cmdline", false},
};

static const ini_key bootloader_keys[] = {
	{"fw-env-config", INI_PATH, BL_FIELD(fw_env_config), 0, PATH_MAX_LEN, NULL,
	 "/etc/fw_env.config", false},
	{"grubenv", INI_PATH, BL_FIELD(grubenv), 0, PATH_MAX_LEN, NULL, "/boot/grub/grubenv",
	 false},
	{"tries", INI_U64, BL_FIELD(tries), 1, OTTER_BOOT_TRIES_MAX, NULL, "3", false},
};

static const ini_key slot_keys[] = {
	{"device", INI_PATH, SLOT_FIELD(device), 0, PATH_MAX_LEN, NULL, NULL, true},
	{"type", INI_ENUM, SLOT_FIELD(type), 0, 0, slot_type_names, "raw", false},
	{"bootname", INI_STRING, SLOT_FIELD(bootname), 0, OTTER_BOOTNAME_MAX, NULL, NULL, true},
};

static bool class_is_valid(const char *s, size_t n)
{
	if (n == 0 || n > OTTER_CLASS_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int begin_fixed(void *userdata, const char *subname, void **target, otter_error *err)
{
	*target = userdata;
	return 0;
}

static int begin_slot(void *userdata, const char *subname, void **target, otter_error *err)
{
	otter_system *sys = userdata;
	const char *dot = strrchr(subname, '.');
	otter_slot *slots, *slot;
	uint64_t index;

	if (!dot || !class_is_valid(subname, (size_t)(dot - subname)))
		return otter_error_set(err, OTTER_E_CONFIG,
				       "slot sections are named [slot.<class>.<index>], with a "
				       "class of 1..%u bytes of a-z 0-9 _ -",
				       OTTER_CLASS_MAX);
	if (parse_u64_range(dot + 1, 0, OTTER_SYSTEM_MAX_SLOTS - 1, &index) < 0)
		return otter_error_set(err, OTTER_E_CONFIG, "slot index '%s' is not a number from "
				       "0 to %u", dot + 1, OTTER_SYSTEM_MAX_SLOTS - 1);
	for (size_t i = 0; i < sys->n_slots; i++)
		if (strcmp(sys->slots[i].name, subname) == 0)
			return otter_error_set(err, OTTER_E_CONFIG, "slot defined twice");
	if (sys->n_slots >= OTTER_SYSTEM_MAX_SLOTS)
		return otter_error_set(err, OTTER_E_LIMIT, "more than %u slots",
				       OTTER_SYSTEM_MAX_SLOTS);
	slots = otter_reallocarray(sys->slots, sys->n_slots + 1, sizeof(*slots));
	if (!slots)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	sys->slots = slots;
	slot = &slots[sys->n_slots];
	memset(slot, 0, sizeof(*slot));
	slot->name = otter_strdup(subname);
	slot->class_name = otter_strndup(subname, (size_t)(dot - subname));
	sys->n_slots++; /* counted now so that otter_system_free releases it */
	if (!slot->name || !slot->class_name)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	slot->index = (unsigned)index;
	*target = slot;
	return 0;
}

static int end_slot(void *userdata, void *target, otter_error *err)
{
	otter_system *sys = userdata;
	otter_slot *slot = target;

	if (!otter_bootname_is_valid(slot->bootname))
		return otter_error_set(err, OTTER_E_CONFIG,
				       "bootname: '%s' must be 1..%u bytes of A-Z a-z 0-9 _ (it "
				       "names bootloader variables)",
				       slot->bootname, OTTER_BOOTNAME_MAX);
	for (size_t i = 0; i + 1 < sys->n_slots; i++) {
		const otter_slot *o = &sys->slots[i];

		if (strcmp(o->device, slot->device) == 0)
			return otter_error_set(err, OTTER_E_CONFIG,
					       "device: '%s' is also the device of slot %s",
					       slot->device, o->name);
		if (strcmp(o->class_name, slot->class_name) == 0 &&
		    strcmp(o->bootname, slot->bootname) == 0)
			return otter_error_set(err, OTTER_E_CONFIG,
					       "bootname: '%s' is also the bootname of slot %s",
					       slot->bootname, o->name);
	}
	return 0;
}

static const ini_section system_sections[] = {
	{"system", true, system_keys, ELEMENTSOF(system_keys), begin_fixed, NULL, NULL},
	{"bootloader", false, bootloader_keys, ELEMENTSOF(bootloader_keys), begin_fixed, NULL,
	 NULL},
	{"slot.", false, slot_keys, ELEMENTSOF(slot_keys), begin_slot, end_slot, NULL},
	{"boot-slot.", false, boot_slot_keys, BOOT_SLOT_N_KEYS, boot_slot_begin, boot_slot_end,
	 NULL},
};

otter_system *otter_system_free(otter_system *sys)
{
	if (!sys)
		return NULL;
	free(sys->sys.compatible);
	free(sys->sys.data_dir);
	free(sys->sys.cmdline);
	free(sys->bl.fw_env_config);
	free(sys->bl.grubenv);
	for (size_t i = 0; i < sys->n_slots; i++) {
		free(sys->slots[i].name);
		free(sys->slots[i].class_name);
		free(sys->slots[i].device);
		free(sys->slots[i].bootname);
	}
	free(sys->slots);
	for (size_t i = 0; i < sys->n_boot_slots; i++)
		boot_slot_clear(&sys->boot_slots[i]);
	free(sys->boot_slots);
	free(sys);
	return NULL;
}

/* Whole-file checks: the A/B structure the boot module and the installer rely on. */
static int validate(otter_system *sys, const char *name, otter_error *err)
{
	if (sys->n_slots == 0)
		return otter_error_set(err, OTTER_E_CONFIG, "%s: no [slot.<class>.<index>] sections",
				       name);
	for (size_t i = 0; i < sys->n_slots; i++) {
		const char *bn = sys->slots[i].bootname;
		bool known = false;

		for (size_t j = 0; j < sys->n_bootnames; j++)
			known = known || strcmp(sys->bootnames[j], bn) == 0;
		if (known)
			continue;
		if (sys->n_bootnames >= OTTER_SYSTEM_MAX_BOOTNAMES)
			return otter_error_set(err, OTTER_E_CONFIG, "%s: more than %u bootnames",
					       name, OTTER_SYSTEM_MAX_BOOTNAMES);
		sys->bootnames[sys->n_bootnames++] = bn;
	}
	if (sys->n_bootnames < 2)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "%s: slots need at least two bootnames (A/B) to update one "
				       "while the other runs",
				       name);
	/* Every class has one slot per bootname, so activating a bootname switches them all. */
	for (size_t i = 0; i < sys->n_slots; i++)
		for (size_t j = 0; j < sys->n_bootnames; j++)
			if (!otter_system_find_slot_by_bootname(sys, sys->slots[i].class_name,
								sys->bootnames[j]))
				return otter_error_set(err, OTTER_E_CONFIG,
						       "%s: class '%s' has no slot with bootname "
						       "'%s' (every class needs one slot per "
						       "bootname)",
						       name, sys->slots[i].class_name,
						       sys->bootnames[j]);
	return boot_slot_validate(sys, name, err);
}

int otter_system_parse_shared(otter_system **out, const char *name, const uint8_t *data,
			      size_t len, const char *const *foreign_sections, otter_error *err)
{
	const ini_options opts = {.foreign_sections = foreign_sections};
	otter_system *sys;
	int r;

	ARG_NONNULL(err, "system", out);
	ARG_NONNULL(err, "system", name);
	sys = otter_calloc(1, sizeof(*sys));
	if (!sys)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = ini_parse_opts(&opts, name, data, len, system_sections, ELEMENTSOF(system_sections),
			   sys, err);
	if (r == 0)
		r = validate(sys, name, err);
	if (r < 0) {
		otter_system_free(sys);
		return r;
	}
	*out = sys;
	return 0;
}

int otter_system_parse(otter_system **out, const char *name, const uint8_t *data, size_t len,
		       otter_error *err)
{
	return otter_system_parse_shared(out, name, data, len, NULL, err);
}

int otter_system_load(otter_system **out, const char *path, otter_error *err)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int r;

	if (!path)
		return otter_error_set(err, OTTER_E_INVALID, "system: no configuration path");
	r = fileio_read(AT_FDCWD, path, INI_MAX_FILE_SIZE, &data, &len, err);
	if (r < 0)
		return otter_error_prefix(err, r == OTTER_E_NOT_FOUND ? r : OTTER_E_CONFIG,
					  "system configuration");
	return otter_system_parse(out, path, data, len, err);
}

int otter_system_new_boot(const otter_system *sys, otter_boot **out, otter_error *err)
{
	otter_boot_options opts = {
		.version = OTTER_BOOT_OPTIONS_VERSION,
		.bootloader = otter_system_bootloader(sys),
		.cmdline_path = otter_system_cmdline(sys),
		.tries = otter_system_tries(sys),
		.bootnames = sys->bootnames,
		.n_bootnames = sys->n_bootnames,
	};

	opts.env_path = opts.bootloader == OTTER_BOOTLOADER_GRUB ? otter_system_grubenv(sys)
								 : otter_system_fw_env_config(sys);
	return otter_boot_new(out, &opts, err);
}

const char *otter_system_compatible(const otter_system *sys)
{
	return sys->sys.compatible;
}

otter_bootloader otter_system_bootloader(const otter_system *sys)
{
	return sys->sys.bootloader == 1 ? OTTER_BOOTLOADER_GRUB : OTTER_BOOTLOADER_UBOOT;
}

const char *otter_system_data_dir(const otter_system *sys)
{
	return sys->sys.data_dir;
}

const char *otter_system_cmdline(const otter_system *sys)
{
	return sys->sys.cmdline;
}

const char *otter_system_fw_env_config(const otter_system *sys)
{
	return sys->bl.fw_env_config;
}

const char *otter_system_grubenv(const otter_system *sys)
{
	return sys->bl.grubenv;
}

unsigned otter_system_tries(const otter_system *sys)
{
	return (unsigned)sys->bl.tries;
}

size_t otter_system_n_slots(const otter_system *sys)
{
	return sys->n_slots;
}

const otter_slot *otter_system_slot(const otter_system *sys, size_t i)
{
	return i < sys->n_slots ? &sys->slots[i] : NULL;
}

const otter_slot *otter_system_find_slot(const otter_system *sys, const char *name)
{
	for (size_t i = 0; name && i < sys->n_slots; i++)
		if (strcmp(sys->slots[i].name, name) == 0)
			return &sys->slots[i];
	return NULL;
}

const otter_slot *otter_system_find_slot_by_bootname(const otter_system *sys,
						     const char *class_name, const char *bootname)
{
	for (size_t i = 0; class_name && bootname && i < sys->n_slots; i++)
		if (strcmp(sys->slots[i].class_name, class_name) == 0 &&
		    strcmp(sys->slots[i].bootname, bootname) == 0)
			return &sys->slots[i];
	return NULL;
}

size_t otter_system_n_bootnames(const otter_system *sys)
{
	return sys->n_bootnames;
}

const char *otter_system_bootname(const otter_system *sys, size_t i)
{
	return i < sys->n_bootnames ? sys->bootnames[i] : NULL;
}

bool otter_system_has_bootname(const otter_system *sys, const char *bootname)
{
	for (size_t i = 0; bootname && i < sys->n_bootnames; i++)
		if (strcmp(sys->bootnames[i], bootname) == 0)
			return true;
	return false;
}

const char *otter_slot_name(const otter_slot *slot)
{
	return slot->name;
}

const char *otter_slot_class(const otter_slot *slot)
{
	return slot->class_name;
}

unsigned otter_slot_index(const otter_slot *slot)
{
	return slot->index;
}

const char *otter_slot_device(const otter_slot *slot)
{
	return slot->device;
}

otter_slot_type otter_slot_get_type(const otter_slot *slot)
{
	return slot->type == 1 ? OTTER_SLOT_EXT4 : OTTER_SLOT_RAW;
}

const char *otter_slot_bootname(const otter_slot *slot)
{
	return slot->bootname;
}
