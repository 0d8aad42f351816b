// SPDX-License-Identifier: MIT
/*
 * test_sem_waiters.c — ferry_sem_waiters: 0 with nobody waiting, the number of callers
 * blocked in ferry_sem_wait (threads and another process, with and without
 * FERRY_SEM_UNDO), back to 0 once they got their units or timed out; -EINVAL for NULL;
 * a count a hostile sharer wrote into the object is returned as written up to 4194304
 * (PID_MAX_LIMIT) and clamped there. Each case in its own process, no descriptor left.
 */
#include "testutil.h"

#include <ferry/ferry.h>

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MS ((int64_t)1000 * 1000)
/* sem.c's layout: the 16-byte object header, flags, nslots, value (at 24), waiters (28). */
#define WAITERS_OFF 28

static void run(const char *name, void (*fn)(void))
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int before = fd_count();
        fn();
        CHECK_EQ(fd_count(), before);
        _exit(0);
    }
    wait_ok(pid);
    printf("ok %s\n", name);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait (at most 10 s) until ferry_sem_waiters(s) == n. */
static void until_waiters(ferry_sem *s, int n)
{
    for (int i = 0; ferry_sem_waiters(s) != n; i++) {
        CHECK(i < 1000);
        sleep_ms(10);
    }
}

static void *waiter(void *arg)
{
    return (void *)(intptr_t)ferry_sem_wait(arg, 20000 * MS);
}

static void t_errors(void)
{
    CHECK_EQ(ferry_sem_waiters(NULL), -EINVAL);
}

static void t_threads(void)
{
    for (uint32_t flags = 0; flags <= FERRY_SEM_UNDO; flags++) {
        ferry_sem *s;
        CHECK_EQ(ferry_sem_create(0, flags, &s), 0);
        CHECK_EQ(ferry_sem_waiters(s), 0);
        pthread_t t[3];
        for (int i = 0; i < 3; i++) {
            CHECK_EQ(pthread_create(&t[i], NULL, waiter, s), 0);
            until_waiters(s, i + 1);
        }
        CHECK_EQ(ferry_sem_value(s), 0);
        for (int i = 0; i < 3; i++) {
            CHECK_EQ(ferry_sem_post(s), 0);
            until_waiters(s, 2 - i);
        }
        for (int i = 0; i < 3; i++) {
            void *rc;
            CHECK_EQ(pthread_join(t[i], &rc), 0);
            CHECK_EQ((intptr_t)rc, 0);
        }
        CHECK_EQ(ferry_sem_waiters(s), 0);
        /* a wait that times out is no waiter after it */
        CHECK_EQ(ferry_sem_wait(s, 30 * MS), -ETIMEDOUT);
        CHECK_EQ(ferry_sem_waiters(s), 0);
        CHECK_EQ(ferry_sem_wait(s, FERRY_NOW), -EAGAIN); /* never registers */
        CHECK_EQ(ferry_sem_waiters(s), 0);
        ferry_sem_close(s);
    }
}

/* A waiter in another process is counted from this one (shared state). */
static void t_process(void)
{
    ferry_sem *s;
    CHECK_EQ(ferry_sem_create(0, 0, &s), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(ferry_sem_wait(s, 20000 * MS) == 0 ? 0 : 1);
    until_waiters(s, 1);
    CHECK_EQ(ferry_sem_post(s), 0);
    wait_ok(pid);
    CHECK_EQ(ferry_sem_waiters(s), 0);
    ferry_sem_close(s);
}

/* The count is shared memory: what a sharer writes is what it says, within 0..2^22. */
static void t_hostile(void)
{
    ferry_sem *s;
    CHECK_EQ(ferry_sem_create(0, 0, &s), 0);
    uint8_t *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ferry_sem_fd(s), 0);
    CHECK(m != MAP_FAILED);
    /* the offset is right: a blocked waiter shows there */
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, waiter, s), 0);
    until_waiters(s, 1);
    uint32_t w;
    memcpy(&w, m + WAITERS_OFF, 4);
    CHECK_EQ(w, 1);
    CHECK_EQ(ferry_sem_post(s), 0);
    void *rc;
    CHECK_EQ(pthread_join(t, &rc), 0);
    CHECK_EQ((intptr_t)rc, 0);
    static const uint32_t vals[][2] = {{7, 7},
                                       {1u << 22, 1u << 22},
                                       {(1u << 22) + 1, 1u << 22},
                                       {INT32_MAX, 1u << 22},
                                       {(uint32_t)INT32_MAX + 1, 1u << 22},
                                       {UINT32_MAX, 1u << 22},
                                       {0, 0}};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        __atomic_store_n((uint32_t *)(m + WAITERS_OFF), vals[i][0], __ATOMIC_RELAXED);
        CHECK_EQ(ferry_sem_waiters(s), (int)vals[i][1]);
    }
    munmap(m, 4096);
    ferry_sem_close(s);
}

int main(void)
{
    run("errors", t_errors);
    run("threads", t_threads);
    run("process", t_process);
    run("hostile", t_hostile);
    return 0;
}
