// SPDX-License-Identifier: MIT
/*
 * test_direct — direct communication by name with a real ferryd: ferry_send_to reuses
 * one connection per destination (ferryd counts one introduction however many sends),
 * ferry_recv_from(from) takes only that sender's messages, in order, leaving the others
 * queued; NULL takes from anyone and reports the sender's kernel identity; a destination
 * that restarts under the same name is reached again by the next send; exact errors for
 * a missing name and for timeouts; nothing leaks.
 */
#include "testutil.h"

#include "brokerutil.h"

#include <ferry/ferry.h>
#include <signal.h>
#include <sys/prctl.h>

#define SEC ((int64_t)1000000000)
#define N   500

static void send_n(const char *to, int64_t type, int n)
{
    for (int i = 0; i < n; i++) {
        uint32_t v = (uint32_t)i;
        ferry_msg m = {.type = type, .data = &v, .len = sizeof v};
        CHECK_EQ(ferry_send_to(to, &m, 5 * SEC), 0);
    }
}

/* A child that owns `name` (an inbox) and sends n messages of type `type` to "org.d.a"
 * (ferry_connect waits for the receiver to accept: that happens inside its recv_from). */
static pid_t sender(const char *name, int64_t type, int n, int ready)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        ferry_inbox *me;
        CHECK_EQ(ferry_inbox_open(name, NULL, NULL, &me, 5 * SEC), 0);
        CHECK(write(ready, "s", 1) == 1); /* registered: the receiver may ask for us */
        send_n("org.d.a", type, n);
        pause(); /* keep the name until killed */
        _exit(0);
    }
    return pid;
}

static uint32_t recv_one(ferry_inbox *in, const char *from, int64_t filter, ferry_cred *who)
{
    uint32_t v;
    ferry_msg m = {.data = &v, .cap = sizeof v};
    CHECK_EQ(ferry_recv_from(in, from, &m, filter, who, 5 * SEC), sizeof v);
    return v;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    broker_start(&b);
    int fds = fd_count();
    ferry_inbox *a;
    CHECK_EQ(ferry_inbox_open("org.d.a", NULL, NULL, &a, SEC), 0);
    uint32_t v;
    ferry_msg m = {.data = &v, .cap = sizeof v, .len = sizeof v};
    CHECK_EQ(ferry_send_to("org.d.none", &m, SEC), -ENOENT);
    CHECK_EQ(ferry_recv_from(a, NULL, &m, 0, NULL, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_recv_from(a, "org.d.none", &m, 0, NULL, SEC), -ENOENT);

    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pb = sender("org.d.b", 1, N, ready[1]);
    pid_t pc = sender("org.d.c", 2, N, ready[1]);
    char c;
    CHECK(read(ready[0], &c, 1) == 1 && read(ready[0], &c, 1) == 1);

    /* From b only: all of b's, in order, though c's are interleaved in time. */
    ferry_cred who;
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(recv_one(a, "org.d.b", 0, &who), i);
        CHECK_EQ(who.pid, pb);
    }
    /* Then anyone: only c's are left, in order. */
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(recv_one(a, NULL, 0, &who), i);
        CHECK_EQ(who.pid, pc);
    }
    CHECK_EQ(ferry_recv_from(a, "org.d.b", &m, 0, NULL, FERRY_NOW), -EAGAIN);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.d.a", &in, SEC), 0);
    CHECK_EQ(in.connects, 2); /* one connection per sender, reused for all N */

    /* A type filter on a sender's channel, and a destination that goes away and comes
     * back under the same name: the next send reaches the new owner. (The sends come
     * from a child: ferry_connect waits for the receiver to accept, which it does in
     * recv_from.) */
    ferry_inbox *x;
    CHECK_EQ(ferry_inbox_open("org.d.x", NULL, NULL, &x, SEC), 0);
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t px = fork();
    CHECK(px >= 0);
    if (px == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        send_n("org.d.x", 7, 1);
        uint32_t w = 99;
        ferry_msg t = {.type = 3, .data = &w, .len = sizeof w};
        CHECK_EQ(ferry_send_to("org.d.x", &t, 5 * SEC), 0);
        char g;
        CHECK(read(go[0], &g, 1) == 1); /* the receiver came back */
        int rc = -EPIPE;
        for (int i = 0; i < 3 && rc != 0; i++) { /* a send into the closed ring may vanish */
            w = 5 + (uint32_t)i;
            rc = ferry_send_to("org.d.x", &t, 5 * SEC);
        }
        CHECK_EQ(rc, 0);
        _exit(0);
    }
    CHECK_EQ(recv_one(x, NULL, 3, NULL), 99); /* passes over the type-7 one */
    CHECK_EQ(recv_one(x, NULL, 0, NULL), 0);
    ferry_inbox_close(x);
    CHECK_EQ(ferry_inbox_open("org.d.x", NULL, NULL, &x, SEC), 0);
    CHECK(write(go[1], "g", 1) == 1);
    uint32_t got = recv_one(x, NULL, 3, &who);
    CHECK(got >= 5 && got <= 7);
    CHECK_EQ(who.pid, px);
    wait_ok(px);
    close(go[0]);
    close(go[1]);
    ferry_inbox_close(x);

    kill(pb, SIGKILL);
    kill(pc, SIGKILL);
    waitpid(pb, NULL, 0);
    waitpid(pc, NULL, 0);
    close(ready[0]);
    close(ready[1]);
    ferry_inbox_close(a);
    ferry_send_to_reset();
    CHECK_EQ(fd_count(), fds);
    broker_stop(&b);
    printf("ok\n");
    return 0;
}
