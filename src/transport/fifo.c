// SPDX-License-Identifier: MIT
/*
 * fifo.c — the fifo transport: "fifo:///path" names two FIFOs, path.c2s (client to
 * server) and path.s2c, carrying ferry frames as byte streams (fdchan.h).
 * ferry_listen makes both (exactly opts->mode, default 0600; -EADDRINUSE if they exist)
 * and removes them when the listener closes. A FIFO joins two parties only, so a
 * listener accepts ONE client; a second ferry_accept is -EBUSY. The kernel does not tell
 * a FIFO's reader that a writer arrived, so the listener watches path.s2c with inotify:
 * a client opens it for reading (after its write end of path.c2s), which raises IN_OPEN.
 * That inotify descriptor is ferry_listener_poll_fd (readable once a client may be there; an
 * accept that finds nobody, say after another program opened the FIFO, drains it and
 * returns -EAGAIN), and ferry_accept sleeps on it between tries.
 * Rules: no fds (-EOPNOTSUPP), no credentials, capacity is the kernel's pipe buffer
 * (only FERRY_CAP_RING), which each end's writer enlarges to 1 MiB where the system
 * allows (as the pipe transport does: a 64 KiB message then goes in one write); a peer
 * that closes or dies is seen as end of stream (-EPIPE). Only a FIFO owned by the
 * caller's euid or by root is ever opened (never through a symlink): anything else at
 * the path is -EACCES, so fifo:// joins processes of one user (or a root-made FIFO);
 * across users, use unix:// (it knows the peer).
 */
#define _GNU_SOURCE
#include "fdchan.h"

#include "core/time.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static const ferry__listener_ops listener_ops;

typedef struct fifo_listener {
    struct ferry_listener base;
    int rfd; /* path.c2s read end, handed to the channel at accept; -1 after */
    int ino; /* inotify: IN_OPEN of path.s2c (ferry_listener_poll_fd) */
    size_t max;
    unsigned kind;
    char c2s[PATH_MAX], s2c[PATH_MAX];
} fifo_listener;

static int names(const char *where, char c2s[PATH_MAX], char s2c[PATH_MAX])
{
    if (!where || where[0] != '/') return -EINVAL;
    if (snprintf(c2s, PATH_MAX, "%s.c2s", where) >= PATH_MAX ||
        snprintf(s2c, PATH_MAX, "%s.s2c", where) >= PATH_MAX)
        return -ENAMETOOLONG;
    return 0;
}

/*
 * Open the FIFO at path with flags (O_RDONLY / O_WRONLY, O_NONBLOCK is added), only if
 * it is a FIFO (never a symlink: O_NOFOLLOW) owned by this euid or root; anything else is
 * -EACCES, and is not opened at all: the path is opened with O_PATH first, checked with
 * fstat, and that very file is then opened through /proc/self/fd (so nothing can be
 * swapped in between, and a device or regular file never sees an open). Without /proc
 * the path is opened with O_NOFOLLOW and must be the same file. Returns the descriptor
 * or -errno (-ENOENT, -ENXIO: no reader at the other end of a write open).
 */
static int open_fifo(const char *path, int flags)
{
    int pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0) return errno == ELOOP ? -EACCES : -errno;
    struct stat st, st2;
    int fd = -EACCES;
    if (fstat(pfd, &st) < 0)
        fd = -errno;
    else if (S_ISFIFO(st.st_mode) && (st.st_uid == geteuid() || st.st_uid == 0)) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
        fd = open(proc, flags | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && access("/proc/self/fd", F_OK) < 0) { /* no /proc */
            fd = open(path, flags | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0 &&
                (fstat(fd, &st2) < 0 || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev)) {
                close(fd);
                fd = -EACCES;
                errno = EACCES;
            }
        }
        if (fd < 0) fd = -errno;
    }
    close(pfd);
    return fd;
}

/* A FIFO with exactly `mode` (mkfifo applies the umask, which can only narrow it). The
 * mode is set through an O_PATH descriptor of what is at path, checked to be a FIFO of
 * this euid: a symlink or another file swapped in after mkfifo is refused (-EACCES),
 * never changed. */
static int make_fifo(const char *path, unsigned mode)
{
    if (mkfifo(path, mode & 0777) < 0) return errno == EEXIST ? -EADDRINUSE : -errno;
    int rc = 0, pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (pfd < 0)
        rc = errno == ELOOP ? -EACCES : -errno;
    else if (fstat(pfd, &st) < 0)
        rc = -errno;
    else if (!S_ISFIFO(st.st_mode) || st.st_uid != geteuid())
        rc = -EACCES;
    else if ((st.st_mode & 07777) != (mode & 0777)) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
        if (chmod(proc, mode & 0777) < 0) rc = -errno;
    }
    if (pfd >= 0) close(pfd);
    if (rc < 0 && rc != -EACCES) unlink(path); /* (-EACCES: not ours any more) */
    return rc;
}

