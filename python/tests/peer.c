// SPDX-License-Identifier: MIT
/*
 * peer.c — the C end the Python tests talk to (python/tests/test_c_peer.py).
 *
 *   ferry_py_peer open URL     open a channel to a listener at URL
 *   ferry_py_peer connect NAME connect by name through ferryd ($FERRY_BROKER)
 *
 * Then it echoes every message back: same type, the payload with "c:" in front, the fds
 * it received (it closes its own copies after sending). A message of type 99 is answered
 * instead by a pipe's read end (type 99, payload "pipe") with "from-c" written into it:
 * an fd made by C, received by Python. It stops at the peer's end (-EPIPE) and exits 0;
 * any other error exits 1 with a message. Built against the shared libferry.
 */
#define _POSIX_C_SOURCE 200809L /* pipe */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <ferry/ferry.h>

static int fail(const char *what, long rc)
{
    fprintf(stderr, "ferry_py_peer: %s: %s\n", what, ferry_strerror((int)rc));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ferry_py_peer open URL | connect NAME\n");
        return 2;
    }
    ferry_chan *ch = NULL;
    int rc;
    if (strcmp(argv[1], "open") == 0)
        rc = ferry_chan_open(argv[2], NULL, &ch, 10LL * 1000000000);
    else
        rc = ferry_connect(argv[2], FERRY_KIND_SHM, NULL, &ch, 10LL * 1000000000);
    if (rc < 0) return fail(argv[1], rc);

    static char in[1 << 16], out[sizeof in + 2];
    for (;;) {
        ferry_msg m = {.data = in, .cap = sizeof in};
        ssize_t n = ferry_recvmsg(ch, &m, 0, FERRY_FOREVER);
        if (n == -EPIPE) break;
        if (n < 0) return fail("recvmsg", n);
        ferry_msg r = {.type = m.type, .data = out};
        if (m.type == 99) {
            int p[2];
            if (pipe(p) < 0 || write(p[1], "from-c", 6) != 6) return fail("pipe", -errno);
            close(p[1]);
            memcpy(out, "pipe", 4);
            r.len = 4;
            r.nfds = 1;
            r.fds[0] = p[0];
            for (uint32_t i = 0; i < m.nfds; i++) close(m.fds[i]);
        } else {
            memcpy(out, "c:", 2);
            memcpy(out + 2, in, (size_t)n);
            r.len = (size_t)n + 2;
            r.nfds = m.nfds;
            memcpy(r.fds, m.fds, sizeof m.fds[0] * m.nfds);
        }
        rc = ferry_sendmsg(ch, &r, FERRY_FOREVER);
        for (uint32_t i = 0; i < r.nfds; i++) close(r.fds[i]);
        if (rc == -EPIPE) break;
        if (rc < 0) return fail("sendmsg", rc);
    }
    ferry_chan_close(ch);
    return 0;
}
