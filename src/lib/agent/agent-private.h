/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LIB_AGENT_PRIVATE_H
#define OTTER_LIB_AGENT_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <otter/agent.h>
#include <otter/boot.h>
#include <otter/release.h>
#include <otter/tuf.h>

#include "uptane.h"

#define AGENT_MAX_MIRRORS  8
#define AGENT_MAX_FAILED   64
#define AGENT_STATE_FILE   "agent.json"
#define AGENT_LOCK_FILE    "agent.lock"
#define AGENT_STATE_MAX    (64 * 1024)
/* Sizes of fields, terminating NUL included: they hold every value validation allows. */
#define AGENT_VERSION_MAX  65 /* a release version is at most 64 bytes (release.c) */
#define AGENT_RELEASE_MAX  512

/* [update] in system.conf (docs/agent.md has the reference). */
typedef struct agent_config {
	char *repository;       /* base URLs, space-separated: <url>/metadata/, <url>/targets/ */
	char *trusted_root;     /* the root.json the device was provisioned with */
	char *metadata_dir;     /* default <data-directory>/tuf */
	char *download_dir;     /* release documents; default <data-directory>/downloads
				 * (images stream straight into their slot) */
	char *release_prefix;   /* where releases are listed: default "releases/" */
	char *hardware_id;      /* optional: matched against a release's "hardware" */
	char *reboot_command;
	char *health_check;     /* optional command: exit 0 = healthy */
	char *watchdog_device;  /* optional hardware watchdog, e.g. /dev/watchdog */
	char *version_file;     /* VERSION_ID= of the running software when nothing else says */
	uint64_t poll_interval, poll_jitter;
	uint64_t confirm_deadline;
	uint64_t retry_min, retry_max;
	uint64_t download_attempts;
	uint64_t connect_timeout, slow_timeout, min_speed;
	uint64_t watchdog_interval;
	uptane_config uptane;   /* [uptane]: the Director (uptane.h) */
} agent_config;

/* Loads system.conf with the [update] section. */
int agent_config_load(otter_system **sys, agent_config *cfg, const char *path,
		      otter_error *err);
void agent_config_clear(agent_config *cfg);

/* <data-directory>/agent.json */
typedef struct agent_state {
	otter_agent_state state;
	char current_version[AGENT_VERSION_MAX];
	char current_release[AGENT_RELEASE_MAX];
	char pending_version[AGENT_VERSION_MAX];
	char pending_release[AGENT_RELEASE_MAX];
	char pending_bootname[OTTER_BOOTNAME_MAX + 1];
	int64_t pending_since;  /* pending-reboot: reboot last requested (0: not yet);
				 * pending-confirm: first boot (deadline base);
				 * rolled-back: verdict or last reboot request */
	char pending_boot_id[40]; /* pending-confirm: the boot the deadline runs in */
	int64_t pending_uptime;   /* ... and CLOCK_BOOTTIME seconds when it started */
	int64_t last_check;     /* 0 = never */
	char last_result[256];
	char last_error[512];
	uint64_t failures;      /* consecutive failed cycles, for the backoff */
	char failed[AGENT_MAX_FAILED][AGENT_VERSION_MAX]; /* versions never retried */
	size_t n_failed;
} agent_state;

/* Loads the state; a missing file is a fresh idle state; a damaged one is set aside. */
int agent_state_load(const char *data_dir, agent_state *st, bool *was_damaged,
		     otter_error *err);
/* Parses agent.json bytes (strictly; fuzzed). */
int agent_state_parse(const uint8_t *data, size_t len, agent_state *st, otter_error *err);
int agent_state_save(const char *data_dir, const agent_state *st, otter_error *err);
struct json_t *agent_state_to_json(const agent_state *st);
bool agent_state_failed(const agent_state *st, const char *version);
void agent_state_add_failed(agent_state *st, const char *version);

