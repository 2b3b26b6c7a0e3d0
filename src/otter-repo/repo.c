/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The repository folder: otter-repo.conf, metadata/ (published), targets/ (published) and
 * staging/ (the next versions of roles, unsigned or partly signed, and the target files added
 * since the last publish, in staging/targets/ by sha256).
 *
 * Published state is read back from the files themselves: timestamp.json names the snapshot,
 * the snapshot names every targets role and its version. Root is the highest N.root.json.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "lib/limits.h"
#include "otter-repo.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(otter_repo_metadata, otter_repo_metadata_free)

const char *repo_dir_arg(const args *a)
{
	const char *d = args_value(a, "repo");

	return d ? d : ".";
}

static void role_clear(repo_role *role)
{
	json_decref(role->hidden);
	if (role->cur && role->cur != role->pub)
		otter_repo_metadata_free(role->cur);
	otter_repo_metadata_free(role->pub);
	json_decref(role->staged);
	free(role->staged_canon);
	free(role->name);
}

repo *repo_free(repo *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->n_roles; i++)
		role_clear(&r->roles[i]);
	free(r->roles);
	free(r->index);
	otter_repo_metadata_free(r->timestamp);
	otter_repo_metadata_free(r->snapshot);
	otter_repo_config_clear(&r->cfg);
	if (r->dfd >= 0)
		close(r->dfd);
	if (r->mdfd >= 0)
		close(r->mdfd);
	if (r->tgfd >= 0)
		close(r->tgfd);
	if (r->stfd >= 0)
		close(r->stfd);
	if (r->lockfd >= 0)
		close(r->lockfd); /* releases the flock */
	free(r->dir);
	free(r);
	return NULL;
}

DEFINE_CLEANUP_FUNC(repo, repo_free)

/* Repositories with succinct hash bins have up to 2^16 roles: look them up by hash. */
static size_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)h;
}

static int index_rebuild(repo *r, size_t cap, otter_error *err)
{
	size_t *idx = otter_calloc(cap, sizeof(*idx));

	if (!idx)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	for (size_t i = 0; i < r->n_roles; i++) {
		size_t slot = name_hash(r->roles[i].name) & (cap - 1);
		while (idx[slot])
			slot = (slot + 1) & (cap - 1);
		idx[slot] = i + 1;
	}
	free(r->index);
	r->index = idx;
	r->index_cap = cap;
	return 0;
}

repo_role *repo_role_find(repo *r, const char *name)
{
	size_t slot;

	if (!r->index_cap)
		return NULL;
	for (slot = name_hash(name) & (r->index_cap - 1); r->index[slot];
	     slot = (slot + 1) & (r->index_cap - 1)) {
		repo_role *role = &r->roles[r->index[slot] - 1];
		if (strcmp(role->name, name) == 0)
			return role;
	}
	return NULL;
}

int repo_role_add(repo *r, const char *name, repo_role **out, otter_error *err)
{
	repo_role *role = repo_role_find(r, name), *p;
	int r2;

	if (role) {
		*out = role;
		return 0;
	}
	p = otter_reallocarray(r->roles, r->n_roles + 1, sizeof(*p));
	if (!p)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r->roles = p;
	role = &p[r->n_roles];
	memset(role, 0, sizeof(*role));
	role->name = otter_strdup(name);
	if (!role->name)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	role->type = strcmp(name, "root") == 0 ? OTTER_REPO_ROOT : OTTER_REPO_TARGETS;
	r->n_roles++;
	if (2 * r->n_roles > r->index_cap) {
		r2 = index_rebuild(r, r->index_cap ? 2 * r->index_cap : 64, err);
	} else {
		size_t slot = name_hash(name) & (r->index_cap - 1);
		while (r->index[slot])
			slot = (slot + 1) & (r->index_cap - 1);
		r->index[slot] = r->n_roles;
		r2 = 0;
	}
	if (r2 < 0) {
		free(role->name);
		r->n_roles--;
		return r2;
	}
	*out = role;
	return 0;
}

