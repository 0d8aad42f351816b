// SPDX-License-Identifier: MIT
/*
 * bench_mechs.c — what `ferry bench` measures: the table of mechanisms (one entry each:
 * name, runner, the rows it has, its argument and hooks; see bench_plan.h) and the table
 * of target ratios.
 *
 * Order matters twice. Mechanisms are printed in table order. Targets decide the order of
 * measurement within a repetition (bench_measure_order): each target's two rows run back
 * to back, the denominator first, and a row already placed by an earlier target stays
 * where it is; so targets that share a row are listed one after the other, which keeps
 * the new partner right after the shared row.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime in bench.h */
#include "bench_plan.h"
#include "bench_broker.h"
#include "bench_ferry.h"
#include "bench_lib.h"
#include "bench_reqrep.h" /* peer-library rows too */
#include "bench_raw.h"
#include "bench_rpc.h"
#include "bench_sync.h"
#include "bench_region.h"
#ifdef FERRY_BENCH_TLS
#include "bench_tls.h"
#endif
#ifdef FERRY_BENCH_NATS
#include "bench_nats.h"
#endif

const bench_mech BENCH_MECHS[] = {
    {.name = "spin-baseline", .fn = bench_spin, .shape = SHAPE_LINE},
    {.name = "futex-baseline", .fn = bench_futex, .shape = SHAPE_LINE},
    {.name = "futex-baseline-spin", .fn = bench_futex_spin, .shape = SHAPE_LINE},
    {.name = "pipe", .fn = bench_pipe, .shape = SHAPE_ALL},
    {.name = "ring-baseline", .fn = bench_ring, .shape = SHAPE_COPY},
    {.name = "memcpy-baseline", .fn = bench_memcpy, .shape = SHAPE_COPY},
    /* ferry. A row for another transport is one more entry, e.g.
     *   {.name = "ferry-unix", .fn = bench_ferry, .shape = SHAPE_ALL,
     *    .arg = &(const bench_ferry_spec){.url = "unix://{dir}/bench.sock"}},
     * with .limit when the transport's kernel caps the message size (see bench_ferry.h
     * for the URL's placeholders, and the targets below for its ratio to the raw row). */
    {.name = "ferry-shm",
     .fn = bench_ferry,
     .shape = SHAPE_ALL,
     .arg = &(const bench_ferry_spec){.pair = ferry_pair}},
    {.name = "ferry-shm-blocking",
     .fn = bench_ferry,
     .shape = SHAPE_ALL,
     .arg = &(const bench_ferry_spec){.pair = ferry_pair, .flags = FERRY_NO_SPIN}},
    {.name = "ferry-shm-zerocopy",
     .fn = bench_ferry,
     .shape = SHAPE_ALL,
     .arg = &(const bench_ferry_spec){.pair = ferry_pair, .zerocopy = 1}},
    /* One thread, both ends: the software path of a send+recv (bench_ferry_self). */
    {.name = "ferry-shm-self", .fn = bench_ferry_self, .shape = SHAPE_SELF},
    {.name = "ferry-shm-zerocopy-touch",
     .fn = bench_ferry,
     .shape = SHAPE_ALL,
     .arg = &(const bench_ferry_spec){.pair = ferry_pair, .zerocopy = 1, .touch = 1}},
    /* ferry over the kernel mechanisms: each next to its raw row below. */
    {.name = "ferry-unix",
     .fn = bench_ferry,
     .shape = SHAPE_ALL,
     .arg = &(const bench_ferry_spec){.url = "unix://{dir}/bench.sock"},
     .limit = bench_raw_unix_limit},
    {.name = "ferry-tcp",
     .fn = bench_ferry,
     .shape = SHAPE_ALL,
     .arg = &(const bench_ferry_spec){.url = "tcp://127.0.0.1:{port}"}},
#ifdef FERRY_BENCH_TLS
    /* tls:// (bench_tls.c): certificates made per measurement, given by the environment */
    {.name = "ferry-tls", .fn = bench_ferry_tls, .shape = SHAPE_ALL},
#else
    {.name = "ferry-tls", .missing = "libferry was built without OpenSSL (FERRY_TLS)"},
#endif
    {.name = "ferry-fifo",
     .fn = bench_ferry,
     .shape = SHAPE_ALL,
     .arg = &(const bench_ferry_spec){.url = "fifo://{dir}/bench"}},
    {.name = "ferry-pipe",
     .fn = bench_ferry,
     .shape = SHAPE_ALL,
     .arg = &(const bench_ferry_spec){.pair = ferry_pipe_pair}},
    {.name = "ferry-posixmq",
     .fn = bench_ferry,
     .shape = SHAPE_ALL,
     .arg = &(const bench_ferry_spec){.url = "posixmq:///{name}"},
     .limit = bench_raw_posixmq_limit},
    {.name = "ferry-sysvmq",
     .fn = bench_ferry,
     .shape = SHAPE_ALL,
     .arg = &(const bench_ferry_spec){.url = "sysvmq://{key}"},
     .limit = bench_raw_sysvmq_limit},
    /* RPC (src/rpc): ferry_call round trips to a ferry_recv_request / ferry_reply peer. */
    {.name = "ferry-rpc", .fn = bench_ferry_rpc, .shape = SHAPE_LINE},
    /* The naming service: connect through a private ferryd, one round trip, close. */
    {.name = "broker-connect",
     .fn = bench_broker_connect,
     .shape = SHAPE_LINE,
     .unavailable = bench_broker_unavailable},
    /* The kernel mechanisms, raw (no ferry). */
    {.name = "unix",
     .fn = bench_raw,
     .shape = SHAPE_ALL,
     .arg = &BENCH_RAW_UNIX,
     .limit = bench_raw_unix_limit},
    {.name = "tcp", .fn = bench_raw, .shape = SHAPE_ALL, .arg = &BENCH_RAW_TCP},
#ifdef FERRY_BENCH_TLS
    /* TLS 1.3 with OpenSSL directly over one TCP connection: ferry-tls's baseline */
    {.name = "tls", .fn = bench_tls_raw, .shape = SHAPE_ALL},
#else
    {.name = "tls", .missing = "libferry was built without OpenSSL (FERRY_TLS)"},
#endif
    {.name = "fifo", .fn = bench_raw, .shape = SHAPE_ALL, .arg = &BENCH_RAW_FIFO},
    {.name = "posixmq",
     .fn = bench_raw,
     .shape = SHAPE_ALL,
     .arg = &BENCH_RAW_POSIXMQ,
     .limit = bench_raw_posixmq_limit},
    {.name = "sysvmq",
     .fn = bench_raw,
     .shape = SHAPE_ALL,
     .arg = &BENCH_RAW_SYSVMQ,
     .limit = bench_raw_sysvmq_limit},
    /* Waited for as ferry-sysvmq waits (polling): the row ferry-sysvmq is compared with. */
    {.name = "sysvmq-poll",
     .fn = bench_raw,
     .shape = SHAPE_ALL,
     .arg = &BENCH_RAW_SYSVMQ_POLL,
     .limit = bench_raw_sysvmq_limit},
    {.name = "eventfd", .fn = bench_eventfd, .shape = SHAPE_LINE},
    /* Synchronization (bench_sync.c): semaphores uncontended, mutexes handed off between
     * two processes, notifications pingpong next to eventfd. The ferry rows are left out,
     * with a note, while this libferry lacks the object. */
    {.name = "posix-sem",
     .fn = bench_sem,
     .shape = SHAPE_UNCONTENDED,
     .arg = &(const bench_sync_spec){SYNC_POSIX, 0}},
    {.name = "sysv-sem",
     .fn = bench_sem,
     .shape = SHAPE_UNCONTENDED,
     .arg = &(const bench_sync_spec){SYNC_SYSV, 0}},
    {.name = "ferry-sem",
     .fn = bench_sem,
     .shape = SHAPE_UNCONTENDED,
     .arg = &(const bench_sync_spec){SYNC_FERRY, 0}},
    {.name = "pthread-robust-mutex",
     .fn = bench_mutex_handoff,
     .shape = SHAPE_HANDOFF,
     .arg = &(const bench_sync_spec){SYNC_POSIX, 0}},
    {.name = "ferry-mutex",
     .fn = bench_mutex_handoff,
     .shape = SHAPE_HANDOFF,
     .arg = &(const bench_sync_spec){SYNC_FERRY, 0}},
    {.name = "ferry-mutex-fair",
     .fn = bench_mutex_handoff,
     .shape = SHAPE_HANDOFF,
     .arg = &(const bench_sync_spec){SYNC_FERRY, FERRY_MUTEX_FAIR}},
    {.name = "rt-signal", .fn = bench_rt_signal, .shape = SHAPE_LINE},
    {.name = "ferry-event", .fn = bench_ferry_event, .shape = SHAPE_LINE},
    /* Shared-memory state (bench_region.c): reads of a 64-byte value, alone and beside a
     * writer that never pauses; and the change-notification round trip of regions. */
    {.name = "memcpy-value",
     .fn = bench_state_read,
     .shape = SHAPE_SELF,
     .arg = &(const bench_region_spec){STATE_MEMCPY, 0}},
    {.name = "ferry-state",
     .fn = bench_state_read,
     .shape = SHAPE_SELF,
     .arg = &(const bench_region_spec){STATE_FERRY, 0}},
    {.name = "pthread-rwlock",
     .fn = bench_state_read,
     .shape = SHAPE_SELF,
     .arg = &(const bench_region_spec){STATE_RWLOCK, 0}},
    {.name = "posix-shm+mutex",
     .fn = bench_state_read,
     .shape = SHAPE_SELF,
     .arg = &(const bench_region_spec){STATE_SHMMTX, 0}},
    {.name = "ferry-state+writer",
     .fn = bench_state_read,
     .shape = SHAPE_SELF,
     .arg = &(const bench_region_spec){STATE_FERRY, 1}},
    {.name = "pthread-rwlock+writer",
     .fn = bench_state_read,
     .shape = SHAPE_SELF,
     .arg = &(const bench_region_spec){STATE_RWLOCK, 1}},
    {.name = "posix-shm+mutex+writer",
     .fn = bench_state_read,
     .shape = SHAPE_SELF,
     .arg = &(const bench_region_spec){STATE_SHMMTX, 1}},
    {.name = "ferry-region-notify", .fn = bench_region_notify, .shape = SHAPE_LINE},
/* The peers, when ferry was built with them (tools/ferry/CMakeLists.txt). */
#ifdef FERRY_BENCH_ZMQ
    {.name = "zeromq-ipc",
     .fn = bench_lib,
     .shape = SHAPE_ALL,
     .arg = &(const lib_spec){&BENCH_LIB_ZMQ, "ipc"}},
    {.name = "zeromq-tcp",
     .fn = bench_lib,
     .shape = SHAPE_ALL,
     .arg = &(const lib_spec){&BENCH_LIB_ZMQ, "tcp"}},
#else
    {.name = "zeromq-ipc", .missing = FERRY_BENCH_MISSING_ZMQ},
    {.name = "zeromq-tcp", .missing = FERRY_BENCH_MISSING_ZMQ},
#endif
#ifdef FERRY_BENCH_NNG
    {.name = "nng-ipc",
     .fn = bench_lib,
     .shape = SHAPE_ALL,
     .arg = &(const lib_spec){&BENCH_LIB_NNG, NULL}},
#else
    {.name = "nng-ipc", .missing = FERRY_BENCH_MISSING_NNG},
#endif
#ifdef FERRY_BENCH_IOX
    {.name = "iceoryx",
     .fn = bench_lib,
     .shape = SHAPE_ALL,
     .arg = &(const lib_spec){&BENCH_LIB_IOX, NULL},
     .unavailable = bench_iox_unavailable,
     .done = bench_iox_done},
#else
    {.name = "iceoryx", .missing = FERRY_BENCH_MISSING_IOX},
#endif
/* Request/reply peers (bench_reqrep.c), for the RPC figures: pingpong 64 B. */
#ifdef FERRY_BENCH_ZMQ
    {.name = "zeromq-reqrep",
     .fn = bench_lib,
     .shape = SHAPE_LINE,
     .arg = &(const lib_spec){&BENCH_LIB_ZMQ_REQREP, NULL}},
#else
    {.name = "zeromq-reqrep", .missing = FERRY_BENCH_MISSING_ZMQ},
#endif
#ifdef FERRY_BENCH_SDBUS
    {.name = "dbus-call",
     .fn = bench_dbus_call,
     .shape = SHAPE_LINE,
     .unavailable = bench_dbus_unavailable},
#else
    {.name = "dbus-call", .missing = FERRY_BENCH_MISSING_SDBUS},
#endif
/* Between two network namespaces (bench_nats.c): request/reply through ferry-bridge and
 * NATS, its cnats baseline and ZeroMQ over tcp; only with --only (root, nats-server). */
#ifdef FERRY_BENCH_NATS
    {.name = "ferry-nats-rpc",
     .fn = bench_nats_ferry,
     .shape = SHAPE_LINE,
     .unavailable = bench_nats_unavailable,
     .done = bench_nats_done,
     .opt_in = 1},
    {.name = "nats-reqrep",
     .fn = bench_nats_reqrep,
     .shape = SHAPE_LINE,
     .unavailable = bench_nats_unavailable,
     .done = bench_nats_done,
     .opt_in = 1},
#ifdef FERRY_BENCH_ZMQ
    {.name = "zeromq-reqrep-netns",
     .fn = bench_nats_zmq,
     .shape = SHAPE_LINE,
     .unavailable = bench_nats_unavailable,
     .done = bench_nats_done,
     .opt_in = 1},
#else
    {.name = "zeromq-reqrep-netns", .missing = FERRY_BENCH_MISSING_ZMQ, .opt_in = 1},
#endif
/* The tls:// rows and their baselines with the peer on host B and the driver on A,
 * over the veth pair (bench_netns_row). */
#ifdef FERRY_BENCH_TLS
#define NETNS_ROW(nm, f, a)                                                                        \
    {                                                                                              \
        .name = nm, .fn = bench_netns_row, .shape = SHAPE_ALL,                                     \
        .arg = &(const bench_netns_spec){f, a}, .unavailable = bench_nats_unavailable,             \
        .done = bench_nats_done, .opt_in = 1                                                       \
    }
    NETNS_ROW("ferry-tls-netns", bench_ferry_tls,
              &(const bench_ferry_spec){.url = "tls://10.99.0.1:{port}"}),
    NETNS_ROW("tls-netns", bench_tls_raw, NULL),
    NETNS_ROW("ferry-tcp-netns", bench_ferry,
              &(const bench_ferry_spec){.url = "tcp://10.99.0.1:{port}"}),
    NETNS_ROW("tcp-netns", bench_raw, &BENCH_RAW_TCP),
#undef NETNS_ROW
#else
    {.name = "ferry-tls-netns", .missing = "libferry was built without OpenSSL (FERRY_TLS)"},
    {.name = "tls-netns", .missing = "libferry was built without OpenSSL (FERRY_TLS)"},
    {.name = "ferry-tcp-netns", .missing = "libferry was built without OpenSSL (FERRY_TLS)"},
    {.name = "tcp-netns", .missing = "libferry was built without OpenSSL (FERRY_TLS)"},
#endif
#else
    {.name = "ferry-nats-rpc", .missing = FERRY_BENCH_MISSING_NATS, .opt_in = 1},
    {.name = "nats-reqrep", .missing = FERRY_BENCH_MISSING_NATS, .opt_in = 1},
    {.name = "zeromq-reqrep-netns", .missing = FERRY_BENCH_MISSING_NATS, .opt_in = 1},
    {.name = "ferry-tls-netns", .missing = FERRY_BENCH_MISSING_NATS, .opt_in = 1},
    {.name = "tls-netns", .missing = FERRY_BENCH_MISSING_NATS, .opt_in = 1},
    {.name = "ferry-tcp-netns", .missing = FERRY_BENCH_MISSING_NATS, .opt_in = 1},
    {.name = "tcp-netns", .missing = FERRY_BENCH_MISSING_NATS, .opt_in = 1},
#endif
};
const size_t BENCH_NMECHS = sizeof BENCH_MECHS / sizeof BENCH_MECHS[0];

