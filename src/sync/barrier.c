// SPDX-License-Identifier: MIT
/*
 * barrier.c — ferry_barrier: a reusable barrier for count parties, shared between
 * processes in a sealed memfd object (obj.h, kind FERRY_OBJ_BARRIER).
 *
 * The object (one page):
 *   hdr      the common header (obj.h)
 *   count    the number of parties, >= 1: written at create, read once at adopt onto a
 *            private copy; never read from shared memory again.
 *   state    64 bits: generation << 32 | arrived (parties of this round so far). Every
 *            change is one CAS on it, so arriving, completing a round and withdrawing
 *            are each atomic with respect to the others.
 *   gen      the low 32 bits of the generation, a copy of state's, stored after each
 *            round completes: the futex word (futexes are 32-bit), shared.
 *
 * Rules:
 *  - Arrive: CAS (g, a) -> (g, a+1). The party that makes a == count completes the round
 *    instead: CAS (g, count-1) -> (g+1, 0), stores gen = g+1, wakes everyone and returns
 *    1 (the serial party; exactly one per round). The others sleep until state's
 *    generation is no longer g, and return 0.
 *  - Timeout: the party withdraws by CAS (g, a) -> (g, a-1). If the CAS finds another
 *    generation, the round completed while we timed out: we were part of it and return
 *    0, not -ETIMEDOUT. FERRY_NOW: a party that does not complete the round withdraws at
 *    once (-EAGAIN, the library's rule for FERRY_NOW).
 *  - Sleep: read gen, then state; if state's generation is still g, FUTEX_WAIT on gen
 *    with the value read — the completer changes state before gen, so either we see the
 *    new state or the kernel sees gen changed. Sleeps are sliced (20 ms, doubling to
 *    160 ms): a completer killed between its CAS and its store of gen does not strand
 *    the others.
 *  - Memory: every CAS on state is acq_rel and every waiter's load of it acquire, so what
 *    each party wrote before arriving is visible to every party after the round (the
 *    arrivals form a release sequence that the completer's CAS reads and continues).
 *  - A state with arrived >= count (a sharer wrote garbage) is -EBADMSG.
 *  - A party that dies after arriving stays counted: the round completes with one
 *    party fewer (a barrier has no undo).
 */
#define _GNU_SOURCE /* syscall() (futex), hidden by -std=c11 */
#include "obj.h"
#include "core/futex.h"

#include <ferry/ferry.h>

#include "core/time.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SLICE_MIN_NS ((int64_t)20 * 1000 * 1000) /* doubling up to the max when idle */
#define SLICE_MAX_NS ((int64_t)160 * 1000 * 1000)
#define PAGE         4096u

typedef struct barrier_shared {
    ferry__obj_hdr hdr;
    uint32_t count;
    uint32_t pad0;
    _Atomic uint64_t state; /* generation << 32 | arrived */
    _Atomic uint32_t gen;   /* the futex word */
} barrier_shared;

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics in shared memory must be lock-free");

struct ferry_barrier {
    int fd;
    ferry__seg seg;
    barrier_shared *sh;
    uint32_t count; /* private copy */
};

static int make_handle(int fd, ferry__seg seg, ferry_barrier **out)
{
    barrier_shared *sh = seg.base;
    if (seg.size < sizeof *sh) return -EBADMSG;
    uint32_t count = *(volatile uint32_t *)&sh->count; /* one private copy (obj.h) */
    uint64_t st = atomic_load_explicit(&sh->state, memory_order_relaxed);
    if (count == 0 || (uint32_t)st >= count) return -EBADMSG;
    ferry_barrier *b = calloc(1, sizeof *b);
    if (!b) return -ENOMEM;
    b->fd = fd;
    b->seg = seg;
    b->sh = sh;
    b->count = count;
    *out = b;
    return 0;
}

int ferry_barrier_create(uint32_t count, ferry_barrier **out)
{
    if (!out || count == 0) return -EINVAL;
    int fd;
    ferry__seg seg;
    int rc = ferry__obj_create(FERRY_OBJ_BARRIER, PAGE, &fd, &seg);
    if (rc < 0) return rc;
    ((barrier_shared *)seg.base)->count = count; /* state and gen start at 0 */
    rc = make_handle(fd, seg, out);
    if (rc < 0) {
        ferry__seg_unmap(&seg);
        close(fd);
    }
    return rc;
}

