/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_REPO_TOOL_H
#define OTTER_REPO_TOOL_H

/*
 * otter-repo: the repository tool. One file per subcommand (cmd-*.c); this header holds what
 * they share: the command table entry, option parsing, key loading with passphrases and the
 * repository folder (repo.c).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/crypto.h>
#include <otter/error.h>
#include <otter/json.h>
#include <otter/repo.h>

/* ---- options ---- */

typedef enum arg_kind {
	ARG_FLAG,  /* --name */
	ARG_VALUE, /* --name VALUE or --name=VALUE; the last one counts */
	ARG_LIST,  /* --name V1 [V2 ...]: repeatable, and takes every following non-option */
} arg_kind;

typedef struct arg_spec {
	const char *name;
	arg_kind kind;
} arg_spec;

#define ARGS_MAX_SPECS 40
#define ARGS_MAX_VALUES 4096

typedef struct args {
	const arg_spec *specs[ARGS_MAX_SPECS];
	size_t n_specs;
	const char **values[ARGS_MAX_SPECS];
	size_t n_values[ARGS_MAX_SPECS];
	const char **pos;
	size_t n_pos;
} args;

/* Parses argv[0..argc) (after the command name) against the common options and specs. */
int args_parse(args *a, const arg_spec *specs, int argc, char **argv, otter_error *err);
void args_clear(args *a);
bool args_flag(const args *a, const char *name);
const char *args_value(const args *a, const char *name);
size_t args_list(const args *a, const char *name, const char *const **out);
/* A --name value as an integer in [min, max]; def when absent. */
int args_u64(const args *a, const char *name, uint64_t min, uint64_t max, uint64_t def,
	     uint64_t *out, otter_error *err);
/* A --name value as a duration (90d, 12h ...); def when absent. */
int args_duration(const args *a, const char *name, int64_t def, int64_t *out, otter_error *err);

/* ---- commands ---- */

typedef struct command {
	const char *name;
	const char *summary; /* one line for the command list */
	const char *help;    /* full text of `otter-repo help NAME` */
	const arg_spec *opts; /* terminated by {NULL} */
	int (*run)(const args *a);
} command;

extern const command cmd_init, cmd_key, cmd_add_target, cmd_remove_target, cmd_delegate,
	cmd_undelegate, cmd_stage, cmd_sign, cmd_import, cmd_publish, cmd_rotate, cmd_refresh,
	cmd_status, cmd_verify, cmd_add_release;

/*
 * Stages n files as targets: files[i] under target path paths[i], with custom data
 * customs[i] (may be NULL) in role roles[i] (roles or roles[i] NULL: the default role for
 * the path). Checks everything before writing anything; prints; returns the exit status.
 */
int add_targets(const char *repo_dir, size_t n, const char *const *files,
		const char *const *paths, json_t *const *customs, const char *const *roles);

/* ---- output ---- */

/* GLOBAL: the running command's name and verbosity, set once by main. */
extern const char *cli_command;
extern bool cli_quiet;

/* Prints "otter-repo: CMD: message" on stderr; returns 1 (the exit status). */
int cli_fail(const otter_error *err);
int cli_failf(const char *fmt, ...) OTTER_PRINTF(1, 2);
/* Progress on stdout unless --quiet. */
void cli_info(const char *fmt, ...) OTTER_PRINTF(1, 2);
void cli_warn(const char *fmt, ...) OTTER_PRINTF(1, 2);

/* ---- keys ---- */

/*
 * The passphrase named by --passphrase-fd / --passphrase-env (read once, wiped at exit), or
 * NULL when neither was given. Never taken from argv.
 */
int cli_passphrase(const args *a, const char **out, otter_error *err);

/*
 * Refuses a private key path inside a repository folder: inside repo_dir (may be NULL) or in
 * any folder that holds otter-repo.conf, itself or above. The file need not exist yet.
 */
int cli_check_key_location(const char *path, const char *repo_dir, otter_error *err);

/* Loads a private key (after cli_check_key_location), decrypting with passphrase if needed. */
int cli_load_private_key(const char *path, const char *passphrase, const char *repo_dir,
			 otter_key **out, otter_error *err);
/* Loads a public key from a PEM file (a private key file gives its public part). */
int cli_load_public_key(const char *path, otter_key **out, otter_error *err);

/* A rough duration for people: "364d", "5h", "12m", "40s". */
void cli_human_duration(int64_t secs, char out[32]);

/* Reads a whole file (at most max bytes). */
int cli_read_file(const char *path, size_t max, uint8_t **out, size_t *len, otter_error *err);

/* ---- the repository folder (repo.c) ---- */

typedef struct repo_role {
	char *name;
	otter_repo_role_type type; /* OTTER_REPO_TARGETS for delegated roles */
	otter_repo_metadata *pub;  /* published version, parsed; NULL when never published */
	json_t *staged;      /* staged envelope; NULL when nothing is staged */
	uint8_t *staged_canon; /* canonical "signed" as loaded, to notice edits */
	size_t staged_canon_len;
	bool staged_dirty;   /* write back on repo_save_staging */
	bool staged_drop;    /* delete the staged file on repo_save_staging */
	json_t *hidden;      /* the staged envelope while repo_hide_staged is in force */
	otter_repo_metadata *cur; /* cache: the current view (staged if any, else published) */
} repo_role;

