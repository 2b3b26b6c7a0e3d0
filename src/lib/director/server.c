/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The director's HTTP server (server.h, docs/director-protocol.md). */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include <otter/json.h>

#include "lib/director/admin.h"
#include "lib/director/manifest.h"
#include "lib/director/server.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/strutil.h"

#define PREFIX "/director/v1/"
#define ADMIN_MAX_SIZE (64u * 1024u)
#define MAX_PATH 512u

struct dir_server {
	const dir_server_config *cfg;
	struct MHD_Daemon *mhd;
	int fd;
	uint16_t port;
	pthread_key_t db_key;
	bool key_made;
};

typedef struct request {
	otter_buf body;
	size_t cap;
	bool too_large;
} request;

int dir_parse_listen(const char *s, char host[64], uint16_t *port, otter_error *err)
{
	const char *colon, *h = s;
	size_t hl;
	uint64_t p;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return otter_error_set(err, OTTER_E_CONFIG,
					       "listen \"%s\": expected [ADDRESS]:PORT", s);
		h = s + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return otter_error_set(err, OTTER_E_CONFIG,
					       "listen \"%s\": expected ADDRESS:PORT", s);
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl > 63 || parse_u64_range(colon + 1, 0, 65535, &p) < 0)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "listen \"%s\": expected ADDRESS:PORT with a port 0..65535", s);
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static int bind_socket(const char *listen_at, int *fd_out, uint16_t *port_out, otter_error *err)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	char host[64];
	uint16_t port;
	int fd, one = 1, r;

	r = dir_parse_listen(listen_at, host, &port, err);
	if (r < 0)
		return r;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		return otter_error_set(err, OTTER_E_CONFIG,
				       "listen \"%s\": \"%s\" is not an IPv4 or IPv6 address",
				       listen_at, host);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return otter_error_set_errno(err, errno, "socket for %s", listen_at);
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
		r = otter_error_set_errno(err, errno, "listening on %s", listen_at);
		close(fd);
		return r;
	}
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		r = otter_error_set_errno(err, errno, "getsockname %s", listen_at);
		close(fd);
		return r;
	}
	*port_out = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						  : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*fd_out = fd;
	return 0;
}

/* The worker thread's database connection, opened on first use. */
static dir_db *thread_db(dir_server *s, otter_error *err)
{
	dir_db *db = pthread_getspecific(s->db_key);

	if (db)
		return db;
	if (dir_db_open(&db, s->cfg->db_url, err) < 0)
		return NULL;
	if (pthread_setspecific(s->db_key, db) != 0) {
		dir_db_close(db);
		otter_error_set(err, OTTER_E_NOMEM, "pthread_setspecific");
		return NULL;
	}
	return db;
}

static void close_thread_db(void *p)
{
	dir_db_close(p);
}

static enum MHD_Result send_bytes(struct MHD_Connection *c, unsigned status, const void *data,
				  size_t len, const char *etag)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result r;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (etag)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, const json_t *v)
{
	_cleanup_free_ char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

	if (!text)
		return MHD_NO;
	return send_bytes(c, status, text, strlen(text), NULL);
}

static enum MHD_Result send_error(dir_server *s, struct MHD_Connection *c, unsigned status,
				  const char *code, const char *message)
{
	_cleanup_(json_decrefp) json_t *v = NULL;
	char msg[512];

	str_sanitize(message ? message : "", msg, sizeof(msg));
	v = json_pack("{s:s,s:s}", "error", code, "message", msg);
	(void)s;
	return v ? send_json(c, status, v) : MHD_NO;
}

static enum MHD_Result send_reply_error(dir_server *s, struct MHD_Connection *c,
					const dir_reply *rep, const otter_error *err)
{
	unsigned status = rep->status >= 400 ? (unsigned)rep->status : 500;

	return send_error(s, c, status, rep->error ? rep->error : "internal", err->msg);
}

