// SPDX-License-Identifier: MIT
/*
 * bench_reqrep.h — the request/reply peers of `ferry bench` (bench_reqrep.c), the rows
 * the RPC figures of ferry are compared with, each a pingpong at 64 B:
 *   zeromq-reqrep  libzmq REQ/REP over ipc:// in a private directory, run by bench_lib
 *                  (bench_lib.h) with the ops below (built when libzmq was found)
 *   dbus-call      a D-Bus method call (sd-bus, libsystemd) through a dbus-daemon the
 *                  measurement starts on a private address and stops again (built when
 *                  libsystemd was found)
 */
#ifndef FERRY_TOOL_BENCH_REQREP_H
#define FERRY_TOOL_BENCH_REQREP_H

#include "bench_lib.h"

#ifdef FERRY_BENCH_ZMQ
extern const lib_ops BENCH_LIB_ZMQ_REQREP; /* arg: NULL */
#endif

#ifdef FERRY_BENCH_SDBUS
/* The dbus-call row: one measurement, its own dbus-daemon. job->arg: NULL. */
int bench_dbus_call(const bench_job *job, bench_result *res);
/* NULL, or why the row cannot run here (no dbus-daemon). */
const char *bench_dbus_unavailable(void);
#endif

#endif /* FERRY_TOOL_BENCH_REQREP_H */
