/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-common.h"
#include "test-fixtures.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <zstd.h>

#include <otter/boot.h>
#include <otter/crypto.h>
#include <otter/slot.h>

#include "lib/boot/grubenv.h"
#include "lib/slot/wqueue.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"

#define SLOT_SIZE (1024u * 1024u)

struct fixture {
	char *dir;
	char path[8][512];
	otter_system *sys;
};

enum { P_A, P_B, P_GRUBENV, P_CMDLINE, P_DATA, P_CONF, P_STATE, P_LINK };

#define write_file tfx_write_file
#define read_all   tfx_read_all

static void set_cmdline(struct fixture *f, const char *bootname)
{
	tfx_set_cmdline(f->path[P_CMDLINE], bootname);
}

static void write_grubenv(struct fixture *f, const char *const *kv)
{
	tfx_write_grubenv(f->path[P_GRUBENV], kv);
}

static void load_system_typed(struct fixture *f, const char *b_device, const char *type)
{
	otter_error err = OTTER_ERROR_INIT;
	char conf[4096];

	snprintf(conf, sizeof(conf),
		 "[system]\ncompatible=test\nbootloader=grub\ndata-directory=%s\ncmdline=%s\n"
		 "[bootloader]\ngrubenv=%s\ntries=3\n"
		 "[slot.rootfs.0]\ndevice=%s\nbootname=A\ntype=%s\n"
		 "[slot.rootfs.1]\ndevice=%s\nbootname=B\ntype=%s\n",
		 f->path[P_DATA], f->path[P_CMDLINE], f->path[P_GRUBENV], f->path[P_A], type,
		 b_device, type);
	f->sys = otter_system_free(f->sys);
	assert_ok(otter_system_parse(&f->sys, "test.conf", (uint8_t *)conf, strlen(conf), &err));
}

static void load_system(struct fixture *f, const char *b_device)
{
	load_system_typed(f, b_device, "raw");
}

static int setup(void **state)
{
	static const char *const names[] = {"a.img", "b.img", "grubenv", "cmdline",
					    "data", "system.conf", "data/slots.json", "alias"};
	struct fixture *f = calloc(1, sizeof(*f));
	uint8_t *fill = malloc(SLOT_SIZE);

	f->dir = test_tmpdir();
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		snprintf(f->path[i], sizeof(f->path[i]), "%s/%s", f->dir, names[i]);
	/* The booted slot A holds a pattern that must never change. */
	memset(fill, 0xA5, SLOT_SIZE);
	write_file(f->path[P_A], fill, SLOT_SIZE);
	memset(fill, 0x5B, SLOT_SIZE);
	write_file(f->path[P_B], fill, SLOT_SIZE);
	free(fill);
	write_grubenv(f, NULL);
	set_cmdline(f, "A");
	load_system(f, f->path[P_B]);
	setenv("OTTER_TEST_TIME", "2026-01-02T03:04:05Z", 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	otter_system_free(f->sys);
	rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static uint8_t *make_image(size_t len, uint32_t seed)
{
	uint8_t *p = malloc(len ? len : 1);

	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
	return p;
}

static void sha256(const void *data, size_t len, uint8_t out[32])
{
	otter_error err = OTTER_ERROR_INIT;

	assert_ok(otter_hash_buf(OTTER_HASH_SHA256, data, len, out, &err));
}

static void assert_slot_a_untouched(struct fixture *f)
{
	size_t len;
	uint8_t *a = read_all(f->path[P_A], &len);

	assert_int_equal(len, SLOT_SIZE);
	for (size_t i = 0; i < len; i++)
		if (a[i] != 0xA5)
			fail_msg("booted slot changed at byte %zu", i);
	free(a);
}

static void assert_slot_b_holds(struct fixture *f, const uint8_t *img, size_t len)
{
	size_t blen;
	uint8_t *b = read_all(f->path[P_B], &blen);

	assert_int_equal(blen, SLOT_SIZE);
	assert_memory_equal(b, img, len);
	free(b);
}

static char *grubvar(struct fixture *f, const char *name)
{
	char *v = tfx_grubvar(f->path[P_GRUBENV], name);

	return v ? v : strdup("(unset)");
}

static void assert_grubvar(struct fixture *f, const char *name, const char *want)
{
	char *v = grubvar(f, name);

	assert_string_equal(v, want);
	free(v);
}

/* Write in uneven pieces, as a download loop would. */
static int feed(otter_slot_writer *w, const uint8_t *img, size_t len, otter_error *err)
{
	size_t off = 0, step = 1;

	while (off < len) {
		size_t n = len - off < step ? len - off : step;
		int r = otter_slot_writer_write(w, img + off, n, err);

		if (r < 0)
			return r;
		off += n;
		step = step * 3 + 7;
	}
	return 0;
}

static void test_slot_writer_raw(void **state)
{
	struct fixture *f = *state;
	otter_slot_writer_options opts = OTTER_SLOT_WRITER_OPTIONS_INIT;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_writer *w = NULL;
	otter_ab_status st;
	size_t len = 300000;
	uint8_t *img = make_image(len, 1), digest[32];

	sha256(img, len, digest);
	opts.image_version = "2.0";
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", len, digest, &opts, &err));
	assert_string_equal(otter_slot_name(otter_slot_writer_target(w)), "rootfs.1");
	assert_ok(feed(w, img, len, &err));
	assert_ok(otter_slot_writer_finish(w, &err));
	/* Finished writers refuse more work. */
	assert_err(otter_slot_writer_write(w, img, 1, &err), OTTER_E_STATE, &err, "finished");
	otter_error_clear(&err);
	assert_err(otter_slot_writer_finish(w, &err), OTTER_E_STATE, &err, "finished");
	otter_error_clear(&err);
	otter_slot_writer_free(w);
	assert_slot_b_holds(f, img, len);
	assert_slot_a_untouched(f);
	/* Written, not activated: B left the order when its first byte was written. */
	assert_grubvar(f, "ORDER", "A");
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_string_equal(st.booted, "A");
	assert_string_equal(st.primary, "A");
	assert_int_equal(st.update, OTTER_UPDATE_NONE);
	assert_true(st.slots[1].installed);
	assert_string_equal(st.slots[1].version, "2.0");
	assert_int_equal(st.slots[1].size, len);
	assert_string_equal(st.slots[1].installed_at, "2026-01-02T03:04:05Z");
	assert_int_equal(st.slots[1].health, OTTER_SLOT_BAD); /* not in the order yet */
	assert_ok(otter_slot_activate(f->sys, "B", &err));
	assert_grubvar(f, "ORDER", "B A");
	assert_grubvar(f, "B_OK", "1");
	assert_grubvar(f, "B_TRY", "0");
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_string_equal(st.primary, "B");
	assert_int_equal(st.update, OTTER_UPDATE_PENDING_REBOOT);
	assert_string_equal(st.activated, "B");
	assert_int_equal(st.slots[1].health, OTTER_SLOT_UNKNOWN);
	assert_int_equal(st.slots[1].tries_left, 3);
	/* Reboot into B (the bootloader counted one try), confirm. */
	write_grubenv(f, (const char *[]){"ORDER", "B A", "B_OK", "1", "B_TRY", "1", NULL});
	set_cmdline(f, "B");
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.update, OTTER_UPDATE_TRYING);
	assert_int_equal(st.slots[1].tries_left, 2);
	assert_true(st.slots[1].booted);
	assert_ok(otter_slot_mark_good(f->sys, NULL, &err));
	assert_grubvar(f, "B_TRY", "0");
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.update, OTTER_UPDATE_CONFIRMED);
	assert_int_equal(st.slots[1].health, OTTER_SLOT_GOOD);
	free(img);
}

static void test_slot_install_sizes(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	size_t sizes[] = {1, 17, 4095, 4096, 4097, SLOT_SIZE - 1, SLOT_SIZE};
	char img_path[600];

	snprintf(img_path, sizeof(img_path), "%s/image", f->dir);
	for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
		uint8_t *img = make_image(sizes[i], (uint32_t)i + 7), digest[32];

		sha256(img, sizes[i], digest);
		write_file(img_path, img, sizes[i]);
		write_grubenv(f, NULL);
		assert_ok(otter_slot_install(f->sys, "rootfs", img_path, sizes[i], digest, NULL,
					     &err));
		assert_slot_b_holds(f, img, sizes[i]);
		assert_grubvar(f, "ORDER", "B A");
		free(img);
	}
	assert_slot_a_untouched(f);
}

