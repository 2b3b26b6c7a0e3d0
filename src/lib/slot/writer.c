/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Streaming slot install. What keeps a device bootable through a power cut or a bad image:
 *  - the target is never a slot with the booted bootname, nor the booted slots' device;
 *  - before the first byte reaches the slot, the bookkeeping says "installing" and the target
 *    bootname leaves the boot order, then the first 4 KiB of the slot are zeroed: a torn slot
 *    is neither a fallback for the bootloader nor a filesystem anything would mount;
 *  - the first 4 KiB of the image (partition table, superblock) are held in memory and written
 *    last, after the body is fsynced (header-last, like RAUC's raw handler);
 *  - length and SHA-256 of the input are checked; the body is read back from the device
 *    (XXH3-128 of what was written against XXH3-128 of what the device returns) and, after
 *    the last fsync, the header too; only then does the bookkeeping say "installed", and
 *    only "installed" slots activate.
 *
 * Throughput: the bytes go through a write-behind thread (wqueue.c), so the source's reads,
 * the input's SHA-256 and zstd run on the caller's thread while the previous bytes are
 * written, written back and read back. The read-back needs no second SHA-256: the input's
 * cryptographic hash is already verified, and what the read-back must catch is storage that
 * returns other bytes than it was given, which a 128-bit checksum of all of them does at the
 * speed of the disk read.
 */
#include "slot-private.h"
#include "wqueue.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <zstd.h>

#include <otter/crypto.h>

#include "lib/json/json-util.h"
#include "util/alloc.h"
#include "util/args.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

#define HEADER_SIZE 4096u
#define PEEK_SIZE   18u /* ZSTD_FRAMEHEADERSIZE_MAX: enough to read the content size */
#define READ_CHUNK  (1024u * 1024u)
#define READ_AHEAD  (4u * READ_CHUNK) /* what the disk reads while a chunk is processed */
#define EXT4_MAGIC_OFFSET 1080u /* s_magic 0xEF53 (little-endian) in the superblock at 1024 */

static const uint8_t zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

struct otter_slot_writer {
	const otter_system *sys;
	const otter_slot *target;
	otter_boot *boot;
	int lock_fd;            /* held from open to free: one installer at a time */
	int fd;
	uint64_t slot_size;
	uint64_t expected_len;
	uint8_t expected_sha[OTTER_SHA256_SIZE];
	otter_slot_writer_options opts;
	char *image_version;
	otter_compression comp; /* resolved once detected */
	bool detected;
	uint8_t peek[PEEK_SIZE];
	size_t peek_len;
	ZSTD_DCtx *dctx;
	uint8_t *zout;
	size_t zout_size;
	size_t zret;            /* last ZSTD_decompressStream result: 0 = frame complete */
	otter_hash *in_hash;
	otter_hash *out_hash;   /* zstd only: the decompressed bytes */
	slot_wqueue *wq;        /* from detect() on: writes, checksums and out_hash */
	uint64_t in_count;
	uint64_t out_count;
	uint8_t header[HEADER_SIZE];
	bool begun;
	bool finished;
	bool failed;
};

DEFINE_CLEANUP_FUNC(otter_slot_writer, otter_slot_writer_free)

otter_slot_writer *otter_slot_writer_free(otter_slot_writer *w)
{
	if (!w)
		return NULL;
	slot_wqueue_free(w->wq); /* before the fd and out_hash it uses */
	if (w->fd >= 0)
		close(w->fd);
	if (w->lock_fd >= 0)
		close(w->lock_fd);
	otter_boot_free(w->boot);
	ZSTD_freeDCtx(w->dctx);
	free(w->zout);
	otter_hash_free(w->in_hash);
	otter_hash_free(w->out_hash);
	free(w->image_version);
	free(w);
	return NULL;
}

const otter_slot *otter_slot_writer_target(const otter_slot_writer *w)
{
	return w ? w->target : NULL;
}

uint64_t otter_slot_writer_slot_size(const otter_slot_writer *w)
{
	return w ? w->slot_size : 0;
}

static int device_size(int fd, const char *path, struct stat *st, uint64_t *out,
		       otter_error *err)
{
	if (fstat(fd, st) < 0)
		return otter_error_set_errno(err, errno, "stat '%s'", path);
	if (S_ISBLK(st->st_mode)) {
		uint64_t size = 0;

		if (ioctl(fd, BLKGETSIZE64, &size) < 0)
			return otter_error_set_errno(err, errno, "size of '%s'", path);
		*out = size;
		return 0;
	}
	if (S_ISREG(st->st_mode)) {
		*out = (uint64_t)st->st_size;
		return 0;
	}
	return otter_error_set(err, OTTER_E_INVALID,
			       "'%s' is neither a block device nor a regular file", path);
}

static bool same_device(const struct stat *a, const struct stat *b)
{
	if (S_ISBLK(a->st_mode) && S_ISBLK(b->st_mode))
		return a->st_rdev == b->st_rdev;
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Refuses a target that is, under any name, the device of a slot of the booted bootname. */
static int check_not_booted_device(const otter_system *sys, const char *booted,
				   const otter_slot *target, const struct stat *tst,
				   otter_error *err)
{
	for (size_t i = 0; i < otter_system_n_slots(sys); i++) {
		const otter_slot *s = otter_system_slot(sys, i);
		struct stat st;

		if (strcmp(otter_slot_bootname(s), booted) != 0)
			continue;
		if (stat(otter_slot_device(s), &st) < 0)
			continue; /* a missing booted device cannot be the target */
		if (same_device(&st, tst))
			return otter_error_set(err, OTTER_E_STATE,
					       "slot %s: device '%s' is the device of the booted "
					       "slot %s: refusing to write it",
					       otter_slot_name(target), otter_slot_device(target),
					       otter_slot_name(s));
	}
	return 0;
}

int otter_slot_writer_open(otter_slot_writer **out, const otter_system *sys,
			   const char *class_name, uint64_t expected_len,
			   const uint8_t expected_sha256[OTTER_SHA256_SIZE],
			   const otter_slot_writer_options *opts, otter_error *err)
{
	otter_slot_writer_options defaults = OTTER_SLOT_WRITER_OPTIONS_INIT;
	_cleanup_(otter_slot_writer_freep) otter_slot_writer *w = NULL;
	const char *booted = NULL, *primary = NULL;
	const otter_slot *target = NULL;
	struct stat st;
	int r;

	ARG_NONNULL(err, "install", out);
	ARG_NONNULL(err, "install", sys);
	ARG_NONNULL(err, "install", class_name);
	ARG_NONNULL(err, "install", expected_sha256);
	if (!opts)
		opts = &defaults;
	if (opts->version != OTTER_SLOT_WRITER_OPTIONS_VERSION)
		return otter_error_set(err, OTTER_E_INVALID,
				       "install: unknown options version %u (this otter knows %u)",
				       opts->version, (unsigned)OTTER_SLOT_WRITER_OPTIONS_VERSION);
	if (opts->compression > OTTER_COMPRESSION_ZSTD)
		return otter_error_set(err, OTTER_E_INVALID,
				       "install: unknown compression %d (known: 0 to %d)",
				       (int)opts->compression, (int)OTTER_COMPRESSION_ZSTD);
	if (expected_len == 0)
		return otter_error_set(err, OTTER_E_INVALID, "install: the image length is 0");
	if (opts->image_version && (strlen(opts->image_version) > OTTER_SLOT_VERSION_MAX ||
				    !*opts->image_version))
		return otter_error_set(err, OTTER_E_INVALID,
				       "install: the version must be 1..%d bytes",
				       OTTER_SLOT_VERSION_MAX);
	w = otter_calloc(1, sizeof(*w));
	if (!w)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	w->fd = -1;
	w->lock_fd = -1;
	w->sys = sys;
	w->opts = *opts;
	w->expected_len = expected_len;
	memcpy(w->expected_sha, expected_sha256, OTTER_SHA256_SIZE);
	if (opts->image_version && !(w->image_version = otter_strdup(opts->image_version)))
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");

	r = ab_lock(sys, &w->lock_fd, err);
	if (r < 0)
		return otter_error_prefix(err, r, "install");
	r = otter_system_new_boot(sys, &w->boot, err);
	if (r < 0)
		return r;
	r = otter_boot_get_booted(w->boot, &booted, err);
	if (r < 0)
		return otter_error_prefix(err, r,
					  "install: cannot tell which slot is running, so no slot "
					  "is safe to write");
	/* Reading the order also proves the environment readable and sane before anything. */
	{
		const char *order[OTTER_BOOT_MAX_BOOTNAMES];
		size_t n = 0;

		r = otter_boot_get_order(w->boot, order, OTTER_BOOT_MAX_BOOTNAMES, &n, err);
		if (r < 0)
			return otter_error_prefix(err, r, "install");
		primary = n > 0 ? order[0] : NULL;
	}
	/* The inactive slot: any slot of the class whose bootname is not the booted one;
	 * with more than two, prefer one that is not first in the boot order. */
	for (size_t i = 0; i < otter_system_n_slots(sys); i++) {
		const otter_slot *s = otter_system_slot(sys, i);

		if (strcmp(otter_slot_class(s), class_name) != 0 ||
		    strcmp(otter_slot_bootname(s), booted) == 0)
			continue;
		if (!target || (primary && strcmp(otter_slot_bootname(target), primary) == 0))
			target = s;
	}
	if (!target) {
		char safe[64];

		str_sanitize(class_name, safe, sizeof(safe));
		if (!otter_system_find_slot_by_bootname(sys, class_name, booted))
			return otter_error_set(err, OTTER_E_INVALID,
					       "install: no slot class '%s' in the system "
					       "configuration",
					       safe);
		return otter_error_set(err, OTTER_E_STATE,
				       "install: class '%s' has no slot besides the booted one",
				       safe);
	}
	w->target = target;
	if (strcmp(otter_slot_bootname(target), booted) == 0)
		return otter_error_set(err, OTTER_E_STATE, "install: refusing the booted slot");

	/* O_EXCL on a block device fails with EBUSY while it is mounted. */
	if (stat(otter_slot_device(target), &st) < 0)
		return otter_error_set_errno(err, errno, "install: slot %s: device '%s'",
					     otter_slot_name(target), otter_slot_device(target));
	w->fd = open(otter_slot_device(target),
		     O_RDWR | O_CLOEXEC | O_NOCTTY | (S_ISBLK(st.st_mode) ? O_EXCL : 0));
	if (w->fd < 0)
		return otter_error_set_errno(err, errno, "install: slot %s: open '%s'%s",
					     otter_slot_name(target), otter_slot_device(target),
					     errno == EBUSY ? " (mounted or in use?)" : "");
	r = device_size(w->fd, otter_slot_device(target), &st, &w->slot_size, err);
	if (r < 0)
		return otter_error_prefix(err, r, "install: slot %s", otter_slot_name(target));
	r = check_not_booted_device(sys, booted, target, &st, err);
	if (r < 0)
		return otter_error_prefix(err, r, "install");
	if (opts->compression == OTTER_COMPRESSION_NONE && expected_len > w->slot_size)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "install: the image (%" PRIu64 " bytes) is larger than slot "
				       "%s (%" PRIu64 " bytes)",
				       expected_len, otter_slot_name(target), w->slot_size);
	r = otter_hash_new(&w->in_hash, OTTER_HASH_SHA256, err);
	if (r < 0)
		return r;
	*out = TAKE_PTR(w);
	return 0;
}

/* Everything that changes state, done once, right before the first byte hits the slot. */
static int begin(otter_slot_writer *w, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	const char *bn = otter_slot_bootname(w->target);
	const char *activated;
	otter_boot_slot_state bst;
	json_t *rec;
	char now[32];
	uint8_t zeros[HEADER_SIZE] = {0};
	size_t zlen = w->slot_size < HEADER_SIZE ? (size_t)w->slot_size : HEADER_SIZE;
	int r;

	/* The header is in memory by now: a wrong image for the slot changes nothing. */
	if (otter_slot_get_type(w->target) == OTTER_SLOT_EXT4 &&
	    (w->out_count < EXT4_MAGIC_OFFSET + 2 || w->header[EXT4_MAGIC_OFFSET] != 0x53 ||
	     w->header[EXT4_MAGIC_OFFSET + 1] != 0xef))
		return otter_error_set(err, OTTER_E_FORMAT,
				       "slot %s has type=ext4, but the image has no ext4 "
				       "superblock (an image for another slot class?)",
				       otter_slot_name(w->target));
	r = ab_state_load(w->sys, &root, err);
	if (r < 0)
		return r;
	rec = ab_state_slot(root, otter_slot_name(w->target), true);
	if (!rec)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	json_object_clear(rec);
	ab_now(now);
	if (json_object_set_new(rec, "status", json_string("installing")) < 0 ||
	    json_object_set_new(rec, "started-at", json_string(now)) < 0)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	activated = json_string_value(json_object_get(root, "activated"));
	if (activated && strcmp(activated, bn) == 0) {
		json_object_del(root, "activated");
		json_object_del(root, "activated-at");
	}
	r = ab_state_set_confirmed(root, bn, false, err);
	if (r == 0)
		r = ab_state_event(root, "install-started", bn, otter_slot_name(w->target), err);
	if (r == 0)
		r = ab_state_save(w->sys, root, err);
	if (r < 0)
		return r;
	crashpoint("install-begin");
	r = otter_boot_get_state(w->boot, bn, &bst, err);
	if (r == 0 && bst.in_order)
		r = otter_boot_mark_bad(w->boot, bn, err);
	if (r < 0)
		return otter_error_prefix(err, r, "taking %s out of the boot order", bn);
	if (pwrite(w->fd, zeros, zlen, 0) != (ssize_t)zlen || fdatasync(w->fd) < 0)
		return otter_error_set_errno(err, errno, "slot %s: clearing its first block",
					     otter_slot_name(w->target));
	w->begun = true;
	return 0;
}

/* Receives image bytes (decompressed if need be) in order. */
static int sink(otter_slot_writer *w, const uint8_t *p, size_t n, otter_error *err)
{
	int r;

	if (n > w->slot_size - w->out_count)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "the image is larger than slot %s (%" PRIu64 " bytes)",
				       otter_slot_name(w->target), w->slot_size);
	if (w->out_hash) {
		r = otter_hash_update(w->out_hash, p, n, err);
		if (r < 0)
			return r;
	}
	if (w->out_count < HEADER_SIZE) {
		size_t k = HEADER_SIZE - (size_t)w->out_count;

		if (k > n)
			k = n;
		memcpy(w->header + w->out_count, p, k);
		/* Queued in order (not written: finish writes it last). */
		r = slot_wqueue_push(w->wq, p, k, w->out_count, false, err);
		if (r < 0)
			return r;
		w->out_count += k;
		p += k;
		n -= k;
	}
	if (n == 0)
		return 0;
	if (!w->begun) {
		r = begin(w, err);
		if (r < 0)
			return r;
	}
	r = slot_wqueue_push(w->wq, p, n, w->out_count, true, err);
	if (r < 0)
		return r;
	w->out_count += n;
	return 0;
}

