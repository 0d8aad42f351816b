// SPDX-License-Identifier: MIT
/*
 * test_cluster_mailbox_pull — the exporter's side of mailbox pulls (--recv, docs/cluster.md)
 * against a raw cnats client on host B, authenticated as "hostc", that pulls from a
 * mailbox on host A exported to it:
 *  - a pull gets the oldest message, with Ferry-Type, Ferry-Seq and Ferry-Boot; pulled
 *    again without an acknowledgement, the same message (held) comes again; so it does
 *    after an acknowledgement of a forged incarnation or a malformed number;
 *  - an acknowledgement of the right incarnation releases it and the pull gets the next;
 *    Ferry-Want: 0 only acknowledges;
 *  - a message held for a puller that goes silent is given back into A's mailbox after
 *    2 x dead-after heartbeats (not before), where A's receiver gets it, once; the
 *    acknowledged ones never come back;
 *  - an empty mailbox is EAGAIN; a name not exported is ENOENT.
 * Skipped (77) when not root or without `ip` / nats-server.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "clusterutil.h"

#include <ferry/ferry.h>
#include <stdatomic.h>

typedef struct shared {
    _Atomic int phase;          /* 1: the puller went silent; 2: A checked; 3: done */
    _Atomic int64_t silent_ns;  /* when it went silent */
    _Atomic int64_t back_after; /* ns from silence to the given-back message at A */
} shared;

static shared *sh;
static cluster C;

typedef struct pulled {
    char st[16];
    int64_t type;
    uint64_t seq;
    char boot[20];
    char data[64];
    int len;
} pulled;

/* One mpull for org.test.pq (name may differ), with the given headers (NULL: left out). */
static natsStatus pull(natsConnection *nc, const char *name, const char *ack, const char *ack_boot,
                       const char *want, pulled *p)
{
    char subj[128];
    snprintf(subj, sizeof subj, "ferry.t.rpc.hosta.hostc.%s", name);
    natsMsg *m = NULL, *r = NULL;
    CHECK(natsMsg_Create(&m, subj, NULL, NULL, 0) == NATS_OK);
    CHECK(natsMsgHeader_Set(m, "Ferry-Op", "mpull") == NATS_OK);
    if (ack) CHECK(natsMsgHeader_Set(m, "Ferry-Ack", ack) == NATS_OK);
    if (ack_boot) CHECK(natsMsgHeader_Set(m, "Ferry-Ack-Boot", ack_boot) == NATS_OK);
    if (want) CHECK(natsMsgHeader_Set(m, "Ferry-Want", want) == NATS_OK);
    natsStatus s = natsConnection_RequestMsg(&r, nc, m, 1000);
    natsMsg_Destroy(m);
    memset(p, 0, sizeof *p);
    if (s != NATS_OK) return s;
    const char *v = NULL;
    if (natsMsgHeader_Get(r, "Ferry-Status", &v) == NATS_OK && v) snprintf(p->st, 16, "%s", v);
    if (natsMsgHeader_Get(r, "Ferry-Type", &v) == NATS_OK && v) p->type = atoll(v);
    if (natsMsgHeader_Get(r, "Ferry-Seq", &v) == NATS_OK && v) p->seq = strtoull(v, NULL, 10);
    if (natsMsgHeader_Get(r, "Ferry-Boot", &v) == NATS_OK && v) snprintf(p->boot, 20, "%s", v);
    p->len = natsMsg_GetDataLength(r);
    if (p->len > 0 && p->len < (int)sizeof p->data)
        memcpy(p->data, natsMsg_GetData(r), (size_t)p->len);
    natsMsg_Destroy(r);
    return NATS_OK;
}

static void check_msg(const pulled *p, const char *data, int64_t type)
{
    if (strcmp(p->st, "0") != 0) fprintf(stderr, "pull: status %s\n", p->st);
    CHECK(strcmp(p->st, "0") == 0);
    CHECK_EQ(p->len, (int)strlen(data));
    CHECK(memcmp(p->data, data, strlen(data)) == 0);
    CHECK_EQ(p->type, type);
    CHECK(p->seq > 0);
    CHECK_EQ(strlen(p->boot), 16);
}

/* A: the mailbox's owner: sends "0", "1", "2"; once the puller went silent, receives
 * what is given back. */
