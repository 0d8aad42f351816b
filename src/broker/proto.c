// SPDX-License-Identifier: MIT
/*
 * proto.c — the broker protocol's codec and packet I/O (see proto.h for the rules).
 */
#define _GNU_SOURCE /* MSG_CMSG_CLOEXEC */
#include "proto.h"
#include "policy.h"

#include "core/frame.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* ------------------------------------------------------------------ writing */

static void put(ferry__bw *w, const void *v, size_t n)
{
    if (w->err) return;
    if (w->cap - w->len < n) {
        w->err = -EMSGSIZE;
        return;
    }
    memcpy(w->p + w->len, v, n);
    w->len += n;
}

void ferry__bw_u32(ferry__bw *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, 4);
}

void ferry__bw_u64(ferry__bw *w, uint64_t v)
{
    ferry__bw_u32(w, (uint32_t)v);
    ferry__bw_u32(w, (uint32_t)(v >> 32));
}

void ferry__bw_str(ferry__bw *w, const char *s)
{
    size_t n = strlen(s);
    if (n > FERRY__NAME_MAX) {
        w->err = -EINVAL;
        return;
    }
    uint8_t b[2] = {(uint8_t)n, (uint8_t)(n >> 8)};
    put(w, b, 2);
    put(w, s, n);
}

void ferry__bw_cred(ferry__bw *w, const ferry_cred *c)
{
    ferry__bw_u32(w, (uint32_t)c->uid);
    ferry__bw_u32(w, (uint32_t)c->gid);
    ferry__bw_u32(w, (uint32_t)c->pid);
}

void ferry__bw_info(ferry__bw *w, const ferry_name_info *in)
{
    ferry__bw_str(w, in->name);
    ferry__bw_cred(w, &(ferry_cred){.uid = in->uid, .gid = in->gid, .pid = in->pid});
    ferry__bw_u32(w, in->mode);
    ferry__bw_u64(w, in->connects);
    ferry__bw_u32(w, in->kind);
    ferry__bw_u64(w, in->since_ns);
    if (in->kind == FERRY_OBJ_REGION || in->kind == FERRY_OBJ_STATE) {
        ferry__bw_u64(w, in->size);
        ferry__bw_u64(w, in->dev);
        ferry__bw_u64(w, in->ino);
    }
}

void ferry__bw_write_lists(ferry__bw *w, const ferry_policy *p)
{
    if (p->n_write_uids > FERRY_POLICY_MAX_IDS || p->n_write_gids > FERRY_POLICY_MAX_IDS) {
        w->err = -EINVAL;
        return;
    }
    ferry__bw_u32(w, p->n_write_uids);
    for (uint32_t i = 0; i < p->n_write_uids; i++) ferry__bw_u32(w, (uint32_t)p->write_uids[i]);
    ferry__bw_u32(w, p->n_write_gids);
    for (uint32_t i = 0; i < p->n_write_gids; i++) ferry__bw_u32(w, (uint32_t)p->write_gids[i]);
}

int ferry__br_write_lists(ferry__br *r, ferry_policy *p)
{
    p->n_write_uids = ferry__br_u32(r);
    if (p->n_write_uids > FERRY_POLICY_MAX_IDS) {
        p->n_write_uids = 0;
        return r->err = -EBADMSG;
    }
    for (uint32_t i = 0; i < p->n_write_uids; i++) p->write_uids[i] = (uid_t)ferry__br_u32(r);
    p->n_write_gids = ferry__br_u32(r);
    if (p->n_write_gids > FERRY_POLICY_MAX_IDS) {
        p->n_write_gids = 0;
        return r->err = -EBADMSG;
    }
    for (uint32_t i = 0; i < p->n_write_gids; i++) p->write_gids[i] = (gid_t)ferry__br_u32(r);
    return r->err ? -EBADMSG : 0;
}

void ferry__bw_register(ferry__bw *w, const char *name, const ferry_policy *p)
{
    ferry__bw_str(w, name);
    ferry__bw_u32(w, p->mode);
    ferry__bw_u32(w, (uint32_t)p->gid);
    ferry__bw_u32(w, p->flags);
    if (p->n_uids > FERRY_POLICY_MAX_IDS || p->n_gids > FERRY_POLICY_MAX_IDS) {
        w->err = -EINVAL;
        return;
    }
    ferry__bw_u32(w, p->n_uids);
    for (uint32_t i = 0; i < p->n_uids; i++) ferry__bw_u32(w, (uint32_t)p->allow_uids[i]);
    ferry__bw_u32(w, p->n_gids);
    for (uint32_t i = 0; i < p->n_gids; i++) ferry__bw_u32(w, (uint32_t)p->allow_gids[i]);
}

