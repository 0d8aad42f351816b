// SPDX-License-Identifier: MIT
/*
 * bench_base.c — the baselines that the ferry rows are measured against, in the same run:
 *   spin-baseline   two processes ping-pong on one shared cache line, busy-waiting with
 *                   `pause`: the physical floor of a core-to-core hand-off (64 B only).
 *   futex-baseline  the same, but every wait is a sleep in FUTEX_WAIT and every message
 *                   a FUTEX_WAKE of a sleeper (the poster waits until the other side is
 *                   asleep): the floor of a kernel hand-off between sleeping processes
 *                   (64 B only). Before, it slept only when the answer was not there yet,
 *                   and ran in one of two modes (neither side sleeping, or both).
 *   futex-baseline-spin  the other mode, on purpose: each wait spins on the line for
 *                   50 us before it sleeps, each message is a store and a FUTEX_WAKE.
 *   pipe            a raw pipe pair (pingpong) or one pipe (stream); messages are written
 *                   and read whole, each pipe enlarged to 1 MiB where the system allows
 *                   (as ferry-pipe's: the same buffer in both rows).
 *   ring-baseline   a raw two-process, two-copy ring: the peer copies each 1 MiB
 *                   message into a 4 MiB shared ring (four slots), the driver copies it
 *                   out and checks it; both spin (with a sched_yield now and then) on
 *                   the ring's two indices. The fair floor of ferry-shm's 1 MiB stream,
 *                   which also copies twice (stream at 1 MiB only).
 *   memcpy-baseline one core copying 1 MiB blocks into a 4 MiB working set (the ring of
 *                   the 1 MiB ferry stream), cycling: what one copy costs (information:
 *                   one core, one copy, a hot buffer).
 * Rules: every wait is bounded (a dead peer fails the row, it never hangs it); the peer
 * closes the driver's ends of pipes it inherited, or it would never see end-of-file.
 */
#define _GNU_SOURCE /* syscall(), SYS_futex */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STOP_VALUE         UINT32_MAX /* the driver's "we are done" on the shared line */
#define SPIN_CHECK         4096       /* spins between two looks at the clock */
#define MEMCPY_WORKING_SET ((size_t)4 << 20)

/* The values on the shared line: the driver writes ping(seq), the peer answers pong(seq). */
static uint32_t ping(uint64_t seq)
{
    return (uint32_t)(2 * seq + 1);
}
static uint32_t pong(uint64_t seq)
{
    return (uint32_t)(2 * seq + 2);
}

/* ------------------------------------------------------------------ spin */

/* Busy-wait until *w == want. 1 when the driver said stop, -1 after BENCH_OP_TIMEOUT_NS.
 * The clock is looked at only every SPIN_CHECK spins, so a fast hand-off never reads it.
 * Acquire: pairs with the release store of the other side, so that whatever it wrote
 * before its store is visible here (nothing in this baseline, but any real channel
 * publishes a payload this way, so the floor must pay for the same ordering). */
static int spin_wait(_Atomic uint32_t *w, uint32_t want)
{
    int64_t deadline = 0;
    for (unsigned k = 1;; k++) {
        uint32_t v = atomic_load_explicit(w, memory_order_acquire);
        if (v == want) return 0;
        if (v == STOP_VALUE) return 1;
        bench_cpu_relax();
        if (k % SPIN_CHECK == 0) {
            int64_t t = bench_now_ns();
            if (deadline == 0)
                deadline = t + BENCH_OP_TIMEOUT_NS;
            else if (t > deadline)
                return -1;
        }
    }
}

static int spin_rt(void *ctx, uint64_t seq, bench_result *res)
{
    _Atomic uint32_t *w = ctx;
    /* Release: orders our earlier writes before the ping (see spin_wait). */
    atomic_store_explicit(w, ping(seq), memory_order_release);
    if (spin_wait(w, pong(seq)) != 0) return bench_fail(res, "no answer on the cache line");
    return 0;
}

