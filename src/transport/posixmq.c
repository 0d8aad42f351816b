// SPDX-License-Identifier: MIT
/*
 * posixmq.c — the posixmq transport: ferry channels over POSIX message queues (mq_open).
 *
 * URL: "posixmq:///name". A ferry channel is duplex and a POSIX queue one-way, so a
 * channel is a pair of queues: "/name.c2s" (opener -> listener) and "/name.s2c"
 * (listener -> opener). ferry_listen creates both; ferry_chan_open opens both.
 *
 * Rules:
 *  - Every queue message is one ferry frame: the 32-byte header of core/frame.h (it
 *    carries the type; the mq priority is always 0, so the queue stays FIFO) followed by
 *    the payload. mq_msgsize = max_msg + 32. Every received message is validated
 *    strictly (frame decode, length equal to what the queue delivered, no fds, no shm
 *    flags, crc when flagged, priority 0); anything else is -EBADMSG and the channel is
 *    broken for good (every later call returns -EBADMSG).
 *  - Shape (decided by the listener): capacity N -> mq_maxmsg = N (1..msg_max);
 *    FERRY_CAP_RING -> min(msg_default, msg_max); 0 and FERRY_UNBOUNDED -> -EOPNOTSUPP.
 *    max_msg -> mq_msgsize = max_msg + 32 <= msgsize_max (max_msg 0: msgsize_default - 32).
 *    The limits are read from /proc/sys/fs/mqueue/{msg_max,msgsize_max,msg_default,
 *    msgsize_default} and checked here, whatever the caller's privileges: beyond them is
 *    -EINVAL. ring_bytes and mem_cap do not apply and are ignored.
 *  - Typed receive: a filter that passes over messages drains them from the kernel queue
 *    into a local backlog, in order, bounded by the queue's depth (mq_maxmsg); the next
 *    receive looks at the backlog first. A full backlog with no match waits out the
 *    deadline (as a shm ring full of passed-over messages does).
 *  - Waiting: the queues are opened O_NONBLOCK and waits are ppoll() on the queue
 *    descriptor (on Linux an mqd_t is a pollable fd) against the absolute CLOCK_MONOTONIC
 *    deadline, so EINTR neither shortens nor lengthens a wait.
 *  - One peer: ferry_accept hands out the listener's channel once, at once (queues have
 *    no connections; messages sent before the peer opens wait in the queue). A second
 *    accept waits out its deadline (-ETIMEDOUT, or -EAGAIN for FERRY_NOW). A second
 *    opener is not refused (the kernel cannot tell): it would compete for messages.
 *  - Peer death cannot be seen through a queue: a receive just times out (-ETIMEDOUT,
 *    -EAGAIN); -EPIPE is never returned.
 *  - Names: unlinked when the last of the listener and its accepted channel closes, in
 *    the process that created them (a forked child closing its inherited copies unlinks
 *    nothing), unless FERRY_PERSIST. Without FERRY_PERSIST an existing name is
 *    -EADDRINUSE; with it, existing queues of exactly the asked shape are reused.
 *  - fds cannot ride on a queue message: a send with nfds > 0 is -EOPNOTSUPP. Zero copy
 *    (loan/commit/peek/release) and peer credentials are -EOPNOTSUPP too.
 *  - Threads: one sending and one receiving thread per end (ferry.h). The sender owns
 *    tx, txbuf and seq; the receiver owns rx, rxbuf and the backlog; ferry_chan_poll_fd must
 *    not race with a receive (call it first, or from the receiving thread).
 */
#define _GNU_SOURCE /* ppoll */
#include "transport.h"

#include "core/frame.h"
#include "core/time.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR ((size_t)FERRY__FRAME_HDR)

/* Room for "/" + name + ".c2s" + NUL within the kernel's NAME_MAX (the name after the
 * leading slash, suffix included, is at most NAME_MAX bytes). */
#define SUFFIX_LEN 4
#define NAME_BUF   (NAME_MAX + 2)

/* ------------------------------------------------------------------ limits */

typedef struct mq_limits {
    long msg_max, msgsize_max, msg_default, msgsize_default;
} mq_limits;

