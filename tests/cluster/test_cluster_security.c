// SPDX-License-Identifier: MIT
/*
 * test_cluster_security — what reaches ferry-bridge from NATS is hostile (docs/cluster.md):
 * a raw cnats client on host B, authenticated as the third user "hostc", talks to host
 * A's bridge directly.
 *  - its calls are checked against the export policy by its authenticated name: a name
 *    exported to hostb only is EACCES, one exported to hostc works, an unknown or invalid
 *    name is ENOENT, an oversized payload EMSGSIZE, a request without Ferry-Op unanswered;
 *  - it cannot claim another identity (a request on hostb's caller subject), read another
 *    user's replies or forge a reply to B's bridge: the NATS servers refuse (permissions
 *    violation), so nothing reaches a bridge;
 *  - the remote server saw exactly the calls that were let through;
 *  - kill -9 of A's bridge: B drops A's names once the heartbeats lapse (time printed).
 * Skipped (77) when not root or without `ip` / nats-server.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "clusterutil.h"

#include <ferry/ferry.h>
#include <stdatomic.h>

static cluster C;
static void server_child(void *arg)
{
    cl_serve_forever(arg, cl_reverse, 2);
}

static _Atomic int denied; /* permission violations the server reported to us */

static void on_err(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    if (err == NATS_NOT_PERMITTED) atomic_fetch_add(&denied, 1);
}

/* A request as hostc: returns the NATS status; *status the Ferry-Status header ("" if
 * none), *reply the reply's data (up to cap). */
static natsStatus req(natsConnection *nc, const char *subj, const char *op, const void *data,
                      int len, char *status, char *reply, size_t cap, int *rlen)
{
    natsMsg *m = NULL, *r = NULL;
    CHECK(natsMsg_Create(&m, subj, NULL, data, len) == NATS_OK);
    if (op) CHECK(natsMsgHeader_Set(m, "Ferry-Op", op) == NATS_OK);
    natsStatus s = natsConnection_RequestMsg(&r, nc, m, 1000);
    natsMsg_Destroy(m);
    status[0] = 0;
    if (s == NATS_OK) {
        const char *v = NULL;
        if (natsMsgHeader_Get(r, "Ferry-Status", &v) == NATS_OK && v) snprintf(status, 16, "%s", v);
        int n = natsMsg_GetDataLength(r);
        if (rlen) *rlen = n;
        if (reply && n >= 0 && (size_t)n <= cap) memcpy(reply, natsMsg_GetData(r), (size_t)n);
        natsMsg_Destroy(r);
    }
    return s;
}

