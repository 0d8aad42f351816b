// SPDX-License-Identifier: MIT
/*
 * test_chan_fds — file descriptors riding on messages, with a forked receiver (the fds
 * are made after the fork, so the receiver can only have them through the channel):
 *  - a message with 3 fds (a pipe's write end, a memfd with content, /dev/null): the
 *    sender still owns its fds afterwards; the receiver gets 3 distinct working fds with
 *    FD_CLOEXEC set: it writes into the pipe (the sender reads it), reads the memfd's
 *    content and writes into it (the sender sees the write), the third is /dev/null;
 *  - ferry_recv (not recvmsg) of a message with fds closes them: no fd count change in the
 *    receiver, and the pipe reaches EOF once the sender closes its own write end;
 *  - nfds 17 -> -EINVAL, a bad fd (-1, a closed number) -> -EINVAL, nothing sent;
 *    nfds 16 works (16 working fds received);
 *  - fds of a message passed over by a filter stay with it and are delivered with it
 *    later; fds of a message refused with -EMSGSIZE (buffer too small) stay queued and
 *    come with it when it is taken;
 *  - closing a channel end frees the fds of received-but-untaken messages (the pipe
 *    reaches EOF while the receiver process is still alive);
 *  - fd counts are equal before and after, in both processes.
 */
#include "chantest.h"

#include <sys/mman.h>

/* recvmsg into m (payload buffer buf[64]); expect type, payload s and nfds fds, each
 * open, distinct and FD_CLOEXEC. */
static void recv_fds(ferry_chan *ch, ferry_msg *m, char *buf, int64_t filter, int64_t type,
                     const char *s, uint32_t nfds)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < FERRY_MAX_FDS; i++) m->fds[i] = -1;
    m->data = buf;
    m->cap = 64;
    ssize_t n = ferry_recvmsg(ch, m, filter, T5S);
    CHECK_EQ(n, (ssize_t)strlen(s));
    CHECK(memcmp(buf, s, strlen(s)) == 0);
    CHECK_EQ(m->type, type);
    CHECK_EQ(m->nfds, nfds);
    for (uint32_t i = 0; i < nfds; i++) {
        CHECK(m->fds[i] >= 0);
        CHECK(fd_is_cloexec(m->fds[i]));
        for (uint32_t j = 0; j < i; j++) CHECK(m->fds[i] != m->fds[j]);
    }
}

static void close_fds(ferry_msg *m)
{
    for (uint32_t i = 0; i < m->nfds; i++) CHECK_EQ(close(m->fds[i]), 0);
}

static int make_memfd(const char *content)
{
    int fd = memfd_create("ferry-test", MFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    return fd;
}

static void check_memfd(int fd, const char *content)
{
    char buf[64] = {0};
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), (ssize_t)strlen(content));
    CHECK(memcmp(buf, content, strlen(content)) == 0);
}

/* Wait (at most 5 s) until fd is readable and read from it. */
static ssize_t read_within_5s(int fd, void *buf, size_t cap)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 5000), 1);
    return read(fd, buf, cap);
}

/* ---------------------------------------------------------------- child */

