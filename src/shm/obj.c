// SPDX-License-Identifier: MIT
/*
 * obj.c — making and checking the memfds of objects shared in memory, and the carriers of event
 * queues and mailboxes (see obj.h).
 */
#define _GNU_SOURCE /* off_t, fstat, F_GET_SEALS, MSG_CMSG_CLOEXEC with -std=c11 */
#include "shm/obj.h"

#include "ferry/ferry.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define PAGE 4096u

int ferry__obj_create(uint32_t kind, size_t size, int *fd, ferry__seg *seg)
{
    if (size < sizeof(ferry__obj_hdr) || size > FERRY__OBJ_MAX) return -EINVAL;
    size = (size + PAGE - 1) & ~(size_t)(PAGE - 1);
    int rc = ferry__seg_create(size, fd, seg); /* a new memfd reads as zeros */
    if (rc < 0) return rc;
    ferry__obj_hdr h = {.magic = FERRY__OBJ_MAGIC,
                        .kind = kind,
                        .version = FERRY__OBJ_VERSION,
                        .size = (uint32_t)size};
    memcpy(seg->base, &h, sizeof h);
    return 0;
}

int ferry__obj_map(int fd, uint32_t kind, ferry__seg *seg)
{
    struct stat st;
    /* F_GET_SEALS first: it answers for memfds (tmpfs, hugetlbfs) alone and asks no file
     * system, where an fstat of a FUSE file waits on its server (a sender's). */
    if (fcntl(fd, F_GET_SEALS) < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size < (off_t)sizeof(ferry__obj_hdr) || (size_t)st.st_size > FERRY__OBJ_MAX)
        return -EBADMSG;
    int rc = ferry__seg_map_checked(fd, (size_t)st.st_size, seg);
    if (rc < 0) return rc == -ENOMEM ? rc : -EBADMSG;
    ferry__obj_hdr h; /* one private copy: the sharers may write the header any time */
    memcpy(&h, seg->base, sizeof h);
    if (h.magic != FERRY__OBJ_MAGIC || h.kind != kind || h.version != FERRY__OBJ_VERSION ||
        h.size != (uint64_t)st.st_size) {
        ferry__seg_unmap(seg);
        return -EBADMSG;
    }
    return 0;
}

int ferry__obj_check(int fd, uint32_t kind)
{
    struct stat st;
    /* F_GET_SEALS first, as in ferry__obj_map: nothing waits on a FUSE server. */
    if (fcntl(fd, F_GET_SEALS) < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size < (off_t)sizeof(ferry__obj_hdr) || (size_t)st.st_size > FERRY__OBJ_MAX)
        return -EBADMSG;
    /* Sealed as ferry__seg_create seals: the size is fixed, and so are the seals (nobody
     * can add a write seal later and make the others' mappings fail). */
    int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & need) != need) return -EBADMSG;
    ferry__obj_hdr h; /* one private copy: the sharers may write the header any time */
    if (ferry__obj_read(fd, 0, &h, sizeof h) < 0) return -EBADMSG;
    if (h.magic != FERRY__OBJ_MAGIC || h.kind != kind || h.version != FERRY__OBJ_VERSION ||
        h.size != (uint64_t)st.st_size)
        return -EBADMSG;
    return 0;
}

int ferry__obj_read(int fd, size_t off, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) { /* a sealed memfd of at least off + n bytes: no short read but EINTR */
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -EBADMSG;
        got += (size_t)r;
    }
    return 0;
}

/* ------------------------------------------------------------------ carriers */

static int is_seqpacket(int fd)
{
    int v;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) < 0 || v != AF_UNIX) return 0;
    l = sizeof v;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) == 0 && v == SOCK_SEQPACKET;
}

/* The inode of the unix socket at the other end of the one with inode ino, asked of the
 * kernel (sock_diag, NETLINK_SOCK_DIAG: the request `ss -x` makes; no privilege needed).
 * 1 found (*peer), 0 the kernel says it has none or knows no such socket (in this network
 * namespace), -EOPNOTSUPP when this kernel cannot answer (no unix_diag), -errno. The
 * reply is a bounded buffer walked by its own lengths, each checked. */
static int unix_peer_ino(uint32_t ino, uint32_t *peer)
{
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) return errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT ? -EOPNOTSUPP : -errno;
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } q;
    memset(&q, 0, sizeof q);
    q.nlh.nlmsg_len = sizeof q;
    q.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    q.nlh.nlmsg_flags = NLM_F_REQUEST;
    q.nlh.nlmsg_seq = 1;
    q.req.sdiag_family = AF_UNIX;
    q.req.udiag_states = ~0u;
    q.req.udiag_ino = ino;
    q.req.udiag_show = UDIAG_SHOW_PEER;
    q.req.udiag_cookie[0] = q.req.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    int rc;
    if (sendto(nl, &q, sizeof q, 0, (struct sockaddr *)&kernel, sizeof kernel) != sizeof q) {
        rc = -errno;
        close(nl);
        return rc;
    }
    /* The kernel answers a single (not dump) request within the send: the reply is
     * queued by now, so this never waits. */
    union {
        char b[1024];
        struct nlmsghdr align;
    } r;
    ssize_t n = recv(nl, r.b, sizeof r.b, MSG_DONTWAIT);
    rc = n < 0 ? -errno : 0;
    close(nl);
    if (rc < 0) return rc;
    struct nlmsghdr *h = &r.align;
    if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_seq != 1) return -EPROTO;
    if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) return -EPROTO;
        int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
        return err == -ENOENT ? 0 : err < 0 ? err : -EPROTO;
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
        return -EPROTO;
    struct unix_diag_msg *m = NLMSG_DATA(h);
    if (m->udiag_ino != ino) return -EPROTO;
    size_t left = h->nlmsg_len - NLMSG_LENGTH(sizeof *m);
    struct rtattr *a = (struct rtattr *)(m + 1);
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left))
        if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
            memcpy(peer, RTA_DATA(a), sizeof *peer);
            return 1;
        }
    return 0; /* not connected */
}

