/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A release's bootloader images (include/otter/bootslot.h). The agent installs them after
 * every A/B image of the release was written and verified, and switches each as soon as its
 * own image is verified; the release's bootname is activated after that. A bootloader has no
 * fallback of its own, so the new one must boot the old and the new release alike (the old
 * one runs under it after a rollback, or after a cut before the activation).
 */
#include "agent-private.h"

#include <inttypes.h>
#include <string.h>

#include <otter/bootslot.h>

#include "util/fileio.h"
#include "util/strutil.h"

static void pause_ticking(void *userdata, unsigned seconds)
{
	otter_agent *a = userdata;

	for (unsigned i = 0; i < seconds * 10; i++) {
		agent_watchdog_tick(a);
		agent_sleep_ms(a, 100);
	}
}

int agent_install_boot_image(otter_agent *a, otter_tuf_updater *u, const char *slot_class,
			     const otter_tuf_target *t, otter_error *err)
{
	otter_tuf_stream_options so = OTTER_TUF_STREAM_OPTIONS_INIT;
	const char *hex = otter_tuf_target_hash(t, "sha256");
	otter_boot_slot_writer *w = NULL;
	otter_sink sink;
	uint8_t sha256[32];
	int r;

	if (!hex || !hex_decode(hex, strlen(hex), sha256, sizeof(sha256)))
		return otter_error_set(err, OTTER_E_NOT_SUPPORTED,
				       "image '%s' has no sha256 in its signed metadata (otter-repo "
				       "always adds one)",
				       otter_tuf_target_path(t));
	r = otter_boot_slot_writer_open(&w, a->sys, slot_class, otter_tuf_target_length(t),
					sha256, err);
	if (r < 0)
		return r;
	otter_boot_slot_writer_sink(w, &sink);
	so.what = slot_class;
	so.attempts = (unsigned)a->cfg.download_attempts;
	so.pause = pause_ticking;
	so.userdata = a;
	agent_log(a, OTTER_LOG_INFO,
		  "installing %s (%" PRIu64 " bytes) into the inactive half of bootloader slot %s",
		  otter_tuf_target_path(t), otter_tuf_target_length(t), slot_class);
	r = otter_tuf_stream_target(u, t, &sink, &so, err);
	if (r == 0) {
		crashpoint("agent-boot-switch");
		r = otter_boot_slot_writer_commit(w, err);
	}
	if (r == 0)
		crashpoint("agent-boot-switched");
	if (r == 0)
		agent_log(a, OTTER_LOG_NOTICE, "bootloader slot %s: %s %s", slot_class,
			  otter_tuf_target_path(t),
			  otter_boot_slot_writer_already_active(w) ? "is already active"
								   : "written, verified and "
								     "switched to");
	otter_boot_slot_writer_free(w);
	return r;
}
