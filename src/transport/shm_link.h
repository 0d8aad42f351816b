// SPDX-License-Identifier: MIT
/*
 * shm_link.h — the Unix-socket control link of a shm channel (SOCK_SEQPACKET).
 *
 * The link carries, in order, from each producer to its consumer:
 *   SETUP (once, creator -> adopter): the channel's shape and 2 fds: the two direction
 *          segments (creator->adopter first);
 *   FDS   the fds riding on record `seq`, sent before that record is committed;
 *   SEG   the next ring segment of an unbounded direction, sent before the JUMP record
 *          `seq` that points to it;
 *   READY (no fds) only while the consumer has armed its ferry_chan_poll_fd (the ring's
 *          `armed` word): the producer committed a record and turned the ring's `ready`
 *          word from 0 to 1. It makes the link readable, which is what the consumer's
 *          poll fd watches, so a channel end needs no descriptor besides the link until
 *          it is armed (issue 15: one fd per channel end).
 * Because a producer sends FDS and SEG before it commits the record they belong to, its
 * consumer finds them already queued when it reaches the record (MSG_DONTWAIT); a
 * mismatch (kind, seq, fd count, truncated control data) is -EBADMSG. READY messages in
 * front of the one asked for are skipped (ferry__link_recv) or drained
 * (ferry__link_drain_ready); a legitimate producer has at most one in flight per time the
 * consumer cleared `ready`, so more than FERRY__LINK_READY_MAX in a row is -EBADMSG.
 * A hang-up on the link means the peer is gone (its process died or it closed).
 * Every received fd gets FD_CLOEXEC; on any error all fds that did arrive are closed.
 */
#ifndef FERRY_TRANSPORT_SHM_LINK_H
#define FERRY_TRANSPORT_SHM_LINK_H

#include <stdint.h>

#define FERRY__LINK_SETUP 1u
#define FERRY__LINK_FDS   2u
#define FERRY__LINK_SEG   3u
#define FERRY__LINK_READY 4u

#define FERRY__LINK_READY_MAX 4096 /* READY messages skipped in a row before -EBADMSG */

#define FERRY__SETUP_MAGIC 0x48595246u /* "FRYH" */

typedef struct ferry__link_msg {
    uint32_t magic; /* FERRY__SETUP_MAGIC */
    uint32_t kind;
    uint64_t seq;        /* FDS, SEG: the record this belongs to */
    uint64_t ring_bytes; /* SETUP: initial ring per direction; SEG: the new ring's size */
    uint64_t max_msg;    /* SETUP */
    uint64_t mem_cap;    /* SETUP */
    uint32_t capacity;   /* SETUP */
    uint32_t flags;      /* SETUP: FERRY_CHECKSUM */
} ferry__link_msg;

/* Send m with nfds fds (nfds <= 16), waiting for room until deadline.
 * Errors: -EPIPE (peer gone), -EINVAL (a bad fd), -ETIMEDOUT/-EAGAIN. */
int ferry__link_send(int sock, const ferry__link_msg *m, const int *fds, unsigned nfds,
                     int64_t deadline);

/* Receive one message of exactly `kind` carrying exactly nfds fds into fds[], waiting
 * until deadline (0 = only what is queued). Errors: -EBADMSG (anything else arrived or
 * was truncated), -EPIPE (hang-up), -ETIMEDOUT/-EAGAIN (nothing yet). */
int ferry__link_recv(int sock, uint32_t kind, ferry__link_msg *m, int *fds, unsigned nfds,
                     int64_t deadline);

/* Send READY without waiting; a full link is readable already (the message is not
 * needed), and a hung-up one is the liveness check's business: nothing is reported. */
void ferry__link_send_ready(int sock);

/* Take the READY messages at the front of the link (none of any other kind: FDS and SEG
 * stay queued for their records). Returns 0, or -EBADMSG (a malformed READY, or more than
 * FERRY__LINK_READY_MAX of them). */
int ferry__link_drain_ready(int sock);

/* 0 while the peer is connected, -EPIPE once it hung up. One poll(), no waiting. */
int ferry__link_alive(int sock);

#endif
