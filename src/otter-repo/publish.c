/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Publishing (tuf.md §10.2): everything is prepared and checked in memory first, with the
 * client's own code (otter_repo_metadata_parse, otter_repo_verify_threshold, and a whole client
 * refresh against the would-be repository). Only then are files written, each atomically, in an
 * order that never lets a client see a reference to a file that is not there yet:
 *
 *   target files -> delegated roles -> targets -> snapshot -> N.root.json -> root.json
 *   -> timestamp.json (last)
 *
 * With consistent snapshots every file but timestamp.json and root.json has a new name, so a
 * client polling mid-publish keeps seeing the previous, complete repository until the new
 * timestamp.json replaces the old one in one rename. A new root is written just before the
 * timestamp, so the window in which a client can see root N+1 next to the old timestamp is one
 * rename long; if root N+1 changed the timestamp or snapshot keys, such a client fails that one
 * refresh (it never accepts anything) and succeeds at the next poll.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <otter/tuf.h>

#include "lib/limits.h"
#include "otter-repo.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(otter_tuf_updater, otter_tuf_updater_free)
DEFINE_CLEANUP_FUNC(otter_tuf_target, otter_tuf_target_free)

#define OVERLAY_URL "otter-repo-check://repository/"

typedef struct outfile {
	char *name; /* in metadata/ */
	uint8_t *data;
	size_t len;
	otter_repo_metadata *md;
	repo_role *role; /* staged role it comes from; NULL for snapshot/timestamp */
	bool skip;       /* staged copy is what is published already */
} outfile;

typedef struct plan {
	outfile *files;
	size_t n;
	const uint8_t *snap_data; /* snapshot bytes the timestamp points at */
	size_t snap_len;
	uint64_t snap_version;
	/* target files to place: (relative name under targets/, blob name or NULL) */
	char **tnames;
	char **tblobs;
	size_t n_t;
} plan;

static void plan_clear(plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->files[i].name);
		free(p->files[i].data);
		otter_repo_metadata_free(p->files[i].md);
	}
	free(p->files);
	for (size_t i = 0; i < p->n_t; i++) {
		free(p->tnames[i]);
		free(p->tblobs[i]);
	}
	free(p->tnames);
	free(p->tblobs);
	memset(p, 0, sizeof(*p));
}

static outfile *plan_add(plan *p, otter_error *err)
{
	outfile *f = otter_reallocarray(p->files, p->n + 1, sizeof(*f));

	if (!f) {
		otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		return NULL;
	}
	p->files = f;
	memset(&f[p->n], 0, sizeof(*f));
	return &f[p->n++];
}

/* Signs env with every key listed in a or b; *count (optional) adds the number. */
static int sign_authorized(json_t *env, otter_key *const *keys, size_t n,
			   const otter_repo_rolekeys *a, const otter_repo_rolekeys *b,
			   size_t *count, otter_error *err)
{
	for (size_t i = 0; i < n; i++) {
		char keyid[OTTER_KEYID_HEX_LEN + 1];
		int r = key_id(keys[i], keyid, err);

		if (r < 0)
			return r;
		if (!otter_repo_rolekeys_has(a, keyid) && !otter_repo_rolekeys_has(b, keyid))
			continue;
		r = otter_repo_sign(env, keys[i], NULL, err);
		if (r < 0)
			return r;
		if (count)
			(*count)++;
	}
	return 0;
}

/* Threshold check with the client's code; on failure the message names the missing keys. */
static int check_threshold(const otter_repo_metadata *md, const otter_repo_keyring *ring,
			   const otter_repo_rolekeys *keys, const char *what, const char *hint,
			   otter_error *err)
{
	char **missing = NULL;
	char ids[400] = "", msg[sizeof(err->msg)];
	size_t off = 0;
	int r = otter_repo_verify_threshold(md, ring, keys, what, err);

	if (r != OTTER_E_SIGNATURE || !err)
		return r;
	if (otter_repo_signature_status(md, ring, keys, NULL, &missing, NULL) >= 0 && missing) {
		for (char **m = missing; *m && off + 20 < sizeof(ids); m++)
			off += (size_t)snprintf(ids + off, sizeof(ids) - off, "%s%.16s", off ? ", " : "",
						*m);
	}
	otter_repo_strv_free(missing);
	memcpy(msg, err->msg, sizeof(msg));
	otter_error_clear(err);
	return otter_error_set(err, r, "%s%s%s%s%s%s", msg, hint ? "; " : "", hint ? hint : "",
			       ids[0] ? " (keys without a valid signature: " : "",
			       ids[0] ? ids : "", ids[0] ? ")" : "");
}