/* A positive number from a /proc file, or dflt when it cannot be read. */
static long proc_long(const char *path, long dflt)
{
    FILE *f = fopen(path, "re");
    long v = 0;
    if (!f) return dflt;
    if (fscanf(f, "%ld", &v) != 1 || v <= 0) v = dflt;
    fclose(f);
    return v;
}

/* The kernel's queue limits (Linux defaults when /proc cannot be read). */
static mq_limits read_limits(void)
{
    mq_limits l;
    l.msg_max = proc_long("/proc/sys/fs/mqueue/msg_max", 10);
    l.msgsize_max = proc_long("/proc/sys/fs/mqueue/msgsize_max", 8192);
    l.msg_default = proc_long("/proc/sys/fs/mqueue/msg_default", 10);
    l.msgsize_default = proc_long("/proc/sys/fs/mqueue/msgsize_default", 8192);
    return l;
}

/* The queue attributes a listener asks for, from its options. Errors: -EINVAL (unknown
 * flag, max_msg or capacity beyond the kernel limits), -EOPNOTSUPP (capacity 0 or
 * FERRY_UNBOUNDED). */
static int attr_from_opts(const ferry_chan_opts *o, struct mq_attr *a)
{
    mq_limits k = read_limits();
    if (o->flags & ~(uint32_t)(FERRY_CHECKSUM | FERRY_NO_SPIN | FERRY_PERSIST | FERRY_PEEK_PRIVATE |
                               FERRY_NO_FDS | FERRY_TRUST_RELAY))
        return -EINVAL;
    if (o->capacity == 0 || o->capacity == FERRY_UNBOUNDED) return -EOPNOTSUPP;
    long depth = o->capacity == FERRY_CAP_RING
                     ? (k.msg_default < k.msg_max ? k.msg_default : k.msg_max)
                     : (long)o->capacity;
    if (depth > k.msg_max) return -EINVAL;
    size_t max = o->max_msg                      ? o->max_msg
                 : k.msgsize_default > (long)HDR ? (size_t)k.msgsize_default - HDR
                                                 : 0;
    if (max > FERRY_MAX_MSG_LIMIT || max + HDR > (size_t)k.msgsize_max) return -EINVAL;
    memset(a, 0, sizeof *a);
    a->mq_maxmsg = depth;
    a->mq_msgsize = (long)(max + HDR);
    return 0;
}

/* ------------------------------------------------------------------ names */

/* The queue names of one channel, shared by a listener and the channel it accepted:
 * the last of them to close unlinks the queues (unless persist), and only in the
 * process that created them. */
typedef struct mq_names {
    _Atomic int refs;
    int persist;
    pid_t owner;
    char c2s[NAME_BUF], s2c[NAME_BUF];
} mq_names;

/* Build both names from the URL part "/name". Errors: -EINVAL (no leading slash, empty,
 * a second slash), -ENAMETOOLONG. */
static int names_parse(const char *where, char c2s[NAME_BUF], char s2c[NAME_BUF])
{
    if (!where || where[0] != '/' || where[1] == '\0' || strchr(where + 1, '/')) return -EINVAL;
    size_t n = strlen(where + 1);
    if (n + SUFFIX_LEN > NAME_MAX) return -ENAMETOOLONG;
    snprintf(c2s, NAME_BUF, "%s.c2s", where);
    snprintf(s2c, NAME_BUF, "%s.s2c", where);
    return 0;
}

static void names_put(mq_names *n)
{
    if (!n || atomic_fetch_sub(&n->refs, 1) != 1) return;
    if (!n->persist && n->owner == getpid()) {
        mq_unlink(n->c2s);
        mq_unlink(n->s2c);
    }
    free(n);
}

/* ------------------------------------------------------------------ waiting */

