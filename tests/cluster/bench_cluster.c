// SPDX-License-Identifier: MIT
/*
 * bench_cluster — ferry-cluster-bench: request/reply between two network namespaces
 * (clusterutil.h: a veth pair, a nats-server per namespace clustered by a route), 64 B,
 * one call at a time, the rows of docs/cluster.md:
 *   ferry-nats-rpc  ferry_call on host B to a ferry_serve name on host A, through both
 *                   ferry-bridges and both nats-servers
 *   nats-reqrep     the baseline: a direct cnats request/reply between the same two
 *                   namespaces along the same path (B's client -> nats B -> route ->
 *                   nats A -> A's responder), SendAsap on both ends as the bridge does
 *   zeromq-reqrep   libzmq REQ/REP over tcp between the namespaces (when built with libzmq)
 * Usage: ferry-cluster-bench [ITERATIONS [REPEAT]] (default 5000 x 3). Needs root (network
 * namespaces): otherwise it says so and exits 77. Prints p50/p99/p99.9 in us per row and
 * the ratio ferry-nats-rpc p50 / nats-reqrep p50 (target <= 1.3) for each repetition.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "clusterutil.h"

#include <ferry/ferry.h>
#include <nats/nats.h>
#include <sys/mman.h>
#ifdef FERRY_BENCH_ZMQ
#include <zmq.h>
#endif

#define SIZE 64

static cluster C;
static int iters = 5000;

typedef struct result {
    double p50, p99, p999;
} result;
static result *res; /* shared with the measuring child */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void summarize(int64_t *lat, int n)
{
    qsort(lat, (size_t)n, sizeof *lat, cmp_i64);
    res->p50 = (double)lat[n / 2] / 1000.0;
    res->p99 = (double)lat[(int)((double)n * 0.99)] / 1000.0;
    res->p999 = (double)lat[(int)((double)n * 0.999)] / 1000.0;
}

/* ------------------------------------------------------------------ ferry-nats-rpc */

static void ferry_server(void *arg)
{
    (void)arg;
    cl_serve_forever("org.bench.echo", cl_echo, 1);
}

static void ferry_client(void *arg)
{
    (void)arg;
    ferry_rpc_client *c = cl_rpc_connect("org.bench.echo");
    char in[SIZE] = {1}, out[SIZE];
    ferry_msg q = {.data = in, .len = SIZE}, r = {.data = out, .cap = SIZE};
    for (int i = 0; i < 500; i++) CHECK_EQ(ferry_call(c, &q, &r, 5 * SEC), SIZE);
    int64_t *lat = malloc(sizeof *lat * (size_t)iters);
    CHECK(lat);
    for (int i = 0; i < iters; i++) {
        int64_t t = now_ns();
        CHECK_EQ(ferry_call(c, &q, &r, 5 * SEC), SIZE);
        lat[i] = now_ns() - t;
    }
    summarize(lat, iters);
    free(lat);
    ferry_rpc_client_close(c);
}

/* ------------------------------------------------------------------ nats-reqrep */

static natsConnection *nats_conn(const char *url, const char *user, const char *pw)
{
    natsOptions *o;
    natsConnection *nc;
    CHECK(natsOptions_Create(&o) == NATS_OK);
    CHECK(natsOptions_SetURL(o, url) == NATS_OK);
    CHECK(natsOptions_SetUserInfo(o, user, pw) == NATS_OK);
    CHECK(natsOptions_SetSendAsap(o, true) == NATS_OK);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "ferry.t.reply.%s", user);
    CHECK(natsOptions_SetCustomInboxPrefix(o, prefix) == NATS_OK);
    CHECK(natsConnection_Connect(&nc, o) == NATS_OK);
    natsOptions_Destroy(o);
    return nc;
}

static void nats_responder(void *arg)
{
    (void)arg;
    natsConnection *nc = nats_conn("nats://10.99.0.1:4222", "hosta", C.pw[0]);
    natsSubscription *sub;
    CHECK(natsConnection_SubscribeSync(&sub, nc, "ferry.t.rpc.hosta.hostb.bench") == NATS_OK);
    natsConnection_Flush(nc);
    for (;;) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 60000) != NATS_OK) break;
        natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
                               natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
    }
}

