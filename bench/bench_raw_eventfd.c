// SPDX-License-Identifier: MIT
/*
 * bench_raw_eventfd.c — the raw `eventfd` row of `ferry bench`: two eventfds made before
 * fork (to-peer, from-peer) carry a counter, not a payload, so there is only pingpong, at
 * the 64 B of one cache line like the spin and futex baselines. A round trip: the driver
 * adds seq + 1 to to-peer; the peer's read takes the value (and resets the counter),
 * checks it and adds it to from-peer; the driver reads it back and checks it. The end is
 * the value END. The floor of a kernel wake-up through a file descriptor.
 * Waits are bounded: EINTR under the guard in the driver (bench_guard.c), the watchdog in
 * the peer.
 */
#define _POSIX_C_SOURCE 200809L /* kill */
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define END ((uint64_t)1 << 62) /* never a seq + 1 here */

typedef struct efd_ctx {
    int to_peer, from_peer;
} efd_ctx;

/* Add v to the counter. 0 or -errno. */
static int post(int fd, uint64_t v)
{
    int64_t since = 0;
    while (write(fd, &v, sizeof v) != (ssize_t)sizeof v) {
        if (errno != EINTR) return -errno;
        if (bench_guard_expired(&since)) return -ETIMEDOUT;
    }
    return 0;
}

/* Take the counter (waiting while it is 0). 0 or -errno. */
static int take(int fd, uint64_t *v)
{
    int64_t since = 0;
    while (read(fd, v, sizeof *v) != (ssize_t)sizeof *v) {
        if (errno != EINTR) return -errno;
        if (bench_guard_expired(&since)) return -ETIMEDOUT;
    }
    return 0;
}

static int efd_rt(void *ctx, uint64_t seq, bench_result *res)
{
    efd_ctx *c = ctx;
    uint64_t v;
    int r = post(c->to_peer, seq + 1);
    if (r < 0) return bench_fail(res, "write: %s", strerror(-r));
    if ((r = take(c->from_peer, &v)) < 0) return bench_fail(res, "read: %s", strerror(-r));
    if (v != seq + 1) return bench_fail(res, "wrong value %llu", (unsigned long long)v);
    return 0;
}

static int efd_echo(void *ctx, bench_shared *sh)
{
    efd_ctx *c = ctx;
    for (uint64_t seq = 0;; seq++) {
        uint64_t v;
        int r = take(c->to_peer, &v);
        if (r < 0) return bench_peer_fail(sh, "peer: read: %s", strerror(-r));
        if (v == END) return 0;
        if (v != seq + 1) return bench_peer_fail(sh, "peer: wrong value");
        if ((r = post(c->from_peer, v)) < 0)
            return bench_peer_fail(sh, "peer: write: %s", strerror(-r));
    }
}

int bench_eventfd(const bench_job *job, bench_result *res)
{
    efd_ctx c = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC)};
    bench_peer p = {-1, NULL};
    int rc = -1, r;
    if (c.to_peer < 0 || c.from_peer < 0) {
        bench_fail(res, "eventfd: %s", strerror(errno));
        goto out;
    }
    if (bench_peer_start(&p, job, efd_echo, &c, res) != 0) goto out;
    if ((r = bench_guard_arm()) < 0) {
        bench_fail(res, "guard timer: %s", strerror(-r));
        goto out;
    }
    rc = bench_loop_pingpong(job, efd_rt, &c, res);
    if (rc == 0) post(c.to_peer, END);
    bench_guard_disarm();
out:
    if (rc != 0 && p.pid > 0) kill(p.pid, SIGKILL); /* it may wait for a value forever */
    if (p.pid > 0 && bench_peer_finish(&p, res) != 0) rc = -1;
    if (c.to_peer >= 0) close(c.to_peer);
    if (c.from_peer >= 0) close(c.from_peer);
    return rc;
}
