// SPDX-License-Identifier: MIT
/*
 * secutil.h — helpers for the broker's security tests: children that drop to throwaway
 * uids/gids (setgroups + setresgid + setresuid), servers that run as such a uid, raw
 * protocol connections to ferryd, and ferryd's own fd count and RSS from /proc.
 * Include after testutil.h and brokerutil.h.
 */
#ifndef FERRY_SECUTIL_H
#define FERRY_SECUTIL_H

#include "broker/proto.h"

#include <ferry/ferry.h>
#include <grp.h>
#include <poll.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#define SEC ((int64_t)1000000000)
#define MS  ((int64_t)1000000)

/* An RPC handler (ferry_serve) that replies with who the caller is, as the server sees
 * it: ferry_rpc_server_peer_remote's name, or "err N" (its error). The relay tests
 * (test_relay_peer, test_cluster_rpc) serve with it. */
static inline void sec_who_handler(ferry_rpc_server *conn, ferry_rpc_request *rq, void *ctx)
{
    (void)ctx;
    char id[FERRY_REMOTE_ID_MAX + 1], out[160];
    ssize_t n = ferry_rpc_server_peer_remote(conn, id, sizeof id);
    int len =
        n >= 0 ? snprintf(out, sizeof out, "%s", id) : snprintf(out, sizeof out, "err %d", (int)n);
    for (uint32_t i = 0; i < rq->msg.nfds; i++) close(rq->msg.fds[i]);
    ferry_msg r = {.data = out, .len = (size_t)len};
    if (!rq->oneway) ferry_reply(conn, rq->id, &r, 5 * SEC);
}

/* Who a child becomes. uid 0: stays root. */
typedef struct ident {
    uid_t uid;
    gid_t gid;
    int ngroups;
    gid_t groups[4];
} ident;

static const ident ROOT = {0, 0, 0, {0}};

static inline void on_test_alarm(int sig)
{
    (void)sig;
    static const char m[] = "the test took too long\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    exit(1); /* not async-signal-safe, but it runs the cleanup: good enough for a test */
}

/* Fail (and clean up) instead of hanging until CTest's timeout. */
static inline void test_deadline(unsigned seconds)
{
    signal(SIGALRM, on_test_alarm);
    alarm(seconds);
}

static inline void require_root(void)
{
    if (geteuid() != 0) {
        printf("SKIP: not root\n");
        exit(0);
    }
}

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* Become id, and die with the parent (a failed test leaves no children behind). The
 * death signal is set last: a change of credentials clears it. */
static inline void become(const ident *id, pid_t parent)
{
    if (id->uid != 0) {
        CHECK(setgroups((size_t)id->ngroups, id->groups) == 0);
        CHECK(setresgid(id->gid, id->gid, id->gid) == 0);
        CHECK(setresuid(id->uid, id->uid, id->uid) == 0);
        CHECK(getuid() == id->uid && geteuid() == id->uid && getgid() == id->gid);
    }
    CHECK(prctl(PR_SET_PDEATHSIG, SIGKILL) == 0);
    if (getppid() != parent) _exit(1);
}

/* Fork a child that becomes id and runs fn(arg); it exits 0 when fn returns (a failed
 * CHECK exits 1). */
static inline pid_t spawn_as(const ident *id, void (*fn)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        become(id, parent);
        fn(arg);
        fflush(stdout);
        _exit(0);
    }
    return pid;
}

static inline void run_as(const ident *id, void (*fn)(void *), void *arg)
{
    wait_ok(spawn_as(id, fn, arg));
}

/* ------------------------------------------------------------------ servers */

enum {
    SRV_SERVE, /* accept forever: tell each client what ferry_chan_peer says of it, and
                  answer a message carrying an fd by writing "fd-ok" into that fd */
    SRV_LOST,  /* accept once and require -ECONNABORTED (the name was taken over) */
    SRV_SINK,  /* never accept */
};

typedef struct srv_args {
    const char *name;
    ferry_policy pol;
    int behaviour;
    int ready; /* write end of a pipe: the register result (int) */
} srv_args;

/* The first message a SRV_SERVE server sends on each channel. */
typedef struct srv_hello {
    ferry_cred client; /* as ferry_chan_peer said */
    uid_t server_uid;
    pid_t server_pid;
} srv_hello;

static inline void serve_one(ferry_chan *ch)
{
    srv_hello h = {.server_uid = getuid(), .server_pid = getpid()};
    CHECK_EQ(ferry_chan_peer(ch, &h.client), 0);
    CHECK_EQ(ferry_send(ch, &h, sizeof h, 5 * SEC), 0);
    for (;;) {
        char buf[64];
        ferry_msg m = {.data = buf, .cap = sizeof buf};
        ssize_t n = ferry_recvmsg(ch, &m, 0, 10 * SEC);
        if (n < 0) break; /* -EPIPE: the client is done */
        for (uint32_t i = 0; i < m.nfds; i++) {
            CHECK(write(m.fds[i], "fd-ok", 5) == 5);
            close(m.fds[i]);
        }
        CHECK_EQ(ferry_send(ch, "ack", 3, 5 * SEC), 0);
    }
    ferry_chan_close(ch);
}

static inline void server_main(void *arg)
{
    srv_args *a = arg;
    ferry_listener *l = NULL;
    int rc = ferry_register(a->name, &a->pol, NULL, &l, 5 * SEC);
    CHECK(write(a->ready, &rc, sizeof rc) == sizeof rc);
    close(a->ready);
    if (rc < 0) return;
    switch (a->behaviour) {
    case SRV_SERVE:
        for (;;) {
            ferry_chan *ch;
            rc = ferry_accept(l, &ch, FERRY_FOREVER);
            if (rc == -ECONNABORTED) break;
            CHECK_EQ(rc, 0);
            serve_one(ch);
        }
        break;
    case SRV_LOST: {
        ferry_chan *ch;
        CHECK_EQ(ferry_accept(l, &ch, 10 * SEC), -ECONNABORTED);
        CHECK_EQ(ferry_accept(l, &ch, 0), -ECONNABORTED); /* for good */
        break;
    }
    case SRV_SINK:
        for (;;) pause();
    }
    ferry_listener_close(l);
}

