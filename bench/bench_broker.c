// SPDX-License-Identifier: MIT
/*
 * bench_broker.c — the naming-service measurements of `ferry bench` (bench_broker.h).
 *
 * A private ferryd (ferryd_start / ferryd_stop): a directory made with mkdtemp under
 * $TMPDIR (or /tmp) holds its socket and a policy file (quotas raised for --scale: names
 * 20000, conns 4000, fds 8000; also keeps the system's /etc/ferry/policy.conf out of the
 * run). ferryd runs in the foreground as our child, not pinned (it may run on any CPU),
 * its stdout sent to stderr (ours carries only results). FERRY_BROKER points at its
 * socket and FERRY_NO_AUTOSPAWN=1 while it runs (restored afterwards), so neither the
 * driver nor a peer ever reaches another ferryd. Stopping it: SIGTERM, a clean exit within
 * 5 s required (else SIGKILL and a failure), then the directory is emptied and removed.
 *
 * broker-connect: the peer registers a unique name (ferry_register, default policy) and
 * serves it: per connection it accepts, receives one message, echoes it and closes its
 * end (the echo stays readable; waiting for the client's close instead would put the shm
 * transport's detection of a closed peer, about 20 ms, into the next connect). Each timed
 * iteration in the driver is ferry_connect(name, FERRY_KIND_SHM) — a connection to
 * ferryd, its lookup and policy check, the socket pair, the introduction, the server's
 * accept and the shared-memory channel's handshake — then one round trip of job->size
 * bytes (stamped and checked) and ferry_chan_close.
 *
 * --scale: 10 server processes (--smoke: 2) register 1,000 names each (50), then 1,000
 * watches (20; ferry_watch_open, each on one server's names: "ferry-bench.scale.sK.*")
 * stay open in a client process; the driver lists every name (ferry_list: all of them
 * must be there) and reads ferryd's VmRSS and VmHWM from /proc/PID/status, and counts its
 * descriptors.
 * Server 0 uses the library: a listener per name (ferry_register), each on its own
 * connection to ferryd, as real servers do. The others register their names over one
 * connection each, speaking the broker protocol directly (a REGISTER packet per name; see
 * src/broker/proto.h): a listener costs ferryd two descriptors (its connection and a pidfd
 * of its process), so 10,000 listeners would need more than many systems' RLIMIT_NOFILE
 * allows. RLIMIT_NOFILE is raised to its hard limit first (ferryd and the children inherit
 * it). Teardown: the clients first (so ferryd does not announce 10,000 deaths to 1,000
 * watchers), then the servers, then ferryd.
 */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET, mkdtemp, setenv */
#include "bench_broker.h"

#include <ferry/ferry.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define TMO       BENCH_OP_TIMEOUT_NS
#define STOP_WAIT ((int64_t)5 * 1000 * 1000 * 1000)
#define POLICY_TEXT                                                                                \
    "# ferry bench: a private ferryd\nquota names 20000\nquota conns 4000\nquota fds 8000\n"

/* ------------------------------------------------------------------ a private ferryd */

typedef struct bferryd {
    pid_t pid;
    char dir[200];
    char sock[260];
    char *old_broker, *old_noauto; /* the environment to restore */
    int env_set;
} bferryd;

/* The ferryd to run: $FERRY_FERRYD, else the ferryd next to this program (the directory
 * of /proc/self/exe: an installed ferry-bench, or the build tree, where CMake links one
 * next to ferry-bench to the built ferryd), else the installed one. NULL if none; the
 * path found is in a static buffer. */
static const char *ferryd_program(void)
{
    static char path[4096];
    const char *env = getenv("FERRY_FERRYD");
    if (env && *env) return env;
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n > 0) {
        path[n] = '\0';
        char *slash = strrchr(path, '/');
        if (slash && (size_t)(slash - path) + sizeof "/ferryd" <= sizeof path) {
            memcpy(slash, "/ferryd", sizeof "/ferryd");
            if (access(path, X_OK) == 0) return path;
        }
    }
