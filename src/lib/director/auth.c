/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device request authentication (auth.h, docs/director-protocol.md). */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <otter/tuf.h>

#include "lib/director/auth.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/cleanup.h"
#include "util/strutil.h"

bool dir_id_ok(const char *s)
{
	size_t n;

	if (!s)
		return false;
	n = strlen(s);
	if (n == 0 || n > DIR_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

bool dir_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (uint8_t)(x[i] ^ y[i]);
	return d == 0;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int dir_b64_encode(const uint8_t *in, size_t len, char **out, otter_error *err)
{
	size_t groups = len / 3 + (len % 3 != 0), n;
	char *s, *p;

	if (size_mul_overflow(groups, 4, &n) || size_add_overflow(n, 1, &n))
		return otter_error_set(err, OTTER_E_TOO_LARGE, "base64: input too large");
	s = otter_malloc(n);
	if (!s)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	p = s;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t left = len - i;
		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		*p++ = b64_alphabet[(v >> 18) & 63];
		*p++ = b64_alphabet[(v >> 12) & 63];
		*p++ = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
		*p++ = left > 2 ? b64_alphabet[v & 63] : '=';
	}
	*p = '\0';
	*out = s;
	return 0;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;
	return p ? (int)(p - b64_alphabet) : -1;
}

int dir_b64_decode(const char *in, size_t max, uint8_t **out, size_t *len, otter_error *err)
{
	size_t n = strlen(in), o = 0, cap;
	_cleanup_free_ uint8_t *buf = NULL;

	if (n == 0 || n % 4 != 0)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "base64: length %zu is not a positive multiple of 4", n);
	cap = n / 4 * 3;
	if (cap > max + 2)
		return otter_error_set(err, OTTER_E_FORMAT, "base64: more than %zu bytes", max);
	buf = otter_malloc(cap ? cap : 1);
	if (!buf)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		bool last = i + 4 == n;
		for (size_t j = 0; j < 4; j++)
			v[j] = b64_value(in[i + j]);
		if (v[0] < 0 || v[1] < 0)
			return otter_error_set(err, OTTER_E_FORMAT, "base64: bad character");
		uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12;
		buf[o++] = (uint8_t)(x >> 16);
		if (in[i + 2] == '=') {
			/* "xx==": the unused bits must be zero (one encoding per value). */
			if (!last || in[i + 3] != '=' || (v[1] & 15) != 0)
				return otter_error_set(err, OTTER_E_FORMAT, "base64: bad padding");
			break;
		}
		if (v[2] < 0)
			return otter_error_set(err, OTTER_E_FORMAT, "base64: bad character");
		x |= (uint32_t)v[2] << 6;
		buf[o++] = (uint8_t)(x >> 8);
		if (in[i + 3] == '=') {
			if (!last || (v[2] & 3) != 0)
				return otter_error_set(err, OTTER_E_FORMAT, "base64: bad padding");
			break;
		}
		if (v[3] < 0)
			return otter_error_set(err, OTTER_E_FORMAT, "base64: bad character");
		x |= (uint32_t)v[3];
		buf[o++] = (uint8_t)x;
	}
	if (o > max)
		return otter_error_set(err, OTTER_E_FORMAT, "base64: more than %zu bytes", max);
	*out = TAKE_PTR(buf);
	*len = o;
	return 0;
}

