/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "cleanup.h"
#include "strutil.h"

void crashpoint(const char *name)
{
	/* GLOBAL: hit counters per process, used by the crash-point harness only. */
	static char last[64];
	static unsigned long hits;
	const char *want = getenv("OTTER_TEST_CRASHPOINT");
	const char *colon;
	size_t nlen;
	unsigned long n = 1;

	if (!want || !*want)
		return;
	colon = strchr(want, ':');
	nlen = colon ? (size_t)(colon - want) : strlen(want);
	if (strlen(name) != nlen || strncmp(want, name, nlen) != 0)
		return;
	if (colon)
		n = strtoul(colon + 1, NULL, 10);
	if (strncmp(last, name, sizeof(last)) != 0) {
		snprintf(last, sizeof(last), "%s", name);
		hits = 0;
	}
	if (++hits == n) {
		fprintf(stderr, "crashpoint %s:%lu reached\n", name, n);
		_exit(99);
	}
}

size_t crashpoint_limit(const char *name, uint64_t pos, size_t len)
{
	const char *want = getenv("OTTER_TEST_CRASHPOINT");
	uint64_t n = 0;
	size_t nlen = strlen(name);

	if (!want || strncmp(want, name, nlen) != 0 || want[nlen] != '@')
		return len;
	if (parse_u64(want + nlen + 1, &n) < 0)
		return len;
	if (n < pos || n - pos >= len)
		return len;
	return (size_t)(n - pos);
}

void crashpoint_cut(const char *name)
{
	fprintf(stderr, "crashpoint %s reached\n", name);
	_exit(99);
}

int fileio_write_all(int fd, const void *buf, size_t len, otter_error *err)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return otter_error_set_errno(err, errno, "write");
		}
		if (n == 0)
			return otter_error_set(err, OTTER_E_IO, "write: no progress");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fileio_fsync_dir(int dirfd, otter_error *err)
{
	_cleanup_close_ int fd = -1;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return otter_error_set_errno(err, errno, "open directory for fsync");
	crashpoint("fsync-dir");
	if (fsync(fd) < 0)
		return otter_error_set_errno(err, errno, "fsync directory");
	return 0;
}

static int split_path(const char *path, char **dir_out, const char **base_out, otter_error *err)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		*dir_out = otter_strdup(".");
		*base_out = path;
	} else if (slash == path) {
		*dir_out = otter_strdup("/");
		*base_out = slash + 1;
	} else {
		*dir_out = otter_strndup(path, (size_t)(slash - path));
		*base_out = slash + 1;
	}
	if (!*dir_out)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (**base_out == '\0') {
		free(*dir_out);
		*dir_out = NULL;
		return otter_error_set(err, OTTER_E_INVALID, "'%s' names no file", path);
	}
	return 0;
}

int fileio_fsync_parent(const char *path, otter_error *err)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_close_ int dfd = -1;
	const char *base;
	int r;

	r = split_path(path, &dir, &base, err);
	if (r < 0)
		return r;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return otter_error_set_errno(err, errno, "open '%s'", dir);
	return fileio_fsync_dir(dfd, err);
}

int fileio_tmp_create(int dirfd, mode_t mode, int *fd_out, char **tmpname_out, otter_error *err)
{
	for (int attempt = 0; attempt < 16; attempt++) {
		uint8_t rnd[8];
		char name[64];
		int fd;

		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return otter_error_set_errno(err, errno, "getrandom");
		snprintf(name, sizeof(name), FILEIO_TMP_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x",
			 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
		fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
		if (fd < 0) {
			if (errno == EEXIST)
				continue;
			return otter_error_set_errno(err, errno, "create temp file");
		}
		*tmpname_out = otter_strdup(name);
		if (!*tmpname_out) {
			close(fd);
			unlinkat(dirfd, name, 0);
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		}
		*fd_out = fd;
		return 0;
	}
	return otter_error_set(err, OTTER_E_IO, "could not create a unique temp file");
}

void fileio_tmp_discard(int dirfd, int fd, const char *tmpname)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	if (tmpname)
		unlinkat(dirfd, tmpname, 0);
	errno = saved;
}

int fileio_tmp_commit(int dirfd, int fd, const char *tmpname, const char *name, otter_error *err)
{
	crashpoint("fsync-file");
	if (fsync(fd) < 0) {
		int e = errno;
		fileio_tmp_discard(dirfd, fd, tmpname);
		return otter_error_set_errno(err, e, "fsync '%s'", name);
	}
	if (close(fd) < 0) {
		int e = errno;
		fileio_tmp_discard(dirfd, -1, tmpname);
		return otter_error_set_errno(err, e, "close '%s'", name);
	}
	crashpoint("rename");
	if (renameat(dirfd, tmpname, dirfd, name) < 0) {
		int e = errno;
		fileio_tmp_discard(dirfd, -1, tmpname);
		return otter_error_set_errno(err, e, "rename into '%s'", name);
	}
	return fileio_fsync_dir(dirfd, err);
}

