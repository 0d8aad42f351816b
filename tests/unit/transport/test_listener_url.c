// SPDX-License-Identifier: MIT
/*
 * test_listener_url — ferry_listener_url, the URL a peer opens to reach a listener:
 *  - tcp on port 0 (127.0.0.1 and ::1): ferry_listen works, the URL names the loopback
 *    address and the port the kernel picked (nonzero, equal to getsockname of the
 *    listener's socket), and a forked child reaches the listener through it (one
 *    message each way); on 0.0.0.0 the URL keeps the wildcard and still reaches it from
 *    here; port 0 is for listening only (ferry_chan_open -EINVAL); an empty, negative
 *    or too large port is -EINVAL;
 *  - sysvmq:// (IPC_PRIVATE): the URL is "sysvmq://#MSQID"; that queue exists (msgctl
 *    IPC_STAT: key IPC_PRIVATE, mode 0600) and `ipcs -q` lists it; a process that is
 *    fork + exec'd (this binary, "--open URL": no inherited private listener) and a
 *    forked one each reach the listener through it;
 *  - sysvmq://KEY (hex and decimal), unix (path, @name), shm (path, @name), fifo and
 *    posixmq: the URL exactly as given, and a forked child reaches the listener with it;
 *  - errors: NULL listener or buffer -EINVAL; cap 0, cap == length (no room for the
 *    NUL) -ENAMETOOLONG with the buffer untouched; cap == length + 1 fits exactly;
 *  - cleanup: no fd leak, no queue left (ipcs -q and the mqueue list as before), the
 *    socket files and FIFOs gone (the temp dir is empty at the end).
 */
#include "mq/mqtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/msg.h>
#include <sys/socket.h>

#define URL_CAP 256

/* The peer's half of a round trip: open url, send "ping", expect "pong", close. */
static void peer_roundtrip(const char *url)
{
    STAGE("peer: open and round-trip");
    ferry_chan *ch = NULL;
    int rc = ferry_chan_open(url, NULL, &ch, T5S);
    if (rc < 0) fprintf(stderr, "peer: open %s: %s\n", url, ferry_strerror(rc));
    CHECK_EQ(rc, 0);
    CHECK_EQ(ferry_send(ch, "ping", 4, T5S), 0);
    char buf[16];
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, T5S), 4);
    CHECK(memcmp(buf, "pong", 4) == 0);
    ferry_chan_close(ch);
}

/* A child (forked, or fork + exec'd when exec_it) opens url and round-trips one message
 * with l's accepted channel. */
static void roundtrip(ferry_listener *l, const char *url, bool exec_it)
{
    STAGE("round trip: fork");
    pid_t pid = fork_child();
    if (pid == 0) {
        if (exec_it) {
            execl("/proc/self/exe", "test_listener_url", "--open", url, (char *)NULL);
            fprintf(stderr, "exec: %s\n", strerror(errno));
            _exit(1);
        }
        peer_roundtrip(url);
        child_exit();
    }
    STAGE("round trip: accept");
    ferry_chan *ch = NULL;
    int rc = ferry_accept(l, &ch, T5S);
    if (rc < 0) fprintf(stderr, "accept for %s: %s\n", url, ferry_strerror(rc));
    CHECK_EQ(rc, 0);
    char buf[16];
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, T5S), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK_EQ(ferry_send(ch, "pong", 4, T5S), 0);
    STAGE("round trip: wait for the child");
    wait_ok(pid); /* the peer has closed its end (a queue's hello is back) */
    ferry_chan_close(ch);
}

/* ferry_listener_url into a buffer of URL_CAP; requires success and returns the buffer. */
static const char *url_of(const ferry_listener *l)
{
    static char buf[URL_CAP];
    ssize_t n = ferry_listener_url(l, buf, sizeof buf);
    if (n < 0) fprintf(stderr, "ferry_listener_url: %s\n", ferry_strerror((int)n));
    CHECK(n > 0);
    CHECK_EQ((size_t)n, strlen(buf));
    return buf;
}

static ferry_listener *listen_ok(const char *url)
{
    ferry_listener *l = NULL;
    int rc = ferry_listen(url, NULL, &l);
    if (rc < 0) fprintf(stderr, "listen %s: %s\n", url, ferry_strerror(rc));
    CHECK_EQ(rc, 0);
    return l;
}

/* ---------------------------------------------------------------- tcp */

