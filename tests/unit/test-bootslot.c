/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bootloader slots: the GPT and MBR readers/writers and the region switch on disk images. */
#include "test-common.h"
#include "test-fixtures.h"

#include <fcntl.h>
#include <unistd.h>

#include <otter/bootslot.h>
#include <otter/crypto.h>

#include "lib/slot/bootslot-private.h"
#include "lib/slot/ptable.h"
#include "util/alloc.h"

/* assert_err on a fresh error (an otter_error keeps its first message). */
#define assert_fails(expr, code, errp, needle)        \
	do {                                          \
		memset((errp), 0, sizeof(*(errp)));   \
		assert_err(expr, code, errp, needle); \
	} while (0)

#define DISK_SECTORS 512u /* 256 KiB disk images */
#define REGION_START (64u * 512u)
#define REGION_SIZE  (32u * 512u)

struct fixture {
	char *dir;
	char disk[512], conf[512];
	otter_system *sys;
};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* A GPT with 128 entries of 128 bytes; entries given as (first, last) pairs, 0 = unused. */
static void gpt_header(uint8_t *disk, uint64_t my, uint64_t alt, uint64_t entries_lba,
                       uint32_t entries_crc)
{
	uint8_t *h = disk + my * 512;

	memset(h, 0, 512);
	memcpy(h, "EFI PART", 8);
	put32(h + 8, 0x00010000u);
	put32(h + 12, 92);
	put64(h + 24, my);
	put64(h + 32, alt);
	put64(h + 40, 34);
	put64(h + 48, DISK_SECTORS - 34);
	memset(h + 56, 0x42, 16);
	put64(h + 72, entries_lba);
	put32(h + 80, 128);
	put32(h + 84, 128);
	put32(h + 88, entries_crc);
	put32(h + 16, pt_crc32(h, 92));
}

static uint8_t *make_gpt(const uint64_t (*parts)[2], size_t n)
{
	uint8_t *disk = calloc(DISK_SECTORS, 512);
	uint8_t entries[128 * 128] = {0};
	uint32_t crc;

	for (size_t i = 0; i < n; i++) {
		if (!parts[i][0])
			continue;
		memset(entries + i * 128, 0x11, 16);              /* type GUID */
		memset(entries + i * 128 + 16, (int)(i + 1), 16); /* unique GUID */
		put64(entries + i * 128 + 32, parts[i][0]);
		put64(entries + i * 128 + 40, parts[i][1]);
	}
	crc = pt_crc32(entries, sizeof(entries));
	memcpy(disk + 2 * 512, entries, sizeof(entries));
	memcpy(disk + (DISK_SECTORS - 33) * 512, entries, sizeof(entries));
	gpt_header(disk, 1, DISK_SECTORS - 1, 2, crc);
	gpt_header(disk, DISK_SECTORS - 1, 1, DISK_SECTORS - 33, crc);
	disk[510] = 0x55;
	disk[511] = 0xaa;
	disk[446 + 4] = 0xee;
	return disk;
}

