// SPDX-License-Identifier: MIT
/*
 * sem.c — ferry_sem: a counting semaphore shared between processes, in a sealed memfd
 * object (obj.h, kind FERRY_OBJ_SEM).
 *
 * The object (one page, or UNDO_SIZE with FERRY_SEM_UNDO):
 *   hdr       the common header (obj.h)
 *   flags     FERRY_SEM_UNDO or 0, and nslots, the size of the undo table (0 without
 *             UNDO): written at create, read once at adopt onto a private copy and
 *             checked against the mapping; never read from shared memory again.
 *   value     the count, 0..INT32_MAX; the futex word waiters sleep on (shared futex).
 *   waiters   callers registered in the slow path of ferry_sem_wait: a hint for post,
 *             which makes a FUTEX_WAKE system call only when it is not 0. It is never too
 *             low while someone sleeps; it may be too high (see "Dead processes").
 *   slots[]   the undo table (FERRY_SEM_UNDO only), one entry per process that waited:
 *             {id, ns, held, waiting}.
 *
 * Rules:
 *  - P (wait): take a unit by CAS value v -> v-1 (v > 0). No unit: register in waiters,
 *    re-check value, FUTEX_WAIT on value == 0 in slices (20 ms, doubling to 160 ms while
 *    nothing happens); unregister on the way out. The deadline is absolute (time.h), so
 *    EINTR and slices neither shorten nor lengthen it.
 *  - V (post): CAS value v -> v+1 (-EOVERFLOW at INT32_MAX), then FUTEX_WAKE one waiter
 *    only if waiters != 0: no system call when nobody waits. A wake-up spent on a waiter
 *    that is killed before it takes the unit costs the others at most one slice: every
 *    sleeper re-checks value when its slice ends.
 *  - Lost wake-ups: waiter (waiters++ ; load value) and poster (value++ ; load waiters)
 *    are a Dekker pair of sequentially consistent operations: at least one sees the
 *    other's write (the argument is at post()). FUTEX_WAIT re-checks value == 0 in the
 *    kernel, so a post between our check and our sleep makes the sleep return at once.
 *  - A value above INT32_MAX (a sharer wrote garbage) is -EBADMSG from every call.
 *
 * FERRY_SEM_UNDO (like System V SEM_UNDO):
 *  - A process is identified by id = start time << 22 | pid (the start time, field 22 of
 *    /proc/self/stat, in clock ticks, 41 bits; pid < 2^22 = PID_MAX_LIMIT), read once per
 *    process (again in a child of fork, by a pthread_atfork handler), so a recycled pid
 *    is a different process; and by its pid namespace (ns, the inode of
 *    /proc/self/ns/pid), since a pid means something only in its namespace.
 *  - A process's first wait claims a free slot (CAS id 0 -> mine, then ns), kept until
 *    the process dies. A wait adds one to held after taking the unit; a post takes one
 *    from held (if > 0) before giving the unit. A fork child is a new process: its own
 *    slot, nothing held. exec keeps the process (and what it holds), as for System V.
 *    Threads share their process's slot (two racing first waits may claim two slots:
 *    harmless, a post looks for held units in all of the process's slots).
 *  - Death (kill, crash or a plain exit without posting) returns the units lazily: a
 *    wait (trywait and FERRY_NOW too) that finds no unit scans the table once, and again
 *    every time a slice ends without a wake-up (a blocked waiter gets a dead holder's
 *    units within ~160 ms); a wait that finds the table full scans too. ferry_sem_value
 *    does not scan: it may count a dead holder's units as taken until the next wait.
 *    An entry of our pid namespace whose process is dead (no such pid, another start
 *    time, or exited: a zombie is dead — its pidfd polls readable) is claimed by CAS id
 *    -> id | RECLAIM (one reclaimer wins), its held units are added to value (at most
 *    INT32_MAX), its waiting count is taken off waiters, that many waiters are woken,
 *    and the slot is freed. Entries of another pid namespace are never judged (a sharer
 *    of their namespace reclaims them). Where /proc hides a process (hidepid) its pid
 *    is trusted to be alive: units are kept rather than wrongly returned.
 *  - Table full (1022 slots held by live processes) -> -ENOSPC from wait and trywait.
 *  - The windows that remain: a process killed (SIGKILL, the OOM killer) exactly between
 *    two consecutive atomic instructions loses one unit for good — in wait between the
 *    CAS that takes the unit and held++; in post between held-- and the CAS that gives
 *    the unit (or, for a post refused with -EOVERFLOW, before held is restored). Units
 *    are never duplicated: each order was chosen so that a kill loses one rather than
 *    doubles one. A reclaimer killed inside its reclaim (between claiming an entry and
 *    freeing it) may lose the dead process's units and leaves that slot unusable; a
 *    process killed between claiming a slot and writing its ns leaves the slot unusable.
 *  - A process made by a raw clone() that skips pthread_atfork handlers shares its
 *    parent's identity.
 *
 * Dead processes without UNDO: a waiter killed while registered leaves waiters one too
 * high for good; posts then make one FUTEX_WAKE call each (correct, slower). With UNDO
 * each slot also counts its process's registered waiters, and a reclaim takes them off.
 */