static int check_expiry(const repo *r, const otter_repo_metadata *md, const char *name,
			otter_error *err)
{
	char when[32];

	if (otter_repo_metadata_expires(md) > r->now)
		return 0;
	utc_format(otter_repo_metadata_expires(md), when);
	return otter_error_set(
		err, OTTER_E_EXPIRED,
		"staged %s version %" PRIu64 " expired at %s: a device would reject "
		"it; give it a new expiry with 'otter-repo stage %s --expires DURATION' "
		"and sign it again",
		name, otter_repo_metadata_version(md), when, name);
}

/* Prepares one staged role: signs with the extra and online keys and checks it. */
static int prepare_role(repo *r, const publish_opts *o, repo_role *role, plan *p,
			otter_error *err)
{
	_cleanup_(json_decrefp) json_t *env = json_deep_copy(role->staged);
	const otter_repo_keyring *ring = NULL;
	const otter_repo_rolekeys *keys = NULL;
	outfile *f;
	char what[300];
	int r2;

	if (!env)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	f = plan_add(p, err);
	if (!f)
		return OTTER_E_NOMEM;
	f->role = role;
	if (role->pub && otter_repo_same_signed(env, otter_repo_metadata_doc(role->pub))) {
		/* A publish cut short after writing this file: it is out already. */
		f->skip = true;
		return 0;
	}
	strfmt(what, sizeof(what), "staged %s", role->name);
	if (role->type == OTTER_REPO_ROOT) {
		otter_repo_metadata *cur;
		r2 = repo_role_current(r, role, &cur, err);
		if (r2 < 0)
			return r2;
		r2 = sign_authorized(
			env, o->keys, o->n_keys,
			otter_repo_metadata_root_role(cur, OTTER_REPO_ROOT),
			role->pub ? otter_repo_metadata_root_role(role->pub, OTTER_REPO_ROOT)
				  : NULL,
			NULL, err);
	} else {
		otter_key **online = NULL;
		size_t n_online = 0;

		r2 = repo_role_signers(r, role->name, &ring, &keys, NULL, err);
		if (r2 < 0)
			return otter_error_prefix(err, r2, "%s", what);
		r2 = sign_authorized(env, o->keys, o->n_keys, keys, NULL, NULL, err);
		if (r2 == 0)
			r2 = repo_online_keys(r, role->name, &online, &n_online, err);
		if (r2 == 0)
			r2 = sign_authorized(env, online, n_online, keys, NULL, NULL, err);
		keys_free(online, n_online);
	}
	if (r2 < 0)
		return r2;
	r2 = otter_repo_serialize(env, &f->data, &f->len, err);
	if (r2 < 0)
		return otter_error_prefix(err, r2, "%s", what);
	r2 = otter_repo_metadata_parse(&f->md, role->type, f->data, f->len, what, err);
	if (r2 < 0)
		return r2;
	if (role->pub) {
		bool ok = role->type == OTTER_REPO_ROOT
				  ? otter_repo_metadata_version(f->md) ==
					    otter_repo_metadata_version(role->pub) + 1
				  : otter_repo_metadata_version(f->md) >
					    otter_repo_metadata_version(role->pub);
		if (!ok)
			return otter_error_set(
				err, OTTER_E_ROLLBACK,
				"%s has version %" PRIu64 " but version %" PRIu64
				" is published: %s; drop it with 'otter-repo stage %s "
				"--discard' and stage it again",
				what, otter_repo_metadata_version(f->md),
				otter_repo_metadata_version(role->pub),
				role->type == OTTER_REPO_ROOT ? "root versions go up by one"
							      : "versions only go up",
				role->name);
	} else if (role->type == OTTER_REPO_ROOT && otter_repo_metadata_version(f->md) != 1) {
		return otter_error_set(err, OTTER_E_VERSION,
				       "%s: the first root must have version 1", what);
	}
	r2 = check_expiry(r, f->md, role->name, err);
	if (r2 < 0)
		return r2;
	if (role->type == OTTER_REPO_ROOT) {
		char w[200], hint[300];
		strfmt(hint, sizeof(hint),
		       "sign staging/root.json with the missing root keys (otter-repo sign)");
		if (role->pub) {
			strfmt(w, sizeof(w),
			       "new root version %" PRIu64
			       ", signatures by the keys of root version "
			       "%" PRIu64,
			       otter_repo_metadata_version(f->md),
			       otter_repo_metadata_version(role->pub));
			r2 = check_threshold(
				f->md, otter_repo_metadata_keys(role->pub),
				otter_repo_metadata_root_role(role->pub, OTTER_REPO_ROOT), w, hint,
				err);
			if (r2 < 0)
				return r2;
		}
		strfmt(w, sizeof(w),
		       "new root version %" PRIu64 ", signatures by its own root keys",
		       otter_repo_metadata_version(f->md));
		r2 = check_threshold(f->md, otter_repo_metadata_keys(f->md),
				     otter_repo_metadata_root_role(f->md, OTTER_REPO_ROOT), w, hint,
				     err);
	} else {
		char hint[300];
		_cleanup_free_ char *enc = percent_encode(role->name);
		strfmt(hint, sizeof(hint), "sign staging/%s.json with the keys of '%s'",
		       enc ? enc : role->name, role->name);
		r2 = check_threshold(f->md, ring, keys, what, hint, err);
	}
	if (r2 < 0)
		return r2;
	return otter_repo_metadata_filename(role->name, otter_repo_metadata_version(f->md),
					    repo_consistent(r), &f->name, err);
}

