/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GPT reader and copy builder (UEFI 2.10, 5.3). Both copies are read and checked alone; a
 * copy is used only when its header CRC, its own LBA, every bound and its entry array CRC
 * hold. Field offsets in the header: 0 signature, 8 revision, 12 header size, 16 header CRC,
 * 24 my LBA, 32 alternate LBA, 40 first usable, 48 last usable, 56 disk GUID, 72 entries LBA,
 * 80 number of entries, 84 entry size, 88 entry array CRC. In an entry: 0 type GUID,
 * 16 unique GUID, 32 first LBA, 40 last LBA (inclusive), 48 attributes, 56 name.
 */
#include "ptable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/cleanup.h"

static const uint8_t gpt_signature[8] = {'E', 'F', 'I', ' ', 'P', 'A', 'R', 'T'};

uint32_t pt_crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	/* Bitwise CRC-32 (IEEE 802.3, reflected 0xEDB88320), as GPT uses: tables are a few KiB
	 * and nothing here is hot. */
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return c ^ 0xffffffffu;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static void copy_clear(gpt_copy *c)
{
	free(c->header);
	free(c->entries);
	memset(c, 0, sizeof(*c));
}

void gpt_table_clear(gpt_table *t)
{
	copy_clear(&t->primary);
	copy_clear(&t->backup);
}

static int invalid(gpt_copy *c, const char *why)
{
	c->valid = false;
	snprintf(c->why, sizeof(c->why), "%s", why);
	return 0;
}

/* Header CRC over header_size bytes with the CRC field taken as zero. */
static uint32_t header_crc(const uint8_t *h, uint32_t header_size)
{
	uint8_t tmp[PT_SECTOR_MAX];

	memcpy(tmp, h, header_size);
	memset(tmp + 16, 0, 4);
	return pt_crc32(tmp, header_size);
}

/*
 * Reads and checks the copy whose header is at lba. Returns < 0 only for errors of the
 * medium (read failure, no memory); a malformed copy is returned as !valid with a reason.
 */
static int read_copy(gpt_copy *c, const gpt_table *t, bool primary, uint64_t lba, pt_read_fn rd,
                     void *ud, otter_error *err)
{
	const unsigned ss = t->sector_size;
	uint32_t hsize, entries_sectors;
	uint64_t entries_end, len;
	uint8_t *h;
	int r;

	memset(c, 0, sizeof(*c));
	if (lba < 1 || lba >= t->disk_sectors)
		return invalid(c, "header LBA outside the disk");
	h = c->header = otter_malloc(ss);
	if (!h)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = rd(ud, lba * ss, h, ss, err); /* lba < disk_sectors = disk_size / ss: no overflow */
	if (r < 0)
		return r;
	if (memcmp(h, gpt_signature, sizeof(gpt_signature)) != 0)
		return invalid(c, "no 'EFI PART' signature");
	if (get_le32(h + 8) != 0x00010000u)
		return invalid(c, "unknown GPT revision");
	hsize = get_le32(h + 12);
	if (hsize < GPT_HEADER_SIZE || hsize > ss)
		return invalid(c, "header size out of range");
	if (header_crc(h, hsize) != get_le32(h + 16))
		return invalid(c, "header CRC mismatch");
	c->my_lba = get_le64(h + 24);
	c->alternate_lba = get_le64(h + 32);
	c->first_usable = get_le64(h + 40);
	c->last_usable = get_le64(h + 48);
	c->entries_lba = get_le64(h + 72);
	c->n_entries = get_le32(h + 80);
	c->entry_size = get_le32(h + 84);
	if (c->my_lba != lba)
		return invalid(c, "header does not name its own LBA");
	if (c->alternate_lba < 1 || c->alternate_lba >= t->disk_sectors || c->alternate_lba == lba)
		return invalid(c, "alternate header LBA outside the disk");
	if (c->entry_size < GPT_ENTRY_MIN || c->entry_size > GPT_ENTRY_MAX ||
	    c->entry_size % 8 != 0)
		return invalid(c, "partition entry size out of range");
	if (c->n_entries == 0 || c->n_entries > GPT_ENTRIES_MAX / c->entry_size)
		return invalid(c, "number of partition entries out of range");
	len = (uint64_t)c->n_entries * c->entry_size; /* <= GPT_ENTRIES_MAX */
	entries_sectors = (uint32_t)((len + ss - 1) / ss);
	if (c->entries_lba < 2 || c->entries_lba > t->disk_sectors - entries_sectors)
		return invalid(c, "partition entry array outside the disk");
	entries_end = c->entries_lba + entries_sectors; /* exclusive, <= disk_sectors */
	if (c->first_usable > c->last_usable || c->last_usable >= t->disk_sectors)
		return invalid(c, "usable area outside the disk");
	/* Neither the header nor the array may lie inside the usable area (partitions). */
	if (primary ? (entries_end > c->first_usable || lba >= c->first_usable)
	            : (c->entries_lba <= c->last_usable || lba <= c->last_usable))
		return invalid(c, "header or entry array overlaps the usable area");
	if (lba >= c->entries_lba && lba < entries_end)
		return invalid(c, "header inside its own entry array");
	c->entries_len = (size_t)len;
	c->entries = otter_malloc(c->entries_len);
	if (!c->entries)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = rd(ud, c->entries_lba * ss, c->entries, c->entries_len, err);
	if (r < 0)
		return r;
	if (pt_crc32(c->entries, c->entries_len) != get_le32(h + 88))
		return invalid(c, "partition entry array CRC mismatch");
	c->valid = true;
	return 0;
}