/* Reads and parses metadata/<name>. */
static int load_published(repo *r, const char *name, otter_repo_role_type type,
			  otter_repo_metadata **out, otter_error *err)
{
	_cleanup_free_ uint8_t *raw = NULL;
	char what[PATH_MAX];
	size_t len;
	int r2;

	strfmt(what, sizeof(what), "metadata/%s", name);
	r2 = fileio_read(r->mdfd, name, OTTER_TUF_METADATA_HARD_MAX, &raw, &len, err);
	if (r2 < 0)
		return otter_error_prefix(err, r2, "published %s", what);
	return otter_repo_metadata_parse(out, type, raw, len, what, err);
}

static bool md_exists(repo *r, const char *name)
{
	struct stat st;

	return fstatat(r->mdfd, name, &st, 0) == 0;
}

static int load_published_state(repo *r, bool lenient, otter_error *err)
{
	_cleanup_(otter_repo_metadata_freep) otter_repo_metadata *root = NULL;
	repo_role *role;
	const char *metapath;
	json_t *entry;
	char name[64];
	int r2;

	if (!md_exists(r, "root.json"))
		return 0; /* nothing published yet (init without keys) */
	r2 = load_published(r, "root.json", OTTER_REPO_ROOT, &root, err);
	if (r2 < 0)
		return r2;
	/* A publish cut short after N+1.root.json: that root is out and clients may trust it. */
	for (;;) {
		otter_repo_metadata *next = NULL;

		strfmt(name, sizeof(name), "%" PRIu64 ".root.json",
		       otter_repo_metadata_version(root) + 1);
		if (!md_exists(r, name))
			break;
		r2 = load_published(r, name, OTTER_REPO_ROOT, &next, err);
		if (r2 < 0)
			return r2;
		otter_repo_metadata_free(root);
		root = next;
	}
	r2 = repo_role_add(r, "root", &role, err);
	if (r2 < 0)
		return r2;
	role->pub = TAKE_PTR(root);

	if (!md_exists(r, "timestamp.json"))
		return 0;
	r2 = load_published(r, "timestamp.json", OTTER_REPO_TIMESTAMP, &r->timestamp, err);
	if (r2 < 0)
		return r2;
	{
		_cleanup_free_ char *fn = NULL;
		r2 = otter_repo_metadata_filename(
			"snapshot", otter_repo_metadata_snapshot_version(r->timestamp),
			otter_repo_metadata_consistent_snapshot(role->pub), &fn, err);
		if (r2 < 0 ||
		    (r2 = load_published(r, fn, OTTER_REPO_SNAPSHOT, &r->snapshot, err)) < 0)
			return r2;
	}
	json_object_foreach(otter_repo_metadata_meta(r->snapshot), metapath, entry) {
		_cleanup_free_ char *rolename = NULL, *fn = NULL;
		uint64_t version;
		size_t n = strlen(metapath);

		if (n <= 5 || !str_endswith(metapath, ".json") || strcmp(metapath, "root.json") == 0)
			continue;
		rolename = otter_strndup(metapath, n - 5);
		if (!rolename)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		if (otter_repo_metafile_version(entry, metapath, &version, err) < 0)
			return OTTER_E_FORMAT;
		r2 = otter_repo_metadata_filename(
			rolename, version, otter_repo_metadata_consistent_snapshot(role->pub), &fn,
			err);
		if (r2 < 0)
			return r2;
		repo_role *tr;
		r2 = repo_role_add(r, rolename, &tr, err);
		if (r2 < 0)
			return r2;
		/* role may have moved in the array */
		role = repo_role_find(r, "root");
		r2 = load_published(r, fn, OTTER_REPO_TARGETS, &tr->pub, err);
		if (r2 < 0) {
			if (!lenient)
				return r2;
			cli_warn("%s", err->msg);
			otter_error_clear(err);
		}
	}
	return 0;
}

static char *percent_decode(const char *s, size_t n)
{
	char *out = otter_malloc(n + 1), *q = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		uint8_t b;
		if (s[i] == '%' && i + 2 < n && hex_decode(s + i + 1, 2, &b, 1)) {
			*q++ = (char)b;
			i += 2;
		} else {
			*q++ = s[i];
		}
	}
	*q = '\0';
	return out;
}

