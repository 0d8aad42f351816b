// SPDX-License-Identifier: MIT
/*
 * test_mutex_robust.c — ferry_mutex when its owner dies (kill -9), in both modes:
 *  - owner death, 1,000 rounds: a child locks, says so through a pipe and is killed; the
 *    next locker gets -EOWNERDEAD, holds the lock, finds the child's half-done state,
 *    repairs it, calls ferry_mutex_consistent and unlocks. Every other round the locker
 *    is already blocked in ferry_mutex_lock when the owner dies (the kernel's robust
 *    wake-up must reach it at once).
 *  - not recoverable: unlocking after -EOWNERDEAD without ferry_mutex_consistent gives
 *    -ENOTRECOVERABLE to everyone afterwards (lock, trylock, FERRY_NOW, a waiter that
 *    was already blocked, another process).
 *  - a thread that exits holding it (its process lives on): the next locker, in the same
 *    process and in another one, gets -EOWNERDEAD (fair mode: its plock names the thread,
 *    not the process, so a thread's death is noticed as the kernel's robust list does).
 * Deaths at random points and of waiters: test_mutex_kill.c.
 */
#include "mutex_testutil.h"

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static uint32_t mode;

typedef struct shared {
    volatile int in_cs;   /* set while a child is inside */
    volatile int counter; /* incremented inside */
    _Atomic int done[8];  /* waiters: got the lock */
    _Atomic int64_t at[8];
} shared;

/* ------------------------------------------------------------ owner death rounds */

typedef struct owner_arg {
    ferry_mutex *m;
    shared *sh;
    int up[2];
} owner_arg;

static void owner_main(void *p)
{
    owner_arg *a = p;
    close(a->up[0]);
    int rc = ferry_mutex_lock(a->m, 5 * SEC);
    if (rc == -EOWNERDEAD) rc = ferry_mutex_consistent(a->m);
    CHECK_EQ(rc, 0);
    a->sh->in_cs = 1; /* half-done work */
    put_byte(a->up[1], 'L');
    for (;;) pause(); /* killed here */
}

typedef struct killer {
    pid_t pid;
    int delay_us;
} killer;

static void *killer_thread(void *p)
{
    killer *k = p;
    struct timespec ts = {0, (long)k->delay_us * 1000};
    nanosleep(&ts, NULL);
    kill(k->pid, SIGKILL);
    return NULL;
}

static void case_owner_death(void)
{
    int fds = fd_count();
    shared *sh = shared_alloc(sizeof *sh);
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    int64_t worst = 0;
    for (int round = 0; round < 1000; round++) {
        owner_arg a = {m, sh, {-1, -1}};
        CHECK(pipe2(a.up, O_CLOEXEC) == 0);
        pid_t pid = spawn(owner_main, &a);
        close(a.up[1]);
        CHECK_EQ(get_byte(a.up[0]), 'L');
        close(a.up[0]);
        int64_t t0;
        int rc;
        if (round & 1) {
            /* Blocked first, then the owner dies. */
            killer k = {pid, 1000};
            pthread_t t;
            CHECK(pthread_create(&t, NULL, killer_thread, &k) == 0);
            t0 = now_ns();
            rc = ferry_mutex_lock(m, 5 * SEC);
            CHECK(pthread_join(t, NULL) == 0);
            waitpid(pid, NULL, 0);
        } else {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            t0 = now_ns();
            rc = ferry_mutex_lock(m, 5 * SEC);
        }
        int64_t el = now_ns() - t0;
        if (el > worst) worst = el;
        if (rc != -EOWNERDEAD) fprintf(stderr, "round %d: lock %d\n", round, rc);
        CHECK_EQ(rc, -EOWNERDEAD);
        CHECK_EQ(sh->in_cs, 1); /* the dead owner's half-done state */
        sh->in_cs = 0;          /* repair */
        CHECK_EQ(ferry_mutex_consistent(m), 0);
        CHECK_EQ(ferry_mutex_consistent(m), -EINVAL);
        CHECK_EQ(ferry_mutex_unlock(m), 0);
        CHECK_EQ(ferry_mutex_trylock(m), 0); /* usable as before */
        CHECK_EQ(ferry_mutex_unlock(m), 0);
    }
    printf("    1000 owner deaths, slowest lock after a death %.2f ms\n", worst / 1e6);
    ferry_mutex_close(m);
    munmap(sh, sizeof *sh);
    CHECK_EQ(fd_count(), fds);
}

