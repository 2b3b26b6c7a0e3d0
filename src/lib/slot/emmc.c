/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* eMMC boot partition switch (emmc.h); JESD84-B51 7.4.69 PARTITION_CONFIG, 6.6.1 CMD6. */
#include "emmc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/major.h>
#include <linux/mmc/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

#define BOOT_ENABLE_SHIFT 3
#define BOOT_ENABLE_MASK  (7u << BOOT_ENABLE_SHIFT)

int emmc_active(const emmc_ops *ops, unsigned *active_out, otter_error *err)
{
	uint8_t ext_csd[EMMC_EXT_CSD_SIZE];
	unsigned enable;
	int r = ops->read_ext_csd(ops->userdata, ext_csd, err);

	if (r < 0)
		return otter_error_prefix(err, r, "reading EXT_CSD");
	enable = (ext_csd[EMMC_EXT_CSD_PART_CONFIG] & BOOT_ENABLE_MASK) >> BOOT_ENABLE_SHIFT;
	if (enable != 1 && enable != 2)
		return otter_error_set(err, OTTER_E_STATE,
		                       "the card boots from %s (EXT_CSD PARTITION_CONFIG 0x%02x), "
		                       "not from a boot partition: enable one first (mmc bootpart "
		                       "enable 1 1 /dev/mmcblkN)",
		                       enable == 7 ? "the user area" : "nothing (boot disabled)",
		                       ext_csd[EMMC_EXT_CSD_PART_CONFIG]);
	*active_out = enable - 1;
	return 0;
}

int emmc_switch(const emmc_ops *ops, unsigned part, otter_error *err)
{
	uint8_t ext_csd[EMMC_EXT_CSD_SIZE];
	uint8_t value;
	unsigned now;
	int r;

	if (part > 1)
		return otter_error_set(err, OTTER_E_INVALID, "eMMC: no boot partition %u", part);
	r = ops->read_ext_csd(ops->userdata, ext_csd, err);
	if (r < 0)
		return otter_error_prefix(err, r, "reading EXT_CSD");
	value = (uint8_t)((ext_csd[EMMC_EXT_CSD_PART_CONFIG] & ~BOOT_ENABLE_MASK) |
	                  ((part + 1) << BOOT_ENABLE_SHIFT));
	r = ops->switch_byte(ops->userdata, EMMC_EXT_CSD_PART_CONFIG, value, err);
	if (r < 0)
		return otter_error_prefix(err, r, "setting EXT_CSD PARTITION_CONFIG to 0x%02x",
		                          value);
	r = emmc_active(ops, &now, err);
	if (r < 0)
		return otter_error_prefix(err, r, "after the switch");
	if (now != part)
		return otter_error_set(
		        err, OTTER_E_IO,
		        "the card still boots from boot%u after the switch to boot%u "
		        "(failing card?)",
		        now, part);
	return 0;
}

/* ---- the real card: MMC_IOC_CMD on the user-area device ---- */

/* Response and command types from the kernel's include/linux/mmc/core.h (not in the UAPI
 * headers; mmc-utils defines them the same way). */
#define MMC_RSP_PRESENT       (1u << 0)
#define MMC_RSP_CRC           (1u << 2)
#define MMC_RSP_BUSY          (1u << 3)
#define MMC_RSP_OPCODE        (1u << 4)
#define MMC_CMD_AC            (0u << 5)
#define MMC_CMD_ADTC          (1u << 5)
#define MMC_RSP_SPI_S1        (1u << 7)
#define MMC_RSP_SPI_BUSY      (1u << 10)
#define MMC_RSP_R1            (MMC_RSP_PRESENT | MMC_RSP_CRC | MMC_RSP_OPCODE)
#define MMC_RSP_R1B           (MMC_RSP_R1 | MMC_RSP_BUSY)
#define MMC_RSP_SPI_R1        MMC_RSP_SPI_S1
#define MMC_RSP_SPI_R1B       (MMC_RSP_SPI_S1 | MMC_RSP_SPI_BUSY)
#define MMC_SWITCH_CMD        6u
#define MMC_SEND_EXT_CSD_CMD  8u
#define MMC_SWITCH_WRITE_BYTE 3u

