// SPDX-License-Identifier: MIT
/*
 * test_rpc_solo — the single-caller fast path of ferry_call (client.c, solo_call) and its
 * hand-over when a second caller comes. A forked manual server (ferry_recv_request /
 * ferry_reply) takes two requests, then answers the SECOND first, after a pause:
 *  1. A calls alone (the solo path: no call pending, nobody reading); 50 ms later B calls
 *     and finds A reading, so B follows. A, the reader, reads B's reply first and hands it
 *     to B; then its own. Each gets exactly its own reply (the transform names the
 *     request); nothing is dropped.
 *  2. As 1, but B's reply (3,000 bytes) is longer than A's buffer (100): A reads it into
 *     the reader's buffer and hands it to B whole; A's own then comes as usual.
 *  3. As 1, but A's own reply (1,000 bytes) is longer than A's buffer: -EMSGSIZE, with
 *     resp.len 1000, while B (who got its reply first) is unharmed; the next call works.
 *  4. A's deadline passes while it reads (its request is never answered: -ETIMEDOUT at
 *     80 ms); B, following meanwhile, takes the reader role over and gets its reply
 *     (sent after 300 ms). Then A's late reply never comes (no reply), nothing dropped.
 *  5. The server dies (exits) while A reads solo and B follows: both -EPIPE, within 2 s;
 *     a later call is -EPIPE at once.
 * A call on the solo path has no id anybody knows: ferry_call_cancel with the id it took
 * (7, counted) is -ENOENT while A waits (checked in 4).
 */
#include "rpctest.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

enum { T_SWAP = 1, T_BIG_B = 2, T_BIG_A = 3, T_TIMEOUT = 4, T_DIE = 5 };

/* The server: per test, two requests (A's, then B's), answered as the test says. */
static void server(ferry_chan *ch)
{
    ferry_rpc_server *s;
    CHECK_EQ(ferry_rpc_server_create(ch, &s), 0);
    static uint8_t in[2][4096], out[4096];
    for (;;) {
        ferry_rpc_request rq[2];
        ssize_t n[2];
        for (int i = 0; i < 2; i++) {
            memset(&rq[i], 0, sizeof rq[i]);
            rq[i].msg.data = in[i];
            rq[i].msg.cap = sizeof in[i];
            n[i] = ferry_recv_request(s, &rq[i], FERRY_FOREVER);
            if (n[i] == -EPIPE) {
                ferry_rpc_server_unref(s);
                _exit(0);
            }
            CHECK(n[i] >= (ssize_t)sizeof(req_head));
        }
        req_head h;
        memcpy(&h, in[0], sizeof h);
        int test = (int)h.cmd;
        if (test == T_DIE) _exit(0);
        usleep(test == T_TIMEOUT ? 300000 : 20000);
        for (int k = 1; k >= 0; k--) {                 /* B's first */
            if (test == T_TIMEOUT && k == 0) continue; /* A's: never */
            ferry_msg m;
            memset(&m, 0, sizeof m);
            m.data = out;
            if ((test == T_BIG_B && k == 1) || (test == T_BIG_A && k == 0)) {
                m.len = test == T_BIG_B ? 3000 : 1000;
                memset(out, 0xAB, m.len);
            } else {
                m.len = expect_echo(in[k], (size_t)n[k], out);
            }
            CHECK_EQ(ferry_reply(s, rq[k].id, &m, FERRY_FOREVER), 0);
        }
    }
}

typedef struct caller {
    ferry_rpc_client *c;
    int test;
    uint32_t arg;
    size_t cap;
    int64_t timeout;
    ssize_t rc;
    size_t len;
    uint8_t req[64], resp[4096];
    size_t reqlen;
} caller;

static void *call_thread(void *p)
{
    caller *k = p;
    k->reqlen = make_req(k->req, (uint32_t)k->test, k->arg, k->arg * 7 + 1, 24);
    ferry_msg q, r;
    memset(&q, 0, sizeof q);
    memset(&r, 0, sizeof r);
    q.data = k->req;
    q.len = k->reqlen;
    r.data = k->resp;
    r.cap = k->cap;
    k->rc = ferry_call(k->c, &q, &r, k->timeout);
    k->len = r.len;
    return NULL;
}

static int echo_ok(const caller *k)
{
    uint8_t want[128];
    size_t wl = expect_echo(k->req, k->reqlen, want);
    return k->rc == (ssize_t)wl && memcmp(k->resp, want, wl) == 0;
}