static int load_staged(repo *r, const char *fname, otter_error *err)
{
	_cleanup_free_ uint8_t *raw = NULL;
	_cleanup_free_ char *name = NULL;
	_cleanup_(json_decrefp) json_t *env = NULL;
	char what[PATH_MAX];
	otter_repo_role_type type;
	repo_role *role;
	size_t len;
	int r2;

	name = percent_decode(fname, strlen(fname) - 5);
	if (!name)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	strfmt(what, sizeof(what), "staging/%s", fname);
	if (strcmp(name, "root") != 0 && strcmp(name, "targets") != 0 &&
	    !otter_repo_role_name_ok(name))
		return otter_error_set(err, OTTER_E_FORMAT,
				       "%s: '%s' is not a role otter-repo stages; remove the file",
				       what, name);
	r2 = fileio_read(r->stfd, fname, OTTER_TUF_METADATA_HARD_MAX, &raw, &len, err);
	if (r2 < 0)
		return otter_error_prefix(err, r2, "%s", what);
	r2 = otter_repo_envelope_parse(&env, &type, raw, len, what, err);
	if (r2 < 0)
		return r2;
	if (type != (strcmp(name, "root") == 0 ? OTTER_REPO_ROOT : OTTER_REPO_TARGETS))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: holds %s metadata", what,
				       otter_repo_role_type_name(type));
	r2 = repo_role_add(r, name, &role, err);
	if (r2 < 0)
		return r2;
	r2 = otter_json_canonical(otter_repo_envelope_signed(env), &role->staged_canon,
				  &role->staged_canon_len, err);
	if (r2 < 0)
		return r2;
	role->staged = TAKE_PTR(env);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_staging(repo *r, otter_error *err)
{
	_cleanup_free_ char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *d;
	int fd, r2 = 0;

	if (r->stfd < 0)
		return 0;
	fd = openat(r->stfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return otter_error_set_errno(err, errno, "reading staging/");
	}
	while ((de = readdir(d))) {
		char **p;
		if (de->d_name[0] == '.' || !str_endswith(de->d_name, ".json") ||
		    strlen(de->d_name) <= 5)
			continue;
		p = otter_reallocarray(names, n + 1, sizeof(*p));
		if (!p || !(p[n] = otter_strdup(de->d_name))) {
			if (p)
				names = p;
			r2 = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			break;
		}
		names = p;
		n++;
	}
	closedir(d);
	if (names)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (r2 == 0)
			r2 = load_staged(r, names[i], err);
		free(names[i]);
	}
	return r2;
}

static int open_sub(int dfd, const char *name, bool required, const char *dir, int *out,
		    otter_error *err)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 && (errno != ENOENT || required))
		return otter_error_set_errno(err, errno, "'%s/%s'", dir, name);
	*out = fd;
	return 0;
}

