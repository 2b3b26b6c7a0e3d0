/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Slot bookkeeping: <data-directory>/slots.json, its strict intake (the data partition is
 * untrusted), atomic replacement and the lock. What is recorded in it, and in which order
 * with the boot environment, is lifecycle.c's and writer.c's business.
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
#include "util/args.h"
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
	if (strlen(s) > max || (valid && !valid(s))) {
		char safe[48];

		str_sanitize(s, safe, sizeof(safe));
		if (strlen(s) > max)
			return otter_error_set(err, OTTER_E_FORMAT,
					       "%s: \"%s\" is %zu bytes long ('%s...'), more than %zu",
					       what, key, strlen(s), safe, max);
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"%s\" is malformed: '%s'", what,
				       key, safe);
	}
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
			return otter_error_set(err, OTTER_E_FORMAT, "%s: %zu slots, more than %u", w,
					       json_object_size(slots), OTTER_SYSTEM_MAX_SLOTS);
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

int otter_slot_reset_bookkeeping(const otter_system *sys, const char *reason,
				 otter_error *err)
{
	_cleanup_free_ char *path = NULL, *aside = NULL;
	_cleanup_(json_decrefp) json_t *root = NULL;
	_cleanup_close_ int lock = -1;
	int r;

	ARG_NONNULL(err, "reset bookkeeping", sys);
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
