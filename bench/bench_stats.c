// SPDX-License-Identifier: MIT
/*
 * bench_stats.c — sample collection and nearest-rank percentiles (see bench_stats.h).
 * Plain single-threaded C: no shared state, nothing that needs ordering.
 */
#include "bench_stats.h"

#include <stdlib.h>
#include <string.h>

int bench_samples_init(bench_samples *s, size_t cap)
{
    s->n = 0;
    s->cap = cap;
    s->v = malloc((cap ? cap : 1) * sizeof *s->v);
    if (!s->v) return -1;
    /* Touch every page now, so that no measured loop pays a page fault. */
    memset(s->v, 0xff, (cap ? cap : 1) * sizeof *s->v);
    return 0;
}

void bench_samples_free(bench_samples *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile per_mille / 1000 of n sorted samples. */
static uint64_t rank(const uint64_t *v, size_t n, unsigned per_mille)
{
    size_t k = (n * per_mille + 999) / 1000; /* ceil(n * p), 1-based */
    return v[k ? k - 1 : 0];
}

int bench_samples_pcts(bench_samples *s, bench_pcts *out)
{
    if (s->n == 0) return -1;
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    out->p50 = rank(s->v, s->n, 500);
    out->p99 = rank(s->v, s->n, 990);
    out->p999 = rank(s->v, s->n, 999);
    return 0;
}

double bench_rate(double count, int64_t ns)
{
    return ns > 0 ? count * 1e9 / (double)ns : 0.0;
}
