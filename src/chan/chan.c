// SPDX-License-Identifier: MIT
/*
 * chan.c — the generic channel: the public entry points. Checks what does not depend on
 * the transport, turns timeouts into deadlines once, finds the transport of a URL (or of
 * a pair, an adopted descriptor, a broker's socket), and dispatches through its table
 * and ops (transport/transport.h). The only caller of the transports' doors.
 */
#define _GNU_SOURCE /* strdup */
#include "chan/chan.h"
#include "core/abi.h"
#include "core/hot.h"
#include "core/time.h"
#include "core/url.h"
#include "transport/transport.h"

#include <fcntl.h>
#include <unistd.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Every transport: a new one adds its table here (transport/transport.h). */
static const ferry__transport *const transports[] = {
    &ferry__shm_transport,    &ferry__unix_transport, &ferry__tcp_transport,
    &ferry__fifo_transport,   &ferry__pipe_transport, &ferry__posixmq_transport,
    &ferry__sysvmq_transport,
#ifdef FERRY_HAVE_TLS
    &ferry__tls_transport,
#endif
};

#define NTRANSPORTS (sizeof transports / sizeof transports[0])

void ferry_chan_opts_init_sized(ferry_chan_opts *o, size_t size)
{
    ferry_chan_opts d;
    ferry__opts_defaults(&d);
    ferry__sized_init(o, size, &d, sizeof d);
}

void ferry_tls_opts_init_sized(ferry_tls_opts *o, size_t size)
{
    ferry_tls_opts d;
    memset(&d, 0, sizeof d); /* nothing loaded, no client certificate, ktls when there */
    d.size = sizeof d;
    ferry__sized_init(o, size, &d, sizeof d);
}

int ferry__remote_id_valid(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++)
        if (n == FERRY_REMOTE_ID_MAX || (unsigned char)id[n] < 0x21 || (unsigned char)id[n] > 0x7e)
            return -EINVAL;
    return n ? 0 : -EINVAL;
}

int ferry__chan_opts_in(const ferry_chan_opts *in, ferry_chan_opts *o)
{
    ferry__opts_defaults(o);
    int rc = ferry__sized_in(o, sizeof *o, in, FERRY__CHAN_OPTS_V0);
    if (rc == 0 && o->relay_for && ferry__remote_id_valid(o->relay_for) < 0) rc = -EINVAL;
    return rc;
}

static const ferry__transport *by_scheme(const char *scheme)
{
    for (size_t i = 0; i < NTRANSPORTS; i++)
        if (strcmp(transports[i]->scheme, scheme) == 0) return transports[i];
    return NULL;
}

static int find_transport(const char *url, const ferry__transport **t, const char **rest)
{
    char scheme[16];
    int rc = ferry__url_split(url, scheme, rest);
    if (rc < 0) return rc;
    *t = by_scheme(scheme);
    return *t ? 0 : -EPROTONOSUPPORT;
}

int ferry_listen(const char *url, const ferry_chan_opts *opts, ferry_listener **out)
{
    const ferry__transport *t;
    const char *rest;
    ferry_chan_opts o;
    if (!out) return -EINVAL;
    int rc = ferry__chan_opts_in(opts, &o);
    if (rc < 0) return rc;
    if ((rc = find_transport(url, &t, &rest)) < 0) return rc;
    if (!t->listen) return -EOPNOTSUPP;
    ferry_listener *l = NULL;
    if ((rc = t->listen(rest, &o, &l)) < 0) return rc;
    /* Keep the URL for ferry_listener_url. Failing here undoes the listen. */
    l->url = strdup(url);
    if (!l->url) {
        l->ops->close(l);
        return -ENOMEM;
    }
    *out = l;
    return 0;
}

