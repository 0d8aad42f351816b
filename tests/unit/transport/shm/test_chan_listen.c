// SPDX-License-Identifier: MIT
/*
 * test_chan_listen — meeting over a socket path: ferry_listen("shm:///dir/x.sock"),
 * ferry_accept, ferry_chan_open, ferry_listener_poll_fd, ferry_listener_close. Socket files
 * live in a fresh mkdtemp directory that must be empty at the end.
 *  - the socket file exists with mode 0600 (default) once ferry_listen returns; with
 *    opts.mode 0660 (umask 022) it has mode 0660; the listener fd has FD_CLOEXEC;
 *  - ferry_accept FERRY_NOW with nobody -> -EAGAIN; 50 ms -> -ETIMEDOUT after >= 50 ms;
 *    ferry_listener_poll_fd does not poll readable while nobody waits, and polls readable
 *    when a client is waiting;
 *  - a forked client ferry_chan_open(url, NULL, &ch, 5 s) and pings; the channel has the
 *    listener's shape (max_msg 1000, capacity 4: the client's fifth FERRY_NOW send is
 *    -EAGAIN); the client's close gives the server -EPIPE; a second client is accepted
 *    on the same listener;
 *  - ferry_listen on a path in use -> -EADDRINUSE, and the existing listener keeps its
 *    file and keeps working;
 *  - ferry_chan_open: missing path -> -ENOENT; a stale socket file nobody listens on ->
 *    -ECONNREFUSED; a listener that never accepts -> -ETIMEDOUT (100 ms) / -EAGAIN (NOW);
 *  - bad URLs ("", "shm://", "not a url") -> -EINVAL; "foo://x" -> -EPROTONOSUPPORT;
 *    both for ferry_listen and ferry_chan_open; a path longer than a socket address holds
 *    -> -ENAMETOOLONG from ferry_listen;
 *  - after ferry_listener_close the socket file is gone and ferry_chan_open -> -ENOENT;
 *    close functions accept NULL;
 *  - no fd leaks in either process; no file left in the directory.
 */
#include "chantest.h"

#include <sys/socket.h>
#include <sys/un.h>

static char path[256], url[300];

static void child_main(ctl *c)
{
    ferry_chan *ch = NULL;
    char buf[64];

    STAGE("client 1");
    ctl_expect(c, '1');
    int c0 = fd_count();
    CHECK_EQ(ferry_chan_open(url, NULL, &ch, T5S), 0);
    CHECK(ch != NULL);
    CHECK_EQ(ferry_chan_max_msg(ch), 1000);
    CHECK_EQ(ferry_send(ch, "ping", 4, T5S), 0);
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, T5S), 4);
    CHECK(memcmp(buf, "pong", 4) == 0);
    for (int i = 0; i < 4; i++) CHECK_EQ(ferry_send(ch, "q", 1, FERRY_NOW), 0);
    CHECK_EQ(ferry_send(ch, "q", 1, FERRY_NOW), -EAGAIN);
    ctl_put(c, 'a');
    ctl_expect(c, '2');
    ferry_chan_close(ch);
    CHECK_EQ(fd_count(), c0);

    STAGE("client 2");
    ctl_expect(c, '3');
    CHECK_EQ(ferry_chan_open(url, NULL, &ch, T5S), 0);
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, T5S), 6);
    CHECK(memcmp(buf, "second", 6) == 0);
    ferry_chan_close(ch);
    CHECK_EQ(fd_count(), c0);
    ctl_put(c, 'b');
}

static void check_mode(const char *p, unsigned mode)
{
    struct stat st;
    CHECK_EQ(stat(p, &st), 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK_EQ(st.st_mode & 07777, mode);
}

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static void bad_urls(void)
{
    STAGE("bad urls");
    static const char *const bad[] = {"", "shm://", "not a url"};
    ferry_listener *l = NULL;
    ferry_chan *ch = NULL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(ferry_listen(bad[i], NULL, &l), -EINVAL);
        CHECK_EQ(ferry_chan_open(bad[i], NULL, &ch, 100 * MS), -EINVAL);
    }
    CHECK_EQ(ferry_listen("foo://x", NULL, &l), -EPROTONOSUPPORT);
    CHECK_EQ(ferry_chan_open("foo://x", NULL, &ch, 100 * MS), -EPROTONOSUPPORT);

    char longurl[400];
    int n = snprintf(longurl, sizeof longurl, "shm://%s/", chantest_dir);
    memset(longurl + n, 'n', 200);
    strcpy(longurl + n + 200, ".sock");
    CHECK_EQ(ferry_listen(longurl, NULL, &l), -ENAMETOOLONG);
}