#ifdef FERRY_BENCH_FERRYD_INSTALL
    if (access(FERRY_BENCH_FERRYD_INSTALL, X_OK) == 0) return FERRY_BENCH_FERRYD_INSTALL;
#endif
    return NULL;
}

const char *bench_broker_unavailable(void)
{
    return ferryd_program() ? NULL
                            : "no ferryd program (none next to ferry-bench nor installed; "
                              "$FERRY_FERRYD names one)";
}

static int connectable(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%.107s", path); /* checked at start */
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    int ok = s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (s >= 0) close(s);
    return ok;
}

static char *save_env(const char *name)
{
    const char *v = getenv(name);
    return v ? strdup(v) : NULL;
}

static void restore_env(const char *name, char *old)
{
    if (old)
        setenv(name, old, 1);
    else
        unsetenv(name);
    free(old);
}

/* Empty and remove the directory (ferryd's socket, its lock file, the policy). */
static void remove_dir(bferryd *d)
{
    if (!d->dir[0]) return;
    DIR *dh = opendir(d->dir);
    struct dirent *e;
    char path[sizeof d->dir + 300];
    while (dh && (e = readdir(dh)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", d->dir, e->d_name);
        unlink(path);
    }
    if (dh) closedir(dh);
    rmdir(d->dir);
    d->dir[0] = '\0';
}

/* Stop ferryd (SIGTERM; it must exit 0), restore the environment, remove the directory.
 * 0, or -1 with res->err set (unless already set). */
static int ferryd_stop(bferryd *d, bench_result *res)
{
    int rc = 0;
    if (d->pid > 0) {
        int st = 0;
        kill(d->pid, SIGTERM);
        int64_t deadline = bench_now_ns() + STOP_WAIT;
        for (;;) {
            pid_t r = waitpid(d->pid, &st, WNOHANG);
            if (r == d->pid || (r < 0 && errno != EINTR)) break;
            if (bench_now_ns() > deadline) {
                kill(d->pid, SIGKILL);
                waitpid(d->pid, &st, 0);
                if (!res->err[0]) bench_fail(res, "ferryd did not stop on SIGTERM: killed");
                rc = -1;
                break;
            }
            nanosleep(&(struct timespec){0, 2000000}, NULL);
        }
        if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            if (!res->err[0]) bench_fail(res, "ferryd ended with status 0x%x", (unsigned)st);
            rc = -1;
        }
        d->pid = -1;
    }
    if (d->env_set) {
        restore_env("FERRY_BROKER", d->old_broker);
        restore_env("FERRY_NO_AUTOSPAWN", d->old_noauto);
        d->env_set = 0;
    }
    remove_dir(d);
    return rc;
}

/* Start a private ferryd and point this process's environment at it. 0, or -1 with
 * res->err set (nothing left behind). */
