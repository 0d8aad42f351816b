// SPDX-License-Identifier: MIT
/*
 * test_rpc_basic — RPC over a ferry_pair with a forked server using the manual form
 * (ferry_recv_request / ferry_reply) that answers batches of requests in reverse order:
 *  - correlation: 8 threads x 10,000 calls on one connection, each request a unique
 *    runtime-sized payload (9..208 bytes) the server echoes transformed: every reply is
 *    exactly its own request's transform (no mismatch), and nothing is dropped;
 *  - one-way messages: 100 sent, then a call counts exactly 100 at the server;
 *  - -EMSGSIZE: a 1,000-byte reply to a caller allowing 100 (resp.len says 1000); the
 *    connection goes on; a 100,000-byte reply (larger than the reader's first buffer)
 *    arrives whole; a reply one byte over the channel's max_msg is -EMSGSIZE at the
 *    server, which then replies again to the same id (the client gets that reply);
 *  - late reply: a call times out (-ETIMEDOUT at 50 ms) while the server sleeps 300 ms;
 *    the next call gets its own reply, the late one is dropped (ferry_rpc_dropped 1);
 *  - cancel: a started call cancelled from another thread ends with -ECANCELED at once;
 *    cancelling it again or an unknown id is -ENOENT; its reply is dropped;
 *  - the server's errors: a second reply, a reply to an unknown id and to id 0 are
 *    -ENOENT there (checked in the server) and reach nobody (the client drops nothing);
 *  - fds: a request carries a pipe's write end, the server writes to it and sends it
 *    back on the reply;
 *  - async: 200 calls through ferry_call_async, completed by poll on ferry_rpc_poll_fd +
 *    ferry_rpc_dispatch in this thread, each reply its own; an async call to a request
 *    that is never answered, cancelled: its callback runs with -ECANCELED;
 *  - no fd leaks.
 */
#include "rpctest.h"

#include <poll.h>
#include <pthread.h>

#define NTHREADS 8
#define NCALLS   10000
#define BATCH    16

static void server(ferry_chan *ch)
{
    ferry_rpc_server *s;
    CHECK_EQ(ferry_rpc_server_create(ch, &s), 0);
    static uint8_t bufs[BATCH][4096];
    ferry_rpc_request rq[BATCH];
    uint64_t oneways = 0;
    for (;;) {
        int n = 0;
        for (; n < BATCH; n++) {
            memset(&rq[n], 0, sizeof rq[n]);
            rq[n].msg.data = bufs[n];
            rq[n].msg.cap = sizeof bufs[n];
            ssize_t rc = ferry_recv_request(s, &rq[n], n == 0 ? FERRY_FOREVER : FERRY_NOW);
            if (rc == -EAGAIN) break;
            if (rc == -EPIPE) {
                CHECK_EQ(n, 0);
                ferry_rpc_server_unref(s);
                exit(0);
            }
            CHECK(rc >= 0);
            if (rq[n].oneway) { /* counted in arrival order, not batched */
                CHECK_EQ(serve_one(s, &rq[n], &oneways), 0);
                n--;
            }
        }
        for (int i = n - 1; i >= 0; i--) CHECK_EQ(serve_one(s, &rq[i], &oneways), 0);
    }
}

static ferry_rpc_client *cli;

static void *caller(void *arg)
{
    int t = (int)(intptr_t)arg;
    uint8_t req[256], resp[256], want[256];
    for (int i = 0; i < NCALLS; i++) {
        uint64_t seed = (uint64_t)t * 1000003 + (uint64_t)i;
        size_t len = make_req(req, CMD_ECHO, (uint32_t)(t * 100000 + i), seed, 1 + seed % 200);
        ferry_msg q = {.data = req, .len = len};
        ferry_msg r = {.data = resp, .cap = sizeof resp};
        ssize_t rc = ferry_call(cli, &q, &r, 10LL * 1000000000);
        size_t wl = expect_echo(req, len, want);
        CHECK_EQ(rc, (ssize_t)wl);
        CHECK_EQ(r.len, wl);
        CHECK(memcmp(resp, want, wl) == 0);
    }
    return NULL;
}

static void echo_ok(uint64_t seed)
{
    uint8_t req[64], resp[64], want[64];
    size_t len = make_req(req, CMD_ECHO, (uint32_t)seed, seed, 20);
    ferry_msg q = {.data = req, .len = len}, r = {.data = resp, .cap = sizeof resp};
    size_t wl = expect_echo(req, len, want);
    CHECK_EQ(ferry_call(cli, &q, &r, 10LL * 1000000000), (ssize_t)wl);
    CHECK(memcmp(resp, want, wl) == 0);
}

static uint64_t cancel_id;
static void *canceller(void *arg)
{
    (void)arg;
    sleep_ms_(50);
    CHECK_EQ(ferry_call_cancel(cli, cancel_id), 0);
    return NULL;
}