static void hostile(void *arg)
{
    (void)arg;
    natsConnection *nc = cl_nats_hostc(&C, on_err);
    char st[16], buf[128];
    int n = 0;

    /* a name exported to hostc: works (the route carries it to A) */
    int64_t end = now_ns() + 10 * SEC;
    natsStatus s;
    while ((s = req(nc, "ferry.t.rpc.hosta.hostc.org.test.secret", "call", "abc", 3, st, buf,
                    sizeof buf, &n)) != NATS_OK) {
        CHECK(now_ns() < end); /* until the route and A's subscription are there */
        sleep_ms(50);
    }
    CHECK(strcmp(st, "0") == 0 && n == 3 && memcmp(buf, "cba", 3) == 0);
    CHECK_EQ(
        req(nc, "ferry.t.rpc.hosta.hostc.org.test.secret", "probe", NULL, 0, st, NULL, 0, NULL),
        NATS_OK);
    CHECK(strcmp(st, "0") == 0);

    /* exported to hostb only: refused, by the identity NATS authenticated */
    CHECK_EQ(req(nc, "ferry.t.rpc.hosta.hostc.org.test.echo", "call", "x", 1, st, NULL, 0, NULL),
             NATS_OK);
    CHECK(strcmp(st, "EACCES") == 0);
    CHECK_EQ(req(nc, "ferry.t.rpc.hosta.hostc.org.test.echo", "probe", NULL, 0, st, NULL, 0, NULL),
             NATS_OK);
    CHECK(strcmp(st, "EACCES") == 0);

    /* unknown names, names ferry does not accept: ENOENT */
    CHECK_EQ(req(nc, "ferry.t.rpc.hosta.hostc.org.test.nothing", "call", "x", 1, st, NULL, 0, NULL),
             NATS_OK);
    CHECK(strcmp(st, "ENOENT") == 0);
    char longname[200];
    snprintf(longname, sizeof longname, "ferry.t.rpc.hosta.hostc.org.%070d", 7);
    CHECK_EQ(req(nc, longname, "call", "x", 1, st, NULL, 0, NULL), NATS_OK);
    CHECK(strcmp(st, "ENOENT") == 0);
    CHECK_EQ(req(nc, "ferry.t.rpc.hosta.hostc.org.test.a$b", "call", "x", 1, st, NULL, 0, NULL),
             NATS_OK);
    CHECK(strcmp(st, "ENOENT") == 0);

    /* too large for the bridge's max-msg (64 KiB): EMSGSIZE, nothing reaches the server */
    static char big[70000];
    CHECK_EQ(req(nc, "ferry.t.rpc.hosta.hostc.org.test.secret", "call", big, sizeof big, st, NULL,
                 0, NULL),
             NATS_OK);
    CHECK(strcmp(st, "EMSGSIZE") == 0);

    /* no Ferry-Op, or an unknown one: not answered */
    CHECK_EQ(req(nc, "ferry.t.rpc.hosta.hostc.org.test.secret", NULL, "x", 1, st, NULL, 0, NULL),
             NATS_TIMEOUT);
    CHECK_EQ(req(nc, "ferry.t.rpc.hosta.hostc.org.test.secret", "exec", "x", 1, st, NULL, 0, NULL),
             NATS_TIMEOUT);

    /* the mailbox, broadcast and channel operations, forged or malformed: nothing reaches
     * a server (the counts below), no bridge falls over (both must stop cleanly) */
    const char *hdrs[][8] = {
        {"Ferry-Op", "put", "Ferry-Seq", "1", "Ferry-Type", "1", "Ferry-Boot", "zz"},
        {"Ferry-Op", "put", "Ferry-Seq", "-1", "Ferry-Type", "1", "Ferry-Boot", "0123456789abcdef"},
        {"Ferry-Op", "copen", "Ferry-Conn", "0-1", "Ferry-Seq", "0", NULL, NULL},
        {"Ferry-Op", "cdata", "Ferry-Conn", "0123-9", "Ferry-Seq", "1", "Ferry-Type", "1"},
        {"Ferry-Op", "cack", "Ferry-Conn", "../../x", "Ferry-Seq", "99999", NULL, NULL},
        {"Ferry-Op", "cclose", "Ferry-Conn", "", "Ferry-Seq", "1", NULL, NULL},
        {"Ferry-Op", "sub", NULL, NULL, NULL, NULL, NULL, NULL},
        {"Ferry-Op", "bput", "Ferry-Seq", "1", "Ferry-Type", "1", "Ferry-Boot", "0123456789abcdef"},
        {"Ferry-Op", "cdata", "Ferry-Conn", "1-1", "Ferry-Seq", "99999999999999999999",
         "Ferry-Type", "1"},
    };
    const char *targets[] = {"ferry.t.rpc.hosta.hostc.org.test.echo",
                             "ferry.t.rpc.hosta.hostc.org.test.secret",
                             "ferry.t.rpc.hostb.hostc.org.test.echo"};
    for (size_t t = 0; t < 3; t++)
        for (size_t h = 0; h < sizeof hdrs / sizeof hdrs[0]; h++) {
            natsMsg *m = NULL;
            CHECK(natsMsg_Create(&m, targets[t], "ferry.t.reply.hostc.x.1", "payload", 7) ==
                  NATS_OK);
            for (int k = 0; k < 8 && hdrs[h][k]; k += 2)
                CHECK(natsMsgHeader_Set(m, hdrs[h][k], hdrs[h][k + 1]) == NATS_OK);
            CHECK(natsConnection_PublishMsg(nc, m) == NATS_OK);
            natsMsg_Destroy(m);
        }
    natsConnection_Flush(nc);
    sleep_ms(300);
    CHECK_EQ(atomic_load(&denied), 0);

    /* claiming hostb's identity: the NATS server refuses the publish */
    CHECK_EQ(atomic_load(&denied), 0);
    CHECK_EQ(req(nc, "ferry.t.rpc.hosta.hostb.org.test.echo", "call", "x", 1, st, NULL, 0, NULL),
             NATS_TIMEOUT);
    CHECK(atomic_load(&denied) >= 1);
    /* reading hostb's replies, forging one to B's bridge, serving as hosta: refused */
    int before = atomic_load(&denied);
    natsSubscription *sub = NULL;
    natsConnection_SubscribeSync(&sub, nc, "ferry.t.reply.hostb.>");
    natsConnection_Flush(nc);
    natsConnection_Publish(nc, "ferry.t.reply.hostb.0000000000000000.1", "forged", 6);
    natsSubscription *sub2 = NULL;
    natsConnection_SubscribeSync(&sub2, nc, "ferry.t.rpc.hosta.*.>");
    natsConnection_Flush(nc);
    for (int i = 0; i < 100 && atomic_load(&denied) < before + 3; i++) sleep_ms(10);
    CHECK_EQ(atomic_load(&denied), before + 3);

    /* heartbeats: hostc may announce only as itself; what it announces under org.test.*
     * is not imported (B imports org.test.* from hosta only); under org.open.* (from
     * anyone) B probes hostc, nobody answers, nothing is registered; junk lines and an
     * oversized heartbeat are ignored */
    natsConnection_Publish(nc, "ferry.t.hb.hosta", "ferry-hb 1 0123456789abcdef\n", 28);
    natsConnection_Flush(nc);
    for (int i = 0; i < 100 && atomic_load(&denied) < before + 4; i++) sleep_ms(10);
    CHECK_EQ(atomic_load(&denied), before + 4);
    static char hb[80000];
    int hn = snprintf(hb, sizeof hb,
                      "ferry-hb 1 0123456789abcdef\ns org.test.squat\ns org.open.x\nm org.open.m\n"
                      "s org.test.echo\nx org.open.y\ns bad..name\ns org.open.%0300d\n\n\n",
                      1);
    for (int i = 0; i < 2000; i++) hn += snprintf(hb + hn, sizeof hb - (size_t)hn, "s j.%d\n", i);
    CHECK_EQ(natsConnection_Publish(nc, "ferry.t.hb.hostc", hb, hn), NATS_OK);
    memset(hb, 'a', sizeof hb);
    memcpy(hb, "ferry-hb 1 0123456789abcdef\ns org.open.big\n", 42);
    CHECK_EQ(natsConnection_Publish(nc, "ferry.t.hb.hostc", hb, sizeof hb), NATS_OK);
    natsConnection_Flush(nc);
    sleep_ms(2500); /* past the probe's 2 s */
    const char *absent[] = {"org.test.squat", "org.open.x", "org.open.m", "org.open.y",
                            "org.open.big"};
    ferry_name_info info;
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        CHECK_EQ(ferry_lookup(absent[i], &info, 2 * SEC), -ENOENT);
    CHECK_EQ(ferry_lookup("org.test.echo", &info, 2 * SEC), 0); /* still hosta's */
    natsSubscription_Destroy(sub);
    natsSubscription_Destroy(sub2);
    natsConnection_Destroy(nc);
    nats_CloseAndWait(2000);
}

