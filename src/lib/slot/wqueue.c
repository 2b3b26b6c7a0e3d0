/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Write-behind for the slot writer (wqueue.h): a bpipe (util/bpipe.h) whose thread checksums,
 * hashes and writes each buffer, and keeps the kernel writing back behind it.
 */
#include "wqueue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "util/alloc.h"
#include "util/bpipe.h"
#include "util/fileio.h"

#define SLOT_WQ_WRITEBACK_LAG (8u * 1024u * 1024u)

struct slot_wqueue {
	bpipe *pipe;
	int fd;
	char name[64];
	otter_hash *hash;
	XXH3_state_t *sum;
	uint64_t synced; /* written back and dropped from the page cache below this (thread) */
};

static int pwrite_all(slot_wqueue *q, const uint8_t *p, size_t n, uint64_t pos, otter_error *err)
{
	size_t allowed = crashpoint_limit("slot-write", pos, n);
	size_t total = allowed;

	while (allowed > 0) {
		ssize_t k = pwrite(q->fd, p, allowed, (off_t)pos);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return otter_error_set_errno(err, errno, "slot %s: write at offset %" PRIu64,
						     q->name, pos);
		}
		if (k == 0)
			return otter_error_set(err, OTTER_E_IO,
					       "slot %s: write at offset %" PRIu64 " wrote nothing "
					       "(device full?)",
					       q->name, pos);
		p += k;
		pos += (uint64_t)k;
		allowed -= (size_t)k;
	}
	if (total < n)
		crashpoint_cut("slot-write");
	return 0;
}

/*
 * Starts the writeback of what was just written, and waits for (then drops from the page
 * cache) what was written SLOT_WQ_WRITEBACK_LAG bytes before. Without this the kernel keeps
 * a whole image dirty in memory on a machine with much RAM and writes it all at the fsync,
 * after the reading and hashing are over; with it the disk writes while the source is read
 * and hashed, and the page cache holds a bounded window of the image. Only a hint: fsync
 * still makes the slot durable, and a failing sync_file_range (a file system or device that
 * has none) changes nothing but the overlap.
 */
static void start_writeback(slot_wqueue *q, uint64_t pos, size_t len)
{
	(void)sync_file_range(q->fd, (off64_t)pos, (off64_t)len, SYNC_FILE_RANGE_WRITE);
	if (pos + len >= q->synced + 2 * SLOT_WQ_WRITEBACK_LAG) {
		uint64_t end = pos + len - SLOT_WQ_WRITEBACK_LAG;

		(void)sync_file_range(q->fd, (off64_t)q->synced, (off64_t)(end - q->synced),
				      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
					      SYNC_FILE_RANGE_WAIT_AFTER);
		(void)posix_fadvise(q->fd, (off_t)q->synced, (off_t)(end - q->synced),
				    POSIX_FADV_DONTNEED);
		q->synced = end;
	}
}

/* The thread's work on one buffer; write=false: the header, only checksummed and hashed. */
static int consume(void *userdata, const uint8_t *p, size_t n, uint64_t pos, bool write,
		   otter_error *err)
{
	slot_wqueue *q = userdata;
	int r;

	if (XXH3_128bits_update(q->sum, p, n) != XXH_OK)
		return otter_error_set(err, OTTER_E_FAILED, "slot %s: checksum failed", q->name);
	if (q->hash) {
		r = otter_hash_update(q->hash, p, n, err);
		if (r < 0)
			return r;
	}
	if (!write)
		return 0;
	r = pwrite_all(q, p, n, pos, err);
	if (r < 0)
		return r;
	start_writeback(q, pos, n);
	return 0;
}

slot_wqueue *slot_wqueue_free(slot_wqueue *q)
{
	if (!q)
		return NULL;
	bpipe_free(q->pipe);
	XXH3_freeState(q->sum);
	free(q);
	return NULL;
}

int slot_wqueue_new(slot_wqueue **out, int fd, const char *slot_name, otter_hash *hash,
		    otter_error *err)
{
	slot_wqueue *q = otter_calloc(1, sizeof(*q));
	int r;

	if (!q)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	q->fd = fd;
	q->hash = hash;
	snprintf(q->name, sizeof(q->name), "%s", slot_name);
	q->sum = XXH3_createState();
	if (!q->sum || XXH3_128bits_reset(q->sum) != XXH_OK) {
		slot_wqueue_free(q);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	r = bpipe_new(&q->pipe, SLOT_WQ_BUFS, SLOT_WQ_BUF_SIZE, consume, q, "slot writer", err);
	if (r < 0) {
		slot_wqueue_free(q);
		return r;
	}
	*out = q;
	return 0;
}

int slot_wqueue_push(slot_wqueue *q, const uint8_t *p, size_t n, uint64_t pos, bool write,
		     otter_error *err)
{
	return bpipe_push(q->pipe, p, n, pos, write, err);
}

int slot_wqueue_drain(slot_wqueue *q, otter_error *err)
{
	return bpipe_drain(q->pipe, err);
}

static void canonical_sum(XXH128_hash_t h, uint8_t out[SLOT_WQ_SUM_SIZE])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, h);
	memcpy(out, c.digest, SLOT_WQ_SUM_SIZE);
}

void slot_wqueue_checksum(slot_wqueue *q, uint8_t out[SLOT_WQ_SUM_SIZE])
{
	canonical_sum(XXH3_128bits_digest(q->sum), out);
}

struct slot_checksum {
	XXH3_state_t *st;
};

int slot_checksum_new(slot_checksum **out, otter_error *err)
{
	slot_checksum *c = otter_calloc(1, sizeof(*c));

	if (!c || !(c->st = XXH3_createState()) || XXH3_128bits_reset(c->st) != XXH_OK) {
		slot_checksum_free(c);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	*out = c;
	return 0;
}

void slot_checksum_update(slot_checksum *c, const uint8_t *p, size_t n)
{
	(void)XXH3_128bits_update(c->st, p, n); /* fails only on a NULL state */
}

void slot_checksum_final(slot_checksum *c, uint8_t out[SLOT_WQ_SUM_SIZE])
{
	canonical_sum(XXH3_128bits_digest(c->st), out);
}

slot_checksum *slot_checksum_free(slot_checksum *c)
{
	if (!c)
		return NULL;
	XXH3_freeState(c->st);
	free(c);
	return NULL;
}