/* Start a server as id for name with policy pol (NULL: the defaults). Returns its pid
 * and its register result in *rc (on failure the child exits 0 by itself: wait_ok it). */
static inline pid_t spawn_server(const ident *id, const char *name, const ferry_policy *pol,
                                 int behaviour, int *rc)
{
    int p[2];
    CHECK(pipe(p) == 0);
    srv_args a = {.name = name, .behaviour = behaviour, .ready = p[1]};
    if (pol)
        a.pol = *pol;
    else
        ferry_policy_init(&a.pol);
    pid_t pid = spawn_as(id, server_main, &a);
    close(p[1]);
    CHECK(read(p[0], rc, sizeof *rc) == sizeof *rc);
    close(p[0]);
    return pid;
}

/* A server that must register: returns its pid. */
static inline pid_t start_server(const ident *id, const char *name, const ferry_policy *pol,
                                 int behaviour)
{
    int rc;
    pid_t pid = spawn_server(id, name, pol, behaviour, &rc);
    if (rc != 0) fprintf(stderr, "start_server %s as uid %u: %d\n", name, id->uid, rc);
    CHECK_EQ(rc, 0);
    return pid;
}

static inline void kill_wait(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* Connect to name (unix or shm kind) and check the introduction: the server saw our
 * kernel identity, we see the server's. Returns 0 or the ferry_connect error. */
static inline int connect_check(const char *name, int kind, uid_t srv_uid, pid_t srv_pid)
{
    ferry_chan *ch;
    int rc = ferry_connect(name, kind, NULL, &ch, 5 * SEC);
    if (rc < 0) return rc;
    srv_hello h;
    CHECK_EQ(ferry_recv(ch, &h, sizeof h, 5 * SEC), (ssize_t)sizeof h);
    CHECK_EQ(h.client.uid, getuid());
    CHECK_EQ(h.client.gid, getgid());
    CHECK_EQ(h.client.pid, getpid());
    CHECK_EQ(h.server_uid, srv_uid);
    if (srv_pid > 0) CHECK_EQ(h.server_pid, srv_pid);
    ferry_cred c;
    CHECK_EQ(ferry_chan_peer(ch, &c), 0);
    CHECK_EQ(c.uid, srv_uid);
    CHECK_EQ(c.pid, h.server_pid);
    ferry_chan_close(ch);
    return 0;
}

/* ------------------------------------------------------------------ raw protocol */

static inline int raw_dial(const test_broker *b)
{
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", b->sock);
    CHECK(connect(s, (struct sockaddr *)&sa, sizeof sa) == 0);
    return s;
}

/* The next packet from ferryd within timeout: 1 (op, seq, payload in buf, fd), or -EPIPE
 * (ferryd hung up), or -ETIMEDOUT. */
static inline int raw_next(int s, void *buf, int64_t *op, uint64_t *seq, size_t *len, int *fd,
                           int timeout_ms)
{
    struct pollfd p = {.fd = s, .events = POLLIN};
    int64_t end = now_ns() + timeout_ms * MS;
    for (;;) {
        int rc = ferry__brecv(s, buf, op, seq, len, fd);
        if (rc != 0) return rc;
        int left = (int)((end - now_ns()) / MS);
        if (left <= 0) return -ETIMEDOUT;
        poll(&p, 1, left);
    }
}

/* Require that ferryd hangs up on s (no packet before the end) within timeout_ms. */
static inline void expect_dropped(int s, int timeout_ms)
{
    uint8_t buf[FERRY__BMSG_MAX];
    int64_t op;
    uint64_t seq;
    size_t len;
    int fd;
    int rc = raw_next(s, buf, &op, &seq, &len, &fd, timeout_ms);
    if (rc == 1) fprintf(stderr, "expected a hang-up, got op %lld\n", (long long)op);
    CHECK_EQ(rc, -EPIPE);
    /* And writing now fails too. */
    CHECK_EQ(ferry__bsend(s, FERRY__OP_LOOKUP, 1, "\0\0", 2, -1), -EPIPE);
}

/* Send a request and return the status of its reply (which must carry seq, no fd unless
 * fd_out). The body after the status stays in buf at *off. */
static inline int raw_call(int s, int64_t op, const ferry__bw *w, uint8_t *buf, ferry__br *r,
                           int *fd_out)
{
    static uint64_t seq = 100;
    seq++;
    CHECK_EQ(ferry__bsend(s, op, seq, w->p, w->len, -1), 0);
    int64_t rop;
    uint64_t rseq;
    size_t len;
    int fd;
    CHECK_EQ(raw_next(s, buf, &rop, &rseq, &len, &fd, 5000), 1);
    CHECK_EQ(rop, FERRY__OP_REPLY);
    CHECK_EQ(rseq, seq);
    if (fd_out)
        *fd_out = fd;
    else
        CHECK_EQ(fd, -1);
    *r = (ferry__br){.p = buf, .len = len};
    return (int)ferry__br_u32(r);
}

/* ------------------------------------------------------------------ ferryd from outside */

static inline int proc_fd_count(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(p);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static inline long proc_rss_kb(pid_t pid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    CHECK(kb > 0);
    return kb;
}

static inline void write_file(const char *path, const char *text)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
    CHECK(rename(tmp, path) == 0);
}

#endif
