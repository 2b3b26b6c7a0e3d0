/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * net: file:// cases, and HTTP cases against a tiny scripted server on 127.0.0.1 running in a
 * thread (one connection per scenario).
 */
#include "test-common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <otter/net.h>

#include "util/fileio.h"

struct server {
	int fd;
	int port;
	pthread_t thread;
	const char *response; /* sent verbatim after the request */
	size_t response_len;
	const char *second;   /* if set, the response to the second connection */
	const char *trickle;  /* then these bytes, one per 300 ms */
	char request[4096];
	unsigned connections; /* how many to serve */
};

static void *serve(void *arg)
{
	struct server *s = arg;

	for (unsigned i = 0; i < s->connections; i++) {
		int c = accept(s->fd, NULL, NULL);
		ssize_t n;

		if (c < 0)
			return NULL;
		n = read(c, s->request, sizeof(s->request) - 1);
		s->request[n > 0 ? n : 0] = '\0';
		const char *resp = i > 0 && s->second ? s->second : s->response;
		size_t rlen = i > 0 && s->second ? strlen(s->second) : s->response_len;

		if (write(c, resp, rlen) < 0) {
			close(c);
			continue;
		}
		for (const char *p = s->trickle; p && *p; p++) {
			usleep(300 * 1000);
			if (write(c, p, 1) < 0)
				break;
		}
		close(c);
	}
	return NULL;
}

static void server_start(struct server *s, const char *response, unsigned connections)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int one = 1;

	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 4), 0);
	getsockname(s->fd, (struct sockaddr *)&a, &al);
	s->port = ntohs(a.sin_port);
	s->response = response;
	s->response_len = strlen(response);
	s->connections = connections;
	pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static otter_net *new_net(long low_speed_limit, long low_speed_time)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_net_options o = OTTER_NET_OPTIONS_INIT;
	otter_net *net = NULL;

	o.connect_timeout_s = 5;
	o.total_timeout_s = 20;
	o.low_speed_limit = low_speed_limit;
	o.low_speed_time_s = low_speed_time;
	assert_ok(otter_net_new(&net, &o, &err));
	return net;
}

static void url_of(char *buf, size_t n, const struct server *s, const char *path)
{
	snprintf(buf, n, "http://127.0.0.1:%d%s", s->port, path);
}

static void test_net_file_caps(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	char *dir = test_tmpdir();
	char path[512], url[600];
	otter_net *net = new_net(0, 0);
	uint8_t *data = NULL;
	size_t len;

	snprintf(path, sizeof(path), "%s/f", dir);
	assert_ok(fileio_write_atomic_path(path, "0123456789", 10, 0644, &err));
	snprintf(url, sizeof(url), "file://%s", path);
	/* limit + 1, limit, limit - 1 */
	assert_ok(otter_net_fetch_buf(net, url, 11, &data, &len, &err));
	assert_int_equal(len, 10);
	free(data);
	assert_ok(otter_net_fetch_buf(net, url, 10, &data, &len, &err));
	assert_string_equal((char *)data, "0123456789");
	free(data);
	data = NULL;
	assert_err(otter_net_fetch_buf(net, url, 9, &data, &len, &err), OTTER_E_TOO_LARGE, &err,
		   url);
	assert_null(data);
	otter_error_clear(&err);
	snprintf(url, sizeof(url), "file://%s/missing", dir);
	assert_err(otter_net_fetch_buf(net, url, 10, &data, &len, &err), OTTER_E_NOT_FOUND, &err,
		   "missing");
	otter_error_clear(&err);
	assert_err(otter_net_fetch_buf(net, "not a url", 10, &data, &len, &err), OTTER_E_INVALID,
		   &err, NULL);
	otter_error_clear(&err);
	assert_err(otter_net_fetch_buf(net, "gopher://127.0.0.1/x", 10, &data, &len, &err),
		   OTTER_E_NOT_SUPPORTED, &err, "allowed protocols");
	otter_net_free(net);
	rm_rf(dir);
	free(dir);
}

static int collect(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	strncat(userdata, (const char *)data, len);
	return 0;
}

static void test_net_file_resume(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	char *dir = test_tmpdir();
	char path[512], url[600], got[64] = "";
	otter_net *net = new_net(0, 0);
	uint64_t received = 0;

	snprintf(path, sizeof(path), "%s/f", dir);
	assert_ok(fileio_write_atomic_path(path, "0123456789", 10, 0644, &err));
	snprintf(url, sizeof(url), "file://%s", path);
	assert_ok(otter_net_fetch(net, url, 4, 6, collect, got, &received, &err));
	assert_string_equal(got, "456789");
	assert_int_equal(received, 6);
	otter_net_free(net);
	rm_rf(dir);
	free(dir);
}