static int process(otter_slot_writer *w, const uint8_t *p, size_t n, otter_error *err)
{
	ZSTD_inBuffer in = {p, n, 0};
	bool full = false;

	if (w->comp != OTTER_COMPRESSION_ZSTD)
		return sink(w, p, n, err);
	/* Until the input is used up and the decoder had room to spare (it holds no output). */
	while (in.pos < in.size || full) {
		ZSTD_outBuffer o = {w->zout, w->zout_size, 0};
		size_t before = in.pos;
		size_t ret = ZSTD_decompressStream(w->dctx, &o, &in);
		int r;

		if (ZSTD_isError(ret))
			return otter_error_set(err, OTTER_E_FORMAT, "zstd: %s",
					       ZSTD_getErrorName(ret));
		/* 0 = a frame just ended; an idle call after that says nothing new. */
		if (o.pos > 0 || in.pos != before)
			w->zret = ret;
		full = o.pos == o.size;
		r = sink(w, w->zout, o.pos, err);
		if (r < 0)
			return r;
		if (o.pos == 0 && in.pos == before)
			break;
	}
	return 0;
}

/* Decides raw or zstd from the first bytes, and refuses an image known to be too large. */
static int detect(otter_slot_writer *w, otter_error *err)
{
	bool magic = w->peek_len >= 4 && memcmp(w->peek, zstd_magic, 4) == 0;
	int r;

	w->detected = true;
	w->comp = w->opts.compression;
	if (w->comp == OTTER_COMPRESSION_AUTO)
		w->comp = magic ? OTTER_COMPRESSION_ZSTD : OTTER_COMPRESSION_NONE;
	if (w->comp == OTTER_COMPRESSION_ZSTD) {
		unsigned long long content;

		if (!magic)
			return otter_error_set(err, OTTER_E_FORMAT,
					       "the image does not start like a zstd stream");
		content = ZSTD_getFrameContentSize(w->peek, w->peek_len);
		if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != ZSTD_CONTENTSIZE_ERROR &&
		    content > w->slot_size)
			return otter_error_set(err, OTTER_E_TOO_LARGE,
					       "the image (%llu bytes uncompressed) is larger "
					       "than slot %s (%" PRIu64 " bytes)",
					       content, otter_slot_name(w->target), w->slot_size);
		w->dctx = ZSTD_createDCtx();
		w->zout_size = ZSTD_DStreamOutSize();
		w->zout = otter_malloc(w->zout_size);
		if (!w->dctx || !w->zout)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		/* Bound the decoder's window (memory) to 128 MiB whatever the frame asks. */
		ZSTD_DCtx_setParameter(w->dctx, ZSTD_d_windowLogMax, 27);
		r = otter_hash_new(&w->out_hash, OTTER_HASH_SHA256, err);
		if (r < 0)
			return r;
	} else if (w->expected_len > w->slot_size) {
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "the image (%" PRIu64 " bytes) is larger than slot %s (%" PRIu64
				       " bytes)",
				       w->expected_len, otter_slot_name(w->target), w->slot_size);
	}
	/* out_hash stays on this thread: the writer thread's time goes to the disk. */
	r = slot_wqueue_new(&w->wq, w->fd, otter_slot_name(w->target), NULL, HEADER_SIZE, err);
	if (r < 0)
		return r;
	return process(w, w->peek, w->peek_len, err);
}

