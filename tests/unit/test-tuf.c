/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The TUF client against an in-memory repository (tuf-repo-builder.c).
 *
 * test_tuf_attack_*: one or more named tests per attack of tuf.md §9, each showing the attack
 * fails and the client's trusted state is left as it was.
 * test_tuf_limit_*: every limit of tuf.md §8 at limit - 1, limit and limit + 1.
 */
#include "test-common.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <otter/json.h>
#include <otter/tuf.h>

#include "lib/limits.h"
#include "lib/tuf/tuf-metadata.h"
#include "tuf-repo-builder.h"
#include "util/cleanup.h"
#include "util/strutil.h"

static int setup(void **state)
{
	*state = trepo_new();
	return 0;
}

static int teardown(void **state)
{
	trepo_free(*state);
	return 0;
}

#define REPO ((trepo *)*state)

static void set_int(json_t *obj, const char *key, json_int_t v)
{
	json_object_set_new(obj, key, json_integer(v));
}

static void set_expires(trepo *r, const char *role, int64_t when)
{
	char buf[32];

	utc_format(when, buf);
	json_object_set_new(trepo_signed(r, role), "expires", json_string(buf));
}

static bool client_has(trepo *r, const char *file)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", r->dir, file);
	return access(path, F_OK) == 0;
}

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Looks up and downloads one target with a fresh updater. */
static int get_target(trepo *r, const char *path, otter_error *err)
{
	otter_tuf_updater *u = trepo_updater(r, err);
	otter_tuf_target *t = NULL;
	int rc;

	if (!u)
		return err->code;
	rc = otter_tuf_find_target(u, path, &t, err);
	if (rc == 0)
		rc = otter_tuf_download_target(u, t, r->target_dir, NULL, err);
	otter_tuf_target_free(t);
	otter_tuf_updater_free(u);
	return rc;
}

static char *read_target(trepo *r, const char *name)
{
	char path[4096];
	FILE *f;
	static char buf[4096];
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", r->target_dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* ---- the workflow ---- */

static void test_tuf_first_refresh_requests(void **state)
{
	otter_error err = OTTER_ERROR_INIT;

	assert_ok(trepo_refresh(REPO, &err));
	assert_string_equal(trepo_requests(REPO), "metadata/2.root.json metadata/timestamp.json "
						  "metadata/1.snapshot.json metadata/1.targets.json");
	assert_int_equal(trepo_client_version(REPO, "timestamp"), 1);
	assert_int_equal(trepo_client_version(REPO, "snapshot"), 1);
	assert_int_equal(trepo_client_version(REPO, "targets"), 1);
	/* Unchanged repository: the local snapshot and targets are current. */
	trepo_clear_requests(REPO);
	assert_ok(trepo_refresh(REPO, &err));
	assert_string_equal(trepo_requests(REPO), "metadata/2.root.json metadata/timestamp.json");
	/* A new release is picked up. */
	TREPO_RELEASE(REPO, "targets");
	trepo_clear_requests(REPO);
	assert_ok(trepo_refresh(REPO, &err));
	assert_string_equal(trepo_requests(REPO), "metadata/2.root.json metadata/timestamp.json "
						  "metadata/2.snapshot.json metadata/2.targets.json");
	assert_int_equal(trepo_client_version(REPO, "targets"), 2);
}

static void test_tuf_download_and_cache(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_tuf_updater *u;
	otter_tuf_target *t = NULL;
	char *url = NULL;

	trepo_add_target(REPO, "targets", "dir/a b.txt", "content", 7);
	TREPO_RELEASE(REPO, "targets");
	assert_ok(get_target(REPO, "dir/a b.txt", &err));
	assert_string_equal(read_target(REPO, "dir%2Fa%20b.txt"), "content");
	/* Second download: served from the cache, no target request. */
	trepo_clear_requests(REPO);
	assert_ok(get_target(REPO, "dir/a b.txt", &err));
	assert_null(strstr(trepo_requests(REPO), "targets/"));
	/* URL: hash-prefixed last component, path percent-encoded except '/'. */
	u = trepo_updater(REPO, &err);
	assert_ok(otter_tuf_find_target(u, "dir/a b.txt", &t, &err));
	assert_ok(otter_tuf_target_url(u, t, &url, &err));
	assert_string_equal(url, "mem://repo/targets/dir/"
				 "ed7002b439e9ac845f22357d822bac1444730fbdb6016d3ec9432297b9ec9f73"
				 ".a%20b.txt");
	assert_int_equal(otter_tuf_target_length(t), 7);
	assert_string_equal(otter_tuf_target_role(t), "targets");
	assert_null(otter_tuf_target_custom(t));
	free(url);
	otter_tuf_target_free(t);
	otter_tuf_updater_free(u);
}

static void test_tuf_install_root_checks_format(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	const char *bad = "{\"signed\":{\"_type\":\"timestamp\"},\"signatures\":[]}";

	assert_err(otter_tuf_install_root(REPO->dir, (const uint8_t *)bad, strlen(bad), &err),
		   OTTER_E_FORMAT, &err, "_type");
	/* The installed root is still the good one. */
	assert_ok(trepo_refresh(REPO, &err));
}

static void test_tuf_untrusted_initial_root_no_requests(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *other = trepo_new_key(OTTER_KEY_ED25519);
	uint8_t *data;
	size_t len;

	data = trepo_serialise(REPO, "root", &other, 1, &len);
	assert_ok(otter_tuf_install_root(REPO->dir, data, len, &err));
	free(data);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_SIGNATURE, &err, "trusted root.json");
	assert_int_equal(REPO->n_requests, 0);
}

/* ---- attacks (tuf.md §9) ---- */

static void test_tuf_attack_arbitrary_installation_unsigned_timestamp(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *attacker = trepo_new_key(OTTER_KEY_ED25519);

	assert_ok(trepo_refresh(REPO, &err));
	trepo_set_signers(REPO, "timestamp", &attacker, 1);
	TREPO_RELEASE(REPO, "targets");
	assert_err(trepo_refresh(REPO, &err), OTTER_E_SIGNATURE, &err, "timestamp.json");
	assert_int_equal(trepo_client_version(REPO, "timestamp"), 1);
}

static void test_tuf_attack_arbitrary_installation_unauthorised_targets_key(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	trepo_role *snapshot = trepo_role_get(REPO, "snapshot");

	/* Signed by a key of the repository, but not one root assigns to targets. */
	trepo_set_signers(REPO, "targets", snapshot->signers, 1);
	trepo_add_target(REPO, "targets", "evil", "evil", 4);
	TREPO_RELEASE(REPO, "targets");
	assert_err(trepo_refresh(REPO, &err), OTTER_E_SIGNATURE, &err, "2.targets.json");
	assert_int_equal(trepo_client_version(REPO, "targets"), 0);
}

/* A sink that keeps the bytes in memory and counts what it was told. */
struct mem_sink {
	char data[256];
	size_t len;
	unsigned finished, aborted;
};

