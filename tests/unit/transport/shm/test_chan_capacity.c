// SPDX-License-Identifier: MIT
/*
 * test_chan_capacity — the shm-specific limits of the capacity modes, with a forked peer
 * (synchronised through ctl pipes, never through timing alone):
 *  (capacity 4 and capacity 0: conformance "capacity 4" / "capacity 0", on every
 *  transport with the mode;)
 *  - FERRY_CAP_RING with a 4096-byte ring: FERRY_NOW sends of 100 bytes succeed until the
 *    ring is full (-EAGAIN; between 10 and 40 of them), a 20 ms send is -ETIMEDOUT,
 *    and the peer receives them all in order;
 *  - FERRY_UNBOUNDED with a 4096-byte ring and a 1 MiB mem_cap: 2,000 FERRY_NOW sends of
 *    100 bytes with nobody receiving all succeed (stats.grows > 0) and arrive in order;
 *    then sends fill it until -ENOBUFS (a bounded loop), -ENOBUFS repeats, everything
 *    sent before arrives in order, and once drained a send works again;
 *  - no fd leaks in either process.
 */
#include "chantest.h"

#define PAYLOAD 100

static void send_n(ferry_chan *ch, uint64_t seq, int64_t timeout, int expect)
{
    uint8_t buf[PAYLOAD];
    fill_seq(buf, sizeof buf, seq);
    CHECK_EQ(ferry_send(ch, buf, sizeof buf, timeout), expect);
}

static void recv_n(ferry_chan *ch, uint64_t seq, int64_t timeout)
{
    uint8_t buf[PAYLOAD + 64];
    ssize_t n = ferry_recv(ch, buf, sizeof buf, timeout);
    if (n != PAYLOAD)
        fprintf(stderr, "recv of seq %" PRIu64 ": %zd (%s)\n", seq, n,
                n < 0 ? ferry_strerror((int)n) : "length");
    CHECK_EQ(n, PAYLOAD);
    CHECK(check_seq(buf, PAYLOAD, seq));
}

static void recv_none(ferry_chan *ch)
{
    uint8_t buf[PAYLOAD + 64];
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, FERRY_NOW), -EAGAIN);
}

/* ---------------------------------------------------------------- FERRY_CAP_RING */

static void ring_child(ferry_chan *b, ctl *c)
{
    STAGE("ring child");
    ctl_expect(c, '1');
    uint64_t n = 0;
    CHECK_EQ(read(c->rd, &n, sizeof n), (ssize_t)sizeof n);
    for (uint64_t s = 0; s < n; s++) recv_n(b, s, T5S);
    recv_none(b);
    ctl_put(c, 'a');
    recv_n(b, n, T5S);
    recv_none(b);
    ctl_put(c, 'b');
}

static void ring_parent(ferry_chan *a, ctl *c)
{
    STAGE("ring parent");
    uint64_t n = 0;
    int r = 0;
    while (n < 1000) {
        uint8_t buf[PAYLOAD];
        fill_seq(buf, sizeof buf, n);
        r = ferry_send(a, buf, sizeof buf, FERRY_NOW);
        if (r != 0) break;
        n++;
    }
    printf("FERRY_CAP_RING, 4096-byte ring: %" PRIu64 " messages of %d bytes queued\n", n, PAYLOAD);
    CHECK_EQ(r, -EAGAIN);
    CHECK(n >= 10 && n <= 40);
    int64_t t0 = now_ns();
    send_n(a, 999, 20 * MS, -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 20 * MS);
    ctl_put(c, '1');
    CHECK_EQ(write(c->wr, &n, sizeof n), (ssize_t)sizeof n);
    ctl_expect(c, 'a');
    send_n(a, n, FERRY_NOW, 0); /* room again */
    ctl_expect(c, 'b');
}

/* ---------------------------------------------------------------- FERRY_UNBOUNDED */

#define UNB_FIRST 2000

static void unb_child(ferry_chan *b, ctl *c)
{
    STAGE("unbounded child: first 2000");
    ctl_expect(c, '1');
    for (uint64_t s = 0; s < UNB_FIRST; s++) recv_n(b, s, T5S);
    recv_none(b);
    ctl_put(c, 'a');

    STAGE("unbounded child: fill to cap");
    ctl_expect(c, '2');
    uint64_t n = 0;
    CHECK_EQ(read(c->rd, &n, sizeof n), (ssize_t)sizeof n);
    for (uint64_t s = 0; s < n; s++) recv_n(b, 100000 + s, T5S);
    recv_none(b);
    ctl_put(c, 'b');
    recv_n(b, 999999, T5S);
    recv_none(b);
    ctl_put(c, 'c');
}

static void unb_parent(ferry_chan *a, ctl *c)
{
    STAGE("unbounded parent: first 2000");
    for (uint64_t s = 0; s < UNB_FIRST; s++) send_n(a, s, FERRY_NOW, 0);
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    printf("FERRY_UNBOUNDED: 2000 x %d bytes queued, grows = %" PRIu64 "\n", PAYLOAD, st.grows);
    CHECK(st.grows > 0);
    CHECK_EQ(st.sent_msgs, UNB_FIRST);
    ctl_put(c, '1');
    ctl_expect(c, 'a');

    STAGE("unbounded parent: fill to cap");
    uint64_t n = 0;
    int r = 0;
    while (n < 200000) {
        uint8_t buf[PAYLOAD];
        fill_seq(buf, sizeof buf, 100000 + n);
        r = ferry_send(a, buf, sizeof buf, FERRY_NOW);
        if (r != 0) break;
        n++;
    }
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    printf("FERRY_UNBOUNDED, mem_cap 1 MiB: %" PRIu64 " more messages queued before %s, "
           "grows = %" PRIu64 "\n",
           n, ferry_strerror(r), st.grows);
    CHECK_EQ(r, -ENOBUFS);
    CHECK(n > 1000); /* 1 MiB holds several thousand 100-byte messages */
    send_n(a, 999998, FERRY_NOW, -ENOBUFS);
    send_n(a, 999998, 10 * MS, -ENOBUFS); /* never blocks: fails at once */
    ctl_put(c, '2');
    CHECK_EQ(write(c->wr, &n, sizeof n), (ssize_t)sizeof n);
    ctl_expect(c, 'b');
    send_n(a, 999999, FERRY_NOW, 0); /* drained: room again */
    ctl_expect(c, 'c');
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    CHECK_EQ(st.sent_msgs, UNB_FIRST + n + 1);
    CHECK_EQ(st.drops, 0);
}

int main(void)
{
    watchdog_arm();
    ferry_chan_opts o;

    ferry_chan_opts_init(&o);
    o.capacity = FERRY_CAP_RING;
    o.ring_bytes = 4096;
    run_pair(&o, ring_child, ring_parent);

    ferry_chan_opts_init(&o);
    o.capacity = FERRY_UNBOUNDED;
    o.ring_bytes = 4096;
    o.mem_cap = 1 << 20;
    run_pair(&o, unb_child, unb_parent);

    printf("test_chan_capacity: ok\n");
    return 0;
}
