// SPDX-License-Identifier: MIT
/*
 * proc.h — who a process is, for the crash handling of objects shared in memory
 * (mailboxes, broadcast rings): id = start time << 22 | pid (the start time, field 22 of
 * /proc/<pid>/stat, 41 bits), so that a recycled pid is another process; and the pid
 * namespace it lives in. The one copy of this scheme: mailboxes, broadcast rings,
 * semaphores (sync/sem.c) and fair mutexes (sync/mutex.c) all use it.
 *
 * Rules:
 *  - The id (and the namespace) is read once per process and again in a fork child
 *    (pthread_atfork).
 *  - ferry__proc_dead says 1 only when the process is certainly gone (no such pid, another
 *    start time, or exited: its pidfd polls readable); anything it cannot tell is alive.
 *  - A pid means something only in one pid namespace: every process sharing a mailbox
 *    must be in the same one (documented in ferry.h for each object).
 */
#ifndef FERRY_CORE_PROC_H
#define FERRY_CORE_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Parse /proc/<pid>/stat (pid 0: this process): the state (field 3) and the start time
 * (field 22, clock ticks after boot). 0, -ENOENT (no such process, or hidden from us) or
 * -EIO. */
int ferry__proc_stat(pid_t pid, char *state, uint64_t *start);

/* This process's id, never 0 (falls back to the bare pid without /proc). */
uint64_t ferry__proc_self(void);

/* This process's pid namespace: the inode of /proc/self/ns/pid, or 1 when it cannot be
 * read (then every process counts as in one namespace). Never 0. */
uint64_t ferry__proc_ns(void);

/* 1 if the process id names is certainly dead, else 0. */
int ferry__proc_dead(uint64_t id);

/* The pid in an id (its low 22 bits: Linux pids stay below PID_MAX_LIMIT, 2^22). */
static inline pid_t ferry__proc_pid(uint64_t id)
{
    return (pid_t)(id & ((UINT64_C(1) << 22) - 1));
}

/* PID_MAX_LIMIT: no pid namespace holds more tasks, so no count of waiters can be larger
 * (the bound for counts read from shared memory). */
#define FERRY__PROC_MAX_TASKS (UINT32_C(1) << 22)

#endif
