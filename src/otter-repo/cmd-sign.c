/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-repo sign (offline, needs nothing but the file and a key) | import */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/limits.h"
#include "otter-repo.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(repo, repo_free)

#define MAX_SIGN_KEYS 64

/* Published files are hashed into snapshot and timestamp: signing one in place would break
 * the repository. */
static int refuse_published(const char *file, otter_error *err)
{
	_cleanup_free_ char *copy = otter_strdup(file);
	_cleanup_free_ char *dir = NULL;
	char probe[PATH_MAX + 64];
	struct stat st;

	if (!copy)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	dir = realpath(dirname(copy), NULL);
	if (!dir || !str_endswith(dir, "/metadata"))
		return 0;
	strfmt(probe, sizeof(probe), "%.*s/%s", (int)(strlen(dir) - 9), dir,
	       OTTER_REPO_CONFIG_NAME);
	if (stat(probe, &st) == 0)
		return otter_error_set(err, OTTER_E_INVALID,
				       "'%s' is published metadata: sign the staged copy "
				       "(staging/ROLE.json, see otter-repo stage) instead",
				       file);
	return 0;
}

static void describe(const json_t *env, otter_repo_role_type type, char *out, size_t size)
{
	const json_t *s = otter_repo_envelope_signed(env);
	uint64_t version = 0;
	char when[32] = "?";
	int64_t exp = 0;

	if (otter_repo_signed_get(s, &version, &exp, NULL) == 0)
		utc_format(exp, when);
	if (type == OTTER_REPO_TARGETS)
		strfmt(out, size, "targets metadata version %" PRIu64 ", %zu target%s, expires %s",
		       version, json_object_size(json_object_get(s, "targets")),
		       json_object_size(json_object_get(s, "targets")) == 1 ? "" : "s", when);
	else
		strfmt(out, size, "%s version %" PRIu64 ", expires %s",
		       otter_repo_role_type_name(type), version, when);
}

