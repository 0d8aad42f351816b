/*
 * test_chan_death — peer death, kill -9 included:
 *  - buffered: the child sends 1,000 messages and raise(SIGKILL)s itself; the parent,
 *    after the child is dead, receives all 1,000 in order and intact, then -EPIPE (again
 *    on every later receive, and on send);
 *  - mid-stream: the child streams up to 200,000 messages; the parent kills it with
 *    SIGKILL after 2,000 and then receives until -EPIPE: every message arrives exactly
 *    once, in order, untorn (sequence numbers contiguous from 0, contents intact);
 *  - a blocked receive: the parent waits in ferry_recv(FERRY_FOREVER) while the child
 *    sleeps; a thread kills the child with SIGKILL; the receive returns -EPIPE within
 *    100 ms of the kill (asserted < 150 ms for scheduling noise; the figure is printed);
 *  - a send after the peer's death: the parent kills the child and sends (FERRY_NOW) every
 *    1 ms: -EPIPE within 100 ms (asserted < 150 ms);
 *  - a blocked send: the parent fills a capacity-1 channel and waits in
 *    ferry_send(FERRY_FOREVER); a thread kills the receiver: -EPIPE within 100 ms
 *    (asserted < 150 ms);
 *  - the same blocked receive on a FERRY_NO_SPIN channel;
 *  - no fd leaks in the parent.
 */
#include "chantest.h"

#include <pthread.h>

#define BUFFERED_N 1000
#define STREAM_MAX 200000
#define KILL_AFTER 2000

static void send_seq(ferry_chan *ch, uint64_t seq)
{
    uint8_t buf[64];
    size_t len = seq_len(seq, 56);
    fill_seq(buf, len, seq);
    CHECK_EQ(ferry_send(ch, buf, len, T5S), 0);
}

static void recv_seq(ferry_chan *ch, uint64_t seq)
{
    uint8_t buf[128];
    ssize_t n = ferry_recv(ch, buf, sizeof buf, T5S);
    if (n < 0) fprintf(stderr, "recv of seq %" PRIu64 ": %s\n", seq, ferry_strerror((int)n));
    CHECK_EQ(n, (ssize_t)seq_len(seq, 56));
    CHECK(check_seq(buf, (size_t)n, seq));
}

/* Fork a child holding end b (the parent keeps a); the child runs fn. */
static pid_t fork_peer(ferry_chan *a, ferry_chan *b, void (*fn)(ferry_chan *, ctl *), ctl *c)
{
    ctl_init(c);
    pid_t pid = fork_child();
    if (pid == 0) {
        ctl_child(c);
        ferry_chan_close(a);
        fn(b, c);
        child_exit();
    }
    ctl_parent(c);
    ferry_chan_close(b);
    return pid;
}

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

/* ---------------------------------------------------------------- children */

static void child_buffered(ferry_chan *b, ctl *c)
{
    (void)c;
    for (uint64_t s = 0; s < BUFFERED_N; s++) send_seq(b, s);
    raise(SIGKILL);
}

static void child_stream(ferry_chan *b, ctl *c)
{
    for (uint64_t s = 0; s < STREAM_MAX; s++) send_seq(b, s);
    ctl_expect(c, 'x'); /* never comes: the parent kills us before */
}

static void child_sleep(ferry_chan *b, ctl *c)
{
    (void)b;
    ctl_put(c, 'r');
    for (;;) pause(); /* until killed (or the watchdog) */
}

/* ---------------------------------------------------------------- cases */

static void buffered(void)
{
    STAGE("buffered");
    ferry_chan *a, *b;
    ctl c;
    CHECK_EQ(ferry_pair(NULL, &a, &b), 0);
    pid_t pid = fork_peer(a, b, child_buffered, &c);
    wait_signaled(pid, SIGKILL); /* everything is sent and the sender is dead */
    for (uint64_t s = 0; s < BUFFERED_N; s++) recv_seq(a, s);
    char buf[128];
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, T5S), -EPIPE);
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, FERRY_NOW), -EPIPE);
    CHECK_EQ(ferry_recv(a, buf, sizeof buf, FERRY_FOREVER), -EPIPE);
    CHECK_EQ(ferry_send(a, "x", 1, T5S), -EPIPE);
    ferry_chan_close(a);
    ctl_close(&c);
}

