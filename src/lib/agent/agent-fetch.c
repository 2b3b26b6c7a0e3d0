/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Getting verified bytes: TUF metadata from the first mirror that gives a complete refresh,
 * and images streamed straight into their slot with every listed hash checked, resuming an
 * interrupted transfer at the byte it stopped (HTTP Range), on the same or the next mirror.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <otter/net.h>
#include <otter/slot.h>

#include "agent-private.h"
#include "lib/json/json-util.h"
#include "lib/limits.h"
#include "lib/tuf/tuf-metadata.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

DEFINE_CLEANUP_FUNC(tuf_hash_verifier, tuf_hash_verifier_free)

static void tuf_log(void *userdata, int level, const char *msg)
{
	const otter_agent *a = userdata;

	agent_log(a, level, "%s", msg);
}

static void tick(void *userdata)
{
	agent_watchdog_tick(userdata);
}

/* Also feeds the watchdogs about once a second while a transfer waits for bytes. */
static void net_options(otter_agent *a, otter_net_options *o)
{
	o->connect_timeout_s = (long)a->cfg.connect_timeout;
	o->low_speed_time_s = (long)a->cfg.slow_timeout;
	o->low_speed_limit = (long)a->cfg.min_speed;
	o->tick = tick;
	o->tick_userdata = a;
}

/* The trusted metadata folder, provisioned from the configured root on first use. */
static int ensure_metadata_dir(otter_agent *a, otter_error *err)
{
	_cleanup_free_ char *root = path_join(a->cfg.metadata_dir, "root.json");
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	int r;

	if (!root)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (access(root, F_OK) == 0)
		return 0;
	r = fileio_read(AT_FDCWD, a->cfg.trusted_root, OTTER_TUF_ROOT_MAX_LENGTH, &data, &len, err);
	if (r < 0)
		return otter_error_prefix(err, r, "trusted-root (provision the device with the "
					  "repository's root.json)");
	r = otter_tuf_install_root(a->cfg.metadata_dir, data, len, err);
	if (r == 0)
		agent_log(a, 5, "installed trusted root from %s", a->cfg.trusted_root);
	return r;
}

int agent_updater(otter_agent *a, otter_tuf_updater **out, size_t *mirror, otter_error *err)
{
	otter_net_options net = OTTER_NET_OPTIONS_INIT;
	otter_error first = OTTER_ERROR_INIT;
	int r, first_r = 0;

	if (a->n_mirrors == 0)
		return otter_error_set(err, OTTER_E_CONFIG,
				       "no repository: set [update] repository= in %s, or update "
				       "from a folder (otter update --from DIR)",
				       a->config_path);
	r = ensure_metadata_dir(a, err);
	if (r < 0)
		return r;
	net_options(a, &net);
	for (size_t i = 0; i < a->n_mirrors; i++) {
		_cleanup_free_ char *murl = path_join(a->mirrors[i], "metadata/");
		_cleanup_free_ char *turl = path_join(a->mirrors[i], "targets/");
		otter_error e = OTTER_ERROR_INIT;
		otter_tuf_options o;
		otter_tuf_updater *u = NULL;

		if (!murl || !turl)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		otter_tuf_options_init(&o);
		o.metadata_dir = a->cfg.metadata_dir;
		o.metadata_url = murl;
		o.target_base_url = turl;
		o.net_options = &net;
		o.log = tuf_log;
		o.log_userdata = a;
		agent_watchdog_tick(a);
		r = otter_tuf_updater_new(&u, &o, &e);
		if (r == 0)
			r = otter_tuf_refresh(u, &e);
		if (r == 0) {
			*out = u;
			*mirror = i;
			return 0;
		}
		otter_tuf_updater_free(u);
		agent_log(a, 4, "repository %s: %s", a->mirrors[i], e.msg);
		if (!first_r) {
			first_r = r;
			first = e;
		}
		/* Expired or badly signed metadata is not the mirror's fault: every mirror
		 * serves the same repository. Still try the others (one may be more current). */
	}
	if (err && err->code == 0)
		*err = first;
	return first_r;
}