static int mem_write(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	struct mem_sink *m = userdata;

	if (len > sizeof(m->data) - m->len)
		return otter_error_set(err, OTTER_E_IO, "mem sink full");
	memcpy(m->data + m->len, data, len);
	m->len += len;
	return 0;
}

static int mem_finish(void *userdata, otter_error *err)
{
	(void)err;
	((struct mem_sink *)userdata)->finished++;
	return 0;
}

static int mem_abort(void *userdata, otter_error *err)
{
	struct mem_sink *m = userdata;

	(void)err;
	m->aborted++;
	m->len = 0;
	return 0;
}

static int stream_into(trepo *r, const char *path, const char *const *mirrors, size_t n,
		       struct mem_sink *m, otter_error *err)
{
	otter_tuf_updater *u = trepo_updater_mirrors(r, mirrors, n, err);
	otter_sink sink = {mem_write, mem_finish, mem_abort, m};
	otter_tuf_stream_options so = OTTER_TUF_STREAM_OPTIONS_INIT;
	otter_tuf_target *t = NULL;
	int rc;

	if (!u)
		return err->code;
	so.attempts = 1;
	memset(m, 0, sizeof(*m));
	rc = otter_tuf_find_target(u, path, &t, err);
	if (rc == 0)
		rc = otter_tuf_stream_target(u, t, &sink, &so, err);
	otter_tuf_target_free(t);
	otter_tuf_updater_free(u);
	return rc;
}

/* Streaming: every listed hash is checked before finish; bad copies fail over to a mirror. */
static void test_tuf_stream_target(void **state)
{
	static const char good[] = "good firmware", evil[] = "evil firmware";
	const char *const mirrors[] = {"mem://repo/mirror2/"};
	otter_error err = OTTER_ERROR_INIT;
	struct mem_sink m;
	char hex[65], hex512[129], name[256];
	json_t *hashes;

	trepo_add_target(REPO, "targets", "fw.bin", good, 13);
	TREPO_RELEASE(REPO, "targets");
	assert_ok(stream_into(REPO, "fw.bin", NULL, 0, &m, &err));
	assert_int_equal(m.len, 13);
	assert_memory_equal(m.data, good, 13);
	assert_int_equal(m.finished, 1);
	assert_int_equal(m.aborted, 0);

	/* The first copy is swapped: the mirror's good copy is streamed from byte 0. */
	otter_hash_buf_hex(OTTER_HASH_SHA256, good, 13, hex, NULL);
	snprintf(name, sizeof(name), "targets/%s.fw.bin", hex);
	trepo_put(REPO, name, evil, 13);
	snprintf(name, sizeof(name), "mirror2/%s.fw.bin", hex);
	trepo_put(REPO, name, good, 13);
	assert_ok(stream_into(REPO, "fw.bin", mirrors, 1, &m, &err));
	assert_memory_equal(m.data, good, 13);
	assert_int_equal(m.finished, 1);
	assert_int_equal(m.aborted, 1);
	/* Without the mirror: a hash error, and the sink never hears "finish". */
	assert_err(stream_into(REPO, "fw.bin", NULL, 0, &m, &err), OTTER_E_HASH, &err, "fw.bin");
	assert_int_equal(m.finished, 0);

	/* Every listed hash counts: a sha512 that differs fails although sha256 matches. */
	snprintf(name, sizeof(name), "targets/%s.fw.bin", hex);
	trepo_put(REPO, name, good, 13);
	otter_hash_buf_hex(OTTER_HASH_SHA512, evil, 13, hex512, NULL);
	hashes = json_object_get(json_object_get(json_object_get(trepo_signed(REPO, "targets"),
								 "targets"),
						 "fw.bin"),
				 "hashes");
	json_object_set_new(hashes, "sha512", json_string(hex512));
	TREPO_RELEASE(REPO, "targets");
	otter_error_clear(&err);
	assert_err(stream_into(REPO, "fw.bin", NULL, 0, &m, &err), OTTER_E_HASH, &err, "fw.bin");
	assert_int_equal(m.finished, 0);
	/* The right sha512: accepted. */
	otter_hash_buf_hex(OTTER_HASH_SHA512, good, 13, hex512, NULL);
	json_object_set_new(hashes, "sha512", json_string(hex512));
	TREPO_RELEASE(REPO, "targets");
	otter_error_clear(&err);
	assert_ok(stream_into(REPO, "fw.bin", NULL, 0, &m, &err));
	assert_int_equal(m.finished, 1);
}

static void test_tuf_attack_arbitrary_installation_target_replaced(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	const trepo_file *f;
	char name[256];

	trepo_add_target(REPO, "targets", "fw.bin", "good firmware", 13);
	TREPO_RELEASE(REPO, "targets");
	assert_ok(get_target(REPO, "fw.bin", &err));
	/* The server's copy is swapped for other bytes of the same length. */
	f = NULL;
	for (size_t i = 0; i < REPO->n_files; i++)
		if (strstr(REPO->files[i].name, "fw.bin"))
			f = &REPO->files[i];
	if (!f)
		fail_msg("fw.bin was not published");
	snprintf(name, sizeof(name), "%s", f ? f->name : "");
	trepo_put(REPO, name, "evil firmware", 13);
	/* The good copy stays; a fresh target dir gets nothing. */
	assert_ok(get_target(REPO, "fw.bin", &err)); /* cached copy still matches */
	assert_string_equal(read_target(REPO, "fw.bin"), "good firmware");
	char path[4096];
	snprintf(path, sizeof(path), "%s/fw.bin", REPO->target_dir);
	unlink(path);
	assert_err(get_target(REPO, "fw.bin", &err), OTTER_E_HASH, &err, "fw.bin");
	assert_int_equal(count_files(REPO->target_dir), 0);
}

static void test_tuf_attack_rollback_timestamp(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	const trepo_file *f;
	uint8_t *old;
	size_t len;

	f = trepo_get_file(REPO, "metadata/timestamp.json");
	old = malloc(f->len);
	memcpy(old, f->data, f->len);
	len = f->len;
	TREPO_RELEASE(REPO, "targets");
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "timestamp"), 2);
	/* Replay the validly signed version 1. */
	trepo_put(REPO, "metadata/timestamp.json", old, len);
	free(old);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_ROLLBACK, &err, "lower than trusted");
	assert_int_equal(trepo_client_version(REPO, "timestamp"), 2);
}

static void test_tuf_attack_rollback_snapshot_version(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *meta;

	TREPO_RELEASE(REPO, "targets");
	assert_ok(trepo_refresh(REPO, &err));
	/* A newer timestamp pointing at an older snapshot. */
	meta = json_object_get(json_object_get(trepo_signed(REPO, "timestamp"), "meta"),
			       "snapshot.json");
	set_int(meta, "version", 1);
	set_int(trepo_signed(REPO, "timestamp"), "version", 10);
	trepo_publish_role(REPO, "timestamp");
	assert_err(trepo_refresh(REPO, &err), OTTER_E_ROLLBACK, &err, "snapshot version 1");
	assert_int_equal(trepo_client_version(REPO, "timestamp"), 2);
}

