// SPDX-License-Identifier: MIT
/*
 * test_creator_gone — a listener that accepts, sends and closes before its opener has
 * answered the handshake (what `ferry send --listen URL` does): the opener's
 * ferry_chan_open still makes the channel, receives every message the listener sent, in
 * order, then -EPIPE. Before the fix the opener's HELLO reply met the closed socket and
 * ferry_chan_open failed with -EPIPE, losing the messages.
 * Deterministic: the opener (a forked child) is stopped (SIGSTOP) once it has connected
 * (the listener's fd polls readable) and before the listener's HELLO exists, and
 * continued only after the listener closed. Forms: unix (SOCK_SEQPACKET) and tcp on
 * 127.0.0.1 (ferry_listener_url gives the port). No fd leak; the socket file is gone.
 */
#include "testutil.h" /* first: it defines _GNU_SOURCE */

#include <ferry/ferry.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T5S (5 * 1000000000LL)

static void opener(const char *url)
{
    ferry_chan *ch = NULL;
    int rc = ferry_chan_open(url, NULL, &ch, T5S);
    if (rc < 0) {
        fprintf(stderr, "opener: %s: %s\n", url, ferry_strerror(rc));
        _exit(2);
    }
    char buf[16];
    for (int i = 0; i < 3; i++) {
        char want[8];
        snprintf(want, sizeof want, "m%d", i);
        ssize_t n = ferry_recv(ch, buf, sizeof buf, T5S);
        if (n != 2 || memcmp(buf, want, 2) != 0) {
            fprintf(stderr, "opener: recv %d: %zd\n", i, n);
            _exit(3);
        }
    }
    if (ferry_recv(ch, buf, sizeof buf, T5S) != -EPIPE) _exit(4);
    ferry_chan_close(ch);
    _exit(0);
}

static void run(const char *listen_url)
{
    int before = fd_count();
    ferry_listener *l = NULL;
    CHECK_EQ(ferry_listen(listen_url, NULL, &l), 0);
    char url[256];
    CHECK(ferry_listener_url(l, url, sizeof url) > 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) opener(url);
    /* The child has connected once the listener polls readable; its HELLO wait cannot end
     * before ours is sent (below), so stopping it now holds it before its reply. */
    struct pollfd p = {.fd = ferry_listener_poll_fd(l), .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 5000), 1);
    CHECK_EQ(kill(pid, SIGSTOP), 0);
    int st;
    CHECK_EQ(waitpid(pid, &st, WUNTRACED), pid);
    CHECK(WIFSTOPPED(st));
    ferry_chan *ch = NULL;
    CHECK_EQ(ferry_accept(l, &ch, T5S), 0);
    for (int i = 0; i < 3; i++) {
        char m[8];
        snprintf(m, sizeof m, "m%d", i);
        CHECK_EQ(ferry_send(ch, m, 2, T5S), 0);
    }
    ferry_chan_close(ch);
    ferry_listener_close(l);
    CHECK_EQ(kill(pid, SIGCONT), 0);
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "%s: opener exited %d\n", listen_url, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(fd_count(), before);
}

static char dir[] = "/tmp/test_creator_gone.XXXXXX";

/* Also after a failed CHECK (exit): the socket file a listener left, and the directory. */
static void cleanup(void)
{
    char path[sizeof dir + 4];
    snprintf(path, sizeof path, "%s/s", dir);
    if (!dir[0]) return;
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    atexit(cleanup);
    char url[300];
    snprintf(url, sizeof url, "unix://%s/s", dir);
    run(url);
    run("tcp://127.0.0.1:0");
    snprintf(url, sizeof url, "%s/s", dir);
    CHECK(access(url, F_OK) != 0); /* the listener removed its socket file */
    CHECK_EQ(rmdir(dir), 0);
    dir[0] = '\0'; /* nothing left for cleanup */
    puts("test_creator_gone: ok");
    return 0;
}
