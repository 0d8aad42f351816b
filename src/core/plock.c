// SPDX-License-Identifier: MIT
/*
 * plock.c — the lock for memory shared with processes that may be hostile (plock.h has
 * the design and its rules).
 *
 * _GNU_SOURCE: gettid() and syscall() (futex.h) are GNU extensions.
 */
#define _GNU_SOURCE
#include "core/plock.h"

#include "core/futex.h"
#include "core/proc.h"
#include "core/time.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <unistd.h>

#define TID_BITS    22
#define TID_MASK    ((UINT64_C(1) << TID_BITS) - 1)
#define PL_WAITERS  (UINT64_C(1) << 22)
#define START_SHIFT 24
#define START_MASK  ((UINT64_C(1) << 40) - 1)
#define ID_MASK     (~(PL_WAITERS | (UINT64_C(1) << 23)))
#define SPIN_NS     20000 /* spin this long on a held word before sleeping */

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

/* ------------------------------------------------------------------ who am I */

static _Thread_local uint64_t tl_id; /* this thread's id, 0: not read yet */

static void forked_child(void)
{
    tl_id = 0; /* the child's one thread has a new tid (and start time) */
}

static void once_setup(void)
{
    pthread_atfork(NULL, NULL, forked_child);
}

uint64_t ferry__plock_self(void)
{
    uint64_t id = tl_id;
    if (__builtin_expect(id != 0, 1)) return id;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, once_setup);
    pid_t tid = gettid();
    char st;
    uint64_t start = 0;
    if (ferry__proc_stat(tid, &st, &start) < 0) start = 0; /* no /proc: the tid alone */
    id = (start & START_MASK) << START_SHIFT | ((uint64_t)tid & TID_MASK);
    tl_id = id;
    return id;
}

/* Is the thread a word names certainly gone? (proc.h's check, in its id format.) */
static int holder_dead(uint64_t w)
{
    uint64_t tid = w & TID_MASK, start = (w >> START_SHIFT) & START_MASK;
    return ferry__proc_dead(start << 22 | tid);
}

/* ------------------------------------------------------------------ the word */

/* The futex word: the low 32 bits of the 64-bit lock word. */
static _Atomic uint32_t *low32(ferry__plock *lk)
{
    return (_Atomic uint32_t *)((uint32_t *)&lk->word +
                                (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? 1 : 0));
}

void ferry__plock_init(ferry__plock *lk)
{
    /* relaxed: nobody else sees the memory yet (it is passed on by a system call). */
    atomic_store_explicit(&lk->word, 0, memory_order_relaxed);
    atomic_store_explicit(&lk->state, 0, memory_order_relaxed);
    lk->pad = 0;
}

int ferry__plock_broken(ferry__plock *lk)
{
    /* acquire: pairs with the release in unlock's fetch_or of PL_BROKEN. */
    return (atomic_load_explicit(&lk->state, memory_order_acquire) & FERRY__PL_BROKEN) != 0;
}

int ferry__plock_sleepers(ferry__plock *lk)
{
    /* relaxed: a hint, nothing is published with it. */
    return (atomic_load_explicit(&lk->word, memory_order_relaxed) & PL_WAITERS) != 0;
}

int ferry__plock_held(ferry__plock *lk)
{
    /* relaxed: only this thread writes its own id into the word, so a match is ours. */
    return (atomic_load_explicit(&lk->word, memory_order_relaxed) & ID_MASK) == ferry__plock_self();
}

/* Give the word back (we hold it), waking n sleepers if any may sleep. */
static void release(ferry__plock *lk, int n, int force)
{
    /* release: publishes what the holder wrote under the lock to the next taker's
     * acquire CAS. */
    uint64_t old = atomic_exchange_explicit(&lk->word, 0, memory_order_release);
    if ((old & PL_WAITERS) || force) ferry__futex_wake(low32(lk), n);
}

/* We just took the word: what the state says of it. */
static int taken(ferry__plock *lk)
{
    /* acquire: with the CAS's acquire, sees a PL_BROKEN set before the word was freed. */
    uint32_t st = atomic_load_explicit(&lk->state, memory_order_acquire);
    if (st & FERRY__PL_BROKEN) {
        release(lk, INT32_MAX, 1);
        return -ENOTRECOVERABLE;
    }
    return st & FERRY__PL_INCONSISTENT ? -EOWNERDEAD : 0;
}

int ferry__plock_trylock(ferry__plock *lk)
{
    if (ferry__plock_broken(lk)) return -ENOTRECOVERABLE;
    uint64_t me = ferry__plock_self(), cur = 0;
    /* acquire: what the last holder wrote under the lock is visible once we hold it. */
    if (atomic_compare_exchange_strong_explicit(&lk->word, &cur, me, memory_order_acquire,
                                                memory_order_relaxed))
        return taken(lk);
    return (cur & ID_MASK) == me ? -EDEADLK : -EBUSY;
}

