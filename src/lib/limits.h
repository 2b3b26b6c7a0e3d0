/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_LIMITS_H
#define OTTER_LIB_LIMITS_H

/*
 * Every quantity read from untrusted input has a named limit here (style.md §3.4). The TUF
 * defaults follow python-tuf's UpdaterConfig (tuf.md §8); the rest are ours, sized well above
 * what real repositories use.
 */

/* Download caps when the referring metadata gives no length (tuf.md §8). */
#define OTTER_TUF_ROOT_MAX_LENGTH      512000u
#define OTTER_TUF_TIMESTAMP_MAX_LENGTH 16384u
#define OTTER_TUF_SNAPSHOT_MAX_LENGTH  2000000u
#define OTTER_TUF_TARGETS_MAX_LENGTH   5000000u

/* Counts per refresh or search. */
#define OTTER_TUF_MAX_ROOT_ROTATIONS 256u
#define OTTER_TUF_MAX_DELEGATIONS    32u

/* Absolute ceiling for any metadata file, whatever the referrer claims (128 MiB). */
#define OTTER_TUF_METADATA_HARD_MAX (128u * 1024u * 1024u)

/* JSON structure. */
#define OTTER_JSON_MAX_DEPTH 64u

/* Per-file counts (far above real use; they bound work on hostile input). */
#define OTTER_TUF_MAX_KEYS        1024u    /* keys in root or one delegations object */
#define OTTER_TUF_MAX_SIGNATURES  1024u    /* entries in "signatures" */
#define OTTER_TUF_MAX_ROLE_KEYIDS 1024u    /* keyids of one role */
#define OTTER_TUF_MAX_DELEGATED_ROLES 100000u
#define OTTER_TUF_MAX_PATTERNS    10000u   /* paths or path_hash_prefixes of one role */
#define OTTER_TUF_MAX_HASHES      16u      /* entries in one "hashes" object */
#define OTTER_TUF_MAX_ROLE_NAME   1024u    /* bytes in a role name */
#define OTTER_TUF_MAX_TARGET_PATH 4096u    /* bytes in a target path */
#define OTTER_TUF_MAX_HASH_HEX    256u     /* hex chars of one hash value */
#define OTTER_TUF_MAX_SIG_HEX     4096u    /* hex chars of one signature (RSA-8192 = 2048) */
#define OTTER_TUF_MAX_PUBKEY_LEN  8192u    /* bytes of keyval.public */
#define OTTER_TUF_SUCCINCT_MAX_BITS 32u

/* Targets are capped by their signed length; this bounds the number itself (1 TiB). */
#define OTTER_TUF_TARGET_MAX_LENGTH (1ull << 40)

#endif
