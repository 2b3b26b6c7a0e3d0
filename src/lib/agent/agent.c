/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The update agent's state machine (docs/agent.md).
 *
 *   idle/confirmed/rolled-back/failed --cycle--> downloading --> installing
 *       --activate--> pending-reboot --boot new slots--> pending-confirm
 *       --health ok--> confirmed     --health bad / deadline / fallback--> rolled-back
 *
 * Every transition is persisted (agent.json, atomically) before the action it announces is
 * taken, and each step is idempotent, so a restart from any state converges:
 *   downloading/installing  -> nothing was activated: the cycle runs again (slots being
 *                              written are "installing" and can never be activated);
 *                              or, if the activation reached the environment, pending-reboot
 *   pending-reboot          -> still on the old slot: the reboot is requested again;
 *                              booted the new one: pending-confirm; fell back: rolled-back
 *   pending-confirm         -> the health check runs again, within the same deadline
 * The boot environment is the truth about which software runs; agent.json says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <otter/bootslot.h>
#include <otter/json.h>
#include <otter/slot.h>

#include "agent-private.h"
#include "lib/json/json-util.h"
#include "util/alloc.h"
#include "util/args.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/sdnotify.h"
#include "util/strutil.h"

/* How often a pending reboot that did not happen is requested again. */
#define REBOOT_RETRY_S 300

const otter_system *otter_agent_system(const otter_agent *a)
{
	return a->sys;
}

otter_agent *otter_agent_free(otter_agent *a)
{
	if (!a)
		return NULL;
	if (a->cycle_lock_fd >= 0)
		close(a->cycle_lock_fd);
	if (a->wd_fd >= 0) {
		/* Magic close: a clean stop disarms the hardware watchdog. */
		if (write(a->wd_fd, "V", 1) < 0)
			agent_log(a, OTTER_LOG_WARNING, "disarming watchdog: %s", strerror(errno));
		close(a->wd_fd);
	}
	for (size_t i = 0; i < a->n_mirrors; i++)
		free(a->mirrors[i]);
	uptane_free(a->uptane);
	agent_config_clear(&a->cfg);
	otter_system_free(a->sys);
	free(a->config_path);
	free(a);
	return NULL;
}

DEFINE_CLEANUP_FUNC(otter_agent, otter_agent_free)

static int add_mirror(otter_agent *a, const char *url, size_t len, otter_error *err)
{
	if (a->n_mirrors == AGENT_MAX_MIRRORS)
		return otter_error_set(err, OTTER_E_CONFIG, "repository: more than %d URLs",
				       AGENT_MAX_MIRRORS);
	a->mirrors[a->n_mirrors] = otter_strndup(url, len);
	if (!a->mirrors[a->n_mirrors])
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	a->n_mirrors++;
	return 0;
}

int otter_agent_new(otter_agent **out, const otter_agent_options *opts, otter_error *err)
{
	_cleanup_(otter_agent_freep) otter_agent *a = NULL;
	otter_agent_options defaults = OTTER_AGENT_OPTIONS_INIT;
	bool damaged;
	int r;

	ARG_NONNULL(err, "agent", out);
	if (!opts)
		opts = &defaults;
	if (opts->version != OTTER_AGENT_OPTIONS_VERSION)
		return otter_error_set(err, OTTER_E_INVALID,
				       "agent: unknown options version %u (this otter knows %u)",
				       opts->version, (unsigned)OTTER_AGENT_OPTIONS_VERSION);
	a = otter_calloc(1, sizeof(*a));
	if (!a)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	a->wd_fd = -1;
	a->cycle_lock_fd = -1;
	a->log = opts->log;
	a->progress = opts->progress;
	a->userdata = opts->userdata;
	agent_hooks_init(&a->hooks, opts->hooks);
	a->config_path = otter_strdup(opts->config_path ? opts->config_path
							 : OTTER_SYSTEM_CONF_DEFAULT);
	if (!a->config_path)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	r = agent_config_load(&a->sys, &a->cfg, a->config_path, err);
	if (r < 0)
		return r;
	if (!a->cfg.metadata_dir)
		a->cfg.metadata_dir = path_join(otter_system_data_dir(a->sys), "tuf");
	if (!a->cfg.download_dir)
		a->cfg.download_dir = path_join(otter_system_data_dir(a->sys), "downloads");
	if (!a->cfg.metadata_dir || !a->cfg.download_dir)
		return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	if (opts->offline_dir) {
		/* A copy of the repository on a USB stick: exactly the same TUF checks. */
		_cleanup_free_ char *abs = realpath(opts->offline_dir, NULL);
		_cleanup_free_ char *url = NULL, *path = NULL;

		if (!abs)
			return otter_error_set_errno(err, errno, "update folder '%s'",
						     opts->offline_dir);
		/* USB volume labels have spaces; '#', '?' and '%' mean something in a URL. */
		path = percent_encode_path(abs);
		url = path ? str_concat("file://", path) : NULL;
		if (!url)
			return otter_error_set(err, OTTER_E_NOMEM, "out of memory");
		r = add_mirror(a, url, strlen(url), err);
		if (r < 0)
			return r;
	} else if (a->cfg.repository) {
		const char *p = a->cfg.repository;

		while (*p) {
			size_t n;

			p += strspn(p, " \t");
			n = strcspn(p, " \t");
			if (n == 0)
				break;
			if (strncmp(p, "https://", 8) != 0 && strncmp(p, "http://", 7) != 0 &&
			    strncmp(p, "file://", 7) != 0)
				return otter_error_set(err, OTTER_E_CONFIG,
						       "%s: repository: '%.*s' is not an http(s):// "
						       "or file:// URL",
						       a->config_path, (int)n, p);
			r = add_mirror(a, p, n, err);
			if (r < 0)
				return r;
			p += n;
		}
	}
	r = agent_state_load(otter_system_data_dir(a->sys), &a->st, &damaged, err);
	if (r < 0)
		return r;
	/* [uptane]: the Director decides what is installed (uptane.c). */
	if (a->cfg.uptane.enabled) {
		r = uptane_new(a, &a->uptane, err);
		if (r < 0)
			return r;
	}
	if (damaged)
		agent_log(a, OTTER_LOG_WARNING, "%s", a->st.last_error);
	if (sdnotify_watchdog_usec(&a->sd_watchdog_usec))
		agent_log(a, OTTER_LOG_DEBUG, "systemd watchdog every %" PRIu64 " us",
			  a->sd_watchdog_usec);
	*out = TAKE_PTR(a);
	return 0;
}

