/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Repository authoring through its public header <otter/repo.h> (src/lib/repo/). */
#include "test-common.h"

#include <fcntl.h>
#include <unistd.h>

#include <otter/crypto.h>
#include <otter/json.h>
#include <otter/repo.h>

#include "util/cleanup.h"
#include "util/strutil.h"

#define NOW 1800000000ll

static otter_key *gen(otter_key_type t)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *k = NULL;

	assert_ok(otter_key_generate(&k, t, &err));
	return k;
}

/* Serialises env and parses it back with the client's parser. */
static otter_repo_metadata *reparse(const json_t *env, otter_repo_role_type type)
{
	otter_error err = OTTER_ERROR_INIT;
	uint8_t *bytes = NULL;
	size_t len;
	otter_repo_metadata *md = NULL;

	assert_ok(otter_repo_serialize(env, &bytes, &len, &err));
	if (otter_repo_metadata_parse(&md, type, bytes, len, "test", &err) < 0)
		print_error("parse: %s\n", err.msg);
	assert_non_null(md);
	free(bytes);
	return md;
}

static void test_repo_names(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	char *s = NULL;

	assert_true(otter_repo_role_name_ok("team-a.b_c"));
	assert_false(otter_repo_role_name_ok(""));
	assert_false(otter_repo_role_name_ok("targets"));
	assert_false(otter_repo_role_name_ok("root"));
	assert_false(otter_repo_role_name_ok(".hidden"));
	assert_false(otter_repo_role_name_ok("a/b"));
	assert_false(otter_repo_role_name_ok("a b"));
	assert_int_equal(otter_repo_top_level_type("snapshot"), OTTER_REPO_SNAPSHOT);
	assert_int_equal(otter_repo_top_level_type("team"), -1);

	assert_true(otter_repo_target_path_ok("a/b/c-1.2_x~y+z=w,v@u.img"));
	assert_false(otter_repo_target_path_ok("../etc/passwd"));
	assert_false(otter_repo_target_path_ok("a/../b"));
	assert_false(otter_repo_target_path_ok("/abs"));
	assert_false(otter_repo_target_path_ok("a//b"));
	assert_false(otter_repo_target_path_ok("a/"));
	assert_false(otter_repo_target_path_ok("./a"));
	assert_false(otter_repo_target_path_ok(""));
	assert_false(otter_repo_target_path_ok("a\nb"));
	assert_false(otter_repo_target_path_ok("a b"));
	assert_false(otter_repo_target_path_ok("a?b"));
	assert_false(otter_repo_target_path_ok("caf\xc3\xa9"));

	assert_ok(otter_repo_metadata_filename("root", 7, false, &s, &err));
	assert_string_equal(s, "7.root.json");
	free(s);
	assert_ok(otter_repo_metadata_filename("timestamp", 7, true, &s, &err));
	assert_string_equal(s, "timestamp.json");
	free(s);
	assert_ok(otter_repo_metadata_filename("targets", 3, true, &s, &err));
	assert_string_equal(s, "3.targets.json");
	free(s);
	assert_ok(otter_repo_metadata_filename("snapshot", 3, false, &s, &err));
	assert_string_equal(s, "snapshot.json");
	free(s);
	/* Escaping as clients request it (tuf.md §6.1). */
	assert_ok(otter_repo_metadata_filename("a/b", 3, true, &s, &err));
	assert_string_equal(s, "3.a%2Fb.json");
	free(s);
}

static void test_repo_target_filenames(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *h = json_pack("{s:s, s:s}", "sha512", "bb", "sha256", "aa");
	char **v = NULL;

	assert_ok(otter_repo_target_filenames("dir/sub/f.img", h, true, &v, &err));
	assert_string_equal(v[0], "dir/sub/aa.f.img");
	assert_string_equal(v[1], "dir/sub/bb.f.img");
	assert_null(v[2]);
	otter_repo_strv_free(v);
	assert_ok(otter_repo_target_filenames("f", h, true, &v, &err));
	assert_string_equal(v[0], "aa.f");
	otter_repo_strv_free(v);
	assert_ok(otter_repo_target_filenames("dir/f", h, false, &v, &err));
	assert_string_equal(v[0], "dir/f");
	assert_null(v[1]);
	otter_repo_strv_free(v);
	json_object_set_new(h, "sha256", json_string("../x"));
	assert_err(otter_repo_target_filenames("f", h, true, &v, &err), OTTER_E_FORMAT, &err,
		   "hex");
	json_decref(h);
}