struct stream {
	otter_agent *a;
	otter_slot_writer *w;
	tuf_hash_verifier *extra; /* hashes other than sha256 (the writer checks that one) */
	const char *what;
	uint64_t done, total;
};

static int stream_sink(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	struct stream *s = userdata;
	int r;

	r = otter_slot_writer_write(s->w, data, len, err);
	if (r == 0 && s->extra)
		r = tuf_hash_verifier_update(s->extra, data, len, err);
	if (r < 0)
		return r;
	s->done += len;
	if (s->a->progress)
		s->a->progress(s->a->userdata, s->what, s->done, s->total);
	agent_watchdog_tick(s->a);
	crashpoint("agent-download");
	return 0;
}

static void pause_s(otter_agent *a, unsigned seconds)
{
	for (unsigned i = 0; i < seconds * 10; i++) {
		agent_watchdog_tick(a);
		usleep(100 * 1000);
	}
}

/* (Re)starts the stream from byte 0: a fresh writer and fresh hashes. */
static int restart(struct stream *s, const otter_system *sys, const char *slot_class,
		   const char *bootname, const uint8_t sha256[32], const json_t *extra_hashes,
		   const char *version, otter_error *err)
{
	otter_slot_writer_options wo = OTTER_SLOT_WRITER_OPTIONS_INIT;
	const char *target;
	int r;

	s->w = otter_slot_writer_free(s->w);
	s->extra = tuf_hash_verifier_free(s->extra);
	s->done = 0;
	wo.image_version = version;
	r = otter_slot_writer_open(&s->w, sys, slot_class, s->total, sha256, &wo, err);
	if (r < 0)
		return r;
	/* Every class must land in the slots of the one bootname that will be activated. */
	target = otter_slot_bootname(otter_slot_writer_target(s->w));
	if (strcmp(target, bootname) != 0)
		return otter_error_set(err, OTTER_E_STATE,
				       "the inactive %s slot has bootname %s, but the release goes to "
				       "bootname %s: check the bootnames in the system configuration",
				       slot_class, target, bootname);
	if (extra_hashes && json_object_size(extra_hashes) > 0)
		return tuf_hash_verifier_new(&s->extra, extra_hashes, s->what, err);
	return 0;
}

static bool resumable(int r)
{
	return r == OTTER_E_NETWORK || r == OTTER_E_TIMEOUT || r == OTTER_E_NOT_FOUND;
}

