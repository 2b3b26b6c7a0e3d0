/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-repo refresh: re-sign timestamp (and snapshot) before they expire; for cron. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "otter-repo.h"
#include "util/cleanup.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(repo, repo_free)

static void when(int64_t t, int64_t now, char *out, size_t size)
{
	char at[32], in[32];

	utc_format(t, at);
	if (t > now) {
		cli_human_duration(t - now, in);
		strfmt(out, size, "%s (in %s)", at, in);
	} else {
		strfmt(out, size, "%s (expired)", at);
	}
}

static int run(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(repo_freep) repo *r = NULL;
	int64_t ts_margin, snap_margin;
	bool force = args_flag(a, "force"), ts_due, snap_due;
	char ts_when[80], snap_when[80];
	publish_opts o = {.refresh_only = true};

	if (a->n_pos > 0)
		return cli_failf("unexpected argument '%s'", a->pos[0]);
	if (repo_open(&r, repo_dir_arg(a), REPO_OPEN_LOCK, &err) < 0)
		return cli_fail(&err);
	if (!r->timestamp || !r->snapshot)
		return cli_failf("nothing is published yet: run otter-repo publish first");
	if (args_duration(a, "margin", otter_repo_config_margin(&r->cfg, "timestamp"), &ts_margin,
			  &err) < 0 ||
	    args_duration(a, "snapshot-margin", otter_repo_config_margin(&r->cfg, "snapshot"),
			  &snap_margin, &err) < 0)
		return cli_fail(&err);
	if (ts_margin >= otter_repo_config_expiry(&r->cfg, "timestamp"))
		cli_warn("the timestamp margin is not shorter than its expiry period: every run "
			 "re-signs it");
	/* Offline roles cannot be re-signed here: say so while there is time. */
	for (size_t i = 0; i < r->n_roles; i++) {
		repo_role *role = &r->roles[i];
		char w[80];

		if (!role->pub || otter_repo_metadata_expires(role->pub) - r->now >
					  otter_repo_config_margin(&r->cfg, role->name))
			continue;
		when(otter_repo_metadata_expires(role->pub), r->now, w, sizeof(w));
		cli_warn("%s expires %s and needs its offline keys: otter-repo stage %s, sign, "
			 "publish",
			 role->name, w, role->name);
	}
	when(otter_repo_metadata_expires(r->timestamp), r->now, ts_when, sizeof(ts_when));
	when(otter_repo_metadata_expires(r->snapshot), r->now, snap_when, sizeof(snap_when));
	snap_due = force || otter_repo_metadata_expires(r->snapshot) - r->now <= snap_margin;
	ts_due = snap_due || otter_repo_metadata_expires(r->timestamp) - r->now <= ts_margin;
	if (!ts_due) {
		cli_info("nothing to do: timestamp expires %s, snapshot %s", ts_when, snap_when);
		return 0;
	}
	o.new_snapshot = snap_due;
	if (repo_publish(r, &o, &err) < 0)
		return cli_fail(&err);
	return 0;
}

static const arg_spec opts[] = {
	{"margin", ARG_VALUE},
	{"snapshot-margin", ARG_VALUE},
	{"force", ARG_FLAG},
	{NULL, ARG_FLAG},
};

const command cmd_refresh = {
	.name = "refresh",
	.summary = "re-sign timestamp (and snapshot) before they expire (for cron)",
	.help = "Usage: otter-repo refresh [--margin DURATION] [--snapshot-margin DURATION]\n"
		"                          [--force]\n"
		"\n"
		"Publishes a new timestamp when the current one expires within the margin, and a new\n"
		"snapshot (then a new timestamp too) when the snapshot does, signed with the online\n"
		"keys. Staged roles are left alone. Exits 0 without writing when nothing is due, so\n"
		"it can run from cron every hour:\n"
		"\n"
		"    17 * * * *  otter-repo refresh --repo /srv/repo --quiet\n"
		"\n"
		"Warns (on stderr) when root, targets or a delegated role expires within its margin:\n"
		"those need their offline keys.\n"
		"\n"
		"  --margin DURATION            timestamp margin (default [margin] timestamp, 6h)\n"
		"  --snapshot-margin DURATION   snapshot margin (default [margin] snapshot, 2d)\n"
		"  --force                      new snapshot and timestamp now\n",
	.opts = opts,
	.run = run,
};
