// SPDX-License-Identifier: MIT
/*
 * bench.h — the internal interface of `ferry bench`, shared by its files:
 *   bench.c, bench_mechs.c, bench_plan.c, bench_report.c, bench_plot.c
 *                  the driver: options, the table of mechanisms and targets, which rows
 *                  to run in which order, repetitions, medians, output (bench_plan.h)
 *   bench_peer.c   the second process: fork, CPU pinning, a shared control page, reaping
 *   bench_loop.c   the measured loops (warm-up, bounds by count and time, timing)
 *   bench_base.c   the baselines: spin, futex, pipe, memcpy
 *   bench_ferry.c  the ferry rows: any transport, by pair or by URL (bench_ferry.h)
 *   bench_raw*.c   the raw kernel mechanisms (bench_raw.h)
 *   bench_sync.c   the synchronization rows: semaphores, mutexes, signals, events
 *                  (bench_sync.h)
 *   bench_lib.c, bench_zmq.c, bench_nng.c, bench_iox*.c, bench_rdv.c
 *                  the peer libraries, both sides in children (bench_lib.h)
 *   bench_guard.c  bounded blocking calls for mechanisms without timeouts
 *   bench_stats.c  samples and percentiles
 *   bench_pairs.c  --pairs N: N pingpong pairs at once, unpinned, one aggregate figure
 *
 * Rules: every measurement forks its own peer and tears everything down before it
 * returns. A row runner never prints; it fills a bench_result, or returns -1 with a
 * reason in res->err. Every received payload is checked (its size, and a stamp of its
 * sequence number in its first and last 8 bytes), so a broken channel fails the row
 * instead of producing a number.
 */
#ifndef FERRY_TOOL_BENCH_H
#define FERRY_TOOL_BENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "bench_stats.h"

/* pingpong: a round trip between two processes; stream: one-way throughput; uncontended:
 * one process, a synchronization object's fast path (bench_sync.c); handoff: two
 * processes taking turns through a shared mutex (bench_sync.c); pairs: job.pairs pingpong
 * pairs at once, unpinned, the aggregate round trips/s (bench_pairs.c). */
typedef enum {
    BENCH_PINGPONG,
    BENCH_STREAM,
    BENCH_UNCONTENDED,
    BENCH_HANDOFF,
    BENCH_PAIRS
} bench_pattern;

/* How long one measurement runs: a warm-up that is not measured, then the measured part.
 * Each part stops at its count or its time, whichever comes first. */
typedef struct bench_budget {
    uint64_t warm_iters;
    int64_t warm_ns;
    uint64_t max_iters; /* pingpong round trips; a stream measures 10x as many messages */
    int64_t run_ns;
} bench_budget;

/* One measurement to make. */
struct bench_result;
struct bench_gang;
typedef struct bench_job {
    const char *mechanism;
    bench_pattern pattern;
    size_t size; /* payload bytes */
    const bench_budget *budget;
    int peer_cpu;    /* the CPU the peer process pins itself to; -1: no pinning */
    const void *arg; /* the mechanism's table argument (bench_mechs.c), or NULL */
    /* BENCH_PAIRS rows: how many pairs, and the mechanism's own runner, which each pair
     * runs as a pingpong (bench_pairs.c). */
    int pairs;
    int (*pair_fn)(const struct bench_job *job, struct bench_result *res);
    /* Set in a pair of a BENCH_PAIRS row: the shared page all pairs time against, and
     * this pair's slot in it (bench_loop_pingpong then runs in step with the others). */
    struct bench_gang *gang;
    int slot;
} bench_job;

/* What one measurement found. A figure that does not apply is negative. */
typedef struct bench_result {
    double rtt_p50_ns, rtt_p99_ns, rtt_p999_ns;
    double msgs_per_s, bytes_per_s;
    char err[256]; /* why the measurement failed */
    /* The ferry stream rows: how often either side slept in the kernel (FUTEX_WAIT), per
     * message received, over the whole run; has_sleeps 0 elsewhere (zero-initialized). */
    int has_sleeps;
    double sleeps_per_msg;
} bench_result;

typedef int (*bench_fn)(const bench_job *job, bench_result *res);

