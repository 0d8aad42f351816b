// SPDX-License-Identifier: MIT
/*
 * bench_nats.h — the rows of `ferry bench` between two network namespaces (bench_nats.c,
 * built when ferry has libnats: FERRY_NATS). Pingpong at 64 B only; measured only when
 * --only names them, as root with `ip`, nats-server and the ferry-bridge program:
 *   ferry-nats-rpc       ferry_call on host B to a ferry_serve name on host A, through
 *                        both ferry-bridges and both nats-servers
 *   nats-reqrep          the baseline: a cnats request/reply along the same path
 *   zeromq-reqrep-netns  libzmq REQ/REP over tcp between the namespaces (with libzmq)
 * and, in the same world, any ordinary runner with the driver in A and its peer in B
 * (bench_netns_row: e.g. ferry-tls-netns, tls-netns, tcp-netns, ferry-tcp-netns).
 */
#ifndef FERRY_TOOL_BENCH_NATS_H
#define FERRY_TOOL_BENCH_NATS_H

#include "bench.h"

int bench_nats_ferry(const bench_job *job, bench_result *res);
int bench_nats_reqrep(const bench_job *job, bench_result *res);
#ifdef FERRY_BENCH_ZMQ
int bench_nats_zmq(const bench_job *job, bench_result *res);
#endif
/* A row between the namespaces: job->arg is one of these. */
typedef struct bench_netns_spec {
    bench_fn fn;     /* the ordinary runner */
    const void *arg; /* its job->arg (e.g. a bench_ferry_spec with a URL on 10.99.0.1) */
} bench_netns_spec;
int bench_netns_row(const bench_job *job, bench_result *res);

/* NULL when the rows can run here, else why not. */
const char *bench_nats_unavailable(void);
/* The end of a run: the namespaces, servers and bridges go. */
void bench_nats_done(void);

#endif /* FERRY_TOOL_BENCH_NATS_H */
