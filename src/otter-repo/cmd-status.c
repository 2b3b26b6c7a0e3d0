/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-repo status [--json] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otter-repo.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(repo, repo_free)

static int cmp_roles(const void *a, const void *b)
{
	static const char *const order[] = {"root", "targets", "snapshot", "timestamp"};
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int ix = 4, iy = 4;

	for (int i = 0; i < 4; i++) {
		if (strcmp(x, order[i]) == 0)
			ix = i;
		if (strcmp(y, order[i]) == 0)
			iy = i;
	}
	return ix != iy ? ix - iy : strcmp(x, y);
}

static json_t *strv_json(char **v)
{
	json_t *a = json_array();

	for (char **p = v; a && p && *p; p++)
		json_array_append_new(a, json_string(*p));
	return a;
}

/* Adds one published role to the report. */
static int role_entry(repo *r, const char *name, const otter_repo_metadata *md, int64_t margin_opt,
		      json_t *roles, json_t *warnings, otter_error *err)
{
	const otter_repo_keyring *ring;
	const otter_repo_rolekeys *keys;
	int64_t margin = margin_opt ? margin_opt : otter_repo_config_margin(&r->cfg, name);
	int64_t left = otter_repo_metadata_expires(md) - r->now;
	bool expired = left <= 0, warn = left <= margin;
	json_t *e, *ids = json_array();
	char exp[32], w[400], m[32];

	utc_format(otter_repo_metadata_expires(md), exp);
	e = json_pack("{s:I, s:s, s:I, s:b, s:b}", "version",
		      (json_int_t)otter_repo_metadata_version(md), "expires", exp, "expires_in",
		      (json_int_t)left, "expired", expired, "warning", warn);
	if (!e || !ids)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (repo_role_signers(r, name, &ring, &keys, NULL, NULL) == 0) {
		for (size_t i = 0; i < otter_repo_rolekeys_count(keys); i++)
			json_array_append_new(ids, json_string(otter_repo_rolekeys_keyid(keys, i)));
		json_object_set_new(e, "threshold",
				    json_integer((json_int_t)otter_repo_rolekeys_threshold(keys)));
	}
	json_object_set_new(e, "keyids", ids);
	json_object_set_new(roles, name, e);
	if (warn) {
		otter_repo_format_duration(margin, m);
		if (expired)
			strfmt(w, sizeof(w),
			       "%s version %" PRIu64 " EXPIRED at %s: devices reject it", name,
			       otter_repo_metadata_version(md), exp);
		else
			strfmt(w, sizeof(w),
			       "%s version %" PRIu64 " expires %s, within its %s margin", name,
			       otter_repo_metadata_version(md), exp, m);
		json_array_append_new(warnings, json_string(w));
	}
	return 0;
}

static int staged_entry(repo *r, repo_role *role, json_t *staged, otter_error *err)
{
	sig_report reps[2];
	size_t n = 0;
	uint64_t version = 0;
	int64_t exp = 0;
	bool ready = true;
	json_t *e, *sets;
	char when[32];

	otter_repo_signed_get(repo_role_signed(role), &version, &exp, NULL);
	utc_format(exp, when);
	sets = json_array();
	e = json_pack("{s:I, s:s}", "version", (json_int_t)version, "expires", when);
	if (!e || !sets)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (repo_staged_signatures(r, role, reps, &n, err) < 0) {
		json_object_set_new(e, "error", json_string(err->msg));
		otter_error_clear(err);
		ready = false;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_pack("{s:s, s:I, s:I, s:o, s:o}", "keys", reps[i].label,
				      "threshold", (json_int_t)reps[i].threshold, "valid",
				      (json_int_t)reps[i].valid, "signed",
				      strv_json(reps[i].signed_ids), "missing",
				      strv_json(reps[i].missing_ids));
		if (s)
			json_array_append_new(sets, s);
		if (reps[i].valid < reps[i].threshold)
			ready = false;
	}
	sig_reports_clear(reps, n);
	json_object_set_new(e, "signatures", sets);
	json_object_set_new(e, "ready", json_boolean(ready && exp > r->now));
	json_object_set_new(staged, role->name, e);
	return 0;
}

