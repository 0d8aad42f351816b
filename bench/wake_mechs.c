// SPDX-License-Identifier: MIT
/*
 * wake_mechs.c — a self-contained experiment: which kernel wake-up is cheapest when there
 * are more processes than CPUs? (issue 15, item 1; docs/performance.md, "More processes
 * than CPUs, 64 pairs".)
 *
 * N pairs of processes, none pinned, ping-pong a 64-byte message, every pair at once; the
 * figure is the aggregate round trips per second over one common window. Every round
 * trip needs two hand-offs through the kernel once there are more pairs than CPUs, so
 * the rows compare the kernel's wake-up paths:
 *   pipe            two pipes, write/read 64 bytes (what `ferry bench --pairs` puts
 *                   beside ferry; a pipe wakes its reader with WF_SYNC)
 *   unix-stream     a socketpair (SOCK_STREAM), 64 bytes each way (WF_SYNC as well)
 *   unix-seqpacket  the same, SOCK_SEQPACKET (the type of a shm channel's link)
 *   eventfd         the message in shared memory, a write/read of an eventfd per hand-off
 * and, with the message in a memfd mapping and a waiting flag (the waiter raises it,
 * fences, re-checks, sleeps; the waker publishes, fences, and only if it takes the flag
 * makes the wake-up call), as ferry's shm channel does (src/shm/wait.h):
 *   futex           FUTEX_WAIT / FUTEX_WAKE (shared), the flag on its own cache line
 *   futex-near      the same, the flag on the futex word's line
 *   futex-tmo       futex with ferry's 5 ms slice as the FUTEX_WAIT timeout
 *   futex-wakeop    the wake-up through FUTEX_WAKE_OP
 *   futex2          futex_wait / futex_wake (Linux 6.7)
 *   futex-waitv     futex_waitv with one entry (Linux 5.16), woken by FUTEX_WAKE
 *   sockwake        the waiter sleeps in read() on a SOCK_SEQPACKET socketpair; the waker
 *                   sends one byte, only when it took the flag (what a shm channel end
 *                   sleeping on its link would cost)
 *   sockwake-poll   the same, the waiter in poll() (the link also queues fd messages, which
 *                   a sleeper could not read past)
 *   ferry           a ferry_pair() channel, ferry_send / ferry_recv (default options;
 *                   --ring sets its ring_bytes)
 *   ferry-nospin    the same with FERRY_NO_SPIN
 *   futex-tmo-lines futex-tmo, and each hand-off also writes one word in each of
 *                   --lines more cache lines (default 16), which the receiver reads: what
 *                   a line costs per hand-off when 2N processes share the CPUs
 *   futex-tmo-pages the same with each of those lines on a page of its own
 *   futex-spin      futex-tmo after polling for up to --spin-ns (default 1000) while the
 *                   peer's own waiting flag is down (it is not asleep)
 * A row that the kernel does not have (ENOSYS) prints "n/a".
 *
 * Usage: wake_mechs [--pairs 2,8,64] [--rounds 3] [--window-ms 500] [--lines 16]
 *                   [--spin-ns 1000] [--ring BYTES] [--quick] [ROW...]
 *        wake_mechs --cold MiB   (the user path alone with cold caches: see cold())
 * Rows run one after the other in each round, so every round is a same-run comparison;
 * the last column is the median over the rounds of the row's ratio to the first row.
 * --quick: 2 pairs, one round, 50 ms windows (the smoke test: every row runs, exit 0).
 * Figures move a lot between runs on a shared machine: compare ratios within one run.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdalign.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG       64
#define MAX_PAIRS 256
#define MAX_ROUND 32
#define MAX_LINES 64
#define SLICE_NS  5000000L /* ferry's FERRY__WAIT_SLICE_NS */

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef SYS_futex_wake
#define SYS_futex_wake 454
#endif
#ifndef SYS_futex_wait
#define SYS_futex_wait 455
#endif
#define FUTEX2_U32 0x02 /* FUTEX2_SIZE_U32; shared (no FUTEX2_PRIVATE) */
#ifndef FUTEX_WAITV_MAX /* kernel headers older than 5.16: the layout of linux/futex.h */
struct futex_waitv {
    uint64_t val;
    uint64_t uaddr;
    uint32_t flags;
    uint32_t __reserved;
};
#endif