static int write_locked(otter_slot_writer *w, const uint8_t *p, size_t len, otter_error *err)
{
	int r;

	if (len > w->expected_len - w->in_count)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "the image is longer than the expected %" PRIu64 " bytes",
				       w->expected_len);
	r = otter_hash_update(w->in_hash, p, len, err);
	if (r < 0)
		return r;
	w->in_count += len;
	if (!w->detected) {
		size_t k = PEEK_SIZE - w->peek_len;

		if (k > len)
			k = len;
		memcpy(w->peek + w->peek_len, p, k);
		w->peek_len += k;
		p += k;
		len -= k;
		if (w->peek_len < PEEK_SIZE && w->in_count < w->expected_len)
			return 0;
		r = detect(w, err);
		if (r < 0)
			return r;
	}
	r = process(w, p, len, err);
	if (r < 0)
		return r;
	if (w->opts.progress)
		w->opts.progress(w->opts.progress_userdata, w->in_count, w->expected_len);
	return 0;
}

int otter_slot_writer_write(otter_slot_writer *w, const void *data, size_t len,
			    otter_error *err)
{
	int r;

	ARG_NONNULL(err, "install", w);
	ARG_CHECK(err, "install", data || len == 0);
	if (w->failed || w->finished)
		return otter_error_set(err, OTTER_E_STATE, "install: the writer is %s",
				       w->finished ? "finished" : "failed");
	r = write_locked(w, data, len, err);
	if (r < 0) {
		w->failed = true;
		return otter_error_prefix(err, r, "install into slot %s",
					  otter_slot_name(w->target));
	}
	return 0;
}

