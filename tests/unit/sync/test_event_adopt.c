// SPDX-License-Identifier: MIT
/*
 * test_event_adopt — what ferry_event_adopt accepts: only a carrier socket whose queued
 * message is "FEV1" with exactly [an event memfd, a SOCK_SEQPACKET socket], the memfd a
 * sealed ferry object of kind FERRY_OBJ_EVENT whose capacity fits its size; anything else
 * is -EBADMSG and the descriptor is closed. A hand-made carrier in that format works
 * (the format is what event.c says). A hostile sharer that scribbles over the queue, or
 * floods the doorbell and clears O_NONBLOCK, makes calls fail or report -EBADMSG, never
 * crash or hang past their deadline. No descriptor is left behind.
 */
#include "testutil.h"

#include "sync/obj.h"

#include <ferry/ferry.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <time.h>

#define MS  ((int64_t)1000000)
#define SEC ((int64_t)1000000000)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static int is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* A carrier: a SEQPACKET pair, one message (data, fds) sent into the end returned. If
 * self is set, the sending end goes along as the last descriptor (as event.c does). */
static int carrier(const char *data, size_t len, const int *fds, int nfds, int self)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    int all[8];
    if (nfds > 0) memcpy(all, fds, (size_t)nfds * sizeof(int));
    if (self) all[nfds++] = sv[0];
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        msg.msg_control = cm.buf;
        msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), all, (size_t)nfds * sizeof(int));
    }
    if (len > 0 || nfds > 0) CHECK(sendmsg(sv[0], &msg, 0) == (ssize_t)len);
    close(sv[0]);
    return sv[1];
}

/* A raw event memfd of `size` bytes with capacity field cap and initialized slots. */
static int raw_event(size_t size, uint32_t cap, uint32_t kind)
{
    int fd;
    ferry__seg seg;
    CHECK_EQ(ferry__obj_create(kind, size, &fd, &seg), 0);
    memcpy((char *)seg.base + 16, &cap, 4); /* evshm.cap follows the 16-byte header */
    for (uint64_t i = 0; i < cap && 256 + (i + 1) * 16 <= seg.size; i++) {
        uint64_t seq = 2 * i;
        memcpy((char *)seg.base + 256 + i * 16, &seq, 8);
    }
    uint32_t one = 1; /* bell: rung */
    memcpy((char *)seg.base + 40, &one, 4);
    ferry__seg_unmap(&seg);
    return fd;
}

static void expect_bad(int fd)
{
    ferry_event *e = NULL;
    CHECK_EQ(ferry_event_adopt(fd, &e), -EBADMSG);
    CHECK(e == NULL);
    CHECK(!is_open(fd));
}

static void test_refused(void)
{
    ferry_event *e;
    CHECK_EQ(ferry_event_adopt(-1, &e), -EINVAL);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK_EQ(ferry_event_adopt(p[0], NULL), -EINVAL);
    CHECK(!is_open(p[0]));
    expect_bad(p[1]);
    int good = raw_event(4096, 100, FERRY_OBJ_EVENT);
    expect_bad(dup(good)); /* the memfd itself is not the object */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    expect_bad(sv[1]); /* nothing queued */
    close(sv[0]);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK(write(sv[0], "FEV1", 4) == 4);
    expect_bad(sv[1]); /* a stream socket */
    close(sv[0]);

    int f1[1] = {good};
    expect_bad(carrier("XEV1", 4, f1, 1, 1));   /* wrong magic */
    expect_bad(carrier("FEV1xx", 6, f1, 1, 1)); /* longer */
    expect_bad(carrier("FEV", 3, f1, 1, 1));    /* shorter */
    expect_bad(carrier("FEV1", 4, f1, 1, 0));   /* one descriptor */
    expect_bad(carrier("FEV1", 4, NULL, 0, 0)); /* none */
    int f2[2] = {good, good};
    expect_bad(carrier("FEV1", 4, f2, 2, 1)); /* three */
    int f3[2] = {good, p[0]};
    CHECK(pipe(p) == 0);
    f3[1] = p[0];
    expect_bad(carrier("FEV1", 4, f3, 2, 0)); /* the doorbell is a pipe */
    close(p[0]);
    close(p[1]);
    int sem = raw_event(4096, 100, FERRY_OBJ_SEM);
    int f4[1] = {sem};
    expect_bad(carrier("FEV1", 4, f4, 1, 1)); /* a semaphore's memfd */
    close(sem);
    int big = raw_event(4096, 300, FERRY_OBJ_EVENT); /* 256 + 300 * 16 > 4096 */
    int f5[1] = {big};
    expect_bad(carrier("FEV1", 4, f5, 1, 1));
    close(big);
    int zero = raw_event(4096, 0, FERRY_OBJ_EVENT);
    int f6[1] = {zero};
    expect_bad(carrier("FEV1", 4, f6, 1, 1));
    close(zero);
    int plain = memfd_create("x", MFD_CLOEXEC); /* no seals, no header */
    CHECK(ftruncate(plain, 4096) == 0);
    int f7[1] = {plain};
    expect_bad(carrier("FEV1", 4, f7, 1, 1));
    close(plain);

    /* The format by hand: it works. */
    CHECK_EQ(ferry_event_adopt(carrier("FEV1", 4, f1, 1, 1), &e), 0);
    for (uint64_t i = 0; i < 100; i++) CHECK_EQ(ferry_event_post(e, i, 0, FERRY_NOW), 0);
    CHECK_EQ(ferry_event_post(e, 100, 0, FERRY_NOW), -EAGAIN);
    uint64_t v;
    for (uint64_t i = 0; i < 100; i++) {
        CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0);
        CHECK_EQ(v, i);
    }
    ferry_event_close(e);
    close(good);
}

