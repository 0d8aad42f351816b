// SPDX-License-Identifier: MIT
/*
 * test_chan_epoll — readiness of ferry_chan_poll_fd() for event loops, with a forked sender:
 *  (armed late, FD_CLOEXEC, the same fd twice, poll readiness: conformance "pollable fd",
 *  on every transport with the fd;)
 *  - empty: epoll_wait(0) reports no event;
 *  - the peer sends 3: readable; still readable (level-triggered) after taking 1 and 2;
 *    not readable once all 3 are taken, and ferry_recv(FERRY_NOW) is -EAGAIN;
 *  - a blocked epoll_wait wakes when the peer sends 100 ms later (>= 100 ms, < 3 s);
 *  - an event loop receiving 10,000 messages using only epoll_wait (5 s bound, it must
 *    never time out) + ferry_recv(FERRY_NOW) until -EAGAIN gets them all, in order;
 *  - the same event loop on a channel whose sender never sleeps on a full ring
 *    (capacity 8, FERRY_NO_SPIN on both ends), 2,000 messages;
 *  - the peer dies (SIGKILL) while the channel is empty: the fd becomes readable within
 *    5 s and ferry_recv(FERRY_NOW) returns -EPIPE;
 *  - no fd leaks in the parent (the fd belongs to the channel and goes with it).
 */
#include "chantest.h"

#include <sys/epoll.h>

#define LOOP_N 10000
#define SPAN   100 /* message sizes: seq_len(seq, SPAN) */

static void child_main(ferry_chan *b, ctl *c)
{
    for (;;) {
        char cmd = ctl_get(c);
        switch (cmd) {
        case '3': /* three messages */
            for (uint64_t s = 1; s <= 3; s++) send_seq_span(b, s, SPAN);
            ctl_put(c, 'k');
            break;
        case 'd': /* one message after 100 ms */
            sleep_ms(100);
            send_seq_span(b, 4, SPAN);
            break;
        case 'L': /* the event-loop stream */
            for (uint64_t s = 0; s < LOOP_N; s++) send_seq_span(b, 1000 + s, SPAN);
            break;
        case 'S': /* a small stream */
            for (uint64_t s = 0; s < 2000; s++) send_seq_span(b, 1000 + s, SPAN);
            break;
        case 'z': /* sleep until killed */
            ctl_put(c, 'k');
            for (;;) pause();
        default:
            CHECK(!"unknown command");
        }
    }
}

static int events(int ep, int timeout_ms, uint32_t *ev)
{
    struct epoll_event e[4];
    int n;
    while ((n = epoll_wait(ep, e, 4, timeout_ms)) < 0 && errno == EINTR) {
    }
    CHECK(n >= 0);
    if (ev) *ev = n > 0 ? e[0].events : 0;
    return n;
}

/* Take seq's message, which must be there already. */
static void recv_seq(ferry_chan *ch, uint64_t seq)
{
    recv_seq_span(ch, seq, SPAN, FERRY_NOW);
}

/* An epoll instance watching fd for EPOLLIN. */
static int epoll_for(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event e = {.events = EPOLLIN};
    e.data.fd = fd;
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e), 0);
    return ep;
}

/* Receive n messages (seq 1000..) with epoll_wait + ferry_recv(FERRY_NOW) only. */
static void event_loop(ferry_chan *a, int ep, uint64_t n)
{
    uint64_t next = 1000, wakes = 0;
    uint8_t buf[256];
    while (next < 1000 + n) {
        uint32_t ev = 0;
        CHECK_EQ(events(ep, 5000, &ev), 1);
        CHECK(ev & EPOLLIN);
        wakes++;
        ssize_t r;
        while ((r = ferry_recv(a, buf, sizeof buf, FERRY_NOW)) >= 0) {
            CHECK(next < 1000 + n);
            CHECK_EQ(r, (ssize_t)seq_len(next, SPAN));
            CHECK(check_seq(buf, (size_t)r, next));
            next++;
        }
        CHECK_EQ(r, -EAGAIN);
    }
    printf("event loop: %" PRIu64 " messages in %" PRIu64 " wake-ups\n", n, wakes);
    CHECK_EQ(events(ep, 0, NULL), 0);
}

/* The peer (child_main) is killed at the end: the run reaps it with wait_signaled() and
 * ends with peer_end(), not peer_wait(). */
static void run(void)
{
    peer p;
    ferry_chan *a = peer_start(&p, NULL, child_main);
    ctl *c = &p.c;

    STAGE("empty");
    int fd = ferry_chan_poll_fd(a);
    CHECK(fd >= 0);
    int ep = epoll_for(fd);
    CHECK_EQ(events(ep, 0, NULL), 0);

    STAGE("level");
    ctl_put(c, '3');
    ctl_expect(c, 'k');
    uint32_t ev = 0;
    CHECK_EQ(events(ep, 5000, &ev), 1);
    CHECK(ev & EPOLLIN);
    CHECK_EQ(events(ep, 0, NULL), 1);
    recv_seq(a, 1);
    CHECK_EQ(events(ep, 0, NULL), 1);
    recv_seq(a, 2);
    CHECK_EQ(events(ep, 0, NULL), 1);
    recv_seq(a, 3);
    CHECK_EQ(events(ep, 0, NULL), 0);
    uint8_t buf[256];
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    CHECK_EQ(events(ep, 0, NULL), 0);

    STAGE("blocked epoll_wait");
    int64_t t0 = now_ns();
    ctl_put(c, 'd');
    CHECK_EQ(events(ep, 5000, &ev), 1);
    int64_t el = now_ns() - t0;
    printf("blocked epoll_wait woke after %.1f ms (send at 100 ms)\n", el / 1e6);
    CHECK(ev & EPOLLIN);
    CHECK(el >= 100 * MS);
    CHECK(el < 3 * SEC);
    recv_seq(a, 4);
    CHECK_EQ(events(ep, 0, NULL), 0);

    STAGE("event loop");
    ctl_put(c, 'L');
    event_loop(a, ep, LOOP_N);

    STAGE("peer death");
    ctl_put(c, 'z');
    ctl_expect(c, 'k');
    CHECK_EQ(events(ep, 0, NULL), 0);
    int64_t t_kill = now_ns();
    kill(p.pid, SIGKILL);
    CHECK_EQ(events(ep, 5000, &ev), 1);
    printf("peer death seen by epoll after %.2f ms\n", (now_ns() - t_kill) / 1e6);
    CHECK(ev & EPOLLIN);
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, FERRY_NOW), -EPIPE);
    wait_signaled(p.pid, SIGKILL);

    close(ep);
    peer_end(&p, a);
}

/* The event loop on a small, never-spinning channel: the sender is often blocked. */
static void run_small(void)
{
    STAGE("small event loop");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.capacity = 8;
    o.flags = FERRY_NO_SPIN;
    peer p;
    ferry_chan *a = peer_start(&p, &o, child_main);
    int fd = ferry_chan_poll_fd(a);
    CHECK(fd >= 0);
    int ep = epoll_for(fd);
    ctl_put(&p.c, 'S');
    event_loop(a, ep, 2000);
    ctl_put(&p.c, 'z');
    ctl_expect(&p.c, 'k');
    kill(p.pid, SIGKILL);
    wait_signaled(p.pid, SIGKILL);
    close(ep);
    peer_end(&p, a);
}

int main(void)
{
    watchdog_arm();
    run();
    run_small();
    printf("test_chan_epoll: ok\n");
    return 0;
}
