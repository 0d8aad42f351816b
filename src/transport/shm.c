// SPDX-License-Identifier: MIT
/*
 * shm.c — the shm transport: channels whose data flows through lock-free rings in sealed
 * memfds (ring.h), set up over a Unix-socket control link (shm_link.h) that stays open as
 * the liveness link. This file makes channels (ferry_pair, ferry_pair_fd,
 * ferry_chan_adopt, ferry_listen/accept, ferry_chan_open), closes, and holds the ops
 * table; shm_live.c tells whether the peer is still there; shm_tx.c and shm_rx.c move the messages.
 *
 * Rules: the creating side (pair, listener) decides the channel's shape and makes both
 * directions' segments; the adopting side validates every value and every
 * fd of the handshake before it maps anything (-EBADMSG otherwise).
 */
#define _GNU_SOURCE
#include "shm_chan.h"
#include "core/vdso.h"
#include "shm_link.h"
#include "sockutil.h"

#include "core/time.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------------ shape */

typedef struct shape {
    uint32_t capacity, flags;
    uint64_t ring_bytes, max_msg, mem_cap;
} shape;

static int is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* The shape a creator asks for, from its options, or -EINVAL. */
static int shape_from_opts(const ferry_chan_opts *o, shape *s)
{
    ferry_chan_opts d;
    if (!o) {
        ferry__opts_defaults(&d);
        o = &d;
    }
    if (o->flags & ~(uint32_t)(FERRY_CHECKSUM | FERRY_NO_SPIN | FERRY_PEEK_PRIVATE | FERRY_NO_FDS |
                               FERRY_TRUST_RELAY))
        return -EINVAL;
    if (o->max_msg > FERRY_MAX_MSG_LIMIT) return -EINVAL;
    uint64_t ring = o->ring_bytes;
    if (ring == 0) { /* the smallest ring that carries max_msg */
        ring = FERRY__RING_MIN;
        while (ferry__ring_max_msg(ring) < o->max_msg) ring *= 2;
    }
    if (!is_pow2(ring) || ring < FERRY__RING_MIN || ring > FERRY__RING_MAX) return -EINVAL;
    uint64_t max = o->max_msg ? o->max_msg : ferry__ring_max_msg(ring);
    if (max > ferry__ring_max_msg(ring)) return -EINVAL;
    if (max > FERRY_MAX_MSG_LIMIT) max = FERRY_MAX_MSG_LIMIT;
    if (o->capacity == FERRY_UNBOUNDED && o->mem_cap < ring) return -EINVAL;
    s->capacity = o->capacity;
    s->flags = o->flags & (FERRY_CHECKSUM | FERRY_NO_FDS);
    s->ring_bytes = ring;
    s->max_msg = max;
    s->mem_cap =
        o->mem_cap > FERRY__RING_MAX ? FERRY__RING_MAX : o->mem_cap; /* no ring grows past */
    return 0;
}

/* Validate a shape received from a peer: -EBADMSG unless it is one we could have made. */
static int shape_from_link(const ferry__link_msg *m, shape *s)
{
    uint64_t ring = m->ring_bytes;
    if (!is_pow2(ring) || ring < FERRY__RING_MIN || ring > FERRY__RING_MAX ||
        m->max_msg > ferry__ring_max_msg(ring) || m->max_msg > FERRY_MAX_MSG_LIMIT ||
        (m->flags & ~(uint32_t)(FERRY_CHECKSUM | FERRY_NO_FDS)) || m->seq != 0)
        return -EBADMSG;
    s->capacity = m->capacity;
    s->flags = m->flags;
    s->ring_bytes = ring;
    s->max_msg = m->max_msg;
    s->mem_cap = m->mem_cap < ring ? ring : m->mem_cap;
    if (s->mem_cap > FERRY__RING_MAX) s->mem_cap = FERRY__RING_MAX; /* no ring grows past it */
    return 0;
}

/* The most an end of a channel of shape s maps, plus the most private heap its skip
 * queue may take: per direction the control block and first ring, and with growth the
 * later rings (each twice the last, all of a direction under 2 * mem_cap: shm_rx.c
 * refuses more); the queue holds at most one entry per 64 bytes of incoming ring. */
static uint64_t shape_footprint(const shape *s)
{
    uint64_t grow = s->capacity == FERRY_UNBOUNDED ? 2 * s->mem_cap : 0;
    uint64_t in = s->ring_bytes + grow;
    return 2 * (FERRY__RING_CTL_BYTES + in) + in / FERRY__REC_ALIGN * sizeof(rx_entry);
}