static int spin_echo(void *ctx, bench_shared *sh)
{
    (void)ctx;
    for (uint64_t seq = 0;; seq++) {
        int r = spin_wait(&sh->line, ping(seq));
        if (r == 1) return 0;
        if (r < 0) return bench_peer_fail(sh, "peer: no ping on the cache line");
        /* Release: pairs with the driver's acquire in spin_wait. */
        atomic_store_explicit(&sh->line, pong(seq), memory_order_release);
    }
}

int bench_spin(const bench_job *job, bench_result *res)
{
    bench_peer p;
    if (bench_peer_start(&p, job, spin_echo, NULL, res) != 0) return -1;
    int rc = bench_loop_pingpong(job, spin_rt, &p.sh->line, res);
    /* Release: the peer's acquire load sees STOP after everything before it. */
    atomic_store_explicit(&p.sh->line, STOP_VALUE, memory_order_release);
    if (bench_peer_finish(&p, res) != 0) rc = -1;
    return rc;
}

/* ------------------------------------------------------------------ futex */

/* The line is shared between processes (MAP_SHARED), so no FUTEX_PRIVATE_FLAG. */
static long futex(_Atomic uint32_t *w, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, (uint32_t *)w, op, val, ts, NULL, 0);
}

/* The futex rows' shared page (mapped before fork): the value line, and one bell per side
 * (0: the driver, 1: the peer) that only its owner sleeps on; a bell's value never
 * changes, so FUTEX_WAIT on it always sleeps, until a FUTEX_WAKE. */
typedef struct futex_page {
    _Alignas(64) _Atomic uint32_t line;
    _Alignas(64) _Atomic uint32_t bell[2];
} futex_page;

typedef struct futex_ctx {
    futex_page *pg;
    int side;  /* this process: 0 the driver, 1 the peer */
    int sleep; /* 1: futex-baseline (every wait sleeps); 0: futex-baseline-spin */
} futex_ctx;

#define FUTEX_SPIN_NS (50 * 1000) /* futex-baseline-spin: spin this long before a sleep */

/* Until line == want: 0, 1 on STOP, -1 after BENCH_OP_TIMEOUT_NS.
 * Sleep mode: sleep on our bell every time, before even looking (the poster wakes us only
 * once we are asleep, see futex_post), so every hand-off is a sleep and a wake-up.
 * Spin mode: spin on the line for FUTEX_SPIN_NS, then sleep on it (FUTEX_WAIT re-checks
 * line == v in the kernel, so a store and wake between our load and our sleep are never
 * lost); the poster wakes every time, so neither side sleeps while the other answers
 * within the spin: the fast mode the single futex-baseline of before fell into now and
 * then. Each sleep is bounded (100 ms) so that a dead peer is noticed.
 * Acquire: as in spin_wait. */
static int futex_wait_for(const futex_ctx *c, uint32_t want)
{
    const struct timespec slice = {0, 100 * 1000 * 1000};
    _Atomic uint32_t *w = &c->pg->line;
    int64_t deadline = 0, spin_end = 0;
    for (unsigned k = 1;; k++) {
        if (c->sleep) futex(&c->pg->bell[c->side], FUTEX_WAIT, 0, &slice);
        uint32_t v = atomic_load_explicit(w, memory_order_acquire);
        if (v == want) return 0;
        if (v == STOP_VALUE) return 1;
        if (!c->sleep) {
            if (spin_end == 0) spin_end = bench_now_ns() + FUTEX_SPIN_NS;
            if (k % 64 != 0 || bench_now_ns() < spin_end) {
                bench_cpu_relax();
                continue;
            }
            if (futex(w, FUTEX_WAIT, v, &slice) == 0 || errno == EAGAIN || errno == EINTR) continue;
            if (errno != ETIMEDOUT) return -1;
        }
        int64_t t = bench_now_ns();
        if (deadline == 0)
            deadline = t + BENCH_OP_TIMEOUT_NS;
        else if (t > deadline)
            return -1;
    }
}

