// SPDX-License-Identifier: MIT
/*
 * bench_sync.c — the synchronization rows of `ferry bench` (bench_sync.h):
 *
 *   posix-sem, sysv-sem, ferry-sem        pattern uncontended, size 0. One process takes
 *       and gives back one unit of a semaphore whose value is 1: sem_wait + sem_post on an
 *       unnamed process-shared sem_t in a MAP_SHARED page; semop(-1) + semop(+1) on an
 *       IPC_PRIVATE set of one (no SEM_UNDO); ferry_sem_wait(FERRY_FOREVER) +
 *       ferry_sem_post. One pair takes ~10-20 ns, too little to time one by one (a clock
 *       read costs about as much), so the loop times batches of SEM_BATCH pairs (one
 *       clock read per batch, chained) and every figure is per pair: the percentiles of
 *       the batch times divided by SEM_BATCH, msgs_per_s = pairs per second. The value
 *       must be 1 again at the end.
 *   pthread-robust-mutex, ferry-mutex, ferry-mutex-fair   pattern handoff, size 0. Two
 *       processes on two CPUs share a mutex (pthread: PTHREAD_PROCESS_SHARED +
 *       PTHREAD_MUTEX_ROBUST in a MAP_SHARED page; ferry: ferry_mutex_create, flags 0 or
 *       FERRY_MUTEX_FAIR) and a turn word it protects: even, the measuring side's turn;
 *       odd, the peer's. Each side loops: lock, read the turn, advance it by one if it is
 *       its own, unlock — until it has taken its turn. One timed iteration is one round
 *       of the turn (the measuring side's turn, then the peer's, then its own again); both
 *       sides hammer the lock meanwhile, so this is the contended case: lock calls that
 *       find the mutex held, sleeps and wake-ups, and for the unfair mutexes a side may
 *       take the lock again and again before the other gets it. Under the lock every
 *       holder also increments a plain counter; at the end it must equal the number of
 *       acquisitions of both sides (the mutex did exclude).
 *   rt-signal   pingpong 64 (a value, no payload): SIGRTMIN, blocked in both processes,
 *       queued with sigqueue (the sequence number in si_value) and taken with
 *       sigtimedwait; the peer checks value and sender and queues it back.
 *   ferry-event pingpong 64 (a 64-bit payload): two queues made before fork
 *       (ferry_event_create), one each way; ferry_event_post, ferry_event_next.
 *   The eventfd row next to them is bench_raw_eventfd.c's, pingpong 64 the same way.
 *
 * Bounds: the uncontended and handoff rows run their measuring side in a child
 * (bench_run_apart; the uncontended rows' peer has nothing to do) so that the children's
 * watchdogs bound a lock or a wait that never returns; the lock loops also give up after
 * BENCH_OP_TIMEOUT_NS without progress. rt-signal and ferry-event wait with timeouts.
 * Nothing is left behind: the System V set is removed (IPC_RMID) by the driver after both
 * children are reaped, the sem_t is unnamed (no /dev/shm name), ferry objects are memfds,
 * and the driver takes any signal still pending before it unblocks SIGRTMIN again.
 *
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, sigqueue, sigtimedwait, semop */
#include "bench_sync.h"

#include <ferry/ferry.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <unistd.h>

#define SEM_BATCH  100  /* wait+post pairs per timed batch */
#define LOOK_EVERY 1024 /* lock attempts between two looks at the clock */

/* The peer of a measurement that needs none (bench_run_apart always forks one). */
static int idle_peer(void *ctx, bench_shared *sh)
{
    (void)ctx;
    (void)sh;
    return 0;
}

/* Has an operation that started waiting at *since (0: not yet) waited too long? */
static int too_long(int64_t *since)
{
    int64_t now = bench_now_ns();
    if (*since == 0) *since = now;
    return now - *since > BENCH_OP_TIMEOUT_NS;
}

/* ------------------------------------------------------------------ semaphores */

union semun { /* semctl's fourth argument: defined by the caller (sys/sem.h) */
    int val;
    struct semid_ds *buf;
    unsigned short *array;
};

typedef struct sem_ctx {
    const bench_job *job;
    bench_rt_fn batch; /* SEM_BATCH pairs of the row's kind */
    sem_t *psem;       /* SYNC_POSIX: in a MAP_SHARED page of its own, or NULL */
    int semid;         /* SYNC_SYSV, or -1 */
    ferry_sem *fsem;   /* SYNC_FERRY, or NULL */
} sem_ctx;