int repo_open(repo **out, const char *dir, unsigned flags, otter_error *err)
{
	_cleanup_(repo_freep) repo *r = NULL;
	_cleanup_free_ uint8_t *conf = NULL;
	size_t len;
	int r2;

	r = otter_calloc(1, sizeof(*r));
	if (!r)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r->dfd = r->mdfd = r->tgfd = r->stfd = r->lockfd = -1;
	r->now = (int64_t)time(NULL);
	otter_repo_config_init(&r->cfg);
	r->dir = realpath(dir, NULL);
	if (!r->dir)
		return otter_error_set_errno(err, errno, "repository folder '%s'", dir);
	r->dfd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->dfd < 0)
		return otter_error_set_errno(err, errno, "repository folder '%s'", dir);
	r2 = fileio_read(r->dfd, OTTER_REPO_CONFIG_NAME, OTTER_REPO_CONFIG_MAX_SIZE, &conf, &len,
			 err);
	if (r2 == OTTER_E_NOT_FOUND) {
		otter_error_clear(err);
		return otter_error_set(
			err, OTTER_E_NOT_FOUND,
			"'%s' is not an otter-repo repository (no %s): create one with "
			"'otter-repo init --repo %s'",
			r->dir, OTTER_REPO_CONFIG_NAME, dir);
	}
	if (r2 < 0)
		return r2;
	r2 = otter_repo_config_parse(&r->cfg, conf, len, OTTER_REPO_CONFIG_NAME, err);
	if (r2 < 0)
		return r2;
	if (flags & REPO_OPEN_LOCK) {
		r->lockfd = openat(r->dfd, REPO_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (r->lockfd < 0)
			return otter_error_set_errno(err, errno, "lock file");
		if (flock(r->lockfd, LOCK_EX | LOCK_NB) < 0)
			return otter_error_set(err, OTTER_E_BUSY,
					       "another otter-repo command is working on '%s'; "
					       "try again when it is done",
					       r->dir);
	}
	if ((r2 = open_sub(r->dfd, "metadata", true, r->dir, &r->mdfd, err)) < 0 ||
	    (r2 = open_sub(r->dfd, "targets", true, r->dir, &r->tgfd, err)) < 0 ||
	    (r2 = open_sub(r->dfd, REPO_STAGING_DIR, false, r->dir, &r->stfd, err)) < 0)
		return r2;
	if (flags & REPO_OPEN_LOCK) {
		/* Leftovers of a crash are never metadata (style.md §3.5). */
		fileio_remove_stale_tmp(r->mdfd);
		if (r->stfd >= 0)
			fileio_remove_stale_tmp(r->stfd);
	}
	r2 = load_published_state(r, !(flags & REPO_OPEN_LOCK), err);
	if (r2 < 0)
		return r2;
	r2 = load_staging(r, err);
	if (r2 < 0)
		return r2;
	*out = TAKE_PTR(r);
	return 0;
}

/* ---- current view ---- */

const json_t *repo_role_signed(const repo_role *role)
{
	if (role->staged)
		return otter_repo_envelope_signed(role->staged);
	return role->pub ? otter_repo_metadata_signed(role->pub) : NULL;
}

int repo_role_current(repo *r, repo_role *role, otter_repo_metadata **out, otter_error *err)
{
	_cleanup_free_ uint8_t *bytes = NULL;
	size_t len;
	char what[300];
	int r2;

	if (role->cur) {
		*out = role->cur;
		return 0;
	}
	if (!role->staged) {
		if (!role->pub)
			return otter_error_set(err, OTTER_E_NOT_FOUND,
					       "role '%s' has no metadata yet", role->name);
		*out = role->cur = role->pub;
		return 0;
	}
	strfmt(what, sizeof(what), "staged %s", role->name);
	r2 = otter_repo_serialize(role->staged, &bytes, &len, err);
	if (r2 < 0)
		return otter_error_prefix(err, r2, "%s", what);
	r2 = otter_repo_metadata_parse(&role->cur, role->type, bytes, len, what, err);
	if (r2 < 0)
		return r2;
	*out = role->cur;
	return 0;
}

static void invalidate(repo_role *role)
{
	if (role->cur && role->cur != role->pub)
		otter_repo_metadata_free(role->cur);
	role->cur = NULL;
}

void repo_hide_staged(repo *r, bool hide)
{
	for (size_t i = 0; i < r->n_roles; i++) {
		repo_role *role = &r->roles[i];

		if (hide && role->staged) {
			role->hidden = role->staged;
			role->staged = NULL;
			invalidate(role);
		} else if (!hide && role->hidden) {
			role->staged = role->hidden;
			role->hidden = NULL;
			invalidate(role);
		}
	}
}

void repo_role_touch(repo_role *role)
{
	invalidate(role);
	role->staged_dirty = true;
}

bool repo_consistent(repo *r)
{
	repo_role *root = repo_role_find(r, "root");
	const json_t *s = root ? repo_role_signed(root) : NULL;

	return s ? json_is_true(json_object_get(s, "consistent_snapshot")) : true;
}

