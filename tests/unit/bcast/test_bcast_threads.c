// SPDX-License-Identifier: MIT
/*
 * test_bcast_threads — one publisher thread, subscriber threads of every kind at once
 * (for TSan): two blocking subscribers (copying recv and in-place peek) get all 200,000
 * messages in order; a drop-oldest subscriber reading in place gets an increasing
 * sequence whose gaps add up exactly to its lost count; a churner subscribes, takes a
 * few consecutive messages (none older than the head when it subscribed) and leaves,
 * over and over, while the stream runs.
 */
#include "testutil.h"

#include "bcasttest.h"

#include <ferry/ferry.h>
#include <pthread.h>
#include <stdatomic.h>

#define NMSG 200000

static ferry_bcast *B;
static _Atomic int started;
static _Atomic int done;
static _Atomic uint64_t published; /* messages published so far */

static void *sub_thread(void *arg)
{
    int kind = (int)(intptr_t)arg; /* 0 recv, 1 peek, 2 drop-oldest peek */
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(B, kind == 2 ? FERRY_SUB_DROP_OLDEST : 0, &s), 0);
    atomic_fetch_add(&started, 1);
    unsigned char buf[64];
    int64_t last = -1;
    uint64_t got = 0, gaps = 0;
    for (;;) {
        int64_t type;
        if (kind == 0) {
            ssize_t n = ferry_sub_recv(s, buf, sizeof buf, &type, 20 * SEC);
            if (n == -EPIPE) break;
            CHECK(n > 0 && body_ok((uint64_t)type, buf, (size_t)n));
        } else {
            ferry_msg m;
            int rc = ferry_sub_peek(s, &m, 20 * SEC);
            if (rc == -EPIPE) break;
            CHECK_EQ(rc, 0);
            type = m.type;
            CHECK(body_ok((uint64_t)type, m.data, m.len));
            CHECK_EQ(ferry_sub_release(s), 0);
        }
        CHECK(type > last);
        gaps += (uint64_t)(type - last - 1);
        last = type;
        got++;
    }
    CHECK_EQ(last, NMSG - 1);
    CHECK_EQ(gaps, ferry_sub_lost(s));
    CHECK_EQ(got + gaps, NMSG);
    if (kind != 2) CHECK_EQ(got, NMSG);
    ferry_sub_close(s);
    return NULL;
}

static void *churn_thread(void *arg)
{
    (void)arg;
    unsigned char buf[64];
    uint64_t rounds = 0;
    while (!atomic_load(&done)) {
        uint64_t before = atomic_load(&published);
        ferry_sub *s;
        CHECK_EQ(ferry_bcast_subscribe(B, 0, &s), 0);
        int64_t type, last = -1;
        for (int i = 0; i < 5; i++) {
            ssize_t n = ferry_sub_recv(s, buf, sizeof buf, &type, 20 * SEC);
            if (n == -EPIPE) break;
            CHECK(n > 0 && body_ok((uint64_t)type, buf, (size_t)n));
            CHECK((uint64_t)type >= before);
            CHECK(last < 0 || type == last + 1);
            last = type;
        }
        ferry_sub_close(s);
        rounds++;
    }
    CHECK(rounds > 0);
    return NULL;
}

int main(void)
{
    int fds = fd_count();
    int64_t t0 = now_ns();
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.slots = 64;
    o.max_msg = 64;
    CHECK_EQ(ferry_bcast_create(&o, &B), 0);
    pthread_t t[4];
    for (int k = 0; k < 3; k++)
        CHECK(pthread_create(&t[k], NULL, sub_thread, (void *)(intptr_t)k) == 0);
    while (atomic_load(&started) < 3) sched_yield();
    CHECK(pthread_create(&t[3], NULL, churn_thread, NULL) == 0);
    unsigned char buf[64];
    for (uint64_t i = 0; i < NMSG; i++) {
        CHECK_EQ(ferry_bcast_publish(B, (int64_t)i, buf, body(i, buf), 20 * SEC), 0);
        atomic_store(&published, i + 1);
    }
    atomic_store(&done, 1);
    CHECK_EQ(ferry_bcast_end(B), 0); /* the handle itself must outlive the threads */
    CHECK_EQ(ferry_bcast_publish(B, 0, buf, 1, FERRY_NOW), -EPIPE);
    for (int k = 0; k < 4; k++) CHECK(pthread_join(t[k], NULL) == 0);
    ferry_bcast_close(B);
    CHECK(now_ns() - t0 < 30 * SEC);
    CHECK_EQ(fd_count(), fds);
    printf("test_bcast_threads: ok\n");
    return 0;
}
