// SPDX-License-Identifier: MIT
/*
 * client.c — the library's side of the naming service (ferry.h, "the naming service"):
 * finding ferryd (and starting it), ferry_register and its listener, ferry_connect,
 * ferry_lookup, ferry_list and watches.
 *
 * Rules:
 *  - Each call or handle has its own connection to ferryd: a listener keeps one for as
 *    long as it owns its name (ferryd frees the name when it closes), a watch one for its
 *    events; connect, lookup and list open one for the call and close it. So nothing is
 *    shared between threads, and a fork copies nothing that matters.
 *  - Starting ferryd: when nobody listens on the broker's socket and FERRY_NO_AUTOSPAWN is
 *    unset, the program is spawned (it detaches, and exits at once if another instance
 *    holds the lock) with --exit-idle, then the connect is retried with backoff until the
 *    deadline (at most 5 s for the start).
 *  - A listener whose ferryd went away registers again: each ferry_accept (and a poll of
 *    its fd, which wakes when it is time to retry) tries, backing off 10 ms .. 1 s.
 *  - Requests wait for their reply within the caller's deadline; a reply that is not the
 *    one expected is -EBADMSG.
 *  - The broker's identity is checked before anything is sent: the socket's peer
 *    (SO_PEERCRED, the process that listened) must run as root, as this process's euid,
 *    or as $FERRY_BROKER_UID (a decimal uid; anything else in it is ignored). Otherwise
 *    the call is -EPERM and nothing is started in its place: whoever listens at the path
 *    could hand out channels with forged peer credentials. A ferryd started for a path
 *    whose directory others could write refuses to run (exit status 4): -EPERM too.
 *  - The environment (FERRY_BROKER, XDG_RUNTIME_DIR, FERRY_NO_AUTOSPAWN, FERRY_FERRYD,
 *    FERRY_BROKER_UID) is read with secure_getenv: a set-uid caller sees none of it.
 */
#define _GNU_SOURCE
#include "policy.h"
#include "proto.h"

#include "client.h"
#include "region/region.h"
#include "shm/obj.h"

#include "core/time.h"
#include "transport/fdchan.h"
#include "transport/sockutil.h"
#include "chan/chan.h"
#include "transport/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SPAWN_WAIT_NS  (5 * (int64_t)1000000000)
#define BACKOFF_MIN_NS (10 * (int64_t)1000000)
#define BACKOFF_MAX_NS ((int64_t)1000000000)
#define REREGISTER_NS  ((int64_t)1000000000)

ssize_t ferry_broker_path(char *buf, size_t cap)
{
    const char *env = secure_getenv("FERRY_BROKER"), *xdg = secure_getenv("XDG_RUNTIME_DIR");
    int n;
    if (env && *env)
        n = snprintf(buf, cap, "%s", env);
    else if (xdg && *xdg)
        n = snprintf(buf, cap, "%s/ferry/ferryd.sock", xdg);
    else
        n = snprintf(buf, cap, "/run/ferry/ferryd.sock");
    if (n < 0 || (size_t)n >= cap || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -ENAMETOOLONG;
    return n;
}

/* ------------------------------------------------------------------ reaching ferryd */

static int autospawn_allowed(void)
{
    const char *v = secure_getenv("FERRY_NO_AUTOSPAWN");
    return !v || !*v || strcmp(v, "0") == 0;
}

/* The ferryd program: $FERRY_FERRYD, else the installed one (FERRY_FERRYD_INSTALL: the
 * install prefix's BINDIR, set by CMake), else "ferryd" on PATH. Never a build tree's (a
 * deleted build directory would be a place to plant a program): tests and scripts name
 * theirs in $FERRY_FERRYD. Every variable read here goes through secure_getenv, so a
 * set-uid or otherwise privileged caller ignores them (and its PATH: no PATH search then,
 * NULL when the installed one is not there). */
static const char *ferryd_program(void)
{
    const char *env = secure_getenv("FERRY_FERRYD");
    if (env && *env) return env;
#ifdef FERRY_FERRYD_INSTALL
    if (access(FERRY_FERRYD_INSTALL, X_OK) == 0) return FERRY_FERRYD_INSTALL;
#endif
    if (getauxval(AT_SECURE)) return NULL;
    return "ferryd";
}

/* ferryd's exit status for a socket directory others could write (src/daemon/ferryd.c). */
#define FERRYD_UNSAFE_DIR 4

/* Start ferryd for path and wait for its starter to report (it exits once ferryd
 * listens, or at once when another one runs). Returns the starter's exit status, or -1
 * (it could not be started or was killed). */
static int spawn_ferryd(const char *path)
{
    const char *prog = ferryd_program();
    if (!prog) return -1;
    /* Its log goes to syslog (--syslog), never into the caller's stdio (which may be a
     * protocol stream): stdin, stdout and stderr are /dev/null from the start. */
    char *argv[] = {"ferryd", "--socket", (char *)path, "--exit-idle", "30", "--syslog", NULL};
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) return -1;
    int rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, 0, 1);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, 0, 2);
    pid_t pid;
    if (rc == 0)
        rc = strchr(prog, '/') ? posix_spawn(&pid, prog, &fa, NULL, argv, environ)
                               : posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The uid $FERRY_BROKER_UID names, if it is a plain decimal uid: 1, else 0. */