static void test_net_http_ok_and_status(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_net *net = new_net(0, 0);
	struct server s = {0};
	char url[128];
	uint8_t *data = NULL;
	size_t len;

	server_start(&s, "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", 1);
	url_of(url, sizeof(url), &s, "/a.json");
	assert_ok(otter_net_fetch_buf(net, url, 5, &data, &len, &err));
	assert_string_equal((char *)data, "hello");
	assert_non_null(strstr(s.request, "GET /a.json"));
	free(data);
	server_stop(&s);

	static const struct {
		const char *resp;
		int code;
	} cases[] = {
		{"HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nno!", OTTER_E_NOT_FOUND},
		{"HTTP/1.0 403 Forbidden\r\nContent-Length: 0\r\n\r\n", OTTER_E_NOT_FOUND},
		{"HTTP/1.0 500 Oops\r\nContent-Length: 0\r\n\r\n", OTTER_E_NETWORK},
		{"garbage\r\n\r\n", OTTER_E_NOT_SUPPORTED}, /* HTTP/0.9 */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		otter_error_clear(&err);
		data = NULL;
		server_start(&s, cases[i].resp, 1);
		url_of(url, sizeof(url), &s, "/x");
		assert_err(otter_net_fetch_buf(net, url, 100, &data, &len, &err), cases[i].code,
			   &err, url);
		assert_null(data);
		server_stop(&s);
	}
	otter_net_free(net);
}

/* Endless data: the body is cut at the trusted length whatever the headers say. */
static void test_net_http_endless_data(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_net *net = new_net(0, 0);
	static char resp[70000];
	struct server s = {0};
	char url[128];
	uint8_t *data = NULL;
	size_t len;

	/* No Content-Length, connection close: 65000 bytes for a 100-byte cap. */
	strcpy(resp, "HTTP/1.0 200 OK\r\n\r\n");
	memset(resp + strlen(resp), 'A', 65000);
	server_start(&s, resp, 1);
	url_of(url, sizeof(url), &s, "/big");
	assert_err(otter_net_fetch_buf(net, url, 100, &data, &len, &err), OTTER_E_TOO_LARGE, &err,
		   "100 bytes");
	server_stop(&s);
	otter_error_clear(&err);
	/* An announced length above the cap is refused early. */
	server_start(&s, "HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\n", 1);
	url_of(url, sizeof(url), &s, "/announced");
	assert_err(otter_net_fetch_buf(net, url, 100, &data, &len, &err), OTTER_E_TOO_LARGE, &err,
		   NULL);
	server_stop(&s);
	otter_net_free(net);
}

/* Slow retrieval: a server that trickles one byte every 300 ms is abandoned. */
static void test_net_http_slow_retrieval(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_net *net = new_net(1000, 1);
	struct server s = {0};
	char url[128];
	uint8_t *data = NULL;
	size_t len;

	server_start(&s, "HTTP/1.0 200 OK\r\nContent-Length: 20\r\n\r\nab", 1);
	s.trickle = "cdefghijklmnopqrst";
	url_of(url, sizeof(url), &s, "/slow");
	assert_err(otter_net_fetch_buf(net, url, 100, &data, &len, &err), OTTER_E_TIMEOUT, &err,
		   NULL);
	server_stop(&s);
	otter_net_free(net);
}

static void test_net_http_redirects(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_net *net = new_net(0, 0);
	struct server s = {0};
	char url[128], resp[512];
	uint8_t *data = NULL;
	size_t len;

	/* http -> file:// is another protocol: refused. */
	memset(&s, 0, sizeof(s));
	server_start(&s, "HTTP/1.0 302 Found\r\nLocation: file:///etc/passwd\r\n"
			 "Content-Length: 0\r\n\r\n",
		     1);
	url_of(url, sizeof(url), &s, "/r");
	assert_true(otter_net_fetch_buf(net, url, 100000, &data, &len, &err) < 0);
	assert_null(data);
	server_stop(&s);
	/* http -> http is followed. */
	otter_error_clear(&err);
	memset(&s, 0, sizeof(s));
	s.second = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
	server_start(&s, "", 2);
	snprintf(resp, sizeof(resp),
		 "HTTP/1.0 302 Found\r\nLocation: http://127.0.0.1:%d/target\r\n"
		 "Content-Length: 0\r\n\r\n",
		 s.port);
	s.response = resp;
	s.response_len = strlen(resp);
	url_of(url, sizeof(url), &s, "/r");
	assert_ok(otter_net_fetch_buf(net, url, 100, &data, &len, &err));
	assert_string_equal((char *)data, "ok");
	assert_non_null(strstr(s.request, "GET /target"));
	free(data);
	server_stop(&s);
	otter_net_free(net);
}