struct linux_card {
	char *device; /* /dev/mmcblk0 */
	char *name;   /* mmcblk0 */
	int fd;
};

static int linux_read_ext_csd(void *userdata, uint8_t ext_csd[EMMC_EXT_CSD_SIZE], otter_error *err)
{
	struct linux_card *c = userdata;
	struct mmc_ioc_cmd cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = MMC_SEND_EXT_CSD_CMD;
	cmd.flags = MMC_RSP_SPI_R1 | MMC_RSP_R1 | MMC_CMD_ADTC;
	cmd.blksz = EMMC_EXT_CSD_SIZE;
	cmd.blocks = 1;
	mmc_ioc_cmd_set_data(cmd, ext_csd);
	if (ioctl(c->fd, MMC_IOC_CMD, &cmd) < 0)
		return otter_error_set_errno(err, errno, "MMC_IOC_CMD SEND_EXT_CSD on '%s'",
		                             c->device);
	return 0;
}

static int linux_switch_byte(void *userdata, uint8_t index, uint8_t value, otter_error *err)
{
	struct linux_card *c = userdata;
	struct mmc_ioc_cmd cmd;

	memset(&cmd, 0, sizeof(cmd));
	cmd.opcode = MMC_SWITCH_CMD;
	cmd.arg = (MMC_SWITCH_WRITE_BYTE << 24) | ((uint32_t)index << 16) | ((uint32_t)value << 8) |
	          1u /* EXT_CSD_CMD_SET_NORMAL */;
	cmd.flags = MMC_RSP_SPI_R1B | MMC_RSP_R1B | MMC_CMD_AC;
	cmd.write_flag = 1;
	if (ioctl(c->fd, MMC_IOC_CMD, &cmd) < 0)
		return otter_error_set_errno(err, errno, "MMC_IOC_CMD SWITCH on '%s'", c->device);
	return 0;
}

static int linux_set_force_ro(void *userdata, unsigned part, bool ro, otter_error *err)
{
	struct linux_card *c = userdata;
	char path[300];
	_cleanup_close_ int fd = -1;

	strfmt(path, sizeof(path), "/sys/block/%sboot%u/force_ro", c->name, part);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, ro ? "1" : "0", 1) != 1)
		return otter_error_set_errno(err, errno, "writing '%s'", path);
	return 0;
}

static int linux_open_part(void *userdata, unsigned part, bool writable, int *fd_out,
                           otter_error *err)
{
	struct linux_card *c = userdata;
	char path[300];
	int fd;

	strfmt(path, sizeof(path), "%sboot%u", c->device, part);
	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return otter_error_set_errno(err, errno, "open '%s'", path);
	*fd_out = fd;
	return 0;
}

int emmc_ops_linux(const char *device, emmc_ops *out, otter_error *err)
{
	struct linux_card *c = otter_calloc(1, sizeof(*c));
	const char *base = strrchr(device, '/');

	if (!c)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	c->fd = -1;
	c->device = otter_strdup(device);
	c->name = otter_strdup(base ? base + 1 : device);
	if (!c->device || !c->name) {
		free(c->device);
		free(c->name);
		free(c);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	c->fd = open(device, O_RDWR | O_CLOEXEC | O_NOCTTY);
	out->read_ext_csd = linux_read_ext_csd;
	out->switch_byte = linux_switch_byte;
	out->set_force_ro = linux_set_force_ro;
	out->open_part = linux_open_part;
	out->userdata = c;
	if (c->fd < 0) {
		int e = errno;

		emmc_linux_free(out);
		return otter_error_set_errno(err, e, "open '%s'", device);
	}
	return 0;
}

void emmc_linux_free(emmc_ops *ops)
{
	struct linux_card *c = ops ? ops->userdata : NULL;

	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->device);
	free(c->name);
	free(c);
	ops->userdata = NULL;
}
