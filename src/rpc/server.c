// SPDX-License-Identifier: MIT
/*
 * server.c — the server side of one RPC connection (ferry.h, "RPC"): receiving requests
 * and replying to them from any thread, in any order.
 *
 * Rules:
 *  - recv_mu serializes receiving, send_mu sending (the channel's one-receiver,
 *    one-sender rule); mu guards the set of ids awaiting a reply and the reference count.
 *    The locks (rpc/lock.h, inline futex locks: cheaper than pthread mutexes on the
 *    request's path) are the only memory-ordering points.
 *  - An id enters the set when its request is received and leaves it at its (first)
 *    reply: a reply to an id not in the set (never received, or answered already) is
 *    -ENOENT on the server and nothing reaches the client.
 *  - A cancel from the client marks its id (bit 63 of the stored id): ferry_rpc_cancelled
 *    says so, and the reply is then -ECANCELED and not sent. A cancel for an id not in the
 *    set (answered already, or never received) is ignored.
 *  - Messages of any other kind are dropped (their fds closed).
 *  - The set is open addressing with linear probing (ids are never 0), deletion by
 *    backward shift, grown at half load.
 *
 * _GNU_SOURCE: syscall() (core/futex.h, through rpc/lock.h).
 */
#define _GNU_SOURCE
#include "rpc/wire.h"

#include <ferry/ferry.h>

#include "core/time.h"
#include "rpc/lock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ferry_rpc_server {
    ferry_chan *ch;
    ferry__rpc_lock mu, recv_mu, send_mu; /* lock.h: why not pthread mutexes */
    unsigned refs;
    uint64_t *ids; /* the set: 0 = empty */
    size_t cap, n;
};

/* Bit 63 of a stored id: the client cancelled the request (ids have 56 bits). */
#define CANCELLED (UINT64_C(1) << 63)

static size_t slot_of(uint64_t id, size_t cap)
{
    id &= FERRY__RPC_ID_MASK;
    return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

/* The slot holding id, or -1. */
static ssize_t set_find(const ferry_rpc_server *s, uint64_t id)
{
    if (!s->cap || id == 0) return -1; /* 0 marks an empty slot */
    size_t j = slot_of(id, s->cap);
    while (s->ids[j]) {
        if ((s->ids[j] & FERRY__RPC_ID_MASK) == id) return (ssize_t)j;
        j = (j + 1) & (s->cap - 1);
    }
    return -1;
}

static int set_add(ferry_rpc_server *s, uint64_t id)
{
    if (set_find(s, id) >= 0) return 0; /* a client that reuses an id: one reply */
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        uint64_t *nids = calloc(ncap, sizeof *nids);
        if (!nids) return -ENOMEM;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->ids[i]) continue;
            size_t j = slot_of(s->ids[i], ncap);
            while (nids[j]) j = (j + 1) & (ncap - 1);
            nids[j] = s->ids[i];
        }
        free(s->ids);
        s->ids = nids;
        s->cap = ncap;
    }
    size_t j = slot_of(id, s->cap);
    while (s->ids[j]) j = (j + 1) & (s->cap - 1);
    s->ids[j] = id;
    s->n++;
    return 0;
}

/* Remove id: 0, -ECANCELED (it was cancelled), or -ENOENT (absent). */
static int set_del(ferry_rpc_server *s, uint64_t id)
{
    ssize_t at = set_find(s, id);
    if (at < 0) return -ENOENT;
    int rc = (s->ids[at] & CANCELLED) ? -ECANCELED : 0;
    /* Backward shift: move later entries of the run into the hole when their home slot
     * does not lie cyclically in (hole, their slot]. */
    size_t m = s->cap - 1, hole = (size_t)at;
    for (size_t k = (hole + 1) & m; s->ids[k]; k = (k + 1) & m) {
        size_t home = slot_of(s->ids[k], s->cap);
        int between = hole <= k ? (hole < home && home <= k) : (hole < home || home <= k);
        if (!between) {
            s->ids[hole] = s->ids[k];
            hole = k;
        }
    }
    s->ids[hole] = 0;
    s->n--;
    return rc;
}

int ferry_rpc_server_create(ferry_chan *ch, ferry_rpc_server **out)
{
    if (!ch || !out) return -EINVAL;
    ferry_rpc_server *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    ferry__rpc_lock_init(&s->mu);
    ferry__rpc_lock_init(&s->recv_mu);
    ferry__rpc_lock_init(&s->send_mu);
    s->ch = ch;
    s->refs = 1;
    *out = s;
    return 0;
}

ferry_rpc_server *ferry_rpc_server_ref(ferry_rpc_server *s)
{
    if (!s) return NULL;
    ferry__rpc_lock_take(&s->mu);
    s->refs++;
    ferry__rpc_lock_give(&s->mu);
    return s;
}