int repo_stage_role(repo *r, repo_role *role, json_t **signed_out, otter_error *err)
{
	int r2;

	if (!role->staged) {
		_cleanup_(json_decrefp) json_t *env = NULL;

		if (!role->pub)
			return otter_error_set(err, OTTER_E_NOT_FOUND,
					       "role '%s' has no published metadata to start from",
					       role->name);
		env = json_deep_copy(otter_repo_metadata_doc(role->pub));
		if (!env)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		otter_repo_clear_signatures(env);
		r2 = otter_repo_signed_set(
			otter_repo_envelope_signed(env), otter_repo_metadata_version(role->pub) + 1,
			r->now + otter_repo_config_expiry(&r->cfg, role->name), err);
		if (r2 < 0)
			return r2;
		role->staged = TAKE_PTR(env);
	}
	repo_role_touch(role);
	*signed_out = otter_repo_envelope_signed(role->staged);
	return 0;
}

int repo_stage_new(repo *r, const char *name, json_t *signed_obj, otter_error *err)
{
	repo_role *role;
	int r2;

	r2 = repo_role_add(r, name, &role, err);
	if (r2 < 0)
		return r2;
	if (role->pub || role->staged)
		return otter_error_set(err, OTTER_E_EXISTS, "role '%s' already has metadata",
				       name);
	r2 = otter_repo_envelope_new(&role->staged, signed_obj, err);
	if (r2 < 0)
		return r2;
	repo_role_touch(role);
	return 0;
}

static int staged_filename(const char *role, char **out, otter_error *err)
{
	_cleanup_free_ char *enc = percent_encode(role);

	if (!enc || !(*out = str_concat(enc, ".json")))
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	return 0;
}

int repo_save_staging(repo *r, otter_error *err)
{
	int r2;

	if (r->stfd < 0) {
		if (mkdirat(r->dfd, REPO_STAGING_DIR, 0755) < 0 && errno != EEXIST)
			return otter_error_set_errno(err, errno, "creating staging/");
		r2 = open_sub(r->dfd, REPO_STAGING_DIR, true, r->dir, &r->stfd, err);
		if (r2 < 0)
			return r2;
	}
	for (size_t i = 0; i < r->n_roles; i++) {
		repo_role *role = &r->roles[i];
		_cleanup_free_ char *fn = NULL;
		_cleanup_free_ uint8_t *bytes = NULL, *canon = NULL;
		size_t len, clen;

		if (!role->staged_drop && !role->staged_dirty)
			continue;
		r2 = staged_filename(role->name, &fn, err);
		if (r2 < 0)
			return r2;
		if (role->staged_drop) {
			if (unlinkat(r->stfd, fn, 0) < 0 && errno != ENOENT)
				return otter_error_set_errno(err, errno, "removing staging/%s", fn);
			role->staged_drop = false;
			continue;
		}
		r2 = otter_json_canonical(otter_repo_envelope_signed(role->staged), &canon, &clen,
					  err);
		if (r2 < 0)
			return r2;
		if (role->staged_canon &&
		    (clen != role->staged_canon_len || memcmp(canon, role->staged_canon, clen))) {
			size_t dropped = otter_repo_clear_signatures(role->staged);
			if (dropped)
				cli_warn("%zu signature%s on staged %s dropped: its content "
					 "changed, so it must be signed again",
					 dropped, dropped == 1 ? "" : "s", role->name);
		}
		r2 = otter_repo_serialize(role->staged, &bytes, &len, err);
		if (r2 < 0)
			return otter_error_prefix(err, r2, "staged %s", role->name);
		r2 = fileio_write_atomic(r->stfd, fn, bytes, len, 0644, err);
		if (r2 < 0)
			return otter_error_prefix(err, r2, "staging/%s", fn);
		free(role->staged_canon);
		role->staged_canon = TAKE_PTR(canon);
		role->staged_canon_len = clen;
		role->staged_dirty = false;
	}
	return 0;
}

/* ---- delegation tree ---- */

struct node {
	repo_role *role;
	otter_repo_metadata *md;
	int parent;
	const otter_repo_delegated_role *d; /* the delegation that leads here; NULL for a bin */
	const char *name;
};

/*
 * Breadth-first search of the current delegation tree from targets for name. Fills nodes
 * (caller frees) and returns the index of name's node, or -1. Roles without metadata are not
 * descended into; bins are not searched further.
 */