static int ferryd_start(bferryd *d, bench_result *res)
{
    const char *prog = ferryd_program(), *tmp = getenv("TMPDIR");
    char policy[sizeof d->dir + 16];
    memset(d, 0, sizeof *d);
    d->pid = -1;
    if (!prog) return bench_fail(res, "%s", bench_broker_unavailable());
    snprintf(d->dir, sizeof d->dir, "%.150s/ferry-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->dir)) {
        d->dir[0] = '\0';
        return bench_fail(res, "mkdtemp: %s", strerror(errno));
    }
    snprintf(d->sock, sizeof d->sock, "%s/ferryd.sock", d->dir);
    if (strlen(d->sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        bench_fail(res, "socket path too long (TMPDIR): %s", d->sock);
        remove_dir(d);
        return -1;
    }
    snprintf(policy, sizeof policy, "%s/policy.conf", d->dir);
    FILE *f = fopen(policy, "w");
    if (!f || fputs(POLICY_TEXT, f) < 0 || fclose(f) != 0) {
        bench_fail(res, "writing %s: %s", policy, strerror(errno));
        remove_dir(d);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        bench_fail(res, "fork: %s", strerror(errno));
        remove_dir(d);
        return -1;
    }
    if (pid == 0) {
        cpu_set_t all;
        CPU_ZERO(&all);
        for (int c = 0; c < CPU_SETSIZE; c++) CPU_SET(c, &all);
        sched_setaffinity(0, sizeof all, &all); /* not pinned where the driver is */
        bench_child_signals();
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execl(prog, "ferryd", "--foreground", "--socket", d->sock, "--policy", policy,
              (char *)NULL);
        fprintf(stderr, "ferry bench: cannot run %s: %s\n", prog, strerror(errno));
        _exit(127);
    }
    d->pid = pid;
    d->old_broker = save_env("FERRY_BROKER");
    d->old_noauto = save_env("FERRY_NO_AUTOSPAWN");
    d->env_set = 1;
    setenv("FERRY_BROKER", d->sock, 1);
    setenv("FERRY_NO_AUTOSPAWN", "1", 1);
    int64_t deadline = bench_now_ns() + STOP_WAIT;
    while (!connectable(d->sock)) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            d->pid = -1;
            bench_fail(res, "ferryd (%s) exited at start (status 0x%x)", prog, (unsigned)st);
            ferryd_stop(d, res);
            return -1;
        }
        if (bench_now_ns() > deadline) {
            bench_fail(res, "ferryd (%s) does not accept connections on %s", prog, d->sock);
            ferryd_stop(d, res);
            return -1;
        }
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    return 0;
}

/* ------------------------------------------------------------------ broker-connect */

typedef struct cctx {
    char name[80];
    size_t size;
    unsigned char *sbuf, *rbuf;
} cctx;

/* The peer: serve the name; per connection, echo one message and close.
 * sh->line: 1 once the name is registered, 2 if that failed. Runs until sh->stop. */
static int connect_server(void *ctx, bench_shared *sh)
{
    cctx *c = ctx;
    ferry_listener *l;
    int r = ferry_register(c->name, NULL, NULL, &l, TMO);
    if (r < 0) {
        bench_peer_fail(sh, "peer: ferry_register %s: %s", c->name, ferry_strerror(r));
        atomic_store(&sh->line, 2);
        return -1;
    }
    atomic_store(&sh->line, 1);
    int rc = 0;
    while (rc == 0 && !atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
        struct pollfd pf = {.fd = ferry_listener_poll_fd(l), .events = POLLIN};
        if (poll(&pf, 1, 20) <= 0) continue; /* look at stop again */
        ferry_chan *ch;
        if ((r = ferry_accept(l, &ch, TMO)) < 0) {
            rc = bench_peer_fail(sh, "peer: ferry_accept: %s", ferry_strerror(r));
            break;
        }
        ssize_t n = ferry_recv(ch, c->rbuf, c->size, TMO);
        if (n < 0)
            rc = bench_peer_fail(sh, "peer: receive: %s", ferry_strerror((int)n));
        else if ((r = ferry_send(ch, c->rbuf, (size_t)n, TMO)) < 0)
            rc = bench_peer_fail(sh, "peer: send: %s", ferry_strerror(r));
        ferry_chan_close(ch); /* the echo stays readable for the client */
    }
    ferry_listener_close(l);
    return rc;
}

/* One timed iteration: connect, one round trip, close. */
static int connect_rt(void *ctx, uint64_t seq, bench_result *res)
{
    cctx *c = ctx;
    ferry_chan *ch;
    int r = ferry_connect(c->name, FERRY_KIND_SHM, NULL, &ch, TMO);
    if (r < 0) return bench_fail(res, "ferry_connect %s: %s", c->name, ferry_strerror(r));
    bench_stamp(c->sbuf, c->size, seq);
    r = ferry_send(ch, c->sbuf, c->size, TMO);
    ssize_t n = r < 0 ? r : ferry_recv(ch, c->rbuf, c->size, TMO);
    ferry_chan_close(ch);
    if (r < 0) return bench_fail(res, "send: %s", ferry_strerror(r));
    if (n < 0) return bench_fail(res, "receive: %s", ferry_strerror((int)n));
    if ((size_t)n != c->size || !bench_copy_ok(c->rbuf, c->size, seq))
        return bench_fail(res, "receive: wrong payload");
    return 0;
}

