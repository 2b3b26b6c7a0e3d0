/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_TEST_FIXTURES_H
#define OTTER_TEST_FIXTURES_H

/*
 * Fixture helpers shared by the unit tests (a static library linked into each): files,
 * GRUB environments and kernel command lines as the device code reads them. Each asserts
 * (cmocka) instead of returning an error.
 */

#include <stddef.h>
#include <stdint.h>

/* Writes path atomically. */
void tfx_write_file(const char *path, const void *data, size_t len);
/* Reads path (up to 64 MiB); caller frees. */
uint8_t *tfx_read_all(const char *path, size_t *len);
/* A grubenv made by our serialiser from name, value pairs (NULL-terminated; kv may be NULL). */
void tfx_write_grubenv(const char *path, const char *const *kv);
/* A variable of the grubenv at path, or NULL when unset; caller frees. */
char *tfx_grubvar(const char *path, const char *name);
/* A kernel command line naming the booted bootname (otter.slot=). */
void tfx_set_cmdline(const char *path, const char *bootname);

#endif