int gpt_read(gpt_table *out, pt_read_fn rd, void *userdata, uint64_t disk_size,
             unsigned sector_size, otter_error *err)
{
	gpt_table t = {.sector_size = sector_size};
	uint64_t backup_lba;
	int r;

	if (sector_size < PT_SECTOR_MIN || sector_size > PT_SECTOR_MAX ||
	    (sector_size & (sector_size - 1)) != 0)
		return otter_error_set(err, OTTER_E_INVALID,
		                       "GPT: sector size %u is not a power of two in %u..%u",
		                       sector_size, PT_SECTOR_MIN, PT_SECTOR_MAX);
	t.disk_sectors = disk_size / sector_size;
	if (t.disk_sectors < 6)
		return otter_error_set(err, OTTER_E_FORMAT,
		                       "GPT: the disk (%llu bytes) is too small to hold one",
		                       (unsigned long long)disk_size);
	r = read_copy(&t.primary, &t, true, 1, rd, userdata, err);
	/* The backup is where the primary says, or, with no usable primary, the last sector. */
	backup_lba = t.primary.valid ? t.primary.alternate_lba : t.disk_sectors - 1;
	if (r == 0)
		r = read_copy(&t.backup, &t, false, backup_lba, rd, userdata, err);
	if (r == 0 && !t.backup.valid && t.primary.valid && backup_lba != t.disk_sectors - 1) {
		/* A primary naming a wrong place: look where the backup belongs too. */
		copy_clear(&t.backup);
		r = read_copy(&t.backup, &t, false, t.disk_sectors - 1, rd, userdata, err);
	}
	if (r == 0 && !t.primary.valid && !t.backup.valid)
		r = otter_error_set(err, OTTER_E_FORMAT, "no valid GPT: primary: %s; backup: %s",
		                    t.primary.why, t.backup.why);
	if (r == 0 && t.primary.valid && t.backup.valid &&
	    (t.primary.entries_len != t.backup.entries_len ||
	     t.primary.entry_size != t.backup.entry_size))
		/* Copies of different shape cannot be switched entry by entry: trust the primary.
		 */
		invalid(&t.backup, "entry array shaped differently from the primary's");
	if (r < 0) {
		gpt_table_clear(&t);
		return r;
	}
	*out = t;
	return 0;
}

const gpt_copy *gpt_authoritative(const gpt_table *t)
{
	return t->primary.valid ? &t->primary : &t->backup;
}

bool gpt_entry_range(const gpt_copy *c, uint32_t index, uint64_t *first, uint64_t *last)
{
	static const uint8_t zero[16];
	const uint8_t *e;

	if (!c->valid || index >= c->n_entries)
		return false;
	e = c->entries + (size_t)index * c->entry_size;
	if (memcmp(e, zero, sizeof(zero)) == 0)
		return false;
	*first = get_le64(e + 32);
	*last = get_le64(e + 40);
	return *first <= *last;
}

int gpt_build_copy(const gpt_table *t, int which, uint32_t index, uint64_t first, uint64_t last,
                   uint8_t **header_out, uint8_t **entries_out, size_t *entries_len_out,
                   uint64_t *header_lba_out, uint64_t *entries_lba_out, otter_error *err)
{
	const gpt_copy *src = gpt_authoritative(t);
	const gpt_copy *self = which == 0 ? &t->primary : &t->backup;
	_cleanup_free_ uint8_t *h = NULL;
	_cleanup_free_ uint8_t *e = NULL;
	uint32_t hsize, entries_sectors;
	uint64_t my_lba, alt_lba, entries_lba;

	if (!src->valid || index >= src->n_entries)
		return otter_error_set(err, OTTER_E_INVALID, "GPT: no entry %u to switch",
		                       index + 1);
	entries_sectors = (uint32_t)((src->entries_len + t->sector_size - 1) / t->sector_size);
	if (self->valid) {
		my_lba = self->my_lba;
		alt_lba = self->alternate_lba;
		entries_lba = self->entries_lba;
	} else if (which == 0) {
		/* Rebuilt from the backup: the primary's places are fixed (LBA 1, array at 2). */
		my_lba = 1;
		alt_lba = src->my_lba;
		entries_lba = 2;
		if (entries_lba + entries_sectors > src->first_usable)
			return otter_error_set(err, OTTER_E_FORMAT,
			                       "GPT: the primary entry array would overlap the "
			                       "first usable sector");
	} else {
		/* Rebuilt from the primary: header where the primary says, array just before. */
		my_lba = src->alternate_lba;
		alt_lba = src->my_lba;
		if (my_lba < entries_sectors || my_lba - entries_sectors <= src->last_usable)
			return otter_error_set(err, OTTER_E_FORMAT,
			                       "GPT: no room for the backup entry array before "
			                       "its header at LBA %llu",
			                       (unsigned long long)my_lba);
		entries_lba = my_lba - entries_sectors;
	}
	h = otter_malloc(t->sector_size);
	e = otter_malloc(src->entries_len);
	if (!h || !e)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	memcpy(h, src->header, t->sector_size);
	memcpy(e, src->entries, src->entries_len);
	put_le64(e + (size_t)index * src->entry_size + 32, first);
	put_le64(e + (size_t)index * src->entry_size + 40, last);
	put_le64(h + 24, my_lba);
	put_le64(h + 32, alt_lba);
	put_le64(h + 72, entries_lba);
	put_le32(h + 88, pt_crc32(e, src->entries_len));
	hsize = get_le32(h + 12); /* checked when the source copy was read */
	put_le32(h + 16, header_crc(h, hsize));
	*header_out = TAKE_PTR(h);
	*entries_out = TAKE_PTR(e);
	*entries_len_out = src->entries_len;
	*header_lba_out = my_lba;
	*entries_lba_out = entries_lba;
	return 0;
}