enum {
    R_PIPE,
    R_STREAM,
    R_SEQPACKET,
    R_EVENTFD,
    R_FUTEX,
    R_FUTEX_NEAR,
    R_FUTEX_TMO,
    R_FUTEX_WAKEOP,
    R_FUTEX2,
    R_FUTEX_WAITV,
    R_SOCKWAKE,
    R_SOCKWAKE_POLL,
    R_FERRY,
    R_FERRY_NOSPIN,
    R_FUTEX_LINES,
    R_FUTEX_PAGES,
    R_FUTEX_SPIN,
    R_N
};
static const char *const row_name[R_N] = {
    "pipe",      "unix-stream",  "unix-seqpacket",  "eventfd",         "futex",     "futex-near",
    "futex-tmo", "futex-wakeop", "futex2",          "futex-waitv",     "sockwake",  "sockwake-poll",
    "ferry",     "ferry-nospin", "futex-tmo-lines", "futex-tmo-pages", "futex-spin"};

static int extra_lines = 16;   /* --lines: futex-tmo-lines, futex-tmo-pages */
static int64_t spin_ns = 1000; /* --spin-ns: futex-spin */
static long ring_bytes;        /* --ring: the ferry rows' ring_bytes (0: the default) */
static int usage;              /* --usage: print the cost per round trip (struct use) */

/* What the processes of one run cost per round trip (getrusage of the reaped children,
 * over every round trip they made, the warm-up's included). */
typedef struct use {
    double user_ns, sys_ns, vcs, ivcs;
    uint64_t all; /* the round trips they made */
} use;

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The page every process of a run shares: the window, and each client's count. */
typedef struct gang {
    _Atomic int64_t start, end; /* 0 until the driver opens the window */
    _Atomic uint64_t count[MAX_PAIRS];
    _Atomic uint64_t total[MAX_PAIRS]; /* every round trip, the warm-up's too (--usage) */
    _Atomic int failed;
    char err[128];
} gang;

/* One direction of a pair: the futex word (a sequence number), the waiting flags (one on
 * the word's line, one on a line of its own) and the message. */
typedef struct dir {
    alignas(64) _Atomic uint32_t seq;
    _Atomic uint32_t wait_near;
    alignas(64) _Atomic uint32_t wait_far;
    alignas(64) unsigned char msg[MSG];
    alignas(64) _Atomic uint64_t extra[MAX_LINES][8];     /* futex-tmo-lines: one word a line */
    alignas(4096) _Atomic uint64_t pages[MAX_LINES][512]; /* futex-tmo-pages: one a page */
} dir;

typedef struct pair {
    int row, side; /* side 0: the client (sends first, counts); 1: the echoing server */
    dir *d;        /* d[s]: what side s receives */
    int rfd[2];    /* side s reads rfd[s] */
    int wfd[2];    /* side s writes wfd[s] (to the other side) */
    ferry_chan *ch;
    gang *g;
} pair;

static _Noreturn void die(pair *p, const char *what)
{
    /* A client that is done exits: its server's next call fails (-EPIPE); not an error. */
    int64_t end = atomic_load_explicit(&p->g->end, memory_order_relaxed);
    if (end && now_ns() > end) _exit(0);
    if (!atomic_exchange(&p->g->failed, 1))
        snprintf(p->g->err, sizeof p->g->err, "%s %s: %s", row_name[p->row], what, strerror(errno));
    _exit(1);
}

static _Atomic uint32_t *flag_of(const pair *p, dir *d)
{
    return p->row == R_FUTEX_NEAR ? &d->wait_near : &d->wait_far;
}

/* Sleep until d->seq moved from old (the waiter's half of the Dekker pair: flag, fence,
 * re-check, sleep). */
