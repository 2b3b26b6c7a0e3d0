/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The admin operations (docs/director.md, "Admin API"). A request is untrusted input from the
 * HTTP API: every member is checked for type, charset, length and count before anything is
 * read from the database, an unknown member is an error (a typo must not silently widen a
 * rollout), and each failure carries the HTTP status the API answers with.
 */

#include "lib/director/admin.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/director/images.h"
#include "lib/director/rollout-private.h"
#include "lib/limits.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

/* A request being handled: the HTTP status of the first failure. */
typedef struct call {
	const dir_admin_env *env;
	int status;
	otter_error *err;
} call;

static int fail(call *c, int status, int code, const char *fmt, ...) OTTER_PRINTF(4, 5);

static int fail(call *c, int status, int code, const char *fmt, ...)
{
	char msg[sizeof(((otter_error *)0)->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->status = status;
	return otter_error_set(c->err, code, "%s", msg);
}

/* The HTTP status for an error from the rules or the database. */
static int status_of(int code)
{
	switch (code) {
	case OTTER_E_INVALID:
	case OTTER_E_FORMAT:
	case OTTER_E_TOO_LARGE:
	case OTTER_E_LIMIT:
		return 400;
	case OTTER_E_NOT_FOUND:
		return 404;
	case OTTER_E_EXISTS:
	case OTTER_E_STATE:
		return 409;
	case OTTER_E_NETWORK:
	case OTTER_E_TIMEOUT:
		return 502;
	case OTTER_E_BUSY:
		return 503;
	default:
		return 500;
	}
}

/* ---- validation ---- */

static int check_members(call *c, const json_t *req, const char *const *allowed)
{
	const char *key;
	json_t *v;

	if (!json_is_object(req))
		return fail(c, 400, OTTER_E_INVALID, "the request must be a JSON object");
	json_object_foreach((json_t *)req, key, v) {
		bool ok = false;
		char safe[64];

		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = strcmp(key, allowed[i]) == 0;
		if (!ok) {
			str_sanitize(key, safe, sizeof(safe));
			return fail(c, 400, OTTER_E_INVALID, "unknown member \"%s\" in the request",
				    safe);
		}
	}
	return 0;
}

/* A name people choose (device id, rollout id, tag, hardware id). */
static int check_id(call *c, const char *what, const char *s)
{
	char safe[80];

	if (dir_id_ok(s))
		return 0;
	str_sanitize(s ? s : "", safe, sizeof(safe));
	return fail(c, 400, OTTER_E_INVALID,
		    "%s '%s' is not valid: use 1 to %u of A-Z a-z 0-9 . _ : -", what, safe,
		    DIR_ID_MAX);
}

static int get_string(call *c, const json_t *req, const char *key, bool required,
		      const char **out)
{
	json_t *v = json_object_get(req, key);

	*out = NULL;
	if (!v) {
		if (required)
			return fail(c, 400, OTTER_E_INVALID, "the request lacks \"%s\"", key);
		return 0;
	}
	if (!json_is_string(v))
		return fail(c, 400, OTTER_E_INVALID, "\"%s\" must be a string", key);
	*out = json_string_value(v);
	return 0;
}

static int get_id(call *c, const json_t *req, const char *key, bool required, const char **out)
{
	int r = get_string(c, req, key, required, out);

	return r < 0 || !*out ? r : check_id(c, key, *out);
}

static int get_int(call *c, const json_t *req, const char *key, int64_t min, int64_t max,
		   int64_t def, int64_t *out)
{
	json_t *v = json_object_get(req, key);

	*out = def;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return fail(c, 400, OTTER_E_INVALID,
			    "\"%s\" must be an integer from %" PRId64 " to %" PRId64, key, min,
			    max);
	*out = json_integer_value(v);
	return 0;
}

static int strcmp_p(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An array of ids, at most max, no duplicates; *out borrows from req (caller frees it). */
static int get_id_list(call *c, const json_t *req, const char *key, size_t max,
		       const char ***out, size_t *n_out)
{
	json_t *a = json_object_get(req, key);
	size_t n;

	*out = NULL;
	*n_out = 0;
	if (!a)
		return 0;
	if (!json_is_array(a))
		return fail(c, 400, OTTER_E_INVALID, "\"%s\" must be an array of strings", key);
	n = json_array_size(a);
	if (n == 0)
		return fail(c, 400, OTTER_E_INVALID, "\"%s\" is empty: leave it out instead", key);
	if (n > max)
		return fail(c, 400, OTTER_E_INVALID, "\"%s\" has %zu entries, at most %zu", key,
			    n, max);
	*out = otter_calloc(n, sizeof(char *));
	if (!*out)
		return fail(c, 500, OTTER_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *s = json_string_value(json_array_get(a, i));
		int r = check_id(c, key, s);

		if (r < 0)
			return r;
		(*out)[i] = s;
	}
	*n_out = n;
	/* Duplicates would make counts lie; n is bounded, sort a copy to find them. */
	_cleanup_free_ const char **sorted = otter_memdup(*out, n * sizeof(char *));
	if (!sorted)
		return fail(c, 500, OTTER_E_NOMEM, "out of memory");
	qsort(sorted, n, sizeof(char *), strcmp_p);
	for (size_t i = 1; i < n; i++)
		if (strcmp(sorted[i - 1], sorted[i]) == 0)
			return fail(c, 400, OTTER_E_INVALID, "\"%s\" lists '%s' twice", key,
				    sorted[i]);
	return 0;
}

static int get_filter(call *c, const json_t *req, dir_filter *f)
{
	int r;

	memset(f, 0, sizeof(*f));
	r = get_id_list(c, req, "devices", DIR_FILTER_MAX_IDS, &f->devices, &f->n_devices);
	if (r == 0)
		r = get_id_list(c, req, "tags", DIR_FILTER_MAX_NAMES, &f->tags, &f->n_tags);
	if (r == 0)
		r = get_id_list(c, req, "hardware_ids", DIR_FILTER_MAX_NAMES, &f->hardware_ids,
				&f->n_hardware_ids);
	if (r == 0 && !f->n_devices && !f->n_tags && !f->n_hardware_ids)
		r = fail(c, 400, OTTER_E_INVALID,
			 "select devices with \"devices\", \"tags\" or \"hardware_ids\"");
	return r;
}

static void filter_clear(dir_filter *f)
{
	free(f->devices);
	free(f->tags);
	free(f->hardware_ids);
	memset(f, 0, sizeof(*f));
}

static int get_target(call *c, const json_t *req, const char **out)
{
	char safe[128];
	int r = get_string(c, req, "target", true, out);

	if (r < 0)
		return r;
	if (!target_path_is_safe(*out, OTTER_TUF_MAX_TARGET_PATH)) {
		str_sanitize(*out, safe, sizeof(safe));
		return fail(c, 400, OTTER_E_INVALID,
			    "\"target\" '%s' is not a relative target path (no '..', empty or "
			    "absolute parts, no control bytes)",
			    safe);
	}
	return 0;
}

/* "10" or 10: a cumulative device count; "10%": a cumulative share of the selection. */
static int get_phases(call *c, const json_t *req, dir_phase_spec *out, size_t *n_out)
{
	json_t *a = json_object_get(req, "phases");
	int64_t prev_count = 0, prev_pct = 0;
	size_t n;

	if (!a) {
		out[0] = (dir_phase_spec){ .value = 100, .percent = true };
		*n_out = 1;
		return 0;
	}
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > DIR_MAX_PHASES)
		return fail(c, 400, OTTER_E_INVALID,
			    "\"phases\" must be an array of 1 to %u phases", DIR_MAX_PHASES);
	n = json_array_size(a);
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(a, i);
		dir_phase_spec *p = &out[i];
		uint64_t u;

		if (json_is_integer(v) && json_integer_value(v) >= 1 &&
		    json_integer_value(v) <= 1000000000) {
			*p = (dir_phase_spec){ .value = json_integer_value(v) };
		} else if (json_is_string(v)) {
			const char *s = json_string_value(v);
			size_t len = strnlen(s, 16);
			char num[16];

			p->percent = len > 0 && len < sizeof(num) && s[len - 1] == '%';
			if (len == 0 || len >= sizeof(num))
				goto bad;
			memcpy(num, s, len - p->percent);
			num[len - p->percent] = 0;
			if (parse_u64_range(num, 1, p->percent ? 100 : 1000000000, &u) < 0)
				goto bad;
			p->value = (int64_t)u;
		} else {
			goto bad;
		}
		/* Cumulative: each phase reaches further than the one before, per kind. */
		if ((p->percent && p->value <= prev_pct) || (!p->percent && p->value <= prev_count))
			return fail(c, 400, OTTER_E_INVALID,
				    "phase %zu does not go beyond the phase before it (phases are "
				    "cumulative: 10, 10%%, 50%%, 100%%)",
				    i + 1);
		if (p->percent)
			prev_pct = p->value;
		else
			prev_count = p->value;
		continue;
bad:
		return fail(c, 400, OTTER_E_INVALID,
			    "phase %zu must be a device count (1 to 1000000000, \"10\" or 10) or "
			    "a percentage (\"1%%\" to \"100%%\")",
			    i + 1);
	}
	*n_out = n;
	return 0;
}

/* ---- operations ---- */

static int lookup_target(call *c, const char *path, dir_image_target *t)
{
	int r = dir_image_lookup(c->env->image_metadata_url, c->env->image_metadata_dir, path, t,
				 c->err);

	if (r < 0)
		c->status = r == OTTER_E_CONFIG ? 500 : status_of(r);
	return r;
}

typedef struct assign_tx {
	const dir_filter *f;
	const dir_image_target *t;
	const char *correlation_id;
	int64_t now;
	uint64_t n_devices, n_ecus;
} assign_tx;

static int assign_tx_fn(dir_db *db, void *ud, otter_error *err)
{
	assign_tx *a = ud;

	return dir_assign(db, a->f, a->t, a->correlation_id, a->now, &a->n_devices, &a->n_ecus,
			  err);
}

static int op_assign(call *c, const json_t *req, json_t **resp)
{
	static const char *const members[] = { "target", "devices", "tags", "hardware_ids",
					       NULL };
	_cleanup_free_ char *corr = NULL;
	dir_image_target t = { 0 };
	dir_filter f;
	const char *path;
	int r = check_members(c, req, members);

	if (r < 0)
		return r;
	r = get_target(c, req, &path);
	if (r < 0)
		return r;
	r = get_filter(c, req, &f);
	if (r == 0)
		r = lookup_target(c, path, &t);
	if (r == 0)
		r = dir_correlation_new("assign-", &corr, c->err);
	if (r == 0) {
		assign_tx a = { .f = &f, .t = &t, .correlation_id = corr, .now = c->env->now };

		r = dir_db_transaction(c->env->db, assign_tx_fn, &a, c->err);
		if (r == 0) {
			*resp = json_pack("{s:s, s:s, s:I, s:I, s:I}", "target", t.path,
					  "correlation_id", corr, "length", (json_int_t)t.length,
					  "devices", (json_int_t)a.n_devices, "ecus",
					  (json_int_t)a.n_ecus);
			if (!*resp)
				r = fail(c, 500, OTTER_E_NOMEM, "out of memory");
		}
	}
	filter_clear(&f);
	dir_image_target_clear(&t);
	return r;
}

typedef struct create_tx {
	const dir_rollout_spec *s;
	const char *correlation_id;
	int64_t now;
	json_t *status;
} create_tx;

static int create_tx_fn(dir_db *db, void *ud, otter_error *err)
{
	create_tx *a = ud;
	int r = dir_rollout_create(db, a->s, a->correlation_id, a->now, err);

	json_decref(a->status);
	a->status = NULL;
	return r < 0 ? r : dir_rollout_status(db, a->s->id, &a->status, err);
}

static int op_create(call *c, const json_t *req, json_t **resp)
{
	static const char *const members[] = {
		"id",       "target",		 "devices",	      "tags",
		"hardware_ids", "phases",	 "success_threshold", "failure_threshold",
		"min_reports",	"device_cap",	 NULL,
	};
	_cleanup_free_ char *corr = NULL;
	dir_phase_spec phases[DIR_MAX_PHASES];
	dir_image_target t = { 0 };
	dir_rollout_spec s = { 0 };
	const char *path;
	int r = check_members(c, req, members);

	if (r == 0)
		r = get_id(c, req, "id", true, &s.id);
	if (r == 0)
		r = get_target(c, req, &path);
	if (r == 0)
		r = get_phases(c, req, phases, &s.n_phases);
	if (r == 0)
		r = get_int(c, req, "success_threshold", 1, 100, 90, &s.success_threshold);
	if (r == 0)
		r = get_int(c, req, "failure_threshold", 0, 100, 10, &s.failure_threshold);
	if (r == 0)
		r = get_int(c, req, "min_reports", 1, 1000000000, 1, &s.min_reports);
	if (r == 0)
		r = get_int(c, req, "device_cap", 1, 1000000000, 0, &s.device_cap);
	if (r < 0)
		return r;
	r = get_filter(c, req, &s.filter);
	if (r == 0)
		r = lookup_target(c, path, &t);
	if (r == 0)
		r = dir_correlation_new("rollout-", &corr, c->err);
	if (r == 0) {
		create_tx a = { .s = &s, .correlation_id = corr, .now = c->env->now };

		s.target = &t;
		s.phases = phases;
		r = dir_db_transaction(c->env->db, create_tx_fn, &a, c->err);
		if (r == 0)
			*resp = a.status;
		else
			json_decref(a.status);
	}
	filter_clear(&s.filter);
	dir_image_target_clear(&t);
	return r;
}

typedef struct change_tx {
	const char *id;
	dir_rollout_op op;
	int64_t now;
	uint64_t n;
	json_t *status;
} change_tx;

static int change_tx_fn(dir_db *db, void *ud, otter_error *err)
{
	change_tx *a = ud;
	int r = dir_rollout_change(db, a->id, a->op, a->now, &a->n, err);

	json_decref(a->status);
	a->status = NULL;
	return r < 0 ? r : dir_rollout_status(db, a->id, &a->status, err);
}

static int op_change(call *c, const json_t *req, dir_rollout_op op, json_t **resp)
{
	static const char *const members[] = { "id", NULL };
	change_tx a = { .op = op, .now = c->env->now };
	int r = check_members(c, req, members);

	if (r == 0)
		r = get_id(c, req, "id", true, &a.id);
	if (r == 0)
		r = dir_db_transaction(c->env->db, change_tx_fn, &a, c->err);
	if (r < 0) {
		json_decref(a.status);
		return r;
	}
	if (op == DIR_ROLLOUT_CANCEL || op == DIR_ROLLOUT_RETRY_FAILED)
		json_object_set_new(a.status,
				    op == DIR_ROLLOUT_CANCEL ? "withdrawn_now" : "retried_now",
				    json_integer((json_int_t)a.n));
	*resp = a.status;
	return 0;
}

typedef struct read_tx {
	const char *id, *state, *tag, *hardware_id;
	int64_t limit, offset;
	int kind;
	json_t *out;
} read_tx;

static int read_tx_fn(dir_db *db, void *ud, otter_error *err)
{
	read_tx *a = ud;

	json_decref(a->out);
	a->out = NULL;
	switch (a->kind) {
	case 0:
		return dir_rollout_status(db, a->id, &a->out, err);
	case 1:
		return dir_rollout_list(db, a->state, a->limit, a->offset, &a->out, err);
	default:
		return dir_fleet(db, a->tag, a->hardware_id, a->limit, a->offset, &a->out, err);
	}
}

static int run_read(call *c, read_tx *a, json_t **resp)
{
	int r = dir_db_transaction(c->env->db, read_tx_fn, a, c->err);

	if (r < 0) {
		json_decref(a->out);
		return r;
	}
	*resp = a->out;
	return 0;
}

static int op_status(call *c, const json_t *req, json_t **resp)
{
	static const char *const members[] = { "id", NULL };
	read_tx a = { .kind = 0 };
	int r = check_members(c, req, members);

	if (r == 0)
		r = get_id(c, req, "id", true, &a.id);
	return r < 0 ? r : run_read(c, &a, resp);
}

static int op_list(call *c, const json_t *req, json_t **resp)
{
	static const char *const members[] = { "state", "limit", "offset", NULL };
	static const char *const states[] = { "running", "paused", "completed", "cancelled" };
	read_tx a = { .kind = 1 };
	int r = check_members(c, req, members);

	if (r == 0)
		r = get_string(c, req, "state", false, &a.state);
	if (r == 0 && a.state) {
		bool ok = false;

		for (size_t i = 0; i < ELEMENTSOF(states); i++)
			ok |= strcmp(a.state, states[i]) == 0;
		if (!ok)
			r = fail(c, 400, OTTER_E_INVALID,
				 "\"state\" must be running, paused, completed or cancelled");
	}
	if (r == 0)
		r = get_int(c, req, "limit", 1, DIR_LIST_MAX, 100, &a.limit);
	if (r == 0)
		r = get_int(c, req, "offset", 0, INT32_MAX, 0, &a.offset);
	return r < 0 ? r : run_read(c, &a, resp);
}

static int op_fleet(call *c, const json_t *req, json_t **resp)
{
	static const char *const members[] = { "tag", "hardware_id", "limit", "offset", NULL };
	read_tx a = { .kind = 2 };
	int r = check_members(c, req, members);

	if (r == 0)
		r = get_id(c, req, "tag", false, &a.tag);
	if (r == 0)
		r = get_id(c, req, "hardware_id", false, &a.hardware_id);
	if (r == 0)
		r = get_int(c, req, "limit", 1, DIR_LIST_MAX, 100, &a.limit);
	if (r == 0)
		r = get_int(c, req, "offset", 0, INT32_MAX, 0, &a.offset);
	return r < 0 ? r : run_read(c, &a, resp);
}

int dir_admin_call(const dir_admin_env *env, const char *op, const json_t *req, json_t **resp,
		   int *http_status, otter_error *err)
{
	call c = { .env = env, .status = 0, .err = err };
	char safe[64];
	int r;

	*resp = NULL;
	if (!env || !env->db || !op || !req) {
		r = fail(&c, 500, OTTER_E_INVALID, "dir_admin_call: missing argument");
	} else if (strcmp(op, "assign") == 0) {
		r = op_assign(&c, req, resp);
	} else if (strcmp(op, "rollout.create") == 0) {
		r = op_create(&c, req, resp);
	} else if (strcmp(op, "rollout.pause") == 0) {
		r = op_change(&c, req, DIR_ROLLOUT_PAUSE, resp);
	} else if (strcmp(op, "rollout.resume") == 0) {
		r = op_change(&c, req, DIR_ROLLOUT_RESUME, resp);
	} else if (strcmp(op, "rollout.cancel") == 0) {
		r = op_change(&c, req, DIR_ROLLOUT_CANCEL, resp);
	} else if (strcmp(op, "rollout.retry-failed") == 0) {
		r = op_change(&c, req, DIR_ROLLOUT_RETRY_FAILED, resp);
	} else if (strcmp(op, "rollout.status") == 0) {
		r = op_status(&c, req, resp);
	} else if (strcmp(op, "rollout.list") == 0) {
		r = op_list(&c, req, resp);
	} else if (strcmp(op, "fleet") == 0) {
		r = op_fleet(&c, req, resp);
	} else {
		str_sanitize(op, safe, sizeof(safe));
		r = fail(&c, 404, OTTER_E_NOT_FOUND, "unknown admin operation '%s'", safe);
	}
	if (r < 0 && c.status == 0)
		c.status = status_of(r);
	if (r == 0 && !*resp) {
		r = fail(&c, 500, OTTER_E_NOMEM, "out of memory");
	}
	if (http_status)
		*http_status = r < 0 ? c.status : 200;
	return r;
}
