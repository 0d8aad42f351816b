// SPDX-License-Identifier: MIT
/*
 * mutex.c — ferry_mutex: a robust mutex between processes, optionally fair (FIFO).
 *
 * Two modes, two locks. Plain mode (flags 0) is described first; fair mode
 * (FERRY_MUTEX_FAIR) does not use the pthread mutex at all (see "Fair mode"), so that
 * it can be shared with processes that may be hostile.
 *
 * Plain mode. The lock itself is a glibc pthread mutex, PTHREAD_PROCESS_SHARED |
 * PTHREAD_MUTEX_ROBUST | PTHREAD_MUTEX_ERRORCHECK, living in the object's sealed memfd.
 * Why not a futex word of our own: robustness against kill -9 at *any* instruction needs
 * the kernel's robust-futex list (the kernel marks the word FUTEX_OWNER_DIED and wakes a
 * waiter when the owner exits or execs, with list_op_pending covering the instructions
 * between taking the word and linking it). A thread has one such list and glibc owns it
 * (set_robust_list at thread start, a glibc-internal doubly linked format on 64-bit); a
 * word of our own would have to be linked into glibc's list by copying glibc's private
 * list code. glibc's robust mutex is that code, tested for decades, and keeps every
 * required property: no system call when uncontended (a CAS plus list linking in user
 * space), EOWNERDEAD/ENOTRECOVERABLE, EDEADLK and EPERM (ERRORCHECK), and a timed lock
 * on CLOCK_MONOTONIC (pthread_mutex_clocklock) that restarts after EINTR towards the same
 * absolute deadline.
 *
 * The price is trust (plain mode only): the pthread mutex's fields, including the robust-list links
 * glibc follows in the owner's process, are in the shared object. A process that shares a
 * ferry_mutex can therefore make a locker misbehave or crash by scribbling on them. The
 * process-shared pthread state is trusted between sharers; only share a mutex with
 * processes you trust that far (ferry_publish's policy decides who can open it).
 * Adoption checks what can be checked: the common header (obj.c), the flags word, and
 * that the pthread mutex's kind is the one this library makes. The flags word is read
 * once; the handle keeps that copy and never looks at the shared word again. By name
 * (ferry_mutex_open), ferryd says whether the caller is trusted with the publisher's
 * sharers (FERRY__OPEN_TRUSTED: the publisher's uid, or FERRY_POLICY_TRUSTED_SHARERS),
 * and a plain mutex is made only then (-EPERM otherwise): ferryd checks the mode too,
 * but the publisher can turn a fair mutex plain between that check and this read.
 *
 * Not recoverable: glibc 2.36's pthread_mutex_trylock, on a mutex made not recoverable,
 * returns ENOTRECOVERABLE but leaves the lock word holding the caller's tid (and not on
 * its robust list), so the next lock by that thread says EDEADLK and others block. So
 * ferry keeps the state itself in rstate: RS_INCONSISTENT while the holder that got
 * EOWNERDEAD has not called consistent, RS_BROKEN once it unlocked like that (set before
 * glibc's unlock, so whoever glibc tells ENOTRECOVERABLE sees it too). Every lock path
 * checks RS_BROKEN before it touches the pthread mutex; a word leaked by trylock anyway
 * (the flag came up between the check and glibc's CAS) is released on the spot.
 *
 * Lost wake-ups from dead waiters: glibc's unlock wakes one waiter; if that waiter is
 * killed before it takes the lock, nobody else is woken. So every wait here sleeps in
 * slices and retries: a wake-up lost to a death costs at most one slice. Slices start at
 * SLICE_MIN_NS (5 ms) and double while a wait makes no progress, up to SLICE_MAX_NS
 * (160 ms): a timed-out futex wait costs ~100 us of CPU in a VM, so fixed 20 ms slices
 * would cost 0.5% of a CPU per sleeper; this way a long wait costs ~0.1%, and a death
 * early in a wait is noticed within milliseconds.
 *
 * Fair mode (FERRY_MUTEX_FAIR): a ticket lock in front of a plock (core/plock.h: a futex
 * word owned by {tid, start time}, recovered by a death check; no pointers in shared
 * memory, so a sharer that scribbles can deny or break the lock but never make a locker
 * write where it chose or crash — the glibc robust mutex this used to be could). A locker
 * takes a ticket (next_ticket++), waits until now_serving equals it, then locks the plock
 * and, once it holds it, advances now_serving so that the next ticket holder comes and
 * waits on the plock itself. At most one thread therefore ever waits on the plock, so it
 * is handed over in ticket order; an owner's death is noticed by that waiter within one
 * plock slice (1..50 ms), which gets -EOWNERDEAD. Exclusion never depends on the tickets:
 * only the plock gives it, the tickets only order the lockers. Not recoverable, EDEADLK
 * and EPERM are the plock's (rstate is plain mode's). Every loop over shared words is
 * bounded (the slots by their count, advance_from by it too, every wait by the deadline).
 *   Waiters sleep on now_serving with FUTEX_WAIT_BITSET, bit (ticket % 32); an advance
 * wakes only that bucket, and only when `sleepers` says somebody sleeps (so the fair path
 * makes no system call when uncontended either).
 *   The spin for a turn (issue 15): before it sleeps, the next in line (t == s + 1) spins
 * for its turn while the served ticket's holder runs — it is not asleep on now_serving
 * (its bit in `napping`, set around each sleep there) nor on the plock (the plock's waiters
 * bit: only the served ticket's holder waits on the plock). Reading only, pause then
 * sched_yield, at most TURN_SPIN_NS and never past the deadline (spin.h). Further back it
 * sleeps at once. Whoever wakes a ticket's bucket lowers its napping bit first (the woken
 * one is on its way), else one sleep would make every later hand-off sleep too. The words
 * read are hints a sharer may forge: a lie costs one bounded spin, or a sleep instead of a
 * spin; exclusion and FIFO order never depend on them.
 *   Dead and departed ticket holders: a locker first claims a slot (slots[], CAS of its
 * process identity {pid, start time}) and marks it TAKING, then takes its ticket and
 * records it in the slot (HAVE). A waiter that times out marks its slot GONE; whoever
 * advances now_serving to a GONE ticket skips it at once (n_gone says when to look). A
 * waiter whose slice passed without progress asks whether the ticket being served is
 * abandoned: no slot holds it as HAVE for a live process, and no live process is TAKING
 * (the one that is might be about to record it) — then it skips it (CAS of now_serving,
 * so a racing advance is never undone). So a ticket holder killed at any point stalls
 * the queue for at most about one slice (the wait had made no progress for that long,
 * so at most SLICE_MAX_NS, and 5 ms when the death comes early in the wait).
 *   Remaining windows (documented, none breaks exclusion): (1) ferry_mutex_trylock in
 * fair mode takes a ticket only when it is served at once and holds no slot for the few
 * instructions it keeps it; a waiter whose slice ends just then may skip it, and the two
 * then meet at the robust mutex (one FIFO step may be lost). (2) Liveness is judged by
 * pid and start time (/proc/PID/stat; zombies count as dead): all sharers must be in one
 * pid namespace. Without /proc only kill(pid, 0) is used (a recycled pid looks alive
 * until it exits). (3) At most FERRY__MUTEX_SLOTS threads wait in the queue at a time;
 * more wait (sleeping, with their deadline) for a free slot before taking a ticket, so
 * FIFO order holds among the queued ones. (4) A process killed while counted in
 * `sleepers`, `n_gone` or `slot_waiters` leaves the count high: later unlocks make a
 * wake-up call that wakes nobody, nothing worse.
 *
 * Threads: any call from any thread, several threads on one handle. Close while the
 * calling thread holds the mutex unlocks it first; closing while another thread of the
 * process holds it is undefined (as pthread_mutex_destroy of a locked mutex).
 *
 * _GNU_SOURCE: gettid(), pthread_mutex_clocklock() and syscall() are GNU extensions.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "core/proc.h"

#include "core/plock.h"
#include "core/time.h"
#include "obj.h"
#include "spin.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define FERRY_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FERRY_TSAN 1
#endif
#endif

#ifdef FERRY_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

#define FERRY__MUTEX_SLOTS 128
#define SPIN_NS            20000 /* spin this long on a held word before sleeping */
#define TURN_SPIN_NS       20000 /* the next in line spins this long for its turn */
#define SLICE_MIN_NS       (5 * 1000 * 1000)
#define SLICE_MAX_NS       (160 * 1000 * 1000)

