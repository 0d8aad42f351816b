// SPDX-License-Identifier: MIT
/*
 * bounded_buffer.c — the classic bounded buffer (producer/consumer) between processes,
 * with three ferry semaphores:
 *
 *   empty  counts free slots in the ring    (starts at SLOTS)
 *   full   counts filled slots in the ring  (starts at 0)
 *   lock   a binary semaphore (starts at 1) guarding the ring's indices
 *
 *   producer: wait(empty); wait(lock); put;  post(lock); post(full)
 *   consumer: wait(full);  wait(lock); take; post(lock); post(empty)
 *
 * The ring lives in memory mapped MAP_SHARED | MAP_ANONYMOUS before fork(), so the
 * parent's children all see it; the semaphores are made before fork too, and each
 * handle works in every child. 2 producers make ITEMS items each, 2 consumers take
 * them; every item must be consumed exactly once (each consumer marks what it took in a
 * shared table), and the program exits 0 only if so.
 *
 *   build:  cc -O2 bounded_buffer.c -lferry -o bounded_buffer
 *   run:    ./bounded_buffer
 *
 * The lock uses FERRY_SEM_UNDO: a process killed inside the critical section gives the
 * lock back (the ring may then need repair, as after any crash under a lock).
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS (not POSIX), and POSIX 2008 (fork, waitpid) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ferry/ferry.h>

#define SLOTS      8
#define PRODUCERS  2
#define CONSUMERS  2
#define ITEMS      20000 /* per producer */
#define TIMEOUT_NS ((int64_t)10 * 1000 * 1000 * 1000)

struct shared {
    uint32_t ring[SLOTS];
    uint32_t head, tail;             /* guarded by lock */
    uint8_t seen[PRODUCERS * ITEMS]; /* one byte per item: times consumed */
    uint32_t taken[CONSUMERS];       /* items per consumer */
};

static ferry_sem *empty, *full, *lock;
static struct shared *sh;

static int must(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "bounded_buffer: %s: %s\n", what, ferry_strerror(rc));
        exit(1);
    }
    return rc;
}

static void producer(int id)
{
    for (uint32_t i = 0; i < ITEMS; i++) {
        must(ferry_sem_wait(empty, TIMEOUT_NS), "wait(empty)");
        must(ferry_sem_wait(lock, TIMEOUT_NS), "wait(lock)");
        sh->ring[sh->tail % SLOTS] = (uint32_t)id * ITEMS + i;
        sh->tail++;
        must(ferry_sem_post(lock), "post(lock)");
        must(ferry_sem_post(full), "post(full)");
    }
}

static void consumer(int id, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        must(ferry_sem_wait(full, TIMEOUT_NS), "wait(full)");
        must(ferry_sem_wait(lock, TIMEOUT_NS), "wait(lock)");
        uint32_t item = sh->ring[sh->head % SLOTS];
        sh->head++;
        must(ferry_sem_post(lock), "post(lock)");
        must(ferry_sem_post(empty), "post(empty)");
        if (item >= PRODUCERS * ITEMS) {
            fprintf(stderr, "bounded_buffer: consumer %d took a bad item %u\n", id, item);
            exit(1);
        }
        sh->seen[item]++; /* each item index is taken by one consumer only, if all is well */
        sh->taken[id]++;
    }
}

int main(void)
{
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    must(ferry_sem_create(SLOTS, 0, &empty), "create(empty)");
    must(ferry_sem_create(0, 0, &full), "create(full)");
    must(ferry_sem_create(1, FERRY_SEM_UNDO, &lock), "create(lock)");

    pid_t kids[PRODUCERS + CONSUMERS];
    int n = 0;
    for (int p = 0; p < PRODUCERS; p++) {
        kids[n] = fork();
        if (kids[n] == 0) {
            producer(p);
            _exit(0);
        }
        n++;
    }
    /* The consumers share the work: the first takes half, the second the rest. */
    uint32_t total = PRODUCERS * ITEMS;
    for (int c = 0; c < CONSUMERS; c++) {
        kids[n] = fork();
        if (kids[n] == 0) {
            consumer(c, c == 0 ? total / 2 : total - total / 2);
            _exit(0);
        }
        n++;
    }
    int ok = 1;
    for (int i = 0; i < n; i++) {
        int st;
        if (kids[i] < 0 || waitpid(kids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            ok = 0;
    }
    for (uint32_t i = 0; ok && i < total; i++)
        if (sh->seen[i] != 1) {
            fprintf(stderr, "bounded_buffer: item %u consumed %u times\n", i, sh->seen[i]);
            ok = 0;
        }
    if (ok && (sh->head != total || sh->tail != total || ferry_sem_value(empty) != SLOTS ||
               ferry_sem_value(full) != 0 || ferry_sem_value(lock) != 1)) {
        fprintf(stderr, "bounded_buffer: wrong final state\n");
        ok = 0;
    }
    if (ok)
        printf("bounded_buffer: %u items through a %d-slot ring, each consumed once "
               "(consumers took %u and %u)\n",
               total, SLOTS, sh->taken[0], sh->taken[1]);
    ferry_sem_close(empty);
    ferry_sem_close(full);
    ferry_sem_close(lock);
    munmap(sh, sizeof *sh);
    return ok ? 0 : 1;
}
