// SPDX-License-Identifier: MIT
/*
 * bench_rdv.h — the meeting point of the two children of a bench_run_apart() measurement
 * (see bench_rdv.c): an endpoint published by the side that binds, and an optional
 * private directory for socket files.
 */
#ifndef FERRY_TOOL_BENCH_RDV_H
#define FERRY_TOOL_BENCH_RDV_H

#include "bench.h"

typedef struct bench_rdv {
    _Alignas(64) _Atomic uint32_t ready; /* 1 once endpoint is written */
    _Atomic uint32_t ended;              /* 1 once the end marker has been received */
    uint32_t serial;                     /* this measurement's number in the run */
    char endpoint[512];
    char dir[200]; /* "" unless asked for; short enough for a socket path inside it */
} bench_rdv;

/* Make one in shared memory, before fork; with_dir: also a private directory.
 * NULL with res->err set on failure. */
bench_rdv *bench_rdv_new(int with_dir, bench_result *res);
/* The binding side: publish the endpoint. */
void bench_rdv_publish(bench_rdv *r, const char *endpoint);
/* The connecting side: the endpoint, or NULL when none came within 10 s. */
const char *bench_rdv_wait(bench_rdv *r);
/* The side that received the end marker says so; the side that sent it waits for that
 * (at most BENCH_OP_TIMEOUT_NS) before it closes, since closing may drop what it queued. */
void bench_rdv_end_received(bench_rdv *r);
int bench_rdv_wait_end_received(bench_rdv *r); /* 0, or -1 after the timeout */
/* In the driver, after both children are gone: empty and remove the directory, unmap. */
void bench_rdv_free(bench_rdv *r);

#endif /* FERRY_TOOL_BENCH_RDV_H */