static bool is_json(struct MHD_Connection *c)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	size_t n = strlen("application/json");

	return ct && strncasecmp(ct, "application/json", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static bool loopback_peer(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in in;
		memcpy(&in, sa, sizeof(in));
		return (ntohl(in.sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 in6;
		memcpy(&in6, sa, sizeof(in6));
		return IN6_IS_ADDR_LOOPBACK(&in6.sin6_addr);
	}
	return false;
}

/* Who sent a device request, by the configured mode. */
static int identify(dir_server *s, dir_db *db, struct MHD_Connection *c, const char *method,
		    const char *path, const request *rq, int64_t now, dir_who *who,
		    dir_reply *rep, otter_error *err)
{
	if (s->cfg->auth_mode == DIR_AUTH_PROXY) {
		const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     s->cfg->proxy_header);
		if (!loopback_peer(c)) {
			rep->status = 401;
			rep->error = "unauthorized";
			return otter_error_set(err, OTTER_E_SIGNATURE,
					       "proxy mode: requests are only accepted from the "
					       "proxy on the loopback interface");
		}
		return dir_device_identify(db, id ? id : "", who, rep, err);
	}
	return dir_device_authenticate(
		db, MHD_lookup_connection_value(c, MHD_HEADER_KIND, DIR_AUTH_HEADER), method, path,
		rq->body.data, rq->body.len, now, s->cfg->skew, who, rep, err);
}

static enum MHD_Result handle_metadata(dir_server *s, dir_db *db, struct MHD_Connection *c,
				       const char *path, const char *name, const request *rq,
				       int64_t now)
{
	otter_error err = OTTER_ERROR_INIT;
	dir_reply rep = { 0 };
	_cleanup_free_ uint8_t *data = NULL;
	const char *inm;
	char etag[40];
	uint64_t version;
	size_t len;
	dir_who who;

	if (identify(s, db, c, "GET", path, rq, now, &who, &rep, &err) < 0 ||
	    dir_device_metadata(db, s->cfg->signer, &who, name, now, &data, &len, &version, &rep,
				&err) < 0)
		return send_reply_error(s, c, &rep, &err);
	if (strcmp(name, "timestamp.json") != 0)
		return send_bytes(c, MHD_HTTP_OK, data, len, NULL);
	strfmt(etag, sizeof(etag), "\"%llu\"", (unsigned long long)version);
	inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm && strcmp(inm, etag) == 0)
		return send_bytes(c, MHD_HTTP_NOT_MODIFIED, "", 0, etag);
	return send_bytes(c, MHD_HTTP_OK, data, len, etag);
}

static enum MHD_Result handle_admin(dir_server *s, dir_db *db, struct MHD_Connection *c,
				    const char *op, const request *rq, int64_t now)
{
	otter_error err = OTTER_ERROR_INIT;
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	_cleanup_(json_decrefp) json_t *req = NULL, *resp = NULL;
	uint8_t want[32], got[32];
	int status = 0, r;
	dir_admin_env env = { db, s->cfg->image_metadata_url, s->cfg->image_metadata_dir, now };

	/* Compared as SHA-256 digests in constant time: neither length nor content leaks. */
	if (!s->cfg->admin_token || !auth || strncmp(auth, "Bearer ", 7) != 0 ||
	    otter_hash_buf(OTTER_HASH_SHA256, auth + 7, strlen(auth + 7), got, NULL) < 0 ||
	    otter_hash_buf(OTTER_HASH_SHA256, s->cfg->admin_token, strlen(s->cfg->admin_token),
			   want, NULL) < 0 ||
	    !dir_ct_equal(want, got, sizeof(want)))
		return send_error(s, c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
				  "admin API: missing or wrong bearer token");
	r = otter_json_parse(&req, rq->body.len ? rq->body.data : (const uint8_t *)"{}",
			     rq->body.len ? rq->body.len : 2, ADMIN_MAX_SIZE, &err);
	if (r < 0)
		return send_error(s, c, MHD_HTTP_BAD_REQUEST, "bad_request", err.msg);
	r = dir_admin_call(&env, op, req, &resp, &status, &err);
	if (r < 0)
		return send_error(s, c, status >= 400 ? (unsigned)status : 500,
				  status == 404 ? "not_found"
				  : status == 409 ? "conflict"
				  : status >= 500 ? "unavailable"
						  : "bad_request",
				  err.msg);
	return resp ? send_json(c, MHD_HTTP_OK, resp) : send_bytes(c, MHD_HTTP_OK, "{}", 2, NULL);
}

