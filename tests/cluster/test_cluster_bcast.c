// SPDX-License-Identifier: MIT
/*
 * test_cluster_bcast — a broadcast across hosts (docs/cluster.md): a publisher on host A,
 * exported; two unprivileged subscribers on host B with the plain API
 * (ferry_bcast_open / ferry_bcast_subscribe): a lossless one gets all N messages in
 * order with their types; a slow drop-oldest one gets an increasing subset, and what it
 * got plus ferry_sub_lost is exactly N. Halfway, B's nats-server is stopped until A's
 * bridge drops B's lease (the publisher sees its subscription go), GAP messages are
 * published that B therefore misses, and the server is started again: B's bridge records
 * the gap (ferry_bcast_skip) and both subscribers count it in ferry_sub_lost exactly —
 * the lossless one's lost is exactly the numbers missing from what it got (at least GAP),
 * and so is the drop-oldest one's. When the publisher ends and leaves, both get -EPIPE
 * after their last message.
 * Then a second stream (org.test.bcw) of T + F numbered messages to a lossless subscriber
 * on B, sent with A's bridge's window (--bcast-window: $FERRY_TEST_BCAST_WINDOW, default
 * 32): its rate over the first T is printed (messages/s); after T + F/3, B's nats-server
 * is stopped and started again within the lease (--dead-after 15): every message arrives
 * once, in order, and the subscriber's lost count stays 0. Skipped (77) when not root or
 * without `ip` / nats-server.
 * Last, B's side of the window against a raw cnats client as "hostc" exporting
 * org.test.raw (heartbeats, probes answered): a message ahead of a missing one is answered
 * EAGAIN and not published; a duplicate 0 and not published again; a Ferry-Base above
 * Ferry-Seq, 0 or not a number gets no answer; numbers below Ferry-Base that B lacks are a
 * gap counted exactly in ferry_sub_lost.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "clusterutil.h"

#include <ferry/ferry.h>
#include <stdatomic.h>

#define N   3000
#define GAP 500  /* published while B's lease has lapsed */
#define T   5000 /* the second stream: timed */
#define F   3000 /* then B's nats-server restarted within the lease */

typedef struct shared {
    _Atomic int subs_ready;
    _Atomic int all_got;
    _Atomic int phase; /* 1: stop B's nats-server; 2: start it again */
    _Atomic uint64_t lossless_lost;
    _Atomic uint64_t slow_got, slow_lost;
    _Atomic int w_ready;  /* the second stream's subscriber */
    _Atomic int w_phase;  /* 1: restart B's nats-server; 2: done */
    _Atomic int64_t w_ns; /* the first T messages took */
    _Atomic int w_got;    /* messages the second stream's subscriber got */
} shared;

static shared *sh;
static cluster C;

static void publisher(void *arg)
{
    (void)arg;
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.max_msg = 256;
    ferry_bcast *bc;
    CHECK_EQ(ferry_bcast_create(&o, &bc), 0);
    ferry_policy pol;
    cl_bridge_policy(&pol);
    ferry_pub *pub;
    CHECK_EQ(ferry_publish("org.test.bc", ferry_bcast_fd(bc), FERRY_OBJ_BCAST, &pol, &pub, 5 * SEC),
             0);
    int64_t end = now_ns() + 30 * SEC;
    while (atomic_load(&sh->subs_ready) < 2 || ferry_bcast_subscribers(bc) < 1) {
        CHECK(now_ns() < end); /* B's two subscribers, and A's bridge for them */
        sleep_ms(10);
    }
    for (int i = 0; i < N; i++) {
        if (i == N / 2) {
            /* B's nats-server goes away; A's bridge drops B's lease (its subscription
             * here goes: B was its only remote subscriber) */
            atomic_store(&sh->phase, 1);
            end = now_ns() + 30 * SEC;
            while (ferry_bcast_subscribers(bc) > 0) {
                CHECK(now_ns() < end);
                sleep_ms(10);
            }
        }
        if (i == N / 2 + GAP) { /* B comes back and subscribes again */
            atomic_store(&sh->phase, 2);
            end = now_ns() + 30 * SEC;
            while (ferry_bcast_subscribers(bc) < 1) {
                CHECK(now_ns() < end);
                sleep_ms(10);
            }
        }
        char msg[32];
        int n = snprintf(msg, sizeof msg, "%d", i);
        CHECK_EQ(ferry_bcast_publish(bc, i % 5 + 1, msg, (size_t)n, 60 * SEC), 0);
    }
    end = now_ns() + 60 * SEC;
    while (!atomic_load(&sh->all_got)) {
        CHECK(now_ns() < end);
        sleep_ms(10);
    }
    ferry_pub_close(pub);
    ferry_bcast_close(bc); /* the end of the stream */
}