const bench_target BENCH_TARGETS[] = {
    /* ferry-shm pingpong 64 is in six targets: iceoryx, then ferry-shm, then the spin
     * floor are measured back to back, then ferry-rpc, zeromq-reqrep, dbus-call (the RPC
     * targets below) and zeromq-ipc. */
    {"ferry-shm pingpong 64 p50 / iceoryx pingpong 64 p50", "ferry-shm", "iceoryx", BENCH_PINGPONG,
     BENCH_PINGPONG, 64, 64, F_P50, 1, 0.2},
    {"ferry-shm pingpong 64 p50 / spin-baseline p50", "ferry-shm", "spin-baseline", BENCH_PINGPONG,
     BENCH_PINGPONG, 64, 64, F_P50, 1, 1.5},
    /* The software path alone: one thread's send+recv of 64 B on one channel, in ns. */
    {"ferry-shm-self send+recv 64 B (ns, one thread)", "ferry-shm-self", NULL, BENCH_UNCONTENDED,
     BENCH_UNCONTENDED, 64, 64, F_P50, 1, 25},
    /* RPC (issue 5): the request/reply peers against ferry-rpc; against ferry-shm
     * pingpong 64 as INFO (context, and the only ratio of a run without ferry-rpc). Here,
     * before the other ferry-rpc target: ferry-rpc (the denominator), zeromq-reqrep and
     * dbus-call are measured back to back, right after ferry-shm and the spin floor. */
    {"zeromq-reqrep p50 / ferry-rpc p50", "zeromq-reqrep", "ferry-rpc", BENCH_PINGPONG,
     BENCH_PINGPONG, 64, 64, F_P50, 0, 20},
    {"dbus-call p50 / ferry-rpc p50", "dbus-call", "ferry-rpc", BENCH_PINGPONG, BENCH_PINGPONG, 64,
     64, F_P50, 0, 50},
    {"zeromq-reqrep p50 / ferry-shm pingpong 64 p50", "zeromq-reqrep", "ferry-shm", BENCH_PINGPONG,
     BENCH_PINGPONG, 64, 64, F_P50, BENCH_INFO, 0},
    {"dbus-call p50 / ferry-shm pingpong 64 p50", "dbus-call", "ferry-shm", BENCH_PINGPONG,
     BENCH_PINGPONG, 64, 64, F_P50, BENCH_INFO, 0},
    {"ferry-shm pingpong 64 p50 / zeromq-ipc pingpong 64 p50", "ferry-shm", "zeromq-ipc",
     BENCH_PINGPONG, BENCH_PINGPONG, 64, 64, F_P50, 1, 0.02},
    /* RPC over the same channel: the cost of correlation (issue 5; 1.2 since issue 15
     * item 7: the single-caller fast path and the server's inline locks). */
    {"ferry-rpc pingpong 64 p50 / ferry-shm pingpong 64 p50", "ferry-rpc", "ferry-shm",
     BENCH_PINGPONG, BENCH_PINGPONG, 64, 64, F_P50, 1, 1.2},
    {"ferry-shm-blocking pingpong 64 p50 / futex-baseline p50", "ferry-shm-blocking",
     "futex-baseline", BENCH_PINGPONG, BENCH_PINGPONG, 64, 64, F_P50, 1, 1.1}, /* issue 15 */
    {"ferry-shm stream 64 msgs/s / pipe stream 64 msgs/s", "ferry-shm", "pipe", BENCH_STREAM,
     BENCH_STREAM, 64, 64, F_MSGS, 0, 10},
    {"ferry-shm-zerocopy pingpong 1 MiB p50 / its 64 B p50", "ferry-shm-zerocopy",
     "ferry-shm-zerocopy", BENCH_PINGPONG, BENCH_PINGPONG, 1048576, 64, F_P50, 1, 2},
    /* ferry-shm stream 1 MiB: the two-copy ring, ferry-shm, memcpy, unix back to back. The
     * ring is the like-for-like floor (two processes, two copies); memcpy (one core, one
     * copy) is information. */
    {"ferry-shm stream 1 MiB bytes/s / ring-baseline bytes/s", "ferry-shm", "ring-baseline",
     BENCH_STREAM, BENCH_STREAM, 1048576, 1048576, F_BYTES, 0, 0.9},
    {"ferry-shm stream 1 MiB bytes/s / memcpy-baseline bytes/s", "ferry-shm", "memcpy-baseline",
     BENCH_STREAM, BENCH_STREAM, 1048576, 1048576, F_BYTES, BENCH_INFO, 0},
    {"ferry-shm stream 1 MiB bytes/s / unix stream 1 MiB bytes/s", "ferry-shm", "unix",
     BENCH_STREAM, BENCH_STREAM, 1048576, 1048576, F_BYTES, 0, 3},
    /* Sleeps in the kernel (FUTEX_WAIT, receiver and sender together) per message of the
     * 1 MiB stream: a copy that outlasts the spin must not cost a sleep (issue 15). */
    {"ferry-shm stream 1 MiB sleeps per message", "ferry-shm", NULL, BENCH_STREAM, BENCH_STREAM,
     1048576, 1048576, F_SLEEPS, 1, 0.05},
/* Each ferry kernel transport against its raw mechanism, at every pingpong size both
 * have. Printed once both rows exist (the ferry-<scheme> rows come with their
 * transports). */
#define VS_RAW(ferry, raw)                                                                         \
    {                                                                                              \
        ferry " pingpong p50 / " raw " pingpong p50", ferry, raw, BENCH_PINGPONG, BENCH_PINGPONG,  \
            BENCH_EACH_SIZE, BENCH_EACH_SIZE, F_P50, 1, 1.25                                       \
    }
/* The four of issue 15, item 4 (unix, tcp, fifo, pipe): at most 1.15x raw at 64 B..64 KiB,
 * the target; 1.25 at 1 MiB (the bench's own). One entry per size, the largest
 * first: bench_measure_order measures a target's sizes from the largest down, and the
 * rows after ferry-unix 64 expect it last. */
#define VS_RAW_AT(ferry, raw, size, limit)                                                         \
    {                                                                                              \
        ferry " pingpong p50 / " raw " pingpong p50, " #size " B", ferry, raw, BENCH_PINGPONG,     \
            BENCH_PINGPONG, size, size, F_P50, 1, limit                                            \
    }
#define VS_RAW_FD(ferry, raw)                                                                      \
    VS_RAW_AT(ferry, raw, 1048576, 1.25), VS_RAW_AT(ferry, raw, 65536, 1.15),                      \
        VS_RAW_AT(ferry, raw, 4096, 1.15), VS_RAW_AT(ferry, raw, 64, 1.15)
    VS_RAW_FD("ferry-unix", "unix"),
    /* Right after VS_RAW_FD ferry-unix, so broker-connect is measured just after ferry-unix 64. */
    {"broker-connect p50 / ferry-unix pingpong 64 p50", "broker-connect", "ferry-unix",
     BENCH_PINGPONG, BENCH_PINGPONG, 64, 64, F_P50, 1, 20},
    VS_RAW_FD("ferry-tcp", "tcp"),
    VS_RAW("ferry-tls", "tls"),
    {"ferry-tls stream 1 MiB bytes/s / tls stream 1 MiB bytes/s", "ferry-tls", "tls", BENCH_STREAM,
     BENCH_STREAM, 1048576, 1048576, F_BYTES, 0, 0.8},
    {"ferry-tls pingpong 64 p50 / ferry-tcp pingpong 64 p50", "ferry-tls", "ferry-tcp",
     BENCH_PINGPONG, BENCH_PINGPONG, 64, 64, F_P50, BENCH_INFO, 0},
    VS_RAW_FD("ferry-fifo", "fifo"),
    VS_RAW_FD("ferry-pipe", "pipe"),
    VS_RAW("ferry-posixmq", "posixmq"),
    VS_RAW("ferry-sysvmq", "sysvmq-poll"), /* both poll: raw sysvmq sleeps in msgrcv */
#undef VS_RAW
#undef VS_RAW_AT
#undef VS_RAW_FD
    /* Synchronization (issue 6). posix-sem, ferry-sem, sysv-sem back to back. */
    {"ferry-sem uncontended p50 / posix-sem uncontended p50", "ferry-sem", "posix-sem",
     BENCH_UNCONTENDED, BENCH_UNCONTENDED, 0, 0, F_P50, 1, 1.2},
    {"sysv-sem uncontended p50 / ferry-sem uncontended p50", "sysv-sem", "ferry-sem",
     BENCH_UNCONTENDED, BENCH_UNCONTENDED, 0, 0, F_P50, 0, 10},
    /* The plain mutex: no threshold given, the ratio is printed as INFO. The fair one
     * (issue 15 item 7: its waiters spin for their turn, peer-aware, before sleeping):
     * within 5x the robust pthread mutex; and its hand-offs per second beside the robust
     * one's, as INFO (a mean: it shows the sleeps that p50 does not). */
    {"ferry-mutex handoff p50 / pthread-robust-mutex p50", "ferry-mutex", "pthread-robust-mutex",
     BENCH_HANDOFF, BENCH_HANDOFF, 0, 0, F_P50, BENCH_INFO, 0},
    {"ferry-mutex-fair handoff p50 / pthread-robust-mutex p50", "ferry-mutex-fair",
     "pthread-robust-mutex", BENCH_HANDOFF, BENCH_HANDOFF, 0, 0, F_P50, 1, 5},
    {"pthread-robust-mutex handoffs/s / ferry-mutex-fair handoffs/s", "pthread-robust-mutex",
     "ferry-mutex-fair", BENCH_HANDOFF, BENCH_HANDOFF, 0, 0, F_MSGS, BENCH_INFO, 0},
    {"ferry-event pingpong 64 p50 / eventfd pingpong 64 p50", "ferry-event", "eventfd",
     BENCH_PINGPONG, BENCH_PINGPONG, 64, 64, F_P50, BENCH_INFO, 0},
    {"rt-signal pingpong 64 p50 / eventfd pingpong 64 p50", "rt-signal", "eventfd", BENCH_PINGPONG,
     BENCH_PINGPONG, 64, 64, F_P50, BENCH_INFO, 0},
    /* Shared-memory state (issue 17): a ferry_state read of 64 B against a plain memcpy
     * of the value (p50 at most 2x), and against a pthread rwlock in shared memory while a
     * writer writes without pause (at least 5x the reads per second: the mean, which
     * holds the reads that waited for the writer's lock; their p50 is INFO, since most
     * batches of 100 reads find the lock free); the rest as INFO. */
    {"ferry-state read 64 p50 / memcpy-value p50", "ferry-state", "memcpy-value", BENCH_UNCONTENDED,
     BENCH_UNCONTENDED, 64, 64, F_P50, 1, 2},
    {"ferry-state+writer reads/s / pthread-rwlock+writer reads/s", "ferry-state+writer",
     "pthread-rwlock+writer", BENCH_UNCONTENDED, BENCH_UNCONTENDED, 64, 64, F_MSGS, 0, 5},
    {"pthread-rwlock+writer read p50 / ferry-state+writer read p50", "pthread-rwlock+writer",
     "ferry-state+writer", BENCH_UNCONTENDED, BENCH_UNCONTENDED, 64, 64, F_P50, BENCH_INFO, 0},
    {"posix-shm+mutex+writer read p50 / ferry-state+writer read p50", "posix-shm+mutex+writer",
     "ferry-state+writer", BENCH_UNCONTENDED, BENCH_UNCONTENDED, 64, 64, F_P50, BENCH_INFO, 0},
    {"pthread-rwlock read p50 / ferry-state read p50", "pthread-rwlock", "ferry-state",
     BENCH_UNCONTENDED, BENCH_UNCONTENDED, 64, 64, F_P50, BENCH_INFO, 0},
    {"posix-shm+mutex read p50 / ferry-state read p50", "posix-shm+mutex", "ferry-state",
     BENCH_UNCONTENDED, BENCH_UNCONTENDED, 64, 64, F_P50, BENCH_INFO, 0},
    {"ferry-region-notify pingpong 64 p50 / eventfd pingpong 64 p50", "ferry-region-notify",
     "eventfd", BENCH_PINGPONG, BENCH_PINGPONG, 64, 64, F_P50, BENCH_INFO, 0},
    /* Across hosts (issue 18, docs/cluster.md): a call through both ferry-bridges and
     * nats-servers between two network namespaces against a direct cnats request/reply
     * along the same path; ZeroMQ over tcp between the same namespaces beside it. */
    {"ferry-nats-rpc p50 / nats-reqrep p50 (two network namespaces)", "ferry-nats-rpc",
     "nats-reqrep", BENCH_PINGPONG, BENCH_PINGPONG, 64, 64, F_P50, 1, 1.3},
    {"ferry-nats-rpc p50 / zeromq-reqrep-netns p50", "ferry-nats-rpc", "zeromq-reqrep-netns",
     BENCH_PINGPONG, BENCH_PINGPONG, 64, 64, F_P50, BENCH_INFO, 0},
    /* tls:// between the namespaces: the targets of ferry-tls over the veth pair */
    {"ferry-tls-netns pingpong p50 / tls-netns pingpong p50", "ferry-tls-netns", "tls-netns",
     BENCH_PINGPONG, BENCH_PINGPONG, BENCH_EACH_SIZE, BENCH_EACH_SIZE, F_P50, 1, 1.25},
    {"ferry-tls-netns stream 1 MiB bytes/s / tls-netns stream 1 MiB bytes/s", "ferry-tls-netns",
     "tls-netns", BENCH_STREAM, BENCH_STREAM, 1048576, 1048576, F_BYTES, 0, 0.8},
    {"ferry-tcp-netns pingpong p50 / tcp-netns pingpong p50", "ferry-tcp-netns", "tcp-netns",
     BENCH_PINGPONG, BENCH_PINGPONG, BENCH_EACH_SIZE, BENCH_EACH_SIZE, F_P50, BENCH_INFO, 0},
    {"ferry-tls-netns pingpong 64 p50 / ferry-tcp-netns pingpong 64 p50", "ferry-tls-netns",
     "ferry-tcp-netns", BENCH_PINGPONG, BENCH_PINGPONG, 64, 64, F_P50, BENCH_INFO, 0},
/* More processes than CPUs (issue 15, `--pairs N`): N pairs pinging 64 B at once,
 * unpinned; aggregate round trips/s against the raw pipe's in the same run. Any other N
 * given to --pairs prints as INFO. */
#define VS_PIPE_PAIRS(n)                                                                           \
    {                                                                                              \
        "ferry-shm --pairs " #n " round trips/s / pipe --pairs " #n, "ferry-shm", "pipe",          \
            BENCH_PAIRS, BENCH_PAIRS, n, n, F_MSGS, 0, 1.0                                         \
    }
    VS_PIPE_PAIRS(2),
    VS_PIPE_PAIRS(8),
    VS_PIPE_PAIRS(64),
#undef VS_PIPE_PAIRS
};
_Static_assert(sizeof BENCH_TARGETS / sizeof BENCH_TARGETS[0] <= BENCH_MAX_TARGETS,
               "raise BENCH_MAX_TARGETS");
const size_t BENCH_NTARGETS = sizeof BENCH_TARGETS / sizeof BENCH_TARGETS[0];