int agent_install_image(otter_agent *a, otter_tuf_updater *u, size_t mirror,
			const char *slot_class, const char *bootname, const otter_tuf_target *t,
			const char *version, otter_error *err)
{
	_cleanup_(json_decrefp) json_t *extra = NULL;
	_cleanup_free_ char *url = NULL, *base = NULL;
	otter_net_options no = OTTER_NET_OPTIONS_INIT;
	otter_net *net = NULL;
	struct stream s = {.a = a, .what = slot_class, .total = otter_tuf_target_length(t)};
	const char *hex = otter_tuf_target_hash(t, "sha256"), *rel, *alg;
	uint8_t sha256[32];
	unsigned attempts = 0;
	json_t *v;
	int r;

	if (!hex || !hex_decode(hex, strlen(hex), sha256, sizeof(sha256)))
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
				       "image '%s' has no sha256 in its signed metadata (otter-repo "
				       "always adds one)",
				       otter_tuf_target_path(t));
	extra = json_object();
	if (!extra)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	json_object_foreach((json_t *)otter_tuf_target_hashes(t), alg, v)
		if (strcmp(alg, "sha256") != 0)
			json_object_set(extra, alg, v);
	/* The URL relative to the targets base is the same on every mirror. */
	r = otter_tuf_target_url(u, t, &url, err);
	if (r < 0)
		return r;
	base = path_join(a->mirrors[mirror], "targets/");
	if (!base)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	rel = url + strlen(base);
	net_options(a, &no);
	r = otter_net_new(&net, &no, err);
	if (r < 0)
		return r;
	r = restart(&s, a->sys, slot_class, bootname, sha256, extra, version, err);
	if (r < 0)
		goto out;
	agent_log(a, 6, "installing %s (%" PRIu64 " bytes) into the inactive %s slot",
		  otter_tuf_target_path(t), s.total, slot_class);

	for (;;) {
		_cleanup_free_ char *src = NULL;
		otter_error e = OTTER_ERROR_INIT;
		_cleanup_free_ char *mbase = path_join(a->mirrors[mirror], "targets/");

		src = mbase ? str_concat(mbase, rel) : NULL;
		if (!src) {
			r = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			goto out;
		}
		if (s.done > 0)
			agent_log(a, 5, "resuming %s at byte %" PRIu64 " from %s", slot_class, s.done,
				  a->mirrors[mirror]);
		r = otter_net_fetch(net, src, s.done, s.total - s.done, stream_sink, &s, NULL, &e);
		if (r == 0 && s.done == s.total) {
			if (s.extra)
				r = tuf_hash_verifier_finish(s.extra, s.done, s.total,
							     otter_tuf_target_path(t), &e);
			if (r == 0)
				r = otter_slot_writer_finish(s.w, &e);
			if (r == 0)
				break;
		} else if (r == 0) {
			r = otter_error_set(&e, OTTER_E_NETWORK, "%s: transfer ended at byte %" PRIu64
							      " of %" PRIu64,
					    src, s.done, s.total);
		}
		attempts++;
		agent_log(a, 4, "downloading %s (attempt %u): %s", slot_class, attempts, e.msg);
		if (r == OTTER_E_NOT_SUPPORTED && s.done > 0) {
			/* The server ignored the range: start over. */
			r = restart(&s, a->sys, slot_class, bootname, sha256, extra, version, err);
			if (r < 0)
				goto out;
		} else if (r == OTTER_E_TOO_LARGE && s.total > otter_slot_writer_slot_size(s.w)) {
			/* Its signed length is larger than the slot: no mirror can make it fit,
			 * and the release is never tried again (the agent records it). */
			strfmt(a->refused, sizeof(a->refused), "%s", version);
			*err = e;
			otter_error_prefix(err, r, "%s image %s does not fit this device",
					   slot_class, otter_tuf_target_path(t));
			goto out;
		} else if (!resumable(r)) {
			/* Wrong bytes (hash, length, endless data) or a local failure: this copy
			 * is bad. Another mirror may hold a good one; never resume over bad data. */
			if (r == OTTER_E_IO || r == OTTER_E_NOMEM || r == OTTER_E_BUSY ||
			    r == OTTER_E_CONFIG || mirror + 1 >= a->n_mirrors) {
				*err = e;
				goto out;
			}
			mirror++;
			attempts = 0;
			r = restart(&s, a->sys, slot_class, bootname, sha256, extra, version, err);
			if (r < 0)
				goto out;
			continue;
		}
		if (attempts >= a->cfg.download_attempts) {
			if (mirror + 1 >= a->n_mirrors) {
				*err = e;
				otter_error_prefix(err, r, "giving up after %u attempts", attempts);
				goto out;
			}
			/* A stream is never assembled from two mirrors: bad bytes from one would
			 * be blamed on the next, and a good mirror would never get a clean try. */
			mirror++;
			attempts = 0;
			r = restart(&s, a->sys, slot_class, bootname, sha256, extra, version, err);
			if (r < 0)
				goto out;
			continue;
		}
		pause_s(a, attempts < 5 ? 1u << (attempts - 1) : 16);
	}
	agent_log(a, 6, "%s: %s written and verified", slot_class, otter_tuf_target_path(t));
out:
	otter_slot_writer_free(s.w);
	tuf_hash_verifier_free(s.extra);
	otter_net_free(net);
	return r;
}