int agent_save(otter_agent *a, otter_error *err)
{
	char point[64];
	int r = agent_state_save(otter_system_data_dir(a->sys), &a->st, err);

	if (r < 0)
		return r;
	agent_notify_status(a, otter_agent_state_name(a->st.state));
	strfmt(point, sizeof(point), "agent-%s", otter_agent_state_name(a->st.state));
	crashpoint(point);
	return 0;
}

/* The pending release's bootname, or NULL when none is recorded. */
static const char *pending_bootname(const otter_agent *a)
{
	return a->st.pending_bootname[0] ? a->st.pending_bootname : NULL;
}

/*
 * What slot says after this boot: first otter_slot_boot_check records a fallback made by
 * the bootloader, then the A/B status (ab) and/or the pending release's lifecycle (lc) are
 * read; both getters only read.
 */
static int slot_read(otter_agent *a, otter_ab_status *ab, otter_slot_lifecycle_info *lc,
		     otter_error *err)
{
	int r = otter_slot_boot_check(a->sys, err);

	if (r == 0 && ab)
		r = otter_ab_status_get(a->sys, ab, err);
	if (r == 0 && lc)
		r = otter_slot_lifecycle(a->sys, pending_bootname(a), lc, err);
	return r;
}

/*
 * slot_read. A damaged slot bookkeeping (slots.json) would stop an unattended device from
 * ever updating or confirming again: it is set aside and started afresh, once; the boot
 * environment, which says what runs, is untouched.
 */
static int slot_state(otter_agent *a, otter_ab_status *ab, otter_slot_lifecycle_info *lc,
		      otter_error *err)
{
	otter_error e = OTTER_ERROR_INIT;
	int r = slot_read(a, ab, lc, &e);

	if (r == 0)
		return 0;
	if ((r == OTTER_E_FORMAT || r == OTTER_E_INVALID || r == OTTER_E_TOO_LARGE) &&
	    strstr(e.msg, "slots.json")) {
		agent_log(a, OTTER_LOG_WARNING, "%s: starting the slot bookkeeping afresh", e.msg);
		r = otter_slot_reset_bookkeeping(a->sys, e.msg, err);
		if (r == 0)
			r = slot_read(a, ab, lc, err);
		return r;
	}
	if (err && !err->code)
		*err = e;
	return r;
}

static int ab_status(otter_agent *a, otter_ab_status *ab, otter_error *err)
{
	return slot_state(a, ab, NULL, err);
}

/* The lifecycle of the pending release's update, as slot reports it. */
static int pending_lifecycle(otter_agent *a, otter_slot_lifecycle_info *lc, otter_error *err)
{
	return slot_state(a, NULL, lc, err);
}

static void set_state(otter_agent *a, otter_agent_state s)
{
	if (a->st.state != s)
		agent_log(a, OTTER_LOG_INFO, "state: %s -> %s", otter_agent_state_name(a->st.state),
			  otter_agent_state_name(s));
	a->st.state = s;
}

static void clear_pending(agent_state *st)
{
	st->pending_version[0] = st->pending_release[0] = st->pending_bootname[0] = '\0';
	st->pending_boot_id[0] = '\0';
	st->pending_since = st->pending_uptime = 0;
}

/* The confirmation deadline starts now, in this boot. */
static void start_deadline(otter_agent *a)
{
	a->st.pending_since = agent_now(a);
	a->st.pending_uptime = agent_uptime(a);
	agent_boot_id(a, a->st.pending_boot_id);
}

/*
 * Seconds left before the confirmation deadline. It is measured on the boot clock, so a
 * wall-clock jump (NTP on a device without RTC) changes nothing; a new boot (a power cut
 * during the check) starts it again: the bootloader's tries bound the total.
 */
static int64_t deadline_left(otter_agent *a)
{
	char id[40];

	agent_boot_id(a, id);
	if (!id[0] || strcmp(id, a->st.pending_boot_id) != 0)
		start_deadline(a);
	return (int64_t)a->cfg.confirm_deadline - (agent_uptime(a) - a->st.pending_uptime);
}

/* VERSION_ID=... of an os-release(5) style file (quotes allowed), or "". */
static void version_from_file(const char *path, char *out, size_t size)
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;
	char *line, *save = NULL;

	out[0] = '\0';
	if (!path || fileio_read(AT_FDCWD, path, 64 * 1024, &data, &len, NULL) < 0)
		return;
	for (line = strtok_r((char *)data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v;
		size_t n;

		if (strncmp(line, "VERSION_ID=", 11) != 0)
			continue;
		v = line + 11;
		n = strlen(v);
		if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
			v[n - 1] = '\0';
			v++;
		}
		if (otter_version_valid(v))
			strfmt(out, size, "%s", v);
		return;
	}
}

