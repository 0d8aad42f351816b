// SPDX-License-Identifier: MIT
/*
 * test_chan_death — peer death, kill -9 included:
 *  - buffered: the child sends 1,000 messages and raise(SIGKILL)s itself; the parent,
 *    after the child is dead, receives all 1,000 in order and intact, then -EPIPE (again
 *    on every later receive, and on send);
 *  - mid-stream: the child streams up to 200,000 messages; the parent kills it with
 *    SIGKILL after 2,000 and then receives until -EPIPE: every message arrives exactly
 *    once, in order, untorn (sequence numbers contiguous from 0, contents intact);
 *  - a blocked send on a full capacity-1 channel: the parent waits in
 *    ferry_send(FERRY_FOREVER); a thread kills the receiver: -EPIPE within 100 ms
 *    (asserted < 150 ms);
 *  - a blocked receive on a FERRY_NO_SPIN channel: the parent waits in
 *    ferry_recv(FERRY_FOREVER) while the child sleeps; a thread kills the child with
 *    SIGKILL; the receive returns -EPIPE within 100 ms of the kill (asserted < 150 ms for
 *    scheduling noise; the figure is printed);
 *  (on a default channel, the blocked receive and the sends after the death are
 *  conformance "peer death", on every transport;)
 *  - no fd leaks in the parent.
 */
#include "chantest.h"

#include <pthread.h>

#define BUFFERED_N 1000
#define STREAM_MAX 200000
#define KILL_AFTER 2000
#define SPAN       56 /* message sizes: seq_len(seq, SPAN) */

/* ---------------------------------------------------------------- killer thread */

struct killer {
    pid_t pid;
    int64_t delay_ms;
    int64_t t_kill;
};

static void *killer_main(void *p)
{
    struct killer *k = p;
    sleep_ms(k->delay_ms);
    k->t_kill = now_ns();
    kill(k->pid, SIGKILL);
    return NULL;
}

/* Kill the peer with SIGKILL from a thread in 100 ms while this thread runs op(a), a
 * receive or send that blocks until then: op must return -EPIPE within 150 ms of the
 * kill (100 ms promised, the rest for scheduling noise; the figure is printed). */
static void kill_while_blocked(peer *p, ferry_chan *a, int (*op)(ferry_chan *), const char *what)
{
    struct killer k = {p->pid, 100, 0};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, killer_main, &k), 0);
    int r = op(a);
    int64_t t_ret = now_ns();
    CHECK_EQ(pthread_join(t, NULL), 0);
    printf("%s: %s %.2f ms after the kill\n", what, ferry_strerror(r), (t_ret - k.t_kill) / 1e6);
    CHECK_EQ(r, -EPIPE);
    CHECK(k.t_kill > 0 && t_ret > k.t_kill);
    CHECK(t_ret - k.t_kill < 150 * MS);
    wait_signaled(p->pid, SIGKILL);
}

static int recv_forever(ferry_chan *a)
{
    char buf[16];
    return (int)ferry_recv(a, buf, sizeof buf, FERRY_FOREVER);
}

static int send_forever(ferry_chan *a)
{
    return ferry_send(a, "2", 1, FERRY_FOREVER);
}

/* ---------------------------------------------------------------- children */

static void child_buffered(ferry_chan *b, ctl *c)
{
    (void)c;
    for (uint64_t s = 0; s < BUFFERED_N; s++) send_seq_span(b, s, SPAN);
    raise(SIGKILL);
}

static void child_stream(ferry_chan *b, ctl *c)
{
    for (uint64_t s = 0; s < STREAM_MAX; s++) send_seq_span(b, s, SPAN);
    ctl_expect(c, 'x'); /* never comes: the parent kills us before */
}

static void child_sleep(ferry_chan *b, ctl *c)
{
    (void)b;
    ctl_put(c, 'r');
    for (;;) pause(); /* until killed (or the watchdog) */
}

/* ---------------------------------------------------------------- cases */

/* Each case forks its peer with peer_start() and ends with peer_end(): the channel end
 * and ctl pipes closed, and no fd leaked. */

static void buffered(void)
{
    STAGE("buffered");
    peer p;
    ferry_chan *a = peer_start(&p, NULL, child_buffered);
    wait_signaled(p.pid, SIGKILL); /* everything is sent and the sender is dead */
    for (uint64_t s = 0; s < BUFFERED_N; s++) recv_seq_span(a, s, SPAN, T5S);
    char buf[128];
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, T5S), -EPIPE);
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, FERRY_NOW), -EPIPE);
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, FERRY_FOREVER), -EPIPE);
    CHECK_EQ(ferry_send(a, "x", 1, T5S), -EPIPE);
    peer_end(&p, a);
}

static void midstream(void)
{
    STAGE("mid-stream");
    peer p;
    ferry_chan *a = peer_start(&p, NULL, child_stream);
    uint64_t s = 0;
    for (; s < KILL_AFTER; s++) recv_seq_span(a, s, SPAN, T5S);
    kill(p.pid, SIGKILL);
    wait_signaled(p.pid, SIGKILL);
    uint8_t buf[128];
    ssize_t n;
    while ((n = ferry_recv(a, buf, sizeof buf, T5S)) >= 0) {
        CHECK(s < STREAM_MAX);
        CHECK_EQ(n, (ssize_t)seq_len(s, SPAN));
        CHECK(check_seq(buf, (size_t)n, s));
        s++;
    }
    printf("mid-stream: killed after %d received, %" PRIu64 " received in all, then %s\n",
           KILL_AFTER, s, ferry_strerror((int)n));
    CHECK_EQ(n, -EPIPE);
    peer_end(&p, a);
}

static void blocked_recv(uint32_t flags)
{
    STAGE("blocked recv");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags = flags;
    peer p;
    ferry_chan *a = peer_start(&p, &o, child_sleep);
    ctl_expect(&p.c, 'r');
    char what[64];
    snprintf(what, sizeof what, "blocked recv (flags 0x%x)", flags);
    kill_while_blocked(&p, a, recv_forever, what);
    peer_end(&p, a);
}

static void blocked_send(void)
{
    STAGE("blocked send");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.capacity = 1;
    peer p;
    ferry_chan *a = peer_start(&p, &o, child_sleep);
    ctl_expect(&p.c, 'r');
    CHECK_EQ(ferry_send(a, "1", 1, FERRY_NOW), 0);
    CHECK_EQ(ferry_send(a, "2", 1, FERRY_NOW), -EAGAIN);
    kill_while_blocked(&p, a, send_forever, "blocked send");
    peer_end(&p, a);
}

int main(void)
{
    watchdog_arm();
    buffered();
    midstream();
    blocked_send();
    blocked_recv(FERRY_NO_SPIN);
    printf("test_chan_death: ok\n");
    return 0;
}
