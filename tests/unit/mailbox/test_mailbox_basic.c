// SPDX-License-Identifier: MIT
/*
 * test_mailbox_basic — one process (and a few children): copy and zero-copy send and
 * receive, typed selective receive (the ferry_recvmsg rules), capacities 0 / N /
 * unbounded, timeouts (-EAGAIN, -ETIMEDOUT within bounds), -EMSGSIZE, garbage
 * descriptors to adopt (-EBADMSG), exclusive mode (-EBUSY, waiting, a dead holder),
 * stats, and no descriptor leaks.
 */
#include "testutil.h"

#include <ferry/ferry.h>

#include "core/time.h"
#include "shm/segment.h"
#include "sync/obj.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

static ferry_mailbox *make(uint32_t capacity, uint32_t flags, size_t max_msg)
{
    ferry_mailbox_opts o;
    ferry_mailbox_opts_init(&o);
    o.capacity = capacity;
    o.flags = flags;
    o.max_msg = max_msg;
    ferry_mailbox *mb = NULL;
    CHECK_EQ(ferry_mailbox_create(&o, &mb), 0);
    CHECK(mb != NULL);
    return mb;
}

static void send_int(ferry_mailbox *mb, int64_t type, int v)
{
    CHECK_EQ(ferry_mailbox_send(mb, type, &v, sizeof v, FERRY_NOW), 0);
}

/* Receive one int with filter; require its type and value. */
static void expect(ferry_mailbox *mb, int64_t filter, int64_t type, int v)
{
    int got = -1;
    int64_t t = -1;
    CHECK_EQ(ferry_mailbox_recv(mb, filter, &t, &got, sizeof got, FERRY_NOW), sizeof got);
    CHECK_EQ(t, type);
    CHECK_EQ(got, v);
}

static void test_copy_and_types(void)
{
    ferry_mailbox *mb = make(16, 0, 64);
    char buf[64];
    /* empty: -EAGAIN at once, -ETIMEDOUT after about the timeout */
    CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    int64_t t0 = ferry__now_ns();
    CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, buf, sizeof buf, 50 * 1000 * 1000), -ETIMEDOUT);
    int64_t el = ferry__now_ns() - t0;
    CHECK(el >= 50 * 1000 * 1000 && el < 500 * 1000 * 1000);
    /* FIFO */
    for (int i = 0; i < 5; i++) send_int(mb, 0, i);
    for (int i = 0; i < 5; i++) expect(mb, 0, 0, i);
    /* typed: types 3 1 2 3 1 (values 0..4) */
    int64_t types[] = {3, 1, 2, 3, 1};
    for (int i = 0; i < 5; i++) send_int(mb, types[i], i);
    expect(mb, 3, 3, 0);  /* the first of type 3 */
    expect(mb, -2, 1, 1); /* the lowest type <= 2: type 1, oldest first */
    expect(mb, -2, 1, 4);
    expect(mb, -2, 2, 2);
    CHECK_EQ(ferry_mailbox_recv(mb, -2, NULL, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_mailbox_recv(mb, 7, NULL, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    expect(mb, 0, 3, 3);
    CHECK_EQ(ferry_mailbox_recv(mb, INT64_MIN, NULL, buf, sizeof buf, FERRY_NOW), -EINVAL);
    /* sizes */
    CHECK_EQ(ferry_mailbox_send(mb, -1, buf, 1, FERRY_NOW), -EINVAL);
    CHECK_EQ(ferry_mailbox_send(mb, 0, buf, 65, FERRY_NOW), -EMSGSIZE);
    memset(buf, 'x', 64);
    CHECK_EQ(ferry_mailbox_send(mb, 5, buf, 64, FERRY_NOW), 0);
    CHECK_EQ(ferry_mailbox_send(mb, 6, NULL, 0, FERRY_NOW), 0); /* empty messages exist */
    char small[10];
    CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, small, sizeof small, FERRY_NOW), -EMSGSIZE);
    char big[64];
    int64_t t = 0;
    CHECK_EQ(ferry_mailbox_recv(mb, 0, &t, big, sizeof big, FERRY_NOW), 64); /* still queued */
    CHECK_EQ(t, 5);
    CHECK(memcmp(big, buf, 64) == 0);
    CHECK_EQ(ferry_mailbox_recv(mb, 0, &t, NULL, 0, FERRY_NOW), 0);
    CHECK_EQ(t, 6);
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
    CHECK_EQ(st.sent, 12);
    CHECK_EQ(st.received, 12);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.lost + st.returned + st.withdrawn + st.torn, 0);
    CHECK_EQ(st.capacity, 16);
    CHECK_EQ(st.max_msg, 64);
    ferry_mailbox_close(mb);
}