/*
 * The version running now: what the agent confirmed last, else what the booted slot's
 * bookkeeping says was installed, else VERSION_ID in version-file (the factory image).
 */
static void installed_version(otter_agent *a, const otter_ab_status *ab, char *out, size_t size)
{
	out[0] = '\0';
	if (a->st.current_version[0]) {
		strfmt(out, size, "%s", a->st.current_version);
		return;
	}
	for (size_t i = 0; ab && i < ab->n_slots; i++)
		if (ab->slots[i].booted && ab->slots[i].installed && ab->slots[i].version[0] &&
		    otter_version_valid(ab->slots[i].version)) {
			strfmt(out, size, "%s", ab->slots[i].version);
			return;
		}
	version_from_file(a->cfg.version_file, out, size);
}

static void record_error(otter_agent *a, const otter_error *e)
{
	strfmt(a->st.last_error, sizeof(a->st.last_error), "%s", e->msg);
}

static int request_reboot(otter_agent *a, otter_error *err)
{
	int status = 0, r;

	agent_log(a, OTTER_LOG_NOTICE, "rebooting: %s", a->cfg.reboot_command);
	crashpoint("agent-reboot");
	r = agent_run_command(a, "reboot", a->cfg.reboot_command, 120, &status, err);
	if (r < 0)
		return r;
	if (status != 0)
		return otter_error_set(err, OTTER_E_FAILED,
				       "reboot command '%s' failed (status %d)",
				       a->cfg.reboot_command, status);
	return 0;
}

/* The pending release failed: never retried; why goes into last-error. */
static void record_rollback(otter_agent *a, const char *why)
{
	agent_state_add_failed(&a->st, a->st.pending_version);
	strfmt(a->st.last_error, sizeof(a->st.last_error), "release %s rolled back: %s",
	       a->st.pending_version, why);
	strfmt(a->st.last_result, sizeof(a->st.last_result), "release %s rolled back",
	       a->st.pending_version);
	set_state(a, OTTER_AGENT_ROLLED_BACK);
}

/* pending_since, in pending-reboot: when the reboot was last requested (0: not yet). */
static int reboot_into_pending(otter_agent *a, otter_error *err)
{
	int r = request_reboot(a, err);

	if (r < 0)
		return r;
	a->st.pending_since = agent_now(a);
	return agent_save(a, err);
}

/*
 * Runs health-check (none configured: healthy) for at most timeout_s seconds. Unhealthy:
 * false, and why says so.
 */
static bool run_health_check(otter_agent *a, uint64_t timeout_s, char *why, size_t size)
{
	otter_error e = OTTER_ERROR_INIT;
	int status = 0;

	if (!a->cfg.health_check)
		return true;
	if (agent_run_command(a, "health check", a->cfg.health_check, timeout_s, &status, &e) <
	    0)
		strfmt(why, size, "%s", e.msg);
	else if (status < 0)
		strfmt(why, size, "health check did not finish before the deadline");
	else if (status != 0)
		strfmt(why, size, "health check '%s' failed (exit status %d)", a->cfg.health_check,
		       status);
	else
		return true;
	return false;
}

/* Health verdict on the booted new software: mark good, or mark bad and go back. */
static int confirm_or_roll_back(otter_agent *a, otter_error *err)
{
	int64_t left = deadline_left(a);
	bool healthy;
	char why[256] = "";
	int r;

	if (left <= 0) {
		healthy = false;
		strfmt(why, sizeof(why), "not confirmed within the %" PRIu64 " s deadline",
		       a->cfg.confirm_deadline);
	} else {
		healthy = run_health_check(a, (uint64_t)left, why, sizeof(why));
	}
	if (healthy) {
		r = otter_slot_confirm(a->sys, pending_bootname(a), err);
		if (r < 0)
			return otter_error_prefix(err, r, "confirming release %s",
						  a->st.pending_version);
		agent_log(a, OTTER_LOG_NOTICE, "release %s confirmed healthy", a->st.pending_version);
		strfmt(a->st.current_version, sizeof(a->st.current_version), "%s",
		       a->st.pending_version);
		strfmt(a->st.current_release, sizeof(a->st.current_release), "%s",
		       a->st.pending_release);
		strfmt(a->st.last_result, sizeof(a->st.last_result), "release %s installed and "
								      "confirmed",
		       a->st.pending_version);
		a->st.last_error[0] = '\0';
		clear_pending(&a->st);
		set_state(a, OTTER_AGENT_CONFIRMED);
		return agent_save(a, err);
	}

	agent_log(a, OTTER_LOG_ERR, "release %s is unhealthy: %s; rolling back", a->st.pending_version,
		  why);
	/* Persist the verdict first: after the reboot, the fallback is expected. */
	record_rollback(a, why);
	a->st.pending_since = agent_now(a);
	r = agent_save(a, err);
	if (r < 0)
		return r;
	r = otter_slot_roll_back(a->sys, pending_bootname(a), err);
	if (r < 0)
		return otter_error_prefix(err, r, "marking release %s bad", a->st.pending_version);
	return request_reboot(a, err);
}

