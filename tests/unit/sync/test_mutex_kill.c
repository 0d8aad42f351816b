// SPDX-License-Identifier: MIT
/*
 * test_mutex_kill.c — ferry_mutex when lockers die (kill -9) anywhere, in both modes:
 *  - kill at any point: two children lock and unlock in a loop, keeping an in-section
 *    flag; one is killed after a random delay. The parent's lock then returns 0 with the
 *    flag clear, or -EOWNERDEAD (the flag may be set): never a hang, never a held lock
 *    that nobody owns. Each round is bounded (lock within 2 s).
 *  - kill -9 of a waiter: the other waiters still get the lock (no lost wake-up), also
 *    when the waiter is killed right as the lock is released (it may be the one woken).
 *  - fair mode: a dead ticket holder (served or still queued) and a waiter that timed
 *    out do not stall the queue.
 * Owner death and not-recoverable: test_mutex_robust.c.
 */
#include "mutex_testutil.h"

static uint32_t mode;

typedef struct shared {
    volatile int in_cs;   /* set while a child is inside */
    volatile int counter; /* incremented inside */
    _Atomic int done[8];  /* waiters: got the lock */
    _Atomic int64_t at[8];
} shared;

/* ------------------------------------------------------------ kill at any point */

typedef struct loop_arg {
    ferry_mutex *m;
    shared *sh;
} loop_arg;

static void looper_main(void *p)
{
    loop_arg *a = p;
    for (;;) {
        int rc = ferry_mutex_lock(a->m, 10 * SEC);
        if (rc == -EOWNERDEAD) {
            a->sh->in_cs = 0;
            CHECK_EQ(ferry_mutex_consistent(a->m), 0);
        } else if (rc != 0) {
            fprintf(stderr, "looper: lock %d\n", rc);
            _exit(1);
        }
        CHECK_EQ(a->sh->in_cs, 0);
        a->sh->in_cs = 1;
        a->sh->counter++;
        a->sh->in_cs = 0;
        CHECK_EQ(ferry_mutex_unlock(a->m), 0);
    }
}

/* Lock within 2 s as the (sole) repairer: returns how it went. */
static int lock_and_check(ferry_mutex *m, shared *sh)
{
    int64_t t0 = now_ns();
    int rc = ferry_mutex_lock(m, 2 * SEC);
    if (rc != 0 && rc != -EOWNERDEAD)
        fprintf(stderr, "lock after a kill: %d after %.1f ms\n", rc, (now_ns() - t0) / 1e6);
    CHECK(rc == 0 || rc == -EOWNERDEAD);
    if (rc == 0) CHECK_EQ(sh->in_cs, 0); /* a clean hand-over: nobody was inside */
    if (rc == -EOWNERDEAD) {
        sh->in_cs = 0;
        CHECK_EQ(ferry_mutex_consistent(m), 0);
    }
    return rc;
}

static void case_kill_anywhere(void)
{
    int fds = fd_count();
    shared *sh = shared_alloc(sizeof *sh);
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    unsigned seed = (unsigned)getpid() ^ (unsigned)now_ns();
    printf("    seed %u\n", seed);
    int dead_owner = 0, clean = 0;
    loop_arg a = {m, sh};
    for (int round = 0; round < 200; round++) {
        pid_t p1 = spawn(looper_main, &a), p2 = spawn(looper_main, &a);
        struct timespec ts = {0, (long)(rand_r(&seed) % 3000) * 1000};
        nanosleep(&ts, NULL);
        kill(p1, SIGKILL);
        waitpid(p1, NULL, 0);
        /* The other keeps going meanwhile: we compete with it. */
        int rc = lock_and_check(m, sh);
        dead_owner += rc == -EOWNERDEAD;
        clean += rc == 0;
        CHECK_EQ(ferry_mutex_unlock(m), 0);
        kill(p2, SIGKILL);
        waitpid(p2, NULL, 0);
        rc = lock_and_check(m, sh);
        dead_owner += rc == -EOWNERDEAD;
        clean += rc == 0;
        CHECK_EQ(ferry_mutex_unlock(m), 0);
    }
    printf("    400 kills: %d while holding (-EOWNERDEAD), %d elsewhere; %d sections done\n",
           dead_owner, clean, sh->counter);
    ferry_mutex_close(m);
    munmap(sh, sizeof *sh);
    CHECK_EQ(fd_count(), fds);
}

/* ------------------------------------------------------------ kill -9 of a waiter */

typedef struct waiter_arg {
    ferry_mutex *m;
    shared *sh;
    int idx;
} waiter_arg;

static void waiter_main(void *p)
{
    waiter_arg *a = p;
    int rc = ferry_mutex_lock(a->m, 10 * SEC);
    if (rc == -EOWNERDEAD) rc = ferry_mutex_consistent(a->m); /* a victim died holding it */
    CHECK_EQ(rc, 0);
    atomic_store(&a->sh->at[a->idx], now_ns());
    atomic_store(&a->sh->done[a->idx], 1);
    CHECK_EQ(ferry_mutex_unlock(a->m), 0);
}

/* Hold m, queue n waiters, kill waiter `victim` (before the unlock, or right after it
 * when late), unlock: the others must all get the lock. Returns the time from the unlock
 * until the last of them had it. */
