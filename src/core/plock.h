// SPDX-License-Identifier: MIT
/*
 * plock.h — a lock for memory shared with processes that may be hostile: one 64-bit word
 * whose holder is named by its thread's identity {tid, start time}, recovered by a death
 * check (proc.h). Used by every object that can be shared across uids and needs mutual
 * exclusion: the mailbox's lock (src/mailbox) and the fair ferry_mutex (src/sync/mutex.c).
 *
 * Why not a glibc robust pthread mutex: its robust-list links (__list.__next/__prev) live
 * in the shared memory and glibc writes through them on unlock, so a sharer that rewrites
 * them makes any locker write where the sharer chose. Nothing here is ever followed as a
 * pointer: the word is compared, exchanged and handed to the kernel's futex only.
 *
 * The word. 0: free. Else bits 0-21 the holder's tid (PID_MAX_LIMIT is 2^22), bit 22
 * PL_WAITERS (someone may sleep: the unlocker must wake one), bit 23 zero, bits 24-63 the
 * low 40 bits of the holder thread's start time (clock ticks after boot, field 22 of
 * /proc/<tid>/stat: 2^40 ticks is 348 years at 100 Hz). Sleepers FUTEX_WAIT on the word's
 * low 32 bits (tid, PL_WAITERS, 8 bits of start time), which change whenever the word
 * does (but for the same tid recycled with the same 8 low start bits within one slice:
 * then a sleep lasts that slice, nothing worse).
 *
 * The rule for the window between taking the word and recording the holder: there is
 * none. One CAS 0 -> id takes the lock and names the holder in the same instruction; the
 * id is computed before (once per thread). So a thread killed at any instruction either
 * has not taken the word (nothing to recover) or holds it under its own name (recovered
 * once it is dead). A waiter takes a dead holder's word only by a CAS from the exact
 * value it judged dead, so it never steals from a live holder: an id is never reused by
 * another live thread (a recycled tid has another start time).
 *
 * Death. A waiter sleeps in slices (PL_SLICE_MIN_NS doubling to PL_SLICE_MAX_NS, back to
 * the minimum whenever the holder changes). A slice that ends with the same holder asks
 * ferry__proc_dead about it (a pidfd, /proc/<tid>/stat); a dead holder's word is taken
 * over, the state marked PL_INCONSISTENT, and the taker told -EOWNERDEAD: it repairs what
 * the lock guards and calls ferry__plock_consistent, or unlocks without that, which makes
 * the lock not recoverable for good (PL_BROKEN: every later lock -ENOTRECOVERABLE). So a
 * holder's death is noticed within one slice of its wait (at most PL_SLICE_MAX_NS plus a
 * death check), and a sleeper costs one futex timeout and one death check per slice:
 * no busy waiting. A wake-up lost to a waiter killed after it was woken is likewise
 * made up within a slice.
 *
 * What death means: the holder thread exited (with its process or alone) or is a
 * zombie. A holder that calls exec(2) keeps its tid and start time: it holds the lock
 * until it exits (a robust pthread mutex would be freed by the exec). A main thread that
 * exits while other threads of its process run counts as alive until they all exited.
 * Without /proc only the tid is checked (a recycled tid looks alive until it exits).
 * All processes sharing a lock must be in one pid namespace.
 *
 * Hostile sharers. A sharer can write anything into the word and the state at any time:
 * hold the lock forever under a live id (then lockers time out, as with a live holder),
 * name a dead or made-up holder (then a waiter takes over within a slice and is told
 * -EOWNERDEAD), set PL_BROKEN (-ENOTRECOVERABLE), or clear the word under a holder (then
 * two threads may be inside at once: whatever the lock guards must itself be checked,
 * as every structure in shared memory is). No value makes a caller crash, loop without
 * a bound, or miss its deadline by more than one slice.
 *
 * Threads: any thread may lock; the holder is that thread (another thread of its process
 * unlocking gets -EPERM). Memory ordering: taking the word is an acquire, releasing it a
 * release, so what the holder wrote is seen by the next holder.
 */
#ifndef FERRY_CORE_PLOCK_H
#define FERRY_CORE_PLOCK_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct ferry__plock {
    _Atomic uint64_t word;  /* 0, or the holder's id | PL_WAITERS */
    _Atomic uint32_t state; /* 0 | PL_INCONSISTENT | PL_BROKEN */
    uint32_t pad;
} ferry__plock;

#define FERRY__PL_INCONSISTENT 1u /* a holder died; the taker has not called consistent */
#define FERRY__PL_BROKEN       2u /* unlocked while inconsistent: not recoverable */

#define FERRY__PL_SLICE_MIN_NS ((int64_t)1 * 1000 * 1000)
#define FERRY__PL_SLICE_MAX_NS ((int64_t)50 * 1000 * 1000)

/* A new lock (free, consistent) in memory nobody else sees yet. */
void ferry__plock_init(ferry__plock *lk);

/* This thread's id as the word holds it (never 0; computed once per thread and again in
 * a fork child). */
uint64_t ferry__plock_self(void);

/* Take the lock, waiting until the absolute CLOCK_MONOTONIC deadline at (ns;
 * FERRY__NO_DEADLINE: no bound; a deadline already passed: one try after a short spin).
 * 0: held. -EOWNERDEAD: held, taken from a dead holder (or left inconsistent by one):
 * repair, then ferry__plock_consistent. -ENOTRECOVERABLE: not held, never again.
 * -EDEADLK: this thread holds it. -ETIMEDOUT: the deadline passed. */
int ferry__plock_lock(ferry__plock *lk, int64_t at);

/* One try, no system call: 0, -EOWNERDEAD (inconsistent: held, repair), -EBUSY,
 * -EDEADLK, -ENOTRECOVERABLE. A dead holder is not looked for (ferry__plock_lock does). */
int ferry__plock_trylock(ferry__plock *lk);

/* Release it: 0, or -EPERM if this thread does not hold it. Unlocking while inconsistent
 * makes the lock not recoverable (and wakes every waiter to say so). */
int ferry__plock_unlock(ferry__plock *lk);

/* After -EOWNERDEAD, once repaired: 0, or -EINVAL (not held by this thread, or not
 * inconsistent). */
int ferry__plock_consistent(ferry__plock *lk);

/* Does this thread hold it? (A snapshot: true stays true until this thread unlocks.) */
int ferry__plock_held(ferry__plock *lk);

/* Not recoverable? */
int ferry__plock_broken(ferry__plock *lk);

/* Does the word say that somebody may sleep on it (its waiters bit)? A hint (a snapshot
 * of a word any sharer may write): for a caller deciding whether to spin. */
int ferry__plock_sleepers(ferry__plock *lk);

#endif
