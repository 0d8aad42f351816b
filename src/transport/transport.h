// SPDX-License-Identifier: MIT
/*
 * transport.h — the contract between the generic channel (src/chan) and a transport.
 *
 * A transport is one file and one table: a ferry__transport, whose doors make channel
 * ends (listen, open, pair, adopt, from_sock) and which points to its two kinds of
 * objects' ops: ferry__listener_ops for a listener (accept, poll, close) and
 * ferry__chan_ops for a channel end (send, receive, zero copy, poll, close). Its channel
 * struct begins with `struct ferry_chan` (the generic part: chan ops pointer and
 * counters) and its listener with `struct ferry_listener` (listener ops pointer, URL).
 * chan.c lists the tables (by scheme, and by FERRY_KIND_* for the broker) and is the only
 * caller of the doors; a new transport adds its file, its table and one line there.
 *
 * The generic layer checks arguments that do not depend on the transport (NULLs, nfds,
 * negative types, filter range) and turns timeouts into deadlines before it calls an op:
 * absolute ones (int64_t, CLOCK_MONOTONIC ns: FERRY__NO_DEADLINE never, 0 now) for the
 * slow calls, and lazy ones (ferry__when, core/time.h) for the message calls, whose fast
 * path must not read the clock. Every op returns 0 / a count or a negative errno, as the
 * public API says for the call that reaches it (include/ferry/ferry.h); "may block"
 * below means "until the deadline, then -ETIMEDOUT (or -EAGAIN for a deadline of 0)".
 * Unless said otherwise an op is called by one thread at a time per object (the public
 * API's rule: one sending and one receiving thread per end), and on failure it leaves
 * the caller's out-parameters unwritten and owns nothing it was given.
 */
#ifndef FERRY_TRANSPORT_H
#define FERRY_TRANSPORT_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "core/filter.h"
#include "core/time.h"
#include "ferry/ferry.h"

typedef struct ferry__listener_ops ferry__listener_ops;
typedef struct ferry__chan_ops ferry__chan_ops;

/* Counters: written only by the thread that owns that side (sender or receiver) with
 * relaxed atomics, so another thread may read them at any time (ferry_chan_stats). */
typedef struct ferry__counters {
    _Atomic uint64_t sent_msgs, sent_bytes, recv_msgs, recv_bytes;
    _Atomic uint64_t send_waits, recv_waits, wakeups, drops, grows;
} ferry__counters;

/* Add n to a counter that only one thread writes (plain load + store: no locked op). */
#define FERRY__COUNT(c, n)                                                                         \
    atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n),            \
                          memory_order_relaxed)

struct ferry_chan {
    const ferry__chan_ops *ops;
    ferry__counters st;
};

/* A listener made by ferry_listen: url is its copy of the URL it was given (malloc'd by
 * chan.c after the transport's listen succeeded, freed by chan.c before ops->close). A
 * listener made elsewhere (the broker's) is calloc'd: url NULL, no URL to tell. */
struct ferry_listener {
    const ferry__listener_ops *ops;
    char *url;
};

/* Room the generic layer gives ops->url: enough for any URL a transport makes itself. */
#define FERRY__URL_MAX 256

/* ------------------------------------------------------------ a listener's ops */

struct ferry__listener_ops {
    /* Wait for the next peer and make this side's channel end with it: 0 and *out (the
     * caller's, to close with ferry_chan_close). May block: on the peer's arrival and on
     * its handshake. A peer already gone (-EPIPE in the handshake) is skipped and the
     * wait goes on; other handshake errors are returned (-EBADMSG, -ENOMEM, -EMFILE);
     * -ETIMEDOUT / -EAGAIN at the deadline. l stays the caller's. Required. */
    int (*accept)(ferry_listener *l, ferry_chan **out, int64_t deadline);
    /* A descriptor that polls readable when accept would not wait (level-triggered),
     * owned by l: the caller polls it, never closes it. Never blocks. Required. */
    int (*fd)(const ferry_listener *l);
    /* The URL a peer opens to reach l, when it differs from the one given to listen
     * (tcp port 0, a private sysvmq door): write it, NUL-terminated, into buf (cap is
     * FERRY__URL_MAX) and return its length; 0 = use the stored listen URL (l->url).
     * Never blocks. NULL: always the stored URL. */
    int (*url)(const ferry_listener *l, char *buf, size_t cap);
    /* Stop listening and free l, the struct included (its url is already freed): the
     * address is given back as the transport documents (a socket path unlinked; a queue
     * removed, or left to a live opener: docs/transports.md), and nothing pending is
     * accepted any more. Channels already accepted live on. Never blocks. Required. */
    void (*close)(ferry_listener *l);
};

/* ------------------------------------------------------------ a channel end's ops */