int ferry__plock_lock(ferry__plock *lk, int64_t at)
{
    int rc = ferry__plock_trylock(lk);
    if (rc != -EBUSY) return rc;
    uint64_t me = ferry__plock_self();
    /* A short spin, reading only (no CAS storm on the line), pays for short critical
     * sections; bounded by time, not by a count. */
    int64_t now = ferry__now_ns(), end = now + SPIN_NS;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            cpu_relax();
            if (atomic_load_explicit(&lk->word, memory_order_relaxed) == 0) break;
        }
        if (atomic_load_explicit(&lk->word, memory_order_relaxed) == 0) {
            rc = ferry__plock_trylock(lk);
            if (rc != -EBUSY) return rc;
        }
        now = ferry__now_ns();
        if (now >= end || now >= at) break;
    }
    uint64_t seen = 0; /* the holder we are waiting for */
    int64_t since = 0, slice = FERRY__PL_SLICE_MIN_NS;
    for (;;) {
        if (ferry__plock_broken(lk)) return -ENOTRECOVERABLE;
        uint64_t cur = atomic_load_explicit(&lk->word, memory_order_relaxed);
        if (cur == 0) {
            /* We have slept: others may sleep too, so the word keeps PL_WAITERS and our
             * unlock wakes one of them. acquire: as in trylock. */
            if (atomic_compare_exchange_strong_explicit(&lk->word, &cur, me | PL_WAITERS,
                                                        memory_order_acquire, memory_order_relaxed))
                return taken(lk);
            continue;
        }
        uint64_t id = cur & ID_MASK;
        if (id == me) return -EDEADLK; /* only a scribbler can write our id */
        now = ferry__now_ns();
        if (id != seen) { /* a new holder: progress, start the slices again */
            seen = id;
            since = now;
            slice = FERRY__PL_SLICE_MIN_NS;
        } else if (now - since >= slice) {
            /* The same holder for a whole slice: is it dead? */
            if (holder_dead(id)) {
                /* CAS from the exact word we judged: a holder that changed meanwhile
                 * (unlocked, another took it) is never taken from. acquire: as trylock. */
                if (atomic_compare_exchange_strong_explicit(&lk->word, &cur, me | PL_WAITERS,
                                                            memory_order_acquire,
                                                            memory_order_relaxed)) {
                    /* relaxed: only the holder writes PL_INCONSISTENT; the unlock that
                     * follows is a release. */
                    atomic_fetch_or_explicit(&lk->state, FERRY__PL_INCONSISTENT,
                                             memory_order_relaxed);
                    rc = taken(lk);
                    return rc == 0 ? -EOWNERDEAD : rc;
                }
                continue;
            }
            since = now;
            slice = slice * 2 > FERRY__PL_SLICE_MAX_NS ? FERRY__PL_SLICE_MAX_NS : slice * 2;
        }
        if (now >= at) return -ETIMEDOUT;
        if (!(cur & PL_WAITERS)) {
            /* relaxed: the flag only asks the holder's unlock (an exchange, which reads
             * it) to wake; the futex compare below checks the word itself. */
            uint64_t want = cur | PL_WAITERS;
            if (!atomic_compare_exchange_strong_explicit(
                    &lk->word, &cur, want, memory_order_relaxed, memory_order_relaxed))
                continue;
            cur = want;
        }
        int64_t wake = since + slice < at ? since + slice : at;
        int64_t ns = wake - now;
        if (ns < 1000) ns = 1000;
        /* The kernel sleeps only while the low 32 bits still equal ours: an unlock in
         * between (the word went to 0) makes it return at once. */
        ferry__futex_wait(low32(lk), (uint32_t)cur, ns);
    }
}

int ferry__plock_unlock(ferry__plock *lk)
{
    if (!ferry__plock_held(lk)) return -EPERM;
    int all = 0;
    if (atomic_load_explicit(&lk->state, memory_order_relaxed) & FERRY__PL_INCONSISTENT) {
        /* Unlocked without repair: not recoverable. release: seen by whoever takes the
         * word next (taken()) and by waiters' broken() checks; wake them all to say so. */
        atomic_fetch_or_explicit(&lk->state, FERRY__PL_BROKEN, memory_order_release);
        all = 1;
    }
    release(lk, all ? INT32_MAX : 1, all);
    return 0;
}

int ferry__plock_consistent(ferry__plock *lk)
{
    if (!ferry__plock_held(lk) || ferry__plock_broken(lk) ||
        !(atomic_load_explicit(&lk->state, memory_order_relaxed) & FERRY__PL_INCONSISTENT))
        return -EINVAL;
    /* relaxed: the unlock that follows publishes it (release). */
    atomic_fetch_and_explicit(&lk->state, ~FERRY__PL_INCONSISTENT, memory_order_relaxed);
    return 0;
}
