// SPDX-License-Identifier: MIT
/*
 * shm_link.c — the control link of a shm channel (see shm_link.h).
 */
#define _GNU_SOURCE
#include "shm_link.h"

#include "fdchan.h"

#include "core/time.h"
#include "ferry/ferry.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int ferry__link_send(int sock, const ferry__link_msg *m, const int *fds, unsigned nfds,
                     int64_t deadline)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * FERRY_MAX_FDS)];
    } ctrl;
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > FERRY_MAX_FDS) return -EINVAL;
    if (nfds) {
        memset(&ctrl, 0, sizeof ctrl);
        mh.msg_control = ctrl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == (ssize_t)sizeof *m) return 0;
        if (n >= 0) return -EPIPE; /* a seqpacket send is all or nothing */
        int e = errno;
        if (e == EINTR) continue;
        if (e == EBADF) return -EINVAL; /* one of the caller's fds */
        if (e == EPIPE || e == ECONNRESET || e == ENOTCONN) return -EPIPE;
        if (e != EAGAIN) return -e;
        int rc = ferry__wait_fd(sock, POLLOUT, deadline);
        if (rc < 0) return rc;
    }
}

void ferry__link_send_ready(int sock)
{
    ferry__link_msg m = {.magic = FERRY__SETUP_MAGIC, .kind = FERRY__LINK_READY};
    (void)send(sock, &m, sizeof m, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int ferry__link_drain_ready(int sock)
{
    for (int i = 0;; i++) {
        ferry__link_msg m;
        /* A look at the front message without its fds (no control buffer: none are
         * installed by the peek), then it is taken only if it is a READY. */
        ssize_t n = recv(sock, &m, sizeof m, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return 0; /* nothing queued (or a hang-up: the liveness check's) */
        if (n != (ssize_t)sizeof m || m.magic != FERRY__SETUP_MAGIC) return n == 0 ? 0 : -EBADMSG;
        if (m.kind != FERRY__LINK_READY) return 0;
        if (i >= FERRY__LINK_READY_MAX) return -EBADMSG;
        /* Taken with room for no fds: any a hostile READY carried are closed by the
         * kernel (MSG_CTRUNC), never installed here. */
        struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (recvmsg(sock, &mh, MSG_DONTWAIT) != (ssize_t)sizeof m || (mh.msg_flags & MSG_CTRUNC))
            return -EBADMSG;
    }
}

static void close_all(const int *fds, int n)
{
    for (int i = 0; i < n; i++) close(fds[i]);
}

int ferry__link_recv(int sock, uint32_t kind, ferry__link_msg *m, int *fds, unsigned nfds,
                     int64_t deadline)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * FERRY_MAX_FDS)];
    } ctrl;
    for (int ready = 0;;) {
        struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = ctrl.buf,
                            .msg_controllen = sizeof ctrl.buf};
        ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            int e = errno;
            if (e == EINTR) continue;
            if (e == EAGAIN) {
                int rc = ferry__wait_fd(sock, POLLIN, deadline);
                if (rc < 0) return rc;
                continue;
            }
            if (e == ECONNRESET || e == ENOTCONN) return -EPIPE;
            return -EBADMSG; /* not a socket, or worse */
        }
        /* Collect every fd that arrived, whatever else is wrong, so none leaks (also
         * with an empty datagram, which reads like the end of the stream). */
        int got[FERRY_MAX_FDS + 8];
        int ngot = 0, overflow = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                if (ngot < (int)(sizeof got / sizeof got[0]))
                    got[ngot++] = fd;
                else {
                    close(fd);
                    overflow = 1;
                }
            }
        }
        if (n == 0) {
            close_all(got, ngot);
            /* The end of the stream, or an empty datagram from a live peer (a rule it
             * broke): only a hung-up link is the peer gone. */
            return ngot == 0 && !overflow && ferry__link_alive(sock) < 0 ? -EPIPE : -EBADMSG;
        }
        int bad = overflow || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) ||
                  n != (ssize_t)sizeof *m || m->magic != FERRY__SETUP_MAGIC;
        if (!bad && m->kind == FERRY__LINK_READY && kind != FERRY__LINK_READY) {
            /* The producer's word to an armed poll fd: not what was asked for, skipped. */
            close_all(got, ngot);
            if (ngot || ++ready > FERRY__LINK_READY_MAX) return -EBADMSG;
            continue;
        }
        bad = bad || m->kind != kind || ngot != (int)nfds;
        if (bad) {
            close_all(got, ngot);
            return -EBADMSG;
        }
        memcpy(fds, got, sizeof(int) * nfds);
        return 0;
    }
}

int ferry__link_alive(int sock)
{
    struct pollfd p = {.fd = sock, .events = POLLRDHUP};
    int n = poll(&p, 1, 0);
    if (n > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))) return -EPIPE;
    return 0;
}
