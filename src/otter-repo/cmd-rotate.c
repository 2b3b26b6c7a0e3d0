/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-repo rotate: change the keys or threshold of a role (tuf.md §10.4, §10.5). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otter-repo.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(repo, repo_free)

#define MAX_ROTATE_KEYS 64

/* A key id from a 64-hex id, a unique prefix (>= 8) of one the role lists, or a key file. */
static int resolve_keyid(const json_t *role, const char *s, char out[OTTER_KEYID_HEX_LEN + 1],
			 otter_error *err)
{
	json_t *ids = json_object_get(role, "keyids"), *v;
	size_t n = strlen(s), i, hits = 0;

	if (n == OTTER_KEYID_HEX_LEN && is_lower_hex(s, n)) {
		memcpy(out, s, n + 1);
		return 0;
	}
	if (n >= 8 && n < OTTER_KEYID_HEX_LEN && is_lower_hex(s, n)) {
		json_array_foreach(ids, i, v) {
			const char *id = json_string_value(v);
			if (id && strncmp(id, s, n) == 0 && strlen(id) == OTTER_KEYID_HEX_LEN) {
				memcpy(out, id, OTTER_KEYID_HEX_LEN + 1);
				hits++;
			}
		}
		if (hits == 1)
			return 0;
		return otter_error_set(err, OTTER_E_NOT_FOUND,
				       "key id prefix '%s' matches %zu keys of the role", s, hits);
	}
	{
		otter_key *k = NULL;
		int r = cli_load_public_key(s, &k, err);
		if (r == 0)
			r = key_id(k, out, err);
		otter_key_free(k);
		if (r < 0)
			return otter_error_prefix(err, r,
						  "--remove-key takes a key id or a public key file");
	}
	return 0;
}

/* Applies additions, removals and the threshold to a role object with key table keys_obj. */
static int edit_role(json_t *keys_obj, json_t *role, otter_key *const *add, size_t n_add,
		     const char *const *remove, size_t n_remove, uint64_t threshold,
		     const char *what, otter_error *err)
{
	int r;

	for (size_t i = 0; i < n_remove; i++) {
		char keyid[OTTER_KEYID_HEX_LEN + 1];
		if ((r = resolve_keyid(role, remove[i], keyid, err)) < 0 ||
		    (r = otter_repo_role_remove_keyid(role, keyid, what, err)) < 0)
			return r;
	}
	for (size_t i = 0; i < n_add; i++) {
		char keyid[OTTER_KEYID_HEX_LEN + 1];
		if ((r = otter_repo_keys_add(keys_obj, add[i], keyid, err)) < 0)
			return r;
		if (otter_repo_role_has_keyid(role, keyid))
			return otter_error_set(err, OTTER_E_EXISTS, "%s has key %s already", what,
					       keyid);
		if ((r = otter_repo_role_add_keyid(role, keyid, err)) < 0)
			return r;
	}
	if (json_array_size(json_object_get(role, "keyids")) == 0)
		return otter_error_set(err, OTTER_E_INVALID, "%s would have no key left", what);
	/* An unchanged threshold that the remaining keys can no longer meet is an error too. */
	return otter_repo_role_set_threshold(role, threshold, what, err);
}

static void print_ids(const char *label, char **ids)
{
	if (!ids || !ids[0])
		return;
	printf("    %s:", label);
	for (char **p = ids; *p; p++)
		printf(" %s", *p);
	printf("\n");
}

static void print_requirements(repo *r, repo_role *role)
{
	otter_error err = OTTER_ERROR_INIT;
	sig_report reps[2];
	size_t n = 0;

	if (cli_quiet || repo_staged_signatures(r, role, reps, &n, &err) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		printf("  %s needs %" PRIu64 " valid signature%s by the %s (%zu now)\n", role->name,
		       reps[i].threshold, reps[i].threshold == 1 ? "" : "s", reps[i].label,
		       reps[i].valid);
		print_ids("still missing, any of", reps[i].valid < reps[i].threshold
							  ? reps[i].missing_ids
							  : NULL);
	}
	sig_reports_clear(reps, n);
}