static ferry_bcast *open_remote(void)
{
    ferry_bcast *bc = NULL;
    int64_t end = now_ns() + 20 * SEC;
    int rc;
    while ((rc = ferry_bcast_open("org.test.bc", &bc, 2 * SEC)) != 0) {
        CHECK_EQ(rc, -ENOENT);
        CHECK(now_ns() < end);
        sleep_ms(20);
    }
    return bc;
}

static void sub_lossless(void *arg)
{
    (void)arg;
    CHECK_EQ(getuid(), CALLER_UID);
    ferry_bcast *bc = open_remote();
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(bc, 0, &s), 0);
    atomic_fetch_add(&sh->subs_ready, 1);
    uint64_t got = 0, missing = 0;
    for (int last = -1; last < N - 1;) {
        char buf[64];
        int64_t type = -1;
        ssize_t n = ferry_sub_recv(s, buf, sizeof buf - 1, &type, 30 * SEC);
        CHECK(n > 0);
        buf[n] = 0;
        int v = atoi(buf);
        CHECK(v > last && v < N);
        CHECK_EQ(type, v % 5 + 1);
        /* in order; what is missing went by while the lease had lapsed, and the lost
         * count says so by the time the next message is taken */
        if (v != last + 1) CHECK(v > N / 2 && last < N / 2 + GAP);
        missing += (uint64_t)(v - last - 1);
        CHECK_EQ(ferry_sub_lost(s), missing);
        last = v;
        got++;
    }
    atomic_store(&sh->lossless_lost, missing);
    atomic_store(&sh->all_got, 1);
    char buf[64];
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, 30 * SEC), -EPIPE);
    CHECK(missing >= GAP);
    CHECK_EQ(got + ferry_sub_lost(s), N); /* exact */
    ferry_sub_close(s);
    ferry_bcast_close(bc);
}

static void sub_slow(void *arg)
{
    (void)arg;
    ferry_bcast *bc = open_remote();
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(bc, FERRY_SUB_DROP_OLDEST, &s), 0);
    atomic_fetch_add(&sh->subs_ready, 1);
    uint64_t got = 0, missing = 0;
    int last = -1;
    for (;;) {
        char buf[64];
        ssize_t n = ferry_sub_recv(s, buf, sizeof buf - 1, NULL, 60 * SEC);
        if (n == -EPIPE) break;
        CHECK(n > 0);
        buf[n] = 0;
        int v = atoi(buf);
        CHECK(v > last && v < N); /* increasing: a subset, in order */
        missing += (uint64_t)(v - last - 1);
        CHECK_EQ(ferry_sub_lost(s), missing); /* drops and the gap, exactly */
        last = v;
        if (++got % 20 == 0) sleep_ms(20);
    }
    uint64_t lost = ferry_sub_lost(s);
    CHECK_EQ(last, N - 1);
    atomic_store(&sh->slow_got, got);
    atomic_store(&sh->slow_lost, lost);
    CHECK_EQ(got + lost, N); /* exact */
    ferry_sub_close(s);
    ferry_bcast_close(bc);
}

