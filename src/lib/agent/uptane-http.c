/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Signed requests to otter-director (docs/director-protocol.md "Authentication"): every
 * request carries Otter-Signature, the ECU key's signature over
 *   "otter-director-v1\n" METHOD "\n" PATH "\n" TIME "\n" hex(sha256(BODY)).
 * The answer is untrusted: its body is capped by the caller, an error body is read only up
 * to a small buffer, and nothing of it is interpreted except the HTTP status.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "uptane.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/strutil.h"

#define SIGNATURE_PREFIX "otter-director-v1\n"

char *uptane_signing_string(const char *method, const char *path, int64_t t,
			    const uint8_t *body, size_t body_len)
{
	char hex[2 * 32 + 1];
	size_t n;
	char *s;

	if (otter_hash_buf_hex(OTTER_HASH_SHA256, body ? (const void *)body : "", body_len, hex,
			       NULL) < 0)
		return NULL;
	n = strlen(SIGNATURE_PREFIX) + strlen(method) + strlen(path) + 24 + sizeof(hex) + 4;
	s = malloc(n);
	if (s)
		snprintf(s, n, SIGNATURE_PREFIX "%s\n%s\n%" PRId64 "\n%s", method, path, t, hex);
	return s;
}

/* The path of url as sent: from the first '/' after "scheme://host", up to '?' or '#'. */
static int url_path(const char *url, char *out, size_t size, otter_error *err)
{
	const char *p = strstr(url, "://"), *end;

	if (!p)
		return otter_error_set(err, OTTER_E_CONFIG, "'%s' is not a URL", url);
	p = strchr(p + 3, '/');
	if (!p)
		p = "/";
	end = p + strcspn(p, "?#");
	if ((size_t)(end - p) >= size)
		return otter_error_set(err, OTTER_E_INVALID, "URL path of '%s' is too long", url);
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	return 0;
}

static int signature_header(const uptane_http *h, const char *method, const char *url,
			    const uint8_t *body, size_t body_len, char **out, otter_error *err)
{
	char path[2048];
	_cleanup_free_ char *msg = NULL;
	_cleanup_free_ uint8_t *sig = NULL;
	unsigned char b64[4 * ((512 + 2) / 3) + 1];
	size_t siglen, n;
	int64_t t = h->now ? h->now(h->now_userdata) : (int64_t)time(NULL);
	int r;

	r = url_path(url, path, sizeof(path), err);
	if (r < 0)
		return r;
	msg = uptane_signing_string(method, path, t, body, body_len);
	if (!msg)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = otter_key_sign(h->key, (const uint8_t *)msg, strlen(msg), &sig, &siglen, err);
	if (r < 0)
		return otter_error_prefix(err, r, "signing the request to %s", url);
	if (siglen > 512)
		return otter_error_set(err, OTTER_E_CRYPTO, "signature of %zu bytes is too long",
				       siglen);
	EVP_EncodeBlock(b64, sig, (int)siglen);
	n = 64 + strlen(h->keyid) + 24 + sizeof(b64);
	*out = malloc(n);
	if (!*out)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	snprintf(*out, n, "Otter-Signature: keyid=\"%s\", time=%" PRId64 ", sig=\"%s\"", h->keyid,
		 t, (const char *)b64);
	return 0;
}

struct answer {
	otter_net_sink sink;
	void *sink_userdata;
	CURL *curl;
	uint64_t max_len, received;
	char *errbody;
	size_t errbody_size, errbody_len;
	int failure;
	otter_error *err;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct answer *a = userdata;
	size_t len = size * nmemb;
	long code = 0;

	curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299) {
		/* An error page: keep its beginning for the message, drop the rest. */
		if (a->errbody && a->errbody_len + 1 < a->errbody_size) {
			size_t n = a->errbody_size - 1 - a->errbody_len;
			if (n > len)
				n = len;
			memcpy(a->errbody + a->errbody_len, data, n);
			a->errbody_len += n;
			a->errbody[a->errbody_len] = '\0';
		}
		return len;
	}
	if (len > a->max_len - a->received) {
		a->failure = otter_error_set(a->err, OTTER_E_TOO_LARGE,
					     "answer larger than the allowed %" PRIu64 " bytes",
					     a->max_len);
		return 0;
	}
	a->received += len;
	if (a->sink) {
		int r = a->sink(a->sink_userdata, (const uint8_t *)data, len, a->err);
		if (r < 0) {
			a->failure = r;
			return 0;
		}
	}
	return len;
}