static enum MHD_Result handle_register(dir_server *s, dir_db *db, struct MHD_Connection *c,
				       const char *path, const request *rq, int64_t now)
{
	otter_error err = OTTER_ERROR_INIT;
	_cleanup_(json_decrefp) json_t *resp = NULL;
	dir_reply rep = { 0 };

	if (dir_device_register(db, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
								DIR_AUTH_HEADER),
				path, rq->body.data, rq->body.len, now, s->cfg->skew, &resp, &rep,
				&err) < 0)
		return send_reply_error(s, c, &rep, &err);
	return send_json(c, (unsigned)rep.status, resp);
}

static enum MHD_Result handle_manifest(dir_server *s, dir_db *db, struct MHD_Connection *c,
				       const char *path, const request *rq, int64_t now)
{
	otter_error err = OTTER_ERROR_INIT;
	dir_reply rep = { 0 };
	dir_who who;

	if (identify(s, db, c, "PUT", path, rq, now, &who, &rep, &err) < 0 ||
	    dir_device_manifest(db, &who, rq->body.data, rq->body.len, now, &rep, &err) < 0)
		return send_reply_error(s, c, &rep, &err);
	return send_bytes(c, MHD_HTTP_NO_CONTENT, "", 0, NULL);
}

typedef enum route_kind { R_NONE, R_REGISTER, R_MANIFEST, R_METADATA, R_ADMIN } route_kind;

/* The route of a path and the method and body cap it takes. */
static route_kind route_of(const dir_server *s, const char *url, const char **rest,
			   const char **method, size_t *cap)
{
	const char *p;

	if (strncmp(url, PREFIX, strlen(PREFIX)) != 0 || strlen(url) > MAX_PATH)
		return R_NONE;
	p = url + strlen(PREFIX);
	if (s->cfg->admin_routes && strncmp(p, "admin/", 6) == 0 && dir_id_ok(p + 6)) {
		*rest = p + 6;
		*method = "POST";
		*cap = ADMIN_MAX_SIZE;
		return R_ADMIN;
	}
	if (!s->cfg->device_routes)
		return R_NONE;
	if (strcmp(p, "register") == 0) {
		*method = "POST";
		*cap = DIR_REGISTER_MAX_SIZE;
		return R_REGISTER;
	}
	if (strcmp(p, "manifest") == 0) {
		*method = "PUT";
		*cap = DIR_MANIFEST_MAX_SIZE;
		return R_MANIFEST;
	}
	if (strncmp(p, "metadata/", 9) == 0 && p[9] && !strchr(p + 9, '/')) {
		*rest = p + 9;
		*method = "GET";
		*cap = 0;
		return R_METADATA;
	}
	return R_NONE;
}

