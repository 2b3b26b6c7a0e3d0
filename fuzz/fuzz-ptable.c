/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target for the GPT and MBR readers (src/lib/slot/gpt.c, mbr.c): the input is a disk
 * image; a partition table on a device is untrusted. A table that is accepted must survive a
 * rewrite of its first used entry: the rebuilt copy, written back, reads as valid again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/slot/ptable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct disk {
	uint8_t *p;
	size_t len;
};

static int mem_read(void *userdata, uint64_t off, uint8_t *buf, size_t len, otter_error *err)
{
	const struct disk *d = userdata;

	if (off > d->len || len > d->len - off)
		return otter_error_set(err, OTTER_E_IO, "read past the end");
	memcpy(buf, d->p + off, len);
	return 0;
}

static void put(struct disk *d, uint64_t off, const uint8_t *p, size_t n)
{
	if (off <= d->len && n <= d->len - off)
		memcpy(d->p + off, p, n);
	else
		abort(); /* gpt_build_copy placed a copy outside the disk */
}

static void rewrite_and_check(struct disk *d, unsigned ss)
{
	gpt_table t = {0}, again = {0};
	uint64_t first = 0, last = 0;
	uint32_t index = 0;

	if (gpt_read(&t, mem_read, d, d->len, ss, NULL) < 0)
		return;
	while (index < gpt_authoritative(&t)->n_entries &&
	       !gpt_entry_range(gpt_authoritative(&t), index, &first, &last))
		index++;
	if (index < gpt_authoritative(&t)->n_entries) {
		for (int which = 1; which >= 0; which--) {
			uint8_t *h = NULL, *e = NULL;
			uint64_t hl, el;
			size_t elen;

			if (gpt_build_copy(&t, which, index, first, last, &h, &e, &elen, &hl, &el,
			                   NULL) == 0) {
				put(d, el * ss, e, elen);
				put(d, hl * ss, h, ss);
			}
			free(h);
			free(e);
		}
		if (gpt_read(&again, mem_read, d, d->len, ss, NULL) < 0 || !again.primary.valid)
			abort();
		gpt_table_clear(&again);
	}
	gpt_table_clear(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disk d;
	mbr_table m;

	if (size > 4u * 1024u * 1024u)
		return 0;
	if (mbr_parse(&m, data, size, size / PT_SECTOR_MIN, NULL) == 0) {
		uint8_t sec[PT_SECTOR_MIN];

		for (uint32_t i = 0; i < MBR_ENTRIES; i++)
			if (m.e[i].type != 0 &&
			    mbr_build(&m, i, m.e[i].first_lba, sec, NULL) == 0 &&
			    mbr_parse(&m, sec, sizeof(sec), size / PT_SECTOR_MIN, NULL) < 0)
				abort();
	}
	d.p = malloc(size ? size : 1);
	if (!d.p)
		return 0;
	d.len = size;
	memcpy(d.p, data, size);
	rewrite_and_check(&d, 512);
	memcpy(d.p, data, size);
	rewrite_and_check(&d, 4096);
	free(d.p);
	return 0;
}
