// SPDX-License-Identifier: MIT
/*
 * client.c — the client side of RPC (ferry.h, "RPC"): calls matched to replies by id,
 * from many threads at once on one channel, synchronous or through a pollable fd.
 *
 * Rules:
 *  - The channel allows one sending and one receiving thread at a time. Sends are
 *    serialized by send_mu. Receiving is a role (c->reader, under mu): a thread waiting
 *    in ferry_call takes it when free and reads replies in slices of at most 20 ms,
 *    handing each to its call (per-call condvar); when it leaves (its call finished, timed
 *    out or was cancelled) it wakes every waiting caller so that one takes the role over
 *    (leader/follower). ferry_rpc_dispatch takes the same role, reading without waiting.
 *  - Every field of the client and of its calls is guarded by mu (the mutex is the only
 *    memory-ordering point here: no atomics); the channel's receive side and rbuf (grown
 *    to the largest reply seen) are used only by the thread holding the reader role, the
 *    send side only under send_mu.
 *  - A call lives in the id table from the moment its id is taken until its waiter
 *    removes it (sync) or its completion is queued (async). A reply whose id is not in the
 *    table, or whose call is already done, is dropped and counted (fds closed): late
 *    replies can never reach another call, as ids are never reused.
 *  - A read error other than a timeout (-EPIPE: the server is gone; -EBADMSG) kills the
 *    connection: every pending call ends with it, and later calls fail with it at once.
 *  - Async completions are queued and run by ferry_rpc_dispatch outside mu; an eventfd
 *    next to the channel's fd in one epoll set makes ferry_rpc_poll_fd readable while any wait.
 */
#define _GNU_SOURCE
#include "rpc/wire.h"

#include <ferry/ferry.h>

#include "core/time.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define NBUCKETS   1024
#define SLICE_NS   (20 * 1000 * 1000LL)
#define RBUF_START (64 * 1024) /* the reader's buffer at first; grown on demand */

struct call {
    uint64_t id;
    struct call *next;          /* id table chain */
    struct call *wprev, *wnext; /* waiters list (sync calls blocked on cv) */
    struct call *dnext;         /* queue of finished async calls */
    ferry_msg *resp;
    ferry_rpc_callback cb;
    void *ctx;
    int async, heap, done, sending, waiting, has_cv;
    ssize_t rc;
    pthread_cond_t cv; /* sync calls, made when the call first sleeps (has_cv) */
};

struct ferry_rpc_client {
    ferry_chan *ch;
    pthread_mutex_t mu, send_mu;
    uint64_t next_id;
    struct call *tab[NBUCKETS];
    struct call *waiters;
    struct call *dhead, *dtail;
    size_t ncalls; /* calls in the table */
    int reader;
    int dead; /* 0, or the error that ended the connection */
    void *rbuf;
    size_t rcap;
    int efd, epfd;
    uint64_t dropped;
};

/* ---- the id table (mu held) */

static struct call *table_find(ferry_rpc_client *c, uint64_t id)
{
    for (struct call *k = c->tab[id % NBUCKETS]; k; k = k->next)
        if (k->id == id) return k;
    return NULL;
}

static void table_insert(ferry_rpc_client *c, struct call *k)
{
    struct call **b = &c->tab[k->id % NBUCKETS];
    k->next = *b;
    *b = k;
    c->ncalls++;
}

static void table_remove(ferry_rpc_client *c, struct call *k)
{
    for (struct call **p = &c->tab[k->id % NBUCKETS]; *p; p = &(*p)->next) {
        if (*p == k) {
            *p = k->next;
            k->next = NULL;
            c->ncalls--;
            return;
        }
    }
}

static void ring(ferry_rpc_client *c)
{
    if (c->efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(c->efd, &one, sizeof one);
        (void)w; /* an eventfd at its limit is readable anyway */
    }
}

/* End call k with rc (mu held): a sync call's waiter is woken, an async call leaves the
 * table for the completion queue. */