int fileio_write_atomic(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
			otter_error *err)
{
	_cleanup_free_ char *tmp = NULL;
	int fd = -1, r;

	r = fileio_tmp_create(dirfd, mode, &fd, &tmp, err);
	if (r < 0)
		return otter_error_prefix(err, r, "writing '%s'", name);
	/* mkostemp-style creation is subject to the umask; the caller asked for mode. */
	if (fchmod(fd, mode) < 0) {
		int e = errno;
		fileio_tmp_discard(dirfd, fd, tmp);
		return otter_error_set_errno(err, e, "chmod temp file for '%s'", name);
	}
	r = fileio_write_all(fd, buf, len, err);
	if (r < 0) {
		fileio_tmp_discard(dirfd, fd, tmp);
		return otter_error_prefix(err, r, "writing '%s'", name);
	}
	return fileio_tmp_commit(dirfd, fd, tmp, name, err);
}

int fileio_write_atomic_path(const char *path, const void *buf, size_t len, mode_t mode,
			     otter_error *err)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_close_ int dfd = -1;
	const char *base;
	int r;

	r = split_path(path, &dir, &base, err);
	if (r < 0)
		return r;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return otter_error_set_errno(err, errno, "open directory '%s'", dir);
	return fileio_write_atomic(dfd, base, buf, len, mode, err);
}

int fileio_read(int dirfd, const char *name, size_t max, uint8_t **out, size_t *len_out,
		otter_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *data = NULL;
	struct stat st;
	size_t len = 0, cap;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return otter_error_set(err, OTTER_E_NOT_FOUND, "'%s' does not exist", name);
		return otter_error_set_errno(err, errno, "open '%s'", name);
	}
	if (fstat(fd, &st) < 0)
		return otter_error_set_errno(err, errno, "stat '%s'", name);
	if (!S_ISREG(st.st_mode))
		return otter_error_set(err, OTTER_E_INVALID, "'%s' is not a regular file", name);
	if ((uint64_t)st.st_size > max)
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "'%s' is %lld bytes, more than the limit of %zu", name,
				       (long long)st.st_size, max);
	cap = (size_t)st.st_size + 1;
	data = otter_malloc(cap);
	if (!data)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory reading '%s'", name);
	/* The size may change under us: read until EOF but never past max. */
	for (;;) {
		ssize_t n;

		if (len == cap - 1) {
			uint8_t *p;

			if (len >= max) {
				uint8_t probe;
				n = read(fd, &probe, 1);
				if (n > 0)
					return otter_error_set(err, OTTER_E_TOO_LARGE,
							       "'%s' grew past the limit of %zu bytes",
							       name, max);
				if (n < 0 && errno == EINTR)
					continue;
				if (n < 0)
					return otter_error_set_errno(err, errno, "read '%s'", name);
				break;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			p = otter_reallocarray(data, cap, 1);
			if (!p)
				return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			data = p;
		}
		n = read(fd, data + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return otter_error_set_errno(err, errno, "read '%s'", name);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	data[len] = '\0';
	*out = TAKE_PTR(data);
	if (len_out)
		*len_out = len;
	return 0;
}

int fileio_mkdir_p(const char *path, mode_t mode, otter_error *err)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return otter_error_set(err, OTTER_E_INVALID, "bad directory path '%s'", path);
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return otter_error_set_errno(err, errno, "mkdir '%s'", buf);
		if (i < len)
			buf[i] = '/';
	}
	return 0;
}

void fileio_remove_stale_tmp(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	time_t now = time(NULL);
	DIR *d;
	struct dirent *de;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (strncmp(de->d_name, FILEIO_TMP_PREFIX, strlen(FILEIO_TMP_PREFIX)) != 0)
			continue;
		/* Another process may be writing it right now: only old ones are leftovers. */
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    now - st.st_mtime < FILEIO_TMP_STALE_S)
			continue;
		unlinkat(dirfd, de->d_name, 0);
	}
	closedir(d);
}

int fileio_lock_nb(const char *dir, const char *name, int *fd_out, otter_error *err)
{
	_cleanup_free_ char *path = path_join(dir, name);
	int fd, r;

	if (!path)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = fileio_mkdir_p(dir, 0755, err);
	if (r < 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return otter_error_set_errno(err, errno, "open lock '%s'", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			return OTTER_E_BUSY;
		return otter_error_set_errno(err, e, "lock '%s'", path);
	}
	*fd_out = fd;
	return 0;
}
