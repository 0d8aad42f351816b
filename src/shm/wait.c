// SPDX-License-Identifier: MIT
/*
 * wait.c — spin-then-futex waiting (see wait.h for the protocol).
 */
#define _GNU_SOURCE
#include "wait.h"
#include "core/futex.h"
#include "core/hot.h"
#include "watch.h"

#include "core/time.h"

#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

FERRY__HOT_DATA _Atomic int ferry__mb_state;
int64_t ferry__wait_slice_ns = FERRY__WAIT_SLICE_NS;

/* A child of fork() is a new mm, not registered: it registers again on first publish. */
static void mb_forked(void)
{
    if (atomic_load_explicit(&ferry__mb_state, memory_order_relaxed) > 0)
        atomic_store_explicit(&ferry__mb_state, 0, memory_order_relaxed);
}

static void mb_once(void)
{
    pthread_atfork(NULL, NULL, mb_forked);
}

int ferry__fence_setup(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, mb_once);
    long r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0);
    int st = r == 0 ? 1 : -1;
    atomic_store_explicit(&ferry__mb_state, st, memory_order_relaxed);
    return st;
}

/* The waiter's side of the Dekker pair (wait.h), between its announcement and its
 * re-check. While its waker fences (s->asked), a fence here is enough. Otherwise a
 * membarrier: a full barrier here and on every running registered thread. Raising the
 * fence flag rides on that membarrier: stored before it, so every waker step after it
 * sees the flag (and fences), and every one before it is ordered by it. Lowering the flag
 * needs no ordering: from then on this side pays a membarrier before every sleep again,
 * whatever the waker still sees. A failed membarrier: a fence, and the flag up for good. */
static void waiter_fence(ferry__spin *s, _Atomic uint32_t *cannot)
{
    const int want =
        s->slept >= FERRY__FENCE_HIGH || (s->asked && s->slept >= FERRY__FENCE_LOW) || s->mb_fails;
    if (want && s->asked) {
        atomic_thread_fence(memory_order_seq_cst); /* the waker fences too */
        return;
    }
    if (!want && s->asked) {
        s->asked = 0;
        atomic_store_explicit(cannot, 0, memory_order_relaxed); /* see above: no order */
    }
    if (want) atomic_store_explicit(cannot, 1, memory_order_seq_cst); /* before the barrier */
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0) {
        s->asked = (uint8_t)want; /* the flag is ordered before every later waker step */
        return;
    }
    /* No membarrier (a seccomp filter, an old kernel): the waker must fence from now on.
     * Nothing orders the flag for this sleep (it may wait one slice: wait.h). */
    s->mb_fails = 1;
    s->asked = 1;
    atomic_store_explicit(cannot, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
}

/* One more wait that slept (1) or did not (0) in the moving share s->slept (1/16 each). */
static void count_wait(ferry__spin *s, int slept)
{
    s->slept = s->slept - s->slept / 16 + (slept ? FERRY__FENCE_ONE / 16 : 0);
}

void ferry__spin_init(ferry__spin *s, int64_t max_ns)
{
    s->max_ns = max_ns < 0 ? 0 : max_ns;
    s->cur_ns = s->max_ns;
    s->slept = 0;
    s->probe = 0;
    s->probe_every = FERRY__SPIN_PROBE;
    s->asked = 0;
    s->mb_fails = 0;
}

/* Does the peer say it sleeps (wait.h)? Relaxed: a hint, no data depends on it. */
static int peer_sleeps(const ferry__peer *peer)
{
    if (!peer) return 0;
    for (int i = 0; i < 2; i++)
        if (peer->sleeping[i] && atomic_load_explicit(peer->sleeping[i], memory_order_relaxed))
            return 1;
    return 0;
}

/* Spin for up to budget ns; 1 if cond held, 0 if not, <0 error. *early is set when it
 * did not spin out its budget: the peer sleeps, or no spin at all (FERRY_NOW). The clock is first
 * read after a first round of polls: a quick hand-off never pays for it. Bounded by the budget and
 * the deadline whatever the peer's flags say (they can only end it sooner). */
static int spin(int64_t budget, ferry__cond_fn cond, void *arg, ferry__when *w,
                const ferry__peer *peer, int *early)
{
    if (budget <= 0 || w->at == 0) { /* no spin, no verdict on the budget */
        *early = 1;
        return 0;
    }
    int64_t end = 0;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            int c = cond(arg);
            if (c != 0) return c;
            cpu_relax();
        }
        int64_t now = ferry__now_ns();
        if (end == 0) {
            int64_t at = ferry__when_at(w);
            end = now + budget < at ? now + budget : at;
        }
        if (now >= end) return 0;
        if (peer_sleeps(peer)) {
            *early = 1;
            return 0;
        }
    }
}

/* On a page boundary: wait.c's hot text comes first in the library's .text.hot (link
 * order), so the per-message functions after it (about 7 KiB) lie on two pages, not three
 * (each a TLB miss per turn when processes outnumber CPUs: core/hot.h). */
