// SPDX-License-Identifier: MIT
/*
 * unix.c — the unix transport: "unix:///path" (a socket file) or "unix://@name" (the
 * abstract namespace), SOCK_SEQPACKET, one ferry frame per packet (fdchan.h). Messages
 * keep their boundaries and carry fds (SCM_RIGHTS); each end knows its peer's
 * kernel-stamped credentials (SO_PEERCRED, taken at connect/accept: ferry_chan_peer).
 * Rules: a socket file gets exactly opts->mode (default 0600) and is removed when the
 * listener closes; capacity is the kernel's socket buffer (only FERRY_CAP_RING); a
 * message is one packet, so max_msg is bounded by the largest send buffer the system
 * grants (net.core.wmem_max): asking for more is -EINVAL. Each end holds at most its
 * opts->max_skipped_fds (+ FERRY_MAX_FDS - 1) fds in messages its typed receives passed
 * over (fdchan.h); beyond, the sender is held back.
 */
#define _GNU_SOURCE
#include "fdchan.h"
#include "sockutil.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const ferry__listener_ops listener_ops;

typedef struct unix_listener {
    struct ferry_listener base;
    int fd;
    size_t max;
    unsigned kind;
    uint32_t skipped_fds; /* opts->max_skipped_fds of the accepted ends (0: default) */
    uid_t relay_uid;      /* opts->relay_uid (FERRY_TRUST_RELAY in kind) */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "" for an abstract name */
} unix_listener;

/* The largest packet the kernel will take: the send buffer (twice net.core.wmem_max)
 * less its own bookkeeping; we keep to wmem_max less a page. */
static size_t packet_limit(void)
{
    long v = 212992; /* the usual default */
    FILE *f = fopen("/proc/sys/net/core/wmem_max", "re");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1) v = 212992;
        fclose(f);
    }
    return v > 8192 ? (size_t)v - 4096 : 4096;
}

/* Ask for the largest send buffer: a whole message must fit in one packet. */
static void big_sndbuf(int s)
{
    int v = INT_MAX / 2;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
}

static void set_cred(ferry_chan *ch, int s)
{
    struct ucred u;
    socklen_t n = sizeof u;
    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &u, &n) == 0)
        ferry__fdchan_set_cred(ch, &(ferry_cred){.uid = u.uid, .gid = u.gid, .pid = u.pid});
}

/* The fd engine's kind bits of ferry_chan_opts flags: a creator's (max > 0) shape and
 * trust, a joiner's word on fds (fdchan.h). */
static unsigned kind_of(const ferry_chan_opts *o, int creator)
{
    if (!o) return 0;
    if (!creator) return o->flags & FERRY_NO_FDS ? FDCHAN_NO_FDS : 0;
    return (o->flags & FERRY_CHECKSUM ? FDCHAN_CHECKSUM : 0) |
           (o->flags & FERRY_NO_FDS ? FDCHAN_NO_FDS : 0) |
           (o->flags & FERRY_TRUST_RELAY ? FDCHAN_TRUST_RELAY : 0);
}

/* An end on socket s: a creator (max > 0) with the listener's kind, skipped_fds and
 * relay_uid; a joiner with its kind and relay_for. SO_PEERCRED is recorded before anyone
 * can receive on it (the creator's trust in a named identity reads it). */
static int make_end(int s, size_t max, unsigned kind, uint32_t skipped_fds, uid_t relay_uid,
                    const char *relay_for, int64_t deadline, ferry_chan **out)
{
    big_sndbuf(s);
    ferry__fdchan_cfg cfg = {.ops = &ferry__fdchan_peer_ops,
                             .rfd = s,
                             .wfd = s,
                             .kind = kind | FDCHAN_PACKET,
                             .max_msg = max,
                             .max_skipped_fds = skipped_fds,
                             .relay_uid = relay_uid,
                             .relay_for = relay_for};
    int rc = ferry__fdchan_new(&cfg, deadline, out);
    if (rc == 0) set_cred(*out, s);
    return rc;
}