static int run_sign(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	const char *const *keyfiles;
	size_t n_keys = args_list(a, "key", &keyfiles), loaded = 0;
	const char *passphrase = NULL;
	otter_key *keys[MAX_SIGN_KEYS];
	int rc = 1;

	if (a->n_pos == 0 || n_keys == 0)
		return cli_failf("usage: otter-repo sign FILE... --key PRIVATE_KEY...");
	if (n_keys > MAX_SIGN_KEYS)
		return cli_failf("at most %d keys", MAX_SIGN_KEYS);
	if (cli_passphrase(a, &passphrase, &err) < 0)
		return cli_fail(&err);
	for (; loaded < n_keys; loaded++)
		if (cli_load_private_key(keyfiles[loaded], passphrase, NULL, &keys[loaded], &err) <
		    0) {
			cli_fail(&err);
			goto out;
		}
	/* Check every file first: all are signed, or none. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < a->n_pos; i++) {
			const char *file = a->pos[i];
			_cleanup_free_ uint8_t *raw = NULL, *out = NULL;
			_cleanup_(json_decrefp) json_t *env = NULL;
			struct stat st;
			otter_repo_role_type type;
			size_t len, out_len;
			char desc[200];

			if (refuse_published(file, &err) < 0 ||
			    cli_read_file(file, OTTER_TUF_METADATA_HARD_MAX, &raw, &len, &err) <
				    0 ||
			    otter_repo_envelope_parse(&env, &type, raw, len, file, &err) < 0) {
				cli_fail(&err);
				goto out;
			}
			if (type == OTTER_REPO_SNAPSHOT || type == OTTER_REPO_TIMESTAMP) {
				cli_failf(
					"'%s' is %s metadata, which publish and refresh sign online",
					file, otter_repo_role_type_name(type));
				goto out;
			}
			for (size_t k = 0; k < n_keys; k++)
				if (otter_repo_sign(env, keys[k], NULL, &err) < 0) {
					cli_fail(&err);
					goto out;
				}
			if (otter_repo_serialize(env, &out, &out_len, &err) < 0) {
				cli_fail(&err);
				goto out;
			}
			if (pass == 0)
				continue;
			if (stat(file, &st) < 0)
				st.st_mode = 0644;
			if (fileio_write_atomic_path(file, out, out_len, st.st_mode & 07777, &err) <
			    0) {
				cli_fail(&err);
				goto out;
			}
			describe(env, type, desc, sizeof(desc));
			cli_info("%s: %s", file, desc);
			for (size_t k = 0; k < n_keys; k++) {
				char keyid[OTTER_KEYID_HEX_LEN + 1];
				if (key_id(keys[k], keyid, &err) == 0)
					cli_info("  signed with key %s (%s)", keyid,
						 otter_key_type_name(otter_key_get_type(keys[k])));
			}
		}
	}
	rc = 0;
out:
	for (size_t i = 0; i < loaded; i++)
		otter_key_free(keys[i]);
	return rc;
}

/* The keys whose signatures count for a staged role: root needs the published root's keys
 * and the new root's; any other role its delegator's. */
typedef struct signers {
	const otter_repo_keyring *ring[2];
	const otter_repo_rolekeys *keys[2];
	size_t n;
} signers;

static int role_signers(repo *r, repo_role *role, signers *out, otter_error *err)
{
	otter_repo_metadata *md;
	int r2;

	out->n = 0;
	if (role->type != OTTER_REPO_ROOT) {
		r2 = repo_role_signers(r, role->name, &out->ring[0], &out->keys[0], NULL, err);
		if (r2 == 0)
			out->n = 1;
		return r2;
	}
	r2 = repo_role_current(r, role, &md, err);
	if (r2 < 0)
		return r2;
	if (role->pub && role->staged) {
		out->ring[out->n] = otter_repo_metadata_keys(role->pub);
		out->keys[out->n++] = otter_repo_metadata_root_role(role->pub, OTTER_REPO_ROOT);
	}
	out->ring[out->n] = otter_repo_metadata_keys(md);
	out->keys[out->n++] = otter_repo_metadata_root_role(md, OTTER_REPO_ROOT);
	return 0;
}

/* Why a signature does not count for the role (NULL: it is valid over canon). */
static const char *signature_problem(const signers *s, const char *keyid, const char *sig,
				     const uint8_t *canon, size_t canon_len)
{
	size_t hexlen = strlen(sig);
	_cleanup_free_ uint8_t *bin = NULL;
	bool listed = false;

	for (size_t i = 0; i < s->n; i++) {
		const otter_key *key;

		if (!otter_repo_rolekeys_has(s->keys[i], keyid))
			continue;
		listed = true;
		key = otter_repo_keyring_find(s->ring[i], keyid);
		if (!key)
			continue;
		if (!bin) {
			if (hexlen == 0 || hexlen % 2 || hexlen > OTTER_TUF_MAX_SIG_HEX)
				return "its \"sig\" is not a hex signature";
			bin = otter_malloc(hexlen / 2);
			if (!bin || !hex_decode(sig, hexlen, bin, hexlen / 2))
				return "its \"sig\" is not a hex signature";
		}
		if (otter_key_verify(key, canon, canon_len, bin, hexlen / 2))
			return NULL;
	}
	return listed ? "it does not verify over the staged content with that key"
		      : "that key is not one of the keys that sign this role";
}

/*
 * Merges the valid signatures of src into the staged envelope dst: an invalid one is reported
 * and left out; a valid one replaces an invalid one by the same key in dst. *rejected counts
 * the signatures of src left out.
 */
static int import_signatures(repo *r, repo_role *role, const char *file, json_t *src,
			     size_t *added, size_t *rejected, otter_error *err)
{
	json_t *dsigs = json_object_get(role->staged, "signatures");
	json_t *ssigs = json_object_get(src, "signatures");
	_cleanup_(json_decrefp) json_t *valid = json_array();
	_cleanup_free_ uint8_t *canon = NULL;
	size_t canon_len, i, replaced = 0, merged = 0;
	signers who;
	json_t *s;
	int r2;

	*added = *rejected = 0;
	if (!valid)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (!json_is_array(dsigs) || !json_is_array(ssigs))
		return otter_error_set(err, OTTER_E_FORMAT, "%s: no \"signatures\" array", file);
	r2 = role_signers(r, role, &who, err);
	if (r2 < 0)
		return otter_error_prefix(err, r2, "%s", role->name);
	r2 = otter_json_canonical(otter_repo_envelope_signed(role->staged), &canon, &canon_len,
				  err);
	if (r2 < 0)
		return r2;
	json_array_foreach(ssigs, i, s) {
		const char *keyid = json_string_value(json_object_get(s, "keyid"));
		const char *sig = json_string_value(json_object_get(s, "sig"));
		const char *why;
		char k[80];

		if (!keyid || !sig)
			return otter_error_set(err, OTTER_E_FORMAT, "%s: signature %zu is malformed",
					       file, i);
		why = signature_problem(&who, keyid, sig, canon, canon_len);
		if (why) {
			str_sanitize(keyid, k, sizeof(k));
			cli_warn("%s: signature by key %s rejected: %s (%s)", file, k, why,
				 role->name);
			(*rejected)++;
			continue;
		}
		if (json_array_append(valid, s) < 0)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	/* An invalid signature in staging never counts: a valid one by its key takes its place. */
	for (i = json_array_size(dsigs); i-- > 0;) {
		json_t *d = json_array_get(dsigs, i);
		const char *keyid = json_string_value(json_object_get(d, "keyid"));
		const char *sig = json_string_value(json_object_get(d, "sig"));
		bool incoming = false;
		size_t j;

		json_array_foreach(valid, j, s)
			if (keyid && strcmp(keyid, json_string_value(json_object_get(s, "keyid"))) == 0)
				incoming = true;
		if (!incoming ||
		    (sig && !signature_problem(&who, keyid, sig, canon, canon_len)))
			continue;
		if (json_array_remove(dsigs, i) < 0)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		replaced++;
	}
	r2 = json_object_set(src, "signatures", valid);
	if (r2 < 0)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r2 = otter_repo_merge_signatures(role->staged, src, &merged, err);
	if (r2 < 0)
		return r2;
	if (replaced)
		cli_info("%s: %zu invalid signature%s in staging replaced", file, replaced,
			 replaced == 1 ? "" : "s");
	*added = merged;
	return 0;
}

static int run_import(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(repo_freep) repo *r = NULL;
	size_t total_rejected = 0;

	if (a->n_pos == 0)
		return cli_failf("usage: otter-repo import FILE...");
	if (repo_open(&r, repo_dir_arg(a), REPO_OPEN_LOCK, &err) < 0)
		return cli_fail(&err);
	for (size_t i = 0; i < a->n_pos; i++) {
		_cleanup_free_ uint8_t *raw = NULL;
		_cleanup_(json_decrefp) json_t *env = NULL;
		repo_role *match = NULL;
		size_t len, added = 0, rejected = 0;

		if (cli_read_file(a->pos[i], OTTER_TUF_METADATA_HARD_MAX, &raw, &len, &err) < 0 ||
		    otter_repo_envelope_parse(&env, NULL, raw, len, a->pos[i], &err) < 0)
			return cli_fail(&err);
		for (size_t j = 0; j < r->n_roles && !match; j++)
			if (r->roles[j].staged && otter_repo_same_signed(r->roles[j].staged, env))
				match = &r->roles[j];
		if (!match)
			return cli_failf("'%s' matches no staged role: it was signed over content "
					 "that is not staged (any more); sign the current staged file",
					 a->pos[i]);
		if (import_signatures(r, match, a->pos[i], env, &added, &rejected, &err) < 0)
			return cli_fail(&err);
		repo_role_touch(match);
		cli_info("%s: %zu new signature%s for staged %s", a->pos[i], added,
			 added == 1 ? "" : "s", match->name);
		total_rejected += rejected;
	}
	if (repo_save_staging(r, &err) < 0)
		return cli_fail(&err);
	if (total_rejected)
		return cli_failf("%zu signature%s rejected (see above); the valid ones were "
				 "imported. Sign the current staged file again with those keys",
				 total_rejected, total_rejected == 1 ? " was" : "s were");
	return 0;
}

static const arg_spec sign_opts[] = {
	{"key", ARG_LIST},
	{NULL, ARG_FLAG},
};

const command cmd_sign = {
	.name = "sign",
	.summary = "sign a staged metadata file with a private key (offline)",
	.help = "Usage: otter-repo sign FILE... --key PRIVATE_KEY...\n"
		"\n"
		"Adds a signature by each key to each FILE, a staged metadata file (root, targets or\n"
		"a delegated role). Needs nothing but the file and the key, so it runs on an\n"
		"air-gapped machine: copy staging/ROLE.json there, sign it, bring it back with\n"
		"'otter-repo import FILE' (or copy it over the staged file). The signature covers the\n"
		"canonical form of \"signed\"; a signature by the same key replaces the earlier one.\n"
		"Encrypted keys take their passphrase from --passphrase-fd or --passphrase-env.\n"
		"Printed: what was signed (role, version, expiry) and the key ids used; compare them\n"
		"with 'otter-repo status' on the release machine.\n",
	.opts = sign_opts,
	.run = run_sign,
};

const command cmd_import = {
	.name = "import",
	.summary = "merge the signatures of signed copies into the staged roles",
	.help = "Usage: otter-repo import FILE...\n"
		"\n"
		"Merges the signatures of each FILE (a copy of a staged file signed elsewhere) into\n"
		"the staged role with the same content, one signature per key. A FILE whose content\n"
		"differs from every staged role is refused. Each signature is verified first with\n"
		"its key over the staged content: one that does not verify, or by a key that does\n"
		"not sign the role, is rejected and reported (exit status 1, the valid ones are\n"
		"still merged); a valid one replaces an invalid one by the same key in staging.\n",
	.opts = NULL,
	.run = run_import,
};
