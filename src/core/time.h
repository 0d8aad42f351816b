// SPDX-License-Identifier: MIT
/*
 * time.h — deadlines on CLOCK_MONOTONIC. A timeout_ns (FERRY_FOREVER, FERRY_NOW, or a
 * bound) becomes an absolute deadline once, when a call starts; every wait inside the
 * call is then measured against that deadline, so EINTR and retries neither shorten nor
 * lengthen it. A negative timeout other than FERRY_FOREVER (-1) is -EINVAL: only the
 * functions here that take a caller's timeout_ns (ferry__deadline, ferry__when_from)
 * make a deadline of it, and both refuse it; the *_in forms are for the library's own
 * fixed bounds.
 */
#ifndef FERRY_CORE_TIME_H
#define FERRY_CORE_TIME_H

#include "vdso.h"

#include <errno.h>
#include <stdint.h>
#include <time.h>

#define FERRY__NO_DEADLINE INT64_MAX

/* A deadline read lazily: a call that never has to wait never reads the clock (a
 * CLOCK_MONOTONIC read costs tens of ns, as much as a whole message hand-off). The
 * deadline is fixed the first time the call needs it: at its first wait, which comes
 * before any work that takes long (a call that will surely wait, such as a rendezvous
 * send, fixes it at its start with ferry__when_at). */
typedef struct ferry__when {
    int64_t timeout; /* as the caller gave it */
    int64_t at;      /* absolute deadline, or FERRY__LAZY until first needed */
} ferry__when;

#define FERRY__LAZY INT64_MIN

/* Now on CLOCK_MONOTONIC, in ns. */
int64_t ferry__now_ns(void);
/* Now on CLOCK_MONOTONIC_COARSE (a few ms resolution, no TSC read): cheap. Inline, the
 * vDSO's function called directly (vdso.h): a shm send reads it once per message. */
int64_t ferry__coarse_ns_slow(void);
static inline int64_t ferry__coarse_ns(void)
{
    uintptr_t fn = atomic_load_explicit(&ferry__vdso_fn, memory_order_relaxed);
    struct timespec ts;
    if (__builtin_expect(fn > 1, 1) &&
        ((ferry__vdso_gettime_fn)fn)(CLOCK_MONOTONIC_COARSE, &ts) == 0)
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return ferry__coarse_ns_slow();
}
/* A caller's timeout_ns -> absolute deadline in *deadline: FERRY_FOREVER (-1) ->
 * FERRY__NO_DEADLINE, 0 -> 0 (already passed), > 0 -> now + timeout (saturating).
 * Returns 0, or -EINVAL for any other negative value (only -1 means forever). Every
 * public call that takes a timeout_ns turns it into a deadline through this function or
 * ferry__when_from, before it does anything else, so every one refuses a bad timeout the
 * same way. */
int ferry__deadline(int64_t timeout_ns, int64_t *deadline);
/* An internal bound of ns >= 0 (never a caller's timeout_ns) -> absolute deadline. */
int64_t ferry__deadline_in(int64_t ns);
/* ns left until deadline: <= 0 means passed; FERRY__NO_DEADLINE stays INT64_MAX. */
int64_t ferry__remaining(int64_t deadline);

/* Is timeout_ns one the API defines: FERRY_FOREVER (-1), FERRY_NOW (0) or positive? */
static inline int ferry__timeout_ok(int64_t timeout_ns)
{
    return timeout_ns >= -1;
}

/* A caller's timeout_ns -> a lazy deadline in *w (ferry__when_at fixes it when first
 * needed). Returns 0, or -EINVAL (as ferry__deadline) with *w unusable. */
static inline int ferry__when_from(int64_t timeout_ns, ferry__when *w)
{
    w->timeout = timeout_ns;
    w->at = timeout_ns == 0 ? 0 : timeout_ns == -1 ? FERRY__NO_DEADLINE : FERRY__LAZY;
    return ferry__timeout_ok(timeout_ns) ? 0 : -EINVAL;
}

/* An internal bound of ns >= 0 (never a caller's timeout_ns) -> a lazy deadline. */
static inline ferry__when ferry__when_in(int64_t ns)
{
    ferry__when w = {ns, ns == 0 ? 0 : FERRY__LAZY};
    return w;
}

/* The absolute deadline, fixing it now if it was not yet. */
static inline int64_t ferry__when_at(ferry__when *w)
{
    if (w->at == FERRY__LAZY) w->at = ferry__deadline_in(w->timeout); /* (checked: > 0) */
    return w->at;
}

/* The ns left before w's deadline (fixing it now if it was not yet): INT64_MAX for no
 * deadline; -EAGAIN when it was FERRY_NOW, -ETIMEDOUT when it has passed. The wait loops
 * of the objects that block on futexes (event queues, mailboxes, broadcast) use it. */
int64_t ferry__when_left(ferry__when *w);

#endif