/* A calls, B calls 50 ms later; both joined. */
static void pair_call(ferry_rpc_client *c, int test, caller *a, caller *b, size_t acap,
                      int64_t atimeout)
{
    *a = (caller){.c = c, .test = test, .arg = 1, .cap = acap, .timeout = atimeout};
    *b = (caller){.c = c, .test = test, .arg = 2, .cap = sizeof b->resp, .timeout = 5000000000LL};
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, call_thread, a) == 0);
    usleep(50000);
    /* A's id here is 7 (ids count from 1: two calls each in tests 1-3), but the solo call
     * is in no table: nobody can cancel it (the slow path would have let this guess end
     * it with -ECANCELED). */
    if (test == T_TIMEOUT) CHECK_EQ(ferry_call_cancel(c, 7), -ENOENT);
    CHECK(pthread_create(&tb, NULL, call_thread, b) == 0);
    CHECK(pthread_join(ta, NULL) == 0);
    CHECK(pthread_join(tb, NULL) == 0);
}

int main(void)
{
    int fds = fd_count();
    ferry_chan *cc, *sc;
    CHECK_EQ(ferry_pair(NULL, &cc, &sc), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_chan_close(cc);
        server(sc);
    }
    ferry_chan_close(sc);
    ferry_rpc_client *c;
    CHECK_EQ(ferry_rpc_client_create(cc, &c), 0);
    caller a, b;

    /* 1. */
    pair_call(c, T_SWAP, &a, &b, sizeof a.resp, 5000000000LL);
    CHECK(echo_ok(&a));
    CHECK(echo_ok(&b));
    printf("  1. a second caller follows the solo reader: ok\n");

    /* 2. */
    pair_call(c, T_BIG_B, &a, &b, 100, 5000000000LL);
    CHECK(echo_ok(&a));
    CHECK_EQ(b.rc, 3000);
    for (int i = 0; i < 3000; i++) CHECK_EQ(b.resp[i], 0xAB);
    printf("  2. a reply too long for the reader's buffer reaches its caller: ok\n");

    /* 3. */
    pair_call(c, T_BIG_A, &a, &b, 100, 5000000000LL);
    CHECK_EQ(a.rc, -EMSGSIZE);
    CHECK_EQ(a.len, 1000);
    CHECK(echo_ok(&b));
    printf("  3. the solo caller's own reply too long: -EMSGSIZE, len 1000: ok\n");

    /* 4. */
    int64_t t0 = mono_ns();
    pair_call(c, T_TIMEOUT, &a, &b, sizeof a.resp, 80000000LL);
    CHECK_EQ(a.rc, -ETIMEDOUT);
    CHECK(echo_ok(&b));
    printf("  4. the solo caller times out, the follower reads on: ok (%.0f ms)\n",
           (mono_ns() - t0) / 1e6);
    CHECK_EQ(ferry_rpc_dropped(c), 0);

    /* the connection goes on after all of it */
    caller k = {.c = c, .test = T_SWAP, .arg = 9, .cap = sizeof k.resp, .timeout = 5000000000LL};
    caller k2 = k;
    k2.arg = 10;
    pthread_t t1, t2;
    CHECK(pthread_create(&t1, NULL, call_thread, &k) == 0);
    CHECK(pthread_create(&t2, NULL, call_thread, &k2) == 0);
    CHECK(pthread_join(t1, NULL) == 0);
    CHECK(pthread_join(t2, NULL) == 0);
    CHECK(echo_ok(&k));
    CHECK(echo_ok(&k2));

    /* 5. */
    t0 = mono_ns();
    pair_call(c, T_DIE, &a, &b, sizeof a.resp, 5000000000LL);
    int64_t el = mono_ns() - t0;
    CHECK_EQ(a.rc, -EPIPE);
    CHECK_EQ(b.rc, -EPIPE);
    CHECK(el < 2000000000LL);
    caller d = {.c = c, .test = T_SWAP, .arg = 11, .cap = sizeof d.resp, .timeout = 5000000000LL};
    call_thread(&d);
    CHECK_EQ(d.rc, -EPIPE);
    printf("  5. the server dies under a solo reader and a follower: both -EPIPE in %.0f ms: "
           "ok\n",
           el / 1e6);

    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ferry_rpc_client_close(c);
    CHECK_EQ(fd_count(), fds);
    printf("test_rpc_solo: ok\n");
    return 0;
}
