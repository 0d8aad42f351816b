// SPDX-License-Identifier: MIT
/*
 * wait.c — spin-then-futex waiting (see wait.h for the protocol).
 */
#define _GNU_SOURCE
#include "wait.h"
#include "core/futex.h"

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

_Atomic int ferry__mb_state;

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

/* The waiter's side of the Dekker pair (wait.h): a full barrier here and on every
 * running registered thread, or a plain fence and a request that the waker fence too. */
static void waiter_fence(_Atomic uint32_t *cannot)
{
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0) return;
    if (!atomic_load_explicit(cannot, memory_order_relaxed))
        atomic_store_explicit(cannot, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
}

void ferry__spin_init(ferry__spin *s, int64_t max_ns)
{
    s->max_ns = max_ns < 0 ? 0 : max_ns;
    s->cur_ns = s->max_ns;
}

/* Spin for up to the current budget; 1 if cond held, 0 if not, <0 error. The clock is
 * first read after a first round of spinning: a quick hand-off never pays for it. */
static int spin(ferry__spin *s, ferry__cond_fn cond, void *arg, ferry__when *w)
{
    if (s->cur_ns <= 0 || w->at == 0) return 0;
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
            end = now + s->cur_ns < at ? now + s->cur_ns : at;
        }
        if (now >= end) return 0;
    }
}

int ferry__wait(ferry__spin *s, ferry__cond_fn cond, ferry__alive_fn alive, void *arg,
                _Atomic uint32_t *futex, _Atomic uint32_t *waiting, _Atomic uint32_t *cannot,
                ferry__when *w, uint64_t *sleeps)
{
    int c = cond(arg);
    if (c != 0) return c < 0 ? c : 0;
    c = spin(s, cond, arg, w);
    if (c != 0) {
        /* Spinning paid off: let the budget grow back towards its maximum. */
        s->cur_ns = s->cur_ns * 2 > s->max_ns ? s->max_ns : s->cur_ns * 2;
        return c < 0 ? c : 0;
    }
    if (s->max_ns > 0) {
        int64_t floor = s->max_ns / 16;
        s->cur_ns = s->cur_ns / 2 < floor ? floor : s->cur_ns / 2;
    }
    int rc, check_peer = 0, announced = 0;
    for (;;) {
        /* Announce ourselves, read the futex word, barrier, re-check the condition. The
         * barrier pairs with the waker's (wait.h): if the waker's state change is not
         * visible to the re-check below, our flag is visible to it, and it bumps the word
         * after we read it, so FUTEX_WAIT returns at once. The acquire on the word pairs
         * with the waker's bump: a bump we see brings its state change with it. */
        uint32_t seen;
        if (!announced || !atomic_load_explicit(waiting, memory_order_relaxed)) {
            atomic_store_explicit(waiting, 1, memory_order_relaxed);
            seen = atomic_load_explicit(futex, memory_order_acquire);
            waiter_fence(cannot);
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
        int64_t left = ferry__remaining(at);
        if (left <= 0) {
            rc = at == 0 ? -EAGAIN : -ETIMEDOUT;
            break;
        }
        /* Ask the kernel whether the peer lives only after a slice went by without a
         * wake-up, or after a wake-up that brought nothing (a closing peer wakes us on
         * its way out): a live peer's wake-ups bring what we wait for, so the fast path
         * pays nothing. */
        if (check_peer && (rc = alive(arg)) < 0) break;
        int64_t slice = left < FERRY__WAIT_SLICE_NS ? left : FERRY__WAIT_SLICE_NS;
        if (sleeps) (*sleeps)++;
        int w = ferry__futex_wait(futex, seen, slice);
        check_peer = w != -EINTR;
        /* 0 (woken), -EAGAIN (word changed), -EINTR, -ETIMEDOUT: all loop and re-check; the
         * deadline is absolute, so signals neither shorten nor lengthen the wait. */
    }
    atomic_store_explicit(waiting, 0, memory_order_relaxed);
    return rc;
}

int ferry__wake_waiter(_Atomic uint32_t *futex, _Atomic uint32_t *waiting)
{
    /* Take the announcement, so one sleep costs at most one wake-up call; the waiter
     * announces itself again each time before it sleeps again. */
    if (!atomic_exchange_explicit(waiting, 0, memory_order_seq_cst)) return 0;
    atomic_fetch_add_explicit(futex, 1, memory_order_seq_cst);
    ferry__futex_wake(futex, 1);
    return 1;
}