int bench_broker_connect(const bench_job *job, bench_result *res)
{
    static unsigned serial;
    cctx c = {.size = job->size < 16 ? 16 : job->size};
    bench_peer p = {-1, NULL};
    bferryd d;
    int rc = -1;

    snprintf(c.name, sizeof c.name, "ferry-bench.connect.p%ld-%u", (long)getpid(), serial++);
    c.sbuf = malloc(c.size);
    c.rbuf = malloc(c.size);
    if (!c.sbuf || !c.rbuf) {
        free(c.sbuf);
        free(c.rbuf);
        return bench_fail(res, "out of memory");
    }
    bench_fill(c.sbuf, c.size);
    memset(c.rbuf, 0, c.size);
    if (ferryd_start(&d, res) != 0) goto out_free;
    if (bench_peer_start(&p, job, connect_server, &c, res) != 0) goto out;
    int64_t deadline = bench_now_ns() + TMO;
    while (atomic_load(&p.sh->line) == 0 && bench_now_ns() < deadline)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    if (atomic_load(&p.sh->line) == 1)
        rc = bench_loop_pingpong(job, connect_rt, &c, res);
    else if (atomic_load(&p.sh->line) == 0)
        bench_fail(res, "the peer did not register its name");
    /* line 2: the peer says why (bench_peer_finish) */
    atomic_store(&p.sh->stop, 1);
out:
    if (p.pid > 0 && bench_peer_finish(&p, res) != 0) rc = -1;
    if (ferryd_stop(&d, res) != 0) rc = -1;
out_free:
    free(c.sbuf);
    free(c.rbuf);
    return rc;
}

/* ------------------------------------------------------------------ --scale */

/* A REGISTER packet (src/broker/proto.h): the 32-byte frame header (magic "FRY1",
 * version 1, no flags or fds, type 1, seq, payload length, crc 0), then the name as a u16
 * length and its bytes, and the default policy: mode 0600, gid -1, no flags, no ids. */
static size_t register_packet(uint8_t *p, const char *name, uint64_t seq)
{
    size_t n = strlen(name), len = 2 + n + 5 * 4, o = 0;
    const uint32_t pol[5] = {0600, UINT32_MAX, 0, 0, 0};
    memcpy(p, "FRY1", 4);
    p[4] = 1;
    p[5] = p[6] = p[7] = 0;
    for (int i = 0; i < 8; i++) p[8 + i] = (uint8_t)(i == 0 ? 1 : 0); /* type 1: REGISTER */
    for (int i = 0; i < 8; i++) p[16 + i] = (uint8_t)(seq >> (8 * i));
    for (int i = 0; i < 4; i++) p[24 + i] = (uint8_t)(len >> (8 * i));
    memset(p + 28, 0, 4);
    o = 32;
    p[o++] = (uint8_t)n;
    p[o++] = (uint8_t)(n >> 8);
    memcpy(p + o, name, n);
    o += n;
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < 4; i++) p[o++] = (uint8_t)(pol[k] >> (8 * i));
    return o;
}

