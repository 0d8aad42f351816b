// SPDX-License-Identifier: MIT
/*
 * test_fifo_listener — the fifo listener's descriptor (inotify on path.s2c): it is not
 * readable while no client came, becomes readable when one opens the FIFOs, and accept
 * then succeeds at once; a bounded accept with nobody there waits its whole bound (on
 * the descriptor, not by polling the FIFO) and says -ETIMEDOUT; nothing leaks.
 */
#include "testutil.h"

#include <ferry/ferry.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <time.h>

#define MS  ((int64_t)1000000)
#define SEC (1000 * MS)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/ferry-fifo-XXXXXX", url[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(url, sizeof url, "fifo://%s/f", dir);
    int fds = fd_count();
    ferry_listener *l;
    CHECK_EQ(ferry_listen(url, NULL, &l), 0);
    int lfd = ferry_listener_poll_fd(l);
    CHECK(lfd >= 0);
    CHECK(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 0), 0);
    ferry_chan *ch;
    CHECK_EQ(ferry_accept(l, &ch, FERRY_NOW), -EAGAIN);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_accept(l, &ch, 50 * MS), -ETIMEDOUT);
    int64_t el = now_ns() - t0;
    CHECK(el >= 50 * MS && el < SEC);
    CHECK_EQ(poll(&p, 1, 0), 0);

    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        ferry_chan *c;
        CHECK_EQ(ferry_chan_open(url, NULL, &c, 5 * SEC), 0);
        CHECK_EQ(ferry_send(c, "hi", 2, SEC), 0);
        char buf[8];
        CHECK_EQ(ferry_recv(c, buf, sizeof buf, 5 * SEC), 2);
        ferry_chan_close(c);
        _exit(0);
    }
    CHECK_EQ(poll(&p, 1, 5000), 1); /* the client opened path.s2c */
    CHECK_EQ(ferry_accept(l, &ch, FERRY_NOW), 0);
    char buf[8];
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 5 * SEC), 2);
    CHECK_EQ(ferry_send(ch, buf, 2, SEC), 0);
    wait_ok(pid);
    CHECK_EQ(ferry_accept(l, &ch, FERRY_NOW), -EBUSY); /* one client per FIFO pair */
    ferry_chan_close(ch);
    ferry_listener_close(l);
    CHECK_EQ(fd_count(), fds);
    CHECK(rmdir(dir) == 0); /* both FIFOs removed */
    printf("ok\n");
    return 0;
}
