/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_UTIL_BPIPE_H
#define OTTER_UTIL_BPIPE_H

/*
 * A bounded pipe of bytes to one consumer thread: the producer's bytes are copied into a ring
 * of nbufs buffers of bufsize bytes, and the thread calls fn on each buffer, in order, while
 * the producer goes on (overlapping, e.g., reading and hashing with writing, or one hash with
 * another). Memory: nbufs x bufsize, whatever goes through.
 *
 * Each byte carries a position (pos, counted by the producer) and a flag; a buffer holds
 * contiguous bytes with one flag, so fn sees (pos, flag) of the first byte of what it gets.
 * After fn fails, the thread calls it no more and the producer gets fn's error on its next
 * push or at drain. One producer thread per pipe.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

typedef int (*bpipe_fn)(void *userdata, const uint8_t *p, size_t n, uint64_t pos, bool flag,
			otter_error *err);

typedef struct bpipe bpipe;

/* Starts the thread. name names the pipe in errors ("writer thread"). */
int bpipe_new(bpipe **out, size_t nbufs, size_t bufsize, bpipe_fn fn, void *userdata,
	      const char *name, otter_error *err);
/* Queues n bytes at pos (copied; blocks while the ring is full). */
int bpipe_push(bpipe *q, const uint8_t *p, size_t n, uint64_t pos, bool flag, otter_error *err);
/* Waits until fn has seen every queued byte; fn's error if it failed. */
int bpipe_drain(bpipe *q, otter_error *err);
/* Lets the thread finish the full buffers, stops it and frees the pipe (the bytes of a
 * buffer not yet full are dropped: drain first to have fn see everything). */
bpipe *bpipe_free(bpipe *q);

#endif