/* One `name=value` or `name="value"` parameter at *p; advances *p past it and a separator. */
static int next_param(const char **p, char *name, size_t name_size, char *value,
		      size_t value_size, otter_error *err)
{
	const char *s = *p, *e;
	size_t n;

	while (*s == ' ')
		s++;
	e = s;
	while ((*e >= 'a' && *e <= 'z'))
		e++;
	n = (size_t)(e - s);
	if (n == 0 || n >= name_size || *e != '=')
		return otter_error_set(err, OTTER_E_FORMAT,
				       DIR_AUTH_HEADER ": expected name=value at \"%.20s\"", s);
	memcpy(name, s, n);
	name[n] = '\0';
	s = e + 1;
	if (*s == '"') {
		e = strchr(s + 1, '"');
		if (!e)
			return otter_error_set(err, OTTER_E_FORMAT,
					       DIR_AUTH_HEADER ": unterminated quote in %s", name);
		s++;
	} else {
		e = s + strcspn(s, ", ");
	}
	n = (size_t)(e - s);
	if (n == 0 || n >= value_size)
		return otter_error_set(err, OTTER_E_FORMAT, DIR_AUTH_HEADER ": %s: bad length",
				       name);
	memcpy(value, s, n);
	value[n] = '\0';
	if (*e == '"')
		e++;
	while (*e == ' ')
		e++;
	if (*e == ',')
		e++;
	else if (*e != '\0')
		return otter_error_set(err, OTTER_E_FORMAT,
				       DIR_AUTH_HEADER ": expected ',' after %s", name);
	*p = e;
	return 0;
}

int dir_sig_header_parse(const char *value, dir_sig_header *out, otter_error *err)
{
	bool have_keyid = false, have_time = false, have_sig = false;
	const char *p = value;
	char name[16], val[DIR_AUTH_MAX_HEADER];
	int r;

	memset(out, 0, sizeof(*out));
	if (strlen(value) >= DIR_AUTH_MAX_HEADER)
		return otter_error_set(err, OTTER_E_FORMAT, DIR_AUTH_HEADER ": longer than %u bytes",
				       DIR_AUTH_MAX_HEADER);
	while (*p) {
		r = next_param(&p, name, sizeof(name), val, sizeof(val), err);
		if (r < 0)
			return r;
		if (strcmp(name, "keyid") == 0 && !have_keyid) {
			if (strlen(val) != OTTER_KEYID_HEX_LEN ||
			    !is_lower_hex(val, OTTER_KEYID_HEX_LEN))
				return otter_error_set(err, OTTER_E_FORMAT, DIR_AUTH_HEADER
						       ": keyid is not 64 lower-case hex digits");
			memcpy(out->keyid, val, OTTER_KEYID_HEX_LEN + 1);
			have_keyid = true;
		} else if (strcmp(name, "time") == 0 && !have_time) {
			uint64_t t;
			if (parse_u64_range(val, 0, INT64_MAX, &t) < 0)
				return otter_error_set(err, OTTER_E_FORMAT, DIR_AUTH_HEADER
						       ": time is not a decimal number of seconds");
			out->time = (int64_t)t;
			have_time = true;
		} else if (strcmp(name, "sig") == 0 && !have_sig) {
			_cleanup_free_ uint8_t *sig = NULL;
			size_t n;
			r = dir_b64_decode(val, DIR_AUTH_MAX_SIG, &sig, &n, err);
			if (r < 0)
				return otter_error_prefix(err, r, DIR_AUTH_HEADER ": sig: ");
			memcpy(out->sig, sig, n);
			out->siglen = n;
			have_sig = true;
		} else {
			return otter_error_set(err, OTTER_E_FORMAT,
					       DIR_AUTH_HEADER ": unknown or repeated parameter %s",
					       name);
		}
	}
	if (!have_keyid || !have_time || !have_sig)
		return otter_error_set(err, OTTER_E_FORMAT,
				       DIR_AUTH_HEADER ": needs keyid, time and sig");
	return 0;
}

/* Takes the text out of b into *out, or frees b on error r. */
static int take_string(otter_buf *b, int r, char **out)
{
	if (r < 0) {
		buf_clear(b);
		return r;
	}
	*out = (char *)buf_steal(b, NULL);
	return 0;
}

int dir_sig_message(const char *method, const char *path, int64_t time, const uint8_t *body,
		    size_t body_len, char **out, otter_error *err)
{
	char hex[2 * 32 + 1];
	otter_buf b;
	int r;

	r = otter_hash_buf_hex(OTTER_HASH_SHA256, body ? (const void *)body : "", body_len, hex,
			       err);
	if (r < 0)
		return r;
	buf_init(&b, 64 * 1024);
	r = buf_printf(&b, err, DIR_AUTH_PREFIX "\n%s\n%s\n%" PRId64 "\n%s", method, path, time,
		       hex);
	return take_string(&b, r, out);
}

