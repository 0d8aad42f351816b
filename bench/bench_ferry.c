// SPDX-License-Identifier: MIT
/*
 * bench_ferry.c — the ferry rows of `ferry bench` (see bench_ferry.h for the table
 * argument: a pair made before fork, or a URL to listen at and open). In the table:
 *   ferry-shm           a ferry_pair() shared-memory channel; ferry_send / ferry_recv,
 *                       default waiting (spin, then sleep)
 *   ferry-shm-blocking  the same with FERRY_NO_SPIN: every wait sleeps in the kernel
 *   ferry-shm-zerocopy  ferry_loan / ferry_commit to send, ferry_peek / ferry_release to
 *                       receive. The sender writes only the first and last 8 bytes of the
 *                       payload (the sequence stamp) and the receiver reads and checks only
 *                       those: the figure is the cost of moving a message, not of filling
 *                       or reading it. Its stream rows report msgs/s only (a bytes/s of a
 *                       descriptor rate with 16 bytes touched would mean nothing).
 *   ferry-shm-zerocopy-touch  the same, but the sender writes every byte of the payload in
 *                       place (a copy from a buffer made once) and the receiver reads every
 *                       byte in place (an XOR over its 8-byte words, checked): the zero
 *                       copy stream against ferry-shm's two copies, like with like.
 * Channel shape: the defaults (256 KiB ring, max message 130944 bytes), except that a
 * message larger than the default maximum (the 1 MiB rows) gets a 4 MiB ring, whose
 * default maximum (2 MiB - 128) holds it. A channel made by URL asks for a maximum
 * message of exactly the row's size (transports with a kernel limit, such as a queue's
 * message size, take what they need), with the same ring rule.
 * Rules: each process closes the end it does not use right after fork (as ferry_pair()
 * asks); every call has a bound (BENCH_OP_TIMEOUT_NS; in a --pairs row, the client's
 * alarm instead, as for the raw pipe beside it); -EPIPE on receive is the normal end
 * of a run (the other side closed), anywhere else it is a failure.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, kill */
#include "bench_ferry.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define BIG_RING ((size_t)4 << 20)
#define TMO      BENCH_OP_TIMEOUT_NS

typedef struct fctx {
    ferry_chan *a, *b;     /* a: the driver's end; b: the peer's end */
    const char *url;       /* by URL: the peer opens it (b is NULL until then) */
    ferry_chan_opts local; /* the peer's local options for ferry_chan_open */
    size_t size;
    unsigned char *sbuf, *rbuf; /* copying rows: the message sent, the message received
                                   (apart, so a receive that copies nothing cannot pass) */
    int zerocopy, touch;
    uint64_t fold; /* touch: the XOR of the pattern's words between the stamps */
    const bench_job *job;
    int64_t tmo; /* each send's and receive's bound: TMO, or FERRY_FOREVER (--pairs) */
} fctx;

/* The XOR of a payload's 8-byte words (size is a multiple of 8 in every row). With the
 * same seq in the first and the last word, they cancel: what is left is the pattern's. */
static uint64_t fold_words(const void *p, size_t size)
{
    uint64_t x = 0, w;
    for (size_t i = 0; i + 8 <= size; i += 8) {
        memcpy(&w, (const unsigned char *)p + i, 8);
        x ^= w;
    }
    return x;
}

/* ------------------------------------------------------------------ sending */

/* Send one message carrying seq, copying or in place. 0 or a negative errno. */
static int send_one(fctx *c, ferry_chan *ch, uint64_t seq)
{
    if (!c->zerocopy) {
        bench_stamp(c->sbuf, c->size, seq);
        return ferry_send(ch, c->sbuf, c->size, c->tmo);
    }
    void *p;
    int r = ferry_loan(ch, c->size, &p, c->tmo);
    if (r < 0) return r;
    if (c->touch) memcpy(p, c->sbuf, c->size); /* every byte, written in place */
    bench_stamp(p, c->size, seq);              /* the first and last 8 bytes */
    return ferry_commit(ch, 0, c->size);
}

/* The last message of a run, in band: a queue (posixmq, sysvmq) outlives its writer, so
 * the end of a run cannot be told by -EPIPE alone. */
#define END_TYPE 1

static void send_end(ferry_chan *ch)
{
    ferry_msg m = {.type = END_TYPE};
    ferry_sendmsg(ch, &m, TMO); /* best effort: -EPIPE ends the run just as well */
}

/* ------------------------------------------------------------------ receiving */

/* Receive one message and check that it is seq: 1, 0 at the end of the run (END_TYPE, or
 * -EPIPE: the other side closed), or a negative errno; *why names a bad payload (then the
 * return is -EBADMSG). */
