/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <otter/net.h>

#include <inttypes.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "util/alloc.h"
#include "util/args.h"
#include "util/buf.h"
#include "util/cleanup.h"

#define DEFAULT_CONNECT_TIMEOUT 30L
#define DEFAULT_LOW_SPEED_LIMIT 1024L
#define DEFAULT_LOW_SPEED_TIME  30L
#define MAX_REDIRECTS           5L
/* An error page is read to the end so that the connection stays usable, but no further. */
#define MAX_ERROR_BODY          (64u * 1024u)

struct otter_net {
	CURL *curl;
	otter_net_options opts;
	char *protocols;
	char *ca_file;
	char *user_agent;
};

struct transfer {
	otter_net_sink sink;
	void *userdata;
	uint64_t max_len;
	uint64_t offset;
	uint64_t received;
	uint64_t discarded;
	CURL *curl;
	int failure;         /* our own reason for aborting, when we abort */
	otter_error *err;
};

static void *json_malloc(size_t n)
{
	return otter_malloc(n);
}

int otter_global_init(otter_error *err)
{
	/* GLOBAL: jansson's allocator is process-wide; route it through ours (fault injection). */
	json_set_alloc_funcs(json_malloc, free);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return otter_error_set(err, OTTER_E_NETWORK, "curl_global_init failed");
	return 0;
}

otter_net *otter_net_free(otter_net *net)
{
	if (net) {
		if (net->curl)
			curl_easy_cleanup(net->curl);
		free(net->protocols);
		free(net->ca_file);
		free(net->user_agent);
		free(net);
	}
	return NULL;
}