int dir_sig_verify(const otter_key *key, const dir_sig_header *h, const char *method,
		   const char *path, const uint8_t *body, size_t body_len, int64_t now,
		   int64_t max_skew, otter_error *err)
{
	_cleanup_free_ char *msg = NULL;
	int64_t d = h->time > now ? h->time - now : now - h->time;
	int r;

	if (d > max_skew)
		return otter_error_set(err, OTTER_E_EXPIRED,
				       "request time %" PRId64 " is %" PRId64
				       " s away from the server's clock (at most %" PRId64
				       " s allowed): check the device's clock",
				       h->time, d, max_skew);
	r = dir_sig_message(method, path, h->time, body, body_len, &msg, err);
	if (r < 0)
		return r;
	if (!otter_key_verify(key, (const uint8_t *)msg, strlen(msg), h->sig, h->siglen))
		return otter_error_set(err, OTTER_E_SIGNATURE,
				       "request signature by key %.16s... does not verify", h->keyid);
	return 0;
}

int dir_sig_sign(const otter_key *key, const char *method, const char *path, int64_t time,
		 const uint8_t *body, size_t body_len, char **out, otter_error *err)
{
	_cleanup_free_ char *msg = NULL, *b64 = NULL;
	_cleanup_free_ uint8_t *sig = NULL;
	_cleanup_(json_decrefp) json_t *obj = NULL;
	char keyid[OTTER_KEYID_HEX_LEN + 1];
	size_t siglen;
	otter_buf b;
	int r;

	r = otter_key_to_tuf(key, &obj, err);
	if (r == 0)
		r = otter_keyid_of_tuf(obj, keyid, err);
	if (r == 0)
		r = dir_sig_message(method, path, time, body, body_len, &msg, err);
	if (r == 0)
		r = otter_key_sign(key, (const uint8_t *)msg, strlen(msg), &sig, &siglen, err);
	if (r == 0)
		r = dir_b64_encode(sig, siglen, &b64, err);
	if (r < 0)
		return r;
	buf_init(&b, DIR_AUTH_MAX_HEADER);
	r = buf_printf(&b, err, "keyid=\"%s\", time=%" PRId64 ", sig=\"%s\"", keyid, time, b64);
	return take_string(&b, r, out);
}

int dir_ecu_key_load(const char *key_type, const char *pem, otter_key **out,
		     char keyid_out[OTTER_KEYID_HEX_LEN + 1], otter_error *err)
{
	_cleanup_(json_decrefp) json_t *obj = NULL;
	otter_key *key = NULL;
	otter_key_type want;
	int r;

	if (strcmp(key_type, "ed25519") == 0)
		want = OTTER_KEY_ED25519;
	else if (strcmp(key_type, "ecdsa") == 0 || strcmp(key_type, "ecdsa-p256") == 0)
		want = OTTER_KEY_ECDSA_P256;
	else
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
				       "ECU key type \"%.32s\" is not supported: use ed25519 or "
				       "ecdsa-p256",
				       key_type);
	if (strncmp(pem, "-----BEGIN PUBLIC KEY-----", 26) != 0)
		return otter_error_set(err, OTTER_E_FORMAT,
				       "ECU key is not a PEM public key (-----BEGIN PUBLIC KEY-----)");
	r = otter_key_load_pem(&key, (const uint8_t *)pem, strlen(pem), NULL, err);
	if (r < 0)
		return otter_error_prefix(err, r, "ECU key: ");
	if (otter_key_has_private(key) || otter_key_get_type(key) != want) {
		otter_key_free(key);
		return otter_error_set(err, OTTER_E_FORMAT,
				       "ECU key is not a %s public key as its key type says",
				       key_type);
	}
	if (keyid_out) {
		r = otter_key_to_tuf(key, &obj, err);
		if (r == 0)
			r = otter_keyid_of_tuf(obj, keyid_out, err);
		if (r < 0) {
			otter_key_free(key);
			return r;
		}
	}
	*out = key;
	return 0;
}
