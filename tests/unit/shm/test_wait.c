// SPDX-License-Identifier: MIT
/*
 * test_wait.c — spin-then-futex waiting (shm/wait.h), with the words in a real memfd
 * segment and the waker a real other process: a condition already true returns 0 with no
 * sleep; FERRY_NOW is -EAGAIN and a bound is -ETIMEDOUT, never before the deadline; a
 * waker in another process wakes a waiter that sleeps without bound; spurious wake-ups
 * (the word bumped and woken, the condition still false) and signals (EINTR) neither end
 * the wait nor move its deadline; a condition's error and the liveness check's -EPIPE
 * (a peer killed with SIGKILL, seen through core/proc) end it with that exact code; the
 * waiting flag is down on every way out; ferry__wake_if_waiting makes a call only for an
 * announced waiter, and takes the announcement; the spin budget halves on failure down
 * to a floor of max/16, then to none with a whole-budget probe every FERRY__SPIN_PROBE
 * waits (doubled by each failed probe, up to FERRY__SPIN_PROBE_MAX), and doubles when spinning
 * paid; the peer's sleeping hint ends a spin at once (and only shortens it); the fence flag goes up
 * after mostly sleeping waits and down again after mostly spinning ones. Timing: only "did not
 * return early", and CPU time far below a sleep's length.
 */
#define _GNU_SOURCE
#include "core/proc.h"
#include "core/time.h"
#include "shm/segment.h"
#include "shm/wait.h"
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/time.h>

typedef struct words {
    _Atomic uint32_t futex, waiting, cannot;
    _Atomic uint32_t state; /* 0 not yet, 1 ready, 2 broken */
    _Atomic uint32_t peer;  /* a peer's sleeping flag (test_peer_hint) */
} words;

typedef struct ctx {
    words *w;
    uint64_t peer;   /* process id of the waker, 0: none */
    int alive_calls; /* (this process only) */
    int cond_calls;
    int ready_after; /* cond: true after this many calls (0: only by state) */
} ctx;

static int cond(void *arg)
{
    ctx *c = arg;
    c->cond_calls++;
    if (c->ready_after && c->cond_calls >= c->ready_after) return 1;
    /* acquire: pairs with the waker's release store of the state. */
    uint32_t s = atomic_load_explicit(&c->w->state, memory_order_acquire);
    return s == 1 ? 1 : s == 2 ? -ECONNRESET : 0;
}

static int alive(void *arg)
{
    ctx *c = arg;
    c->alive_calls++;
    return c->peer && ferry__proc_dead(c->peer) ? -EPIPE : 0;
}

static words *shared(ferry__seg *seg)
{
    int fd;
    CHECK_EQ(ferry__seg_create(4096, &fd, seg), 0);
    close(fd); /* the mapping stays, and is inherited by fork children */
    return seg->base;
}

static int do_wait(ctx *c, int64_t timeout, uint64_t *sleeps)
{
    ferry__spin s;
    ferry__spin_init(&s, 20000);
    ferry__when when;
    CHECK_EQ(ferry__when_from(timeout, &when), 0);
    int rc = ferry__wait(&s, cond, alive, c, &c->w->futex, &c->w->waiting, &c->w->cannot, &when,
                         sleeps, NULL, NULL);
    CHECK_EQ(atomic_load(&c->w->waiting), 0); /* down on every way out */
    return rc;
}

static void test_ready_now_timeout(words *w)
{
    ctx c = {.w = w};
    uint64_t sleeps = 0;
    atomic_store(&w->state, 1);
    CHECK_EQ(do_wait(&c, 0, &sleeps), 0);
    CHECK_EQ(do_wait(&c, -1, &sleeps), 0);
    CHECK_EQ(sleeps, 0);
    CHECK_EQ(c.alive_calls, 0);

    atomic_store(&w->state, 0);
    CHECK_EQ(do_wait(&c, 0, &sleeps), -EAGAIN);
    CHECK_EQ(sleeps, 0);
    int64_t t0 = ferry__now_ns();
    CHECK_EQ(do_wait(&c, 30000000, &sleeps), -ETIMEDOUT);
    CHECK(ferry__now_ns() - t0 >= 30000000); /* not early */
    CHECK(sleeps >= 1);
    CHECK_EQ(do_wait(&c, 1, NULL), -ETIMEDOUT); /* sleeps may be NULL */

    atomic_store(&w->state, 2); /* the condition's own error comes back as is */
    CHECK_EQ(do_wait(&c, -1, NULL), -ECONNRESET);
    CHECK_EQ(do_wait(&c, 0, NULL), -ECONNRESET);
    atomic_store(&w->state, 0);
}

