/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_SINK_H
#define OTTER_SINK_H

/*
 * Where verified bytes go. A source (otter_tuf_stream_target, a file, otter_net in the CLI)
 * pushes the bytes of one artifact into a sink in order:
 *
 *   write  ... write  finish      the whole artifact arrived and the source verified it
 *   write  ... abort  write ...   the bytes so far were wrong or came from a copy that is
 *                                 abandoned: drop them all; the next write is byte 0 again
 *
 * finish is only called after the source checked the length and every signed hash; a sink
 * may check again (the slot writer reads the slot back). Whoever made the sink frees it;
 * an unfinished sink must leave nothing that could be used (the slot writer leaves its slot
 * "installing", which never activates).
 *
 * A sink's write error is local (disk full, the slot is too small) and ends the transfer,
 * except OTTER_E_FORMAT, OTTER_E_HASH and OTTER_E_TOO_LARGE, which may come from bad bytes:
 * a source with another copy (a mirror) aborts the sink and tries that copy.
 *
 * The slot writer is a sink (otter_slot_writer_sink); new destinations (a secondary ECU, a
 * file cache) implement these three callbacks and plug into the same sources.
 */

#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct otter_sink {
	int (*write)(void *userdata, const uint8_t *data, size_t len, otter_error *err);
	int (*finish)(void *userdata, otter_error *err);
	int (*abort)(void *userdata, otter_error *err);
	void *userdata;
} otter_sink;

#ifdef __cplusplus
}
#endif

#endif
