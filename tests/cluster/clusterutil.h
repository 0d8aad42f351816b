// SPDX-License-Identifier: MIT
/*
 * clusterutil.h — two "hosts" on one machine for the bridge's tests: two network
 * namespaces the test makes (unique names fc<pid>a / fc<pid>b), a veth pair between them
 * (made inside the namespaces, never in the caller's: 10.99.0.1 and 10.99.0.2, loopback
 * up in each), a nats-server per namespace listening on its veth address only and
 * clustered with the other by a route (users and passwords generated per run, per-user
 * subject permissions as docs/cluster.md says), a ferryd per host (its own socket
 * path) and a ferry-bridge per host running as an unprivileged uid (forked, not exec'd;
 * exec'd from CL_BRIDGE_PROGRAM when the includer defines it, as ferry bench does).
 * Everything is removed at exit, also after a failed CHECK or the test's alarm: the
 * processes (SIGKILL, reaped), the namespaces (their veth ends go with them) and the
 * directory. Include after testutil.h and secutil.h.
 */
#ifndef FERRY_CLUSTERUTIL_H
#define FERRY_CLUSTERUTIL_H

#include "bridge.h"

#include <nats/nats.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define BRIDGE_UID 61818
#define CALLER_UID 61819

static const ident BRIDGE_ID = {BRIDGE_UID, BRIDGE_UID, 0, {0}};
static const ident CALLER_ID = {CALLER_UID, CALLER_UID, 0, {0}};

typedef struct host {
    char ns[32];
    char addr[16];
    char user[16];
    char sock[100]; /* fits sun_path */
    char conf[128];
    char log[128];
    pid_t nats, ferryd, bridge;
} host;

typedef struct cluster {
    char dir[64];
    char pw[3][40]; /* hosta, hostb, hostc */
    char routepw[40];
    host h[2];
    int ns_made[2];
    pid_t owner;
} cluster;

static cluster *cl_current;

static void cl_kill(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        *pid = -1;
    }
}

static void cl_cleanup(void)
{
    cluster *c = cl_current;
    if (!c || getpid() != c->owner) return;
    /* a second signal (the test's alarm and CTest's or timeout's TERM at once) must not
     * exit again from inside this exit: the namespaces would stay */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGALRM, SIG_IGN);
    for (int i = 0; i < 2; i++) {
        cl_kill(&c->h[i].bridge);
        cl_kill(&c->h[i].nats);
        cl_kill(&c->h[i].ferryd);
    }
    char cmd[256];
    for (int i = 0; i < 2; i++)
        if (c->ns_made[i]) {
            snprintf(cmd, sizeof cmd, "ip netns del %s", c->h[i].ns);
            if (system(cmd) != 0) fprintf(stderr, "cleanup: %s failed\n", cmd);
            c->ns_made[i] = 0;
        }
    if (c->dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", c->dir);
        if (system(cmd) != 0) fprintf(stderr, "cleanup: %s failed\n", cmd);
        c->dir[0] = 0;
    }
    cl_current = NULL;
}

static void cl_on_signal(int sig)
{
    (void)sig;
    exit(1); /* runs cl_cleanup (atexit) */
}

/* Skip (exit 77) unless root with `ip` and nats-server. */
static inline void cl_require(void)
{
    if (geteuid() != 0) {
        printf("SKIP: not root (network namespaces need it)\n");
        exit(77);
    }
    if (system("command -v ip >/dev/null 2>&1") != 0) {
        printf("SKIP: no `ip` command (iproute2)\n");
        exit(77);
    }
    if (system("command -v nats-server >/dev/null 2>&1") != 0) {
        printf("SKIP: no nats-server (Debian nats-server)\n");
        exit(77);
    }
}

static inline void cl_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void cl_sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) {
        fprintf(stderr, "command failed: %s\n", cmd);
        exit(1);
    }
}

static inline void cl_enter(const host *h)
{
    char p[64];
    snprintf(p, sizeof p, "/run/netns/%s", h->ns);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(setns(fd, CLONE_NEWNET) == 0);
    close(fd);
}

/* Fork a child in h's namespace, with h's ferryd, as id, running fn(arg). */
static inline pid_t cl_spawn(const host *h, const ident *id, void (*fn)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        cl_current = NULL; /* the child cleans nothing up */
        signal(SIGTERM, SIG_DFL);
        signal(SIGALRM, SIG_DFL);
        alarm(0);
        cl_enter(h);
        setenv("FERRY_BROKER", h->sock, 1);
        setenv("FERRY_NO_AUTOSPAWN", "1", 1);
        become(id, parent);
        fn(arg);
        fflush(stdout);
        _exit(0);
    }
    return pid;
}

