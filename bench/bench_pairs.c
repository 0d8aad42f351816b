// SPDX-License-Identifier: MIT
/*
 * bench_pairs.c — `ferry bench --pairs N`: N pingpong pairs at once, unpinned, the
 * aggregate round trips/s (see bench_pairs.h for the protocol and its bounds).
 *
 * Rules: the driver never touches a mechanism; each client is a child that runs the
 * mechanism's runner and writes only its own slot of the gang page; the driver reads the
 * slots after it has reaped every client (waitpid orders their writes before its reads).
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS */
#include "bench_pairs.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MS            ((int64_t)1000 * 1000)
#define GANG_READY_NS ((int64_t)30 * 1000 * MS) /* every pair warmed up within this */
#define GANG_LEAD_NS  (10 * MS)                 /* the window opens this long after */
#define GANG_REAP_NS  ((int64_t)15 * 1000 * MS) /* after the window: then SIGKILL */
#define GANG_CAP_MIN  64
#define GANG_CAP_MAX  200000

int bench_gang_loop(const bench_job *job, bench_rt_fn rt, void *ctx, bench_result *res)
{
    bench_gang *g = job->gang;
    bench_gang_slot *s = &g->slot[job->slot];
    uint64_t *smp = g->samples + (size_t)job->slot * g->cap;
    const bench_budget *b = job->budget;
    uint64_t seq = 0;
    int rc;

    /* Warm up (by time: N pairs share the CPUs), then say so once. */
    const int64_t warm_end = bench_now_ns() + b->warm_ns;
    for (uint64_t i = 0;; i++) {
        if ((rc = rt(ctx, seq++, res)) != 0) return rc;
        if (i + 1 >= b->warm_iters || bench_now_ns() >= warm_end) break;
    }
    atomic_fetch_add_explicit(&g->ready, 1, memory_order_relaxed); /* a count, no data */
    /* Keep the load on until the window is set. Acquire pairs with the driver's release
     * of start, which brings end with it. Bounded: the driver aborts after GANG_READY_NS. */
    int64_t start;
    while ((start = atomic_load_explicit(&g->start, memory_order_acquire)) == 0) {
        if (atomic_load_explicit(&g->abort, memory_order_relaxed))
            return bench_fail(res, "the other pairs were not ready in time");
        if ((rc = rt(ctx, seq++, res)) != 0) return rc;
    }
    const int64_t end = g->end;
    uint64_t count = 0, ns = 0;
    int64_t prev = bench_now_ns();
    for (;;) {
        if (atomic_load_explicit(&g->abort, memory_order_relaxed))
            return bench_fail(res, "aborted by the driver");
        if ((rc = rt(ctx, seq++, res)) != 0) return rc;
        const int64_t t = bench_now_ns();
        if (t > end) break;
        if (t >= start) count++;
        if (prev >= start && ns < g->cap) smp[ns++] = (uint64_t)(t - prev);
        prev = t;
    }
    s->count = count;
    s->nsamples = ns;
    res->msgs_per_s = bench_rate((double)count, end - start);
    return 0;
}

/* Client i: unpinned, the mechanism's pingpong in step with the gang. Never returns. */
static void client(const bench_job *job, bench_gang *g, int i)
{
    const bench_budget *b = job->budget;
    bench_child_signals();
    alarm((unsigned)((b->warm_ns + b->run_ns + GANG_READY_NS + GANG_REAP_NS) / 1000000000 + 60));
    bench_unpin();
    bench_job j = *job;
    j.pattern = BENCH_PINGPONG;
    j.peer_cpu = -1;
    j.pairs = 0;
    j.gang = g;
    j.slot = i;
    bench_result r = {-1, -1, -1, -1, -1, "", 0, 0};
    int rc = job->pair_fn(&j, &r);
    if (rc != 0) snprintf(g->slot[i].err, sizeof g->slot[i].err, "%.199s", r.err);
    _exit(rc == 0 ? 0 : 1);
}

/* Reap every client still running (pids[k] > 0), killing those left at the deadline.
 * Returns the number that did not exit with status 0; *first their first index. */
static int reap(pid_t *pids, int n, int64_t deadline, int *first, int *status0)
{
    int left = 0, bad = 0;
    for (int k = 0; k < n; k++) left += pids[k] > 0;
    while (left > 0) {
        for (int k = 0; k < n; k++) {
            int st;
            if (pids[k] <= 0) continue;
            pid_t r = waitpid(pids[k], &st, WNOHANG);
            if (r == 0 && bench_now_ns() <= deadline) continue;
            if (r == 0) {
                kill(pids[k], SIGKILL);
                waitpid(pids[k], &st, 0);
            } else if (r < 0 && errno == EINTR)
                continue;
            else if (r < 0)
                st = -1;
            if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                if (bad++ == 0) {
                    *first = k;
                    *status0 = st;
                }
            }
            pids[k] = -1;
            left--;
        }
        if (left > 0) nanosleep(&(struct timespec){0, MS}, NULL);
    }
    return bad;
}

