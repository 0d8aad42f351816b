// SPDX-License-Identifier: MIT
/*
 * test_chan_badtimeout — a negative timeout other than FERRY_FOREVER (-1) is -EINVAL on
 * every blocking call, at once, and the call does nothing (ferry.h, "Timeouts"). Each
 * bad value (-2, -1 s, INT64_MIN) on:
 *  - (channels, listeners and ferry_chan_open: in tests/conformance, check "timeouts",
 *    on every transport;)
 *  - sync objects: ferry_sem_wait (the unit is not taken), ferry_mutex_lock (not locked),
 *    ferry_barrier_wait of a one-party barrier (not passed), ferry_event_post (nothing
 *    posted) and ferry_event_next;
 *  - a mailbox: send, recv, loan, peek (nothing sent, nothing taken);
 *  - a broadcast ring: publish, loan, ferry_sub_recv, ferry_sub_peek (nothing published);
 *  - RPC over a pipe pair: ferry_call, ferry_call_start, ferry_call_async, ferry_rpc_send,
 *    ferry_recv_request, ferry_reply (the pending call is not lost: a good reply after
 *    the refused one still completes it);
 *  - broker calls (refused before any connection): ferry_lookup, ferry_list,
 *    ferry_connect, ferry_register, ferry_watch_open, ferry_kill, ferry_send_to,
 *    ferry_sem_open.
 * Before the fix these waited forever (the watchdog ends the test). No fd leaks.
 */
#include "chantest.h"

#include <pthread.h>

static const int64_t bad[] = {-2, -SEC, INT64_MIN};
#define NBAD (sizeof bad / sizeof bad[0])

static void check_sync(void)
{
    STAGE("sync objects");
    ferry_sem *s;
    CHECK_EQ(ferry_sem_create(1, 0, &s), 0);
    for (size_t i = 0; i < NBAD; i++) CHECK_EQ(ferry_sem_wait(s, bad[i]), -EINVAL);
    CHECK_EQ(ferry_sem_trywait(s), 0); /* the unit was still there */
    for (size_t i = 0; i < NBAD; i++) CHECK_EQ(ferry_sem_wait(s, bad[i]), -EINVAL);
    CHECK_EQ(ferry_sem_trywait(s), -EAGAIN);
    ferry_sem_close(s);

    ferry_mutex *mx;
    CHECK_EQ(ferry_mutex_create(0, &mx), 0);
    for (size_t i = 0; i < NBAD; i++) CHECK_EQ(ferry_mutex_lock(mx, bad[i]), -EINVAL);
    CHECK_EQ(ferry_mutex_lock(mx, FERRY_NOW), 0); /* it was not locked */
    CHECK_EQ(ferry_mutex_unlock(mx), 0);
    ferry_mutex_close(mx);

    ferry_barrier *br;
    CHECK_EQ(ferry_barrier_create(1, &br), 0);
    for (size_t i = 0; i < NBAD; i++) CHECK_EQ(ferry_barrier_wait(br, bad[i]), -EINVAL);
    CHECK_EQ(ferry_barrier_wait(br, FERRY_NOW), 1); /* a good call passes at once */
    ferry_barrier_close(br);

    ferry_event *e;
    uint64_t v;
    CHECK_EQ(ferry_event_create(4, &e), 0);
    for (size_t i = 0; i < NBAD; i++) {
        CHECK_EQ(ferry_event_post(e, 7, 0, bad[i]), -EINVAL);
        CHECK_EQ(ferry_event_next(e, &v, bad[i]), -EINVAL);
    }
    CHECK_EQ(ferry_event_next(e, &v, FERRY_NOW), -EAGAIN); /* nothing was posted */
    ferry_event_close(e);
}

static void check_mailbox(void)
{
    STAGE("mailbox");
    ferry_mailbox_opts o;
    ferry_mailbox_opts_init(&o);
    ferry_mailbox *mb;
    CHECK_EQ(ferry_mailbox_create(&o, &mb), 0);
    char buf[64];
    int64_t type;
    CHECK_EQ(ferry_mailbox_send(mb, 1, "kept", 4, T5S), 0);
    for (size_t i = 0; i < NBAD; i++) {
        void *p;
        const void *d;
        size_t len;
        CHECK_EQ(ferry_mailbox_send(mb, 2, "x", 1, bad[i]), -EINVAL);
        CHECK_EQ(ferry_mailbox_recv(mb, 0, &type, buf, sizeof buf, bad[i]), -EINVAL);
        CHECK_EQ(ferry_mailbox_loan(mb, &p, bad[i]), -EINVAL);
        CHECK_EQ(ferry_mailbox_peek(mb, 0, &d, &len, &type, bad[i]), -EINVAL);
    }
    CHECK_EQ(ferry_mailbox_recv(mb, 0, &type, buf, sizeof buf, FERRY_NOW), 4);
    CHECK_EQ(type, 1);
    CHECK_EQ(ferry_mailbox_recv(mb, 0, &type, buf, sizeof buf, FERRY_NOW), -EAGAIN);
    ferry_mailbox_close(mb);
}

