/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_BOOTSLOT_H
#define OTTER_BOOTSLOT_H

/*
 * Bootloader slots (docs/ab-updates.md#bootloader-slots): a region of the boot medium in two
 * halves, one of which the partition table names. The ROM or firmware boots what the table
 * says, so a bootloader slot has no A/B fallback of its own:
 *
 *   otter_boot_slot_writer_open()    finds the half the table does not name (the inactive one)
 *   otter_boot_slot_writer_write()   streams the image (raw) into it, hashing as it comes
 *   otter_boot_slot_writer_finish()  checks length and SHA-256, fsyncs, reads the half back
 *                                    and hashes it again
 *   otter_boot_slot_writer_commit()  one partition-table switch (GPT: backup copy first, then
 *                                    the primary; MBR: one sector) naming the written half
 *
 * In a release, bootloader slots are written last and committed only after every other image
 * was written and verified. Writing the inactive half changes nothing the firmware reads.
 * An image equal to the active half's content is not written again and commits nothing.
 *
 * Configuration: [boot-slot.<class>] in system.conf (type, device, partition, region-start,
 * region-size); see include/otter/system.h.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>
#include <otter/sink.h>
#include <otter/system.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum otter_boot_slot_type {
	OTTER_BOOT_SLOT_GPT_SWITCH = 0, /* a GPT entry moved between the halves */
	OTTER_BOOT_SLOT_MBR_SWITCH = 1, /* an MBR (DOS) primary entry moved between the halves */
	OTTER_BOOT_SLOT_EMMC_BOOT = 2,  /* the eMMC boot partitions, switched in EXT_CSD */
} otter_boot_slot_type;

typedef struct otter_boot_slot otter_boot_slot;

/* Bootloader slots in file order; borrowed from sys. */
OTTER_PUBLIC size_t otter_system_n_boot_slots(const otter_system *sys);
OTTER_PUBLIC const otter_boot_slot *otter_system_boot_slot(const otter_system *sys, size_t i);
/* By class ("bootloader"); NULL if none. */
OTTER_PUBLIC const otter_boot_slot *otter_system_find_boot_slot(const otter_system *sys,
                                                                const char *class_name);
OTTER_PUBLIC const char *otter_boot_slot_class(const otter_boot_slot *bs);
OTTER_PUBLIC const char *otter_boot_slot_device(const otter_boot_slot *bs);
OTTER_PUBLIC otter_boot_slot_type otter_boot_slot_get_type(const otter_boot_slot *bs);
/* "gpt-switch", "mbr-switch", "emmc-boot" as in system.conf. */
OTTER_PUBLIC const char *otter_boot_slot_type_name(otter_boot_slot_type t);
/* Byte offset and size of half 0; half 1 follows it (0 for emmc-boot). */
OTTER_PUBLIC uint64_t otter_boot_slot_region_start(const otter_boot_slot *bs);
OTTER_PUBLIC uint64_t otter_boot_slot_region_size(const otter_boot_slot *bs);

typedef struct otter_boot_slot_info {
	unsigned active;        /* 0 or 1: the half the partition table names */
	uint64_t active_offset; /* its byte offset on the device */
	/* A GPT copy is invalid or names another half (a cut during a switch, or an edit by
	 * hand): the firmware uses the primary when valid; the next install repairs it. */
	bool degraded;
	char detail[256]; /* what is degraded, "" if nothing */
} otter_boot_slot_info;

/* Reads the partition table (read-only). OTTER_E_FORMAT when no valid table names either
 * half of the region. */
OTTER_PUBLIC int otter_boot_slot_get_info(const otter_boot_slot *bs, otter_boot_slot_info *out,
                                          otter_error *err) OTTER_WARN_UNUSED_RESULT;

typedef struct otter_boot_slot_writer otter_boot_slot_writer;

/* expected_len and expected_sha256 describe the raw image as the caller verified them.
 * Holds the data directory's lock until freed (as otter_slot_writer does). */
OTTER_PUBLIC int otter_boot_slot_writer_open(otter_boot_slot_writer **out, const otter_system *sys,
                                             const char *class_name, uint64_t expected_len,
                                             const uint8_t expected_sha256[32],
                                             otter_error *err) OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC int otter_boot_slot_writer_write(otter_boot_slot_writer *w, const void *data,
                                              size_t len,
                                              otter_error *err) OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC int otter_boot_slot_writer_finish(otter_boot_slot_writer *w,
                                               otter_error *err) OTTER_WARN_UNUSED_RESULT;
/* Drops the bytes so far (the inactive half is not named by anything: nothing to undo). */
OTTER_PUBLIC int otter_boot_slot_writer_abort(otter_boot_slot_writer *w,
                                              otter_error *err) OTTER_WARN_UNUSED_RESULT;
/* After a successful finish: the partition-table switch. Then reads the table again and
 * checks that it names the new half. */
OTTER_PUBLIC int otter_boot_slot_writer_commit(otter_boot_slot_writer *w,
                                               otter_error *err) OTTER_WARN_UNUSED_RESULT;
/* True when the image equals the active half's content: nothing is written or switched. */
OTTER_PUBLIC bool otter_boot_slot_writer_already_active(const otter_boot_slot_writer *w);
OTTER_PUBLIC const otter_boot_slot *otter_boot_slot_writer_target(const otter_boot_slot_writer *w);
OTTER_PUBLIC void otter_boot_slot_writer_sink(otter_boot_slot_writer *w, otter_sink *out);
OTTER_PUBLIC otter_boot_slot_writer *otter_boot_slot_writer_free(otter_boot_slot_writer *w);

#ifdef __cplusplus
}
#endif

#endif
