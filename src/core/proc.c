// SPDX-License-Identifier: MIT
/*
 * proc.c — process identity and death, for objects shared in memory (see proc.h).
 */
#define _GNU_SOURCE /* syscall() (pidfd_open), hidden by -std=c11 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define PID_BITS   22
#define PID_MASK   ((UINT64_C(1) << PID_BITS) - 1)
#define START_MASK ((UINT64_C(1) << 41) - 1)

static _Atomic uint64_t my_id; /* 0: not read yet in this process */
static _Atomic uint64_t my_ns; /* written before my_id (release), read after it (acquire) */

static void id_forked(void)
{
    atomic_store_explicit(&my_id, 0, memory_order_relaxed);
}

static void id_once(void)
{
    pthread_atfork(NULL, NULL, id_forked);
}

int ferry__proc_stat(pid_t pid, char *state, uint64_t *start)
{
    char path[40], buf[1024];
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    else
        snprintf(path, sizeof path, "/proc/self/stat");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT || errno == ESRCH ? -ENOENT : -EIO;
    ssize_t n;
    do n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0) return n == 0 || errno == ESRCH ? -ENOENT : -EIO;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold anything, ')' too */
    if (!p || p[1] != ' ') return -EIO;
    p += 2;
    *state = *p;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p) return -EIO;
        p++;
    }
    char *end;
    *start = strtoull(p, &end, 10);
    return end == p ? -EIO : 0;
}

static uint64_t ns_of_self(void)
{
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) < 0 || st.st_ino == 0) return 1; /* unknown: all alike */
    return (uint64_t)st.st_ino;
}

uint64_t ferry__proc_self(void)
{
    /* acquire: pairs with the release below, so a thread that sees the id sees my_ns.
     * The id itself is a value computed from the process alone; two threads racing
     * compute the same one. */
    uint64_t id = atomic_load_explicit(&my_id, memory_order_acquire);
    if (__builtin_expect(id != 0, 1)) return id;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, id_once);
    pid_t pid = getpid();
    char st;
    uint64_t start = 0;
    if (ferry__proc_stat(0, &st, &start) < 0) start = 0; /* no /proc: the pid only */
    /* pid & PID_MASK is the pid: Linux pids stay below PID_MAX_LIMIT, 2^22. */
    id = (start & START_MASK) << PID_BITS | ((uint64_t)pid & PID_MASK);
    atomic_store_explicit(&my_ns, ns_of_self(), memory_order_relaxed);
    atomic_store_explicit(&my_id, id, memory_order_release);
    return id;
}

uint64_t ferry__proc_ns(void)
{
    (void)ferry__proc_self(); /* makes my_ns (again in a fork child); acquire orders it */
    return atomic_load_explicit(&my_ns, memory_order_relaxed);
}

int ferry__proc_dead(uint64_t id)
{
    pid_t pid = (pid_t)(id & PID_MASK);
    uint64_t start = (id >> PID_BITS) & START_MASK;
    if (pid <= 0) return 1; /* not an identity anyone has: garbage */
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd < 0 && errno == ESRCH) return 1;
    char state = 0;
    uint64_t now_start = 0;
    int rc = ferry__proc_stat(pid, &state, &now_start);
    int dead = 0;
    if (rc == 0) {
        if (start != 0 && (now_start & START_MASK) != start) dead = 1; /* pid recycled */
    } else if (rc == -ENOENT && pfd < 0) {
        dead = kill(pid, 0) < 0 && errno == ESRCH; /* no pidfd (old kernel, EMFILE) */
    }
    if (!dead && pfd >= 0) {
        /* The pidfd was opened before the start time matched, so it is this process's; it
         * polls readable once the whole thread group has exited (a zombie included). */
        struct pollfd p = {.fd = pfd, .events = POLLIN};
        dead = poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
    } else if (!dead && rc == 0 && (state == 'Z' || state == 'X')) {
        dead = 1;
    }
    if (pfd >= 0) close(pfd);
    return dead;
}
