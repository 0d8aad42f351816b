// SPDX-License-Identifier: MIT
/*
 * test_chan_stats — ferry_chan_stats() counters are exact, on both ends of a forked pair:
 *  - a fresh channel has every counter 0 on both ends; ferry_chan_stats(ch, NULL) ->
 *    -EINVAL;
 *  - parent -> child: 100 ferry_send of sizes 0, 7, 14, ... (plus refused -EMSGSIZE
 *    sends, not counted), 3 loan/commit (loaned 100, committed 10, 20, 30 bytes) and 2
 *    ferry_sendmsg (11 and 13 bytes): the sender's sent_msgs = 105 and sent_bytes = the
 *    exact sum right after sending; the receiver (ferry_recv, peek/release, recvmsg; a
 *    receive refused with -EMSGSIZE is not counted) has recv_msgs = 105 and recv_bytes =
 *    the same sum;
 *  - child -> parent: 50 messages of sizes 0, 3, 6, ...: exact on both ends, and the
 *    other direction's counters are unchanged;
 *  - drops and grows stay 0 on a default channel;
 *  - a receive that timed out after 100 ms counts in recv_waits; a receiver that was
 *    asleep when the message came counts in recv_waits and the sender that woke it
 *    counts in wakeups;
 *  - no fd leaks in either process.
 */
#include "chantest.h"

#define N_SEND 100
#define N_BACK 50

static uint64_t sum_send(void)
{
    uint64_t s = 0;
    for (int i = 0; i < N_SEND; i++) s += (uint64_t)i * 7;
    return s + 10 + 20 + 30 + 11 + 13;
}

static uint64_t sum_back(void)
{
    uint64_t s = 0;
    for (int i = 0; i < N_BACK; i++) s += (uint64_t)i * 3;
    return s;
}

static void check_stats(ferry_chan *ch, uint64_t sm, uint64_t sb, uint64_t rm, uint64_t rb)
{
    ferry_chan_counters st;
    memset(&st, 0xEE, sizeof st);
    st.size = sizeof st; /* prepared (ferry.h "Sized structs"), every counter garbage */
    CHECK_EQ(ferry_chan_stats(ch, &st), 0);
    CHECK_EQ(st.sent_msgs, sm);
    CHECK_EQ(st.sent_bytes, sb);
    CHECK_EQ(st.recv_msgs, rm);
    CHECK_EQ(st.recv_bytes, rb);
    CHECK_EQ(st.drops, 0);
    CHECK_EQ(st.grows, 0);
}

static void child_main(ferry_chan *b, ctl *c)
{
    static uint8_t buf[1024];
    STAGE("child: receive");
    ctl_expect(c, '1');
    check_stats(b, 0, 0, 0, 0);                       /* sent by the peer, not yet taken */
    CHECK_EQ(ferry_recv(b, buf, sizeof buf, T5S), 0); /* size 0 */
    CHECK_EQ(ferry_recv(b, buf, 3, T5S), -EMSGSIZE);  /* size 7: refused, not counted */
    for (int i = 1; i < N_SEND; i++)
        CHECK_EQ(ferry_recv(b, buf, sizeof buf, T5S), (ssize_t)(i * 7));
    for (int i = 1; i <= 3; i++) {
        ferry_msg m;
        memset(&m, 0, sizeof m);
        CHECK_EQ(ferry_peek(b, 0, &m, T5S), 0);
        CHECK_EQ(m.len, (size_t)i * 10);
        CHECK_EQ(ferry_release(b), 0);
    }
    for (int i = 0; i < 2; i++) {
        ferry_msg m;
        memset(&m, 0, sizeof m);
        m.data = buf;
        m.cap = sizeof buf;
        CHECK_EQ(ferry_recvmsg(b, &m, 5, T5S), i == 0 ? 11 : 13);
    }
    check_stats(b, 0, 0, N_SEND + 5, sum_send());

    STAGE("child: send back");
    for (int i = 0; i < N_BACK; i++) CHECK_EQ(ferry_send(b, buf, (size_t)i * 3, T5S), 0);
    check_stats(b, N_BACK, sum_back(), N_SEND + 5, sum_send());
    ctl_put(c, 'a');

    STAGE("child: asleep when the message comes");
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(b, &st), 0);
    uint64_t waits0 = st.recv_waits;
    ctl_put(c, 'w');
    CHECK_EQ(ferry_recv(b, buf, sizeof buf, T5S), 4);
    CHECK_EQ(ferry_chan_stats(b, &st), 0);
    CHECK(st.recv_waits > waits0);
    ctl_put(c, 'b');
}