static int configured_broker_uid(uid_t *uid)
{
    const char *v = secure_getenv("FERRY_BROKER_UID");
    if (!v || *v < '0' || *v > '9') return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || n >= (uid_t)-1) return 0; /* (uid_t)-1 is no uid */
    *uid = (uid_t)n;
    return 1;
}

/* Is the process listening behind s a broker we may trust? 0, or -EPERM. */
static int check_broker(int s)
{
    struct ucred cr;
    socklen_t l = sizeof cr;
    if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0 || l != sizeof cr) return -EPERM;
    uid_t cfg;
    if (cr.uid == 0 || cr.uid == geteuid() || (configured_broker_uid(&cfg) && cr.uid == cfg))
        return 0;
    return -EPERM;
}

/* A connection to ferryd, starting it when allowed. Returns the socket or -errno
 * (-EPERM: the broker at the path runs as a uid this process does not trust, or the
 * ferryd started for it refused its directory as unsafe). */
static int dial(int64_t deadline)
{
    char path[108];
    struct sockaddr_un sa;
    socklen_t len;
    if (ferry_broker_path(path, sizeof path) < 0) return -ENAMETOOLONG;
    int rc = ferry__unix_addr(path, &sa, &len);
    if (rc < 0) return rc;
    int spawned = 0;
    int64_t backoff = 1000000, spawn_deadline = 0;
    for (;;) {
        int s = ferry__connect(AF_UNIX, SOCK_SEQPACKET, (struct sockaddr *)&sa, len, deadline);
        if (s >= 0) {
            if ((rc = check_broker(s)) == 0) return s;
            close(s); /* someone listens there: never start a ferryd over it */
            return rc;
        }
        if (s != -ENOENT && s != -ECONNREFUSED) return s;
        if (!autospawn_allowed()) return -ECONNREFUSED;
        if (!spawned) {
            /* ferryd refused the directory: whoever can write it could listen there. */
            if (spawn_ferryd(path) == FERRYD_UNSAFE_DIR) return -EPERM;
            spawned = 1;
            spawn_deadline = ferry__now_ns() + SPAWN_WAIT_NS;
            continue;
        }
        int64_t now = ferry__now_ns();
        if (now >= spawn_deadline) return -ECONNREFUSED;
        if (deadline != FERRY__NO_DEADLINE && now + backoff > deadline)
            return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
        usleep((useconds_t)(backoff / 1000));
        if (backoff < 50000000) backoff *= 2;
    }
}

static uint64_t next_seq(void)
{
    static _Atomic uint64_t seq;
    return atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed) + 1;
}

/* Wait for the next packet on s until deadline. Returns 1 or -errno (-EPIPE when ferryd
 * hung up). */
