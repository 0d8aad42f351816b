// SPDX-License-Identifier: MIT
/*
 * order_ba.c — ordering two processes with a semaphore: statement B (in one process)
 * runs before statement A (in another), whatever the scheduler does.
 *
 *   ferry_sem *s = created with value 0
 *   process 1:  ferry_sem_wait(s); A;
 *   process 2:  B; ferry_sem_post(s);
 *
 * The wait cannot return before the post: A starts after B ends. To make the check
 * meaningful, process 1 starts first and process 2 sleeps a little before B, so that
 * without the semaphore A would run first. Each statement appends its letter, with a
 * timestamp, to a log in shared memory; the parent checks the log reads "BA", ROUNDS
 * times, and exits 0 only then.
 *
 *   build:  cc -O2 order_ba.c -lferry -o order_ba
 *   run:    ./order_ba
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS (not POSIX), and POSIX 2008 (fork, nanosleep) */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ferry.h>

#define ROUNDS     20
#define TIMEOUT_NS ((int64_t)5 * 1000 * 1000 * 1000)

struct log {
    _Atomic int len;
    char text[4];
    int64_t at[4];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void say(struct log *lg, char c)
{
    int i = atomic_fetch_add(&lg->len, 1);
    if (i < 4) {
        lg->text[i] = c;
        lg->at[i] = now_ns();
    }
}

static int round_once(struct log *lg)
{
    ferry_sem *s;
    int rc = ferry_sem_create(0, 0, &s);
    if (rc < 0) {
        fprintf(stderr, "order_ba: create: %s\n", ferry_strerror(rc));
        return 0;
    }
    atomic_store(&lg->len, 0);
    pid_t p1 = fork();
    if (p1 == 0) { /* process 1: A, after B */
        rc = ferry_sem_wait(s, TIMEOUT_NS);
        if (rc < 0) {
            fprintf(stderr, "order_ba: wait: %s\n", ferry_strerror(rc));
            _exit(1);
        }
        say(lg, 'A');
        _exit(0);
    }
    pid_t p2 = fork();
    if (p2 == 0) { /* process 2: B, late on purpose, then let A go */
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
        say(lg, 'B');
        _exit(ferry_sem_post(s) == 0 ? 0 : 1);
    }
    int ok = p1 > 0 && p2 > 0;
    for (int i = 0; i < 2; i++) {
        int st;
        pid_t pid = i == 0 ? p1 : p2;
        if (pid > 0 && (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)) ok = 0;
    }
    ok = ok && atomic_load(&lg->len) == 2 && lg->text[0] == 'B' && lg->text[1] == 'A' &&
         lg->at[0] <= lg->at[1] && ferry_sem_value(s) == 0;
    ferry_sem_close(s);
    return ok;
}

int main(void)
{
    struct log *lg =
        mmap(NULL, sizeof *lg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (lg == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    for (int r = 0; r < ROUNDS; r++)
        if (!round_once(lg)) {
            fprintf(stderr, "order_ba: round %d: wrong order (%.*s)\n", r,
                    atomic_load(&lg->len) < 4 ? atomic_load(&lg->len) : 4, lg->text);
            return 1;
        }
    printf("order_ba: B ran before A in all %d rounds\n", ROUNDS);
    munmap(lg, sizeof *lg);
    return 0;
}
