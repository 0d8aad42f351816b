// SPDX-License-Identifier: MIT
/*
 * test_cluster_rpc — RPC across hosts through ferry-bridge and NATS (docs/cluster.md),
 * between two network namespaces (clusterutil.h): a name served on host A and exported
 * is called from host B by an unprivileged caller with the plain ferry API; unknown and
 * unexported names are -ENOENT; a name exported to another user is -EACCES; a call past
 * its deadline is -ETIMEDOUT and the next one gets its own reply; no call is delivered
 * twice (the server counts); a request with fds is -EOPNOTSUPP at the caller and the
 * connection goes on; a server's reply with fds is -EOPNOTSUPP at the server, which then
 * replies without them to the same request; kill -9 of the remote owner gives the pending caller
 * -EPIPE (the time is printed) and the name goes; B's nats-server stopped: the names go
 * (-ENOENT), restarted: calls work again (the time is printed). Replies that find their
 * caller gone are dropped, never delivered to anyone else, and each request is handled
 * once: a caller killed during its call ("gone"), and a call in flight while B's
 * nats-server is stopped and started again (-EPIPE at the caller, "inflight"); many calls
 * back to back across several of cnats's 1 s pings ("steady": none fails; a first
 * version of the bridge's loop reading and writing the NATS socket itself sometimes
 * wrote with nothing to write after a ping, which cnats takes for a closed connection). The remote
 * caller's NATS user reaches a server that trusts the bridge's uid (FERRY_TRUST_RELAY):
 * ferry_rpc_server_peer_remote says "hostb" there, -ENOENT at a server without the
 * flag, and -ENOENT for a local client on A that names "hostb" itself. Skipped (77) when
 * not root or without `ip` / nats-server.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "clusterutil.h"

#include <ferry/ferry.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/random.h>

#define HB_MS "200"

/* Shared with the children (MAP_SHARED before fork). */
typedef struct shared {
    _Atomic int64_t kill_ns;  /* when the parent killed the slow server */
    _Atomic int in_call;      /* the caller is in its call */
    _Atomic int64_t epipe_ns; /* how long after the kill the caller saw -EPIPE */
    _Atomic int64_t gone_ns;  /* ... and the name was gone on B */
    _Atomic int64_t lost_ns;  /* B's nats-server stopped -> names gone on B */
    _Atomic int64_t back_ns;  /* restarted -> a call works again */
    _Atomic int64_t stop_ns, start_ns;
    _Atomic int inflight; /* caller_inflight is in its call */
} shared;

static shared *sh;
static cluster C;

/* ------------------------------------------------------------------ servers on A */

static void server_child(void *arg)
{
    cl_serve_forever(arg, cl_reverse, 4);
}

/* "org.test.w.trust": trusts the bridge's uid to name the remote caller; "org.test.w.plain":
 * does not. Both let the bridge and A's local CALLER_UID connect. */
static void server_who(void *arg)
{
    int trust = arg != NULL;
    ferry_policy pol;
    cl_bridge_policy(&pol);
    pol.allow_uids[pol.n_uids++] = CALLER_UID;
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    if (trust) o.flags |= FERRY_TRUST_RELAY;
    o.relay_uid = BRIDGE_UID;
    ferry_rpc_service *svc;
    CHECK_EQ(ferry_serve(trust ? "org.test.w.trust" : "org.test.w.plain", sec_who_handler, NULL, 2,
                         &pol, &o, &svc, 5 * SEC),
             0);
    for (;;) pause();
}

/* Call name (connecting with relay_for, kind) and require the answer want. */
static void who_is(const char *name, int kind, const char *relay_for, const char *want)
{
    CHECK_EQ(cl_wait_name(name, 1, 20 * SEC), 0);
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.relay_for = relay_for;
    ferry_rpc_client *c;
    CHECK_EQ(ferry_rpc_connect(name, kind, &o, &c, 5 * SEC), 0);
    char buf[160];
    ferry_msg req = {.data = "who", .len = 3}, resp = {.data = buf, .cap = sizeof buf - 1};
    ssize_t n = ferry_call(c, &req, &resp, 5 * SEC);
    CHECK(n >= 0);
    buf[n] = 0;
    printf("%s (kind %d, naming %s): %s\n", name, kind, relay_for ? relay_for : "nobody", buf);
    CHECK(strcmp(buf, want) == 0);
    ferry_rpc_client_close(c);
}

