/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The TUF client workflow, in the specification's order (tuf.md §7). Comments name the spec
 * steps ("5.3.4"). Trusted state lives in memory for one update cycle; a file is persisted
 * only after it passed every check, as the exact bytes served.
 */
#include <otter/tuf.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/json/json-util.h"
#include "lib/limits.h"
#include "tuf-metadata.h"
#include "util/alloc.h"
#include "util/args.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(tuf_metadata, tuf_metadata_free)
DEFINE_CLEANUP_FUNC(tuf_hash_verifier, tuf_hash_verifier_free)

/* A delegated role loaded in this cycle, with the delegators it was verified under. */
struct delegated {
	char *name;
	tuf_metadata *md;
	char **verified_by;
	size_t n_verified;
};

struct otter_tuf_updater {
	char *metadata_dir;
	char *metadata_url; /* ends with '/' */
	char *target_base_url; /* ends with '/', or NULL */
	char **target_mirrors; /* more target bases, each ending with '/' */
	size_t n_target_mirrors;
	int mdfd;
	otter_tuf_fetch_fn fetch;
	void *fetch_userdata;
	otter_net *net; /* owned, when the default fetcher is used */
	int64_t (*clock)(void *);
	void *clock_userdata;
	otter_log_fn log;
	void *log_userdata;
	uint64_t max_root_rotations, max_delegations;
	uint64_t root_max, timestamp_max, snapshot_max, targets_max;

	int64_t now; /* 5.1: fixed at the start of the cycle */
	tuf_metadata *root;
	tuf_metadata *timestamp;
	tuf_metadata *snapshot;
	tuf_metadata *targets;
	struct delegated *dele;
	size_t n_dele;
	bool refreshed;
	bool refresh_failed;
};

struct otter_tuf_target {
	char *path;
	char *role;
	json_t *info; /* TARGETFILE */
	uint64_t length;
};

static void ulog(const otter_tuf_updater *u, int level, const char *fmt, ...) OTTER_PRINTF(3, 4);
static void ulog(const otter_tuf_updater *u, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!u->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	u->log(u->log_userdata, level, msg);
}

void otter_tuf_options_init(otter_tuf_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->version = OTTER_TUF_OPTIONS_VERSION;
}

static int64_t default_clock(void *userdata)
{
	(void)userdata;
	/* Through libc, so that faketime (LD_PRELOAD) can shift it in conformance tests. */
	return (int64_t)time(NULL);
}

static int net_fetch(void *userdata, const char *url, uint64_t max_len, otter_net_sink sink,
		     void *sink_userdata, otter_error *err)
{
	return otter_net_fetch(userdata, url, 0, max_len, sink, sink_userdata, NULL, err);
}

static char *url_with_slash(const char *url)
{
	size_t n = strlen(url);
	char *s = otter_malloc(n + 2);

	if (!s)
		return NULL;
	memcpy(s, url, n + 1);
	if (n == 0 || url[n - 1] != '/') {
		s[n] = '/';
		s[n + 1] = '\0';
	}
	return s;
}

static void delegated_clear(struct delegated *d)
{
	free(d->name);
	tuf_metadata_free(d->md);
	for (size_t i = 0; i < d->n_verified; i++)
		free(d->verified_by[i]);
	free(d->verified_by);
}

otter_tuf_updater *otter_tuf_updater_free(otter_tuf_updater *u)
{
	if (!u)
		return NULL;
	for (size_t i = 0; i < u->n_dele; i++)
		delegated_clear(&u->dele[i]);
	free(u->dele);
	tuf_metadata_free(u->root);
	tuf_metadata_free(u->timestamp);
	tuf_metadata_free(u->snapshot);
	tuf_metadata_free(u->targets);
	otter_net_free(u->net);
	if (u->mdfd >= 0)
		close(u->mdfd);
	free(u->metadata_dir);
	free(u->metadata_url);
	free(u->target_base_url);
	for (size_t i = 0; i < u->n_target_mirrors; i++)
		free(u->target_mirrors[i]);
	free(u->target_mirrors);
	free(u);
	return NULL;
}

DEFINE_CLEANUP_FUNC(otter_tuf_updater, otter_tuf_updater_free)

static uint64_t or_default(uint64_t v, uint64_t def)
{
	return v ? v : def;
}

/* Reads a local metadata file; NOT_FOUND when absent. */
static int read_local(otter_tuf_updater *u, const char *name, size_t max, uint8_t **out,
		      size_t *len, otter_error *err)
{
	return fileio_read(u->mdfd, name, max, out, len, err);
}

static int persist(otter_tuf_updater *u, const char *name, const tuf_metadata *md,
		   otter_error *err)
{
	int r = fileio_write_atomic(u->mdfd, name, md->raw, md->raw_len, 0644, err);

	if (r < 0)
		return otter_error_prefix(err, r, "storing trusted %s in '%s'", name,
					  u->metadata_dir);
	ulog(u, OTTER_LOG_DEBUG, "stored %s (version %" PRIu64 ")", name, md->version);
	return 0;
}

int otter_tuf_install_root(const char *metadata_dir, const uint8_t *root, size_t len,
			   otter_error *err)
{
	_cleanup_(tuf_metadata_freep) tuf_metadata *md = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	ARG_NONNULL(err, "install root", metadata_dir);
	ARG_NONNULL(err, "install root", root);
	if (len > OTTER_TUF_ROOT_MAX_LENGTH)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "trusted root of %zu bytes exceeds the limit of %u", len,
				       OTTER_TUF_ROOT_MAX_LENGTH);
	r = tuf_metadata_parse(&md, TUF_ROOT, root, len, "trusted root", err);
	if (r < 0)
		return r;
	r = fileio_mkdir_p(metadata_dir, 0755, err);
	if (r < 0)
		return r;
	fd = open(metadata_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return otter_error_set_errno(err, errno, "open metadata directory '%s'",
					     metadata_dir);
	return fileio_write_atomic(fd, "root.json", root, len, 0644, err);
}

