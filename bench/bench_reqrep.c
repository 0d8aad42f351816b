// SPDX-License-Identifier: MIT
/*
 * bench_reqrep.c — the request/reply peers of `ferry bench` (see bench_reqrep.h).
 *
 * Both rows run through bench_lib (bench_lib.c): the measuring child (side 0) sends a
 * stamped 64 B request, the peer (side 1) checks it and answers with the same bytes,
 * the measuring child checks the answer; every message is copied in and out.
 *
 * zeromq-reqrep: a ZMQ_REQ socket (side 0, binds ipc://<private dir>/zmq.sock) and a
 * ZMQ_REP socket (side 1, connects); each child makes its own context after fork. The
 * end marker is an empty request, which the REP side never answers. Timeouts as in
 * bench_zmq.c: send and receive BENCH_OP_TIMEOUT_NS, linger 1 s.
 *
 * dbus-call: each measurement starts its own dbus-daemon (a session-like bus, allow-all
 * policy, EXTERNAL auth) from a config file written to a private temp directory, listening
 * on unix:path=<dir>/bus, and reads its address from --print-address (which also says it
 * is ready). The daemon is unpinned (it is on the data path: every call crosses it twice)
 * and has PR_SET_PDEATHSIG, so it stops with the bench whatever happens. The peer (side 1)
 * connects with sd_bus_new + sd_bus_set_address + sd_bus_set_bus_client + sd_bus_start,
 * owns org.ferry.Bench and exports /org/ferry/Bench with one method, Echo(ay) -> ay, then
 * says it is ready through the rendezvous; the measuring side connects the same way and
 * makes each round trip a blocking sd_bus_call (what sd_bus_call_method does) with the
 * payload as a byte array. The reply is deferred: the method handler keeps the call, and
 * bench_lib's echo loop answers it with the bytes it received. The end marker is a call
 * with an empty array and no reply expected. After the measurement the daemon gets
 * SIGTERM (SIGKILL after 5 s) and the directory is removed: nothing is left behind.
 */
#define _GNU_SOURCE /* pipe2, prctl, CPU_SET, mkdtemp */
#include "bench_reqrep.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef FERRY_BENCH_ZMQ
#include <zmq.h>
#endif
#ifdef FERRY_BENCH_SDBUS
#include <systemd/sd-bus.h>
#endif

/* ======================================================================== zeromq-reqrep */
#ifdef FERRY_BENCH_ZMQ

typedef struct zreq {
    void *ctx, *sock;
} zreq;

static const char *zr_error(int code)
{
    return zmq_strerror(-code);
}

static int zr_set(void *sock, int opt, int v)
{
    return zmq_setsockopt(sock, opt, &v, sizeof v);
}

__attribute__((noreturn)) static void zr_close_and_exit(void *s, int code)
{
    zreq *z = s;
    if (z) {
        if (z->sock) zmq_close(z->sock);
        if (z->ctx) zmq_ctx_term(z->ctx);
        free(z);
    }
    _exit(code);
}