/* The second stream: T + F messages, lossless, B's nats-server restarted midway. */
static void publisher_w(void *arg)
{
    (void)arg;
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    o.max_msg = 256;
    ferry_bcast *bc;
    CHECK_EQ(ferry_bcast_create(&o, &bc), 0);
    ferry_policy pol;
    cl_bridge_policy(&pol);
    ferry_pub *pub;
    CHECK_EQ(
        ferry_publish("org.test.bcw", ferry_bcast_fd(bc), FERRY_OBJ_BCAST, &pol, &pub, 5 * SEC), 0);
    int64_t end = now_ns() + 30 * SEC;
    while (!atomic_load(&sh->w_ready) || ferry_bcast_subscribers(bc) < 1) {
        CHECK(now_ns() < end);
        sleep_ms(10);
    }
    for (int i = 0; i < T + F; i++) {
        if (i == T + F / 3) atomic_store(&sh->w_phase, 1);
        char msg[32];
        int n = snprintf(msg, sizeof msg, "%d", i);
        CHECK_EQ(ferry_bcast_publish(bc, i % 7 + 1, msg, (size_t)n, 60 * SEC), 0);
    }
    end = now_ns() + 60 * SEC;
    while (atomic_load(&sh->w_phase) < 2) {
        CHECK(now_ns() < end);
        sleep_ms(10);
    }
    ferry_pub_close(pub);
    ferry_bcast_close(bc);
}

static void sub_w(void *arg)
{
    (void)arg;
    ferry_bcast *bc = NULL;
    int64_t end = now_ns() + 20 * SEC, t0 = 0;
    int rc;
    while ((rc = ferry_bcast_open("org.test.bcw", &bc, 2 * SEC)) != 0) {
        CHECK_EQ(rc, -ENOENT);
        CHECK(now_ns() < end);
        sleep_ms(20);
    }
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(bc, 0, &s), 0);
    atomic_store(&sh->w_ready, 1);
    for (int i = 0; i < T + F; i++) {
        char buf[64];
        int64_t type = -1;
        ssize_t n = ferry_sub_recv(s, buf, sizeof buf - 1, &type, 30 * SEC);
        CHECK(n > 0);
        buf[n] = 0;
        CHECK_EQ(atoi(buf), i); /* every one, once, in order */
        CHECK_EQ(type, i % 7 + 1);
        CHECK_EQ(ferry_sub_lost(s), 0);
        if (i == 0) t0 = now_ns();
        if (i == T - 1) atomic_store(&sh->w_ns, now_ns() - t0);
        atomic_store(&sh->w_got, i + 1);
    }
    atomic_store(&sh->w_phase, 2);
    char buf[64];
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, 30 * SEC), -EPIPE);
    CHECK_EQ(ferry_sub_lost(s), 0);
    ferry_sub_close(s);
    ferry_bcast_close(bc);
}

/* B: a raw exporter of org.test.raw as hostc, and a lossless subscriber to it. */
static natsConnection *raw_nc;

static void raw_hb(void)
{
    const char *hb = "ferry-hb 1 0123456789abcdef w\nb org.test.raw\n";
    CHECK(natsConnection_Publish(raw_nc, "ferry.t.hb.hostc", hb, (int)strlen(hb)) == NATS_OK);
}

static void raw_on_req(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)sub;
    (void)closure;
    const char *reply = natsMsg_GetReply(m);
    if (reply && *reply) { /* probes: the name is here */
        natsMsg *r = NULL;
        if (natsMsg_Create(&r, reply, NULL, NULL, 0) == NATS_OK) {
            natsMsgHeader_Set(r, "Ferry-Status", "0");
            natsConnection_PublishMsg(nc, r);
            natsMsg_Destroy(r);
        }
    }
    natsMsg_Destroy(m);
}

/* One bput of org.test.raw; base NULL: left out. The answer's Ferry-Status into st ("":
 * no answer within 500 ms). */