/*
 * Every boot uses one of the booted slot's tries (U-Boot counts BOOT_<name>_LEFT down, GRUB
 * counts <name>_TRY up), so the running software is confirmed on every boot, not only on the
 * one that brought it: otherwise `tries` ordinary reboots would send the device back to the
 * other slot. Whenever the booted slot has used a try since its last confirmation (or was
 * never confirmed), the health check runs and, if it passes, the slot is marked good: once
 * per boot, as the counter is full again afterwards. An unhealthy boot is not confirmed; the
 * check runs again at the next cycle, and after `tries` unhealthy boots in a row the
 * bootloader falls back, as for new software. A slot taken out of the boot order (marked bad
 * by hand) is left as it is.
 */
static int confirm_booted(otter_agent *a, otter_error *err)
{
	const char *booted = NULL;
	otter_boot_try used;
	char why[256] = "";
	int r;

	a->booted_unhealthy = false;
	r = otter_slot_boot_used_try(a->sys, &used, &booted, err);
	if (r < 0)
		return r;
	switch (used) {
	case OTTER_BOOT_TRY_NONE:
		return 0; /* not started by an otter boot script: nothing to confirm */
	case OTTER_BOOT_TRY_MARKED_BAD:
		agent_log(a, OTTER_LOG_DEBUG, "slot %s is not in the boot order (marked bad): not "
					"confirming it",
			  booted);
		return 0;
	case OTTER_BOOT_TRY_CONFIRMED:
		return 0; /* confirmed in this boot already (a torn environment is rewritten) */
	case OTTER_BOOT_TRY_USED:
		break;
	}
	if (!run_health_check(a, a->cfg.confirm_deadline, why, sizeof(why))) {
		strfmt(a->st.last_error, sizeof(a->st.last_error),
		       "slot %s not confirmed in this boot: %s; it runs again at the next check, "
		       "and the bootloader falls back after %u unhealthy boots",
		       booted, why, otter_system_tries(a->sys));
		agent_log(a, OTTER_LOG_ERR, "%s", a->st.last_error);
		a->booted_unhealthy = true;
		return agent_save(a, err);
	}
	r = otter_slot_confirm(a->sys, NULL, err);
	if (r < 0)
		return otter_error_prefix(err, r, "confirming the booted slot %s", booted);
	agent_log(a, OTTER_LOG_INFO, "slot %s is healthy: confirmed for this boot (%u tries again)",
		  booted, otter_system_tries(a->sys));
	return 0;
}

/*
 * What the boot means for the pending release (see the state machine at the top): slot
 * reports the update's lifecycle; the agent decides what to do about it.
 */
static int boot_check_pending(otter_agent *a, otter_error *err)
{
	otter_slot_lifecycle_info lc;
	int r;

	switch (a->st.state) {
	case OTTER_AGENT_DOWNLOADING:
	case OTTER_AGENT_INSTALLING:
		/*
		 * "installing" is saved before the activation; a crash or power cut may have come
		 * after the environment write. The lifecycle of the release's bootname says which
		 * (slot reads it from the environment, whose write comes first).
		 */
		if (a->st.state == OTTER_AGENT_INSTALLING && a->st.pending_bootname[0]) {
			r = pending_lifecycle(a, &lc, err);
			if (r < 0)
				return r;
			if (lc.running && (lc.state == OTTER_UPDATE_TRYING ||
					   lc.state == OTTER_UPDATE_CONFIRMED)) {
				agent_log(a, OTTER_LOG_NOTICE, "release %s was activated before an interruption "
							 "and has booted: checking its health",
					  a->st.pending_version);
				set_state(a, OTTER_AGENT_PENDING_CONFIRM);
				start_deadline(a);
				r = agent_save(a, err);
				return r == 0 ? confirm_or_roll_back(a, err) : r;
			}
			if (lc.state == OTTER_UPDATE_PENDING_REBOOT) {
				set_state(a, OTTER_AGENT_PENDING_REBOOT);
				a->st.pending_since = 0;
				r = agent_save(a, err);
				return r == 0 ? reboot_into_pending(a, err) : r;
			}
		}
		agent_log(a, OTTER_LOG_WARNING, "the install of release %s was interrupted; it will be "
					  "done again",
			  a->st.pending_version);
		strfmt(a->st.last_error, sizeof(a->st.last_error),
		       "install of release %s was interrupted", a->st.pending_version);
		clear_pending(&a->st);
		set_state(a, OTTER_AGENT_FAILED);
		return agent_save(a, err);

	case OTTER_AGENT_PENDING_REBOOT:
	case OTTER_AGENT_PENDING_CONFIRM:
		r = pending_lifecycle(a, &lc, err);
		if (r < 0)
			return r;
		if (lc.state == OTTER_UPDATE_ACTIVATION_LOST) {
			/* Not the release's fault: it is installed and activated again. */
			strfmt(a->st.last_error, sizeof(a->st.last_error),
			       "the boot environment no longer puts slot %s of release %s first "
			       "(reset to its defaults by a power cut during a write, or changed by "
			       "hand): installing it again",
			       a->st.pending_bootname, a->st.pending_version);
			agent_log(a, OTTER_LOG_WARNING, "%s", a->st.last_error);
			clear_pending(&a->st);
			set_state(a, OTTER_AGENT_FAILED);
			return agent_save(a, err);
		}
		/* Rolled back, or no longer activated at all (marked bad before it booted). */
		if (lc.state == OTTER_UPDATE_ROLLED_BACK ||
		    (lc.state == OTTER_UPDATE_NONE && lc.booted)) {
			agent_log(a, OTTER_LOG_ERR, "release %s did not boot: the bootloader fell back "
					      "to slot %s",
				  a->st.pending_version, lc.booted ? lc.booted : "?");
			record_rollback(a, "the bootloader fell back (it never confirmed)");
			clear_pending(&a->st);
			return agent_save(a, err);
		}
		if (lc.running) {
			/* trying (or confirmed, by a run cut short after the confirmation) */
			if (a->st.state == OTTER_AGENT_PENDING_REBOOT) {
				/* First start in the new software: the deadline starts now. */
				set_state(a, OTTER_AGENT_PENDING_CONFIRM);
				start_deadline(a);
				r = agent_save(a, err);
				if (r < 0)
					return r;
			}
			return confirm_or_roll_back(a, err);
		}
		/* Pending: still running the old software: the reboot was not requested (a crash
		 * right after the activation), or it did not happen: request it (again). */
		if (a->st.state == OTTER_AGENT_PENDING_REBOOT &&
		    (a->st.pending_since == 0 ||
		     agent_now(a) - a->st.pending_since >= REBOOT_RETRY_S))
			return reboot_into_pending(a, err);
		return 0;

	case OTTER_AGENT_ROLLED_BACK:
		if (!a->st.pending_version[0])
			return 0;
		r = pending_lifecycle(a, &lc, err);
		if (r < 0 || !lc.booted)
			return r;
		if (!lc.running) {
			/* After the reboot that followed the verdict: the old software runs. */
			clear_pending(&a->st);
			return agent_save(a, err);
		}
		/* Still on the failed slot: the verdict was saved, then a crash or a reboot that
		 * did not happen. Rolling back is idempotent; reboot again (not in a tight loop). */
		r = otter_slot_roll_back(a->sys, pending_bootname(a), err);
		if (r < 0)
			return r;
		if (agent_now(a) - a->st.pending_since < 10)
			return 0;
		a->st.pending_since = agent_now(a);
		r = agent_save(a, err);
		return r == 0 ? request_reboot(a, err) : r;

	default:
		return 0;
	}
}

