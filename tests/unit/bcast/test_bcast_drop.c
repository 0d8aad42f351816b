// SPDX-License-Identifier: MIT
/*
 * test_bcast_drop — the slow-subscriber policies, with exact counts:
 *  - in one process: a drop-oldest subscriber that reads nothing while 100 messages go
 *    out through an 8-slot ring loses exactly 92 and then gets the last 8, in order, while
 *    a blocking subscriber gets all 100; a drop-oldest peek holds its message (the
 *    publisher stops exactly a ring past it) and the drops after its release are counted;
 *  - across processes: a blocking subscriber process gets all 20,000 messages in order
 *    while a slow drop-oldest one (it sleeps now and then) gets an increasing subsequence
 *    whose gaps add up exactly to its lost count, and received + lost == 20,000.
 */
#include "testutil.h"

#include "bcasttest.h"

#include <ferry/ferry.h>

static void test_local(void)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = 8;
    o.max_msg = 64;
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    ferry_sub *blk, *drp;
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &blk), 0);
    CHECK_EQ(ferry_bcast_subscribe(b, FERRY_SUB_DROP_OLDEST, &drp), 0);
    unsigned char buf[64];
    int64_t type;
    for (uint64_t i = 0; i < 100; i++) {
        size_t n = body(i, buf);
        CHECK_EQ(ferry_bcast_publish(b, (int64_t)i, buf, n, FERRY_NOW), 0);
        ssize_t r = ferry_sub_recv(blk, buf, sizeof buf, &type, FERRY_NOW);
        CHECK(r > 0 && type == (int64_t)i && body_ok(i, buf, (size_t)r));
    }
    CHECK_EQ(ferry_sub_lost(drp), 0); /* not known until it looks */
    for (uint64_t i = 92; i < 100; i++) {
        ssize_t r = ferry_sub_recv(drp, buf, sizeof buf, &type, FERRY_NOW);
        CHECK(r > 0 && type == (int64_t)i && body_ok(i, buf, (size_t)r));
        CHECK_EQ(ferry_sub_lost(drp), 92);
    }
    CHECK_EQ(ferry_sub_recv(drp, buf, sizeof buf, NULL, FERRY_NOW), -EAGAIN);

    /* A peek holds message 100: the publisher may go up to 107, not 108. */
    for (uint64_t i = 100; i < 101; i++) {
        size_t n = body(i, buf);
        CHECK_EQ(ferry_bcast_publish(b, (int64_t)i, buf, n, FERRY_NOW), 0);
        CHECK(ferry_sub_recv(blk, buf, sizeof buf, NULL, FERRY_NOW) > 0);
    }
    ferry_msg m;
    CHECK_EQ(ferry_sub_peek(drp, &m, FERRY_NOW), 0);
    CHECK_EQ(m.type, 100);
    CHECK(body_ok(100, m.data, m.len));
    for (uint64_t i = 101; i < 108; i++) {
        size_t n = body(i, buf);
        CHECK_EQ(ferry_bcast_publish(b, (int64_t)i, buf, n, FERRY_NOW), 0);
        CHECK(ferry_sub_recv(blk, buf, sizeof buf, NULL, FERRY_NOW) > 0);
    }
    CHECK_EQ(ferry_bcast_publish(b, 108, buf, body(108, buf), FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_bcast_publish(b, 108, buf, body(108, buf), 30 * MS), -ETIMEDOUT);
    CHECK(body_ok(100, m.data, m.len)); /* untouched while held */
    CHECK_EQ(ferry_sub_release(drp), 0);
    /* now 108..115 go out; the drop subscriber loses 101..107 */
    for (uint64_t i = 108; i < 116; i++) {
        size_t n = body(i, buf);
        CHECK_EQ(ferry_bcast_publish(b, (int64_t)i, buf, n, FERRY_NOW), 0);
        CHECK(ferry_sub_recv(blk, buf, sizeof buf, NULL, FERRY_NOW) > 0);
    }
    CHECK(ferry_sub_recv(drp, buf, sizeof buf, &type, FERRY_NOW) > 0);
    CHECK_EQ(type, 108);
    CHECK_EQ(ferry_sub_lost(drp), 92 + 7);
    CHECK_EQ(ferry_sub_lost(blk), 0);
    ferry_sub_close(blk);
    ferry_sub_close(drp);
    ferry_bcast_close(b);
}

#define NMSG 20000

static void test_procs(void)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = 32;
    o.max_msg = 64;
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    int ready[2], res[2];
    CHECK(pipe(ready) == 0 && pipe(res) == 0);
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        CHECK(pids[k] >= 0);
        if (pids[k] != 0) continue;
        ferry_sub *s;
        CHECK_EQ(ferry_bcast_subscribe(b, k ? FERRY_SUB_DROP_OLDEST : 0, &s), 0);
        CHECK(write(ready[1], "r", 1) == 1);
        unsigned char buf[64];
        uint64_t got = 0, gaps = 0;
        int64_t last = -1, type;
        for (;;) {
            ssize_t n = ferry_sub_recv(s, buf, sizeof buf, &type, 20 * SEC);
            if (n == -EPIPE) break;
            CHECK(n > 0);
            CHECK(type > last && body_ok((uint64_t)type, buf, (size_t)n));
            gaps += (uint64_t)(type - last - 1);
            last = type;
            got++;
            if (k && got % 100 == 0) usleep(2000); /* slow */
        }
        CHECK_EQ(gaps + (uint64_t)(NMSG - 1 - last), ferry_sub_lost(s));
        CHECK_EQ(got + ferry_sub_lost(s), NMSG);
        if (k == 0) CHECK_EQ(got, NMSG);
        uint64_t out[2] = {got, ferry_sub_lost(s)};
        CHECK(write(res[1], out, sizeof out) == sizeof out);
        ferry_sub_close(s);
        _exit(0);
    }
    char c;
    for (int k = 0; k < 2; k++) CHECK(read(ready[0], &c, 1) == 1);
    unsigned char buf[64];
    for (uint64_t i = 0; i < NMSG; i++)
        CHECK_EQ(ferry_bcast_publish(b, (int64_t)i, buf, body(i, buf), 20 * SEC), 0);
    ferry_bcast_close(b);
    uint64_t total_lost = 0;
    for (int k = 0; k < 2; k++) {
        uint64_t out[2];
        CHECK(read(res[0], out, sizeof out) == sizeof out);
        CHECK_EQ(out[0] + out[1], NMSG);
        total_lost += out[1];
    }
    for (int k = 0; k < 2; k++) wait_ok(pids[k]);
    fprintf(stderr, "slow drop-oldest subscriber lost %llu of %d\n", (unsigned long long)total_lost,
            NMSG);
    CHECK(total_lost > 0); /* it sleeps 2 ms every 100: it cannot keep up */
    close(ready[0]);
    close(ready[1]);
    close(res[0]);
    close(res[1]);
}

int main(void)
{
    int fds = fd_count();
    int64_t t0 = now_ns();
    test_local();
    test_procs();
    CHECK(now_ns() - t0 < 30 * SEC);
    CHECK_EQ(fd_count(), fds);
    printf("test_bcast_drop: ok\n");
    return 0;
}
