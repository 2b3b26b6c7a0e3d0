/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_UTIL_FILEIO_H
#define OTTER_UTIL_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <otter/error.h>

/*
 * Durable, atomic file writes (style.md §3.5): temp file in the same directory, write, fsync,
 * close, rename over the target, fsync the directory. On failure the temp file is removed and
 * the old file is untouched. Temp names start with ".otter-tmp-" and never end in ".json", so
 * a crash cannot leave something that looks like metadata.
 */

#define FILEIO_TMP_PREFIX ".otter-tmp-"

/* Writes all of buf to fd, retrying on EINTR and short writes. */
int fileio_write_all(int fd, const void *buf, size_t len, otter_error *err);

/* Atomically replaces dirfd/name with buf. dirfd may be AT_FDCWD. */
int fileio_write_atomic(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
			otter_error *err);
/* Same, by path: the directory part of path is opened. */
int fileio_write_atomic_path(const char *path, const void *buf, size_t len, mode_t mode,
			     otter_error *err);

/*
 * Creates a new temp file in dirfd for streaming writes. *tmpname_out (caller frees) holds its
 * name. Finish with fileio_tmp_commit (fsync + rename + dir fsync) or fileio_tmp_discard.
 */
int fileio_tmp_create(int dirfd, mode_t mode, int *fd_out, char **tmpname_out, otter_error *err);
int fileio_tmp_commit(int dirfd, int fd, const char *tmpname, const char *name, otter_error *err);
void fileio_tmp_discard(int dirfd, int fd, const char *tmpname);

/*
 * Reads a regular file of at most max bytes into a new NUL-terminated buffer. A larger file
 * fails with OTTER_E_TOO_LARGE before anything is read; a missing one with OTTER_E_NOT_FOUND.
 */
int fileio_read(int dirfd, const char *name, size_t max, uint8_t **out, size_t *len_out,
		otter_error *err);

int fileio_fsync_dir(int dirfd, otter_error *err);
int fileio_fsync_parent(const char *path, otter_error *err);

/* mkdir -p with mode for missing components. */
int fileio_mkdir_p(const char *path, mode_t mode, otter_error *err);

/*
 * Takes an exclusive flock on dir/name (dir and the file are created if missing), never
 * waiting. OTTER_E_BUSY, with err untouched, when another open file holds it: the caller
 * says who. The lock lasts until *fd_out is closed.
 */
int fileio_lock_nb(const char *dir, const char *name, int *fd_out, otter_error *err);

/*
 * Removes temp files (".otter-tmp-*") a crash left in dirfd: those not modified for
 * FILEIO_TMP_STALE_S seconds (a younger one may belong to a process writing it now).
 */
#define FILEIO_TMP_STALE_S 600
void fileio_remove_stale_tmp(int dirfd);

/*
 * Crash points for tests (style.md §4.6): when the environment variable OTTER_TEST_CRASHPOINT
 * names this point (optionally "name:N" for its Nth hit) the process _exit()s at once with
 * status 99, as if the power went out. A no-op otherwise.
 */
void crashpoint(const char *name);

/*
 * Byte-granular crash points for streaming writes: when OTTER_TEST_CRASHPOINT is "name@N",
 * returns how many of the len bytes about to be written at stream offset pos may go out
 * before the cut (N - pos when N falls in [pos, pos + len), else len). The caller writes that
 * many and then calls crashpoint_cut(name) if the result was smaller than len.
 */
size_t crashpoint_limit(const char *name, uint64_t pos, size_t len);
void crashpoint_cut(const char *name) __attribute__((noreturn));

#endif