/* On B: the server on A sees B's NATS user, whatever B's caller names itself. */
static void caller_who(void *arg)
{
    (void)arg;
    CHECK_EQ(getuid(), CALLER_UID);
    who_is("org.test.w.trust", FERRY_KIND_SHM, NULL, "hostb");
    who_is("org.test.w.trust", FERRY_KIND_UNIX, "admin", "hostb"); /* B's proxy ignores it */
    who_is("org.test.w.plain", FERRY_KIND_SHM, NULL, "err -2");
}

/* On A: a local client that is not the bridge names "hostb": not believed. */
static void local_spoofer(void *arg)
{
    (void)arg;
    CHECK_EQ(getuid(), CALLER_UID);
    who_is("org.test.w.trust", FERRY_KIND_UNIX, "hostb", "err -2");
    who_is("org.test.w.trust", FERRY_KIND_UNIX, NULL, "err -2");
}

/* ------------------------------------------------------------------ callers on B */

static ssize_t call_str(ferry_rpc_client *c, const char *s, char *buf, size_t cap, int64_t t)
{
    ferry_msg req = {.data = (void *)s, .len = strlen(s)};
    ferry_msg resp = {.data = buf, .cap = cap};
    return ferry_call(c, &req, &resp, t);
}

static void caller_basic(void *arg)
{
    (void)arg;
    CHECK_EQ(getuid(), CALLER_UID);
    CHECK_EQ(cl_wait_name("org.test.echo", 1, 20 * SEC), 0);
    ferry_rpc_client *c;
    CHECK_EQ(ferry_rpc_connect("org.test.echo", FERRY_KIND_SHM, NULL, &c, 5 * SEC), 0);

    /* round trips with unique payloads */
    int64_t t0 = now_ns();
    enum { N = 1000 };
    for (int i = 0; i < N; i++) {
        char msg[64], want[64], buf[128];
        int n = snprintf(msg, sizeof msg, "call-%d-%u", i, (unsigned)random());
        for (int k = 0; k < n; k++) want[k] = msg[n - 1 - k];
        ssize_t got = call_str(c, msg, buf, sizeof buf, 5 * SEC);
        CHECK_EQ(got, n);
        CHECK(memcmp(buf, want, (size_t)n) == 0);
    }
    printf("%d round trips across the namespaces: %.1f us each\n", N,
           (double)(now_ns() - t0) / N / 1000.0);

    /* a request with fds: -EOPNOTSUPP at the caller, nothing sent (the count below stays
     * N), and the connection goes on (the proxy said FERRY_NO_FDS in the handshake) */
    {
        int p[2];
        CHECK(pipe(p) == 0);
        char buf[16];
        ferry_msg req = {.data = "fd", .len = 2, .fds = {p[0]}, .nfds = 1};
        ferry_msg resp = {.data = buf, .cap = sizeof buf};
        CHECK_EQ(ferry_call(c, &req, &resp, 5 * SEC), -EOPNOTSUPP);
        uint64_t id;
        CHECK_EQ(ferry_call_start(c, &req, &resp, &id, 5 * SEC), -EOPNOTSUPP);
        close(p[0]);
        close(p[1]);
    }

    /* a reply with fds towards this remote caller: -EOPNOTSUPP at the server (the bridge
     * joined its connection with FERRY_NO_FDS), nothing sent, and the server's second
     * reply to the same request arrives (ferry_reply kept the id) */
    {
        char buf[32];
        ssize_t got = call_str(c, "fdreply", buf, sizeof buf, 5 * SEC);
        CHECK_EQ(got, 6);
        CHECK(memcmp(buf, "fd:-95", 6) == 0);
    }

    /* exactly once: the server handled N requests, no more */
    uint64_t count = 0;
    ferry_msg req = {.data = "count", .len = 5}, resp = {.data = &count, .cap = sizeof count};
    CHECK_EQ(ferry_call(c, &req, &resp, 5 * SEC), sizeof count);
    CHECK_EQ(count, N);

    /* a deadline passing: -ETIMEDOUT; the late reply is dropped, the next call gets its own */
    char buf[128];
    CHECK_EQ(call_str(c, "sleep:1500", buf, sizeof buf, 300 * MS), -ETIMEDOUT);
    CHECK_EQ(call_str(c, "after", buf, sizeof buf, 5 * SEC), 5);
    CHECK(memcmp(buf, "retfa", 5) == 0);
    sleep_ms(1500); /* the late reply arrives and is dropped */
    CHECK_EQ(call_str(c, "again", buf, sizeof buf, 5 * SEC), 5);
    CHECK(memcmp(buf, "niaga", 5) == 0);
    CHECK_EQ(ferry_call(c, &req, &resp, 5 * SEC), sizeof count);
    CHECK_EQ(count, N + 3); /* each delivered once */
    ferry_rpc_client_close(c);

    /* a name nobody has, and one A serves but does not export: -ENOENT */
    CHECK_EQ(ferry_rpc_connect("org.test.nobody", FERRY_KIND_SHM, NULL, &c, 2 * SEC), -ENOENT);
    CHECK_EQ(ferry_rpc_connect("org.test.private", FERRY_KIND_SHM, NULL, &c, 2 * SEC), -ENOENT);

    /* exported to hostc only: B's caller is refused */
    CHECK_EQ(cl_wait_name("org.test.secret", 1, 10 * SEC), 0);
    CHECK_EQ(ferry_rpc_connect("org.test.secret", FERRY_KIND_SHM, NULL, &c, 2 * SEC), -EACCES);
}

