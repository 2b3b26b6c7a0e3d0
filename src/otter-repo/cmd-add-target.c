/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-repo add-target | remove-target */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/limits.h"
#include "otter-repo.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(repo, repo_free)

#define MAX_FILES 1024

typedef struct item {
	const char *file;
	char *path; /* target path */
	char *role;
	int fd;
	struct stat st;
	otter_repo_digest d;
	bool created_blob;
} item;

static void items_clear(item *items, size_t n, int blobfd)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].path);
		free(items[i].role);
		if (items[i].fd >= 0)
			close(items[i].fd);
		/* Undo: a blob this command created goes again on failure. */
		if (blobfd >= 0 && items[i].created_blob)
			unlinkat(blobfd, items[i].d.sha256, 0);
	}
}

static char *default_path(const char *file, const char *prefix)
{
	_cleanup_free_ char *copy = otter_strdup(file);
	const char *base;

	if (!copy)
		return NULL;
	base = basename(copy);
	if (!prefix)
		return otter_strdup(base);
	return path_join(prefix, base);
}

/* Copies one file into the blob store while hashing it. */
static int stage_blob(int blobfd, item *it, otter_error *err)
{
	_cleanup_free_ char *tmp = NULL;
	struct stat after, existing;
	bool existed;
	int fd = -1, r;

	r = fileio_tmp_create(blobfd, 0644, &fd, &tmp, err);
	if (r < 0)
		return otter_error_prefix(err, r, "staging/targets");
	r = otter_repo_digest_fd(it->fd, fd, OTTER_TUF_TARGET_MAX_LENGTH, &it->d, it->file, err);
	if (r == 0 && (fstat(it->fd, &after) < 0 || after.st_size != it->st.st_size ||
		       after.st_mtim.tv_sec != it->st.st_mtim.tv_sec ||
		       after.st_mtim.tv_nsec != it->st.st_mtim.tv_nsec ||
		       it->d.length != (uint64_t)it->st.st_size))
		r = otter_error_set(err, OTTER_E_IO,
				    "'%s' changed while it was read: add it again when it is "
				    "complete",
				    it->file);
	if (r < 0) {
		fileio_tmp_discard(blobfd, fd, tmp);
		return r;
	}
	/* A staged copy already there is replaced: it may have been changed since it was
	 * staged, and this copy has the hashes its name says. */
	existed = fstatat(blobfd, it->d.sha256, &existing, AT_SYMLINK_NOFOLLOW) == 0;
	r = fileio_tmp_commit(blobfd, fd, tmp, it->d.sha256, err);
	if (r < 0)
		return r;
	it->created_blob = !existed;
	return 0;
}

/*
 * Stages n files as targets: files[i] under paths[i], with customs[i] (may be NULL) in
 * roles[i] (NULL: the default role for the path). Everything is checked before anything is
 * written. Returns the exit status (messages printed).
 */