static void complete(ferry_rpc_client *c, struct call *k, ssize_t rc)
{
    k->rc = rc;
    k->done = 1;
    if (k->async && !k->sending) { /* while sending, start() queues it afterwards */
        table_remove(c, k);
        k->dnext = NULL;
        if (c->dtail)
            c->dtail->dnext = k;
        else
            c->dhead = k;
        c->dtail = k;
        ring(c);
    } else if (k->has_cv) { /* without one, the caller is not asleep: it reads */
        pthread_cond_signal(&k->cv);
    }
}

static void close_fds(ferry_msg *m)
{
    for (uint32_t i = 0; i < m->nfds; i++) close(m->fds[i]);
    m->nfds = 0;
}

/* Hand a received message to its call, or drop it (mu held). */
static void deliver(ferry_rpc_client *c, ferry_msg *m)
{
    struct call *k = NULL;
    if (ferry__rpc_kind(m->type) == FERRY__RPC_REPLY) k = table_find(c, ferry__rpc_id(m->type));
    if (!k || k->done) { /* a reply may overtake the end of its own send: k->sending */
        c->dropped++;
        close_fds(m);
        return;
    }
    ferry_msg *r = k->resp;
    r->type = 0;
    r->len = m->len;
    if (m->len > r->cap) {
        r->nfds = 0;
        close_fds(m);
        complete(c, k, -EMSGSIZE);
        return;
    }
    if (m->len) memcpy(r->data, m->data, m->len);
    r->nfds = m->nfds;
    memcpy(r->fds, m->fds, sizeof r->fds[0] * m->nfds);
    complete(c, k, (ssize_t)m->len);
}

/* The connection is dead: end every pending call with rc (mu held). */
static void kill_all(ferry_rpc_client *c, int rc)
{
    if (!c->dead) c->dead = rc;
    for (size_t b = 0; b < NBUCKETS; b++) {
        struct call *k = c->tab[b];
        while (k) {
            struct call *nx = k->next; /* complete() may unlink k */
            if (!k->done && !k->sending) complete(c, k, rc);
            k = nx;
        }
    }
}

/* The reader role is free: let every blocked caller look (mu held). */
static void wake_waiters(ferry_rpc_client *c)
{
    for (struct call *k = c->waiters; k; k = k->wnext) pthread_cond_signal(&k->cv);
}

/* A receive by the holder of the reader role (mu not held) into m (its data and cap are
 * the caller's buffer, or rbuf): a message too long for m goes to rbuf, grown to fit it
 * (the channel keeps it queued on -EMSGSIZE). Returns the recv result. */
static ssize_t recv_grow(ferry_rpc_client *c, ferry_msg *m, int64_t timeout_ns)
{
    m->nfds = 0;
    ssize_t rc = ferry_recvmsg(c->ch, m, 0, timeout_ns);
    if (rc == -EMSGSIZE && m->data != c->rbuf && m->len <= c->rcap) {
        m->data = c->rbuf; /* too long for the caller's buffer, not for rbuf */
        m->cap = c->rcap;
        rc = ferry_recvmsg(c->ch, m, 0, FERRY_NOW);
    }
    while (rc == -EMSGSIZE && m->len > c->rcap) { /* the buffer grows to the largest reply */
        void *nb = realloc(c->rbuf, m->len);
        if (!nb) break; /* -EMSGSIZE: the connection ends (-EBADMSG) */
        c->rbuf = m->data = nb;
        c->rcap = m->cap = m->len;
        rc = ferry_recvmsg(c->ch, m, 0, FERRY_NOW);
    }
    /* A shm receive that waits out its deadline does not ask whether the peer lives; an
     * empty FERRY_NOW receive does (at most every 10 ms): so a whole idle slice ends with
     * one, and a dead server is seen within a slice. */
    if (rc == -ETIMEDOUT) rc = ferry_recvmsg(c->ch, m, 0, FERRY_NOW);
    return rc;
}

/* One read of the channel by the holder of the reader role (mu held on entry and exit,
 * released meanwhile). Returns the recv result. */
static ssize_t read_one(ferry_rpc_client *c, int64_t timeout_ns)
{
    ferry_msg m;
    m.data = c->rbuf;
    m.cap = c->rcap;
    pthread_mutex_unlock(&c->mu);
    ssize_t rc = recv_grow(c, &m, timeout_ns);
    pthread_mutex_lock(&c->mu);
    if (rc >= 0)
        deliver(c, &m);
    else if (rc != -ETIMEDOUT && rc != -EAGAIN)
        kill_all(c, rc == -EMSGSIZE ? -EBADMSG : (int)rc);
    return rc;
}

