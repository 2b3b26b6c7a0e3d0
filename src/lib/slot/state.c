/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Slot bookkeeping, status, marks and activation. Order of writes, for power cuts:
 *  - activation: the boot environment first (the decision), then the bookkeeping (a record
 *    of it). A cut in between loses only the record; the rollback check below does not
 *    depend on it.
 *  - rollback: the bookkeeping first (event, deduplicated), then the environment (mark the
 *    failed bootname bad). A cut in between is repaired by the next otter_slot_boot_check,
 *    which sees the same condition again, records nothing new and marks the slot bad.
 * otter_ab_status_get only reads; otter_slot_boot_check is the one call that records what
 * the bootloader did.
 */
#include "slot-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/json/json-util.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

#define STATE_FORMAT 1

void ab_now(char out[32])
{
	const char *fake = getenv("OTTER_TEST_TIME");
	int64_t t;

	if (fake && utc_parse(fake, &t) == 0) {
		utc_format(t, out);
		return;
	}
	utc_format((int64_t)time(NULL), out);
}

static bool is_time(const char *s)
{
	int64_t t;

	return utc_parse(s, &t) == 0;
}

static int check_string(const json_t *obj, const char *key, size_t max, const char *what,
			bool (*valid)(const char *), otter_error *err)
{
	const char *s = NULL;
	int r = json_get_string(obj, key, false, what, &s, err);

	if (r < 0 || !s)
		return r;
	if (strlen(s) > max || (valid && !valid(s)))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"%s\" is malformed", what, key);
	return 0;
}

static bool is_sha256_hex(const char *s)
{
	return strlen(s) == 64 && is_lower_hex(s, 64);
}

static bool is_status(const char *s)
{
	return strcmp(s, "installing") == 0 || strcmp(s, "installed") == 0;
}

static int validate(const json_t *root, otter_error *err)
{
	const char *w = AB_STATE_FILE;
	json_t *slots = NULL, *conf = NULL, *rb = NULL, *events = NULL, *v;
	const char *key;
	int64_t format = 0, n;
	int r;

	r = json_get_int(root, "format", true, w, 1, 1000, &format, err);
	if (r < 0)
		return r;
	if (format != STATE_FORMAT)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: format %lld is not one this otter knows (%d)", w,
				       (long long)format, STATE_FORMAT);
	if ((r = json_get_member(root, "slots", JSON_OBJECT, false, w, &slots, err)) < 0 ||
	    (r = json_get_member(root, "confirmed", JSON_OBJECT, false, w, &conf, err)) < 0 ||
	    (r = json_get_member(root, "rolled-back", JSON_OBJECT, false, w, &rb, err)) < 0 ||
	    (r = json_get_member(root, "events", JSON_ARRAY, false, w, &events, err)) < 0 ||
	    (r = check_string(root, "activated", OTTER_BOOTNAME_MAX, w, otter_bootname_is_valid, err)) <
		    0 ||
	    (r = check_string(root, "activated-at", 31, w, is_time, err)) < 0)
		return r;
	if (slots) {
		if (json_object_size(slots) > OTTER_SYSTEM_MAX_SLOTS)
			return otter_error_set(err, OTTER_E_FORMAT, "%s: too many slots", w);
		json_object_foreach(slots, key, v) {
			const char *sw = "slots.json: a slot entry";

			if (!json_is_object(v))
				return otter_error_set(err, OTTER_E_FORMAT, "%s: slots.%s is not "
						       "an object", w, key);
			if ((r = check_string(v, "status", 16, sw, is_status, err)) < 0 ||
			    (r = check_string(v, "version", OTTER_SLOT_VERSION_MAX, sw, NULL,
					      err)) < 0 ||
			    (r = check_string(v, "sha256", 64, sw, is_sha256_hex, err)) < 0 ||
			    (r = check_string(v, "written-sha256", 64, sw, is_sha256_hex, err)) <
				    0 ||
			    (r = check_string(v, "installed-at", 31, sw, is_time, err)) < 0 ||
			    (r = check_string(v, "started-at", 31, sw, is_time, err)) < 0 ||
			    (r = json_get_int(v, "size", false, sw, 0, INT64_MAX, &n, err)) < 0 ||
			    (r = json_get_int(v, "written-size", false, sw, 0, INT64_MAX, &n,
					      err)) < 0)
				return r;
		}
	}
	if (conf)
		json_object_foreach(conf, key, v)
			if (!json_is_boolean(v) || !otter_bootname_is_valid(key))
				return otter_error_set(err, OTTER_E_FORMAT,
						       "%s: confirmed entries are bootname: bool",
						       w);
	if (rb) {
		if ((r = check_string(rb, "failed", OTTER_BOOTNAME_MAX, w, otter_bootname_is_valid,
				      err)) < 0 ||
		    (r = check_string(rb, "booted", OTTER_BOOTNAME_MAX, w, otter_bootname_is_valid,
				      err)) < 0 ||
		    (r = check_string(rb, "at", 31, w, is_time, err)) < 0)
			return r;
	}
	if (events && json_array_size(events) > AB_STATE_MAX_EVENTS)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: more than %u events", w,
				       AB_STATE_MAX_EVENTS);
	return 0;
}