#define _GNU_SOURCE /* syscall() (futex, pidfd_open), hidden by -std=c11 */
#include "obj.h"
#include "core/proc.h"
#include "core/futex.h"

#include <ferry/ferry.h>

#include "core/time.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* A sleeper re-checks value (and reclaims, with UNDO) when a slice ends: the first slice
 * is SLICE_MIN_NS, each one that ends without a wake-up doubles, up to SLICE_MAX_NS (a
 * long wait costs ~10 wake-ups a second: under 0.1% of a CPU). */
#define SLICE_MIN_NS ((int64_t)20 * 1000 * 1000)
#define SLICE_MAX_NS ((int64_t)160 * 1000 * 1000)
#define SPINS        64 /* polls of value before the slow path */
#define PAGE         4096u
#define UNDO_SIZE    (32u * 1024u) /* 1022 slots */

#define RECLAIM (UINT64_C(1) << 63)

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

typedef struct sem_slot {
    _Atomic uint64_t id;      /* 0 free; start << 22 | pid; | RECLAIM while reclaimed */
    _Atomic uint64_t ns;      /* the owner's pid namespace; 0 until written */
    _Atomic uint32_t held;    /* units taken and not given back */
    _Atomic uint32_t waiting; /* the owner's registrations in waiters */
    uint64_t pad;
} sem_slot;

typedef struct sem_shared {
    ferry__obj_hdr hdr;
    uint32_t flags;
    uint32_t nslots;
    _Atomic uint32_t value; /* the futex word */
    _Atomic uint32_t waiters;
    uint8_t pad[32];
    sem_slot slots[];
} sem_shared;

_Static_assert(sizeof(sem_slot) == 32, "slot layout");
_Static_assert(sizeof(sem_shared) == 64, "header layout");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics in shared memory must be lock-free");

struct ferry_sem {
    int fd;
    ferry__seg seg;
    sem_shared *sh;
    uint32_t flags; /* private copies, checked at adopt */
    uint32_t nslots;
    _Atomic uint32_t hint; /* where this process's slot probably is */
};

/* ------------------------------------------------------------------ process identity */

/* This process's identity and pid namespace (see the header) are core/proc.h's:
 * ferry__proc_self, ferry__proc_ns; whether a process is dead, ferry__proc_dead. */

/* ------------------------------------------------------------------ the undo table */

