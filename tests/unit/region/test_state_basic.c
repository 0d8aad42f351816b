// SPDX-License-Identifier: MIT
/*
 * test_state_basic — ferry_state: empty at first (length 0, version 0), write/read round
 * trips with the version, the bounds (-EMSGSIZE for len > max_len and for cap < len,
 * which still tells the length), bad arguments (-EINVAL), a read-only handle (adopted
 * from ferry_state_fd_readonly) reads and waits but cannot write (-EACCES), waits
 * (-EAGAIN, -ETIMEDOUT, a writer in another process wakes a waiter), the poll descriptor
 * of its region, and no descriptor leaks.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>

#define S ((int64_t)1000000000)

int main(void)
{
    int fds0 = fd_count();
    ferry_state *s;
    CHECK_EQ(ferry_state_create(0, NULL, &s), -EINVAL);
    CHECK_EQ(ferry_state_create(FERRY_STATE_MAX_LEN + 1, NULL, &s), -EINVAL);
    ferry_region_opts o;
    ferry_region_opts_init(&o);
    o.flags = FERRY_REGION_GROWABLE;
    CHECK_EQ(ferry_state_create(10, &o, &s), -EINVAL);
    CHECK_EQ(ferry_state_create(13, NULL, &s), 0);
    CHECK_EQ(ferry_state_max_len(s), 13);
    char buf[64];
    size_t len = 99;
    uint64_t ver = 99;
    CHECK_EQ(ferry_state_read(s, buf, sizeof buf, &len, &ver), 0);
    CHECK_EQ(len, 0);
    CHECK_EQ(ver, 0);
    CHECK_EQ(ferry_state_read(s, NULL, 0, &len, NULL), 0);
    CHECK_EQ(ferry_state_read(s, buf, sizeof buf, NULL, NULL), -EINVAL);
    CHECK_EQ(ferry_state_read(s, NULL, 5, &len, NULL), -EINVAL);
    CHECK_EQ(ferry_state_read(NULL, buf, 5, &len, NULL), -EINVAL);
    CHECK_EQ(ferry_state_write(s, NULL, 3), -EINVAL);
    CHECK_EQ(ferry_state_write(s, "0123456789abcd", 14), -EMSGSIZE);
    CHECK_EQ(ferry_state_version(s), 0);
    for (size_t n = 0; n <= 13; n++) { /* every length, up to the odd max_len */
        char v[13];
        for (size_t i = 0; i < n; i++) v[i] = (char)('a' + n + i);
        CHECK_EQ(ferry_state_write(s, v, n), 0);
        memset(buf, 0x55, sizeof buf);
        CHECK_EQ(ferry_state_read(s, buf, 13, &len, &ver), 0);
        CHECK_EQ(len, n);
        CHECK_EQ(ver, n + 1);
        CHECK(memcmp(buf, v, n) == 0);
        CHECK_EQ((unsigned char)buf[13], 0x55); /* nothing past cap */
    }
    CHECK_EQ(ferry_state_read(s, buf, 12, &len, &ver), -EMSGSIZE);
    CHECK_EQ(len, 13);
    CHECK_EQ(ferry_state_version(s), 14);
    CHECK_EQ(ferry_state_wait(s, 14, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_state_wait(s, 13, FERRY_NOW), 0);
    CHECK_EQ(ferry_state_wait(s, 14, 20 * 1000 * 1000), -ETIMEDOUT);
    CHECK_EQ(ferry_state_wait(s, 14, -5), -EINVAL);

    /* a read-only reader in another process: reads, waits, cannot write */
    int ro;
    CHECK_EQ(ferry_state_fd_readonly(s, &ro), 0);
    int go[2];
    CHECK(pipe2(go, O_CLOEXEC) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_state_close(s);
        ferry_state *c;
        CHECK_EQ(ferry_state_adopt(ro, &c), 0);
        CHECK_EQ(ferry_state_max_len(c), 13);
        CHECK_EQ(ferry_region_writable(ferry_state_region(c)), 0);
        CHECK_EQ(ferry_state_write(c, "x", 1), -EACCES);
        int pfd = ferry_region_poll_fd(ferry_state_region(c));
        CHECK(pfd >= 0);
        CHECK_EQ(ferry_state_read(c, buf, sizeof buf, &len, &ver), 0);
        CHECK_EQ(ver, 14);
        CHECK_EQ(write(go[1], "g", 1), 1);
        CHECK_EQ(ferry_state_wait(c, 14, 20 * S), 0);
        CHECK_EQ(ferry_state_read(c, buf, sizeof buf, &len, &ver), 0);
        CHECK_EQ(ver, 15);
        CHECK_EQ(len, 5);
        CHECK(memcmp(buf, "fresh", 5) == 0);
        struct pollfd p = {.fd = pfd, .events = POLLIN};
        CHECK_EQ(poll(&p, 1, 5000), 1);
        CHECK_EQ(ferry_region_poll_ack(ferry_state_region(c)), 0);
        ferry_state_close(c);
        _exit(0);
    }
    close(ro);
    char b;
    CHECK_EQ(read(go[0], &b, 1), 1);
    usleep(50 * 1000);
    CHECK_EQ(ferry_state_write(s, "fresh", 5), 0);
    wait_ok(pid);
    close(go[0]), close(go[1]);
    ferry_state_close(s);
    ferry_state_close(NULL);
    CHECK(ferry_state_region(NULL) == NULL);
    CHECK_EQ(fd_count(), fds0);
    puts("ok");
    return 0;
}