static bool push_node(struct node **nodes, size_t *n, size_t *cap, struct node node)
{
	if (*n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 16;
		struct node *p = otter_reallocarray(*nodes, ncap, sizeof(*p));
		if (!p)
			return false;
		*nodes = p;
		*cap = ncap;
	}
	(*nodes)[(*n)++] = node;
	return true;
}

static int search(repo *r, const char *name, struct node **nodes_out, size_t *n_out,
		  otter_error *err)
{
	_cleanup_free_ struct node *nodes = NULL;
	size_t n = 0, cap = 0;
	repo_role *top = repo_role_find(r, "targets");
	int found = -1;

	*nodes_out = NULL;
	*n_out = 0;
	if (!top)
		return -1;
	if (!push_node(&nodes, &n, &cap,
		       (struct node){.role = top, .parent = -1, .name = "targets"}))
		goto oom;
	if (strcmp(name, "targets") == 0)
		found = 0;
	for (size_t i = 0; i < n && found < 0; i++) {
		otter_repo_metadata *md;

		if (repo_role_current(r, nodes[i].role, &md, NULL) < 0)
			continue;
		nodes[i].md = md;
		if (otter_repo_metadata_succinct(md, NULL, NULL)) {
			/* Bins are leaves here: otter-repo does not delegate further from them. */
			if (otter_repo_metadata_is_bin(md, name)) {
				if (!push_node(&nodes, &n, &cap,
					       (struct node){.role = repo_role_find(r, name),
							     .parent = (int)i, .name = name}))
					goto oom;
				found = (int)n - 1;
			}
			continue;
		}
		for (size_t j = 0; j < otter_repo_metadata_n_delegations(md) && found < 0; j++) {
			const otter_repo_delegated_role *d = otter_repo_metadata_delegation(md, j);
			const char *dname = otter_repo_delegated_role_name(d);
			repo_role *child = repo_role_find(r, dname);
			bool seen = false;

			for (size_t k = 0; k < n && !seen; k++)
				seen = strcmp(nodes[k].name, dname) == 0;
			if (seen || (!child && strcmp(dname, name) != 0))
				continue;
			if (!push_node(&nodes, &n, &cap,
				       (struct node){.role = child,
						     .parent = (int)i,
						     .d = d,
						     .name = dname}))
				goto oom;
			if (strcmp(dname, name) == 0)
				found = (int)n - 1;
		}
	}
	*nodes_out = TAKE_PTR(nodes);
	*n_out = n;
	return found;
oom:
	otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	return -2;
}

int repo_role_signers(repo *r, const char *name, const otter_repo_keyring **ring,
		      const otter_repo_rolekeys **keys, repo_role **delegator_out, otter_error *err)
{
	_cleanup_free_ struct node *nodes = NULL;
	int t = otter_repo_top_level_type(name), idx, r2;
	otter_repo_metadata *md;
	size_t n;

	if (t >= 0) {
		repo_role *root = repo_role_find(r, "root");
		if (!root)
			return otter_error_set(err, OTTER_E_NOT_FOUND, "the repository has no root");
		r2 = repo_role_current(r, root, &md, err);
		if (r2 < 0)
			return r2;
		*ring = otter_repo_metadata_keys(md);
		*keys = otter_repo_metadata_root_role(md, t);
		if (delegator_out)
			*delegator_out = root;
		return 0;
	}
	idx = search(r, name, &nodes, &n, err);
	if (idx == -2)
		return OTTER_E_NOMEM;
	if (idx < 0)
		return otter_error_set(err, OTTER_E_NOT_FOUND,
				       "no role delegates to '%s' (delegate it first: otter-repo "
				       "delegate %s ...)",
				       name, name);
	md = nodes[nodes[idx].parent].md;
	*ring = otter_repo_metadata_keys(md);
	*keys = nodes[idx].d ? otter_repo_delegated_role_keys(nodes[idx].d)
			     : otter_repo_metadata_succinct_keys(md);
	if (delegator_out)
		*delegator_out = nodes[nodes[idx].parent].role;
	return 0;
}

