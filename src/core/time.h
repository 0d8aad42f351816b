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

/* Now on CLOCK_MONOTONIC, in ns. */
int64_t ferry__now_ns(void);
/* Now on CLOCK_MONOTONIC_COARSE (a few ms resolution, no TSC read): cheap. */
int64_t ferry__coarse_ns(void);
/* timeout_ns -> absolute deadline: FOREVER (<0) -> FERRY__NO_DEADLINE, 0 -> 0 (already
 * passed), else now + timeout (saturating). */
int64_t ferry__deadline(int64_t timeout_ns);
/* ns left until deadline: <= 0 means passed; FERRY__NO_DEADLINE stays INT64_MAX. */
int64_t ferry__remaining(int64_t deadline);

#endif
