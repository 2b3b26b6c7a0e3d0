/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The agent's persistent state, <data-directory>/agent.json, replaced atomically at every
 * transition. The data partition is untrusted input: the file is size-capped, parsed strictly
 * and every field is type- and length-checked. A damaged file is moved aside and the agent
 * starts from a fresh state rather than stop updating: the boot state in the bootloader
 * environment stays authoritative for which software runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <otter/json.h>

#include "agent-private.h"
#include "lib/json/json-util.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

static const char *const state_names[] = {
	"idle",    "downloading", "installing",  "pending-reboot",
	"pending-confirm", "confirmed", "rolled-back", "failed",
};

const char *otter_agent_state_name(otter_agent_state s)
{
	return s < _OTTER_AGENT_STATE_MAX ? state_names[s] : "unknown";
}

static int state_from_name(const char *name, otter_agent_state *out)
{
	for (unsigned i = 0; i < _OTTER_AGENT_STATE_MAX; i++)
		if (strcmp(state_names[i], name) == 0) {
			*out = (otter_agent_state)i;
			return 0;
		}
	return -1;
}

bool agent_state_failed(const agent_state *st, const char *version)
{
	for (size_t i = 0; i < st->n_failed; i++)
		if (otter_version_compare(st->failed[i], version) == 0)
			return true;
	return false;
}

void agent_state_add_failed(agent_state *st, const char *version)
{
	if (!version[0] || agent_state_failed(st, version))
		return;
	if (st->n_failed == AGENT_MAX_FAILED) {
		/* Keep the newest entries: the oldest are below anything offered now. */
		memmove(st->failed[0], st->failed[1], sizeof(st->failed[0]) * (AGENT_MAX_FAILED - 1));
		st->n_failed--;
	}
	strfmt(st->failed[st->n_failed++], AGENT_VERSION_MAX, "%s", version);
}

static void set_str(json_t *o, const char *key, const char *v)
{
	if (v && v[0])
		json_object_set_new(o, key, json_string(v));
}

static void set_time(json_t *o, const char *key, int64_t t)
{
	char buf[32];

	if (t <= 0)
		return;
	utc_format(t, buf);
	json_object_set_new(o, key, json_string(buf));
}

json_t *agent_state_to_json(const agent_state *st)
{
	json_t *o = json_object(), *failed = json_array();

	if (!o || !failed) {
		json_decref(o);
		json_decref(failed);
		return NULL;
	}
	json_object_set_new(o, "state", json_string(otter_agent_state_name(st->state)));
	if (st->current_version[0]) {
		json_t *c = json_object();
		set_str(c, "version", st->current_version);
		set_str(c, "release", st->current_release);
		json_object_set_new(o, "current", c);
	}
	if (st->pending_version[0]) {
		json_t *p = json_object();
		set_str(p, "version", st->pending_version);
		set_str(p, "release", st->pending_release);
		set_str(p, "bootname", st->pending_bootname);
		set_time(p, "since", st->pending_since);
		set_str(p, "boot-id", st->pending_boot_id);
		if (st->pending_boot_id[0])
			json_object_set_new(p, "uptime", json_integer((json_int_t)st->pending_uptime));
		json_object_set_new(o, "pending", p);
	}
	set_time(o, "last-check", st->last_check);
	set_str(o, "last-result", st->last_result);
	set_str(o, "last-error", st->last_error);
	json_object_set_new(o, "consecutive-failures", json_integer((json_int_t)st->failures));
	for (size_t i = 0; i < st->n_failed; i++)
		json_array_append_new(failed, json_string(st->failed[i]));
	json_object_set_new(o, "failed-releases", failed);
	return o;
}

