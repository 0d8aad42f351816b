// SPDX-License-Identifier: MIT
/*
 * test_bcast_gap — ferry_bcast_skip: a gap of n messages that every subscriber counts in
 * ferry_sub_lost exactly, and the stream numbers of ferry_sub_seq:
 *  - a lossless and a drop-oldest subscriber that take the gap record: lost = n, the
 *    messages around it all arrive, ferry_sub_seq - 1 is each message's number;
 *  - a drop-oldest subscriber that has the gap record (and messages around it) dropped:
 *    lost = the dropped messages + n, received + lost = the stream's count;
 *  - a gap just before the end: counted before -EPIPE; a peek over a gap;
 *  - a subscriber joining after gaps starts at the right number (lost 0);
 *  - the publisher's side: n = 0 does nothing, -EAGAIN while a lossless subscriber is a
 *    ring behind (nothing counted), -EBUSY during a loan, -EPIPE after the end,
 *    -EOVERFLOW, and the counters' published counts skipped messages;
 *  - across processes: a publisher mixing 20,000 messages with random gaps, a lossless
 *    and a slow drop-oldest subscriber and a process that keeps subscribing anew: every
 *    message's type is its stream number (= ferry_sub_seq - 1), received + lost is
 *    exactly the stream's count from the start of each subscription, and the lossless
 *    subscriber's lost is exactly the sum of the gaps.
 */
#include "testutil.h"

#include "bcasttest.h"

#include <ferry/ferry.h>

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static ferry_bcast *make(uint32_t slots)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = slots;
    o.max_msg = 64;
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    return b;
}

/* Publish message number i (its type is i). */
static void pub(ferry_bcast *b, uint64_t i)
{
    unsigned char buf[64];
    CHECK_EQ(ferry_bcast_publish(b, (int64_t)i, buf, body(i, buf), FERRY_NOW), 0);
}

/* Receive the next message: it must be number want (type and ferry_sub_seq agree). */
static void take(ferry_sub *s, uint64_t want)
{
    unsigned char buf[64];
    int64_t type = -1;
    ssize_t n = ferry_sub_recv(s, buf, sizeof buf, &type, FERRY_NOW);
    CHECK(n > 0);
    CHECK_EQ(type, (int64_t)want);
    CHECK(body_ok(want, buf, (size_t)n));
    CHECK_EQ(ferry_sub_seq(s), want + 1);
}

static void test_taken(void)
{
    ferry_bcast *b = make(8);
    ferry_sub *blk, *drp;
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &blk), 0);
    CHECK_EQ(ferry_bcast_subscribe(b, FERRY_SUB_DROP_OLDEST, &drp), 0);
    CHECK_EQ(ferry_sub_seq(blk), 0);
    for (uint64_t i = 0; i < 3; i++) pub(b, i);
    CHECK_EQ(ferry_bcast_skip(b, 5, FERRY_NOW), 0); /* numbers 3..7 */
    for (uint64_t i = 8; i < 11; i++) pub(b, i);
    ferry_sub *both[2] = {blk, drp};
    for (int k = 0; k < 2; k++) {
        for (uint64_t i = 0; i < 3; i++) take(both[k], i);
        CHECK_EQ(ferry_sub_lost(both[k]), 0);
        CHECK_EQ(ferry_sub_seq(both[k]), 3);
        take(both[k], 8);
        CHECK_EQ(ferry_sub_lost(both[k]), 5);
        take(both[k], 9);
        take(both[k], 10);
        CHECK_EQ(ferry_sub_recv(both[k], NULL, 0, NULL, FERRY_NOW), -EAGAIN);
        CHECK_EQ(ferry_sub_lost(both[k]), 5);
    }
    /* two gaps in a row, then one seen alone by a FERRY_NOW receive */
    CHECK_EQ(ferry_bcast_skip(b, 1, FERRY_NOW), 0); /* 11 */
    CHECK_EQ(ferry_bcast_skip(b, 2, FERRY_NOW), 0); /* 12, 13 */
    for (int k = 0; k < 2; k++) {
        CHECK_EQ(ferry_sub_recv(both[k], NULL, 0, NULL, FERRY_NOW), -EAGAIN);
        CHECK_EQ(ferry_sub_lost(both[k]), 8);
        CHECK_EQ(ferry_sub_seq(both[k]), 14);
    }
    pub(b, 14);
    for (int k = 0; k < 2; k++) take(both[k], 14);
    ferry_bcast_counters st;
    ferry_bcast_counters_init(&st);
    CHECK_EQ(ferry_bcast_stats(b, &st), 0);
    CHECK_EQ(st.published, 15);
    ferry_sub_close(blk);
    ferry_sub_close(drp);
    ferry_bcast_close(b);
}