static void cl_random(char *out, size_t n)
{
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char r[64];
    CHECK(n <= sizeof r + 1);
    CHECK(getrandom(r, n - 1, 0) == (ssize_t)(n - 1));
    for (size_t i = 0; i + 1 < n; i++) out[i] = al[r[i] % (sizeof al - 1)];
    out[n - 1] = 0;
}

static void cl_write(const char *path, const char *text, mode_t mode, uid_t uid)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    CHECK(fchown(fd, uid, (gid_t)-1) == 0);
    close(fd);
}

/* The permissions docs/cluster.md asks of every user U of cluster "t". */
/* cl_tls: the clients' connections use TLS with client certificates that the servers map
 * to the users (verify_and_map: user "CN=hosta"), no passwords (cl_up makes a CA, a
 * server certificate per host and a client certificate per user with the openssl CLI). */
static int cl_tls;
/* cl_js: the servers run JetStream (a store per server in the test's directory), for
 * bridges with --jetstream */
static int cl_js;

static void cl_user_conf(char *out, size_t cap, const char *u, const char *pw)
{
    char who[128];
    if (cl_tls)
        snprintf(who, sizeof who, "user: \"CN=%s\"", u);
    else
        snprintf(who, sizeof who, "user: %s, password: \"%s\"", u, pw);
    /* JetStream (docs/cluster.md): publishing into others' streams as itself, and the API
     * of its own stream ferry_t_U only */
    snprintf(
        out, cap,
        "    { %s, permissions: {\n"
        "        publish: { allow: [\"ferry.t.hb.%s\", \"ferry.t.rpc.*.%s.>\",\n"
        "          \"ferry.t.mq.*.%s.>\", \"$JS.API.STREAM.CREATE.ferry_t_%s\",\n"
        "          \"$JS.API.STREAM.INFO.ferry_t_%s\", \"$JS.API.CONSUMER.CREATE.ferry_t_%s.>\",\n"
        "          \"$JS.API.CONSUMER.DURABLE.CREATE.ferry_t_%s.*\",\n"
        "          \"$JS.API.CONSUMER.INFO.ferry_t_%s.*\",\n"
        "          \"$JS.API.CONSUMER.MSG.NEXT.ferry_t_%s.*\", \"$JS.ACK.ferry_t_%s.>\"] },\n"
        "        subscribe: { allow: [\"ferry.t.hb.*\", \"ferry.t.rpc.%s.*.>\", "
        "\"ferry.t.reply.%s.>\"] },\n"
        "        allow_responses: true } }\n",
        who, u, u, u, u, u, u, u, u, u, u, u, u);
}

static inline void cl_write_nats_conf(cluster *c, int i)
{
    host *h = &c->h[i], *o = &c->h[1 - i];
    char users[3][2048], text[10000], js[256] = "";
    const char *names[3] = {"hosta", "hostb", "hostc"};
    for (int k = 0; k < 3; k++) cl_user_conf(users[k], sizeof users[k], names[k], c->pw[k]);
    char tls[512] = "";
    if (cl_tls)
        snprintf(tls, sizeof tls,
                 "tls { cert_file: \"%s/srv-%s.pem\", key_file: \"%s/srv-%s.key\",\n"
                 "      ca_file: \"%s/ca.pem\", verify_and_map: true }\n",
                 c->dir, h->user, c->dir, h->user, c->dir);
    if (cl_js) snprintf(js, sizeof js, "jetstream { store_dir: \"%s/js-%s\" }\n", c->dir, h->user);
    snprintf(text, sizeof text,
             "server_name: %s\nlisten: \"%s:4222\"\n%s%s"
             /* 10 s to authenticate: a client forked on a machine at load 50 may take
                longer than the default 2 s, and cnats gives a connection up for good on
                that error */
             "authorization { timeout: 10, users: [\n%s%s%s] }\n"
             "cluster { name: ferrytest\n  listen: \"%s:6222\"\n  no_advertise: true\n"
             "  authorization { user: route, password: \"%s\" }\n"
             "  routes: [\"nats-route://route:%s@%s:6222\"] }\n",
             h->user, h->addr, tls, js, users[0], users[1], users[2], h->addr, c->routepw,
             c->routepw, o->addr);
    cl_write(h->conf, text, 0600, 0);
}

