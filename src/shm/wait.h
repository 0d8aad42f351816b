// SPDX-License-Identifier: MIT
/*
 * wait.h — spin-then-futex waiting on a condition in shared memory.
 *
 * The protocol (one waiter per futex word, the other process is the waker):
 *   waiter: spin on cond() for an adaptive budget; then set *waiting = 1, read the futex
 *           word, full fence, re-check cond(), and FUTEX_WAIT on the word for at most
 *           FERRY__WAIT_SLICE_NS; repeat until cond() holds, the deadline passes, or the
 *           liveness check reports the peer gone (after a slice that ran out with
 *           *waiting still set, only the word is read again and cond() re-checked: the
 *           flag has been visible since the last fence). *waiting is cleared on the way
 *           out.
 *   waker:  make cond() true (release store), ferry__publish_fence, and only if *waiting
 *           is set, bump the futex word and FUTEX_WAKE (ferry__wake_if_waiting).
 * The two barriers form a Dekker pair: either the waiter's re-check sees the new state,
 * or the waker sees the waiting flag; so no wake-up is lost and the fast path (nobody
 * waiting) makes no system call. Waits are sliced so that a dead peer, which will never
 * wake us, is noticed within a slice.
 *
 * The barriers are asymmetric: the waker (the hot path, once per message) needs only a
 * compiler barrier, because the waiter (the slow path, about to sleep anyway) calls
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which makes every running thread of every
 * registered process execute a full barrier — the same trick as userspace RCU. A full
 * fence per message costs as much as draining the store buffer, which for a record just
 * written to lines the peer holds means waiting out a cache-line transfer. Every process
 * that publishes registers (ferry__fence_setup, again after fork); where membarrier is
 * missing, the publisher fences itself, and a waiter whose membarrier fails raises the
 * `cannot` flag in shared memory so that its publisher does too (the first sleep after
 * that change may then wait one slice).
 *
 * Futexes here are shared (not FUTEX_PRIVATE): the words live in memfd mappings.
 */
#ifndef FERRY_SHM_WAIT_H
#define FERRY_SHM_WAIT_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/time.h"

/* Liveness is checked this often while asleep: a peer killed by a signal wakes nobody, so
 * it is noticed within a slice. Each slice costs a futex call and a poll (~200 of each a
 * second per sleeping waiter; the barrier is paid once per sleep, not per slice). */
#define FERRY__WAIT_SLICE_NS (5 * 1000 * 1000)

/* This process's membarrier registration: 0 not (yet, or not since fork), 1 registered,
 * -1 unavailable. */
extern _Atomic int ferry__mb_state;

/* Register this process for expedited membarriers; returns the new ferry__mb_state. */
int ferry__fence_setup(void);

/* The waker's barrier between its state change and its load of the waiting flag.
 * peer_cannot: the waiter's "my membarrier failed" flag. */
static inline void ferry__publish_fence(_Atomic uint32_t *peer_cannot)
{
    int st = atomic_load_explicit(&ferry__mb_state, memory_order_relaxed);
    if (__builtin_expect(st == 0, 0)) st = ferry__fence_setup();
    if (st > 0 && !atomic_load_explicit(peer_cannot, memory_order_relaxed))
        atomic_signal_fence(memory_order_seq_cst); /* the waiter's membarrier does the rest */
    else
        atomic_thread_fence(memory_order_seq_cst);
}

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
                _Atomic uint32_t *futex, _Atomic uint32_t *waiting, _Atomic uint32_t *cannot,
                ferry__when *w, uint64_t *sleeps);

/* Waker side: call after ferry__publish_fence, which follows the state change. Returns 1
 * if a wake-up system call was made. */
int ferry__wake_waiter(_Atomic uint32_t *futex, _Atomic uint32_t *waiting);
static inline int ferry__wake_if_waiting(_Atomic uint32_t *futex, _Atomic uint32_t *waiting)
{
    /* The caller's barrier orders its state change before this load. Inline: nobody
     * waiting is the per-message case, and costs one load. */
    if (__builtin_expect(!atomic_load_explicit(waiting, memory_order_relaxed), 1)) return 0;
    return ferry__wake_waiter(futex, waiting);
}

#endif