static void parent_main(ferry_chan *a, ctl *c)
{
    static uint8_t buf[1024];
    size_t max_msg = ferry_chan_max_msg(a);
    STAGE("parent: send");
    for (int i = 0; i < N_SEND; i++) {
        memset(buf, i, sizeof buf);
        CHECK_EQ(ferry_send(a, buf, (size_t)i * 7, T5S), 0);
    }
    uint8_t *big = calloc(1, max_msg + 1);
    CHECK(big != NULL);
    CHECK_EQ(ferry_send(a, big, max_msg + 1, T5S), -EMSGSIZE);
    free(big);
    for (int i = 1; i <= 3; i++) {
        void *p = NULL;
        CHECK_EQ(ferry_loan(a, 100, &p, T5S), 0);
        memset(p, i, 100);
        CHECK_EQ(ferry_commit(a, 0, (size_t)i * 10), 0);
    }
    for (int i = 0; i < 2; i++) {
        ferry_msg m;
        memset(&m, 0, sizeof m);
        m.type = 5;
        m.data = buf;
        m.len = i == 0 ? 11 : 13;
        CHECK_EQ(ferry_sendmsg(a, &m, T5S), 0);
    }
    check_stats(a, N_SEND + 5, sum_send(), 0, 0);
    ctl_put(c, '1');

    STAGE("parent: receive");
    ctl_expect(c, 'a');
    for (int i = 0; i < N_BACK; i++)
        CHECK_EQ(ferry_recv(a, buf, sizeof buf, T5S), (ssize_t)(i * 3));
    check_stats(a, N_SEND + 5, sum_send(), N_BACK, sum_back());

    STAGE("parent: waits and wake-ups");
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    uint64_t waits0 = st.recv_waits;
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, 100 * MS), -ETIMEDOUT);
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    CHECK(st.recv_waits > waits0);
    uint64_t wakeups0 = st.wakeups;
    ctl_expect(c, 'w');
    sleep_ms(200); /* the peer is now asleep in ferry_recv */
    CHECK_EQ(ferry_send(a, "wake", 4, T5S), 0);
    ctl_expect(c, 'b');
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    CHECK(st.wakeups > wakeups0);
    printf("parent: send_waits %" PRIu64 " recv_waits %" PRIu64 " wakeups %" PRIu64 "\n",
           st.send_waits, st.recv_waits, st.wakeups);
}

/* Every counter of a fresh pair is 0, on both ends; a NULL *st is -EINVAL. */
static void fresh_pair(void)
{
    STAGE("fresh pair");
    ferry_chan *a = NULL, *b = NULL;
    CHECK_EQ(ferry_pair(NULL, &a, &b), 0);
    ferry_chan_counters st;
    memset(&st, 0xEE, sizeof st);
    st.size = sizeof st; /* prepared (ferry.h "Sized structs"), every counter garbage */
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    ferry_chan_counters zero;
    ferry_chan_counters_init(&zero);
    CHECK(memcmp(&st, &zero, sizeof st) == 0);
    memset(&st, 0xEE, sizeof st);
    st.size = sizeof st;
    CHECK_EQ(ferry_chan_stats(b, &st), 0);
    CHECK(memcmp(&st, &zero, sizeof st) == 0);
    CHECK_EQ(ferry_chan_stats(a, NULL), -EINVAL);
    ferry_chan_close(a);
    ferry_chan_close(b);
}

int main(void)
{
    watchdog_arm();
    int base = fd_count();
    fresh_pair();
    CHECK_EQ(fd_count(), base);
    run_pair(NULL, child_main, parent_main);
    printf("test_chan_stats: ok\n");
    return 0;
}