/* Wait until fd polls `events` or deadline passes. Returns 1 ready, 0 deadline passed,
 * or -errno. EINTR returns 1 (the caller re-checks its condition and comes back). With
 * fd < 0 it only sleeps until the deadline. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    int64_t left = ferry__remaining(deadline);
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = events};
    struct timespec ts = {left / 1000000000, left % 1000000000};
    int r = ppoll(&p, fd >= 0 ? 1 : 0, left == INT64_MAX ? NULL : &ts, NULL);
    if (r < 0) return errno == EINTR ? 1 : -errno;
    return 1; /* ready, or the slice ended: the caller re-reads the clock */
}

/* The error of a wait that found its deadline passed. */
static int timed_out(int64_t deadline)
{
    return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
}

/* ------------------------------------------------------------------ channel */

/* A message taken from the kernel queue but not yet from the channel. */
typedef struct mq_entry {
    int64_t type;
    uint32_t len;
    uint8_t *data; /* malloc'd; NULL when len == 0 */
} mq_entry;

typedef struct mq_chan {
    struct ferry_chan base;
    mqd_t tx, rx;
    size_t max_msg;   /* payload bytes: mq_msgsize - 32 */
    int crc;          /* our frames carry a crc32c (FERRY_CHECKSUM) */
    _Atomic int dead; /* 0 or -EBADMSG */
    mq_names *names;  /* creator side: the names it unlinks; NULL on the opener */
    /* sender */
    uint64_t seq;
    uint8_t *txbuf; /* HDR + max_msg */
    /* receiver */
    uint8_t *rxbuf;          /* HDR + max_msg */
    mq_entry *q;             /* backlog, oldest first: q[0 .. qlen) */
    size_t qlen, qcap, qmax; /* qmax: the bound (the rx queue's mq_maxmsg) */
    /* readiness (ferry_chan_poll_fd), -1 until asked */
    int efd, epfd;
    int efd_set; /* the eventfd holds a count */
} mq_chan;

static const ferry__chan_ops chan_ops;
static const ferry__listener_ops listener_ops;

static void chan_free(mq_chan *c)
{
    if (!c) return;
    if (c->tx >= 0) mq_close(c->tx);
    if (c->rx >= 0) mq_close(c->rx);
    for (size_t i = 0; i < c->qlen; i++) free(c->q[i].data);
    free(c->q);
    free(c->txbuf);
    free(c->rxbuf);
    if (c->epfd >= 0) close(c->epfd);
    if (c->efd >= 0) close(c->efd);
    names_put(c->names);
    free(c);
}

/* A channel over tx/rx (it takes both: on failure they are closed). Validates the two
 * queues' attributes: -EBADMSG unless they are a pair ferry could have made. */
static int chan_make(mqd_t tx, mqd_t rx, int crc, mq_names *names, ferry_chan **out)
{
    struct mq_attr at, ar;
    int rc = 0;
    mq_chan *c = calloc(1, sizeof *c);
    if (!c) {
        mq_close(tx);
        mq_close(rx);
        names_put(names);
        return -ENOMEM;
    }
    c->base.ops = &chan_ops;
    c->tx = tx;
    c->rx = rx;
    c->names = names;
    c->crc = crc;
    c->efd = c->epfd = -1;
    if (mq_getattr(tx, &at) < 0 || mq_getattr(rx, &ar) < 0) rc = -errno;
    if (rc == 0 && (at.mq_msgsize != ar.mq_msgsize || ar.mq_msgsize < (long)HDR ||
                    (size_t)ar.mq_msgsize - HDR > FERRY_MAX_MSG_LIMIT || ar.mq_maxmsg < 1))
        rc = -EBADMSG;
    if (rc == 0) {
        c->max_msg = (size_t)ar.mq_msgsize - HDR;
        c->qmax = (size_t)ar.mq_maxmsg;
        c->txbuf = malloc(HDR + c->max_msg);
        c->rxbuf = malloc(HDR + c->max_msg);
        if (!c->txbuf || !c->rxbuf) rc = -ENOMEM;
    }
    if (rc < 0) {
        chan_free(c);
        return rc;
    }
    *out = &c->base;
    return 0;
}

/* Keep the readiness eventfd in step: set while a backlog message waits or the channel
 * is broken, clear otherwise (the kernel queue itself is in the epoll set). */