struct body_reader {
	const uint8_t *p;
	size_t left;
};

static size_t on_read(char *buf, size_t size, size_t nmemb, void *userdata)
{
	struct body_reader *b = userdata;
	size_t n = size * nmemb;

	if (n > b->left)
		n = b->left;
	memcpy(buf, b->p, n);
	b->p += n;
	b->left -= n;
	return n;
}

int uptane_http_request(const uptane_http *h, const char *method, const char *url,
			const uint8_t *body, size_t body_len, uint64_t max_len, otter_net_sink sink,
			void *sink_userdata, long *status, char *errbody, size_t errbody_size,
			otter_error *err)
{
	_cleanup_free_ char *sighdr = NULL;
	struct curl_slist *hdrs = NULL;
	struct body_reader reader = {body, body_len};
	struct answer ans = {sink, sink_userdata, NULL, max_len, 0, errbody, errbody_size, 0, 0,
			     err};
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode cr;
	CURL *c;
	int r;

	*status = 0;
	if (errbody && errbody_size)
		errbody[0] = '\0';
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "director '%s': not an http:// or https:// URL", url);
	r = signature_header(h, method, url, body, body_len, &sighdr, err);
	if (r < 0)
		return r;
	c = curl_easy_init();
	if (!c)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory (curl)");
	ans.curl = c;
	hdrs = curl_slist_append(hdrs, sighdr);
	if (body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (!hdrs) {
		curl_easy_cleanup(c);
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	/* No redirects: the signature covers the path it was made for. */
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
			 h->net && h->net->connect_timeout_s ? h->net->connect_timeout_s : 30L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT,
			 h->net && h->net->low_speed_limit ? h->net->low_speed_limit : 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
			 h->net && h->net->low_speed_time_s ? h->net->low_speed_time_s : 30L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "otter/" OTTER_VERSION);
	if (h->net && h->net->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->net->ca_file);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &ans);
	curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c, CURLOPT_UPLOAD, strcmp(method, "PUT") == 0 ? 1L : 0L);
		if (strcmp(method, "PUT") == 0) {
			curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(c, CURLOPT_READDATA, &reader);
			curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body_len);
		} else {
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		}
	}
	cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	if (ans.failure < 0)
		return otter_error_prefix(err, ans.failure, "%s %s", method, url);
	if (cr == CURLE_OPERATION_TIMEDOUT)
		return otter_error_set(err, OTTER_E_TIMEOUT, "%s %s: %s", method, url,
				       errbuf[0] ? errbuf : curl_easy_strerror(cr));
	if (cr != CURLE_OK)
		return otter_error_set(err, OTTER_E_NETWORK,
				       "%s %s: %s (is the director running and reachable?)", method,
				       url, errbuf[0] ? errbuf : curl_easy_strerror(cr));
	return 0;
}

int uptane_http_fetch(void *userdata, const char *url, uint64_t max_len, otter_net_sink sink,
		      void *sink_userdata, otter_error *err)
{
	const uptane_http *h = userdata;
	char body[512], clean[512];
	long status;
	int r = uptane_http_request(h, "GET", url, NULL, 0, max_len, sink, sink_userdata, &status,
				    body, sizeof(body), err);

	if (r < 0)
		return r;
	if (status == 200)
		return 0;
	str_sanitize(body, clean, sizeof(clean));
	if (status == 403 || status == 404 || status == 410)
		return otter_error_set(err, OTTER_E_NOT_FOUND, "%s: not found (HTTP %ld)", url,
				       status);
	if (status == 401)
		return otter_error_set(err, OTTER_E_NETWORK,
				       "%s: the director refused the request's signature (HTTP 401: "
				       "%s): is this device registered, and is its clock right?",
				       url, clean);
	return otter_error_set(err, OTTER_E_NETWORK, "%s: HTTP %ld: %s", url, status, clean);
}
