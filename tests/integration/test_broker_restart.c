// SPDX-License-Identifier: MIT
/*
 * test_broker_restart — ferryd is killed (-9) and started again: a channel made through
 * it keeps working throughout, and the server (an event loop polling its listener fd and
 * its channel) registers its name again by itself, so new clients reach it.
 */
#include "testutil.h"

#include "brokerutil.h"

#include <ferry/ferry.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>

#define SEC  ((int64_t)1000000000)
#define NAME "org.test.restart"

/* Echo every message on every channel; accept new ones; until killed. */
static void server(int ready)
{
    ferry_listener *l;
    CHECK_EQ(ferry_register(NAME, NULL, NULL, &l, 5 * SEC), 0);
    CHECK(write(ready, "r", 1) == 1);
    ferry_chan *chans[8];
    int n = 0;
    for (;;) {
        struct pollfd p[9];
        p[0] = (struct pollfd){.fd = ferry_listener_poll_fd(l), .events = POLLIN};
        for (int i = 0; i < n; i++)
            p[i + 1] = (struct pollfd){.fd = ferry_chan_poll_fd(chans[i]), .events = POLLIN};
        CHECK(poll(p, (nfds_t)n + 1, 1000) >= 0);
        if (p[0].revents) {
            ferry_chan *ch;
            int rc = ferry_accept(l, &ch, FERRY_NOW);
            if (rc == 0 && n < 8)
                chans[n++] = ch;
            else
                CHECK(rc == -EAGAIN);
        }
        for (int i = 0; i < n; i++) {
            if (!p[i + 1].revents) continue;
            char buf[64];
            ssize_t got = ferry_recv(chans[i], buf, sizeof buf, FERRY_NOW);
            if (got >= 0)
                CHECK_EQ(ferry_send(chans[i], buf, (size_t)got, SEC), 0);
            else if (got == -EPIPE) {
                ferry_chan_close(chans[i]);
                chans[i--] = chans[--n];
            }
        }
    }
}

static void echo(ferry_chan *ch, const char *what)
{
    size_t len = strlen(what);
    CHECK_EQ(ferry_send(ch, what, len, SEC), 0);
    char buf[64];
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 5 * SEC), (ssize_t)len);
    CHECK(memcmp(buf, what, len) == 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    broker_start(&b);
    int fds = fd_count();
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t srv = fork();
    CHECK(srv >= 0);
    if (srv == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed check in the parent ends it too */
        close(ready[0]);
        server(ready[1]);
    }
    close(ready[1]);
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    close(ready[0]);

    ferry_chan *shm, *ux;
    CHECK_EQ(ferry_connect(NAME, FERRY_KIND_SHM, NULL, &shm, 5 * SEC), 0);
    CHECK_EQ(ferry_connect(NAME, FERRY_KIND_UNIX, NULL, &ux, 5 * SEC), 0);
    echo(shm, "before");
    echo(ux, "before");

    broker_kill(&b);
    echo(shm, "broker dead");
    echo(ux, "broker dead");
    ferry_name_info in;
    CHECK_EQ(ferry_lookup(NAME, &in, SEC), -ECONNREFUSED); /* no autospawn in tests */

    broker_run(&b, NULL); /* the same socket path; the stale file is replaced */
    int found = 0;
    for (int i = 0; i < 300 && !found; i++) { /* the server backs off at most 1 s */
        int rc = ferry_lookup(NAME, &in, SEC);
        CHECK(rc == 0 || rc == -ENOENT);
        if (rc == 0)
            found = 1;
        else
            sleep_ms(10);
    }
    CHECK(found);
    CHECK_EQ(in.pid, srv);
    echo(shm, "after");
    echo(ux, "after");
    ferry_chan *again;
    CHECK_EQ(ferry_connect(NAME, FERRY_KIND_SHM, NULL, &again, 5 * SEC), 0);
    echo(again, "new client");

    ferry_chan_close(again);
    ferry_chan_close(shm);
    ferry_chan_close(ux);
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    CHECK_EQ(fd_count(), fds);
    broker_stop(&b);
    printf("ok\n");
    return 0;
}
