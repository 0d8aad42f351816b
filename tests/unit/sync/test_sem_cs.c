// SPDX-License-Identifier: MIT
/*
 * test_sem_cs.c — a binary ferry_sem as the lock of a critical section, checked against
 * the rules of one:
 *  - mutual exclusion: 2 processes x 4 threads add to a shared counter with a plain
 *    (non-atomic) read-modify-write under the semaphore; the total is exact, and nobody
 *    ever finds someone else inside;
 *  - progress: with no holder, a trywait succeeds at once, every time;
 *  - no busy waiting: a caller blocked for 1 s uses under 1% of a CPU.
 * With and without FERRY_SEM_UNDO. Each case runs in its own process.
 */
#include "testutil.h"

#include <ferry/ferry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#define SEC     ((int64_t)1000000000)
#define PROCS   2
#define THREADS 4
#ifndef ITERS
#define ITERS 20000
#endif

static void run(const char *name, void (*fn)(uint32_t), uint32_t flags)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int before = fd_count();
        fn(flags);
        CHECK_EQ(fd_count(), before);
        _exit(0);
    }
    wait_ok(pid);
    printf("ok %s%s\n", name, flags ? " (undo)" : "");
}

typedef struct shared {
    long counter;       /* plain: only the semaphore protects it */
    _Atomic int inside; /* how many are in the critical section: must stay <= 1 */
    _Atomic int violations;
} shared;

static ferry_sem *g_sem;
static shared *g_sh;

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        CHECK_EQ(ferry_sem_wait(g_sem, 10 * SEC), 0);
        if (atomic_fetch_add_explicit(&g_sh->inside, 1, memory_order_relaxed) != 0)
            atomic_fetch_add_explicit(&g_sh->violations, 1, memory_order_relaxed);
        volatile long *c = &g_sh->counter;
        long v = *c;
        *c = v + 1;
        atomic_fetch_sub_explicit(&g_sh->inside, 1, memory_order_relaxed);
        CHECK_EQ(ferry_sem_post(g_sem), 0);
    }
    return NULL;
}

static void t_exclusion(uint32_t flags)
{
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(g_sh != MAP_FAILED);
    CHECK_EQ(ferry_sem_create(1, flags, &g_sem), 0);
    pid_t kids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        kids[p] = fork();
        CHECK(kids[p] >= 0);
        if (kids[p] == 0) {
            pthread_t t[THREADS];
            for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0);
            for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) wait_ok(kids[p]);
    CHECK_EQ(g_sh->counter, (long)PROCS * THREADS * ITERS);
    CHECK_EQ(g_sh->violations, 0);
    CHECK_EQ(ferry_sem_value(g_sem), 1);
    ferry_sem_close(g_sem);
    munmap(g_sh, sizeof *g_sh);
}

static void t_progress(uint32_t flags)
{
    ferry_sem *s;
    CHECK_EQ(ferry_sem_create(1, flags, &s), 0);
    for (int i = 0; i < 200000; i++) {
        CHECK_EQ(ferry_sem_trywait(s), 0);
        CHECK_EQ(ferry_sem_post(s), 0);
    }
    /* Also after a holder of another process came and went. */
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            CHECK_EQ(ferry_sem_trywait(s), 0);
            CHECK_EQ(ferry_sem_post(s), 0);
            _exit(0);
        }
        wait_ok(pid);
        CHECK_EQ(ferry_sem_trywait(s), 0);
        CHECK_EQ(ferry_sem_post(s), 0);
    }
    CHECK_EQ(ferry_sem_value(s), 1);
    ferry_sem_close(s);
}

static int64_t tv_ns(struct timeval tv)
{
    return (int64_t)tv.tv_sec * SEC + (int64_t)tv.tv_usec * 1000;
}

static void t_no_busy_wait(uint32_t flags)
{
    ferry_sem *s;
    CHECK_EQ(ferry_sem_create(0, flags, &s), 0);
    /* With UNDO, a live holder in the table makes the waiter's scans look at it. */
    pid_t holder = -1;
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    if (flags) {
        CHECK_EQ(ferry_sem_post(s), 0);
        holder = fork();
        CHECK(holder >= 0);
        if (holder == 0) {
            CHECK_EQ(ferry_sem_wait(s, FERRY_NOW), 0);
            close(pfd[1]);
            char c = 0;
            CHECK(read(pfd[0], &c, 1) == 0); /* until the parent closes its end */
            _exit(0);
        }
        for (int i = 0; i < 500 && ferry_sem_value(s) != 0; i++) usleep(2000);
        CHECK_EQ(ferry_sem_value(s), 0);
    }
    close(pfd[0]);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct timespec t0, t1;
        struct rusage r0, r1;
        CHECK(getrusage(RUSAGE_THREAD, &r0) == 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_EQ(ferry_sem_wait(s, SEC), -ETIMEDOUT);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        CHECK(getrusage(RUSAGE_THREAD, &r1) == 0);
        int64_t dt = (t1.tv_sec - t0.tv_sec) * SEC + (t1.tv_nsec - t0.tv_nsec);
        CHECK(dt >= SEC && dt < 2 * SEC);
        int64_t cpu =
            tv_ns(r1.ru_utime) + tv_ns(r1.ru_stime) - tv_ns(r0.ru_utime) - tv_ns(r0.ru_stime);
        printf("  cpu of a 1 s wait: %lld us\n", (long long)(cpu / 1000));
        CHECK(cpu < SEC / 100);
        _exit(0);
    }
    wait_ok(pid);
    close(pfd[1]);
    if (holder > 0) wait_ok(holder);
    ferry_sem_close(s);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    for (uint32_t flags = 0; flags <= FERRY_SEM_UNDO; flags++) {
        run("mutual_exclusion", t_exclusion, flags);
        run("progress", t_progress, flags);
        run("no_busy_waiting", t_no_busy_wait, flags);
    }
    return 0;
}
