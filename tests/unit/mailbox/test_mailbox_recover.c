// SPDX-License-Identifier: MIT
/*
 * test_mailbox_recover — the recovery paths, made deterministic with the test hooks of
 * src/mailbox/internal.h:
 *   - a process dies holding the mailbox's lock: the next caller gets on (EOWNERDEAD is
 *     handled inside) and every queued message is still there, in order;
 *   - the queue's and free stack's links and counts scribbled (in range or not), for 200
 *     seeds: calls never crash or touch memory outside the object (run under ASan), no
 *     message is ever received twice; after a lock holder's death forces a rebuild, the
 *     rest come out exactly, in order.
 */
#include "testutil.h"

#include <ferry/ferry.h>

#include "mailbox/internal.h"

#include <stdint.h>

#define N 24

static ferry_mailbox *make(void)
{
    ferry_mailbox_opts o;
    ferry_mailbox_opts_init(&o);
    o.capacity = 32;
    o.max_msg = 16;
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(&o, &mb), 0);
    return mb;
}

static void die_holding_lock(ferry_mailbox *mb)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        CHECK_EQ(ferry__mailbox_lock_and_keep(mb), 0);
        _exit(0);
    }
    wait_ok(pid);
}

static void test_lock_death(void)
{
    ferry_mailbox *mb = make();
    int pfd = ferry_mailbox_poll_fd(mb);
    CHECK(pfd >= 0);
    for (int i = 0; i < N; i++) CHECK_EQ(ferry_mailbox_send(mb, i % 3, &i, sizeof i, 0), 0);
    die_holding_lock(mb);
    int v;
    int64_t t;
    CHECK_EQ(ferry_mailbox_recv(mb, 2, &t, &v, sizeof v, FERRY_NOW), sizeof v);
    CHECK_EQ(v, 2);
    die_holding_lock(mb);
    for (int i = 0; i < N; i++) {
        if (i == 2) continue;
        CHECK_EQ(ferry_mailbox_recv(mb, 0, &t, &v, sizeof v, FERRY_NOW), sizeof v);
        CHECK_EQ(v, i);
        CHECK_EQ(t, i % 3);
    }
    CHECK_EQ(ferry_mailbox_recv(mb, 0, &t, &v, sizeof v, FERRY_NOW), -EAGAIN);
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
    CHECK_EQ(st.sent, N);
    CHECK_EQ(st.received, N);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.recovered, 2);
    ferry_mailbox_close(mb);
}

static void test_scribble(uint32_t seed)
{
    ferry_mailbox *mb = make();
    uint8_t got[N] = {0};
    for (int i = 0; i < N; i++) CHECK_EQ(ferry_mailbox_send(mb, i % 3, &i, sizeof i, 0), 0);
    /* take a few out first: the free stack is not empty */
    int v;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, FERRY_NOW), sizeof v);
        CHECK_EQ(v, i);
        got[v]++;
    }
    ferry__mailbox_scribble(mb, seed);
    /* anything may happen but a crash, a double delivery or -EINVAL */
    int extra = 100;
    for (int k = 0; k < 20; k++) {
        int64_t filter = (int64_t)(k % 5) - 2;
        ssize_t n = ferry_mailbox_recv(mb, filter, NULL, &v, sizeof v, FERRY_NOW);
        if (n == sizeof v) {
            CHECK(v >= 0 && (v < N || (v >= 100 && v < extra)));
            if (v < N) CHECK_EQ(got[v]++, 0);
        } else {
            CHECK(n == -EAGAIN || n == -EBADMSG);
        }
        if (k % 4 == 0) {
            int rc = ferry_mailbox_send(mb, 1, &extra, sizeof extra, FERRY_NOW);
            CHECK(rc == 0 || rc == -EAGAIN || rc == -EBADMSG);
            if (rc == 0) extra++;
        }
    }
    /* a rebuild: the rest come out exactly once, oldest first */
    die_holding_lock(mb);
    int last = -1;
    ssize_t n;
    while ((n = ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, FERRY_NOW)) == sizeof v) {
        if (v < N) {
            CHECK_EQ(got[v]++, 0);
            CHECK(v > last);
            last = v;
        } else {
            last = N; /* the extras came after the originals */
        }
    }
    CHECK_EQ(n, -EAGAIN);
    for (int i = 0; i < N; i++) CHECK_EQ(got[i], 1);
    /* and it works as new */
    for (int i = 0; i < 40; i++) {
        CHECK_EQ(ferry_mailbox_send(mb, 0, &i, sizeof i, FERRY_NOW), i < 32 ? 0 : -EAGAIN);
    }
    for (int i = 0; i < 32; i++) {
        CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, FERRY_NOW), sizeof v);
        CHECK_EQ(v, i);
    }
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.sent, st.received);
    ferry_mailbox_close(mb);
}

int main(void)
{
    int fds = fd_count();
    test_lock_death();
    for (uint32_t seed = 1; seed <= 200; seed++) test_scribble(seed);
    CHECK_EQ(fd_count(), fds);
    printf("ok\n");
    return 0;
}
