// SPDX-License-Identifier: MIT
/*
 * spin.h — the short, peer-aware spin a synchronization object does before it sleeps
 * (internal; used by the fair ferry_mutex's ticket queue, src/sync/mutex.c).
 *
 * ferry__sync_spin(ready, running, arg, budget_ns, w) waits for ready(arg) without a
 * system call for a short while, and only while running(arg) says the thread that will
 * make it true is on a CPU (not asleep in the kernel): spinning for a sleeper only burns
 * the time slice somebody needs. The shape:
 *  - batches of SPIN_BATCH reads with `pause` between them; the clock is read once per
 *    batch (never before the first batch: a quick hand-off pays for no clock read);
 *  - for the first FERRY__SYNC_SPIN_PAUSE_NS only pause; after that one sched_yield per
 *    batch, so that a peer preempted on this CPU (more runnable threads than cores, the
 *    normal case on a loaded machine) gets it back at once instead of after our slice;
 *  - at most budget_ns in all, and never past the caller's deadline w (core/time.h). A
 *    lazy deadline is fixed at the first clock read, which is where the wait began.
 * Returns 1 when ready(arg) became true, 0 when the caller should sleep (budget spent,
 * deadline reached, or the peer does not run).
 *
 * Hostile input: ready and running read words in shared memory that a sharer may write
 * at will. They only decide when this loop stops; the loop is bounded by time alone, so
 * no value makes it last longer than budget_ns (plus one batch and one sched_yield).
 *
 * (perf15b's shm wait policy, src/shm/wait.c, has its own peer-aware spin for the
 * channels; the two may be unified later. This one keeps to what the sync objects need:
 * a callback pair and no shared state of its own.)
 */
#ifndef FERRY_SYNC_SPIN_H
#define FERRY_SYNC_SPIN_H

#include "core/time.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#define ferry__sync_relax() __builtin_ia32_pause()
#else
#define ferry__sync_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

#define FERRY__SYNC_SPIN_PAUSE_NS 2000 /* pause-only spinning, then yield per batch */
#define FERRY__SYNC_SPIN_BATCH    16   /* reads between two looks at the clock */

static inline int ferry__sync_spin(int (*ready)(void *), int (*running)(void *), void *arg,
                                   int64_t budget_ns, ferry__when *w)
{
    if (budget_ns <= 0 || w->at == 0) return 0;
    int64_t start = 0, at = w->at;
    for (;;) {
        if (!running(arg)) return ready(arg);
        for (int i = 0; i < FERRY__SYNC_SPIN_BATCH; i++) {
            if (ready(arg)) return 1;
            ferry__sync_relax();
        }
        int64_t now = ferry__now_ns();
        if (start == 0) {
            start = now;
            if (at == FERRY__LAZY) /* fixed where the wait began (ferry__when_at's rule) */
                at = w->at = w->timeout > FERRY__NO_DEADLINE - 1 - now ? FERRY__NO_DEADLINE - 1
                                                                       : now + w->timeout;
        }
        if (now - start >= budget_ns || now >= at) return ready(arg);
        if (now - start >= FERRY__SYNC_SPIN_PAUSE_NS) sched_yield();
    }
}

#endif