FERRY__HOT __attribute__((aligned(4096))) int
ferry__wait(ferry__spin *s, ferry__cond_fn cond, ferry__alive_fn alive, void *arg,
            _Atomic uint32_t *futex, _Atomic uint32_t *waiting, _Atomic uint32_t *cannot,
            ferry__when *w, uint64_t *sleeps, const ferry__peer *peer, ferry__watch *watch)
{
    int c = cond(arg), early = 0;
    if (c != 0) return c < 0 ? c : 0;
    /* The budget: cur_ns; once spinning stopped paying (cur_ns 0), the whole budget every
     * probe_every waits: long enough to cover the peer's wake-up, so two ends that both
     * went to sleeping find their way back to spinning when the CPUs free up. A probe
     * that fails doubles the period (up to FERRY__SPIN_PROBE_MAX: while the CPUs stay
     * oversubscribed, probes cost next to nothing); one that pays resets it. A FERRY_NOW
     * call (w->at 0) spins nothing and counts for nothing. */
    const int64_t floor = s->max_ns / 16;
    int64_t budget = s->cur_ns;
    int probing = 0;
    if (budget == 0 && s->max_ns > 0 && w->at != 0 && ++s->probe >= s->probe_every) {
        s->probe = 0;
        budget = s->max_ns;
        probing = 1;
    }
    c = spin(budget, cond, arg, w, peer, &early);
    if (c != 0) {
        /* Spinning paid off: let the budget grow back towards its maximum. */
        s->cur_ns = budget * 2 > s->max_ns ? s->max_ns : budget * 2;
        s->probe_every = FERRY__SPIN_PROBE;
        count_wait(s, 0);
        return c < 0 ? c : 0;
    }
    /* It did not: halve the budget, down to the floor, then to none (probes only). A
     * spin cut short by a sleeping peer, or none (FERRY_NOW), says nothing about it. */
    if (budget > 0 && !early)
        s->cur_ns = s->cur_ns <= floor ? 0 : s->cur_ns / 2 < floor ? floor : s->cur_ns / 2;
    if (probing && !early && s->probe_every < FERRY__SPIN_PROBE_MAX) s->probe_every *= 2;
    int rc, check_peer = 0, announced = 0, slept = 0;
    for (;;) {
        /* Back from a FUTEX_WAIT: what woke us is usually what we wait for. Look before
         * announcing again: an announcement we do not need makes the waker's next
         * publication pay a wake-up call. (Looking more often is always safe; cond's
         * own acquire loads order what it finds.) */
        if (slept && (c = cond(arg)) != 0) {
            rc = c < 0 ? c : 0;
            break;
        }
        /* Announce ourselves, read the futex word, barrier, re-check the condition. The
         * barrier pairs with the waker's (wait.h): if the waker's state change is not
         * visible to the re-check below, our flag is visible to it, and it bumps the word
         * after we read it, so FUTEX_WAIT returns at once. The acquire on the word pairs
         * with the waker's bump: a bump we see brings its state change with it. */
        uint32_t seen;
        if (!announced || !atomic_load_explicit(waiting, memory_order_relaxed)) {
            atomic_store_explicit(waiting, 1, memory_order_relaxed);
            seen = atomic_load_explicit(futex, memory_order_acquire);
            waiter_fence(s, cannot);
            announced = 1;
        } else {
            /* A slice ran out and the flag is still up since our last barrier: every
             * waker that published after that barrier sees it and bumps the word (a bump
             * after this read makes FUTEX_WAIT return at once); what was published before
             * it, the re-check below sees. So no second barrier (a membarrier interrupts
             * other CPUs: once per sleep, not once per 5 ms slice). */
            seen = atomic_load_explicit(futex, memory_order_acquire);
        }
        c = cond(arg);
        if (c != 0) {
            rc = c < 0 ? c : 0;
            break;
        }
        int64_t at = ferry__when_at(w);
        /* (No call for no deadline: ferry__remaining lies outside the hot text.) */
        int64_t left = at == FERRY__NO_DEADLINE ? INT64_MAX : ferry__remaining(at);
        if (left <= 0) {
            rc = at == 0 ? -EAGAIN : -ETIMEDOUT;
            break;
        }
        /* Watched (watch.h): sleep to the deadline; the watcher wakes us if the link hangs
         * up. hup is read after the word (its acquire pairs with the watcher's bump): a
         * hang-up that bumped the word before we read it shows here. Once it fired, or
         * where there is no watcher, or while our membarrier fails (a sleep may then miss
         * one wake-up: wait.h), sleep in slices. */
        int untimed = watch && !s->mb_fails && ferry__watch_join(watch);
        if (watch && ferry__watch_fired(watch)) {
            untimed = 0;
            check_peer = 1;
        }
        /* Ask the kernel whether the peer lives only after a slice went by without a
         * wake-up, after a wake-up that brought nothing (a closing peer, or the watcher,
         * wakes us on its way out), or once the watcher saw the link hang up: a live
         * peer's wake-ups bring what we wait for, so the fast path pays nothing. */
        if (check_peer && (rc = alive(arg)) < 0) break;
        int64_t slice = left;
        if (!untimed && left > ferry__wait_slice_ns)
            slice = ferry__wait_slice_ns; /* (a global:
read only when sliced) */
        if (sleeps) (*sleeps)++;
        slept = 1;
        int w = ferry__futex_wait(futex, seen, slice);
        check_peer = w != -EINTR;
        /* 0 (woken), -EAGAIN (word changed), -EINTR, -ETIMEDOUT: all loop and re-check; the
         * deadline is absolute, so signals neither shorten nor lengthen the wait. */
    }
    atomic_store_explicit(waiting, 0, memory_order_relaxed);
    count_wait(s, slept);
    return rc;
}

FERRY__HOT int ferry__wake_waiter(_Atomic uint32_t *futex, _Atomic uint32_t *waiting)
{
    /* Take the announcement, so one sleep costs at most one wake-up call; the waiter
     * announces itself again each time before it sleeps again. */
    if (!atomic_exchange_explicit(waiting, 0, memory_order_seq_cst)) return 0;
    atomic_fetch_add_explicit(futex, 1, memory_order_seq_cst);
    ferry__futex_wake(futex, 1);
    return 1;
}
