// SPDX-License-Identifier: MIT
/*
 * test_shm_now_epipe — a FERRY_NOW send or receive on a shm channel end whose peer is
 * gone returns -EPIPE synchronously: in the very call, not after the link watcher (a
 * thread, src/shm/watch.c) got round to the hang-up. The peer goes three ways: it
 * closes its end in this process, it closes its end in another process that exits, it
 * is killed with SIGKILL (no close, no wake-up). Each way, three shapes of our end:
 *   fresh:   it never sent, received or slept;
 *   joined:  it exchanged messages and slept once (it joined the process's watcher,
 *            whose event for the hang-up races with our call), then was left alone for
 *            30 ms (a non-waiting call asks the kernel at most every 10 ms: shm-channel.md,
 *            "Peer death"; the window is past);
 *   pending: the peer committed one message before it went: the receive hands it out
 *            first, then -EPIPE (and the send -EPIPE from the start).
 * Both calls are checked each time, each first on a pair of its own (the first -EPIPE
 * marks the end dead, which would answer the second one without asking), then the other
 * one too. No descriptor may be left behind (fd_count).
 */
#include "testutil.h"

#include <ferry/ferry.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

enum { PEER_CLOSE, PEER_EXIT, PEER_KILL };
enum { FRESH, JOINED, PENDING };

static const char *const peer_names[] = {"close", "exit", "kill -9"};
static const char *const shape_names[] = {"fresh", "joined", "pending"};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Make our end `a` of the given shape; the peer's end is b (still in this process). */
static void shape_end(int shape, ferry_chan *a, ferry_chan *b)
{
    char m[64];
    if (shape == JOINED) {
        for (int i = 0; i < 10; i++) {
            CHECK_EQ(ferry_send(a, "ping", 4, FERRY_NOW), 0);
            CHECK_EQ(ferry_recv(b, m, sizeof m, FERRY_NOW), 4);
            CHECK_EQ(ferry_send(b, "pong", 4, FERRY_NOW), 0);
            CHECK_EQ(ferry_recv(a, m, sizeof m, FERRY_NOW), 4);
        }
        /* One sleep: a joins the watcher (no spin: FERRY_NO_SPIN). */
        CHECK_EQ(ferry_recv(a, m, sizeof m, 2 * 1000000), -ETIMEDOUT);
        ferry_chan_counters st;
        ferry_chan_counters_init(&st);
        CHECK_EQ(ferry_chan_stats(a, &st), 0);
        CHECK(st.recv_waits >= 1);
        CHECK(ferry__watch_fd() >= 0);
    }
    if (shape == PENDING) CHECK_EQ(ferry_send(b, "last", 4, FERRY_NOW), 0);
}

/* Our end a, the peer's b, gone the given way; returns once it is gone for sure (the
 * close returned; the child was reaped). */
static void peer_goes(int how, ferry_chan *a, ferry_chan *b)
{
    if (how == PEER_CLOSE) {
        ferry_chan_close(b);
        return;
    }
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_chan_close(a);
        if (how == PEER_KILL) raise(SIGKILL);
        ferry_chan_close(b);
        _exit(0);
    }
    ferry_chan_close(b);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    if (how == PEER_KILL)
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    else
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void one(int how, int shape, int send_first)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.capacity = 16;
    o.flags = FERRY_NO_SPIN;
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    shape_end(shape, a, b);
    if (shape == JOINED) sleep_ms(30); /* past the 10 ms of the last liveness check */
    peer_goes(how, a, b);
    char m[64];
    if (shape == PENDING) {
        if (send_first) CHECK_EQ(ferry_send(a, "x", 1, FERRY_NOW), -EPIPE);
        CHECK_EQ(ferry_recv(a, m, sizeof m, FERRY_NOW), 4); /* committed before: handed out */
        CHECK_EQ(memcmp(m, "last", 4), 0);
        CHECK_EQ(ferry_recv(a, m, sizeof m, FERRY_NOW), -EPIPE);
        CHECK_EQ(ferry_send(a, "x", 1, FERRY_NOW), -EPIPE);
    } else if (send_first) {
        CHECK_EQ(ferry_send(a, "x", 1, FERRY_NOW), -EPIPE);
        CHECK_EQ(ferry_recv(a, m, sizeof m, FERRY_NOW), -EPIPE);
    } else {
        CHECK_EQ(ferry_recv(a, m, sizeof m, FERRY_NOW), -EPIPE);
        CHECK_EQ(ferry_send(a, "x", 1, FERRY_NOW), -EPIPE);
    }
    /* And it stays so. */
    CHECK_EQ(ferry_send(a, "x", 1, FERRY_NOW), -EPIPE);
    CHECK_EQ(ferry_recv(a, m, sizeof m, FERRY_NOW), -EPIPE);
    ferry_chan_close(a);
    printf("%s, %s, %s first: -EPIPE\n", peer_names[how], shape_names[shape],
           send_first ? "send" : "recv");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(60); /* a hang fails the test, not the CI job */
    int fds = fd_count();
    for (int how = PEER_CLOSE; how <= PEER_KILL; how++)
        for (int shape = FRESH; shape <= PENDING; shape++)
            for (int send_first = 0; send_first <= 1; send_first++) {
                one(how, shape, send_first);
                CHECK_EQ(fd_count(), fds);
            }
    printf("ok\n");
    return 0;
}
