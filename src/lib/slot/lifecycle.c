/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An update's lifecycle, owned here with the boot environment it drives (docs/architecture.md):
 *
 *   (installed) --activate--> pending --boot--> trying --confirm--> confirmed
 *                                 |                |
 *                                 |                +--roll back / tries run out--> rolled back
 *                                 +--environment reset or changed by hand--> activation lost
 *
 * The environment is the truth about what runs and what boots next; the bookkeeping
 * (slots.json) records the activation, the confirmation and a rollback. Order of writes, for
 * power cuts:
 *  - activation: the boot environment first (the decision), then the bookkeeping (a record
 *    of it). A cut in between loses only the record: otter_slot_lifecycle of that bootname
 *    reads pending or trying from the environment alone, and the rollback check does not
 *    depend on the record either.
 *  - fallback made by the bootloader: the bookkeeping first (event, deduplicated), then the
 *    environment (mark the failed bootname bad). A cut in between is repaired by the next
 *    otter_slot_boot_check, which sees the same condition again, records nothing new and
 *    marks the slot bad.
 *  - roll back, mark bad: the environment first, then the record. A cut in between leaves a
 *    running bootname out of the order, which reads as rolled back; otter_slot_roll_back
 *    again records it.
 * otter_ab_status_get and otter_slot_lifecycle only read; otter_slot_boot_check is the one
 * call that records what the bootloader did.
 */
#include "slot-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/json/json-util.h"
#include "util/args.h"
#include "util/cleanup.h"
#include "util/strutil.h"

static bool is_confirmed(json_t *root, const char *bootname)
{
	return json_is_true(json_object_get(json_object_get(root, "confirmed"), bootname));
}