static int next_packet(int s, void *buf, int64_t *op, uint64_t *seq, size_t *len, int *fd,
                       int64_t deadline)
{
    for (;;) {
        int rc = ferry__brecv(s, buf, op, seq, len, fd);
        if (rc != 0) return rc;
        if ((rc = ferry__wait_fd(s, POLLIN, deadline)) < 0) return rc;
    }
}

/*
 * Send a request (with sendfd, unless -1; the caller keeps it) and wait for its reply: the
 * reply's body (after the status) is left in
 * r (reading from buf), its fd (if any) in *fd (owned by the caller; may be NULL when
 * none is expected). Returns the reply's status (0 or -errno) or an error of the exchange.
 */
static int call_fds(int s, int64_t op, const ferry__bw *req, const int *sendfds, int nsend,
                    void *buf, ferry__br *r, int *fd, int64_t deadline)
{
    uint64_t seq = next_seq();
    if (fd) *fd = -1;
    if (req->err) return req->err; /* it could not be encoded: never send half of it */
    int rc = ferry__bsendn(s, op, seq, req->p, req->len, sendfds, nsend);
    if (rc == -EAGAIN) { /* a fresh connection is never full; be correct anyway */
        if ((rc = ferry__wait_fd(s, POLLOUT, deadline)) == 0)
            rc = ferry__bsendn(s, op, seq, req->p, req->len, sendfds, nsend);
    }
    /* -EPIPE: ferryd may have refused the connection (quota) and hung up before the
     * request went out; its refusal then waits in the socket. Read it. */
    if (rc < 0 && rc != -EPIPE) return rc;
    int unsent = rc < 0;
    int64_t rop;
    uint64_t rseq;
    size_t len;
    int rfd;
    rc = next_packet(s, buf, &rop, &rseq, &len, &rfd, deadline);
    if (rc < 0) return rc == -EPIPE ? -ECONNREFUSED : rc;
    *r = (ferry__br){.p = buf, .len = len};
    int status = (int)ferry__br_u32(r);
    if (unsent && (rop != FERRY__OP_REPLY || rseq != 0 || r->err || status >= 0 || rfd >= 0)) {
        if (rfd >= 0) close(rfd);
        return -ECONNREFUSED;
    }
    /* seq 0: ferryd refused the connection itself (over the connections quota). */
    if (rop != FERRY__OP_REPLY || (rseq != seq && rseq != 0) || r->err || status > 0 ||
        (rseq == 0 && status == 0) || (rfd >= 0 && (!fd || status < 0))) {
        if (rfd >= 0) close(rfd);
        return -EBADMSG;
    }
    if (fd) *fd = rfd;
    return status;
}

/* call_fds with one descriptor to send (sendfd), or none (-1). */
static int call(int s, int64_t op, const ferry__bw *req, int sendfd, void *buf, ferry__br *r,
                int *fd, int64_t deadline)
{
    return call_fds(s, op, req, &sendfd, sendfd >= 0 ? 1 : 0, buf, r, fd, deadline);
}

/* A channel's link from ferryd must be non-blocking (the transports wait with their own
 * deadlines); do not count on the ferryd that sent it. 0 or -errno. */
static int link_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) return -errno;
    return 0;
}

/* ------------------------------------------------------------------ listener */

typedef struct blistener {
    struct ferry_listener base;
    int sock; /* connection to ferryd, or -1 while it is away */
    int ep;   /* ferry_listener_poll_fd: sock and tfd */
    int tfd;  /* fires when it is time to try registering again */
    int lost; /* 0, or why the name is gone for good (-ECONNABORTED, -EEXIST, ...) */
    int64_t backoff, retry_at;
    char name[FERRY__NAME_MAX + 1];
    ferry_policy pol;
    ferry_chan_opts opts;
} blistener;

/* Register on a new connection. 0, or -errno (the connection is then closed). */
static int do_register(blistener *l, int64_t deadline)
{
    int s = dial(deadline);
    if (s < 0) return s;
    uint8_t req[512], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__br r;
    ferry__bw_register(&w, l->name, &l->pol);
    int rc = w.err ? w.err : call(s, FERRY__OP_REGISTER, &w, -1, buf, &r, NULL, deadline);
    if (rc == 0 && ferry__br_end(&r) < 0) rc = -EBADMSG;
    if (rc < 0) {
        close(s);
        return rc;
    }
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = s;
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, s, &ev) < 0) {
        rc = -errno;
        close(s);
        return rc;
    }
    l->sock = s;
    l->backoff = 0;
    return 0;
}

