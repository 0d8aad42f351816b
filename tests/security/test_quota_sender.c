// SPDX-License-Identifier: MIT
/*
 * test_quota_sender — what others send a slow receiver is charged to the senders
 * (issue 11, finding 4).
 *   1. A server of uid 60090 never accepts. Clients of five uids (60091..60095), each
 *      allowed 1000 pending introductions, send it 150 CONNECTs each without waiting.
 *      Introductions that do not fit in the server's socket wait in ferryd, charged to
 *      the asker within a fair share of the server's queue: the senders get -EDQUOT, and
 *      the server keeps its connection and its name (before, they were charged to the
 *      server's uid, which went over its fds quota and was dropped with its names).
 *   2. root's bytes are unlimited, but one root connection that watches and never reads
 *      is still bounded: ferryd drops it once its queue is full, and its RSS stays
 *      bounded.
 * Needs root; otherwise prints SKIP.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include <ferry/ferry.h>

#define NSEND 5
#define NREQ  150

static const ident SLOW = {60090, 60090, 0, {0}};

static test_broker B;

/* ------------------------------------------------------------------ 1. a slow server */

typedef struct sender_args {
    int report; /* write end: {granted, refused} (ints) */
} sender_args;

static void sender(void *arg)
{
    sender_args *a = arg;
    int s = raw_dial(&B);
    uint8_t req[300];
    static uint8_t buf[FERRY__BMSG_MAX];
    for (int i = 0; i < NREQ; i++) {
        ferry__bw w = {.p = req, .cap = sizeof req};
        ferry__bw_str(&w, "org.qs.slow");
        ferry__bw_u32(&w, FERRY_KIND_UNIX);
        CHECK_EQ(ferry__bsend(s, FERRY__OP_CONNECT, (uint64_t)(i + 1), w.p, w.len, -1), 0);
    }
    int res[2] = {0, 0};
    for (int i = 0; i < NREQ; i++) {
        int64_t op;
        uint64_t seq;
        size_t len;
        int fd;
        CHECK_EQ(raw_next(s, buf, &op, &seq, &len, &fd, 10000), 1);
        CHECK_EQ(op, FERRY__OP_REPLY);
        ferry__br r = {.p = buf, .len = len};
        int st = (int)ferry__br_u32(&r);
        if (st == 0) {
            CHECK(fd >= 0);
            close(fd); /* the client's end of an introduction never accepted */
            res[0]++;
        } else {
            CHECK_EQ(st, -EDQUOT);
            CHECK_EQ(fd, -1);
            res[1]++;
        }
    }
    CHECK(write(a->report, res, sizeof res) == sizeof res);
    close(s);
}

static void test_slow_server(void)
{
    ferry_policy pol;
    ferry_policy_init(&pol);
    pol.mode = 0666;
    pid_t srv = start_server(&SLOW, "org.qs.slow", &pol, SRV_SINK);

    pid_t snd[NSEND];
    int rep[NSEND];
    for (int i = 0; i < NSEND; i++) {
        int p[2];
        CHECK(pipe(p) == 0);
        sender_args a = {.report = p[1]};
        ident id = {(uid_t)(60091 + i), (gid_t)(60091 + i), 0, {0}};
        snd[i] = spawn_as(&id, sender, &a);
        close(p[1]);
        rep[i] = p[0];
    }
    int granted = 0, refused = 0;
    for (int i = 0; i < NSEND; i++) {
        int r[2];
        CHECK_EQ(read(rep[i], r, sizeof r), sizeof r);
        close(rep[i]);
        wait_ok(snd[i]);
        printf("sender %d: %d introductions made, %d refused (-EDQUOT)\n", 60091 + i, r[0], r[1]);
        CHECK(r[0] > 0); /* each one got its share */
        granted += r[0];
        refused += r[1];
    }
    CHECK(refused > 0); /* the senders are refused ... */
    /* ... and the server is not dropped: it still owns its name. */
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.qs.slow", &in, 2 * SEC), 0);
    CHECK_EQ(in.pid, srv);
    CHECK_EQ(in.uid, SLOW.uid);
    CHECK_EQ(waitpid(srv, NULL, WNOHANG), 0);
    printf("slow server: %d introductions queued for it, %d refused; it keeps its name\n", granted,
           refused);
    kill_wait(srv);
}

/* ------------------------------------------------------------------ 2. a root reader */

static void test_root_never_reads(void)
{
    long rss0 = proc_rss_kb(B.pid);
    int watcher = raw_dial(&B);
    uint8_t req[300], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__bw_str(&w, "*");
    ferry__br r;
    CHECK_EQ(raw_call(watcher, FERRY__OP_WATCH, &w, buf, &r, NULL), 0);

    /* Names come and go: two events each, never read, about 200 bytes apiece. */
    int s = raw_dial(&B);
    ferry_policy pol;
    ferry_policy_init(&pol);
    int rounds = 0;
    for (; rounds < 8000; rounds++) {
        char nm[64];
        snprintf(nm, sizeof nm, "org.qs.churn%d.with.a.longer.name.to.make.events.bigger", rounds);
        w = (ferry__bw){.p = req, .cap = sizeof req};
        ferry__bw_register(&w, nm, &pol);
        CHECK_EQ(raw_call(s, FERRY__OP_REGISTER, &w, buf, &r, NULL), 0);
        w = (ferry__bw){.p = req, .cap = sizeof req};
        ferry__bw_str(&w, nm);
        CHECK_EQ(raw_call(s, FERRY__OP_UNREGISTER, &w, buf, &r, NULL), 0);
        if (rounds % 256 == 255) { /* dropped yet? (then its socket hangs up) */
            struct pollfd p = {.fd = watcher, .events = POLLIN};
            CHECK_EQ(poll(&p, 1, 0), 1);
            if (p.revents & POLLHUP) break;
        }
    }
    close(s);
    /* It was dropped: what its socket holds, then the end. */
    int64_t op;
    uint64_t seq;
    size_t len;
    int fd, rc, got = 0;
    while ((rc = raw_next(watcher, buf, &op, &seq, &len, &fd, 2000)) == 1) got++;
    CHECK_EQ(rc, -EPIPE);
    close(watcher);
    long rss = proc_rss_kb(B.pid);
    printf("root watcher that never reads: dropped after %d rounds (%d events were in its "
           "socket); ferryd RSS %ld -> %ld kB\n",
           rounds, got, rss0, rss);
    CHECK(rounds < 8000);
    CHECK(rss - rss0 < 16 * 1024); /* the queue's bound is 1 MiB (ASan's quarantine adds) */
}

int main(void)
{
    require_root();
    test_deadline(120);
    int fds = fd_count();
    broker_init(&B);
    char conf[512];
    int n = 0;
    for (int i = 0; i < NSEND; i++)
        n += snprintf(conf + n, sizeof conf - (size_t)n,
                      "quota pending 1000 %d\nquota fds 1000 %d\n", 60091 + i, 60091 + i);
    write_file(B.policy, conf);
    broker_run(&B, NULL);

    test_slow_server();
    test_root_never_reads();

    broker_stop(&B);
    CHECK_EQ(fd_count(), fds);
    printf("test_quota_sender: ok\n");
    return 0;
}