static void nats_child(void *arg)
{
    host *h = arg;
    int fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    execlp("nats-server", "nats-server", "-c", h->conf, (char *)NULL);
    _exit(127);
}

static void tcp_probe(void *arg)
{
    const host *h = arg;
    for (int i = 0; i < 1000; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(4222)};
        inet_pton(AF_INET, h->addr, &sa.sin_addr);
        int ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(s);
        if (ok) _exit(0);
        sleep_ms(10);
    }
    _exit(1);
}

/* (Re)start h's nats-server and wait until it accepts on its address. */
static inline void cl_nats_start(cluster *c, int i)
{
    host *h = &c->h[i];
    h->nats = cl_spawn(h, &ROOT, nats_child, h);
    wait_ok(cl_spawn(h, &ROOT, tcp_probe, h));
}

static inline void cl_nats_stop(cluster *c, int i)
{
    host *h = &c->h[i];
    kill(h->nats, SIGTERM);
    waitpid(h->nats, NULL, 0);
    h->nats = -1;
}

static void ferryd_child(void *arg)
{
    host *h = arg;
    execl(FERRYD_PATH, FERRYD_PATH, "--foreground", "--socket", h->sock, (char *)NULL);
    _exit(127);
}

typedef struct bridge_args {
    const host *h;
    const char *dir;
    const char *pwfile;
    const char *extra[24];
} bridge_args;

#include <execinfo.h>
static void segv_trace(int sig)
{
    void *fr[64];
    int n = backtrace(fr, 64);
    backtrace_symbols_fd(fr, n, 2);
    signal(sig, SIG_DFL);
    raise(sig);
}
static void bridge_child(void *arg)
{
    if (getenv("CL_VERBOSE")) signal(SIGSEGV, segv_trace);
    bridge_args *a = arg;
    char url[64], ca[128], cert[128], key[128];
    snprintf(url, sizeof url, "%s://%s:4222", cl_tls ? "tls" : "nats", a->h->addr);
    char *argv[40] = {"ferry-bridge",    "--nats",           url,
                      "--user",          (char *)a->h->user, "--password-file",
                      (char *)a->pwfile, "--cluster",        "t"};
    int n = 9;
    if (cl_tls) { /* a client certificate instead of the password */
        snprintf(ca, sizeof ca, "%s/ca.pem", a->dir);
        snprintf(cert, sizeof cert, "%s/cli-%s.pem", a->dir, a->h->user);
        snprintf(key, sizeof key, "%s/cli-%s.key", a->dir, a->h->user);
        n = 5;
        argv[n++] = "--tls-ca";
        argv[n++] = ca;
        argv[n++] = "--tls-cert";
        argv[n++] = cert;
        argv[n++] = "--tls-key";
        argv[n++] = key;
        argv[n++] = "--cluster";
        argv[n++] = "t";
    }
    /* 5 missed heartbeats before a name goes: this machine may stall a loop for 600 ms */
    argv[n++] = "--dead-after";
    argv[n++] = "5";
    if (getenv("CL_VERBOSE")) argv[n++] = "--verbose";
    for (int k = 0; a->extra[k] && n < 38; k++) argv[n++] = (char *)a->extra[k];
    argv[n] = NULL;
#ifdef CL_BRIDGE_PROGRAM
    /* ferry bench (bench_nats.c): the ferry-bridge program, not the code linked in */
    execv(CL_BRIDGE_PROGRAM, argv);
    _exit(127);
#else
    exit(ferry__bridge_main(n, argv)); /* exit: a sanitizer build checks for leaks */
#endif
}

/* Start h's bridge (as BRIDGE_ID) with extra arguments (NULL-terminated). */
static inline void cl_bridge_start(cluster *c, int i, const char *const *extra)
{
    host *h = &c->h[i];
    char pwfile[128], pw[64];
    snprintf(pwfile, sizeof pwfile, "%s/pw-%s", c->dir, h->user);
    snprintf(pw, sizeof pw, "%s\n", c->pw[i]);
    cl_write(pwfile, pw, 0600, BRIDGE_UID);
    bridge_args a = {.h = h, .pwfile = pwfile, .dir = c->dir};
    for (int k = 0; extra && extra[k] && k < 23; k++) a.extra[k] = extra[k];
    h->bridge = cl_spawn(h, &BRIDGE_ID, bridge_child, &a);
}