void ferry_rpc_server_unref(ferry_rpc_server *s)
{
    if (!s) return;
    ferry__rpc_lock_take(&s->mu);
    unsigned left = --s->refs;
    ferry__rpc_lock_give(&s->mu);
    if (left) return;
    ferry_chan_close(s->ch);
    free(s->ids);
    free(s);
}

ssize_t ferry_recv_request(ferry_rpc_server *s, ferry_rpc_request *rq, int64_t timeout_ns)
{
    if (!s || !rq) return -EINVAL;
    /* One deadline for the whole call: dropped messages do not extend it. It is read
     * lazily (core/time.h): fixed after the first drop, when the receive loops. */
    ferry__when w;
    if (ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    ferry__rpc_lock_take(&s->recv_mu);
    ssize_t rc;
    for (;;) {
        int64_t to = w.timeout;
        if (w.at != FERRY__LAZY && w.at != FERRY__NO_DEADLINE) {
            to = ferry__remaining(w.at);
            if (to <= 0) to = FERRY_NOW;
        }
        rc = ferry_recvmsg(s->ch, &rq->msg, 0, to);
        if (rc < 0) break;
        int kind = ferry__rpc_kind(rq->msg.type);
        uint64_t id = ferry__rpc_id(rq->msg.type);
        if (kind == FERRY__RPC_REQUEST && id != 0) {
            ferry__rpc_lock_take(&s->mu);
            int a = set_add(s, id);
            ferry__rpc_lock_give(&s->mu);
            if (a < 0) {
                for (uint32_t i = 0; i < rq->msg.nfds; i++) close(rq->msg.fds[i]);
                rc = a;
                break;
            }
            rq->id = id;
            rq->oneway = 0;
            memset(rq->reserved, 0, sizeof rq->reserved); /* ferry.h: zeroed, room for later */
            break;
        }
        if (kind == FERRY__RPC_CANCEL) {
            ferry__rpc_lock_take(&s->mu);
            ssize_t at = set_find(s, id);
            if (at >= 0) s->ids[at] |= CANCELLED;
            ferry__rpc_lock_give(&s->mu);
        } else if (kind == FERRY__RPC_ONEWAY) {
            rq->id = 0;
            rq->oneway = 1;
            memset(rq->reserved, 0, sizeof rq->reserved);
            break;
        }
        for (uint32_t i = 0; i < rq->msg.nfds; i++) close(rq->msg.fds[i]);
        ferry__when_at(&w);
    }
    ferry__rpc_lock_give(&s->recv_mu);
    if (rc >= 0) rq->msg.type = 0;
    return rc;
}

int ferry_reply(ferry_rpc_server *s, uint64_t id, const ferry_msg *resp, int64_t timeout_ns)
{
    /* (the timeout is checked before the id is taken: a bad one must not lose the call) */
    if (!s || !resp || resp->nfds > FERRY_MAX_FDS || !ferry__timeout_ok(timeout_ns)) return -EINVAL;
    ferry__rpc_lock_take(&s->mu);
    int rc = set_del(s, id);
    ferry__rpc_lock_give(&s->mu);
    if (rc < 0) return rc; /* -ECANCELED: the client is not waiting; nothing to send */
    ferry_msg out;
    out.type = ferry__rpc_type(FERRY__RPC_REPLY, id);
    out.data = resp->data;
    out.len = resp->len;
    out.cap = 0;
    out.nfds = resp->nfds;
    memcpy(out.fds, resp->fds, sizeof out.fds[0] * resp->nfds);
    ferry__rpc_lock_take(&s->send_mu);
    rc = ferry_sendmsg(s->ch, &out, timeout_ns);
    ferry__rpc_lock_give(&s->send_mu);
    if (rc == -EOPNOTSUPP || rc == -EMSGSIZE || rc == -EAGAIN || rc == -ETIMEDOUT ||
        rc == -EINVAL) {
        /* Nothing was sent (ferry_sendmsg's contract for these): the request still
         * awaits its reply, which may be sent again (e.g. without the fds a relayed
         * client cannot take). Taken back out of the set before the send, so two
         * replies racing for one id still send at most one; the slot it had is free,
         * so this adds without allocating. */
        ferry__rpc_lock_take(&s->mu);
        (void)set_add(s, id);
        ferry__rpc_lock_give(&s->mu);
    }
    return rc;
}

int ferry_rpc_cancelled(ferry_rpc_server *s, uint64_t id)
{
    if (!s) return -EINVAL;
    ferry__rpc_lock_take(&s->mu);
    ssize_t at = set_find(s, id);
    int rc = at < 0 ? -ENOENT : (s->ids[at] & CANCELLED) ? 1 : 0;
    ferry__rpc_lock_give(&s->mu);
    return rc;
}

int ferry_rpc_server_poll_fd(ferry_rpc_server *s)
{
    return s ? ferry_chan_poll_fd(s->ch) : -EINVAL;
}

ssize_t ferry_rpc_server_peer_remote(const ferry_rpc_server *s, char *buf, size_t cap)
{
    return s ? ferry_chan_peer_remote(s->ch, buf, cap) : -EINVAL;
}