/* Flips one byte of the slot between the install's fsync and its read-back. */
static uint64_t corrupt_at;

static void flip_slot_byte(const char *device, bool header)
{
	int fd;
	uint8_t b;

	/* The body is read back before the header is written (which would undo a flip). */
	if (header != (corrupt_at < 4096))
		return;
	fd = open(device, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)corrupt_at), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)corrupt_at), 1);
	close(fd);
}

/* Storage that returns other bytes than it was given fails the install, in the body and in
 * the header (written last), raw and zstd; the slot never becomes "installed". */
static void test_slot_read_back_detects_corruption(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	size_t len = SLOT_SIZE - 1000;
	uint8_t *img = make_image(len, 21), digest[32];
	uint64_t where[] = {0, 10, 4095, 4096, 300001, SLOT_SIZE - 1001};
	otter_ab_status st;
	char img_path[600];

	snprintf(img_path, sizeof(img_path), "%s/image", f->dir);
	sha256(img, len, digest);
	write_file(img_path, img, len);
	slot_writer_test_before_read_back = flip_slot_byte;
	for (size_t i = 0; i < ELEMENTSOF(where); i++) {
		corrupt_at = where[i];
		write_grubenv(f, NULL);
		assert_err(otter_slot_install(f->sys, "rootfs", img_path, len, digest, NULL, &err),
			   OTTER_E_HASH, &err, "reads back differently");
		otter_error_clear(&err);
		assert_ok(otter_ab_status_get(f->sys, &st, &err));
		assert_false(st.slots[1].installed);
		assert_grubvar(f, "ORDER", "A");
	}
	/* zstd: the checksum is of the decompressed bytes that were written. */
	{
		size_t zcap = ZSTD_compressBound(len), zlen;
		uint8_t *z = malloc(zcap), zdigest[32];

		assert_non_null(z);
		zlen = ZSTD_compress(z, zcap, img, len, 3);
		assert_false(ZSTD_isError(zlen));
		sha256(z, zlen, zdigest);
		write_file(img_path, z, zlen);
		corrupt_at = 123457;
		assert_err(otter_slot_install(f->sys, "rootfs", img_path, zlen, zdigest, NULL, &err),
			   OTTER_E_HASH, &err, "reads back differently");
		otter_error_clear(&err);
		/* Untouched, the same install succeeds: the check is not always failing. */
		slot_writer_test_before_read_back = NULL;
		assert_ok(otter_slot_install(f->sys, "rootfs", img_path, zlen, zdigest, NULL, &err));
		assert_slot_b_holds(f, img, len);
		free(z);
	}
	slot_writer_test_before_read_back = NULL;
	write_file(img_path, img, len);
	assert_ok(otter_slot_install(f->sys, "rootfs", img_path, len, digest, NULL, &err));
	assert_slot_b_holds(f, img, len);
	free(img);
}

/* Flips one byte of the slot file in a range about to be read back (streaming read-back). */
static uint64_t wq_corrupt_at;
static unsigned wq_hook_calls;

static void wq_flip(int fd, uint64_t from, uint64_t to)
{
	uint8_t b;

	wq_hook_calls++;
	if (wq_corrupt_at < from || wq_corrupt_at >= to)
		return;
	assert_int_equal(pread(fd, &b, 1, (off_t)wq_corrupt_at), 1);
	b ^= 0x01;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)wq_corrupt_at), 1);
}

/* Pushes img through a queue into path, in odd pieces, the first 4 KiB as the header. */
static bool wq_run(const char *path, const uint8_t *img, size_t len)
{
	otter_error err = OTTER_ERROR_INIT;
	size_t off = 0, step = 1;
	slot_wqueue *q = NULL;
	bool same = false;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_ok(slot_wqueue_new(&q, fd, "test", NULL, 4096, &err));
	while (off < len) {
		size_t n = len - off < step ? len - off : step;

		if (off < 4096 && n > 4096 - off)
			n = 4096 - off; /* as the writer does: the header is never written here */
		assert_ok(slot_wqueue_push(q, img + off, n, off, off >= 4096, &err));
		off += n;
		step = step * 5 + 3;
		if (step > 3 * SLOT_WQ_BUF_SIZE)
			step = 1;
	}
	assert_ok(slot_wqueue_drain(q, &err));
	assert_ok(slot_wqueue_verify(q, len, &same, &err));
	slot_wqueue_free(q);
	close(fd);
	return same;
}

/*
 * The write-behind ring over many buffers and odd piece sizes: every byte lands where it was
 * pushed, header bytes are not written; the body is read back while it is written (a small
 * lag here), and a byte that changes on the device between write and read-back, anywhere,
 * is caught.
 */
static void test_slot_wqueue(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	size_t len = 5 * SLOT_WQ_BUF_SIZE + 12345;
	uint8_t *img = make_image(len, 33), *back = malloc(len);
	uint64_t where[] = {4096, 70000, 2 * SLOT_WQ_BUF_SIZE + 5, len - 1};
	slot_wqueue *q = NULL;
	char path[600];
	int fd;

	assert_non_null(back);
	snprintf(path, sizeof(path), "%s/wq", f->dir);
	slot_wqueue_test_lag = 64 * 1024;
	assert_true(wq_run(path, img, len));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, back, len, 0), (ssize_t)len);
	close(fd);
	for (size_t i = 0; i < 4096; i++)
		assert_int_equal(back[i], 0); /* not written */
	assert_memory_equal(back + 4096, img + 4096, len - 4096);

	slot_wqueue_test_before_read_back = wq_flip;
	for (size_t i = 0; i < ELEMENTSOF(where); i++) {
		wq_corrupt_at = where[i];
		wq_hook_calls = 0;
		assert_false(wq_run(path, img, len));
		assert_true(wq_hook_calls > 5); /* read back in many steps, while writing */
	}
	/* The same with the default lag: everything is read back at the end, still caught. */
	slot_wqueue_test_lag = 0;
	wq_corrupt_at = 300000;
	assert_false(wq_run(path, img, len));
	slot_wqueue_test_before_read_back = NULL;
	assert_true(wq_run(path, img, len));

	/* A failing write reaches the producer, named, and stops the thread's writes. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_ok(slot_wqueue_new(&q, fd, "test", NULL, 0, &err));
	{
		int r = 0;
		size_t off;

		for (off = 0; off < len && r == 0; off += 65536)
			r = slot_wqueue_push(q, img + off, len - off < 65536 ? len - off : 65536, off,
					     true, &err);
		if (r == 0)
			r = slot_wqueue_drain(q, &err);
		assert_err(r, OTTER_E_IO, &err, "slot test: write at offset 0");
	}
	q = slot_wqueue_free(q);
	close(fd);
	free(back);
	free(img);
}

/* The writer as a sink: wrong bytes, abort, the right ones from byte 0, finish, activate. */
static void test_slot_writer_sink_abort(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	size_t len = 3 * 4096 + 123;
	uint8_t *img = make_image(len, 21), *junk = make_image(len, 22), digest[32];
	otter_slot_writer *w = NULL;
	otter_sink sink;

	sha256(img, len, digest);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", len, digest, NULL, &err));
	otter_slot_writer_sink(w, &sink);
	assert_ok(sink.write(sink.userdata, junk, len - 1000, &err));
	assert_ok(sink.abort(sink.userdata, &err));
	/* Not finished: nothing can activate it in between. */
	assert_err(otter_slot_writer_activate(w, &err), OTTER_E_STATE, &err, "not finished");
	otter_error_clear(&err);
	assert_ok(sink.write(sink.userdata, img, 5000, &err));
	assert_ok(sink.write(sink.userdata, img + 5000, len - 5000, &err));
	assert_ok(sink.finish(sink.userdata, &err));
	assert_err(sink.abort(sink.userdata, &err), OTTER_E_STATE, &err, "finished");
	otter_error_clear(&err);
	assert_ok(otter_slot_writer_activate(w, &err));
	otter_slot_writer_free(w);
	assert_slot_b_holds(f, img, len);
	assert_grubvar(f, "ORDER", "B A");
	assert_slot_a_untouched(f);
	free(img);
	free(junk);
}