static void *zr_open(const void *arg, const bench_job *job, bench_rdv *rdv, int side, char *why,
                     size_t len)
{
    (void)arg;
    (void)job;
    zreq *z = calloc(1, sizeof *z);
    if (!z || !(z->ctx = zmq_ctx_new()) ||
        !(z->sock = zmq_socket(z->ctx, side == 0 ? ZMQ_REQ : ZMQ_REP))) {
        snprintf(why, len, "zmq socket: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    const int tmo_ms = (int)(BENCH_OP_TIMEOUT_NS / 1000000);
    if (zr_set(z->sock, ZMQ_SNDTIMEO, tmo_ms) || zr_set(z->sock, ZMQ_RCVTIMEO, tmo_ms) ||
        zr_set(z->sock, ZMQ_LINGER, 1000)) {
        snprintf(why, len, "zmq_setsockopt: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (side == 0) {
        char ep[sizeof rdv->endpoint];
        snprintf(ep, sizeof ep, "ipc://%s/zmq.sock", rdv->dir);
        if (zmq_bind(z->sock, ep) != 0) {
            snprintf(why, len, "zmq_bind %s: %s", ep, zmq_strerror(zmq_errno()));
            goto fail;
        }
        bench_rdv_publish(rdv, ep);
    } else {
        const char *ep = bench_rdv_wait(rdv);
        if (!ep) {
            snprintf(why, len, "no endpoint from the other side");
            goto fail;
        }
        if (zmq_connect(z->sock, ep) != 0) {
            snprintf(why, len, "zmq_connect %s: %s", ep, zmq_strerror(zmq_errno()));
            goto fail;
        }
    }
    return z;
fail:
    if (z && z->sock) zmq_close(z->sock);
    if (z && z->ctx) zmq_ctx_term(z->ctx);
    free(z);
    return NULL;
}

static int zr_send(void *s, const void *p, size_t n)
{
    zreq *z = s;
    for (;;) {
        if (zmq_send(z->sock, p, n, 0) == (int)n) return 0;
        if (zmq_errno() != EINTR) return -zmq_errno();
    }
}

static int zr_end(void *s)
{
    return zr_send(s, "", 0);
}

static ssize_t zr_recv(void *s, void *p, size_t cap)
{
    zreq *z = s;
    for (;;) {
        int n = zmq_recv(z->sock, p, cap, 0);
        if (n > (int)cap) return -EMSGSIZE; /* zmq_recv truncates and reports the length */
        if (n >= 0) return n;
        if (zmq_errno() != EINTR) return -zmq_errno();
    }
}

const lib_ops BENCH_LIB_ZMQ_REQREP = {
    .needs_dir = 1,
    .open = zr_open,
    .send = zr_send,
    .end = zr_end,
    .recv = zr_recv,
    .close_and_exit = zr_close_and_exit,
    .error = zr_error,
};

#endif /* FERRY_BENCH_ZMQ */

/* ============================================================================ dbus-call */
#ifdef FERRY_BENCH_SDBUS

#ifndef FERRY_BENCH_DBUS_DAEMON
#define FERRY_BENCH_DBUS_DAEMON "dbus-daemon"
#endif

#define DBUS_NAME  "org.ferry.Bench"
#define DBUS_PATH  "/org/ferry/Bench"
#define DBUS_IFACE "org.ferry.Bench"
#define START_NS   ((int64_t)10 * 1000 * 1000 * 1000)
#define STOP_NS    ((int64_t)5 * 1000 * 1000 * 1000)

static const char CONFIG_HEAD[] =
    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
    " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
    "<busconfig>\n"
    "  <type>session</type>\n"
    "  <keep_umask/>\n";
static const char CONFIG_TAIL[] = "  <auth>EXTERNAL</auth>\n"
                                  "  <policy context=\"default\">\n"
                                  "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                                  "    <allow eavesdrop=\"true\"/>\n"
                                  "    <allow own=\"*\"/>\n"
                                  "  </policy>\n"
                                  "</busconfig>\n";

/* One side's connection. Side 1 keeps the call it has not answered yet; side 0 the reply
 * it has not read yet. */
typedef struct dside {
    sd_bus *bus;
    sd_bus_slot *slot;
    int side;
    sd_bus_message *call, *reply;
    const void *data; /* the call's array (side 1), valid while call is held */
    size_t len;
} dside;

/* The D-Bus error of the last failed call in this process (e.g. the daemon's
 * org.freedesktop.DBus.Error.ServiceUnknown), which says more than its errno. */
static char last_bus_error[200];

static const char *dbus_error(int code)
{
    return last_bus_error[0] ? last_bus_error : strerror(-code);
}

__attribute__((noreturn)) static void dbus_close_and_exit(void *s, int code)
{
    dside *d = s;
    if (d) {
        sd_bus_message_unref(d->call);
        sd_bus_message_unref(d->reply);
        sd_bus_slot_unref(d->slot);
        sd_bus_flush_close_unref(d->bus);
        free(d);
    }
    _exit(code);
}

/* Echo(ay) -> ay: keep the call; the echo loop answers it (dbus_send). */
static int on_echo(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
    dside *d = userdata;
    (void)err;
    if (d->call) return -EBUSY; /* one call at a time: the client waits for each reply */
    int r = sd_bus_message_read_array(m, 'y', &d->data, &d->len);
    if (r < 0) return r;
    d->call = sd_bus_message_ref(m);
    return 1;
}

static const sd_bus_vtable VTABLE[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Echo", "ay", "ay", on_echo, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

static void *dbus_open(const void *arg, const bench_job *job, bench_rdv *rdv, int side, char *why,
                       size_t len)
{
    const char *address = arg;
    (void)job;
    dside *d = calloc(1, sizeof *d);
    int r = -ENOMEM;
    if (!d) goto fail;
    d->side = side;
    /* The measuring side calls only once the peer owns the name. */
    if (side == 0 && !bench_rdv_wait(rdv)) {
        snprintf(why, len, "the server did not get ready");
        goto fail_quiet;
    }
    if ((r = sd_bus_new(&d->bus)) < 0 || (r = sd_bus_set_address(d->bus, address)) < 0 ||
        (r = sd_bus_set_bus_client(d->bus, 1)) < 0 || (r = sd_bus_start(d->bus)) < 0)
        goto fail;
    if (side == 1) {
        if ((r = sd_bus_request_name(d->bus, DBUS_NAME, 0)) < 0 ||
            (r = sd_bus_add_object_vtable(d->bus, &d->slot, DBUS_PATH, DBUS_IFACE, VTABLE, d)) < 0)
            goto fail;
        bench_rdv_publish(rdv, DBUS_NAME);
    }
    return d;
fail:
    snprintf(why, len, "sd-bus %s: %s", side == 0 ? "client" : "server", strerror(-r));
fail_quiet:
    if (d) {
        sd_bus_slot_unref(d->slot);
        sd_bus_flush_close_unref(d->bus);
    }
    free(d);
    return NULL;
}

/* A call of Echo carrying p[0..n). */
static int new_call(dside *d, const void *p, size_t n, sd_bus_message **m)
{
    int r = sd_bus_message_new_method_call(d->bus, m, DBUS_NAME, DBUS_PATH, DBUS_IFACE, "Echo");
    if (r < 0) return r;
    if ((r = sd_bus_message_append_array(*m, 'y', p, n)) < 0) *m = sd_bus_message_unref(*m);
    return r;
}

/* Side 0: the call, blocking until its reply (kept for dbus_recv). Side 1: the reply to
 * the call kept by on_echo. */
static int dbus_send(void *s, const void *p, size_t n)
{
    dside *d = s;
    sd_bus_message *m = NULL;
    int r;
    if (d->side == 0) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        if ((r = new_call(d, p, n, &m)) < 0) return r;
        d->reply = sd_bus_message_unref(d->reply);
        r = sd_bus_call(d->bus, m, (uint64_t)(BENCH_OP_TIMEOUT_NS / 1000), &e, &d->reply);
        if (r < 0 && sd_bus_error_is_set(&e))
            snprintf(last_bus_error, sizeof last_bus_error, "%s: %s", e.name,
                     e.message ? e.message : strerror(-r));
        sd_bus_error_free(&e);
        sd_bus_message_unref(m);
        return r < 0 ? r : 0;
    }
    if (!d->call) return -EPROTO;
    if ((r = sd_bus_message_new_method_return(d->call, &m)) >= 0 &&
        (r = sd_bus_message_append_array(m, 'y', p, n)) >= 0)
        r = sd_bus_send(d->bus, m, NULL);
    sd_bus_message_unref(m);
    d->call = sd_bus_message_unref(d->call);
    return r < 0 ? r : 0;
}

/* The end marker: an empty Echo, no reply expected, flushed before we wait. */
static int dbus_end(void *s)
{
    dside *d = s;
    sd_bus_message *m = NULL;
    int r = new_call(d, "", 0, &m);
    if (r >= 0 && (r = sd_bus_message_set_expect_reply(m, 0)) >= 0 &&
        (r = sd_bus_send(d->bus, m, NULL)) >= 0)
        r = sd_bus_flush(d->bus);
    sd_bus_message_unref(m);
    return r < 0 ? r : 0;
}

static ssize_t dbus_recv(void *s, void *p, size_t cap)
{
    dside *d = s;
    const void *data;
    size_t n;
    if (d->side == 0) {
        if (!d->reply) return -EPROTO;
        int r = sd_bus_message_read_array(d->reply, 'y', &data, &n);
        if (r < 0) return r;
    } else {
        const int64_t deadline = bench_now_ns() + BENCH_OP_TIMEOUT_NS;
        while (!d->call) {
            int r = sd_bus_process(d->bus, NULL);
            if (r < 0) return r;
            if (r > 0 || d->call) continue;
            int64_t left = deadline - bench_now_ns();
            if (left <= 0) return -ETIMEDOUT;
            r = sd_bus_wait(d->bus, (uint64_t)left / 1000);
            if (r < 0 && r != -EINTR) return r;
        }
        data = d->data;
        n = d->len;
        if (n == 0) d->call = sd_bus_message_unref(d->call); /* the end: no reply */
    }
    if (n > cap) return -EMSGSIZE;
    if (n) memcpy(p, data, n);
    return (ssize_t)n;
}

static const lib_ops DBUS_OPS = {
    .needs_dir = 0,
    .open = dbus_open,
    .send = dbus_send,
    .end = dbus_end,
    .recv = dbus_recv,
    .close_and_exit = dbus_close_and_exit,
    .error = dbus_error,
};

/* The program: the one found at build time, else dbus-daemon on PATH; NULL if none. */
static const char *daemon_program(void)
{
    static char found[PATH_MAX];
    if (strchr(FERRY_BENCH_DBUS_DAEMON, '/') && access(FERRY_BENCH_DBUS_DAEMON, X_OK) == 0)
        return FERRY_BENCH_DBUS_DAEMON;
    const char *path = getenv("PATH");
    if (!path) return NULL;
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ":");
        snprintf(found, sizeof found, "%.*s/dbus-daemon", (int)len, p);
        if (len > 0 && access(found, X_OK) == 0) return found;
        p += len + (p[len] == ':');
    }
    return NULL;
}

const char *bench_dbus_unavailable(void)
{
    return daemon_program() ? NULL : "dbus-daemon not found (Debian package dbus)";
}

/* One measurement's daemon. */
typedef struct dbusd {
    char dir[PATH_MAX - 32];
    char address[512];
    pid_t pid;
} dbusd;

static void dir_file(const dbusd *b, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", b->dir, name);
}

/* The last line of the daemon's log, for an error message. */
static void log_tail(const dbusd *b, char *out, size_t len)
{
    char p[PATH_MAX], buf[4096];
    dir_file(b, "daemon.log", p, sizeof p);
    FILE *f = fopen(p, "re");
    out[0] = '\0';
    if (!f) return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) n--;
    buf[n] = '\0';
    char *last = strrchr(buf, '\n');
    snprintf(out, len, "%.150s", last ? last + 1 : buf);
}

