/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_SLOT_WQUEUE_H
#define OTTER_LIB_SLOT_WQUEUE_H

/*
 * The slot writer's write-behind queue: a thread that takes the image bytes (after
 * decompression) from a bounded ring of buffers and writes them to the slot, so that reading
 * the source, hashing the input and decompressing on the caller's thread overlap with the
 * writes. The same thread keeps an XXH3-128 checksum of every byte in image order (the
 * read-back compares it with the slot's, see writer.c) and, when given one, a cryptographic
 * hash of the image (zstd: written-sha256). Memory: SLOT_WQ_BUFS x SLOT_WQ_BUF_SIZE, whatever
 * the image size.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/crypto.h>
#include <otter/error.h>

#define SLOT_WQ_BUFS     4u
#define SLOT_WQ_BUF_SIZE (512u * 1024u)
#define SLOT_WQ_SUM_SIZE 16u /* XXH3-128, canonical (big-endian) bytes */

typedef struct slot_wqueue slot_wqueue;

/*
 * Starts the thread. fd stays the caller's (open until slot_wqueue_free); slot_name names
 * the slot in errors; hash (may be NULL) is updated with every byte and stays the caller's.
 */
int slot_wqueue_new(slot_wqueue **out, int fd, const char *slot_name, otter_hash *hash,
		    otter_error *err);
/*
 * Queues the n bytes at slot offset pos (copied; the call blocks while the ring is full).
 * write=false: only checksummed and hashed, not written (the header, written last by the
 * caller). Bytes must come in image order. Fails with the thread's error once it has one.
 */
int slot_wqueue_push(slot_wqueue *q, const uint8_t *p, size_t n, uint64_t pos, bool write,
		     otter_error *err);
/* Waits until every queued byte is written; the thread's error if a write failed. */
int slot_wqueue_drain(slot_wqueue *q, otter_error *err);
/* After a successful drain: the XXH3-128 checksum of every byte pushed. */
void slot_wqueue_checksum(slot_wqueue *q, uint8_t out[SLOT_WQ_SUM_SIZE]);
/* Stops the thread (after finishing what is queued) and frees the ring. */
slot_wqueue *slot_wqueue_free(slot_wqueue *q);

/* The same checksum over a byte stream (the read-back). */
typedef struct slot_checksum slot_checksum;
int slot_checksum_new(slot_checksum **out, otter_error *err);
void slot_checksum_update(slot_checksum *c, const uint8_t *p, size_t n);
void slot_checksum_final(slot_checksum *c, uint8_t out[SLOT_WQ_SUM_SIZE]);
slot_checksum *slot_checksum_free(slot_checksum *c);

/*
 * Tests only: called with the slot's device after the install is written and synced, right
 * before the read-back (to change the slot behind the writer's back). NULL in production.
 */
extern void (*slot_writer_test_before_read_back)(const char *device);

#endif