static void ready_update(mq_chan *c)
{
    if (c->epfd < 0) return;
    int want = c->qlen > 0 || atomic_load_explicit(&c->dead, memory_order_relaxed) != 0;
    if (want && !c->efd_set) {
        uint64_t one = 1;
        if (write(c->efd, &one, sizeof one) == (ssize_t)sizeof one) c->efd_set = 1;
    } else if (!want && c->efd_set) {
        uint64_t v;
        if (read(c->efd, &v, sizeof v) == (ssize_t)sizeof v) c->efd_set = 0;
    }
}

/* Break the channel for good with err; returns the error it is broken with. */
static int chan_fail(mq_chan *c, int err)
{
    int zero = 0;
    atomic_compare_exchange_strong_explicit(&c->dead, &zero, err, memory_order_relaxed,
                                            memory_order_relaxed);
    ready_update(c);
    return atomic_load_explicit(&c->dead, memory_order_relaxed);
}

/* ------------------------------------------------------------------ send */

static int pmq_sendmsg(ferry_chan *ch, const ferry_msg *m, ferry__when *w)
{
    mq_chan *c = (mq_chan *)ch;
    int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
    if (dead) return dead;
    if (m->nfds > 0) return -EOPNOTSUPP;
    if (m->len > c->max_msg) return -EMSGSIZE;
    ferry__frame f = {.flags = c->crc ? FERRY__F_CRC : 0,
                      .type = m->type,
                      .seq = c->seq + 1,
                      .len = (uint32_t)m->len};
    if (m->len) memcpy(c->txbuf + HDR, m->data, m->len);
    if (c->crc) f.crc = ferry__frame_crc(&f, c->txbuf + HDR);
    ferry__frame_encode(&f, c->txbuf);
    int waited = 0;
    for (;;) {
        if (mq_send(c->tx, (const char *)c->txbuf, HDR + m->len, 0) == 0) break;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return -errno;
        int64_t at = ferry__when_at(w);
        if (ferry__remaining(at) <= 0) return timed_out(at);
        if (!waited) FERRY__COUNT(c->base.st.send_waits, 1);
        waited = 1;
        int rc = wait_fd(c->tx, POLLOUT, at);
        if (rc < 0) return rc;
    }
    c->seq++;
    FERRY__COUNT(c->base.st.sent_msgs, 1);
    FERRY__COUNT(c->base.st.sent_bytes, m->len);
    return 0;
}

/* ------------------------------------------------------------------ receive */

/* Take one message from the kernel queue into rxbuf without waiting and validate it.
 * Returns 1 (decoded into *f, payload at rxbuf + HDR), 0 (queue empty) or an error
 * (-EBADMSG breaks the channel). */
static int rx_take(mq_chan *c, ferry__frame *f)
{
    unsigned prio = 0;
    ssize_t n;
    do n = mq_receive(c->rx, (char *)c->rxbuf, HDR + c->max_msg, &prio);
    while (n < 0 && errno == EINTR);
    if (n < 0) return errno == EAGAIN ? 0 : -errno;
    if (prio != 0 || (size_t)n < HDR) return chan_fail(c, -EBADMSG);
    int rc = ferry__frame_decode(c->rxbuf, (uint32_t)c->max_msg, f);
    if (rc == 0 &&
        ((size_t)f->len != (size_t)n - HDR || f->nfds != 0 || (f->flags & ~FERRY__F_CRC) != 0))
        rc = -EBADMSG;
    if (rc == 0) rc = ferry__frame_check_crc(f, c->rxbuf + HDR);
    return rc < 0 ? chan_fail(c, rc) : 1;
}

/* Append the message in rxbuf (header f) to the backlog. The caller checked room. */
static int q_push(mq_chan *c, const ferry__frame *f)
{
    if (c->qlen == c->qcap) {
        size_t cap = c->qcap ? c->qcap * 2 : 8;
        if (cap > c->qmax) cap = c->qmax;
        mq_entry *q = realloc(c->q, cap * sizeof *q);
        if (!q) return -ENOMEM;
        c->q = q;
        c->qcap = cap;
    }
    mq_entry *e = &c->q[c->qlen];
    e->type = f->type;
    e->len = f->len;
    e->data = NULL;
    if (f->len) {
        e->data = malloc(f->len);
        if (!e->data) return -ENOMEM;
        memcpy(e->data, c->rxbuf + HDR, f->len);
    }
    c->qlen++;
    ready_update(c);
    return 0;
}