static void test_zero_copy(void)
{
    ferry_mailbox *mb = make(4, 0, 128);
    void *p, *q;
    CHECK_EQ(ferry_mailbox_loan(mb, &p, FERRY_NOW), 0);
    CHECK_EQ(ferry_mailbox_loan(mb, &q, FERRY_NOW), -EBUSY);
    memcpy(p, "hello", 5);
    const void *d;
    size_t len;
    int64_t t;
    CHECK_EQ(ferry_mailbox_peek(mb, 0, &d, &len, &t, FERRY_NOW), -EAGAIN); /* not committed */
    CHECK_EQ(ferry_mailbox_commit(mb, 0, 129), -EINVAL);
    CHECK_EQ(ferry_mailbox_commit(mb, 9, 5), 0);
    CHECK_EQ(ferry_mailbox_commit(mb, 9, 5), -EINVAL); /* no loan */
    CHECK_EQ(ferry_mailbox_peek(mb, 0, &d, &len, &t, FERRY_NOW), 0);
    CHECK_EQ(len, 5);
    CHECK_EQ(t, 9);
    CHECK(memcmp(d, "hello", 5) == 0);
    CHECK_EQ(ferry_mailbox_peek(mb, 0, &d, &len, &t, FERRY_NOW), -EBUSY);
    CHECK_EQ(ferry_mailbox_release(mb), 0);
    CHECK_EQ(ferry_mailbox_release(mb), -EINVAL);
    /* a loan discarded by close never becomes visible; a peek is released by close */
    ferry_mailbox *a;
    CHECK_EQ(ferry_mailbox_adopt(fcntl(ferry_mailbox_fd(mb), F_DUPFD_CLOEXEC, 0), &a), 0);
    CHECK_EQ(ferry_mailbox_loan(a, &p, FERRY_NOW), 0);
    send_int(mb, 1, 7);
    ferry_mailbox_close(a);
    CHECK_EQ(ferry_mailbox_adopt(fcntl(ferry_mailbox_fd(mb), F_DUPFD_CLOEXEC, 0), &a), 0);
    CHECK_EQ(ferry_mailbox_peek(a, 0, &d, &len, &t, FERRY_NOW), 0);
    CHECK_EQ(*(const int *)d, 7);
    ferry_mailbox_close(a);
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
    CHECK_EQ(st.sent, 2);
    CHECK_EQ(st.received, 2);
    CHECK_EQ(st.queued, 0);
    /* all 4 slots are free again */
    for (int i = 0; i < 4; i++) send_int(mb, 0, i);
    CHECK_EQ(ferry_mailbox_send(mb, 0, "x", 1, FERRY_NOW), -EAGAIN);
    ferry_mailbox_close(mb);
}

