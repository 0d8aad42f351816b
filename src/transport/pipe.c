// SPDX-License-Identifier: MIT
/*
 * pipe.c — the pipe transport: two anonymous pipes (one per direction) carrying ferry
 * frames (fdchan.h). Made before fork with ferry_pipe_pair(); or ferry_pipe_pair_fd()
 * hands the second end's two descriptors to a child that gets them across exec and joins
 * with ferry_chan_open("pipe://R,W") (R the read end, W the write end).
 * Rules: no fds on messages (-EOPNOTSUPP), no credentials, capacity is the kernel's pipe
 * buffer (only FERRY_CAP_RING; other capacities are -EOPNOTSUPP). The pipes are made
 * O_NONBLOCK and enlarged to 1 MiB where the system allows.
 */
#define _GNU_SOURCE
#include "fdchan.h"

#include "core/time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int end(int rfd, int wfd, size_t max, const ferry_chan_opts *o, int64_t deadline,
               ferry_chan **out)
{
    ferry__fdchan_cfg cfg = {.ops = &ferry__fdchan_ops,
                             .rfd = rfd,
                             .wfd = wfd,
                             .kind = o && (o->flags & FERRY_CHECKSUM) ? FDCHAN_CHECKSUM : 0,
                             .max_msg = max};
    return ferry__fdchan_new(&cfg, deadline, out);
}

/* Two pipes: p[0] carries a -> b, p[1] carries b -> a. */
static int make_pipes(const ferry_chan_opts *o, int p[2][2], size_t *max)
{
    if (o && o->capacity != FERRY_CAP_RING) return -EOPNOTSUPP;
    int rc = ferry__fdchan_max_from_opts(o, FERRY_MAX_MSG_LIMIT, max);
    if (rc < 0) return rc;
    if (pipe2(p[0], O_CLOEXEC | O_NONBLOCK) < 0) return -errno;
    if (pipe2(p[1], O_CLOEXEC | O_NONBLOCK) < 0) {
        rc = -errno;
        close(p[0][0]);
        close(p[0][1]);
        return rc;
    }
    for (int i = 0; i < 2; i++) fcntl(p[i][1], F_SETPIPE_SZ, 1 << 20); /* best effort */
    return 0;
}

/* The pipes and the first end (a creator: it says HELLO into its write end now); the
 * second end's descriptors go to other[0] (read) and other[1] (write). */
static int first_end(const ferry_chan_opts *opts, ferry_chan **a, int other[2], size_t *max)
{
    int p[2][2];
    int rc = make_pipes(opts, p, max);
    if (rc < 0) return rc;
    rc = end(p[1][0], p[0][1], *max, opts, 0, a);
    if (rc < 0) {
        close(p[0][0]);
        close(p[1][1]);
        return rc;
    }
    other[0] = p[0][0];
    other[1] = p[1][1];
    return 0;
}

/* The pair door (ferry_pipe_pair). */
static int pipe_pair(const ferry_chan_opts *opts, ferry_chan **a, ferry_chan **b)
{
    int other[2];
    size_t max;
    if (!a || !b) return -EINVAL;
    int rc = first_end(opts, a, other, &max);
    if (rc < 0) return rc;
    rc = end(other[0], other[1], max, opts, 0, b); /* a creator too: both say HELLO */
    if (rc < 0) {
        ferry__fdchan_close(*a);
        *a = NULL;
    }
    return rc;
}

/* The pair_fd door (ferry_pipe_pair_fd): two descriptors, read and write. */
static int pipe_pair_fd(const ferry_chan_opts *opts, ferry_chan **a, int child_fds[2])
{
    size_t max;
    if (!a || !child_fds) return -EINVAL;
    int rc = first_end(opts, a, child_fds, &max);
    if (rc < 0) return rc;
    /* The child's ends must survive exec; it joins (waits for our HELLO) when it opens. */
    fcntl(child_fds[0], F_SETFD, 0);
    fcntl(child_fds[1], F_SETFD, 0);
    return 0;
}

/* "R,W": the two descriptor numbers a child inherited. */
static int pipe_open(const char *where, const ferry_chan_opts *o, ferry_chan **out,
                     int64_t deadline)
{
    (void)o;
    int r, w, n = 0;
    if (sscanf(where, "%d,%d%n", &r, &w, &n) != 2 || where[n] != '\0' || r < 0 || w < 0 || r == w)
        return -EINVAL;
    if (fcntl(r, F_GETFL) < 0 || fcntl(w, F_GETFL) < 0) return -EBADF;
    for (int i = 0; i < 2; i++) {
        int fd = i ? w : r;
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    return end(r, w, 0, NULL, deadline, out); /* the shape comes with the creator's HELLO */
}

/* No listen: pipes are made in pairs, not met at an address (-EOPNOTSUPP). */
const ferry__transport ferry__pipe_transport = {
    .scheme = "pipe",
    .open = pipe_open,
    .pair = pipe_pair,
    .pair_fd = pipe_pair_fd,
};
