// SPDX-License-Identifier: MIT
/*
 * test_region_review — region findings of the security review:
 *  - the poll thread behind ferry_region_poll_fd takes no signal: an application that
 *    made a poll descriptor and then, the usual way, blocked SIGUSR1 to take it from a
 *    signalfd had it delivered to the library's thread (whose mask was the caller's at
 *    ferry_region_poll_fd), where its default action killed the process. Now the signal
 *    waits for the signalfd.
 *  - a persistent region or state in a file on tmpfs (/dev/shm, /run/user/UID) was
 *    -EBADMSG: tmpfs answers F_GET_SEALS for every file (F_SEAL_SEAL), and such a file
 *    was judged as a memfd without the seals ferry puts on its own. Now it is a file
 *    (the caller's own, as on any file system): made, opened again, shared by value.
 * No descriptor is left behind.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "testutil.h"

#include <poll.h>
#include <string.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/statfs.h>

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

static void test_tmpfs_file(void)
{
    struct statfs sf;
    if (statfs("/dev/shm", &sf) < 0 || sf.f_type != 0x01021994) {
        printf("SKIP tmpfs file: /dev/shm is not tmpfs here\n");
        return;
    }
    int base = fd_count();
    char path[64], spath[64];
    snprintf(path, sizeof path, "/dev/shm/ferry-review-%d", (int)getpid());
    snprintf(spath, sizeof spath, "/dev/shm/ferry-review-state-%d", (int)getpid());
    ferry_region_opts o;
    ferry_region_opts_init(&o);
    o.flags = FERRY_REGION_FILE;
    o.path = path;
    ferry_region *r = NULL, *r2 = NULL;
    CHECK_EQ(ferry_region_create(8192, &o, &r), 0);
    void *p = NULL;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, &p), 0);
    memcpy(p, "tmpfs", 6);
    CHECK_EQ(ferry_region_create(0, &o, &r2), 0); /* open it again as it is */
    CHECK_EQ(ferry_region_size(r2), (size_t)8192);
    void *q = NULL;
    CHECK_EQ(ferry_region_map(r2, FERRY_REGION_READ, &q), 0);
    CHECK(memcmp(q, "tmpfs", 6) == 0);
    /* by value, as a descriptor, to the same uid */
    ferry_region *r3 = NULL;
    int dfd = dup(ferry_region_fd(r));
    CHECK(dfd >= 0);
    CHECK_EQ(ferry_region_adopt(dfd, &r3), 0);
    ferry_region_close(r3);
    ferry_region_close(r2);
    ferry_region_close(r);
    CHECK_EQ(unlink(path), 0);
    ferry_state *s = NULL;
    o.path = spath;
    CHECK_EQ(ferry_state_create(100, &o, &s), 0);
    CHECK_EQ(ferry_state_write(s, "v", 1), 0);
    ferry_state_close(s);
    CHECK_EQ(unlink(spath), 0);
    CHECK_EQ(fd_count(), base);
    printf("ok a region and a state in files on tmpfs (/dev/shm): made, opened again, adopted\n");
}

int main(void)
{
    test_poll_thread_signals();
    test_tmpfs_file();
    return 0;
}