static void test_tuf_attack_rollback_targets_version(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *meta;

	TREPO_RELEASE(REPO, "targets");
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "targets"), 2);
	/* New snapshot lists targets v1 again (old metadata still on the server). */
	meta = json_object_get(json_object_get(trepo_signed(REPO, "snapshot"), "meta"),
			       "targets.json");
	set_int(meta, "version", 1);
	TREPO_RELEASE(REPO);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_ROLLBACK, &err, "targets.json");
	assert_int_equal(trepo_client_version(REPO, "snapshot"), 2);
	assert_int_equal(trepo_client_version(REPO, "targets"), 2);
}

static void test_tuf_attack_rollback_role_removed(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	static const char *const paths[] = {"team/*", NULL};

	trepo_delegate(REPO, "targets", "team", paths, false);
	TREPO_RELEASE(REPO, "targets");
	assert_ok(trepo_refresh(REPO, &err));
	json_object_del(json_object_get(trepo_signed(REPO, "snapshot"), "meta"), "team.json");
	TREPO_RELEASE(REPO);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_ROLLBACK, &err, "team.json' was removed");
}

static void test_tuf_attack_rollback_root(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	const trepo_file *v1 = trepo_get_file(REPO, "metadata/1.root.json");

	/* 2.root.json is a copy of version 1: validly signed, wrong version. */
	trepo_put(REPO, "metadata/2.root.json", v1->data, v1->len);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_ROLLBACK, &err, "expected 2");
	assert_int_equal(trepo_client_version(REPO, "root"), 1);
}

static void test_tuf_attack_fast_forward_recovery(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_key *fresh = trepo_new_key(OTTER_KEY_ED25519);

	/* A compromised timestamp key pushed the version to 100. */
	set_int(trepo_signed(REPO, "timestamp"), "version", 99);
	TREPO_RELEASE(REPO);
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "timestamp"), 100);
	/* The repository rotates the timestamp key and starts again at version 1. */
	trepo_rotate(REPO, "timestamp", fresh, 1);
	set_int(trepo_signed(REPO, "timestamp"), "version", 0);
	TREPO_RELEASE(REPO);
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "root"), 2);
	assert_int_equal(trepo_client_version(REPO, "timestamp"), 1);
	/* Without a rotation, the same reset is a rollback. */
	TREPO_RELEASE(REPO);
	TREPO_RELEASE(REPO);
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "timestamp"), 3);
	set_int(trepo_signed(REPO, "timestamp"), "version", 0);
	TREPO_RELEASE(REPO);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_ROLLBACK, &err, NULL);
}

static void test_tuf_attack_freeze_expired_timestamp(void **state)
{
	otter_error err = OTTER_ERROR_INIT;

	assert_ok(trepo_refresh(REPO, &err));
	set_expires(REPO, "timestamp", REPO->now - 1);
	TREPO_RELEASE(REPO, "targets");
	assert_err(trepo_refresh(REPO, &err), OTTER_E_EXPIRED, &err, "timestamp.json version 2");
	assert_int_equal(trepo_client_version(REPO, "timestamp"), 1);
	/* Exactly at the expiry time counts as expired (now >= expires). */
	set_expires(REPO, "timestamp", REPO->now);
	TREPO_RELEASE(REPO);
	otter_error_clear(&err);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_EXPIRED, &err, NULL);
}

static void test_tuf_attack_freeze_expired_snapshot(void **state)
{
	otter_error err = OTTER_ERROR_INIT;

	assert_ok(trepo_refresh(REPO, &err));
	set_expires(REPO, "snapshot", REPO->now - 60);
	TREPO_RELEASE(REPO, "targets");
	assert_err(trepo_refresh(REPO, &err), OTTER_E_EXPIRED, &err, "snapshot.json");
	assert_int_equal(trepo_client_version(REPO, "snapshot"), 1);
}

static void test_tuf_attack_freeze_expired_targets(void **state)
{
	otter_error err = OTTER_ERROR_INIT;

	assert_ok(trepo_refresh(REPO, &err));
	set_expires(REPO, "targets", REPO->now - 60);
	TREPO_RELEASE(REPO, "targets");
	assert_err(trepo_refresh(REPO, &err), OTTER_E_EXPIRED, &err, "2.targets.json");
	assert_int_equal(trepo_client_version(REPO, "targets"), 1);
}

static void test_tuf_attack_freeze_expired_root(void **state)
{
	otter_error err = OTTER_ERROR_INIT;

	assert_ok(trepo_refresh(REPO, &err));
	set_expires(REPO, "root", REPO->now - 60);
	trepo_rotate(REPO, "root", NULL, 1);
	TREPO_RELEASE(REPO, "targets");
	/* The new root is persisted (spec 5.3.10), then the freeze is detected. */
	assert_err(trepo_refresh(REPO, &err), OTTER_E_EXPIRED, &err, "root.json version 2");
	assert_int_equal(trepo_client_version(REPO, "root"), 2);
	assert_int_equal(trepo_client_version(REPO, "timestamp"), 1);
}

static void test_tuf_attack_freeze_local_expiry_does_not_block(void **state)
{
	otter_error err = OTTER_ERROR_INIT;

	assert_ok(trepo_refresh(REPO, &err));
	/* A week later the local timestamp and snapshot have expired; new ones exist. */
	REPO->now += 8 * 86400;
	set_expires(REPO, "timestamp", REPO->now + 86400);
	set_expires(REPO, "snapshot", REPO->now + 86400);
	TREPO_RELEASE(REPO);
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "timestamp"), 2);
}

static void test_tuf_attack_endless_data_timestamp(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	static char big[1 << 20];

	memset(big, ' ', sizeof(big));
	trepo_put(REPO, "metadata/timestamp.json", big, sizeof(big));
	assert_err(trepo_refresh(REPO, &err), OTTER_E_TOO_LARGE, &err, "timestamp.json");
	assert_false(client_has(REPO, "timestamp.json"));
}

static void test_tuf_attack_endless_data_snapshot_length(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	const trepo_file *f;
	uint8_t *data;

	REPO->timestamp_hashes = true;
	TREPO_RELEASE(REPO);
	/* The snapshot file grows past the length timestamp pins. */
	f = trepo_get_file(REPO, "metadata/2.snapshot.json");
	data = malloc(f->len + 1000);
	memcpy(data, f->data, f->len);
	memset(data + f->len, ' ', 1000);
	trepo_put(REPO, "metadata/2.snapshot.json", data, f->len + 1000);
	free(data);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_TOO_LARGE, &err, "2.snapshot.json");
	assert_false(client_has(REPO, "snapshot.json"));
}

static void test_tuf_attack_endless_data_target(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	char name[512], hex[65];
	static char big[100000];

	trepo_add_target(REPO, "targets", "t", "four", 4);
	TREPO_RELEASE(REPO, "targets");
	assert_ok(otter_hash_buf_hex(OTTER_HASH_SHA256, "four", 4, hex, &err));
	snprintf(name, sizeof(name), "targets/%s.t", hex);
	assert_non_null(trepo_get_file(REPO, name));
	memset(big, 'x', sizeof(big));
	trepo_put(REPO, name, big, sizeof(big));
	assert_err(get_target(REPO, "t", &err), OTTER_E_TOO_LARGE, &err, "4 bytes");
	assert_int_equal(count_files(REPO->target_dir), 0);
}