/* The rows between two network namespaces (bench_nats.c) run an ordinary runner with this
 * set: the driver is in namespace `a` (descriptors of /run/netns/...), raw_tcp_pair
 * listens there on addr and connects from `b`, and bench_peer_start's peer enters `b`.
 * {-1, -1, NULL} (no namespaces) otherwise. */
typedef struct bench_netns {
    int a, b;
    const char *addr;
} bench_netns;
extern bench_netns bench_netns_now; /* bench_peer.c */

/* ---- row runners: 0 and *res filled, or -1 with res->err set */
int bench_spin(const bench_job *job, bench_result *res);       /* bench_base.c */
int bench_futex(const bench_job *job, bench_result *res);      /* bench_base.c */
int bench_futex_spin(const bench_job *job, bench_result *res); /* bench_base.c */
int bench_pipe(const bench_job *job, bench_result *res);       /* bench_base.c */
int bench_memcpy(const bench_job *job, bench_result *res);     /* bench_base.c */
int bench_ring(const bench_job *job, bench_result *res);       /* bench_base.c */
/* The ferry rows: bench_ferry() in bench_ferry.h, job->arg its bench_ferry_spec. */
/* The raw kernel mechanisms: job->arg is the link's raw_ops (bench_raw.h). */
int bench_raw(const bench_job *job, bench_result *res);     /* bench_raw.c */
int bench_eventfd(const bench_job *job, bench_result *res); /* bench_raw_eventfd.c */
/* A BENCH_PAIRS row: job->pairs pairs of job->pair_fn pingpong at 64 B, at once. */
int bench_pairs(const bench_job *job, bench_result *res); /* bench_pairs.c */

/* ---- the peer process (bench_peer.c) */

/* One page shared by the two processes of a measurement, each field on its own line. */
typedef struct bench_shared {
    _Alignas(64) _Atomic uint32_t stop; /* the measuring side asks a streaming peer to stop */
    _Alignas(64) _Atomic uint32_t line; /* spin/futex baselines: the one shared cache line */
    _Alignas(64) char err[256];         /* the peer's reason for failing, NUL-terminated */
    /* A ferry streaming peer: its sends' sleeps (send_waits), stored before its last
     * message, so the receiver of that message sees them. */
    _Alignas(64) _Atomic uint64_t peer_sleeps;
} bench_shared;

typedef struct bench_peer {
    pid_t pid;
    bench_shared *sh;
} bench_peer;

/* The peer's work; runs in the child. Returns 0, or -1 after bench_peer_fail(). */
typedef int (*bench_peer_fn)(void *ctx, bench_shared *sh);

/* Fork a peer that pins itself to job->peer_cpu and runs fn(ctx, sh), then exits.
 * Returns 0, or -1 with res->err set. */
int bench_peer_start(bench_peer *p, const bench_job *job, bench_peer_fn fn, void *ctx,
                     bench_result *res);
/* Wait (boundedly; then SIGKILL) for the peer and free the shared page. Returns 0 when the
 * peer succeeded; otherwise -1 and, unless res->err is already set, the peer's reason. */
int bench_peer_finish(bench_peer *p, bench_result *res);
/* The measuring side when it runs in a child (bench_run_apart): fills *res (a shared
 * page) and returns 0, or -1 with res->err set. peer_sh is the peer's shared page (for a
 * stream: its stop flag). */
typedef int (*bench_measure_fn)(void *ctx, bench_shared *peer_sh, bench_result *res);
/* Run a measurement with both sides in children: fork the peer (pinned to job->peer_cpu)
 * running peer(ctx, sh), then a measuring child (on the driver's CPU) running measure();
 * wait for both and copy its figures into *res. The driver itself never touches the
 * mechanism. A child leaves with _exit() when its function returns, unless the function
 * leaves by itself. 0, or -1 with res->err set. */
int bench_run_apart(const bench_job *job, bench_peer_fn peer, bench_measure_fn measure, void *ctx,
                    bench_result *res);