static void test_repo_succinct_names(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *k = gen(OTTER_KEY_ED25519);
	json_t *t = NULL, *e = NULL;
	otter_repo_metadata *md;
	char **v = NULL, *bin = NULL;
	size_t n = 0;

	assert_ok(otter_repo_succinct_bin_names("bins", 8, &v, &err));
	while (v[n])
		n++;
	assert_int_equal(n, 256);
	assert_string_equal(v[0], "bins-00");
	assert_string_equal(v[255], "bins-ff");
	/* The bin a client computes (tuf.md §3.5 vector: foo.tgz -> bins-34) is among them. */
	assert_ok(otter_repo_signed_new(&t, OTTER_REPO_TARGETS, NOW, true, &err));
	assert_ok(otter_repo_delegate_succinct(t, "bins", 8, &k, 1, 1, &err));
	assert_ok(otter_repo_envelope_new(&e, t, &err));
	md = reparse(e, OTTER_REPO_TARGETS);
	assert_ok(otter_repo_metadata_bin_for(md, "foo.tgz", &bin, &err));
	assert_string_equal(bin, "bins-34");
	assert_true(otter_repo_metadata_is_bin(md, "bins-ff"));
	assert_false(otter_repo_metadata_is_bin(md, "bins-100"));
	otter_repo_metadata_free(md);
	json_decref(e);
	json_decref(t);
	otter_key_free(k);
	assert_string_equal(v[0x34], bin);
	free(bin);
	otter_repo_strv_free(v);
	assert_ok(otter_repo_succinct_bin_names("b", 10, &v, &err));
	assert_string_equal(v[1023], "b-3ff");
	assert_string_equal(v[0], "b-000");
	otter_repo_strv_free(v);
	assert_err(otter_repo_succinct_bin_names("b", 0, &v, &err), OTTER_E_INVALID, &err, "1..16");
	otter_error_clear(&err);
	assert_err(otter_repo_succinct_bin_names("b", 17, &v, &err), OTTER_E_INVALID, &err, NULL);
}

/* A root listing one fresh key per role, each role signing its own skeleton. */
static void test_repo_roles_sign_and_verify(void **state)
{
	static const otter_key_type types[] = {OTTER_KEY_ED25519, OTTER_KEY_ECDSA_P256,
					       OTTER_KEY_RSA_PSS, OTTER_KEY_ED25519};
	otter_error err = OTTER_ERROR_INIT;
	otter_key *keys[4];
	json_t *root = NULL, *env = NULL;
	otter_repo_metadata *rmd;

	assert_ok(otter_repo_signed_new(&root, OTTER_REPO_ROOT, NOW, true, &err));
	assert_true(json_is_true(json_object_get(root, "consistent_snapshot")));
	for (int t = 0; t < 4; t++) {
		char keyid[65];
		keys[t] = gen(types[t]);
		assert_ok(otter_repo_keys_add(json_object_get(root, "keys"), keys[t], keyid, &err));
		/* Adding the same key twice is fine. */
		assert_ok(otter_repo_keys_add(json_object_get(root, "keys"), keys[t], NULL, &err));
		assert_ok(otter_repo_role_add_keyid(
			otter_repo_root_role(root, (otter_repo_role_type)t), keyid, &err));
		assert_ok(otter_repo_role_add_keyid(
			otter_repo_root_role(root, (otter_repo_role_type)t), keyid, &err));
		assert_int_equal(
			json_array_size(json_object_get(
				otter_repo_root_role(root, (otter_repo_role_type)t), "keyids")),
			1);
	}
	assert_ok(otter_repo_envelope_new(&env, root, &err));
	assert_ok(otter_repo_sign(env, keys[OTTER_REPO_ROOT], NULL, &err));
	rmd = reparse(env, OTTER_REPO_ROOT);
	assert_ok(otter_repo_verify_threshold(rmd, otter_repo_metadata_keys(rmd),
					      otter_repo_metadata_root_role(rmd, OTTER_REPO_ROOT),
					      "root", &err));
	json_decref(env);

	for (int t = 1; t < 4; t++) {
		json_t *s = NULL, *e = NULL;
		otter_repo_metadata *md;
		uint64_t v;
		int64_t exp;

		assert_ok(otter_repo_signed_new(&s, (otter_repo_role_type)t, NOW, true, &err));
		assert_ok(otter_repo_signed_set(s, 5, NOW + 60, &err));
		assert_ok(otter_repo_signed_get(s, &v, &exp, &err));
		assert_int_equal(v, 5);
		assert_int_equal(exp, NOW + 60);
		if (t == OTTER_REPO_TIMESTAMP) {
			json_t *mf = NULL;
			assert_ok(otter_repo_metafile(&mf, 1, (const uint8_t *)"x", 1, &err));
			json_object_set_new(json_object_get(s, "meta"), "snapshot.json", mf);
		}
		assert_ok(otter_repo_envelope_new(&e, s, &err));
		/* Unsigned, nothing verifies; signed by the wrong key, neither. */
		md = reparse(e, (otter_repo_role_type)t);
		assert_err(otter_repo_verify_threshold(md, otter_repo_metadata_keys(rmd),
						       otter_repo_metadata_root_role(rmd, t), "x",
						       &err),
			   OTTER_E_SIGNATURE, &err, "0 valid");
		otter_error_clear(&err);
		otter_repo_metadata_free(md);
		assert_ok(otter_repo_sign(e, keys[(t + 1) % 4 == 0 ? 1 : (t + 1) % 4], NULL, &err));
		md = reparse(e, (otter_repo_role_type)t);
		assert_int_equal(otter_repo_verify_threshold(md, otter_repo_metadata_keys(rmd),
							     otter_repo_metadata_root_role(rmd, t),
							     "x", &err),
				 OTTER_E_SIGNATURE);
		otter_error_clear(&err);
		otter_repo_metadata_free(md);
		assert_ok(otter_repo_sign(e, keys[t], NULL, &err));
		md = reparse(e, (otter_repo_role_type)t);
		assert_ok(otter_repo_verify_threshold(md, otter_repo_metadata_keys(rmd),
						      otter_repo_metadata_root_role(rmd, t), "x",
						      &err));
		assert_int_equal(otter_repo_metadata_version(md), 5);
		otter_repo_metadata_free(md);
		json_decref(s);
		json_decref(e);
	}
	otter_repo_metadata_free(rmd);
	json_decref(root);
	for (int t = 0; t < 4; t++)
		otter_key_free(keys[t]);
}

