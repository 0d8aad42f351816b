// SPDX-License-Identifier: MIT
/*
 * test_ring_stress.c — millions of messages through one shm channel between two threads
 * of one process (so ThreadSanitizer sees both sides of every ring access), checking
 * order and content: each payload carries its sequence number and a checksum of its
 * bytes, sizes vary from 0 to 1,000 bytes so records wrap the (small) ring at every
 * offset, and every 7th message goes through loan/commit and every 5th is read through
 * peek/release. Replies flow back the other way at the same time (duplex), and the
 * consumer sleeps now and then so the futex hand-off is exercised too.
 *
 * FERRY_STRESS_MSGS sets the count (default 3,000,000).
 */
#include "testutil.h"

#include "ferry/ferry.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static long n_msgs = 3000000;

static uint32_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

static size_t size_of(long i)
{
    return i % 97 == 0 ? 1000 : mix((uint64_t)i) % 200;
}

/* Payload: [u64 seq][bytes...][u32 sum] when it has room; small ones are just a pattern. */
static void fill(uint8_t *p, size_t len, long i)
{
    for (size_t k = 0; k < len; k++) p[k] = (uint8_t)(i * 31 + (long)k);
    if (len >= 12) {
        uint64_t s = (uint64_t)i;
        memcpy(p, &s, 8);
        uint32_t sum = 0;
        for (size_t k = 0; k < len - 4; k++) sum = sum * 131 + p[k];
        memcpy(p + len - 4, &sum, 4);
    }
}

static int verify(const uint8_t *p, size_t len, long i)
{
    if (len != size_of(i)) return 0;
    if (len < 12) {
        for (size_t k = 0; k < len; k++)
            if (p[k] != (uint8_t)(i * 31 + (long)k)) return 0;
        return 1;
    }
    uint64_t s;
    memcpy(&s, p, 8);
    uint32_t sum = 0, want;
    for (size_t k = 0; k < len - 4; k++) sum = sum * 131 + p[k];
    memcpy(&want, p + len - 4, 4);
    return s == (uint64_t)i && sum == want;
}

static void *producer(void *arg)
{
    ferry_chan *ch = arg;
    uint8_t buf[1024];
    for (long i = 0; i < n_msgs; i++) {
        size_t len = size_of(i);
        if (i % 7 == 0) {
            void *p;
            CHECK_EQ(ferry_loan(ch, len, &p, 10000000000LL), 0);
            fill(p, len, i);
            CHECK_EQ(ferry_commit(ch, i % 5, len), 0);
        } else {
            fill(buf, len, i);
            ferry_msg m = {.type = i % 5, .data = buf, .len = len};
            CHECK_EQ(ferry_sendmsg(ch, &m, 10000000000LL), 0);
        }
        if (i % 1024 == 0) { /* drain the acknowledgements flowing back */
            char ack[8];
            while (ferry_recv(ch, ack, sizeof ack, FERRY_NOW) == 8) {
            }
        }
    }
    return NULL;
}

int main(void)
{
    const char *env = getenv("FERRY_STRESS_MSGS");
    if (env) n_msgs = atol(env);
    int before = fd_count();
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.ring_bytes = 16384; /* small: records wrap constantly */
    o.spin_ns = 2000;     /* short spins, so sleeping and waking happen often */
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, producer, a) == 0);
    uint8_t buf[1024];
    for (long i = 0; i < n_msgs; i++) {
        ferry_msg m = {.data = buf, .cap = sizeof buf};
        if (i % 5 == 0) {
            CHECK_EQ(ferry_peek(b, 0, &m, 10000000000LL), 0);
            if (!verify(m.data, m.len, i)) {
                fprintf(stderr, "message %ld corrupt (peek)\n", i);
                return 1;
            }
            CHECK_EQ(ferry_release(b), 0);
        } else {
            CHECK_EQ(ferry_recvmsg(b, &m, 0, 10000000000LL), (long long)size_of(i));
            if (!verify(buf, m.len, i)) {
                fprintf(stderr, "message %ld corrupt\n", i);
                return 1;
            }
        }
        CHECK_EQ(m.type, i % 5);
        if (i % 4096 == 0) {
            CHECK_EQ(ferry_send(b, &i, sizeof i, FERRY_NOW) >= -EAGAIN, 1);
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL); /* let the producer fill up and sleep */
        }
    }
    CHECK(pthread_join(t, NULL) == 0);
    ferry_chan_counters sa, sb;
    ferry_chan_counters_init(&sa);
    ferry_chan_counters_init(&sb);
    CHECK_EQ(ferry_chan_stats(a, &sa), 0);
    CHECK_EQ(ferry_chan_stats(b, &sb), 0);
    CHECK_EQ(sa.sent_msgs, n_msgs);
    CHECK_EQ(sb.recv_msgs, n_msgs);
    CHECK_EQ(sa.sent_bytes, sb.recv_bytes);
    printf("%ld messages; producer slept %llu times, consumer %llu, wake-ups %llu\n", n_msgs,
           (unsigned long long)sa.send_waits, (unsigned long long)sb.recv_waits,
           (unsigned long long)(sa.wakeups + sb.wakeups));
    ferry_chan_close(a);
    ferry_chan_close(b);
    CHECK_EQ(fd_count(), before);
    return 0;
}
