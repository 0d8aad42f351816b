// SPDX-License-Identifier: MIT
/*
 * test_shm_large.c — large records move in chunks with a word of progress each way
 * (src/shm/ring.h: wprog, rprog; issue 15, item 2), from real processes through the
 * shared mapping:
 *  1. A receive waiting on a record that is being written keeps spinning while the
 *     producer's progress grows, instead of sleeping: a 1 MiB record written over ~320 ms
 *     (progress every 10 ms) is received with at most 20 sleeps where the spin budget is
 *     100 ms (before: a sleep per 5 ms slice once the budget ran out, 40 or more). 0 is
 *     what a quiet machine gives, also under the sanitizers; a loaded one may hold the
 *     writer back longer than a budget, after which the adaptive budget (wait.h) is
 *     shorter and the next delays cost sleeps too: 12 were seen once (ASan, load ~17,
 *     right after a build).
 *  2. A producer that lies about its progress (it grows forever, nothing is committed)
 *     buys a bounded spin: the receive sleeps, ends with -ETIMEDOUT at its deadline, and
 *     spends a small part of its wait on the CPU (without the bound: it spun for 0.8 s of
 *     a 1 s wait, or, where the lie changes faster than a wait's first look, never
 *     returned at all).
 *  3. The same for a consumer that lies about its copy-out progress to a producer
 *     waiting for room: -ETIMEDOUT, slept, little CPU.
 *  4. Slot clears in batches (issue 15, item 5) keep stale bytes of earlier laps from
 *     ever passing for a record (the stale-laps case below).
 */
#include "testutil.h"

#include "ferry/ferry.h"
#include "shm/ring.h"
#include "transport/shm_chan.h"

#include <signal.h>
#include <sys/prctl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define RING ((size_t)4 << 20)
#define BIG  ((size_t)1 << 20)
#define MS   1000000LL

static void make_pair(int64_t spin_ns, ferry_chan **a, ferry_chan **b)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.ring_bytes = RING;
    if (spin_ns) o.spin_ns = spin_ns;
    CHECK_EQ(ferry_pair(&o, a, b), 0);
}

static int64_t cpu_ns(void)
{
    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* In a liar child, which never ends by itself: die with the test, whatever happens to it. */
static void die_with_parent(pid_t parent)
{
    CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL) == 0);
    if (getppid() != parent) _exit(1);
}

static void kill_wait(pid_t pid)
{
    int st;
    kill(pid, SIGKILL);
    CHECK(waitpid(pid, &st, 0) == pid);
}

/* A short busy loop (well under a microsecond): a liar's progress changes faster than
 * the shortest spin budget (wait.c: the budget shrinks to 1/16 after failed spins). */
static void relax(void)
{
    for (volatile int i = 0; i < 50; i++) {
    }
}

static void test_progress_keeps_spinning(void)
{
    ferry_chan *a, *b;
    make_pair(100 * MS, &a, &b);
    uint8_t *buf = malloc(BIG);
    CHECK(buf != NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_chan_close(a);
        shm_tx *t = &((shm_chan *)b)->tx;
        /* A slow writer of record 1: progress every 10 ms, for 320 ms. */
        for (uint64_t k = 1; k <= BIG / FERRY__CHUNK; k++) {
            atomic_store_explicit(&t->ctl->wprog, FERRY__PROG(t->seq + 1, k * FERRY__CHUNK),
                                  memory_order_relaxed);
            usleep(10000);
        }
        memset(buf, 0x5a, BIG);
        CHECK_EQ(ferry_send(b, buf, BIG, 5000 * MS), 0);
        ferry_chan_close(b);
        _exit(0);
    }
    ferry_chan_close(b);
    CHECK_EQ(ferry_recv(a, buf, BIG, 5000 * MS), (long long)BIG);
    CHECK(buf[0] == 0x5a && buf[BIG - 1] == 0x5a);
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    printf("slow writer: %llu sleeps\n", (unsigned long long)st.recv_waits);
    CHECK(st.recv_waits <= 20);
    ferry_chan_close(a);
    wait_ok(pid);
    free(buf);
}

static void test_lying_producer(void)
{
    ferry_chan *a, *b;
    make_pair(0, &a, &b); /* the default spin budget */
    pid_t parent = getpid(), pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        die_with_parent(parent);
        ferry_chan_close(a);
        shm_tx *t = &((shm_chan *)b)->tx;
        for (uint32_t i = 1;; i++) { /* "still writing record 1", forever */
            atomic_store_explicit(&t->ctl->wprog, FERRY__PROG(1, i), memory_order_relaxed);
            relax();
        }
    }
    ferry_chan_close(b);
    char buf[64];
    int64_t cpu0 = cpu_ns();
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, 1000 * MS), -ETIMEDOUT);
    int64_t cpu = cpu_ns() - cpu0;
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    printf("lying producer: %llu sleeps, %lld ms of CPU in a 1 s wait\n",
           (unsigned long long)st.recv_waits, (long long)(cpu / MS));
    /* It slept (about 190 times on a quiet machine; a process starved by a loaded one
     * may get through only a few of its 5 ms slices: fewer than 5 seen once under ASan, three
     * copies of this test at once) and spent little CPU: it stopped spinning. */
    CHECK(st.recv_waits >= 1);
    CHECK(cpu < 50 * MS);
    kill_wait(pid);
    ferry_chan_close(a);
}