/* The boot environment and the bookkeeping, byte for byte. */
struct snapshot {
	uint8_t *env, *state;
	size_t env_len, state_len;
};

static void snap(struct fixture *f, struct snapshot *s)
{
	s->env = read_all(f->path[P_GRUBENV], &s->env_len);
	s->state = NULL;
	s->state_len = 0;
	if (access(f->path[P_STATE], F_OK) == 0)
		s->state = read_all(f->path[P_STATE], &s->state_len);
}

static void assert_unchanged(struct fixture *f, struct snapshot *s)
{
	struct snapshot now;

	snap(f, &now);
	assert_int_equal(now.env_len, s->env_len);
	assert_memory_equal(now.env, s->env, s->env_len);
	assert_int_equal(now.state_len, s->state_len);
	if (s->state_len)
		assert_memory_equal(now.state, s->state, s->state_len);
	free(now.env);
	free(now.state);
	free(s->env);
	free(s->state);
}

static void test_slot_refusals_before_writing(void **state)
{
	struct fixture *f = *state;
	otter_slot_writer_options opts = OTTER_SLOT_WRITER_OPTIONS_INIT;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_writer *w = NULL;
	struct snapshot s;
	uint8_t digest[32] = {0};
	uint8_t *big = make_image(SLOT_SIZE + 1, 3);
	size_t zlen;
	uint8_t *z;

	write_grubenv(f, (const char *[]){"ORDER", "A B", NULL});
	snap(f, &s);
	/* Larger than the slot, raw: refused at open. */
	opts.compression = OTTER_COMPRESSION_NONE;
	assert_err(otter_slot_writer_open(&w, f->sys, "rootfs", SLOT_SIZE + 1, digest, &opts,
					  &err),
		   OTTER_E_TOO_LARGE, &err, "larger than slot rootfs.1 (1048576 bytes)");
	/* Auto-detected raw: refused when detected, before any byte is written. */
	opts.compression = OTTER_COMPRESSION_AUTO;
	sha256(big, SLOT_SIZE + 1, digest);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", SLOT_SIZE + 1, digest, &opts, &err));
	assert_err(otter_slot_writer_write(w, big, SLOT_SIZE + 1, &err), OTTER_E_TOO_LARGE, &err,
		   "larger than slot");
	w = otter_slot_writer_free(w);
	/* zstd whose frame announces more than the slot holds. */
	zlen = ZSTD_compressBound(SLOT_SIZE + 1);
	z = malloc(zlen);
	zlen = ZSTD_compress(z, zlen, big, SLOT_SIZE + 1, 3);
	assert_false(ZSTD_isError(zlen));
	sha256(z, zlen, digest);
	otter_error_clear(&err);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", zlen, digest, &opts, &err));
	assert_err(otter_slot_writer_write(w, z, zlen, &err), OTTER_E_TOO_LARGE, &err,
		   "1048577 bytes uncompressed) is larger than slot");
	w = otter_slot_writer_free(w);
	/* Forced zstd on data that is not. */
	opts.compression = OTTER_COMPRESSION_ZSTD;
	otter_error_clear(&err);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", 100, digest, &opts, &err));
	assert_err(otter_slot_writer_write(w, big, 100, &err), OTTER_E_FORMAT, &err,
		   "does not start like a zstd stream");
	w = otter_slot_writer_free(w);
	/* Unknown class, length 0, unknown options, version too long. */
	opts.compression = OTTER_COMPRESSION_AUTO;
	otter_error_clear(&err);
	assert_err(otter_slot_writer_open(&w, f->sys, "kernel", 10, digest, &opts, &err),
		   OTTER_E_INVALID, &err, "no slot class 'kernel'");
	otter_error_clear(&err);
	assert_err(otter_slot_writer_open(&w, f->sys, "rootfs", 0, digest, &opts, &err),
		   OTTER_E_INVALID, &err, "length is 0");
	opts.version = 99;
	otter_error_clear(&err);
	assert_err(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, &opts, &err),
		   OTTER_E_INVALID, &err, "unknown options version 99 (this otter knows 1)");
	opts.version = OTTER_SLOT_WRITER_OPTIONS_VERSION;
	opts.compression = (otter_compression)7;
	otter_error_clear(&err);
	assert_err(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, &opts, &err),
		   OTTER_E_INVALID, &err, "unknown compression 7 (known: 0 to 2)");
	opts.compression = OTTER_COMPRESSION_AUTO;
	{
		char v[OTTER_SLOT_VERSION_MAX + 2];

		memset(v, 'v', sizeof(v) - 1);
		v[sizeof(v) - 1] = '\0';
		opts.image_version = v;
		otter_error_clear(&err);
		assert_err(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, &opts, &err),
			   OTTER_E_INVALID, &err, "version must be 1..128 bytes");
		opts.image_version = NULL;
	}
	otter_error_clear(&err);
	assert_err(otter_slot_install(f->sys, "rootfs", "/nonexistent/image", 10, digest, NULL,
				      &err),
		   OTTER_E_IO, &err, "open image");
	/* A boot environment otter cannot make sense of: refused before anything. */
	write_grubenv(f, (const char *[]){"ORDER", "A X", NULL});
	{
		struct snapshot s2;

		snap(f, &s2);
		otter_error_clear(&err);
		assert_err(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, &opts, &err),
			   OTTER_E_BOOT, &err, "ORDER names 'X'");
		assert_unchanged(f, &s2);
		write_grubenv(f, (const char *[]){"ORDER", "A B", NULL});
	}
	/* Not booted by our script: no slot is known to be inactive. */
	write_file(f->path[P_CMDLINE], "quiet", 5);
	otter_error_clear(&err);
	assert_err(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, &opts, &err),
		   OTTER_E_NOT_FOUND, &err, "cannot tell which slot is running");
	assert_null(w);
	assert_unchanged(f, &s);
	assert_slot_a_untouched(f);
	free(big);
	free(z);
}

static void test_slot_booted_device_alias(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_writer *w = NULL;
	uint8_t digest[32] = {0};
	struct snapshot s;

	/* rootfs.1's device is another name of the booted rootfs.0's. */
	assert_int_equal(symlink(f->path[P_A], f->path[P_LINK]), 0);
	load_system(f, f->path[P_LINK]);
	snap(f, &s);
	assert_err(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, NULL, &err),
		   OTTER_E_STATE, &err, "is the device of the booted slot rootfs.0");
	assert_unchanged(f, &s);
	/* Booted B: the target is A. */
	load_system(f, f->path[P_B]);
	set_cmdline(f, "B");
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, NULL, &err));
	assert_string_equal(otter_slot_name(otter_slot_writer_target(w)), "rootfs.0");
	otter_slot_writer_free(w);
}

