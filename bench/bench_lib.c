// SPDX-License-Identifier: MIT
/*
 * bench_lib.c — the runner of the peer-library rows (see bench_lib.h): both sides in
 * children (bench_run_apart), meeting through a rendezvous; the driver makes the
 * rendezvous (and the library's prepare step) before and removes it after.
 *
 * Rules: each child opens its endpoint itself, after fork, and leaves through
 * ops->close_and_exit, also on failure (with a NULL endpoint when open failed); a stream's sender
 * stops when the measuring side raises the stop flag of its shared page, then sends the end marker.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench_lib.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct lib_ctx {
    const lib_spec *spec;
    const bench_job *job;
    bench_rdv *rdv;
    void *s;                    /* this child's endpoint */
    unsigned char *sbuf, *rbuf; /* the message sent, the message received */
    size_t size;
} lib_ctx;

/* Receive one message that must be seq: 1, 0 on the end marker, -1 with *why. */
static int recv_checked(lib_ctx *c, uint64_t seq, char *why, size_t len)
{
    const lib_ops *o = c->spec->ops;
    ssize_t n = o->recv(c->s, c->rbuf, c->size);
    if (n == 0) {
        bench_rdv_end_received(c->rdv); /* its sender may close now */
        return 0;
    }
    if (n < 0)
        snprintf(why, len, "receive: %s", o->error((int)n));
    else if ((size_t)n != c->size)
        snprintf(why, len, "wrong size %zd", n);
    else if (!bench_copy_ok(c->rbuf, c->size, seq))
        snprintf(why, len, "wrong payload");
    else
        return 1;
    return -1;
}

static int lib_rt(void *ctx, uint64_t seq, bench_result *res)
{
    lib_ctx *c = ctx;
    const lib_ops *o = c->spec->ops;
    bench_stamp(c->sbuf, c->size, seq);
    int r = o->send(c->s, c->sbuf, c->size);
    if (r < 0) return bench_fail(res, "send: %s", o->error(r));
    r = recv_checked(c, seq, res->err, sizeof res->err);
    if (r == 0) return bench_fail(res, "the peer ended the link");
    return r < 0 ? -1 : 0;
}

static int lib_rx(void *ctx, uint64_t seq, bench_result *res)
{
    return recv_checked(ctx, seq, res->err, sizeof res->err);
}

/* The measuring child. */
static int lib_measure(void *ctx, bench_shared *peer_sh, bench_result *res)
{
    lib_ctx *c = ctx;
    const lib_ops *o = c->spec->ops;
    int rc;
    if (!(c->s = o->open(c->spec->arg, c->job, c->rdv, 0, res->err, sizeof res->err)))
        o->close_and_exit(NULL, 1);
    if (c->job->pattern == BENCH_STREAM) {
        rc = bench_loop_stream_rx(c->job, peer_sh, lib_rx, c, res);
    } else {
        rc = bench_loop_pingpong(c->job, lib_rt, c, res);
        int r;
        if (rc == 0 && (r = o->end(c->s)) < 0) rc = bench_fail(res, "end: %s", o->error(r));
        if (rc == 0 && bench_rdv_wait_end_received(c->rdv) != 0)
            rc = bench_fail(res, "the peer did not receive the end");
    }
    o->close_and_exit(c->s, rc == 0 ? 0 : 1);
    return rc; /* not reached */
}

static void peer_exit(lib_ctx *c, int code)
{
    c->spec->ops->close_and_exit(c->s, code);
}

static int lib_echo(void *ctx, bench_shared *sh)
{
    lib_ctx *c = ctx;
    const lib_ops *o = c->spec->ops;
    char why[200];
    int r;
    if (!(c->s = o->open(c->spec->arg, c->job, c->rdv, 1, why, sizeof why))) {
        bench_peer_fail(sh, "peer: %s", why);
        peer_exit(c, 1);
    }
    for (uint64_t seq = 0;; seq++) {
        if ((r = recv_checked(c, seq, why, sizeof why)) == 0) break; /* the driver is done */
        if (r < 0) {
            bench_peer_fail(sh, "peer: %s", why);
            peer_exit(c, 1);
        }
        if ((r = o->send(c->s, c->rbuf, c->size)) < 0) {
            bench_peer_fail(sh, "peer: send: %s", o->error(r));
            peer_exit(c, 1);
        }
    }
    peer_exit(c, 0);
    return 0;
}

static int lib_stream_send(void *ctx, bench_shared *sh)
{
    lib_ctx *c = ctx;
    const lib_ops *o = c->spec->ops;
    const uint64_t max = bench_stream_max_msgs(c->job);
    char why[200];
    int r;
    if (!(c->s = o->open(c->spec->arg, c->job, c->rdv, 1, why, sizeof why))) {
        bench_peer_fail(sh, "peer: %s", why);
        peer_exit(c, 1);
    }
    const int64_t deadline = bench_now_ns() + bench_stream_max_ns(c->job);
    /* Relaxed load of stop: see stop_sender() in bench_loop.c. */
    for (uint64_t seq = 0; seq < max && !atomic_load_explicit(&sh->stop, memory_order_relaxed);
         seq++) {
        bench_stamp(c->sbuf, c->size, seq);
        if ((r = o->send(c->s, c->sbuf, c->size)) < 0) {
            bench_peer_fail(sh, "peer: send: %s", o->error(r));
            peer_exit(c, 1);
        }
        if (seq % 64 == 0 && bench_now_ns() > deadline) break;
    }
    if ((r = o->end(c->s)) < 0) {
        bench_peer_fail(sh, "peer: end: %s", o->error(r));
        peer_exit(c, 1);
    }
    if (bench_rdv_wait_end_received(c->rdv) != 0) {
        bench_peer_fail(sh, "peer: the end was not received");
        peer_exit(c, 1);
    }
    peer_exit(c, 0);
    return 0;
}

int bench_lib(const bench_job *job, bench_result *res)
{
    const lib_spec *spec = job->arg;
    lib_ctx c = {spec, job, NULL, NULL, malloc(job->size), malloc(job->size), job->size};
    int rc = -1;
    if (!c.sbuf || !c.rbuf) {
        bench_fail(res, "out of memory");
        goto out;
    }
    bench_fill(c.sbuf, c.size);
    memset(c.rbuf, 0, c.size);
    if (spec->ops->prepare && spec->ops->prepare(job, res) != 0) goto out;
    if (!(c.rdv = bench_rdv_new(spec->ops->needs_dir, res))) goto out;
    rc = bench_run_apart(job, job->pattern == BENCH_STREAM ? lib_stream_send : lib_echo,
                         lib_measure, &c, res);
out:
    bench_rdv_free(c.rdv);
    free(c.sbuf);
    free(c.rbuf);
    return rc;
}
