/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_SLOT_WQUEUE_H
#define OTTER_LIB_SLOT_WQUEUE_H

/*
 * The slot writer's write-behind queue: a thread that takes the image bytes (after
 * decompression) from a bounded ring of buffers and writes them to the slot, so that reading
 * the source, hashing the input and decompressing on the caller's thread overlap with the
 * writes. The same thread
 *  - hashes every byte in image order when given a hash (zstd: written-sha256);
 *  - keeps an XXH3-128 checksum of the body it writes (from body_start on: the header is
 *    written and checked by the caller), and reads the body back as it goes: once the kernel
 *    has written a range to the device (SLOT_WQ_WRITEBACK_LAG behind the writes), the range
 *    is dropped from the page cache and read again from the device into a second checksum.
 *    slot_wqueue_verify reads back the rest and compares the two.
 * Memory: SLOT_WQ_BUFS + 1 buffers of SLOT_WQ_BUF_SIZE, whatever the image size; the page
 * cache holds about 2 x SLOT_WQ_WRITEBACK_LAG of the image at a time.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/crypto.h>
#include <otter/error.h>

#define SLOT_WQ_BUFS          4u
#define SLOT_WQ_BUF_SIZE      (512u * 1024u)
#define SLOT_WQ_WRITEBACK_LAG (8u * 1024u * 1024u)

typedef struct slot_wqueue slot_wqueue;

/*
 * Starts the thread. fd (read-write) stays the caller's until slot_wqueue_free; slot_name
 * names the slot in errors; hash (may be NULL) is updated with every byte and stays the
 * caller's; the body is what is written from offset body_start on.
 */
int slot_wqueue_new(slot_wqueue **out, int fd, const char *slot_name, otter_hash *hash,
		    uint64_t body_start, otter_error *err);
/*
 * Queues the n bytes at slot offset pos (copied; the call blocks while the ring is full).
 * write=false: only hashed, not written (the header, written last by the caller). Bytes
 * must come in image order. Fails with the thread's error once it has one.
 */
int slot_wqueue_push(slot_wqueue *q, const uint8_t *p, size_t n, uint64_t pos, bool write,
		     otter_error *err);
/* Waits until every queued byte is written; the thread's error if a write failed. */
int slot_wqueue_drain(slot_wqueue *q, otter_error *err);
/*
 * After a successful drain: writes back and reads back the body up to end (the extent
 * written), and sets *same to whether everything read back equals what was written.
 */
int slot_wqueue_verify(slot_wqueue *q, uint64_t end, bool *same, otter_error *err);
/* Stops the thread (after finishing what is queued) and frees the ring. */
slot_wqueue *slot_wqueue_free(slot_wqueue *q);

/*
 * Tests only (NULL and 0 in production): called with the slot's fd and a range of the body
 * right before the range is read back (to change it behind the writer's back); the lag to
 * use instead of SLOT_WQ_WRITEBACK_LAG.
 */
extern void (*slot_wqueue_test_before_read_back)(int fd, uint64_t from, uint64_t to);
extern uint64_t slot_wqueue_test_lag;

/*
 * Tests only: called with the slot's device right before the body's remaining read-back
 * (header = false) and before the header, written last, is read back (header = true).
 */
extern void (*slot_writer_test_before_read_back)(const char *device, bool header);

#endif
