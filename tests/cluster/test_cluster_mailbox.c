// SPDX-License-Identifier: MIT
/*
 * test_cluster_mailbox — a mailbox across hosts (docs/cluster.md): a mailbox published on
 * host A and exported; an unprivileged sender on host B opens it by name with the plain
 * API and sends N numbered, typed messages; A's receiver gets every one exactly once, in
 * order, with its type — also after B's ferryd was restarted (the bridge publishes the
 * imported mailbox again), and while B's and then A's nats-server are stopped and
 * restarted mid-stream (the in-flight messages are sent again and delivered once), and
 * while A's receiver pauses twice so that its mailbox is full under a window of puts. The
 * sender's view: every message sent was taken from B's mailbox (sent == received == N,
 * none queued, none lost). Skipped (77) when not root or without `ip` / nats-server.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "clusterutil.h"

#include <ferry/ferry.h>
#include <stdatomic.h>

#define N 3000

typedef struct shared {
    _Atomic int sent; /* how many the sender has sent */
    _Atomic int got;  /* how many A's receiver has */
} shared;

static shared *sh;
static cluster C;

static void receiver(void *arg)
{
    (void)arg;
    ferry_mailbox *mb;
    ferry_pub *pub; /* the bridge may open it: the opt-in to export */
    cl_mailbox_publish("org.test.mbox", 64, 256, &mb, &pub);
    for (int i = 0; i < N; i++) {
        char buf[256];
        int64_t type = -1;
        /* a pause: the mailbox fills with a window of puts in flight, so A's bridge refuses
         * some (EBUSY) while later ones arrive; they must still come in order, once */
        if (i == N / 2 || i == N / 2 + 100) sleep_ms(400);
        ssize_t n = ferry_mailbox_recv(mb, 0, &type, buf, sizeof buf, 60 * SEC);
        CHECK(n > 0 && n < (ssize_t)sizeof buf);
        buf[n] = 0;
        if (atoi(buf) != i) fprintf(stderr, "message %d: got \"%s\"\n", i, buf);
        CHECK_EQ(atoi(buf), i); /* in order, none twice, none missing */
        CHECK_EQ(type, i % 7 + 1);
        atomic_store(&sh->got, i + 1);
    }
    /* nothing more comes: no message was delivered twice */
    char buf[256];
    CHECK_EQ(ferry_mailbox_recv(mb, 0, NULL, buf, sizeof buf, 1500 * MS), -ETIMEDOUT);
    ferry_pub_close(pub);
    ferry_mailbox_close(mb);
}

static void sender(void *arg)
{
    (void)arg;
    CHECK_EQ(getuid(), CALLER_UID);
    ferry_mailbox *mb = cl_mailbox_open("org.test.mbox");
    for (int i = 0; i < N; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "%d", i);
        CHECK_EQ(ferry_mailbox_send(mb, i % 7 + 1, msg, (size_t)n, 60 * SEC), 0);
        atomic_store(&sh->sent, i + 1);
    }
    /* everything sent was taken by the bridge, once A had it */
    int64_t end = now_ns() + 60 * SEC;
    while (atomic_load(&sh->got) < N) {
        CHECK(now_ns() < end);
        sleep_ms(10);
    }
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
    CHECK_EQ(st.sent, N);
    CHECK_EQ(st.received, N);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.lost, 0);
    ferry_mailbox_close(mb);
}

static void wait_present(void *arg)
{
    (void)arg;
    CHECK_EQ(cl_wait_name("org.test.mbox", 1, 20 * SEC), 0);
}

int main(void)
{
    sh = cl_begin(&C, 170, sizeof *sh);
    host *A = &C.h[0], *B = &C.h[1];
    const char *exp_a[] = {"--export", "org.test.mbox=hostb", "--heartbeat-ms", "200", NULL};
    const char *exp_b[] = {"--import", "org.test.*", "--heartbeat-ms", "200", NULL};
    cl_bridges(&C, exp_a, exp_b);
    pid_t r = cl_spawn(A, &ROOT, receiver, NULL);
    /* the mailbox imported on B; then B's ferryd killed and started again: the bridge
     * publishes it again, and the sender finds it by name */
    wait_ok(cl_spawn(B, &CALLER_ID, wait_present, NULL));
    cl_ferryd_restart(B);
    pid_t s = cl_spawn(B, &CALLER_ID, sender, NULL);

    int64_t t0 = now_ns();
    while (atomic_load(&sh->got) < N / 3) sleep_ms(5);
    printf("%d messages in %.1f ms\n", N / 3, (double)(now_ns() - t0) / 1e6);
    /* B's nats-server away for 500 ms mid-stream */
    cl_nats_stop(&C, 1);
    int at = atomic_load(&sh->got);
    sleep_ms(500);
    cl_nats_start(&C, 1);
    printf("B's nats-server stopped at message %d, restarted\n", at);
    while (atomic_load(&sh->got) < 2 * N / 3) sleep_ms(5);
    /* and A's */
    cl_nats_stop(&C, 0);
    at = atomic_load(&sh->got);
    sleep_ms(500);
    cl_nats_start(&C, 0);
    printf("A's nats-server stopped at message %d, restarted\n", at);
    wait_ok(s);
    wait_ok(r);
    printf("%d messages delivered exactly once, in order, in %.1f ms in all\n", N,
           (double)(now_ns() - t0) / 1e6);
    cl_down(&C);
    printf("ok\n");
    return 0;
}
