// SPDX-License-Identifier: MIT
/*
 * test_rpc_serve — ferry_serve with a real ferryd (brokerutil.h):
 *  - nthreads: 4 clients, each on its own connection, send a request whose handler waits
 *    on a 4-party barrier: all 4 are answered only if 4 pool threads run handlers at
 *    once (a 5 s timeout otherwise);
 *  - correlation through the pool: one connection shared by 8 threads x 2,000 calls,
 *    every 4th answered later from another thread (the handler takes a reference, a
 *    replier thread answers, now and then 1 ms later), each reply exactly its own request's
 * transform;
 *  - a forked client process connects by name (ferry_rpc_connect), makes 1,000 calls
 *    and exits; its connection is dropped by the server (served again afterwards);
 *  - cancel reaches the server: a handler waiting on ferry_rpc_cancelled sees 1 once the
 *    client cancels, its reply is then -ECANCELED and sends nothing;
 *  - a FERRY_KIND_UNIX connection: 200 calls, half of them deferred;
 *  - one-way messages: 50 sent, counted exactly by the handler;
 *  - a second ferry_serve of the same name is -EEXIST;
 *  - ferry_rpc_service_close frees everything: no fd leaks, ferryd stops cleanly.
 */
#include "rpctest.h"

#include "brokerutil.h"

#include <pthread.h>
#include <stdatomic.h>

#define NAME      "org.test.rpcserve"
#define NPOOL     4
#define CMD_BARR  6
#define CMD_DEFER 7
#define CMD_WAITC 9 /* wait until the client cancels, then reply: -ECANCELED */
#define NTHREADS  8
#define NCALLS    2000

static pthread_barrier_t barr;
static _Atomic uint64_t oneways;
static _Atomic int saw_cancel;

/* ---- the deferred replies: a queue and a thread */
struct later {
    ferry_rpc_server *conn;
    uint64_t id;
    uint8_t req[256];
    size_t len;
    struct later *next;
};
static pthread_mutex_t qmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcv = PTHREAD_COND_INITIALIZER;
static struct later *qhead;
static int qstop;

static void *replier(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&qmu);
    for (;;) {
        while (!qhead && !qstop) pthread_cond_wait(&qcv, &qmu);
        if (!qhead) break;
        struct later *l = qhead;
        qhead = l->next;
        pthread_mutex_unlock(&qmu);
        if (l->id % 64 == 0) sleep_ms_(1); /* now and then truly late */
        uint8_t out[300];
        ferry_msg r = {.data = out, .len = expect_echo(l->req, l->len, out)};
        CHECK_EQ(ferry_reply(l->conn, l->id, &r, FERRY_FOREVER), 0);
        CHECK_EQ(ferry_reply(l->conn, l->id, &r, FERRY_FOREVER), -ENOENT);
        ferry_rpc_server_unref(l->conn);
        free(l);
        pthread_mutex_lock(&qmu);
    }
    pthread_mutex_unlock(&qmu);
    return NULL;
}

static void handler(ferry_rpc_server *conn, ferry_rpc_request *rq, void *ctx)
{
    CHECK(ctx == &barr);
    if (rq->oneway) {
        oneways++;
        return;
    }
    req_head h;
    CHECK(rq->msg.len >= sizeof h && rq->msg.len <= 256);
    memcpy(&h, rq->msg.data, sizeof h);
    uint8_t out[300];
    ferry_msg r = {.data = out};
    if (h.cmd == CMD_DEFER) {
        struct later *l = calloc(1, sizeof *l);
        CHECK(l);
        l->conn = ferry_rpc_server_ref(conn);
        l->id = rq->id;
        l->len = rq->msg.len;
        memcpy(l->req, rq->msg.data, l->len);
        pthread_mutex_lock(&qmu);
        l->next = qhead;
        qhead = l;
        pthread_cond_signal(&qcv);
        pthread_mutex_unlock(&qmu);
        return;
    }
    if (h.cmd == CMD_WAITC) {
        CHECK_EQ(ferry_rpc_cancelled(conn, rq->id), 0);
        int64_t s = mono_ns();
        while (ferry_rpc_cancelled(conn, rq->id) != 1) {
            CHECK(mono_ns() - s < 5LL * 1000000000);
            sleep_ms_(1);
        }
        r.len = 1;
        CHECK_EQ(ferry_reply(conn, rq->id, &r, FERRY_FOREVER), -ECANCELED);
        CHECK_EQ(ferry_rpc_cancelled(conn, rq->id), -ENOENT);
        saw_cancel = 1;
        return;
    }
    if (h.cmd == CMD_BARR) pthread_barrier_wait(&barr);
    if (h.cmd == CMD_COUNT) {
        uint64_t n = oneways;
        memcpy(out, &n, sizeof n);
        r.len = sizeof n;
    } else {
        r.len = expect_echo(rq->msg.data, rq->msg.len, out);
    }
    CHECK_EQ(ferry_reply(conn, rq->id, &r, FERRY_FOREVER), 0);
}

static void call_ok(ferry_rpc_client *c, uint32_t cmd, uint64_t seed, int64_t timeout)
{
    uint8_t req[256], resp[300], want[300];
    size_t len = make_req(req, cmd, (uint32_t)seed, seed, 1 + seed % 200);
    ferry_msg q = {.data = req, .len = len}, r = {.data = resp, .cap = sizeof resp};
    size_t wl = expect_echo(req, len, want);
    CHECK_EQ(ferry_call(c, &q, &r, timeout), (ssize_t)wl);
    CHECK(memcmp(resp, want, wl) == 0);
}

