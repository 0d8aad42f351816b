// SPDX-License-Identifier: MIT
/*
 * lock.h — the RPC server connection's internal mutex (internal; src/rpc/server.c): a
 * three-state futex lock, inline (0 free, 1 held, 2 held and somebody may sleep; the
 * classic design of Drepper's "Futexes are tricky", mutex 2).
 *
 * Why not pthread_mutex_t: a request's way through the server takes three holds (receive,
 * the id set, send), right after the receive's wait. Measured on the development VM
 * (2 vCPUs, ferry_call to a recv_request/reply echo over shm), the three pthread holds
 * cost ~140 ns of a ~600 ns round trip, these ~55 ns (one CAS and one exchange each, no
 * call into libc); ferry-rpc / ferry-shm went from ~1.3 to ~1.12.
 *
 * Rules: private to one process (never in shared memory, so nothing here is hostile
 * input); not recursive, no owner, no error checking: server.c never locks one twice nor
 * unlocks one it does not hold. Sleeps use core/futex.h's calls (shared futex operations:
 * correct on private memory too, and only the contended path makes them). Memory ordering:
 * taking the lock is an acquire (the CAS or the exchange), giving it back a release (the
 * exchange), so what one holder wrote is seen by the next.
 */
#ifndef FERRY_RPC_LOCK_H
#define FERRY_RPC_LOCK_H

#include "core/futex.h"

#include <stdatomic.h>
#include <stdint.h>

typedef struct ferry__rpc_lock {
    _Atomic uint32_t w; /* 0 free, 1 held, 2 held with (maybe) sleepers */
} ferry__rpc_lock;

static inline void ferry__rpc_lock_init(ferry__rpc_lock *l)
{
    atomic_init(&l->w, 0);
}

static inline void ferry__rpc_lock_take(ferry__rpc_lock *l)
{
    uint32_t e = 0;
    /* acquire: see the file comment. */
    if (atomic_compare_exchange_strong_explicit(&l->w, &e, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    /* Contended: say so (2) and sleep until an exchange finds it free. */
    if (e != 2) e = atomic_exchange_explicit(&l->w, 2, memory_order_acquire);
    while (e != 0) {
        ferry__futex_wait(&l->w, 2, INT64_MAX);
        e = atomic_exchange_explicit(&l->w, 2, memory_order_acquire);
    }
}

static inline void ferry__rpc_lock_give(ferry__rpc_lock *l)
{
    /* release: see the file comment. A 2 means somebody may sleep: wake one. */
    if (atomic_exchange_explicit(&l->w, 0, memory_order_release) == 2) ferry__futex_wake(&l->w, 1);
}

#endif
