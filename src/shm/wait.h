/*
 * wait.h — spin-then-futex waiting on a condition in shared memory.
 *
 * The protocol (one waiter per futex word, the other process is the waker):
 *   waiter: spin on cond() for an adaptive budget; then set *waiting = 1, read the futex
 *           word, full fence, re-check cond(), and FUTEX_WAIT on the word for at most
 *           FERRY__WAIT_SLICE_NS; repeat until cond() holds, the deadline passes, or the
 *           liveness check reports the peer gone. *waiting is cleared on the way out.
 *   waker:  make cond() true (release store), full fence, and only if *waiting is set,
 *           bump the futex word and FUTEX_WAKE (ferry__wake_if_waiting).
 * The two fences form a Dekker pair: either the waiter's re-check sees the new state, or
 * the waker sees the waiting flag; so no wake-up is lost and the fast path (nobody
 * waiting) makes no system call. Waits are sliced so that a dead peer, which will never
 * wake us, is noticed within a slice.
 *
 * Futexes here are shared (not FUTEX_PRIVATE): the words live in memfd mappings.
 */
#ifndef FERRY_SHM_WAIT_H
#define FERRY_SHM_WAIT_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/time.h"

#define FERRY__WAIT_SLICE_NS (20 * 1000 * 1000) /* 20 ms: liveness is checked this often */

/* Adaptive spin state, one per waiting side. */
typedef struct ferry__spin {
    int64_t max_ns; /* configured budget (0 = never spin) */
    int64_t cur_ns; /* current budget: halves when spinning failed, doubles when it paid */
} ferry__spin;

void ferry__spin_init(ferry__spin *s, int64_t max_ns);

/* Returns 1 when the condition holds, 0 when not yet, or a negative error to stop. */
typedef int (*ferry__cond_fn)(void *arg);
/* Returns 0 while the peer lives, or a negative error (-EPIPE) once it is gone. */
typedef int (*ferry__alive_fn)(void *arg);

/*
 * Wait until cond(arg) holds (returns 0), cond returns an error (returned as is), the
 * deadline passes (-ETIMEDOUT, or -EAGAIN for FERRY_NOW), or alive(arg) reports an error
 * (returned as is). The deadline is fixed on first need (time.h).
 * *sleeps is incremented for every FUTEX_WAIT that actually slept.
 */
int ferry__wait(ferry__spin *s, ferry__cond_fn cond, ferry__alive_fn alive, void *arg,
                _Atomic uint32_t *futex, _Atomic uint32_t *waiting, ferry__when *w,
                uint64_t *sleeps);

/* Waker side: call after a full fence that follows the state change. Returns 1 if a
 * wake-up system call was made. */
int ferry__wake_if_waiting(_Atomic uint32_t *futex, _Atomic uint32_t *waiting);

#endif