static void caller_death(void *arg)
{
    (void)arg;
    CHECK_EQ(cl_wait_name("org.test.slow", 1, 20 * SEC), 0);
    ferry_rpc_client *c;
    CHECK_EQ(ferry_rpc_connect("org.test.slow", FERRY_KIND_SHM, NULL, &c, 5 * SEC), 0);
    char buf[64];
    CHECK_EQ(call_str(c, "warm", buf, sizeof buf, 5 * SEC), 4);
    atomic_store(&sh->in_call, 1);
    CHECK_EQ(call_str(c, "sleep:20000", buf, sizeof buf, 20 * SEC), -EPIPE);
    int64_t t = now_ns();
    CHECK(atomic_load(&sh->kill_ns) > 0);
    atomic_store(&sh->epipe_ns, t - atomic_load(&sh->kill_ns));
    ferry_rpc_client_close(c);
    CHECK_EQ(cl_wait_name("org.test.slow", 0, 10 * SEC), 0);
    atomic_store(&sh->gone_ns, now_ns() - atomic_load(&sh->kill_ns));
}

/* The number of requests org.test.late's server handled (its count is not counted). */
static uint64_t late_count(ferry_rpc_client *c)
{
    uint64_t count = 0;
    ferry_msg req = {.data = "count", .len = 5}, resp = {.data = &count, .cap = sizeof count};
    CHECK_EQ(ferry_call(c, &req, &resp, 5 * SEC), sizeof count);
    return count;
}

/* A caller killed while its call is in the server: its reply reaches B's bridge for a
 * connection that is gone and is dropped; the next caller gets its own replies only, and
 * the server handled each request once. */
static void caller_gone(void *arg)
{
    (void)arg;
    CHECK_EQ(cl_wait_name("org.test.late", 1, 20 * SEC), 0);
    ferry_rpc_client *c;
    CHECK_EQ(ferry_rpc_connect("org.test.late", FERRY_KIND_SHM, NULL, &c, 5 * SEC), 0);
    CHECK_EQ(late_count(c), 0);
    pid_t k = fork();
    CHECK(k >= 0);
    if (k == 0) {
        ferry_rpc_client *kc;
        if (ferry_rpc_connect("org.test.late", FERRY_KIND_SHM, NULL, &kc, 5 * SEC) != 0) _exit(1);
        char buf[64];
        call_str(kc, "sleep:1500", buf, sizeof buf, 20 * SEC); /* killed in it */
        _exit(2);
    }
    int64_t end = now_ns() + 20 * SEC;
    while (late_count(c) < 1) { /* the request is in the server's handler */
        CHECK(now_ns() < end);
        sleep_ms(10);
    }
    kill(k, SIGKILL);
    int st;
    CHECK_EQ(waitpid(k, &st, 0), k);
    CHECK(WIFSIGNALED(st));
    sleep_ms(2000); /* its reply comes (after 1.5 s) and is dropped */
    char buf[64];
    for (int i = 0; i < 20; i++) {
        char msg[32], want[32];
        int n = snprintf(msg, sizeof msg, "next-%d", i);
        for (int j = 0; j < n; j++) want[j] = msg[n - 1 - j];
        CHECK_EQ(call_str(c, msg, buf, sizeof buf, 5 * SEC), n);
        CHECK(memcmp(buf, want, (size_t)n) == 0);
    }
    CHECK_EQ(late_count(c), 21);
    ferry_rpc_client_close(c);
}

