/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-repo init: a new repository (root with the four top-level roles, empty targets). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "otter-repo.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

#define MAX_KEYS_PER_ROLE 16u

typedef struct role_setup {
	otter_key_type type;
	uint64_t n_generate; /* keys to generate with --keys-dir */
	uint64_t threshold;
	otter_key *pub[MAX_KEYS_PER_ROLE]; /* every key of the role */
	size_t n_pub;
	otter_key *priv[MAX_KEYS_PER_ROLE]; /* private keys at hand (generated or online) */
	size_t n_priv;
	bool threshold_set;
} role_setup;

static void setups_clear(role_setup *s)
{
	for (size_t t = 0; t < OTTER_REPO_ROLE_TYPES; t++) {
		for (size_t i = 0; i < s[t].n_pub; i++)
			otter_key_free(s[t].pub[i]);
		for (size_t i = 0; i < s[t].n_priv; i++)
			otter_key_free(s[t].priv[i]);
	}
}

/* Splits "ROLE=VALUE"; *type_out is the role. */
static int split_role(const char *opt, const char *s, int *type_out, const char **value,
		      otter_error *err)
{
	const char *eq = strchr(s, '=');
	char role[32];

	if (!eq || (size_t)(eq - s) >= sizeof(role))
		return otter_error_set(err, OTTER_E_INVALID, "--%s: expected ROLE=VALUE, not '%s'",
				       opt, s);
	memcpy(role, s, (size_t)(eq - s));
	role[eq - s] = '\0';
	*type_out = otter_repo_top_level_type(role);
	if (*type_out < 0)
		return otter_error_set(err, OTTER_E_INVALID,
				       "--%s: '%s' is not root, targets, snapshot or timestamp", opt,
				       role);
	*value = eq + 1;
	return 0;
}

static int add_key(role_setup *s, otter_key *pub, otter_key *priv, otter_error *err)
{
	if (s->n_pub >= MAX_KEYS_PER_ROLE)
		return otter_error_set(err, OTTER_E_LIMIT, "at most %u keys per role",
				       MAX_KEYS_PER_ROLE);
	s->pub[s->n_pub++] = pub;
	if (priv)
		s->priv[s->n_priv++] = priv;
	return 0;
}

static int parse_setup(const args *a, role_setup *s, otter_repo_config *cfg, otter_error *err)
{
	const char *const *v;
	size_t n;
	int t, r;
	const char *val;

	for (t = 0; t < OTTER_REPO_ROLE_TYPES; t++) {
		s[t].type = OTTER_KEY_ED25519;
		s[t].n_generate = 1;
		s[t].threshold = 1;
	}
	n = args_list(a, "key-type", &v);
	for (size_t i = 0; i < n; i++) {
		otter_key_type kt;
		int only = -1;

		val = v[i];
		if (strchr(v[i], '=') && (r = split_role("key-type", v[i], &only, &val, err)) < 0)
			return r;
		if (otter_key_type_from_name(val, &kt) < 0)
			return otter_error_set(err, OTTER_E_INVALID,
					       "--key-type: '%s' is not ed25519, ecdsa-p256 or rsa-pss",
					       val);
		for (t = 0; t < OTTER_REPO_ROLE_TYPES; t++)
			if (only < 0 || only == t)
				s[t].type = kt;
	}
	n = args_list(a, "keys", &v);
	for (size_t i = 0; i < n; i++) {
		if ((r = split_role("keys", v[i], &t, &val, err)) < 0)
			return r;
		if (parse_u64_range(val, 1, MAX_KEYS_PER_ROLE, &s[t].n_generate) < 0)
			return otter_error_set(err, OTTER_E_INVALID,
					       "--keys: '%s' is not a number of keys in 1..%u", val,
					       MAX_KEYS_PER_ROLE);
	}
	n = args_list(a, "threshold", &v);
	for (size_t i = 0; i < n; i++) {
		if ((r = split_role("threshold", v[i], &t, &val, err)) < 0)
			return r;
		if (parse_u64_range(val, 1, MAX_KEYS_PER_ROLE, &s[t].threshold) < 0)
			return otter_error_set(err, OTTER_E_INVALID,
					       "--threshold: '%s' is not a number in 1..%u", val,
					       MAX_KEYS_PER_ROLE);
		s[t].threshold_set = true;
	}
	n = args_list(a, "expires", &v);
	for (size_t i = 0; i < n; i++) {
		int64_t d;
		if ((r = split_role("expires", v[i], &t, &val, err)) < 0)
			return r;
		if (otter_repo_parse_duration(val, &d) < 0)
			return otter_error_set(err, OTTER_E_INVALID,
					       "--expires: '%s' is not a duration (90d, 12h, ...)",
					       val);
		cfg->expiry[t] = d;
	}
	n = args_list(a, "key", &v);
	for (size_t i = 0; i < n; i++) {
		otter_key *k = NULL;
		if ((r = split_role("key", v[i], &t, &val, err)) < 0 ||
		    (r = cli_load_public_key(val, &k, err)) < 0)
			return r;
		if ((r = add_key(&s[t], k, NULL, err)) < 0) {
			otter_key_free(k);
			return r;
		}
	}
	return 0;
}