struct ferry__chan_ops {
    /* Send m: its type (>= 0), data[0..len) (non-NULL when len > 0) and fds[0..nfds)
     * (nfds <= FERRY_MAX_FDS), all checked by chan.c. Reads m and keeps nothing: the
     * caller still owns data and fds (the peer gets duplicates). May block on room (the
     * capacity), on the receiver taking it (capacity 0), on the kernel. 0 sent; -EPIPE
     * (the peer is gone), -EMSGSIZE, -EOPNOTSUPP (fds where none ride), and the deadline's.
     * Required. */
    int (*sendmsg)(ferry_chan *ch, const ferry_msg *m, ferry__when *w);
    /* Receive the first message matching filter (core/filter.h) into m: payload into
     * m->data[0..m->cap), m->type, m->len set (m->len says the size needed on -EMSGSIZE,
     * and the message then stays queued). keep_fds != 0: the fds riding on it go to the
     * caller in m->fds/m->nfds (the caller's to close, FD_CLOEXEC); 0: the transport
     * closes them (m->fds is neither read nor written). May block until a matching
     * message or the peer's end. Returns the length; -EPIPE once the peer is gone and
     * nothing matching is left; -EBADMSG (a peer that broke the rules: the end is then
     * broken). Required. */
    ssize_t (*recvmsg)(ferry_chan *ch, ferry_msg *m, int64_t filter, int keep_fds, ferry__when *w);
    /* Zero copy, send side: room for len bytes in *buf (the transport's memory, valid
     * until commit); may block as sendmsg; -EBUSY (a loan is open). commit publishes it
     * as type with len <= the loan (may block on a capacity-0 channel, within the loan's
     * deadline). NULL both: no zero copy (chan.c says -EOPNOTSUPP). */
    int (*loan)(ferry_chan *ch, size_t len, void **buf, ferry__when *w);
    int (*commit)(ferry_chan *ch, int64_t type, size_t len);
    /* Zero copy, receive side: a read-only view of the next matching message in m
     * (m->data is the transport's memory until release; fds as recvmsg with keep_fds);
     * may block as recvmsg; -EBUSY (a peek is open). release gives the view back; -EINVAL
     * without a peek. NULL both: no zero copy (-EOPNOTSUPP). */
    int (*peek)(ferry_chan *ch, int64_t filter, ferry_msg *m, ferry__when *w);
    int (*release)(ferry_chan *ch);

    /* A descriptor that polls readable (level-triggered) while a message waits or once
     * the peer is gone, owned by ch (the same one on every call; never closed by the
     * caller). Never blocks; may make it on the first call (-EMFILE, -ENOMEM).
     * -EOPNOTSUPP: nothing to poll (sysvmq). Required. */
    int (*fd)(ferry_chan *ch);
    /* The largest message ch carries, fixed when it was made. Never blocks. Required. */
    size_t (*max_msg)(const ferry_chan *ch);
    /* The peer's kernel-stamped credentials into *out. Never blocks. NULL when the
     * transport cannot know them (-EOPNOTSUPP). */
    int (*peer)(const ferry_chan *ch, ferry_cred *out);
    /* The remote identity a trusted relay named (ferry_chan_peer_remote): its length,
     * copied NUL-terminated into buf; -ENOENT none believed, -EAGAIN the joiner's
     * handshake not here yet, -ENAMETOOLONG. Never blocks. NULL: -EOPNOTSUPP. */
    ssize_t (*peer_remote)(const ferry_chan *ch, char *buf, size_t cap);
    /* Is the peer still there: 0 yes (or cannot tell), -EPIPE gone, -EBADMSG broken.
     * One poll of a link, never blocks; may be called by any thread (direct/ asks it
     * before it reuses a kept channel). NULL: cannot tell (taken as 0). */
    int (*alive)(ferry_chan *ch);
    /* tls://: the identity the peer's certificate proved, into *out (a full struct of
     * this version, zeroed by the caller). Never blocks. NULL: not a TLS channel
     * (-EOPNOTSUPP). */
    int (*peer_cert)(const ferry_chan *ch, ferry_peer_cert *out);
    /* Close the end and free ch: every fd it holds, those of received-but-untaken
     * messages included; the peer sees -EPIPE after what was already sent. Never blocks
     * (it does not wait for the peer to take what was sent). No other call on ch may run
     * (nor after it). Required. */
    void (*close)(ferry_chan *ch);
};

/* ------------------------------------------------------------ the doors */