static int64_t waiter_round(ferry_mutex *m, shared *sh, int n, int victim, int late)
{
    memset(sh, 0, sizeof *sh);
    CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), 0);
    waiter_arg wa[8];
    pid_t pids[8];
    for (int i = 0; i < n; i++) {
        wa[i] = (waiter_arg){m, sh, i};
        pids[i] = spawn(waiter_main, &wa[i]);
        sleep_ms(5); /* queue in order */
    }
    sleep_ms(30); /* all asleep */
    if (!late) {
        kill(pids[victim], SIGKILL);
        waitpid(pids[victim], NULL, 0);
    }
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    if (late) {
        kill(pids[victim], SIGKILL);
        waitpid(pids[victim], NULL, 0);
    }
    for (int i = 0; i < n; i++)
        if (i != victim) wait_ok(pids[i]);
    int64_t last = 0;
    for (int i = 0; i < n; i++) {
        if (i == victim) continue;
        CHECK(atomic_load(&sh->done[i]));
        int64_t d = atomic_load(&sh->at[i]) - t0;
        if (d > last) last = d;
    }
    int rc = ferry_mutex_lock(m, 2 * SEC); /* the victim may have died holding it */
    CHECK(rc == 0 || rc == -EOWNERDEAD);
    if (rc == -EOWNERDEAD) CHECK_EQ(ferry_mutex_consistent(m), 0);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    return last;
}

static void case_waiter_death(void)
{
    int fds = fd_count();
    shared *sh = shared_alloc(sizeof *sh);
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    int64_t worst = 0;
    for (int victim = 0; victim < 3; victim++) {
        int64_t t = waiter_round(m, sh, 3, victim, 0);
        if (t > worst) worst = t;
    }
    for (int round = 0; round < 30; round++) {
        int64_t t = waiter_round(m, sh, 3, round % 3, 1);
        if (t > worst) worst = t;
    }
    printf("    the other waiters all had the lock within %.1f ms of the unlock\n", worst / 1e6);
    CHECK(worst < 2 * SEC);
    ferry_mutex_close(m);
    munmap(sh, sizeof *sh);
    CHECK_EQ(fd_count(), fds);
}

/* ------------------------------------------------------------ fair: departed tickets */

static void timed_main(void *p)
{
    waiter_arg *a = p;
    CHECK_EQ(ferry_mutex_lock(a->m, 100 * MS), -ETIMEDOUT);
}

static void case_fair_departed(void)
{
    int fds = fd_count();
    shared *sh = shared_alloc(sizeof *sh);
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(FERRY_MUTEX_FAIR, &m), 0);
    /* A timed-out waiter in the middle of the queue: skipped at once. */
    CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), 0);
    waiter_arg w0 = {m, sh, 0}, w1 = {m, sh, 1}, w2 = {m, sh, 2};
    pid_t a = spawn(waiter_main, &w0); /* served next: waits on the robust mutex */
    sleep_ms(20);
    pid_t b = spawn(timed_main, &w1); /* gives up after 100 ms */
    sleep_ms(20);
    pid_t c = spawn(waiter_main, &w2);
    wait_ok(b);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    wait_ok(a);
    wait_ok(c);
    int64_t gone = atomic_load(&sh->at[2]) - t0;
    /* Dead ticket holders: one served (waiting on the robust mutex), one still queued. */
    memset(sh, 0, sizeof *sh);
    CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), 0);
    waiter_arg v[4];
    pid_t p[4];
    for (int i = 0; i < 4; i++) {
        v[i] = (waiter_arg){m, sh, i};
        p[i] = spawn(waiter_main, &v[i]);
        sleep_ms(20);
    }
    kill(p[0], SIGKILL); /* served: next in line at the robust mutex */
    kill(p[2], SIGKILL); /* queued */
    waitpid(p[0], NULL, 0);
    waitpid(p[2], NULL, 0);
    t0 = now_ns();
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    wait_ok(p[1]);
    wait_ok(p[3]);
    int64_t dead = atomic_load(&sh->at[3]) - t0;
    CHECK(atomic_load(&sh->at[1]) < atomic_load(&sh->at[3])); /* still in order */
    printf("    past a timed-out ticket in %.2f ms, past two dead ones in %.1f ms\n", gone / 1e6,
           dead / 1e6);
    CHECK(gone < SEC);
    CHECK(dead < 2 * SEC);
    for (int i = 0; i < 1000; i++) { /* and nothing is left behind */
        CHECK_EQ(ferry_mutex_trylock(m), 0);
        CHECK_EQ(ferry_mutex_unlock(m), 0);
    }
    ferry_mutex_close(m);
    munmap(sh, sizeof *sh);
    CHECK_EQ(fd_count(), fds);
}

int main(void)
{
    const uint32_t modes[] = {0, FERRY_MUTEX_FAIR};
    for (int i = 0; i < 2; i++) {
        mode = modes[i];
        printf("test_mutex_kill: mode %s\n", mode ? "fair" : "plain");
        run_case("kill at any point", case_kill_anywhere, 60);
        run_case("kill -9 of a waiter", case_waiter_death, 30);
    }
    run_case("fair: departed tickets", case_fair_departed, 20);
    printf("test_mutex_kill: ok\n");
    return 0;
}
