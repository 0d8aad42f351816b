// SPDX-License-Identifier: MIT
/*
 * test_mailbox_threads — one process, many threads on one mailbox (for TSan): 4 sender
 * threads and 4 receiver threads, each on its own handle over the same object, half of
 * them zero copy; every message received exactly once and in order per sender per
 * receiver. Then exclusive attach raced by 4 threads: never two holders at once.
 */
#include "testutil.h"

#include <ferry/ferry.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define THREADS 4
#define PER     20000
#define SEC     ((int64_t)1000000000)

static _Atomic uint8_t seen[THREADS * PER];
static _Atomic int holders, max_holders;

typedef struct rec {
    uint32_t sender, seq;
} rec;

typedef struct targ {
    ferry_mailbox *mb;
    uint32_t id;
} targ;

static void *send_main(void *arg)
{
    targ *a = arg;
    for (uint32_t i = 0; i < PER; i++) {
        rec r = {a->id, i};
        if (a->id & 1) {
            void *p;
            CHECK_EQ(ferry_mailbox_loan(a->mb, &p, 10 * SEC), 0);
            memcpy(p, &r, sizeof r);
            CHECK_EQ(ferry_mailbox_commit(a->mb, 1, sizeof r), 0);
        } else {
            CHECK_EQ(ferry_mailbox_send(a->mb, 1, &r, sizeof r, 10 * SEC), 0);
        }
    }
    return NULL;
}

static void *recv_main(void *arg)
{
    targ *a = arg;
    uint32_t last[THREADS];
    for (int s = 0; s < THREADS; s++) last[s] = UINT32_MAX;
    for (;;) {
        rec r = {0, 0};
        int64_t type = -1;
        if (a->id & 1) {
            const void *d;
            size_t len;
            CHECK_EQ(ferry_mailbox_peek(a->mb, 0, &d, &len, &type, 10 * SEC), 0);
            if (type == 1) memcpy(&r, d, sizeof r);
            CHECK_EQ(ferry_mailbox_release(a->mb), 0);
        } else {
            ssize_t n = ferry_mailbox_recv(a->mb, 0, &type, &r, sizeof r, 10 * SEC);
            CHECK(n >= 0);
        }
        if (type == 2) break;
        CHECK(r.sender < THREADS && r.seq < PER);
        CHECK(last[r.sender] == UINT32_MAX || r.seq > last[r.sender]);
        last[r.sender] = r.seq;
        CHECK_EQ(atomic_fetch_add(&seen[r.sender * PER + r.seq], 1), 0);
    }
    return NULL;
}

static void *attach_main(void *arg)
{
    ferry_mailbox *mb = arg;
    for (int i = 0; i < 200; i++) {
        CHECK_EQ(ferry_mailbox_attach(mb, 10 * SEC), 0);
        int h = atomic_fetch_add(&holders, 1) + 1;
        int m = atomic_load(&max_holders);
        while (h > m && !atomic_compare_exchange_weak(&max_holders, &m, h)) {
        }
        atomic_fetch_sub(&holders, 1);
        CHECK_EQ(ferry_mailbox_detach(mb), 0);
    }
    ferry_mailbox_close(mb);
    return NULL;
}

int main(void)
{
    int fds = fd_count();
    ferry_mailbox_opts o;
    ferry_mailbox_opts_init(&o);
    o.capacity = 32;
    o.max_msg = 64;
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(&o, &mb), 0);
    pthread_t tx[THREADS], rx[THREADS];
    targ ta[THREADS], ra[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ra[i].id = ta[i].id = (uint32_t)i;
        CHECK_EQ(ferry_mailbox_adopt(dup(ferry_mailbox_fd(mb)), &ra[i].mb), 0);
        CHECK_EQ(ferry_mailbox_adopt(dup(ferry_mailbox_fd(mb)), &ta[i].mb), 0);
        CHECK_EQ(pthread_create(&rx[i], NULL, recv_main, &ra[i]), 0);
        CHECK_EQ(pthread_create(&tx[i], NULL, send_main, &ta[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(tx[i], NULL);
    for (int i = 0; i < THREADS; i++) CHECK_EQ(ferry_mailbox_send(mb, 2, NULL, 0, 10 * SEC), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(rx[i], NULL);
    for (int i = 0; i < THREADS * PER; i++) CHECK_EQ(atomic_load(&seen[i]), 1);
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
    CHECK_EQ(st.sent, THREADS * PER + THREADS);
    CHECK_EQ(st.received, THREADS * PER + THREADS);
    CHECK_EQ(st.queued, 0);
    for (int i = 0; i < THREADS; i++) {
        ferry_mailbox_close(ra[i].mb);
        ferry_mailbox_close(ta[i].mb);
    }
    ferry_mailbox_close(mb);

    /* exclusive: handles in 4 threads take turns; never two holders at once */
    o.flags = FERRY_MAILBOX_EXCLUSIVE;
    CHECK_EQ(ferry_mailbox_create(&o, &mb), 0);
    pthread_t at[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ferry_mailbox *x;
        CHECK_EQ(ferry_mailbox_adopt(dup(ferry_mailbox_fd(mb)), &x), 0);
        CHECK_EQ(pthread_create(&at[i], NULL, attach_main, x), 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(at[i], NULL);
    CHECK_EQ(atomic_load(&max_holders), 1);
    CHECK_EQ(ferry_mailbox_attach(mb, FERRY_NOW), 0);
    ferry_mailbox_close(mb);
    CHECK_EQ(fd_count(), fds);
    printf("ok\n");
    return 0;
}