static void test_slot_bad_streams(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_writer *w = NULL;
	size_t len = 100000;
	uint8_t *img = make_image(len, 9), digest[32], wrong[32];
	struct snapshot s;

	sha256(img, len, digest);
	memcpy(wrong, digest, 32);
	wrong[31] ^= 1;
	/* Install over a slot already marked bad: even a failed one leaves the boot
	 * environment byte-identical (nothing to take out of the order). */
	write_grubenv(f, (const char *[]){"ORDER", "A", "B_OK", "0", "B_TRY", "0", NULL});
	snap(f, &s);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", len, wrong, NULL, &err));
	assert_ok(feed(w, img, len, &err));
	assert_err(otter_slot_writer_finish(w, &err), OTTER_E_HASH, &err, "SHA-256 mismatch");
	w = otter_slot_writer_free(w);
	{
		struct snapshot now;
		snap(f, &now);
		assert_int_equal(now.env_len, s.env_len);
		assert_memory_equal(now.env, s.env, s.env_len);
		free(now.env);
		free(now.state);
		free(s.env);
		free(s.state);
	}
	/* The slot is recorded as incomplete and cannot be activated. */
	otter_error_clear(&err);
	assert_err(otter_slot_activate(f->sys, "B", &err), OTTER_E_STATE, &err,
		   "incomplete install");
	assert_grubvar(f, "ORDER", "A");
	/* Truncated. */
	otter_error_clear(&err);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", len, digest, NULL, &err));
	assert_ok(feed(w, img, len - 1, &err));
	assert_err(otter_slot_writer_finish(w, &err), OTTER_E_HASH, &err,
		   "truncated: 99999 of 100000 bytes");
	w = otter_slot_writer_free(w);
	/* Longer than announced. */
	otter_error_clear(&err);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", len - 1, digest, NULL, &err));
	assert_err(feed(w, img, len, &err), OTTER_E_TOO_LARGE, &err,
		   "longer than the expected 99999 bytes");
	otter_error_clear(&err);
	assert_err(otter_slot_writer_write(w, img, 1, &err), OTTER_E_STATE, &err, "failed");
	w = otter_slot_writer_free(w);
	/* A writer freed half-way leaves the slot incomplete too. */
	otter_error_clear(&err);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", len, digest, NULL, &err));
	assert_ok(feed(w, img, len / 2, &err));
	w = otter_slot_writer_free(w);
	assert_err(otter_slot_activate(f->sys, "B", &err), OTTER_E_STATE, &err,
		   "incomplete install");
	/* A retry completes and activates. */
	otter_error_clear(&err);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", len, digest, NULL, &err));
	assert_ok(feed(w, img, len, &err));
	assert_ok(otter_slot_writer_finish(w, &err));
	w = otter_slot_writer_free(w);
	assert_ok(otter_slot_activate(f->sys, "B", &err));
	assert_grubvar(f, "ORDER", "B A");
	assert_slot_b_holds(f, img, len);
	assert_slot_a_untouched(f);
	free(img);
}

static void test_slot_bad_stream_takes_target_out_of_order(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_writer *w = NULL;
	size_t len = 100000;
	uint8_t *img = make_image(len, 11), wrong[32] = {0};

	/* B was a bootable fallback; once its bytes are overwritten it is not any more. */
	write_grubenv(f, (const char *[]){"ORDER", "A B", "saved_entry", "x", NULL});
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", len, wrong, NULL, &err));
	assert_ok(feed(w, img, len, &err));
	assert_err(otter_slot_writer_finish(w, &err), OTTER_E_HASH, &err, "mismatch");
	otter_slot_writer_free(w);
	assert_grubvar(f, "ORDER", "A");
	assert_grubvar(f, "B_OK", "0");
	assert_grubvar(f, "A_OK", "(unset)"); /* the booted slot's entries are untouched */
	assert_grubvar(f, "saved_entry", "x");
	assert_slot_a_untouched(f);
	free(img);
}

static void test_slot_zstd(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_writer *w = NULL;
	size_t len = 700000, zlen;
	uint8_t *img = make_image(len, 5), *z, digest[32];
	ZSTD_CCtx *cctx = ZSTD_createCCtx();

	/* Half random, half zeros: compresses, and spans several decoder output blocks. */
	memset(img + len / 2, 0, len / 2);
	zlen = ZSTD_compressBound(len);
	z = malloc(zlen);
	/* Without the content size in the frame header (a streaming compressor's output). */
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
	zlen = ZSTD_compress2(cctx, z, zlen, img, len);
	assert_false(ZSTD_isError(zlen));
	ZSTD_freeCCtx(cctx);
	sha256(z, zlen, digest);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", zlen, digest, NULL, &err));
	assert_ok(feed(w, z, zlen, &err));
	assert_ok(otter_slot_writer_finish(w, &err));
	w = otter_slot_writer_free(w);
	assert_slot_b_holds(f, img, len);
	/* Cut inside the frame: the hash and length are the cut stream's, so only the
	 * decoder can tell. */
	sha256(z, zlen - 10, digest);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", zlen - 10, digest, NULL, &err));
	assert_ok(feed(w, z, zlen - 10, &err));
	assert_err(otter_slot_writer_finish(w, &err), OTTER_E_FORMAT, &err,
		   "ends inside a frame");
	w = otter_slot_writer_free(w);
	/* A frame header with its reserved bit set. */
	z[4] |= 0x08;
	sha256(z, zlen, digest);
	otter_error_clear(&err);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", zlen, digest, NULL, &err));
	assert_err(feed(w, z, zlen, &err), OTTER_E_FORMAT, &err, "zstd:");
	w = otter_slot_writer_free(w);
	/* A decompressed image larger than the slot, without a content size. */
	{
		uint8_t *zeros = calloc(1, SLOT_SIZE + 5);
		size_t blen = ZSTD_compressBound(SLOT_SIZE + 5);
		uint8_t *bz = malloc(blen);
		ZSTD_CCtx *c2 = ZSTD_createCCtx();

		ZSTD_CCtx_setParameter(c2, ZSTD_c_contentSizeFlag, 0);
		blen = ZSTD_compress2(c2, bz, blen, zeros, SLOT_SIZE + 5);
		ZSTD_freeCCtx(c2);
		sha256(bz, blen, digest);
		otter_error_clear(&err);
		assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", blen, digest, NULL, &err));
		assert_err(feed(w, bz, blen, &err), OTTER_E_TOO_LARGE, &err,
			   "larger than slot rootfs.1");
		w = otter_slot_writer_free(w);
		free(zeros);
		free(bz);
	}
	assert_slot_a_untouched(f);
	free(img);
	free(z);
}

static void test_slot_rollback_detection(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_ab_status st;
	size_t len;
	uint8_t *data;
	json_t *j;
	size_t n_rollbacks = 0, i;
	json_t *e;

	assert_ok(otter_slot_activate(f->sys, "B", &err));
	/* B was tried three times and never confirmed; the bootloader fell back to A. */
	write_grubenv(f, (const char *[]){"ORDER", "B A", "B_OK", "1", "B_TRY", "3", NULL});
	set_cmdline(f, "A");
	/* The getter only reads: nothing is recorded until the boot check. */
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.update, OTTER_UPDATE_PENDING_REBOOT);
	assert_grubvar(f, "ORDER", "B A");
	assert_ok(otter_slot_boot_check(f->sys, &err));
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.update, OTTER_UPDATE_ROLLED_BACK);
	assert_string_equal(st.rollback_failed, "B");
	assert_string_equal(st.rollback_at, "2026-01-02T03:04:05Z");
	assert_string_equal(st.primary, "A");
	assert_int_equal(st.slots[1].health, OTTER_SLOT_BAD);
	assert_grubvar(f, "ORDER", "A");
	assert_grubvar(f, "B_OK", "0");
	/* Checking again reports the same, and records nothing new. */
	assert_ok(otter_slot_boot_check(f->sys, &err));
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.update, OTTER_UPDATE_ROLLED_BACK);
	data = read_all(f->path[P_STATE], &len);
	j = json_loadb((char *)data, len, 0, NULL);
	json_array_foreach(json_object_get(j, "events"), i, e)
		if (strcmp(json_string_value(json_object_get(e, "event")), "rolled-back") == 0)
			n_rollbacks++;
	assert_int_equal(n_rollbacks, 1);
	json_decref(j);
	free(data);
	/* A crash between recording and the environment write: the next call finishes it
	 * without a second event. */
	write_grubenv(f, (const char *[]){"ORDER", "B A", "B_OK", "1", "B_TRY", "3", NULL});
	assert_ok(otter_slot_boot_check(f->sys, &err));
	assert_grubvar(f, "ORDER", "A");
	data = read_all(f->path[P_STATE], &len);
	j = json_loadb((char *)data, len, 0, NULL);
	n_rollbacks = 0;
	json_array_foreach(json_object_get(j, "events"), i, e)
		if (strcmp(json_string_value(json_object_get(e, "event")), "rolled-back") == 0)
			n_rollbacks++;
	assert_int_equal(n_rollbacks, 1);
	json_decref(j);
	free(data);
	/* The next activation ends the rolled-back report. */
	assert_ok(otter_slot_activate(f->sys, "B", &err));
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.update, OTTER_UPDATE_PENDING_REBOOT);
	/* Booted by something else: no rollback decision at all. */
	write_file(f->path[P_CMDLINE], "quiet", 5);
	write_grubenv(f, (const char *[]){"ORDER", "B A", "B_TRY", "3", NULL});
	assert_ok(otter_slot_boot_check(f->sys, &err));
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_null(st.booted);
	assert_int_equal(st.update, OTTER_UPDATE_PENDING_REBOOT);
	assert_grubvar(f, "ORDER", "B A");
}

