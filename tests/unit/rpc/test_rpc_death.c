// SPDX-License-Identifier: MIT
/*
 * test_rpc_death — the server dies with calls in flight:
 *  - kill -9: a forked server receives every request and never replies; 8 threads each
 *    wait in ferry_call (FERRY_FOREVER) and 50 async calls are pending; the server is
 *    killed with SIGKILL: every sync call returns -EPIPE within 100 ms of the kill (the
 *    slowest is printed), every async callback runs with -EPIPE, and a new call is -EPIPE
 *    at once;
 *  - a server that exits (not killed) between a request and its reply: the same -EPIPE;
 *  - no fd leaks.
 */
#include "rpctest.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#define NTHREADS 8
#define NASYNC   50

static ferry_rpc_client *cli;
static int64_t done_at[NTHREADS];
static _Atomic int started;

static pid_t start_server(int exit_after, ferry_chan **cl)
{
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(NULL, &a, &b), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_chan_close(a);
        ferry_rpc_server *s;
        CHECK_EQ(ferry_rpc_server_create(b, &s), 0);
        uint8_t buf[256];
        for (int n = 0;; n++) {
            ferry_rpc_request rq = {.msg = {.data = buf, .cap = sizeof buf}};
            ssize_t rc = ferry_recv_request(s, &rq, FERRY_FOREVER);
            if (rc == -EPIPE) _exit(0);
            CHECK(rc >= 0);
            if (n + 1 == exit_after) _exit(0);
        }
    }
    ferry_chan_close(b);
    *cl = a;
    return pid;
}

static void *caller(void *arg)
{
    int t = (int)(intptr_t)arg;
    uint8_t req[64], resp[64];
    ferry_msg q = {.data = req, .len = make_req(req, CMD_NOREPLY, 0, (uint64_t)t, 8)};
    ferry_msg r = {.data = resp, .cap = sizeof resp};
    started++;
    ssize_t rc = ferry_call(cli, &q, &r, FERRY_FOREVER);
    done_at[t] = mono_ns();
    CHECK_EQ(rc, -EPIPE);
    return NULL;
}

static int nasync;
static void on_reply(ferry_rpc_client *c, uint64_t id, ssize_t rc, ferry_msg *resp, void *ctx)
{
    (void)c, (void)id, (void)resp, (void)ctx;
    CHECK_EQ(rc, -EPIPE);
    nasync++;
}

int main(void)
{
    int fds0 = fd_count();
    ferry_chan *ch;

    /* kill -9 */
    pid_t pid = start_server(0, &ch);
    CHECK_EQ(ferry_rpc_client_create(ch, &cli), 0);
    static uint8_t areq[NASYNC][16], aresp[NASYNC][16];
    static ferry_msg ar[NASYNC];
    for (int i = 0; i < NASYNC; i++) {
        ferry_msg q = {.data = areq[i], .len = make_req(areq[i], CMD_NOREPLY, 0, 0, 0)};
        ar[i].data = aresp[i];
        ar[i].cap = sizeof aresp[i];
        CHECK_EQ(ferry_call_async(cli, &q, &ar[i], on_reply, NULL, NULL, FERRY_FOREVER), 0);
    }
    int fd = ferry_rpc_poll_fd(cli);
    CHECK(fd >= 0);
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++)
        CHECK_EQ(pthread_create(&th[t], NULL, caller, (void *)(intptr_t)t), 0);
    while (started < NTHREADS) sleep_ms_(1);
    sleep_ms_(100); /* the requests are sent and the callers asleep or reading */
    int64_t killed = mono_ns();
    CHECK_EQ(kill(pid, SIGKILL), 0);
    for (int t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
    int64_t worst = 0;
    for (int t = 0; t < NTHREADS; t++)
        if (done_at[t] - killed > worst) worst = done_at[t] - killed;
    printf("kill -9 -> all %d calls -EPIPE in %.2f ms\n", NTHREADS, worst / 1e6);
    CHECK(worst < 100 * 1000000LL);
    int64_t s = mono_ns();
    while (nasync < NASYNC) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        CHECK_EQ(poll(&p, 1, 1000), 1);
        ferry_rpc_dispatch(cli);
        CHECK(mono_ns() - s < 5LL * 1000000000);
    }
    CHECK_EQ(nasync, NASYNC);
    CHECK_EQ(ferry_rpc_dispatch(cli), -EPIPE);
    {
        uint8_t req[16], resp[16];
        ferry_msg q = {.data = req, .len = make_req(req, CMD_ECHO, 0, 0, 0)};
        ferry_msg r = {.data = resp, .cap = sizeof resp};
        CHECK_EQ(ferry_call(cli, &q, &r, FERRY_FOREVER), -EPIPE);
        CHECK_EQ(ferry_call_async(cli, &q, &r, on_reply, NULL, NULL, FERRY_FOREVER), -EPIPE);
    }
    ferry_rpc_client_close(cli);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    /* a server that exits after taking the request */
    pid = start_server(1, &ch);
    CHECK_EQ(ferry_rpc_client_create(ch, &cli), 0);
    {
        uint8_t req[16], resp[16];
        ferry_msg q = {.data = req, .len = make_req(req, CMD_ECHO, 0, 0, 0)};
        ferry_msg r = {.data = resp, .cap = sizeof resp};
        CHECK_EQ(ferry_call(cli, &q, &r, 10LL * 1000000000), -EPIPE);
    }
    ferry_rpc_client_close(cli);
    wait_ok(pid);

    CHECK_EQ(fd_count(), fds0);
    printf("ok\n");
    return 0;
}