struct otter_agent {
	otter_system *sys;
	agent_config cfg;
	char *config_path;
	char *mirrors[AGENT_MAX_MIRRORS];
	size_t n_mirrors;
	agent_state st;
	/* This cycle's release can never be installed here (decided from signed data alone):
	 * its version, recorded as failed when the cycle fails; "" otherwise. */
	char refused[AGENT_VERSION_MAX];
	int cycle_lock_fd; /* <data-directory>/agent.lock while a cycle runs; -1 otherwise */
	bool booted_unhealthy; /* the booted slot failed its health check in this boot */
	otter_agent_log_fn log;
	otter_agent_progress_fn progress;
	void *userdata;
	otter_agent_hooks hooks; /* every member set */
	uptane *uptane;          /* [uptane] configured: the Director decides (uptane.c) */
	/* watchdogs */
	int wd_fd;
	uint64_t sd_watchdog_usec;
	int64_t last_sd_ping_ms, last_hw_ping_ms;
};

void agent_log(const otter_agent *a, otter_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Feeds the watchdogs when due; cheap, call often (also from download progress). */
void agent_watchdog_tick(otter_agent *a);
void agent_notify_status(otter_agent *a, const char *status);
/* The hooks given in the options, with the real ones where NULL. */
void agent_hooks_init(otter_agent_hooks *h, const otter_agent_hooks *given);
/* Wall clock, seconds since the epoch. */
int64_t agent_now(const otter_agent *a);
/* Monotonic milliseconds (timers). */
int64_t agent_now_ms(const otter_agent *a);
/* Seconds since boot (CLOCK_BOOTTIME: counts suspend, never jumps with NTP). */
int64_t agent_uptime(const otter_agent *a);
/* The kernel's id of this boot (/proc/sys/kernel/random/boot_id), or "" if unknown. */
void agent_boot_id(const otter_agent *a, char out[40]);
/* Uniform in [0, n). */
uint64_t agent_random_below(const otter_agent *a, uint64_t n);
void agent_sleep_ms(const otter_agent *a, unsigned ms);
/* Seconds until the next check: the interval with jitter, or the backoff after failures. */
uint64_t agent_next_delay(const otter_agent *a);

/*
 * One cycle at a time, in every process: takes <data-directory>/agent.lock (never waiting;
 * OTTER_E_BUSY names the pid of the holder) and reloads agent.json, which the holder may have
 * moved on. Already held by this agent: nothing to do. *taken says whether this call took it
 * (then agent_cycle_unlock releases it).
 */
int agent_cycle_lock(otter_agent *a, bool *taken, otter_error *err);
void agent_cycle_unlock(otter_agent *a, bool taken);

/* Persists the state and passes the crash point "agent-<state>". */
int agent_save(otter_agent *a, otter_error *err);

/* Runs a shell command with a time limit (0 = none); *status gets its exit status (or -1 if
 * it was killed for the time limit or by a signal). */
int agent_run_command(otter_agent *a, const char *what, const char *command, uint64_t timeout_s,
		      int *status, otter_error *err);
/* The same, with stdin_fd as the command's standard input (-1: inherited). */
int agent_run_command_stdin(otter_agent *a, const char *what, const char *command,
			    uint64_t timeout_s, int stdin_fd, int *status, otter_error *err);

/* Fetching: a TUF updater on the first mirror that refreshes, and image streaming. */
int agent_updater(otter_agent *a, otter_tuf_updater **out, otter_error *err);
/* Streams t through the updater (mirrors, resume, every hash) into the inactive slot of
 * slot_class that the slot writer picks. bootname "" gets that slot's bootname; otherwise
 * the slot must have it (all classes switch together). */
int agent_install_image(otter_agent *a, otter_tuf_updater *u, const char *slot_class,
			char bootname[OTTER_BOOTNAME_MAX + 1], const otter_tuf_target *t,
			const char *version, otter_error *err);
/* A bootloader image (agent-bootslot.c): streamed into the inactive half of slot_class,
 * verified, then switched to. Called after every A/B image of the release is verified. */
int agent_install_boot_image(otter_agent *a, otter_tuf_updater *u, const char *slot_class,
			     const otter_tuf_target *t, otter_error *err);

#endif
