/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_DIRECTOR_SERVER_H
#define OTTER_LIB_DIRECTOR_SERVER_H

/*
 * The director's HTTP server (libmicrohttpd, a thread pool): routes /director/v1/ requests to
 * device.c and admin requests to dir_admin_call (docs/director-protocol.md). Each worker
 * thread opens its own database connection on first use (dir_db is one connection per
 * thread) and closes it when the thread ends.
 */

#include <stdbool.h>
#include <stdint.h>

#include <otter/error.h>

#include "lib/director/device.h"

typedef enum dir_auth_mode {
	DIR_AUTH_SIGNATURE, /* every request signed by the device key (default) */
	DIR_AUTH_PROXY,     /* a TLS proxy on loopback names the device in a header */
} dir_auth_mode;

typedef struct dir_server_config {
	const char *db_url;
	const char *listen;        /* "HOST:PORT", "[V6]:PORT"; port 0 = any free port */
	unsigned threads;          /* worker threads */
	int64_t skew;              /* allowed request time skew (s) */
	const dir_signer *signer;
	bool device_routes;        /* serve /director/v1/ device routes on this listener */
	bool admin_routes;         /* serve /director/v1/admin/ on this listener */
	const char *admin_token;   /* bearer token of the admin API */
	const char *image_metadata_url;
	const char *image_metadata_dir;
	bool access_log;           /* one line per request on stderr */
	dir_auth_mode auth_mode;
	const char *proxy_header;  /* proxy mode: the header that names the device */
} dir_server_config;

typedef struct dir_server dir_server;

/* Binds, listens and starts the workers. The config (and what it points to) must outlive
 * the server. */
int dir_server_start(dir_server **out, const dir_server_config *cfg, otter_error *err);
/* The port bound (useful with port 0). */
uint16_t dir_server_port(const dir_server *s);
/* Stops accepting, finishes running requests, joins the workers. */
dir_server *dir_server_stop(dir_server *s);

/* Splits "HOST:PORT" / "[V6]:PORT" (exported for tests). host gets at most 63 chars. */
int dir_parse_listen(const char *s, char host[64], uint16_t *port, otter_error *err);

#endif