static void raw_bput(const char *seq, const char *base, const char *data, char st[16])
{
    raw_hb();
    natsMsg *m = NULL, *r = NULL;
    CHECK(natsMsg_Create(&m, "ferry.t.rpc.hostb.hostc.org.test.raw", NULL, data,
                         (int)strlen(data)) == NATS_OK);
    CHECK(natsMsgHeader_Set(m, "Ferry-Op", "bput") == NATS_OK);
    CHECK(natsMsgHeader_Set(m, "Ferry-Type", "3") == NATS_OK);
    CHECK(natsMsgHeader_Set(m, "Ferry-Seq", seq) == NATS_OK);
    CHECK(natsMsgHeader_Set(m, "Ferry-Boot", "0123456789abcdef") == NATS_OK);
    if (base) CHECK(natsMsgHeader_Set(m, "Ferry-Base", base) == NATS_OK);
    natsStatus s = natsConnection_RequestMsg(&r, raw_nc, m, 500);
    natsMsg_Destroy(m);
    st[0] = 0;
    if (s != NATS_OK) return;
    const char *v = NULL;
    if (natsMsgHeader_Get(r, "Ferry-Status", &v) == NATS_OK && v) snprintf(st, 16, "%s", v);
    natsMsg_Destroy(r);
}

static void raw_expect(ferry_sub *s, const char *data, uint64_t lost)
{
    char buf[64];
    int64_t type = -1;
    ssize_t n = ferry_sub_recv(s, buf, sizeof buf - 1, &type, 5 * SEC);
    CHECK_EQ(n, (ssize_t)strlen(data));
    buf[n] = 0;
    CHECK(strcmp(buf, data) == 0);
    CHECK_EQ(type, 3);
    CHECK_EQ(ferry_sub_lost(s), lost);
}

static void raw_side(void *arg)
{
    (void)arg;
    raw_nc = cl_nats_hostc(&C, NULL);
    natsSubscription *sub = NULL;
    CHECK(natsConnection_Subscribe(&sub, raw_nc, "ferry.t.rpc.hostc.*.>", raw_on_req, NULL) ==
          NATS_OK);
    ferry_bcast *bc = NULL;
    int64_t end = now_ns() + 20 * SEC;
    int rc;
    while ((rc = ferry_bcast_open("org.test.raw", &bc, 2 * SEC)) != 0) {
        CHECK_EQ(rc, -ENOENT);
        CHECK(now_ns() < end);
        raw_hb();
        sleep_ms(100);
    }
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(bc, 0, &s), 0);
    char st[16], buf[64];
    raw_bput("5", "3", "m5", st); /* 3 missing: not published ahead of it */
    CHECK(strcmp(st, "EAGAIN") == 0);
    raw_bput("3", "3", "m3", st); /* the first: nothing before it counted */
    CHECK(strcmp(st, "0") == 0);
    raw_expect(s, "m3", 0);
    raw_bput("5", "4", "m5", st); /* 4 missing */
    CHECK(strcmp(st, "EAGAIN") == 0);
    raw_bput("4", "4", "m4", st);
    CHECK(strcmp(st, "0") == 0);
    raw_expect(s, "m4", 0);
    raw_bput("5", "4", "m5", st);
    CHECK(strcmp(st, "0") == 0);
    raw_expect(s, "m5", 0);
    raw_bput("5", "5", "m5", st); /* published already: not again */
    CHECK(strcmp(st, "0") == 0);
    raw_bput("7", "8", "m7", st); /* malformed: no answer */
    CHECK(strcmp(st, "") == 0);
    raw_bput("7", "0", "m7", st);
    CHECK(strcmp(st, "") == 0);
    raw_bput("7", "x", "m7", st);
    CHECK(strcmp(st, "") == 0);
    raw_bput("9", "8", "m9", st); /* 6, 7 never come (a gap), 8 missing */
    CHECK(strcmp(st, "EAGAIN") == 0);
    raw_bput("8", "8", "m8", st);
    CHECK(strcmp(st, "0") == 0);
    raw_expect(s, "m8", 2); /* the gap, recorded once */
    raw_bput("9", "8", "m9", st);
    CHECK(strcmp(st, "0") == 0);
    raw_expect(s, "m9", 2);
    raw_bput("10", NULL, "m10", st); /* no base (an older exporter): one at a time */
    CHECK(strcmp(st, "0") == 0);
    raw_expect(s, "m10", 2);
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, NULL, FERRY_NOW), -EAGAIN); /* nothing else */
    ferry_sub_close(s);
    ferry_bcast_close(bc);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(raw_nc);
}

