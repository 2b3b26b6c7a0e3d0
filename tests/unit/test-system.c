/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The system configuration (src/lib/slot/system.c, include/otter/system.h). */
#include "test-common.h"

#include <stdbool.h>

#include <otter/system.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/ini.h"

static const char example[] =
	"# the example of issue 4\n"
	"[system]\n"
	"compatible=acme-gateway          # which images this device accepts\n"
	"bootloader=uboot                 # uboot | grub\n"
	"data-directory=/var/lib/otter\n"
	"cmdline=/proc/cmdline            # where otter.slot=<bootname> is read\n"
	"\n"
	"[bootloader]\n"
	"fw-env-config=/etc/fw_env.config # uboot: libubootenv configuration\n"
	"grubenv=/boot/grub/grubenv       # grub\n"
	"tries=3                          # boot attempts\n"
	"\n"
	"[slot.rootfs.0]\n"
	"device=/dev/mmcblk0p2            # block device or regular file\n"
	"type=ext4                        # raw | ext4\n"
	"bootname=A\n"
	"\n"
	"[slot.rootfs.1]\n"
	"device=/dev/mmcblk0p3\n"
	"type=ext4\n"
	"bootname=B\n";

#define MIN_SYSTEM "[system]\ncompatible=x\nbootloader=grub\n"
#define AB_SLOTS                                                                                   \
	"[slot.rootfs.0]\ndevice=/a\nbootname=A\n"                                                 \
	"[slot.rootfs.1]\ndevice=/b\nbootname=B\n"

static int parse(otter_system **out, const char *text, otter_error *err)
{
	return otter_system_parse(out, "test.conf", (const uint8_t *)text, strlen(text), err);
}

static void test_config_example(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_system *sys = NULL;
	const otter_slot *s;

	assert_ok(parse(&sys, example, &err));
	assert_string_equal(otter_system_compatible(sys), "acme-gateway");
	assert_int_equal(otter_system_bootloader(sys), OTTER_BOOTLOADER_UBOOT);
	assert_string_equal(otter_system_data_dir(sys), "/var/lib/otter");
	assert_string_equal(otter_system_cmdline(sys), "/proc/cmdline");
	assert_string_equal(otter_system_fw_env_config(sys), "/etc/fw_env.config");
	assert_string_equal(otter_system_grubenv(sys), "/boot/grub/grubenv");
	assert_int_equal(otter_system_tries(sys), 3);
	assert_int_equal(otter_system_n_slots(sys), 2);
	s = otter_system_slot(sys, 1);
	assert_string_equal(otter_slot_name(s), "rootfs.1");
	assert_string_equal(otter_slot_class(s), "rootfs");
	assert_int_equal(otter_slot_index(s), 1);
	assert_string_equal(otter_slot_device(s), "/dev/mmcblk0p3");
	assert_int_equal(otter_slot_get_type(s), OTTER_SLOT_EXT4);
	assert_string_equal(otter_slot_bootname(s), "B");
	assert_null(otter_system_slot(sys, 2));
	assert_ptr_equal(otter_system_find_slot(sys, "rootfs.0"), otter_system_slot(sys, 0));
	assert_null(otter_system_find_slot(sys, "rootfs.2"));
	assert_ptr_equal(otter_system_find_slot_by_bootname(sys, "rootfs", "B"), s);
	assert_null(otter_system_find_slot_by_bootname(sys, "kernel", "B"));
	assert_int_equal(otter_system_n_bootnames(sys), 2);
	assert_string_equal(otter_system_bootname(sys, 0), "A");
	assert_null(otter_system_bootname(sys, 2));
	assert_true(otter_system_has_bootname(sys, "B"));
	assert_false(otter_system_has_bootname(sys, "C"));
	otter_system_free(sys);
}

