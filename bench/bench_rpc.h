// SPDX-License-Identifier: MIT
/*
 * bench_rpc.h — the ferry-rpc row of `ferry bench` (bench_rpc.c): a pingpong made of
 * ferry_call round trips to a peer serving with ferry_recv_request / ferry_reply over a
 * shared-memory pair (SHAPE_LINE: 64 B).
 */
#ifndef FERRY_TOOL_BENCH_RPC_H
#define FERRY_TOOL_BENCH_RPC_H

#include "bench.h"

/* The ferry-rpc row runner (job->size: request and reply payload). */
int bench_ferry_rpc(const bench_job *job, bench_result *res);

#endif /* FERRY_TOOL_BENCH_RPC_H */
