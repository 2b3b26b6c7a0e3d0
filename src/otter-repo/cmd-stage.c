/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-repo stage: start (or drop) the next version of a role, for offline signing. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "otter-repo.h"
#include "util/cleanup.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(repo, repo_free)

static int run(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(repo_freep) repo *r = NULL;
	bool discard = args_flag(a, "discard");
	const char *exp_s = args_value(a, "expires");
	int64_t period = 0;

	if (a->n_pos == 0)
		return cli_failf("usage: otter-repo stage ROLE... [--expires DURATION] [--discard]");
	if (exp_s && args_duration(a, "expires", 0, &period, &err) < 0)
		return cli_fail(&err);
	if (repo_open(&r, repo_dir_arg(a), REPO_OPEN_LOCK, &err) < 0)
		return cli_fail(&err);
	for (size_t i = 0; i < a->n_pos; i++) {
		const char *name = a->pos[i];
		repo_role *role = repo_role_find(r, name);
		uint64_t version = 0;
		json_t *s;
		char when[32];

		if (strcmp(name, "snapshot") == 0 || strcmp(name, "timestamp") == 0)
			return cli_failf("%s is made by publish and refresh with the online keys; "
					 "it is never staged",
					 name);
		if (!role || (!role->pub && !role->staged))
			return cli_failf("no role '%s' in this repository", name);
		if (discard) {
			if (!role->staged)
				return cli_failf("nothing of %s is staged", name);
			if (!role->pub)
				return cli_failf("%s was never published: it cannot be dropped "
						 "(undelegate it instead)",
						 name);
			role->staged_drop = true;
			cli_info("dropped the staged %s", name);
			continue;
		}
		if (role->staged && !exp_s) {
			otter_repo_signed_get(repo_role_signed(role), &version, NULL, NULL);
			cli_info("%s version %" PRIu64 " is staged already", name, version);
			continue;
		}
		if (repo_stage_role(r, role, &s, &err) < 0)
			return cli_fail(&err);
		otter_repo_signed_get(s, &version, NULL, NULL);
		if (exp_s && otter_repo_signed_set(s, version, r->now + period, &err) < 0)
			return cli_fail(&err);
		utc_format(r->now + (exp_s ? period : otter_repo_config_expiry(&r->cfg, name)),
			   when);
		cli_info("staged %s version %" PRIu64 ", expiring %s", name, version, when);
	}
	if (repo_save_staging(r, &err) < 0)
		return cli_fail(&err);
	return 0;
}

static const arg_spec opts[] = {
	{"expires", ARG_VALUE},
	{"discard", ARG_FLAG},
	{NULL, ARG_FLAG},
};

const command cmd_stage = {
	.name = "stage",
	.summary = "stage the next version of a role for offline signing",
	.help = "Usage: otter-repo stage ROLE... [--expires DURATION] [--discard]\n"
		"\n"
		"Writes the next version of each ROLE (root, targets or a delegated role), unsigned,\n"
		"to staging/ROLE.json: the published content with version + 1 and a new expiry\n"
		"(now + the period configured for the role). add-target, delegate and rotate stage\n"
		"what they change themselves; stage on its own re-signs a role unchanged, e.g. to\n"
		"extend its expiry. Copy the staged file to each key holder, sign it there\n"
		"(otter-repo sign FILE --key KEY), bring it back (otter-repo import FILE), publish.\n"
		"\n"
		"  --expires DURATION   expire DURATION from now (e.g. 180d) instead of the\n"
		"                       configured period; on an already staged role this changes\n"
		"                       its content, so its signatures are dropped\n"
		"  --discard            drop the staged version instead\n",
	.opts = opts,
	.run = run,
};