/* Add n units to value, saturating at INT32_MAX. */
static void value_add(sem_shared *sh, uint32_t n)
{
    if (n > INT32_MAX) n = INT32_MAX; /* a held count a sharer scribbled on */
    uint32_t v = atomic_load_explicit(&sh->value, memory_order_relaxed);
    for (;;) {
        if (v > INT32_MAX) return; /* corrupted: leave it for -EBADMSG */
        uint32_t nv = v > (uint32_t)INT32_MAX - n ? (uint32_t)INT32_MAX : v + n;
        /* seq_cst: the same Dekker pair as post() (the wake below reads waiters). */
        if (atomic_compare_exchange_weak_explicit(&sh->value, &v, nv, memory_order_seq_cst,
                                                  memory_order_relaxed))
            return;
    }
}

/* Take n off waiters, never below 0 (a registration a hostile sharer erased). */
static void waiters_sub(sem_shared *sh, uint32_t n)
{
    uint32_t w = atomic_load_explicit(&sh->waiters, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&sh->waiters, &w, w > n ? w - n : 0,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* Return the units of dead processes. free_all: also free dead processes' slots that
 * hold nothing (the table is full). Returns the number of units returned, or of slots
 * freed when free_all. */
static uint32_t reclaim(ferry_sem *s, int free_all)
{
    sem_shared *sh = s->sh;
    uint64_t me = ferry__proc_self();
    uint64_t ns = ferry__proc_ns();
    uint32_t units = 0, freed = 0;
    for (uint32_t i = 0; i < s->nslots; i++) {
        sem_slot *e = &sh->slots[i];
        /* acquire: pairs with the claim's release store of ns (below, claim()). */
        uint64_t id = atomic_load_explicit(&e->id, memory_order_acquire);
        if (id == 0 || (id & RECLAIM) || id == me) continue;
        if (!free_all && atomic_load_explicit(&e->held, memory_order_relaxed) == 0 &&
            atomic_load_explicit(&e->waiting, memory_order_relaxed) == 0)
            continue;
        if (atomic_load_explicit(&e->ns, memory_order_acquire) != ns) continue; /* 0: claiming */
        if (!ferry__proc_dead(id)) continue;
        /* One reclaimer wins the entry; the dead owner can write nothing any more. */
        if (!atomic_compare_exchange_strong_explicit(&e->id, &id, id | RECLAIM,
                                                     memory_order_acq_rel, memory_order_relaxed))
            continue;
        uint32_t h = atomic_exchange_explicit(&e->held, 0, memory_order_acq_rel);
        uint32_t w = atomic_exchange_explicit(&e->waiting, 0, memory_order_relaxed);
        if (w) waiters_sub(sh, w);
        if (h) {
            value_add(sh, h);
            units += h > (uint32_t)INT32_MAX - units ? (uint32_t)INT32_MAX - units : h;
        }
        atomic_store_explicit(&e->ns, 0, memory_order_relaxed);
        /* release: the slot's new owner sees it clean (held, waiting, ns all 0). */
        atomic_store_explicit(&e->id, 0, memory_order_release);
        freed++;
    }
    /* The returned units are in value (seq_cst, value_add): wake as many sleepers. A
     * waiter registered after our read of waiters re-checks value itself (Dekker). */
    if (units && atomic_load_explicit(&sh->waiters, memory_order_seq_cst))
        ferry__futex_wake(&sh->value, units > INT_MAX ? INT_MAX : (int)units);
    return free_all ? freed : units;
}

/* This process's slot, claiming one if create. NULL: none (not create), or -ENOSPC /
 * -EIO through *err. */
static sem_slot *my_slot(ferry_sem *s, int create, int *err)
{
    sem_shared *sh = s->sh;
    uint64_t me = ferry__proc_self();
    if (me == 0) {
        *err = -EIO;
        return NULL;
    }
    uint32_t h = atomic_load_explicit(&s->hint, memory_order_relaxed);
    if (h < s->nslots && atomic_load_explicit(&sh->slots[h].id, memory_order_relaxed) == me)
        return &sh->slots[h];
    for (uint32_t i = 0; i < s->nslots; i++)
        if (atomic_load_explicit(&sh->slots[i].id, memory_order_relaxed) == me) {
            atomic_store_explicit(&s->hint, i, memory_order_relaxed);
            return &sh->slots[i];
        }
    if (!create) return NULL;
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < s->nslots; i++) {
            sem_slot *e = &sh->slots[i];
            uint64_t z = 0;
            if (atomic_load_explicit(&e->id, memory_order_relaxed) != 0 ||
                !atomic_compare_exchange_strong_explicit(&e->id, &z, me, memory_order_acquire,
                                                         memory_order_relaxed))
                continue;
            /* acquire above: we see the slot as its last reclaimer left it (held 0).
             * release: a reclaimer that reads this ns sees our id, claim complete. */
            atomic_store_explicit(&e->ns, ferry__proc_ns(), memory_order_release);
            atomic_store_explicit(&s->hint, i, memory_order_relaxed);
            return e;
        }
        if (round == 0 && reclaim(s, 1) == 0) break; /* full: free the dead's slots */
    }
    *err = -ENOSPC;
    return NULL;
}