static void test_dropped(void)
{
    ferry_bcast *b = make(8);
    ferry_sub *blk, *drp;
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &blk), 0);
    CHECK_EQ(ferry_bcast_subscribe(b, FERRY_SUB_DROP_OLDEST, &drp), 0);
    /* records: 0, 1, 2, a gap of 100 (3..102), then 103..119: 20 records, 120 numbers */
    for (uint64_t i = 0; i < 3; i++) {
        pub(b, i);
        take(blk, i);
    }
    CHECK_EQ(ferry_bcast_skip(b, 100, FERRY_NOW), 0);
    for (uint64_t i = 103; i < 120; i++) {
        pub(b, i);
        take(blk, i);
    }
    CHECK_EQ(ferry_sub_lost(blk), 100);
    /* the drop-oldest one read nothing: it has the last 8 records, 112..119 */
    for (uint64_t i = 112; i < 120; i++) {
        take(drp, i);
        CHECK_EQ(ferry_sub_lost(drp), 112);
    }
    CHECK_EQ(ferry_sub_recv(drp, NULL, 0, NULL, FERRY_NOW), -EAGAIN);

    /* a gap record dropped alone (then the drop-oldest one peeks the message after it),
     * and one the drop-oldest one takes itself in a peek */
    CHECK_EQ(ferry_bcast_skip(b, 7, FERRY_NOW), 0); /* record 20: 120..126 */
    for (uint64_t i = 127; i < 134; i++) pub(b, i); /* records 21..27 */
    take(blk, 127);                                 /* over the gap */
    pub(b, 134); /* record 28: the drop-oldest one loses the gap record (only) */
    for (uint64_t i = 128; i < 135; i++) take(blk, i);
    CHECK_EQ(ferry_sub_lost(blk), 107);
    ferry_msg m;
    CHECK_EQ(ferry_sub_peek(drp, &m, FERRY_NOW), 0);
    CHECK_EQ(m.type, 127);
    CHECK_EQ(ferry_sub_seq(drp), 127);
    CHECK_EQ(ferry_sub_lost(drp), 112 + 7); /* the dropped gap record's 7 */
    CHECK_EQ(ferry_sub_release(drp), 0);
    CHECK_EQ(ferry_sub_seq(drp), 128);
    CHECK_EQ(ferry_bcast_skip(b, 3, FERRY_NOW), 0); /* record 29: 135..137 */
    pub(b, 138);                                    /* record 30: the drop-oldest one loses 128 */
    take(blk, 138);
    for (uint64_t i = 129; i < 135; i++) take(drp, i);
    CHECK_EQ(ferry_sub_lost(drp), 120);
    CHECK_EQ(ferry_sub_peek(drp, &m, FERRY_NOW), 0);
    CHECK_EQ(m.type, 138);
    CHECK_EQ(ferry_sub_lost(drp), 123);
    CHECK_EQ(ferry_sub_release(drp), 0);
    CHECK_EQ(ferry_sub_seq(drp), 139);
    CHECK_EQ(ferry_sub_lost(blk), 110);
    ferry_sub_close(blk);
    ferry_sub_close(drp);
    ferry_bcast_close(b);
}

static void test_end_join_publisher(void)
{
    ferry_bcast *b = make(4);
    ferry_sub *s, *late;
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &s), 0);
    pub(b, 0);
    CHECK_EQ(ferry_bcast_skip(b, 0, FERRY_NOW), 0); /* nothing */
    ferry_bcast_counters st;
    ferry_bcast_counters_init(&st);
    CHECK_EQ(ferry_bcast_stats(b, &st), 0);
    CHECK_EQ(st.published, 1);
    CHECK_EQ(ferry_bcast_skip(b, 40, FERRY_NOW), 0); /* 1..40 */
    /* a joiner after the gap starts at 41: nothing before is its, nor lost */
    CHECK_EQ(ferry_bcast_subscribe(b, FERRY_SUB_DROP_OLDEST, &late), 0);
    CHECK_EQ(ferry_sub_seq(late), 41);
    pub(b, 41);
    pub(b, 42);
    /* the lossless one is 4 records behind now: the publisher (and a skip) waits */
    CHECK_EQ(ferry_bcast_skip(b, 2, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_bcast_skip(b, 2, 20 * MS), -ETIMEDOUT);
    take(s, 0);
    take(s, 41);
    CHECK_EQ(ferry_sub_lost(s), 40);
    take(late, 41);
    CHECK_EQ(ferry_sub_lost(late), 0);
    void *p;
    CHECK_EQ(ferry_bcast_loan(b, 8, &p, FERRY_NOW), 0);
    CHECK_EQ(ferry_bcast_skip(b, 2, FERRY_NOW), -EBUSY);
    CHECK_EQ(ferry_bcast_commit(b, 43, 0), 0);
    CHECK_EQ(ferry_bcast_skip(b, (uint64_t)INT64_MAX, FERRY_NOW), -EOVERFLOW);
    CHECK_EQ(ferry_bcast_skip(b, 6, FERRY_NOW), 0); /* 44..49, then the end */
    CHECK_EQ(ferry_bcast_end(b), 0);
    CHECK_EQ(ferry_bcast_skip(b, 1, FERRY_NOW), -EPIPE);
    take(s, 42);
    unsigned char buf[64];
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, FERRY_NOW), 0); /* 43, empty */
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, FERRY_NOW), -EPIPE);
    CHECK_EQ(ferry_sub_lost(s), 46);
    CHECK_EQ(ferry_sub_seq(s), 50);
    take(late, 42);
    CHECK_EQ(ferry_sub_recv(late, buf, sizeof buf, NULL, FERRY_NOW), 0);
    CHECK_EQ(ferry_sub_recv(late, buf, sizeof buf, NULL, 50 * MS), -EPIPE);
    CHECK_EQ(ferry_sub_lost(late), 6);
    CHECK_EQ(ferry_bcast_skip(NULL, 1, FERRY_NOW), -EINVAL);
    CHECK_EQ(ferry_sub_seq(NULL), 0);
    ferry_bcast_counters_init(&st);
    CHECK_EQ(ferry_bcast_stats(b, &st), 0);
    CHECK_EQ(st.published, 50);
    ferry_sub_close(s);
    ferry_sub_close(late);
    ferry_bcast_close(b);
}

