/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_SLOT_H
#define OTTER_SLOT_H

/*
 * A/B slot installs and slot bookkeeping (docs/ab-updates.md).
 *
 * Installing is three steps, so that the agent can drive them from its own download loop and
 * install several classes before switching once:
 *
 *   otter_slot_writer_open()    picks the inactive slot of a class (never one with the booted
 *                               bootname, never the booted device), checks the image fits
 *   otter_slot_writer_write()   streams bytes in (raw or zstd), hashing the input as it comes;
 *                               the first 4 KiB of the slot are written last
 *   otter_slot_writer_finish()  checks length and SHA-256 against what the caller expected,
 *                               fsyncs, reads the slot back and hashes it again, records it
 *   otter_slot_activate()       one atomic boot environment write: the bootname goes first in
 *                               the order with full tries
 *
 * A slot of type=ext4 only takes an image with an ext4 superblock (checked before anything
 * changes). Changes are serialised between processes by a lock in the data directory
 * (OTTER_E_BUSY, never waited for); otter_slot_boot_check records nothing while it is held.
 *
 * Before the first byte reaches a slot, its bookkeeping entry says "installing" and its
 * bootname leaves the boot order (it is no longer a valid fallback); activation refuses a
 * bootname with any slot still "installing", so a torn or unverified write can never boot.
 * Refusals found before the first byte (unknown class, image larger than the slot, no
 * inactive slot, malformed arguments) change nothing at all.
 *
 * Bookkeeping lives in <data-directory>/slots.json, replaced atomically on every change.
 * Library code never prints; progress goes to a callback.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>
#include <otter/sink.h>
#include <otter/system.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OTTER_SHA256_SIZE 32
#define OTTER_SLOT_VERSION_MAX 128 /* bytes of a recorded image version */

typedef enum otter_compression {
	OTTER_COMPRESSION_AUTO = 0, /* zstd if the stream starts with the zstd magic, else raw */
	OTTER_COMPRESSION_NONE = 1,
	OTTER_COMPRESSION_ZSTD = 2,
} otter_compression;

/* done = input bytes consumed so far, total = expected input length. */
typedef void (*otter_progress_fn)(void *userdata, uint64_t done, uint64_t total);

typedef struct otter_slot_writer_options {
	unsigned version;              /* OTTER_SLOT_WRITER_OPTIONS_VERSION */
	otter_compression compression;
	const char *image_version;     /* recorded in the bookkeeping; may be NULL */
	otter_progress_fn progress;
	void *progress_userdata;
} otter_slot_writer_options;

#define OTTER_SLOT_WRITER_OPTIONS_VERSION 1
#define OTTER_SLOT_WRITER_OPTIONS_INIT {OTTER_SLOT_WRITER_OPTIONS_VERSION, 0, NULL, NULL, NULL}

typedef struct otter_slot_writer otter_slot_writer;

/*
 * expected_len and expected_sha256 describe the stream as given (compressed when zstd), as
 * the caller verified them (TUF target length and hashes). sys must outlive the writer.
 */
