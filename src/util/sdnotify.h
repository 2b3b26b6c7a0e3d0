/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_UTIL_SDNOTIFY_H
#define OTTER_UTIL_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The systemd notification protocol (sd_notify(3)), without libsystemd: one datagram with
 * "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET ('@' = abstract name).
 * Returns 1 when sent, 0 when not running under a notify service, negative errno on error.
 */
int sdnotify_send(const char *state);

/*
 * The service watchdog interval ($WATCHDOG_USEC, honoured only when $WATCHDOG_PID is unset
 * or ours). False when no watchdog is configured.
 */
bool sdnotify_watchdog_usec(uint64_t *usec);

#endif