/* The backlog entry the filter picks, or -1. For filter < 0: the first of the lowest
 * eligible type. */
static ssize_t q_find(const mq_chan *c, int64_t filter)
{
    ssize_t best = -1;
    for (size_t i = 0; i < c->qlen; i++) {
        if (!ferry__filter_match(filter, c->q[i].type)) continue;
        if (filter >= 0) return (ssize_t)i;
        if (best < 0 || c->q[i].type < c->q[best].type) best = (ssize_t)i;
    }
    return best;
}

/* Take backlog entry i (it stays on -EMSGSIZE). */
static ssize_t deliver_q(mq_chan *c, ferry_msg *m, int keep_fds, size_t i)
{
    mq_entry e = c->q[i];
    ssize_t n = ferry__deliver(&c->base, m, keep_fds, e.type, e.data, e.len);
    if (n < 0) return n;
    free(e.data);
    memmove(&c->q[i], &c->q[i + 1], (c->qlen - i - 1) * sizeof *c->q);
    c->qlen--;
    ready_update(c);
    return n;
}

/*
 * One look without waiting: the backlog, then the kernel queue (draining what the
 * filter passes over into the backlog, while there is room). Returns a length, an error,
 * or -EAGAIN when nothing matches now; *stuck is set when the backlog is full and the
 * kernel queue may still hold messages we cannot reach.
 */
static ssize_t rx_once(mq_chan *c, ferry_msg *m, int64_t filter, int keep_fds, int *stuck)
{
    ferry__frame f;
    ssize_t i = q_find(c, filter);
    /* The backlog is older than the kernel queue: its first match wins, except that for
     * filter < 0 a lower type may still be in the kernel queue (0 cannot be beaten). */
    if (i >= 0 && (filter >= 0 || c->q[i].type == 0)) return deliver_q(c, m, keep_fds, (size_t)i);
    for (;;) {
        if (c->qlen == c->qmax) {
            *stuck = 1;
            break;
        }
        int rc = rx_take(c, &f);
        if (rc < 0) return rc;
        if (rc == 0) break;
        if (filter >= 0 && ferry__filter_match(filter, f.type)) {
            /* The first match (the backlog holds none): hand it out, or, when it does not
             * fit, keep it as the newest backlog entry: it stays queued, in order, and
             * deliver_q says -EMSGSIZE with the size needed. */
            if (f.len <= m->cap)
                return ferry__deliver(&c->base, m, keep_fds, f.type, c->rxbuf + HDR, f.len);
            rc = q_push(c, &f);
            if (rc < 0) return rc;
            return deliver_q(c, m, keep_fds, c->qlen - 1);
        }
        rc = q_push(c, &f);
        if (rc < 0) return rc;
    }
    if (filter < 0 && (i = q_find(c, filter)) >= 0) return deliver_q(c, m, keep_fds, (size_t)i);
    return -EAGAIN;
}

static ssize_t pmq_recvmsg(ferry_chan *ch, ferry_msg *m, int64_t filter, int keep_fds,
                           ferry__when *w)
{
    mq_chan *c = (mq_chan *)ch;
    int waited = 0;
    for (;;) {
        int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
        if (dead) return dead;
        int stuck = 0;
        ssize_t n = rx_once(c, m, filter, keep_fds, &stuck);
        if (n != -EAGAIN) return n;
        int64_t at = ferry__when_at(w);
        if (ferry__remaining(at) <= 0) return timed_out(at);
        if (!waited) FERRY__COUNT(c->base.st.recv_waits, 1);
        waited = 1;
        /* Stuck: nothing but our own receives can change what we see; sleep it out. */
        int rc = wait_fd(stuck ? -1 : c->rx, POLLIN, at);
        if (rc < 0) return rc;
    }
}