static void open_errors(void)
{
    STAGE("open: missing path");
    ferry_chan *ch = NULL;
    char u[300], p[256];
    snprintf(u, sizeof u, "shm://%s/missing.sock", chantest_dir);
    CHECK_EQ(ferry_chan_open(u, NULL, &ch, 100 * MS), -ENOENT);

    STAGE("open: stale socket file");
    snprintf(p, sizeof p, "%s/stale.sock", chantest_dir);
    snprintf(u, sizeof u, "shm://%s", p);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, p);
    CHECK_EQ(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    close(s);
    CHECK_EQ(ferry_chan_open(u, NULL, &ch, 100 * MS), -ECONNREFUSED);
    CHECK_EQ(unlink(p), 0);

    STAGE("open: listener that never accepts");
    snprintf(p, sizeof p, "%s/y.sock", chantest_dir);
    snprintf(u, sizeof u, "shm://%s", p);
    ferry_listener *l = NULL;
    CHECK_EQ(ferry_listen(u, NULL, &l), 0);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_chan_open(u, NULL, &ch, 100 * MS), -ETIMEDOUT);
    int64_t el = now_ns() - t0;
    CHECK(el >= 100 * MS);
    CHECK(el < 1 * SEC);
    CHECK_EQ(ferry_chan_open(u, NULL, &ch, FERRY_NOW), -EAGAIN);
    ferry_listener_close(l);
    CHECK(!exists(p));
}

/* Last, so that a failure here does not hide the others. */
static void listen_mode(void)
{
    STAGE("listen: mode 0660");
    char u[300], p[256];
    snprintf(p, sizeof p, "%s/z.sock", chantest_dir);
    snprintf(u, sizeof u, "shm://%s", p);
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.mode = 0660;
    ferry_listener *l = NULL;
    CHECK_EQ(ferry_listen(u, &o, &l), 0);
    struct stat st;
    CHECK_EQ(stat(p, &st), 0);
    unsigned got = st.st_mode & 07777;
    ferry_listener_close(l);
    CHECK(!exists(p));
    if (got != 0660) fprintf(stderr, "opts.mode 0660 with umask 022 gave mode 0%o\n", got);
    CHECK_EQ(got, 0660);
}

static void parent_main(ctl *c)
{
    ferry_listener *l = NULL, *l2 = NULL;
    ferry_chan *ch = NULL;
    char buf[64];

    STAGE("listen");
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.max_msg = 1000;
    o.capacity = 4;
    CHECK_EQ(ferry_listen(url, &o, &l), 0);
    CHECK(l != NULL);
    check_mode(path, 0600);
    int lfd = ferry_listener_poll_fd(l);
    CHECK(lfd >= 0);
    CHECK(fd_is_cloexec(lfd));
    CHECK_EQ(ferry_listener_poll_fd(l), lfd);
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 0), 0);

    STAGE("accept with nobody");
    CHECK_EQ(ferry_accept(l, &ch, FERRY_NOW), -EAGAIN);
    int64_t t0 = now_ns();
    CHECK_EQ(ferry_accept(l, &ch, 50 * MS), -ETIMEDOUT);
    int64_t el = now_ns() - t0;
    CHECK(el >= 50 * MS);
    CHECK(el < 1 * SEC);

    STAGE("address in use");
    CHECK_EQ(ferry_listen(url, NULL, &l2), -EADDRINUSE);
    check_mode(path, 0600);

    bad_urls();
    open_errors();

    STAGE("accept client 1");
    ctl_put(c, '1');
    p.revents = 0;
    CHECK_EQ(poll(&p, 1, 5000), 1);
    CHECK(p.revents & POLLIN);
    CHECK_EQ(ferry_accept(l, &ch, T5S), 0);
    CHECK(ch != NULL);
    CHECK_EQ(ferry_chan_max_msg(ch), 1000);
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, T5S), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK_EQ(ferry_send(ch, "pong", 4, T5S), 0);
    ctl_expect(c, 'a');
    for (int i = 0; i < 4; i++) CHECK_EQ(ferry_recv(ch, buf, sizeof buf, FERRY_NOW), 1);
    ctl_put(c, '2');
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, T5S), -EPIPE);
    ferry_chan_close(ch);
    p.revents = 0;
    CHECK_EQ(poll(&p, 1, 0), 0);

    STAGE("accept client 2");
    ctl_put(c, '3');
    CHECK_EQ(ferry_accept(l, &ch, T5S), 0);
    CHECK_EQ(ferry_send(ch, "second", 6, T5S), 0);
    ctl_expect(c, 'b');
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, T5S), -EPIPE);
    ferry_chan_close(ch);

    STAGE("listener close");
    ferry_listener_close(l);
    CHECK(!exists(path));
    CHECK_EQ(ferry_chan_open(url, NULL, &ch, 100 * MS), -ENOENT);
    ferry_listener_close(NULL);
    ferry_chan_close(NULL);
}

int main(void)
{
    watchdog_arm();
    umask(022);
    int base = fd_count();
    const char *dir = tmpdir_make();
    snprintf(path, sizeof path, "%s/x.sock", dir);
    snprintf(url, sizeof url, "shm://%s", path);
    CHECK_EQ(strncmp(url, "shm:///tmp/", 11), 0);

    ctl c;
    ctl_init(&c);
    pid_t pid = fork_child();
    if (pid == 0) {
        ctl_child(&c);
        child_main(&c);
        ctl_close(&c);
        child_exit();
    }
    ctl_parent(&c);
    parent_main(&c);
    wait_ok(pid);
    ctl_close(&c);
    listen_mode();
    tmpdir_remove();
    CHECK_EQ(fd_count(), base);
    printf("test_chan_listen: ok\n");
    return 0;
}