OTTER_PUBLIC int otter_slot_writer_open(otter_slot_writer **out, const otter_system *sys,
					const char *class_name, uint64_t expected_len,
					const uint8_t expected_sha256[OTTER_SHA256_SIZE],
					const otter_slot_writer_options *opts, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC int otter_slot_writer_write(otter_slot_writer *w, const void *data, size_t len,
					 otter_error *err) OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC int otter_slot_writer_finish(otter_slot_writer *w, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;
/*
 * Drops every byte written so far: the next write is byte 0 of the stream again. The slot
 * stays "installing" (never activated) until a finish succeeds.
 */
OTTER_PUBLIC int otter_slot_writer_abort(otter_slot_writer *w, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;
/*
 * The writer as a sink (otter/sink.h): write, finish and abort above. Sources such as
 * otter_tuf_stream_target push into it; the writer itself knows nothing of where bytes
 * come from.
 */
OTTER_PUBLIC void otter_slot_writer_sink(otter_slot_writer *w, otter_sink *out);
/*
 * After a successful finish: activates the written slot's bootname (otter_slot_activate)
 * while the writer still holds the lock, so nothing slips in between verify and activation.
 */
OTTER_PUBLIC int otter_slot_writer_activate(otter_slot_writer *w, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;
/*
 * Streams a local source into the writer: a path, or "-" for standard input. Then call
 * otter_slot_writer_finish. (URLs are fetched by the caller, into the writer's sink.)
 */
OTTER_PUBLIC int otter_slot_writer_stream(otter_slot_writer *w, const char *source,
					  otter_error *err) OTTER_WARN_UNUSED_RESULT;
/* The slot being written (borrowed from sys). */
OTTER_PUBLIC const otter_slot *otter_slot_writer_target(const otter_slot_writer *w);
/* The size in bytes of that slot (its device or file), measured by open. */
OTTER_PUBLIC uint64_t otter_slot_writer_slot_size(const otter_slot_writer *w);
/*
 * Frees; an unfinished install stays "installing" and cannot be activated. A writer holds
 * the data directory's lock from open to free: one writer at a time, and free the writers
 * before otter_slot_activate (OTTER_E_BUSY otherwise, as for another process).
 */
OTTER_PUBLIC otter_slot_writer *otter_slot_writer_free(otter_slot_writer *w);

/*
 * Makes bootname the one the next boot tries (one environment write), after checking that
 * none of its slots holds an incomplete install. Recorded in the bookkeeping.
 */
OTTER_PUBLIC int otter_slot_activate(const otter_system *sys, const char *bootname,
				     otter_error *err) OTTER_WARN_UNUSED_RESULT;

/*
 * Convenience: open, stream source, finish, activate. source is a path or "-" for standard
 * input.
 */
OTTER_PUBLIC int otter_slot_install(const otter_system *sys, const char *class_name,
				    const char *source, uint64_t expected_len,
				    const uint8_t expected_sha256[OTTER_SHA256_SIZE],
				    const otter_slot_writer_options *opts, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

/* ---- state and marks ---- */

typedef enum otter_slot_health {
	OTTER_SLOT_UNKNOWN = 0, /* bootable, not confirmed since it was last written */
	OTTER_SLOT_GOOD = 1,    /* bootable and confirmed with mark-good */
	OTTER_SLOT_BAD = 2,     /* the bootloader will not boot it */
} otter_slot_health;

typedef enum otter_update_state {
	OTTER_UPDATE_NONE = 0,           /* nothing activated (or activation not recorded) */
	OTTER_UPDATE_PENDING_REBOOT = 1, /* activated, not booted yet */
	OTTER_UPDATE_TRYING = 2,         /* booted into the activated slot, not confirmed yet */
	OTTER_UPDATE_CONFIRMED = 3,      /* booted into the activated slot and confirmed */
	OTTER_UPDATE_ROLLED_BACK = 4,    /* the activated slot ran out of tries; fell back */
	OTTER_UPDATE_ACTIVATION_LOST = 5, /* activated, but the boot environment no longer puts
					   * it first (reset to defaults by a torn write of a
					   * single-copy environment, or changed by hand): the next
					   * boot will not try it */
} otter_update_state;

typedef struct otter_slot_info {
	const otter_slot *slot;
	bool booted;             /* its bootname is the booted one */
	otter_slot_health health;
	bool in_order;
	unsigned tries_left;
	bool installing;         /* an install was started and not completed */
	bool installed;          /* bookkeeping has a verified install */
	char version[OTTER_SLOT_VERSION_MAX + 1];
	char sha256[2 * OTTER_SHA256_SIZE + 1]; /* of the image as given */
	uint64_t size;
	char installed_at[32];   /* UTC, "" if unknown */
} otter_slot_info;

typedef struct otter_ab_status {
	const char *booted;      /* NULL if the command line names no slot */
	const char *primary;     /* NULL if the boot order is empty */
	otter_update_state update;
	const char *activated;   /* last activated bootname, or NULL */
	const char *rollback_failed; /* when rolled back: the bootname that failed */
	char rollback_at[32];
	size_t n_slots;
	otter_slot_info slots[32];
	char env_warning[512];   /* otter_boot_env_warning(), "" if none */
	bool env_damaged;        /* ... and the environment must be written again (torn) */
} otter_ab_status;

/*
 * Records what the bootloader did before this boot. A rollback (the first slot in the order
 * is not the booted one and has no tries left) is recorded once in the bookkeeping, then the
 * failed bootname is marked bad. Idempotent; call it after boot and before
 * otter_ab_status_get. Does nothing when the slots are locked by another process, the data
 * directory is not writable, or no otter boot script started this boot.
 */
OTTER_PUBLIC int otter_slot_boot_check(const otter_system *sys, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

/*
 * Reads the boot state and the bookkeeping; writes nothing (a fallback shows as rolled back
 * once otter_slot_boot_check recorded it). Borrowed strings live as long as sys.
 */
OTTER_PUBLIC int otter_ab_status_get(const otter_system *sys, otter_ab_status *out,
				     otter_error *err) OTTER_WARN_UNUSED_RESULT;

/* bootname NULL = the booted one. */
OTTER_PUBLIC int otter_slot_mark_good(const otter_system *sys, const char *bootname,
				      otter_error *err) OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC int otter_slot_mark_bad(const otter_system *sys, const char *bootname,
				     otter_error *err) OTTER_WARN_UNUSED_RESULT;
/*
 * otter_slot_mark_bad for people (otter mark-bad): refuses (OTTER_E_STATE) to take the booted
 * bootname out of the boot order unless another bootname could boot instead: in the order
 * with tries left, no install into it incomplete, and each of its slots installed by otter
 * or the bootname confirmed with mark-good. (The agent's rollback uses otter_slot_mark_bad:
 * it leaves new software for the slots it just came from.)
 */
OTTER_PUBLIC int otter_slot_mark_bad_checked(const otter_system *sys, const char *bootname,
					     otter_error *err) OTTER_WARN_UNUSED_RESULT;

/* ---- an update's lifecycle ---- */

/*
 * One update's lifecycle as the slot module sees it: the boot environment (what runs, what
 * boots next, tries left) decides, the bookkeeping (activation, confirmation, a recorded
 * rollback) explains. An update is activated (pending), boots (trying), and is confirmed or
 * rolled back; see docs/architecture.md.
 */
typedef struct otter_slot_lifecycle_info {
	otter_update_state state;
	const char *bootname; /* the update's bootname (borrowed from sys), NULL when none */
	bool running;         /* bootname is the booted one */
	const char *booted;   /* the booted bootname (borrowed from sys), NULL when no otter boot
			       * script started this boot (then running is false) */
} otter_slot_lifecycle_info;

/*
 * The lifecycle of the update into bootname, or with bootname NULL, of the update the
 * bookkeeping records (a recorded rollback, else the last activation: what otter status
 * reports). Given a bootname, the environment alone tells pending (first in the order with
 * tries left) and trying from the rest, so a power cut between the environment write of an
 * activation and its record changes nothing. Writes nothing: call otter_slot_boot_check first
 * so that a fallback made by the bootloader is recorded (until then it shows as pending).
 */
OTTER_PUBLIC int otter_slot_lifecycle(const otter_system *sys, const char *bootname,
				      otter_slot_lifecycle_info *out, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

/*
 * trying -> confirmed: marks bootname (NULL: the booted one) good, which resets its tries.
 * Refused (OTTER_E_STATE, nothing written) unless bootname is the booted one: software is
 * confirmed only while it runs. Idempotent.
 */
OTTER_PUBLIC int otter_slot_confirm(const otter_system *sys, const char *bootname,
				    otter_error *err) OTTER_WARN_UNUSED_RESULT;

/*
 * trying -> rolled back: takes bootname (NULL: the booted one) out of the boot order, then
 * records the rollback (failed bootname, where the next boot goes), whether or not the
 * activation was recorded; the caller then reboots. Refused (OTTER_E_STATE, nothing
 * written) unless bootname is the booted one. Idempotent: once recorded, a second call only
 * repeats the environment write if it is missing, and records no second event.
 */
OTTER_PUBLIC int otter_slot_roll_back(const otter_system *sys, const char *bootname,
				      otter_error *err) OTTER_WARN_UNUSED_RESULT;

/*
 * Moves a damaged bookkeeping file aside (<data-directory>/slots.json.damaged) and starts a
 * fresh one that records the reset and its reason. The boot environment is untouched and
 * stays authoritative; slots lose their recorded versions and hashes. For unattended
 * recovery (the agent); people see the damage in otter status first.
 */
OTTER_PUBLIC int otter_slot_reset_bookkeeping(const otter_system *sys, const char *reason,
					      otter_error *err) OTTER_WARN_UNUSED_RESULT;

OTTER_PUBLIC const char *otter_slot_health_name(otter_slot_health h);
OTTER_PUBLIC const char *otter_update_state_name(otter_update_state s);

#ifdef __cplusplus
}
#endif

#endif