/* ------------------------------------------------------------------ the rest of a channel */

static int pmq_fd(ferry_chan *ch)
{
    mq_chan *c = (mq_chan *)ch;
    if (c->epfd >= 0) return c->epfd;
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) return -errno;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        int e = -errno;
        close(efd);
        return e;
    }
    /* The kernel queue polls readable while it holds a message; the eventfd stands for
     * the backlog (and a broken channel). */
    struct epoll_event ev = {.events = EPOLLIN};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->rx, &ev) < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) < 0) {
        int e = -errno;
        close(ep);
        close(efd);
        return e;
    }
    c->efd = efd;
    c->epfd = ep;
    ready_update(c);
    return ep;
}

static size_t pmq_max_msg(const ferry_chan *ch)
{
    return ((const mq_chan *)ch)->max_msg;
}

static void pmq_close(ferry_chan *ch)
{
    chan_free((mq_chan *)ch);
}

/* ------------------------------------------------------------------ listen / accept / open */

typedef struct mq_listener {
    struct ferry_listener base;
    mq_names *names;
    mqd_t rx, tx; /* handed to the accepted channel; -1 after */
    int crc;
    int efd; /* readable until the one accept */
} mq_listener;

/* Open (and maybe create) one queue of a listener. *created says whether we made it.
 * Errors: -EADDRINUSE (exists and !persist), -errno of mq_open/fchmod. */
static int listen_queue(const char *name, int oflag, const ferry_chan_opts *o,
                        const struct mq_attr *a, int *created, mqd_t *out)
{
    int base = oflag | O_CLOEXEC | O_NONBLOCK;
    mode_t mode = (mode_t)(o->mode & 0777);
    *created = 0;
    mqd_t q = mq_open(name, base | O_CREAT | O_EXCL, mode, a);
    if (q >= 0) {
        *created = 1;
        /* mq_open applied the umask; give exactly the mode asked for (only widening). */
        if (fchmod(q, mode) < 0) {
            int e = -errno;
            mq_close(q);
            mq_unlink(name);
            return e;
        }
    } else if (errno == EEXIST && (o->flags & FERRY_PERSIST)) {
        q = mq_open(name, base);
        struct mq_attr have;
        if (q >= 0 && mq_getattr(q, &have) == 0 &&
            (have.mq_maxmsg != a->mq_maxmsg || have.mq_msgsize != a->mq_msgsize)) {
            mq_close(q);
            return -EADDRINUSE; /* the name is in use with another shape */
        }
    }
    if (q < 0) return errno == EEXIST ? -EADDRINUSE : -errno;
    *out = q;
    return 0;
}

/*
 * ferry_listen("posixmq:///name"): create (or with FERRY_PERSIST reuse) the queue pair.
 * Errors: -EINVAL (bad name, options beyond the kernel limits msg_max / msgsize_max),
 * -ENAMETOOLONG, -EOPNOTSUPP (capacity 0 or FERRY_UNBOUNDED), -EADDRINUSE (a queue of
 * that name exists; with FERRY_PERSIST: exists with another shape), -EACCES, -EMFILE
 * (RLIMIT_MSGQUEUE or the fd limit), -ENOSPC (queues_max), -ENOMEM. On failure nothing
 * is left behind (queues this call created are unlinked). The caller owns *out.
 */
