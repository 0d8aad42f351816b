// SPDX-License-Identifier: MIT
/*
 * test_bcast_poll — ferry_sub_poll_fd is level-triggered: readable exactly while a message
 * waits for that subscription (recv, peek/release, FERRY_NOW misses, several
 * subscriptions each with its own state) and once the stream ended; a subscriber process
 * driven only by epoll_wait and FERRY_NOW receives all 20,000 messages of a bursty
 * publisher in order; so do subscriber threads (blocking and drop-oldest, with exact
 * lost counts) polling in the publisher's process. No descriptor left behind.
 */
#include "testutil.h"

#include "bcasttest.h"

#include <ferry/ferry.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void test_level(void)
{
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(NULL, &b), 0);
    ferry_sub *s, *t;
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &s), 0);
    CHECK_EQ(ferry_bcast_subscribe(b, FERRY_SUB_DROP_OLDEST, &t), 0);
    CHECK_EQ(ferry_bcast_publish(b, 1, "a", 1, FERRY_NOW), 0); /* before the fds exist */
    int fs = ferry_sub_poll_fd(s), ft = ferry_sub_poll_fd(t);
    CHECK(fs >= 0 && ft >= 0 && fs != ft);
    CHECK_EQ(ferry_sub_poll_fd(s), fs);
    CHECK(readable(fs) && readable(ft));
    char buf[16];
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, FERRY_NOW), 1);
    CHECK(!readable(fs) && readable(ft));
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, FERRY_NOW), -EAGAIN);
    CHECK(!readable(fs));
    for (int i = 0; i < 3; i++) CHECK_EQ(ferry_bcast_publish(b, 2, "b", 1, FERRY_NOW), 0);
    CHECK(readable(fs) && readable(ft));
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, FERRY_NOW), 1);
    CHECK(readable(fs));
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, FERRY_NOW), 1);
    CHECK(readable(fs));
    ferry_msg m;
    CHECK_EQ(ferry_sub_peek(s, &m, FERRY_NOW), 0);
    CHECK_EQ(ferry_sub_release(s), 0);
    CHECK(!readable(fs));
    for (int i = 0; i < 4; i++) {
        CHECK(readable(ft));
        CHECK_EQ(ferry_sub_peek(t, &m, FERRY_NOW), 0);
        CHECK_EQ(ferry_sub_release(t), 0);
    }
    CHECK(!readable(ft));
    CHECK_EQ(ferry_sub_recv(t, buf, sizeof buf, NULL, 10 * MS), -ETIMEDOUT);
    CHECK(!readable(ft));
    CHECK_EQ(ferry_bcast_end(b), 0);
    CHECK(readable(fs) && readable(ft));
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, FERRY_NOW), -EPIPE);
    CHECK(readable(fs));
    ferry_sub_close(s);
    ferry_sub_close(t);
    ferry_bcast_close(b);
}

#define NMSG 20000

static void test_epoll(void)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = 16;
    o.max_msg = 64;
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_sub *s;
        CHECK_EQ(ferry_bcast_subscribe(b, 0, &s), 0);
        int fd = ferry_sub_poll_fd(s);
        CHECK(fd >= 0);
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN};
        CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
        CHECK(write(go[1], "s", 1) == 1);
        unsigned char buf[64];
        uint64_t next = 0;
        for (;;) {
            struct epoll_event out;
            int n = epoll_wait(ep, &out, 1, 10000);
            CHECK_EQ(n, 1); /* never a 10 s silence: a lost wake-up */
            ssize_t r;
            int64_t type;
            while ((r = ferry_sub_recv(s, buf, sizeof buf, &type, FERRY_NOW)) > 0) {
                CHECK(type == (int64_t)next && body_ok(next, buf, (size_t)r));
                next++;
            }
            if (r == -EPIPE) break;
            CHECK_EQ(r, -EAGAIN);
        }
        CHECK_EQ(next, NMSG);
        close(ep);
        ferry_sub_close(s);
        _exit(0);
    }
    char c;
    CHECK(read(go[0], &c, 1) == 1);
    unsigned char buf[64];
    for (uint64_t i = 0; i < NMSG; i++) {
        CHECK_EQ(ferry_bcast_publish(b, (int64_t)i, buf, body(i, buf), 10 * SEC), 0);
        if (i % 997 == 0) usleep(1000); /* let the subscriber run dry now and then */
    }
    ferry_bcast_close(b);
    wait_ok(pid);
    close(go[0]);
    close(go[1]);
}

/* The same within one process, a subscriber thread per kind polling its descriptor (for
 * TSan: the doorbell's arm/ring pairs between threads). */
static ferry_bcast *TB;
static _Atomic int tready;

static void *poll_thread(void *arg)
{
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(TB, (uint32_t)(intptr_t)arg, &s), 0);
    int fd = ferry_sub_poll_fd(s);
    CHECK(fd >= 0);
    atomic_fetch_add(&tready, 1);
    unsigned char buf[64];
    int64_t last = -1, type;
    uint64_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        CHECK_EQ(poll(&p, 1, 10000), 1);
        ssize_t r;
        while ((r = ferry_sub_recv(s, buf, sizeof buf, &type, FERRY_NOW)) > 0) {
            CHECK(type > last && body_ok((uint64_t)type, buf, (size_t)r));
            last = type;
            got++;
        }
        if (r == -EPIPE) break;
        CHECK_EQ(r, -EAGAIN);
    }
    CHECK_EQ(last, NMSG - 1);
    CHECK_EQ(got + ferry_sub_lost(s), NMSG);
    if (!arg) CHECK_EQ(got, NMSG);
    ferry_sub_close(s);
    return NULL;
}

static void test_threads(void)
{
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = 16;
    o.max_msg = 64;
    CHECK_EQ(ferry_bcast_create(&o, &TB), 0);
    pthread_t t[2];
    CHECK(pthread_create(&t[0], NULL, poll_thread, (void *)(intptr_t)0) == 0);
    CHECK(pthread_create(&t[1], NULL, poll_thread, (void *)(intptr_t)FERRY_SUB_DROP_OLDEST) == 0);
    while (atomic_load(&tready) < 2) sched_yield();
    unsigned char buf[64];
    for (uint64_t i = 0; i < NMSG; i++) {
        CHECK_EQ(ferry_bcast_publish(TB, (int64_t)i, buf, body(i, buf), 10 * SEC), 0);
        if (i % 997 == 0) usleep(1000);
    }
    CHECK_EQ(ferry_bcast_end(TB), 0);
    for (int k = 0; k < 2; k++) CHECK(pthread_join(t[k], NULL) == 0);
    ferry_bcast_close(TB);
}

int main(void)
{
    int fds = fd_count();
    int64_t t0 = now_ns();
    test_level();
    test_epoll();
    test_threads();
    CHECK(now_ns() - t0 < 30 * SEC);
    CHECK_EQ(fd_count(), fds);
    printf("test_bcast_poll: ok\n");
    return 0;
}