/* --online-key ROLE=PRIVATE: the role's key, and the config entry publish signs with. */
static int add_online_keys(const args *a, const char *repo_dir, const char *passphrase,
			   role_setup *s, otter_repo_config *cfg, otter_error *err)
{
	const char *const *v;
	size_t n = args_list(a, "online-key", &v);

	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *abs = NULL;
		otter_key *priv = NULL, *pub = NULL;
		_cleanup_free_ uint8_t *pem = NULL;
		const char *val;
		int t, r;

		if ((r = split_role("online-key", v[i], &t, &val, err)) < 0)
			return r;
		if (t == OTTER_REPO_ROOT)
			return otter_error_set(err, OTTER_E_INVALID,
					       "--online-key: root keys are never online");
		r = cli_load_private_key(val, passphrase, repo_dir, &priv, err);
		if (r < 0)
			return r;
		abs = realpath(val, NULL);
		if (!abs) {
			otter_key_free(priv);
			return otter_error_set_errno(err, errno, "'%s'", val);
		}
		if ((r = otter_key_public_pem(priv, &pem, NULL, err)) < 0 ||
		    (r = otter_key_load_pem(&pub, pem, strlen((char *)pem), NULL, err)) < 0 ||
		    (r = add_key(&s[t], pub, priv, err)) < 0 ||
		    (r = otter_repo_config_add_online(
			     cfg, otter_repo_role_type_name((otter_repo_role_type)t), abs, err)) <
			    0) {
			otter_key_free(priv);
			if (r != OTTER_E_LIMIT)
				otter_key_free(pub);
			return r;
		}
	}
	return 0;
}

