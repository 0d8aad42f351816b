// SPDX-License-Identifier: MIT
/*
 * bench_broker.h — the naming-service measurements of `ferry bench` (bench_broker.c):
 *   broker-connect  a row (pingpong 64): ferry_connect through a real ferryd, one round
 *                   trip on the new channel, close — timed as a whole, per connect
 *   --scale         ferryd's resident memory with 10,000 names and 1,000 clients
 * Both start a ferryd of their own on a private socket and stop it afterwards. The ferryd
 * program: $FERRY_FERRYD, else the one built next to this tool, else the installed one.
 */
#ifndef FERRY_TOOL_BENCH_BROKER_H
#define FERRY_TOOL_BENCH_BROKER_H

#include "bench.h"

/* The broker-connect row runner (job->size: the round trip's payload). */
int bench_broker_connect(const bench_job *job, bench_result *res);

/* NULL when a ferryd program is there to run; otherwise why not. */
const char *bench_broker_unavailable(void);

/* `ferry bench --scale`: measure and print (CSV or a report with its target line).
 * smoke: a tiny run (a few names and clients) that only checks that it works. Returns
 * the exit status: 0, or 1 when the measurement failed. */
int bench_scale_main(int smoke, int csv);

#endif /* FERRY_TOOL_BENCH_BROKER_H */
