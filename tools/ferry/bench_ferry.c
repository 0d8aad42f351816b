/*
 * bench_ferry.c — the ferry rows of `ferry bench`, over a ferry_pair() shared-memory
 * channel split across fork():
 *   ferry-shm           ferry_send / ferry_recv, default waiting (spin, then sleep)
 *   ferry-shm-blocking  the same with FERRY_NO_SPIN: every wait sleeps in the kernel
 *   ferry-shm-zerocopy  ferry_loan / ferry_commit to send, ferry_peek / ferry_release to
 *                       receive. The sender writes only the first and last 8 bytes of the
 *                       payload (the sequence stamp) and the receiver reads and checks only
 *                       those: the figure is the cost of moving a message, not of filling
 *                       or reading it.
 * Channel shape: the defaults (256 KiB ring, max message 130944 bytes), except that a
 * message larger than the default maximum (the 1 MiB rows) gets a 4 MiB ring, whose
 * default maximum (2 MiB - 128) holds it.
 * Rules: each process closes the end it does not use right after fork (as ferry_pair()
 * asks); every call has a bound (BENCH_OP_TIMEOUT_NS); -EPIPE on receive is the normal end
 * of a run (the other side closed), anywhere else it is a failure.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <errno.h>
#include <stdlib.h>

#include <ferry/ferry.h>

#define BIG_RING ((size_t)4 << 20)
#define TMO      BENCH_OP_TIMEOUT_NS

typedef struct fctx {
    ferry_chan *a, *b; /* a: the driver's end; b: the peer's end */
    size_t size;
    unsigned char *sbuf, *rbuf; /* copying rows: the message sent, the message received
                                   (apart, so a receive that copies nothing cannot pass) */
    int zerocopy;
    const bench_job *job;
} fctx;

/* ------------------------------------------------------------------ sending */

/* Send one message carrying seq, copying or in place. 0 or a negative errno. */
static int send_one(fctx *c, ferry_chan *ch, uint64_t seq)
{
    if (!c->zerocopy) {
        bench_stamp(c->sbuf, c->size, seq);
        return ferry_send(ch, c->sbuf, c->size, TMO);
    }
    void *p;
    int r = ferry_loan(ch, c->size, &p, TMO);
    if (r < 0) return r;
    bench_stamp(p, c->size, seq); /* the first and last 8 bytes, nothing more */
    return ferry_commit(ch, 0, c->size);
}

/* ------------------------------------------------------------------ receiving */

/* Receive one message and check that it is seq: 1, 0 on -EPIPE (the other side closed),
 * or a negative errno; *why names a bad payload (then the return is -EBADMSG). */
static int recv_one(fctx *c, ferry_chan *ch, uint64_t seq, const char **why)
{
    *why = NULL;
    if (!c->zerocopy) {
        ssize_t n = ferry_recv(ch, c->rbuf, c->size, TMO);
        if (n == -EPIPE) return 0;
        if (n < 0) return (int)n;
        if ((size_t)n != c->size)
            *why = "wrong size";
        else if (!bench_copy_ok(c->rbuf, c->size, seq))
            *why = "wrong payload";
        return *why ? -EBADMSG : 1;
    }
    ferry_msg m;
    int r = ferry_peek(ch, 0, &m, TMO);
    if (r == -EPIPE) return 0;
    if (r < 0) return r;
    if (m.len != c->size || m.nfds != 0)
        *why = "wrong size";
    else if (!bench_stamp_ok(m.data, c->size, seq))
        *why = "wrong payload";
    r = ferry_release(ch);
    if (*why) return -EBADMSG;
    return r < 0 ? r : 1;
}

static const char *what(int r, const char *why)
{
    return why ? why : ferry_strerror(r);
}

/* ------------------------------------------------------------------ pingpong */

static int ferry_rt(void *ctx, uint64_t seq, bench_result *res)
{
    fctx *c = ctx;
    const char *why;
    int r = send_one(c, c->a, seq);
    if (r < 0) return bench_fail(res, "send: %s", ferry_strerror(r));
    r = recv_one(c, c->a, seq, &why);
    if (r == 0) return bench_fail(res, "receive: the peer is gone");
    if (r < 0) return bench_fail(res, "receive: %s", what(r, why));
    return 0;
}

