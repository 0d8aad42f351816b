// SPDX-License-Identifier: MIT
/*
 * test_shm_grow.c — FERRY_UNBOUNDED channels growing ring after ring:
 *  1. typed receive across segments: 3,000 messages of types 1 and 2 alternating, sent
 *     into a 4 KiB ring with nobody receiving (so it grows several times), then every
 *     type-2 message (filter 2), then every type-1 message: each type in order, nothing
 *     lost; passed-over messages in old rings stay readable until taken;
 *  2. fds riding on messages across growth (every 50th carries an eventfd holding its
 *     sequence number + 1) arrive on the right message;
 *  3. two threads (TSan sees both): a producer sending 300,000 messages while the
 *     consumer pauses now and then, so rings are added while it reads — all in order.
 * Afterwards no fd is left open.
 */
#include "testutil.h"

#include "ferry/ferry.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>

static ferry_chan_opts unbounded(void)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.capacity = FERRY_UNBOUNDED;
    o.ring_bytes = 4096;
    o.mem_cap = 16 << 20;
    return o;
}

static void test_typed_across_rings(void)
{
    ferry_chan_opts o = unbounded();
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    const uint64_t n = 3000;
    for (uint64_t i = 0; i < n; i++) {
        int fd = -1;
        ferry_msg m = {.type = 1 + (int64_t)(i & 1), .data = &i, .len = sizeof i};
        if (i % 50 == 0) {
            fd = eventfd((unsigned)i + 1, EFD_CLOEXEC | EFD_NONBLOCK);
            m.fds[0] = fd;
            m.nfds = 1;
        }
        CHECK_EQ(ferry_sendmsg(a, &m, FERRY_NOW), 0);
        if (fd >= 0) close(fd);
    }
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    CHECK(st.grows >= 3);
    for (int64_t type = 2; type >= 1; type--) {
        for (uint64_t i = (uint64_t)(type - 1); i < n; i += 2) {
            uint64_t v;
            ferry_msg m = {.data = &v, .cap = sizeof v};
            CHECK_EQ(ferry_recvmsg(b, &m, type, FERRY_NOW), (long long)sizeof v);
            CHECK_EQ(v, i);
            CHECK_EQ(m.type, type);
            CHECK_EQ(m.nfds, i % 50 == 0 ? 1 : 0);
            if (m.nfds) {
                uint64_t ev;
                CHECK_EQ(read(m.fds[0], &ev, sizeof ev), (long long)sizeof ev);
                CHECK_EQ(ev, i + 1);
                close(m.fds[0]);
            }
        }
    }
    char x;
    CHECK_EQ(ferry_recv(b, &x, 1, FERRY_NOW), -EAGAIN);
    printf("typed receive across %llu ring growths: ok\n", (unsigned long long)st.grows);
    ferry_chan_close(a);
    ferry_chan_close(b);
}

#define THREAD_MSGS 300000

static void *producer(void *arg)
{
    ferry_chan *a = arg;
    for (uint64_t i = 0; i < THREAD_MSGS; i++) {
        uint64_t buf[8] = {i, ~i};
        CHECK_EQ(ferry_send(a, buf, 8 + (i % 8) * 8, FERRY_NOW), 0);
    }
    return NULL;
}

static void test_threads(void)
{
    ferry_chan_opts o = unbounded();
    o.mem_cap = 64 << 20;
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, producer, a) == 0);
    for (uint64_t i = 0; i < THREAD_MSGS; i++) {
        uint64_t buf[8];
        CHECK_EQ(ferry_recv(b, buf, sizeof buf, 10000000000LL), (long long)(8 + (i % 8) * 8));
        CHECK_EQ(buf[0], i);
        if (i % 8) CHECK_EQ(buf[1], ~i);
        if (i % 20000 == 0) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL); /* fall behind: the producer adds rings */
        }
    }
    CHECK(pthread_join(t, NULL) == 0);
    ferry_chan_counters st;
    ferry_chan_counters_init(&st);
    CHECK_EQ(ferry_chan_stats(a, &st), 0);
    printf("two threads, %d messages, %llu growths: ok\n", THREAD_MSGS,
           (unsigned long long)st.grows);
    ferry_chan_close(a);
    ferry_chan_close(b);
}

int main(void)
{
    int before = fd_count();
    test_typed_across_rings();
    test_threads();
    CHECK_EQ(fd_count(), before);
    return 0;
}
