// SPDX-License-Identifier: MIT
/*
 * bench_nats.c — the rows of `ferry bench` between two network namespaces (bench_nats.h),
 * the ferry-nats-rpc target of docs/cluster.md measured like every other row.
 *
 * The world: two "hosts" as the cluster tests make them (tests/cluster/clusterutil.h): two
 * network namespaces with a veth pair between them, a nats-server in each clustered by a
 * route, a ferryd and a ferry-bridge in each (A exports org.bench.echo to hostb, B
 * imports org.bench.*; the default heartbeat). On A three servers wait: a ferry_serve
 * echo, a cnats responder (SendAsap) and, with libzmq, a REP socket on 10.99.0.1:5555.
 * A keeper process, forked by the first row that needs it, builds all of that (it is
 * the owner clusterutil.h cleans up for: its atexit and signal handlers are its own, not
 * the driver's) and tears it down when the driver closes its pipe (bench_nats_done) or
 * dies. The bridge is the ferry-bridge program ($FERRY_BRIDGE, else the one next to
 * ferry-bench: installed, or linked there in the build tree), copied into the world's 0755
 * directory because it runs as an unprivileged uid.
 *
 * A measurement: a child of the driver enters B's namespace (setns), connects (waiting
 * for the import or the responder's interest to cross the route) and times 64-byte round
 * trips with bench_loop_pingpong, every reply checked for its stamp; its figures come
 * back through a shared page. Nothing is pinned (the measuring child, the servers, the
 * bridges): up to six processes are on the path of one call.
 */
#define _GNU_SOURCE /* setns, CLONE_NEWNET */
#include "bench_nats.h"

static const char *bench_nats_ferryd_path(void);
static const char *bench_nats_bridge_path(void);
#define FERRYD_PATH       bench_nats_ferryd_path()
#define CL_BRIDGE_PROGRAM bench_nats_bridge_path()

#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "clusterutil.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef FERRY_BENCH_ZMQ
#include <zmq.h>
#endif

#define SIZE    64
#define SUBJECT "ferry.t.rpc.hosta.hostb.bench"

/* ------------------------------------------------------------------ programs */

/* The program `name` next to this one (the directory of /proc/self/exe), or in `rel`
 * from there, or NULL. path: a static buffer of the caller. */
static const char *beside_self(char *path, size_t cap, const char *rel)
{
    ssize_t n = readlink("/proc/self/exe", path, cap - 1);
    if (n <= 0) return NULL;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (!slash || (size_t)(slash + 1 - path) + strlen(rel) + 1 > cap) return NULL;
    strcpy(slash + 1, rel);
    return access(path, X_OK) == 0 ? path : NULL;
}

static const char *bench_nats_ferryd_path(void)
{
    static char path[4096];
    const char *env = getenv("FERRY_FERRYD");
    if (env && *env) return env;
    const char *p = beside_self(path, sizeof path, "ferryd");
#ifdef FERRY_BENCH_FERRYD_INSTALL
    if (!p && access(FERRY_BENCH_FERRYD_INSTALL, X_OK) == 0) p = FERRY_BENCH_FERRYD_INSTALL;
#endif
    return p;
}

/* The ferry-bridge program to copy into the world (its copy: world_bridge). */
static const char *bridge_source(void)
{
    static char path[4096];
    const char *env = getenv("FERRY_BRIDGE");
    if (env && *env) return access(env, X_OK) == 0 ? env : NULL;
    /* installed, or in the build tree, where CMake links one to the built ferry-bridge */
    const char *p = beside_self(path, sizeof path, "ferry-bridge");
#ifdef FERRY_BENCH_FERRYD_INSTALL
    if (!p) {
        /* installed beside ferryd */
        snprintf(path, sizeof path, "%s", FERRY_BENCH_FERRYD_INSTALL);
        char *slash = strrchr(path, '/');
        if (slash && (size_t)(slash - path) + sizeof "/ferry-bridge" <= sizeof path) {
            memcpy(slash, "/ferry-bridge", sizeof "/ferry-bridge");
            if (access(path, X_OK) == 0) p = path;
        }
    }
#endif
    return p;
}

static char world_bridge[160]; /* the copy in the world's directory (the keeper's) */

static const char *bench_nats_bridge_path(void)
{
    return world_bridge;
}

