// SPDX-License-Identifier: MIT
/*
 * test_transport_roundtrip — every transport, the same round trip (the full conformance
 * suite lives in tests/conformance): a forked echo peer met through the transport's own
 * way (ferry_listen/accept + ferry_chan_open, or ferry_pipe_pair), then: sizes 0, 1, 100
 * and max with their types, max+1 -> -EMSGSIZE, 10,000 ordered messages, ferry_chan_peer
 * (the peer's pid where the transport knows it, -EOPNOTSUPP where not), the peer's close
 * seen as -EPIPE, and no fd or file left behind.
 * Usage: test_transport_roundtrip SCHEME (pipe, pipe-exec, unix, unix-abstract, tcp, tcp6,
 * fifo, shm). pipe-exec hands the child its ends across exec (ferry_pipe_pair_fd, then
 * ferry_chan_open("PIPE://R,W") in the exec'd child: the scheme in upper case).
 * CTest runs only pipe-exec: the conformance suite checks the rest on every form.
 */
#include "testutil.h"

#include "ferry/ferry.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#define T 5000000000LL

static int echo(ferry_chan *b)
{
    size_t cap = ferry_chan_max_msg(b);
    char *buf = malloc(cap ? cap : 1);
    for (;;) {
        ferry_msg m = {.data = buf, .cap = cap};
        ssize_t r = ferry_recvmsg(b, &m, 0, T);
        if (r < 0) {
            free(buf);
            return r == -EPIPE ? 0 : 3;
        }
        if (ferry_sendmsg(b, &m, T) < 0) return 4;
    }
}

static void exercise(ferry_chan *a, pid_t peer, int has_cred)
{
    size_t max = ferry_chan_max_msg(a);
    uint8_t *buf = malloc(max + 1), *in = malloc(max + 1);
    CHECK(buf && in);
    size_t sizes[] = {0, 1, 100, max};
    for (int k = 0; k < 4; k++) {
        memset(buf, k + 1, sizes[k]);
        ferry_msg m = {.type = k + 3, .data = buf, .len = sizes[k]};
        CHECK_EQ(ferry_sendmsg(a, &m, T), 0);
        ferry_msg r = {.data = in, .cap = max + 1};
        CHECK_EQ(ferry_recvmsg(a, &r, 0, T), (long long)sizes[k]);
        CHECK_EQ(r.type, k + 3);
        CHECK(memcmp(in, buf, sizes[k]) == 0);
    }
    CHECK_EQ(ferry_send(a, buf, max + 1, T), -EMSGSIZE);
    for (int i = 0; i < 10000; i++) {
        CHECK_EQ(ferry_send(a, &i, sizeof i, T), 0);
        int v = -1;
        CHECK_EQ(ferry_recv(a, &v, sizeof v, T), (long long)sizeof v);
        CHECK_EQ(v, i);
    }
    ferry_cred c;
    if (has_cred) {
        CHECK_EQ(ferry_chan_peer(a, &c), 0);
        CHECK_EQ(c.pid, peer);
        CHECK_EQ(c.uid, getuid());
    } else {
        CHECK_EQ(ferry_chan_peer(a, &c), -EOPNOTSUPP);
    }
    free(buf);
    free(in);
}

/* A port nobody uses right now (the kernel's choice for a probe socket). */
static int free_port(int family)
{
    int s = socket(family, SOCK_STREAM, 0);
    struct sockaddr_storage ss = {.ss_family = (sa_family_t)family};
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
    CHECK(s >= 0 && bind(s, (struct sockaddr *)&ss, len) == 0);
    CHECK(getsockname(s, (struct sockaddr *)&ss, &len) == 0);
    close(s);
    return ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                   : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--child")) { /* exec'd by pipe-exec */
        ferry_chan *b;
        char url[64];
        snprintf(url, sizeof url, "PIPE://%s", argv[2]); /* schemes are case-insensitive */
        CHECK_EQ(ferry_chan_open(url, NULL, &b, T), 0);
        int rc = echo(b);
        ferry_chan_close(b);
        return rc;
    }
    CHECK(argc == 2);
    const char *scheme = argv[1];
    char dir[] = "/tmp/ferry-rt-XXXXXX", url[256];
    CHECK(mkdtemp(dir) != NULL);
    int has_cred = 0, pair = 0;
    if (!strcmp(scheme, "pipe"))
        pair = 1;
    else if (!strcmp(scheme, "pipe-exec"))
        pair = 2;
    else if (!strcmp(scheme, "unix"))
        snprintf(url, sizeof url, "unix://%s/s", dir), has_cred = 1;
    else if (!strcmp(scheme, "unix-abstract"))
        snprintf(url, sizeof url, "unix://@ferry-rt-%d", (int)getpid()), has_cred = 1;
    else if (!strcmp(scheme, "tcp"))
        snprintf(url, sizeof url, "tcp://127.0.0.1:%d", free_port(AF_INET));
    else if (!strcmp(scheme, "tcp6"))
        snprintf(url, sizeof url, "tcp://[::1]:%d", free_port(AF_INET6));
    else if (!strcmp(scheme, "fifo"))
        snprintf(url, sizeof url, "fifo://%s/f", dir);
    else if (!strcmp(scheme, "shm"))
        snprintf(url, sizeof url, "shm://%s/s", dir), has_cred = 1;
    else
        return 2;
    int before = fd_count();
    ferry_chan *a = NULL, *b = NULL;
    ferry_listener *l = NULL;
    int child_fds[2] = {-1, -1};
    if (pair == 1)
        CHECK_EQ(ferry_pipe_pair(NULL, &a, &b), 0);
    else if (pair == 2)
        CHECK_EQ(ferry_pipe_pair_fd(NULL, &a, child_fds), 0);
    else
        CHECK_EQ(ferry_listen(url, NULL, &l), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0 && pair == 2) {
        char fds[32];
        snprintf(fds, sizeof fds, "%d,%d", child_fds[0], child_fds[1]);
        execl("/proc/self/exe", argv[0], "--child", fds, (char *)NULL);
        _exit(5);
    }
    if (pid == 0) {
        if (pair) {
            ferry_chan_close(a);
        } else {
            CHECK_EQ(ferry_chan_open(url, NULL, &b, T), 0);
        }
        int rc = echo(b);
        ferry_chan_close(b);
        _exit(rc);
    }
    if (pair == 1)
        ferry_chan_close(b);
    else if (pair == 2)
        close(child_fds[0]), close(child_fds[1]);
    else
        CHECK_EQ(ferry_accept(l, &a, T), 0);
    exercise(a, pid, has_cred);
    ferry_chan_close(a); /* the echo peer sees -EPIPE and exits 0 */
    wait_ok(pid);
    if (l) ferry_listener_close(l);
    CHECK_EQ(fd_count(), before);
    CHECK(rmdir(dir) == 0); /* empty: no socket file or FIFO left */
    printf("%s: ok\n", scheme);
    return 0;
}
