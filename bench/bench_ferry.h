// SPDX-License-Identifier: MIT
/*
 * bench_ferry.h — the ferry rows of `ferry bench` (bench_ferry.c): one runner,
 * bench_ferry(), whose table argument (job->arg) says how the two ends are made, so a row
 * for any ferry transport is one entry in bench_mechs.c:
 *
 *   a pair made before fork          {.pair = ferry_pair}                    (ferry-shm)
 *   a listener and an opener by URL  {.url = "unix://{dir}/bench.sock"}
 *
 * In a URL, placeholders are replaced per measurement:
 *   {dir}   a private directory (mkdtemp under $TMPDIR or /tmp), emptied and removed
 *           afterwards: for socket files and FIFOs
 *   {port}  a free TCP port on 127.0.0.1 (the kernel's pick, released just before use)
 *   {name}  a name unique to the measurement: ferry-bench-<pid>-<n>
 *   {key}   a number unique to the measurement (a System V key)
 * The driver listens (ferry_listen) before forking the peer, which opens the URL
 * (ferry_chan_open); the driver accepts and closes the listener at once.
 */
#ifndef FERRY_TOOL_BENCH_FERRY_H
#define FERRY_TOOL_BENCH_FERRY_H

#include "bench.h"

#include <ferry/ferry.h>

typedef struct bench_ferry_spec {
    /* Both ends made in the driver before fork (ferry_pair, ...), when url is NULL. */
    int (*pair)(const ferry_chan_opts *o, ferry_chan **a, ferry_chan **b);
    const char *url; /* listen here, open here (placeholders above) */
    uint32_t flags;  /* ferry_chan_opts.flags, e.g. FERRY_NO_SPIN */
    int zerocopy;    /* send with loan/commit, receive with peek/release */
    int touch;       /* zerocopy: the sender writes every byte in place, the receiver
                        reads every byte in place (else only the stamps: a stream row
                        then reports msgs/s, no bytes/s) */
} bench_ferry_spec;

int bench_ferry(const bench_job *job, bench_result *res); /* job->arg: bench_ferry_spec */
/* ferry-shm-self, pattern uncontended at 64 B: one thread holds both ends of a ferry_pair
 * and sends and receives 64-byte messages (FERRY_NOW: nothing ever waits), in batches of
 * 100 timed with one clock read each; every figure is per send+recv pair: the software
 * path of the channel, without a second CPU. */
int bench_ferry_self(const bench_job *job, bench_result *res);

#endif /* FERRY_TOOL_BENCH_FERRY_H */