static int pmq_listen(const char *where, const ferry_chan_opts *o, ferry_listener **out)
{
    ferry_chan_opts d;
    if (!o) {
        ferry__opts_defaults(&d);
        o = &d;
    }
    struct mq_attr a;
    int rc = attr_from_opts(o, &a);
    if (rc < 0) return rc;
    mq_listener *l = calloc(1, sizeof *l);
    mq_names *n = calloc(1, sizeof *n);
    if (!l || !n) {
        free(l);
        free(n);
        return -ENOMEM;
    }
    rc = names_parse(where, n->c2s, n->s2c);
    l->base.ops = &listener_ops;
    l->names = n;
    l->rx = l->tx = -1;
    l->crc = (o->flags & FERRY_CHECKSUM) != 0;
    atomic_init(&n->refs, 1);
    n->persist = (o->flags & FERRY_PERSIST) != 0;
    n->owner = getpid();
    int made_rx = 0, made_tx = 0;
    if (rc == 0) rc = listen_queue(n->c2s, O_RDONLY, o, &a, &made_rx, &l->rx);
    if (rc == 0) rc = listen_queue(n->s2c, O_WRONLY, o, &a, &made_tx, &l->tx);
    if (rc == 0) {
        l->efd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->efd < 0) rc = -errno;
    }
    if (rc < 0) {
        if (l->rx >= 0) mq_close(l->rx);
        if (l->tx >= 0) mq_close(l->tx);
        if (made_rx) mq_unlink(n->c2s);
        if (made_tx) mq_unlink(n->s2c);
        free(n);
        free(l);
        return rc;
    }
    *out = &l->base;
    return 0;
}

/*
 * ferry_accept: the listener's channel, once. Later calls wait out the deadline: no
 * second peer can come through a queue pair. Errors: -ETIMEDOUT, -EAGAIN (FERRY_NOW),
 * -EBADMSG (the queues were changed under us), -ENOMEM.
 */
static int pmq_accept(ferry_listener *fl, ferry_chan **out, int64_t deadline)
{
    mq_listener *l = (mq_listener *)fl;
    if (l->rx >= 0) {
        atomic_fetch_add(&l->names->refs, 1); /* the channel shares the unlink duty */
        int rc = chan_make(l->tx, l->rx, l->crc, l->names, out);
        l->rx = l->tx = -1; /* chan_make took them, whatever happened */
        uint64_t v;
        ssize_t r = read(l->efd, &v, sizeof v); /* no longer readable: nobody waits */
        (void)r;
        return rc;
    }
    for (;;) {
        if (ferry__remaining(deadline) <= 0) return timed_out(deadline);
        int rc = wait_fd(l->efd, POLLIN, deadline); /* never readable again: sleeps */
        if (rc < 0) return rc;
    }
}

static int pmq_listener_fd(const ferry_listener *fl)
{
    return ((const mq_listener *)fl)->efd;
}

static void pmq_listener_close(ferry_listener *fl)
{
    mq_listener *l = (mq_listener *)fl;
    if (l->rx >= 0) mq_close(l->rx);
    if (l->tx >= 0) mq_close(l->tx);
    close(l->efd);
    names_put(l->names);
    free(l);
}

/*
 * ferry_chan_open("posixmq:///name"): open the pair a listener made. Does not wait.
 * opts (may be NULL): FERRY_CHECKSUM makes this end's frames carry a crc.
 * Errors: -EINVAL, -ENAMETOOLONG, -ENOENT (no such queues), -EACCES, -EBADMSG (the
 * queues are not a ferry pair: message sizes differ or are below 32 bytes), -EMFILE,
 * -ENOMEM.
 */
static int pmq_open(const char *where, const ferry_chan_opts *o, ferry_chan **out, int64_t deadline)
{
    (void)deadline;
    char c2s[NAME_BUF], s2c[NAME_BUF];
    int rc = names_parse(where, c2s, s2c);
    if (rc < 0) return rc;
    mqd_t tx = mq_open(c2s, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    if (tx < 0) return -errno;
    mqd_t rx = mq_open(s2c, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (rx < 0) {
        rc = -errno;
        mq_close(tx);
        return rc;
    }
    return chan_make(tx, rx, o && (o->flags & FERRY_CHECKSUM), NULL, out);
}

static const ferry__listener_ops listener_ops = {
    .accept = pmq_accept,
    .fd = pmq_listener_fd,
    .close = pmq_listener_close,
};

static const ferry__chan_ops chan_ops = {
    .sendmsg = pmq_sendmsg,
    .recvmsg = pmq_recvmsg,
    .fd = pmq_fd,
    .max_msg = pmq_max_msg,
    .close = pmq_close,
};

const ferry__transport ferry__posixmq_transport = {
    .scheme = "posixmq",
    .listen = pmq_listen,
    .open = pmq_open,
};