static void test_capacity(void)
{
    /* N: full after N; a timed send waits, then -ETIMEDOUT */
    ferry_mailbox *mb = make(3, 0, 16);
    for (int i = 0; i < 3; i++) send_int(mb, 0, i);
    CHECK_EQ(ferry_mailbox_send(mb, 0, "x", 1, FERRY_NOW), -EAGAIN);
    int64_t t0 = ferry__now_ns();
    CHECK_EQ(ferry_mailbox_send(mb, 0, "x", 1, 30 * 1000 * 1000), -ETIMEDOUT);
    CHECK(ferry__now_ns() - t0 >= 30 * 1000 * 1000);
    /* a receiver in a child makes room: the waiting send completes */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        int v;
        CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, FERRY_NOW), sizeof v);
        CHECK_EQ(v, 0);
        _exit(0);
    }
    CHECK_EQ(ferry_mailbox_send(mb, 0, "y", 1, 5000 * 1000 * 1000LL), 0);
    wait_ok(pid);
    expect(mb, 0, 0, 1);
    expect(mb, 0, 0, 2);
    char c;
    CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &c, 1, FERRY_NOW), 1);
    CHECK_EQ(c, 'y');
    ferry_mailbox_close(mb);

    /* 0: rendezvous: a send without a receiver times out and is withdrawn */
    mb = make(0, 0, 16);
    CHECK_EQ(ferry_mailbox_send(mb, 0, "a", 1, FERRY_NOW), -EAGAIN);
    CHECK_EQ(ferry_mailbox_send(mb, 0, "a", 1, 20 * 1000 * 1000), -ETIMEDOUT);
    void *p;
    CHECK_EQ(ferry_mailbox_loan(mb, &p, FERRY_NOW), -EOPNOTSUPP);
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
    CHECK_EQ(st.withdrawn, 2);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &c, 1, FERRY_NOW), -EAGAIN);
    /* with a receiver: the send returns once it was taken */
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < 100; i++) {
            int v;
            CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, 5000 * 1000 * 1000LL), sizeof v);
            CHECK_EQ(v, i);
        }
        _exit(0);
    }
    for (int i = 0; i < 100; i++)
        CHECK_EQ(ferry_mailbox_send(mb, 0, &i, sizeof i, 5000 * 1000 * 1000LL), 0);
    wait_ok(pid);
    CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
    CHECK_EQ(st.received, 100);
    ferry_mailbox_close(mb);

    /* unbounded: never waits; -ENOBUFS at the cap (16 MiB messages: few fit in 64 MiB) */
    mb = make(FERRY_UNBOUNDED, 0, (size_t)16 << 20);
    int n = 0;
    int rc;
    while ((rc = ferry_mailbox_send(mb, 0, "z", 1, FERRY_FOREVER)) == 0) n++;
    CHECK_EQ(rc, -ENOBUFS);
    CHECK(n >= 2 && n <= 4);
    for (int i = 0; i < n; i++) CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &c, 1, FERRY_NOW), 1);
    CHECK_EQ(ferry_mailbox_send(mb, 0, "z", 1, FERRY_NOW), 0);
    ferry_mailbox_close(mb);
    /* unbounded with small messages: thousands */
    mb = make(FERRY_UNBOUNDED, 0, 64);
    for (int i = 0; i < 20000; i++) CHECK_EQ(ferry_mailbox_send(mb, 0, &i, sizeof i, 0), 0);
    for (int i = 0; i < 20000; i++) expect(mb, 0, 0, i);
    ferry_mailbox_close(mb);

    /* bad options */
    ferry_mailbox_opts o;
    ferry_mailbox_opts_init(&o);
    ferry_mailbox *x = NULL;
    o.flags = 1u << 7;
    CHECK_EQ(ferry_mailbox_create(&o, &x), -EINVAL);
    ferry_mailbox_opts_init(&o);
    o.max_msg = 0;
    CHECK_EQ(ferry_mailbox_create(&o, &x), -EINVAL);
    o.max_msg = ((size_t)16 << 20) + 1;
    CHECK_EQ(ferry_mailbox_create(&o, &x), -EINVAL);
    ferry_mailbox_opts_init(&o);
    o.capacity = FERRY_MAILBOX_MAX_SLOTS + 1;
    CHECK_EQ(ferry_mailbox_create(&o, &x), -EINVAL);
    o.capacity = 100;
    o.max_msg = (size_t)1 << 20; /* 100 MiB */
    CHECK_EQ(ferry_mailbox_create(&o, &x), -EINVAL);
    CHECK_EQ(ferry_mailbox_create(NULL, NULL), -EINVAL);
    CHECK_EQ(ferry_mailbox_create(NULL, &x), 0); /* the defaults */
    CHECK_EQ(ferry_mailbox_stats(x, &st), 0);
    CHECK_EQ(st.capacity, 64);
    CHECK_EQ(st.max_msg, 4096);
    ferry_mailbox_close(x);
    ferry_mailbox_close(NULL);
}

/* A carrier like the library's, over fds[0..n) and magic: the descriptor to adopt. */
static int carrier(const int *fds, int n, const char *magic)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    int all[4];
    for (int i = 0; i < n; i++) all[i] = fds[i] == -2 ? sv[0] : fds[i]; /* -2: the ring */
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    memset(&cm, 0, sizeof cm);
    struct iovec iov = {.iov_base = (void *)magic, .iov_len = strlen(magic)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n > 0) {
        msg.msg_control = cm.buf;
        msg.msg_controllen = CMSG_SPACE(n * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(n * sizeof(int));
        memcpy(CMSG_DATA(c), all, n * sizeof(int));
    }
    CHECK(sendmsg(sv[0], &msg, 0) == (ssize_t)strlen(magic));
    close(sv[0]);
    return sv[1];
}

/* A mailbox-kind memfd (16 KiB) whose shape says cap/flags/nslots/max_msg/dsize. */
static int shaped(uint32_t cap, uint32_t flags, uint32_t nslots, uint64_t max_msg, uint64_t dsize)
{
    int mfd;
    ferry__seg seg;
    CHECK_EQ(ferry__obj_create(FERRY_OBJ_MAILBOX, 16384, &mfd, &seg), 0);
    uint32_t *w = (uint32_t *)((char *)seg.base + sizeof(ferry__obj_hdr));
    w[0] = cap;
    w[1] = flags;
    w[2] = nslots;
    memcpy(&w[4], &max_msg, 8);
    memcpy(&w[6], &dsize, 8);
    ferry__seg_unmap(&seg);
    return mfd;
}

