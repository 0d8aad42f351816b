// SPDX-License-Identifier: MIT
/*
 * tcp.c — the tcp transport: "tcp://host:port" ("tcp://[v6addr]:port" for IPv6), the
 * cross-machine transport. A byte stream of ferry frames (fdchan.h), every one with a
 * crc32c; TCP_NODELAY on both ends.
 * Rules: no fds on messages (-EOPNOTSUPP), no credentials (-EOPNOTSUPP), capacity is
 * the kernel's socket buffers (only FERRY_CAP_RING); max_msg defaults to 1 MiB, up to
 * FERRY_MAX_MSG_LIMIT. A listener on port 0 gets a free port from the kernel;
 * ferry_listener_url tells the address and port it is bound to (numeric, from
 * getsockname), e.g. "tcp://127.0.0.1:40123" or "tcp://[::1]:40123". Port 0 is for
 * listening only: ferry_chan_open on it is -EINVAL.
 */
#define _GNU_SOURCE
#include "fdchan.h"
#include "sockutil.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const ferry__listener_ops listener_ops;

typedef struct tcp_listener {
    struct ferry_listener base;
    int fd;
    size_t max;
} tcp_listener;

int ferry__tcp_resolve(const char *where, int passive, struct sockaddr_storage *ss, socklen_t *len,
                       char *host_out)
{
    char host[256];
    const char *port;
    if (where[0] == '[') {
        const char *end = strchr(where, ']');
        if (!end || end[1] != ':' || (size_t)(end - where - 1) >= sizeof host) return -EINVAL;
        memcpy(host, where + 1, (size_t)(end - where - 1));
        host[end - where - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(where, ':');
        if (!colon || (size_t)(colon - where) >= sizeof host) return -EINVAL;
        memcpy(host, where, (size_t)(colon - where));
        host[colon - where] = '\0';
        port = colon + 1;
    }
    char *e;
    long p = strtol(port, &e, 10);
    if (!host[0] || !port[0] || *e || p < (passive ? 0 : 1) || p > 65535) return -EINVAL;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
    struct addrinfo *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0) return -ENOENT;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    if (host_out) memcpy(host_out, host, strlen(host) + 1);
    return 0;
}

static int make_end(int s, size_t max, int64_t deadline, ferry_chan **out)
{
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ferry__fdchan_cfg cfg = {
        .ops = &ferry__fdchan_ops, .rfd = s, .wfd = s, .kind = FDCHAN_CHECKSUM, .max_msg = max};
    return ferry__fdchan_new(&cfg, deadline, out);
}

static int tcp_listen(const char *where, const ferry_chan_opts *o, ferry_listener **out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    size_t max;
    int rc = ferry__tcp_resolve(where, 1, &ss, &len, NULL);
    if (rc < 0) return rc;
    if (o && o->capacity != FERRY_CAP_RING) return -EOPNOTSUPP;
    if ((rc = ferry__fdchan_max_from_opts(o, FERRY_MAX_MSG_LIMIT, &max)) < 0) return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 128) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    tcp_listener *l = calloc(1, sizeof *l);
    if (!l) {
        close(fd);
        return -ENOMEM;
    }
    l->base.ops = &listener_ops;
    l->fd = fd;
    l->max = max;
    *out = &l->base;
    return 0;
}

static int tcp_accept(ferry_listener *fl, ferry_chan **out, int64_t deadline)
{
    tcp_listener *l = (tcp_listener *)fl;
    for (;;) {
        int s = ferry__accept(l->fd, deadline);
        if (s < 0) return s;
        int rc = make_end(s, l->max, deadline, out);
        if (rc != -EPIPE) return rc; /* a client that gave up already: take the next */
    }
}

static int tcp_listener_fd(const ferry_listener *fl)
{
    return ((const tcp_listener *)fl)->fd;
}

int ferry__tcp_bound_url(int fd, const char *scheme, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return -EINVAL;
    int n = snprintf(buf, cap, ss.ss_family == AF_INET6 ? "%s://[%s]:%s" : "%s://%s:%s", scheme,
                     host, serv);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
}

/* The address the listening socket is bound to: the real port when it was asked for 0. */
static int tcp_listener_url(const ferry_listener *fl, char *buf, size_t cap)
{
    return ferry__tcp_bound_url(((const tcp_listener *)fl)->fd, "tcp", buf, cap);
}

static void tcp_listener_close(ferry_listener *fl)
{
    tcp_listener *l = (tcp_listener *)fl;
    close(l->fd);
    free(l);
}

static int tcp_open(const char *where, const ferry_chan_opts *o, ferry_chan **out, int64_t deadline)
{
    (void)o; /* the listener decides the shape */
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = ferry__tcp_resolve(where, 0, &ss, &len, NULL);
    if (rc < 0) return rc;
    int s = ferry__connect(ss.ss_family, SOCK_STREAM, (struct sockaddr *)&ss, len, deadline);
    if (s < 0) return s;
    return make_end(s, 0, deadline, out);
}

static const ferry__listener_ops listener_ops = {
    .accept = tcp_accept,
    .fd = tcp_listener_fd,
    .url = tcp_listener_url,
    .close = tcp_listener_close,
};

const ferry__transport ferry__tcp_transport = {
    .scheme = "tcp",
    .listen = tcp_listen,
    .open = tcp_open,
};
