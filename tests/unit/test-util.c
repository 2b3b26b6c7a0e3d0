/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "test-common.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/sdnotify.h"
#include "util/strutil.h"

static void test_util_error_set_once(void **state)
{
	otter_error err = OTTER_ERROR_INIT;

	assert_int_equal(otter_error_set(&err, OTTER_E_ROLLBACK, "version %d < %d", 7, 9),
			 OTTER_E_ROLLBACK);
	assert_string_equal(err.msg, "version 7 < 9");
	/* A second set does not overwrite the origin. */
	assert_int_equal(otter_error_set(&err, OTTER_E_IO, "later"), OTTER_E_IO);
	assert_int_equal(err.code, OTTER_E_ROLLBACK);
	assert_string_equal(err.msg, "version 7 < 9");
	assert_int_equal(otter_error_prefix(&err, OTTER_E_ROLLBACK, "snapshot.json"),
			 OTTER_E_ROLLBACK);
	assert_string_equal(err.msg, "snapshot.json: version 7 < 9");
	otter_error_clear(&err);
	assert_int_equal(err.code, 0);
	/* NULL err is allowed everywhere. */
	assert_int_equal(otter_error_set(NULL, OTTER_E_IO, "x"), OTTER_E_IO);
	assert_int_equal(otter_error_prefix(NULL, OTTER_E_IO, "x"), OTTER_E_IO);
}

static void test_util_error_errno_and_truncation(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	char big[2000];

	assert_int_equal(otter_error_set_errno(&err, ENOENT, "open '%s'", "x"), OTTER_E_IO);
	assert_int_equal(err.sys_errno, ENOENT);
	assert_non_null(strstr(err.msg, "open 'x': No such file"));
	otter_error_clear(&err);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	otter_error_set(&err, OTTER_E_INVALID, "%s", big);
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
	assert_string_equal(err.msg + sizeof(err.msg) - 4, "...");
	otter_error_prefix(&err, OTTER_E_INVALID, "%s", big);
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
	assert_int_equal(otter_error_set_errno(NULL, ENOMEM, "x"), OTTER_E_NOMEM);
	assert_string_equal(otter_error_code_name(OTTER_E_SIGNATURE), "signature");
	assert_string_equal(otter_error_code_name(1), "unknown");
	assert_string_equal(otter_error_code_name(-1000), "unknown");
}

static void test_util_buf_cap(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_buf b;
	size_t len;
	uint8_t *p;

	buf_init(&b, 10);
	assert_ok(buf_append(&b, "12345", 5, &err));
	assert_ok(buf_append(&b, "12345", 5, &err)); /* exactly the cap */
	assert_err(buf_append(&b, "x", 1, &err), OTTER_E_TOO_LARGE, &err, "limit of 10");
	assert_int_equal(b.len, 10);
	assert_string_equal((char *)b.data, "1234512345");
	p = buf_steal(&b, &len);
	assert_int_equal(len, 10);
	free(p);
	assert_null(b.data);
	buf_init(&b, 100);
	assert_ok(buf_printf(&b, &err, "%d-%s", 42, "x"));
	assert_string_equal((char *)b.data, "42-x");
	/* Overflowing arithmetic is refused rather than wrapped. */
	assert_err(buf_append(&b, "x", SIZE_MAX, &err), OTTER_E_TOO_LARGE, &err, NULL);
	buf_clear(&b);
}

static void test_util_parse_u64(void **state)
{
	uint64_t v;

	assert_int_equal(parse_u64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(parse_u64("18446744073709551616", &v), -1);
	assert_int_equal(parse_u64("", &v), -1);
	assert_int_equal(parse_u64("01", &v), -1);
	assert_int_equal(parse_u64("-1", &v), -1);
	assert_int_equal(parse_u64("+1", &v), -1);
	assert_int_equal(parse_u64(" 1", &v), -1);
	assert_int_equal(parse_u64("1 ", &v), -1);
	assert_int_equal(parse_u64("1x", &v), -1);
	assert_int_equal(parse_u64_range("5", 1, 5, &v), 0);
	assert_int_equal(parse_u64_range("6", 1, 5, &v), -1);
	assert_int_equal(parse_u64_range("0", 1, 5, &v), -1);
}

static void test_util_hex(void **state)
{
	uint8_t raw[4] = {0x00, 0xab, 0x7f, 0xff}, out[4];
	char hex[9];

	hex_encode(raw, 4, hex);
	assert_string_equal(hex, "00ab7fff");
	assert_true(hex_decode("00AB7fFF", 8, out, 4));
	assert_memory_equal(out, raw, 4);
	assert_false(hex_decode("00ab7ff", 7, out, 4));
	assert_false(hex_decode("00ab7fgg", 8, out, 4));
	assert_true(is_lower_hex("00ab", 4));
	assert_false(is_lower_hex("00AB", 4));
}

static void check_encodings(char *(*encode)(const char *), const char *const (*cases)[2],
			    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *e = encode(cases[i][0]);
		assert_non_null(e);
		assert_string_equal(e, cases[i][1]);
		free(e);
	}
}