static void test_tuf_attack_slow_retrieval(void **state)
{
	otter_error err = OTTER_ERROR_INIT;

	/* The network layer turns a trickling server into OTTER_E_TIMEOUT (test-net.c);
	 * the workflow must fail cleanly on it and persist nothing. */
	TREPO_RELEASE(REPO, "targets");
	REPO->fail_with = OTTER_E_TIMEOUT;
	REPO->fail_only = "snapshot";
	assert_err(trepo_refresh(REPO, &err), OTTER_E_TIMEOUT, &err, "injected");
	assert_true(client_has(REPO, "timestamp.json"));
	assert_false(client_has(REPO, "snapshot.json"));
	REPO->fail_with = 0;
	assert_ok(trepo_refresh(REPO, &err));
}

static void test_tuf_attack_extraneous_dependencies(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	static const char *const paths[] = {"deps/*", NULL};

	/* Only what signed metadata lists is ever fetched: an unlisted target is not
	 * requested, and a delegated role missing from snapshot is never downloaded. */
	trepo_put(REPO, "targets/unlisted.bin", "x", 1);
	trepo_delegate(REPO, "targets", "deps", paths, false);
	TREPO_RELEASE(REPO, "targets");
	json_object_del(json_object_get(trepo_signed(REPO, "snapshot"), "meta"), "deps.json");
	TREPO_RELEASE(REPO);
	assert_ok(trepo_refresh(REPO, &err));
	trepo_clear_requests(REPO);
	assert_err(get_target(REPO, "unlisted.bin", &err), OTTER_E_NOT_FOUND, &err,
		   "not listed");
	assert_null(strstr(trepo_requests(REPO), "targets/"));
	otter_error_clear(&err);
	trepo_clear_requests(REPO);
	assert_err(get_target(REPO, "deps/lib.so", &err), OTTER_E_NOT_FOUND, &err,
		   "snapshot.json does not list it");
	assert_null(strstr(trepo_requests(REPO), "deps"));
}

static void test_tuf_attack_mix_and_match_targets_version(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	const trepo_file *v1 = trepo_get_file(REPO, "metadata/1.targets.json");
	uint8_t *copy = malloc(v1->len);
	size_t len = v1->len;

	memcpy(copy, v1->data, len);
	TREPO_RELEASE(REPO, "targets");
	/* Snapshot 2 names targets 2; the server hands out targets 1 under that name. */
	trepo_put(REPO, "metadata/2.targets.json", copy, len);
	free(copy);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_ROLLBACK, &err, "snapshot.json names 2");
	assert_int_equal(trepo_client_version(REPO, "targets"), 0);
}

static void test_tuf_attack_mix_and_match_snapshot_hash(void **state)
{
	otter_error err = OTTER_ERROR_INIT;

	REPO->timestamp_hashes = true;
	json_object_set_new(trepo_signed(REPO, "snapshot"), "x-note", json_string("aaaa"));
	TREPO_RELEASE(REPO, "targets");
	/* Another validly signed snapshot: same version and length, other content. */
	json_object_set_new(trepo_signed(REPO, "snapshot"), "x-note", json_string("bbbb"));
	trepo_publish_role(REPO, "snapshot");
	assert_err(trepo_refresh(REPO, &err), OTTER_E_HASH, &err, "2.snapshot.json");
	assert_false(client_has(REPO, "snapshot.json"));
}

static void test_tuf_attack_malicious_mirror(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	const trepo_file *good;
	uint8_t *saved, *bad;
	size_t len;

	trepo_add_target(REPO, "targets", "a", "a", 1);
	TREPO_RELEASE(REPO, "targets");
	good = trepo_get_file(REPO, "metadata/2.targets.json");
	len = good->len;
	saved = malloc(len);
	memcpy(saved, good->data, len);
	/* A mirror serves altered targets metadata: refused, and nothing of it is kept. */
	bad = malloc(len);
	memcpy(bad, saved, len);
	for (size_t i = 0; i + 3 < len; i++)
		if (memcmp(bad + i, "\"a\"", 3) == 0)
			bad[i + 1] = 'b';
	trepo_put(REPO, "metadata/2.targets.json", bad, len);
	free(bad);
	assert_true(trepo_refresh(REPO, &err) < 0);
	assert_int_equal(trepo_client_version(REPO, "targets"), 0);
	/* A good mirror then works: the bad one could not block the update. */
	trepo_put(REPO, "metadata/2.targets.json", saved, len);
	free(saved);
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "targets"), 2);
}

static void test_tuf_attack_key_compromise_below_threshold(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	trepo_role *root = trepo_role_get(REPO, "root");
	otter_key *second = trepo_new_key(OTTER_KEY_ECDSA_P256);
	json_t *r = trepo_signed(REPO, "root"), *role;
	char *id = trepo_keyid(second);
	otter_key *both[2] = {root->signers[0], second};
	uint8_t *data;
	size_t len;
	otter_key *k1 = root->signers[0];

	/* Root v2: two root keys, threshold 2 (signed by old and new sets). */
	role = json_object_get(json_object_get(r, "roles"), "root");
	json_array_append_new(json_object_get(role, "keyids"), json_string(id));
	json_t *kobj = NULL;
	assert_ok(otter_key_to_tuf(second, &kobj, &err));
	json_object_set_new(json_object_get(r, "keys"), id, kobj);
	set_int(role, "threshold", 2);
	set_int(r, "version", 2);
	data = trepo_serialise(REPO, "root", both, 2, &len);
	trepo_put(REPO, "metadata/2.root.json", data, len);
	free(data);
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "root"), 2);
	/* One stolen key alone cannot make root v3. */
	set_int(r, "version", 3);
	data = trepo_serialise(REPO, "root", &k1, 1, &len);
	trepo_put(REPO, "metadata/3.root.json", data, len);
	free(data);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_SIGNATURE, &err, "threshold is 2");
	assert_int_equal(trepo_client_version(REPO, "root"), 2);
	free(id);
}

static void test_tuf_attack_key_compromise_duplicate_signatures(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	uint8_t *data;
	size_t len;
	json_t *doc = NULL, *sigs;
	char *s;

	set_int(json_object_get(json_object_get(trepo_signed(REPO, "root"), "roles"), "timestamp"),
		"threshold", 2);
	trepo_rotate(REPO, "root", NULL, 1);
	TREPO_RELEASE(REPO);
	/* The one timestamp signature repeated: must not reach threshold 2. */
	data = trepo_serialise(REPO, "timestamp", NULL, 0, &len);
	assert_ok(otter_json_parse(&doc, data, len, len, &err));
	free(data);
	sigs = json_object_get(doc, "signatures");
	json_array_append(sigs, json_array_get(sigs, 0));
	s = json_dumps(doc, JSON_COMPACT);
	trepo_put(REPO, "metadata/timestamp.json", s, strlen(s));
	free(s);
	json_decref(doc);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_FORMAT, &err, "two signatures by key");
}

