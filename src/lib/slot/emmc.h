/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_SLOT_EMMC_H
#define OTTER_LIB_SLOT_EMMC_H

/*
 * eMMC boot partitions as a bootloader slot (type=emmc-boot). The card boots from the boot
 * partition that EXT_CSD[179] PARTITION_CONFIG names in bits 5:3 (BOOT_PARTITION_ENABLE:
 * 1 = boot0, 2 = boot1; 0 = disabled, 7 = user area). One CMD6 SWITCH rewrites that byte,
 * which the card applies atomically: the switch. Linux write-protects the boot partitions
 * through /sys/block/<dev>bootN/force_ro, lifted for the write and set again after.
 *
 * Everything the card does goes through emmc_ops, so the logic is tested against a simulated
 * card (tests/unit/test-bootslot.c); emmc_ops_linux() is the real one (MMC_IOC_CMD ioctls on
 * the user-area device, as `mmc extcsd read` and `mmc bootpart enable` use).
 */

#include <stdbool.h>
#include <stdint.h>

#include <otter/error.h>

#define EMMC_EXT_CSD_SIZE        512u
#define EMMC_EXT_CSD_PART_CONFIG 179u

typedef struct emmc_ops {
	int (*read_ext_csd)(void *userdata, uint8_t ext_csd[EMMC_EXT_CSD_SIZE], otter_error *err);
	/* CMD6 SWITCH, write-byte mode: EXT_CSD[index] = value. */
	int (*switch_byte)(void *userdata, uint8_t index, uint8_t value, otter_error *err);
	/* force_ro of boot partition part (0 or 1). */
	int (*set_force_ro)(void *userdata, unsigned part, bool ro, otter_error *err);
	/* Opens boot partition part (0 or 1): writable (O_RDWR) or read-only; returns the fd. */
	int (*open_part)(void *userdata, unsigned part, bool writable, int *fd_out,
	                 otter_error *err);
	void *userdata;
} emmc_ops;

/* The real card behind device (/dev/mmcblkN): *state_out is freed with emmc_linux_free. */
int emmc_ops_linux(const char *device, emmc_ops *out, otter_error *err);
void emmc_linux_free(emmc_ops *ops);

/* The boot partition (0 or 1) the card boots from; OTTER_E_STATE when it boots from neither
 * (boot disabled or the user area): then no half is known to be inactive. */
int emmc_active(const emmc_ops *ops, unsigned *active_out, otter_error *err);
/* Makes the card boot from part (0 or 1), keeping BOOT_ACK and PARTITION_ACCESS, then reads
 * EXT_CSD back to check that the card took it. */
int emmc_switch(const emmc_ops *ops, unsigned part, otter_error *err);

#endif