static void test_repo_signatures_merge(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *a = gen(OTTER_KEY_ED25519), *b = gen(OTTER_KEY_ECDSA_P256);
	json_t *s = NULL, *e1 = NULL, *e2 = NULL, *e3 = NULL;
	char ida[65], idb[65];
	size_t added = 99;
	otter_key *pub = NULL;
	uint8_t *pem = NULL;

	assert_ok(otter_repo_signed_new(&s, OTTER_REPO_TARGETS, NOW, true, &err));
	assert_ok(otter_repo_envelope_new(&e1, s, &err));
	assert_ok(otter_repo_sign(e1, a, ida, &err));
	/* Signing again with the same key replaces the signature: one per key id. */
	assert_ok(otter_repo_sign(e1, a, NULL, &err));
	assert_int_equal(json_array_size(json_object_get(e1, "signatures")), 1);
	e2 = json_deep_copy(e1);
	otter_repo_clear_signatures(e2);
	assert_ok(otter_repo_sign(e2, b, idb, &err));
	assert_ok(otter_repo_sign(e2, a, NULL, &err));
	assert_true(otter_repo_same_signed(e1, e2));
	assert_ok(otter_repo_merge_signatures(e1, e2, &added, &err));
	assert_int_equal(added, 1);
	assert_int_equal(json_array_size(json_object_get(e1, "signatures")), 2);
	assert_ok(otter_repo_merge_signatures(e1, e2, &added, &err));
	assert_int_equal(added, 0);
	/* Signatures over other content are refused. */
	e3 = json_deep_copy(e2);
	json_object_set_new(json_object_get(e3, "signed"), "version", json_integer(2));
	assert_false(otter_repo_same_signed(e1, e3));
	assert_err(otter_repo_merge_signatures(e1, e3, &added, &err), OTTER_E_INVALID, &err,
		   "differ");
	otter_error_clear(&err);
	assert_int_equal(otter_repo_clear_signatures(e1), 2);
	assert_int_equal(json_array_size(json_object_get(e1, "signatures")), 0);
	/* A public key cannot sign. */
	assert_ok(otter_key_public_pem(a, &pem, NULL, &err));
	assert_ok(otter_key_load_pem(&pub, pem, strlen((char *)pem), NULL, &err));
	assert_err(otter_repo_sign(e1, pub, NULL, &err), OTTER_E_INVALID, &err, "private");
	assert_string_not_equal(ida, idb);
	free(pem);
	otter_key_free(pub);
	json_decref(s);
	json_decref(e1);
	json_decref(e2);
	json_decref(e3);
	otter_key_free(a);
	otter_key_free(b);
}

static void test_repo_envelope_parse(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *s = NULL, *e = NULL, *back = NULL;
	uint8_t *bytes = NULL;
	size_t len;
	otter_repo_role_type t;
	static const char bad[] = "{\"signed\":{\"_type\":\"mirrors\"},\"signatures\":[]}";

	assert_ok(otter_repo_signed_new(&s, OTTER_REPO_TARGETS, NOW, true, &err));
	json_object_set_new(s, "x-custom", json_pack("{s:i}", "n", 1));
	assert_ok(otter_repo_envelope_new(&e, s, &err));
	assert_ok(otter_repo_serialize(e, &bytes, &len, &err));
	/* Pretty-printed, newline at the end, no tabs. */
	assert_int_equal(bytes[len - 1], '\n');
	assert_non_null(strstr((char *)bytes, "\n \"signed\""));
	assert_ok(otter_repo_envelope_parse(&back, &t, bytes, len, "f", &err));
	assert_int_equal(t, OTTER_REPO_TARGETS);
	assert_true(json_equal(back, e));
	json_decref(back);
	assert_err(
		otter_repo_envelope_parse(&back, &t, (const uint8_t *)bad, strlen(bad), "f", &err),
		OTTER_E_FORMAT, &err, "f: not TUF metadata");
	otter_error_clear(&err);
	assert_err(otter_repo_envelope_parse(&back, &t, (const uint8_t *)"[]", 2, "f", &err),
		   OTTER_E_INVALID, &err, NULL);
	free(bytes);
	json_decref(s);
	json_decref(e);
}