/* Store v and wake the other side. Sleep mode: wake its bell until a sleeper was woken (it
 * may not be asleep yet: then spin until it is), so that it always wakes from a sleep.
 * Spin mode: wake the line every time (this baseline has no waiter flag).
 * Release: as in spin_rt; the wake comes after the store, so the woken side sees v.
 * 0, or -1 when the other side never went to sleep (BENCH_OP_TIMEOUT_NS: it is gone). */
static int futex_post(const futex_ctx *c, uint32_t v)
{
    atomic_store_explicit(&c->pg->line, v, memory_order_release);
    if (!c->sleep) {
        futex(&c->pg->line, FUTEX_WAKE, 1, NULL);
        return 0;
    }
    int64_t deadline = 0;
    for (unsigned k = 1; futex(&c->pg->bell[1 - c->side], FUTEX_WAKE, 1, NULL) < 1; k++) {
        bench_cpu_relax();
        if (k % SPIN_CHECK == 0) {
            int64_t t = bench_now_ns();
            if (deadline == 0)
                deadline = t + BENCH_OP_TIMEOUT_NS;
            else if (t > deadline)
                return -1;
        }
    }
    return 0;
}

static int futex_rt(void *ctx, uint64_t seq, bench_result *res)
{
    const futex_ctx *c = ctx;
    if (futex_post(c, ping(seq)) != 0) return bench_fail(res, "the peer never slept");
    if (futex_wait_for(c, pong(seq)) != 0) return bench_fail(res, "no futex answer");
    return 0;
}

static int futex_echo(void *ctx, bench_shared *sh)
{
    futex_ctx c = *(const futex_ctx *)ctx;
    c.side = 1;
    for (uint64_t seq = 0;; seq++) {
        int r = futex_wait_for(&c, ping(seq));
        if (r == 1) return 0;
        if (r < 0) return bench_peer_fail(sh, "peer: no futex ping");
        if (futex_post(&c, pong(seq)) != 0) return bench_peer_fail(sh, "peer: driver never slept");
    }
}

static int futex_row(const bench_job *job, bench_result *res, int sleep)
{
    futex_page *pg =
        mmap(NULL, sizeof *pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pg == MAP_FAILED) return bench_fail(res, "mmap: %s", strerror(errno));
    futex_ctx c = {pg, 0, sleep};
    bench_peer p;
    int rc = -1;
    if (bench_peer_start(&p, job, futex_echo, &c, res) == 0) {
        rc = bench_loop_pingpong(job, futex_rt, &c, res);
        /* STOP: in sleep mode the peer is woken from its bell (if it is gone, the wake
         * finds nobody until the timeout; its exit status tells the rest). */
        futex_post(&c, STOP_VALUE);
        if (sleep) futex(&pg->bell[1], FUTEX_WAKE, 1, NULL);
        if (bench_peer_finish(&p, res) != 0) rc = -1;
    }
    munmap(pg, sizeof *pg);
    return rc;
}

int bench_futex(const bench_job *job, bench_result *res)
{
    return futex_row(job, res, 1);
}

int bench_futex_spin(const bench_job *job, bench_result *res)
{
    return futex_row(job, res, 0);
}

/* ------------------------------------------------------------------ pipe */

typedef struct pipe_ctx {
    int to_peer[2], from_peer[2]; /* pingpong: both; stream: from_peer only */
    size_t size;
    unsigned char *sbuf, *rbuf; /* the message sent, the message received */
    const bench_job *job;
} pipe_ctx;

static int write_full(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read one whole message: 1, 0 at end-of-file before its first byte, -EPROTO when the
 * file ends inside it, -errno on error. */
static int read_full(int fd, unsigned char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) return got == 0 ? 0 : -EPROTO;
        got += (size_t)r;
    }
    return 1;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static int pipe_rt(void *ctx, uint64_t seq, bench_result *res)
{
    pipe_ctx *c = ctx;
    bench_stamp(c->sbuf, c->size, seq);
    int r = write_full(c->to_peer[1], c->sbuf, c->size);
    if (r < 0) return bench_fail(res, "write: %s", strerror(-r));
    if ((r = read_full(c->from_peer[0], c->rbuf, c->size)) != 1)
        return bench_fail(res, "read: %s", r ? strerror(-r) : "end of file");
    if (!bench_copy_ok(c->rbuf, c->size, seq)) return bench_fail(res, "wrong payload");
    return 0;
}

