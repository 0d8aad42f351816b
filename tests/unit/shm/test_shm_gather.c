// SPDX-License-Identifier: MIT
/*
 * test_shm_gather.c — gathering on the shm channel (src/transport/shm_chan.h,
 * FERRY__GATHER_*): a consumer that has read a stream up to its producer waits for
 * records to gather (probing the ring ahead as a hint), and a producer that finds the
 * ring full waits for room to gather. Neither may change what is delivered or when a call
 * gives up:
 *  1. A stream in bursts of changing sizes, across a small ring (wraps) and the default
 *     one, from a real process: every message arrives, in order, intact.
 *  2. The probe is only a hint: a producer that writes the very seq the probe expects
 *     ahead of the scan position, and commits nothing, gets nothing received; the
 *     receive ends with -ETIMEDOUT at its deadline, and the records committed after that
 *     are received as always.
 *  3. A producer's gather ends when its deadline does, and never holds back a send that
 *     has room: with the ring full and a consumer that takes one message and stops, the
 *     next send goes through (one thread; nobody takes anything more).
 */
#include "testutil.h"

#include "ferry/ferry.h"
#include "shm/ring.h"
#include "transport/shm_chan.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define MS 1000000LL

static void make_pair(size_t ring, ferry_chan **a, ferry_chan **b)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    if (ring) o.ring_bytes = ring;
    CHECK_EQ(ferry_pair(&o, a, b), 0);
}

/* The length of message i of the stream: runs of one size (so the consumer's probe, which
 * takes the next records to be as large as the last, is right for a while), then another. */
static size_t len_of(uint32_t i)
{
    static const size_t sizes[] = {8, 64, 24, 200, 64, 1000, 0, 33};
    return sizes[(i / 300) % (sizeof sizes / sizeof sizes[0])];
}

static void fill(unsigned char *p, size_t len, uint32_t i)
{
    for (size_t k = 0; k < len; k++) p[k] = (unsigned char)(i * 7 + k);
}

static void test_stream(size_t ring, uint32_t n)
{
    ferry_chan *a, *b;
    make_pair(ring, &a, &b);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_chan_close(a);
        unsigned char buf[1024];
        for (uint32_t i = 0; i < n; i++) {
            size_t len = len_of(i);
            fill(buf, len, i);
            if (ferry_sendmsg(b, &(ferry_msg){.type = i, .data = buf, .len = len}, 5000 * MS))
                _exit(1);
            if (i % 500 == 499) /* a pause between bursts: the consumer catches up */
                for (volatile int k = 0; k < 20000; k++) {
                }
        }
        ferry_chan_close(b);
        _exit(0);
    }
    ferry_chan_close(b);
    unsigned char buf[1024], want[1024];
    for (uint32_t i = 0; i < n; i++) {
        ferry_msg m = {.data = buf, .cap = sizeof buf};
        ssize_t got = ferry_recvmsg(a, &m, 0, 5000 * MS);
        CHECK_EQ(got, (ssize_t)len_of(i));
        CHECK_EQ(m.type, (int64_t)i);
        fill(want, len_of(i), i);
        CHECK(memcmp(buf, want, len_of(i)) == 0);
    }
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, 5000 * MS), -EPIPE);
    ferry_chan_close(a);
    wait_ok(pid);
}

static void test_probe_is_a_hint(void)
{
    ferry_chan *a, *b;
    make_pair(0, &a, &b);
    unsigned char buf[64] = {1};
    /* A stream read up to the producer: enough receives in a row that found their record. */
    for (int i = 0; i < 20; i++) CHECK_EQ(ferry_send(a, buf, sizeof buf, FERRY_NOW), 0);
    for (int i = 0; i < 20; i++) CHECK_EQ(ferry_recv(b, buf, sizeof buf, FERRY_NOW), 64);
    /* The lie: the seq the probe waits for, where the probe looks, nothing committed. */
    shm_chan *rc = (shm_chan *)b;
    uint64_t fp = ferry__rec_footprint(64), k = FERRY__GATHER_AHEAD;
    ferry__rec *probe =
        (ferry__rec *)(rc->rx.cur->data + ((rc->rx.scan + k * fp) & (rc->rx.cur->size - 1)));
    atomic_store(&probe->seq, rc->rx.expect + k);
    CHECK_EQ(ferry_recv(b, buf, sizeof buf, 20 * MS), -ETIMEDOUT);
    atomic_store(&probe->seq, 0);
    /* Real records after it: received as always. */
    CHECK_EQ(ferry_send(a, buf, 10, FERRY_NOW), 0);
    CHECK_EQ(ferry_recv(b, buf, sizeof buf, 20 * MS), 10);
    ferry_chan_close(a);
    ferry_chan_close(b);
}

static void test_room(void)
{
    ferry_chan *a, *b;
    make_pair(4096, &a, &b);
    unsigned char buf[64] = {2};
    int sent = 0;
    while (ferry_send(a, buf, sizeof buf, FERRY_NOW) == 0) sent++;
    CHECK(sent > 8);
    /* Full, nobody takes: the gather and the wait end at the deadline. */
    CHECK_EQ(ferry_send(a, buf, sizeof buf, 5 * MS), -ETIMEDOUT);
    /* One taken, then nothing more: the send that has room goes through. */
    CHECK_EQ(ferry_recv(b, buf, sizeof buf, FERRY_NOW), 64);
    CHECK_EQ(ferry_send(a, buf, sizeof buf, 2000 * MS), 0);
    for (int i = 0; i < sent; i++) CHECK_EQ(ferry_recv(b, buf, sizeof buf, FERRY_NOW), 64);
    CHECK_EQ(ferry_recv(b, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    ferry_chan_close(a);
    ferry_chan_close(b);
}

int main(void)
{
    int before = fd_count();
    test_stream(4096, 20000);
    test_stream(0, 200000);
    test_probe_is_a_hint();
    test_room();
    CHECK_EQ(fd_count(), before);
    printf("ok\n");
    return 0;
}
