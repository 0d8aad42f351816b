// SPDX-License-Identifier: MIT
/*
 * log.c — ferryd's log sinks (see log.h for the rules).
 */
#define _GNU_SOURCE /* secure_getenv */
#include "broker/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024

static int sink = FERRY__LOG_STDERR;

/* Is fd 2 the stream $JOURNAL_STREAM names ("DEV:INO", decimal)? */
static int stderr_is_journal(void)
{
    const char *v = secure_getenv("JOURNAL_STREAM");
    if (!v || !*v) return 0;
    char *end;
    errno = 0;
    uintmax_t dev = strtoumax(v, &end, 10);
    if (errno || end == v || *end != ':') return 0;
    const char *p = end + 1;
    uintmax_t ino = strtoumax(p, &end, 10);
    if (errno || end == p || *end) return 0;
    struct stat st;
    if (fstat(2, &st) < 0) return 0;
    return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

int ferry__log_pick(int want_syslog)
{
    if (want_syslog) return FERRY__LOG_SYSLOG;
    return stderr_is_journal() ? FERRY__LOG_JOURNAL : FERRY__LOG_STDERR;
}

void ferry__log_open(int s)
{
    if (sink == FERRY__LOG_SYSLOG && s != FERRY__LOG_SYSLOG) closelog();
    if (s == FERRY__LOG_SYSLOG && sink != FERRY__LOG_SYSLOG)
        openlog("ferryd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    sink = s;
}

int ferry__log_sink(void)
{
    return sink;
}

/* Write all of buf[0..n) to fd 2 (one write unless interrupted); errors are dropped. */
static void write_stderr(const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(2, buf, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        buf += w;
        n -= (size_t)w;
    }
}

void ferry__vlog(int prio, const char *fmt, va_list ap)
{
    char buf[LINE_MAX_BYTES];
    prio &= LOG_PRIMASK;
    /* The prefix first, then the text; the text's control bytes are masked below. */
    int pre = 0;
    if (sink == FERRY__LOG_JOURNAL)
        pre = snprintf(buf, sizeof buf, "<%d>", prio);
    else if (sink == FERRY__LOG_STDERR)
        pre = snprintf(buf, sizeof buf, "ferryd: ");
    int n = vsnprintf(buf + pre, sizeof buf - (size_t)pre - 1, fmt, ap);
    if (n < 0) return;
    size_t len = (size_t)pre + ((size_t)n < sizeof buf - (size_t)pre - 1
                                    ? (size_t)n
                                    : sizeof buf - (size_t)pre - 2); /* cut */
    for (size_t i = (size_t)pre; i < len; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) buf[i] = '?';
    if (sink == FERRY__LOG_SYSLOG) {
        buf[len] = '\0';
        syslog(prio, "%s", buf);
        return;
    }
    buf[len] = '\n';
    write_stderr(buf, len + 1);
}

void ferry__log(int prio, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ferry__vlog(prio, fmt, ap);
    va_end(ap);
}