bool repo_role_reachable(repo *r, const char *name)
{
	_cleanup_free_ struct node *nodes = NULL;
	size_t n;

	if (otter_repo_top_level_type(name) >= 0)
		return true;
	return search(r, name, &nodes, &n, NULL) >= 0;
}

int repo_check_target_reaches(repo *r, const char *role, const char *target_path,
			      otter_error *err)
{
	_cleanup_free_ struct node *nodes = NULL;
	size_t n;
	int idx;

	if (strcmp(role, "targets") == 0)
		return 0;
	idx = search(r, role, &nodes, &n, err);
	if (idx == -2)
		return OTTER_E_NOMEM;
	if (idx < 0)
		return otter_error_set(err, OTTER_E_NOT_FOUND,
				       "no role delegates to '%s' (delegate it first)", role);
	for (int i = idx; nodes[i].parent >= 0; i = nodes[i].parent) {
		const struct node *p = &nodes[nodes[i].parent];
		bool ok;

		if (nodes[i].d) {
			ok = otter_repo_delegated_role_matches(nodes[i].d, target_path);
		} else {
			_cleanup_free_ char *bin = NULL;
			int r2 = otter_repo_metadata_bin_for(p->md, target_path, &bin, err);
			if (r2 < 0)
				return r2;
			ok = strcmp(bin, nodes[i].name) == 0;
		}
		if (!ok)
			return otter_error_set(err, OTTER_E_INVALID,
					       "target '%s' is outside what '%s' delegates to '%s': "
					       "a device would never look for it there",
					       target_path, p->name, nodes[i].name);
	}
	return 0;
}

int repo_default_target_role(repo *r, const char *target_path, char **out, otter_error *err)
{
	repo_role *top = repo_role_find(r, "targets");
	otter_repo_metadata *md;
	int r2;

	if (!top)
		return otter_error_set(err, OTTER_E_NOT_FOUND, "the repository has no targets role");
	r2 = repo_role_current(r, top, &md, err);
	if (r2 < 0)
		return r2;
	if (otter_repo_metadata_succinct(md, NULL, NULL))
		return otter_repo_metadata_bin_for(md, target_path, out, err);
	*out = otter_strdup("targets");
	return *out ? 0 : otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

/* ---- online keys ---- */

static bool online_entry_matches(repo *r, const char *entry, const char *role)
{
	repo_role *top;
	otter_repo_metadata *md;
	const char *prefix;

	if (strcmp(entry, role) == 0)
		return true;
	/* An entry naming a succinct delegation's prefix covers every bin. */
	top = repo_role_find(r, "targets");
	if (!top || repo_role_current(r, top, &md, NULL) < 0 ||
	    !otter_repo_metadata_succinct(md, NULL, &prefix))
		return false;
	return strcmp(prefix, entry) == 0 && otter_repo_metadata_is_bin(md, role);
}

static int online_passphrase(repo *r, char *buf, size_t size, bool *have, otter_error *err)
{
	*have = false;
	if (r->cfg.passphrase_env) {
		const char *v = getenv(r->cfg.passphrase_env);
		if (!v)
			return otter_error_set(err, OTTER_E_CONFIG,
					       "%s: passphrase.env names '%s', which is not set",
					       OTTER_REPO_CONFIG_NAME, r->cfg.passphrase_env);
		if (strlen(v) >= size)
			return otter_error_set(err, OTTER_E_CONFIG, "online passphrase too long");
		strfmt(buf, size, "%s", v);
		*have = true;
	} else if (r->cfg.passphrase_file) {
		_cleanup_free_ uint8_t *data = NULL;
		size_t len;
		int r2 = cli_check_key_location(r->cfg.passphrase_file, r->dir, err);

		if (r2 < 0)
			return r2;
		r2 = cli_read_file(r->cfg.passphrase_file, size - 1, &data, &len, err);
		if (r2 < 0)
			return otter_error_prefix(err, r2, "passphrase file");
		while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
			len--;
		memcpy(buf, data, len);
		buf[len] = '\0';
		OPENSSL_cleanse(data, len);
		*have = true;
	}
	return 0;
}

int repo_online_keys(repo *r, const char *role, otter_key ***out, size_t *n_out,
		     otter_error *err)
{
	otter_key **keys = NULL;
	char pass[1024];
	bool have = false, pass_loaded = false;
	size_t n = 0;
	int r2 = 0;

	for (size_t i = 0; i < r->cfg.n_online && r2 == 0; i++) {
		otter_key **p;

		if (!online_entry_matches(r, r->cfg.online[i].role, role))
			continue;
		if (!pass_loaded) {
			r2 = online_passphrase(r, pass, sizeof(pass), &have, err);
			pass_loaded = true;
			if (r2 < 0)
				break;
		}
		p = otter_reallocarray(keys, n + 1, sizeof(*p));
		if (!p) {
			r2 = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			break;
		}
		keys = p;
		r2 = cli_load_private_key(r->cfg.online[i].path, have ? pass : NULL, r->dir,
					  &keys[n], err);
		if (r2 < 0) {
			r2 = otter_error_prefix(err, r2, "online key for %s (%s, [online] in %s)",
						role, r->cfg.online[i].path,
						OTTER_REPO_CONFIG_NAME);
			break;
		}
		n++;
	}
	OPENSSL_cleanse(pass, sizeof(pass));
	if (r2 < 0) {
		keys_free(keys, n);
		return r2;
	}
	*out = keys;
	*n_out = n;
	return 0;
}

/* ---- signature reports ---- */

void sig_reports_clear(sig_report *reps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		otter_repo_strv_free(reps[i].signed_ids);
		otter_repo_strv_free(reps[i].missing_ids);
		reps[i].signed_ids = reps[i].missing_ids = NULL;
	}
}

