// SPDX-License-Identifier: MIT
/*
 * test_cluster_mailbox_js — a mailbox across hosts kept in JetStream (docs/cluster.md,
 * "Mailboxes through JetStream"): the nats-servers run JetStream (a file store each), A's
 * bridge exports a mailbox with --jetstream, an unprivileged sender on B sends N numbered,
 * typed messages with the plain API. Mid-stream A's bridge is killed (-9) and started
 * again, then B's bridge (the importer: its mailbox is kept by ferryd, its messages in
 * flight come back to the new bridge), and B's bridge stopped with SIGTERM while B's
 * nats-server is away and started again (the same, by a clean exit: what it could not
 * store in its 2 s is left peeked), then A's and B's nats-servers are stopped for
 * 500 ms each and started again. A's receiver must get every number at least once, with its
 * type; it counts the duplicates (messages delivered by the killed bridge and not
 * acknowledged, messages B's killed bridge had published and not yet seen acknowledged,
 * acknowledgements lost with a server) and the test reports them. The sender's view
 * (the same mailbox object all along): everything sent was received from B's mailbox
 * (sent == received == N), nothing queued or lost there; what B's killed and stopped
 * bridges had in flight is counted `returned` (at least 2: each of B's faults is made with
 * B's nats-server away, the sender let past the next third of N, and at least one message
 * seen peeked by B's bridge, so what it holds cannot be acknowledged first: the faults
 * do not depend on how far the stream got). $FERRY_CLUSTER_JS_N changes N;
 * Before anything is sent, B's bridge is stopped (SIGTERM) once with its import idle: it
 * must exit 0. $FERRY_CLUSTER_JS_CLEAN=1 leaves the faults out (a throughput run), and with it
 * $FERRY_CLUSTER_JS_OFF=1 runs the same without --jetstream (the plain path, for the
 * ratio in docs/cluster.md; $FERRY_CLUSTER_JS_WIN=N passes --mailbox-window N to B's
 * bridge). Skipped (77) when not root or without `ip` / nats-server.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "clusterutil.h"

#include <ferry/ferry.h>
#include <stdatomic.h>

#define NMAX 1000000

typedef struct shared {
    int n;            /* messages to send */
    _Atomic int sent; /* how many the sender has sent */
    _Atomic int got;  /* distinct numbers A's receiver has */
    _Atomic int dups; /* deliveries of a number it had already */
    _Atomic int done; /* the receiver finished */
    int returned;     /* B's mailbox: messages B's killed bridge had peeked, given back */
    _Atomic int gate; /* the sender sends message k >= (gate + 1) * n / 3 only after the
                         test opened the gate further (B's faults: see main) */
    _Atomic unsigned char seen[NMAX];
} shared;

static shared *sh;
static cluster C;

static void receiver(void *arg)
{
    (void)arg;
    ferry_mailbox *mb;
    ferry_pub *pub; /* the bridge may open it: the opt-in to export */
    cl_mailbox_publish("org.test.jmbox", 64, 256, &mb, &pub);
    for (;;) {
        char buf[256];
        int64_t type = -1;
        /* all seen: whatever comes in the next 3 s (more than the consumer's 5 s ack wait
         * left after the last fault) is counted too */
        int all = atomic_load(&sh->got) == sh->n;
        ssize_t n = ferry_mailbox_recv(mb, 0, &type, buf, sizeof buf, all ? 3 * SEC : 90 * SEC);
        if (n == -ETIMEDOUT && all) break;
        CHECK(n > 0 && n < (ssize_t)sizeof buf);
        buf[n] = 0;
        CHECK(buf[0] != 'x'); /* a forged message (forger) is never delivered */
        int i = atoi(buf);
        CHECK(i >= 0 && i < sh->n);
        CHECK_EQ(type, i % 7 + 1);
        if (atomic_fetch_add(&sh->seen[i], 1) == 0)
            atomic_fetch_add(&sh->got, 1);
        else
            atomic_fetch_add(&sh->dups, 1);
    }
    atomic_store(&sh->done, 1);
    ferry_pub_close(pub);
    ferry_mailbox_close(mb);
}

