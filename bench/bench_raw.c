// SPDX-License-Identifier: MIT
/*
 * bench_raw.c — the runner of the raw kernel-mechanism rows (see bench_raw.h), and the
 * helpers their links share: full writes, length-prefixed frames, a buffered frame
 * reader, /proc limits.
 *
 * Rules: the peer keeps only its ends (ops->side) and leaves with everything closed; the
 * driver arms the guard (bench_guard.c) for the measured part, so a dead peer fails the
 * row instead of hanging it; a row that fails kills its peer (a peer blocked on a queue
 * would never see an end), and the link's names are removed only after the peer is
 * reaped (ops->free with remove = 1), whatever happened.
 */
#define _POSIX_C_SOURCE 200809L /* kill, writev */
#include "bench_raw.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#define READER_CAP ((size_t)64 * 1024)

/* ------------------------------------------------------------------ helpers */

int raw_write_full(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    int64_t since = 0;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) {
            if (bench_guard_expired(&since)) return -ETIMEDOUT;
            continue;
        }
        if (w < 0) return -errno;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int raw_write_frame(int fd, const void *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    struct iovec iov[2] = {{&len, sizeof len}, {(void *)p, n}};
    int i = 0;
    int64_t since = 0;
    if (n > UINT32_MAX) return -EMSGSIZE;
    while (i < 2) {
        ssize_t w = writev(fd, iov + i, 2 - i);
        if (w < 0 && errno == EINTR) {
            if (bench_guard_expired(&since)) return -ETIMEDOUT;
            continue;
        }
        if (w < 0) return -errno;
        /* A partial write (a signal, or a pipe taking part of a large frame): skip what
         * went out and write the rest. */
        size_t done = (size_t)w;
        while (i < 2 && done >= iov[i].iov_len) done -= iov[i++].iov_len;
        if (i < 2) {
            iov[i].iov_base = (char *)iov[i].iov_base + done;
            iov[i].iov_len -= done;
        }
    }
    return 0;
}

int raw_reader_init(raw_reader *r, int fd)
{
    r->fd = fd;
    r->cap = READER_CAP;
    r->head = r->tail = 0;
    r->buf = malloc(r->cap);
    return r->buf ? 0 : -ENOMEM;
}

void raw_reader_free(raw_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->fd = -1;
}

/* One read into p: bytes read, 0 at end of file, -errno. EINTR retried under the guard. */
static ssize_t read_some(int fd, void *p, size_t n)
{
    int64_t since = 0;
    for (;;) {
        ssize_t k = read(fd, p, n);
        if (k >= 0) return k;
        if (errno != EINTR) return -errno;
        if (bench_guard_expired(&since)) return -ETIMEDOUT;
    }
}

/* Refill the buffer after its buffered bytes (moved to the front): bytes read, 0 at end
 * of file, -errno. */
static ssize_t refill(raw_reader *r)
{
    if (r->head > 0) {
        memmove(r->buf, r->buf + r->head, r->tail - r->head);
        r->tail -= r->head;
        r->head = 0;
    }
    ssize_t k = read_some(r->fd, r->buf + r->tail, r->cap - r->tail);
    if (k > 0) r->tail += (size_t)k;
    return k;
}

ssize_t raw_read_frame(raw_reader *r, void *p, size_t cap)
{
    uint32_t len;
    ssize_t k;
    while (r->tail - r->head < sizeof len) {
        if ((k = refill(r)) < 0) return k;
        if (k == 0) return r->tail == r->head ? 0 : -EPROTO;
    }
    memcpy(&len, r->buf + r->head, sizeof len);
    r->head += sizeof len;
    if (len > cap) return -EMSGSIZE;
    size_t have = r->tail - r->head < len ? r->tail - r->head : len;
    memcpy(p, r->buf + r->head, have);
    r->head += have;
    while (have < len) {
        size_t need = len - have;
        if (need >= r->cap / 2) { /* large: straight into place */
            k = read_some(r->fd, (char *)p + have, need);
            if (k > 0) have += (size_t)k;
        } else { /* small: through the buffer, which is empty now */
            r->head = r->tail = 0;
            k = refill(r);
            size_t take = r->tail < need ? r->tail : need;
            memcpy((char *)p + have, r->buf, take);
            r->head = take;
            have += take;
        }
        if (k < 0) return k;
        if (k == 0) return -EPROTO;
    }
    return (ssize_t)len;
}

size_t raw_proc_size(const char *path)
{
    FILE *f = fopen(path, "re");
    unsigned long long v = 0;
    if (!f) return 0;
    if (fscanf(f, "%llu", &v) != 1) v = 0;
    fclose(f);
    return (size_t)v;
}

/* ------------------------------------------------------------------ the runner */

typedef struct raw_ctx {
    const raw_ops *ops;
    raw_link *l;
    size_t size;
    unsigned char *sbuf, *rbuf; /* the message sent, the message received */
    const bench_job *job;
} raw_ctx;

