/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* otter-repo key gen | key id */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "otter-repo.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

int key_write_pair(const char *prefix, const otter_key *key, const char *passphrase, bool force,
		   char keyid_out[OTTER_KEYID_HEX_LEN + 1], otter_error *err)
{
	_cleanup_free_ char *priv_path = str_concat(prefix, ".pem");
	_cleanup_free_ char *pub_path = str_concat(prefix, ".pub");
	_cleanup_free_ uint8_t *pub = NULL;
	uint8_t *priv = NULL;
	size_t priv_len = 0, pub_len = 0;
	struct stat st;
	int r;

	if (!priv_path || !pub_path)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = cli_check_key_location(priv_path, NULL, err);
	if (r < 0)
		return r;
	if (!force && (stat(priv_path, &st) == 0 || stat(pub_path, &st) == 0))
		return otter_error_set(err, OTTER_E_EXISTS,
				       "'%s' or '%s' exists already; pick another name (or --force "
				       "to replace it)",
				       priv_path, pub_path);
	{
		/* Folders made for keys are private to their owner. */
		_cleanup_free_ char *copy = otter_strdup(priv_path);
		if (!copy)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		r = fileio_mkdir_p(dirname(copy), 0700, err);
		if (r < 0)
			return r;
	}
	r = otter_key_public_pem(key, &pub, &pub_len, err);
	if (r < 0)
		return r;
	r = otter_key_private_pem(key, passphrase, &priv, &priv_len, err);
	if (r < 0)
		return r;
	/* The private file first: a public key without its private key is useless. */
	r = fileio_write_atomic_path(priv_path, priv, priv_len, 0600, err);
	OPENSSL_cleanse(priv, priv_len);
	free(priv);
	if (r < 0)
		return otter_error_prefix(err, r, "'%s'", priv_path);
	r = fileio_write_atomic_path(pub_path, pub, pub_len, 0644, err);
	if (r < 0)
		return otter_error_prefix(err, r, "'%s'", pub_path);
	if (keyid_out)
		return key_id(key, keyid_out, err);
	return 0;
}

static int key_gen(const args *a)
{
	otter_error err = OTTER_ERROR_INIT;
	const char *type_name = args_value(a, "type");
	const char *passphrase = NULL;
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	otter_key_type type = OTTER_KEY_ED25519;
	otter_key *key = NULL;
	int r;

	if (a->n_pos != 2)
		return cli_failf("usage: otter-repo key gen [--type TYPE] PREFIX");
	if (type_name && otter_key_type_from_name(type_name, &type) < 0)
		return cli_failf("unknown key type '%s' (ed25519, ecdsa-p256 or rsa-pss)",
				 type_name);
	r = cli_passphrase(a, &passphrase, &err);
	if (r < 0)
		return cli_fail(&err);
	r = otter_key_generate(&key, type, &err);
	if (r == 0)
		r = key_write_pair(a->pos[1], key, passphrase, args_flag(a, "force"), keyid, &err);
	otter_key_free(key);
	if (r < 0)
		return cli_fail(&err);
	cli_info("%s.pem: private key (%s%s)", a->pos[1], otter_key_type_name(type),
		 passphrase ? ", encrypted" : "");
	cli_info("%s.pub: public key", a->pos[1]);
	printf("%s\n", keyid);
	return 0;
}

static int key_id_cmd(const args *a)
{
	if (a->n_pos < 2)
		return cli_failf("usage: otter-repo key id FILE...");
	for (size_t i = 1; i < a->n_pos; i++) {
		otter_error err = OTTER_ERROR_INIT;
		char keyid[OTTER_KEYID_HEX_LEN + 1];
		otter_key *key = NULL;
		int r = cli_load_public_key(a->pos[i], &key, &err);

		if (r == 0)
			r = key_id(key, keyid, &err);
		if (r < 0) {
			otter_key_free(key);
			return cli_fail(&err);
		}
		printf("%s  %s  %s\n", keyid, otter_key_type_name(otter_key_get_type(key)),
		       a->pos[i]);
		otter_key_free(key);
	}
	return 0;
}

static int run(const args *a)
{
	if (a->n_pos >= 1 && strcmp(a->pos[0], "gen") == 0)
		return key_gen(a);
	if (a->n_pos >= 1 && strcmp(a->pos[0], "id") == 0)
		return key_id_cmd(a);
	return cli_failf("usage: otter-repo key gen|id ... (see otter-repo help key)");
}

static const arg_spec opts[] = {
	{"type", ARG_VALUE},
	{"force", ARG_FLAG},
	{NULL, ARG_FLAG},
};

const command cmd_key = {
	.name = "key",
	.summary = "generate a key pair, or show key ids",
	.help = "Usage: otter-repo key gen [--type TYPE] [--force] PREFIX\n"
		"       otter-repo key id PUBLIC_KEY...\n"
		"\n"
		"key gen writes a new key pair: PREFIX.pem, the private key (PKCS#8 PEM, mode 0600,\n"
		"encrypted with AES-256 when a passphrase is given with --passphrase-fd or\n"
		"--passphrase-env), and PREFIX.pub, the public key (SubjectPublicKeyInfo PEM). It\n"
		"prints the key id, the name root and delegations use for the key. Keys are never\n"
		"written inside a repository folder.\n"
		"\n"
		"  --type TYPE   ed25519 (default), ecdsa-p256 or rsa-pss (3072 bits)\n"
		"  --force       replace existing files\n"
		"\n"
		"key id prints the key id and type of each public key file.\n",
	.opts = opts,
	.run = run,
};