/* ------------------------------------------------------------------ life cycle */

static int make_handle(int fd, ferry__seg seg, ferry_sem **out)
{
    sem_shared *sh = seg.base;
    if (seg.size < sizeof(sem_shared)) return -EBADMSG;
    /* One private copy of the sizes (obj.h): a sharer may rewrite them any time. */
    uint32_t flags = *(volatile uint32_t *)&sh->flags;
    uint32_t nslots = *(volatile uint32_t *)&sh->nslots;
    size_t room = (seg.size - sizeof(sem_shared)) / sizeof(sem_slot);
    uint32_t v = atomic_load_explicit(&sh->value, memory_order_relaxed);
    if ((flags & ~FERRY_SEM_UNDO) || (!(flags & FERRY_SEM_UNDO) && nslots != 0) ||
        ((flags & FERRY_SEM_UNDO) && (nslots == 0 || nslots > room)) || v > INT32_MAX)
        return -EBADMSG;
    ferry_sem *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    s->fd = fd;
    s->seg = seg;
    s->sh = sh;
    s->flags = flags;
    s->nslots = nslots;
    *out = s;
    return 0;
}

int ferry_sem_create(uint32_t value, uint32_t flags, ferry_sem **out)
{
    if (!out || value > INT32_MAX || (flags & ~FERRY_SEM_UNDO)) return -EINVAL;
    size_t size = (flags & FERRY_SEM_UNDO) ? UNDO_SIZE : PAGE;
    int fd;
    ferry__seg seg;
    int rc = ferry__obj_create(FERRY_OBJ_SEM, size, &fd, &seg);
    if (rc < 0) return rc;
    sem_shared *sh = seg.base;
    sh->flags = flags;
    sh->nslots = (flags & FERRY_SEM_UNDO)
                     ? (uint32_t)((seg.size - sizeof(sem_shared)) / sizeof(sem_slot))
                     : 0;
    atomic_store_explicit(&sh->value, value, memory_order_relaxed);
    /* Nobody else sees the object before the fd leaves this process (fork, sendmsg,
     * ferry_publish), each of which orders these stores before the other side's reads. */
    rc = make_handle(fd, seg, out);
    if (rc < 0) {
        ferry__seg_unmap(&seg);
        close(fd);
    }
    return rc;
}

int ferry_sem_adopt(int fd, ferry_sem **out)
{
    if (fd < 0) return -EBADMSG;
    if (!out) {
        close(fd);
        return -EINVAL;
    }
    ferry__seg seg;
    int rc = ferry__obj_map(fd, FERRY_OBJ_SEM, &seg);
    if (rc == 0) {
        rc = make_handle(fd, seg, out);
        if (rc < 0) ferry__seg_unmap(&seg);
    }
    if (rc < 0) close(fd);
    return rc;
}