static void test_lying_consumer(void)
{
    ferry_chan *a, *b;
    /* A long spin budget (its floor after failed spins, 1/16 of it, still outlasts a
     * liar's hiccups on a loaded machine): only the bound can stop the spinning. A small
     * ring: the bound, 2 * 256 KiB / FERRY__CHUNK + 2 = 18 extensions, each at most a
     * spin budget, is well under the CPU allowed below. */
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.spin_ns = 1 * MS;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    static uint8_t buf[64 << 10];
    /* Fill the ring: three records of 64 KiB + 64 and the free slot take all but
     * 128 bytes of 256 KiB. (Not with FERRY_NOW sends until one fails: each of those
     * would shrink the spin budget.) */
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_send(a, buf, sizeof buf, 1000 * MS), 0);
    pid_t parent = getpid(), pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        die_with_parent(parent);
        ferry_chan_close(a);
        shm_rx *r = &((shm_chan *)b)->rx;
        for (uint32_t i = 1;; i++) { /* "copying out", forever, and never taking */
            atomic_store_explicit(&r->ctl->rprog, FERRY__PROG(1, i), memory_order_relaxed);
            relax();
        }
    }
    ferry_chan_close(b);
    int64_t cpu0 = cpu_ns();
    CHECK_EQ(ferry_send(a, buf, sizeof buf, 1000 * MS), -ETIMEDOUT);
    int64_t cpu = cpu_ns() - cpu0;
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    printf("lying consumer: %llu sleeps, %lld ms of CPU in a 1 s wait\n",
           (unsigned long long)st.send_waits, (long long)(cpu / MS));
    CHECK(st.send_waits >= 1); /* as in test_lying_producer */
    CHECK(cpu < 50 * MS);
    kill_wait(pid);
    ferry_chan_close(a);
}

/* Slot clears (per record, or in batches ahead of the head: shm_tx.c) across many laps
 * of a small ring: payloads full of words that look like commit words the consumer will
 * expect a lap later, records of every size (so later slots fall inside earlier
 * payloads), loans larger than what they commit (the next slot lies in bytes the caller
 * wrote), the ring kept partly full (so a batch often finds no free room). Every
 * message must come back intact, none early, no -EBADMSG. */
static void test_stale_laps(void)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.ring_bytes = 4096;
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    static uint64_t out[128], in[128];
    uint64_t seq = 0, got = 0; /* messages sent and received (seq counts records) */
    for (int round = 0; round < 20000; round++) {
        int burst = 1 + round % 5;
        for (int k = 0; k < burst; k++) {
            size_t words = 1 + (size_t)(round * 37 + k * 11) % 120;
            for (size_t j = 0; j < words; j++) out[j] = seq + 1 + j % 32; /* future seqs */
            out[0] = seq;
            int rc;
            if (round % 4 == 3) {
                /* A loan larger than what is committed, its whole buffer written: the
                 * slot after the record lies in bytes the caller wrote. */
                void *p;
                rc = ferry_loan(a, sizeof out, &p, FERRY_NOW);
                if (rc == 0) {
                    for (size_t j = 0; j < 128; j++) ((uint64_t *)p)[j] = seq + 1 + j % 32;
                    memcpy(p, out, words * 8);
                    rc = ferry_commit(a, 0, words * 8);
                }
            } else {
                rc = ferry_send(a, out, words * 8, FERRY_NOW);
            }
            if (rc == -EAGAIN) break; /* full: drain below */
            CHECK_EQ(rc, 0);
            seq++;
        }
        while (got < seq - (round % 3 == 0 ? 0 : (seq - got) / 2)) {
            ssize_t n = ferry_recv(b, in, sizeof in, FERRY_NOW);
            CHECK(n >= 8 && n % 8 == 0);
            CHECK_EQ(in[0], got);
            for (size_t j = 1; j < (size_t)n / 8; j++) CHECK_EQ(in[j], got + 1 + j % 32);
            got++;
        }
        /* All taken: the slot after the last record must read as empty (cleared). */
        if (got == seq) CHECK_EQ(ferry_recv(b, in, sizeof in, FERRY_NOW), -EAGAIN);
    }
    CHECK(seq > 20000);
    ferry_chan_close(a);
    ferry_chan_close(b);
}

int main(void)
{
    int before = fd_count();
    test_stale_laps();
    test_progress_keeps_spinning();
    test_lying_producer();
    test_lying_consumer();
    CHECK_EQ(fd_count(), before);
    printf("ok\n");
    return 0;
}
