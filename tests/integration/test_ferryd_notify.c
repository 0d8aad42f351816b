// SPDX-License-Identifier: MIT
/*
 * test_ferryd_notify — ferryd speaks systemd's readiness protocol (Type=notify) by
 * itself, with the ferryd this build made; the test plays the service manager with a
 * datagram socket (SO_PASSCRED: the kernel names the sender) and $NOTIFY_SOCKET:
 *  - a path: READY=1 (with STATUS=serving PATH) arrives from ferryd's pid, and at that
 *    moment the socket already accepts connections and ferryd answers a lookup
 *    (-ENOENT for a name nobody owns); SIGHUP gives RELOADING=1 (with MONOTONIC_USEC, a
 *    time of CLOCK_MONOTONIC not in the future) then READY=1; SIGTERM
 *    gives STOPPING=1 and exit 0; nothing else is sent.
 *  - an abstract address ("@name"): the same READY=1.
 *  - a policy file with an error: ferryd exits 1 and never says READY=1.
 *  - socket activation (LISTEN_FDS, fd 3): READY=1 names the socket it was given.
 *  - detached (no --foreground): the starting process exits 0 only once READY=1 was sent;
 *    READY=1 comes from the daemon (the pid in its lock file), not from the starter (the
 *    test is a child subreaper, so the daemon stays its child to reap).
 *  - a socket path with a newline: STATUS= stays one line (the newline shown as '?').
 *  - a malformed $NOTIFY_SOCKET (not "/..." or "@..."): ferryd serves all the same.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "daemonutil.h"

#include <ferry/ferry.h>
#include <signal.h>
#include <sys/stat.h>

#define SEC ((int64_t)1000000000)

static test_broker b;

/* Does msg (newline-separated assignments) hold the line want? */
static int has_line(const char *msg, const char *want)
{
    size_t n = strlen(want);
    for (const char *p = msg; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, want, n) && (p[n] == '\n' || p[n] == '\0')) return 1;
    return 0;
}

/* The next notification from pid within 10 s, into buf; it must hold the line want. */
static void expect(int ns, pid_t pid, const char *want, char *buf, size_t cap)
{
    pid_t from;
    ssize_t n = dgram_recv(ns, buf, cap, 10000, &from);
    if (n < 0 || !has_line(buf, want) || from != pid)
        fprintf(stderr, "want '%s' from %d: got %zd bytes '%s' from %d\n", want, (int)pid, n,
                n < 0 ? "" : buf, (int)from);
    CHECK(n > 0);
    CHECK(has_line(buf, want));
    CHECK_EQ(from, pid);
}

/* Nothing more queued on ns. */
static void expect_none(int ns)
{
    char buf[512];
    pid_t from;
    ssize_t n = dgram_recv(ns, buf, sizeof buf, 0, &from);
    if (n >= 0) fprintf(stderr, "unexpected notification '%s' from %d\n", buf, (int)from);
    CHECK(n < 0);
}

/* At READY=1: the socket accepts and ferryd answers. */
static void serves_now(void)
{
    CHECK(broker_connectable(b.sock));
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.test.nobody", &in, 5 * SEC), -ENOENT);
}

/* ferryd --foreground on b.sock, told NOTIFY_SOCKET=addr. */
static pid_t start(const char *addr)
{
    char env[160];
    snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", addr);
    const char *envs[] = {env, NULL};
    const char *args[] = {"--foreground", "--socket", b.sock, "--policy", b.policy, NULL};
    return ferryd_spawn(args, envs, -1, -1);
}