/* Register name on s and wait for the reply (REPLY, seq, status 0). 0 or -errno. */
static int raw_register(int s, const char *name, uint64_t seq)
{
    uint8_t pk[32 + 2 + 255 + 20], in[64];
    size_t n = register_packet(pk, name, seq);
    if (send(s, pk, n, MSG_NOSIGNAL) != (ssize_t)n) return -errno;
    struct pollfd pf = {.fd = s, .events = POLLIN};
    int r = poll(&pf, 1, (int)(TMO / 1000000));
    if (r <= 0) return r == 0 ? -ETIMEDOUT : -errno;
    ssize_t got = recv(s, in, sizeof in, 0);
    if (got < 0) return -errno;
    if (got != 36 || memcmp(in, "FRY1", 4) != 0 || in[8] != 64) return -EBADMSG;
    uint64_t rseq = 0;
    for (int i = 0; i < 8; i++) rseq |= (uint64_t)in[16 + i] << (8 * i);
    int32_t status = (int32_t)((uint32_t)in[32] | (uint32_t)in[33] << 8 | (uint32_t)in[34] << 16 |
                               (uint32_t)in[35] << 24);
    if (rseq != seq) return -EBADMSG;
    return status;
}

typedef struct scale_cfg {
    int servers, names_per, clients;
} scale_cfg;

/* Tell the driver: "" ready, else why not (then exit 1). */
static void say(int fd, const char *why)
{
    char b[200];
    int n = snprintf(b, sizeof b, "%s%s", why[0] ? "E" : "R", why);
    if (write(fd, b, (size_t)n) < 0) { /* the driver sees EOF */
    }
}

/* Wait until the driver closes the stop pipe. */
static void wait_stop(int fd)
{
    char b;
    while (read(fd, &b, 1) != 0 && errno == EINTR) {
    }
}

/* Server k: register cfg->names_per names, say so, hold them until stopped. */
static int scale_server(const scale_cfg *cfg, const char *sock, int k, int ready, int stop)
{
    char name[96], why[160] = "";
    if (k == 0) { /* the library: a listener per name */
        ferry_listener **l = calloc((size_t)cfg->names_per, sizeof *l);
        int i = 0, r = 0;
        for (; l && i < cfg->names_per; i++) {
            snprintf(name, sizeof name, "ferry-bench.scale.s%d.n%d", k, i);
            if ((r = ferry_register(name, NULL, NULL, &l[i], TMO)) < 0) break;
        }
        if (!l)
            snprintf(why, sizeof why, "server %d: out of memory", k);
        else if (r < 0)
            snprintf(why, sizeof why, "server %d: ferry_register %s: %s", k, name,
                     ferry_strerror(r));
        say(ready, why);
        if (!why[0]) wait_stop(stop);
        while (i-- > 0) ferry_listener_close(l[i]);
        free(l);
        return why[0] ? 1 : 0;
    }
    /* The protocol: every name on one connection. */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%.107s", sock);
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(why, sizeof why, "server %d: connect %s: %s", k, sock, strerror(errno));
    } else {
        for (int i = 0; i < cfg->names_per; i++) {
            snprintf(name, sizeof name, "ferry-bench.scale.s%d.n%d", k, i);
            int r = raw_register(s, name, (uint64_t)i + 1);
            if (r < 0) {
                snprintf(why, sizeof why, "server %d: REGISTER %s: %s", k, name, ferry_strerror(r));
                break;
            }
        }
    }
    say(ready, why);
    if (!why[0]) wait_stop(stop);
    if (s >= 0) close(s);
    return why[0] ? 1 : 0;
}

/* The clients: cfg->clients watches, held until stopped. */
static int scale_clients(const scale_cfg *cfg, int ready, int stop)
{
    ferry_watch **w = calloc((size_t)cfg->clients, sizeof *w);
    char pat[64], why[160] = "";
    int i = 0, r = 0;
    for (; w && i < cfg->clients; i++) {
        snprintf(pat, sizeof pat, "ferry-bench.scale.s%d.*", i % cfg->servers);
        if ((r = ferry_watch_open(pat, &w[i], TMO)) < 0) break;
    }
    if (!w)
        snprintf(why, sizeof why, "clients: out of memory");
    else if (r < 0)
        snprintf(why, sizeof why, "client %d: ferry_watch_open %s: %s", i, pat, ferry_strerror(r));
    say(ready, why);
    if (!why[0]) wait_stop(stop);
    while (i-- > 0) ferry_watch_close(w[i]);
    free(w);
    return why[0] ? 1 : 0;
}

