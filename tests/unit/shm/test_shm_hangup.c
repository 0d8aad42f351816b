// SPDX-License-Identifier: MIT
/*
 * test_shm_hangup — a peer that closes its end wakes us: a receiver asleep on an empty
 * shm channel, and a sender asleep on a full one, return -EPIPE right after the other
 * process closes (not at the end of a 20 ms liveness slice). The median over several
 * rounds must be under 5 ms (the slice alone would give about 10 ms).
 */
#include "testutil.h"

#include <ferry/ferry.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#define ROUNDS 7

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One round: the child sleeps 30 ms, then closes its end and writes the time it did so
 * into *when (shared); we block in recv (or send, when fill) until -EPIPE. */
static int64_t round_trip(int fill, volatile int64_t *when)
{
    ferry_chan_opts o;
    ferry_chan_opts_init(&o);
    o.capacity = 1;
    o.flags = FERRY_NO_SPIN; /* sleep at once: this is about the sleeping path */
    ferry_chan *a, *b;
    CHECK_EQ(ferry_pair(&o, &a, &b), 0);
    if (fill) CHECK_EQ(ferry_send(a, "x", 1, FERRY_NOW), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        ferry_chan_close(a);
        struct timespec ts = {0, 30 * 1000000};
        nanosleep(&ts, NULL);
        *when = now_ns();
        ferry_chan_close(b);
        _exit(0);
    }
    ferry_chan_close(b);
    int rc;
    if (fill)
        rc = ferry_send(a, "y", 1, 5 * (int64_t)1000000000);
    else {
        char c;
        rc = (int)ferry_recv(a, &c, 1, 5 * (int64_t)1000000000);
    }
    int64_t t = now_ns();
    CHECK_EQ(rc, -EPIPE);
    wait_ok(pid);
    ferry_chan_close(a);
    return t - *when;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    volatile int64_t *when =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(when != MAP_FAILED);
    int fds = fd_count();
    for (int fill = 0; fill <= 1; fill++) {
        int64_t t[ROUNDS];
        for (int i = 0; i < ROUNDS; i++) t[i] = round_trip(fill, when);
        qsort(t, ROUNDS, sizeof t[0], cmp);
        printf("%s: median %lld us after the close\n", fill ? "send" : "recv",
               (long long)(t[ROUNDS / 2] / 1000));
        CHECK(t[ROUNDS / 2] < 5 * 1000000);
    }
    CHECK_EQ(fd_count(), fds);
    printf("ok\n");
    return 0;
}