/* Every role the current tree delegates to has metadata (published or staged). */
static int check_tree(repo *r, otter_error *err)
{
	for (size_t i = 0; i < r->n_roles; i++) {
		repo_role *role = &r->roles[i];
		otter_repo_metadata *md;

		if (role->type != OTTER_REPO_TARGETS || (!role->pub && !role->staged))
			continue;
		if (repo_role_current(r, role, &md, err) < 0)
			return err->code;
		const char *bin_prefix;
		unsigned bin_bits;

		if (otter_repo_metadata_succinct(md, &bin_bits, &bin_prefix)) {
			char **bins = NULL;
			int r2 = otter_repo_succinct_bin_names(bin_prefix, bin_bits, &bins, err);
			if (r2 < 0)
				return r2;
			for (char **b = bins; *b; b++) {
				repo_role *br = repo_role_find(r, *b);
				if (!br || (!br->pub && !br->staged)) {
					r2 = otter_error_set(err, OTTER_E_NOT_FOUND,
							     "'%s' delegates to hash bin '%s', which "
							     "has no metadata",
							     role->name, *b);
					break;
				}
			}
			otter_repo_strv_free(bins);
			if (r2 < 0)
				return r2;
			continue;
		}
		for (size_t j = 0; j < otter_repo_metadata_n_delegations(md); j++) {
			const char *child = otter_repo_delegated_role_name(
				otter_repo_metadata_delegation(md, j));
			repo_role *c = repo_role_find(r, child);
			if (!c || (!c->pub && !c->staged))
				return otter_error_set(err, OTTER_E_NOT_FOUND,
						       "'%s' delegates to '%s', which has no "
						       "metadata: stage it or undelegate it",
						       role->name, child);
		}
	}
	return 0;
}

/* The online (and extra) keys for snapshot or timestamp; fails if none may sign. */
static int sign_online(repo *r, const publish_opts *o, const char *name, json_t *env,
		       const otter_repo_rolekeys *keys, otter_error *err)
{
	otter_key **online = NULL;
	size_t n_online = 0, count = 0;
	int r2;

	r2 = repo_online_keys(r, name, &online, &n_online, err);
	if (r2 == 0)
		r2 = sign_authorized(env, online, n_online, keys, NULL, &count, err);
	if (r2 == 0)
		r2 = sign_authorized(env, o->keys, o->n_keys, keys, NULL, &count, err);
	keys_free(online, n_online);
	if (r2 < 0)
		return r2;
	if (count == 0)
		return otter_error_set(err, OTTER_E_SIGNATURE,
				       "no key at hand may sign %s: list its private key under "
				       "[online] in %s (root lists %zu key%s for %s), or pass it "
				       "with --key",
				       name, OTTER_REPO_CONFIG_NAME,
				       otter_repo_rolekeys_count(keys),
				       otter_repo_rolekeys_count(keys) == 1 ? "" : "s", name);
	return 0;
}

