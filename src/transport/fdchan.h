// SPDX-License-Identifier: MIT
/*
 * fdchan.h — a channel of ferry frames over kernel file descriptors: the common engine of
 * the unix, tcp, fifo and pipe transports. Each of those is one file that makes the
 * descriptors (listen, accept, connect, pipe) and hands them to this engine.
 *
 * Two kinds of descriptor:
 *   packet  SOCK_SEQPACKET: one frame per packet, fds ride as SCM_RIGHTS on it;
 *   stream  a byte stream (pipe, FIFO, TCP): frames back to back, no fds.
 * Every frame is the 32-byte header of docs/architecture.md and its payload. Frames carry seq 1, 2,
 * ... in order; the first frame each way is a HELLO (seq 0, an 8-byte payload: the
 * channel's max_msg and flags), so an end that joins later (a connecting client, a child
 * that got its pipe ends across exec) learns the channel's shape from its creator. With
 * FERRY_CHECKSUM (always on tcp) every frame carries a crc32c, checked on receipt.
 * Anything that does not decode exactly — bad header, wrong seq, a frame longer than
 * max_msg, a crc mismatch, truncated control data — is -EBADMSG, and the channel is
 * closed for good (both descriptors shut, so the peer sees -EPIPE).
 *
 * Receiving: what the kernel has is parsed into whole messages kept in a local queue,
 * from which the type filter picks (messages passed over stay queued in order). The
 * queue is bounded (FDCHAN_BACKLOG_MAX bytes, and max_skipped_fds fds in its messages):
 * past either bound nothing more is read, so the kernel's buffers fill and the sender
 * waits; a receive that matches a queued message (any untyped one does) still proceeds.
 * Copies: a message goes straight to the caller's buffer when it is the one the receive
 * in progress returns (filter >= 0, nothing matching queued before it, and it fits);
 * otherwise into a message of its own, and the receive that takes it copies it out.
 *   packet  recvmsg writes the payload into the caller's buffer when the filter is 0 and
 *           the buffer holds max_msg bytes (the header comes with the payload, so only
 *           then can no valid packet be too long for it); else into a message.
 *   stream  read through a 64 KiB buffer and copied out once, to the caller or into a
 *           message. A frame longer than that buffer has its rest read by the kernel
 *           straight into the caller's buffer or its message (the crc summed as it
 *           comes in): ferry copies no more of it than the first 64 KiB.
 * A message too long for the caller's buffer is never written there: it stays queued
 * (-EMSGSIZE). A receive that ends (timeout) in the middle of a frame going into the
 * caller's buffer moves what came into a message of its own, and the rest goes there.
 * Sending: header and payload go out with one writev/sendmsg. On a byte stream the kernel
 * may take part of a frame; the rest is kept and written before anything else, so frames
 * are never torn: a send that has begun is delivered (it returns 0), and the remainder
 * goes out first on the next send (or at close, as far as the kernel takes it without
 * waiting). A send that cannot begin before its deadline sends nothing.
 * Writes to a pipe whose reader is gone raise no SIGPIPE: pwritev2 with RWF_NOSIGNAL
 * (Linux 6.18), else SIGPIPE is blocked in the calling thread for the write and one the
 * write raised is consumed (a SIGPIPE the caller had pending stays pending). The process's
 * disposition of SIGPIPE is never changed.
 * Threads: one sending and one receiving thread at a time, as for every channel.
 */
#ifndef FERRY_TRANSPORT_FDCHAN_H
#define FERRY_TRANSPORT_FDCHAN_H

#include "transport.h"

#include <sys/uio.h>

#define FDCHAN_PACKET   1u /* SOCK_SEQPACKET: frame boundaries and SCM_RIGHTS */
#define FDCHAN_CHECKSUM 2u /* crc on every frame (FERRY_CHECKSUM, or the transport's rule) */
/* this end takes no fds (FERRY_NO_FDS): a creator says it in its HELLO's flags word, a
 * joiner in its HELLO's type (below) */
#define FDCHAN_NO_FDS 4u
/* joiner: the creator's HELLO said FDCHAN_NO_FDS: sends with fds are -EOPNOTSUPP */
#define FDCHAN_PEER_NO_FDS 8u
/* creator: believe the identity a joiner of relay_uid names (FERRY_TRUST_RELAY) */
#define FDCHAN_TRUST_RELAY 16u

/*
 * The HELLO's type field (ignored by every libferry before these bits: they checked the
 * flags word and the length, never the type, so a bit there is a hint an older peer
 * drops, never a refusal). Packet mode only (unix); stream creators set and read none.
 *   creator's HELLO   FDCHAN_HT_READS_REMOTE: this creator reads a joiner's HT_REMOTE.
 *   joiner's HELLO    FDCHAN_HT_NO_FDS: the joiner takes no fds (its FERRY_NO_FDS);
 *                     FDCHAN_HT_REMOTE: the payload is the 8 bytes and then 1..
 *                     FERRY_REMOTE_ID_MAX bytes 0x21..0x7e, the identity the joiner
 *                     relays for (sent only to a creator that said HT_READS_REMOTE).
 * A creator believes the identity only with FDCHAN_TRUST_RELAY and a peer of relay_uid;
 * a malformed one (length, bytes) is -EBADMSG whoever sent it. Other bits are ignored.
 */
#define FDCHAN_HT_READS_REMOTE 1u
#define FDCHAN_HT_NO_FDS       1u
#define FDCHAN_HT_REMOTE       2u