static void test_slot_marks(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_ab_status st;

	assert_ok(otter_slot_activate(f->sys, "B", &err));
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.update, OTTER_UPDATE_PENDING_REBOOT);
	/* Marking the activated slot bad cancels the update. */
	assert_ok(otter_slot_mark_bad(f->sys, "B", &err));
	assert_grubvar(f, "ORDER", "A");
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.slots[1].health, OTTER_SLOT_BAD);
	assert_int_equal(st.update, OTTER_UPDATE_NONE);
	assert_null(st.activated);
	assert_ok(otter_slot_mark_good(f->sys, "A", &err));
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.slots[0].health, OTTER_SLOT_GOOD);
	/* mark-bad without a name means the booted slot. */
	assert_ok(otter_slot_mark_bad(f->sys, NULL, &err));
	assert_grubvar(f, "ORDER", "");
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_null(st.primary);
	assert_err(otter_slot_mark_good(f->sys, "C", &err), OTTER_E_INVALID, &err,
		   "'C' is not a configured bootname");
	otter_error_clear(&err);
	assert_err(otter_slot_activate(f->sys, "C", &err), OTTER_E_INVALID, &err, "'C'");
	otter_error_clear(&err);
	assert_err(otter_slot_mark_bad(f->sys, "C", &err), OTTER_E_INVALID, &err, "'C'");
	write_file(f->path[P_CMDLINE], "quiet", 5);
	otter_error_clear(&err);
	assert_err(otter_slot_mark_good(f->sys, NULL, &err), OTTER_E_NOT_FOUND, &err,
		   "which slot is booted");
	assert_string_equal(otter_slot_health_name(OTTER_SLOT_UNKNOWN), "unknown");
	/* The event log keeps the newest 50. */
	for (int i = 0; i < 40; i++) {
		assert_ok(otter_slot_mark_bad(f->sys, "B", &err));
		assert_ok(otter_slot_mark_good(f->sys, "B", &err));
	}
	{
		size_t len;
		uint8_t *data = read_all(f->path[P_STATE], &len);
		json_t *j = json_loadb((char *)data, len, 0, NULL);
		json_t *ev = json_object_get(j, "events");

		assert_int_equal(json_array_size(ev), 50);
		assert_string_equal(
			json_string_value(json_object_get(json_array_get(ev, 49), "event")),
			"confirmed");
		json_decref(j);
		free(data);
	}
	assert_string_equal(otter_update_state_name(OTTER_UPDATE_ROLLED_BACK), "rolled-back");
	assert_string_equal(otter_update_state_name(OTTER_UPDATE_NONE), "none");
}

static void test_slot_damaged_bookkeeping(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"not json",
		"{}",
		"{\"format\": 2}",
		"{\"format\": 1, \"slots\": []}",
		"{\"format\": 1, \"slots\": {\"rootfs.1\": {\"status\": \"weird\"}}}",
		"{\"format\": 1, \"slots\": {\"rootfs.1\": {\"sha256\": \"xyz\"}}}",
		"{\"format\": 1, \"slots\": {\"rootfs.1\": {\"size\": -1}}}",
		"{\"format\": 1, \"activated\": \"B-1\"}",
		"{\"format\": 1, \"activated-at\": \"yesterday\"}",
		"{\"format\": 1, \"confirmed\": {\"A\": 1}}",
		"{\"format\": 1, \"rolled-back\": {\"failed\": 3}}",
		"{\"format\": 1, \"format\": 1}",
		"{\"format\": 1, \"slots\": {\"rootfs.1\": 7}}",
		"{\"format\": 1, \"events\": {}}",
	};
	otter_error err;
	otter_ab_status st;

	assert_int_equal(mkdir(f->path[P_DATA], 0755), 0);
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		write_file(f->path[P_STATE], bad[i], strlen(bad[i]));
		otter_error_clear(&err);
		assert_true(otter_ab_status_get(f->sys, &st, &err) < 0);
		assert_true(err.code == OTTER_E_FORMAT || err.code == OTTER_E_INVALID);
		test_check_msg(err.msg, "is damaged (move it away");
	}
	/* Counts past their caps: 33 slots, 51 events. */
	{
		char buf[8192];
		size_t off = (size_t)sprintf(buf, "{\"format\": 1, \"slots\": {");

		for (int i = 0; i < 33; i++)
			off += (size_t)sprintf(buf + off, "%s\"s%d\": {}", i ? "," : "", i);
		sprintf(buf + off, "}}");
		write_file(f->path[P_STATE], buf, strlen(buf));
		otter_error_clear(&err);
		assert_err(otter_ab_status_get(f->sys, &st, &err), OTTER_E_FORMAT, &err,
			   "33 slots, more than 32");
		off = (size_t)sprintf(buf, "{\"format\": 1, \"events\": [");
		for (int i = 0; i < 51; i++)
			off += (size_t)sprintf(buf + off, "%s{}", i ? "," : "");
		sprintf(buf + off, "]}");
		write_file(f->path[P_STATE], buf, strlen(buf));
		otter_error_clear(&err);
		assert_err(otter_ab_status_get(f->sys, &st, &err), OTTER_E_FORMAT, &err,
			   "more than 50 events");
	}
	/* Too large. */
	{
		char *big = malloc(300000);
		memset(big, ' ', 300000);
		write_file(f->path[P_STATE], big, 300000);
		free(big);
		otter_error_clear(&err);
		assert_err(otter_ab_status_get(f->sys, &st, &err), OTTER_E_TOO_LARGE, &err,
			   "more than the limit");
	}
}

