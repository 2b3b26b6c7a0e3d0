/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_TUF_H
#define OTTER_TUF_H

/*
 * The TUF client (tuf.md §7): a trusted root in a metadata directory, a repository at a
 * metadata URL, and the specification's update workflow between them.
 *
 *   otter_tuf_updater_new()     loads and self-verifies MD/root.json (no network)
 *   otter_tuf_refresh()         root rotation loop, timestamp, snapshot, top-level targets
 *   otter_tuf_find_target()     delegation search for one target path (fetches delegated roles)
 *   otter_tuf_download_target() fetch, check length and every hash, then store atomically
 *   otter_tuf_stream_target()   stream into a caller's sink: mirrors, resume, every hash
 *
 * Trusted metadata is stored in the metadata directory under unversioned names (root.json,
 * timestamp.json, snapshot.json, targets.json, <percent-encoded role>.json), as the exact
 * bytes served, each written atomically and only after it passed every check.
 *
 * Errors name the file and the check: OTTER_E_SIGNATURE (threshold not met), OTTER_E_EXPIRED
 * (freeze), OTTER_E_ROLLBACK, OTTER_E_VERSION (version differs from the referrer's),
 * OTTER_E_HASH (length or hash differs), OTTER_E_TOO_LARGE (endless data), OTTER_E_TIMEOUT
 * (slow retrieval), OTTER_E_NOT_FOUND (404 or no such target), OTTER_E_FORMAT.
 *
 * An updater is not thread-safe; use one per thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/crypto.h>
#include <otter/error.h>
#include <otter/log.h>
#include <otter/net.h>
#include <otter/sink.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A fetcher: delivers at most max_len bytes of url to sink. Must return OTTER_E_NOT_FOUND for
 * a missing file (HTTP 403/404), OTTER_E_TOO_LARGE past max_len. The default uses otter_net.
 */
typedef int (*otter_tuf_fetch_fn)(void *userdata, const char *url, uint64_t max_len,
				  otter_net_sink sink, void *sink_userdata, otter_error *err);


typedef struct otter_tuf_options {
	unsigned version;           /* OTTER_TUF_OPTIONS_VERSION */
	const char *metadata_dir;   /* required: holds root.json */
	const char *metadata_url;   /* base URL of the metadata ('/' appended if missing) */
	const char *target_base_url; /* base URL of targets; NULL if nothing is downloaded */
	otter_tuf_fetch_fn fetch;   /* NULL: libcurl through otter_net with net_options */
	void *fetch_userdata;
	const otter_net_options *net_options; /* NULL: defaults */
	int64_t (*clock)(void *userdata); /* seconds since the epoch; NULL: time() */
	void *clock_userdata;
	otter_log_fn log;
	void *log_userdata;
	/* Limits; 0 selects the default (tuf.md §8). */
	uint64_t max_root_rotations;   /* 256 */
	uint64_t max_delegations;      /* 32 */
	uint64_t root_max_length;      /* 512000 */
	uint64_t timestamp_max_length; /* 16384 */
	uint64_t snapshot_max_length;  /* 2000000 */
	uint64_t targets_max_length;   /* 5000000 */
	/* More copies of the targets, tried in order after target_base_url by
	 * otter_tuf_stream_target (the metadata comes from metadata_url alone). */
	const char *const *target_mirrors;
	size_t n_target_mirrors;
} otter_tuf_options;

#define OTTER_TUF_OPTIONS_VERSION 1

/* Fills opts with version and defaults (all NULL / 0). */
OTTER_PUBLIC void otter_tuf_options_init(otter_tuf_options *opts);

/*
 * Installs root (len bytes) as the trusted root in metadata_dir (created if missing),
 * atomically. It checks that the bytes parse as root metadata, not its signatures: the
 * updater verifies those when it loads it.
 */
OTTER_PUBLIC int otter_tuf_install_root(const char *metadata_dir, const uint8_t *root,
					size_t len, otter_error *err) OTTER_WARN_UNUSED_RESULT;

typedef struct otter_tuf_updater otter_tuf_updater;

OTTER_PUBLIC int otter_tuf_updater_new(otter_tuf_updater **out, const otter_tuf_options *opts,
				       otter_error *err) OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC otter_tuf_updater *otter_tuf_updater_free(otter_tuf_updater *u);