int otter_agent_boot_check(otter_agent *a, otter_error *err)
{
	int r;

	ARG_NONNULL(err, "agent", a);
	/* Each read of slot's state first records a fallback made by the bootloader. */
	r = boot_check_pending(a, err);
	if (r < 0)
		return r;
	if (a->st.state == OTTER_AGENT_PENDING_REBOOT || a->st.state == OTTER_AGENT_PENDING_CONFIRM ||
	    (a->st.state == OTTER_AGENT_ROLLED_BACK && a->st.pending_version[0]))
		return 0; /* the boot belongs to the pending release's story */
	/*
	 * Nothing pending (any more): the running software is confirmed in every boot. The read
	 * first records a fallback and starts damaged bookkeeping afresh (slot_state); whether
	 * this boot used a try is slot's to say.
	 */
	r = slot_state(a, NULL, NULL, err);
	return r < 0 ? r : confirm_booted(a, err);
}

struct pick {
	otter_agent *a;
	const char *installed;
	char version[AGENT_VERSION_MAX];
	char path[AGENT_RELEASE_MAX];
	otter_release *rel; /* the best so far, parsed from the signed custom copy */
	unsigned skipped_failed;
};

static int pick_release(void *userdata, const otter_tuf_target *t, otter_error *err)
{
	struct pick *p = userdata;
	const json_t *custom = otter_tuf_target_custom(t);
	json_t *doc = custom ? json_object_get(custom, "otter") : NULL;
	otter_release *r = NULL;
	otter_error e = OTTER_ERROR_INIT;

	if (!doc)
		return 0;
	if (otter_release_from_json(&r, doc, otter_tuf_target_path(t), &e) < 0) {
		agent_log(p->a, OTTER_LOG_WARNING, "%s, ignoring", e.msg);
		return 0;
	}
	if (!otter_release_matches(r, otter_system_compatible(p->a->sys), p->a->cfg.hardware_id) ||
	    (p->installed[0] && otter_version_compare(r->version, p->installed) <= 0) ||
	    (p->version[0] && otter_version_compare(r->version, p->version) <= 0)) {
		otter_release_free(r);
		return 0;
	}
	if (strlen(otter_tuf_target_path(t)) >= sizeof(p->path)) {
		agent_log(p->a, OTTER_LOG_WARNING, "release path '%.60s...' is longer than %zu bytes, "
					     "ignoring",
			  otter_tuf_target_path(t), sizeof(p->path) - 1);
		otter_release_free(r);
		return 0;
	}
	if (agent_state_failed(&p->a->st, r->version)) {
		p->skipped_failed++;
		otter_release_free(r);
		return 0;
	}
	strfmt(p->version, sizeof(p->version), "%s", r->version);
	strfmt(p->path, sizeof(p->path), "%s", otter_tuf_target_path(t));
	otter_release_free(p->rel);
	p->rel = r;
	return 0;
}

/*
 * The release to install: without a Director the newest suitable one the repository lists;
 * with one ([uptane]), what the Director assigns and the image repository signs, after full
 * verification of both (uptane.c). *u gets the image repository's updater.
 */
static int find_release(otter_agent *a, otter_tuf_updater **u, struct pick *p, otter_error *err)
{
	int r;

	if (a->uptane)
		return uptane_select(a, u, p->installed, p->version, sizeof(p->version), p->path,
				     sizeof(p->path), &p->rel, err);
	r = agent_updater(a, u, err);
	return r < 0 ? r : otter_tuf_foreach_target(*u, a->cfg.release_prefix, pick_release, p,
						    err);
}