int otter_net_new(otter_net **out, const otter_net_options *opts, otter_error *err)
{
	otter_net_options defaults = OTTER_NET_OPTIONS_INIT;
	otter_net *net;

	ARG_NONNULL(err, "net", out);
	if (!opts)
		opts = &defaults;
	if (opts->version != OTTER_NET_OPTIONS_VERSION)
		return otter_error_set(err, OTTER_E_INVALID, "net: unknown options version %u",
				       opts->version);
	net = otter_calloc(1, sizeof(*net));
	if (!net)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	net->opts = *opts;
	net->protocols = otter_strdup(opts->protocols ? opts->protocols : "http,https,file");
	net->user_agent = otter_strdup(opts->user_agent ? opts->user_agent : "otter/" OTTER_VERSION);
	net->ca_file = opts->ca_file ? otter_strdup(opts->ca_file) : NULL;
	net->curl = curl_easy_init();
	if (!net->protocols || !net->user_agent || (opts->ca_file && !net->ca_file) || !net->curl) {
		otter_net_free(net);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	if (net->opts.connect_timeout_s <= 0)
		net->opts.connect_timeout_s = DEFAULT_CONNECT_TIMEOUT;
	if (net->opts.low_speed_limit <= 0)
		net->opts.low_speed_limit = DEFAULT_LOW_SPEED_LIMIT;
	if (net->opts.low_speed_time_s <= 0)
		net->opts.low_speed_time_s = DEFAULT_LOW_SPEED_TIME;
	*out = net;
	return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct transfer *t = userdata;
	size_t n = size * nmemb;
	long code = 0;
	int r;

	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
	/*
	 * Data is the body of a 200 (206 when resuming; 0 for file://). Anything else is an
	 * error page or an answer we did not ask for: never data, and bounded, so that an
	 * endless error page cannot hold the client (the status decides afterwards).
	 */
	if (t->offset > 0 && code == 200) {
		/* Ranged request answered with the whole body: the caller must start over. */
		t->failure = otter_error_set(t->err, OTTER_E_NOT_SUPPORTED,
					     "server ignored the range request");
		return 0;
	}
	if (code != 0 && code != (t->offset > 0 ? 206 : 200)) {
		if (code >= 200 && code < 300) {
			t->failure = otter_error_set(t->err, OTTER_E_NETWORK,
						     "unexpected HTTP status %ld", code);
			return 0;
		}
		if (n > MAX_ERROR_BODY - t->discarded) {
			t->failure = otter_error_set(t->err, OTTER_E_NETWORK,
						     "HTTP %ld with a body of more than %u bytes", code,
						     MAX_ERROR_BODY);
			return 0;
		}
		t->discarded += n;
		return n;
	}
	if (n > t->max_len - t->received) {
		t->failure = otter_error_set(t->err, OTTER_E_TOO_LARGE,
					     "response exceeds the allowed %" PRIu64 " bytes",
					     t->max_len);
		return 0;
	}
	r = t->sink(t->userdata, (const uint8_t *)ptr, n, t->err);
	if (r < 0) {
		t->failure = r;
		return 0;
	}
	t->received += n;
	return n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const otter_net *net = userdata;

	net->opts.tick(net->opts.tick_userdata);
	return 0;
}

static const char *scheme_of(const char *url, char *buf, size_t size)
{
	const char *colon = strstr(url, "://");
	size_t n;

	if (!colon)
		return NULL;
	n = (size_t)(colon - url);
	if (n == 0 || n >= size)
		return NULL;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(url[i] >= 'A' && url[i] <= 'Z' ? url[i] + 32 : url[i]);
	buf[n] = '\0';
	return buf;
}

int otter_net_fetch(otter_net *net, const char *url, uint64_t offset, uint64_t max_len,
		    otter_net_sink sink, void *userdata, uint64_t *received, otter_error *err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	char scheme[16];
	struct transfer t = {
		.sink = sink,
		.userdata = userdata,
		.max_len = max_len,
		.offset = offset,
		.curl = net ? net->curl : NULL,
		.err = err,
	};
	CURL *c;
	CURLcode cr;
	long code = 0;

	if (received)
		*received = 0;
	ARG_NONNULL(err, "net", net);
	ARG_NONNULL(err, "net", url);
	ARG_NONNULL(err, "net", sink);
	if (!scheme_of(url, scheme, sizeof(scheme)))
		return otter_error_set(err, OTTER_E_INVALID, "'%s' is not a URL", url);
	c = net->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, net->protocols);
	/* A redirect may not change the protocol (https -> http, http -> file ...). */
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, scheme);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, net->opts.connect_timeout_s);
	if (net->opts.total_timeout_s > 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT, net->opts.total_timeout_s);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, net->opts.low_speed_limit);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, net->opts.low_speed_time_s);
	curl_easy_setopt(c, CURLOPT_USERAGENT, net->user_agent);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	if (net->opts.tick) {
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, net);
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	}
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
	/* Metadata must arrive as served: no transparent decompression. */
	curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	if (net->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, net->ca_file);
	/* An early refusal when the server announces too much; never a reason to trust it. */
	/* (Not when resuming: a server ignoring the range announces the whole file, and that
	 * must read as "start over", not as too large.) */
	if (max_len < (uint64_t)INT64_MAX && offset == 0)
		curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_len);
	if (offset > 0)
		curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)offset);

	cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	if (received)
		*received = t.received;

	if (t.failure < 0)
		return otter_error_prefix(err, t.failure, "%s", url);
	switch (cr) {
	case CURLE_OK:
		break;
	case CURLE_FILESIZE_EXCEEDED:
		return otter_error_set(err, OTTER_E_TOO_LARGE,
				       "%s: server announced more than the allowed %" PRIu64
				       " bytes",
				       url, max_len);
	case CURLE_OPERATION_TIMEDOUT:
		return otter_error_set(err, OTTER_E_TIMEOUT, "%s: %s", url,
				       errbuf[0] ? errbuf : curl_easy_strerror(cr));
	case CURLE_FILE_COULDNT_READ_FILE:
		return otter_error_set(err, OTTER_E_NOT_FOUND, "%s: not found", url);
	case CURLE_OUT_OF_MEMORY:
		return otter_error_set(err, OTTER_E_NOMEM, "%s: out of memory", url);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
				       "%s: %s (allowed protocols: %s; redirects keep the protocol)",
				       url, errbuf[0] ? errbuf : curl_easy_strerror(cr),
				       net->protocols);
	case CURLE_RANGE_ERROR:
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED, "%s: range request refused",
				       url);
	default:
		return otter_error_set(err, OTTER_E_NETWORK, "%s: %s", url,
				       errbuf[0] ? errbuf : curl_easy_strerror(cr));
	}
	if (code == 403 || code == 404 || code == 410)
		return otter_error_set(err, OTTER_E_NOT_FOUND, "%s: HTTP %ld", url, code);
	if (code >= 400 || (code >= 300 && code < 400))
		return otter_error_set(err, OTTER_E_NETWORK, "%s: HTTP %ld", url, code);
	if (offset > 0 && code == 200)
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
				       "%s: server ignored the range request", url);
	return 0;
}

static int buf_sink(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	return buf_append(userdata, data, len, err);
}

int otter_net_fetch_buf(otter_net *net, const char *url, size_t max_len, uint8_t **out,
			size_t *len, otter_error *err)
{
	otter_buf b;
	int r;

	buf_init(&b, max_len);
	r = otter_net_fetch(net, url, 0, max_len, buf_sink, &b, NULL, err);
	if (r < 0) {
		buf_clear(&b);
		return r;
	}
	*out = buf_steal(&b, len);
	if (!*out)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	return 0;
}