static uint8_t *make_mbr(const uint32_t (*parts)[2], size_t n)
{
	uint8_t *disk = calloc(DISK_SECTORS, 512);

	for (size_t i = 0; i < n; i++) {
		disk[446 + i * 16 + 4] = 0x83;
		put32(disk + 446 + i * 16 + 8, parts[i][0]);
		put32(disk + 446 + i * 16 + 12, parts[i][1]);
	}
	disk[510] = 0x55;
	disk[511] = 0xaa;
	return disk;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = test_tmpdir();
	snprintf(f->disk, sizeof(f->disk), "%s/disk.img", f->dir);
	snprintf(f->conf, sizeof(f->conf), "%s/system.conf", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	otter_system_free(f->sys);
	rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static int parse_conf(struct fixture *f, const char *type, unsigned partition, uint64_t start,
                      uint64_t size, otter_error *err)
{
	char conf[2048];

	snprintf(conf, sizeof(conf),
	         "[system]\ncompatible=t\nbootloader=grub\ndata-directory=%s/data\n"
	         "[slot.rootfs.0]\ndevice=%s/a\nbootname=A\n"
	         "[slot.rootfs.1]\ndevice=%s/b\nbootname=B\n"
	         "[boot-slot.bootloader]\ntype=%s\ndevice=%s\npartition=%u\n"
	         "region-start=%llu\nregion-size=%llu\n",
	         f->dir, f->dir, f->dir, type, f->disk, partition, (unsigned long long)start,
	         (unsigned long long)size);
	f->sys = otter_system_free(f->sys);
	return otter_system_parse(&f->sys, "test.conf", (const uint8_t *)conf, strlen(conf), err);
}

static void use_disk(struct fixture *f, uint8_t *disk, const char *type)
{
	otter_error err = OTTER_ERROR_INIT;

	tfx_write_file(f->disk, disk, DISK_SECTORS * 512u);
	free(disk);
	assert_ok(parse_conf(f, type, 1, REGION_START, REGION_SIZE, &err));
}

static uint8_t *image(size_t len, uint32_t seed)
{
	uint8_t *p = malloc(len);

	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
	return p;
}

/* Runs open/write/finish/commit; returns the first failure. */
static int install(struct fixture *f, const uint8_t *img, size_t len, const uint8_t *sha,
                   otter_error *err)
{
	otter_boot_slot_writer *w = NULL;
	uint8_t digest[32];
	int r;

	if (!sha) {
		assert_ok(otter_hash_buf(OTTER_HASH_SHA256, img, len, digest, err));
		sha = digest;
	}
	r = otter_boot_slot_writer_open(&w, f->sys, "bootloader", len, sha, err);
	if (r == 0)
		r = otter_boot_slot_writer_write(w, img, len, err);
	if (r == 0)
		r = otter_boot_slot_writer_finish(w, err);
	if (r == 0)
		r = otter_boot_slot_writer_commit(w, err);
	otter_boot_slot_writer_free(w);
	return r;
}

static unsigned active(struct fixture *f)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_boot_slot_info info;

	assert_ok(otter_boot_slot_get_info(otter_system_find_boot_slot(f->sys, "bootloader"), &info,
	                                   &err));
	assert_false(info.degraded);
	return info.active;
}

static uint8_t *disk_bytes(struct fixture *f)
{
	size_t len;
	uint8_t *d = tfx_read_all(f->disk, &len);

	assert_int_equal(len, DISK_SECTORS * 512u);
	return d;
}

static void test_bootslot_crc32(void **state)
{
	(void)state;
	assert_int_equal(pt_crc32((const uint8_t *)"123456789", 9), 0xcbf43926u);
	assert_int_equal(pt_crc32(NULL, 0), 0);
}

struct mem {
	const uint8_t *p;
	size_t len;
};

static int mem_read(void *userdata, uint64_t off, uint8_t *buf, size_t len, otter_error *err)
{
	const struct mem *m = userdata;

	if (off > m->len || len > m->len - off)
		return otter_error_set(err, OTTER_E_IO, "past the end");
	memcpy(buf, m->p + off, len);
	return 0;
}

static void test_bootslot_gpt_parse(void **state)
{
	static const uint64_t parts[][2] = {{64, 95}, {200, 300}};
	otter_error err = OTTER_ERROR_INIT;
	uint8_t *disk = make_gpt(parts, 2);
	struct mem m = {disk, DISK_SECTORS * 512u};
	uint64_t first, last;
	gpt_table t;

	(void)state;
	assert_ok(gpt_read(&t, mem_read, &m, m.len, 512, &err));
	assert_true(t.primary.valid);
	assert_true(t.backup.valid);
	assert_true(gpt_entry_range(&t.primary, 0, &first, &last));
	assert_int_equal(first, 64);
	assert_int_equal(last, 95);
	assert_true(gpt_entry_range(&t.backup, 1, &first, &last));
	assert_int_equal(first, 200);
	assert_false(gpt_entry_range(&t.primary, 2, &first, &last));   /* unused */
	assert_false(gpt_entry_range(&t.primary, 128, &first, &last)); /* past the array */
	gpt_table_clear(&t);

	/* A torn primary header: the backup is used. */
	disk[512 + 30] ^= 1;
	assert_ok(gpt_read(&t, mem_read, &m, m.len, 512, &err));
	assert_false(t.primary.valid);
	assert_non_null(strstr(t.primary.why, "header CRC"));
	assert_true(gpt_authoritative(&t) == &t.backup);
	gpt_table_clear(&t);
	/* ... and a torn backup array as well: no valid GPT. */
	disk[(DISK_SECTORS - 33) * 512 + 40] ^= 1;
	assert_fails(gpt_read(&t, mem_read, &m, m.len, 512, &err), OTTER_E_FORMAT, &err,
	             "entry array CRC");
	/* A disk too small, a bad sector size. */
	assert_fails(gpt_read(&t, mem_read, &m, 5 * 512, 512, &err), OTTER_E_FORMAT, &err,
	             "too small");
	assert_fails(gpt_read(&t, mem_read, &m, m.len, 768, &err), OTTER_E_INVALID, &err,
	             "power of two");
	free(disk);
}

/* Each header field out of range, with a correct CRC, makes that copy invalid. */
static void test_bootslot_gpt_bounds(void **state)
{
	static const uint64_t parts[][2] = {{64, 95}};
	static const struct {
		unsigned off, width;
		uint64_t value;
		const char *why;
	} cases[] = {
	        {80, 4, 0xffffffffu, "number of partition entries"},
	        {80, 4, 0, "number of partition entries"},
	        {84, 4, 64, "entry size"},
	        {84, 4, 130, "entry size"},
	        {84, 4, 1u << 20, "entry size"},
	        {72, 8, DISK_SECTORS - 10, "outside the disk"},
	        {72, 8, UINT64_MAX - 1, "outside the disk"},
	        {72, 8, 1, "outside the disk"},
	        {24, 8, 2, "own LBA"},
	        {32, 8, DISK_SECTORS, "alternate"},
	        {48, 8, DISK_SECTORS, "usable area"},
	        {40, 8, 10, "overlaps the usable area"},
	        {12, 4, 513, "header size"},
	        {12, 4, 91, "header size"},
	        {8, 4, 0x00020000u, "revision"},
	};
	otter_error err = OTTER_ERROR_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *disk = make_gpt(parts, 1);
		struct mem m = {disk, DISK_SECTORS * 512u};
		uint8_t *h = disk + 512;
		uint32_t hs;
		gpt_table t;

		if (cases[i].width == 4)
			put32(h + cases[i].off, (uint32_t)cases[i].value);
		else
			put64(h + cases[i].off, cases[i].value);
		hs = cases[i].off == 12 && cases[i].value <= 512 ? (uint32_t)cases[i].value : 92;
		put32(h + 16, 0);
		put32(h + 16, pt_crc32(h, hs < 92 ? 92 : hs));
		assert_ok(gpt_read(&t, mem_read, &m, m.len, 512, &err));
		if (t.primary.valid || !strstr(t.primary.why, cases[i].why))
			print_error("case %zu: valid %d, why '%s'\n", i, t.primary.valid,
			            t.primary.why);
		assert_false(t.primary.valid);
		assert_non_null(strstr(t.primary.why, cases[i].why));
		assert_true(t.backup.valid); /* found at the last sector */
		gpt_table_clear(&t);
		free(disk);
	}
}

