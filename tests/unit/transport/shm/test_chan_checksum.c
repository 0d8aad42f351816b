// SPDX-License-Identifier: MIT
/*
 * test_chan_checksum — a FERRY_CHECKSUM channel works end to end (every message carries a
 * crc32c checked on receipt; a correct peer must never see -EBADMSG), with a forked echo
 * peer, for flags FERRY_CHECKSUM and FERRY_CHECKSUM | FERRY_NO_SPIN:
 *  - 2,000 round trips of pseudo-random payloads (sizes 0..4096, some of exactly max_msg,
 *    random non-negative types, via ferry_sendmsg/ferry_recvmsg): each echo is identical
 *    in type, length and bytes;
 *  - 100 round trips through loan/commit and peek/release (the crc is taken at commit);
 *  - a message carrying an fd round-trips with its fd;
 *  - the channel ends cleanly (-EPIPE after the peer closes), no fd leaks on either side.
 */
#include "chantest.h"

#include <sys/mman.h>

#define ROUNDS   2000
#define ZC_ROUND 100

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ferry_recvmsg of any type (5 s bound) into a cleared *m with buf[0..cap) for the
 * payload. */
static ssize_t recv_into(ferry_chan *ch, ferry_msg *m, void *buf, size_t cap)
{
    memset(m, 0, sizeof *m);
    m->data = buf;
    m->cap = cap;
    return ferry_recvmsg(ch, m, 0, T5S);
}

/* The peer echoes everything back; it needs no ctl. */
static void child_main(ferry_chan *b, ctl *c)
{
    (void)c;
    size_t max_msg = ferry_chan_max_msg(b);
    uint8_t *buf = malloc(max_msg);
    CHECK(buf != NULL);
    STAGE("child: echo");
    for (int i = 0; i < ROUNDS; i++) {
        ferry_msg m;
        ssize_t n = recv_into(b, &m, buf, max_msg);
        if (n < 0) fprintf(stderr, "child recvmsg %d: %s\n", i, ferry_strerror((int)n));
        CHECK(n >= 0);
        CHECK_EQ(m.nfds, 0);
        m.len = (size_t)n;
        CHECK_EQ(ferry_sendmsg(b, &m, T5S), 0);
    }
    STAGE("child: zero-copy echo");
    for (int i = 0; i < ZC_ROUND; i++) {
        ferry_msg m;
        memset(&m, 0, sizeof m);
        CHECK_EQ(ferry_peek(b, 0, &m, T5S), 0);
        void *p = NULL;
        CHECK_EQ(ferry_loan(b, m.len, &p, T5S), 0);
        memcpy(p, m.data, m.len);
        int64_t type = m.type;
        size_t len = m.len;
        CHECK_EQ(ferry_release(b), 0);
        CHECK_EQ(ferry_commit(b, type, len), 0);
    }
    STAGE("child: fd echo");
    ferry_msg m;
    CHECK_EQ(recv_into(b, &m, buf, max_msg), 2);
    CHECK_EQ(m.nfds, 1);
    CHECK_EQ(ferry_sendmsg(b, &m, T5S), 0);
    close(m.fds[0]);
    STAGE("child: end");
    CHECK_EQ(ferry_recv(b, buf, max_msg, T5S), -EPIPE);
    free(buf);
}

static void parent_main(ferry_chan *a, ctl *c)
{
    (void)c;
    size_t max_msg = ferry_chan_max_msg(a);
    CHECK(max_msg > 8192);
    uint8_t *out = malloc(max_msg), *in = malloc(max_msg);
    CHECK(out != NULL && in != NULL);
    STAGE("parent: round trips");
    for (int i = 0; i < ROUNDS; i++) {
        size_t len = (i % 97 == 5) ? max_msg : (size_t)(next_rand() % 4097);
        for (size_t k = 0; k < len; k++) out[k] = (uint8_t)next_rand();
        ferry_msg m;
        memset(&m, 0, sizeof m);
        m.type = (int64_t)(next_rand() >> 1);
        m.data = out;
        m.len = len;
        CHECK_EQ(ferry_sendmsg(a, &m, T5S), 0);
        ferry_msg r;
        ssize_t n = recv_into(a, &r, in, max_msg);
        if (n < 0) fprintf(stderr, "parent recvmsg %d: %s\n", i, ferry_strerror((int)n));
        CHECK_EQ(n, (ssize_t)len);
        CHECK_EQ(r.type, m.type);
        CHECK(memcmp(in, out, len) == 0);
    }
    STAGE("parent: zero-copy round trips");
    for (int i = 0; i < ZC_ROUND; i++) {
        size_t len = (size_t)(next_rand() % 8192);
        int64_t type = (int64_t)(next_rand() % 1000);
        void *p = NULL;
        CHECK_EQ(ferry_loan(a, len, &p, T5S), 0);
        for (size_t k = 0; k < len; k++) out[k] = (uint8_t)next_rand();
        memcpy(p, out, len);
        CHECK_EQ(ferry_commit(a, type, len), 0);
        ferry_msg r;
        memset(&r, 0, sizeof r);
        CHECK_EQ(ferry_peek(a, 0, &r, T5S), 0);
        CHECK_EQ(r.type, type);
        CHECK_EQ(r.len, len);
        CHECK(memcmp(r.data, out, len) == 0);
        CHECK_EQ(ferry_release(a), 0);
    }
    STAGE("parent: fd round trip");
    int mfd = memfd_create("ck", MFD_CLOEXEC);
    CHECK(mfd >= 0);
    CHECK_EQ(write(mfd, "crc", 3), 3);
    send_fds(a, 1, "fd", &mfd, 1);
    close(mfd);
    ferry_msg m;
    CHECK_EQ(recv_into(a, &m, in, max_msg), 2);
    CHECK_EQ(m.type, 1);
    CHECK_EQ(m.nfds, 1);
    char b3[4] = {0};
    CHECK_EQ(pread(m.fds[0], b3, 3, 0), 3);
    CHECK(memcmp(b3, "crc", 3) == 0);
    close(m.fds[0]);
    free(out);
    free(in);
}

static void run(uint32_t flags)
{
    printf("flags 0x%x\n", flags);
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.flags = flags;
    run_pair(&o, child_main, parent_main);
}

int main(void)
{
    watchdog_arm();
    run(FERRY_CHECKSUM);
    run(FERRY_CHECKSUM | FERRY_NO_SPIN);
    printf("test_chan_checksum: ok\n");
    return 0;
}
