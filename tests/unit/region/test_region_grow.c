// SPDX-License-Identifier: MIT
/*
 * test_region_grow — a FERRY_REGION_GROWABLE region grown by one holder is seen by
 * another (a forked process with its own adopted handle): ferry_region_size says the new
 * size, a new map covers it (the new bytes zero, then shared), the old mapping stays valid
 * at its old length. A fixed region refuses resize (-EPERM), and nothing shrinks.
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "testutil.h"

#include <fcntl.h>

int main(void)
{
    int fds0 = fd_count();
    ferry_region *fixed;
    CHECK_EQ(ferry_region_create(4096, NULL, &fixed), 0);
    CHECK_EQ(ferry_region_resize(fixed, 8192), -EPERM);
    CHECK_EQ(ferry_region_size(fixed), 4096);
    ferry_region_close(fixed);

    ferry_region_opts o;
    ferry_region_opts_init(&o);
    o.flags = FERRY_REGION_GROWABLE;
    ferry_region *r;
    CHECK_EQ(ferry_region_create(4096, &o, &r), 0);
    CHECK_EQ(ferry_region_resize(r, FERRY_REGION_MAX_SIZE + 1), -EINVAL);
    CHECK_EQ(ferry_region_resize(NULL, 1), -EINVAL);
    unsigned char *a;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&a), 0);
    a[0] = 1;
    a[4095] = 2;

    int go[2], done[2];
    CHECK(pipe2(go, O_CLOEXEC) == 0 && pipe2(done, O_CLOEXEC) == 0);
    int d = fcntl(ferry_region_fd(r), F_DUPFD_CLOEXEC, 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_region *c;
        CHECK_EQ(ferry_region_adopt(d, &c), 0);
        unsigned char *old;
        CHECK_EQ(ferry_region_map(c, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&old), 0);
        CHECK_EQ(ferry_region_size(c), 4096);
        uint64_t v = ferry_region_version(c);
        CHECK_EQ(write(go[1], "1", 1), 1);
        CHECK_EQ(ferry_region_wait(c, v, 20LL * 1000 * 1000 * 1000), 0); /* resize notifies */
        CHECK_EQ(ferry_region_size(c), 3 * 4096 + 17);
        CHECK_EQ(old[0], 1); /* the old mapping is still good at its length */
        CHECK_EQ(old[4095], 2);
        unsigned char *nw;
        CHECK_EQ(ferry_region_map(c, FERRY_REGION_READ | FERRY_REGION_WRITE, (void **)&nw), 0);
        CHECK_EQ(nw[0], 1);
        CHECK_EQ(nw[4096], 0);
        CHECK_EQ(nw[3 * 4096 + 16], 0);
        nw[3 * 4096 + 16] = 0x77; /* the last byte */
        CHECK_EQ(ferry_region_unmap(c, old), 0);
        ferry_region_close(c);
        CHECK_EQ(write(done[1], "1", 1), 1);
        _exit(0);
    }
    close(d);
    char b;
    CHECK_EQ(read(go[0], &b, 1), 1);
    CHECK_EQ(ferry_region_resize(r, 3 * 4096 + 17), 0);
    CHECK_EQ(ferry_region_size(r), 3 * 4096 + 17);
    CHECK_EQ(read(done[0], &b, 1), 1);
    wait_ok(pid);
    unsigned char *n2;
    CHECK_EQ(ferry_region_map(r, FERRY_REGION_READ, (void **)&n2), 0);
    CHECK_EQ(n2[3 * 4096 + 16], 0x77);
    /* never shrinks: a smaller size is a no-op */
    CHECK_EQ(ferry_region_resize(r, 100), 0);
    CHECK_EQ(ferry_region_size(r), 3 * 4096 + 17);
    CHECK_EQ(ferry_region_version(r), 1);
    /* the kernel refuses a shrink through the descriptor too (sealed) */
    errno = 0;
    CHECK_EQ(ftruncate(ferry_region_fd(r), 4096), -1);
    CHECK_EQ(errno, EPERM);
    CHECK_EQ(a[0], 1);
    ferry_region_close(r);
    close(go[0]), close(go[1]), close(done[0]), close(done[1]);
    CHECK_EQ(fd_count(), fds0);
    puts("ok");
    return 0;
}