static void owner(void *arg)
{
    (void)arg;
    ferry_mailbox *mb;
    ferry_pub *pub;
    cl_mailbox_publish("org.test.pq", 8, 64, &mb, &pub);
    for (int i = 0; i < 3; i++) {
        char msg[8];
        int n = snprintf(msg, sizeof msg, "%d", i);
        CHECK_EQ(ferry_mailbox_send(mb, i + 1, msg, (size_t)n, 5 * SEC), 0);
    }
    while (atomic_load(&sh->phase) < 1) sleep_ms(5);
    char buf[64];
    int64_t type = 0;
    CHECK_EQ(ferry_mailbox_recv(mb, 0, &type, buf, sizeof buf, 10 * SEC), 1);
    atomic_store(&sh->back_after, now_ns() - atomic_load(&sh->silent_ns));
    CHECK(buf[0] == '2' && type == 3); /* the held one, given back */
    CHECK_EQ(ferry_mailbox_recv(mb, 0, &type, buf, sizeof buf, 500 * MS), -ETIMEDOUT);
    atomic_store(&sh->phase, 2);
    while (atomic_load(&sh->phase) < 3) sleep_ms(5);
    ferry_pub_close(pub);
    ferry_mailbox_close(mb);
}

/* B: the raw puller, as hostc. */
static void puller(void *arg)
{
    (void)arg;
    natsConnection *nc = cl_nats_hostc(&C, NULL);
    pulled p, q;
    int64_t end = now_ns() + 10 * SEC;
    /* until the route, A's subscription and the mailbox are there */
    while (pull(nc, "org.test.pq", NULL, NULL, NULL, &p) != NATS_OK || strcmp(p.st, "0") != 0) {
        CHECK(now_ns() < end);
        sleep_ms(50);
    }
    check_msg(&p, "0", 1);
    /* held: the same again, without an acknowledgement */
    CHECK_EQ(pull(nc, "org.test.pq", NULL, NULL, NULL, &q), NATS_OK);
    check_msg(&q, "0", 1);
    CHECK_EQ(q.seq, p.seq);
    CHECK(strcmp(q.boot, p.boot) == 0);
    char ack[24];
    snprintf(ack, sizeof ack, "%llu", (unsigned long long)p.seq);
    /* an acknowledgement of another incarnation, or a malformed one: still held */
    CHECK_EQ(pull(nc, "org.test.pq", ack, "0000000000000000", NULL, &q), NATS_OK);
    check_msg(&q, "0", 1);
    CHECK_EQ(pull(nc, "org.test.pq", "12x", p.boot, NULL, &q), NATS_OK);
    check_msg(&q, "0", 1);
    CHECK_EQ(pull(nc, "org.test.pq", "99999999999999999999999", p.boot, NULL, &q), NATS_OK);
    check_msg(&q, "0", 1);
    /* the right one: the next message */
    CHECK_EQ(pull(nc, "org.test.pq", ack, p.boot, NULL, &q), NATS_OK);
    check_msg(&q, "1", 2);
    CHECK(q.seq > p.seq);
    /* only the acknowledgement */
    snprintf(ack, sizeof ack, "%llu", (unsigned long long)q.seq);
    CHECK_EQ(pull(nc, "org.test.pq", ack, p.boot, "0", &q), NATS_OK);
    CHECK(strcmp(q.st, "0") == 0 && q.len == 0);
    CHECK_EQ(pull(nc, "org.test.pq", NULL, NULL, NULL, &q), NATS_OK);
    check_msg(&q, "2", 3);
    /* a name not exported: ENOENT */
    CHECK_EQ(pull(nc, "org.test.none", NULL, NULL, NULL, &p), NATS_OK);
    CHECK(strcmp(p.st, "ENOENT") == 0);
    /* silent now: "2" goes back to A's mailbox after 2 x 3 x 200 ms */
    atomic_store(&sh->silent_ns, now_ns());
    atomic_store(&sh->phase, 1);
    end = now_ns() + 20 * SEC;
    while (atomic_load(&sh->phase) < 2) {
        CHECK(now_ns() < end);
        sleep_ms(5);
    }
    /* empty: EAGAIN */
    CHECK_EQ(pull(nc, "org.test.pq", NULL, NULL, NULL, &p), NATS_OK);
    CHECK(strcmp(p.st, "EAGAIN") == 0);
    natsConnection_Destroy(nc);
    nats_CloseAndWait(2000);
}

int main(void)
{
    sh = cl_begin(&C, 120, sizeof *sh);
    host *A = &C.h[0], *B = &C.h[1];
    const char *exp_a[] = {
        "--export", "org.test.pq=hostc", "--heartbeat-ms", "200", "--dead-after", "3", NULL};
    const char *exp_b[] = {"--heartbeat-ms", "200", NULL};
    cl_bridges(&C, exp_a, exp_b);
    pid_t o = cl_spawn(A, &ROOT, owner, NULL);
    pid_t p = cl_spawn(B, &ROOT, puller, NULL);
    while (atomic_load(&sh->phase) < 2) sleep_ms(5);
    double ms = (double)atomic_load(&sh->back_after) / 1e6;
    printf("a held message given back %.0f ms after its puller went silent (at 1200 ms)\n", ms);
    CHECK(atomic_load(&sh->back_after) >= 1000 * MS); /* not before the lapse */
    wait_ok(p);
    atomic_store(&sh->phase, 3);
    wait_ok(o);
    cl_down(&C);
    printf("ok\n");
    return 0;
}