int ferry_rpc_client_create(ferry_chan *ch, ferry_rpc_client **out)
{
    if (!ch || !out) return -EINVAL;
    ferry_rpc_client *c = calloc(1, sizeof *c);
    if (!c) return -ENOMEM;
    size_t max = ferry_chan_max_msg(ch);
    c->rcap = max < RBUF_START ? (max ? max : 1) : RBUF_START;
    c->rbuf = malloc(c->rcap);
    if (!c->rbuf) {
        free(c);
        return -ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->send_mu, NULL);
    c->ch = ch;
    c->next_id = 1;
    c->efd = c->epfd = -1;
    *out = c;
    return 0;
}

int ferry_rpc_connect(const char *name, int kind, const ferry_chan_opts *opts,
                      ferry_rpc_client **out, int64_t timeout_ns)
{
    if (!out) return -EINVAL;
    ferry_chan *ch;
    int rc = ferry_connect(name, kind, opts, &ch, timeout_ns);
    if (rc < 0) return rc;
    if ((rc = ferry_rpc_client_create(ch, out)) < 0) ferry_chan_close(ch);
    return rc;
}

static void free_call(struct call *k)
{
    if (k->has_cv) pthread_cond_destroy(&k->cv);
    if (k->heap) free(k);
}

void ferry_rpc_client_close(ferry_rpc_client *c)
{
    if (!c) return;
    for (size_t b = 0; b < NBUCKETS; b++) {
        for (struct call *k = c->tab[b], *nx; k; k = nx) {
            nx = k->next;
            free_call(k);
        }
    }
    for (struct call *k = c->dhead, *nx; k; k = nx) {
        nx = k->dnext;
        free_call(k);
    }
    ferry_chan_close(c->ch);
    if (c->epfd >= 0) close(c->epfd);
    if (c->efd >= 0) close(c->efd);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->send_mu);
    free(c->rbuf);
    free(c);
}

static int64_t timeout_of(int64_t deadline)
{
    if (deadline == FERRY__NO_DEADLINE) return FERRY_FOREVER;
    int64_t r = ferry__remaining(deadline);
    return r > 0 ? r : FERRY_NOW;
}

static int send_kind(ferry_rpc_client *c, int kind, uint64_t id, const ferry_msg *m,
                     int64_t timeout_ns)
{
    ferry_msg out;
    out.type = ferry__rpc_type(kind, id);
    out.data = m->data;
    out.len = m->len;
    out.cap = 0;
    out.nfds = m->nfds;
    if (m->nfds > FERRY_MAX_FDS) return -EINVAL;
    memcpy(out.fds, m->fds, sizeof out.fds[0] * m->nfds);
    pthread_mutex_lock(&c->send_mu);
    int rc = ferry_sendmsg(c->ch, &out, timeout_ns);
    pthread_mutex_unlock(&c->send_mu);
    return rc;
}

/* Take an id for k, enter it in the table and send its request. With keep_locked, a
 * successful start returns with mu held (ferry_call goes on to wait: one lock fewer). */
static int start(ferry_rpc_client *c, struct call *k, const ferry_msg *req, ferry__when *w,
                 uint64_t *idp, int keep_locked)
{
    pthread_mutex_lock(&c->mu);
    if (c->dead) {
        int d = c->dead;
        pthread_mutex_unlock(&c->mu);
        return d;
    }
    k->id = c->next_id++;
    if (idp) *idp = k->id; /* k itself may be freed by a dispatch once we unlock below */
    k->sending = 1;        /* kill_all and deliver leave it alone until the send is done */
    table_insert(c, k);
    pthread_mutex_unlock(&c->mu);

    /* The send fixes its own deadline lazily, as the call does (ferry__when). */
    int rc = send_kind(c, FERRY__RPC_REQUEST, k->id, req,
                       w->at == FERRY__LAZY ? w->timeout : timeout_of(w->at));

    pthread_mutex_lock(&c->mu);
    k->sending = 0;
    if (rc < 0) {
        table_remove(c, k);
    } else if (k->done) {
        if (k->async) complete(c, k, k->rc); /* its reply came during the send: queue it */
    } else if (c->dead) {
        complete(c, k, c->dead);
    }
    if (rc < 0 || !keep_locked) pthread_mutex_unlock(&c->mu);
    return rc < 0 ? rc : 0;
}