static void test_bootslot_mbr_parse(void **state)
{
	static const uint32_t parts[][2] = {{64, 32}, {200, 100}};
	otter_error err = OTTER_ERROR_INIT;
	uint8_t *disk = make_mbr(parts, 2), sec[512];
	mbr_table t;

	(void)state;
	assert_ok(mbr_parse(&t, disk, 512, DISK_SECTORS, &err));
	assert_int_equal(t.e[0].first_lba, 64);
	assert_int_equal(t.e[1].n_sectors, 100);
	assert_ok(mbr_build(&t, 0, 96, sec, &err));
	assert_ok(mbr_parse(&t, sec, 512, DISK_SECTORS, &err));
	assert_int_equal(t.e[0].first_lba, 96);
	assert_int_equal(t.e[0].n_sectors, 32);
	assert_memory_equal(sec + 446 + 16, disk + 446 + 16, 64 - 16 + 2); /* others kept */
	assert_fails(mbr_build(&t, 2, 10, sec, &err), OTTER_E_INVALID, &err, "no entry 3");
	assert_fails(mbr_build(&t, 0, UINT32_MAX - 5, sec, &err), OTTER_E_INVALID, &err, "32 bits");
	assert_fails(mbr_parse(&t, disk, 511, DISK_SECTORS, &err), OTTER_E_FORMAT, &err, "511");
	assert_fails(mbr_parse(&t, disk, 512, 250, &err), OTTER_E_FORMAT, &err, "outside the disk");
	disk[446 + 4] = 0xee;
	assert_fails(mbr_parse(&t, disk, 512, DISK_SECTORS, &err), OTTER_E_FORMAT, &err,
	             "gpt-switch");
	disk[446 + 4] = 0x83;
	disk[446] = 0x12;
	assert_fails(mbr_parse(&t, disk, 512, DISK_SECTORS, &err), OTTER_E_FORMAT, &err, "status");
	disk[446] = 0;
	disk[511] = 0;
	assert_fails(mbr_parse(&t, disk, 512, DISK_SECTORS, &err), OTTER_E_FORMAT, &err, "0x55AA");
	free(disk);
}

