// SPDX-License-Identifier: MIT
/*
 * pingpong.c — the smallest complete ferry program: a channel between a parent and its
 * child process.
 *
 *   ferry_pair() makes both ends of a shared-memory channel; fork() hands one to the
 *   child. The parent sends COUNT messages, the child echoes each one back, and the parent
 *   times every round trip and prints the median (p50).
 *
 *   build:  cc -O2 pingpong.c -lferry -o pingpong
 *   run:    ./pingpong [count]
 *
 * What every ferry program does, shown here: check each return value (ferry returns 0 or a
 * count on success and a negative errno on failure: ferry_strerror() names it); give every
 * blocking call a timeout; close, in each process, the end it does not use; close your end
 * when done (the peer's next receive then returns -EPIPE); wait for the child.
 */
#define _POSIX_C_SOURCE 200809L /* fork, clock_gettime */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ferry.h>

#define MSG_SIZE   64
#define TIMEOUT_NS ((int64_t)5 * 1000 * 1000 * 1000) /* no call waits longer than 5 s */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The child: send every message straight back, until the parent closes its end. */
static int echo(ferry_chan *ch)
{
    char buf[MSG_SIZE];
    for (;;) {
        ssize_t n = ferry_recv(ch, buf, sizeof buf, TIMEOUT_NS);
        if (n == -EPIPE) return 0; /* the parent is done: a normal end */
        if (n < 0) {
            fprintf(stderr, "child: ferry_recv: %s\n", ferry_strerror((int)n));
            return 1;
        }
        int rc = ferry_send(ch, buf, (size_t)n, TIMEOUT_NS);
        if (rc < 0) {
            fprintf(stderr, "child: ferry_send: %s\n", ferry_strerror(rc));
            return 1;
        }
    }
}

/* The parent: send count messages, check each echo, record each round trip. */
static int ping(ferry_chan *ch, int64_t *rtt, int count)
{
    char out[MSG_SIZE], in[MSG_SIZE];
    for (int i = 0; i < count; i++) {
        memset(out, 'a' + i % 26, sizeof out); /* a different message every time */
        memcpy(out, &i, sizeof i);
        int64_t t0 = now_ns();
        int rc = ferry_send(ch, out, sizeof out, TIMEOUT_NS);
        if (rc < 0) {
            fprintf(stderr, "ferry_send: %s\n", ferry_strerror(rc));
            return 1;
        }
        ssize_t n = ferry_recv(ch, in, sizeof in, TIMEOUT_NS);
        rtt[i] = now_ns() - t0;
        if (n < 0) {
            fprintf(stderr, "ferry_recv: %s\n", ferry_strerror((int)n));
            return 1;
        }
        if ((size_t)n != sizeof out || memcmp(in, out, sizeof out) != 0) {
            fprintf(stderr, "message %d came back different\n", i);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int count = argc > 1 ? atoi(argv[1]) : 10000;
    if (count <= 0) {
        fprintf(stderr, "usage: pingpong [count]\n");
        return 2;
    }
    int64_t *rtt = malloc((size_t)count * sizeof *rtt);
    if (!rtt) return 1;

    /* Both ends of one channel, with the default options (NULL). */
    ferry_chan *mine, *theirs;
    int rc = ferry_pair(NULL, &mine, &theirs);
    if (rc < 0) {
        fprintf(stderr, "ferry_pair: %s\n", ferry_strerror(rc));
        return 1;
    }

    fflush(stdout); /* so the child does not inherit (and print twice) buffered output */
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {             /* the child */
        ferry_chan_close(mine); /* the parent's end: not ours */
        int status = echo(theirs);
        ferry_chan_close(theirs);
        _exit(status);
    }
    ferry_chan_close(theirs); /* the child's end: not ours */

    int failed = ping(mine, rtt, count);
    ferry_chan_close(mine); /* the child's ferry_recv now returns -EPIPE and it exits */

    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "the child failed\n");
        failed = 1;
    }
    if (!failed) {
        qsort(rtt, (size_t)count, sizeof *rtt, cmp_i64);
        printf("%d round trips of %d bytes: p50 %lld ns\n", count, MSG_SIZE,
               (long long)rtt[count / 2]);
    }
    free(rtt);
    return failed;
}