static void test_config_defaults_and_syntax(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_system *sys = NULL;

	/* CRLF, ';' comments, blanks around '=', no [bootloader] section at all. */
	assert_ok(parse(&sys,
			"; comment\r\n[ system ]\r\n compatible = a b c \r\nbootloader=grub\r\n"
			"[slot.rootfs.0]  # trailing comment on a header\n"
			"device=/dev/x#not-a-comment\nbootname=A\n"
			"[slot.rootfs.1]\ndevice=/b\nbootname=B",
			&err));
	assert_string_equal(otter_system_compatible(sys), "a b c");
	assert_int_equal(otter_system_bootloader(sys), OTTER_BOOTLOADER_GRUB);
	assert_string_equal(otter_system_data_dir(sys), "/var/lib/otter");
	assert_string_equal(otter_system_cmdline(sys), "/proc/cmdline");
	assert_string_equal(otter_system_grubenv(sys), "/boot/grub/grubenv");
	assert_int_equal(otter_system_tries(sys), 3);
	assert_string_equal(otter_slot_device(otter_system_slot(sys, 0)), "/dev/x#not-a-comment");
	assert_int_equal(otter_slot_get_type(otter_system_slot(sys, 0)), OTTER_SLOT_RAW);
	sys = otter_system_free(sys);

	/* Classes grouped by bootname: kernel and rootfs, both A and B. */
	assert_ok(parse(&sys,
			MIN_SYSTEM AB_SLOTS "[slot.kernel.0]\ndevice=/k0\nbootname=A\n"
					    "[slot.kernel.1]\ndevice=/k1\nbootname=B\n",
			&err));
	assert_int_equal(otter_system_n_slots(sys), 4);
	assert_int_equal(otter_system_n_bootnames(sys), 2);
	assert_string_equal(
		otter_slot_device(otter_system_find_slot_by_bootname(sys, "kernel", "B")), "/k1");
	otter_system_free(sys);
}

struct bad_case {
	const char *text;
	const char *needle;
	int code;
};