static void test_slot_reset_bookkeeping(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_ab_status st;
	char aside[600];
	size_t len;
	uint8_t *data;

	assert_int_equal(mkdir(f->path[P_DATA], 0755), 0);
	write_file(f->path[P_STATE], "damaged{", 8);
	assert_true(otter_ab_status_get(f->sys, &st, &err) < 0);
	otter_error_clear(&err);
	assert_ok(otter_slot_reset_bookkeeping(f->sys, "test reason", &err));
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	snprintf(aside, sizeof(aside), "%s.damaged", f->path[P_STATE]);
	data = read_all(aside, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(data, "damaged{", 8);
	free(data);
	data = read_all(f->path[P_STATE], &len);
	assert_non_null(strstr((char *)data, "bookkeeping-reset"));
	assert_non_null(strstr((char *)data, "test reason"));
	free(data);
	/* Without a file it just starts one. */
	assert_int_equal(unlink(f->path[P_STATE]), 0);
	assert_ok(otter_slot_reset_bookkeeping(f->sys, "again", &err));
	assert_err(otter_slot_reset_bookkeeping(NULL, "x", &err), OTTER_E_INVALID, &err, NULL);
}

static void test_slot_ext4_type(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	size_t len = 200000;
	uint8_t *img = make_image(len, 17), digest[32];
	uint8_t *b_before;
	size_t blen;
	char img_path[600];
	struct snapshot s;

	load_system_typed(f, f->path[P_B], "ext4");
	snprintf(img_path, sizeof(img_path), "%s/image", f->dir);
	b_before = read_all(f->path[P_B], &blen);
	/* Not an ext4 image (no 0xEF53 at 1080): refused before anything changes. */
	img[1080] = 0x00;
	sha256(img, len, digest);
	write_file(img_path, img, len);
	snap(f, &s);
	assert_err(otter_slot_install(f->sys, "rootfs", img_path, len, digest, NULL, &err),
		   OTTER_E_FORMAT, &err, "type=ext4, but the image has no ext4 superblock");
	assert_unchanged(f, &s);
	{
		size_t n;
		uint8_t *b = read_all(f->path[P_B], &n);
		assert_memory_equal(b, b_before, blen);
		free(b);
	}
	/* Too short to hold a superblock. */
	sha256(img, 1000, digest);
	write_file(img_path, img, 1000);
	otter_error_clear(&err);
	assert_err(otter_slot_install(f->sys, "rootfs", img_path, 1000, digest, NULL, &err),
		   OTTER_E_FORMAT, &err, "no ext4 superblock");
	/* With the magic it goes in. */
	img[1080] = 0x53;
	img[1081] = 0xef;
	sha256(img, len, digest);
	write_file(img_path, img, len);
	assert_ok(otter_slot_install(f->sys, "rootfs", img_path, len, digest, NULL, &err));
	assert_slot_b_holds(f, img, len);
	free(b_before);
	free(img);
}

static void test_slot_lock(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_writer *w = NULL, *w2 = NULL;
	otter_ab_status st;
	uint8_t digest[32] = {0};
	char lock_path[600];
	int fd;

	/* Another process (here: another open file description) holds the lock. */
	assert_int_equal(mkdir(f->path[P_DATA], 0755), 0);
	snprintf(lock_path, sizeof(lock_path), "%s/lock", f->path[P_DATA]);
	fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_err(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, NULL, &err),
		   OTTER_E_BUSY, &err, "another otter process is changing the slots");
	otter_error_clear(&err);
	assert_err(otter_slot_activate(f->sys, "B", &err), OTTER_E_BUSY, &err, "activate B");
	otter_error_clear(&err);
	assert_err(otter_slot_mark_good(f->sys, NULL, &err), OTTER_E_BUSY, &err, "mark-good");
	otter_error_clear(&err);
	assert_err(otter_slot_mark_bad(f->sys, "B", &err), OTTER_E_BUSY, &err, "mark-bad");
	/* The boot check decides nothing while the lock is held; status still reports. */
	write_grubenv(f, (const char *[]){"ORDER", "B A", "B_TRY", "3", NULL});
	assert_ok(otter_slot_boot_check(f->sys, &err));
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.update, OTTER_UPDATE_NONE);
	assert_grubvar(f, "ORDER", "B A");
	close(fd);
	assert_ok(otter_slot_boot_check(f->sys, &err));
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.update, OTTER_UPDATE_ROLLED_BACK);
	assert_grubvar(f, "ORDER", "A");
	/* One writer at a time, and activation waits for the writer to be freed. */
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, NULL, &err));
	assert_err(otter_slot_writer_open(&w2, f->sys, "rootfs", 10, digest, NULL, &err),
		   OTTER_E_BUSY, &err, NULL);
	otter_error_clear(&err);
	assert_err(otter_slot_activate(f->sys, "A", &err), OTTER_E_BUSY, &err, NULL);
	w = otter_slot_writer_free(w);
	assert_ok(otter_slot_activate(f->sys, "A", &err));
}

static void test_slot_odd_devices_and_arguments(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_writer *w = NULL;
	uint8_t digest[32] = {0};
	otter_ab_status st;
	char missing[600];

	/* The target device does not exist. */
	snprintf(missing, sizeof(missing), "%s/no-such-device", f->dir);
	load_system(f, missing);
	assert_err(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, NULL, &err),
		   OTTER_E_IO, &err, "slot rootfs.1: device");
	/* A character device or a directory is not a slot. */
	load_system(f, "/dev/null");
	otter_error_clear(&err);
	assert_err(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, NULL, &err),
		   OTTER_E_INVALID, &err, "neither a block device nor a regular file");
	load_system(f, f->dir);
	otter_error_clear(&err);
	assert_true(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, NULL, &err) < 0);
	assert_null(w);
	/* NULL arguments everywhere are errors, not crashes. */
	load_system(f, f->path[P_B]);
	otter_error_clear(&err);
	assert_err(otter_slot_writer_open(NULL, f->sys, "rootfs", 10, digest, NULL, &err),
		   OTTER_E_INVALID, &err, NULL);
	otter_error_clear(&err);
	assert_err(otter_slot_writer_open(&w, f->sys, NULL, 10, digest, NULL, &err),
		   OTTER_E_INVALID, &err, NULL);
	otter_error_clear(&err);
	assert_err(otter_slot_writer_write(NULL, digest, 1, &err), OTTER_E_INVALID, &err,
		   "install: invalid argument: w is NULL");
	otter_error_clear(&err);
	assert_err(otter_slot_writer_finish(NULL, &err), OTTER_E_INVALID, &err, NULL);
	otter_error_clear(&err);
	assert_err(otter_slot_writer_stream(NULL, "x", &err), OTTER_E_INVALID, &err, NULL);
	otter_error_clear(&err);
	assert_err(otter_slot_install(f->sys, "rootfs", NULL, 10, digest, NULL, &err),
		   OTTER_E_INVALID, &err, "no image given");
	otter_error_clear(&err);
	assert_err(otter_slot_activate(f->sys, NULL, &err), OTTER_E_INVALID, &err,
		   "activate: invalid argument: bootname is NULL");
	otter_error_clear(&err);
	assert_err(otter_ab_status_get(NULL, &st, &err), OTTER_E_INVALID, &err,
		   "status: invalid argument: sys is NULL");
	otter_error_clear(&err);
	assert_err(otter_slot_mark_good(NULL, NULL, &err), OTTER_E_INVALID, &err, NULL);
	otter_error_clear(&err);
	assert_err(otter_slot_mark_bad(NULL, NULL, &err), OTTER_E_INVALID, &err, NULL);
	assert_null(otter_slot_writer_target(NULL));
	assert_null(otter_slot_writer_free(NULL));
	/* A writer given a missing source file. */
	otter_error_clear(&err);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", 10, digest, NULL, &err));
	assert_err(otter_slot_writer_stream(w, missing, &err), OTTER_E_IO, &err, "open image");
	otter_slot_writer_free(w);
}

static void test_slot_alloc_failures(void **state)
{
	struct fixture *f = *state;
	otter_error err;
	size_t len = 5000;
	uint8_t *img = make_image(len, 13), digest[32];
	char img_path[600];
	unsigned long n;

	sha256(img, len, digest);
	snprintf(img_path, sizeof(img_path), "%s/image", f->dir);
	write_file(img_path, img, len);
	otter_alloc_fail_at(0);
	assert_ok(otter_slot_install(f->sys, "rootfs", img_path, len, digest, NULL, &err));
	n = otter_alloc_count();
	for (unsigned long k = 1; k <= n; k++) {
		int r;

		write_grubenv(f, NULL);
		otter_error_clear(&err);
		otter_alloc_fail_at(k);
		r = otter_slot_install(f->sys, "rootfs", img_path, len, digest, NULL, &err);
		otter_alloc_fail_at(0);
		if (r != 0 && r != OTTER_E_NOMEM)
			fail_msg("allocation %lu: %d %s", k, r, err.msg);
		/* Never activated unless it all worked. */
		if (r != 0) {
			char *order = grubvar(f, "ORDER");
			assert_true(strcmp(order, "B A") != 0 || k > n / 2);
			free(order);
		}
	}
	assert_slot_a_untouched(f);
	free(img);
}

/* ---- an update's lifecycle (lifecycle.c) ---- */

static size_t count_events(struct fixture *f, const char *name)
{
	size_t len, i, n = 0;
	uint8_t *data = read_all(f->path[P_STATE], &len);
	json_t *j = json_loadb((char *)data, len, 0, NULL), *e;

	assert_non_null(j);
	json_array_foreach(json_object_get(j, "events"), i, e)
		if (strcmp(json_string_value(json_object_get(e, "event")), name) == 0)
			n++;
	json_decref(j);
	free(data);
	return n;
}

static otter_update_state lifecycle(struct fixture *f, const char *bootname,
				    otter_slot_lifecycle_info *lc)
{
	otter_error err = OTTER_ERROR_INIT;

	assert_ok(otter_slot_lifecycle(f->sys, bootname, lc, &err));
	return lc->state;
}

/* Writes release bytes into B and verifies them, without activating. */
static void write_b(struct fixture *f, uint32_t seed)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_writer *w = NULL;
	size_t len = 20000;
	uint8_t *img = make_image(len, seed), digest[32];

	sha256(img, len, digest);
	assert_ok(otter_slot_writer_open(&w, f->sys, "rootfs", len, digest, NULL, &err));
	assert_ok(feed(w, img, len, &err));
	assert_ok(otter_slot_writer_finish(w, &err));
	otter_slot_writer_free(w);
	free(img);
}

