// SPDX-License-Identifier: MIT
/*
 * test_region_notify — change notification. ferry_region_wait: -EAGAIN (FERRY_NOW),
 * -ETIMEDOUT after its bound, -EINVAL for a bad timeout; a waiter in another process,
 * holding a read-only handle, is woken by ferry_region_notify within a generous bound
 * (2 s; it takes microseconds); a 1 s wait uses < 1 % of a CPU (getrusage). The poll
 * descriptor: not readable until a notify, readable after one (poll), quiet again after
 * ferry_region_poll_ack, idle without CPU, its own in a forked child, stopped by close.
 * 2000 notifies in a burst: a waiter that follows them never misses the last.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <time.h>

/* The fork-after-poll_fd case forks while this process runs its poll thread, and the
 * child starts its own: TSan refuses that by default (it cannot promise its own state in
 * such a child); this test's child only polls and exits. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}

#define MS ((int64_t)1000000)
#define S  ((int64_t)1000000000)

static int64_t now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * S + ts.tv_nsec;
}

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * S +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static int readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;
    do n = poll(&p, 1, ms);
    while (n < 0 && errno == EINTR);
    CHECK(n >= 0);
    return n == 1 && (p.revents & POLLIN);
}

int main(void)
{
    int fds0 = fd_count();
    ferry_region *r;
    CHECK_EQ(ferry_region_create(4096, NULL, &r), 0);
    CHECK_EQ(ferry_region_wait(r, 0, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_region_wait(r, 0, -2), -EINVAL);
    CHECK_EQ(ferry_region_wait(NULL, 0, 0), -EINVAL);
    CHECK_EQ(ferry_region_wait(r, 5, FERRY_NOW), 0); /* differs already */
    int64_t t0 = now();
    CHECK_EQ(ferry_region_wait(r, 0, 50 * MS), -ETIMEDOUT);
    CHECK(now() - t0 >= 50 * MS);
    _Atomic int64_t *stamp;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&stamp), 0);

    /* a read-only waiter in another process, and its CPU while it waits */
    int ro;
    CHECK_EQ(ferry_region_fd_readonly(r, &ro), 0);
    int ready[2];
    CHECK(pipe2(ready, O_CLOEXEC) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_region *c;
        CHECK_EQ(ferry_region_adopt(ro, &c), 0);
        CHECK_EQ(ferry_region_writable(c), 0);
        _Atomic int64_t *cs;
        CHECK_EQ(ferry_region_map(c, FERRY_REGION_READ, (void **)&cs), 0);
        int64_t c0 = cpu_ns(), w0 = now();
        CHECK_EQ(ferry_region_wait(c, 0, 1 * S), -ETIMEDOUT);
        int64_t busy = cpu_ns() - c0, wall = now() - w0;
        printf("1 s wait: %lld us of CPU in %lld ms\n", (long long)(busy / 1000),
               (long long)(wall / MS));
        fflush(stdout);
        CHECK(wall >= 1 * S);
        CHECK(busy < wall / 100); /* < 1 % */
        /* the poll descriptor idles without CPU too (its thread sleeps on the futex) */
        int pfd = ferry_region_poll_fd(c);
        CHECK(pfd >= 0);
        CHECK_EQ(ferry_region_poll_fd(c), pfd);
        c0 = cpu_ns();
        CHECK(!readable(pfd, 300));
        CHECK(cpu_ns() - c0 < 3 * MS);
        CHECK_EQ(write(ready[1], "r", 1), 1);
        CHECK_EQ(ferry_region_wait(c, 0, FERRY_FOREVER), 0);
        int64_t lat = now() - atomic_load(cs);
        printf("wake-up after notify: %lld us\n", (long long)(lat / 1000));
        fflush(stdout);
        CHECK(lat < 2 * S);
        CHECK_EQ(ferry_region_version(c), 1);
        CHECK(readable(pfd, 5000));
        CHECK_EQ(ferry_region_poll_ack(c), 0);
        CHECK(!readable(pfd, 0));
        /* the burst: follow the versions until the last */
        CHECK_EQ(write(ready[1], "b", 1), 1);
        uint64_t seen = 1;
        while (seen < 2001) {
            CHECK_EQ(ferry_region_wait(c, seen, 10 * S), 0);
            uint64_t v = ferry_region_version(c);
            CHECK(v > seen && v <= 2001);
            seen = v;
        }
        CHECK(readable(pfd, 5000));
        CHECK_EQ(ferry_region_poll_ack(c), 0);
        int64_t cl = now();
        ferry_region_close(c);
        CHECK(now() - cl < 1 * S); /* the poll thread stops at once */
        _exit(0);
    }
    close(ro);
    char b;
    CHECK_EQ(read(ready[0], &b, 1), 1);
    usleep(100 * 1000); /* let the child fall asleep */
    atomic_store(stamp, now());
    CHECK_EQ(ferry_region_notify(r), 0);
    CHECK_EQ(read(ready[0], &b, 1), 1);
    for (int i = 0; i < 2000; i++) CHECK_EQ(ferry_region_notify(r), 0);
    wait_ok(pid);
    CHECK_EQ(ferry_region_version(r), 2001);

    /* the poll descriptor in this process, and in a forked child: its own */
    CHECK_EQ(ferry_region_poll_ack(r), -EINVAL); /* none yet */
    int pfd = ferry_region_poll_fd(r);
    CHECK(pfd >= 0);
    CHECK(!readable(pfd, 0));
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int cfd = ferry_region_poll_fd(r);
        CHECK(cfd >= 0);
        CHECK(!readable(cfd, 0));
        CHECK_EQ(ferry_region_notify(r), 0);
        CHECK(readable(cfd, 5000));
        CHECK_EQ(ferry_region_poll_ack(r), 0);
        ferry_region_close(r);
        _exit(0);
    }
    wait_ok(pid);
    CHECK(readable(pfd, 5000)); /* the child's notify, seen by our thread; not stolen */
    CHECK_EQ(ferry_region_poll_ack(r), 0);
    CHECK(!readable(pfd, 0));
    CHECK_EQ(ferry_region_version(r), 2002);
    ferry_region_close(r);
    close(ready[0]), close(ready[1]);
    CHECK_EQ(fd_count(), fds0);
    puts("ok");
    return 0;
}