static void test_garbage(void)
{
    ferry_mailbox *mb = NULL;
    CHECK_EQ(ferry_mailbox_adopt(-1, &mb), -EINVAL);
    /* not a memfd */
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(ferry_mailbox_adopt(sv[0], &mb), -EBADMSG);
    close(sv[1]);
    CHECK_EQ(ferry_mailbox_adopt(open("/dev/null", O_RDONLY | O_CLOEXEC), &mb), -EBADMSG);
    /* an unsealed memfd */
    int fd = memfd_create("x", MFD_CLOEXEC);
    CHECK_EQ(ftruncate(fd, 65536), 0);
    CHECK_EQ(ferry_mailbox_adopt(fd, &mb), -EBADMSG);
    /* another kind of object */
    ferry_sem *s;
    CHECK_EQ(ferry_sem_create(1, 0, &s), 0);
    CHECK_EQ(ferry_mailbox_adopt(fcntl(ferry_sem_fd(s), F_DUPFD_CLOEXEC, 0), &mb), -EBADMSG);
    ferry_sem_close(s);
    /* a bare mailbox memfd (no carrier) */
    int mfd = shaped(8, 0, 8, 64, 64);
    CHECK_EQ(ferry_mailbox_adopt(mfd, &mb), -EBADMSG);
    /* carriers that are wrong: bad magic, no fds, one fd, a stream ring, another kind */
    mfd = shaped(8, 0, 8, 64, 64);
    int two[2] = {mfd, -2};
    CHECK_EQ(ferry_mailbox_adopt(carrier(two, 2, "FEV1"), &mb), -EBADMSG);
    CHECK_EQ(ferry_mailbox_adopt(carrier(two, 0, "FMB1"), &mb), -EBADMSG);
    CHECK_EQ(ferry_mailbox_adopt(carrier(two, 1, "FMB1"), &mb), -EBADMSG);
    int st[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, st), 0);
    int wrong_ring[2] = {mfd, st[0]};
    CHECK_EQ(ferry_mailbox_adopt(carrier(wrong_ring, 2, "FMB1"), &mb), -EBADMSG);
    close(st[0]);
    close(st[1]);
    ferry_event *ev;
    CHECK_EQ(ferry_event_create(4, &ev), 0);
    CHECK_EQ(ferry_mailbox_adopt(fcntl(ferry_event_fd(ev), F_DUPFD_CLOEXEC, 0), &mb), -EBADMSG);
    ferry_event_close(ev);
    close(mfd);
    /* a mailbox header over a shape that does not fit, or lies */
    struct {
        uint32_t nslots_delta, cap;
        uint64_t max_msg, dsize;
        uint32_t flags;
    } bad[] = {
        {1, 8, 64, 64, 0},             /* nslots != capacity */
        {0, 8, 64, 128, 0},            /* dsize wrong */
        {0, 8, 0, 0, 0},               /* max_msg 0 */
        {0, 8, 64, 64, 1u << 9},       /* unknown flag */
        {0, 2000, 64, 64, 0},          /* more slots than the file holds */
        {0, 8, 1u << 25, 1u << 25, 0}, /* max_msg too large */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        mfd = shaped(bad[k].cap, bad[k].flags, bad[k].cap + bad[k].nslots_delta, bad[k].max_msg,
                     bad[k].dsize);
        int f[2] = {mfd, -2};
        CHECK_EQ(ferry_mailbox_adopt(carrier(f, 2, "FMB1"), &mb), -EBADMSG);
        close(mfd);
    }
    /* the same, right, is accepted (the layout this test writes is the real one) */
    mfd = shaped(8, 0, 8, 64, 64);
    int f[2] = {mfd, -2};
    CHECK_EQ(ferry_mailbox_adopt(carrier(f, 2, "FMB1"), &mb), 0);
    close(mfd);
    ferry_mailbox_close(mb);
}