/* Can this kernel tell a unix socket's peer? Asked once, with a pair of our own:
 * 1 yes, 0 no (no unix_diag), -1 cannot tell now (no descriptors: ask again later). */
static int peer_check_works(void)
{
    static _Atomic int known;                                   /* 0 not asked yet, 1 yes, -1 no */
    int k = atomic_load_explicit(&known, memory_order_relaxed); /* a cached fact, no data */
    if (k) return k > 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return -1;
    struct stat a, b;
    uint32_t peer = 0;
    int rc = fstat(sv[0], &a) == 0 && fstat(sv[1], &b) == 0
                 ? unix_peer_ino((uint32_t)a.st_ino, &peer)
                 : -EBADF;
    close(sv[0]);
    close(sv[1]);
    if (rc == 1 && peer == (uint32_t)b.st_ino)
        k = 1;
    else if (rc == -EOPNOTSUPP || rc >= 0)
        k = -1; /* no unix_diag, or it says nothing useful */
    else
        return -1;
    atomic_store_explicit(&known, k, memory_order_relaxed);
    return k > 0;
}

/* Is ring the socket at the other end of carrier fd? */
static int is_peer(int fd, int ring)
{
    struct stat a, b;
    if (fstat(fd, &a) < 0 || fstat(ring, &b) < 0 || !S_ISSOCK(a.st_mode) || !S_ISSOCK(b.st_mode) ||
        a.st_ino == b.st_ino) /* the carrier itself is not its own doorbell */
        return 0;
    int works = peer_check_works();
    if (works < 0) return 0;
    if (works == 0) return 1; /* the type checks are all this kernel allows */
    uint32_t peer;
    return unix_peer_ino((uint32_t)a.st_ino, &peer) == 1 && peer == (uint32_t)b.st_ino;
}

static const char *carrier_magic(uint32_t kind)
{
    return kind == FERRY_OBJ_EVENT     ? FERRY__EVENT_MAGIC
           : kind == FERRY_OBJ_MAILBOX ? FERRY__MAILBOX_MAGIC
                                       : NULL;
}

int ferry__carrier_make(uint32_t kind, int memfd, int *ring, int *carrier)
{
    const char *magic = carrier_magic(kind);
    if (!magic) return -EINVAL;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
    int fds[2] = {memfd, sv[0]};
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {.iov_base = (void *)magic, .iov_len = FERRY__CARRIER_MAGIC_LEN};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    if (sendmsg(sv[0], &msg, MSG_NOSIGNAL) != FERRY__CARRIER_MAGIC_LEN) {
        int rc = errno == ETOOMANYREFS ? -EMFILE : -errno; /* too many descriptors in flight */
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    *ring = sv[0];
    *carrier = sv[1];
    return 0;
}

int ferry__carrier_open(int fd, uint32_t kind, int *memfd, int *ring)
{
    const char *magic = carrier_magic(kind);
    if (!magic || !is_seqpacket(fd)) return -EBADMSG;
    int got[3], ngot = 0;
    char buf[FERRY__CARRIER_MAGIC_LEN + 1]; /* one byte more: a longer message is refused */
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))]; /* room for one too many: refused */
        struct cmsghdr align;
    } cm;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    /* MSG_PEEK: the message stays for the next one who adopts. MSG_DONTWAIT: a socket
     * without one (a connection to ferryd, say) is refused at once. */
    ssize_t n = recvmsg(fd, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return -EBADMSG;
    /* The control buffer holds at most 3 descriptors, so these loops are bounded. */
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int f;
            memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
            if (ngot < 3)
                got[ngot++] = f;
            else
                close(f);
        }
    }
    int ok = n == FERRY__CARRIER_MAGIC_LEN && memcmp(buf, magic, FERRY__CARRIER_MAGIC_LEN) == 0 &&
             !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && ngot == 2 &&
             ferry__obj_check(got[0], kind) == 0 && is_seqpacket(got[1]) && is_peer(fd, got[1]);
    if (!ok) {
        for (int i = 0; i < ngot; i++) close(got[i]);
        return -EBADMSG;
    }
    *memfd = got[0];
    *ring = got[1];
    return 0;
}
