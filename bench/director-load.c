/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * director-load: an HTTP/1.1 keep-alive load generator for bench/director-bench.py (never
 * installed, never run by the tests as a benchmark).
 *
 *   director-load --port P --path PATH [--connections 64] [--seconds 10] [--keys FILE]
 *                 [--no-etag] [--once] [--host 127.0.0.1]
 *
 * Each connection is a thread sending GET requests back to back on one keep-alive
 * connection (reconnecting when the server closes it, e.g. nginx after keepalive_requests).
 * With --keys, FILE lists one device per line, "<keyid> <path of its ed25519 private key
 * PEM>"; connection i polls as devices i, i + connections, i + 2 * connections, ... in turn,
 * signing every request with that device's key as docs/director-protocol.md says (made per
 * request: the client pays for it as a device would). Unless --no-etag, each device (or,
 * without --keys, each connection) remembers the ETag of its last 200 and sends it as
 * If-None-Match: the "nothing changed" poll; before the timed window every device polls
 * once, untimed, to learn its ETag.
 *
 * With --once (needs --keys) every listed device polls exactly once and the run ends when all
 * have (--seconds is then only a time limit): the first poll after a change, when the server
 * generates the device's metadata; seconds is the elapsed time.
 *
 * Prints one JSON object: requests (answered within the window), errors, reconnects, late
 * (answers after the window, not counted), seconds, requests_per_second, p50/p90/p99/max
 * latency in ms (write of the request to the end of the answer; signing excluded), status
 * counts, and the byte size of the last 200 body. Loopback only: refuses any host but
 * 127.0.0.1. Exits 1 when every request failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#define MAX_SAMPLES (1u << 24) /* 64 MiB of samples: ~28 min at 10k requests/s */
#define RESP_CAP (256u * 1024u) /* the largest answer read (timestamp.json is ~1 KiB) */
#define MAX_DEVICES 1000000u
#define ETAG_MAX 64

struct device {
	char keyid[65];
	EVP_PKEY *key;
	char etag[ETAG_MAX]; /* only touched by the one connection that polls this device */
};

static const char *opt_host = "127.0.0.1";
static int opt_port;
static const char *opt_path = "/";
static unsigned opt_conns = 64;
static double opt_seconds = 10;
static bool opt_etag = true;
static bool opt_once;
static struct device *devices;
static size_t n_devices;

static double deadline;
static atomic_bool stop;
static atomic_ulong n_errors, n_reconnects, n_late;
static atomic_ulong n_status[6];
static atomic_ulong body_size;
static uint32_t *samples; /* microseconds */
static atomic_ulong n_samples;
static atomic_uint n_done; /* workers that returned */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_once(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port) };
	int one = 1, fd;

	if (inet_pton(AF_INET, opt_host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* "Otter-Signature: ...\r\n" for a GET of opt_path by device d (docs/director-protocol.md). */
static int sign_header(const struct device *d, char *out, size_t outsz)
{
	static const char empty_sha256[] =
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	unsigned char sig[64];
	char msg[1024], sigb64[4 * sizeof(sig) / 3 + 4];
	size_t siglen = sizeof(sig);
	long t = (long)time(NULL);
	EVP_MD_CTX *ctx;
	int m;

	m = snprintf(msg, sizeof(msg), "otter-director-v1\nGET\n%s\n%ld\n%s", opt_path, t,
		     empty_sha256);
	if (m < 0 || (size_t)m >= sizeof(msg))
		return -1;
	ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, d->key) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)msg, (size_t)m) != 1) {
		EVP_MD_CTX_free(ctx);
		return -1;
	}
	EVP_MD_CTX_free(ctx);
	EVP_EncodeBlock((unsigned char *)sigb64, sig, (int)siglen);
	m = snprintf(out, outsz, "Otter-Signature: keyid=\"%s\", time=%ld, sig=\"%s\"\r\n",
		     d->keyid, t, sigb64);
	return (m < 0 || (size_t)m >= outsz) ? -1 : 0;
}

/* The value of header `name` (with its colon) in the head [buf, end), or NULL; *len its size. */
static const char *header_value(const char *buf, const char *end, const char *name,
				size_t *len)
{
	size_t nl = strlen(name);

	for (const char *p = buf; p < end; p++) {
		if (p != buf && p[-1] != '\n')
			continue;
		if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0) {
			const char *v = p + nl, *e;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			e = memchr(v, '\r', (size_t)(end - v));
			if (!e)
				e = end;
			*len = (size_t)(e - v);
			return v;
		}
	}
	return NULL;
}