int ab_state_parse(json_t **out, const uint8_t *buf, size_t len, otter_error *err)
{
	json_t *root = NULL;
	int r;

	r = otter_json_parse(&root, buf, len, AB_STATE_MAX_SIZE, err);
	if (r == 0)
		r = validate(root, err);
	if (r < 0) {
		json_decref(root);
		return r;
	}
	*out = root;
	return 0;
}

int ab_state_load(const otter_system *sys, json_t **out, otter_error *err)
{
	_cleanup_free_ char *path = path_join(otter_system_data_dir(sys), AB_STATE_FILE);
	_cleanup_free_ uint8_t *data = NULL;
	json_t *root = NULL;
	size_t len;
	int r;

	if (!path)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = fileio_read(AT_FDCWD, path, AB_STATE_MAX_SIZE, &data, &len, err);
	if (r == OTTER_E_NOT_FOUND) {
		otter_error_clear(err);
		root = json_pack("{s:i}", "format", STATE_FORMAT);
		if (!root)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		*out = root;
		return 0;
	}
	if (r < 0)
		return otter_error_prefix(err, r, "slot bookkeeping");
	r = ab_state_parse(&root, data, len, err);
	if (r < 0)
		return otter_error_prefix(err, r,
					  "%s is damaged (move it away to start the bookkeeping "
					  "afresh)",
					  path);
	*out = root;
	return 0;
}