static const char *state_string(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

DEFINE_CLEANUP_FUNC(otter_boot, otter_boot_free)

static const char *check_bootname(const otter_system *sys, const char *bootname,
				  otter_error *err)
{
	for (size_t i = 0; bootname && i < otter_system_n_bootnames(sys); i++)
		if (strcmp(otter_system_bootname(sys, i), bootname) == 0)
			return otter_system_bootname(sys, i);
	if (bootname) {
		char safe[64];

		str_sanitize(bootname, safe, sizeof(safe));
		otter_error_set(err, OTTER_E_INVALID,
				"'%s' is not a configured bootname (see the bootname= of the "
				"[slot.*] sections)",
				safe);
	}
	return NULL;
}

int otter_slot_activate(const otter_system *sys, const char *bootname, otter_error *err)
{
	_cleanup_close_ int lock = -1;
	int r;

	ARG_NONNULL(err, "activate", sys);
	ARG_NONNULL(err, "activate", bootname);
	r = ab_lock(sys, &lock, err);
	if (r < 0)
		return otter_error_prefix(err, r, "activate %s", bootname);
	return ab_activate_locked(sys, bootname, err);
}

int ab_activate_locked(const otter_system *sys, const char *bootname, otter_error *err)
{
	_cleanup_(otter_boot_freep) otter_boot *boot = NULL;
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *bn;
	char now[32];
	int r;

	ARG_NONNULL(err, "activate", sys);
	ARG_NONNULL(err, "activate", bootname);
	bn = check_bootname(sys, bootname, err);
	if (!bn)
		return OTTER_E_INVALID;
	r = ab_state_load(sys, &root, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < otter_system_n_slots(sys); i++) {
		const otter_slot *s = otter_system_slot(sys, i);
		const char *status = state_string(ab_state_slot(root, otter_slot_name(s), false),
						  "status");

		if (strcmp(otter_slot_bootname(s), bn) == 0 && status &&
		    strcmp(status, "installing") == 0)
			return otter_error_set(err, OTTER_E_STATE,
					       "slot %s holds an incomplete install: refusing to "
					       "activate %s (install it again first)",
					       otter_slot_name(s), bn);
	}
	r = otter_system_new_boot(sys, &boot, err);
	if (r == 0)
		r = otter_boot_mark_active(boot, bn, err);
	if (r < 0)
		return r;
	ab_now(now);
	if (json_object_set_new(root, "activated", json_string(bn)) < 0 ||
	    json_object_set_new(root, "activated-at", json_string(now)) < 0)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	json_object_del(root, "rolled-back");
	r = ab_state_event(root, "activated", bn, NULL, err);
	if (r == 0)
		r = ab_state_save(sys, root, err);
	return r;
}

/*
 * What marking a slot starts with: the lock, a boot handle, the bootname (NULL = the booted
 * one) and the bookkeeping. "what" prefixes errors ("mark-good").
 */
static int mark_begin(const otter_system *sys, const char *bootname, const char *what,
		      int *lock, otter_boot **boot, const char **bn, json_t **root,
		      otter_error *err)
{
	int r;

	ARG_NONNULL(err, what, sys);
	r = ab_lock(sys, lock, err);
	if (r < 0)
		return otter_error_prefix(err, r, "%s", what);
	r = otter_system_new_boot(sys, boot, err);
	if (r < 0)
		return r;
	if (!bootname) {
		r = otter_boot_get_booted(*boot, bn, err);
		if (r < 0)
			return otter_error_prefix(err, r, "%s: which slot is booted", what);
	} else if (!(*bn = check_bootname(sys, bootname, err))) {
		return OTTER_E_INVALID;
	}
	return ab_state_load(sys, root, err);
}

/*
 * The lifecycle's transitions out of trying happen only in the software that runs: bn must be
 * the booted bootname.
 */
static int require_booted(otter_boot *boot, const char *bn, const char *what,
			  otter_error *err)
{
	const char *booted = NULL;
	int r = otter_boot_get_booted(boot, &booted, err);

	if (r < 0)
		return otter_error_prefix(err, r, "%s %s: which slot is booted", what, bn);
	if (strcmp(booted, bn) != 0)
		return otter_error_set(err, OTTER_E_STATE,
				       "%s %s: slot %s is not the booted one (%s is); an update is "
				       "confirmed or rolled back only while it runs",
				       what, bn, bn, booted);
	return 0;
}

static int mark_good(const otter_system *sys, const char *bootname, const char *what,
		     bool running_only, otter_error *err)
{
	_cleanup_(otter_boot_freep) otter_boot *boot = NULL;
	_cleanup_close_ int lock = -1;
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *bn = NULL;
	int r;

	r = mark_begin(sys, bootname, what, &lock, &boot, &bn, &root, err);
	if (r == 0 && running_only)
		r = require_booted(boot, bn, what, err);
	if (r < 0)
		return r;
	r = otter_boot_mark_good(boot, bn, err);
	if (r < 0)
		return r;
	if (is_confirmed(root, bn))
		return 0; /* already recorded: no rewrite on every boot */
	r = ab_state_set_confirmed(root, bn, true, err);
	if (r == 0)
		r = ab_state_event(root, "confirmed", bn, NULL, err);
	if (r == 0)
		r = ab_state_save(sys, root, err);
	return r;
}

int otter_slot_mark_good(const otter_system *sys, const char *bootname, otter_error *err)
{
	return mark_good(sys, bootname, "mark-good", false, err);
}

int otter_slot_confirm(const otter_system *sys, const char *bootname, otter_error *err)
{
	return mark_good(sys, bootname, "confirm", true, err);
}

/*
 * Why bootname cannot boot in place of the booted one, or NULL when it can: it is in the
 * order with tries left, no slot of it is being written, and each of its slots was either
 * written and verified by otter or confirmed with mark-good. A slot nothing is recorded for
 * (a factory image in A and nothing ever written to B) is not known to hold anything.
 */
static const char *fallback_problem(const otter_system *sys, otter_boot *boot, json_t *root,
				    const char *bootname)
{
	otter_boot_slot_state st;
	bool all_installed = true;

	if (otter_boot_get_state(boot, bootname, &st, NULL) < 0 || !st.bootable)
		return "not in the boot order with tries left";
	for (size_t i = 0; i < otter_system_n_slots(sys); i++) {
		const otter_slot *s = otter_system_slot(sys, i);
		const char *status;

		if (strcmp(otter_slot_bootname(s), bootname) != 0)
			continue;
		status = state_string(ab_state_slot(root, otter_slot_name(s), false), "status");
		if (status && strcmp(status, "installing") == 0)
			return "an install into it is incomplete";
		if (!status || strcmp(status, "installed") != 0)
			all_installed = false;
	}
	if (!all_installed && !is_confirmed(root, bootname))
		return "never written by otter nor confirmed with mark-good";
	return NULL;
}

/* Refuses to take the booted bootname out of the order when no other one could boot. */
static int check_fallback(const otter_system *sys, otter_boot *boot, json_t *root,
			  const char *bn, otter_error *err)
{
	const char *booted = NULL, *other = NULL, *why = NULL;

	if (otter_boot_get_booted(boot, &booted, NULL) < 0 || strcmp(booted, bn) != 0)
		return 0;
	for (size_t i = 0; i < otter_system_n_bootnames(sys); i++) {
		const char *b = otter_system_bootname(sys, i);

		if (strcmp(b, bn) == 0)
			continue;
		why = fallback_problem(sys, boot, root, b);
		if (!why)
			return 0;
		other = b;
	}
	return otter_error_set(err, OTTER_E_STATE,
			       "mark-bad: refusing to take the booted slot %s out of the boot "
			       "order: no other slot could boot instead (%s: %s), so the bootloader "
			       "would be left with nothing known to boot. Install an update first "
			       "(otter update, otter install); if %s does hold a working system, "
			       "confirm it with 'otter mark-good %s' first",
			       bn, other ? other : "none", other ? why : "no other bootname",
			       other ? other : "it", other ? other : "SLOT");
}

/*
 * Records in the bookkeeping that the activated bootname failed and the device goes (or
 * went) back to booted (NULL: not known yet): the update ends; reported until the next
 * activation. Not saved.
 */
static int record_rolled_back(json_t *root, const char *failed, const char *booted,
			      otter_error *err)
{
	char now[32];
	json_t *rb;
	int r;

	ab_now(now);
	rb = json_pack("{s:s, s:s?, s:s}", "failed", failed, "booted", booted, "at", now);
	if (!rb || json_object_set_new(root, "rolled-back", rb) < 0)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	json_object_del(root, "activated");
	json_object_del(root, "activated-at");
	r = ab_state_set_confirmed(root, failed, false, err);
	return r < 0 ? r : ab_state_event(root, "rolled-back", failed, booted, err);
}

enum bad_mode {
	BAD_PLAIN,         /* otter_slot_mark_bad */
	BAD_KEEP_FALLBACK, /* otter_slot_mark_bad_checked */
	BAD_ROLL_BACK,     /* otter_slot_roll_back */
};

static int mark_bad(const otter_system *sys, const char *bootname, enum bad_mode mode,
		    otter_error *err)
{
	_cleanup_(otter_boot_freep) otter_boot *boot = NULL;
	_cleanup_close_ int lock = -1;
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *bn = NULL, *activated, *failed;
	int r;

	r = mark_begin(sys, bootname, mode == BAD_ROLL_BACK ? "roll back" : "mark-bad", &lock,
		       &boot, &bn, &root, err);
	if (r == 0 && mode == BAD_KEEP_FALLBACK)
		r = check_fallback(sys, boot, root, bn, err);
	if (r == 0 && mode == BAD_ROLL_BACK)
		r = require_booted(boot, bn, "roll back", err);
	if (r < 0)
		return r;
	r = otter_boot_mark_bad(boot, bn, err);
	if (r < 0)
		return r;
	activated = state_string(root, "activated");
	failed = state_string(json_object_get(root, "rolled-back"), "failed");
	if (mode == BAD_ROLL_BACK && !activated && failed && strcmp(failed, bn) == 0)
		return 0; /* recorded already: the environment write above was all that was left */
	/*
	 * Marking the activated slot bad ends the update: while it runs (trying), the new
	 * software failed and the next boot goes back, which is a rollback and reported as one
	 * until the next activation; before it ever booted, the update is cancelled. A roll
	 * back is recorded even when the activation's record was lost to a power cut.
	 */
	if (mode == BAD_ROLL_BACK || (activated && strcmp(activated, bn) == 0)) {
		const char *booted = NULL, *next = NULL;

		if (otter_boot_get_booted(boot, &booted, NULL) == 0 && strcmp(booted, bn) == 0) {
			if (otter_boot_get_primary(boot, &next, NULL) < 0)
				next = NULL;
			r = record_rolled_back(root, bn, next, err);
			if (r < 0)
				return r;
		}
		json_object_del(root, "activated");
		json_object_del(root, "activated-at");
	}
	r = ab_state_set_confirmed(root, bn, false, err);
	if (r == 0)
		r = ab_state_event(root, "marked-bad", bn, NULL, err);
	if (r == 0)
		r = ab_state_save(sys, root, err);
	return r;
}

int otter_slot_mark_bad(const otter_system *sys, const char *bootname, otter_error *err)
{
	return mark_bad(sys, bootname, BAD_PLAIN, err);
}

int otter_slot_mark_bad_checked(const otter_system *sys, const char *bootname,
				otter_error *err)
{
	return mark_bad(sys, bootname, BAD_KEEP_FALLBACK, err);
}

int otter_slot_roll_back(const otter_system *sys, const char *bootname, otter_error *err)
{
	return mark_bad(sys, bootname, BAD_ROLL_BACK, err);
}

/*
 * The bootloader fell back: the first bootname in the order is not the booted one and has no
 * tries left. Only the bootloader's counting makes this state (otter's own mark-bad takes a
 * slot out of the order), so it needs no bookkeeping to be recognised.
 */
static int detect_rollback(const otter_system *sys, otter_boot *boot, json_t *root,
			   const char *booted, otter_error *err)
{
	json_t *rb = json_object_get(root, "rolled-back");
	const char *order[OTTER_BOOT_MAX_BOOTNAMES], *primary;
	otter_boot_slot_state st;
	size_t n = 0;
	int r;

	r = otter_boot_get_order(boot, order, OTTER_BOOT_MAX_BOOTNAMES, &n, err);
	if (r < 0)
		return r;
	if (n == 0)
		return 0; /* empty order: nothing to detect */
	primary = order[0];
	if (strcmp(primary, booted) == 0)
		return 0;
	r = otter_boot_get_state(boot, primary, &st, err);
	if (r < 0 || st.tries_left > 0)
		return r;
	/* Record first (once), then take the failed bootname out of the order. */
	if (!rb || !state_string(rb, "failed") || strcmp(state_string(rb, "failed"), primary) != 0 ||
	    json_object_get(root, "activated")) {
		r = record_rolled_back(root, primary, booted, err);
		if (r == 0)
			r = ab_state_save(sys, root, err);
		if (r < 0)
			return otter_error_prefix(err, r, "recording the rollback from %s", primary);
	}
	r = otter_boot_mark_bad(boot, primary, err);
	if (r < 0)
		return otter_error_prefix(err, r, "rollback from %s", primary);
	return 0;
}

const char *otter_slot_health_name(otter_slot_health h)
{
	switch (h) {
	case OTTER_SLOT_GOOD:
		return "good";
	case OTTER_SLOT_BAD:
		return "bad";
	default:
		return "unknown";
	}
}

const char *otter_update_state_name(otter_update_state s)
{
	switch (s) {
	case OTTER_UPDATE_PENDING_REBOOT:
		return "pending-reboot";
	case OTTER_UPDATE_TRYING:
		return "trying";
	case OTTER_UPDATE_CONFIRMED:
		return "confirmed";
	case OTTER_UPDATE_ROLLED_BACK:
		return "rolled-back";
	case OTTER_UPDATE_ACTIVATION_LOST:
		return "activation-lost";
	default:
		return "none";
	}
}

/*
 * What the boot check and the status start from: a boot handle, the bookkeeping and the
 * booted bootname (NULL when the command line names none: not booted by our script).
 */
static int ab_open(const otter_system *sys, otter_boot **boot, json_t **root,
		   const char **booted, otter_error *err)
{
	int r = otter_system_new_boot(sys, boot, err);

	if (r == 0)
		r = ab_state_load(sys, root, err);
	if (r < 0)
		return r;
	r = otter_boot_get_booted(*boot, booted, err);
	if (r == OTTER_E_NOT_FOUND) {
		otter_error_clear(err);
		*booted = NULL;
		return 0;
	}
	return r;
}

int otter_slot_boot_check(const otter_system *sys, otter_error *err)
{
	_cleanup_(otter_boot_freep) otter_boot *boot = NULL;
	_cleanup_close_ int lock = -1;
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *booted = NULL;
	int r;

	ARG_NONNULL(err, "boot check", sys);
	r = ab_open(sys, &boot, &root, &booted, err);
	if (r < 0 || !booted)
		return r; /* not booted by our script: decide nothing */
	/* Another process changing the slots (an install) decides; this one leaves it. */
	r = ab_lock(sys, &lock, err);
	/* So does a data directory this process may not write (read-only, or not its own):
	 * otter status still reports. */
	if (r == OTTER_E_BUSY || (r == OTTER_E_IO && err &&
				  (err->sys_errno == EROFS || err->sys_errno == EACCES ||
				   err->sys_errno == EPERM))) {
		otter_error_clear(err);
		return 0;
	}
	if (r < 0)
		return r;
	return detect_rollback(sys, boot, root, booted, err);
}

/*
 * The lifecycle of the update into bn (NULL: the recorded one: a rollback, else the last
 * activation), booted being the booted bootname (the system's string) or NULL. The
 * environment decides what it can (first in the order, running, out of the order), the
 * bookkeeping the rest (confirmed, a recorded rollback, an activation the environment lost).
 */
static int lifecycle_of(const otter_system *sys, otter_boot *boot, json_t *root,
			const char *booted, const char *bn, otter_slot_lifecycle_info *out,
			otter_error *err)
{
	const char *failed = check_bootname(
		sys, state_string(json_object_get(root, "rolled-back"), "failed"), NULL);
	const char *activated = check_bootname(sys, state_string(root, "activated"), NULL);
	const char *primary = NULL;
	otter_boot_slot_state st;
	bool first, confirmed;
	int r;

	memset(out, 0, sizeof(*out));
	out->booted = booted;
	if (!bn)
		bn = failed ? failed : activated;
	if (!bn)
		return 0; /* nothing recorded: no update */
	out->bootname = bn;
	out->running = booted && strcmp(booted, bn) == 0;
	r = otter_boot_get_primary(boot, &primary, err);
	if (r == OTTER_E_BOOT) {
		otter_error_clear(err);
		primary = NULL;
	} else if (r < 0) {
		return r;
	}
	r = otter_boot_get_state(boot, bn, &st, err);
	if (r < 0)
		return r;
	first = primary && strcmp(primary, bn) == 0;
	confirmed = is_confirmed(root, bn);
	if (first && out->running)
		out->state = confirmed ? OTTER_UPDATE_CONFIRMED : OTTER_UPDATE_TRYING;
	else if (first && st.tries_left > 0)
		/* Activated (perhaps after a recorded rollback of the same bootname, the record of
		 * the new activation lost to a power cut): the next boot tries it. */
		out->state = OTTER_UPDATE_PENDING_REBOOT;
	else if (failed && strcmp(failed, bn) == 0)
		out->state = OTTER_UPDATE_ROLLED_BACK;
	else if (first)
		/* No tries left and not running: a fallback otter_slot_boot_check has not recorded
		 * yet (it shows once recorded); until then, what the bookkeeping says. */
		out->state = OTTER_UPDATE_PENDING_REBOOT;
	else if (out->running && !st.in_order)
		/* Taken out of the order while it runs (a roll back whose record a power cut
		 * lost): the next boot goes back. */
		out->state = OTTER_UPDATE_ROLLED_BACK;
	else if (out->running)
		out->state = confirmed ? OTTER_UPDATE_CONFIRMED : OTTER_UPDATE_TRYING;
	else if (activated && strcmp(activated, bn) == 0)
		/* The environment lost the activation: never report a reboot that will not come. */
		out->state = OTTER_UPDATE_ACTIVATION_LOST;
	else
		out->state = OTTER_UPDATE_NONE;
	return 0;
}

int otter_slot_lifecycle(const otter_system *sys, const char *bootname,
			 otter_slot_lifecycle_info *out, otter_error *err)
{
	_cleanup_(otter_boot_freep) otter_boot *boot = NULL;
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *booted = NULL, *bn = NULL;
	int r;

	ARG_NONNULL(err, "lifecycle", out);
	memset(out, 0, sizeof(*out));
	ARG_NONNULL(err, "lifecycle", sys);
	if (bootname && !(bn = check_bootname(sys, bootname, err)))
		return otter_error_prefix(err, OTTER_E_INVALID, "lifecycle");
	r = ab_open(sys, &boot, &root, &booted, err);
	if (r < 0)
		return r;
	return lifecycle_of(sys, boot, root, check_bootname(sys, booted, NULL), bn, out, err);
}

static void copy_str(char *out, size_t size, const char *s)
{
	strfmt(out, size, "%s", s ? s : "");
}

int otter_ab_status_get(const otter_system *sys, otter_ab_status *out, otter_error *err)
{
	_cleanup_(otter_boot_freep) otter_boot *boot = NULL;
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *booted = NULL, *s;
	otter_slot_lifecycle_info lc;
	int r;

	ARG_NONNULL(err, "status", sys);
	ARG_NONNULL(err, "status", out);
	memset(out, 0, sizeof(*out));
	r = ab_open(sys, &boot, &root, &booted, err);
	if (r < 0)
		return r;
	/* The boot handle's names die with it: hand out the system's. */
	out->booted = check_bootname(sys, booted, NULL);
	booted = out->booted;
	r = otter_boot_get_primary(boot, &s, err);
	if (r == OTTER_E_BOOT) {
		otter_error_clear(err);
		s = NULL;
	} else if (r < 0) {
		return r;
	}
	out->primary = check_bootname(sys, s, NULL);
	out->activated = check_bootname(sys, state_string(root, "activated"), NULL);
	r = lifecycle_of(sys, boot, root, booted, NULL, &lc, err);
	if (r < 0)
		return r;
	out->update = lc.state;
	if (lc.state == OTTER_UPDATE_ROLLED_BACK) {
		json_t *rb = json_object_get(root, "rolled-back");

		out->rollback_failed = lc.bootname;
		copy_str(out->rollback_at, sizeof(out->rollback_at), state_string(rb, "at"));
	}
	r = otter_boot_env_warning(boot, out->env_warning, sizeof(out->env_warning), err);
	if (r < 0)
		return r;
	out->env_damaged = r == 1;
	for (size_t i = 0; i < otter_system_n_slots(sys) && i < 32; i++) {
		const otter_slot *slot = otter_system_slot(sys, i);
		otter_slot_info *info = &out->slots[out->n_slots++];
		const char *bn = otter_slot_bootname(slot);
		json_t *rec = ab_state_slot(root, otter_slot_name(slot), false);
		otter_boot_slot_state st;

		info->slot = slot;
		info->booted = booted && strcmp(booted, bn) == 0;
		r = otter_boot_get_state(boot, bn, &st, err);
		if (r < 0)
			return r;
		info->in_order = st.in_order;
		info->tries_left = st.tries_left;
		s = state_string(rec, "status");
		info->installing = s && strcmp(s, "installing") == 0;
		info->installed = s && strcmp(s, "installed") == 0;
		if (info->installed) {
			copy_str(info->version, sizeof(info->version), state_string(rec, "version"));
			copy_str(info->sha256, sizeof(info->sha256), state_string(rec, "sha256"));
			copy_str(info->installed_at, sizeof(info->installed_at),
				 state_string(rec, "installed-at"));
			info->size = (uint64_t)json_integer_value(json_object_get(rec, "size"));
		}
		/* The booted slot may be on its last try (0 left) and still running. */
		if (!st.in_order || (st.tries_left == 0 && !info->booted) || info->installing)
			info->health = OTTER_SLOT_BAD;
		else if (is_confirmed(root, bn))
			info->health = OTTER_SLOT_GOOD;
		else
			info->health = OTTER_SLOT_UNKNOWN;
	}
	return 0;
}