/* The default and largest max_msg of the stream transports. */
#define FDCHAN_DEFAULT_MAX ((size_t)1 << 20)

/*
 * A byte-stream layer between the engine and its socket (tls.c: TLS records), instead of
 * the plain read/sendmsg of the descriptor. Its calls never block (the socket is
 * O_NONBLOCK); the engine still waits on rfd/wfd itself. read and writev may run at the
 * same time (the receiving and the sending thread): the layer locks what they share.
 *   read     up to len bytes of the stream: the count, 0 at its end, or -1 and errno
 *            (EAGAIN nothing now; ECONNRESET as the kernel's; EBADMSG the layer found the
 *            stream corrupt; other values as a read's). Fills as much of len as it can.
 *   writev   take bytes of iov in order: the count taken (all of it is then on its way,
 *            also what the layer still holds: it sends that before anything else), or -1
 *            and errno (EAGAIN: nothing taken, wait for POLLOUT; EPIPE, ECONNRESET...).
 *   pending  bytes the layer holds for read already (decrypted records): while > 0 a
 *            receive must not wait on rfd, and the poll fd is readable.
 *   close    free the layer; quiet = 0: tell the peer the stream ends (as far as the
 *            socket takes it now, never waiting); 1: write nothing (a copy of the end
 *            after fork(): the socket is shared with the other process).
 */
typedef struct ferry__fdchan_io {
    ssize_t (*read)(void *ctx, void *buf, size_t len);
    ssize_t (*writev)(void *ctx, const struct iovec *iov, int niov);
    size_t (*pending)(void *ctx);
    void (*close)(void *ctx, int quiet);
} ferry__fdchan_io;

/* How the engine learns the channel's shape. */
typedef struct ferry__fdchan_cfg {
    const ferry__chan_ops *ops; /* ferry__fdchan_ops or ferry__fdchan_peer_ops */
    int rfd, wfd;               /* may be the same socket; the channel owns them from now on */
    unsigned kind;              /* FDCHAN_PACKET, FDCHAN_CHECKSUM */
    size_t max_msg;             /* creator: the channel's max_msg; joiner: 0 (learnt from HELLO) */
    const char *unlink1, *unlink2; /* paths to remove when this end closes (or NULL) */
    uint32_t max_skipped_fds;      /* this end's ferry_chan_opts.max_skipped_fds; 0: default */
    const ferry__fdchan_io *io;    /* a stream layer (stream sockets only) or NULL */
    void *io_ctx;                  /* its state: the channel owns it from now on (io->close) */
    /* packet mode: a creator with FDCHAN_TRUST_RELAY believes joiners of this uid */
    uid_t relay_uid;
    /* packet mode, a joiner: FDCHAN_NO_FDS in kind says "no fds" in its HELLO's type;
     * relay_for (or NULL; valid: checked by ferry__chan_opts_in) the identity it names */
    const char *relay_for;
} ferry__fdchan_cfg;

/*
 * Make a channel end. A creator (cfg->max_msg > 0) sends its HELLO and returns at once; a
 * joiner waits until deadline for the creator's HELLO, then answers with its own. On
 * failure the descriptors are closed. Errors: -ETIMEDOUT/-EAGAIN (no HELLO), -EBADMSG,
 * -EPIPE, -ENOMEM.
 */
int ferry__fdchan_new(const ferry__fdchan_cfg *cfg, int64_t deadline, ferry_chan **out);

/* The io_ctx of an end made with a stream layer (NULL without one). */
void *ferry__fdchan_io_ctx(const ferry_chan *ch);

/* Record the peer's credentials (unix: SO_PEERCRED taken at connect/accept). */
void ferry__fdchan_set_cred(ferry_chan *ch, const ferry_cred *cred);

/* 1 once the kernel said it has no RWF_NOSIGNAL (before Linux 6.18): pipe and FIFO writes
 * then block SIGPIPE in the calling thread for the write instead. Tests set it to check
 * that way on a newer kernel. */
extern _Atomic int ferry__fdchan_no_nosignal;

/* The channel ops every fd transport shares: ferry__fdchan_peer_ops also tells the
 * peer's credentials (unix), ferry__fdchan_ops cannot (tcp, fifo, pipe). */
extern const ferry__chan_ops ferry__fdchan_ops, ferry__fdchan_peer_ops;

/* The functions behind them. */
int ferry__fdchan_sendmsg(ferry_chan *ch, const ferry_msg *m, ferry__when *w);
ssize_t ferry__fdchan_recvmsg(ferry_chan *ch, ferry_msg *m, int64_t filter, int keep_fds,
                              ferry__when *w);
int ferry__fdchan_fd(ferry_chan *ch);
size_t ferry__fdchan_max_msg(const ferry_chan *ch);
int ferry__fdchan_peer(const ferry_chan *ch, ferry_cred *out);
ssize_t ferry__fdchan_peer_remote(const ferry_chan *ch, char *buf, size_t cap);
void ferry__fdchan_close(ferry_chan *ch);

/* Wait until fd has `events` (POLLIN/POLLOUT) or the deadline passes: 0, -ETIMEDOUT,
 * -EAGAIN (deadline 0), or another -errno. EINTR does not shorten the wait. */
int ferry__wait_fd(int fd, short events, int64_t deadline);

/* The max_msg a creator asks for: opts->max_msg, or the default; -EINVAL above the
 * limit. */
int ferry__fdchan_max_from_opts(const ferry_chan_opts *o, size_t limit, size_t *max);

#endif