int ferry_barrier_adopt(int fd, ferry_barrier **out)
{
    if (fd < 0) return -EBADMSG;
    if (!out) {
        close(fd);
        return -EINVAL;
    }
    ferry__seg seg;
    int rc = ferry__obj_map(fd, FERRY_OBJ_BARRIER, &seg);
    if (rc == 0) {
        rc = make_handle(fd, seg, out);
        if (rc < 0) ferry__seg_unmap(&seg);
    }
    if (rc < 0) close(fd);
    return rc;
}

int ferry_barrier_open(const char *name, ferry_barrier **out, int64_t timeout_ns)
{
    if (!out) return -EINVAL;
    int fd = -1;
    int rc = ferry__obj_open(name, FERRY_OBJ_BARRIER, &fd, timeout_ns);
    if (rc < 0) return rc;
    return ferry_barrier_adopt(fd, out);
}

int ferry_barrier_fd(const ferry_barrier *b)
{
    return b ? b->fd : -EINVAL;
}

void ferry_barrier_close(ferry_barrier *b)
{
    if (!b) return;
    ferry__seg_unmap(&b->seg);
    close(b->fd);
    free(b);
}

#define GEN(st)     ((uint32_t)((st) >> 32))
#define ARRIVED(st) ((uint32_t)(st))
#define STATE(g, a) ((uint64_t)(g) << 32 | (uint64_t)(a))

int ferry_barrier_wait(ferry_barrier *b, int64_t timeout_ns)
{
    ferry__when w;
    if (!b || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL; /* before arriving */
    barrier_shared *sh = b->sh;
    uint32_t count = b->count;
    uint64_t st = atomic_load_explicit(&sh->state, memory_order_relaxed);
    uint32_t g;
    for (;;) {
        g = GEN(st);
        uint32_t a = ARRIVED(st);
        if (a >= count) return -EBADMSG;
        if (a + 1 == count) {
            /* The last arrival completes the round. acq_rel: acquire reads the other
             * arrivals' release sequence (their writes before arriving), release hands
             * ours and theirs to every waiter that sees the new generation. */
            if (!atomic_compare_exchange_weak_explicit(&sh->state, &st, STATE(g + 1, 0),
                                                       memory_order_acq_rel, memory_order_relaxed))
                continue;
            /* After state (see the sleep rule), then wake everyone. */
            atomic_store_explicit(&sh->gen, g + 1, memory_order_release);
            ferry__futex_wake(&sh->gen, INT32_MAX);
            return 1;
        }
        /* acq_rel: our writes before arriving go into the release sequence. */
        if (atomic_compare_exchange_weak_explicit(&sh->state, &st, STATE(g, a + 1),
                                                  memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    int64_t slice = SLICE_MIN_NS;
    for (;;) {
        /* gen before state: the completer stores them in the other order, so if we see
         * the old state, the gen we read is old too, and FUTEX_WAIT returns at once once
         * gen has changed. acquire on state: the round's writes are visible on return. */
        uint32_t f = atomic_load_explicit(&sh->gen, memory_order_acquire);
        st = atomic_load_explicit(&sh->state, memory_order_acquire);
        if (GEN(st) != g) return 0;
        int64_t at = ferry__when_at(&w);
        int64_t left = ferry__remaining(at);
        if (left <= 0) {
            /* Withdraw, unless the round completed meanwhile: then we belong to it. */
            for (;;) {
                if (GEN(st) != g) return 0;
                uint32_t a = ARRIVED(st);
                if (a == 0 || a >= count) return -EBADMSG; /* we are counted: a >= 1 */
                if (atomic_compare_exchange_weak_explicit(&sh->state, &st, STATE(g, a - 1),
                                                          memory_order_acq_rel,
                                                          memory_order_acquire))
                    return at == 0 ? -EAGAIN : -ETIMEDOUT;
            }
        }
        if (ferry__futex_wait(&sh->gen, f, left < slice ? left : slice) == -ETIMEDOUT)
            slice = slice * 2 > SLICE_MAX_NS ? SLICE_MAX_NS : slice * 2;
        /* Woken, gen changed, EINTR or the slice ended: re-check; the deadline is fixed. */
    }
}