static int posix_batch(void *ctx, uint64_t seq, bench_result *res)
{
    sem_ctx *c = ctx;
    (void)seq;
    for (int i = 0; i < SEM_BATCH; i++) {
        while (sem_wait(c->psem) != 0)
            if (errno != EINTR) return bench_fail(res, "sem_wait: %s", strerror(errno));
        if (sem_post(c->psem) != 0) return bench_fail(res, "sem_post: %s", strerror(errno));
    }
    return 0;
}

static int sysv_batch(void *ctx, uint64_t seq, bench_result *res)
{
    sem_ctx *c = ctx;
    struct sembuf down = {0, -1, 0}, up = {0, 1, 0};
    (void)seq;
    for (int i = 0; i < SEM_BATCH; i++) {
        while (semop(c->semid, &down, 1) != 0)
            if (errno != EINTR) return bench_fail(res, "semop -1: %s", strerror(errno));
        if (semop(c->semid, &up, 1) != 0) return bench_fail(res, "semop +1: %s", strerror(errno));
    }
    return 0;
}

static int ferry_batch(void *ctx, uint64_t seq, bench_result *res)
{
    sem_ctx *c = ctx;
    int r;
    (void)seq;
    for (int i = 0; i < SEM_BATCH; i++) {
        if ((r = ferry_sem_wait(c->fsem, FERRY_FOREVER)) != 0)
            return bench_fail(res, "ferry_sem_wait: %s", strerror(-r));
        if ((r = ferry_sem_post(c->fsem)) != 0)
            return bench_fail(res, "ferry_sem_post: %s", strerror(-r));
    }
    return 0;
}

/* The semaphore's value now, or -1. */
static int sem_value(const sem_ctx *c)
{
    int v = -1;
    if (c->psem && sem_getvalue(c->psem, &v) != 0) v = -1;
    if (c->semid >= 0) v = semctl(c->semid, 0, GETVAL);
    if (c->fsem) v = ferry_sem_value(c->fsem);
    return v;
}

/* In the measuring child: batches through the pingpong loop, then per pair. */
static int sem_measure(void *ctx, bench_shared *peer_sh, bench_result *res)
{
    sem_ctx *c = ctx;
    (void)peer_sh;
    int rc = bench_loop_pingpong(c->job, c->batch, c, res), v;
    if (rc == 0 && (v = sem_value(c)) != 1)
        rc = bench_fail(res, "the semaphore's value is %d after the run, want 1", v);
    if (rc == 0) {
        res->rtt_p50_ns /= SEM_BATCH;
        res->rtt_p99_ns /= SEM_BATCH;
        res->rtt_p999_ns /= SEM_BATCH;
        res->msgs_per_s *= SEM_BATCH;
    }
    return rc;
}

int bench_sem(const bench_job *job, bench_result *res)
{
    const bench_sync_spec *spec = job->arg;
    sem_ctx c = {job, NULL, NULL, -1, NULL};
    int rc = -1, r;

    switch (spec->kind) {
    case SYNC_POSIX: {
        void *p =
            mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return bench_fail(res, "mmap: %s", strerror(errno));
        if (sem_init(p, 1, 1) != 0) {
            bench_fail(res, "sem_init: %s", strerror(errno));
            munmap(p, sizeof(sem_t));
            return -1;
        }
        c.psem = p;
        c.batch = posix_batch;
        break;
    }
    case SYNC_SYSV:
        if ((c.semid = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600)) < 0)
            return bench_fail(res, "semget: %s", strerror(errno));
        if (semctl(c.semid, 0, SETVAL, (union semun){.val = 1}) != 0) {
            bench_fail(res, "semctl SETVAL: %s", strerror(errno));
            goto out;
        }
        c.batch = sysv_batch;
        break;
    case SYNC_FERRY:
        if ((r = ferry_sem_create(1, 0, &c.fsem)) != 0)
            return bench_fail(res, "ferry_sem_create: %s", strerror(-r));
        c.batch = ferry_batch;
        break;
    }
    rc = bench_run_apart(job, idle_peer, sem_measure, &c, res);
out:
    /* Both children are reaped (bench_run_apart): nobody uses the semaphore any more. */
    if (c.psem) {
        sem_destroy(c.psem);
        munmap(c.psem, sizeof(sem_t));
    }
    if (c.semid >= 0 && semctl(c.semid, 0, IPC_RMID) != 0 && rc == 0)
        rc = bench_fail(res, "semctl IPC_RMID: %s", strerror(errno));
    if (c.fsem) ferry_sem_close(c.fsem);
    return rc;
}

/* ------------------------------------------------------------------ mutex hand-off */