/* Stages role again when its published version does not meet the new threshold. */
static int restage_if_needed(repo *r, const char *name, otter_error *err)
{
	repo_role *role = repo_role_find(r, name);
	const otter_repo_keyring *ring;
	const otter_repo_rolekeys *keys;
	json_t *s;
	int rc;

	if (!role || role->staged || !role->pub)
		return 0;
	rc = repo_role_signers(r, name, &ring, &keys, NULL, err);
	if (rc < 0)
		return rc;
	if (otter_repo_count_valid_signatures(role->pub, ring, keys) >=
	    otter_repo_rolekeys_threshold(keys))
		return 0;
	rc = repo_stage_role(r, role, &s, err);
	if (rc == 0)
		cli_info("staged %s again: its published version is not signed by the new keys", name);
	return rc;
}

static int run(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(repo_freep) repo *r = NULL;
	const char *const *addfiles, *const *removes;
	size_t n_add = args_list(a, "add-key", &addfiles);
	size_t n_remove = args_list(a, "remove-key", &removes), loaded = 0;
	otter_key *add[MAX_ROTATE_KEYS];
	uint64_t threshold;
	const char *name;
	repo_role *root, *target_role = NULL;
	int type, rc = 1;

	if (a->n_pos != 1)
		return cli_failf("usage: otter-repo rotate ROLE [--add-key PUB...] "
				 "[--remove-key KEYID...] [--threshold N]");
	name = a->pos[0];
	if (n_add > MAX_ROTATE_KEYS)
		return cli_failf("at most %d keys", MAX_ROTATE_KEYS);
	if (args_u64(a, "threshold", 1, 1024, 0, &threshold, &err) < 0)
		return cli_fail(&err);
	if (n_add == 0 && n_remove == 0 && threshold == 0)
		return cli_failf("nothing to change: give --add-key, --remove-key or --threshold");
	for (; loaded < n_add; loaded++)
		if (cli_load_public_key(addfiles[loaded], &add[loaded], &err) < 0) {
			cli_fail(&err);
			goto out;
		}
	if (repo_open(&r, repo_dir_arg(a), REPO_OPEN_LOCK, &err) < 0) {
		cli_fail(&err);
		goto out;
	}
	root = repo_role_find(r, "root");
	if (!root) {
		cli_failf("the repository has no root");
		goto out;
	}
	type = otter_repo_top_level_type(name);
	if (type >= 0) {
		json_t *s;
		char what[64];

		strfmt(what, sizeof(what), "role %s", name);
		if (repo_stage_role(r, root, &s, &err) < 0 ||
		    edit_role(json_object_get(s, "keys"),
			      otter_repo_root_role(s, (otter_repo_role_type)type), add, n_add,
			      removes, n_remove, threshold, what, &err) < 0) {
			cli_fail(&err);
			goto out;
		}
		otter_repo_root_prune_keys(s);
		repo_role_touch(root);
		if (type == OTTER_REPO_TARGETS && restage_if_needed(r, "targets", &err) < 0) {
			cli_fail(&err);
			goto out;
		}
		if (type == OTTER_REPO_SNAPSHOT || type == OTTER_REPO_TIMESTAMP) {
			/* publish signs with the configured online key: it must be a new one. */
			otter_key **online = NULL;
			size_t n_online = 0;
			bool usable = false;
			json_t *role = otter_repo_root_role(s, (otter_repo_role_type)type);

			if (repo_online_keys(r, name, &online, &n_online, &err) == 0) {
				for (size_t i = 0; i < n_online; i++) {
					char id[OTTER_KEYID_HEX_LEN + 1];
					if (key_id(online[i], id, NULL) == 0 &&
					    otter_repo_role_has_keyid(role, id))
						usable = true;
				}
			}
			otter_error_clear(&err);
			keys_free(online, n_online);
			if (!usable)
				cli_warn("no key under [online] in %s may sign %s after this "
					 "rotation: point '%s = ...' at the new private key before "
					 "publishing",
					 OTTER_REPO_CONFIG_NAME, name, name);
		}
		target_role = root;
	} else {
		const otter_repo_keyring *ring;
		const otter_repo_rolekeys *keys;
		repo_role *delegator;
		json_t *s, *role;
		char what[300];

		if (repo_role_signers(r, name, &ring, &keys, &delegator, &err) < 0) {
			/* A succinct prefix names every bin at once. */
			otter_error_clear(&err);
			delegator = NULL;
			for (size_t i = 0; i < r->n_roles && !delegator; i++) {
				const json_t *rs = repo_role_signed(&r->roles[i]);
				json_t *su = json_object_get(json_object_get(rs, "delegations"),
							     "succinct_roles");
				const char *p = json_string_value(json_object_get(su, "name_prefix"));
				if (p && strcmp(p, name) == 0)
					delegator = &r->roles[i];
			}
			if (!delegator) {
				cli_failf("no role delegates to '%s'", name);
				goto out;
			}
		}
		strfmt(what, sizeof(what), "delegation '%s'", name);
		if (repo_stage_role(r, delegator, &s, &err) < 0) {
			cli_fail(&err);
			goto out;
		}
		role = otter_repo_delegation_find(s, name);
		if (!role)
			role = json_object_get(json_object_get(s, "delegations"), "succinct_roles");
		if (!role || edit_role(json_object_get(json_object_get(s, "delegations"), "keys"),
				       role, add, n_add, removes, n_remove, threshold, what,
				       &err) < 0) {
			if (!role)
				otter_error_set(&err, OTTER_E_NOT_FOUND, "%s: not found", what);
			cli_fail(&err);
			goto out;
		}
		otter_repo_delegations_prune_keys(s);
		repo_role_touch(delegator);
		for (size_t i = 0; i < r->n_roles; i++) {
			const otter_repo_keyring *rg;
			const otter_repo_rolekeys *ks;
			repo_role *dg;
			if (r->roles[i].type != OTTER_REPO_TARGETS ||
			    repo_role_signers(r, r->roles[i].name, &rg, &ks, &dg, NULL) < 0 ||
			    dg != delegator)
				continue;
			if (restage_if_needed(r, r->roles[i].name, &err) < 0) {
				cli_fail(&err);
				goto out;
			}
		}
		target_role = delegator;
	}
	if (repo_save_staging(r, &err) < 0) {
		cli_fail(&err);
		goto out;
	}
	{
		uint64_t v = 0;
		otter_repo_signed_get(repo_role_signed(target_role), &v, NULL, NULL);
		cli_info("staged %s version %" PRIu64 " with the new keys of %s", target_role->name,
			 v, name);
	}
	print_requirements(r, target_role);
	cli_info("sign staging/%s.json with those keys (otter-repo sign), then otter-repo publish",
		 target_role->name);
	rc = 0;
out:
	for (size_t i = 0; i < loaded; i++)
		otter_key_free(add[i]);
	return rc;
}

