// SPDX-License-Identifier: MIT
/*
 * bench_raw_fifo.c — the raw `fifo` link of `ferry bench` (see bench_raw.h): two named
 * pipes (mkfifo, mode 0600) in a private directory made with mkdtemp under $TMPDIR (or
 * /tmp): "to-peer" and "from-peer". Each process opens them by path after fork, in the
 * same order, so the opens meet instead of deadlocking: the driver opens to-peer for
 * writing and from-peer for reading, the peer the other way round. Messages are framed
 * with a length prefix (bench_raw.c).
 *
 * Each side enlarges the FIFO it writes to 1 MiB where the system allows, as ferry-fifo
 * does, so that both rows have the same buffer.
 *
 * Nothing is left behind: once the driver's two opens have returned, both processes hold
 * both pipes, and the driver removes the two names and the directory before measuring;
 * on any failure ops->free(remove = 1) removes whatever still exists.
 */
#define _GNU_SOURCE /* mkdtemp, F_SETPIPE_SZ */
#include "bench_raw.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct raw_link {
    char dir[PATH_MAX];
    char path[2][PATH_MAX + 16]; /* to-peer, from-peer */
    int named;                   /* the names still exist */
    int out, in;                 /* this process's ends, after side() */
    raw_reader rd;
};

static void remove_names(raw_link *l)
{
    if (!l->named) return;
    unlink(l->path[0]);
    unlink(l->path[1]);
    rmdir(l->dir);
    l->named = 0;
}

static void fifo_free(raw_link *l, int remove)
{
    if (l->out >= 0) close(l->out);
    if (l->in >= 0) close(l->in);
    raw_reader_free(&l->rd);
    if (remove) remove_names(l);
    free(l);
}

static raw_link *fifo_make(const bench_job *job, bench_result *res)
{
    const char *tmp = getenv("TMPDIR");
    raw_link *l = calloc(1, sizeof *l);
    (void)job;
    if (!l) {
        bench_fail(res, "out of memory");
        return NULL;
    }
    l->out = l->in = l->rd.fd = -1;
    snprintf(l->dir, sizeof l->dir, "%s/ferry-bench-fifo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(l->dir)) {
        bench_fail(res, "mkdtemp %s: %s", l->dir, strerror(errno));
        free(l);
        return NULL;
    }
    l->named = 1;
    snprintf(l->path[0], sizeof l->path[0], "%s/to-peer", l->dir);
    snprintf(l->path[1], sizeof l->path[1], "%s/from-peer", l->dir);
    for (int i = 0; i < 2; i++)
        if (mkfifo(l->path[i], 0600) != 0) {
            bench_fail(res, "mkfifo %s: %s", l->path[i], strerror(errno));
            fifo_free(l, 1);
            return NULL;
        }
    return l;
}

/* Open a FIFO; it blocks until the other side opens it too (bounded by the guard in the
 * driver, by the watchdog in the peer). The fd, or -errno. */
static int open_fifo(const char *path, int flags)
{
    int64_t since = 0;
    for (;;) {
        int fd = open(path, flags | O_CLOEXEC);
        if (fd >= 0) return fd;
        if (errno != EINTR) return -errno;
        if (bench_guard_expired(&since)) return -ETIMEDOUT;
    }
}

static int fifo_side(raw_link *l, int side)
{
    /* Same order on both sides: to-peer first, then from-peer. */
    int a = open_fifo(l->path[0], side == 0 ? O_WRONLY : O_RDONLY);
    if (a < 0) return a;
    int b = open_fifo(l->path[1], side == 0 ? O_RDONLY : O_WRONLY);
    if (b < 0) {
        close(a);
        return b;
    }
    l->out = side == 0 ? a : b;
    l->in = side == 0 ? b : a;
    fcntl(l->out, F_SETPIPE_SZ, 1 << 20); /* best effort, as ferry-fifo */
    if (side == 0) remove_names(l);       /* both processes hold both pipes now */
    return raw_reader_init(&l->rd, l->in);
}

static int fifo_send(raw_link *l, const void *p, size_t n)
{
    return raw_write_frame(l->out, p, n);
}

static ssize_t fifo_recv(raw_link *l, void *p, size_t cap)
{
    return raw_read_frame(&l->rd, p, cap);
}

static void fifo_end(raw_link *l)
{
    close(l->out); /* the reader sees end of file */
    l->out = -1;
}

const raw_ops BENCH_RAW_FIFO = {fifo_make, fifo_side, fifo_send, fifo_recv, fifo_end, fifo_free};