static int ferry_echo(void *ctx, bench_shared *sh)
{
    fctx *c = ctx;
    const char *why;
    ferry_chan_close(c->a); /* the driver's end */
    c->a = NULL;
    for (uint64_t seq = 0;; seq++) {
        int r = recv_one(c, c->b, seq, &why);
        if (r == 0) break; /* the driver is done */
        if (r < 0) return bench_peer_fail(sh, "peer: receive: %s", what(r, why));
        if ((r = send_one(c, c->b, seq)) < 0)
            return bench_peer_fail(sh, "peer: send: %s", ferry_strerror(r));
    }
    ferry_chan_close(c->b);
    return 0;
}

/* ------------------------------------------------------------------ stream */

static int ferry_stream_send(void *ctx, bench_shared *sh)
{
    fctx *c = ctx;
    const uint64_t max = bench_stream_max_msgs(c->job);
    const int64_t deadline = bench_now_ns() + bench_stream_max_ns(c->job);
    ferry_chan_close(c->a); /* the driver's end */
    c->a = NULL;
    /* Relaxed load of stop: see stop_sender() in bench_loop.c. */
    for (uint64_t seq = 0; seq < max && !atomic_load_explicit(&sh->stop, memory_order_relaxed);
         seq++) {
        int r = send_one(c, c->b, seq);
        if (r < 0) return bench_peer_fail(sh, "peer: send: %s", ferry_strerror(r));
        if (seq % 64 == 0 && bench_now_ns() > deadline) break;
    }
    ferry_chan_close(c->b); /* the receiver drains, then sees -EPIPE */
    return 0;
}

static int ferry_rx(void *ctx, uint64_t seq, bench_result *res)
{
    fctx *c = ctx;
    const char *why;
    int r = recv_one(c, c->a, seq, &why);
    if (r < 0) return bench_fail(res, "receive: %s", what(r, why));
    return r;
}

/* ------------------------------------------------------------------ the runner */

static int run(const bench_job *job, uint32_t flags, int zerocopy, bench_result *res)
{
    fctx c = {NULL, NULL, job->size, NULL, NULL, zerocopy, job};
    bench_peer p = {-1, NULL};
    ferry_chan_opts o;
    int rc = -1, r;

    ferry_chan_opts_init(&o);
    o.flags |= flags;
    if (c.size > o.ring_bytes / 2 - 128) o.ring_bytes = BIG_RING; /* see the top comment */
    if (!zerocopy) {
        c.sbuf = malloc(c.size);
        c.rbuf = malloc(c.size);
        if (!c.sbuf || !c.rbuf) {
            bench_fail(res, "out of memory");
            goto out;
        }
        bench_fill(c.sbuf, c.size);
        memset(c.rbuf, 0, c.size);
    }
    if ((r = ferry_pair(&o, &c.a, &c.b)) < 0) {
        bench_fail(res, "ferry_pair: %s", ferry_strerror(r));
        goto out;
    }
    if (ferry_chan_max_msg(c.a) < c.size) {
        bench_fail(res, "max_msg %zu < %zu", ferry_chan_max_msg(c.a), c.size);
        goto out;
    }
    bench_peer_fn peer = job->pattern == BENCH_STREAM ? ferry_stream_send : ferry_echo;
    if (bench_peer_start(&p, job, peer, &c, res) != 0) goto out;
    ferry_chan_close(c.b); /* the peer's end */
    c.b = NULL;
    if (job->pattern == BENCH_STREAM)
        rc = bench_loop_stream_rx(job, p.sh, ferry_rx, &c, res);
    else
        rc = bench_loop_pingpong(job, ferry_rt, &c, res);
out:
    ferry_chan_close(c.a); /* the peer sees -EPIPE and exits */
    ferry_chan_close(c.b);
    if (p.pid > 0 && bench_peer_finish(&p, res) != 0) rc = -1;
    free(c.sbuf);
    free(c.rbuf);
    return rc;
}

int bench_ferry_shm(const bench_job *job, bench_result *res)
{
    return run(job, 0, 0, res);
}

int bench_ferry_blocking(const bench_job *job, bench_result *res)
{
    return run(job, FERRY_NO_SPIN, 0, res);
}

int bench_ferry_zerocopy(const bench_job *job, bench_result *res)
{
    return run(job, 0, 1, res);
}