int otter_tuf_updater_new(otter_tuf_updater **out, const otter_tuf_options *opts,
			  otter_error *err)
{
	_cleanup_(otter_tuf_updater_freep) otter_tuf_updater *u = NULL;
	_cleanup_free_ uint8_t *raw = NULL;
	size_t len;
	int r;

	if (!out || !opts || !opts->metadata_dir)
		return otter_error_set(err, OTTER_E_INVALID, "updater: metadata_dir is required");
	if (opts->version != OTTER_TUF_OPTIONS_VERSION)
		return otter_error_set(err, OTTER_E_INVALID, "updater: unknown options version %u",
				       opts->version);
	u = otter_calloc(1, sizeof(*u));
	if (!u)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	u->mdfd = -1;
	u->metadata_dir = otter_strdup(opts->metadata_dir);
	u->metadata_url = opts->metadata_url ? url_with_slash(opts->metadata_url) : NULL;
	u->target_base_url = opts->target_base_url ? url_with_slash(opts->target_base_url) : NULL;
	if (!u->metadata_dir || (opts->metadata_url && !u->metadata_url) ||
	    (opts->target_base_url && !u->target_base_url))
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (opts->n_target_mirrors > 0) {
		if (!opts->target_mirrors || !u->target_base_url)
			return otter_error_set(err, OTTER_E_INVALID,
					       "updater: target mirrors need a target base URL");
		u->target_mirrors = otter_calloc(opts->n_target_mirrors, sizeof(char *));
		if (!u->target_mirrors)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		for (size_t i = 0; i < opts->n_target_mirrors; i++) {
			u->target_mirrors[i] = url_with_slash(opts->target_mirrors[i]);
			if (!u->target_mirrors[i])
				return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			u->n_target_mirrors++;
		}
	}
	u->clock = opts->clock ? opts->clock : default_clock;
	u->clock_userdata = opts->clock_userdata;
	u->log = opts->log;
	u->log_userdata = opts->log_userdata;
	u->max_root_rotations = or_default(opts->max_root_rotations, OTTER_TUF_MAX_ROOT_ROTATIONS);
	u->max_delegations = or_default(opts->max_delegations, OTTER_TUF_MAX_DELEGATIONS);
	u->root_max = or_default(opts->root_max_length, OTTER_TUF_ROOT_MAX_LENGTH);
	u->timestamp_max = or_default(opts->timestamp_max_length, OTTER_TUF_TIMESTAMP_MAX_LENGTH);
	u->snapshot_max = or_default(opts->snapshot_max_length, OTTER_TUF_SNAPSHOT_MAX_LENGTH);
	u->targets_max = or_default(opts->targets_max_length, OTTER_TUF_TARGETS_MAX_LENGTH);
	if (opts->fetch) {
		u->fetch = opts->fetch;
		u->fetch_userdata = opts->fetch_userdata;
	} else {
		r = otter_net_new(&u->net, opts->net_options, err);
		if (r < 0)
			return r;
		u->fetch = net_fetch;
		u->fetch_userdata = u->net;
	}

	u->mdfd = open(u->metadata_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (u->mdfd < 0)
		return otter_error_set_errno(err, errno, "open metadata directory '%s'",
					     u->metadata_dir);
	fileio_remove_stale_tmp(u->mdfd);

	/* 5.2: the trusted root, signed by a threshold of its own keys; expiry does not matter
	 * yet. Nothing touches the network before this passed. */
	r = read_local(u, "root.json", u->root_max, &raw, &len, err);
	if (r < 0)
		return otter_error_prefix(err, r, "loading trusted root from '%s'",
					  u->metadata_dir);
	r = tuf_metadata_parse_owned(&u->root, TUF_ROOT, &raw, len, "trusted root.json", err);
	if (r < 0)
		return r;
	r = tuf_verify_threshold(u->root, &u->root->keys, &u->root->roles[TUF_ROOT],
				 "trusted root.json", err);
	if (r < 0)
		return r;
	tuf_metadata_drop_canonical(u->root);
	ulog(u, OTTER_LOG_DEBUG, "loaded trusted root version %" PRIu64, u->root->version);
	*out = TAKE_PTR(u);
	return 0;
}

/* ---- fetching ---- */

static int buf_sink(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	return buf_append(userdata, data, len, err);
}

/* Fetches metadata base URL + name, at most max bytes. */
static int fetch_metadata(otter_tuf_updater *u, const char *name, uint64_t max, bool exact,
			  uint8_t **out, size_t *len, otter_error *err)
{
	_cleanup_free_ char *url = NULL;
	otter_buf b;
	int r;

	if (!u->metadata_url)
		return otter_error_set(err, OTTER_E_INVALID, "no metadata URL configured");
	if (max > OTTER_TUF_METADATA_HARD_MAX)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "%s: announced length %" PRIu64 " exceeds the hard limit of %u",
				       name, max, OTTER_TUF_METADATA_HARD_MAX);
	url = path_join(u->metadata_url, name);
	if (!url)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	ulog(u, OTTER_LOG_INFO, "fetching %s", url);
	buf_init(&b, (size_t)max);
	/* A signed length is the size to expect: one allocation instead of doublings. */
	if (exact && (r = buf_reserve(&b, (size_t)max, err)) < 0)
		return r;
	r = u->fetch(u->fetch_userdata, url, max, buf_sink, &b, err);
	if (r < 0) {
		buf_clear(&b);
		return r;
	}
	*out = buf_steal(&b, len);
	if (!*out)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	return 0;
}

static int check_expiry(const otter_tuf_updater *u, const tuf_metadata *md, const char *what,
			otter_error *err)
{
	char when[32], now[32];

	/* python-tuf: expired when now >= expires. */
	if (u->now < md->expires)
		return 0;
	utc_format(md->expires, when);
	utc_format(u->now, now);
	return otter_error_set(err, OTTER_E_EXPIRED,
			       "%s version %" PRIu64 " expired at %s (now %s): refusing it "
			       "(freeze attack, or the repository was not re-signed in time)",
			       what, md->version, when, now);
}

/* ---- 5.3 root ---- */

static int update_root(otter_tuf_updater *u, otter_error *err)
{
	for (uint64_t i = 0; i < u->max_root_rotations; i++) {
		_cleanup_(tuf_metadata_freep) tuf_metadata *md = NULL;
		_cleanup_free_ uint8_t *raw = NULL;
		char name[64];
		uint64_t next;
		size_t len;
		int r;

		if (u64_add_overflow(u->root->version, 1, &next))
			return otter_error_set(err, OTTER_E_LIMIT, "root version overflow");
		strfmt(name, sizeof(name), "%" PRIu64 ".root.json", next);
		r = fetch_metadata(u, name, u->root_max, false, &raw, &len, err);
		if (r == OTTER_E_NOT_FOUND) {
			otter_error_clear(err);
			return 0; /* 5.3.3: no newer root */
		}
		if (r < 0)
			return r;
		r = tuf_metadata_parse_owned(&md, TUF_ROOT, &raw, len, name, err);
		if (r < 0)
			return r;
		/* 5.3.4: a threshold of the trusted root's keys, then of the new root's own. */
		r = tuf_verify_threshold(md, &u->root->keys, &u->root->roles[TUF_ROOT], name, err);
		if (r < 0)
			return otter_error_prefix(err, r, "keys of trusted root version %" PRIu64,
						  u->root->version);
		/* 5.3.5 */
		if (md->version != next)
			return otter_error_set(err, md->version < next ? OTTER_E_ROLLBACK
								       : OTTER_E_VERSION,
					       "%s: contains version %" PRIu64 ", expected %" PRIu64,
					       name, md->version, next);
		r = tuf_verify_threshold(md, &md->keys, &md->roles[TUF_ROOT], name, err);
		if (r < 0)
			return otter_error_prefix(err, r, "keys of new root version %" PRIu64,
						  md->version);
		/* 5.3.6 (no expiry check of intermediate roots), 5.3.7, 5.3.8 */
		r = persist(u, "root.json", md, err);
		if (r < 0)
			return r;
		ulog(u, OTTER_LOG_NOTICE, "root rotated to version %" PRIu64, md->version);
		tuf_metadata_drop_canonical(md);
		tuf_metadata_free(u->root);
		u->root = TAKE_PTR(md);
	}
	ulog(u, OTTER_LOG_WARNING, "stopped after %" PRIu64 " root rotations in one refresh",
	     u->max_root_rotations);
	return 0;
}