static void test_repo_serialize_ascii_only(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *s = NULL, *e = NULL;
	uint8_t *bytes = NULL;
	size_t len;

	assert_ok(otter_repo_signed_new(&s, OTTER_REPO_TARGETS, NOW, true, &err));
	assert_ok(otter_repo_envelope_new(&e, s, &err));
	json_object_set_new(s, "note", json_string("caf\xc3\xa9"));
	assert_err(otter_repo_serialize(e, &bytes, &len, &err), OTTER_E_INVALID, &err, "ASCII");
	otter_error_clear(&err);
	json_object_set_new(s, "note", json_string("a\nb"));
	assert_err(otter_repo_serialize(e, &bytes, &len, &err), OTTER_E_INVALID, &err, NULL);
	otter_error_clear(&err);
	/* PEM keys carry newlines, as every TUF tool writes them. */
	json_object_set_new(s, "note", json_string("-----BEGIN PUBLIC KEY-----\nAAAA\n"));
	assert_ok(otter_repo_serialize(e, &bytes, &len, &err));
	free(bytes);
	json_object_set_new(s, "note", json_real(1.5));
	assert_err(otter_repo_serialize(e, &bytes, &len, &err), OTTER_E_INVALID, &err, "floating");
	otter_error_clear(&err);
	json_object_del(s, "note");
	json_object_set_new(s, "k\x01", json_true());
	assert_err(otter_repo_serialize(e, &bytes, &len, &err), OTTER_E_INVALID, &err, "name");
	json_decref(s);
	json_decref(e);
}

