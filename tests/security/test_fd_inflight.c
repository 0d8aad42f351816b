// SPDX-License-Identifier: MIT
/*
 * test_fd_inflight — fds in flight on unix:// are flow control, not an error: a sender
 * (a throwaway uid with RLIMIT_NOFILE 64, so the kernel refuses its 65th fd in flight
 * with ETOOMANYREFS) sends 12 messages of 16 fds to a receiver that takes nothing for
 * 300 ms. Every send returns 0: the ones beyond the kernel's limit wait (at least one
 * waited >= 200 ms) until the receiver takes messages, as on a full channel; a FERRY_NOW
 * send meanwhile is -EAGAIN. The receiver then gets all 12 in order, each with its 16
 * working fds. Run as root (the sender drops to its uid); no fd leaks, nothing left.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define NMSG 12
#define U1   ((ident){61311, 61311, 0, {0}})

static char dir[64], url[128];
static int ctl[2]; /* sender -> parent: the longest send, in ms (int) */

static void sender(void *arg)
{
    (void)arg;
    struct rlimit rl = {64, 64};
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    ferry_chan *ch = NULL;
    CHECK_EQ(ferry_chan_open(url, NULL, &ch, 5 * SEC), 0);
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.nfds = FERRY_MAX_FDS;
    for (int i = 0; i < FERRY_MAX_FDS; i++) m.fds[i] = p[i % 2];
    int64_t longest = 0;
    int saw_eagain = 0;
    for (uint32_t i = 0; i < NMSG; i++) {
        m.data = &i;
        m.len = sizeof i;
        m.type = 1;
        if (i == 5) { /* 80 fds in flight, beyond the limit: a FERRY_NOW send cannot go */
            uint32_t never = 999;
            m.data = &never;
            int r = ferry_sendmsg(ch, &m, FERRY_NOW);
            m.data = &i;
            saw_eagain = r == -EAGAIN;
            if (r != -EAGAIN) fprintf(stderr, "FERRY_NOW send %u: %d\n", i, r);
        }
        int64_t t0 = now_ns();
        int r = ferry_sendmsg(ch, &m, 10 * SEC);
        int64_t el = now_ns() - t0;
        if (r != 0) fprintf(stderr, "send %u: %s\n", i, ferry_strerror(r));
        CHECK_EQ(r, 0);
        if (el > longest) longest = el;
    }
    CHECK(saw_eagain);
    int ms = (int)(longest / MS);
    CHECK(write(ctl[1], &ms, sizeof ms) == sizeof ms);
    char buf[8];
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 10 * SEC), 2); /* "ok": all were taken */
    ferry_chan_close(ch);
    close(p[0]);
    close(p[1]);
}

/* A failed check exits: remove what this run made (in the process that made it). */
static pid_t main_pid;

static void cleanup(void)
{
    char p[128];
    if (getpid() != main_pid || !dir[0]) return;
    snprintf(p, sizeof p, "%s/s", dir);
    unlink(p);
    rmdir(dir);
}

int main(void)
{
    require_root();
    test_deadline(60);
    snprintf(dir, sizeof dir, "/tmp/ferry-inflight-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    main_pid = getpid();
    atexit(cleanup);
    CHECK(chmod(dir, 0755) == 0);
    snprintf(url, sizeof url, "unix://%s/s", dir);
    int base = fd_count();
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.mode = 0666;
    ferry_listener *l;
    CHECK_EQ(ferry_listen(url, &o, &l), 0);
    CHECK(pipe2(ctl, O_CLOEXEC) == 0);
    ident u = U1;
    pid_t pid = spawn_as(&u, sender, NULL);
    ferry_chan *ch = NULL;
    CHECK_EQ(ferry_accept(l, &ch, 5 * SEC), 0);
    ferry_listener_close(l);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL); /* take nothing: the sender reaches the kernel's limit */
    char buf[16];
    for (uint32_t i = 0; i < NMSG; i++) {
        ferry_msg m;
        memset(&m, 0, sizeof m);
        m.data = buf;
        m.cap = sizeof buf;
        ssize_t n = ferry_recvmsg(ch, &m, 0, 10 * SEC);
        CHECK_EQ(n, (ssize_t)sizeof i);
        uint32_t got;
        memcpy(&got, buf, sizeof got);
        CHECK_EQ(got, i);
        CHECK_EQ(m.nfds, FERRY_MAX_FDS);
        for (uint32_t j = 0; j < m.nfds; j++) {
            CHECK(fcntl(m.fds[j], F_GETFD) >= 0);
            close(m.fds[j]);
        }
    }
    int ms = 0;
    CHECK(read(ctl[0], &ms, sizeof ms) == sizeof ms);
    CHECK_EQ(ferry_send(ch, "ok", 2, 5 * SEC), 0);
    wait_ok(pid);
    printf("the longest send waited %d ms for the receiver (>= 200)\n", ms);
    CHECK(ms >= 200);
    ferry_chan_close(ch);
    close(ctl[0]);
    close(ctl[1]);
    CHECK_EQ(fd_count(), base);
    CHECK(rmdir(dir) == 0);
    printf("test_fd_inflight: ok\n");
    return 0;
}