static void midstream(void)
{
    STAGE("mid-stream");
    ferry_chan *a, *b;
    ctl c;
    CHECK_EQ(ferry_pair(NULL, &a, &b), 0);
    pid_t pid = fork_peer(a, b, child_stream, &c);
    uint64_t s = 0;
    for (; s < KILL_AFTER; s++) recv_seq(a, s);
    kill(pid, SIGKILL);
    wait_signaled(pid, SIGKILL);
    uint8_t buf[128];
    ssize_t n;
    while ((n = ferry_recv(a, buf, sizeof buf, T5S)) >= 0) {
        CHECK(s < STREAM_MAX);
        CHECK_EQ(n, (ssize_t)seq_len(s, 56));
        CHECK(check_seq(buf, (size_t)n, s));
        s++;
    }
    printf("mid-stream: killed after %d received, %" PRIu64 " received in all, then %s\n",
           KILL_AFTER, s, ferry_strerror((int)n));
    CHECK_EQ(n, -EPIPE);
    ferry_chan_close(a);
    ctl_close(&c);
}

static void blocked_recv(uint32_t flags)
{
    STAGE("blocked recv");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags = flags;
    ferry_chan *a, *b;
    ctl c;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    pid_t pid = fork_peer(a, b, child_sleep, &c);
    ctl_expect(&c, 'r');
    struct killer k = {pid, 100, 0};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, killer_main, &k), 0);
    char buf[16];
    int r = (int)ferry_recv(a, buf, sizeof buf, FERRY_FOREVER);
    int64_t t_ret = now_ns();
    CHECK_EQ(pthread_join(t, NULL), 0);
    double ms = (t_ret - k.t_kill) / 1e6;
    printf("blocked recv (flags 0x%x): %s %.2f ms after the kill\n", flags, ferry_strerror(r), ms);
    CHECK_EQ(r, -EPIPE);
    CHECK(k.t_kill > 0 && t_ret > k.t_kill);
    CHECK(t_ret - k.t_kill < 150 * MS);
    wait_signaled(pid, SIGKILL);
    ferry_chan_close(a);
    ctl_close(&c);
}

static void send_after_death(void)
{
    STAGE("send after death");
    ferry_chan *a, *b;
    ctl c;
    CHECK_EQ(ferry_pair(NULL, &a, &b), 0);
    pid_t pid = fork_peer(a, b, child_sleep, &c);
    ctl_expect(&c, 'r');
    int64_t t_kill = now_ns();
    kill(pid, SIGKILL);
    int r = 0, sends = 0;
    while (now_ns() - t_kill < 2 * SEC) {
        r = ferry_send(a, "ping", 4, FERRY_NOW);
        sends++;
        if (r == -EPIPE) break;
        CHECK(r == 0 || r == -EAGAIN);
        sleep_ms(1);
    }
    int64_t t_ret = now_ns();
    printf("send after death: %s %.2f ms after the kill (%d sends)\n", ferry_strerror(r),
           (t_ret - t_kill) / 1e6, sends);
    CHECK_EQ(r, -EPIPE);
    CHECK(t_ret - t_kill < 150 * MS);
    wait_signaled(pid, SIGKILL);
    CHECK_EQ(ferry_send(a, "ping", 4, T5S), -EPIPE);
    CHECK_EQ(ferry_send(a, "ping", 4, FERRY_FOREVER), -EPIPE);
    ferry_chan_close(a);
    ctl_close(&c);
}

static void blocked_send(void)
{
    STAGE("blocked send");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.capacity = 1;
    ferry_chan *a, *b;
    ctl c;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    pid_t pid = fork_peer(a, b, child_sleep, &c);
    ctl_expect(&c, 'r');
    CHECK_EQ(ferry_send(a, "1", 1, FERRY_NOW), 0);
    CHECK_EQ(ferry_send(a, "2", 1, FERRY_NOW), -EAGAIN);
    struct killer k = {pid, 100, 0};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, killer_main, &k), 0);
    int r = ferry_send(a, "2", 1, FERRY_FOREVER);
    int64_t t_ret = now_ns();
    CHECK_EQ(pthread_join(t, NULL), 0);
    printf("blocked send: %s %.2f ms after the kill\n", ferry_strerror(r),
           (t_ret - k.t_kill) / 1e6);
    CHECK_EQ(r, -EPIPE);
    CHECK(k.t_kill > 0 && t_ret > k.t_kill);
    CHECK(t_ret - k.t_kill < 150 * MS);
    wait_signaled(pid, SIGKILL);
    ferry_chan_close(a);
    ctl_close(&c);
}

int main(void)
{
    watchdog_arm();
    int base = fd_count();
    buffered();
    CHECK_EQ(fd_count(), base);
    midstream();
    CHECK_EQ(fd_count(), base);
    blocked_recv(0);
    CHECK_EQ(fd_count(), base);
    send_after_death();
    CHECK_EQ(fd_count(), base);
    blocked_send();
    CHECK_EQ(fd_count(), base);
    blocked_recv(FERRY_NO_SPIN);
    CHECK_EQ(fd_count(), base);
    printf("test_chan_death: ok\n");
    return 0;
}
