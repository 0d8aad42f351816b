// SPDX-License-Identifier: MIT
/*
 * test_bcast_adopt — sharing a broadcast object: ferry_bcast_adopt takes only a sealed
 * memfd that is a broadcast object with sizes that fit it; anything else (-1, a pipe, an
 * unsealed memfd, another kind's object, a bcast header with bad sizes) is -EBADMSG and
 * the descriptor is closed. A child adopts a duplicate of the descriptor and receives
 * every message. By name through a real ferryd: ferry_publish(FERRY_OBJ_BCAST), a child
 * ferry_bcast_open()s it and gets every message in order; -ENOENT, -EPROTOTYPE and
 * -EBADMSG where due. No descriptor left behind.
 */
#include "testutil.h"

#include "bcasttest.h"
#include "brokerutil.h"
#include "sync/obj.h"

#include <ferry/ferry.h>
#include <sys/mman.h>

static test_broker B;

static int is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void expect_bad(int fd)
{
    ferry_bcast *b = NULL;
    CHECK_EQ(ferry_bcast_adopt(fd, &b), -EBADMSG);
    CHECK(b == NULL);
    if (fd >= 0) CHECK(!is_open(fd));
}

/* A bcast object whose sizes say nslots / max_subs / max_msg, made by hand. */
static int raw(size_t size, uint32_t nslots, uint32_t max_subs, uint64_t max_msg)
{
    int fd;
    ferry__seg seg;
    CHECK_EQ(ferry__obj_create(FERRY_OBJ_BCAST, size, &fd, &seg), 0);
    char *p = seg.base;
    memcpy(p + 16, &nslots, 4); /* the layout of bcast.c's bshm */
    memcpy(p + 20, &max_subs, 4);
    memcpy(p + 24, &max_msg, 8);
    ferry__seg_unmap(&seg);
    return fd;
}

static void test_garbage(void)
{
    expect_bad(-1);
    int pp[2];
    CHECK(pipe(pp) == 0);
    expect_bad(pp[0]);
    close(pp[1]);
    int plain = memfd_create("x", MFD_CLOEXEC);
    CHECK(plain >= 0 && ftruncate(plain, 1 << 16) == 0);
    expect_bad(plain);
    ferry_sem *sem;
    CHECK_EQ(ferry_sem_create(1, 0, &sem), 0);
    expect_bad(dup(ferry_sem_fd(sem)));
    ferry_sem_close(sem);
    expect_bad(raw(4096, 3, 1, 64));    /* not a power of two */
    expect_bad(raw(4096, 0, 1, 64));    /* no slots */
    expect_bad(raw(4096, 2, 0, 64));    /* no subscribers */
    expect_bad(raw(4096, 2, 5000, 64)); /* too many */
    expect_bad(raw(4096, 2, 1, 0));     /* no room */
    expect_bad(raw(4096, 64, 1, 64));   /* does not fit the object */
    expect_bad(raw(4096, 2, 1, (uint64_t)1 << 40));
    int ok = raw(4096, 2, 1, 64); /* fits: 256 + 64 + 2 * 128 */
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_adopt(ok, &b), 0);
    CHECK_EQ(ferry_bcast_max_msg(b), 64);
    ferry_bcast_close(b);
    CHECK(!is_open(ok));
    int fd = raw(4096, 2, 1, 64);
    CHECK_EQ(ferry_bcast_adopt(fd, NULL), -EINVAL);
    CHECK(!is_open(fd));
}

/* A child gets the object as a descriptor (dup'ed before fork, as across exec). */
static void test_fd(void)
{
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(NULL, &b), 0);
    int fd = dup(ferry_bcast_fd(b));
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_bcast *c;
        CHECK_EQ(ferry_bcast_adopt(fd, &c), 0);
        ferry_sub *s;
        CHECK_EQ(ferry_bcast_subscribe(c, 0, &s), 0);
        CHECK(write(go[1], "s", 1) == 1);
        unsigned char buf[64];
        for (uint64_t i = 0; i < 1000; i++) {
            ssize_t n = ferry_sub_recv(s, buf, sizeof buf, NULL, 10 * SEC);
            CHECK(n > 0 && body_ok(i, buf, (size_t)n));
        }
        CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, 10 * SEC), -EPIPE);
        ferry_sub_close(s);
        ferry_bcast_close(c);
        _exit(0);
    }
    close(fd);
    char c;
    CHECK(read(go[0], &c, 1) == 1);
    unsigned char buf[64];
    for (uint64_t i = 0; i < 1000; i++)
        CHECK_EQ(ferry_bcast_publish(b, 0, buf, body(i, buf), 10 * SEC), 0);
    ferry_bcast_close(b);
    wait_ok(pid);
    close(go[0]);
    close(go[1]);
}

static void test_name(void)
{
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(NULL, &b), 0);
    ferry_pub *p, *p2;
    CHECK_EQ(ferry_publish("org.bc.news", ferry_bcast_fd(b), FERRY_OBJ_BCAST, NULL, &p, 5 * SEC),
             0);
    ferry_sem *sem;
    CHECK_EQ(ferry_sem_create(1, 0, &sem), 0);
    /* a semaphore is not a broadcast object */
    CHECK_EQ(ferry_publish("org.bc.x", ferry_sem_fd(sem), FERRY_OBJ_BCAST, NULL, &p2, 5 * SEC),
             -EBADMSG);
    CHECK_EQ(ferry_publish("org.bc.sem", ferry_sem_fd(sem), FERRY_OBJ_SEM, NULL, &p2, 5 * SEC), 0);
    ferry_bcast *o;
    CHECK_EQ(ferry_bcast_open("org.bc.sem", &o, 5 * SEC), -EPROTOTYPE);
    CHECK_EQ(ferry_bcast_open("org.bc.none", &o, 5 * SEC), -ENOENT);
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_bcast *c;
        CHECK_EQ(ferry_bcast_open("org.bc.news", &c, 5 * SEC), 0);
        ferry_sub *s;
        CHECK_EQ(ferry_bcast_subscribe(c, 0, &s), 0);
        CHECK(write(go[1], "s", 1) == 1);
        unsigned char buf[64];
        int64_t type;
        for (uint64_t i = 0; i < 5000; i++) {
            ssize_t n = ferry_sub_recv(s, buf, sizeof buf, &type, 10 * SEC);
            CHECK(n > 0 && type == (int64_t)i && body_ok(i, buf, (size_t)n));
        }
        CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, 10 * SEC), -EPIPE);
        ferry_sub_close(s);
        ferry_bcast_close(c);
        _exit(0);
    }
    char c;
    CHECK(read(go[0], &c, 1) == 1);
    unsigned char buf[64];
    for (uint64_t i = 0; i < 5000; i++)
        CHECK_EQ(ferry_bcast_publish(b, (int64_t)i, buf, body(i, buf), 10 * SEC), 0);
    ferry_pub_close(p); /* the object lives on in the subscriber */
    ferry_pub_close(p2);
    ferry_bcast_close(b);
    wait_ok(pid);
    ferry_sem_close(sem);
    close(go[0]);
    close(go[1]);
}

int main(void)
{
    int fds = fd_count();
    test_garbage();
    test_fd();
    CHECK_EQ(fd_count(), fds);
    broker_start(&B);
    fds = fd_count();
    test_name();
    CHECK_EQ(fd_count(), fds);
    broker_stop(&B);
    printf("test_bcast_adopt: ok\n");
    return 0;
}
