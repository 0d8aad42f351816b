/*
 * transport.h — the contract between the generic channel (src/chan) and a transport.
 *
 * A transport is one file and one ops table. Its channel struct begins with
 * `struct ferry_chan` (the generic part: ops pointer and counters) and its listener with
 * `struct ferry_listener`. The generic layer checks arguments that do not depend on the
 * transport (NULLs, nfds, negative types, filter range) and turns timeouts into
 * deadlines before it calls an op: absolute ones (int64_t) for the slow calls, and lazy
 * ones (ferry__when, core/time.h) for the message calls, whose fast path must not read
 * the clock.
 * Every op returns 0 / a count or a negative errno, as the public API does.
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

typedef struct ferry__ops ferry__ops;

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
    const ferry__ops *ops;
    ferry__counters st;
};

/* A listener made by ferry_listen: url is its copy of the URL it was given (malloc'd by
 * chan.c after ops->listen succeeded, freed by chan.c before ops->listener_close). A
 * listener made elsewhere (the broker's) is calloc'd: url NULL, no URL to tell. */
struct ferry_listener {
    const ferry__ops *ops;
    char *url;
};

/* Room the generic layer gives ops->url: enough for any URL a transport makes itself. */
#define FERRY__URL_MAX 256

struct ferry__ops {
    const char *scheme; /* URL scheme, e.g. "shm" */

    /* Listen at / connect to the part of the URL after "scheme://". */
    int (*listen)(const char *where, const ferry_chan_opts *o, ferry_listener **out);
    int (*accept)(ferry_listener *l, ferry_chan **out, int64_t deadline);
    int (*listener_fd)(const ferry_listener *l);
    void (*listener_close)(ferry_listener *l);
    /* The URL a peer opens to reach l, when it differs from the one given to listen
     * (tcp port 0, a private sysvmq door): write it, NUL-terminated, into buf (cap is
     * FERRY__URL_MAX) and return its length; 0 = use the stored listen URL (l->url).
     * NULL op: always the stored URL. */
    int (*url)(const ferry_listener *l, char *buf, size_t cap);
    int (*open)(const char *where, const ferry_chan_opts *o, ferry_chan **out, int64_t deadline);

    /* Send m (validated: type >= 0, nfds <= FERRY_MAX_FDS, data non-NULL when len > 0). */
    int (*sendmsg)(ferry_chan *ch, const ferry_msg *m, ferry__when *w);
    /* Receive the first message matching filter into m (m->data, m->cap). When keep_fds
     * is 0, fds riding on the message are closed instead of handed over. */
    ssize_t (*recvmsg)(ferry_chan *ch, ferry_msg *m, int64_t filter, int keep_fds, ferry__when *w);
    /* Zero copy; NULL when the transport has none (-EOPNOTSUPP). */
    int (*loan)(ferry_chan *ch, size_t len, void **buf, ferry__when *w);
    int (*commit)(ferry_chan *ch, int64_t type, size_t len);
    int (*peek)(ferry_chan *ch, int64_t filter, ferry_msg *m, ferry__when *w);
    int (*release)(ferry_chan *ch);

    int (*fd)(ferry_chan *ch);
    size_t (*max_msg)(const ferry_chan *ch);
    /* The peer's credentials; NULL when the transport cannot know them (-EOPNOTSUPP). */
    int (*peer)(const ferry_chan *ch, ferry_cred *out);
    void (*close)(ferry_chan *ch);
};

/* The transports, by scheme. */
extern const ferry__ops ferry__shm_ops, ferry__pipe_ops, ferry__unix_ops, ferry__fifo_ops,
    ferry__tcp_ops, ferry__posixmq_ops, ferry__sysvmq_ops;

/*
 * Make a channel end on a connected SOCK_SEQPACKET socket that someone else made (the
 * broker's socket pairs): creator != 0 is the side that decides the shape from o (the
 * server), else the side that learns it (o: local choices only). peer (may be NULL) is
 * the other side's identity as the broker vouches for it (SO_PEERCRED on a socket pair
 * would name the broker). On success the channel owns s; on failure s is closed.
 */
int ferry__shm_from_link(int s, int creator, const ferry_chan_opts *o, const ferry_cred *peer,
                         int64_t deadline, ferry_chan **out);
int ferry__unix_from_sock(int s, int creator, const ferry_chan_opts *o, const ferry_cred *peer,
                          int64_t deadline, ferry_chan **out);

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