__attribute__((noreturn)) static void exec_daemon(const dbusd *b, const char *prog, int addr_fd)
{
    char cfg[PATH_MAX], logp[PATH_MAX], cfgarg[PATH_MAX + 16];
    dir_file(b, "bus.conf", cfg, sizeof cfg);
    dir_file(b, "daemon.log", logp, sizeof logp);
    bench_child_signals();
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* stop with the bench, whatever happens */
    cpu_set_t all; /* unpinned: the driver's pinning is for the two measured processes */
    CPU_ZERO(&all);
    for (int c = 0; c < CPU_SETSIZE; c++) CPU_SET(c, &all);
    sched_setaffinity(0, sizeof all, &all);
    int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ||
        dup2(addr_fd, 3) < 0) /* dup2 clears FD_CLOEXEC */
        _exit(127);
    snprintf(cfgarg, sizeof cfgarg, "--config-file=%s", cfg);
    execl(prog, prog, cfgarg, "--nofork", "--nopidfile", "--print-address=3", (char *)NULL);
    _exit(127);
}

static void daemon_stop(dbusd *b)
{
    if (b->pid > 0) {
        int status;
        kill(b->pid, SIGTERM);
        const int64_t deadline = bench_now_ns() + STOP_NS;
        while (waitpid(b->pid, &status, WNOHANG) != b->pid) {
            if (bench_now_ns() > deadline) {
                kill(b->pid, SIGKILL);
                waitpid(b->pid, &status, 0);
                break;
            }
            nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
        }
        b->pid = -1;
    }
    if (b->dir[0]) {
        static const char *const FILES[] = {"bus", "bus.conf", "daemon.log"};
        char p[PATH_MAX];
        for (size_t i = 0; i < sizeof FILES / sizeof *FILES; i++) {
            dir_file(b, FILES[i], p, sizeof p);
            unlink(p);
        }
        rmdir(b->dir);
        b->dir[0] = '\0';
    }
}