static int generate_keys(const char *keys_dir, const char *passphrase, role_setup *s,
			 otter_repo_config *cfg, otter_error *err)
{
	_cleanup_free_ char *abs = NULL;
	int r;

	r = fileio_mkdir_p(keys_dir, 0700, err);
	if (r < 0)
		return r;
	abs = realpath(keys_dir, NULL);
	if (!abs)
		return otter_error_set_errno(err, errno, "'%s'", keys_dir);
	/* Check every name before writing anything. */
	for (int t = 0; t < OTTER_REPO_ROLE_TYPES; t++) {
		for (uint64_t i = 1; s[t].n_pub == 0 && i <= s[t].n_generate; i++) {
			char p[PATH_MAX];
			struct stat st;

			strfmt(p, sizeof(p), "%s/%s-%" PRIu64 ".pem", abs,
			       otter_repo_role_type_name((otter_repo_role_type)t), i);
			r = cli_check_key_location(p, NULL, err);
			if (r < 0)
				return r;
			if (stat(p, &st) == 0)
				return otter_error_set(err, OTTER_E_EXISTS,
						       "'%s' exists already: use an empty keys "
						       "folder",
						       p);
		}
	}
	for (int t = 0; t < OTTER_REPO_ROLE_TYPES; t++) {
		bool online = t == OTTER_REPO_SNAPSHOT || t == OTTER_REPO_TIMESTAMP;

		if (s[t].n_pub > 0)
			continue;
		for (uint64_t i = 1; i <= s[t].n_generate; i++) {
			char prefix[PATH_MAX], path[PATH_MAX];
			otter_key *k = NULL, *pub = NULL;
			_cleanup_free_ uint8_t *pem = NULL;

			strfmt(prefix, sizeof(prefix), "%s/%s-%" PRIu64, abs,
			       otter_repo_role_type_name((otter_repo_role_type)t), i);
			r = otter_key_generate(&k, s[t].type, err);
			/* Online keys are read by cron jobs: they stay unencrypted (mode 0600). */
			if (r == 0)
				r = key_write_pair(prefix, k, online ? NULL : passphrase, false, NULL,
						   err);
			if (r == 0)
				r = otter_key_public_pem(k, &pem, NULL, err);
			if (r == 0)
				r = otter_key_load_pem(&pub, pem, strlen((char *)pem), NULL, err);
			if (r == 0)
				r = add_key(&s[t], pub, k, err);
			if (r < 0) {
				otter_key_free(k);
				otter_key_free(pub);
				return r;
			}
			cli_info("generated %s key %s.pem%s",
				 otter_repo_role_type_name((otter_repo_role_type)t), prefix,
				 !online && passphrase ? " (encrypted)" : "");
			strfmt(path, sizeof(path), "%s.pem", prefix);
			if (online &&
			    (r = otter_repo_config_add_online(
				     cfg, otter_repo_role_type_name((otter_repo_role_type)t), path,
				     err)) < 0)
				return r;
		}
	}
	return 0;
}

