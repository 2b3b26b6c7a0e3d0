/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-repo verify: the repository as a device sees it, through libotter's client. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <otter/tuf.h>

#include "lib/limits.h"
#include "otter-repo.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(repo, repo_free)
DEFINE_CLEANUP_FUNC(otter_tuf_updater, otter_tuf_updater_free)

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (d) {
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	rmdir(path);
}

/* file:// URL of a local folder, percent-encoding what a URL path cannot hold. */
static char *file_url(const char *dir, const char *sub)
{
	static const char digits[] = "0123456789ABCDEF";
	otter_buf b;

	buf_init(&b, 16384);
	if (buf_append_str(&b, "file://", NULL) < 0)
		return NULL;
	for (const char *p = dir; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    strchr("/._-~", c)) {
			if (buf_append(&b, p, 1, NULL) < 0)
				goto fail;
		} else {
			char e[3] = {'%', digits[c >> 4], digits[c & 15]};
			if (buf_append(&b, e, 3, NULL) < 0)
				goto fail;
		}
	}
	if (buf_printf(&b, NULL, "/%s/", sub) < 0)
		goto fail;
	return (char *)buf_steal(&b, NULL);
fail:
	buf_clear(&b);
	return NULL;
}

static void log_debug(void *userdata, int level, const char *msg)
{
	(void)userdata;
	(void)level;
	(void)msg;
}

static int run(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(otter_tuf_updater_freep) otter_tuf_updater *u = NULL;
	_cleanup_(repo_freep) repo *r = NULL;
	_cleanup_free_ uint8_t *root = NULL;
	_cleanup_free_ char *dir = NULL, *md_url = NULL, *tg_url = NULL;
	const char *trusted = args_value(a, "root"), *tmpdir = getenv("TMPDIR");
	char base[PATH_MAX], mdir[PATH_MAX], tdir[PATH_MAX];
	size_t len, ok = 0, bad = 0;
	otter_tuf_options opts;
	int rc = 1;

	if (!trusted)
		return cli_failf("give the root devices trust with --root TRUSTED_ROOT");
	if (a->n_pos > 0)
		return cli_failf("unexpected argument '%s'", a->pos[0]);
	if (cli_read_file(trusted, OTTER_TUF_ROOT_MAX_LENGTH, &root, &len, &err) < 0)
		return cli_fail(&err);
	dir = realpath(repo_dir_arg(a), NULL);
	if (!dir)
		return cli_failf("'%s': %s", repo_dir_arg(a), strerror(errno));
	md_url = file_url(dir, "metadata");
	tg_url = file_url(dir, "targets");
	if (!md_url || !tg_url)
		return cli_failf("out of memory");
	strfmt(base, sizeof(base), "%s/otter-repo-verify-XXXXXX",
	       tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(base))
		return cli_failf("creating a temporary folder: %s", strerror(errno));
	strfmt(mdir, sizeof(mdir), "%s/metadata", base);
	strfmt(tdir, sizeof(tdir), "%s/targets", base);
	if (otter_tuf_install_root(mdir, root, len, &err) < 0 || fileio_mkdir_p(tdir, 0700, &err) < 0) {
		cli_fail(&err);
		goto out;
	}
	otter_tuf_options_init(&opts);
	opts.metadata_dir = mdir;
	opts.metadata_url = md_url;
	opts.target_base_url = tg_url;
	opts.log = log_debug;
	if (otter_tuf_updater_new(&u, &opts, &err) < 0 || otter_tuf_refresh(u, &err) < 0) {
		cli_failf("a device trusting %s would reject the repository: %s", trusted, err.msg);
		goto out;
	}
	{
		static const char *const tl[] = {"root", "timestamp", "snapshot", "targets"};
		for (size_t i = 0; i < 4; i++) {
			char when[32];
			utc_format(otter_tuf_trusted_expires(u, tl[i]), when);
			cli_info("%-10s version %" PRIu64 ", expires %s: accepted", tl[i],
				 otter_tuf_trusted_version(u, tl[i]), when);
		}
	}
	if (!args_flag(a, "no-targets")) {
		/* Every target of every published role, looked up and fetched as a device would. */
		if (repo_open(&r, dir, 0, &err) < 0) {
			cli_fail(&err);
			goto out;
		}
		/* The published repository only; roles no delegation leads to any more are not
		 * offered to devices. */
		repo_hide_staged(r, true);
		for (size_t i = 0; i < r->n_roles; i++) {
			repo_role *role = &r->roles[i];
			const char *path;
			json_t *info;

			if (role->type != OTTER_REPO_TARGETS || !role->pub)
				continue;
			if (!repo_role_reachable(r, role->name)) {
				cli_info("%s is published but no delegation leads to it: skipped",
					 role->name);
				continue;
			}
			json_object_foreach(otter_repo_metadata_targets(role->pub), path, info) {
				otter_error terr = OTTER_ERROR_INIT;
				otter_tuf_target *t = NULL;
				char *local = NULL;
				int x = otter_tuf_find_target(u, path, &t, &terr);

				if (x == 0)
					x = otter_tuf_download_target(u, t, tdir, &local, &terr);
				if (x == 0 && strcmp(otter_tuf_target_role(t), role->name) != 0)
					cli_warn("target '%s' of %s: devices take it from %s", path,
						 role->name, otter_tuf_target_role(t));
				if (x < 0) {
					fprintf(stderr, "otter-repo: verify: REJECTED target '%s' "
							"(listed by %s): %s\n",
						path, role->name, terr.msg);
					bad++;
				} else {
					ok++;
				}
				if (local)
					unlink(local);
				free(local);
				otter_tuf_target_free(t);
			}
		}
		cli_info("%zu target%s accepted, %zu rejected", ok, ok == 1 ? "" : "s", bad);
	}
	rc = bad ? 1 : 0;
out:
	remove_tree(tdir);
	remove_tree(mdir);
	rmdir(base);
	return rc;
}

static const arg_spec opts[] = {
	{"root", ARG_VALUE},
	{"no-targets", ARG_FLAG},
	{NULL, ARG_FLAG},
};

const command cmd_verify = {
	.name = "verify",
	.summary = "check the published repository the way a device does",
	.help = "Usage: otter-repo verify --root TRUSTED_ROOT [--no-targets]\n"
		"\n"
		"Runs libotter's TUF client, the code devices run, against the repository folder\n"
		"(file:// URLs, a temporary metadata folder holding TRUSTED_ROOT): the root chain\n"
		"from TRUSTED_ROOT, timestamp, snapshot and targets, then every target of every\n"
		"published role, looked up through the delegations and fetched with its length and\n"
		"hashes checked. Prints what was accepted and, on stderr, what a device would\n"
		"reject. Exit status 1 if anything is rejected.\n"
		"\n"
		"  --root TRUSTED_ROOT   the root devices ship with (e.g. metadata/1.root.json)\n"
		"  --no-targets          metadata only\n",
	.opts = opts,
	.run = run,
};
