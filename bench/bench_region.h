// SPDX-License-Identifier: MIT
/*
 * bench_region.h — the shared-memory state rows of `ferry bench` (bench_region.c): reads
 * of a 64-byte value that one writer publishes (ferry_state against a pthread rwlock and
 * a mutex in shared memory, and a plain memcpy of the value), each alone and beside a
 * writer that never pauses, and the change-notification round trip of ferry regions
 * (ferry-region-notify, next to the raw eventfd row). job->arg is a bench_region_spec.
 */
#ifndef FERRY_TOOL_BENCH_REGION_H
#define FERRY_TOOL_BENCH_REGION_H

#include "bench.h"

typedef enum bench_state_kind {
    STATE_MEMCPY, /* a plain memcpy of the value from a MAP_SHARED page: the floor */
    STATE_FERRY,  /* ferry_state_read */
    STATE_RWLOCK, /* pthread_rwlock_t (PTHREAD_PROCESS_SHARED) in a MAP_SHARED page */
    STATE_SHMMTX, /* shm_open'd segment + a process-shared pthread_mutex_t */
} bench_state_kind;

typedef struct bench_region_spec {
    bench_state_kind kind;
    int writer; /* 1: a peer process on the other CPU writes the value without pause */
} bench_region_spec;

/* uncontended at 64 B (SHAPE_SELF): batches of reads of the value, per read. */
int bench_state_read(const bench_job *job, bench_result *res);
/* pingpong 64: two regions, one each way; the payload in the region, ferry_region_notify
 * and ferry_region_wait. */
int bench_region_notify(const bench_job *job, bench_result *res);

#endif /* FERRY_TOOL_BENCH_REGION_H */