typedef struct response {
	int status;
	bool close; /* the server said Connection: close */
	char etag[ETAG_MAX];
	size_t body_len;
} response;

/*
 * Reads one answer on fd. buf holds *have bytes already read (pipelined leftovers). Returns
 * 0 with *out filled, -1 on a read error or a malformed answer, -2 when the connection was
 * closed before any byte of the answer (a keep-alive race: send again on a new connection).
 * Only Content-Length bodies (or none) are understood; chunked answers are errors.
 */
static int read_response(int fd, char *buf, size_t cap, size_t *have, response *out)
{
	memset(out, 0, sizeof(*out));
	for (;;) {
		char *end = *have >= 4 ? memmem(buf, *have, "\r\n\r\n", 4) : NULL;
		if (end) {
			size_t hdr = (size_t)(end - buf) + 4, clen = 0, vl;
			const char *v;
			if (sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1 || out->status < 100 ||
			    out->status > 599)
				return -1;
			if (header_value(buf, end, "transfer-encoding:", &vl))
				return -1;
			v = header_value(buf, end, "content-length:", &vl);
			if (v) {
				char num[24];
				char *e;
				if (vl == 0 || vl >= sizeof(num))
					return -1;
				memcpy(num, v, vl);
				num[vl] = '\0';
				clen = strtoul(num, &e, 10);
				if (*e || clen > cap)
					return -1;
			}
			v = header_value(buf, end, "connection:", &vl);
			out->close = v && vl == 5 && strncasecmp(v, "close", 5) == 0;
			v = header_value(buf, end, "etag:", &vl);
			if (v && vl < sizeof(out->etag)) {
				memcpy(out->etag, v, vl);
				out->etag[vl] = '\0';
			}
			if (hdr + clen > cap)
				return -1;
			while (*have < hdr + clen) {
				ssize_t r = read(fd, buf + *have, cap - *have);
				if (r <= 0)
					return -1;
				*have += (size_t)r;
			}
			out->body_len = clen;
			memmove(buf, buf + hdr + clen, *have - hdr - clen);
			*have -= hdr + clen;
			return 0;
		}
		if (*have == cap)
			return -1;
		ssize_t r = read(fd, buf + *have, cap - *have);
		if (r == 0 && *have == 0)
			return -2;
		if (r <= 0)
			return r < 0 && errno == ECONNRESET && *have == 0 ? -2 : -1;
		*have += (size_t)r;
	}
}

static void record(double t0, double t1, const response *resp)
{
	unsigned long i;

	if (t1 > deadline) {
		atomic_fetch_add(&n_late, 1);
		return;
	}
	atomic_fetch_add(&n_status[resp->status / 100], 1);
	if (resp->status >= 400)
		atomic_fetch_add(&n_errors, 1);
	if (resp->status == 200)
		atomic_store(&body_size, resp->body_len);
	i = atomic_fetch_add(&n_samples, 1);
	if (i < MAX_SAMPLES)
		samples[i] = (uint32_t)((t1 - t0) * 1e6);
}

/* One connection's state. */
typedef struct conn {
	char *buf;
	size_t have;
	int fd;
	bool connected; /* once: later connects are reconnects */
	char etag[ETAG_MAX]; /* without --keys */
} conn;

/*
 * Sends one GET as device d (NULL: unsigned) and reads the answer; *t0 and *t1 bracket the
 * write and the end of the answer. Reconnects once when the server had closed the
 * keep-alive connection. Returns 0, or -1 (counted as an error by the caller).
 */
static int poll_one(conn *c, struct device *d, response *resp, double *t0, double *t1)
{
	char auth[512] = "", inm[ETAG_MAX + 32] = "", req[2048];
	char *etag = d ? d->etag : c->etag;
	int n, r = -1;

	if (d && sign_header(d, auth, sizeof(auth)) < 0)
		return -1;
	if (opt_etag && etag[0])
		snprintf(inm, sizeof(inm), "If-None-Match: %s\r\n", etag);
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s%sConnection: keep-alive\r\n\r\n",
		     opt_path, opt_host, opt_port, auth, inm);
	if (n < 0 || (size_t)n >= sizeof(req))
		return -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (c->fd < 0) {
			c->fd = connect_once();
			c->have = 0;
			if (c->fd < 0)
				return -1;
			if (c->connected)
				atomic_fetch_add(&n_reconnects, 1);
			c->connected = true;
		}
		*t0 = now_s();
		r = write(c->fd, req, (size_t)n) == n
			    ? read_response(c->fd, c->buf, RESP_CAP, &c->have, resp)
			    : -1;
		*t1 = now_s();
		if (r == 0)
			break;
		close(c->fd);
		c->fd = -1;
		if (r != -2)
			return -1;
	}
	if (r < 0)
		return -1;
	if (resp->status == 200 && resp->etag[0])
		memcpy(etag, resp->etag, sizeof(resp->etag));
	if (resp->close) {
		close(c->fd);
		c->fd = -1;
	}
	return 0;
}