static int build_online_role(repo *r, const publish_opts *o, otter_repo_role_type type,
			     const otter_repo_metadata *old, json_t *meta_entries, plan *p,
			     otter_error *err)
{
	_cleanup_(json_decrefp) json_t *sig = NULL;
	_cleanup_(json_decrefp) json_t *env = NULL;
	const char *name = otter_repo_role_type_name(type);
	const otter_repo_keyring *ring;
	const otter_repo_rolekeys *keys;
	const char *k;
	json_t *v, *meta;
	outfile *f;
	int r2;

	if (old) {
		sig = json_deep_copy(otter_repo_metadata_signed(old));
		if (!sig)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		r2 = otter_repo_signed_set(sig, otter_repo_metadata_version(old) + 1,
					   r->now + otter_repo_config_expiry(&r->cfg, name), err);
	} else {
		r2 = otter_repo_signed_new(
			&sig, type, r->now + otter_repo_config_expiry(&r->cfg, name), true, err);
	}
	if (r2 < 0)
		return r2;
	meta = json_object_get(sig, "meta");
	json_object_foreach(meta_entries, k, v)
		if (json_object_set(meta, k, v) < 0)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r2 = otter_repo_envelope_new(&env, sig, err);
	if (r2 < 0)
		return r2;
	r2 = repo_role_signers(r, name, &ring, &keys, NULL, err);
	if (r2 < 0)
		return r2;
	r2 = sign_online(r, o, name, env, keys, err);
	if (r2 < 0)
		return r2;
	f = plan_add(p, err);
	if (!f)
		return OTTER_E_NOMEM;
	if ((r2 = otter_repo_serialize(env, &f->data, &f->len, err)) < 0 ||
	    (r2 = otter_repo_metadata_parse(&f->md, type, f->data, f->len, name, err)) < 0 ||
	    (r2 = check_threshold(f->md, ring, keys, name, NULL, err)) < 0)
		return r2;
	return otter_repo_metadata_filename(name, otter_repo_metadata_version(f->md),
					    repo_consistent(r), &f->name, err);
}

/* ---- target files ---- */