static int recv_one(fctx *c, ferry_chan *ch, uint64_t seq, const char **why)
{
    *why = NULL;
    if (!c->zerocopy) {
        ferry_msg m = {.data = c->rbuf, .cap = c->size};
        ssize_t n = ferry_recvmsg(ch, &m, 0, c->tmo);
        if (n == -EPIPE || (n >= 0 && m.type == END_TYPE)) return 0;
        if (n < 0) return (int)n;
        if ((size_t)n != c->size)
            *why = "wrong size";
        else if (!bench_copy_ok(c->rbuf, c->size, seq))
            *why = "wrong payload";
        return *why ? -EBADMSG : 1;
    }
    ferry_msg m;
    int r = ferry_peek(ch, 0, &m, c->tmo);
    if (r == -EPIPE) return 0;
    if (r < 0) return r;
    if (m.type == END_TYPE) return ferry_release(ch) < 0 ? -EBADMSG : 0;
    if (m.len != c->size || m.nfds != 0)
        *why = "wrong size";
    else if (!bench_stamp_ok(m.data, c->size, seq))
        *why = "wrong payload";
    else if (c->touch && fold_words(m.data, c->size) != c->fold) /* every byte, read */
        *why = "wrong payload bytes";
    r = ferry_release(ch);
    if (*why) return -EBADMSG;
    return r < 0 ? r : 1;
}

static const char *what(int r, const char *why)
{
    return why ? why : ferry_strerror(r);
}

/* ------------------------------------------------------------------ pingpong */

static int ferry_rt(void *ctx, uint64_t seq, bench_result *res)
{
    fctx *c = ctx;
    const char *why;
    int r = send_one(c, c->a, seq);
    if (r < 0) return bench_fail(res, "send: %s", ferry_strerror(r));
    r = recv_one(c, c->a, seq, &why);
    if (r == 0) return bench_fail(res, "receive: the peer is gone");
    if (r < 0) return bench_fail(res, "receive: %s", what(r, why));
    return 0;
}

/* In the peer: close the driver's end (a pair) or open ours (a URL). 0, or -1. */
static int peer_end(fctx *c, bench_shared *sh)
{
    ferry_chan_close(c->a); /* the driver's end, when it was made before fork */
    c->a = NULL;
    if (!c->url) return 0;
    int r = ferry_chan_open(c->url, &c->local, &c->b, TMO);
    return r < 0 ? bench_peer_fail(sh, "peer: ferry_chan_open %s: %s", c->url, ferry_strerror(r))
                 : 0;
}

static int ferry_echo(void *ctx, bench_shared *sh)
{
    fctx *c = ctx;
    const char *why;
    if (peer_end(c, sh) != 0) return -1;
    for (uint64_t seq = 0;; seq++) {
        int r = recv_one(c, c->b, seq, &why);
        if (r == 0) break; /* the driver is done */
        if (r < 0) return bench_peer_fail(sh, "peer: receive: %s", what(r, why));
        if ((r = send_one(c, c->b, seq)) < 0)
            return bench_peer_fail(sh, "peer: send: %s", ferry_strerror(r));
    }
    ferry_chan_close(c->b);
    return 0;
}

/* ------------------------------------------------------------------ stream */

static int ferry_stream_send(void *ctx, bench_shared *sh)
{
    fctx *c = ctx;
    const uint64_t max = bench_stream_max_msgs(c->job);
    if (peer_end(c, sh) != 0) return -1;
    const int64_t deadline = bench_now_ns() + bench_stream_max_ns(c->job);
    /* Relaxed load of stop: see stop_sender() in bench_loop.c. */
    for (uint64_t seq = 0; seq < max && !atomic_load_explicit(&sh->stop, memory_order_relaxed);
         seq++) {
        int r = send_one(c, c->b, seq);
        if (r < 0) return bench_peer_fail(sh, "peer: send: %s", ferry_strerror(r));
        if (seq % 64 == 0 && bench_now_ns() > deadline) break;
    }
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    /* Relaxed: the END message below (a release in every transport's ordering, or a
     * system call) carries it to the receiver, which reads it after that message. */
    if (ferry_chan_stats(c->b, &st) == 0)
        atomic_store_explicit(&sh->peer_sleeps, st.send_waits, memory_order_relaxed);
    send_end(c->b); /* the receiver drains up to here */
    ferry_chan_close(c->b);
    return 0;
}

static int ferry_rx(void *ctx, uint64_t seq, bench_result *res)
{
    fctx *c = ctx;
    const char *why;
    int r = recv_one(c, c->a, seq, &why);
    if (r < 0) return bench_fail(res, "receive: %s", what(r, why));
    return r;
}