static int pipe_echo(void *ctx, bench_shared *sh)
{
    pipe_ctx *c = ctx;
    close_fd(&c->to_peer[1]); /* the driver's ends */
    close_fd(&c->from_peer[0]);
    for (uint64_t seq = 0;; seq++) {
        int r = read_full(c->to_peer[0], c->rbuf, c->size);
        if (r == 0) return 0; /* the driver is done */
        if (r < 0) return bench_peer_fail(sh, "peer: read: %s", strerror(-r));
        if (!bench_copy_ok(c->rbuf, c->size, seq))
            return bench_peer_fail(sh, "peer: wrong payload");
        if ((r = write_full(c->from_peer[1], c->rbuf, c->size)) < 0)
            return bench_peer_fail(sh, "peer: write: %s", strerror(-r));
    }
}

static int pipe_send_stream(void *ctx, bench_shared *sh)
{
    pipe_ctx *c = ctx;
    const uint64_t max = bench_stream_max_msgs(c->job);
    const int64_t deadline = bench_now_ns() + bench_stream_max_ns(c->job);
    close_fd(&c->from_peer[0]);
    /* Relaxed load of stop: see stop_sender() in bench_loop.c. */
    for (uint64_t seq = 0; seq < max && !atomic_load_explicit(&sh->stop, memory_order_relaxed);
         seq++) {
        bench_stamp(c->sbuf, c->size, seq);
        int r = write_full(c->from_peer[1], c->sbuf, c->size);
        if (r < 0) return bench_peer_fail(sh, "peer: write: %s", strerror(-r));
        if (seq % 64 == 0 && bench_now_ns() > deadline) break;
    }
    close_fd(&c->from_peer[1]);
    return 0;
}

static int pipe_rx(void *ctx, uint64_t seq, bench_result *res)
{
    pipe_ctx *c = ctx;
    int r = read_full(c->from_peer[0], c->rbuf, c->size);
    if (r == 0) return 0;
    if (r < 0) return bench_fail(res, "read: %s", strerror(-r));
    if (!bench_copy_ok(c->rbuf, c->size, seq)) return bench_fail(res, "wrong payload");
    return 1;
}

int bench_pipe(const bench_job *job, bench_result *res)
{
    pipe_ctx c = {{-1, -1}, {-1, -1}, job->size, malloc(job->size), malloc(job->size), job};
    bench_peer p = {-1, NULL};
    int rc = -1;
    int stream = job->pattern == BENCH_STREAM;

    if (!c.sbuf || !c.rbuf) {
        bench_fail(res, "out of memory");
        goto out;
    }
    bench_fill(c.sbuf, c.size);
    memset(c.rbuf, 0, c.size);
    if ((!stream && pipe(c.to_peer) != 0) || pipe(c.from_peer) != 0) {
        bench_fail(res, "pipe: %s", strerror(errno));
        goto out;
    }
    if (!stream) fcntl(c.to_peer[1], F_SETPIPE_SZ, 1 << 20); /* best effort, as ferry-pipe */
    fcntl(c.from_peer[1], F_SETPIPE_SZ, 1 << 20);
    if (bench_peer_start(&p, job, stream ? pipe_send_stream : pipe_echo, &c, res) != 0) goto out;
    close_fd(&c.to_peer[0]); /* the peer's ends */
    close_fd(&c.from_peer[1]);
    if (stream)
        rc = bench_loop_stream_rx(job, p.sh, pipe_rx, &c, res);
    else
        rc = bench_loop_pingpong(job, pipe_rt, &c, res);
out:
    for (int i = 0; i < 2; i++) {
        close_fd(&c.to_peer[i]);
        close_fd(&c.from_peer[i]);
    }
    if (p.pid > 0 && bench_peer_finish(&p, res) != 0) rc = -1;
    free(c.sbuf);
    free(c.rbuf);
    return rc;
}