static void unlink_local(otter_tuf_updater *u, const char *name)
{
	if (unlinkat(u->mdfd, name, 0) == 0)
		ulog(u, OTTER_LOG_NOTICE, "deleted %s", name);
}

/* ---- 5.4 timestamp ---- */

static int update_timestamp(otter_tuf_updater *u, otter_error *err)
{
	_cleanup_(tuf_metadata_freep) tuf_metadata *md = NULL;
	_cleanup_free_ uint8_t *raw = NULL, *local = NULL;
	const tuf_rolekeys *role = &u->root->roles[TUF_TIMESTAMP];
	size_t len;
	int r;

	/* A verified local timestamp is the rollback reference, even when expired. */
	r = read_local(u, "timestamp.json", u->timestamp_max, &local, &len, NULL);
	if (r == 0) {
		otter_error lerr = OTTER_ERROR_INIT;
		tuf_metadata *lmd = NULL;

		if (tuf_metadata_parse_owned(&lmd, TUF_TIMESTAMP, &local, len, "local timestamp.json",
				       &lerr) < 0 ||
		    tuf_verify_threshold(lmd, &u->root->keys, role, "local timestamp.json",
					 &lerr) < 0) {
			ulog(u, OTTER_LOG_WARNING, "%s, ignoring", lerr.msg);
			tuf_metadata_free(lmd);
		} else {
			u->timestamp = lmd;
		}
	}

	/* 5.4.1 */
	r = fetch_metadata(u, "timestamp.json", u->timestamp_max, false, &raw, &len, err);
	if (r < 0)
		return r;
	r = tuf_metadata_parse_owned(&md, TUF_TIMESTAMP, &raw, len, "timestamp.json", err);
	if (r < 0)
		return r;
	/* 5.4.2 */
	r = tuf_verify_threshold(md, &u->root->keys, role, "timestamp.json", err);
	if (r < 0)
		return r;
	if (u->timestamp) {
		/* 5.4.3.1 */
		if (md->version < u->timestamp->version)
			return otter_error_set(err, OTTER_E_ROLLBACK,
					       "timestamp.json: version %" PRIu64
					       " is lower than trusted version %" PRIu64
					       " (rollback attack?)",
					       md->version, u->timestamp->version);
		if (md->version == u->timestamp->version) {
			/* Nothing changed: keep the trusted one (python-tuf); not an error. */
			ulog(u, OTTER_LOG_INFO, "timestamp.json unchanged (version %" PRIu64 ")",
			     md->version);
			return check_expiry(u, u->timestamp, "timestamp.json", err);
		}
		/* 5.4.3.2 */
		if (md->snapshot_meta.version < u->timestamp->snapshot_meta.version)
			return otter_error_set(err, OTTER_E_ROLLBACK,
					       "timestamp.json: snapshot version %" PRIu64
					       " is lower than trusted %" PRIu64 " (rollback attack?)",
					       md->snapshot_meta.version,
					       u->timestamp->snapshot_meta.version);
	}
	/* 5.4.4 */
	r = check_expiry(u, md, "timestamp.json", err);
	if (r < 0)
		return r;
	/* 5.4.5 */
	r = persist(u, "timestamp.json", md, err);
	if (r < 0)
		return r;
	tuf_metadata_free(u->timestamp);
	u->timestamp = TAKE_PTR(md);
	return 0;
}

/* ---- 5.5 snapshot ---- */

static int snapshot_rollback_check(const tuf_metadata *old, const tuf_metadata *md,
				   otter_error *err)
{
	const char *name;
	json_t *entry;

	/* 5.5.5: every role the trusted snapshot lists stays, and its version never drops. */
	json_object_foreach(old->meta, name, entry) {
		tuf_metafile oldmf, newmf;
		json_t *n = json_object_get(md->meta, name);
		char s[128];

		str_sanitize(name, s, sizeof(s));
		if (!n)
			return otter_error_set(err, OTTER_E_ROLLBACK,
					       "snapshot.json: '%s' was removed (rollback attack?)", s);
		if (tuf_metafile_parse(entry, "trusted snapshot", &oldmf, err) < 0 ||
		    tuf_metafile_parse(n, "snapshot", &newmf, err) < 0)
			return OTTER_E_FORMAT;
		if (newmf.version < oldmf.version)
			return otter_error_set(err, OTTER_E_ROLLBACK,
					       "snapshot.json: '%s' version %" PRIu64
					       " is lower than trusted %" PRIu64 " (rollback attack?)",
					       s, newmf.version, oldmf.version);
	}
	return 0;
}

static int check_snapshot_final(const otter_tuf_updater *u, const tuf_metadata *md,
				otter_error *err)
{
	uint64_t want = u->timestamp->snapshot_meta.version;
	int r = check_expiry(u, md, "snapshot.json", err);

	if (r < 0)
		return r;
	if (md->version != want)
		return otter_error_set(err, md->version < want ? OTTER_E_ROLLBACK : OTTER_E_VERSION,
				       "snapshot.json: contains version %" PRIu64
				       ", timestamp.json names %" PRIu64,
				       md->version, want);
	return 0;
}