static void child_main(ferry_chan *b, ctl *c)
{
    ferry_msg m;
    char buf[64];

    STAGE("child: three fds");
    int n0 = fd_count();
    recv_fds(b, &m, buf, 0, 1, "three", 3);
    CHECK_EQ(fd_count(), n0 + 3);
    CHECK_EQ(write(m.fds[0], "from-child", 10), 10);
    check_memfd(m.fds[1], "memfd-content");
    CHECK_EQ(pwrite(m.fds[1], "X", 1, 100), 1);
    struct stat st, nul;
    CHECK_EQ(fstat(m.fds[2], &st), 0);
    CHECK_EQ(stat("/dev/null", &nul), 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK_EQ(st.st_rdev, nul.st_rdev);
    CHECK_EQ(write(m.fds[2], "z", 1), 1);
    close_fds(&m);
    CHECK_EQ(fd_count(), n0);
    ctl_put(c, 'a');

    STAGE("child: ferry_recv closes fds");
    n0 = fd_count();
    CHECK_EQ(ferry_recv(b, buf, sizeof buf, T5S), 7);
    CHECK(memcmp(buf, "closeme", 7) == 0);
    CHECK_EQ(fd_count(), n0);
    ctl_put(c, 'b');

    STAGE("child: sixteen fds");
    ctl_expect(c, '3');
    n0 = fd_count();
    recv_fds(b, &m, buf, 0, 3, "sixteen", 16);
    CHECK_EQ(fd_count(), n0 + 16);
    for (int i = 0; i < 16; i++) {
        CHECK_EQ(fstat(m.fds[i], &st), 0);
        CHECK_EQ(st.st_rdev, nul.st_rdev);
    }
    close_fds(&m);
    CHECK_EQ(fd_count(), n0);
    CHECK_EQ(ferry_recv(b, buf, sizeof buf, FERRY_NOW), -EAGAIN); /* the refused ones */
    ctl_put(c, 'c');

    STAGE("child: fds of skipped messages");
    ctl_expect(c, '4');
    n0 = fd_count();
    recv_fds(b, &m, buf, 2, 2, "second", 1);
    check_memfd(m.fds[0], "second-fd");
    close_fds(&m);
    /* no count check here: the channel may hold the fds of the messages passed over */
    recv_fds(b, &m, buf, 0, 1, "first", 1);
    check_memfd(m.fds[0], "first-fd");
    close_fds(&m);
    CHECK_EQ(fd_count(), n0);

    STAGE("child: fds of a message refused with -EMSGSIZE");
    char small[2];
    memset(&m, 0, sizeof m);
    m.data = small;
    m.cap = sizeof small;
    CHECK_EQ(ferry_recvmsg(b, &m, 0, T5S), -EMSGSIZE);
    CHECK_EQ(m.len, 5);
    recv_fds(b, &m, buf, 0, 5, "large", 1);
    check_memfd(m.fds[0], "large-fd");
    close_fds(&m);
    CHECK_EQ(fd_count(), n0);
    ctl_put(c, 'd');

    STAGE("child: close with an untaken fd");
    ctl_expect(c, '5');
    sleep_ms(20);
    ferry_chan_close(b);
    ctl_put(c, 'e');
    ctl_expect(c, '6'); /* stay alive while the parent checks for EOF */
}

/* ---------------------------------------------------------------- parent */

static void parent_main(ferry_chan *a, ctl *c)
{
    char buf[64];

    STAGE("parent: three fds");
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    int mfd = make_memfd("memfd-content");
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    CHECK(nul >= 0);
    int n0 = fd_count();
    int three[3] = {p[1], mfd, nul};
    send_fds(a, 1, "three", three, 3);
    CHECK_EQ(fd_count(), n0);
    for (int i = 0; i < 3; i++) CHECK(fd_is_open(three[i]));
    ctl_expect(c, 'a');
    CHECK_EQ(read_within_5s(p[0], buf, sizeof buf), 10);
    CHECK(memcmp(buf, "from-child", 10) == 0);
    CHECK_EQ(pread(mfd, buf, 1, 100), 1);
    CHECK_EQ(buf[0], 'X');
    close(p[0]);
    close(p[1]);
    close(mfd);

    STAGE("parent: ferry_recv closes fds");
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    int two[2] = {p[1], nul};
    send_fds(a, 0, "closeme", two, 2);
    close(p[1]);
    ctl_expect(c, 'b');
    /* EOF: no copy of the write end is left open anywhere */
    CHECK_EQ(read_within_5s(p[0], buf, sizeof buf), 0);
    close(p[0]);

    STAGE("parent: 17, bad fds, 16");
    ferry_msg m;
    memset(&m, 0, sizeof m);
    m.type = 3;
    m.data = "bad";
    m.len = 3;
    int sixteen[16];
    for (int i = 0; i < 16; i++) {
        sixteen[i] = fcntl(nul, F_DUPFD_CLOEXEC, 0);
        CHECK(sixteen[i] >= 0);
        m.fds[i] = sixteen[i];
    }
    n0 = fd_count();
    m.nfds = 17;
    CHECK_EQ(ferry_sendmsg(a, &m, T5S), -EINVAL);
    m.nfds = UINT32_MAX;
    CHECK_EQ(ferry_sendmsg(a, &m, T5S), -EINVAL);
    m.nfds = 1;
    m.fds[0] = -1;
    CHECK_EQ(ferry_sendmsg(a, &m, T5S), -EINVAL);
    int closed = fcntl(nul, F_DUPFD_CLOEXEC, 0);
    CHECK(closed >= 0);
    close(closed);
    m.fds[0] = closed;
    CHECK_EQ(ferry_sendmsg(a, &m, T5S), -EINVAL);
    CHECK_EQ(fd_count(), n0);
    send_fds(a, 3, "sixteen", sixteen, 16);
    CHECK_EQ(fd_count(), n0);
    for (int i = 0; i < 16; i++) close(sixteen[i]);
    ctl_put(c, '3');
    ctl_expect(c, 'c');

    STAGE("parent: fds of skipped messages");
    int f1 = make_memfd("first-fd"), f2 = make_memfd("second-fd"), f3 = make_memfd("large-fd");
    send_fds(a, 1, "first", &f1, 1);
    send_fds(a, 2, "second", &f2, 1);
    send_fds(a, 5, "large", &f3, 1);
    close(f1);
    close(f2);
    close(f3);
    ctl_put(c, '4');
    ctl_expect(c, 'd');

    STAGE("parent: close with an untaken fd");
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    send_fds(a, 0, "untaken", &p[1], 1);
    close(p[1]);
    ctl_put(c, '5');
    ctl_expect(c, 'e'); /* the receiver closed its end without taking the message */
    CHECK_EQ(read_within_5s(p[0], buf, sizeof buf), 0);
    close(p[0]);
    ctl_put(c, '6');
    close(nul);
}

int main(void)
{
    watchdog_arm();
    /* Not run_pair(): the child closes its end itself, in its last stage. */
    peer p;
    ferry_chan *ch = NULL;
    if (peer_fork(&p, NULL, &ch) == 0) {
        child_main(ch, &p.c); /* closes ch */
        peer_end(&p, NULL);
        child_exit();
    }
    parent_main(ch, &p.c);
    peer_wait(&p, ch);
    printf("test_chan_fds: ok\n");
    return 0;
}