/* Read the address line from fd within the start timeout. 0, or -1 with res->err. */
static int read_address(dbusd *b, int fd, bench_result *res)
{
    size_t got = 0;
    const int64_t deadline = bench_now_ns() + START_NS;
    for (;;) {
        int64_t left = deadline - bench_now_ns();
        if (left <= 0) return bench_fail(res, "dbus-daemon printed no address within 10 s");
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)(left / 1000000) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return bench_fail(res, "poll: %s", strerror(errno));
        if (r == 0) continue;
        ssize_t n = read(fd, b->address + got, sizeof b->address - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            char tail[200];
            log_tail(b, tail, sizeof tail);
            return bench_fail(res, "dbus-daemon exited at start: %s", tail[0] ? tail : "no log");
        }
        got += (size_t)n;
        b->address[got] = '\0';
        char *nl = strchr(b->address, '\n');
        if (nl) {
            *nl = '\0';
            return 0;
        }
        if (got == sizeof b->address - 1) return bench_fail(res, "dbus-daemon: address too long");
    }
}

/* Make the directory and config, start the daemon, read its address. 0, or -1 with
 * res->err set and everything removed. */
static int daemon_start(dbusd *b, bench_result *res)
{
    const char *prog = daemon_program(), *tmp = getenv("TMPDIR");
    char p[PATH_MAX];
    int fds[2] = {-1, -1};
    b->pid = -1;
    if (!prog) return bench_fail(res, "dbus-daemon not found");
    int n =
        snprintf(b->dir, sizeof b->dir, "%s/ferry-bench-dbus-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (n < 0 || (size_t)n >= sizeof b->dir || (size_t)n + 5 > 100) {
        b->dir[0] = '\0';
        return bench_fail(res, "TMPDIR is too long for a socket path");
    }
    if (!mkdtemp(b->dir)) {
        b->dir[0] = '\0';
        return bench_fail(res, "mkdtemp: %s", strerror(errno));
    }
    dir_file(b, "bus.conf", p, sizeof p);
    FILE *f = fopen(p, "we");
    if (!f || fputs(CONFIG_HEAD, f) < 0 ||
        fprintf(f, "  <listen>unix:path=%s/bus</listen>\n", b->dir) < 0 ||
        fputs(CONFIG_TAIL, f) < 0 || fclose(f) != 0) {
        int e = errno;
        daemon_stop(b);
        return bench_fail(res, "writing the dbus-daemon config: %s", strerror(e));
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        int e = errno;
        daemon_stop(b);
        return bench_fail(res, "pipe: %s", strerror(e));
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) exec_daemon(b, prog, fds[1]);
    int e = errno;
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        daemon_stop(b);
        return bench_fail(res, "fork: %s", strerror(e));
    }
    b->pid = pid;
    int rc = read_address(b, fds[0], res);
    close(fds[0]);
    if (rc != 0) daemon_stop(b);
    return rc;
}

int bench_dbus_call(const bench_job *job, bench_result *res)
{
    dbusd b = {.pid = -1};
    if (daemon_start(&b, res) != 0) return -1;
    const lib_spec spec = {&DBUS_OPS, b.address};
    bench_job j = *job;
    j.arg = &spec;
    int rc = bench_lib(&j, res);
    daemon_stop(&b);
    return rc;
}

#endif /* FERRY_BENCH_SDBUS */
