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
#include "lib/limits.h"
#include "util/alloc.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/strutil.h"

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
		agent_log(a, OTTER_LOG_NOTICE, "installed trusted root from %s", a->cfg.trusted_root);
	return r;
}

int agent_updater(otter_agent *a, otter_tuf_updater **out, otter_error *err)
{
	otter_net_options net = OTTER_NET_OPTIONS_INIT;
	otter_error first = OTTER_ERROR_INIT;
	char *tmirrors[AGENT_MAX_MIRRORS] = {NULL};
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
		tmirrors[i] = path_join(a->mirrors[i], "targets/");
		if (!tmirrors[i]) {
			r = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < a->n_mirrors; i++) {
		_cleanup_free_ char *murl = path_join(a->mirrors[i], "metadata/");
		otter_error e = OTTER_ERROR_INIT;
		otter_tuf_options o;
		otter_tuf_updater *u = NULL;

		const char *turl = tmirrors[i];

		if (!murl) {
			r = otter_error_set(err, OTTER_E_NOMEM, "out of memory");
			goto out;
		}
		otter_tuf_options_init(&o);
		o.metadata_dir = a->cfg.metadata_dir;
		o.metadata_url = murl;
		o.target_base_url = turl;
		/* Images fall back on the mirrors after this one, in order. */
		o.target_mirrors = (const char *const *)&tmirrors[i + 1];
		o.n_target_mirrors = a->n_mirrors - i - 1;
		o.net_options = &net;
		o.log = tuf_log;
		o.log_userdata = a;
		agent_watchdog_tick(a);
		r = otter_tuf_updater_new(&u, &o, &e);
		if (r == 0)
			r = otter_tuf_refresh(u, &e);
		if (r == 0) {
			*out = u;
			goto out;
		}
		otter_tuf_updater_free(u);
		agent_log(a, OTTER_LOG_WARNING, "repository %s: %s", a->mirrors[i], e.msg);
		if (!first_r) {
			first_r = r;
			first = e;
		}
		/* Expired or badly signed metadata is not the mirror's fault: every mirror
		 * serves the same repository. Still try the others (one may be more current). */
	}
	if (err && err->code == 0)
		*err = first;
	r = first_r;
out:
	for (size_t i = 0; i < a->n_mirrors; i++)
		free(tmirrors[i]);
	return r;
}

/* The agent's view of a stream: progress, watchdogs and a crash point around the writer. */
struct progress_sink {
	otter_agent *a;
	otter_sink inner;
	const char *what;
	uint64_t done, total, slot_size;
	bool too_large; /* the signed length is larger than the slot: no copy can fit */
};

static int progress_write(void *userdata, const uint8_t *data, size_t len, otter_error *err)
{
	struct progress_sink *s = userdata;
	int r = s->inner.write(s->inner.userdata, data, len, err);

	if (r == OTTER_E_TOO_LARGE && s->total > s->slot_size)
		s->too_large = true;
	if (r < 0)
		return r;
	s->done += len;
	if (s->a->progress)
		s->a->progress(s->a->userdata, s->what, s->done, s->total);
	agent_watchdog_tick(s->a);
	crashpoint("agent-download");
	return 0;
}

static int progress_finish(void *userdata, otter_error *err)
{
	struct progress_sink *s = userdata;

	return s->inner.finish(s->inner.userdata, err);
}

static int progress_abort(void *userdata, otter_error *err)
{
	struct progress_sink *s = userdata;

	s->done = 0;
	return s->inner.abort(s->inner.userdata, err);
}

static void pause_s(void *userdata, unsigned seconds)
{
	otter_agent *a = userdata;

	for (unsigned i = 0; i < seconds * 10; i++) {
		agent_watchdog_tick(a);
		agent_sleep_ms(a, 100);
	}
}

int agent_install_image(otter_agent *a, otter_tuf_updater *u, const char *slot_class,
			char bootname[OTTER_BOOTNAME_MAX + 1], const otter_tuf_target *t,
			const char *version, otter_error *err)
{
	otter_slot_writer_options wo = OTTER_SLOT_WRITER_OPTIONS_INIT;
	otter_tuf_stream_options so = OTTER_TUF_STREAM_OPTIONS_INIT;
	struct progress_sink ps = {.a = a, .what = slot_class, .total = otter_tuf_target_length(t)};
	otter_sink sink = {progress_write, progress_finish, progress_abort, &ps};
	otter_slot_writer *w = NULL;
	const char *hex = otter_tuf_target_hash(t, "sha256"), *target;
	uint8_t sha256[32];
	int r;

	if (!hex || !hex_decode(hex, strlen(hex), sha256, sizeof(sha256)))
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
				       "image '%s' has no sha256 in its signed metadata (otter-repo "
				       "always adds one)",
				       otter_tuf_target_path(t));
	wo.image_version = version;
	r = otter_slot_writer_open(&w, a->sys, slot_class, ps.total, sha256, &wo, err);
	if (r < 0)
		return r;
	/* Every class must land in the slots of the one bootname that will be activated: the
	 * writer picked the first image's slot; the others must share its bootname. */
	target = otter_slot_bootname(otter_slot_writer_target(w));
	if (!bootname[0])
		strfmt(bootname, OTTER_BOOTNAME_MAX + 1, "%s", target);
	if (strcmp(target, bootname) != 0) {
		r = otter_error_set(err, OTTER_E_STATE,
				    "the inactive %s slot has bootname %s, but the release goes to "
				    "bootname %s: check the bootnames in the system configuration",
				    slot_class, target, bootname);
		goto out;
	}
	ps.slot_size = otter_slot_writer_slot_size(w);
	otter_slot_writer_sink(w, &ps.inner);
	so.what = slot_class;
	so.attempts = (unsigned)a->cfg.download_attempts;
	so.pause = pause_s;
	so.userdata = a;
	agent_log(a, OTTER_LOG_INFO, "installing %s (%" PRIu64 " bytes) into the inactive %s slot",
		  otter_tuf_target_path(t), ps.total, slot_class);
	r = otter_tuf_stream_target(u, t, &sink, &so, err);
	if (r < 0 && ps.too_large) {
		/* Its signed length is larger than the slot: no mirror can make it fit, and the
		 * release is never tried again (the agent records it). */
		strfmt(a->refused, sizeof(a->refused), "%s", version);
		otter_error_prefix(err, r, "%s image %s does not fit this device", slot_class,
				   otter_tuf_target_path(t));
	}
	if (r == 0)
		agent_log(a, OTTER_LOG_INFO, "%s: %s written and verified", slot_class,
			  otter_tuf_target_path(t));
out:
	otter_slot_writer_free(w);
	return r;
}