/* ---- async */
#define NASYNC 200
struct actx {
    uint8_t req[64], resp[64];
    size_t len;
    ferry_msg r;
    int done;
    ssize_t rc;
};
static struct actx actx[NASYNC + 1];
static int ndone;

static void on_reply(ferry_rpc_client *c, uint64_t id, ssize_t rc, ferry_msg *resp, void *ctx)
{
    (void)id;
    CHECK(c == cli);
    struct actx *a = ctx;
    CHECK(resp == &a->r);
    CHECK(!a->done);
    a->done = 1;
    a->rc = rc;
    ndone++;
}

int main(void)
{
    int fds0 = fd_count();
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(NULL, &a, &b), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_chan_close(a);
        server(b);
    }
    ferry_chan_close(b);
    size_t max_msg = ferry_chan_max_msg(a); /* (the server's end has the same) */
    CHECK_EQ(ferry_rpc_client_create(a, &cli), 0);

    /* correlation */
    int64_t t0 = mono_ns();
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        CHECK_EQ(pthread_create(&th[t], NULL, caller, (void *)(intptr_t)t), 0);
    for (int t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
    printf("correlation: %d calls in %.1f ms, no mismatch\n", NTHREADS * NCALLS,
           (mono_ns() - t0) / 1e6);
    CHECK_EQ(ferry_rpc_dropped(cli), 0);

    /* one-way */
    for (int i = 0; i < 100; i++) {
        uint8_t m[8] = {(uint8_t)i};
        ferry_msg q = {.data = m, .len = sizeof m};
        CHECK_EQ(ferry_rpc_send(cli, &q, FERRY_FOREVER), 0);
    }
    {
        uint8_t req[16];
        uint64_t cnt = 0;
        ferry_msg q = {.data = req, .len = make_req(req, CMD_COUNT, 0, 0, 0)};
        ferry_msg r = {.data = &cnt, .cap = sizeof cnt};
        CHECK_EQ(ferry_call(cli, &q, &r, FERRY_FOREVER), 8);
        CHECK_EQ(cnt, 100);
    }

    /* -EMSGSIZE */
    {
        uint8_t req[16], resp[100];
        ferry_msg q = {.data = req, .len = make_req(req, CMD_BIG, 1000, 0, 0)};
        ferry_msg r = {.data = resp, .cap = sizeof resp};
        CHECK_EQ(ferry_call(cli, &q, &r, FERRY_FOREVER), -EMSGSIZE);
        CHECK_EQ(r.len, 1000);
        echo_ok(1);
    }

    /* a reply the channel cannot carry (one byte over max_msg): -EMSGSIZE at the server,
     * nothing sent, and the request still awaits its reply, which the server then sends */
    {
        uint8_t req[64], resp[64], want[64];
        size_t len = make_req(req, CMD_RETRY, (uint32_t)(max_msg + 1), 9, 20);
        ferry_msg q = {.data = req, .len = len}, r = {.data = resp, .cap = sizeof resp};
        size_t wl = expect_echo(req, len, want);
        CHECK_EQ(ferry_call(cli, &q, &r, 10LL * 1000000000), (ssize_t)wl);
        CHECK(memcmp(resp, want, wl) == 0);
    }

    /* a reply larger than the reader's first buffer (64 KiB): it grows */
    {
        static uint8_t big[100000];
        uint8_t req[16];
        ferry_msg q = {.data = req, .len = make_req(req, CMD_BIG, sizeof big, 0, 0)};
        ferry_msg r = {.data = big, .cap = sizeof big};
        CHECK_EQ(ferry_call(cli, &q, &r, FERRY_FOREVER), (ssize_t)sizeof big);
        for (size_t i = 0; i < sizeof big; i++) CHECK_EQ(big[i], 0xAB);
        echo_ok(6);
    }

    /* late reply */
    {
        uint8_t req[64], resp[64];
        ferry_msg q = {.data = req, .len = make_req(req, CMD_SLEEP, 300, 7, 10)};
        ferry_msg r = {.data = resp, .cap = sizeof resp};
        int64_t s = mono_ns();
        CHECK_EQ(ferry_call(cli, &q, &r, 50 * 1000000LL), -ETIMEDOUT);
        int64_t el = mono_ns() - s;
        CHECK(el >= 50 * 1000000LL && el < 250 * 1000000LL);
        echo_ok(2); /* waits for the sleeping server; the late reply comes first */
        CHECK_EQ(ferry_rpc_dropped(cli), 1);
    }

    /* cancel */
    {
        uint8_t req[64], resp[64];
        ferry_msg q = {.data = req, .len = make_req(req, CMD_SLEEP, 200, 8, 10)};
        ferry_msg r = {.data = resp, .cap = sizeof resp};
        CHECK_EQ(ferry_call_start(cli, &q, &r, &cancel_id, FERRY_FOREVER), 0);
        pthread_t ct;
        int64_t s = mono_ns();
        CHECK_EQ(pthread_create(&ct, NULL, canceller, NULL), 0);
        CHECK_EQ(ferry_call_wait(cli, cancel_id, 5LL * 1000000000), -ECANCELED);
        int64_t el = mono_ns() - s;
        pthread_join(ct, NULL);
        CHECK(el >= 50 * 1000000LL && el < 150 * 1000000LL);
        CHECK_EQ(ferry_call_cancel(cli, cancel_id), -ENOENT);
        CHECK_EQ(ferry_call_cancel(cli, 999999999), -ENOENT);
        CHECK_EQ(ferry_call_wait(cli, cancel_id, FERRY_NOW), -ENOENT);
        echo_ok(3);
        CHECK_EQ(ferry_rpc_dropped(cli), 2);
    }

    /* the server's double reply / unknown id */
    {
        uint8_t req[64], resp[64], want[64];
        size_t len = make_req(req, CMD_TWICE, 9, 9, 12);
        ferry_msg q = {.data = req, .len = len}, r = {.data = resp, .cap = sizeof resp};
        size_t wl = expect_echo(req, len, want);
        CHECK_EQ(ferry_call(cli, &q, &r, FERRY_FOREVER), (ssize_t)wl);
        CHECK(memcmp(resp, want, wl) == 0);
        echo_ok(4);
        CHECK_EQ(ferry_rpc_dropped(cli), 2);
    }

    /* fds ride on requests and replies */
    {
        int pfd[2];
        CHECK_EQ(pipe(pfd), 0);
        uint8_t req[16], resp[16];
        char ch;
        ferry_msg q = {.data = req, .len = make_req(req, CMD_FD, 0, 0, 0), .nfds = 1};
        q.fds[0] = pfd[1];
        ferry_msg r = {.data = resp, .cap = sizeof resp};
        CHECK_EQ(ferry_call(cli, &q, &r, FERRY_FOREVER), 1);
        CHECK_EQ(resp[0], 'f');
        CHECK_EQ(r.nfds, 1);
        CHECK_EQ(read(pfd[0], &ch, 1), 1);
        CHECK_EQ(ch, 'x');
        CHECK_EQ(write(r.fds[0], "y", 1), 1); /* the reply's fd: the same pipe */
        CHECK_EQ(read(pfd[0], &ch, 1), 1);
        CHECK_EQ(ch, 'y');
        close(r.fds[0]);
        close(pfd[0]);
        close(pfd[1]);
    }

    /* async through poll */
    {
        int fd = ferry_rpc_poll_fd(cli);
        CHECK(fd >= 0);
        CHECK_EQ(ferry_rpc_poll_fd(cli), fd);
        uint64_t noreply_id = 0;
        for (int i = 0; i <= NASYNC; i++) {
            struct actx *x = &actx[i];
            x->len = make_req(x->req, i == NASYNC ? CMD_NOREPLY : CMD_ECHO, (uint32_t)i,
                              (uint64_t)i * 77, 1 + i % 40);
            x->r.data = x->resp;
            x->r.cap = sizeof x->resp;
            ferry_msg q = {.data = x->req, .len = x->len};
            CHECK_EQ(ferry_call_async(cli, &q, &x->r, on_reply, x, i == NASYNC ? &noreply_id : NULL,
                                      FERRY_FOREVER),
                     0);
        }
        int64_t s = mono_ns();
        while (ndone < NASYNC) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            CHECK(poll(&p, 1, 5000) == 1);
            CHECK(ferry_rpc_dispatch(cli) >= 0);
            CHECK(mono_ns() - s < 10LL * 1000000000);
        }
        CHECK_EQ(ndone, NASYNC);
        CHECK(!actx[NASYNC].done);
        CHECK_EQ(ferry_call_cancel(cli, noreply_id), 0);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        CHECK_EQ(poll(&p, 1, 1000), 1);
        CHECK_EQ(ferry_rpc_dispatch(cli), 1);
        CHECK(actx[NASYNC].done);
        CHECK_EQ(actx[NASYNC].rc, -ECANCELED);
        for (int i = 0; i < NASYNC; i++) {
            uint8_t want[64];
            size_t wl = expect_echo(actx[i].req, actx[i].len, want);
            CHECK_EQ(actx[i].rc, (ssize_t)wl);
            CHECK(memcmp(actx[i].resp, want, wl) == 0);
        }
        CHECK_EQ(poll(&p, 1, 0), 0); /* nothing left */
        echo_ok(5);
    }

    CHECK_EQ(ferry_rpc_dropped(cli), 2);
    ferry_rpc_client_close(cli);
    wait_ok(pid);
    CHECK_EQ(fd_count(), fds0);
    printf("ok\n");
    return 0;
}