/* ------------------------------------------------------------------ URLs */

/* What a URL's placeholders stand for in one measurement. */
typedef struct url_env {
    char dir[200]; /* "" until made */
    char url[512];
} url_env;

/* A free TCP port on 127.0.0.1, or -1. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* Expand the placeholders of tmpl into e->url. 0, or -1 with res->err set. */
static int expand_url(const char *tmpl, url_env *e, bench_result *res)
{
    static unsigned serial;
    const unsigned n = serial++;
    size_t o = 0;
    e->dir[0] = '\0';
    for (const char *p = tmpl; *p && o < sizeof e->url - 1;) {
        char val[256];
        size_t skip = 0;
        val[0] = '\0';
        if (strncmp(p, "{dir}", 5) == 0) {
            skip = 5;
            if (!e->dir[0]) {
                const char *tmp = getenv("TMPDIR");
                snprintf(e->dir, sizeof e->dir, "%.150s/ferry-bench-XXXXXX",
                         tmp && *tmp ? tmp : "/tmp");
                if (!mkdtemp(e->dir)) {
                    e->dir[0] = '\0';
                    return bench_fail(res, "mkdtemp: %s", strerror(errno));
                }
            }
            snprintf(val, sizeof val, "%s", e->dir);
        } else if (strncmp(p, "{port}", 6) == 0) {
            int port = free_port();
            if (port < 0) return bench_fail(res, "no free TCP port: %s", strerror(errno));
            skip = 6;
            snprintf(val, sizeof val, "%d", port);
        } else if (strncmp(p, "{name}", 6) == 0) {
            skip = 6;
            snprintf(val, sizeof val, "ferry-bench-%ld-%u", (long)getpid(), n);
        } else if (strncmp(p, "{key}", 5) == 0) {
            skip = 5;
            snprintf(val, sizeof val, "%ld", ((long)getpid() << 10 | (n & 1023)) & 0x7fffffff);
        }
        if (skip) {
            o += (size_t)snprintf(e->url + o, sizeof e->url - o, "%s", val);
            p += skip;
        } else {
            e->url[o++] = *p++;
        }
    }
    if (o >= sizeof e->url - 1) return bench_fail(res, "URL too long: %s", tmpl);
    e->url[o] = '\0';
    return 0;
}

