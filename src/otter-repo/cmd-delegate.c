/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-repo delegate | undelegate */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otter-repo.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(repo, repo_free)

#define MAX_DELEGATION_KEYS 64

static int new_role(repo *r, const char *name, otter_error *err)
{
	json_t *s = NULL;
	int rc = otter_repo_signed_new(&s, OTTER_REPO_TARGETS,
				       r->now + otter_repo_config_expiry(&r->cfg, name), true, err);

	if (rc == 0)
		rc = repo_stage_new(r, name, s, err);
	json_decref(s);
	return rc;
}

static int run_delegate(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(repo_freep) repo *r = NULL;
	const char *const *paths, *const *prefixes, *const *keyfiles;
	size_t n_paths = args_list(a, "paths", &paths);
	size_t n_prefixes = args_list(a, "hash-prefixes", &prefixes);
	size_t n_keys = args_list(a, "key", &keyfiles);
	const char *from = args_value(a, "from"), *bits_s = args_value(a, "succinct");
	otter_key *keys[MAX_DELEGATION_KEYS];
	uint64_t threshold, bits = 0;
	repo_role *parent;
	json_t *s;
	size_t loaded = 0;
	int rc = 1;

	if (a->n_pos != 1)
		return cli_failf("usage: otter-repo delegate ROLE (--paths PATTERN... | "
				 "--hash-prefixes HEX... | --succinct BITS) --key PUB... "
				 "--threshold N");
	if (!from)
		from = "targets";
	if ((n_paths > 0) + (n_prefixes > 0) + (bits_s != NULL) != 1)
		return cli_failf("give exactly one of --paths, --hash-prefixes and --succinct");
	if (n_keys == 0)
		return cli_failf("give the delegated role's public keys with --key");
	if (n_keys > MAX_DELEGATION_KEYS)
		return cli_failf("at most %d keys", MAX_DELEGATION_KEYS);
	if (args_u64(a, "threshold", 1, n_keys, 1, &threshold, &err) < 0 ||
	    (bits_s && parse_u64_range(bits_s, 1, OTTER_REPO_MAX_BIN_BITS, &bits) < 0)) {
		if (!err.code)
			otter_error_set(&err, OTTER_E_INVALID, "--succinct: '%s' is not in 1..%u",
					bits_s, OTTER_REPO_MAX_BIN_BITS);
		return cli_fail(&err);
	}
	for (; loaded < n_keys; loaded++)
		if (cli_load_public_key(keyfiles[loaded], &keys[loaded], &err) < 0) {
			cli_fail(&err);
			goto out;
		}
	if (repo_open(&r, repo_dir_arg(a), REPO_OPEN_LOCK, &err) < 0) {
		cli_fail(&err);
		goto out;
	}
	parent = repo_role_find(r, from);
	if (!parent || parent->type != OTTER_REPO_TARGETS || (!parent->pub && !parent->staged)) {
		cli_failf("'%s' is not a targets role of this repository", from);
		goto out;
	}
	if (bits_s) {
		char **bins = NULL;
		if (repo_stage_role(r, parent, &s, &err) < 0 ||
		    otter_repo_delegate_succinct(s, a->pos[0], (unsigned)bits, keys, n_keys,
						 threshold, &err) < 0 ||
		    otter_repo_succinct_bin_names(a->pos[0], (unsigned)bits, &bins, &err) < 0) {
			cli_fail(&err);
			goto out;
		}
		for (char **b = bins; *b; b++) {
			repo_role *br = repo_role_find(r, *b);
			if (br && (br->pub || br->staged))
				continue;
			if (new_role(r, *b, &err) < 0) {
				otter_repo_strv_free(bins);
				cli_fail(&err);
				goto out;
			}
		}
		otter_repo_strv_free(bins);
		if (repo_save_staging(r, &err) < 0) {
			cli_fail(&err);
			goto out;
		}
		cli_info("staged %s delegating every target to %" PRIu64 " hash bins %s-*, and "
			 "version 1 of each bin",
			 from, (uint64_t)1 << bits, a->pos[0]);
	} else {
		repo_role *existing = repo_role_find(r, a->pos[0]);
		otter_repo_delegation d = {
			.name = a->pos[0],
			.paths = paths,
			.n_paths = n_paths,
			.prefixes = prefixes,
			.n_prefixes = n_prefixes,
			.keys = keys,
			.n_keys = n_keys,
			.threshold = threshold,
			.terminating = args_flag(a, "terminating"),
		};
		if (repo_stage_role(r, parent, &s, &err) < 0 ||
		    otter_repo_delegate(s, &d, &err) < 0) {
			cli_fail(&err);
			goto out;
		}
		/* A role delegated before (and undelegated) keeps its metadata and versions; its
		 * next version is staged, to be signed by the keys it is delegated to now. */
		if (!existing || (!existing->pub && !existing->staged)) {
			if (new_role(r, a->pos[0], &err) < 0) {
				cli_fail(&err);
				goto out;
			}
		} else if (!existing->staged) {
			json_t *ignored;
			if (repo_stage_role(r, existing, &ignored, &err) < 0) {
				cli_fail(&err);
				goto out;
			}
		}
		if (repo_save_staging(r, &err) < 0) {
			cli_fail(&err);
			goto out;
		}
		cli_info("staged %s delegating to '%s' (%zu key%s, threshold %" PRIu64 "%s), and "
			 "'%s' itself",
			 from, a->pos[0], n_keys, n_keys == 1 ? "" : "s", threshold,
			 d.terminating ? ", terminating" : "", a->pos[0]);
	}
	cli_info("next: sign staging/%s.json with the keys of %s and the delegated role's "
		 "metadata with its own keys, then otter-repo publish",
		 from, from);
	rc = 0;
out:
	for (size_t i = 0; i < loaded; i++)
		otter_key_free(keys[i]);
	return rc;
}