static void flag_wait(pair *p, dir *d, uint32_t old)
{
    _Atomic uint32_t *flag = flag_of(p, d);
    char b[64];
    if (p->row == R_FUTEX_SPIN) {
        /* The peer's flag: it waits on the other direction. Relaxed: a hint. */
        _Atomic uint32_t *peer = &p->d[!p->side].wait_far;
        for (int64_t end = 0;;) {
            for (int i = 0; i < 32; i++) {
                if (atomic_load_explicit(&d->seq, memory_order_acquire) != old) return;
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            }
            if (atomic_load_explicit(peer, memory_order_relaxed)) break;
            int64_t t = now_ns();
            if (!end) end = t + spin_ns;
            if (t >= end) break;
        }
    }
    for (;;) {
        if (atomic_load_explicit(&d->seq, memory_order_acquire) != old) return;
        atomic_store_explicit(flag, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst); /* pairs with the waker's seq_cst RMWs */
        if (atomic_load_explicit(&d->seq, memory_order_acquire) != old) {
            atomic_store_explicit(flag, 0, memory_order_relaxed);
            return;
        }
        long r = 0;
        switch (p->row) {
        case R_FUTEX_TMO:
        case R_FUTEX_LINES:
        case R_FUTEX_PAGES:
        case R_FUTEX_SPIN: {
            struct timespec ts = {0, SLICE_NS};
            r = syscall(SYS_futex, (uint32_t *)&d->seq, FUTEX_WAIT, old, &ts, NULL, 0);
            break;
        }
        case R_FUTEX2:
            r = syscall(SYS_futex_wait, (uint32_t *)&d->seq, (unsigned long)old, 0xffffffffUL,
                        FUTEX2_U32, NULL, CLOCK_MONOTONIC);
            break;
        case R_FUTEX_WAITV: {
            struct futex_waitv w = {.val = old, .uaddr = (uintptr_t)&d->seq, .flags = FUTEX2_U32};
            r = syscall(SYS_futex_waitv, &w, 1, 0, NULL, CLOCK_MONOTONIC);
            break;
        }
        case R_SOCKWAKE:
            r = read(p->rfd[p->side], b, sizeof b);
            break;
        case R_SOCKWAKE_POLL: {
            struct pollfd pf = {p->rfd[p->side], POLLIN, 0};
            r = poll(&pf, 1, -1);
            if (r >= 0) r = recv(p->rfd[p->side], b, sizeof b, MSG_DONTWAIT);
            if (r < 0 && errno == EAGAIN) r = 0;
            break;
        }
        default:
            r = syscall(SYS_futex, (uint32_t *)&d->seq, FUTEX_WAIT, old, NULL, NULL, 0);
        }
        if (r < 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) die(p, "wait");
        atomic_store_explicit(flag, 0, memory_order_relaxed);
    }
}

