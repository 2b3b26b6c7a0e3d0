/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_TEST_TUF_REPO_BUILDER_H
#define OTTER_TEST_TUF_REPO_BUILDER_H

/*
 * An in-memory TUF repository for unit tests, and a fetcher that serves it (URLs
 * "mem://repo/metadata/<file>" and "mem://repo/targets/<file>"). Tests mutate the "signed"
 * JSON of any role, re-sign with any keys and publish any bytes, which is how attacks are
 * staged. Every fetch is logged so tests can assert the exact requests.
 */

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include <otter/crypto.h>
#include <otter/tuf.h>

#define TREPO_MAX_FILES    4096
#define TREPO_MAX_ROLES    512
#define TREPO_MAX_REQUESTS 4096

typedef struct trepo_file {
	char *name; /* "metadata/1.root.json", "targets/<hash>.a.txt" */
	uint8_t *data;
	size_t len;
} trepo_file;

typedef struct trepo_role {
	char *name;
	json_t *signed_obj;
	otter_key *signers[8];
	size_t n_signers;
} trepo_role;

typedef struct trepo {
	trepo_role roles[TREPO_MAX_ROLES];
	size_t n_roles;
	trepo_file files[TREPO_MAX_FILES];
	size_t n_files;
	char *requests[TREPO_MAX_REQUESTS];
	size_t n_requests;
	int64_t now;          /* the clock the client sees */
	int fail_with;        /* if non-zero, every fetch fails with this code */
	const char *fail_only; /* ... only fetches whose URL contains this */
	bool snapshot_hashes; /* list length+hashes in snapshot meta */
	bool timestamp_hashes;
	char *dir;            /* client metadata dir */
	char *target_dir;
} trepo;

/* A repository with one ed25519 key per top-level role, threshold 1, consistent snapshots,
 * everything version 1 and published; plus a client metadata dir holding root v1. */
trepo *trepo_new(void);
void trepo_free(trepo *r);

trepo_role *trepo_role_get(trepo *r, const char *name);
json_t *trepo_signed(trepo *r, const char *name);
/* Replaces the signing keys of a role (for signing only; delegators are not changed). */
void trepo_set_signers(trepo *r, const char *name, otter_key **keys, size_t n);

/* The envelope bytes of role signed by keys (NULL = its signers), compact JSON. */
uint8_t *trepo_serialise(trepo *r, const char *name, otter_key **keys, size_t n_keys,
			 size_t *len);
/* Stores bytes under metadata/<file> or targets/<file> (replacing). */
void trepo_put(trepo *r, const char *name, const void *data, size_t len);
const trepo_file *trepo_get_file(trepo *r, const char *name);
/* Publishes role as it is now under its repository file name; returns the file. */
const trepo_file *trepo_publish_role(trepo *r, const char *name);
/* Bumps each role, publishes it and refreshes snapshot and timestamp to point at it. */
void trepo_release(trepo *r, const char *const *roles, size_t n);
#define TREPO_RELEASE(r, ...)                                                                      \
	trepo_release(r, (const char *const[]){__VA_ARGS__},                                       \
		      sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

void trepo_add_target(trepo *r, const char *role, const char *path, const void *data,
		      size_t len);
/* Delegates from parent to a new role with a new ed25519 key; paths is NULL-terminated. */
trepo_role *trepo_delegate(trepo *r, const char *parent, const char *name,
			   const char *const *paths, bool terminating);
/* Root N+1: role gets `add` instead of its keys (NULL: unchanged), signed by old+new keys. */
void trepo_rotate(trepo *r, const char *role, otter_key *add, uint64_t threshold);

/* A client updater reading from this repository (fetch and clock hooks set). */
otter_tuf_updater *trepo_updater(trepo *r, otter_error *err);
/* The same, with more copies of the targets: "mem://repo/<mirror>/" each. */
otter_tuf_updater *trepo_updater_mirrors(trepo *r, const char *const *target_mirrors, size_t n,
					 otter_error *err);
/* Runs a whole refresh in a new updater; returns its status. */
int trepo_refresh(trepo *r, otter_error *err);
/* Version of a role in the client's metadata dir (0 if absent). */
uint64_t trepo_client_version(trepo *r, const char *role);
void trepo_clear_requests(trepo *r);
/* Requests made, joined with ' ' (file names after "mem://repo/"). Static buffer. */
const char *trepo_requests(trepo *r);

otter_key *trepo_new_key(otter_key_type type);
char *trepo_keyid(const otter_key *k); /* caller frees */

#endif
