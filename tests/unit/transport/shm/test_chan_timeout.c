// SPDX-License-Identifier: MIT
/*
 * test_chan_timeout — the three kinds of timeout, measured on CLOCK_MONOTONIC, on a
 * default channel and on a FERRY_NO_SPIN channel, with a forked peer:
 *  - ferry_recv FERRY_NOW on an empty channel: -EAGAIN at once (< 50 ms);
 *  - a 100 ms bound on an empty channel: -ETIMEDOUT, elapsed in [100 ms, 1 s];
 *  - FERRY_FOREVER, a 5 s bound and an INT64_MAX bound, each satisfied by a send 100 ms
 *    later: the message, elapsed in [100 ms, 3 s];
 *  - EINTR neither shortens nor ends a wait: with a SIGUSR1 handler installed WITHOUT
 *    SA_RESTART and a helper process sending SIGUSR1 every 10 ms, a 300 ms ferry_recv is
 *    still -ETIMEDOUT after >= 300 ms (and < 1.5 s), a FERRY_FOREVER ferry_recv still
 *    returns the message that comes 100 ms later, and a 300 ms ferry_send on a full
 *    capacity-1 channel and on a capacity-0 channel with nobody receiving is still
 *    -ETIMEDOUT after >= 300 ms; the handler must have run during each wait;
 *  - no fd leaks in either process.
 */
#include "chantest.h"

static volatile sig_atomic_t hits;

static void on_usr1(int sig)
{
    (void)sig;
    hits = hits + 1;
}

/* A helper process that sends SIGUSR1 to the parent every 10 ms (at most 4 s). */
static pid_t start_signaller(void)
{
    pid_t parent = getpid();
    pid_t pid = fork_child();
    if (pid == 0) {
        for (int i = 0; i < 400; i++) {
            sleep_ms(10);
            kill(parent, SIGUSR1);
        }
        child_exit();
    }
    return pid;
}

static void stop_signaller(pid_t pid)
{
    kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) || (WIFEXITED(st) && WEXITSTATUS(st) == 0));
}

static void child_main(ferry_chan *b, ctl *c)
{
    for (;;) {
        char cmd = ctl_get(c);
        if (cmd == 'q') break;
        CHECK_EQ(cmd, 's');
        sleep_ms(100);
        CHECK_EQ(ferry_send(b, "late", 4, T5S), 0);
    }
}

/* Ask the peer to send "late" in 100 ms, then receive it with the given timeout. */
static void recv_late(ferry_chan *a, ctl *c, int64_t timeout, const char *what)
{
    char buf[16];
    int64_t t0 = now_ns();
    ctl_put(c, 's');
    ssize_t n = ferry_recv(a, buf, sizeof buf, timeout);
    int64_t el = now_ns() - t0;
    CHECK_EQ(n, 4);
    CHECK(memcmp(buf, "late", 4) == 0);
    printf("  %s: message after %.1f ms\n", what, el / 1e6);
    CHECK(el >= 100 * MS);
    CHECK(el < 3 * SEC);
}

/* A 300 ms ferry_send of one byte on a fresh pair made with o, after `fill` FERRY_NOW
 * sends; returns its result, with the time it took in *el and the SIGUSR1 handlers run
 * meanwhile in *h. */
static int send_300ms(const ferry_chan_opts *o, int fill, int64_t *el, int *h)
{
    ferry_chan *s = NULL, *r = NULL;
    CHECK_EQ(ferry_pair(o, &s, &r), 0);
    for (int i = 0; i < fill; i++) CHECK_EQ(ferry_send(s, "1", 1, FERRY_NOW), 0);
    sig_atomic_t h0 = hits;
    int64_t t0 = now_ns();
    int ret = ferry_send(s, "2", 1, 300 * MS);
    *el = now_ns() - t0;
    *h = hits - h0;
    ferry_chan_close(s);
    ferry_chan_close(r);
    return ret;
}