/* A child that sleeps ms, then publishes state and wakes the waiter like a ring does. */
static pid_t waker(words *w, int ms, uint32_t state)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid) return pid;
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
    atomic_store_explicit(&w->state, state, memory_order_release);
    ferry__publish_fence(&w->cannot);
    ferry__wake_if_waiting(&w->futex, &w->waiting);
    _exit(0);
}

static void test_wake(words *w)
{
    for (uint32_t st = 1; st <= 2; st++) {
        atomic_store(&w->state, 0);
        pid_t pid = waker(w, 40, st);
        ctx c = {.w = w};
        uint64_t sleeps = 0;
        int64_t t0 = ferry__now_ns();
        CHECK_EQ(do_wait(&c, -1, &sleeps), st == 1 ? 0 : -ECONNRESET);
        CHECK(ferry__now_ns() - t0 >= 35000000); /* not before the child published */
        CHECK(sleeps >= 1);
        wait_ok(pid);
    }
    atomic_store(&w->state, 0);
}

static void test_peer_killed(words *w)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        pause();
        _exit(0);
    }
    /* The parent computes the child's id from /proc, as a peer learns it from shared memory. */
    char st;
    uint64_t start;
    CHECK_EQ(ferry__proc_stat(pid, &st, &start), 0);
    uint64_t id = (start & ((UINT64_C(1) << 41) - 1)) << 22 | (uint64_t)pid;
    ctx c = {.w = w, .peer = id};
    CHECK_EQ(do_wait(&c, 20000000, NULL), -ETIMEDOUT); /* alive: the bound ends it */
    CHECK(c.alive_calls >= 1);
    CHECK_EQ(kill(pid, SIGKILL), 0);
    CHECK_EQ(do_wait(&c, -1, NULL), -EPIPE); /* it never wakes us: the slice notices */
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
}

struct spurious {
    words *w;
    _Atomic int stop;
};