/* Slot states (low 32 bits of st; the ticket is the high 32). */
enum { SLOT_FREE = 0, SLOT_TAKING = 1, SLOT_HAVE = 2, SLOT_GONE = 3 };

typedef struct mslot {
    _Atomic uint64_t id; /* owner process: (start time << 22) | pid, 0 = free */
    _Atomic uint64_t st; /* (ticket << 32) | state: one word, so CAS has no ABA */
} mslot;

typedef struct mobj {
    ferry__obj_hdr hdr;
    uint32_t flags;          /* FERRY_MUTEX_FAIR; read once at adopt */
    _Atomic uint32_t rstate; /* RS_INCONSISTENT | RS_BROKEN (see "Not recoverable") */
    pthread_mutex_t mu;      /* plain mode: the robust lock (trusted: see above) */
    ferry__plock lk;         /* fair mode: the lock (plock.h: safe with hostile sharers) */
    /* fair mode */
    _Atomic uint32_t next_ticket;
    _Atomic uint32_t now_serving; /* futex word, FUTEX_WAIT_BITSET bit ticket % 32 */
    _Atomic uint32_t sleepers;    /* waiters asleep (or about to be) on now_serving */
    _Atomic uint32_t n_gone;      /* slots in state GONE */
    _Atomic uint32_t slot_gen;    /* futex word: bumped when a slot is freed */
    _Atomic uint32_t slot_waiters;
    mslot slots[FERRY__MUTEX_SLOTS];
    /* Bit ticket % 32 is up while that ticket's holder sleeps on now_serving (a hint for
     * the next one's spin, see wait_turn; appended here so the words above keep their
     * offsets). */
    _Atomic uint32_t napping;
} mobj;

/* ferryd tells a plain mutex from a fair one by this word (shm/obj.h). */
_Static_assert(offsetof(mobj, flags) == FERRY__MUTEX_FLAGS_OFF, "ferryd reads flags here");

_Static_assert(sizeof(mobj) <= 4096, "a mutex object is one page");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics in shared memory");