static void test_tuf_attack_key_compromise_one_key_two_keyids(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	trepo_role *ts = trepo_role_get(REPO, "timestamp");
	json_t *r = trepo_signed(REPO, "root"), *kobj = NULL, *role;
	char alias[65];
	uint8_t *data, *canon = NULL, *sig = NULL;
	size_t len, clen, siglen;
	char hex[200];
	json_t *doc = NULL;
	char *s;

	/* The timestamp key listed a second time under another keyid (an extra member
	 * changes the keyid), threshold 2: the same key material counts once. */
	assert_ok(otter_key_to_tuf(ts->signers[0], &kobj, &err));
	json_object_set_new(kobj, "x-alias", json_true());
	assert_ok(otter_keyid_of_tuf(kobj, alias, &err));
	json_object_set_new(json_object_get(r, "keys"), alias, kobj);
	role = json_object_get(json_object_get(r, "roles"), "timestamp");
	json_array_append_new(json_object_get(role, "keyids"), json_string(alias));
	set_int(role, "threshold", 2);
	trepo_rotate(REPO, "root", NULL, 1);
	TREPO_RELEASE(REPO);
	data = trepo_serialise(REPO, "timestamp", NULL, 0, &len);
	assert_ok(otter_json_parse(&doc, data, len, len, &err));
	free(data);
	assert_ok(otter_json_canonical(trepo_signed(REPO, "timestamp"), &canon, &clen, &err));
	assert_ok(otter_key_sign(ts->signers[0], canon, clen, &sig, &siglen, &err));
	hex_encode(sig, siglen, hex);
	json_array_append_new(json_object_get(doc, "signatures"),
			      json_pack("{s:s, s:s}", "keyid", alias, "sig", hex));
	s = json_dumps(doc, JSON_COMPACT);
	trepo_put(REPO, "metadata/timestamp.json", s, strlen(s));
	free(s);
	free(sig);
	free(canon);
	json_decref(doc);
	assert_err(trepo_refresh(REPO, &err), OTTER_E_SIGNATURE, &err, "1 valid signature");
}

static void test_tuf_attack_wrong_software_path_not_delegated(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	static const char *const paths[] = {"team/*", NULL};

	/* "team" may only sign paths under team/: its entry for another path is not trusted. */
	trepo_delegate(REPO, "targets", "team", paths, false);
	trepo_add_target(REPO, "team", "team/app", "app", 3);
	trepo_add_target(REPO, "team", "bootloader.bin", "evil", 4);
	TREPO_RELEASE(REPO, "team", "targets");
	assert_ok(get_target(REPO, "team/app", &err));
	assert_err(get_target(REPO, "bootloader.bin", &err), OTTER_E_NOT_FOUND, &err,
		   "bootloader.bin");
	/* '*' does not match '/' either. */
	trepo_add_target(REPO, "team", "team/sub/app", "x", 1);
	TREPO_RELEASE(REPO, "team");
	otter_error_clear(&err);
	assert_err(get_target(REPO, "team/sub/app", &err), OTTER_E_NOT_FOUND, &err, NULL);
}

static void test_tuf_attack_wrong_software_diamond(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	static const char *const pa[] = {"a/*", NULL}, *const pb[] = {"b/*", NULL};
	otter_tuf_updater *u;
	otter_tuf_target *t = NULL;

	/* "release" is delegated by parent-a (with its signer's key) and by parent-b (with
	 * another key). Reached through parent-b, its signature does not verify. */
	trepo_delegate(REPO, "targets", "parent-a", pa, false);
	trepo_delegate(REPO, "targets", "parent-b", pb, false);
	trepo_delegate(REPO, "parent-a", "release", pa, false);
	trepo_delegate(REPO, "parent-b", "release", pb, false);
	trepo_add_target(REPO, "release", "a/x", "trusted", 7);
	trepo_add_target(REPO, "release", "b/x", "malicious", 9);
	TREPO_RELEASE(REPO, "release", "parent-a", "parent-b", "targets");
	u = trepo_updater(REPO, &err);
	assert_ok(otter_tuf_find_target(u, "a/x", &t, &err));
	assert_string_equal(otter_tuf_target_role(t), "release");
	t = otter_tuf_target_free(t);
	assert_err(otter_tuf_find_target(u, "b/x", &t, &err), OTTER_E_SIGNATURE, &err,
		   "reached through 'parent-b'");
	otter_tuf_updater_free(u);
	/* A new process, with "release" cached on disk from the first path: still refused. */
	otter_error_clear(&err);
	assert_err(get_target(REPO, "b/x", &err), OTTER_E_SIGNATURE, &err, NULL);
}

/* ---- delegation search ---- */

static void test_tuf_delegation_order_and_terminating(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	static const char *const all[] = {"*", NULL};
	otter_tuf_updater *u;
	otter_tuf_target *t = NULL;

	/* targets -> A (terminating), B. A lists nothing; B lists the target: terminating A
	 * means B is never consulted. */
	trepo_delegate(REPO, "targets", "A", all, true);
	trepo_delegate(REPO, "targets", "B", all, false);
	trepo_add_target(REPO, "B", "f", "b", 1);
	TREPO_RELEASE(REPO, "A", "B", "targets");
	u = trepo_updater(REPO, &err);
	trepo_clear_requests(REPO);
	assert_err(otter_tuf_find_target(u, "f", &t, &err), OTTER_E_NOT_FOUND, &err, NULL);
	assert_non_null(strstr(trepo_requests(REPO), "2.A.json"));
	assert_null(strstr(trepo_requests(REPO), "B.json"));
	otter_tuf_updater_free(u);
}

static void test_tuf_delegation_cycle(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	static const char *const all[] = {"*", NULL};

	/* targets -> A -> B -> A: each visited once, then not found. */
	trepo_delegate(REPO, "targets", "A", all, false);
	trepo_delegate(REPO, "A", "B", all, false);
	trepo_delegate(REPO, "B", "A", all, false);
	TREPO_RELEASE(REPO, "A", "B", "targets");
	trepo_clear_requests(REPO);
	assert_err(get_target(REPO, "nothing", &err), OTTER_E_NOT_FOUND, &err, NULL);
	assert_non_null(strstr(trepo_requests(REPO), "A.json"));
	assert_non_null(strstr(trepo_requests(REPO), "B.json"));
}

/* ---- limits (tuf.md §8) ---- */

static void rotations(trepo *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		trepo_rotate(r, "root", NULL, 1);
}

static void test_tuf_limit_root_rotations(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	unsigned limit = OTTER_TUF_MAX_ROOT_ROTATIONS;

	/* limit - 1 new versions: all fetched, then the 404 ends the loop. */
	rotations(REPO, limit - 1);
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "root"), limit);
	trepo_free(REPO);
	*state = trepo_new();
	/* limit: all fetched. */
	rotations(REPO, limit);
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "root"), limit + 1);
	trepo_free(REPO);
	*state = trepo_new();
	/* limit + 1: one refresh stops at the cap; the next picks up the rest. */
	rotations(REPO, limit + 1);
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "root"), limit + 1);
	assert_ok(trepo_refresh(REPO, &err));
	assert_int_equal(trepo_client_version(REPO, "root"), limit + 2);
}