static int run_undelegate(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(repo_freep) repo *r = NULL;
	const char *from = args_value(a, "from");
	repo_role *parent;
	json_t *s;

	if (a->n_pos != 1)
		return cli_failf("usage: otter-repo undelegate ROLE [--from DELEGATOR]");
	if (!from)
		from = "targets";
	if (repo_open(&r, repo_dir_arg(a), REPO_OPEN_LOCK, &err) < 0)
		return cli_fail(&err);
	parent = repo_role_find(r, from);
	if (!parent || parent->type != OTTER_REPO_TARGETS || (!parent->pub && !parent->staged))
		return cli_failf("'%s' is not a targets role of this repository", from);
	{
		/* Check on the current view first, so a mistake stages nothing. */
		json_t *cur = json_deep_copy(repo_role_signed(parent));
		int rc = cur ? otter_repo_undelegate(cur, a->pos[0], &err)
			     : otter_error_set(&err, OTTER_E_NOMEM, "out of memory");
		json_decref(cur);
		if (rc < 0)
			return cli_fail(&err);
	}
	if (repo_stage_role(r, parent, &s, &err) < 0 ||
	    otter_repo_undelegate(s, a->pos[0], &err) < 0)
		return cli_fail(&err);
	/* Staged versions of the roles no longer delegated could never be published: drop
	 * them (the role itself, or every bin of a succinct delegation). */
	for (size_t i = 0; i < r->n_roles; i++) {
		repo_role *child = &r->roles[i];
		size_t pl = strlen(a->pos[0]);
		bool match = strcmp(child->name, a->pos[0]) == 0 ||
			     (strncmp(child->name, a->pos[0], pl) == 0 && child->name[pl] == '-' &&
			      !repo_role_reachable(r, child->name));

		if (!match || !child->staged)
			continue;
		child->staged_drop = true;
		if (child->pub)
			cli_warn("dropped the staged %s: nothing delegates to it any more",
				 child->name);
	}
	if (repo_save_staging(r, &err) < 0)
		return cli_fail(&err);
	cli_info("staged %s without the delegation to '%s' (its metadata stays listed in the "
		 "snapshot, as clients require)",
		 from, a->pos[0]);
	return 0;
}

static const arg_spec delegate_opts[] = {
	{"paths", ARG_LIST},
	{"hash-prefixes", ARG_LIST},
	{"succinct", ARG_VALUE},
	{"key", ARG_LIST},
	{"threshold", ARG_VALUE},
	{"terminating", ARG_FLAG},
	{"from", ARG_VALUE},
	{NULL, ARG_FLAG},
};

const command cmd_delegate = {
	.name = "delegate",
	.summary = "delegate target paths (or hash bins) to a role with its own keys",
	.help = "Usage: otter-repo delegate ROLE (--paths PATTERN... | --hash-prefixes HEX...)\n"
		"                           --key PUBLIC_KEY... [--threshold N] [--terminating]\n"
		"                           [--from DELEGATOR]\n"
		"       otter-repo delegate PREFIX --succinct BITS --key PUBLIC_KEY...\n"
		"                           [--threshold N] [--from DELEGATOR]\n"
		"\n"
		"Stages the next version of DELEGATOR (default targets) with a delegation to ROLE,\n"
		"signed by the given keys at threshold N (default 1), and version 1 of ROLE with no\n"
		"targets. Both must be signed (DELEGATOR by its keys, ROLE by its own) before\n"
		"publish. Delegations are searched in the order they were added.\n"
		"\n"
		"  --paths PATTERN...       target paths ROLE is trusted for: shell globs per path\n"
		"                           segment ('team/*', 'images/*.img'); '*' never matches '/'\n"
		"  --hash-prefixes HEX...   or: targets whose sha256(path) starts with a prefix\n"
		"  --terminating            a device that finds no target in ROLE (or below) looks\n"
		"                           no further\n"
		"  --succinct BITS          succinct hash bins (TAP 15) for large repositories:\n"
		"                           2^BITS roles PREFIX-00.. share the keys; every target of\n"
		"                           DELEGATOR then goes to the bin of its path (add-target\n"
		"                           picks it); BITS 1..16. Sign all bins at once with\n"
		"                           'publish --key', or list the bin key under [online] as\n"
		"                           PREFIX = /path/key.pem.\n",
	.opts = delegate_opts,
	.run = run_delegate,
};

static const arg_spec undelegate_opts[] = {
	{"from", ARG_VALUE},
	{NULL, ARG_FLAG},
};

const command cmd_undelegate = {
	.name = "undelegate",
	.summary = "remove a delegation",
	.help = "Usage: otter-repo undelegate ROLE [--from DELEGATOR]\n"
		"\n"
		"Stages the next version of DELEGATOR (default targets) without the delegation to\n"
		"ROLE (or, given a bin prefix, without its succinct hash bins), and without the keys\n"
		"only ROLE used. Devices stop trusting ROLE once it is published. The snapshot keeps\n"
		"listing ROLE's last version: clients refuse a snapshot that drops an entry.\n",
	.opts = undelegate_opts,
	.run = run_undelegate,
};
