// SPDX-License-Identifier: MIT
/*
 * time.c — deadlines on CLOCK_MONOTONIC (see time.h). The clocks are read through the
 * vDSO's own function where it can be found (vdso.c: half the cost of glibc's wrapper).
 */
#define _GNU_SOURCE
#include "time.h"

#include <time.h>

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    ferry__vdso_gettime_fn fn = ferry__vdso_gettime();
    if (!fn || fn(id, &ts) != 0) clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ferry__now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t ferry__coarse_ns_slow(void)
{
    return clock_ns(CLOCK_MONOTONIC_COARSE);
}

int64_t ferry__deadline_in(int64_t ns)
{
    if (ns < 0) return FERRY__NO_DEADLINE; /* (never asked: internal bounds are >= 0) */
    if (ns == 0) return 0;
    int64_t now = ferry__now_ns();
    if (ns > FERRY__NO_DEADLINE - 1 - now) return FERRY__NO_DEADLINE - 1;
    return now + ns;
}

int ferry__deadline(int64_t timeout_ns, int64_t *deadline)
{
    if (!ferry__timeout_ok(timeout_ns)) return -EINVAL;
    *deadline = ferry__deadline_in(timeout_ns);
    return 0;
}

int64_t ferry__remaining(int64_t deadline)
{
    if (deadline == FERRY__NO_DEADLINE) return INT64_MAX;
    if (deadline == 0) return 0;
    return deadline - ferry__now_ns();
}

int64_t ferry__when_left(ferry__when *w)
{
    int64_t at = ferry__when_at(w);
    if (at == FERRY__NO_DEADLINE) return INT64_MAX;
    int64_t left = ferry__remaining(at);
    if (left > 0) return left;
    return at == 0 ? -EAGAIN : -ETIMEDOUT;
}