/* Publish msg in d and wake its waiter if it said it sleeps (the waker's half). */
static void flag_post(pair *p, dir *d, const unsigned char *msg)
{
    _Atomic uint32_t *flag = flag_of(p, d);
    memcpy(d->msg, msg, MSG);
    atomic_fetch_add_explicit(&d->seq, 1, memory_order_seq_cst);
    if (!atomic_exchange_explicit(flag, 0, memory_order_seq_cst)) return;
    long r;
    char b = 1;
    switch (p->row) {
    case R_FUTEX_WAKEOP:
        /* Wake one on seq; the op on wait_near (add 0) is only there to take the path. */
        r = syscall(SYS_futex, (uint32_t *)&d->seq, FUTEX_WAKE_OP, 1, (void *)0, &d->wait_near,
                    FUTEX_OP(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_EQ, 1));
        break;
    case R_FUTEX2:
        r = syscall(SYS_futex_wake, (uint32_t *)&d->seq, 0xffffffffUL, 1, FUTEX2_U32);
        break;
    case R_SOCKWAKE:
    case R_SOCKWAKE_POLL:
        r = send(p->wfd[p->side], &b, 1, MSG_NOSIGNAL);
        break;
    default:
        r = syscall(SYS_futex, (uint32_t *)&d->seq, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    if (r < 0) die(p, "wake");
}

static void read_all(pair *p, int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = read(fd, (char *)buf + got, len - got);
        if (n <= 0) die(p, "read");
        got += (size_t)n;
    }
}

/* One hand-off in: wait for the message k + 1 (flag rows) and copy it to buf. */
static void take(pair *p, unsigned char *buf, uint32_t k)
{
    dir *in = &p->d[p->side];
    uint64_t v;
    switch (p->row) {
    case R_PIPE:
    case R_STREAM:
    case R_SEQPACKET:
        read_all(p, p->rfd[p->side], buf, MSG);
        return;
    case R_EVENTFD:
        read_all(p, p->rfd[p->side], &v, sizeof v);
        memcpy(buf, in->msg, MSG);
        return;
    case R_FERRY:
    case R_FERRY_NOSPIN: {
        /* errno only on failure: the raw rows touch it (a TLS page) only then too. */
        ssize_t n = ferry_recv(p->ch, buf, MSG, FERRY_FOREVER);
        if (n != MSG) {
            errno = n < 0 ? (int)-n : EMSGSIZE;
            die(p, "ferry_recv");
        }
        return;
    }
    default:
        flag_wait(p, in, k);
        memcpy(buf, in->msg, MSG);
        /* Relaxed: the acquire of seq in flag_wait ordered them; the values are unused. */
        for (int i = 0; i < (p->row == R_FUTEX_LINES ? extra_lines : 0); i++)
            buf[0] ^= (unsigned char)atomic_load_explicit(&in->extra[i][0], memory_order_relaxed);
        for (int i = 0; i < (p->row == R_FUTEX_PAGES ? extra_lines : 0); i++)
            buf[0] ^= (unsigned char)atomic_load_explicit(&in->pages[i][0], memory_order_relaxed);
    }
}

/* One hand-off out. */
static void give(pair *p, const unsigned char *buf)
{
    dir *out = &p->d[!p->side];
    uint64_t v = 1;
    switch (p->row) {
    case R_PIPE:
    case R_STREAM:
    case R_SEQPACKET:
        if (write(p->wfd[p->side], buf, MSG) != MSG) die(p, "write");
        return;
    case R_EVENTFD:
        memcpy(out->msg, buf, MSG);
        if (write(p->wfd[p->side], &v, sizeof v) != sizeof v) die(p, "write");
        return;
    case R_FERRY:
    case R_FERRY_NOSPIN: {
        int rc = ferry_send(p->ch, buf, MSG, FERRY_FOREVER);
        if (rc != 0) {
            errno = -rc;
            die(p, "ferry_send");
        }
        return;
    }
    default:
        /* Relaxed: flag_post's seq_cst increment publishes them. */
        for (int i = 0; i < (p->row == R_FUTEX_LINES ? extra_lines : 0); i++)
            atomic_store_explicit(&out->extra[i][0], buf[i % MSG], memory_order_relaxed);
        for (int i = 0; i < (p->row == R_FUTEX_PAGES ? extra_lines : 0); i++)
            atomic_store_explicit(&out->pages[i][0], buf[i % MSG], memory_order_relaxed);
        flag_post(p, out, buf);
    }
}

/* A pair's process: ping-pong until the window closes (the client counts the round
 * trips that end inside it). The server never returns: the driver kills it. */
static _Noreturn void side_main(pair *p, int idx)
{
    unsigned char buf[MSG];
    memset(buf, 'w', sizeof buf);
    uint64_t count = 0, total = 0;
    for (uint32_t k = 0;; k++) {
        if (p->side == 0) {
            give(p, buf);
            take(p, buf, k);
        } else {
            take(p, buf, k);
            give(p, buf);
            continue;
        }
        total++;
        /* Relaxed: the window is a pair of numbers, set once; a late look costs one count. */
        int64_t st = atomic_load_explicit(&p->g->start, memory_order_relaxed);
        if (!st) continue;
        int64_t t = now_ns();
        if (t > atomic_load_explicit(&p->g->end, memory_order_relaxed)) break;
        if (t >= st) count++;
    }
    atomic_store_explicit(&p->g->count[idx], count, memory_order_relaxed);
    atomic_store_explicit(&p->g->total[idx], total, memory_order_relaxed);
    _exit(0); /* waitpid orders the store before the driver's read */
}

/* Make pair idx's objects in p (before fork). 0, or -1 with errno. */
static int pair_make(pair *p, int row)
{
    int sv[2];
    switch (row) {
    case R_PIPE:
        if (pipe(sv) < 0) return -1;
        p->rfd[0] = sv[0], p->wfd[1] = sv[1];
        if (pipe(sv) < 0) return -1;
        p->rfd[1] = sv[0], p->wfd[0] = sv[1];
        return 0;
    case R_EVENTFD:
        for (int s = 0; s < 2; s++)
            if ((p->rfd[s] = p->wfd[!s] = eventfd(0, 0)) < 0) return -1;
        return 0;
    case R_STREAM:
    case R_SEQPACKET:
    case R_SOCKWAKE:
    case R_SOCKWAKE_POLL:
        if (socketpair(AF_UNIX, row == R_STREAM ? SOCK_STREAM : SOCK_SEQPACKET, 0, sv) < 0)
            return -1;
        p->rfd[0] = p->wfd[0] = sv[0];
        p->rfd[1] = p->wfd[1] = sv[1];
        return 0;
    default:
        return 0;
    }
}

static void close_fds(pair *p)
{
    int seen[4], n = 0;
    int all[4] = {p->rfd[0], p->rfd[1], p->wfd[0], p->wfd[1]};
    for (int i = 0; i < 4; i++) {
        int dup = 0;
        for (int j = 0; j < n; j++) dup |= seen[j] == all[i];
        if (all[i] >= 0 && !dup) close(seen[n++] = all[i]);
    }
}

/* One run of `row` with n pairs: aggregate round trips/s, 0 when the row is not there
 * (ENOSYS), -1 on failure (reported). */
static double run(int row, int n, int64_t warm_ns, int64_t window_ns, use *u)
{
    struct rusage r0, r1;
    getrusage(RUSAGE_CHILDREN, &r0);
    gang *g = mmap(NULL, sizeof *g, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g == MAP_FAILED) return -1;
    pid_t pids[2 * MAX_PAIRS];
    int np = 0, bad = 0;
    fflush(stdout);
    for (int i = 0; i < n && !bad; i++) {
        pair p = {.row = row, .rfd = {-1, -1}, .wfd = {-1, -1}, .g = g};
        ferry_chan *end[2] = {NULL, NULL};
        int memfd = memfd_create("wake_mechs", MFD_CLOEXEC);
        if (memfd < 0 || ftruncate(memfd, 2 * sizeof(dir)) < 0) {
            perror("memfd");
            bad = 1;
            break;
        }
        p.d = mmap(NULL, 2 * sizeof(dir), PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        close(memfd);
        if (p.d == MAP_FAILED || pair_make(&p, row) < 0) {
            perror("pair");
            bad = 1;
            break;
        }
        if (row == R_FERRY || row == R_FERRY_NOSPIN) {
            ferry_chan_opts o;
            ferry_chan_opts_init(&o);
            if (row == R_FERRY_NOSPIN) o.flags |= FERRY_NO_SPIN;
            if (ring_bytes) o.ring_bytes = (size_t)ring_bytes;
            int r = ferry_pair(&o, &end[0], &end[1]);
            if (r < 0) {
                fprintf(stderr, "ferry_pair: %s\n", ferry_strerror(r));
                bad = 1;
            }
        }
        for (int s = 0; s < 2 && !bad; s++) {
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                bad = 1;
            } else if (pid == 0) {
                p.side = s;
                p.ch = end[s];
                ferry_chan_close(end[!s]);
                side_main(&p, i);
            } else {
                pids[np++] = pid;
            }
        }
        ferry_chan_close(end[0]);
        ferry_chan_close(end[1]);
        close_fds(&p);
        munmap(p.d, 2 * sizeof(dir));
    }
    if (!bad) {
        nanosleep(&(struct timespec){warm_ns / 1000000000, warm_ns % 1000000000}, NULL);
        int64_t st = now_ns() + 10000000;
        atomic_store(&g->end, st + window_ns);
        atomic_store(&g->start, st);
        int64_t wait = window_ns + 10000000 + 200000000;
        nanosleep(&(struct timespec){wait / 1000000000, wait % 1000000000}, NULL);
    }
    /* The servers wait for a message that never comes, and a client may be left behind. */
    for (int i = 0; i < np; i++) kill(pids[i], SIGKILL);
    for (int i = 0; i < np; i++) waitpid(pids[i], NULL, 0);
    double rate = -1;
    if (atomic_load(&g->failed)) {
        bad = 1;
        if (strstr(g->err, strerror(ENOSYS)))
            rate = 0; /* no such system call */
        else
            fprintf(stderr, "%s\n", g->err);
    }
    if (!bad) {
        uint64_t total = 0, all = 0;
        for (int i = 0; i < n; i++) total += atomic_load(&g->count[i]);
        for (int i = 0; i < n; i++) all += atomic_load(&g->total[i]);
        rate = (double)total * 1e9 / (double)window_ns;
        getrusage(RUSAGE_CHILDREN, &r1);
        double rt = all ? (double)all : 1;
        u->all = all;
#define TV_NS(tv) ((double)(tv).tv_sec * 1e9 + (double)(tv).tv_usec * 1e3)
        u->user_ns = (TV_NS(r1.ru_utime) - TV_NS(r0.ru_utime)) / rt;
        u->sys_ns = (TV_NS(r1.ru_stime) - TV_NS(r0.ru_stime)) / rt;
#undef TV_NS
        u->vcs = (double)(r1.ru_nvcsw - r0.ru_nvcsw) / rt;
        u->ivcs = (double)(r1.ru_nivcsw - r0.ru_nivcsw) / rt;
    }
    munmap(g, sizeof *g);
    return rate;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* --cold MiB: one process, one thread; before every step it touches one line of every
 * page of a MiB-sized buffer (evicting the caches and the TLB, as 2N processes do to each
 * other), then times the step alone: a ferry_send and a ferry_recv on a ferry_pair, or a
 * raw hand-off's two halves (the message and the sequence word in a shared page).
 * Prints ns per send + receive, the medians of 5 rounds of 2,000. */
static int cold(long mib)
{
    size_t size = (size_t)mib << 20;
    unsigned char *junk =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    dir *d = mmap(NULL, sizeof(dir), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ferry_chan *a = NULL, *b = NULL;
    if (junk == MAP_FAILED || d == MAP_FAILED || ferry_pair(NULL, &a, &b) < 0) {
        fprintf(stderr, "wake_mechs: cold: setup failed\n");
        return 1;
    }
    memset(junk, 1, size);
    unsigned char msg[MSG], out[MSG];
    memset(msg, 'c', sizeof msg);
    double f[5], fs[5], r[5], c[5];
    size_t off = 0;
    enum { N = 2000 };
    for (int round = 0; round < 5; round++) {
        int64_t t[4] = {0, 0, 0, 0}; /* ferry send, ferry recv, raw, two clock reads */
        for (int i = 0; i < N; i++) {
            for (int step = 0; step < 6; step++) {
                for (size_t k = 0; k < size; k += 4096) junk[k + off]++;
                off = (off + 64) & 4095;
                int64_t t0 = now_ns();
                switch (step) {
                case 0:
                    (void)ferry_send(a, msg, MSG, FERRY_NOW);
                    break;
                case 1:
                    (void)ferry_recv(b, out, MSG, FERRY_NOW);
                    break;
                case 2:
                    memcpy(d->msg, msg, MSG);
                    atomic_fetch_add_explicit(&d->seq, 1, memory_order_seq_cst);
                    break;
                case 3:
                    if (atomic_load_explicit(&d->seq, memory_order_acquire))
                        memcpy(out, d->msg, MSG);
                    break;
                default:
                    break; /* 4, 5: the clock reads alone */
                }
                int64_t dt = now_ns() - t0;
                t[step < 2 ? step : step < 4 ? 2 : 3] += dt;
            }
        }
        f[round] = (double)(t[0] + t[1]) / N;
        fs[round] = (double)t[0] / N;
        r[round] = (double)t[2] / N;
        c[round] = (double)t[3] / N;
    }
    qsort(f, 5, sizeof f[0], cmp_double);
    qsort(fs, 5, sizeof fs[0], cmp_double);
    qsort(r, 5, sizeof r[0], cmp_double);
    qsort(c, 5, sizeof c[0], cmp_double);
    printf("cold (%ld MiB touched between steps), ns per send + receive, each with its two "
           "clock reads:\n  ferry %.0f (the send %.0f)   raw %.0f   clock reads alone %.0f\n",
           mib, f[2], fs[2], r[2], c[2]);
    ferry_chan_close(a);
    ferry_chan_close(b);
    munmap(junk, size);
    munmap(d, sizeof(dir));
    return 0;
}

int main(int argc, char **argv)
{
    int rows[R_N], nrows = 0, rounds = 3, pairs[16], npairs = 0;
    int64_t window_ns = 500000000, warm_ns = 300000000;
    const char *plist = "2,8,64";
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--pairs") && a + 1 < argc) {
            plist = argv[++a];
        } else if (!strcmp(argv[a], "--rounds") && a + 1 < argc) {
            rounds = atoi(argv[++a]);
        } else if (!strcmp(argv[a], "--window-ms") && a + 1 < argc) {
            window_ns = atoll(argv[++a]) * 1000000;
        } else if (!strcmp(argv[a], "--lines") && a + 1 < argc) {
            extra_lines = atoi(argv[++a]);
            if (extra_lines < 0 || extra_lines > MAX_LINES) {
                fprintf(stderr, "wake_mechs: --lines 0..%d\n", MAX_LINES);
                return 2;
            }
        } else if (!strcmp(argv[a], "--ring") && a + 1 < argc) {
            ring_bytes = atol(argv[++a]); /* ferry_pair checks it */
        } else if (!strcmp(argv[a], "--spin-ns") && a + 1 < argc) {
            spin_ns = atoll(argv[++a]);
        } else if (!strcmp(argv[a], "--cold") && a + 1 < argc) {
            long mib = atol(argv[++a]);
            if (mib < 1 || mib > 4096) {
                fprintf(stderr, "wake_mechs: --cold 1..4096 (MiB)\n");
                return 2;
            }
            return cold(mib);
        } else if (!strcmp(argv[a], "--usage")) {
            usage = 1;
        } else if (!strcmp(argv[a], "--quick")) {
            plist = "2";
            rounds = 1;
            window_ns = warm_ns = 50000000;
        } else {
            int r = 0;
            while (r < R_N && strcmp(argv[a], row_name[r])) r++;
            if (r == R_N || nrows == R_N) {
                fprintf(stderr,
                        "usage: wake_mechs [--pairs 2,8,64] [--rounds 3] [--window-ms 500] "
                        "[--lines 16] [--spin-ns 1000] [--ring BYTES] [--quick] [ROW...] | --cold "
                        "MiB\n");
                return 2;
            }
            rows[nrows++] = r;
        }
    }
    if (nrows == 0)
        for (int r = 0; r < R_N; r++) rows[nrows++] = r;
    for (const char *s = plist; *s && npairs < 16;) {
        pairs[npairs] = atoi(s);
        if (pairs[npairs] < 1 || pairs[npairs] > MAX_PAIRS) {
            fprintf(stderr, "wake_mechs: pairs must be 1..%d\n", MAX_PAIRS);
            return 2;
        }
        npairs++;
        s += strcspn(s, ",");
        s += *s == ',';
    }
    if (rounds < 1 || rounds > MAX_ROUND || window_ns <= 0) {
        fprintf(stderr, "wake_mechs: rounds 1..%d, window > 0\n", MAX_ROUND);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int failed = 0;
    for (int pi = 0; pi < npairs; pi++) {
        static double res[R_N][MAX_ROUND];
        static use us[R_N][MAX_ROUND];
        for (int r = 0; r < rounds; r++)
            for (int j = 0; j < nrows; j++) {
                res[j][r] = run(rows[j], pairs[pi], warm_ns, window_ns, &us[j][r]);
                failed |= res[j][r] < 0;
            }
        printf("%d pairs: round trips/s in each round, median ratio to %s\n", pairs[pi],
               row_name[rows[0]]);
        for (int j = 0; j < nrows; j++) {
            double ratio[MAX_ROUND];
            int nr = 0;
            printf("  %-15s", row_name[rows[j]]);
            for (int r = 0; r < rounds; r++) {
                if (res[j][r] > 0)
                    printf(" %7.0fk", res[j][r] / 1000);
                else
                    printf(" %8s", res[j][r] == 0 ? "n/a" : "failed");
                if (res[j][r] > 0 && res[0][r] > 0) ratio[nr++] = res[j][r] / res[0][r];
            }
            qsort(ratio, (size_t)nr, sizeof ratio[0], cmp_double);
            if (nr)
                printf("   %.2f", nr % 2 ? ratio[nr / 2] : (ratio[nr / 2 - 1] + ratio[nr / 2]) / 2);
            printf("\n");
        }
        for (int j = 0; j < nrows && usage; j++) {
            printf("  %-15s per round trip, each round: user ns / sys ns / voluntary / "
                   "involuntary switches\n",
                   row_name[rows[j]]);
            for (int r = 0; r < rounds; r++)
                if (res[j][r] > 0)
                    printf("  %15s %6.0f %6.0f %5.2f %5.2f   (%llu round trips)\n", "",
                           us[j][r].user_ns, us[j][r].sys_ns, us[j][r].vcs, us[j][r].ivcs,
                           (unsigned long long)us[j][r].all);
        }
        fflush(stdout);
    }
    return failed ? 1 : 0;
}
