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

void (*slot_wqueue_test_before_read_back)(int fd, uint64_t from, uint64_t to);
uint64_t slot_wqueue_test_lag;

struct slot_wqueue {
	bpipe *pipe;
	int fd;
	char name[64];
	otter_hash *hash;
	XXH3_state_t *sum;  /* the body as written */
	XXH3_state_t *back; /* the body as read back, [body_start, synced) */
	uint8_t *rbuf;
	uint64_t body_start;
	uint64_t synced; /* written back, read back and dropped from the page cache below this */
	uint64_t lag;
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

/* Reads [from, to) of the body back (the device's bytes: the range was written back and
 * dropped from the page cache) into the read-back checksum, then drops it again. */
static int read_back_range(slot_wqueue *q, uint64_t from, uint64_t to, otter_error *err)
{
	uint64_t start = from;

	if (slot_wqueue_test_before_read_back)
		slot_wqueue_test_before_read_back(q->fd, from, to);
	while (from < to) {
		size_t want = to - from < SLOT_WQ_BUF_SIZE ? (size_t)(to - from) : SLOT_WQ_BUF_SIZE;
		ssize_t n = pread(q->fd, q->rbuf, want, (off_t)from);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? otter_error_set_errno(err, errno,
							     "read back slot %s at offset %" PRIu64,
							     q->name, from)
				     : otter_error_set(err, OTTER_E_IO,
						       "read back slot %s: it ends at %" PRIu64,
						       q->name, from);
		if (XXH3_128bits_update(q->back, q->rbuf, (size_t)n) != XXH_OK)
			return otter_error_set(err, OTTER_E_FAILED, "slot %s: checksum failed",
					       q->name);
		from += (uint64_t)n;
	}
	(void)posix_fadvise(q->fd, (off_t)start, (off_t)(to - start), POSIX_FADV_DONTNEED);
	return 0;
}

/* Writes back [synced, end), waits for it, drops it from the page cache, reads it back. */
static int settle(slot_wqueue *q, uint64_t end, otter_error *err)
{
	int r;

	if (end <= q->synced)
		return 0;
	if (sync_file_range(q->fd, (off64_t)q->synced, (off64_t)(end - q->synced),
			    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				    SYNC_FILE_RANGE_WAIT_AFTER) < 0 &&
	    fdatasync(q->fd) < 0)
		return otter_error_set_errno(err, errno, "slot %s: writing back", q->name);
	/* Clean now: the pages go, and the read-back comes from the device. */
	(void)posix_fadvise(q->fd, (off_t)q->synced, (off_t)(end - q->synced),
			    POSIX_FADV_DONTNEED);
	r = read_back_range(q, q->synced, end, err);
	if (r < 0)
		return r;
	q->synced = end;
	return 0;
}

/*
 * Starts the writeback of what was just written, and settles what was written lag bytes
 * before. Without this the kernel keeps a whole image dirty in memory on a machine with much
 * RAM and writes it all at the fsync, after the reading and hashing are over; with it the
 * disk writes, and the body is read back, while the source is read and hashed.
 */
static int writeback(slot_wqueue *q, uint64_t pos, size_t len, otter_error *err)
{
	(void)sync_file_range(q->fd, (off64_t)pos, (off64_t)len, SYNC_FILE_RANGE_WRITE);
	if (pos + len >= q->synced + 2 * q->lag)
		return settle(q, pos + len - q->lag, err);
	return 0;
}

/* The thread's work on one buffer; write=false: the header, only hashed. */
static int consume(void *userdata, const uint8_t *p, size_t n, uint64_t pos, bool write,
		   otter_error *err)
{
	slot_wqueue *q = userdata;
	int r;

	if (q->hash) {
		r = otter_hash_update(q->hash, p, n, err);
		if (r < 0)
			return r;
	}
	if (!write)
		return 0;
	if (XXH3_128bits_update(q->sum, p, n) != XXH_OK)
		return otter_error_set(err, OTTER_E_FAILED, "slot %s: checksum failed", q->name);
	r = pwrite_all(q, p, n, pos, err);
	if (r < 0)
		return r;
	return writeback(q, pos, n, err);
}

slot_wqueue *slot_wqueue_free(slot_wqueue *q)
{
	if (!q)
		return NULL;
	bpipe_free(q->pipe);
	XXH3_freeState(q->sum);
	XXH3_freeState(q->back);
	free(q->rbuf);
	free(q);
	return NULL;
}

int slot_wqueue_new(slot_wqueue **out, int fd, const char *slot_name, otter_hash *hash,
		    uint64_t body_start, otter_error *err)
{
	slot_wqueue *q = otter_calloc(1, sizeof(*q));
	int r;

	if (!q)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	q->fd = fd;
	q->hash = hash;
	snprintf(q->name, sizeof(q->name), "%s", slot_name);
	q->body_start = q->synced = body_start;
	q->lag = slot_wqueue_test_lag ? slot_wqueue_test_lag : SLOT_WQ_WRITEBACK_LAG;
	q->sum = XXH3_createState();
	q->back = XXH3_createState();
	q->rbuf = otter_malloc(SLOT_WQ_BUF_SIZE);
	if (!q->sum || !q->back || !q->rbuf || XXH3_128bits_reset(q->sum) != XXH_OK ||
	    XXH3_128bits_reset(q->back) != XXH_OK) {
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

int slot_wqueue_verify(slot_wqueue *q, uint64_t end, bool *same, otter_error *err)
{
	XXH128_hash_t a, b;
	int r;

	/* The thread is idle after a drain: its state is ours (the pipe's mutex ordered it). */
	r = settle(q, end, err);
	if (r < 0)
		return r;
	a = XXH3_128bits_digest(q->sum);
	b = XXH3_128bits_digest(q->back);
	*same = XXH128_isEqual(a, b) && q->synced >= end;
	return 0;
}