int agent_state_save(const char *data_dir, const agent_state *st, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *o = agent_state_to_json(st);
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_free_ char *path = NULL;
	size_t len;
	int r;

	if (!o)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = otter_json_pretty(o, &buf, &len, err);
	if (r < 0)
		return r;
	r = fileio_mkdir_p(data_dir, 0755, err);
	if (r < 0)
		return r;
	path = path_join(data_dir, AGENT_STATE_FILE);
	if (!path)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = fileio_write_atomic_path(path, buf, len, 0644, err);
	return r < 0 ? otter_error_prefix(err, r, "saving agent state") : 0;
}

static int copy_field(const json_t *o, const char *key, char *out, size_t size,
		      otter_error *err)
{
	const char *s;
	int r = json_get_string(o, key, false, AGENT_STATE_FILE, &s, err);

	if (r < 0)
		return r;
	out[0] = '\0';
	if (!s)
		return 0;
	if (strlen(s) >= size) {
		char safe[40];

		str_sanitize(s, safe, sizeof(safe));
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: \"%s\" is %zu bytes long ('%s...'), more than %zu",
				       AGENT_STATE_FILE, key, strlen(s), safe, size - 1);
	}
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20)
			return otter_error_set(err, OTTER_E_FORMAT, "%s: \"%s\" has control bytes",
					       AGENT_STATE_FILE, key);
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int time_field(const json_t *o, const char *key, int64_t *out, otter_error *err)
{
	char buf[32];
	int r = copy_field(o, key, buf, sizeof(buf), err);

	*out = 0;
	if (r < 0 || !buf[0])
		return r;
	if (utc_parse(buf, out) < 0)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: \"%s\" is not a UTC time",
				       AGENT_STATE_FILE, key);
	return 0;
}

int agent_state_parse(const uint8_t *data, size_t len, agent_state *st, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *o = NULL;
	json_t *cur, *pend, *failed, *v;
	char name[32];
	int64_t failures = 0;
	size_t i;
	int r;

	r = otter_json_parse(&o, data, len, AGENT_STATE_MAX, err);
	if (r < 0)
		return r;
	if ((r = copy_field(o, "state", name, sizeof(name), err)) < 0)
		return r;
	if (state_from_name(name, &st->state) < 0)
		return otter_error_set(err, OTTER_E_FORMAT, "%s: unknown state '%s'",
				       AGENT_STATE_FILE, name);
	if ((r = json_get_member(o, "current", JSON_OBJECT, false, AGENT_STATE_FILE, &cur, err)) <
		    0 ||
	    (r = json_get_member(o, "pending", JSON_OBJECT, false, AGENT_STATE_FILE, &pend, err)) <
		    0 ||
	    (r = json_get_member(o, "failed-releases", JSON_ARRAY, false, AGENT_STATE_FILE,
				 &failed, err)) < 0)
		return r;
	if (cur && ((r = copy_field(cur, "version", st->current_version,
				    sizeof(st->current_version), err)) < 0 ||
		    (r = copy_field(cur, "release", st->current_release,
				    sizeof(st->current_release), err)) < 0))
		return r;
	if (pend && ((r = copy_field(pend, "version", st->pending_version,
				     sizeof(st->pending_version), err)) < 0 ||
		     (r = copy_field(pend, "release", st->pending_release,
				     sizeof(st->pending_release), err)) < 0 ||
		     (r = copy_field(pend, "bootname", st->pending_bootname,
				     sizeof(st->pending_bootname), err)) < 0 ||
		     (r = time_field(pend, "since", &st->pending_since, err)) < 0 ||
		     (r = copy_field(pend, "boot-id", st->pending_boot_id,
				     sizeof(st->pending_boot_id), err)) < 0))
		return r;
	if (pend && json_object_get(pend, "uptime")) {
		int64_t up;
		r = json_get_int(pend, "uptime", true, AGENT_STATE_FILE, 0, INT64_MAX / 2, &up, err);
		if (r < 0)
			return r;
		st->pending_uptime = up;
	}
	if ((r = time_field(o, "last-check", &st->last_check, err)) < 0 ||
	    (r = copy_field(o, "last-result", st->last_result, sizeof(st->last_result), err)) <
		    0 ||
	    (r = copy_field(o, "last-error", st->last_error, sizeof(st->last_error), err)) < 0)
		return r;
	if (json_object_get(o, "consecutive-failures") &&
	    (r = json_get_int(o, "consecutive-failures", true, AGENT_STATE_FILE, 0, 1000000,
			      &failures, err)) < 0)
		return r;
	st->failures = (uint64_t)failures;
	json_array_foreach(failed, i, v) {
		if (!json_is_string(v) || json_string_length(v) >= AGENT_VERSION_MAX ||
		    !otter_version_valid(json_string_value(v)))
			return otter_error_set(err, OTTER_E_FORMAT, "%s: bad failed-releases entry",
					       AGENT_STATE_FILE);
		agent_state_add_failed(st, json_string_value(v));
	}
	return 0;
}

