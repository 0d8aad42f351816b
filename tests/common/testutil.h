// SPDX-License-Identifier: MIT
/*
 * testutil.h — tiny assertion helpers for ferry tests. A failed check prints where and
 * what, and exits 1 (so a forked child's failure shows in its exit status).
 * fd_count() counts this process's open descriptors, for leak checks:
 *   int before = fd_count(); ...; CHECK_EQ(fd_count(), before);
 * except the one the library keeps for the process's lifetime once a shm channel end has
 * slept (its link watcher's epoll set: src/shm/watch.h), which is not a leak.
 * sched_wait_ns() is how long a task has waited runnable for a CPU, for time bounds that
 * must not fail when the machine, not the code under test, was slow (see there).
 */
#ifndef FERRY_TESTUTIL_H
#define FERRY_TESTUTIL_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                                        \
        if (_a != _b) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", __FILE__,          \
                    __LINE__, #a, _a, #b, _b);                                                     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

int ferry__watch_fd(void); /* src/shm/watch.h (ferry_test_static) */

static inline int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0, watch = ferry__watch_fd();
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && atoi(e->d_name) != watch) n++;
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

/* The run-queue wait so far (ns) of the calling thread (pid 0) or of process pid's main
 * thread (a zombie not yet reaped included): the time it was runnable but not running, the
 * second field of /proc/.../schedstat; -1 when unreadable. A time bound on a product
 * promise ("-EPIPE within 100 ms of the death") adds to the bound the wait of the tasks
 * that had to run within the measured window (the difference of two readings): what the
 * machine's load cost, not the code under test. Print the raw figure and the allowance. */
static inline int64_t sched_wait_ns(pid_t pid)
{
    char path[64];
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    else
        snprintf(path, sizeof path, "/proc/thread-self/schedstat");
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    unsigned long long run = 0, wait = 0;
    int n = fscanf(f, "%llu %llu", &run, &wait);
    fclose(f);
    return n == 2 ? (int64_t)wait : -1;
}

/* The wait between two sched_wait_ns() readings, 0 if either failed. */
static inline int64_t sched_wait_delta(int64_t before, int64_t after)
{
    return before >= 0 && after >= before ? after - before : 0;
}

/* Wait for pid and require that it exited with status 0. */
static inline void wait_ok(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "child %d failed: status 0x%x\n", (int)pid, st);
        exit(1);
    }
}

#endif