static void abs_ts(int64_t deadline, struct timespec *ts)
{
    ts->tv_sec = deadline / 1000000000;
    ts->tv_nsec = deadline % 1000000000;
}

/* Wait for sync call k until its deadline, reading replies when the reader role is free
 * (mu held on entry and exit). Removes k from the table and returns its result.
 * The deadline is read lazily (core/time.h): a call whose reply comes within its first
 * read never reads the clock; it is fixed at the first wait that does not end with a
 * message for this call (as if taken when that wait began). */
static ssize_t wait_call(ferry_rpc_client *c, struct call *k, ferry__when *w)
{
    ssize_t rc;
    const ssize_t expired = w->timeout == 0 ? -EAGAIN : -ETIMEDOUT;
    for (;;) {
        if (k->done) {
            rc = k->rc;
            break;
        }
        if (c->dead) { /* not reached: kill_all ended k; defensive */
            rc = c->dead;
            break;
        }
        if (!c->reader) {
            int lazy = w->at == FERRY__LAZY;
            int64_t slice;
            if (lazy) {
                slice = w->timeout < SLICE_NS ? w->timeout : SLICE_NS;
            } else {
                int64_t rem = ferry__remaining(w->at);
                slice = rem <= 0 ? FERRY_NOW : rem < SLICE_NS ? rem : SLICE_NS;
            }
            c->reader = 1;
            ssize_t r = read_one(c, slice);
            c->reader = 0;
            if (k->done || c->dead) continue;
            if (lazy) w->at = r >= 0 ? ferry__when_at(w) : ferry__now_ns() + (w->timeout - slice);
            if (ferry__remaining(w->at) <= 0) {
                rc = expired;
                break;
            }
            continue;
        }
        if (ferry__remaining(ferry__when_at(w)) <= 0) {
            rc = expired;
            break;
        }
        /* Follow: sleep until our reply comes or the reader role is free. */
        if (!k->has_cv) {
            pthread_condattr_t ca;
            pthread_condattr_init(&ca);
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
            pthread_cond_init(&k->cv, &ca); /* cannot fail on Linux */
            pthread_condattr_destroy(&ca);
            k->has_cv = 1;
        }
        k->wprev = NULL;
        k->wnext = c->waiters;
        if (c->waiters) c->waiters->wprev = k;
        c->waiters = k;
        if (w->at == FERRY__NO_DEADLINE) {
            pthread_cond_wait(&k->cv, &c->mu);
        } else {
            struct timespec ts;
            abs_ts(w->at, &ts);
            pthread_cond_timedwait(&k->cv, &c->mu, &ts);
        }
        if (k->wprev)
            k->wprev->wnext = k->wnext;
        else
            c->waiters = k->wnext;
        if (k->wnext) k->wnext->wprev = k->wprev;
    }
    table_remove(c, k); /* from now on a reply to k is dropped */
    if (!c->reader) wake_waiters(c);
    return rc;
}

static void init_sync(struct call *k, ferry_msg *resp, int heap)
{
    memset(k, 0, sizeof *k);
    k->resp = resp;
    k->heap = heap;
}

/*
 * The single-caller fast path (ferry_call when no other call is in the table and nobody
 * holds the reader role; mu held on entry, not on exit). The call takes its id and the
 * reader role in one hold of mu and never enters the table: it reads the channel itself,
 * straight into the caller's buffer, until its own reply comes. So a call costs three
 * lock holds (mu, send_mu, mu) instead of five, and no copy from rbuf.
 *
 * Other threads keep the normal rules meanwhile, as with any holder of the reader role:
 * a second caller enters the table and follows (sleeps on its condvar); async calls,
 * one-way sends and cancels go on. A message that is not this call's reply is handed on
 * by deliver() under mu (from the caller's buffer: deliver copies it out at once, and
 * the caller's buffer holds nothing of its own until the reply); one too long for the
 * caller's buffer is read into rbuf (grown as needed) first. The call's id is never in
 * the table, so ferry_call_cancel cannot find it (-ENOENT: ferry_call gives no id out),
 * and a read error ends it and every tabled call alike (kill_all). On its way out it
 * gives the reader role back and wakes the followers, as wait_call does.
 */
