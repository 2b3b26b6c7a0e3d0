/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bootloader slots: a region split in two halves, switched by one partition-table change.
 * What keeps a device bootable:
 *  - only the half the table does not name is written; it is verified (length, SHA-256, read
 *    back and hashed) before the table changes;
 *  - before that half is touched, both GPT copies are made valid and equal (a cut during an
 *    earlier switch may have left one torn or naming the other half): otherwise firmware
 *    falling back to a stale backup could boot the half being written;
 *  - GPT switch order: backup entries, backup header, primary entries, primary header, each
 *    synced. Until the primary array is written the primary (old) is valid; from then until
 *    its header is written the primary's array CRC fails and the backup (already new) is the
 *    valid table; then both are new. So at every instant one valid table names the old or
 *    the new half, and the firmware's choice moves from old to new exactly once.
 *  - MBR: one 512-byte sector write (devices write a sector atomically: eMMC, SD and disks
 *    guarantee it; the switch relies on it, as any MBR tool does).
 *  - eMMC (emmc.c): the halves are boot0 and boot1; only the one the card does not boot from
 *    is made writable (force_ro) and written, and one EXT_CSD byte, which the card applies
 *    atomically, switches.
 */
#include "system-private.h"
#include "slot-private.h"
#include "ptable.h"
#include "bootslot-private.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <otter/bootslot.h>
#include <otter/crypto.h>

#include "util/alloc.h"
#include "util/args.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/ini.h"
#include "util/strutil.h"

#define READ_CHUNK        (256u * 1024u)
#define GPT_MAX_PARTITION 128u

static const char *const boot_slot_type_names[] = {"gpt-switch", "mbr-switch", "emmc-boot", NULL};

/* ---- configuration: [boot-slot.<class>] ---- */

#define BS_FIELD(f) offsetof(struct otter_boot_slot, f)

const ini_key boot_slot_keys[BOOT_SLOT_N_KEYS] = {
        {"type", INI_ENUM, BS_FIELD(type), 0, 0, boot_slot_type_names, NULL, true},
        {"device", INI_PATH, BS_FIELD(device), 0, 4095, NULL, NULL, true},
        {"partition", INI_U64, BS_FIELD(partition), 1, GPT_MAX_PARTITION, NULL, NULL, false},
        {"region-start", INI_U64, BS_FIELD(region_start), 1, UINT64_MAX / 4, NULL, NULL, false},
        {"region-size", INI_U64, BS_FIELD(region_size), 1, UINT64_MAX / 4, NULL, NULL, false},
};