typedef struct repo {
	char *dir; /* absolute */
	int dfd, mdfd, tgfd, stfd; /* repository, metadata, targets, staging (-1 if none yet) */
	int lockfd;
	otter_repo_config cfg;
	int64_t now;
	otter_repo_metadata *timestamp; /* published */
	otter_repo_metadata *snapshot;
	repo_role *roles;
	size_t n_roles;
	size_t *index; /* open-addressing hash of role names: role index + 1, 0 = empty */
	size_t index_cap; /* a power of two, at least twice n_roles */
} repo;

#define REPO_STAGING_DIR "staging"
#define REPO_BLOB_DIR    "staging/targets"
#define REPO_LOCK_NAME   ".otter-repo.lock"

enum {
	REPO_OPEN_LOCK = 1u << 0, /* take the repository lock (every command that writes) */
};

/* The --repo folder (default "."). */
const char *repo_dir_arg(const args *a);

int repo_open(repo **out, const char *dir, unsigned flags, otter_error *err);
repo *repo_free(repo *r);

repo_role *repo_role_find(repo *r, const char *name);
/* The role entry, created (with nothing published or staged) when absent. */
int repo_role_add(repo *r, const char *name, repo_role **out, otter_error *err);

/* The current "signed" payload of a role: staged if any, else published (borrowed). */
const json_t *repo_role_signed(const repo_role *role);
/* The current view parsed (cached until the staged copy changes). */
int repo_role_current(repo *r, repo_role *role, otter_repo_metadata **out, otter_error *err);
/* Consistent snapshots, from the current root. */
bool repo_consistent(repo *r);

/*
 * Starts (or continues) the next version of a role in staging and returns its "signed" object
 * for editing: a new staged version copies the published one with version + 1, expiry now +
 * the configured period and no signatures. Signatures of an existing staged version are
 * dropped on save if its content changed.
 */
int repo_stage_role(repo *r, repo_role *role, json_t **signed_out, otter_error *err);
/* Stages a brand-new role (version 1) with the given signed object (reference taken). */
int repo_stage_new(repo *r, const char *name, json_t *signed_obj, otter_error *err);
/*
 * Sets staged versions aside (true) or brings them back (false), so that the current view is
 * what is published: refresh and verify work on the published repository only.
 */
void repo_hide_staged(repo *r, bool hide);
/* True when a client would reach role through the current delegation tree. */
bool repo_role_reachable(repo *r, const char *name);

/* Marks a staged role as edited (after changing it without repo_stage_role). */
void repo_role_touch(repo_role *role);

/* Writes every changed staged role (atomically); reports dropped signatures via cli_warn. */
int repo_save_staging(repo *r, otter_error *err);

/*
 * Who signs role: the key table and role keys from its delegator's current view (root for
 * top-level roles). *delegator_out (optional) gets the delegating role. For root, the keys
 * are root's own (the new root's when one is staged).
 */
int repo_role_signers(repo *r, const char *name, const otter_repo_keyring **ring,
		      const otter_repo_rolekeys **keys, repo_role **delegator_out,
		      otter_error *err);

/*
 * Checks that a client looking up target_path would reach role: every delegation on the way
 * from targets to role matches the path. OTTER_E_NOT_FOUND with an explanation otherwise.
 */
int repo_check_target_reaches(repo *r, const char *role, const char *target_path,
			      otter_error *err);
/* The role add-target uses by default: the hash bin when targets uses succinct bins. */
int repo_default_target_role(repo *r, const char *target_path, char **out, otter_error *err);

/* Loads the configured online keys of a role (none: *n_out = 0). Free with keys_free. */
int repo_online_keys(repo *r, const char *role, otter_key ***out, size_t *n_out,
		     otter_error *err);
void keys_free(otter_key **keys, size_t n);

/* The key id of a key. */
int key_id(const otter_key *key, char out[OTTER_KEYID_HEX_LEN + 1], otter_error *err);

/*
 * Writes PREFIX.pem (PKCS#8 private key, mode 0600, encrypted when passphrase is not NULL)
 * and PREFIX.pub (public key, 0644). Refuses to overwrite existing files unless force, and
 * a location inside a repository folder. keyid_out (optional) gets the key id.
 */
int key_write_pair(const char *prefix, const otter_key *key, const char *passphrase, bool force,
		   char keyid_out[OTTER_KEYID_HEX_LEN + 1], otter_error *err);

/* ---- publishing (publish.c) ---- */

typedef struct publish_opts {
	otter_key **keys; /* extra private keys (publish --key): sign every role they may */
	size_t n_keys;
	bool refresh_only;  /* refresh: nothing staged is published */
	bool new_snapshot;  /* a new snapshot version (publish always; refresh when due) */
	bool dry_run;       /* every check, nothing written */
} publish_opts;

/*
 * Publishes everything staged (see cmd-publish.c for the rules): checks every staged role's
 * signatures with the client's code, builds and signs snapshot and timestamp with the online
 * keys, runs a client refresh against the result, then writes every file atomically with
 * timestamp.json last, and clears the staging folder. Nothing is written unless every check
 * passed.
 */
int repo_publish(repo *r, const publish_opts *opts, otter_error *err);

/* How a role stands in staging, for status and rotate: one line per signer set. */
typedef struct sig_report {
	char label[160];      /* "keys of the published root (old)", "keys root assigns to targets" */
	size_t valid;
	uint64_t threshold;
	char **signed_ids;
	char **missing_ids;
} sig_report;

/* Up to two reports (root needs old and new root keys). Free with sig_reports_clear. */
int repo_staged_signatures(repo *r, repo_role *role, sig_report out[2], size_t *n_out,
			   otter_error *err);
void sig_reports_clear(sig_report *reps, size_t n);

#endif