static int report(sig_report *rep, const char *label, const otter_repo_metadata *md,
		  const otter_repo_keyring *ring, const otter_repo_rolekeys *keys, otter_error *err)
{
	int v = otter_repo_signature_status(md, ring, keys, &rep->signed_ids, &rep->missing_ids,
					    err);

	if (v < 0)
		return v;
	strfmt(rep->label, sizeof(rep->label), "%s", label);
	rep->valid = (size_t)v;
	rep->threshold = otter_repo_rolekeys_threshold(keys);
	return 0;
}

int repo_staged_signatures(repo *r, repo_role *role, sig_report out[2], size_t *n_out,
			   otter_error *err)
{
	const otter_repo_keyring *ring;
	const otter_repo_rolekeys *keys;
	otter_repo_metadata *md;
	int r2;

	*n_out = 0;
	memset(out, 0, 2 * sizeof(*out));
	r2 = repo_role_current(r, role, &md, err);
	if (r2 < 0)
		return r2;
	if (role->type == OTTER_REPO_ROOT) {
		if (role->pub && role->staged) {
			r2 = report(&out[0], "keys of the published root (old)", md,
				    otter_repo_metadata_keys(role->pub),
				    otter_repo_metadata_root_role(role->pub, OTTER_REPO_ROOT), err);
			if (r2 < 0)
				return r2;
			(*n_out)++;
		}
		r2 = report(&out[*n_out],
			    role->pub && role->staged ? "keys of the new root" : "root keys", md,
			    otter_repo_metadata_keys(md),
			    otter_repo_metadata_root_role(md, OTTER_REPO_ROOT), err);
		if (r2 < 0) {
			sig_reports_clear(out, *n_out);
			return r2;
		}
		(*n_out)++;
		return 0;
	}
	r2 = repo_role_signers(r, role->name, &ring, &keys, NULL, err);
	if (r2 < 0)
		return r2;
	{
		repo_role *delegator = NULL;
		char label[160];
		repo_role_signers(r, role->name, &ring, &keys, &delegator, NULL);
		if (delegator && delegator->type == OTTER_REPO_ROOT)
			strfmt(label, sizeof(label), "keys root assigns to %s", role->name);
		else
			strfmt(label, sizeof(label), "keys %s delegates %s to",
			       delegator ? delegator->name : "?", role->name);
		r2 = report(&out[0], label, md, ring, keys, err);
	}
	if (r2 < 0)
		return r2;
	*n_out = 1;
	return 0;
}