static int unix_listen(const char *where, const ferry_chan_opts *o, ferry_listener **out)
{
    struct sockaddr_un sa;
    socklen_t len;
    size_t max;
    int rc = ferry__unix_addr(where, &sa, &len);
    if (rc < 0) return rc;
    if (o && o->capacity != FERRY_CAP_RING) return -EOPNOTSUPP;
    if ((rc = ferry__fdchan_max_from_opts(o, packet_limit(), &max)) < 0) return rc;
    unix_listener *l = calloc(1, sizeof *l);
    if (!l) return -ENOMEM;
    l->base.ops = &listener_ops;
    l->max = max;
    l->kind = kind_of(o, 1);
    l->skipped_fds = o ? o->max_skipped_fds : 0;
    l->relay_uid = o ? o->relay_uid : 0;
    memcpy(l->path, sa.sun_path, sizeof l->path);
    l->fd = ferry__unix_listen(SOCK_SEQPACKET, &sa, len, o ? o->mode : 0600);
    if (l->fd < 0) {
        rc = l->fd;
        free(l);
        return rc;
    }
    *out = &l->base;
    return 0;
}

static int unix_accept(ferry_listener *fl, ferry_chan **out, int64_t deadline)
{
    unix_listener *l = (unix_listener *)fl;
    for (;;) {
        int s = ferry__accept(l->fd, deadline);
        if (s < 0) return s;
        int rc = make_end(s, l->max, l->kind, l->skipped_fds, l->relay_uid, NULL, deadline, out);
        if (rc != -EPIPE) return rc; /* a client that gave up already: take the next */
    }
}

static int unix_listener_fd(const ferry_listener *fl)
{
    return ((const unix_listener *)fl)->fd;
}

static void unix_listener_close(ferry_listener *fl)
{
    unix_listener *l = (unix_listener *)fl;
    if (l->path[0]) unlink(l->path);
    close(l->fd);
    free(l);
}

static int unix_open(const char *where, const ferry_chan_opts *o, ferry_chan **out,
                     int64_t deadline)
{
    /* the listener decides the shape; o gives only local choices */
    struct sockaddr_un sa;
    socklen_t len;
    int rc = ferry__unix_addr(where, &sa, &len);
    if (rc < 0) return rc;
    int s = ferry__connect(AF_UNIX, SOCK_SEQPACKET, (struct sockaddr *)&sa, len, deadline);
    if (s < 0) return s;
    return make_end(s, 0, kind_of(o, 0), o ? o->max_skipped_fds : 0, 0, o ? o->relay_for : NULL,
                    deadline, out);
}

int ferry__unix_from_sock(int s, int creator, const ferry_chan_opts *o, const ferry_cred *peer,
                          int64_t deadline, ferry_chan **out)
{
    size_t max = 0;
    if (creator) {
        int rc = o && o->capacity != FERRY_CAP_RING
                     ? -EOPNOTSUPP
                     : ferry__fdchan_max_from_opts(o, packet_limit(), &max);
        if (rc < 0) {
            close(s);
            return rc;
        }
    }
    unsigned kind = kind_of(o, creator);
    big_sndbuf(s);
    ferry__fdchan_cfg cfg = {.ops = &ferry__fdchan_peer_ops,
                             .rfd = s,
                             .wfd = s,
                             .kind = kind | FDCHAN_PACKET,
                             .max_msg = max,
                             .max_skipped_fds = o ? o->max_skipped_fds : 0,
                             .relay_uid = o ? o->relay_uid : 0,
                             .relay_for = o && !creator ? o->relay_for : NULL};
    int rc = ferry__fdchan_new(&cfg, deadline, out);
    if (rc == 0 && peer) ferry__fdchan_set_cred(*out, peer);
    return rc;
}

static const ferry__listener_ops listener_ops = {
    .accept = unix_accept,
    .fd = unix_listener_fd,
    .close = unix_listener_close,
};

const ferry__transport ferry__unix_transport = {
    .scheme = "unix",
    .kind = FERRY_KIND_UNIX,
    .listen = unix_listen,
    .open = unix_open,
    .from_sock = ferry__unix_from_sock,
};
