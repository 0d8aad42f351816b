// SPDX-License-Identifier: MIT
/*
 * test_shm_watch — the process's link watcher (src/shm/watch.h): a shm channel end asleep
 * without a deadline sleeps once, not in 5 ms slices, and still hears of a peer killed by
 * SIGKILL (which wakes nobody) at once.
 *   idle:     a receive that waits 300 ms for its message slept at most 3 times (in slices:
 *             ~60), and got the message.
 *   kill_rx:  a receiver asleep on an empty channel, the peer SIGKILLed after 100 ms:
 *             -EPIPE, at most 3 sleeps (slices: ~20).
 *   kill_tx:  the same for a sender asleep on a full ring.
 *   kill_room: a sender with room in the ring, on an end that joined the watcher (it
 *             slept once), the peer SIGKILLed: its sends that may wait ask no kernel
 *             every 10 ms (shm_tx.c, tx_check) but the watcher's hup word, and still
 *             return -EPIPE once it fired (within 3 s: a loaded machine may hold the
 *             watcher thread back), long before the ring (256 messages) fills.
 *   fork:     a fork child does not use its parent's watcher (its copy of the epoll
 *             descriptor is closed), and its own hears of a death on an end it inherited.
 *   churn:    channels closed while the watcher fires for them, 2,000 times, two ways (a
 *             thread asleep on the end; and an end closed right after its peer, so the
 *             watcher's event may come for an entry that left): no use after free (ASan,
 *             TSan in CI), every receive -EPIPE, no descriptor left.
 * Each exits 1 with the check that failed; a watchdog alarm turns a hang into a failure.
 */
#include "testutil.h"

#include <fcntl.h>
#include <ferry/ferry.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static ferry_chan_counters counters(ferry_chan *c)
{
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(c, &st), 0);
    return st;
}

/* A pair that sleeps at once (no spin: this is about sleeping), capacity cap. */
static void make_pair(uint32_t cap, ferry_chan **a, ferry_chan **b)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.capacity = cap;
    o.flags = FERRY_NO_SPIN;
    CHECK_EQ(ferry_pair(&o, a, b), 0);
}

/* Fork a child that keeps b only: after ms, it sends one byte on b (send) and exits, or
 * is killed by SIGKILL (no close, no wake-up). The caller closes its copy of b. */
static pid_t peer(ferry_chan *a, ferry_chan *b, int ms, int send)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_chan_close(a);
        sleep_ms(ms);
        if (send) {
            CHECK_EQ(ferry_send(b, "m", 1, FERRY_NOW), 0);
            ferry_chan_close(b);
            _exit(0);
        }
        raise(SIGKILL);
        _exit(2);
    }
    ferry_chan_close(b);
    return pid;
}