int ferry_accept(ferry_listener *l, ferry_chan **out, int64_t timeout_ns)
{
    int64_t deadline;
    if (!l || !out || ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    return l->ops->accept(l, out, deadline);
}

int ferry_listener_poll_fd(const ferry_listener *l)
{
    return l ? l->ops->fd(l) : -EINVAL;
}

ssize_t ferry_listener_url(const ferry_listener *l, char *buf, size_t cap)
{
    if (!l || !buf) return -EINVAL;
    char own[FERRY__URL_MAX];
    const char *u = l->url;
    if (l->ops->url) {
        int n = l->ops->url(l, own, sizeof own);
        if (n < 0) return n;
        if (n > 0) u = own;
    }
    if (!u) return -EOPNOTSUPP; /* not made by ferry_listen (a broker listener) */
    size_t len = strlen(u);
    if (len >= cap) return -ENAMETOOLONG; /* nothing written */
    memcpy(buf, u, len + 1);
    return (ssize_t)len;
}

void ferry_listener_close(ferry_listener *l)
{
    if (!l) return;
    /* The transport's close frees the whole struct: the URL copy goes first. */
    free(l->url);
    l->url = NULL;
    l->ops->close(l);
}

int ferry_chan_open(const char *url, const ferry_chan_opts *opts, ferry_chan **out,
                    int64_t timeout_ns)
{
    const ferry__transport *t;
    const char *rest;
    int64_t deadline;
    ferry_chan_opts o;
    if (!out || ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    int rc = ferry__chan_opts_in(opts, &o);
    if (rc < 0 || (rc = find_transport(url, &t, &rest)) < 0) return rc;
    return t->open(rest, &o, out, deadline);
}

/* ------------------------------------------------------------ pairs and adoption */

/* Both ends of a channel of the transport of scheme, in this process. */
static int pair_of(const char *scheme, const ferry_chan_opts *opts, ferry_chan **a, ferry_chan **b)
{
    const ferry__transport *t = by_scheme(scheme);
    ferry_chan_opts o;
    if (!a || !b) return -EINVAL;
    int rc = ferry__chan_opts_in(opts, &o);
    if (rc < 0) return rc;
    return t && t->pair ? t->pair(&o, a, b) : -EOPNOTSUPP;
}

/* One end, and the other as descriptors for a child (fds[1] -1 where one is enough). */
static int pair_fd_of(const char *scheme, const ferry_chan_opts *opts, ferry_chan **a, int fds[2])
{
    const ferry__transport *t = by_scheme(scheme);
    ferry_chan_opts o;
    if (!a || !fds) return -EINVAL;
    int rc = ferry__chan_opts_in(opts, &o);
    if (rc < 0) return rc;
    return t && t->pair_fd ? t->pair_fd(&o, a, fds) : -EOPNOTSUPP;
}

int ferry_pair(const ferry_chan_opts *opts, ferry_chan **a, ferry_chan **b)
{
    return pair_of("shm", opts, a, b);
}

int ferry_pair_fd(const ferry_chan_opts *opts, ferry_chan **a, int *child_fd)
{
    int fds[2];
    if (!child_fd) return -EINVAL;
    int rc = pair_fd_of("shm", opts, a, fds);
    if (rc == 0) *child_fd = fds[0];
    return rc;
}

int ferry_chan_adopt(int fd, const ferry_chan_opts *opts, ferry_chan **out)
{
    const ferry__transport *t = by_scheme("shm");
    ferry_chan_opts o;
    int rc = ferry__chan_opts_in(opts, &o);
    if (rc == 0 && (!t || !t->adopt)) rc = -EOPNOTSUPP;
    if (rc < 0) {
        close(fd); /* on failure fd is closed, whatever the failure */
        return rc;
    }
    return t->adopt(fd, &o, out);
}

int ferry_pipe_pair(const ferry_chan_opts *opts, ferry_chan **a, ferry_chan **b)
{
    return pair_of("pipe", opts, a, b);
}

int ferry_pipe_pair_fd(const ferry_chan_opts *opts, ferry_chan **a, int child_fds[2])
{
    return pair_fd_of("pipe", opts, a, child_fds);
}

int ferry__chan_from_sock(int kind, int s, int creator, const ferry_chan_opts *o,
                          const ferry_cred *peer, int64_t deadline, ferry_chan **out)
{
    for (size_t i = 0; i < NTRANSPORTS; i++)
        if (transports[i]->kind == kind && transports[i]->from_sock)
            return transports[i]->from_sock(s, creator, o, peer, deadline, out);
    close(s);
    return -EINVAL;
}

int ferry__chan_kind_ok(int kind)
{
    for (size_t i = 0; i < NTRANSPORTS; i++)
        if (transports[i]->kind == kind && transports[i]->from_sock) return 1;
    return 0;
}

int ferry__chan_alive(ferry_chan *ch)
{
    return ch->ops->alive ? ch->ops->alive(ch) : 0;
}

void ferry_chan_close(ferry_chan *ch)
{
    if (ch) ch->ops->close(ch);
}

FERRY__HOT int ferry_sendmsg(ferry_chan *ch, const ferry_msg *m, int64_t timeout_ns)
{
    if (!ch || !m || m->type < 0 || m->nfds > FERRY_MAX_FDS || (m->len && !m->data)) return -EINVAL;
    ferry__when w;
    if (ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    /* shm: a direct call, no read of the ops table (transport.h). */
    if (__builtin_expect(ch->ops == &ferry__shm_chan_ops, 1)) return ferry__shm_sendmsg(ch, m, &w);
    return ch->ops->sendmsg(ch, m, &w);
}

FERRY__HOT int ferry_send(ferry_chan *ch, const void *buf, size_t len, int64_t timeout_ns)
{
    ferry_msg m; /* only these fields are read: no need to clear the fd array */
    m.type = 0;
    m.data = (void *)buf;
    m.len = len;
    m.nfds = 0;
    return ferry_sendmsg(ch, &m, timeout_ns);
}

FERRY__HOT ssize_t ferry_recvmsg(ferry_chan *ch, ferry_msg *m, int64_t filter, int64_t timeout_ns)
{
    if (!ch || !m || filter == INT64_MIN || (m->cap && !m->data)) return -EINVAL;
    ferry__when w;
    if (ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    if (__builtin_expect(ch->ops == &ferry__shm_chan_ops, 1))
        return ferry__shm_recvmsg(ch, m, filter, 1, &w);
    return ch->ops->recvmsg(ch, m, filter, 1, &w);
}

FERRY__HOT ssize_t ferry_recv(ferry_chan *ch, void *buf, size_t cap, int64_t timeout_ns)
{
    if (!ch || (cap && !buf)) return -EINVAL;
    ferry_msg m; /* keep_fds == 0: the fd array is neither read nor written */
    m.data = buf;
    m.cap = cap;
    m.nfds = 0;
    ferry__when w;
    if (ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    if (__builtin_expect(ch->ops == &ferry__shm_chan_ops, 1))
        return ferry__shm_recvmsg(ch, &m, 0, 0, &w);
    return ch->ops->recvmsg(ch, &m, 0, 0, &w);
}

FERRY__HOT int ferry_loan(ferry_chan *ch, size_t len, void **buf, int64_t timeout_ns)
{
    if (!ch || !buf) return -EINVAL;
    if (!ch->ops->loan) return -EOPNOTSUPP;
    ferry__when w;
    if (ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    return ch->ops->loan(ch, len, buf, &w);
}

FERRY__HOT int ferry_commit(ferry_chan *ch, int64_t type, size_t len)
{
    if (!ch || type < 0) return -EINVAL;
    if (!ch->ops->commit) return -EOPNOTSUPP;
    return ch->ops->commit(ch, type, len);
}

int ferry_peek(ferry_chan *ch, int64_t filter, ferry_msg *m, int64_t timeout_ns)
{
    if (!ch || !m || filter == INT64_MIN) return -EINVAL;
    if (!ch->ops->peek) return -EOPNOTSUPP;
    ferry__when w;
    if (ferry__when_from(timeout_ns, &w) < 0) return -EINVAL;
    return ch->ops->peek(ch, filter, m, &w);
}

int ferry_release(ferry_chan *ch)
{
    if (!ch) return -EINVAL;
    if (!ch->ops->release) return -EOPNOTSUPP;
    return ch->ops->release(ch);
}

int ferry_chan_poll_fd(ferry_chan *ch)
{
    return ch ? ch->ops->fd(ch) : -EINVAL;
}

size_t ferry_chan_max_msg(const ferry_chan *ch)
{
    return ch ? ch->ops->max_msg(ch) : 0;
}

int ferry_chan_peer(const ferry_chan *ch, ferry_cred *out)
{
    if (!ch || !out) return -EINVAL;
    if (!ch->ops->peer) return -EOPNOTSUPP;
    return ch->ops->peer(ch, out);
}

ssize_t ferry_chan_peer_remote(const ferry_chan *ch, char *buf, size_t cap)
{
    if (!ch || !buf) return -EINVAL;
    if (!ch->ops->peer_remote) return -EOPNOTSUPP;
    return ch->ops->peer_remote(ch, buf, cap);
}

int ferry_chan_peer_cert(const ferry_chan *ch, ferry_peer_cert *out)
{
    if (!ch || !out) return -EINVAL;
    int rc = ferry__sized_check(out, FERRY__PEER_CERT_V0);
    if (rc < 0) return rc;
    if (!ch->ops->peer_cert) return -EOPNOTSUPP;
    /* a full struct of this version, then the caller's prefix of it (core/abi.h) */
    ferry_peer_cert full;
    memset(&full, 0, sizeof full);
    full.size = sizeof full;
    if ((rc = ch->ops->peer_cert(ch, &full)) < 0) return rc;
    return ferry__sized_out(out, &full, sizeof full, FERRY__PEER_CERT_V0);
}

int ferry_chan_stats(const ferry_chan *ch, ferry_chan_counters *ust)
{
    if (!ch || !ust) return -EINVAL;
    /* a full struct of this version, then the caller's prefix of it (core/abi.h) */
    ferry_chan_counters full = {.size = sizeof full}, *st = &full;
    /* relaxed: each counter is individually consistent, nothing else is ordered by them */
#define GET(f) st->f = atomic_load_explicit(&ch->st.f, memory_order_relaxed)
    GET(sent_msgs);
    GET(sent_bytes);
    GET(recv_msgs);
    GET(recv_bytes);
    GET(send_waits);
    GET(recv_waits);
    GET(wakeups);
    GET(drops);
    GET(grows);
#undef GET
    return ferry__sized_out(ust, &full, sizeof full, FERRY__CHAN_COUNTERS_V0);
}