/* Has any client exited already (before the window)? Leaves the others alone. */
static int any_exited(const pid_t *pids, int n)
{
    for (int k = 0; k < n; k++) {
        siginfo_t si = {0};
        if (pids[k] > 0 && waitid(P_PID, (id_t)pids[k], &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            si.si_pid == pids[k])
            return 1;
    }
    return 0;
}

int bench_pairs(const bench_job *job, bench_result *res)
{
    const int n = job->pairs;
    if (n < 1 || n > BENCH_MAX_PAIRS || !job->pair_fn)
        return bench_fail(res, "pairs: %d not in 1..%d", n, BENCH_MAX_PAIRS);
    uint64_t cap = job->budget->max_iters / (uint64_t)n;
    cap = cap < GANG_CAP_MIN ? GANG_CAP_MIN : cap > GANG_CAP_MAX ? GANG_CAP_MAX : cap;
    const size_t head = (sizeof(bench_gang) + 63) & ~(size_t)63;
    const size_t slots = (size_t)n * sizeof(bench_gang_slot);
    const size_t bytes = head + slots + (size_t)n * cap * sizeof(uint64_t);
    bench_gang *g = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g == MAP_FAILED) return bench_fail(res, "mmap: %s", strerror(errno));
    /* Before fork: fork orders these stores before anything the children do. */
    atomic_init(&g->ready, 0);
    atomic_init(&g->start, 0);
    atomic_init(&g->abort, 0);
    g->end = 0;
    g->cap = cap;
    g->n = n;
    g->slot = (bench_gang_slot *)((char *)g + head);
    g->samples = (uint64_t *)((char *)g + head + slots);

    pid_t pids[BENCH_MAX_PAIRS];
    int started = 0, rc = 0, first = -1, st0 = 0;
    fflush(stdout);
    fflush(stderr);
    for (; started < n; started++) {
        pid_t pid = fork();
        if (pid == 0) client(job, g, started);
        if (pid < 0) {
            rc = bench_fail(res, "fork: %s", strerror(errno));
            break;
        }
        pids[started] = pid;
    }
    /* Wait until every pair is warm (bounded), then open the window. */
    const int64_t ready_by = bench_now_ns() + GANG_READY_NS;
    while (rc == 0 && atomic_load_explicit(&g->ready, memory_order_relaxed) < (uint32_t)n) {
        if (bench_now_ns() > ready_by)
            rc = bench_fail(res, "pairs: not all %d pairs warmed up within %lld s", n,
                            (long long)(GANG_READY_NS / 1000 / MS));
        else if (any_exited(pids, started))
            rc = -1; /* its reason comes from reap */
        else
            nanosleep(&(struct timespec){0, MS}, NULL);
    }
    int64_t start = bench_now_ns() + GANG_LEAD_NS;
    if (rc == 0) {
        g->end = start + job->budget->run_ns;
        atomic_store_explicit(&g->start, start, memory_order_release); /* brings end along */
    } else {
        atomic_store_explicit(&g->abort, 1, memory_order_relaxed);
    }
    const int64_t reap_by =
        (rc == 0 ? g->end : bench_now_ns()) + GANG_REAP_NS + BENCH_OP_TIMEOUT_NS;
    if (reap(pids, started, reap_by, &first, &st0) > 0) {
        if (first >= 0 && g->slot[first].err[0])
            rc = bench_fail(res, "pair %d: %.200s", first, g->slot[first].err);
        else if (first >= 0 && WIFSIGNALED(st0))
            rc = bench_fail(res, "pair %d killed by signal %d", first, WTERMSIG(st0));
        else if (!res->err[0])
            rc = bench_fail(res, "pair %d failed (status %d)", first, st0);
        else
            rc = -1;
    }
    if (rc == 0 && !res->err[0]) {
        uint64_t count = 0, total = 0;
        for (int k = 0; k < n; k++) {
            count += g->slot[k].count;
            total += g->slot[k].nsamples < cap ? g->slot[k].nsamples : cap;
        }
        bench_samples s;
        bench_pcts pc;
        if (bench_samples_init(&s, total ? total : 1) != 0) {
            rc = bench_fail(res, "out of memory");
        } else {
            for (int k = 0; k < n; k++) {
                uint64_t m = g->slot[k].nsamples < cap ? g->slot[k].nsamples : cap;
                for (uint64_t i = 0; i < m; i++)
                    bench_samples_add(&s, g->samples[(size_t)k * cap + i]);
            }
            if (bench_samples_pcts(&s, &pc) != 0) {
                rc = bench_fail(res, "pairs: no round trip in the window");
            } else {
                res->rtt_p50_ns = (double)pc.p50;
                res->rtt_p99_ns = (double)pc.p99;
                res->rtt_p999_ns = (double)pc.p999;
                res->msgs_per_s = bench_rate((double)count, g->end - start);
            }
            bench_samples_free(&s);
        }
    } else if (rc == 0) {
        rc = -1;
    }
    munmap(g, bytes);
    return rc;
}