static void reap(pid_t pid, int killed)
{
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    if (killed)
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    else
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_idle(void)
{
    ferry_chan *a, *b;
    make_pair(16, &a, &b);
    pid_t pid = peer(a, b, 300, 1);
    char m = 0;
    CHECK_EQ(ferry_recv(a, &m, 1, FERRY_FOREVER), 1);
    CHECK_EQ(m, 'm');
    ferry_chan_counters st = counters(a);
    fprintf(stderr, "idle: 300 ms asleep in %llu sleeps\n", (unsigned long long)st.recv_waits);
    CHECK(st.recv_waits >= 1 && st.recv_waits <= 3);
    reap(pid, 0);
    ferry_chan_close(a);
}

static void test_kill(int tx)
{
    ferry_chan *a, *b;
    make_pair(1, &a, &b);
    if (tx) CHECK_EQ(ferry_send(a, "x", 1, FERRY_NOW), 0); /* the ring is full */
    pid_t pid = peer(a, b, 100, 0);
    int rc;
    char m;
    if (tx)
        rc = ferry_send(a, "y", 1, FERRY_FOREVER);
    else
        rc = (int)ferry_recv(a, &m, 1, FERRY_FOREVER);
    CHECK_EQ(rc, -EPIPE);
    ferry_chan_counters st = counters(a);
    uint64_t sleeps = tx ? st.send_waits : st.recv_waits;
    fprintf(stderr, "kill_%s: -EPIPE after %llu sleeps\n", tx ? "tx" : "rx",
            (unsigned long long)sleeps);
    CHECK(sleeps >= 1 && sleeps <= 3);
    reap(pid, 1);
    ferry_chan_close(a);
}

static void test_kill_room(void)
{
    ferry_chan *a, *b;
    make_pair(256, &a, &b);
    char m;
    CHECK_EQ(ferry_recv(a, &m, 1, 2 * 1000000), -ETIMEDOUT); /* a slept: it joined */
    CHECK(counters(a).recv_waits >= 1);
    pid_t pid = peer(a, b, 0, 0);
    reap(pid, 1);
    int rc = 0, sent = 0;
    for (; sent < 150 && (rc = ferry_send(a, "z", 1, FERRY_FOREVER)) == 0; sent++) sleep_ms(20);
    fprintf(stderr, "kill_room: -EPIPE after %d sends\n", sent);
    CHECK_EQ(rc, -EPIPE);
    CHECK_EQ(ferry_send(a, "z", 1, FERRY_NOW), -EPIPE); /* and from then on */
    ferry_chan_close(a);
}

static void test_fork(void)
{
    ferry_chan *a, *b;
    make_pair(16, &a, &b);
    char m;
    /* Sleep on a once: a joins this process's watcher, which now exists. */
    CHECK_EQ(ferry_recv(a, &m, 1, 20 * 1000000), -ETIMEDOUT);
    int parent_fd = ferry__watch_fd();
    CHECK(parent_fd >= 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* Not the parent's watcher, not its descriptor. */
        CHECK_EQ(ferry__watch_fd(), -1);
        CHECK_EQ(fcntl(parent_fd, F_GETFD), -1);
        CHECK_EQ(errno, EBADF);
        /* The inherited end joins our own watcher, which hears of the death. */
        pid_t g = peer(a, b, 100, 0);
        CHECK_EQ(ferry_recv(a, &m, 1, FERRY_FOREVER), -EPIPE);
        ferry_chan_counters st = counters(a);
        CHECK(st.recv_waits >= 2 && st.recv_waits <= 4); /* the parent's one, then ours */
        CHECK(ferry__watch_fd() >= 0);
        reap(g, 1);
        ferry_chan_close(a);
        _exit(0);
    }
    /* Ours go: only the child's watcher can wake it (our entry for a leaves our set). */
    ferry_chan_close(a);
    ferry_chan_close(b);
    reap(pid, 0);
    CHECK_EQ(ferry__watch_fd(), parent_fd);
}

static void *sleeper(void *arg)
{
    char m;
    intptr_t rc = (intptr_t)ferry_recv(arg, &m, 1, FERRY_FOREVER);
    return (void *)rc;
}

static void test_churn(void)
{
    for (int i = 0; i < 1000; i++) {
        ferry_chan *a, *b;
        make_pair(16, &a, &b);
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, sleeper, a), 0);
        if (i % 4 == 0) sleep_ms(1); /* mostly asleep by now; sometimes not yet */
        ferry_chan_close(b);         /* a's link hangs up: the watcher fires, or has */
        void *rc;
        CHECK_EQ(pthread_join(t, &rc), 0);
        CHECK_EQ((intptr_t)rc, -EPIPE);
        ferry_chan_close(a);
    }
    for (int i = 0; i < 1000; i++) {
        ferry_chan *a, *b;
        make_pair(16, &a, &b);
        char m;
        CHECK_EQ(ferry_recv(a, &m, 1, 1000000), -ETIMEDOUT); /* a joins */
        ferry_chan_close(b);
        ferry_chan_close(a); /* the watcher's event for a may come after this */
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(100); /* a hang (a death nobody heard of) fails the test, not the CI job */
    int fds = fd_count();
    test_idle();
    test_kill(0);
    test_kill(1);
    test_kill_room();
    test_fork();
    test_churn();
    CHECK_EQ(fd_count(), fds);
    fprintf(stderr, "ok\n");
    return 0;
}