static void test_repo_metafile_and_digest(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	char path[] = "/tmp/otter-test-digest-XXXXXX", copy[] = "/tmp/otter-test-copy-XXXXXX";
	int fd = mkstemp(path), out = mkstemp(copy);
	otter_repo_digest d;
	json_t *mf = NULL, *tf = NULL, *custom = json_pack("{s:s, s:{s:i}}", "v", "1", "x", "y", 2);
	char buf[8] = {0};

	assert_ok(otter_repo_metafile(&mf, 3, (const uint8_t *)"abc", 3, &err));
	assert_int_equal(json_integer_value(json_object_get(mf, "version")), 3);
	assert_int_equal(json_integer_value(json_object_get(mf, "length")), 3);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(mf, "hashes"), "sha256")),
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	json_decref(mf);

	assert_true(fd >= 0 && out >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	lseek(fd, 0, SEEK_SET);
	assert_ok(otter_repo_digest_fd(fd, out, 3, &d, "abc", &err));
	assert_int_equal(d.length, 3);
	assert_string_equal(d.sha256,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_memory_equal(d.sha512, "ddaf35a193617aba", 16);
	assert_int_equal(pread(out, buf, sizeof(buf), 0), 3);
	assert_string_equal(buf, "abc");
	/* Bigger than the cap. */
	lseek(fd, 0, SEEK_SET);
	assert_err(otter_repo_digest_fd(fd, -1, 2, &d, "abc", &err), OTTER_E_TOO_LARGE, &err,
		   "abc");
	otter_error_clear(&err);

	assert_ok(otter_repo_targetfile(&tf, &d, custom, &err));
	assert_int_equal(json_integer_value(json_object_get(tf, "length")), 3);
	assert_true(json_equal(json_object_get(tf, "custom"), custom));
	assert_int_equal(json_object_size(json_object_get(tf, "hashes")), 2);
	json_decref(tf);
	json_decref(custom);
	custom = json_string("no");
	assert_err(otter_repo_targetfile(&tf, &d, custom, &err), OTTER_E_INVALID, &err, "object");
	json_decref(custom);
	close(fd);
	close(out);
	unlink(path);
	unlink(copy);
}

static void test_repo_role_edits(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *a = gen(OTTER_KEY_ED25519), *b = gen(OTTER_KEY_ED25519);
	json_t *root = NULL, *role;
	char ida[65], idb[65];

	assert_ok(otter_repo_signed_new(&root, OTTER_REPO_ROOT, NOW, false, &err));
	assert_true(json_is_false(json_object_get(root, "consistent_snapshot")));
	role = otter_repo_root_role(root, OTTER_REPO_TARGETS);
	assert_ok(otter_repo_keys_add(json_object_get(root, "keys"), a, ida, &err));
	assert_ok(otter_repo_keys_add(json_object_get(root, "keys"), b, idb, &err));
	assert_ok(otter_repo_role_add_keyid(role, ida, &err));
	assert_ok(otter_repo_role_add_keyid(role, idb, &err));
	assert_ok(otter_repo_role_set_threshold(role, 2, "targets", &err));
	assert_err(otter_repo_role_set_threshold(role, 3, "targets", &err), OTTER_E_INVALID, &err,
		   "could never be met");
	otter_error_clear(&err);
	assert_true(otter_repo_role_has_keyid(role, ida));
	assert_ok(otter_repo_role_remove_keyid(role, ida, "targets", &err));
	assert_false(otter_repo_role_has_keyid(role, ida));
	assert_err(otter_repo_role_remove_keyid(role, ida, "targets", &err), OTTER_E_NOT_FOUND,
		   &err, "not one of its keys");
	otter_error_clear(&err);
	/* The threshold of 2 cannot be kept with one key left. */
	assert_err(otter_repo_role_set_threshold(role, 0, "targets", &err), OTTER_E_INVALID, &err,
		   NULL);
	otter_error_clear(&err);
	assert_ok(otter_repo_role_set_threshold(role, 1, "targets", &err));
	assert_ok(otter_repo_role_set_threshold(role, 0, "targets", &err));
	assert_int_equal(json_integer_value(json_object_get(role, "threshold")), 1);
	assert_int_equal(json_object_size(json_object_get(root, "keys")), 2);
	otter_repo_root_prune_keys(root);
	assert_int_equal(json_object_size(json_object_get(root, "keys")), 1);
	assert_non_null(json_object_get(json_object_get(root, "keys"), idb));
	json_decref(root);
	otter_key_free(a);
	otter_key_free(b);
}

static void test_repo_delegations(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *a = gen(OTTER_KEY_ED25519), *b = gen(OTTER_KEY_ECDSA_P256);
	otter_key *ka[] = {a}, *kab[] = {a, b};
	const char *paths[] = {"team/*", "extra/?.bin"}, *bad_paths[] = {"/abs"};
	const char *prefixes[] = {"8f", "00"}, *bad_prefixes[] = {"XY"};
	json_t *t = NULL, *before, *e = NULL;
	otter_repo_metadata *md;
	const otter_repo_delegated_role *d0;
	char keyid[OTTER_KEYID_HEX_LEN + 1], *bin = NULL;
	const char *prefix = NULL;
	unsigned bits = 0;
	otter_repo_delegation d = {.name = "team",
				   .paths = paths,
				   .n_paths = 2,
				   .keys = kab,
				   .n_keys = 2,
				   .threshold = 2,
				   .terminating = true};

	assert_ok(otter_repo_signed_new(&t, OTTER_REPO_TARGETS, NOW, true, &err));
	assert_ok(otter_repo_delegate(t, &d, &err));
	before = json_deep_copy(t);
	/* Every refusal leaves the object as it was. */
	assert_err(otter_repo_delegate(t, &d, &err), OTTER_E_EXISTS, &err, "already");
	otter_error_clear(&err);
	d.name = "targets";
	assert_err(otter_repo_delegate(t, &d, &err), OTTER_E_INVALID, &err, "role name");
	otter_error_clear(&err);
	d.name = "other";
	d.threshold = 3;
	assert_err(otter_repo_delegate(t, &d, &err), OTTER_E_INVALID, &err, "never be met");
	otter_error_clear(&err);
	d.threshold = 1;
	d.paths = bad_paths;
	d.n_paths = 1;
	assert_err(otter_repo_delegate(t, &d, &err), OTTER_E_INVALID, &err, "pattern");
	otter_error_clear(&err);
	d.prefixes = prefixes;
	d.n_prefixes = 2;
	assert_err(otter_repo_delegate(t, &d, &err), OTTER_E_INVALID, &err, "either");
	otter_error_clear(&err);
	d.n_paths = 0;
	d.paths = NULL;
	d.prefixes = bad_prefixes;
	d.n_prefixes = 1;
	assert_err(otter_repo_delegate(t, &d, &err), OTTER_E_INVALID, &err, "hex");
	otter_error_clear(&err);
	d.n_keys = 0;
	d.prefixes = prefixes;
	d.n_prefixes = 2;
	assert_err(otter_repo_delegate(t, &d, &err), OTTER_E_INVALID, &err, "key");
	otter_error_clear(&err);
	assert_err(otter_repo_delegate_succinct(t, "bins", 4, ka, 1, 1, &err), OTTER_E_STATE, &err,
		   NULL);
	otter_error_clear(&err);
	assert_true(json_equal(before, t));

	d.keys = ka;
	d.n_keys = 1;
	d.terminating = false;
	assert_ok(otter_repo_delegate(t, &d, &err));
	assert_non_null(otter_repo_delegation_find(t, "other"));
	assert_ok(otter_repo_envelope_new(&e, t, &err));
	md = reparse(e, OTTER_REPO_TARGETS);
	assert_int_equal(otter_repo_metadata_n_delegations(md), 2);
	d0 = otter_repo_metadata_delegation(md, 0);
	assert_null(otter_repo_metadata_delegation(md, 2));
	assert_string_equal(otter_repo_delegated_role_name(d0), "team");
	assert_true(json_is_true(
		json_object_get(otter_repo_delegation_find(otter_repo_metadata_signed(md), "team"),
				"terminating")));
	assert_int_equal(otter_repo_rolekeys_threshold(otter_repo_delegated_role_keys(d0)), 2);
	assert_int_equal(otter_repo_rolekeys_count(otter_repo_delegated_role_keys(d0)), 2);
	assert_true(otter_repo_delegated_role_matches(d0, "team/a.img"));
	assert_false(otter_repo_delegated_role_matches(d0, "team/x/a.img"));
	assert_true(otter_repo_delegated_role_matches(d0, "extra/1.bin"));
	assert_int_equal(
		json_array_size(json_object_get(
			otter_repo_delegation_find(otter_repo_metadata_signed(md), "other"),
			"path_hash_prefixes")),
		2);
	/* Keys of the delegations, as a client looks them up. */
	assert_ok(otter_repo_keyid(a, keyid, NULL, &err));
	assert_non_null(otter_repo_keyring_find(otter_repo_metadata_keys(md), keyid));
	assert_true(otter_repo_rolekeys_has(otter_repo_delegated_role_keys(d0), keyid));
	assert_null(otter_repo_keyring_find(otter_repo_metadata_keys(md), "00"));
	assert_false(otter_repo_metadata_succinct(md, NULL, NULL));
	assert_null(otter_repo_metadata_succinct_keys(md));
	assert_err(otter_repo_metadata_bin_for(md, "a", &bin, &err), OTTER_E_STATE, &err,
		   "succinct");
	otter_error_clear(&err);
	otter_repo_metadata_free(md);
	json_decref(e);

	/* Undelegating team drops b, which only team used. */
	assert_int_equal(
		json_object_size(json_object_get(json_object_get(t, "delegations"), "keys")), 2);
	assert_ok(otter_repo_undelegate(t, "team", &err));
	assert_null(otter_repo_delegation_find(t, "team"));
	assert_int_equal(
		json_object_size(json_object_get(json_object_get(t, "delegations"), "keys")), 1);
	assert_err(otter_repo_undelegate(t, "team", &err), OTTER_E_NOT_FOUND, &err, "team");
	otter_error_clear(&err);
	assert_ok(otter_repo_undelegate(t, "other", &err));
	assert_null(json_object_get(t, "delegations"));

	/* Succinct bins, then removed by their prefix. */
	assert_ok(otter_repo_delegate_succinct(t, "bins", 4, kab, 2, 1, &err));
	assert_ok(otter_repo_envelope_new(&e, t, &err));
	md = reparse(e, OTTER_REPO_TARGETS);
	assert_true(otter_repo_metadata_succinct(md, &bits, &prefix));
	assert_int_equal(bits, 4);
	assert_string_equal(prefix, "bins");
	assert_int_equal(otter_repo_metadata_n_delegations(md), 0);
	assert_int_equal(otter_repo_rolekeys_threshold(otter_repo_metadata_succinct_keys(md)), 1);
	assert_true(otter_repo_metadata_is_bin(md, "bins-0"));
	assert_true(otter_repo_metadata_is_bin(md, "bins-f"));
	assert_false(otter_repo_metadata_is_bin(md, "bins-00"));
	assert_false(otter_repo_metadata_is_bin(md, "bins-F"));
	assert_false(otter_repo_metadata_is_bin(md, "bin-0"));
	assert_false(otter_repo_metadata_is_bin(md, "bins"));
	assert_ok(otter_repo_metadata_bin_for(md, "foo.tgz", &bin, &err));
	assert_true(otter_repo_metadata_is_bin(md, bin));
	free(bin);
	bin = NULL;
	otter_repo_metadata_free(md);
	json_decref(e);
	d.name = "late";
	assert_err(otter_repo_delegate(t, &d, &err), OTTER_E_STATE, &err, "succinct");
	otter_error_clear(&err);
	assert_err(otter_repo_delegate_succinct(t, "bins", 40, ka, 1, 1, &err), OTTER_E_INVALID,
		   &err, NULL);
	otter_error_clear(&err);
	assert_ok(otter_repo_undelegate(t, "bins", &err));
	assert_null(json_object_get(t, "delegations"));
	json_decref(before);
	json_decref(t);
	otter_key_free(a);
	otter_key_free(b);
}

static void test_repo_signature_status(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *k[3] = {gen(OTTER_KEY_ED25519), gen(OTTER_KEY_ED25519), gen(OTTER_KEY_ED25519)};
	json_t *root = NULL, *env = NULL;
	char ids[3][65];
	char **yes = NULL, **no = NULL;
	otter_repo_metadata *md;

	assert_ok(otter_repo_signed_new(&root, OTTER_REPO_ROOT, NOW, true, &err));
	for (int i = 0; i < 3; i++) {
		assert_ok(otter_repo_keys_add(json_object_get(root, "keys"), k[i], ids[i], &err));
		assert_ok(otter_repo_role_add_keyid(otter_repo_root_role(root, OTTER_REPO_ROOT),
						    ids[i], &err));
	}
	assert_ok(otter_repo_role_set_threshold(otter_repo_root_role(root, OTTER_REPO_ROOT), 2,
						"root", &err));
	assert_ok(otter_repo_envelope_new(&env, root, &err));
	assert_ok(otter_repo_sign(env, k[1], NULL, &err));
	md = reparse(env, OTTER_REPO_ROOT);
	assert_int_equal(
		otter_repo_signature_status(md, otter_repo_metadata_keys(md),
					    otter_repo_metadata_root_role(md, OTTER_REPO_ROOT),
					    &yes, &no, &err),
		1);
	assert_string_equal(yes[0], ids[1]);
	assert_null(yes[1]);
	assert_non_null(no[0]);
	assert_non_null(no[1]);
	assert_null(no[2]);
	assert_int_equal(otter_repo_verify_threshold(
				 md, otter_repo_metadata_keys(md),
				 otter_repo_metadata_root_role(md, OTTER_REPO_ROOT), "r", &err),
			 OTTER_E_SIGNATURE);
	otter_repo_strv_free(yes);
	otter_repo_strv_free(no);
	otter_repo_metadata_free(md);
	json_decref(env);
	json_decref(root);
	for (int i = 0; i < 3; i++)
		otter_key_free(k[i]);
}

/* ---- configuration ---- */

static int parse_str(otter_repo_config *c, const char *s, otter_error *err)
{
	return otter_repo_config_parse(c, (const uint8_t *)s, strlen(s), "otter-repo.conf", err);
}

static void test_repo_config_durations(void **state)
{
	int64_t d;
	char out[32];

	assert_int_equal(otter_repo_parse_duration("90d", &d), 0);
	assert_int_equal(d, 90 * 86400);
	assert_int_equal(otter_repo_parse_duration("12h", &d), 0);
	assert_int_equal(d, 12 * 3600);
	assert_int_equal(otter_repo_parse_duration("2w", &d), 0);
	assert_int_equal(d, 14 * 86400);
	assert_int_equal(otter_repo_parse_duration("1s", &d), 0);
	assert_int_equal(d, 1);
	assert_int_equal(otter_repo_parse_duration("30m", &d), 0);
	assert_int_equal(d, 1800);
	assert_int_equal(otter_repo_parse_duration("0d", &d), -1);
	assert_int_equal(otter_repo_parse_duration("d", &d), -1);
	assert_int_equal(otter_repo_parse_duration("", &d), -1);
	assert_int_equal(otter_repo_parse_duration("5", &d), -1);
	assert_int_equal(otter_repo_parse_duration("5x", &d), -1);
	assert_int_equal(otter_repo_parse_duration("-5d", &d), -1);
	assert_int_equal(otter_repo_parse_duration("05d", &d), -1);
	assert_int_equal(otter_repo_parse_duration(" 5d", &d), -1);
	assert_int_equal(otter_repo_parse_duration("36600d", &d), 0);
	assert_int_equal(otter_repo_parse_duration("36601d", &d), -1);
	assert_int_equal(otter_repo_parse_duration("99999999999999999999d", &d), -1);
	otter_repo_format_duration(90 * 86400, out);
	assert_string_equal(out, "90d");
	otter_repo_format_duration(36 * 3600, out);
	assert_string_equal(out, "36h");
	otter_repo_format_duration(61, out);
	assert_string_equal(out, "61s");
}

static void test_repo_config_parse(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_repo_config c, back;
	char *text = NULL;
	static const char good[] = "# comment\n"
				   "; another\n"
				   "\n"
				   "[expiry]\n"
				   "  timestamp = 12h  \r\n"
				   "delegated=30d\n"
				   "[ margin ]\n"
				   "timestamp = 3h\n"
				   "[online]\n"
				   "timestamp = /keys/ts.pem\n"
				   "timestamp = /keys/ts2.pem\n"
				   "bins = /keys/bins.pem\n"
				   "[passphrase]\n"
				   "env = OTTER_PASS\n";

	otter_repo_config_init(&c);
	assert_int_equal(c.expiry[OTTER_REPO_ROOT], 365 * 86400);
	assert_int_equal(otter_repo_config_expiry(&c, "team"), 90 * 86400);
	assert_ok(parse_str(&c, good, &err));
	assert_int_equal(c.expiry[OTTER_REPO_TIMESTAMP], 12 * 3600);
	assert_int_equal(c.expiry[OTTER_REPO_TARGETS], 90 * 86400);
	assert_int_equal(otter_repo_config_expiry(&c, "team"), 30 * 86400);
	assert_int_equal(otter_repo_config_margin(&c, "timestamp"), 3 * 3600);
	assert_int_equal(c.n_online, 3);
	assert_string_equal(c.online[1].path, "/keys/ts2.pem");
	assert_string_equal(c.online[2].role, "bins");
	assert_string_equal(c.passphrase_env, "OTTER_PASS");

	/* What format writes, parse reads back the same. */
	assert_ok(otter_repo_config_format(&c, &text, &err));
	otter_repo_config_init(&back);
	assert_ok(parse_str(&back, text, &err));
	assert_memory_equal(back.expiry, c.expiry, sizeof(c.expiry));
	assert_memory_equal(back.margin, c.margin, sizeof(c.margin));
	assert_int_equal(back.n_online, 3);
	assert_string_equal(back.online[0].path, "/keys/ts.pem");
	assert_string_equal(back.passphrase_env, "OTTER_PASS");
	free(text);
	otter_repo_config_clear(&back);
	otter_repo_config_clear(&c);
}

static void test_repo_config_errors(void **state)
{
	static const struct {
		const char *text, *needle;
	} cases[] = {
		{"[expiry]\nroot = 5x\n", "otter-repo.conf:2: expiry.root: '5x' is not a duration"},
		{"[expiry]\nroot = 5d\nroot = 6d\n", ":3: expiry.root: set twice"},
		{"[expiry]\nbogus = 5d\n", ":2: expiry.bogus: unknown key"},
		{"[nope]\n", ":1: [nope]: unknown section 'nope' (expected expiry"},
		{"root = 5d\n", ":1: root: key outside of a section"},
		{"[expiry\n", ":1: [expiry: malformed section header"},
		{"[expiry]\njust words\n", ":2: just words: expected key=value"},
		{"[expiry]\nroot =\n", ":2: expiry.root: empty value"},
		{"[online]\nroot = /k.pem\n", "root is never signed online"},
		{"[online]\ntimestamp = k.pem\n", "absolute path"},
		{"[online]\na/b = /k.pem\n", ":2: online.a/b: bad character in key"},
		{"[passphrase]\nfile = rel\n", "absolute"},
		{"[passphrase]\nenv = A\nenv = B\n", "set twice"},
		{"[passphrase]\nwhat = A\n", "unknown key"},
		{"[expiry]\nroot = 5d\x01\n", ":2: control character 0x01"},
		{"[expiry]\nroot = caf\xc3\xa9\n", ":2: non-ASCII byte 0xc3"},
	};
	otter_error err = OTTER_ERROR_INIT;
	otter_repo_config c;

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		otter_repo_config_init(&c);
		assert_ok(otter_repo_config_add_online(&c, "snapshot", "/keep.pem", &err));
		otter_error_clear(&err);
		assert_err(parse_str(&c, cases[i].text, &err), OTTER_E_CONFIG, &err,
			   cases[i].needle);
		/* A failed parse changes nothing. */
		assert_int_equal(c.expiry[OTTER_REPO_ROOT], 365 * 86400);
		assert_int_equal(c.n_online, 1);
		assert_null(c.passphrase_env);
		otter_error_clear(&err);
		otter_repo_config_clear(&c);
	}
	{
		/* Size and line-length caps. */
		char *big = calloc(1, OTTER_REPO_CONFIG_MAX_SIZE + 2);
		assert_non_null(big);
		memset(big, '#', OTTER_REPO_CONFIG_MAX_SIZE + 1);
		otter_repo_config_init(&c);
		assert_err(parse_str(&c, big, &err), OTTER_E_CONFIG, &err, "larger");
		otter_error_clear(&err);
		big[OTTER_REPO_CONFIG_MAX_LINE + 1] = '\0';
		assert_err(parse_str(&c, big, &err), OTTER_E_CONFIG, &err,
			   "line longer than 4096 bytes");
		otter_error_clear(&err);
		big[OTTER_REPO_CONFIG_MAX_LINE] = '\0';
		assert_ok(parse_str(&c, big, &err));
		free(big);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repo_names),
		cmocka_unit_test(test_repo_target_filenames),
		cmocka_unit_test(test_repo_succinct_names),
		cmocka_unit_test(test_repo_roles_sign_and_verify),
		cmocka_unit_test(test_repo_signatures_merge),
		cmocka_unit_test(test_repo_envelope_parse),
		cmocka_unit_test(test_repo_serialize_ascii_only),
		cmocka_unit_test(test_repo_metafile_and_digest),
		cmocka_unit_test(test_repo_role_edits),
		cmocka_unit_test(test_repo_delegations),
		cmocka_unit_test(test_repo_signature_status),
		cmocka_unit_test(test_repo_config_durations),
		cmocka_unit_test(test_repo_config_parse),
		cmocka_unit_test(test_repo_config_errors),
	};
	return cmocka_run_group_tests_name("tuf-repo", tests, NULL, NULL);
}