/* ------------------------------------------------------------ not recoverable */

static void notrec_waiter(void *p)
{
    ferry_mutex *m = p;
    CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), -ENOTRECOVERABLE);
}

static void notrec_other(void *p)
{
    ferry_mutex *m = p;
    CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), -ENOTRECOVERABLE);
    CHECK_EQ(ferry_mutex_trylock(m), -ENOTRECOVERABLE);
}

static void case_not_recoverable(void)
{
    int fds = fd_count();
    shared *sh = shared_alloc(sizeof *sh);
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    owner_arg a = {m, sh, {-1, -1}};
    CHECK(pipe2(a.up, O_CLOEXEC) == 0);
    pid_t pid = spawn(owner_main, &a);
    close(a.up[1]);
    CHECK_EQ(get_byte(a.up[0]), 'L');
    close(a.up[0]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), -EOWNERDEAD);
    pid_t w = spawn(notrec_waiter, m); /* blocks behind us */
    sleep_ms(100);
    CHECK_EQ(ferry_mutex_unlock(m), 0); /* without ferry_mutex_consistent */
    wait_ok(w);
    CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), -ENOTRECOVERABLE);
    CHECK_EQ(ferry_mutex_lock(m, FERRY_NOW), -ENOTRECOVERABLE);
    CHECK_EQ(ferry_mutex_lock(m, FERRY_FOREVER), -ENOTRECOVERABLE);
    CHECK_EQ(ferry_mutex_trylock(m), -ENOTRECOVERABLE);
    CHECK_EQ(ferry_mutex_consistent(m), -EINVAL);
    CHECK_EQ(ferry_mutex_unlock(m), -EPERM);
    wait_ok(spawn(notrec_other, m));
    ferry_mutex_close(m);
    munmap(sh, sizeof *sh);
    CHECK_EQ(fd_count(), fds);
}

/* ------------------------------------------------------------ a thread exits holding */

static void *lock_and_exit(void *p)
{
    ferry_mutex *m = p;
    int rc = ferry_mutex_lock(m, 5 * SEC);
    CHECK(rc == 0 || rc == -EOWNERDEAD);
    return NULL; /* exits holding it */
}

static void other_process_locks(void *p)
{
    ferry_mutex *m = p;
    CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), -EOWNERDEAD);
    CHECK_EQ(ferry_mutex_consistent(m), 0);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
}

static void case_thread_exit(void)
{
#ifdef UNDER_TSAN
    /* TSan keeps a pthread mutex held by a thread that exited (it does not model the
     * kernel's robust list): the plain mode's next trylock is a "double lock" to it. */
    if (!(mode & FERRY_MUTEX_FAIR)) return;
#endif
    int fds = fd_count();
    ferry_mutex *m;
    CHECK_EQ(ferry_mutex_create(mode, &m), 0);
    for (int round = 0; round < 2; round++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, lock_and_exit, m) == 0);
        CHECK(pthread_join(t, NULL) == 0);
        if (round == 0) {
            CHECK_EQ(ferry_mutex_lock(m, 5 * SEC), -EOWNERDEAD);
            CHECK_EQ(ferry_mutex_consistent(m), 0);
            CHECK_EQ(ferry_mutex_unlock(m), 0);
        } else {
            wait_ok(spawn(other_process_locks, m));
        }
    }
    CHECK_EQ(ferry_mutex_trylock(m), 0);
    CHECK_EQ(ferry_mutex_unlock(m), 0);
    ferry_mutex_close(m);
    CHECK_EQ(fd_count(), fds);
}

int main(void)
{
    const uint32_t modes[] = {0, FERRY_MUTEX_FAIR};
    for (int i = 0; i < 2; i++) {
        mode = modes[i];
        printf("test_mutex_robust: mode %s\n", mode ? "fair" : "plain");
        run_case("owner death x1000", case_owner_death, 60);
        run_case("not recoverable", case_not_recoverable, 20);
        run_case("a thread exits holding it", case_thread_exit, 20);
    }
    printf("test_mutex_robust: ok\n");
    return 0;
}
