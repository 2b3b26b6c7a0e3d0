/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_NET_H
#define OTTER_NET_H

/*
 * Fetching http://, https:// and file:// URLs with libcurl, for untrusted servers:
 *  - the body is capped at a length the caller takes from trusted metadata; the transfer is
 *    aborted the moment one byte more arrives (Content-Length is never trusted);
 *  - connect timeout, total timeout and a minimum average speed over a time window (the
 *    slow-retrieval attack ends in OTTER_E_TIMEOUT);
 *  - redirects are followed only within the same protocol (at most 5);
 *  - only the body of a 200 (or 206 when resuming) reaches the sink; the body of an error
 *    page is discarded, and more than 64 KiB of it aborts the transfer;
 *  - HTTP 403, 404 and 410, and missing file:// files, give OTTER_E_NOT_FOUND;
 *  - resuming at an offset uses a Range request; a server that ignores it gives
 *    OTTER_E_NOT_SUPPORTED before any byte reaches the sink.
 * Data goes to a caller-supplied sink, so nothing partial is ever left in a file by this module.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct otter_net_options {
	unsigned version;            /* OTTER_NET_OPTIONS_VERSION */
	long connect_timeout_s;      /* 0 = default 30 s */
	long total_timeout_s;        /* 0 = none */
	long low_speed_limit;        /* bytes/s averaged over low_speed_time_s; 0 = default 1024 */
	long low_speed_time_s;       /* 0 = default 30 s */
	const char *protocols;       /* curl protocol list; NULL = "http,https,file" */
	const char *ca_file;         /* NULL = system default */
	const char *user_agent;      /* NULL = "otter/<version>" */
	/* Called about once a second during every transfer, also while no byte arrives (the
	 * agent feeds its watchdogs from it). NULL = none. */
	void (*tick)(void *userdata);
	void *tick_userdata;
} otter_net_options;

#define OTTER_NET_OPTIONS_VERSION 1
#define OTTER_NET_OPTIONS_INIT {OTTER_NET_OPTIONS_VERSION, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL}

/* Receives body bytes. A negative return aborts the transfer with that error. */
typedef int (*otter_net_sink)(void *userdata, const uint8_t *data, size_t len, otter_error *err);

typedef struct otter_net otter_net;

OTTER_PUBLIC int otter_net_new(otter_net **out, const otter_net_options *opts, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC otter_net *otter_net_free(otter_net *net);

/*
 * Fetches url from byte offset (0 = whole body), delivering at most max_len bytes to sink.
 * *received (may be NULL) counts the bytes delivered. More than max_len: OTTER_E_TOO_LARGE.
 */
OTTER_PUBLIC int otter_net_fetch(otter_net *net, const char *url, uint64_t offset,
				 uint64_t max_len, otter_net_sink sink, void *userdata,
				 uint64_t *received, otter_error *err) OTTER_WARN_UNUSED_RESULT;

/* Fetches url into a new NUL-terminated buffer of at most max_len bytes. */
OTTER_PUBLIC int otter_net_fetch_buf(otter_net *net, const char *url, size_t max_len,
				     uint8_t **out, size_t *len, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

/* Global set-up for the process (curl_global_init); call once from main before threads. */
OTTER_PUBLIC int otter_global_init(otter_error *err);

#ifdef __cplusplus
}
#endif

#endif