static int fifo_listen(const char *where, const ferry_chan_opts *o, ferry_listener **out)
{
    fifo_listener *l = calloc(1, sizeof *l);
    if (!l) return -ENOMEM;
    int rc = names(where, l->c2s, l->s2c);
    if (rc == 0 && o && o->capacity != FERRY_CAP_RING) rc = -EOPNOTSUPP;
    if (rc == 0) rc = ferry__fdchan_max_from_opts(o, FERRY_MAX_MSG_LIMIT, &l->max);
    if (rc < 0) {
        free(l);
        return rc;
    }
    unsigned mode = o ? o->mode : 0600;
    l->base.ops = &listener_ops;
    l->kind = o && (o->flags & FERRY_CHECKSUM) ? FDCHAN_CHECKSUM : 0;
    rc = make_fifo(l->c2s, mode);
    if (rc == 0 && (rc = make_fifo(l->s2c, mode)) < 0) unlink(l->c2s);
    l->rfd = l->ino = -1;
    if (rc == 0) { /* our read end: a client's write end opens against it */
        l->rfd = open_fifo(l->c2s, O_RDONLY);
        l->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (l->rfd < 0 || l->ino < 0 ||
            inotify_add_watch(l->ino, l->s2c, IN_OPEN | IN_DONT_FOLLOW) < 0) {
            rc = l->rfd < 0 ? l->rfd : -errno;
            if (l->rfd >= 0) close(l->rfd);
            if (l->ino >= 0) close(l->ino);
            unlink(l->c2s);
            unlink(l->s2c);
        }
    }
    if (rc < 0) {
        free(l);
        return rc;
    }
    *out = &l->base;
    return 0;
}

static int fifo_accept(ferry_listener *fl, ferry_chan **out, int64_t deadline)
{
    fifo_listener *l = (fifo_listener *)fl;
    if (l->rfd < 0) return -EBUSY;
    int w;
    /* Opening the write end without waiting succeeds once the client has its read end;
     * until then, sleep until path.s2c is opened (by the client, or anyone). */
    for (;;) {
        char ev[4096]; /* drain first: an open after this is a new event */
        while (read(l->ino, ev, sizeof ev) > 0) {
        }
        if ((w = open_fifo(l->s2c, O_WRONLY)) >= 0) {
            fcntl(w, F_SETPIPE_SZ, 1 << 20); /* best effort, as pipe.c */
            break;
        }
        if (w != -ENXIO && w != -EINTR) return w;
        int rc = ferry__wait_fd(l->ino, POLLIN, deadline);
        if (rc < 0) return rc;
    }
    ferry__fdchan_cfg cfg = {
        .ops = &ferry__fdchan_ops, .rfd = l->rfd, .wfd = w, .kind = l->kind, .max_msg = l->max};
    l->rfd = -1; /* the channel owns it now, whatever happens */
    return ferry__fdchan_new(&cfg, deadline, out);
}

static int fifo_listener_fd(const ferry_listener *fl)
{
    return ((const fifo_listener *)fl)->ino;
}

static void fifo_listener_close(ferry_listener *fl)
{
    fifo_listener *l = (fifo_listener *)fl;
    if (l->rfd >= 0) close(l->rfd);
    close(l->ino);
    unlink(l->c2s);
    unlink(l->s2c);
    free(l);
}

static int fifo_open(const char *where, const ferry_chan_opts *o, ferry_chan **out,
                     int64_t deadline)
{
    (void)o; /* the listener decides the shape */
    char c2s[PATH_MAX], s2c[PATH_MAX];
    int rc = names(where, c2s, s2c);
    if (rc < 0) return rc;
    /* Our write end first (it opens only while the listener reads: else no listener),
     * then our read end, last: that is what the listener's accept waits for, and once it
     * has it, it may close the listener and remove both names. */
    int w = open_fifo(c2s, O_WRONLY);
    if (w < 0) return w == -ENXIO ? -ECONNREFUSED : w;
    fcntl(w, F_SETPIPE_SZ, 1 << 20); /* best effort, as pipe.c */
    int r = open_fifo(s2c, O_RDONLY);
    if (r < 0) {
        close(w);
        return r;
    }
    ferry__fdchan_cfg cfg = {.ops = &ferry__fdchan_ops, .rfd = r, .wfd = w};
    return ferry__fdchan_new(&cfg, deadline, out);
}

static const ferry__listener_ops listener_ops = {
    .accept = fifo_accept,
    .fd = fifo_listener_fd,
    .close = fifo_listener_close,
};

const ferry__transport ferry__fifo_transport = {
    .scheme = "fifo",
    .listen = fifo_listen,
    .open = fifo_open,
};
