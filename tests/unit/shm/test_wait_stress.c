// SPDX-License-Identifier: MIT
/*
 * test_wait_stress.c — the sleep/wake protocol of shm waiting (src/shm/wait.c) under
 * stress: 200,000 messages (FERRY_STRESS_MSGS) through one shm channel with a small ring,
 * first between two threads of this process (so ThreadSanitizer sees both sides), then
 * between two processes. The sender sends windows of 1, 8 or 64 messages (random sizes up
 * to 200 bytes; capacity 4, so the sender waits for takes) and the receiver answers each
 * window with the last message of it; in phases of 500 messages one side or the other sleeps a
 * random 20..300 us before some of its calls, so every wait (data, room, replies) alternates
 * between spinning and sleeping, the spin budget decays and comes back, and the adaptive
 * fence switches modes (its flag goes up and down) many times.
 *
 * A lost wake-up must fail, not hide behind the 5 ms slice: the slice is lengthened to an
 * hour (ferry__wait_slice_ns), so a waiter nobody wakes sleeps until its 10 s deadline
 * and the call returns -ETIMEDOUT, which the checks report. Every message is checked
 * (order, size, content).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include "ferry/ferry.h"
#include "shm/wait.h"
#include "transport/shm_chan.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define TMO   (10LL * 1000 * 1000 * 1000)
#define PHASE 500

static long n_msgs = 200000;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static size_t size_of(long i)
{
    return 8 + mix((uint64_t)i) % 193;
}

/* Who sleeps in phase p: 0 nobody, 1 the sender, 2 the receiver, 3 both. */
static int sleeper(long i)
{
    return (int)(mix((uint64_t)(i / PHASE) + 77) % 4);
}

/* Maybe sleep before message i on side `me` (1 sender, 2 receiver): in a phase where that
 * side sleeps, a random eighth of its calls sleep 10..150 us. */
static void maybe_sleep(long i, int me, uint64_t *rng)
{
    *rng = mix(*rng + 0x9e3779b97f4a7c15ULL);
    if (!(sleeper(i) & me) || (*rng & 7)) return;
    struct timespec ts = {0, (long)(10000 + (*rng >> 8) % 140000)};
    nanosleep(&ts, NULL);
}

static long window_of(long i)
{
    static const long W[3] = {1, 8, 64};
    return W[mix((uint64_t)(i / PHASE) + 5) % 3];
}

static void fill(uint8_t *p, size_t len, long i)
{
    memcpy(p, &i, sizeof i);
    for (size_t k = sizeof i; k < len; k++) p[k] = (uint8_t)(i * 7 + (long)k);
}

static void check(const uint8_t *p, long n, long i)
{
    CHECK_EQ(n, (long)size_of(i));
    long got;
    memcpy(&got, p, sizeof got);
    CHECK_EQ(got, i);
    for (long k = (long)sizeof i; k < n; k++) CHECK_EQ(p[k], (uint8_t)(i * 7 + k));
}

/* How often each side's receive waits asked their sender to fence (mode changes). */
typedef struct modes {
    long switches, fenced;
} modes;

static void note_mode(ferry_chan *ch, int *last, modes *m)
{
    int asked = ((shm_chan *)ch)->rx.spin.asked;
    if (asked != *last) m->switches++;
    if (asked) m->fenced++;
    *last = asked;
}

/* The sender: a window of messages, then the receiver's answer (the window's last). */
static void sender(ferry_chan *a, modes *m)
{
    uint8_t buf[256], in[256];
    uint64_t rng = 1;
    int last = 0;
    for (long i = 0; i < n_msgs;) {
        long w = window_of(i), end = i + w < n_msgs ? i + w : n_msgs;
        for (long k = i; k < end; k++) {
            maybe_sleep(k, 1, &rng);
            fill(buf, size_of(k), k);
            CHECK_EQ(ferry_send(a, buf, size_of(k), TMO), 0);
        }
        long n = (long)ferry_recv(a, in, sizeof in, TMO);
        check(in, n, end - 1);
        if (i / PHASE != end / PHASE) note_mode(a, &last, m);
        i = end;
    }
}

static void receiver(ferry_chan *b, modes *m)
{
    uint8_t in[256];
    uint64_t rng = 2;
    int last = 0;
    for (long i = 0; i < n_msgs;) {
        long w = window_of(i), end = i + w < n_msgs ? i + w : n_msgs, n = 0;
        for (long k = i; k < end; k++) {
            maybe_sleep(k, 2, &rng);
            n = (long)ferry_recv(b, in, sizeof in, TMO);
            check(in, n, k);
        }
        CHECK_EQ(ferry_send(b, in, (size_t)n, TMO), 0);
        if (i / PHASE != end / PHASE) note_mode(b, &last, m);
        i = end;
    }
}

struct targ {
    ferry_chan *b;
    modes m;
};

static void *recv_thread(void *arg)
{
    struct targ *t = arg;
    receiver(t->b, &t->m);
    return NULL;
}

static void make_pair(ferry_chan **a, ferry_chan **b)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.ring_bytes = 4096;
    o.max_msg = 256;
    o.capacity = 4;
    CHECK_EQ(ferry_pair(&o, a, b), 0);
}

static void run_threads(void)
{
    ferry_chan *a, *b;
    make_pair(&a, &b);
    struct targ t = {b, {0, 0}};
    pthread_t th;
    modes m = {0, 0};
    CHECK_EQ(pthread_create(&th, NULL, recv_thread, &t), 0);
    sender(a, &m);
    CHECK_EQ(pthread_join(th, NULL), 0);
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(b, &st), 0);
    printf("threads: %ld messages, receiver slept %llu times, fence mode switches %ld/%ld "
           "(sender/receiver)\n",
           n_msgs, (unsigned long long)st.recv_waits, m.switches, t.m.switches);
    CHECK(st.recv_waits > 0);             /* the sleeping phases made it sleep */
    CHECK(m.switches + t.m.switches > 0); /* and the fence changed mode */
    ferry_chan_close(a);
    ferry_chan_close(b);
}

static void run_processes(void)
{
    ferry_chan *a, *b;
    make_pair(&a, &b);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        modes m = {0, 0};
        ferry_chan_close(a);
        receiver(b, &m);
        ferry_chan_close(b);
        _exit(0);
    }
    ferry_chan_close(b);
    modes m = {0, 0};
    sender(a, &m);
    printf("processes: %ld messages, fence mode switches %ld (sender)\n", n_msgs, m.switches);
    ferry_chan_close(a);
    wait_ok(pid);
}

int main(void)
{
    const char *e = getenv("FERRY_STRESS_MSGS");
    if (e && atol(e) > 0) n_msgs = atol(e);
    int fds = fd_count();
    ferry__wait_slice_ns = (int64_t)3600 * 1000 * 1000 * 1000; /* see the top comment */
    run_threads();
    run_processes();
    CHECK_EQ(fd_count(), fds);
    printf("ok: wait stress\n");
    return 0;
}