static void lose_broker(blistener *l)
{
    if (l->sock >= 0) {
        close(l->sock); /* also leaves the epoll set */
        l->sock = -1;
    }
    l->retry_at = ferry__now_ns(); /* try again at once, then back off */
}

/* ferryd is away: try to register again when it is time. 0 when registered. */
static int reregister(blistener *l, int64_t deadline)
{
    for (;;) {
        uint64_t fired;
        if (read(l->tfd, &fired, sizeof fired) < 0) { /* not yet: nothing to clear */
        }
        int64_t now = ferry__now_ns();
        if (now >= l->retry_at) {
            /* The exchange gets its own bound: ferryd answers in microseconds, and even
             * a FERRY_NOW accept must be able to finish registering. */
            int rc = do_register(l, ferry__deadline_in(REREGISTER_NS));
            if (rc == 0) return 0;
            if (rc != -ECONNREFUSED && rc != -ETIMEDOUT && rc != -EAGAIN && rc != -EBADMSG) {
                l->lost = rc; /* e.g. someone else owns the name now: -EEXIST */
                return rc;
            }
            l->backoff = l->backoff ? l->backoff * 2 : BACKOFF_MIN_NS;
            if (l->backoff > BACKOFF_MAX_NS) l->backoff = BACKOFF_MAX_NS;
            l->retry_at = ferry__now_ns() + l->backoff;
            struct itimerspec its = {
                .it_value = {l->retry_at / 1000000000, l->retry_at % 1000000000}};
            timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        int64_t until =
            deadline == FERRY__NO_DEADLINE || l->retry_at < deadline ? l->retry_at : deadline;
        if (ferry__remaining(deadline) <= 0) return deadline == 0 ? -EAGAIN : -ETIMEDOUT;
        int rc = ferry__wait_fd(-1, 0, until); /* a sleep until the retry or the deadline */
        if (rc < 0 && rc != -ETIMEDOUT && rc != -EAGAIN) return rc;
    }
}

/* Turn an introduction into a channel. 1 made, 0 the client had gone (take the next),
 * -errno. */
static int take_intro(blistener *l, ferry__br *r, int fd, int64_t deadline, ferry_chan **out)
{
    uint64_t id = ferry__br_u64(r);
    uint32_t kind = ferry__br_u32(r);
    ferry_cred cred;
    ferry__br_cred(r, &cred);
    if (ferry__br_end(r) < 0 || fd < 0 || !ferry__chan_kind_ok((int)kind) ||
        link_nonblock(fd) < 0) {
        if (fd >= 0) close(fd);
        return -EBADMSG;
    }
    uint8_t req[8];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__bw_u64(&w, id);
    ferry__bsend(l->sock, FERRY__OP_ACCEPTED, next_seq(), w.p, w.len, -1);
    int rc = ferry__chan_from_sock((int)kind, fd, 1, &l->opts, &cred, deadline, out);
    if (rc == 0) return 1;
    return rc == -ENOMEM || rc == -EMFILE || rc == -ENFILE ? rc : 0;
}

static int bl_accept(ferry_listener *fl, ferry_chan **out, int64_t deadline)
{
    blistener *l = (blistener *)fl;
    uint8_t buf[FERRY__BMSG_MAX];
    for (;;) {
        if (l->lost) return l->lost;
        if (l->sock < 0) {
            int rc = reregister(l, deadline);
            if (rc < 0) return rc;
        }
        int64_t op;
        uint64_t seq;
        size_t len;
        int fd;
        int rc = next_packet(l->sock, buf, &op, &seq, &len, &fd, deadline);
        if (rc == -ETIMEDOUT || rc == -EAGAIN) return rc;
        if (rc < 0) { /* ferryd went away (or broke the protocol): register again */
            lose_broker(l);
            continue;
        }
        ferry__br r = {.p = buf, .len = len};
        if (op == FERRY__OP_INTRO) {
            rc = take_intro(l, &r, fd, deadline, out);
            if (rc == 1) return 0;
            if (rc == -EBADMSG)
                lose_broker(l);
            else if (rc < 0)
                return rc;
            continue;
        }
        if (fd >= 0) close(fd);
        if (op == FERRY__OP_LOST) { /* taken over by its new owner */
            l->lost = -ECONNABORTED;
            lose_broker(l);
            continue;
        }
        lose_broker(l); /* nothing else is sent to a server */
    }
}

static int bl_fd(const ferry_listener *fl)
{
    return ((const blistener *)fl)->ep;
}

static void bl_close(ferry_listener *fl)
{
    blistener *l = (blistener *)fl;
    if (l->sock >= 0 && !l->lost) { /* say it is a release, not a death */
        uint8_t req[300];
        ferry__bw w = {.p = req, .cap = sizeof req};
        ferry__bw_str(&w, l->name);
        ferry__bsend(l->sock, FERRY__OP_UNREGISTER, next_seq(), w.p, w.len, -1);
    }
    if (l->sock >= 0) close(l->sock);
    close(l->tfd);
    close(l->ep);
    free(l);
}

static const ferry__listener_ops broker_listener_ops = {
    .accept = bl_accept,
    .fd = bl_fd,
    .close = bl_close,
};

int ferry_register(const char *name, const ferry_policy *policy, const ferry_chan_opts *opts,
                   ferry_listener **out, int64_t timeout_ns)
{
    if (!out || ferry__name_valid(name) < 0) return -EINVAL;
    int64_t deadline;
    if (ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    ferry_policy pol;
    ferry_chan_opts o;
    int rc = ferry__policy_in(policy, &pol);
    if (rc == 0) rc = ferry__chan_opts_in(opts, &o);
    if (rc < 0) return rc;
    blistener *l = calloc(1, sizeof *l);
    if (!l) return -ENOMEM;
    l->base.ops = &broker_listener_ops;
    l->sock = -1;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->pol = pol;
    l->opts = o;
    /* relay_for is a joiner's, read during a call only: not kept */
    l->opts.relay_for = NULL;
    rc = ferry__policy_valid_for(&l->pol, 0); /* a server: no write right to grant */
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (rc == 0 && (l->ep < 0 || l->tfd < 0)) rc = -errno;
    if (rc == 0) {
        struct epoll_event ev = {.events = EPOLLIN};
        ev.data.fd = l->tfd;
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->tfd, &ev) < 0) rc = -errno;
    }
    if (rc == 0) rc = do_register(l, deadline);
    if (rc < 0) {
        if (l->ep >= 0) close(l->ep);
        if (l->tfd >= 0) close(l->tfd);
        free(l);
        return rc;
    }
    *out = &l->base;
    return 0;
}

