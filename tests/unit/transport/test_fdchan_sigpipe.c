// SPDX-License-Identifier: MIT
/*
 * test_fdchan_sigpipe.c — a send on a pipe or FIFO channel whose reader is gone returns
 * -EPIPE and raises no SIGPIPE, and leaves the caller's signal state as it was: the
 * disposition, this thread's mask, and a SIGPIPE the caller had pending (issue 15, item
 * 4: the writes now say RWF_NOSIGNAL; the signal-mask way stays for kernels before 6.18).
 * Usage: test_fdchan_sigpipe nosignal|masked
 *   nosignal  the library's own choice (RWF_NOSIGNAL where the kernel has it)
 *   masked    the way of kernels without it, forced (ferry__fdchan_no_nosignal = 1)
 * Each case: SIGPIPE at its default (a SIGPIPE would kill the test), ignored, caught by a
 * handler that counts, and blocked by the caller (nothing pending; one of its own
 * pending, which must still be there, once, afterwards).
 */
#define _GNU_SOURCE
#include "ferry/ferry.h"
#include "testutil.h"
#include "transport/fdchan.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

static volatile sig_atomic_t caught;

static void on_pipe(int sig)
{
    (void)sig;
    caught++;
}

/* A pipe channel whose peer end is closed; a send to it must be -EPIPE, whatever size
 * (atomic and not). */
static void send_to_gone(void)
{
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pipe_pair(NULL, &a, &b), 0);
    ferry_chan_close(b);
    static char buf[100000];
    CHECK_EQ(ferry_send(a, buf, 64, FERRY_FOREVER), -EPIPE);
    CHECK_EQ(ferry_send(a, buf, sizeof buf, FERRY_FOREVER), -EPIPE);
    ferry_chan_close(a);
}

static int pending_pipe(void)
{
    sigset_t p;
    CHECK_EQ(sigpending(&p), 0);
    return sigismember(&p, SIGPIPE);
}

static int mask_has_pipe(void)
{
    sigset_t m;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &m), 0);
    return sigismember(&m, SIGPIPE);
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "nosignal") && strcmp(argv[1], "masked"))) {
        fprintf(stderr, "usage: %s nosignal|masked\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "masked") == 0) atomic_store(&ferry__fdchan_no_nosignal, 1);
    int before = fd_count();

    /* Default disposition: a SIGPIPE would end the test here. */
    signal(SIGPIPE, SIG_DFL);
    send_to_gone();
    CHECK(!mask_has_pipe());
    CHECK(!pending_pipe());

    /* Ignored: stays ignored. */
    signal(SIGPIPE, SIG_IGN);
    send_to_gone();
    struct sigaction sa;
    CHECK_EQ(sigaction(SIGPIPE, NULL, &sa), 0);
    CHECK(sa.sa_handler == SIG_IGN);

    /* A handler: never called. */
    signal(SIGPIPE, on_pipe);
    send_to_gone();
    CHECK_EQ(caught, 0);
    CHECK(!mask_has_pipe());

    /* Blocked by the caller, nothing pending: nothing pending after, still blocked. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &pipe_set, NULL), 0);
    send_to_gone();
    CHECK(mask_has_pipe());
    CHECK(!pending_pipe());

    /* Blocked, with one of the caller's own pending: still pending after, once. */
    CHECK_EQ(pthread_kill(pthread_self(), SIGPIPE), 0);
    CHECK(pending_pipe());
    send_to_gone();
    CHECK(mask_has_pipe());
    CHECK(pending_pipe());
    struct timespec zero = {0, 0};
    CHECK_EQ(sigtimedwait(&pipe_set, NULL, &zero), SIGPIPE);
    CHECK(!pending_pipe());
    CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &pipe_set, NULL), 0);
    CHECK_EQ(caught, 0);

    CHECK_EQ(fd_count(), before);
    printf("%s: -EPIPE without SIGPIPE; disposition, mask and pending SIGPIPE kept (%s)\n", argv[1],
           atomic_load(&ferry__fdchan_no_nosignal) ? "signal mask" : "RWF_NOSIGNAL");
    return 0;
}
