// SPDX-License-Identifier: MIT
/*
 * test_chan_types — typed messages and selective receive (System V msgrcv rules), with a
 * forked receiver:
 *  - sent types 5,3,7,3,1 (payloads m0..m4): filter 3 -> the first 3 (m1); filter -4 ->
 *    type 1 (m4, the lowest type <= 4); filter -4 -> type 3 (m3); filter 9 and filter -2
 *    with FERRY_NOW -> -EAGAIN, filter 6 with 50 ms -> -ETIMEDOUT; filter 7 with a
 *    too-small buffer -> -EMSGSIZE with m.len = 2 and it stays queued; filter 0 -> 5 (m0),
 *    then 7 (m2): skipped messages stayed queued, in order; then empty;
 *  - ferry_sendmsg with a negative type (-1, INT64_MIN) -> -EINVAL, nothing sent;
 *    recvmsg filter INT64_MIN -> -EINVAL;
 *  - ferry_send sends type 0; ferry_recv takes any type; filter -1 prefers type 0 over 1;
 *    INT64_MAX is a valid type and filter; filter -INT64_MAX takes the lowest type;
 *    several messages of one type come out in their order;
 *  - a waiting filter: the receiver blocks on filter 2 while three type-1 messages arrive
 *    (it does not return them), then a type 2 arrives and is returned; the type-1
 *    messages are then received in order;
 *  - no fd leaks in either process.
 */
#include "chantest.h"

static void send_typed(ferry_chan *ch, int64_t type, const char *s)
{
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.data = (void *)s;
    m.len = strlen(s);
    CHECK_EQ(ferry_sendmsg(ch, &m, T5S), 0);
}

/* recvmsg with filter; expect type and payload s. */
static void expect(ferry_chan *ch, int64_t filter, int64_t timeout, int64_t type, const char *s)
{
    char buf[64];
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.type = -77;
    m.data = buf;
    m.cap = sizeof buf;
    ssize_t n = ferry_recvmsg(ch, &m, filter, timeout);
    if (n < 0)
        fprintf(stderr, "recvmsg filter %" PRId64 ": %s (expected type %" PRId64 " %s)\n", filter,
                ferry_strerror((int)n), type, s);
    CHECK_EQ(n, (ssize_t)strlen(s));
    CHECK_EQ(m.len, strlen(s));
    CHECK_EQ(m.type, type);
    CHECK_EQ(m.nfds, 0);
    CHECK(memcmp(buf, s, strlen(s)) == 0);
}

static void expect_err(ferry_chan *ch, int64_t filter, int64_t timeout, int err)
{
    char buf[64];
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.data = buf;
    m.cap = sizeof buf;
    CHECK_EQ(ferry_recvmsg(ch, &m, filter, timeout), err);
}