int otter_agent_check_update(otter_agent *a, otter_agent_check *out, otter_error *err)
{
	otter_tuf_updater *u = NULL;
	otter_ab_status ab;
	struct pick p = {.a = a};
	char installed[AGENT_VERSION_MAX];
	bool taken = false;
	int r;

	memset(out, 0, sizeof(*out));
	/* A check refreshes the trusted metadata too: not while a cycle runs. */
	r = agent_cycle_lock(a, &taken, err);
	if (r < 0)
		return r;
	r = ab_status(a, &ab, err);
	if (r == 0) {
		installed_version(a, &ab, installed, sizeof(installed));
		p.installed = installed;
		r = find_release(a, &u, &p, err);
	}
	otter_tuf_updater_free(u);
	otter_release_free(p.rel);
	agent_cycle_unlock(a, taken);
	if (r < 0)
		return r;
	strfmt(out->installed, sizeof(out->installed), "%s", installed);
	out->available = p.version[0] != '\0';
	strfmt(out->version, sizeof(out->version), "%s", p.version);
	strfmt(out->release, sizeof(out->release), "%s", p.path);
	return 0;
}

static int do_cycle(otter_agent *a, bool *installed, otter_error *err)
{
	otter_tuf_updater *u = NULL;
	const otter_release *rel;
	otter_ab_status ab;
	struct pick p = {.a = a};
	char installed_v[AGENT_VERSION_MAX];
	int r;

	*installed = false;
	r = ab_status(a, &ab, err);
	if (r < 0)
		return r;
	installed_version(a, &ab, installed_v, sizeof(installed_v));
	p.installed = installed_v;

	agent_notify_status(a, "checking for updates");
	r = find_release(a, &u, &p, err);
	if (r < 0)
		goto out;
	a->st.last_check = agent_now(a);
	if (!p.version[0]) {
		strfmt(a->st.last_result, sizeof(a->st.last_result), "no newer release for %s%s",
		       otter_system_compatible(a->sys),
		       p.skipped_failed ? " (releases that failed before are skipped)" : "");
		agent_log(a, OTTER_LOG_INFO, "%s (installed: %s)", a->st.last_result,
			  installed_v[0] ? installed_v : "unknown");
		/* last-error keeps the last failure (a rollback, say) until something else happens. */
		if (a->st.state == OTTER_AGENT_FAILED)
			set_state(a, OTTER_AGENT_IDLE);
		a->st.failures = 0;
		r = agent_save(a, err);
		goto out;
	}
	agent_log(a, OTTER_LOG_NOTICE, "release %s available (installed: %s)", p.version,
		  installed_v[0] ? installed_v : "unknown");
	/* The signed custom copy is the release: the targets role signed it, as it signed the
	 * document's hashes, so nothing is fetched or parsed again. */
	rel = p.rel;
	/* Every slot class switches with the bootname, so a release must cover them all. */
	for (size_t i = 0; i < otter_system_n_slots(a->sys); i++) {
		const char *cls = otter_slot_class(otter_system_slot(a->sys, i));
		if (!otter_release_image_for(rel, cls)) {
			strfmt(a->refused, sizeof(a->refused), "%s", rel->version);
			r = otter_error_set(err, OTTER_E_FORMAT,
					    "release %s has no image for slot class '%s' of this "
					    "device: refusing it",
					    rel->version, cls);
			goto out;
		}
	}
	for (size_t i = 0; i < rel->n_images; i++) {
		/* Bootloader slots are optional in a release: most releases keep the bootloader. */
		const char *cls = rel->images[i].slot_class;
		bool known = otter_system_find_boot_slot(a->sys, cls) != NULL;

		for (size_t j = 0; j < otter_system_n_slots(a->sys) && !known; j++)
			known = strcmp(otter_slot_class(otter_system_slot(a->sys, j)), cls) == 0;
		if (!known) {
			strfmt(a->refused, sizeof(a->refused), "%s", rel->version);
			r = otter_error_set(err, OTTER_E_FORMAT,
					    "release %s has an image for slot class '%s', which this "
					    "device does not have: refusing it",
					    rel->version, rel->images[i].slot_class);
			goto out;
		}
	}

	strfmt(a->st.pending_version, sizeof(a->st.pending_version), "%s", rel->version);
	strfmt(a->st.pending_release, sizeof(a->st.pending_release), "%s", p.path);
	/* The slot writer picks the inactive slots; the first one names the bootname. */
	a->st.pending_bootname[0] = '\0';
	a->st.pending_since = 0;
	set_state(a, OTTER_AGENT_DOWNLOADING);
	r = agent_save(a, err);
	if (r < 0)
		goto out;

	/* Two passes: every A/B image first, bootloader images last, so that a bootloader is
	 * switched only once everything else of the release is written and verified. */
	for (size_t k = 0; k < 2 * rel->n_images; k++) {
		size_t i = k % rel->n_images;
		bool boot = otter_system_find_boot_slot(a->sys, rel->images[i].slot_class);
		otter_tuf_target *t = NULL;
		char status[300];

		if (boot != (k >= rel->n_images))
			continue;
		strfmt(status, sizeof(status), "downloading release %s: %s", rel->version,
		       rel->images[i].slot_class);
		agent_notify_status(a, status);
		r = otter_tuf_find_target(u, rel->images[i].target, &t, err);
		if (r == 0 && boot)
			r = agent_install_boot_image(a, u, rel->images[i].slot_class, t, err);
		else if (r == 0)
			r = agent_install_image(a, u, rel->images[i].slot_class,
						a->st.pending_bootname, t, rel->version, err);
		otter_tuf_target_free(t);
		if (r < 0) {
			otter_error_prefix(err, r, "release %s", rel->version);
			goto out;
		}
	}

	set_state(a, OTTER_AGENT_INSTALLING);
	r = agent_save(a, err);
	if (r < 0)
		goto out;
	r = otter_slot_activate(a->sys, a->st.pending_bootname, err);
	if (r < 0)
		goto out;
	/* From here on the pending release is never dropped: the next boot may run it. */
	*installed = true;
	crashpoint("agent-activated");
	agent_log(a, OTTER_LOG_NOTICE, "release %s installed in slots %s; activated for the next boot",
		  rel->version, a->st.pending_bootname);
	set_state(a, OTTER_AGENT_PENDING_REBOOT);
	a->st.pending_since = 0;
	a->st.failures = 0;
	a->st.last_error[0] = '\0';
	strfmt(a->st.last_result, sizeof(a->st.last_result),
	       "release %s installed, waiting for the reboot", rel->version);
	r = agent_save(a, err);
	if (r < 0)
		goto out;
	r = reboot_into_pending(a, err);
out:
	otter_tuf_updater_free(u);
	otter_release_free(p.rel);
	return r;
}