static pthread_barrier_t primed, go;

static void *worker(void *arg)
{
	size_t idx = (size_t)(uintptr_t)arg, turn = 0, per = 1;
	conn c = { .buf = malloc(RESP_CAP), .fd = -1 };
	bool ok = c.buf != NULL;

	if (n_devices)
		/* Devices idx, idx + conns, ...: every listed device polls, none twice at once. */
		per = (n_devices - idx + opt_conns - 1) / opt_conns;
	/* Untimed: every device of this connection learns its ETag, so that the timed polls
	 * are all "nothing changed" ones. */
	for (size_t k = 0; ok && opt_etag && !opt_once && k < (n_devices ? per : 1); k++) {
		response resp;
		double t0, t1;
		if (poll_one(&c, n_devices ? &devices[idx + k * opt_conns] : NULL, &resp, &t0,
			     &t1) < 0 || resp.status >= 400) {
			atomic_fetch_add(&n_errors, 1);
			ok = false;
		}
	}
	pthread_barrier_wait(&primed);
	pthread_barrier_wait(&go);
	while (ok && !atomic_load(&stop)) {
		struct device *d = NULL;
		response resp = { 0 };
		double t0 = 0, t1 = 0;

		if (n_devices) {
			if (opt_once && turn == per)
				break;
			d = &devices[idx + (turn++ % per) * opt_conns];
		}
		if (poll_one(&c, d, &resp, &t0, &t1) < 0) {
			atomic_fetch_add(&n_errors, 1);
			usleep(1000);
			continue;
		}
		record(t0, t1, &resp);
	}
	if (c.fd >= 0)
		close(c.fd);
	free(c.buf);
	atomic_fetch_add(&n_done, 1);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int load_keys(const char *file)
{
	FILE *f = fopen(file, "r");
	char line[4200];
	size_t cap = 0, lineno = 0;

	if (!f) {
		fprintf(stderr, "director-load: cannot open %s: %s\n", file, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char keyid[80], path[4096];
		FILE *kf;
		EVP_PKEY *k;

		lineno++;
		if (line[0] == '\n' || line[0] == '#')
			continue;
		if (sscanf(line, "%79s %4095s", keyid, path) != 2 || strlen(keyid) != 64) {
			fprintf(stderr, "director-load: %s:%zu: expected \"<64 hex key id> <PEM path>\"\n",
				file, lineno);
			goto fail;
		}
		kf = fopen(path, "r");
		if (!kf) {
			fprintf(stderr, "director-load: %s:%zu: cannot open %s: %s\n", file, lineno,
				path, strerror(errno));
			goto fail;
		}
		k = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
		fclose(kf);
		if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
			fprintf(stderr, "director-load: %s: not an ed25519 private key (PEM)\n", path);
			EVP_PKEY_free(k);
			goto fail;
		}
		if (n_devices == MAX_DEVICES) {
			fprintf(stderr, "director-load: more than %u devices in %s\n", MAX_DEVICES,
				file);
			EVP_PKEY_free(k);
			goto fail;
		}
		if (n_devices == cap) {
			struct device *nd;
			cap = cap ? 2 * cap : 64;
			nd = realloc(devices, cap * sizeof(*nd));
			if (!nd) {
				EVP_PKEY_free(k);
				goto fail;
			}
			devices = nd;
		}
		memset(&devices[n_devices], 0, sizeof(devices[n_devices]));
		memcpy(devices[n_devices].keyid, keyid, 65);
		devices[n_devices++].key = k;
	}
	fclose(f);
	if (!n_devices)
		fprintf(stderr, "director-load: no device in %s\n", file);
	return n_devices ? 0 : -1;
fail:
	fclose(f);
	return -1;
}

static bool parse_num(const char *s, double min, double max, double *out)
{
	char *e;
	double v;

	errno = 0;
	v = strtod(s, &e);
	if (errno || e == s || *e || !(v >= min && v <= max))
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "path", required_argument, NULL, 'P' },
		{ "connections", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{ "keys", required_argument, NULL, 'k' },
		{ "no-etag", no_argument, NULL, 'E' },
		{ "once", no_argument, NULL, 'O' },
		{ 0 },
	};
	const char *keys = NULL;
	pthread_t *th;
	unsigned started = 0;
	double v, t0, secs;
	size_t n;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'H': opt_host = optarg; break;
		case 'p':
			if (!parse_num(optarg, 1, 65535, &v))
				goto usage;
			opt_port = (int)v;
			break;
		case 'P': opt_path = optarg; break;
		case 'c':
			if (!parse_num(optarg, 1, 4096, &v))
				goto usage;
			opt_conns = (unsigned)v;
			break;
		case 's':
			if (!parse_num(optarg, 0.1, 86400, &opt_seconds))
				goto usage;
			break;
		case 'k': keys = optarg; break;
		case 'E': opt_etag = false; break;
		case 'O': opt_once = true; break;
		default: goto usage;
		}
	}
	if (optind != argc || opt_port == 0 || strcmp(opt_host, "127.0.0.1") != 0 ||
	    opt_path[0] != '/' || strlen(opt_path) > 512 || strpbrk(opt_path, " \r\n"))
		goto usage;
	if (keys && load_keys(keys) < 0)
		return 1;
	if (opt_once && !n_devices) {
		fprintf(stderr, "director-load: --once needs --keys\n");
		return 2;
	}
	if (n_devices && n_devices < opt_conns) {
		fprintf(stderr, "director-load: %zu devices for %u connections: give at least one "
				"device per connection (a device polls on one connection at a time)\n",
			n_devices, opt_conns);
		return 2;
	}
	samples = calloc(MAX_SAMPLES, sizeof(*samples));
	th = calloc(opt_conns, sizeof(*th));
	if (!samples || !th) {
		fprintf(stderr, "director-load: out of memory\n");
		return 1;
	}
	if (pthread_barrier_init(&primed, NULL, opt_conns + 1) != 0 ||
	    pthread_barrier_init(&go, NULL, opt_conns + 1) != 0) {
		fprintf(stderr, "director-load: pthread_barrier_init failed\n");
		return 1;
	}
	for (unsigned i = 0; i < opt_conns; i++, started++)
		if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i) != 0) {
			fprintf(stderr, "director-load: cannot start thread %u\n", i);
			return 1;
		}
	pthread_barrier_wait(&primed);
	t0 = now_s();
	deadline = t0 + (opt_once ? 86400.0 : opt_seconds); /* --once: only the time limit */
	pthread_barrier_wait(&go);
	if (opt_once) {
		/* Every device polls once; --seconds is only the time limit. */
		while (atomic_load(&n_done) < started && now_s() < t0 + opt_seconds)
			usleep(1000);
		secs = now_s() - t0;
		atomic_store(&stop, true);
		for (unsigned i = 0; i < started; i++)
			pthread_join(th[i], NULL);
	} else {
		while (!atomic_load(&stop) && now_s() < deadline)
			usleep(10000);
		atomic_store(&stop, true);
		for (unsigned i = 0; i < started; i++)
			pthread_join(th[i], NULL);
		secs = opt_seconds;
	}
	n = atomic_load(&n_samples);
	if (n > MAX_SAMPLES)
		n = MAX_SAMPLES;
	qsort(samples, n, sizeof(*samples), cmp_u32);