static void test_net_http_range(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_net *net = new_net(0, 0);
	struct server s = {0};
	char url[128], got[64] = "";
	uint64_t received = 0;

	server_start(&s, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 4-9/10\r\n"
			 "Content-Length: 6\r\nConnection: close\r\n\r\n456789",
		     1);
	url_of(url, sizeof(url), &s, "/f");
	assert_ok(otter_net_fetch(net, url, 4, 6, collect, got, &received, &err));
	assert_string_equal(got, "456789");
	assert_non_null(strstr(s.request, "Range: bytes=4-"));
	server_stop(&s);
	/* A server that ignores the range sends the whole file: nothing reaches the sink. */
	got[0] = '\0';
	server_start(&s, "HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", 1);
	url_of(url, sizeof(url), &s, "/f");
	assert_err(otter_net_fetch(net, url, 4, 6, collect, got, &received, &err),
		   OTTER_E_NOT_SUPPORTED, &err, "range");
	assert_string_equal(got, "");
	server_stop(&s);
	otter_net_free(net);
}

/* An endless error page cannot hold the client: its body is bounded (64 KiB). */
static void test_net_http_error_page_is_bounded(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_net *net = new_net(0, 0);
	static char resp[300000];
	struct server s = {0};
	char url[128];
	uint8_t *data = NULL;
	size_t len;

	strcpy(resp, "HTTP/1.0 404 Not Found\r\n\r\n");
	memset(resp + strlen(resp), 'x', 250000);
	server_start(&s, resp, 1);
	url_of(url, sizeof(url), &s, "/root.json");
	assert_err(otter_net_fetch_buf(net, url, 100, &data, &len, &err), OTTER_E_NETWORK, &err,
		   "more than 65536 bytes");
	assert_null(data);
	server_stop(&s);
	/* A small error page is just the status. */
	otter_error_clear(&err);
	server_start(&s, "HTTP/1.0 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", 1);
	url_of(url, sizeof(url), &s, "/root.json");
	assert_err(otter_net_fetch_buf(net, url, 100, &data, &len, &err), OTTER_E_NOT_FOUND, &err,
		   NULL);
	server_stop(&s);
	/* A 2xx that is not 200 is not data. */
	otter_error_clear(&err);
	server_start(&s, "HTTP/1.0 203 Non-Authoritative\r\nContent-Length: 4\r\n\r\nbody", 1);
	url_of(url, sizeof(url), &s, "/root.json");
	assert_err(otter_net_fetch_buf(net, url, 100, &data, &len, &err), OTTER_E_NETWORK, &err,
		   "unexpected HTTP status 203");
	assert_null(data);
	server_stop(&s);
	otter_net_free(net);
}

static void count_tick(void *userdata)
{
	(*(unsigned *)userdata)++;
}

/* The tick hook runs while the transfer is idle (the agent feeds its watchdogs from it). */
static void test_net_tick_while_idle(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_net_options o = OTTER_NET_OPTIONS_INIT;
	otter_net *net = NULL;
	struct server s = {0};
	unsigned ticks = 0;
	char url[128];
	uint8_t *data = NULL;
	size_t len;

	o.tick = count_tick;
	o.tick_userdata = &ticks;
	assert_ok(otter_net_new(&net, &o, &err));
	server_start(&s, "HTTP/1.0 200 OK\r\nContent-Length: 8\r\n\r\n", 1);
	s.trickle = "abcdefgh"; /* 2.4 s for 8 bytes */
	url_of(url, sizeof(url), &s, "/slow");
	assert_ok(otter_net_fetch_buf(net, url, 8, &data, &len, &err));
	assert_string_equal((char *)data, "abcdefgh");
	assert_true(ticks >= 3);
	free(data);
	server_stop(&s);
	otter_net_free(net);
}

static void test_net_connection_refused(void **state)
{
	otter_error err = OTTER_ERROR_INIT;
	otter_net *net = new_net(0, 0);
	uint8_t *data = NULL;
	size_t len;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	char url[128];

	/* A port that was just free: nobody listens there. */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &al);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(a.sin_port));
	assert_err(otter_net_fetch_buf(net, url, 10, &data, &len, &err), OTTER_E_NETWORK, &err,
		   "127.0.0.1");
	otter_net_free(net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_file_caps),
		cmocka_unit_test(test_net_file_resume),
		cmocka_unit_test(test_net_http_ok_and_status),
		cmocka_unit_test(test_net_http_endless_data),
		cmocka_unit_test(test_net_http_slow_retrieval),
		cmocka_unit_test(test_net_http_redirects),
		cmocka_unit_test(test_net_http_range),
		cmocka_unit_test(test_net_http_error_page_is_bounded),
		cmocka_unit_test(test_net_tick_while_idle),
		cmocka_unit_test(test_net_connection_refused),
	};
	signal(SIGPIPE, SIG_IGN);
	otter_global_init(NULL);
	return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