static int update_locked(otter_agent *a, bool *installed, otter_error *err)
{
	otter_error saveerr = OTTER_ERROR_INIT;
	int r;

	r = otter_agent_boot_check(a, err);
	if (r < 0)
		return r;
	if (a->st.state == OTTER_AGENT_PENDING_REBOOT || a->st.state == OTTER_AGENT_PENDING_CONFIRM) {
		agent_log(a, OTTER_LOG_NOTICE,
			  "release %s is %s: nothing else is installed until it is confirmed or "
			  "rolled back",
			  a->st.pending_version, otter_agent_state_name(a->st.state));
		return 0;
	}
	/* Rolled back and waiting for the reboot into the previous software. */
	if (a->st.state == OTTER_AGENT_ROLLED_BACK && a->st.pending_version[0])
		return 0;
	/*
	 * Installing writes the other slot, which takes it out of the boot order: while the
	 * running software is unhealthy, that slot is the fallback the bootloader needs.
	 */
	if (a->booted_unhealthy) {
		agent_log(a, OTTER_LOG_WARNING, "not checking for updates: the running slot failed its "
					  "health check in this boot, and installing would overwrite "
					  "the other slot, its fallback");
		strfmt(a->st.last_result, sizeof(a->st.last_result),
		       "no check: the running slot is unhealthy (see last-error)");
		return agent_save(a, err);
	}
	a->refused[0] = '\0';
	r = do_cycle(a, installed, err);
	if (r < 0 && !*installed && a->st.state == OTTER_AGENT_INSTALLING) {
		/*
		 * The activation itself failed: did its environment write land anyway? Then the
		 * pending release stays, so that the next boot is supervised. If the boot state
		 * cannot even be read, "installing" stays too and boot_check decides later.
		 */
		otter_slot_lifecycle_info lc;
		otter_error e = OTTER_ERROR_INIT;

		if (pending_lifecycle(a, &lc, &e) < 0) {
			record_error(a, err);
			if (agent_save(a, &saveerr) < 0)
				agent_log(a, OTTER_LOG_ERR, "%s", saveerr.msg);
			return r;
		}
		if (a->st.pending_bootname[0] && lc.state == OTTER_UPDATE_PENDING_REBOOT)
			*installed = true;
	}
	if (r < 0 && *installed) {
		/* Activated: keep the pending release whatever failed afterwards. */
		record_error(a, err);
		if (a->st.state == OTTER_AGENT_INSTALLING) {
			set_state(a, OTTER_AGENT_PENDING_REBOOT);
			a->st.pending_since = 0;
		}
		if (agent_save(a, &saveerr) < 0)
			agent_log(a, OTTER_LOG_ERR, "%s", saveerr.msg);
	} else if (r < 0) {
		/* Nothing was activated: the running software is untouched. */
		a->st.last_check = agent_now(a);
		a->st.failures++;
		record_error(a, err);
		strfmt(a->st.last_result, sizeof(a->st.last_result), "update failed");
		if (a->refused[0]) {
			/* It can never be installed here: not retried until a newer release. */
			agent_state_add_failed(&a->st, a->refused);
			strfmt(a->st.last_result, sizeof(a->st.last_result),
			       "release %s refused for this device: recorded as failed, not retried",
			       a->refused);
			agent_log(a, OTTER_LOG_WARNING, "%s", a->st.last_result);
		}
		clear_pending(&a->st);
		set_state(a, OTTER_AGENT_FAILED);
		if (agent_save(a, &saveerr) < 0)
			agent_log(a, OTTER_LOG_ERR, "%s", saveerr.msg);
	}
	return r;
}

int otter_agent_update(otter_agent *a, bool *installed, otter_error *err)
{
	bool taken = false;
	int r;

	if (installed)
		*installed = false;
	ARG_NONNULL(err, "agent", a);
	ARG_NONNULL(err, "agent", installed);
	r = agent_cycle_lock(a, &taken, err);
	if (r < 0)
		return r;
	r = update_locked(a, installed, err);
	if (a->uptane)
		uptane_report(a, r, err ? err : &(otter_error)OTTER_ERROR_INIT); /* every cycle */
	agent_cycle_unlock(a, taken);
	return r;
}

/* Seconds until the next check: the interval with jitter, or an exponential backoff. */
uint64_t agent_next_delay(const otter_agent *a)
{
	uint64_t d;

	if (a->st.failures > 0) {
		unsigned shift = a->st.failures > 20 ? 20 : (unsigned)a->st.failures - 1;
		d = a->cfg.retry_min << shift;
		if (d > a->cfg.retry_max || d < a->cfg.retry_min)
			d = a->cfg.retry_max;
		return d + agent_random_below(a, d / 4 + 1);
	}
	return a->cfg.poll_interval + agent_random_below(a, a->cfg.poll_jitter + 1);
}