static void test_path(void)
{
    char addr[120], buf[512], want[160];
    snprintf(addr, sizeof addr, "%s/notify", b.dir);
    int ns = dgram_listen(addr);
    pid_t d = start(addr);
    expect(ns, d, "READY=1", buf, sizeof buf);
    serves_now();
    snprintf(want, sizeof want, "STATUS=serving %s", b.sock);
    CHECK(has_line(buf, want));

    CHECK_EQ(kill(d, SIGHUP), 0);
    expect(ns, d, "RELOADING=1", buf, sizeof buf);
    const char *mono = strstr(buf, "\nMONOTONIC_USEC=");
    CHECK(mono != NULL);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    unsigned long long usec = strtoull(mono + 16, NULL, 10),
                       now_us = (unsigned long long)now.tv_sec * 1000000ull +
                                (unsigned long long)now.tv_nsec / 1000;
    CHECK(usec > 0 && usec <= now_us);
    expect(ns, d, "READY=1", buf, sizeof buf);
    serves_now();

    CHECK_EQ(kill(d, SIGTERM), 0);
    expect(ns, d, "STOPPING=1", buf, sizeof buf);
    wait_ok(d);
    expect_none(ns);
    close(ns);
    CHECK(unlink(addr) == 0);
}

static void test_abstract(void)
{
    char addr[120], buf[512];
    snprintf(addr, sizeof addr, "@ferry-test-notify-%d", (int)getpid());
    int ns = dgram_listen(addr);
    pid_t d = start(addr);
    expect(ns, d, "READY=1", buf, sizeof buf);
    serves_now();
    CHECK_EQ(kill(d, SIGTERM), 0);
    expect(ns, d, "STOPPING=1", buf, sizeof buf);
    wait_ok(d);
    expect_none(ns);
    close(ns);
}

static void test_bad_policy(void)
{
    char addr[120];
    snprintf(addr, sizeof addr, "%s/notify", b.dir);
    int ns = dgram_listen(addr);
    FILE *f = fopen(b.policy, "w");
    CHECK(f != NULL);
    fputs("own org.x.* nosuchuser-ferry-test\n", f);
    fclose(f);
    int nul = open("/dev/null", O_WRONLY | O_CLOEXEC); /* its complaint is expected */
    CHECK(nul >= 0);
    char env[160];
    snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", addr);
    const char *envs[] = {env, NULL};
    const char *args[] = {"--foreground", "--socket", b.sock, "--policy", b.policy, NULL};
    pid_t d = ferryd_spawn(args, envs, -1, nul);
    close(nul);
    int st;
    CHECK(waitpid(d, &st, 0) == d);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    expect_none(ns);
    close(ns);
    CHECK(unlink(addr) == 0);
    CHECK(unlink(b.policy) == 0);
    unlink(b.sock);
    char lock[120];
    snprintf(lock, sizeof lock, "%s.lock", b.sock);
    unlink(lock);
}

static void test_activated(void)
{
    char addr[120], buf[512], want[160];
    snprintf(addr, sizeof addr, "%s/notify", b.dir);
    int ns = dgram_listen(addr);
    int lfd = activation_socket(b.sock, 0, 16);
    pid_t d = fork();
    CHECK(d >= 0);
    if (d == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        activation_env(lfd, 126);
        setenv("NOTIFY_SOCKET", addr, 1);
        char unused[120];
        snprintf(unused, sizeof unused, "%s/unused.sock", b.dir);
        execl(FERRYD_PATH, "ferryd", "--foreground", "--socket", unused, "--policy", b.policy,
              (char *)NULL);
        _exit(127);
    }
    expect(ns, d, "READY=1", buf, sizeof buf);
    serves_now();
    snprintf(want, sizeof want, "STATUS=serving %s", b.sock);
    CHECK(has_line(buf, want));
    CHECK_EQ(kill(d, SIGTERM), 0);
    expect(ns, d, "STOPPING=1", buf, sizeof buf);
    wait_ok(d);
    close(lfd);
    CHECK(unlink(b.sock) == 0);
    close(ns);
    CHECK(unlink(addr) == 0);
}