struct ferry_mutex {
    int fd;
    uint32_t flags; /* private copy */
    ferry__seg seg;
    mobj *o;
};

#ifdef FERRY_TEST_HOOKS /* only in ferry_test_static, never in an installed library */
/* A test seam: when set, called with each fair ticket right after it is taken (the
 * bounded-waiting test logs request order by ticket, which a log written before the
 * call cannot give: the caller may be preempted between its log and its ticket). */
void (*ferry__mutex_ticket_hook)(uint32_t ticket);

/* A test seam: where the fair lock's plock lies in the object (the scribbling test of
 * tests/security plays a hostile sharer and needs to find it). */
size_t ferry__mutex_plock_offset(void);
size_t ferry__mutex_plock_offset(void)
{
    return offsetof(mobj, lk);
}

/* A test seam: this process's fair waits for a turn that spun (wait_turn's spin began),
 * that the spin ended (the turn came), and the sleeps on now_serving. */
_Atomic uint64_t ferry__mutex_turn_spins, ferry__mutex_turn_spun, ferry__mutex_turn_sleeps;
#define TEST_COUNT(c) atomic_fetch_add_explicit(&(c), 1, memory_order_relaxed)
#else
#define TEST_COUNT(c) ((void)0)
#endif

/* ------------------------------------------------------------ who am I, who lives */

static _Thread_local pid_t tls_tid;

static void forked_child(void)
{
    /* The child's only thread is the one that forked: its tid and the process's
     * identity are new. */
    tls_tid = 0;
}

static void once_setup(void)
{
    pthread_atfork(NULL, NULL, forked_child);
}

static void setup(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, once_setup);
}

static pid_t my_tid(void)
{
    if (!tls_tid) tls_tid = gettid();
    return tls_tid;
}

/* Is the process behind a slot identity alive? Only called on slow paths; anything
 * proc.h cannot tell counts as alive (never skip a live one). */
static int id_alive(uint64_t id)
{
    if (id == 0) return 0;
    if (id == ferry__proc_self()) return 1;
    return !ferry__proc_dead(id);
}

/* ---------------------------------------------------------------------- futexes */

static void abs_ts(int64_t at_ns, struct timespec *ts)
{
    ts->tv_sec = at_ns / 1000000000;
    ts->tv_nsec = at_ns % 1000000000;
}

/* Sleep while *w == val, until absolute CLOCK_MONOTONIC at_ns, woken by bitset. */
static int futex_wait_abs(_Atomic uint32_t *w, uint32_t val, int64_t at_ns, uint32_t bitset)
{
    struct timespec ts;
    abs_ts(at_ns, &ts);
    long r = syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_BITSET, val, &ts, NULL, bitset);
    return r < 0 ? -errno : 0;
}

static void futex_wake_bits(_Atomic uint32_t *w, uint32_t bitset)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_BITSET, INT_MAX, NULL, NULL, bitset);
}

static uint32_t ticket_bit(uint32_t t)
{
    return 1u << (t % 32);
}

/* The end of the next sleep: the deadline or one slice from now, whichever is first.
 * *slice (start at 0) doubles from SLICE_MIN_NS to SLICE_MAX_NS at every call; a caller
 * that sees progress sets it back to 0. */
static int64_t slice_end(int64_t at, int64_t *slice)
{
    *slice = *slice == 0 ? SLICE_MIN_NS : *slice * 2 > SLICE_MAX_NS ? SLICE_MAX_NS : *slice * 2;
    int64_t now = ferry__now_ns();
    return at - now < *slice ? at : now + *slice;
}

/* ------------------------------------------------------------------ robust layer */

static int map_err(int rc)
{
    return rc == 0 ? 0 : -rc;
}

/* The futex word of the pthread mutex: the owner's tid in its low 30 bits (the kernel's
 * robust-futex format, which glibc's robust mutexes use). */
static int word_owner(mobj *o)
{
    return __atomic_load_n(&o->mu.__data.__lock, __ATOMIC_RELAXED) & FUTEX_TID_MASK;
}

/* Does the calling thread hold the mutex? The kernel clears the tid from the word when
 * its owner dies, so a stale match after a recycled tid is impossible. */
static int held_by_me(mobj *o)
{
    return word_owner(o) == my_tid();
}

static int robust_timedlock(mobj *o, int64_t until)
{
    struct timespec ts;
#ifdef FERRY_TSAN
    /* TSan (LLVM 14) does not intercept pthread_mutex_clocklock; it does timedlock, which
     * counts on CLOCK_REALTIME. One slice at a time, so a clock jump only bends a slice. */
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t at = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec + (until - ferry__now_ns());
    abs_ts(at, &ts);
    return pthread_mutex_timedlock(&o->mu, &ts);
#else
    abs_ts(until, &ts);
    return pthread_mutex_clocklock(&o->mu, CLOCK_MONOTONIC, &ts);
#endif
}

enum { RS_INCONSISTENT = 1, RS_BROKEN = 2 };

/* acquire: pairs with the release in ferry_mutex_unlock's fetch_or (and glibc's unlock,
 * which follows it, is a release too). */
static int broken(mobj *o)
{
    return (atomic_load_explicit(&o->rstate, memory_order_acquire) & RS_BROKEN) != 0;
}