static void test_util_percent_encode(void **state)
{
	/* tuf.md §6.1 examples (python quote(name, safe="")). */
	static const char *const cases[][2] = {
		{"a/b", "a%2Fb"},       {"../r", "..%2Fr"},  {"?", "%3F"},
		{"#", "%23"},           {"a b", "a%20b"},    {"\xc3\xbc", "%C3%BC"},
		{"A-z_0.9~", "A-z_0.9~"}, {"", ""},
	};

	check_encodings(percent_encode, cases, sizeof(cases) / sizeof(cases[0]));
}

/* Issue 8, finding 3: a folder path as the path of a file:// URL; '/' stays. */
static void test_util_percent_encode_path(void **state)
{
	static const char *const cases[][2] = {
		{"/media/USB STICK", "/media/USB%20STICK"}, {"/a#b/c", "/a%23b/c"},
		{"/a?b", "/a%3Fb"}, {"/100%/x", "/100%25/x"}, {"/plain/dir-1_.~", "/plain/dir-1_.~"},
		{"/", "/"}, {"", ""},
	};

	check_encodings(percent_encode_path, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_util_target_path_is_safe(void **state)
{
	assert_true(target_path_is_safe("a", 100));
	assert_true(target_path_is_safe("dir/sub/file.bin", 100));
	assert_true(target_path_is_safe("..a/b..", 100));
	assert_false(target_path_is_safe("", 100));
	assert_false(target_path_is_safe("/etc/passwd", 100));
	assert_false(target_path_is_safe("a/../b", 100));
	assert_false(target_path_is_safe("..", 100));
	assert_false(target_path_is_safe("a/./b", 100));
	assert_false(target_path_is_safe("a//b", 100));
	assert_false(target_path_is_safe("a/", 100));
	assert_false(target_path_is_safe("a\nb", 100));
	assert_false(target_path_is_safe("a\x7f", 100));
	/* limit - 1, limit, limit + 1 */
	assert_true(target_path_is_safe("abcd", 5));
	assert_true(target_path_is_safe("abcde", 5));
	assert_false(target_path_is_safe("abcdef", 5));
}

static void test_util_utc(void **state)
{
	char out[32];
	int64_t t;

	assert_int_equal(utc_parse("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(utc_parse("2030-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 1893456000);
	assert_int_equal(utc_parse("2024-02-29T23:59:59Z", &t), 0);
	utc_format(t, out);
	assert_string_equal(out, "2024-02-29T23:59:59Z");
	assert_int_equal(utc_parse("2023-02-29T00:00:00Z", &t), -1);
	assert_int_equal(utc_parse("2030-01-01T00:00:00", &t), -1);
	assert_int_equal(utc_parse("2030-01-01 00:00:00Z", &t), -1);
	assert_int_equal(utc_parse("2030-01-01T00:00:00.5Z", &t), -1);
	assert_int_equal(utc_parse("2030-01-01T00:00:00+00:00", &t), -1);
	assert_int_equal(utc_parse("2030-13-01T00:00:00Z", &t), -1);
	assert_int_equal(utc_parse("2030-01-01T24:00:00Z", &t), -1);
	assert_int_equal(utc_parse("2030-1-01T00:00:00Z", &t), -1);
	assert_int_equal(utc_parse("9999-12-31T23:59:59Z", &t), 0);
	utc_format(t, out);
	assert_string_equal(out, "9999-12-31T23:59:59Z");
}

static void test_util_path_join(void **state)
{
	char *p = path_join("/a/", "b");
	assert_string_equal(p, "/a/b");
	free(p);
	p = path_join("/a", "/b");
	assert_string_equal(p, "/a/b");
	free(p);
	p = str_concat("ab", "cd");
	assert_string_equal(p, "abcd");
	free(p);
	assert_true(str_endswith("x.json", ".json"));
	assert_false(str_endswith("json", ".json"));
}

static void test_util_sanitize(void **state)
{
	char out[8];

	str_sanitize("a\nb\x01", out, sizeof(out));
	assert_string_equal(out, "a?b?");
	str_sanitize("abcdefghijk", out, sizeof(out));
	assert_string_equal(out, "abcd...");
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' || strncmp(de->d_name, ".otter-tmp-", 11) == 0)
			n++;
	closedir(d);
	return n;
}

static void test_util_fileio_atomic(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	char *dir = test_tmpdir();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	uint8_t *data = NULL;
	size_t len;
	struct stat st;

	assert_ok(fileio_write_atomic(dfd, "f.json", "hello", 5, 0600, &err));
	assert_ok(fileio_read(dfd, "f.json", 5, &data, &len, &err));
	assert_int_equal(len, 5);
	assert_string_equal((char *)data, "hello");
	free(data);
	assert_int_equal(fstatat(dfd, "f.json", &st, 0), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Replacing keeps exactly one file: no temp files left behind. */
	assert_ok(fileio_write_atomic(dfd, "f.json", "bye", 3, 0644, &err));
	assert_int_equal(count_entries(dir), 1);
	/* limit - 1 and limit + 1 */
	assert_err(fileio_read(dfd, "f.json", 2, &data, &len, &err), OTTER_E_TOO_LARGE, &err,
		   "limit of 2");
	otter_error_clear(&err);
	assert_ok(fileio_read(dfd, "f.json", 4, &data, &len, &err));
	free(data);
	assert_err(fileio_read(dfd, "missing", 4, &data, &len, &err), OTTER_E_NOT_FOUND, &err,
		   "missing");
	otter_error_clear(&err);
	/* A directory is not a regular file. */
	assert_int_equal(mkdirat(dfd, "sub", 0755), 0);
	assert_err(fileio_read(dfd, "sub", 4, &data, &len, &err), OTTER_E_INVALID, &err, NULL);
	otter_error_clear(&err);
	/* Writing into a missing directory fails cleanly. */
	assert_err(fileio_write_atomic_path("/tmp/otter-test-does-not-exist/x", "a", 1, 0644,
					    &err),
		   OTTER_E_IO, &err, NULL);
	close(dfd);
	rm_rf(dir);
	free(dir);
}

static void test_util_fileio_tmp_discard(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	char *dir = test_tmpdir();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	char *tmp = NULL;
	int fd = -1;

	assert_ok(fileio_tmp_create(dfd, 0644, &fd, &tmp, &err));
	assert_ok(fileio_write_all(fd, "partial", 7, &err));
	assert_int_equal(count_entries(dir), 1);
	fileio_tmp_discard(dfd, fd, tmp);
	assert_int_equal(count_entries(dir), 0);
	free(tmp);
	/* Temp files left by a crash are swept once old; a fresh one (maybe another
	 * process's, being written) is kept. */
	assert_ok(fileio_tmp_create(dfd, 0644, &fd, &tmp, &err));
	close(fd);
	fileio_remove_stale_tmp(dfd);
	assert_int_equal(count_entries(dir), 1);
	{
		struct timespec old[2] = {{time(NULL) - FILEIO_TMP_STALE_S - 1, 0},
					  {time(NULL) - FILEIO_TMP_STALE_S - 1, 0}};
		assert_int_equal(utimensat(dfd, tmp, old, 0), 0);
	}
	fileio_remove_stale_tmp(dfd);
	assert_int_equal(count_entries(dir), 0);
	free(tmp);
	assert_ok(fileio_mkdir_p("/tmp/otter-test-mk/a/b", 0755, &err));
	rm_rf("/tmp/otter-test-mk");
	close(dfd);
	rm_rf(dir);
	free(dir);
}

static void test_util_alloc_failure_injection(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_buf b;

	otter_alloc_fail_at(1);
	assert_null(otter_malloc(10));
	/* Only the Nth allocation fails: the next one works again. */
	char *x = otter_strdup("x");
	assert_non_null(x);
	free(x);
	otter_alloc_fail_at(1);
	buf_init(&b, 100);
	assert_err(buf_append(&b, "x", 1, &err), OTTER_E_NOMEM, &err, NULL);
	otter_alloc_fail_at(0);
	assert_null(otter_reallocarray(NULL, SIZE_MAX, 2));
}

static void test_util_sdnotify(void **state)
{
	char *dir = test_tmpdir();
	char path[256], buf[256];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	ssize_t n;
	uint64_t usec;

	snprintf(path, sizeof(path), "%s/notify", dir);
	strfmt(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(sdnotify_send("READY=1"), 0); /* not under systemd: nothing to do */
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(sdnotify_send("READY=1\nSTATUS=idle"), 1);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "READY=1\nSTATUS=idle");
	setenv("NOTIFY_SOCKET", "relative", 1);
	assert_int_equal(sdnotify_send("X=1"), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
	close(fd);
	setenv("WATCHDOG_USEC", "30000000", 1);
	unsetenv("WATCHDOG_PID");
	assert_true(sdnotify_watchdog_usec(&usec));
	assert_true(usec == 30000000);
	setenv("WATCHDOG_PID", "1", 1); /* another process's watchdog */
	assert_false(sdnotify_watchdog_usec(&usec));
	setenv("WATCHDOG_USEC", "junk", 1);
	unsetenv("WATCHDOG_PID");
	assert_false(sdnotify_watchdog_usec(&usec));
	unsetenv("WATCHDOG_USEC");
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_util_error_set_once),
		cmocka_unit_test(test_util_error_errno_and_truncation),
		cmocka_unit_test(test_util_buf_cap),
		cmocka_unit_test(test_util_parse_u64),
		cmocka_unit_test(test_util_hex),
		cmocka_unit_test(test_util_percent_encode),
		cmocka_unit_test(test_util_percent_encode_path),
		cmocka_unit_test(test_util_target_path_is_safe),
		cmocka_unit_test(test_util_utc),
		cmocka_unit_test(test_util_path_join),
		cmocka_unit_test(test_util_sanitize),
		cmocka_unit_test(test_util_fileio_atomic),
		cmocka_unit_test(test_util_fileio_tmp_discard),
		cmocka_unit_test(test_util_alloc_failure_injection),
		cmocka_unit_test(test_util_sdnotify),
	};
	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
