/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MBR (DOS) partition table in sector 0: four 16-byte entries at byte 446 (status, CHS of the
 * first sector, type, CHS of the last sector, first LBA, number of sectors; little-endian),
 * then 0x55 0xAA at 510. Extended partitions are not followed: a switched entry must be a
 * primary one.
 */
#include "ptable.h"

#include <string.h>

#define MBR_TABLE_OFFSET 446u
#define MBR_ENTRY_SIZE   16u

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int mbr_parse(mbr_table *out, const uint8_t *sector, size_t len, uint64_t disk_sectors,
              otter_error *err)
{
	mbr_table t;

	if (len < PT_SECTOR_MIN)
		return otter_error_set(err, OTTER_E_FORMAT, "MBR: sector 0 is %zu bytes, not %u",
		                       len, PT_SECTOR_MIN);
	memcpy(t.sector, sector, PT_SECTOR_MIN);
	if (sector[510] != 0x55 || sector[511] != 0xaa)
		return otter_error_set(err, OTTER_E_FORMAT,
		                       "MBR: no 0x55AA signature in sector 0 (no DOS partition "
		                       "table)");
	for (unsigned i = 0; i < MBR_ENTRIES; i++) {
		const uint8_t *e = sector + MBR_TABLE_OFFSET + i * MBR_ENTRY_SIZE;
		mbr_entry *m = &t.e[i];

		m->status = e[0];
		m->type = e[4];
		m->first_lba = get_le32(e + 8);
		m->n_sectors = get_le32(e + 12);
		if (m->status != 0 && m->status != 0x80)
			return otter_error_set(err, OTTER_E_FORMAT,
			                       "MBR: entry %u has status 0x%02x (0x00 or 0x80 "
			                       "expected)",
			                       i + 1, m->status);
		if (m->type == 0xee)
			return otter_error_set(err, OTTER_E_FORMAT,
			                       "MBR: entry %u is a GPT protective entry: this disk "
			                       "has a GPT (use type=gpt-switch)",
			                       i + 1);
		if (m->type == 0)
			continue;
		if (m->first_lba == 0 || m->n_sectors == 0 ||
		    (uint64_t)m->first_lba + m->n_sectors > disk_sectors)
			return otter_error_set(err, OTTER_E_FORMAT,
			                       "MBR: entry %u (sectors %u + %u) lies outside the "
			                       "disk (%llu sectors)",
			                       i + 1, m->first_lba, m->n_sectors,
			                       (unsigned long long)disk_sectors);
	}
	*out = t;
	return 0;
}

/* CHS of an LBA with the 255-head, 63-sector geometry fdisk uses; past cylinder 1023 the
 * "use LBA" marker 1023/254/63. */
static void chs(uint8_t out[3], uint32_t lba)
{
	uint32_t c = lba / (255u * 63u), h = (lba / 63u) % 255u, s = lba % 63u + 1u;

	if (c > 1023) {
		c = 1023;
		h = 254;
		s = 63;
	}
	out[0] = (uint8_t)h;
	out[1] = (uint8_t)((s & 0x3f) | ((c >> 2) & 0xc0));
	out[2] = (uint8_t)(c & 0xff);
}

int mbr_build(const mbr_table *t, uint32_t index, uint32_t first_lba,
              uint8_t out_sector[PT_SECTOR_MIN], otter_error *err)
{
	uint8_t *e;
	uint32_t n;

	if (index >= MBR_ENTRIES || t->e[index].type == 0)
		return otter_error_set(err, OTTER_E_INVALID, "MBR: no entry %u to switch",
		                       index + 1);
	n = t->e[index].n_sectors;
	if (first_lba == 0 || n - 1 > UINT32_MAX - first_lba)
		return otter_error_set(err, OTTER_E_INVALID,
		                       "MBR: sectors %u + %u do not fit in 32 bits", first_lba, n);
	memcpy(out_sector, t->sector, PT_SECTOR_MIN);
	e = out_sector + MBR_TABLE_OFFSET + index * MBR_ENTRY_SIZE;
	put_le32(e + 8, first_lba);
	chs(e + 1, first_lba);
	chs(e + 5, first_lba + n - 1);
	return 0;
}