int add_targets(const char *repo_dir, size_t n, const char *const *files,
		const char *const *paths, json_t *const *customs, const char *const *roles)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(repo_freep) repo *r = NULL;
	item items[MAX_FILES];
	int blobfd = -1, rc = 1;

	if (n == 0 || n > MAX_FILES)
		return cli_failf("between 1 and %d files at once", MAX_FILES);
	memset(items, 0, sizeof(items));
	for (size_t i = 0; i < n; i++)
		items[i].fd = -1;

	for (size_t i = 0; i < n; i++) {
		items[i].file = files[i];
		items[i].path = otter_strdup(paths[i]);
		if (!items[i].path) {
			cli_failf("out of memory");
			goto out;
		}
		if (!otter_repo_target_path_ok(items[i].path)) {
			cli_failf("target path '%.200s' refused: it must be relative, without empty, "
				  "'.' or '..' components, made of [A-Za-z0-9._~+=,@-] and '/'",
				  items[i].path);
			goto out;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(items[j].path, items[i].path) == 0) {
				cli_failf("target path '%s' given twice", items[i].path);
				goto out;
			}
	}
	if (repo_open(&r, repo_dir, REPO_OPEN_LOCK, &err) < 0) {
		cli_fail(&err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		repo_role *role;

		if (roles && roles[i])
			items[i].role = otter_strdup(roles[i]);
		else if (repo_default_target_role(r, items[i].path, &items[i].role, &err) < 0) {
			cli_fail(&err);
			goto out;
		}
		if (!items[i].role) {
			cli_failf("out of memory");
			goto out;
		}
		role = repo_role_find(r, items[i].role);
		if (!role || (!role->pub && !role->staged) || role->type != OTTER_REPO_TARGETS) {
			cli_failf("'%s' is not a targets role of this repository", items[i].role);
			goto out;
		}
		if (repo_check_target_reaches(r, items[i].role, items[i].path, &err) < 0) {
			cli_fail(&err);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		items[i].fd = open(items[i].file, O_RDONLY | O_CLOEXEC);
		if (items[i].fd < 0 || fstat(items[i].fd, &items[i].st) < 0) {
			cli_failf("'%s': %s", items[i].file, strerror(errno));
			goto out;
		}
		if (!S_ISREG(items[i].st.st_mode)) {
			cli_failf("'%s' is not a regular file", items[i].file);
			goto out;
		}
	}

	if (r->stfd < 0 && repo_save_staging(r, &err) < 0) {
		cli_fail(&err);
		goto out;
	}
	if (mkdirat(r->stfd, "targets", 0755) < 0 && errno != EEXIST) {
		cli_failf("creating staging/targets: %s", strerror(errno));
		goto out;
	}
	blobfd = openat(r->stfd, "targets", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (blobfd < 0) {
		cli_failf("staging/targets: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (stage_blob(blobfd, &items[i], &err) < 0) {
			cli_fail(&err);
			goto out;
		}
	for (size_t i = 0; i < n; i++) {
		repo_role *role = repo_role_find(r, items[i].role);
		json_t *s, *tf = NULL;

		if (repo_stage_role(r, role, &s, &err) < 0 ||
		    otter_repo_targetfile(&tf, &items[i].d, customs ? customs[i] : NULL, &err) <
			    0) {
			cli_fail(&err);
			goto out;
		}
		if (json_object_set_new(json_object_get(s, "targets"), items[i].path, tf) < 0) {
			cli_failf("out of memory");
			goto out;
		}
	}
	if (repo_save_staging(r, &err) < 0) {
		cli_fail(&err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		repo_role *role = repo_role_find(r, items[i].role);
		uint64_t v = 0;

		otter_repo_signed_get(repo_role_signed(role), &v, NULL, NULL);
		cli_info("staged %s version %" PRIu64 ": '%s' (%" PRIu64 " bytes, sha256 %.16s...)",
			 items[i].role, v, items[i].path, items[i].d.length, items[i].d.sha256);
		items[i].created_blob = false; /* keep */
	}
	rc = 0;
out:
	items_clear(items, n, blobfd);
	if (blobfd >= 0)
		close(blobfd);
	return rc;
}

static int run_add(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(json_decrefp) json_t *custom = NULL;
	const char *const *paths;
	const char *custom_s = args_value(a, "custom"), *role_opt = args_value(a, "role");
	size_t n_paths = args_list(a, "path", &paths), n = a->n_pos;
	const char *file_list[MAX_FILES], *path_list[MAX_FILES], *role_list[MAX_FILES];
	json_t *custom_list[MAX_FILES];
	char *defaults[MAX_FILES] = {0};
	int rc = 1;

	if (n == 0)
		return cli_failf("no FILE given (usage: otter-repo add-target FILE... "
				 "[--path TARGETPATH...])");
	if (n > MAX_FILES)
		return cli_failf("at most %d files at once", MAX_FILES);
	if (n_paths && n_paths != n)
		return cli_failf("%zu files but %zu --path values: give one target path per file, "
				 "or none (the file names are used)",
				 n, n_paths);
	if (custom_s) {
		if (otter_json_parse(&custom, (const uint8_t *)custom_s, strlen(custom_s), 65536,
				     &err) < 0 ||
		    otter_repo_check_ascii(custom, "--custom", &err) < 0) {
			otter_error_prefix(&err, err.code, "--custom must be a JSON object");
			return cli_fail(&err);
		}
	}
	for (size_t i = 0; i < n; i++) {
		file_list[i] = a->pos[i];
		if (n_paths) {
			path_list[i] = paths[i];
		} else {
			defaults[i] = default_path(a->pos[i], args_value(a, "prefix"));
			if (!defaults[i]) {
				cli_failf("out of memory");
				goto out;
			}
			path_list[i] = defaults[i];
		}
		custom_list[i] = custom;
		role_list[i] = role_opt;
	}
	rc = add_targets(repo_dir_arg(a), n, file_list, path_list, custom_list, role_list);
	if (rc == 0)
		cli_info("next: sign the staged roles (otter-repo status shows which keys), then "
			 "otter-repo publish");
out:
	for (size_t i = 0; i < n; i++)
		free(defaults[i]);
	return rc;
}

static int run_remove(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(repo_freep) repo *r = NULL;
	const char *role_opt = args_value(a, "role");

	if (a->n_pos == 0)
		return cli_failf("no TARGETPATH given");
	if (repo_open(&r, repo_dir_arg(a), REPO_OPEN_LOCK, &err) < 0)
		return cli_fail(&err);
	for (size_t i = 0; i < a->n_pos; i++) {
		const char *path = a->pos[i];
		repo_role *found = NULL;
		json_t *s;
		size_t hits = 0;

		for (size_t j = 0; j < r->n_roles; j++) {
			repo_role *role = &r->roles[j];
			const json_t *sig = repo_role_signed(role);

			if (role->type != OTTER_REPO_TARGETS || !sig)
				continue;
			if (role_opt && strcmp(role->name, role_opt) != 0)
				continue;
			if (json_object_get(json_object_get(sig, "targets"), path)) {
				found = role;
				hits++;
			}
		}
		if (hits == 0)
			return cli_failf("no role%s%s lists target '%s'", role_opt ? " " : "",
					 role_opt ? role_opt : "", path);
		if (hits > 1)
			return cli_failf("several roles list target '%s': say which with --role",
					 path);
		if (repo_stage_role(r, found, &s, &err) < 0)
			return cli_fail(&err);
		json_object_del(json_object_get(s, "targets"), path);
		cli_info("staged %s without '%s'", found->name, path);
	}
	if (repo_save_staging(r, &err) < 0)
		return cli_fail(&err);
	cli_info("next: sign the staged roles, then otter-repo publish (the files stay in "
		 "targets/ for devices still on older metadata)");
	return 0;
}

static const arg_spec add_opts[] = {
	{"path", ARG_LIST},
	{"prefix", ARG_VALUE},
	{"custom", ARG_VALUE},
	{"role", ARG_VALUE},
	{NULL, ARG_FLAG},
};

const command cmd_add_target = {
	.name = "add-target",
	.summary = "add or replace target files in a staged targets role",
	.help = "Usage: otter-repo add-target FILE... [--path TARGETPATH...] [--prefix DIR]\n"
		"                             [--custom JSON] [--role ROLE]\n"
		"\n"
		"Adds each FILE as a target: its length, sha256 and sha512 go into the next version\n"
		"of the role (staged, unsigned), and the file is copied into staging/targets/; publish\n"
		"places it in targets/ under every hash-prefixed name devices fetch\n"
		"(dir/<sha256>.name and dir/<sha512>.name). Adding a file again replaces its staged\n"
		"copy, and publish then replaces the published copies with it.\n"
		"\n"
		"  --path TARGETPATH...  the target path of each FILE, in order (default: the file\n"
		"                        name). Relative, no empty, '.' or '..' components, only\n"
		"                        [A-Za-z0-9._~+=,@-] and '/'.\n"
		"  --prefix DIR          with default paths: DIR/<file name>\n"
		"  --custom JSON         a JSON object kept as the targets' \"custom\" data\n"
		"  --role ROLE           the targets role to list them in (default: targets, or the\n"
		"                        hash bin of the path when targets uses succinct bins); the\n"
		"                        path must be within what the role is delegated\n"
		"\n"
		"Replacing a target replaces its custom data too. Nothing is written when any file\n"
		"or path is refused.\n",
	.opts = add_opts,
	.run = run_add,
};

static const arg_spec remove_opts[] = {
	{"role", ARG_VALUE},
	{NULL, ARG_FLAG},
};

const command cmd_remove_target = {
	.name = "remove-target",
	.summary = "remove targets from a staged targets role",
	.help = "Usage: otter-repo remove-target TARGETPATH... [--role ROLE]\n"
		"\n"
		"Stages the next version of the role listing each TARGETPATH without it. The files\n"
		"stay in targets/ (devices on older metadata may still fetch them).\n"
		"\n"
		"  --role ROLE   the role to remove it from, when several list it\n",
	.opts = remove_opts,
	.run = run_remove,
};