static void test_config_errors(void **state)
{
	static const struct bad_case cases[] = {
		{"[foo]\n", "test.conf:1: [foo]: unknown section", OTTER_E_CONFIG},
		{MIN_SYSTEM "colour=red\n", "test.conf:4: colour: unknown key in [system]",
		 OTTER_E_CONFIG},
		{MIN_SYSTEM "compatible=y\n", "test.conf:4: compatible: set twice in [system]",
		 OTTER_E_CONFIG},
		{MIN_SYSTEM "[system]\n", "test.conf:4: [system]: section appears twice",
		 OTTER_E_CONFIG},
		{"[system]\ncompatible=x\nbootloader=lilo\n",
		 "test.conf:3: bootloader: 'lilo' is not one of: uboot, grub", OTTER_E_CONFIG},
		{"[system]\nbootloader=grub\n" AB_SLOTS,
		 "test.conf:1: compatible: required in [system] but missing", OTTER_E_CONFIG},
		{AB_SLOTS, "test.conf: [system]: section missing", OTTER_E_CONFIG},
		{"compatible=x\n", "test.conf:1: compatible: key outside of a section",
		 OTTER_E_CONFIG},
		{"[system]\ncompatible\n", "test.conf:2: compatible: expected key=value",
		 OTTER_E_CONFIG},
		{"[system]\n=x\n", "test.conf:2: =x: empty key", OTTER_E_CONFIG},
		{"[system\n", "test.conf:1: [system: malformed section header", OTTER_E_CONFIG},
		{"[system]\ncompatible=\n", "test.conf:2: compatible: empty value",
		 OTTER_E_CONFIG},
		{"[system]\ncompatible=   # only a comment\n", "compatible: empty value",
		 OTTER_E_CONFIG},
		{"[system]\ncompatible=a\x01" "b\n", "test.conf:2: control character 0x01",
		 OTTER_E_CONFIG},
		{MIN_SYSTEM "data-directory=var/lib\n",
		 "test.conf:4: data-directory: 'var/lib' is not an absolute path", OTTER_E_CONFIG},
		{MIN_SYSTEM "[bootloader]\ntries=0\n",
		 "test.conf:5: tries: '0' is not a whole number from 1 to 9", OTTER_E_CONFIG},
		{MIN_SYSTEM "[bootloader]\ntries=10\n", "tries: '10' is not a whole number",
		 OTTER_E_CONFIG},
		{MIN_SYSTEM "[bootloader]\ntries=03\n", "tries: '03'", OTTER_E_CONFIG},
		{MIN_SYSTEM "[bootloader]\ntries=-1\n", "tries: '-1'", OTTER_E_CONFIG},
		{MIN_SYSTEM "[bootloader]\ntries=99999999999999999999999\n", "tries: '9999",
		 OTTER_E_CONFIG},
		{MIN_SYSTEM "[bootloader]\ncolour=1\n", "colour: unknown key in [bootloader]",
		 OTTER_E_CONFIG},
		{MIN_SYSTEM, "test.conf: no [slot.<class>.<index>] sections", OTTER_E_CONFIG},
		{MIN_SYSTEM "[slot.rootfs.0]\ndevice=/a\nbootname=A\n",
		 "slots need at least two bootnames", OTTER_E_CONFIG},
		{MIN_SYSTEM "[slot.rootfs.0]\nbootname=A\n",
		 "test.conf:4: device: required in [slot.rootfs.0] but missing", OTTER_E_CONFIG},
		{MIN_SYSTEM "[slot.rootfs.0]\ndevice=/a\nbootname=A-1\n",
		 "test.conf:4: [slot.rootfs.0]: bootname: 'A-1' must be", OTTER_E_CONFIG},
		{MIN_SYSTEM "[slot.rootfs.0]\ndevice=/a\nbootname=ABCDEFGHIJKLMNOPQ\n",
		 "bootname: value longer than 16 bytes", OTTER_E_CONFIG},
		{MIN_SYSTEM "[slot.rootfs.0]\ndevice=/a\ntype=squashfs\nbootname=A\n",
		 "type: 'squashfs' is not one of: raw, ext4", OTTER_E_CONFIG},
		{MIN_SYSTEM AB_SLOTS "[slot.rootfs.0]\ndevice=/c\nbootname=C\n",
		 "[slot.rootfs.0]: slot defined twice", OTTER_E_CONFIG},
		{MIN_SYSTEM AB_SLOTS "[slot.kernel.0]\ndevice=/a\nbootname=A\n",
		 "device: '/a' is also the device of slot rootfs.0", OTTER_E_CONFIG},
		{MIN_SYSTEM AB_SLOTS "[slot.rootfs.2]\ndevice=/c\nbootname=B\n",
		 "bootname: 'B' is also the bootname of slot rootfs.1", OTTER_E_CONFIG},
		{MIN_SYSTEM AB_SLOTS "[slot.kernel.0]\ndevice=/k\nbootname=A\n",
		 "class 'kernel' has no slot with bootname 'B'", OTTER_E_CONFIG},
		{MIN_SYSTEM "[slot.rootfs.32]\ndevice=/a\nbootname=A\n",
		 "slot index '32' is not a number from 0 to 31", OTTER_E_CONFIG},
		{MIN_SYSTEM "[slot.rootfs]\ndevice=/a\nbootname=A\n",
		 "slot sections are named [slot.<class>.<index>]", OTTER_E_CONFIG},
		{MIN_SYSTEM "[slot.Root.0]\ndevice=/a\nbootname=A\n",
		 "slot sections are named", OTTER_E_CONFIG},
		{MIN_SYSTEM "[slot.]\n", "[slot.]: unknown section", OTTER_E_CONFIG},
	};
	otter_error err;
	otter_system *sys;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		otter_error_clear(&err);
		sys = NULL;
		assert_err(parse(&sys, cases[i].text, &err), cases[i].code, &err,
			   cases[i].needle);
		assert_null(sys);
	}
}