/* A call in flight while the parent stops B's nats-server: -EPIPE (the imported name
 * went with the connection); its late reply is delivered nowhere; after the restart the
 * server counts it once. */
static void caller_inflight(void *arg)
{
    (void)arg;
    CHECK_EQ(cl_wait_name("org.test.late", 1, 20 * SEC), 0);
    ferry_rpc_client *c;
    CHECK_EQ(ferry_rpc_connect("org.test.late", FERRY_KIND_SHM, NULL, &c, 5 * SEC), 0);
    uint64_t before = late_count(c);
    atomic_store(&sh->inflight, 1);
    char buf[64];
    CHECK_EQ(call_str(c, "sleep:3000", buf, sizeof buf, 30 * SEC), -EPIPE);
    ferry_rpc_client_close(c);
    /* back: the name is imported again once NATS is */
    int64_t end = now_ns() + 30 * SEC;
    for (;;) {
        if (ferry_rpc_connect("org.test.late", FERRY_KIND_SHM, NULL, &c, 2 * SEC) == 0) break;
        CHECK(now_ns() < end);
        sleep_ms(20);
    }
    sleep_ms(3500); /* the sleeping request's reply has come and gone by now */
    CHECK_EQ(call_str(c, "fresh", buf, sizeof buf, 5 * SEC), 5);
    CHECK(memcmp(buf, "hserf", 5) == 0);
    CHECK_EQ(late_count(c), before + 2);
    ferry_rpc_client_close(c);
}

/* Calls back to back for 3.5 s (several of cnats's 1 s pings and the bridge's heartbeats
 * cross them): each one gets its own reply. */
static void caller_steady(void *arg)
{
    (void)arg;
    CHECK_EQ(cl_wait_name("org.test.echo", 1, 20 * SEC), 0);
    ferry_rpc_client *c;
    CHECK_EQ(ferry_rpc_connect("org.test.echo", FERRY_KIND_SHM, NULL, &c, 5 * SEC), 0);
    int64_t end = now_ns() + 3500 * MS;
    long n = 0;
    while (now_ns() < end) {
        char msg[32], want[32], buf[32];
        int len = snprintf(msg, sizeof msg, "s-%ld", n);
        for (int j = 0; j < len; j++) want[j] = msg[len - 1 - j];
        CHECK_EQ(call_str(c, msg, buf, sizeof buf, 5 * SEC), len);
        CHECK(memcmp(buf, want, (size_t)len) == 0);
        n++;
    }
    printf("steady: %ld calls in 3.5 s, none failed\n", n);
    ferry_rpc_client_close(c);
}

/* Connect to name and call it with msg, again every 20 ms until a call gets its
 * reversed reply (within limit_ns). */
static void call_works(const char *name, const char *msg, int64_t limit_ns)
{
    int64_t end = now_ns() + limit_ns;
    for (;;) {
        ferry_rpc_client *c;
        if (ferry_rpc_connect(name, FERRY_KIND_SHM, NULL, &c, 2 * SEC) == 0) {
            char buf[64];
            ssize_t rc = call_str(c, msg, buf, sizeof buf, 2 * SEC);
            ferry_rpc_client_close(c);
            if (rc == (ssize_t)strlen(msg)) return;
        }
        CHECK(now_ns() < end);
        sleep_ms(20);
    }
}

static void caller_partition(void *arg)
{
    (void)arg;
    /* the parent stops B's nats-server meanwhile */
    while (atomic_load(&sh->stop_ns) == 0) sleep_ms(5);
    CHECK_EQ(cl_wait_name("org.test.echo", 0, 10 * SEC), 0);
    atomic_store(&sh->lost_ns, now_ns() - atomic_load(&sh->stop_ns));
    while (atomic_load(&sh->start_ns) == 0) sleep_ms(5);
    call_works("org.test.echo", "back", 30 * SEC);
    atomic_store(&sh->back_ns, now_ns() - atomic_load(&sh->start_ns));
}

/* After B's ferryd restarted: the name comes back on B and a call works. */
static void caller_again(void *arg)
{
    (void)arg;
    call_works("org.test.echo", "again", 20 * SEC);
}

