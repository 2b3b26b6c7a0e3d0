/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_SLOT_BOOTSLOT_PRIVATE_H
#define OTTER_LIB_SLOT_BOOTSLOT_PRIVATE_H

/* The bootloader-slot entry points with the card given (tests pass a simulated eMMC card;
 * NULL = the real one behind the configured device). Ignored by the other types. */

#include <otter/bootslot.h>

#include "emmc.h"

int boot_slot_writer_open_card(otter_boot_slot_writer **out, const otter_system *sys,
                               const char *class_name, uint64_t expected_len,
                               const uint8_t expected_sha256[32], const emmc_ops *card,
                               otter_error *err);
int boot_slot_get_info_card(const otter_boot_slot *bs, const emmc_ops *card,
                            otter_boot_slot_info *out, otter_error *err);

#endif