static void child_main(ferry_chan *b, ctl *c)
{
    STAGE("child: msgrcv rules");
    ctl_expect(c, '1'); /* all five are queued */
    expect(b, 3, T5S, 3, "m1");
    expect(b, -4, T5S, 1, "m4");
    expect(b, -4, T5S, 3, "m3");
    expect_err(b, 9, FERRY_NOW, -EAGAIN);
    expect_err(b, -2, FERRY_NOW, -EAGAIN);
    int64_t t0 = now_ns();
    expect_err(b, 6, 50 * MS, -ETIMEDOUT);
    CHECK(now_ns() - t0 >= 50 * MS);
    char small[1];
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.data = small;
    m.cap = sizeof small;
    CHECK_EQ(ferry_recvmsg(b, &m, 7, FERRY_NOW), -EMSGSIZE);
    CHECK_EQ(m.len, 2);
    expect(b, 0, FERRY_NOW, 5, "m0");
    expect(b, 0, FERRY_NOW, 7, "m2");
    expect_err(b, 0, FERRY_NOW, -EAGAIN);
    expect_err(b, INT64_MIN, FERRY_NOW, -EINVAL);
    expect_err(b, INT64_MIN, T5S, -EINVAL);
    ctl_put(c, 'a');

    STAGE("child: negative types not sent, type 0, extremes");
    ctl_expect(c, '2');
    expect(b, 0, FERRY_NOW, 4, "after-negatives");
    expect(b, -1, FERRY_NOW, 0, "t0"); /* queue: 1 "t1", 0 "t0", ... */
    expect(b, -1, FERRY_NOW, 1, "t1");
    expect(b, INT64_MAX, FERRY_NOW, INT64_MAX, "max-a");
    expect(b, -INT64_MAX, FERRY_NOW, 2, "two"); /* lowest of 2, MAX, 8, 6, 8, 6, 8 */
    char buf[64];
    CHECK_EQ(ferry_recv(b, buf, sizeof buf, FERRY_NOW), 5); /* any type */
    CHECK(memcmp(buf, "max-b", 5) == 0);
    expect(b, 8, FERRY_NOW, 8, "8a");
    expect(b, 0, FERRY_NOW, 6, "6a");
    expect(b, 8, FERRY_NOW, 8, "8b");
    expect(b, -8, FERRY_NOW, 6, "6b");
    expect(b, 0, FERRY_NOW, 8, "8c");
    expect_err(b, 0, FERRY_NOW, -EAGAIN);
    ctl_put(c, 'b');

    STAGE("child: waiting filter");
    ctl_expect(c, '3');
    t0 = now_ns();
    expect(b, 2, T5S, 2, "wanted");
    int64_t el = now_ns() - t0;
    printf("filter 2 waited %.1f ms while type-1 messages arrived\n", el / 1e6);
    CHECK(el >= 50 * MS); /* type 2 is sent 160 ms after '3' (margin for a slow wake-up) */
    expect(b, 0, FERRY_NOW, 1, "w0");
    expect(b, 0, FERRY_NOW, 1, "w1");
    expect(b, 0, FERRY_NOW, 1, "w2");
    expect_err(b, 0, FERRY_NOW, -EAGAIN);
    ctl_put(c, 'c');
}

static void parent_main(ferry_chan *a, ctl *c)
{
    STAGE("parent: msgrcv rules");
    send_typed(a, 5, "m0");
    send_typed(a, 3, "m1");
    send_typed(a, 7, "m2");
    send_typed(a, 3, "m3");
    send_typed(a, 1, "m4");
    ctl_put(c, '1');
    ctl_expect(c, 'a');

    STAGE("parent: negative types, type 0, extremes");
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.type = -1;
    m.data = "neg";
    m.len = 3;
    CHECK_EQ(ferry_sendmsg(a, &m, T5S), -EINVAL);
    CHECK_EQ(ferry_sendmsg(a, &m, FERRY_NOW), -EINVAL);
    m.type = INT64_MIN;
    CHECK_EQ(ferry_sendmsg(a, &m, T5S), -EINVAL);
    send_typed(a, 4, "after-negatives");
    send_typed(a, 1, "t1");
    CHECK_EQ(ferry_send(a, "t0", 2, T5S), 0); /* type 0 */
    send_typed(a, INT64_MAX, "max-a");
    send_typed(a, 2, "two");
    send_typed(a, INT64_MAX, "max-b");
    send_typed(a, 8, "8a");
    send_typed(a, 6, "6a");
    send_typed(a, 8, "8b");
    send_typed(a, 6, "6b");
    send_typed(a, 8, "8c");
    ctl_put(c, '2');
    ctl_expect(c, 'b');

    STAGE("parent: waiting filter");
    ctl_put(c, '3');
    sleep_ms(100); /* the receiver is now waiting for type 2 */
    send_typed(a, 1, "w0");
    sleep_ms(20);
    send_typed(a, 1, "w1");
    sleep_ms(20);
    send_typed(a, 1, "w2");
    sleep_ms(20);
    send_typed(a, 2, "wanted");
    ctl_expect(c, 'c');
}

int main(void)
{
    watchdog_arm();
    run_pair(NULL, child_main, parent_main);
    printf("test_chan_types: ok\n");
    return 0;
}