/* tcp on port 0 at host ("127.0.0.1" or "::1"). */
static void tcp_port0(int family)
{
    const char *given = family == AF_INET ? "tcp://127.0.0.1:0" : "tcp://[::1]:0";
    const char *prefix = family == AF_INET ? "tcp://127.0.0.1:" : "tcp://[::1]:";
    STAGE(given);
    ferry_listener *l = NULL;
    int rc = ferry_listen(given, NULL, &l);
    if (family == AF_INET6 && (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT)) {
        fprintf(stderr, "note: no IPv6 loopback here (%s): skipping %s\n", ferry_strerror(rc),
                given);
        return;
    }
    CHECK_EQ(rc, 0);
    char url[URL_CAP];
    snprintf(url, sizeof url, "%s", url_of(l));
    printf("%s -> %s\n", given, url);
    CHECK(strncmp(url, prefix, strlen(prefix)) == 0);
    char *end = NULL;
    const char *digits = url + strlen(prefix);
    long port = strtol(digits, &end, 10);
    CHECK(end != digits && *end == '\0');
    CHECK(port > 0 && port <= 65535);

    /* The port is the one the socket is bound to. */
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    CHECK_EQ(getsockname(ferry_listener_poll_fd(l), (struct sockaddr *)&ss, &len), 0);
    CHECK_EQ(ss.ss_family, family);
    in_port_t bound = family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                        : ((struct sockaddr_in6 *)&ss)->sin6_port;
    CHECK_EQ(ntohs(bound), port);

    roundtrip(l, url, false);
    roundtrip(l, url, false); /* a tcp listener takes many clients */

    /* Port 0 is for listening only. */
    ferry_chan *ch = NULL;
    CHECK_EQ(ferry_chan_open(given, NULL, &ch, T5S), -EINVAL);
    CHECK(ch == NULL);
    ferry_listener_close(l);
}

/* A wildcard address stays one, and reaches the listener from this machine. */
static void tcp_wildcard(void)
{
    STAGE("tcp wildcard");
    ferry_listener *l = listen_ok("tcp://0.0.0.0:0");
    char url[URL_CAP];
    snprintf(url, sizeof url, "%s", url_of(l));
    printf("tcp://0.0.0.0:0 -> %s\n", url);
    CHECK(strncmp(url, "tcp://0.0.0.0:", 14) == 0);
    CHECK(atoi(url + 14) > 0);
    roundtrip(l, url, false);
    ferry_listener_close(l);
}

static void tcp_bad_ports(void)
{
    STAGE("tcp bad ports");
    ferry_listener *l = NULL;
    CHECK_EQ(ferry_listen("tcp://127.0.0.1:", NULL, &l), -EINVAL);
    CHECK_EQ(ferry_listen("tcp://127.0.0.1:-1", NULL, &l), -EINVAL);
    CHECK_EQ(ferry_listen("tcp://127.0.0.1:65536", NULL, &l), -EINVAL);
    CHECK(l == NULL);
}

/* ---------------------------------------------------------------- sysvmq */

static void sysvmq_private(void)
{
    STAGE("sysvmq private");
    ferry_listener *l = listen_ok("sysvmq://");
    char url[URL_CAP];
    snprintf(url, sizeof url, "%s", url_of(l));
    printf("sysvmq:// -> %s\n", url);
    CHECK(strncmp(url, "sysvmq://#", 10) == 0);
    char *end = NULL;
    long id = strtol(url + 10, &end, 10);
    CHECK(end != url + 10 && *end == '\0' && id >= 0);

    /* The kernel knows that queue: a private one of ours, mode 0600. */
    struct msqid_ds ds;
    CHECK_EQ(msgctl((int)id, IPC_STAT, &ds), 0);
    CHECK_EQ(ds.msg_perm.__key, IPC_PRIVATE);
    CHECK_EQ(ds.msg_perm.mode & 0777, 0600);
    CHECK_EQ(ds.msg_perm.cuid, geteuid());
    /* ... and so does ipcs -q: a line "0x00000000 ID". */
    char *list = ipcs_snapshot();
    char line[64];
    snprintf(line, sizeof line, "0x00000000 %ld\n", id);
    if (!strstr(list, line)) fprintf(stderr, "ipcs -q has no \"%s\" in:\n%s", line, list);
    CHECK(strstr(list, line) != NULL);
    free(list);

    /* An exec'd process has no inherited private listener: only "#ID" reaches it. */
    roundtrip(l, url, true);
    ferry_listener_close(l);

    /* A forked child, with a fresh listener (a sysvmq listener accepts once). */
    l = listen_ok("sysvmq://");
    snprintf(url, sizeof url, "%s", url_of(l));
    roundtrip(l, url, false);
    ferry_listener_close(l);
}

/* A key nobody uses, in the form fmt ("0x%x" or "%u"). */
static ferry_listener *sysvmq_keyed(const char *fmt, char *url, size_t cap)
{
    for (unsigned i = 0; i < 64; i++) {
        unsigned key = 0x46520000u | (((unsigned)getpid() * 64u + i) & 0xffffu);
        char f[32];
        snprintf(f, sizeof f, "sysvmq://%s", fmt);
        snprintf(url, cap, f, key);
        ferry_listener *l = NULL;
        int rc = ferry_listen(url, NULL, &l);
        if (rc == -EADDRINUSE) continue;
        CHECK_EQ(rc, 0);
        return l;
    }
    CHECK(!"no free System V key");
    return NULL;
}