/* In the peer: record why it failed (printf-style). Returns -1. */
int bench_peer_fail(bench_shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* In the driver: record why a measurement failed. Returns -1. */
int bench_fail(bench_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* In a child of the driver: the driver's stop signals (SIGINT, SIGTERM, SIGHUP) back to
 * their default action. bench_peer_start and bench_run_apart do it for their children. */
void bench_child_signals(void);

/* Choose two CPUs this process may run on, pin the caller to the first (*self_cpu) and
 * return the second (the peer's), or -1 when fewer than two are allowed or pinning fails. */
int bench_pin_setup(int *self_cpu);
/* In a child: run on every CPU the process was allowed before bench_pin_setup. */
void bench_unpin(void);

/* ---- the measured loops (bench_loop.c) */

/* One round trip carrying sequence number seq: 0, or -1 with res->err set. */
typedef int (*bench_rt_fn)(void *ctx, uint64_t seq, bench_result *res);
/* Receive one streamed message, which must carry seq: 1 received, 0 the stream ended,
 * -1 with res->err set. */
typedef int (*bench_rx_fn)(void *ctx, uint64_t seq, bench_result *res);

/* Warm up, then time every round trip: fills rtt_p50/p99/p999 and msgs_per_s. In a pair
 * of a BENCH_PAIRS row (job->gang set), it runs in step with the other pairs instead
 * (bench_pairs.h). */
int bench_loop_pingpong(const bench_job *job, bench_rt_fn rt, void *ctx, bench_result *res);
/* Receive a stream: warm up, time the messages received until the count or the time is
 * up, then ask the sender to stop (sh->stop) and drain the rest (checked, not counted)
 * until the stream ends. Fills msgs_per_s and bytes_per_s. */
int bench_loop_stream_rx(const bench_job *job, bench_shared *sh, bench_rx_fn rx, void *ctx,
                         bench_result *res);
/* How many messages a streaming peer may send at most, and for how long (a backstop: the
 * receiver normally stops it first through sh->stop). */
uint64_t bench_stream_max_msgs(const bench_job *job);
int64_t bench_stream_max_ns(const bench_job *job);

/* Per blocking operation: longer than this means the channel is broken. */
#define BENCH_OP_TIMEOUT_NS ((int64_t)5 * 1000 * 1000 * 1000)

/* ---- bounded blocking calls (bench_guard.c): while armed, a blocked system call of this
 * process returns EINTR at least every 250 ms; on EINTR, call bench_guard_expired(&since)
 * (since = 0 before the operation): 1 once the operation has waited longer than
 * BENCH_OP_TIMEOUT_NS, else 0 (retry). Arm in the driver after forking the peer, disarm
 * before the next fork. */
int bench_guard_arm(void); /* 0 or -errno */
void bench_guard_disarm(void);
int bench_guard_expired(int64_t *since);

/* ---- small helpers */

static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A hint to the CPU that we are busy-waiting (x86 `pause`). */
static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Stamp seq into the first and last 8 bytes of a payload (size >= 8). */
static inline void bench_stamp(void *p, size_t size, uint64_t seq)
{
    memcpy(p, &seq, sizeof seq);
    memcpy((char *)p + size - sizeof seq, &seq, sizeof seq);
}

/* Does a payload carry seq in its first and last 8 bytes? */
static inline int bench_stamp_ok(const void *p, size_t size, uint64_t seq)
{
    uint64_t a, b;
    memcpy(&a, p, sizeof a);
    memcpy(&b, (const char *)p + size - sizeof b, sizeof b);
    return a == seq && b == seq;
}

/* The fill byte at offset i of a copied payload (between the stamps). */
static inline unsigned char bench_fill_byte(size_t i)
{
    return (unsigned char)(i * 131u + 7u);
}

/* Fill a payload with the pattern (the stamps are written over it per message). */
static inline void bench_fill(void *p, size_t size)
{
    for (size_t i = 0; i < size; i++) ((unsigned char *)p)[i] = bench_fill_byte(i);
}

/* A copied payload: the stamps, and the pattern byte at two offsets in the middle. */
static inline int bench_copy_ok(const void *p, size_t size, uint64_t seq)
{
    const unsigned char *b = p;
    size_t m1 = size / 2, m2 = size - 9;
    return bench_stamp_ok(p, size, seq) && b[m1] == bench_fill_byte(m1) &&
           b[m2] == bench_fill_byte(m2);
}

#endif /* FERRY_TOOL_BENCH_H */