/* Receive one message that must be seq: 1, 0 when the link ended, or -1 with *why. */
static int recv_checked(raw_ctx *c, uint64_t seq, char *why, size_t len)
{
    ssize_t n = c->ops->recv(c->l, c->rbuf, c->size);
    if (n == 0) return 0;
    if (n < 0)
        snprintf(why, len, "receive: %s", strerror((int)-n));
    else if ((size_t)n != c->size)
        snprintf(why, len, "wrong size %zd", n);
    else if (!bench_copy_ok(c->rbuf, c->size, seq))
        snprintf(why, len, "wrong payload");
    else
        return 1;
    return -1;
}

static int raw_rt(void *ctx, uint64_t seq, bench_result *res)
{
    raw_ctx *c = ctx;
    bench_stamp(c->sbuf, c->size, seq);
    int r = c->ops->send(c->l, c->sbuf, c->size);
    if (r < 0) return bench_fail(res, "send: %s", strerror(-r));
    r = recv_checked(c, seq, res->err, sizeof res->err);
    if (r == 0) return bench_fail(res, "the peer ended the link");
    return r < 0 ? -1 : 0;
}

static int raw_rx(void *ctx, uint64_t seq, bench_result *res)
{
    return recv_checked(ctx, seq, res->err, sizeof res->err);
}

static int raw_echo(void *ctx, bench_shared *sh)
{
    raw_ctx *c = ctx;
    int r = c->ops->side(c->l, 1), rc = 0;
    if (r < 0) return bench_peer_fail(sh, "peer: %s", strerror(-r));
    for (uint64_t seq = 0;; seq++) {
        char why[128];
        if ((r = recv_checked(c, seq, why, sizeof why)) == 0) break; /* the driver is done */
        if (r < 0) {
            rc = bench_peer_fail(sh, "peer: %s", why);
            break;
        }
        if ((r = c->ops->send(c->l, c->rbuf, c->size)) < 0) {
            rc = bench_peer_fail(sh, "peer: send: %s", strerror(-r));
            break;
        }
    }
    c->ops->free(c->l, 0);
    return rc;
}

static int raw_stream_send(void *ctx, bench_shared *sh)
{
    raw_ctx *c = ctx;
    const uint64_t max = bench_stream_max_msgs(c->job);
    const int64_t deadline = bench_now_ns() + bench_stream_max_ns(c->job);
    int r = c->ops->side(c->l, 1), rc = 0;
    if (r < 0) return bench_peer_fail(sh, "peer: %s", strerror(-r));
    /* Relaxed load of stop: see stop_sender() in bench_loop.c. */
    for (uint64_t seq = 0; seq < max && !atomic_load_explicit(&sh->stop, memory_order_relaxed);
         seq++) {
        bench_stamp(c->sbuf, c->size, seq);
        if ((r = c->ops->send(c->l, c->sbuf, c->size)) < 0) {
            rc = bench_peer_fail(sh, "peer: send: %s", strerror(-r));
            break;
        }
        if (seq % 64 == 0 && bench_now_ns() > deadline) break;
    }
    if (rc == 0) c->ops->end(c->l); /* the receiver drains, then sees the end */
    c->ops->free(c->l, 0);
    return rc;
}

int bench_raw(const bench_job *job, bench_result *res)
{
    raw_ctx c = {job->arg, NULL, job->size, malloc(job->size), malloc(job->size), job};
    bench_peer p = {-1, NULL};
    int stream = job->pattern == BENCH_STREAM, rc = -1, r;

    if (!c.sbuf || !c.rbuf) {
        bench_fail(res, "out of memory");
        goto out;
    }
    bench_fill(c.sbuf, c.size);
    memset(c.rbuf, 0, c.size);
    if (!(c.l = c.ops->make(job, res))) goto out;
    if (bench_peer_start(&p, job, stream ? raw_stream_send : raw_echo, &c, res) != 0) goto out;
    if ((r = bench_guard_arm()) < 0) {
        bench_fail(res, "guard timer: %s", strerror(-r));
        goto out;
    }
    if ((r = c.ops->side(c.l, 0)) < 0) {
        bench_fail(res, "%s", strerror(-r));
    } else if (stream) {
        rc = bench_loop_stream_rx(job, p.sh, raw_rx, &c, res);
    } else {
        rc = bench_loop_pingpong(job, raw_rt, &c, res);
        if (rc == 0) c.ops->end(c.l); /* the peer's echo loop ends */
    }
    bench_guard_disarm();
out:
    if (rc != 0 && p.pid > 0) kill(p.pid, SIGKILL); /* it may wait on a queue forever */
    if (p.pid > 0 && bench_peer_finish(&p, res) != 0) rc = -1;
    if (c.l) c.ops->free(c.l, 1);
    free(c.sbuf);
    free(c.rbuf);
    return rc;
}