/* targets -> d1 -> d2 ... -> d<depth>, target in the last. */
static int chain_lookup(trepo *r, unsigned depth, otter_error *err)
{
	static const char *const all[] = {"*", NULL};
	char parent[32] = "targets", name[32];

	for (unsigned i = 1; i <= depth; i++) {
		snprintf(name, sizeof(name), "d%u", i);
		trepo_delegate(r, parent, name, all, false);
		snprintf(parent, sizeof(parent), "%s", name);
	}
	trepo_add_target(r, parent, "deep", "deep", 4);
	for (unsigned i = depth; i >= 1; i--) {
		snprintf(name, sizeof(name), "d%u", i);
		trepo_release(r, (const char *const[]){name}, 1);
	}
	TREPO_RELEASE(r, "targets");
	return get_target(r, "deep", err);
}

static void test_tuf_limit_delegations(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	unsigned limit = OTTER_TUF_MAX_DELEGATIONS;

	/* python-tuf's count: targets plus `limit` delegated roles may be visited. */
	assert_ok(chain_lookup(REPO, limit - 1, &err));
	trepo_free(REPO);
	*state = trepo_new();
	assert_ok(chain_lookup(REPO, limit, &err));
	trepo_free(REPO);
	*state = trepo_new();
	assert_err(chain_lookup(REPO, limit + 1, &err), OTTER_E_NOT_FOUND, &err, NULL);
	assert_null(strstr(trepo_requests(REPO), ".d33.json"));
}

/* Replaces a published file by its bytes padded with spaces to exactly `size`. */
static void pad_file(trepo *r, const char *name, size_t size)
{
	const trepo_file *f = trepo_get_file(r, name);
	uint8_t *data;

	assert_non_null(f);
	assert_true(f->len <= size);
	data = malloc(size);
	memcpy(data, f->data, f->len);
	memset(data + f->len, ' ', size - f->len);
	trepo_put(r, name, data, size);
	free(data);
}

/*
 * A file padded to limit - 1, limit and limit + 1 bytes, each time in a fresh repository
 * (root gets a version 2 to fetch first): the first two are accepted, the last refused.
 */
static void check_length_limit(void **state, const char *file, size_t limit)
{
	otter_error err = OTTER_ERROR_INIT;
	bool root = strstr(file, "root") != NULL;

	for (int delta = -1; delta <= 1; delta++) {
		trepo_free(REPO);
		*state = trepo_new();
		if (root)
			trepo_rotate(REPO, "root", NULL, 1);
		pad_file(REPO, file, limit + (size_t)delta);
		otter_error_clear(&err);
		if (delta <= 0)
			assert_ok(trepo_refresh(REPO, &err));
		else
			assert_err(trepo_refresh(REPO, &err), OTTER_E_TOO_LARGE, &err,
				   strrchr(file, '/') + 1);
		if (root)
			assert_int_equal(trepo_client_version(REPO, "root"), delta <= 0 ? 2 : 1);
	}
}

static void test_tuf_limit_root_length(void **state)
{
	check_length_limit(state, "metadata/2.root.json", OTTER_TUF_ROOT_MAX_LENGTH);
}

static void test_tuf_limit_timestamp_length(void **state)
{
	check_length_limit(state, "metadata/timestamp.json", OTTER_TUF_TIMESTAMP_MAX_LENGTH);
}

/* No length in timestamp meta / snapshot meta: the default caps apply. */
static void test_tuf_limit_snapshot_length(void **state)
{
	check_length_limit(state, "metadata/1.snapshot.json", OTTER_TUF_SNAPSHOT_MAX_LENGTH);
}

static void test_tuf_limit_targets_length(void **state)
{
	check_length_limit(state, "metadata/1.targets.json", OTTER_TUF_TARGETS_MAX_LENGTH);
}

static void test_tuf_limit_json_depth(void **state)
{
	otter_error err = OTTER_ERROR_INIT;

	/* document(1) > signed(2) > targets(3) > entry(4) > custom nested arrays: the deepest
	 * container is at 4 + k. */
	for (int k = 59; k <= 61; k++) {
		json_t *v = json_array(), *entry;
		for (int i = 1; i < k; i++) {
			json_t *outer = json_array();
			json_array_append_new(outer, v);
			v = outer;
		}
		trepo_free(REPO);
		*state = trepo_new();
		trepo_add_target(REPO, "targets", "deep", "x", 1);
		entry = json_object_get(json_object_get(trepo_signed(REPO, "targets"), "targets"),
					"deep");
		json_object_set_new(entry, "custom", v);
		TREPO_RELEASE(REPO, "targets");
		otter_error_clear(&err);
		if (4 + k <= (int)OTTER_JSON_MAX_DEPTH)
			assert_ok(trepo_refresh(REPO, &err));
		else
			assert_err(trepo_refresh(REPO, &err), OTTER_E_INVALID, &err, "nesting");
	}
}

static void test_tuf_hash_bins(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	json_t *t = trepo_signed(REPO, "targets");
	otter_key *k = trepo_new_key(OTTER_KEY_ED25519);
	char *id = trepo_keyid(k);
	json_t *kobj = NULL;
	char name[32];

	/* succinct_roles with 3 bits: bins-0 .. bins-7; "foo.tgz" (34baf01a...) is in bins-1. */
	assert_ok(otter_key_to_tuf(k, &kobj, &err));
	json_object_set_new(t, "delegations",
			    json_pack("{s:{s:o}, s:{s:[s], s:i, s:i, s:s}}", "keys", id, kobj,
				      "succinct_roles", "keyids", id, "threshold", 1, "bit_length",
				      3, "name_prefix", "bins"));
	free(id);
	for (int i = 0; i < 8; i++) {
		json_t *s = json_pack("{s:s, s:s, s:i, s:s, s:{}}", "_type", "targets",
				      "spec_version", "1.0", "version", 1, "expires",
				      "2031-01-01T00:00:00Z", "targets");
		snprintf(name, sizeof(name), "bins-%d", i);
		trepo_role *role = &REPO->roles[REPO->n_roles++];
		role->name = strdup(name);
		role->signed_obj = s;
		role->signers[0] = k;
		role->n_signers = 1;
	}
	trepo_add_target(REPO, "bins-1", "foo.tgz", "foo", 3);
	trepo_add_target(REPO, "bins-2", "misplaced.tgz", "x", 1);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "bins-%d", i);
		trepo_release(REPO, (const char *const[]){name}, 1);
	}
	TREPO_RELEASE(REPO, "targets");
	trepo_clear_requests(REPO);
	assert_ok(get_target(REPO, "foo.tgz", &err));
	assert_non_null(strstr(trepo_requests(REPO), "2.bins-1.json"));
	assert_null(strstr(trepo_requests(REPO), "bins-0"));
	/* A target in a bin it does not hash to is not found. */
	assert_err(get_target(REPO, "misplaced.tgz", &err), OTTER_E_NOT_FOUND, &err, NULL);
}