int otter_agent_run(otter_agent *a, volatile int *stop, volatile int *check_now,
		    otter_error *err)
{
	int64_t next_check;
	int r;

	ARG_NONNULL(err, "agent", a);
	ARG_NONNULL(err, "agent", stop);
	if (a->cfg.watchdog_device) {
		a->wd_fd = open(a->cfg.watchdog_device, O_WRONLY | O_CLOEXEC);
		if (a->wd_fd < 0)
			return otter_error_set_errno(err, errno, "opening watchdog device '%s'",
						     a->cfg.watchdog_device);
		agent_log(a, OTTER_LOG_INFO, "feeding %s every %" PRIu64 " s", a->cfg.watchdog_device,
			  a->cfg.watchdog_interval);
	}
	agent_watchdog_tick(a);
	{
		otter_error e = OTTER_ERROR_INIT;
		otter_ab_status ab;
		bool taken = false;

		if (otter_ab_status_get(a->sys, &ab, &e) == 0 && ab.env_warning[0])
			agent_log(a, OTTER_LOG_WARNING, "%s", ab.env_warning);
		otter_error_clear(&e);
		r = agent_cycle_lock(a, &taken, &e);
		if (r == 0)
			r = otter_agent_boot_check(a, &e);
		agent_cycle_unlock(a, taken);
		if (r == OTTER_E_BUSY) {
			agent_log(a, OTTER_LOG_NOTICE, "after boot: %s; checking at the next cycle", e.msg);
		} else if (r < 0) {
			agent_log(a, OTTER_LOG_ERR, "after boot: %s", e.msg);
			record_error(a, &e);
		}
	}
	sdnotify_send("READY=1");
	agent_notify_status(a, otter_agent_state_name(a->st.state));
	/* A first check soon after start (jittered, so a fleet does not poll at once). */
	next_check = agent_now_ms(a) + (int64_t)agent_random_below(a, a->cfg.poll_jitter / 10 + 2) * 1000;

	while (!*stop) {
		agent_watchdog_tick(a);
		if ((check_now && *check_now) || agent_now_ms(a) >= next_check) {
			otter_error e = OTTER_ERROR_INIT;
			bool installed = false, taken = false;
			uint64_t delay;

			if (check_now)
				*check_now = 0;
			/* Not while an `otter update` runs a cycle: this one waits for a while. */
			r = agent_cycle_lock(a, &taken, &e);
			if (r < 0) {
				agent_log(a, r == OTTER_E_BUSY ? OTTER_LOG_NOTICE : OTTER_LOG_ERR,
					  "skipping this check: %s", e.msg);
				delay = a->cfg.retry_min + agent_random_below(a, a->cfg.retry_min / 4 + 1);
				next_check = agent_now_ms(a) + (int64_t)delay * 1000;
				continue;
			}
			if (a->st.state == OTTER_AGENT_PENDING_REBOOT ||
			    a->st.state == OTTER_AGENT_PENDING_CONFIRM ||
			    a->st.state == OTTER_AGENT_ROLLED_BACK) {
				r = otter_agent_boot_check(a, &e);
				if (r < 0)
					agent_log(a, OTTER_LOG_ERR, "%s", e.msg);
			}
			if (a->st.state != OTTER_AGENT_PENDING_REBOOT &&
			    a->st.state != OTTER_AGENT_PENDING_CONFIRM) {
				r = otter_agent_update(a, &installed, &e);
				if (r < 0)
					agent_log(a, OTTER_LOG_ERR, "update: %s", e.msg);
			}
			agent_cycle_unlock(a, taken);
			next_check = agent_now_ms(a) + (int64_t)agent_next_delay(a) * 1000;
			agent_log(a, OTTER_LOG_DEBUG, "next check in %" PRId64 " s",
				  (next_check - agent_now_ms(a)) / 1000);
			agent_notify_status(a, otter_agent_state_name(a->st.state));
		}
		agent_sleep_ms(a, 200);
	}
	sdnotify_send("STOPPING=1");
	return 0;
}

int otter_agent_system_load(otter_system **out, const char *path, otter_error *err)
{
	agent_config cfg;
	int r = agent_config_load(out, &cfg, path ? path : OTTER_SYSTEM_CONF_DEFAULT, err);

	if (r == 0)
		agent_config_clear(&cfg);
	return r;
}

json_t *otter_agent_status_json(const char *config_path, otter_error *err)
{
	otter_system *sys = NULL;
	agent_config cfg;
	agent_state st;
	bool damaged;
	json_t *o;
	int r;

	r = agent_config_load(&sys, &cfg, config_path ? config_path : OTTER_SYSTEM_CONF_DEFAULT,
			      err);
	if (r < 0)
		return NULL;
	r = agent_state_load(otter_system_data_dir(sys), &st, &damaged, err);
	if (r < 0) {
		agent_config_clear(&cfg);
		otter_system_free(sys);
		return NULL;
	}
	o = agent_state_to_json(&st);
	if (!o)
		otter_error_set(err, OTTER_E_NOMEM, "out of memory");
	else if (cfg.uptane.enabled)
		json_object_set_new(o, "uptane", uptane_status_json(&cfg.uptane,
								     otter_system_data_dir(sys)));
	agent_config_clear(&cfg);
	otter_system_free(sys);
	return o;
}