static int create_layout(const char *dir, const otter_repo_config *cfg, otter_error *err)
{
	static const char *const subdirs[] = {"metadata", "targets", REPO_STAGING_DIR,
					      REPO_BLOB_DIR};
	_cleanup_free_ char *conf = NULL;
	_cleanup_close_ int dfd = -1;
	int fd, r;

	r = otter_repo_config_format(cfg, &conf, err);
	if (r < 0)
		return r;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return otter_error_set_errno(err, errno, "'%s'", dir);
	for (size_t i = 0; i < ELEMENTSOF(subdirs); i++)
		if (mkdirat(dfd, subdirs[i], 0755) < 0 && errno != EEXIST)
			return otter_error_set_errno(err, errno, "creating %s/%s", dir, subdirs[i]);
	fd = openat(dfd, REPO_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return otter_error_set_errno(err, errno, "creating the lock file");
	close(fd);
	/* The configuration last: until it exists, this is not a repository. */
	return fileio_write_atomic(dfd, OTTER_REPO_CONFIG_NAME, conf, strlen(conf), 0644, err);
}

static int build_root(const role_setup *s, const otter_repo_config *cfg, int64_t now,
		      bool consistent, json_t **out, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	int r;

	r = otter_repo_signed_new(&root, OTTER_REPO_ROOT, now + cfg->expiry[OTTER_REPO_ROOT],
				  consistent, err);
	if (r < 0)
		return r;
	for (int t = 0; t < OTTER_REPO_ROLE_TYPES; t++) {
		json_t *role = otter_repo_root_role(root, (otter_repo_role_type)t);
		char what[64];

		strfmt(what, sizeof(what), "role %s",
		       otter_repo_role_type_name((otter_repo_role_type)t));
		for (size_t i = 0; i < s[t].n_pub; i++) {
			char keyid[OTTER_KEYID_HEX_LEN + 1];
			if ((r = otter_repo_keys_add(json_object_get(root, "keys"), s[t].pub[i],
						     keyid, err)) < 0 ||
			    (r = otter_repo_role_add_keyid(role, keyid, err)) < 0)
				return r;
		}
		r = otter_repo_role_set_threshold(role, s[t].threshold, what, err);
		if (r < 0)
			return r;
	}
	*out = TAKE_PTR(root);
	return 0;
}

static bool dir_is_empty_or_missing(const char *dir)
{
	struct stat st;
	char p[PATH_MAX];

	strfmt(p, sizeof(p), "%s/%s", dir, OTTER_REPO_CONFIG_NAME);
	if (stat(p, &st) == 0)
		return false;
	strfmt(p, sizeof(p), "%s/metadata/root.json", dir);
	return stat(p, &st) != 0;
}

static int run(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	const char *dir = repo_dir_arg(a), *keys_dir = args_value(a, "keys-dir");
	const char *passphrase = NULL;
	role_setup s[OTTER_REPO_ROLE_TYPES];
	_cleanup_(json_decrefp) json_t *root = NULL;
	json_t *targets = NULL;
	otter_repo_config cfg;
	repo *rp = NULL;
	bool can_publish = true;
	int64_t now = (int64_t)time(NULL);
	int r;

	memset(s, 0, sizeof(s));
	otter_repo_config_init(&cfg);
	if (a->n_pos > 0) {
		r = cli_failf("unexpected argument '%s'", a->pos[0]);
		goto out;
	}
	if (!dir_is_empty_or_missing(dir)) {
		r = cli_failf("'%s' holds a repository already", dir);
		goto out;
	}
	if ((r = cli_passphrase(a, &passphrase, &err)) < 0 ||
	    (r = parse_setup(a, s, &cfg, &err)) < 0 ||
	    (r = fileio_mkdir_p(dir, 0755, &err)) < 0 ||
	    (r = add_online_keys(a, dir, passphrase, s, &cfg, &err)) < 0) {
		r = cli_fail(&err);
		goto out;
	}
	for (int t = 0; t < OTTER_REPO_ROLE_TYPES; t++) {
		uint64_t have = s[t].n_pub > 0 ? s[t].n_pub : keys_dir ? s[t].n_generate : 0;
		const char *name = otter_repo_role_type_name((otter_repo_role_type)t);

		if (have == 0) {
			r = cli_failf("role %s has no keys: give --keys-dir KEYS to generate them, or "
				      "--key %s=PUBLIC_KEY",
				      name, name);
			goto out;
		}
		if (s[t].threshold > have) {
			r = cli_failf("role %s: a threshold of %" PRIu64 " with %" PRIu64
				      " key%s could never be met",
				      name, s[t].threshold, have, have == 1 ? "" : "s");
			goto out;
		}
	}
	if (keys_dir) {
		/* Keys folders inside the repository are refused by key_write_pair. */
		char probe[PATH_MAX];
		strfmt(probe, sizeof(probe), "%s/x", keys_dir);
		if ((r = cli_check_key_location(probe, dir, &err)) < 0 ||
		    (r = fileio_mkdir_p(keys_dir, 0700, &err)) < 0 ||
		    (r = generate_keys(keys_dir, passphrase, s, &cfg, &err)) < 0) {
			r = cli_fail(&err);
			goto out;
		}
	}
	if ((r = build_root(s, &cfg, now, !args_flag(a, "no-consistent-snapshot"), &root, &err)) <
		    0 ||
	    (r = otter_repo_signed_new(&targets, OTTER_REPO_TARGETS,
				       now + cfg.expiry[OTTER_REPO_TARGETS], true, &err)) < 0 ||
	    (r = create_layout(dir, &cfg, &err)) < 0 ||
	    (r = repo_open(&rp, dir, REPO_OPEN_LOCK, &err)) < 0 ||
	    (r = repo_stage_new(rp, "root", root, &err)) < 0 ||
	    (r = repo_stage_new(rp, "targets", targets, &err)) < 0 ||
	    (r = repo_save_staging(rp, &err)) < 0) {
		json_decref(targets);
		r = cli_fail(&err);
		goto out;
	}
	json_decref(targets);
	cli_info("created repository %s (root, targets, snapshot, timestamp)", rp->dir);

	/* Publish at once when every key needed is at hand (--keys-dir, --online-key). */
	for (int t = 0; t < OTTER_REPO_ROLE_TYPES; t++)
		if (s[t].n_priv < s[t].threshold)
			can_publish = false;
	if (can_publish) {
		otter_key *all[OTTER_REPO_ROLE_TYPES * MAX_KEYS_PER_ROLE];
		publish_opts o = {.keys = all, .new_snapshot = true};

		for (int t = 0; t < OTTER_REPO_ROLE_TYPES; t++)
			for (size_t i = 0; i < s[t].n_priv; i++)
				all[o.n_keys++] = s[t].priv[i];
		r = repo_publish(rp, &o, &err);
		if (r < 0) {
			r = cli_fail(&err);
			goto out;
		}
		cli_info("devices trust %s/metadata/1.root.json: ship it in the device image",
			 rp->dir);
	} else {
		cli_info("staged root version 1 and targets version 1. Sign them with a threshold "
			 "of their keys\n(otter-repo sign %s/staging/root.json --key KEY), then "
			 "run 'otter-repo publish'.",
			 rp->dir);
	}
	r = 0;
out:
	repo_free(rp);
	setups_clear(s);
	otter_repo_config_clear(&cfg);
	return r;
}

static const arg_spec opts[] = {
	{"keys-dir", ARG_VALUE},
	{"key-type", ARG_LIST},
	{"keys", ARG_LIST},
	{"threshold", ARG_LIST},
	{"expires", ARG_LIST},
	{"key", ARG_LIST},
	{"online-key", ARG_LIST},
	{"no-consistent-snapshot", ARG_FLAG},
	{NULL, ARG_FLAG},
};

const command cmd_init = {
	.name = "init",
	.summary = "create a repository (and with --keys-dir, every key)",
	.help = "Usage: otter-repo init [--repo DIR] [--keys-dir KEYS] [OPTIONS]\n"
		"\n"
		"Creates a repository in DIR: otter-repo.conf, metadata/, targets/ and staging/,\n"
		"with root version 1 listing the four top-level roles and an empty targets role.\n"
		"\n"
		"With --keys-dir KEYS every key is generated into KEYS (ROLE-N.pem private, mode\n"
		"0600, ROLE-N.pub public), the snapshot and timestamp keys are configured as online\n"
		"keys, and version 1 of everything is signed and published at once. Root and\n"
		"targets keys are encrypted when a passphrase is given; online keys are not (cron\n"
		"reads them). Move the root and targets private keys offline afterwards.\n"
		"\n"
		"Without --keys-dir, give the public keys of every role (--key) and the private\n"
		"online keys (--online-key); root and targets version 1 are then staged for\n"
		"offline signing (otter-repo sign), and published by 'otter-repo publish'.\n"
		"\n"
		"  --keys-dir KEYS              generate every key into KEYS (outside DIR)\n"
		"  --key-type [ROLE=]TYPE       ed25519 (default), ecdsa-p256 or rsa-pss\n"
		"  --keys ROLE=N                number of keys to generate (default 1)\n"
		"  --threshold ROLE=N           signatures required (default 1)\n"
		"  --expires ROLE=DURATION      expiry period (defaults: root 365d, targets 90d,\n"
		"                               snapshot 7d, timestamp 1d), kept in otter-repo.conf\n"
		"  --key ROLE=PUBLIC_KEY        an existing public key of ROLE (repeatable)\n"
		"  --online-key ROLE=PRIVATE    an online private key of snapshot, timestamp or\n"
		"                               targets, recorded in otter-repo.conf [online]\n"
		"  --no-consistent-snapshot     publish unversioned file names (not recommended:\n"
		"                               clients can then see a half-published repository)\n"
		"\n"
		"ROLE is root, targets, snapshot or timestamp; options taking ROLE=VALUE repeat.\n"
		"Example: otter-repo init --repo repo --keys-dir keys --keys root=3 \\\n"
		"             --threshold root=2 --key-type root=ecdsa-p256\n",
	.opts = opts,
	.run = run,
};