static void *barr_client(void *arg)
{
    ferry_rpc_client *c;
    CHECK_EQ(ferry_rpc_connect(NAME, FERRY_KIND_SHM, NULL, &c, 5LL * 1000000000), 0);
    call_ok(c, CMD_BARR, (uint64_t)(intptr_t)arg, 5LL * 1000000000);
    ferry_rpc_client_close(c);
    return NULL;
}

static ferry_rpc_client *shared;
static void *shared_caller(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < NCALLS; i++)
        call_ok(shared, i % 4 == 0 ? CMD_DEFER : CMD_ECHO, (uint64_t)t * 100000 + i,
                10LL * 1000000000);
    return NULL;
}

int main(void)
{
    test_broker b;
    broker_start(&b);
    int fds0 = fd_count();
    CHECK_EQ(pthread_barrier_init(&barr, NULL, NPOOL), 0);
    pthread_t rep;
    CHECK_EQ(pthread_create(&rep, NULL, replier, NULL), 0);

    ferry_rpc_service *svc, *svc2;
    CHECK_EQ(ferry_serve(NAME, handler, &barr, NPOOL, NULL, NULL, &svc, 5LL * 1000000000), 0);
    CHECK_EQ(ferry_serve(NAME, handler, &barr, 1, NULL, NULL, &svc2, 5LL * 1000000000), -EEXIST);

    /* nthreads: 4 handlers at once */
    pthread_t th[NTHREADS];
    for (int t = 0; t < NPOOL; t++)
        CHECK_EQ(pthread_create(&th[t], NULL, barr_client, (void *)(intptr_t)t), 0);
    for (int t = 0; t < NPOOL; t++) pthread_join(th[t], NULL);

    /* a client process */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_rpc_client *c;
        CHECK_EQ(ferry_rpc_connect(NAME, FERRY_KIND_SHM, NULL, &c, 5LL * 1000000000), 0);
        for (int i = 0; i < 1000; i++) call_ok(c, CMD_ECHO, (uint64_t)i + 555, FERRY_FOREVER);
        ferry_rpc_client_close(c);
        _exit(0);
    }
    wait_ok(pid);

    /* a unix-socket connection to the same service */
    {
        ferry_rpc_client *u;
        CHECK_EQ(ferry_rpc_connect(NAME, FERRY_KIND_UNIX, NULL, &u, 5LL * 1000000000), 0);
        for (int i = 0; i < 200; i++)
            call_ok(u, i % 2 ? CMD_DEFER : CMD_ECHO, (uint64_t)i + 9000, FERRY_FOREVER);
        ferry_rpc_client_close(u);
    }

    /* correlation through the pool, with deferred replies */
    CHECK_EQ(ferry_rpc_connect(NAME, FERRY_KIND_SHM, NULL, &shared, 5LL * 1000000000), 0);
    int64_t t0 = mono_ns();
    for (int t = 0; t < NTHREADS; t++)
        CHECK_EQ(pthread_create(&th[t], NULL, shared_caller, (void *)(intptr_t)t), 0);
    for (int t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
    printf("pool: %d calls in %.1f ms\n", NTHREADS * NCALLS, (mono_ns() - t0) / 1e6);
    CHECK_EQ(ferry_rpc_dropped(shared), 0);

    /* the server sees a cancel */
    {
        uint8_t req[16], resp[16];
        uint64_t id;
        ferry_msg q = {.data = req, .len = make_req(req, CMD_WAITC, 0, 0, 0)};
        ferry_msg r = {.data = resp, .cap = sizeof resp};
        CHECK_EQ(ferry_call_start(shared, &q, &r, &id, FERRY_FOREVER), 0);
        sleep_ms_(20);
        CHECK(!saw_cancel);
        CHECK_EQ(ferry_call_cancel(shared, id), 0);
        CHECK_EQ(ferry_call_wait(shared, id, FERRY_FOREVER), -ECANCELED);
        int64_t s = mono_ns();
        while (!saw_cancel) {
            CHECK(mono_ns() - s < 5LL * 1000000000);
            sleep_ms_(1);
        }
        call_ok(shared, CMD_ECHO, 4242, FERRY_FOREVER);
        CHECK_EQ(ferry_rpc_dropped(shared), 0); /* nothing was sent for the cancelled call */
    }

    /* one-way */
    for (int i = 0; i < 50; i++) {
        uint8_t m[4] = {1, 2, 3, 4};
        ferry_msg q = {.data = m, .len = sizeof m};
        CHECK_EQ(ferry_rpc_send(shared, &q, FERRY_FOREVER), 0);
    }
    int64_t s = mono_ns();
    for (;;) { /* one-way messages may be handled by other pool threads after the call */
        uint8_t req[16];
        uint64_t n = 0;
        ferry_msg q = {.data = req, .len = make_req(req, CMD_COUNT, 0, 0, 0)};
        ferry_msg r = {.data = &n, .cap = sizeof n};
        CHECK_EQ(ferry_call(shared, &q, &r, FERRY_FOREVER), 8);
        if (n == 50) break;
        CHECK(n < 50 && mono_ns() - s < 5LL * 1000000000);
        sleep_ms_(1);
    }
    ferry_rpc_client_close(shared);

    ferry_rpc_service_close(svc);
    pthread_mutex_lock(&qmu);
    qstop = 1;
    pthread_cond_signal(&qcv);
    pthread_mutex_unlock(&qmu);
    pthread_join(rep, NULL);
    pthread_barrier_destroy(&barr);
    CHECK_EQ(fd_count(), fds0);
    broker_stop(&b);
    printf("ok\n");
    return 0;
}
