/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-repo publish */
#include <stdio.h>

#include "otter-repo.h"
#include "util/cleanup.h"

DEFINE_CLEANUP_FUNC(repo, repo_free)

#define MAX_PUBLISH_KEYS 256

static int run(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(repo_freep) repo *r = NULL;
	const char *const *keyfiles;
	size_t n_keys = args_list(a, "key", &keyfiles), loaded = 0, n_staged = 0;
	const char *passphrase = NULL;
	otter_key *keys[MAX_PUBLISH_KEYS];
	publish_opts o = {.keys = keys, .new_snapshot = true, .dry_run = args_flag(a, "dry-run")};
	int rc = 1;

	if (a->n_pos > 0)
		return cli_failf("unexpected argument '%s'", a->pos[0]);
	if (n_keys > MAX_PUBLISH_KEYS)
		return cli_failf("at most %d keys", MAX_PUBLISH_KEYS);
	if (repo_open(&r, repo_dir_arg(a), REPO_OPEN_LOCK, &err) < 0)
		return cli_fail(&err);
	for (size_t i = 0; i < r->n_roles; i++)
		n_staged += r->roles[i].staged != NULL;
	if (n_staged == 0) {
		cli_info("nothing is staged, nothing to publish ('otter-repo refresh' re-signs "
			 "snapshot and timestamp)");
		return 0;
	}
	if (n_keys && cli_passphrase(a, &passphrase, &err) < 0)
		return cli_fail(&err);
	for (; loaded < n_keys; loaded++)
		if (cli_load_private_key(keyfiles[loaded], passphrase, r->dir, &keys[loaded], &err) <
		    0) {
			cli_fail(&err);
			goto out;
		}
	o.n_keys = loaded;
	if (repo_publish(r, &o, &err) < 0) {
		cli_fail(&err);
		goto out;
	}
	if (o.dry_run)
		cli_info("dry run: every check passed, nothing was written");
	rc = 0;
out:
	for (size_t i = 0; i < loaded; i++)
		otter_key_free(keys[i]);
	return rc;
}

static const arg_spec opts[] = {
	{"key", ARG_LIST},
	{"dry-run", ARG_FLAG},
	{NULL, ARG_FLAG},
};

const command cmd_publish = {
	.name = "publish",
	.summary = "check, sign online and publish everything staged",
	.help = "Usage: otter-repo publish [--key PRIVATE_KEY...] [--dry-run]\n"
		"\n"
		"Publishes every staged role. Each must carry a threshold of valid signatures by\n"
		"the keys that will be in force: root's for top-level roles (a new root needs a\n"
		"threshold of the previous root's keys and of its own), the delegator's for\n"
		"delegated roles. The check is libotter's, the code devices run. Versions only go\n"
		"up (root by exactly one) and nothing expired is published. Every file staged\n"
		"in staging/targets/ must have the length and hashes its role lists (a file\n"
		"changed after add-target is refused, naming it); a staged file replaces a\n"
		"published copy of the same target.\n"
		"\n"
		"Then a new snapshot (listing every targets role with the length and hashes of the\n"
		"exact bytes published) and a new timestamp are signed with the online keys from\n"
		"otter-repo.conf [online], and a client refresh against the result must succeed.\n"
		"Only then are files written, each atomically: target files, delegated roles,\n"
		"targets, snapshot, the new root (N.root.json and root.json), and timestamp.json\n"
		"last, so a device polling meanwhile sees the old repository or the new one. Every\n"
		"root version stays published. On any failure nothing is written.\n"
		"\n"
		"  --key PRIVATE_KEY...   also sign with these keys, each on every role it may sign\n"
		"                         (for scripts and CI; offline keys belong on offline machines)\n"
		"  --dry-run              run every check, write nothing\n",
	.opts = opts,
	.run = run,
};