int main(void)
{
    sh = cl_begin(&C, 170, sizeof *sh);
    host *A = &C.h[0], *B = &C.h[1];
    const char *win = getenv("FERRY_TEST_BCAST_WINDOW");
    const char *exp_a[] = {
        "--export", "org.test.bc=hostb", "--export", "org.test.bcw=hostb", "--heartbeat-ms",
        "200",      "--dead-after",      "15",       "--bcast-window",     win ? win : "32",
        NULL};
    const char *exp_b[] = {"--import",
                           "org.test.raw=hostc",
                           "--import",
                           "org.test.*=hosta",
                           "--heartbeat-ms",
                           "200",
                           "--dead-after",
                           "15",
                           NULL};
    cl_bridges(&C, exp_a, exp_b);
    int64_t t0 = now_ns();
    pid_t p = cl_spawn(A, &ROOT, publisher, NULL);
    pid_t s1 = cl_spawn(B, &CALLER_ID, sub_lossless, NULL);
    pid_t s2 = cl_spawn(B, &CALLER_ID, sub_slow, NULL);
    while (atomic_load(&sh->phase) < 1) sleep_ms(5);
    cl_nats_stop(&C, 1);
    int64_t t1 = now_ns();
    while (atomic_load(&sh->phase) < 2) sleep_ms(5);
    printf("B's nats-server stopped; A's bridge dropped B's lease after %.0f ms\n",
           (double)(now_ns() - t1) / 1e6);
    cl_nats_start(&C, 1);
    wait_ok(s1);
    wait_ok(s2);
    wait_ok(p);
    printf("%d messages across hosts: the lossless subscriber got all in order but the %llu "
           "missed in the lapse (lost, exactly); the slow drop-oldest one got %llu and lost "
           "%llu (exactly %d); %.1f ms in all\n",
           N, (unsigned long long)atomic_load(&sh->lossless_lost),
           (unsigned long long)atomic_load(&sh->slow_got),
           (unsigned long long)atomic_load(&sh->slow_lost), N, (double)(now_ns() - t0) / 1e6);
    /* the second stream */
    p = cl_spawn(A, &ROOT, publisher_w, NULL);
    s1 = cl_spawn(B, &CALLER_ID, sub_w, NULL);
    while (atomic_load(&sh->w_phase) < 1) sleep_ms(5);
    double rate = T / ((double)atomic_load(&sh->w_ns) / 1e9);
    cl_nats_stop(&C, 1);
    int got_at_stop = atomic_load(&sh->w_got);
    CHECK(got_at_stop < T + F); /* the fault hits the stream midway */
    sleep_ms(100);
    cl_nats_start(&C, 1);
    wait_ok(s1);
    wait_ok(p);
    printf("--bcast-window %s: %d messages to a remote lossless subscriber at %.0f messages/s; "
           "then %d more, B's nats-server restarted when %d had come: all once, in order, none "
           "lost\n",
           win ? win : "32", T, rate, F, got_at_stop);
    wait_ok(cl_spawn(B, &CALLER_ID, raw_side, NULL));
    printf("B against a raw exporter: EAGAIN ahead of a missing number, duplicates and "
           "malformed bases not published, a gap of 2 counted once\n");
    cl_down(&C);
    printf("ok\n");
    return 0;
}