/* One page shared by the two processes. */
typedef struct mtx_page {
    pthread_mutex_t pm; /* SYNC_POSIX */
    _Alignas(
        64) uint64_t turn; /* under the mutex: even, the measuring side's turn; odd, the peer's */
    uint64_t inside;       /* under the mutex: +1 by every holder, every time */
    _Alignas(64) _Atomic uint32_t stop; /* the measuring side is done */
    _Atomic uint32_t peer_done;         /* the peer takes the lock no more; peer_locks is final */
    uint64_t peer_locks;
} mtx_page;

typedef struct mtx_ctx {
    const bench_job *job;
    int ferry; /* ferry_mutex, else the pthread mutex */
    mtx_page *pg;
    ferry_mutex *fm;
    uint64_t locks; /* this process's acquisitions (each process has its own copy) */
} mtx_ctx;

/* Lock, read the turn word into *seen, advance it if it is `want`, unlock. 1 when the
 * turn was taken, 0 when it was not this side's turn, -errno (-EOWNERDEAD: the other
 * process died holding the lock; the row fails). */
static int try_turn(mtx_ctx *c, uint64_t want, uint64_t *seen)
{
    int r = c->ferry ? ferry_mutex_lock(c->fm, FERRY_FOREVER) : -pthread_mutex_lock(&c->pg->pm);
    if (r != 0) return r;
    c->pg->inside++;
    c->locks++;
    const uint64_t t = c->pg->turn;
    if (t == want) c->pg->turn = t + 1;
    *seen = t;
    r = c->ferry ? ferry_mutex_unlock(c->fm) : -pthread_mutex_unlock(&c->pg->pm);
    return r != 0 ? r : t == want;
}

/* The measuring side: one round of the turn, from taking turn 2 seq to taking 2 seq + 2
 * (the chained clock of bench_loop_pingpong times from one take to the next). */
static int mtx_rt(void *ctx, uint64_t seq, bench_result *res)
{
    mtx_ctx *c = ctx;
    const uint64_t want = 2 * seq;
    int64_t since = 0;
    for (unsigned k = 1;; k++) {
        uint64_t seen = 0;
        int r = try_turn(c, want, &seen);
        if (r < 0) return bench_fail(res, "lock or unlock: %s", strerror(-r));
        if (r == 1) return 0;
        if (seen != want - 1) /* seq 0 never gets here: the turn starts at 0 */
            return bench_fail(res, "turn word is %llu, want %llu or %llu", (unsigned long long)seen,
                              (unsigned long long)want - 1, (unsigned long long)want);
        if (k % LOOK_EVERY == 0) {
            if (atomic_load_explicit(&c->pg->peer_done, memory_order_relaxed))
                return bench_fail(res, "the peer stopped taking turns");
            if (too_long(&since)) return bench_fail(res, "the peer did not take its turn");
        }
    }
}

static int mtx_peer(void *ctx, bench_shared *sh)
{
    mtx_ctx *c = ctx;
    int rc = 0;
    /* Relaxed load of stop: a flag without data; the peer only has to see it eventually. */
    for (uint64_t n = 0; rc == 0; n++) {
        const uint64_t want = 2 * n + 1;
        int64_t since = 0;
        for (unsigned k = 1;; k++) {
            uint64_t seen = 0;
            if (atomic_load_explicit(&c->pg->stop, memory_order_relaxed)) goto done;
            int r = try_turn(c, want, &seen);
            if (r < 0) {
                rc = bench_peer_fail(sh, "peer: lock or unlock: %s", strerror(-r));
                break;
            }
            if (r == 1) break;
            if (seen != want - 1) {
                rc = bench_peer_fail(sh, "peer: turn word is %llu, want %llu or %llu",
                                     (unsigned long long)seen, (unsigned long long)want - 1,
                                     (unsigned long long)want);
                break;
            }
            if (k % LOOK_EVERY == 0 && too_long(&since)) {
                rc = bench_peer_fail(sh, "peer: the measuring side did not take its turn");
                break;
            }
        }
    }
done:
    c->pg->peer_locks = c->locks;
    /* Release: peer_locks, and every increment of inside, before peer_done. */
    atomic_store_explicit(&c->pg->peer_done, 1, memory_order_release);
    return rc;
}