static void switch_twice(struct fixture *f)
{
	otter_error err = OTTER_ERROR_INIT;
	uint8_t *one = image(5000, 1), *two = image(REGION_SIZE, 2), *d;

	assert_int_equal(active(f), 0);
	assert_ok(install(f, one, 5000, NULL, &err));
	assert_int_equal(active(f), 1);
	d = disk_bytes(f);
	assert_memory_equal(d + REGION_START + REGION_SIZE, one, 5000);
	free(d);
	/* The same image again: nothing is written or switched. */
	assert_ok(install(f, one, 5000, NULL, &err));
	assert_int_equal(active(f), 1);
	/* Another one fills half 0 exactly. */
	assert_ok(install(f, two, REGION_SIZE, NULL, &err));
	assert_int_equal(active(f), 0);
	d = disk_bytes(f);
	assert_memory_equal(d + REGION_START, two, REGION_SIZE);
	assert_memory_equal(d + REGION_START + REGION_SIZE, one, 5000);
	free(d);
	free(one);
	free(two);
}

static void test_bootslot_gpt_switch(void **state)
{
	static const uint64_t parts[][2] = {{REGION_START / 512, REGION_START / 512 + 31},
	                                    {200, 300}};
	struct fixture *f = *state;

	use_disk(f, make_gpt(parts, 2), "gpt-switch");
	switch_twice(f);
}

static void test_bootslot_mbr_switch(void **state)
{
	static const uint32_t parts[][2] = {{REGION_START / 512, 32}, {200, 100}};
	struct fixture *f = *state;

	use_disk(f, make_mbr(parts, 2), "mbr-switch");
	switch_twice(f);
}

/* A failed verification changes nothing the firmware reads. */
static void test_bootslot_bad_image_leaves_table(void **state)
{
	static const uint64_t parts[][2] = {{REGION_START / 512, REGION_START / 512 + 31}};
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_boot_slot_writer *w = NULL;
	uint8_t *img = image(4000, 3), sha[32] = {0}, *before, *after;

	use_disk(f, make_gpt(parts, 1), "gpt-switch");
	before = disk_bytes(f);
	assert_fails(install(f, img, 4000, sha, &err), OTTER_E_HASH, &err, "SHA-256 mismatch");
	assert_fails(install(f, img, REGION_SIZE + 1, sha, &err), OTTER_E_TOO_LARGE, &err,
	             "larger than a half");
	/* Truncated, and commit before finish. */
	assert_ok(otter_hash_buf(OTTER_HASH_SHA256, img, 4000, sha, &err));
	assert_ok(otter_boot_slot_writer_open(&w, f->sys, "bootloader", 4000, sha, &err));
	assert_ok(otter_boot_slot_writer_write(w, img, 3000, &err));
	assert_fails(otter_boot_slot_writer_commit(w, &err), OTTER_E_STATE, &err, "not finished");
	assert_fails(otter_boot_slot_writer_finish(w, &err), OTTER_E_HASH, &err, "truncated");
	w = otter_boot_slot_writer_free(w);
	after = disk_bytes(f);
	/* Only the inactive half may differ. */
	assert_memory_equal(before, after, REGION_START + REGION_SIZE);
	assert_memory_equal(before + REGION_START + 2 * REGION_SIZE,
	                    after + REGION_START + 2 * REGION_SIZE,
	                    DISK_SECTORS * 512u - REGION_START - 2 * REGION_SIZE);
	assert_int_equal(active(f), 0);
	assert_fails(otter_boot_slot_writer_open(&w, f->sys, "rootfs", 4000, sha, &err),
	             OTTER_E_INVALID, &err, "no bootloader slot class 'rootfs'");
	free(before);
	free(after);
	free(img);
}