static int update_snapshot(otter_tuf_updater *u, otter_error *err)
{
	_cleanup_(tuf_metadata_freep) tuf_metadata *md = NULL;
	_cleanup_free_ uint8_t *raw = NULL, *local = NULL;
	const tuf_metafile *mf = &u->timestamp->snapshot_meta;
	const tuf_rolekeys *role = &u->root->roles[TUF_SNAPSHOT];
	char name[64];
	uint64_t max;
	size_t len;
	int r;

	/* A local snapshot that verifies is the rollback reference; if it is also the version
	 * timestamp names and unexpired, it is final and nothing is downloaded. */
	r = read_local(u, "snapshot.json", OTTER_TUF_METADATA_HARD_MAX, &local, &len, NULL);
	if (r == 0) {
		otter_error lerr = OTTER_ERROR_INIT;
		tuf_metadata *lmd = NULL;

		if (tuf_metadata_parse_owned(&lmd, TUF_SNAPSHOT, &local, len, "local snapshot.json",
				       &lerr) < 0 ||
		    tuf_verify_threshold(lmd, &u->root->keys, role, "local snapshot.json",
					 &lerr) < 0) {
			ulog(u, OTTER_LOG_WARNING, "%s, ignoring", lerr.msg);
			tuf_metadata_free(lmd);
		} else {
			u->snapshot = lmd;
			if (check_snapshot_final(u, lmd, &lerr) == 0) {
				ulog(u, OTTER_LOG_INFO, "local snapshot.json version %" PRIu64
						  " is current",
				     lmd->version);
				return 0;
			}
			ulog(u, OTTER_LOG_DEBUG, "local snapshot.json not final: %s", lerr.msg);
		}
	}

	/* 5.5.1 */
	if (u->root->consistent_snapshot)
		strfmt(name, sizeof(name), "%" PRIu64 ".snapshot.json", mf->version);
	else
		strfmt(name, sizeof(name), "snapshot.json");
	max = mf->has_length ? mf->length : u->snapshot_max;
	r = fetch_metadata(u, name, max, mf->has_length, &raw, &len, err);
	if (r < 0)
		return r;
	/* 5.5.2: length and hashes pinned by timestamp, before any parsing. */
	r = tuf_check_length_hashes(raw, len, mf->has_length, mf->length, mf->hashes, name, err);
	if (r < 0)
		return r;
	r = tuf_metadata_parse_owned(&md, TUF_SNAPSHOT, &raw, len, name, err);
	if (r < 0)
		return r;
	/* 5.5.3 */
	r = tuf_verify_threshold(md, &u->root->keys, role, name, err);
	if (r < 0)
		return r;
	/* 5.5.5 */
	if (u->snapshot) {
		r = snapshot_rollback_check(u->snapshot, md, err);
		if (r < 0)
			return r;
	}
	/* 5.5.4, 5.5.6 */
	r = check_snapshot_final(u, md, err);
	if (r < 0)
		return r;
	/* 5.5.7 */
	r = persist(u, "snapshot.json", md, err);
	if (r < 0)
		return r;
	tuf_metadata_drop_canonical(md);
	tuf_metadata_free(u->snapshot);
	u->snapshot = TAKE_PTR(md);
	return 0;
}

/* ---- 5.6 targets and delegated targets ---- */

/*
 * Loads role (top-level "targets" or a delegated role) and verifies it with ring/keys, the
 * delegator's keys. Tries the local copy first (python-tuf), then the repository.
 */
static int load_targets_role(otter_tuf_updater *u, const char *role, const tuf_keyring *ring,
			     const tuf_rolekeys *keys, tuf_metadata **out, otter_error *err)
{
	_cleanup_(tuf_metadata_freep) tuf_metadata *md = NULL;
	_cleanup_free_ uint8_t *raw = NULL;
	_cleanup_free_ char *enc = NULL, *metaname = NULL, *localname = NULL, *remote = NULL;
	tuf_metafile mf;
	json_t *entry;
	char s[128];
	size_t len;
	int r;

	str_sanitize(role, s, sizeof(s));
	enc = percent_encode(role);
	metaname = str_concat(role, ".json");
	localname = enc ? str_concat(enc, ".json") : NULL;
	if (!enc || !metaname || !localname)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");

	/* 5.6.1: a role not listed in snapshot is never used, not even requested. */
	entry = json_object_get(u->snapshot->meta, metaname);
	if (!entry)
		return otter_error_set(err, OTTER_E_NOT_FOUND,
				       "role '%s' is delegated but snapshot.json does not list it", s);
	r = tuf_metafile_parse(entry, "snapshot.json", &mf, err);
	if (r < 0)
		return r;

	r = read_local(u, localname, OTTER_TUF_METADATA_HARD_MAX, &raw, &len, NULL);
	if (r == 0) {
		otter_error lerr = OTTER_ERROR_INIT;

		if (tuf_check_length_hashes(raw, len, mf.has_length, mf.length, mf.hashes,
					    localname, &lerr) == 0 &&
		    tuf_metadata_parse_lean(&md, &raw, len, localname, &lerr) == 0 &&
		    tuf_verify_threshold(md, ring, keys, localname, &lerr) == 0 &&
		    md->version == mf.version && check_expiry(u, md, localname, &lerr) == 0) {
			ulog(u, OTTER_LOG_INFO, "local %s version %" PRIu64 " is current", localname,
			     md->version);
			tuf_metadata_drop_canonical(md);
			*out = TAKE_PTR(md);
			return 0;
		}
		ulog(u, OTTER_LOG_DEBUG, "local %s not usable: %s", localname,
		     lerr.msg[0] ? lerr.msg : "version differs from snapshot");
		md = tuf_metadata_free(md);
		free(raw);
		raw = NULL;
	}

	if (u->root->consistent_snapshot) {
		char ver[32];
		strfmt(ver, sizeof(ver), "%" PRIu64 ".", mf.version);
		remote = str_concat(ver, localname);
	} else {
		remote = otter_strdup(localname);
	}
	if (!remote)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = fetch_metadata(u, remote, mf.has_length ? mf.length : u->targets_max, mf.has_length,
			   &raw, &len, err);
	if (r < 0)
		return r;
	/* 5.6.2 */
	r = tuf_check_length_hashes(raw, len, mf.has_length, mf.length, mf.hashes, remote, err);
	if (r < 0)
		return r;
	r = tuf_metadata_parse_lean(&md, &raw, len, remote, err);
	if (r < 0)
		return r;
	/* 5.6.3 */
	r = tuf_verify_threshold(md, ring, keys, remote, err);
	if (r < 0)
		return r;
	/* 5.6.4 */
	if (md->version != mf.version)
		return otter_error_set(err, md->version < mf.version ? OTTER_E_ROLLBACK
								     : OTTER_E_VERSION,
				       "%s: contains version %" PRIu64 ", snapshot.json names %" PRIu64,
				       remote, md->version, mf.version);
	/* 5.6.5 */
	r = check_expiry(u, md, remote, err);
	if (r < 0)
		return r;
	/* 5.6.6 */
	r = persist(u, localname, md, err);
	if (r < 0)
		return r;
	tuf_metadata_drop_canonical(md);
	*out = TAKE_PTR(md);
	return 0;
}