static int sync_slot(otter_slot_writer *w, otter_error *err)
{
	crashpoint("slot-fsync");
	if (fsync(w->fd) < 0)
		return otter_error_set_errno(err, errno, "fsync slot %s",
					     otter_slot_name(w->target));
	return 0;
}

void (*slot_writer_test_before_read_back)(const char *device, bool header);

/* Reads the header back from the device (it was written last and synced) and compares. */
static int read_back_header(otter_slot_writer *w, size_t hlen, bool *same, otter_error *err)
{
	_cleanup_close_ int fd = -1;
	uint8_t back[HEADER_SIZE];
	size_t got = 0;

	if (slot_writer_test_before_read_back)
		slot_writer_test_before_read_back(otter_slot_device(w->target), true);
	fd = open(otter_slot_device(w->target), O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return otter_error_set_errno(err, errno, "read back slot %s",
					     otter_slot_name(w->target));
	(void)posix_fadvise(fd, 0, (off_t)hlen, POSIX_FADV_DONTNEED);
	while (got < hlen) {
		ssize_t n = pread(fd, back + got, hlen - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? otter_error_set_errno(err, errno, "read back slot %s",
							     otter_slot_name(w->target))
				     : otter_error_set(err, OTTER_E_IO,
						       "read back slot %s: it ends early",
						       otter_slot_name(w->target));
		got += (size_t)n;
	}
	*same = memcmp(back, w->header, hlen) == 0;
	return 0;
}

static int finish_locked(otter_slot_writer *w, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	uint8_t in_digest[OTTER_SHA256_SIZE], out_digest[OTTER_SHA256_SIZE];
	size_t hlen = w->out_count < HEADER_SIZE ? (size_t)w->out_count : HEADER_SIZE;
	bool same = false;
	char hex[2 * OTTER_SHA256_SIZE + 1], want[2 * OTTER_SHA256_SIZE + 1];
	char whex[2 * OTTER_SHA256_SIZE + 1], now[32];
	json_t *rec;
	int r;

	if (w->in_count != w->expected_len)
		return otter_error_set(err, OTTER_E_HASH,
				       "the image is truncated: %" PRIu64 " of %" PRIu64
				       " bytes arrived",
				       w->in_count, w->expected_len);
	if (!w->detected) {
		r = detect(w, err);
		if (r < 0)
			return r;
	}
	if (w->comp == OTTER_COMPRESSION_ZSTD && w->zret != 0)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "the zstd stream ends inside a frame (truncated image?)");
	/* Everything queued is written (or failed), and out_hash is complete. */
	r = slot_wqueue_drain(w->wq, err);
	if (r < 0)
		return r;
	r = otter_hash_final(w->in_hash, in_digest, err);
	if (r < 0)
		return r;
	if (CRYPTO_memcmp(in_digest, w->expected_sha, OTTER_SHA256_SIZE) != 0) {
		hex_encode(in_digest, OTTER_SHA256_SIZE, hex);
		hex_encode(w->expected_sha, OTTER_SHA256_SIZE, want);
		return otter_error_set(err, OTTER_E_HASH,
				       "SHA-256 mismatch: expected %s, the image has %s", want,
				       hex);
	}
	if (w->out_hash) {
		r = otter_hash_final(w->out_hash, out_digest, err);
		if (r < 0)
			return r;
	} else {
		memcpy(out_digest, in_digest, sizeof(out_digest));
	}
	if (!w->begun) {
		r = begin(w, err);
		if (r < 0)
			return r;
	}
	/* The body's read-back (most of it happened while writing): what the device returns
	 * must be what was written. */
	if (slot_writer_test_before_read_back)
		slot_writer_test_before_read_back(otter_slot_device(w->target), false);
	r = slot_wqueue_verify(w->wq, w->out_count, &same, err);
	if (r < 0)
		return r;
	if (!same)
		goto differs;
	/* Body durable first, then the header, then durable again. */
	r = sync_slot(w, err);
	if (r < 0)
		return r;
	crashpoint("slot-header");
	if (pwrite(w->fd, w->header, hlen, 0) != (ssize_t)hlen)
		return otter_error_set_errno(err, errno ? errno : EIO,
					     "slot %s: writing the first block",
					     otter_slot_name(w->target));
	r = sync_slot(w, err);
	if (r < 0)
		return r;
	r = read_back_header(w, hlen, &same, err);
	if (r < 0)
		return r;
	if (!same) {
differs:
		return otter_error_set(err, OTTER_E_HASH,
				       "slot %s reads back differently from what was written "
				       "(failing storage?)",
				       otter_slot_name(w->target));
	}

	r = ab_state_load(w->sys, &root, err);
	if (r < 0)
		return r;
	rec = ab_state_slot(root, otter_slot_name(w->target), true);
	if (!rec)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	hex_encode(in_digest, OTTER_SHA256_SIZE, hex);
	hex_encode(out_digest, OTTER_SHA256_SIZE, whex);
	ab_now(now);
	json_object_clear(rec);
	if (json_object_set_new(rec, "status", json_string("installed")) < 0 ||
	    json_object_set_new(rec, "sha256", json_string(hex)) < 0 ||
	    json_object_set_new(rec, "size", json_integer((json_int_t)w->expected_len)) < 0 ||
	    json_object_set_new(rec, "written-sha256", json_string(whex)) < 0 ||
	    json_object_set_new(rec, "written-size", json_integer((json_int_t)w->out_count)) < 0 ||
	    json_object_set_new(rec, "compression",
				json_string(w->comp == OTTER_COMPRESSION_ZSTD ? "zstd" : "none")) <
		    0 ||
	    json_object_set_new(rec, "installed-at", json_string(now)) < 0 ||
	    (w->image_version &&
	     json_object_set_new(rec, "version", json_string(w->image_version)) < 0))
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = ab_state_event(root, "installed", otter_slot_bootname(w->target),
			   otter_slot_name(w->target), err);
	if (r == 0)
		r = ab_state_save(w->sys, root, err);
	return r;
}

int otter_slot_writer_finish(otter_slot_writer *w, otter_error *err)
{
	int r;

	ARG_NONNULL(err, "install", w);
	if (w->failed || w->finished)
		return otter_error_set(err, OTTER_E_STATE, "install: the writer is %s",
				       w->finished ? "finished" : "failed");
	r = finish_locked(w, err);
	if (r < 0) {
		w->failed = true;
		return otter_error_prefix(err, r, "install into slot %s",
					  otter_slot_name(w->target));
	}
	w->finished = true;
	return 0;
}

/*
 * Back to byte 0 of the stream, keeping the slot: it stays "installing" and out of the boot
 * order, and its first block stays cleared, so nothing of the dropped bytes can boot.
 */
int otter_slot_writer_abort(otter_slot_writer *w, otter_error *err)
{
	ARG_NONNULL(err, "install", w);
	if (w->finished)
		return otter_error_set(err, OTTER_E_STATE, "install: the writer is finished");
	/* The thread finishes what is queued (bytes of the dropped copy, harmless: the slot
	 * stays "installing") and stops before the hash it updates goes away. */
	w->wq = slot_wqueue_free(w->wq);
	w->in_hash = otter_hash_free(w->in_hash);
	w->out_hash = otter_hash_free(w->out_hash);
	ZSTD_freeDCtx(w->dctx);
	w->dctx = NULL;
	free(w->zout);
	w->zout = NULL;
	w->zout_size = 0;
	w->zret = 0;
	w->in_count = w->out_count = 0;
	w->peek_len = 0;
	w->detected = false;
	w->comp = OTTER_COMPRESSION_AUTO;
	memset(w->header, 0, sizeof(w->header));
	w->failed = false;
	return otter_hash_new(&w->in_hash, OTTER_HASH_SHA256, err);
}

static int sink_write(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	return otter_slot_writer_write(userdata, data, len, err);
}

static int sink_finish(void *userdata, otter_error *err)
{
	return otter_slot_writer_finish(userdata, err);
}

static int sink_abort(void *userdata, otter_error *err)
{
	return otter_slot_writer_abort(userdata, err);
}

void otter_slot_writer_sink(otter_slot_writer *w, otter_sink *out)
{
	out->write = sink_write;
	out->finish = sink_finish;
	out->abort = sink_abort;
	out->userdata = w;
}

int otter_slot_writer_activate(otter_slot_writer *w, otter_error *err)
{
	ARG_NONNULL(err, "install", w);
	if (!w->finished)
		return otter_error_set(err, OTTER_E_STATE, "activate: the install into slot %s "
							   "is not finished",
				       otter_slot_name(w->target));
	/* Still holding the writer's lock: nobody slips in between verify and activation. */
	return ab_activate_locked(w->sys, otter_slot_bootname(w->target), err);
}

static int stream_fd(otter_slot_writer *w, int fd, const char *what, otter_error *err)
{
	_cleanup_free_ uint8_t *buf = otter_malloc(READ_CHUNK);
	uint64_t pos = 0;

	if (!buf)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t n;
		int r;

		/* A file: have the disk read ahead while this chunk is hashed and queued. */
		(void)posix_fadvise(fd, (off_t)(pos + READ_AHEAD), READ_CHUNK, POSIX_FADV_WILLNEED);
		n = read(fd, buf, READ_CHUNK);
		if (n > 0)
			pos += (uint64_t)n;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return otter_error_set_errno(err, errno, "reading %s", what);
		if (n == 0)
			return 0;
		r = otter_slot_writer_write(w, buf, (size_t)n, err);
		if (r < 0)
			return r;
	}
}

