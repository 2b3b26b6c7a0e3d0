/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_TUF_REPO_CONFIG_H
#define OTTER_LIB_TUF_REPO_CONFIG_H

/*
 * The repository configuration otter-repo keeps next to metadata/ and targets/
 * (otter-repo.conf). INI style, read by util/ini.c like every configuration file; unknown
 * sections and keys are errors, reported as "file:line: section.key: reason".
 *
 *   [expiry]      root, targets, snapshot, timestamp, delegated = DURATION
 *                 how far ahead a new version of each role expires
 *   [margin]      the same names = DURATION
 *                 status warns when a role expires within its margin; refresh re-signs
 *                 snapshot and timestamp when they do
 *   [online]      ROLE = /absolute/path/key.pem   (repeatable; any role except root)
 *                 private keys publish and refresh sign with, without asking anyone
 *   [passphrase]  env = VARIABLE | file = /absolute/path
 *                 where the passphrase of encrypted online keys comes from
 *
 * DURATION is a whole number with a unit: 90d, 12h, 30m, 45s, 2w.
 */

#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

#include "lib/tuf/tuf-metadata.h"

#define TUF_REPO_CONFIG_NAME      "otter-repo.conf"
#define TUF_REPO_CONFIG_MAX_SIZE  65536u
#define TUF_REPO_CONFIG_MAX_LINE  4096u
#define TUF_REPO_CONFIG_MAX_ONLINE 64u
/* Durations stay below 100 years, so that now + duration never overflows a time. */
#define TUF_REPO_MAX_DURATION     (100ll * 366 * 86400)

/* Index of the delegated-role entry in the expiry and margin arrays. */
#define TUF_REPO_DELEGATED _TUF_ROLE_TYPE_MAX

typedef struct tuf_repo_online_key {
	char *role;
	char *path;
} tuf_repo_online_key;

typedef struct tuf_repo_config {
	int64_t expiry[_TUF_ROLE_TYPE_MAX + 1]; /* seconds, by tuf_role_type, then delegated */
	int64_t margin[_TUF_ROLE_TYPE_MAX + 1];
	tuf_repo_online_key *online;
	size_t n_online;
	char *passphrase_env;
	char *passphrase_file;
} tuf_repo_config;

/* Defaults: expiry root 365 d, targets 90 d, snapshot 7 d, timestamp 1 d, delegated 90 d;
 * margins 30 d, 14 d, 2 d, 6 h, 14 d; no online keys. */
void tuf_repo_config_init(tuf_repo_config *c);
void tuf_repo_config_clear(tuf_repo_config *c);

/*
 * Parses buf (len bytes, at most TUF_REPO_CONFIG_MAX_SIZE) on top of the values already in c
 * (normally the defaults). "what" names the file in errors. On failure c is left as it was.
 */
int tuf_repo_config_parse(tuf_repo_config *c, const uint8_t *buf, size_t len, const char *what,
			  otter_error *err);

/* Writes c back as a configuration file (with comments); caller frees. */
int tuf_repo_config_format(const tuf_repo_config *c, char **out, otter_error *err);

/* Adds an online key; the path must be absolute. */
int tuf_repo_config_add_online(tuf_repo_config *c, const char *role, const char *path,
			       otter_error *err);

/* Expiry period and margin for a role by name (top-level, else the delegated value). */
int64_t tuf_repo_config_expiry(const tuf_repo_config *c, const char *role);
int64_t tuf_repo_config_margin(const tuf_repo_config *c, const char *role);

/* "90d" -> seconds; 0 on success, -1 if malformed, zero or above TUF_REPO_MAX_DURATION. */
int tuf_repo_parse_duration(const char *s, int64_t *out);
/* Seconds -> the largest exact unit ("90d", "36h", "45s"). */
void tuf_repo_format_duration(int64_t secs, char out[32]);

#endif