/* The CA, the servers' certificates (SAN: their addresses) and the users' client
 * certificates (CN=hosta...; keys readable by the bridges' uid only), in c->dir. */
static inline void cl_make_certs(cluster *c)
{
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    cl_sh("cd %s && openssl req -x509 %s -keyout ca.key -out ca.pem -days 1 "
          "-subj /CN=ferry-test-ca 2>/dev/null",
          c->dir, ec);
    for (int i = 0; i < 2; i++) {
        const host *h = &c->h[i];
        cl_sh("cd %s && printf 'subjectAltName=IP:%s\n' > srv-%s.ext && "
              "openssl req %s -keyout srv-%s.key -out srv-%s.csr -subj /CN=nats-%s 2>/dev/null &&"
              " openssl x509 -req -in srv-%s.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
              "-out srv-%s.pem -days 1 -extfile srv-%s.ext 2>/dev/null",
              c->dir, h->addr, h->user, ec, h->user, h->user, h->user, h->user, h->user, h->user);
    }
    const char *users[3] = {"hosta", "hostb", "hostc"};
    for (int k = 0; k < 3; k++) {
        cl_sh("cd %s && printf 'extendedKeyUsage=clientAuth\n' > cli.ext && "
              "openssl req %s -keyout cli-%s.key -out cli-%s.csr -subj /CN=%s 2>/dev/null && "
              "openssl x509 -req -in cli-%s.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
              "-out cli-%s.pem -days 1 -extfile cli.ext 2>/dev/null && "
              "chown %d cli-%s.key && chmod 600 cli-%s.key && chmod 644 ca.pem cli-%s.pem",
              c->dir, ec, users[k], users[k], users[k], users[k], users[k], BRIDGE_UID, users[k],
              users[k], users[k]);
    }
}

/* Start h's ferryd (as root) and wait until its socket takes connections. */
static inline void cl_ferryd_start(host *h)
{
    h->ferryd = cl_spawn(h, &ROOT, ferryd_child, h);
    for (int k = 0; k < 500 && !broker_connectable(h->sock); k++) sleep_ms(10);
    CHECK(broker_connectable(h->sock));
}

/* kill -9 of h's ferryd, then a new one on the same socket path. */
static inline void cl_ferryd_restart(host *h)
{
    cl_kill(&h->ferryd);
    unlink(h->sock);
    cl_ferryd_start(h);
}

/* Namespaces, veth, configs, nats-servers and ferryds (no bridges yet). */
static inline void cl_up(cluster *c)
{
    memset(c, 0, sizeof *c);
    c->owner = getpid();
    for (int i = 0; i < 2; i++) c->h[i].nats = c->h[i].ferryd = c->h[i].bridge = -1;
    cl_current = c;
    atexit(cl_cleanup);
    signal(SIGTERM, cl_on_signal);
    signal(SIGINT, cl_on_signal);
    snprintf(c->dir, sizeof c->dir, "/tmp/ferry-cluster-XXXXXX");
    CHECK(mkdtemp(c->dir) != NULL);
    chmod(c->dir, 0755); /* the bridges and callers run as other uids */
    for (int k = 0; k < 3; k++) cl_random(c->pw[k], sizeof c->pw[k]);
    cl_random(c->routepw, sizeof c->routepw);
    for (int i = 0; i < 2; i++) {
        host *h = &c->h[i];
        snprintf(h->ns, sizeof h->ns, "fc%d%c", (int)getpid(), 'a' + i);
        snprintf(h->addr, sizeof h->addr, "10.99.0.%d", i + 1);
        snprintf(h->user, sizeof h->user, "host%c", 'a' + i);
        snprintf(h->sock, sizeof h->sock, "%s/ferryd-%c.sock", c->dir, 'a' + i);
        snprintf(h->conf, sizeof h->conf, "%s/nats-%c.conf", c->dir, 'a' + i);
        snprintf(h->log, sizeof h->log, "%s/nats-%c.log", c->dir, 'a' + i);
        cl_sh("ip netns add %s", h->ns);
        c->ns_made[i] = 1;
        cl_sh("ip -n %s link set lo up", h->ns);
    }
    /* the veth pair is made inside the first namespace, its peer put in the second */
    cl_sh("ip -n %s link add fv0 type veth peer name fv1 netns %s", c->h[0].ns, c->h[1].ns);
    for (int i = 0; i < 2; i++) {
        cl_sh("ip -n %s addr add %s/24 dev fv%d", c->h[i].ns, c->h[i].addr, i);
        cl_sh("ip -n %s link set fv%d up", c->h[i].ns, i);
    }
    if (cl_tls) cl_make_certs(c);
    for (int i = 0; i < 2; i++) cl_write_nats_conf(c, i);
    for (int i = 0; i < 2; i++) cl_ferryd_start(&c->h[i]);
    for (int i = 0; i < 2; i++) cl_nats_start(c, i);
}

