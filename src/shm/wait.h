// SPDX-License-Identifier: MIT
/*
 * wait.h — spin-then-futex waiting on a condition in shared memory.
 *
 * The protocol (one waiter per futex word, the other process is the waker):
 *   waiter: spin on cond() for an adaptive budget (see "Spinning" below); then set
 *           *waiting = 1, read the futex word, barrier, re-check cond(), and FUTEX_WAIT on
 *           the word until the deadline (a watched end: watch.h) or for at most
 *           FERRY__WAIT_SLICE_NS; repeat until cond() holds, the deadline passes, or the
 *           liveness check reports the peer gone (after a slice that ran out with
 *           *waiting still set, only the word is read again and cond() re-checked: the
 *           flag has been visible since the last barrier). *waiting is cleared on the
 *           way out.
 *   waker:  make cond() true (release store), ferry__publish_fence, and only if *waiting
 *           is set, bump the futex word and FUTEX_WAKE (ferry__wake_if_waiting).
 * The two barriers form a Dekker pair: either the waiter's re-check sees the new state,
 * or the waker sees the waiting flag; so no wake-up is lost and the fast path (nobody
 * waiting) makes no system call. A peer killed by a signal wakes nobody: where the
 * channel end has a watch entry (watch.h), the process's watcher thread wakes us when the
 * peer's end of the link hangs up, and a sleep lasts until the deadline; otherwise waits
 * are sliced, so that a dead peer is noticed within a slice.
 *
 * The barriers are asymmetric, and adaptive. A full fence per message costs as much as
 * draining the store buffer, which for a record just written to lines the peer holds
 * means waiting out a cache-line transfer (it halves a 64-byte stream). So while the
 * waiter mostly does not sleep, the waker (the hot path, once per message) needs only a
 * compiler barrier, because the waiter (the slow path, about to sleep anyway) calls
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which makes every running thread of every
 * registered process execute a full barrier — the same trick as userspace RCU. That costs
 * the sleeper microseconds and interrupts the other CPUs running registered processes,
 * which is a bad trade when the waiter sleeps on most waits (a blocking pingpong, more
 * processes than CPUs). Then the waiter asks its waker to fence instead: it raises the
 * shared `fence` flag (`cannot` below) and makes one last membarrier, which orders the
 * flag before every waker step that follows it (a waker step before it is fenced by the
 * membarrier itself); from then on it fences only itself, and the waker, seeing the flag,
 * pays a full fence per publication. When sleeps become rare again, the waiter lowers the
 * flag first and calls membarrier again before each sleep (a waker that still sees the
 * flag only fences more than needed). Mode and counts are private to the waiter
 * (ferry__spin); the shared flag is only ever written by it, and read by the waker.
 * Every process that publishes registers (ferry__fence_setup, again after fork); where
 * membarrier is missing, the publisher fences itself, and a waiter whose membarrier fails
 * raises the flag for good (without a membarrier to order it, the first sleep after that
 * may wait one slice).
 *
 * Spinning. The budget (ferry_chan_opts.spin_ns, default 50 us) halves when a spin ran
 * out, down to a floor of 1/16, and then to nothing: spinning has stopped paying (more
 * processes than CPUs: the peer we spin for is waiting for the CPU we burn), so the waiter
 * sleeps at once; every FERRY__SPIN_PROBE-th wait it still spins the whole budget, which
 * covers a peer's wake-up (a probe that fails doubles that period, up to
 * FERRY__SPIN_PROBE_MAX), and a spin that pays doubles the budget back. A spin also
 * stops early when the peer says it sleeps in a ferry wait on this channel (its own
 * waiting flags, `peer` below: raised before it sleeps, taken by whoever wakes it, so a
 * peer just woken counts as running): spinning for a sleeping peer only burns the CPU it
 * may need once woken. Those flags are written by the other process and are a hint only:
 * a false "asleep" makes us sleep early, a false "running" makes us spin our normal
 * budget; neither changes a wake-up (the waker side does not look at them), and a spin is
 * always bounded by the budget and the deadline. (sched_yield between rounds of polls was
 * tried and dropped: with 2-128 pairs on 2 CPUs it cut the aggregate 3-10x.)
 *
 * Futexes here are shared (not FUTEX_PRIVATE): the words live in memfd mappings.
 */
#ifndef FERRY_SHM_WAIT_H
#define FERRY_SHM_WAIT_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/time.h"
#include "watch.h"

/* Without a watcher (watch.h), liveness is checked this often while asleep: a peer killed
 * by a signal wakes nobody, so it is noticed within a slice. Each slice costs a futex call
 * and a poll (~200 of each a second per sleeping waiter; the barrier is paid once per
 * sleep, not per slice). */
#define FERRY__WAIT_SLICE_NS (5 * 1000 * 1000)
/* The slice in use: FERRY__WAIT_SLICE_NS. A test may lengthen it before it starts any
 * thread or process that waits (test_wait_stress: a lost wake-up then stalls a wait
 * until its deadline instead of one slice). */