/* B's import of the mailbox is there (its proxy mailbox published): nothing sent yet. */
static void import_seen(void *arg)
{
    (void)arg;
    ferry_mailbox_close(cl_mailbox_open("org.test.jmbox"));
}

static void sender(void *arg)
{
    (void)arg;
    CHECK_EQ(getuid(), CALLER_UID);
    ferry_mailbox *mb = cl_mailbox_open("org.test.jmbox");
    for (int i = 0; i < sh->n; i++) {
        while (i >= (atomic_load(&sh->gate) + 1) * sh->n / 3) sleep_ms(1); /* the alarm bounds it */
        char msg[32];
        int n = snprintf(msg, sizeof msg, "%d", i);
        CHECK_EQ(ferry_mailbox_send(mb, i % 7 + 1, msg, (size_t)n, 90 * SEC), 0);
        atomic_store(&sh->sent, i + 1);
    }
    int64_t end = now_ns() + 120 * SEC;
    while (atomic_load(&sh->got) < sh->n) {
        CHECK(now_ns() < end);
        sleep_ms(10);
    }
    /* the bridge releases a message once the stream acknowledged it: the last ones may
     * reach A before their acknowledgement reaches B */
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    for (int k = 0; k < 1000; k++) {
        CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
        if (st.received >= (uint64_t)sh->n) break;
        sleep_ms(10);
    }
    printf("B's mailbox: sent %llu, received %llu, returned %llu, lost %llu, queued %u\n",
           (unsigned long long)st.sent, (unsigned long long)st.received,
           (unsigned long long)st.returned, (unsigned long long)st.lost, (unsigned)st.queued);
    sh->returned = (int)st.returned;
    CHECK_EQ(st.sent, (uint64_t)sh->n);
    CHECK_EQ(st.received, (uint64_t)sh->n);
    CHECK_EQ(st.queued, 0);
    CHECK_EQ(st.lost, 0);
    ferry_mailbox_close(mb);
}

/* A raw NATS client as hostc (not in the export's users) on B stores messages into A's
 * stream as itself (the stream acknowledges them: they are there), with a valid type, with
 * bad types, and tries to publish as hostb (refused by the servers). The exporter must
 * deliver none of them: the receiver checks that no payload starting with 'x' comes. */