int main(void)
{
    sh = cl_begin(&C, 170, sizeof *sh);
    host *A = &C.h[0], *B = &C.h[1];
    const char *exp_a[] = {"--export",
                           "org.test.echo=hostb",
                           "--export",
                           "org.test.slow=hostb",
                           "--export",
                           "org.test.secret=hostc",
                           "--export",
                           "org.test.w.*=hostb",
                           "--export",
                           "org.test.late=hostb",
                           "--import",
                           "org.test.*",
                           "--heartbeat-ms",
                           HB_MS,
                           "--call-timeout-ms",
                           "10000",
                           NULL};
    const char *exp_b[] = {"--import", "org.test.*", "--heartbeat-ms", HB_MS, NULL};
    cl_bridges(&C, exp_a, exp_b);
    pid_t s_echo = cl_spawn(A, &ROOT, server_child, "org.test.echo");
    pid_t s_slow = cl_spawn(A, &ROOT, server_child, "org.test.slow");
    pid_t s_late = cl_spawn(A, &ROOT, server_child, "org.test.late");
    pid_t s_secret = cl_spawn(A, &ROOT, server_child, "org.test.secret");
    pid_t s_private = cl_spawn(A, &ROOT, server_child, "org.test.private");
    pid_t s_who = cl_spawn(A, &ROOT, server_who, "trust");
    pid_t s_whonot = cl_spawn(A, &ROOT, server_who, NULL);

    wait_ok(cl_spawn(B, &CALLER_ID, caller_basic, NULL));
    wait_ok(cl_spawn(B, &CALLER_ID, caller_who, NULL));
    wait_ok(cl_spawn(A, &CALLER_ID, local_spoofer, NULL));
    wait_ok(cl_spawn(B, &CALLER_ID, caller_steady, NULL));
    wait_ok(cl_spawn(B, &CALLER_ID, caller_gone, NULL));

    /* kill -9 of the remote owner during a call */
    pid_t d = cl_spawn(B, &CALLER_ID, caller_death, NULL);
    while (!atomic_load(&sh->in_call)) sleep_ms(5);
    sleep_ms(300); /* the call is on its way or in the handler */
    atomic_store(&sh->kill_ns, now_ns());
    kill(s_slow, SIGKILL);
    waitpid(s_slow, NULL, 0);
    wait_ok(d);
    printf("remote owner killed: caller -EPIPE after %.1f ms, name gone on B after %.1f ms\n",
           (double)atomic_load(&sh->epipe_ns) / 1e6, (double)atomic_load(&sh->gone_ns) / 1e6);
    CHECK(atomic_load(&sh->epipe_ns) < 2 * SEC);

    /* B's nats-server stopped and restarted, a call in flight */
    pid_t inf = cl_spawn(B, &CALLER_ID, caller_inflight, NULL);
    while (!atomic_load(&sh->inflight)) sleep_ms(5);
    pid_t p = cl_spawn(B, &CALLER_ID, caller_partition, NULL);
    sleep_ms(300); /* the call is on its way or in the handler */
    atomic_store(&sh->stop_ns, now_ns());
    cl_nats_stop(&C, 1);
    while (atomic_load(&sh->lost_ns) == 0) {
        int st;
        CHECK(waitpid(p, &st, WNOHANG) == 0); /* the caller must not have failed */
        sleep_ms(10);
    }
    sleep_ms(500);
    atomic_store(&sh->start_ns, now_ns());
    cl_nats_start(&C, 1);
    wait_ok(p);
    wait_ok(inf);
    printf("B's nats-server stopped: names gone on B after %.1f ms; restarted: a call works "
           "after %.1f ms\n",
           (double)atomic_load(&sh->lost_ns) / 1e6, (double)atomic_load(&sh->back_ns) / 1e6);

    /* B's ferryd killed and started again: the proxies register again by themselves */
    cl_ferryd_restart(B);
    int64_t t_ferryd = now_ns();
    wait_ok(cl_spawn(B, &CALLER_ID, caller_again, NULL));
    printf("B's ferryd restarted: a call works again after %.1f ms\n",
           (double)(now_ns() - t_ferryd) / 1e6);

    cl_kill(&s_late);
    cl_kill(&s_echo);
    cl_kill(&s_secret);
    cl_kill(&s_private);
    cl_kill(&s_who);
    cl_kill(&s_whonot);
    cl_down(&C);
    printf("ok\n");
    return 0;
}