/* Stop everything cleanly (bridges and ferryds must exit 0 on SIGTERM), then clean up. */
static inline void cl_down(cluster *c)
{
    for (int i = 0; i < 2; i++) {
        host *h = &c->h[i];
        if (h->bridge > 0) {
            kill(h->bridge, SIGTERM);
            wait_ok(h->bridge);
            h->bridge = -1;
        }
        if (h->ferryd > 0) {
            kill(h->ferryd, SIGTERM);
            wait_ok(h->ferryd);
            h->ferryd = -1;
        }
        if (h->nats > 0) cl_nats_stop(c, i);
    }
    cl_cleanup();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "ip netns list | grep -q '^fc%d'", (int)getpid());
    CHECK(system(cmd) != 0); /* no namespace left */
}

/* ------------------------------------------------------------------ the tests' common parts */

/* The start of every cluster test's main: skip unless root with `ip` and nats-server, arm
 * the test's alarm (secs), map `shared` bytes shared with the children (MAP_SHARED before
 * any fork; 0: none, NULL returned) and bring the cluster up (cl_up). */
static inline void *cl_begin(cluster *c, unsigned secs, size_t shared)
{
    cl_require();
    test_deadline(secs);
    void *sh = NULL;
    if (shared) {
        sh = mmap(NULL, shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(sh != MAP_FAILED);
    }
    cl_up(c);
    return sh;
}

/* Both bridges: A's and B's arguments (NULL-terminated). */
static inline void cl_bridges(cluster *c, const char *const *a, const char *const *b)
{
    cl_bridge_start(c, 0, a);
    cl_bridge_start(c, 1, b);
}

/* A name's policy that lets the bridge's uid connect: the opt-in to export. */
static inline void cl_bridge_policy(ferry_policy *pol)
{
    ferry_policy_init(pol);
    pol->n_uids = 1;
    pol->allow_uids[0] = BRIDGE_UID;
}

/* An RPC handler that sends every request back as its reply. */
static inline void cl_echo(ferry_rpc_server *conn, ferry_rpc_request *rq, void *ctx)
{
    (void)ctx;
    ferry_msg r = {.data = rq->msg.data, .len = rq->msg.len};
    ferry_reply(conn, rq->id, &r, 5 * SEC);
}

static _Atomic uint64_t cl_handled; /* requests handled (per server process) */

/* An RPC handler: "count" replies with the number of requests handled before it
 * (cl_handled, per server process); "sleep:MS" sleeps, then replies it reversed; anything
 * else is replied reversed. */
static inline void cl_reverse(ferry_rpc_server *conn, ferry_rpc_request *rq, void *ctx)
{
    (void)ctx;
    char out[512];
    size_t n = rq->msg.len < sizeof out ? rq->msg.len : sizeof out;
    const char *in = rq->msg.data;
    if (n == 5 && memcmp(in, "count", 5) == 0) {
        uint64_t v = atomic_load(&cl_handled);
        ferry_msg r = {.data = &v, .len = sizeof v};
        ferry_reply(conn, rq->id, &r, 5 * SEC);
        return;
    }
    if (n == 7 && memcmp(in, "fdreply", 7) == 0) { /* (not counted) */
        /* A reply with an fd, then, when that sent nothing, one saying what it returned
         * (towards a remote caller: -EOPNOTSUPP, and the id still awaits its reply). */
        int p[2];
        int rc = pipe(p) == 0 ? 0 : -errno;
        if (rc == 0) {
            ferry_msg r = {.data = "fd", .len = 2, .fds = {p[0]}, .nfds = 1};
            rc = ferry_reply(conn, rq->id, &r, 5 * SEC);
            close(p[0]);
            close(p[1]);
        }
        if (rc < 0) {
            int len = snprintf(out, sizeof out, "fd:%d", rc);
            ferry_msg r = {.data = out, .len = (size_t)len};
            ferry_reply(conn, rq->id, &r, 5 * SEC);
        }
        return;
    }
    atomic_fetch_add(&cl_handled, 1);
    if (n > 6 && memcmp(in, "sleep:", 6) == 0) {
        char num[16] = {0};
        memcpy(num, in + 6, n - 6 < 15 ? n - 6 : 15);
        sleep_ms(atoi(num));
    }
    for (size_t i = 0; i < n; i++) out[i] = in[n - 1 - i];
    ferry_msg r = {.data = out, .len = n};
    ferry_reply(conn, rq->id, &r, 5 * SEC);
}

/* A child's body: serve name with fn on threads threads (the bridge policy), forever. */
static inline void cl_serve_forever(const char *name, ferry_rpc_handler fn, unsigned threads)
{
    ferry_policy pol;
    cl_bridge_policy(&pol);
    ferry_rpc_service *svc;
    CHECK_EQ(ferry_serve(name, fn, NULL, threads, &pol, NULL, &svc, 5 * SEC), 0);
    for (;;) pause();
}

/* Wait (looking up every 20 ms) until name is there (present) or gone: 0, or -1 after
 * limit_ns. */
static inline int cl_wait_name(const char *name, int present, int64_t limit_ns)
{
    int64_t end = now_ns() + limit_ns;
    for (;;) {
        ferry_name_info info;
        int rc = ferry_lookup(name, &info, 2 * SEC);
        if (present ? rc == 0 : rc == -ENOENT) return 0;
        if (now_ns() > end) return -1;
        sleep_ms(20);
    }
}

/* Connect an RPC client to name once it is there (retrying every 20 ms for 20 s). */
static inline ferry_rpc_client *cl_rpc_connect(const char *name)
{
    int64_t end = now_ns() + 20 * SEC;
    ferry_rpc_client *c;
    while (ferry_rpc_connect(name, FERRY_KIND_SHM, NULL, &c, 2 * SEC) != 0) {
        CHECK(now_ns() < end);
        sleep_ms(20);
    }
    return c;
}

/* A mailbox (capacity, max_msg) published under name with the bridge policy: *mb and
 * *pub are the caller's. */
static inline void cl_mailbox_publish(const char *name, uint32_t capacity, size_t max_msg,
                                      ferry_mailbox **mb, ferry_pub **pub)
{
    ferry_mailbox_opts o;
    ferry_mailbox_opts_init(&o);
    o.capacity = capacity;
    o.max_msg = max_msg;
    CHECK_EQ(ferry_mailbox_create(&o, mb), 0);
    ferry_policy pol;
    cl_bridge_policy(&pol);
    CHECK_EQ(ferry_publish(name, ferry_mailbox_fd(*mb), FERRY_OBJ_MAILBOX, &pol, pub, 5 * SEC), 0);
}

/* Open the mailbox published (or imported) under name once it is there (-ENOENT until
 * then; 20 s at most). */
static inline ferry_mailbox *cl_mailbox_open(const char *name)
{
    ferry_mailbox *mb = NULL;
    int64_t end = now_ns() + 20 * SEC;
    int rc;
    while ((rc = ferry_mailbox_open(name, &mb, 2 * SEC)) != 0) {
        CHECK_EQ(rc, -ENOENT);
        CHECK(now_ns() < end);
        sleep_ms(20);
    }
    return mb;
}

/* A raw NATS client on host B as the third user, hostc (its replies under
 * ferry.t.reply.hostc, as its permissions say); on_err (may be NULL) gets the
 * connection's asynchronous errors. The caller destroys it. */
static inline natsConnection *cl_nats_hostc(const cluster *c, natsErrHandler on_err)
{
    natsOptions *o;
    natsConnection *nc;
    CHECK(natsOptions_Create(&o) == NATS_OK);
    CHECK(natsOptions_SetURL(o, "nats://10.99.0.2:4222") == NATS_OK);
    CHECK(natsOptions_SetUserInfo(o, "hostc", c->pw[2]) == NATS_OK);
    CHECK(natsOptions_SetCustomInboxPrefix(o, "ferry.t.reply.hostc") == NATS_OK);
    if (on_err) CHECK(natsOptions_SetErrorHandler(o, on_err, NULL) == NATS_OK);
    CHECK(natsConnection_Connect(&nc, o) == NATS_OK);
    natsOptions_Destroy(o);
    return nc;
}

#endif
