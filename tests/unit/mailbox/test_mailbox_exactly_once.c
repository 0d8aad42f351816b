// SPDX-License-Identifier: MIT
/*
 * test_mailbox_exactly_once — 3 sender processes and 3 competing receiver processes on
 * one mailbox (capacity 64, so senders also wait for room): every message is received
 * exactly once, none is lost, and each receiver sees each sender's messages in the order
 * they were sent. Run for both the copy (send/recv) and the zero-copy (loan/commit,
 * peek/release) paths, and once with a rendezvous mailbox (capacity 0).
 */
#include "testutil.h"

#include <ferry/ferry.h>

#include "core/time.h"

#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>

#define SENDERS   3
#define RECEIVERS 3
#define PER       20000
#define STOP_TYPE 2

typedef struct rec {
    uint32_t sender, seq;
} rec;

typedef struct logbuf {
    uint32_t n;
    rec r[SENDERS * PER];
} logbuf;

static void sender(ferry_mailbox *mb, uint32_t id, int zero_copy)
{
    for (uint32_t i = 0; i < PER; i++) {
        rec r = {id, i};
        if (zero_copy) {
            void *p;
            CHECK_EQ(ferry_mailbox_loan(mb, &p, 10LL * 1000 * 1000 * 1000), 0);
            memcpy(p, &r, sizeof r);
            CHECK_EQ(ferry_mailbox_commit(mb, 1, sizeof r), 0);
        } else {
            CHECK_EQ(ferry_mailbox_send(mb, 1, &r, sizeof r, 10LL * 1000 * 1000 * 1000), 0);
        }
    }
}

static void receiver(ferry_mailbox *mb, logbuf *log, int zero_copy)
{
    uint32_t last[SENDERS];
    for (int s = 0; s < SENDERS; s++) last[s] = UINT32_MAX;
    for (;;) {
        rec r;
        int64_t type = -1;
        if (zero_copy) {
            const void *d;
            size_t len;
            CHECK_EQ(ferry_mailbox_peek(mb, 0, &d, &len, &type, 10LL * 1000 * 1000 * 1000), 0);
            if (type == 1) {
                CHECK_EQ(len, sizeof r);
                memcpy(&r, d, sizeof r);
            }
            CHECK_EQ(ferry_mailbox_release(mb), 0);
        } else {
            ssize_t n = ferry_mailbox_recv(mb, 0, &type, &r, sizeof r, 10LL * 1000 * 1000 * 1000);
            CHECK(n == (ssize_t)sizeof r || (n == 0 && type == STOP_TYPE));
        }
        if (type == STOP_TYPE) break;
        CHECK_EQ(type, 1);
        CHECK(r.sender < SENDERS && r.seq < PER);
        /* order per sender: strictly increasing in what this receiver sees */
        CHECK(last[r.sender] == UINT32_MAX || r.seq > last[r.sender]);
        last[r.sender] = r.seq;
        log->r[log->n++] = r;
    }
}

static void run(uint32_t capacity, int zero_copy)
{
    ferry_mailbox_opts o;
    ferry_mailbox_opts_init(&o);
    o.capacity = capacity;
    o.max_msg = 64;
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(&o, &mb), 0);
    logbuf *logs = mmap(NULL, RECEIVERS * sizeof(logbuf), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(logs != MAP_FAILED);
    pid_t rx[RECEIVERS], tx[SENDERS];
    for (int i = 0; i < RECEIVERS; i++) {
        rx[i] = fork();
        CHECK(rx[i] >= 0);
        if (rx[i] == 0) {
            receiver(mb, &logs[i], zero_copy);
            _exit(0);
        }
    }
    /* Every receiver waits before the first message: the hand-out to waiters is FIFO, so
     * each gets one however slowly the machine schedules them (checked below). */
    for (int64_t end = ferry__now_ns() + 10LL * 1000 * 1000 * 1000;;) {
        ferry_mailbox_counters s;
        ferry_mailbox_counters_init(&s);
        CHECK_EQ(ferry_mailbox_stats(mb, &s), 0);
        if (s.waiting >= RECEIVERS) break;
        CHECK(ferry__now_ns() < end);
        sched_yield();
    }
    for (int i = 0; i < SENDERS; i++) {
        tx[i] = fork();
        CHECK(tx[i] >= 0);
        if (tx[i] == 0) {
            sender(mb, (uint32_t)i, zero_copy && capacity != 0);
            _exit(0);
        }
    }
    for (int i = 0; i < SENDERS; i++) wait_ok(tx[i]);
    /* queued after every data message: FIFO hands them out last */
    for (int i = 0; i < RECEIVERS; i++)
        CHECK_EQ(ferry_mailbox_send(mb, STOP_TYPE, NULL, 0, 10LL * 1000 * 1000 * 1000), 0);
    for (int i = 0; i < RECEIVERS; i++) wait_ok(rx[i]);
    /* exactly once */
    uint8_t *seen = calloc(SENDERS * PER, 1);
    CHECK(seen);
    uint64_t total = 0;
    for (int i = 0; i < RECEIVERS; i++) {
        total += logs[i].n;
        for (uint32_t k = 0; k < logs[i].n; k++) {
            rec r = logs[i].r[k];
            CHECK_EQ(seen[r.sender * PER + r.seq], 0);
            seen[r.sender * PER + r.seq] = 1;
        }
    }
    CHECK_EQ(total, SENDERS * PER);
    for (int i = 0; i < RECEIVERS; i++) CHECK(logs[i].n > 0); /* they did compete */
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
    CHECK_EQ(st.sent, SENDERS * PER + RECEIVERS);
    CHECK_EQ(st.received, SENDERS * PER + RECEIVERS);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.lost + st.returned + st.torn + st.withdrawn, 0);
    free(seen);
    munmap(logs, RECEIVERS * sizeof(logbuf));
    ferry_mailbox_close(mb);
}

int main(void)
{
    int fds = fd_count();
    run(64, 0);
    run(64, 1);
    run(0, 0);
    run(FERRY_UNBOUNDED, 1);
    CHECK_EQ(fd_count(), fds);
    printf("ok\n");
    return 0;
}
