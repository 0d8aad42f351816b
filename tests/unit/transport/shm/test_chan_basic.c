// SPDX-License-Identifier: MIT
/*
 * test_chan_basic — the basic contract of a shared-memory channel made by ferry_pair()
 * and split across fork():
 *  - ferry_chan_opts_init() fills the documented defaults; a default channel's
 *    ferry_chan_max_msg() is ring_bytes / 2 - 128 = 130944 on both ends;
 *  - ping-pong: 100 round trips, each echo exact in length and content;
 *  (ordering, sizes and too-small buffers: conformance "order" and "sizes", on shm
 *  listen and pair and every other transport;)
 *  - duplex: both processes send 5,000 messages while receiving 5,000 (a sender thread
 *    and a receiving thread on each end), both streams in order;
 *  - close: what was sent before ferry_chan_close() is still received, then -EPIPE on
 *    receive and send;
 *  - no fd leaks in either process.
 */
#include "chantest.h"

#include <pthread.h>

#define PINGS    100
#define DUPLEX_N 5000
#define CLOSE_N  10

/* This process's end ch is a default channel. */
static void check_max_msg(ferry_chan *ch)
{
    CHECK_EQ(ferry_chan_max_msg(ch), 256 * 1024 / 2 - 128);
}

static void send_seq(ferry_chan *ch, uint64_t seq, size_t len)
{
    uint8_t buf[512];
    CHECK(len <= sizeof buf);
    fill_seq(buf, len, seq);
    CHECK_EQ(ferry_send(ch, buf, len, T5S), 0);
}

static void recv_seq(ferry_chan *ch, uint64_t seq, size_t len)
{
    uint8_t buf[512];
    ssize_t n = ferry_recv(ch, buf, sizeof buf, T5S);
    CHECK_EQ(n, (ssize_t)len);
    CHECK(check_seq(buf, len, seq));
}

/* An 8-byte acknowledgement carrying a value. */
static void send_ack(ferry_chan *ch, uint64_t v)
{
    CHECK_EQ(ferry_send(ch, &v, sizeof v, T5S), 0);
}

static void recv_ack(ferry_chan *ch, uint64_t v)
{
    uint64_t got = 0;
    CHECK_EQ(ferry_recv(ch, &got, sizeof got, T5S), (ssize_t)sizeof got);
    CHECK_EQ(got, v);
}

/* ---------------------------------------------------------------- duplex */

struct sender_arg {
    ferry_chan *ch;
    uint64_t first;
};

static void *duplex_sender(void *p)
{
    struct sender_arg *a = p;
    for (uint64_t i = 0; i < DUPLEX_N; i++) send_seq(a->ch, a->first + i, seq_len(i, 200));
    return NULL;
}

/* Send DUPLEX_N (seq from my_first) from a thread while receiving DUPLEX_N (seq from
 * peer_first) on this thread. */
static void duplex(ferry_chan *ch, uint64_t my_first, uint64_t peer_first)
{
    pthread_t t;
    struct sender_arg arg = {ch, my_first};
    CHECK_EQ(pthread_create(&t, NULL, duplex_sender, &arg), 0);
    for (uint64_t i = 0; i < DUPLEX_N; i++) recv_seq(ch, peer_first + i, seq_len(i, 200));
    CHECK_EQ(pthread_join(t, NULL), 0);
}

/* ---------------------------------------------------------------- child */

/* The peer needs no ctl: it is driven by the channel itself. */
static void child_main(ferry_chan *b, ctl *c)
{
    (void)c;
    uint8_t buf[512];
    check_max_msg(b);

    STAGE("child: ping-pong");
    for (int i = 0; i < PINGS; i++) {
        ssize_t n = ferry_recv(b, buf, sizeof buf, T5S);
        CHECK_EQ(n, (ssize_t)seq_len((uint64_t)i, 56));
        CHECK(check_seq(buf, (size_t)n, (uint64_t)i));
        CHECK_EQ(ferry_send(b, buf, (size_t)n, T5S), 0);
    }

    STAGE("child: duplex");
    duplex(b, 2000000, 1000000);
    send_ack(b, 5);

    STAGE("child: close");
    for (uint64_t s = 0; s < CLOSE_N; s++) recv_seq(b, 3000000 + s, 16);
    CHECK_EQ(ferry_recv(b, buf, sizeof buf, T5S), -EPIPE);
    CHECK_EQ(ferry_recv(b, buf, sizeof buf, FERRY_NOW), -EPIPE);
    CHECK_EQ(ferry_send(b, "x", 1, T5S), -EPIPE);
}

/* ---------------------------------------------------------------- parent */

static void parent_main(ferry_chan *a, ctl *c)
{
    (void)c;
    check_max_msg(a);

    STAGE("parent: ping-pong");
    for (int i = 0; i < PINGS; i++) {
        size_t len = seq_len((uint64_t)i, 56);
        send_seq(a, (uint64_t)i, len);
        recv_seq(a, (uint64_t)i, len);
    }

    STAGE("parent: duplex");
    duplex(a, 1000000, 2000000);
    recv_ack(a, 5);

    STAGE("parent: close");
    for (uint64_t s = 0; s < CLOSE_N; s++) send_seq(a, 3000000 + s, 16);
}

int main(void)
{
    watchdog_arm();

    STAGE("defaults");
    ferry_chan_opts o;
    memset(&o, 0x5A, sizeof o);
    ferry_chan_opts_init(&o);
    CHECK_EQ(o.capacity, FERRY_CAP_RING);
    CHECK_EQ(o.flags, 0);
    CHECK_EQ(o.ring_bytes, 256 * 1024);
    CHECK_EQ(o.mem_cap, 64 << 20);
    CHECK_EQ(o.spin_ns, 50000);
    CHECK_EQ(o.mode, 0600);

    STAGE("pair");
    int base = fd_count();
    ferry_chan *a = NULL, *b = NULL;
    CHECK_EQ(ferry_pair(NULL, &a, &b), 0);
    CHECK(a != NULL && b != NULL && a != b);
    CHECK_EQ(ferry_chan_max_msg(a), 256 * 1024 / 2 - 128);
    CHECK_EQ(ferry_chan_max_msg(b), ferry_chan_max_msg(a));
    ferry_chan_close(a);
    ferry_chan_close(b);
    CHECK_EQ(fd_count(), base);

    run_pair(NULL, child_main, parent_main);
    printf("test_chan_basic: ok\n");
    return 0;
}