static const arg_spec opts[] = {
	{"add-key", ARG_LIST},
	{"remove-key", ARG_LIST},
	{"threshold", ARG_VALUE},
	{NULL, ARG_FLAG},
};

const command cmd_rotate = {
	.name = "rotate",
	.summary = "add, remove or replace keys of a role, or change its threshold",
	.help = "Usage: otter-repo rotate ROLE [--add-key PUBLIC_KEY...] [--remove-key KEY...]\n"
		"                         [--threshold N]\n"
		"\n"
		"For a top-level ROLE, stages the next root version with the role's keys changed.\n"
		"For root itself the new root must be signed by a threshold of the current root's\n"
		"keys AND a threshold of its own; the command prints which keys are still missing.\n"
		"For targets, snapshot and timestamp the change is an explicit revocation: once the\n"
		"new root is out, devices stop trusting removed keys. targets is staged again when\n"
		"its published version is not signed by the new keys; for snapshot and timestamp,\n"
		"point [online] in otter-repo.conf at the new private key before publishing.\n"
		"Every root version stays published as N.root.json, so devices that were offline\n"
		"for a while walk the chain one version at a time.\n"
		"\n"
		"For a delegated ROLE (or a succinct bin prefix) the delegating role is staged with\n"
		"the changed keys, and ROLE is staged again if needed.\n"
		"\n"
		"  --add-key PUBLIC_KEY...   keys to add (PEM public key files)\n"
		"  --remove-key KEY...       keys to remove: key ids (or a unique prefix of 8+\n"
		"                            digits) or public key files\n"
		"  --threshold N             the new threshold (checked against the key count)\n",
	.opts = opts,
	.run = run,
};