/* ------------------------------------------------------------------ channel objects */

static const ferry__listener_ops listener_ops;

static shm_chan *chan_new(int link, const shape *s, const ferry_chan_opts *local)
{
    /* 64-byte aligned, as its layout asks (shm_chan.h); sizeof is a multiple of 64. */
    shm_chan *c = aligned_alloc(alignof(shm_chan), sizeof *c);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    /* This process publishes: let sleepers' membarriers reach it (shm_chan.h: mb_ok). */
    c->mb_ok = ferry__fence_setup() > 0;
    c->clock = ferry__vdso_gettime(); /* NULL: none (time.c's clock then) */
    c->base.ops = &ferry__shm_chan_ops;
    c->link = link;
    c->capacity = s->capacity;
    c->flags = s->flags;
    c->ring_bytes = s->ring_bytes;
    c->max_msg = s->max_msg;
    c->mem_cap = s->mem_cap;
    c->rx.efd = -1; /* (until ferry__shm_rx_init says so too) */
    atomic_store_explicit(&c->rx.epfd, -1, memory_order_relaxed);
    ferry_chan_opts d;
    if (!local) {
        ferry__opts_defaults(&d);
        local = &d;
    }
    int64_t spin = (local->flags & FERRY_NO_SPIN) ? 0 : local->spin_ns;
    c->rx.max_skipped = local->max_skipped_fds ? local->max_skipped_fds : FERRY_SKIPPED_FDS_DEFAULT;
    c->rx.peek_private = (local->flags & FERRY_PEEK_PRIVATE) != 0;
    ferry__spin_init(&c->tx.spin, spin);
    ferry__spin_init(&c->rx.spin, spin);
    return c;
}

/* Wire the two first segments in: the control blocks and the first rings. */
static int chan_attach(shm_chan *c)
{
    c->tx.ctl = c->seg_tx.base;
    c->tx.data = (uint8_t *)c->seg_tx.base + FERRY__RING_CTL_BYTES;
    c->tx.size = c->ring_bytes;
    int rc = ferry__shm_rx_init(c);
    /* What our waiters sleep on: data on the incoming ring, room on the outgoing one. */
    if (rc == 0)
        ferry__watch_init(&c->watch, c->link, &c->rx.ctl->data_futex, &c->tx.ctl->space_futex);
    return rc;
}

static void chan_free(shm_chan *c)
{
    if (!c) return;
    ferry__watch_leave(&c->watch); /* before the link closes and the words go */
    if (c->link >= 0 && c->tx.ctl && c->rx.ctl) {
        /* Hang up first, then wake a peer asleep on either ring: it re-checks, finds the
         * link hung up and returns -EPIPE now rather than at the end of its sleep slice. */
        close(c->link);
        c->link = -1;
        ferry__wake_waiter(&c->tx.ctl->data_futex, &c->tx.ctl->data_waiting);
        ferry__wake_waiter(&c->rx.ctl->space_futex, &c->rx.ctl->space_waiting);
    }
    ferry__shm_rx_free(c);
    ferry__shm_tx_free(c);
    ferry__seg_unmap(&c->seg_tx);
    ferry__seg_unmap(&c->seg_rx);
    if (c->link >= 0) close(c->link);
    free(c);
}

static void shm_close(ferry_chan *ch)
{
    chan_free((shm_chan *)ch);
}

/*
 * Creator side of the handshake on link: make both directions, send SETUP with their
 * segments (closed here once sent: the mappings stay). On success the channel owns link;
 * on failure link is closed.
 */
static int setup_create(int link, const ferry_chan_opts *o, ferry_chan **out)
{
    shape s;
    int rc = shape_from_opts(o, &s);
    if (rc < 0) {
        close(link);
        return rc;
    }
    shm_chan *c = chan_new(link, &s, o);
    if (!c) {
        close(link);
        return -ENOMEM;
    }
    int segfd[2] = {-1, -1};
    size_t size = FERRY__RING_CTL_BYTES + s.ring_bytes;
    rc = ferry__seg_create(size, &segfd[0], &c->seg_tx);
    if (rc == 0) rc = ferry__seg_create(size, &segfd[1], &c->seg_rx);
    if (rc == 0) rc = chan_attach(c);
    if (rc == 0) {
        ferry__link_msg m = {.magic = FERRY__SETUP_MAGIC,
                             .kind = FERRY__LINK_SETUP,
                             .ring_bytes = s.ring_bytes,
                             .max_msg = s.max_msg,
                             .mem_cap = s.mem_cap,
                             .capacity = s.capacity,
                             .flags = s.flags};
        rc = ferry__link_send(link, &m, segfd, 2, ferry__deadline_in(1000000000));
    }
    for (int i = 0; i < 2; i++)
        if (segfd[i] >= 0) close(segfd[i]);
    if (rc < 0) {
        chan_free(c);
        return rc;
    }
    *out = &c->base;
    return 0;
}

