// SPDX-License-Identifier: MIT
/*
 * bench_guard.c — a bound on blocking system calls that have no timeout of their own
 * (msgrcv, read of an eventfd, open of a FIFO, ...), at no cost per call.
 *
 * While armed, an interval timer raises SIGALRM every GUARD_TICK_NS; its handler does
 * nothing and is installed without SA_RESTART, so any system call blocked in this process
 * returns EINTR. The caller then asks bench_guard_expired() whether its operation has now
 * waited longer than BENCH_OP_TIMEOUT_NS (from the first interruption on) and otherwise
 * retries. A call that does not block never sees the timer.
 *
 * Armed only in the driver, after the peer has been forked, and disarmed before the next
 * fork: the peer keeps the default SIGALRM action for its alarm() watchdog (bench_peer.c),
 * which shares ITIMER_REAL with this timer.
 */
#define _POSIX_C_SOURCE 200809L /* sigaction, setitimer */
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <sys/time.h>

#define GUARD_TICK_US 250000

static struct sigaction old_action;
static int armed;

static void on_tick(int sig)
{
    (void)sig; /* its only job is to interrupt a blocked system call */
}

int bench_guard_arm(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocked calls return EINTR */
    if (sigaction(SIGALRM, &sa, &old_action) != 0) return -errno;
    struct itimerval it = {{0, GUARD_TICK_US}, {0, GUARD_TICK_US}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0) {
        int e = errno;
        sigaction(SIGALRM, &old_action, NULL);
        return -e;
    }
    armed = 1;
    return 0;
}

void bench_guard_disarm(void)
{
    if (!armed) return;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old_action, NULL);
    armed = 0;
}

int bench_guard_expired(int64_t *since)
{
    int64_t now = bench_now_ns();
    if (*since == 0) {
        *since = now;
        return 0;
    }
    return now - *since > BENCH_OP_TIMEOUT_NS;
}