/* The bootloader boots bootname, counting one try (GRUB: <name>_TRY up). */
static void boot_into(struct fixture *f, const char *order, const char *bootname)
{
	char try_var[16];

	snprintf(try_var, sizeof(try_var), "%s_TRY", bootname);
	write_grubenv(f, (const char *[]){"ORDER", order, "A_OK", "1", "B_OK", "1", try_var, "1",
					  NULL});
	set_cmdline(f, bootname);
}

/*
 * Runs op in a child process that dies at crash point `point` (OTTER_TEST_CRASHPOINT), as
 * a power cut there would stop it; asserts that it did die there.
 */
static void cut_at(struct fixture *f, const char *point,
		   int (*op)(const otter_system *, const char *, otter_error *), const char *bn)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		otter_error err = OTTER_ERROR_INIT;

		setenv("OTTER_TEST_CRASHPOINT", point, 1);
		(void)op(f->sys, bn, &err);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 99);
}

/* pending -> trying -> confirmed, each read from one getter that writes nothing. */
static void test_slot_lifecycle_confirm(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_lifecycle_info lc;
	otter_ab_status st;
	uint8_t *env0, *env1, *st0, *st1;
	size_t env0_len, env1_len, st0_len, st1_len;

	/* Nothing installed yet: no update, for either question. */
	assert_int_equal(lifecycle(f, NULL, &lc), OTTER_UPDATE_NONE);
	assert_null(lc.bootname);
	assert_string_equal(lc.booted, "A");
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_NONE);
	assert_string_equal(lc.bootname, "B");
	assert_false(lc.running);
	/* Written and verified, not activated: still none. */
	write_b(f, 21);
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_NONE);
	assert_ok(otter_slot_activate(f->sys, "B", &err));
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_PENDING_REBOOT);
	assert_int_equal(lifecycle(f, NULL, &lc), OTTER_UPDATE_PENDING_REBOOT);
	assert_string_equal(lc.bootname, "B");
	assert_false(lc.running);
	/* Confirming is for software that runs: refused, nothing written. */
	env0 = read_all(f->path[P_GRUBENV], &env0_len);
	st0 = read_all(f->path[P_STATE], &st0_len);
	assert_err(otter_slot_confirm(f->sys, "B", &err), OTTER_E_STATE, &err,
		   "slot B is not the booted one (A is)");
	otter_error_clear(&err);
	assert_err(otter_slot_roll_back(f->sys, "B", &err), OTTER_E_STATE, &err,
		   "roll back B: slot B is not the booted one");
	otter_error_clear(&err);
	/* The getters only read, however often they are called. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_PENDING_REBOOT);
		assert_ok(otter_ab_status_get(f->sys, &st, &err));
	}
	env1 = read_all(f->path[P_GRUBENV], &env1_len);
	st1 = read_all(f->path[P_STATE], &st1_len);
	assert_int_equal(env0_len, env1_len);
	assert_memory_equal(env0, env1, env0_len);
	assert_int_equal(st0_len, st1_len);
	assert_memory_equal(st0, st1, st0_len);
	free(env0);
	free(env1);
	free(st0);
	free(st1);
	/* Booted into B: trying; the other bootname is asked about as none. */
	boot_into(f, "B A", "B");
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_TRYING);
	assert_true(lc.running);
	assert_string_equal(lc.booted, "B");
	assert_int_equal(lifecycle(f, "A", &lc), OTTER_UPDATE_NONE);
	assert_err(otter_slot_confirm(f->sys, "A", &err), OTTER_E_STATE, &err, "confirm A");
	otter_error_clear(&err);
	assert_grubvar(f, "B_TRY", "1");
	assert_ok(otter_slot_confirm(f->sys, "B", &err));
	assert_grubvar(f, "B_TRY", "0");
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_CONFIRMED);
	assert_int_equal(lifecycle(f, NULL, &lc), OTTER_UPDATE_CONFIRMED);
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.update, OTTER_UPDATE_CONFIRMED);
	/* Confirming again (every boot does) records nothing new; NULL is the booted one. */
	assert_ok(otter_slot_confirm(f->sys, NULL, &err));
	assert_int_equal(count_events(f, "confirmed"), 1);
	/* Not started by an otter boot script: nothing runs, as far as slot knows. */
	write_file(f->path[P_CMDLINE], "quiet", 5);
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_PENDING_REBOOT);
	assert_null(lc.booted);
	assert_false(lc.running);
	assert_err(otter_slot_confirm(f->sys, "B", &err), OTTER_E_NOT_FOUND, &err,
		   "which slot is booted");
	otter_error_clear(&err);
	assert_err(otter_slot_lifecycle(f->sys, "C", &lc, &err), OTTER_E_INVALID, &err,
		   "'C' is not a configured bootname");
	otter_error_clear(&err);
	assert_err(otter_slot_lifecycle(NULL, "B", &lc, &err), OTTER_E_INVALID, &err, "NULL");
	otter_error_clear(&err);
	assert_err(otter_slot_lifecycle(f->sys, "B", NULL, &err), OTTER_E_INVALID, &err, NULL);
}

/* trying -> rolled back (the agent's verdict), then the reboot into the previous slot. */
static void test_slot_lifecycle_roll_back(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_lifecycle_info lc;
	otter_ab_status st;

	write_b(f, 22);
	assert_ok(otter_slot_activate(f->sys, "B", &err));
	boot_into(f, "B A", "B");
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_TRYING);
	assert_ok(otter_slot_roll_back(f->sys, "B", &err));
	assert_grubvar(f, "ORDER", "A");
	/* Rolled back, still running the failed software until the reboot. */
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_ROLLED_BACK);
	assert_true(lc.running);
	assert_ok(otter_ab_status_get(f->sys, &st, &err));
	assert_int_equal(st.update, OTTER_UPDATE_ROLLED_BACK);
	assert_string_equal(st.rollback_failed, "B");
	assert_null(st.activated);
	assert_int_equal(count_events(f, "rolled-back"), 1);
	/* Idempotent: asked again (a crash before the reboot), nothing new is recorded. */
	assert_ok(otter_slot_roll_back(f->sys, NULL, &err));
	assert_int_equal(count_events(f, "rolled-back"), 1);
	assert_int_equal(count_events(f, "marked-bad"), 1);
	/* Confirming the failed slot after the verdict only resets its tries: it stays out of
	 * the order, and the next boot goes back all the same. */
	assert_ok(otter_slot_confirm(f->sys, "B", &err));
	assert_grubvar(f, "ORDER", "A");
	/* After the reboot: the previous software runs; the report stays until the next
	 * activation. */
	write_grubenv(f, (const char *[]){"ORDER", "A", "A_OK", "1", NULL});
	set_cmdline(f, "A");
	assert_ok(otter_slot_boot_check(f->sys, &err));
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_ROLLED_BACK);
	assert_false(lc.running);
	assert_int_equal(lifecycle(f, NULL, &lc), OTTER_UPDATE_ROLLED_BACK);
	assert_string_equal(lc.bootname, "B");
	assert_err(otter_slot_roll_back(f->sys, "B", &err), OTTER_E_STATE, &err, NULL);
	otter_error_clear(&err);
	/* Installing into B again keeps the report; its activation ends it. */
	write_b(f, 23);
	assert_int_equal(lifecycle(f, NULL, &lc), OTTER_UPDATE_ROLLED_BACK);
	assert_ok(otter_slot_activate(f->sys, "B", &err));
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_PENDING_REBOOT);
	assert_int_equal(lifecycle(f, NULL, &lc), OTTER_UPDATE_PENDING_REBOOT);
}