static void forger(void *arg)
{
    (void)arg;
    natsConnection *nc = cl_nats_hostc(&C, NULL);
    jsCtx *js = NULL;
    CHECK(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    const char *subj = "ferry.t.mq.hosta.hostc.org.test.jmbox";
    const char *types[] = {"1", "-1", "1234567890123456789012", "1x", NULL};
    for (int k = 0; types[k]; k++) {
        natsMsg *m = NULL;
        CHECK(natsMsg_Create(&m, subj, NULL, "x-forged", 8) == NATS_OK);
        CHECK(natsMsgHeader_Set(m, "Ferry-Type", types[k]) == NATS_OK);
        jsPubAck *pa = NULL;
        jsErrCode je = 0;
        int64_t end = now_ns() + 30 * SEC;
        while (js_PublishMsg(&pa, js, m, NULL, &je) != NATS_OK) { /* until A made it */
            CHECK(now_ns() < end);
            sleep_ms(100);
        }
        CHECK(pa && pa->Stream && strcmp(pa->Stream, "ferry_t_hosta") == 0);
        jsPubAck_Destroy(pa);
        natsMsg_Destroy(m);
    }
    /* as another user: the servers refuse it (permissions) */
    natsMsg *m = NULL;
    CHECK(natsMsg_Create(&m, "ferry.t.mq.hosta.hostb.org.test.jmbox", NULL, "x-spoofed", 9) ==
          NATS_OK);
    CHECK(natsMsgHeader_Set(m, "Ferry-Type", "1") == NATS_OK);
    natsConnection_PublishMsg(nc, m);
    natsMsg_Destroy(m);
    natsConnection_Flush(nc);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/* B's bridge holds at least one message peeked (taken from B's mailbox, not released):
 * sent - received - lost - queued >= 1, within 30 s. Called while B's nats-server is away,
 * so no acknowledgement can release it before the bridge is killed or stopped. */
static void peeked(void *arg)
{
    (void)arg;
    ferry_mailbox *mb = cl_mailbox_open("org.test.jmbox");
    ferry_mailbox_counters st;
    ferry_mailbox_counters_init(&st);
    int64_t end = now_ns() + 30 * SEC;
    for (;;) {
        CHECK_EQ(ferry_mailbox_stats(mb, &st), 0);
        if ((int64_t)(st.sent - st.received - st.lost - st.queued) >= 1) break;
        CHECK(now_ns() < end);
        sleep_ms(5);
    }
    ferry_mailbox_close(mb);
}

/* Stop B's nats-server, let the sender go on past the next third, and wait until B's
 * bridge holds a message peeked that it cannot get acknowledged. */
static void b_holds_some(host *B, int gate)
{
    cl_nats_stop(&C, 1);
    atomic_store(&sh->gate, gate);
    wait_ok(cl_spawn(B, &ROOT, peeked, NULL));
}

/* Wait until the receiver has at least k distinct numbers (the test's alarm bounds it). */
static void wait_got(int k)
{
    while (atomic_load(&sh->got) < k) sleep_ms(5);
}

/* The same, within 60 s (a bridge that lost messages stalls: fail soon, not at the alarm). */
static void wait_got_within(int k)
{
    int64_t end = now_ns() + 60 * SEC;
    while (atomic_load(&sh->got) < k) {
        CHECK(now_ns() < end);
        sleep_ms(5);
    }
}

int main(void)
{
    cl_js = 1;
    sh = cl_begin(&C, 280, sizeof *sh);
    const char *env = getenv("FERRY_CLUSTER_JS_N");
    sh->n = env ? atoi(env) : 3000;
    CHECK(sh->n >= 8 && sh->n <= NMAX);
    int clean = getenv("FERRY_CLUSTER_JS_CLEAN") != NULL;
    int off = clean && getenv("FERRY_CLUSTER_JS_OFF") != NULL;
    host *A = &C.h[0], *B = &C.h[1];
    const char *exp_a[] = {"--export", "org.test.jmbox=hostb", "--heartbeat-ms",
                           "200",      "--jetstream",          "org.test.*",
                           NULL};
    const char *exp_b[] = {"--import", "org.test.*", "--heartbeat-ms", "200", NULL, NULL, NULL};
    if (getenv("FERRY_CLUSTER_JS_WIN")) {
        exp_b[4] = "--mailbox-window";
        exp_b[5] = getenv("FERRY_CLUSTER_JS_WIN");
    }
    if (off) exp_a[4] = NULL; /* the plain path: puts, with their window */
    cl_bridges(&C, exp_a, exp_b);
    pid_t r = cl_spawn(A, &ROOT, receiver, NULL); /* publishes A's mailbox: exported */
    if (!clean) {
        /* B's bridge stopped (SIGTERM) with its import running and nothing published yet:
         * it exits 0 (libnats 3.4.1's pending list of a context that never published is
         * not asked for: its NULL map was a SIGSEGV) */
        wait_ok(cl_spawn(B, &CALLER_ID, import_seen, NULL));
        kill(B->bridge, SIGTERM);
        wait_ok(B->bridge);
        B->bridge = -1;
        cl_bridge_start(&C, 1, exp_b);
        printf("B's bridge stopped (SIGTERM) before its first publish, started again\n");
    }
    atomic_store(&sh->gate, clean ? 2 : 0); /* faults: B's are made at the thirds */
    pid_t s = cl_spawn(B, &CALLER_ID, sender, NULL);
    pid_t f = off ? -1 : cl_spawn(B, &ROOT, forger, NULL);
    int n = sh->n;

    int64_t t0 = now_ns();
    wait_got(n / 4);
    int64_t t1 = now_ns();
    printf("%d messages in %.1f ms: %.0f messages/s\n", n / 4, (double)(t1 - t0) / 1e6,
           (double)(n / 4) * 1e9 / (double)(t1 - t0));
    if (!clean) {
        /* B's bridge killed mid-stream: its mailbox stays (kept by ferryd) with what is
         * queued, and what it had in flight (peeked, not yet acknowledged) comes back to its
         * successor; the sender goes on into the same mailbox meanwhile */
        b_holds_some(B, 1);
        cl_kill(&B->bridge);
        int at = atomic_load(&sh->got), sent = atomic_load(&sh->sent);
        cl_nats_start(&C, 1);
        sleep_ms(300);
        cl_bridge_start(&C, 1, exp_b);
        printf("B's bridge killed (-9) at message %d (%d sent), started again\n", at, sent);
        /* Messages through the new bridge before its nats-server goes away again below:
         * got was already n / 3 at the kill (the sender waited at the gate), so waiting for
         * n / 3 waited for nothing, and a bridge still starting when its server was stopped
         * peeked nothing within b_holds_some's 30 s (failed once in a clean-clone run) */
        wait_got_within(at + n / 12);
        /* B's bridge stopped (SIGTERM) mid-stream while B's nats-server is away, so that
         * its publishes in flight cannot be acknowledged in the 2 s it gives them: it exits
         * cleanly and leaves the name kept and those messages peeked (given back to its
         * successor, as after -9) */
        b_holds_some(B, 2);
        kill(B->bridge, SIGTERM);
        wait_ok(B->bridge);
        B->bridge = -1;
        at = atomic_load(&sh->got);
        sent = atomic_load(&sh->sent);
        cl_nats_start(&C, 1);
        cl_bridge_start(&C, 1, exp_b);
        printf("B's bridge stopped (SIGTERM, its nats-server away) at message %d (%d sent), "
               "started again\n",
               at, sent);
        wait_got_within(5 * n / 12);
        /* A's bridge killed mid-stream: what it delivered without acknowledging comes again
         * (after the consumer's ack wait), nothing is lost; B goes on storing meanwhile */
        cl_kill(&A->bridge);
        at = atomic_load(&sh->got);
        sent = atomic_load(&sh->sent);
        sleep_ms(300);
        cl_bridge_start(&C, 0, exp_a);
        printf("A's bridge killed (-9) at message %d (%d sent), started again\n", at, sent);
        wait_got(n / 2);
        for (int i = 0; i < 2; i++) { /* A's nats-server, then B's, away for 500 ms */
            cl_nats_stop(&C, i);
            at = atomic_load(&sh->got);
            sleep_ms(500);
            cl_nats_start(&C, i);
            printf("%c's nats-server stopped at message %d, restarted\n", 'A' + i, at);
            wait_got(n / 2 + (i + 1) * n / 6);
        }
    }
    wait_ok(s);
    int64_t t2 = now_ns();
    if (f > 0) wait_ok(f);
    wait_ok(r);
    int dups = atomic_load(&sh->dups);
    CHECK_EQ(atomic_load(&sh->got), n); /* every number, at least once */
    for (int i = 0; i < n; i++) CHECK(atomic_load(&sh->seen[i]) >= 1);
    printf("%d messages delivered at least once in %.1f ms (after the first %d: %.0f messages/s),"
           " %d duplicates\n",
           n, (double)(t2 - t0) / 1e6, n / 4, (double)(n - n / 4) * 1e9 / (double)(t2 - t1), dups);
    if (clean) CHECK_EQ(dups, 0); /* without faults nothing is delivered twice */
    if (!clean) {
        printf("B's bridge's messages in flight given back: %d\n", sh->returned);
        /* the killed bridge and the SIGTERM'd one each held at least one message peeked
         * (b_holds_some), which came back: every message was received, so those were too */
        CHECK(sh->returned >= 2);
    }
    cl_down(&C);
    printf("ok\n");
    return 0;
}