static void *spurious_waker(void *arg)
{
    struct spurious *sp = arg;
    while (!atomic_load(&sp->stop)) {
        atomic_store(&sp->w->waiting, 1); /* make ferry__wake_waiter call FUTEX_WAKE */
        ferry__wake_waiter(&sp->w->futex, &sp->w->waiting);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_spurious(words *w)
{
    struct spurious sp = {.w = w};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, spurious_waker, &sp), 0);
    ctx c = {.w = w};
    uint64_t sleeps = 0;
    uint32_t word0 = atomic_load(&w->futex);
    int64_t t0 = ferry__now_ns();
    ferry__spin s;
    ferry__spin_init(&s, 0);
    ferry__when when;
    CHECK_EQ(ferry__when_from(150000000, &when), 0);
    int rc = ferry__wait(&s, cond, alive, &c, &w->futex, &w->waiting, &w->cannot, &when, &sleeps,
                         NULL, NULL);
    atomic_store(&sp.stop, 1);
    pthread_join(t, NULL);
    CHECK_EQ(rc, -ETIMEDOUT);
    CHECK(ferry__now_ns() - t0 >= 150000000);
    CHECK(atomic_load(&w->futex) != word0); /* the wake-ups happened */
    CHECK(sleeps >= 2);                     /* and each sent it back to sleep */
    CHECK(c.alive_calls >= 1);              /* a wake-up with nothing: is the peer alive? */
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void test_signals(words *w)
{
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART: futex sees EINTR */
    CHECK_EQ(sigaction(SIGALRM, &sa, NULL), 0);
    struct itimerval it = {{0, 3000}, {0, 3000}};
    CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
    ctx c = {.w = w};
    int64_t t0 = ferry__now_ns();
    CHECK_EQ(do_wait(&c, 60000000, NULL), -ETIMEDOUT);
    CHECK(ferry__now_ns() - t0 >= 60000000);
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK_EQ(setitimer(ITIMER_REAL, &off, NULL), 0);
    signal(SIGALRM, SIG_DFL);
}

static void test_wake_if_waiting(words *w)
{
    atomic_store(&w->waiting, 0);
    uint32_t word = atomic_load(&w->futex);
    CHECK_EQ(ferry__wake_if_waiting(&w->futex, &w->waiting), 0);
    CHECK_EQ(atomic_load(&w->futex), word); /* nobody waiting: no bump, no call */
    atomic_store(&w->waiting, 1);
    CHECK_EQ(ferry__wake_if_waiting(&w->futex, &w->waiting), 1);
    CHECK_EQ(atomic_load(&w->futex), word + 1);
    CHECK_EQ(atomic_load(&w->waiting), 0); /* taken: one wake-up per sleep */
    CHECK_EQ(ferry__wake_if_waiting(&w->futex, &w->waiting), 0);
    CHECK_EQ(ferry__wake_waiter(&w->futex, &w->waiting), 0);
    CHECK_EQ(atomic_load(&w->futex), word + 1);
}

static void test_spin_budget(words *w)
{
    ferry__spin s;
    ferry__spin_init(&s, -5);
    CHECK_EQ(s.max_ns, 0);
    CHECK_EQ(s.cur_ns, 0);
    ferry__spin_init(&s, 1600000);
    CHECK_EQ(s.cur_ns, 1600000);
    ctx c = {.w = w};
    atomic_store(&w->state, 0);
    /* FERRY_NOW spins nothing: no verdict on the budget. */
    ferry__when now;
    CHECK_EQ(ferry__when_from(0, &now), 0);
    CHECK_EQ(ferry__wait(&s, cond, alive, &c, &w->futex, &w->waiting, &w->cannot, &now, NULL, NULL,
                         NULL),
             -EAGAIN);
    CHECK_EQ(s.cur_ns, 1600000);
    /* Spins that run out: halves down to max/16, then none. */
    const int64_t want[8] = {800000, 400000, 200000, 100000, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) {
        ferry__when soon;
        CHECK_EQ(ferry__when_from(1000, &soon), 0);
        CHECK_EQ(ferry__wait(&s, cond, alive, &c, &w->futex, &w->waiting, &w->cannot, &soon, NULL,
                             NULL, NULL),
                 -ETIMEDOUT);
        CHECK_EQ(s.cur_ns, want[i]);
    }
    /* At none, every FERRY__SPIN_PROBE-th wait spins the whole budget; a probe that
     * fails doubles the period, up to FERRY__SPIN_PROBE_MAX. */
    CHECK_EQ(s.probe_every, FERRY__SPIN_PROBE);
    for (int k = 0; k < 8; k++) {
        s.probe = s.probe_every - 1;
        uint32_t every = s.probe_every;
        ferry__when soon;
        CHECK_EQ(ferry__when_from(1000, &soon), 0);
        CHECK_EQ(ferry__wait(&s, cond, alive, &c, &w->futex, &w->waiting, &w->cannot, &soon, NULL,
                             NULL, NULL),
                 -ETIMEDOUT);
        CHECK_EQ(s.probe, 0);
        CHECK_EQ(s.probe_every,
                 every * 2 > FERRY__SPIN_PROBE_MAX ? FERRY__SPIN_PROBE_MAX : every * 2);
        CHECK_EQ(s.cur_ns, 0);
    }
    CHECK_EQ(s.probe_every, FERRY__SPIN_PROBE_MAX);
    /* A condition that comes true while a probe spins brings the budget back. */
    s.probe = s.probe_every - 1;
    c.cond_calls = 0;
    c.ready_after = 100;
    ferry__when forever;
    CHECK_EQ(ferry__when_from(-1, &forever), 0);
    uint64_t sleeps = 0;
    CHECK_EQ(ferry__wait(&s, cond, alive, &c, &w->futex, &w->waiting, &w->cannot, &forever, &sleeps,
                         NULL, NULL),
             0);
    CHECK_EQ(sleeps, 0);
    CHECK_EQ(s.cur_ns, 1600000);
    CHECK_EQ(s.probe, 0);
    CHECK_EQ(s.probe_every, FERRY__SPIN_PROBE);
    c.ready_after = 0;
}

/* The peer's sleeping hint: with the peer's flag up, a spin of a whole second ends at
 * once and the wait sleeps (its CPU time stays far below the wait), leaving the budget as
 * it was; with the flag down the same wait spins (the budget is bounded by itself). */
static void test_peer_hint(words *w)
{
    _Atomic uint32_t *flag = &w->peer;
    ferry__peer peer = {{NULL, flag}};
    ferry__spin s;
    ferry__spin_init(&s, 1000000000);
    ctx c = {.w = w};
    atomic_store(&w->state, 0);
    atomic_store(flag, 1); /* "I sleep" */
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    int64_t t0 = ferry__now_ns();
    ferry__when when;
    CHECK_EQ(ferry__when_from(60000000, &when), 0);
    uint64_t sleeps = 0;
    CHECK_EQ(ferry__wait(&s, cond, alive, &c, &w->futex, &w->waiting, &w->cannot, &when, &sleeps,
                         &peer, NULL),
             -ETIMEDOUT);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    int64_t cpu = (c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec);
    CHECK(ferry__now_ns() - t0 >= 60000000);
    CHECK(sleeps >= 1);
    CHECK(cpu < 30000000);          /* slept, not spun (measured: ~0.1 ms) */
    CHECK_EQ(s.cur_ns, 1000000000); /* no verdict on the budget */
    /* Flag down: the spin runs to the deadline (a lying peer: our own budget, no more). */
    atomic_store(flag, 0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    CHECK_EQ(ferry__when_from(20000000, &when), 0);
    CHECK_EQ(ferry__wait(&s, cond, alive, &c, &w->futex, &w->waiting, &w->cannot, &when, NULL,
                         &peer, NULL),
             -ETIMEDOUT);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    cpu = (c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec);
    CHECK(cpu > 1000000); /* it spun */
    CHECK_EQ(s.cur_ns, 500000000);
}

/* The adaptive fence: a waiter that sleeps on most waits raises the shared fence flag
 * (its waker fences from then on) and stops calling membarrier; once its waits stop
 * sleeping, it lowers the flag again before its next sleep. */
static void test_adaptive_fence(words *w)
{
    ferry__spin s;
    ferry__spin_init(&s, 0); /* FERRY_NO_SPIN: every bounded wait sleeps */
    ctx c = {.w = w};
    atomic_store(&w->state, 0);
    atomic_store(&w->cannot, 0);
    int raised_at = -1;
    for (int i = 0; i < 40 && raised_at < 0; i++) {
        ferry__when when;
        CHECK_EQ(ferry__when_from(200000, &when), 0);
        CHECK_EQ(ferry__wait(&s, cond, alive, &c, &w->futex, &w->waiting, &w->cannot, &when, NULL,
                             NULL, NULL),
                 -ETIMEDOUT);
        if (atomic_load(&w->cannot)) raised_at = i;
    }
    /* The share passes one half after 11 sleeps; the 12th wait's barrier raises it. */
    CHECK_EQ(raised_at, 11);
    CHECK_EQ(s.asked, 1);
    /* Waits whose condition comes true while spinning (a budget again) lower the share;
     * the flag comes down at the next sleep once it is under 1/8. */
    ferry__spin_init(&s, 1000000);
    s.slept = FERRY__FENCE_ONE;
    s.asked = 1;
    for (int i = 0; i < 40; i++) {
        c.cond_calls = 0;
        c.ready_after = 3;
        ferry__when forever;
        CHECK_EQ(ferry__when_from(-1, &forever), 0);
        CHECK_EQ(ferry__wait(&s, cond, alive, &c, &w->futex, &w->waiting, &w->cannot, &forever,
                             NULL, NULL, NULL),
                 0);
    }
    c.ready_after = 0;
    CHECK(s.slept < FERRY__FENCE_LOW);
    CHECK_EQ(atomic_load(&w->cannot), 1); /* not yet: nothing slept */
    ferry__when when;
    CHECK_EQ(ferry__when_from(200000, &when), 0);
    CHECK_EQ(ferry__wait(&s, cond, alive, &c, &w->futex, &w->waiting, &w->cannot, &when, NULL, NULL,
                         NULL),
             -ETIMEDOUT);
    CHECK_EQ(atomic_load(&w->cannot), 0);
    CHECK_EQ(s.asked, 0);
}

int main(void)
{
    int fds = fd_count();
    ferry__seg seg;
    words *w = shared(&seg);
    test_ready_now_timeout(w);
    test_wake(w);
    test_peer_killed(w);
    test_spurious(w);
    test_signals(w);
    test_wake_if_waiting(w);
    test_spin_budget(w);
    test_peer_hint(w);
    test_adaptive_fence(w);
    ferry__seg_unmap(&seg);
    CHECK_EQ(fd_count(), fds);
    printf("ok: wait\n");
    return 0;
}