/* ------------------------------------------------------------------ ring */

#define RING_BASE_BYTES ((size_t)4 << 20) /* as ferry-shm's 1 MiB stream ring */

/* ring-baseline's shared page: a ring of whole messages in slots of job->size bytes,
 * its indices and the producer's "no more" word, mapped before fork. */
typedef struct ring_page {
    _Alignas(64) _Atomic uint64_t head; /* messages written (the producer's) */
    _Alignas(64) _Atomic uint64_t tail; /* messages read (the consumer's) */
    _Alignas(64) _Atomic uint32_t ended;
    _Alignas(64) unsigned char data[];
} ring_page;

typedef struct ring_ctx {
    ring_page *pg;
    size_t size, slots;
    unsigned char *sbuf, *rbuf;
    const bench_job *job;
} ring_ctx;

/* Wait (spinning, a sched_yield now and then: a loaded machine) until *w != v, or, when
 * stop is given, until *stop. 0, 1 on stop, -1 after BENCH_OP_TIMEOUT_NS. Acquire: pairs
 * with the other side's release store of the index, so the slot's bytes are there. */
static int ring_wait(_Atomic uint64_t *w, uint64_t v, _Atomic uint32_t *stop)
{
    int64_t deadline = 0;
    for (unsigned k = 1; atomic_load_explicit(w, memory_order_acquire) == v; k++) {
        /* Relaxed: a stop flag, no data behind it (the indices carry the data). */
        if (stop && atomic_load_explicit(stop, memory_order_relaxed)) return 1;
        bench_cpu_relax();
        if (k % SPIN_CHECK == 0) {
            sched_yield();
            int64_t t = bench_now_ns();
            if (deadline == 0)
                deadline = t + BENCH_OP_TIMEOUT_NS;
            else if (t > deadline)
                return -1;
        }
    }
    return 0;
}

/* The peer: copy stamped messages into the ring (the first copy) until told to stop. */
static int ring_send_stream(void *ctx, bench_shared *sh)
{
    ring_ctx *c = ctx;
    ring_page *pg = c->pg;
    const uint64_t max = bench_stream_max_msgs(c->job);
    const int64_t deadline = bench_now_ns() + bench_stream_max_ns(c->job);
    for (uint64_t seq = 0; seq < max && !atomic_load_explicit(&sh->stop, memory_order_relaxed);
         seq++) {
        /* Room: wait while the ring is full (tail == seq - slots). */
        if (seq >= c->slots) {
            int r = ring_wait(&pg->tail, seq - c->slots, &sh->stop);
            if (r == 1) break;
            if (r < 0) return bench_peer_fail(sh, "peer: the ring stays full");
        }
        bench_stamp(c->sbuf, c->size, seq);
        memcpy(pg->data + (seq % c->slots) * c->size, c->sbuf, c->size);
        /* Release: the slot's bytes before the index that hands them over. */
        atomic_store_explicit(&pg->head, seq + 1, memory_order_release);
        if (seq % 64 == 0 && bench_now_ns() > deadline) break;
    }
    /* Release: after the last head store (the consumer reads ended, then head again). */
    atomic_store_explicit(&pg->ended, 1, memory_order_release);
    return 0;
}

