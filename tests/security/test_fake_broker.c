// SPDX-License-Identifier: MIT
/*
 * test_fake_broker — issue 11 finding 5: nobody but a trusted uid may play ferryd.
 *
 * A fake broker: a process of another uid (60011) listens at the path the client uses
 * for ferryd (a directory it owns). A client as root and one as a third uid (60012) get
 * -EPERM from every call, send the fake nothing, and start no ferryd in its place (with
 * autospawn on, FERRY_FERRYD is a program that would leave a mark). Naming the fake's uid
 * in FERRY_BROKER_UID lets the client talk to it (the fake then hangs up: -ECONNREFUSED,
 * not -EPERM); garbage in FERRY_BROKER_UID does not.
 *
 * ferryd's side: it refuses (exit status 4, a message naming the directory, no socket
 * made) a socket directory owned by another uid, one its group or others may write
 * (sticky or not), and one under a directory owned by another uid; it starts in a
 * directory it owns (mode 0755 or 0700) under sticky /tmp. A client that autospawns
 * ferryd for a path in such a directory gets -EPERM at once.
 * Needs root (to become other uids); otherwise prints SKIP and passes.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

static const ident FAKE = {60011, 60011, 0, {0}};
static const ident THIRD = {60012, 60012, 0, {0}};

typedef struct fake_args {
    const char *path;
    int ready; /* write end: one byte once listening */
    int leak;  /* write end: one byte per packet a client sent the fake */
} fake_args;

/* The fake ferryd: listen at path, and for each connection note whether the client
 * sends anything within 300 ms, then hang up. */
