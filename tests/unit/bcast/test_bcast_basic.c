// SPDX-License-Identifier: MIT
/*
 * test_bcast_basic — one process: ordering and contents to several subscribers, types,
 * zero-copy peek/release and loan/commit, timeouts (-EAGAIN for FERRY_NOW, -ETIMEDOUT
 * within its bound) on both sides, -EMSGSIZE, -EBUSY, -EINVAL, late join (starts at the
 * head), leave (frees the publisher), -ENOSPC, end of stream (-EPIPE after the last
 * message), and no descriptor left behind.
 */
#include "testutil.h"

#include "bcasttest.h"

#include <ferry/ferry.h>

static void test_order(void)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = 8;
    o.max_msg = 64;
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    CHECK_EQ(ferry_bcast_max_msg(b), 64);
    ferry_sub *s[3];
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_bcast_subscribe(b, 0, &s[i]), 0);
    CHECK_EQ(ferry_bcast_subscribers(b), 3);
    unsigned char buf[64];
    /* 1000 messages, published 8 (a full ring) at a time, each read by all three */
    for (uint64_t i = 0; i < 1000; i += 8) {
        for (uint64_t j = i; j < i + 8; j++) {
            size_t n = body(j, buf);
            CHECK_EQ(ferry_bcast_publish(b, (int64_t)j * 3, buf, n, FERRY_NOW), 0);
        }
        CHECK_EQ(ferry_bcast_publish(b, 0, buf, 1, FERRY_NOW), -EAGAIN); /* full */
        for (int k = 0; k < 3; k++)
            for (uint64_t j = i; j < i + 8; j++) {
                int64_t type = -1;
                if (k == 2) { /* the third reads in place */
                    ferry_msg m;
                    CHECK_EQ(ferry_sub_peek(s[k], &m, FERRY_NOW), 0);
                    CHECK_EQ(m.type, (int64_t)j * 3);
                    CHECK(body_ok(j, m.data, m.len));
                    CHECK_EQ(ferry_sub_peek(s[k], &m, FERRY_NOW), -EBUSY);
                    CHECK_EQ(ferry_sub_recv(s[k], buf, sizeof buf, NULL, FERRY_NOW), -EBUSY);
                    CHECK_EQ(ferry_sub_release(s[k]), 0);
                    continue;
                }
                ssize_t n = ferry_sub_recv(s[k], buf, sizeof buf, &type, FERRY_NOW);
                CHECK(n > 0);
                CHECK_EQ(type, (int64_t)j * 3);
                CHECK(body_ok(j, buf, (size_t)n));
            }
        for (int k = 0; k < 3; k++)
            CHECK_EQ(ferry_sub_recv(s[k], buf, sizeof buf, NULL, FERRY_NOW), -EAGAIN);
    }
    CHECK_EQ(ferry_sub_release(s[0]), -EINVAL);
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(ferry_sub_lost(s[k]), 0);
        ferry_sub_close(s[k]);
    }
    CHECK_EQ(ferry_bcast_subscribers(b), 0);
    ferry_bcast_close(b);
}

