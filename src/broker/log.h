// SPDX-License-Identifier: MIT
/*
 * log.h — ferryd's log (with the server, src/broker/server.c, that writes it): one line per
 * message, each with a syslog priority (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG ... from
 * <syslog.h>), written where it will be read:
 *
 *   FERRY__LOG_JOURNAL  stderr is systemd's journal ($JOURNAL_STREAM names stderr's
 *                       device and inode): "<N>text\n", the sd-daemon(3) prefix that
 *                       gives the journal each line's priority (no "ferryd: ": the
 *                       journal names the unit and pid).
 *   FERRY__LOG_SYSLOG   syslog(3), facility LOG_DAEMON, ident "ferryd", with the pid:
 *                       for a ferryd with nowhere else to write (detached with stdio on
 *                       /dev/null, e.g. started by the library: --syslog).
 *   FERRY__LOG_STDERR   plain lines "ferryd: text\n" on stderr (a terminal, a file,
 *                       $FERRY_LOG): the default until ferry__log_open says otherwise.
 *
 * Rules: a message is formatted into a bounded buffer (longer ones are cut) and every
 * control byte in it becomes '?' before it is written, so nothing that reaches the log
 * (a name, an error text) can start a line of its own or forge a priority; a line goes
 * out in one write(2). Single-threaded (ferryd is): the sink is a global.
 */
#ifndef FERRY_BROKER_LOG_H
#define FERRY_BROKER_LOG_H

#include <stdarg.h>
#include <syslog.h>

enum { FERRY__LOG_STDERR, FERRY__LOG_JOURNAL, FERRY__LOG_SYSLOG };

/* Which sink suits this process now: FERRY__LOG_SYSLOG when want_syslog, else
 * FERRY__LOG_JOURNAL when $JOURNAL_STREAM (read with secure_getenv) is "DEV:INO" of fd 2,
 * else FERRY__LOG_STDERR. */
int ferry__log_pick(int want_syslog);

/* Log to sink from now on (a ferry__log_pick result); FERRY__LOG_SYSLOG opens the syslog
 * connection (openlog: no console fallback). Switching away from syslog closes it. */
void ferry__log_open(int sink);

/* The sink in use. */
int ferry__log_sink(void);

/* Log one message at priority prio (LOG_EMERG .. LOG_DEBUG). */
void ferry__log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ferry__vlog(int prio, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