/* In the measuring child: the rounds, then stop the peer and check the counter. */
static int mtx_measure(void *ctx, bench_shared *peer_sh, bench_result *res)
{
    mtx_ctx *c = ctx;
    (void)peer_sh;
    int rc = bench_loop_pingpong(c->job, mtx_rt, c, res);
    int64_t since = 0;
    atomic_store_explicit(&c->pg->stop, 1, memory_order_relaxed);
    /* Acquire: pairs with the peer's release; its counts are then visible here. */
    while (!atomic_load_explicit(&c->pg->peer_done, memory_order_acquire)) {
        if (too_long(&since)) return rc != 0 ? rc : bench_fail(res, "the peer did not stop");
        nanosleep(&(struct timespec){0, 100000}, NULL);
    }
    if (rc == 0 && c->pg->inside != c->locks + c->pg->peer_locks)
        rc = bench_fail(res, "the mutex did not exclude: %llu increments under it, %llu locks",
                        (unsigned long long)c->pg->inside,
                        (unsigned long long)(c->locks + c->pg->peer_locks));
    return rc;
}

int bench_mutex_handoff(const bench_job *job, bench_result *res)
{
    const bench_sync_spec *spec = job->arg;
    mtx_ctx c = {job, spec->kind == SYNC_FERRY, NULL, NULL, 0};
    int rc = -1, r, pm_made = 0;
    pthread_mutexattr_t at;

    void *p = mmap(NULL, sizeof *c.pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return bench_fail(res, "mmap: %s", strerror(errno));
    c.pg = p; /* zeroed: turn, inside, stop, peer_done, peer_locks are 0 */
    if (c.ferry) {
        if ((r = ferry_mutex_create(spec->flags, &c.fm)) != 0) {
            bench_fail(res, "ferry_mutex_create: %s", strerror(-r));
            goto out;
        }
    } else {
        if ((r = pthread_mutexattr_init(&at)) != 0) {
            bench_fail(res, "pthread_mutexattr_init: %s", strerror(r));
            goto out;
        }
        if ((r = pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED)) == 0 &&
            (r = pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST)) == 0)
            r = pthread_mutex_init(&c.pg->pm, &at);
        pthread_mutexattr_destroy(&at);
        if (r != 0) {
            bench_fail(res, "pthread mutex (shared, robust): %s", strerror(r));
            goto out;
        }
        pm_made = 1;
    }
    rc = bench_run_apart(job, mtx_peer, mtx_measure, &c, res);
out:
    /* Both children are reaped (bench_run_apart): nobody holds the mutex any more. */
    if (pm_made) pthread_mutex_destroy(&c.pg->pm);
    if (c.fm) ferry_mutex_close(c.fm);
    munmap(c.pg, sizeof *c.pg);
    return rc;
}

/* ------------------------------------------------------------------ real-time signal */

#define SIG_END (-1) /* si_value of the driver's "we are done"; never a sequence value */

typedef struct sig_ctx {
    pid_t to;     /* where this side's signals go */
    sigset_t set; /* SIGRTMIN */
} sig_ctx;

/* seq + 1 as a positive int (sequence numbers wrap far beyond any run's count). */
static int sig_val(uint64_t seq)
{
    return (int)(seq % 0x40000000u) + 1;
}

/* Take the next SIGRTMIN queued by `from` into *v. 0, or -errno (-EAGAIN: nothing within
 * BENCH_OP_TIMEOUT_NS; -EPROTO: a signal that is not a sigqueue from `from`). */
static int sig_take(const sig_ctx *c, pid_t from, int *v)
{
    const struct timespec limit = {BENCH_OP_TIMEOUT_NS / 1000000000, 0};
    siginfo_t si;
    while (sigtimedwait(&c->set, &si, &limit) < 0)
        if (errno != EINTR) return -errno; /* EINTR: a caught stop signal; the run stops later */
    if (si.si_code != SI_QUEUE || si.si_pid != from) return -EPROTO;
    *v = si.si_value.sival_int;
    return 0;
}

static int sig_give(const sig_ctx *c, int v)
{
    return sigqueue(c->to, SIGRTMIN, (union sigval){.sival_int = v}) == 0 ? 0 : -errno;
}

static int sig_rt(void *ctx, uint64_t seq, bench_result *res)
{
    sig_ctx *c = ctx;
    int v = 0, r;
    if ((r = sig_give(c, sig_val(seq))) < 0) return bench_fail(res, "sigqueue: %s", strerror(-r));
    if ((r = sig_take(c, c->to, &v)) < 0) return bench_fail(res, "sigtimedwait: %s", strerror(-r));
    if (v != sig_val(seq)) return bench_fail(res, "wrong value %d", v);
    return 0;
}

