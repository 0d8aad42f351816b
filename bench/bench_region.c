// SPDX-License-Identifier: MIT
/*
 * bench_region.c — the shared-memory state rows of `ferry bench` (bench_region.h):
 *
 *   memcpy-value, ferry-state, pthread-rwlock, posix-shm+mutex   uncontended at 64 B: one
 *       process reads a 64-byte value: a plain memcpy out of a MAP_SHARED page (no
 *       consistency at all: the floor); ferry_state_read; pthread_rwlock_rdlock + memcpy +
 *       unlock on a PTHREAD_PROCESS_SHARED rwlock in a MAP_SHARED page; pthread_mutex_lock
 *       + memcpy + unlock on a process-shared mutex in a POSIX shm segment (shm_open of a
 *       name unique to the run, unlinked as soon as it is mapped: nothing stays in
 *       /dev/shm). A read takes ~10-50 ns, so batches of READ_BATCH reads are timed and
 *       every figure is per read (as the semaphore rows do).
 *   ...+writer   the same reads while the peer process, pinned to the other CPU, writes
 *       the value without pause (ferry_state_write; the rwlock's wrlock; the mutex) until
 *       the measuring side is done: the reader's cost under a concurrent writer. A
 *       ferry_state reader never waits for the writer (it retries a copy that raced);
 *       a lock reader waits while the writer holds the lock.
 *   Every copy is checked: the writer stamps its counter into the first and last 8 bytes
 *   of the value (bench_stamp), and a torn copy (two different stamps) fails the row.
 *   ferry_state_read's -EAGAIN (a write was in progress on every try) is retried and
 *   counted in the read's time.
 *
 *   ferry-region-notify   pingpong 64: two ferry regions made before fork, one each way.
 *       The measuring side stamps seq into region A's first 64 bytes and
 *       ferry_region_notify(A); the peer ferry_region_wait(A), checks the stamp, copies
 *       it to B and ferry_region_notify(B); the measuring side waits on B and checks it.
 *       The figure beside eventfd pingpong 64 (bench_raw_eventfd.c): a futex wake-up
 *       against a file-descriptor wake-up.
 * Bounds: waits take BENCH_OP_TIMEOUT_NS; the writer stops on sh->stop or after 120 s.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, shm_open */
#include "bench_region.h"

#include <ferry/ferry.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define READ_BATCH 100 /* reads per timed batch */
#define MAXV       256 /* the largest value a row reads */

/* The page the lock rows share (and memcpy-value reads from). */
typedef struct lock_page {
    pthread_rwlock_t rw;
    pthread_mutex_t mx;
    _Alignas(64) unsigned char value[MAXV];
} lock_page;

typedef struct state_ctx {
    const bench_job *job;
    const bench_region_spec *spec;
    size_t len;
    lock_page *pg;   /* memcpy, rwlock, mutex */
    ferry_state *st; /* ferry */
    uint64_t retries;
    volatile unsigned char sink;
} state_ctx;

static int idle_peer(void *ctx, bench_shared *sh)
{
    (void)ctx;
    (void)sh;
    return 0;
}

/* Is a copied value whole (the same stamp at both ends)? */
static int whole(const unsigned char *v, size_t len)
{
    uint64_t a, b;
    memcpy(&a, v, 8);
    memcpy(&b, v + len - 8, 8);
    return a == b;
}

static int writer_peer(void *ctx, bench_shared *sh)
{
    state_ctx *c = ctx;
    unsigned char v[MAXV];
    bench_fill(v, c->len);
    int64_t end = bench_now_ns() + 120LL * 1000000000;
    for (uint64_t k = 1;; k++) {
        if ((k & 1023) == 0 &&
            (atomic_load_explicit(&sh->stop, memory_order_acquire) || bench_now_ns() > end))
            return 0;
        bench_stamp(v, c->len, k);
        int r = 0;
        switch (c->spec->kind) {
        case STATE_FERRY:
            r = ferry_state_write(c->st, v, c->len);
            if (r < 0) return bench_peer_fail(sh, "ferry_state_write: %s", strerror(-r));
            break;
        case STATE_RWLOCK:
            if ((r = pthread_rwlock_wrlock(&c->pg->rw)) != 0)
                return bench_peer_fail(sh, "wrlock: %s", strerror(r));
            memcpy(c->pg->value, v, c->len);
            pthread_rwlock_unlock(&c->pg->rw);
            break;
        case STATE_SHMMTX:
            if ((r = pthread_mutex_lock(&c->pg->mx)) != 0)
                return bench_peer_fail(sh, "mutex: %s", strerror(r));
            memcpy(c->pg->value, v, c->len);
            pthread_mutex_unlock(&c->pg->mx);
            break;
        case STATE_MEMCPY:
            return 0;
        }
    }
}