int boot_slot_begin(void *userdata, const char *subname, void **target, otter_error *err)
{
	otter_system *sys = userdata;
	otter_boot_slot *v, *bs;
	size_t n = strlen(subname);

	if (n == 0 || n > OTTER_CLASS_MAX ||
	    strspn(subname, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
		return otter_error_set(err, OTTER_E_CONFIG,
		                       "bootloader slot sections are named [boot-slot.<class>], "
		                       "with a class of 1..%u bytes of a-z 0-9 _ -",
		                       OTTER_CLASS_MAX);
	for (size_t i = 0; i < sys->n_boot_slots; i++)
		if (strcmp(sys->boot_slots[i].class_name, subname) == 0)
			return otter_error_set(err, OTTER_E_CONFIG,
			                       "bootloader slot defined twice");
	if (sys->n_boot_slots >= OTTER_SYSTEM_MAX_BOOT_SLOTS)
		return otter_error_set(err, OTTER_E_LIMIT, "more than %u bootloader slots",
		                       OTTER_SYSTEM_MAX_BOOT_SLOTS);
	v = otter_reallocarray(sys->boot_slots, sys->n_boot_slots + 1, sizeof(*v));
	if (!v)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	sys->boot_slots = v;
	bs = &v[sys->n_boot_slots++];
	memset(bs, 0, sizeof(*bs));
	bs->class_name = otter_strdup(subname);
	if (!bs->class_name)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	*target = bs;
	return 0;
}

int boot_slot_end(void *userdata, void *target, otter_error *err)
{
	otter_boot_slot *bs = target;

	(void)userdata;
	if (bs->type == OTTER_BOOT_SLOT_EMMC_BOOT) {
		/* The halves are the card's boot0 and boot1: no table, no region. */
		if (bs->partition || bs->region_start || bs->region_size)
			return otter_error_set(err, OTTER_E_CONFIG,
			                       "type=emmc-boot takes no partition, region-start or "
			                       "region-size (the halves are the card's boot0 and "
			                       "boot1)");
		return 0;
	}
	if (!bs->partition || !bs->region_start || !bs->region_size)
		return otter_error_set(err, OTTER_E_CONFIG,
		                       "type=%s needs partition, region-start and region-size",
		                       boot_slot_type_names[bs->type]);
	if (bs->region_start % PT_SECTOR_MIN != 0 || bs->region_size % PT_SECTOR_MIN != 0)
		return otter_error_set(err, OTTER_E_CONFIG,
		                       "region-start (%" PRIu64 ") and region-size (%" PRIu64
		                       ") must be multiples of %u bytes (sectors)",
		                       bs->region_start, bs->region_size, PT_SECTOR_MIN);
	if (bs->type == OTTER_BOOT_SLOT_MBR_SWITCH) {
		if (bs->partition > MBR_ENTRIES)
			return otter_error_set(err, OTTER_E_CONFIG,
			                       "partition: %" PRIu64 " is not a primary MBR entry "
			                       "(1..%u)",
			                       bs->partition, MBR_ENTRIES);
		/* MBR sector numbers are 32 bits. */
		if ((bs->region_start + 2 * bs->region_size) / PT_SECTOR_MIN > UINT32_MAX)
			return otter_error_set(err, OTTER_E_CONFIG,
			                       "the region ends past 2 TiB, which an MBR cannot "
			                       "address");
	}
	return 0;
}

void boot_slot_clear(otter_boot_slot *bs)
{
	free(bs->class_name);
	free(bs->device);
}

int boot_slot_validate(const otter_system *sys, const char *name, otter_error *err)
{
	for (size_t i = 0; i < sys->n_boot_slots; i++) {
		const otter_boot_slot *bs = &sys->boot_slots[i];

		for (size_t j = 0; j < sys->n_slots; j++) {
			if (strcmp(sys->slots[j].class_name, bs->class_name) == 0)
				return otter_error_set(err, OTTER_E_CONFIG,
				                       "%s: class '%s' is both a bootloader slot "
				                       "and an A/B slot class",
				                       name, bs->class_name);
			if (strcmp(sys->slots[j].device, bs->device) == 0)
				return otter_error_set(err, OTTER_E_CONFIG,
				                       "%s: boot-slot.%s: device '%s' is also the "
				                       "device of slot %s",
				                       name, bs->class_name, bs->device,
				                       sys->slots[j].name);
		}
	}
	return 0;
}

size_t otter_system_n_boot_slots(const otter_system *sys)
{
	return sys ? sys->n_boot_slots : 0;
}

const otter_boot_slot *otter_system_boot_slot(const otter_system *sys, size_t i)
{
	return sys && i < sys->n_boot_slots ? &sys->boot_slots[i] : NULL;
}

const otter_boot_slot *otter_system_find_boot_slot(const otter_system *sys, const char *class_name)
{
	for (size_t i = 0; sys && class_name && i < sys->n_boot_slots; i++)
		if (strcmp(sys->boot_slots[i].class_name, class_name) == 0)
			return &sys->boot_slots[i];
	return NULL;
}

const char *otter_boot_slot_class(const otter_boot_slot *bs)
{
	return bs->class_name;
}

const char *otter_boot_slot_device(const otter_boot_slot *bs)
{
	return bs->device;
}

otter_boot_slot_type otter_boot_slot_get_type(const otter_boot_slot *bs)
{
	return (otter_boot_slot_type)bs->type;
}

const char *otter_boot_slot_type_name(otter_boot_slot_type t)
{
	return (unsigned)t < 3 ? boot_slot_type_names[t] : "unknown";
}

uint64_t otter_boot_slot_region_start(const otter_boot_slot *bs)
{
	return bs->region_start;
}

uint64_t otter_boot_slot_region_size(const otter_boot_slot *bs)
{
	return bs->region_size;
}

/* ---- the medium ---- */

typedef struct medium {
	const otter_boot_slot *bs;
	int fd;
	uint64_t size;
	unsigned sector_size;
	gpt_table gpt;
	mbr_table mbr;
	emmc_ops emmc;     /* type=emmc-boot: the card */
	bool emmc_linux;   /* emmc is emmc_ops_linux's, freed with the medium */
	int part_fd[2];    /* type=emmc-boot: boot0, boot1 */
	int writable_part; /* type=emmc-boot: the boot partition whose force_ro was lifted */
	unsigned active;
	bool degraded;
	char detail[256];
} medium;

static int pread_full(int fd, const char *what, uint64_t off, uint8_t *buf, size_t len,
                      otter_error *err)
{
	while (len > 0) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return otter_error_set_errno(err, errno, "read '%s' at %" PRIu64, what,
			                             off);
		if (n == 0)
			return otter_error_set(err, OTTER_E_IO, "read '%s' at %" PRIu64 ": it ends",
			                       what, off);
		buf += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int fd_read(void *userdata, uint64_t off, uint8_t *buf, size_t len, otter_error *err)
{
	const medium *m = userdata;

	return pread_full(m->fd, m->bs->device, off, buf, len, err);
}

static void medium_clear(medium *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	for (unsigned i = 0; i < 2; i++) {
		if (m->part_fd[i] >= 0)
			close(m->part_fd[i]);
		m->part_fd[i] = -1;
	}
	/* The boot partition is read-only again whatever happened (Linux's default). */
	if (m->writable_part >= 0 && m->emmc.set_force_ro)
		(void)m->emmc.set_force_ro(m->emmc.userdata, (unsigned)m->writable_part, true,
		                           NULL);
	m->writable_part = -1;
	if (m->emmc_linux)
		emmc_linux_free(&m->emmc);
	m->emmc_linux = false;
	gpt_table_clear(&m->gpt);
}

/* type=emmc-boot: which boot partition the card boots, and the size of a half. */
static int emmc_load(medium *m, otter_error *err)
{
	struct stat st;
	int r;

	r = emmc_active(&m->emmc, &m->active, err);
	if (r < 0)
		return otter_error_prefix(err, r, "'%s'", m->bs->device);
	for (unsigned i = 0; i < 2; i++) {
		uint64_t size = 0;

		if (m->part_fd[i] < 0) {
			r = m->emmc.open_part(m->emmc.userdata, i, false, &m->part_fd[i], err);
			if (r < 0)
				return r;
		}
		if (fstat(m->part_fd[i], &st) < 0)
			return otter_error_set_errno(err, errno, "stat boot%u of '%s'", i,
			                             m->bs->device);
		if (S_ISBLK(st.st_mode)) {
			if (ioctl(m->part_fd[i], BLKGETSIZE64, &size) < 0)
				return otter_error_set_errno(err, errno, "size of boot%u", i);
		} else {
			size = (uint64_t)st.st_size;
		}
		if (i == 1 && size != m->size)
			return otter_error_set(err, OTTER_E_STATE,
			                       "boot0 and boot1 of '%s' differ in size (%" PRIu64
			                       " and %" PRIu64 " bytes)",
			                       m->bs->device, m->size, size);
		m->size = size;
	}
	return 0;
}

/* Which half a table entry [first, last] (sectors) names, checking its size. */
static int which_half(const medium *m, uint64_t first, uint64_t last, unsigned *out,
                      otter_error *err)
{
	const otter_boot_slot *bs = m->bs;
	uint64_t ss = m->sector_size, half_sectors = bs->region_size / ss;

	if (first == bs->region_start / ss)
		*out = 0;
	else if (first == (bs->region_start + bs->region_size) / ss)
		*out = 1;
	else
		return otter_error_set(err, OTTER_E_STATE,
		                       "partition %" PRIu64 " of '%s' starts at sector %" PRIu64
		                       ", which is neither half of the region (sectors %" PRIu64
		                       " and %" PRIu64 "): check region-start and region-size",
		                       bs->partition, bs->device, first, bs->region_start / ss,
		                       (bs->region_start + bs->region_size) / ss);
	if (last - first + 1 != half_sectors)
		return otter_error_set(err, OTTER_E_STATE,
		                       "partition %" PRIu64 " of '%s' is %" PRIu64 " sectors, not "
		                       "region-size (%" PRIu64 " sectors)",
		                       bs->partition, bs->device, last - first + 1, half_sectors);
	return 0;
}

/* No other entry may overlap the region: a wrong region-start must not write a partition. */
static int check_no_overlap(const medium *m, uint64_t n_entries,
                            bool (*range)(const medium *, uint64_t, uint64_t *, uint64_t *),
                            otter_error *err)
{
	uint64_t lo = m->bs->region_start / m->sector_size;
	uint64_t hi = lo + 2 * (m->bs->region_size / m->sector_size); /* exclusive */

	for (uint64_t i = 0; i < n_entries; i++) {
		uint64_t f, l;

		if (i + 1 == m->bs->partition || !range(m, i, &f, &l))
			continue;
		if (f < hi && l >= lo)
			return otter_error_set(err, OTTER_E_STATE,
			                       "partition %" PRIu64 " of '%s' (sectors %" PRIu64
			                       "..%" PRIu64 ") overlaps the bootloader region: "
			                       "refusing to write it",
			                       i + 1, m->bs->device, f, l);
	}
	return 0;
}

static bool gpt_range(const medium *m, uint64_t i, uint64_t *f, uint64_t *l)
{
	return gpt_entry_range(gpt_authoritative(&m->gpt), (uint32_t)i, f, l);
}

static bool mbr_range(const medium *m, uint64_t i, uint64_t *f, uint64_t *l)
{
	const mbr_entry *e = &m->mbr.e[i];

	if (e->type == 0)
		return false;
	*f = e->first_lba;
	*l = (uint64_t)e->first_lba + e->n_sectors - 1;
	return true;
}

/* Reads the table of m->fd and finds the active half. */
static int medium_load(medium *m, otter_error *err)
{
	const otter_boot_slot *bs = m->bs;
	uint64_t first, last, region_end;
	int r;

	gpt_table_clear(&m->gpt);
	m->degraded = false;
	m->detail[0] = '\0';
	if (bs->region_size % m->sector_size != 0 || bs->region_start % m->sector_size != 0)
		return otter_error_set(err, OTTER_E_CONFIG,
		                       "'%s' has %u-byte sectors: region-start and region-size "
		                       "must be multiples of it",
		                       bs->device, m->sector_size);
	region_end = bs->region_start + 2 * bs->region_size; /* < UINT64_MAX / 2 by the config */
	if (region_end > m->size)
		return otter_error_set(err, OTTER_E_CONFIG,
		                       "the region (%" PRIu64 "..%" PRIu64 ") ends past the end of "
		                       "'%s' (%" PRIu64 " bytes)",
		                       bs->region_start, region_end, bs->device, m->size);
	if (bs->type == OTTER_BOOT_SLOT_MBR_SWITCH) {
		uint8_t sec[PT_SECTOR_MIN];

		r = fd_read(m, 0, sec, sizeof(sec), err);
		if (r == 0)
			r = mbr_parse(&m->mbr, sec, sizeof(sec), m->size / PT_SECTOR_MIN, err);
		if (r < 0)
			return otter_error_prefix(err, r, "'%s'", bs->device);
		if (!mbr_range(m, bs->partition - 1, &first, &last))
			return otter_error_set(err, OTTER_E_STATE,
			                       "MBR entry %" PRIu64 " of '%s' is unused",
			                       bs->partition, bs->device);
		r = which_half(m, first, last, &m->active, err);
		if (r == 0)
			r = check_no_overlap(m, MBR_ENTRIES, mbr_range, err);
		return r;
	}
	r = gpt_read(&m->gpt, fd_read, m, m->size, m->sector_size, err);
	if (r < 0)
		return otter_error_prefix(err, r, "'%s'", bs->device);
	{
		const gpt_copy *a = gpt_authoritative(&m->gpt);
		uint64_t bf, bl;

		if (!gpt_entry_range(a, (uint32_t)(bs->partition - 1), &first, &last))
			return otter_error_set(err, OTTER_E_STATE,
			                       "GPT entry %" PRIu64 " of '%s' is unused or beyond "
			                       "the table's %u entries",
			                       bs->partition, bs->device, a->n_entries);
		if (bs->region_start / m->sector_size < a->first_usable ||
		    (region_end / m->sector_size) - 1 > a->last_usable)
			return otter_error_set(err, OTTER_E_CONFIG,
			                       "the region lies outside the usable sectors "
			                       "%" PRIu64 "..%" PRIu64 " of '%s'",
			                       a->first_usable, a->last_usable, bs->device);
		r = which_half(m, first, last, &m->active, err);
		if (r == 0)
			r = check_no_overlap(m, a->n_entries, gpt_range, err);
		if (r < 0)
			return r;
		if (!m->gpt.primary.valid || !m->gpt.backup.valid) {
			m->degraded = true;
			strfmt(m->detail, sizeof(m->detail), "%s GPT invalid (%s)",
			       m->gpt.primary.valid ? "backup" : "primary",
			       m->gpt.primary.valid ? m->gpt.backup.why : m->gpt.primary.why);
		} else if (!gpt_entry_range(&m->gpt.backup, (uint32_t)(bs->partition - 1), &bf,
		                            &bl) ||
		           bf != first || bl != last ||
		           memcmp(m->gpt.primary.entries, m->gpt.backup.entries,
		                  m->gpt.primary.entries_len) != 0) {
			m->degraded = true;
			strfmt(m->detail, sizeof(m->detail),
			       "the backup GPT differs from the primary");
		}
	}
	return 0;
}

static int medium_open(medium *m, const otter_boot_slot *bs, bool writable, const emmc_ops *card,
                       otter_error *err)
{
	struct stat st;
	int r;

	memset(m, 0, sizeof(*m));
	m->bs = bs;
	m->fd = m->part_fd[0] = m->part_fd[1] = m->writable_part = -1;
	if (bs->type == OTTER_BOOT_SLOT_EMMC_BOOT) {
		(void)writable; /* the inactive boot partition is opened writable when written */
		if (card) {
			m->emmc = *card;
		} else {
			r = emmc_ops_linux(bs->device, &m->emmc, err);
			if (r < 0)
				return otter_error_prefix(err, r, "bootloader slot %s",
				                          bs->class_name);
			m->emmc_linux = true;
		}
		return emmc_load(m, err);
	}
	m->fd = open(bs->device, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
	if (m->fd < 0)
		return otter_error_set_errno(err, errno, "bootloader slot %s: open '%s'",
		                             bs->class_name, bs->device);
	if (fstat(m->fd, &st) < 0)
		return otter_error_set_errno(err, errno, "stat '%s'", bs->device);
	m->sector_size = PT_SECTOR_MIN;
	if (S_ISBLK(st.st_mode)) {
		int ss = 0;

		if (ioctl(m->fd, BLKGETSIZE64, &m->size) < 0 || ioctl(m->fd, BLKSSZGET, &ss) < 0)
			return otter_error_set_errno(err, errno, "size of '%s'", bs->device);
		if (ss < (int)PT_SECTOR_MIN || ss > (int)PT_SECTOR_MAX)
			return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
			                       "'%s' has %d-byte sectors (%u..%u supported)",
			                       bs->device, ss, PT_SECTOR_MIN, PT_SECTOR_MAX);
		m->sector_size = (unsigned)ss;
	} else if (S_ISREG(st.st_mode)) {
		m->size = (uint64_t)st.st_size;
	} else {
		return otter_error_set(err, OTTER_E_INVALID,
		                       "'%s' is neither a block device nor a regular file",
		                       bs->device);
	}
	if (bs->type == OTTER_BOOT_SLOT_MBR_SWITCH && m->sector_size != PT_SECTOR_MIN)
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
		                       "'%s': an MBR switch needs 512-byte sectors", bs->device);
	return medium_load(m, err);
}

int boot_slot_get_info_card(const otter_boot_slot *bs, const emmc_ops *card,
                            otter_boot_slot_info *out, otter_error *err)
{
	medium m = {.fd = -1, .part_fd = {-1, -1}, .writable_part = -1};
	int r;

	ARG_NONNULL(err, "bootloader slot", bs);
	ARG_NONNULL(err, "bootloader slot", out);
	r = medium_open(&m, bs, false, card, err);
	if (r == 0) {
		memset(out, 0, sizeof(*out));
		out->active = m.active;
		out->active_offset = bs->region_start + m.active * bs->region_size;
		out->degraded = m.degraded;
		strfmt(out->detail, sizeof(out->detail), "%s", m.detail);
	}
	medium_clear(&m);
	return r;
}

int otter_boot_slot_get_info(const otter_boot_slot *bs, otter_boot_slot_info *out, otter_error *err)
{
	return boot_slot_get_info_card(bs, NULL, out, err);
}

/* ---- the writer ---- */

struct otter_boot_slot_writer {
	const otter_system *sys;
	medium m;
	int lock_fd;
	uint64_t expected_len;
	uint8_t expected_sha[32];
	otter_hash *hash;
	uint64_t count;
	uint64_t table_bytes; /* bytes of partition table written: the "boot-table@N" cut */
	bool already_active;
	bool begun;
	bool finished;
	bool committed;
	bool failed;
};

DEFINE_CLEANUP_FUNC(otter_boot_slot_writer, otter_boot_slot_writer_free)

otter_boot_slot_writer *otter_boot_slot_writer_free(otter_boot_slot_writer *w)
{
	if (!w)
		return NULL;
	medium_clear(&w->m);
	if (w->lock_fd >= 0)
		close(w->lock_fd);
	otter_hash_free(w->hash);
	free(w);
	return NULL;
}

bool otter_boot_slot_writer_already_active(const otter_boot_slot_writer *w)
{
	return w && w->already_active;
}

const otter_boot_slot *otter_boot_slot_writer_target(const otter_boot_slot_writer *w)
{
	return w ? w->m.bs : NULL;
}

/* SHA-256 of len bytes at off. */
static int hash_range(int fd, const char *what, uint64_t off, uint64_t len, uint8_t digest[32],
                      otter_error *err)
{
	_cleanup_free_ uint8_t *buf = otter_malloc(READ_CHUNK);
	otter_hash *h = NULL;
	int r;

	if (!buf)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = otter_hash_new(&h, OTTER_HASH_SHA256, err);
	while (r == 0 && len > 0) {
		size_t n = len < READ_CHUNK ? (size_t)len : READ_CHUNK;

		r = pread_full(fd, what, off, buf, n, err);
		if (r == 0)
			r = otter_hash_update(h, buf, n, err);
		off += n;
		len -= n;
	}
	if (r == 0)
		r = otter_hash_final(h, digest, err);
	otter_hash_free(h);
	return r;
}

static bool is_emmc(const otter_boot_slot_writer *w)
{
	return w->m.bs->type == OTTER_BOOT_SLOT_EMMC_BOOT;
}

/* Where half h lies: a boot partition of the card, or a range of the table's disk. */
static int half_fd(const otter_boot_slot_writer *w, unsigned h)
{
	return is_emmc(w) ? w->m.part_fd[h] : w->m.fd;
}

static uint64_t half_offset(const otter_boot_slot_writer *w, unsigned h)
{
	return is_emmc(w) ? 0 : w->m.bs->region_start + h * w->m.bs->region_size;
}

static uint64_t inactive_offset(const otter_boot_slot_writer *w)
{
	return half_offset(w, 1u - w->m.active);
}

int boot_slot_writer_open_card(otter_boot_slot_writer **out, const otter_system *sys,
                               const char *class_name, uint64_t expected_len,
                               const uint8_t expected_sha256[32], const emmc_ops *card,
                               otter_error *err)
{
	_cleanup_(otter_boot_slot_writer_freep) otter_boot_slot_writer *w = NULL;
	const otter_boot_slot *bs;
	uint8_t digest[32];
	int r;

	ARG_NONNULL(err, "install", out);
	ARG_NONNULL(err, "install", sys);
	ARG_NONNULL(err, "install", class_name);
	ARG_NONNULL(err, "install", expected_sha256);
	bs = otter_system_find_boot_slot(sys, class_name);
	if (!bs) {
		char safe[64];

		str_sanitize(class_name, safe, sizeof(safe));
		return otter_error_set(err, OTTER_E_INVALID,
		                       "install: no bootloader slot class '%s' in the system "
		                       "configuration",
		                       safe);
	}
	if (expected_len == 0)
		return otter_error_set(err, OTTER_E_INVALID, "install: the image length is 0");
	w = otter_calloc(1, sizeof(*w));
	if (!w)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	w->m.fd = w->m.part_fd[0] = w->m.part_fd[1] = w->m.writable_part = -1;
	w->lock_fd = -1;
	w->sys = sys;
	w->expected_len = expected_len;
	memcpy(w->expected_sha, expected_sha256, 32);
	r = ab_lock(sys, &w->lock_fd, err);
	if (r < 0)
		return otter_error_prefix(err, r, "install");
	r = medium_open(&w->m, bs, true, card, err);
	if (r < 0)
		return otter_error_prefix(err, r, "install into bootloader slot %s",
		                          bs->class_name);
	if (expected_len > (is_emmc(w) ? w->m.size : bs->region_size))
		return otter_error_set(
		        err, OTTER_E_TOO_LARGE,
		        "install: the image (%" PRIu64 " bytes) is larger than a half "
		        "of bootloader slot %s (%" PRIu64 " bytes)",
		        expected_len, bs->class_name, is_emmc(w) ? w->m.size : bs->region_size);
	/* The same bootloader again (a retried release): nothing to write or switch. */
	r = hash_range(half_fd(w, w->m.active), bs->device, half_offset(w, w->m.active),
	               expected_len, digest, err);
	if (r < 0)
		return otter_error_prefix(err, r, "install: reading the active half");
	w->already_active = CRYPTO_memcmp(digest, expected_sha256, 32) == 0;
	r = otter_hash_new(&w->hash, OTTER_HASH_SHA256, err);
	if (r < 0)
		return r;
	*out = TAKE_PTR(w);
	return 0;
}

int otter_boot_slot_writer_open(otter_boot_slot_writer **out, const otter_system *sys,
                                const char *class_name, uint64_t expected_len,
                                const uint8_t expected_sha256[32], otter_error *err)
{
	return boot_slot_writer_open_card(out, sys, class_name, expected_len, expected_sha256, NULL,
	                                  err);
}

/* Writes one piece of partition table: a named crash point before it, a byte-granular cut
 * inside it ("boot-table@N" counts every table byte of this switch), then a sync. */
static int table_write(otter_boot_slot_writer *w, uint64_t off, const uint8_t *p, size_t n,
                       otter_error *err)
{
	size_t allowed = crashpoint_limit("boot-table", w->table_bytes, n);
	size_t done = 0;

	crashpoint("boot-table-write");
	while (done < allowed) {
		ssize_t k = pwrite(w->m.fd, p + done, allowed - done, (off_t)(off + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return otter_error_set_errno(
			        err, k < 0 ? errno : EIO,
			        "writing the partition table of '%s' at %" PRIu64, w->m.bs->device,
			        off + done);
		done += (size_t)k;
	}
	if (allowed < n)
		crashpoint_cut("boot-table");
	w->table_bytes += n;
	if (fsync(w->m.fd) < 0)
		return otter_error_set_errno(err, errno, "fsync '%s'", w->m.bs->device);
	return 0;
}

/* Writes GPT copy `which` (0 primary, 1 backup) naming [first, last]: array, then header. */
static int gpt_write_copy(otter_boot_slot_writer *w, int which, uint64_t first, uint64_t last,
                          otter_error *err)
{
	_cleanup_free_ uint8_t *h = NULL;
	_cleanup_free_ uint8_t *e = NULL;
	uint64_t hlba, elba;
	size_t elen;
	int r;

	r = gpt_build_copy(&w->m.gpt, which, (uint32_t)(w->m.bs->partition - 1), first, last, &h,
	                   &e, &elen, &hlba, &elba, err);
	if (r == 0)
		r = table_write(w, elba * w->m.sector_size, e, elen, err);
	if (r == 0)
		r = table_write(w, hlba * w->m.sector_size, h, w->m.sector_size, err);
	return r;
}

/*
 * Makes both GPT copies valid and equal to the authoritative one before the inactive half is
 * touched: a stale backup naming that half would otherwise be what firmware falls back to.
 */
static int gpt_repair(otter_boot_slot_writer *w, otter_error *err)
{
	const gpt_copy *a = gpt_authoritative(&w->m.gpt);
	uint64_t first, last;
	int r;

	if (!w->m.degraded)
		return 0;
	if (!gpt_entry_range(a, (uint32_t)(w->m.bs->partition - 1), &first, &last))
		return otter_error_set(err, OTTER_E_STATE, "GPT entry vanished");
	r = gpt_write_copy(w, a == &w->m.gpt.primary ? 1 : 0, first, last, err);
	if (r == 0)
		r = medium_load(&w->m, err);
	if (r == 0 && w->m.degraded)
		r = otter_error_set(err, OTTER_E_IO,
		                    "repairing the GPT of '%s' did not take (%s): failing storage?",
		                    w->m.bs->device, w->m.detail);
	return r;
}

static int begin(otter_boot_slot_writer *w, otter_error *err)
{
	int r = 0;

	if (w->m.bs->type == OTTER_BOOT_SLOT_GPT_SWITCH)
		r = gpt_repair(w, err);
	if (is_emmc(w)) {
		unsigned in = 1u - w->m.active;

		/* Linux keeps boot partitions read-only (force_ro=1): lifted for the inactive
		 * one only, and set again when the writer is freed. */
		r = w->m.emmc.set_force_ro(w->m.emmc.userdata, in, false, err);
		if (r < 0)
			return otter_error_prefix(err, r, "boot%u of '%s': clearing force_ro", in,
			                          w->m.bs->device);
		w->m.writable_part = (int)in;
		close(w->m.part_fd[in]);
		w->m.part_fd[in] = -1;
		r = w->m.emmc.open_part(w->m.emmc.userdata, in, true, &w->m.part_fd[in], err);
	}
	if (r == 0)
		w->begun = true;
	return r;
}

static int write_locked(otter_boot_slot_writer *w, const uint8_t *p, size_t len, otter_error *err)
{
	uint64_t pos = w->count;
	size_t allowed;
	int r;

	if (len > w->expected_len - w->count)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
		                       "the image is longer than the expected %" PRIu64 " bytes",
		                       w->expected_len);
	r = otter_hash_update(w->hash, p, len, err);
	if (r < 0)
		return r;
	w->count += len;
	if (w->already_active || len == 0)
		return 0;
	if (!w->begun && (r = begin(w, err)) < 0)
		return r;
	allowed = crashpoint_limit("boot-image", pos, len);
	for (size_t done = 0; done < allowed;) {
		ssize_t k = pwrite(half_fd(w, 1u - w->m.active), p + done, allowed - done,
		                   (off_t)(inactive_offset(w) + pos + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return otter_error_set_errno(err, k < 0 ? errno : EIO,
			                             "writing the inactive half of '%s'",
			                             w->m.bs->device);
		done += (size_t)k;
	}
	if (allowed < len)
		crashpoint_cut("boot-image");
	return 0;
}

int otter_boot_slot_writer_write(otter_boot_slot_writer *w, const void *data, size_t len,
                                 otter_error *err)
{
	int r;

	ARG_NONNULL(err, "install", w);
	ARG_CHECK(err, "install", data || len == 0);
	if (w->failed || w->finished)
		return otter_error_set(err, OTTER_E_STATE, "install: the writer is %s",
		                       w->finished ? "finished" : "failed");
	r = write_locked(w, data, len, err);
	if (r < 0) {
		w->failed = true;
		return otter_error_prefix(err, r, "install into bootloader slot %s",
		                          w->m.bs->class_name);
	}
	return 0;
}

static int finish_locked(otter_boot_slot_writer *w, otter_error *err)
{
	uint8_t digest[32], back[32];
	char got[65], want[65];
	int r;

	if (w->count != w->expected_len)
		return otter_error_set(err, OTTER_E_HASH,
		                       "the image is truncated: %" PRIu64 " of %" PRIu64
		                       " bytes arrived",
		                       w->count, w->expected_len);
	r = otter_hash_final(w->hash, digest, err);
	if (r < 0)
		return r;
	if (CRYPTO_memcmp(digest, w->expected_sha, 32) != 0) {
		hex_encode(digest, 32, got);
		hex_encode(w->expected_sha, 32, want);
		return otter_error_set(err, OTTER_E_HASH,
		                       "SHA-256 mismatch: expected %s, the image has %s", want,
		                       got);
	}
	if (w->already_active)
		return 0;
	crashpoint("boot-image-fsync");
	if (fsync(half_fd(w, 1u - w->m.active)) < 0)
		return otter_error_set_errno(err, errno, "fsync '%s'", w->m.bs->device);
	(void)posix_fadvise(half_fd(w, 1u - w->m.active), (off_t)inactive_offset(w),
	                    (off_t)w->expected_len, POSIX_FADV_DONTNEED);
	r = hash_range(half_fd(w, 1u - w->m.active), w->m.bs->device, inactive_offset(w),
	               w->expected_len, back, err);
	if (r < 0)
		return r;
	if (memcmp(back, digest, 32) != 0)
		return otter_error_set(err, OTTER_E_HASH,
		                       "the inactive half of '%s' reads back differently from what "
		                       "was written (failing storage?)",
		                       w->m.bs->device);
	return 0;
}

int otter_boot_slot_writer_finish(otter_boot_slot_writer *w, otter_error *err)
{
	int r;

	ARG_NONNULL(err, "install", w);
	if (w->failed || w->finished)
		return otter_error_set(err, OTTER_E_STATE, "install: the writer is %s",
		                       w->finished ? "finished" : "failed");
	r = finish_locked(w, err);
	if (r < 0) {
		w->failed = true;
		return otter_error_prefix(err, r, "install into bootloader slot %s",
		                          w->m.bs->class_name);
	}
	w->finished = true;
	return 0;
}

int otter_boot_slot_writer_abort(otter_boot_slot_writer *w, otter_error *err)
{
	ARG_NONNULL(err, "install", w);
	if (w->finished)
		return otter_error_set(err, OTTER_E_STATE, "install: the writer is finished");
	w->hash = otter_hash_free(w->hash);
	w->count = 0;
	w->failed = false;
	return otter_hash_new(&w->hash, OTTER_HASH_SHA256, err);
}

static int commit_locked(otter_boot_slot_writer *w, otter_error *err)
{
	const otter_boot_slot *bs = w->m.bs;
	unsigned target = 1u - w->m.active;
	uint64_t first, last;
	int r;

	if (is_emmc(w)) {
		/* One EXT_CSD byte: the card switches atomically. */
		crashpoint("boot-emmc-switch");
		r = emmc_switch(&w->m.emmc, target, err);
		if (r < 0)
			return r;
		return emmc_active(&w->m.emmc, &w->m.active, err);
	}
	first = inactive_offset(w) / w->m.sector_size;
	last = first + bs->region_size / w->m.sector_size - 1;
	if (bs->type == OTTER_BOOT_SLOT_MBR_SWITCH) {
		uint8_t sec[PT_SECTOR_MIN];

		/* first < 2^32: checked against the disk by mbr_parse's neighbours and config. */
		r = mbr_build(&w->m.mbr, (uint32_t)(bs->partition - 1), (uint32_t)first, sec, err);
		if (r == 0)
			r = table_write(w, 0, sec, sizeof(sec), err);
	} else {
		/* Backup first: while it is written the primary (old) is the valid table; then
		 * the primary, whose torn array leaves the new backup as the valid table. */
		r = gpt_write_copy(w, 1, first, last, err);
		if (r == 0)
			r = gpt_write_copy(w, 0, first, last, err);
	}
	if (r < 0)
		return r;
	r = medium_load(&w->m, err);
	if (r < 0)
		return otter_error_prefix(err, r, "re-reading the switched table");
	if (w->m.active != target || w->m.degraded)
		return otter_error_set(err, OTTER_E_IO,
		                       "the partition table of '%s' does not name the new half "
		                       "after the switch (%s): failing storage?",
		                       bs->device, w->m.detail[0] ? w->m.detail : "old half");
	return 0;
}

int otter_boot_slot_writer_commit(otter_boot_slot_writer *w, otter_error *err)
{
	int r;

	ARG_NONNULL(err, "install", w);
	if (!w->finished || w->committed)
		return otter_error_set(
		        err, OTTER_E_STATE, "switch bootloader slot %s: the install is %s",
		        w->m.bs->class_name, w->committed ? "switched already" : "not finished");
	if (w->already_active) {
		/* Nothing to switch; a copy a cut left stale is still made whole (a retry after
		 * a cut inside the primary's writes ends here). */
		r = w->m.bs->type == OTTER_BOOT_SLOT_GPT_SWITCH ? gpt_repair(w, err) : 0;
		if (r < 0)
			return otter_error_prefix(err, r, "repair bootloader slot %s",
			                          w->m.bs->class_name);
		w->committed = true;
		return 0;
	}
	r = commit_locked(w, err);
	if (r < 0)
		return otter_error_prefix(err, r, "switch bootloader slot %s", w->m.bs->class_name);
	w->committed = true;
	return 0;
}

static int sink_write(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	return otter_boot_slot_writer_write(userdata, data, len, err);
}

static int sink_finish(void *userdata, otter_error *err)
{
	return otter_boot_slot_writer_finish(userdata, err);
}

static int sink_abort(void *userdata, otter_error *err)
{
	return otter_boot_slot_writer_abort(userdata, err);
}

void otter_boot_slot_writer_sink(otter_boot_slot_writer *w, otter_sink *out)
{
	out->write = sink_write;
	out->finish = sink_finish;
	out->abort = sink_abort;
	out->userdata = w;
}
