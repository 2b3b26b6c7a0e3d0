/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_SLOT_PRIVATE_H
#define OTTER_LIB_SLOT_PRIVATE_H

#include <jansson.h>

#include <otter/boot.h>
#include <otter/slot.h>

#include "system-private.h"

/*
 * Bookkeeping: <data-directory>/slots.json (docs/ab-updates.md has the format). Read with the
 * strict JSON intake and checked member by member, since the data partition is untrusted;
 * replaced atomically on every change.
 */
#define AB_STATE_FILE      "slots.json"
#define AB_STATE_MAX_SIZE  (256u * 1024u)
#define AB_STATE_MAX_EVENTS 50u

/* Parses and validates the bytes of slots.json (untrusted: on the data partition). */
int ab_state_parse(json_t **out, const uint8_t *buf, size_t len, otter_error *err);
/* Loads the state (an empty one if the file does not exist). */
int ab_state_load(const otter_system *sys, json_t **out, otter_error *err);
/* Writes it atomically, creating the data directory if needed. */
int ab_state_save(const otter_system *sys, json_t *root, otter_error *err);
/* The member object of slots/<name>, created empty when create is set; NULL if absent. */
json_t *ab_state_slot(json_t *root, const char *slot_name, bool create);
/* Appends an event (oldest dropped past the cap). */
int ab_state_event(json_t *root, const char *event, const char *bootname, const char *detail,
		   otter_error *err);
/* Sets confirmed/<bootname>. */
int ab_state_set_confirmed(json_t *root, const char *bootname, bool confirmed, otter_error *err);
/*
 * One process at a time changes slots and bookkeeping: an exclusive flock() on
 * <data-directory>/lock, never waited for. OTTER_E_BUSY when another process holds it.
 * Returns the fd to close (which releases it).
 */
int ab_lock(const otter_system *sys, int *fd_out, otter_error *err);
/* otter_slot_activate for a caller that holds the lock. */
int ab_activate_locked(const otter_system *sys, const char *bootname, otter_error *err);
/* The current time as "YYYY-MM-DDTHH:MM:SSZ" (OTTER_TEST_TIME overrides, for tests). */
void ab_now(char out[32]);

#endif
