// SPDX-License-Identifier: MIT
/*
 * dining_philosophers — five philosopher processes, five forks, each fork a ferry_mutex.
 *
 * Deadlock comes from a cycle of waits: everyone holding their left fork and waiting for
 * their right one. Resource ordering breaks the cycle: forks are numbered, and every
 * philosopher picks up the lower-numbered of their two forks first. Philosopher 4 (forks
 * 4 and 0) therefore reaches for fork 0 first, like philosopher 0, and at least one
 * philosopher can always eat.
 *
 * Each philosopher eats MEALS times. Shared memory records who holds each fork and who
 * is eating, so a broken rule shows: two neighbours eating at once, or a fork in two
 * hands. Every lock is bounded (a deadlock would show as a timeout). Exits 0 only when
 * all meals were eaten, within the time bound, with no rule broken.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS */
#include <ferry/ferry.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N     5
#define MEALS 200
#define SEC   1000000000LL

typedef struct table {
    _Atomic int fork_holder[N]; /* -1 when on the table */
    _Atomic int eating[N];
    _Atomic int meals[N];
    _Atomic int violations;
} table;

static ferry_mutex *fork_m[N];
static table *tb;

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void take(int p, int f)
{
    int rc = ferry_mutex_lock(fork_m[f], 10 * SEC);
    if (rc != 0) {
        fprintf(stderr, "philosopher %d: fork %d: %s\n", p, f, ferry_strerror(rc));
        exit(1);
    }
    int expect = -1;
    if (!atomic_compare_exchange_strong(&tb->fork_holder[f], &expect, p))
        atomic_fetch_add(&tb->violations, 1); /* someone else has it in hand */
}

static void put(int p, int f)
{
    int expect = p;
    if (!atomic_compare_exchange_strong(&tb->fork_holder[f], &expect, -1))
        atomic_fetch_add(&tb->violations, 1);
    if (ferry_mutex_unlock(fork_m[f]) != 0) exit(1);
}

static void philosopher(int p)
{
    unsigned seed = (unsigned)p * 7919u + (unsigned)getpid();
    int left = p, right = (p + 1) % N;
    int first = left < right ? left : right, second = left < right ? right : left;
    for (int meal = 0; meal < MEALS; meal++) {
        pause_us(rand_r(&seed) % 200); /* think */
        take(p, first);
        take(p, second);
        atomic_store(&tb->eating[p], 1);
        if (atomic_load(&tb->eating[(p + N - 1) % N]) || atomic_load(&tb->eating[(p + 1) % N]))
            atomic_fetch_add(&tb->violations, 1); /* a neighbour eats with our fork */
        pause_us(rand_r(&seed) % 200);            /* eat */
        atomic_fetch_add(&tb->meals[p], 1);
        atomic_store(&tb->eating[p], 0);
        put(p, second);
        put(p, first);
    }
}

int main(void)
{
    tb = mmap(NULL, sizeof *tb, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (tb == MAP_FAILED) return 1;
    for (int f = 0; f < N; f++) {
        atomic_store(&tb->fork_holder[f], -1);
        int rc = ferry_mutex_create(0, &fork_m[f]);
        if (rc != 0) {
            fprintf(stderr, "create: %s\n", ferry_strerror(rc));
            return 1;
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pids[N];
    for (int p = 0; p < N; p++) {
        pids[p] = fork(); /* the forks (handles) work in the children as they are */
        if (pids[p] < 0) return 1;
        if (pids[p] == 0) {
            alarm(60); /* a bug must not hang the example */
            philosopher(p);
            _exit(0);
        }
    }
    int ok = 1;
    for (int p = 0; p < N; p++) {
        int st;
        while (waitpid(pids[p], &st, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "philosopher %d failed (status 0x%x)\n", p, st);
            ok = 0;
        }
        if (atomic_load(&tb->meals[p]) != MEALS) ok = 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("dining_philosophers: meals");
    for (int p = 0; p < N; p++) printf(" %d", atomic_load(&tb->meals[p]));
    printf("; %d violations; %.2f s\n", atomic_load(&tb->violations), secs);
    if (atomic_load(&tb->violations) != 0) ok = 0;
    for (int f = 0; f < N; f++) ferry_mutex_close(fork_m[f]);
    printf("dining_philosophers: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
