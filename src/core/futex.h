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
 * this define _GNU_SOURCE (syscall(), where the instruction is not used inline).
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

/* The system call itself: -errno on failure. On x86-64 the instruction, inline, rather
 * than libc's syscall() (a call through the PLT into a libc page, and errno through
 * __errno_location): with more processes than CPUs every page a hand-off touches is a
 * TLB miss (performance.md, "What is left of the 64-pair gap"). FUTEX_WAIT and
 * FUTEX_WAKE read no argument after the timeout. The kernel clobbers rcx and r11, and
 * reads and writes the futex word (a "memory" clobber: no access moves across it). */
static inline long ferry__futex_call(uint32_t *uaddr, int op, uint32_t val,
                                     const struct timespec *ts)
{
#if defined(__x86_64__) && defined(__GNUC__)
    register long r10 __asm__("r10") = (long)ts;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_futex), "D"(uaddr), "S"((long)op), "d"((long)val), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
#else
    long r = syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
    return r < 0 ? -errno : r;
#endif
}

static inline int ferry__futex_wait(_Atomic uint32_t *w, uint32_t val, int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    long r = ferry__futex_call((uint32_t *)w, FUTEX_WAIT, val, ns == INT64_MAX ? NULL : &ts);
    return r < 0 ? (int)r : 0;
}

/* Wake up to n sleepers on w (INT32_MAX: all). */
static inline void ferry__futex_wake(_Atomic uint32_t *w, int n)
{
    (void)ferry__futex_call((uint32_t *)w, FUTEX_WAKE, (uint32_t)n, NULL);
}

#endif