static void test_detached(void)
{
    char addr[120], buf[512], lock[120];
    snprintf(addr, sizeof addr, "%s/notify", b.dir);
    snprintf(lock, sizeof lock, "%s.lock", b.sock);
    int ns = dgram_listen(addr);
    char env[160], logenv[160];
    snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", addr);
    snprintf(logenv, sizeof logenv, "FERRY_LOG=%s/ferryd.log", b.dir); /* not syslog */
    const char *envs[] = {env, logenv, NULL};
    const char *args[] = {"--socket", b.sock, "--policy", b.policy, NULL};
    pid_t starter = ferryd_spawn(args, envs, -1, -1);
    wait_ok(starter); /* exits 0 once the daemon said READY=1 */
    pid_t from;
    ssize_t n = dgram_recv(ns, buf, sizeof buf, 0, &from); /* already there */
    CHECK(n > 0);
    CHECK(has_line(buf, "READY=1"));
    serves_now();
    FILE *f = fopen(lock, "r");
    CHECK(f != NULL);
    int daemon = 0;
    CHECK(fscanf(f, "%d", &daemon) == 1);
    fclose(f);
    CHECK_EQ(from, daemon);
    CHECK(from != starter);
    CHECK_EQ(kill(daemon, SIGTERM), 0);
    wait_ok(daemon); /* ours to reap: the test is a subreaper */
    expect(ns, daemon, "STOPPING=1", buf, sizeof buf);
    close(ns);
    CHECK(unlink(addr) == 0);
    CHECK(unlink(lock) == 0);
}

/* A socket path with a newline in it: STATUS= stays one line (the newline shown as '?'),
 * so the path cannot add an assignment (MAINPID=1) of its own. */
static void test_control_bytes(void)
{
    char addr[120], buf[512], sock[120], lock[130], want[200];
    snprintf(addr, sizeof addr, "%s/notify", b.dir);
    snprintf(sock, sizeof sock, "%s/x\nMAINPID=1.sock", b.dir);
    snprintf(lock, sizeof lock, "%s.lock", sock);
    int ns = dgram_listen(addr);
    char env[160];
    snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", addr);
    const char *envs[] = {env, NULL};
    const char *args[] = {"--foreground", "--socket", sock, "--policy", b.policy, NULL};
    int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
    CHECK(nul >= 0);
    pid_t d = ferryd_spawn(args, envs, -1, nul);
    close(nul);
    expect(ns, d, "READY=1", buf, sizeof buf);
    snprintf(want, sizeof want, "READY=1\nSTATUS=serving %s/x?MAINPID=1.sock", b.dir);
    if (strcmp(buf, want)) fprintf(stderr, "got '%s'\nwant '%s'\n", buf, want);
    CHECK(strcmp(buf, want) == 0);
    CHECK_EQ(kill(d, SIGTERM), 0);
    expect(ns, d, "STOPPING=1", buf, sizeof buf);
    wait_ok(d);
    close(ns);
    CHECK(unlink(addr) == 0);
    CHECK(unlink(lock) == 0);
}

static void test_malformed(void)
{
    int nul = open("/dev/null", O_WRONLY | O_CLOEXEC); /* it warns once */
    CHECK(nul >= 0);
    const char *envs[] = {"NOTIFY_SOCKET=relative/path", NULL};
    const char *args[] = {"--foreground", "--socket", b.sock, "--policy", b.policy, NULL};
    pid_t d = ferryd_spawn(args, envs, -1, nul);
    close(nul);
    for (int i = 0; i < 1000 && !broker_connectable(b.sock); i++) sleep_ms(10);
    serves_now();
    CHECK_EQ(kill(d, SIGTERM), 0);
    wait_ok(d);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    broker_init(&b);                              /* FERRY_BROKER = b.sock, FERRY_NO_AUTOSPAWN=1 */
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); /* a detached ferryd stays ours to reap */
    test_path();
    test_abstract();
    test_bad_policy();
    test_activated();
    test_detached();
    test_control_bytes();
    test_malformed();
    broker_stop(&b); /* removes the directory (and ferryd.log) */
    printf("test_ferryd_notify: ok\n");
    return 0;
}
