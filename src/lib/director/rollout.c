/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Assignments and rollouts (docs/director.md, "Assignments and rollouts").
 *
 * Scale: an assignment or a phase start is a fixed number of set-based statements whatever
 * the number of devices (membership rows, the assignments upsert, the assign_gen bump); no
 * per-device signing or other per-device work happens here: a device's metadata is signed
 * when it next polls and sees a new assign_gen.
 *
 * Concurrency: everything runs inside the caller's dir_db_transaction (SQLite: one writer;
 * PostgreSQL: SERIALIZABLE, retried on conflict). On top of that, the steps that must happen
 * once are conditional UPDATEs (a phase advances only "WHERE phase = old"; a state changes
 * only from the states it may come from) and a device joins a rollout through the primary
 * key of rollout_devices, so two processes evaluating the same report cannot both advance a
 * phase or assign a device twice: the second finds the condition false, or its transaction
 * fails and is run again on the new state.
 */

#include "lib/director/rollout.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "lib/director/rollout-private.h"
#include "lib/director/sql-build.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(dir_db_rows, dir_db_rows_free)

static int oom(otter_error *err)
{
	return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

int dir_correlation_new(const char *prefix, char **out, otter_error *err)
{
	uint8_t rnd[16];
	char hex[sizeof(rnd) * 2 + 1];
	ssize_t got = getrandom(rnd, sizeof(rnd), 0);

	if (got != (ssize_t)sizeof(rnd))
		return otter_error_set_errno(err, got < 0 ? errno : EIO,
					     "reading randomness for a correlation id");
	hex_encode(rnd, sizeof(rnd), hex);
	*out = str_concat(prefix, hex);
	return *out ? 0 : oom(err);
}

/* ---- small query helpers ---- */

/* An integer cell; def when it is NULL or not an integer (our own columns: never the case
 * for NOT NULL ones). */
static int64_t col_i(const dir_db_rows *r, size_t row, size_t col, int64_t def)
{
	int64_t v;

	if (!dir_db_rows_text(r, row, col) || dir_db_rows_int(r, row, col, &v, NULL) < 0)
		return def;
	return v;
}

/* ---- filters ---- */

/* Appends the conditions selecting devices (alias d). */
static void filter_where(sqlb *q, const dir_filter *f, const char *d)
{
	if (f->n_devices) {
		sqlb_add(q, " AND %s.id IN ", d);
		sqlb_list(q, f->devices, f->n_devices);
	}
	if (f->n_tags) {
		sqlb_add(q,
			 " AND EXISTS (SELECT 1 FROM device_tags ft WHERE ft.device_id = %s.id "
			 "AND ft.tag IN ",
			 d);
		sqlb_list(q, f->tags, f->n_tags);
		sqlb_add(q, ")");
	}
	if (f->n_hardware_ids) {
		sqlb_add(q,
			 " AND EXISTS (SELECT 1 FROM ecus fe WHERE fe.device_id = %s.id "
			 "AND fe.hardware_id IN ",
			 d);
		sqlb_list(q, f->hardware_ids, f->n_hardware_ids);
		sqlb_add(q, ")");
	}
}

/* Appends the condition selecting the ECUs (alias e) of a selected device. */
static void ecu_where(sqlb *q, const dir_filter *f, const char *e)
{
	if (f->n_hardware_ids) {
		sqlb_add(q, " AND %s.hardware_id IN ", e);
		sqlb_list(q, f->hardware_ids, f->n_hardware_ids);
	} else {
		sqlb_add(q, " AND %s.is_primary = 1", e);
	}
}

/* A set of devices: the devices of one batch of a rollout, or those a filter selects. */
typedef struct devset {
	const char *rollout_id; /* non-NULL: batch of this rollout */
	int64_t batch;
	const dir_filter *filter;
} devset;

static void devset_sql(sqlb *q, const devset *s)
{
	if (s->rollout_id) {
		sqlb_add(q, "SELECT bd.device_id FROM rollout_devices bd WHERE bd.rollout_id = ");
		sqlb_param(q, DIR_DB_S(s->rollout_id));
		sqlb_add(q, " AND bd.batch = ");
		sqlb_param(q, DIR_DB_I(s->batch));
	} else {
		sqlb_add(q, "SELECT d.id FROM devices d WHERE 1 = 1");
		filter_where(q, s->filter, "d");
	}
}

static json_t *strings_json(const char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *filter_json(const dir_filter *f)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if ((f->n_devices &&
	     json_object_set_new(o, "devices", strings_json(f->devices, f->n_devices)) < 0) ||
	    (f->n_tags && json_object_set_new(o, "tags", strings_json(f->tags, f->n_tags)) < 0) ||
	    (f->n_hardware_ids &&
	     json_object_set_new(o, "hardware_ids",
				 strings_json(f->hardware_ids, f->n_hardware_ids)) < 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A stored filter back into a dir_filter whose strings borrow from *owner. */
static int filter_load(const char *text, json_t **owner, dir_filter *f, otter_error *err)
{
	json_error_t jerr;
	json_t *o = json_loads(text ? text : "", JSON_REJECT_DUPLICATES, &jerr);
	struct {
		const char *key;
		const char ***v;
		size_t *n;
	} groups[] = {
		{ "devices", &f->devices, &f->n_devices },
		{ "tags", &f->tags, &f->n_tags },
		{ "hardware_ids", &f->hardware_ids, &f->n_hardware_ids },
	};

	memset(f, 0, sizeof(*f));
	if (!json_is_object(o)) {
		json_decref(o);
		return otter_error_set(err, OTTER_E_FORMAT, "stored rollout filter is not an object");
	}
	for (size_t g = 0; g < ELEMENTSOF(groups); g++) {
		json_t *a = json_object_get(o, groups[g].key);
		size_t n = json_array_size(a);

		if (!n)
			continue;
		*groups[g].v = otter_calloc(n, sizeof(char *));
		if (!*groups[g].v)
			goto nomem;
		for (size_t i = 0; i < n; i++) {
			const char *s = json_string_value(json_array_get(a, i));

			if (!s) {
				json_decref(o);
				return otter_error_set(err, OTTER_E_FORMAT,
						       "stored rollout filter: %s[%zu] is not a "
						       "string",
						       groups[g].key, i);
			}
			(*groups[g].v)[i] = s;
		}
		*groups[g].n = n;
	}
	*owner = o;
	return 0;
nomem:
	json_decref(o);
	return oom(err);
}

static void filter_free(dir_filter *f)
{
	free(f->devices);
	free(f->tags);
	free(f->hardware_ids);
	memset(f, 0, sizeof(*f));
}

/* ---- assignment rows ---- */

/*
 * Devices of set s that are live in a rollout other than self ("" for a direct assignment)
 * leave it: their membership is frozen with the outcome they had there (installed, failed
 * with its reason, or superseded), and that rollout's undelivered rows of theirs go away.
 */
static int leave_other_rollouts(dir_db *db, const devset *s, const char *self, int64_t now,
				otter_error *err)
{
	sqlb q;
	int r;

#define MINE "a.device_id = rollout_devices.device_id AND a.rollout_id = rollout_devices.rollout_id"
	sqlb_init(&q);
	sqlb_add(&q, "UPDATE rollout_devices SET status = CASE"
		     " WHEN EXISTS (SELECT 1 FROM assignments a WHERE " MINE
		     " AND a.status = 'failed') THEN 'failed'"
		     " WHEN EXISTS (SELECT 1 FROM assignments a WHERE " MINE ")"
		     " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE " MINE
		     " AND a.status <> 'installed') THEN 'installed'"
		     " ELSE 'superseded' END,"
		     " reason = (SELECT MIN(a.reason) FROM assignments a WHERE " MINE
		     " AND a.status = 'failed'), updated = ");
#undef MINE
	sqlb_param(&q, DIR_DB_I(now));
	sqlb_add(&q, " WHERE status IS NULL AND rollout_id <> ");
	sqlb_param(&q, DIR_DB_S(self));
	sqlb_add(&q, " AND device_id IN (");
	devset_sql(&q, s);
	sqlb_add(&q, ")");
	r = sqlb_exec(&q, db, NULL, NULL, err);
	sqlb_clear(&q);
	if (r < 0)
		return r;

	sqlb_init(&q);
	sqlb_add(&q, "DELETE FROM assignments WHERE status = 'assigned' AND rollout_id IS NOT NULL"
		     " AND rollout_id <> ");
	sqlb_param(&q, DIR_DB_S(self));
	sqlb_add(&q, " AND device_id IN (");
	devset_sql(&q, s);
	sqlb_add(&q, ")");
	r = sqlb_exec(&q, db, NULL, NULL, err);
	sqlb_clear(&q);
	return r;
}

/*
 * Writes the assignment rows of the devices of s (the ECUs f selects) and bumps their
 * assign_gen: three statements whatever the number of devices.
 */
static int write_assignments(dir_db *db, const devset *s, const dir_filter *f,
			     const dir_image_target *t, const char *rollout_id, int64_t phase,
			     const char *correlation_id, int64_t now, uint64_t *n_ecus,
			     otter_error *err)
{
	sqlb q;
	int r = leave_other_rollouts(db, s, rollout_id ? rollout_id : "", now, err);

	if (r < 0)
		return r;

	sqlb_init(&q);
	sqlb_add(&q, "INSERT INTO assignments (ecu_serial, device_id, rollout_id, phase, "
		     "correlation_id, target_path, target_length, target_hashes, target_custom, "
		     "status, reason, created, updated) SELECT e.serial, e.device_id, CAST(");
	sqlb_param(&q, rollout_id ? DIR_DB_S(rollout_id) : DIR_DB_N);
	sqlb_add(&q, " AS TEXT), CAST(");
	sqlb_param(&q, rollout_id ? DIR_DB_I(phase) : DIR_DB_N);
	sqlb_add(&q, " AS BIGINT), CAST(");
	sqlb_param(&q, DIR_DB_S(correlation_id));
	sqlb_add(&q, " AS TEXT), CAST(");
	sqlb_param(&q, DIR_DB_S(t->path));
	sqlb_add(&q, " AS TEXT), CAST(");
	sqlb_param(&q, DIR_DB_I(t->length));
	sqlb_add(&q, " AS BIGINT), CAST(");
	sqlb_param(&q, DIR_DB_S(t->hashes));
	sqlb_add(&q, " AS TEXT), CAST(");
	sqlb_param(&q, DIR_DB_S(t->custom));
	sqlb_add(&q, " AS TEXT), 'assigned', NULL, CAST(");
	sqlb_param(&q, DIR_DB_I(now));
	sqlb_add(&q, " AS BIGINT), CAST(");
	sqlb_param(&q, DIR_DB_I(now));
	sqlb_add(&q, " AS BIGINT) FROM ecus e WHERE e.device_id IN (");
	devset_sql(&q, s);
	sqlb_add(&q, ")");
	ecu_where(&q, f, "e");
	/* SQLite needs the WHERE above to read ON CONFLICT as the upsert clause. */
	sqlb_add(&q, " ON CONFLICT (ecu_serial) DO UPDATE SET device_id = excluded.device_id,"
		     " rollout_id = excluded.rollout_id, phase = excluded.phase,"
		     " correlation_id = excluded.correlation_id,"
		     " target_path = excluded.target_path, target_length = excluded.target_length,"
		     " target_hashes = excluded.target_hashes,"
		     " target_custom = excluded.target_custom, status = excluded.status,"
		     " reason = NULL, created = excluded.created, updated = excluded.updated");
	r = sqlb_exec(&q, db, NULL, n_ecus, err);
	sqlb_clear(&q);
	if (r < 0)
		return r;

	sqlb_init(&q);
	sqlb_add(&q, "UPDATE devices SET assign_gen = assign_gen + 1 WHERE id IN (");
	devset_sql(&q, s);
	sqlb_add(&q, ")");
	r = sqlb_exec(&q, db, NULL, NULL, err);
	sqlb_clear(&q);
	return r;
}

/* The devices the filter selects now (the base of percent phases). */
static int count_selected(dir_db *db, const dir_filter *f, int64_t *out, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	sqlb q;
	int r;

	sqlb_init(&q);
	sqlb_add(&q, "SELECT COUNT(*) FROM devices d WHERE 1 = 1");
	filter_where(&q, f, "d");
	r = sqlb_exec(&q, db, &rows, NULL, err);
	sqlb_clear(&q);
	if (r == 0)
		*out = col_i(rows, 0, 0, 0);
	return r;
}

/* Every listed device must exist: a typo must not silently shrink the set. */
static int check_devices_exist(dir_db *db, const dir_filter *f, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	sqlb q;
	int r;

	if (!f->n_devices)
		return 0;
	sqlb_init(&q);
	sqlb_add(&q, "SELECT v.id FROM (");
	for (size_t i = 0; i < f->n_devices; i++) {
		sqlb_add(&q, i ? " UNION ALL SELECT CAST(" : "SELECT CAST(");
		sqlb_param(&q, DIR_DB_S(f->devices[i]));
		sqlb_add(&q, " AS TEXT) AS id");
	}
	sqlb_add(&q, ") v WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = v.id) LIMIT 1");
	r = sqlb_exec(&q, db, &rows, NULL, err);
	sqlb_clear(&q);
	if (r < 0)
		return r;
	if (dir_db_rows_count(rows))
		return otter_error_set(err, OTTER_E_NOT_FOUND,
				       "device '%s' is not registered: register or pre-register "
				       "it first, or leave it out",
				       dir_db_rows_text(rows, 0, 0));
	return 0;
}

int dir_assign(dir_db *db, const dir_filter *f, const dir_image_target *t,
	       const char *correlation_id, int64_t now, uint64_t *n_devices, uint64_t *n_ecus,
	       otter_error *err)
{
	const devset s = { .filter = f };
	int64_t n = 0;
	int r = check_devices_exist(db, f, err);

	if (r == 0)
		r = count_selected(db, f, &n, err);
	if (r < 0)
		return r;
	if (n == 0)
		return otter_error_set(err, OTTER_E_NOT_FOUND,
				       "no registered device matches the selection");

	r = write_assignments(db, &s, f, t, NULL, 0, correlation_id, now, n_ecus, err);
	if (r < 0)
		return r;
	if (n_devices)
		*n_devices = (uint64_t)n;
	return 0;
}

/* ---- rollouts ---- */

enum {
	RC_ID, RC_STATE, RC_PHASE, RC_NPHASES, RC_SUCCESS, RC_FAILURE, RC_MINREP, RC_CAP,
	RC_BFAILED, RC_BREPORTED, RC_FILTER, RC_PATH, RC_LENGTH, RC_HASHES, RC_CUSTOM, RC_CORR,
	RC_REASON, RC_CREATED, RC_UPDATED,
};
#define ROLLOUT_COLUMNS                                                                            \
	"id, state, phase, n_phases, success_threshold, failure_threshold, min_reports, "          \
	"device_cap, base_failed, base_reported, filter, target_path, target_length, "             \
	"target_hashes, target_custom, correlation_id, state_reason, created, updated"

typedef struct rollout {
	dir_db_rows *rows;
	const char *id, *state;
	int64_t phase, n_phases, success, failure, min_reports, cap, base_failed, base_reported;
	dir_image_target target; /* strings borrowed from rows */
	const char *correlation_id;
	json_t *filter_owner;
	dir_filter filter;
	dir_phase_spec phases[DIR_MAX_PHASES + 1]; /* [1..n_phases] */
} rollout;

static void rollout_clear(rollout *ro)
{
	dir_db_rows_free(ro->rows);
	json_decref(ro->filter_owner);
	filter_free(&ro->filter);
	memset(ro, 0, sizeof(*ro));
}

static int parse_phase_spec(const char *s, dir_phase_spec *out)
{
	char num[24];
	size_t n = s ? strlen(s) : 0;
	uint64_t v;

	if (n == 0 || n >= sizeof(num))
		return -1;
	out->percent = s[n - 1] == '%';
	memcpy(num, s, n - out->percent);
	num[n - out->percent] = 0;
	if (parse_u64_range(num, 1, out->percent ? 100 : 1000000000, &v) < 0)
		return -1;
	out->value = (int64_t)v;
	return 0;
}

/* Loads rollout id; OTTER_E_NOT_FOUND when there is none. */
static int rollout_load(dir_db *db, const char *id, rollout *ro, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *ph = NULL;
	dir_db_param p = DIR_DB_S(id);
	int r;

	memset(ro, 0, sizeof(*ro));
	r = dir_db_exec(db, "SELECT " ROLLOUT_COLUMNS " FROM rollouts WHERE id = $1", &p, 1,
			&ro->rows, NULL, err);
	if (r < 0)
		return r;
	if (dir_db_rows_count(ro->rows) == 0) {
		rollout_clear(ro);
		return otter_error_set(err, OTTER_E_NOT_FOUND, "no rollout '%s'", id);
	}
	ro->id = dir_db_rows_text(ro->rows, 0, RC_ID);
	ro->state = dir_db_rows_text(ro->rows, 0, RC_STATE);
	ro->phase = col_i(ro->rows, 0, RC_PHASE, 1);
	ro->n_phases = col_i(ro->rows, 0, RC_NPHASES, 1);
	ro->success = col_i(ro->rows, 0, RC_SUCCESS, 100);
	ro->failure = col_i(ro->rows, 0, RC_FAILURE, 100);
	ro->min_reports = col_i(ro->rows, 0, RC_MINREP, 1);
	ro->cap = col_i(ro->rows, 0, RC_CAP, 0);
	ro->base_failed = col_i(ro->rows, 0, RC_BFAILED, 0);
	ro->base_reported = col_i(ro->rows, 0, RC_BREPORTED, 0);
	ro->target.path = (char *)dir_db_rows_text(ro->rows, 0, RC_PATH);
	ro->target.length = col_i(ro->rows, 0, RC_LENGTH, 0);
	ro->target.hashes = (char *)dir_db_rows_text(ro->rows, 0, RC_HASHES);
	ro->target.custom = (char *)dir_db_rows_text(ro->rows, 0, RC_CUSTOM);
	ro->correlation_id = dir_db_rows_text(ro->rows, 0, RC_CORR);
	if (!ro->state || ro->n_phases < 1 || ro->n_phases > (int64_t)DIR_MAX_PHASES ||
	    ro->phase < 1 || ro->phase > ro->n_phases) {
		rollout_clear(ro);
		return otter_error_set(err, OTTER_E_FORMAT, "rollout '%s': stored row is corrupt",
				       id);
	}
	r = filter_load(dir_db_rows_text(ro->rows, 0, RC_FILTER), &ro->filter_owner, &ro->filter,
			err);
	if (r == 0)
		r = dir_db_exec(db,
				"SELECT phase, spec FROM rollout_phases WHERE rollout_id = $1 "
				"ORDER BY phase",
				&p, 1, &ph, NULL, err);
	for (size_t i = 0; r == 0 && i < dir_db_rows_count(ph); i++) {
		int64_t k = col_i(ph, i, 0, 0);

		if (k < 1 || k > ro->n_phases ||
		    parse_phase_spec(dir_db_rows_text(ph, i, 1), &ro->phases[k]) < 0)
			r = otter_error_set(err, OTTER_E_FORMAT,
					    "rollout '%s': stored phase %zu is corrupt", id, i + 1);
	}
	if (r < 0)
		rollout_clear(ro);
	return r;
}

typedef struct counts {
	int64_t members, assigned, downloading, installed, failed, superseded, withdrawn;
} counts;

static int64_t *count_slot(counts *c, const char *st)
{
	static const char *const names[] = { "assigned", "downloading", "installed",
					     "failed", "superseded", "withdrawn" };
	int64_t *slots[] = { &c->assigned, &c->downloading, &c->installed,
			     &c->failed, &c->superseded, &c->withdrawn };

	for (size_t i = 0; st && i < ELEMENTSOF(names); i++)
		if (strcmp(st, names[i]) == 0)
			return slots[i];
	return &c->assigned; /* a status this build does not know: not an outcome yet */
}

/*
 * Per-phase device counts of a rollout (c[1..n_phases]): members from rollout_devices; the
 * status of a live member from its assignment rows (failed if any ECU failed, installed when
 * all did, downloading when any fetched, else assigned); a member that left, its frozen one.
 */
static int count_phases(dir_db *db, const rollout *ro, counts *c, otter_error *err)
{
	static const char live_sql[] =
		"SELECT phase, st, COUNT(*) FROM (SELECT a.phase AS phase, a.device_id,"
		" CASE WHEN SUM(CASE WHEN a.status = 'failed' THEN 1 ELSE 0 END) > 0 THEN 'failed'"
		" WHEN SUM(CASE WHEN a.status = 'installed' THEN 1 ELSE 0 END) = COUNT(*)"
		" THEN 'installed'"
		" WHEN SUM(CASE WHEN a.status IN ('downloading', 'installed') THEN 1 ELSE 0 END)"
		" > 0 THEN 'downloading' ELSE 'assigned' END AS st"
		" FROM assignments a WHERE a.rollout_id = $1 GROUP BY a.phase, a.device_id) t"
		" GROUP BY phase, st";
	static const char frozen_sql[] =
		"SELECT phase, status, COUNT(*) FROM rollout_devices WHERE rollout_id = $1"
		" AND status IS NOT NULL GROUP BY phase, status";
	static const char members_sql[] =
		"SELECT phase, COUNT(*) FROM rollout_devices WHERE rollout_id = $1 GROUP BY phase";
	const char *const sqls[] = { members_sql, live_sql, frozen_sql };
	dir_db_param p = DIR_DB_S(ro->id);

	memset(c, 0, sizeof(counts) * (size_t)(ro->n_phases + 1));
	for (size_t k = 0; k < ELEMENTSOF(sqls); k++) {
		_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
		int r = dir_db_exec(db, sqls[k], &p, 1, &rows, NULL, err);

		if (r < 0)
			return r;
		for (size_t i = 0; i < dir_db_rows_count(rows); i++) {
			int64_t ph = col_i(rows, i, 0, 0);

			if (ph < 1 || ph > ro->n_phases)
				continue;
			if (k == 0)
				c[ph].members += col_i(rows, i, 1, 0);
			else
				*count_slot(&c[ph], dir_db_rows_text(rows, i, 1)) +=
					col_i(rows, i, 2, 0);
		}
	}
	return 0;
}

static void totals(const rollout *ro, const counts *c, int64_t *members, int64_t *failed,
		   int64_t *reported)
{
	*members = *failed = *reported = 0;
	for (int64_t i = 1; i <= ro->n_phases; i++) {
		*members += c[i].members;
		*failed += c[i].failed;
		*reported += c[i].failed + c[i].installed;
	}
}

/* How many devices the rollout holds once phase p is full (cumulative, capped). */
static int phase_target(dir_db *db, const rollout *ro, int64_t p, int64_t *out, otter_error *err)
{
	const dir_phase_spec *s = &ro->phases[p];
	int64_t t = s->value;

	if (s->percent) {
		int64_t n;
		int r = count_selected(db, &ro->filter, &n, err);

		if (r < 0)
			return r;
		/* Rounded up: 10% of 5 devices is one device, not none. */
		t = (s->value * n + 99) / 100;
	}
	if (ro->cap > 0 && t > ro->cap)
		t = ro->cap;
	*out = t;
	return 0;
}

/*
 * Adds up to limit devices the filter selects (only device_id when it is not NULL) to phase p
 * of the rollout as one new batch, in device id order, and assigns them. A device joins only
 * when it never was in this rollout and is not live in another running or paused one.
 */
static int add_batch(dir_db *db, const rollout *ro, int64_t p, int64_t limit,
		     const char *device_id, int64_t now, uint64_t *added, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	dir_db_param bp = DIR_DB_S(ro->id);
	uint64_t n = 0;
	int64_t batch;
	sqlb q;
	int r;

	*added = 0;
	if (limit <= 0)
		return 0;
	r = dir_db_exec(db, "UPDATE rollouts SET batch = batch + 1 WHERE id = $1 RETURNING batch",
			&bp, 1, &rows, NULL, err);
	if (r < 0)
		return r;
	batch = col_i(rows, 0, 0, -1);
	if (batch < 1)
		return otter_error_set(err, OTTER_E_FORMAT, "rollout '%s': no batch number", ro->id);

	sqlb_init(&q);
	sqlb_add(&q, "INSERT INTO rollout_devices (rollout_id, device_id, phase, batch, status,"
		     " reason, joined, updated) SELECT CAST(");
	sqlb_param(&q, DIR_DB_S(ro->id));
	sqlb_add(&q, " AS TEXT), d.id, CAST(");
	sqlb_param(&q, DIR_DB_I(p));
	sqlb_add(&q, " AS BIGINT), CAST(");
	sqlb_param(&q, DIR_DB_I(batch));
	sqlb_add(&q, " AS BIGINT), NULL, NULL, CAST(");
	sqlb_param(&q, DIR_DB_I(now));
	sqlb_add(&q, " AS BIGINT), CAST(");
	sqlb_param(&q, DIR_DB_I(now));
	sqlb_add(&q, " AS BIGINT) FROM devices d WHERE 1 = 1");
	if (device_id) {
		sqlb_add(&q, " AND d.id = ");
		sqlb_param(&q, DIR_DB_S(device_id));
	}
	filter_where(&q, &ro->filter, "d");
	/* Only devices with an ECU to assign: a member without one could never install. */
	sqlb_add(&q, " AND EXISTS (SELECT 1 FROM ecus se WHERE se.device_id = d.id");
	ecu_where(&q, &ro->filter, "se");
	sqlb_add(&q, ") AND NOT EXISTS (SELECT 1 FROM rollout_devices x WHERE x.device_id = d.id"
		     " AND x.rollout_id = ");
	sqlb_param(&q, DIR_DB_S(ro->id));
	sqlb_add(&q, ") AND NOT EXISTS (SELECT 1 FROM rollout_devices x JOIN rollouts y"
		     " ON y.id = x.rollout_id WHERE x.device_id = d.id AND x.status IS NULL"
		     " AND y.state IN ('running', 'paused')) ORDER BY d.id LIMIT ");
	sqlb_param(&q, DIR_DB_I(limit));
	r = sqlb_exec(&q, db, NULL, &n, err);
	sqlb_clear(&q);
	if (r < 0 || n == 0)
		return r;
	*added = n;

	const devset s = { .rollout_id = ro->id, .batch = batch };
	return write_assignments(db, &s, &ro->filter, &ro->target, ro->id, p, ro->correlation_id,
				 now, NULL, err);
}

/* Phase p starts: the rollout takes devices until it holds the phase's target. */
static int start_phase(dir_db *db, const rollout *ro, int64_t p, int64_t members, int64_t now,
		       otter_error *err)
{
	dir_db_param sp[] = { DIR_DB_I(now), DIR_DB_S(ro->id), DIR_DB_I(p) };
	int64_t target;
	uint64_t added;
	int r = phase_target(db, ro, p, &target, err);

	if (r == 0)
		r = add_batch(db, ro, p, target - members, NULL, now, &added, err);
	if (r == 0)
		r = dir_db_exec(db,
				"UPDATE rollout_phases SET started = $1 WHERE rollout_id = $2 AND "
				"phase = $3 AND started IS NULL",
				sp, ELEMENTSOF(sp), NULL, NULL, err);
	return r;
}

/*
 * The rollout's rules, applied until nothing changes: pause when the failure rule fires;
 * advance when the current phase is done (its success threshold is met, or it got no device
 * because earlier phases already hold its target); complete after the last phase.
 */
static int evaluate(dir_db *db, const char *id, int64_t now, otter_error *err)
{
	for (unsigned round = 0; round <= DIR_MAX_PHASES; round++) {
		rollout ro;
		counts c[DIR_MAX_PHASES + 1];
		int64_t members, failed, reported, target, p, active;
		uint64_t changed = 0;
		bool done;
		int r = rollout_load(db, id, &ro, err);

		if (r == OTTER_E_NOT_FOUND) {
			otter_error_clear(err);
			return 0;
		}
		if (r < 0)
			return r;
		if (strcmp(ro.state, "running") != 0) {
			rollout_clear(&ro);
			return 0;
		}
		p = ro.phase;
		r = count_phases(db, &ro, c, err);
		if (r < 0)
			goto out;
		totals(&ro, c, &members, &failed, &reported);

		/* Failure rule: failed / reported since the last resume (or retry). */
		failed -= ro.base_failed;
		reported -= ro.base_reported;
		if (failed < 0)
			failed = 0;
		if (reported < failed)
			reported = failed;
		if (reported > 0 && reported >= ro.min_reports &&
		    failed * 100 > ro.failure * reported) {
			char why[160];
			dir_db_param pp[] = { DIR_DB_S(strfmt(why, sizeof(why),
							      "failure rate %" PRId64 "/%" PRId64
							      " reports is above the threshold "
							      "%" PRId64 "%%",
							      failed, reported, ro.failure)),
					      DIR_DB_I(now), DIR_DB_S(id) };

			r = dir_db_exec(db,
					"UPDATE rollouts SET state = 'paused', state_reason = $1, "
					"updated = $2 WHERE id = $3 AND state = 'running'",
					pp, ELEMENTSOF(pp), NULL, NULL, err);
			goto out;
		}

		active = c[p].members - c[p].superseded - c[p].withdrawn;
		if (active > 0) {
			done = c[p].installed * 100 >= ro.success * active;
		} else {
			r = phase_target(db, &ro, p, &target, err);
			if (r < 0)
				goto out;
			done = members > 0 && members >= target;
		}
		if (!done)
			goto out;

		dir_db_param cp[] = { DIR_DB_I(now), DIR_DB_S(id), DIR_DB_I(p) };
		r = dir_db_exec(db,
				"UPDATE rollout_phases SET completed = $1 WHERE rollout_id = $2 AND "
				"phase = $3 AND completed IS NULL",
				cp, ELEMENTSOF(cp), NULL, NULL, err);
		if (r < 0)
			goto out;
		if (p == ro.n_phases) {
			r = dir_db_exec(db,
					"UPDATE rollouts SET state = 'completed', updated = $1 "
					"WHERE id = $2 AND phase = $3 AND state = 'running'",
					cp, ELEMENTSOF(cp), NULL, NULL, err);
			goto out;
		}
		/* Advances once: a second evaluation of the same state finds phase != p. */
		r = dir_db_exec(db,
				"UPDATE rollouts SET phase = phase + 1, updated = $1 WHERE id = $2 "
				"AND phase = $3 AND state = 'running'",
				cp, ELEMENTSOF(cp), NULL, &changed, err);
		if (r == 0 && changed == 1)
			r = start_phase(db, &ro, p + 1, members, now, err);
out:
		rollout_clear(&ro);
		if (r < 0 || changed != 1)
			return r;
	}
	return 0;
}

int dir_rollout_on_report(dir_db *db, const char *rollout_id, int64_t now, otter_error *err)
{
	if (!rollout_id || !*rollout_id)
		return 0;
	return evaluate(db, rollout_id, now, err);
}

int dir_rollout_on_register(dir_db *db, const char *device_id, int64_t now, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *ids = NULL;
	int r = dir_db_exec(db,
			    "SELECT id FROM rollouts WHERE state = 'running' ORDER BY created, id",
			    NULL, 0, &ids, NULL, err);

	for (size_t i = 0; r == 0 && i < dir_db_rows_count(ids); i++) {
		counts c[DIR_MAX_PHASES + 1];
		int64_t members, failed, reported, target;
		uint64_t added = 0;
		rollout ro;

		r = rollout_load(db, dir_db_rows_text(ids, i, 0), &ro, err);
		if (r < 0)
			break;
		r = count_phases(db, &ro, c, err);
		if (r == 0) {
			totals(&ro, c, &members, &failed, &reported);
			r = phase_target(db, &ro, ro.phase, &target, err);
		}
		/* Joins the current phase while that phase (and the cap) has room; otherwise
		 * the device waits for the next phase start, which takes it like any other. */
		if (r == 0 && members < target)
			r = add_batch(db, &ro, ro.phase, 1, device_id, now, &added, err);
		rollout_clear(&ro);
		if (added)
			break;
	}
	return r;
}

int dir_rollout_create(dir_db *db, const dir_rollout_spec *s, const char *correlation_id,
		       int64_t now, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	_cleanup_free_ char *filter_text = NULL;
	json_t *fj = filter_json(&s->filter);
	uint64_t changed = 0;
	sqlb q;
	int r;

	if (!fj)
		return oom(err);
	filter_text = json_dumps(fj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(fj);
	if (!filter_text)
		return oom(err);

	dir_db_param ep = DIR_DB_S(s->id);
	r = dir_db_exec(db, "SELECT 1 FROM rollouts WHERE id = $1", &ep, 1, &rows, NULL, err);
	if (r < 0)
		return r;
	if (dir_db_rows_count(rows))
		return otter_error_set(err, OTTER_E_EXISTS,
				       "rollout '%s' exists already: choose another id", s->id);

	r = check_devices_exist(db, &s->filter, err);
	if (r < 0)
		return r;
	/* A device is in at most one running or paused rollout: refuse rather than take it
	 * from the other (cancel that one first, or leave the device out). */
	sqlb_init(&q);
	sqlb_add(&q, "SELECT x.device_id, x.rollout_id FROM rollout_devices x JOIN rollouts y ON"
		     " y.id = x.rollout_id WHERE x.status IS NULL AND y.state IN ('running',"
		     " 'paused') AND x.device_id IN (SELECT d.id FROM devices d WHERE 1 = 1");
	filter_where(&q, &s->filter, "d");
	sqlb_add(&q, ") ORDER BY x.device_id LIMIT 1");
	rows = dir_db_rows_free(rows);
	r = sqlb_exec(&q, db, &rows, NULL, err);
	sqlb_clear(&q);
	if (r < 0)
		return r;
	if (dir_db_rows_count(rows))
		return otter_error_set(err, OTTER_E_EXISTS,
				       "device '%s' is in rollout '%s', which is still active: "
				       "cancel that rollout or leave the device out of this one",
				       dir_db_rows_text(rows, 0, 0), dir_db_rows_text(rows, 0, 1));

	dir_db_param ip[] = {
		DIR_DB_S(s->id),
		DIR_DB_S(s->target->path),
		DIR_DB_I(s->target->length),
		DIR_DB_S(s->target->hashes),
		DIR_DB_S(s->target->custom),
		DIR_DB_S(filter_text),
		DIR_DB_S(correlation_id),
		DIR_DB_I(s->n_phases),
		DIR_DB_I(s->success_threshold),
		DIR_DB_I(s->failure_threshold),
		DIR_DB_I(s->min_reports),
		s->device_cap > 0 ? DIR_DB_I(s->device_cap) : DIR_DB_N,
		DIR_DB_I(now),
	};
	r = dir_db_exec(db,
			"INSERT INTO rollouts (id, target_path, target_length, target_hashes, "
			"target_custom, filter, correlation_id, state, state_reason, phase, "
			"n_phases, success_threshold, failure_threshold, min_reports, device_cap, "
			"created, updated) VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', NULL, 1, "
			"$8, $9, $10, $11, $12, $13, $13)",
			ip, ELEMENTSOF(ip), NULL, &changed, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n_phases; i++) {
		char spec[32];
		dir_db_param pp[] = {
			DIR_DB_S(s->id),
			DIR_DB_I(i + 1),
			DIR_DB_S(strfmt(spec, sizeof(spec), "%" PRId64 "%s", s->phases[i].value,
					s->phases[i].percent ? "%" : "")),
		};

		r = dir_db_exec(db,
				"INSERT INTO rollout_phases (rollout_id, phase, spec) VALUES ($1, "
				"$2, $3)",
				pp, ELEMENTSOF(pp), NULL, NULL, err);
		if (r < 0)
			return r;
	}

	rollout ro;
	r = rollout_load(db, s->id, &ro, err);
	if (r < 0)
		return r;
	r = start_phase(db, &ro, 1, 0, now, err);
	rollout_clear(&ro);
	return r < 0 ? r : evaluate(db, s->id, now, err);
}

/* The failure rule starts afresh: it looks at reports made after this point. */
static int rebaseline(dir_db *db, const char *id, int64_t now, otter_error *err)
{
	counts c[DIR_MAX_PHASES + 1];
	int64_t members = 0, failed = 0, reported = 0;
	rollout ro;
	int r = rollout_load(db, id, &ro, err);

	if (r < 0)
		return r;
	r = count_phases(db, &ro, c, err);
	if (r == 0)
		totals(&ro, c, &members, &failed, &reported);
	rollout_clear(&ro);
	if (r < 0)
		return r;

	dir_db_param p[] = { DIR_DB_I(failed), DIR_DB_I(reported), DIR_DB_I(now), DIR_DB_S(id) };
	return dir_db_exec(db,
			   "UPDATE rollouts SET base_failed = $1, base_reported = $2, updated = $3 "
			   "WHERE id = $4",
			   p, ELEMENTSOF(p), NULL, NULL, err);
}

/* The state change did not apply: say why (no such rollout, or its state). */
static int refuse(dir_db *db, const char *id, const char *what, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	dir_db_param p = DIR_DB_S(id);
	int r = dir_db_exec(db, "SELECT state FROM rollouts WHERE id = $1", &p, 1, &rows, NULL,
			    err);

	if (r < 0)
		return r;
	if (!dir_db_rows_count(rows))
		return otter_error_set(err, OTTER_E_NOT_FOUND, "no rollout '%s'", id);
	return otter_error_set(err, OTTER_E_STATE, "cannot %s rollout '%s': it is %s", what, id,
			       dir_db_rows_text(rows, 0, 0));
}

int dir_rollout_change(dir_db *db, const char *id, dir_rollout_op op, int64_t now, uint64_t *n,
		       otter_error *err)
{
	dir_db_param p[] = { DIR_DB_I(now), DIR_DB_S(id) };
	uint64_t changed = 0, count = 0;
	int r;

	switch (op) {
	case DIR_ROLLOUT_PAUSE:
		r = dir_db_exec(db,
				"UPDATE rollouts SET state = 'paused', state_reason = 'paused by "
				"the operator', updated = $1 WHERE id = $2 AND state = 'running'",
				p, ELEMENTSOF(p), NULL, &changed, err);
		if (r == 0 && changed == 0)
			r = refuse(db, id, "pause", err);
		break;
	case DIR_ROLLOUT_RESUME:
		r = dir_db_exec(db,
				"UPDATE rollouts SET state = 'running', state_reason = NULL, "
				"updated = $1 WHERE id = $2 AND state = 'paused'",
				p, ELEMENTSOF(p), NULL, &changed, err);
		if (r == 0 && changed == 0)
			r = refuse(db, id, "resume", err);
		if (r == 0)
			r = rebaseline(db, id, now, err);
		if (r == 0)
			r = evaluate(db, id, now, err);
		break;
	case DIR_ROLLOUT_CANCEL:
		r = dir_db_exec(db,
				"UPDATE rollouts SET state = 'cancelled', state_reason = "
				"'cancelled by the operator', updated = $1 WHERE id = $2 AND "
				"state IN ('running', 'paused', 'completed')",
				p, ELEMENTSOF(p), NULL, &changed, err);
		if (r == 0 && changed == 0)
			r = refuse(db, id, "cancel", err);
		/* Undelivered rows go (the device's next targets no longer name them); a
		 * device that fetched them already finishes and reports. */
		if (r == 0)
			r = dir_db_exec(db,
					"UPDATE rollout_devices SET status = 'withdrawn', updated = $1 "
					"WHERE rollout_id = $2 AND status IS NULL AND NOT EXISTS "
					"(SELECT 1 FROM assignments a WHERE a.device_id = "
					"rollout_devices.device_id AND a.rollout_id = $2 AND "
					"a.status <> 'assigned')",
					p, ELEMENTSOF(p), NULL, &count, err);
		if (r == 0)
			r = dir_db_exec(db,
					"UPDATE devices SET assign_gen = assign_gen + 1 WHERE id IN "
					"(SELECT a.device_id FROM assignments a WHERE a.rollout_id = "
					"$1 AND a.status = 'assigned')",
					&p[1], 1, NULL, NULL, err);
		if (r == 0)
			r = dir_db_exec(db,
					"DELETE FROM assignments WHERE rollout_id = $1 AND status = "
					"'assigned'",
					&p[1], 1, NULL, NULL, err);
		break;
	case DIR_ROLLOUT_RETRY_FAILED:
		r = dir_db_exec(db,
				"UPDATE rollouts SET updated = $1 WHERE id = $2 AND state <> "
				"'cancelled'",
				p, ELEMENTSOF(p), NULL, &changed, err);
		if (r == 0 && changed == 0)
			r = refuse(db, id, "retry the failed devices of", err);
		if (r == 0)
			r = dir_db_exec(db,
					"UPDATE devices SET assign_gen = assign_gen + 1 WHERE id IN "
					"(SELECT a.device_id FROM assignments a WHERE a.rollout_id = "
					"$1 AND a.status = 'failed')",
					&p[1], 1, NULL, &count, err);
		if (r == 0)
			r = dir_db_exec(db,
					"UPDATE assignments SET status = 'assigned', reason = NULL, "
					"updated = $1 WHERE rollout_id = $2 AND status = 'failed'",
					p, ELEMENTSOF(p), NULL, NULL, err);
		if (r == 0)
			r = rebaseline(db, id, now, err);
		break;
	default:
		r = otter_error_set(err, OTTER_E_INVALID, "unknown rollout operation %d", (int)op);
	}
	if (r == 0 && n)
		*n = count;
	return r;
}

/* ---- reports ---- */

static const char *const phase_count_names[] = { "devices",   "assigned",   "downloading",
						  "installed", "failed",     "superseded",
						  "withdrawn" };

static int set_counts(json_t *o, const counts *c)
{
	const int64_t v[] = { c->members,   c->assigned,   c->downloading, c->installed,
			      c->failed,    c->superseded, c->withdrawn };
	int r = 0;

	for (size_t i = 0; i < ELEMENTSOF(v); i++)
		r |= json_object_set_new(o, phase_count_names[i], json_integer(v[i]));
	return r;
}

static json_t *int_or_null(const dir_db_rows *rows, size_t row, size_t col)
{
	return dir_db_rows_text(rows, row, col) ? json_integer(col_i(rows, row, col, 0))
						: json_null();
}

static json_t *text_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Failure reasons per phase, most frequent first: [{"reason", "devices"}]. */
static int add_reasons(dir_db *db, const rollout *ro, json_t *phases, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	dir_db_param p = DIR_DB_S(ro->id);
	int r = dir_db_exec(db,
			    "SELECT phase, reason, SUM(n) AS total FROM ("
			    "SELECT a.phase AS phase, COALESCE(a.reason, '') AS reason, COUNT(*) AS n"
			    " FROM assignments a WHERE a.rollout_id = $1 AND a.status = 'failed'"
			    " GROUP BY a.phase, a.reason UNION ALL"
			    " SELECT phase, COALESCE(reason, '') AS reason, COUNT(*) AS n"
			    " FROM rollout_devices WHERE rollout_id = $1 AND status = 'failed'"
			    " GROUP BY phase, reason) t GROUP BY phase, reason"
			    " ORDER BY phase, total DESC, reason LIMIT 1000",
			    &p, 1, &rows, NULL, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < dir_db_rows_count(rows); i++) {
		int64_t ph = col_i(rows, i, 0, 0);
		json_t *list = json_object_get(json_array_get(phases, (size_t)(ph - 1)),
					       "failure_reasons");

		if (ph < 1 || ph > ro->n_phases || !list)
			continue;
		if (json_array_append_new(list, json_pack("{s:s, s:I}", "reason",
							  dir_db_rows_text(rows, i, 1), "count",
							  (json_int_t)col_i(rows, i, 2, 0))) < 0)
			return oom(err);
	}
	return 0;
}

static json_t *rollout_summary(const dir_db_rows *rows, size_t i)
{
	return json_pack("{s:s, s:s, s:o, s:I, s:I, s:s, s:s, s:I, s:I}", "id",
			 dir_db_rows_text(rows, i, RC_ID), "state",
			 dir_db_rows_text(rows, i, RC_STATE), "state_reason",
			 text_or_null(dir_db_rows_text(rows, i, RC_REASON)), "phase",
			 (json_int_t)col_i(rows, i, RC_PHASE, 0), "n_phases",
			 (json_int_t)col_i(rows, i, RC_NPHASES, 0), "target",
			 dir_db_rows_text(rows, i, RC_PATH), "correlation_id",
			 dir_db_rows_text(rows, i, RC_CORR), "created",
			 (json_int_t)col_i(rows, i, RC_CREATED, 0), "updated",
			 (json_int_t)col_i(rows, i, RC_UPDATED, 0));
}

int dir_rollout_status(dir_db *db, const char *id, json_t **out, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *ph = NULL;
	counts c[DIR_MAX_PHASES + 1], all = { 0 };
	int64_t members, failed, reported;
	json_t *o = NULL, *phases = NULL;
	rollout ro;
	int r = rollout_load(db, id, &ro, err);

	if (r < 0)
		return r;
	r = count_phases(db, &ro, c, err);
	if (r < 0)
		goto out;
	dir_db_param p = DIR_DB_S(id);
	r = dir_db_exec(db,
			"SELECT phase, spec, started, completed FROM rollout_phases WHERE "
			"rollout_id = $1 ORDER BY phase",
			&p, 1, &ph, NULL, err);
	if (r < 0)
		goto out;
	phases = json_array();
	o = rollout_summary(ro.rows, 0);
	if (!o || !phases)
		goto nomem;
	for (size_t i = 0; i < dir_db_rows_count(ph); i++) {
		int64_t k = col_i(ph, i, 0, 0);
		json_t *e;

		if (k < 1 || k > ro.n_phases)
			continue;
		e = json_pack("{s:I, s:s, s:o, s:o, s:[]}", "phase", (json_int_t)k, "spec",
			      dir_db_rows_text(ph, i, 1), "started", int_or_null(ph, i, 2),
			      "completed", int_or_null(ph, i, 3), "failure_reasons");
		if (!e || set_counts(e, &c[k]) < 0 || json_array_append_new(phases, e) < 0)
			goto nomem;
		all.members += c[k].members;
		all.assigned += c[k].assigned;
		all.downloading += c[k].downloading;
		all.installed += c[k].installed;
		all.failed += c[k].failed;
		all.superseded += c[k].superseded;
		all.withdrawn += c[k].withdrawn;
	}
	r = add_reasons(db, &ro, phases, err);
	if (r < 0)
		goto out;
	totals(&ro, c, &members, &failed, &reported);
	json_t *tot = json_object(), *fr;
	if (!tot || set_counts(tot, &all) < 0 || json_object_set_new(o, "totals", tot) < 0)
		goto nomem;
	fr = json_pack("{s:I, s:I, s:I}", "failed", (json_int_t)(failed - ro.base_failed),
		       "reported", (json_int_t)(reported - ro.base_reported), "min_reports",
		       (json_int_t)ro.min_reports);
	if (json_object_set_new(o, "failure_window", fr) < 0 ||
	    json_object_set_new(o, "phases", phases) < 0 ||
	    json_object_set(o, "filter", ro.filter_owner) < 0 ||
	    json_object_set_new(o, "success_threshold", json_integer(ro.success)) < 0 ||
	    json_object_set_new(o, "failure_threshold", json_integer(ro.failure)) < 0 ||
	    json_object_set_new(o, "device_cap",
				ro.cap > 0 ? json_integer(ro.cap) : json_null()) < 0 ||
	    json_object_set_new(o, "target_length", json_integer(ro.target.length)) < 0) {
		phases = NULL;
		goto nomem;
	}
	phases = NULL;
	*out = o;
	o = NULL;
	goto out;
nomem:
	r = oom(err);
out:
	json_decref(phases);
	json_decref(o);
	rollout_clear(&ro);
	return r;
}

int dir_rollout_list(dir_db *db, const char *state, int64_t limit, int64_t offset, json_t **out,
		     otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *rows = NULL;
	_cleanup_(dir_db_rows_freep) dir_db_rows *cnt = NULL;
	json_t *o, *list;
	sqlb q;
	int r;

	sqlb_init(&q);
	sqlb_add(&q, "SELECT " ROLLOUT_COLUMNS ", (SELECT COUNT(*) FROM rollout_devices x WHERE "
		     "x.rollout_id = rollouts.id) FROM rollouts WHERE 1 = 1");
	if (state) {
		sqlb_add(&q, " AND state = ");
		sqlb_param(&q, DIR_DB_S(state));
	}
	sqlb_add(&q, " ORDER BY created DESC, id LIMIT ");
	sqlb_param(&q, DIR_DB_I(limit));
	sqlb_add(&q, " OFFSET ");
	sqlb_param(&q, DIR_DB_I(offset));
	r = sqlb_exec(&q, db, &rows, NULL, err);
	sqlb_clear(&q);
	if (r < 0)
		return r;
	dir_db_param sp = DIR_DB_S(state);
	r = dir_db_exec(db,
			state ? "SELECT COUNT(*) FROM rollouts WHERE state = $1"
			      : "SELECT COUNT(*) FROM rollouts",
			&sp, state ? 1 : 0, &cnt, NULL, err);
	if (r < 0)
		return r;
	list = json_array();
	o = json_pack("{s:o, s:I, s:I, s:I}", "rollouts", list, "total",
		      (json_int_t)col_i(cnt, 0, 0, 0), "limit", (json_int_t)limit, "offset",
		      (json_int_t)offset);
	if (!o)
		return oom(err);
	for (size_t i = 0; i < dir_db_rows_count(rows); i++) {
		json_t *e = rollout_summary(rows, i);

		if (!e || json_object_set_new(e, "devices",
					      json_integer(col_i(rows, i, RC_UPDATED + 1, 0))) < 0 ||
		    json_array_append_new(list, e) < 0) {
			json_decref(o);
			return oom(err);
		}
	}
	*out = o;
	return 0;
}

/* ---- fleet ---- */

enum { FC_DEV, FC_SERIAL, FC_HW, FC_PRIMARY, FC_IPATH, FC_ILEN, FC_IHASHES, FC_IAT,
       FC_APATH, FC_ASTATUS, FC_AREASON, FC_AROLLOUT, FC_APHASE, FC_ACORR, FC_AUPDATED };

static json_t *json_text_or_null(const char *s, bool parse)
{
	json_t *v;

	if (!s)
		return json_null();
	if (!parse)
		return json_string(s);
	v = json_loads(s, 0, NULL);
	return v ? v : json_string(s);
}

static json_t *fleet_ecu(const dir_db_rows *rows, size_t i)
{
	json_t *e = json_pack("{s:s, s:s, s:b}", "serial", dir_db_rows_text(rows, i, FC_SERIAL),
			      "hardware_id", dir_db_rows_text(rows, i, FC_HW), "primary",
			      col_i(rows, i, FC_PRIMARY, 0) != 0);
	json_t *inst = json_null(), *asg = json_null();

	if (!e)
		return NULL;
	if (dir_db_rows_text(rows, i, FC_IPATH))
		inst = json_pack("{s:s, s:o, s:o, s:o}", "path",
				 dir_db_rows_text(rows, i, FC_IPATH), "length",
				 int_or_null(rows, i, FC_ILEN), "hashes",
				 json_text_or_null(dir_db_rows_text(rows, i, FC_IHASHES), true),
				 "at", int_or_null(rows, i, FC_IAT));
	if (dir_db_rows_text(rows, i, FC_APATH))
		asg = json_pack("{s:s, s:s, s:o, s:o, s:o, s:s, s:o}", "target",
				dir_db_rows_text(rows, i, FC_APATH), "status",
				dir_db_rows_text(rows, i, FC_ASTATUS), "reason",
				json_text_or_null(dir_db_rows_text(rows, i, FC_AREASON), false),
				"rollout",
				json_text_or_null(dir_db_rows_text(rows, i, FC_AROLLOUT), false),
				"phase", int_or_null(rows, i, FC_APHASE), "correlation_id",
				dir_db_rows_text(rows, i, FC_ACORR), "updated",
				int_or_null(rows, i, FC_AUPDATED));
	if (!inst || !asg || json_object_set_new(e, "installed", inst) < 0 ||
	    json_object_set_new(e, "assignment", asg) < 0) {
		json_decref(e);
		return NULL;
	}
	return e;
}

int dir_fleet(dir_db *db, const char *tag, const char *hardware_id, int64_t limit,
	      int64_t offset, json_t **out, otter_error *err)
{
	_cleanup_(dir_db_rows_freep) dir_db_rows *devs = NULL;
	_cleanup_(dir_db_rows_freep) dir_db_rows *ecus = NULL;
	_cleanup_(dir_db_rows_freep) dir_db_rows *tags = NULL;
	_cleanup_free_ const char **ids = NULL;
	const char *tl[1] = { tag }, *hl[1] = { hardware_id };
	dir_filter f = { .tags = tl, .n_tags = tag ? 1 : 0,
			 .hardware_ids = hl, .n_hardware_ids = hardware_id ? 1 : 0 };
	json_t *o = NULL, *list, *by_id = NULL;
	int64_t total = 0;
	size_t n;
	sqlb q;
	int r;

	sqlb_init(&q);
	sqlb_add(&q, "SELECT d.id, d.created, d.last_seen, d.assign_gen FROM devices d WHERE 1 = 1");
	filter_where(&q, &f, "d");
	sqlb_add(&q, " ORDER BY d.id LIMIT ");
	sqlb_param(&q, DIR_DB_I(limit));
	sqlb_add(&q, " OFFSET ");
	sqlb_param(&q, DIR_DB_I(offset));
	r = sqlb_exec(&q, db, &devs, NULL, err);
	sqlb_clear(&q);
	if (r == 0)
		r = count_selected(db, &f, &total, err);
	if (r < 0)
		return r;

	n = dir_db_rows_count(devs);
	ids = otter_calloc(n + 1, sizeof(*ids));
	if (!ids)
		return oom(err);
	for (size_t i = 0; i < n; i++)
		ids[i] = dir_db_rows_text(devs, i, 0);
	if (n) {
		/* The page's ECUs (with their assignment) and tags: two statements a page. */
		sqlb_init(&q);
		sqlb_add(&q, "SELECT e.device_id, e.serial, e.hardware_id, e.is_primary, "
			     "e.installed_path, e.installed_length, e.installed_hashes, "
			     "e.installed_at, a.target_path, a.status, a.reason, a.rollout_id, "
			     "a.phase, a.correlation_id, a.updated FROM ecus e LEFT JOIN "
			     "assignments a ON a.ecu_serial = e.serial WHERE e.device_id IN ");
		sqlb_list(&q, ids, n);
		sqlb_add(&q, " ORDER BY e.is_primary DESC, e.serial");
		r = sqlb_exec(&q, db, &ecus, NULL, err);
		sqlb_clear(&q);
		if (r < 0)
			return r;
		sqlb_init(&q);
		sqlb_add(&q, "SELECT device_id, tag FROM device_tags WHERE device_id IN ");
		sqlb_list(&q, ids, n);
		sqlb_add(&q, " ORDER BY tag");
		r = sqlb_exec(&q, db, &tags, NULL, err);
		sqlb_clear(&q);
		if (r < 0)
			return r;
	}
	list = json_array();
	by_id = json_object();
	o = json_pack("{s:o, s:I, s:I, s:I}", "devices", list, "total", (json_int_t)total,
		      "limit", (json_int_t)limit, "offset", (json_int_t)offset);
	if (!o || !by_id)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_pack("{s:s, s:o, s:o, s:I, s:[], s:[]}", "id", ids[i], "created",
				      int_or_null(devs, i, 1), "last_seen",
				      int_or_null(devs, i, 2), "assign_gen",
				      (json_int_t)col_i(devs, i, 3, 0), "tags", "ecus");

		if (!d || json_array_append_new(list, d) < 0 || json_object_set(by_id, ids[i], d) < 0)
			goto nomem;
	}
	for (size_t k = 0; k < dir_db_rows_count(tags); k++) {
		json_t *d = json_object_get(by_id, dir_db_rows_text(tags, k, 0));

		if (d && json_array_append_new(json_object_get(d, "tags"),
					       json_string(dir_db_rows_text(tags, k, 1))) < 0)
			goto nomem;
	}
	for (size_t j = 0; j < dir_db_rows_count(ecus); j++) {
		json_t *d = json_object_get(by_id, dir_db_rows_text(ecus, j, 0)), *e;

		if (!d)
			continue;
		e = fleet_ecu(ecus, j);
		if (!e || json_array_append_new(json_object_get(d, "ecus"), e) < 0)
			goto nomem;
	}
	json_decref(by_id);
	*out = o;
	return 0;
nomem:
	json_decref(by_id);
	json_decref(o);
	return oom(err);
}