static void check_bcast(void)
{
    STAGE("broadcast");
    ferry_bcast_opts o;
    ferry_bcast_opts_init(&o);
    ferry_bcast *b;
    CHECK_EQ(ferry_bcast_create(&o, &b), 0);
    ferry_sub *s;
    CHECK_EQ(ferry_bcast_subscribe(b, 0, &s), 0);
    char buf[64];
    int64_t type;
    for (size_t i = 0; i < NBAD; i++) {
        void *p;
        ferry_msg m;
        memset(&m, 0, sizeof m);
        CHECK_EQ(ferry_bcast_publish(b, 1, "x", 1, bad[i]), -EINVAL);
        CHECK_EQ(ferry_bcast_loan(b, 1, &p, bad[i]), -EINVAL);
        CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, &type, bad[i]), -EINVAL);
        CHECK_EQ(ferry_sub_peek(s, &m, bad[i]), -EINVAL);
    }
    CHECK_EQ(ferry_sub_recv(s, buf, sizeof buf, &type, FERRY_NOW), -EAGAIN); /* none */
    ferry_sub_close(s);
    ferry_bcast_close(b);
}

static void never_called(ferry_rpc_client *c, uint64_t id, ssize_t rc, ferry_msg *resp, void *ctx)
{
    (void)c, (void)id, (void)rc, (void)resp, (void)ctx;
    CHECK(!"a refused ferry_call_async called back");
}

static void check_rpc(void)
{
    STAGE("rpc");
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pipe_pair(NULL, &a, &b), 0);
    ferry_rpc_client *c;
    ferry_rpc_server *sv;
    CHECK_EQ(ferry_rpc_client_create(a, &c), 0);
    CHECK_EQ(ferry_rpc_server_create(b, &sv), 0);
    char rbuf[64];
    ferry_msg req, resp;
    memset(&req, 0, sizeof req);
    req.data = "q";
    req.len = 1;
    memset(&resp, 0, sizeof resp);
    resp.data = rbuf;
    resp.cap = sizeof rbuf;
    uint64_t id;
    ferry_rpc_request rq;
    memset(&rq, 0, sizeof rq);
    char qbuf[64];
    rq.msg.data = qbuf;
    rq.msg.cap = sizeof qbuf;
    for (size_t i = 0; i < NBAD; i++) {
        CHECK_EQ(ferry_call(c, &req, &resp, bad[i]), -EINVAL);
        CHECK_EQ(ferry_call_start(c, &req, &resp, &id, bad[i]), -EINVAL);
        CHECK_EQ(ferry_call_async(c, &req, &resp, never_called, NULL, &id, bad[i]), -EINVAL);
        CHECK_EQ(ferry_rpc_send(c, &req, bad[i]), -EINVAL);
        CHECK_EQ(ferry_recv_request(sv, &rq, bad[i]), -EINVAL);
    }
    /* Nothing went out: the server has no request. */
    CHECK_EQ(ferry_recv_request(sv, &rq, FERRY_NOW), -EAGAIN);
    /* A refused reply does not lose the call: a good one completes it. */
    CHECK_EQ(ferry_call_start(c, &req, &resp, &id, T5S), 0);
    CHECK_EQ(ferry_recv_request(sv, &rq, T5S), 1);
    ferry_msg rep;
    memset(&rep, 0, sizeof rep);
    rep.data = "r";
    rep.len = 1;
    for (size_t i = 0; i < NBAD; i++) {
        CHECK_EQ(ferry_reply(sv, rq.id, &rep, bad[i]), -EINVAL);
        CHECK_EQ(ferry_call_wait(c, id, bad[i]), -EINVAL);
    }
    CHECK_EQ(ferry_reply(sv, rq.id, &rep, T5S), 0);
    CHECK_EQ(ferry_call_wait(c, id, T5S), 1);
    CHECK_EQ(rbuf[0], 'r');
    ferry_rpc_client_close(c);
    ferry_rpc_server_unref(sv);
}

static void check_broker(void)
{
    STAGE("broker calls");
    /* Refused before any connection: no broker is needed, none is asked. */
    setenv("FERRY_BROKER", "/nonexistent/ferry-badtimeout.sock", 1);
    for (size_t i = 0; i < NBAD; i++) {
        int64_t t = bad[i];
        ferry_name_info info;
        ferry_chan *ch;
        ferry_listener *l;
        ferry_watch *w;
        ferry_sem *s;
        ferry_msg m;
        memset(&m, 0, sizeof m);
        CHECK_EQ(ferry_lookup("svc", &info, t), -EINVAL);
        CHECK_EQ(ferry_list(NULL, &info, 1, t), -EINVAL);
        CHECK_EQ(ferry_connect("svc", FERRY_KIND_UNIX, NULL, &ch, t), -EINVAL);
        CHECK_EQ(ferry_register("svc", NULL, NULL, &l, t), -EINVAL);
        CHECK_EQ(ferry_watch_open("svc*", &w, t), -EINVAL);
        CHECK_EQ(ferry_kill("svc", SIGTERM, t), -EINVAL);
        CHECK_EQ(ferry_send_to("svc", &m, t), -EINVAL);
        CHECK_EQ(ferry_sem_open("svc", &s, t), -EINVAL);
    }
}

int main(void)
{
    watchdog_arm();
    int base = fd_count();
    check_sync();
    check_mailbox();
    check_bcast();
    check_rpc();
    check_broker();
    CHECK_EQ(fd_count(), base);
    printf("test_chan_badtimeout: ok\n");
    return 0;
}