int otter_tuf_refresh(otter_tuf_updater *u, otter_error *err)
{
	_cleanup_(tuf_metadata_freep) tuf_metadata *initial = NULL;
	int r;

	if (!u)
		return otter_error_set(err, OTTER_E_INVALID, "refresh: no updater");
	if (u->refreshed)
		return 0;
	if (u->refresh_failed)
		return otter_error_set(err, OTTER_E_STATE,
				       "refresh already failed; create a new updater to retry");
	u->refresh_failed = true;

	/* 5.1 */
	u->now = u->clock(u->clock_userdata);

	/* 5.3: keep the starting root to compare its online keys afterwards (5.3.11). */
	{
		otter_error perr = OTTER_ERROR_INIT;
		r = tuf_metadata_parse(&initial, TUF_ROOT, u->root->raw, u->root->raw_len, "root",
				       &perr);
		if (r < 0)
			return otter_error_set(err, r, "%s", perr.msg);
	}
	r = update_root(u, err);
	if (r < 0)
		return otter_error_prefix(err, r, "updating root");
	/* 5.3.10: freeze check on the final root, after persisting it. */
	r = check_expiry(u, u->root, "root.json", err);
	if (r < 0)
		return r;
	/* 5.3.11: new timestamp or snapshot keys: forget the old files, so versions signed with
	 * a compromised key cannot block the repository (fast-forward attack recovery). */
	if (!tuf_rolekeys_equal(&initial->roles[TUF_TIMESTAMP], &u->root->roles[TUF_TIMESTAMP]) ||
	    !tuf_rolekeys_equal(&initial->roles[TUF_SNAPSHOT], &u->root->roles[TUF_SNAPSHOT])) {
		ulog(u, OTTER_LOG_NOTICE, "timestamp or snapshot keys rotated");
		unlink_local(u, "timestamp.json");
		unlink_local(u, "snapshot.json");
		fileio_fsync_dir(u->mdfd, NULL);
	}

	r = update_timestamp(u, err);
	if (r < 0)
		return r;
	r = update_snapshot(u, err);
	if (r < 0)
		return r;
	r = load_targets_role(u, "targets", &u->root->keys, &u->root->roles[TUF_TARGETS],
			      &u->targets, err);
	if (r < 0)
		return r;
	u->refreshed = true;
	u->refresh_failed = false;
	return 0;
}

/* The trusted metadata of a role loaded in this cycle (top-level or delegated), or NULL. */
static const tuf_metadata *loaded_role(const otter_tuf_updater *u, const char *name)
{
	if (strcmp(name, "root") == 0)
		return u->root;
	if (strcmp(name, "timestamp") == 0)
		return u->timestamp;
	if (strcmp(name, "snapshot") == 0)
		return u->snapshot;
	if (strcmp(name, "targets") == 0)
		return u->targets;
	for (size_t i = 0; i < u->n_dele; i++)
		if (strcmp(u->dele[i].name, name) == 0)
			return u->dele[i].md;
	return NULL;
}

uint64_t otter_tuf_trusted_version(const otter_tuf_updater *u, const char *role)
{
	const tuf_metadata *md = loaded_role(u, role);

	return md ? md->version : 0;
}

int64_t otter_tuf_trusted_expires(const otter_tuf_updater *u, const char *role)
{
	const tuf_metadata *md = loaded_role(u, role);

	return md ? md->expires : 0;
}

/* ---- 5.6.7 delegation search ---- */


/* The keys parent gives role: a DELEGATED_ROLE entry, or the succinct hash bins. */
static const tuf_rolekeys *delegation_keys(const tuf_metadata *parent, const char *role)
{
	if (parent->succinct)
		return &parent->succinct_roles.keys;
	for (size_t i = 0; i < parent->n_delegations; i++)
		if (strcmp(parent->delegations[i].name, role) == 0)
			return &parent->delegations[i].keys;
	return NULL;
}

static int add_verified(struct delegated *d, const char *parent, otter_error *err)
{
	char **v = otter_reallocarray(d->verified_by, d->n_verified + 1, sizeof(*v));

	if (!v)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	d->verified_by = v;
	v[d->n_verified] = otter_strdup(parent);
	if (!v[d->n_verified])
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	d->n_verified++;
	return 0;
}

/*
 * A delegated role reached from parent. A role met before through another delegator is
 * verified again with this delegator's keys: authority does not carry over from one
 * delegation path to another (the "diamond" case, tuf.md §7.7).
 */
static int get_delegated(otter_tuf_updater *u, const char *role, const char *parent_name,
			 const tuf_metadata **out, otter_error *err)
{
	const tuf_metadata *parent = loaded_role(u, parent_name);
	const tuf_rolekeys *keys;
	struct delegated *d = NULL;
	char s[128], p[128];
	int r;

	str_sanitize(role, s, sizeof(s));
	str_sanitize(parent_name, p, sizeof(p));
	if (!parent || !(keys = delegation_keys(parent, role)))
		return otter_error_set(err, OTTER_E_STATE, "role '%s' has no delegation from '%s'",
				       s, p);
	for (size_t i = 0; i < u->n_dele; i++)
		if (strcmp(u->dele[i].name, role) == 0)
			d = &u->dele[i];
	if (d) {
		for (size_t i = 0; i < d->n_verified; i++)
			if (strcmp(d->verified_by[i], parent_name) == 0) {
				*out = d->md;
				return 0;
			}
		char what[300];
		strfmt(what, sizeof(what), "role '%s' reached through '%s'", s, p);
		r = tuf_verify_threshold(d->md, &parent->keys, keys, what, err);
		if (r < 0)
			return r;
		r = add_verified(d, parent_name, err);
		if (r < 0)
			return r;
		*out = d->md;
		return 0;
	}

	struct delegated *nd = otter_reallocarray(u->dele, u->n_dele + 1, sizeof(*nd));
	if (!nd)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	u->dele = nd;
	d = &u->dele[u->n_dele];
	memset(d, 0, sizeof(*d));
	d->name = otter_strdup(role);
	if (!d->name)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = load_targets_role(u, role, &parent->keys, keys, &d->md, err);
	if (r == 0)
		r = add_verified(d, parent_name, err);
	if (r < 0) {
		delegated_clear(d);
		return otter_error_prefix(err, r, "delegated role '%s' (from '%s')", s, p);
	}
	u->n_dele++;
	*out = d->md;
	return 0;
}

struct visit {
	char *role;
	char *parent;
};

static void stack_clear(struct visit *stack, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		free(stack[i].role);
		free(stack[i].parent);
	}
	*n = 0;
}