/* The bootloader falls back by itself; the environment loses an activation. */
static void test_slot_lifecycle_fallback_and_lost(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_lifecycle_info lc;

	write_b(f, 24);
	assert_ok(otter_slot_activate(f->sys, "B", &err));
	/* Tried three times, never confirmed, back on A. Until the boot check records it, the
	 * getter reports what the bookkeeping says (it never writes). */
	write_grubenv(f, (const char *[]){"ORDER", "B A", "B_OK", "1", "B_TRY", "3", NULL});
	set_cmdline(f, "A");
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_PENDING_REBOOT);
	assert_ok(otter_slot_boot_check(f->sys, &err));
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_ROLLED_BACK);
	assert_false(lc.running);
	assert_string_equal(lc.booted, "A");
	/* Activated again, then the environment is reset to its defaults (a torn single-copy
	 * write): the activation is lost, and the next boot will not try B. */
	write_b(f, 25);
	assert_ok(otter_slot_activate(f->sys, "B", &err));
	write_grubenv(f, NULL);
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_ACTIVATION_LOST);
	assert_int_equal(lifecycle(f, NULL, &lc), OTTER_UPDATE_ACTIVATION_LOST);
	/* An activation cancelled before it booted (mark-bad) is no update at all. */
	assert_ok(otter_slot_activate(f->sys, "B", &err));
	assert_ok(otter_slot_mark_bad(f->sys, "B", &err));
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_NONE);
	assert_int_equal(lifecycle(f, NULL, &lc), OTTER_UPDATE_NONE);
}

static otter_boot_try boot_try(struct fixture *f, const char **booted)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_boot_try t = (otter_boot_try)-1;

	assert_ok(otter_slot_boot_used_try(f->sys, &t, booted, &err));
	return t;
}

/* Whether this boot used a try, which decides the agent's confirmation in every boot. */
static void test_slot_boot_used_try(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	const char *booted = NULL;
	otter_boot_try t;
	struct snapshot before;
	uint8_t *torn;
	size_t torn_len;

	/* A, never confirmed: this boot is one to confirm. */
	assert_int_equal(boot_try(f, &booted), OTTER_BOOT_TRY_USED);
	assert_string_equal(booted, "A");
	assert_ok(otter_slot_confirm(f->sys, NULL, &err));
	assert_int_equal(boot_try(f, &booted), OTTER_BOOT_TRY_CONFIRMED);
	assert_string_equal(booted, "A");
	/* Confirmed before, but the bootloader counted a try in this boot (one of three). */
	write_grubenv(f, (const char *[]){"ORDER", "A B", "A_OK", "1", "A_TRY", "1", NULL});
	assert_int_equal(boot_try(f, NULL), OTTER_BOOT_TRY_USED);
	/* The getter writes nothing, however often it is called. */
	snap(f, &before);
	for (int i = 0; i < 3; i++)
		assert_int_equal(boot_try(f, NULL), OTTER_BOOT_TRY_USED);
	assert_unchanged(f, &before);
	assert_ok(otter_slot_confirm(f->sys, NULL, &err));
	assert_grubvar(f, "A_TRY", "0");
	assert_int_equal(boot_try(f, NULL), OTTER_BOOT_TRY_CONFIRMED);
	/* A torn environment counts no tries: confirming (which rewrites it whole) is due. */
	torn = read_all(f->path[P_GRUBENV], &torn_len);
	assert_int_equal(torn_len, 1024);
	assert_int_equal(torn[1023], '#');
	torn[1023] = 'x';
	write_file(f->path[P_GRUBENV], torn, torn_len);
	free(torn);
	assert_int_equal(boot_try(f, NULL), OTTER_BOOT_TRY_USED);
	assert_ok(otter_slot_confirm(f->sys, NULL, &err));
	assert_int_equal(boot_try(f, NULL), OTTER_BOOT_TRY_CONFIRMED);
	/* An update booted into B is a try; once rolled back (out of the order) it is not
	 * confirmed any more, though it still runs. */
	write_b(f, 26);
	assert_ok(otter_slot_activate(f->sys, "B", &err));
	boot_into(f, "B A", "B");
	assert_int_equal(boot_try(f, &booted), OTTER_BOOT_TRY_USED);
	assert_string_equal(booted, "B");
	assert_ok(otter_slot_roll_back(f->sys, "B", &err));
	assert_int_equal(boot_try(f, &booted), OTTER_BOOT_TRY_MARKED_BAD);
	assert_string_equal(booted, "B");
	/* Not started by an otter boot script: nothing to confirm, no booted bootname. */
	write_file(f->path[P_CMDLINE], "quiet", 5);
	assert_int_equal(boot_try(f, &booted), OTTER_BOOT_TRY_NONE);
	assert_null(booted);
	assert_err(otter_slot_boot_used_try(NULL, &t, NULL, &err), OTTER_E_INVALID, &err, "NULL");
	otter_error_clear(&err);
	assert_err(otter_slot_boot_used_try(f->sys, NULL, NULL, &err), OTTER_E_INVALID, &err,
		   NULL);
}

/* Power cuts inside each transition: the lifecycle read afterwards is one the agent can act
 * on, and doing the transition again completes it without double records. */
static void test_slot_lifecycle_power_cuts(void **state)
{
	struct fixture *f = *state;
	otter_error err = OTTER_ERROR_INIT;
	otter_slot_lifecycle_info lc;

	/* Activation cut before its environment write: nothing is activated. */
	write_b(f, 26);
	cut_at(f, "env-write", otter_slot_activate, "B");
	assert_grubvar(f, "ORDER", "A");
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_NONE);
	/* Cut after the environment write, before its record: B is pending all the same. */
	cut_at(f, "state-write", otter_slot_activate, "B");
	assert_grubvar(f, "ORDER", "B A");
	assert_int_equal(count_events(f, "activated"), 0);
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_PENDING_REBOOT);
	/* ... and trying once it boots; confirming works without the activation record. */
	boot_into(f, "B A", "B");
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_TRYING);
	/* Confirmation cut after the environment write: still trying; again completes it. */
	cut_at(f, "state-write", otter_slot_confirm, "B");
	assert_grubvar(f, "B_TRY", "0");
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_TRYING);
	assert_ok(otter_slot_confirm(f->sys, "B", &err));
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_CONFIRMED);
	assert_int_equal(count_events(f, "confirmed"), 1);

	/* A roll back cut before its environment write changes nothing. */
	boot_into(f, "B A", "B");
	assert_ok(otter_slot_boot_check(f->sys, &err));
	cut_at(f, "env-write", otter_slot_roll_back, "B");
	assert_grubvar(f, "ORDER", "B A");
	/* Cut after it, before the record: B runs out of the order, which reads as rolled
	 * back; rolling back again records it, once. */
	cut_at(f, "state-write", otter_slot_roll_back, "B");
	assert_grubvar(f, "ORDER", "A");
	assert_int_equal(count_events(f, "rolled-back"), 0);
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_ROLLED_BACK);
	assert_true(lc.running);
	assert_ok(otter_slot_roll_back(f->sys, "B", &err));
	assert_ok(otter_slot_roll_back(f->sys, "B", &err));
	assert_int_equal(count_events(f, "rolled-back"), 1);

	/* B failed before; a new release goes into B, and its activation is cut after the
	 * environment write: the stale rollback record must not hide the new activation. */
	write_grubenv(f, (const char *[]){"ORDER", "A", "A_OK", "1", NULL});
	set_cmdline(f, "A");
	write_b(f, 27);
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_ROLLED_BACK);
	cut_at(f, "state-write", otter_slot_activate, "B");
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_PENDING_REBOOT);
	assert_int_equal(lifecycle(f, NULL, &lc), OTTER_UPDATE_PENDING_REBOOT);
	boot_into(f, "B A", "B");
	assert_int_equal(lifecycle(f, "B", &lc), OTTER_UPDATE_TRYING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_slot_writer_raw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_install_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_refusals_before_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_booted_device_alias, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_bad_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_bad_stream_takes_target_out_of_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_slot_zstd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_rollback_detection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_marks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_damaged_bookkeeping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_reset_bookkeeping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_ext4_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_odd_devices_and_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_alloc_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_writer_sink_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_read_back_detects_corruption, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_slot_wqueue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_lifecycle_confirm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_lifecycle_roll_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_lifecycle_fallback_and_lost, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_slot_lifecycle_power_cuts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_boot_used_try, setup, teardown),
	};
	return cmocka_run_group_tests_name("slot", tests, NULL, NULL);
}
