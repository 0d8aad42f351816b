// SPDX-License-Identifier: MIT
/*
 * bench_rpc.c — the ferry-rpc row of `ferry bench`: pingpong as RPC calls. The driver is
 * an RPC client (ferry_call) on one end of a ferry_pair made before fork, the peer a
 * manual server (ferry_recv_request / ferry_reply) on the other end that echoes each
 * request. Every reply is checked (size, stamps, pattern), so a broken correlation fails
 * the row. The run ends when the driver closes: the peer's receive says -EPIPE.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime in bench.h */
#include "bench_rpc.h"

#include <ferry/ferry.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

typedef struct rctx {
    ferry_chan *a, *b; /* the driver's end, the peer's end */
    ferry_rpc_client *cli;
    size_t size;
    unsigned char *sbuf, *rbuf;
} rctx;

static int rpc_rt(void *ctx, uint64_t seq, bench_result *res)
{
    rctx *c = ctx;
    bench_stamp(c->sbuf, c->size, seq);
    /* Only the fields ferry_call reads are set (as ferry_send does for a channel): a
     * designated initializer would clear the fd arrays too, 2 x 104 bytes per call. */
    ferry_msg q, r;
    q.type = 0;
    q.data = c->sbuf;
    q.len = c->size;
    q.nfds = 0;
    r.data = c->rbuf;
    r.cap = c->size;
    r.nfds = 0;
    ssize_t n = ferry_call(c->cli, &q, &r, BENCH_OP_TIMEOUT_NS);
    if (n < 0) return bench_fail(res, "ferry_call: %s", ferry_strerror((int)n));
    if ((size_t)n != c->size || !bench_copy_ok(c->rbuf, c->size, seq))
        return bench_fail(res, "ferry_call: a wrong reply");
    return 0;
}

static int rpc_echo(void *ctx, bench_shared *sh)
{
    rctx *c = ctx;
    ferry_chan_close(c->a); /* the driver's end */
    c->a = NULL;
    ferry_rpc_server *s;
    int r = ferry_rpc_server_create(c->b, &s);
    if (r < 0) return bench_peer_fail(sh, "peer: ferry_rpc_server_create: %s", ferry_strerror(r));
    /* Made once: ferry_recv_request writes what it returns (id, oneway, msg's type, len
     * and fds, reserved) and reads only msg.data and msg.cap, as ferry_recv does; a
     * request zeroed per call (152 bytes) and a reply message (104) cost more than
     * the channel's own send here. The bench's channel rows do not clear one either. */
    ferry_rpc_request rq;
    memset(&rq, 0, sizeof rq);
    ferry_msg out;
    memset(&out, 0, sizeof out);
    for (;;) {
        rq.msg.data = c->rbuf;
        rq.msg.cap = c->size;
        ssize_t n = ferry_recv_request(s, &rq, BENCH_OP_TIMEOUT_NS);
        if (n == -EPIPE) break; /* the driver is done */
        if (n < 0) {
            ferry_rpc_server_unref(s);
            return bench_peer_fail(sh, "peer: ferry_recv_request: %s", ferry_strerror((int)n));
        }
        out.data = c->rbuf;
        out.len = (size_t)n;
        out.nfds = 0; /* (the request's fds: none are sent) */
        if ((r = ferry_reply(s, rq.id, &out, BENCH_OP_TIMEOUT_NS)) < 0) {
            ferry_rpc_server_unref(s);
            return bench_peer_fail(sh, "peer: ferry_reply: %s", ferry_strerror(r));
        }
    }
    ferry_rpc_server_unref(s);
    return 0;
}

int bench_ferry_rpc(const bench_job *job, bench_result *res)
{
    rctx c = {.size = job->size < 16 ? 16 : job->size};
    bench_peer p = {-1, NULL};
    int rc = -1, r;
    c.sbuf = malloc(c.size);
    c.rbuf = malloc(c.size);
    if (!c.sbuf || !c.rbuf) {
        bench_fail(res, "out of memory");
        goto out;
    }
    bench_fill(c.sbuf, c.size);
    memset(c.rbuf, 0, c.size);
    if ((r = ferry_pair(NULL, &c.a, &c.b)) < 0) {
        bench_fail(res, "ferry_pair: %s", ferry_strerror(r));
        goto out;
    }
    if (bench_peer_start(&p, job, rpc_echo, &c, res) != 0) goto out;
    ferry_chan_close(c.b);
    c.b = NULL;
    if ((r = ferry_rpc_client_create(c.a, &c.cli)) < 0) {
        bench_fail(res, "ferry_rpc_client_create: %s", ferry_strerror(r));
        goto out;
    }
    c.a = NULL; /* the client's now */
    rc = bench_loop_pingpong(job, rpc_rt, &c, res);
out:
    ferry_rpc_client_close(c.cli); /* the peer sees -EPIPE and exits */
    ferry_chan_close(c.a);
    ferry_chan_close(c.b);
    if (rc != 0 && p.pid > 0) kill(p.pid, SIGKILL);
    if (p.pid > 0 && bench_peer_finish(&p, res) != 0) rc = -1;
    free(c.sbuf);
    free(c.rbuf);
    return rc;
}