/* A table the configuration does not match is refused before anything is written. */
static void test_bootslot_refuses_mismatch(void **state)
{
	static const uint64_t overlap[][2] = {{REGION_START / 512, REGION_START / 512 + 31},
	                                      {REGION_START / 512 + 40, 300}};
	static const uint64_t elsewhere[][2] = {{70, 101}};
	static const uint64_t wrong_size[][2] = {{REGION_START / 512, REGION_START / 512 + 15}};
	static const uint32_t mbr_overlap[][2] = {{REGION_START / 512, 32}, {90, 10}};
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	uint8_t *img = image(100, 4);
	otter_boot_slot_info info;

	use_disk(f, make_gpt(overlap, 2), "gpt-switch");
	assert_fails(install(f, img, 100, NULL, &err), OTTER_E_STATE, &err, "overlaps");
	use_disk(f, make_gpt(elsewhere, 1), "gpt-switch");
	assert_fails(install(f, img, 100, NULL, &err), OTTER_E_STATE, &err, "neither half");
	assert_fails(otter_boot_slot_get_info(otter_system_find_boot_slot(f->sys, "bootloader"),
	                                      &info, &err),
	             OTTER_E_STATE, &err, "neither half");
	use_disk(f, make_gpt(wrong_size, 1), "gpt-switch");
	assert_fails(install(f, img, 100, NULL, &err), OTTER_E_STATE, &err, "not region-size");
	use_disk(f, make_mbr(mbr_overlap, 2), "mbr-switch");
	assert_fails(install(f, img, 100, NULL, &err), OTTER_E_STATE, &err, "overlaps");
	/* A GPT disk under an MBR switch, and the other way round. */
	use_disk(f, make_gpt(elsewhere, 1), "mbr-switch");
	assert_fails(install(f, img, 100, NULL, &err), OTTER_E_FORMAT, &err, "protective");
	use_disk(f, make_mbr(mbr_overlap, 1), "gpt-switch");
	assert_fails(install(f, img, 100, NULL, &err), OTTER_E_FORMAT, &err, "no valid GPT");
	/* The region past the end of the disk. */
	use_disk(f, make_mbr(mbr_overlap, 1), "mbr-switch");
	assert_ok(parse_conf(f, "mbr-switch", 1, 511 * 512, 512, &err));
	assert_fails(install(f, img, 100, NULL, &err), OTTER_E_CONFIG, &err, "past the end");
	free(img);
}

/* A backup left naming the other half (a cut between the two copies of an earlier switch)
 * is repaired before the inactive half is written. */
static void test_bootslot_gpt_repairs_backup(void **state)
{
	static const uint64_t parts[][2] = {{REGION_START / 512, REGION_START / 512 + 31}};
	static const uint64_t moved[][2] = {{REGION_START / 512 + 32, REGION_START / 512 + 63}};
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	uint8_t *disk = make_gpt(parts, 1), *other = make_gpt(moved, 1);
	uint8_t *img = image(700, 5);
	otter_boot_slot_info info;

	/* Primary names half 0, backup half 1. */
	memcpy(disk + (DISK_SECTORS - 33) * 512, other + (DISK_SECTORS - 33) * 512, 33 * 512);
	free(other);
	use_disk(f, disk, "gpt-switch");
	assert_ok(otter_boot_slot_get_info(otter_system_find_boot_slot(f->sys, "bootloader"), &info,
	                                   &err));
	assert_int_equal(info.active, 0);
	assert_true(info.degraded);
	assert_non_null(strstr(info.detail, "differs"));
	assert_ok(install(f, img, 700, NULL, &err));
	assert_int_equal(active(f), 1); /* and not degraded */

	/* A torn primary: the backup names the active half, and the primary is rebuilt. */
	disk = disk_bytes(f);
	disk[2 * 512 + 3] ^= 0x80;
	use_disk(f, disk, "gpt-switch");
	assert_ok(otter_boot_slot_get_info(otter_system_find_boot_slot(f->sys, "bootloader"), &info,
	                                   &err));
	assert_true(info.degraded);
	assert_non_null(strstr(info.detail, "primary GPT invalid"));
	free(img);
	img = image(900, 6);
	assert_ok(install(f, img, 900, NULL, &err));
	assert_int_equal(active(f), 0);
	free(img);
}

