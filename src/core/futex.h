// SPDX-License-Identifier: MIT
/*
 * futex.h — the two futex calls of every object that sleeps on a word in shared memory
 * (the shm rings, semaphores, barriers, event queues, mailboxes, broadcast rings).
 *
 * Rules: the words live in memfd mappings shared between processes, so these are the
 * shared futex operations (never FUTEX_PRIVATE_FLAG). A wait sleeps only while *w still
 * equals val (the kernel checks, atomically with queueing us), for at most ns
 * (INT64_MAX: no bound); it returns 0 when woken, or -EAGAIN (the word had changed),
 * -ETIMEDOUT, -EINTR — callers re-check their condition in every case. Files that use
 * this define _GNU_SOURCE (syscall()).
 */
#ifndef FERRY_CORE_FUTEX_H
#define FERRY_CORE_FUTEX_H

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline int ferry__futex_wait(_Atomic uint32_t *w, uint32_t val, int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    long r =
        syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, val, ns == INT64_MAX ? NULL : &ts, NULL, 0);
    return r < 0 ? -errno : 0;
}

/* Wake up to n sleepers on w (INT32_MAX: all). */
static inline void ferry__futex_wake(_Atomic uint32_t *w, int n)
{
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, n, NULL, NULL, 0);
}

#endif