static int target_new(otter_tuf_target **out, const char *path, const char *role, json_t *info,
		      otter_error *err)
{
	otter_tuf_target *t = otter_calloc(1, sizeof(*t));

	if (!t)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	t->path = otter_strdup(path);
	t->role = otter_strdup(role);
	if (!t->path || !t->role) {
		otter_tuf_target_free(t);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	t->info = json_incref(info);
	t->length = (uint64_t)json_integer_value(json_object_get(info, "length"));
	*out = t;
	return 0;
}

int otter_tuf_find_target(otter_tuf_updater *u, const char *path, otter_tuf_target **out,
			  otter_error *err)
{
	struct visit *stack = NULL;
	size_t n = 0, cap = 0, n_visited = 0;
	char **visited = NULL;
	char s[256];
	int r;

	ARG_NONNULL(err, "find target", u);
	ARG_NONNULL(err, "find target", path);
	ARG_NONNULL(err, "find target", out);
	str_sanitize(path, s, sizeof(s));
	if (strlen(path) > OTTER_TUF_MAX_TARGET_PATH)
		return otter_error_set(err, OTTER_E_INVALID,
				       "target path '%s...' is %zu bytes long, more than %u",
				       s, strlen(path), OTTER_TUF_MAX_TARGET_PATH);
	r = otter_tuf_refresh(u, err);
	if (r < 0)
		return r;

#define PUSH(rl, pr)                                                                               \
	do {                                                                                       \
		if (n == cap) {                                                                    \
			size_t nc = cap ? cap * 2 : 16;                                            \
			struct visit *ns = otter_reallocarray(stack, nc, sizeof(*ns));             \
			if (!ns) {                                                                 \
				r = otter_error_set(err, OTTER_E_NOMEM, "out of memory");          \
				goto out;                                                          \
			}                                                                          \
			stack = ns;                                                                \
			cap = nc;                                                                  \
		}                                                                                  \
		stack[n].role = otter_strdup(rl);                                                  \
		stack[n].parent = pr ? otter_strdup(pr) : NULL;                                    \
		n++;                                                                               \
		if (!stack[n - 1].role || (pr && !stack[n - 1].parent)) {                          \
			r = otter_error_set(err, OTTER_E_NOMEM, "out of memory");                  \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

	PUSH("targets", (const char *)NULL);
	r = OTTER_E_NOT_FOUND;
	/* Pre-order depth-first, as python-tuf: at most max_delegations roles are visited. */
	while (n > 0 && n_visited <= u->max_delegations) {
		struct visit v = stack[--n];
		const tuf_metadata *md = NULL;
		json_t *info;
		bool seen = false;

		for (size_t i = 0; i < n_visited && !seen; i++)
			seen = strcmp(visited[i], v.role) == 0;
		if (seen) {
			free(v.role);
			free(v.parent);
			continue;
		}
		if (!v.parent) {
			md = u->targets;
		} else {
			r = get_delegated(u, v.role, v.parent, &md, err);
			if (r < 0) {
				free(v.role);
				free(v.parent);
				goto out;
			}
		}
		if (!md) {
			free(v.role);
			free(v.parent);
			r = otter_error_set(err, OTTER_E_STATE, "targets metadata not loaded");
			goto out;
		}
		r = tuf_metadata_target(md, path, &info, err);
		if (r < 0 || info) {
			if (r == 0)
				r = target_new(out, path, v.role, info, err);
			json_decref(info);
			free(v.role);
			free(v.parent);
			goto out;
		}
		char **nv = otter_reallocarray(visited, n_visited + 1, sizeof(*nv));
		if (!nv) {
			free(v.role);
			free(v.parent);
			r = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			goto out;
		}
		visited = nv;
		visited[n_visited++] = v.role;
		free(v.parent);
		r = OTTER_E_NOT_FOUND;
		if (!md->has_delegations)
			continue;

		size_t first = n;
		if (md->succinct) {
			char *bin = NULL;
			r = tuf_succinct_bin_name(&md->succinct_roles, path, &bin, err);
			if (r < 0)
				goto out;
			/* A hash bin is terminating (python-tuf): nothing else is consulted. */
			stack_clear(stack, &n);
			first = 0;
			PUSH(bin, v.role);
			free(bin);
			r = OTTER_E_NOT_FOUND;
		} else {
			for (size_t i = 0; i < md->n_delegations; i++) {
				const tuf_delegation *d = &md->delegations[i];
				if (!tuf_delegation_matches(d, path))
					continue;
				if (d->terminating) {
					/* Drop every pending alternative, keep the earlier
					 * matching siblings pushed from this role. */
					size_t keep = n - first;
					struct visit *tmp = NULL;
					if (keep) {
						tmp = otter_reallocarray(NULL, keep, sizeof(*tmp));
						if (!tmp) {
							r = otter_error_set(err, OTTER_E_NOMEM,
									    "out of memory");
							goto out;
						}
						memcpy(tmp, stack + first, keep * sizeof(*tmp));
					}
					n = first;
					stack_clear(stack, &n);
					if (keep)
						memcpy(stack, tmp, keep * sizeof(*tmp));
					free(tmp);
					n = keep;
					first = 0;
					PUSH(d->name, v.role);
					break;
				}
				PUSH(d->name, v.role);
			}
		}
		/* Reverse this role's children so that the first one is popped next. */
		for (size_t a = first, b = n; a + 1 < b; a++, b--) {
			struct visit t = stack[a];
			stack[a] = stack[b - 1];
			stack[b - 1] = t;
		}
	}
	if (n > 0 && n_visited > u->max_delegations)
		ulog(u, OTTER_LOG_WARNING, "target '%s': stopped after %" PRIu64 " delegations", s,
		     u->max_delegations);
	r = otter_error_set(err, OTTER_E_NOT_FOUND, "target '%s' is not listed by any trusted role",
			    s);
out:
#undef PUSH
	stack_clear(stack, &n);
	free(stack);
	for (size_t i = 0; i < n_visited; i++)
		free(visited[i]);
	free(visited);
	return r;
}

static int cmp_entry_path(const void *a, const void *b)
{
	return strcmp(((const tuf_target_entry *)a)->path, ((const tuf_target_entry *)b)->path);
}

int otter_tuf_foreach_target(otter_tuf_updater *u, const char *prefix, otter_tuf_target_fn cb,
			     void *userdata, otter_error *err)
{
	tuf_target_entry *list = NULL;
	size_t n = 0;
	int r;

	ARG_NONNULL(err, "foreach target", u);
	ARG_NONNULL(err, "foreach target", prefix);
	ARG_NONNULL(err, "foreach target", cb);
	r = otter_tuf_refresh(u, err);
	if (r < 0)
		return r;
	r = tuf_metadata_target_list(u->targets, prefix, &list, &n, err);
	if (r < 0)
		return r;
	qsort(list, n, sizeof(*list), cmp_entry_path);
	for (size_t i = 0; r == 0 && i < n; i++) {
		otter_tuf_target *t = NULL;

		r = target_new(&t, list[i].path, "targets", list[i].info, err);
		if (r == 0)
			r = cb(userdata, t, err);
		otter_tuf_target_free(t);
	}
	tuf_target_list_free(list, n);
	return r;
}

/* ---- targets ---- */

otter_tuf_target *otter_tuf_target_free(otter_tuf_target *t)
{
	if (t) {
		free(t->path);
		free(t->role);
		json_decref(t->info);
		free(t);
	}
	return NULL;
}

const char *otter_tuf_target_path(const otter_tuf_target *t)
{
	return t->path;
}

uint64_t otter_tuf_target_length(const otter_tuf_target *t)
{
	return t->length;
}

const json_t *otter_tuf_target_hashes(const otter_tuf_target *t)
{
	return json_object_get(t->info, "hashes");
}

const char *otter_tuf_target_hash(const otter_tuf_target *t, const char *alg)
{
	return json_string_value(json_object_get(otter_tuf_target_hashes(t), alg));
}

const json_t *otter_tuf_target_custom(const otter_tuf_target *t)
{
	return json_object_get(t->info, "custom");
}

const char *otter_tuf_target_role(const otter_tuf_target *t)
{
	return t->role;
}

/* Percent-encodes a target path for a URL, keeping '/' as the separator. */
static int append_url_path(otter_buf *b, const char *s, size_t len, otter_error *err)
{
	static const char digits[] = "0123456789ABCDEF";
	int r = 0;

	for (size_t i = 0; r == 0 && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '.' || c == '-' || c == '~' || c == '/') {
			r = buf_append(b, &s[i], 1, err);
		} else {
			char e[3] = {'%', digits[c >> 4], digits[c & 0xf]};
			r = buf_append(b, e, 3, err);
		}
	}
	return r;
}

/* The URL of t under one copy of the targets (base ends with '/'). */
static int target_url_at(const otter_tuf_updater *u, const char *target_base,
			 const otter_tuf_target *t, char **out, otter_error *err)
{
	const char *slash, *base, *prefix = NULL;
	otter_buf b;
	int r;

	buf_init(&b, 64 * 1024);
	r = buf_append_str(&b, target_base, err);
	slash = strrchr(t->path, '/');
	base = slash ? slash + 1 : t->path;
	if (r == 0 && slash)
		r = append_url_path(&b, t->path, (size_t)(slash - t->path) + 1, err);
	if (r == 0 && u->root->consistent_snapshot) {
		/* Any listed digest names a copy (tuf.md §6.2); prefer the strongest known. */
		prefix = otter_tuf_target_hash(t, "sha256");
		if (!prefix)
			prefix = otter_tuf_target_hash(t, "sha512");
		if (!prefix) {
			void *it = json_object_iter((json_t *)otter_tuf_target_hashes(t));
			prefix = it ? json_string_value(json_object_iter_value(it)) : NULL;
		}
		if (prefix) {
			r = append_url_path(&b, prefix, strlen(prefix), err);
			if (r == 0)
				r = buf_append(&b, ".", 1, err);
		}
	}
	if (r == 0)
		r = append_url_path(&b, base, strlen(base), err);
	if (r < 0) {
		buf_clear(&b);
		return r;
	}
	*out = (char *)buf_steal(&b, NULL);
	return *out ? 0 : otter_error_set(err, OTTER_E_NOMEM, "out of memory");
}

int otter_tuf_target_url(const otter_tuf_updater *u, const otter_tuf_target *t, char **out,
			 otter_error *err)
{
	if (!u->target_base_url)
		return otter_error_set(err, OTTER_E_INVALID, "no target base URL configured");
	return target_url_at(u, u->target_base_url, t, out, err);
}

int otter_tuf_target_check_file(const otter_tuf_target *t, const char *path, otter_error *err)
{
	_cleanup_(tuf_hash_verifier_freep) tuf_hash_verifier *v = NULL;
	_cleanup_close_ int fd = -1;
	uint8_t buf[64 * 1024];
	uint64_t total = 0;
	struct stat st;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? otter_error_set(err, OTTER_E_NOT_FOUND, "'%s' is missing",
							 path)
				       : otter_error_set_errno(err, errno, "open '%s'", path);
	if (fstat(fd, &st) < 0)
		return otter_error_set_errno(err, errno, "stat '%s'", path);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != t->length)
		return otter_error_set(err, OTTER_E_HASH, "'%s': length differs", path);
	r = tuf_hash_verifier_new(&v, otter_tuf_target_hashes(t), path, err);
	if (r < 0)
		return r;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return otter_error_set_errno(err, errno, "read '%s'", path);
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > t->length)
			return otter_error_set(err, OTTER_E_HASH, "'%s': length differs", path);
		r = tuf_hash_verifier_update(v, buf, (size_t)n, err);
		if (r < 0)
			return r;
	}
	return tuf_hash_verifier_finish(v, total, t->length, path, err);
}