extern int64_t ferry__wait_slice_ns;

/* This process's membarrier registration: 0 not (yet, or not since fork), 1 registered,
 * -1 unavailable. */
extern _Atomic int ferry__mb_state;

/* Register this process for expedited membarriers; returns the new ferry__mb_state. */
int ferry__fence_setup(void);

/* The waker's barrier between its state change and its load of the waiting flag.
 * peer_cannot: the waiter's fence flag (its membarrier failed, or it sleeps on most
 * waits: see above). Its load is relaxed and may be satisfied before our state change
 * is visible: the waiter raised it before a membarrier, and that membarrier ran a full
 * barrier here either before this load (then we read 1 and fence) or after it (then it
 * lies between our state change and our load of the waiting flag, as a fence would). */
static inline void ferry__publish_fence(_Atomic uint32_t *peer_cannot)
{
    int st = atomic_load_explicit(&ferry__mb_state, memory_order_relaxed);
    if (__builtin_expect(st == 0, 0)) st = ferry__fence_setup();
    if (st > 0 && !atomic_load_explicit(peer_cannot, memory_order_relaxed))
        atomic_signal_fence(memory_order_seq_cst); /* the waiter's membarrier does the rest */
    else
        atomic_thread_fence(memory_order_seq_cst);
}

/* ferry__publish_fence for a waker that knows whether this process is registered
 * (registered: ferry__mb_state was > 0 when its object was made; a registration belongs
 * to the mm, which fork copies and only exec clears), so that a publication reads no
 * global. The same barrier otherwise, with the same reasoning. */
static inline void ferry__publish_fence_reg(_Atomic uint32_t *peer_cannot, int registered)
{
    if (registered && !atomic_load_explicit(peer_cannot, memory_order_relaxed))
        atomic_signal_fence(memory_order_seq_cst); /* the waiter's membarrier does the rest */
    else
        atomic_thread_fence(memory_order_seq_cst);
}

/* Once spinning stopped paying, every this many waits spin the whole budget (wait.h);
 * each probe that fails doubles the period, up to the maximum. */
#define FERRY__SPIN_PROBE     16
#define FERRY__SPIN_PROBE_MAX 1024

/* Adaptive fence: the share of waits that slept (fixed point, FERRY__FENCE_ONE = all)
 * above which the waiter asks its waker to fence, and below which it stops asking. */
#define FERRY__FENCE_ONE  1024u
#define FERRY__FENCE_HIGH (FERRY__FENCE_ONE / 2)
#define FERRY__FENCE_LOW  (FERRY__FENCE_ONE / 8)

/* Adaptive spin and fence state, one per waiting side; private to its thread. */
typedef struct ferry__spin {
    int64_t max_ns;       /* configured budget (0 = never spin) */
    int64_t cur_ns;       /* current budget: halves when spinning failed (max/16, then 0),
                             doubles when it paid */
    uint32_t slept;       /* moving share of waits that slept, 0..FERRY__FENCE_ONE */
    uint32_t probe;       /* waits since the last probe while cur_ns is 0 */
    uint32_t probe_every; /* FERRY__SPIN_PROBE, doubled by each probe that failed */
    uint8_t asked;        /* the shared fence flag is up and ordered by a membarrier (wait.h) */
    uint8_t mb_fails;     /* our membarrier failed: the flag stays up, we fence ourselves */
} ferry__spin;

/* Where the peer says it sleeps in a ferry wait on this channel: its waiting flags (it
 * raises one before it sleeps; a waker takes it). A hint only (see "Spinning" above);
 * NULL entries are skipped. */
typedef struct ferry__peer {
    _Atomic uint32_t *sleeping[2];
} ferry__peer;

void ferry__spin_init(ferry__spin *s, int64_t max_ns);

/* Returns 1 when the condition holds, 0 when not yet, or a negative error to stop. */
typedef int (*ferry__cond_fn)(void *arg);
/* Returns 0 while the peer lives, or a negative error (-EPIPE) once it is gone. */
typedef int (*ferry__alive_fn)(void *arg);

/*
 * Wait until cond(arg) holds (returns 0), cond returns an error (returned as is), the
 * deadline passes (-ETIMEDOUT, or -EAGAIN for FERRY_NOW), or alive(arg) reports an error
 * (returned as is). The deadline is fixed on first need (time.h).
 * cannot: our fence flag (the waker fences while it is up); peer: the peer's sleeping
 * hint, or NULL. *sleeps is incremented for every FUTEX_WAIT that actually slept.
 * watch: the channel end's entry with the process's link watcher (its words include
 * futex), joined here before the first sleep; NULL: sleep in slices.
 */
int ferry__wait(ferry__spin *s, ferry__cond_fn cond, ferry__alive_fn alive, void *arg,
                _Atomic uint32_t *futex, _Atomic uint32_t *waiting, _Atomic uint32_t *cannot,
                ferry__when *w, uint64_t *sleeps, const ferry__peer *peer, ferry__watch *watch);

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