const char *bench_nats_unavailable(void)
{
    if (geteuid() != 0) return "needs root (it makes two network namespaces)";
    if (system("command -v ip >/dev/null 2>&1") != 0) return "no `ip` command (iproute2)";
    if (system("command -v nats-server >/dev/null 2>&1") != 0)
        return "no nats-server in PATH (Debian nats-server)";
    if (!bench_nats_ferryd_path()) return "no ferryd program ($FERRY_FERRYD names one)";
    if (!bridge_source())
        return "no ferry-bridge program (none next to ferry-bench nor installed; "
               "$FERRY_BRIDGE names one)";
    return NULL;
}

/* ------------------------------------------------------------------ the servers on A */

static cluster *W; /* the world: a shared page, written by the keeper */

static natsConnection *nats_conn(const char *url, const char *user, const char *pw)
{
    natsOptions *o;
    natsConnection *nc = NULL;
    if (natsOptions_Create(&o) != NATS_OK) return NULL;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "ferry.t.reply.%s", user);
    if (natsOptions_SetURL(o, url) != NATS_OK || natsOptions_SetUserInfo(o, user, pw) != NATS_OK ||
        natsOptions_SetSendAsap(o, true) != NATS_OK ||
        natsOptions_SetCustomInboxPrefix(o, prefix) != NATS_OK ||
        natsConnection_Connect(&nc, o) != NATS_OK)
        nc = NULL;
    natsOptions_Destroy(o);
    return nc;
}

static void ferry_server(void *arg)
{
    (void)arg;
    cl_serve_forever("org.bench.echo", cl_echo, 1);
}

static void nats_responder(void *arg)
{
    (void)arg;
    natsConnection *nc = nats_conn("nats://10.99.0.1:4222", "hosta", W->pw[0]);
    CHECK(nc != NULL);
    natsSubscription *sub;
    CHECK(natsConnection_SubscribeSync(&sub, nc, SUBJECT) == NATS_OK);
    natsConnection_Flush(nc);
    for (;;) {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, sub, 60000);
        if (s == NATS_TIMEOUT) continue;
        if (s != NATS_OK) break;
        natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
                               natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
    }
}

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
#endif

/* ------------------------------------------------------------------ the keeper */

static struct {
    pid_t pid;     /* the keeper, 0 before the first row, -1 once it failed */
    int cmd;       /* our end of its pipe: closing it stops the keeper */
    char why[160]; /* why the world is not there */
} K;

/* The keeper's body: build the world, say so on `ready`, wait for EOF on `cmd`, tear it
 * down. Never returns. */
static void keeper(int cmd, int ready)
{
    bench_child_signals();
    bench_unpin(); /* the servers and bridges run anywhere */
    cl_up(W);
    snprintf(world_bridge, sizeof world_bridge, "%s/ferry-bridge", W->dir);
    cl_sh("cp -- '%s' '%s' && chmod 0755 '%s'", bridge_source(), world_bridge, world_bridge);
    /* the default heartbeat (1 s, 5 missed: clusterutil.h): a shorter one lets a loaded
     * machine lapse the import in the middle of a row */
    const char *exp_a[] = {"--export", "org.bench.echo=hostb", NULL};
    const char *exp_b[] = {"--import", "org.bench.*", NULL};
    cl_bridges(W, exp_a, exp_b);
    host *A = &W->h[0];
    pid_t srv[3] = {cl_spawn(A, &ROOT, ferry_server, NULL),
                    cl_spawn(A, &ROOT, nats_responder, NULL), -1};
#ifdef FERRY_BENCH_ZMQ
    srv[2] = cl_spawn(A, &ROOT, zmq_rep, NULL);
#endif
    CHECK(write(ready, "r", 1) == 1);
    close(ready);
    char c;
    while (read(cmd, &c, 1) > 0) {
    }
    for (int i = 0; i < 3; i++) cl_kill(&srv[i]);
    cl_down(W);
    _exit(0);
}