struct file_sink {
	int fd;
	tuf_hash_verifier *v;
	uint64_t written;
};

static int file_sink(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	struct file_sink *fs = userdata;
	int r = tuf_hash_verifier_update(fs->v, data, len, err);

	if (r < 0)
		return r;
	r = fileio_write_all(fs->fd, data, len, err);
	if (r < 0)
		return r;
	fs->written += len;
	return 0;
}

int otter_tuf_download_target(otter_tuf_updater *u, const otter_tuf_target *t,
			      const char *target_dir, char **path_out, otter_error *err)
{
	_cleanup_free_ char *name = NULL, *dest = NULL, *url = NULL, *tmp = NULL;
	_cleanup_(tuf_hash_verifier_freep) tuf_hash_verifier *v = NULL;
	_cleanup_close_ int dfd = -1;
	struct file_sink fs = {.fd = -1};
	char s[256];
	int r;

	ARG_NONNULL(err, "download", u);
	ARG_NONNULL(err, "download", t);
	ARG_NONNULL(err, "download", target_dir);
	str_sanitize(t->path, s, sizeof(s));
	name = percent_encode(t->path);
	if (!name)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	dest = path_join(target_dir, name);
	if (!dest)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");

	/* 5.7.2: a local copy with the signed length and hashes needs no download. */
	if (otter_tuf_target_check_file(t, dest, NULL) == 0) {
		ulog(u, OTTER_LOG_INFO, "target '%s' is already in '%s'", s, dest);
		goto done;
	}
	r = tuf_hash_verifier_new(&v, otter_tuf_target_hashes(t), s, err);
	if (r < 0)
		return otter_error_prefix(err, r, "target '%s'", s);
	r = otter_tuf_target_url(u, t, &url, err);
	if (r < 0)
		return r;
	r = fileio_mkdir_p(target_dir, 0755, err);
	if (r < 0)
		return r;
	dfd = open(target_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return otter_error_set_errno(err, errno, "open target directory '%s'", target_dir);
	fileio_remove_stale_tmp(dfd);
	r = fileio_tmp_create(dfd, 0644, &fs.fd, &tmp, err);
	if (r < 0)
		return otter_error_prefix(err, r, "target directory '%s'", target_dir);
	fs.v = v;
	ulog(u, OTTER_LOG_INFO, "fetching %s", url);
	/* 5.7.3: at most the signed length; 5.7.4: exact length and every hash. */
	r = u->fetch(u->fetch_userdata, url, t->length, file_sink, &fs, err);
	if (r == 0)
		r = tuf_hash_verifier_finish(v, fs.written, t->length, s, err);
	if (r < 0) {
		fileio_tmp_discard(dfd, fs.fd, tmp);
		return otter_error_prefix(err, r, "downloading target '%s'", s);
	}
	/* 5.7.5: only now may it replace what was there. */
	r = fileio_tmp_commit(dfd, fs.fd, tmp, name, err);
	if (r < 0)
		return r;
	ulog(u, OTTER_LOG_INFO, "stored target '%s' in '%s'", s, dest);
done:
	if (path_out)
		*path_out = TAKE_PTR(dest);
	return 0;
}

/* ---- streaming a target into a caller's sink ---- */

struct stream {
	const otter_sink *sink;
	tuf_hash_verifier *v;
	uint64_t done;
	bool sink_failed; /* the last error came from the sink, not from the transfer */
};

static int stream_write(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	struct stream *s = userdata;
	int r = tuf_hash_verifier_update(s->v, data, len, err);

	if (r < 0)
		return r;
	r = s->sink->write(s->sink->userdata, data, len, err);
	if (r < 0) {
		s->sink_failed = true;
		return r;
	}
	s->done += len;
	return 0;
}

/* Drops what the sink has and starts the hashes again: the next byte is byte 0. */
static int stream_restart(struct stream *s, const otter_tuf_target *t, const char *what,
			  otter_error *err)
{
	int r;

	if (s->v) {
		r = s->sink->abort(s->sink->userdata, err);
		if (r < 0)
			return r;
	}
	s->v = tuf_hash_verifier_free(s->v);
	s->done = 0;
	s->sink_failed = false;
	return tuf_hash_verifier_new(&s->v, otter_tuf_target_hashes(t), what, err);
}

/* Fetches from offset: with otter_net a Range request; a custom fetcher cannot resume. */
static int fetch_from(otter_tuf_updater *u, const char *url, uint64_t offset, uint64_t max_len,
		      struct stream *s, otter_error *err)
{
	if (u->net)
		return otter_net_fetch(u->net, url, offset, max_len, stream_write, s, NULL, err);
	if (offset > 0)
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED, "%s: resuming needs otter_net",
				       url);
	return u->fetch(u->fetch_userdata, url, max_len, stream_write, s, err);
}

