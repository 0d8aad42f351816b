// SPDX-License-Identifier: MIT
/*
 * bench_loop.c — the measured loops shared by every row: warm-up, then measurement, each
 * bounded by a count and by time, so a measurement always ends by itself.
 *
 * Pingpong: every round trip is timed with CLOCK_MONOTONIC; the timestamps are chained
 * (one clock read per round trip, the end of one is the start of the next), so the loop's
 * own bookkeeping is inside the figures, equally for every row.
 * Stream: the receiver times the messages it takes between the end of its warm-up and
 * the moment its count or time is up; it reads the clock every message for large payloads
 * and every CLOCK_EVERY messages for small ones, and always at both ends of the window.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "bench.h"
#include "bench_pairs.h"

#define CLOCK_EVERY   64
#define STREAM_FACTOR 10                  /* a stream measures this many times max_iters messages */
#define STREAM_SLACK  ((uint64_t)1 << 20) /* more than any ring holds: the sender's backstop */

uint64_t bench_stream_max_msgs(const bench_job *job)
{
    const bench_budget *b = job->budget;
    return b->warm_iters + STREAM_FACTOR * b->max_iters + STREAM_SLACK;
}

int64_t bench_stream_max_ns(const bench_job *job)
{
    return job->budget->warm_ns + job->budget->run_ns + (int64_t)10 * 1000 * 1000 * 1000;
}

int bench_loop_pingpong(const bench_job *job, bench_rt_fn rt, void *ctx, bench_result *res)
{
    const bench_budget *b = job->budget;
    bench_samples s;
    bench_pcts pc;
    uint64_t seq = 0;
    int rc = 0;

    if (job->gang) return bench_gang_loop(job, rt, ctx, res); /* one of N pairs */
    if (bench_samples_init(&s, b->max_iters) != 0) return bench_fail(res, "out of memory");

    int64_t warm_end = bench_now_ns() + b->warm_ns;
    for (uint64_t i = 0; i < b->warm_iters && rc == 0; i++) {
        rc = rt(ctx, seq++, res);
        if (bench_now_ns() >= warm_end) break;
    }

    int64_t t0 = bench_now_ns(), prev = t0, end = t0 + b->run_ns;
    for (uint64_t i = 0; i < b->max_iters && rc == 0; i++) {
        rc = rt(ctx, seq++, res);
        int64_t t = bench_now_ns();
        bench_samples_add(&s, (uint64_t)(t - prev));
        prev = t;
        if (t >= end) break;
    }

    if (rc == 0 && bench_samples_pcts(&s, &pc) != 0) rc = bench_fail(res, "no samples");
    if (rc == 0) {
        res->rtt_p50_ns = (double)pc.p50;
        res->rtt_p99_ns = (double)pc.p99;
        res->rtt_p999_ns = (double)pc.p999;
        res->msgs_per_s = bench_rate((double)s.n, prev - t0);
    }
    bench_samples_free(&s);
    return rc;
}

/* Ask the sender to stop. Relaxed: the flag carries no data, the sender only has to see
 * it eventually, and the drain that follows is bounded by count anyway. */
static void stop_sender(bench_shared *sh)
{
    atomic_store_explicit(&sh->stop, 1, memory_order_relaxed);
}

int bench_loop_stream_rx(const bench_job *job, bench_shared *sh, bench_rx_fn rx, void *ctx,
                         bench_result *res)
{
    const bench_budget *b = job->budget;
    const uint64_t max = STREAM_FACTOR * b->max_iters, limit = bench_stream_max_msgs(job);
    const uint64_t every = job->size >= 4096 ? 1 : CLOCK_EVERY;
    uint64_t seq = 0, n = 0;
    int r;

    /* Warm-up: its clock starts with the first message, so the peer's start-up (fork,
     * pinning) does not eat it. */
    int64_t warm_end = 0;
    while (seq < b->warm_iters) {
        if ((r = rx(ctx, seq, res)) <= 0) goto ended;
        if (seq++ == 0)
            warm_end = bench_now_ns() + b->warm_ns;
        else if (seq % every == 0 && bench_now_ns() >= warm_end)
            break;
    }

    int64_t t0 = bench_now_ns(), t_end = t0, end = t0 + b->run_ns;
    for (;;) {
        if ((r = rx(ctx, seq, res)) <= 0) goto ended;
        seq++;
        if (++n >= max) {
            t_end = bench_now_ns();
            break;
        }
        if (n % every == 0 && (t_end = bench_now_ns()) >= end) break;
    }

    /* Stop the sender and drain what it still sends: checked, not counted. */
    stop_sender(sh);
    while ((r = rx(ctx, seq, res)) == 1)
        if (++seq > limit) return bench_fail(res, "the sender did not stop");
    if (r < 0) return -1;

    res->msgs_per_s = bench_rate((double)n, t_end - t0);
    res->bytes_per_s = res->msgs_per_s * (double)job->size;
    return 0;

ended:
    stop_sender(sh);
    if (r == 0)
        bench_fail(res, "the stream ended early, after %llu messages", (unsigned long long)seq);
    return -1;
}
