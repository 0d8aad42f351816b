// SPDX-License-Identifier: MIT
/*
 * mutex_testutil.h — helpers for the ferry_mutex tests (test_mutex*.c).
 *
 *  - now_ns(): CLOCK_MONOTONIC in ns. sleep_ms() comes from brokerutil.h.
 *  - run_case(): every case runs in its own forked process with a watchdog (alarm), so
 *    a hang fails with the case's name and a failed CHECK fails only that case; the fd
 *    count of the case's process is compared before/after by the case itself.
 *  - spawn(): a child process (dies with its parent: PR_SET_PDEATHSIG) running fn(arg);
 *    its exit status is its verdict (wait_ok()).
 *  - shared_alloc(): MAP_SHARED anonymous memory for results across fork.
 *  - ctl pipes: put_byte()/get_byte() — bounded (5 s) one-byte hand-shakes between
 *    processes that never go through the object under test.
 *  - holder: hold_start() forks a process that locks m, says so, and unlocks when told
 *    (hold_release) — a lock held by another process, for as long as the test wants.
 */
#ifndef FERRY_MUTEX_TESTUTIL_H
#define FERRY_MUTEX_TESTUTIL_H

#include "testutil.h" /* first: _GNU_SOURCE */

#include "brokerutil.h"

#include <ferry/ferry.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#define MS  (1000000LL)
#define SEC (1000000000LL)

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static const char *volatile case_name = "?";
static void on_alarm(int sig)
{
    (void)sig;
    char buf[200];
    int n =
        snprintf(buf, sizeof buf, "WATCHDOG: pid %d hung in case %s\n", (int)getpid(), case_name);
    if (n > 0 && write(2, buf, (size_t)n) < 0) _exit(4);
    _exit(3);
}

static inline void watchdog(unsigned seconds)
{
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

static inline pid_t spawn(void (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fn(arg);
        _exit(0);
    }
    return pid;
}

static inline void run_case(const char *name, void (*fn)(void), unsigned seconds)
{
    int64_t t0 = now_ns();
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        case_name = name;
        watchdog(seconds);
        fn();
        exit(0);
    }
    wait_ok(pid);
    printf("  %-40s ok (%.0f ms)\n", name, (double)(now_ns() - t0) / 1e6);
    fflush(stdout);
}

static inline void *shared_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    return p;
}

static inline void put_byte(int fd, char c)
{
    CHECK(write(fd, &c, 1) == 1);
}

/* A byte from fd within ms milliseconds; -1 on EOF. */
static inline int get_byte_ms(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t end = now_ns() + ms * MS;
    for (;;) {
        int left = (int)((end - now_ns()) / MS);
        if (left < 0) left = 0;
        int r = poll(&p, 1, left);
        if (r < 0 && errno == EINTR) continue;
        CHECK(r == 1);
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR) continue;
        return n == 1 ? (unsigned char)c : -1;
    }
}

static inline int get_byte(int fd)
{
    return get_byte_ms(fd, 5000);
}

/* A process that holds m until told to let go. */
typedef struct holder {
    ferry_mutex *m;
    pid_t pid;
    int up[2];   /* child -> parent: 'L' once locked */
    int down[2]; /* parent -> child: any byte (or EOF) = unlock and exit */
} holder;

static void holder_main(void *arg)
{
    holder *h = arg;
    close(h->up[0]);
    close(h->down[1]);
    int rc = ferry_mutex_lock(h->m, 5 * SEC);
    if (rc != 0 && rc != -EOWNERDEAD) {
        fprintf(stderr, "holder: lock %d\n", rc);
        _exit(1);
    }
    if (rc == -EOWNERDEAD) CHECK_EQ(ferry_mutex_consistent(h->m), 0);
    put_byte(h->up[1], 'L');
    get_byte_ms(h->down[0], 20000);
    CHECK_EQ(ferry_mutex_unlock(h->m), 0);
    _exit(0);
}

static inline void hold_start(holder *h, ferry_mutex *m)
{
    h->m = m;
    CHECK(pipe2(h->up, O_CLOEXEC) == 0);
    CHECK(pipe2(h->down, O_CLOEXEC) == 0);
    h->pid = spawn(holder_main, h);
    close(h->up[1]);
    close(h->down[0]);
    CHECK_EQ(get_byte(h->up[0]), 'L');
}

static inline void hold_release(holder *h)
{
    put_byte(h->down[1], 'U');
    wait_ok(h->pid);
    close(h->up[0]);
    close(h->down[1]);
}

#endif
