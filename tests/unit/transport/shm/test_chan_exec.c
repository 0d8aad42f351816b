// SPDX-License-Identifier: MIT
/*
 * test_chan_exec — a channel end handed to a child across exec:
 *  - ferry_pair_fd() gives the parent's end and one fd with FD_CLOEXEC cleared; every
 *    other fd it creates has FD_CLOEXEC set;
 *  - fork + exec of this same binary (/proc/self/exe) with "--child FD": the child
 *    ferry_chan_adopt()s the fd and echoes 100 messages (sizes 0..~300, content
 *    checked by the parent), then sees -EPIPE once the parent closes; in the child the
 *    channel owns the fd (after ferry_chan_close the fd count is one less than at start,
 *    and the fd number is closed);
 *  - ferry_chan_adopt on a plain pipe fd (empty, and with garbage bytes in it), on a
 *    memfd and on a socketpair end carrying garbage -> -EBADMSG, and the fd is closed
 *    (fcntl F_GETFD fails with EBADF); on -1 and on a closed fd number -> -EBADF;
 *  - no fd leaks in the parent.
 */
#include "chantest.h"

#include <sys/mman.h>
#include <sys/socket.h>

#define ECHOES 100

static int child(const char *arg)
{
    watchdog_arm();
    STAGE("exec child");
    char *end = NULL;
    long fd = strtol(arg, &end, 10);
    CHECK(end != arg && *end == 0 && fd >= 0);
    CHECK(fd_is_open((int)fd));
    int n0 = fd_count();
    ferry_chan *ch = NULL;
    CHECK_EQ(ferry_chan_adopt((int)fd, NULL, &ch), 0);
    CHECK(ch != NULL);
    uint8_t buf[512];
    for (int i = 0; i < ECHOES; i++) {
        ssize_t n = ferry_recv(ch, buf, sizeof buf, T5S);
        CHECK(n >= 0);
        CHECK_EQ(ferry_send(ch, buf, (size_t)n, T5S), 0);
    }
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, T5S), -EPIPE);
    ferry_chan_close(ch);
    CHECK_EQ(fd_count(), n0 - 1);
    CHECK(!fd_is_open((int)fd));
    return 0;
}

static void expect_adopt_fails(int fd, int err)
{
    ferry_chan *ch = NULL;
    CHECK_EQ(ferry_chan_adopt(fd, NULL, &ch), err);
    if (fd >= 0) {
        errno = 0;
        CHECK_EQ(fcntl(fd, F_GETFD), -1);
        CHECK_EQ(errno, EBADF);
    }
}

static void adopt_errors(void)
{
    STAGE("adopt errors");
    int base = fd_count();
    int p[2];

    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    expect_adopt_fails(p[0], -EBADMSG); /* an empty pipe, its write end still open */
    close(p[1]);

    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    char junk[256];
    memset(junk, 0x5A, sizeof junk);
    CHECK_EQ(write(p[1], junk, sizeof junk), (ssize_t)sizeof junk);
    expect_adopt_fails(p[0], -EBADMSG);
    close(p[1]);

    int m = memfd_create("not-ferry", MFD_CLOEXEC);
    CHECK(m >= 0);
    CHECK_EQ(write(m, junk, sizeof junk), (ssize_t)sizeof junk);
    expect_adopt_fails(m, -EBADMSG);

    int sp[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    CHECK_EQ(write(sp[1], junk, sizeof junk), (ssize_t)sizeof junk);
    expect_adopt_fails(sp[0], -EBADMSG);
    close(sp[1]);

    expect_adopt_fails(-1, -EBADF);
    int closed = dup(2);
    CHECK(closed >= 0);
    close(closed);
    expect_adopt_fails(closed, -EBADF);

    CHECK_EQ(fd_count(), base);
}

/* Record which fds are open now. */
static void open_fds(bool *open, int max)
{
    for (int i = 0; i < max; i++) open[i] = fd_is_open(i);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0) return child(argv[2]);
    watchdog_arm();

    adopt_errors();

    STAGE("pair_fd");
    int base = fd_count();
    enum { MAXFD = 1024 };
    static bool before[MAXFD];
    open_fds(before, MAXFD);
    ferry_chan *a = NULL;
    int cfd = -1;
    CHECK_EQ(ferry_pair_fd(NULL, &a, &cfd), 0);
    CHECK(a != NULL);
    CHECK(cfd >= 0 && cfd < MAXFD);
    CHECK(fd_is_open(cfd));
    CHECK(!fd_is_cloexec(cfd));
    for (int i = 0; i < MAXFD; i++) {
        if (before[i] || i == cfd || !fd_is_open(i)) continue;
        if (!fd_is_cloexec(i)) fprintf(stderr, "fd %d made by ferry_pair_fd lacks FD_CLOEXEC\n", i);
        CHECK(fd_is_cloexec(i));
    }

    STAGE("fork + exec");
    char arg[16];
    snprintf(arg, sizeof arg, "%d", cfd);
    pid_t pid = fork_child();
    if (pid == 0) {
        char *args[] = {"test_chan_exec", "--child", arg, NULL};
        execv("/proc/self/exe", args);
        perror("execv");
        _exit(1);
    }
    CHECK_EQ(close(cfd), 0);

    STAGE("echo");
    uint8_t buf[512], got[512];
    for (int i = 0; i < ECHOES; i++) {
        size_t len = (size_t)i * 3;
        fill_seq(buf, len, (uint64_t)i);
        CHECK_EQ(ferry_send(a, buf, len, T5S), 0);
        CHECK_EQ(ferry_recv(a, got, sizeof got, T5S), (ssize_t)len);
        CHECK(check_seq(got, len, (uint64_t)i));
    }
    ferry_chan_close(a);
    STAGE("wait exec child");
    wait_ok(pid);
    CHECK_EQ(fd_count(), base);
    printf("test_chan_exec: ok\n");
    return 0;
}