int ferry_sem_open(const char *name, ferry_sem **out, int64_t timeout_ns)
{
    if (!out) return -EINVAL;
    int fd = -1;
    int rc = ferry__obj_open(name, FERRY_OBJ_SEM, &fd, timeout_ns);
    if (rc < 0) return rc;
    return ferry_sem_adopt(fd, out);
}

int ferry_sem_fd(const ferry_sem *s)
{
    return s ? s->fd : -EINVAL;
}

void ferry_sem_close(ferry_sem *s)
{
    if (!s) return;
    /* The process's slot stays: units it holds stay held (a post through another
     * handle, or its death, gives them back). */
    ferry__seg_unmap(&s->seg);
    close(s->fd);
    free(s);
}

/* ------------------------------------------------------------------ P and V */

/* One attempt to take a unit: 1 taken, 0 none, -EBADMSG. acquire: what the poster (or
 * the releaser of a unit) wrote before its V is visible after our P. */
static int take(sem_shared *sh)
{
    uint32_t v = atomic_load_explicit(&sh->value, memory_order_relaxed);
    while (v > 0) {
        if (v > INT32_MAX) return -EBADMSG;
        if (atomic_compare_exchange_weak_explicit(&sh->value, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return 1;
    }
    return 0;
}

static int wait_slow(ferry_sem *s, sem_slot *e, ferry__when *wp)
{
    sem_shared *sh = s->sh;
    ferry__when w = *wp;
    if (w.at == 0) { /* FERRY_NOW: no wait, but a dead holder's units count */
        if (e && reclaim(s, 0) > 0) {
            int c = take(sh);
            if (c != 0) return c < 0 ? c : 0;
        }
        return -EAGAIN;
    }
    for (int i = 0; i < SPINS; i++) { /* a short poll: a unit given back at once */
        cpu_relax();
        int c = take(sh);
        if (c != 0) return c < 0 ? c : 0;
    }
    /* Register (the order of the two counts: a kill in between leaves waiters too high,
     * never too low). seq_cst: the first half of the Dekker pair with post(). */
    atomic_fetch_add_explicit(&sh->waiters, 1, memory_order_seq_cst);
    if (e) atomic_fetch_add_explicit(&e->waiting, 1, memory_order_relaxed);
    int rc, scan = e != NULL;
    int64_t slice = SLICE_MIN_NS;
    for (;;) {
        /* seq_cst load: after our registration in the single total order; if it misses a
         * post's increment, that post's load of waiters sees our registration. */
        uint32_t v = atomic_load_explicit(&sh->value, memory_order_seq_cst);
        if (v > INT32_MAX) {
            rc = -EBADMSG;
            break;
        }
        if (v > 0) {
            if (atomic_compare_exchange_strong_explicit(&sh->value, &v, v - 1, memory_order_acquire,
                                                        memory_order_relaxed)) {
                rc = 0;
                break;
            }
            continue;
        }
        if (scan) { /* dead holders' units (only with UNDO) */
            scan = 0;
            if (reclaim(s, 0) > 0) continue;
        }
        int64_t left = ferry__remaining(ferry__when_at(&w));
        if (left <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        int r = ferry__futex_wait(&sh->value, 0, left < slice ? left : slice);
        /* 0 woken, -EAGAIN value changed, -EINTR: re-check. -ETIMEDOUT: the slice ended
         * without a wake-up: re-check, and look for dead holders again. */
        if (r == -ETIMEDOUT) {
            scan = e != NULL;
            slice = slice * 2 > SLICE_MAX_NS ? SLICE_MAX_NS : slice * 2;
        } else if (r == 0) {
            slice = SLICE_MIN_NS;
        }
    }
    if (e) atomic_fetch_sub_explicit(&e->waiting, 1, memory_order_relaxed);
    waiters_sub(sh, 1); /* never below 0 (a reclaim or a hostile sharer may have cut it) */
    return rc;
}

static int wait_common(ferry_sem *s, int64_t timeout_ns)
{
    ferry__when w;
    if (!s || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL; /* before taking */
    sem_slot *e = NULL;
    if (s->flags & FERRY_SEM_UNDO) {
        int err = 0;
        e = my_slot(s, 1, &err);
        if (!e) return err;
    }
    int rc = take(s->sh);
    if (rc == 0)
        rc = wait_slow(s, e, &w);
    else if (rc > 0)
        rc = 0;
    /* After the unit is ours (the window of the header: a kill here loses the unit). */
    if (rc == 0 && e) atomic_fetch_add_explicit(&e->held, 1, memory_order_relaxed);
    return rc;
}

int ferry_sem_wait(ferry_sem *s, int64_t timeout_ns)
{
    return wait_common(s, timeout_ns);
}

int ferry_sem_trywait(ferry_sem *s)
{
    return wait_common(s, FERRY_NOW);
}

/* Take one from held in one of this process's slots, if any holds some: 1 if taken. */
static int unhold(ferry_sem *s)
{
    int err;
    sem_slot *e = my_slot(s, 0, &err);
    if (!e) return 0;
    uint64_t me = ferry__proc_self();
    for (uint32_t i = 0;; i++) {
        uint32_t h = atomic_load_explicit(&e->held, memory_order_relaxed);
        while (h > 0)
            if (atomic_compare_exchange_weak_explicit(&e->held, &h, h - 1, memory_order_relaxed,
                                                      memory_order_relaxed))
                return 1;
        /* A second slot of ours (two threads claimed at once): look there. */
        for (; i < s->nslots; i++)
            if (&s->sh->slots[i] != e &&
                atomic_load_explicit(&s->sh->slots[i].id, memory_order_relaxed) == me)
                break;
        if (i >= s->nslots) return 0;
        e = &s->sh->slots[i];
    }
}

int ferry_sem_post(ferry_sem *s)
{
    if (!s) return -EINVAL;
    sem_shared *sh = s->sh;
    /* UNDO: held first, then value (a kill in between loses the unit, never doubles it). */
    int unheld = (s->flags & FERRY_SEM_UNDO) ? unhold(s) : 0;
    uint32_t v = atomic_load_explicit(&sh->value, memory_order_relaxed);
    for (;;) {
        if (v >= INT32_MAX) {
            if (unheld) { /* give the unit back to held: this post did not happen */
                int err;
                sem_slot *e = my_slot(s, 0, &err);
                if (e) atomic_fetch_add_explicit(&e->held, 1, memory_order_relaxed);
            }
            return v > INT32_MAX ? -EBADMSG : -EOVERFLOW;
        }
        /* seq_cst (a release too: what we wrote before V is seen after the next P). The
         * Dekker pair: a waiter does waiters++ then loads value, we do value++ then load
         * waiters, all four seq_cst; in their single total order one of the loads comes
         * after the other side's write, so either the waiter sees the unit or we see it
         * registered. Between its registration and its futex sleep the kernel re-checks
         * value == 0, so a wake-up we send before it sleeps is not needed. */
        if (atomic_compare_exchange_weak_explicit(&sh->value, &v, v + 1, memory_order_seq_cst,
                                                  memory_order_relaxed))
            break;
    }
    if (atomic_load_explicit(&sh->waiters, memory_order_seq_cst) != 0)
        ferry__futex_wake(&sh->value, 1);
    return 0;
}

int ferry_sem_value(const ferry_sem *s)
{
    if (!s) return -EINVAL;
    uint32_t v = atomic_load_explicit(&s->sh->value, memory_order_relaxed);
    return v > INT32_MAX ? -EBADMSG : (int)v;
}

int ferry_sem_waiters(const ferry_sem *s)
{
    if (!s) return -EINVAL;
    /* relaxed: a snapshot. A sharer may write any count: bounded by the tasks there can be. */
    uint32_t w = atomic_load_explicit(&s->sh->waiters, memory_order_relaxed);
    return w > FERRY__PROC_MAX_TASKS ? (int)FERRY__PROC_MAX_TASKS : (int)w;
}