/* The memfd of a queue, found the way an adopter finds it. */
static void *map_of(ferry_event *e, size_t *size)
{
    char b[8];
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {.iov_base = b, .iov_len = sizeof b};
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    CHECK(recvmsg(ferry_event_fd(e), &msg, MSG_PEEK | MSG_CMSG_CLOEXEC) == 4);
    int fds[2];
    memcpy(fds, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof fds);
    close(fds[1]);
    struct stat st;
    CHECK(fstat(fds[0], &st) == 0);
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    CHECK(p != MAP_FAILED);
    close(fds[0]);
    *size = (size_t)st.st_size;
    return p;
}

static int tolerable(int rc)
{
    return rc == 0 || rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EBADMSG;
}

static void test_hostile(void)
{
    ferry_event *e;
    CHECK_EQ(ferry_event_create(64, &e), 0);
    size_t size;
    unsigned char *p = map_of(e, &size);
    int pfd = ferry_event_poll_fd(e);
    CHECK(pfd >= 0);
    uint64_t v;
    /* Contradictory words: a slot ahead of the tail, a head ahead of everything. */
    uint64_t huge = UINT64_MAX / 2;
    memcpy(p + 256, &huge, 8); /* slot 0 */
    CHECK_EQ(ferry_event_post(e, 1, 0, FERRY_NOW), -EBADMSG);
    memcpy(p + 256, &(uint64_t){1}, 8);              /* "holds the event of 0" without a post */
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0); /* takes it: the words said so */
    memcpy(p + 128, &huge, 8);                       /* head */
    CHECK(tolerable(ferry_event_next(e, &v, FERRY_NOW)));
    /* Random words everywhere, many times: every call returns, within its deadline. */
    srand(7);
    for (int round = 0; round < 3000; round++) {
        size_t n = 1 + (size_t)rand() % 8;
        for (size_t k = 0; k < n; k++) {
            size_t off = 16 + ((size_t)rand() % ((size - 16) / 8)) * 8; /* header stays */
            uint64_t w = (uint64_t)rand() << 33 ^ (uint64_t)rand();
            if (rand() % 2) w %= 300;
            memcpy(p + off, &w, 8);
        }
        int64_t t0 = now_ns();
        CHECK(tolerable(ferry_event_post(e, (uint64_t)round % 5, (uint32_t)round & 1, FERRY_NOW)));
        CHECK(tolerable(ferry_event_next(e, &v, FERRY_NOW)));
        if (round % 100 == 0) {
            CHECK(tolerable(ferry_event_next(e, &v, 2 * MS)));
            CHECK(tolerable(ferry_event_post(e, 3, 0, 2 * MS)));
        }
        CHECK(now_ns() - t0 < 2 * SEC);
    }
    munmap(p, size);
    ferry_event_close(e);

    /* A flooded doorbell whose descriptors were made blocking: posts still never block. */
    CHECK_EQ(ferry_event_create(8, &e), 0);
    pfd = ferry_event_poll_fd(e);
    int obj = ferry_event_fd(e);
    int n = 0;
    while (send(obj, "x", 1, MSG_DONTWAIT) == 1 && n < 1000000) n++;
    CHECK(n > 0);
    CHECK(fcntl(obj, F_SETFL, 0) == 0);
    CHECK(fcntl(pfd, F_SETFL, 0) == 0);
    int64_t t0 = now_ns();
    uint64_t got = 0;
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ(ferry_event_post(e, (uint64_t)i, 0, FERRY_NOW), 0);
        CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), 0); /* settles: drains 1024 a time */
        got += v == (uint64_t)i;
    }
    CHECK_EQ(got, 1000);
    CHECK(now_ns() - t0 < 5 * SEC);
    ferry_event_close(e);
}

int main(void)
{
    alarm(30);
    int fds = fd_count();
    test_refused();
    CHECK_EQ(fd_count(), fds);
    test_hostile();
    CHECK_EQ(fd_count(), fds);
    printf("test_event_adopt: ok\n");
    return 0;
}