static void nats_requester(void *arg)
{
    (void)arg;
    natsConnection *nc = nats_conn("nats://10.99.0.2:4222", "hostb", C.pw[1]);
    char in[SIZE] = {1};
    natsMsg *r = NULL;
    int64_t end = now_ns() + 20 * SEC;
    while (natsConnection_Request(&r, nc, "ferry.t.rpc.hosta.hostb.bench", in, SIZE, 500) !=
           NATS_OK) {
        CHECK(now_ns() < end); /* until the responder's interest crossed the route */
        sleep_ms(20);
    }
    natsMsg_Destroy(r);
    for (int i = 0; i < 500; i++) {
        CHECK(natsConnection_Request(&r, nc, "ferry.t.rpc.hosta.hostb.bench", in, SIZE, 5000) ==
              NATS_OK);
        natsMsg_Destroy(r);
    }
    int64_t *lat = malloc(sizeof *lat * (size_t)iters);
    CHECK(lat);
    for (int i = 0; i < iters; i++) {
        int64_t t = now_ns();
        CHECK(natsConnection_Request(&r, nc, "ferry.t.rpc.hosta.hostb.bench", in, SIZE, 5000) ==
              NATS_OK);
        lat[i] = now_ns() - t;
        CHECK_EQ(natsMsg_GetDataLength(r), SIZE);
        natsMsg_Destroy(r);
    }
    summarize(lat, iters);
    free(lat);
    natsConnection_Destroy(nc);
}

/* ------------------------------------------------------------------ zeromq-reqrep */

#ifdef FERRY_BENCH_ZMQ
static void zmq_rep(void *arg)
{
    (void)arg;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_REP);
    CHECK(zmq_bind(s, "tcp://10.99.0.1:5555") == 0);
    char buf[SIZE];
    for (;;) {
        int n = zmq_recv(s, buf, sizeof buf, 0);
        if (n < 0) break;
        zmq_send(s, buf, (size_t)n, 0);
    }
}

static void zmq_req(void *arg)
{
    (void)arg;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_REQ);
    CHECK(zmq_connect(s, "tcp://10.99.0.1:5555") == 0);
    char in[SIZE] = {1}, out[SIZE];
    for (int i = 0; i < 500; i++) {
        CHECK(zmq_send(s, in, SIZE, 0) == SIZE);
        CHECK(zmq_recv(s, out, SIZE, 0) == SIZE);
    }
    int64_t *lat = malloc(sizeof *lat * (size_t)iters);
    CHECK(lat);
    for (int i = 0; i < iters; i++) {
        int64_t t = now_ns();
        CHECK(zmq_send(s, in, SIZE, 0) == SIZE);
        CHECK(zmq_recv(s, out, SIZE, 0) == SIZE);
        lat[i] = now_ns() - t;
    }
    summarize(lat, iters);
    free(lat);
    zmq_close(s);
    zmq_ctx_term(ctx);
}
#endif

static void row(const char *name, const result *r)
{
    printf("%-16s %5d B  p50 %8.1f us  p99 %8.1f us  p99.9 %8.1f us\n", name, SIZE, r->p50, r->p99,
           r->p999);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (geteuid() != 0) {
        printf("ferry-cluster-bench: skipped: not root (the rows need network namespaces)\n");
        return 77;
    }
    cl_require();
    if (argc > 1) iters = atoi(argv[1]);
    int repeat = argc > 2 ? atoi(argv[2]) : 3;
    if (iters < 100) iters = 100;
    if (repeat < 1) repeat = 1;
    res = mmap(NULL, sizeof *res, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(res != MAP_FAILED);
    cl_up(&C);
    host *A = &C.h[0], *B = &C.h[1];
    const char *exp_a[] = {"--export", "org.bench.echo=hostb", NULL};
    const char *exp_b[] = {"--import", "org.bench.*", NULL};
    cl_bridges(&C, exp_a, exp_b);
    pid_t srv = cl_spawn(A, &ROOT, ferry_server, NULL);
    pid_t rsp = cl_spawn(A, &ROOT, nats_responder, NULL);
#ifdef FERRY_BENCH_ZMQ
    pid_t zrep = cl_spawn(A, &ROOT, zmq_rep, NULL);
#endif
    printf("ferry-cluster-bench: request/reply between two network namespaces, %d calls, "
           "%d repetitions\n",
           iters, repeat);
    for (int k = 0; k < repeat; k++) {
        result f, n;
        wait_ok(cl_spawn(B, &CALLER_ID, ferry_client, NULL));
        f = *res;
        wait_ok(cl_spawn(B, &ROOT, nats_requester, NULL));
        n = *res;
        row("ferry-nats-rpc", &f);
        row("nats-reqrep", &n);
#ifdef FERRY_BENCH_ZMQ
        wait_ok(cl_spawn(B, &ROOT, zmq_req, NULL));
        row("zeromq-reqrep", res);
#else
        printf("zeromq-reqrep    (not built: libzmq was not found)\n");
#endif
        printf("ratio ferry-nats-rpc / nats-reqrep p50: %.2f (target <= 1.3)\n\n", f.p50 / n.p50);
    }
    cl_kill(&srv);
    cl_kill(&rsp);
#ifdef FERRY_BENCH_ZMQ
    cl_kill(&zrep);
#endif
    cl_down(&C);
    return 0;
}
