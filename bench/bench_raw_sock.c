// SPDX-License-Identifier: MIT
/*
 * bench_raw_sock.c — raw socket links for `ferry bench` (see bench_raw.h):
 *   unix  an AF_UNIX SOCK_SEQPACKET socketpair: the kernel keeps message boundaries, one
 *         send and one recv per message. The send buffer stays at its default unless a
 *         message does not fit in it (the kernel refuses a datagram above sk_sndbuf - 32
 *         bytes); then SO_SNDBUF is raised for that socket, within net.core.wmem_max.
 *   tcp   a TCP connection over 127.0.0.1 (ephemeral port, connected before fork, the
 *         listening socket closed at once), TCP_NODELAY on both ends; messages framed with
 *         a length prefix (bench_raw.c).
 * Both are connected before fork and carry no name, so nothing can be left behind.
 */
#define _GNU_SOURCE /* accept4, setns */
#include "bench_raw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define SEQPACKET_OVERHEAD 32 /* the kernel's margin: a datagram fits in sk_sndbuf - 32 */

struct raw_link {
    int fd[2]; /* the driver's end, the peer's end */
    int mine;  /* this process's end, after side() */
    int framed;
    raw_reader rd;
};

static raw_link *link_new(int framed)
{
    raw_link *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->fd[0] = l->fd[1] = l->mine = -1;
    l->framed = framed;
    l->rd.fd = -1;
    return l;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static int sock_side(raw_link *l, int side)
{
    close_fd(&l->fd[!side]);
    l->mine = l->fd[side];
    return l->framed ? raw_reader_init(&l->rd, l->mine) : 0;
}

static void sock_end(raw_link *l)
{
    shutdown(l->mine, SHUT_WR); /* the other side reads end of file */
}

static void sock_free(raw_link *l, int remove)
{
    (void)remove; /* nothing has a name */
    close_fd(&l->fd[0]);
    close_fd(&l->fd[1]);
    raw_reader_free(&l->rd);
    free(l);
}

/* ------------------------------------------------------------------ unix */

size_t bench_raw_unix_limit(const char **limit_name)
{
    size_t w = raw_proc_size("/proc/sys/net/core/wmem_max");
    *limit_name = "net.core.wmem_max";
    if (w == 0) w = 212992;            /* the usual default */
    return 2 * w - SEQPACKET_OVERHEAD; /* SO_SNDBUF is capped at wmem_max, then doubled */
}

/* Make sure a datagram of size bytes fits in fd's send buffer. 0 or -errno. */
static int fit_sndbuf(int fd, size_t size)
{
    int cur = 0;
    socklen_t len = sizeof cur;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) != 0) return -errno;
    if ((size_t)cur >= size + SEQPACKET_OVERHEAD) return 0; /* the default holds it */
    int want = (int)(size + 64 * 1024);                     /* the kernel doubles it */
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want) != 0) return -errno;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) != 0) return -errno;
    return (size_t)cur >= size + SEQPACKET_OVERHEAD ? 0 : -EMSGSIZE;
}

static raw_link *unix_make(const bench_job *job, bench_result *res)
{
    raw_link *l = link_new(0);
    int r;
    if (!l) {
        bench_fail(res, "out of memory");
        return NULL;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, l->fd) != 0) {
        bench_fail(res, "socketpair: %s", strerror(errno));
        sock_free(l, 1);
        return NULL;
    }
    for (int i = 0; i < 2; i++)
        if ((r = fit_sndbuf(l->fd[i], job->size)) < 0) {
            bench_fail(res, "SO_SNDBUF for %zu bytes: %s", job->size, strerror(-r));
            sock_free(l, 1);
            return NULL;
        }
    return l;
}

static int unix_send(raw_link *l, const void *p, size_t n)
{
    int64_t since = 0;
    for (;;) {
        ssize_t w = send(l->mine, p, n, 0);
        if (w == (ssize_t)n) return 0;
        if (w >= 0) return -EPROTO; /* a datagram goes whole or not at all */
        if (errno != EINTR) return -errno;
        if (bench_guard_expired(&since)) return -ETIMEDOUT;
    }
}

static ssize_t unix_recv(raw_link *l, void *p, size_t cap)
{
    int64_t since = 0;
    for (;;) {
        /* MSG_TRUNC: the real length, so that a longer message is an error. */
        ssize_t k = recv(l->mine, p, cap, MSG_TRUNC);
        if (k > (ssize_t)cap) return -EMSGSIZE;
        if (k >= 0) return k; /* 0: end of file (or an empty message, never sent here) */
        if (errno != EINTR) return -errno;
        if (bench_guard_expired(&since)) return -ETIMEDOUT;
    }
}

const raw_ops BENCH_RAW_UNIX = {unix_make, sock_side, unix_send, unix_recv, sock_end, sock_free};

/* ------------------------------------------------------------------ tcp */

static int nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int raw_tcp_pair(int fd[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t alen = sizeof a;
    int lfd = -1, rc = 0;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Between namespaces (bench_netns_now): we listen in ours (a) on its address, and the
     * connecting socket is made in b (a socket stays in the namespace it was made in). */
    const bench_netns *ns = &bench_netns_now;
    if (ns->b >= 0 && inet_pton(AF_INET, ns->addr, &a.sin_addr) != 1) return -1;
    /* Listen on an ephemeral port, connect to it, accept: connected before fork. */
    if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0 ||
        (ns->b >= 0 && setns(ns->b, CLONE_NEWNET) != 0) ||
        (fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        (ns->b >= 0 && setns(ns->a, CLONE_NEWNET) != 0) ||
        connect(fd[1], (struct sockaddr *)&a, sizeof a) != 0 ||
        (fd[0] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 || nodelay(fd[0]) != 0 ||
        nodelay(fd[1]) != 0)
        rc = -1;
    int e = errno;
    if (ns->b >= 0 && setns(ns->a, CLONE_NEWNET) != 0) rc = -1; /* back, also after a failure */
    if (lfd >= 0) close(lfd);
    errno = e;
    return rc;
}

static raw_link *tcp_make(const bench_job *job, bench_result *res)
{
    raw_link *l = link_new(1);
    (void)job;
    if (!l) {
        bench_fail(res, "out of memory");
        return NULL;
    }
    if (raw_tcp_pair(l->fd) != 0) {
        bench_fail(res, "tcp over 127.0.0.1: %s", strerror(errno));
        sock_free(l, 1);
        return NULL;
    }
    return l;
}

static int tcp_send(raw_link *l, const void *p, size_t n)
{
    return raw_write_frame(l->mine, p, n);
}

static ssize_t tcp_recv(raw_link *l, void *p, size_t cap)
{
    return raw_read_frame(&l->rd, p, cap);
}

const raw_ops BENCH_RAW_TCP = {tcp_make, sock_side, tcp_send, tcp_recv, sock_end, sock_free};
