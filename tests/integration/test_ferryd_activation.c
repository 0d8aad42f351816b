// SPDX-License-Identifier: MIT
/*
 * test_ferryd_activation — ferryd under systemd-style socket activation, with the ferryd
 * this build made (FERRYD_PATH), on private paths:
 *  - the test plays systemd: it makes the listening SOCK_SEQPACKET socket, forks, and the
 *    child moves it to fd 3, sets LISTEN_FDS=1 and LISTEN_PID=<its own pid> (after the
 *    fork, as systemd does) and execs ferryd --foreground. ferryd serves on that socket:
 *    a server registers a name and a client connects through it and echoes. ferryd must
 *    bind nothing of its own (its --socket path, and PATH.lock, never appear). SIGTERM:
 *    exit 0, and the socket file is left in place (systemd owns it; the test removes it).
 *  - LISTEN_PID of another process: the fds are not ours, so ferryd ignores fd 3, binds
 *    its own --socket path (with its lock file holding its pid), serves there, and on
 *    SIGTERM exits 0 and removes that socket.
 */
#include "testutil.h"

#include "brokerutil.h"

#include <ferry/ferry.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#define SEC ((int64_t)1000000000)

/* A listening SOCK_SEQPACKET socket at path, 0666, as systemd would make it. */
static int listen_at(const char *path)
{
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    CHECK(bind(s, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(chmod(path, 0666) == 0);
    CHECK(listen(s, 16) == 0);
    return s;
}

/* Fork ferryd with lfd as fd 3, LISTEN_FDS=1 and LISTEN_PID = its own pid (own != 0) or
 * its parent's (own == 0), and --socket own_path. */
static pid_t spawn_activated(test_broker *b, int lfd, int own, const char *own_path)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves no ferryd behind */
        if (lfd == 3) {
            if (fcntl(3, F_SETFD, 0) < 0) _exit(126);
        } else if (dup2(lfd, 3) != 3) {
            _exit(126);
        }
        char n[32];
        snprintf(n, sizeof n, "%d", (int)(own ? getpid() : getppid()));
        setenv("LISTEN_PID", n, 1);
        setenv("LISTEN_FDS", "1", 1);
        setenv("LISTEN_FDNAMES", "ferryd.socket", 1);
        execl(FERRYD_PATH, "ferryd", "--foreground", "--socket", own_path, "--policy", b->policy,
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* A server that registers name, says so on a pipe, echoes one connection, then waits to
 * be killed. */
static pid_t serve(const char *name)
{
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        ferry_listener *l;
        CHECK_EQ(ferry_register(name, NULL, NULL, &l, 10 * SEC), 0);
        CHECK(write(ready[1], "r", 1) == 1);
        ferry_chan *ch;
        CHECK_EQ(ferry_accept(l, &ch, 10 * SEC), 0);
        char buf[32];
        ssize_t n = ferry_recv(ch, buf, sizeof buf, 10 * SEC);
        CHECK(n > 0);
        CHECK_EQ(ferry_send(ch, buf, (size_t)n, 10 * SEC), 0);
        CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 10 * SEC), -EPIPE);
        ferry_chan_close(ch);
        pause();
        _exit(0);
    }
    close(ready[1]);
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    close(ready[0]);
    return pid;
}

/* Register name, connect to it and echo a message: the naming service works. */
static void round_trip(const char *name)
{
    pid_t srv = serve(name);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup(name, &in, 5 * SEC), 0);
    CHECK_EQ(in.pid, srv);
    ferry_chan *ch;
    CHECK_EQ(ferry_connect(name, FERRY_KIND_SHM, NULL, &ch, 5 * SEC), 0);
    CHECK_EQ(ferry_send(ch, "hi", 2, 5 * SEC), 0);
    char buf[8];
    CHECK_EQ(ferry_recv(ch, buf, sizeof buf, 5 * SEC), 2);
    CHECK(memcmp(buf, "hi", 2) == 0);
    ferry_chan_close(ch);
    kill(srv, SIGKILL);
    int st;
    waitpid(srv, &st, 0);
}

static int is_socket(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    broker_init(&b); /* FERRY_BROKER = b.sock, FERRY_NO_AUTOSPAWN=1 */
    char unused[100], unused_lock[120], lock[120];
    snprintf(unused, sizeof unused, "%s/unused.sock", b.dir);
    snprintf(unused_lock, sizeof unused_lock, "%s.lock", unused);
    snprintf(lock, sizeof lock, "%s.lock", b.sock);

    /* Activated: ferryd serves on the socket it was given, binds nothing of its own. */
    int lfd = listen_at(b.sock);
    pid_t d = spawn_activated(&b, lfd, 1, unused);
    round_trip("org.test.activated");
    CHECK(!is_socket(unused));
    CHECK(access(unused_lock, F_OK) < 0 && access(lock, F_OK) < 0);
    CHECK_EQ(kill(d, SIGTERM), 0);
    wait_ok(d);
    CHECK(is_socket(b.sock)); /* systemd's: left alone */
    close(lfd);
    CHECK(unlink(b.sock) == 0);
    CHECK(!is_socket(unused));

    /* LISTEN_PID of another process: fd 3 is ignored; ferryd binds its own --socket. */
    lfd = listen_at(b.sock);
    d = spawn_activated(&b, lfd, 0, unused);
    for (int i = 0; i < 500 && !broker_connectable(unused); i++) sleep_ms(10);
    CHECK(broker_connectable(unused));
    FILE *f = fopen(unused_lock, "r");
    CHECK(f != NULL);
    int lockpid = 0;
    CHECK(fscanf(f, "%d", &lockpid) == 1);
    fclose(f);
    CHECK_EQ(lockpid, d);
    setenv("FERRY_BROKER", unused, 1);
    round_trip("org.test.own");
    CHECK_EQ(kill(d, SIGTERM), 0);
    wait_ok(d);
    CHECK(!is_socket(unused)); /* its own socket: removed */
    close(lfd);
    CHECK(unlink(b.sock) == 0);
    CHECK(unlink(unused_lock) == 0);

    b.pid = -1;
    broker_stop(&b); /* removes the directory */
    printf("test_ferryd_activation: ok\n");
    return 0;
}