static bool resumable(int r)
{
	return r == OTTER_E_NETWORK || r == OTTER_E_TIMEOUT || r == OTTER_E_NOT_FOUND;
}

/* An error of the device, not of the copy: no other mirror would do better. */
static bool local_error(int r)
{
	return r == OTTER_E_IO || r == OTTER_E_NOMEM || r == OTTER_E_BUSY || r == OTTER_E_CONFIG;
}

/* The sink's own errors end the transfer, unless bad bytes may explain them. */
static bool sink_fatal(int r)
{
	return r != OTTER_E_FORMAT && r != OTTER_E_HASH && r != OTTER_E_TOO_LARGE;
}

int otter_tuf_stream_target(otter_tuf_updater *u, const otter_tuf_target *t,
			    const otter_sink *sink, const otter_tuf_stream_options *opts,
			    otter_error *err)
{
	otter_tuf_stream_options defaults = OTTER_TUF_STREAM_OPTIONS_INIT;
	struct stream s = {.sink = sink};
	size_t mirror = 0, n_bases;
	unsigned attempts = 0, max_attempts;
	const char *what;
	char safe[256];
	int r;

	ARG_NONNULL(err, "stream", u);
	ARG_NONNULL(err, "stream", t);
	ARG_NONNULL(err, "stream", sink);
	ARG_NONNULL(err, "stream", sink->write);
	ARG_NONNULL(err, "stream", sink->finish);
	ARG_NONNULL(err, "stream", sink->abort);
	if (!opts)
		opts = &defaults;
	if (opts->version != OTTER_TUF_STREAM_OPTIONS_VERSION)
		return otter_error_set(err, OTTER_E_INVALID, "stream: unknown options version %u",
				       opts->version);
	if (!u->target_base_url)
		return otter_error_set(err, OTTER_E_INVALID, "no target base URL configured");
	str_sanitize(t->path, safe, sizeof(safe));
	what = opts->what ? opts->what : safe;
	max_attempts = opts->attempts ? opts->attempts : 5;
	n_bases = 1 + u->n_target_mirrors;
	r = stream_restart(&s, t, safe, err);
	if (r < 0)
		return otter_error_prefix(err, r, "target '%s'", safe);

	for (;;) {
		const char *base = mirror == 0 ? u->target_base_url : u->target_mirrors[mirror - 1];
		_cleanup_free_ char *url = NULL;
		otter_error e = OTTER_ERROR_INIT;
		bool next_mirror = false;

		r = target_url_at(u, base, t, &url, err);
		if (r < 0)
			goto out;
		if (s.done > 0)
			ulog(u, OTTER_LOG_NOTICE, "resuming %s at byte %" PRIu64 " from %s", what, s.done,
			     base);
		else
			ulog(u, OTTER_LOG_INFO, "fetching %s", url);
		/* 5.7.3: at most the signed length, counting what arrived before. */
		r = fetch_from(u, url, s.done, t->length - s.done, &s, &e);
		if (r == 0 && s.done == t->length) {
			/* 5.7.4: the exact length and every listed hash, before the sink hears
			 * that it is complete. */
			r = tuf_hash_verifier_finish(s.v, s.done, t->length, safe, &e);
			if (r == 0) {
				r = sink->finish(sink->userdata, &e);
				if (r < 0) {
					*err = e;
					goto out;
				}
				break;
			}
		} else if (r == 0) {
			r = otter_error_set(&e, OTTER_E_NETWORK,
					    "%s: transfer ended at byte %" PRIu64 " of %" PRIu64, url,
					    s.done, t->length);
		}
		if (s.sink_failed && sink_fatal(r)) {
			if (err && !err->code)
				*err = e;
			goto out;
		}
		attempts++;
		ulog(u, OTTER_LOG_WARNING, "downloading %s (attempt %u): %s", what, attempts, e.msg);
		if (r == OTTER_E_NOT_SUPPORTED && s.done > 0) {
			/* The server ignored the range: start over. */
			r = stream_restart(&s, t, safe, err);
			if (r < 0)
				goto out;
		} else if (!resumable(r)) {
			/* Wrong bytes (hash, length, endless data) or a local failure: this copy
			 * is bad. Another mirror may hold a good one; never resume over bad data. */
			if (local_error(r) || mirror + 1 >= n_bases) {
				if (err && !err->code)
					*err = e;
				goto out;
			}
			next_mirror = true;
		}
		if (!next_mirror && attempts >= max_attempts) {
			if (mirror + 1 >= n_bases) {
				if (err && !err->code)
					*err = e;
				r = otter_error_prefix(err, r, "giving up after %u attempts", attempts);
				goto out;
			}
			next_mirror = true;
		}
		if (next_mirror) {
			/* From byte 0: a stream is never assembled from two mirrors, as bad bytes
			 * from one would be blamed on the next, and a good mirror would never get a
			 * clean try. */
			mirror++;
			attempts = 0;
			r = stream_restart(&s, t, safe, err);
			if (r < 0)
				goto out;
			continue;
		}
		{
			unsigned pause = attempts < 5 ? 1u << (attempts - 1) : 16;

			if (opts->pause)
				opts->pause(opts->userdata, pause);
			else
				sleep(pause);
		}
	}
	r = 0;
out:
	tuf_hash_verifier_free(s.v);
	return r;
}