/* The secret server saw exactly the one call let through ("abc"), the echo server none. */
static void counts(void *arg)
{
    (void)arg;
    const char *names[2] = {"org.test.secret", "org.test.echo"};
    const uint64_t want[2] = {1, 0};
    for (int i = 0; i < 2; i++) {
        ferry_rpc_client *c;
        CHECK_EQ(ferry_rpc_connect(names[i], FERRY_KIND_UNIX, NULL, &c, 5 * SEC), 0);
        uint64_t v = 99;
        ferry_msg q = {.data = "count", .len = 5}, r = {.data = &v, .cap = sizeof v};
        CHECK_EQ(ferry_call(c, &q, &r, 5 * SEC), sizeof v);
        CHECK_EQ(v, want[i]);
        ferry_rpc_client_close(c);
    }
}

static _Atomic int64_t *gone_ns;

static void wait_gone(void *arg)
{
    (void)arg;
    int64_t t0 = now_ns();
    for (;;) {
        ferry_name_info info;
        int rc = ferry_lookup("org.test.echo", &info, 2 * SEC);
        if (rc == -ENOENT) break;
        CHECK_EQ(rc, 0);
        CHECK(now_ns() - t0 < 10 * SEC);
        sleep_ms(5);
    }
    atomic_store(gone_ns, now_ns());
}

static void wait_present(void *arg)
{
    CHECK_EQ(cl_wait_name(arg, 1, 20 * SEC), 0);
}

int main(void)
{
    gone_ns = cl_begin(&C, 170, sizeof *gone_ns);
    host *A = &C.h[0], *B = &C.h[1];
    const char *exp_a[] = {"--export",
                           "org.test.echo=hostb",
                           "--export",
                           "org.test.secret=hostc",
                           "--heartbeat-ms",
                           "200",
                           "--dead-after",
                           "5",
                           NULL};
    const char *exp_b[] = {
        "--import", "org.test.*=hosta", "--import", "org.open.*", "--heartbeat-ms", "200", NULL};
    cl_bridges(&C, exp_a, exp_b);
    pid_t s1 = cl_spawn(A, &ROOT, server_child, "org.test.echo");
    pid_t s2 = cl_spawn(A, &ROOT, server_child, "org.test.secret");
    wait_ok(cl_spawn(B, &CALLER_ID, wait_present, "org.test.echo"));

    wait_ok(cl_spawn(B, &ROOT, hostile, NULL));
    wait_ok(cl_spawn(A, &ROOT, counts, NULL));

    /* A's bridge dies: B's names go once its heartbeats lapse (5 x 200 ms) */
    int64_t t_kill = now_ns();
    cl_kill(&A->bridge);
    wait_ok(cl_spawn(B, &CALLER_ID, wait_gone, NULL));
    int64_t lapse = atomic_load(gone_ns) - t_kill;
    printf("A's bridge killed: its names gone on B after %.1f ms (heartbeat 200 ms x 5)\n",
           (double)lapse / 1e6);
    CHECK(lapse >= 700 * MS); /* not before the heartbeats lapsed... */
    CHECK(lapse < 5 * SEC);   /* ...and bounded */

    cl_kill(&s1);
    cl_kill(&s2);
    cl_down(&C);
    printf("ok\n");
    return 0;
}