/*
 * Adopter side: wait for SETUP on link until deadline, validate it and its fds, map.
 * Unless `own` (ferry_pair: this process chose the shape itself), a shape that needs more
 * than local->max_map (shape_footprint) is refused with -E2BIG before anything is mapped.
 * On success the channel owns link; on failure link is closed.
 */
static int setup_adopt(int link, const ferry_chan_opts *local, int64_t deadline, int own,
                       ferry_chan **out)
{
    ferry__link_msg m;
    int fds[2];
    shape s = {0};
    int rc = ferry__link_recv(link, FERRY__LINK_SETUP, &m, fds, 2, deadline);
    if (rc < 0) {
        close(link);
        return rc;
    }
    shm_chan *c = NULL;
    rc = shape_from_link(&m, &s);
    size_t max_map = local && local->max_map ? local->max_map : FERRY_MAX_MAP_DEFAULT;
    if (rc == 0 && !own && shape_footprint(&s) > max_map) rc = -E2BIG;
    if (rc == 0 && !(c = chan_new(link, &s, local))) rc = -ENOMEM;
    if (c) c->peer_no_fds = (s.flags & FERRY_NO_FDS) != 0; /* the creator takes none */
    size_t size = FERRY__RING_CTL_BYTES + s.ring_bytes;
    /* The creator's outgoing direction is our incoming one. */
    if (rc == 0) rc = ferry__seg_map_checked(fds[0], size, &c->seg_rx);
    if (rc == 0) rc = ferry__seg_map_checked(fds[1], size, &c->seg_tx);
    close(fds[0]);
    close(fds[1]);
    if (c) {
        if (rc == 0) rc = chan_attach(c);
        if (rc < 0) chan_free(c); /* closes link */
    } else {
        close(link);
    }
    if (rc < 0) return rc;
    *out = &c->base;
    return 0;
}

/* ------------------------------------------------------------------ pairs */

/* Both ends of a link; the creator's handshake is already queued on *fd. */
static int pair_link(const ferry_chan_opts *opts, ferry_chan **a, int *fd)
{
    int sv[2];
    if (!a || !fd) return -EINVAL;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
    int rc = setup_create(sv[0], opts, a);
    if (rc < 0) {
        close(sv[1]);
        return rc;
    }
    *fd = sv[1];
    return 0;
}

/* The pair_fd door (ferry_pair_fd): one descriptor, fds[0]. */
static int shm_pair_fd(const ferry_chan_opts *opts, ferry_chan **a, int fds[2])
{
    int rc = pair_link(opts, a, &fds[0]);
    fds[1] = -1;
    if (rc == 0 && fcntl(fds[0], F_SETFD, 0) < 0) { /* it must survive exec */
        rc = -errno;
        close(fds[0]);
        shm_close(*a);
        *a = NULL;
    }
    return rc;
}

/* The pair door (ferry_pair). */
static int shm_pair(const ferry_chan_opts *opts, ferry_chan **a, ferry_chan **b)
{
    int fd = -1;
    if (!b) return -EINVAL;
    int rc = pair_link(opts, a, &fd);
    if (rc < 0) return rc;
    rc = setup_adopt(fd, opts, FERRY__NO_DEADLINE, 1, b);
    if (rc < 0) {
        shm_close(*a);
        *a = NULL;
    }
    return rc;
}

