// SPDX-License-Identifier: MIT
/*
 * consumer.c — ferry used from another project, as a new user would (scripts/
 * check-consumer.sh builds it three ways against an install in a temporary prefix:
 * pkg-config + Makefile, find_package(ferry 0.3), add_subdirectory of the source tree).
 *
 * It sees only the public header: ferry's private src/ must not be on its include path
 * (checked at compile time below). It talks to a forked peer over ferry_pair, then
 * meets a forked server by name through ferryd: $FERRY_BROKER must name a socket in a
 * private directory, and the first ferry_register starts ferryd there (autospawn:
 * $FERRY_FERRYD, else the installed one). It prints "consumer: ok" and exits 0 when every
 * message came back intact; 1 otherwise. The caller stops the ferryd it started.
 */
#define _GNU_SOURCE /* pipe2 */
#include <ferry/ferry.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include("chan/chan.h") || __has_include("core/proc.h")
#error "ferry's private src/ is on the consumer's include path"
#endif
#endif

#if FERRY_VERSION_MAJOR != 0 || FERRY_VERSION_MINOR < 3
#error "this consumer wants ferry 0.3 or later"
#endif

#define SEC  ((int64_t)1000000000)
#define NAME "org.example.consumer"

static int fail(const char *what, int rc)
{
    fprintf(stderr, "consumer: %s: %s\n", what, ferry_strerror(rc));
    return 1;
}

/* Send msg on ch and expect it back. 0, or 1. */
static int roundtrip(ferry_chan *ch, const char *msg)
{
    char buf[64];
    int rc = ferry_send(ch, msg, strlen(msg), 5 * SEC);
    if (rc < 0) return fail("send", rc);
    ssize_t n = ferry_recv(ch, buf, sizeof buf, 5 * SEC);
    if (n < 0) return fail("recv", (int)n);
    if ((size_t)n != strlen(msg) || memcmp(buf, msg, (size_t)n) != 0) {
        fprintf(stderr, "consumer: a wrong echo\n");
        return 1;
    }
    return 0;
}

/* Echo every message on ch until the other end closes. 0 at a clean end. */
static int echo(ferry_chan *ch)
{
    char buf[64];
    for (;;) {
        ssize_t n = ferry_recv(ch, buf, sizeof buf, 10 * SEC);
        if (n == -EPIPE) return 0;
        if (n < 0 || ferry_send(ch, buf, (size_t)n, 5 * SEC) < 0) return 1;
    }
}

static int reap(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) < 0) return 1;
    return !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}

/* A forked peer over ferry_pair. */
static int over_pair(void)
{
    ferry_chan *a, *b;
    int rc = ferry_pair(NULL, &a, &b);
    if (rc < 0) return fail("ferry_pair", rc);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        ferry_chan_close(a);
        _exit(echo(b));
    }
    ferry_chan_close(b);
    int bad = roundtrip(a, "hello over a pair");
    ferry_chan_close(a); /* the peer's recv says -EPIPE: it exits 0 */
    bad |= reap(pid);
    if (!bad) printf("consumer: pair: a forked peer echoed\n");
    return bad;
}

/* A forked server registered as NAME through ferryd; this process connects to it. */
static int by_name(void)
{
    if (!getenv("FERRY_BROKER")) {
        fprintf(stderr, "consumer: set FERRY_BROKER to a socket in a private directory\n");
        return 1;
    }
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0) return 1; /* the ferryd started must not hold it */
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        close(ready[0]);
        ferry_listener *l;
        int rc = ferry_register(NAME, NULL, NULL, &l, 10 * SEC); /* starts ferryd */
        if (rc < 0) _exit(fail("ferry_register", rc));
        close(ready[1]); /* registered: the client may come */
        ferry_chan *ch;
        rc = ferry_accept(l, &ch, 10 * SEC);
        if (rc < 0) _exit(fail("ferry_accept", rc));
        rc = echo(ch);
        ferry_chan_close(ch);
        ferry_listener_close(l);
        _exit(rc);
    }
    close(ready[1]);
    char c;
    ssize_t r = read(ready[0], &c, 1); /* EOF once registered (or failed) */
    close(ready[0]);
    if (r < 0) return 1;
    ferry_chan *ch;
    int rc = ferry_connect(NAME, FERRY_KIND_SHM, NULL, &ch, 10 * SEC);
    int bad = rc < 0 ? fail("ferry_connect", rc) : roundtrip(ch, "hello by name");
    if (rc >= 0) ferry_chan_close(ch);
    bad |= reap(pid);
    if (!bad) printf("consumer: name: met a forked server through ferryd\n");
    return bad;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int bad = over_pair();
    bad |= by_name();
    if (!bad) printf("consumer: ok\n");
    return bad;
}
