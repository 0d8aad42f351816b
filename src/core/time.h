/*
 * time.h — deadlines on CLOCK_MONOTONIC. A timeout_ns (FERRY_FOREVER, FERRY_NOW, or a
 * bound) becomes an absolute deadline once, when a call starts; every wait inside the
 * call is then measured against that deadline, so EINTR and retries neither shorten nor
 * lengthen it.
 */
#ifndef FERRY_CORE_TIME_H
#define FERRY_CORE_TIME_H

#include <stdint.h>

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
/* Now on CLOCK_MONOTONIC_COARSE (a few ms resolution, no TSC read): cheap. */
int64_t ferry__coarse_ns(void);
/* timeout_ns -> absolute deadline: FOREVER (<0) -> FERRY__NO_DEADLINE, 0 -> 0 (already
 * passed), else now + timeout (saturating). */
int64_t ferry__deadline(int64_t timeout_ns);
/* ns left until deadline: <= 0 means passed; FERRY__NO_DEADLINE stays INT64_MAX. */
int64_t ferry__remaining(int64_t deadline);

static inline ferry__when ferry__when_from(int64_t timeout_ns)
{
    ferry__when w = {timeout_ns, timeout_ns < 0    ? FERRY__NO_DEADLINE
                                 : timeout_ns == 0 ? 0
                                                   : FERRY__LAZY};
    return w;
}

/* The absolute deadline, fixing it now if it was not yet. */
static inline int64_t ferry__when_at(ferry__when *w)
{
    if (w->at == FERRY__LAZY) w->at = ferry__deadline(w->timeout);
    return w->at;
}

#endif