typedef struct child {
    pid_t pid;
    int ready; /* read end */
} child;

/* Fork fn's process; its ready pipe goes to c->ready. The child keeps only the read end
 * of the stop pipe (stop[0]); every other inherited pipe end it closes. 0 or -errno. */
static int spawn(child *c, const scale_cfg *cfg, const char *sock, int k, const int stop[2],
                 const int other_stop[2], const child *others, int nothers)
{
    int rp[2];
    if (pipe2(rp, O_CLOEXEC) != 0) return -errno;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(rp[0]);
        close(rp[1]);
        return -e;
    }
    if (pid == 0) {
        bench_child_signals();
        close(rp[0]);
        close(stop[1]);
        if (other_stop[0] >= 0) close(other_stop[0]);
        if (other_stop[1] >= 0) close(other_stop[1]);
        for (int i = 0; i < nothers; i++) close(others[i].ready);
        _exit(k >= 0 ? scale_server(cfg, sock, k, rp[1], stop[0])
                     : scale_clients(cfg, rp[1], stop[0]));
    }
    close(rp[1]);
    c->pid = pid;
    c->ready = rp[0];
    return 0;
}

/* Read a child's word: 0 ready, else -1 and why in res. */
static int await_ready(child *c, bench_result *res)
{
    char b[200];
    ssize_t n;
    while ((n = read(c->ready, b, sizeof b - 1)) < 0 && errno == EINTR) {
    }
    if (n <= 0) return bench_fail(res, "a --scale process died before it was ready");
    b[n] = '\0';
    return b[0] == 'R' ? 0 : bench_fail(res, "%s", b + 1);
}

/* Reap a child (it exits when its stop pipe closes, bounded: then SIGKILL). */
static int reap(child *c, bench_result *res)
{
    int st = 0, rc = 0;
    if (c->pid <= 0) return 0;
    int64_t deadline = bench_now_ns() + TMO;
    for (;;) {
        pid_t r = waitpid(c->pid, &st, WNOHANG);
        if (r == c->pid || (r < 0 && errno != EINTR)) break;
        if (bench_now_ns() > deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            rc = res->err[0] ? -1 : bench_fail(res, "a scale process did not stop: killed");
            break;
        }
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
        rc = res->err[0] ? -1 : bench_fail(res, "a scale process failed (status 0x%x)", st);
    close(c->ready);
    c->pid = -1;
    return rc;
}

/* VmRSS and VmHWM (KiB) of pid, and its open descriptors. 0 or -1. */
static int proc_mem(pid_t pid, long *rss, long *hwm, long *fds)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    *rss = *hwm = *fds = -1;
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "VmRSS: %ld", rss);
        sscanf(line, "VmHWM: %ld", hwm);
    }
    fclose(f);
    snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        *fds = 0;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.') (*fds)++;
        closedir(d);
    }
    return *rss >= 0 && *hwm >= 0 ? 0 : -1;
}

#define SCALE_TARGET_MIB 16.0