int ab_state_save(const otter_system *sys, json_t *root, otter_error *err)
{
	_cleanup_free_ uint8_t *text = NULL;
	_cleanup_close_ int dfd = -1;
	size_t len;
	int r;

	r = fileio_mkdir_p(otter_system_data_dir(sys), 0755, err);
	if (r < 0)
		return otter_error_prefix(err, r, "data directory");
	dfd = open(otter_system_data_dir(sys), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return otter_error_set_errno(err, errno, "data directory '%s'",
					     otter_system_data_dir(sys));
	r = otter_json_pretty(root, &text, &len, err);
	if (r < 0)
		return r;
	/* Temp files of a write cut short are garbage: only renamed files count. */
	fileio_remove_stale_tmp(dfd);
	crashpoint("state-write");
	r = fileio_write_atomic(dfd, AB_STATE_FILE, text, len, 0644, err);
	if (r < 0)
		return otter_error_prefix(err, r, "slot bookkeeping in '%s'",
					  otter_system_data_dir(sys));
	return 0;
}

int ab_lock(const otter_system *sys, int *fd_out, otter_error *err)
{
	int r = fileio_lock_nb(otter_system_data_dir(sys), "lock", fd_out, err);

	if (r == OTTER_E_BUSY)
		return otter_error_set(err, OTTER_E_BUSY,
				       "another otter process is changing the slots (it "
				       "holds %s/lock); try again when it is done",
				       otter_system_data_dir(sys));
	return r;
}

json_t *ab_state_slot(json_t *root, const char *slot_name, bool create)
{
	json_t *slots = json_object_get(root, "slots"), *s;

	if (!slots) {
		if (!create)
			return NULL;
		slots = json_object();
		if (!slots || json_object_set_new(root, "slots", slots) < 0)
			return NULL;
	}
	s = json_object_get(slots, slot_name);
	if (!s && create) {
		s = json_object();
		if (!s || json_object_set_new(slots, slot_name, s) < 0)
			return NULL;
	}
	return s;
}

int ab_state_event(json_t *root, const char *event, const char *bootname, const char *detail,
		   otter_error *err)
{
	json_t *events = json_object_get(root, "events"), *e;
	char now[32];

	if (!events) {
		events = json_array();
		if (!events || json_object_set_new(root, "events", events) < 0)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	ab_now(now);
	e = json_pack("{s:s, s:s}", "at", now, "event", event);
	if (!e || (bootname && json_object_set_new(e, "bootname", json_string(bootname)) < 0) ||
	    (detail && json_object_set_new(e, "detail", json_string(detail)) < 0)) {
		json_decref(e);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	if (json_array_append_new(events, e) < 0)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	while (json_array_size(events) > AB_STATE_MAX_EVENTS)
		json_array_remove(events, 0);
	return 0;
}

int ab_state_set_confirmed(json_t *root, const char *bootname, bool confirmed, otter_error *err)
{
	json_t *c = json_object_get(root, "confirmed");

	if (!c) {
		c = json_object();
		if (!c || json_object_set_new(root, "confirmed", c) < 0)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	if (json_object_set_new(c, bootname, json_boolean(confirmed)) < 0)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	return 0;
}

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

	if (!sys || !bootname)
		return otter_error_set(err, OTTER_E_INVALID, "activate: invalid arguments");
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

	if (!sys || !bootname)
		return otter_error_set(err, OTTER_E_INVALID, "activate: invalid arguments");
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

	if (!sys)
		return otter_error_set(err, OTTER_E_INVALID, "%s: invalid arguments", what);
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

int otter_slot_reset_bookkeeping(const otter_system *sys, const char *reason,
				 otter_error *err)
{
	_cleanup_free_ char *path = NULL, *aside = NULL;
	_cleanup_(json_decrefp) json_t *root = NULL;
	_cleanup_close_ int lock = -1;
	int r;

	if (!sys)
		return otter_error_set(err, OTTER_E_INVALID, "reset bookkeeping: invalid arguments");
	r = ab_lock(sys, &lock, err);
	if (r < 0)
		return otter_error_prefix(err, r, "reset bookkeeping");
	path = path_join(otter_system_data_dir(sys), AB_STATE_FILE);
	aside = path ? str_concat(path, ".damaged") : NULL;
	root = json_pack("{s:i}", "format", STATE_FORMAT);
	if (!aside || !root)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (rename(path, aside) < 0 && errno != ENOENT)
		return otter_error_set_errno(err, errno, "moving '%s' aside", path);
	r = ab_state_event(root, "bookkeeping-reset", NULL, reason, err);
	if (r == 0)
		r = ab_state_save(sys, root, err);
	return r;
}

int otter_slot_mark_good(const otter_system *sys, const char *bootname, otter_error *err)
{
	_cleanup_(otter_boot_freep) otter_boot *boot = NULL;
	_cleanup_close_ int lock = -1;
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *bn = NULL;
	int r;

	r = mark_begin(sys, bootname, "mark-good", &lock, &boot, &bn, &root, err);
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

static int mark_bad(const otter_system *sys, const char *bootname, bool keep_fallback,
		    otter_error *err)
{
	_cleanup_(otter_boot_freep) otter_boot *boot = NULL;
	_cleanup_close_ int lock = -1;
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *bn = NULL;
	int r;

	r = mark_begin(sys, bootname, "mark-bad", &lock, &boot, &bn, &root, err);
	if (r < 0)
		return r;
	if (keep_fallback) {
		r = check_fallback(sys, boot, root, bn, err);
		if (r < 0)
			return r;
	}
	r = otter_boot_mark_bad(boot, bn, err);
	if (r < 0)
		return r;
	/*
	 * Marking the activated slot bad ends the update: while it runs (trying), the new
	 * software failed and the next boot goes back, which is a rollback and reported as one
	 * until the next activation; before it ever booted, the update is cancelled.
	 */
	if (state_string(root, "activated") && strcmp(state_string(root, "activated"), bn) == 0) {
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
	return mark_bad(sys, bootname, false, err);
}

int otter_slot_mark_bad_checked(const otter_system *sys, const char *bootname,
				otter_error *err)
{
	return mark_bad(sys, bootname, true, err);
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

	if (!sys)
		return otter_error_set(err, OTTER_E_INVALID, "boot check: invalid arguments");
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

static void copy_str(char *out, size_t size, const char *s)
{
	strfmt(out, size, "%s", s ? s : "");
}

int otter_ab_status_get(const otter_system *sys, otter_ab_status *out, otter_error *err)
{
	_cleanup_(otter_boot_freep) otter_boot *boot = NULL;
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *booted = NULL, *s;
	json_t *rb;
	int r;

	if (!sys || !out)
		return otter_error_set(err, OTTER_E_INVALID, "status: invalid arguments");
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
	rb = json_object_get(root, "rolled-back");
	if (rb) {
		out->update = OTTER_UPDATE_ROLLED_BACK;
		out->rollback_failed = check_bootname(sys, state_string(rb, "failed"), NULL);
		copy_str(out->rollback_at, sizeof(out->rollback_at), state_string(rb, "at"));
	} else if (out->activated && booted && strcmp(out->activated, booted) == 0) {
		out->update = is_confirmed(root, booted) ? OTTER_UPDATE_CONFIRMED
							 : OTTER_UPDATE_TRYING;
	} else if (out->activated && out->primary && strcmp(out->activated, out->primary) == 0) {
		out->update = OTTER_UPDATE_PENDING_REBOOT;
	} else if (out->activated) {
		/* The environment lost the activation: never report a reboot that will not come. */
		out->update = OTTER_UPDATE_ACTIVATION_LOST;
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
