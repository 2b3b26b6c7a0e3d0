/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef OTTER_LOG_H
#define OTTER_LOG_H

/*
 * One set of log levels for the whole library. Library code never prints: it hands a message
 * and its level to the log hook its caller gave (otter_tuf_options.log,
 * otter_agent_options.log); the program decides where it goes. The values are syslog's, so
 * a hook can pass them to syslog(3) or sd-journal unchanged.
 */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum otter_log_level {
	OTTER_LOG_ERR = 3,
	OTTER_LOG_WARNING = 4,
	OTTER_LOG_NOTICE = 5,
	OTTER_LOG_INFO = 6,
	OTTER_LOG_DEBUG = 7,
} otter_log_level;

/* A log sink: level is an otter_log_level; msg has no trailing newline. */
typedef void (*otter_log_fn)(void *userdata, int level, const char *msg);

#ifdef __cplusplus
}
#endif

#endif