int bench_scale_main(int smoke, int csv)
{
    const scale_cfg cfg = smoke ? (scale_cfg){2, 50, 20} : (scale_cfg){10, 1000, 1000};
    const long total = (long)cfg.servers * cfg.names_per;
    bench_result res = {-1, -1, -1, -1, -1, "", 0, 0};
    bferryd d = {.pid = -1};
    child srv[16], cli = {-1, -1};
    int nsrv = 0, sstop[2] = {-1, -1}, cstop[2] = {-1, -1}, rc = -1;
    long rss = -1, hwm = -1, fds = -1;
    ferry_name_info *all = NULL;

    /* Descriptors: the library server holds 3 per listener, ferryd 2 per listener and 1
     * per client; each process inherits this limit. */
    struct rlimit rl;
    const rlim_t need = (rlim_t)cfg.names_per * 3 + (rlim_t)cfg.clients + 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < need) {
        bench_fail(&res, "RLIMIT_NOFILE is %llu (hard %llu); --scale needs %llu",
                   (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                   (unsigned long long)need);
        goto out;
    }
    fprintf(stderr,
            "ferry bench --scale: %ld names (%d servers x %d: server 0 with ferry_register, "
            "the others over one connection each), %d clients (watches)\n",
            total, cfg.servers, cfg.names_per, cfg.clients);
    if (ferryd_start(&d, &res) != 0) goto out;
    if (pipe2(sstop, O_CLOEXEC) != 0 || pipe2(cstop, O_CLOEXEC) != 0) {
        bench_fail(&res, "pipe: %s", strerror(errno));
        goto out;
    }
    for (int k = 0; k < cfg.servers; k++) {
        int e = spawn(&srv[k], &cfg, d.sock, k, sstop, cstop, srv, k);
        if (e < 0) {
            bench_fail(&res, "fork: %s", strerror(-e));
            goto out;
        }
        nsrv++;
    }
    for (int k = 0; k < nsrv; k++)
        if (await_ready(&srv[k], &res) != 0) goto out;
    int e = spawn(&cli, &cfg, d.sock, -1, cstop, sstop, srv, nsrv);
    if (e < 0) {
        bench_fail(&res, "fork: %s", strerror(-e));
        goto out;
    }
    if (await_ready(&cli, &res) != 0) goto out;

    /* Every name is there. */
    all = calloc((size_t)total + 1, sizeof *all);
    ssize_t listed = all ? ferry_list(NULL, all, (size_t)total + 1, TMO) : -ENOMEM;
    if (listed != total) {
        bench_fail(&res, "ferry_list: %s%ld names, want %ld",
                   listed < 0 ? ferry_strerror((int)listed) : "", (long)listed, total);
        goto out;
    }
    if (proc_mem(d.pid, &rss, &hwm, &fds) != 0) {
        bench_fail(&res, "cannot read /proc/%ld/status", (long)d.pid);
        goto out;
    }
    rc = 0;
out:
    free(all);
    if (cstop[1] >= 0) close(cstop[1]); /* the clients go first */
    cstop[1] = -1;
    if (reap(&cli, &res) != 0) rc = -1;
    if (sstop[1] >= 0) close(sstop[1]);
    sstop[1] = -1;
    for (int k = 0; k < nsrv; k++)
        if (reap(&srv[k], &res) != 0) rc = -1;
    if (sstop[0] >= 0) close(sstop[0]);
    if (cstop[0] >= 0) close(cstop[0]);
    if (d.env_set && ferryd_stop(&d, &res) != 0) rc = -1;
    if (rc != 0) {
        fprintf(stderr, "ferry bench --scale: FAILED: %s\n", res.err[0] ? res.err : "no reason");
        return 1;
    }
    const double mib = (double)rss / 1024.0;
    if (csv) {
        printf("names,servers,clients,ferryd_rss_kib,ferryd_hwm_kib,ferryd_fds\n");
        printf("%ld,%d,%d,%ld,%ld,%ld\n", total, cfg.servers, cfg.clients, rss, hwm, fds);
    } else {
        printf("ferryd with %ld names (%d server processes) and %d clients (watches):\n", total,
               cfg.servers, cfg.clients);
        printf("  VmRSS %ld KiB (%.1f MiB), VmHWM %ld KiB, %ld descriptors\n", rss, mib, hwm, fds);
        printf("\ntargets:\n");
        char label[96];
        snprintf(label, sizeof label, "ferryd VmRSS, %ld names + %d clients (MiB)", total,
                 cfg.clients);
        printf("  %-60s %9.3g  %-17s %s %-4g  %s\n", label, mib, "", "<", SCALE_TARGET_MIB,
               mib < SCALE_TARGET_MIB ? "PASS" : "MISS");
    }
    fflush(stdout);
    return 0;
}