static void test_bootslot_config(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	const otter_boot_slot *bs;
	char conf[1024];

	assert_ok(parse_conf(f, "gpt-switch", 3, 1 << 20, 1 << 19, &err));
	assert_int_equal(otter_system_n_boot_slots(f->sys), 1);
	bs = otter_system_boot_slot(f->sys, 0);
	assert_string_equal(otter_boot_slot_class(bs), "bootloader");
	assert_int_equal(otter_boot_slot_get_type(bs), OTTER_BOOT_SLOT_GPT_SWITCH);
	assert_string_equal(otter_boot_slot_type_name(otter_boot_slot_get_type(bs)), "gpt-switch");
	assert_int_equal(otter_boot_slot_region_start(bs), 1 << 20);
	assert_int_equal(otter_boot_slot_region_size(bs), 1 << 19);
	assert_null(otter_system_find_boot_slot(f->sys, "rootfs"));
	assert_null(otter_system_boot_slot(f->sys, 1));
	assert_fails(parse_conf(f, "gpt-switch", 1, 1000, 4096, &err), OTTER_E_CONFIG, &err,
	             "multiples of 512");
	assert_fails(parse_conf(f, "mbr-switch", 5, 4096, 4096, &err), OTTER_E_CONFIG, &err,
	             "primary MBR entry");
	assert_fails(parse_conf(f, "mbr-switch", 1, 4096, 2ull << 40, &err), OTTER_E_CONFIG, &err,
	             "2 TiB");
	assert_fails(parse_conf(f, "gpt-switch", 129, 4096, 4096, &err), OTTER_E_CONFIG, &err,
	             "partition");
	assert_fails(parse_conf(f, "lilo", 1, 4096, 4096, &err), OTTER_E_CONFIG, &err,
	             "gpt-switch, mbr-switch, emmc-boot");
	assert_fails(parse_conf(f, "emmc-boot", 1, 4096, 4096, &err), OTTER_E_CONFIG, &err,
	             "takes no partition");
	snprintf(conf, sizeof(conf),
	         "[system]\ncompatible=t\nbootloader=grub\n"
	         "[slot.rootfs.0]\ndevice=/a\nbootname=A\n[slot.rootfs.1]\ndevice=/b\nbootname=B\n"
	         "[boot-slot.rootfs]\ntype=gpt-switch\ndevice=/c\npartition=1\nregion-start=512\n"
	         "region-size=512\n");
	assert_fails(otter_system_parse(&f->sys, "t", (const uint8_t *)conf, strlen(conf), &err),
	             OTTER_E_CONFIG, &err, "both a bootloader slot and an A/B slot class");
	snprintf(conf, sizeof(conf),
	         "[system]\ncompatible=t\nbootloader=grub\n"
	         "[slot.rootfs.0]\ndevice=/a\nbootname=A\n[slot.rootfs.1]\ndevice=/b\nbootname=B\n"
	         "[boot-slot.bl]\ntype=gpt-switch\ndevice=/a\npartition=1\nregion-start=512\n"
	         "region-size=512\n");
	assert_fails(otter_system_parse(&f->sys, "t", (const uint8_t *)conf, strlen(conf), &err),
	             OTTER_E_CONFIG, &err, "also the device of slot rootfs.0");
	snprintf(conf, sizeof(conf),
	         "[system]\ncompatible=t\nbootloader=grub\n"
	         "[slot.rootfs.0]\ndevice=/a\nbootname=A\n[slot.rootfs.1]\ndevice=/b\nbootname=B\n"
	         "[boot-slot.Bad]\ntype=gpt-switch\ndevice=/c\npartition=1\nregion-start=512\n"
	         "region-size=512\n");
	assert_fails(otter_system_parse(&f->sys, "t", (const uint8_t *)conf, strlen(conf), &err),
	             OTTER_E_CONFIG, &err, "[boot-slot.<class>]");
	snprintf(conf, sizeof(conf),
	         "[system]\ncompatible=t\nbootloader=grub\n"
	         "[slot.rootfs.0]\ndevice=/a\nbootname=A\n[slot.rootfs.1]\ndevice=/b\nbootname=B\n"
	         "[boot-slot.bl]\ntype=gpt-switch\ndevice=/c\npartition=1\nregion-start=512\n");
	assert_fails(otter_system_parse(&f->sys, "t", (const uint8_t *)conf, strlen(conf), &err),
	             OTTER_E_CONFIG, &err, "region-size");
}

/* ---- eMMC boot partitions, against a simulated card ---- */

#define BOOT_PART_SIZE (128u * 1024u)

struct sim_card {
	uint8_t ext_csd[EMMC_EXT_CSD_SIZE];
	char path[2][600];
	bool force_ro[2];
	unsigned switches;
	bool fail_switch;   /* CMD6 returns an error */
	bool ignore_switch; /* CMD6 "succeeds" but the card keeps the old value */
};

static int sim_read_ext_csd(void *userdata, uint8_t ext_csd[EMMC_EXT_CSD_SIZE], otter_error *err)
{
	struct sim_card *c = userdata;

	(void)err;
	memcpy(ext_csd, c->ext_csd, EMMC_EXT_CSD_SIZE);
	return 0;
}

