/*
 * test_chan_epoll — readiness of ferry_chan_fd() for event loops, with a forked sender:
 *  - armed late: a message sent before the first ferry_chan_fd() call makes the fd
 *    readable at once (poll); the fd has FD_CLOEXEC; a second call returns the same fd;
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

static void send_seq(ferry_chan *ch, uint64_t seq)
{
    uint8_t buf[128];
    size_t len = seq_len(seq, 100);
    fill_seq(buf, len, seq);
    CHECK_EQ(ferry_send(ch, buf, len, T5S), 0);
}

static void child_main(ferry_chan *b, ctl *c)
{
    for (;;) {
        char cmd = ctl_get(c);
        switch (cmd) {
        case '1': /* one message */
            send_seq(b, 0);
            ctl_put(c, 'k');
            break;
        case '3': /* three messages */
            for (uint64_t s = 1; s <= 3; s++) send_seq(b, s);
            ctl_put(c, 'k');
            break;
        case 'd': /* one message after 100 ms */
            sleep_ms(100);
            send_seq(b, 4);
            break;
        case 'L': /* the event-loop stream */
            for (uint64_t s = 0; s < LOOP_N; s++) send_seq(b, 1000 + s);
            break;
        case 'S': /* a small stream */
            for (uint64_t s = 0; s < 2000; s++) send_seq(b, 1000 + s);
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

static void recv_seq(ferry_chan *ch, uint64_t seq)
{
    uint8_t buf[256];
    ssize_t n = ferry_recv(ch, buf, sizeof buf, FERRY_NOW);
    CHECK_EQ(n, (ssize_t)seq_len(seq, 100));
    CHECK(check_seq(buf, (size_t)n, seq));
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
            CHECK_EQ(r, (ssize_t)seq_len(next, 100));
            CHECK(check_seq(buf, (size_t)r, next));
            next++;
        }
        CHECK_EQ(r, -EAGAIN);
    }
    printf("event loop: %" PRIu64 " messages in %" PRIu64 " wake-ups\n", n, wakes);
    CHECK_EQ(events(ep, 0, NULL), 0);
}

static void run(void)
{
    int base = fd_count();
    ctl c;
    ctl_init(&c);
    ferry_chan *a = NULL, *b = NULL;
    CHECK_EQ(ferry_pair(NULL, &a, &b), 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        ctl_child(&c);
        ferry_chan_close(a);
        child_main(b, &c);
        child_exit();
    }
    ctl_parent(&c);
    ferry_chan_close(b);

    STAGE("armed late");
    ctl_put(&c, '1');
    ctl_expect(&c, 'k');
    int fd = ferry_chan_fd(a);
    CHECK(fd >= 0);
    CHECK(fd_is_cloexec(fd));
    CHECK_EQ(ferry_chan_fd(a), fd);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK(p.revents & POLLIN);
    recv_seq(a, 0);
    p.revents = 0;
    CHECK_EQ(poll(&p, 1, 0), 0);

    STAGE("empty");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event e = {.events = EPOLLIN};
    e.data.fd = fd;
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e), 0);
    CHECK_EQ(events(ep, 0, NULL), 0);

    STAGE("level");
    ctl_put(&c, '3');
    ctl_expect(&c, 'k');
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
    ctl_put(&c, 'd');
    CHECK_EQ(events(ep, 5000, &ev), 1);
    int64_t el = now_ns() - t0;
    printf("blocked epoll_wait woke after %.1f ms (send at 100 ms)\n", el / 1e6);
    CHECK(ev & EPOLLIN);
    CHECK(el >= 100 * MS);
    CHECK(el < 3 * SEC);
    recv_seq(a, 4);
    CHECK_EQ(events(ep, 0, NULL), 0);

    STAGE("event loop");
    ctl_put(&c, 'L');
    event_loop(a, ep, LOOP_N);

    STAGE("peer death");
    ctl_put(&c, 'z');
    ctl_expect(&c, 'k');
    CHECK_EQ(events(ep, 0, NULL), 0);
    int64_t t_kill = now_ns();
    kill(pid, SIGKILL);
    CHECK_EQ(events(ep, 5000, &ev), 1);
    printf("peer death seen by epoll after %.2f ms\n", (now_ns() - t_kill) / 1e6);
    CHECK(ev & EPOLLIN);
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, FERRY_NOW), -EPIPE);
    wait_signaled(pid, SIGKILL);

    close(ep);
    ferry_chan_close(a);
    ctl_close(&c);
    CHECK_EQ(fd_count(), base);
}

/* The event loop on a small, never-spinning channel: the sender is often blocked. */
static void run_small(void)
{
    STAGE("small event loop");
    int base = fd_count();
    ctl c;
    ctl_init(&c);
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.capacity = 8;
    o.flags = FERRY_NO_SPIN;
    ferry_chan *a = NULL, *b = NULL;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        ctl_child(&c);
        ferry_chan_close(a);
        child_main(b, &c);
        child_exit();
    }
    ctl_parent(&c);
    ferry_chan_close(b);
    int fd = ferry_chan_fd(a);
    CHECK(fd >= 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event e = {.events = EPOLLIN};
    e.data.fd = fd;
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e), 0);
    ctl_put(&c, 'S');
    event_loop(a, ep, 2000);
    ctl_put(&c, 'z');
    ctl_expect(&c, 'k');
    kill(pid, SIGKILL);
    wait_signaled(pid, SIGKILL);
    close(ep);
    ferry_chan_close(a);
    ctl_close(&c);
    CHECK_EQ(fd_count(), base);
}

int main(void)
{
    watchdog_arm();
    run();
    run_small();
    printf("test_chan_epoll: ok\n");
    return 0;
}