typedef struct ferry__transport {
    const char *scheme; /* URL scheme, e.g. "shm" */
    /* The FERRY_KIND_* the broker hands out for this transport (ferry_connect,
     * ferry_register); it means something only with a from_sock door (FERRY_KIND_SHM
     * is 0, so a table without one is not offered through ferryd). */
    int kind;

    /* Listen at the part of a URL after "scheme://": 0 and *out (the caller's, closed
     * with its ops->close via ferry_listener_close). Never blocks (binds, creates).
     * -EADDRINUSE, -EACCES, -EINVAL (a malformed address). NULL: cannot listen
     * (-EOPNOTSUPP). */
    int (*listen)(const char *where, const ferry_chan_opts *o, ferry_listener **out);
    /* Connect to what listens there and make this side's end: *out is the caller's.
     * May block: on the connection and on the handshake. -ECONNREFUSED / -ENOENT (no one
     * there), -EBADMSG (a handshake that breaks the rules). Required. */
    int (*open)(const char *where, const ferry_chan_opts *o, ferry_chan **out, int64_t deadline);
    /* Both ends in this process (o NULL: defaults): *a and *b the caller's. Never blocks.
     * NULL: not offered (-EOPNOTSUPP). */
    int (*pair)(const ferry_chan_opts *o, ferry_chan **a, ferry_chan **b);
    /* *a, and the second end as descriptors for a child to inherit across exec (not
     * FD_CLOEXEC), the caller's: shm one (fds[0]; fds[1] is -1), pipe two (read, write).
     * Never blocks. NULL: not offered (-EOPNOTSUPP). */
    int (*pair_fd)(const ferry_chan_opts *o, ferry_chan **a, int fds[2]);
    /* Make an end of a descriptor that pair_fd made (inherited): consumes fd in every
     * case (on success the channel owns it). Never blocks: the handshake is already
     * queued (-EBADMSG when it is not there or breaks the rules). NULL: -EOPNOTSUPP. */
    int (*adopt)(int fd, const ferry_chan_opts *o, ferry_chan **out);
    /*
     * Make a channel end on a connected SOCK_SEQPACKET socket that someone else made (the
     * broker's socket pairs): creator != 0 is the side that decides the shape from o (the
     * server), else the side that learns it (o: local choices only). peer (may be NULL)
     * is the other side's identity as the broker vouches for it (SO_PEERCRED on a socket
     * pair would name the broker). May block on the handshake. On success the channel
     * owns s; on failure s is closed. NULL: not offered through the broker.
     */
    int (*from_sock)(int s, int creator, const ferry_chan_opts *o, const ferry_cred *peer,
                     int64_t deadline, ferry_chan **out);
} ferry__transport;

/* The transports (chan.c lists them). */
extern const ferry__transport ferry__shm_transport, ferry__pipe_transport, ferry__unix_transport,
    ferry__fifo_transport, ferry__tcp_transport, ferry__posixmq_transport, ferry__sysvmq_transport;
/* tls.c, built with OpenSSL only (FERRY_HAVE_TLS): chan.c lists it then. */
extern const ferry__transport ferry__tls_transport;

/* The shm channel's ops table and its two per-message doors (shm.c, shm_tx.c, shm_rx.c),
 * for chan.c to call directly when a channel's ops are these: a send or a receive then
 * does not read the table, which lies on a page of its own that a hand-off would touch
 * for nothing else (with more processes than CPUs each page is a TLB miss: performance.md,
 * "What is left of the 64-pair gap"). */
#if defined(__GNUC__)
/* Hidden (it is anyway: the library's default): its address is then taken relative to
 * the code, not read from the GOT (which lies on the table's page). */
__attribute__((visibility("hidden")))
#endif
extern const ferry__chan_ops ferry__shm_chan_ops;
int ferry__shm_sendmsg(ferry_chan *ch, const ferry_msg *m, ferry__when *w);
ssize_t ferry__shm_recvmsg(ferry_chan *ch, ferry_msg *m, int64_t filter, int keep_fds,
                           ferry__when *w);

/* The from_sock doors of shm and unix, also called by name (tests/fuzz/fuzz_shm_setup.c). */
int ferry__shm_from_link(int s, int creator, const ferry_chan_opts *o, const ferry_cred *peer,
                         int64_t deadline, ferry_chan **out);
int ferry__unix_from_sock(int s, int creator, const ferry_chan_opts *o, const ferry_cred *peer,
                          int64_t deadline, ferry_chan **out);

/* The default options (ferry_chan_opts_init is this): transports use it for a NULL o. */
static inline void ferry__opts_defaults(ferry_chan_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->capacity = FERRY_CAP_RING;
    o->ring_bytes = 256 * 1024;
    o->max_msg = 0; /* derived from the ring */
    o->mem_cap = 64 * 1024 * 1024;
    o->spin_ns = 50 * 1000;
    o->mode = 0600;
    o->max_skipped_fds = FERRY_SKIPPED_FDS_DEFAULT;
    o->max_map = FERRY_MAX_MAP_DEFAULT;
}

/* Hand a message the transport holds (type, data, len) out into m, as ferry_recvmsg
 * says: type and len always (len is the size needed on -EMSGSIZE, and nothing is
 * copied); the payload when it fits; nfds 0 when keep_fds (transports that carry no fds).
 * Counts the receive on ch. Returns len or -EMSGSIZE; data stays the caller's. */
static inline ssize_t ferry__deliver(ferry_chan *ch, ferry_msg *m, int keep_fds, int64_t type,
                                     const void *data, size_t len)
{
    m->type = type;
    m->len = len;
    if (len > m->cap) return -EMSGSIZE;
    if (len) memcpy(m->data, data, len);
    if (keep_fds) m->nfds = 0;
    FERRY__COUNT(ch->st.recv_msgs, 1);
    FERRY__COUNT(ch->st.recv_bytes, len);
    return (ssize_t)len;
}

#endif
