// SPDX-License-Identifier: MIT
/*
 * bench_stats.h — sample collection and percentiles for `ferry bench`.
 *
 * A bench_samples holds up to `cap` latency samples in nanoseconds. Its memory is touched
 * when it is made, so adding a sample inside a measured loop never page-faults. Adding
 * beyond cap is ignored (the caller bounds its loops by the same count).
 * Percentiles use the nearest-rank method on the sorted samples: p50 is the smallest
 * sample that at least half of all samples are <= to. Not thread-safe; one owner.
 */
#ifndef FERRY_TOOL_BENCH_STATS_H
#define FERRY_TOOL_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_samples {
    uint64_t *v;
    size_t n, cap;
} bench_samples;

typedef struct bench_pcts {
    uint64_t p50, p99, p999; /* nanoseconds */
} bench_pcts;

/* Make room for cap samples. Returns 0, or -1 when out of memory. */
int bench_samples_init(bench_samples *s, size_t cap);

/* Free the samples. Safe on a zeroed struct. */
void bench_samples_free(bench_samples *s);

static inline void bench_samples_add(bench_samples *s, uint64_t ns)
{
    if (s->n < s->cap) s->v[s->n++] = ns;
}

/* Sort the samples in place and fill *out. Returns 0, or -1 when there are none. */
int bench_samples_pcts(bench_samples *s, bench_pcts *out);

/* Events per second for `count` events in `ns` nanoseconds; 0 when ns <= 0. */
double bench_rate(double count, int64_t ns);

#endif /* FERRY_TOOL_BENCH_STATS_H */
