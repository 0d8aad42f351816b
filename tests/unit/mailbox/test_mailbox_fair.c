// SPDX-License-Identifier: MIT
/*
 * test_mailbox_fair — the fair FIFO hand-out among waiting receivers:
 *   - 3 receiver processes start waiting one after another (each once the one before
 *     waits: ferry_mailbox_counters.waiting); 3 messages sent after that go to
 *     them in the order they came (the first waiter gets the first message);
 *   - a newcomer cannot take a message from under a waiter (-EAGAIN: it was handed);
 *   - typed waiters: a message goes to the oldest waiter whose filter takes it;
 *   - a waiter killed while waiting: what it was handed goes on to the next waiter
 *     (never counted lost: it was never delivered).
 *   - per-sender order across a dead waiter (issue 10, bug 4): the first of 20 messages
 *     is handed to a waiter that was just killed; the surviving waiter must still get all
 *     20 in the order sent (it used to get 2..20 and then 1, once the dead one was reaped).
 */
#include "testutil.h"

#include <ferry/ferry.h>

#include "core/time.h"

#include <signal.h>
#include <time.h>

#define SEC ((int64_t)1000000000)

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0) {
    }
}

/* Wait (at most 10 s) until n receivers wait in mb's queue: the order of waiters is then
 * the order they were started in, however slowly the machine schedules them. */
static void wait_waiting(ferry_mailbox *mb, uint64_t n)
{
    int64_t end = ferry__now_ns() + 10 * SEC;
    for (;;) {
        ferry_mailbox_counters s;
        ferry_mailbox_counters_init(&s);
        CHECK_EQ(ferry_mailbox_stats(mb, &s), 0);
        if (s.waiting >= n) return;
        CHECK(ferry__now_ns() < end);
        nap_ms(1);
    }
}

static ferry_mailbox *make(void)
{
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(NULL, &mb), 0);
    return mb;
}

/* A child that waits (after delay_ms) for one message with filter, requires value want
 * (or any, want < 0), and exits 0. */
static pid_t waiter(ferry_mailbox *mb, int delay_ms, int64_t filter, int want)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        nap_ms(delay_ms);
        int v = -1;
        CHECK_EQ(ferry_mailbox_recv(mb, filter, NULL, &v, sizeof v, 10 * SEC), sizeof v);
        if (want >= 0) CHECK_EQ(v, want);
        _exit(0);
    }
    return pid;
}

static void test_order(void)
{
    ferry_mailbox *mb = make();
    for (int round = 0; round < 5; round++) {
        pid_t w[3];
        for (int i = 0; i < 3; i++) {
            w[i] = waiter(mb, 0, 0, i);
            wait_waiting(mb, (uint64_t)i + 1);
        }
        for (int i = 0; i < 3; i++) CHECK_EQ(ferry_mailbox_send(mb, 0, &i, sizeof i, 0), 0);
        for (int i = 0; i < 3; i++) wait_ok(w[i]);
    }
    ferry_mailbox_close(mb);
}

static void test_no_stealing(void)
{
    ferry_mailbox *mb = make();
    pid_t w = waiter(mb, 0, 0, 7);
    wait_waiting(mb, 1);
    int v = 7;
    CHECK_EQ(ferry_mailbox_send(mb, 0, &v, sizeof v, 0), 0);
    CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, FERRY_NOW), -EAGAIN);
    wait_ok(w);
    ferry_mailbox_close(mb);
}

static void test_typed(void)
{
    ferry_mailbox *mb = make();
    pid_t a = waiter(mb, 0, 5, 50); /* oldest: type 5 only */
    wait_waiting(mb, 1);
    pid_t b = waiter(mb, 0, 0, 10); /* any */
    wait_waiting(mb, 2);
    pid_t c = waiter(mb, 0, -3, 30); /* type <= 3 */
    wait_waiting(mb, 3);
    int v = 10;
    CHECK_EQ(ferry_mailbox_send(mb, 1, &v, sizeof v, 0), 0); /* a no, b yes */
    wait_ok(b);
    v = 50;
    CHECK_EQ(ferry_mailbox_send(mb, 5, &v, sizeof v, 0), 0); /* a */
    wait_ok(a);
    v = 30;
    CHECK_EQ(ferry_mailbox_send(mb, 2, &v, sizeof v, 0), 0); /* c */
    wait_ok(c);
    ferry_mailbox_close(mb);
}

static void test_dead_waiter(void)
{
    ferry_mailbox *mb = make();
    pid_t dead = fork();
    CHECK(dead >= 0);
    if (dead == 0) {
        int v;
        ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, FERRY_FOREVER);
        _exit(3); /* must not get here */
    }
    wait_waiting(mb, 1);
    pid_t live = waiter(mb, 0, 0, 9);
    wait_waiting(mb, 2);
    kill(dead, SIGKILL);
    int st;
    CHECK_EQ(waitpid(dead, &st, 0), dead);
    CHECK(WIFSIGNALED(st));
    int v = 9;
    int64_t t0 = ferry__now_ns();
    CHECK_EQ(ferry_mailbox_send(mb, 0, &v, sizeof v, 0), 0); /* handed to the dead one */
    wait_ok(live);
    CHECK(ferry__now_ns() - t0 < 2 * SEC);
    ferry_mailbox_counters s;
    ferry_mailbox_counters_init(&s);
    CHECK_EQ(ferry_mailbox_stats(mb, &s), 0);
    CHECK_EQ(s.lost, 0);
    CHECK_EQ(s.received, 1);
    CHECK_EQ(s.queued, 0);
    ferry_mailbox_close(mb);
}

static void test_dead_waiter_order(void)
{
    for (int round = 0; round < 5; round++) {
        ferry_mailbox *mb = make();
        pid_t dead = fork();
        CHECK(dead >= 0);
        if (dead == 0) {
            int v;
            ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, FERRY_FOREVER);
            _exit(3); /* must not get here */
        }
        wait_waiting(mb, 1); /* the doomed one is the oldest waiter */
        pid_t live = fork();
        CHECK(live >= 0);
        if (live == 0) {
            for (int i = 0; i < 20; i++) {
                int v = -1;
                CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, 10 * SEC), sizeof v);
                if (v != i) fprintf(stderr, "receive %d: got message %d\n", i, v);
                CHECK_EQ(v, i);
            }
            _exit(0);
        }
        wait_waiting(mb, 2);
        kill(dead, SIGKILL);
        int st;
        CHECK_EQ(waitpid(dead, &st, 0), dead);
        CHECK(WIFSIGNALED(st));
        /* At once, before anyone noticed the death: 0 is handed to the dead waiter. */
        for (int i = 0; i < 20; i++) CHECK_EQ(ferry_mailbox_send(mb, 0, &i, sizeof i, SEC), 0);
        wait_ok(live);
        ferry_mailbox_counters s;
        ferry_mailbox_counters_init(&s);
        CHECK_EQ(ferry_mailbox_stats(mb, &s), 0);
        CHECK_EQ(s.lost, 0);
        CHECK_EQ(s.received, 20);
        CHECK_EQ(s.queued, 0);
        ferry_mailbox_close(mb);
    }
}

int main(void)
{
    int fds = fd_count();
    test_order();
    test_no_stealing();
    test_typed();
    test_dead_waiter();
    test_dead_waiter_order();
    CHECK_EQ(fd_count(), fds);
    printf("ok\n");
    return 0;
}