/* Make sure the world is up: 0, or -1 with res->err set. */
static int world_up(bench_result *res)
{
    if (K.pid > 0) return 0;
    if (K.pid < 0) return bench_fail(res, "%s", K.why);
    if (!W) {
        W = mmap(NULL, sizeof *W, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (W == MAP_FAILED) {
            W = NULL;
            return bench_fail(res, "mmap: %s", strerror(errno));
        }
    }
    int cmd[2], ready[2];
    if (pipe2(cmd, O_CLOEXEC) != 0) return bench_fail(res, "pipe: %s", strerror(errno));
    if (pipe2(ready, O_CLOEXEC) != 0) {
        close(cmd[0]);
        close(cmd[1]);
        return bench_fail(res, "pipe: %s", strerror(errno));
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(cmd[1]);
        close(ready[0]);
        keeper(cmd[0], ready[1]);
    }
    close(cmd[0]);
    close(ready[1]);
    char c = 0;
    struct pollfd p = {.fd = ready[0], .events = POLLIN};
    int ok = pid > 0 && poll(&p, 1, 60000) == 1 && read(ready[0], &c, 1) == 1;
    close(ready[0]);
    if (!ok) {
        close(cmd[1]);
        if (pid > 0) {
            kill(pid, SIGTERM); /* its handler cleans up */
            waitpid(pid, NULL, 0);
        }
        K.pid = -1;
        snprintf(K.why, sizeof K.why,
                 "the two namespaces, nats-servers and bridges could not be set up (see above)");
        return bench_fail(res, "%s", K.why);
    }
    K.pid = pid;
    K.cmd = cmd[1];
    return 0;
}

void bench_nats_done(void)
{
    if (K.pid <= 0) return;
    close(K.cmd);
    waitpid(K.pid, NULL, 0);
    K.pid = 0;
}

/* ------------------------------------------------------------------ the measuring side */

/* Enter B's namespace with B's ferryd as the broker. 0, or -1 (a message on stderr). */
static int enter_b(void)
{
    const host *B = &W->h[1];
    char p[64];
    snprintf(p, sizeof p, "/run/netns/%s", B->ns);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "ferry bench: entering %s: %s\n", p, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    setenv("FERRY_BROKER", B->sock, 1);
    setenv("FERRY_NO_AUTOSPAWN", "1", 1);
    return 0;
}

typedef struct client {
    char in[SIZE], out[SIZE];
    ferry_rpc_client *rpc;
    natsConnection *nc;
    void *zs;
} client;

static int rt_ferry(void *ctx, uint64_t seq, bench_result *res)
{
    client *c = ctx;
    bench_stamp(c->in, SIZE, seq);
    ferry_msg q = {.data = c->in, .len = SIZE}, r = {.data = c->out, .cap = SIZE};
    ssize_t n = ferry_call(c->rpc, &q, &r, 5 * SEC);
    if (n != SIZE)
        return bench_fail(res, "ferry_call: %s", n < 0 ? ferry_strerror((int)n) : "size");
    if (!bench_stamp_ok(c->out, SIZE, seq)) return bench_fail(res, "a reply out of order");
    return 0;
}

static int rt_nats(void *ctx, uint64_t seq, bench_result *res)
{
    client *c = ctx;
    bench_stamp(c->in, SIZE, seq);
    natsMsg *m = NULL;
    natsStatus s = natsConnection_Request(&m, c->nc, SUBJECT, c->in, SIZE, 5000);
    if (s != NATS_OK) return bench_fail(res, "natsConnection_Request: %s", natsStatus_GetText(s));
    int ok = natsMsg_GetDataLength(m) == SIZE && bench_stamp_ok(natsMsg_GetData(m), SIZE, seq);
    natsMsg_Destroy(m);
    return ok ? 0 : bench_fail(res, "a reply out of order");
}

#ifdef FERRY_BENCH_ZMQ
static int rt_zmq(void *ctx, uint64_t seq, bench_result *res)
{
    client *c = ctx;
    bench_stamp(c->in, SIZE, seq);
    if (zmq_send(c->zs, c->in, SIZE, 0) != SIZE || zmq_recv(c->zs, c->out, SIZE, 0) != SIZE)
        return bench_fail(res, "zmq: %s", zmq_strerror(zmq_errno()));
    return bench_stamp_ok(c->out, SIZE, seq) ? 0 : bench_fail(res, "a reply out of order");
}
#endif

enum { ROW_FERRY, ROW_NATS, ROW_ZMQ };

/* In the measuring child: connect, then the pingpong loop. */
static int measure(const bench_job *job, int row, bench_result *res)
{
    if (enter_b() != 0) return bench_fail(res, "cannot enter host B's namespace");
    client c = {.in = {1}};
    bench_rt_fn rt = NULL;
    int64_t end = now_ns() + 20 * SEC;
    if (row == ROW_FERRY) {
        /* the name is imported once A's heartbeat reached B */
        while (ferry_rpc_connect("org.bench.echo", FERRY_KIND_SHM, NULL, &c.rpc, 2 * SEC) != 0) {
            if (now_ns() > end) return bench_fail(res, "org.bench.echo was not imported on B");
            sleep_ms(20);
        }
        rt = rt_ferry;
    } else if (row == ROW_NATS) {
        c.nc = nats_conn("nats://10.99.0.2:4222", "hostb", W->pw[1]);
        if (!c.nc) return bench_fail(res, "cannot connect to B's nats-server");
        natsMsg *m = NULL;
        /* until the responder's interest crossed the route */
        while (natsConnection_Request(&m, c.nc, SUBJECT, c.in, SIZE, 500) != NATS_OK) {
            if (now_ns() > end) return bench_fail(res, "no responder on A");
            sleep_ms(20);
        }
        natsMsg_Destroy(m);
        rt = rt_nats;
    } else {
#ifdef FERRY_BENCH_ZMQ
        void *ctx = zmq_ctx_new();
        c.zs = zmq_socket(ctx, ZMQ_REQ);
        int ms = 5000;
        zmq_setsockopt(c.zs, ZMQ_RCVTIMEO, &ms, sizeof ms);
        zmq_setsockopt(c.zs, ZMQ_SNDTIMEO, &ms, sizeof ms);
        if (zmq_connect(c.zs, "tcp://10.99.0.1:5555") != 0)
            return bench_fail(res, "zmq_connect: %s", zmq_strerror(zmq_errno()));
        rt = rt_zmq;
#endif
    }
    if (!rt) return bench_fail(res, "not built");
    return bench_loop_pingpong(job, rt, &c, res);
    /* the child exits: its connections go with it */
}

static int run_row(const bench_job *job, int row, bench_result *res)
{
    if (world_up(res) != 0) return -1;
    bench_result *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return bench_fail(res, "mmap: %s", strerror(errno));
    memset(sh, 0, sizeof *sh);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        bench_child_signals();
        bench_unpin(); /* as the servers and bridges: five processes share the path */
        int rc = measure(job, row, sh);
        _exit(rc == 0 ? 0 : 1);
    }
    int st = 0, rc = -1;
    if (pid < 0)
        bench_fail(res, "fork: %s", strerror(errno));
    else if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_fail(res, "%s", sh->err[0] ? sh->err : "the measuring child failed");
    else {
        *res = *sh;
        rc = 0;
    }
    munmap(sh, sizeof *sh);
    return rc;
}