/* ------------------------------------------------------------------ connect, lookup, list */

int ferry_connect(const char *name, int kind, const ferry_chan_opts *opts, ferry_chan **out,
                  int64_t timeout_ns)
{
    if (!out || ferry__name_valid(name) < 0 || !ferry__chan_kind_ok(kind)) return -EINVAL;
    int64_t deadline;
    if (ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    ferry_chan_opts o;
    int rc = ferry__chan_opts_in(opts, &o);
    if (rc < 0) return rc;
    int s = dial(deadline);
    if (s < 0) return s;
    uint8_t req[300], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__br r;
    ferry__bw_str(&w, name);
    ferry__bw_u32(&w, (uint32_t)kind);
    int fd;
    rc = call(s, FERRY__OP_CONNECT, &w, -1, buf, &r, &fd, deadline);
    close(s);
    if (rc < 0) return rc;
    ferry_cred server;
    ferry__br_cred(&r, &server);
    if (ferry__br_end(&r) < 0 || fd < 0 || link_nonblock(fd) < 0) {
        if (fd >= 0) close(fd);
        return -EBADMSG;
    }
    return ferry__chan_from_sock(kind, fd, 0, &o, &server, deadline, out);
}

int ferry_lookup(const char *name, ferry_name_info *out, int64_t timeout_ns)
{
    if (!out || ferry__name_valid(name) < 0) return -EINVAL;
    int64_t deadline;
    if (ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    int s = dial(deadline);
    if (s < 0) return s;
    uint8_t req[300], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__br r;
    ferry__bw_str(&w, name);
    int rc = call(s, FERRY__OP_LOOKUP, &w, -1, buf, &r, NULL, deadline);
    close(s);
    if (rc < 0) return rc;
    ferry__br_info(&r, out);
    return ferry__br_end(&r);
}

ssize_t ferry_list(const char *after, ferry_name_info *out, size_t cap, int64_t timeout_ns)
{
    if ((!out && cap) || (after && *after && ferry__name_valid(after) < 0)) return -EINVAL;
    int64_t deadline;
    if (ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    int s = dial(deadline);
    if (s < 0) return s;
    uint8_t req[300], buf[FERRY__BMSG_MAX];
    char from[FERRY__NAME_MAX + 1];
    snprintf(from, sizeof from, "%s", after ? after : "");
    size_t got = 0;
    int rc = 0;
    while (got < cap) { /* one page per request, until full or the end */
        ferry__bw w = {.p = req, .cap = sizeof req};
        ferry__br r;
        ferry__bw_str(&w, from);
        ferry__bw_u32(&w, cap - got > UINT32_MAX ? UINT32_MAX : (uint32_t)(cap - got));
        if ((rc = call(s, FERRY__OP_LIST, &w, -1, buf, &r, NULL, deadline)) < 0) break;
        uint32_t n = ferry__br_u32(&r);
        if (n > cap - got) rc = -EBADMSG;
        for (uint32_t i = 0; i < n && !rc; i++) ferry__br_info(&r, &out[got + i]);
        if (rc == 0) rc = ferry__br_end(&r);
        if (rc < 0) break;
        if (n == 0) break;
        got += n;
        snprintf(from, sizeof from, "%s", out[got - 1].name);
    }
    close(s);
    return rc < 0 ? rc : (ssize_t)got;
}

/* ------------------------------------------------------------------ watches */

struct ferry_watch {
    int sock;
};

int ferry_watch_open(const char *pattern, ferry_watch **out, int64_t timeout_ns)
{
    if (!out || ferry__pattern_valid(pattern) < 0) return -EINVAL;
    int64_t deadline;
    if (ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    ferry_watch *wt = malloc(sizeof *wt);
    if (!wt) return -ENOMEM;
    int s = dial(deadline);
    if (s < 0) {
        free(wt);
        return s;
    }
    uint8_t req[300], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__br r;
    ferry__bw_str(&w, pattern);
    int rc = call(s, FERRY__OP_WATCH, &w, -1, buf, &r, NULL, deadline);
    if (rc == 0) rc = ferry__br_end(&r);
    if (rc < 0) {
        close(s);
        free(wt);
        return rc;
    }
    wt->sock = s;
    *out = wt;
    return 0;
}

int ferry_watch_next(ferry_watch *wt, ferry_watch_event *ev, int64_t timeout_ns)
{
    if (!wt || !ev) return -EINVAL;
    if (wt->sock < 0) return -EPIPE;
    uint8_t buf[FERRY__BMSG_MAX];
    int64_t op;
    uint64_t seq;
    size_t len;
    int fd;
    int64_t deadline;
    if (ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    int rc = next_packet(wt->sock, buf, &op, &seq, &len, &fd, deadline);
    if (rc == 1) {
        ferry__br r = {.p = buf, .len = len};
        ev->kind = (int)ferry__br_u32(&r);
        ev->reserved = 0; /* ferry.h: zeroed, room for later fields */
        memset(ev->reserved2, 0, sizeof ev->reserved2);
        ferry__br_info(&r, &ev->info);
        rc = op == FERRY__OP_EVENT && fd < 0 && ev->kind >= FERRY_EV_OWNED &&
                     ev->kind <= FERRY_EV_DIED
                 ? ferry__br_end(&r)
                 : -EBADMSG;
        if (fd >= 0) close(fd);
        if (rc == 0) return 0;
    }
    if (rc == -EPIPE || rc == -EBADMSG) { /* the watch is over: say so from now on */
        close(wt->sock);
        wt->sock = -1;
        return -EPIPE;
    }
    return rc;
}

int ferry_watch_poll_fd(const ferry_watch *wt)
{
    return wt ? wt->sock : -EINVAL;
}

void ferry_watch_close(ferry_watch *wt)
{
    if (!wt) return;
    if (wt->sock >= 0) close(wt->sock);
    free(wt);
}

/* ------------------------------------------------------------------ published objects */

struct ferry_pub {
    int sock; /* the connection that owns the name */
    char name[FERRY__NAME_MAX + 1];
};

/* What ferry_publish sends ferryd for a region or state fd (docs/region-sharing.md): a
 * region's read-write descriptor and a read-only reopen of it, or a state's read-only
 * reopen alone (its one writer keeps the write right to itself); a memfd's group and
 * other write bits are dropped first (fchmod). fd must be a genuine
 * one of kind (region/region.h: ferry__region_check, as the caller's euid: a file must
 * be its own) — -EBADMSG otherwise — and, for a region, open for writing (-EACCES: a
 * read-only handle has no write right to pass on). On success out[0..*n) are to send;
 * the reopen (out[1] for a region, out[0] for a state) is the caller's to close. */
static int region_publish_fds(int fd, uint32_t kind, int out[2], int *n)
{
    uint32_t k;
    int w, persistent;
    if (ferry__region_check(fd, geteuid(), &k, &w, NULL, &persistent) < 0 || k != kind)
        return -EBADMSG;
    if (kind == FERRY_OBJ_REGION && !w) return -EACCES;
    /* A memfd whose group or others may write (the kernel makes them 0777; ours are
     * 0444, but fd may come from elsewhere) would let a reader of another uid reopen it
     * writable: drop those bits (we own it, or fchmod fails and ferryd says -EPERM). A
     * persistent region's file keeps the mode its owner gave it: ferryd refuses it. */
    struct stat st;
    if (!persistent && fstat(fd, &st) == 0 && (st.st_mode & 0022) &&
        fchmod(fd, st.st_mode & 07755) < 0) {
        /* not ours: ferryd will refuse it, with the reason */
    }
    int ro = ferry__region_reopen_ro(fd);
    if (ro < 0) return ro;
    if (kind == FERRY_OBJ_REGION) {
        out[0] = fd;
        out[1] = ro;
        *n = 2;
    } else {
        out[0] = ro;
        out[1] = -1;
        *n = 1;
    }
    return 0;
}

int ferry_publish(const char *name, int fd, int kind, const ferry_policy *policy, ferry_pub **out,
                  int64_t timeout_ns)
{
    if (!out || fd < 0 || kind < FERRY_OBJ_SEM || kind > FERRY_OBJ_STATE ||
        ferry__name_valid(name) < 0)
        return -EINVAL;
    ferry_policy pol;
    int rc = ferry__policy_in(policy, &pol);
    if (rc < 0) return rc;
    if (ferry__policy_valid_for(&pol, (uint32_t)kind) < 0) return -EINVAL;
    /* A region or a state goes with a read-only descriptor of its own (region_publish). */
    int sendfds[2] = {fd, -1}, nsend = 1;
    if (kind == FERRY_OBJ_REGION || kind == FERRY_OBJ_STATE) {
        if ((rc = region_publish_fds(fd, (uint32_t)kind, sendfds, &nsend)) < 0) return rc;
    } else if (kind != FERRY_OBJ_EVENT && kind != FERRY_OBJ_MAILBOX) {
        /* say now, not at the first opener, that fd is wrong (an event queue or a mailbox
         * is a carrier socket: its opener validates it) */
        ferry__seg seg;
        if (ferry__obj_map(fd, (uint32_t)kind, &seg) < 0) return -EBADMSG;
        ferry__seg_unmap(&seg);
    }
    int64_t deadline;
    ferry_pub *p = NULL;
    int s = -1;
    rc = ferry__deadline(timeout_ns, &deadline) < 0 ? -EINVAL : 0;
    if (rc == 0 && !(p = calloc(1, sizeof *p))) rc = -ENOMEM;
    if (rc == 0 && (s = dial(deadline)) < 0) rc = s;
    if (rc < 0) {
        if (sendfds[1] >= 0) close(sendfds[1]);
        if (kind == FERRY_OBJ_STATE) close(sendfds[0]); /* the read-only one only */
        free(p);
        return rc;
    }
    uint8_t req[1024], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__br r;
    ferry__bw_register(&w, name, &pol);
    ferry__bw_u32(&w, (uint32_t)kind);
    if (kind == FERRY_OBJ_REGION) ferry__bw_write_lists(&w, &pol);
    rc = call_fds(s, FERRY__OP_PUBLISH, &w, sendfds, nsend, buf, &r, NULL, deadline);
    if (sendfds[1] >= 0) close(sendfds[1]);
    if (kind == FERRY_OBJ_STATE) close(sendfds[0]);
    if (rc == 0) rc = ferry__br_end(&r);
    if (rc < 0) {
        close(s);
        free(p);
        return rc;
    }
    p->sock = s;
    snprintf(p->name, sizeof p->name, "%s", name);
    *out = p;
    return 0;
}

void ferry_pub_close(ferry_pub *p)
{
    if (!p) return;
    uint8_t req[300];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__bw_str(&w, p->name);
    ferry__bsend(p->sock, FERRY__OP_UNREGISTER, next_seq(), w.p, w.len, -1); /* a release */
    close(p->sock);
    free(p);
}

void ferry_pub_leave(ferry_pub *p)
{
    if (!p) return;
    close(p->sock); /* ferryd sees the hang-up: FERRY_POLICY_KEEP names stay, orphans */
    free(p);
}

int ferry__obj_open_trust(const char *name, int kind, int *fd, int *trusted, int64_t timeout_ns)
{
    return ferry__obj_open_want(name, kind, 0, fd, trusted, timeout_ns);
}

int ferry__obj_open_want(const char *name, int kind, uint32_t want, int *fd, int *trusted,
                         int64_t timeout_ns)
{
    if (!fd || !trusted || ferry__name_valid(name) < 0 || (want & ~FERRY__WANT_WRITE))
        return -EINVAL;
    *fd = -1;
    *trusted = 0;
    int64_t deadline;
    if (ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    int s = dial(deadline);
    if (s < 0) return s;
    uint8_t req[300], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__br r;
    ferry__bw_str(&w, name);
    ferry__bw_u32(&w, (uint32_t)kind);
    if (want) ferry__bw_u32(&w, want); /* absent means 0: what an older ferryd expects */
    int rc = call(s, FERRY__OP_OPEN, &w, -1, buf, &r, fd, deadline);
    close(s);
    uint32_t oflags = 0;
    if (rc == 0 && (ferry__br_open_reply(&r, &oflags) < 0 || *fd < 0)) rc = -EBADMSG;
    if (rc < 0 && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    if (rc == 0) *trusted = (oflags & FERRY__OPEN_TRUSTED) != 0;
    return rc;
}

int ferry__obj_open(const char *name, int kind, int *fd, int64_t timeout_ns)
{
    int trusted;
    return ferry__obj_open_trust(name, kind, fd, &trusted, timeout_ns);
}

int ferry_kill(const char *name, int sig, int64_t timeout_ns)
{
    if (ferry__name_valid(name) < 0 || sig <= 0 || sig > 64) return -EINVAL;
    int64_t deadline;
    if (ferry__deadline(timeout_ns, &deadline) < 0) return -EINVAL;
    int s = dial(deadline);
    if (s < 0) return s;
    uint8_t req[300], buf[FERRY__BMSG_MAX];
    ferry__bw w = {.p = req, .cap = sizeof req};
    ferry__br r;
    ferry__bw_str(&w, name);
    ferry__bw_u32(&w, (uint32_t)sig);
    int rc = call(s, FERRY__OP_KILL, &w, -1, buf, &r, NULL, deadline);
    close(s);
    if (rc == 0) rc = ferry__br_end(&r);
    return rc;
}
