/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_AGENT_H
#define OTTER_AGENT_H

/*
 * The update agent (docs/agent.md): the whole secure update cycle on a device.
 *
 *   refresh TUF metadata (mirrors in order) -> the newest release for this device that is
 *   newer than the installed one and has not failed before -> stream each image from the
 *   repository into its inactive slot, checked against the TUF-verified length and hashes,
 *   resuming interrupted downloads -> activate all slot classes with one boot environment
 *   write -> request the reboot -> after boot: run the health check; mark good, or mark bad
 *   and reboot into the previous software; recognise a fallback done by the bootloader.
 *
 * The agent's state is persisted atomically in <data-directory>/agent.json at each
 * transition, so a power cut or crash at any point resumes or rolls back on the next start.
 * Configuration comes from the [update] section of system.conf.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <otter/error.h>
#include <otter/log.h>
#include <otter/system.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum otter_agent_state {
	OTTER_AGENT_IDLE = 0,          /* running confirmed software, nothing pending */
	OTTER_AGENT_DOWNLOADING = 1,   /* a release was chosen; images are being fetched */
	OTTER_AGENT_INSTALLING = 2,    /* images written and verified; activating */
	OTTER_AGENT_PENDING_REBOOT = 3, /* the new slots are activated; waiting for the reboot */
	OTTER_AGENT_PENDING_CONFIRM = 4, /* booted the new slots; health not confirmed yet */
	OTTER_AGENT_CONFIRMED = 5,     /* the new software confirmed itself healthy */
	OTTER_AGENT_ROLLED_BACK = 6,   /* the new software failed; back on the previous one */
	OTTER_AGENT_FAILED = 7,        /* the last cycle failed before activation; will retry */
	_OTTER_AGENT_STATE_MAX,
} otter_agent_state;

OTTER_PUBLIC const char *otter_agent_state_name(otter_agent_state s);

typedef struct otter_agent otter_agent;

/* level is an otter_log_level (otter/log.h); progress: done/total bytes of one image. */
typedef otter_log_fn otter_agent_log_fn;
typedef void (*otter_agent_progress_fn)(void *userdata, const char *what, uint64_t done,
					uint64_t total);

/*
 * What the agent asks of the world besides files and commands: clocks, randomness, sleeping.
 * Each NULL member selects the real one; tests drive the state machine with fakes.
 */
typedef struct otter_agent_hooks {
	int64_t (*wall_s)(void *userdata);       /* seconds since the epoch: time() */
	int64_t (*monotonic_ms)(void *userdata); /* never jumps: CLOCK_MONOTONIC */
	int64_t (*boot_s)(void *userdata);       /* seconds since boot, suspend included:
						  * CLOCK_BOOTTIME */
	void (*boot_id)(void *userdata, char out[40]); /* this boot's id, "" if unknown:
							* /proc/sys/kernel/random/boot_id */
	uint64_t (*random)(void *userdata);      /* uniform 64 bits: getrandom() */
	void (*sleep_ms)(void *userdata, unsigned ms); /* usleep() */
	void *userdata;
} otter_agent_hooks;

typedef struct otter_agent_options {
	unsigned version;          /* OTTER_AGENT_OPTIONS_VERSION */
	const char *config_path;   /* NULL: /etc/otter/system.conf */
	/* Offline update: a folder (USB stick) holding a copy of the repository
	 * (metadata/ and targets/); replaces the configured repository URLs. */
	const char *offline_dir;
	otter_agent_log_fn log;
	otter_agent_progress_fn progress;
	void *userdata;
	const otter_agent_hooks *hooks; /* NULL: the real clocks, randomness and sleep */
} otter_agent_options;

#define OTTER_AGENT_OPTIONS_VERSION 1
#define OTTER_AGENT_OPTIONS_INIT {OTTER_AGENT_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL}

OTTER_PUBLIC int otter_agent_new(otter_agent **out, const otter_agent_options *opts,
				 otter_error *err) OTTER_WARN_UNUSED_RESULT;
OTTER_PUBLIC otter_agent *otter_agent_free(otter_agent *a);

/*
 * After boot (idempotent, call before anything else): finishes what a crash interrupted;
 * if a new slot was booted, runs the health check and confirms it or marks it bad and
 * requests a reboot; records a fallback the bootloader made.
 */
OTTER_PUBLIC int otter_agent_boot_check(otter_agent *a, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

typedef struct otter_agent_check {
	bool available;           /* a newer release for this device exists */
	char installed[65];       /* installed version ("" if unknown) */
	char version[65];         /* the newest suitable release's version */
	char release[512];        /* its target path */
} otter_agent_check;

/* Refreshes metadata and looks for a release to install; changes no slot. */
OTTER_PUBLIC int otter_agent_check_update(otter_agent *a, otter_agent_check *out,
					  otter_error *err) OTTER_WARN_UNUSED_RESULT;

/*
 * One whole cycle: check, download and install, activate, request the reboot. Returns 0
 * with *installed false when there is nothing to do. Network failures are retried
 * (resume, mirrors) within the cycle; a failed cycle leaves the running software untouched.
 */
OTTER_PUBLIC int otter_agent_update(otter_agent *a, bool *installed, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

/*
 * The daemon: boot check, then poll every interval (with random jitter, exponential backoff
 * after failures), feeding the systemd and hardware watchdogs. Returns when *stop becomes
 * true (set it from a signal handler) or on a fatal error.
 */
OTTER_PUBLIC int otter_agent_run(otter_agent *a, volatile int *stop, volatile int *check_now,
				 otter_error *err) OTTER_WARN_UNUSED_RESULT;

/* The agent's state as a JSON object (caller json_decref()s): state, current and pending
 * release, last check, last error, failed releases. */
struct json_t;
OTTER_PUBLIC struct json_t *otter_agent_status_json(const char *config_path, otter_error *err);

OTTER_PUBLIC const otter_system *otter_agent_system(const otter_agent *a);

/* Loads system.conf including the agent's [update] section (otter_system_load alone refuses
 * it as unknown), for programs that only need the system part. */
OTTER_PUBLIC int otter_agent_system_load(otter_system **out, const char *path, otter_error *err)
	OTTER_WARN_UNUSED_RESULT;

#ifdef __cplusplus
}
#endif

#endif