#define NMSG 20000

/* A subscriber process: k 0 lossless, 1 slow drop-oldest, 2 joins anew every 500
 * messages. Writes {received, lost} of its (last) subscription to res. */
static void subscriber(ferry_bcast *b, int k, int ready, int res)
{
    uint64_t got = 0, lost = 0, rounds = 0;
    for (;;) {
        ferry_sub *s;
        CHECK_EQ(ferry_bcast_subscribe(b, k == 1 ? FERRY_SUB_DROP_OLDEST : 0, &s), 0);
        if (rounds++ == 0) CHECK(write(ready, "r", 1) == 1);
        uint64_t start = ferry_sub_seq(s), n = 0;
        int64_t type;
        unsigned char buf[64];
        ssize_t r;
        while ((r = ferry_sub_recv(s, buf, sizeof buf, &type, 20 * SEC)) != -EPIPE) {
            CHECK(r > 0);
            /* every message's type is its number */
            CHECK_EQ(type, (int64_t)ferry_sub_seq(s) - 1);
            CHECK(body_ok((uint64_t)type, buf, (size_t)r));
            n++;
            CHECK_EQ(start + n + ferry_sub_lost(s), ferry_sub_seq(s));
            if (k == 1 && n % 100 == 0) usleep(2000); /* slow */
            if (k == 2 && n == 500) break;
        }
        got = n;
        lost = ferry_sub_lost(s);
        CHECK_EQ(start + got + lost, ferry_sub_seq(s));
        ferry_sub_close(s);
        if (r == -EPIPE) break;
    }
    uint64_t out[3] = {got, lost, rounds};
    CHECK(write(res, out, sizeof out) == sizeof out);
    _exit(0);
}

static void test_procs(void)
{
    ferry_bcast *b = make(32);
    int ready[2], res[3][2];
    CHECK(pipe(ready) == 0);
    pid_t pids[3];
    for (int k = 0; k < 3; k++) {
        CHECK(pipe(res[k]) == 0);
        pids[k] = fork();
        CHECK(pids[k] >= 0);
        if (pids[k] == 0) subscriber(b, k, ready[1], res[k][1]);
    }
    char c;
    for (int k = 0; k < 3; k++) CHECK(read(ready[0], &c, 1) == 1);
    unsigned char buf[64];
    uint64_t num = 0, gaps = 0;
    srand(18);
    for (int i = 0; i < NMSG; i++) {
        if (rand() % 8 == 0) {
            uint64_t n = 1 + (uint64_t)(rand() % 20);
            CHECK_EQ(ferry_bcast_skip(b, n, 20 * SEC), 0);
            num += n;
            gaps += n;
        }
        CHECK_EQ(ferry_bcast_publish(b, (int64_t)num, buf, body(num, buf), 20 * SEC), 0);
        num++;
    }
    ferry_bcast_counters st;
    ferry_bcast_counters_init(&st);
    CHECK_EQ(ferry_bcast_stats(b, &st), 0);
    CHECK_EQ(st.published, num);
    ferry_bcast_close(b);
    for (int k = 0; k < 3; k++) {
        uint64_t out[3];
        CHECK(read(res[k][0], out, sizeof out) == sizeof out);
        if (k == 0) {
            CHECK_EQ(out[0], NMSG);
            CHECK_EQ(out[1], gaps); /* exactly the gaps */
            CHECK_EQ(out[0] + out[1], num);
        }
        if (k == 1) CHECK_EQ(out[0] + out[1], num);
        printf("subscriber %d: received %llu, lost %llu, subscriptions %llu\n", k,
               (unsigned long long)out[0], (unsigned long long)out[1], (unsigned long long)out[2]);
        int st2;
        CHECK(waitpid(pids[k], &st2, 0) == pids[k] && WIFEXITED(st2) && WEXITSTATUS(st2) == 0);
    }
}

int main(void)
{
    test_taken();
    test_dropped();
    test_end_join_publisher();
    test_procs();
    printf("test_bcast_gap: ok\n");
    return 0;
}