static void fake_main(void *arg)
{
    fake_args *a = arg;
    int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    CHECK(l >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", a->path);
    CHECK(bind(l, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(chmod(a->path, 0666) == 0);
    CHECK(listen(l, 16) == 0);
    CHECK(write(a->ready, "r", 1) == 1);
    for (;;) {
        int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        struct pollfd p = {.fd = c, .events = POLLIN};
        char buf[256];
        if (poll(&p, 1, 300) == 1 && recv(c, buf, sizeof buf, MSG_DONTWAIT) > 0)
            CHECK(write(a->leak, "x", 1) == 1);
        close(c);
    }
}

/* What every call says when the broker at the path is not trusted. */
static void expect_refused(int want)
{
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.fake.x", &in, 2 * SEC), want);
    ferry_chan *ch;
    CHECK_EQ(ferry_connect("org.fake.x", FERRY_KIND_SHM, NULL, &ch, 2 * SEC), want);
    ferry_listener *l;
    CHECK_EQ(ferry_register("org.fake.x", NULL, NULL, &l, 2 * SEC), want);
    ferry_name_info page[4];
    CHECK_EQ(ferry_list(NULL, page, 4, 2 * SEC), want);
    ferry_watch *w;
    CHECK_EQ(ferry_watch_open("org.fake.*", &w, 2 * SEC), want);
    ferry_sem *s;
    CHECK_EQ(ferry_sem_open("org.fake.sem", &s, 2 * SEC), want);
}

static void client_main(void *arg)
{
    (void)arg;
    expect_refused(-EPERM);
}

static int leaked(int fd)
{
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    return n > 0 ? (int)n : 0;
}

static void test_fake(const char *top)
{
    char dir[200], path[220], mark[220], prog[220];
    snprintf(dir, sizeof dir, "%s/evil", top);
    snprintf(path, sizeof path, "%s/ferryd.sock", dir);
    snprintf(mark, sizeof mark, "%s/spawned", top);
    snprintf(prog, sizeof prog, "%s/fake-ferryd.sh", top);
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(chown(dir, FAKE.uid, FAKE.gid) == 0);
    /* Autospawn on, with a "ferryd" that only leaves a mark: it must never run. */
    FILE *f = fopen(prog, "w");
    CHECK(f != NULL);
    fprintf(f, "#!/bin/sh\ntouch %s\n", mark);
    CHECK(fclose(f) == 0);
    CHECK(chmod(prog, 0755) == 0);
    setenv("FERRY_BROKER", path, 1);
    setenv("FERRY_FERRYD", prog, 1);
    unsetenv("FERRY_NO_AUTOSPAWN");
    unsetenv("FERRY_BROKER_UID");

    int ready[2], leak[2];
    CHECK(pipe(ready) == 0 && pipe2(leak, O_NONBLOCK) == 0);
    fake_args a = {.path = path, .ready = ready[1], .leak = leak[1]};
    pid_t fake = spawn_as(&FAKE, fake_main, &a);
    char r;
    CHECK(read(ready[0], &r, 1) == 1);

    expect_refused(-EPERM);                  /* root */
    run_as(&THIRD, client_main, NULL);       /* a third uid */
    setenv("FERRY_BROKER_UID", "60011x", 1); /* not a uid: ignored */
    expect_refused(-EPERM);
    setenv("FERRY_BROKER_UID", "-1", 1);
    expect_refused(-EPERM);
    sleep_ms(400); /* the fake's window for each connection */
    CHECK_EQ(leaked(leak[0]), 0);
    CHECK(access(mark, F_OK) < 0);

    /* Named as trusted: the client talks to it (and the fake hangs up on it). */
    setenv("FERRY_BROKER_UID", "60011", 1);
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.fake.x", &in, 2 * SEC), -ECONNREFUSED);
    sleep_ms(400);
    CHECK(leaked(leak[0]) > 0);
    unsetenv("FERRY_BROKER_UID");

    kill_wait(fake);
    close(ready[0]);
    close(ready[1]);
    close(leak[0]);
    close(leak[1]);
    CHECK(access(mark, F_OK) < 0);
    CHECK(unlink(path) == 0);
    CHECK(rmdir(dir) == 0);
    CHECK(unlink(prog) == 0);
    setenv("FERRY_NO_AUTOSPAWN", "1", 1);
    unsetenv("FERRY_FERRYD");
}

/* Autospawn for a path in a directory another uid owns (nobody listens there): the
 * ferryd started refuses it (status 4) and the call says -EPERM at once, instead of
 * waiting for a ferryd that will never listen. */
static void test_autospawn_unsafe(const char *top)
{
    char dir[200], path[220];
    snprintf(dir, sizeof dir, "%s/evil2", top);
    snprintf(path, sizeof path, "%s/ferryd.sock", dir);
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(chown(dir, FAKE.uid, FAKE.gid) == 0);
    setenv("FERRY_BROKER", path, 1);
    setenv("FERRY_FERRYD", FERRYD_PATH, 1);
    unsetenv("FERRY_NO_AUTOSPAWN");
    int64_t t0 = now_ns();
    ferry_name_info in;
    CHECK_EQ(ferry_lookup("org.fake.x", &in, 10 * SEC), -EPERM);
    int64_t took = now_ns() - t0;
    printf("autospawn into an unsafe directory: -EPERM after %.1f ms\n", (double)took / 1e6);
    CHECK(took < 4 * SEC); /* the start-up wait is 5 s: it was not waited out */
    CHECK(access(path, F_OK) < 0);
    CHECK(rmdir(dir) == 0);
    setenv("FERRY_NO_AUTOSPAWN", "1", 1);
    unsetenv("FERRY_FERRYD");
}

/* Run ferryd on sock; returns its exit status (it must exit within 5 s) and checks its
 * message when it refuses. A ferryd that starts is stopped with SIGTERM (status 0). */
static int run_ferryd(const char *sock, const char *policy)
{
    int errp[2];
    CHECK(pipe(errp) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(errp[1], 2);
        execl(FERRYD_PATH, "ferryd", "--foreground", "--socket", sock, "--policy", policy,
              (char *)NULL);
        _exit(127);
    }
    close(errp[1]);
    int st = -1;
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) break;
        if (broker_connectable(sock)) {
            kill(pid, SIGTERM);
            CHECK(waitpid(pid, &st, 0) == pid);
            break;
        }
        sleep_ms(10);
    }
    CHECK(st != -1);
    char msg[1024] = "";
    ssize_t n = read(errp[0], msg, sizeof msg - 1);
    close(errp[0]);
    msg[n > 0 ? n : 0] = '\0';
    CHECK(WIFEXITED(st));
    if (WEXITSTATUS(st) == 4) {
        CHECK(strstr(msg, "refusing the socket directory") != NULL);
        CHECK(access(sock, F_OK) < 0); /* nothing was bound */
    }
    return WEXITSTATUS(st);
}

static void test_dirs(const char *top, const char *policy)
{
    char d[200], sock[240], lock[260], sub[220];
    snprintf(d, sizeof d, "%s/d", top);
    snprintf(sock, sizeof sock, "%s/ferryd.sock", d);
    snprintf(lock, sizeof lock, "%s.lock", sock);
    struct {
        uid_t uid;
        mode_t mode;
    } bad[] = {{FAKE.uid, 0755}, {FAKE.uid, 0700}, {0, 0775}, {0, 0757}, {0, 01777}, {0, 01770}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(mkdir(d, 0700) == 0);
        CHECK(chown(d, bad[i].uid, bad[i].uid) == 0);
        CHECK(chmod(d, bad[i].mode) == 0);
        int st = run_ferryd(sock, policy);
        if (st != 4)
            fprintf(stderr, "dir uid %u mode %o: status %d\n", bad[i].uid, bad[i].mode, st);
        CHECK_EQ(st, 4);
        unlink(lock);
        CHECK(rmdir(d) == 0);
    }
    /* Safe directories: its own, 0755 or 0700; and one it makes itself. */
    mode_t good[] = {0755, 0700};
    for (size_t i = 0; i < 2; i++) {
        CHECK(mkdir(d, good[i]) == 0);
        CHECK(chmod(d, good[i]) == 0);
        CHECK_EQ(run_ferryd(sock, policy), 0);
        CHECK(unlink(lock) == 0);
        CHECK(rmdir(d) == 0);
    }
    CHECK_EQ(run_ferryd(sock, policy), 0); /* made 0755 */
    CHECK(unlink(lock) == 0);
    CHECK(rmdir(d) == 0);
    /* A directory of its own under one another uid owns: that uid could rename it away. */
    CHECK(mkdir(d, 0755) == 0);
    CHECK(chown(d, FAKE.uid, FAKE.gid) == 0);
    snprintf(sub, sizeof sub, "%s/mine", d);
    CHECK(mkdir(sub, 0755) == 0);
    snprintf(sock, sizeof sock, "%s/ferryd.sock", sub);
    CHECK_EQ(run_ferryd(sock, policy), 4);
    /* ... or under one its group may write (not sticky). */
    CHECK(chown(d, 0, 0) == 0);
    CHECK(chmod(d, 0775) == 0);
    CHECK_EQ(run_ferryd(sock, policy), 4);
    CHECK(chmod(d, 0755) == 0);
    CHECK_EQ(run_ferryd(sock, policy), 0);
    snprintf(lock, sizeof lock, "%s.lock", sock);
    CHECK(unlink(lock) == 0);
    CHECK(rmdir(sub) == 0);
    CHECK(rmdir(d) == 0);
}

/* A failed CHECK exits: remove what this test made in the directory, so that
 * broker_atexit (registered earlier, so run later) can remove the directory. */
static char top_dir[64];
static pid_t main_pid;
static void cleanup(void)
{
    if (getpid() != main_pid) return;
    const char *files[] = {"evil/ferryd.sock",   "fake-ferryd.sh",          "spawned",
                           "d/mine/ferryd.sock", "d/mine/ferryd.sock.lock", "d/ferryd.sock",
                           "d/ferryd.sock.lock"};
    const char *dirs[] = {"evil", "evil2", "d/mine", "d"};
    char p[128];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", top_dir, files[i]);
        unlink(p);
    }
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", top_dir, dirs[i]);
        rmdir(p);
    }
}

int main(void)
{
    require_root();
    test_deadline(60);
    signal(SIGPIPE, SIG_IGN);
    test_broker b;
    broker_init(&b); /* a private root-owned directory (no ferryd started in it) */
    snprintf(top_dir, sizeof top_dir, "%s", b.dir);
    main_pid = getpid();
    atexit(cleanup);
    int fds = fd_count();
    test_fake(b.dir);
    test_dirs(b.dir, b.policy);
    test_autospawn_unsafe(b.dir);
    CHECK_EQ(fd_count(), fds);
    broker_stop(&b);
    printf("test_fake_broker: ok\n");
    return 0;
}
