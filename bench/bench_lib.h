// SPDX-License-Identifier: MIT
/*
 * bench_lib.h — the peer-library rows of `ferry bench` (ZeroMQ, NNG, iceoryx): one runner
 * (bench_lib.c) drives any message library given as a lib_ops table. Both sides run in
 * children of their own (bench_run_apart): the libraries start threads or keep a
 * per-process runtime, which must never live in the driver that forks every measurement.
 *
 * The protocol is that of every row: pingpong — the measuring side (side 0) sends a
 * stamped message, the peer (side 1) checks it and echoes it; stream — the peer sends
 * stamped messages until told to stop, then an end marker. Every message is copied in on
 * send and out on receive (what ferry_send/ferry_recv do), and every one is checked.
 * Side 0 opens first and publishes its endpoint through the rendezvous; side 1 waits for
 * it and connects.
 */
#ifndef FERRY_TOOL_BENCH_LIB_H
#define FERRY_TOOL_BENCH_LIB_H

#include "bench.h"
#include "bench_rdv.h"

#include <sys/types.h>

typedef struct lib_ops {
    /* Make a private directory for the rendezvous (ipc socket files)? */
    int needs_dir;
    /* In the child: initialise the library and open this side's endpoint (side 0 binds
     * and publishes it in rdv, side 1 connects to what rdv holds). The endpoint's handle,
     * or NULL with a reason in why. arg: the mechanism's table argument. */
    void *(*open)(const void *arg, const bench_job *job, bench_rdv *rdv, int side, char *why,
                  size_t len);
    /* Send one message (copied). 0, or a negative library error code. */
    int (*send)(void *s, const void *p, size_t n);
    /* Send the end marker. 0 or a negative code. */
    int (*end)(void *s);
    /* Receive one message into p (cap bytes): its length, 0 on the end marker, or a
     * negative library error code. */
    ssize_t (*recv)(void *s, void *p, size_t cap);
    /* Close the endpoint and leave the library; then the child exits with code (through
     * exit() where the library needs its exit handlers, else _exit()). */
    void (*close_and_exit)(void *s, int code); /* never returns */
    /* A name for a negative library error code. */
    const char *(*error)(int code);
    /* In the driver, before the children are forked (may be NULL): 0, or -1 with
     * res->err set (e.g. a daemon that must run first). */
    int (*prepare)(const bench_job *job, bench_result *res);
} lib_ops;

int bench_lib(const bench_job *job, bench_result *res); /* job->arg: the lib_spec */

/* A table argument of a library row: its ops and its own argument (e.g. "tcp"). */
typedef struct lib_spec {
    const lib_ops *ops;
    const void *arg;
} lib_spec;

extern const lib_ops BENCH_LIB_ZMQ; /* bench_zmq.c; arg: "ipc" or "tcp" */
extern const lib_ops BENCH_LIB_NNG; /* bench_nng.c; arg: NULL (ipc) */
extern const lib_ops BENCH_LIB_IOX; /* bench_iox.c; arg: NULL */
/* bench_iox_roudi.c: RouDi, started once per run by the first iceoryx measurement. */
const char *bench_iox_unavailable(void); /* NULL, or why the rows cannot run here */
int bench_iox_prepare(const bench_job *job, bench_result *res); /* start RouDi if needed */
void bench_iox_done(void); /* stop RouDi, remove what it left */

#endif /* FERRY_TOOL_BENCH_LIB_H */
