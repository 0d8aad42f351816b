// SPDX-License-Identifier: MIT
/*
 * testutil.h — tiny assertion helpers for ferry tests. A failed check prints where and
 * what, and exits 1 (so a forked child's failure shows in its exit status).
 * fd_count() counts this process's open descriptors, for leak checks:
 *   int before = fd_count(); ...; CHECK_EQ(fd_count(), before);
 */
#ifndef FERRY_TESTUTIL_H
#define FERRY_TESTUTIL_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
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

static inline int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the DIR's own fd */
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