static int collect_paths(void *userdata, const otter_tuf_target *t, otter_error *err)
{
	strcat(userdata, otter_tuf_target_path(t));
	strcat(userdata, ";");
	return strcmp(otter_tuf_target_path(t), "releases/stop") == 0
		       ? otter_error_set(err, OTTER_E_ABORTED, "stopped")
		       : 0;
}

static void test_tuf_foreach_target(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	static const char *const all[] = {"*", "releases/*", NULL};
	otter_tuf_updater *u;
	char seen[1024] = "";

	trepo_add_target(REPO, "targets", "releases/b/2.json", "2", 1);
	trepo_add_target(REPO, "targets", "releases/a/1.json", "1", 1);
	trepo_add_target(REPO, "targets", "images/x", "x", 1);
	/* Delegated roles are not enumerated. */
	trepo_delegate(REPO, "targets", "team", all, false);
	trepo_add_target(REPO, "team", "releases/c/3.json", "3", 1);
	TREPO_RELEASE(REPO, "team", "targets");
	u = trepo_updater(REPO, &err);
	assert_ok(otter_tuf_foreach_target(u, "releases/", collect_paths, seen, &err));
	assert_string_equal(seen, "releases/a/1.json;releases/b/2.json;");
	seen[0] = '\0';
	assert_ok(otter_tuf_foreach_target(u, "", collect_paths, seen, &err));
	assert_string_equal(seen, "images/x;releases/a/1.json;releases/b/2.json;");
	otter_tuf_updater_free(u);
	/* The callback's error stops the walk. */
	trepo_add_target(REPO, "targets", "releases/stop", "s", 1);
	trepo_add_target(REPO, "targets", "releases/z", "z", 1);
	TREPO_RELEASE(REPO, "targets");
	u = trepo_updater(REPO, &err);
	seen[0] = '\0';
	assert_err(otter_tuf_foreach_target(u, "releases/", collect_paths, seen, &err),
		   OTTER_E_ABORTED, &err, "stopped");
	assert_null(strstr(seen, "releases/z"));
	otter_tuf_updater_free(u);
}

/* The lean reading of targets metadata and the jansson one of the same bytes agree. */
static void assert_lean_agrees(const uint8_t *data, size_t len, const char *name)
{
	otter_error e1 = OTTER_ERROR_INIT, e2 = OTTER_ERROR_INIT;
	tuf_metadata *full = NULL, *lean = NULL;
	uint8_t *copy = malloc(len ? len : 1);
	tuf_target_entry *list = NULL;
	size_t n = 0;
	int r1, r2;

	assert_non_null(copy);
	memcpy(copy, data, len);
	r1 = tuf_metadata_parse(&full, TUF_TARGETS, data, len, name, &e1);
	r2 = tuf_metadata_parse_lean(&lean, &copy, len, name, &e2);
	if ((r1 == 0) != (r2 == 0))
		fail_msg("%s: jansson: %s; lean: %s", name, r1 ? e1.msg : "accepted",
			 r2 ? e2.msg : "accepted");
	if (r1 < 0) {
		free(copy);
		return;
	}
	assert_true(lean->lean);
	assert_null(lean->targets);
	assert_int_equal(full->version, lean->version);
	assert_int_equal(full->expires, lean->expires);
	assert_int_equal(full->canon_len, lean->canon_len);
	assert_memory_equal(full->canon, lean->canon, full->canon_len);
	assert_int_equal(full->n_sigs, lean->n_sigs);
	assert_int_equal(full->has_delegations, lean->has_delegations);
	assert_int_equal(full->n_delegations, lean->n_delegations);
	assert_int_equal(full->succinct, lean->succinct);
	assert_ok(tuf_metadata_target_list(lean, "", &list, &n, &e2));
	assert_int_equal(n, json_object_size(full->targets));
	for (size_t i = 0; i < n; i++) {
		json_t *info = NULL;

		assert_true(json_equal(list[i].info, json_object_get(full->targets, list[i].path)));
		assert_ok(tuf_metadata_target(lean, list[i].path, &info, &e2));
		assert_true(json_equal(info, list[i].info));
		json_decref(info);
	}
	tuf_target_list_free(list, n);
	{
		json_t *none = NULL;

		assert_ok(tuf_metadata_target(lean, "not/listed", &none, &e2));
		assert_null(none);
	}
	tuf_metadata_free(full);
	tuf_metadata_free(lean);
}

/* Every targets file of a generated repository (odd paths, custom data, delegations, hash
 * bins) reads the same lean and through jansson, and so do damaged copies of them. */
static void test_tuf_lean_targets_agree(void **state)
{
	static const char *const odd[] = {
		"dir/\xc3\xa4.bin", "quote\"d", "tab\tname", "back\\slash", "ctl\x01x", "\xe2\x82\xac",
		"a/b/c/d.tar.gz",
	};
	size_t checked = 0;
	char path[64];

	for (size_t i = 0; i < ELEMENTSOF(odd); i++)
		trepo_add_target(REPO, "targets", odd[i], odd[i], strlen(odd[i]));
	for (int i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "bulk/file-%03d.bin", i);
		trepo_add_target(REPO, "targets", path, path, strlen(path));
	}
	json_object_set_new(json_object_get(json_object_get(trepo_signed(REPO, "targets"),
							     "targets"),
					    "quote\"d"),
			    "custom", json_pack("{s:s, s:[i, b, n], s:{}}", "x\\y", "\xc3\xa9",
						 "list", -7, 1, "empty"));
	trepo_delegate(REPO, "targets", "team", (const char *const[]){"team/*", NULL}, false);
	trepo_add_target(REPO, "team", "team/app.bin", "app", 3);
	TREPO_RELEASE(REPO, "team", "targets");
	for (size_t i = 0; i < REPO->n_files; i++) {
		const trepo_file *f = &REPO->files[i];

		if (strncmp(f->name, "metadata/", 9) != 0 || strstr(f->name, "root") ||
		    strstr(f->name, "snapshot") || strstr(f->name, "timestamp"))
			continue;
		assert_lean_agrees(f->data, f->len, f->name);
		checked++;
		/* Damaged copies: each byte of the first 200 and of the last 100 changed. */
		for (size_t k = 0; k < f->len; k++) {
			uint8_t *m;

			if (k >= 200 && k + 100 < f->len)
				continue;
			m = malloc(f->len);
			assert_non_null(m);
			memcpy(m, f->data, f->len);
			m[k] = (uint8_t)(m[k] == '"' ? ',' : m[k] == ',' ? '"' : m[k] ^ 0x20);
			assert_lean_agrees(m, f->len, f->name);
			free(m);
		}
	}
	assert_true(checked >= 4); /* targets v1, v2; team v1, v2 (or more) */
}

/* A targets file listing one path twice is refused, lean as with jansson: the two entries
 * could otherwise be read differently by two readers (one signed, the other used). */
