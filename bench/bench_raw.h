// SPDX-License-Identifier: MIT
/*
 * bench_raw.h — the raw kernel mechanisms of `ferry bench`, measured without ferry: one
 * runner (bench_raw.c) drives any duplex link given as a raw_ops table, so a mechanism is
 * just its way to make, keep, use and remove the link:
 *   unix     SOCK_SEQPACKET socketpair                           (bench_raw_sock.c)
 *   tcp      a connection over 127.0.0.1, TCP_NODELAY, framed      (bench_raw_sock.c)
 *   fifo     two named pipes in a private temp dir, framed         (bench_raw_fifo.c)
 *   posixmq  two POSIX message queues                              (bench_raw_mq.c)
 *   sysvmq   one System V queue, one mtype per direction           (bench_raw_mq.c)
 *   sysvmq-poll  the same, waited for as ferry-sysvmq waits (polls)  (bench_raw_mq.c)
 * (eventfd has no payload and its own runner: bench_raw_eventfd.c.)
 *
 * The protocol is that of every row: pingpong — the driver sends a stamped message, the
 * peer checks it and echoes the bytes it received; stream — the peer sends stamped
 * messages until it is told to stop, then ends the link (end of file, or an empty message
 * on a queue), and the driver checks every one.
 *
 * Byte streams (tcp, fifo) frame each message with a 4-byte length prefix, written with
 * the payload in one writev and read fully through a buffered reader (raw_reader): small
 * messages are taken many per read, large ones are read straight into place.
 * Every blocking call retries on EINTR until bench_guard_expired() (the driver arms the
 * guard), so no wait is unbounded.
 */
#ifndef FERRY_TOOL_BENCH_RAW_H
#define FERRY_TOOL_BENCH_RAW_H

#include "bench.h"

#include <sys/types.h>

typedef struct raw_link raw_link;

typedef struct raw_ops {
    /* Before fork: make the link (every resource both sides need). NULL with res->err set
     * on failure, and then nothing is left behind. */
    raw_link *(*make)(const bench_job *job, bench_result *res);
    /* After fork, in each process: keep only its own ends (side 0: the driver, 1: the
     * peer). 0 or -errno. */
    int (*side)(raw_link *l, int side);
    /* Send one whole message. 0 or -errno. */
    int (*send)(raw_link *l, const void *p, size_t n);
    /* Receive one whole message into p (cap bytes): its length, 0 when the other side has
     * ended the link, or -errno (-EMSGSIZE: longer than cap). */
    ssize_t (*recv)(raw_link *l, void *p, size_t cap);
    /* Tell the other side that nothing more comes: close the sending end, or send the
     * end marker. */
    void (*end)(raw_link *l);
    /* Release this process's part of the link. The driver calls it with remove = 1 after
     * the peer is reaped: then every name (file, queue) is removed as well. */
    void (*free)(raw_link *l, int remove);
} raw_ops;

extern const raw_ops BENCH_RAW_UNIX, BENCH_RAW_TCP, BENCH_RAW_FIFO, BENCH_RAW_POSIXMQ,
    BENCH_RAW_SYSVMQ, BENCH_RAW_SYSVMQ_POLL;

/* The largest message each can carry here, and the limit that decides it. */
size_t bench_raw_unix_limit(const char **limit_name);
size_t bench_raw_posixmq_limit(const char **limit_name);
size_t bench_raw_sysvmq_limit(const char **limit_name);

/* ---- helpers for the links (bench_raw.c) */

/* Write all n bytes (EINTR-safe). 0 or -errno. */
int raw_write_full(int fd, const void *p, size_t n);
/* Write one frame: the 4-byte length, then the payload, in one writev where possible. */
int raw_write_frame(int fd, const void *p, size_t n);

/* A buffered reader of frames from a byte stream. */
typedef struct raw_reader {
    int fd;
    unsigned char *buf;
    size_t cap, head, tail; /* buffered bytes: buf[head..tail) */
} raw_reader;
int raw_reader_init(raw_reader *r, int fd); /* 0 or -ENOMEM */
void raw_reader_free(raw_reader *r);
/* Read one frame into p: its length, 0 at end of file between frames, -EPROTO inside one,
 * -EMSGSIZE when it is longer than cap, or -errno. */
ssize_t raw_read_frame(raw_reader *r, void *p, size_t cap);

/* A connected TCP pair over 127.0.0.1, made before fork (bench_raw_sock.c): fd[0] the
 * accepted end, fd[1] the connecting one, both TCP_NODELAY. 0, or -1 with errno set and
 * fd[] as far as it was made (the caller closes what is >= 0). */
int raw_tcp_pair(int fd[2]);

/* Read a whole number from a /proc file; 0 when it cannot. */
size_t raw_proc_size(const char *path);

#endif /* FERRY_TOOL_BENCH_RAW_H */