static void test_poll(void)
{
    ferry_mailbox *mb = make(8, 0, 16);
    int pfd = ferry_mailbox_poll_fd(mb);
    CHECK(pfd >= 0);
    CHECK_EQ(ferry_mailbox_poll_fd(mb), pfd);
    struct pollfd p = {.fd = pfd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 0), 0);
    send_int(mb, 0, 1);
    CHECK_EQ(poll(&p, 1, 0), 1);
    send_int(mb, 0, 2);
    CHECK_EQ(poll(&p, 1, 0), 1);
    expect(mb, 0, 0, 1);
    CHECK_EQ(poll(&p, 1, 0), 1); /* one left */
    expect(mb, 0, 0, 2);
    CHECK_EQ(poll(&p, 1, 0), 0); /* level-triggered: quiet once empty */
    /* a peek takes it off the queue: quiet while held */
    send_int(mb, 0, 3);
    const void *d;
    size_t len;
    CHECK_EQ(ferry_mailbox_peek(mb, 0, &d, &len, NULL, FERRY_NOW), 0);
    CHECK_EQ(poll(&p, 1, 0), 0);
    CHECK_EQ(ferry_mailbox_release(mb), 0);
    /* another process's send wakes a poll here; its handle's ring is the same socket */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct timespec ts = {0, 30 * 1000 * 1000};
        nanosleep(&ts, NULL);
        ferry_mailbox *c;
        CHECK_EQ(ferry_mailbox_adopt(fcntl(ferry_mailbox_fd(mb), F_DUPFD_CLOEXEC, 0), &c), 0);
        send_int(c, 4, 4);
        ferry_mailbox_close(c);
        _exit(0);
    }
    CHECK_EQ(poll(&p, 1, 5000), 1);
    wait_ok(pid);
    expect(mb, 0, 4, 4);
    CHECK_EQ(poll(&p, 1, 0), 0);
    /* a rendezvous withdraw leaves it quiet */
    ferry_mailbox_close(mb);
    mb = make(0, 0, 16);
    pfd = ferry_mailbox_poll_fd(mb);
    p.fd = pfd;
    CHECK_EQ(ferry_mailbox_send(mb, 0, "a", 1, 10 * 1000 * 1000), -ETIMEDOUT);
    CHECK_EQ(poll(&p, 1, 0), 0);
    ferry_mailbox_close(mb);
}

static void test_exclusive(void)
{
    ferry_mailbox *mb = make(8, FERRY_MAILBOX_EXCLUSIVE, 16);
    ferry_mailbox *b;
    CHECK_EQ(ferry_mailbox_adopt(fcntl(ferry_mailbox_fd(mb), F_DUPFD_CLOEXEC, 0), &b), 0);
    send_int(mb, 0, 1);
    send_int(mb, 0, 2);
    int v;
    CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, FERRY_NOW), -EPERM);
    CHECK_EQ(ferry_mailbox_detach(mb), -EPERM);
    CHECK_EQ(ferry_mailbox_attach(mb, FERRY_NOW), 0);
    CHECK_EQ(ferry_mailbox_attach(mb, FERRY_NOW), 0);     /* already */
    CHECK_EQ(ferry_mailbox_attach(b, FERRY_NOW), -EBUSY); /* another handle, same process */
    int64_t t0 = ferry__now_ns();
    CHECK_EQ(ferry_mailbox_attach(b, 30 * 1000 * 1000), -ETIMEDOUT);
    CHECK(ferry__now_ns() - t0 >= 30 * 1000 * 1000);
    CHECK_EQ(ferry_mailbox_recv(b, 0, NULL, &v, sizeof v, FERRY_NOW), -EPERM);
    expect(mb, 0, 0, 1);
    /* another process waits for the hold; gets it when we detach */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        CHECK_EQ(ferry_mailbox_attach(b, FERRY_NOW), -EBUSY);
        CHECK_EQ(ferry_mailbox_attach(b, 5000 * 1000 * 1000LL), 0);
        expect(b, 0, 0, 2);
        _exit(0); /* dies holding it */
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK_EQ(ferry_mailbox_detach(mb), 0);
    wait_ok(pid);
    /* the child died holding it: the next attach takes it over */
    CHECK_EQ(ferry_mailbox_attach(mb, 2000 * 1000 * 1000LL), 0);
    CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, &v, sizeof v, FERRY_NOW), -EAGAIN);
    /* close gives the hold up */
    ferry_mailbox_close(mb);
    CHECK_EQ(ferry_mailbox_attach(b, FERRY_NOW), 0);
    ferry_mailbox_close(b);
    /* attach on a shared mailbox: -EINVAL */
    mb = make(8, 0, 16);
    CHECK_EQ(ferry_mailbox_attach(mb, FERRY_NOW), -EINVAL);
    ferry_mailbox_close(mb);
}

int main(void)
{
    int fds = fd_count();
    test_copy_and_types();
    test_zero_copy();
    test_capacity();
    test_garbage();
    test_exclusive();
    test_poll();
    CHECK_EQ(fd_count(), fds);
    printf("ok\n");
    return 0;
}