/* The peer: SIGRTMIN is blocked already (inherited from the driver). */
static int sig_echo(void *ctx, bench_shared *sh)
{
    sig_ctx *c = ctx;
    c->to = getppid();
    for (uint64_t seq = 0;; seq++) {
        int v = 0, r = sig_take(c, c->to, &v);
        if (r < 0) return bench_peer_fail(sh, "peer: sigtimedwait: %s", strerror(-r));
        if (v == SIG_END) return 0;
        if (v != sig_val(seq)) return bench_peer_fail(sh, "peer: wrong value %d", v);
        if ((r = sig_give(c, v)) < 0)
            return bench_peer_fail(sh, "peer: sigqueue: %s", strerror(-r));
    }
}

int bench_rt_signal(const bench_job *job, bench_result *res)
{
    sig_ctx c;
    sigset_t old;
    bench_peer p = {-1, NULL};
    int rc = -1;
    const struct timespec zero = {0, 0};

    sigemptyset(&c.set);
    sigaddset(&c.set, SIGRTMIN);
    /* Blocked before fork, so the peer has it blocked from its first instruction on. */
    if ((rc = pthread_sigmask(SIG_BLOCK, &c.set, &old)) != 0)
        return bench_fail(res, "pthread_sigmask: %s", strerror(rc));
    rc = -1;
    if (bench_peer_start(&p, job, sig_echo, &c, res) == 0) {
        c.to = p.pid;
        rc = bench_loop_pingpong(job, sig_rt, &c, res);
        if (rc == 0) sig_give(&c, SIG_END);
        if (rc != 0) kill(p.pid, SIGKILL); /* it may wait for a signal */
        if (bench_peer_finish(&p, res) != 0) rc = -1;
    }
    /* The peer is reaped: take what it may still have queued, then unblock (a pending
     * SIGRTMIN would otherwise kill the driver: its default action). */
    while (sigtimedwait(&c.set, NULL, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* ------------------------------------------------------------------ ferry events */

#define EV_END UINT64_MAX /* never a seq + 1 here */

typedef struct ev_ctx {
    ferry_event *to_peer, *from_peer;
} ev_ctx;

static int ev_rt(void *ctx, uint64_t seq, bench_result *res)
{
    ev_ctx *c = ctx;
    uint64_t v;
    int r = ferry_event_post(c->to_peer, seq + 1, 0, BENCH_OP_TIMEOUT_NS);
    if (r < 0) return bench_fail(res, "ferry_event_post: %s", strerror(-r));
    if ((r = ferry_event_next(c->from_peer, &v, BENCH_OP_TIMEOUT_NS)) < 0)
        return bench_fail(res, "ferry_event_next: %s", strerror(-r));
    if (v != seq + 1) return bench_fail(res, "wrong payload %llu", (unsigned long long)v);
    return 0;
}

static int ev_echo(void *ctx, bench_shared *sh)
{
    ev_ctx *c = ctx;
    for (uint64_t seq = 0;; seq++) {
        uint64_t v;
        int r = ferry_event_next(c->to_peer, &v, BENCH_OP_TIMEOUT_NS);
        if (r < 0) return bench_peer_fail(sh, "peer: ferry_event_next: %s", strerror(-r));
        if (v == EV_END) return 0;
        if (v != seq + 1) return bench_peer_fail(sh, "peer: wrong payload");
        if ((r = ferry_event_post(c->from_peer, v, 0, BENCH_OP_TIMEOUT_NS)) < 0)
            return bench_peer_fail(sh, "peer: ferry_event_post: %s", strerror(-r));
    }
}

int bench_ferry_event(const bench_job *job, bench_result *res)
{
    ev_ctx c = {NULL, NULL};
    bench_peer p = {-1, NULL};
    int rc = -1, r;
    if ((r = ferry_event_create(0, &c.to_peer)) != 0 ||
        (r = ferry_event_create(0, &c.from_peer)) != 0) {
        bench_fail(res, "ferry_event_create: %s", strerror(-r));
        goto out;
    }
    if (bench_peer_start(&p, job, ev_echo, &c, res) != 0) goto out;
    rc = bench_loop_pingpong(job, ev_rt, &c, res);
    if (rc == 0) ferry_event_post(c.to_peer, EV_END, 0, BENCH_OP_TIMEOUT_NS);
out:
    if (rc != 0 && p.pid > 0) kill(p.pid, SIGKILL); /* it may wait for an event */
    if (p.pid > 0 && bench_peer_finish(&p, res) != 0) rc = -1;
    if (c.to_peer) ferry_event_close(c.to_peer);
    if (c.from_peer) ferry_event_close(c.from_peer);
    return rc;
}