/* What glibc said, in ferry's terms, with the not-recoverable bookkeeping. */
static int robust_result(mobj *o, int rc)
{
    if (rc == EOWNERDEAD) {
        /* We hold it now; only the holder writes RS_INCONSISTENT. */
        atomic_fetch_or_explicit(&o->rstate, RS_INCONSISTENT, memory_order_relaxed);
    } else if (rc == ENOTRECOVERABLE && held_by_me(o)) {
        /* glibc's trylock leaked the word to us (see above): give it back, waking a
         * waiter the way glibc's unlock does (release: nothing to publish, but cheap). */
        int old = __atomic_exchange_n(&o->mu.__data.__lock, 0, __ATOMIC_RELEASE);
        if (old & FUTEX_WAITERS)
            syscall(SYS_futex, (uint32_t *)&o->mu.__data.__lock, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    return map_err(rc);
}

static int robust_trylock(mobj *o)
{
    if (broken(o)) return -ENOTRECOVERABLE;
    return robust_result(o, pthread_mutex_trylock(&o->mu)); /* no system call when free */
}

/* Lock the robust mutex by w's deadline: 0, -EOWNERDEAD, -ENOTRECOVERABLE, -EDEADLK,
 * -EAGAIN (FERRY_NOW and held), -ETIMEDOUT. */
static int robust_lock(mobj *o, ferry__when *w)
{
    int rc = robust_trylock(o);
    if (rc != -EBUSY) return rc;
    if (w->at == 0) return -EAGAIN;
    /* A short spin, reading only (no CAS storm on the line), pays for short critical
     * sections; it is bounded by time, not by a count. */
    int64_t end = 0;
    for (;;) {
        for (int i = 0; i < 64 && word_owner(o) != 0; i++) cpu_relax();
        if (word_owner(o) == 0) {
            rc = robust_trylock(o);
            if (rc != -EBUSY) return rc;
        }
        int64_t now = ferry__now_ns();
        if (end == 0) {
            int64_t at = ferry__when_at(w);
            end = at - now < SPIN_NS ? at : now + SPIN_NS;
        }
        if (now >= end) break;
    }
    int64_t slice = 0;
    for (;;) {
        int64_t at = ferry__when_at(w);
        if (ferry__remaining(at) <= 0) return -ETIMEDOUT;
        if (broken(o)) return -ENOTRECOVERABLE;
        /* Sleep a slice at most: a wake-up lost because the woken waiter was killed
         * before it took the lock is retried here. */
        rc = robust_timedlock(o, slice_end(at, &slice));
#ifdef FERRY_TSAN
        /* TSan's timedlock interceptor records a lock only on 0, not on EOWNERDEAD (its
         * trylock one does both): tell it we hold the mutex. */
        if (rc == EOWNERDEAD) {
            __tsan_mutex_pre_lock(&o->mu, __tsan_mutex_try_lock);
            __tsan_mutex_post_lock(&o->mu, __tsan_mutex_try_lock, 0);
        }
#endif
        if (rc != ETIMEDOUT) return robust_result(o, rc);
    }
}

/* ---------------------------------------------------------------------- fair layer */

static uint64_t st_make(uint32_t ticket, uint32_t state)
{
    return ((uint64_t)ticket << 32) | state;
}

/* Give a slot's identity back (its st is FREE already), with release, so that a
 * claimer's CAS on id (acquire) finds the state FREE; then wake slot waiters. */
static void slot_release_id(mobj *o, mslot *sl)
{
    atomic_store_explicit(&sl->id, 0, memory_order_release);
    /* Dekker with claim_slot: our free, full fence, read slot_waiters; theirs is
     * slot_waiters++, read slot_gen, scan the slots, FUTEX_WAIT on slot_gen. Either its
     * scan sees the slot free or we see it announced (and bump the word it sleeps on). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&o->slot_waiters, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&o->slot_gen, 1, memory_order_seq_cst);
        futex_wake_bits(&o->slot_gen, FUTEX_BITSET_MATCH_ANY);
    }
}

/* Free a slot we own. */
static void slot_free(mobj *o, mslot *sl)
{
    atomic_store_explicit(&sl->st, SLOT_FREE, memory_order_seq_cst);
    slot_release_id(o, sl);
}

/* Free the slot that marks ticket t GONE, if there is one (whoever wins the CAS). */
static int free_gone(mobj *o, uint32_t t)
{
    uint64_t want = st_make(t, SLOT_GONE);
    for (int i = 0; i < FERRY__MUTEX_SLOTS; i++) {
        mslot *sl = &o->slots[i];
        uint64_t cur = atomic_load_explicit(&sl->st, memory_order_seq_cst);
        if (cur == want &&
            atomic_compare_exchange_strong_explicit(&sl->st, &cur, SLOT_FREE, memory_order_seq_cst,
                                                    memory_order_seq_cst)) {
            atomic_fetch_sub_explicit(&o->n_gone, 1, memory_order_relaxed);
            slot_release_id(o, sl);
            return 1;
        }
    }
    return 0;
}

/*
 * Pass the turn on from ticket s (which is done: served and locked, given up, timed out
 * or dead), then past every following ticket whose holder has left (GONE). Every step is
 * a CAS from the exact ticket, so a step somebody else already made is never repeated.
 */
static void advance_from(mobj *o, uint32_t s)
{
    /* Bounded: each step past a GONE ticket needs a GONE slot, and there are
     * FERRY__MUTEX_SLOTS of them (more steps only if a sharer keeps writing GONE ones). */
    for (int step = 0; step <= FERRY__MUTEX_SLOTS + 1; step++) {
        /* seq_cst: the Dekker pairs are (a) with the waiters' sleepers++ then futex
         * compare, and (b) with abandon()'s GONE store, n_gone++, then its read of
         * now_serving: either we see its GONE below, or it sees our new value. */
        if (!atomic_compare_exchange_strong_explicit(&o->now_serving, &s, s + 1,
                                                     memory_order_seq_cst, memory_order_seq_cst))
            return;
        /* s itself may have been a GONE ticket being skipped. If its GONE came after our
         * n_gone read, its owner read now_serving after our CAS and frees it itself. */
        if (atomic_load_explicit(&o->n_gone, memory_order_seq_cst)) free_gone(o, s);
        s++;
        if (atomic_load_explicit(&o->sleepers, memory_order_seq_cst)) {
            /* The one we wake is as good as running (on its way to the lock): its
             * napping bit goes down now, so that the next in line spins for it instead
             * of sleeping too — else, once one hand-off slept, every later one would
             * (each waiter napping behind a napping one). relaxed: a hint. */
            atomic_fetch_and_explicit(&o->napping, ~ticket_bit(s), memory_order_relaxed);
            futex_wake_bits(&o->now_serving, ticket_bit(s));
        }
        if (!atomic_load_explicit(&o->n_gone, memory_order_seq_cst)) return;
        int gone = 0;
        uint64_t want = st_make(s, SLOT_GONE);
        for (int i = 0; i < FERRY__MUTEX_SLOTS && !gone; i++)
            gone = atomic_load_explicit(&o->slots[i].st, memory_order_seq_cst) == want;
        if (!gone) return;
    }
}

/*
 * Has the holder of ticket s (being served) left for good? Only a slow path asks (after
 * a slice without progress, or trylock finding a queue). s must have been handed out
 * (the caller holds a later ticket or saw next_ticket past s); its taker marked a slot
 * TAKING before taking it (seq_cst), so the scan below sees TAKING, HAVE(s), or — once
 * it advanced now_serving past s — anything, which the caller's CAS from s then ignores.
 */
static int ticket_abandoned(mobj *o, uint32_t s)
{
    for (int i = 0; i < FERRY__MUTEX_SLOTS; i++) {
        mslot *sl = &o->slots[i];
        uint64_t st = atomic_load_explicit(&sl->st, memory_order_seq_cst);
        uint32_t state = (uint32_t)st, tk = (uint32_t)(st >> 32);
        if (state == SLOT_TAKING || (state == SLOT_HAVE && tk == s)) {
            if (id_alive(atomic_load_explicit(&sl->id, memory_order_acquire))) return 0;
        }
    }
    return 1;
}

/* Claim a slot for this process (CAS of the identity), reclaiming one of a dead process
 * when none is free, waiting for one (by the deadline) when all are taken. */
static int claim_slot(mobj *o, ferry__when *w, mslot **out)
{
    uint64_t me = ferry__proc_self();
    int announced = 0, rc = 0;
    int64_t slice = 0;
    for (;;) {
        uint32_t gen = atomic_load_explicit(&o->slot_gen, memory_order_seq_cst);
        for (int i = 0; i < FERRY__MUTEX_SLOTS; i++) {
            mslot *sl = &o->slots[i];
            uint64_t cur = 0;
            /* acquire: pairs with slot_release_id; the slot's st is FREE. */
            if (atomic_load_explicit(&sl->id, memory_order_relaxed) == 0 &&
                atomic_compare_exchange_strong_explicit(&sl->id, &cur, me, memory_order_acquire,
                                                        memory_order_relaxed)) {
                *out = sl;
                goto done;
            }
        }
        for (int i = 0; i < FERRY__MUTEX_SLOTS; i++) {
            mslot *sl = &o->slots[i];
            uint64_t cur = atomic_load_explicit(&sl->id, memory_order_acquire);
            if (cur != 0 && !id_alive(cur) &&
                atomic_compare_exchange_strong_explicit(&sl->id, &cur, me, memory_order_acquire,
                                                        memory_order_relaxed)) {
                /* Its old state (a dead ticket, maybe) is dropped: that ticket then has
                 * no slot, which ticket_abandoned reads as abandoned, as it should. */
                uint64_t st = atomic_exchange_explicit(&sl->st, SLOT_FREE, memory_order_seq_cst);
                if ((uint32_t)st == SLOT_GONE)
                    atomic_fetch_sub_explicit(&o->n_gone, 1, memory_order_relaxed);
                *out = sl;
                goto done;
            }
        }
        int64_t at = ferry__when_at(w);
        if (ferry__remaining(at) <= 0) {
            rc = at == 0 ? -EAGAIN : -ETIMEDOUT;
            goto done;
        }
        if (!announced) { /* announce (seq_cst), then scan once more before sleeping */
            atomic_fetch_add_explicit(&o->slot_waiters, 1, memory_order_seq_cst);
            announced = 1;
            continue;
        }
        futex_wait_abs(&o->slot_gen, gen, slice_end(at, &slice), FUTEX_BITSET_MATCH_ANY);
    }
done:
    if (announced) atomic_fetch_sub_explicit(&o->slot_waiters, 1, memory_order_relaxed);
    return rc;
}

/* The spin of wait_turn (spin.h): ticket t waits for now_serving to reach it. */
typedef struct turn_arg {
    mobj *o;
    uint32_t t;
} turn_arg;

static int turn_ready(void *p)
{
    turn_arg *a = p;
    /* acquire: as wait_turn's load. */
    uint32_t s = atomic_load_explicit(&a->o->now_serving, memory_order_acquire);
    return (int32_t)(a->t - s) <= 0; /* served, or passed over (see wait_turn) */
}

/* Is spinning for ticket t worth it: is the thread that passes the turn to t running?
 * That is the holder of the ticket being served, s, once it takes the lock. So: t must
 * be next (t == s + 1: one hand-off away; further back the wait is at least a whole
 * critical section more, and a queue of spinners would burn every CPU), s's holder must
 * not sleep on now_serving (its napping bit) nor on the lock (the plock's waiters bit:
 * only the served ticket's holder waits there). Every word read is a sharer's to write;
 * a lie costs at most the spin's bounded budget, or a sleep instead of a spin.
 * relaxed: hints only, the decision to sleep is re-checked under the futex protocol. */
static int turn_running(void *p)
{
    turn_arg *a = p;
    uint32_t s = atomic_load_explicit(&a->o->now_serving, memory_order_relaxed);
    if (a->t - s != 1) return 0;
    if (atomic_load_explicit(&a->o->napping, memory_order_relaxed) & ticket_bit(s)) return 0;
    return !ferry__plock_sleepers(&a->o->lk);
}

/* Wait until ticket t is served (0) or the deadline passes. */
static int wait_turn(mobj *o, uint32_t t, ferry__when *w)
{
    /* First a short spin, while the one before us runs (turn_running): a hand-off from
     * a running thread then costs no system call on either side (advance_from wakes only
     * announced sleepers) and no scheduler round trip. */
    turn_arg ta = {o, t};
    if (!turn_ready(&ta) && turn_running(&ta)) {
        TEST_COUNT(ferry__mutex_turn_spins);
        if (ferry__sync_spin(turn_ready, turn_running, &ta, TURN_SPIN_NS, w)) {
            TEST_COUNT(ferry__mutex_turn_spun);
            return 0;
        }
    }
    int64_t slice = 0;
    uint32_t prev = t; /* now_serving at the last sleep: progress resets the slice */
    for (;;) {
        /* acquire: a turn passed to us brings the previous holder's writes with it
         * (not needed for exclusion — the plock gives that — but cheap). */
        uint32_t s = atomic_load_explicit(&o->now_serving, memory_order_acquire);
        if (s == t) return 0;
        if ((int32_t)(t - s) < 0) return 0; /* passed over (a skip in a window): go on */
        int64_t at = ferry__when_at(w);
        if (ferry__remaining(at) <= 0) return at == 0 ? -EAGAIN : -ETIMEDOUT;
        if (s != prev) slice = 0;
        prev = s;
        /* Announce, then let the kernel compare the word: the seq_cst RMW pairs with
         * advance_from's CAS then load of sleepers (the kernel's futex_wait orders its
         * read after our RMW with a full barrier). The napping bit only tells the next
         * in line not to spin for us (relaxed: a hint, see turn_running). */
        atomic_fetch_add_explicit(&o->sleepers, 1, memory_order_seq_cst);
        atomic_fetch_or_explicit(&o->napping, ticket_bit(t), memory_order_relaxed);
        TEST_COUNT(ferry__mutex_turn_sleeps);
        int r = futex_wait_abs(&o->now_serving, s, slice_end(at, &slice), ticket_bit(t));
        atomic_fetch_and_explicit(&o->napping, ~ticket_bit(t), memory_order_relaxed);
        atomic_fetch_sub_explicit(&o->sleepers, 1, memory_order_relaxed);
        /* A slice without progress: has the ticket being served been left behind? */
        if (r == -ETIMEDOUT && atomic_load_explicit(&o->now_serving, memory_order_seq_cst) == s &&
            ticket_abandoned(o, s))
            advance_from(o, s);
    }
}

/* Leave the queue holding ticket t that is not served yet (deadline passed). */
static void abandon(mobj *o, mslot *sl, uint32_t t)
{
    /* The slot stays claimed, marked GONE: the advancer that reaches t skips it and
     * frees the slot. seq_cst: a Dekker pair with advance_from (see there). */
    atomic_store_explicit(&sl->st, st_make(t, SLOT_GONE), memory_order_seq_cst);
    atomic_fetch_add_explicit(&o->n_gone, 1, memory_order_seq_cst);
    uint32_t s = atomic_load_explicit(&o->now_serving, memory_order_seq_cst);
    if (s == t)
        advance_from(o, t); /* served meanwhile: pass it on ourselves (frees the slot) */
    else if ((int32_t)(s - t) > 0)
        free_gone(o, t); /* already passed over: nobody else will free it */
}

static int fair_trylock(mobj *o)
{
    if (ferry__plock_broken(&o->lk)) return -ENOTRECOVERABLE;
    if (ferry__plock_held(&o->lk)) return -EDEADLK;
    for (int i = 0; i < FERRY__MUTEX_SLOTS + 2; i++) {
        /* seq_cst: now_serving before next_ticket, so s == t means nobody held a ticket
         * that was not yet served at that point; the CAS below then takes t only if no
         * ticket was handed out since. */
        uint32_t s = atomic_load_explicit(&o->now_serving, memory_order_seq_cst);
        uint32_t t = atomic_load_explicit(&o->next_ticket, memory_order_seq_cst);
        if (s != t) {
            /* Someone is queued. Unless the ticket being served was left behind by a dead
             * or departed locker (then skip it and look again), we would overtake them. */
            if ((int32_t)(t - s) < 0 || !ticket_abandoned(o, s)) return -EBUSY;
            advance_from(o, s);
            continue;
        }
        /* Take the ticket only if it is served at once (see window (1) above). */
        if (!atomic_compare_exchange_strong_explicit(&o->next_ticket, &t, t + 1,
                                                     memory_order_seq_cst, memory_order_seq_cst))
            continue;
        int rc = ferry__plock_trylock(&o->lk);
        advance_from(o, t); /* locked or not, our turn is over */
        return rc;
    }
    return -EBUSY;
}

static int fair_lock(mobj *o, ferry__when *w)
{
    if (ferry__plock_broken(&o->lk)) return -ENOTRECOVERABLE;
    if (ferry__plock_held(&o->lk)) return -EDEADLK; /* we would queue behind ourselves */
    if (w->at == 0) {
        int rc = fair_trylock(o);
        return rc == -EBUSY ? -EAGAIN : rc;
    }
    mslot *sl;
    int rc = claim_slot(o, w, &sl);
    if (rc < 0) return rc;
    /* TAKING before the ticket, HAVE(t) after it, all seq_cst: whoever sees the ticket
     * handed out (next_ticket past it) sees one of the two (ticket_abandoned). */
    atomic_store_explicit(&sl->st, st_make(0, SLOT_TAKING), memory_order_seq_cst);
    uint32_t t = atomic_fetch_add_explicit(&o->next_ticket, 1, memory_order_seq_cst);
    atomic_store_explicit(&sl->st, st_make(t, SLOT_HAVE), memory_order_seq_cst);
#ifdef FERRY_TEST_HOOKS
    if (ferry__mutex_ticket_hook) ferry__mutex_ticket_hook(t);
#endif
    rc = wait_turn(o, t, w);
    if (rc < 0) {
        abandon(o, sl, t);
        return rc;
    }
    rc = ferry__plock_lock(&o->lk, ferry__when_at(w));
    /* Held (or given up): the next ticket may come and wait on the robust mutex. The
     * slot is freed after the turn passed on, so a death in between leaves a stale HAVE
     * (reclaimed later) rather than a served ticket with no slot. */
    advance_from(o, t);
    slot_free(o, sl);
    return rc;
}

/* ---------------------------------------------------------------------- the API */

/* flags: the mode, read once by the caller (create: its own; adopt: its single read of
 * the shared word). The handle keeps this copy for good: every path picks its code by
 * m->flags, never by the shared word, which a sharer may rewrite at any time. */
static int make_handle(int fd, ferry__seg *seg, uint32_t flags, ferry_mutex **out)
{
    ferry_mutex *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    m->fd = fd;
    m->seg = *seg;
    m->o = seg->base;
    m->flags = flags;
    *out = m;
    return 0;
}

static int init_attr(pthread_mutexattr_t *a)
{
    int rc = pthread_mutexattr_init(a);
    if (rc == 0) rc = pthread_mutexattr_setpshared(a, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = pthread_mutexattr_setrobust(a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0) rc = pthread_mutexattr_settype(a, PTHREAD_MUTEX_ERRORCHECK);
    return -rc;
}

int ferry_mutex_create(uint32_t flags, ferry_mutex **out)
{
    if (!out || (flags & ~FERRY_MUTEX_FAIR)) return -EINVAL;
    setup();
    int fd;
    ferry__seg seg;
    int rc = ferry__obj_create(FERRY_OBJ_MUTEX, sizeof(mobj), &fd, &seg);
    if (rc < 0) return rc;
    mobj *o = seg.base;
    o->flags = flags;
    if (flags & FERRY_MUTEX_FAIR) {
        ferry__plock_init(&o->lk); /* no pthread mutex: nothing shared is a pointer */
    } else {
        pthread_mutexattr_t a;
        rc = init_attr(&a);
        if (rc == 0) rc = -pthread_mutex_init(&o->mu, &a);
        pthread_mutexattr_destroy(&a);
    }
    if (rc == 0) rc = make_handle(fd, &seg, flags, out);
    if (rc < 0) {
        ferry__seg_unmap(&seg);
        close(fd);
    }
    return rc;
}

/* The kind word glibc keeps for a mutex made like ours (type, robust, pshared bits). */
static int expected_kind(int *kind)
{
    pthread_mutexattr_t a;
    pthread_mutex_t probe;
    int rc = init_attr(&a);
    if (rc == 0) rc = -pthread_mutex_init(&probe, &a);
    pthread_mutexattr_destroy(&a);
    if (rc < 0) return rc;
    *kind = probe.__data.__kind;
    pthread_mutex_destroy(&probe);
    return 0;
}

int ferry__mutex_adopt_trust(int fd, int trusted, ferry_mutex **out)
{
    if (fd < 0) return -EBADMSG;
    if (!out) {
        close(fd);
        return -EINVAL;
    }
    setup();
    ferry__seg seg;
    int rc = ferry__obj_map(fd, FERRY_OBJ_MUTEX, &seg);
    if (rc == 0 && seg.size < sizeof(mobj)) {
        ferry__seg_unmap(&seg);
        rc = -EBADMSG;
    }
    if (rc == 0) {
        mobj *o = seg.base;
        int kind = 0;
        rc = expected_kind(&kind);
        /* The mode, read once: this copy is checked here and is the handle's for good
         * (make_handle), so a sharer that rewrites the word later (a fair mutex turned
         * plain after ferryd or this check looked) never steers the handle into the
         * plain mode's code. Relaxed: one word that nothing else is published with
         * (the memfd's contents came with the descriptor). */
        uint32_t flags = __atomic_load_n(&o->flags, __ATOMIC_RELAXED);
        int plain = !(flags & FERRY_MUTEX_FAIR);
        if (rc == 0 && (flags & ~FERRY_MUTEX_FAIR)) rc = -EBADMSG;
        /* A plain mutex for a caller not trusted with its sharers (ferryd said so):
         * refused before anything of the pthread mutex is read. */
        if (rc == 0 && plain && !trusted) rc = -EPERM;
        /* Fair mode reads nothing of the pthread mutex; plain mode trusts it (see above). */
        if (rc == 0 && plain && __atomic_load_n(&o->mu.__data.__kind, __ATOMIC_RELAXED) != kind)
            rc = -EBADMSG;
        if (rc == 0) rc = make_handle(fd, &seg, flags, out);
        if (rc < 0) ferry__seg_unmap(&seg);
    }
    if (rc < 0) close(fd);
    return rc;
}

int ferry_mutex_adopt(int fd, ferry_mutex **out)
{
    /* The caller chose where fd came from: it is trusted with what it holds. */
    return ferry__mutex_adopt_trust(fd, 1, out);
}

int ferry_mutex_open(const char *name, ferry_mutex **out, int64_t timeout_ns)
{
    if (!out) return -EINVAL;
    int fd = -1, trusted = 0;
    int rc = ferry__obj_open_trust(name, FERRY_OBJ_MUTEX, &fd, &trusted, timeout_ns);
    if (rc < 0) return rc;
    /* ferryd's own check of the mode came before this: the publisher may have turned a
     * fair mutex plain since, so the mode is judged again by adopt's single read. */
    return ferry__mutex_adopt_trust(fd, trusted, out);
}

int ferry_mutex_fd(const ferry_mutex *m)
{
    return m ? m->fd : -EINVAL;
}

int ferry_mutex_lock(ferry_mutex *m, int64_t timeout_ns)
{
    ferry__when w;
    if (!m || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    if (m->flags & FERRY_MUTEX_FAIR) return fair_lock(m->o, &w);
    return robust_lock(m->o, &w);
}

int ferry_mutex_trylock(ferry_mutex *m)
{
    if (!m) return -EINVAL;
    if (m->flags & FERRY_MUTEX_FAIR) return fair_trylock(m->o);
    return robust_trylock(m->o);
}

int ferry_mutex_consistent(ferry_mutex *m)
{
    if (m && (m->flags & FERRY_MUTEX_FAIR)) return ferry__plock_consistent(&m->o->lk);
    if (!m || broken(m->o) || !held_by_me(m->o)) return -EINVAL;
    int rc = pthread_mutex_consistent(&m->o->mu);
    if (rc == 0)
        atomic_fetch_and_explicit(&m->o->rstate, ~(uint32_t)RS_INCONSISTENT, memory_order_relaxed);
    return map_err(rc);
}

int ferry_mutex_unlock(ferry_mutex *m)
{
    if (!m) return -EINVAL;
    mobj *o = m->o;
    /* Fair mode: the next ticket holder already waits on the lock (now_serving moved on
     * when we locked); plock's unlock is a release. */
    if (m->flags & FERRY_MUTEX_FAIR) return ferry__plock_unlock(&o->lk);
    if (broken(o) || !held_by_me(o)) return -EPERM; /* nobody holds a broken mutex */
    /* Unlocking after EOWNERDEAD without consistent: broken for good. The flag goes up
     * before glibc's unlock (a release), so whoever glibc then tells ENOTRECOVERABLE, or
     * takes the word, sees it. */
    if (atomic_load_explicit(&o->rstate, memory_order_relaxed) & RS_INCONSISTENT)
        atomic_fetch_or_explicit(&o->rstate, RS_BROKEN, memory_order_release);
    /* glibc's unlock is a release. */
    return map_err(pthread_mutex_unlock(&o->mu));
}

void ferry_mutex_close(ferry_mutex *m)
{
    if (!m) return;
    /* Unmapping a mutex this thread holds would leave glibc's robust list pointing into
     * the hole: unlock it first. */
    if ((m->flags & FERRY_MUTEX_FAIR) ? ferry__plock_held(&m->o->lk) : held_by_me(m->o))
        ferry_mutex_unlock(m);
    ferry__seg_unmap(&m->seg);
    close(m->fd);
    free(m);
}
