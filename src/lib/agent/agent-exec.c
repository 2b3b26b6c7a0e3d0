/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Commands (health check, reboot), clocks, logging and the watchdogs. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent-private.h"
#include "util/cleanup.h"
#include "util/fileio.h"
#include "util/sdnotify.h"
#include "util/strutil.h"

extern char **environ;

static int64_t real_wall_s(void *userdata)
{
	(void)userdata;
	return (int64_t)time(NULL);
}

static int64_t real_monotonic_ms(void *userdata)
{
	struct timespec ts;

	(void)userdata;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_boot_s(void *userdata)
{
	struct timespec ts;

	(void)userdata;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static void real_boot_id(void *userdata, char out[40])
{
	_cleanup_free_ uint8_t *data = NULL;
	size_t len;

	(void)userdata;
	out[0] = '\0';
	if (fileio_read(AT_FDCWD, "/proc/sys/kernel/random/boot_id", 64, &data, &len, NULL) < 0)
		return;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == ' '))
		len--;
	if (len == 0 || len >= 40)
		return;
	memcpy(out, data, len);
	out[len] = '\0';
}

static uint64_t real_random(void *userdata)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint64_t)real_monotonic_ms(userdata);
	return v;
}

static void real_sleep_ms(void *userdata, unsigned ms)
{
	(void)userdata;
	usleep(ms * 1000u);
}

void agent_hooks_init(otter_agent_hooks *h, const otter_agent_hooks *given)
{
	static const otter_agent_hooks none;

	if (!given)
		given = &none;
	*h = *given;
	if (!h->wall_s)
		h->wall_s = real_wall_s;
	if (!h->monotonic_ms)
		h->monotonic_ms = real_monotonic_ms;
	if (!h->boot_s)
		h->boot_s = real_boot_s;
	if (!h->boot_id)
		h->boot_id = real_boot_id;
	if (!h->random)
		h->random = real_random;
	if (!h->sleep_ms)
		h->sleep_ms = real_sleep_ms;
}

int64_t agent_now(const otter_agent *a)
{
	return a->hooks.wall_s(a->hooks.userdata);
}

int64_t agent_now_ms(const otter_agent *a)
{
	return a->hooks.monotonic_ms(a->hooks.userdata);
}

int64_t agent_uptime(const otter_agent *a)
{
	return a->hooks.boot_s(a->hooks.userdata);
}

void agent_boot_id(const otter_agent *a, char out[40])
{
	out[0] = '\0';
	a->hooks.boot_id(a->hooks.userdata, out);
	out[39] = '\0';
}

uint64_t agent_random_below(const otter_agent *a, uint64_t n)
{
	return n == 0 ? 0 : a->hooks.random(a->hooks.userdata) % n;
}

void agent_sleep_ms(const otter_agent *a, unsigned ms)
{
	a->hooks.sleep_ms(a->hooks.userdata, ms);
}

void agent_log(const otter_agent *a, otter_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!a->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->log(a->userdata, level, msg);
}

void agent_notify_status(otter_agent *a, const char *status)
{
	char buf[600];

	strfmt(buf, sizeof(buf), "STATUS=%s", status);
	sdnotify_send(buf);
}

void agent_watchdog_tick(otter_agent *a)
{
	int64_t now = agent_now_ms(a);

	/* systemd: ping at half the interval, as sd_watchdog_enabled(3) advises. */
	if (a->sd_watchdog_usec &&
	    now - a->last_sd_ping_ms >= (int64_t)(a->sd_watchdog_usec / 2000)) {
		sdnotify_send("WATCHDOG=1");
		a->last_sd_ping_ms = now;
	}
	if (a->wd_fd >= 0 &&
	    now - a->last_hw_ping_ms >= (int64_t)a->cfg.watchdog_interval * 1000) {
		/* Any write keeps a Linux watchdog device from firing. */
		if (write(a->wd_fd, "\0", 1) < 0)
			agent_log(a, OTTER_LOG_WARNING, "feeding watchdog %s: %s, ignoring", a->cfg.watchdog_device,
				  strerror(errno));
		a->last_hw_ping_ms = now;
	}
}

int agent_run_command(otter_agent *a, const char *what, const char *command, uint64_t timeout_s,
		      int *status, otter_error *err)
{
	return agent_run_command_stdin(a, what, command, timeout_s, -1, status, err);
}

int agent_run_command_stdin(otter_agent *a, const char *what, const char *command,
			    uint64_t timeout_s, int stdin_fd, int *status, otter_error *err)
{
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)command, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int64_t deadline = timeout_s ? agent_now_ms(a) + (int64_t)timeout_s * 1000 : 0;
	pid_t pid;
	int r, wstatus = 0;

	posix_spawnattr_init(&attr);
	/* Its own process group, so a time limit can stop everything it started. */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawn_file_actions_init(&fa);
	if (stdin_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, stdin_fd, STDIN_FILENO);
	r = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r != 0)
		return otter_error_set_errno(err, r, "%s: cannot start '%s'", what, command);
	agent_log(a, OTTER_LOG_INFO, "%s: running '%s'", what, command);
	for (;;) {
		pid_t w = waitpid(pid, &wstatus, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return otter_error_set_errno(err, errno, "%s: waiting for '%s'", what,
						     command);
		agent_watchdog_tick(a);
		if (deadline && agent_now_ms(a) >= deadline) {
			kill(-pid, SIGKILL);
			waitpid(pid, &wstatus, 0);
			agent_log(a, OTTER_LOG_WARNING, "%s: '%s' did not finish within %llu s", what, command,
				  (unsigned long long)timeout_s);
			*status = -1;
			return 0;
		}
		usleep(50 * 1000);
	}
	*status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
	return 0;
}
