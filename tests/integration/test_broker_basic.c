// SPDX-License-Identifier: MIT
/*
 * test_broker_basic — the naming service end to end with a real ferryd: register,
 * lookup, list, connect (shm and unix) with each side learning the other's
 * kernel-stamped identity, exact errors for missing and bad names and for a name taken,
 * release on close and on death (with watch events), and no descriptor leaks.
 */
#include "testutil.h"

#include "brokerutil.h"

#include <ferry/ferry.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>

#define SEC ((int64_t)1000000000)

/* A server: registers name, says so on `ready`, then echoes `rounds` connections (one
 * message each), each checking that the peer is the parent. */
static pid_t serve(const char *name, int rounds, const ferry_policy *pol)
{
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed check in the parent ends it too */
        close(ready[0]);
        ferry_listener *l;
        CHECK_EQ(ferry_register(name, pol, NULL, &l, 5 * SEC), 0);
        CHECK(write(ready[1], "r", 1) == 1);
        for (int i = 0; i < rounds; i++) {
            ferry_chan *ch;
            CHECK_EQ(ferry_accept(l, &ch, 10 * SEC), 0);
            ferry_cred c;
            CHECK_EQ(ferry_chan_peer(ch, &c), 0);
            CHECK_EQ(c.pid, parent);
            CHECK_EQ(c.uid, getuid());
            char buf[64];
            ssize_t n = ferry_recv(ch, buf, sizeof buf, 10 * SEC);
            CHECK(n > 0);
            CHECK_EQ(ferry_send(ch, buf, (size_t)n, 10 * SEC), 0);
            CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 10 * SEC), -EPIPE);
            ferry_chan_close(ch);
        }
        pause(); /* until killed: the name stays registered */
        _exit(0);
    }
    close(ready[1]);
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    close(ready[0]);
    return pid;
}

static void echo_once(const char *name, int kind, pid_t server)
{
    ferry_chan *ch;
    CHECK_EQ(ferry_connect(name, kind, NULL, &ch, 5 * SEC), 0);
    ferry_cred c;
    CHECK_EQ(ferry_chan_peer(ch, &c), 0);
    CHECK_EQ(c.pid, server);
    CHECK_EQ(ferry_send(ch, "hello", 5, SEC), 0);
    char buf[16];
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 5 * SEC), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    ferry_chan_close(ch);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    broker_start(&b);
    int fds = fd_count();

    /* Bad names and missing names. */
    ferry_chan *ch;
    ferry_name_info in;
    CHECK_EQ(ferry_connect("no..dots", FERRY_KIND_SHM, NULL, &ch, SEC), -EINVAL);
    CHECK_EQ(ferry_connect("org.test.none", FERRY_KIND_SHM, NULL, &ch, SEC), -ENOENT);
    CHECK_EQ(ferry_connect("org.test.none", 7, NULL, &ch, SEC), -EINVAL);
    CHECK_EQ(ferry_lookup("org.test.none", &in, SEC), -ENOENT);

    ferry_watch *w;
    CHECK_EQ(ferry_watch_open("org.test.*", &w, SEC), 0);
    ferry_watch *w_other;
    CHECK_EQ(ferry_watch_open("org.other", &w_other, SEC), 0);

    pid_t srv = serve("org.test.echo", 3, NULL);
    ferry_watch_event ev;
    CHECK_EQ(ferry_watch_next(w, &ev, 5 * SEC), 0);
    CHECK_EQ(ev.kind, FERRY_EV_OWNED);
    CHECK(strcmp(ev.info.name, "org.test.echo") == 0);
    CHECK_EQ(ev.info.pid, srv);

    CHECK_EQ(ferry_lookup("org.test.echo", &in, SEC), 0);
    CHECK_EQ(in.pid, srv);
    CHECK_EQ(in.uid, getuid());
    CHECK_EQ(in.mode, 0600);

    /* The name is taken. */
    ferry_listener *l;
    CHECK_EQ(ferry_register("org.test.echo", NULL, NULL, &l, SEC), -EEXIST);

    echo_once("org.test.echo", FERRY_KIND_SHM, srv);
    echo_once("org.test.echo", FERRY_KIND_UNIX, srv);
    CHECK_EQ(ferry_lookup("org.test.echo", &in, SEC), 0);
    CHECK_EQ(in.connects, 2);

    /* A listener of our own: list shows both, in order; closing releases. */
    CHECK_EQ(ferry_register("org.test.aaa", NULL, NULL, &l, SEC), 0);
    CHECK_EQ(ferry_watch_next(w, &ev, 5 * SEC), 0);
    CHECK_EQ(ev.kind, FERRY_EV_OWNED);
    ferry_name_info all[8];
    CHECK_EQ(ferry_list(NULL, all, 8, SEC), 2);
    CHECK(strcmp(all[0].name, "org.test.aaa") == 0);
    CHECK(strcmp(all[1].name, "org.test.echo") == 0);
    CHECK_EQ(ferry_list("org.test.aaa", all, 8, SEC), 1);
    CHECK_EQ(ferry_list(NULL, all, 1, SEC), 1);
    ferry_listener_close(l);
    CHECK_EQ(ferry_watch_next(w, &ev, 5 * SEC), 0);
    CHECK_EQ(ev.kind, FERRY_EV_RELEASED);
    CHECK(strcmp(ev.info.name, "org.test.aaa") == 0);

    /* Death: the name is free at once, the watcher hears it, and a client's channel
     * (made but not yet served) says the peer is gone. */
    ferry_chan *orphan;
    CHECK_EQ(ferry_connect("org.test.echo", FERRY_KIND_UNIX, NULL, &orphan, 5 * SEC), 0);
    CHECK_EQ(kill(srv, SIGKILL), 0);
    int64_t t0 = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = ts.tv_sec * SEC + ts.tv_nsec;
    CHECK_EQ(ferry_watch_next(w, &ev, 5 * SEC), 0);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t took = ts.tv_sec * SEC + ts.tv_nsec - t0;
    CHECK_EQ(ev.kind, FERRY_EV_DIED);
    CHECK(took < SEC / 10);
    waitpid(srv, NULL, 0);
    CHECK_EQ(ferry_lookup("org.test.echo", &in, SEC), -ENOENT);
    char byte;
    CHECK_EQ(ferry_recv(orphan, &byte, 1, 5 * SEC), -EPIPE);
    ferry_chan_close(orphan);
    CHECK_EQ(ferry_watch_next(w_other, &ev, 0), -EAGAIN); /* it matched nothing */

    ferry_watch_close(w);
    ferry_watch_close(w_other);
    CHECK_EQ(fd_count(), fds);
    broker_stop(&b);
    printf("ok\n");
    return 0;
}