static enum MHD_Result dispatch(dir_server *s, struct MHD_Connection *c, const char *url,
				const char *method, request *rq)
{
	otter_error err = OTTER_ERROR_INIT;
	const char *rest = NULL, *want = NULL;
	int64_t now = (int64_t)time(NULL);
	size_t cap = 0;
	route_kind k = route_of(s, url, &rest, &want, &cap);
	dir_db *db;

	if (k == R_NONE)
		return send_error(s, c, MHD_HTTP_NOT_FOUND, "not_found", "no such resource");
	if (strcmp(method, want) != 0) {
		/* 405 with the method the resource takes. */
		_cleanup_(json_decrefp) json_t *v = json_pack(
			"{s:s,s:s}", "error", "method_not_allowed", "message", "wrong method");
		_cleanup_free_ char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
		struct MHD_Response *resp;
		enum MHD_Result r;
		if (!text)
			return MHD_NO;
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, want);
		r = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
		MHD_destroy_response(resp);
		return r;
	}
	if (rq->too_large)
		return send_error(s, c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
				  "request body larger than this resource accepts");
	if (k != R_METADATA && rq->body.len > 0 && !is_json(c))
		return send_error(s, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
				  "request bodies must be application/json");
	if (k != R_METADATA && k != R_ADMIN && rq->body.len == 0)
		return send_error(s, c, MHD_HTTP_BAD_REQUEST, "bad_request",
				  "request body is empty");
	db = thread_db(s, &err);
	if (!db)
		return send_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable", err.msg);
	switch (k) {
	case R_REGISTER:
		return handle_register(s, db, c, url, rq, now);
	case R_MANIFEST:
		return handle_manifest(s, db, c, url, rq, now);
	case R_METADATA:
		return handle_metadata(s, db, c, url, rest, rq, now);
	case R_ADMIN:
		return handle_admin(s, db, c, rest, rq, now);
	default:
		return MHD_NO;
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	dir_server *s = cls;
	request *rq = *con_cls;
	enum MHD_Result r;

	(void)version;
	if (!rq) {
		const char *rest, *want;
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		uint64_t n;
		rq = otter_calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->cap = 0;
		if (route_of(s, url, &rest, &want, &rq->cap) == R_NONE)
			rq->cap = 0;
		buf_init(&rq->body, rq->cap);
		*con_cls = rq;
		/* Refuse a too large body before reading it: the answer goes out at once and
		 * libmicrohttpd closes the connection instead of reading the rest. */
		if (cl && (parse_u64(cl, &n) < 0 || n > rq->cap)) {
			rq->too_large = true;
			return dispatch(s, c, url, method, rq);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!rq->too_large &&
		    buf_append(&rq->body, upload_data, *upload_data_size, NULL) < 0) {
			rq->too_large = true;
			buf_clear(&rq->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	r = dispatch(s, c, url, method, rq);
	if (s->cfg->access_log) {
		char u[128];
		str_sanitize(url, u, sizeof(u));
		fprintf(stderr, "otter-director: %s %s\n", method, u);
	}
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	request *rq = *con_cls;

	(void)cls, (void)c, (void)toe;
	if (rq) {
		buf_clear(&rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

int dir_server_start(dir_server **out, const dir_server_config *cfg, otter_error *err)
{
	_cleanup_free_ dir_server *s = otter_calloc(1, sizeof(*s));
	unsigned threads = cfg->threads ? cfg->threads : 1;
	int r;

	if (!s)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	s->cfg = cfg;
	s->fd = -1;
	if (pthread_key_create(&s->db_key, close_thread_db) != 0)
		return otter_error_set(err, OTTER_E_NOMEM, "pthread_key_create");
	s->key_made = true;
	r = bind_socket(cfg->listen, &s->fd, &s->port, err);
	if (r < 0) {
		pthread_key_delete(s->db_key);
		return r;
	}
	s->mhd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		on_request, s, MHD_OPTION_LISTEN_SOCKET, s->fd, MHD_OPTION_THREAD_POOL_SIZE,
		threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)4096, MHD_OPTION_END);
	if (!s->mhd) {
		close(s->fd);
		pthread_key_delete(s->db_key);
		return otter_error_set(err, OTTER_E_IO, "could not start the HTTP server on %s",
				       cfg->listen);
	}
	*out = TAKE_PTR(s);
	return 0;
}

uint16_t dir_server_port(const dir_server *s)
{
	return s->port;
}

dir_server *dir_server_stop(dir_server *s)
{
	if (!s)
		return NULL;
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	if (s->fd >= 0)
		close(s->fd);
	if (s->key_made)
		pthread_key_delete(s->db_key);
	free(s);
	return NULL;
}