static void test_timeouts(void)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = 2;
    o.max_msg = 16;
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    /* no subscriber: publishing never blocks */
    for (int i = 0; i < 10; i++) CHECK_EQ(ferry_bcast_publish(b, 0, "x", 1, FERRY_NOW), 0);
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &s), 0);
    char buf[16];
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, FERRY_NOW), -EAGAIN); /* joined late */
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, 50 * MS), -ETIMEDOUT);
    int64_t dt = now_ns() - t0;
    CHECK(dt >= 50 * MS && dt < 2 * SEC);
    ferry_msg m;
    CHECK_EQ(ferry_sub_peek(s, &m, 30 * MS), -ETIMEDOUT);
    CHECK_EQ(ferry_bcast_publish(b, 1, "a", 1, FERRY_NOW), 0);
    CHECK_EQ(ferry_bcast_publish(b, 2, "b", 1, FERRY_NOW), 0);
    CHECK_EQ(ferry_bcast_publish(b, 3, "c", 1, FERRY_NOW), -EAGAIN);
    t0 = now_ns();
    CHECK_EQ(ferry_bcast_publish(b, 3, "c", 1, 50 * MS), -ETIMEDOUT);
    dt = now_ns() - t0;
    CHECK(dt >= 50 * MS && dt < 2 * SEC);
    /* loan: -EAGAIN when full, then after a receive it fits */
    void *p;
    CHECK_EQ(ferry_bcast_loan(b, 3, &p, FERRY_NOW), -EAGAIN);
    int64_t type;
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, &type, FERRY_NOW), 1);
    CHECK_EQ(type, 1);
    CHECK_EQ(buf[0], 'a');
    CHECK_EQ(ferry_bcast_loan(b, 3, &p, FERRY_NOW), 0);
    CHECK_EQ(ferry_bcast_loan(b, 3, &p, FERRY_NOW), -EBUSY);
    CHECK_EQ(ferry_bcast_publish(b, 0, "z", 1, FERRY_NOW), -EBUSY);
    memcpy(p, "xyz", 3);
    CHECK_EQ(ferry_bcast_commit(b, 7, 4), -EINVAL); /* past the loaned len */
    CHECK_EQ(ferry_bcast_commit(b, -1, 3), -EINVAL);
    CHECK_EQ(ferry_bcast_commit(b, 7, 3), 0);
    CHECK_EQ(ferry_bcast_commit(b, 7, 3), -EINVAL); /* no loan any more */
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, &type, FERRY_NOW), 1);
    CHECK_EQ(type, 2);
    ssize_t n = ferry_sub_recv(s, buf, sizeof buf, &type, FERRY_NOW);
    CHECK_EQ(n, 3);
    CHECK_EQ(type, 7);
    CHECK(memcmp(buf, "xyz", 3) == 0);
    /* sizes */
    CHECK_EQ(ferry_bcast_publish(b, 0, buf, 17, FERRY_NOW), -EMSGSIZE);
    CHECK_EQ(ferry_bcast_loan(b, 17, &p, FERRY_NOW), -EMSGSIZE);
    CHECK_EQ(ferry_bcast_publish(b, -1, buf, 1, FERRY_NOW), -EINVAL);
    CHECK_EQ(ferry_bcast_publish(b, 0, "0123456789", 10, FERRY_NOW), 0);
    CHECK_EQ(ferry_sub_recv(s, buf, 4, NULL, FERRY_NOW), -EMSGSIZE); /* it stays */
    CHECK_EQ(ferry_sub_recv(s, buf, 10, NULL, FERRY_NOW), 10);
    /* a waiting publisher goes on when the subscriber leaves */
    CHECK_EQ(ferry_bcast_publish(b, 0, "1", 1, FERRY_NOW), 0);
    CHECK_EQ(ferry_bcast_publish(b, 0, "2", 1, FERRY_NOW), 0);
    CHECK_EQ(ferry_bcast_publish(b, 0, "3", 1, FERRY_NOW), -EAGAIN);
    ferry_sub_close(s);
    CHECK_EQ(ferry_bcast_publish(b, 0, "3", 1, FERRY_NOW), 0);
    ferry_bcast_close(b);
}

static void test_limits(void)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(NULL, NULL), -EINVAL);
    o.slots = 3;
    CHECK_EQ(ferry_bcast_create(&o, &b), -EINVAL);
    o.slots = 1;
    CHECK_EQ(ferry_bcast_create(&o, &b), -EINVAL);
    o.slots = 1u << 20;
    o.max_msg = 1 << 20;
    CHECK_EQ(ferry_bcast_create(&o, &b), -EINVAL); /* far over 64 MiB */
    ferry_bcast_opts_init(&o);
    o.max_subs = 0;
    CHECK_EQ(ferry_bcast_create(&o, &b), -EINVAL);
    o.max_subs = FERRY_BCAST_MAX_SUBS + 1;
    CHECK_EQ(ferry_bcast_create(&o, &b), -EINVAL);
    o.max_subs = 3;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    ferry_sub *s[4];
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_bcast_subscribe(b, 0, &s[i]), 0);
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &s[3]), -ENOSPC);
    CHECK_EQ(ferry_bcast_subscribe(b, 4, &s[3]), -EINVAL);
    ferry_sub_close(s[1]);
    CHECK_EQ(ferry_bcast_subscribe(b, FERRY_SUB_DROP_OLDEST, &s[1]), 0);
    CHECK_EQ(ferry_bcast_subscribers(b), 3);
    for (int i = 0; i < 3; i++) ferry_sub_close(s[i]);
    ferry_bcast_close(b);
}

/* The end of stream: a child (another process) subscribed through the inherited handle
 * gets every message, then -EPIPE once the publisher closed. */
static void test_eos(void)
{
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(NULL, &b), 0);
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_sub *s;
        CHECK_EQ(ferry_bcast_subscribe(b, 0, &s), 0);
        CHECK(write(go[1], "s", 1) == 1);
        unsigned char buf[64];
        for (uint64_t i = 0; i < 500; i++) {
            ssize_t n = ferry_sub_recv(s, buf, sizeof buf, NULL, 10 * SEC);
            CHECK(n > 0);
            CHECK(body_ok(i, buf, (size_t)n));
        }
        CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, 10 * SEC), -EPIPE);
        ferry_sub_close(s);
        ferry_bcast_close(b); /* not the publisher: no effect on the stream */
        _exit(0);
    }
    char c;
    CHECK(read(go[0], &c, 1) == 1);
    close(go[0]);
    close(go[1]);
    unsigned char buf[64];
    for (uint64_t i = 0; i < 500; i++) {
        size_t n = body(i, buf);
        CHECK_EQ(ferry_bcast_publish(b, 0, buf, n, 10 * SEC), 0);
    }
    ferry_bcast_close(b);
    wait_ok(pid);
}

int main(void)
{
    int fds = fd_count();
    test_order();
    test_timeouts();
    test_limits();
    test_eos();
    CHECK_EQ(fd_count(), fds);
    printf("test_bcast_basic: ok\n");
    return 0;
}