/* The channel a was made with flags. */
static void parent_main(ferry_chan *a, ctl *c, uint32_t flags)
{
    char buf[16];

    STAGE("recv FERRY_NOW");
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    int64_t el = now_ns() - t0;
    printf("  FERRY_NOW: -EAGAIN after %.3f ms\n", el / 1e6);
    CHECK(el < 50 * MS);

    STAGE("recv 100 ms");
    t0 = now_ns();
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, 100 * MS), -ETIMEDOUT);
    el = now_ns() - t0;
    printf("  100 ms: -ETIMEDOUT after %.1f ms\n", el / 1e6);
    CHECK(el >= 100 * MS);
    CHECK(el <= 1 * SEC);

    STAGE("recv satisfied later");
    recv_late(a, c, FERRY_FOREVER, "FERRY_FOREVER");
    recv_late(a, c, T5S, "5 s bound");
    recv_late(a, c, INT64_MAX, "INT64_MAX bound");

    STAGE("EINTR");
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: syscalls see EINTR */
    CHECK_EQ(sigaction(SIGUSR1, &sa, &old), 0);
    pid_t sig = start_signaller();
    while (hits == 0) sleep_ms(1); /* bounded by the watchdog */

    STAGE("EINTR: recv 300 ms");
    sig_atomic_t h0 = hits;
    t0 = now_ns();
    int r1 = (int)ferry_recv(a, buf, sizeof buf, 300 * MS);
    int64_t el1 = now_ns() - t0;
    int h1 = hits - h0;

    STAGE("EINTR: recv forever");
    h0 = hits;
    t0 = now_ns();
    ctl_put(c, 's');
    ssize_t n2 = ferry_recv(a, buf, sizeof buf, FERRY_FOREVER);
    int64_t el2 = now_ns() - t0;
    int h2 = hits - h0;

    STAGE("EINTR: send 300 ms on a full capacity-1 channel");
    ferry_chan_opts o1;
    ferry_chan_opts_init(&o1);
    o1.capacity = 1;
    o1.flags = flags;
    int64_t el3;
    int h3;
    int r3 = send_300ms(&o1, 1, &el3, &h3);

    STAGE("EINTR: send 300 ms on a capacity-0 channel");
    o1.capacity = 0;
    int64_t el4;
    int h4;
    int r4 = send_300ms(&o1, 0, &el4, &h4);

    stop_signaller(sig);
    CHECK_EQ(sigaction(SIGUSR1, &old, NULL), 0);

    printf("  EINTR recv 300 ms: %s after %.1f ms, %d signals\n", ferry_strerror(r1), el1 / 1e6,
           h1);
    printf("  EINTR recv forever: %zd after %.1f ms, %d signals\n", n2, el2 / 1e6, h2);
    printf("  EINTR send 300 ms (cap 1): %s after %.1f ms, %d signals\n", ferry_strerror(r3),
           el3 / 1e6, h3);
    printf("  EINTR send 300 ms (cap 0): %s after %.1f ms, %d signals\n", ferry_strerror(r4),
           el4 / 1e6, h4);
    CHECK_EQ(r1, -ETIMEDOUT);
    CHECK(el1 >= 300 * MS);
    CHECK(el1 < 1500 * MS);
    CHECK(h1 >= 1); /* interrupted (a signal every ~10 ms; fewer land at load 60) */
    CHECK_EQ(n2, 4);
    CHECK(memcmp(buf, "late", 4) == 0);
    CHECK(el2 >= 100 * MS);
    CHECK(el2 < 3 * SEC);
    CHECK(h2 >= 1);
    CHECK_EQ(r3, -ETIMEDOUT);
    CHECK(el3 >= 300 * MS);
    CHECK(el3 < 1500 * MS);
    CHECK(h3 >= 1);
    CHECK_EQ(r4, -ETIMEDOUT);
    CHECK(el4 >= 300 * MS);
    CHECK(el4 < 1500 * MS);
    CHECK(h4 >= 1);

    ctl_put(c, 'q');
}

static void run(uint32_t flags)
{
    printf("flags 0x%x\n", flags);
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags = flags;
    peer p;
    ferry_chan *a = peer_start(&p, &o, child_main);
    parent_main(a, &p.c, flags);
    peer_wait(&p, a);
}

int main(void)
{
    watchdog_arm();
    run(0);
    run(FERRY_NO_SPIN);
    printf("test_chan_timeout: ok\n");
    return 0;
}
