/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_SLOT_PTABLE_H
#define OTTER_LIB_SLOT_PTABLE_H

/*
 * A small GPT and MBR reader/writer for the bootloader region switches (bootslot.c,
 * docs/ab-updates.md#bootloader-slots). A partition table on a device is untrusted input:
 * every field is range-checked against the disk before it is used, entry arrays are capped,
 * and all arithmetic on them is overflow-checked (fuzz/fuzz-ptable.c).
 *
 * Only what a switch needs: find one entry, and rewrite its first/last sector so that the
 * table names the other half of a region, keeping every other byte as it was read.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

#define PT_SECTOR_MIN   512u
#define PT_SECTOR_MAX   4096u
#define GPT_HEADER_SIZE 92u
#define GPT_ENTRY_MIN   128u
#define GPT_ENTRY_MAX   1024u           /* per entry; UEFI allows 128 * 2^n */
#define GPT_ENTRIES_MAX (1024u * 1024u) /* bytes of one entry array (UEFI: >= 16 KiB) */
#define MBR_ENTRIES     4u

/* Reads len bytes at byte offset off (short reads are errors); the disk is a file, a block
 * device, or a buffer (the fuzz target). */
typedef int (*pt_read_fn)(void *userdata, uint64_t off, uint8_t *buf, size_t len, otter_error *err);

uint32_t pt_crc32(const uint8_t *p, size_t n);

typedef struct gpt_copy {
	bool valid;
	char why[128]; /* when !valid: what was wrong, for status and messages */
	uint64_t my_lba, alternate_lba, first_usable, last_usable, entries_lba;
	uint32_t n_entries, entry_size;
	uint8_t *header;  /* one sector as read */
	uint8_t *entries; /* n_entries * entry_size bytes as read */
	size_t entries_len;
} gpt_copy;

typedef struct gpt_table {
	unsigned sector_size;
	uint64_t disk_sectors;
	gpt_copy primary, backup;
} gpt_table;

/*
 * Reads both GPT copies of a disk of disk_size bytes. Succeeds when at least one copy is
 * valid (signature, revision, header size, header CRC, its own LBA, bounds, entry array CRC);
 * the other may be invalid (see .valid and .why). OTTER_E_FORMAT when neither is.
 */
int gpt_read(gpt_table *out, pt_read_fn rd, void *userdata, uint64_t disk_size,
             unsigned sector_size, otter_error *err);
void gpt_table_clear(gpt_table *t);

/* The copy to trust: the primary when valid (what firmware and Linux read first), else the
 * backup. */
const gpt_copy *gpt_authoritative(const gpt_table *t);

/* Entry index (0-based) of copy c: its first and last LBA (inclusive); false when out of
 * range or unused (all-zero type GUID). */
bool gpt_entry_range(const gpt_copy *c, uint32_t index, uint64_t *first, uint64_t *last);

/*
 * Builds, from the authoritative copy of t, the header sector and the entry array of the
 * primary (which = 0) or backup (which = 1) copy, with entry index set to [first, last];
 * every other byte is kept (a copy rebuilt from the other keeps the other's bytes with its
 * own LBAs). Buffers are malloc()ed; *entries_lba_out says where the array goes.
 */
int gpt_build_copy(const gpt_table *t, int which, uint32_t index, uint64_t first, uint64_t last,
                   uint8_t **header_out, uint8_t **entries_out, size_t *entries_len_out,
                   uint64_t *header_lba_out, uint64_t *entries_lba_out, otter_error *err);

typedef struct mbr_entry {
	uint8_t status, type;
	uint32_t first_lba, n_sectors;
} mbr_entry;

typedef struct mbr_table {
	uint8_t sector[PT_SECTOR_MIN];
	mbr_entry e[MBR_ENTRIES];
} mbr_table;

/* Parses sector 0 (512 bytes) of a disk of disk_sectors 512-byte sectors: the 0x55AA
 * signature, no protective (0xEE) entry, every used entry inside the disk. */
int mbr_parse(mbr_table *out, const uint8_t *sector, size_t len, uint64_t disk_sectors,
              otter_error *err);
/* Sets entry index (0-based) to start at first_lba (its size is kept) in out_sector, a copy
 * of t's sector with the CHS fields recomputed. */
int mbr_build(const mbr_table *t, uint32_t index, uint32_t first_lba,
              uint8_t out_sector[PT_SECTOR_MIN], otter_error *err);

#endif