static void test_config_limits(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_system *sys = NULL;
	char *big, line[INI_MAX_LINE + 64];
	size_t off;

	/* A line of exactly INI_MAX_LINE bytes is fine; one more is not. */
	memset(line, 0, sizeof(line));
	memset(line, 'x', INI_MAX_LINE);
	line[0] = '#';
	big = malloc(INI_MAX_FILE_SIZE + 2);
	assert_non_null(big);
	sprintf(big, MIN_SYSTEM "%s\n" AB_SLOTS, line);
	assert_ok(parse(&sys, big, &err));
	sys = otter_system_free(sys);
	strcat(line, "x");
	sprintf(big, "[system]\n%s\n", line);
	assert_err(parse(&sys, big, &err), OTTER_E_CONFIG, &err, "test.conf:2: line longer");
	strcpy(line, "compatible=");
	memset(line + 11, 'y', 300);
	/* compatible: 255 bytes fine, 256 not. */
	otter_error_clear(&err);
	sprintf(big, "[system]\nbootloader=grub\ncompatible=%.255s\n" AB_SLOTS, line + 11);
	assert_ok(parse(&sys, big, &err));
	sys = otter_system_free(sys);
	sprintf(big, "[system]\nbootloader=grub\ncompatible=%.256s\n" AB_SLOTS, line + 11);
	assert_err(parse(&sys, big, &err), OTTER_E_CONFIG, &err,
		   "compatible: value longer than 255 bytes");
	/* The file: 64 KiB fine (comments), 64 KiB + 1 refused before parsing. */
	otter_error_clear(&err);
	memset(big, '#', INI_MAX_FILE_SIZE + 1);
	for (size_t i = 100; i < INI_MAX_FILE_SIZE; i += 100)
		big[i] = '\n';
	off = (size_t)sprintf(big, MIN_SYSTEM AB_SLOTS);
	big[off] = '#';
	assert_ok(otter_system_parse(&sys, "big", (uint8_t *)big, INI_MAX_FILE_SIZE, &err));
	sys = otter_system_free(sys);
	assert_err(otter_system_parse(&sys, "big", (uint8_t *)big, INI_MAX_FILE_SIZE + 1, &err),
		   OTTER_E_TOO_LARGE, &err, "more than the limit");
	/* NUL inside the data. */
	otter_error_clear(&err);
	assert_err(otter_system_parse(&sys, "nul", (const uint8_t *)"[system]\n\0x\n", 12, &err),
		   OTTER_E_CONFIG, &err, "nul:2: control character 0x00");
	/* 32 slots are fine, a 33rd is a limit error. */
	otter_error_clear(&err);
	off = (size_t)sprintf(big, MIN_SYSTEM);
	for (int i = 0; i < 16; i++)
		off += (size_t)sprintf(big + off,
				       "[slot.c%d.0]\ndevice=/a%d\nbootname=A\n"
				       "[slot.c%d.1]\ndevice=/b%d\nbootname=B\n",
				       i, i, i, i);
	assert_ok(parse(&sys, big, &err));
	assert_int_equal(otter_system_n_slots(sys), 32);
	sys = otter_system_free(sys);
	sprintf(big + off, "[slot.x.0]\ndevice=/x\nbootname=A\n");
	assert_err(parse(&sys, big, &err), OTTER_E_LIMIT, &err, "more than 32 slots");
	/* 8 bootnames are fine, a 9th is not. */
	otter_error_clear(&err);
	off = (size_t)sprintf(big, MIN_SYSTEM);
	for (int i = 0; i < 8; i++)
		off += (size_t)sprintf(big + off, "[slot.r.%d]\ndevice=/d%d\nbootname=N%d\n", i, i, i);
	assert_ok(parse(&sys, big, &err));
	assert_int_equal(otter_system_n_bootnames(sys), 8);
	sys = otter_system_free(sys);
	sprintf(big + off, "[slot.r.8]\ndevice=/d8\nbootname=N8\n");
	assert_err(parse(&sys, big, &err), OTTER_E_CONFIG, &err, "more than 8 bootnames");
	free(big);
}

struct update_conf {
	char *server;
	uint64_t interval;
};

static int begin_update(void *userdata, const char *subname, void **target, otter_error *err)
{
	*target = userdata;
	return 0;
}

/*
 * A file two modules read (system.conf with the agent's [update]): slot leaves the foreign
 * section to its reader, which skips slot's; every section is checked by one of them.
 */
