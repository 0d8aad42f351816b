// SPDX-License-Identifier: MIT
/*
 * bench_sync.h — the synchronization rows of `ferry bench` (bench_sync.c): semaphores
 * (uncontended wait+post pairs), process-shared robust mutexes (a contended hand-off
 * between two processes), and notifications (a real-time signal and ferry events,
 * pingpong next to the raw eventfd row). job->arg is a bench_sync_spec.
 */
#ifndef FERRY_TOOL_BENCH_SYNC_H
#define FERRY_TOOL_BENCH_SYNC_H

#include "bench.h"

/* Which implementation a row measures. */
typedef enum bench_sync_kind {
    SYNC_POSIX, /* an unnamed sem_t, or a pthread_mutex_t, in a MAP_SHARED page */
    SYNC_SYSV,  /* a System V semaphore set of one (IPC_PRIVATE) */
    SYNC_FERRY, /* the ferry object (ferry_sem, ferry_mutex, ferry_event) */
} bench_sync_kind;

typedef struct bench_sync_spec {
    bench_sync_kind kind;
    uint32_t flags; /* ferry_mutex_create's flags (FERRY_MUTEX_FAIR) */
} bench_sync_spec;

/* pattern uncontended, size 0: one process, batches of wait+post pairs. */
int bench_sem(const bench_job *job, bench_result *res);
/* pattern handoff, size 0: two processes take turns through one mutex. */
int bench_mutex_handoff(const bench_job *job, bench_result *res);
/* pingpong 64 (a value, no payload): SIGRTMIN queued with sigqueue, taken with sigtimedwait. */
int bench_rt_signal(const bench_job *job, bench_result *res);
/* pingpong 64 (a 64-bit payload): two ferry event queues, one each way. */
int bench_ferry_event(const bench_job *job, bench_result *res);

#endif /* FERRY_TOOL_BENCH_SYNC_H */