/* ------------------------------------------------------------------ reading */

static const uint8_t *take(ferry__br *r, size_t n)
{
    if (r->err || r->len - r->off < n) {
        r->err = -EBADMSG;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

uint32_t ferry__br_u32(ferry__br *r)
{
    const uint8_t *b = take(r, 4);
    if (!b) return 0;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

uint64_t ferry__br_u64(ferry__br *r)
{
    uint64_t lo = ferry__br_u32(r);
    return lo | (uint64_t)ferry__br_u32(r) << 32;
}

void ferry__br_str(ferry__br *r, char *out, size_t cap)
{
    out[0] = '\0';
    const uint8_t *b = take(r, 2);
    if (!b) return;
    size_t n = (size_t)b[0] | (size_t)b[1] << 8;
    const uint8_t *s = n < cap ? take(r, n) : NULL;
    if (!s || memchr(s, 0, n)) {
        r->err = -EBADMSG;
        return;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

void ferry__br_cred(ferry__br *r, ferry_cred *out)
{
    out->uid = (uid_t)ferry__br_u32(r);
    out->gid = (gid_t)ferry__br_u32(r);
    out->pid = (pid_t)ferry__br_u32(r);
}

void ferry__br_info(ferry__br *r, ferry_name_info *out)
{
    ferry_cred c;
    ferry__br_str(r, out->name, sizeof out->name);
    ferry__br_cred(r, &c);
    out->uid = c.uid;
    out->gid = c.gid;
    out->pid = c.pid;
    out->mode = ferry__br_u32(r);
    out->connects = ferry__br_u64(r);
    out->kind = ferry__br_u32(r);
    if (out->kind > FERRY_OBJ_STATE) { /* 0 (a server) or a FERRY_OBJ_* kind, nothing else */
        out->kind = 0;
        r->err = -EBADMSG;
    }
    out->since_ns = ferry__br_u64(r);
    out->size = out->dev = out->ino = 0;
    if (out->kind == FERRY_OBJ_REGION || out->kind == FERRY_OBJ_STATE) {
        out->size = ferry__br_u64(r);
        out->dev = ferry__br_u64(r);
        out->ino = ferry__br_u64(r);
    }
    memset(out->reserved, 0, sizeof out->reserved); /* ferry.h: zeroed, room for later */
}

int ferry__br_end(const ferry__br *r)
{
    return r->err || r->off != r->len ? -EBADMSG : 0;
}

void ferry__bw_open_reply(ferry__bw *w, uint32_t oflags)
{
    ferry__bw_u32(w, oflags);
}

int ferry__br_open_reply(ferry__br *r, uint32_t *oflags)
{
    uint32_t f = ferry__br_u32(r);
    *oflags = 0;
    if (ferry__br_end(r) < 0 || (f & ~FERRY__OPEN_TRUSTED)) return -EBADMSG;
    *oflags = f;
    return 0;
}

int ferry__br_register(ferry__br *r, char name[256], ferry_policy *p)
{
    int rc = ferry__br_register_body(r, name, p);
    return rc < 0 ? rc : ferry__br_end(r);
}

int ferry__br_register_body(ferry__br *r, char name[256], ferry_policy *p)
{
    memset(p, 0, sizeof *p);
    p->size = sizeof *p; /* a full struct of this version (ferry.h "Sized structs") */
    ferry__br_str(r, name, 256);
    p->mode = ferry__br_u32(r);
    p->gid = (gid_t)ferry__br_u32(r);
    p->flags = ferry__br_u32(r);
    p->n_uids = ferry__br_u32(r);
    if (p->n_uids > FERRY_POLICY_MAX_IDS) return -EBADMSG;
    for (uint32_t i = 0; i < p->n_uids; i++) p->allow_uids[i] = (uid_t)ferry__br_u32(r);
    p->n_gids = ferry__br_u32(r);
    if (p->n_gids > FERRY_POLICY_MAX_IDS) return -EBADMSG;
    for (uint32_t i = 0; i < p->n_gids; i++) p->allow_gids[i] = (gid_t)ferry__br_u32(r);
    return r->err ? -EBADMSG : 0;
}

/* ------------------------------------------------------------------ packets */

int ferry__bsend(int sock, int64_t op, uint64_t seq, const void *payload, size_t len, int fd)
{
    return ferry__bsendn(sock, op, seq, payload, len, &fd, fd >= 0 ? 1 : 0);
}

int ferry__bsendn(int sock, int64_t op, uint64_t seq, const void *payload, size_t len,
                  const int *fds, int nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * FERRY__BFDS_MAX)];
    } ctrl;
    if (len > FERRY__BMSG_MAX) return -EMSGSIZE;
    if (nfds < 0 || nfds > (int)FERRY__BFDS_MAX) return -EINVAL;
    ferry__frame f = {
        .flags = 0, .nfds = (uint8_t)nfds, .type = op, .seq = seq, .len = (uint32_t)len, .crc = 0};
    uint8_t hdr[FERRY__FRAME_HDR];
    ferry__frame_encode(&f, hdr);
    struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)payload, len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    if (nfds > 0) {
        memset(&ctrl, 0, sizeof ctrl);
        mh.msg_control = ctrl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) return 0; /* a packet goes whole or not at all */
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return -EAGAIN;
        if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) return -EPIPE;
        return -errno;
    }
}

