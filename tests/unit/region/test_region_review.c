// SPDX-License-Identifier: MIT
/*
 * test_region_review — region findings of the security review:
 *  - the poll thread behind ferry_region_poll_fd takes no signal: an application that
 *    made a poll descriptor and then, the usual way, blocked SIGUSR1 to take it from a
 *    signalfd had it delivered to the library's thread (whose mask was the caller's at
 *    ferry_region_poll_fd), where its default action killed the process. Now the signal
 *    waits for the signalfd.
 * No descriptor is left behind.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "testutil.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

static void test_poll_thread_signals(void)
{
    int base = fd_count();
    ferry_region *r = NULL;
    CHECK_EQ(ferry_region_create(4096, NULL, &r), 0);
    sigset_t none, usr1;
    sigemptyset(&none);
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &none, NULL), 0); /* everything deliverable here */
    int pfd = ferry_region_poll_fd(r);
    CHECK(pfd >= 0);
    /* Now the application takes SIGUSR1 through a signalfd: blocked, then read. */
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &usr1, NULL), 0);
    int sfd = signalfd(-1, &usr1, SFD_CLOEXEC);
    CHECK(sfd >= 0);
    CHECK_EQ(kill(getpid(), SIGUSR1), 0); /* process-directed: any thread that takes it */
    struct pollfd p = {.fd = sfd, .events = POLLIN};
    int n;
    do n = poll(&p, 1, 5000);
    while (n < 0 && errno == EINTR);
    CHECK_EQ(n, 1);
    struct signalfd_siginfo si;
    CHECK_EQ(read(sfd, &si, sizeof si), (ssize_t)sizeof si);
    CHECK_EQ(si.ssi_signo, SIGUSR1);
    close(sfd);
    /* The thread still works (a notify makes the poll fd readable). */
    CHECK_EQ(ferry_region_notify(r), 0);
    p.fd = pfd;
    p.revents = 0;
    do n = poll(&p, 1, 5000);
    while (n < 0 && errno == EINTR);
    CHECK_EQ(n, 1);
    ferry_region_close(r);
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &none, NULL), 0);
    CHECK_EQ(fd_count(), base);
    printf("ok the poll thread takes no signal: SIGUSR1 went to the application's signalfd\n");
}

int main(void)
{
    test_poll_thread_signals();
    return 0;
}