static ssize_t solo_call(ferry_rpc_client *c, const ferry_msg *req, ferry_msg *resp, ferry__when *w)
{
    const uint64_t id = c->next_id++;
    c->reader = 1;
    pthread_mutex_unlock(&c->mu);
    /* The send fixes its own deadline lazily, as the call does (ferry__when). */
    ssize_t rc = send_kind(c, FERRY__RPC_REQUEST, id, req,
                           w->at == FERRY__LAZY ? w->timeout : timeout_of(w->at));
    const int64_t want = ferry__rpc_type(FERRY__RPC_REPLY, id);
    const ssize_t expired = w->timeout == 0 ? -EAGAIN : -ETIMEDOUT;
    if (rc < 0) pthread_mutex_lock(&c->mu);
    while (rc >= 0) { /* mu not held at the top */
        int lazy = w->at == FERRY__LAZY;
        int64_t slice;
        if (lazy) {
            slice = w->timeout < SLICE_NS ? w->timeout : SLICE_NS;
        } else {
            int64_t rem = ferry__remaining(w->at);
            slice = rem <= 0 ? FERRY_NOW : rem < SLICE_NS ? rem : SLICE_NS;
        }
        ferry_msg m;
        m.data = resp->data;
        m.cap = resp->cap;
        ssize_t r = recv_grow(c, &m, slice);
        if (r >= 0 && m.type == want) { /* our reply */
            resp->type = 0;
            resp->len = m.len;
            if (m.data != resp->data) { /* too long for resp: it came through rbuf */
                resp->nfds = 0;
                close_fds(&m);
                rc = -EMSGSIZE;
            } else {
                resp->nfds = m.nfds;
                memcpy(resp->fds, m.fds, sizeof resp->fds[0] * m.nfds);
                rc = r;
            }
            pthread_mutex_lock(&c->mu);
            break;
        }
        pthread_mutex_lock(&c->mu);
        if (r >= 0) {
            deliver(c, &m); /* another call's reply, or a stray: handed on or dropped */
        } else if (r != -ETIMEDOUT && r != -EAGAIN) {
            rc = r == -EMSGSIZE ? -EBADMSG : r; /* as read_one */
            kill_all(c, (int)rc);
            break;
        }
        if (c->dead) { /* (not reached: only the reader kills, and that is us) */
            rc = c->dead;
            break;
        }
        if (lazy) w->at = r >= 0 ? ferry__when_at(w) : ferry__now_ns() + (w->timeout - slice);
        if (ferry__remaining(w->at) <= 0) {
            rc = expired;
            break;
        }
        pthread_mutex_unlock(&c->mu);
    }
    c->reader = 0; /* mu held */
    if (c->waiters) wake_waiters(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

ssize_t ferry_call(ferry_rpc_client *c, const ferry_msg *req, ferry_msg *resp, int64_t timeout_ns)
{
    if (!c || !req || !resp) return -EINVAL;
    ferry__when w;
    if (ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    pthread_mutex_lock(&c->mu);
    if (!c->dead && !c->reader && c->ncalls == 0) return solo_call(c, req, resp, &w);
    pthread_mutex_unlock(&c->mu);
    struct call k;
    init_sync(&k, resp, 0);
    int rc = start(c, &k, req, &w, NULL, 1);
    if (rc < 0) return rc;
    ssize_t r = wait_call(c, &k, &w); /* mu held since start */
    pthread_mutex_unlock(&c->mu);
    if (k.has_cv) pthread_cond_destroy(&k.cv);
    return r;
}

int ferry_call_start(ferry_rpc_client *c, const ferry_msg *req, ferry_msg *resp, uint64_t *id,
                     int64_t timeout_ns)
{
    ferry__when w;
    if (!c || !req || !resp || !id || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    struct call *k = malloc(sizeof *k);
    if (!k) return -ENOMEM;
    init_sync(k, resp, 1);
    int rc = start(c, k, req, &w, id, 0);
    if (rc < 0) {
        free_call(k);
        return rc;
    }
    return 0;
}

ssize_t ferry_call_wait(ferry_rpc_client *c, uint64_t id, int64_t timeout_ns)
{
    ferry__when w;
    if (!c || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    pthread_mutex_lock(&c->mu);
    struct call *k = table_find(c, id);
    if (!k || k->async || !k->heap || k->waiting) {
        pthread_mutex_unlock(&c->mu);
        return -ENOENT;
    }
    k->waiting = 1;
    ssize_t r = wait_call(c, k, &w);
    pthread_mutex_unlock(&c->mu);
    free_call(k);
    return r;
}

int ferry_call_cancel(ferry_rpc_client *c, uint64_t id)
{
    if (!c) return -EINVAL;
    pthread_mutex_lock(&c->mu);
    struct call *k = table_find(c, id);
    int rc = -ENOENT;
    if (k && !k->done && !k->sending) {
        complete(c, k, -ECANCELED);
        rc = 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc == 0) { /* tell the server, best effort (a full channel: it just answers) */
        ferry_msg none;
        memset(&none, 0, sizeof none);
        send_kind(c, FERRY__RPC_CANCEL, id, &none, FERRY_NOW);
    }
    return rc;
}

int ferry_call_async(ferry_rpc_client *c, const ferry_msg *req, ferry_msg *resp,
                     ferry_rpc_callback cb, void *ctx, uint64_t *id, int64_t timeout_ns)
{
    ferry__when w;
    if (!c || !req || !resp || !cb || ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    struct call *k = calloc(1, sizeof *k);
    if (!k) return -ENOMEM;
    k->async = 1;
    k->heap = 1;
    k->resp = resp;
    k->cb = cb;
    k->ctx = ctx;
    int rc = start(c, k, req, &w, id, 0);
    if (rc < 0) free(k);
    return rc;
}

int ferry_rpc_poll_fd(ferry_rpc_client *c)
{
    if (!c) return -EINVAL;
    pthread_mutex_lock(&c->mu);
    int rc = c->epfd;
    if (rc >= 0) goto out;
    int cfd = ferry_chan_poll_fd(c->ch);
    if (cfd < 0) {
        rc = cfd;
        goto out;
    }
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) {
        rc = -errno;
        goto out;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        rc = -errno;
        close(efd);
        goto out;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) < 0) {
        rc = -errno;
        close(ep);
        close(efd);
        goto out;
    }
    c->efd = efd;
    c->epfd = rc = ep;
    if (c->dhead) ring(c);
out:
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int ferry_rpc_dispatch(ferry_rpc_client *c)
{
    if (!c) return -EINVAL;
    pthread_mutex_lock(&c->mu);
    if (!c->reader) {
        c->reader = 1;
        for (int i = 0; i < 256 && !c->dead; i++)
            if (read_one(c, FERRY_NOW) < 0) break;
        c->reader = 0;
        wake_waiters(c);
    }
    if (c->efd >= 0) {
        uint64_t v;
        ssize_t r = read(c->efd, &v, sizeof v); /* reset: the queue is taken below */
        (void)r;
    }
    struct call *q = c->dhead;
    c->dhead = c->dtail = NULL;
    int dead = c->dead;
    pthread_mutex_unlock(&c->mu);
    int n = 0;
    while (q) {
        struct call *nx = q->dnext;
        q->cb(c, q->id, q->rc, q->resp, q->ctx);
        free(q);
        q = nx;
        n++;
    }
    return n ? n : dead;
}

int ferry_rpc_send(ferry_rpc_client *c, const ferry_msg *m, int64_t timeout_ns)
{
    if (!c || !m) return -EINVAL;
    return send_kind(c, FERRY__RPC_ONEWAY, 0, m, timeout_ns);
}

uint64_t ferry_rpc_dropped(const ferry_rpc_client *c)
{
    if (!c) return 0;
    pthread_mutex_lock((pthread_mutex_t *)&c->mu);
    uint64_t d = c->dropped;
    pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
    return d;
}