#define PCT(p) (n ? samples[(size_t)((double)(n - 1) * (p))] / 1000.0 : 0.0)
	printf("{\"requests\": %zu, \"errors\": %lu, \"reconnects\": %lu, \"late\": %lu, "
	       "\"seconds\": %.3f, "
	       "\"requests_per_second\": %.1f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, "
	       "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"status_2xx\": %lu, \"status_3xx\": %lu, "
	       "\"status_4xx\": %lu, \"status_5xx\": %lu, \"body_bytes\": %lu, "
	       "\"connections\": %u, \"devices\": %zu}\n",
	       n, atomic_load(&n_errors), atomic_load(&n_reconnects), atomic_load(&n_late), secs,
	       (double)n / secs,
	       PCT(0.50), PCT(0.90), PCT(0.99), n ? samples[n - 1] / 1000.0 : 0.0,
	       atomic_load(&n_status[2]), atomic_load(&n_status[3]), atomic_load(&n_status[4]),
	       atomic_load(&n_status[5]), atomic_load(&body_size), opt_conns, n_devices);
	for (size_t i = 0; i < n_devices; i++)
		EVP_PKEY_free(devices[i].key);
	free(devices);
	free(samples);
	free(th);
	return n == 0 ? 1 : 0;
usage:
	fprintf(stderr, "Usage: director-load --port 1..65535 --path /PATH [--connections 1..4096] "
			"[--seconds S] [--keys FILE] [--no-etag] [--once] [--host 127.0.0.1]\n"
			"(loopback only; see the comment at the top of bench/director-load.c)\n");
	return 2;
}
