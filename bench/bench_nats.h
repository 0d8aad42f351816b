// SPDX-License-Identifier: MIT
/*
 * bench_nats.h — the rows of `ferry bench` between two network namespaces (bench_nats.c,
 * built when ferry has libnats: FERRY_NATS). Pingpong at 64 B only; measured only when
 * --only names them, as root with `ip`, nats-server and the ferry-bridge program:
 *   ferry-nats-rpc       ferry_call on host B to a ferry_serve name on host A, through
 *                        both ferry-bridges and both nats-servers
 *   nats-reqrep          the baseline: a cnats request/reply along the same path
 *   zeromq-reqrep-netns  libzmq REQ/REP over tcp between the namespaces (with libzmq)
 */
#ifndef FERRY_TOOL_BENCH_NATS_H
#define FERRY_TOOL_BENCH_NATS_H

#include "bench.h"

int bench_nats_ferry(const bench_job *job, bench_result *res);
int bench_nats_reqrep(const bench_job *job, bench_result *res);
#ifdef FERRY_BENCH_ZMQ
int bench_nats_zmq(const bench_job *job, bench_result *res);
#endif
/* NULL when the rows can run here, else why not. */
const char *bench_nats_unavailable(void);
/* The end of a run: the namespaces, servers and bridges go. */
void bench_nats_done(void);

#endif /* FERRY_TOOL_BENCH_NATS_H */