int agent_state_load(const char *data_dir, agent_state *st, bool *was_damaged,
		     otter_error *err)
{
	_cleanup_free_ uint8_t *data = NULL;
	_cleanup_free_ char *path = NULL, *aside = NULL;
	otter_error perr = OTTER_ERROR_INIT;
	size_t len;
	int r;

	memset(st, 0, sizeof(*st));
	*was_damaged = false;
	path = path_join(data_dir, AGENT_STATE_FILE);
	aside = path ? str_concat(path, ".damaged") : NULL;
	if (!aside)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = fileio_read(AT_FDCWD, path, AGENT_STATE_MAX, &data, &len, &perr);
	if (r == OTTER_E_NOT_FOUND)
		return 0;
	if (r == 0)
		r = agent_state_parse(data, len, st, &perr);
	if (r == 0)
		return 0;
	if (r == OTTER_E_NOMEM || r == OTTER_E_IO)
		return otter_error_set(err, r, "%s", perr.msg);
	/* Damaged: keep it for inspection, start afresh. */
	memset(st, 0, sizeof(*st));
	strfmt(st->last_error, sizeof(st->last_error), "state file was damaged (%s); kept as %s",
	       perr.msg, aside);
	if (rename(path, aside) < 0)
		return otter_error_set_errno(err, errno, "moving damaged '%s' aside", path);
	*was_damaged = true;
	return 0;
}

int agent_cycle_lock(otter_agent *a, bool *taken, otter_error *err)
{
	const char *dir = otter_system_data_dir(a->sys);
	_cleanup_free_ char *path = path_join(dir, AGENT_LOCK_FILE);
	_cleanup_free_ uint8_t *holder = NULL;
	char pid[32];
	bool damaged;
	size_t len = 0;
	int fd = -1, r, n;

	*taken = false;
	if (a->cycle_lock_fd >= 0)
		return 0;
	if (!path)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = fileio_lock_nb(dir, AGENT_LOCK_FILE, &fd, err);
	if (r == OTTER_E_BUSY) {
		/* The holder wrote its pid into the file. */
		if (fileio_read(AT_FDCWD, path, 31, &holder, &len, NULL) == 0)
			holder[strcspn((char *)holder, "\n")] = '\0';
		return otter_error_set(err, OTTER_E_BUSY,
				       "another otter update/daemon cycle is running (pid %s, "
				       "holding %s): try again when it is done",
				       holder && holder[0] ? (char *)holder : "unknown", path);
	}
	if (r < 0)
		return r;
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		agent_log(a, OTTER_LOG_DEBUG, "writing the pid into %s: %s", path, strerror(errno));
	r = agent_state_load(dir, &a->st, &damaged, err);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (damaged)
		agent_log(a, OTTER_LOG_WARNING, "%s", a->st.last_error);
	a->cycle_lock_fd = fd;
	*taken = true;
	return 0;
}

void agent_cycle_unlock(otter_agent *a, bool taken)
{
	if (!taken || a->cycle_lock_fd < 0)
		return;
	close(a->cycle_lock_fd);
	a->cycle_lock_fd = -1;
}