static void test_config_shared_file(void **state)
{
	static const ini_key update_keys[] = {
		{"server", INI_STRING, offsetof(struct update_conf, server), 0, 0, NULL, NULL, true},
		{"interval", INI_U64, offsetof(struct update_conf, interval), 1, 86400, NULL, "600",
		 false},
	};
	static const ini_section update_section[] = {
		{"update", false, update_keys, 2, begin_update, NULL, NULL},
	};
	static const char *const foreign[] = {"update", "extra.", NULL};
	static const ini_options skip = {.skip_unknown_sections = true};
	struct update_conf u = {0};
	otter_error err = OTTER_ERROR_INIT;
	otter_system *sys = NULL;
	const char *text = MIN_SYSTEM AB_SLOTS "[update]\nserver=https://x\n[extra.one]\nk=v\n";

	assert_ok(otter_system_parse_shared(&sys, "t", (const uint8_t *)text, strlen(text),
					    foreign, &err));
	assert_int_equal(otter_system_n_slots(sys), 2);
	sys = otter_system_free(sys);
	assert_ok(ini_parse_opts(&skip, "t", (const uint8_t *)text, strlen(text), update_section,
				 1, &u, &err));
	assert_string_equal(u.server, "https://x");
	assert_int_equal(u.interval, 600);
	free(u.server);
	u.server = NULL;
	/* Without the foreign list, [update] is unknown to slot. */
	assert_err(parse(&sys, text, &err), OTTER_E_CONFIG, &err, "[update]: unknown section");
	otter_error_clear(&err);
	/* An unknown section stays an error for slot, which names the foreign ones too. */
	text = MIN_SYSTEM AB_SLOTS "[updat]\nserver=a\n";
	assert_err(otter_system_parse_shared(&sys, "t", (const uint8_t *)text, strlen(text),
					     foreign, &err),
		   OTTER_E_CONFIG, &err, "unknown section 'updat' (expected system, bootloader, "
					 "slot.*, boot-slot.*, update or extra.*)");
	otter_error_clear(&err);
	/* A family needs a member name: [extra.] is not one. */
	text = MIN_SYSTEM AB_SLOTS "[extra.]\nk=v\n";
	assert_err(otter_system_parse_shared(&sys, "t", (const uint8_t *)text, strlen(text),
					     foreign, &err),
		   OTTER_E_CONFIG, &err, "unknown section 'extra.'");
	otter_error_clear(&err);
	/* The reader of [update] checks its keys (and skips slot's sections). */
	text = MIN_SYSTEM AB_SLOTS "[update]\nserver=a\nservre=b\n";
	assert_ok(otter_system_parse_shared(&sys, "t", (const uint8_t *)text, strlen(text),
					    foreign, &err));
	sys = otter_system_free(sys);
	assert_err(ini_parse_opts(&skip, "t", (const uint8_t *)text, strlen(text), update_section,
				  1, &u, &err),
		   OTTER_E_CONFIG, &err, "t:12: servre: unknown key in [update]");
	free(u.server);
	u.server = NULL;
	/* Skipped sections still have to be well-formed lines. */
	otter_error_clear(&err);
	text = MIN_SYSTEM AB_SLOTS "[update]\nserver=a\n[extra.one]\nno equals sign\n";
	assert_err(otter_system_parse_shared(&sys, "t", (const uint8_t *)text, strlen(text),
					     foreign, &err),
		   OTTER_E_CONFIG, &err, "expected key=value");
	free(u.server);
}

static void test_config_load_file(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_system *sys = NULL;
	char *dir = test_tmpdir(), path[512];

	snprintf(path, sizeof(path), "%s/system.conf", dir);
	assert_err(otter_system_load(&sys, path, &err), OTTER_E_NOT_FOUND, &err,
		   "does not exist");
	assert_ok(fileio_write_atomic_path(path, example, strlen(example), 0644, &err));
	assert_ok(otter_system_load(&sys, path, &err));
	otter_system_free(sys);
	otter_error_clear(&err);
	assert_err(otter_system_load(&sys, NULL, &err), OTTER_E_INVALID, &err, NULL);
	rm_rf(dir);
	free(dir);
}

static void test_config_alloc_failures(void **state)
{
	unsigned long n;
	otter_error err;
	otter_system *sys = NULL;

	otter_alloc_fail_at(0);
	assert_ok(parse(&sys, example, &err));
	sys = otter_system_free(sys);
	n = otter_alloc_count();
	assert_true(n > 5);
	for (unsigned long k = 1; k <= n; k++) {
		otter_error_clear(&err);
		otter_alloc_fail_at(k);
		assert_err(parse(&sys, example, &err), OTTER_E_NOMEM, &err, NULL);
		assert_null(sys);
	}
	otter_alloc_fail_at(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_example),
		cmocka_unit_test(test_config_defaults_and_syntax),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_limits),
		cmocka_unit_test(test_config_shared_file),
		cmocka_unit_test(test_config_load_file),
		cmocka_unit_test(test_config_alloc_failures),
	};
	return cmocka_run_group_tests_name("system", tests, NULL, NULL);
}
