// SPDX-License-Identifier: MIT
/*
 * test_cluster_mailbox_recv — receivers of a mailbox on another host (docs/cluster.md,
 * "Receivers on other hosts"): a mailbox published on host A and exported; its owner on A
 * sends N numbered, typed messages into it; a slow local receiver on A and two
 * unprivileged receivers on host B (whose bridge imports it with --recv) take them as
 * competing receivers. Every number is received exactly once in all, with its type, B's
 * receivers get a share, also while B's nats-server is stopped for 500 ms and restarted
 * mid-stream (a pull or an answer lost then is pulled again; the exporter holds each
 * message until the next pull acknowledges it). Nothing more arrives after the N, and
 * nothing is given back into A's mailbox after the exporter's give-back time (every
 * message delivered on B was acknowledged).
 * Skipped (77) when not root or without `ip` / nats-server.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "clusterutil.h"

#include <ferry/ferry.h>
#include <stdatomic.h>

#define N 2000

typedef struct shared {
    _Atomic int total;       /* messages received, everywhere */
    _Atomic int on_b;        /* ... by B's receivers */
    _Atomic int done;        /* the parent says: stop */
    _Atomic uint8_t seen[N]; /* times each number was received */
} shared;

static shared *sh;
static cluster C;

/* Take messages until all N are in, everywhere (slow: 2 ms after each). */
static void take(ferry_mailbox *mb, int b_side, int slow)
{
    int64_t end = now_ns() + 120 * SEC;
    while (atomic_load(&sh->total) < N) {
        CHECK(now_ns() < end);
        char buf[64];
        int64_t type = -1;
        ssize_t n = ferry_mailbox_recv(mb, 0, &type, buf, sizeof buf - 1, 200 * MS);
        if (n == -ETIMEDOUT) continue;
        CHECK(n > 0);
        buf[n] = 0;
        int i = atoi(buf);
        CHECK(i >= 0 && i < N);
        CHECK_EQ(type, i % 7 + 1);
        if (atomic_fetch_add(&sh->seen[i], 1) != 0) fprintf(stderr, "message %d twice\n", i);
        atomic_fetch_add(&sh->total, 1);
        if (b_side) atomic_fetch_add(&sh->on_b, 1);
        if (slow) sleep_ms(2);
    }
}

/* A: the mailbox's owner and sender. */
static void owner(void *arg)
{
    (void)arg;
    ferry_mailbox *mb;
    ferry_pub *pub;
    cl_mailbox_publish("org.test.q", 64, 64, &mb, &pub);
    for (int i = 0; i < N; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "%d", i);
        CHECK_EQ(ferry_mailbox_send(mb, i % 7 + 1, msg, (size_t)n, 60 * SEC), 0);
    }
    while (!atomic_load(&sh->done)) sleep_ms(10);
    /* nothing given back: the exporter held no message delivered on B (the importer
     * acknowledges its last delivery at once), so none came back here twice */
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.sent, N);
    ferry_pub_close(pub);
    ferry_mailbox_close(mb);
}

/* A: a slow local receiver (2 ms per message), competing with B's. */
static void a_receiver(void *arg)
{
    (void)arg;
    ferry_mailbox *mb = cl_mailbox_open("org.test.q");
    take(mb, 0, 1);
    ferry_mailbox_close(mb);
}

/* B: an unprivileged receiver of the imported mailbox. */
static void b_receiver(void *arg)
{
    (void)arg;
    CHECK_EQ(getuid(), CALLER_UID);
    ferry_mailbox *mb = cl_mailbox_open("org.test.q");
    take(mb, 1, 0);
    /* nothing more comes: none was delivered twice, none is left here */
    char buf[64];
    CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, buf, sizeof buf, 1500 * MS), -ETIMEDOUT);
    ferry_mailbox_close(mb);
}

int main(void)
{
    sh = cl_begin(&C, 200, sizeof *sh);
    host *A = &C.h[0], *B = &C.h[1];
    const char *exp_a[] = {"--export", "org.test.q=hostb", "--heartbeat-ms", "200", NULL};
    const char *exp_b[] = {
        "--import", "org.test.*=hosta", "--recv", "org.test.q", "--heartbeat-ms", "200", NULL};
    cl_bridges(&C, exp_a, exp_b);
    pid_t b1 = cl_spawn(B, &CALLER_ID, b_receiver, NULL);
    pid_t b2 = cl_spawn(B, &CALLER_ID, b_receiver, NULL);
    pid_t o = cl_spawn(A, &ROOT, owner, NULL);
    /* $FERRY_CLUSTER_RECV_B_ONLY: no receiver on A (to measure B's pulls alone) */
    int b_only = getenv("FERRY_CLUSTER_RECV_B_ONLY") != NULL;
    pid_t a = b_only ? -1 : cl_spawn(A, &ROOT, a_receiver, NULL);

    int64_t t0 = now_ns();
    while (atomic_load(&sh->total) < N / 3) sleep_ms(5);
    cl_nats_stop(&C, 1); /* B's nats-server away for 500 ms mid-stream */
    int at = atomic_load(&sh->total);
    sleep_ms(500);
    cl_nats_start(&C, 1);
    printf("B's nats-server stopped at message %d, restarted\n", at);
    if (a > 0) wait_ok(a);
    wait_ok(b1);
    wait_ok(b2);
    double ms = (double)(now_ns() - t0) / 1e6;
    for (int i = 0; i < N; i++) {
        if (atomic_load(&sh->seen[i]) != 1)
            fprintf(stderr, "message %d: %d times\n", i, sh->seen[i]);
        CHECK_EQ(atomic_load(&sh->seen[i]), 1); /* exactly once in all */
    }
    CHECK_EQ(atomic_load(&sh->total), N);
    int on_b = atomic_load(&sh->on_b);
    printf("%d messages received exactly once: %d on A (slow), %d on B, %.1f ms\n", N, N - on_b,
           on_b, ms);
    if (b_only) CHECK_EQ(on_b, N);
    CHECK(on_b > 0);
    sleep_ms(2000); /* past the exporter's give-back time (2 x 3 x 200 ms) */
    atomic_store(&sh->done, 1);
    wait_ok(o);
    cl_down(&C);
    printf("ok\n");
    return 0;
}