static void test_tuf_attack_duplicate_target_path(void **state)
{
	static const char doc[] =
		"{\"signatures\":[],\"signed\":{\"_type\":\"targets\",\"spec_version\":\"1.0\","
		"\"version\":1,\"expires\":\"2031-01-01T00:00:00Z\",\"targets\":{"
		"\"fw.bin\":{\"length\":3,\"hashes\":{\"sha256\":\"aa\"}},"
		"\"fw.bin\":{\"length\":4,\"hashes\":{\"sha256\":\"bb\"}}}}}";
	otter_error err = OTTER_ERROR_INIT;
	tuf_metadata *md = NULL;
	uint8_t *copy = (uint8_t *)strdup(doc);

	(void)state;
	assert_non_null(copy);
	assert_err(tuf_metadata_parse_lean(&md, &copy, strlen(doc), "2.targets.json", &err),
		   OTTER_E_INVALID, &err, "2.targets.json: invalid JSON: duplicate object key");
	otter_error_clear(&err);
	assert_err(tuf_metadata_parse(&md, TUF_TARGETS, (const uint8_t *)doc, strlen(doc),
				      "2.targets.json", &err),
		   OTTER_E_INVALID, &err, "duplicate");
	free(copy);
}

/* Streams len bytes of data through a verifier for hashes, in uneven pieces. */
static int verify_stream(const char *hashes_json, const uint8_t *data, size_t len,
			 otter_error *err)
{
	json_t *hashes = json_loads(hashes_json, 0, NULL);
	tuf_hash_verifier *v = NULL;
	size_t off = 0, step = 1;
	int r;

	assert_non_null(hashes);
	r = tuf_hash_verifier_new(&v, hashes, "fw.bin", err);
	while (r == 0 && off < len) {
		size_t n = len - off < step ? len - off : step;

		r = tuf_hash_verifier_update(v, data + off, n, err);
		off += n;
		step = step * 3 + 11;
	}
	if (r == 0)
		r = tuf_hash_verifier_finish(v, len, len, "fw.bin", err);
	tuf_hash_verifier_free(v);
	json_decref(hashes);
	return r;
}

/*
 * The listed hashes are computed in parallel (one on a thread): each one is still checked
 * over every byte, whichever is wrong and in whichever order they are listed.
 */
static void test_tuf_hash_verifier_every_hash(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	size_t len = 3 * 1024 * 1024 + 77;
	uint8_t *data = malloc(len);
	char s256[65], s512[129], bad256[65], bad512[129], j[512];

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	assert_ok(otter_hash_buf_hex(OTTER_HASH_SHA256, data, len, s256, &err));
	assert_ok(otter_hash_buf_hex(OTTER_HASH_SHA512, data, len, s512, &err));
	memcpy(bad256, s256, sizeof(s256));
	bad256[10] = bad256[10] == '0' ? '1' : '0';
	memcpy(bad512, s512, sizeof(s512));
	bad512[127] = bad512[127] == '0' ? '1' : '0';

	snprintf(j, sizeof(j), "{\"sha256\": \"%s\", \"sha512\": \"%s\"}", s256, s512);
	assert_ok(verify_stream(j, data, len, &err));
	snprintf(j, sizeof(j), "{\"sha512\": \"%s\", \"sha256\": \"%s\"}", s512, s256);
	assert_ok(verify_stream(j, data, len, &err));

	snprintf(j, sizeof(j), "{\"sha256\": \"%s\", \"sha512\": \"%s\"}", s256, bad512);
	assert_err(verify_stream(j, data, len, &err), OTTER_E_HASH, &err, "sha512 is");
	otter_error_clear(&err);
	snprintf(j, sizeof(j), "{\"sha256\": \"%s\", \"sha512\": \"%s\"}", bad256, s512);
	assert_err(verify_stream(j, data, len, &err), OTTER_E_HASH, &err, "sha256 is");
	otter_error_clear(&err);
	snprintf(j, sizeof(j), "{\"sha512\": \"%s\", \"sha256\": \"%s\"}", s512, bad256);
	assert_err(verify_stream(j, data, len, &err), OTTER_E_HASH, &err, "sha256 is");
	otter_error_clear(&err);
	/* One byte changed at the end, after the last full buffer of the thread. */
	data[len - 1] ^= 1;
	snprintf(j, sizeof(j), "{\"sha256\": \"%s\", \"sha512\": \"%s\"}", s256, s512);
	assert_err(verify_stream(j, data, len, &err), OTTER_E_HASH, &err, "fw.bin");
	otter_error_clear(&err);
	free(data);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_tuf_first_refresh_requests),
		T(test_tuf_download_and_cache),
		T(test_tuf_stream_target),
		T(test_tuf_install_root_checks_format),
		T(test_tuf_untrusted_initial_root_no_requests),
		T(test_tuf_attack_arbitrary_installation_unsigned_timestamp),
		T(test_tuf_attack_arbitrary_installation_unauthorised_targets_key),
		T(test_tuf_attack_arbitrary_installation_target_replaced),
		T(test_tuf_attack_rollback_timestamp),
		T(test_tuf_attack_rollback_snapshot_version),
		T(test_tuf_attack_rollback_targets_version),
		T(test_tuf_attack_rollback_role_removed),
		T(test_tuf_attack_rollback_root),
		T(test_tuf_attack_fast_forward_recovery),
		T(test_tuf_attack_freeze_expired_timestamp),
		T(test_tuf_attack_freeze_expired_snapshot),
		T(test_tuf_attack_freeze_expired_targets),
		T(test_tuf_attack_freeze_expired_root),
		T(test_tuf_attack_freeze_local_expiry_does_not_block),
		T(test_tuf_attack_endless_data_timestamp),
		T(test_tuf_attack_endless_data_snapshot_length),
		T(test_tuf_attack_endless_data_target),
		T(test_tuf_attack_slow_retrieval),
		T(test_tuf_attack_extraneous_dependencies),
		T(test_tuf_attack_mix_and_match_targets_version),
		T(test_tuf_attack_mix_and_match_snapshot_hash),
		T(test_tuf_attack_malicious_mirror),
		T(test_tuf_attack_key_compromise_below_threshold),
		T(test_tuf_attack_key_compromise_duplicate_signatures),
		T(test_tuf_attack_key_compromise_one_key_two_keyids),
		T(test_tuf_attack_wrong_software_path_not_delegated),
		T(test_tuf_attack_wrong_software_diamond),
		T(test_tuf_delegation_order_and_terminating),
		T(test_tuf_delegation_cycle),
		T(test_tuf_limit_root_rotations),
		T(test_tuf_limit_delegations),
		T(test_tuf_limit_root_length),
		T(test_tuf_limit_timestamp_length),
		T(test_tuf_limit_snapshot_length),
		T(test_tuf_limit_targets_length),
		T(test_tuf_limit_json_depth),
		T(test_tuf_hash_bins),
		T(test_tuf_foreach_target),
		cmocka_unit_test(test_tuf_hash_verifier_every_hash),
		T(test_tuf_lean_targets_agree),
		cmocka_unit_test(test_tuf_attack_duplicate_target_path),
	};
	return cmocka_run_group_tests_name("tuf", tests, NULL, NULL);
}
