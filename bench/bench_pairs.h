// SPDX-License-Identifier: MIT
/*
 * bench_pairs.h — `ferry bench --pairs N` (bench_pairs.c): the oversubscription case. N
 * pairs of processes ping 64-byte messages at once, none pinned (2N processes on however
 * many CPUs the run may use), and the row's figure is the aggregate: round trips per
 * second summed over the pairs, over one common window.
 *
 * How: the driver maps one shared gang page, then forks N clients. Each client unpins
 * itself and runs the mechanism's own pingpong runner (which forks its echoing peer and
 * calls bench_loop_pingpong); with job->gang set, that loop warms up, reports "ready",
 * keeps pinging until the driver has set the window (start, end), and counts only the
 * round trips that end inside it (each timed, chained as usual; samples kept up to a
 * bound per pair). The driver sets the window once every pair is ready, so all pairs run
 * from before the start to the end, and reaps the clients (bounded; killed after that).
 * The row's p50/p99/p99.9 are over every pair's samples.
 *
 * Every loop is bounded: the warm-up by the driver's readiness deadline (GANG_READY_NS; it
 * then aborts the row), the measurement by the window's end, every round trip by
 * BENCH_OP_TIMEOUT_NS, and each client by a watchdog alarm().
 */
#ifndef FERRY_TOOL_BENCH_PAIRS_H
#define FERRY_TOOL_BENCH_PAIRS_H

#include "bench.h"

#define BENCH_MAX_PAIRS 128

/* One pair's results, written by its client only. */
typedef struct bench_gang_slot {
    _Alignas(64) uint64_t count; /* round trips that ended inside the window */
    uint64_t nsamples;           /* samples kept (<= the gang's cap) */
    char err[200];               /* why the pair failed */
} bench_gang_slot;

/* The page the driver and every client share (mapped before fork). */
typedef struct bench_gang {
    _Alignas(64) _Atomic uint32_t ready; /* clients warmed up (each adds 1, once) */
    _Alignas(64) _Atomic int64_t start;  /* the window, CLOCK_MONOTONIC ns; 0: not yet */
    int64_t end;                         /* written before start (release) */
    _Atomic uint32_t abort;              /* the driver gave up: stop at once */
    uint64_t cap;                        /* samples per pair */
    int n;                               /* pairs */
    bench_gang_slot *slot;               /* [n], in the same mapping */
    uint64_t *samples;                   /* [n * cap], in the same mapping */
} bench_gang;

/* bench_loop_pingpong for a pair of a gang (see above). */
int bench_gang_loop(const bench_job *job, bench_rt_fn rt, void *ctx, bench_result *res);

#endif /* FERRY_TOOL_BENCH_PAIRS_H */
