// SPDX-License-Identifier: MIT
/*
 * bench_tls.h — the tls rows of `ferry bench` (bench_tls.c, built when libferry has
 * tls://): ferry-tls (bench_ferry over tls://) and tls (OpenSSL directly, the baseline).
 */
#ifndef FERRY_TOOL_BENCH_TLS_H
#define FERRY_TOOL_BENCH_TLS_H

#include "bench.h"

int bench_ferry_tls(const bench_job *job, bench_result *res);
int bench_tls_raw(const bench_job *job, bench_result *res);

#endif /* FERRY_TOOL_BENCH_TLS_H */