/* The top-level workflow. May be called once per updater; later calls return 0 at once. */
OTTER_PUBLIC int otter_tuf_refresh(otter_tuf_updater *u, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

/* Trusted versions after a refresh (0 if the role is not loaded). */
OTTER_PUBLIC uint64_t otter_tuf_trusted_version(const otter_tuf_updater *u, const char *role);
/* The expiry of a trusted role, seconds since the epoch (0 if not loaded). */
OTTER_PUBLIC int64_t otter_tuf_trusted_expires(const otter_tuf_updater *u, const char *role);

/* ---- targets ---- */

typedef struct otter_tuf_target otter_tuf_target;

/* ---- keys in TUF metadata (tuf.md §4) ---- */

/*
 * Parses a TUF KEY object. OTTER_E_NOT_SUPPORTED for a keytype/scheme pair otter does not
 * know (the caller may then treat the key as unusable rather than fail).
 */
OTTER_PUBLIC int otter_key_from_tuf(otter_key **out, const json_t *keyobj, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;
/* The TUF KEY object of a key: {"keytype", "scheme", "keyval": {"public"}}. */
OTTER_PUBLIC int otter_key_to_tuf(const otter_key *key, json_t **out, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;
/* keyid = lower-case hex SHA-256 of the canonical JSON of the whole KEY object (tuf.md §4.2). */
OTTER_PUBLIC int otter_keyid_of_tuf(const json_t *keyobj, char out[OTTER_KEYID_HEX_LEN + 1],
				    otter_error *err);

/*
 * Looks path up through the delegation tree (refreshing first if needed). *out is owned by
 * the caller and stays valid after the updater is freed. OTTER_E_NOT_FOUND when no trusted
 * role lists the path.
 */
OTTER_PUBLIC int otter_tuf_find_target(otter_tuf_updater *u, const char *path,
				       otter_tuf_target **out, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

/*
 * Calls cb for every target the top-level targets metadata lists whose path starts with
 * prefix ("" for all), in path order (refreshing first if needed). Delegated roles are not
 * walked: content meant to be enumerated (release documents) is listed at the top level.
 * A negative return from cb stops the walk and is returned.
 */
typedef int (*otter_tuf_target_fn)(void *userdata, const otter_tuf_target *t, otter_error *err);
OTTER_PUBLIC int otter_tuf_foreach_target(otter_tuf_updater *u, const char *prefix,
					  otter_tuf_target_fn cb, void *userdata,
					  otter_error *err) OTTER_WARN_UNUSED_RESULT;

OTTER_PUBLIC const char *otter_tuf_target_path(const otter_tuf_target *t);
OTTER_PUBLIC uint64_t otter_tuf_target_length(const otter_tuf_target *t);
/* The "hashes" object (alg -> hex), borrowed. */
OTTER_PUBLIC const json_t *otter_tuf_target_hashes(const otter_tuf_target *t);
/* The hex value of one algorithm ("sha256"), or NULL. Borrowed. */
OTTER_PUBLIC const char *otter_tuf_target_hash(const otter_tuf_target *t, const char *alg);
/* The "custom" member, borrowed; NULL when absent. */
OTTER_PUBLIC const json_t *otter_tuf_target_custom(const otter_tuf_target *t);
/* The role whose metadata listed the target. */
OTTER_PUBLIC const char *otter_tuf_target_role(const otter_tuf_target *t);
OTTER_PUBLIC otter_tuf_target *otter_tuf_target_free(otter_tuf_target *t);

/*
 * The URL a target is fetched from: target base URL + path, with the hash prefix on the last
 * component when the repository uses consistent snapshots. Caller frees.
 */
OTTER_PUBLIC int otter_tuf_target_url(const otter_tuf_updater *u, const otter_tuf_target *t,
				      char **out, otter_error *err) OTTER_WARN_UNUSED_RESULT;

/* Checks a local file against the target's length and hashes: 0 if it matches. */
OTTER_PUBLIC int otter_tuf_target_check_file(const otter_tuf_target *t, const char *path,
					     otter_error *err);

/*
 * Downloads t into target_dir under the percent-encoded target path (a flat layout that cannot
 * escape the directory), unless a file that matches is there already (artifact cache). The
 * body is capped at the signed length and written to a temp file, and only replaces the
 * destination when length and every hash match. *path_out (may be NULL) gets the local path.
 */
OTTER_PUBLIC int otter_tuf_download_target(otter_tuf_updater *u, const otter_tuf_target *t,
					   const char *target_dir, char **path_out,
					   otter_error *err) OTTER_WARN_UNUSED_RESULT;

typedef struct otter_tuf_stream_options {
	unsigned version;  /* OTTER_TUF_STREAM_OPTIONS_VERSION */
	const char *what;  /* names the artifact in messages ("rootfs"); NULL: the target path */
	unsigned attempts; /* per mirror, each resuming where the last stopped; 0 = 5 */
	/* Waits between attempts (1, 2, 4, 8, then 16 s); NULL: sleep(3). */
	void (*pause)(void *userdata, unsigned seconds);
	void *userdata;
} otter_tuf_stream_options;

#define OTTER_TUF_STREAM_OPTIONS_VERSION 1
#define OTTER_TUF_STREAM_OPTIONS_INIT {OTTER_TUF_STREAM_OPTIONS_VERSION, NULL, 0, NULL, NULL}

/*
 * Streams t into sink (otter/sink.h) from target_base_url, then target_mirrors in order:
 *  - at most the signed length is accepted from any server (OTTER_E_TOO_LARGE past it);
 *  - a transfer that stops (network, timeout, 404) resumes at the byte it stopped, with an
 *    HTTP Range request on the same copy, up to opts->attempts times, then the next mirror
 *    starts from byte 0 (a stream is never assembled from two mirrors);
 *  - wrong bytes (a listed hash or the length differs, or the sink finds them malformed)
 *    are never resumed over: the sink is aborted and the next mirror starts from byte 0;
 *  - sink->finish is called only after the length and EVERY listed hash matched.
 * On failure the sink is left unfinished (the caller frees it). opts may be NULL.
 */
OTTER_PUBLIC int otter_tuf_stream_target(otter_tuf_updater *u, const otter_tuf_target *t,
					 const otter_sink *sink,
					 const otter_tuf_stream_options *opts, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

#ifdef __cplusplus
}
#endif

#endif