/* The driver: copy the next message out of the ring (the second copy) and check it. */
static int ring_rx(void *ctx, uint64_t seq, bench_result *res)
{
    ring_ctx *c = ctx;
    ring_page *pg = c->pg;
    while (atomic_load_explicit(&pg->head, memory_order_acquire) == seq) {
        /* Acquire: pairs with the producer's release of ended, after its last head. */
        if (atomic_load_explicit(&pg->ended, memory_order_acquire) &&
            atomic_load_explicit(&pg->head, memory_order_acquire) == seq)
            return 0;
        if (ring_wait(&pg->head, seq, &pg->ended) < 0)
            return bench_fail(res, "the ring stays empty");
    }
    memcpy(c->rbuf, pg->data + (seq % c->slots) * c->size, c->size);
    /* Release: our reads of the slot are done before the producer may reuse it. */
    atomic_store_explicit(&pg->tail, seq + 1, memory_order_release);
    if (!bench_copy_ok(c->rbuf, c->size, seq)) return bench_fail(res, "wrong payload");
    return 1;
}

int bench_ring(const bench_job *job, bench_result *res)
{
    ring_ctx c = {
        NULL, job->size, RING_BASE_BYTES / job->size, malloc(job->size), malloc(job->size), job};
    size_t map = sizeof(ring_page) + RING_BASE_BYTES;
    bench_peer p = {-1, NULL};
    int rc = -1;
    if (!c.sbuf || !c.rbuf || c.slots < 2) {
        bench_fail(res, "out of memory or bad message size");
        goto out;
    }
    c.pg = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c.pg == MAP_FAILED) {
        c.pg = NULL;
        bench_fail(res, "mmap: %s", strerror(errno));
        goto out;
    }
    memset(c.pg->data, 0, RING_BASE_BYTES); /* fault every page in before measuring */
    bench_fill(c.sbuf, c.size);
    memset(c.rbuf, 0, c.size);
    if (bench_peer_start(&p, job, ring_send_stream, &c, res) != 0) goto out;
    rc = bench_loop_stream_rx(job, p.sh, ring_rx, &c, res);
out:
    if (p.pid > 0 && bench_peer_finish(&p, res) != 0) rc = -1;
    if (c.pg) munmap(c.pg, map);
    free(c.sbuf);
    free(c.rbuf);
    return rc;
}

/* ------------------------------------------------------------------ memcpy */

/* Copy one block into the next slot of the working set, then check it like a receiver
 * would. The empty asm with a "memory" clobber makes the compiler assume the whole
 * destination is read, so the copy cannot be shrunk to the bytes that are checked. */
static int copy_one(unsigned char *dst, unsigned char *src, size_t blk, uint64_t seq)
{
    unsigned char *d = dst + (seq % (MEMCPY_WORKING_SET / blk)) * blk;
    bench_stamp(src, blk, seq);
    memcpy(d, src, blk);
    __asm__ __volatile__("" ::: "memory");
    return bench_copy_ok(d, blk, seq) ? 0 : -1;
}

int bench_memcpy(const bench_job *job, bench_result *res)
{
    const bench_budget *b = job->budget;
    const size_t blk = job->size;
    unsigned char *src = malloc(blk), *dst = malloc(MEMCPY_WORKING_SET);
    uint64_t seq = 0, n = 0;
    int rc = 0;

    if (!src || !dst || blk > MEMCPY_WORKING_SET || blk < 64) {
        free(src);
        free(dst);
        return bench_fail(res, "out of memory or bad block size");
    }
    bench_fill(src, blk);
    memset(dst, 0, MEMCPY_WORKING_SET); /* fault every page in before measuring */

    int64_t warm_end = bench_now_ns() + b->warm_ns;
    for (uint64_t i = 0; i < b->warm_iters && rc == 0; i++) {
        rc = copy_one(dst, src, blk, seq++);
        if (bench_now_ns() >= warm_end) break;
    }
    int64_t t0 = bench_now_ns(), t = t0, end = t0 + b->run_ns;
    while (rc == 0 && n < b->max_iters && t < end) {
        rc = copy_one(dst, src, blk, seq++);
        n++;
        t = bench_now_ns();
    }
    if (rc != 0)
        bench_fail(res, "the copy does not match");
    else
        res->bytes_per_s = bench_rate((double)n * (double)blk, t - t0);
    free(src);
    free(dst);
    return rc;
}