static int read_batch(void *ctx, uint64_t seq, bench_result *res)
{
    state_ctx *c = ctx;
    unsigned char v[MAXV];
    (void)seq;
    for (int i = 0; i < READ_BATCH; i++) {
        switch (c->spec->kind) {
        case STATE_MEMCPY:
            memcpy(v, c->pg->value, c->len);
            /* keep the copy: the compiler must not drop it */
            __asm__ __volatile__("" : : "r"(v) : "memory");
            break;
        case STATE_FERRY: {
            size_t n;
            int r;
            while ((r = ferry_state_read(c->st, v, sizeof v, &n, NULL)) == -EAGAIN) c->retries++;
            if (r != 0) return bench_fail(res, "ferry_state_read: %s", strerror(-r));
            if (n != c->len) return bench_fail(res, "read %zu bytes, want %zu", n, c->len);
            break;
        }
        case STATE_RWLOCK: {
            int r = pthread_rwlock_rdlock(&c->pg->rw);
            if (r != 0) return bench_fail(res, "rdlock: %s", strerror(r));
            memcpy(v, c->pg->value, c->len);
            pthread_rwlock_unlock(&c->pg->rw);
            break;
        }
        case STATE_SHMMTX: {
            int r = pthread_mutex_lock(&c->pg->mx);
            if (r != 0) return bench_fail(res, "mutex: %s", strerror(r));
            memcpy(v, c->pg->value, c->len);
            pthread_mutex_unlock(&c->pg->mx);
            break;
        }
        }
        if (!whole(v, c->len)) return bench_fail(res, "a torn copy");
    }
    c->sink = v[1];
    return 0;
}

static int state_measure(void *ctx, bench_shared *peer_sh, bench_result *res)
{
    state_ctx *c = ctx;
    int rc = bench_loop_pingpong(c->job, read_batch, c, res);
    atomic_store_explicit(&peer_sh->stop, 1, memory_order_release);
    if (rc == 0) {
        res->rtt_p50_ns /= READ_BATCH;
        res->rtt_p99_ns /= READ_BATCH;
        res->rtt_p999_ns /= READ_BATCH;
        res->msgs_per_s *= READ_BATCH;
    }
    return rc;
}