/* ------------------------------------------------------------------ any row, across */

static int open_ns(int i)
{
    char p[64];
    snprintf(p, sizeof p, "/run/netns/%s", W->h[i].ns);
    return open(p, O_RDONLY | O_CLOEXEC);
}

int bench_netns_row(const bench_job *job, bench_result *res)
{
    const bench_netns_spec *spec = job->arg;
    if (world_up(res) != 0) return -1;
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), a = open_ns(0), b = open_ns(1);
    int rc = -1;
    if (self < 0 || a < 0 || b < 0) {
        bench_fail(res, "the namespaces: %s", strerror(errno));
    } else if (setns(a, CLONE_NEWNET) != 0) { /* the driver's side is on host A */
        bench_fail(res, "setns: %s", strerror(errno));
    } else {
        bench_netns_now = (bench_netns){a, b, W->h[0].addr};
        bench_job j = *job;
        j.arg = spec->arg;
        rc = spec->fn(&j, res);
        bench_netns_now = (bench_netns){-1, -1, NULL};
        if (setns(self, CLONE_NEWNET) != 0) { /* back: nothing else may run in A */
            fprintf(stderr, "ferry bench: cannot go back to our network namespace: %s\n",
                    strerror(errno));
            exit(1);
        }
    }
    if (self >= 0) close(self);
    if (a >= 0) close(a);
    if (b >= 0) close(b);
    return rc;
}

int bench_nats_ferry(const bench_job *job, bench_result *res)
{
    return run_row(job, ROW_FERRY, res);
}

int bench_nats_reqrep(const bench_job *job, bench_result *res)
{
    return run_row(job, ROW_NATS, res);
}

#ifdef FERRY_BENCH_ZMQ
int bench_nats_zmq(const bench_job *job, bench_result *res)
{
    return run_row(job, ROW_ZMQ, res);
}
#endif