/* Remove {dir} and whatever the transport left in it. */
static void remove_dir(url_env *e)
{
    if (!e->dir[0]) return;
    DIR *d = opendir(e->dir);
    struct dirent *ent;
    char path[sizeof e->dir + 300];
    while (d && (ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", e->dir, ent->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(e->dir);
    e->dir[0] = '\0';
}

/* ------------------------------------------------------------------ one thread */

#define SELF_BATCH 100 /* send+recv pairs per timed batch */

static int self_batch(void *ctx, uint64_t seq, bench_result *res)
{
    fctx *c = ctx;
    for (int i = 0; i < SELF_BATCH; i++) {
        uint64_t s = seq * SELF_BATCH + (uint64_t)i;
        bench_stamp(c->sbuf, c->size, s);
        int r = ferry_send(c->a, c->sbuf, c->size, FERRY_NOW);
        if (r < 0) return bench_fail(res, "send: %s", ferry_strerror(r));
        ssize_t n = ferry_recv(c->b, c->rbuf, c->size, FERRY_NOW);
        if (n < 0) return bench_fail(res, "receive: %s", ferry_strerror((int)n));
        if ((size_t)n != c->size || !bench_stamp_ok(c->rbuf, c->size, s))
            return bench_fail(res, "receive: wrong payload");
    }
    return 0;
}

int bench_ferry_self(const bench_job *job, bench_result *res)
{
    fctx c = {.size = job->size, .job = job, .tmo = TMO};
    unsigned char sbuf[64], rbuf[64];
    int r, rc;
    if (c.size < 16 || c.size > sizeof sbuf) return bench_fail(res, "size %zu", c.size);
    bench_fill(sbuf, c.size);
    c.sbuf = sbuf;
    c.rbuf = rbuf;
    if ((r = ferry_pair(NULL, &c.a, &c.b)) < 0)
        return bench_fail(res, "making the pair: %s", ferry_strerror(r));
    rc = bench_loop_pingpong(job, self_batch, &c, res);
    if (rc == 0) {
        res->rtt_p50_ns /= SELF_BATCH;
        res->rtt_p99_ns /= SELF_BATCH;
        res->rtt_p999_ns /= SELF_BATCH;
        res->msgs_per_s *= SELF_BATCH;
    }
    ferry_chan_close(c.a);
    ferry_chan_close(c.b);
    return rc;
}

/* ------------------------------------------------------------------ the runner */

int bench_ferry(const bench_job *job, bench_result *res)
{
    const bench_ferry_spec *spec = job->arg;
    /* In a --pairs row (job->gang) every call waits without a deadline, as the raw
     * pipe's read() beside it does: a deadline costs each sleep a kernel timer armed and
     * cancelled (docs/performance.md). Still bounded: a dead peer is -EPIPE (the link
     * watcher), and bench_pairs.c's alarm() and reaper end a client that hangs. */
    fctx c = {.size = job->size,
              .zerocopy = spec->zerocopy,
              .touch = spec->touch,
              .job = job,
              .tmo = job->gang ? FERRY_FOREVER : TMO};
    bench_peer p = {-1, NULL};
    ferry_listener *l = NULL;
    url_env env = {"", ""};
    ferry_chan_opts o;
    int rc = -1, r;

    ferry_chan_opts_init(&o);
    o.flags |= spec->flags;
    if (spec->url) o.max_msg = c.size; /* see the top comment */
    if (c.size > o.ring_bytes / 2 - 128) o.ring_bytes = BIG_RING;
    ferry_chan_opts_init(&c.local);
    c.local.flags |= spec->flags & FERRY_NO_SPIN; /* the opener's only choice */
    if (!spec->zerocopy || spec->touch) {
        c.sbuf = malloc(c.size);
        c.rbuf = malloc(c.size);
        if (!c.sbuf || !c.rbuf) {
            bench_fail(res, "out of memory");
            goto out;
        }
        bench_fill(c.sbuf, c.size);
        memset(c.rbuf, 0, c.size);
        if (c.size >= 16) bench_stamp(c.sbuf, c.size, 0); /* (every row: 64 B or more) */
        c.fold = fold_words(c.sbuf, c.size);              /* (the two stamp words cancel) */
    }
    if (spec->url) {
        if (expand_url(spec->url, &env, res) != 0) goto out;
        if ((r = ferry_listen(env.url, &o, &l)) < 0) {
            bench_fail(res, "ferry_listen %s: %s", env.url, ferry_strerror(r));
            goto out;
        }
        c.url = env.url;
    } else if ((r = (spec->pair ? spec->pair : ferry_pair)(&o, &c.a, &c.b)) < 0) {
        bench_fail(res, "making the pair: %s", ferry_strerror(r));
        goto out;
    }
    bench_peer_fn peer = job->pattern == BENCH_STREAM ? ferry_stream_send : ferry_echo;
    if (bench_peer_start(&p, job, peer, &c, res) != 0) goto out;
    ferry_chan_close(c.b); /* the peer's end, when made here */
    c.b = NULL;
    if (l) {
        r = ferry_accept(l, &c.a, TMO);
        ferry_listener_close(l); /* no name left behind from here on */
        l = NULL;
        if (r < 0) {
            bench_fail(res, "ferry_accept %s: %s", env.url, ferry_strerror(r));
            goto out;
        }
    }
    if (ferry_chan_max_msg(c.a) < c.size) {
        bench_fail(res, "max_msg %zu < %zu", ferry_chan_max_msg(c.a), c.size);
        goto out;
    }
    if (job->pattern == BENCH_STREAM) {
        rc = bench_loop_stream_rx(job, p.sh, ferry_rx, &c, res);
        if (c.zerocopy && !c.touch) res->bytes_per_s = -1; /* a descriptor rate: msgs/s */
        ferry_chan_counters st;
        ferry_chan_counters_init(&st);
        if (rc == 0 && ferry_chan_stats(c.a, &st) == 0 && st.recv_msgs > 0) {
            uint64_t tx = atomic_load_explicit(&p.sh->peer_sleeps, memory_order_relaxed);
            res->has_sleeps = 1;
            res->sleeps_per_msg = (double)(st.recv_waits + tx) / (double)st.recv_msgs;
        }
    } else
        rc = bench_loop_pingpong(job, ferry_rt, &c, res);
out:
    if (c.a && job->pattern != BENCH_STREAM) send_end(c.a); /* the echoing peer exits */
    ferry_chan_close(c.a); /* (and sees -EPIPE, where the transport can tell) */
    ferry_chan_close(c.b);
    ferry_listener_close(l);
    if (rc != 0 && p.pid > 0) kill(p.pid, SIGKILL); /* it may be waiting to connect */
    if (p.pid > 0 && bench_peer_finish(&p, res) != 0) rc = -1;
    remove_dir(&env);
    free(c.sbuf);
    free(c.rbuf);
    return rc;
}