int otter_slot_writer_stream(otter_slot_writer *w, const char *source, otter_error *err)
{
	ARG_NONNULL(err, "install", w);
	ARG_NONNULL(err, "install", source);
	if (strcmp(source, "-") == 0)
		return stream_fd(w, STDIN_FILENO, "standard input", err);
	{
		_cleanup_close_ int fd = open(source, O_RDONLY | O_CLOEXEC | O_NOCTTY);

		if (fd < 0)
			return otter_error_set_errno(err, errno, "install: open image '%s'", source);
		return stream_fd(w, fd, source, err);
	}
}

int otter_slot_install(const otter_system *sys, const char *class_name, const char *source,
		       uint64_t expected_len, const uint8_t expected_sha256[OTTER_SHA256_SIZE],
		       const otter_slot_writer_options *opts, otter_error *err)
{
	_cleanup_(otter_slot_writer_freep) otter_slot_writer *w = NULL;
	int r;

	if (!source)
		return otter_error_set(err, OTTER_E_INVALID, "install: no image given");
	r = otter_slot_writer_open(&w, sys, class_name, expected_len, expected_sha256, opts, err);
	if (r < 0)
		return r;
	r = otter_slot_writer_stream(w, source, err);
	if (r < 0)
		return r;
	r = otter_slot_writer_finish(w, err);
	if (r < 0)
		return r;
	return otter_slot_writer_activate(w, err);
}