static void sysvmq_key(void)
{
    const char *forms[] = {"0x%x", "%u"};
    for (size_t i = 0; i < 2; i++) {
        STAGE("sysvmq key");
        char given[64];
        ferry_listener *l = sysvmq_keyed(forms[i], given, sizeof given);
        CHECK(strcmp(url_of(l), given) == 0);
        roundtrip(l, given, false);
        ferry_listener_close(l);
    }
}

/* ---------------------------------------------------------------- as given */

static void as_given(const char *given)
{
    STAGE(given);
    ferry_listener *l = listen_ok(given);
    const char *u = url_of(l);
    if (strcmp(u, given) != 0) fprintf(stderr, "%s: url %s\n", given, u);
    CHECK(strcmp(u, given) == 0);
    roundtrip(l, given, false);
    ferry_listener_close(l);
}

static void other_schemes(void)
{
    const char *dir = tmpdir_make();
    char url[URL_CAP];
    snprintf(url, sizeof url, "unix://%s/u.sock", dir);
    as_given(url);
    snprintf(url, sizeof url, "unix://@ferry-url-u-%d", (int)getpid());
    as_given(url);
    snprintf(url, sizeof url, "shm://%s/s.sock", dir);
    as_given(url);
    snprintf(url, sizeof url, "shm://@ferry-url-s-%d", (int)getpid());
    as_given(url);
    snprintf(url, sizeof url, "fifo://%s/f", dir);
    as_given(url);
    snprintf(url, sizeof url, "posixmq:///ferry-url-%d", (int)getpid());
    as_given(url);
    tmpdir_remove(); /* empty: every socket file and FIFO is gone */
}

/* ---------------------------------------------------------------- errors */

static void errors(void)
{
    STAGE("errors");
    char buf[URL_CAP];
    CHECK_EQ(ferry_listener_url(NULL, buf, sizeof buf), -EINVAL);

    char given[URL_CAP];
    snprintf(given, sizeof given, "unix://@ferry-url-e-%d", (int)getpid());
    size_t len = strlen(given);
    ferry_listener *l = listen_ok(given);
    CHECK_EQ(ferry_listener_url(l, NULL, sizeof buf), -EINVAL);

    /* Too small: nothing written. */
    size_t caps[] = {0, 1, len - 1, len};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        memset(buf, 'x', sizeof buf);
        CHECK_EQ(ferry_listener_url(l, buf, caps[i]), -ENAMETOOLONG);
        for (size_t j = 0; j < sizeof buf; j++) CHECK_EQ(buf[j], 'x');
    }
    /* Exactly enough. */
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(ferry_listener_url(l, buf, len + 1), (ssize_t)len);
    CHECK(strcmp(buf, given) == 0);
    CHECK_EQ(buf[len + 1], 'x');
    ferry_listener_close(l);

    /* A URL the transport makes itself is held to the same rule. */
    l = listen_ok("tcp://127.0.0.1:0");
    char full[URL_CAP];
    snprintf(full, sizeof full, "%s", url_of(l));
    len = strlen(full);
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(ferry_listener_url(l, buf, len), -ENAMETOOLONG);
    for (size_t j = 0; j < sizeof buf; j++) CHECK_EQ(buf[j], 'x');
    CHECK_EQ(ferry_listener_url(l, buf, len + 1), (ssize_t)len);
    CHECK(strcmp(buf, full) == 0);
    ferry_listener_close(l);

    l = listen_ok("sysvmq://");
    snprintf(full, sizeof full, "%s", url_of(l));
    len = strlen(full);
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(ferry_listener_url(l, buf, len), -ENAMETOOLONG);
    for (size_t j = 0; j < sizeof buf; j++) CHECK_EQ(buf[j], 'x');
    ferry_listener_close(l);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--open") == 0) {
        watchdog_arm();
        peer_roundtrip(argv[2]);
        return 0;
    }
    watchdog_arm();
    setvbuf(stdout, NULL, _IONBF, 0);
    char *queues = ipcs_snapshot();
    char *mqs = mq_snapshot(); /* may mount a private mqueue fs: before the fd count */
    int fds = fd_count();

    errors();
    tcp_port0(AF_INET);
    tcp_port0(AF_INET6);
    tcp_wildcard();
    tcp_bad_ports();
    sysvmq_private();
    sysvmq_key();
    other_schemes();

    STAGE("cleanup checks");
    CHECK_EQ(fd_count(), fds);
    snap_expect_equal(ipcs_snapshot, queues, "System V queues");
    snap_expect_equal(mq_snapshot, mqs, "POSIX queues");
    free(queues);
    free(mqs);
    printf("ok\n");
    return 0;
}