/* The adopt door (ferry_chan_adopt). */
static int shm_adopt(int fd, const ferry_chan_opts *opts, ferry_chan **out)
{
    if (!out) {
        close(fd);
        return -EINVAL;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return -EBADF;
    /* The SETUP message was queued before the fd was handed over: never wait for it. */
    int rc = setup_adopt(fd, opts, 0, 0, out);
    return rc == -EAGAIN ? -EBADMSG : rc;
}

/* ------------------------------------------------------------------ listen / open */

typedef struct shm_listener {
    struct ferry_listener base;
    int fd;
    ferry_chan_opts opts;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "" for an abstract name */
} shm_listener;

static int shm_listen(const char *where, const ferry_chan_opts *o, ferry_listener **out)
{
    struct sockaddr_un sa;
    socklen_t len;
    shape s;
    int rc = ferry__unix_addr(where, &sa, &len);
    if (rc < 0) return rc;
    if ((rc = shape_from_opts(o, &s)) < 0) return rc;
    shm_listener *l = calloc(1, sizeof *l);
    if (!l) return -ENOMEM;
    if (o)
        l->opts = *o;
    else
        ferry__opts_defaults(&l->opts);
    l->base.ops = &listener_ops;
    memcpy(l->path, sa.sun_path, sizeof l->path);
    l->fd = ferry__unix_listen(SOCK_SEQPACKET, &sa, len, l->opts.mode);
    if (l->fd < 0) {
        rc = l->fd;
        free(l);
        return rc;
    }
    *out = &l->base;
    return 0;
}

/* Record the peer's kernel-stamped credentials (a link made by connect/accept; a
 * socketpair's would name its creator, so pairs have none). */
static void take_cred(ferry_chan *ch)
{
    shm_chan *c = (shm_chan *)ch;
    struct ucred u;
    socklen_t n = sizeof u;
    if (getsockopt(c->link, SOL_SOCKET, SO_PEERCRED, &u, &n) == 0) {
        c->cred = (ferry_cred){.uid = u.uid, .gid = u.gid, .pid = u.pid};
        c->has_cred = 1;
    }
}

static int shm_peer(const ferry_chan *ch, ferry_cred *out)
{
    const shm_chan *c = (const shm_chan *)ch;
    if (!c->has_cred) return -EOPNOTSUPP;
    *out = c->cred;
    return 0;
}

static int shm_accept(ferry_listener *fl, ferry_chan **out, int64_t deadline)
{
    shm_listener *l = (shm_listener *)fl;
    for (;;) {
        int s = ferry__accept(l->fd, deadline);
        if (s < 0) return s;
        int rc = setup_create(s, &l->opts, out);
        if (rc == -EPIPE) continue; /* the client gave up already: take the next */
        if (rc == 0) take_cred(*out);
        return rc;
    }
}

static int shm_listener_fd(const ferry_listener *fl)
{
    return ((const shm_listener *)fl)->fd;
}

static void shm_listener_close(ferry_listener *fl)
{
    shm_listener *l = (shm_listener *)fl;
    if (l->path[0]) unlink(l->path);
    close(l->fd);
    free(l);
}

static int shm_open(const char *where, const ferry_chan_opts *o, ferry_chan **out, int64_t deadline)
{
    struct sockaddr_un sa;
    socklen_t len;
    int rc = ferry__unix_addr(where, &sa, &len);
    if (rc < 0) return rc;
    int s = ferry__connect(AF_UNIX, SOCK_SEQPACKET, (struct sockaddr *)&sa, len, deadline);
    if (s < 0) return s;
    rc = setup_adopt(s, o, deadline, 0, out);
    if (rc == 0) take_cred(*out);
    return rc;
}

int ferry__shm_from_link(int link, int creator, const ferry_chan_opts *o, const ferry_cred *peer,
                         int64_t deadline, ferry_chan **out)
{
    int rc = creator ? setup_create(link, o, out) : setup_adopt(link, o, deadline, 0, out);
    if (rc == 0 && peer) {
        shm_chan *c = (shm_chan *)*out;
        c->cred = *peer;
        c->has_cred = 1;
    }
    return rc;
}

static size_t shm_max_msg(const ferry_chan *ch)
{
    return ((const shm_chan *)ch)->max_msg;
}

static int shm_alive(ferry_chan *ch)
{
    return ferry__shm_alive(ch);
}

static const ferry__listener_ops listener_ops = {
    .accept = shm_accept,
    .fd = shm_listener_fd,
    .close = shm_listener_close,
};

const ferry__chan_ops ferry__shm_chan_ops = {
    .sendmsg = ferry__shm_sendmsg,
    .recvmsg = ferry__shm_recvmsg,
    .loan = ferry__shm_loan,
    .commit = ferry__shm_commit,
    .peek = ferry__shm_peek,
    .release = ferry__shm_release,
    .fd = ferry__shm_fd,
    .max_msg = shm_max_msg,
    .peer = shm_peer,
    .alive = shm_alive,
    .close = shm_close,
};

const ferry__transport ferry__shm_transport = {
    .scheme = "shm",
    .kind = FERRY_KIND_SHM,
    .listen = shm_listen,
    .open = shm_open,
    .pair = shm_pair,
    .pair_fd = shm_pair_fd,
    .adopt = shm_adopt,
    .from_sock = ferry__shm_from_link,
};