static void print_text(const json_t *rep)
{
	const json_t *roles = json_object_get(rep, "roles"), *staged = json_object_get(rep, "staged");
	const char *name, **names;
	json_t *e;
	size_t n, i;

	printf("repository %s (%s)\n", json_string_value(json_object_get(rep, "repository")),
	       json_is_true(json_object_get(rep, "consistent_snapshot"))
		       ? "consistent snapshots"
		       : "no consistent snapshots");
	n = json_object_size(roles);
	names = otter_calloc(n + json_object_size(staged) + 1, sizeof(*names));
	if (!names)
		return;
	printf("\npublished:\n  %-20s %8s  %-22s %-10s %s\n", "ROLE", "VERSION", "EXPIRES", "IN",
	       "THRESHOLD");
	i = 0;
	json_object_foreach((json_t *)roles, name, e)
		names[i++] = name;
	qsort(names, n, sizeof(*names), cmp_roles);
	for (i = 0; i < n; i++) {
		char in[32];
		e = json_object_get(roles, names[i]);
		json_int_t left = json_integer_value(json_object_get(e, "expires_in"));
		cli_human_duration(left > 0 ? left : -left, in);
		printf("  %-20s %8" JSON_INTEGER_FORMAT "  %-22s %s%-9s %" JSON_INTEGER_FORMAT
		       " of %zu%s\n",
		       names[i], json_integer_value(json_object_get(e, "version")),
		       json_string_value(json_object_get(e, "expires")), left > 0 ? "" : "-", in,
		       json_integer_value(json_object_get(e, "threshold")),
		       json_array_size(json_object_get(e, "keyids")),
		       json_is_true(json_object_get(e, "warning")) ? "  WARNING" : "");
	}
	if (n == 0)
		printf("  (nothing published yet)\n");
	n = json_object_size(staged);
	printf("\nstaged:%s\n", n ? "" : " nothing");
	i = 0;
	json_object_foreach((json_t *)staged, name, e)
		names[i++] = name;
	qsort(names, n, sizeof(*names), cmp_roles);
	for (i = 0; i < n; i++) {
		json_t *sets, *s;
		size_t j;

		e = json_object_get(staged, names[i]);
		printf("  %s version %" JSON_INTEGER_FORMAT ", expires %s: %s\n", names[i],
		       json_integer_value(json_object_get(e, "version")),
		       json_string_value(json_object_get(e, "expires")),
		       json_is_true(json_object_get(e, "ready")) ? "ready to publish"
								  : "NOT ready");
		if (json_object_get(e, "error"))
			printf("    %s\n", json_string_value(json_object_get(e, "error")));
		sets = json_object_get(e, "signatures");
		json_array_foreach(sets, j, s) {
			json_t *ids, *id;
			size_t k;
			printf("    %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
			       " signatures by the %s\n",
			       json_integer_value(json_object_get(s, "valid")),
			       json_integer_value(json_object_get(s, "threshold")),
			       json_string_value(json_object_get(s, "keys")));
			ids = json_object_get(s, "signed");
			json_array_foreach(ids, k, id)
				printf("      signed:  %s\n", json_string_value(id));
			ids = json_object_get(s, "missing");
			json_array_foreach(ids, k, id)
				printf("      missing: %s\n", json_string_value(id));
		}
	}
	free(names);
	{
		json_t *w = json_object_get(rep, "warnings"), *v;
		json_array_foreach(w, i, v)
			printf("%sWARNING: %s\n", i == 0 ? "\n" : "", json_string_value(v));
	}
}

static int run(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(repo_freep) repo *r = NULL;
	_cleanup_(json_decrefp) json_t *rep = NULL;
	json_t *roles, *staged, *warnings;
	int64_t margin = 0;

	if (a->n_pos > 0)
		return cli_failf("unexpected argument '%s'", a->pos[0]);
	if (args_duration(a, "margin", 0, &margin, &err) < 0)
		return cli_fail(&err);
	if (repo_open(&r, repo_dir_arg(a), 0, &err) < 0)
		return cli_fail(&err);
	roles = json_object();
	staged = json_object();
	warnings = json_array();
	rep = json_pack("{s:s, s:b, s:o, s:o, s:o}", "repository", r->dir, "consistent_snapshot",
			repo_consistent(r), "roles", roles, "staged", staged, "warnings", warnings);
	if (!rep)
		return cli_failf("out of memory");
	for (size_t i = 0; i < r->n_roles; i++)
		if (r->roles[i].pub &&
		    role_entry(r, r->roles[i].name, r->roles[i].pub, margin, roles, warnings, &err) <
			    0)
			return cli_fail(&err);
	if (r->snapshot && role_entry(r, "snapshot", r->snapshot, margin, roles, warnings, &err) < 0)
		return cli_fail(&err);
	if (r->timestamp &&
	    role_entry(r, "timestamp", r->timestamp, margin, roles, warnings, &err) < 0)
		return cli_fail(&err);
	for (size_t i = 0; i < r->n_roles; i++)
		if (r->roles[i].staged && staged_entry(r, &r->roles[i], staged, &err) < 0)
			return cli_fail(&err);
	if (args_flag(a, "json")) {
		char *s = json_dumps(rep, JSON_INDENT(1) | JSON_SORT_KEYS);
		if (!s)
			return cli_failf("out of memory");
		printf("%s\n", s);
		free(s);
	} else {
		print_text(rep);
	}
	return 0;
}

static const arg_spec opts[] = {
	{"json", ARG_FLAG},
	{"margin", ARG_VALUE},
	{NULL, ARG_FLAG},
};

const command cmd_status = {
	.name = "status",
	.summary = "versions, expiries, thresholds and staged signatures",
	.help = "Usage: otter-repo status [--json] [--margin DURATION]\n"
		"\n"
		"Shows every published role (version, expiry, time left, threshold and number of\n"
		"keys) with a warning for roles that expire within their margin ([margin] in\n"
		"otter-repo.conf, or --margin for all), and every staged role with the signatures\n"
		"it has and the keys still missing. --json prints the same as one JSON object:\n"
		"{\"repository\", \"consistent_snapshot\", \"roles\": {ROLE: {version, expires,\n"
		"expires_in (seconds), expired, warning, threshold, keyids}}, \"staged\": {ROLE:\n"
		"{version, expires, ready, signatures: [{keys, threshold, valid, signed, missing}]}},\n"
		"\"warnings\": [...]}.\n",
	.opts = opts,
	.run = run,
};