int bench_state_read(const bench_job *job, bench_result *res)
{
    const bench_region_spec *spec = job->arg;
    state_ctx c = {.job = job, .spec = spec, .len = job->size};
    char shm_name[64] = "";
    int rc = -1, r;
    if (c.len < 16 || c.len > MAXV) return bench_fail(res, "size %zu: 16 .. %d", c.len, MAXV);
    unsigned char v0[MAXV];
    bench_fill(v0, c.len);
    bench_stamp(v0, c.len, 0);

    if (spec->kind == STATE_FERRY) {
        if ((r = ferry_state_create(c.len, NULL, &c.st)) != 0)
            return bench_fail(res, "ferry_state_create: %s", strerror(-r));
        if ((r = ferry_state_write(c.st, v0, c.len)) != 0) {
            bench_fail(res, "ferry_state_write: %s", strerror(-r));
            goto out;
        }
    } else {
        void *p = MAP_FAILED;
        if (spec->kind == STATE_SHMMTX) {
            snprintf(shm_name, sizeof shm_name, "/ferry-bench-state-%d", (int)getpid());
            int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0) return bench_fail(res, "shm_open: %s", strerror(errno));
            if (ftruncate(fd, sizeof(lock_page)) == 0)
                p = mmap(NULL, sizeof(lock_page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            int e = errno;
            close(fd);
            shm_unlink(shm_name); /* mapped (or failed): the name goes at once */
            if (p == MAP_FAILED) return bench_fail(res, "shm segment: %s", strerror(e));
        } else {
            p = mmap(NULL, sizeof(lock_page), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
            if (p == MAP_FAILED) return bench_fail(res, "mmap: %s", strerror(errno));
        }
        c.pg = p;
        pthread_rwlockattr_t ra;
        pthread_mutexattr_t ma;
        pthread_rwlockattr_init(&ra);
        pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
        pthread_rwlock_init(&c.pg->rw, &ra);
        pthread_mutex_init(&c.pg->mx, &ma);
        pthread_rwlockattr_destroy(&ra);
        pthread_mutexattr_destroy(&ma);
        memcpy(c.pg->value, v0, c.len);
    }
    rc = bench_run_apart(job, spec->writer ? writer_peer : idle_peer, state_measure, &c, res);
out:
    /* Both children are reaped (bench_run_apart): nobody uses the objects any more. */
    if (c.st) ferry_state_close(c.st);
    if (c.pg) {
        pthread_rwlock_destroy(&c.pg->rw);
        pthread_mutex_destroy(&c.pg->mx);
        munmap(c.pg, sizeof(lock_page));
    }
    return rc;
}

/* ------------------------------------------------------------------ notify pingpong */

typedef struct notify_ctx {
    const bench_job *job;
    ferry_region *a, *b; /* a: to the peer; b: back */
    unsigned char *pa, *pb;
    uint64_t seen_a, seen_b;
} notify_ctx;

#define END_SEQ ((uint64_t)1 << 62)

static int wait_change(ferry_region *r, uint64_t *seen)
{
    int rc = ferry_region_wait(r, *seen, BENCH_OP_TIMEOUT_NS);
    if (rc == 0) *seen = ferry_region_version(r);
    return rc;
}

static int notify_rt(void *ctx, uint64_t seq, bench_result *res)
{
    notify_ctx *c = ctx;
    size_t n = c->job->size;
    bench_stamp(c->pa, n, seq);
    int r = ferry_region_notify(c->a);
    if (r != 0) return bench_fail(res, "ferry_region_notify: %s", strerror(-r));
    if ((r = wait_change(c->b, &c->seen_b)) != 0)
        return bench_fail(res, "ferry_region_wait: %s", strerror(-r));
    if (!bench_stamp_ok(c->pb, n, seq)) return bench_fail(res, "wrong payload back");
    return 0;
}

static int notify_echo(void *ctx, bench_shared *sh)
{
    notify_ctx *c = ctx;
    size_t n = c->job->size;
    for (;;) {
        int r = wait_change(c->a, &c->seen_a);
        if (r != 0) return bench_peer_fail(sh, "peer: ferry_region_wait: %s", strerror(-r));
        uint64_t s;
        memcpy(&s, c->pa, 8);
        if (!bench_stamp_ok(c->pa, n, s)) return bench_peer_fail(sh, "peer: torn payload");
        if (s == END_SEQ) return 0;
        memcpy(c->pb, c->pa, n);
        if ((r = ferry_region_notify(c->b)) != 0)
            return bench_peer_fail(sh, "peer: ferry_region_notify: %s", strerror(-r));
    }
}

int bench_region_notify(const bench_job *job, bench_result *res)
{
    notify_ctx c = {.job = job};
    bench_peer p = {-1, NULL};
    int rc = -1, r;
    if (job->size < 16 || job->size > 4096) return bench_fail(res, "size %zu", job->size);
    if ((r = ferry_region_create(4096, NULL, &c.a)) != 0 ||
        (r = ferry_region_create(4096, NULL, &c.b)) != 0) {
        bench_fail(res, "ferry_region_create: %s", strerror(-r));
        goto out;
    }
    if ((r = ferry_region_map(c.a, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&c.pa)) != 0 ||
        (r = ferry_region_map(c.b, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&c.pb)) != 0) {
        bench_fail(res, "ferry_region_map: %s", strerror(-r));
        goto out;
    }
    if (bench_peer_start(&p, job, notify_echo, &c, res) != 0) goto out;
    rc = bench_loop_pingpong(job, notify_rt, &c, res);
    bench_stamp(c.pa, job->size, END_SEQ);
    ferry_region_notify(c.a);
out:
    if (rc != 0 && p.pid > 0) kill(p.pid, SIGKILL);
    if (p.pid > 0 && bench_peer_finish(&p, res) != 0) rc = -1;
    ferry_region_close(c.a);
    ferry_region_close(c.b);
    return rc;
}