static int sim_switch_byte(void *userdata, uint8_t index, uint8_t value, otter_error *err)
{
	struct sim_card *c = userdata;

	if (c->fail_switch)
		return otter_error_set(err, OTTER_E_IO, "simulated CMD6 failure");
	assert_int_equal(index, EMMC_EXT_CSD_PART_CONFIG); /* nothing else is ever written */
	c->switches++;
	if (!c->ignore_switch)
		c->ext_csd[index] = value;
	return 0;
}

static int sim_set_force_ro(void *userdata, unsigned part, bool ro, otter_error *err)
{
	struct sim_card *c = userdata;

	(void)err;
	assert_true(part < 2);
	c->force_ro[part] = ro;
	return 0;
}

static int sim_open_part(void *userdata, unsigned part, bool writable, int *fd_out,
                         otter_error *err)
{
	struct sim_card *c = userdata;
	int fd;

	assert_true(part < 2);
	if (writable && c->force_ro[part])
		return otter_error_set_errno(err, EROFS, "open boot%u", part);
	fd = open(c->path[part], (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return otter_error_set_errno(err, errno, "open boot%u", part);
	*fd_out = fd;
	return 0;
}

static emmc_ops sim_setup(struct fixture *f, struct sim_card *c, uint8_t part_config)
{
	otter_error err = OTTER_ERROR_INIT;
	emmc_ops ops = {sim_read_ext_csd, sim_switch_byte, sim_set_force_ro, sim_open_part, c};
	char conf[1024];

	memset(c, 0, sizeof(*c));
	c->ext_csd[EMMC_EXT_CSD_PART_CONFIG] = part_config;
	for (unsigned i = 0; i < 2; i++) {
		uint8_t *fill = malloc(BOOT_PART_SIZE);

		memset(fill, 0xB0 + (int)i, BOOT_PART_SIZE);
		snprintf(c->path[i], sizeof(c->path[i]), "%s/mmcblk0boot%u", f->dir, i);
		tfx_write_file(c->path[i], fill, BOOT_PART_SIZE);
		free(fill);
		c->force_ro[i] = true;
	}
	snprintf(conf, sizeof(conf),
	         "[system]\ncompatible=t\nbootloader=grub\ndata-directory=%s/data\n"
	         "[slot.rootfs.0]\ndevice=%s/a\nbootname=A\n[slot.rootfs.1]\ndevice=%s/b\n"
	         "bootname=B\n[boot-slot.bootloader]\ntype=emmc-boot\ndevice=/dev/mmcblk0\n",
	         f->dir, f->dir, f->dir);
	f->sys = otter_system_free(f->sys);
	assert_ok(otter_system_parse(&f->sys, "t", (const uint8_t *)conf, strlen(conf), &err));
	return ops;
}

static int emmc_install(struct fixture *f, const emmc_ops *ops, const uint8_t *img, size_t len,
                        const uint8_t *sha, otter_error *err)
{
	otter_boot_slot_writer *w = NULL;
	uint8_t digest[32];
	int r;

	memset(err, 0, sizeof(*err));
	if (!sha) {
		assert_ok(otter_hash_buf(OTTER_HASH_SHA256, img, len, digest, err));
		sha = digest;
	}
	r = boot_slot_writer_open_card(&w, f->sys, "bootloader", len, sha, ops, err);
	if (r == 0)
		r = otter_boot_slot_writer_write(w, img, len, err);
	if (r == 0)
		r = otter_boot_slot_writer_finish(w, err);
	if (r == 0)
		r = otter_boot_slot_writer_commit(w, err);
	otter_boot_slot_writer_free(w);
	return r;
}

static void test_bootslot_emmc_switch(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	struct sim_card c;
	emmc_ops ops = sim_setup(f, &c, 0x48); /* BOOT_ACK, boot0 enabled */
	uint8_t *one = image(3000, 7), *two = image(BOOT_PART_SIZE, 8), *d;
	otter_boot_slot_info info;
	size_t len;

	assert_ok(boot_slot_get_info_card(otter_system_find_boot_slot(f->sys, "bootloader"), &ops,
	                                  &info, &err));
	assert_int_equal(info.active, 0);
	assert_int_equal(otter_boot_slot_get_type(otter_system_boot_slot(f->sys, 0)),
	                 OTTER_BOOT_SLOT_EMMC_BOOT);
	assert_ok(emmc_install(f, &ops, one, 3000, NULL, &err));
	assert_int_equal(c.ext_csd[EMMC_EXT_CSD_PART_CONFIG], 0x50); /* ACK kept, boot1 */
	assert_true(c.force_ro[0] && c.force_ro[1]);                 /* read-only again */
	d = tfx_read_all(c.path[1], &len);
	assert_memory_equal(d, one, 3000);
	free(d);
	d = tfx_read_all(c.path[0], &len);
	assert_int_equal(d[0], 0xB0); /* the active one was never written */
	assert_int_equal(d[len - 1], 0xB0);
	free(d);
	/* Again: already active, no switch. */
	assert_ok(emmc_install(f, &ops, one, 3000, NULL, &err));
	assert_int_equal(c.switches, 1);
	/* A full-size image goes to boot0. */
	assert_ok(emmc_install(f, &ops, two, BOOT_PART_SIZE, NULL, &err));
	assert_int_equal(c.ext_csd[EMMC_EXT_CSD_PART_CONFIG], 0x48);
	assert_int_equal(c.switches, 2);
	d = tfx_read_all(c.path[0], &len);
	assert_memory_equal(d, two, BOOT_PART_SIZE);
	free(d);
	free(one);
	free(two);
}

static void test_bootslot_emmc_refusals(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	struct sim_card c;
	emmc_ops ops = sim_setup(f, &c, 0x38); /* boots from the user area */
	uint8_t *img = image(2000, 9), sha[32] = {0}, *d;
	size_t len;

	assert_int_equal(emmc_install(f, &ops, img, 2000, NULL, &err), OTTER_E_STATE);
	test_check_msg(err.msg, "user area");
	c.ext_csd[EMMC_EXT_CSD_PART_CONFIG] = 0;
	assert_int_equal(emmc_install(f, &ops, img, 2000, NULL, &err), OTTER_E_STATE);
	test_check_msg(err.msg, "boot disabled");
	c.ext_csd[EMMC_EXT_CSD_PART_CONFIG] = 0x08; /* boot0, no ACK */
	assert_int_equal(emmc_install(f, &ops, img, BOOT_PART_SIZE + 1, sha, &err),
	                 OTTER_E_TOO_LARGE);
	/* A bad image: boot1 may be written, but no switch and force_ro is back. */
	assert_int_equal(emmc_install(f, &ops, img, 2000, sha, &err), OTTER_E_HASH);
	assert_int_equal(c.switches, 0);
	assert_true(c.force_ro[1]);
	/* The card refuses the switch, or ignores it. */
	c.fail_switch = true;
	assert_int_equal(emmc_install(f, &ops, img, 2000, NULL, &err), OTTER_E_IO);
	test_check_msg(err.msg, "simulated CMD6 failure");
	assert_int_equal(c.ext_csd[EMMC_EXT_CSD_PART_CONFIG], 0x08);
	c.fail_switch = false;
	c.ignore_switch = true;
	assert_int_equal(emmc_install(f, &ops, img, 2000, NULL, &err), OTTER_E_IO);
	test_check_msg(err.msg, "still boots from boot0");
	assert_true(c.force_ro[0] && c.force_ro[1]);
	c.ignore_switch = false;
	assert_ok(emmc_install(f, &ops, img, 2000, NULL, &err));
	assert_int_equal(c.ext_csd[EMMC_EXT_CSD_PART_CONFIG], 0x10);
	d = tfx_read_all(c.path[1], &len);
	assert_memory_equal(d, img, 2000);
	free(d);
	/* boot0 and boot1 of different sizes. */
	d = tfx_read_all(c.path[0], &len);
	tfx_write_file(c.path[0], d, len - 512);
	free(d);
	assert_int_equal(emmc_install(f, &ops, img, 2000, NULL, &err), OTTER_E_STATE);
	test_check_msg(err.msg, "differ in size");
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_bootslot_crc32),
	        cmocka_unit_test(test_bootslot_gpt_parse),
	        cmocka_unit_test(test_bootslot_gpt_bounds),
	        cmocka_unit_test(test_bootslot_mbr_parse),
	        cmocka_unit_test_setup_teardown(test_bootslot_gpt_switch, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bootslot_mbr_switch, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bootslot_bad_image_leaves_table, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_bootslot_refuses_mismatch, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bootslot_gpt_repairs_backup, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bootslot_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bootslot_emmc_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bootslot_emmc_refusals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