int ferry__brecv(int sock, void *buf, int64_t *op, uint64_t *seq, size_t *len, int *fd)
{
    int nfds;
    return ferry__brecvn(sock, buf, op, seq, len, fd, 1, &nfds);
}

int ferry__brecvn(int sock, void *buf, int64_t *op, uint64_t *seq, size_t *len, int *fds,
                  int maxfds, int *nfds_out)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 8)];
    } ctrl;
    uint8_t hdr[FERRY__FRAME_HDR];
    struct iovec iov[2] = {{hdr, sizeof hdr}, {buf, FERRY__BMSG_MAX}};
    struct msghdr mh = {
        .msg_iov = iov, .msg_iovlen = 2, .msg_control = ctrl.buf, .msg_controllen = sizeof ctrl};
    if (maxfds > (int)FERRY__BFDS_MAX) maxfds = (int)FERRY__BFDS_MAX;
    if (maxfds < 0) maxfds = 0;
    for (int i = 0; i < maxfds; i++) fds[i] = -1;
    *nfds_out = 0;
    ssize_t n;
    int resets = 0;
    /* ECONNRESET: the peer closed with packets of ours unread. The kernel says so once,
     * ahead of what the peer sent before it closed, which is still queued: read on. */
    while ((n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) < 0 &&
           (errno == EINTR || (errno == ECONNRESET && !resets++))) {
        mh.msg_controllen = sizeof ctrl;
        mh.msg_flags = 0;
    }
    if (n < 0) {
        if (errno == EAGAIN) return 0;
        return errno == ECONNRESET || errno == ENOTCONN ? -EPIPE : -errno;
    }
    if (n == 0) return -EPIPE;
    /* Take every fd that came, whatever else is wrong, so none leaks: up to maxfds
     * into fds, the rest closed at once (and counted: the packet is then refused). */
    int got[FERRY__BFDS_MAX], nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int x;
            memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof x);
            if (nfds < maxfds && nfds < (int)FERRY__BFDS_MAX)
                got[nfds] = x;
            else
                close(x);
            nfds++;
        }
    }
    int kept = nfds < maxfds ? nfds : maxfds;
    ferry__frame f;
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n < (ssize_t)FERRY__FRAME_HDR ||
        ferry__frame_decode(hdr, FERRY__BMSG_MAX, &f) < 0 || f.flags != 0 ||
        (size_t)n != FERRY__FRAME_HDR + f.len || f.nfds != nfds || nfds > maxfds) {
        for (int i = 0; i < kept; i++) close(got[i]);
        return -EBADMSG;
    }
    *op = f.type;
    *seq = f.seq;
    *len = f.len;
    for (int i = 0; i < kept; i++) fds[i] = got[i];
    *nfds_out = kept;
    return 1;
}