static bool targets_has(int fd, const char *name)
{
	struct stat st;

	return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/*
 * A staged target file must be the file whose length and hashes are about to be signed: one
 * changed after add-target would be published under hashes it does not have, and every device
 * would refuse the release.
 */
static int check_blob(int blobfd, const char *blob, const char *role, const char *path,
		      const json_t *info, otter_error *err)
{
	const json_t *hashes = json_object_get(info, "hashes");
	const char *want256 = json_string_value(json_object_get(hashes, "sha256"));
	const char *want512 = json_string_value(json_object_get(hashes, "sha512"));
	json_int_t want_len = json_integer_value(json_object_get(info, "length"));
	_cleanup_close_ int fd = openat(blobfd, blob, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char what[128];
	otter_repo_digest d;
	bool same256;
	int r2;

	strfmt(what, sizeof(what), "staging/targets/%.64s", blob);
	if (fd < 0)
		return otter_error_set_errno(err, errno, "%s: opening %s", role, what);
	r2 = otter_repo_digest_fd(fd, -1, OTTER_TUF_TARGET_MAX_LENGTH, &d, what, err);
	if (r2 < 0)
		return otter_error_prefix(err, r2, "%s: target '%s'", role, path);
	same256 = want256 && strcmp(d.sha256, want256) == 0;
	if (want_len >= 0 && d.length == (uint64_t)want_len && same256 &&
	    (!want512 || strcmp(d.sha512, want512) == 0))
		return 0;
	/* The first hash that differs (sha512 only when sha256 agrees). */
	return otter_error_set(err, OTTER_E_HASH,
			       "%s: the staged file of target '%s' (%s) is not the file being "
			       "signed: expected length %" PRId64 ", %s %s; found length %" PRIu64
			       ", %s %s. It changed after add-target: add the right file again "
			       "(otter-repo add-target), then publish",
			       role, path, what, (int64_t)want_len, same256 ? "sha512" : "sha256",
			       same256 ? want512 : want256 ? want256 : "(none)", d.length,
			       same256 ? "sha512" : "sha256", same256 ? d.sha512 : d.sha256);
}

static int plan_targets(repo *r, plan *p, otter_error *err)
{
	int blobfd = r->stfd >= 0 ? openat(r->stfd, "targets", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
				  : -1;
	bool consistent = repo_consistent(r);
	int r2 = 0;

	for (size_t i = 0; i < p->n && r2 == 0; i++) {
		outfile *f = &p->files[i];
		const char *path;
		json_t *info;

		if (f->skip || !f->role || otter_repo_metadata_type(f->md) != OTTER_REPO_TARGETS)
			continue;
		json_object_foreach(otter_repo_metadata_targets(f->md), path, info) {
			json_t *hashes = json_object_get(info, "hashes");
			const char *sha = json_string_value(json_object_get(hashes, "sha256"));
			bool blob = sha && blobfd >= 0 && is_lower_hex(sha, strlen(sha)) &&
				    strlen(sha) == 64 && targets_has(blobfd, sha);
			char **names = NULL;

			if (!otter_repo_target_path_ok(path)) {
				r2 = otter_error_set(err, OTTER_E_INVALID,
						     "%s: target path '%.200s' is not one otter-repo "
						     "publishes",
						     f->role->name, path);
				break;
			}
			if (blob)
				r2 = check_blob(blobfd, sha, f->role->name, path, info, err);
			if (r2 < 0)
				break;
			r2 = otter_repo_target_filenames(path, hashes, consistent, &names, err);
			if (r2 < 0)
				break;
			for (char **n = names; *n && r2 == 0; n++) {
				char **a, **b;
				/* A staged file (checked above) wins over a published copy, even
				 * under a content-addressed name: that copy may be a damaged one. */
				if (!blob && targets_has(r->tgfd, *n))
					continue;
				if (!blob) {
					r2 = otter_error_set(err, OTTER_E_NOT_FOUND,
							     "%s: the file of target '%s' is neither "
							     "in targets/%s nor in staging: add it "
							     "again (otter-repo add-target)",
							     f->role->name, path, *n);
					break;
				}
				a = otter_reallocarray(p->tnames, p->n_t + 1, sizeof(*a));
				if (a)
					p->tnames = a;
				b = otter_reallocarray(p->tblobs, p->n_t + 1, sizeof(*b));
				if (b)
					p->tblobs = b;
				if (!a || !b) {
					r2 = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
					break;
				}
				p->tnames[p->n_t] = otter_strdup(*n);
				p->tblobs[p->n_t] = otter_strdup(sha);
				p->n_t++;
				if (!p->tnames[p->n_t - 1] || !p->tblobs[p->n_t - 1])
					r2 = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			}
			otter_repo_strv_free(names);
			if (r2 < 0)
				break;
		}
	}
	if (blobfd >= 0)
		close(blobfd);
	return r2;
}

/* Opens (creating) the folder of a relative path under dirfd; *base_out points into path. */
static int open_parent(int dirfd, const char *path, int *fd_out, const char **base_out,
		       otter_error *err)
{
	_cleanup_free_ char *copy = otter_strdup(path);
	int fd;
	char *p, *slash;

	if (!copy)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	fd = dup(dirfd);
	if (fd < 0)
		return otter_error_set_errno(err, errno, "dup");
	for (p = copy; (slash = strchr(p, '/')); p = slash + 1) {
		int next;

		*slash = '\0';
		if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST) {
			int e = errno;
			close(fd);
			return otter_error_set_errno(err, e, "creating targets folder for '%s'",
						     path);
		}
		next = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return otter_error_set_errno(err, errno, "opening targets folder for '%s'",
						     path);
		fd = next;
	}
	*fd_out = fd;
	*base_out = path + (p - copy);
	return 0;
}

/* Places blob under targets/<name>: a hard link renamed into place, else a copy. */
static int place_target(repo *r, int blobfd, const char *blob, const char *name,
			otter_error *err)
{
	_cleanup_close_ int dfd = -1;
	_cleanup_close_ int in = -1;
	_cleanup_free_ char *tmp = NULL;
	const char *base = NULL;
	int fd = -1, r2;

	r2 = open_parent(r->tgfd, name, &dfd, &base, err);
	if (r2 < 0)
		return r2;
	r2 = fileio_tmp_create(dfd, 0644, &fd, &tmp, err);
	if (r2 < 0)
		return otter_error_prefix(err, r2, "targets/%s", name);
	in = openat(blobfd, blob, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		int e = errno;
		fileio_tmp_discard(dfd, fd, tmp);
		return otter_error_set_errno(err, e, "staged target file %s", blob);
	}
	/* The blob was fsynced when it was staged; linking shares it. */
	unlinkat(dfd, tmp, 0);
	close(fd);
	if (linkat(blobfd, blob, dfd, tmp, 0) == 0) {
		if (renameat(dfd, tmp, dfd, base) < 0) {
			int e = errno;
			unlinkat(dfd, tmp, 0);
			return otter_error_set_errno(err, e, "placing targets/%s", name);
		}
		return fileio_fsync_dir(dfd, err);
	}
	free(tmp);
	tmp = NULL;
	r2 = fileio_tmp_create(dfd, 0644, &fd, &tmp, err);
	if (r2 < 0)
		return r2;
	for (;;) {
		uint8_t buf[65536];
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			fileio_tmp_discard(dfd, fd, tmp);
			return otter_error_set_errno(err, e, "reading staged %s", blob);
		}
		if (n == 0)
			break;
		r2 = fileio_write_all(fd, buf, (size_t)n, err);
		if (r2 < 0) {
			fileio_tmp_discard(dfd, fd, tmp);
			return otter_error_prefix(err, r2, "targets/%s", name);
		}
	}
	return fileio_tmp_commit(dfd, fd, tmp, base, err);
}

/* ---- the client check ---- */

typedef struct overlay {
	repo *r;
	const plan *p;
	const outfile *extra; /* root.json */
} overlay;

static int overlay_fetch(void *userdata, const char *url, uint64_t max_len, otter_net_sink sink,
			 void *sink_userdata, otter_error *err)
{
	const overlay *o = userdata;
	_cleanup_free_ uint8_t *data = NULL;
	const char *name;
	size_t len;
	int r2;

	if (strncmp(url, OVERLAY_URL, strlen(OVERLAY_URL)) != 0)
		return otter_error_set(err, OTTER_E_INVALID, "unexpected URL '%s'", url);
	name = url + strlen(OVERLAY_URL);
	for (size_t i = 0; i < o->p->n; i++) {
		const outfile *f = &o->p->files[i];
		if (!f->skip && f->name && strcmp(f->name, name) == 0) {
			if (f->len > max_len)
				return otter_error_set(err, OTTER_E_TOO_LARGE, "%s too large", name);
			return sink(sink_userdata, f->data, f->len, err);
		}
	}
	r2 = fileio_read(o->r->mdfd, name, max_len, &data, &len, err);
	if (r2 < 0)
		return r2;
	return sink(sink_userdata, data, len, err);
}

static void remove_dir(const char *path)
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

static int64_t fixed_clock(void *userdata)
{
	return *(const int64_t *)userdata;
}

/*
 * A device's view of the result: a client that trusts the root published now (or the new
 * root, for a first publish) refreshes against the would-be repository, and looks up every
 * target of every role being published.
 */
static int client_check(repo *r, const plan *p, const uint8_t *trusted, size_t trusted_len,
			otter_error *err)
{
	_cleanup_(otter_tuf_updater_freep) otter_tuf_updater *u = NULL;
	const char *tmpdir = getenv("TMPDIR");
	char dir[4096];
	overlay ov = {.r = r, .p = p};
	otter_tuf_options opts;
	int r2;

	strfmt(dir, sizeof(dir), "%s/otter-repo-check-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(dir))
		return otter_error_set_errno(err, errno, "creating a temporary folder");
	r2 = otter_tuf_install_root(dir, trusted, trusted_len, err);
	if (r2 == 0) {
		otter_tuf_options_init(&opts);
		opts.metadata_dir = dir;
		opts.metadata_url = OVERLAY_URL;
		opts.fetch = overlay_fetch;
		opts.fetch_userdata = &ov;
		opts.clock = fixed_clock;
		opts.clock_userdata = &r->now;
		r2 = otter_tuf_updater_new(&u, &opts, err);
	}
	if (r2 == 0)
		r2 = otter_tuf_refresh(u, err);
	/* Every target of every role a device can reach: a role being published must deliver
	 * all of its targets; one published earlier that a changed delegation no longer leads to
	 * is only worth a warning, but one that no longer verifies stops the publish. */
	for (size_t i = 0; r2 == 0 && i < r->n_roles; i++) {
		repo_role *role = &r->roles[i];
		bool publishing = false;
		otter_repo_metadata *md = NULL;
		const char *path;
		json_t *info;

		if (role->type != OTTER_REPO_TARGETS || repo_role_current(r, role, &md, NULL) < 0 ||
		    !repo_role_reachable(r, role->name))
			continue;
		for (size_t j = 0; j < p->n; j++)
			if (p->files[j].role == role && !p->files[j].skip) {
				publishing = true;
				md = p->files[j].md;
			}
		json_object_foreach(otter_repo_metadata_targets(md), path, info) {
			_cleanup_(otter_tuf_target_freep) otter_tuf_target *t = NULL;

			r2 = otter_tuf_find_target(u, path, &t, err);
			if (r2 == OTTER_E_NOT_FOUND && !publishing) {
				cli_warn("devices no longer find target '%s' of %s: %s", path,
					 role->name, err->msg);
				otter_error_clear(err);
				r2 = 0;
				continue;
			}
			if (r2 < 0) {
				r2 = otter_error_prefix(err, r2, "target '%s' of %s", path, role->name);
				break;
			}
			if (strcmp(otter_tuf_target_role(t), role->name) != 0)
				cli_warn("devices will take target '%s' from '%s', which comes "
					 "before '%s' in the delegation order",
					 path, otter_tuf_target_role(t), role->name);
		}
	}
	u = otter_tuf_updater_free(u);
	remove_dir(dir);
	if (r2 == OTTER_E_EXPIRED && err) {
		char msg[sizeof(err->msg)];
		memcpy(msg, err->msg, sizeof(msg));
		otter_error_clear(err);
		return otter_error_set(err, r2,
				       "a device would reject the result, nothing was published: %s; "
				       "give that role a new version (otter-repo stage ROLE, sign it) "
				       "and publish again",
				       msg);
	}
	if (r2 < 0)
		return otter_error_prefix(err, r2,
					  "a device would reject the result, nothing was published");
	return 0;
}

/* ---- publishing ---- */

static int remove_blobs(repo *r)
{
	int fd = r->stfd >= 0 ? openat(r->stfd, "targets", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(fd, de->d_name, 0);
	closedir(d);
	return 0;
}

static int cmp_role_order(const void *a, const void *b)
{
	const repo_role *x = *(repo_role *const *)a, *y = *(repo_role *const *)b;
	int rx = strcmp(x->name, "root") == 0 ? 0 : strcmp(x->name, "targets") == 0 ? 1 : 2;
	int ry = strcmp(y->name, "root") == 0 ? 0 : strcmp(y->name, "targets") == 0 ? 1 : 2;

	return rx != ry ? rx - ry : strcmp(x->name, y->name);
}

int repo_publish(repo *r, const publish_opts *o, otter_error *err)
{
	_cleanup_free_ repo_role **staged = NULL;
	_cleanup_(json_decrefp) json_t *snap_meta = json_object();
	_cleanup_(json_decrefp) json_t *ts_meta = NULL;
	repo_role *root = repo_role_find(r, "root");
	size_t n_staged = 0, i;
	outfile *root_f = NULL;
	const uint8_t *trusted;
	size_t trusted_len;
	bool write_root_json;
	plan p = {0};
	int r2 = 0;

	if (!snap_meta)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (!root)
		return otter_error_set(err, OTTER_E_NOT_FOUND, "the repository has no root");
	/* refresh publishes snapshot and timestamp under the root that is out, whatever is
	 * staged (a staged root may already name other online keys). */
	if (o->refresh_only)
		repo_hide_staged(r, true);
	staged = otter_calloc(r->n_roles + 1, sizeof(*staged));
	if (!staged)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	for (i = 0; i < r->n_roles && !o->refresh_only; i++)
		if (r->roles[i].staged)
			staged[n_staged++] = &r->roles[i];
	qsort(staged, n_staged, sizeof(*staged), cmp_role_order);

	/* 1. Each staged role, signed with what is at hand and checked like a client would. */
	for (i = 0; i < n_staged && r2 == 0; i++)
		r2 = prepare_role(r, o, staged[i], &p, err);
	if (r2 == 0 && !o->refresh_only)
		r2 = check_tree(r, err);
	if (r2 < 0)
		goto out;
	for (i = 0; i < p.n; i++) {
		outfile *f = &p.files[i];
		json_t *mf = NULL;
		char key[300];

		if (f->skip || otter_repo_metadata_type(f->md) != OTTER_REPO_TARGETS)
			continue;
		r2 = otter_repo_metafile(&mf, otter_repo_metadata_version(f->md), f->data, f->len,
					 err);
		if (r2 < 0)
			goto out;
		strfmt(key, sizeof(key), "%s.json", f->role->name);
		json_object_set_new(snap_meta, key, mf);
	}

	/* 2. Snapshot (new, or the published one) and timestamp, with the online keys. */
	if (o->new_snapshot || !r->snapshot) {
		size_t idx = p.n;
		r2 = build_online_role(r, o, OTTER_REPO_SNAPSHOT, r->snapshot, snap_meta, &p, err);
		if (r2 < 0)
			goto out;
		p.snap_data = p.files[idx].data;
		p.snap_len = p.files[idx].len;
		p.snap_version = otter_repo_metadata_version(p.files[idx].md);
	} else {
		p.snap_data = otter_repo_metadata_raw(r->snapshot, &p.snap_len);
		p.snap_version = otter_repo_metadata_version(r->snapshot);
	}
	{
		json_t *mf = NULL;
		r2 = otter_repo_metafile(&mf, p.snap_version, p.snap_data, p.snap_len, err);
		if (r2 < 0)
			goto out;
		ts_meta = json_pack("{s:o}", "snapshot.json", mf);
		if (!ts_meta) {
			r2 = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			goto out;
		}
	}
	r2 = build_online_role(r, o, OTTER_REPO_TIMESTAMP, r->timestamp, ts_meta, &p, err);
	if (r2 < 0)
		goto out;

	/* 3. Target files are at hand, and a device accepts the whole result. */
	r2 = plan_targets(r, &p, err);
	if (r2 < 0)
		goto out;
	for (i = 0; i < p.n; i++)
		if (p.files[i].role && p.files[i].role->type == OTTER_REPO_ROOT && !p.files[i].skip)
			root_f = &p.files[i];
	if (root->pub) {
		trusted = otter_repo_metadata_raw(root->pub, &trusted_len);
	} else if (root_f) {
		trusted = root_f->data;
		trusted_len = root_f->len;
	} else {
		r2 = otter_error_set(err, OTTER_E_NOT_FOUND, "no root to publish");
		goto out;
	}
	r2 = client_check(r, &p, trusted, trusted_len, err);
	if (r2 < 0 || o->dry_run)
		goto out;

	/* 4. Write, timestamp last. Target files first: nothing refers to them yet. */
	{
		int blobfd = r->stfd >= 0 ? openat(r->stfd, "targets",
						   O_RDONLY | O_DIRECTORY | O_CLOEXEC)
					  : -1;
		for (i = 0; i < p.n_t && r2 == 0; i++)
			r2 = place_target(r, blobfd, p.tblobs[i], p.tnames[i], err);
		if (blobfd >= 0)
			close(blobfd);
		if (r2 < 0)
			goto out;
	}
	/* Delegated roles, then targets (sorted that way below), then snapshot. */
	for (int pass = 0; pass < 3 && r2 == 0; pass++) {
		for (i = 0; i < p.n && r2 == 0; i++) {
			outfile *f = &p.files[i];
			int want;

			if (f->skip || !f->md)
				continue;
			if (otter_repo_metadata_type(f->md) == OTTER_REPO_TARGETS)
				want = strcmp(f->role->name, "targets") == 0 ? 1 : 0;
			else if (otter_repo_metadata_type(f->md) == OTTER_REPO_SNAPSHOT)
				want = 2;
			else
				continue;
			if (want != pass)
				continue;
			r2 = fileio_write_atomic(r->mdfd, f->name, f->data, f->len, 0644, err);
			if (r2 < 0)
				r2 = otter_error_prefix(err, r2, "publishing metadata/%s", f->name);
		}
	}
	if (r2 < 0)
		goto out;
	write_root_json = root_f != NULL;
	if (root_f) {
		r2 = fileio_write_atomic(r->mdfd, root_f->name, root_f->data, root_f->len, 0644, err);
		if (r2 < 0) {
			r2 = otter_error_prefix(err, r2, "publishing metadata/%s", root_f->name);
			goto out;
		}
	} else {
		/* root.json may lag after a publish that was cut short. */
		_cleanup_free_ uint8_t *cur = NULL;
		size_t len, pub_len;
		const uint8_t *pub = otter_repo_metadata_raw(root->pub, &pub_len);

		write_root_json = fileio_read(r->mdfd, "root.json", OTTER_TUF_ROOT_MAX_LENGTH, &cur,
					      &len, NULL) < 0 ||
				  len != pub_len || memcmp(cur, pub, len) != 0;
	}
	if (write_root_json) {
		size_t len = root_f ? root_f->len : 0;
		const uint8_t *d = root_f ? root_f->data : otter_repo_metadata_raw(root->pub, &len);
		r2 = fileio_write_atomic(r->mdfd, "root.json", d, len, 0644, err);
		if (r2 < 0) {
			r2 = otter_error_prefix(err, r2, "publishing metadata/root.json");
			goto out;
		}
	}
	for (i = 0; i < p.n; i++) {
		outfile *f = &p.files[i];
		if (f->md && otter_repo_metadata_type(f->md) == OTTER_REPO_TIMESTAMP) {
			r2 = fileio_write_atomic(r->mdfd, f->name, f->data, f->len, 0644, err);
			if (r2 < 0) {
				r2 = otter_error_prefix(err, r2, "publishing metadata/%s", f->name);
				goto out;
			}
		}
	}

	/* 5. What was published leaves staging. */
	for (i = 0; i < p.n; i++) {
		outfile *f = &p.files[i];
		if (!f->role)
			continue;
		f->role->staged_drop = true;
		if (!f->skip)
			cli_info("published %s version %" PRIu64, f->role->name,
				 otter_repo_metadata_version(f->md));
		else
			cli_info("%s was published already", f->role->name);
	}
	for (i = 0; i < p.n; i++) {
		outfile *f = &p.files[i];
		char when[32];
		if (f->role || !f->md)
			continue;
		utc_format(otter_repo_metadata_expires(f->md), when);
		cli_info("published %s version %" PRIu64 " (expires %s)",
			 otter_repo_role_type_name(otter_repo_metadata_type(f->md)),
			 otter_repo_metadata_version(f->md), when);
	}
	if (!o->refresh_only) {
		r2 = repo_save_staging(r, err);
		if (r2 == 0)
			remove_blobs(r);
	}
out:
	if (o->refresh_only)
		repo_hide_staged(r, false);
	plan_clear(&p);
	return r2;
}
